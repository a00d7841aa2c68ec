"""The school CA: init, issuing from requests, cosign certificates, revocation and CRLs, the
public endpoints; OpenSSL 3.0 as the independent oracle (always with the GM/T default ID)."""

import shutil
import subprocess
from datetime import timedelta

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from helpers import service_unavailable

from portal import storage
from portal.accounts.models import User
from portal.audit import verify_chain
from portal.audit.models import Event
from portal.certificates import keystore, services
from portal.certificates.models import Certificate, CertificateAuthority, CertificateStatus, KeyShare
from portal.crypto import x509
from portal.crypto.asn1 import pem, private_key_to_pkcs8
from portal.crypto.sm2 import PrivateKey

pytestmark = pytest.mark.both_databases

DISTID = "distid:1234567812345678"


def openssl(*args, cwd=None) -> subprocess.CompletedProcess:
    if shutil.which("openssl") is None:
        service_unavailable("OpenSSL", "no openssl binary on PATH")
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def ca_key(name: str) -> PrivateKey:
    return PrivateKey.from_bytes(keystore.unwrap(CertificateAuthority.get(name=name).wrapped_key, "ca-key"))


def resigned_for_openssl30(der: bytes, key: PrivateKey) -> bytes:
    """The same certificate or CRL, signed again with the empty ID.

    OpenSSL 3.0's `verify` hands -vfyopt distid only to the certificate it is asked about; an
    intermediate certificate's signature and a CRL's signature are checked with the empty ID
    (X509_CRL_verify passes no ID at all), so a correctly made GM/T chain or CRL fails there with
    "certificate signature failure" / "CRL signature failure". Re-signing only the signature
    lets OpenSSL judge everything else: names, key identifiers, constraints, key usage, validity,
    CRL scope and entries. Our real signatures are checked link by link and with `openssl dgst`."""
    try:
        parsed = x509.load_certificate(der)
    except x509.X509Error:
        parsed = x509.load_crl(der)
        tbs = parsed["tbs_cert_list"]
        return asn1_crl.CertificateList(
            {
                "tbs_cert_list": tbs,
                "signature_algorithm": parsed["signature_algorithm"],
                "signature": key.sign(tbs.dump(), b""),
            }
        ).dump()
    tbs = parsed["tbs_certificate"]
    return asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": parsed["signature_algorithm"],
            "signature_value": key.sign(tbs.dump(), b""),
        }
    ).dump()


@pytest.fixture
def ca(app):
    services.init_ca()
    return app


@pytest.fixture
def person(app):
    return User.create(name="张伟", id_number_masked="1101**********1234")


def make_csr(key: PrivateKey, cn: str = "Whoever") -> bytes:
    return x509.build_csr(x509.build_name([("common_name", cn)]), key.public_key, key.sign)


def issue_person(person, kind="cosign") -> tuple[PrivateKey, Certificate]:
    key = PrivateKey.generate()
    return key, services.issue_certificate(make_csr(key), kind=kind, user=person)


# ---------------------------------------------------------------------------------------------
# init


def test_init_creates_a_root_and_an_issuing_ca_with_wrapped_keys(app):
    created = services.init_ca()
    assert [c.kind for c in created] == ["ca", "ca"]
    root, issuing = CertificateAuthority.get(name="root"), CertificateAuthority.get(name="issuing")
    root_der, issuing_der = bytes(root.certificate.der), bytes(issuing.certificate.der)
    assert root.certificate.issuer_id is None and issuing.certificate.issuer_id == root.certificate_id
    # The root's own signature is checked by us (OpenSSL skips it: gotcha #2).
    assert x509.verify_certificate(root_der, ca_key("root").public_key)
    assert x509.verify_certificate(issuing_der, ca_key("root").public_key)
    assert x509.certificate_key_usage(issuing_der) == {"key_cert_sign", "crl_sign"}
    assert root.certificate.not_after - root.certificate.not_before > timedelta(days=19 * 365)
    assert issuing.certificate.not_after <= root.certificate.not_after
    assert services.chain() == [issuing_der, root_der]
    # Each CA publishes its first CRL at init.
    for authority in (root, issuing):
        assert authority.crl_number == 1 and authority.crl_updated_at is not None
        crl = storage.load(authority.crl_blob)
        assert x509.verify_crl(crl, x509.certificate_public_key(bytes(authority.certificate.der)))
        assert x509.crl_entries(crl) == {}
    assert Event.select().where(Event.action == "ca.created").count() == 2
    assert verify_chain()[1] == []


def test_the_ca_key_rows_hold_no_unwrapped_key(ca):
    for authority in CertificateAuthority.select():
        secret = ca_key(authority.name).to_bytes()
        assert secret not in bytes(authority.wrapped_key)
        assert bytes(authority.wrapped_key).startswith(keystore.MAGIC)
        row = authority.__data__
        for value in row.values():
            data = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            assert secret not in data and secret.hex().encode() not in data.lower()
        # The wrapping is bound to its purpose: the same blob is no organisation key.
        with pytest.raises(keystore.KeyStoreError):
            keystore.unwrap(authority.wrapped_key, "org-key")


def test_init_twice_changes_nothing(ca):
    def snapshot():
        return (
            [(c.name, bytes(c.wrapped_key), c.crl_number, c.crl_blob) for c in CertificateAuthority.select()],
            [(c.serial, bytes(c.der)) for c in Certificate.select().order_by(Certificate.id)],
            Event.select().count(),
        )

    before = snapshot()
    assert services.init_ca() == []
    assert snapshot() == before


def test_the_cli_initialises_once_and_says_so(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["ca", "init"])
    assert first.exit_code == 0 and first.output.count("created ") == 2 and "Root CA" in first.output
    second = runner.invoke(args=["ca", "init"])
    assert second.exit_code == 0 and "already initialised" in second.output
    assert CertificateAuthority.select().count() == 2


def test_nothing_is_issued_before_init(app, person):
    with pytest.raises(services.CANotInitialised):
        issue_person(person)
    with pytest.raises(services.CANotInitialised):
        services.chain()


# ---------------------------------------------------------------------------------------------
# issuing


def test_openssl_accepts_our_chain(ca, person, tmp_path):
    _, cert = issue_person(person)
    root, issuing = (bytes(CertificateAuthority.get(name=n).certificate.der) for n in ("root", "issuing"))
    (tmp_path / "root.pem").write_text(pem(root, "CERTIFICATE"))
    (tmp_path / "issuing.pem").write_text(pem(issuing, "CERTIFICATE"))
    (tmp_path / "ee.pem").write_text(pem(bytes(cert.der), "CERTIFICATE"))
    # Each real signature, as the target of `verify`: root → issuing, issuing → end entity.
    link = openssl("verify", "-CAfile", "root.pem", "-vfyopt", DISTID, "issuing.pem", cwd=tmp_path)
    assert link.returncode == 0, link.stdout + link.stderr
    link = openssl("verify", "-partial_chain", "-CAfile", "issuing.pem", "-vfyopt", DISTID, "ee.pem", cwd=tmp_path)
    assert link.returncode == 0, link.stdout + link.stderr
    # The whole three-level path (see resigned_for_openssl30 for why the intermediate is re-signed).
    (tmp_path / "issuing30.pem").write_text(pem(resigned_for_openssl30(issuing, ca_key("root")), "CERTIFICATE"))
    path = openssl(
        "verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "issuing30.pem", "-vfyopt", DISTID, "ee.pem",
        cwd=tmp_path,
    )  # fmt: skip
    assert path.returncode == 0 and "ee.pem: OK" in path.stdout, path.stdout + path.stderr


def test_a_request_made_by_openssl_gets_a_certificate_named_from_the_database(ca, person, tmp_path):
    key = PrivateKey.generate()
    (tmp_path / "k.pem").write_text(pem(private_key_to_pkcs8(key), "PRIVATE KEY"))
    made = openssl(
        "req", "-new", "-key", "k.pem", "-sm3", "-sigopt", DISTID, "-subj", "/C=US/O=Evil Corp/CN=Root Admin",
        "-out", "req.csr", cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    cert = services.issue_certificate((tmp_path / "req.csr").read_bytes(), kind="cosign", user=person)

    der = bytes(cert.der)
    # The CSR's claimed name is ignored: the subject is the person as the database knows them.
    assert cert.subject_dn == "serialNumber=1101**********1234,CN=张伟,O=示范大学,C=CN"
    assert x509.certificate_subject(der) == cert.subject_dn
    assert cert.public_key == key.public_key.hex() and cert.kind == "cosign" and cert.user_id == person.id
    assert cert.serial == x509.serial_hex(x509.certificate_serial(der))
    assert (cert.not_before, cert.not_after) == x509.certificate_validity(der)
    assert x509.verify_certificate(der, ca_key("issuing").public_key)
    event = Event.get(Event.action == "certificate.issued")
    assert event.subject == f"certificate:{cert.public_id}" and event.data["serial"] == cert.serial

    (tmp_path / "ee.pem").write_text(pem(der, "CERTIFICATE"))
    text = openssl("x509", "-in", "ee.pem", "-noout", "-text", cwd=tmp_path)
    assert "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation" in text.stdout
    assert "URI:http://127.0.0.1:8000/ca/crl" in text.stdout


def test_a_request_with_a_broken_signature_is_refused(ca, person, tmp_path):
    key = PrivateKey.generate()
    good = make_csr(key)
    broken = good[:-3] + bytes([good[-3] ^ 0x01]) + good[-2:]
    with pytest.raises(services.CertificateError):
        services.issue_certificate(broken, kind="cosign", user=person)
    # Signed by OpenSSL without the GM/T default ID: not a proof under the standard either.
    (tmp_path / "k.pem").write_text(pem(private_key_to_pkcs8(key), "PRIVATE KEY"))
    openssl("req", "-new", "-key", "k.pem", "-sm3", "-subj", "/CN=x", "-out", "no-id.csr", cwd=tmp_path)
    with pytest.raises(services.CertificateError):
        services.issue_certificate((tmp_path / "no-id.csr").read_bytes(), kind="cosign", user=person)
    assert Certificate.select().where(Certificate.kind != "ca").count() == 0
    assert not Event.select().where(Event.action == "certificate.issued").exists()


def test_an_external_signer_is_not_named_a_member_of_the_school(ca):
    outsider = User.create(name="李四", is_external=True, id_number_masked="3301**********0021")
    _, cert = issue_person(outsider, kind="event")
    assert cert.subject_dn == "serialNumber=3301**********0021,CN=李四,C=CN"
    assert cert.not_after - cert.not_before <= timedelta(days=1, minutes=5)


def test_a_key_certified_for_one_person_is_not_certified_for_another(ca, person):
    key, _ = issue_person(person)
    other = User.create(name="王五")
    with pytest.raises(services.CertificateError):
        services.issue_certificate(make_csr(key), kind="cosign", user=other)
    issuing_key = ca_key("issuing")
    with pytest.raises(services.CertificateError):  # nor the CA's own key
        services.issue_certificate(make_csr(issuing_key), kind="cosign", user=person)


def test_the_kind_must_fit_the_subject(ca, person):
    key = PrivateKey.generate()
    with pytest.raises(services.CertificateError):
        services.issue_certificate(make_csr(key), kind="org", user=person)
    with pytest.raises(services.CertificateError):
        services.issue_certificate(make_csr(key), kind="ca", user=person)
    with pytest.raises(services.CertificateError):
        services.issue_certificate(make_csr(key), kind="cosign")


def test_a_cosign_certificate_is_for_exactly_the_joint_key(ca, person):
    joint = PrivateKey.generate()  # stands in for P; the two-party signature verifies as plain SM2
    share = KeyShare.create(user=person, public_key=joint.public_key.hex(), wrapped_share=b"opaque")
    with pytest.raises(services.CertificateError, match="公钥"):
        services.issue_cosign_certificate(share, make_csr(PrivateKey.generate()))
    cert = services.issue_cosign_certificate(share, make_csr(joint))
    assert share.certificate == cert and KeyShare.get_by_id(share.id).certificate_id == cert.id
    assert cert.kind == "cosign" and cert.user_id == person.id and cert.public_key == share.public_key
    with pytest.raises(services.CertificateError):
        services.issue_cosign_certificate(KeyShare.get_by_id(share.id), make_csr(joint))
    assert Certificate.select().where(Certificate.kind == "cosign").count() == 1


# ---------------------------------------------------------------------------------------------
# revocation, CRLs


def test_revocation_is_audited_and_published_in_a_new_crl(ca, person):
    _, cert = issue_person(person)
    admin = User.create(name="管理员", roles="admin")
    before = CertificateAuthority.get(name="issuing").crl_number

    revoked = services.revoke(cert, "keyCompromise", admin)
    assert revoked.status == CertificateStatus.REVOKED and revoked.revocation_reason == "keyCompromise"
    issuing = CertificateAuthority.get(name="issuing")
    assert issuing.crl_number == before + 1
    crl = storage.load(issuing.crl_blob)
    assert x509.crl_number(crl) == before + 1
    assert x509.crl_entries(crl) == {int(cert.serial, 16): "keyCompromise"}
    assert x509.verify_crl(crl, ca_key("issuing").public_key)
    event = Event.get(Event.action == "certificate.revoked")
    assert event.actor_id == admin.id and event.subject == f"certificate:{cert.public_id}"
    assert event.data == {"serial": cert.serial, "reason": "keyCompromise", "crl_number": before + 1}
    assert verify_chain()[1] == []


def test_revocation_refuses_unknown_reasons_twice_revoking_and_the_root(ca, person):
    _, cert = issue_person(person)
    with pytest.raises(services.CertificateError, match="reason"):
        services.revoke(cert, "key_compromise", None)
    with pytest.raises(services.CertificateError, match="reason"):
        services.revoke(cert, "certificateHold", None)
    services.revoke(cert, "superseded", None)
    with pytest.raises(services.CertificateError):
        services.revoke(Certificate.get_by_id(cert.id), "superseded", None)
    with pytest.raises(services.CertificateError):
        services.revoke(CertificateAuthority.get(name="root").certificate, "cACompromise", None)
    assert Event.select().where(Event.action == "certificate.revoked").count() == 1


def test_openssl_rejects_a_revoked_certificate_and_accepts_the_others(ca, person, tmp_path):
    _, kept = issue_person(person)
    _, gone = issue_person(User.create(name="赵六"))
    services.revoke(gone, "affiliationChanged", None)
    crl = services.current_crl()
    issuing = bytes(CertificateAuthority.get(name="issuing").certificate.der)

    # The real CRL's signature, by OpenSSL's SM2 code with the default ID.
    parsed = asn1_crl.CertificateList.load(crl)
    (tmp_path / "tbs.der").write_bytes(parsed["tbs_cert_list"].dump())
    (tmp_path / "sig.der").write_bytes(parsed["signature"].native)
    (tmp_path / "issuing.pem").write_text(pem(issuing, "CERTIFICATE"))
    (tmp_path / "issuing.pub").write_text(
        openssl("x509", "-in", "issuing.pem", "-noout", "-pubkey", cwd=tmp_path).stdout
    )
    dgst = openssl(
        "dgst", "-sm3", "-verify", "issuing.pub", "-sigopt", DISTID, "-signature", "sig.der", "tbs.der", cwd=tmp_path
    )
    assert "Verified OK" in dgst.stdout, dgst.stdout + dgst.stderr

    # Revocation checking (the CRL and the intermediate re-signed as resigned_for_openssl30 explains).
    root = bytes(CertificateAuthority.get(name="root").certificate.der)
    (tmp_path / "root.pem").write_text(pem(root, "CERTIFICATE"))
    (tmp_path / "issuing30.pem").write_text(pem(resigned_for_openssl30(issuing, ca_key("root")), "CERTIFICATE"))
    (tmp_path / "crl.pem").write_text(pem(resigned_for_openssl30(crl, ca_key("issuing")), "X509 CRL"))
    (tmp_path / "kept.pem").write_text(pem(bytes(kept.der), "CERTIFICATE"))
    (tmp_path / "gone.pem").write_text(pem(bytes(gone.der), "CERTIFICATE"))

    def verify(leaf):
        return openssl(
            "verify", "-CAfile", "root.pem", "-untrusted", "issuing30.pem", "-crl_check", "-CRLfile", "crl.pem",
            "-vfyopt", DISTID, leaf, cwd=tmp_path,
        )  # fmt: skip

    accepted = verify("kept.pem")
    assert accepted.returncode == 0 and "kept.pem: OK" in accepted.stdout, accepted.stdout + accepted.stderr
    rejected = verify("gone.pem")
    assert rejected.returncode != 0 and "certificate revoked" in rejected.stdout + rejected.stderr


def test_a_crl_past_half_its_life_is_reissued_when_asked_for(ca):
    issuing = CertificateAuthority.get(name="issuing")
    assert x509.crl_number(services.current_crl()) == issuing.crl_number  # fresh: served as stored
    CertificateAuthority.update(crl_updated_at=issuing.crl_updated_at - services.CRL_REFRESH_AFTER).where(
        CertificateAuthority.id == issuing.id
    ).execute()
    crl = services.current_crl()
    assert x509.crl_number(crl) == issuing.crl_number + 1
    this_update, next_update = x509.crl_validity(crl)
    assert next_update - this_update == services.CRL_LIFETIME
    assert Event.select().where(Event.action == "ca.crl_issued").count() == 3  # two at init, this one


# ---------------------------------------------------------------------------------------------
# public endpoints


def test_the_crl_and_the_chain_are_public_and_parseable(ca, client):
    response = client.get("/ca/crl")
    assert response.status_code == 200 and response.mimetype == "application/pkix-crl"
    issuing = CertificateAuthority.get(name="issuing")
    assert x509.verify_crl(response.data, x509.certificate_public_key(bytes(issuing.certificate.der)))

    response = client.get("/ca/chain")
    assert response.status_code == 200 and response.mimetype == "application/pem-certificate-chain"
    certs = [der for _, _, der in asn1_pem.unarmor(response.data, multiple=True)]
    assert certs == services.chain()
    assert [x509.certificate_subject(der).split(",")[0] for der in certs] == [
        "CN=示范大学 SM2 Issuing CA",
        "CN=示范大学 SM2 Root CA",
    ]


def test_the_endpoints_answer_404_before_init(client):
    assert client.get("/ca/crl").status_code == 404
    assert client.get("/ca/chain").status_code == 404
