"""A stand-in for the WeChat Work (企业微信) server API (qyapi.weixin.qq.com) on 127.0.0.1.

It answers the calls the portal makes the way the real service does: GET under /cgi-bin/ with the
parameters in the query string, answered with HTTP 200 and JSON that carries `errcode` (0 = ok) and
`errmsg`. Like the real one:

* gettoken?corpid=&corpsecret= refuses an unknown CorpID (40013) and a wrong secret (40001), and
  inside a token's window hands out the same token again (expires_in 7200);
* get_jsapi_ticket?access_token= refuses a missing token (41001), one it never issued (40014) and
  an expired one (42001), and hands out the same ticket inside its window.

The test can expire every token early, as WeCom sometimes does (`expire_tokens()`), and make the
next calls of a path fail with a given errcode (`fail_next()`); `calls` lists every call.

    with FakeWxWork.running() as peer:
        app = make_app(**peer.portal_config())
"""

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from fakes.peer import FakePeer

LIFETIME = 7200
ERRMSG = {
    0: "ok",
    -1: "system busy",
    40001: "invalid credential",
    40013: "invalid corpid",
    40014: "invalid access_token",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    42001: "access_token expired",
}


class Refusal(Exception):
    def __init__(self, errcode: int):
        super().__init__(errcode)
        self.errcode = errcode


class FakeWxWork(FakePeer):
    CORP_ID = "ww0a1b2c3d4e5f6a7b"
    AGENT_ID = "1000002"
    SECRET = "fake-wxwork-app-secret-for-portal-tests-000000"

    def __init__(self):
        self.secrets = {self.CORP_ID: self.SECRET}
        self.tokens: dict[str, dict] = {}  # access_token → {"expires": epoch seconds, "errcode": when refused}
        self.ticket: str | None = None
        self.ticket_expires = 0.0
        self.failures: dict[str, list[int]] = {}  # path → errcodes the next calls answer
        self.calls: list[tuple[str, int]] = []  # (path, errcode) of every call
        self.lock = threading.Lock()

    # ---- for the tests ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.origin

    def portal_config(self) -> dict:
        return {
            "WXWORK_API_URL": self.url,
            "WXWORK_CORP_ID": self.CORP_ID,
            "WXWORK_AGENT_ID": self.AGENT_ID,
            "WXWORK_SECRET": self.SECRET,
            "WXWORK_TIMEOUT_SECONDS": 5,
        }

    def expire_tokens(self, errcode: int = 42001):
        """WeCom drops every token early: using one answers `errcode` (42001 expired, 40014 invalid)."""
        with self.lock:
            for token in self.tokens.values():
                token["errcode"] = errcode

    def fail_next(self, path: str, errcode: int, times: int = 1):
        """The next `times` calls of /cgi-bin/<path> answer `errcode`, whatever they ask."""
        with self.lock:
            self.failures.setdefault(path, []).extend([errcode] * times)

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]

    # ---- the API ----------------------------------------------------------------------------

    def handle(self, path: str, query: dict[str, str]) -> dict:
        with self.lock:
            try:
                failures = self.failures.get(path)
                if failures:
                    raise Refusal(failures.pop(0))
                if path == "gettoken":
                    answer = self._gettoken(query)
                elif path == "get_jsapi_ticket":
                    answer = self._ticket(query)
                else:
                    raise Refusal(-1)  # no call the portal makes
            except Refusal as refusal:
                self.calls.append((path, refusal.errcode))
                return {"errcode": refusal.errcode, "errmsg": ERRMSG.get(refusal.errcode, "error")}
            self.calls.append((path, 0))
            return {"errcode": 0, "errmsg": "ok", **answer}

    def _gettoken(self, query: dict) -> dict:
        corp_id, secret = query.get("corpid"), query.get("corpsecret")
        if not corp_id:
            raise Refusal(41002)
        if not secret:
            raise Refusal(41004)
        if corp_id not in self.secrets:
            raise Refusal(40013)
        if secret != self.secrets[corp_id]:
            raise Refusal(40001)
        now = time.time()
        for token, state in self.tokens.items():  # inside its window, the same token again
            if state["expires"] > now and state["errcode"] is None:
                return {"access_token": token, "expires_in": int(state["expires"] - now)}
        token = secrets.token_urlsafe(48)
        self.tokens[token] = {"expires": now + LIFETIME, "errcode": None}
        return {"access_token": token, "expires_in": LIFETIME}

    def _ticket(self, query: dict) -> dict:
        token = query.get("access_token")
        if not token:
            raise Refusal(41001)
        state = self.tokens.get(token)
        if state is None:
            raise Refusal(40014)
        if state["errcode"] is not None:
            raise Refusal(state["errcode"])
        if state["expires"] <= time.time():
            raise Refusal(42001)
        now = time.time()
        if self.ticket is None or self.ticket_expires <= now:
            self.ticket = secrets.token_urlsafe(64)
            self.ticket_expires = now + LIFETIME
        return {"ticket": self.ticket, "expires_in": int(self.ticket_expires - now)}


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeWxWork/1.0"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path.startswith("/cgi-bin/"):
            query = {name: values[-1] for name, values in parse_qs(url.query).items()}
            answer = self.server.peer.handle(url.path.removeprefix("/cgi-bin/"), query)
            body, status = json.dumps(answer).encode(), 200
        else:
            body, status = b"", 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


FakeWxWork.handler = _Handler
