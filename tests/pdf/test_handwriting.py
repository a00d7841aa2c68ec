"""Handwritten signatures from pictures: the paper (grey, yellowish, shadowed) becomes transparent, the
ink opaque and one dark colour, the result is cropped to the ink and fits 40 × 20 mm at 600 dpi; blank
pages, dark photos, non-images and oversized files are refused in Chinese. Inputs and results are saved
to test-artifacts/handwriting/ for a look."""

import io
import math
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter

from portal.pdf import handwriting
from portal.pdf.handwriting import INK_BLACK, INK_BLUE, SignatureImageError, clean_signature_image
from portal.pdf.seal_image import physical_size_mm

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "handwriting"


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def paper_photo(size=(1600, 1200), ink=(38, 38, 52), blank=False) -> Image.Image:
    """Like a phone photo of a signed sheet: yellowish grey paper darkening towards the left (the
    shadow of the hand holding the phone), sensor noise, and a signature of two strokes."""
    w, h = size
    ramp = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    paper = Image.merge(
        "RGB",
        [
            ramp.point(lambda v, base=base, gain=gain: base + int(v * gain))
            for base, gain in ((120, 0.42), (116, 0.4), (100, 0.38))
        ],
    )
    if not blank:
        draw = ImageDraw.Draw(paper)
        wave = [(int(w * 0.2) + i * 4, int(h * 0.5 + h * 0.1 * math.sin(i / 15))) for i in range(int(w * 0.15))]
        draw.line(wave, fill=ink, width=10)
        draw.line([(int(w * 0.32), int(h * 0.35)), (int(w * 0.45), int(h * 0.68))], fill=ink, width=9)
    noise = Image.effect_noise(size, 40).convert("RGB")
    return Image.blend(paper, noise, 0.06)


def fills(alpha: Image.Image) -> bool:
    """Cropped to the ink: it reaches every edge (give or take the faint last pixel of a resampled edge)."""
    left, top, right, bottom = alpha.getbbox()
    return max(left, top, alpha.width - right, alpha.height - bottom) <= 2


def look(name: str, source: Image.Image, result: bytes) -> Image.Image:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source.save(ARTIFACTS / f"{name}-input.jpg")
    image = Image.open(io.BytesIO(result))
    on_white = Image.new("RGBA", image.size, "white")
    on_white.alpha_composite(image)
    on_white.save(ARTIFACTS / f"{name}-result.png")
    return image


def test_a_photo_on_grey_shadowed_paper_becomes_opaque_dark_ink_on_transparency():
    photo = paper_photo()
    result = clean_signature_image(encode(photo, quality=85))
    image = look("photo", photo, result)
    assert image.format == "PNG" and image.mode == "RGBA"
    assert image.info["dpi"] == pytest.approx((600, 600), abs=0.01)
    alpha = image.getchannel("A")
    # Trimmed: the ink touches all four edges; scaled: a wide signature fills the 40 mm width.
    assert fills(alpha)
    width_mm, height_mm = physical_size_mm(result)
    assert width_mm == pytest.approx(40, abs=0.1) and height_mm < 20
    # The paper is gone (transparent corners, most of the box empty) and the ink is fully opaque.
    histogram = alpha.histogram()
    assert histogram[0] > 0.6 * image.width * image.height
    assert histogram[255] > 0.02 * image.width * image.height
    for corner in ((0, 0), (image.width - 1, 0), (0, image.height - 1), (image.width - 1, image.height - 1)):
        assert alpha.getpixel(corner) == 0
    # One dark ink colour, wherever the pixel is fully opaque.
    opaque = [px[:3] for px in image.get_flattened_data() if px[3] == 255]
    assert set(opaque) == {INK_BLACK}


def test_a_hard_shadow_across_the_sheet_is_not_taken_for_ink():
    sheet = Image.new("L", (1200, 800), 212)
    ImageDraw.Draw(sheet).polygon([(0, 0), (520, 0), (320, 800), (0, 800)], fill=118)
    sheet = sheet.filter(ImageFilter.GaussianBlur(20))
    draw = ImageDraw.Draw(sheet)
    draw.line([(100, 400), (1100, 420)], fill=52, width=6)  # from the shadow into the light
    draw.line([(200, 300), (260, 600)], fill=45, width=6)  # inside the shadow
    photo = sheet.convert("RGB")
    image = look("shadow", photo, clean_signature_image(encode(photo)))
    alpha = image.getchannel("A")
    # The two strokes span the crop; the shadow's edge, running top to bottom, left no band of ink.
    assert fills(alpha)
    assert alpha.histogram()[0] > 0.85 * image.width * image.height
    band = alpha.crop((int(image.width * 0.3), 0, int(image.width * 0.42), int(image.height * 0.25)))
    assert band.getbbox() is None


def test_blue_ink_stays_blue_and_black_ink_black():
    blue = clean_signature_image(encode(paper_photo(ink=(30, 55, 150))))
    black = clean_signature_image(encode(paper_photo(ink=(45, 40, 40))))
    for png, colour in ((blue, INK_BLUE), (black, INK_BLACK)):
        image = Image.open(io.BytesIO(png))
        assert {px[:3] for px in image.get_flattened_data() if px[3] == 255} == {colour}


def test_a_drawing_from_the_phone_pad_is_kept_with_its_thin_smooth_strokes():
    """The pad posts black strokes on a transparent canvas (3 × device pixels, antialiased)."""
    canvas = Image.new("RGBA", (2058, 1374), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line(
        [(200 + i * 8, 700 + int(200 * math.sin(i / 20))) for i in range(200)], fill=(0, 0, 0, 255), width=5
    )
    canvas = canvas.resize((1029, 687), Image.Resampling.LANCZOS)
    image = look("pad", canvas.convert("RGB"), clean_signature_image(encode(canvas, "PNG")))
    alpha = image.getchannel("A")
    assert fills(alpha)
    levels = {v for v in range(1, 255) if alpha.histogram()[v]}
    assert len(levels) > 50  # the antialiased edge survives as partial alpha
    assert image.width == 945  # 40 mm at 600 dpi


def test_specks_of_dust_away_from_the_signature_are_not_part_of_it():
    sheet = Image.new("L", (1000, 700), 235)
    draw = ImageDraw.Draw(sheet)
    draw.line([(300, 350), (700, 360)], fill=30, width=8)
    draw.line([(450, 250), (480, 450)], fill=30, width=8)
    clean = clean_signature_image(encode(sheet, "PNG"))
    rng = random.Random(5)
    for _ in range(60):  # single dark pixels and 2-pixel pairs all over the sheet
        x, y = rng.randrange(1000), rng.randrange(700)
        draw.point([(x, y), (x + rng.randrange(2), y)], fill=20)
    dusty = clean_signature_image(encode(sheet, "PNG"))
    # The crop (and so the size and every pixel) is the strokes' alone.
    assert dusty == clean


def test_a_tall_signature_fits_the_height_and_keeps_its_proportions():
    sheet = Image.new("L", (800, 800), 240)
    ImageDraw.Draw(sheet).ellipse((200, 200, 600, 600), outline=20, width=12)
    width_mm, height_mm = physical_size_mm(clean_signature_image(encode(sheet, "PNG")))
    assert (width_mm, height_mm) == pytest.approx((20, 20), abs=0.1)


def test_a_rotated_phone_photo_is_turned_upright_from_exif():
    sheet = Image.new("RGB", (400, 1200), (230, 230, 225))
    ImageDraw.Draw(sheet).line([(200, 100), (200, 1100)], fill=(20, 20, 20), width=10)  # tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": the camera was held sideways
    width_mm, height_mm = physical_size_mm(clean_signature_image(encode(sheet, exif=exif)))
    assert width_mm == pytest.approx(40, abs=0.1) and height_mm < 3  # shown wide, as the person saw it


@pytest.mark.parametrize(
    "picture",
    [
        paper_photo(blank=True),  # grey paper, shadow and noise, nothing written
        Image.new("RGB", (640, 480), "white"),
        Image.effect_noise((900, 600), 30).point(lambda v: v // 6).convert("RGB"),  # a dark, noisy photo
    ],
    ids=["grey-paper", "white", "dark"],
)
def test_a_picture_without_a_signature_is_refused(picture):
    with pytest.raises(SignatureImageError, match="未检测到签名笔迹"):
        clean_signature_image(encode(picture))


def test_a_picture_that_is_mostly_dark_is_refused():
    sheet = Image.new("L", (800, 600), 240)
    ImageDraw.Draw(sheet).rectangle((0, 0, 800, 600), outline=10, width=0)
    for x in range(0, 800, 8):  # dense dark hatching: no paper left to find a signature on
        ImageDraw.Draw(sheet).line([(x, 0), (x, 600)], fill=10, width=6)
    with pytest.raises(SignatureImageError, match="深色区域过多"):
        clean_signature_image(encode(sheet, "PNG"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "无法识别"),
        (b"%PDF-1.7\n1 0 obj <<>> endobj\n", "无法识别"),
        ("张伟".encode(), "无法识别"),
        (encode(Image.new("RGB", (64, 64), "white"), "TIFF"), "不支持该图片格式"),
        (encode(Image.effect_noise((400, 200), 50).convert("RGB"))[:2000], "损坏"),
        (encode(Image.new("1", (8001, 20), 1), "PNG"), "超过 8000 像素"),
        (b"\xff\xd8\xff" + bytes(handwriting.MAX_BYTES), "超过 10 MB"),
    ],
    ids=["empty", "pdf", "text", "tiff", "truncated", "too-wide", "too-big"],
)
def test_what_is_not_a_usable_image_is_refused_with_the_reason(data, message):
    with pytest.raises(SignatureImageError, match=message):
        clean_signature_image(data)
