"""Messages waiting to be sent (WeChat Work, SMS, log), written in the same transaction as
the change that caused them and delivered by a job."""

from peewee import CharField, IntegerField, TextField

from portal.db import BaseModel, JSONField, UTCDateTimeField


class Outbox(BaseModel):
    channel = CharField(max_length=16)  # wxwork | sms | log
    recipient = CharField(max_length=128)
    template = CharField(max_length=64)
    payload = JSONField(default=dict)
    status = CharField(max_length=16, default="pending", index=True)  # pending | sent | failed
    attempts = IntegerField(default=0)
    error = TextField(default="")
    created_at = UTCDateTimeField()
    sent_at = UTCDateTimeField(null=True)
