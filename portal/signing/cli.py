"""`flask pdf …`: the PDF engine from the command line, for operators and scripted checks.

flask pdf inspect FILE                    JSON; exit 2 when the file is refused
flask pdf verify FILE [--trust CA.pem]    JSON; exit 0 only if signed and every signature
                                          is valid, intact and trusted; 1 otherwise; 2 refused
flask pdf sign IN OUT --org CODE --page N --x X --y Y [--multi RANGE] [--riding RANGE]
                                          signs with the organisation's key and seal
"""

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from portal import audit
from portal.accounts.models import Organization
from portal.certificates import services as certificates
from portal.crypto.asn1 import unpem
from portal.crypto.sm3 import sm3
from portal.db import database
from portal.pdf import sign as pdf_sign
from portal.pdf.errors import PdfRefused
from portal.pdf.inspect import inspect
from portal.pdf.placement import MM, Placement, SealImage
from portal.pdf.verify import verify_pdf
from portal.seals.models import Seal, SealKind
from portal.storage import load

cli = AppGroup("pdf", help="Inspect, sign and verify PDF files.")

OFFICIAL_KINDS = (SealKind.SCHOOL, SealKind.COLLEGE, SealKind.DEPARTMENT)


def _json_default(value):
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value):
        return asdict(value)
    return str(value)


def _emit(payload) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default))


def _refused(e: PdfRefused):
    _emit({"refused": e.reason, "message": e.message_zh})
    sys.exit(2)


@cli.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def inspect_command(file: Path):
    """Pages, sizes, rotation; or why the file would be refused at upload."""
    try:
        info = inspect(file.read_bytes())
    except PdfRefused as e:
        _refused(e)
    payload = asdict(info)
    payload["repaired"] = info.repaired is not None
    _emit(payload)


def _verdict(v) -> dict:
    return {
        "field": v.field_name,
        "kind": v.kind,
        "revision": v.revision,
        "valid": v.valid,
        "intact": v.intact,
        "summary": v.summary,
        "problems": list(v.problems),
        "signer": v.signer and {"name": v.signer.common_name, "organization": v.signer.organization,
                                "serial": v.signer.serial, "issuer": v.signer.issuer},
        "signing_time": v.signing_time,
        "covers_whole_file": v.covers_whole_file,
        "chain_trusted": v.chain.trusted,
        "revoked": v.revocation.status == "revoked",
        "changes_after": {"level": v.changes.level, "allowed": v.changes.allowed, "description": v.changes.description},
        "seals": [{"page": s.page, "rect": s.rect} for s in v.seals],
    }  # fmt: skip


@cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An extra trusted CA certificate (PEM or DER); the school CA and imported CAs are always trusted.",
)
def verify_command(file: Path, trust: tuple[Path, ...]):
    """Every signature: intact, valid, trusted, not revoked; and what changed after it."""
    anchors = certificates.trust_anchors() + [unpem(p.read_bytes()) for p in trust]
    try:
        result = verify_pdf(file.read_bytes(), trust_anchors=anchors, is_revoked=certificates.revocation_status)
    except PdfRefused as e:
        _refused(e)
    signatures = [_verdict(v) for v in result.signatures]
    _emit({"summary": result.summary, "valid": result.all_valid, "signatures": signatures})
    sys.exit(0 if result.all_valid else 1)


def _official_seal(org: Organization) -> tuple[SealImage, float, float]:
    seal = (
        Seal.select()
        .where((Seal.owner_org == org) & (Seal.kind.in_(OFFICIAL_KINDS)) & (Seal.status == "active"))
        .order_by(Seal.id)
        .first()
    )
    if seal is None:
        raise click.ClickException(f"{org.name} has no official seal")
    return SealImage.from_png(seal.public_id, load(seal.image_blob)), seal.width_mm * MM, seal.height_mm * MM


@cli.command("sign")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--org", "code", required=True, help="The organisation's short code, e.g. jwc.")
@click.option("--page", type=int, default=1, show_default=True, help="Page of the seal (1-based).")
@click.option("--x", type=float, default=72.0, show_default=True, help="Left edge of the seal, points from the left.")
@click.option("--y", type=float, default=72.0, show_default=True, help="Bottom of the seal, points from the bottom.")
@click.option("--multi", help='Also stamp the seal on these pages at the same spot ("all" or "1-3,7").')
@click.option("--riding", help='Add a riding-seam seal across these pages ("all" or "1-3,7").')
@click.option("--edge", type=click.Choice(["left", "right"]), default="right", show_default=True)
@click.option("--rule", type=click.Choice(["continuous", "alternate"]), default="continuous", show_default=True)
def sign_command(source, target, code, page, x, y, multi, riding, edge, rule):
    """Sign SOURCE as the organisation CODE (its key and official seal), writing TARGET.
    A SOURCE that is already signed gets one more revision; its bytes stay as they were."""
    org = Organization.get_or_none(Organization.short_code == code)
    if org is None:
        raise click.ClickException(f"no organisation with code {code!r}")
    data = source.read_bytes()
    seal, width, height = _official_seal(org)
    placements = [Placement.single(seal, page, x, y, width, height)]
    if multi:
        placements.append(Placement.multi_page(seal, multi, x, y, width, height))
    if riding:
        placements.append(Placement.riding(seal, riding, y, width, height, edge=edge, rule=rule))

    certificate = certificates.org_certificate(org)
    key = certificates.load_org_key(org)
    signer = pdf_sign.sm2_cms_signer(bytes(certificate.der), certificates.chain()[:1], key.sign)
    try:
        signed = pdf_sign.sign_revision(data, placements, signer, name=org.name)
    except PdfRefused as e:
        _refused(e)
    except (pdf_sign.SignError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    target.write_bytes(signed.data)
    with database.atomic():  # an organisation key was used: that is on the record
        audit.record(None, "pdf.signed_from_cli", f"organization:{org.public_id}",
                     {"file_sm3": sm3(signed.data).hex(), "field": signed.field_name,
                      "certificate": certificate.serial})  # fmt: skip
    click.echo(f"signed as {org.name} ({signed.field_name}) → {target}")
