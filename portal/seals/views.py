"""个人设置: a person's seals, the default seal, and handwritten signatures (扫码手写 or 图片上传).

Two audiences. The PC pages under /me/seals are for the logged-in person and only ever touch their
own seals (the services look seals up among the person's own, so another person's public id is a 404).
The phone page /m/pad/<code> needs no login: the QR code carries a one-time code (OneTimeCode,
purpose "handwriting", 10 minutes), and that code alone authorises exactly one drawing for the
person it was issued to. The phone still sends a CSRF token: the pad page puts one in its session
cookie like any other page, so a third-party site cannot post into someone's open link.
"""

import base64

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import htmx, storage
from portal.pdf.handwriting import SignatureImageError
from portal.qr import qr_svg
from portal.seals import services
from portal.seals.models import SealKind
from portal.security import limiter

bp = Blueprint("seals", __name__)

KIND_LABELS = {SealKind.PERSONAL_STANDARD: "个人制式签章", SealKind.HANDWRITTEN: "手写签名"}
# Decoding and cleaning a 10 MB photo takes a fraction of a second of CPU: enough for a person, not for
# a loop.
UPLOAD_RATE_LIMIT = "20 per minute"


@bp.app_template_filter("seal_kind")
def seal_kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def pad_url(code: str) -> str:
    """The link the phone opens. PORTAL_PUBLIC_URL is how the portal is reached from outside, which
    is what a phone needs; the PC's own address may be 127.0.0.1 or an internal name."""
    return current_app.config["PORTAL_PUBLIC_URL"] + url_for("seals.pad", code=code)


def _settings(status: int = 200, **context):
    """The 个人设置 page; context may carry the handwriting widget's state or an upload's message."""
    context.setdefault("seals", services.personal_seals(current_user))
    has_handwritten = any(s.kind == SealKind.HANDWRITTEN for s in context["seals"])
    # The 手写签名 panel starts open until the person has one, or when it has something to show.
    context.setdefault("handwriting_open", not has_handwritten or "hw" in context or "upload_error" in context)
    return render_template("seals/settings.html", **context), status


def _widget(status: services.HandwritingStatus) -> dict:
    link = pad_url(status.code.code)
    qr = qr_svg(link, "手写签名二维码") if status.state == "waiting" else None
    return {"hw": status, "pad_link": link, "pad_qr": qr}


def _fragments(*parts: str, status: int = 200):
    """HTMX answer of one partial plus out-of-band ones (each partial keeps its single root)."""
    response = current_app.response_class("".join(parts), status)
    response.vary.add("HX-Request")
    return response


def _seal_list_oob() -> str:
    """The seal list, swapped out of band where another region's answer added a seal."""
    return render_template("seals/_seal_list.html", seals=services.personal_seals(current_user), oob=True)


@bp.get("/me/seals")
@login_required
def settings():
    """个人设置: the person's active seals and the 手写签名 panel."""
    return _settings()


@bp.get("/me/seals/<public_id>/image")
@login_required
def image(public_id: str):
    """A seal's PNG, for its owner only. A seal's image never changes (a new drawing is a new seal),
    so the browser may keep it."""
    try:
        seal = services.own_seal(current_user, public_id, active_only=False)
    except services.SealNotFound:
        abort(404)
    response = current_app.response_class(storage.load(seal.image_blob), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


@bp.post("/me/seals/<public_id>/default")
@login_required
def make_default(public_id: str):
    """设为默认: one default at a time. HTMX gets the list back; a plain form post, the page."""
    try:
        seal = services.set_default_seal(current_user, public_id)
    except services.SealNotFound:
        abort(404)
    if htmx.is_htmx():
        return htmx.render(
            "seals/settings.html", fragment="seals/_seal_list.html", seals=services.personal_seals(current_user)
        )
    flash(f"已将“{seal_kind_label(seal.kind)}”设为默认签章。", "success")
    return redirect(url_for("seals.settings"), 303)


@bp.post("/me/seals/<public_id>/delete")
@login_required
def delete(public_id: str):
    """删除 a handwritten signature (disabled, not erased: placements may refer to it)."""
    try:
        services.disable_handwritten_seal(current_user, public_id)
    except services.SealNotFound:
        abort(404)
    except services.SealError:  # the standard name seal cannot be deleted; the page offers no button
        abort(400)
    if htmx.is_htmx():
        return htmx.render(
            "seals/settings.html", fragment="seals/_seal_list.html", seals=services.personal_seals(current_user)
        )
    flash("手写签名已删除。", "success")
    return redirect(url_for("seals.settings"), 303)


@bp.post("/me/seals/handwriting")
@login_required
def handwriting_start():
    """微信扫码在线手写: issue a one-time link and show its QR code, which then polls for the drawing."""
    status = services.HandwritingStatus(services.issue_handwriting_code(current_user), "waiting")
    if htmx.is_htmx():
        return render_template("seals/_handwriting_qr.html", **_widget(status))
    return _settings(**_widget(status))


@bp.get("/me/seals/handwriting/<code>/status")
@login_required
def handwriting_status(code: str):
    """The self-polling partial: waiting (polls again), done (the new seal, and the list refreshed
    out of band) or expired. Without HTMX, the whole page in that state."""
    try:
        status = services.handwriting_status(current_user, code)
    except services.SealNotFound:
        abort(404)
    if not htmx.wants_fragment():
        return _settings(**_widget(status))
    parts = [render_template("seals/_handwriting_status.html", **_widget(status))]
    if status.state == "done":
        parts.append(_seal_list_oob())
    return _fragments(*parts)


@bp.post("/me/seals/upload")
@login_required
@limiter.limit(UPLOAD_RATE_LIMIT)
def upload():
    """图片上传: a photo or scan of the signature becomes a handwritten seal (background removed)."""
    file = request.files.get("image")
    data = file.read() if file else b""
    error = None
    if not data:
        error = "请选择手写签名图片。"
    else:
        try:
            services.create_handwritten_seal(current_user, data, source="upload")
        except (SignatureImageError, services.SealError) as e:
            error = str(e)
    if htmx.is_htmx():
        form = render_template("seals/_handwriting_upload.html", upload_error=error, uploaded=error is None)
        if error:
            return _fragments(form, status=422)
        return _fragments(form, _seal_list_oob())
    if error:
        return _settings(422, upload_error=error)
    flash("手写签名已上传。", "success")
    return redirect(url_for("seals.settings"), 303)


@bp.route("/m/pad/<code>", methods=["GET", "POST"])
@limiter.limit(UPLOAD_RATE_LIMIT, methods=["POST"])
def pad(code: str):
    """The phone's drawing page (opened from the QR code, no login) and its upload. The POST comes from
    static/js/signature-pad.js and gets HTML back: the finished page's #pad on success, or the
    #pad-message to show above the canvas."""
    try:
        owner = services.handwriting_code(code).user
    except services.HandwritingCodeInvalid as e:
        if request.method == "POST":
            return render_template("seals/_pad_message.html", message=str(e)), 410
        return _pad_page(render_template("seals/pad.html", invalid=str(e)), 410 if e.state != "unknown" else 404)
    if request.method == "GET":
        return _pad_page(render_template("seals/pad.html", owner=owner, code=code), 200)
    file = request.files.get("image")
    try:
        seal = services.submit_handwriting(code, file.read() if file else b"")
    except services.HandwritingCodeInvalid as e:  # used or expired while the person was drawing
        return render_template("seals/_pad_message.html", message=str(e)), 410
    except (SignatureImageError, services.SealError) as e:
        return render_template("seals/_pad_message.html", message=str(e)), 422
    # The phone has no login to fetch the image with, so the result comes inline.
    preview = base64.b64encode(storage.load(seal.image_blob)).decode()
    return render_template("seals/_pad_done.html", owner=owner, seal=seal, preview=preview)


def _pad_page(body: str, status: int):
    response = current_app.response_class(body, status)
    # The code is in the URL: keep it out of caches and out of Referer headers.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
