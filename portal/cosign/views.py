"""The cosign app (协同签名): the PC side (【协同签名工具】 and 我的证书 under /cosign/), the phone's
pages under /m/, and the JSON API the phone's script (static/js/cosign-app.js) calls under /m/api/.

Every route needs a login. Inside WeChat Work the login is silent (OAuth); elsewhere the phone
uses the ordinary login page. The API answers JSON only, also for refusals: {"error": 中文, …}.
Binary values travel as lower-case hex. Every POST carries the CSRF token (X-CSRFToken).
"""

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, request, url_for
from flask_login import current_user, login_required

from portal.accounts import realname, wxwork
from portal.certificates import services as certificates
from portal.cosign import protocol, services
from portal.htmx import render
from portal.qr import qr_svg
from portal.security import limiter

bp = Blueprint("cosign", __name__)

# Per person: a PIN check costs the person a try, so a script gets nowhere, but it should not be
# able to hammer the endpoints either. Config keys override these (tests, deployments).
RATE_LIMITS = {
    "COSIGN_PIN_RATE_LIMIT": "10 per minute;60 per hour",  # /m/api/unlock, /m/api/pin
    "COSIGN_ACTIVATE_RATE_LIMIT": "10 per minute;30 per hour",  # codes, activation, CSR runs
    "COSIGN_SIGN_RATE_LIMIT": "120 per minute",  # protocol steps: 2 per signature
    "COSIGN_TOOL_RATE_LIMIT": "20 per minute",  # PC: new activation codes, revocation
    "COSIGN_WXWORK_RATE_LIMIT": "30 per minute",  # 扫一扫 inside WeChat Work: a JS-SDK signature per page
}


def _limit(name: str, methods: list[str] | None = None):
    return limiter.limit(
        lambda: current_app.config.get(name, RATE_LIMITS[name]),
        key_func=lambda: f"{name}:{getattr(current_user, 'public_id', None) or request.remote_addr}",
        methods=methods,
    )


def in_wxwork() -> bool:
    """The page runs inside the WeChat Work client (integrations.md §1.4; a hint, not a proof)."""
    return "wxwork" in request.headers.get("User-Agent", "").lower()


def activation_url(code: str) -> str:
    """What the activation QR code carries: the phone page with the code filled in. Built on
    PORTAL_PUBLIC_URL, the address phones reach the portal at."""
    return current_app.config["PORTAL_PUBLIC_URL"] + url_for("cosign.m_activate", code=code)


def sign_request_url(sign_request) -> str:
    """What a signing QR code carries (shown on the PC by the signing flows)."""
    return current_app.config["PORTAL_PUBLIC_URL"] + url_for("cosign.m_sign", token=sign_request.token)


def realname_url() -> str | None:
    """The real-name authentication page, when that module is installed."""
    return url_for("realname.index") if "realname.index" in current_app.view_functions else None


def _activation(code) -> dict:
    """An activation code as the PC shows it: QR code and text."""
    return {
        "code": services.format_code(code.code),
        "expires_at": code.expires_at,
        "minutes": services.ACTIVATION_LIFETIME.seconds // 60,
        "qr": qr_svg(activation_url(code.code), "协同签名证书激活二维码"),
    }


def _activation_context(user) -> dict:
    """The tool panel: a fresh activation code, or why there is none."""
    try:
        return _activation(services.issue_activation_code(user))
    except services.NotVerified as e:
        return {"refusal": str(e), "realname_url": realname_url()}


def _certificate_context(user) -> dict:
    key_share = services.current_key_share(user)
    return {
        "key_share": key_share,
        "certificate": services.certificate_info(key_share.certificate) if key_share else None,
        "history": services.certificate_history(user),
    }


# ---------------------------------------------------------------------------------------------
# PC: 【协同签名工具】 and 我的证书


@bp.post("/cosign/tool")
@login_required
@_limit("COSIGN_TOOL_RATE_LIMIT")
def tool():
    """The header's 【协同签名工具】: a new one-time activation code as a QR code."""
    return render(
        "cosign/tool.html",
        "cosign/_tool_panel.html",
        **_activation_context(current_user),
        **_certificate_context(current_user),
    )


@bp.get("/cosign/certificate")
@login_required
def my_certificate():
    """我的证书: the person's cosign certificate and 【吊销并重新签发】."""
    return render("cosign/my_certificate.html", **_certificate_context(current_user))


@bp.post("/cosign/certificate/reissue")
@login_required
@_limit("COSIGN_TOOL_RATE_LIMIT")
def reissue():
    """吊销并重新签发: the certificate goes on the CRL, its key share is disabled, and the page shows
    the activation QR code for the new phone (or, without real-name verification, why not)."""
    try:
        if not request.form.get("confirm"):
            raise services.CosignAppError("请勾选确认后再吊销证书")
        services.revoke_certificate(current_user, request.form.get("reason", ""))
    except services.CosignAppError as e:
        return render("cosign/my_certificate.html", status=400, error=str(e), **_certificate_context(current_user))
    return render(
        "cosign/my_certificate.html",
        reissued=True,
        activation=_activation_context(current_user),
        **_certificate_context(current_user),
    )


# ---------------------------------------------------------------------------------------------
# Phone pages


def _phone_context() -> dict:
    key_share = services.current_key_share(current_user)
    return {"key_share": key_share, "in_wxwork": in_wxwork(), "realname_url": realname_url()}


@bp.get("/m/")
@login_required
def m_home():
    """待签署, or 您还没有证书 with 【点击下载】 before the first activation."""
    context = _phone_context()
    if context["key_share"] is None:
        return render("cosign/m_home.html", verified=realname.is_verified(current_user), **context)
    requests = [services.describe(r) for r in services.pending_requests(current_user)]
    return render("cosign/m_pending.html", requests=requests, **context)


@bp.route("/m/activate", methods=["GET", "POST"])
@login_required
@_limit("COSIGN_ACTIVATE_RATE_LIMIT", methods=["POST"])
def m_activate():
    """The activation code (from the QR code's link, or typed) and 【确定】; then the PIN."""
    code = request.values.get("code", "")
    if request.method == "POST":
        try:
            found = services.check_activation_code(current_user, code)
        except services.CosignAppError as e:
            return render("cosign/m_activate.html", status=400, code=code, error=str(e), **_phone_context())
        return render("cosign/m_pin.html", mode="activate", code=found.code, **_phone_context())
    return render("cosign/m_activate.html", code=services.normalize_code(code), **_phone_context())


@bp.get("/m/pin")
@login_required
def m_pin():
    """修改证书密码."""
    context = _phone_context()
    if context["key_share"] is None:
        return redirect(url_for("cosign.m_home"), 303)
    return render("cosign/m_pin.html", mode="change", **context)


@bp.get("/m/mine")
@login_required
def m_mine():
    """我的: 协同证书管理 and 设置自动签名时间."""
    context = _phone_context()
    key_share = context["key_share"]
    return render(
        "cosign/m_mine.html",
        certificate=services.certificate_info(key_share.certificate) if key_share else None,
        choices=services.AUTO_SIGN_CHOICES,
        window_ends_at=services.window_ends_at(key_share) if key_share else None,
        saved=request.args.get("saved") == "1",
        **context,
    )


@bp.post("/m/mine/auto-sign")
@login_required
def m_auto_sign():
    key_share = services.current_key_share(current_user)
    if key_share is None:
        return redirect(url_for("cosign.m_home"), 303)
    try:
        minutes = int(request.form.get("minutes", ""))
        services.set_auto_sign(current_user, key_share, minutes)
    except (ValueError, services.CosignAppError):  # only a tampered form sends another value
        return redirect(url_for("cosign.m_mine"), 303)
    return redirect(url_for("cosign.m_mine", saved=1), 303)


@bp.get("/m/scan")
@login_required
def m_scan():
    """扫一扫: inside WeChat Work (with the portal's app configured) the client's scanner through
    the JS-SDK; elsewhere how to scan the PC's QR code with the phone's camera."""
    context = _phone_context()
    scanner = context["in_wxwork"] and wxwork.configured()
    return render(
        "cosign/m_scan.html",
        scanner=scanner,
        corp_id=current_app.config["WXWORK_CORP_ID"] if scanner else None,
        **context,
    )


@bp.get("/m/sign/<token>")
@login_required
def m_sign(token):
    """One sign request: what will be signed, then the PIN (or not, inside the auto-sign window)."""
    context = _phone_context()
    try:
        sign_request = services.sign_request_of(current_user, token)
    except services.SignRequestNotFound as e:
        return render("cosign/m_sign.html", status=404, error=str(e), summary=None, **context)
    key_share = context["key_share"]
    return render(
        "cosign/m_sign.html",
        summary=services.describe(sign_request),
        in_window=bool(key_share) and services.in_auto_sign_window(key_share),
        **context,
    )


# ---------------------------------------------------------------------------------------------
# JSON API for static/js/cosign-app.js

# Refusals and their HTTP status; the message is the exception's (Chinese) unless given here.
_STATUS = (
    (services.NotVerified, 403, None),
    (services.WrongPin, 403, None),
    (services.PinRequired, 403, None),
    (services.PinLocked, 423, None),
    (protocol.KeyShareLocked, 423, services.LOCKED_MESSAGE),
    (services.NoCertificate, 409, None),
    (services.SignRequestNotFound, 404, None),
    (services.SignRequestClosed, 409, None),
    (services.CosignAppError, 400, None),
    (protocol.SessionNotFound, 404, "签署会话不存在，请返回重试"),
    (protocol.SessionExpired, 410, "操作超时，请重新确认"),
    (protocol.SessionClosed, 409, "该签署步骤已完成或已失效，请重新确认"),
    (protocol.CosignError, 400, "手机端签名数据校验失败，请重试"),
    (certificates.CANotInitialised, 503, "证书服务尚未初始化，请联系管理员"),
    (certificates.CertificateError, 400, None),
)


class BadRequest(services.CosignAppError):
    pass


def _refusal(error: Exception):
    for kind, status, message in _STATUS:
        if isinstance(error, kind):
            body = {"error": message or str(error)}
            if isinstance(error, services.WrongPin):
                body["remaining"] = error.remaining
            if isinstance(error, services.PinLocked | protocol.KeyShareLocked):
                body["locked"] = True
            if isinstance(error, services.PinRequired):
                body["pin_required"] = True
            return jsonify(body), status
    raise error


def api(view):
    """JSON in and out: 401 JSON instead of the login redirect, refusals as JSON."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return jsonify(error="登录已过期，请重新登录"), 401
        try:
            return view(*args, **kwargs)
        except (
            services.CosignAppError,
            protocol.CosignError,
            certificates.CertificateError,
            certificates.CANotInitialised,
        ) as e:
            return _refusal(e)

    return wrapped


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest("请求格式不正确，请刷新页面后重试")
    return data


def _hex(data: dict, name: str, *, optional: bool = False) -> bytes | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 512:
        raise BadRequest("请求格式不正确，请刷新页面后重试")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadRequest("请求格式不正确，请刷新页面后重试") from None


def _session_json(session, **extra) -> dict:
    """What the phone needs to run a session: its token, e, and the message e is the digest of
    (so the phone can check e itself)."""
    return {"token": session.token, "digest": session.digest, **extra}


def _key_share(data: dict):
    key_share_id = data.get("key_share")
    if not isinstance(key_share_id, str):
        raise BadRequest("请求格式不正确，请刷新页面后重试")
    return services.key_share_of(current_user, key_share_id)


BAD_PAGE_URL = "页面地址不正确，请刷新页面后重试"


def _phone_page_url(url: str) -> str:
    """`url` if it is one of this portal's phone pages (under /m/ at PORTAL_PUBLIC_URL, the
    address phones reach the portal at), without its #fragment; else BadRequest. The portal signs
    wx.config only for its own pages: a signature is good for any page of the trusted domain."""
    public = urlsplit(current_app.config["PORTAL_PUBLIC_URL"])
    prefix = public.path.rstrip("/") + "/m/"
    url = url.split("#", 1)[0]
    try:
        page = urlsplit(url)
    except ValueError:
        raise BadRequest(BAD_PAGE_URL) from None
    if (
        len(url) > 2048
        or (page.scheme, page.netloc) != (public.scheme, public.netloc)
        or not page.path.startswith(prefix)
        or page.path.startswith(prefix + "api/")
        or any(part in {".", ".."} for part in page.path.split("/"))
    ):
        raise BadRequest(BAD_PAGE_URL)
    return url  # as the page has it: WeCom signs the very string, so it is not normalised


@bp.get("/m/api/wxwork/jsapi-config")
@_limit("COSIGN_WXWORK_RATE_LIMIT")
@api
def api_wxwork_jsapi_config():
    """?url=<the phone page> → what wx.config needs for it: {appId, timestamp, nonceStr, signature}."""
    if not wxwork.configured():
        return jsonify(error="未配置企业微信"), 404
    url = _phone_page_url(request.args.get("url", ""))
    try:
        return jsonify(wxwork.jsapi_config(url))
    except wxwork.WxWorkError:  # logged by wxwork with WeCom's errcode
        return jsonify(error="企业微信服务暂时不可用，请稍后重试"), 502


@bp.post("/m/api/activate")
@_limit("COSIGN_ACTIVATE_RATE_LIMIT")
@api
def api_activate():
    """{code, p1, proof, verifier} → the key share, P, the device secret and the CSR session."""
    data = _body()
    code = data.get("code")
    if not isinstance(code, str):
        raise BadRequest("请输入激活码")
    activation = services.activate(current_user, code, _hex(data, "p1"), _hex(data, "proof"), _hex(data, "verifier"))
    return jsonify(
        key_share=activation.key_share.public_id,
        public_key=activation.public_key.hex(),
        device_secret=activation.device_secret.hex(),
        session=_csr_session_json(activation.key_share, activation.session),
    ), 201


def _csr_session_json(key_share, session) -> dict:
    return _session_json(session, message=services.csr_info(key_share).hex())


@bp.post("/m/api/activate/<key_share_id>/csr")
@_limit("COSIGN_ACTIVATE_RATE_LIMIT")
@api
def api_csr_session(key_share_id):
    """A new CSR session for a key share that has no certificate yet (the retry)."""
    key_share = services.uncertified_key_share(current_user, key_share_id)
    session = services.open_csr_session(current_user, key_share)
    return jsonify(session=_csr_session_json(key_share, session))


@bp.post("/m/api/unlock")
@_limit("COSIGN_PIN_RATE_LIMIT")
@api
def api_unlock():
    """{key_share, verifier?} → the device secret: after a correct verifier, or without one
    inside the auto-sign window (else 403 pin_required)."""
    data = _body()
    key_share = _key_share(data)
    device_secret = services.unlock(current_user, key_share, _hex(data, "verifier", optional=True))
    key_share = services.key_share_of(current_user, key_share.public_id)
    ends = services.window_ends_at(key_share)
    return jsonify(
        device_secret=device_secret.hex(),
        auto_sign_minutes=key_share.auto_sign_minutes,
        window_ends_at=ends.isoformat(timespec="seconds") + "Z" if ends else None,
    )


@bp.post("/m/api/pin")
@_limit("COSIGN_PIN_RATE_LIMIT")
@api
def api_change_pin():
    """{key_share, old_verifier, new_verifier}: the new verifier replaces the old one."""
    data = _body()
    key_share = _key_share(data)
    services.change_pin(current_user, key_share, _hex(data, "old_verifier"), _hex(data, "new_verifier"))
    return jsonify(ok=True)


@bp.post("/m/api/sign-requests/<token>/start")
@_limit("COSIGN_SIGN_RATE_LIMIT")
@api
def api_start_signing(token):
    """确认签署: the sessions to run, one per entry not yet signed (none once done)."""
    run = services.start_signing(current_user, token)
    sessions = [
        _session_json(session, index=index, label=label, message=run.request.digests[index]["message"])
        for index, label, session in run.sessions
    ]
    return jsonify(status=run.request.status, sessions=sessions)


@bp.post("/m/api/sign/<token>/answer")
@_limit("COSIGN_SIGN_RATE_LIMIT")
@api
def api_answer(token):
    """{q1, proof} → {r, s2, s3}, each 64 hex digits."""
    data = _body()
    response = services.answer(current_user, token, _hex(data, "q1"), _hex(data, "proof"))
    return jsonify(r=f"{response.r:064x}", s2=f"{response.s2:064x}", s3=f"{response.s3:064x}")


@bp.post("/m/api/sign/<token>/complete")
@_limit("COSIGN_SIGN_RATE_LIMIT")
@api
def api_complete(token):
    """{signature} (DER, hex) → what it completed: the certificate, or the sign request's status."""
    completion = services.complete(current_user, token, _hex(_body(), "signature"))
    body = {"ok": True}
    if completion.certificate is not None:
        cert = completion.certificate
        body["certificate"] = {
            "serial": cert.serial,
            "subject": cert.subject_dn,
            "not_after": cert.not_after.isoformat(timespec="seconds") + "Z",
        }
    if completion.sign_request is not None:
        body["sign_request"] = {"status": completion.sign_request.status}
    return jsonify(body)
