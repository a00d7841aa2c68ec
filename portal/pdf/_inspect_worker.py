"""The child process behind `portal.pdf.inspect`: parses untrusted PDFs where a hang or a crash costs nothing.

Run by path (`python -I _inspect_worker.py`), never imported as part of the `portal` package: the
child then loads only pyHanko, pypdfium2 and the standard library — not Flask, not the app — so it
starts quickly and stays small. For the same reason it knows nothing of Chinese messages or limits'
wording: it answers with reason codes and the parent (inspect.py) says them to the user.

Protocol on stdin/stdout, every frame an 8-byte big-endian length then the payload:
  child  → parent, once at start: JSON {"ready": true}
  parent → child, per request:   JSON {"max_pages": int, "qpdf_timeout": float}, then the PDF bytes
  child  → parent, per request:   JSON {"ok": true, "info": {...}} followed by the repaired bytes when
                                  info["repaired"] is true, or JSON {"ok": false, "reason": ..., "detail": ...}
Replies are JSON, not pickle, on purpose: the child handles hostile input, and if it were ever
subverted, a pickle reply would let it run code in the parent.
"""

import io
import json
import logging
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import enumerate_sig_fields

# Open files exactly as the signer (sign.py) and the verifier (verify.py) do: strict. A file only a
# lenient reader accepts would pass here and fail there; qpdf's rewrite of it passes strict parsing.
PYHANKO_STRICT = True
# Where the end-of-file marker must be, as for Acrobat's reader.
EOF_WINDOW = 1024
# Deeper page trees than this exist only in crafted files; pyHanko walks the tree recursively.
MAX_TREE_DEPTH = 64
# pdfium's default when a page has no usable /MediaBox (US Letter), so our geometry matches the render.
LETTER = (0.0, 0.0, 612.0, 792.0)


class Refusal(Exception):
    """The file is refused for `reason`; `detail` is for logs."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Damaged(Refusal):
    """Refused as damaged — but a repaired copy may still pass."""

    def __init__(self, detail: str):
        super().__init__("damaged", detail)


def examine(data: bytes, max_pages: int, qpdf_timeout: float) -> tuple[dict, bytes | None]:
    """Describe the file, repairing it with qpdf when only the repaired copy is usable."""
    try:
        return describe(data, max_pages), None
    except Damaged as damage:
        if qpdf_says_encrypted(data, qpdf_timeout):
            raise Refusal("encrypted", f"qpdf reports encryption; {damage.detail}") from None
        fixed = qpdf_repair(data, qpdf_timeout)
        if fixed is None:
            raise
        try:
            info = describe(fixed, max_pages)
        except Damaged as still:
            raise Damaged(f"{damage.detail}; after qpdf repair: {still.detail}") from None
        if info["is_signed"]:
            # Rewriting a signed file breaks its signatures: better to refuse than to store a
            # "repaired" document whose earlier signatures no longer verify.
            raise Refusal("signed_needs_repair", damage.detail) from None
        info["repaired"] = True
        return info, fixed


def describe(data: bytes, max_pages: int) -> dict:
    """What the signer (pyHanko) and the renderer (pdfium) both see in the file, or a Refusal."""
    if data.rfind(b"%%EOF", -EOF_WINDOW) == -1:
        # pyHanko looks for the marker backwards a byte at a time (~0.7 µs each: over a minute for
        # 100 MB of trailing junk); readers expect it near the end, qpdf can rebuild what is missing.
        raise Damaged(f"no %%EOF in the last {EOF_WINDOW} bytes")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=PYHANKO_STRICT)
    except Exception as e:
        if pdfium_says_password(data):
            raise Refusal("encrypted", "pdfium asks for a password") from None
        raise Damaged(f"pyHanko cannot open it for incremental update: {type(e).__name__}: {e}") from None
    reader = writer.prev
    if reader.encrypted:
        raise Refusal("encrypted", "/Encrypt in trailer")
    perms = reader.root.get("/Perms")
    if isinstance(perms, generic.DictionaryObject) and "/DocMDP" in perms:
        # A certification signature forbids what signing here adds (seal widgets): pyHanko and
        # Adobe rate it as tampering, so the file is refused rather than signed and broken.
        raise Refusal("certified", "/Perms /DocMDP in the catalog")
    if reader.xrefs.hybrid_xrefs_present:
        # Readers that ignore /XRefStm see other objects than those that follow it, so no verifier
        # can vouch for what was signed; qpdf's rewrite has one cross-reference section.
        raise Damaged("hybrid cross-reference tables (/XRefStm)")

    read_every_object(reader)
    try:
        pages = walk_pages(reader, max_pages)
        is_signed = any(True for _ in enumerate_sig_fields(reader, filled_status=True))
        major, minor = reader.input_version
    except Refusal:
        raise
    except Exception as e:
        raise Damaged(f"pyHanko: {type(e).__name__}: {e}") from None
    if not pages:
        raise Refusal("no_pages")

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise Damaged(f"pdfium cannot open it: {e}") from None
    try:
        if len(document) != len(pages):
            raise Damaged(f"page count differs: pyHanko {len(pages)}, pdfium {len(document)}")
    finally:
        document.close()
    return {"pages": pages, "is_signed": is_signed, "version": f"{major}.{minor}", "repaired": False}


def read_every_object(reader) -> None:
    """Parse every object the cross-reference sections name. The signer touches few of them, but
    the verifier's change analysis compares them all, so a broken stream (a wrong /Length, no
    `endstream`) must be found now, while qpdf can still rebuild it, and not after signing."""
    refs = set()
    for revision in range(reader.xrefs.total_revisions):
        refs |= reader.xrefs.explicit_refs_in_revision(revision) - reader.xrefs.refs_freed_in_revision(revision)
    for ref in refs:
        try:
            reader.get_object(ref)
        except Exception as e:
            raise Damaged(f"object {ref.idnum} {ref.generation} cannot be read: {type(e).__name__}: {e}") from None


def walk_pages(reader, max_pages: int) -> list[dict]:
    """Every page's geometry, in order, checking the tree the way pyHanko will navigate it.

    pyHanko finds page n by skipping whole subtrees by their /Count, so each /Count must equal the
    pages really under it, every kid must be an indirect /Page or /Pages, and nothing may repeat
    (a cycle loops; a page listed twice would receive the other page's seals too).
    """
    pages_ref = reader.root.raw_get("/Pages")
    if not isinstance(pages_ref, generic.IndirectObject):
        raise Damaged("/Pages is not an indirect object")
    pages: list[dict] = []
    seen = {pages_ref.reference}

    def visit(node, inherited: dict, depth: int) -> int:
        if depth > MAX_TREE_DEPTH:
            raise Damaged("page tree too deep")
        inherited = {**inherited, **own_attributes(node)}
        before = len(pages)
        kids = node["/Kids"]
        for index in range(len(kids)):
            kid_ref = kids.raw_get(index)
            if not isinstance(kid_ref, generic.IndirectObject):
                raise Damaged("a page tree kid is not an indirect object")
            if kid_ref.reference in seen:
                raise Damaged(f"object {kid_ref.reference.idnum} appears twice in the page tree")
            seen.add(kid_ref.reference)
            kid = kid_ref.get_object()
            kind = entry(kid, "/Type") if isinstance(kid, generic.DictionaryObject) else None
            if kind == "/Pages":
                counted = visit(kid, inherited, depth + 1)
                check_count(kid, counted)
            elif kind == "/Page":
                # Counting as we go bounds the work by the limit, whatever /Count claims.
                if len(pages) >= max_pages:
                    raise Refusal("too_many_pages", f"more than {max_pages} pages")
                pages.append(geometry({**inherited, **own_attributes(kid)}))
                resolve_annotations(kid)
            else:
                raise Damaged(f"page tree node of /Type {kind}")
        return len(pages) - before

    root = pages_ref.get_object()
    check_count(root, visit(root, {}, 0))
    return pages


INHERITABLE = ("/MediaBox", "/CropBox", "/Rotate")


def resolve_annotations(page):
    """Read every annotation of the page: the signer appends its widgets to /Annots and the
    verifier compares annotations between revisions, so an unreadable one fails them later."""
    annotations = entry(page, "/Annots")
    if isinstance(annotations, generic.ArrayObject):
        for index in range(len(annotations)):
            annotations[index]  # indexing dereferences; a broken object raises here


def own_attributes(node) -> dict:
    # A key present on a node wins over its ancestors even when its value is unusable, as in pdfium.
    return {key: node[key] for key in INHERITABLE if key in node}


def entry(node, key: str):
    # pyHanko dereferences in node[key] but not in node.get(key), which dict supplies unchanged.
    return node[key] if key in node else None


def check_count(node, counted: int):
    declared = entry(node, "/Count")
    if not isinstance(declared, int) or declared != counted:
        raise Damaged(f"/Count is {declared} but {counted} pages are below")


def geometry(attributes: dict) -> dict:
    """A page's boxes and rotation, resolved exactly as pdfium does (CPDF_Page::UpdateDimensions),
    so the numbers we hand the signer describe the image the user placed seals on."""
    media = rect(attributes.get("/MediaBox")) or LETTER
    crop = rect(attributes.get("/CropBox"))
    if crop is None:
        crop = media
    else:
        crop = (max(crop[0], media[0]), max(crop[1], media[1]), min(crop[2], media[2]), min(crop[3], media[3]))
        if crop[0] > crop[2] or crop[1] > crop[3]:
            crop = (0.0, 0.0, 0.0, 0.0)
    width, height = crop[2] - crop[0], crop[3] - crop[1]
    if width <= 0 or height <= 0:
        raise Damaged(f"a page has no visible area (crop box {crop})")
    rotation = rotation_of(attributes.get("/Rotate"))
    display = (height, width) if rotation in (90, 270) else (width, height)
    return {
        "width": width,
        "height": height,
        "crop_box": crop,
        "media_box": media,
        "rotation": rotation,
        "display_width": display[0],
        "display_height": display[1],
    }


def rect(value) -> tuple[float, float, float, float] | None:
    """A normalised box from a PDF array, or None where pdfium would see an empty one."""
    if not isinstance(value, generic.ArrayObject) or len(value) != 4:
        return None
    numbers = []
    for index in range(4):
        item = value[index]  # indexing dereferences, iterating would not
        number = float(item) if isinstance(item, int | generic.FloatObject) else 0.0
        numbers.append(number if math.isfinite(number) else 0.0)
    x0, y0, x1, y1 = numbers
    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return box if box[0] < box[2] and box[1] < box[3] else None


def rotation_of(value) -> int:
    # pdfium: (GetInteger() / 90) % 4 in C, so truncation toward zero; a non-multiple of 90 rounds down.
    if not isinstance(value, int | generic.FloatObject):
        return 0
    number = float(value)
    if not math.isfinite(number) or abs(number) > 2**31:
        return 0
    quarter = int(int(number) / 90) % 4
    return quarter * 90


def pdfium_says_password(data: bytes) -> bool:
    try:
        pdfium.PdfDocument(data).close()
    except pdfium.PdfiumError as e:
        return getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD
    return False


def qpdf_says_encrypted(data: bytes, timeout: float) -> bool:
    status, _ = run_qpdf(["--is-encrypted"], data, timeout)
    return status == 0


def qpdf_repair(data: bytes, timeout: float) -> bytes | None:
    """qpdf's rewrite of a damaged file (it rebuilds the cross-reference table), or None.

    Exit status 3 means "succeeded with warnings", which is what repairing a damaged file says.
    --deterministic-id keeps the result a function of the input, so a re-upload is the same blob.
    """
    status, output = run_qpdf(["--deterministic-id"], data, timeout, rewrite=True)
    return output if status in (0, 3) else None


def run_qpdf(options: list[str], data: bytes, timeout: float, rewrite: bool = False) -> tuple[int | None, bytes | None]:
    """qpdf's exit status (None if it is absent or timed out) and, for a rewrite, the file it wrote."""
    qpdf = shutil.which("qpdf")
    if qpdf is None:
        return None, None
    with tempfile.TemporaryDirectory(prefix="portal-qpdf-") as folder:
        source, target = os.path.join(folder, "in.pdf"), os.path.join(folder, "out.pdf")
        with open(source, "wb") as f:
            f.write(data)
        try:
            command = [qpdf, *options, source, *([target] if rewrite else [])]
            result = subprocess.run(command, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, None
        if not (rewrite and os.path.exists(target)):
            return result.returncode, None
        with open(target, "rb") as f:
            return result.returncode, f.read()


def read_frame(stream) -> bytes | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack(">Q", header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def write_frame(stream, payload: bytes):
    stream.write(struct.pack(">Q", len(payload)))
    stream.write(payload)


def serve():
    # Our replies own the real stdout; anything a library prints goes to stderr instead of
    # corrupting the protocol.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    # pyHanko logs every oddity it tolerates in non-strict mode; the reply carries what matters.
    logging.disable(logging.CRITICAL)

    write_frame(replies, json.dumps({"ready": True}).encode())
    replies.flush()
    while True:
        params = read_frame(requests)
        data = read_frame(requests) if params is not None else None
        if data is None:
            return  # the parent closed the pipe: it is done with us (or gone)
        params = json.loads(params)
        repaired = None
        try:
            info, repaired = examine(data, params["max_pages"], params["qpdf_timeout"])
            reply = {"ok": True, "info": info}
        except Refusal as refusal:
            reply = {"ok": False, "reason": refusal.reason, "detail": refusal.detail}
        except Exception as e:  # a parser bug on a hostile file is still a damaged file
            reply = {"ok": False, "reason": "damaged", "detail": f"{type(e).__name__}: {e}"}
        write_frame(replies, json.dumps(reply).encode())
        if repaired is not None:
            write_frame(replies, repaired)
        replies.flush()


if __name__ == "__main__":
    serve()
