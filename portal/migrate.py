"""Schema migrations with peewee-migrate (files in migrations/, both directions)."""

import logging

import click
from flask.cli import AppGroup
from peewee_migrate import Router

from portal.config import ROOT
from portal.db import database

MIGRATIONS_DIR = ROOT / "migrations"


def router() -> Router:
    logging.getLogger("peewee_migrate").setLevel(logging.WARNING)  # one line per table is noise
    return Router(database.obj, migrate_dir=str(MIGRATIONS_DIR), ignore=["basemodel"])


def upgrade() -> list[str]:
    """Apply every pending migration; returns the names applied."""
    r = router()
    pending = list(r.diff)
    r.run()
    return pending


cli = AppGroup("db", help="Database schema commands.")


@cli.command("upgrade")
def upgrade_command():
    """Apply pending migrations."""
    applied = upgrade()
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@cli.command("rollback")
def rollback_command():
    """Roll back the last applied migration."""
    r = router()
    if not r.done:
        raise click.ClickException("no migration to roll back")
    name = r.done[-1]
    r.rollback()
    click.echo(f"rolled back {name}")


@cli.command("create")
@click.argument("name")
def create_command(name):
    """Write a migration for the difference between the models and the migrations so far."""
    r = router()
    r.create(name, auto="portal.schema")
