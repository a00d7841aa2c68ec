"""Local login: hashed passwords, one generic error, rate limits, CSRF, secure cookies."""

import pytest
from helpers import csrf_token, login

from portal.accounts.models import User
from portal.audit.models import Event


def test_the_login_page_speaks_chinese(client):
    html = client.get("/login").get_data(as_text=True)
    assert "<h1>登录</h1>" in html and "用户名" in html and "密码" in html


def test_a_demo_user_logs_in_and_sees_their_name(client, demo):
    response = login(client, "zhangwei", "demo1234")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "张伟" in client.get("/").get_data(as_text=True)


def test_login_is_recorded_in_the_trail(client, demo):
    login(client)
    user = User.get(User.username == "zhangwei")
    assert Event.get(Event.action == "accounts.login").actor_id == user.id
    assert user.last_login_at is not None


def test_passwords_are_stored_hashed(app, demo):
    user = User.get(User.username == "zhangwei")
    assert "demo1234" not in user.password_hash and user.password_hash.startswith("pbkdf2:")


@pytest.mark.parametrize(("username", "password"), [("zhangwei", "wrong"), ("nobody", "demo1234"), ("", "")])
def test_a_failed_login_gets_one_generic_error(client, demo, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_demo_passwords_work_only_in_demo_mode(make_app):
    from portal import demo

    app = make_app(DEMO_MODE=False)
    demo.seed()
    assert login(app.test_client(), "zhangwei", "demo1234").status_code == 401


def test_a_disabled_account_cannot_log_in(client, demo):
    User.update(is_active=False).where(User.username == "zhangwei").execute()
    assert login(client).status_code == 401


def test_repeated_login_attempts_are_rate_limited(make_app):
    from portal import demo

    client = make_app(LOGIN_RATE_LIMIT="3 per minute").test_client()
    demo.seed()
    statuses = [login(client, "zhangwei", "wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert "尝试次数过多" in login(client, "zhangwei", "demo1234").get_data(as_text=True)


def test_a_post_without_csrf_token_is_refused(client, demo):
    response = client.post("/login", data={"username": "zhangwei", "password": "demo1234"})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_htmx_requests_carry_the_token_in_a_header(client, demo):
    login(client)
    html = client.get("/").get_data(as_text=True)
    assert 'hx-headers:inherited=\'{"X-CSRFToken": "' in html
    assert client.post("/logout").status_code == 400
    token = csrf_token(client, "/")
    assert client.post("/logout", headers={"X-CSRFToken": token, "HX-Request": "true"}).status_code == 303
    assert client.get("/").status_code == 302


def test_logout_needs_a_post_and_ends_the_session(client, demo):
    login(client)
    assert client.get("/logout").status_code == 405
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_samesite(client, demo):
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_only_redirects_within_the_portal(client, demo):
    token = csrf_token(client)
    data = {"username": "zhangwei", "password": "demo1234", "csrf_token": token}
    response = client.post("/login?next=//evil.example/x", data=data)
    assert response.headers["Location"] == "/"


def test_login_returns_to_the_page_asked_for(client, demo):
    assert client.get("/healthz").status_code == 200
    response = client.get("/")
    assert response.headers["Location"] == "/login?next=%2F"
    token = csrf_token(client)
    data = {"username": "zhangwei", "password": "demo1234", "csrf_token": token}
    response = client.post("/login?next=/healthz", data=data)
    assert response.headers["Location"] == "/healthz"
