"""Sign a PDF by appending one incremental revision (DESIGN.md §5).

The revision holds exactly what one signing act adds, and nothing else:

- one signature field (/FT /Sig, a new top-level entry of /AcroForm /Fields) whose /Kids are the
  act's widget annotations, one per impression (a seal on one page, or one slice of a riding
  seam); an act without seals gets one zero-size widget on the first page (invisible signature);
- each widget: /Rect in the page's unrotated user space, /F 4 (print), /P its page, /Parent the
  field, /AP /N a small form XObject that draws the seal image — or, for a riding-seam slice,
  clips to the slice and shifts the whole image so the right part shows — turned to undo the
  page's /Rotate;
- one image XObject (deflated, alpha as an /SMask) per distinct seal, shared by every widget;
- the pages' /Annots extended with the widgets (pyHanko's `register_annotation`: an indirect
  /Annots array is updated in place, a direct one by rewriting the page dictionary, whose other
  entries stay identical), /AcroForm /SigFlags 3;
- the signature dictionary: /Filter /Adobe.PPKLite, /SubFilter /adbe.pkcs7.detached, /M, a
  /Contents placeholder sized for the CMS (at least 16 KiB of hex) and a /ByteRange covering the
  whole file but the placeholder.

Earlier bytes are copied unchanged (the output starts with the input), page content streams are
never touched, and neither /Info nor XMP metadata nor the catalog's /Version is updated, so every
earlier signature keeps its byte range and digest, and pyHanko's difference analysis rates the
revision as form filling (new signature fields with widgets and appearances).

pyHanko's high-level `PdfSigner` wants exactly one widget per field, so the field and widgets
are built here and the signature is embedded with its low-level `PdfCMSEmbedder`, which also
writes the placeholder, fills in the byte range and computes the digest (OpenSSL's SM3 through
`cryptography`) over it.

Who makes the CMS. A `CmsSigner` receives the digest of the byte range (in its digest algorithm,
SM3 for the national profile) and the signing time, and returns the DER CMS SignedData; the CMS is
built once, into a placeholder sized from the signer's `max_size`. Adapters:
`sm2_cms_signer` (the crypto core's CMS with any SM2 signing callable: a `PrivateKey.sign`, an
organisation key held by the key store, an event key) and `pyca_cms_signer` (RSA/ECDSA through
pyHanko's signer, for interop and tests). When the signature arrives later — the two-party
cosign, where the phone takes part asynchronously — use the two halves::

    prepared = prepare_revision(pdf, placements)               # digest = SM3 of the byte range
    attrs = cms.prepare_signed_attrs(digest=prepared.digest, signing_time=prepared.signing_time)
    ...                                                        # phone and server co-sign attrs
    signed = finish_revision(prepared, cms.assemble(attrs, signature, cert, chain))
"""

import asyncio
import binascii
import bisect
import functools
import io
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asn1crypto import cms as asn1_cms
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.cms_embedder import PdfCMSEmbedder, SigIOSetup, SigObjSetup
from pyhanko.sign.signers.pdf_byterange import SignatureObject
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore

from portal.crypto import cms
from portal.pdf.errors import PdfRefused
from portal.pdf.placement import Impression, PageBox, Placement, PlacementError, SealImage, impressions

MIN_CONTENTS_SIZE = 16 * 1024  # hex digits reserved for /Contents at least (DESIGN.md §5)
# Room in a CMS beyond its certificates: SignedData and SignerInfo framing, the issuer name and
# serial, algorithm identifiers, signed attributes and the signature itself. Generous on purpose:
# an SM2 SignerInfo needs about 400 bytes plus the issuer name, pyHanko's RSA/ECDSA ones a few
# hundred more for ESS and algorithm-protection attributes.
_CMS_OVERHEAD = 2048
# Digests of the byte range that portal.crypto.cms.verify accepts.
_DIGEST_ALGORITHMS = frozenset({"sm3", "sha256", "sha384", "sha512"})
_LETTER = (0, 0, 612, 792)  # what viewers assume for a page without a /MediaBox


class SignError(ValueError):
    """A signing request that cannot be carried out as asked: a field name that is taken, a CMS
    that does not fit its placeholder or does not sign this revision's digest. The message is in
    Chinese, like PlacementError's. A file that cannot be signed at all raises PdfRefused."""


# ---------------------------------------------------------------------------------------------
# Who makes the CMS


@dataclass(frozen=True)
class CmsSigner:
    """Makes the CMS SignedData for one revision.

    sign(digest, signing_time) -> DER: `digest` is the byte range's digest in `digest_algorithm`,
    `signing_time` an aware UTC datetime (also written to the signature dictionary's /M).
    max_size: an upper bound of the DER's length, which sizes the /Contents placeholder.
    """

    sign: Callable[[bytes, datetime], bytes]
    digest_algorithm: str = "sm3"
    max_size: int = MIN_CONTENTS_SIZE // 2


def sm2_cms_signer(cert_der: bytes, chain_ders: Iterable[bytes], sign_fn: Callable[[bytes], bytes]) -> CmsSigner:
    """A CmsSigner making the national-profile CMS with `portal.crypto.cms` (SM3, sm2-with-sm3,
    the certificate and its chain embedded). `sign_fn` receives DER(SET OF signedAttrs) and
    returns the DER SM2 signature over it, like `PrivateKey.sign`."""
    ders = [bytes(c) for c in chain_ders]
    # Parsed once here rather than on every signature (cms re-parses DER it is given).
    cert, chain = _parsed_certificate(cert_der), [_parsed_certificate(c) for c in ders]

    def sign(digest: bytes, signing_time: datetime) -> bytes:
        return cms.sign_detached(cert, sign_fn, chain=chain, digest=digest, signing_time=signing_time)

    size = len(cert_der) + sum(map(len, ders)) + _CMS_OVERHEAD
    return CmsSigner(sign=sign, digest_algorithm="sm3", max_size=size)


def _parsed_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        cert = asn1_x509.Certificate.load(bytes(der), strict=True)
        _ = cert.native  # asn1crypto parses lazily: fail here on a broken certificate, not mid-signing
    except Exception:  # asn1crypto reports malformed input with whatever it hits
        raise SignError("签名证书无法解析") from None
    return cert


def pyca_cms_signer(
    private_key, cert_der: bytes, chain_ders: Iterable[bytes] = (), *, digest_algorithm: str = "sha256"
) -> CmsSigner:
    """A CmsSigner for an RSA or ECDSA key (a `cryptography` private key), built by pyHanko's
    `SimpleSigner`: signatures from other stacks, for interop and tests. It runs pyHanko's
    asynchronous signer to completion, so call it outside any running event loop."""
    key_der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = [bytes(c) for c in chain_ders]
    signer = SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert_der),
        signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
        # Only the chain: pyHanko adds the signer's certificate itself, and would embed it twice.
        cert_registry=SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(c) for c in chain]),
    )

    def sign(digest: bytes, signing_time: datetime) -> bytes:
        settings = PdfCMSSignedAttributes(signing_time=signing_time)
        signed = signer.async_sign(digest, digest_algorithm, signed_attr_settings=settings)
        return asyncio.run(signed).dump()

    size = len(cert_der) + sum(map(len, chain)) + private_key.key_size // 4 + _CMS_OVERHEAD
    return CmsSigner(sign=sign, digest_algorithm=digest_algorithm, max_size=size)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PreparedRevision:
    """A revision written with an empty /Contents, waiting for its CMS.

    Everything is plain data, so it can be stored while the signature is produced elsewhere.
    data: the whole file with the placeholder. byte_range: (0, start, end, length - end), where
    start is the offset of /Contents' "<" and end the offset just after its ">". digest: the byte
    range's digest in `digest_algorithm`, the value the CMS must sign.
    """

    data: bytes = field(repr=False)
    field_name: str
    byte_range: tuple[int, int, int, int]
    digest: bytes
    digest_algorithm: str
    signing_time: datetime

    @property
    def contents_capacity(self) -> int:
        """How many bytes of DER the placeholder holds."""
        return (self.byte_range[2] - self.byte_range[1] - 2) // 2


@dataclass(frozen=True)
class SignedRevision:
    """The signed file (the input followed by one revision) and what identifies the signature."""

    data: bytes = field(repr=False)
    field_name: str
    byte_range: tuple[int, int, int, int]
    digest: bytes


# ---------------------------------------------------------------------------------------------
# Signing


def sign_revision(
    pdf: bytes,
    placements: Sequence[Placement | Impression],
    signer: CmsSigner,
    *,
    field_name: str | None = None,
    reason: str | None = None,
    location: str | None = None,
    name: str | None = None,
    contact_info: str | None = None,
    contents_size: int | None = None,
    signing_time: datetime | None = None,
) -> SignedRevision:
    """Append one signed revision drawing `placements` (placements or already expanded
    impressions; none for an invisible signature). The CMS is made once, by `signer`.

    contents_size: hex digits to reserve for /Contents; by default twice the signer's max_size,
    and never less than 16 KiB. signing_time: aware, or naive meaning UTC; now if omitted.
    Raises PdfRefused for a file that cannot be signed (not a PDF, damaged, encrypted, no pages),
    PlacementError for placements that do not fit the file, SignError for the rest.
    """
    revision = _Revision(
        pdf,
        placements,
        field_name=field_name,
        digest_algorithm=signer.digest_algorithm,
        contents_size=contents_size if contents_size is not None else 2 * signer.max_size,
        signing_time=signing_time,
        metadata={"reason": reason, "location": location, "name": name, "contact_info": contact_info},
    )
    cms_der = signer.sign(revision.digest, revision.signing_time)
    _check_cms(cms_der, revision.digest, revision.capacity)
    revision.fill(cms_der)
    return SignedRevision(
        data=revision.output.getvalue(),  # BytesIO hands over its buffer: no copy of the file
        field_name=revision.field_name,
        byte_range=revision.byte_range,
        digest=revision.digest,
    )


def prepare_revision(
    pdf: bytes,
    placements: Sequence[Placement | Impression] = (),
    *,
    field_name: str | None = None,
    digest_algorithm: str = "sm3",
    reason: str | None = None,
    location: str | None = None,
    name: str | None = None,
    contact_info: str | None = None,
    contents_size: int = MIN_CONTENTS_SIZE,
    signing_time: datetime | None = None,
) -> PreparedRevision:
    """First half of signing when the CMS comes later: write the revision with an empty
    /Contents and return it with the digest to sign. Same arguments as `sign_revision`;
    contents_size must hold the CMS that will arrive (16 KiB of hex, i.e. 8 KiB of DER, is
    plenty for an SM2 signer with a short chain)."""
    revision = _Revision(
        pdf,
        placements,
        field_name=field_name,
        digest_algorithm=digest_algorithm,
        contents_size=contents_size,
        signing_time=signing_time,
        metadata={"reason": reason, "location": location, "name": name, "contact_info": contact_info},
    )
    return PreparedRevision(
        data=revision.output.getvalue(),
        field_name=revision.field_name,
        byte_range=revision.byte_range,
        digest=revision.digest,
        digest_algorithm=digest_algorithm,
        signing_time=revision.signing_time,
    )


def finish_revision(prepared: PreparedRevision, cms_der: bytes) -> bytes:
    """Second half: the prepared file with `cms_der` (hex, upper case, zero padded) in its
    /Contents. Refuses a CMS that does not fit or whose message digest is not the prepared one."""
    _check_cms(cms_der, prepared.digest, prepared.contents_capacity)
    start = prepared.byte_range[1] + 1  # just after "<"
    contents = binascii.hexlify(cms_der).upper()
    view = memoryview(prepared.data)
    # One allocation for the result; memoryview slices copy nothing.
    return b"".join((view[:start], contents, view[start + len(contents) :]))


def _check_cms(cms_der: bytes, digest: bytes, capacity: int) -> None:
    if len(cms_der) > capacity:
        raise SignError(f"签名数据（{len(cms_der)} 字节）超出预留空间（{capacity} 字节），请加大预留空间后重新签署")
    if _message_digest(cms_der) != digest:
        raise SignError("签名数据与本次签署的文件内容不符")


def _message_digest(cms_der: bytes) -> bytes | None:
    """The message-digest attribute of the CMS's only SignerInfo, or None if there is none."""
    try:
        signed_data = asn1_cms.ContentInfo.load(bytes(cms_der))["content"]
        (signer_info,) = signed_data["signer_infos"]
        for attr in signer_info["signed_attrs"]:
            if attr["type"].native == "message_digest":
                return attr["values"][0].native
    except Exception:  # asn1crypto reports malformed input with whatever it hits
        return None
    return None


class _Writer(IncrementalPdfFileWriter):
    """An incremental writer that adds only what the revision adds.

    pyHanko's writer would also refresh /Info (ModDate, Producer) and XMP metadata and raise the
    catalog's /Version to 1.7; a signing revision must change nothing beyond its signature field,
    widgets and signature (DESIGN.md §5), so neither happens here. PDF 1.3 introduced signature
    fields, hence the version floor.
    """

    output_version = (1, 3)

    def _update_meta(self):
        pass


class _Revision:
    """One revision being written: the objects, the placeholder, the digest, then the CMS."""

    def __init__(
        self,
        pdf: bytes,
        placements: Sequence[Placement | Impression],
        *,
        field_name: str | None,
        digest_algorithm: str,
        contents_size: int,
        signing_time: datetime | None,
        metadata: dict,
    ):
        if digest_algorithm not in _DIGEST_ALGORITHMS:
            raise ValueError(f"unsupported digest algorithm {digest_algorithm!r}")
        self.signing_time = _utc_seconds(signing_time or datetime.now(UTC))
        reserved = max(MIN_CONTENTS_SIZE, contents_size + contents_size % 2)
        writer = _open(pdf)
        try:
            _refuse_certified(writer)
            pages = _Pages(writer, pdf)
            items = _expand(placements, pages)
            _, fields = _acroform(writer)
            self.field_name = _field_name(fields, field_name)
            _add_field(writer, fields, self.field_name, items, pages)

            embedder = PdfCMSEmbedder().write_cms(self.field_name, writer, existing_fields_only=True)
            next(embedder)  # yields the field we just made
            placeholder = SignatureObject(
                timestamp=self.signing_time,
                subfilter=SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
                bytes_reserved=reserved,
                **{key: value for key, value in metadata.items() if value},
            )
            embedder.send(SigObjSetup(sig_placeholder=placeholder))
            prepared, output = embedder.send(SigIOSetup(md_algorithm=digest_algorithm, output=io.BytesIO()))
        except (PdfRefused, PlacementError, SignError):
            raise
        except (PdfError, KeyError, TypeError, ValueError, AttributeError) as error:
            # pyHanko meets a broken structure in whatever object it happens to read first.
            raise PdfRefused("damaged", "PDF 文件已损坏，无法签署。", detail=repr(error)) from error
        self._embedder = embedder
        self.output: io.BytesIO = output
        self.digest: bytes = prepared.document_digest
        start, end = prepared.reserved_region_start, prepared.reserved_region_end
        eof = output.seek(0, io.SEEK_END)
        self.byte_range = (0, start, end, eof - end)
        self.capacity = (end - start - 2) // 2

    def fill(self, cms_der: bytes) -> None:
        """Write the CMS into the placeholder of `output`, in place."""
        try:
            self._embedder.send(cms_der)
        except SigningError as error:  # too large: _check_cms catches it first, this is the backstop
            raise SignError("签名数据超出预留空间") from error


def _utc_seconds(value: datetime) -> datetime:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(microsecond=0)


def _open(pdf: bytes) -> _Writer:
    if b"%PDF-" not in pdf[:1024]:  # readers accept a header within the first kilobyte
        raise PdfRefused("not_pdf", "文件不是 PDF 格式，无法签署。")
    # BytesIO over bytes shares the buffer: the input is not copied until it is written out.
    stream = io.BytesIO(pdf)
    try:
        reader = PdfFileReader(stream)
        # Before the writer touches the catalog, which an encrypted file will not give up.
        if reader.encrypted:
            raise PdfRefused("encrypted", "PDF 文件已加密，无法签署，请上传未加密的文件。")
        return _Writer(stream, prev=reader)
    except (PdfError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise PdfRefused("damaged", "PDF 文件已损坏，无法签署。", detail=repr(error)) from error


def _refuse_certified(writer: _Writer) -> None:
    """A certification signature (catalog /Perms /DocMDP) allows no new signature fields with
    appearances (at P=1 no change at all): a revision of ours would invalidate it, so refuse."""
    perms = writer.root.get("/Perms")
    if isinstance(perms, generic.DictionaryObject) and "/DocMDP" in perms:
        raise SignError("此文件带有认证签名（限制修改），再盖章签署会使该签名失效，无法签署。")


def _expand(placements: Sequence[Placement | Impression], pages: "_Pages") -> list[Impression]:
    """Impressions in the order given, placements expanded in place."""
    result: list[Impression] = []
    for item in placements:
        if isinstance(item, Impression):
            if not 1 <= item.page <= len(pages):
                raise PlacementError(f"页码 {item.page} 超出范围：文件共 {len(pages)} 页")
            result.append(item)
        else:
            result += impressions([item], pages)
    return result


# ---------------------------------------------------------------------------------------------
# Pages


class _Pages(Sequence[PageBox]):
    """The document's pages as `PageBox`es, read only as far as asked for.

    pyHanko's `find_page_for_modification` walks the page tree from the root for every call,
    dereferencing each earlier sibling, which makes a 100-page riding seam quadratic. Here every
    page-tree node keeps the start index of each kid read so far, so finding page i reads the
    kids up to it once and later lookups bisect: a seal on page 1 reads one page dictionary, a
    seam over all pages reads each once.
    """

    def __init__(self, writer: _Writer, pdf: bytes):
        root_ref = writer.root.raw_get("/Pages")
        if not isinstance(root_ref, generic.IndirectObject):
            raise _damaged("the page tree root is not an indirect object")
        self._root = root_ref
        self._load = functools.partial(_load, writer.prev, pdf)
        self._count = int(self._load(root_ref)["/Count"])
        if self._count < 1:
            raise PdfRefused("no_pages", "PDF 文件没有页面，无法签署。")
        self._nodes: dict[generic.Reference, _Node] = {}
        self._found: dict[int, tuple[generic.IndirectObject, PageBox]] = {}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        return self.find(index)[1]

    def find(self, index: int) -> tuple[generic.IndirectObject, PageBox]:
        """The page's reference and box; index is 0-based."""
        if not 0 <= index < self._count:
            raise IndexError(index)
        if index not in self._found:
            page_ref, inherited = self._locate(index)
            attrs = {**inherited, **_own_attributes(self._load(page_ref))}
            box = PageBox.from_boxes(
                _numbers(attrs.get("/MediaBox")) or _LETTER,
                _numbers(attrs.get("/CropBox")),
                attrs.get("/Rotate") or 0,
            )
            self._found[index] = (page_ref, box)
        return self._found[index]

    def _locate(self, index: int) -> tuple[generic.IndirectObject, dict]:
        """The page's reference and the attributes it inherits from the nodes above it."""
        node_ref, first, seen, inherited = self._root, 0, set(), {}
        while True:
            if node_ref.reference in seen:
                raise _damaged("the page tree has a cycle")
            seen.add(node_ref.reference)
            node = self._nodes.get(node_ref.reference)
            if node is None:
                node = self._nodes[node_ref.reference] = _Node(self._load(node_ref), inherited, self._load)
            kid_ref, kid_first, is_page = node.kid_covering(index - first)
            if is_page:
                return kid_ref, node.inherited
            node_ref, first, inherited = kid_ref, first + kid_first, node.inherited


class _Node:
    """One /Pages node: its kids with the page index (relative to the node) each starts at,
    read from the left only as far as a lookup needs, and the page attributes it passes down."""

    def __init__(self, node: generic.DictionaryObject, inherited: dict, load: Callable):
        self._load = load
        self._kids = node["/Kids"]
        self._starts: list[int] = []  # relative index of the first page under kid i
        self._entries: list[tuple[generic.IndirectObject, bool]] = []  # (kid, is a page)
        self._next = 0  # relative index of the first page after the kids read so far
        self.inherited = {**inherited, **_own_attributes(node)}

    def kid_covering(self, index: int) -> tuple[generic.IndirectObject, int, bool]:
        while self._next <= index and len(self._entries) < len(self._kids):
            kid_ref = self._kids.raw_get(len(self._entries))
            if not isinstance(kid_ref, generic.IndirectObject):
                raise _damaged("a page tree kid is not an indirect object")
            kid = self._load(kid_ref)
            # A node has /Kids; anything else in a page tree is a page (viewers do the same).
            is_page = not (isinstance(kid, generic.DictionaryObject) and "/Kids" in kid)
            self._starts.append(self._next)
            self._entries.append((kid_ref, is_page))
            self._next += 1 if is_page else int(kid.get("/Count", 0))
        position = bisect.bisect_right(self._starts, index) - 1
        if position < 0 or index >= self._next:
            raise _damaged("the page tree has fewer pages than its /Count says")
        kid_ref, is_page = self._entries[position]
        return kid_ref, self._starts[position], is_page


def _load(reader: PdfFileReader, pdf: bytes, ref: generic.IndirectObject) -> generic.PdfObject:
    """`ref.get_object()`, reading the object with `_parse_simple` first when it can.

    A riding seam reads every page dictionary, and pyHanko's parser, which reads a byte at a time
    through several layers of calls, took half of a 100-page seam doing it. Page dictionaries and
    page-tree nodes are nearly always plain: names, numbers, references, arrays and dictionaries.
    `_parse_simple` reads exactly those with regular expressions, builds the same objects pyHanko
    would, and puts them in the reader's cache, where `get_object` finds them; anything else
    (strings, comments, streams, object streams, odd spacing) it leaves to pyHanko, untouched.
    """
    reference = ref.reference
    if reference.pdf is reader and reader.cache_get_indirect_object(reference.generation, reference.idnum) is None:
        offset = reader.xrefs[reference]
        if isinstance(offset, int):  # not in an object stream, and not missing
            obj = _parse_simple(pdf, offset, reference)
            if obj is not None:
                reader.cache_indirect_object(reference.generation, reference.idnum, obj)
    return ref.get_object()


# What `_parse_simple` reads. Whitespace is the part of PDF's that Python's \s also matches (the
# pieces pyHanko splits with both); tokens end where pyHanko's reader would end them, so either
# both read the same object or this gives up. A reference, like pyHanko's, needs a non-letter
# after its "R" within 20 bytes of its first digit; a number is what pyHanko's number reader takes
# (it stops at anything but "+,-.0-9"); a name has no "#" escape and only printable ASCII.
_WS = rb"[ \t\n\r\x0c]"
_END = rb"(?=[ \t\n\r\x0c()<>\[\]{}/%])"
_HEADER = re.compile(rb"%s*(\d+)%s+(\d+)%sobj" % (_WS, _WS, _WS))
_TOKEN = re.compile(
    rb"%s*(?:(?P<ref>(\d+)%s+(\d+)%s+R)(?=[^a-zA-Z])|(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))(?![+,\-.0-9])"
    rb"|(?P<name>/[^\x00-\x20\x7f-\xff()<>\[\]{}/%%#]*)%s|(?P<open><<|\[)|(?P<close>>>|\])"
    rb"|(?P<kw>true|false|null)%s)" % (_WS, _WS, _WS, _END, _END)
)
_ENDOBJ = re.compile(rb"%s*endobj" % _WS)


class _NotSimple(Exception):
    pass


def _parse_simple(pdf: bytes, offset: int, reference: generic.Reference) -> generic.PdfObject | None:
    """The indirect object at `offset` as pyHanko's reader would build it (each value's
    container_ref the object's reference, dictionary keys without one), or None when it is
    not made only of what _TOKEN reads."""
    header = _HEADER.match(pdf, offset)
    if header is None or (int(header[1]), int(header[2])) != (reference.idnum, reference.generation):
        return None
    try:
        obj, end = _parse_value(pdf, _TOKEN.match(pdf, header.end()), reference)
    except _NotSimple:
        return None
    return obj if _ENDOBJ.match(pdf, end) else None  # not followed by "stream", nor anything else


def _parse_value(pdf: bytes, token: re.Match | None, container: generic.Reference) -> tuple[generic.PdfObject, int]:
    """The value starting with `token`, and the offset after it."""
    if token is None:
        raise _NotSimple
    kind, end = token.lastgroup, token.end()
    if kind == "name":
        obj = generic.NameObject(token["name"].decode("ascii"))
    elif kind == "num":
        text = token["num"].decode("ascii")
        obj = generic.FloatObject(text) if "." in text else generic.NumberObject(text)
    elif kind == "ref":
        idnum, generation = int(token[2]), int(token[3])
        if idnum == 0 or token.end("ref") - token.start("ref") >= 20:
            raise _NotSimple  # pyHanko refuses object 0, and would not see a reference this long
        obj = generic.IndirectObject(idnum, generation, container.pdf)
    elif kind == "kw":
        word = token["kw"]
        obj = generic.NullObject() if word == b"null" else generic.BooleanObject(word == b"true")
    elif token["open"] == b"[":
        items = []
        while (token := _TOKEN.match(pdf, end)) is None or token["close"] != b"]":
            item, end = _parse_value(pdf, token, container)
            items.append(item)
        obj, end = generic.ArrayObject(items), token.end()
    elif token["open"] == b"<<":
        entries = {}
        while (token := _TOKEN.match(pdf, end)) is None or token["close"] != b">>":
            if token is None or token["name"] is None:
                raise _NotSimple
            name = generic.NameObject(token["name"].decode("ascii"))
            if name in entries:
                raise _NotSimple  # pyHanko warns or refuses, depending on strictness
            entries[name], end = _parse_value(pdf, _TOKEN.match(pdf, token.end()), container)
        obj, end = generic.DictionaryObject(entries), token.end()
    else:  # a stray "]" or ">>"
        raise _NotSimple
    obj.container_ref = container
    return obj, end


# The inheritable page attributes placement needs (ISO 32000-1 §7.7.3.4); /Resources, the other
# one, does not matter here.
_INHERITABLE = ("/MediaBox", "/CropBox", "/Rotate")


def _own_attributes(node: generic.DictionaryObject) -> dict:
    return {key: node[key] for key in _INHERITABLE if key in node}


def _numbers(value) -> list[float] | None:
    if value is None:
        return None
    return [float(v.get_object() if isinstance(v, generic.IndirectObject) else v) for v in value.get_object()]


def _damaged(detail: str) -> PdfRefused:
    return PdfRefused("damaged", "PDF 文件的页面结构有误，无法签署。", detail=detail)


# ---------------------------------------------------------------------------------------------
# The form: field, widgets, appearances


def _acroform(writer: _Writer) -> tuple[generic.DictionaryObject, generic.ArrayObject]:
    root = writer.root
    if "/AcroForm" not in root:
        form = generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()})
        root[pdf_name("/AcroForm")] = writer.add_object(form)
        writer.update_root()
    form = root["/AcroForm"]
    if "/Fields" not in form:
        form[pdf_name("/Fields")] = generic.ArrayObject()
        writer.update_container(form)
    return form, form["/Fields"]


def _field_name(fields: generic.ArrayObject, wanted: str | None) -> str:
    taken = set()
    for ref in fields:
        entry = ref.get_object()
        if isinstance(entry, generic.DictionaryObject) and "/T" in entry:
            taken.add(str(entry["/T"]))
    if wanted is not None:
        if not wanted or "." in wanted:
            raise SignError("签名域名称不能为空，也不能包含“.”")
        if wanted in taken:
            raise SignError(f"签名域“{wanted}”已存在，请换一个名称")
        return wanted
    number = len(taken) + 1
    while f"Signature{number}" in taken:
        number += 1
    return f"Signature{number}"


def _add_field(
    writer: _Writer,
    fields: generic.ArrayObject,
    field_name: str,
    items: list[Impression],
    pages: _Pages,
) -> None:
    kids = generic.ArrayObject()
    sig_field = generic.DictionaryObject(
        {
            pdf_name("/FT"): pdf_name("/Sig"),
            pdf_name("/T"): generic.TextStringObject(field_name),
            pdf_name("/Kids"): kids,
        }
    )
    field_ref = writer.add_object(sig_field)
    # Per seal: the resource dictionary naming its one image XObject, shared by every appearance.
    resources: dict[str, generic.IndirectObject] = {}
    pngs: dict[str, bytes] = {}

    def widget(page_ref, rect, appearance=None):
        ap = b" /AP << /N %s >>" % _ref(appearance) if appearance is not None else b""
        annot = _Written(
            b"<< /Type /Annot /Subtype /Widget /Rect [%s] /F 4 /P %s /Parent %s%s >>"
            % (_nums(rect).encode(), _ref(page_ref), _ref(field_ref), ap)
        )
        annot_ref = writer.add_object(annot)
        kids.append(annot_ref)
        writer.register_annotation(page_ref, annot_ref)

    for item in items:
        seal = item.seal
        if seal.key not in resources:
            xobjects = generic.DictionaryObject({pdf_name("/Seal"): _image_xobject(writer, seal)})
            resources[seal.key] = writer.add_object(generic.DictionaryObject({pdf_name("/XObject"): xobjects}))
            pngs[seal.key] = seal.png
        elif pngs[seal.key] != seal.png:
            raise PlacementError(f"两个不同的印章图片使用了同一个标识“{seal.key}”")
        page_ref, _ = pages.find(item.page - 1)
        widget(page_ref, item.rect, _appearance(writer, item, resources[seal.key]))
    if not items:
        # Invisible signature: one zero-size widget, so the field still sits on a page.
        page_ref, _ = pages.find(0)
        widget(page_ref, (0, 0, 0, 0))

    fields.append(field_ref)
    writer.update_container(fields)


def _appearance(writer: _Writer, item: Impression, resources: generic.IndirectObject) -> generic.IndirectObject:
    """The widget's normal appearance: a form XObject the size of its /Rect that draws the seal.

    In upright coordinates (w × h, the size as seen on the visible page) it clips to the box and
    draws the whole image at the seal's full width, shifted left so the wanted slice falls in
    the box; `item.matrix` turns that to the page's unrotated space first. One image XObject,
    any number of slices.
    """
    x0, y0, x1, y1 = item.rect
    _, _, w, h = item.visible_rect
    first, last = item.fraction
    full_width = w / (last - first)
    ops = (
        f"q {_nums(item.matrix)} cm 0 0 {_num(w)} {_num(h)} re W n "
        f"{_num(full_width)} 0 0 {_num(h)} {_num(-first * full_width)} 0 cm /Seal Do Q"
    ).encode("ascii")
    form = _Written(
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 %s] /Resources %s /Length %d >>\nstream\n%s\nendstream"
        % (_nums((x1 - x0, y1 - y0)).encode(), _ref(resources), len(ops), ops)
    )
    return writer.add_object(form)


class _Written(generic.PdfObject):
    """An object this module serialises itself: the widgets and appearance streams, one of each
    per impression. pyHanko writes names a byte at a time; building and writing these 200 small
    objects through its object model took a quarter of a 100-page riding seam. They are fixed in
    shape and nothing reads them before the file is written, so they are formatted once, here.
    (No security handler applies: encrypted files are refused before anything is written.)"""

    def __init__(self, data: bytes):
        self.data = data

    def write_to_stream(self, stream, handler=None, container_ref=None):
        stream.write(self.data)


def _ref(ref: generic.IndirectObject) -> bytes:
    return b"%d %d R" % (ref.idnum, ref.generation)


def _image_xobject(writer: _Writer, seal: SealImage) -> generic.IndirectObject:
    encoded = _encode_png(seal.png)
    smask = None
    if encoded.alpha is not None:
        smask = writer.add_object(_image_stream(encoded.width, encoded.height, "/DeviceGray", encoded.alpha))
    image = _image_stream(encoded.width, encoded.height, "/DeviceRGB", encoded.rgb)
    if smask is not None:
        image[pdf_name("/SMask")] = smask
    return writer.add_object(image)


def _image_stream(width: int, height: int, colour_space: str, deflated: bytes) -> generic.StreamObject:
    return generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): generic.NumberObject(width),
            pdf_name("/Height"): generic.NumberObject(height),
            pdf_name("/ColorSpace"): pdf_name(colour_space),
            pdf_name("/BitsPerComponent"): generic.NumberObject(8),
            pdf_name("/Filter"): pdf_name("/FlateDecode"),
        },
        encoded_data=deflated,
    )


@dataclass(frozen=True)
class _EncodedImage:
    width: int
    height: int
    rgb: bytes  # deflated 8-bit RGB samples
    alpha: bytes | None  # deflated 8-bit alpha samples, None when fully opaque


@functools.lru_cache(maxsize=32)
def _encode_png(png: bytes) -> _EncodedImage:
    """Decode and deflate a seal image. Cached by content: decoding and compressing a 500 px
    seal costs about as much as the rest of a signature, and the same few seals are used over
    and over."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
    except OSError as error:
        raise PlacementError("印章图片无法读取，必须是 PNG 格式") from error
    alpha = None
    if has_alpha:
        channel = image.getchannel("A")
        if channel.getextrema() != (255, 255):
            alpha = zlib.compress(channel.tobytes())
        image = image.convert("RGB")
    return _EncodedImage(image.width, image.height, zlib.compress(image.tobytes()), alpha)


def _num(value: float) -> str:
    """A PDF number with at most four decimals (1/10000 pt, far below anything visible)."""
    text = format(value, ".4f").rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _nums(values: Iterable[float]) -> str:
    return " ".join(map(_num, values))
