"""Real-name authentication (实名认证): nobody signs before their identity is confirmed.

A person enters their name, resident ID number and mobile; a provider (portal.accounts.providers)
confirms them: an administrator's review, or face verification. Each attempt is a
RealNameRequest, pending until the provider decides, then verified or rejected. On a pass the
person's account takes the confirmed name, mobile and ID number and gets a standard personal seal
(个人制式签章), in the same transaction as the decision and its audit events. After a rejection the
person may submit again; submitting again also replaces a request still pending.

The ID number is checked locally first (portal.accounts.idcard), stored SM4-encrypted under the
KEK, and appears everywhere else (pages, audit data, logs) only masked.
"""

import logging
import re
import unicodedata
from dataclasses import dataclass

from flask import current_app

from portal import audit
from portal.accounts import idcard, providers
from portal.accounts.models import RealNameRequest, RealNameStatus, User
from portal.accounts.providers import Provider, ProviderError, Verdict
from portal.certificates import keystore
from portal.db import database, utcnow
from portal.pdf import seal_image
from portal.seals import services as seals
from portal.seals.models import Seal, SealKind

log = logging.getLogger(__name__)

ID_PURPOSE = "id-number"
# Where the phone lands after a face check, under PORTAL_PUBLIC_URL (the route lives in
# realname_views; a service has no request to build URLs from).
RETURN_PATH = "/real-name/{public_id}/returned"
SUPERSEDED = "已重新提交"
CLAIMED = "该身份证号码已由其他账号完成实名认证，如有疑问请联系管理员"
# Han characters (with the extension blocks, for rare characters in names) and the middle dot
# that joins the parts of many minority names (阿依古丽·买买提).
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f]"
_NAME = re.compile(rf"{_HAN}+(?:·{_HAN}+)*")
_MOBILE = re.compile(r"1[3-9]\d{9}")
MAX_NAME_CHARS = 9  # what a standard personal seal holds (portal.pdf.seal_image)


class RealNameError(ValueError):
    """Refused; the message is for the person, in Chinese."""


class ApplicationInvalid(RealNameError):
    """What was typed is not acceptable: one Chinese message per field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("；".join(errors.values()))
        self.errors = errors


class RealNameRequired(PermissionError):
    """The person has not completed real-name authentication, so may not sign."""

    message = "请先完成实名认证。实名认证通过后才能发起或确认签署。"

    def __init__(self):
        super().__init__(self.message)


@dataclass(frozen=True)
class Application:
    name: str
    id_number: str
    mobile: str


# ---- the guard every signing flow calls ---------------------------------------------------------


def is_verified(user: User) -> bool:
    return user.real_name_status == RealNameStatus.VERIFIED


def require_real_name(user: User) -> None:
    """Raise RealNameRequired unless the user's real-name status is verified. Signing services
    call it before starting or confirming any signature."""
    if not is_verified(user):
        raise RealNameRequired()


# ---- what the person typed ----------------------------------------------------------------------


def clean_name(raw: str) -> str:
    """The name as on the ID card: Han characters, with · between the parts of a minority name."""
    name = unicodedata.normalize("NFKC", raw or "").strip()
    name = re.sub(r"\s+", "", name)
    name = re.sub(r"[•・．.]", "·", name)  # the dots people type for the middle dot
    if not name:
        raise RealNameError("请填写姓名")
    if not _NAME.fullmatch(name):
        raise RealNameError("请填写身份证上的中文姓名")
    # The seal is generated from the name when the person is verified, so a name it cannot
    # carve is caught now rather than after the identity check.
    if len(name) > MAX_NAME_CHARS:
        raise RealNameError(f"姓名超过{MAX_NAME_CHARS}个字，无法生成个人签章，请联系管理员")
    try:
        seal_image.check_glyphs(name)
    except seal_image.MissingGlyphError as e:
        raise RealNameError(f"姓名中的“{'、'.join(e.chars)}”暂无法生成签章，请联系管理员") from None
    return name


def clean_mobile(raw: str) -> str:
    """A mainland mobile number: 11 digits starting 13–19 (a leading +86 is dropped)."""
    mobile = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", raw or ""))
    mobile = re.sub(r"^(\+?86)(?=1\d{10}$)", "", mobile)
    if not mobile:
        raise RealNameError("请填写手机号码")
    if not _MOBILE.fullmatch(mobile):
        raise RealNameError("请填写11位中国大陆手机号码")
    return mobile


def mask_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:] if mobile and len(mobile) == 11 else (mobile or "")


def clean_application(name: str, id_number: str, mobile: str) -> Application:
    """The cleaned application, or ApplicationInvalid with every field's problem at once."""
    cleaned, errors = {}, {}
    for field, clean, raw in (
        ("name", clean_name, name),
        ("id_number", idcard.validate, id_number),
        ("mobile", clean_mobile, mobile),
    ):
        try:
            cleaned[field] = clean(raw)
        except ValueError as e:  # RealNameError and idcard.IdNumberError
            errors[field] = str(e)
    if errors:
        raise ApplicationInvalid(errors)
    return Application(**cleaned)


# ---- submitting and concluding ------------------------------------------------------------------


def provider_for(request: RealNameRequest) -> Provider:
    return providers.get(request.provider, current_app.config)


def configured_provider() -> Provider:
    return providers.get(current_app.config["REAL_NAME_PROVIDER"], current_app.config)


def latest_request(user: User) -> RealNameRequest | None:
    return (
        RealNameRequest.select()
        .where(RealNameRequest.user == user.id)
        .order_by(RealNameRequest.created_at.desc(), RealNameRequest.id.desc())
        .first()
    )


def _id_number(request: RealNameRequest) -> str:
    return keystore.unwrap(request.id_number_enc, ID_PURPOSE).decode()


def _claimed_by_another(user: User, id_number: str) -> bool:
    """Whether another verified account holds this ID number. The stored numbers are encrypted
    with fresh nonces, so the masked form narrows the candidates and unwrapping decides."""
    candidates = User.select(User.id_number_enc).where(
        (User.id != user.id)
        & (User.real_name_status == RealNameStatus.VERIFIED)
        & (User.id_number_masked == idcard.mask(id_number))
    )
    return any(keystore.unwrap(c.id_number_enc, ID_PURPOSE).decode() == id_number for c in candidates)


def submit(user: User, *, name: str, id_number: str, mobile: str) -> RealNameRequest:
    """Check what the person typed, open the verification with the configured provider, and
    record the request as pending (replacing one still pending). Raises ApplicationInvalid for
    bad input and RealNameError when the request cannot be made."""
    application = clean_application(name, id_number, mobile)
    if is_verified(user):
        raise RealNameError("您已完成实名认证，无需重复提交")
    if _claimed_by_another(user, application.id_number):
        raise RealNameError(CLAIMED)
    provider = configured_provider()
    request = RealNameRequest(
        user=user,
        name=application.name,
        id_number_enc=keystore.wrap(application.id_number.encode(), ID_PURPOSE),
        id_number_masked=idcard.mask(application.id_number),
        mobile=application.mobile,
        provider=provider.name,
    )
    # The provider is called before the transaction opens: no lock is held across the network,
    # and a provider that refuses leaves nothing behind.
    return_url = current_app.config["PORTAL_PUBLIC_URL"] + RETURN_PATH.format(public_id=request.public_id)
    try:
        session = provider.start(request, application.id_number, return_url)
    except ProviderError as e:
        log.warning("real-name provider %s could not start a verification: %s", provider.name, e)
        raise RealNameError(f"{provider.label}服务暂时无法使用，请稍后再试") from None
    if session is not None:
        request.provider_session, request.provider_url = session.id, session.url

    with database.atomic():
        # Asked again inside the transaction: a pending request may have passed since the check.
        if User.get_by_id(user.id).real_name_status == RealNameStatus.VERIFIED:
            raise RealNameError("您已完成实名认证，无需重复提交")
        pending = RealNameRequest.select(RealNameRequest.public_id).where(
            (RealNameRequest.user == user.id) & (RealNameRequest.status == RealNameStatus.PENDING)
        )
        superseded = [r.public_id for r in pending]
        if superseded:
            RealNameRequest.update(status=RealNameStatus.REJECTED, reason=SUPERSEDED, decided_at=utcnow()).where(
                RealNameRequest.public_id.in_(superseded) & (RealNameRequest.status == RealNameStatus.PENDING)
            ).execute()
        request.save(force_insert=True)
        User.update(real_name_status=RealNameStatus.PENDING).where(User.id == user.id).execute()
        audit.record(
            user,
            "realname.submitted",
            f"user:{user.public_id}",
            {
                "request": request.public_id,
                "provider": provider.name,
                "name": request.name,
                "id_number": request.id_number_masked,
                "mobile": mask_mobile(request.mobile),
                "superseded": superseded,
            },
        )
    user.real_name_status = RealNameStatus.PENDING
    return request


def refresh(request: RealNameRequest) -> RealNameRequest:
    """Ask the request's provider for its verdict while the request is pending, and conclude it
    when there is one. A provider that cannot be reached leaves the request pending: the page
    asks again."""
    if request.status != RealNameStatus.PENDING:
        return request
    provider = provider_for(request)
    if provider.decided_by_admin:
        return RealNameRequest.get_by_id(request.id)  # the review queue may have decided meanwhile
    try:
        verdict = provider.result(request, _id_number(request))
    except ProviderError as e:
        log.warning("real-name provider %s gave no result for %s: %s", provider.name, request.public_id, e)
        return request
    if verdict is not None:
        _conclude(request, verdict, actor=None)
    return RealNameRequest.get_by_id(request.id)


def approve(request: RealNameRequest, admin: User) -> RealNameRequest:
    """An administrator confirms the person (admin review)."""
    _check_reviewable(request, admin)
    if not _conclude(request, Verdict(True, evidence={"reviewed_by": admin.public_id}), actor=admin):
        raise RealNameError("该申请已被处理")
    return RealNameRequest.get_by_id(request.id)


def reject(request: RealNameRequest, admin: User, reason: str) -> RealNameRequest:
    """An administrator turns the request down; the person sees the reason and may try again."""
    _check_reviewable(request, admin)
    reason = " ".join((reason or "").split())
    if not reason:
        raise RealNameError("请填写驳回原因")
    if len(reason) > 200:
        raise RealNameError("驳回原因请不要超过200字")
    if not _conclude(request, Verdict(False, reason, {"reviewed_by": admin.public_id}), actor=admin):
        raise RealNameError("该申请已被处理")
    return RealNameRequest.get_by_id(request.id)


def _check_reviewable(request: RealNameRequest, admin: User) -> None:
    if not provider_for(request).decided_by_admin:
        raise RealNameError("该申请由人脸核验自动处理，无需审核")
    if request.status != RealNameStatus.PENDING:
        raise RealNameError("该申请已被处理")
    if request.user_id == admin.id:
        raise RealNameError("不能审核本人的实名认证申请")


def _conclude(request: RealNameRequest, verdict: Verdict, actor: User | None) -> bool:
    """Record the verdict on a pending request and apply it to the person; False if the request
    was no longer pending (another poll or another administrator got there first)."""
    now = utcnow()
    with database.atomic():
        if verdict.passed and _claimed_by_another(request.user, _id_number(request)):
            # Two accounts may each have a pending request for one number; only the first to be
            # confirmed gets it.
            verdict = Verdict(False, CLAIMED, {**verdict.evidence, "claimed": True})
        status = RealNameStatus.VERIFIED if verdict.passed else RealNameStatus.REJECTED
        # The status condition makes the decision happen once, however many pollers race.
        decided = (
            RealNameRequest.update(status=status, reason=verdict.reason[:255], decided_by=actor, decided_at=now)
            .where((RealNameRequest.id == request.id) & (RealNameRequest.status == RealNameStatus.PENDING))
            .execute()
        )
        if not decided:
            return False
        user = User.get_by_id(request.user_id)
        data = {"request": request.public_id, "provider": request.provider, **verdict.evidence}
        if verdict.passed:
            previous_name = user.name
            User.update(
                real_name_status=RealNameStatus.VERIFIED,
                name=request.name,
                mobile=request.mobile,
                id_number_enc=request.id_number_enc,
                id_number_masked=request.id_number_masked,
            ).where(User.id == user.id).execute()
            data.update(name=request.name, id_number=request.id_number_masked)
            if previous_name != request.name:
                data["previous_name"] = previous_name
            audit.record(actor, "realname.verified", f"user:{user.public_id}", data)
            user = User.get_by_id(user.id)
            if not _has_standard_seal(user):
                seals.create_personal_seal(user, actor=actor)
        else:
            User.update(real_name_status=RealNameStatus.REJECTED).where(User.id == user.id).execute()
            audit.record(actor, "realname.rejected", f"user:{user.public_id}", {**data, "reason": verdict.reason})
    return True


def _has_standard_seal(user: User) -> bool:
    return (
        Seal.select()
        .where((Seal.owner_user == user.id) & (Seal.kind == SealKind.PERSONAL_STANDARD) & (Seal.status == "active"))
        .exists()
    )


# ---- the review queue ---------------------------------------------------------------------------


def review_queue():
    """Requests waiting for an administrator, oldest first."""
    return (
        RealNameRequest.select(RealNameRequest, User)
        .join(User, on=(RealNameRequest.user == User.id))
        .where(
            (RealNameRequest.status == RealNameStatus.PENDING)
            & (RealNameRequest.provider.in_(providers.decided_by_admin()))
        )
        .order_by(RealNameRequest.created_at, RealNameRequest.id)
    )


def recently_decided(limit: int = 20):
    """The latest decisions by any provider, newest first (replaced requests left out)."""
    return (
        RealNameRequest.select(RealNameRequest, User)
        .join(User, on=(RealNameRequest.user == User.id))
        .where((RealNameRequest.status != RealNameStatus.PENDING) & (RealNameRequest.reason != SUPERSEDED))
        .order_by(RealNameRequest.decided_at.desc(), RealNameRequest.id.desc())
        .limit(limit)
    )
