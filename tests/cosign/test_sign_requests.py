"""Confirming sign requests (待签署) on the phone: what the person sees, one two-party signature
per entry that verifies against their certificate, pending → signing → done, once only; failed
when the phone misbehaves; expired after its time."""

from datetime import timedelta

import pytest
from cosign_phone import PIN, make_request, make_task

from portal.accounts.models import User
from portal.audit.models import Event
from portal.cosign import protocol, services
from portal.cosign.models import CosignSession
from portal.crypto import x509
from portal.crypto.sm2 import PrivateKey
from portal.db import utcnow
from portal.signing.models import SignRequest

pytestmark = pytest.mark.both_databases

MESSAGES = [b"\x31\x18signed attributes of the first file", b"\x31\x18signed attributes of the second file"]


def reload(request: SignRequest) -> SignRequest:
    return SignRequest.get_by_id(request.id)


def test_the_request_stores_the_contract_and_describes_itself(participant):
    request = make_request(participant, MESSAGES)
    assert request.digests == [
        {"message": MESSAGES[0].hex(), "label": "第 1 处签名"},
        {"message": MESSAGES[1].hex(), "label": "第 2 处签名"},
    ]
    assert (request.status, request.user_id) == ("pending", participant.user_id)
    summary = services.describe(request)
    assert summary.title == "实验室安全责任书" and summary.initiator == "张伟"
    assert summary.documents == ["合同.pdf", "附件一.pdf"] and summary.seal_count == 2
    assert summary.labels == ["第 1 处签名", "第 2 处签名"] and not summary.expired
    with pytest.raises(ValueError):
        services.create_sign_request(participant, participant.user, [])


def test_confirming_signs_every_entry_and_the_signatures_verify_against_the_certificate(phone, participant):
    request = make_request(participant, MESSAGES)
    phone.confirm(request)

    request = reload(request)
    assert request.status == "done" and request.completed_at is not None
    certificate = services.signing_certificate(request)
    assert certificate.id == phone.certificate.id
    public_key = x509.certificate_public_key(bytes(certificate.der))
    signatures = services.signatures_for(request)
    assert len(signatures) == 2
    for message, signature in zip(MESSAGES, signatures, strict=True):
        assert public_key.verify(message, signature)
    assert not public_key.verify(MESSAGES[0], signatures[1])
    contexts = [s.context for s in CosignSession.select().where(CosignSession.signature.is_null(False))]
    assert {"sign_request": request.token, "index": 1} in contexts
    actions = [e.action for e in Event.select().order_by(Event.seq)]
    assert actions.index("sign_request.confirmed") < actions.index("sign_request.done")


def test_confirming_twice_signs_once(phone, participant):
    request = make_request(participant, MESSAGES)
    phone.confirm(request)
    again = phone.confirm(request)
    assert again.sessions == [] and again.request.status == "done"
    completed = [s for s in services._sessions_of(request) if s.status == "completed"]
    assert len(completed) == 2
    assert Event.select().where(Event.action == "sign_request.done").count() == 1


def test_an_interrupted_run_is_superseded_and_each_entry_signed_once(phone, participant):
    request = make_request(participant, MESSAGES)
    phone.unlock(PIN)
    first = services.start_signing(phone.user, request.token)
    (_, _, done_session), (_, _, cut_session) = first.sessions
    phone.run(done_session)  # entry 0 signed; entry 1 answered, then the phone lost the page
    nonce, response = phone.commit(cut_session)
    assert reload(request).status == "signing"

    second = services.start_signing(phone.user, request.token)
    assert [index for index, _, _ in second.sessions] == [1]  # entry 0 is not signed again
    with pytest.raises(protocol.SessionClosed):  # the old run cannot finish any more
        services.complete(phone.user, cut_session.token, phone.finish(cut_session, nonce, response))
    phone.run(second.sessions[0][2])
    assert reload(request).status == "done"
    assert [s.status for s in services._sessions_of(request)] == ["completed", "failed", "completed"]
    assert len(services.signatures_for(request)) == 2


def test_the_pending_list_shows_the_persons_open_requests_only(phone, participant, other):
    mine = make_request(participant)
    make_request(make_task(phone.user, other))  # someone else's
    old = make_request(participant, lifetime=timedelta(seconds=-1))  # already expired
    done = make_request(participant)
    phone.confirm(done)
    newest = make_request(participant)
    assert [r.id for r in services.pending_requests(phone.user)] == [newest.id, mine.id]
    assert old.id not in [r.id for r in services.pending_requests(phone.user)]


def test_an_expired_request_cannot_be_signed(phone, participant):
    request = make_request(participant)
    SignRequest.update(expires_at=utcnow() - timedelta(seconds=1)).where(SignRequest.id == request.id).execute()
    assert services.describe(reload(request)).expired
    with pytest.raises(services.SignRequestClosed, match="已过期"):
        services.start_signing(phone.user, request.token)
    assert reload(request).status == "expired"
    with pytest.raises(services.SignRequestClosed, match="尚未完成"):
        services.signatures_for(request)


def test_a_wrong_signature_fails_the_request(phone, participant):
    request = make_request(participant)
    phone.unlock(PIN)
    ((_, _, session),) = services.start_signing(phone.user, request.token).sessions
    phone.commit(session)
    forged = PrivateKey.generate().sign(b"signed attributes 1")
    with pytest.raises(protocol.InvalidSignature):
        services.complete(phone.user, session.token, forged)
    request = reload(request)
    assert request.status == "failed" and request.error
    with pytest.raises(services.SignRequestClosed, match="签署失败"):
        services.start_signing(phone.user, request.token)


def test_a_bad_proof_fails_the_request(phone, participant):
    request = make_request(participant)
    ((_, _, session),) = services.start_signing(phone.user, request.token).sessions
    nonce = phone.share.begin_sign(b"a context for another session")
    with pytest.raises(protocol.InvalidProof):
        services.answer(phone.user, session.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())
    assert reload(request).status == "failed"


def test_someone_else_cannot_see_or_run_the_request(phone, participant, other):
    request = make_request(participant)
    with pytest.raises(services.SignRequestNotFound):
        services.start_signing(other, request.token)
    ((_, _, session),) = services.start_signing(phone.user, request.token).sessions
    with pytest.raises(protocol.SessionNotFound):
        services.answer(other, session.token, b"", b"")
    assert reload(request).status == "signing"


def test_a_person_without_a_certificate_cannot_start(person, participant):
    request = make_request(participant)
    with pytest.raises(services.NoCertificate):
        services.start_signing(person, request.token)
    assert reload(request).status == "pending"


def test_a_person_whose_verification_was_withdrawn_cannot_sign(phone, participant):
    request = make_request(participant)
    User.update(real_name_status="rejected").where(User.id == phone.user.id).execute()
    with pytest.raises(services.NotVerified, match="实名认证"):
        services.start_signing(User.get_by_id(phone.user.id), request.token)
    assert reload(request).status == "pending"
