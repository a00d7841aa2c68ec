"""The PIN rules (证书密码): the server never sees the PIN, stores its verifier only keyed,
releases the device secret only after a correct verifier (or inside the auto-sign window), says
how many tries remain, and locks the key share after five wrong PINs in a row."""

from datetime import timedelta

import pytest
from cosign_phone import PIN, Phone, make_request, verifier_of

from portal.accounts.models import User
from portal.audit.models import Event
from portal.certificates import keystore
from portal.certificates import services as ca
from portal.certificates.models import Certificate, KeyShare
from portal.cosign import protocol, services
from portal.crypto import x509
from portal.crypto.sm3 import sm3
from portal.db import utcnow

pytestmark = pytest.mark.both_databases


def share_of(phone: Phone) -> KeyShare:
    return KeyShare.get_by_id(phone.key_share.id)


def test_the_verifier_is_never_stored_raw_and_the_database_alone_cannot_check_it(phone):
    row = share_of(phone)
    verifier = verifier_of(PIN)
    stored = bytes(row.pin_verifier)
    assert verifier not in stored and len(stored) == 32
    # Not a plain or salted hash of the verifier either: the key needs the device secret, which
    # is wrapped under the KEK.
    assert stored not in (sm3(verifier), sm3(row.public_id.encode() + verifier))
    device_secret = keystore.unwrap(row.wrapped_device_secret, "device-secret")
    assert stored == services._verifier_tag(row, device_secret, verifier)
    assert stored != services._verifier_tag(row, bytes(32), verifier)
    for event in Event.select():
        assert verifier.hex() not in str(event.data) and device_secret.hex() not in str(event.data)


def test_the_device_secret_only_after_a_correct_verifier(phone):
    with pytest.raises(services.WrongPin) as wrong:
        phone.unlock("abc124")
    assert str(wrong.value) == "证书密码错误，还可尝试 4 次" and wrong.value.remaining == 4
    device_secret = phone.unlock(PIN)
    assert device_secret == keystore.unwrap(share_of(phone).wrapped_device_secret, "device-secret")
    assert len(device_secret) == services.DEVICE_SECRET_BYTES
    with pytest.raises(services.PinRequired):  # no verifier, no window
        phone.unlock(None)


def test_five_wrong_pins_in_a_row_lock_the_key_share(phone, participant):
    remaining = []
    for _ in range(4):
        with pytest.raises(services.WrongPin) as wrong:
            phone.unlock("wrong1")
        remaining.append(wrong.value.remaining)
    assert remaining == [4, 3, 2, 1]
    with pytest.raises(services.PinLocked, match="已锁定"):
        phone.unlock("wrong1")
    row = share_of(phone)
    assert row.locked_at is not None and row.failed_attempts == 5
    assert Event.select().where(Event.action == "cosign.locked").count() == 1

    # Locked means locked: the right PIN, the auto-sign window, signing and changing the PIN all stop.
    with pytest.raises(services.PinLocked):
        phone.unlock(PIN)
    services.set_auto_sign(phone.user, row, 30)
    KeyShare.update(last_confirmed_at=utcnow()).where(KeyShare.id == row.id).execute()
    with pytest.raises(services.PinLocked):
        phone.unlock(None)
    request = make_request(participant)
    with pytest.raises(services.PinLocked):
        services.start_signing(phone.user, request.token)
    with pytest.raises(protocol.KeyShareLocked):
        protocol.open_session(phone.user, share_of(phone), b"anything")
    with pytest.raises(services.PinLocked):
        services.change_pin(phone.user, share_of(phone), verifier_of(PIN), verifier_of("new123"))
    assert request.status == "pending"


def test_a_correct_pin_resets_the_count_of_failures(phone):
    for _ in range(4):
        with pytest.raises(services.WrongPin):
            phone.unlock("wrong1")
    phone.unlock(PIN)
    assert share_of(phone).failed_attempts == 0
    with pytest.raises(services.WrongPin) as wrong:
        phone.unlock("wrong1")
    assert wrong.value.remaining == 4


def test_tries_are_claimed_before_they_are_checked(phone):
    """Concurrent guesses cannot exceed five: a check needs a free try first, so a share whose
    tries are used up refuses even before any lock is written."""
    KeyShare.update(failed_attempts=services.MAX_PIN_FAILURES).where(KeyShare.id == phone.key_share.id).execute()
    with pytest.raises(services.PinLocked):
        phone.unlock(PIN)
    assert share_of(phone).locked_at is not None


def test_a_malformed_verifier_is_refused_without_costing_a_try(phone):
    for bad in (b"", b"\x00" * 31, b"\x00" * 33):
        with pytest.raises(services.InvalidVerifier):
            services.unlock(phone.user, share_of(phone), bad)
    assert share_of(phone).failed_attempts == 0


def test_the_auto_sign_window(phone):
    share = share_of(phone)
    assert share.auto_sign_minutes == 0  # the default: always ask
    phone.unlock(PIN)
    with pytest.raises(services.PinRequired):
        phone.unlock(None)

    services.set_auto_sign(phone.user, share, 5)
    phone.unlock(PIN)  # the window runs from this PIN entry
    assert phone.unlock(None) == phone.unlock(PIN)
    assert services.window_ends_at(share_of(phone)) > utcnow() + timedelta(minutes=4)

    # Confirmations without the PIN do not extend the window; after five minutes it is closed.
    KeyShare.update(last_confirmed_at=utcnow() - timedelta(minutes=5, seconds=1)).where(
        KeyShare.id == share.id
    ).execute()
    with pytest.raises(services.PinRequired):
        phone.unlock(None)
    assert services.window_ends_at(share_of(phone)) is None

    with pytest.raises(services.CosignAppError, match="0～30"):
        services.set_auto_sign(phone.user, share, 31)
    with pytest.raises(services.CosignAppError):
        services.set_auto_sign(phone.user, share, -1)
    assert share_of(phone).auto_sign_minutes == 5
    assert Event.get(Event.action == "cosign.auto_sign_set").data == {"minutes": 5}


def test_a_sign_request_is_confirmed_without_the_pin_inside_the_window(phone, participant):
    services.set_auto_sign(phone.user, share_of(phone), 10)
    phone.confirm(make_request(participant))  # with the PIN: opens the window
    second = make_request(participant, [b"another"])
    phone.confirm(second, pin=None)
    assert second.__class__.get_by_id(second.id).status == "done"


def test_changing_the_pin_needs_the_old_one(phone):
    share = share_of(phone)
    with pytest.raises(services.WrongPin):
        services.change_pin(phone.user, share, verifier_of("wrong1"), verifier_of("new123"))
    assert bytes(share_of(phone).pin_verifier) == bytes(share.pin_verifier)
    assert share_of(phone).failed_attempts == 1
    with pytest.raises(services.InvalidVerifier, match="不能与原密码相同"):
        services.change_pin(phone.user, share, verifier_of(PIN), verifier_of(PIN))

    services.change_pin(phone.user, share, verifier_of(PIN), verifier_of("new123"))
    assert share_of(phone).failed_attempts == 0
    device_secret = phone.unlock("new123")
    with pytest.raises(services.WrongPin):
        phone.unlock(PIN)
    # The device secret stays: the phone re-wrapped d1 with the one it got for the old PIN.
    assert device_secret == keystore.unwrap(share.wrapped_device_secret, "device-secret")
    assert Event.select().where(Event.action == "cosign.pin_changed").count() == 1


def test_verifiers_survive_a_kek_rotation(make_app):
    old_kek, new_kek = "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"
    app = make_app(PORTAL_KEK=old_kek)
    ca.init_ca()
    from cosign_phone import make_person

    phone = Phone(make_person("zhangwei", "张伟"))
    phone.activate(services.issue_activation_code(phone.user).code)
    app.config.update(PORTAL_KEK=new_kek, PORTAL_KEK_PREVIOUS=[old_kek])
    keystore.rotate()
    app.config.update(PORTAL_KEK_PREVIOUS=[])  # the old KEK is gone for good
    assert keystore.wrapped_by_current(share_of(phone).wrapped_device_secret)
    assert len(phone.unlock(PIN)) == services.DEVICE_SECRET_BYTES


def test_revoke_and_reissue_puts_the_certificate_on_the_crl_and_disables_the_share(phone):
    with pytest.raises(services.CosignAppError, match="吊销原因"):
        services.revoke_certificate(phone.user, "unspecified")
    revoked = services.revoke_certificate(phone.user, "keyCompromise")
    code = services.issue_activation_code(phone.user)

    certificate = Certificate.get_by_id(phone.certificate.id)
    assert revoked.id == certificate.id
    assert (certificate.status, certificate.revocation_reason) == ("revoked", "keyCompromise")
    crl = ca.current_crl()
    assert x509.crl_entries(crl)[int(certificate.serial, 16)] == "keyCompromise"
    share = share_of(phone)
    assert share.locked_at is not None and share.wrapped_device_secret is None and share.pin_verifier is None
    assert services.current_key_share(phone.user) is None
    with pytest.raises(services.NoCertificate):
        services.key_share_of(phone.user, share.public_id)
    with pytest.raises(services.NoCertificate):  # nothing left to revoke
        services.revoke_certificate(phone.user, "keyCompromise")

    # The new code is for the new phone.
    new_phone = Phone(phone.user)
    new_phone.activate(code.code)
    assert services.current_key_share(phone.user).id == new_phone.key_share.id
    actions = [e.action for e in Event.select().order_by(Event.seq)]
    assert actions.index("certificate.revoked") < actions.index("cosign.key_share_disabled")


def test_a_lost_phone_can_be_revoked_even_without_real_name_verification(phone):
    User.update(real_name_status="rejected").where(User.id == phone.user.id).execute()
    user = User.get_by_id(phone.user.id)
    services.revoke_certificate(user, "keyCompromise")
    assert Certificate.get_by_id(phone.certificate.id).status == "revoked"
    with pytest.raises(services.NotVerified):  # but a new certificate needs it
        services.issue_activation_code(user)
