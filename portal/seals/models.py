"""Seals (personal and organisation), who may use them, and requests to be granted one."""

from peewee import BooleanField, CharField, FloatField, ForeignKeyField, TextField

from portal.accounts.models import Organization, User
from portal.db import BaseModel, PublicIdField, UTCDateTimeField


class SealKind:
    PERSONAL_STANDARD = "personal_standard"  # 个人制式签章
    HANDWRITTEN = "handwritten"  # 手写签名
    SCHOOL = "school"
    COLLEGE = "college"
    DEPARTMENT = "department"
    CONTRACT = "contract"  # 合同专用章
    FINANCE = "finance"  # 财务专用章

    PERSONAL = (PERSONAL_STANDARD, HANDWRITTEN)


class Seal(BaseModel):
    public_id = PublicIdField()
    owner_user = ForeignKeyField(User, null=True, backref="seals", on_delete="RESTRICT")
    owner_org = ForeignKeyField(Organization, null=True, backref="seals", on_delete="RESTRICT")
    kind = CharField(max_length=24)
    name = CharField(max_length=128)
    image_blob = CharField(max_length=64)  # storage key of a transparent PNG
    width_mm = FloatField()
    height_mm = FloatField()
    status = CharField(max_length=16, default="active")  # active | disabled
    is_default = BooleanField(default=False)
    created_at = UTCDateTimeField()


class SealGrant(BaseModel):
    """Permission for a person to use an organisation seal (checked again at signing time)."""

    seal = ForeignKeyField(Seal, backref="grants", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="seal_grants", on_delete="CASCADE")
    granted_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    status = CharField(max_length=16, default="active")  # active | revoked
    created_at = UTCDateTimeField()
    revoked_at = UTCDateTimeField(null=True)
    revoked_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")


class GrantRequest(BaseModel):
    """部门用章授信申请: a person asks to be granted a seal, or to replace a grantee."""

    public_id = PublicIdField()
    seal = ForeignKeyField(Seal, backref="grant_requests", on_delete="CASCADE")
    applicant = ForeignKeyField(User, backref="grant_requests", on_delete="CASCADE")
    replaces = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    reason = TextField(default="")
    status = CharField(max_length=16, default="pending")  # pending | approved | rejected
    decided_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    decided_at = UTCDateTimeField(null=True)
    decision_note = TextField(default="")
    created_at = UTCDateTimeField()
