"""扫一扫 inside WeChat Work, end to end: the phone page runs the real JS-SDK (@wecom/jssdk from
static/vendor) and the portal signs wx.config with a ticket from a fake WeChat Work API.

No Chromium is the WeChat Work client, so the client's side is played by a stand-in for the
bridge it injects into every page, window.WeixinJSBridge, which the SDK talks to: it records what
the SDK sends (the wx.config parameters, the scanQRCode call) and answers each scan with the next
text of a list, as the client's scanner would. The test then checks that the signature the SDK
presented is the documented SHA-1 over the fake's ticket and the page's address, that a foreign
link is refused with 无法识别的二维码, and that the portal's own link is opened."""

import hashlib
import json
from pathlib import Path

import pytest
from cosign_phone import make_request, make_task
from fakes.wxwork import FakeWxWork
from playwright.sync_api import expect

from portal.accounts.models import User

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "static" / "vendor" / "wecom-jssdk.js"
WXWORK_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/120.0.0.0 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"
)

# The WeChat Work client's bridge, as far as 扫一扫 uses it. `scans` are the texts the scanner
# "reads", one per scanQRCode; with none left the person cancels.
FAKE_BRIDGE = """
(scans) => {
  window.bridgeCalls = [];
  window.WeixinJSBridge = {
    invoke(name, params, callback) {
      window.bridgeCalls.push({ name, params });
      let answer;
      if (name === 'preVerifyJSAPI') answer = { err_msg: 'config:ok' };
      else if (name === 'scanQRCode' && scans.length) answer = { err_msg: 'scanQRCode:ok', resultStr: scans.shift() };
      else if (name === 'scanQRCode') answer = { err_msg: 'scanQRCode:cancel' };
      else answer = { err_msg: `${name}:fail_not_supported` };
      setTimeout(() => callback(answer), 10);
    },
    on() {},
  };
}
"""


@pytest.fixture
def peer():
    with FakeWxWork.running() as peer:
        yield peer


@pytest.fixture
def app(make_app, peer):
    return make_app(**peer.portal_config())


def test_the_scanner_opens_the_portals_link_and_refuses_others(app, live_server, browser, screenshot, peer):
    if not SDK.exists():
        pytest.fail(f"{SDK} is missing: run `make deps` (scripts/vendor-assets.sh)")
    app.config["PORTAL_PUBLIC_URL"] = live_server  # the address the phone reaches, as in production
    user = User.get(User.username == "zhangwei")
    sign_request = make_request(make_task(user, user))
    scans = ["https://evil.example/m/sign/" + sign_request.token, f"{live_server}/m/sign/{sign_request.token}"]

    context = browser.new_context(viewport={"width": 375, "height": 812}, user_agent=WXWORK_UA)
    context.add_init_script(f"({FAKE_BRIDGE})({json.dumps(scans)})")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(live_server + "/m/scan")
    page.fill("input[name=username]", "zhangwei")
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/m/scan")

    # The page opens the scanner by itself; the first text is another site's: refused, no navigation.
    expect(page.locator("[data-error]")).to_contain_text("无法识别的二维码")
    assert page.url == live_server + "/m/scan"
    screenshot(page, "cosign-m-scan-wxwork-refused-phone")

    calls = page.evaluate("window.bridgeCalls")
    config = next(call["params"] for call in calls if call["name"] == "preVerifyJSAPI")
    assert config["verifyAppId"] == FakeWxWork.CORP_ID and config["verifyJsApiList"] == ["scanQRCode"]
    signed = (
        f"jsapi_ticket={peer.ticket}&noncestr={config['verifyNonceStr']}"
        f"&timestamp={config['verifyTimestamp']}&url={live_server}/m/scan"
    )
    assert config["verifySignature"] == hashlib.sha1(signed.encode()).hexdigest()
    scan = next(call["params"] for call in calls if call["name"] == "scanQRCode")
    assert scan["needResult"] == 1 and scan["scanType"] == ["qrCode"]

    # 【扫一扫】 again: the portal's sign request link is opened.
    page.click("[data-scan]")
    page.wait_for_url(f"{live_server}/m/sign/{sign_request.token}")
    assert "实验室安全责任书" in page.content()
    assert peer.paths() == ["gettoken", "get_jsapi_ticket"]  # one token and one ticket for both scans
    assert errors == []
    context.close()


def test_a_cancelled_scan_leaves_the_button_to_try_again(app, live_server, browser, peer):
    app.config["PORTAL_PUBLIC_URL"] = live_server
    context = browser.new_context(viewport={"width": 375, "height": 812}, user_agent=WXWORK_UA)
    context.add_init_script(f"({FAKE_BRIDGE})([])")
    page = context.new_page()
    page.goto(live_server + "/m/scan")
    page.fill("input[name=username]", "zhangwei")
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/m/scan")

    expect(page.locator("[data-scan]")).to_be_enabled()
    expect(page.locator("[data-progress]")).to_be_hidden()
    expect(page.locator("[data-error]")).to_be_hidden()
    assert [call["name"] for call in page.evaluate("window.bridgeCalls")] == ["preVerifyJSAPI", "scanQRCode"]
    context.close()
