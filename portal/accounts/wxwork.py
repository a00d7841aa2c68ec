"""WeChat Work (企业微信) server API: the portal app's access token, the JS-SDK ticket, and the
wx.config signature the phone's 扫一扫 needs.

The contract (developer.work.weixin.qq.com, documents 91039 and 90506):

* GET /cgi-bin/gettoken?corpid=&corpsecret= → {errcode: 0, access_token, expires_in}. A token
  belongs to the app whose secret fetched it. WeCom rate-limits gettoken and hands out the same
  token inside its window anyway, so it is fetched once and kept for expires_in (less a margin).
  WeCom may drop a token early: 40014 (invalid) or 42001 (expired) from a call means fetch a
  new token and retry that call once.
* GET /cgi-bin/get_jsapi_ticket?access_token= → {errcode: 0, ticket, expires_in}: the enterprise
  ticket that signs wx.config. Its fetches are limited per hour, so it is kept the same way.
* signature = sha1("jsapi_ticket=…&noncestr=…&timestamp=…&url=…"), the values raw (not
  URL-escaped), url the page's full address without its #fragment; the nonce and timestamp
  signed are the ones handed to wx.config.

Both values live in Redis when the portal has one, so the gunicorn workers share one token
(WeCom answers the same token to all of them, and a restart does not refetch); otherwise in this
process. Neither the secret nor a token or ticket is ever logged: the query strings carry them,
so failures name only the exception's type or WeCom's errcode.
"""

import hashlib
import logging
import re
import secrets
import string
import threading
import time

import requests
from flask import current_app

log = logging.getLogger(__name__)


class _RedactCredentials(logging.Filter):
    """urllib3 logs every request line at DEBUG, and WeCom takes the secret and the token in the
    query string: with debug logging on, they would land in the log. This blanks them there."""

    CREDENTIALS = re.compile(r"((?:corpsecret|access_token)=)[^&\s]*")

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.CREDENTIALS.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactCredentials())

TOKEN_REFUSED = {40014, 42001}  # invalid / expired access_token: refetch it and retry once
MARGIN_SECONDS = 300  # a cached value is dropped this long before WeCom's expiry
NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 16


class WxWorkError(RuntimeError):
    """WeChat Work could not be reached or refused the call; `errcode` is WeCom's code, if any."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.errcode = errcode


def configured() -> bool:
    """Whether the portal has a WeChat Work app to act as."""
    config = current_app.config
    return bool(config.get("WXWORK_CORP_ID") and config.get("WXWORK_SECRET"))


# ---------------------------------------------------------------------------------------------
# The cache: Redis when configured, else this process


class MemoryCache:
    """One process's cache, shared by its threads."""

    def __init__(self, clock=time.monotonic):
        self._values: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key: str) -> str | None:
        with self._lock:
            value, until = self._values.get(key, (None, 0.0))
        return value if self._clock() < until else None

    def set(self, key: str, value: str, ttl: int):
        with self._lock:
            self._values[key] = (value, self._clock() + ttl)

    def delete(self, key: str):
        with self._lock:
            self._values.pop(key, None)


class RedisCache:
    """Shared by every worker that uses the same Redis; Redis drops a value when its time is up."""

    def __init__(self, conn):
        self.conn = conn

    def get(self, key: str) -> str | None:
        value = self.conn.get(key)
        return value.decode() if value is not None else None

    def set(self, key: str, value: str, ttl: int):
        self.conn.set(key, value, ex=ttl)

    def delete(self, key: str):
        self.conn.delete(key)


def _cache():
    conn = current_app.extensions.get("redis")
    if conn is not None:
        return RedisCache(conn)
    return current_app.extensions.setdefault("wxwork_cache", MemoryCache())


def _key(name: str) -> str:
    """Per corp and app, as tokens are; the app is named by a hash so the secret stays out of Redis."""
    corp_id, secret = current_app.config["WXWORK_CORP_ID"], current_app.config["WXWORK_SECRET"]
    app = hashlib.sha256(f"{corp_id}\n{secret}".encode()).hexdigest()[:16]
    return f"wxwork:{corp_id}:{app}:{name}"


def _cached(name: str, fetch) -> str:
    """The cached value called `name`, or fetch() → (value, expires_in) and keep it."""
    cache, key = _cache(), _key(name)
    value = cache.get(key)
    if value is None:
        value, expires_in = fetch()
        ttl = expires_in - min(MARGIN_SECONDS, expires_in // 2)
        if ttl > 0:
            cache.set(key, value, ttl)
    return value


# ---------------------------------------------------------------------------------------------
# The API


def _get(path: str, params: dict) -> dict:
    """One GET under /cgi-bin/; the answer when its errcode is 0, else WxWorkError."""
    config = current_app.config
    try:
        response = requests.get(
            f"{config['WXWORK_API_URL']}/cgi-bin/{path}", params=params, timeout=config["WXWORK_TIMEOUT_SECONDS"]
        )
        response.raise_for_status()
        body = response.json()
        errcode = int(body.get("errcode", 0))
    except (requests.RequestException, ValueError, TypeError, AttributeError) as e:
        # The exception's type only: its text would quote the URL, and the URL the secret or token.
        raise WxWorkError(f"WeChat Work {path} failed: {type(e).__name__}") from None
    if errcode != 0:
        log.warning("WeChat Work %s refused: errcode %s", path, errcode)
        raise WxWorkError(f"WeChat Work {path} refused: errcode {errcode}", errcode)
    return body


def _value(body: dict, name: str, path: str) -> tuple[str, int]:
    value, expires_in = body.get(name), body.get("expires_in")
    if not isinstance(value, str) or not value or not isinstance(expires_in, int):
        raise WxWorkError(f"WeChat Work {path} answered without {name}/expires_in")
    return value, expires_in


def access_token() -> str:
    """The app's access token (cached)."""
    config = current_app.config

    def fetch():
        body = _get("gettoken", {"corpid": config["WXWORK_CORP_ID"], "corpsecret": config["WXWORK_SECRET"]})
        return _value(body, "access_token", "gettoken")

    return _cached("access_token", fetch)


def call(path: str, params: dict | None = None) -> dict:
    """A GET with the app's access token. A token WeCom calls invalid or expired is dropped from
    the cache and the call made once more with a fresh one; a second refusal is an error."""
    params = params or {}
    try:
        return _get(path, {**params, "access_token": access_token()})
    except WxWorkError as e:
        if e.errcode not in TOKEN_REFUSED:
            raise
    _cache().delete(_key("access_token"))
    return _get(path, {**params, "access_token": access_token()})


def jsapi_ticket() -> str:
    """The enterprise jsapi_ticket that signs wx.config (cached)."""
    return _cached("jsapi_ticket", lambda: _value(call("get_jsapi_ticket"), "ticket", "get_jsapi_ticket"))


def signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """The JS-SDK signature: the four fields in this fixed (also ASCII) order, values raw."""
    text = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(text.encode()).hexdigest()


def jsapi_config(url: str) -> dict:
    """What wx.config needs for the page at `url`: appId (the CorpID), timestamp, nonceStr and
    signature. WeCom signs the address without its #fragment, so it is dropped here too."""
    url = url.split("#", 1)[0]
    timestamp = int(time.time())
    nonce = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    return {
        "appId": current_app.config["WXWORK_CORP_ID"],
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature(jsapi_ticket(), nonce, timestamp, url),
    }
