"""The cosign app over HTTP: 【协同签名工具】 in the PC header, 我的证书, the phone's pages under
/m/ and the JSON API the phone's script calls; a phone played over HTTP with the reference math."""

import re

import pytest
from helpers import csrf_token, login

from portal.accounts.models import OneTimeCode, User
from portal.certificates.models import KeyShare
from portal.cosign import services
from portal.crypto import x509
from portal.crypto.sm2 import PublicKey, encode_signature
from portal.crypto.sm2_2p import ClientShare, keygen_context, sign_context
from portal.crypto.sm3 import sm3
from portal.signing.models import SignRequest

pytestmark = pytest.mark.both_databases


def verifier_hex(pin: str) -> str:
    return sm3(b"phone salt" + pin.encode()).hex()


@pytest.fixture
def zhangwei(demo):
    user = User.get(User.username == "zhangwei")
    user.real_name_status = "verified"
    user.save()
    return user


@pytest.fixture
def browser(client, zhangwei):
    """The PC, logged in."""
    login(client)
    return client


class HttpPhone:
    """The cosign app over HTTP, as static/js/cosign-app.js drives it."""

    def __init__(self, client, user):
        self.client, self.user = client, user
        self.share = self.key_share = self.public_key = None
        self.csrf = csrf_token(client, "/m/activate")

    def post(self, path, body=None):
        return self.client.post(path, json=body or {}, headers={"X-CSRFToken": self.csrf})

    def run(self, session: dict):
        e = int(session["digest"], 16)
        assert PublicKey.from_hex(self.public_key).digest(bytes.fromhex(session["message"])) == e
        nonce = self.share.begin_sign(sign_context(session["token"], e))
        answer = self.post(f"/m/api/sign/{session['token']}/answer", {"q1": nonce.q1.hex(), "proof": nonce.proof.hex()})
        assert answer.status_code == 200, answer.json
        response = tuple(int(answer.json[k], 16) for k in ("r", "s2", "s3"))
        r, s = self.share.finish_sign(nonce, PublicKey.from_hex(self.public_key), e, response)
        return self.post(f"/m/api/sign/{session['token']}/complete", {"signature": encode_signature(r, s).hex()})

    def activate(self, code: str, pin: str = "abc123"):
        self.share = ClientShare.generate()
        proof = self.share.keygen_proof(keygen_context(self.user.public_id))
        body = {"code": code, "p1": self.share.p1.hex(), "proof": proof.hex(), "verifier": verifier_hex(pin)}
        response = self.post("/m/api/activate", body)
        if response.status_code != 201:
            return response
        self.key_share, self.public_key = response.json["key_share"], response.json["public_key"]
        return self.run(response.json["session"])

    def unlock(self, pin: str | None):
        body = {"key_share": self.key_share}
        if pin is not None:
            body["verifier"] = verifier_hex(pin)
        return self.post("/m/api/unlock", body)


@pytest.fixture
def phone(client, zhangwei):
    """The phone, logged in as the same person (its own cookie jar), with a certificate."""
    phone_client = client.application.test_client()
    login(phone_client)
    phone = HttpPhone(phone_client, zhangwei)
    completed = phone.activate(services.issue_activation_code(zhangwei).code)
    assert completed.status_code == 200, completed.json
    return phone


# --- the PC ---------------------------------------------------------------------------------------


def test_the_header_button_opens_a_panel_with_an_activation_qr_code(browser, zhangwei):
    home = browser.get("/").get_data(as_text=True)
    assert "协同签名工具" in home and 'hx-post="/cosign/tool"' in home

    panel = browser.post("/cosign/tool", headers={"HX-Request": "true", "X-CSRFToken": csrf_token(browser, "/")})
    html = panel.get_data(as_text=True)
    assert panel.status_code == 200 and html.lstrip().startswith('<dialog id="cosign-tool-dialog"')
    code = OneTimeCode.get((OneTimeCode.user == zhangwei.id) & (OneTimeCode.purpose == "activation"))
    assert services.format_code(code.code) in html and "10 分钟内有效" in html
    assert 'class="qr"' in html and 'role="img"' in html and "<path" in html
    # Without htmx the same POST shows a whole page.
    page = browser.post("/cosign/tool", data={"csrf_token": csrf_token(browser, "/")}).get_data(as_text=True)
    assert "<html" in page and "激活码" in page


def test_the_qr_codes_carry_the_phone_links(app, zhangwei):
    from types import SimpleNamespace

    from portal.cosign.views import activation_url, sign_request_url

    with app.test_request_context():
        assert activation_url("ABCD2345") == "http://127.0.0.1:8000/m/activate?code=ABCD2345"
        assert sign_request_url(SimpleNamespace(token="t0k3n")) == "http://127.0.0.1:8000/m/sign/t0k3n"


def test_an_unverified_person_is_sent_to_real_name_authentication(client, demo):
    login(client, "liuyang")
    html = client.post("/cosign/tool", headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/")}).get_data(
        as_text=True
    )
    assert "请先完成实名认证" in html and "<svg" not in html
    assert OneTimeCode.select().count() == 0


def test_my_certificate_shows_it_and_revoke_and_reissue_puts_it_on_the_crl(browser, phone):
    share = KeyShare.get(KeyShare.public_id == phone.key_share)
    page = browser.get("/cosign/certificate").get_data(as_text=True)
    assert share.certificate.serial in page and "吊销并重新签发" in page and "<dd>张伟</dd>" in page

    token = csrf_token(browser, "/cosign/certificate")
    refused = browser.post("/cosign/certificate/reissue", data={"csrf_token": token, "reason": "keyCompromise"})
    assert refused.status_code == 400 and "请勾选确认" in refused.get_data(as_text=True)

    done = browser.post(
        "/cosign/certificate/reissue", data={"csrf_token": token, "reason": "keyCompromise", "confirm": "1"}
    )
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "原证书已吊销" in html and 'class="qr"' in html
    crl = browser.get("/ca/crl").data
    assert x509.crl_entries(crl)[int(share.certificate.serial, 16)] == "keyCompromise"
    # The lost phone gets nothing any more.
    assert phone.unlock("abc123").status_code == 409
    refused = browser.post(
        "/cosign/certificate/reissue", data={"csrf_token": token, "reason": "keyCompromise", "confirm": "1"}
    )
    assert refused.status_code == 400 and "您还没有有效的协同签名证书" in refused.get_data(as_text=True)


# --- the phone's pages ------------------------------------------------------------------------------


def test_phone_pages_need_a_login_and_the_api_answers_json(client):
    assert client.get("/m/").status_code == 302
    response = client.post("/m/api/unlock", json={})
    assert response.status_code in (400, 401)  # CSRF first, or the JSON 401


def test_the_api_refuses_a_post_without_the_csrf_token(phone):
    response = phone.client.post(
        "/m/api/unlock", json={"key_share": phone.key_share, "verifier": verifier_hex("abc123")}
    )
    assert response.status_code == 400


def test_without_a_certificate_the_phone_offers_the_download(client, zhangwei):
    login(client)
    html = client.get("/m/").get_data(as_text=True)
    assert "您还没有证书" in html and "点击下载" in html and 'href="/m/activate"' in html
    assert "待签署" in html and "扫一扫" in html and "我的" in html  # the tab bar


def test_the_activation_link_fills_in_the_code_and_confirm_leads_to_the_pin(client, zhangwei):
    login(client)
    code = services.issue_activation_code(zhangwei).code
    page = client.get(f"/m/activate?code={code}").get_data(as_text=True)
    assert f'value="{code}"' in page and "证书激活码获取成功" in page

    token = csrf_token(client, "/m/activate")
    wrong = client.post("/m/activate", data={"csrf_token": token, "code": "ABCD2345"})
    assert wrong.status_code == 400 and "激活码无效" in wrong.get_data(as_text=True)

    pin_page = client.post("/m/activate", data={"csrf_token": token, "code": code}).get_data(as_text=True)
    assert "设置证书密码" in pin_page and "6~12位字母、数字组合" in pin_page
    assert f'data-code="{code}"' in pin_page and f'data-user="{zhangwei.public_id}"' in pin_page
    assert 'pattern="(?=.*[A-Za-z])(?=.*[0-9])[A-Za-z0-9]{6,12}"' in pin_page and 'maxlength="12"' in pin_page
    assert "js/cosign-app.js" in pin_page


def test_the_phone_activates_over_the_api(phone, zhangwei):
    certificate = KeyShare.get(KeyShare.public_id == phone.key_share).certificate
    assert x509.certificate_public_key(bytes(certificate.der)).hex() == phone.public_key
    mine = phone.client.get("/m/mine").get_data(as_text=True)
    assert "协同证书管理" in mine and certificate.serial in mine and "设置自动签名时间" in mine
    assert "修改证书密码" in mine


def test_activation_refusals_are_json_in_chinese(client, zhangwei, demo):
    login(client)
    phone = HttpPhone(client, zhangwei)
    other = User.get(User.username == "liuyang")
    other.real_name_status = "verified"
    other.save()
    response = phone.activate(services.issue_activation_code(other).code)
    assert response.status_code == 400 and response.json["error"] == "该激活码不属于当前登录的账号，请使用本人账号登录"
    response = phone.post("/m/api/activate", {"code": "x", "p1": "zz"})
    assert response.status_code == 400 and "格式" in response.json["error"]
    assert phone.post("/m/api/activate", [1, 2]).status_code == 400


def test_a_wrong_pin_says_how_many_tries_remain_and_the_fifth_locks(phone):
    response = phone.unlock("wrong1")
    assert response.status_code == 403
    assert response.json == {"error": "证书密码错误，还可尝试 4 次", "remaining": 4}
    for _ in range(3):
        phone.unlock("wrong1")
    locked = phone.unlock("wrong1")
    assert locked.status_code == 423 and locked.json["locked"] is True and "已锁定" in locked.json["error"]
    assert phone.unlock("abc123").status_code == 423
    assert "证书已锁定" in phone.client.get("/m/").get_data(as_text=True)


def test_unlock_gives_the_device_secret_and_the_window(phone):
    response = phone.unlock("abc123")
    assert response.status_code == 200 and len(bytes.fromhex(response.json["device_secret"])) == 32
    assert response.json["window_ends_at"] is None
    assert phone.unlock(None).json["pin_required"] is True

    token = csrf_token(phone.client, "/m/mine")
    saved = phone.client.post("/m/mine/auto-sign", data={"csrf_token": token, "minutes": "10"})
    assert saved.status_code == 303 and saved.location.endswith("/m/mine?saved=1")
    ignored = phone.client.post("/m/mine/auto-sign", data={"csrf_token": token, "minutes": "45"})
    assert ignored.status_code == 303 and "saved" not in ignored.location
    assert KeyShare.get(KeyShare.public_id == phone.key_share).auto_sign_minutes == 10

    opened = phone.unlock("abc123")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", opened.json["window_ends_at"])
    assert phone.unlock(None).json["device_secret"] == opened.json["device_secret"]
    assert "当前自动签名有效至" in phone.client.get("/m/mine").get_data(as_text=True)


def test_changing_the_pin_over_the_api(phone):
    body = {
        "key_share": phone.key_share,
        "old_verifier": verifier_hex("wrong1"),
        "new_verifier": verifier_hex("new123"),
    }
    assert phone.post("/m/api/pin", body).json["remaining"] == 4
    body["old_verifier"] = verifier_hex("abc123")
    assert phone.post("/m/api/pin", body).json == {"ok": True}
    assert phone.unlock("new123").status_code == 200
    page = phone.client.get("/m/pin").get_data(as_text=True)
    assert "原证书密码" in page and f'data-key-share="{phone.key_share}"' in page


def test_a_sign_request_is_listed_shown_and_confirmed_over_the_api(phone, zhangwei):
    from cosign_phone import make_request, make_task

    request = make_request(make_task(zhangwei, zhangwei), [b"first", b"second"])
    home = phone.client.get("/m/").get_data(as_text=True)
    assert "实验室安全责任书" in home and "2 个文件 · 2 处签章" in home and f"/m/sign/{request.token}" in home

    page = phone.client.get(f"/m/sign/{request.token}").get_data(as_text=True)
    assert "确认签署" in page and "合同.pdf" in page and "附件一.pdf" in page and "第 2 处签名" in page
    assert 'data-in-window="0"' in page

    assert phone.unlock("abc123").status_code == 200
    started = phone.post(f"/m/api/sign-requests/{request.token}/start").json
    assert started["status"] == "signing" and [s["index"] for s in started["sessions"]] == [0, 1]
    results = [phone.run(session).json for session in started["sessions"]]
    assert results[-1] == {"ok": True, "sign_request": {"status": "done"}}

    again = phone.post(f"/m/api/sign-requests/{request.token}/start").json
    assert again == {"status": "done", "sessions": []}
    signatures = services.signatures_for(SignRequest.get_by_id(request.id))
    certificate = services.signing_certificate(request)
    key = x509.certificate_public_key(bytes(certificate.der))
    assert key.verify(b"first", signatures[0]) and key.verify(b"second", signatures[1])
    assert "签署完成" in phone.client.get(f"/m/sign/{request.token}").get_data(as_text=True)
    assert "暂无待签署的文件" in phone.client.get("/m/").get_data(as_text=True)


def test_someone_elses_sign_request_is_not_found(client, zhangwei):
    from cosign_phone import make_request, make_task

    login(client, "liuyang")
    request = make_request(make_task(zhangwei, zhangwei))
    assert client.get(f"/m/sign/{request.token}").status_code == 404
    token = csrf_token(client, "/m/activate")
    response = client.post(f"/m/api/sign-requests/{request.token}/start", json={}, headers={"X-CSRFToken": token})
    assert response.status_code == 404 and "找不到该签署请求" in response.json["error"]


def test_the_scan_tab_explains_scanning_inside_and_outside_wechat_work(client, zhangwei):
    login(client)
    plain = client.get("/m/scan").get_data(as_text=True)
    assert "手机相机" in plain
    wxwork = client.get("/m/scan", headers={"User-Agent": "Mozilla/5.0 Mobile wxwork/4.1.6 MicroMessenger/7.0.1"})
    assert "企业微信右上角【+】→【扫一扫】" in wxwork.get_data(as_text=True)


def test_the_pin_endpoints_are_rate_limited(make_app):
    app = make_app(COSIGN_PIN_RATE_LIMIT="3 per minute")
    from portal import demo as demo_school

    demo_school.seed()
    user = User.get(User.username == "zhangwei")
    user.real_name_status = "verified"
    user.save()
    client = app.test_client()
    login(client)
    phone = HttpPhone(client, user)
    phone.activate(services.issue_activation_code(user).code)
    statuses = [phone.unlock("wrong1").status_code for _ in range(4)]
    assert statuses == [403, 403, 403, 429]
