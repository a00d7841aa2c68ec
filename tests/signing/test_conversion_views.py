"""A Word upload on the signing board: while it converts, the board shows progress and asks again;
when the conversion is done the answer reloads the board, which then shows the pages; a failed
conversion says why."""

import pytest
from helpers import SHARED_CORPUS, login

from portal.pdf.convert import converter_available
from portal.signing import documents, single
from portal.signing.models import ConversionState, Document

WORD = SHARED_CORPUS / "word"
pytestmark = [
    pytest.mark.both_databases,
    pytest.mark.skipif(not WORD.is_dir(), reason=f"the shared Word corpus is not at {WORD}"),
]

HX = {"HX-Request": "true"}


@pytest.fixture
def pending_word(person, phone, monkeypatch, client):
    """张伟's task with a .docx whose conversion job has not run yet (jobs run inline in tests,
    so the enqueue is held back)."""
    monkeypatch.setattr(single, "enqueue_conversion", lambda document: None)
    task = single.start_task(person, [("表格.docx", (WORD / "tbl-having-tables.docx").read_bytes())])
    login(client, "zhangwei")
    return task, single.task_documents(task)[0]


def test_the_board_shows_a_conversion_in_progress_and_asks_again(client, pending_word):
    task, document = pending_word
    page = client.get(f"/single/{task.public_id}").get_data(as_text=True)
    assert "《表格.docx》正在转换为 PDF" in page
    assert f'hx-get="/single/{task.public_id}/documents/{document.public_id}/conversion"' in page
    assert 'class="page-frame"' not in page
    partial = client.get(f"/single/{task.public_id}/documents/{document.public_id}/conversion", headers=HX)
    assert "正在转换" in partial.get_data(as_text=True) and "HX-Refresh" not in partial.headers


@pytest.mark.skipif(not converter_available(), reason="LibreOffice is not installed")
def test_a_finished_conversion_reloads_the_board_which_shows_the_pages(client, pending_word):
    task, document = pending_word
    assert documents.convert_document(document.id) == ConversionState.DONE
    partial = client.get(f"/single/{task.public_id}/documents/{document.public_id}/conversion", headers=HX)
    assert partial.headers["HX-Refresh"] == "true"
    page = client.get(f"/single/{task.public_id}").get_data(as_text=True)
    pages = Document.get_by_id(document.id).page_count
    assert pages >= 1 and page.count('class="page-frame"') == pages


def test_a_failed_conversion_says_why(client, pending_word):
    task, document = pending_word
    Document.update(conversion_state=ConversionState.FAILED, conversion_error="文件已损坏，无法转换。").where(
        Document.id == document.id
    ).execute()
    page = client.get(f"/single/{task.public_id}").get_data(as_text=True)
    assert "《表格.docx》转换失败：文件已损坏，无法转换。" in page
    assert "hx-get" not in page.split('id="conversion-')[1].split(">")[0]  # no more polling
