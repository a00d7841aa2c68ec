"""E-Sign Portal (电子签一体化平台)."""

import logging
from datetime import UTC
from zoneinfo import ZoneInfo

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError

from portal.config import ROOT, Config

SHANGHAI = ZoneInfo("Asia/Shanghai")

ERRORS = {
    400: ("请求无效", "请求的内容不完整或格式不正确，请返回上一页重试。"),
    403: ("没有权限", "您没有权限查看或操作此内容。如需使用，请联系管理员。"),
    404: ("页面不存在", "您访问的页面不存在或已被删除，请检查链接是否正确。"),
    405: ("操作不允许", "此页面不支持该操作。"),
    413: ("文件过大", "上传的文件超过了大小限制。"),
    429: ("操作过于频繁", "尝试次数过多，请稍后再试。"),
    500: ("系统繁忙", "服务器处理请求时出现错误，已记录。请稍后重试。"),
}


def create_app(config: Config | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update((config or Config()).as_dict())

    from portal import db, jobs, security, storage

    db.init_app(app)
    storage.init_app(app)
    jobs.init_app(app)
    security.init_app(app)

    from portal.accounts.realname_views import bp as realname_bp
    from portal.accounts.views import bp as accounts_bp
    from portal.certificates.views import bp as certificates_bp
    from portal.cosign.views import bp as cosign_bp
    from portal.home.views import bp as home_bp
    from portal.seals.views import bp as seals_bp
    from portal.signing.views import bp as signing_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(realname_bp)
    app.register_blueprint(certificates_bp)
    app.register_blueprint(cosign_bp)
    app.register_blueprint(seals_bp)
    app.register_blueprint(signing_bp)

    _init_templates(app)
    _init_errors(app)
    _init_cli(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app


def _init_templates(app: Flask) -> None:
    @app.template_filter("local_time")
    def local_time(value, fmt="%Y-%m-%d %H:%M"):
        """Stored UTC → Asia/Shanghai for display."""
        if value is None:
            return ""
        return value.replace(tzinfo=UTC).astimezone(SHANGHAI).strftime(fmt)

    @app.context_processor
    def _globals():
        return {"school_name": app.config["SCHOOL_NAME"], "demo_mode": app.config["DEMO_MODE"]}


def _init_errors(app: Flask) -> None:
    def render_error(code: int, message: str | None = None):
        title, default = ERRORS.get(code, ERRORS[500])
        template = "errors/_error.html" if request.headers.get("HX-Request") else "errors/error.html"
        try:
            return render_template(template, code=code, title=title, message=message or default), code
        except Exception:  # the layout itself failed (e.g. database down): plain text, still Chinese
            app.logger.exception("error page could not render")
            return f"{code} {title}：{message or default}", code, {"Content-Type": "text/plain; charset=utf-8"}

    for code in ERRORS:
        if code != 500:
            app.register_error_handler(code, lambda e, code=code: render_error(code))

    @app.errorhandler(CSRFError)
    def _csrf(e):
        app.logger.warning("CSRF refused: %s", e.description)
        return render_error(400, "页面已过期或来源无法确认，请刷新页面后重试。")

    @app.errorhandler(500)
    def _server_error(e):
        return render_error(500)


def _init_cli(app: Flask) -> None:
    from portal import audit, demo, jobs, migrate
    from portal.certificates import keystore
    from portal.certificates.cli import ca_cli, orgs_cli
    from portal.signing.cli import cli as pdf_cli

    for group in (migrate.cli, demo.cli, audit.cli, jobs.cli, keystore.cli, ca_cli, orgs_cli, pdf_cli):
        app.cli.add_command(group)
