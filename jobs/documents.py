"""Document jobs: Word to PDF conversion."""

from portal.signing import documents


def convert_document(document_id: int) -> str:
    """Convert an uploaded Word file to the PDF that will be signed (no-op once converted)."""
    return documents.convert_document(document_id)
