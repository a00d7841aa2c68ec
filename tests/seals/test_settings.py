"""个人设置: a person's seals, the default, and handwritten signatures (drawn on a phone through a
one-time QR link, or uploaded as a picture). A person only ever sees and changes their own seals."""

import io
import re
from datetime import timedelta

import pytest
from helpers import csrf_token, login
from PIL import Image, ImageDraw

from portal import storage
from portal.accounts.models import OneTimeCode, User
from portal.audit import verify_chain
from portal.audit.models import Event
from portal.db import utcnow
from portal.seals import services
from portal.seals.models import Seal, SealKind

HX = {"HX-Request": "true"}


def signature_png(transparent: bool = False) -> bytes:
    """A drawing like the phone pad's (black strokes on transparency) or a scan (on white)."""
    image = Image.new("RGBA", (900, 500), (0, 0, 0, 0) if transparent else (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.line([(100, 300), (300, 150), (500, 320), (800, 200)], fill=(0, 0, 0, 255), width=9)
    draw.line([(350, 80), (400, 420)], fill=(0, 0, 0, 255), width=9)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (900, 500), (0, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


def person(username="zhangwei") -> User:
    return User.get(username=username)


@pytest.fixture
def zhang(demo):
    """张伟 with his standard name seal (the default) and one handwritten signature."""
    user = person()
    services.create_personal_seal(user)
    services.create_handwritten_seal(user, signature_png(), source="upload")
    return user


@pytest.fixture
def pc(client, zhang):
    login(client, "zhangwei")
    client.environ_base["HTTP_X_CSRFTOKEN"] = csrf_token(client, "/me/seals")
    return client


def seal_of(user, kind) -> Seal:
    return Seal.get((Seal.owner_user == user.id) & (Seal.kind == kind) & (Seal.status == "active"))


def issue_code(pc) -> str:
    html = pc.post("/me/seals/handwriting", headers=HX).get_data(as_text=True)
    return re.search(r"/m/pad/([\w-]+)", html).group(1)


def open_pad(app, code):
    """The phone: no login, a session of its own from opening the pad page, and that page's token."""
    phone = app.test_client()
    page = phone.get(f"/m/pad/{code}").get_data(as_text=True)
    return phone, re.search(r'data-csrf-token="([^"]+)"', page).group(1)


def phone_post(app, code, png, *, with_token=True, pad=None):
    phone, token = pad or open_pad(app, code)
    headers = {"X-CSRFToken": token} if with_token else {}
    return phone.post(f"/m/pad/{code}", data={"image": (io.BytesIO(png), "signature.png")}, headers=headers)


# ---------------------------------------------------------------------------------------------
# Services (both databases)


@pytest.mark.both_databases
def test_personal_seals_lists_only_the_persons_active_seals_standard_first(zhang):
    other = services.create_handwritten_seal(person("liuyang"), signature_png(), source="upload")
    gone = services.create_handwritten_seal(zhang, signature_png(transparent=True), source="phone")
    services.disable_handwritten_seal(zhang, gone.public_id)
    kinds = [(s.kind, s.is_default) for s in services.personal_seals(zhang)]
    assert kinds == [(SealKind.PERSONAL_STANDARD, True), (SealKind.HANDWRITTEN, False)]
    assert other.public_id not in {s.public_id for s in services.personal_seals(zhang)}


@pytest.mark.both_databases
def test_a_handwritten_seal_is_a_transparent_png_within_40_by_20_mm_with_an_audit_event(zhang):
    seal = seal_of(zhang, SealKind.HANDWRITTEN)
    assert seal.name == "张伟手写签名" and seal.status == "active" and not seal.is_default
    assert seal.width_mm == 40 and 0 < seal.height_mm <= 20
    image = Image.open(io.BytesIO(storage.load(seal.image_blob)))
    assert image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 255)
    event = Event.get(Event.subject == f"seal:{seal.public_id}")
    assert event.action == "seal.created" and event.actor_id == zhang.id
    assert event.data["source"] == "upload" and event.data["size_mm"] == [seal.width_mm, seal.height_mm]


@pytest.mark.both_databases
def test_the_first_seal_of_a_person_without_one_becomes_the_default(demo):
    seal = services.create_handwritten_seal(person("sunjing"), signature_png(), source="upload")
    assert seal.is_default


@pytest.mark.both_databases
def test_setting_the_default_leaves_exactly_one(zhang):
    handwritten = seal_of(zhang, SealKind.HANDWRITTEN)
    services.set_default_seal(zhang, handwritten.public_id)
    defaults = Seal.select().where((Seal.owner_user == zhang.id) & (Seal.is_default == True))  # noqa: E712
    assert [s.public_id for s in defaults] == [handwritten.public_id]
    assert Event.select().where(Event.action == "seal.default_set").count() == 1
    services.set_default_seal(zhang, handwritten.public_id)  # already the default: nothing to record
    assert Event.select().where(Event.action == "seal.default_set").count() == 1


@pytest.mark.both_databases
def test_deleting_a_handwritten_default_disables_it_and_the_name_seal_takes_over(zhang):
    handwritten = seal_of(zhang, SealKind.HANDWRITTEN)
    services.set_default_seal(zhang, handwritten.public_id)
    services.disable_handwritten_seal(zhang, handwritten.public_id)
    handwritten = Seal.get_by_id(handwritten.id)  # the row stays: placements may refer to it
    assert (handwritten.status, handwritten.is_default) == ("disabled", False)
    assert seal_of(zhang, SealKind.PERSONAL_STANDARD).is_default
    assert Event.get(Event.subject == f"seal:{handwritten.public_id}", Event.action == "seal.disabled")
    with pytest.raises(services.SealNotFound):  # deleted is gone for every action
        services.set_default_seal(zhang, handwritten.public_id)


@pytest.mark.both_databases
def test_the_name_seal_cannot_be_deleted(zhang):
    with pytest.raises(services.SealError):
        services.disable_handwritten_seal(zhang, seal_of(zhang, SealKind.PERSONAL_STANDARD).public_id)


@pytest.mark.both_databases
def test_another_persons_seal_is_not_found_by_any_service(zhang):
    theirs = services.create_personal_seal(person("liuyang"))
    for action in (services.own_seal, services.set_default_seal, services.disable_handwritten_seal):
        with pytest.raises(services.SealNotFound):
            action(zhang, theirs.public_id)


@pytest.mark.both_databases
def test_a_person_keeps_at_most_ten_handwritten_signatures(zhang, monkeypatch):
    monkeypatch.setattr(services, "MAX_HANDWRITTEN", 2)
    services.create_handwritten_seal(zhang, signature_png(), source="upload")
    count = Seal.select().count(), Event.select().count()
    with pytest.raises(services.SealError, match="最多保存 2 个"):
        services.create_handwritten_seal(zhang, signature_png(), source="upload")
    assert (Seal.select().count(), Event.select().count()) == count


@pytest.mark.both_databases
def test_a_handwriting_code_is_good_for_one_drawing_within_ten_minutes(zhang):
    code = services.issue_handwriting_code(zhang)
    assert code.purpose == "handwriting" and len(code.code) >= 32
    assert timedelta(minutes=9) < code.expires_at - utcnow() <= timedelta(minutes=10)
    seal = services.submit_handwriting(code.code, signature_png(transparent=True))
    assert seal.owner_user_id == zhang.id and seal.kind == SealKind.HANDWRITTEN
    status = services.handwriting_status(zhang, code.code)
    assert status.state == "done" and status.seal.id == seal.id
    with pytest.raises(services.HandwritingCodeInvalid) as used:
        services.submit_handwriting(code.code, signature_png(transparent=True))
    assert used.value.state == "used"
    event = Event.get(Event.subject == f"seal:{seal.public_id}")
    assert event.actor_id == zhang.id and event.data["source"] == "phone"
    count, problems = verify_chain()
    assert problems == [] and count == Event.select().count()


@pytest.mark.both_databases
def test_a_new_code_expires_the_earlier_one(zhang):
    first = services.issue_handwriting_code(zhang)
    services.issue_handwriting_code(zhang)
    assert services.handwriting_status(zhang, first.code).state == "expired"
    with pytest.raises(services.HandwritingCodeInvalid) as expired:
        services.handwriting_code(first.code)
    assert expired.value.state == "expired"


@pytest.mark.both_databases
def test_a_refused_drawing_does_not_spend_the_code(zhang):
    from portal.pdf.handwriting import SignatureImageError

    code = services.issue_handwriting_code(zhang)
    with pytest.raises(SignatureImageError, match="未检测到签名笔迹"):
        services.submit_handwriting(code.code, blank_png())
    assert OneTimeCode.get(code=code.code).used_at is None
    assert services.handwriting_status(zhang, code.code).state == "waiting"


@pytest.mark.both_databases
def test_another_persons_code_has_no_status_for_you(zhang):
    theirs = services.issue_handwriting_code(person("liuyang"))
    with pytest.raises(services.SealNotFound):
        services.handwriting_status(zhang, theirs.code)


# ---------------------------------------------------------------------------------------------
# The PC pages


def test_the_name_menu_links_to_personal_settings(pc):
    assert 'href="/me/seals">个人设置</a>' in pc.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/me/seals"),
        ("post", "/me/seals/handwriting"),
        ("post", "/me/seals/upload"),
        ("get", "/me/seals/x/image"),
    ],
)
def test_personal_settings_need_a_login(client, demo, method, path):
    response = getattr(client, method)(path, headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_settings_page_shows_each_seal_with_image_kind_size_and_default(pc, zhang):
    html = pc.get("/me/seals").get_data(as_text=True)
    standard, handwritten = seal_of(zhang, SealKind.PERSONAL_STANDARD), seal_of(zhang, SealKind.HANDWRITTEN)
    assert html.count('class="seal-card') == 2
    assert re.search(
        rf'id="seal-{standard.public_id}".*?个人制式签章\s*<span class="badge badge-default">默认</span>', html, re.S
    )
    assert "20 × 20 mm" in html and f"40 × {handwritten.height_mm:g} mm" in html
    assert f"/me/seals/{handwritten.public_id}/default" in html  # 设为默认 for the other one
    assert f"/me/seals/{handwritten.public_id}/delete" in html and f"/me/seals/{standard.public_id}/delete" not in html
    image = pc.get(f"/me/seals/{handwritten.public_id}/image")
    assert image.mimetype == "image/png" and image.data == storage.load(handwritten.image_blob)


def test_without_a_name_seal_the_page_says_when_it_comes(client, demo):
    login(client, "sunjing")
    assert "完成实名认证后，系统会根据您的姓名自动生成" in client.get("/me/seals").get_data(as_text=True)


def test_set_default_answers_htmx_with_the_list_and_a_form_with_a_redirect(pc, zhang):
    handwritten = seal_of(zhang, SealKind.HANDWRITTEN)
    response = pc.post(f"/me/seals/{handwritten.public_id}/default", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.startswith('<section id="seal-list"') and "<html" not in html
    assert "HX-Request" in response.headers["Vary"]
    assert re.search(rf'id="seal-{handwritten.public_id}".*?默认</span>', html, re.S)
    standard = seal_of(zhang, SealKind.PERSONAL_STANDARD)
    response = pc.post(f"/me/seals/{standard.public_id}/default")
    assert response.status_code == 303 and response.headers["Location"] == "/me/seals"
    assert seal_of(zhang, SealKind.PERSONAL_STANDARD).is_default


def test_delete_disables_the_handwritten_seal_and_refuses_the_name_seal(pc, zhang):
    handwritten = seal_of(zhang, SealKind.HANDWRITTEN)
    html = pc.post(f"/me/seals/{handwritten.public_id}/delete", headers=HX).get_data(as_text=True)
    assert handwritten.public_id not in html and Seal.get_by_id(handwritten.id).status == "disabled"
    standard = seal_of(zhang, SealKind.PERSONAL_STANDARD)
    assert pc.post(f"/me/seals/{standard.public_id}/delete", headers=HX).status_code == 400


@pytest.mark.parametrize("action", ["image", "default", "delete"])
def test_another_persons_seal_public_id_gives_404(pc, action):
    theirs = services.create_handwritten_seal(person("liuyang"), signature_png(), source="upload")
    method = pc.get if action == "image" else pc.post
    assert method(f"/me/seals/{theirs.public_id}/{action}", headers=HX).status_code == 404
    theirs = Seal.get_by_id(theirs.id)
    assert theirs.status == "active" and theirs.is_default


def test_posts_without_the_csrf_token_are_refused(client, zhang):
    login(client, "zhangwei")
    handwritten = seal_of(zhang, SealKind.HANDWRITTEN)
    for path in (f"/me/seals/{handwritten.public_id}/default", "/me/seals/handwriting", "/me/seals/upload"):
        assert client.post(path, headers=HX).status_code == 400
    assert not seal_of(zhang, SealKind.HANDWRITTEN).is_default


def test_uploading_a_picture_adds_a_handwritten_seal_and_refreshes_the_list(pc, zhang):
    response = pc.post("/me/seals/upload", data={"image": (io.BytesIO(signature_png()), "签名.png")}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.startswith('<form id="handwriting-upload"')
    assert (
        "手写签名已上传" in html
        and '<section id="seal-list" class="seal-list" aria-label="签章列表" hx-swap-oob="true">' in html
    )
    assert html.count('class="seal-card') == 3
    assert len(services.personal_seals(zhang)) == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [(blank_png(), "未检测到签名笔迹"), (b"%PDF-1.7", "无法识别该文件"), (None, "请选择手写签名图片")],
    ids=["blank", "not-an-image", "no-file"],
)
def test_an_unusable_upload_is_refused_with_the_reason(pc, data, message):
    count = Seal.select().count()

    def form():
        return {} if data is None else {"image": (io.BytesIO(data), "a.png")}

    response = pc.post("/me/seals/upload", data=form(), headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and message in html and "hx-swap-oob" not in html
    page = pc.post("/me/seals/upload", data=form())  # without HTMX: the page, with the message
    assert page.status_code == 422 and message in page.get_data(as_text=True) and "<html" in page.get_data(as_text=True)
    assert Seal.select().count() == count


def test_starting_handwriting_shows_a_qr_code_of_the_one_time_link_that_polls(pc, zhang, app):
    app.config["PORTAL_PUBLIC_URL"] = "https://esign.example.edu.cn"
    html = pc.post("/me/seals/handwriting", headers=HX).get_data(as_text=True)
    code = OneTimeCode.get(OneTimeCode.user == zhang.id, OneTimeCode.purpose == "handwriting")
    assert html.startswith('<div id="handwriting-qr"') and "<svg" in html
    assert f'href="https://esign.example.edu.cn/m/pad/{code.code}"' in html  # the text link under the QR code
    assert f'hx-get="/me/seals/handwriting/{code.code}/status" hx-trigger="load delay:2s"' in html
    assert Event.get(Event.action == "seal.handwriting_link_issued").actor_id == zhang.id


def test_the_status_polls_while_waiting_then_shows_the_seal_and_refreshes_the_list(pc, app):
    code = issue_code(pc)
    waiting = pc.get(f"/me/seals/handwriting/{code}/status", headers=HX).get_data(as_text=True)
    assert waiting.startswith('<div id="handwriting-status"') and 'hx-trigger="load delay:2s"' in waiting
    assert "等待手机端提交签名" in waiting
    assert phone_post(app, code, signature_png(transparent=True)).status_code == 200
    done = pc.get(f"/me/seals/handwriting/{code}/status", headers=HX).get_data(as_text=True)
    seal = Seal.select().where(Seal.kind == SealKind.HANDWRITTEN).order_by(Seal.id.desc()).get()
    assert "hx-trigger" not in done.split('<section id="seal-list"')[0]  # polling stops
    assert "已收到手机提交的手写签名" in done and f"/me/seals/{seal.public_id}/image" in done
    assert 'id="seal-list"' in done and 'hx-swap-oob="true"' in done and done.count('class="seal-card') == 3


def test_an_expired_code_stops_polling_and_offers_a_new_one(pc):
    code = issue_code(pc)
    OneTimeCode.update(expires_at=utcnow() - timedelta(seconds=1)).where(OneTimeCode.code == code).execute()
    html = pc.get(f"/me/seals/handwriting/{code}/status", headers=HX).get_data(as_text=True)
    assert "二维码已过期" in html and "hx-trigger" not in html and "重新生成二维码" in html


def test_another_persons_code_status_gives_404(pc, zhang):
    theirs = services.issue_handwriting_code(person("liuyang"))
    assert pc.get(f"/me/seals/handwriting/{theirs.code}/status", headers=HX).status_code == 404


# ---------------------------------------------------------------------------------------------
# The phone


def test_the_pad_opens_from_the_link_without_a_login(pc, app):
    code = issue_code(pc)
    phone = app.test_client()
    response = phone.get(f"/m/pad/{code}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "张伟，请在下方方框内签写您的姓名" in html
    assert "<canvas" in html and "data-signature-pad" in html and 'data-csrf-token="' in html
    assert "vendor/signature_pad.umd.min.js" in html and "js/signature-pad.js" in html
    assert 'name="viewport"' in html
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"


def test_the_phone_drawing_is_saved_once_for_the_codes_owner(pc, app, zhang):
    code = issue_code(pc)
    pad = open_pad(app, code)
    response = phone_post(app, code, signature_png(transparent=True), pad=pad)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.startswith('<section id="pad"') and "签名已提交" in html
    assert "data:image/png;base64," in html
    assert len([s for s in services.personal_seals(zhang) if s.kind == SealKind.HANDWRITTEN]) == 2
    again = phone_post(app, code, signature_png(transparent=True), pad=pad)  # 提交 pressed twice
    assert again.status_code == 410 and "该二维码已使用" in again.get_data(as_text=True)
    assert app.test_client().get(f"/m/pad/{code}").status_code == 410
    assert len([s for s in services.personal_seals(zhang) if s.kind == SealKind.HANDWRITTEN]) == 2


def test_a_blank_drawing_is_refused_and_the_code_still_works(pc, app):
    code = issue_code(pc)
    response = phone_post(app, code, blank_png())
    assert response.status_code == 422
    assert response.get_data(as_text=True).startswith(
        '<p id="pad-message"'
    ) and "未检测到签名笔迹" in response.get_data(as_text=True)
    assert phone_post(app, code, signature_png(transparent=True)).status_code == 200


def test_the_phone_post_needs_the_csrf_token_of_its_page(pc, app):
    code = issue_code(pc)
    assert phone_post(app, code, signature_png(transparent=True), with_token=False).status_code == 400
    assert OneTimeCode.get(code=code).used_at is None


def test_an_unknown_or_expired_link_shows_why_on_the_phone(pc, app):
    phone = app.test_client()
    unknown = phone.get("/m/pad/not-a-code")
    assert unknown.status_code == 404 and "二维码无效" in unknown.get_data(as_text=True)
    code = issue_code(pc)
    OneTimeCode.update(expires_at=utcnow() - timedelta(seconds=1)).where(OneTimeCode.code == code).execute()
    expired = phone.get(f"/m/pad/{code}")
    assert expired.status_code == 410 and "二维码已过期" in expired.get_data(as_text=True)
    assert "<canvas" not in expired.get_data(as_text=True)
