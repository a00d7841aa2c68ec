"""Real-name authentication (SPEC F2): the dialog, the ID number's checks and secrecy, admin review,
face verification against a fake Tencent FaceID peer, the personal seal, and the signing guard."""

import json
import logging

import pytest
import requests
from fakes.face import FakeFaceId
from helpers import csrf_token, login

from portal.accounts import realname
from portal.accounts.models import RealNameRequest, RealNameStatus, User
from portal.accounts.providers.faceid import tc3_authorization
from portal.accounts.realname_views import real_name_required
from portal.audit import verify_chain
from portal.audit.models import Event
from portal.certificates import keystore
from portal.config import ConfigError
from portal.seals.models import Seal, SealKind

pytestmark = pytest.mark.both_databases

ID = "11010519491231002X"  # python-stdnum's test vector, a Beijing (朝阳) number
MASKED = "110105********002X"
MOBILE = "13812345678"
HX = {"HX-Request": "true"}


def person(username="zhangwei") -> User:
    return User.get(User.username == username)


def logged_in(app, username="zhangwei", password="demo1234"):
    client = app.test_client()
    login(client, username, password)
    return client


def submit_form(client, *, name="张伟", id_number=ID, mobile=MOBILE, htmx=True):
    data = {"csrf_token": csrf_token(client, "/real-name/new"), "name": name, "id_number": id_number, "mobile": mobile}
    return client.post("/real-name", data=data, headers=HX if htmx else {})


def admin_post(client, path, **data):
    data["csrf_token"] = csrf_token(client, "/admin/real-name")
    return client.post(path, data=data, headers=HX)


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def face_peer():
    with FakeFaceId.running() as peer:
        yield peer


@pytest.fixture
def face_app(make_app, face_peer):
    from portal import demo

    app = make_app(REAL_NAME_PROVIDER="face", **face_peer.portal_config())
    demo.seed()
    return app


# ---- the guard ----------------------------------------------------------------------------------


def test_an_unverified_person_cannot_start_a_signature(app, demo):
    app.add_url_rule("/_test/sign", "test_sign", real_name_required(lambda: "签署已开始"), methods=["GET", "POST"])
    for status in (RealNameStatus.UNVERIFIED, RealNameStatus.PENDING, RealNameStatus.REJECTED):
        with pytest.raises(realname.RealNameRequired, match="请先完成实名认证"):
            realname.require_real_name(User(real_name_status=status))
    realname.require_real_name(User(real_name_status=RealNameStatus.VERIFIED))

    assert app.test_client().get("/_test/sign").status_code == 302  # to the login page
    client = logged_in(app)
    page = client.get("/_test/sign")
    assert page.status_code == 403 and "请先完成实名认证" in text(page) and 'href="/real-name"' in text(page)
    fragment = client.post("/_test/sign", headers={**HX, "X-CSRFToken": csrf_token(client, "/")})
    assert fragment.status_code == 403 and "<html" not in text(fragment) and "立即实名认证" in text(fragment)

    User.update(real_name_status=RealNameStatus.VERIFIED).where(User.username == "zhangwei").execute()
    assert text(client.get("/_test/sign")) == "签署已开始"


# ---- the dialog and the form --------------------------------------------------------------------


def test_the_home_page_shows_the_dialog_until_the_person_is_verified(app, demo):
    client = logged_in(app)
    home = text(client.get("/"))
    assert 'id="real-name-panel"' in home and "立即实名认证" in home and "已实名" not in home
    form = client.get("/real-name/new", headers=HX)
    assert text(form).startswith('<section id="real-name-panel"')
    for label in ("姓名", "身份证号码", "手机号码", "下一步"):
        assert label in text(form)
    assert 'value="张伟"' in text(form)  # the account's name is offered

    User.update(real_name_status=RealNameStatus.VERIFIED).where(User.username == "zhangwei").execute()
    home = text(client.get("/"))
    assert 'id="real-name-panel"' not in home and "已实名" in home
    page = text(client.get("/real-name"))
    assert "已实名" in page and 'name="id_number"' not in page
    assert client.get("/real-name/new").headers["Location"] == "/real-name"


def test_a_wrong_check_digit_is_refused_with_its_reason(app, demo):
    client = logged_in(app)
    refused = submit_form(client, id_number="110105194912310021")
    assert refused.status_code == 422
    assert text(refused).startswith('<div id="real-name-errors"') and "身份证号码校验位错误" in text(refused)
    assert RealNameRequest.select().count() == 0 and person().real_name_status == RealNameStatus.UNVERIFIED

    # Without htmx the page comes back with the name and mobile, every reason, and no ID number.
    page = submit_form(client, name="Zhang Wei", id_number="110105194912310021", mobile="2345", htmx=False)
    assert page.status_code == 422
    for reason in ("请填写身份证上的中文姓名", "身份证号码校验位错误", "请填写11位中国大陆手机号码"):
        assert reason in text(page)
    assert 'value="Zhang Wei"' in text(page) and 'value="2345"' in text(page)
    assert "110105194912310021" not in text(page)


def test_names_the_personal_seal_cannot_carve_are_refused_before_anything_is_stored(app, demo):
    client = logged_in(app)
    assert "姓名超过9个字" in text(submit_form(client, name="阿卜杜热合曼·买买提江"))
    assert "请填写姓名" in text(submit_form(client, name="  "))
    assert realname.clean_name("热依拉•买买提") == "热依拉·买买提"  # the dot people type becomes the middle dot
    assert realname.clean_mobile("+86 138-1234-5678") == MOBILE
    assert RealNameRequest.select().count() == 0


def test_the_raw_id_number_is_never_shown_or_logged(app, demo, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "110105194912310021"
    client, admin = logged_in(app), logged_in(app, "admin", "admin1234")
    pages = [
        submit_form(client, id_number=wrong),
        submit_form(client, id_number=wrong, htmx=False),
        submit_form(client),
        client.get("/"),
        client.get("/real-name"),
    ]
    rn = RealNameRequest.get()
    pages += [client.get(f"/real-name/{rn.public_id}/status", headers=HX), admin.get("/admin/real-name")]
    pages.append(admin_post(admin, f"/admin/real-name/{rn.public_id}/approve"))
    pages += [client.get("/real-name"), admin.get("/admin/real-name"), admin.get("/")]

    assert all(p.status_code in (200, 422) for p in pages)
    assert any(MASKED in text(p) for p in pages)
    for raw in (ID, wrong, ID[6:14]):  # nor the birth date on its own
        assert not any(raw in text(p) for p in pages)
        assert raw not in caplog.text
        assert not any(raw in json.dumps(e.data, ensure_ascii=False) for e in Event.select())
    stored = person()
    for blob in (stored.id_number_enc, RealNameRequest.get().id_number_enc):
        assert ID.encode() not in bytes(blob) and keystore.unwrap(blob, "id-number").decode() == ID
    assert stored.id_number_masked == MASKED


# ---- admin review -------------------------------------------------------------------------------


def test_an_admin_approves_and_the_person_gets_a_personal_seal(app, demo):
    user, admin = person(), person("admin")
    User.update(name="张伟(待核)").where(User.id == user.id).execute()  # the account's name differs
    seeded = Event.select().count()
    rn = realname.submit(person(), name="张伟", id_number=ID, mobile=MOBILE)
    assert rn.status == RealNameStatus.PENDING and rn.provider == "review" and rn.provider_session is None
    assert list(realname.review_queue()) == [rn]

    realname.approve(rn, admin)
    user = person()
    assert user.real_name_status == RealNameStatus.VERIFIED and user.name == "张伟" and user.mobile == MOBILE
    assert user.id_number_masked == MASKED and keystore.unwrap(user.id_number_enc, "id-number").decode() == ID
    rn = RealNameRequest.get_by_id(rn.id)
    assert rn.status == RealNameStatus.VERIFIED and rn.decided_by_id == admin.id and rn.decided_at is not None
    seal = Seal.get(Seal.owner_user == user.id)
    assert seal.kind == SealKind.PERSONAL_STANDARD and seal.name == "张伟名章" and seal.is_default

    actions = [(e.action, e.actor_id) for e in Event.select().where(Event.seq > seeded).order_by(Event.seq)]
    assert actions == [
        ("realname.submitted", user.id),
        ("realname.verified", admin.id),
        ("seal.created", admin.id),
    ]
    verified = Event.get(Event.action == "realname.verified").data
    assert verified["previous_name"] == "张伟(待核)" and verified["id_number"] == MASKED
    assert verify_chain()[1] == []
    assert list(realname.review_queue()) == []
    with pytest.raises(realname.RealNameError, match="该申请已被处理"):
        realname.approve(rn, admin)


def test_the_queue_shows_masked_requests_and_the_persons_page_turns_to_verified(app, demo):
    client, admin = logged_in(app), logged_in(app, "admin", "admin1234")
    submit_form(client, name="张卫")
    rn = RealNameRequest.get()
    queue = text(admin.get("/admin/real-name"))
    assert "实名认证审核" in queue and MASKED in queue and "138****5678" in queue
    assert "与账号姓名“张伟”不同" in queue and 'id="review-pending-count"' in queue

    waiting = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert "等待管理员审核" in waiting and 'hx-trigger="load delay:5s"' in waiting

    approved = admin_post(admin, f"/admin/real-name/{rn.public_id}/approve")
    assert approved.status_code == 200 and "已通过" in text(approved)
    assert f'<li id="review-{rn.public_id}"' in text(approved) and 'hx-swap-oob="true">0</span>' in text(approved)

    done = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert "核验成功" in done and "已实名" in done and "hx-trigger" not in done


def test_a_rejected_person_sees_the_reason_and_can_try_again(app, demo):
    client, admin = logged_in(app), logged_in(app, "admin", "admin1234")
    submit_form(client)
    first = RealNameRequest.get()
    missing = admin_post(admin, f"/admin/real-name/{first.public_id}/reject", reason=" ")
    assert missing.status_code == 422 and "请填写驳回原因" in text(missing)

    reason = "身份证号码与学校登记的不一致"
    assert admin_post(admin, f"/admin/real-name/{first.public_id}/reject", reason=reason).status_code == 200
    assert person().real_name_status == RealNameStatus.REJECTED
    status = text(client.get(f"/real-name/{first.public_id}/status", headers=HX))
    assert reason in status and "重新认证" in status and "hx-trigger" not in status
    assert reason in text(client.get("/")) and "立即实名认证" in text(client.get("/"))
    assert Event.get(Event.action == "realname.rejected").data["reason"] == reason

    again = submit_form(client, id_number=ID.lower())
    assert again.status_code == 200 and "等待管理员审核" in text(again)
    second = realname.latest_request(person())
    assert second.id != first.id and person().real_name_status == RealNameStatus.PENDING
    assert list(realname.review_queue()) == [second]


def test_only_admins_see_the_review_queue(app, demo):
    assert app.test_client().get("/admin/real-name").status_code == 302
    client = logged_in(app)
    submit_form(client)
    rn = RealNameRequest.get()
    assert client.get("/admin/real-name").status_code == 403
    token = csrf_token(client, "/")
    assert client.post(f"/admin/real-name/{rn.public_id}/approve", data={"csrf_token": token}).status_code == 403
    assert person().real_name_status == RealNameStatus.PENDING
    assert logged_in(app, "admin", "admin1234").get("/admin/real-name").status_code == 200


def test_nobody_reviews_their_own_request(app, demo):
    admin = person("admin")
    rn = realname.submit(admin, name="王管理", id_number=ID, mobile=MOBILE)
    with pytest.raises(realname.RealNameError, match="不能审核本人的实名认证申请"):
        realname.approve(rn, admin)


def test_submitting_again_replaces_a_pending_request(app, demo):
    first = realname.submit(person(), name="张伟", id_number=ID, mobile=MOBILE)
    second = realname.submit(person(), name="张伟", id_number=ID, mobile="13900001111")
    first = RealNameRequest.get_by_id(first.id)
    assert first.status == RealNameStatus.REJECTED and first.reason == realname.SUPERSEDED
    assert list(realname.review_queue()) == [second]
    assert Event.select().where(Event.action == "realname.submitted").order_by(Event.seq.desc()).first().data[
        "superseded"
    ] == [first.public_id]


def test_a_verified_person_is_not_asked_again_and_an_id_number_belongs_to_one_account(app, demo):
    admin = person("admin")
    realname.approve(realname.submit(person(), name="张伟", id_number=ID, mobile=MOBILE), admin)
    with pytest.raises(realname.RealNameError, match="您已完成实名认证"):
        realname.submit(person(), name="张伟", id_number=ID, mobile=MOBILE)
    with pytest.raises(realname.RealNameError, match="已由其他账号完成实名认证"):
        realname.submit(person("liuyang"), name="刘洋", id_number=ID, mobile=MOBILE)


def test_of_two_pending_requests_for_one_id_number_only_the_first_approved_passes(app, demo):
    admin = person("admin")
    mine = realname.submit(person(), name="张伟", id_number=ID, mobile=MOBILE)
    theirs = realname.submit(person("liuyang"), name="刘洋", id_number=ID, mobile=MOBILE)
    realname.approve(mine, admin)
    realname.approve(theirs, admin)
    theirs = RealNameRequest.get_by_id(theirs.id)
    assert theirs.status == RealNameStatus.REJECTED and "已由其他账号完成实名认证" in theirs.reason
    assert person("liuyang").real_name_status == RealNameStatus.REJECTED


# ---- face verification (Tencent FaceID) ---------------------------------------------------------


def test_tc3_signature_matches_tencents_published_example():
    # The signature v3 example of Tencent Cloud's API documentation (cvm DescribeInstances).
    authorization = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3*******",
        service="cvm",
        timestamp=1551113065,
        payload=b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
        headers={"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"},
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


def test_face_verification_opens_a_session_with_the_providers_contract(face_app, face_peer):
    client = logged_in(face_app)
    step = submit_form(client)
    assert step.status_code == 200
    for words in ("身份核验", "人脸核验", "默认", "确定", MASKED):
        assert words in text(step)
    rn = RealNameRequest.get()
    session = face_peer.latest()
    assert face_peer.calls[0]["action"] == "DetectAuth" and face_peer.calls[0]["error"] is None
    assert face_peer.calls[0]["params"] == {
        "RuleId": FakeFaceId.RULE_ID,
        "IdCard": ID,
        "Name": "张伟",
        "RedirectUrl": f"http://127.0.0.1:8000/real-name/{rn.public_id}/returned",
        "Extra": rn.public_id,
    }
    assert rn.provider == "face" and rn.provider_session == session.token and rn.provider_url.endswith(session.token)
    assert list(realname.review_queue()) == []  # the provider decides, not an administrator

    qr = text(client.get("/real-name", headers=HX))  # 【确定】
    assert "<svg" in qr and 'aria-label="人脸核验二维码"' in qr and "微信" in qr
    assert 'hx-trigger="load delay:2s"' in qr


def test_the_pc_page_turns_to_verified_when_the_provider_says_so(face_app, face_peer):
    client = logged_in(face_app)
    submit_form(client)
    rn = RealNameRequest.get()
    status = f"/real-name/{rn.public_id}/status"
    waiting = text(client.get(status, headers=HX))
    assert waiting.startswith('<div id="real-name-status"') and 'hx-trigger="load delay:2s"' in waiting
    assert person().real_name_status == RealNameStatus.PENDING

    face_peer.decide(passed=True)
    done = text(client.get(status, headers=HX))
    assert "核验成功" in done and "已实名" in done and "hx-trigger" not in done
    asked = [c for c in face_peer.calls if c["action"] == "GetDetectInfoEnhanced"]
    assert asked and all(c["params"]["InfoType"] == "1" and c["error"] is None for c in asked)  # text only

    user = person()
    assert user.real_name_status == RealNameStatus.VERIFIED and user.id_number_masked == MASKED
    assert Seal.get(Seal.owner_user == user.id).kind == SealKind.PERSONAL_STANDARD
    verified = Event.get(Event.action == "realname.verified")
    assert verified.actor_id is None and verified.data["provider"] == "face" and verified.data["err_code"] == 0
    assert verified.data["similarity"] == "92.34"


def test_the_face_result_is_read_server_side_not_from_the_redirect(face_app, face_peer):
    submit_form(logged_in(face_app))
    rn = RealNameRequest.get()
    phone = face_app.test_client()  # the phone is not logged in
    forged = f"/real-name/{rn.public_id}/returned?BizToken={rn.provider_session}&ErrCode=0&Passed=T"
    landing = phone.get(forged)
    assert landing.status_code == 200 and "正在确认核验结果" in text(landing) and "张伟" not in text(landing)
    assert RealNameRequest.get().status == RealNameStatus.PENDING
    assert person().real_name_status == RealNameStatus.PENDING

    face_peer.decide(passed=True)
    assert "核验成功" in text(phone.get(forged))
    assert person().real_name_status == RealNameStatus.VERIFIED
    assert phone.get("/real-name/no-such-request/returned").status_code == 404


def test_a_failed_face_check_is_rejected_with_the_providers_reason(face_app, face_peer):
    client = logged_in(face_app)
    submit_form(client)
    rn = RealNameRequest.get()
    face_peer.decide(passed=False, err_code=1001)
    failed = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert "人脸核验未通过：比对相似度未达到通过标准" in failed and "重新认证" in failed and "hx-trigger" not in failed
    assert person().real_name_status == RealNameStatus.REJECTED
    assert Event.get(Event.action == "realname.rejected").data["err_code"] == 1001
    assert Seal.select().where(Seal.owner_user == person().id).count() == 0
    assert submit_form(client).status_code == 200  # and may try again
    assert len(face_peer.sessions) == 2


def test_an_unfinished_face_session_expires(face_app, face_peer):
    client = logged_in(face_app)
    submit_form(client)
    rn = RealNameRequest.get()
    face_peer.age(7201)
    expired = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert "核验二维码已过期" in expired and "hx-trigger" not in expired
    assert face_peer.calls[-1]["error"] == "InvalidParameterValue.BizTokenExpired"
    assert person().real_name_status == RealNameStatus.REJECTED


def test_a_result_for_another_request_is_no_pass(face_app, face_peer):
    client = logged_in(face_app)
    submit_form(client)
    rn = RealNameRequest.get()
    face_peer.latest().extra = "someone-else"  # the provider's answer names another request
    face_peer.decide(passed=True)
    refused = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert "核验结果与提交的信息不一致" in refused and person().real_name_status == RealNameStatus.REJECTED


def test_a_wrongly_signed_call_is_refused_by_the_peer_and_nothing_is_stored(make_app, face_peer):
    from portal import demo

    config = {**face_peer.portal_config(), "FACE_SECRET_KEY": "not-the-key"}
    app = make_app(REAL_NAME_PROVIDER="face", **config)
    demo.seed()
    refused = submit_form(logged_in(app))
    assert refused.status_code == 422 and "人脸核验服务暂时无法使用，请稍后再试" in text(refused)
    assert face_peer.calls[0]["error"] == "AuthFailure.SignatureFailure"
    assert RealNameRequest.select().count() == 0 and person().real_name_status == RealNameStatus.UNVERIFIED


def test_the_fake_peer_refuses_what_tencent_refuses(face_peer):
    """The fake is only worth testing against if it is as strict as the real service."""

    def call(action="DetectAuth", params=None, *, secret_key=FakeFaceId.SECRET_KEY, timestamp=None, tamper=False):
        import time

        payload = json.dumps(params if params is not None else {"RuleId": "1"}).encode()
        timestamp = timestamp or int(time.time())
        signed = {"Content-Type": "application/json; charset=utf-8", "Host": face_peer.url[7:-1], "X-TC-Action": action}
        authorization = tc3_authorization(
            secret_id=FakeFaceId.SECRET_ID,
            secret_key=secret_key,
            service="faceid",
            timestamp=timestamp,
            payload=payload,
            headers=signed,
        )
        headers = {
            **signed,
            "X-TC-Version": "2018-03-01",
            "X-TC-Timestamp": str(timestamp),
            "Authorization": authorization,
        }
        body = payload + b" " if tamper else payload
        answer = requests.post(face_peer.url, data=body, headers=headers, timeout=5).json()["Response"]
        return answer.get("Error", {}).get("Code", "ok")

    assert call() == "ok"
    assert call(secret_key="wrong") == "AuthFailure.SignatureFailure"
    assert call(tamper=True) == "AuthFailure.SignatureFailure"
    assert call(timestamp=1551113065) == "AuthFailure.SignatureExpire"
    assert call("DescribeInstances") == "InvalidAction"
    assert call(params={}) == "MissingParameter"
    assert call(params={"RuleId": "1", "Surprise": "x"}) == "UnknownParameter"
    assert call(params={"RuleId": "9"}) == "InvalidParameterValue.RuleIdNotExist"
    assert call("GetDetectInfoEnhanced", {"RuleId": "1", "BizToken": "made-up"}) == (
        "InvalidParameterValue.BizTokenIllegal"
    )
    assert requests.post(face_peer.url, data=b"{}", timeout=5).json()["Response"]["Error"]["Code"] == (
        "AuthFailure.InvalidAuthorization"
    )


def test_an_unreachable_provider_leaves_the_request_pending(face_app, face_peer, caplog):
    client = logged_in(face_app)
    submit_form(client)
    rn = RealNameRequest.get()
    face_app.config["FACE_API_URL"] = "http://127.0.0.1:9/"  # discard: nothing listens
    still = text(client.get(f"/real-name/{rn.public_id}/status", headers=HX))
    assert 'hx-trigger="load delay:2s"' in still and person().real_name_status == RealNameStatus.PENDING
    assert "gave no result" in caplog.text and ID not in caplog.text


def test_concurrent_polls_conclude_once(face_app, face_peer):
    client = logged_in(face_app)
    submit_form(client)
    first, second = RealNameRequest.get(), RealNameRequest.get()  # two pollers' stale copies
    face_peer.decide(passed=True)
    realname.refresh(first)
    realname.refresh(second)
    assert Event.select().where(Event.action == "realname.verified").count() == 1
    assert Seal.select().where(Seal.owner_user == person().id).count() == 1


# ---- limits and configuration -------------------------------------------------------------------


def test_submitting_and_polling_are_rate_limited(make_app):
    from portal import demo

    app = make_app(REAL_NAME_SUBMIT_RATE_LIMIT="2 per minute", REAL_NAME_POLL_RATE_LIMIT="3 per minute")
    demo.seed()
    client = logged_in(app)
    assert [submit_form(client).status_code for _ in range(3)] == [200, 200, 429]
    rn = realname.latest_request(person())
    polls = [client.get(f"/real-name/{rn.public_id}/status", headers=HX).status_code for _ in range(4)]
    assert polls == [200, 200, 200, 429]
    # Per person: someone else behind the same address is not held up.
    assert submit_form(logged_in(app, "liuyang"), name="刘洋", id_number="110105198001010016").status_code != 429


def test_the_portal_refuses_to_start_with_an_unknown_or_unconfigured_provider(make_app):
    with pytest.raises(ConfigError, match="REAL_NAME_PROVIDER must be one of face, review"):
        make_app(REAL_NAME_PROVIDER="nobody")
    with pytest.raises(ConfigError, match="FACE_SECRET_ID, FACE_SECRET_KEY, FACE_RULE_ID"):
        make_app(REAL_NAME_PROVIDER="face")
