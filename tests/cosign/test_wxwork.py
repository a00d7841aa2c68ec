"""扫一扫 inside WeChat Work: the API client (token, ticket, their cache and the retry on an
expired token) against a fake WeChat Work on 127.0.0.1, the wx.config signature, the endpoint that
hands it to the phone, and the scan page inside and outside the WeChat Work client."""

import hashlib
import logging

import pytest
import redis
from fakes.wxwork import FakeWxWork
from helpers import login

from portal.accounts import wxwork

WXWORK_UA = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh"
PHONE_UA = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"
PUBLIC = "https://esign.example.edu.cn"
CONFIG = "/m/api/wxwork/jsapi-config"


def sha1_of(ticket, noncestr, timestamp, url) -> str:
    """The documented string, spelled out here rather than taken from the portal."""
    text = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.fixture
def peer():
    with FakeWxWork.running() as peer:
        yield peer


@pytest.fixture
def app(make_app, peer):
    """The portal with WeChat Work configured against the fake (conftest's client and demo use it)."""
    return make_app(PORTAL_PUBLIC_URL=PUBLIC, **peer.portal_config())


@pytest.fixture
def phone(client, demo):
    login(client)
    return client


# --- the signature ----------------------------------------------------------------------------------


def test_the_signature_reproduces_the_documented_example():
    ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    args = (ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value")
    assert wxwork.signature(*args) == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    assert wxwork.signature(*args) == sha1_of(*args)


def test_jsapi_config_signs_the_page_address_without_its_fragment_with_the_corp_ticket(app, peer):
    page = f"{PUBLIC}/m/activate?code=ABCD2345"
    config = wxwork.jsapi_config(page + "#top")
    assert config["appId"] == FakeWxWork.CORP_ID
    assert isinstance(config["timestamp"], int) and len(config["nonceStr"]) == 16 and config["nonceStr"].isalnum()
    assert config["signature"] == sha1_of(peer.ticket, config["nonceStr"], config["timestamp"], page)
    assert wxwork.jsapi_config(page)["nonceStr"] != config["nonceStr"]  # a fresh nonce each time


# --- token and ticket ---------------------------------------------------------------------------------


def test_the_token_and_the_ticket_are_fetched_once_and_then_cached(app, peer):
    for _ in range(3):
        wxwork.jsapi_config(f"{PUBLIC}/m/scan")
    assert peer.calls == [("gettoken", 0), ("get_jsapi_ticket", 0)]


@pytest.mark.parametrize("errcode", [42001, 40014])
def test_a_token_wecom_dropped_early_is_fetched_again_and_the_call_retried_once(app, peer, errcode):
    token = wxwork.access_token()
    peer.expire_tokens(errcode)
    assert wxwork.jsapi_ticket() == peer.ticket
    assert peer.calls == [("gettoken", 0), ("get_jsapi_ticket", errcode), ("gettoken", 0), ("get_jsapi_ticket", 0)]
    assert wxwork.access_token() != token  # the new token is the one kept
    assert len(peer.calls) == 4


def test_a_second_refusal_of_the_token_is_an_error(app, peer):
    peer.fail_next("get_jsapi_ticket", 42001, times=2)
    with pytest.raises(wxwork.WxWorkError) as refused:
        wxwork.jsapi_ticket()
    assert refused.value.errcode == 42001
    assert peer.paths() == ["gettoken", "get_jsapi_ticket", "gettoken", "get_jsapi_ticket"]


def test_other_errors_are_not_retried_and_nothing_is_cached(app, peer):
    peer.fail_next("get_jsapi_ticket", -1)
    with pytest.raises(wxwork.WxWorkError) as busy:
        wxwork.jsapi_ticket()
    assert busy.value.errcode == -1
    assert wxwork.jsapi_ticket() == peer.ticket  # the next call fetches the ticket
    assert peer.paths() == ["gettoken", "get_jsapi_ticket", "get_jsapi_ticket"]


def test_neither_the_secret_nor_a_token_is_logged_even_at_debug_level(app, peer, caplog):
    caplog.set_level(logging.DEBUG)
    wxwork.jsapi_ticket()
    token = next(iter(peer.tokens))
    assert "/cgi-bin/gettoken" in caplog.text and "/cgi-bin/get_jsapi_ticket" in caplog.text  # urllib3's lines
    assert FakeWxWork.SECRET not in caplog.text and token not in caplog.text and peer.ticket not in caplog.text


def test_a_wrong_secret_is_refused_and_not_logged(make_app, peer, caplog):
    make_app(**{**peer.portal_config(), "WXWORK_SECRET": "not-the-apps-secret-0123456789"})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(wxwork.WxWorkError) as refused:
        wxwork.access_token()
    assert refused.value.errcode == 40001
    assert "not-the-apps-secret" not in str(refused.value) + caplog.text
    assert "WeChat Work gettoken refused: errcode 40001" in caplog.text


def test_an_unreachable_service_is_an_error_that_quotes_no_secret(make_app, peer):
    config = peer.portal_config()
    peer.server.server_close()  # nobody listens on the port any more
    make_app(**config)
    with pytest.raises(wxwork.WxWorkError) as failed:
        wxwork.access_token()
    assert failed.value.errcode is None
    assert FakeWxWork.SECRET not in str(failed.value)


def test_the_memory_cache_forgets_a_value_when_its_time_is_up():
    now = [1000.0]
    cache = wxwork.MemoryCache(clock=lambda: now[0])
    cache.set("k", "v", 6900)
    now[0] += 6899
    assert cache.get("k") == "v"
    now[0] += 1
    assert cache.get("k") is None


def test_workers_sharing_redis_share_one_token_kept_less_than_its_lifetime(make_app, peer, redis_url):
    first = make_app(REDIS_URL=redis_url, **peer.portal_config())
    token = wxwork.access_token()
    second = make_app(REDIS_URL=redis_url, **peer.portal_config())
    assert second is not first
    assert wxwork.access_token() == token
    assert peer.paths() == ["gettoken"]
    conn = redis.Redis.from_url(redis_url)
    keys = conn.keys("wxwork:*")
    assert len(keys) == 1 and FakeWxWork.SECRET.encode() not in keys[0]
    assert 7200 - 300 - 5 < conn.ttl(keys[0]) <= 7200 - 300


def test_configured_needs_the_corp_id_and_the_secret(app):
    assert wxwork.configured()
    app.config["WXWORK_SECRET"] = ""
    assert not wxwork.configured()


# --- the endpoint ----------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_the_config_endpoint_signs_a_phone_page_of_the_portal(phone, peer):
    page = f"{PUBLIC}/m/sign/abc?x=1"
    response = phone.get(CONFIG, query_string={"url": page + "#frag"})
    assert response.status_code == 200, response.json
    config = response.json
    assert set(config) == {"appId", "timestamp", "nonceStr", "signature"}
    assert config["signature"] == sha1_of(peer.ticket, config["nonceStr"], config["timestamp"], page)


@pytest.mark.both_databases
@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://evil.example/m/scan",
        "http://esign.example.edu.cn/m/scan",  # http where the portal is https
        "https://esign.example.edu.cn:8443/m/scan",
        "https://esign.example.edu.cn.evil.example/m/scan",
        "https://esign.example.edu.cn@evil.example/m/scan",
        f"{PUBLIC}/login",
        f"{PUBLIC}/m",
        f"{PUBLIC}/m/api/wxwork/jsapi-config",
        f"{PUBLIC}/m/../admin/",
        "/m/scan",
        "javascript:alert(1)//https://esign.example.edu.cn/m/",
        f"{PUBLIC}/m/scan?" + "x" * 2100,
    ],
)
def test_the_config_endpoint_refuses_addresses_outside_the_phone_pages(phone, peer, url):
    response = phone.get(CONFIG, query_string={"url": url})
    assert response.status_code == 400
    assert response.json == {"error": "页面地址不正确，请刷新页面后重试"}
    assert peer.calls == []


@pytest.mark.both_databases
def test_the_config_endpoint_needs_a_login(client, demo, peer):
    response = client.get(CONFIG, query_string={"url": f"{PUBLIC}/m/scan"})
    assert response.status_code == 401 and response.json["error"] == "登录已过期，请重新登录"
    assert peer.calls == []


@pytest.mark.both_databases
def test_the_config_endpoint_without_wechat_work(app, phone, peer):
    app.config["WXWORK_CORP_ID"] = ""
    response = phone.get(CONFIG, query_string={"url": f"{PUBLIC}/m/scan"})
    assert response.status_code == 404 and response.json["error"] == "未配置企业微信"


@pytest.mark.both_databases
def test_the_config_endpoint_when_wechat_work_fails(phone, peer):
    peer.fail_next("gettoken", -1)
    response = phone.get(CONFIG, query_string={"url": f"{PUBLIC}/m/scan"})
    assert response.status_code == 502 and response.json["error"] == "企业微信服务暂时不可用，请稍后重试"


# --- the scan page -----------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_inside_wechat_work_the_scan_page_loads_the_sdk_and_the_scanner(phone):
    html = phone.get("/m/scan", headers={"User-Agent": WXWORK_UA}).get_data(as_text=True)
    assert "/static/vendor/wecom-jssdk.js" in html and "/static/js/wxwork-scan.js" in html
    assert f'data-corp-id="{FakeWxWork.CORP_ID}"' in html
    assert f'data-config-url="{CONFIG}"' in html and 'data-phone-root="/m/"' in html
    assert "data-scan>扫一扫</button>" in html
    assert FakeWxWork.SECRET not in html


@pytest.mark.both_databases
def test_outside_wechat_work_the_scan_page_explains_the_camera(phone):
    html = phone.get("/m/scan", headers={"User-Agent": PHONE_UA}).get_data(as_text=True)
    assert "请用手机相机或企业微信【扫一扫】扫描电脑上显示的二维码" in html
    assert "wecom-jssdk" not in html and "data-wxwork-scan" not in html


@pytest.mark.both_databases
def test_inside_wechat_work_without_an_app_the_scan_page_explains_the_client_scanner(app, phone):
    app.config["WXWORK_SECRET"] = ""
    html = phone.get("/m/scan", headers={"User-Agent": WXWORK_UA}).get_data(as_text=True)
    assert "请点击企业微信右上角【+】→【扫一扫】" in html
    assert "wecom-jssdk" not in html and "data-wxwork-scan" not in html
