"""Server-side state of the two-party SM2 protocol."""

from peewee import CharField, ForeignKeyField

from portal.accounts.models import User
from portal.certificates.models import KeyShare
from portal.db import BaseModel, JSONField, UTCDateTimeField


class CosignSession(BaseModel):
    """One run of the protocol: a key generation, or the signing of exactly one digest.

    A session answers once (a replay is refused), and the nonce point Q1 is unique per key
    share, so a phone that repeats k1 is refused before its share can leak."""

    token = CharField(max_length=64, unique=True)
    purpose = CharField(max_length=16)  # keygen | sign
    user = ForeignKeyField(User, backref="+", on_delete="CASCADE")
    key_share = ForeignKeyField(KeyShare, null=True, backref="sessions", on_delete="CASCADE")
    digest = CharField(max_length=64, null=True)  # e, hex: computed by the server, never taken from the phone
    q1 = CharField(max_length=130, null=True)  # the phone's nonce point, uncompressed hex
    status = CharField(max_length=16, default="open")  # open | answered | completed | failed | expired
    signature = CharField(max_length=200, null=True)  # DER (r, s), hex, once verified
    context = JSONField(default=dict)  # what is being signed (e.g. a SignRequest token)
    created_at = UTCDateTimeField()
    expires_at = UTCDateTimeField()
    completed_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("key_share", "q1"), True),)
