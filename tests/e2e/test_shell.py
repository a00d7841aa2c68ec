"""In Chromium, at a phone's 375 px and a desktop's 1440 px: log in, see the modules, log out."""

import pytest

pytestmark = pytest.mark.e2e

WIDTHS = {"phone": 375, "desktop": 1440}


def fits_width(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.mark.parametrize("device", WIDTHS)
def test_a_user_logs_in_sees_the_modules_and_logs_out(live_server, browser, screenshot, device):
    page = browser.new_page(viewport={"width": WIDTHS[device], "height": 800})
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")
    assert fits_width(page)
    screenshot(page, f"login-{device}")

    page.fill("input[name=username]", "zhangwei")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator(".form-error").inner_text() == "用户名或密码错误"

    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    assert page.locator("h1").inner_text() == "您好，张伟"
    titles = page.locator(".module-title").all_inner_texts()
    assert titles == ["单方文件签署", "校内多人会签", "多方签署", "在线验证"]
    assert page.evaluate("typeof window.htmx") == "object"  # the vendored htmx is served
    assert fits_width(page)
    screenshot(page, f"home-{device}")

    page.click(".user-menu summary")
    screenshot(page, f"menu-{device}")
    page.click("text=退出登录")
    page.wait_for_url(live_server + "/login")
    assert "您已安全退出" in page.content()
    page.close()


def test_the_error_page_fits_a_phone(live_server, browser, screenshot):
    page = browser.new_page(viewport={"width": 375, "height": 700})
    response = page.goto(live_server + "/no-such-page")
    assert response.status == 404 and "页面不存在" in page.content()
    assert fits_width(page)
    screenshot(page, "404-phone")


def test_htmx_posts_carry_the_csrf_token_from_the_body(app, live_server, browser, tmp_path):
    """htmx 4 inherits hx-headers only when marked :inherited; a POST without the token is refused."""
    from flask import render_template_string
    from flask_login import login_required

    page_html = (
        '{% extends "layout.html" %}{% block content %}'
        '<button id="go" hx-post="/_e2e/echo" hx-target="#out">发送</button><div id="out"></div>'
        "{% endblock %}"
    )
    app.add_url_rule("/_e2e/page", "e2e_page", login_required(lambda: render_template_string(page_html)))
    app.add_url_rule("/_e2e/echo", "e2e_echo", lambda: "<p>已收到</p>", methods=["POST"])

    page = browser.new_page()
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "zhangwei")
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    page.goto(live_server + "/_e2e/page")
    page.click("#go")
    page.wait_for_selector("#out p")
    assert page.locator("#out").inner_text() == "已收到"
