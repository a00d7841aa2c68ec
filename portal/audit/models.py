"""The append-only, hash-chained event log behind every trail (签署轨迹)."""

from peewee import CharField, ForeignKeyField, IntegerField

from portal.accounts.models import User
from portal.db import BaseModel, JSONField, UTCDateTimeField


class Event(BaseModel):
    """One recorded action. `hash` = SM3(previous event's hash ‖ canonical form of this event)."""

    seq = IntegerField(unique=True)  # 1, 2, 3 … without gaps
    created_at = UTCDateTimeField()
    actor = ForeignKeyField(User, null=True, backref="+", on_delete="RESTRICT")
    actor_public_id = CharField(max_length=24, null=True)
    actor_name = CharField(max_length=64, default="")
    action = CharField(max_length=64)
    subject = CharField(max_length=96, index=True)  # "task:<public id>", "user:<public id>" …
    data = JSONField(default=dict)
    ip = CharField(max_length=64, null=True)
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64, unique=True)


class AuditHead(BaseModel):
    """The single row naming the chain's last event. Appends lock it, so concurrent writers
    queue up instead of forking the chain; it also exposes a deleted tail."""

    seq = IntegerField(default=0)
    hash = CharField(max_length=64)
