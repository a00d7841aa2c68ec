"""Login sessions, CSRF and rate limits, shared by every blueprint."""

from functools import wraps

from flask import abort
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "请先登录。"
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(public_id: str):
    from portal.accounts.models import User

    return User.get_or_none((User.public_id == public_id) & (User.is_active == True))  # noqa: E712


def admin_required(view):
    """Only administrators; others get 403 (and anonymous users the login page)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def init_app(app):
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
