"""Audit trail: every state change records an event in the same transaction."""

import click
from flask.cli import AppGroup

from portal.audit.services import record, verify_chain

__all__ = ["record", "verify_chain", "cli"]

cli = AppGroup("audit", help="Audit trail commands.")


@cli.command("verify")
def verify_command():
    """Re-derive the SM3 chain and report any edited, deleted or missing event."""
    count, problems = verify_chain()
    for p in problems:
        click.echo(f"event {p.seq}: {p.message}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"audit chain intact: {count} events")
