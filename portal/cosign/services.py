"""The cosign app (协同签名) as services: certificate activation, the PIN rules, the auto-sign
window, revoke and re-issue, and confirming sign requests (待签署) on the phone.

protocol.py runs the two-party math for one digest at a time; this module decides who may start
it, with which key share, and what happens when it ends.

Activation. The PC shows a one-time activation code (ACTIVATION_LIFETIME, single use, only for a
person whose real name is verified). The phone, logged in as the same person, sends the code, P1
with its proof, and a PIN verifier. In one transaction the code is spent, the key share created,
a 32-byte device secret generated (stored wrapped, purpose "device-secret") and the verifier
stored keyed (below). The server then opens a protocol session over the CertificationRequestInfo
it builds from the person's subject and the joint key P; the phone co-signs it, and the CSR
assembled from those bytes and that signature goes to the CA (`finish_activation`). A person
has one usable key at a time: a new certificate supersedes every older key share of theirs.

The phone's share and the PIN (DESIGN.md §4, crypto_standards.md §1.5). The phone keeps d1 only
wrapped under a key derived from the PIN *and* the device secret, and it never stores the device
secret: the server releases it (`unlock`) after an online check of the PIN verifier, which the
browser derives from the PIN and a salt kept on the phone. So neither a stolen phone (no device
secret) nor a stolen database (no d1) can test PIN guesses offline. The server never sees the PIN.
It stores the verifier only as

    pin_verifier = HMAC-SM3(K_v, key share public id ‖ verifier),
    K_v = HMAC-SM3(device secret, "esign-portal/cosign/pin-verifier-key")

K_v needs the device secret, which is stored only wrapped under the KEK, so the database alone is
no PIN oracle either; and since `flask keys rotate` re-wraps the device secret without changing
it, the stored verifiers survive a KEK rotation (a key derived from the KEK itself would not).

PIN failures: each check first claims an attempt (a conditional UPDATE on the counter), then
compares, so concurrent guesses cannot exceed MAX_PIN_FAILURES between them; a correct PIN resets
the counter, the fifth consecutive failure locks the key share (locked_at). A locked share cannot
sign (protocol.open_session refuses it) and its device secret is never released again: the
person re-activates from the PC (after the real-name check), which issues a new key and
certificate and revokes the old certificate as superseded.

Auto-sign window (自动签名时间): 0 (always ask) to MAX_AUTO_SIGN_MINUTES. Every correct PIN sets
last_confirmed_at; while now − last_confirmed_at is inside the window the server releases the
device secret without a verifier. The window runs from the last PIN entry and confirmations
without the PIN do not extend it. The phone, for its part, never keeps the PIN: after a PIN
entry that opens a window it re-wraps d1 under a random window key and the same device secret and
keeps both in sessionStorage until the window ends (static/js/cosign-app.js), so a closed tab
forgets them and, once the server stops releasing the device secret, they open nothing.

Revoke and re-issue (lost phone): from the PC, the certificate is revoked (keyCompromise or
superseded; it goes on the CRL in the same transaction) and the key share disabled: locked, its
device secret and verifier deleted. Without the device secret the d1 wrapped on the old phone can
never be unwrapped again, so the joint key is dead even though d2 stays (the column is NOT NULL).

Sign requests: see `create_sign_request` for the contract the signing flows use.
"""

import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import csr as asn1_csr
from asn1crypto.x509 import Name
from peewee import Value, fn

from portal import audit
from portal.accounts import realname
from portal.accounts.models import OneTimeCode, User
from portal.accounts.services import issue_one_time_code
from portal.certificates import keystore
from portal.certificates import services as certificates
from portal.certificates.models import Certificate, CertificateKind, CertificateStatus, KeyShare
from portal.cosign import protocol
from portal.cosign.models import CosignSession
from portal.cosign.protocol import CosignError, SessionStatus
from portal.crypto import x509
from portal.crypto.asn1 import public_key_info, sm2_with_sm3_algorithm
from portal.crypto.sm2 import PublicKey
from portal.db import database, utcnow
from portal.signing.models import Document, Placement, SignRequest, SignRequestStatus

log = logging.getLogger(__name__)

ACTIVATION = "activation"  # OneTimeCode.purpose
ACTIVATION_LIFETIME = timedelta(minutes=10)
# Codes are typed on a phone when they cannot be scanned: no 0/O, 1/I/L; 8 of 31 characters ≈ 40 bits.
# Guessing gains nothing anyway: a code works only for the account it was issued to.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8

DEVICE_SECRET = "device-secret"  # the key store purpose of KeyShare.wrapped_device_secret
DEVICE_SECRET_BYTES = 32
VERIFIER_BYTES = 32
MAX_PIN_FAILURES = 5
MAX_AUTO_SIGN_MINUTES = 30
AUTO_SIGN_CHOICES = (0, 1, 5, 10, 15, 30)  # what 我的 offers; any whole minute in range is accepted

SIGN_REQUEST_LIFETIME = timedelta(minutes=30)
MAX_SIGN_ENTRIES = 50  # one entry per signature: a request that needs more is a bug upstream

_VERIFIER_KEY_LABEL = b"esign-portal/cosign/pin-verifier-key"


class CosignAppError(Exception):
    """A request the cosign app refuses; the message is Chinese and safe to show."""


class NotVerified(CosignAppError):
    pass


class InvalidCode(CosignAppError):
    pass


class NoCertificate(CosignAppError):
    pass


class InvalidVerifier(CosignAppError):
    """The PIN verifier is malformed, or a new PIN equals the old one."""


class WrongPin(CosignAppError):
    def __init__(self, remaining: int):
        super().__init__(f"证书密码错误，还可尝试 {remaining} 次")
        self.remaining = remaining


class PinLocked(CosignAppError):
    pass


class PinRequired(CosignAppError):
    pass


class SignRequestNotFound(CosignAppError):
    pass


class SignRequestClosed(CosignAppError):
    pass


LOCKED_MESSAGE = "证书密码连续输错 5 次，证书已锁定。请在电脑端点击【协同签名工具】重新下载证书。"


def _subject(key_share: KeyShare) -> str:
    return f"key_share:{key_share.public_id}"


# ---------------------------------------------------------------------------------------------
# Real name


def require_verified(user: User) -> None:
    """Only a person whose real name is verified gets a certificate (SPEC F2/F3)."""
    try:
        realname.require_real_name(user)
    except realname.RealNameRequired:
        raise NotVerified("请先完成实名认证，实名认证通过后才能下载协同签名证书") from None


# ---------------------------------------------------------------------------------------------
# Activation codes


def normalize_code(code: str) -> str:
    """What the person typed, as stored: upper case, without spaces or dashes."""
    return re.sub(r"[\s\-]", "", code or "").upper()


def format_code(code: str) -> str:
    """XXXX-XXXX, easier to read out and type."""
    return f"{code[:4]}-{code[4:]}" if len(code) == CODE_LENGTH else code


def issue_activation_code(user: User) -> OneTimeCode:
    """A fresh activation code for the 【协同签名工具】 QR code. Earlier unused codes of the person
    expire, so only the code on screen works."""
    require_verified(user)
    with database.atomic():
        audit.record(
            user,
            "cosign.activation_code_issued",
            f"user:{user.public_id}",
            {"ttl_minutes": ACTIVATION_LIFETIME.seconds // 60},
        )
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        return issue_one_time_code(user, ACTIVATION, code, ACTIVATION_LIFETIME)


def check_activation_code(user: User, code: str) -> OneTimeCode:
    """The activation code, if `user` may use it now (【确定】 on the phone); it is not spent here."""
    require_verified(user)
    found = OneTimeCode.get_or_none((OneTimeCode.code == normalize_code(code)) & (OneTimeCode.purpose == ACTIVATION))
    if found is None:
        raise InvalidCode("激活码无效，请核对后重新输入，或在电脑端重新获取")
    if found.user_id != user.id:
        raise InvalidCode("该激活码不属于当前登录的账号，请使用本人账号登录")
    if found.used_at is not None:
        raise InvalidCode("该激活码已使用，请在电脑端点击【协同签名工具】重新获取")
    if found.expires_at <= utcnow():
        raise InvalidCode("激活码已过期，请在电脑端点击【协同签名工具】重新获取")
    return found


# ---------------------------------------------------------------------------------------------
# The certification request the phone co-signs


def certification_request_info(subject: Name, public_key: PublicKey) -> bytes:
    """The DER the key's holder signs for a PKCS#10 request (what x509.build_csr signs)."""
    return asn1_csr.CertificationRequestInfo(
        {"version": "v1", "subject": subject, "subject_pk_info": public_key_info(public_key), "attributes": []}
    ).dump()


def assemble_csr(info_der: bytes, signature_der: bytes) -> bytes:
    """The PKCS#10 request from its CertificationRequestInfo and the sm2-with-sm3 signature over it."""
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": asn1_csr.CertificationRequestInfo.load(info_der),
            "signature_algorithm": sm2_with_sm3_algorithm(),
            "signature": signature_der,
        }
    ).dump()


def csr_info(key_share: KeyShare) -> bytes:
    """The CertificationRequestInfo (DER) the phone co-signs for this key share's certificate."""
    return certification_request_info(certificates.person_subject(key_share.user), protocol.public_key_of(key_share))


def uncertified_key_share(user: User, public_id: str) -> KeyShare:
    """The person's key share that still waits for its certificate (an interrupted activation)."""
    key_share = KeyShare.get_or_none(KeyShare.public_id == public_id)
    if key_share is None or key_share.user_id != user.id:
        raise NoCertificate("找不到该协同签名密钥，请重新激活")
    return key_share


def open_csr_session(user: User, key_share: KeyShare) -> CosignSession:
    """A protocol session over the request for this key share's certificate. Also the retry
    when a first run failed (the phone hit the rare restart case, or the network)."""
    if key_share.user_id != user.id:
        raise NoCertificate("找不到该协同签名密钥")
    if key_share.certificate_id is not None:
        raise CosignAppError("该协同签名密钥已有证书")
    if key_share.wrapped_device_secret is None or key_share.locked_at is not None:
        raise CosignAppError("该协同签名密钥已停用，请重新激活")
    context = {"purpose": "csr", "key_share": key_share.public_id}
    return protocol.open_session(user, key_share, csr_info(key_share), context)


@dataclass(frozen=True)
class Activation:
    key_share: KeyShare
    public_key: PublicKey
    device_secret: bytes
    session: CosignSession  # the CSR to co-sign


def _verifier(value: bytes) -> bytes:
    value = bytes(value)
    if len(value) != VERIFIER_BYTES:
        raise InvalidVerifier("证书密码校验值格式不正确，请刷新页面后重试")
    return value


def _verifier_tag(key_share: KeyShare, device_secret: bytes, verifier: bytes) -> bytes:
    key = hmac.new(device_secret, _VERIFIER_KEY_LABEL, "sm3").digest()
    return hmac.new(key, key_share.public_id.encode() + verifier, "sm3").digest()


def activate(user: User, code: str, p1: bytes, proof: bytes, verifier: bytes) -> Activation:
    """Spend the activation code and create the person's key share (P1 and proof for
    keygen_context(user.public_id)), its device secret and PIN verifier, all or nothing; then
    open the session in which the phone co-signs the certificate request."""
    found = check_activation_code(user, code)
    verifier = _verifier(verifier)
    device_secret = secrets.token_bytes(DEVICE_SECRET_BYTES)
    now = utcnow()
    with database.atomic():
        spent = (
            OneTimeCode.update(used_at=now)
            .where((OneTimeCode.id == found.id) & OneTimeCode.used_at.is_null() & (OneTimeCode.expires_at > now))
            .execute()
        )
        if not spent:
            raise InvalidCode("该激活码已使用，请在电脑端点击【协同签名工具】重新获取")
        key_share, public_key = protocol.create_key_share(user, p1, proof)
        key_share.wrapped_device_secret = keystore.wrap(device_secret, DEVICE_SECRET)
        key_share.pin_verifier = _verifier_tag(key_share, device_secret, verifier)
        key_share.save()
        audit.record(user, "cosign.activated", _subject(key_share), {"code_id": found.id})
        session = open_csr_session(user, key_share)
    return Activation(key_share, public_key, device_secret, session)


def finish_activation(user: User, session: CosignSession) -> Certificate:
    """After the phone completed the CSR session: assemble the request, have the CA issue the
    certificate, and retire every other key share of the person (superseded)."""
    key_share = KeyShare.get_by_id(session.key_share_id)
    info = csr_info(key_share)
    if f"{protocol.public_key_of(key_share).digest(info):064x}" != session.digest:
        # The person's name or the school changed since the session opened: sign the new request.
        raise CosignAppError("证书信息已变更，请重新提交")
    request = assemble_csr(info, bytes.fromhex(session.signature))
    with database.atomic():
        certificate = certificates.issue_cosign_certificate(key_share, request)
        others = KeyShare.select().where((KeyShare.user == user.id) & (KeyShare.id != key_share.id))
        for other in others:
            _retire(other, user, "superseded")
    return certificate


# ---------------------------------------------------------------------------------------------
# Key shares


def current_key_share(user: User) -> KeyShare | None:
    """The person's key share with a valid, unexpired certificate (possibly PIN-locked), or None."""
    now = utcnow()
    return (
        KeyShare.select(KeyShare, Certificate)
        .join(Certificate)
        .where(
            (KeyShare.user == user.id)
            & KeyShare.wrapped_device_secret.is_null(False)
            & (Certificate.status == CertificateStatus.VALID)
            & (Certificate.not_before <= now)
            & (Certificate.not_after > now)
        )
        .order_by(KeyShare.id.desc())
        .first()
    )


@dataclass(frozen=True)
class CertificateInfo:
    """A certificate as 我的 shows it, read from the certificate itself."""

    certificate: Certificate
    holder: str
    id_number: str  # masked, as the certificate carries it
    organization: str
    issuer: str

    @property
    def revoked(self) -> bool:
        return self.certificate.status == CertificateStatus.REVOKED


def certificate_info(certificate: Certificate) -> CertificateInfo:
    parsed = x509.load_certificate(bytes(certificate.der))
    subject, issuer = x509.name_attributes(parsed.subject), x509.name_attributes(parsed.issuer)
    return CertificateInfo(
        certificate=certificate,
        holder=subject.get("common_name", ""),
        id_number=subject.get("serial_number", ""),
        organization=subject.get("organization_name", ""),
        issuer=issuer.get("common_name", ""),
    )


def certificate_history(user: User) -> list[Certificate]:
    """Every cosign certificate the person has had, newest first."""
    return list(
        Certificate.select()
        .where((Certificate.user == user.id) & (Certificate.kind == CertificateKind.COSIGN))
        .order_by(Certificate.created_at.desc(), Certificate.id.desc())
    )


def key_share_of(user: User, public_id: str) -> KeyShare:
    """The person's current key share named by the phone; anything else is "no certificate"."""
    key_share = current_key_share(user)
    if key_share is None or key_share.public_id != public_id:
        raise NoCertificate("本机的证书已失效，请在电脑端点击【协同签名工具】重新下载证书")
    return key_share


def is_locked(key_share: KeyShare) -> bool:
    return key_share.locked_at is not None


def _retire(key_share: KeyShare, actor: User | None, reason: str) -> None:
    """Revoke the key share's certificate (if valid) and disable the share: locked, with its
    device secret and verifier deleted, so the phone's wrapped d1 can never be opened again."""
    certificate = key_share.certificate
    if certificate is not None and certificate.status == CertificateStatus.VALID:
        certificates.revoke(certificate, reason, actor)
    if key_share.wrapped_device_secret is None:
        return
    KeyShare.update(
        locked_at=fn.COALESCE(KeyShare.locked_at, utcnow()), wrapped_device_secret=None, pin_verifier=None
    ).where(KeyShare.id == key_share.id).execute()
    audit.record(actor, "cosign.key_share_disabled", _subject(key_share), {"reason": reason})


REVOCATION_REASONS = {"keyCompromise": "手机丢失或被他人使用", "superseded": "更换手机"}


def revoke_certificate(user: User, reason: str) -> Certificate:
    """吊销 (the first half of 吊销并重新签发): revoke the person's certificate (onto the CRL) and
    disable its key share. Needs no real-name check: a lost phone must always be stoppable. The
    second half is a new activation code (`issue_activation_code`), which does need it."""
    if reason not in REVOCATION_REASONS:
        raise CosignAppError("请选择吊销原因")
    key_share = current_key_share(user)
    if key_share is None:
        raise NoCertificate("您还没有有效的协同签名证书")
    with database.atomic():
        _retire(key_share, user, reason)
    return Certificate.get_by_id(key_share.certificate_id)


# ---------------------------------------------------------------------------------------------
# PIN checks and the device secret


def _device_secret(key_share: KeyShare) -> bytes:
    return keystore.unwrap(key_share.wrapped_device_secret, DEVICE_SECRET)


def _usable(key_share: KeyShare) -> None:
    if is_locked(key_share):
        raise PinLocked(LOCKED_MESSAGE)


def in_auto_sign_window(key_share: KeyShare, now: datetime | None = None) -> bool:
    last, minutes = key_share.last_confirmed_at, key_share.auto_sign_minutes
    return bool(minutes) and last is not None and (now or utcnow()) - last < timedelta(minutes=minutes)


def window_ends_at(key_share: KeyShare) -> datetime | None:
    """When the current auto-sign window closes, or None outside one."""
    if not in_auto_sign_window(key_share):
        return None
    return key_share.last_confirmed_at + timedelta(minutes=key_share.auto_sign_minutes)


def _check_pin(user: User, key_share: KeyShare, verifier: bytes) -> bytes:
    """Check a verifier, counting consecutive failures; the device secret when it is right."""
    verifier = _verifier(verifier)
    with database.atomic():
        # Claim the attempt before comparing: parallel guesses each need a claim, and at most
        # MAX_PIN_FAILURES claims exist between two correct PINs.
        claimed = (
            KeyShare.update(failed_attempts=KeyShare.failed_attempts + 1)
            .where(
                (KeyShare.id == key_share.id)
                & KeyShare.locked_at.is_null()
                & (KeyShare.failed_attempts < MAX_PIN_FAILURES)
            )
            .execute()
        )
    if not claimed:
        _lock(user, key_share)
        raise PinLocked(LOCKED_MESSAGE)
    device_secret = _device_secret(key_share)
    if hmac.compare_digest(_verifier_tag(key_share, device_secret, verifier), bytes(key_share.pin_verifier)):
        with database.atomic():
            KeyShare.update(failed_attempts=0, last_confirmed_at=utcnow()).where(KeyShare.id == key_share.id).execute()
        return device_secret
    failures = KeyShare.get_by_id(key_share.id).failed_attempts
    if failures >= MAX_PIN_FAILURES:
        _lock(user, key_share)
        raise PinLocked(LOCKED_MESSAGE)
    with database.atomic():
        audit.record(user, "cosign.pin_failed", _subject(key_share), {"failures": failures})
    raise WrongPin(MAX_PIN_FAILURES - failures)


def _lock(user: User, key_share: KeyShare) -> None:
    with database.atomic():
        if (
            KeyShare.update(locked_at=utcnow())
            .where((KeyShare.id == key_share.id) & KeyShare.locked_at.is_null())
            .execute()
        ):
            audit.record(user, "cosign.locked", _subject(key_share), {"failures": MAX_PIN_FAILURES})


def unlock(user: User, key_share: KeyShare, verifier: bytes | None) -> bytes:
    """The device secret, after a correct PIN verifier, or without one inside the auto-sign
    window (PinRequired outside it). A wrong verifier raises WrongPin with the tries left; the
    fifth in a row locks the key share (PinLocked)."""
    _usable(key_share)
    if verifier is None:
        if not in_auto_sign_window(key_share):
            raise PinRequired("请输入证书密码")
        with database.atomic():
            audit.record(user, "cosign.unlocked", _subject(key_share), {"pin": False})
        return _device_secret(key_share)
    device_secret = _check_pin(user, key_share, verifier)
    with database.atomic():
        audit.record(user, "cosign.unlocked", _subject(key_share), {"pin": True})
    return device_secret


def change_pin(user: User, key_share: KeyShare, old_verifier: bytes, new_verifier: bytes) -> None:
    """修改证书密码: the new verifier is stored only once the old one checks (a wrong old PIN
    counts as a failure like any other). The phone has re-wrapped d1 under the new PIN with the
    device secret it got for the old one; the device secret itself does not change."""
    _usable(key_share)
    new_verifier = _verifier(new_verifier)
    if hmac.compare_digest(_verifier(old_verifier), new_verifier):
        raise InvalidVerifier("新密码不能与原密码相同")
    device_secret = _check_pin(user, key_share, old_verifier)
    with database.atomic():
        tag = _verifier_tag(key_share, device_secret, new_verifier)
        KeyShare.update(pin_verifier=tag).where(KeyShare.id == key_share.id).execute()
        audit.record(user, "cosign.pin_changed", _subject(key_share))


def set_auto_sign(user: User, key_share: KeyShare, minutes: int) -> None:
    """设置自动签名时间: 0 = always ask for the PIN, up to MAX_AUTO_SIGN_MINUTES."""
    if not isinstance(minutes, int) or not 0 <= minutes <= MAX_AUTO_SIGN_MINUTES:
        raise CosignAppError(f"自动签名时间须在 0～{MAX_AUTO_SIGN_MINUTES} 分钟之间")
    with database.atomic():
        KeyShare.update(auto_sign_minutes=minutes).where(KeyShare.id == key_share.id).execute()
        audit.record(user, "cosign.auto_sign_set", _subject(key_share), {"minutes": minutes})
    key_share.auto_sign_minutes = minutes


# ---------------------------------------------------------------------------------------------
# Protocol steps on behalf of the logged-in phone


def _own_session(user: User, token: str) -> CosignSession:
    session = protocol.get_session(token)
    if session.user_id != user.id:
        raise protocol.SessionNotFound("no signing session with this token")
    return session


def answer(user: User, token: str, q1: bytes, proof: bytes):
    """protocol.answer for the person's own session. A refusal that is the phone's fault fails
    the sign request the session belongs to."""
    session = _own_session(user, token)
    try:
        return protocol.answer(token, q1, proof)
    except (protocol.InvalidPoint, protocol.InvalidProof, protocol.NonceReused) as e:
        _fail_sign_request(session, e)
        raise


@dataclass(frozen=True)
class Completion:
    session: CosignSession
    certificate: Certificate | None = None  # an activation's new certificate
    sign_request: SignRequest | None = None  # the request the session belongs to, after it


def complete(user: User, token: str, signature: bytes) -> Completion:
    """protocol.complete for the person's own session, then what the session was for: the
    certificate of an activation, or the progress of a sign request."""
    session = _own_session(user, token)
    try:
        session = protocol.complete(token, signature)
    except protocol.InvalidSignature as e:
        _fail_sign_request(session, e)
        raise
    if session.context.get("purpose") == "csr":
        return Completion(session, certificate=finish_activation(user, session))
    if "sign_request" in session.context:
        return Completion(session, sign_request=_progress(session.context["sign_request"]))
    return Completion(session)


# ---------------------------------------------------------------------------------------------
# Sign requests (待签署)


def create_sign_request(
    participant, user: User, entries: Iterable[tuple[bytes, str]], *, lifetime: timedelta = SIGN_REQUEST_LIFETIME
) -> SignRequest:
    """A request for `user` to co-sign, from the phone, each message of `entries`.

    The contract with the signing flows (SignRequest.digests): a list, one entry per signature,
    each {"message": hex of the exact bytes to sign (e.g. the DER of CMS signedAttrs), "label":
    short text the phone shows (e.g. "《合同.pdf》 第 1 次签章")}; a flow may add "impressions" (how
    many seals the file will carry: the phone's 签章数量) and its own keys. The phone never sends the bytes:
    for entry i the server opens one protocol session with context {"sign_request": token,
    "index": i} and computes e = SM3(Z_A ‖ message) itself. When every entry has a verified
    signature the request is done, and `signatures_for` returns them in entry order (DER
    SEQUENCE{r, s}, sm2-with-sm3 with the default ID, under `signing_certificate`).
    Status: pending → signing → done; failed when the phone sends something the protocol
    refuses; expired after `lifetime`."""
    entries = [{"message": bytes(message).hex(), "label": str(label)} for message, label in entries]
    if not entries or len(entries) > MAX_SIGN_ENTRIES:
        raise ValueError(f"a sign request has 1 to {MAX_SIGN_ENTRIES} messages")
    now = utcnow()
    with database.atomic():
        request = SignRequest.create(
            token=secrets.token_urlsafe(32),
            participant=participant,
            user=user,
            digests=entries,
            expires_at=now + lifetime,
            created_at=now,
        )
        audit.record(
            user,
            "sign_request.created",
            f"sign_request:{request.id}",
            {"participant": participant.public_id, "entries": len(entries)},
        )
    return request


def pending_requests(user: User) -> list[SignRequest]:
    """The person's open requests (待签署), newest first."""
    return list(
        SignRequest.select()
        .where(
            (SignRequest.user == user.id)
            & (SignRequest.status.in_([SignRequestStatus.PENDING, SignRequestStatus.SIGNING]))
            & (SignRequest.expires_at > utcnow())
        )
        .order_by(SignRequest.created_at.desc(), SignRequest.id.desc())
    )


def sign_request_of(user: User, token: str) -> SignRequest:
    request = SignRequest.get_or_none(SignRequest.token == token)
    if request is None or request.user_id != user.id:
        raise SignRequestNotFound("找不到该签署请求，请确认使用本人账号登录")
    return request


@dataclass(frozen=True)
class SignRequestSummary:
    """What the phone shows before the person confirms."""

    request: SignRequest
    title: str
    business_type: str
    initiator: str
    documents: list[str]
    seal_count: int
    labels: list[str]
    expired: bool  # past its expiry, whatever its status says yet


def describe(request: SignRequest) -> SignRequestSummary:
    participant = request.participant
    task = participant.task
    if all("impressions" in entry for entry in request.digests):  # what the flow will stamp
        seal_count = sum(entry["impressions"] for entry in request.digests)
    else:
        seal_count = Placement.select().where(Placement.participant == participant.id).count()
    return SignRequestSummary(
        request=request,
        title=task.title,
        business_type=task.business_type,
        initiator=task.initiator.name,
        documents=[
            d.name for d in Document.select(Document.name).where(Document.task == task.id).order_by(Document.id)
        ],
        seal_count=seal_count,
        labels=[entry.get("label", "") for entry in request.digests],
        expired=request.expires_at <= utcnow(),
    )


def _sessions_of(request: SignRequest) -> list[CosignSession]:
    """Every protocol session opened for the request, oldest first. The JSON context cannot be
    queried portably, so its text narrows the rows (a LIKE on the random token; the Value keeps
    JSONField from encoding the pattern as JSON) and the parsed context decides."""
    pattern = Value(f"%{request.token}%", converter=False)
    candidates = CosignSession.select().where(
        (CosignSession.user == request.user_id)
        & (CosignSession.purpose == "sign")
        & (CosignSession.created_at >= request.created_at)
        & (CosignSession.context**pattern)
    )
    return sorted((s for s in candidates if s.context.get("sign_request") == request.token), key=lambda s: s.id)


def _signed_indices(request: SignRequest) -> dict[int, CosignSession]:
    done = {}
    for session in _sessions_of(request):
        if session.status == SessionStatus.COMPLETED:
            done.setdefault(session.context["index"], session)
    return done


def _move_request(request: SignRequest, from_statuses: list[str], to_status: str, **fields) -> bool:
    query = SignRequest.update(status=to_status, **fields).where(
        (SignRequest.id == request.id) & SignRequest.status.in_(from_statuses)
    )
    return query.execute() == 1


def _refuse_closed(request: SignRequest) -> None:
    """Raise if the request cannot be signed (any more); mark it expired on the way."""
    if request.status in (SignRequestStatus.PENDING, SignRequestStatus.SIGNING) and request.expires_at <= utcnow():
        with database.atomic():
            if _move_request(
                request, [SignRequestStatus.PENDING, SignRequestStatus.SIGNING], SignRequestStatus.EXPIRED
            ):
                audit.record(request.user, "sign_request.expired", f"sign_request:{request.id}")
        raise SignRequestClosed("该签署请求已过期，请在电脑端重新发起签署")
    messages = {
        SignRequestStatus.EXPIRED: "该签署请求已过期，请在电脑端重新发起签署",
        SignRequestStatus.FAILED: "该签署请求签署失败，请在电脑端重新发起签署",
        SignRequestStatus.CANCELLED: "该签署请求已取消",
    }
    if request.status in messages:
        raise SignRequestClosed(messages[request.status])


@dataclass(frozen=True)
class SigningRun:
    """The sessions the phone runs now, one per entry still unsigned (none if already done)."""

    request: SignRequest
    sessions: list[tuple[int, str, CosignSession]]  # (index, label, session)


def start_signing(user: User, token: str) -> SigningRun:
    """The person confirmed (确认签署): open one session per entry that has no signature yet.

    Idempotent: a done request opens nothing (confirming twice signs once). A new run
    supersedes the sessions of an earlier, interrupted one (a reload, a lost connection): they
    are failed first, so for each entry at most one session can ever complete."""
    request = sign_request_of(user, token)
    if request.status == SignRequestStatus.DONE:
        return SigningRun(request, [])
    _refuse_closed(request)
    try:
        realname.require_real_name(user)
    except realname.RealNameRequired as e:
        raise NotVerified(e.message) from None
    key_share = current_key_share(user)
    if key_share is None:
        raise NoCertificate("您还没有有效的协同签名证书，请先下载证书")
    _usable(key_share)
    sessions = []
    with database.atomic():
        _move_request(request, [SignRequestStatus.PENDING], SignRequestStatus.SIGNING)
        request = SignRequest.get_by_id(request.id)
        if request.status == SignRequestStatus.SIGNING:
            sessions = _open_run(user, key_share, request)
    if request.status != SignRequestStatus.SIGNING:  # a concurrent run finished or failed it
        if request.status == SignRequestStatus.DONE:
            return SigningRun(request, [])
        _refuse_closed(request)
    return SigningRun(request, sessions)


def _open_run(user: User, key_share: KeyShare, request: SignRequest) -> list[tuple[int, str, CosignSession]]:
    """Fail the live sessions of an earlier run, then open one for each entry not yet signed."""
    done = set()
    for session in _sessions_of(request):
        if session.status == SessionStatus.COMPLETED:
            done.add(session.context["index"])
        elif session.status in (SessionStatus.OPEN, SessionStatus.ANSWERED):
            superseded = (
                CosignSession.update(status=SessionStatus.FAILED)
                .where((CosignSession.id == session.id) & (CosignSession.status == session.status))
                .execute()
            )
            if superseded:
                audit.record(
                    user,
                    "cosign.session_failed",
                    f"key_share:{session.key_share.public_id}",
                    {"session": session.id, "reason": "superseded"},
                )
    sessions = []
    for index, entry in enumerate(request.digests):
        if index in done:
            continue
        context = {"sign_request": request.token, "index": index}
        session = protocol.open_session(user, key_share, bytes.fromhex(entry["message"]), context)
        sessions.append((index, entry.get("label", ""), session))
    audit.record(
        user,
        "sign_request.confirmed",
        f"sign_request:{request.id}",
        {"key_share": key_share.public_id, "open": len(sessions)},
    )
    return sessions


# What finishes a done request, by the kind of task it belongs to: each signing flow registers
# the job that stamps and signs its documents (this module knows no flow).
_done_handlers: dict[str, Callable[[SignRequest], object]] = {}


def on_sign_request_done(task_kind: str, handler: Callable[[SignRequest], object]) -> None:
    _done_handlers[task_kind] = handler


def _progress(token: str) -> SignRequest:
    """After a session of the request completed: done once every entry has its signature, and
    then the flow's handler starts finishing the documents, whether or not the PC is watching."""
    request = SignRequest.get(SignRequest.token == token)
    done = False
    if len(_signed_indices(request)) == len(request.digests):
        with database.atomic():
            if _move_request(request, [SignRequestStatus.SIGNING], SignRequestStatus.DONE, completed_at=utcnow()):
                audit.record(request.user, "sign_request.done", f"sign_request:{request.id}")
                done = True
        request = SignRequest.get_by_id(request.id)
    handler = _done_handlers.get(request.participant.task.kind) if done else None
    if handler is not None:
        try:
            handler(request)
        except Exception:
            # The phone's part succeeded; the PC's progress panel starts the job again.
            log.exception("could not start finishing sign request %s", request.id)
    return request


def _fail_sign_request(session: CosignSession, error: CosignError) -> None:
    token = session.context.get("sign_request")
    if not token:
        return
    request = SignRequest.get_or_none(SignRequest.token == token)
    if request is None:
        return
    with database.atomic():
        if _move_request(
            request, [SignRequestStatus.PENDING, SignRequestStatus.SIGNING], SignRequestStatus.FAILED, error=str(error)
        ):
            audit.record(
                request.user, "sign_request.failed", f"sign_request:{request.id}", {"reason": type(error).__name__}
            )


def signatures_for(request: SignRequest) -> list[bytes]:
    """The DER signatures of a done request, in the order of its entries."""
    request = SignRequest.get_by_id(request.id)
    if request.status != SignRequestStatus.DONE:
        raise SignRequestClosed("该签署请求尚未完成")
    signed = _signed_indices(request)
    return [bytes.fromhex(signed[index].signature) for index in range(len(request.digests))]


def signing_certificate(request: SignRequest) -> Certificate:
    """The certificate of the key that made a done request's signatures."""
    request = SignRequest.get_by_id(request.id)
    if request.status != SignRequestStatus.DONE:
        raise SignRequestClosed("该签署请求尚未完成")
    return _signed_indices(request)[0].key_share.certificate
