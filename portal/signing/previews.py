"""Page previews of the signing board and of signed files, rendered once and served from storage.

A preview is keyed by the PDF blob it shows (blobs are content-addressed, so a key always means
the same bytes), the page and the width. Only a few widths are offered — a thumbnail and the board
page — so the cache stays small and a client cannot make the server render arbitrary sizes.
Two requests racing for the same page both render; the unique index keeps one row, and the
loser's identical blob is already stored under the same key.
"""

from peewee import IntegrityError

from portal import storage
from portal.db import database
from portal.pdf import render
from portal.signing.models import PagePreview

THUMBNAIL = 160
PAGE = 1000
WIDTHS = (THUMBNAIL, PAGE)


def page_preview(pdf_blob: str, page: int, width: int) -> tuple[bytes, str]:
    """(JPEG bytes, media type) of `page` (1-based) of the PDF stored as `pdf_blob`."""
    if width not in WIDTHS:
        raise ValueError(f"preview width {width} is not one of {WIDTHS}")
    cached = PagePreview.get_or_none(
        (PagePreview.pdf_blob == pdf_blob) & (PagePreview.page == page) & (PagePreview.width == width)
    )
    if cached is not None:
        return storage.load(cached.image_blob), render.MEDIA_TYPE
    image = render.render_page(storage.load(pdf_blob), page - 1, width)
    blob = storage.save(image.data, image.media_type)
    try:
        with database.atomic():
            PagePreview.create(pdf_blob=pdf_blob, page=page, width=width, image_blob=blob.key)
    except IntegrityError:
        pass  # a concurrent request cached the same page first
    return image.data, image.media_type
