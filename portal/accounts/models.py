"""People and organisations."""

from flask_login import UserMixin
from peewee import BlobField, BooleanField, CharField, ForeignKeyField

from portal.db import BaseModel, PublicIdField, UTCDateTimeField


class RealNameStatus:
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class User(UserMixin, BaseModel):
    """A staff member, an administrator, or an external signer (is_external)."""

    public_id = PublicIdField()
    username = CharField(max_length=64, unique=True, null=True)  # local login only
    password_hash = CharField(max_length=255, null=True)
    name = CharField(max_length=64)
    mobile = CharField(max_length=20, null=True)
    # SM4-encrypted at rest; only the masked form is ever shown.
    id_number_enc = BlobField(null=True)
    id_number_masked = CharField(max_length=24, null=True)
    wxwork_userid = CharField(max_length=64, unique=True, null=True)
    sso_uid = CharField(max_length=64, unique=True, null=True)
    real_name_status = CharField(max_length=16, default=RealNameStatus.UNVERIFIED)
    is_external = BooleanField(default=False)
    roles = CharField(max_length=255, default="")  # space-separated, e.g. "admin"
    is_active = BooleanField(default=True)
    # Seeded by `flask demo seed`: the password works only while DEMO_MODE is on.
    is_demo = BooleanField(default=False)
    created_at = UTCDateTimeField()
    last_login_at = UTCDateTimeField(null=True)

    def get_id(self) -> str:  # flask-login keeps the public id in the session
        return self.public_id

    def has_role(self, role: str) -> bool:
        return role in self.roles.split()

    @property
    def is_admin(self) -> bool:
        return self.has_role("admin")

    @property
    def units(self) -> list["Membership"]:
        """Memberships with their organisations, in one query (the header shows them on every page)."""
        return list(
            Membership.select(Membership, Organization)
            .join(Organization)
            .where(Membership.user == self.id)
            .order_by(Membership.id)
        )


class OrgKind:
    SCHOOL = "school"
    COLLEGE = "college"
    DEPARTMENT = "department"
    COMPANY = "company"


class Organization(BaseModel):
    """The school, a college, an admin unit, or an external company (is_internal false)."""

    public_id = PublicIdField()
    name = CharField(max_length=128)
    short_code = CharField(max_length=32, unique=True, null=True)
    kind = CharField(max_length=16)
    parent = ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT")
    uscc = CharField(max_length=18, null=True)  # unified social credit code
    is_internal = BooleanField(default=True)
    created_at = UTCDateTimeField()


class Membership(BaseModel):
    user = ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    organization = ForeignKeyField(Organization, backref="memberships", on_delete="CASCADE")
    position = CharField(max_length=32, default="")  # 院长, 处长, 党委书记, 职员 …
    is_leader = BooleanField(default=False)

    class Meta:
        indexes = ((("user", "organization"), True),)


class RealNameRequest(BaseModel):
    """One attempt at real-name authentication (实名认证): what the person entered and how the
    chosen provider (admin review or face verification) answered."""

    public_id = PublicIdField()
    user = ForeignKeyField(User, backref="real_name_requests", on_delete="CASCADE")
    name = CharField(max_length=64)
    id_number_enc = BlobField()  # SM4 under the KEK
    id_number_masked = CharField(max_length=24)
    mobile = CharField(max_length=20)
    provider = CharField(max_length=16)  # review | face
    status = CharField(max_length=16, default=RealNameStatus.PENDING, index=True)  # pending | verified | rejected
    provider_session = CharField(max_length=128, null=True)  # the provider's id for this verification
    provider_url = CharField(max_length=1024, null=True)  # where the phone goes (face: the H5 link)
    reason = CharField(max_length=255, default="")  # why it was rejected
    decided_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    decided_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()


class OneTimeCode(BaseModel):
    """A short-lived, single-use code a QR code carries from the PC to the phone: the certificate
    activation code (协同签名工具), or the link that opens the handwriting pad."""

    code = CharField(max_length=64, unique=True)
    purpose = CharField(max_length=16)  # activation | handwriting
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()
