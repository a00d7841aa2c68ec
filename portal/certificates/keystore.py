"""The key store: secrets at rest are wrapped with SM4-GCM under the key-encryption key (KEK).

A wrapped blob is  b"KW1" ‖ KEK id (4 bytes) ‖ nonce ‖ ciphertext ‖ tag,  and its purpose
("ca-key", "org-key", "key-share", …) is bound in as associated data, so a blob cannot be moved
to a column it was not made for. The KEK id says which KEK wrapped it, so the KEK can be rotated:
set the new one as PORTAL_KEK, the old one in PORTAL_KEK_PREVIOUS, and run `flask keys rotate`.

Unwrapped keys live only in local variables of the code that uses them; nothing here logs,
repr()s or raises with key material. A hardware key store (PKCS#11, GM/T 0018 SDF) would
replace wrap/unwrap for CA and organisation keys behind the same calls.
"""

import click
from flask import current_app
from flask.cli import AppGroup

from portal.crypto import sm4
from portal.crypto.sm3 import sm3

MAGIC = b"KW1"


class KeyStoreError(RuntimeError):
    """A wrapped secret that cannot be unwrapped (unknown KEK, wrong purpose, tampered)."""


def kek_id(kek: bytes) -> bytes:
    return sm3(b"portal-kek-id" + kek)[:4]


def _keks() -> dict[bytes, bytes]:
    keys = [current_app.config["PORTAL_KEK"], *current_app.config.get("PORTAL_KEK_PREVIOUS", [])]
    return {kek_id(k): k for k in map(bytes.fromhex, keys)}


def _current_kek() -> bytes:
    return bytes.fromhex(current_app.config["PORTAL_KEK"])


def wrap(secret: bytes, purpose: str) -> bytes:
    kek = _current_kek()
    kid = kek_id(kek)
    return MAGIC + kid + sm4.encrypt(kek, secret, purpose.encode() + kid)


def unwrap(blob: bytes, purpose: str) -> bytes:
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise KeyStoreError(f"not a wrapped {purpose}")
    kid = blob[3:7]
    kek = _keks().get(kid)
    if kek is None:
        raise KeyStoreError(f"{purpose} is wrapped under an unknown KEK (id {kid.hex()})")
    try:
        return sm4.decrypt(kek, blob[7:], purpose.encode() + kid)
    except sm4.SM4Error:
        raise KeyStoreError(f"{purpose} could not be unwrapped (tampered or wrong purpose)") from None


def wrapped_by_current(blob: bytes) -> bool:
    return bytes(blob)[3:7] == kek_id(_current_kek())


def wrapped_columns():
    """Every column holding a wrapped secret, with its purpose."""
    from portal.accounts.models import RealNameRequest, User
    from portal.certificates.models import CertificateAuthority, KeyShare, OrgKey
    from portal.signing.models import Participant

    return [
        (CertificateAuthority, CertificateAuthority.wrapped_key, "ca-key"),
        (OrgKey, OrgKey.wrapped_key, "org-key"),
        (KeyShare, KeyShare.wrapped_share, "key-share"),
        (KeyShare, KeyShare.wrapped_device_secret, "device-secret"),
        (User, User.id_number_enc, "id-number"),
        (RealNameRequest, RealNameRequest.id_number_enc, "id-number"),
        (Participant, Participant.external_id_number_enc, "id-number"),
    ]


def rotate() -> int:
    """Re-wrap every secret not yet under the current KEK; returns how many were re-wrapped."""
    from portal import audit
    from portal.db import database

    count = 0
    with database.atomic():
        for model, field, purpose in wrapped_columns():
            for row in model.select(model.id, field).where(field.is_null(False)):
                blob = getattr(row, field.name)
                if not wrapped_by_current(blob):
                    new = wrap(unwrap(blob, purpose), purpose)
                    model.update({field: new}).where(model.id == row.id).execute()
                    count += 1
        audit.record(None, "keys.rotated", f"kek:{kek_id(_current_kek()).hex()}", {"rewrapped": count})
    return count


cli = AppGroup("keys", help="Key-encryption key commands.")


@cli.command("rotate")
def rotate_command():
    """Re-wrap every stored secret under PORTAL_KEK (old KEKs in PORTAL_KEK_PREVIOUS)."""
    count = rotate()
    click.echo(f"re-wrapped {count} secret(s) under KEK {kek_id(_current_kek()).hex()}")
