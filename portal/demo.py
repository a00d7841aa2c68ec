"""The built-in demo school: `flask demo seed` creates it once; running it again changes nothing."""

from dataclasses import dataclass

import click
from flask.cli import AppGroup

from portal import audit
from portal.accounts.models import Membership, Organization, OrgKind, User
from portal.accounts.services import hash_password
from portal.certificates import services as certificates
from portal.db import database
from portal.seals import services as seals
from portal.seals.models import Seal, SealGrant

SCHOOL = ("示范大学", "school")
# A made-up but well-formed unified social credit code: 12 (public institution registered by the
# establishment authority), 110108 (Haidian, Beijing), organisation code MB0000000, check digit H.
SCHOOL_USCC = "12110108MB0000000H"
# (name, short code, kind): two colleges and three admin units.
ORGANIZATIONS = (
    ("信息工程学院", "xxgc", OrgKind.COLLEGE),
    ("文学与传媒学院", "wxcm", OrgKind.COLLEGE),
    ("教务处", "jwc", OrgKind.DEPARTMENT),
    ("财务处", "cwc", OrgKind.DEPARTMENT),
    ("校长办公室", "xb", OrgKind.DEPARTMENT),
)

STAFF_PASSWORD = "demo1234"
ADMIN_PASSWORD = "admin1234"


@dataclass(frozen=True)
class DemoUser:
    username: str
    name: str
    org: str | None  # short code
    position: str
    is_leader: bool = False
    roles: str = ""

    @property
    def password(self) -> str:
        return ADMIN_PASSWORD if "admin" in self.roles else STAFF_PASSWORD

    @property
    def role_label(self) -> str:
        if "admin" in self.roles:
            return "系统管理员"
        org = next(name for name, code, _ in ORGANIZATIONS if code == self.org)
        return f"{org}{self.position}"


USERS = (
    DemoUser("admin", "系统管理员", None, "", roles="admin"),
    DemoUser("wangjianguo", "王建国", "xxgc", "院长", is_leader=True),
    DemoUser("lihongmei", "李红梅", "xxgc", "党委书记", is_leader=True),
    DemoUser("zhangwei", "张伟", "xxgc", "教师"),
    DemoUser("liuyang", "刘洋", "xxgc", "教师"),
    DemoUser("chenzhiyuan", "陈志远", "wxcm", "院长", is_leader=True),
    DemoUser("zhaolihua", "赵丽华", "wxcm", "党委书记", is_leader=True),
    DemoUser("sunjing", "孙静", "wxcm", "教师"),
    DemoUser("zhouming", "周明", "jwc", "处长", is_leader=True),
    DemoUser("wufang", "吴芳", "jwc", "科员"),
    DemoUser("zhengguoqiang", "郑国强", "cwc", "处长", is_leader=True),
    DemoUser("fengxiaoyan", "冯晓燕", "cwc", "科员"),
    DemoUser("huangweidong", "黄卫东", "xb", "主任", is_leader=True),
    DemoUser("hemin", "何敏", "xb", "科员"),
)


def seed() -> int:
    """Create what is missing of the demo school; returns how many records were created."""
    created = 0
    with database.atomic():
        school, new = Organization.get_or_create(
            short_code=SCHOOL[1], defaults={"name": SCHOOL[0], "kind": OrgKind.SCHOOL}
        )
        created += new
        orgs = {SCHOOL[1]: school}
        for name, code, kind in ORGANIZATIONS:
            orgs[code], new = Organization.get_or_create(
                short_code=code, defaults={"name": name, "kind": kind, "parent": school}
            )
            created += new
        for d in USERS:
            user, new = User.get_or_create(
                username=d.username,
                defaults={
                    "name": d.name,
                    "password_hash": hash_password(d.password),
                    "roles": d.roles,
                    "is_demo": True,
                },
            )
            created += new
            if d.org:
                _, new = Membership.get_or_create(
                    user=user,
                    organization=orgs[d.org],
                    defaults={"position": d.position, "is_leader": d.is_leader},
                )
                created += new
        if not school.uscc:
            school.uscc = SCHOOL_USCC
            school.save()
            created += 1
        # The demo school is usable for signing as soon as it is seeded, so seeding sets up the
        # school CA when `flask ca init` has not run yet (init_ca never replaces an existing one)
        # and then gives every unit its key; issue_org_keys itself never creates a CA.
        created += len(certificates.init_ca())
        created += len(certificates.issue_org_keys())
        # Each unit gets its official seal, the school a contract seal and 财务处 the finance seal;
        # who may use them is granted separately.
        created += len(seals.ensure_org_seals(orgs.values(), finance_office=orgs["cwc"]))
        created += _grant_unit_seals(orgs)
        if created:
            audit.record(None, "demo.seed", f"organization:{school.public_id}", {"created": created})
    return created


def _grant_unit_seals(orgs: dict) -> int:
    """Each unit's official seal is granted to its leaders and its 科员 (who keep the seal in
    practice), so demo users can drag a department seal onto a file; the school's seals go to
    the 校长办公室 director."""
    created = 0
    for d in USERS:
        if not d.org or not (d.is_leader or d.position == "科员"):
            continue
        user = User.get(User.username == d.username)
        holders = [orgs[d.org]] + ([orgs[SCHOOL[1]]] if d.org == "xb" and d.is_leader else [])
        for seal in Seal.select().where(Seal.owner_org.in_([o.id for o in holders]) & (Seal.status == "active")):
            _, new = SealGrant.get_or_create(seal=seal, user=user, status="active")
            created += new
    return created


def logins_table() -> str:
    rows = ["| 角色 | 用户名 | 密码 |", "|---|---|---|"]
    rows += [f"| {d.role_label} | {d.username} | {d.password} |" for d in USERS]
    return "\n".join(rows)


cli = AppGroup("demo", help="The built-in demo school.")


@cli.command("seed")
def seed_command():
    """Create the demo school (idempotent)."""
    created = seed()
    click.echo(f"demo school: {created} record(s) created" if created else "demo school already seeded")


@cli.command("logins")
def logins_command():
    """Print the demo logins as a Markdown table."""
    click.echo(logins_table())
