"""The shell: home page with the manual's four modules, error pages, health check."""

from flask import Blueprint
from helpers import login

MODULES = ["单方文件签署", "校内多人会签", "多方签署", "在线验证"]


def test_the_home_page_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_home_page_shows_the_four_modules_of_the_manual(client, demo):
    login(client)
    html = client.get("/").get_data(as_text=True)
    positions = [html.index(f'<span class="module-title">{m}</span>') for m in MODULES]
    assert positions == sorted(positions)
    assert "示范大学" in html and "电子签一体化平台" in html


def test_a_module_not_built_yet_is_shown_as_unavailable_not_linked(client, demo):
    login(client)
    html = client.get("/").get_data(as_text=True)
    modules = html.split('id="modules"')[1].split("</ul>")[0]
    assert html.count("暂未开放</span>") == 3  # 单方文件签署 is built; the other three are not yet
    assert 'class="module-card is-disabled"' in html
    assert modules.count("<a href") == 1 and '<a href="/single" class="module-link">' in modules


def test_a_module_becomes_a_link_once_its_page_exists(make_app):
    app = make_app()
    verification = Blueprint("verification", __name__)
    verification.add_url_rule("/verify", "index", lambda: "在线验证")
    app.register_blueprint(verification)
    from portal import demo

    demo.seed()
    client = app.test_client()
    login(client)
    html = client.get("/").get_data(as_text=True)
    assert '<a href="/verify" class="module-link">' in html
    assert html.count("暂未开放</span>") == 2


def test_a_missing_page_gets_a_chinese_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "页面不存在" in response.get_data(as_text=True)


def test_a_forbidden_page_gets_a_chinese_403(app, client):
    from flask import abort

    app.add_url_rule("/secret", "secret", lambda: abort(403))
    response = client.get("/secret")
    assert response.status_code == 403 and "没有权限" in response.get_data(as_text=True)


def test_a_server_error_gets_a_chinese_500_without_details(app, client):
    def broken():
        raise RuntimeError("database password is hunter2")

    app.add_url_rule("/broken", "broken", broken)
    app.testing = False  # let the error handler answer instead of re-raising
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/broken")
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "系统繁忙" in html and "hunter2" not in html


def test_an_htmx_error_gets_a_fragment(client):
    response = client.get("/no-such-page", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and html.startswith('<section class="card error-card" id="error">')


def test_health_reports_database_storage_and_unconfigured_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    checks = response.json["checks"]
    assert (checks["database"], checks["storage"]) == ("ok", "ok")
    assert checks["redis"] == "not configured (jobs run inline)"
    assert checks["word_conversion"] in {"ok", "not available (LibreOffice not installed)"}


def test_health_reports_redis_when_configured(make_app, redis_url):
    response = make_app(REDIS_URL=redis_url).test_client().get("/healthz")
    assert response.json["checks"]["redis"] == "ok"


def test_health_fails_when_redis_is_down(make_app):
    response = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("error")


def test_health_fails_when_storage_cannot_be_written(app, client, tmp_path):
    from portal.storage import LocalBlobStore

    app.extensions["blob_store"] = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "blobs").rmdir()
    (tmp_path / "blobs").write_text("a file where the folder should be")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["storage"].startswith("error")
