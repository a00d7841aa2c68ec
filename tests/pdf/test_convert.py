"""Word to PDF with LibreOffice: a .docx and a .doc convert to PDFs that pass inspect(); bad input is refused.

Conversions take about a second each, so only one .docx and one .doc are converted. Without
LibreOffice those tests skip (and fail under CI=true); the checks made before LibreOffice runs
(type by content) do not need it.
"""

import io
import time
import zipfile
from pathlib import Path

import pytest
from helpers import service_unavailable

from portal.pdf import convert
from portal.pdf.convert import converter_available, word_to_pdf
from portal.pdf.errors import PdfRefused
from portal.pdf.inspect import inspect

WORD = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "word"
needs_corpus = pytest.mark.skipif(not WORD.is_dir(), reason=f"the shared Word corpus is not at {WORD}")


@pytest.fixture
def soffice():
    if not converter_available():
        service_unavailable("LibreOffice", "soffice is not on PATH")


def refusal(data: bytes, filename: str, **options) -> PdfRefused:
    with pytest.raises(PdfRefused) as caught:
        word_to_pdf(data, filename, **options)
    return caught.value


@needs_corpus
def test_a_docx_converts_to_a_pdf_that_passes_inspect(soffice):
    pdf = word_to_pdf((WORD / "tbl-having-tables.docx").read_bytes(), "表格.docx")
    info = inspect(pdf)
    assert info.page_count == 1
    assert info.repaired is None


@needs_corpus
def test_a_legacy_doc_converts_to_a_pdf_that_passes_inspect(soffice):
    pdf = word_to_pdf((WORD / "textract-raw_text.doc").read_bytes(), "raw_text.doc")
    info = inspect(pdf)
    assert info.page_count == 3
    assert info.repaired is None


def docx_with(document_xml: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", document_xml)
    return out.getvalue()


def test_a_damaged_docx_is_refused_with_损坏_in_the_message(soffice):
    refused = refusal(docx_with("this is not <xml"), "坏文件.docx")
    assert refused.reason == "word_damaged"
    assert "损坏" in refused.message_zh
    assert "坏文件.docx" in refused.detail


@needs_corpus
def test_a_truncated_docx_is_refused_without_starting_libreoffice():
    data = (WORD / "test.docx").read_bytes()
    refused = refusal(data[: len(data) // 2], "test.docx")
    assert refused.reason == "word_damaged"


def test_a_file_that_is_not_word_is_refused_whatever_its_name():
    refused = refusal(b"%PDF-1.7\n...", "looks-like.docx")
    assert refused.reason == "not_word"
    assert "不是 Word" in refused.message_zh


def test_an_excel_workbook_renamed_to_docx_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert refusal(out.getvalue(), "renamed.docx").reason == "not_word"


def test_a_password_protected_office_file_is_refused_with_密码_in_the_message():
    # An encrypted .docx is an OLE2 compound file whose directory names an EncryptedPackage stream.
    ole2 = convert.OLE2_MAGIC + b"\0" * 504 + "EncryptedPackage".encode("utf-16-le") + b"\0" * 512
    refused = refusal(ole2, "secret.docx")
    assert refused.reason == "encrypted"
    assert "密码" in refused.message_zh


@needs_corpus
def test_without_libreoffice_conversion_is_refused_with_a_clear_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no soffice, no libreoffice
    assert not converter_available()
    refused = refusal((WORD / "test.docx").read_bytes(), "test.docx")
    assert refused.reason == "converter_missing"
    assert "LibreOffice" in refused.message_zh


@needs_corpus
def test_a_conversion_past_the_time_limit_is_stopped_with_all_its_processes(soffice, monkeypatch):
    started = []
    popen = convert.subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(convert.subprocess, "Popen", recording_popen)
    start = time.monotonic()
    refused = refusal((WORD / "test.docx").read_bytes(), "test.docx", timeout=0.2)
    assert refused.reason == "conversion_timeout"
    assert "超时" in refused.message_zh
    assert time.monotonic() - start < 5
    (process,) = [p for p in started if "soffice" in " ".join(map(str, p.args))]
    assert living_members(process.pid) == []  # nothing of the group (launcher, soffice.bin) survives


def living_members(group: int) -> list[int]:
    """Processes of a process group that are still running. Killed members that were orphaned stay
    zombies until init reaps them, which a container's init may never do, so they don't count."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to list a process group")
    living = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses, so split after the last ")"
        state, _, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            living.append(int(entry.name))
    return living
