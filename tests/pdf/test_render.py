"""Page previews: JPEG of the requested width, rotation applied, seals (signature widgets) drawn."""

import io
import math

import pypdfium2 as pdfium
import pytest
from helpers import build_pdf, corpus_pdf, needs_pdf_corpus
from PIL import Image

from portal.pdf.errors import PdfRefused
from portal.pdf.render import MAX_PIXELS, MEDIA_TYPE, open_document, render_page, render_pages


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@needs_pdf_corpus
@pytest.mark.parametrize("width", [612, 1000, 150])
def test_a_page_renders_as_a_jpeg_of_the_requested_width(width):
    preview = render_page(corpus_pdf("tracemonkey.pdf"), 0, width)
    image = decode(preview.data)
    assert preview.media_type == MEDIA_TYPE == "image/jpeg"
    assert image.format == "JPEG"
    assert image.size == (preview.width, preview.height) == (width, math.ceil(792 * width / 612))


@needs_pdf_corpus
def test_a_rotated_page_renders_with_swapped_aspect_ratio():
    """hello_world_rotated.pdf's portrait page (612 × 792) carries /Rotate 90: its preview is landscape."""
    preview = render_page(corpus_pdf("hello_world_rotated.pdf"), 0, 792)
    assert (preview.width, preview.height) == (792, 612)


@needs_pdf_corpus
def test_a_cropped_page_renders_only_its_crop_box():
    preview = render_page(corpus_pdf("bug1669097.pdf"), 0, 740)
    crop_width, crop_height = 467.874 - 97.6266, 748.975 - 607.744
    assert preview.height == pytest.approx(740 * crop_height / crop_width, abs=1)


SEAL = b"1 0 0 rg 0 0 200 100 re f"  # a red 200 × 100 pt rectangle

WITH_SIGNATURE_WIDGET = build_pdf(
    [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [4 0 R] >>",
        b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Seal1) /Rect [100 100 300 200] /F 4 /P 3 0 R"
        b" /AP << /N 5 0 R >> >>",
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 200 100] /Length %d >>\nstream\n%s\nendstream"
        % (len(SEAL), SEAL),
    ]
)


def is_red(pixel) -> bool:
    red, green, blue = pixel[:3]
    return red > 200 and green < 60 and blue < 60


def test_a_seal_drawn_by_a_signature_widget_shows_in_the_preview():
    inside = (200, 792 - 150)  # the widget's centre, in pixels at 72 dpi (y grows downwards)
    preview = decode(render_page(WITH_SIGNATURE_WIDGET, 0, 612).data)
    assert is_red(preview.getpixel(inside))
    assert not is_red(preview.getpixel((400, 400)))

    # The control: pdfium without a form environment leaves the widget out, which is why we init forms.
    document = pdfium.PdfDocument(WITH_SIGNATURE_WIDGET)
    page = document[0]
    bare = page.render(scale=1).to_pil()
    assert not is_red(bare.getpixel(inside))
    page.close()
    document.close()


@needs_pdf_corpus
def test_all_pages_render_from_one_opened_document():
    thumbnails = render_pages(corpus_pdf("tracemonkey.pdf"), 120)
    assert len(thumbnails) == 14
    assert all(decode(t.data).size == (120, 156) for t in thumbnails)

    with open_document(corpus_pdf("hello_world_rotated.pdf")) as document:
        some = render_pages(document, 100, [4, 0])
        again = render_page(document, 0, 100)  # the document stays open and usable for the caller
    assert [(t.width, t.height) for t in some] == [(100, math.ceil(612 * 100 / 792))] * 2
    assert again.data == some[1].data


def test_an_absurdly_elongated_page_is_rendered_within_the_pixel_bound():
    needle = build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 3 14400] >>",
        ]
    )
    preview = render_page(needle, 0, 1000)  # 1000 px wide would be 4.8 million px tall
    assert preview.width * preview.height <= MAX_PIXELS
    assert decode(preview.data).size == (preview.width, preview.height)


def test_bytes_pdfium_cannot_open_are_refused_as_damaged():
    with pytest.raises(PdfRefused) as caught:
        render_page(b"%PDF-1.7\nnothing else", 0, 600)
    assert caught.value.reason == "damaged"


def test_a_page_index_past_the_end_is_a_programming_error():
    with pytest.raises(IndexError):
        render_page(WITH_SIGNATURE_WIDGET, 1, 600)
