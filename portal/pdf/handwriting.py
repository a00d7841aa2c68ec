"""Handwritten signatures: from a photo, a scan or a drawing to a seal image.

Pure (no Flask, no database): image bytes in, PNG bytes out. The result follows the convention of
the generated seals (`seal_image`): RGBA, a single ink colour with the antialiasing carried by alpha
alone (so it composes over any page without a paper-coloured fringe), cropped to the ink, scaled
without distortion to fit SIGNATURE_BOX_MM, and the DPI recorded so the PNG knows its printed size.

How the paper goes away, pure Pillow:

1. The image is decoded at a working size (at most WORK_SIDE px; the result is at most 945 px wide
   at 600 dpi, so nothing is lost), turned upright from EXIF, and put on white if it had alpha
   (a drawing from the phone pad is black strokes on transparency).
2. Lightness is compared with the *local* paper brightness, not with one global threshold: a photo
   of a sheet has grey or yellowish paper, a shadow across one corner and a bright spot under the
   lamp. The paper is estimated by a wide maximum filter on a reduced copy (wider than any pen
   stroke, so strokes vanish from it), blurred and scaled back up. Ink is what is markedly darker
   than the paper around it, by ratio (INK_RATIO_*) and by a minimum absolute step (INK_STEP_*),
   so sensor noise in a dark photo is not taken for ink.
3. Between the low and high limits alpha ramps linearly, which keeps the strokes' antialiased edges;
   above the high limit the ink is fully opaque however pale the pen was (a blue ballpoint photographed
   in dim light comes out as firm as a felt pen).
4. Specks (paper grain, dust) are dropped: a firm ink pixel stays only with at least SPECK_NEIGHBOURS
   firm pixels in its 5 × 5 neighbourhood, which a 1 px pen line has and an isolated dot has not; soft
   alpha survives only next to firm ink.
5. The ink is painted one colour: dark blue when the firm pixels are clearly blue on average
   (a blue pen stays recognisably blue), near-black otherwise.

Errors are `SignatureImageError` with the message the person reads, in Chinese.
"""

import io

from PIL import Image, ImageChops, ImageFilter, ImageMath, ImageOps, ImageStat, UnidentifiedImageError

from portal.pdf.seal_image import fit_to_box

# The box a handwritten signature is scaled into: 40 × 20 mm, a signature's size on a printed form
# (a name written across a 4 cm line); the image keeps its proportions, so it touches the box's
# width or its height, and the seal's size is the ink's size.
SIGNATURE_BOX_MM = (40.0, 20.0)
DPI = 600

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 8000  # px, either side; checked from the header, before anything is decoded
WORK_SIDE = 2000
FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP", "GIF"}  # MPO: the JPEG variant some phones write

# Ink is darker than its local paper by at least this share of the paper's lightness (soft → firm)…
INK_RATIO_LOW, INK_RATIO_HIGH = 0.22, 0.45
# …and by at least this many levels of 255, so noise in a dark, underexposed photo is not ink.
INK_STEP_LOW, INK_STEP_HIGH = 16, 40
SPECK_NEIGHBOURS = 4  # firm pixels in a 5 × 5 window, the pixel included
MIN_INK_PIXELS = 40  # at the working size; fewer firm pixels is a blank page
MIN_INK_SHARE = 0.0001  # of the working image's area, whichever is larger
MAX_INK_SHARE = 0.5  # more is a dark photo, not a signature on paper
# The reduced copy the paper is estimated on is about this many pixels across, and the maximum filter
# spans PAPER_FILTER of its pixels: about 1/20 of the image, wider than a pen stroke.
PAPER_SIDE = 160
PAPER_FILTER = 9

INK_BLACK = (0x1A, 0x1A, 0x1A)
INK_BLUE = (0x1B, 0x2A, 0x80)


class SignatureImageError(ValueError):
    """The picture cannot become a signature; str(error) is the message for the person."""


def clean_signature_image(data: bytes) -> bytes:
    """A photo, scan or drawing of a handwritten signature → a transparent PNG (RGBA) of the ink
    alone, cropped to it, fitted into SIGNATURE_BOX_MM at DPI. Raises SignatureImageError for data
    that is not a supported image, is too big, or shows no signature."""
    rgb = _decode(data)
    lightness = rgb.convert("L")
    alpha = _ink_alpha(lightness, _paper(lightness))
    firm = alpha.point(_at_least(128))
    # Specks: count the firm pixels around each one (a 5 × 5 box mean, 255 = all 25 of them).
    # Half a pixel below the count absorbs the filter's rounding.
    crowded = firm.filter(ImageFilter.BoxBlur(2)).point(_at_least((SPECK_NEIGHBOURS - 0.5) * 255 / 25))
    firm = ImageChops.darker(firm, crowded)

    area = rgb.width * rgb.height
    ink_pixels = firm.histogram()[255]
    if ink_pixels < max(MIN_INK_PIXELS, MIN_INK_SHARE * area):
        raise SignatureImageError("未检测到签名笔迹，请在白纸上用深色笔签名后重新拍摄或上传")
    if ink_pixels > MAX_INK_SHARE * area:
        raise SignatureImageError("图片中深色区域过多，未能分离出签名笔迹，请在白纸上签名并让白纸充满画面后重新拍摄")
    alpha = ImageChops.darker(alpha, firm.filter(ImageFilter.MaxFilter(5)))

    ink = _ink_colour(rgb, firm)
    signature = Image.new("RGBA", rgb.size, ink)
    signature.putalpha(alpha)
    signature = signature.crop(alpha.getbbox())
    out = io.BytesIO()
    signature.save(out, "PNG")
    fitted = Image.open(io.BytesIO(fit_to_box(out.getvalue(), *_box_mm(signature.size), dpi=DPI)))
    # Painted again after scaling: the resampling filter's overshoot tints the colour of some edge
    # pixels, and the convention is one colour with the shape in alpha alone.
    result = Image.new("RGBA", fitted.size, ink)
    result.putalpha(fitted.getchannel("A"))
    out = io.BytesIO()
    result.save(out, "PNG", dpi=fitted.info["dpi"])
    return out.getvalue()


def _decode(data: bytes) -> Image.Image:
    """The picture as RGB on white at the working size, upright; or SignatureImageError."""
    if len(data) > MAX_BYTES:
        raise SignatureImageError(f"图片过大（超过 {MAX_BYTES // 1024 // 1024} MB），请压缩后重新上传")
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError):
        raise SignatureImageError("无法识别该文件，请上传 JPG 或 PNG 格式的图片") from None
    if image.format not in FORMATS:
        raise SignatureImageError("不支持该图片格式，请上传 JPG 或 PNG 格式的图片")
    if max(image.size) > MAX_SIDE:
        raise SignatureImageError(f"图片尺寸过大（超过 {MAX_SIDE} 像素），请缩小后重新上传")
    try:
        image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG decodes at a reduced scale: less memory and time
        image = ImageOps.exif_transpose(image)
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
        rgba = image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise SignatureImageError("图片已损坏或不完整，请重新上传") from None
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def _paper(lightness: Image.Image) -> Image.Image:
    """The paper's local lightness: a maximum filter wider than a stroke on a reduced copy, blurred
    so shadows' edges stay soft, scaled back to the full size."""
    factor = max(1, round(max(lightness.size) / PAPER_SIDE))
    small = lightness.reduce(factor) if factor > 1 else lightness
    small = small.filter(ImageFilter.MaxFilter(PAPER_FILTER)).filter(ImageFilter.GaussianBlur(PAPER_FILTER / 3))
    # The blur pulls a bright neighbourhood down at its edge; the paper is never darker than the pixel.
    return ImageChops.lighter(small.resize(lightness.size, Image.Resampling.BILINEAR), lightness)


def _at_least(level: float):
    return lambda v: 255 if v >= level else 0


def _ramp(low: float, high: float):
    return lambda v: 0 if v <= low else 255 if v >= high else round((v - low) * 255 / (high - low))


def _ink_alpha(lightness: Image.Image, paper: Image.Image) -> Image.Image:
    """Opacity of the ink: how much darker than its paper each pixel is, by ratio and by step."""
    ratio = ImageMath.lambda_eval(
        lambda e: e["convert"]((e["float"](e["paper"]) - e["ink"]) * 255 / (e["float"](e["paper"]) + 1), "L"),
        paper=paper,
        ink=lightness,
    )
    by_ratio = ratio.point(_ramp(INK_RATIO_LOW * 255, INK_RATIO_HIGH * 255))
    by_step = ImageChops.subtract(paper, lightness).point(_ramp(INK_STEP_LOW, INK_STEP_HIGH))
    return ImageChops.darker(by_ratio, by_step)


def _ink_colour(rgb: Image.Image, firm: Image.Image) -> tuple[int, int, int]:
    r, g, b = ImageStat.Stat(rgb, mask=firm).mean
    return INK_BLUE if b > r + 25 and b > g + 10 else INK_BLACK


def _box_mm(size: tuple[int, int]) -> tuple[float, float]:
    """The largest width × height with the ink's proportions inside SIGNATURE_BOX_MM (0.1 mm steps,
    at least 1 mm, so a single straight stroke still has a printable size)."""
    box_w, box_h = SIGNATURE_BOX_MM
    scale = min(box_w / size[0], box_h / size[1])
    return max(1.0, round(size[0] * scale, 1)), max(1.0, round(size[1] * scale, 1))
