"""The server side of two-party SM2 signing (协同签名), as services over the database.

The math is portal.crypto.sm2_2p; this module decides when it may run and remembers what happened:

* create_key_share(): the phone's P1 and proof in, a KeyShare out. d2 is stored only wrapped
  under the KEK ("key-share"); P1 and P go into the audit log (weakness E: a rogue P is traceable).
* open_session(): one session signs exactly one digest, and the server computes that digest
  e = SM3(Z_A(P) ‖ M) itself from the message; it never takes e from the phone (weakness G).
* answer(): the phone's Q1 and proof in, (r, s2, s3) out, once per session. The session is
  claimed by a conditional UPDATE (status open → answered), so two concurrent answers cannot
  both succeed, and Q1 is unique per key share (a database index), so a phone that repeats k1
  is refused before its share can leak (weakness B).
* complete(): the final DER signature is accepted only if it verifies with plain SM2 against P
  and the session's e.

Sessions expire after SESSION_LIFETIME. A session that receives a bad point, a bad proof, a
reused Q1 or a wrong signature is marked failed, so a misbehaving phone gets no second try on
it; a replay of a step that already happened is refused without touching the session. Every
state change writes its audit event in the same transaction; audit data holds public values only
(points, digests, r, s), never d2, nonces or the phone's s2/s3.
"""

import secrets
from datetime import timedelta

from peewee import IntegrityError

from portal import audit
from portal.certificates import keystore
from portal.certificates.models import KeyShare
from portal.cosign.models import CosignSession
from portal.crypto.sm2 import DEFAULT_ID, PublicKey, SM2Error, decode_signature
from portal.crypto.sm2_2p import (
    SchnorrProof,
    ServerResponse,
    ServerShare,
    TwoPartyError,
    keygen_context,
    sign_context,
)
from portal.crypto.sm3 import sm3
from portal.db import database, utcnow

SESSION_LIFETIME = timedelta(minutes=5)
KEY_SHARE_PURPOSE = "key-share"  # the key store purpose d2 is wrapped under


class SessionStatus:
    OPEN = "open"  # waiting for the phone's Q1
    ANSWERED = "answered"  # (r, s2, s3) sent, waiting for the signature
    COMPLETED = "completed"  # signature verified and stored
    FAILED = "failed"  # the phone sent something the protocol refuses
    EXPIRED = "expired"


class CosignError(Exception):
    """A request the two-party protocol refuses."""


class InvalidPoint(CosignError):
    """P1 or Q1 is not a point of the SM2 group (malformed, off the curve, or infinity)."""


class InvalidProof(CosignError):
    """The proof of knowledge does not verify for this point and this user or session."""


class NotYourKey(CosignError):
    """The key share belongs to someone else."""


class KeyShareLocked(CosignError):
    """The key share is locked (too many failed PIN checks)."""


class SessionNotFound(CosignError):
    """No signing session has this token."""


class SessionExpired(CosignError):
    """The signing session is past its expiry time."""


class SessionClosed(CosignError):
    """The session is not in the state this step needs: a replay, or a step out of order."""


class NonceReused(CosignError):
    """Q1 was already used with this key share: the phone must never reuse k1."""


class InvalidSignature(CosignError):
    """The signature does not verify against the joint key and the session's digest."""


def _point(data: bytes, name: str) -> PublicKey:
    try:
        return PublicKey.from_bytes(bytes(data))
    except (SM2Error, TypeError):
        raise InvalidPoint(f"{name} is not a point on the SM2 curve (65 bytes, uncompressed, not infinity)") from None


def _proof(data: bytes) -> SchnorrProof:
    try:
        return SchnorrProof.from_bytes(bytes(data))
    except (SM2Error, TypeError):
        raise InvalidProof("the proof of knowledge is malformed") from None


def public_key_of(key_share: KeyShare) -> PublicKey:
    """The joint public key P of a key share."""
    return PublicKey.from_hex(key_share.public_key)


def _subject(key_share: KeyShare) -> str:
    return f"key_share:{key_share.public_id}"


# --- key generation -----------------------------------------------------------------------------


def create_key_share(user, p1: bytes, proof: bytes) -> tuple[KeyShare, PublicKey]:
    """Step 2 of key generation for `user`: check the phone's P1 (uncompressed point) and its
    proof of knowledge (made for keygen_context(user.public_id)), pick d2 and store it wrapped.
    Returns the new key share and the joint public key P, which the phone keeps."""
    p1_point, pok = _point(p1, "P1"), _proof(proof)
    try:
        server = ServerShare.keygen(p1_point, pok, keygen_context(user.public_id))
    except TwoPartyError:
        raise InvalidProof("the proof of knowledge for P1 does not verify") from None
    with database.atomic():
        share = KeyShare.create(
            user=user,
            public_key=server.public_key.hex(),
            wrapped_share=keystore.wrap(server.to_bytes(), KEY_SHARE_PURPOSE),
            created_at=utcnow(),
        )
        data = {"p1": p1_point.hex(), "public_key": share.public_key}
        audit.record(user, "cosign.key_generated", _subject(share), data)
    return share, server.public_key


# --- signing ------------------------------------------------------------------------------------


def open_session(
    user, key_share: KeyShare, message: bytes, context: dict | None = None, *, uid: bytes = DEFAULT_ID
) -> CosignSession:
    """A session in which `user` may co-sign `message` with `key_share`, and nothing else: the
    server fixes e = SM3(Z_A(P, uid) ‖ message) here. `context` (JSON) says what is being
    signed, for the caller and the audit log."""
    if key_share.user_id != user.id:
        raise NotYourKey("this key share belongs to another user")
    if key_share.locked_at is not None:
        raise KeyShareLocked("this key share is locked")
    message = bytes(message)
    digest = f"{public_key_of(key_share).digest(message, uid):064x}"
    now = utcnow()
    with database.atomic():
        session = CosignSession.create(
            token=secrets.token_urlsafe(32),
            purpose="sign",
            user=user,
            key_share=key_share,
            digest=digest,
            context=context or {},
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        data = {"session": session.id, "digest": digest, "message_sm3": sm3(message).hex(), "context": session.context}
        audit.record(user, "cosign.session_opened", _subject(key_share), data)
    return session


def get_session(token: str) -> CosignSession:
    session = CosignSession.get_or_none((CosignSession.token == token) & (CosignSession.purpose == "sign"))
    if session is None:
        raise SessionNotFound("no signing session with this token")
    return session


def _move(session: CosignSession, from_status: str, to_status: str, **fields) -> bool:
    """Change the status only if it is still `from_status`; a concurrent step that got there first
    makes this a no-op (False), on SQLite and PostgreSQL alike."""
    query = CosignSession.update(status=to_status, **fields).where(
        (CosignSession.id == session.id) & (CosignSession.status == from_status)
    )
    return query.execute() == 1


def _refusal(session: CosignSession, needed: str) -> CosignError | None:
    """Why the session cannot take a step that needs status `needed`, or None. A live session
    past its expiry is marked expired on the way (the caller commits that before raising)."""
    if session.status in (SessionStatus.OPEN, SessionStatus.ANSWERED) and utcnow() >= session.expires_at:
        if _move(session, session.status, SessionStatus.EXPIRED):
            audit.record(session.user, "cosign.session_expired", _subject(session.key_share), {"session": session.id})
        return SessionExpired("the signing session has expired")
    if session.status == SessionStatus.EXPIRED:
        return SessionExpired("the signing session has expired")
    if session.status != needed:
        return SessionClosed(f"the signing session is {session.status}, not {needed}")
    return None


def _fail(session: CosignSession, from_status: str, error: CosignError) -> None:
    if _move(session, from_status, SessionStatus.FAILED):
        audit.record(
            session.user,
            "cosign.session_failed",
            _subject(session.key_share),
            {"session": session.id, "reason": type(error).__name__},
        )


def _respond(session: CosignSession, q1: bytes, proof: bytes) -> ServerResponse:
    q1_point, pok = _point(q1, "Q1"), _proof(proof)
    e = int(session.digest, 16)
    key_share = session.key_share
    d2 = keystore.unwrap(key_share.wrapped_share, KEY_SHARE_PURPOSE)
    server = ServerShare.from_bytes(d2, public_key_of(key_share))
    try:
        response = server.respond(q1_point, pok, sign_context(session.token, e), e)
    except TwoPartyError:
        raise InvalidProof("the proof of knowledge for Q1 does not verify") from None
    # Claim the session only now; the response is discarded unless the claim succeeds. The
    # savepoint keeps a unique-index violation from aborting the whole transaction on PostgreSQL.
    try:
        with database.atomic():
            claimed = _move(session, SessionStatus.OPEN, SessionStatus.ANSWERED, q1=q1_point.hex())
    except IntegrityError:
        raise NonceReused("Q1 was already used with this key; the phone must pick a fresh nonce") from None
    if not claimed:
        raise SessionClosed("the signing session was already answered")
    audit.record(
        session.user,
        "cosign.session_answered",
        _subject(key_share),
        {"session": session.id, "q1": q1_point.hex(), "r": f"{response.r:064x}"},
    )
    return response


def answer(token: str, q1: bytes, proof: bytes) -> ServerResponse:
    """Step 2 of signing: the phone's Q1 (uncompressed point) and its proof of knowledge (made for
    sign_context(token, e)) in, (r, s2, s3) out. Only once per session."""
    with database.atomic():
        session = get_session(token)
        error = _refusal(session, SessionStatus.OPEN)
        if error is None:
            try:
                response = _respond(session, q1, proof)
            except CosignError as e:
                _fail(session, SessionStatus.OPEN, e)  # a no-op if a concurrent answer won
                error = e
    if error is not None:
        raise error
    return response


def complete(token: str, signature: bytes) -> CosignSession:
    """Step 4 of signing: accept the phone's DER signature only if plain SM2 verifies it against
    the joint key and the session's digest; store it and close the session."""
    with database.atomic():
        session = get_session(token)
        error = _refusal(session, SessionStatus.ANSWERED)
        if error is None:
            der = bytes(signature)
            try:
                r, s = decode_signature(der)
                valid = public_key_of(session.key_share).verify_digest(int(session.digest, 16), r, s)
            except SM2Error:
                valid = False
            if not valid:
                error = InvalidSignature("the signature does not verify against the key and the session's digest")
                _fail(session, SessionStatus.ANSWERED, error)
            elif _move(
                session, SessionStatus.ANSWERED, SessionStatus.COMPLETED, signature=der.hex(), completed_at=utcnow()
            ):
                audit.record(
                    session.user,
                    "cosign.signed",
                    _subject(session.key_share),
                    {"session": session.id, "digest": session.digest, "r": f"{r:064x}", "s": f"{s:064x}"},
                )
                session = CosignSession.get_by_id(session.id)
            else:
                error = SessionClosed("the signing session was already completed")
    if error is not None:
        raise error
    return session
