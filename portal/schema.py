"""Every model, in dependency order: what migrations must produce and tests create."""

from portal.accounts.models import Membership, OneTimeCode, Organization, RealNameRequest, User
from portal.audit.models import AuditHead, Event
from portal.certificates.models import Certificate, CertificateAuthority, KeyShare, OrgKey, TrustAnchor
from portal.cosign.models import CosignSession
from portal.jobs import JobFailure
from portal.notify.models import Outbox
from portal.seals.models import GrantRequest, Seal, SealGrant
from portal.signing.models import CC, Document, PagePreview, Participant, Placement, SignRequest, Task
from portal.storage import Blob

MODELS = [
    User,
    Organization,
    Membership,
    RealNameRequest,
    OneTimeCode,
    Certificate,
    CertificateAuthority,
    KeyShare,
    OrgKey,
    TrustAnchor,
    CosignSession,
    Seal,
    SealGrant,
    GrantRequest,
    Task,
    Document,
    Participant,
    Placement,
    SignRequest,
    CC,
    PagePreview,
    Event,
    AuditHead,
    Outbox,
    JobFailure,
    Blob,
]
