import shutil
from dataclasses import dataclass

from flask import Blueprint, current_app, jsonify, render_template
from flask_login import login_required

from portal import storage
from portal.db import database
from portal.jobs import redis_connection

bp = Blueprint("home", __name__)


@dataclass(frozen=True)
class Module:
    title: str
    endpoint: str  # the module's entry view; until it exists the module shows as 暂未开放
    summary: str
    icon: str


# The four modules of the manual (二(一)), in its order.
MODULES = (
    Module(
        "单方文件签署",
        "signing.single_index",
        "仅需加盖学校公章、部门公章或个人签名的文件，上传后拖拽盖章即可签署。",
        "single",
    ),
    Module(
        "校内多人会签",
        "signing.countersign_index",
        "会议纪要、评审文件等需要校内多人依次或同时签名的场景。",
        "countersign",
    ),
    Module(
        "多方签署",
        "signing.multiparty_index",
        "多个部门、外部单位或个人共同签署同一文件，如对外采购合同。",
        "multiparty",
    ),
    Module(
        "在线验证", "verification.index", "上传已签署文件，验证签章有效性、是否被篡改及吊销状态。", "verify"
    ),
)


def available_modules():
    """Each module with whether its feature is built (its endpoint is registered)."""
    return [(m, m.endpoint in current_app.view_functions) for m in MODULES]


@bp.app_context_processor
def _modules():
    return {"portal_modules": available_modules}


@bp.route("/")
@login_required
def index():
    return render_template("home/index.html", modules=available_modules())


@bp.route("/healthz")
def healthz():
    """Database, Redis (when configured) and storage, each 'ok' or the error; 503 if any fails."""
    checks = {}
    try:
        database.execute_sql("SELECT 1").fetchone()
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
    conn = redis_connection()
    if conn is None:
        checks["redis"] = "not configured (jobs run inline)"
    else:
        try:
            conn.ping()
            checks["redis"] = "ok"
        except Exception as e:
            checks["redis"] = f"error: {type(e).__name__}"
    try:
        storage.blob_store().check()
        checks["storage"] = "ok"
    except Exception as e:
        checks["storage"] = f"error: {type(e).__name__}"
    # Informational: without LibreOffice, PDF works and Word uploads are refused with a reason.
    checks["word_conversion"] = "ok" if shutil.which("soffice") else "not available (LibreOffice not installed)"
    healthy = all(v == "ok" or v.startswith("not ") for v in checks.values())
    return jsonify(status="ok" if healthy else "error", checks=checks), 200 if healthy else 503
