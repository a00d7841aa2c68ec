"""手写签名 in Chromium: the PC (1440 px) opens 个人设置 from the name menu and 【手写签名】 gives a QR code
with its link; a phone (375 px, touch, the WeChat Work browser's user agent) opens the link, draws with
a finger, clears, draws again and submits; the PC page shows the new seal by itself, and it is made
the default. A picture uploaded on a phone-sized settings page becomes a seal too."""

import math

import pytest
from PIL import Image, ImageDraw

from portal.accounts.models import User
from portal.seals import services

pytestmark = pytest.mark.e2e

WXWORK_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/120.0.0.0 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light"
)


def fits_width(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def log_in(page, live_server, username="zhangwei"):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")


def finger_stroke(cdp, points):
    """A real touch sequence (touchstart, touchmove…, touchend), as a finger on the phone sends it."""
    x, y = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def signature_strokes(box):
    """Two strokes across the canvas, in page coordinates."""
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    wave = [(left + width * (0.1 + 0.02 * i), top + height * (0.5 + 0.2 * math.sin(i / 4))) for i in range(41)]
    slash = [(left + width * (0.3 + 0.1 * i / 15), top + height * (0.2 + 0.6 * i / 15)) for i in range(16)]
    return [wave, slash]


def test_a_signature_drawn_on_the_phone_appears_on_the_pc_and_becomes_the_default(
    app, live_server, browser, screenshot
):
    app.config["PORTAL_PUBLIC_URL"] = live_server  # the QR code's link must reach this test server
    services.create_personal_seal(User.get(username="zhangwei"))

    pc = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    log_in(pc, live_server)
    pc.click(".user-menu summary")
    pc.click(".user-menu-panel >> text=个人设置")
    pc.wait_for_url(live_server + "/me/seals")
    assert pc.locator("h1").inner_text() == "个人设置"
    assert pc.locator(".seal-card").count() == 1 and pc.locator(".seal-card .badge-default").count() == 1
    assert pc.locator("#handwriting[open]").count() == 1  # open while there is no handwritten signature yet
    screenshot(pc, "seals-settings-desktop")

    pc.click("#handwriting-qr >> text=生成二维码")
    pc.wait_for_selector("#handwriting-status.is-waiting svg")
    link = pc.locator(".pad-link a").get_attribute("href")
    assert link.startswith(live_server + "/m/pad/")
    qr = pc.locator(".hw-qr svg").bounding_box()
    assert qr["width"] > 150 and abs(qr["width"] - qr["height"]) < 2
    screenshot(pc, "seals-qr-desktop")

    phone_context = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        user_agent=WXWORK_UA,
        locale="zh-CN",
    )
    phone = phone_context.new_page()
    phone.goto(link)
    assert phone.locator("h1").inner_text() == "手写签名"
    phone.wait_for_function("document.querySelector('[data-signature-pad]').dataset.padReady === '1'")
    canvas = phone.locator("canvas.pad-canvas")
    box = canvas.bounding_box()
    assert box["width"] > 300  # nearly the whole width of the phone
    # The backing store matches the screen's density, so strokes are sharp and land under the finger.
    assert phone.evaluate("(c => c.width)(document.querySelector('canvas.pad-canvas'))") == round(box["width"] * 3)
    assert fits_width(phone)
    screenshot(phone, "seals-pad-phone")

    phone.click("[data-pad-submit]")  # nothing drawn yet
    assert "请先在方框内签名" in phone.locator("#pad-message").inner_text()

    cdp = phone_context.new_cdp_session(phone)
    finger_stroke(cdp, signature_strokes(box)[0])
    assert phone.locator("[data-signature-pad].has-ink").count() == 1
    phone.click("[data-pad-clear]")
    assert phone.locator("[data-signature-pad].has-ink").count() == 0
    for stroke in signature_strokes(box):
        finger_stroke(cdp, stroke)
    screenshot(phone, "seals-pad-drawn-phone")
    phone.click("[data-pad-submit]")
    phone.wait_for_selector("#pad.pad-done")
    assert "签名已提交" in phone.locator("#pad").inner_text()
    assert phone.evaluate("document.querySelector('#pad img').naturalWidth") == 945  # 40 mm at 600 dpi
    assert fits_width(phone)
    screenshot(phone, "seals-pad-done-phone")

    # The PC page polls and shows the new seal without a reload.
    pc.wait_for_selector("#handwriting-status.is-done", timeout=15000)
    assert pc.locator(".seal-card").count() == 2
    handwritten = pc.locator(".seal-card", has_text="手写签名")
    assert handwritten.locator("img").evaluate("img => img.complete && img.naturalWidth") == 945
    screenshot(pc, "seals-received-desktop")

    handwritten.locator("text=设为默认").click()
    pc.wait_for_selector(".seal-card:has-text('手写签名') .badge-default")
    assert pc.locator(".badge-default").count() == 1
    assert pc.locator(".seal-card", has_text="个人制式签章").locator("text=设为默认").count() == 1
    screenshot(pc, "seals-default-desktop")
    phone_context.close()
    pc.close()


def test_a_picture_uploaded_on_a_phone_sized_page_becomes_a_seal(app, live_server, browser, screenshot, tmp_path):
    services.create_personal_seal(User.get(username="zhangwei"))
    photo = Image.new("RGB", (1200, 800), (214, 210, 196))
    draw = ImageDraw.Draw(photo)
    draw.line([(150, 500), (400, 250), (650, 520), (1050, 300)], fill=(30, 45, 140), width=14)
    path = tmp_path / "签名照片.jpg"
    photo.save(path, "JPEG")

    page = browser.new_page(viewport={"width": 375, "height": 800}, locale="zh-CN")
    log_in(page, live_server)
    page.goto(live_server + "/me/seals")
    assert fits_width(page)
    page.set_input_files("#handwriting-upload input[type=file]", str(path))
    page.click("#handwriting-upload button[type=submit]")
    page.wait_for_selector("#handwriting-upload .hw-ok")
    assert page.locator(".seal-card").count() == 2
    assert fits_width(page)
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot taken scrolled down paints the sticky header mid-page
    screenshot(page, "seals-upload-phone")

    blank = tmp_path / "空白.png"
    Image.new("RGB", (600, 400), "white").save(blank)
    page.set_input_files("#handwriting-upload input[type=file]", str(blank))
    page.click("#handwriting-upload button[type=submit]")
    page.wait_for_selector("#handwriting-upload .form-error")
    assert "未检测到签名笔迹" in page.locator("#handwriting-upload .form-error").inner_text()
    assert page.locator(".seal-card").count() == 2
    page.close()
