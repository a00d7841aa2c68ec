"""Verify every signature in a PDF (DESIGN.md §6), for people who are not experts.

For each signature: which revision it signed and whether its /ByteRange is exactly what a signer
writes; whether the signed bytes still match (digest) and the CMS signature verifies (SM2, RSA,
ECDSA); who signed (certificate), whether that certificate chains to one of the given trust
anchors and was valid at signing time, whether it has been revoked; which seals the signature's
field draws (pages, rectangles, images); and what the file went through after it was signed:
allowed changes (more signatures and their fields and widgets, document timestamps, validation
data) or tampering (page content, pages added or removed, anything else). A sentence in Chinese
sums it up.

Division of labour: pyHanko reads the file — its reader knows the revision history, and its
difference analysis (`DEFAULT_DIFF_POLICY`) rates what each later revision changed relative to a
signed one. The cryptography is ours (`portal.crypto`): pyHanko's validator cannot check SM2
(crypto_standards.md §4.6), and one code path for all algorithms keeps the verdicts comparable.
Certificate paths and CRLs are checked here, not by pyhanko-certvalidator, for the same reason.

Hostile input: a damaged, encrypted or non-PDF file raises `PdfRefused` (a reason and a Chinese
message); a malformed signature inside a readable file is a verdict that says so. Loops over
attacker-controlled structures (page trees, form XObjects, certificate pools) are bounded.
"""

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

from asn1crypto import cms as asn1_cms
from asn1crypto import crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509 as pyca_x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import PdfFileReader, process_data_at_eof
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import FieldMDPSpec, MDPPerm, enumerate_sig_fields
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator

from portal.crypto import cms, x509
from portal.crypto.asn1 import SM2_SIGN, SM2_WITH_SM3, public_key_from_info
from portal.crypto.sm2 import SM2Error
from portal.crypto.sm3 import sm3
from portal.pdf.errors import PdfRefused

__all__ = [
    "CertificateInfo",
    "ChainCheck",
    "ChangesAfter",
    "PdfRefused",
    "PdfVerification",
    "RevocationCheck",
    "RevocationStatus",
    "SealImage",
    "SealImpression",
    "SignatureVerdict",
    "extract_revision",
    "verify_pdf",
]

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")

_SIGNATURE_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}
_TIMESTAMP_SUBFILTER = "/ETSI.RFC3161"

# Bounds on structures a hostile file controls.
_MAX_PAGE_TREE_NODES = 100_000
_MAX_ENTRIES = 1_000  # widgets of one field, XObjects of one resource dictionary
_MAX_XOBJECT_DEPTH = 8
_MAX_PATH_LENGTH = 8  # certificates from signer to anchor
_MAX_CERTIFICATE_CHECKS = 64  # issuer signatures tried while building one path

# A signature time more than this after "now" is not clock skew but a false claim.
_CLOCK_SKEW = timedelta(minutes=10)

# Critical extensions a path may carry: the ones checked below, and ones that restrict nothing
# a signature verifier decides. Any other critical extension makes the path untrusted (RFC 5280).
_UNDERSTOOD_CRITICAL_EXTENSIONS = {
    "basic_constraints",
    "key_usage",
    "extended_key_usage",
    "subject_alt_name",
    "issuer_alt_name",
    "certificate_policies",
    "key_identifier",
    "authority_key_identifier",
    "crl_distribution_points",
    "authority_information_access",
}
_SIGNING_KEY_USAGES = {"digital_signature", "non_repudiation"}

_SHA2 = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


# ---------------------------------------------------------------------------------------------
# What a verification reports


@dataclass(frozen=True)
class RevocationStatus:
    """What the platform knows about one of its own certificates (the `is_revoked` callback's
    answer; the callback returns None for certificates that are not the platform's)."""

    revoked: bool
    revoked_at: datetime | None = None  # naive UTC
    reason: str | None = None  # an RFC 5280 reason name ("keyCompromise", ...)


@dataclass(frozen=True)
class CertificateInfo:
    subject: str  # RFC 4514, most specific first
    common_name: str | None
    organization: str | None
    serial: str  # lower-case hex
    issuer: str
    not_before: datetime  # naive UTC
    not_after: datetime
    der: bytes = field(repr=False)


@dataclass(frozen=True)
class ChainCheck:
    """The certification path from the signer to a trust anchor, when one was found.

    trusted: a path exists whose every link's signature verifies, every issuer is a CA allowed to
    issue (basic constraints, key usage, path length) and no certificate carries a critical
    extension we do not understand. valid_at_signing_time: every certificate of that path (or the
    signer's alone, without a path) was within its validity period at the signing time."""

    trusted: bool
    valid_at_signing_time: bool
    path: tuple[CertificateInfo, ...]  # signer first, anchor last; empty if untrusted
    problem: str | None  # in Chinese, None when trusted and valid


@dataclass(frozen=True)
class RevocationCheck:
    """Status "good": every certificate of the path below the anchor is known not to be revoked;
    "revoked": one is (the first found is described); "unknown": no callback answer and no
    usable, current CRL for at least one of them."""

    status: str  # "good" | "revoked" | "unknown"
    source: str | None = None  # "callback" | "crl" for the certificate described
    certificate: str | None = None  # subject of the revoked or unchecked certificate
    revoked_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SealImage:
    """An image XObject a seal widget draws: the stream as stored (`data`, still encoded with
    `filters`; DCTDecode data is a JPEG file), with what is needed to decode the rest. `ref`
    (object number, generation) finds it again in the extracted revision."""

    ref: tuple[int, int] | None
    width: int | None
    height: int | None
    bits_per_component: int | None
    color_space: str | None
    filters: tuple[str, ...]
    data: bytes = field(repr=False)
    soft_mask: "SealImage | None" = None


@dataclass(frozen=True)
class SealImpression:
    """One widget of a signature field, as it was in the signed revision."""

    page: int | None  # 1-based; None if the widget is on no page
    rect: tuple[float, float, float, float] | None
    images: tuple[SealImage, ...]


@dataclass(frozen=True)
class ChangesAfter:
    """What the revisions after the signed one changed, as pyHanko's difference analysis rates
    it (level: NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS or OTHER) and as we judge it:
    allowed = signatures with their fields and widgets, document timestamps, validation data,
    metadata, filling unlocked form fields; anything rated above FORM_FILLING, breaking a DocMDP
    restriction, touching page content or adding or removing pages is tampering."""

    level: str
    allowed: bool
    description: str  # in Chinese
    changed_fields: tuple[str, ...] = ()
    pages_changed: bool = False  # page content streams differ from the signed revision
    page_count_changed: bool = False
    detail: str | None = None  # pyHanko's own words, for experts and logs


@dataclass(frozen=True)
class SignatureVerdict:
    field_name: str
    kind: str  # "signature" | "timestamp" (a document timestamp, /ETSI.RFC3161)
    revision: int  # 1-based among the file's revisions (xref sections)
    byte_range: tuple[int, ...]
    byte_range_ok: bool  # the strict checks of `_check_byte_range`
    coverage: str  # pyHanko's SignatureCoverageLevel name, or "UNCLEAR"
    covers_whole_file: bool
    digest_ok: bool
    signature_ok: bool
    digest_algorithm: str | None
    signature_algorithm: str | None
    signer: CertificateInfo | None
    signing_time: datetime | None  # naive UTC: the CMS signing-time attribute (a timestamp's genTime)
    chain: ChainCheck
    revocation: RevocationCheck
    seals: tuple[SealImpression, ...]
    changes: ChangesAfter
    problems: tuple[str, ...]  # each a Chinese sentence; empty when valid
    summary: str
    valid: bool

    @property
    def intact(self) -> bool:
        """The signed bytes are what the signer signed, and nothing after them is tampering."""
        return (
            self.byte_range_ok
            and self.coverage in ("ENTIRE_FILE", "ENTIRE_REVISION")
            and self.digest_ok
            and self.signature_ok
            and self.changes.allowed
        )

    @property
    def signed_length(self) -> int:
        """Bytes from the start of the file to the end of the signed revision."""
        return self.byte_range[2] + self.byte_range[3] if len(self.byte_range) == 4 else 0


@dataclass(frozen=True)
class PdfVerification:
    signatures: list[SignatureVerdict]  # in signing order
    revisions: int

    @property
    def has_signatures(self) -> bool:
        return bool(self.signatures)

    @property
    def all_valid(self) -> bool:
        return self.has_signatures and all(v.valid for v in self.signatures)

    @property
    def summary(self) -> str:
        if not self.signatures:
            return "文件中没有电子签名"
        if self.all_valid:
            return f"全部 {len(self.signatures)} 个签名有效"
        bad = sum(not v.valid for v in self.signatures)
        return f"{len(self.signatures)} 个签名中有 {bad} 个未通过验证"


Revoked = Callable[[asn1_x509.Certificate], RevocationStatus | None]


# ---------------------------------------------------------------------------------------------
# Entry points


def verify_pdf(
    data: bytes,
    *,
    trust_anchors: Sequence[bytes],
    is_revoked: Revoked | None = None,
    crls: Sequence[bytes] = (),
    at: datetime | None = None,
) -> PdfVerification:
    """Verify every signature and document timestamp in `data`.

    trust_anchors: DER (or PEM) CA certificates; a signer is trusted only through a path to one.
    is_revoked: asked first about each certificate of a path (below the anchor); None means
    "not ours", and the CRLs are consulted. crls: DER (or PEM) CRLs of imported CAs; each counts
    only if its signature verifies under the issuer found in the path. at: "now" (aware, or naive
    meaning UTC), for CRL freshness and the sanity of claimed signing times; tests freeze it.

    Raises PdfRefused for a file that cannot be read as a PDF (damaged, encrypted, not a PDF),
    and ValueError for a trust anchor that is not a certificate (a configuration error).
    """
    now = _naive_utc(at) if at is not None else datetime.now(UTC).replace(tzinfo=None)
    trust = _Trust(_load_anchors(trust_anchors), _load_crls(crls), is_revoked, now)
    data = bytes(data)
    reader = _open(data)
    try:
        document = _Document(data, reader)
        found = _find_signatures(document)
        verdicts = [_verify_one(document, sig, found, trust) for sig in found]
    except PdfRefused:
        raise
    except _CallbackFailed as e:  # the caller's own error, not the file's
        raise e.__cause__ from None
    except Exception as e:  # a hostile file can make the parser fail anywhere, with anything
        logger.info("refusing a PDF that failed during verification", exc_info=e)
        raise PdfRefused("damaged", "文件结构已损坏，无法完成签名验证", detail=repr(e)) from None
    return PdfVerification(signatures=verdicts, revisions=reader.xrefs.total_revisions)


def extract_revision(data: bytes, which: SignatureVerdict | int) -> bytes:
    """Exactly the bytes a signature signed, up to the end of its revision: the file as it was
    right after that signature was added. `which` is a verdict of `verify_pdf` on the same
    bytes, or the index of the signature in signing order (IndexError if there is none).
    Raises PdfRefused if the signature's byte range is malformed: then no revision is
    well-defined as "what was signed"."""
    data = bytes(data)
    if isinstance(which, SignatureVerdict):
        byte_range = which.byte_range
    else:
        try:
            found = _find_signatures(_Document(data, _open(data)))
        except PdfRefused:
            raise
        except Exception as e:  # as in verify_pdf: hostile input fails in arbitrary ways
            raise PdfRefused("damaged", "文件结构已损坏，无法取出签署时的版本", detail=repr(e)) from None
        byte_range = found[which].byte_range
    problem = _byte_range_shape_problem(data, byte_range)
    if problem is not None:
        raise PdfRefused("damaged", "签名的覆盖范围不规范，无法取出签署时的版本", detail=f"byte range: {problem}")
    return data[: byte_range[2] + byte_range[3]]


# ---------------------------------------------------------------------------------------------
# Reading the file


def _open(data: bytes) -> PdfFileReader:
    if b"%PDF-" not in data[:1024]:
        raise PdfRefused("not_pdf", "这不是 PDF 文件")
    try:
        reader = PdfFileReader(BytesIO(data), strict=True)
        encrypted = reader.encrypted
    except Exception as e:  # pyHanko reports broken files with whatever it hits
        # Its messages about an unusable /Encrypt entry all mention encryption: say what it is.
        if isinstance(e, misc.PdfReadError) and "ncrypt" in str(e):
            raise PdfRefused("encrypted", "文件已加密（且加密设置已损坏），无法验证签名", detail=repr(e)) from None
        raise PdfRefused("damaged", "文件已损坏，无法读取其结构", detail=repr(e)) from None
    if encrypted:
        raise PdfRefused("encrypted", "文件已加密，请上传未加密的文件后再验证")
    return reader


class _Document:
    """The file, its reader, and per-revision facts computed once for all signatures."""

    def __init__(self, data: bytes, reader: PdfFileReader):
        self.data = data
        self.reader = reader
        self.revisions = reader.xrefs.total_revisions
        self._trees: dict[int, _PageTree] = {}
        self._last_change: dict[tuple[int, int], int] = {}

    def handler(self, revision: int):
        """A view of the file as it was at `revision` (0-based); the last one is the reader."""
        if revision >= self.revisions - 1:
            return self.reader
        return self.reader.get_historical_resolver(revision)

    def pages(self, revision: int) -> "list[_Page]":
        """The pages as they were at `revision`. Walking an old revision re-reads every object
        of it, so only what changed since is read again: signing rewrites a few page
        dictionaries (their /Annots), never the page tree, in the common case."""
        last = self.revisions - 1
        if last not in self._trees:
            self._trees[last] = _walk_pages(self.reader)
        if revision not in self._trees:
            latest, handler = self._trees[last], self.handler(revision)
            same_tree = _key(handler.root.raw_get("/Pages")) == latest.root and all(
                self.changed_after(ref, revision) is False for ref in latest.nodes
            )
            if same_tree:
                pages = [
                    page
                    if not any(self.changed_after(ref, revision) for ref in page.depends_on)
                    else _read_page(handler, page.ref)
                    for page in latest.pages
                ]
                self._trees[revision] = _PageTree(latest.root, latest.nodes, pages)
            else:
                self._trees[revision] = _walk_pages(handler)
        return self._trees[revision].pages

    def changed_after(self, ref: tuple[int, int], revision: int) -> bool:
        """Whether a revision after `revision` wrote the object (unknown history counts as yes)."""
        if ref not in self._last_change:
            # pyHanko scans the xref sections for each question; the same pages are asked about
            # for every signature, so the answers are kept.
            try:
                self._last_change[ref] = self.reader.xrefs.get_last_change(generic.Reference(*ref))
            except KeyError:
                self._last_change[ref] = self.revisions
        return self._last_change[ref] > revision


@dataclass(frozen=True)
class _Page:
    ref: tuple[int, int]
    contents: tuple[tuple[int, int], ...]  # every indirect object the page's /Contents goes through
    annots: tuple[tuple[int, int], ...]
    depends_on: tuple[tuple[int, int], ...]  # objects whose change makes this record stale


@dataclass(frozen=True)
class _PageTree:
    root: tuple[int, int] | None
    nodes: tuple[tuple[int, int], ...]  # the /Pages nodes and their indirect /Kids arrays
    pages: list[_Page]


def _key(obj) -> tuple[int, int] | None:
    if isinstance(obj, generic.IndirectObject | generic.Reference):
        return obj.idnum, obj.generation
    return None


def _get(obj, name: str, default=None):
    """A dictionary entry, dereferenced (pyHanko's `get` returns references as stored), or
    `default` when the entry is absent or `obj` is no dictionary at all."""
    if isinstance(obj, generic.DictionaryObject) and name in obj:
        return obj[name]
    return default


def _walk_pages(handler) -> _PageTree:
    """Pages in order, iteratively (a deep tree cannot exhaust the stack), refusing cycles."""
    pages: list[_Page] = []
    nodes: list[tuple[int, int]] = []
    root = handler.root.raw_get("/Pages")
    stack = [root]
    seen: set[tuple[int, int]] = set()
    while stack:
        raw = stack.pop()
        key = _key(raw)
        if key is None:
            raise PdfRefused("damaged", "文件的页面树已损坏")
        if key in seen:
            raise PdfRefused("damaged", "文件的页面树存在循环或重复引用，文件已损坏")
        seen.add(key)
        if len(seen) > _MAX_PAGE_TREE_NODES:
            raise PdfRefused("damaged", "文件的页面树过大或已损坏")
        node = raw.get_object()
        if not isinstance(node, generic.DictionaryObject):
            raise PdfRefused("damaged", "文件的页面树已损坏")
        if "/Kids" in node:
            nodes.append(key)
            nodes.extend(filter(None, [_key(node.raw_get("/Kids"))]))
            kids = node["/Kids"]
            if not isinstance(kids, generic.ArrayObject):
                raise PdfRefused("damaged", "文件的页面树已损坏")
            stack.extend(reversed([kids.raw_get(i) for i in range(len(kids))]))
        else:
            pages.append(_page(node, key))
    return _PageTree(_key(root), tuple(nodes), pages)


def _read_page(handler, ref: tuple[int, int]) -> _Page:
    node = handler.get_object(generic.Reference(*ref))
    if not isinstance(node, generic.DictionaryObject):
        raise PdfRefused("damaged", "文件的页面树已损坏")
    return _page(node, ref)


def _page(node: generic.DictionaryObject, ref: tuple[int, int]) -> _Page:
    contents = _references_through(node, "/Contents")
    annots_ref = _key(node.raw_get("/Annots")) if "/Annots" in node else None
    return _Page(
        ref=ref,
        contents=contents,
        annots=_array_refs(node, "/Annots"),
        depends_on=(ref, *contents, *([annots_ref] if annots_ref else [])),
    )


def _references_through(node: generic.DictionaryObject, name: str) -> tuple[tuple[int, int], ...]:
    """The indirect objects an entry goes through: the entry itself if indirect, and the
    references in it if it is (or points to) an array."""
    if name not in node:
        return ()
    raw = node.raw_get(name)
    refs = [_key(raw)] if _key(raw) else []
    value = raw.get_object()
    if isinstance(value, generic.ArrayObject):
        refs += [k for k in (_key(value.raw_get(i)) for i in range(len(value))) if k]
    return tuple(refs)


def _array_refs(node: generic.DictionaryObject, name: str) -> tuple[tuple[int, int], ...]:
    if name not in node:
        return ()
    value = node[name]
    if not isinstance(value, generic.ArrayObject):
        return ()
    return tuple(k for k in (_key(value.raw_get(i)) for i in range(len(value))) if k)


# ---------------------------------------------------------------------------------------------
# Finding the signatures


@dataclass(frozen=True)
class _FoundSignature:
    name: str
    field_ref: tuple[int, int] | None
    sig: generic.DictionaryObject
    revision: int  # 0-based, pyHanko's numbering
    byte_range: tuple[int, ...]
    byte_range_valid_ints: bool


def _find_signatures(document: _Document) -> list[_FoundSignature]:
    found = []
    for name, _value, field_ref in enumerate_sig_fields(document.reader, filled_status=True):
        field_dict = field_ref.get_object()
        raw_value = field_dict.raw_get("/V")
        sig = raw_value.get_object()
        if not isinstance(sig, generic.DictionaryObject):
            continue  # a /V that is no dictionary is no signature; nothing to verify
        # The revision that last wrote the signature dictionary (or the field holding it when it
        # is direct). Coverage checking below makes sure that revision is the one signed.
        owner = raw_value if isinstance(raw_value, generic.IndirectObject) else field_ref
        revision = document.reader.xrefs.get_last_change(owner.reference)
        byte_range, ints = _read_byte_range(sig)
        found.append(_FoundSignature(str(name), _key(field_ref), sig, revision, byte_range, ints))
    # Signing order: by revision, then by where the signed bytes end.
    found.sort(key=lambda s: (s.revision, s.byte_range[2] + s.byte_range[3] if len(s.byte_range) == 4 else 0))
    return found


def _read_byte_range(sig: generic.DictionaryObject) -> tuple[tuple[int, ...], bool]:
    """The /ByteRange numbers, and whether it was an array of integers and nothing else."""
    try:
        raw = sig["/ByteRange"]
    except KeyError:
        return (), False
    if not isinstance(raw, generic.ArrayObject):
        return (), False
    values = [raw[i] for i in range(len(raw))]
    ints = all(isinstance(v, generic.NumberObject) for v in values)
    return tuple(int(v) for v in values if isinstance(v, generic.NumberObject)), ints


_HEX = re.compile(rb"[0-9A-Fa-f]*")
_EOF_AT_END = re.compile(rb"%%EOF(\r\n|\r|\n)?\Z")
_NOT_AT_REVISION_END = "the second range does not end at a revision's %%EOF"


def _byte_range_shape_problem(data: bytes, byte_range: tuple[int, ...]) -> str | None:
    """None if the byte range has the one shape a signer writes: [0 a b c] with a < b, the gap
    [a, b) exactly one hex string `<...>` and b + c ending at the file end or right after a
    %%EOF marker (the end of the signed revision). Otherwise what is wrong, for the logs."""
    if len(byte_range) != 4:
        return f"{len(byte_range)} numbers instead of 4"
    start1, len1, start2, len2 = byte_range
    if start1 != 0:
        return "does not start at 0"
    if min(byte_range) < 0 or len1 == 0 or start2 <= len1 + 1:
        return "ranges out of order"
    end = start2 + len2
    if end > len(data):
        return "reaches beyond the file"
    if data[len1 : len1 + 1] != b"<" or data[start2 - 1 : start2] != b">":
        return "the gap is not a hex string"
    if (start2 - len1 - 2) % 2 or not _HEX.fullmatch(data, len1 + 1, start2 - 1):
        return "the gap holds more than one hex string"
    if end != len(data) and not _EOF_AT_END.search(data, max(0, end - 8), end):
        return _NOT_AT_REVISION_END
    return None


def _check_byte_range(data: bytes, found: _FoundSignature, contents: bytes | None) -> str | None:
    if not found.byte_range_valid_ints:
        return "not an array of integers"
    problem = _byte_range_shape_problem(data, found.byte_range)
    if problem is None and contents is not None:
        _, len1, start2, _ = found.byte_range
        # The gap must be this signature's own /Contents, not some other string.
        if bytes.fromhex(data[len1 + 1 : start2 - 1].decode("ascii")) != contents:
            problem = "the gap is not this signature's /Contents"
    return problem


def _coverage(document: _Document, found: _FoundSignature, contents: bytes | None) -> str:
    """pyHanko's coverage levels (crypto_standards.md §4.3): UNCLEAR unless the byte range is
    [0 a b c] with the gap exactly the hex-encoded /Contents; then ENTIRE_FILE, ENTIRE_REVISION
    (the signed zone ends at the signed revision's startxref ... %%EOF and contains every xref
    section up to it) or CONTIGUOUS_BLOCK_FROM_START (it stops somewhere else)."""
    byte_range = found.byte_range
    if contents is None or not found.byte_range_valid_ints or len(byte_range) != 4 or byte_range[0] != 0:
        return "UNCLEAR"
    _, len1, start2, len2 = byte_range
    end = start2 + len2
    if start2 != len1 + 2 * len(contents) + 2 or min(byte_range) < 0 or end > len(document.data):
        return "UNCLEAR"
    if end == len(document.data):
        return "ENTIRE_FILE"
    xrefs = document.reader.xrefs
    stream = BytesIO(document.data)
    stream.seek(end)
    try:
        startxref = process_data_at_eof(stream)
    except (misc.PdfReadError, ValueError):
        return "CONTIGUOUS_BLOCK_FROM_START"
    if startxref != xrefs.get_startxref_for_revision(found.revision):
        return "CONTIGUOUS_BLOCK_FROM_START"
    if any(xrefs.get_xref_container_info(r).end_location > end for r in range(found.revision + 1)):
        return "CONTIGUOUS_BLOCK_FROM_START"
    return "ENTIRE_REVISION"


def _contents(sig: generic.DictionaryObject) -> bytes | None:
    try:
        value = sig.raw_get("/Contents")
    except KeyError:
        return None
    if not isinstance(value, generic.TextStringObject | generic.ByteStringObject):
        return None
    return value.original_bytes


# ---------------------------------------------------------------------------------------------
# One signature


@dataclass
class _Crypto:
    digest_ok: bool = False
    signature_ok: bool = False
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None
    signer: asn1_x509.Certificate | None = None
    certificates: tuple[asn1_x509.Certificate, ...] = ()
    signing_time: datetime | None = None
    problem: str | None = None  # Chinese, when the CMS cannot be checked at all


def _verify_one(
    document: _Document, found: _FoundSignature, everything: list[_FoundSignature], trust: "_Trust"
) -> SignatureVerdict:
    """Every check, each adding a sentence to `problems` when it fails; valid means none did:
    a well-formed byte range ending at its revision, digest and signature good, a trusted path
    valid at signing time, nothing revoked, no tampering after, no signing time in the future."""
    data, sig = document.data, found.sig
    is_timestamp = _get(sig, "/Type") == "/DocTimeStamp"
    subfilter = _get(sig, "/SubFilter")
    contents = _contents(sig)
    problems: list[str] = []

    byte_range_problem = _check_byte_range(data, found, contents)
    byte_range_ok = byte_range_problem is None
    coverage = _coverage(document, found, contents)
    if byte_range_problem == _NOT_AT_REVISION_END or coverage == "CONTIGUOUS_BLOCK_FROM_START":
        problems.append("签名没有覆盖到所在版本的末尾，其后的内容无法核实")
    elif not byte_range_ok:
        problems.append("签名的覆盖范围（ByteRange）不规范，无法确认签署了哪些内容")
    if not byte_range_ok:
        logger.info("signature %s: malformed byte range: %s", found.name, byte_range_problem)

    if document.reader.xrefs.hybrid_xrefs_present:
        # Hybrid files show different objects to old and new readers: what was signed is ambiguous.
        problems.append("文件使用了混合交叉引用表，不同阅读器可能显示不同内容，无法可靠核验")

    expected = {_TIMESTAMP_SUBFILTER} if is_timestamp else _SIGNATURE_SUBFILTERS
    if subfilter not in expected:
        crypto = _Crypto(problem=f"不支持的签名格式（{subfilter}）")
    elif contents is None or not found.byte_range_valid_ints or len(found.byte_range) != 4:
        crypto = _Crypto(problem="签名数据缺失或损坏，无法校验")
    else:
        signed = _signed_bytes(data, found.byte_range)
        crypto = _check_timestamp(contents, signed) if is_timestamp else _check_cms(contents, signed)
    if crypto.problem:
        problems.append(crypto.problem)
    elif not crypto.digest_ok and crypto.signature_ok:
        problems.append("签署的内容已被改动（摘要与签名时不一致）")
    elif not crypto.signature_ok:
        problems.append("签名值校验失败，签名不是由该证书的私钥生成的或已损坏")

    if crypto.signing_time is None and not is_timestamp:
        # PAdES signers leave the signing-time attribute out and write /M instead; it lies inside
        # the signed bytes, so it is the same signer's claim as the attribute would have been.
        crypto.signing_time = _pdf_date(_get(sig, "/M"))
    time_for_validity = crypto.signing_time or trust.now
    if crypto.signing_time and crypto.signing_time > trust.now + _CLOCK_SKEW:
        problems.append(f"签署时间（{_local(crypto.signing_time)}）晚于当前时间，不可信")
    if crypto.signer is not None:
        chain = trust.chain(crypto.signer, crypto.certificates, time_for_validity, timestamp=is_timestamp)
        revocation = trust.revocation(chain.path_certificates or (crypto.signer,))
    else:
        chain = _PathResult(ChainCheck(False, False, (), "签名中没有签名者证书"), ())
        revocation = RevocationCheck("unknown")
    if crypto.signer is not None:
        if not chain.check.trusted:
            problems.append(f"证书链不受信任（{chain.check.problem}）")
        elif not chain.check.valid_at_signing_time:
            problems.append(chain.check.problem)
    if revocation.status == "revoked":
        when = f"，吊销时间 {_local(revocation.revoked_at)}" if revocation.revoked_at else ""
        problems.append(f"证书已吊销（{revocation.certificate}{when}）")

    changes = _changes_after(document, found, everything, coverage if byte_range_ok else "UNCLEAR")
    if not changes.allowed and coverage != "CONTIGUOUS_BLOCK_FROM_START" and byte_range_ok:
        problems.append(changes.description)

    valid = not problems
    return SignatureVerdict(
        field_name=found.name,
        kind="timestamp" if is_timestamp else "signature",
        revision=found.revision + 1,
        byte_range=found.byte_range,
        byte_range_ok=byte_range_ok,
        coverage=coverage,
        covers_whole_file=coverage == "ENTIRE_FILE",
        digest_ok=crypto.digest_ok,
        signature_ok=crypto.signature_ok,
        digest_algorithm=crypto.digest_algorithm,
        signature_algorithm=crypto.signature_algorithm,
        signer=trust.info(crypto.signer) if crypto.signer is not None else None,
        signing_time=crypto.signing_time,
        chain=chain.check,
        revocation=revocation,
        seals=_seals(document, found),
        changes=changes,
        problems=tuple(problems),
        summary=_summary(valid, problems, changes, revocation, is_timestamp),
        valid=valid,
    )


def _summary(valid: bool, problems: list[str], changes: ChangesAfter, revocation: RevocationCheck, ts: bool) -> str:
    if not valid:
        return "；".join(problems)
    what = "时间戳" if ts else "签名"
    text = f"{what}有效，文件自签署后未被篡改" if changes.level == "NONE" else f"{what}有效，{changes.description}"
    if revocation.status == "unknown":
        text += "（未能检查证书的吊销状态）"
    return text


def _pdf_date(value) -> datetime | None:
    if not isinstance(value, generic.TextStringObject | generic.ByteStringObject):
        return None
    try:
        return _naive_utc(generic.parse_pdf_date(str(value), strict=False))
    except (misc.PdfReadError, ValueError, TypeError):
        return None


def _signed_bytes(data: bytes, byte_range: tuple[int, ...]) -> bytes:
    _, len1, start2, len2 = byte_range
    view = memoryview(data)
    return b"".join((view[:len1], view[start2 : start2 + len2]))


def _check_cms(contents: bytes, signed: bytes) -> _Crypto:
    try:
        result = cms.verify(contents, content=signed)
    except cms.NotCMSError:
        return _Crypto(problem="签名数据缺失或损坏，无法校验")
    reason = result.reason or ""
    if reason:
        logger.info("CMS check: %s", reason)
    # cms.verify explains failures in words only; these are not "the file was changed" or
    # "wrong key" but "we cannot judge this signature", and the user should hear that instead.
    problem = None
    if result.signer_certificate is None:
        problem = "签名中没有签名者的证书，无法校验"
    elif "no signed attributes" in reason:
        problem = "签名缺少签名属性，不符合本平台支持的签名规范，无法校验"
    elif "unsupported" in reason:
        problem = f"签名使用了不受支持的算法或格式（{result.signature_algorithm}，{result.digest_algorithm}）"
    return _Crypto(
        digest_ok=result.message_digest_ok,
        signature_ok=result.signature_ok,
        digest_algorithm=result.digest_algorithm,
        signature_algorithm=result.signature_algorithm,
        signer=result.signer_certificate,
        certificates=result.certificates,
        signing_time=result.signing_time,
        problem=problem,
    )


class _SignatureValidator(DefaultSignatureValidator):
    """pyHanko's signature check, with SM2 done by us: `cryptography` has no SM2 curve."""

    def validate_signature(self, signature, signed_data, public_key_info, signature_algorithm, *args, **kwargs):
        if signature_algorithm["algorithm"].dotted in (SM2_WITH_SM3, SM2_SIGN):
            try:
                ok = public_key_from_info(public_key_info).verify(signed_data, signature)
            except SM2Error:
                ok = False
            if not ok:
                raise InvalidSignature
            return
        super().validate_signature(signature, signed_data, public_key_info, signature_algorithm, *args, **kwargs)


def _digest(algorithm: str, data: bytes) -> bytes | None:
    if algorithm == "sm3":
        return sm3(data)
    new = _SHA2.get(algorithm)
    return new(data).digest() if new else None


def _check_timestamp(contents: bytes, signed: bytes) -> _Crypto:
    """A document timestamp: an RFC 3161 token whose message imprint is the digest of the byte
    range. `cms.verify` checks signatures over id-data only, so the token's own signature goes
    through pyHanko's CMS integrity check (with our SM2)."""
    try:
        signed_data = asn1_cms.ContentInfo.load(contents)["content"]
        tst_info = signed_data["encap_content_info"]["content"].parsed
        imprint = tst_info["message_imprint"]
        (signer_info,) = signed_data["signer_infos"]
        certificates = tuple(c.chosen for c in signed_data["certificates"] if c.name == "certificate")
        gen_time = tst_info["gen_time"].native
    except Exception as e:  # asn1crypto reports malformed input with whatever it hits
        logger.info("unreadable timestamp token", exc_info=e)
        return _Crypto(problem="时间戳数据缺失或损坏，无法校验")
    imprint_algorithm = imprint["hash_algorithm"]["algorithm"].native
    digest_algorithm = signer_info["digest_algorithm"]["algorithm"].native
    expected = _digest(imprint_algorithm, signed)
    signer = cms.find_signer(signer_info["sid"], certificates)
    crypto = _Crypto(
        digest_ok=expected is not None and expected == imprint["hashed_message"].native,
        digest_algorithm=imprint_algorithm,
        signature_algorithm=signer_info["signature_algorithm"]["algorithm"].native,
        signer=signer,
        certificates=certificates,
        signing_time=gen_time.astimezone(UTC).replace(tzinfo=None),
    )
    token_digest = _digest(digest_algorithm, signed_data["encap_content_info"]["content"].contents)
    if signer is None or token_digest is None:
        return crypto
    try:
        attrs_ok, signature_ok = validate_sig_integrity(
            signer_info, signer, "tst_info", token_digest, _SignatureValidator()
        )
    except Exception as e:  # pyHanko raises its own validation errors and asn1crypto's
        logger.info("timestamp token signature check failed", exc_info=e)
        attrs_ok = signature_ok = False
    crypto.signature_ok = attrs_ok and signature_ok
    return crypto


# ---------------------------------------------------------------------------------------------
# What changed after the signature


def _changes_after(
    document: _Document, found: _FoundSignature, everything: list[_FoundSignature], coverage: str
) -> ChangesAfter:
    if coverage == "ENTIRE_FILE":
        return ChangesAfter("NONE", True, "签署后文件未做任何修改")
    if coverage != "ENTIRE_REVISION":
        return ChangesAfter("OTHER", False, "签名之后的内容未被签名覆盖，无法判断是否被篡改")

    revision = found.revision
    docmdp, fieldmdp = _mdp(found)
    level, changed, detail = _review(document, revision, fieldmdp, docmdp)
    # After the analysis, which has read every object of the file by then: the pages are cached.
    page_count_changed, pages_changed = _page_changes(document, revision)
    docmdp_broken = docmdp is not None and level.value > docmdp.value and level != ModificationLevel.OTHER
    if docmdp is not None and level == ModificationLevel.OTHER:
        # pyHanko rejects outright what a certification forbids; whether the same changes would
        # pass after an ordinary signature tells the user which of the two went wrong.
        relaxed, _, _ = _review(document, revision, fieldmdp, None)
        docmdp_broken = relaxed <= ModificationLevel.FORM_FILLING

    signature_fields = {s.name for s in everything}
    later = [s for s in everything if s.revision > revision]
    allowed = (
        level <= ModificationLevel.FORM_FILLING and not docmdp_broken and not pages_changed and not page_count_changed
    )

    if page_count_changed:
        description = "文件在签署后被修改（增加或删除了页面）"
    elif pages_changed:
        description = "文件在签署后被修改（页面内容发生变化）"
    elif docmdp_broken:
        description = "文件在签署后被修改（超出了认证签名允许的修改范围）"
    elif not allowed:
        description = "文件在签署后被修改（出现了签名和表单填写之外的改动）"
    else:
        description = _allowed_description(later, set(changed) - signature_fields)
    return ChangesAfter(
        level=level.name,
        allowed=allowed,
        description=description,
        changed_fields=changed,
        pages_changed=pages_changed,
        page_count_changed=page_count_changed,
        detail=detail,
    )


def _review(
    document: _Document, revision: int, fieldmdp: FieldMDPSpec | None, docmdp: MDPPerm | None
) -> tuple[ModificationLevel, tuple[str, ...], str | None]:
    """pyHanko's difference analysis from `revision` to the end: the highest modification level
    of the later revisions, the form fields they changed, and pyHanko's reason when it rejects."""
    try:
        result = DEFAULT_DIFF_POLICY.review_file(document.reader, revision, field_mdp_spec=fieldmdp, doc_mdp=docmdp)
    except Exception as e:  # an analysis that breaks on a later revision cannot clear it
        logger.info("difference analysis failed", exc_info=e)
        result = SuspiciousModification(f"difference analysis failed: {e!r}")
    if isinstance(result, DiffResult):
        return result.modification_level, tuple(sorted(result.changed_form_fields)), None
    return ModificationLevel.OTHER, (), str(result)


def _allowed_description(later: list[_FoundSignature], filled: set[str]) -> str:
    parts = []
    signatures = sum(_get(s.sig, "/Type") != "/DocTimeStamp" for s in later)
    timestamps = len(later) - signatures
    if signatures:
        parts.append(f"追加了 {signatures} 个签名")
    if timestamps:
        parts.append(f"追加了 {timestamps} 个文档时间戳")
    if filled:
        parts.append(f"填写了表单字段（{'、'.join(sorted(filled))}）")
    if not parts:
        parts.append("追加了验证信息或文档属性")
    return "签署后仅有允许的修改：" + "，".join(parts)


def _page_changes(document: _Document, revision: int) -> tuple[bool, bool]:
    """(page count changed, some page's content changed) between the signed revision and now.
    The difference analysis already rejects both; this is a second, independent look at the two
    changes users care most about, and what names them in the verdict."""
    before, after = document.pages(revision), document.pages(document.revisions - 1)
    if len(before) != len(after):
        return True, False
    for old, new in zip(before, after, strict=True):
        if old.contents != new.contents or any(document.changed_after(ref, revision) for ref in new.contents):
            return False, True
    return False, False


def _mdp(found: _FoundSignature) -> tuple[MDPPerm | None, FieldMDPSpec | None]:
    """The DocMDP permission and FieldMDP lock this signature imposes on later revisions.
    A DocMDP entry that cannot be read counts as "no changes", the strictest reading."""
    docmdp = fieldmdp = None
    references = _get(found.sig, "/Reference")
    if isinstance(references, generic.ArrayObject):
        for reference in references:
            reference = reference.get_object()
            if not isinstance(reference, generic.DictionaryObject):
                continue
            method = _get(reference, "/TransformMethod")
            params = _get(reference, "/TransformParams")
            if method == "/DocMDP":
                try:
                    docmdp = MDPPerm(int(_get(params, "/P", 2)))
                except (ValueError, TypeError, AttributeError):
                    docmdp = MDPPerm.NO_CHANGES
            elif method == "/FieldMDP" and isinstance(params, generic.DictionaryObject):
                try:
                    fieldmdp = FieldMDPSpec.from_pdf_object(params)
                except (misc.PdfReadError, ValueError, KeyError):
                    pass
    return docmdp, fieldmdp


# ---------------------------------------------------------------------------------------------
# Seals


def _seals(document: _Document, found: _FoundSignature) -> tuple[SealImpression, ...]:
    """The widgets of the signature's field as they were in the signed revision, with the page
    each one sits on (by the pages' /Annots, not the widget's own /P, which nothing checks) and
    the images its normal appearance draws."""
    if found.field_ref is None:
        return ()
    handler = document.handler(found.revision)
    field_dict = handler.get_object(generic.Reference(*found.field_ref))
    if not isinstance(field_dict, generic.DictionaryObject):
        return ()
    widgets: list[tuple[tuple[int, int] | None, generic.DictionaryObject]] = []
    if _get(field_dict, "/Subtype") == "/Widget":
        widgets.append((found.field_ref, field_dict))
    kids = _get(field_dict, "/Kids")
    if isinstance(kids, generic.ArrayObject):
        for i in range(min(len(kids), _MAX_ENTRIES)):
            kid = kids[i]
            if isinstance(kid, generic.DictionaryObject) and _get(kid, "/Subtype") == "/Widget":
                widgets.append((_key(kids.raw_get(i)), kid))
    page_of = {}
    for number, page in enumerate(document.pages(found.revision), start=1):
        for ref in page.annots:
            page_of.setdefault(ref, number)
    return tuple(
        SealImpression(page=page_of.get(ref), rect=_rect(widget), images=tuple(_appearance_images(widget)))
        for ref, widget in widgets
    )


def _rect(widget: generic.DictionaryObject) -> tuple[float, float, float, float] | None:
    rect = _get(widget, "/Rect")
    if not isinstance(rect, generic.ArrayObject) or len(rect) != 4:
        return None
    values = [rect[i] for i in range(4)]
    if not all(isinstance(v, generic.NumberObject | generic.FloatObject) for v in values):
        return None
    return tuple(float(v) for v in values)


def _appearance_images(widget: generic.DictionaryObject) -> list[SealImage]:
    appearance = _get(widget, "/AP")
    if not isinstance(appearance, generic.DictionaryObject) or "/N" not in appearance:
        return []
    normal = appearance["/N"]
    # A stream, or (for fields with states) a dictionary of streams.
    streams = [normal] if isinstance(normal, generic.StreamObject) else list(_values(normal))
    images: dict[tuple[int, int], SealImage] = {}
    seen: set[tuple[int, int]] = set()
    for stream in streams:
        if isinstance(stream, generic.StreamObject):
            _collect_images(stream, 0, seen, images)
    return list(images.values())


def _values(obj):
    if isinstance(obj, generic.DictionaryObject):
        for name in list(obj.keys())[:_MAX_ENTRIES]:
            yield obj[name]


def _collect_images(form: generic.StreamObject, depth: int, seen: set, images: dict) -> None:
    resources = _get(form, "/Resources")
    if depth > _MAX_XOBJECT_DEPTH or not isinstance(resources, generic.DictionaryObject):
        return
    xobjects = _get(resources, "/XObject")
    if not isinstance(xobjects, generic.DictionaryObject):
        return
    for name in list(xobjects.keys())[:_MAX_ENTRIES]:
        ref = _key(xobjects.raw_get(name))
        if ref is None or ref in seen:  # a stream is always an indirect object
            continue
        seen.add(ref)
        xobject = xobjects[name]
        if not isinstance(xobject, generic.StreamObject):
            continue
        subtype = _get(xobject, "/Subtype")
        if subtype == "/Image":
            images[ref] = _image(xobject, ref, with_mask=True)
        elif subtype == "/Form":
            _collect_images(xobject, depth + 1, seen, images)


def _image(stream: generic.StreamObject, ref: tuple[int, int] | None, with_mask: bool) -> SealImage:
    def integer(name):
        value = _get(stream, name)
        return int(value) if isinstance(value, generic.NumberObject) else None

    filters = _get(stream, "/Filter")
    if isinstance(filters, generic.NameObject):
        filters = (str(filters),)
    elif isinstance(filters, generic.ArrayObject):
        filters = tuple(str(f) for f in filters if isinstance(f, generic.NameObject))
    else:
        filters = ()
    color_space = _get(stream, "/ColorSpace")
    if isinstance(color_space, generic.ArrayObject) and len(color_space):
        color_space = color_space[0]
    mask = _get(stream, "/SMask") if with_mask else None
    return SealImage(
        ref=ref,
        width=integer("/Width"),
        height=integer("/Height"),
        bits_per_component=integer("/BitsPerComponent"),
        color_space=str(color_space) if isinstance(color_space, generic.NameObject) else None,
        filters=filters,
        data=stream.encoded_data,
        soft_mask=_image(mask, _key(stream.raw_get("/SMask")), False)
        if isinstance(mask, generic.StreamObject)
        else None,
    )


# ---------------------------------------------------------------------------------------------
# Certificates: paths, validity, revocation


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _local(value: datetime) -> str:
    return value.replace(tzinfo=UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _load_anchors(anchors: Sequence[bytes]) -> list[asn1_x509.Certificate]:
    loaded = []
    for number, der in enumerate(anchors, start=1):
        try:
            loaded.append(x509.load_certificate(der))
        except x509.X509Error as e:
            raise ValueError(f"trust anchor #{number} is not a certificate: {e}") from None
    return loaded


def _load_crls(crls: Sequence[bytes]) -> list[crl.CertificateList]:
    """CRLs come from outside (imported CAs publish them); one that does not parse is skipped
    rather than failing every verification: its certificates then show as "unknown"."""
    loaded = []
    for der in crls:
        try:
            loaded.append(x509.load_crl(der))
        except x509.X509Error as e:
            logger.warning("ignoring a CRL that does not parse: %s", e)
    return loaded


def _certificate_info(cert: asn1_x509.Certificate) -> CertificateInfo:
    names = x509.name_attributes(cert.subject)
    try:
        not_before, not_after = x509.certificate_validity(cert)
    except (ValueError, TypeError, AttributeError):
        not_before = not_after = datetime.min
    return CertificateInfo(
        subject=x509.name_to_string(cert.subject),
        common_name=names.get("common_name"),
        organization=names.get("organization_name"),
        serial=x509.serial_hex(cert.serial_number),
        issuer=x509.name_to_string(cert.issuer),
        not_before=not_before,
        not_after=not_after,
        der=cert.dump(),
    )


def _display_name(cert: asn1_x509.Certificate) -> str:
    names = x509.name_attributes(cert.subject)
    return names.get("common_name") or x509.name_to_string(cert.subject)


class _CallbackFailed(Exception):
    """Carries an exception of the `is_revoked` callback past the handling of broken files."""


@dataclass(frozen=True)
class _PathResult:
    check: ChainCheck
    path_certificates: tuple[asn1_x509.Certificate, ...]


class _Trust:
    """Trust anchors, CRLs and the revocation callback for one verify_pdf call, with caches:
    the signatures of a file are usually made by a handful of certificates."""

    def __init__(self, anchors, crls, is_revoked: Revoked | None, now: datetime):
        self.anchors = anchors
        self.crls = crls
        self.is_revoked = is_revoked
        self.now = now
        self._anchor_ders = {a.dump() for a in anchors}
        self._anchor_keys = {(a.subject.dump(), a.public_key.dump()) for a in anchors}
        self._issued: dict[tuple[bytes, bytes], bool] = {}
        self._crl_signed: dict[tuple[int, bytes], bool] = {}
        self._info: dict[bytes, CertificateInfo] = {}

    def info(self, cert: asn1_x509.Certificate) -> CertificateInfo:
        der = cert.dump()
        if der not in self._info:
            self._info[der] = _certificate_info(cert)
        return self._info[der]

    def is_anchor(self, cert: asn1_x509.Certificate) -> bool:
        # The same CA key under the same name counts even if the anchor was re-issued.
        return cert.dump() in self._anchor_ders or (cert.subject.dump(), cert.public_key.dump()) in self._anchor_keys

    # -- paths

    def chain(self, signer, pool, at: datetime, *, timestamp: bool) -> _PathResult:
        problem = _end_entity_problem(signer, timestamp)
        path = None
        if problem is None:
            path, problem = self._build_path(signer, [*self.anchors, *pool])
        if path is None:
            valid, _ = _validity(signer, at)
            return _PathResult(ChainCheck(False, valid, (), problem), ())
        valid, validity_problem = _validity_of_path(path, at)
        check = ChainCheck(True, valid, tuple(map(self.info, path)), validity_problem)
        return _PathResult(check, tuple(path))

    def _build_path(self, signer, pool) -> tuple[list | None, str]:
        """Depth first from the signer towards an anchor, trying every plausible issuer, so a
        cross-certificate or a stale copy in the CMS does not hide a good path. Bounded."""
        budget = [_MAX_CERTIFICATE_CHECKS]
        problems: list[str] = []

        def extend(path: list) -> list | None:
            current = path[-1]
            if _critical_problem(current):
                problems.append(_critical_problem(current))
                return None
            if self.is_anchor(current):
                return path
            if len(path) >= _MAX_PATH_LENGTH:
                problems.append("证书链过长")
                return None
            in_path = {c.dump() for c in path}
            for candidate in pool:
                if candidate.dump() in in_path or not _may_have_issued(candidate, current):
                    continue
                if budget[0] <= 0:
                    problems.append("证书链过于复杂")
                    return None
                budget[0] -= 1
                if not self.issued_by(current, candidate):
                    problems.append(f"“{_display_name(current)}”的证书签名无法用“{_display_name(candidate)}”验证")
                    continue
                ca_problem = _issuer_problem(
                    candidate, intermediates_below=len(path) - 1, anchor=self.is_anchor(candidate)
                )
                if ca_problem:
                    problems.append(ca_problem)
                    continue
                result = extend([*path, candidate])
                if result is not None:
                    return result
            if not problems:
                problems.append(f"找不到签发“{_display_name(current)}”的受信任机构")
            return None

        path = extend([signer])
        return path, (problems[0] if problems else "")

    def issued_by(self, cert, issuer) -> bool:
        key = (cert.dump(), issuer.dump())
        if key not in self._issued:
            self._issued[key] = _issued_by(cert, issuer)
        return self._issued[key]

    # -- revocation

    def revocation(self, path: Sequence[asn1_x509.Certificate]) -> RevocationCheck:
        """Every certificate below the anchor: the callback's answer, else the CRLs of its issuer
        (the next certificate in the path). The first revoked one decides; else the first
        unknown one; else good."""
        unknown = None
        for index, cert in enumerate(path):
            if self.is_anchor(cert):
                break
            issuer = path[index + 1] if index + 1 < len(path) else None
            check = self._revocation_of(cert, issuer)
            if check.status == "revoked":
                return check
            if check.status == "unknown" and unknown is None:
                unknown = check
        return unknown or RevocationCheck("good")

    def _revocation_of(self, cert, issuer) -> RevocationCheck:
        name = _display_name(cert)
        if self.is_revoked is not None:
            try:
                answer = self.is_revoked(cert)
            except Exception as e:
                raise _CallbackFailed from e
            if answer is not None:
                if answer.revoked:
                    return RevocationCheck("revoked", "callback", name, answer.revoked_at, answer.reason)
                return RevocationCheck("good", "callback", name)
        if issuer is None:
            return RevocationCheck("unknown", None, name)
        current = False
        for index, lst in enumerate(self.crls):
            if not self._crl_usable(index, lst, issuer):
                continue
            entry = _crl_entry(lst, cert.serial_number)
            if entry is not None:
                return RevocationCheck("revoked", "crl", name, *entry)
            this_update, next_update = x509.crl_validity(lst)
            current = current or (this_update <= self.now and (next_update is None or self.now <= next_update))
        return RevocationCheck("good", "crl", name) if current else RevocationCheck("unknown", None, name)

    def _crl_usable(self, index: int, lst: crl.CertificateList, issuer) -> bool:
        """A complete CRL by this issuer: same name, a signature that verifies under its key, and
        no critical extension (a delta or partitioned CRL) that would make absence meaningless."""
        if lst.issuer != issuer.subject:
            return False
        if lst.critical_extensions - {"crl_number", "authority_key_identifier"}:
            return False
        key = (index, issuer.dump())
        if key not in self._crl_signed:
            self._crl_signed[key] = _crl_signed_by(lst, issuer)
        return self._crl_signed[key]


def _crl_entry(lst: crl.CertificateList, serial: int) -> tuple[datetime, str] | None:
    for entry in lst["tbs_cert_list"]["revoked_certificates"]:
        if entry["user_certificate"].native == serial:
            reason = entry.crl_reason_value.native if entry.crl_reason_value is not None else "unspecified"
            return _naive_utc(entry["revocation_date"].native), reason
    return None


def _may_have_issued(candidate, cert) -> bool:
    # Identical encodings are the common case; asn1crypto's comparison (RFC 5280 §7.1 string
    # preparation) is for names encoded differently, and is slow.
    if candidate.subject.dump() != cert.issuer.dump() and candidate.subject != cert.issuer:
        return False
    # When both sides name the key, they must agree; a mismatch is another key of the same CA.
    wanted, offered = cert.authority_key_identifier, candidate.key_identifier
    return wanted is None or offered is None or wanted == offered


def _issued_by(cert, issuer) -> bool:
    """Whether `issuer`'s key made `cert`'s signature: SM2 by us, anything else by `cryptography`."""
    if cert["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3:
        try:
            return x509.verify_certificate(cert, x509.certificate_public_key(issuer))
        except x509.X509Error:
            return False
    try:
        child = pyca_x509.load_der_x509_certificate(cert.dump())
        parent = pyca_x509.load_der_x509_certificate(issuer.dump())
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _crl_signed_by(lst: crl.CertificateList, issuer) -> bool:
    if lst["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3:
        try:
            return x509.verify_crl(lst, x509.certificate_public_key(issuer))
        except x509.X509Error:
            return False
    try:
        parent = pyca_x509.load_der_x509_certificate(issuer.dump())
        return pyca_x509.load_der_x509_crl(lst.dump()).is_signature_valid(parent.public_key())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False


def _critical_problem(cert) -> str | None:
    unknown = {str(name) for name in cert.critical_extensions} - _UNDERSTOOD_CRITICAL_EXTENSIONS
    if unknown:
        return f"“{_display_name(cert)}”含有无法识别的关键扩展（{'、'.join(sorted(unknown))}）"
    return None


def _end_entity_problem(cert, timestamp: bool) -> str | None:
    usage = cert.key_usage_value
    if usage is not None and not (set(usage.native) & _SIGNING_KEY_USAGES):
        return "签名者证书的密钥用途不包括数字签名"
    if timestamp:
        purposes = cert.extended_key_usage_value
        if purposes is None or "time_stamping" not in purposes.native:
            return "时间戳证书没有时间戳用途"
    return None


def _issuer_problem(cert, *, intermediates_below: int, anchor: bool) -> str | None:
    """RFC 5280 §6.1.4 for an issuer: a CA (anchors without the extension are tolerated: old v1
    roots), allowed to sign certificates, with room in its path length constraint."""
    name = _display_name(cert)
    constraints = cert.basic_constraints_value
    if constraints is None:
        if not anchor:
            return f"“{name}”不是 CA 证书，无权签发证书"
    elif not constraints["ca"].native:
        return f"“{name}”不是 CA 证书，无权签发证书"
    usage = cert.key_usage_value
    if usage is not None and "key_cert_sign" not in usage.native:
        return f"“{name}”的密钥用途不包括签发证书"
    limit = constraints["path_len_constraint"].native if constraints is not None else None
    if limit is not None and intermediates_below > limit:
        return f"“{name}”的证书路径长度限制被违反"
    return None


def _validity(cert, at: datetime) -> tuple[bool, str | None]:
    try:
        not_before, not_after = x509.certificate_validity(cert)
    except (ValueError, TypeError, AttributeError):
        return False, f"“{_display_name(cert)}”的有效期无法读取"
    if not_before <= at <= not_after:
        return True, None
    return False, (
        f"签署时证书不在有效期内（“{_display_name(cert)}”有效期 {_local(not_before)} 至 {_local(not_after)}，"
        f"签署时间 {_local(at)}）"
    )


def _validity_of_path(path, at: datetime) -> tuple[bool, str | None]:
    for cert in path:
        valid, problem = _validity(cert, at)
        if not valid:
            return False, problem
    return True, None
