"""The cosign app end to end: a PC page at 1440 px and a phone at 375 px side by side, the phone's
cryptography done by the real browser code (static/js/cosign-app.js on cosign-client.js).

PC 【协同签名工具】 → QR code with the activation link → the phone opens it, 【确定】, sets a PIN
(the page enforces the PIN rule) → 证书下载成功 → 我的 shows the certificate → a SignRequest is
confirmed with the PIN → its signature verifies against the certificate. Then the auto-sign window,
a changed PIN, and 吊销并重新签发 on the PC."""

import re
from pathlib import Path

import pytest
from cosign_phone import make_request, make_task
from playwright.sync_api import expect

from portal.accounts.models import User
from portal.certificates.models import Certificate, KeyShare
from portal.cosign import services
from portal.cosign.views import activation_url
from portal.crypto import x509
from portal.db import utcnow
from portal.qr import qr_svg
from portal.signing.models import SignRequest

pytestmark = pytest.mark.e2e

VENDOR = Path(__file__).resolve().parents[2] / "static" / "vendor" / "cosign-deps.js"
PIN, NEW_PIN = "abc123", "xyz789"
# A phone browser; "wxwork" is left out on purpose: the pages must work in any phone browser.
PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile"
SLOW = 30_000  # ms: PBKDF2-HMAC-SM3 in JS runs twice per PIN entry


def fits_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def phone_shot(screenshot, page, name: str) -> None:
    """A full-page screenshot as the phone shows the page: the viewport stretched to the page's
    height first, so the tab bar (sticky at the bottom of the viewport) is drawn where it ends up."""
    size = page.viewport_size
    page.set_viewport_size(
        {"width": size["width"], "height": max(size["height"], page.evaluate("document.body.scrollHeight"))}
    )
    screenshot(page, name)
    page.set_viewport_size(size)


def log_in(page, base: str, path: str = "/") -> None:
    page.goto(base + path)
    page.fill("input[name=username]", "zhangwei")
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(base + path)


def qr_path(html: str) -> str:
    return re.search(r'<path d="([^"]+)"', html).group(1)


@pytest.fixture
def zhangwei(app, live_server):
    if not VENDOR.exists():
        pytest.fail(f"{VENDOR} is missing: run `make deps` (scripts/vendor-assets.sh)")
    app.config["PORTAL_PUBLIC_URL"] = live_server  # the address the phone reaches, as in production
    user = User.get(User.username == "zhangwei")
    user.real_name_status = "verified"
    user.id_number_masked = "1101**********1234"
    user.save()
    return user


def test_activate_on_the_phone_then_confirm_a_sign_request(app, live_server, browser, screenshot, zhangwei):
    errors = []
    pc = browser.new_page(viewport={"width": 1440, "height": 900})
    phone_context = browser.new_context(viewport={"width": 375, "height": 812}, user_agent=PHONE_UA)
    phone = phone_context.new_page()
    for page in (pc, phone):
        page.on("pageerror", lambda error: errors.append(str(error)))

    # --- the PC: 【协同签名工具】 shows the activation QR code -------------------------------------
    log_in(pc, live_server)
    pc.click("text=协同签名工具")
    dialog = pc.locator("#cosign-tool-dialog")
    dialog.wait_for()
    assert pc.url == live_server + "/"  # htmx swapped the panel into the header: no navigation
    code = pc.locator("#activation-code").inner_text().replace("-", "")
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{8}", code)
    link = f"{live_server}/m/activate?code={code}"
    with app.test_request_context():
        assert activation_url(code) == link
        # The QR code on screen is exactly the one of this link (same encoder, same settings).
        assert qr_path(dialog.inner_html()) == qr_path(qr_svg(link, "x"))
    screenshot(pc, "cosign-tool-panel-desktop")

    # --- the phone: no certificate yet, then the link from the QR code ---------------------------
    log_in(phone, live_server, "/m/")
    assert phone.locator("h2").first.inner_text() == "您还没有证书"
    assert fits_width(phone)
    phone_shot(screenshot, phone, "cosign-m-home-phone")

    phone.goto(link)
    assert phone.input_value("input[name=code]") == code
    assert fits_width(phone)
    phone_shot(screenshot, phone, "cosign-m-activate-phone")
    phone.click("text=确定")
    phone.wait_for_selector("#pin-form")
    assert "6~12位字母、数字组合" in phone.content()
    phone_shot(screenshot, phone, "cosign-m-pin-phone")

    # The page enforces the PIN rule before anything leaves the phone (more than 12 characters
    # cannot be typed: maxlength). Each message differs from the one before, so none is stale.
    for pin, repeated, message in (
        ("abcdef", "abcdef", "证书密码须同时包含字母和数字"),
        ("ab12", "ab12", "证书密码须为 6~12 位"),
        ("abc-123", "abc-123", "证书密码只能包含字母和数字"),
        (PIN, "abc124", "两次输入的密码不一致"),
    ):
        phone.fill("input[name=pin]", pin)
        phone.fill("input[name=pin2]", repeated)
        phone.click("#pin-form button[type=submit]")
        expect(phone.locator("#pin-form [data-error]")).to_have_text(message)
    phone_shot(screenshot, phone, "cosign-m-pin-rule-phone")
    assert KeyShare.select().count() == 0

    # The connection drops as the co-signed request goes out: the code is spent and the key made,
    # so 【确定】 again resumes with that key and a new request session.
    dropped = []

    def drop_first(route):
        if not dropped:
            dropped.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    phone.route("**/m/api/sign/*/complete", drop_first)
    phone.fill("input[name=pin]", PIN)
    phone.fill("input[name=pin2]", PIN)
    phone.click("#pin-form button[type=submit]")
    expect(phone.locator("#pin-form [data-error]")).to_have_text("网络连接失败，请检查网络后重试", timeout=SLOW)
    assert dropped and KeyShare.select().count() == 1
    phone.click("#pin-form button[type=submit]")
    phone.wait_for_selector("#pin-done h2:text('证书下载成功')", timeout=SLOW)
    phone.unroute("**/m/api/sign/*/complete")
    assert KeyShare.select().count() == 1
    assert fits_width(phone)
    phone_shot(screenshot, phone, "cosign-m-activated-phone")

    key_share = services.current_key_share(zhangwei)
    certificate = key_share.certificate
    assert x509.certificate_public_key(bytes(certificate.der)).hex() == key_share.public_key
    # The phone stores exactly the wrapped share and its salts: no PIN, no device secret, no d1.
    record = phone.evaluate(
        """() => new Promise((resolve, reject) => {
          const open = indexedDB.open('esign-portal-cosign');
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const get = open.result.transaction('shares').objectStore('shares').getAll();
            get.onsuccess = () => resolve(get.result.map((r) => Object.keys(r).sort()));
          };
        })"""
    )
    assert record == [["keySharePublicId", "publicKey", "salt", "verifierSalt", "wrapped"]]

    # --- 我的 ------------------------------------------------------------------------------------------
    phone.click("#pin-done >> text=确定")
    phone.wait_for_url(live_server + "/m/mine")
    assert certificate.serial in phone.content() and "设置自动签名时间" in phone.content()
    assert fits_width(phone)
    phone_shot(screenshot, phone, "cosign-m-mine-phone")

    # --- 待签署: a request made by the signing flow, confirmed with the PIN ---------------------------
    message = b"\x31\x0asigned attributes of the contract"
    request = make_request(make_task(zhangwei, zhangwei, files=("采购合同.pdf",), seals=1), [message])
    phone.click("text=待签署")
    phone.wait_for_selector("#pending-list")
    assert "采购合同" not in phone.content()  # the list shows the task title and counts
    assert "实验室安全责任书" in phone.content() and "1 个文件 · 1 处签章" in phone.content()
    assert phone.locator("#missing-share").is_hidden()  # this phone holds the key
    phone_shot(screenshot, phone, "cosign-m-pending-phone")

    phone.click("#pending-list a")
    phone.wait_for_selector("#sign-form")
    assert "采购合同.pdf" in phone.content()
    phone_shot(screenshot, phone, "cosign-m-sign-phone")
    phone.fill("input[name=pin]", "abc124")
    phone.click("text=确认签署")
    expect(phone.locator("#sign-form [data-error]")).to_have_text("证书密码错误，还可尝试 4 次", timeout=SLOW)
    phone_shot(screenshot, phone, "cosign-m-sign-wrong-pin-phone")
    phone.fill("input[name=pin]", PIN)
    phone.click("text=确认签署")
    phone.wait_for_selector("#sign-done h2:text('签署成功')", timeout=SLOW)
    phone_shot(screenshot, phone, "cosign-m-signed-phone")

    request = SignRequest.get_by_id(request.id)
    assert request.status == "done"
    (signature,) = services.signatures_for(request)
    public_key = x509.certificate_public_key(bytes(services.signing_certificate(request).der))
    assert public_key.verify(message, signature)  # plain SM2 with the certificate's key
    assert KeyShare.get_by_id(key_share.id).failed_attempts == 0

    # --- the auto-sign window: 10 minutes, one PIN entry, then no PIN -------------------------------
    phone.goto(live_server + "/m/mine")
    phone.click("#auto-sign >> text=10 分钟")
    phone.click("#auto-sign button[type=submit]")
    phone.wait_for_selector("#auto-sign .note-ok")
    with_pin = make_request(make_task(zhangwei, zhangwei), [b"first in the window"])
    phone.goto(f"{live_server}/m/sign/{with_pin.token}")
    phone.fill("input[name=pin]", PIN)
    phone.click("text=确认签署")
    phone.wait_for_selector("#sign-done:not([hidden])", timeout=SLOW)
    without_pin = make_request(make_task(zhangwei, zhangwei), [b"second in the window"])
    phone.goto(f"{live_server}/m/sign/{without_pin.token}")
    assert phone.locator("input[name=pin]").is_hidden()
    assert phone.locator("[data-window-note]").is_visible()
    phone_shot(screenshot, phone, "cosign-m-sign-window-phone")
    phone.click("text=确认签署")
    phone.wait_for_selector("#sign-done:not([hidden])", timeout=SLOW)
    assert SignRequest.get_by_id(without_pin.id).status == "done"

    # --- 修改证书密码: the old PIN is needed, then the new one works ----------------------------------
    phone.goto(live_server + "/m/pin")
    phone_shot(screenshot, phone, "cosign-m-change-pin-phone")
    phone.fill("input[name=old_pin]", "wrong12")
    phone.fill("input[name=pin]", NEW_PIN)
    phone.fill("input[name=pin2]", NEW_PIN)
    phone.click("#pin-form button[type=submit]")
    expect(phone.locator("#pin-form [data-error]")).to_have_text("证书密码错误，还可尝试 4 次", timeout=SLOW)
    phone.fill("input[name=old_pin]", PIN)
    phone.click("#pin-form button[type=submit]")
    phone.wait_for_selector("#pin-done h2:text('证书密码修改成功')", timeout=SLOW)
    KeyShare.update(auto_sign_minutes=0).where(KeyShare.id == key_share.id).execute()
    after_change = make_request(make_task(zhangwei, zhangwei), [b"after the change"])
    phone.goto(f"{live_server}/m/sign/{after_change.token}")
    phone.fill("input[name=pin]", NEW_PIN)
    phone.click("text=确认签署")
    phone.wait_for_selector("#sign-done:not([hidden])", timeout=SLOW)
    assert SignRequest.get_by_id(after_change.id).status == "done"

    # A share locked by wrong PINs: the phone says so instead of offering to sign.
    KeyShare.update(locked_at=utcnow()).where(KeyShare.id == key_share.id).execute()
    phone.goto(live_server + "/m/")
    assert "证书已锁定" in phone.content()
    phone_shot(screenshot, phone, "cosign-m-locked-phone")
    KeyShare.update(locked_at=None).where(KeyShare.id == key_share.id).execute()

    phone.goto(live_server + "/m/")
    assert "暂无待签署的文件" in phone.content()
    phone_shot(screenshot, phone, "cosign-m-pending-empty-phone")

    phone.goto(live_server + "/m/scan")
    assert fits_width(phone)
    phone_shot(screenshot, phone, "cosign-m-scan-phone")

    # --- the PC: 我的证书 → 吊销并重新签发 -------------------------------------------------------------
    pc.goto(live_server + "/cosign/certificate")
    assert certificate.serial in pc.content()
    screenshot(pc, "cosign-my-certificate-desktop")
    pc.click("text=吊销并重新签发")
    pc.check("input[value=keyCompromise]")
    pc.check("input[name=confirm]")
    screenshot(pc, "cosign-revoke-form-desktop")
    pc.click("text=确认吊销并重新签发")
    pc.wait_for_selector("text=原证书已吊销")
    screenshot(pc, "cosign-reissued-desktop")
    assert Certificate.get_by_id(certificate.id).revocation_reason == "keyCompromise"

    # The old phone now has nothing to sign with.
    phone.goto(live_server + "/m/")
    assert phone.locator("h2").first.inner_text() == "您还没有证书"
    phone_context.close()
    pc.close()

    # The PC pages at a phone's width: the panel stays on screen.
    small = browser.new_page(viewport={"width": 375, "height": 812})
    small.on("pageerror", lambda error: errors.append(str(error)))
    log_in(small, live_server)
    small.click(".cosign-tool-btn")  # only its icon shows at this width
    small.locator("#cosign-tool-dialog").wait_for()
    box = small.locator("#cosign-tool-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    screenshot(small, "cosign-tool-panel-phone")
    small.click("#cosign-tool-dialog .btn-close")
    assert small.locator("#cosign-tool-dialog").is_hidden()
    small.goto(live_server + "/cosign/certificate")
    screenshot(small, "cosign-my-certificate-phone")
    assert fits_width(small)
    small.close()
    assert errors == []
