"""The demo school: two colleges, three admin units, leaders, staff and one admin."""

import re
from pathlib import Path

import pytest

from portal import demo
from portal.accounts.models import Membership, Organization, User
from portal.audit.models import Event
from portal.seals.models import SealGrant

pytestmark = pytest.mark.both_databases


def members(code):
    return {
        (m.user.name, m.position, m.is_leader)
        for m in Membership.select().join(Organization).where(Organization.short_code == code)
    }


def test_the_demo_school_has_its_colleges_and_admin_units(app):
    demo.seed()
    units = {o.short_code: (o.name, o.kind) for o in Organization.select().where(Organization.parent.is_null(False))}
    assert units["jwc"] == ("教务处", "department")
    assert units["cwc"] == ("财务处", "department")
    assert units["xb"] == ("校长办公室", "department")
    assert sorted(kind for _, kind in units.values()).count("college") == 2
    school = Organization.get(Organization.kind == "school")
    assert all(o.parent_id == school.id for o in Organization.select().where(Organization.id != school.id))


def test_every_unit_has_a_leader_and_colleges_a_party_secretary(app):
    demo.seed()
    for org in Organization.select().where(Organization.parent.is_null(False)):
        people = members(org.short_code)
        assert any(leader for _, _, leader in people), org.name
        assert any(not leader for _, _, leader in people), f"{org.name} has no ordinary staff"
        if org.kind == "college":
            positions = {position for _, position, _ in people}
            assert {"院长", "党委书记"} <= positions


def test_names_are_chinese_and_one_admin_exists(app):
    demo.seed()
    users = list(User.select())
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,5}", u.name) for u in users)
    assert [u.username for u in users if u.is_admin] == ["admin"]
    assert all(u.is_demo for u in users)


def test_unit_seals_are_granted_to_their_leaders_and_科员(app):
    demo.seed()
    holders = {}
    for grant in SealGrant.select().where(SealGrant.status == "active"):
        holders.setdefault(grant.seal.name, set()).add(grant.user.name)
    assert holders["示范大学教务处公章"] == {"周明", "吴芳"}
    assert holders["示范大学信息工程学院公章"] == {"王建国", "李红梅"}
    assert holders["示范大学合同专用章"] == {"黄卫东"}
    assert "张伟" not in set().union(*holders.values())  # a teacher holds no unit seal


def test_seeding_twice_changes_nothing(app):
    assert demo.seed() > 0
    counts = (User.select().count(), Organization.select().count(), Membership.select().count())
    assert demo.seed() == 0
    assert counts == (User.select().count(), Organization.select().count(), Membership.select().count())
    assert Event.select().where(Event.action == "demo.seed").count() == 1


def test_the_readme_lists_every_demo_login():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert demo.logins_table() in readme
