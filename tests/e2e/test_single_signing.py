"""单方文件签署 end to end: a PC page at 1440 px and the cosign app on a 375 px phone.

吴芳 (教务处科员, who keeps 教务处's seal) uploads a PDF from the shared corpus, drags her personal
seal and the department seal onto it, adds a multi-page seal and a riding seam, presses 立即签署,
confirms on the phone with her PIN, downloads the signed file and verifies it. The seals on the
downloaded file are where they were dropped: checked on pdfium's rendering of the file."""

import re

import pypdfium2 as pdfium
import pytest
from cosign_phone import activated_phone
from helpers import PDF_CORPUS, needs_pdf_corpus
from PIL import Image, ImageChops
from playwright.sync_api import expect

from portal.accounts.models import User
from portal.certificates import services as certificates
from portal.cosign import services as cosign
from portal.pdf.verify import verify_pdf
from portal.seals.services import create_personal_seal
from portal.signing import single
from portal.signing.models import Document, Placement, Task

pytestmark = [pytest.mark.e2e, needs_pdf_corpus]

SOURCE = PDF_CORPUS / "issue14847.pdf"  # six A4 pages of a German manual
PIN = "abc123"
PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile"
SLOW = 30_000  # ms: PBKDF2-HMAC-SM3 in JS runs for each PIN entry
RENDER_SCALE = 2.0  # pixels per point when checking the downloaded file


@pytest.fixture
def wufang(app, live_server):
    app.config["PORTAL_PUBLIC_URL"] = live_server
    user = User.get(User.username == "wufang")
    user.real_name_status = "verified"
    user.id_number_masked = "1101**********2345"
    user.save()
    create_personal_seal(user)
    return user


def log_in(page, base: str, path: str = "/") -> None:
    page.goto(base + path)
    page.fill("input[name=username]", "wufang")
    page.fill("input[name=password]", "demo1234")
    page.click("button[type=submit]")
    page.wait_for_url(base + path)


def activate_phone(phone, base: str, user: User) -> None:
    """The cosign app downloads its certificate (issue #5's flow, tested in test_cosign_app)."""
    code = cosign.issue_activation_code(user).code
    log_in(phone, base, "/m/")
    phone.goto(f"{base}/m/activate?code={code}")
    phone.click("text=确定")
    phone.fill("input[name=pin]", PIN)
    phone.fill("input[name=pin2]", PIN)
    phone.click("#pin-form button[type=submit]")
    phone.wait_for_selector("#pin-done h2:text('证书下载成功')", timeout=SLOW)


def drag(page, source, target_x: float, target_y: float) -> None:
    """Press on `source`, move in steps (as a hand does) to the point, release."""
    box = source.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(target_x, target_y, steps=12)
    page.mouse.up()


def point_on(page, number: int, fx: float, fy: float) -> tuple[dict, tuple[float, float]]:
    """Scroll page `number` so its point at fractions (fx, fy) is mid-screen; (its frame's box,
    the point) in viewport pixels, ready for the mouse."""
    page.evaluate(
        """([n, fy]) => {
          const r = document.getElementById(`page-${n}`).getBoundingClientRect();
          window.scrollBy(0, r.top + fy * r.height - innerHeight / 2);
        }""",
        [number, fy],
    )
    box = page.locator(f"#page-{number}").bounding_box()
    return box, (box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def dropped_at(frame: dict, x: float, y: float, seal_pt: float, page_pt=(595.275, 841.889)) -> tuple[float, float]:
    """Where a seal dropped centred on (x, y) px lies on the page, in points from the bottom-left."""
    scale = frame["width"] / page_pt[0]
    left = (x - frame["x"]) / scale - seal_pt / 2
    top = (y - frame["y"]) / scale - seal_pt / 2
    return left, page_pt[1] - top - seal_pt


def render(data: bytes) -> list[Image.Image]:
    document = pdfium.PdfDocument(data)
    document.init_forms()  # seals are signature widgets: drawn only with forms initialised
    try:
        return [
            document[i].render(scale=RENDER_SCALE, may_draw_forms=True).to_pil().convert("RGB")
            for i in range(len(document))
        ]
    finally:
        document.close()


def changes(before: Image.Image, after: Image.Image) -> Image.Image:
    return ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v > 40 else 0)


def pixel_box(rect, image: Image.Image, slack: float = 1.0) -> tuple[int, ...]:
    """A rect (x, y, width, height) in points from the bottom-left → a pixel box, a point of slack."""
    x, y, w, h = rect
    page_height = image.height / RENDER_SCALE
    return tuple(
        round(v * RENDER_SCALE)
        for v in (x - slack, page_height - y - h - slack, x + w + slack, page_height - y + slack)
    )


def drawn_inside(before: Image.Image, after: Image.Image, rect) -> int:
    return changes(before, after).crop(pixel_box(rect, before)).histogram()[255]


def test_upload_place_seals_confirm_on_the_phone_and_download(app, live_server, browser, screenshot, wufang):
    errors = []
    pc = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    phone = browser.new_context(viewport={"width": 375, "height": 812}, user_agent=PHONE_UA).new_page()
    for page in (pc, phone):
        page.on("pageerror", lambda error: errors.append(str(error)))
    pc.on("dialog", lambda dialog: dialog.accept())
    activate_phone(phone, live_server, wufang)

    # --- 【单方文件签署】 → the list → 【上传文件】 ------------------------------------------------------
    log_in(pc, live_server)
    pc.click("#modules >> text=单方文件签署")
    pc.wait_for_url(live_server + "/single")
    assert "还没有签署任务" in pc.content()
    screenshot(pc, "single-list-empty-desktop")
    pc.set_input_files("input[name=files]", str(SOURCE))
    expect(pc.locator("[data-chosen]")).to_contain_text("issue14847.pdf")
    pc.click("text=上传文件 >> visible=true")
    pc.wait_for_selector(".page-frame img")
    task = Task.get()
    document = Document.get()
    assert pc.url == f"{live_server}/single/{task.public_id}"
    assert document.page_count == 6
    pc.wait_for_function("document.querySelector('#page-1 img').complete")
    screenshot(pc, "single-board-desktop", full_page=False)

    # --- drag the personal seal onto page 1, the department seal onto page 2 -------------------
    personal = pc.locator(".seal-choice", has_text="个人制式签章")
    department = pc.locator(".seal-choice", has_text="教务处")
    personal_pt = float(personal.get_attribute("data-width-pt"))
    department_pt = float(department.get_attribute("data-width-pt"))

    page1, target1 = point_on(pc, 1, 0.7, 0.8)
    drag(pc, personal, *target1)
    expect(pc.locator("#page-1 .impression")).to_have_count(1)
    # The seal is drawn at its real size: its width in points × the page's scale.
    drawn = pc.locator("#page-1 .impression").bounding_box()
    assert drawn["width"] == pytest.approx(personal_pt * page1["width"] / 595.275, abs=1)

    page2, target2 = point_on(pc, 2, 0.35, 0.55)
    drag(pc, department, *target2)
    expect(pc.locator("#page-2 .impression")).to_have_count(1)
    single_rows = {p.seal.kind: p for p in Placement.select()}
    expected_personal = dropped_at(page1, *target1, personal_pt)
    expected_department = dropped_at(page2, *target2, department_pt)
    assert (single_rows["personal_standard"].page, single_rows["department"].page) == (1, 2)
    assert (single_rows["personal_standard"].x, single_rows["personal_standard"].y) == pytest.approx(
        expected_personal, abs=1.5
    )
    assert (single_rows["department"].x, single_rows["department"].y) == pytest.approx(expected_department, abs=1.5)

    # A placed seal can be moved (on page 2, to the left) and the move is saved.
    moving = pc.locator("#page-2 .impression")
    before = moving.bounding_box()
    with pc.expect_response("**/move") as moved_response:
        drag(pc, moving, before["x"] + before["width"] / 2 - 60, before["y"] + before["height"] / 2)
    assert moved_response.value.ok
    expect(pc.locator("#page-2 .impression")).to_have_count(1)
    moved = Placement.get(Placement.kind == "single", Placement.page == 2)
    assert moved.x == pytest.approx(single_rows["department"].x - 60 * 595.275 / page2["width"], abs=1.5)
    screenshot(pc, "single-board-two-seals-desktop", full_page=False)

    # --- 【多页盖章】: the department seal on pages 3-5 ------------------------------------------------
    pc.click("text=多页盖章")
    dialog = pc.locator("#multi-dialog")
    expect(dialog).to_be_visible()
    sample = dialog.locator("[data-sample]").bounding_box()
    drag(
        pc,
        dialog.locator(".seal-choice", has_text="教务处"),
        sample["x"] + sample["width"] * 0.5,
        sample["y"] + sample["height"] * 0.3,
    )
    expect(dialog.locator(".sample-seal")).to_be_visible()
    dialog.locator("input[name=range_mode][value=range]").check()
    dialog.locator("[data-range-input]").fill("3-9")
    dialog.locator("text=确定").click()
    expect(dialog.locator("[data-dialog-error]")).to_contain_text("超出")  # the file has 6 pages
    screenshot(pc, "single-multi-page-dialog-desktop", full_page=False)
    dialog.locator("[data-range-input]").fill("3-5")
    dialog.locator("text=确定").click()
    expect(dialog).to_be_hidden()
    for number in (3, 4, 5):
        expect(pc.locator(f"#page-{number} .impression.kind-multi_page")).to_have_count(1)
    expect(pc.locator("#page-6 .impression")).to_have_count(0)
    expect(pc.locator("[data-multi-list]")).to_contain_text("第 3-5 页")

    # --- 【骑缝章】: the department seal across every page, right edge ---------------------------------
    pc.click("text=骑缝章 >> nth=0")
    dialog = pc.locator("#riding-dialog")
    expect(dialog).to_be_visible()
    dialog.locator(".seal-choice", has_text="教务处").click()
    ghost = dialog.locator(".sample-seal")
    expect(ghost).to_be_visible()
    box = ghost.bounding_box()
    drag(pc, ghost, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 - 40)  # up a little
    screenshot(pc, "single-riding-dialog-desktop", full_page=False)
    dialog.locator("text=确定").click()
    expect(dialog).to_be_hidden()
    for number in range(1, 7):
        expect(pc.locator(f"#page-{number} .impression.kind-riding")).to_have_count(1)
    # The thumbnails mark every seal too: pages 1-2 and 3-5 carry two, page 6 the riding slice.
    marks = [pc.locator(f".thumb[data-goto='{n}'] .thumb-mark").count() for n in range(1, 7)]
    assert marks == [2, 2, 2, 2, 2, 1]
    expect(pc.locator("[data-riding-list]")).to_contain_text("全文骑缝 · 连续页骑缝 · 右侧")

    # 盖章统计: personal 1; department 1 + 3 (pages 3-5) + 6 riding slices.
    stats = pc.locator("#seal-stats")
    expect(stats.locator("tr", has_text="个人制式签章").locator(".num")).to_have_text("1")
    expect(stats.locator("tr", has_text="部门公章").locator(".num")).to_have_text("10")
    pc.locator("#page-1").scroll_into_view_if_needed()
    screenshot(pc, "single-board-all-seals-desktop", full_page=False)

    # Reloading keeps everything: the placements are on the server.
    pc.reload()
    expect(pc.locator(".impression")).to_have_count(1 + 1 + 3 + 6)
    rows = list(Placement.select().order_by(Placement.id))
    assert [r.kind for r in rows] == ["single", "single", "multi_page", "riding"]

    # --- 立即签署: the QR code, then the phone ----------------------------------------------------------
    pc.click("#sign-now")
    qr = pc.locator(".sign-qr")
    expect(qr).to_be_visible()
    link = qr.get_attribute("data-sign-link")
    assert re.fullmatch(rf"{re.escape(live_server)}/m/sign/[\w-]+", link)
    screenshot(pc, "single-sign-qr-desktop", full_page=False)
    pc.click("#sign-now", force=True)  # a second click changes nothing
    expect(pc.locator(".sign-qr")).to_have_attribute("data-sign-link", link)

    phone.goto(link)  # what scanning the QR code opens
    phone.wait_for_selector("#sign-form")
    assert "issue14847.pdf" in phone.content()
    expect(phone.locator("#sign-summary, body").first).to_contain_text("11 处")  # 盖章统计: 1 + 10
    screenshot(phone, "single-sign-phone")
    phone.fill("input[name=pin]", PIN)
    phone.click("text=确认签署")
    phone.wait_for_selector("#sign-done h2:text('签署成功')", timeout=SLOW)
    screenshot(phone, "single-signed-phone")

    # The PC page follows by itself: signing → done, then the completed task's page.
    pc.wait_for_selector("#task-done", timeout=SLOW)
    screenshot(pc, "single-done-desktop")
    with pc.expect_download() as download_info:
        pc.click("#task-done >> text=下载")
    download = download_info.value
    assert download.suggested_filename == "issue14847_已签署.pdf"
    signed = open(download.path(), "rb").read()

    # --- the downloaded file verifies ---------------------------------------------------------------
    result = verify_pdf(signed, trust_anchors=certificates.trust_anchors(), is_revoked=certificates.revocation_status)
    assert len(result.signatures) == 2  # wufang's own, then 教务处's
    for verdict in result.signatures:
        assert verdict.intact and verdict.chain.trusted and verdict.valid, verdict.problems
    assert "吴芳" in result.signatures[0].signer.subject
    assert "教务处" in result.signatures[1].signer.subject

    # --- each seal where it was dropped: pdfium's rendering, before and after ---------------------
    before_pages = render(SOURCE.read_bytes())
    after_pages = render(signed)
    by_page: dict[int, list] = {}
    for verdict in result.signatures:
        for seal in verdict.seals:
            x0, y0, x1, y1 = seal.rect
            by_page.setdefault(seal.page, []).append((x0, y0, x1 - x0, y1 - y0))
    personal_row = Placement.get(Placement.kind == "single", Placement.page == 1)
    assert (personal_row.x, personal_row.y) == pytest.approx(expected_personal, abs=1.5)
    assert (personal_row.x, personal_row.y, personal_row.width) in [
        pytest.approx((r[0], r[1], r[2]), abs=0.5) for r in by_page[1]
    ]
    for number in range(1, 7):
        rects = by_page[number]
        expected = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 1}[number]  # riding slice + single or multi-page
        assert len(rects) == expected, (number, rects)
        for rect in rects:
            assert drawn_inside(before_pages[number - 1], after_pages[number - 1], rect) > 50, (number, rect)
        # Nothing changed anywhere but in the seal boxes.
        union = Image.new("L", before_pages[0].size, 0)
        for rect in rects:
            union.paste(255, pixel_box(rect, union))
        stray = ImageChops.subtract(changes(before_pages[number - 1], after_pages[number - 1]), union).histogram()[255]
        assert stray == 0, f"page {number}: {stray} pixels changed outside the seals"

    # 【预览】 shows the signed pages; the list shows the task as completed.
    pc.click("#task-done >> text=预览")
    pc.wait_for_selector(".preview-page-frame img")
    third = pc.locator(".preview-page-frame").nth(2)
    third.scroll_into_view_if_needed()
    pc.wait_for_function("[...document.querySelectorAll('.preview-page-frame img')][2].complete")
    screenshot(pc, "single-preview-desktop", full_page=False)
    pc.goto(live_server + "/single")
    expect(pc.locator("#task-list")).to_contain_text("已完成")
    screenshot(pc, "single-list-desktop")
    assert errors == []


def touch_drag(page, source, target_x: float, target_y: float) -> None:
    """A finger on `source`, moved to the point and lifted (Chromium's touch input over CDP)."""
    box = source.bounding_box()
    cdp = page.context.new_cdp_session(page)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 13):
        point = {"x": x + (target_x - x) * step / 12, "y": y + (target_y - y) * step / 12}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_on_a_phone_sized_screen_a_seal_is_dragged_by_touch(app, live_server, browser, screenshot, wufang):
    activated_phone(wufang)
    task = single.start_task(wufang, [("通知.pdf", SOURCE.read_bytes())])
    context = browser.new_context(viewport={"width": 375, "height": 812}, has_touch=True, user_agent=PHONE_UA)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server, f"/single/{task.public_id}")
    page.wait_for_function("document.querySelector('#page-1 img').complete")
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    # The seals stay at hand at the bottom of the screen while the pages scroll.
    tray = page.locator(".seal-box").bounding_box()
    assert tray["y"] + tray["height"] <= 812 + 1
    screenshot(page, "single-board-phone", full_page=False)

    department = page.locator(".seal-choice", has_text="教务处")
    department.scroll_into_view_if_needed()
    frame, target = point_on(page, 1, 0.5, 0.4)
    touch_drag(page, department, *target)
    expect(page.locator("#page-1 .impression")).to_have_count(1)
    row = Placement.get()
    department_pt = float(department.get_attribute("data-width-pt"))
    assert row.page == 1
    assert (row.x, row.y) == pytest.approx(dropped_at(frame, *target, department_pt), abs=2)
    screenshot(page, "single-board-touch-phone", full_page=False)

    # Tap a seal, then tap the page: it is placed centred where the page was tapped.
    personal = page.locator(".seal-choice", has_text="个人制式签章")
    personal.scroll_into_view_if_needed()
    personal.tap()
    expect(personal).to_have_class(re.compile("is-selected"))
    frame, target = point_on(page, 2, 0.5, 0.5)
    page.touchscreen.tap(*target)
    expect(page.locator("#page-2 .impression")).to_have_count(1)

    # 一键删除 asks once, then every seal goes from the board and from 盖章统计.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=一键删除")
    expect(page.locator(".impression")).to_have_count(0)
    expect(page.locator("#seal-stats")).to_contain_text("尚未加盖印章")
    assert Placement.select().count() == 0

    # A keyboard selects a seal too (Enter on the focused seal).
    department.focus()
    page.keyboard.press("Enter")
    expect(department).to_have_class(re.compile("is-selected"))
    assert errors == []
