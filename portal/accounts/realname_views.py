"""Real-name authentication pages: the person's dialog (立即实名认证 → 下一步 → 身份核验 → 核验成功),
the page the phone returns to after a face check, and the administrators' review queue
(实名认证审核). `real_name_required` is the decorator signing views use."""

from dataclasses import dataclass, field
from functools import wraps

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from portal import htmx
from portal.accounts import providers, realname
from portal.accounts.models import RealNameRequest, RealNameStatus, User
from portal.config import ConfigError
from portal.qr import qr_svg
from portal.security import admin_required, limiter, login_manager

bp = Blueprint("realname", __name__)



@bp.record_once
def _check_configuration(state):
    """Refuse to start with a provider that does not exist or lacks its settings, rather than fail
    the first person who tries."""
    config = state.app.config
    name = config["REAL_NAME_PROVIDER"]
    if name not in providers.names():
        raise ConfigError(f"REAL_NAME_PROVIDER must be one of {', '.join(providers.names())}, not {name!r}")
    missing = providers.get(name, config).missing_config(config)
    if missing:
        raise ConfigError(f"REAL_NAME_PROVIDER={name} needs {', '.join(missing)}")


# ---- the guard for signing views ----------------------------------------------------------------


def real_name_required(view):
    """Only people whose real-name status is verified; others get 实名认证 as the way forward."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        realname.require_real_name(current_user)
        return view(*args, **kwargs)

    return wrapped


@bp.app_errorhandler(realname.RealNameRequired)
def _real_name_missing(error):
    # Raised by the decorator or by any signing service: one answer everywhere.
    return htmx.render(
        "accounts/real_name_required.html",
        fragment="accounts/_real_name_required.html",
        status=403,
        message=error.message,
    )


# ---- what the templates show --------------------------------------------------------------------


@dataclass
class Panel:
    """The dialog's state. step: intro (the home page's invitation), form, verify (the face
    check's method, then 【确定】) or status. `form` holds what to fill back in: the name and the
    mobile, never the ID number."""

    step: str
    request: RealNameRequest | None = None
    provider: providers.Provider | None = None
    form: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)


def panel_for(user: User, *, home: bool = False) -> Panel:
    latest = realname.latest_request(user)
    if realname.is_verified(user) and (latest is None or latest.status != RealNameStatus.VERIFIED):
        # Verified without a request of ours (set by an administrator or an import): the outcome
        # is shown from the account, through an unsaved request that is never stored.
        latest = RealNameRequest(
            user=user,
            name=user.name,
            id_number_masked=user.id_number_masked or "",
            mobile=user.mobile or "",
            provider=realname.configured_provider().name,
            status=RealNameStatus.VERIFIED,
        )
    if latest is not None and latest.status in (RealNameStatus.VERIFIED, RealNameStatus.PENDING):
        return Panel("status", latest, realname.provider_for(latest))
    return _form_panel(user, latest, step="intro" if home else "form")


def _form_panel(user: User, latest: RealNameRequest | None, *, step="form", typed=None, errors=None) -> Panel:
    if typed is None:
        typed = {"name": latest.name if latest else user.name, "mobile": latest.mobile if latest else user.mobile}
    return Panel(step, latest, realname.configured_provider(), form=typed, errors=errors or {})


@bp.app_context_processor
def _real_name_context():
    def pending_reviews() -> int:
        return realname.review_queue().count()

    return {
        "real_name_panel": lambda: panel_for(current_user, home=True),
        "real_name_pending_reviews": pending_reviews,
        # The face check's QR code, named for this feature: other features draw their own.
        "real_name_qr": lambda url: qr_svg(url, "人脸核验二维码"),
    }


@bp.app_template_filter("mask_mobile")
def _mask_mobile(mobile):
    return realname.mask_mobile(mobile)


# ---- the person's pages -------------------------------------------------------------------------


def _per_person() -> str:
    # Campus networks put many people behind one address, so limits count per person. The limiter
    # runs before login_required, hence the fallback for anonymous requests.
    who = current_user.public_id if current_user.is_authenticated else get_remote_address()
    return f"{request.endpoint}:{who}"


def _own_request(public_id: str) -> RealNameRequest:
    rn = RealNameRequest.get_or_none(RealNameRequest.public_id == public_id)
    if rn is None or rn.user_id != current_user.id:
        abort(404)
    return rn


@bp.get("/real-name")
@login_required
def index():
    """实名认证: the form, the verification in progress, or the outcome."""
    return htmx.render(
        "accounts/real_name.html", fragment="accounts/_real_name_panel.html", panel=panel_for(current_user)
    )


@bp.get("/real-name/new")
@login_required
def new():
    """The form, also while a request is pending (submitting again replaces it)."""
    if realname.is_verified(current_user):
        return redirect(url_for(".index"))
    panel = _form_panel(current_user, realname.latest_request(current_user))
    return htmx.render("accounts/real_name.html", fragment="accounts/_real_name_panel.html", panel=panel)


@bp.post("/real-name")
@limiter.limit(lambda: current_app.config["REAL_NAME_SUBMIT_RATE_LIMIT"], key_func=_per_person)
@login_required
def submit():
    """【下一步】: check the form and open the verification."""
    typed = {"name": request.form.get("name", ""), "mobile": request.form.get("mobile", "")}
    try:
        rn = realname.submit(
            current_user, name=typed["name"], id_number=request.form.get("id_number", ""), mobile=typed["mobile"]
        )
    except realname.ApplicationInvalid as e:
        return _refused(typed, e.errors)
    except realname.RealNameError as e:
        return _refused(typed, {"form": str(e)})
    if not htmx.is_htmx():
        return redirect(url_for(".index"), 303)
    # A face check first shows its method and 【确定】 (the manual's 身份核验 step); a review has
    # nothing to confirm and goes straight to waiting.
    step = "verify" if rn.provider_url else "status"
    return htmx.render(
        "accounts/real_name.html",
        fragment="accounts/_real_name_panel.html",
        panel=Panel(step, rn, realname.provider_for(rn)),
    )


def _refused(typed: dict, errors: dict):
    """The form again with the reasons: htmx swaps only the error box (the form's hx-status:422),
    so what the person typed stays in place; without htmx the page comes back with the name and
    mobile filled in and the ID number left empty, as it is never written into a page."""
    panel = _form_panel(current_user, realname.latest_request(current_user), typed=typed, errors=errors)
    return htmx.render("accounts/real_name.html", fragment="accounts/_real_name_errors.html", status=422, panel=panel)


@bp.get("/real-name/<public_id>/status")
@limiter.limit(lambda: current_app.config["REAL_NAME_POLL_RATE_LIMIT"], key_func=_per_person)
@login_required
def status(public_id):
    """The self-polling status partial: asks the provider while pending, stops when decided."""
    rn = realname.refresh(_own_request(public_id))
    panel = Panel("status", rn, realname.provider_for(rn))
    return htmx.render("accounts/real_name.html", fragment="accounts/_real_name_status.html", panel=panel)


@bp.get(realname.RETURN_PATH.replace("{public_id}", "<public_id>"))
@limiter.limit(lambda: current_app.config["REAL_NAME_POLL_RATE_LIMIT"], key_func=_per_person)
def returned(public_id):
    """Where the phone lands after the face check (RedirectUrl). Whatever the provider appended
    to this URL is ignored: the outcome is read from the provider server-side. The phone is not
    logged in, so the page names no one; the request's id is 16 random characters."""
    rn = RealNameRequest.get_or_none(RealNameRequest.public_id == public_id)
    if rn is None:
        abort(404)
    return render_template("accounts/real_name_returned.html", rn=realname.refresh(rn))


# ---- the administrators' review queue -----------------------------------------------------------


@bp.get("/admin/real-name")
@admin_required
def review_queue():
    """实名认证审核: pending requests, oldest first, and the latest decisions."""
    pending = list(realname.review_queue())
    return render_template(
        "accounts/review.html", pending=pending, pending_count=len(pending), decided=realname.recently_decided()
    )


@bp.post("/admin/real-name/<public_id>/approve")
@admin_required
def approve(public_id):
    rn = _request_or_404(public_id)
    try:
        rn = realname.approve(rn, current_user)
    except realname.RealNameError as e:
        return _reviewed(rn, error=str(e))
    return _reviewed(rn, done=f"已通过{rn.name}的实名认证")


@bp.post("/admin/real-name/<public_id>/reject")
@admin_required
def reject(public_id):
    rn = _request_or_404(public_id)
    try:
        rn = realname.reject(rn, current_user, request.form.get("reason", ""))
    except realname.RealNameError as e:
        return _reviewed(rn, error=str(e))
    return _reviewed(rn, done=f"已驳回{rn.name}的实名认证申请")


def _request_or_404(public_id: str) -> RealNameRequest:
    rn = RealNameRequest.get_or_none(RealNameRequest.public_id == public_id)
    if rn is None:
        abort(404)
    return rn


def _reviewed(rn: RealNameRequest, *, done: str = "", error: str = ""):
    """htmx: the item in its new state (or with the error) and the pending count out of band;
    otherwise back to the queue with a message."""
    if not htmx.is_htmx():
        flash(error or done, "error" if error else "success")
        return redirect(url_for(".review_queue"), 303)
    item = render_template("accounts/_review_item.html", rn=RealNameRequest.get_by_id(rn.id), error=error)
    count = render_template(
        "accounts/_review_count.html", pending_count=realname.review_queue().count(), out_of_band=True
    )
    return item + count, 422 if error else 200
