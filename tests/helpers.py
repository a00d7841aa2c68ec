"""Helpers shared by tests: service checks, database reset, logging in."""

import os
import re

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
