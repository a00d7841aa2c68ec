from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from portal.accounts import services
from portal.security import limiter

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used as an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


def _username_key() -> str:
    return "login-user:" + request.form.get("username", "").strip().lower()


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], key_func=_username_key)
def login():
    """Local login for administrators and, in demo mode, the demo school."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error = None
    if request.method == "POST":
        user = services.authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            error = "用户名或密码错误"
        else:
            next_url = _safe_next(request.args.get("next"))
            session.clear()  # a fresh session (and CSRF token) for the logged-in user
            session.permanent = True
            login_user(user)
            services.record_login(user, "local")
            return redirect(next_url, 303)
    return render_template("accounts/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    services.record_logout(current_user)
    logout_user()
    session.clear()
    flash("您已安全退出。", "info")
    return redirect(url_for("accounts.login"), 303)
