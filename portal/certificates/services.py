"""The school CA: a self-signed SM2 root, an issuing CA under it, the certificates it issues
(people's cosign keys, organisations' keys, external signers' event keys), revocation and CRLs.

Keys: the CA and organisation private keys are generated here and stored only wrapped under
the KEK (keystore, purposes "ca-key" and "org-key"). A key is unwrapped inside the one function
that signs with it and never leaves that call: not returned (except by `load_org_key`, whose
caller signs), not logged, not put in an exception. Python cannot wipe memory; keeping the
unwrapped key local is what keeps its lifetime short.

Names: the subject of every certificate comes from the database (who the user or unit is),
never from the request, so a request cannot claim a name. The request proves only that its
sender holds the private key (proof of possession).

CRLs: each CA keeps its current CRL in storage (CertificateAuthority.crl_blob). A new one is
issued at `init_ca`, on every revocation, and, when one is asked for and has passed half its
life, on the fly (`current_crl`), so a quiet week never leaves the published CRL expired.
"""

from collections.abc import Callable
from datetime import timedelta

from asn1crypto import x509 as asn1_x509
from asn1crypto.x509 import Name
from flask import current_app
from peewee import IntegrityError

from portal import audit, storage
from portal.accounts.models import Organization, OrgKind, User
from portal.certificates import keystore, uscc
from portal.certificates.models import (
    Certificate,
    CertificateAuthority,
    CertificateKind,
    CertificateStatus,
    KeyShare,
    OrgKey,
    TrustAnchor,
)
from portal.crypto import x509
from portal.crypto.sm2 import PrivateKey, PublicKey
from portal.db import database, utcnow
from portal.pdf.verify import RevocationStatus

ROOT, ISSUING = "root", "issuing"
ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
VALIDITY = {
    CertificateKind.COSIGN: timedelta(days=2 * 365),
    CertificateKind.ORG: timedelta(days=5 * 365),
    CertificateKind.EVENT: timedelta(days=1),  # one external signing act
}
# Certificates start a little in the past, so a verifier whose clock lags ours does not see a
# certificate that is "not yet valid" in the minute after it was issued.
BACKDATE = timedelta(minutes=5)
CRL_LIFETIME = timedelta(days=7)
CRL_REFRESH_AFTER = CRL_LIFETIME / 2
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # the embedded portal (Makefile HOST:PORT)


class CANotInitialised(RuntimeError):
    """The school CA does not exist yet: run `flask ca init`."""


class CertificateError(ValueError):
    """A request the CA refuses (no proof of possession, key already certified for someone
    else, unknown reason, nothing to revoke…). The message is safe to show."""


# ---------------------------------------------------------------------------------------------
# The CA itself


def _authority(name: str) -> CertificateAuthority:
    ca = CertificateAuthority.get_or_none(CertificateAuthority.name == name)
    if ca is None:
        raise CANotInitialised(f"the {name} CA does not exist: run `flask ca init`")
    return ca


def _with_ca_key(ca: CertificateAuthority, use: Callable[[x509.Signer], bytes]) -> bytes:
    """Unwrap the CA's key, let `use` sign with it, and let the key go out of scope."""
    key = PrivateKey.from_bytes(keystore.unwrap(ca.wrapped_key, "ca-key"))
    if key.public_key.hex() != ca.certificate.public_key:
        # The wrapping binds the purpose, not the row; this catches a key copied between rows.
        raise keystore.KeyStoreError(f"the {ca.name} CA key does not match its certificate")
    return use(key.sign)


def _school() -> Organization | None:
    return Organization.select().where(Organization.kind == OrgKind.SCHOOL).order_by(Organization.id).first()


def _school_name() -> str:
    school = _school()
    return school.name if school else current_app.config["SCHOOL_NAME"]


def crl_url() -> str:
    """Where relying parties fetch the issuing CA's CRL (the CRL distribution point)."""
    base = current_app.config.get("PORTAL_PUBLIC_URL") or DEFAULT_PUBLIC_URL
    return base.rstrip("/") + "/ca/crl"


def _store_certificate(der: bytes, *, kind: str, issuer: Certificate | None, **subject) -> Certificate:
    not_before, not_after = x509.certificate_validity(der)
    return Certificate.create(
        kind=kind,
        issuer=issuer,
        serial=x509.serial_hex(x509.certificate_serial(der)),
        subject_dn=x509.certificate_subject(der),
        public_key=x509.certificate_public_key(der).hex(),
        der=der,
        not_before=not_before,
        not_after=not_after,
        **subject,
    )


def _ca_subject(label: str) -> Name:
    school = _school_name()
    return x509.build_name(
        [("country_name", "CN"), ("organization_name", school), ("common_name", f"{school} {label}")]
    )


def _create_root() -> CertificateAuthority:
    key = PrivateKey.generate()
    now = utcnow()
    subject = _ca_subject("SM2 Root CA")
    der = x509.build_certificate(
        subject, key.public_key, key.sign, not_before=now - BACKDATE, not_after=now + ROOT_VALIDITY, ca=True
    )
    # issuer is null for the self-signed root.
    cert = _store_certificate(der, kind=CertificateKind.CA, issuer=None)
    return CertificateAuthority.create(name=ROOT, certificate=cert, wrapped_key=keystore.wrap(key.to_bytes(), "ca-key"))


def _create_issuing(root: CertificateAuthority) -> CertificateAuthority:
    key = PrivateKey.generate()
    now = utcnow()
    root_der = bytes(root.certificate.der)
    subject = _ca_subject("SM2 Issuing CA")
    not_after = min(now + ISSUING_VALIDITY, x509.certificate_validity(root_der)[1])
    der = _with_ca_key(
        root,
        lambda sign: x509.build_certificate(
            subject,
            key.public_key,
            sign,
            issuer_certificate=root_der,
            not_before=now - BACKDATE,
            not_after=not_after,
            ca=True,
            path_length=0,  # it issues end-entity certificates only
        ),
    )
    cert = _store_certificate(der, kind=CertificateKind.CA, issuer=root.certificate)
    return CertificateAuthority.create(
        name=ISSUING, certificate=cert, wrapped_key=keystore.wrap(key.to_bytes(), "ca-key")
    )


def init_ca() -> list[Certificate]:
    """Create whatever is missing of the root and issuing CA, each with its first CRL; returns
    the CA certificates created ([] when both exist). Never replaces an existing CA."""
    created = []
    try:
        with database.atomic():
            root = CertificateAuthority.get_or_none(CertificateAuthority.name == ROOT)
            if root is None:
                root = _create_root()
                created.append(root)
            if CertificateAuthority.get_or_none(CertificateAuthority.name == ISSUING) is None:
                created.append(_create_issuing(root))
            for ca in created:
                number = _issue_crl(ca)
                audit.record(
                    None,
                    "ca.created",
                    f"certificate:{ca.certificate.public_id}",
                    {"name": ca.name, "subject": ca.certificate.subject_dn, "serial": ca.certificate.serial},
                )
                audit.record(None, "ca.crl_issued", f"certificate:{ca.certificate.public_id}", {"crl_number": number})
    except IntegrityError:
        # A concurrent `ca init` created the CA first (CertificateAuthority.name is unique):
        # ours rolled back whole, theirs stands, and there is nothing left to do.
        if is_initialised():
            return []
        raise
    return [ca.certificate for ca in created]


def is_initialised() -> bool:
    return CertificateAuthority.select().where(CertificateAuthority.name.in_([ROOT, ISSUING])).count() == 2


def chain() -> list[bytes]:
    """[issuing CA certificate, root certificate], DER: what a relying party needs besides the leaf."""
    return [bytes(_authority(ISSUING).certificate.der), bytes(_authority(ROOT).certificate.der)]


def trust_anchors() -> list[bytes]:
    """What the verifier trusts: the school's root CA and every CA an admin imported."""
    anchors = [bytes(_authority(ROOT).certificate.der)] if is_initialised() else []
    return anchors + [bytes(a.der) for a in TrustAnchor.select(TrustAnchor.der)]


def revocation_status(certificate: asn1_x509.Certificate) -> RevocationStatus | None:
    """The platform's own answer on a certificate it issued (the verifier's `is_revoked`
    callback): None when the certificate is not one of ours, so imported CAs' CRLs decide."""
    issued = Certificate.get_or_none(Certificate.serial == x509.serial_hex(certificate.serial_number))
    if issued is None or bytes(issued.der) != certificate.dump():
        return None
    if issued.status != CertificateStatus.REVOKED:
        return RevocationStatus(revoked=False)
    return RevocationStatus(revoked=True, revoked_at=issued.revoked_at, reason=issued.revocation_reason)


# ---------------------------------------------------------------------------------------------
# Subjects


def _ancestry(organization: Organization) -> list[Organization]:
    """The organisation and its parents, up to the top (loops cannot hang it)."""
    seen, line = set(), []
    org = organization
    while org is not None and org.id not in seen:
        seen.add(org.id)
        line.append(org)
        org = org.parent
    return line


def person_subject(user: User) -> Name:
    """C=CN, O=the school, CN=name, serialNumber=masked ID number (when known).

    O names the school for its own people only: an external signer is not a member, and a
    certificate saying otherwise would misstate their affiliation."""
    return x509.build_name(
        [
            ("country_name", "CN"),
            ("organization_name", "" if user.is_external else _school_name()),
            ("common_name", user.name),
            ("serial_number", user.id_number_masked or ""),
        ]
    )


def organization_subject(organization: Organization) -> Name:
    """C=CN, O=the school, OU=the unit, CN=the unit, organizationIdentifier=NTRCN-<USCC>.

    The school itself has no OU. A unit carries the USCC of the nearest organisation that has
    one (colleges and offices act under the school's legal identity); with none known the
    attribute is left out rather than invented. An external company is its own O."""
    line = _ancestry(organization)
    top = line[-1]
    internal = organization.is_internal
    code = next((o.uscc for o in line if o.uscc), None) if internal else organization.uscc
    identifier = ""
    if code:
        try:
            identifier = uscc.organization_identifier(uscc.normalize(code))
        except ValueError:
            raise CertificateError(f"{organization.name} 的统一社会信用代码无效：{code}") from None
    return x509.build_name(
        [
            ("country_name", "CN"),
            ("organization_name", top.name if internal else organization.name),
            ("organizational_unit_name", organization.name if internal and organization.id != top.id else ""),
            ("common_name", organization.name),
            ("organization_identifier", identifier),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Issuing


def _issue(
    public_key: PublicKey,
    *,
    kind: str,
    user: User | None = None,
    organization: Organization | None = None,
    validity: timedelta | None = None,
    actor: User | None = None,
) -> Certificate:
    """Sign a certificate for public_key with the issuing CA and record it. Call inside a transaction."""
    if kind not in VALIDITY:
        raise CertificateError(f"the CA does not issue {kind!r} certificates")
    if (user is None) == (organization is None):
        raise CertificateError("a certificate names either a person or an organisation")
    if (kind == CertificateKind.ORG) != (organization is not None):
        raise CertificateError(f"a {kind!r} certificate cannot name this subject")
    ca = _authority(ISSUING)
    # A key belongs to one subject: a second name on a key someone else holds a certificate for
    # would let signatures be attributed to the wrong party.
    field, subject_id = (Certificate.user, user.id) if user else (Certificate.organization, organization.id)
    others = Certificate.select().where(
        (Certificate.public_key == public_key.hex())
        & (Certificate.status == CertificateStatus.VALID)
        & (field.is_null() | (field != subject_id))
    )
    if others.exists():
        raise CertificateError("该公钥已有属于其他主体的有效证书")

    subject = person_subject(user) if user else organization_subject(organization)
    issuer_der = bytes(ca.certificate.der)
    now = utcnow()
    not_after = min(now + (validity or VALIDITY[kind]), x509.certificate_validity(issuer_der)[1])
    der = _with_ca_key(
        ca,
        lambda sign: x509.build_certificate(
            subject,
            public_key,
            sign,
            issuer_certificate=issuer_der,
            not_before=now - BACKDATE,
            not_after=not_after,
            crl_url=crl_url(),
        ),
    )
    cert = _store_certificate(der, kind=kind, issuer=ca.certificate, user=user, organization=organization)
    audit.record(
        actor,
        "certificate.issued",
        f"certificate:{cert.public_id}",
        {"kind": kind, "serial": cert.serial, "subject": cert.subject_dn, "not_after": cert.not_after.isoformat()},
    )
    return cert


def _proof_of_possession(csr_der: bytes) -> PublicKey:
    try:
        return x509.check_csr(csr_der)
    except x509.X509Error as e:
        raise CertificateError(f"证书请求无效：{e}") from None


def issue_certificate(
    csr_der: bytes,
    *,
    kind: str,
    user: User | None = None,
    organization: Organization | None = None,
    validity: timedelta | None = None,
    actor: User | None = None,
) -> Certificate:
    """Issue a certificate of `kind` ("cosign", "org" or "event") for the key in a PKCS#10
    request, once the request's own signature proves its sender holds that key. The subject is
    built from `user` or `organization`; whatever name the request carries is ignored."""
    public_key = _proof_of_possession(csr_der)
    with database.atomic():
        return _issue(public_key, kind=kind, user=user, organization=organization, validity=validity, actor=actor)


def issue_cosign_certificate(key_share: KeyShare, csr_der: bytes) -> Certificate:
    """Certify a person's two-party key. The request must carry exactly the joint key P the
    server holds a share of, and be signed by it: with a two-party key that signature needs the
    phone's half too, so the server alone cannot obtain a certificate for the key."""
    public_key = _proof_of_possession(csr_der)
    if public_key.hex() != key_share.public_key:
        raise CertificateError("证书请求中的公钥与协同签名密钥不一致")
    with database.atomic():
        # Conditional on "no certificate yet", so two racing requests cannot both attach one.
        share = KeyShare.get_by_id(key_share.id)
        if share.certificate_id is not None:
            raise CertificateError("该协同签名密钥已有证书")
        cert = _issue(public_key, kind=CertificateKind.COSIGN, user=share.user, actor=share.user)
        attached = (
            KeyShare.update(certificate=cert)
            .where((KeyShare.id == share.id) & KeyShare.certificate.is_null())
            .execute()
        )
        if not attached:
            raise CertificateError("该协同签名密钥已有证书")
    key_share.certificate = cert
    return cert


# ---------------------------------------------------------------------------------------------
# Revocation and CRLs


def _issue_crl(ca: CertificateAuthority, expected_number: int | None = None) -> int | None:
    """Sign and store a new CRL for ca; returns its number. With expected_number, only if the
    CA's CRL number is still that (else another request already issued one: returns None).
    Bumping the number first takes the row's write lock, which serialises concurrent issuers."""
    bump = CertificateAuthority.update(crl_number=CertificateAuthority.crl_number + 1).where(
        CertificateAuthority.id == ca.id
    )
    if expected_number is not None:
        bump = bump.where(CertificateAuthority.crl_number == expected_number)
    if not bump.execute():
        return None
    ca = CertificateAuthority.get_by_id(ca.id)
    revoked = [
        x509.RevokedEntry(int(c.serial, 16), c.revoked_at, c.revocation_reason or "unspecified")
        for c in Certificate.select().where(
            (Certificate.issuer == ca.certificate_id) & (Certificate.status == CertificateStatus.REVOKED)
        )
    ]
    now = utcnow()
    der = _with_ca_key(
        ca,
        lambda sign: x509.build_crl(
            bytes(ca.certificate.der),
            sign,
            crl_number=ca.crl_number,
            this_update=now,
            next_update=now + CRL_LIFETIME,
            revoked=revoked,
        ),
    )
    blob = storage.save(der, "application/pkix-crl")
    CertificateAuthority.update(crl_blob=blob.key, crl_updated_at=now).where(CertificateAuthority.id == ca.id).execute()
    return ca.crl_number


def revoke(certificate: Certificate, reason: str, actor: User | None) -> Certificate:
    """Revoke a certificate the school CA issued, for an RFC 5280 reason ("keyCompromise",
    "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn", …), and
    publish a new CRL from its issuer in the same transaction."""
    if reason not in x509.REASONS:
        raise CertificateError(f"unknown revocation reason {reason!r}; use an RFC 5280 name")
    with database.atomic():
        ca = None
        if certificate.issuer_id is not None:
            ca = CertificateAuthority.get_or_none(CertificateAuthority.certificate == certificate.issuer_id)
        if ca is None:
            raise CertificateError("只能吊销本校 CA 签发的证书（根证书无法通过自己的 CRL 吊销）")
        now = utcnow()
        changed = (
            Certificate.update(status=CertificateStatus.REVOKED, revoked_at=now, revocation_reason=reason)
            .where((Certificate.id == certificate.id) & (Certificate.status == CertificateStatus.VALID))
            .execute()
        )
        if not changed:
            raise CertificateError("该证书已被吊销")
        number = _issue_crl(ca)
        audit.record(
            actor,
            "certificate.revoked",
            f"certificate:{certificate.public_id}",
            {"serial": certificate.serial, "reason": reason, "crl_number": number},
        )
    return Certificate.get_by_id(certificate.id)


def current_crl(name: str = ISSUING) -> bytes:
    """The CA's current CRL (DER), issuing a fresh one first if it has passed half its life."""
    ca = _authority(name)
    if ca.crl_blob is None or ca.crl_updated_at is None or utcnow() - ca.crl_updated_at >= CRL_REFRESH_AFTER:
        with database.atomic():
            number = _issue_crl(ca, expected_number=ca.crl_number)
            if number is not None:
                audit.record(None, "ca.crl_issued", f"certificate:{ca.certificate.public_id}", {"crl_number": number})
        ca = _authority(name)
    return storage.load(ca.crl_blob)


# ---------------------------------------------------------------------------------------------
# Organisation keys


def current_org_key(organization: Organization) -> OrgKey | None:
    """The organisation's newest key whose certificate is valid now, or None."""
    now = utcnow()
    return (
        OrgKey.select(OrgKey, Certificate)
        .join(Certificate)
        .where(
            (OrgKey.organization == organization.id)
            & (Certificate.status == CertificateStatus.VALID)
            & (Certificate.not_before <= now)
            & (Certificate.not_after > now)
        )
        .order_by(OrgKey.id.desc())
        .first()
    )


def issue_org_keys(actor: User | None = None) -> list[OrgKey]:
    """Give every internal organisation without a usable key (none yet, or only revoked or
    expired ones) a new SM2 key and an "org" certificate; returns the keys created. Running it
    again creates nothing. Needs the CA (`init_ca`); it does not create one on its own, so a
    root CA never appears as a side effect."""
    _authority(ISSUING)
    created = []
    for organization in Organization.select().where(Organization.is_internal == True).order_by(Organization.id):  # noqa: E712
        with database.atomic():
            if current_org_key(organization) is not None:
                continue
            key = PrivateKey.generate()
            cert = _issue(key.public_key, kind=CertificateKind.ORG, organization=organization, actor=actor)
            org_key = OrgKey.create(
                organization=organization, certificate=cert, wrapped_key=keystore.wrap(key.to_bytes(), "org-key")
            )
            audit.record(
                actor,
                "org_key.created",
                f"organization:{organization.public_id}",
                {"certificate": cert.public_id, "serial": cert.serial},
            )
            created.append(org_key)
    return created


def org_certificate(organization: Organization) -> Certificate:
    """The certificate of the key `load_org_key` returns."""
    org_key = current_org_key(organization)
    if org_key is None:
        raise CertificateError(f"{organization.name} 没有有效的单位证书")
    return org_key.certificate


def load_org_key(organization: Organization) -> PrivateKey:
    """The organisation's current private key, unwrapped, for one signing act. The caller keeps
    it in a local variable for the duration of that act and never logs or stores it."""
    org_key = current_org_key(organization)
    if org_key is None:
        raise CertificateError(f"{organization.name} 没有有效的单位证书")
    key = PrivateKey.from_bytes(keystore.unwrap(org_key.wrapped_key, "org-key"))
    if key.public_key.hex() != org_key.certificate.public_key:
        raise keystore.KeyStoreError(f"the key of {organization.name} does not match its certificate")
    return key
