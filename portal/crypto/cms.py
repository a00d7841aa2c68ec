"""CMS SignedData (RFC 5652), detached, with the national algorithms: what goes into a PDF
signature's /Contents.

Building follows DESIGN.md §5: ContentInfo id-signedData, digest SM3, encapsulated content id-data
and absent (detached), the signer certificate and its chain, one SignerInfo identified by issuer
and serial number with the signed attributes content type, message digest (SM3 over the signed
bytes; for a PDF, the byte range) and signing time, and an sm2-with-sm3 signature over
SM3(Z_A ‖ DER(SET OF signedAttrs)) with the default user ID.

Nothing here holds a private key. The signature comes from a `Signer`: a callable that receives
exactly DER(SET OF signedAttrs) and returns a DER SM2 signature. `PrivateKey.sign` is one; a
two-party session where the phone co-signs later is another, which is why building also comes in
two halves: `prepare_signed_attrs` gives the bytes to sign, `assemble` wraps a signature that
arrives later. Either way, a signature that does not verify under the signer certificate's key
never leaves this module inside a CMS.

Verifying accepts more than we write: the GM/T 0010 (GB/T 35275) content types and its "SM2-1"
signature OID, and RSA (PKCS#1 v1.5, PSS) and ECDSA (P-256/384/521) signers with SHA-2, through
the `cryptography` package. It checks one signature against its own certificate; building and
trusting a chain is the caller's job, so every embedded certificate is returned for that.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asn1crypto.tsp  # noqa: F401 (on import, teaches cms.CMSAttribute the ESS signing-certificate attributes)
from asn1crypto import cms, core, x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from portal.crypto import sm3 as sm3_module
from portal.crypto.asn1 import (
    GM_DATA,
    GM_SIGNED_DATA,
    SM2_SIGN,
    SM2_WITH_SM3,
    is_sm2_key,
    public_key_from_info,
    sm2_with_sm3_algorithm,
    sm3_algorithm,
)
from portal.crypto.sm2 import PublicKey, SM2Error

Signer = Callable[[bytes], bytes]

ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"

# Digests a message-digest attribute may use: the national one and SHA-2 (nothing weaker).
_DIGESTS = {
    "sm3": sm3_module.new,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_PYCA_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
# ESSCertID (RFC 2634) fixes SHA-1; there it only names a certificate, so it is accepted.
_ESS_HASHES = {**_DIGESTS, "sha1": hashlib.sha1}

# Signature algorithm -> the hash it implies; None where CMS takes the hash from the SignerInfo's
# digestAlgorithm (rsaEncryption is written that way by OpenSSL and `cryptography`).
_RSA_PKCS1 = {"rsassa_pkcs1v15": None, "sha256_rsa": "sha256", "sha384_rsa": "sha384", "sha512_rsa": "sha512"}
_ECDSA = {"ecdsa": None, "sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}
_ECDSA_CURVES = {"secp256r1", "secp384r1", "secp521r1"}


class CMSError(ValueError):
    """A CMS that cannot be built as asked, or input that is not a CMS SignedData at all."""


class NotCMSError(CMSError):
    """The input to `verify` is not a DER ContentInfo carrying a SignedData."""


class InvalidSignatureError(CMSError):
    """`assemble` was given a signature that does not verify under the signer certificate."""


# ---------------------------------------------------------------------------------------------
# Building


def prepare_signed_attrs(
    *, content: bytes | None = None, digest: bytes | None = None, signing_time: datetime | None = None
) -> bytes:
    """DER(SET OF signedAttrs) for the content (or its SM3 digest): the exact bytes an SM2
    signer signs. Keep them, and pass them to `assemble` with the signature.

    signing_time: aware, or naive meaning UTC; now if omitted. Whole seconds are kept.
    """
    message_digest = _sm3_of(content, digest)
    attrs = cms.CMSAttributes(
        [
            _attribute("content_type", cms.ContentType("data")),
            _attribute("message_digest", core.OctetString(message_digest)),
            _attribute("signing_time", _cms_time(signing_time or datetime.now(UTC))),
        ]
    )
    # A SET OF is DER only with its members sorted by encoding; asn1crypto sorts on dump.
    return attrs.dump()


def assemble(
    signed_attrs: bytes,
    signature: bytes,
    signer_cert: bytes | x509.Certificate,
    chain: Iterable[bytes | x509.Certificate] = (),
) -> bytes:
    """DER ContentInfo(SignedData), detached, from the output of `prepare_signed_attrs` and the
    DER SM2 signature over it. Raises InvalidSignatureError if the signature does not verify
    under the signer certificate's key (a wrong key, or a co-signature gone wrong)."""
    cert = _load_certificate(signer_cert)
    public_key = _sm2_public_key(cert)
    attrs = _load_own_signed_attrs(signed_attrs)
    if not public_key.verify(signed_attrs, signature):
        raise InvalidSignatureError("the signature does not verify under the signer certificate's key")

    signer_info = cms.SignerInfo(
        {
            "version": "v1",  # v1 goes with issuerAndSerialNumber (RFC 5652 §5.3)
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": cert.issuer, "serial_number": cert.serial_number},
            ),
            "digest_algorithm": sm3_algorithm(),
            # Stored as [0] IMPLICIT; the signature covers the same bytes tagged as a SET (0x31).
            "signed_attrs": attrs,
            "signature_algorithm": sm2_with_sm3_algorithm(),
            "signature": signature,
        }
    )
    certificates = _deduplicated([cert, *map(_load_certificate, chain)])
    signed_data = cms.SignedData(
        {
            # v1: id-data content, issuerAndSerialNumber, X.509 certificates only (RFC 5652 §5.1)
            "version": "v1",
            "digest_algorithms": [sm3_algorithm()],
            "encap_content_info": {"content_type": "data"},  # content absent: detached
            "certificates": [cms.CertificateChoices(name="certificate", value=c) for c in certificates],
            "signer_infos": [signer_info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def sign_detached(
    signer_cert: bytes | x509.Certificate,
    sign: Signer,
    *,
    chain: Iterable[bytes | x509.Certificate] = (),
    content: bytes | None = None,
    digest: bytes | None = None,
    signing_time: datetime | None = None,
) -> bytes:
    """DER ContentInfo(SignedData), detached, in one go: prepare the signed attributes, have
    `sign` sign them, assemble. Pass the content, or (for a PDF) the SM3 digest of the byte range."""
    signed_attrs = prepare_signed_attrs(content=content, digest=digest, signing_time=signing_time)
    return assemble(signed_attrs, sign(signed_attrs), signer_cert, chain)


def _sm3_of(content: bytes | None, digest: bytes | None) -> bytes:
    if (content is None) == (digest is None):
        raise ValueError("pass either the content or its SM3 digest")
    if digest is None:
        return sm3_module.sm3(content)
    if len(digest) != sm3_module.DIGEST_SIZE:
        raise ValueError(f"an SM3 digest is {sm3_module.DIGEST_SIZE} bytes, not {len(digest)}")
    return bytes(digest)


def _attribute(attr_type: str, value: core.Asn1Value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": attr_type, "values": [value]})


def _cms_time(value: datetime) -> cms.Time:
    """UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5652 §11.3); whole seconds."""
    value = (value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)).replace(microsecond=0)
    return cms.Time(name="utc_time" if 1950 <= value.year < 2050 else "generalized_time", value=value)


def _load_certificate(cert: bytes | x509.Certificate) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    try:
        loaded = x509.Certificate.load(bytes(cert), strict=True)
        _ = loaded.native  # parse it all now, so a broken certificate fails here and not halfway
    except Exception:  # asn1crypto reports malformed input with whatever it hits
        raise CMSError("not a DER X.509 certificate") from None
    return loaded


def _sm2_public_key(cert: x509.Certificate) -> PublicKey:
    try:
        return public_key_from_info(cert.public_key)
    except SM2Error:
        raise CMSError("the signer certificate does not carry a valid SM2 public key") from None


def _load_own_signed_attrs(signed_attrs: bytes) -> cms.CMSAttributes:
    """Parse what `prepare_signed_attrs` made, and refuse anything that would not fit the
    SignedData `assemble` builds around it (id-data content, an SM3 message digest)."""
    try:
        attrs = cms.CMSAttributes.load(bytes(signed_attrs), strict=True)
        _ = attrs.native  # parse it all now: asn1crypto parses lazily
        found = _Attributes(attrs)
        content_type = found.single("content_type")
        message_digest = found.single("message_digest")
    except Exception:  # asn1crypto reports malformed input with whatever it hits
        raise CMSError("the signed attributes are not what prepare_signed_attrs makes") from None
    if content_type is None or content_type.dotted != ID_DATA:
        raise CMSError("the signed attributes must declare content type id-data")
    if message_digest is None or len(message_digest.native) != sm3_module.DIGEST_SIZE:
        raise CMSError("the signed attributes must carry an SM3 message digest")
    return attrs


def _deduplicated(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for cert in certs:
        der = cert.dump()
        if der not in seen:
            seen.add(der)
            unique.append(cert)
    return unique


# ---------------------------------------------------------------------------------------------
# Verifying


@dataclass(frozen=True)
class VerificationResult:
    """What `verify` found. `ok` only when the message digest matches the content and the
    signature verifies under the signer certificate's key; otherwise `reason` says why.

    signature_ok also requires well-formed signed attributes (a single content type equal to the
    encapsulated content type, algorithm protection consistent if present) and the signer
    certificate present. Algorithm names are asn1crypto's ("sm3", "sha256", "sm2_sm3",
    "sm2_sign", "rsassa_pss", "sha256_ecdsa", ...), or the dotted OID when unknown.
    signing_time is naive UTC, like every time the portal stores.
    """

    message_digest_ok: bool
    signature_ok: bool
    reason: str | None
    signer_certificate: x509.Certificate | None = field(repr=False)
    certificates: tuple[x509.Certificate, ...] = field(repr=False)
    content_type: str | None = None
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None
    message_digest: bytes | None = None
    signing_time: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.message_digest_ok and self.signature_ok

    @property
    def signer_certificate_der(self) -> bytes | None:
        return self.signer_certificate.dump() if self.signer_certificate is not None else None


def verify(cms_der: bytes, content: bytes | None = None, digest: bytes | None = None) -> VerificationResult:
    """Check a CMS SignedData with one signer against its content, or against the content's
    digest computed with the SignerInfo's digest algorithm. For an attached signature, leave both
    out to check the embedded content. Bytes after the DER (a PDF's /Contents zero padding) are
    ignored.

    A bad or unsupported signature gives a result with the reason; NotCMSError is raised only
    for input that is not a ContentInfo(SignedData) at all.
    """
    if content is not None and digest is not None:
        raise ValueError("pass the content or its digest, not both")
    signed_data = _load_signed_data(cms_der)
    certificates = tuple(c.chosen for c in signed_data["certificates"] if c.name == "certificate")
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        reason = f"expected one SignerInfo, found {len(signer_infos)}"
        return VerificationResult(False, False, reason, None, certificates)

    signer_info = signer_infos[0]
    encap = signed_data["encap_content_info"]
    digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
    signature_algorithm = signer_info["signature_algorithm"]
    signer_cert = find_signer(signer_info["sid"], certificates)
    digest_problems: list[str] = []
    signature_problems: list[str] = []
    message_digest = signing_time = None

    if isinstance(signer_info["signed_attrs"], core.Void):
        # RFC 5652 allows signing the content directly, but our profile and PAdES require
        # signed attributes, and without them there is no message digest to compare.
        digest_problems.append("no signed attributes")
        signature_problems.append("no signed attributes")
    else:
        try:
            found = _Attributes(signer_info["signed_attrs"])
            message_digest = _message_digest(found)
            signing_time = _signing_time(found)
            _check_content_type(found, encap["content_type"])
            _check_algorithm_protection(found, signer_info)
            if signer_cert is not None:
                _check_signing_certificate(found, signer_cert)
        except _Malformed as problem:
            signature_problems.append(str(problem))
        if message_digest is None:
            digest_problems.append("no single message-digest attribute")
        else:
            digest_problems += _compare_digest(message_digest, digest_algorithm, content, digest, encap)
        if signer_cert is None:
            signature_problems.append("the signer certificate is not in the CMS")
        elif not signature_problems:
            problem = _check_signature(
                signer_info["signature"].native,
                _signed_bytes(signer_info),
                signature_algorithm,
                digest_algorithm,
                signer_cert,
            )
            signature_problems += [problem] if problem else []

    problems = list(dict.fromkeys(digest_problems + signature_problems))  # each reason once, in order
    return VerificationResult(
        message_digest_ok=not digest_problems,
        signature_ok=not signature_problems,
        reason="; ".join(problems) or None,
        signer_certificate=signer_cert,
        certificates=certificates,
        content_type=encap["content_type"].native,
        digest_algorithm=digest_algorithm,
        signature_algorithm=signature_algorithm["algorithm"].native,
        message_digest=message_digest,
        signing_time=signing_time,
    )


class _ContentInfo(cms.ContentInfo):
    """ContentInfo that also parses GM/T 0010 signedData (1.2.156.10197.6.1.4.2.2) as SignedData:
    the structure is the same, only the OID differs. A subclass, so asn1crypto's global map stays
    as it is for everyone else."""

    _oid_specs = {**cms.ContentInfo._oid_specs, "gm_signed_data": cms.SignedData}


class _Malformed(Exception):
    """Signed attributes that break RFC 5652 (the message names the problem)."""


def _load_signed_data(data: bytes) -> cms.SignedData:
    try:
        info = _ContentInfo.load(bytes(data))
        content_type = info["content_type"].dotted
        signed_data = info["content"]
        if content_type in (ID_SIGNED_DATA, GM_SIGNED_DATA) and isinstance(signed_data, cms.SignedData):
            # Parse it all now, so nothing fails halfway through the checks. (`.native` would do it
            # too, but also builds Python values for every field: 4× slower on PDF signatures.)
            signed_data._parse_children(recurse=True)
            return signed_data
    except Exception:  # asn1crypto parses lazily and reports malformed input with whatever it hits
        raise NotCMSError("not a DER CMS ContentInfo") from None
    raise NotCMSError("the ContentInfo does not carry a SignedData")


def find_signer(sid: cms.SignerIdentifier, certificates: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The certificate a SignerIdentifier names: by issuer and serial, or by key identifier."""
    for cert in certificates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and cert.issuer == wanted["issuer"]:
                return cert
        elif sid.chosen.native in _key_identifiers(cert):
            return cert
    return None


def _key_identifiers(cert: x509.Certificate) -> set[bytes]:
    """The certificate's subjectKeyIdentifier; without the extension, the values a signer may
    have computed: SHA-1 (RFC 5280 method 1) or SM3 (our profile) of the public key bits."""
    if cert.key_identifier is not None:
        return {cert.key_identifier}
    key_bits = bytes(cert.public_key["public_key"])
    return {hashlib.sha1(key_bits).digest(), sm3_module.sm3(key_bits)[:20]}


class _Attributes:
    """Signed attributes by type, enforcing RFC 5652 §11: an attribute type appears once, and
    content type, message digest and signing time carry exactly one value."""

    def __init__(self, attrs: cms.CMSAttributes):
        self._by_type: dict[str, cms.CMSAttribute] = {}
        for attr in attrs:
            name = attr["type"].native
            if name in self._by_type:
                raise _Malformed(f"the {name} attribute appears more than once")
            self._by_type[name] = attr

    def single(self, name: str) -> core.Asn1Value | None:
        attr = self._by_type.get(name)
        if attr is None:
            return None
        if len(attr["values"]) != 1:
            raise _Malformed(f"the {name} attribute must have exactly one value")
        return attr["values"][0]


def _message_digest(found: _Attributes) -> bytes | None:
    value = found.single("message_digest")
    return None if value is None else value.native


def _signing_time(found: _Attributes) -> datetime | None:
    value = found.single("signing_time")
    if value is None:
        return None
    if not isinstance(value.native, datetime):  # asn1crypto's stand-in for year 0
        raise _Malformed("the signing-time attribute is out of range")
    return value.native.astimezone(UTC).replace(tzinfo=None)


def _check_content_type(found: _Attributes, encap_content_type: cms.ContentType) -> None:
    value = found.single("content_type")
    if value is None:
        raise _Malformed("no content-type attribute")
    if value.dotted != encap_content_type.dotted:
        raise _Malformed(
            f"the content-type attribute ({value.dotted}) differs from the encapsulated content type"
            f" ({encap_content_type.dotted})"
        )
    if encap_content_type.dotted not in (ID_DATA, GM_DATA):
        raise _Malformed(f"unsupported content type {encap_content_type.dotted}: expected id-data or GM/T 0010 data")


def _check_algorithm_protection(found: _Attributes, signer_info: cms.SignerInfo) -> None:
    """RFC 6211: if the signer protected its algorithm choice, the SignerInfo must agree."""
    protection = found.single("cms_algorithm_protection")
    if protection is None:
        return
    claimed = (signer_info["digest_algorithm"], signer_info["signature_algorithm"])
    protected = (protection["digest_algorithm"], protection["signature_algorithm"])
    for mine, theirs in zip(claimed, protected, strict=True):
        # Compare parsed values: absent and NULL parameters mean the same.
        if (
            mine["algorithm"].dotted != theirs["algorithm"].dotted
            or mine["parameters"].native != theirs["parameters"].native
        ):
            raise _Malformed("the CMS algorithm protection attribute does not match the SignerInfo")


def _check_signing_certificate(found: _Attributes, cert: x509.Certificate) -> None:
    """ESS (RFC 2634, RFC 5035): a signer that bound its certificate into the signed attributes
    (CAdES and pyHanko signers do) must have signed with that certificate. The first ESSCertID
    names the signer's; the rest may name its chain."""
    for name in ("signing_certificate_v2", "signing_certificate"):
        value = found.single(name)
        if value is None:
            continue
        if len(value["certs"]) == 0:
            raise _Malformed(f"the {name} attribute names no certificate")
        first = value["certs"][0]
        hash_name = first["hash_algorithm"]["algorithm"].native if name == "signing_certificate_v2" else "sha1"
        new_hash = _ESS_HASHES.get(hash_name)
        if new_hash is None:
            raise _Malformed(f"unsupported hash {hash_name} in the {name} attribute")
        if new_hash(cert.dump()).digest() != first["cert_hash"].native:
            raise _Malformed(f"the {name} attribute names another certificate than the signer's")


def _compare_digest(
    message_digest: bytes,
    digest_algorithm: str,
    content: bytes | None,
    digest: bytes | None,
    encap: cms.EncapsulatedContentInfo,
) -> list[str]:
    new_hash = _DIGESTS.get(digest_algorithm)
    if new_hash is None:
        return [f"unsupported digest algorithm {digest_algorithm}"]
    if digest is None:
        if content is None and not isinstance(encap["content"], core.Void):
            content = bytes(encap["content"])
        if content is None:
            return ["detached signature: neither the content nor its digest was given"]
        digest = new_hash(content).digest()
    elif len(digest) != new_hash().digest_size:
        return [f"the given digest is {len(digest)} bytes, but a {digest_algorithm} digest is {new_hash().digest_size}"]
    if message_digest != digest:
        return ["the message digest does not match the content"]
    return []


def _signed_bytes(signer_info: cms.SignerInfo) -> bytes:
    """DER(SET OF signedAttrs) as the signer produced it. The SignerInfo stores the attributes as
    [0] IMPLICIT (tag 0xA0), but RFC 5652 §5.4 has the signature cover them with their own SET OF
    tag (0x31): swap the one tag byte, and keep the length and contents exactly as received."""
    contents = signer_info["signed_attrs"].contents  # the received bytes, never re-encoded
    n = len(contents)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return b"\x31" + length + contents


def _check_signature(
    signature: bytes,
    signed: bytes,
    algorithm: cms.SignedDigestAlgorithm,
    digest_algorithm: str,
    cert: x509.Certificate,
) -> str | None:
    """None if the signature verifies, else the reason."""
    oid = algorithm["algorithm"].dotted
    if oid in (SM2_WITH_SM3, SM2_SIGN):
        if digest_algorithm != "sm3":
            return f"an SM2 signature needs the SM3 digest, not {digest_algorithm}"
        if not is_sm2_key(cert.public_key):
            return "the signature algorithm is SM2 but the signer certificate's key is not"
        try:
            public_key = public_key_from_info(cert.public_key)
        except SM2Error:
            return "the signer certificate's SM2 public key is not valid"
        # SM3(Z_A ‖ signed) with the default user ID, as GM/T 0009 prescribes for CMS.
        return None if public_key.verify(signed, signature) else "the SM2 signature does not verify"
    return _check_pyca_signature(signature, signed, algorithm, digest_algorithm, cert)


def _check_pyca_signature(
    signature: bytes,
    signed: bytes,
    algorithm: cms.SignedDigestAlgorithm,
    digest_algorithm: str,
    cert: x509.Certificate,
) -> str | None:
    name = algorithm["algorithm"].native
    if name == "rsassa_pss":
        return _check_pss(signature, signed, algorithm, digest_algorithm, cert)
    if name in _RSA_PKCS1:
        key_type, implied_hash = rsa.RSAPublicKey, _RSA_PKCS1[name]
    elif name in _ECDSA:
        key_type, implied_hash = ec.EllipticCurvePublicKey, _ECDSA[name]
    else:
        return f"unsupported signature algorithm {name}"
    hash_name = implied_hash or digest_algorithm
    if hash_name != digest_algorithm or hash_name not in _PYCA_HASHES:
        return f"signature algorithm {name} does not go with digest algorithm {digest_algorithm}"

    public_key = _pyca_public_key(cert)
    if not isinstance(public_key, key_type):
        return f"the signer certificate's key does not fit signature algorithm {name}"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name not in _ECDSA_CURVES:
        return f"unsupported ECDSA curve {public_key.curve.name}"
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signed, padding.PKCS1v15(), _PYCA_HASHES[hash_name]())
        else:
            public_key.verify(signature, signed, ec.ECDSA(_PYCA_HASHES[hash_name]()))
    except InvalidSignature:
        return f"the {name} signature does not verify"
    return None


def _check_pss(
    signature: bytes,
    signed: bytes,
    algorithm: cms.SignedDigestAlgorithm,
    digest_algorithm: str,
    cert: x509.Certificate,
) -> str | None:
    params = algorithm["parameters"]
    if isinstance(params, core.Void) or params.native is None:
        return "RSASSA-PSS without parameters means SHA-1, which is not accepted"
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    mgf_hash = mgf["parameters"]["algorithm"].native if mgf["algorithm"].native == "mgf1" else None
    if hash_name != digest_algorithm or hash_name not in _PYCA_HASHES or mgf_hash not in _PYCA_HASHES:
        return f"unsupported RSASSA-PSS parameters for digest algorithm {digest_algorithm}"
    if params["trailer_field"].native != "trailer_field_bc":
        return "unsupported RSASSA-PSS trailer field"
    salt_length = params["salt_length"].native
    if salt_length < 0:
        return "a negative RSASSA-PSS salt length"

    public_key = _pyca_public_key(cert)
    if not isinstance(public_key, rsa.RSAPublicKey):
        return "the signer certificate's key does not fit signature algorithm rsassa_pss"
    pss = padding.PSS(mgf=padding.MGF1(_PYCA_HASHES[mgf_hash]()), salt_length=salt_length)
    try:
        public_key.verify(signature, signed, pss, _PYCA_HASHES[hash_name]())
    except InvalidSignature:
        return "the rsassa_pss signature does not verify"
    return None


def _pyca_public_key(cert: x509.Certificate):
    """The certificate's key for `cryptography`, or None if it cannot load it (SM2, say)."""
    try:
        return serialization.load_der_public_key(cert.public_key.dump())
    except (ValueError, UnsupportedAlgorithm):
        return None
