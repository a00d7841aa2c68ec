"""Activation (激活绑定个人证书): a one-time code from the PC, the phone's half of a new two-party
key, a certificate request the phone co-signs, and the certificate. Only for a verified person,
only with their own code, once, within ten minutes."""

from datetime import timedelta

import pytest
from cosign_phone import PIN, Phone, make_person, verifier_of

from portal import audit
from portal.accounts.models import OneTimeCode
from portal.audit.models import Event
from portal.certificates import keystore
from portal.certificates import services as ca
from portal.certificates.models import Certificate, KeyShare
from portal.cosign import protocol, services
from portal.crypto import x509
from portal.crypto.sm2_2p import ClientShare, keygen_context
from portal.db import utcnow

pytestmark = pytest.mark.both_databases


def test_a_verified_person_activates_and_gets_a_certificate_for_the_joint_key(person):
    code = services.issue_activation_code(person)
    assert len(code.code) == services.CODE_LENGTH and set(code.code) <= set(services.CODE_ALPHABET)
    assert code.expires_at - utcnow() <= services.ACTIVATION_LIFETIME

    phone = Phone(person)
    activation = phone.activate(code.code)

    certificate = phone.certificate
    assert certificate.kind == "cosign" and certificate.user_id == person.id
    assert x509.certificate_public_key(bytes(certificate.der)) == phone.public_key
    assert "CN=张伟" in certificate.subject_dn and "1101**********1234" in certificate.subject_dn
    issuing = x509.load_certificate(ca.chain()[0])
    assert x509.verify_certificate(bytes(certificate.der), x509.certificate_public_key(issuing))
    share = KeyShare.get_by_id(activation.key_share.id)
    assert share.certificate_id == certificate.id
    assert services.current_key_share(person).id == share.id
    # The device secret is stored only wrapped, and it is what activation handed the phone.
    assert keystore.unwrap(share.wrapped_device_secret, "device-secret") == activation.device_secret
    assert activation.device_secret not in bytes(share.wrapped_device_secret)
    assert OneTimeCode.get_by_id(code.id).used_at is not None
    actions = [e.action for e in Event.select().order_by(Event.seq)]
    assert actions.index("cosign.activation_code_issued") < actions.index("cosign.activated")
    assert actions[-2:] == ["cosign.signed", "certificate.issued"]
    assert audit.verify_chain()[1] == []


def test_the_certificate_request_is_the_servers_and_signed_by_the_joint_key(person):
    """The server builds the request from the person's record; the phone's co-signature is its
    proof of possession, so the CA certifies P only because both halves signed."""
    phone = Phone(person)
    activation = phone.begin_activation(services.issue_activation_code(person).code)
    info = services.csr_info(activation.key_share)
    assert activation.session.context == {"purpose": "csr", "key_share": activation.key_share.public_id}
    assert activation.session.digest == f"{phone.public_key.digest(info):064x}"
    nonce, response = phone.commit(activation.session)
    der = phone.finish(activation.session, nonce, response)
    request = services.assemble_csr(info, der)
    assert x509.check_csr(request) == phone.public_key
    assert x509.csr_subject(request) == x509.name_to_string(ca.person_subject(person))


def test_an_interrupted_activation_opens_a_new_request_session(person):
    phone = Phone(person)
    activation = phone.begin_activation(services.issue_activation_code(person).code)
    assert services.current_key_share(person) is None  # no certificate yet
    share = services.uncertified_key_share(person, activation.key_share.public_id)
    completion = phone.run(services.open_csr_session(person, share))
    assert completion.certificate.user_id == person.id
    with pytest.raises(services.CosignAppError, match="已有证书"):
        services.open_csr_session(person, KeyShare.get_by_id(share.id))


def test_the_code_expires_after_ten_minutes(person):
    code = services.issue_activation_code(person)
    OneTimeCode.update(expires_at=utcnow() - timedelta(seconds=1)).where(OneTimeCode.id == code.id).execute()
    with pytest.raises(services.InvalidCode, match="已过期"):
        Phone(person).activate(code.code)
    assert KeyShare.select().count() == 0


def test_the_code_works_once(person):
    code = services.issue_activation_code(person).code
    Phone(person).activate(code)
    with pytest.raises(services.InvalidCode, match="已使用"):
        Phone(person).activate(code)
    assert KeyShare.select().count() == 1


def test_someone_elses_code_is_refused(person, other):
    code = services.issue_activation_code(other).code
    with pytest.raises(services.InvalidCode, match="不属于当前登录的账号"):
        Phone(person).activate(code)
    with pytest.raises(services.InvalidCode, match="无效"):
        Phone(person).activate("ABCD2345")
    assert OneTimeCode.get(OneTimeCode.code == code).used_at is None


def test_a_typed_code_may_have_a_dash_spaces_and_lower_case(person):
    code = services.issue_activation_code(person).code
    typed = f" {code[:4].lower()}-{code[4:]} "
    assert services.check_activation_code(person, typed).code == code
    assert services.format_code(code) == f"{code[:4]}-{code[4:]}"


def test_a_new_code_expires_the_previous_one(person):
    first = services.issue_activation_code(person).code
    second = services.issue_activation_code(person).code
    with pytest.raises(services.InvalidCode, match="已过期"):
        services.check_activation_code(person, first)
    assert services.check_activation_code(person, second).code == second


def test_an_unverified_person_gets_no_code_and_cannot_activate(school_ca):
    someone = make_person("sunjing", "孙静", verified=False)
    with pytest.raises(services.NotVerified, match="实名认证"):
        services.issue_activation_code(someone)
    # A code issued while verified stops working if the verification is withdrawn.
    someone.real_name_status = "verified"
    someone.save()
    code = services.issue_activation_code(someone).code
    someone.real_name_status = "rejected"
    someone.save()
    with pytest.raises(services.NotVerified):
        Phone(someone).activate(code)


def test_a_refused_key_generation_does_not_spend_the_code(person):
    code = services.issue_activation_code(person).code
    share = ClientShare.generate()
    wrong_proof = share.keygen_proof(keygen_context("someone-else")).to_bytes()
    with pytest.raises(protocol.InvalidProof):
        services.activate(person, code, share.p1.to_bytes(), wrong_proof, verifier_of(PIN))
    right_proof = share.keygen_proof(keygen_context(person.public_id)).to_bytes()
    with pytest.raises(services.InvalidVerifier):
        services.activate(person, code, share.p1.to_bytes(), right_proof, b"short")
    assert KeyShare.select().count() == 0
    assert services.check_activation_code(person, code)  # still usable
    Phone(person).activate(code)


def test_activating_again_supersedes_the_old_key_and_certificate(phone):
    old_share, old_certificate = phone.key_share, phone.certificate
    new_phone = Phone(phone.user)
    new_phone.activate(services.issue_activation_code(phone.user).code)

    assert services.current_key_share(phone.user).id == new_phone.key_share.id
    old = Certificate.get_by_id(old_certificate.id)
    assert (old.status, old.revocation_reason) == ("revoked", "superseded")
    assert x509.crl_entries(ca.current_crl())[int(old.serial, 16)] == "superseded"
    share = KeyShare.get_by_id(old_share.id)
    assert share.locked_at is not None and share.wrapped_device_secret is None and share.pin_verifier is None
    with pytest.raises(protocol.KeyShareLocked):
        protocol.open_session(phone.user, share, b"anything")
    assert [c.id for c in services.certificate_history(phone.user)] == [new_phone.certificate.id, old.id]
