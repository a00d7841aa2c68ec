"""单方文件签署 pages: the task list and upload, the signing board, 立即签署 and its progress,
preview and download of the signed files.

Every task, document and placement is looked up through the single-party services, which only
ever find the person's own (anyone else's public id is a 404). The board's drag-and-drop is a
JavaScript island (static/js/signing-board.js): it reads the document's state as JSON and sends
each change as a form post, answered with the new state; the side panels (盖章统计, the
configured ranges) are HTMX partials that refresh on the `placements-changed` event.
"""

from functools import wraps
from urllib.parse import quote

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import htmx, storage
from portal.cosign.views import realname_url, sign_request_url
from portal.pdf.placement import MM
from portal.qr import qr_svg
from portal.seals.models import SealKind
from portal.signing import previews, single
from portal.signing.documents import UploadRefused
from portal.signing.models import ConversionState, PlacementKind, TaskStatus

bp = Blueprint("signing", __name__)

STATUS_LABELS = {
    TaskStatus.DRAFT: "待签署",
    TaskStatus.IN_PROGRESS: "签署中",
    TaskStatus.COMPLETED: "已完成",
    TaskStatus.VOIDED: "已作废",
}
SEAL_KIND_LABELS = {
    SealKind.PERSONAL_STANDARD: "个人制式签章",
    SealKind.HANDWRITTEN: "手写签名",
    SealKind.SCHOOL: "学校公章",
    SealKind.COLLEGE: "学院公章",
    SealKind.DEPARTMENT: "部门公章",
    SealKind.CONTRACT: "合同专用章",
    SealKind.FINANCE: "财务专用章",
}
PLACEMENT_LABELS = {PlacementKind.SINGLE: "单页", PlacementKind.MULTI_PAGE: "多页盖章", PlacementKind.RIDING: "骑缝章"}


@bp.app_template_filter("task_status")
def task_status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@bp.app_template_filter("seal_type")
def seal_type_label(kind: str) -> str:
    return SEAL_KIND_LABELS.get(kind, kind)


REAL_NAME_FIRST = "签署文件前需要先完成实名认证。"
CERTIFICATE_FIRST = "签署文件前需要先下载协同签名证书：点击右上角【协同签名工具】，用手机扫码下载。"


def _not_ready() -> tuple[str, str] | None:
    """(why, where to go) when the person cannot sign yet; None when they can."""
    missing = single.missing_for_signing(current_user)
    if missing == single.Missing.REAL_NAME:
        return REAL_NAME_FIRST, realname_url() or url_for("home.index")
    if missing == single.Missing.CERTIFICATE:
        return CERTIFICATE_FIRST, url_for("cosign.my_certificate")
    return None


def _not_ready_redirect():
    """Send a person who cannot sign yet where they can fix that, with the reason."""
    blocker = _not_ready()
    if blocker is None:
        return None
    flash(blocker[0], "error")
    return redirect(blocker[1], 303)


def _owned(view):
    """Resolve <task_id> (and <document_id>, <placement_id>) to the person's own, or 404."""

    @wraps(view)
    def wrapper(task_id, **kwargs):
        try:
            task = single.own_task(current_user, task_id)
            if "document_id" in kwargs:
                kwargs["document"] = single.task_document(task, kwargs.pop("document_id"))
            if "placement_id" in kwargs:
                kwargs["placement"] = single.task_placement(task, kwargs.pop("placement_id"))
        except single.SigningError:
            abort(404)
        return view(task, **kwargs)

    return login_required(wrapper)


# ---------------------------------------------------------------------------------------------
# The list and the upload


@bp.get("/single")
@login_required
def single_index():
    """单方文件签署: the person's tasks (search, pagination) and 【上传文件】."""
    query = request.args.get("q", "").strip()
    page = request.args.get("page", 1, type=int)
    return htmx.render(
        "signing/single_index.html",
        "signing/_task_list.html",
        listing=single.list_tasks(current_user, query, page),
        q=query,
        blocker=_not_ready(),
    )


@bp.post("/single/upload")
@login_required
def upload():
    """【上传文件】: one file or several, checked at once; the board opens on success."""
    blocked = _not_ready_redirect()
    if blocked:
        return blocked
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files") if f and f.filename]
    try:
        task = single.start_task(current_user, files)
    except (UploadRefused, single.SigningError) as e:
        listing = single.list_tasks(current_user)
        context = {"listing": listing, "q": "", "upload_error": e.message_zh, "blocker": None}
        return render_template("signing/single_index.html", **context), 422
    return redirect(url_for("signing.board", task_id=task.public_id), 303)


# ---------------------------------------------------------------------------------------------
# The signing board


@bp.get("/single/<task_id>")
@_owned
def board(task):
    """The signing board of a task in progress; a completed task shows its signed files."""
    documents = single.task_documents(task)
    if task.status == TaskStatus.COMPLETED:
        return render_template("signing/done.html", task=task, documents=documents)
    blocked = _not_ready_redirect()
    if blocked:
        return blocked
    current = next((d for d in documents if d.public_id == request.args.get("doc")), documents[0])
    return render_template(
        "signing/board.html",
        task=task,
        documents=documents,
        document=current,
        seals=single.usable_seals(current_user),
        mm=MM,
        **_sign_panel_context(task),
        **_side_panel_context(task),
    )


@bp.get("/single/<task_id>/documents/<document_id>/conversion")
@_owned
def conversion(task, document):
    """The Word conversion's progress; when it has finished the board reloads to show the pages."""
    response = current_app.make_response(render_template("signing/_conversion.html", task=task, document=document))
    if document.conversion_state == ConversionState.DONE and htmx.is_htmx():
        response.headers["HX-Refresh"] = "true"
    return response


@bp.get("/single/<task_id>/documents/<document_id>/pages/<int:page>.jpg")
@_owned
def page_image(task, document, page):
    """A page of the document's current revision (the board, thumbnails, the signed preview)."""
    width = request.args.get("w", previews.PAGE, type=int)
    if document.current_blob is None or not 1 <= page <= document.page_count or width not in previews.WIDTHS:
        abort(404)
    data, media_type = previews.page_preview(document.current_blob, page, width)
    response = current_app.response_class(data, mimetype=media_type)
    # The URL carries the revision (?r=), so a cached page never shows a stale revision.
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.get("/signing/seals/<seal_id>/image")
@login_required
def seal_image(seal_id):
    """A seal's picture, for someone who may place it or has placed it on their own files."""
    try:
        seal = single.visible_seal(current_user, seal_id)
    except single.NotFound:
        abort(404)
    response = current_app.response_class(storage.load(seal.image_blob), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=86400, immutable"
    return response


def _state(document, status: int = 200, error: str = ""):
    """The document's board state: pages, placements and the impressions each will draw."""
    placements = []
    usable = {seal.id for seal in single.usable_seals(current_user)}
    for row, impressions in single.placement_impressions(document):
        placements.append(
            {
                "id": row.public_id,
                "seal": row.seal.public_id,
                "seal_name": row.seal.name,
                "seal_type": seal_type_label(row.seal.kind),
                "usable": row.seal_id in usable,  # False once its grant is revoked: to be removed
                "kind": row.kind,
                "kind_label": PLACEMENT_LABELS[row.kind],
                "page": row.page,
                "page_range": row.page_range,
                "x": row.x,
                "y": row.y,
                "width": row.width,
                "height": row.height,
                "riding_rule": row.riding_rule,
                "edge": row.edge,
                "impressions": [
                    {"page": i.page, "rect": list(i.visible_rect), "fraction": list(i.fraction)} for i in impressions
                ],
            }
        )
    body = {"document": document.public_id, "pages": document.page_sizes, "placements": placements}
    if error:
        body["error"] = error
    response = jsonify(body)
    response.status_code = status
    return response


@bp.get("/single/<task_id>/documents/<document_id>/state")
@_owned
def state(task, document):
    return _state(document)


def _number(name: str, default: float | None = None) -> float:
    try:
        return float(request.form[name])
    except (KeyError, ValueError):
        if default is not None:
            return default
        raise single.SigningError("盖章位置无效，请重新拖放印章") from None


@bp.post("/single/<task_id>/documents/<document_id>/placements")
@_owned
def add_placement(task, document):
    """Drop a seal on a page (单页), or confirm a 多页盖章 / 骑缝章 configured on a sample page."""
    try:
        seal = single.usable_seal(current_user, request.form.get("seal", ""))
        page_range = request.form.get("page_range", "")
        if request.form.get("range_mode") == "all":
            page_range = "all"
        single.add_placement(
            current_user,
            document,
            seal,
            kind=request.form.get("kind", PlacementKind.SINGLE),
            page=int(_number("page", 1)),
            x=_number("x", 0.0),
            y=_number("y"),
            page_range=page_range,
            riding_rule=request.form.get("riding_rule", "continuous"),
            edge=request.form.get("edge", "right"),
        )
    except single.SigningError as e:
        return _state(document, 422, e.message_zh)
    return _state(document)


@bp.post("/single/<task_id>/placements/<placement_id>/move")
@_owned
def move_placement(task, placement):
    document = placement.document
    try:
        page = request.form.get("page", type=int)
        single.move_placement(current_user, placement, x=_number("x", 0.0), y=_number("y"), page=page)
    except single.SigningError as e:
        return _state(document, 422, e.message_zh)
    return _state(document)


@bp.post("/single/<task_id>/placements/<placement_id>/delete")
@_owned
def remove_placement(task, placement):
    document = placement.document
    try:
        single.remove_placement(current_user, placement)
    except single.SigningError as e:
        return _state(document, 422, e.message_zh)
    if htmx.is_htmx():  # 删除 in the side panel's list
        return _side_panel(task)
    return _state(document)


@bp.post("/single/<task_id>/placements/clear")
@_owned
def clear_placements(task):
    """一键删除 (the page asked for confirmation first)."""
    try:
        single.remove_all_placements(current_user, task)
    except single.SigningError as e:
        return _side_panel(task, error=e.message_zh, status=422)
    return _side_panel(task)


@bp.post("/single/<task_id>/documents/<document_id>/riding/delete")
@_owned
def remove_riding(task, document):
    """【删除骑缝章】: every riding seam on this file."""
    try:
        single.remove_riding_seams(current_user, document)
    except single.SigningError as e:
        return _state(document, 422, e.message_zh)
    return _state(document)


def _side_panel_context(task) -> dict:
    return {
        "stats": single.seal_statistics(task),
        "placed": [(d, single.placements_of(d)) for d in single.task_documents(task)],
    }


def _side_panel(task, error: str = "", status: int = 200):
    """盖章统计 and the configured multi-page ranges and riding seams of every file."""
    response = current_app.make_response(
        (
            render_template("signing/_side_panel.html", task=task, error=error, **_side_panel_context(task)),
            status,
        )
    )
    response.headers["HX-Trigger"] = "placements-changed"
    return response


@bp.get("/single/<task_id>/summary")
@_owned
def side_panel(task):
    response = _side_panel(task)
    del response.headers["HX-Trigger"]  # a refresh, not a change: do not set off another one
    return response


# ---------------------------------------------------------------------------------------------
# 立即签署 and what follows


def _sign_panel_context(task) -> dict:
    """The progress of 立即签署, with the QR code while the phone is awaited."""
    progress = single.progress(current_user, task)
    context = {"progress": progress}
    if progress.state == "waiting":
        link = sign_request_url(progress.request)
        context.update(sign_link=link, sign_qr=qr_svg(link, "签署确认二维码"))
    return context


def _progress_panel(task, error: str = "", status: int = 200):
    context = _sign_panel_context(task)
    progress = context["progress"]
    response = current_app.make_response(
        (render_template("signing/_sign_panel.html", task=task, error=error, **context), status)
    )
    if progress.state == "done" and htmx.is_htmx():
        response.headers["HX-Refresh"] = "true"  # the board becomes the completed task's page
    return response


@bp.post("/single/<task_id>/sign")
@_owned
def sign(task):
    """立即签署 (also 重试): the SignRequest's QR code; a second click returns the same request."""
    try:
        single.request_signature(current_user, task)
    except single.CertificateRequired as e:
        return _progress_panel(task, e.message_zh, 409)
    except single.SigningError as e:
        return _progress_panel(task, e.message_zh, 422)
    return _progress_panel(task)


@bp.post("/single/<task_id>/sign/cancel")
@_owned
def cancel_sign(task):
    """取消签署 (the phone has not started) or 返回修改 (the signing job failed): the seals can be
    changed again, and signing needs a new confirmation."""
    try:
        single.cancel_request(current_user, task)
    except single.SigningError as e:
        return _progress_panel(task, e.message_zh, 409)
    return _progress_panel(task)


@bp.get("/single/<task_id>/progress")
@_owned
def progress(task):
    """The self-updating panel: waiting → signing → done, or failed with 重试."""
    return _progress_panel(task)


@bp.get("/single/<task_id>/preview")
@_owned
def preview(task):
    """【预览】: every page of the task's files as they are now (signed, once completed)."""
    return render_template("signing/preview.html", task=task, documents=single.task_documents(task))


@bp.get("/single/<task_id>/documents/<document_id>/download")
@_owned
def download(task, document):
    """【下载】: the signed PDF, named after the upload with _已签署.pdf."""
    try:
        data = single.signed_file(current_user, document)
    except single.SigningError:
        abort(404)
    response = current_app.response_class(data, mimetype="application/pdf")
    name = single.signed_file_name(document.name)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response
