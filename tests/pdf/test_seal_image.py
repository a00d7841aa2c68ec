"""Seal images: transparent PNGs of the printed size, all in seal red, every character really drawn
(never a .notdef box), the name evenly along the arc, the star, the purpose line, the name seal's
grid. PNGs of sample seals are saved to test-artifacts/seals/ for a look."""

import colorsys
import io
import math
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from portal.pdf import seal_image
from portal.pdf.seal_image import (
    SEAL_RED,
    FontFace,
    MissingGlyphError,
    SealFontError,
    arc_layout,
    check_glyphs,
    name_columns,
    official_seal,
    personal_seal,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "seals"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Names the demo school's seals and the samples below carry.
REAL_TEXT = "示范大学信息工程学院文学与传媒学院教务处财务处校长办公室合同专用章财务专用章张伟陈志远欧阳明月"
# A CJK Extension B character (U+20000) that WenQuanYi Zen Hei does not have.
RARE = "\U00020000"


def image(png: bytes) -> Image.Image:
    opened = Image.open(io.BytesIO(png))
    assert opened.format == "PNG"
    return opened


def alpha(png: bytes) -> Image.Image:
    return image(png).getchannel("A")


def px_per_mm(dpi: int = 600) -> float:
    return dpi / 25.4


def at(mask: Image.Image, x: float, y: float) -> int:
    return mask.getpixel((round(x), round(y)))


def polar(mask: Image.Image, angle_deg: float, radius_px: float) -> int:
    """Alpha at angle degrees clockwise from the top, radius from the centre."""
    c = mask.width / 2
    theta = math.radians(angle_deg)
    return at(mask, c + radius_px * math.sin(theta), c - radius_px * math.cos(theta))


@pytest.fixture
def dejavu() -> FontFace:
    if not DEJAVU.exists():
        pytest.skip("DejaVu Sans (a font without CJK) is not installed")
    return FontFace(str(DEJAVU))


# ---------------------------------------------------------------------------------------------
# Size, transparency, colour


@pytest.mark.parametrize(
    ("png", "mm", "dpi"),
    [
        (lambda: official_seal("示范大学"), 42, 600),
        (lambda: official_seal("示范大学", bottom_text="合同专用章", diameter_mm=40, dpi=300), 40, 300),
        (lambda: personal_seal("张伟"), 20, 600),
        (lambda: personal_seal("陈志远", size_mm=18, dpi=300), 18, 300),
    ],
    ids=["official", "contract-40mm-300dpi", "personal", "personal-18mm-300dpi"],
)
def test_a_seal_is_a_transparent_png_of_its_printed_size(png, mm, dpi):
    png = png()
    img = image(png)
    assert img.mode == "RGBA"
    side = round(mm / 25.4 * dpi)
    assert img.size == (side, side)
    assert img.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
    assert seal_image.physical_size_mm(png) == pytest.approx((mm, mm), abs=0.05)
    a = img.getchannel("A")
    for corner in ((0, 0), (side - 1, 0), (0, side - 1), (side - 1, side - 1)):
        assert a.getpixel(corner) == 0, corner
    # The drawing reaches all four sides: the image's box is the seal's outline.
    assert a.getbbox() == (0, 0, side, side)


def test_every_drawn_pixel_is_seal_red():
    hue, saturation, value = colorsys.rgb_to_hsv(*(c / 255 for c in SEAL_RED))
    assert (hue * 360 < 10 or hue * 360 > 350) and saturation > 0.9 and value > 0.85
    for png in (official_seal("示范大学", bottom_text="合同专用章"), personal_seal("欧阳明月")):
        img = image(png)
        colours = {rgba[:3] for _, rgba in img.getcolors(1 << 16) if rgba[3]}
        assert colours == {SEAL_RED}
        histogram = img.getchannel("A").histogram()
        assert histogram[255] > 0.05 * img.width * img.height  # solid ink, not only antialiased edges


# ---------------------------------------------------------------------------------------------
# Glyphs: drawn for real, never tofu


def test_each_character_of_the_real_names_is_a_glyph_not_the_notdef_box():
    face = seal_image.find_cjk_font()
    font = ImageFont.truetype(face.path, 48, index=face.index, layout_engine=ImageFont.Layout.BASIC)

    def bitmap(char):
        mask = font.getmask(char)  # FreeType's own bitmap, not the module's rendering path
        return mask.size, bytes(mask)

    notdef = bitmap("\U0010ffff")
    for char in dict.fromkeys(REAL_TEXT):
        drawn = bitmap(char)
        assert drawn != notdef, f"{char} renders as .notdef"
        assert any(drawn[1]), f"{char} renders blank"
    check_glyphs(REAL_TEXT, face)


def test_the_checker_catches_a_font_without_cjk(dejavu):
    with pytest.raises(MissingGlyphError) as error:
        check_glyphs("示范大学", dejavu)
    assert error.value.chars == list("示范大学")
    assert "fonts-noto-cjk" in str(error.value)
    check_glyphs("Seal", dejavu)  # what DejaVu has passes
    with pytest.raises(MissingGlyphError):
        official_seal("示范大学", font=dejavu)
    with pytest.raises(MissingGlyphError):
        personal_seal("张伟", font=dejavu)


def test_a_character_missing_from_the_cjk_font_raises_instead_of_drawing_a_box():
    with pytest.raises(MissingGlyphError) as error:
        personal_seal("张" + RARE)
    assert error.value.chars == [RARE] and "U+20000" in str(error.value)
    with pytest.raises(MissingGlyphError):
        official_seal("示范大学", bottom_text="合同" + RARE)


def test_no_cjk_font_is_a_clear_error_naming_the_packages(monkeypatch, dejavu):
    monkeypatch.setattr(seal_image, "_fontconfig_faces", lambda: [((0,), dejavu)])
    monkeypatch.setattr(seal_image, "_KNOWN_FONT_FILES", (str(DEJAVU), "/nonexistent/font.ttc"))
    seal_image.find_cjk_font.cache_clear()
    try:
        with pytest.raises(SealFontError, match="fonts-noto-cjk or fonts-wqy-zenhei"):
            seal_image.find_cjk_font()
    finally:
        seal_image.find_cjk_font.cache_clear()


def test_without_fontconfig_the_well_known_font_files_are_tried(monkeypatch):
    expected = seal_image.find_cjk_font()
    if expected.path not in seal_image._KNOWN_FONT_FILES:
        pytest.skip(f"the installed CJK font {expected.path} is not one of the well-known files")
    monkeypatch.setattr(seal_image, "_fontconfig_faces", list)
    seal_image.find_cjk_font.cache_clear()
    try:
        assert seal_image.find_cjk_font() == expected
    finally:
        seal_image.find_cjk_font.cache_clear()


def test_the_chosen_font_is_the_installed_cjk_face_fontconfig_lists():
    face = seal_image.find_cjk_font()
    assert Path(face.path).exists()
    assert "Sharp" not in face.family  # WenQuanYi's bitmap face is never picked
    check_glyphs("示范大学合同专用章", face)


@pytest.mark.parametrize("text", ["", "   ", "示范 大学"])
def test_blank_text_is_refused(text):
    with pytest.raises(ValueError):
        official_seal(text)
    with pytest.raises(ValueError):
        personal_seal(text)


# ---------------------------------------------------------------------------------------------
# The official seal's layout


def test_the_star_fills_the_centre():
    a = alpha(official_seal("示范大学"))
    unit = px_per_mm()
    c = a.width / 2
    assert at(a, c, c) == 255
    for tip in range(5):  # just inside each of the five points
        assert polar(a, tip * 72, 6.0 * unit) == 255, tip
    for notch in range(5):  # between two points, outside the star's inner pentagon
        assert polar(a, 36 + notch * 72, 5.0 * unit) == 0, notch


def test_the_rim_is_a_closed_ring():
    a = alpha(official_seal("示范大学"))
    r = a.width / 2
    for angle in range(0, 360, 5):
        assert polar(a, angle, r - 0.6 * px_per_mm()) == 255, angle  # the middle of the 1.2 mm rim
    for angle in range(150, 215, 5):  # inside the rim at the bottom, where no text runs
        assert polar(a, angle, r - 1.6 * px_per_mm()) == 0, angle


@pytest.mark.parametrize("name", ["示范大学", "示范大学教务处", "示范大学文学与传媒学院"])
def test_the_name_is_spread_evenly_along_the_upper_arc(name):
    a = alpha(official_seal(name))
    layout = arc_layout(len(name))
    unit = px_per_mm()
    radius, half = layout.radius_mm * unit, layout.height_mm * unit / 2
    steps = {round(b - a_, 6) for a_, b in zip(layout.angles, layout.angles[1:], strict=False)}
    assert len(steps) == 1  # evenly spaced
    assert layout.angles[0] == pytest.approx(-layout.angles[-1])  # symmetric about the top

    def ink(angles, r_from, r_to):
        return max(polar(a, t, r) for t in angles for r in range(round(r_from), round(r_to)))

    for angle in layout.angles:  # a character at each place
        assert ink([angle + d / 2 for d in range(-6, 7)], radius - half, radius + half) > 128, angle
    for left, right in zip(layout.angles, layout.angles[1:], strict=False):  # a gap between neighbours
        middle = (left + right) / 2
        assert ink([middle - 0.5, middle, middle + 0.5], radius - half, radius + half) < 32, middle
    # Nothing in the band below the text's ends.
    last = layout.angles[-1] + (layout.angles[-1] - layout.angles[-2]) / 2
    assert ink(range(round(last) + 8, 360 - round(last) - 8), radius - half, radius + half) == 0


def test_the_text_band_clears_the_rim_and_the_star():
    layout = arc_layout(11)
    rim_inner = 21 - 1.2
    assert layout.radius_mm + layout.height_mm / 2 < rim_inner - 0.5
    assert layout.radius_mm - layout.height_mm / 2 > 7.0 + 3  # star tips at 7 mm
    assert max(layout.angles) <= 120 and layout.aspect < 1  # 11 characters: narrowed to fit 240°
    short = arc_layout(4)
    assert short.aspect == 1 and short.angles[-1] - short.angles[-2] == 50
    assert arc_layout(11, bottom_text=True).angles[-1] <= 110  # stops higher over a purpose line


def test_the_purpose_line_appears_under_the_star_only_when_given():
    unit = px_per_mm()

    def line_region(png):
        a = alpha(png)
        c = a.width / 2
        return a.crop((round(c - 9.5 * unit), round(c + 8.5 * unit), round(c + 9.5 * unit), round(c + 14 * unit)))

    with_line = line_region(official_seal("示范大学", bottom_text="合同专用章"))
    assert with_line.getbbox() is not None
    assert with_line.histogram()[255] > 0.1 * with_line.width * with_line.height
    assert line_region(official_seal("示范大学")).getbbox() is None
    assert official_seal("示范大学", bottom_text="   ") == official_seal("示范大学")


# ---------------------------------------------------------------------------------------------
# The personal name seal


def test_names_are_set_in_columns_read_right_to_left():
    assert name_columns("张") == ["张"]
    assert name_columns("张伟") == ["张", "伟"]  # side by side, surname on the right
    assert name_columns("陈志远") == ["陈", "志远"]  # surname alone, given name stacked
    assert name_columns("欧阳明月") == ["欧阳", "明月"]
    assert name_columns("阿依古丽") == ["阿依", "古丽"]
    assert name_columns("司马相如之") == ["司马", "相如之"]
    assert name_columns("买买提艾力江") == ["买买提", "艾力江"]
    with pytest.raises(ValueError):
        personal_seal("一二三四五六七八九十")


def _ink(mask: Image.Image, box) -> int:
    return sum(mask.crop(tuple(round(v) for v in box)).histogram()[129:])


def test_a_two_character_name_stands_side_by_side():
    a = alpha(personal_seal("张伟"))
    s = a.width
    inner = (0.09 * s, 0.91 * s)
    right, left = (s / 2 + 8, inner[0], inner[1], inner[1]), (inner[0], inner[0], s / 2 - 8, inner[1])
    assert _ink(a, right) > 0.1 * (right[2] - right[0]) * (right[3] - right[1])
    assert _ink(a, left) > 0.1 * (left[2] - left[0]) * (left[3] - left[1])
    assert _ink(a, (s / 2 - 2, inner[0], s / 2 + 2, inner[1])) == 0  # the gutter between the columns
    assert a.getpixel((s // 2, 3)) == 255 and a.getpixel((3, s // 2)) == 255  # the red rim


def test_a_three_character_name_keeps_the_surname_alone_on_the_right():
    a = alpha(personal_seal("陈志远"))
    s = a.width
    inner = (0.09 * s, 0.91 * s)
    assert _ink(a, (s / 2 - 2, inner[0], s / 2 + 2, inner[1])) == 0  # two columns
    assert _ink(a, (inner[0], s / 2 - 2, s / 2 - 8, s / 2 + 2)) == 0  # the left column splits in two
    assert _ink(a, (s / 2 + 8, s / 2 - 2, inner[1], s / 2 + 2)) > 0  # the surname runs through the middle


def test_a_four_character_name_is_a_two_by_two_grid():
    a = alpha(personal_seal("欧阳明月"))
    s = a.width
    inner = (0.09 * s, 0.91 * s)
    assert _ink(a, (s / 2 - 2, inner[0], s / 2 + 2, inner[1])) == 0
    assert _ink(a, (inner[0], s / 2 - 2, inner[1], s / 2 + 2)) == 0
    for x in (0.3 * s, 0.7 * s):
        for y in (0.3 * s, 0.7 * s):
            assert _ink(a, (x - 0.15 * s, y - 0.15 * s, x + 0.15 * s, y + 0.15 * s)) > 0.05 * (0.3 * s) ** 2


# ---------------------------------------------------------------------------------------------
# Images from elsewhere


def test_fit_to_box_crops_scales_and_centres_with_the_dpi_recorded():
    source = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    source.paste(Image.new("RGBA", (200, 50), (*SEAL_RED, 255)), (150, 200))
    out = io.BytesIO()
    source.save(out, "PNG")
    fitted = seal_image.fit_to_box(out.getvalue(), 30, 30, dpi=300)
    img = image(fitted)
    side = round(30 / 25.4 * 300)
    assert img.size == (side, side) and seal_image.physical_size_mm(fitted) == pytest.approx((30, 30), abs=0.05)
    left, top, right, bottom = img.getchannel("A").getbbox()
    assert (left, right) == (0, side)  # the wide drawing touches both sides
    assert abs(top - (side - bottom)) <= 1  # and is centred vertically
    blank = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(blank, "PNG")
    with pytest.raises(ValueError, match="transparent"):
        seal_image.fit_to_box(blank.getvalue(), 10, 10)


# ---------------------------------------------------------------------------------------------
# A look at them


def test_sample_seals_are_saved_for_a_look():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    samples = {
        "official-示范大学.png": official_seal("示范大学"),
        "contract-示范大学合同专用章.png": official_seal("示范大学", bottom_text="合同专用章"),
        "college-示范大学文学与传媒学院.png": official_seal("示范大学文学与传媒学院"),
        "department-示范大学教务处.png": official_seal("示范大学教务处"),
        "finance-示范大学财务专用章.png": official_seal("示范大学", bottom_text="财务专用章"),
        "personal-2-张伟.png": personal_seal("张伟"),
        "personal-3-陈志远.png": personal_seal("陈志远"),
        "personal-4-欧阳明月.png": personal_seal("欧阳明月"),
    }
    for name, png in samples.items():
        (ARTIFACTS / name).write_bytes(png)
        assert image(png).size[0] > 0
