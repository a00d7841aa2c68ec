"""Files of a signing task: checking uploads, storing them, converting Word files to PDF.

Every task kind uploads the same way, so this lives apart from the single-party flow. A PDF is
inspected at once (portal.pdf.inspect) and stored as the bytes inspect accepted — qpdf's rewrite
when it repaired the file, since that is what the person previews and signs. A Word file is only
recognised by content at upload (conversion takes about a second, too long for the request): it is
stored as uploaded and converted by `convert_document`, run as a job, which records the outcome in
`Document.conversion_state` so the page can show progress and then the PDF or the reason.

`Document.current_blob` is always the PDF the next signature is appended to: the upload itself for
a PDF, the conversion's result for a Word file (None until then), later the latest signed revision.
`original_blob` keeps what the person uploaded and is never replaced.
"""

from dataclasses import dataclass
from pathlib import PurePath

from portal import audit, storage
from portal.db import database
from portal.pdf import convert
from portal.pdf.errors import PdfRefused
from portal.pdf.inspect import DEFAULT_MAX_BYTES, PdfInfo, inspect
from portal.signing.models import ConversionState, Document

PDF_SUFFIXES = {".pdf"}
WORD_SUFFIXES = {".docx", ".doc"}
WORD_MEDIA_TYPE = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword",
}


class UploadRefused(ValueError):
    """A file the portal will not take, with the file's name, the reason code (PdfRefused's, or
    "unsupported_type") and the Chinese sentence for the person."""

    def __init__(self, filename: str, reason: str, message_zh: str, detail: str = ""):
        self.filename, self.reason, self.detail = filename, reason, detail
        self.message_zh = f"《{filename}》：{message_zh}"
        super().__init__(self.message_zh)


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed the checks made at once: the bytes to store and what was learned."""

    filename: str
    data: bytes
    is_word: bool
    info: PdfInfo | None  # for PDFs


def check_upload(filename: str, data: bytes) -> CheckedUpload:
    """Inspect one uploaded file, or raise UploadRefused saying why (in Chinese)."""
    filename = PurePath(filename.replace("\\", "/")).name.strip() or "未命名文件"
    suffix = PurePath(filename).suffix.lower()
    if suffix not in PDF_SUFFIXES | WORD_SUFFIXES:
        raise UploadRefused(filename, "unsupported_type", "只能上传 PDF、Word（.docx 或 .doc）文件。")
    if not data:
        raise UploadRefused(filename, "no_pages", "文件是空的，请检查后重新上传。")
    if suffix in WORD_SUFFIXES:
        if len(data) > DEFAULT_MAX_BYTES:
            size, limit = len(data) / 1048576, DEFAULT_MAX_BYTES / 1048576
            raise UploadRefused(filename, "too_large", f"文件大小 {size:.1f} MB，超过了 {limit:g} MB 的上限。")
        # Only the container's signature now; LibreOffice judges the rest in the job.
        if not data.startswith((convert.ZIP_MAGIC, convert.OLE2_MAGIC)):
            raise UploadRefused(filename, "not_word", "文件不是 Word 文档（.docx 或 .doc），请上传 PDF 或 Word 文件。")
        return CheckedUpload(filename, data, is_word=True, info=None)
    try:
        info = inspect(data)
    except PdfRefused as refused:
        raise UploadRefused(filename, refused.reason, refused.message_zh, refused.detail) from None
    return CheckedUpload(filename, info.repaired or data, is_word=False, info=info)


def page_sizes(info: PdfInfo) -> list[list[float]]:
    """[[width, height, rotation], …] as the page is displayed: placements are made on the
    displayed page (portal.pdf.placement), so that is the size the board and the checks need."""
    return [[p.display_width, p.display_height, p.rotation] for p in info.pages]


def store(task, upload: CheckedUpload, actor) -> Document:
    """Create the Document of a checked upload. Call inside the caller's transaction."""
    if upload.is_word:
        suffix = PurePath(upload.filename).suffix.lower()
        blob = storage.save(upload.data, WORD_MEDIA_TYPE[suffix])
        document = Document.create(
            task=task,
            name=upload.filename,
            original_blob=blob.key,
            conversion_state=ConversionState.PENDING,
        )
    else:
        blob = storage.save(upload.data, "application/pdf")
        document = Document.create(
            task=task,
            name=upload.filename,
            original_blob=blob.key,
            current_blob=blob.key,
            page_count=upload.info.page_count,
            page_sizes=page_sizes(upload.info),
            conversion_state=ConversionState.NONE,
        )
    audit.record(
        actor,
        "document.uploaded",
        f"document:{document.public_id}",
        {
            "task": task.public_id,
            "name": document.name,
            "blob": blob.key,
            "repaired": bool(upload.info and upload.info.repaired),
        },
    )
    return document


def convert_document(document_id: int) -> str:
    """Convert a pending Word document to PDF (the job's body); returns the conversion state.

    Idempotent: a document that is no longer pending is left alone. A file LibreOffice or the
    inspection refuses ends as failed with the Chinese reason (the person's problem, not the
    system's); anything else raises, so the job leaves a JobFailure and can be retried.
    """
    document = Document.get_or_none(Document.id == document_id)
    if document is None or document.conversion_state != ConversionState.PENDING:
        return document.conversion_state if document else "missing"
    try:
        pdf = convert.word_to_pdf(storage.load(document.original_blob), document.name)
        info = inspect(pdf)
    except PdfRefused as refused:
        with database.atomic():
            moved = _finish(document, conversion_state=ConversionState.FAILED, conversion_error=refused.message_zh)
            if moved:
                audit.record(
                    None, "document.conversion_failed", f"document:{document.public_id}", {"reason": refused.reason}
                )
        return Document.get_by_id(document.id).conversion_state
    with database.atomic():
        blob = storage.save(info.repaired or pdf, "application/pdf")
        moved = _finish(
            document,
            conversion_state=ConversionState.DONE,
            current_blob=blob.key,
            page_count=info.page_count,
            page_sizes=page_sizes(info),
            conversion_error="",
        )
        if moved:
            audit.record(None, "document.converted", f"document:{document.public_id}", {"blob": blob.key})
    return Document.get_by_id(document.id).conversion_state


def _finish(document: Document, **fields) -> bool:
    """Leave pending only once, even when two runs of the job race."""
    query = Document.update(**fields).where(
        (Document.id == document.id) & (Document.conversion_state == ConversionState.PENDING)
    )
    return query.execute() == 1
