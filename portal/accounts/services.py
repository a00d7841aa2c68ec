"""Who may log in, and with what; one-time codes a QR code carries to their phone."""

from datetime import timedelta

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from portal import audit
from portal.accounts.models import OneTimeCode, User
from portal.db import database, utcnow

# Checked when the username is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(username: str, password: str) -> User | None:
    """The active local user with this username and password, or None. Demo accounts only
    work while DEMO_MODE is on. The caller shows one generic error for every failure."""
    user = User.get_or_none(User.username == username.strip().lower())
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    if not user.is_active or (user.is_demo and not current_app.config["DEMO_MODE"]):
        return None
    return user


def record_login(user: User, method: str) -> None:
    with database.atomic():
        User.update(last_login_at=utcnow()).where(User.id == user.id).execute()
        audit.record(user, "accounts.login", f"user:{user.public_id}", {"method": method})


def record_logout(user: User) -> None:
    with database.atomic():
        audit.record(user, "accounts.logout", f"user:{user.public_id}")


def issue_one_time_code(user: User, purpose: str, code: str, lifetime: timedelta) -> OneTimeCode:
    """A new single-use code for `purpose`; the person's earlier unused ones expire, so only the
    QR code on screen works. Call it inside the caller's transaction, next to its audit event."""
    now = utcnow()
    OneTimeCode.update(expires_at=now).where(
        (OneTimeCode.user == user.id)
        & (OneTimeCode.purpose == purpose)
        & OneTimeCode.used_at.is_null()
        & (OneTimeCode.expires_at > now)
    ).execute()
    return OneTimeCode.create(code=code, purpose=purpose, user=user, expires_at=now + lifetime)
