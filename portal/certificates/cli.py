"""`flask ca init` and `flask orgs issue-keys`."""

import click
from flask.cli import AppGroup

from portal.certificates import services

ca_cli = AppGroup("ca", help="The school certificate authority.")
orgs_cli = AppGroup("orgs", help="Organisations' signing keys.")


@ca_cli.command("init")
def init_command():
    """Create the root and issuing CA if they do not exist (never replaces them)."""
    created = services.init_ca()
    for cert in created:
        click.echo(f"created {cert.subject_dn} (serial {cert.serial}, valid until {cert.not_after:%Y-%m-%d})")
    if not created:
        click.echo("school CA already initialised; nothing changed")


@orgs_cli.command("issue-keys")
def issue_keys_command():
    """Give every internal organisation without a valid key an SM2 key and certificate."""
    try:
        created = services.issue_org_keys()
    except services.CANotInitialised as e:
        raise click.ClickException(str(e)) from None
    for org_key in created:
        cert = org_key.certificate
        click.echo(f"{org_key.organization.name}: {cert.subject_dn} (serial {cert.serial})")
    click.echo(f"{len(created)} organisation key(s) issued" if created else "every organisation already has a key")
