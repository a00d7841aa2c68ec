"""The server side of two-party SM2 over the database: a key share is stored wrapped, a session
signs exactly one digest the server computed itself, answers once, refuses bad points, bad proofs,
reused nonces, wrong signatures and expired sessions, and audits every state change."""

from datetime import timedelta

import pytest

from portal import audit
from portal.accounts.models import User
from portal.audit.models import Event
from portal.certificates import keystore
from portal.certificates.models import KeyShare
from portal.cosign import protocol
from portal.cosign.client import CosignClient
from portal.cosign.models import CosignSession
from portal.cosign.protocol import SessionStatus
from portal.crypto.sm2 import SM2P256, N, PrivateKey, PublicKey, decode_signature, encode_signature, random_scalar
from portal.crypto.sm2_2p import ClientShare, keygen_context, sign_context
from portal.db import utcnow

pytestmark = pytest.mark.both_databases


# Two plain users, not the demo school: these tests need nothing else, and stay fast.
@pytest.fixture
def user(app):
    User.create(username="liuyang", name="刘洋")
    return User.create(username="zhangwei", name="张伟")


@pytest.fixture
def phone(user):
    return CosignClient.enrol(user)


def reload(session: CosignSession) -> CosignSession:
    return CosignSession.get_by_id(session.id)


def answer(phone: CosignClient, session: CosignSession, k1: int | None = None):
    """Step 1 and 2: the phone's nonce (k1 fixed only to play a broken phone) and the server's reply."""
    nonce = phone.share.begin_sign(sign_context(session.token, int(session.digest, 16)), k1=k1)
    return nonce, protocol.answer(session.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())


def last_event() -> Event:
    return Event.select().order_by(Event.seq.desc()).get()


def actions() -> list[str]:
    return [event.action for event in Event.select().order_by(Event.seq)]


def server_share(key_share: KeyShare) -> bytes:
    return keystore.unwrap(KeyShare.get_by_id(key_share.id).wrapped_share, "key-share")


# --- key generation -----------------------------------------------------------------------------


def test_keygen_stores_the_server_share_only_wrapped(user, phone):
    row = KeyShare.get_by_id(phone.key_share.id)
    d2 = server_share(row)
    for value in row.__data__.values():
        stored = value.hex() if isinstance(value, bytes | memoryview) else str(value)
        assert d2.hex() not in stored.lower()
    assert d2 not in bytes(row.wrapped_share)
    assert (row.user_id, row.certificate_id) == (user.id, None)


def test_the_joint_key_is_d_times_g_with_d_the_inverse_of_d1_d2_minus_one(phone):
    d1 = int.from_bytes(phone.share.to_bytes(), "big")
    d2 = int.from_bytes(server_share(phone.key_share), "big")
    joint = PrivateKey((pow(d1 * d2, -1, N) - 1) % N).public_key
    assert joint == phone.public_key == PublicKey.from_hex(phone.key_share.public_key)


def test_keygen_is_audited_with_p1_and_p(user, phone):
    event = Event.get(Event.action == "cosign.key_generated")
    assert event.subject == f"key_share:{phone.key_share.public_id}"
    assert event.actor_id == user.id
    assert event.data == {"p1": phone.share.p1.hex(), "public_key": phone.public_key.hex()}


def test_keygen_refuses_a_proof_made_for_another_user(user):
    share = ClientShare.generate()
    proof = share.keygen_proof(keygen_context("someone-else")).to_bytes()
    with pytest.raises(protocol.InvalidProof):
        protocol.create_key_share(user, share.p1.to_bytes(), proof)
    with pytest.raises(protocol.InvalidProof):
        protocol.create_key_share(user, share.p1.to_bytes(), proof[:-1])
    assert KeyShare.select().count() == 0


def test_keygen_refuses_p1_off_the_curve(user):
    share = ClientShare.generate()
    off_curve = b"\x04" + SM2P256.gx.to_bytes(32, "big") + (SM2P256.gy + 1).to_bytes(32, "big")
    with pytest.raises(protocol.InvalidPoint):
        protocol.create_key_share(user, off_curve, share.keygen_proof(keygen_context(user.public_id)).to_bytes())
    assert KeyShare.select().count() == 0


# --- a whole signature --------------------------------------------------------------------------


def test_a_two_party_signature_verifies_with_plain_sm2(phone):
    message = "同意《实验室安全责任书》".encode()
    der = phone.sign(message, {"purpose": "test"})
    assert phone.public_key.verify(message, der)
    session = CosignSession.get(CosignSession.signature == der.hex())
    assert session.status == SessionStatus.COMPLETED and session.completed_at is not None
    assert session.context == {"purpose": "test"}
    signed = Event.get(Event.action == "cosign.signed")
    r, s = decode_signature(der)
    assert signed.data == {"session": session.id, "digest": session.digest, "r": f"{r:064x}", "s": f"{s:064x}"}
    assert actions()[-3:] == ["cosign.session_opened", "cosign.session_answered", "cosign.signed"]
    assert audit.verify_chain()[1] == []


def test_the_signer_signs_arbitrary_bytes_with_the_two_party_key(phone):
    """What the CSR proof of possession will use: a callable from bytes to a DER signature."""
    sign = phone.signer({"purpose": "csr"})
    data = bytes(range(256)) * 3
    assert phone.public_key.verify(data, sign(data))


def test_the_server_computes_the_digest_itself(user, phone):
    message = b"the stored document"
    session = protocol.open_session(user, phone.key_share, message)
    assert int(session.digest, 16) == phone.public_key.digest(message)
    assert session.status == SessionStatus.OPEN
    assert session.expires_at - session.created_at == protocol.SESSION_LIFETIME
    opened = Event.get(Event.action == "cosign.session_opened")
    assert opened.data["digest"] == session.digest


def test_a_session_needs_the_users_own_key_share(phone):
    other = User.get(User.username == "liuyang")
    with pytest.raises(protocol.NotYourKey):
        protocol.open_session(other, phone.key_share, b"m")


def test_a_locked_key_share_cannot_sign(user, phone):
    KeyShare.update(locked_at=utcnow()).where(KeyShare.id == phone.key_share.id).execute()
    with pytest.raises(protocol.KeyShareLocked):
        protocol.open_session(user, KeyShare.get_by_id(phone.key_share.id), b"m")


def test_an_unknown_token_is_refused(app):
    with pytest.raises(protocol.SessionNotFound):
        protocol.answer("no-such-token", b"", b"")


# --- the server's checks ------------------------------------------------------------------------

G_BYTES = SM2P256.gx.to_bytes(32, "big") + SM2P256.gy.to_bytes(32, "big")


def test_answer_refuses_q1_off_the_curve_or_at_infinity(user, phone):
    refused = {
        "off the curve": b"\x04" + G_BYTES[:32] + (SM2P256.gy + 1).to_bytes(32, "big"),
        "zero coordinates": b"\x04" + bytes(64),
        "infinity": b"\x00",
        "truncated": b"\x04" + G_BYTES[:-1],
        "compressed": b"\x02" + G_BYTES[:32],
    }
    for name, q1 in refused.items():
        session = protocol.open_session(user, phone.key_share, b"m")
        with pytest.raises(protocol.InvalidPoint):
            protocol.answer(session.token, q1, phone.commit(session).proof.to_bytes())
        assert reload(session).status == SessionStatus.FAILED, name
        assert last_event().data == {"session": session.id, "reason": "InvalidPoint"}, name


def test_answer_refuses_a_bad_proof_of_knowledge(user, phone):
    first = protocol.open_session(user, phone.key_share, b"m")
    second = protocol.open_session(user, phone.key_share, b"m")
    nonce = phone.commit(first)  # bound to the first session: useless in the second
    with pytest.raises(protocol.InvalidProof):
        protocol.answer(second.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())
    assert reload(second).status == SessionStatus.FAILED


def test_a_session_answers_only_once(user, phone):
    """A replayed answer is refused, and does not stop the genuine phone from finishing."""
    session = protocol.open_session(user, phone.key_share, b"m")
    nonce, response = answer(phone, session)
    with pytest.raises(protocol.SessionClosed):
        protocol.answer(session.token, nonce.q1.to_bytes(), nonce.proof.to_bytes())
    fresh = phone.commit(session)
    with pytest.raises(protocol.SessionClosed):
        protocol.answer(session.token, fresh.q1.to_bytes(), fresh.proof.to_bytes())
    protocol.complete(session.token, phone.finish(session, nonce, response))
    assert reload(session).status == SessionStatus.COMPLETED


def test_a_q1_already_used_with_this_key_share_is_refused(user, phone):
    """A phone that repeats k1 would give the server d1 (weakness B); the unique index stops it."""
    k1 = random_scalar()
    first = protocol.open_session(user, phone.key_share, b"first")
    answer(phone, first, k1=k1)
    second = protocol.open_session(user, phone.key_share, b"second")
    with pytest.raises(protocol.NonceReused):
        answer(phone, second, k1=k1)
    assert reload(second).status == SessionStatus.FAILED
    assert reload(first).status == SessionStatus.ANSWERED
    assert Event.get(Event.action == "cosign.session_failed").data["reason"] == "NonceReused"


def test_a_session_signs_exactly_one_digest(user, phone):
    """A valid two-party signature over another message does not complete this session."""
    session = protocol.open_session(user, phone.key_share, b"the document")
    answer(phone, session)
    other = phone.sign(b"another document")
    with pytest.raises(protocol.InvalidSignature):
        protocol.complete(session.token, other)
    assert reload(session).status == SessionStatus.FAILED


def test_a_completed_session_takes_no_further_step(user, phone):
    session = protocol.open_session(user, phone.key_share, b"m")
    der = phone.sign_session(session)
    with pytest.raises(protocol.SessionClosed):
        answer(phone, session)
    with pytest.raises(protocol.SessionClosed):
        protocol.complete(session.token, der)
    assert reload(session).signature == der.hex()


def test_complete_refuses_a_signature_that_does_not_verify(user, phone):
    def signed_session():
        session = protocol.open_session(user, phone.key_share, b"m")
        nonce, response = answer(phone, session)
        return session, decode_signature(phone.finish(session, nonce, response))

    tampered = {
        "s + 1": lambda r, s: encode_signature(r, s % (N - 1) + 1),
        "not DER": lambda r, s: b"\x30\x00garbage",
        # r with a redundant leading zero byte: the same (r, s), but not the one DER encoding.
        "non-minimal DER": lambda r, s: (
            b"\x30\x47\x02\x22\x00\x00" + r.to_bytes(32, "big") + b"\x02\x21\x00" + s.to_bytes(32, "big")
        ),
    }
    for name, tamper in tampered.items():
        session, (r, s) = signed_session()
        with pytest.raises(protocol.InvalidSignature):
            protocol.complete(session.token, tamper(r, s))
        failed = reload(session)
        assert (failed.status, failed.signature) == (SessionStatus.FAILED, None), name
        assert last_event().data == {"session": session.id, "reason": "InvalidSignature"}, name


def test_complete_before_answer_is_refused(user, phone):
    session = protocol.open_session(user, phone.key_share, b"m")
    with pytest.raises(protocol.SessionClosed):
        protocol.complete(session.token, b"\x30\x00")
    assert reload(session).status == SessionStatus.OPEN


@pytest.mark.parametrize("step", ["answer", "complete"])
def test_an_expired_session_is_refused(user, phone, step):
    session = protocol.open_session(user, phone.key_share, b"m")
    if step == "complete":
        nonce, response = answer(phone, session)
        der = phone.finish(session, nonce, response)
    CosignSession.update(expires_at=utcnow() - timedelta(seconds=1)).where(CosignSession.id == session.id).execute()
    with pytest.raises(protocol.SessionExpired):
        answer(phone, session) if step == "answer" else protocol.complete(session.token, der)
    assert reload(session).status == SessionStatus.EXPIRED
    assert last_event().action == "cosign.session_expired"
    with pytest.raises(protocol.SessionExpired):
        answer(phone, session)


def test_audit_data_never_holds_a_share(phone):
    phone.sign(b"m")
    d1, d2 = phone.share.to_bytes().hex(), server_share(phone.key_share).hex()
    for event in Event.select():
        assert d1 not in str(event.data) and d2 not in str(event.data)
    assert audit.verify_chain()[1] == []
