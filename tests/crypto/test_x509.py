"""X.509 on SM2 (GM/T 0015 profile): certificates, PKCS#10 requests and CRLs, checked against
our own parser and against OpenSSL 3.0 as an independent oracle (always with the GM/T default
ID: crypto_standards.md §2.7, gotcha #1)."""

import shutil
import subprocess
from datetime import datetime, timedelta

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import csr as asn1_csr
from asn1crypto import x509 as asn1_x509
from helpers import service_unavailable

from portal.crypto import x509
from portal.crypto.asn1 import pem, private_key_to_pkcs8
from portal.crypto.sm2 import PrivateKey

DISTID = "distid:1234567812345678"
NOW = datetime(2026, 3, 1, 8, 0, 0)
SM2_WITH_SM3_ABSENT_PARAMS = bytes.fromhex("300a06082a811ccf55018375")
SM2_SPKI_ALGORITHM = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")


def openssl(*args, cwd=None) -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        service_unavailable("OpenSSL", "no openssl binary on PATH")
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def name(cn: str, **extra) -> asn1_x509.Name:
    return x509.build_name(
        [("country_name", "CN"), ("organization_name", "示范大学"), ("common_name", cn), *extra.items()]
    )


@pytest.fixture(scope="module")
def pki():
    """root → issuing → end entity, the way the school CA lays it out."""
    root_key, issuing_key, ee_key = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    root = x509.build_certificate(
        name("Test Root"),
        root_key.public_key,
        root_key.sign,
        not_before=NOW,
        not_after=NOW + timedelta(days=3650),
        ca=True,
    )
    issuing = x509.build_certificate(
        name("Test Issuing"),
        issuing_key.public_key,
        root_key.sign,
        issuer_certificate=root,
        not_before=NOW,
        not_after=NOW + timedelta(days=1825),
        ca=True,
        path_length=0,
    )
    ee = x509.build_certificate(
        name("张伟", serial_number="1101**********1234"),
        ee_key.public_key,
        issuing_key.sign,
        issuer_certificate=issuing,
        not_before=NOW,
        not_after=NOW + timedelta(days=365),
        crl_url="http://portal.example/ca/crl",
    )
    return {
        "root_key": root_key,
        "issuing_key": issuing_key,
        "ee_key": ee_key,
        "root": root,
        "issuing": issuing,
        "ee": ee,
    }


def extensions(der: bytes) -> dict[str, tuple[bool, object]]:
    cert = asn1_x509.Certificate.load(der)
    return {
        e["extn_id"].native: (e["critical"].native, e["extn_value"].parsed)
        for e in cert["tbs_certificate"]["extensions"]
    }


def test_certificates_follow_the_gmt_0015_profile(pki):
    ee = asn1_x509.Certificate.load(pki["ee"])
    tbs = ee["tbs_certificate"]
    assert tbs["version"].native == "v3"
    # sm2-with-sm3 with parameters absent, inside and outside the signed part; SM2 SPKI.
    assert ee["signature_algorithm"].dump() == SM2_WITH_SM3_ABSENT_PARAMS
    assert tbs["signature"].dump() == SM2_WITH_SM3_ABSENT_PARAMS
    assert tbs["subject_public_key_info"]["algorithm"].dump() == SM2_SPKI_ALGORITHM
    assert x509.certificate_public_key(pki["ee"]) == pki["ee_key"].public_key
    # A random positive serial of at least 64 bits.
    assert x509.certificate_serial(pki["ee"]).bit_length() >= 64
    assert x509.certificate_serial(pki["ee"]) != x509.certificate_serial(pki["issuing"])

    ext = extensions(pki["ee"])
    critical, usage = ext["key_usage"]
    assert critical and usage.native == {"digital_signature", "non_repudiation"}
    critical, constraints = ext["basic_constraints"]
    assert critical and constraints.native == {"ca": False, "path_len_constraint": None}
    # DER leaves cA out when it is FALSE (the default), so the extension value is an empty SEQUENCE.
    assert constraints.dump() == b"\x30\x00"
    assert ext["key_identifier"][1].native == x509.key_identifier(pki["ee_key"].public_key)
    assert ext["authority_key_identifier"][1]["key_identifier"].native == x509.key_identifier(
        pki["issuing_key"].public_key
    )
    assert ext["crl_distribution_points"][1][0]["distribution_point"].native == ["http://portal.example/ca/crl"]

    ca_ext = extensions(pki["issuing"])
    critical, constraints = ca_ext["basic_constraints"]
    assert critical and constraints.native == {"ca": True, "path_len_constraint": 0}
    assert x509.certificate_key_usage(pki["issuing"]) == {"key_cert_sign", "crl_sign"}
    assert "crl_distribution_points" not in ca_ext
    # A self-signed root names itself as its authority.
    root_ext = extensions(pki["root"])
    assert root_ext["authority_key_identifier"][1]["key_identifier"].native == root_ext["key_identifier"][1].native


def test_parse_helpers_read_back_what_was_built(pki):
    assert x509.certificate_subject(pki["ee"]) == "serialNumber=1101**********1234,CN=张伟,O=示范大学,C=CN"
    assert x509.certificate_issuer(pki["ee"]) == "CN=Test Issuing,O=示范大学,C=CN"
    assert x509.certificate_validity(pki["ee"]) == (NOW, NOW + timedelta(days=365))
    assert x509.load_certificate(pem(pki["ee"], "CERTIFICATE")).dump() == pki["ee"]
    with pytest.raises(x509.X509Error):
        x509.load_certificate(b"\x30\x03\x02\x01\x01")


def test_signatures_verify_only_under_the_issuers_key_and_untouched(pki):
    assert x509.verify_certificate(pki["root"], pki["root_key"].public_key)  # roots: checked by us (gotcha #2)
    assert x509.verify_certificate(pki["issuing"], pki["root_key"].public_key)
    assert x509.verify_certificate(pki["ee"], pki["issuing_key"].public_key)
    assert not x509.verify_certificate(pki["ee"], pki["root_key"].public_key)
    tampered = pki["ee"].replace("张伟".encode(), "张炜".encode())
    assert tampered != pki["ee"] and not x509.verify_certificate(tampered, pki["issuing_key"].public_key)


def test_a_signer_holding_the_wrong_key_yields_no_certificate(pki):
    with pytest.raises(x509.X509Error, match="does not verify"):
        x509.build_certificate(
            name("Mallory"),
            pki["ee_key"].public_key,
            pki["ee_key"].sign,  # not the issuing CA's key
            issuer_certificate=pki["issuing"],
            not_before=NOW,
            not_after=NOW + timedelta(days=1),
        )


def test_names_keep_their_order_and_string_types():
    built = x509.build_name(
        [("country_name", "CN"), ("organization_name", "A, B"), ("common_name", "x"), ("serial_number", "AB12")]
    )
    types = [rdn[0]["value"].name for rdn in built.chosen]
    assert types == ["printable_string", "utf8_string", "utf8_string", "printable_string"]
    assert x509.name_to_string(built) == r"serialNumber=AB12,CN=x,O=A\, B,C=CN"
    # "*" is not a PrintableString character: a masked ID number travels as UTF8String.
    masked = x509.build_name([("serial_number", "1101**********1234")])
    assert masked.chosen[0][0]["value"].name == "utf8_string"
    assert x509.name_attributes(masked) == {"serial_number": "1101**********1234"}
    with pytest.raises(x509.X509Error):
        x509.build_name([("favourite_colour", "blue")])


def test_dates_from_2050_on_are_generalized_time(pki):
    late = x509.build_certificate(
        name("Late"),
        pki["ee_key"].public_key,
        pki["issuing_key"].sign,
        issuer_certificate=pki["issuing"],
        not_before=datetime(2049, 12, 31),
        not_after=datetime(2051, 1, 1),
    )
    validity = asn1_x509.Certificate.load(late)["tbs_certificate"]["validity"]
    assert (validity["not_before"].name, validity["not_after"].name) == ("utc_time", "general_time")
    assert x509.certificate_validity(late) == (datetime(2049, 12, 31), datetime(2051, 1, 1))


def test_openssl_reads_the_profile_and_verifies_each_link(pki, tmp_path):
    for label in ("root", "issuing", "ee"):
        (tmp_path / f"{label}.pem").write_text(pem(pki[label], "CERTIFICATE"))
    text = openssl("x509", "-in", tmp_path / "ee.pem", "-noout", "-text")
    assert text.returncode == 0, text.stderr
    assert "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation" in text.stdout
    assert "Signature Algorithm: SM2-with-SM3" in text.stdout
    assert "URI:http://portal.example/ca/crl" in text.stdout
    # OpenSSL 3.0 `verify` hands -vfyopt only to the target certificate, so each link is checked
    # as a target (the full chain is exercised against the CA service in tests/certificates).
    link1 = openssl("verify", "-CAfile", "root.pem", "-vfyopt", DISTID, "issuing.pem", cwd=tmp_path)
    assert link1.returncode == 0 and "issuing.pem: OK" in link1.stdout, link1.stdout + link1.stderr
    link2 = openssl("verify", "-partial_chain", "-CAfile", "issuing.pem", "-vfyopt", DISTID, "ee.pem", cwd=tmp_path)
    assert link2.returncode == 0 and "ee.pem: OK" in link2.stdout, link2.stdout + link2.stderr
    # And the signature really is made with the default ID, not OpenSSL's empty one.
    assert openssl("verify", "-partial_chain", "-CAfile", "issuing.pem", "ee.pem", cwd=tmp_path).returncode != 0


def test_our_requests_prove_possession_and_openssl_agrees(pki, tmp_path):
    key = pki["ee_key"]
    request = x509.build_csr(name("张伟"), key.public_key, key.sign)
    parsed = asn1_csr.CertificationRequest.load(request)
    assert parsed["signature_algorithm"].dump() == SM2_WITH_SM3_ABSENT_PARAMS
    assert x509.check_csr(request) == key.public_key
    assert x509.csr_subject(request) == "CN=张伟,O=示范大学,C=CN"
    (tmp_path / "ours.csr").write_text(pem(request, "CERTIFICATE REQUEST"))
    result = openssl("req", "-verify", "-in", tmp_path / "ours.csr", "-noout", "-vfyopt", DISTID)
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stderr
    with pytest.raises(x509.X509Error, match="does not verify"):
        x509.build_csr(name("x"), key.public_key, pki["root_key"].sign)


def test_requests_made_by_openssl_are_accepted_and_broken_ones_refused(tmp_path):
    key = PrivateKey.generate()
    (tmp_path / "k.pem").write_text(pem(private_key_to_pkcs8(key), "PRIVATE KEY"))
    made = openssl(
        "req", "-new", "-key", "k.pem", "-sm3", "-sigopt", DISTID, "-subj", "/C=CN/CN=Zhang San", "-out", "good.csr",
        cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    good = (tmp_path / "good.csr").read_bytes()
    assert x509.check_csr(good) == key.public_key  # PEM accepted as well as DER

    der = x509.load_csr(good).dump()
    broken = der[:-3] + bytes([der[-3] ^ 0x01]) + der[-2:]  # flip a bit inside s
    with pytest.raises(x509.X509Error):
        x509.check_csr(broken)
    # Signed with OpenSSL's empty default ID rather than the GM/T one: no proof under the standard.
    openssl("req", "-new", "-key", "k.pem", "-sm3", "-subj", "/CN=x", "-out", "no-id.csr", cwd=tmp_path)
    with pytest.raises(x509.X509Error, match="does not verify"):
        x509.check_csr((tmp_path / "no-id.csr").read_bytes())
    # A request whose key is someone else's than the signer's.
    other = PrivateKey.generate()
    info = x509.load_csr(good)["certification_request_info"].copy()
    swapped = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": x509.load_csr(good)["signature_algorithm"],
            "signature": other.sign(info.dump()),
        }
    ).dump()
    with pytest.raises(x509.X509Error):
        x509.check_csr(swapped)
    with pytest.raises(x509.X509Error):
        x509.check_csr(b"not a request")


def test_crls_carry_numbers_reasons_and_verify(pki, tmp_path):
    revoked = [
        x509.RevokedEntry(x509.certificate_serial(pki["ee"]), NOW, "keyCompromise"),
        x509.RevokedEntry(12345, NOW, "unspecified"),
    ]
    crl = x509.build_crl(
        pki["issuing"],
        pki["issuing_key"].sign,
        crl_number=7,
        this_update=NOW,
        next_update=NOW + timedelta(days=7),
        revoked=revoked,
    )
    parsed = asn1_crl.CertificateList.load(crl)
    assert parsed["tbs_cert_list"]["version"].native == "v2"
    assert parsed["signature_algorithm"].dump() == SM2_WITH_SM3_ABSENT_PARAMS
    assert x509.crl_number(crl) == 7
    assert x509.crl_entries(crl) == {x509.certificate_serial(pki["ee"]): "keyCompromise", 12345: "unspecified"}
    assert x509.crl_validity(crl) == (NOW, NOW + timedelta(days=7))
    # RFC 5280 §5.3.1: no reasonCode entry extension for "unspecified".
    entries = {e["user_certificate"].native: e for e in parsed["tbs_cert_list"]["revoked_certificates"]}
    assert entries[12345]["crl_entry_extensions"].native is None
    assert x509.verify_crl(crl, pki["issuing_key"].public_key)
    assert not x509.verify_crl(crl, pki["root_key"].public_key)

    empty = x509.build_crl(
        pki["issuing"], pki["issuing_key"].sign, crl_number=1, this_update=NOW, next_update=NOW + timedelta(days=1)
    )
    assert x509.crl_entries(empty) == {}
    assert asn1_crl.CertificateList.load(empty)["tbs_cert_list"]["revoked_certificates"].native is None
    with pytest.raises(x509.X509Error):
        x509.build_crl(
            pki["issuing"], pki["issuing_key"].sign, crl_number=2, this_update=NOW, next_update=NOW, revoked=()
        )
    with pytest.raises(x509.X509Error, match="reason"):
        x509.build_crl(
            pki["issuing"],
            pki["issuing_key"].sign,
            crl_number=2,
            this_update=NOW,
            next_update=NOW + timedelta(days=1),
            revoked=[x509.RevokedEntry(1, NOW, "certificateHold")],
        )

    # OpenSSL reads the list, and its own SM2 code accepts the signature under the default ID.
    (tmp_path / "crl.pem").write_text(pem(crl, "X509 CRL"))
    text = openssl("crl", "-in", tmp_path / "crl.pem", "-noout", "-text")
    assert text.returncode == 0, text.stderr
    assert "X509v3 CRL Number: \n                7" in text.stdout
    assert "Key Compromise" in text.stdout
    (tmp_path / "tbs.der").write_bytes(parsed["tbs_cert_list"].dump())
    (tmp_path / "sig.der").write_bytes(parsed["signature"].native)
    (tmp_path / "issuing.pem").write_text(pem(pki["issuing"], "CERTIFICATE"))
    pub = openssl("x509", "-in", "issuing.pem", "-noout", "-pubkey", cwd=tmp_path)
    (tmp_path / "issuing.pub").write_text(pub.stdout)
    verified = openssl(
        "dgst", "-sm3", "-verify", "issuing.pub", "-sigopt", DISTID, "-signature", "sig.der", "tbs.der", cwd=tmp_path
    )
    assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified.stdout + verified.stderr
