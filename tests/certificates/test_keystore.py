"""Secrets at rest are wrapped under the KEK, bound to their purpose, and survive KEK rotation."""

import pytest

from portal.accounts.models import User
from portal.audit.models import Event
from portal.certificates import keystore
from portal.certificates.keystore import KeyStoreError

pytestmark = pytest.mark.both_databases

OLD_KEK, NEW_KEK = "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"


def test_a_wrapped_secret_unwraps_only_for_its_purpose(app):
    blob = keystore.wrap(b"\x11" * 32, "org-key")
    assert b"\x11" * 32 not in blob
    assert keystore.unwrap(blob, "org-key") == b"\x11" * 32
    with pytest.raises(KeyStoreError, match="could not be unwrapped"):
        keystore.unwrap(blob, "ca-key")


def test_a_tampered_blob_is_refused_without_revealing_anything(app):
    blob = bytearray(keystore.wrap(b"\x22" * 32, "ca-key"))
    blob[-1] ^= 1
    with pytest.raises(KeyStoreError) as caught:
        keystore.unwrap(bytes(blob), "ca-key")
    assert "22" * 8 not in str(caught.value)


def test_rotating_the_kek_rewraps_every_secret(make_app):
    app = make_app(PORTAL_KEK=OLD_KEK)
    from portal import demo

    demo.seed()
    user = User.get(User.username == "zhangwei")
    user.id_number_enc = keystore.wrap(b"110101199003074578", "id-number")
    user.save()

    app.config.update(PORTAL_KEK=NEW_KEK, PORTAL_KEK_PREVIOUS=[OLD_KEK])
    assert keystore.unwrap(User.get_by_id(user.id).id_number_enc, "id-number") == b"110101199003074578"
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "re-wrapped" in result.output
    rotated = User.get_by_id(user.id).id_number_enc
    assert keystore.wrapped_by_current(rotated)
    assert Event.select().where(Event.action == "keys.rotated").count() == 1

    app.config.update(PORTAL_KEK_PREVIOUS=[])  # the old KEK is gone: rotated secrets still open
    assert keystore.unwrap(rotated, "id-number") == b"110101199003074578"
    assert keystore.rotate() == 0  # nothing left to do


def test_a_secret_under_an_unknown_kek_is_refused(make_app):
    app = make_app(PORTAL_KEK=OLD_KEK)
    blob = keystore.wrap(b"secret", "key-share")
    app.config.update(PORTAL_KEK=NEW_KEK, PORTAL_KEK_PREVIOUS=[])
    with pytest.raises(KeyStoreError, match="unknown KEK"):
        keystore.unwrap(blob, "key-share")
