"""Signing tasks: their documents, participants, seal placements and signature requests."""

from peewee import (
    BlobField,
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from portal.accounts.models import Organization, User
from portal.db import BaseModel, JSONField, PublicIdField, UTCDateTimeField
from portal.seals.models import Seal


class TaskKind:
    SINGLE = "single"  # 单方文件签署
    COUNTERSIGN = "countersign"  # 校内多人会签
    MULTIPARTY = "multiparty"  # 多方签署


class TaskStatus:
    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    VOIDED = "voided"


class VoidReason:
    REFUSED = "refused"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Task(BaseModel):
    """A signing task. ("Job" always means background work, never this.)"""

    public_id = PublicIdField()
    kind = CharField(max_length=16)
    title = CharField(max_length=255)
    business_type = CharField(max_length=64, default="")
    initiator = ForeignKeyField(User, backref="initiated_tasks", on_delete="RESTRICT")
    # The identity space the task was started in: None = personal, else an organisation.
    initiator_org = ForeignKeyField(Organization, null=True, backref="+", on_delete="RESTRICT")
    status = CharField(max_length=16, default=TaskStatus.DRAFT, index=True)
    void_reason = CharField(max_length=16, null=True)
    void_note = TextField(default="")
    ordered = BooleanField(default=True)
    allow_refuse = BooleanField(default=False)
    deadline = UTCDateTimeField(null=True)
    note = TextField(default="")
    created_at = UTCDateTimeField(index=True)
    updated_at = UTCDateTimeField()
    completed_at = UTCDateTimeField(null=True)


class ConversionState:
    NONE = "none"  # uploaded as PDF
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class Document(BaseModel):
    """One file of a task. Each signed revision is a new blob; the original is kept."""

    public_id = PublicIdField()
    task = ForeignKeyField(Task, backref="documents", on_delete="CASCADE")
    name = CharField(max_length=255)  # the file name as uploaded
    original_blob = CharField(max_length=64)
    current_blob = CharField(max_length=64, null=True)  # latest PDF revision
    revision = IntegerField(default=0)  # number of signed revisions appended
    page_count = IntegerField(default=0)
    page_sizes = JSONField(default=list)  # [[width, height, rotation], …] in points
    conversion_state = CharField(max_length=16, default=ConversionState.NONE)
    conversion_error = TextField(default="")
    created_at = UTCDateTimeField()


class ParticipantStatus:
    WAITING = "waiting"
    TO_SIGN = "to_sign"
    SIGNED = "signed"
    REFUSED = "refused"


class Participant(BaseModel):
    """A signing party of a task: an internal person, an external person, or an organisation."""

    public_id = PublicIdField()
    task = ForeignKeyField(Task, backref="participants", on_delete="CASCADE")
    position = IntegerField(default=0)  # order among the task's participants
    party_kind = CharField(max_length=16, default="person")  # person | org
    user = ForeignKeyField(User, null=True, backref="participations", on_delete="RESTRICT")
    organization = ForeignKeyField(Organization, null=True, backref="+", on_delete="RESTRICT")
    external_name = CharField(max_length=64, null=True)
    external_mobile = CharField(max_length=20, null=True)
    external_id_number_enc = BlobField(null=True)  # SM4 under the KEK
    status = CharField(max_length=16, default=ParticipantStatus.WAITING, index=True)
    required_seal_kind = CharField(max_length=24, null=True)
    refuse_reason = TextField(default="")
    signed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()


class PlacementKind:
    SINGLE = "single"
    MULTI_PAGE = "multi_page"  # 多页盖章
    RIDING = "riding"  # 骑缝章


class Placement(BaseModel):
    """Where a seal goes: PDF points, origin at the bottom-left of the page's visible box."""

    public_id = PublicIdField()
    document = ForeignKeyField(Document, backref="placements", on_delete="CASCADE")
    participant = ForeignKeyField(Participant, null=True, backref="placements", on_delete="CASCADE")
    seal = ForeignKeyField(Seal, null=True, backref="+", on_delete="RESTRICT")  # None: a position to fill
    required_seal_kind = CharField(max_length=24, null=True)
    kind = CharField(max_length=16, default=PlacementKind.SINGLE)
    page = IntegerField(null=True)  # 1-based, for single placements and the sample page
    page_range = CharField(max_length=255, null=True)  # "all" or "1-3,7"
    x = FloatField()
    y = FloatField()
    width = FloatField()
    height = FloatField()
    riding_rule = CharField(max_length=16, null=True)  # continuous | alternate
    edge = CharField(max_length=8, null=True)  # left | right
    status = CharField(max_length=16, default="planned")  # planned | applied
    created_at = UTCDateTimeField()


class SignRequestStatus:
    PENDING = "pending"
    SIGNING = "signing"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class SignRequest(BaseModel):
    """What a signing QR code carries and the cosign app's 待签署 list shows."""

    token = CharField(max_length=64, unique=True)
    participant = ForeignKeyField(Participant, backref="sign_requests", on_delete="CASCADE")
    user = ForeignKeyField(User, backref="sign_requests", on_delete="CASCADE")
    digests = JSONField(default=list)  # hex SM3 digests the cosign protocol signs
    status = CharField(max_length=16, default=SignRequestStatus.PENDING, index=True)
    error = TextField(default="")
    expires_at = UTCDateTimeField()
    created_at = UTCDateTimeField()
    completed_at = UTCDateTimeField(null=True)


class CC(BaseModel):
    """抄送: someone who may follow a task without signing it."""

    task = ForeignKeyField(Task, backref="ccs", on_delete="CASCADE")
    user = ForeignKeyField(User, null=True, backref="+", on_delete="RESTRICT")
    name = CharField(max_length=64)
    mobile = CharField(max_length=20, null=True)
    created_at = UTCDateTimeField()


class PagePreview(BaseModel):
    """A rendered page, kept so each page of each revision is rendered once per width.

    Keyed by the PDF blob (content-addressed, so a revision never changes under its key), the
    1-based page and the pixel width; `image_blob` holds the JPEG."""

    pdf_blob = CharField(max_length=64)
    page = IntegerField()
    width = IntegerField()
    image_blob = CharField(max_length=64)
    created_at = UTCDateTimeField()

    class Meta:
        indexes = ((("pdf_blob", "page", "width"), True),)
