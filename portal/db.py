"""The database handle, the base model, and a connection per request.

`database` is a proxy so models can be declared before the app decides between SQLite
(embedded) and PostgreSQL (production). Both are reached through `playhouse.db_url`.
"""

import json
import secrets
from datetime import UTC, datetime

from peewee import CharField, DatabaseProxy, DateTimeField, Model, TextField
from playhouse.db_url import connect

database = DatabaseProxy()

# WAL lets readers proceed while one writer commits; busy_timeout waits out short locks
# instead of failing with "database is locked".
SQLITE_PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": "normal"}


def utcnow() -> datetime:
    """Naive UTC: stored as is on both databases, shown in Asia/Shanghai by the templates."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_public_id() -> str:
    """A random, URL-safe id for URLs and audit subjects (never the sequential key)."""
    return secrets.token_urlsafe(12)


class PublicIdField(CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 24)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("default", new_public_id)
        super().__init__(**kwargs)


class UTCDateTimeField(DateTimeField):
    """Naive UTC datetimes, defaulting to now."""

    def __init__(self, **kwargs):
        if not kwargs.get("null"):
            kwargs.setdefault("default", utcnow)
        super().__init__(**kwargs)


class JSONField(TextField):
    """JSON stored as text, portable between SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


def open_database(url: str):
    """Connect `database` to the URL (sqlite:///path or postgresql://…) and return it."""
    if url.startswith("sqlite"):
        db = connect(url, pragmas=SQLITE_PRAGMAS)
    else:
        db = connect(url, autoconnect=True)
    database.initialize(db)
    return db


def init_app(app):
    open_database(app.config["DATABASE_URL"])

    @app.before_request
    def _connect():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(exc):
        if not database.is_closed():
            database.close()
