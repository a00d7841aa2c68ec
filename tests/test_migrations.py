"""The migrations in migrations/ build exactly the schema the models describe, both ways."""

import pytest
from helpers import drop_all_tables

from portal import migrate
from portal.db import database
from portal.schema import MODELS

pytestmark = pytest.mark.both_databases


def schema_of_database():
    db = database.obj
    tables = {}
    for table in db.get_tables():
        if table == "migratehistory":
            continue
        columns = {c.name: c.null for c in db.get_columns(table)}
        unique = {tuple(i.columns) for i in db.get_indexes(table) if i.unique}
        tables[table] = (columns, unique)
    return tables


def schema_of_models():
    tables = {}
    for model in MODELS:
        columns = {f.column_name: f.null for f in model._meta.sorted_fields if not f.primary_key}
        columns[model._meta.primary_key.column_name] = False
        unique = {(f.column_name,) for f in model._meta.sorted_fields if f.unique}
        unique |= {tuple(model._meta.fields[n].column_name for n in fields) for fields, u in model._meta.indexes if u}
        tables[model._meta.table_name] = (columns, unique)
    return tables


def without_primary_key_indexes(schema):
    return {t: (cols, {u for u in uniq if u != ("id",)}) for t, (cols, uniq) in schema.items()}


def test_migrations_build_the_schema_of_the_models_and_roll_back(app):
    drop_all_tables()
    applied = migrate.upgrade()
    assert applied and applied[0] == "001_initial"
    assert without_primary_key_indexes(schema_of_database()) == schema_of_models()

    router = migrate.router()
    last = router.done[-1]
    before = schema_of_database()
    router.rollback()
    assert last not in migrate.router().done
    assert schema_of_database() != before

    assert migrate.upgrade() == [last]
    assert schema_of_database() == before
    assert migrate.upgrade() == []  # nothing left to apply
    drop_all_tables()
