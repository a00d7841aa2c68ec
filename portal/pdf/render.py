"""Page previews with pdfium: JPEG at a given width, rotation applied, signature widgets drawn.

Format: JPEG (libjpeg-turbo via Pillow), quality 80, default 4:2:0 subsampling. Measured on
tracemonkey.pdf page 1 (bench/pdf_preview.py): pdfium renders it at 612 px in ~1.3 ms and JPEG
encodes it in ~0.9 ms, while PNG takes ~19 ms at its default level and ~10 ms at level 1, and
WebP ~10 ms even at its fastest method. Pages are opaque, so JPEG's lack of transparency costs
nothing, and text at q80 stays clean at preview sizes. Pages are rendered as RGBX, which Pillow
wraps without a copy and libjpeg-turbo reads directly; BGR would need a conversion first.

pdfium applies the page's /Rotate itself, so a landscape-rotated page comes out landscape. It draws
form widgets — our seals are signature-field widgets (DESIGN.md §5) — only when the document's form
environment was initialised before its pages were loaded, which `open_document` does.

pdfium is not thread-safe: every call into it here holds `pdfium_lock`. Other modules calling
pdfium in a process that renders from several threads should hold it too.
"""

import io
import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pypdfium2 as pdfium

from portal.pdf.errors import PdfRefused

MEDIA_TYPE = "image/jpeg"
JPEG_QUALITY = 80
# A page box may be absurdly elongated (PDF allows 3 × 14 400 pt): bound the bitmap, whatever
# width is asked for, so one page cannot take gigabytes. JPEG's own limit is 65 535 px a side.
MAX_PIXELS = 40_000_000
MAX_SIDE = 65_000

pdfium_lock = threading.RLock()


@dataclass(frozen=True)
class PageImage:
    """An encoded preview: `data` in `media_type`, `width` × `height` pixels."""

    data: bytes
    media_type: str
    width: int
    height: int


@contextmanager
def open_document(data: bytes) -> Iterator[pdfium.PdfDocument]:
    """An open pdfium document with forms initialised, closed (with its pages) on exit."""
    with pdfium_lock:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            raise PdfRefused("damaged", "PDF 文件已损坏，无法生成预览。", f"pdfium: {e}") from None
        try:
            document.init_forms()  # must precede loading any page, or widgets (seals) are not drawn
            yield document
        finally:
            document.close()


def render_page(source: bytes | pdfium.PdfDocument, page_index: int, width_px: int) -> PageImage:
    """Page `page_index` (0-based) as a JPEG `width_px` wide, from PDF bytes or an open document."""
    with _document(source) as document:
        return _render(document, page_index, width_px)


def render_pages(
    source: bytes | pdfium.PdfDocument, width_px: int, page_indices: Iterable[int] | None = None
) -> list[PageImage]:
    """Several pages (all by default) from one opening of the document, e.g. for thumbnails."""
    with _document(source) as document:
        indices = range(len(document)) if page_indices is None else page_indices
        return [_render(document, index, width_px) for index in indices]


@contextmanager
def _document(source: bytes | pdfium.PdfDocument) -> Iterator[pdfium.PdfDocument]:
    """The caller's open document (left open), or one opened from bytes for this call."""
    if isinstance(source, pdfium.PdfDocument):
        with pdfium_lock:
            yield source
    else:
        with open_document(source) as document:
            yield document


def _render(document: pdfium.PdfDocument, page_index: int, width_px: int) -> PageImage:
    if width_px < 1:
        raise ValueError(f"width must be at least 1 pixel, not {width_px}")
    if not 0 <= page_index < len(document):
        raise IndexError(f"page {page_index} of a {len(document)}-page document")
    if document.formenv is None:
        # A document opened elsewhere: give it forms now. pdfium ignores this for pages already
        # loaded, which is why open_document() is the way to get a document for rendering.
        document.init_forms()
    try:
        page = document[page_index]
    except pdfium.PdfiumError as e:
        raise PdfRefused("damaged", "PDF 文件已损坏，无法生成预览。", f"page {page_index}: {e}") from None
    try:
        width_pt, height_pt = page.get_size()  # after /Rotate, as displayed
        if not (width_pt > 0 and height_pt > 0):
            detail = f"page {page_index} is {width_pt}×{height_pt} pt"
            raise PdfRefused("damaged", "PDF 文件页面尺寸无效，无法生成预览。", detail)
        scale = _scale(width_pt, height_pt, width_px)
        bitmap = page.render(scale=scale, rev_byteorder=True, prefer_bgrx=True, may_draw_forms=True)
        try:
            image = bitmap.to_pil()  # shares the bitmap's buffer: encode before closing it
            out = io.BytesIO()
            image.save(out, "JPEG", quality=JPEG_QUALITY)
            return PageImage(out.getvalue(), MEDIA_TYPE, image.width, image.height)
        finally:
            bitmap.close()
    finally:
        page.close()


def _scale(width_pt: float, height_pt: float, width_px: int) -> float:
    """The scale that makes the (rotated) page `width_px` wide, within the bitmap bounds."""
    scale = min(
        width_px / width_pt,
        math.sqrt(MAX_PIXELS / (width_pt * height_pt)),
        MAX_SIDE / width_pt,
        MAX_SIDE / height_pt,
    )
    # pdfium's wrapper sizes the bitmap as ceil(width × scale); floating point can land a hair
    # above the integer and add a column, so step the scale down to the largest one that fits.
    while math.ceil(width_pt * scale) > width_px:
        scale = math.nextafter(scale, 0)
    return scale
