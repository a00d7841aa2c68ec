"""X.509 for the national algorithms (GM/T 0015-2012 profile): certificates, PKCS#10 requests
and v2 CRLs with SM2 keys and sm2-with-sm3 signatures, built and parsed with asn1crypto.

Nothing here holds a private key. Every structure is signed through a `Signer`: a callable that
takes the DER to be signed (tbsCertificate, CertificationRequestInfo, tbsCertList) and returns a
DER SM2 signature over SM3(Z_A ‖ DER) with the default user ID. A `PrivateKey.sign` is one; a
two-party signing session or a key unwrapped for the duration of one call are others. Whatever
signed it, a structure is verified against the expected public key before it is returned, so a
wrong key or a broken co-signature never leaves this module as a "certificate".

Conventions: times are naive UTC datetimes (as stored in the database), serials are positive
integers shown as lower-case hex, and key identifiers are SM3 based (see `key_identifier`).
"""

import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import core, crl, csr, x509

from portal.crypto.asn1 import SM2_WITH_SM3, public_key_from_info, public_key_info, sm2_with_sm3_algorithm, unpem
from portal.crypto.sm2 import PublicKey, SM2Error
from portal.crypto.sm3 import sm3

Signer = Callable[[bytes], bytes]

SERIAL_BITS = 127  # RFC 5280: at most 20 octets; CA/B practice: at least 64 random bits


class X509Error(ValueError):
    """A certificate, request or CRL that cannot be parsed, is not SM2, or does not verify."""


# ---------------------------------------------------------------------------------------------
# Names

# RFC 4514 short names for the attributes the school CA writes; others print as their OID.
_SHORT_NAMES = {
    "country_name": "C",
    "state_or_province_name": "ST",
    "locality_name": "L",
    "organization_name": "O",
    "organizational_unit_name": "OU",
    "common_name": "CN",
    "serial_number": "serialNumber",
    "organization_identifier": "organizationIdentifier",
    "email_address": "emailAddress",
}
# X.520 PrintableString: what serialNumber must be, and what country codes always are.
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]*")


def _directory_string(attribute: str, value: str) -> x509.DirectoryString:
    if attribute == "country_name":
        return x509.DirectoryString(name="printable_string", value=core.PrintableString(value))
    if attribute == "serial_number" and _PRINTABLE.fullmatch(value):
        return x509.DirectoryString(name="printable_string", value=core.PrintableString(value))
    # X.520 wants serialNumber as PrintableString, but a masked ID number ("1101**********1234")
    # contains "*", which PrintableString cannot carry; UTF8String keeps the value as it is shown
    # everywhere else, and parsers (OpenSSL included) accept any DirectoryString choice.
    return x509.DirectoryString(name="utf8_string", value=core.UTF8String(value))


def build_name(attributes: Sequence[tuple[str, str]]) -> x509.Name:
    """A distinguished name from (attribute, value) pairs in the given order (most general
    first, e.g. C, O, OU, CN), one attribute per RDN. Attribute names are asn1crypto's
    ("country_name", "organization_name", "common_name", "serial_number",
    "organization_identifier", …). Empty values are left out."""
    rdns = []
    for attribute, value in attributes:
        if not value:
            continue
        if attribute not in x509.NameType._map.values():
            raise X509Error(f"unknown name attribute {attribute!r}")
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameTypeAndValue({"type": attribute, "value": _directory_string(attribute, value)})]
            )
        )
    return x509.Name(name="", value=x509.RDNSequence(rdns))


def _escape_rdn_value(value: str) -> str:
    value = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
    if value.startswith(("#", " ")):
        value = "\\" + value
    if value.endswith(" "):
        value = value[:-1] + "\\ "
    return value


def name_to_string(name: x509.Name) -> str:
    """RFC 4514 string, most specific RDN first: "CN=张伟,O=示范大学,C=CN"."""

    def attribute(atv) -> str:
        label = _SHORT_NAMES.get(atv["type"].native, atv["type"].dotted)
        return f"{label}={_escape_rdn_value(str(atv['value'].native))}"

    return ",".join("+".join(map(attribute, rdn)) for rdn in reversed(list(name.chosen)))


def name_attributes(name: x509.Name) -> dict[str, str]:
    """{attribute: value} of a name (the last value wins if an attribute repeats)."""
    return {atv["type"].native: str(atv["value"].native) for rdn in name.chosen for atv in rdn}


# ---------------------------------------------------------------------------------------------
# Small encoders


def random_serial() -> int:
    """A random positive serial with 126 bits of entropy (top bit of 127 set, so always 16 bytes)."""
    return secrets.randbits(SERIAL_BITS - 1) | (1 << (SERIAL_BITS - 1))


def serial_hex(serial: int) -> str:
    """How serials are stored and shown: lower-case hex, even length."""
    text = format(serial, "x")
    return text if len(text) % 2 == 0 else "0" + text


def key_identifier(public_key: PublicKey) -> bytes:
    """Subject/authority key identifier: the leftmost 160 bits of SM3 over the subjectPublicKey
    BIT STRING value (04 ‖ X ‖ Y). RFC 7093 method 1 with SM3 in place of SHA-256, so the profile
    uses the national hash throughout; 20 bytes, the size RFC 5280's SHA-1 method gives."""
    return sm3(public_key.to_bytes())[:20]


def _subject_key_id(issuer: x509.Certificate) -> bytes:
    """What the issuer calls its key (its subjectKeyIdentifier), which is what an authority key
    identifier must repeat; computed our way only for an issuer that does not say."""
    return issuer.key_identifier or key_identifier(certificate_public_key(issuer))


def _time(value: datetime) -> x509.Time:
    """UTCTime through 2049, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5); whole seconds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    value = value.replace(microsecond=0, tzinfo=UTC)
    return x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _extension(cls, extn_id: str, value, critical: bool = False):
    return cls({"extn_id": extn_id, "critical": critical, "extn_value": value})


def _check_sm2_algorithm(algorithm) -> None:
    """sm2-with-sm3, with parameters absent (as OpenSSL writes it) or NULL (tolerated)."""
    if algorithm["algorithm"].dotted != SM2_WITH_SM3:
        raise X509Error(f"signature algorithm is {algorithm['algorithm'].dotted}, not sm2-with-sm3")
    if not isinstance(algorithm["parameters"], core.Void | core.Null):
        raise X509Error("sm2-with-sm3 must have no parameters")


def _sign(signer: Signer, tbs: bytes, public_key: PublicKey, what: str) -> bytes:
    """Have signer sign tbs and make sure the result verifies under the key it claims to be."""
    signature = signer(tbs)
    if not public_key.verify(tbs, signature):
        raise X509Error(f"the {what} signature does not verify under the signer's public key")
    return signature


# ---------------------------------------------------------------------------------------------
# Certificates


def load_certificate(data: bytes | str) -> x509.Certificate:
    """A certificate from DER or PEM, parsed eagerly so malformed input fails here."""
    try:
        cert = x509.Certificate.load(unpem(data), strict=True)
        cert.native  # noqa: B018 - force the lazy parse of every field now
    except (ValueError, TypeError) as e:
        raise X509Error(f"not an X.509 certificate: {e}") from None
    return cert


def build_certificate(
    subject: x509.Name,
    public_key: PublicKey,
    signer: Signer,
    *,
    not_before: datetime,
    not_after: datetime,
    issuer_certificate: bytes | None = None,
    serial: int | None = None,
    ca: bool = False,
    path_length: int | None = None,
    crl_url: str | None = None,
) -> bytes:
    """A signed X.509 v3 certificate (DER) for public_key.

    `issuer_certificate` is the issuing CA's certificate (DER); None makes it self-signed, in which
    case `signer` must sign with the subject's own key. `ca` chooses the profile:
    CA: basicConstraints cA (critical, with path_length if given), keyUsage keyCertSign + cRLSign;
    end entity: basicConstraints without cA, keyUsage digitalSignature + nonRepudiation (critical),
    the GM/T 0015 signing-certificate usage, and a CRL distribution point when crl_url is given.
    """
    if not_after <= not_before:
        raise X509Error("not_after must be later than not_before")
    if issuer_certificate is None:
        issuer_name, issuer_key, authority_id = subject, public_key, key_identifier(public_key)
    else:
        issuer = load_certificate(issuer_certificate)
        issuer_name, issuer_key, authority_id = issuer.subject, certificate_public_key(issuer), _subject_key_id(issuer)
    serial = random_serial() if serial is None else serial
    if serial <= 0:
        raise X509Error("a serial must be positive")

    constraints = {"ca": True} if ca else {"ca": False}
    if ca and path_length is not None:
        constraints["path_len_constraint"] = path_length
    usage = {"key_cert_sign", "crl_sign"} if ca else {"digital_signature", "non_repudiation"}
    extensions = [
        _extension(x509.Extension, "basic_constraints", x509.BasicConstraints(constraints), critical=True),
        _extension(x509.Extension, "key_usage", x509.KeyUsage(usage), critical=True),
        _extension(x509.Extension, "key_identifier", core.OctetString(key_identifier(public_key))),
        _extension(
            x509.Extension,
            "authority_key_identifier",
            x509.AuthorityKeyIdentifier({"key_identifier": authority_id}),
        ),
    ]
    if crl_url and not ca:
        point = x509.DistributionPoint(
            {
                "distribution_point": x509.DistributionPointName(
                    name="full_name", value=[x509.GeneralName(name="uniform_resource_identifier", value=crl_url)]
                )
            }
        )
        extensions.append(_extension(x509.Extension, "crl_distribution_points", x509.CRLDistributionPoints([point])))

    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": sm2_with_sm3_algorithm(),
            "issuer": issuer_name,
            "validity": x509.Validity({"not_before": _time(not_before), "not_after": _time(not_after)}),
            "subject": subject,
            "subject_public_key_info": public_key_info(public_key),
            "extensions": extensions,
        }
    )
    tbs_der = tbs.dump()
    signature = _sign(signer, tbs_der, issuer_key, "certificate")
    return x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": sm2_with_sm3_algorithm(), "signature_value": signature}
    ).dump()


def _as_certificate(cert: bytes | str | x509.Certificate) -> x509.Certificate:
    return cert if isinstance(cert, x509.Certificate) else load_certificate(cert)


def certificate_public_key(cert: bytes | str | x509.Certificate) -> PublicKey:
    try:
        return public_key_from_info(_as_certificate(cert)["tbs_certificate"]["subject_public_key_info"])
    except SM2Error as e:
        raise X509Error(f"certificate key: {e}") from None


def certificate_serial(cert: bytes | str | x509.Certificate) -> int:
    return _as_certificate(cert).serial_number


def certificate_subject(cert: bytes | str | x509.Certificate) -> str:
    """The subject as an RFC 4514 string."""
    return name_to_string(_as_certificate(cert).subject)


def certificate_issuer(cert: bytes | str | x509.Certificate) -> str:
    return name_to_string(_as_certificate(cert).issuer)


def certificate_validity(cert: bytes | str | x509.Certificate) -> tuple[datetime, datetime]:
    """(not_before, not_after) as naive UTC."""
    validity = _as_certificate(cert)["tbs_certificate"]["validity"]
    return _naive_utc(validity["not_before"].native), _naive_utc(validity["not_after"].native)


def certificate_key_usage(cert: bytes | str | x509.Certificate) -> set[str]:
    value = _as_certificate(cert).key_usage_value
    return set(value.native) if value is not None else set()


def verify_certificate(cert: bytes | str | x509.Certificate, issuer_public_key: PublicKey) -> bool:
    """Whether the certificate carries a valid sm2-with-sm3 signature by issuer_public_key (with
    the default ID) and names the same algorithm inside and outside the signed part. Checks
    nothing else (validity, extensions, revocation: that is path validation)."""
    try:
        cert = _as_certificate(cert)
        _check_sm2_algorithm(cert["signature_algorithm"])
        if cert["tbs_certificate"]["signature"].dump() != cert["signature_algorithm"].dump():
            return False
        return issuer_public_key.verify(cert["tbs_certificate"].dump(), cert["signature_value"].native)
    except X509Error:
        return False


# ---------------------------------------------------------------------------------------------
# Certification requests (PKCS#10)


def build_csr(subject: x509.Name, public_key: PublicKey, signer: Signer) -> bytes:
    """A PKCS#10 request for public_key, signed by its own private key through signer (for a
    two-party key, the joint signature is the proof that both halves agreed)."""
    info = csr.CertificationRequestInfo(
        {"version": "v1", "subject": subject, "subject_pk_info": public_key_info(public_key), "attributes": []}
    )
    info_der = info.dump()
    signature = _sign(signer, info_der, public_key, "certification request")
    return csr.CertificationRequest(
        {"certification_request_info": info, "signature_algorithm": sm2_with_sm3_algorithm(), "signature": signature}
    ).dump()


def load_csr(data: bytes | str) -> csr.CertificationRequest:
    try:
        request = csr.CertificationRequest.load(unpem(data), strict=True)
        request.native  # noqa: B018 - force the lazy parse of every field now
    except (ValueError, TypeError) as e:
        raise X509Error(f"not a PKCS#10 certification request: {e}") from None
    return request


def csr_public_key(request: bytes | str | csr.CertificationRequest) -> PublicKey:
    if not isinstance(request, csr.CertificationRequest):
        request = load_csr(request)
    try:
        return public_key_from_info(request["certification_request_info"]["subject_pk_info"])
    except SM2Error as e:
        raise X509Error(f"request key: {e}") from None


def check_csr(data: bytes | str) -> PublicKey:
    """Proof of possession: the request must be signed (sm2-with-sm3, default ID) by the private
    key of the public key it carries. Returns that public key; raises X509Error otherwise."""
    request = load_csr(data)
    _check_sm2_algorithm(request["signature_algorithm"])
    public_key = csr_public_key(request)
    # dump() of a parsed, unmodified value is the received encoding, which is what was signed.
    if not public_key.verify(request["certification_request_info"].dump(), request["signature"].native):
        raise X509Error("the request's signature does not verify under its own public key")
    return public_key


def csr_subject(data: bytes | str | csr.CertificationRequest) -> str:
    request = data if isinstance(data, csr.CertificationRequest) else load_csr(data)
    return name_to_string(request["certification_request_info"]["subject"])


# ---------------------------------------------------------------------------------------------
# Certificate revocation lists

# RFC 5280 §5.3.1 reason names → asn1crypto's. certificateHold and removeFromCRL are not offered:
# a hold is a suspension this CA has no way to lift, and removeFromCRL belongs to delta CRLs.
REASONS = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "privilegeWithdrawn": "privilege_withdrawn",
    "aACompromise": "aa_compromise",
}
_REASON_NAMES = {v: k for k, v in REASONS.items()}


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime  # naive UTC
    reason: str = "unspecified"  # an RFC 5280 name, a key of REASONS


def build_crl(
    issuer_certificate: bytes,
    signer: Signer,
    *,
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
    revoked: Iterable[RevokedEntry] = (),
) -> bytes:
    """A signed v2 CRL (DER) from the CA whose certificate is given: crlNumber and
    authorityKeyIdentifier extensions, a reasonCode per entry (absent for "unspecified", as
    RFC 5280 §5.3.1 asks), entries in serial order."""
    issuer = load_certificate(issuer_certificate)
    issuer_key = certificate_public_key(issuer)
    authority_id = _subject_key_id(issuer)
    if crl_number < 0:
        raise X509Error("a CRL number is a non-negative integer")
    if next_update <= this_update:
        raise X509Error("next_update must be later than this_update")
    entries = []
    for entry in sorted(revoked, key=lambda e: e.serial):
        if entry.reason not in REASONS:
            raise X509Error(f"unknown revocation reason {entry.reason!r}")
        fields = {"user_certificate": entry.serial, "revocation_date": _time(entry.revoked_at)}
        if entry.reason != "unspecified":
            fields["crl_entry_extensions"] = [
                _extension(crl.CRLEntryExtension, "crl_reason", crl.CRLReason(REASONS[entry.reason]))
            ]
        entries.append(crl.RevokedCertificate(fields))
    tbs_fields = {
        "version": "v2",
        "signature": sm2_with_sm3_algorithm(),
        "issuer": issuer.subject,
        "this_update": _time(this_update),
        "next_update": _time(next_update),
        "crl_extensions": [
            _extension(crl.TBSCertListExtension, "crl_number", core.Integer(crl_number)),
            _extension(
                crl.TBSCertListExtension,
                "authority_key_identifier",
                x509.AuthorityKeyIdentifier({"key_identifier": authority_id}),
            ),
        ],
    }
    if entries:  # RFC 5280: an empty list is left out, not encoded as an empty SEQUENCE
        tbs_fields["revoked_certificates"] = entries
    tbs = crl.TbsCertList(tbs_fields)
    signature = _sign(signer, tbs.dump(), issuer_key, "CRL")
    return crl.CertificateList(
        {"tbs_cert_list": tbs, "signature_algorithm": sm2_with_sm3_algorithm(), "signature": signature}
    ).dump()


def load_crl(data: bytes | str) -> crl.CertificateList:
    try:
        lst = crl.CertificateList.load(unpem(data), strict=True)
        lst.native  # noqa: B018 - force the lazy parse of every field now
    except (ValueError, TypeError) as e:
        raise X509Error(f"not a CRL: {e}") from None
    return lst


def _as_crl(data: bytes | str | crl.CertificateList) -> crl.CertificateList:
    return data if isinstance(data, crl.CertificateList) else load_crl(data)


def crl_number(data: bytes | str | crl.CertificateList) -> int | None:
    value = _as_crl(data).crl_number_value
    return value.native if value is not None else None


def crl_entries(data: bytes | str | crl.CertificateList) -> dict[int, str]:
    """{serial: RFC 5280 reason name} of every revoked certificate on the list."""
    return {
        entry["user_certificate"].native: _REASON_NAMES.get(
            entry.crl_reason_value.native if entry.crl_reason_value is not None else "unspecified", "unspecified"
        )
        for entry in _as_crl(data)["tbs_cert_list"]["revoked_certificates"]
    }


def crl_validity(data: bytes | str | crl.CertificateList) -> tuple[datetime, datetime | None]:
    """(thisUpdate, nextUpdate) as naive UTC."""
    tbs = _as_crl(data)["tbs_cert_list"]
    next_update = tbs["next_update"].native
    return _naive_utc(tbs["this_update"].native), _naive_utc(next_update) if next_update else None


def verify_crl(data: bytes | str | crl.CertificateList, issuer_public_key: PublicKey) -> bool:
    """Whether the CRL carries a valid sm2-with-sm3 signature by issuer_public_key."""
    try:
        lst = _as_crl(data)
        _check_sm2_algorithm(lst["signature_algorithm"])
        if lst["tbs_cert_list"]["signature"].dump() != lst["signature_algorithm"].dump():
            return False
        return issuer_public_key.verify(lst["tbs_cert_list"].dump(), lst["signature"].native)
    except X509Error:
        return False
