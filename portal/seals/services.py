"""Creating seals: organisations' round official seals and people's square name seals.

The images come from `portal.pdf.seal_image` and are stored as PNG blobs; a Seal row records the
blob's key and the seal's printed size, so a placement of width_mm × height_mm reproduces the seal
at its physical size. Who may use an organisation's seal (SealGrant, GrantRequest) is decided
elsewhere: nothing here grants a seal to anyone.
"""

from collections.abc import Iterable

from portal import audit, storage
from portal.accounts.models import Organization, OrgKind, User
from portal.db import database
from portal.pdf import seal_image
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


def _record_created(seal: Seal, owner: str, actor: User | None) -> None:
    audit.record(
        actor,
        "seal.created",
        f"seal:{seal.public_id}",
        {"kind": seal.kind, "name": seal.name, "owner": owner, "image": seal.image_blob, "size_mm": seal.width_mm},
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
