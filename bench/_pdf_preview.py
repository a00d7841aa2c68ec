"""Page previews against pdfium's bare render of the same page, in the same run.

    .venv/bin/python bench/pdf_preview.py

Target (DESIGN.md §7): render + encode within 3× of pdfium rendering the page alone. The page is
tracemonkey.pdf page 1 (a text page, 612 × 792 pt) from the shared corpus, at 72 dpi (612 px wide)
and at 1000 px. "bare" loads the page from an open document, renders it and closes it; "ours" is
`render_page` on a document from `open_document` (forms initialised, JPEG encoded). PNG at its
default level and WebP at its fastest method are printed for comparison: they are why previews
are JPEG. Then the signing board's page as the portal serves it, first (rendered and stored) and
cached (from storage). Last, the cost of inspecting an upload in the worker process rather than
in-process.
"""

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2 as pdfium

from portal.pdf import _inspect_worker
from portal.pdf.inspect import inspect
from portal.pdf.render import open_document, render_page

PAGE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf" / "tracemonkey.pdf"
TARGET = 3.0
SECONDS = 2.0


def interleaved(functions: dict, seconds: float = SECONDS, batch: int = 10) -> dict:
    """Median seconds per call of each function, timed in alternating batches so that a machine
    busy with something else slows all of them alike."""
    for fn in functions.values():
        fn()
    samples = {name: [] for name in functions}
    start = time.perf_counter()
    while time.perf_counter() - start < seconds * len(functions):
        for name, fn in functions.items():
            t = time.perf_counter()
            for _ in range(batch):
                fn()
            samples[name].append((time.perf_counter() - t) / batch)
    return {name: statistics.median(times) for name, times in samples.items()}


def row(name: str, ours: float, base: float, target: float | None = None):
    ratio = ours / base
    goal = f"target ≤ {target}×  {'ok' if ratio <= target else 'MISSED'}" if target else "(for comparison)"
    print(f"{name:<58} {ours * 1000:8.2f} ms   bare {base * 1000:6.2f} ms   ratio {ratio:5.2f}×  {goal}")


def previews(data: bytes, width: int):
    scale = width / 612
    bare_document = pdfium.PdfDocument(data)

    def bare():
        page = bare_document[0]
        page.render(scale=scale).close()
        page.close()

    def bare_from_bytes():
        document = pdfium.PdfDocument(data)
        page = document[0]
        page.render(scale=scale).close()
        page.close()
        document.close()

    def encoded(fmt, **options):
        def run():
            page = bare_document[0]
            bitmap = page.render(scale=scale, rev_byteorder=True)
            bitmap.to_pil().save(io.BytesIO(), fmt, **options)
            bitmap.close()
            page.close()

        return run

    with open_document(data) as document:
        times = interleaved(
            {
                "bare": bare,
                "ours": lambda: render_page(document, 0, width),
                "bare_from_bytes": bare_from_bytes,
                "ours_from_bytes": lambda: render_page(data, 0, width),
                "png": encoded("PNG"),
                "webp": encoded("WEBP", quality=80, method=0),
            }
        )
    bare_document.close()
    print(f"tracemonkey.pdf page 1 at {width} px")
    row("  render_page, JPEG q80 (open document)", times["ours"], times["bare"], TARGET)
    row("  render_page, JPEG q80 (from bytes: vs bare open+render)", times["ours_from_bytes"], times["bare_from_bytes"])
    row("  render + PNG, default level", times["png"], times["bare"])
    row("  render + WebP q80, method 0", times["webp"], times["bare"])


def inspection(data: bytes):
    inspect(data)  # start the worker: its one-off start is not what a call costs
    times = interleaved({"worker": lambda: inspect(data), "in_process": lambda: _inspect_worker.describe(data, 1000)})
    overhead = times["worker"] - times["in_process"]
    print("inspect(), tracemonkey.pdf (1 MB, 14 pages)")
    print(
        f"  {'in the worker process vs in-process':<54} {times['worker'] * 1000:8.2f} ms   "
        f"in-process {times['in_process'] * 1000:6.2f} ms   overhead {overhead * 1000:5.2f} ms per file"
    )


def board_page(data: bytes):
    """The signing board's page image as the portal serves it (portal/signing/previews.py): the
    first request renders and stores it, later ones load it from storage."""
    import tempfile

    from portal import create_app, storage
    from portal.config import TestConfig
    from portal.db import database
    from portal.schema import MODELS
    from portal.signing import previews as board_previews
    from portal.signing.models import PagePreview

    with tempfile.TemporaryDirectory() as var, create_app(TestConfig(Path(var))).app_context():
        database.connect(reuse_if_open=True)
        database.create_tables(MODELS)
        key = storage.save(data, "application/pdf").key
        bare_document = pdfium.PdfDocument(data)
        scale = board_previews.PAGE / 612

        def bare():
            page = bare_document[0]
            page.render(scale=scale).close()
            page.close()

        def first_time():
            PagePreview.delete().execute()
            board_previews.page_preview(key, 1, board_previews.PAGE)

        times = interleaved(
            {
                "bare": bare,
                "first": first_time,
                "cached": lambda: board_previews.page_preview(key, 1, board_previews.PAGE),
            }
        )
        row("board page, first request (render, JPEG, store) vs bare", times["first"], times["bare"])
        row("board page, cached (database row + blob from storage) vs bare", times["cached"], times["bare"])


def main():
    if not PAGE.is_file():
        sys.exit(f"needs the shared corpus: {PAGE} is missing")
    data = PAGE.read_bytes()
    for width in (612, 1000):
        previews(data, width)
    board_page(data)
    inspection(data)


if __name__ == "__main__":
    main()
