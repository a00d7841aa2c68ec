"""Certificates the school CA issued, the keys behind them, and imported trust anchors."""

from peewee import BlobField, CharField, ForeignKeyField, IntegerField, TextField

from portal.accounts.models import Organization, User
from portal.db import BaseModel, PublicIdField, UTCDateTimeField


class CertificateKind:
    CA = "ca"
    COSIGN = "cosign"  # a person's two-party key
    ORG = "org"
    EVENT = "event"  # short-lived, for one external signing act


class CertificateStatus:
    VALID = "valid"
    REVOKED = "revoked"


class Certificate(BaseModel):
    """An X.509 certificate issued by the school CA. Subject is a user or an organisation."""

    public_id = PublicIdField()
    kind = CharField(max_length=16)
    user = ForeignKeyField(User, null=True, backref="certificates", on_delete="RESTRICT")
    organization = ForeignKeyField(Organization, null=True, backref="certificates", on_delete="RESTRICT")
    issuer = ForeignKeyField("self", null=True, backref="issued", on_delete="RESTRICT")
    serial = CharField(max_length=64, unique=True)  # hex
    subject_dn = TextField()
    public_key = CharField(max_length=130, index=True)  # uncompressed SM2 point, hex
    der = BlobField()
    not_before = UTCDateTimeField()
    not_after = UTCDateTimeField()
    status = CharField(max_length=16, default=CertificateStatus.VALID)
    revoked_at = UTCDateTimeField(null=True)
    revocation_reason = CharField(max_length=32, null=True)
    created_at = UTCDateTimeField()


class CertificateAuthority(BaseModel):
    """The school's root and issuing CA: certificate plus KEK-wrapped private key."""

    name = CharField(max_length=16, unique=True)  # "root" | "issuing"
    certificate = ForeignKeyField(Certificate, on_delete="RESTRICT")
    wrapped_key = BlobField()
    crl_number = IntegerField(default=0)
    crl_blob = CharField(max_length=64, null=True)  # storage key of the current CRL (DER)
    crl_updated_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()


class KeyShare(BaseModel):
    """The server's half d2 of a person's two-party SM2 key, and the PIN state guarding it.
    It exists from key generation on; the certificate follows once the CA has issued it."""

    public_id = PublicIdField()
    user = ForeignKeyField(User, backref="key_shares", on_delete="RESTRICT")
    public_key = CharField(max_length=130)  # the joint key P, uncompressed, hex
    certificate = ForeignKeyField(Certificate, null=True, unique=True, backref="key_share", on_delete="RESTRICT")
    wrapped_share = BlobField()  # d2, SM4 under the KEK
    wrapped_device_secret = BlobField(null=True)  # released to the phone only after a PIN check
    pin_verifier = BlobField(null=True)
    failed_attempts = IntegerField(default=0)
    locked_at = UTCDateTimeField(null=True)
    auto_sign_minutes = IntegerField(default=0)  # 0 = always ask for the PIN
    last_confirmed_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()


class OrgKey(BaseModel):
    """An organisation's signing key, held by the server, wrapped under the KEK."""

    organization = ForeignKeyField(Organization, backref="keys", on_delete="RESTRICT")
    certificate = ForeignKeyField(Certificate, unique=True, on_delete="RESTRICT")
    wrapped_key = BlobField()
    created_at = UTCDateTimeField()


class TrustAnchor(BaseModel):
    """A CA certificate an admin imported so files signed elsewhere can be verified."""

    public_id = PublicIdField()
    name = CharField(max_length=255)
    der = BlobField()
    fingerprint = CharField(max_length=64, unique=True)  # SM3 of the DER, hex
    imported_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    created_at = UTCDateTimeField()
