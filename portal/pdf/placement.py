"""Where seals go: page ranges, placements and their expansion into one impression per page.

Pure geometry, no PDF parsing: `sign.py` reads the pages' boxes and turns impressions into widget
annotations.

Coordinates. A `Placement` is given the way the person saw the page on the signing board: in PDF
points, origin at the bottom-left corner of the *visible* page, i.e. the crop box (clipped to the
media box) after the page's /Rotate has been applied. An `Impression` carries the same rectangle in
*unrotated page space* (the page's PDF user space, where annotation /Rect values live), plus the
page rotation its appearance must undo so the seal shows upright where it was dropped.

Kinds of placement:

- single: one seal on one page.
- multi_page: the same seal, same position, on every page of a range ("all", "1-3,7").
- riding (骑缝章): the seal is cut into vertical slices, one per page of the range (rule
  "continuous") or of every other page of the range (rule "alternate": the 1st, 3rd, 5th… page
  of the range), each slice flush against the left or right edge of its visible page at the
  given height. A slice is never narrower than `min_slice` (3 mm by default): when the range has
  more pages than the seal allows, it is split into consecutive groups of nearly equal size and
  each group carries a whole seal.

Riding-seam convention (how the slices add up to the seal). Stack the printed pages in reading
order, the first page on top, and fan them toward the stamped edge so that each lower page sticks
out one slice width beyond the page above it — the way a seam seal is applied and checked in
practice. Then the strips that show, from left to right, form the seal:

- right edge: the first page of a group shows the leftmost slice, the last page the rightmost;
- left edge: the first page shows the rightmost slice, the last page the leftmost.

So on the right edge page i of a group of n shows the fraction [i/n, (i+1)/n] of the seal's width,
and on the left edge the fraction [(n-1-i)/n, (n-i)/n] (fractions as seen on the upright seal).
"""

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from PIL import Image, UnidentifiedImageError

MM = 72 / 25.4  # points per millimetre
MIN_SLICE = 3 * MM  # narrowest riding-seam slice, 3 mm ≈ 8.5 pt
# Rounding slack when checking that a rectangle lies on the page: the signing board works in
# floating point, and half a point is far below what anyone can see.
_TOLERANCE = 0.5


class PlacementError(ValueError):
    """A placement or page range that cannot be honoured; the message is for the person (Chinese)."""


class Kind(StrEnum):
    SINGLE = "single"
    MULTI_PAGE = "multi_page"
    RIDING = "riding"


class Rule(StrEnum):
    CONTINUOUS = "continuous"
    ALTERNATE = "alternate"


class Edge(StrEnum):
    LEFT = "left"
    RIGHT = "right"


# ---------------------------------------------------------------------------------------------
# Page ranges

_RANGE_PART = re.compile(r"(\d+)(?:-(\d+))?")
# Separators people type on Chinese keyboards, mapped to the ASCII ones.
_NORMALISE = str.maketrans({"，": ",", "、": ",", "；": ",", ";": ",", "－": "-", "–": "-", "—": "-", "~": "-"})


def parse_page_range(spec: str | int, page_count: int) -> list[int]:
    """The 1-based page numbers a range names, ascending and each once.

    `spec` is "all" (or 全部), a page number, or comma-separated numbers and inclusive ranges
    ("1-3,7"). Full-width commas and dashes are accepted. Raises PlacementError for anything
    empty, malformed, reversed or past the last page.
    """
    if page_count < 1:
        raise PlacementError("文件没有页面，无法盖章")
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    if not isinstance(spec, str):
        raise PlacementError("页码范围必须是文字，例如“1-3,7”或“all”")
    text = re.sub(r"\s+", "", spec.translate(_NORMALISE))
    if not text:
        raise PlacementError("页码范围为空")
    if text.lower() in ("all", "全部"):
        return list(range(1, page_count + 1))

    pages: set[int] = set()
    for part in text.split(","):
        match = _RANGE_PART.fullmatch(part)
        if match is None:
            raise PlacementError(f"页码范围“{spec}”无法识别：“{part}”不是页码或页码区间")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if first > last:
            raise PlacementError(f"页码区间“{part}”起止颠倒，应写作“{last}-{first}”")
        for number in (first, last):
            if not 1 <= number <= page_count:
                raise PlacementError(f"页码 {number} 超出范围：文件共 {page_count} 页")
        pages.update(range(first, last + 1))
    return sorted(pages)


# ---------------------------------------------------------------------------------------------
# Seals, pages, placements


@dataclass(frozen=True)
class SealImage:
    """A seal picture: a PNG (normally RGBA, transparent around the seal) and its pixel size.

    `key` identifies the image within one signing act (e.g. the seal's id or blob key): every
    impression of the same key reuses one image XObject in the revision.
    """

    key: str
    png: bytes = field(repr=False)
    width_px: int
    height_px: int

    @classmethod
    def from_png(cls, key: str, png: bytes) -> "SealImage":
        """Read the natural size from the PNG header; refuse anything that is not a PNG."""
        try:
            with Image.open(io.BytesIO(png)) as image:
                if image.format != "PNG":
                    raise PlacementError("印章图片必须是 PNG 格式")
                width, height = image.size
        except (UnidentifiedImageError, OSError):
            raise PlacementError("印章图片无法读取，必须是 PNG 格式") from None
        return cls(key=key, png=bytes(png), width_px=width, height_px=height)


@dataclass(frozen=True)
class PageBox:
    """What placement needs to know about a page: its visible box in user space and rotation.

    crop: (x0, y0, x1, y1) of the crop box clipped to the media box, normalised so x0 < x1 and
    y0 < y1. rotate: the effective /Rotate, one of 0, 90, 180, 270 (clockwise, as displayed).
    """

    crop: tuple[float, float, float, float]
    rotate: int = 0

    @classmethod
    def from_boxes(
        cls, media_box: Sequence[float], crop_box: Sequence[float] | None = None, rotate: int | float = 0
    ) -> "PageBox":
        """From raw /MediaBox, /CropBox and /Rotate values (inherited ones resolved by the caller).

        Like pdfium, a /Rotate that is not a multiple of 90 is rounded toward zero to one, and
        a crop box that does not overlap the media box is ignored.
        """
        media = _normalised(media_box)
        if media[0] >= media[2] or media[1] >= media[3]:
            raise PlacementError("页面尺寸无效，无法盖章")
        crop = media
        if crop_box is not None:
            x0, y0, x1, y1 = _normalised(crop_box)
            clipped = (max(x0, media[0]), max(y0, media[1]), min(x1, media[2]), min(y1, media[3]))
            if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
                crop = clipped
        quarter_turns = int(rotate / 90) % 4  # int() truncates toward zero, as pdfium does
        return cls(crop=crop, rotate=quarter_turns * 90)

    @property
    def visible_size(self) -> tuple[float, float]:
        """(width, height) of the page as displayed."""
        x0, y0, x1, y1 = self.crop
        width, height = x1 - x0, y1 - y0
        return (height, width) if self.rotate in (90, 270) else (width, height)

    def to_user_rect(self, x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
        """A rectangle in visible-page coordinates as (x0, y0, x1, y1) in unrotated user space.

        The display turns the crop box clockwise by /Rotate and puts its new bottom-left corner at
        the origin; this undoes that. With W, H the unrotated crop box size and (dx, dy) offsets
        from its lower-left corner: 90° shows (dx, dy) at (dy, W - dx), 180° at (W - dx, H - dy),
        270° at (H - dy, dx).
        """
        cx0, cy0, cx1, cy1 = self.crop
        crop_w, crop_h = cx1 - cx0, cy1 - cy0
        if self.rotate == 0:
            dx, dy, w, h = x, y, width, height
        elif self.rotate == 90:
            dx, dy, w, h = crop_w - y - height, x, height, width
        elif self.rotate == 180:
            dx, dy, w, h = crop_w - x - width, crop_h - y - height, width, height
        else:  # 270
            dx, dy, w, h = y, crop_h - x - width, height, width
        return (cx0 + dx, cy0 + dy, cx0 + dx + w, cy0 + dy + h)


def _normalised(box: Sequence[float]) -> tuple[float, float, float, float]:
    if len(box) != 4:
        raise PlacementError("页面尺寸无效，无法盖章")
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


@dataclass(frozen=True)
class Placement:
    """One seal placed by one person, as stored in the database (DESIGN.md §3).

    pages: the page number (1-based) for a single seal; a range spec ("all", "1-3,7") for
    multi_page and riding. x, y, width, height: points in visible-page coordinates (see the module
    docstring); width and height are the whole seal's size. For riding, x is not used (the slices
    sit flush against `edge`), y is the bottom of the seal, and `rule`, `edge` and `min_slice`
    apply.
    """

    kind: Kind | str
    seal: SealImage
    pages: int | str
    x: float
    y: float
    width: float
    height: float
    rule: Rule | str = Rule.CONTINUOUS
    edge: Edge | str = Edge.RIGHT
    min_slice: float = MIN_SLICE

    def __post_init__(self):
        try:
            object.__setattr__(self, "kind", Kind(self.kind))
        except ValueError:
            raise PlacementError(f"未知的盖章方式“{self.kind}”：只能是单页章、多页章或骑缝章") from None
        try:
            object.__setattr__(self, "rule", Rule(self.rule))
        except ValueError:
            raise PlacementError("骑缝章规则只能是连续（continuous）或隔页（alternate）") from None
        try:
            object.__setattr__(self, "edge", Edge(self.edge))
        except ValueError:
            raise PlacementError("骑缝章只能盖在页面左侧或右侧边缘") from None
        numbers = (self.x, self.y, self.width, self.height, self.min_slice)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
            raise PlacementError("印章位置和尺寸必须是有效数字")
        if self.width <= 0 or self.height <= 0:
            raise PlacementError("印章的宽度和高度必须大于 0")
        if self.min_slice <= 0:
            raise PlacementError("骑缝章最小切片宽度必须大于 0")

    @classmethod
    def single(cls, seal: SealImage, page: int, x: float, y: float, width: float, height: float) -> "Placement":
        return cls(Kind.SINGLE, seal, page, x, y, width, height)

    @classmethod
    def multi_page(cls, seal: SealImage, pages: str, x: float, y: float, width: float, height: float) -> "Placement":
        return cls(Kind.MULTI_PAGE, seal, pages, x, y, width, height)

    @classmethod
    def riding(
        cls,
        seal: SealImage,
        pages: str,
        y: float,
        width: float,
        height: float,
        *,
        edge: Edge | str = Edge.RIGHT,
        rule: Rule | str = Rule.CONTINUOUS,
        min_slice: float = MIN_SLICE,
    ) -> "Placement":
        return cls(Kind.RIDING, seal, pages, 0.0, y, width, height, rule=rule, edge=edge, min_slice=min_slice)


@dataclass(frozen=True)
class Impression:
    """One seal (or one slice of a riding seam) on one page: what becomes one widget annotation.

    page: 1-based. rect: (x0, y0, x1, y1) in unrotated user space, the widget's /Rect.
    visible_rect: (x, y, width, height) of the same area in visible-page coordinates.
    rotate: the page rotation the appearance undoes. fraction: which horizontal part of the
    upright seal shows, (0.0, 1.0) for a whole seal.
    """

    seal: SealImage
    page: int
    rect: tuple[float, float, float, float]
    visible_rect: tuple[float, float, float, float]
    rotate: int = 0
    fraction: tuple[float, float] = (0.0, 1.0)

    @property
    def matrix(self) -> tuple[float, float, float, float, float, float]:
        """The `cm` taking upright coordinates (u, v) in [0, w] × [0, h] (w, h the visible size)
        to coordinates within /Rect measured from its lower-left corner: a counter-clockwise turn
        by `rotate`, so that the page's clockwise display turn shows the seal upright."""
        _, _, w, h = self.visible_rect
        return {
            0: (1, 0, 0, 1, 0, 0),
            90: (0, 1, -1, 0, h, 0),
            180: (-1, 0, 0, -1, w, h),
            270: (0, -1, 1, 0, 0, w),
        }[self.rotate]


# ---------------------------------------------------------------------------------------------
# Expansion


def pages_of(placement: Placement, page_count: int) -> list[int]:
    """The pages a placement draws on (for riding with rule alternate, every other page)."""
    if placement.kind is Kind.SINGLE:
        if isinstance(placement.pages, bool) or not isinstance(placement.pages, int | str):
            raise PlacementError("单页章必须指定一个页码")
        pages = parse_page_range(placement.pages, page_count)
        if len(pages) != 1:
            raise PlacementError("单页章只能盖在一页上；多页请用多页章")
        return pages
    pages = parse_page_range(placement.pages, page_count)
    if placement.kind is Kind.RIDING and placement.rule is Rule.ALTERNATE:
        pages = pages[::2]
    return pages


def riding_groups(page_count: int, width: float, min_slice: float = MIN_SLICE) -> list[int]:
    """Sizes of the consecutive page groups a riding seam over `page_count` pages splits into.

    One group if every slice (width / pages) is at least `min_slice`; otherwise as few groups as
    keep each slice that wide, their sizes differing by at most one (larger groups first), so no
    group ends with a sliver of pages carrying a seal that is nearly whole.
    """
    if page_count < 1:
        return []
    # The epsilon keeps 42 mm / 3 mm at 14 slices despite the float conversion to points.
    per_group = max(1, math.floor(width / min_slice + 1e-9))
    group_count = math.ceil(page_count / per_group)
    base, extra = divmod(page_count, group_count)
    return [base + 1] * extra + [base] * (group_count - extra)


def impressions(placements: Sequence[Placement], pages: Sequence[PageBox]) -> list[Impression]:
    """Expand placements into impressions, in placement order, then page order.

    `pages[i]` is the box of page i + 1, and len(pages) is the page count (sign.py passes a lazy
    sequence that reads only the pages asked for). Raises PlacementError when a range is invalid
    or a seal would not fit on its page.
    """
    page_count = len(pages)
    result: list[Impression] = []
    for placement in placements:
        numbers = pages_of(placement, page_count)
        if placement.kind is Kind.RIDING:
            result += _riding(placement, numbers, pages)
        else:
            for number in numbers:
                box = pages[number - 1]
                rect = (placement.x, placement.y, placement.width, placement.height)
                result.append(_impression(placement.seal, number, box, rect))
    return result


def _riding(placement: Placement, numbers: list[int], pages: Sequence[PageBox]) -> list[Impression]:
    result = []
    start = 0
    for size in riding_groups(len(numbers), placement.width, placement.min_slice):
        slice_width = placement.width / size
        for i, number in enumerate(numbers[start : start + size]):
            box = pages[number - 1]
            page_width, _ = box.visible_size
            if placement.edge is Edge.RIGHT:
                x, part = page_width - slice_width, i
            else:
                x, part = 0.0, size - 1 - i
            fraction = (part / size, (part + 1) / size)
            rect = (x, placement.y, slice_width, placement.height)
            result.append(_impression(placement.seal, number, box, rect, fraction))
        start += size
    return result


def _impression(
    seal: SealImage,
    page: int,
    box: PageBox,
    visible_rect: tuple[float, float, float, float],
    fraction: tuple[float, float] = (0.0, 1.0),
) -> Impression:
    x, y, width, height = visible_rect
    page_width, page_height = box.visible_size
    fits = (
        x >= -_TOLERANCE
        and y >= -_TOLERANCE
        and x + width <= page_width + _TOLERANCE
        and y + height <= page_height + _TOLERANCE
    )
    if not fits:
        raise PlacementError(f"第 {page} 页上的印章超出了页面范围，请把印章放在页面内")
    return Impression(
        seal=seal,
        page=page,
        rect=box.to_user_rect(x, y, width, height),
        visible_rect=visible_rect,
        rotate=box.rotate,
        fraction=fraction,
    )
