"""Fixtures: an app per test on a fresh database, a client, logins, and the real services.

Tests marked `both_databases` run on SQLite and on PostgreSQL. A service that cannot be
reached makes its tests skip with the reason, except under CI=true, where it is a failure.
"""

import os

import pytest
from flask.testing import FlaskClient
from helpers import drop_all_tables, pg_state, service_unavailable

from portal import create_app
from portal.config import TestConfig
from portal.db import database
from portal.schema import MODELS

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases")
        metafunc.parametrize("backend", ["sqlite", "postgresql"] if both else ["sqlite"])


def _pg_reachable():
    import psycopg2

    try:
        psycopg2.connect(PG_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as e:
        service_unavailable("PostgreSQL", str(e).strip().splitlines()[0])


def _fresh_schema(backend: str):
    if backend == "sqlite":
        database.create_tables(MODELS)
    elif not pg_state["schema"]:
        drop_all_tables()
        database.create_tables(MODELS)
        pg_state["schema"] = True
    else:
        tables = ", ".join(f'"{m._meta.table_name}"' for m in MODELS)
        database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


class PortalClient(FlaskClient):
    """Gives every request a fresh app context (and `g`), as a real server does; the
    fixture's long-lived context would otherwise share `g`, and its cached CSRF token."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def make_app(tmp_path, backend):
    """Build the app for this test's backend; keyword arguments override config."""
    apps = []

    def make(**overrides):
        if backend == "postgresql":
            _pg_reachable()
            overrides.setdefault("DATABASE_URL", PG_URL)
        app = create_app(TestConfig(tmp_path / "var", **overrides))
        app.test_client_class = PortalClient
        ctx = app.app_context()
        ctx.push()
        database.connect(reuse_if_open=True)
        _fresh_schema(backend)
        apps.append(ctx)
        return app

    yield make
    for ctx in reversed(apps):
        if not database.is_closed():
            database.close()
        ctx.pop()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def demo(app):
    from portal import demo as demo_school

    demo_school.seed()
    return demo_school


@pytest.fixture
def redis_url():
    import redis

    conn = redis.Redis.from_url(REDIS_URL)
    try:
        conn.ping()
    except redis.RedisError as e:
        service_unavailable("Redis", str(e))
    conn.flushdb()
    yield REDIS_URL
    conn.flushdb()
