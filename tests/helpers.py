"""Helpers shared by tests: service checks, database reset, logging in."""

import os
import re
from pathlib import Path

import pytest

from portal.db import database

CI = os.environ.get("CI") == "true"


def service_unavailable(name: str, reason: str):
    message = f"{name} is unreachable ({reason})"
    if CI:
        pytest.fail(message + "; CI=true requires it")
    pytest.skip(message)


pg_state = {"schema": False}


def drop_all_tables():
    """Leave the connected database empty (tables and migration history)."""
    db = database.obj
    if is_sqlite():
        db.pragma("foreign_keys", 0)
    for table in db.get_tables():
        db.execute_sql(f'DROP TABLE "{table}"' + ("" if is_sqlite() else " CASCADE"))
    if is_sqlite():
        db.pragma("foreign_keys", 1)
    pg_state["schema"] = False


def is_sqlite() -> bool:
    return database.obj.__class__.__name__.startswith("Sqlite")


def csrf_token(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username="zhangwei", password="demo1234"):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


# --- PDFs -----------------------------------------------------------------------------------------

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
PDF_CORPUS = SHARED_CORPUS / "pdf"
needs_pdf_corpus = pytest.mark.skipif(not PDF_CORPUS.is_dir(), reason=f"the shared PDF corpus is not at {PDF_CORPUS}")


def corpus_pdf(name: str) -> bytes:
    return (PDF_CORPUS / name).read_bytes()


def build_pdf(objects: list[bytes], *, trailer: bytes = b"", header: bytes = b"%PDF-1.7\n") -> bytes:
    """A PDF of the given object bodies (object n is objects[n-1], object 1 the catalog), with a
    classic cross-reference table; `trailer` adds entries to the trailer dictionary."""
    out = bytearray(header)
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def three_page_pdf() -> bytes:
    """Three blank A4 pages with a line of text on each: the signing flows' everyday file."""
    pages = b" ".join(b"%d 0 R" % n for n in (3, 4, 5))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 6 0 R >>"
    content = b"BT /F1 24 Tf 72 720 Td (Page) Tj ET"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + pages + b"] /Count 3 >>",
            page,
            page,
            page,
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        ]
    )
