"""Seal images: the round official seal (公章) and the square personal name seal (名章).

Pure (no Flask, no database): text in, PNG bytes out. Every image is RGBA on a transparent
background, drawn in the single colour SEAL_RED with the antialiasing carried by alpha alone, so a
stamp composes over any page without a light or dark fringe. The PNG records its DPI (pHYs), and the
pixel box is the seal's physical box: 42 mm at 600 dpi is 992 px, prints at 42 mm, and the drawing
touches all four sides, so placing the image at width_mm × height_mm puts the seal's outline exactly
there. `fit_to_box` gives images that come from elsewhere the same property.

No character is ever drawn as a tofu box (□): the text is checked against the font first and a
missing glyph raises MissingGlyphError; no usable CJK font raises SealFontError, naming the package.

Drawing happens at SUPERSAMPLE times the final resolution and is box-filtered down, which
antialiases the ring, the star and the rotated glyphs alike (ImageDraw itself does not antialias).
"""

import io
import math
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

# Seals are printed in 印泥 red, process colour C0 M100 Y100 K0; #E60012 is that ink in sRGB (the usual
# conversion, e.g. Japan Color 2001 Coated). Pure #FF0000 reads orange-pink on screen and prints flat.
SEAL_RED = (0xE6, 0x00, 0x12)

MM_PER_INCH = 25.4
SUPERSAMPLE = 4

# Proportions of a 42 mm official seal, scaled linearly for other diameters. They follow common
# practice for 公章: a 1.2 mm rim, the name in 6.4–7.4 mm characters hugging the rim, a 14 mm star
# (circumscribed) in the centre, and the purpose line (合同专用章…) in smaller characters below it.
_REFERENCE_DIAMETER_MM = 42.0
_RING_MM = 1.2
_TEXT_GAP_MM = 0.8  # between the rim and the tops of the characters
_TEXT_HEIGHT_MM = 6.4  # for names long enough to fill the arc
_TEXT_MAX_HEIGHT_MM = 7.4  # short names, widely spaced, get larger characters
_STAR_RADIUS_MM = 7.0
_BOTTOM_HEIGHT_MM = 4.6
_BOTTOM_CENTRE_MM = 11.4  # below the seal's centre
_BOTTOM_MAX_WIDTH_MM = 20.0  # keeps the line clear of the ends of the arc
_BOTTOM_ASPECT = 0.8  # the purpose line is set in narrowed characters, as on real seals
# Font strokes are drawn this much wider on each side: a carved seal's strokes are heavier than a
# text face's, and thin strokes would break up when the stamp is printed small.
_OFFICIAL_BOLDEN_MM = 0.09

# The name is spread evenly and symmetrically about the top. Short names get wide spacing (at most
# _MAX_STEP between characters), long ones fill _MAX_SPAN and narrow their characters; with a
# purpose line the arc stops higher so its ends stay clear of that line.
_MAX_SPAN_DEG = 240.0
_MAX_SPAN_WITH_BOTTOM_DEG = 220.0
_MAX_STEP_DEG = 50.0
_CHAR_GAP = 0.12  # share of the pitch left empty between neighbours, measured at their inner edge
_MIN_ASPECT = 0.45  # narrower than this and the characters get shorter instead

# A square 20 mm name seal: the rim, its rounded outer corner, and the spacing inside.
_PERSONAL_BORDER = 0.05  # of the side
_PERSONAL_CORNER = 0.05
_PERSONAL_PADDING = 0.035
_PERSONAL_GUTTER = 0.03
_PERSONAL_MAX_CHARS = 9
_PERSONAL_BOLDEN = 0.006  # of the side, per edge of a stroke

# Fonts, best first. Official seals are cut in 宋体 (the State Council's 1999 rules on seals, 国发〔1999〕25号), so
# Song / Ming / serif faces come first; a Hei (sans) face still reads as a seal.
_FAMILY_PREFERENCE = ("Serif CJK", "Song", "Ming", "Sun", "FangSong", "Kai", "Sans CJK", "Hei")
# Tried when fontconfig is missing. Noto's .ttc files hold JP, KR, SC, TC and HK faces; every face is
# ranked, and the Simplified Chinese one wins.
_KNOWN_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
_FONT_PACKAGES = "fonts-noto-cjk or fonts-wqy-zenhei"
# Characters every usable face must have: what the generated seals of any school need most.
_FONT_PROBE = "示范大学合同专用章财务印"
# U+10FFFF is a noncharacter that no font maps, so it always renders as the font's .notdef glyph.
_NOT_A_CHARACTER = "\U0010ffff"
_PROBE_PX = 64


class SealFontError(RuntimeError):
    """No CJK font is installed."""


class MissingGlyphError(ValueError):
    """The font has no glyph for some character of the seal's text."""

    def __init__(self, chars: list[str], face: "FontFace"):
        self.chars = chars
        listed = ", ".join(f"{c} (U+{ord(c):04X})" for c in chars)
        super().__init__(
            f"字体缺字: {face.family} ({face.path}) has no glyph for {listed}; "
            f"install a font that covers it ({_FONT_PACKAGES}), or pass font= explicitly"
        )


@dataclass(frozen=True)
class FontFace:
    """One face of a font file (a .ttc holds several)."""

    path: str
    index: int = 0

    def font(self, size_px: int) -> ImageFont.FreeTypeFont:
        return _load_font(self.path, self.index, max(1, round(size_px)))

    @property
    def family(self) -> str:
        return self.font(_PROBE_PX).getname()[0]


@lru_cache(maxsize=64)
def _load_font(path: str, index: int, size_px: int) -> ImageFont.FreeTypeFont:
    # Basic layout: each character is drawn on its own, so there is nothing to shape, and FreeType's
    # plain cmap lookup makes an unmapped character fall to .notdef, which check_glyphs relies on.
    return ImageFont.truetype(path, size_px, index=index, layout_engine=ImageFont.Layout.BASIC)


# ---------------------------------------------------------------------------------------------
# Fonts and glyph coverage


def _rank(family: str, style: str) -> tuple:
    preference = next((i for i, word in enumerate(_FAMILY_PREFERENCE) if word.lower() in family.lower()), 99)
    simplified = family.endswith((" SC", " GB")) or "CN" in family.split()
    return (
        preference,
        not simplified,
        "regular" not in style.lower() and "book" not in style.lower(),
        # WenQuanYi's "Sharp" face is a bitmap font for screens; "Mono" squeezes Latin only.
        "sharp" in family.lower() or "mono" in family.lower(),
    )


def _fontconfig_faces() -> list[tuple[tuple, FontFace]]:
    """Faces that fontconfig says cover Chinese. Not `fc-match ':lang=zh'`: it always answers with
    its best guess, which is DejaVu Sans (no CJK at all) on a machine with no CJK font."""
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return []
    out = subprocess.run(
        [fc_list, "-f", "%{file}\t%{index}\t%{family}\t%{style}\n", ":lang=zh"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    faces = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[1].isdigit():
            family, style = parts[2].split(",")[0], parts[3].split(",")[0]
            faces.append((_rank(family, style), FontFace(parts[0], int(parts[1]))))
    return faces


def _known_faces() -> list[tuple[tuple, FontFace]]:
    faces = []
    for path in _KNOWN_FONT_FILES:
        for index in range(8):
            try:
                family, style = _load_font(path, index, _PROBE_PX).getname()
            except OSError:  # no such file, or past the last face of the collection
                break
            faces.append((_rank(family, style), FontFace(path, index)))
    return faces


@lru_cache(maxsize=1)
def find_cjk_font() -> FontFace:
    """The best installed face that really draws Chinese; SealFontError names the packages if none."""
    # fontconfig's faces first, then the well-known files (a container without fontconfig).
    ranked = sorted(_fontconfig_faces(), key=lambda pair: pair[0]) + sorted(_known_faces(), key=lambda pair: pair[0])
    for face in dict.fromkeys(face for _, face in ranked):
        try:
            check_glyphs(_FONT_PROBE, face)
        except (MissingGlyphError, OSError):
            continue
        return face
    raise SealFontError(f"没有可用的中文字体: no CJK font is installed; install {_FONT_PACKAGES}")


def _glyph(font: ImageFont.FreeTypeFont, char: str) -> Image.Image:
    """The character's rendering ("L" mode), cropped to its ink; an empty image if it has none."""
    left, top, right, bottom = font.getbbox(char)
    canvas = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(canvas).text((-left, -top), char, font=font, fill=255)
    ink = canvas.getbbox()
    return canvas.crop(ink) if ink else Image.new("L", (0, 0))


def check_glyphs(text: str, face: FontFace | None = None) -> None:
    """Raise MissingGlyphError unless the face draws every character of text.

    A character the font lacks renders as the .notdef glyph (a box in most fonts, nothing in some),
    so a character is missing when its rendering is empty or identical to .notdef's."""
    face = face or find_cjk_font()
    font = face.font(_PROBE_PX)
    notdef = _glyph(font, _NOT_A_CHARACTER)
    missing = []
    for char in dict.fromkeys(text):
        drawn = _glyph(font, char)
        if drawn.getbbox() is None or (drawn.size == notdef.size and drawn.tobytes() == notdef.tobytes()):
            missing.append(char)
    if missing:
        raise MissingGlyphError(missing, face)


def _clean(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if any(char.isspace() for char in text):
        raise ValueError(f"{what} must not contain blanks: {text!r}")
    return text


# ---------------------------------------------------------------------------------------------
# Drawing helpers (on a supersampled "L" mask; 255 is seal red)


def _pixels(mm: float, dpi: int) -> int:
    return max(1, round(mm * dpi / MM_PER_INCH))


def _stamp(mask: Image.Image, piece: Image.Image, centre: tuple[float, float]) -> None:
    """Draw piece onto mask centred at centre, keeping what is already drawn (max, not overwrite)."""
    x = round(centre[0] - piece.width / 2)
    y = round(centre[1] - piece.height / 2)
    box = (x, y, x + piece.width, y + piece.height)
    mask.paste(ImageChops.lighter(mask.crop(box), piece), box)


def _scaled(glyph: Image.Image, sx: float, sy: float) -> Image.Image:
    size = (max(1, round(glyph.width * sx)), max(1, round(glyph.height * sy)))
    return glyph.resize(size, Image.Resampling.LANCZOS) if glyph.width and glyph.height else glyph


def _bolden(glyph: Image.Image, px: float) -> Image.Image:
    """Widen every stroke by about px on each side (grown outwards, so the result is larger).

    A Gaussian blur of standard deviation px puts the 16 % level of an edge's profile px outside the
    edge; ramping that level up to full ink dilates the shape while keeping its edge smooth, and
    costs one blur, where a max filter of that size would be far slower."""
    if px < 1 or not glyph.width:
        return glyph
    blurred = ImageOps.expand(glyph, border=math.ceil(3 * px)).filter(ImageFilter.GaussianBlur(px))
    return blurred.point(lambda v: max(0, min(255, (v - 20) * 255 // 40)))


def _star(draw: ImageDraw.ImageDraw, centre: tuple[float, float], radius: float) -> None:
    """A solid regular five-pointed star, one point straight up."""
    # Inner vertices of a regular star sit at sin 18° / sin 126° of the outer radius.
    inner = radius * math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else inner
        angle = math.radians(i * 36)  # clockwise from the top
        points.append((centre[0] + r * math.sin(angle), centre[1] - r * math.cos(angle)))
    draw.polygon(points, fill=255)


def _png(mask: Image.Image, dpi: int) -> bytes:
    """Colour a finished (final-size) mask seal red and encode it as a PNG that knows its DPI."""
    image = Image.new("RGBA", mask.size, (*SEAL_RED, 0))
    image.putalpha(mask)
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# The official seal


@dataclass(frozen=True)
class ArcLayout:
    """Where the name goes: character centres at `angles` (degrees clockwise from the top) on the
    circle of radius `radius_mm`, each `height_mm` tall and `aspect` × that wide."""

    angles: tuple[float, ...]
    radius_mm: float
    height_mm: float
    aspect: float


def arc_layout(count: int, *, diameter_mm: float = 42, bottom_text: bool = False) -> ArcLayout:
    """Lay out `count` characters along the upper arc of an official seal."""
    scale = diameter_mm / _REFERENCE_DIAMETER_MM
    top = diameter_mm / 2 - (_RING_MM + _TEXT_GAP_MM) * scale  # radius of the characters' tops
    max_span = _MAX_SPAN_WITH_BOTTOM_DEG if bottom_text else _MAX_SPAN_DEG
    step = min(_MAX_STEP_DEG, max_span / (count - 1)) if count > 1 else _MAX_STEP_DEG
    # Neighbours are closest at their inner edge, so that is where the gap is kept: the room for a
    # character of height h is (top - h) · step · (1 - gap). Square characters as tall as that room
    # allows, within the normal and the largest height; past that they narrow.
    room = math.radians(step) * (1 - _CHAR_GAP)

    def pitch(h: float) -> float:
        return (top - h) * room

    height = min(_TEXT_MAX_HEIGHT_MM, max(_TEXT_HEIGHT_MM, top * room / (1 + room) / scale)) * scale
    aspect = min(1.0, pitch(height) / height)
    if aspect < _MIN_ASPECT:  # very long names: shorter characters rather than slivers
        while pitch(height) / height < _MIN_ASPECT:
            height *= 0.97
        aspect = _MIN_ASPECT
    angles = tuple(-step * (count - 1) / 2 + i * step for i in range(count))
    return ArcLayout(angles=angles, radius_mm=top - height / 2, height_mm=height, aspect=aspect)


# Rendering is deterministic, so finished PNGs are memoised: the demo school, and every test that
# seeds it, render the same few seals again and again (about 0.1 s each).
@lru_cache(maxsize=64)
def official_seal(
    name: str, *, bottom_text: str = "", diameter_mm: float = 42, dpi: int = 600, font: FontFace | None = None
) -> bytes:
    """The round official seal: rim, `name` along the upper arc (each character turned to face
    outwards, readable from outside the seal), a solid star in the centre, and an optional
    horizontal purpose line such as 合同专用章 below it. Transparent PNG, diameter_mm across."""
    name = _clean(name, "seal name")
    bottom_text = _clean(bottom_text, "bottom text") if bottom_text.strip() else ""
    face = font or find_cjk_font()
    check_glyphs(name + bottom_text, face)

    size = _pixels(diameter_mm, dpi) * SUPERSAMPLE
    unit = size / diameter_mm  # supersampled pixels per millimetre
    scale = diameter_mm / _REFERENCE_DIAMETER_MM
    centre = (size / 2, size / 2)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)

    rim = _RING_MM * scale * unit
    draw.ellipse((0, 0, size - 1, size - 1), fill=255)
    draw.ellipse((rim, rim, size - 1 - rim, size - 1 - rim), fill=0)
    _star(draw, centre, _STAR_RADIUS_MM * scale * unit)

    layout = arc_layout(len(name), diameter_mm=diameter_mm, bottom_text=bool(bottom_text))
    bolden = _OFFICIAL_BOLDEN_MM * scale * unit * layout.aspect  # narrowed characters, lighter strokes
    font_px = layout.height_mm * unit
    radius = layout.radius_mm * unit
    for char, angle in zip(name, layout.angles, strict=True):
        glyph = _bolden(_scaled(_glyph(face.font(font_px), char), layout.aspect, 1.0), bolden)
        # Image.rotate turns counter-clockwise; a character right of the top leans clockwise.
        turned = glyph.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True)
        theta = math.radians(angle)
        _stamp(mask, turned, (centre[0] + radius * math.sin(theta), centre[1] - radius * math.cos(theta)))

    if bottom_text:
        _purpose_line(mask, bottom_text, face, unit * scale, centre)
    return _png(mask.reduce(SUPERSAMPLE), dpi)


def _purpose_line(mask: Image.Image, text: str, face: FontFace, unit: float, centre: tuple[float, float]) -> None:
    """The horizontal line under the star; `unit` is pixels per millimetre of a 42 mm seal."""
    height = _BOTTOM_HEIGHT_MM * unit
    gap = 0.15 * height
    aspect = _BOTTOM_ASPECT
    count = len(text)
    width = count * height * aspect + (count - 1) * gap
    if width > _BOTTOM_MAX_WIDTH_MM * unit:  # long lines narrow their characters to fit
        aspect *= (_BOTTOM_MAX_WIDTH_MM * unit - (count - 1) * gap) / (count * height * aspect)
        width = _BOTTOM_MAX_WIDTH_MM * unit
    pitch = height * aspect + gap
    y = centre[1] + _BOTTOM_CENTRE_MM * unit
    for i, char in enumerate(text):
        x = centre[0] - width / 2 + height * aspect / 2 + i * pitch
        glyph = _scaled(_glyph(face.font(height), char), aspect, 1.0)
        _stamp(mask, _bolden(glyph, _OFFICIAL_BOLDEN_MM * unit * aspect), (x, y))


# ---------------------------------------------------------------------------------------------
# The personal name seal


def name_columns(name: str) -> list[str]:
    """How a name is set in a square seal: columns from right to left, each read top to bottom, as
    traditional seals are read. 2 characters: side by side (surname on the right), each stretched
    tall; 3: the surname alone in the right column, the given name stacked on the left; 4: a 2×2
    grid (a compound surname such as 欧阳 fills the right column); 5–9: three rows, the right column
    taking the shortfall. 1 character fills the square. Only the name is carved: no 之印 or 印
    is added, so the seal shows exactly the name the signer verified."""
    count = len(name)
    if count <= 2:
        return list(name)
    rows = 2 if count <= 4 else 3
    columns = -(-count // rows)
    first = count - rows * (columns - 1)  # the right column holds what does not fill a whole one
    return [name[:first]] + [name[first + i * rows : first + (i + 1) * rows] for i in range(columns - 1)]


@lru_cache(maxsize=64)
def personal_seal(name: str, *, size_mm: float = 20, dpi: int = 600, font: FontFace | None = None) -> bytes:
    """The square personal name seal (个人名章): a red square rim with slightly rounded corners and the
    name laid out as name_columns describes, each character stretched to fill its cell as seal
    carvers do. Transparent PNG, size_mm square."""
    name = _clean(name, "name")
    if len(name) > _PERSONAL_MAX_CHARS:
        raise ValueError(f"a name seal holds at most {_PERSONAL_MAX_CHARS} characters: {name}")
    face = font or find_cjk_font()
    check_glyphs(name, face)

    size = _pixels(size_mm, dpi) * SUPERSAMPLE
    border = _PERSONAL_BORDER * size
    corner = _PERSONAL_CORNER * size
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    # The rounded outer corner also keeps the image's corner pixels transparent.
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=corner, fill=255)
    draw.rounded_rectangle((border, border, size - 1 - border, size - 1 - border), radius=corner - border, fill=0)

    inset = border + _PERSONAL_PADDING * size
    inner = size - 2 * inset
    gutter = _PERSONAL_GUTTER * size
    columns = name_columns(name)
    column_width = (inner - (len(columns) - 1) * gutter) / len(columns)
    for c, column in enumerate(columns):
        right = size - inset - c * (column_width + gutter)
        cell_height = (inner - (len(column) - 1) * gutter) / len(column)
        em = max(column_width, cell_height)  # render at the larger side, then squeeze the other
        for r, char in enumerate(column):
            glyph = _scaled(_glyph(face.font(em), char), column_width / em, cell_height / em)
            glyph = _bolden(glyph, _PERSONAL_BOLDEN * size)
            _stamp(mask, glyph, (right - column_width / 2, inset + r * (cell_height + gutter) + cell_height / 2))
    return _png(mask.reduce(SUPERSAMPLE), dpi)


# ---------------------------------------------------------------------------------------------
# Physical size


def physical_size_mm(png: bytes) -> tuple[float, float]:
    """The printed width and height of a PNG from its pixel size and recorded DPI."""
    with Image.open(io.BytesIO(png)) as image:
        dpi = image.info.get("dpi")
        if not dpi:
            raise ValueError("the image records no DPI, so it has no physical size")
        return image.width / dpi[0] * MM_PER_INCH, image.height / dpi[1] * MM_PER_INCH


def fit_to_box(png: bytes, width_mm: float, height_mm: float, *, dpi: int = 600) -> bytes:
    """Give a seal image from elsewhere (a scanned stamp, an uploaded signature) the convention of the
    generated ones: cropped to what is drawn, scaled without distortion to touch the sides of a
    width_mm × height_mm box, centred on a transparent canvas of exactly that size, DPI recorded."""
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGBA")
    drawn = image.getchannel("A").getbbox()
    if drawn is None:
        raise ValueError("the image is fully transparent")
    # Scaled with premultiplied alpha, so transparent pixels' colour cannot bleed into the edges.
    image = image.crop(drawn).convert("RGBa")
    box = (_pixels(width_mm, dpi), _pixels(height_mm, dpi))
    factor = min(box[0] / image.width, box[1] / image.height)
    image = image.resize(
        (max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.Resampling.LANCZOS
    ).convert("RGBA")
    canvas = Image.new("RGBA", box, (0, 0, 0, 0))
    canvas.paste(image, ((box[0] - image.width) // 2, (box[1] - image.height) // 2))
    out = io.BytesIO()
    canvas.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()
