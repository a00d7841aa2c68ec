"""Placement geometry without PDFs: page ranges, visible-page to user-space mapping under every
rotation and crop box, multi-page expansion and riding-seam slicing. What the slices look like
once drawn is checked by rendering in test_sign.py."""

import io
import itertools
import math
import random

import pytest
from PIL import Image

from portal.pdf.placement import (
    MIN_SLICE,
    MM,
    Impression,
    Kind,
    PageBox,
    Placement,
    PlacementError,
    SealImage,
    impressions,
    pages_of,
    parse_page_range,
    riding_groups,
)


def png(width=60, height=40) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (220, 0, 0, 255)).save(out, "PNG")
    return out.getvalue()


SEAL = SealImage.from_png("seal", png())
A4 = PageBox.from_boxes((0, 0, 595, 842))


def to_visible(box: PageBox, x: float, y: float) -> tuple[float, float]:
    """Where a user-space point shows on the displayed page: the crop box turned clockwise by
    /Rotate, origin at its new lower-left corner. Written independently of placement.py."""
    cx0, cy0, cx1, cy1 = box.crop
    # Turn clockwise by 90° steps about the crop box's lower-left corner, then shift back into
    # the positive quadrant: the same thing a viewer does, one quarter turn at a time.
    px, py, w, h = x - cx0, y - cy0, cx1 - cx0, cy1 - cy0
    for _ in range(box.rotate // 90):
        px, py = py, w - px  # (x, y) → (y, -x), then + w on the new y axis
        w, h = h, w
    return px, py


# ---------------------------------------------------------------------------------------------
# Page ranges


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("all", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("ALL", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("全部", [1, 2, 3, 4, 5, 6, 7, 8]),
        ("1-3,7", [1, 2, 3, 7]),
        (" 7 , 1-3 ", [1, 2, 3, 7]),
        ("3,1,2-3,3", [1, 2, 3]),
        ("1－3，7", [1, 2, 3, 7]),  # full-width dash and comma
        ("2-2", [2]),
        ("8", [8]),
        (5, [5]),
    ],
)
def test_page_ranges(spec, expected):
    assert parse_page_range(spec, 8) == expected


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "为空"),
        ("  ", "为空"),
        ("0", "超出范围"),
        ("9", "共 8 页"),
        ("1-9", "超出范围"),
        ("3-1", "起止颠倒"),
        ("a", "无法识别"),
        ("1-", "无法识别"),
        ("1--3", "无法识别"),
        ("1,,3", "无法识别"),
        ("-1", "无法识别"),
        ("1.5", "无法识别"),
    ],
)
def test_bad_page_ranges_are_refused_in_chinese(spec, words):
    with pytest.raises(PlacementError, match=words):
        parse_page_range(spec, 8)


def test_page_range_needs_pages():
    with pytest.raises(PlacementError, match="没有页面"):
        parse_page_range("all", 0)


# ---------------------------------------------------------------------------------------------
# Seals and placements


def test_seal_image_reads_its_natural_size():
    seal = SealImage.from_png("k", png(123, 77))
    assert (seal.width_px, seal.height_px) == (123, 77)


def test_seal_image_must_be_png():
    jpeg = io.BytesIO()
    Image.new("RGB", (10, 10), "red").save(jpeg, "JPEG")
    for data in (jpeg.getvalue(), b"not an image"):
        with pytest.raises(PlacementError, match="PNG"):
            SealImage.from_png("k", data)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"kind": "stamp"}, "未知的盖章方式"),
        ({"width": 0}, "大于 0"),
        ({"height": -5}, "大于 0"),
        ({"x": math.nan}, "有效数字"),
        ({"y": math.inf}, "有效数字"),
        ({"edge": "top"}, "左侧或右侧"),
        ({"rule": "every-third"}, "连续"),
        ({"min_slice": 0}, "最小切片"),
    ],
)
def test_invalid_placements_are_refused(kwargs, words):
    values = {"kind": "single", "seal": SEAL, "pages": 1, "x": 10, "y": 10, "width": 50, "height": 50, **kwargs}
    with pytest.raises(PlacementError, match=words):
        Placement(**values)


def test_placement_fields_become_enums():
    placement = Placement("riding", SEAL, "all", 0, 10, 50, 50, rule="alternate", edge="left")
    assert placement.kind is Kind.RIDING and placement.rule == "alternate" and placement.edge == "left"


def test_single_placement_takes_one_page():
    assert pages_of(Placement.single(SEAL, 3, 0, 0, 10, 10), 5) == [3]
    with pytest.raises(PlacementError, match="只能盖在一页"):
        pages_of(Placement.single(SEAL, "1-2", 0, 0, 10, 10), 5)  # type: ignore[arg-type]
    with pytest.raises(PlacementError, match="超出范围"):
        pages_of(Placement.single(SEAL, 6, 0, 0, 10, 10), 5)


# ---------------------------------------------------------------------------------------------
# Page boxes and rotation


def test_page_box_from_raw_boxes():
    box = PageBox.from_boxes((0, 0, 600, 800), (700, 900, 50, 100), 90)  # crop corners swapped, beyond media
    assert box.crop == (50, 100, 600, 800)
    assert box.rotate == 90
    assert box.visible_size == (700, 550)


@pytest.mark.parametrize("raw, rotate", [(0, 0), (90, 90), (-90, 270), (450, 90), (180.0, 180), (45, 0), (-270, 90)])
def test_rotate_is_normalised_like_pdfium(raw, rotate):
    assert PageBox.from_boxes((0, 0, 10, 10), None, raw).rotate == rotate


def test_crop_box_outside_the_media_box_is_ignored():
    assert PageBox.from_boxes((0, 0, 100, 100), (200, 200, 300, 300)).crop == (0, 0, 100, 100)


def test_degenerate_media_box_is_refused():
    with pytest.raises(PlacementError, match="页面尺寸"):
        PageBox.from_boxes((0, 0, 0, 100))


BOXES = [
    PageBox.from_boxes(media, crop, rotate)
    for media, crop, rotate in itertools.product(
        [(0, 0, 595, 842), (-100, 50, 512, 700)], [None, (30, 80, 400, 600)], [0, 90, 180, 270]
    )
]


@pytest.mark.parametrize("box", BOXES, ids=lambda b: f"crop{b.crop}-rot{b.rotate}")
def test_user_rect_shows_where_it_was_placed(box):
    """Each corner of the user-space rectangle, shown by a viewer, lands on a corner of the
    rectangle given in visible-page coordinates."""
    rng = random.Random(4)
    page_w, page_h = box.visible_size
    for _ in range(20):
        w, h = rng.uniform(1, page_w / 2), rng.uniform(1, page_h / 2)
        x, y = rng.uniform(0, page_w - w), rng.uniform(0, page_h - h)
        x0, y0, x1, y1 = box.to_user_rect(x, y, w, h)
        assert x0 < x1 and y0 < y1
        shown = [to_visible(box, ux, uy) for ux in (x0, x1) for uy in (y0, y1)]
        xs, ys = sorted(p[0] for p in shown), sorted(p[1] for p in shown)
        assert xs[0] == pytest.approx(x) and xs[-1] == pytest.approx(x + w)
        assert ys[0] == pytest.approx(y) and ys[-1] == pytest.approx(y + h)


@pytest.mark.parametrize("box", BOXES, ids=lambda b: f"crop{b.crop}-rot{b.rotate}")
def test_appearance_matrix_shows_the_seal_upright(box):
    """Upright seal coordinates (u, v), through the impression's matrix into /Rect and then
    through the viewer's rotation, land at (x + u, y + v) on the visible page: no turn, no mirror."""
    (impression,) = impressions([Placement.single(SEAL, 1, 40, 60, 90, 30)], [box])
    a, b, c, d, e, f = impression.matrix
    x0, y0, _, _ = impression.rect
    for u, v in [(0, 0), (90, 0), (0, 30), (90, 30), (45, 10)]:
        user = (x0 + a * u + c * v + e, y0 + b * u + d * v + f)
        assert to_visible(box, *user) == pytest.approx((40 + u, 60 + v))


# ---------------------------------------------------------------------------------------------
# Expansion


def test_single_and_multi_page_impressions():
    pages = [A4, PageBox.from_boxes((0, 0, 842, 595)), A4, A4, A4, A4, A4, A4]
    result = impressions(
        [Placement.single(SEAL, 2, 10, 20, 30, 40), Placement.multi_page(SEAL, "1-3,7", 100, 200, 50, 60)], pages
    )
    assert [i.page for i in result] == [2, 1, 2, 3, 7]
    assert result[0].rect == (10, 20, 40, 60) and result[0].fraction == (0.0, 1.0)
    assert all(i.visible_rect == (100, 200, 50, 60) and i.rect == (100, 200, 150, 260) for i in result[1:])


def test_a_seal_off_the_page_is_refused():
    with pytest.raises(PlacementError, match="第 1 页.*超出了页面范围"):
        impressions([Placement.single(SEAL, 1, 560, 10, 50, 50)], [A4])
    # Landscape page 2 is lower than the portrait placement reaches.
    pages = [A4, PageBox.from_boxes((0, 0, 842, 595))]
    with pytest.raises(PlacementError, match="第 2 页"):
        impressions([Placement.multi_page(SEAL, "all", 10, 600, 50, 50)], pages)
    # Half a point of floating-point slack is tolerated.
    impressions([Placement.single(SEAL, 1, 545.3, -0.3, 50, 50)], [A4])


@pytest.mark.parametrize(
    "pages, width, expected",
    [
        (1, 42 * MM, [1]),
        (10, 42 * MM, [10]),
        (14, 42 * MM, [14]),  # exactly 3 mm slices: still one seal
        (15, 42 * MM, [8, 7]),
        (40, 42 * MM, [14, 13, 13]),
        (100, 42 * MM, [13, 13, 13, 13, 12, 12, 12, 12]),
        (5, 2 * MM, [1, 1, 1, 1, 1]),  # a seal narrower than a slice: whole seal on every page
    ],
)
def test_riding_groups(pages, width, expected):
    groups = riding_groups(pages, width)
    assert groups == expected
    assert sum(groups) == pages
    assert all(width / size >= MIN_SLICE - 1e-9 or size == 1 for size in groups)


def _slices_cover_the_seal(group: list[Impression]):
    fractions = sorted(i.fraction for i in group)
    assert fractions[0][0] == 0 and fractions[-1][1] == pytest.approx(1)
    for (_, end), (start, _) in itertools.pairwise(fractions):
        assert start == pytest.approx(end)  # no gap, no overlap


@pytest.mark.parametrize("edge", ["left", "right"])
def test_riding_slices_sit_at_the_edge_in_fanned_order(edge):
    result = impressions([Placement.riding(SEAL, "2-5", 300, 120, 120, edge=edge)], [A4] * 6)
    assert [i.page for i in result] == [2, 3, 4, 5]
    _slices_cover_the_seal(result)
    for i, impression in enumerate(result):
        x, y, w, h = impression.visible_rect
        assert (y, w, h) == (300, 30, 120)
        assert x == (595 - 30 if edge == "right" else 0)
        part = i if edge == "right" else 3 - i
        assert impression.fraction == (part / 4, (part + 1) / 4)


def test_riding_alternate_uses_every_other_page():
    result = impressions([Placement.riding(SEAL, "all", 300, 120, 120, rule="alternate")], [A4] * 7)
    assert [i.page for i in result] == [1, 3, 5, 7]
    _slices_cover_the_seal(result)


def test_long_riding_range_restarts_in_groups():
    result = impressions([Placement.riding(SEAL, "all", 300, 42 * MM, 42 * MM)], [A4] * 40)
    assert [i.page for i in result] == list(range(1, 41))
    groups = [result[:14], result[14:27], result[27:]]
    for group in groups:
        _slices_cover_the_seal(group)
        widths = [i.visible_rect[2] for i in group]
        assert widths == pytest.approx([42 * MM / len(group)] * len(group))
        assert min(widths) >= MIN_SLICE - 1e-9
    assert groups[0][0].fraction == (0, 1 / 14) and groups[1][0].fraction == (0, 1 / 13)


def test_riding_on_rotated_and_cropped_pages_follows_the_visible_edge():
    pages = [PageBox.from_boxes((0, 0, 595, 842), (20, 30, 580, 800), rotate) for rotate in (0, 90, 180, 270)]
    result = impressions([Placement.riding(SEAL, "all", 100, 80, 60)], pages)
    for box, impression in zip(pages, result, strict=True):
        page_w, _ = box.visible_size
        assert impression.visible_rect == (page_w - 20, 100, 20, 60)
        x0, y0, x1, y1 = impression.rect
        corners = [to_visible(box, ux, uy) for ux in (x0, x1) for uy in (y0, y1)]
        assert max(c[0] for c in corners) == pytest.approx(page_w)  # flush with the visible right edge
        assert impression.rotate == box.rotate


def test_riding_slice_must_fit_vertically():
    with pytest.raises(PlacementError, match="超出了页面范围"):
        impressions([Placement.riding(SEAL, "all", 800, 80, 60)], [A4, A4])
