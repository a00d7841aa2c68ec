"""Inspecting uploads: what an accepted PDF reports, and why a refused one is refused (in Chinese).

Corpus files are read in place from ../shared/corpus/pdf; the tests that need them skip when it
is absent. Files the corpus lacks (no pages, a parser-stalling page tree) are built here.
"""

import os
import signal
import time

import pypdfium2 as pdfium
import pytest
from helpers import build_pdf, corpus_pdf, needs_pdf_corpus

from portal.pdf import inspect as inspect_module
from portal.pdf.errors import PdfRefused
from portal.pdf.inspect import inspect


def refusal(data: bytes, **limits) -> PdfRefused:
    with pytest.raises(PdfRefused) as caught:
        inspect(data, **limits)
    return caught.value


@needs_pdf_corpus
def test_a_text_pdf_reports_its_pages_sizes_and_version():
    info = inspect(corpus_pdf("tracemonkey.pdf"))
    assert info.page_count == len(info.pages) == 14
    first = info.pages[0]
    assert (first.width, first.height, first.rotation) == (612, 792, 0)
    assert first.crop_box == first.media_box == (0, 0, 612, 792)
    assert (first.display_width, first.display_height) == (612, 792)
    assert info.version == "1.4"
    assert not info.is_signed
    assert info.repaired is None


@needs_pdf_corpus
@pytest.mark.parametrize(
    ("name", "rotation"), [("hello_world_rotated.pdf", 90), ("issue14415.pdf", 180), ("pr20043.pdf", 270)]
)
def test_a_rotated_page_reports_its_rotation_and_the_size_it_is_displayed_at(name, rotation):
    page = inspect(corpus_pdf(name)).pages[0]
    assert page.rotation == rotation
    if rotation == 180:
        assert (page.display_width, page.display_height) == (page.width, page.height)
    else:
        assert (page.display_width, page.display_height) == (page.height, page.width)


@needs_pdf_corpus
def test_a_cropped_page_reports_its_crop_box_as_the_visible_size():
    page = inspect(corpus_pdf("bug1669097.pdf")).pages[0]
    x0, y0, x1, y1 = page.crop_box
    assert page.media_box == (0, 0, 612, 792)
    assert (x0, y0, x1, y1) == pytest.approx((97.6266, 607.744, 467.874, 748.975))
    assert (page.width, page.height) == pytest.approx((x1 - x0, y1 - y0))


@needs_pdf_corpus
@pytest.mark.parametrize(
    "name", ["hello_world_rotated.pdf", "pr20043.pdf", "bug1669097.pdf", "issue7872.pdf", "boundingBox_invalid.pdf"]
)
def test_reported_page_sizes_are_the_sizes_pdfium_displays(name):
    """Our geometry feeds seal placement on pdfium's previews, so the two must agree (odd boxes included)."""
    data = corpus_pdf(name)
    try:
        info = inspect(data)
    except PdfRefused as refused:  # a file with a page of no visible area is refused; pdfium agrees
        assert refused.reason == "damaged"
        document = pdfium.PdfDocument(data)
        assert any(0 in document.get_page_size(i) for i in range(len(document)))
        document.close()
        return
    document = pdfium.PdfDocument(info.repaired or data)
    for index, page in enumerate(info.pages):
        assert document.get_page_size(index) == pytest.approx((page.display_width, page.display_height), abs=0.01)
    document.close()


@needs_pdf_corpus
def test_a_signed_pdf_is_reported_as_signed():
    assert inspect(corpus_pdf("signed_verified.pdf")).is_signed


@needs_pdf_corpus
@pytest.mark.parametrize("name", ["issue3371.pdf", "print_protection.pdf", "empty_protected.pdf", "issue7665.pdf"])
def test_an_encrypted_pdf_is_refused_with_加密_in_the_message(name):
    """Files with an open password and files with only a permissions password alike (print_protection.pdf
    opens without a password in a viewer); issue7665.pdf is also too broken for pyHanko to read."""
    refused = refusal(corpus_pdf(name))
    assert refused.reason == "encrypted"
    assert "加密" in refused.message_zh


def test_a_file_that_is_not_a_pdf_is_refused_with_不是_PDF_in_the_message():
    refused = refusal(b"PK\x03\x04 this is a zip, not a PDF" + b"\0" * 2000)
    assert refused.reason == "not_pdf"
    assert "不是 PDF" in refused.message_zh


@needs_pdf_corpus
@pytest.mark.parametrize("name", ["bug1020226.pdf", "REDHAT-1531897-0.pdf", "poppler-85140-0.pdf"])
def test_a_damaged_pdf_is_refused_with_损坏_in_the_message(name):
    refused = refusal(corpus_pdf(name))
    assert refused.reason == "damaged"
    assert "损坏" in refused.message_zh
    assert refused.detail  # the technical cause, for the log


@needs_pdf_corpus
def test_a_page_tree_with_a_cycle_is_refused_as_damaged_not_looped_over():
    refused = refusal(corpus_pdf("Pages-tree-refs.pdf"))
    assert refused.reason == "damaged"


@needs_pdf_corpus
def test_a_repairable_pdf_is_accepted_with_the_repaired_bytes_to_store():
    """comments.pdf has a truncated compressed stream pyHanko cannot read; qpdf's rewrite opens everywhere."""
    info = inspect(corpus_pdf("comments.pdf"))
    assert info.repaired is not None and info.repaired.startswith(b"%PDF-")
    again = inspect(info.repaired)
    assert again.repaired is None
    assert again.page_count == info.page_count == 14


@needs_pdf_corpus
def test_a_signed_pdf_that_needs_repair_is_refused_because_repair_would_break_its_signature():
    broken = corpus_pdf("signed_verified.pdf").replace(b"startxref", b"startxreX")
    refused = refusal(broken)
    assert refused.reason == "damaged"
    assert "签名" in refused.message_zh


def test_a_pdf_without_pages_is_refused():
    empty = build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    refused = refusal(empty)
    assert refused.reason == "no_pages"
    assert "没有任何页面" in refused.message_zh


@needs_pdf_corpus
def test_a_pdf_over_the_page_limit_is_refused_with_the_limit_in_the_message():
    refused = refusal(corpus_pdf("tracemonkey.pdf"), max_pages=10)
    assert refused.reason == "too_many_pages"
    assert "10 页" in refused.message_zh


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    refused = refusal(b"%PDF-1.7\n" + b"0" * 3 * 1048576, max_bytes=2 * 1048576)
    assert refused.reason == "too_large"
    assert "2 MB" in refused.message_zh


def page_tree_with_kids(count: int) -> bytes:
    """A page tree listing one page `count` times: pyHanko's pure-Python parser needs ~5 µs per
    entry just to read the array (10 s for two million here), before any check can run."""
    kids = b" ".join([b"3 0 R"] * count)
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ]
    )


def test_parsing_that_runs_past_the_time_limit_is_stopped_and_refused():
    start = time.monotonic()
    refused = refusal(page_tree_with_kids(2_000_000), timeout=0.5)
    assert refused.reason == "timeout"
    assert "超时" in refused.message_zh
    assert time.monotonic() - start < 5  # stopped at the limit, not parsed to the end
    # The stalled worker is gone; the next file gets a fresh one.
    assert inspect(build_pdf_with_one_page()).page_count == 1


def build_pdf_with_one_page() -> bytes:
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )


FAKE_WORKER = """
import os, signal, struct, sys
sys.stdout.buffer.write(struct.pack(">Q", 15) + b'{"ready": true}')
sys.stdout.buffer.flush()
sys.stdin.buffer.read(8)
os.kill(os.getpid(), signal.SIGSEGV)  # what pdfium or qpdf crashing on a file looks like
"""


def test_a_parser_crash_is_refused_as_damaged_not_raised(tmp_path, monkeypatch):
    script = tmp_path / "crashing_worker.py"
    script.write_text(FAKE_WORKER)
    inspect_module._close_workers()  # make sure the next call starts the crashing one
    monkeypatch.setattr(inspect_module, "WORKER_SCRIPT", script)
    try:
        refused = refusal(build_pdf_with_one_page())
    finally:
        inspect_module._close_workers()
    assert refused.reason == "damaged"
    assert str(-signal.SIGSEGV) in refused.detail


@needs_pdf_corpus
def test_a_certified_pdf_is_refused_because_a_seal_would_break_its_certification():
    """(Every corpus file's outcome is tested in test_corpus.py.)"""
    refused = refusal(corpus_pdf("xfa_filled_imm1344e.pdf"))
    assert refused.reason == "certified" and "认证签名" in refused.message_zh


def test_worker_processes_are_not_shared_with_a_forked_child():
    """RQ forks a work-horse per job: the child must start its own worker, not talk over the parent's pipes."""
    inspect(build_pdf_with_one_page())  # the parent now holds an idle worker
    pid = os.fork()
    if pid == 0:
        try:
            ok = inspect(build_pdf_with_one_page()).page_count == 1
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inspect(build_pdf_with_one_page()).page_count == 1  # and the parent's worker still answers
