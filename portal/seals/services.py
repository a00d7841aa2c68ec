"""Creating seals: organisations' round official seals and people's square name seals; a person's own
seals in 个人设置 (the default, handwritten signatures drawn on a phone or uploaded as a picture).

The images come from `portal.pdf.seal_image` and are stored as PNG blobs; a Seal row records the
blob's key and the seal's printed size, so a placement of width_mm × height_mm reproduces the seal
at its physical size. Who may use an organisation's seal (SealGrant, GrantRequest) is decided
elsewhere: nothing here grants a seal to anyone.
"""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from portal import audit, storage
from portal.accounts.models import OneTimeCode, Organization, OrgKind, User
from portal.accounts.services import issue_one_time_code
from portal.db import database, utcnow
from portal.pdf import handwriting, seal_image
from portal.seals.models import Seal, SealKind

OFFICIAL_DIAMETER_MM = 42.0
PERSONAL_SIZE_MM = 20.0

# The official seal an organisation of each kind carries.
OFFICIAL_KIND = {
    OrgKind.SCHOOL: SealKind.SCHOOL,
    OrgKind.COLLEGE: SealKind.COLLEGE,
    OrgKind.DEPARTMENT: SealKind.DEPARTMENT,
}
# Special-purpose seals say what they are for on the line under the star.
PURPOSE_LINE = {
    SealKind.CONTRACT: "合同专用章",
    SealKind.FINANCE: "财务专用章",
}
ORG_KINDS = (*OFFICIAL_KIND.values(), *PURPOSE_LINE)


class SealError(ValueError):
    pass


def _ancestry(organization: Organization) -> list[Organization]:
    """The organisation and its parents, the top-level one (the school) first."""
    chain, seen = [], set()
    node = organization
    while node is not None and node.id not in seen:  # `seen` guards against a corrupt parent loop
        seen.add(node.id)
        chain.append(node)
        node = node.parent
    return chain[::-1]


def seal_text(organization: Organization, kind: str) -> str:
    """What the arc of an organisation's seal reads by default.

    A unit's seal carries the school's name before its own (示范大学信息工程学院), as the seals of a
    university's colleges and offices do, since the unit alone is no legal person. A contract or
    finance seal is the legal person's seal whoever keeps it, so it carries the top-level name only
    (示范大学 over 财务专用章, even when 财务处 holds it)."""
    chain = _ancestry(organization)
    if kind in PURPOSE_LINE:
        return chain[0].name
    text = parent = ""
    for node in chain:
        # A unit whose registered name already includes what is above it (示范大学图书馆, or
        # 信息工程学院办公室 under 信息工程学院) is not doubled.
        own = node.name
        for prefix in (text, parent):
            if prefix and own.startswith(prefix):
                own = own[len(prefix) :]
                break
        text, parent = text + own, node.name
    return text


def _has_active_seal(org: Organization, kind: str) -> bool:
    return Seal.select().where((Seal.owner_org == org.id) & (Seal.kind == kind) & (Seal.status == "active")).exists()


def create_org_seal(
    org: Organization,
    kind: str,
    *,
    name: str | None = None,
    bottom_text: str = "",
    actor: User | None = None,
) -> Seal:
    """A new round official seal for org, kind one of ORG_KINDS. `name` is the text along the arc
    (default: seal_text); `bottom_text` the line under the star (default: the kind's purpose line,
    合同专用章 or 财务专用章, and none for an official seal)."""
    return _create_org_seal(org, kind, name=name, bottom_text=bottom_text, actor=actor)


def _create_org_seal(
    org: Organization,
    kind: str,
    *,
    name: str | None,
    bottom_text: str,
    actor: User | None,
    unless_exists: bool = False,
) -> Seal | None:
    if kind not in ORG_KINDS:
        raise SealError(f"not an organisation seal kind: {kind}")
    text = (name or seal_text(org, kind)).strip()
    bottom_text = bottom_text.strip() or PURPOSE_LINE.get(kind, "")
    # Drawn before the transaction opens: rendering takes a tenth of a second and needs no lock.
    png = seal_image.official_seal(text, bottom_text=bottom_text, diameter_mm=OFFICIAL_DIAMETER_MM)
    with database.atomic():
        if unless_exists and _has_active_seal(org, kind):
            return None
        blob = storage.save(png, "image/png")
        seal = Seal.create(
            owner_org=org,
            kind=kind,
            name=text + (bottom_text or "公章"),
            image_blob=blob.key,
            width_mm=OFFICIAL_DIAMETER_MM,
            height_mm=OFFICIAL_DIAMETER_MM,
        )
        _record_created(seal, f"organization:{org.public_id}", actor)
    return seal


def create_personal_seal(user: User, actor: User | None = None) -> Seal:
    """A new square name seal (个人制式签章) reading the user's name; it becomes the user's default
    seal when they have no active default yet."""
    png = seal_image.personal_seal(user.name, size_mm=PERSONAL_SIZE_MM)
    with database.atomic():
        has_default = (
            Seal.select()
            .where((Seal.owner_user == user.id) & (Seal.is_default == True) & (Seal.status == "active"))  # noqa: E712
            .exists()
        )
        blob = storage.save(png, "image/png")
        seal = Seal.create(
            owner_user=user,
            kind=SealKind.PERSONAL_STANDARD,
            name=f"{user.name}名章",
            image_blob=blob.key,
            width_mm=PERSONAL_SIZE_MM,
            height_mm=PERSONAL_SIZE_MM,
            is_default=not has_default,
        )
        _record_created(seal, f"user:{user.public_id}", actor)
    return seal


def _record_created(seal: Seal, owner: str, actor: User | None, **extra) -> None:
    audit.record(
        actor,
        "seal.created",
        f"seal:{seal.public_id}",
        {"kind": seal.kind, "name": seal.name, "owner": owner, "image": seal.image_blob, "size_mm": seal.width_mm}
        | extra,
    )


def ensure_org_seals(
    orgs: Iterable[Organization] | None = None,
    *,
    finance_office: Organization | None = None,
    actor: User | None = None,
) -> list[Seal]:
    """Give each internal organisation (all of them by default) the seals it lacks: its official
    seal (school, college or department by its kind), a contract seal for the school, and a finance
    seal for finance_office (the unit that keeps it, usually 财务处). Only a missing active seal of a
    kind is created, so running it again creates nothing; returns the seals created."""
    if orgs is None:
        orgs = Organization.select().where(Organization.is_internal == True).order_by(Organization.id)  # noqa: E712
    created = []
    for org in orgs:
        if not org.is_internal or org.kind not in OFFICIAL_KIND:
            continue
        kinds = [OFFICIAL_KIND[org.kind]]
        if org.kind == OrgKind.SCHOOL:
            kinds.append(SealKind.CONTRACT)
        if finance_office is not None and org.id == finance_office.id:
            kinds.append(SealKind.FINANCE)
        for kind in kinds:
            # Checked once here, so that a second run draws nothing, and again inside the
            # transaction that would create the seal.
            if _has_active_seal(org, kind):
                continue
            seal = _create_org_seal(org, kind, name=None, bottom_text="", actor=actor, unless_exists=True)
            if seal is not None:
                created.append(seal)
    return created


# ---------------------------------------------------------------------------------------------
# A person's own seals (个人设置): listing, the default, handwritten signatures
#
# Every function here takes the person and finds seals only among theirs: another person's seal
# is "not found", never "forbidden", so public ids reveal nothing. Only active seals are listed or
# changed; a handwritten seal is deleted by disabling it, since placements and signed documents may
# refer to it later.

HANDWRITING = "handwriting"  # OneTimeCode.purpose of the phone's drawing link
HANDWRITING_CODE_TTL = timedelta(minutes=10)
MAX_HANDWRITTEN = 10  # active handwritten signatures per person


class SealNotFound(LookupError):
    """No such seal (or handwriting link) among the person's own: also what anyone else's gets."""


class HandwritingCodeInvalid(SealError):
    """The phone's link is unknown, used or expired; str(error) is the message for the person."""

    def __init__(self, message: str, state: str):
        super().__init__(message)
        self.state = state  # unknown | used | expired


@dataclass(frozen=True)
class HandwritingStatus:
    """What the PC shows while the phone draws: waiting, done (with the seal made) or expired."""

    code: OneTimeCode
    state: str
    seal: Seal | None = None


def personal_seals(user: User) -> list[Seal]:
    """The person's active seals: the standard name seal first, then handwritten ones, oldest first
    (a stable order, so setting a default does not move cards around)."""
    return list(
        Seal.select()
        .where((Seal.owner_user == user.id) & (Seal.status == "active"))
        .order_by(Seal.kind != SealKind.PERSONAL_STANDARD, Seal.created_at, Seal.id)
    )


def own_seal(user: User, public_id: str, *, active_only: bool = True) -> Seal:
    """The person's seal with this public id, or SealNotFound (also for anyone else's seal)."""
    query = Seal.public_id == public_id, Seal.owner_user == user.id
    if active_only:
        query += (Seal.status == "active",)
    seal = Seal.get_or_none(*query)
    if seal is None:
        raise SealNotFound(public_id)
    return seal


def set_default_seal(user: User, public_id: str) -> Seal:
    """Make one of the person's active seals their default; every other one stops being it."""
    seal = own_seal(user, public_id)
    if seal.is_default:
        return seal
    with database.atomic():
        # Recorded first: record() takes the audit head's row lock, which serialises this with any
        # concurrent change of the same person's default, so the updates below see committed state
        # and at most one default survives.
        audit.record(user, "seal.default_set", f"seal:{seal.public_id}", {"kind": seal.kind, "name": seal.name})
        seal = own_seal(user, public_id)  # still active now that we hold the lock
        Seal.update(is_default=False).where((Seal.owner_user == user.id) & (Seal.id != seal.id)).execute()
        Seal.update(is_default=True).where(Seal.id == seal.id).execute()
    seal.is_default = True
    return seal


def disable_handwritten_seal(user: User, public_id: str) -> Seal:
    """Delete (disable) one of the person's handwritten signatures. The row and image stay for what
    refers to them. If it was the default, the standard name seal (or else the newest remaining
    seal) becomes the default."""
    seal = own_seal(user, public_id)
    if seal.kind != SealKind.HANDWRITTEN:
        raise SealError("只能删除手写签名，个人制式签章不能删除")
    with database.atomic():
        audit.record(user, "seal.disabled", f"seal:{seal.public_id}", {"kind": seal.kind, "name": seal.name})
        seal = own_seal(user, public_id)
        Seal.update(status="disabled", is_default=False).where(Seal.id == seal.id).execute()
        if seal.is_default:
            remaining = personal_seals(user)
            heir = next((s for s in remaining if s.kind == SealKind.PERSONAL_STANDARD), None)
            heir = heir or (remaining[-1] if remaining else None)
            if heir is not None:
                Seal.update(is_default=True).where(Seal.id == heir.id).execute()
                audit.record(user, "seal.default_set", f"seal:{heir.public_id}", {"kind": heir.kind, "name": heir.name})
    seal.status, seal.is_default = "disabled", False
    return seal


def create_handwritten_seal(user: User, image: bytes, *, source: str, actor: User | None = None) -> Seal:
    """A handwritten signature (手写签名) from a picture or a drawing: cleaned by
    `handwriting.clean_signature_image` (SignatureImageError says why it cannot be), stored, and made
    the default if the person has none. `source` is "upload" or "phone", kept in the audit event."""
    png = handwriting.clean_signature_image(image)  # before the transaction: it takes a fraction of a second
    with database.atomic():
        return _create_handwritten(user, png, source=source, actor=actor or user)


def _create_handwritten(user: User, png: bytes, *, source: str, actor: User, created_at=None) -> Seal:
    """Inside the caller's transaction."""
    width_mm, height_mm = (round(v, 1) for v in seal_image.physical_size_mm(png))
    seal = Seal(
        owner_user=user,
        kind=SealKind.HANDWRITTEN,
        name=f"{user.name}手写签名",
        width_mm=width_mm,
        height_mm=height_mm,
        created_at=created_at or utcnow(),
    )
    blob = storage.save(png, "image/png")
    seal.image_blob = blob.key
    # First, for its lock (see set_default_seal): the count and the default check below then see every
    # seal committed before this one.
    _record_created(seal, f"user:{user.public_id}", actor, source=source, size_mm=[width_mm, height_mm])
    mine = Seal.select().where((Seal.owner_user == user.id) & (Seal.status == "active"))
    if mine.where(Seal.kind == SealKind.HANDWRITTEN).count() >= MAX_HANDWRITTEN:
        raise SealError(f"手写签名最多保存 {MAX_HANDWRITTEN} 个，请先删除不再使用的手写签名")
    seal.is_default = not mine.where(Seal.is_default == True).exists()  # noqa: E712
    seal.save(force_insert=True)
    return seal


def issue_handwriting_code(user: User) -> OneTimeCode:
    """A one-time link for drawing the signature on a phone (扫码在线手写): valid for
    HANDWRITING_CODE_TTL, good for exactly one upload for this person. Earlier unused links of the
    person expire, so only the QR code on screen works."""
    with database.atomic():
        audit.record(
            user,
            "seal.handwriting_link_issued",
            f"user:{user.public_id}",
            {"ttl_minutes": HANDWRITING_CODE_TTL.seconds // 60},
        )
        return issue_one_time_code(user, HANDWRITING, secrets.token_urlsafe(24), HANDWRITING_CODE_TTL)


def handwriting_code(code: str) -> OneTimeCode:
    """The valid (unused, unexpired) handwriting code, for the phone's pad page; otherwise
    HandwritingCodeInvalid saying what is wrong."""
    found = OneTimeCode.get_or_none((OneTimeCode.code == code) & (OneTimeCode.purpose == HANDWRITING))
    if found is None:
        raise HandwritingCodeInvalid("二维码无效，请在电脑上重新生成二维码后扫码。", "unknown")
    if found.used_at is not None:
        raise HandwritingCodeInvalid("该二维码已使用，签名已提交。如需重新签写，请在电脑上重新生成二维码。", "used")
    if found.expires_at <= utcnow():
        raise HandwritingCodeInvalid("二维码已过期，请在电脑上重新生成二维码后扫码。", "expired")
    return found


def submit_handwriting(code: str, image: bytes) -> Seal:
    """The phone's drawing, authorised by the one-time code alone: the code names the person, and
    using it is what uses it up. The drawing is checked first, so an empty canvas does not spend the
    code; then, in one transaction, the code is marked used (a conditional update, so two
    submissions cannot both pass) and the seal created with created_at = the code's used_at,
    which is how the PC's status finds the seal this code made."""
    owner = handwriting_code(code).user
    png = handwriting.clean_signature_image(image)
    now = utcnow()
    with database.atomic():
        spent = (
            OneTimeCode.update(used_at=now)
            .where(
                (OneTimeCode.code == code)
                & (OneTimeCode.purpose == HANDWRITING)
                & OneTimeCode.used_at.is_null()
                & (OneTimeCode.expires_at > now)
            )
            .execute()
        )
        if not spent:
            handwriting_code(code)  # raises with the reason
            raise HandwritingCodeInvalid("二维码无效，请在电脑上重新生成二维码后扫码。", "unknown")
        return _create_handwritten(owner, png, source="phone", actor=owner, created_at=now)


def handwriting_status(user: User, code: str) -> HandwritingStatus:
    """Where the person's phone link stands; SealNotFound for a code that is not theirs."""
    found = OneTimeCode.get_or_none(
        (OneTimeCode.code == code) & (OneTimeCode.purpose == HANDWRITING) & (OneTimeCode.user == user.id)
    )
    if found is None:
        raise SealNotFound(code)
    if found.used_at is not None:
        seal = Seal.get_or_none(
            (Seal.owner_user == user.id) & (Seal.kind == SealKind.HANDWRITTEN) & (Seal.created_at == found.used_at)
        )
        return HandwritingStatus(found, "done", seal)
    if found.expires_at <= utcnow():
        return HandwritingStatus(found, "expired")
    return HandwritingStatus(found, "waiting")
