"""实名认证 in Chromium at 375 and 1440 px: the dialog on first use, a refused check digit, admin
review until the person's page shows 已实名, and a face check finished on a phone (a fake Tencent
FaceID peer) that turns the PC page to 核验成功."""

import pytest
from fakes.face import FakeFaceId

from portal.accounts.models import RealNameRequest

pytestmark = pytest.mark.e2e

WIDTHS = {"phone": 375, "desktop": 1440}
ID = "11010519491231002X"
MASKED = "110105********002X"


def fits_width(page):
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def signed_in(browser, live_server, username, password, width):
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/")
    return page


@pytest.mark.parametrize("device", WIDTHS)
def test_a_person_submits_an_admin_approves_and_the_page_shows_verified(live_server, browser, screenshot, device):
    width = WIDTHS[device]
    user = signed_in(browser, live_server, "zhangwei", "demo1234", width)
    panel = user.locator("#real-name-panel")
    assert "首次使用电子签一体化平台需要进行实名认证" in panel.inner_text()
    assert fits_width(user)
    screenshot(user, f"real-name-dialog-{device}")

    user.click("text=立即实名认证")
    user.wait_for_selector("input[name=id_number]")
    assert user.input_value("input[name=name]") == "张伟"
    user.fill("input[name=id_number]", "110105194912310021")
    user.fill("input[name=mobile]", "13812345678")
    user.click("text=下一步")
    user.wait_for_selector("#real-name-errors li")
    assert user.locator("#real-name-errors").inner_text() == "身份证号码校验位错误"
    assert user.input_value("input[name=id_number]") == "110105194912310021"  # still there to correct
    assert fits_width(user)
    screenshot(user, f"real-name-form-error-{device}")

    user.fill("input[name=id_number]", ID)
    user.click("text=下一步")
    user.wait_for_selector("text=等待管理员审核")
    assert MASKED in panel.inner_text() and ID not in user.content()
    assert fits_width(user)
    screenshot(user, f"real-name-pending-{device}")

    admin = signed_in(browser, live_server, "admin", "admin1234", width)
    assert "1 条待审核" in admin.inner_text(".hero")
    admin.click("text=实名认证审核")
    item = admin.locator(".review-item").first
    assert MASKED in item.inner_text() and "138****5678" in item.inner_text()
    assert fits_width(admin)
    screenshot(admin, f"real-name-review-{device}")
    item.locator("text=通过").click()
    admin.wait_for_selector(".review-outcome.is-ok")
    assert admin.inner_text("#review-pending-count") == "0"
    screenshot(admin, f"real-name-reviewed-{device}")

    # The person's page asks every 5 s and turns by itself.
    user.wait_for_selector("text=核验成功", timeout=15000)
    assert "已实名" in panel.inner_text()
    assert fits_width(user)
    screenshot(user, f"real-name-verified-{device}")
    user.goto(live_server + "/")
    assert user.locator("#real-name-panel").count() == 0 and "已实名" in user.inner_text(".hero")


def test_a_face_check_on_the_phone_turns_the_pc_page_to_verified(app, live_server, browser, screenshot):
    with FakeFaceId.running() as peer:
        # Read per request, so the running portal switches to the face provider here.
        app.config.update(REAL_NAME_PROVIDER="face", PORTAL_PUBLIC_URL=live_server, **peer.portal_config())
        pc = signed_in(browser, live_server, "zhangwei", "demo1234", WIDTHS["desktop"])
        pc.click("text=立即实名认证")
        pc.fill("input[name=id_number]", ID)
        pc.fill("input[name=mobile]", "13812345678")
        pc.click("text=下一步")
        pc.wait_for_selector("text=身份核验")
        assert "人脸核验" in pc.inner_text(".rn-method") and "默认" in pc.inner_text(".rn-method")
        screenshot(pc, "real-name-face-method-desktop")
        pc.get_by_role("link", name="确定", exact=True).click()
        pc.wait_for_selector("svg.qr")
        screenshot(pc, "real-name-face-qr-desktop")

        # The phone opens what the QR code carries, finishes, and is sent back to the portal.
        phone = browser.new_context(viewport={"width": WIDTHS["phone"], "height": 700}).new_page()
        phone.goto(RealNameRequest.get().provider_url)
        phone.click("text=完成核验")
        phone.wait_for_url(f"{live_server}/real-name/**/returned?BizToken=*")
        assert "核验成功" in phone.inner_text("h1") and fits_width(phone)
        screenshot(phone, "real-name-face-returned-phone")

        pc.wait_for_selector("text=核验成功", timeout=10000)
        assert "已实名" in pc.inner_text("#real-name-panel")
        screenshot(pc, "real-name-face-verified-desktop")
        pc.close()
        phone.close()
