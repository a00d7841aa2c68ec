"""A person's two-party key gets its certificate from a request the phone co-signed, so the
server alone can never obtain a certificate for a key it controls."""

import subprocess

import pytest

from portal.accounts.models import User
from portal.certificates import services as ca
from portal.certificates.models import KeyShare
from portal.cosign.client import CosignClient
from portal.crypto import asn1, cms, x509
from portal.crypto.sm2 import PrivateKey

pytestmark = pytest.mark.both_databases


@pytest.fixture
def phone(app):
    ca.init_ca()
    return CosignClient.enrol(User.create(username="zhangwei", name="张伟"))


def test_a_cosigned_request_gets_a_certificate_for_the_joint_key(phone, tmp_path):
    request = x509.build_csr(ca.person_subject(phone.user), phone.public_key, phone.signer({"purpose": "csr"}))
    certificate = ca.issue_cosign_certificate(phone.key_share, request)
    assert certificate.kind == "cosign" and certificate.user_id == phone.user.id
    assert KeyShare.get_by_id(phone.key_share.id).certificate_id == certificate.id
    assert x509.certificate_public_key(bytes(certificate.der)) == phone.public_key
    assert "张伟" in certificate.subject_dn

    # OpenSSL, given the issuing CA, accepts the certificate made for the two-party key.
    issuing, root = ca.chain()
    (tmp_path / "issuing.pem").write_text(asn1.pem(issuing, "CERTIFICATE"))
    (tmp_path / "me.pem").write_text(asn1.pem(bytes(certificate.der), "CERTIFICATE"))
    result = subprocess.run(
        ["openssl", "verify", "-partial_chain", "-CAfile", tmp_path / "issuing.pem",
         "-vfyopt", "distid:1234567812345678", tmp_path / "me.pem"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.stdout.strip().endswith("OK"), result.stderr


def test_a_request_signed_by_a_key_the_server_alone_holds_is_refused(phone):
    rogue = PrivateKey.generate()
    request = x509.build_csr(ca.person_subject(phone.user), rogue.public_key, lambda tbs: rogue.sign(tbs))
    with pytest.raises(ca.CertificateError):
        ca.issue_cosign_certificate(phone.key_share, request)
    assert KeyShare.get_by_id(phone.key_share.id).certificate_id is None


def test_the_two_party_key_signs_cms_that_verifies_against_its_certificate(phone):
    request = x509.build_csr(ca.person_subject(phone.user), phone.public_key, phone.signer())
    certificate = bytes(ca.issue_cosign_certificate(phone.key_share, request).der)
    signed = cms.sign_detached(certificate, phone.signer({"purpose": "document"}), content=b"%PDF-1.7 ...")
    result = cms.verify(signed, content=b"%PDF-1.7 ...")
    assert result.ok and result.signer_certificate_der == certificate
