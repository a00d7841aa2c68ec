"""CMS SignedData, detached: the SM2 profile we build, checked by our verifier and by independent
ones (OpenSSL and gmssl for the signature over DER(SET OF signedAttrs), pyHanko for the structure);
and our verifier checked on CMS that others built (pyHanko with SM2; `cryptography` and pyHanko
with RSA and ECDSA)."""

import asyncio
import hashlib
import shlex
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from asn1crypto import algos, cms, keys, tsp, x509
from cryptography import x509 as pyca_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from gmssl import func as gmssl_func
from gmssl import sm2 as gmssl_sm2
from gmssl import sm3 as gmssl_sm3
from pyhanko.sign.general import extract_certificate_info, extract_signer_info
from pyhanko.sign.signers.pdf_cms import Signer, SimpleSigner
from pyhanko.sign.validation.generic_cms import extract_self_reported_ts, validate_sig_integrity
from pyhanko.sign.validation.utils import extract_message_digest
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.sig_validate import SignatureValidator

from portal.crypto import asn1
from portal.crypto.cms import (
    CMSError,
    InvalidSignatureError,
    NotCMSError,
    assemble,
    prepare_signed_attrs,
    sign_detached,
    verify,
)
from portal.crypto.sm2 import PrivateKey
from portal.crypto.sm3 import sm3

CONTENT = "关于举办学术会议的通知: the bytes a PDF byte range would cover.\n".encode() * 50
SIGNING_TIME = datetime(2025, 3, 14, 9, 26, 53)  # naive UTC, the portal's convention
DISTID = "distid:1234567812345678"


def openssl(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *shlex.split(command)], cwd=cwd, capture_output=True, text=True)


def openssl_ok(command: str, cwd: Path) -> None:
    result = openssl(command, cwd)
    assert result.returncode == 0, result.stderr


@dataclass
class SM2PKI:
    folder: Path
    key: PrivateKey
    cert: bytes  # the signer: issued by the root
    root: bytes  # self-signed


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> SM2PKI:
    """A self-signed SM2 root and a signer certificate it issued, both made by the OpenSSL CLI
    with the default user ID (§2.7 of the standards brief)."""
    folder = tmp_path_factory.mktemp("cms-sm2")
    for command in [
        "genpkey -algorithm SM2 -out root.key",
        "genpkey -algorithm SM2 -out signer.key",
        f"req -new -x509 -key root.key -sm3 -sigopt {DISTID} -subj '/CN=Test SM2 Root' -days 30"
        " -addext basicConstraints=critical,CA:TRUE -out root.crt",
        f"req -new -key signer.key -sm3 -sigopt {DISTID} -subj /CN=Test -out signer.csr",
        # x509 -req must be told the request's ID too, or it cannot check the request's signature
        "x509 -req -in signer.csr -CA root.crt -CAkey root.key -CAcreateserial -sm3"
        f" -sigopt {DISTID} -vfyopt {DISTID} -days 30 -out signer.crt",
        "pkey -in signer.key -pubout -out signer.pub",
    ]:
        openssl_ok(command, folder)

    def der(name: str) -> bytes:
        return asn1.unpem((folder / name).read_bytes())

    return SM2PKI(folder, asn1.private_key_from_der(der("signer.key")), der("signer.crt"), der("root.crt"))


@dataclass
class Signed:
    cms: bytes
    to_be_signed: list[bytes]  # what the signer callback was handed


@pytest.fixture(scope="module")
def signed(pki) -> Signed:
    handed = []

    def sign(data: bytes) -> bytes:
        handed.append(data)
        return pki.key.sign(data)

    # The chain repeats the signer and the root: the CMS must carry each once.
    der = sign_detached(
        pki.cert, sign, chain=[pki.root, pki.cert, pki.root], content=CONTENT, signing_time=SIGNING_TIME
    )
    return Signed(der, handed)


def signer_info_of(der: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(der)["content"]["signer_infos"][0]


def signed_attrs_as_set(signer_info: cms.SignerInfo) -> bytes:
    """DER(SET OF signedAttrs) the way asn1crypto re-tags it (as pyHanko does), independently of
    the byte swap in cms.py."""
    return signer_info["signed_attrs"].untag().dump()


def edited(der: bytes, edit) -> bytes:
    """The CMS with edit(content_info) applied; asn1crypto re-encodes only what changed."""
    content_info = cms.ContentInfo.load(der)
    edit(content_info)
    return content_info.dump()


def gmssl_verify(public_point: bytes, signature: bytes, message: bytes) -> bool:
    """gmssl (pure Python) as the second SM2 oracle. `verify_with_sm3` computes Z_A itself, with
    the default ID hard-wired, and e = SM3(Z_A ‖ message) with its own SM3; with asn1=True it
    takes the DER SEQUENCE{r, s} as hex. The public key is X ‖ Y in hex; it is set after
    construction because the constructor strips a leading "04" with str.lstrip, which would also
    eat leading 0 and 4 digits of X."""
    verifier = gmssl_sm2.CryptSM2(private_key="", public_key="", asn1=True)
    verifier.public_key = public_point[1:].hex()
    return bool(verifier.verify_with_sm3(signature.hex(), message))


# ---------------------------------------------------------------------------------------------
# The SM2 CMS we build


def test_our_sm2_cms_verifies_with_our_verifier(pki, signed):
    result = verify(signed.cms, content=CONTENT)
    assert result.ok and result.message_digest_ok and result.signature_ok and result.reason is None
    assert result.signer_certificate_der == pki.cert
    assert sorted(c.dump() for c in result.certificates) == sorted([pki.cert, pki.root])
    assert (result.digest_algorithm, result.signature_algorithm) == ("sm3", "sm2_sm3")
    assert result.content_type == "data"
    assert result.signing_time == SIGNING_TIME
    assert result.message_digest == sm3(CONTENT)


def test_it_has_the_profiles_structure(pki, signed):
    content_info = cms.ContentInfo.load(signed.cms)
    assert content_info["content_type"].dotted == "1.2.840.113549.1.7.2"
    signed_data = content_info["content"]
    assert signed_data["version"].native == "v1"
    # sm3 with parameters absent, as OpenSSL writes it
    assert [a.dump().hex() for a in signed_data["digest_algorithms"]] == ["300a06082a811ccf55018311"]
    assert signed_data["encap_content_info"].native == {"content_type": "data", "content": None}  # detached
    assert sorted(c.chosen.dump() for c in signed_data["certificates"]) == sorted([pki.cert, pki.root])

    (signer_info,) = signed_data["signer_infos"]
    cert = x509.Certificate.load(pki.cert)
    assert signer_info["version"].native == "v1"
    assert signer_info["sid"].name == "issuer_and_serial_number"
    assert signer_info["sid"].chosen["issuer"] == cert.issuer
    assert signer_info["sid"].chosen["serial_number"].native == cert.serial_number
    assert signer_info["digest_algorithm"].dump().hex() == "300a06082a811ccf55018311"
    # sm2-with-sm3 1.2.156.10197.1.501, parameters absent
    assert signer_info["signature_algorithm"].dump().hex() == "300a06082a811ccf55018375"

    attrs = {a["type"].native: a["values"] for a in signer_info["signed_attrs"]}
    assert set(attrs) == {"content_type", "message_digest", "signing_time"}
    assert [v.native for v in attrs["content_type"]] == ["data"]
    assert [v.native for v in attrs["signing_time"]] == [SIGNING_TIME.replace(tzinfo=UTC)]
    assert attrs["signing_time"][0].name == "utc_time"  # RFC 5652 §11.3: UTCTime through 2049
    assert signer_info["unsigned_attrs"].native is None


def test_the_message_digest_is_sm3_of_the_content(signed):
    """Checked against gmssl's pure-Python SM3, not the OpenSSL one cms.py uses."""
    independent = bytes.fromhex(gmssl_sm3.sm3_hash(gmssl_func.bytes_to_list(CONTENT)))
    (value,) = next(
        a["values"] for a in signer_info_of(signed.cms)["signed_attrs"] if a["type"].native == "message_digest"
    )
    assert value.native == independent


def test_the_signer_callback_gets_exactly_der_set_of_signed_attrs(signed):
    (handed,) = signed.to_be_signed
    assert handed[0] == 0x31  # a universal SET, not the [0] IMPLICIT tag the SignerInfo stores
    assert handed == signed_attrs_as_set(signer_info_of(signed.cms))
    assert handed == signer_info_of(signed.cms)["signed_attrs"].untag().dump(force=True)  # and it is DER


def test_openssl_verifies_the_signature_over_the_signed_attrs(pki, signed):
    signer_info = signer_info_of(signed.cms)
    folder = pki.folder
    (folder / "attrs.der").write_bytes(signed_attrs_as_set(signer_info))
    (folder / "sig.der").write_bytes(signer_info["signature"].native)
    command = f"dgst -sm3 -verify signer.pub -sigopt {DISTID} -signature sig.der attrs.der"
    result = openssl(command, folder)
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stderr

    (folder / "attrs.der").write_bytes(signed_attrs_as_set(signer_info)[:-1] + b"\x00")
    assert openssl(command, folder).returncode != 0  # the oracle does say no


def test_gmssl_verifies_the_signature_over_the_signed_attrs(pki, signed):
    signer_info = signer_info_of(signed.cms)
    point = x509.Certificate.load(pki.cert).public_key["public_key"].native  # 04 ‖ X ‖ Y, as OpenSSL wrote it
    signature, attrs = signer_info["signature"].native, signed_attrs_as_set(signer_info)
    assert gmssl_verify(point, signature, attrs)
    assert not gmssl_verify(point, signature, attrs[:-1] + b"\x00")


def test_the_digest_path_gives_the_same_signed_attrs_as_the_content_path(pki, signed):
    """A PDF signer passes SM3 over the byte range instead of the bytes."""
    by_digest = prepare_signed_attrs(digest=sm3(CONTENT), signing_time=SIGNING_TIME)
    assert by_digest == signed.to_be_signed[0]
    assert verify(signed.cms, digest=sm3(CONTENT)).ok


def test_tampered_content_fails_the_message_digest(signed):
    result = verify(signed.cms, content=CONTENT + b" ")
    assert not result.ok and not result.message_digest_ok and result.signature_ok
    assert "message digest does not match" in result.reason
    result = verify(signed.cms, digest=sm3(b"another document"))
    assert not result.message_digest_ok and result.signature_ok


def test_a_tampered_signature_fails(signed):
    def flip_last_bit(content_info):
        signer_info = content_info["content"]["signer_infos"][0]
        signature = signer_info["signature"].native
        signer_info["signature"] = signature[:-1] + bytes([signature[-1] ^ 1])  # still a DER SEQUENCE{r, s}

    result = verify(edited(signed.cms, flip_last_bit), content=CONTENT)
    assert not result.ok and result.message_digest_ok and not result.signature_ok
    assert result.reason == "the SM2 signature does not verify"


def test_tampered_signed_attrs_fail_the_signature(signed):
    def backdate(content_info):
        attrs = content_info["content"]["signer_infos"][0]["signed_attrs"]
        for attr in attrs:
            if attr["type"].native == "signing_time":
                attr["values"] = [cms.Time(name="utc_time", value=datetime(2020, 1, 1, tzinfo=UTC))]

    result = verify(edited(signed.cms, backdate), content=CONTENT)
    assert result.message_digest_ok and not result.signature_ok
    assert result.signing_time == datetime(2020, 1, 1)


def test_a_signature_from_another_key_fails(signed):
    def resign(content_info):
        signer_info = content_info["content"]["signer_infos"][0]
        signer_info["signature"] = PrivateKey.generate().sign(signed_attrs_as_set(signer_info))

    assert not verify(edited(signed.cms, resign), content=CONTENT).signature_ok


def identified_by_key_id(key_id: bytes):
    """An edit: the SignerInfo names its signer by subjectKeyIdentifier (the sid is not signed)."""

    def edit(content_info):
        signer_info = content_info["content"]["signer_infos"][0]
        signer_info["sid"] = cms.SignerIdentifier(name="subject_key_identifier", value=key_id)

    return edit


@pytest.mark.parametrize("method", ["sha1", "sm3"])
def test_the_signer_is_found_by_a_computed_key_identifier(pki, signed, method):
    """x509 -req wrote no subjectKeyIdentifier extension, so the identifier is matched as RFC 5280
    method 1 (SHA-1) or our certificate profile (SM3, leftmost 160 bits) computes it."""
    cert = x509.Certificate.load(pki.cert)
    assert cert.key_identifier is None
    key_bits = bytes(cert.public_key["public_key"])
    key_id = hashlib.sha1(key_bits).digest() if method == "sha1" else sm3(key_bits)[:20]
    result = verify(edited(signed.cms, identified_by_key_id(key_id)), content=CONTENT)
    assert result.ok and result.signer_certificate_der == pki.cert

    result = verify(edited(signed.cms, identified_by_key_id(bytes(20))), content=CONTENT)
    assert not result.signature_ok and result.signer_certificate is None


def test_the_signer_is_found_by_its_subject_key_identifier_extension(foreign):
    signer = foreign["p256"]
    key_id = x509.Certificate.load(signer.cert).key_identifier
    result = verify(edited(pkcs7_detached(signer), identified_by_key_id(key_id)), content=CONTENT)
    assert result.ok and result.signer_certificate_der == signer.cert


def test_a_missing_signer_certificate_is_reported(signed):
    def other_serial(content_info):
        signer_info = content_info["content"]["signer_infos"][0]
        wanted = signer_info["sid"].chosen
        signer_info["sid"] = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": wanted["issuer"], "serial_number": wanted["serial_number"].native + 1},
        )

    result = verify(edited(signed.cms, other_serial), content=CONTENT)
    assert not result.signature_ok and result.signer_certificate is None
    assert result.reason == "the signer certificate is not in the CMS"


def test_pdf_contents_padding_is_ignored(signed):
    assert verify(signed.cms + bytes(4096), content=CONTENT).ok


def test_detached_without_content_says_so(signed):
    result = verify(signed.cms)
    assert result.signature_ok and not result.message_digest_ok
    assert "neither the content nor its digest" in result.reason


def test_a_digest_of_the_wrong_size_is_reported(signed):
    result = verify(signed.cms, digest=b"\x00" * 20)
    assert not result.message_digest_ok and "20 bytes" in result.reason


@pytest.mark.parametrize(
    "what", ["empty", "text", "cut-short DER", "a certificate", "a data ContentInfo", "half a CMS"]
)
def test_what_is_not_cms_raises(pki, signed, what):
    data = {
        "empty": b"",
        "text": b"not a CMS at all",
        "cut-short DER": b"\x30\x03\x02\x01",
        "a certificate": pki.root,
        "a data ContentInfo": cms.ContentInfo({"content_type": "data", "content": b"x"}).dump(),
        "half a CMS": signed.cms[: len(signed.cms) // 2],
    }[what]
    with pytest.raises(NotCMSError):
        verify(data, content=CONTENT)


# ---------------------------------------------------------------------------------------------
# Building in two halves (the phone co-signs later), and what building refuses


def test_prepare_then_assemble_later(pki):
    to_be_signed = prepare_signed_attrs(digest=sm3(CONTENT), signing_time=datetime(2025, 3, 14, 17, 26, 53, 999))
    # ... stored with the job; the co-signature arrives in another request:
    der = assemble(to_be_signed, pki.key.sign(to_be_signed), pki.cert, [pki.root])
    result = verify(der, content=CONTENT)
    assert result.ok and result.signing_time == datetime(2025, 3, 14, 17, 26, 53)
    assert signed_attrs_as_set(signer_info_of(der)) == to_be_signed


def test_an_aware_signing_time_is_stored_in_utc_and_late_dates_as_generalized_time(pki):
    beijing = datetime(2025, 3, 14, 17, 26, 53, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    der = sign_detached(pki.cert, pki.key.sign, content=CONTENT, signing_time=beijing)
    assert verify(der, content=CONTENT).signing_time == datetime(2025, 3, 14, 17, 26, 53)

    der = sign_detached(pki.cert, pki.key.sign, content=CONTENT, signing_time=datetime(2051, 1, 1))
    (time,) = next(a["values"] for a in signer_info_of(der)["signed_attrs"] if a["type"].native == "signing_time")
    assert time.name == "generalized_time" and verify(der, content=CONTENT).signing_time == datetime(2051, 1, 1)


def test_assemble_refuses_a_signature_that_does_not_verify(pki):
    to_be_signed = prepare_signed_attrs(content=CONTENT, signing_time=SIGNING_TIME)
    with pytest.raises(InvalidSignatureError):
        assemble(to_be_signed, PrivateKey.generate().sign(to_be_signed), pki.cert)
    with pytest.raises(InvalidSignatureError):
        sign_detached(pki.cert, lambda attrs: pki.key.sign(attrs + b"x"), content=CONTENT)


def test_assemble_refuses_what_it_cannot_build(pki, foreign):
    to_be_signed = prepare_signed_attrs(content=CONTENT, signing_time=SIGNING_TIME)
    signature = pki.key.sign(to_be_signed)
    with pytest.raises(CMSError, match="SM2"):
        assemble(to_be_signed, signature, foreign["p256"].cert)
    with pytest.raises(CMSError, match="certificate"):
        assemble(to_be_signed, signature, b"\x30\x00")
    with pytest.raises(CMSError, match="signed attributes"):
        assemble(b"\x31\x00", pki.key.sign(b"\x31\x00"), pki.cert)
    with pytest.raises(ValueError):
        prepare_signed_attrs(content=CONTENT, digest=sm3(CONTENT))
    with pytest.raises(ValueError):
        prepare_signed_attrs(digest=b"\x00" * 20)


def with_signing_certificate(signed_attrs: bytes, cert: bytes) -> bytes:
    """The signed attributes plus signingCertificateV2 (RFC 5035; ESSCertIDv2 with SM3) naming cert."""
    ess = tsp.SigningCertificateV2({"certs": [{"hash_algorithm": {"algorithm": "sm3"}, "cert_hash": sm3(cert)}]})
    attr = cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]})
    return cms.CMSAttributes([*cms.CMSAttributes.load(signed_attrs), attr]).dump()


@pytest.mark.parametrize("named", ["signer", "root"])
def test_a_signing_certificate_attribute_must_name_the_signer(pki, named):
    """assemble keeps attributes it does not write itself; the verifier checks this one."""
    to_be_signed = with_signing_certificate(
        prepare_signed_attrs(content=CONTENT, signing_time=SIGNING_TIME), pki.cert if named == "signer" else pki.root
    )
    result = verify(assemble(to_be_signed, pki.key.sign(to_be_signed), pki.cert, [pki.root]), content=CONTENT)
    if named == "signer":
        assert result.ok, result.reason
    else:
        assert result.message_digest_ok and not result.signature_ok
        assert result.reason == "the signing_certificate_v2 attribute names another certificate than the signer's"


# ---------------------------------------------------------------------------------------------
# GM/T 0010 (GB/T 35275) style


class GmContentInfo(cms.ContentInfo):
    """asn1crypto only knows how to encode a SignedData under the RFC 5652 OID."""

    _oid_specs = {**cms.ContentInfo._oid_specs, "gm_signed_data": cms.SignedData}


def gm_t_0010_cms(pki, *, outer: str, econtent: str, signature_algorithm: str) -> bytes:
    """A CMS in the GM/T 0010 style (its content-type OIDs, the "SM2-1" signature OID, no
    signing time), put together here with asn1crypto alone."""
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [econtent]}),
            cms.CMSAttribute({"type": "message_digest", "values": [sm3(CONTENT)]}),
        ]
    )
    cert = x509.Certificate.load(pki.cert)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number", value={"issuer": cert.issuer, "serial_number": cert.serial_number}
            ),
            "digest_algorithm": {"algorithm": "sm3"},
            "signed_attrs": attrs,
            "signature_algorithm": {"algorithm": signature_algorithm},
            "signature": pki.key.sign(attrs.dump()),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sm3"}],
            "encap_content_info": {"content_type": econtent},
            "certificates": [cert],
            "signer_infos": [signer_info],
        }
    )
    return GmContentInfo({"content_type": outer, "content": signed_data}).dump()


@pytest.mark.parametrize(
    ("outer", "econtent", "signature_algorithm"),
    [
        ("gm_signed_data", "gm_data", "sm2_sign"),
        ("gm_signed_data", "gm_data", "sm2_sm3"),
        ("signed_data", "data", "sm2_sign"),
    ],
)
def test_gm_t_0010_variants_verify(pki, outer, econtent, signature_algorithm):
    der = gm_t_0010_cms(pki, outer=outer, econtent=econtent, signature_algorithm=signature_algorithm)
    assert GmContentInfo.load(der)["content_type"].native == outer
    result = verify(der, content=CONTENT)
    assert result.ok, result.reason
    assert result.content_type == econtent
    assert result.signature_algorithm == signature_algorithm and result.signing_time is None
    assert not verify(der, content=CONTENT[1:]).message_digest_ok


def test_a_content_type_attribute_that_differs_from_the_content_fails(pki):
    def mislabel(content_info):
        content_info["content"]["encap_content_info"]["content_type"] = "data"

    der = edited(gm_t_0010_cms(pki, outer="signed_data", econtent="gm_data", signature_algorithm="sm2_sign"), mislabel)
    result = verify(der, content=CONTENT)
    assert result.message_digest_ok and not result.signature_ok and "content-type attribute" in result.reason


# ---------------------------------------------------------------------------------------------
# pyHanko as a structure oracle, and as an independent SM2 CMS builder


class GmsslSM2Validator(SignatureValidator):
    """Lets pyHanko's own CMS integrity check run on SM2: pyHanko extracts and re-tags the signed
    attributes and compares the message digest; gmssl checks the signature."""

    def validate_signature(self, signature, signed_data, public_key_info, signature_algorithm, context=None):
        assert signature_algorithm["algorithm"].native == "sm2_sm3"
        if not gmssl_verify(public_key_info["public_key"].native, signature, signed_data):
            raise InvalidSignature


def test_pyhanko_reads_our_cms(pki, signed):
    signed_data = cms.ContentInfo.load(signed.cms)["content"]
    signer_info = extract_signer_info(signed_data)
    certs = extract_certificate_info(signed_data)
    assert certs.signer_cert.dump() == pki.cert
    assert [c.dump() for c in certs.other_certs] == [pki.root]
    assert extract_message_digest(signer_info) == sm3(CONTENT)
    assert extract_self_reported_ts(signer_info) == SIGNING_TIME.replace(tzinfo=UTC)

    validator = GmsslSM2Validator()
    assert validate_sig_integrity(signer_info, certs.signer_cert, "data", sm3(CONTENT), validator) == (True, True)
    assert validate_sig_integrity(signer_info, certs.signer_cert, "data", sm3(b"x"), validator) == (False, True)


class PyHankoSM2Signer(Signer):
    """pyHanko's own CMS builder with an SM2 key (§4.6 of the standards brief): pyHanko lays out
    the SignedData and its attributes (it adds CMS algorithm protection and signing-certificate-v2,
    which ours does not write) and hands the DER SET OF signedAttrs to async_sign_raw."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate):
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([cert]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"}),
        )
        self.key = key

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        return self.key.sign(data)


def test_we_verify_a_cms_pyhanko_built_with_sm2(pki):
    signer = PyHankoSM2Signer(pki.key, x509.Certificate.load(pki.cert))
    der = asyncio.run(signer.async_sign_general_data(CONTENT, "sm3", detached=True)).dump()
    types = {a["type"].native for a in signer_info_of(der)["signed_attrs"]}
    assert {"cms_algorithm_protection", "signing_certificate_v2"} <= types
    result = verify(der, content=CONTENT)
    assert result.ok, result.reason
    assert result.signer_certificate_der == pki.cert
    assert not verify(der, content=CONTENT[:-1]).ok


def test_an_algorithm_protection_attribute_that_disagrees_fails(pki):
    signer = PyHankoSM2Signer(pki.key, x509.Certificate.load(pki.cert))
    der = asyncio.run(signer.async_sign_general_data(CONTENT, "sm3", detached=True)).dump()

    def claim_sm2_sign(content_info):
        content_info["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": "sm2_sign"}

    result = verify(edited(der, claim_sm2_sign), content=CONTENT)
    assert not result.signature_ok and "algorithm protection" in result.reason


# ---------------------------------------------------------------------------------------------
# RSA and ECDSA signers, built by `cryptography` (OpenSSL's PKCS7) and by pyHanko


@dataclass
class Foreign:
    key: object  # a `cryptography` private key
    cert: bytes
    hash: hashes.HashAlgorithm
    rsa_padding: padding.AsymmetricPadding | None = None


def self_signed(key, hash_algorithm: hashes.HashAlgorithm) -> bytes:
    name = pyca_x509.Name([pyca_x509.NameAttribute(NameOID.COMMON_NAME, "Foreign Test")])
    now = datetime.now(UTC)
    builder = (
        pyca_x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(pyca_x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(pyca_x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hash_algorithm).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def foreign() -> dict[str, Foreign]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signers = {
        "rsa-pkcs1": Foreign(rsa_key, self_signed(rsa_key, hashes.SHA256()), hashes.SHA256()),
        "rsa-pss": Foreign(
            rsa_key,
            self_signed(rsa_key, hashes.SHA256()),
            hashes.SHA384(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.DIGEST_LENGTH),
        ),
    }
    for name, curve, hash_algorithm in [
        ("p256", ec.SECP256R1(), hashes.SHA256()),
        ("p384", ec.SECP384R1(), hashes.SHA384()),
        ("p521", ec.SECP521R1(), hashes.SHA512()),
    ]:
        key = ec.generate_private_key(curve)
        signers[name] = Foreign(key, self_signed(key, hash_algorithm), hash_algorithm)
    return signers


def pkcs7_detached(signer: Foreign, content: bytes = CONTENT, detached: bool = True) -> bytes:
    cert = pyca_x509.load_der_x509_certificate(signer.cert)
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(cert, signer.key, signer.hash, rsa_padding=signer.rsa_padding)
    options = [pkcs7.PKCS7Options.Binary]  # no S/MIME text canonicalisation (\n -> \r\n) before hashing
    options += [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    return builder.sign(serialization.Encoding.DER, options)


EXPECTED_ALGORITHMS = {
    "rsa-pkcs1": ("sha256", "rsassa_pkcs1v15"),
    "rsa-pss": ("sha384", "rsassa_pss"),
    "p256": ("sha256", "sha256_ecdsa"),
    "p384": ("sha384", "sha384_ecdsa"),
    "p521": ("sha512", "sha512_ecdsa"),
}


@pytest.mark.parametrize("name", list(EXPECTED_ALGORITHMS))
def test_we_verify_rsa_and_ecdsa_cms_from_cryptography(foreign, name):
    signer = foreign[name]
    der = pkcs7_detached(signer)
    result = verify(der, content=CONTENT)
    assert result.ok, result.reason
    assert (result.digest_algorithm, result.signature_algorithm) == EXPECTED_ALGORITHMS[name]
    assert result.signer_certificate_der == signer.cert
    assert result.signing_time is not None

    tampered = verify(der, content=CONTENT.replace(b"PDF", b"PDX"))
    assert not tampered.message_digest_ok and tampered.signature_ok

    def flip_a_bit(content_info):
        signer_info = content_info["content"]["signer_infos"][0]
        signature = bytearray(signer_info["signature"].native)
        signature[len(signature) // 2] ^= 1
        signer_info["signature"] = bytes(signature)

    broken = verify(edited(der, flip_a_bit), content=CONTENT)
    assert broken.message_digest_ok and not broken.signature_ok and "does not verify" in broken.reason


def test_an_attached_signature_is_checked_against_its_own_content(foreign):
    der = pkcs7_detached(foreign["p256"], detached=False)
    assert verify(der).ok
    assert not verify(der, content=b"something else").message_digest_ok


def test_a_key_that_does_not_fit_the_signature_algorithm_fails(foreign):
    der = pkcs7_detached(foreign["p256"])

    def claim_rsa(content_info):
        content_info["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": "sha256_rsa"}

    result = verify(edited(der, claim_rsa), content=CONTENT)
    assert not result.signature_ok and "does not fit" in result.reason


def pyhanko_signed(signer: Foreign, digest_algorithm: str, prefer_pss: bool = False) -> bytes:
    cert = x509.Certificate.load(signer.cert)
    key_der = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    simple = SimpleSigner(
        signing_cert=cert,
        signing_key=keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([cert]),
        prefer_pss=prefer_pss,
    )
    return asyncio.run(simple.async_sign_general_data(CONTENT, digest_algorithm, detached=True)).dump()


@pytest.mark.parametrize(
    ("name", "digest_algorithm", "prefer_pss", "signature_algorithm"),
    [
        ("rsa-pkcs1", "sha256", False, "sha256_rsa"),
        ("rsa-pkcs1", "sha512", True, "rsassa_pss"),
        ("p384", "sha384", False, "sha384_ecdsa"),
    ],
)
def test_we_verify_rsa_and_ecdsa_cms_from_pyhanko(foreign, name, digest_algorithm, prefer_pss, signature_algorithm):
    der = pyhanko_signed(foreign[name], digest_algorithm, prefer_pss)
    result = verify(der, content=CONTENT)
    assert result.ok, result.reason
    assert (result.digest_algorithm, result.signature_algorithm) == (digest_algorithm, signature_algorithm)
    assert not verify(der, content=CONTENT + b"%%EOF").message_digest_ok
