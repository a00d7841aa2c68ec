"""Creating seals: the demo school's organisations get theirs when it is seeded, once; every seal has
its image in storage and an audit event; a seal that cannot be drawn leaves nothing behind."""

import io

import pytest
from PIL import Image

from portal import storage
from portal.accounts.models import Organization, OrgKind, User
from portal.audit import verify_chain
from portal.audit.models import Event
from portal.pdf.seal_image import MissingGlyphError
from portal.seals import services
from portal.seals.models import Seal

pytestmark = pytest.mark.both_databases

EXPECTED = {
    # short code: {kind: seal name}
    "school": {"school": "示范大学公章", "contract": "示范大学合同专用章"},
    "xxgc": {"college": "示范大学信息工程学院公章"},
    "wxcm": {"college": "示范大学文学与传媒学院公章"},
    "jwc": {"department": "示范大学教务处公章"},
    "cwc": {"department": "示范大学财务处公章", "finance": "示范大学财务专用章"},
    "xb": {"department": "示范大学校长办公室公章"},
}


def org_seals(code):
    return {s.kind: s for s in Seal.select().join(Organization).where(Organization.short_code == code)}


def test_seeding_gives_every_organisation_its_seals_with_images_in_storage(demo):
    assert {o.short_code for o in Organization.select().where(Organization.is_internal == True)} == set(EXPECTED)  # noqa: E712
    for code, kinds in EXPECTED.items():
        seals = org_seals(code)
        assert {kind: seal.name for kind, seal in seals.items()} == kinds, code
        for seal in seals.values():
            assert seal.status == "active" and seal.owner_user_id is None
            assert (seal.width_mm, seal.height_mm) == (42, 42)
            png = storage.load(seal.image_blob)
            assert storage.Blob.get(key=seal.image_blob).media_type == "image/png"
            image = Image.open(io.BytesIO(png))
            assert image.format == "PNG" and image.mode == "RGBA" and image.size == (992, 992)
    assert Seal.select().count() == 8
    assert Event.select().where(Event.action == "seal.created").count() == 8


def test_purpose_seals_carry_the_school_name_and_their_purpose(demo):
    contract = org_seals("school")["contract"]
    finance = org_seals("cwc")["finance"]
    official = org_seals("school")["school"]
    # Same arc text, different purpose line: different images.
    assert len({contract.image_blob, finance.image_blob, official.image_blob}) == 3


def test_seeding_twice_creates_nothing(demo):
    counts = (Seal.select().count(), storage.Blob.select().count(), Event.select().count())
    assert demo.seed() == 0
    assert services.ensure_org_seals() == []
    assert counts == (Seal.select().count(), storage.Blob.select().count(), Event.select().count())


def test_a_disabled_seal_is_replaced_by_the_next_run(demo):
    seal = org_seals("jwc")["department"]
    Seal.update(status="disabled").where(Seal.id == seal.id).execute()
    created = services.ensure_org_seals()
    assert [(s.owner_org.short_code, s.kind) for s in created] == [("jwc", "department")]
    assert created[0].image_blob == seal.image_blob  # the same drawing, content-addressed


def test_creating_a_seal_records_an_audit_event(demo):
    admin = User.get(username="admin")
    jwc = Organization.get(short_code="jwc")
    seal = services.create_org_seal(jwc, "contract", name="示范大学教务处", actor=admin)
    assert seal.name == "示范大学教务处合同专用章" and seal.owner_org_id == jwc.id
    event = Event.get(Event.subject == f"seal:{seal.public_id}")
    assert event.action == "seal.created" and event.actor_id == admin.id
    assert event.data == {
        "kind": "contract",
        "name": "示范大学教务处合同专用章",
        "owner": f"organization:{jwc.public_id}",
        "image": seal.image_blob,
        "size_mm": 42.0,
    }
    count, problems = verify_chain()
    assert problems == [] and count == Event.select().count()


def test_a_personal_seal_becomes_the_default_only_when_there_is_none(demo):
    user = User.get(username="zhangwei")
    first = services.create_personal_seal(user)
    second = services.create_personal_seal(user, actor=user)
    assert (first.kind, first.name, first.width_mm, first.height_mm) == ("personal_standard", "张伟名章", 20, 20)
    assert first.is_default and not second.is_default
    assert Image.open(io.BytesIO(storage.load(first.image_blob))).size == (472, 472)
    first_event = Event.get(Event.subject == f"seal:{first.public_id}")
    assert first_event.action == "seal.created" and first_event.data["owner"] == f"user:{user.public_id}"
    assert first_event.actor_id is None  # the system, when no one is named
    assert Event.get(Event.subject == f"seal:{second.public_id}").actor_id == user.id


def test_a_seal_that_cannot_be_drawn_leaves_nothing_behind(demo):
    user = User.get(username="liuyang")
    user.name = "刘\U00020000"  # a character the font lacks
    counts = (Seal.select().count(), storage.Blob.select().count(), Event.select().count())
    with pytest.raises(MissingGlyphError):
        services.create_personal_seal(user)
    with pytest.raises(services.SealError):
        services.create_org_seal(Organization.get(short_code="jwc"), "personal_standard")
    assert counts == (Seal.select().count(), storage.Blob.select().count(), Event.select().count())


def test_the_arc_text_names_the_school_before_a_unit(app):
    school = Organization.create(name="示范大学", kind=OrgKind.SCHOOL)
    college = Organization.create(name="信息工程学院", kind=OrgKind.COLLEGE, parent=school)
    office = Organization.create(name="信息工程学院办公室", kind=OrgKind.DEPARTMENT, parent=college)
    library = Organization.create(name="示范大学图书馆", kind=OrgKind.DEPARTMENT, parent=school)
    assert services.seal_text(school, "school") == "示范大学"
    assert services.seal_text(college, "college") == "示范大学信息工程学院"
    assert services.seal_text(office, "department") == "示范大学信息工程学院办公室"
    assert services.seal_text(library, "department") == "示范大学图书馆"
    assert services.seal_text(office, "finance") == "示范大学"
    external = Organization.create(name="某某科技有限公司", kind=OrgKind.COMPANY, is_internal=False)
    assert services.ensure_org_seals([external]) == []
