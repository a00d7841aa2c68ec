"""A stand-in for Tencent Cloud FaceID (faceid.tencentcloudapi.com, Version 2018-03-01) on 127.0.0.1.

It answers the two calls the portal makes, DetectAuth and GetDetectInfoEnhanced, the way the real
service does: a POST of JSON to "/", signed with TC3-HMAC-SHA256, answered with HTTP 200 and either
{"Response": {..., "RequestId"}} or {"Response": {"Error": {"Code", "Message"}, "RequestId"}}.
Like the real one it refuses an unknown SecretId, a stale timestamp, a signature that does not
match the request, an unknown action or version, missing or unknown parameters, an unknown RuleId
and a BizToken it did not issue or that has expired. The signature is checked with its own
implementation of the scheme (not the portal's), so a mistake in the portal's signer fails here.

The test decides each verification's outcome with `decide()`, as the person's phone would. GET on
the H5 link returned by DetectAuth shows a phone page whose buttons decide and then redirect to the
RedirectUrl with the BizToken appended, as the real H5 flow does (the browser tests use it).

    with FakeFaceId.running() as peer:
        app = make_app(REAL_NAME_PROVIDER="face", **peer.portal_config())
"""

import hashlib
import hmac
import html
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from fakes.peer import FakePeer

VERSION = "2018-03-01"
SESSION_SECONDS = 7200
SIGNATURE_WINDOW = 300  # AuthFailure.SignatureExpire beyond five minutes
PARAMS = {
    "DetectAuth": {
        "required": {"RuleId"},
        "allowed": {
            "RuleId", "TerminalType", "IdCard", "Name", "RedirectUrl", "Extra", "ImageBase64", "Encryption",
            "IntentionVerifyText", "IntentionQuestions", "IntentionActions", "Config",
        },
    },
    "GetDetectInfoEnhanced": {
        "required": {"BizToken", "RuleId"},
        "allowed": {
            "BizToken", "RuleId", "InfoType", "BestFramesCount", "IsCutIdCardImage", "IsNeedIdCardAvatar",
            "IsEncrypt", "Encryption", "IsEncryptResponse", "IsReturnAllVideo",
        },
    },
}  # fmt: skip
STRINGS = {"RuleId", "IdCard", "Name", "RedirectUrl", "Extra", "BizToken", "InfoType"}
AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
ID_CARD = re.compile(r"\d{17}[\dX]")


class Refusal(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code, self.message = code, message


@dataclass
class Verification:
    """One DetectAuth session and, once decided, its outcome."""

    token: str
    rule_id: str
    name: str
    id_card: str
    redirect_url: str
    extra: str
    created: float = field(default_factory=time.time)
    err_code: int | None = None
    err_msg: str | None = None
    sim: str | None = None


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    signing_key = mac(mac(mac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeFaceId(FakePeer):
    SECRET_ID = "AKIDfakeFaceIdPortalTests0001"
    SECRET_KEY = "fake-face-secret-key-for-tests"
    RULE_ID = "1"

    def __init__(self):
        self.keys = {self.SECRET_ID: self.SECRET_KEY}
        self.rule_ids = {self.RULE_ID}
        self.sessions: dict[str, Verification] = {}
        self.calls: list[dict] = []  # every API call: action, params, and the error code if refused
        self.lock = threading.Lock()

    # ---- for the tests ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.origin + "/"

    def portal_config(self) -> dict:
        return {
            "FACE_API_URL": self.url,
            "FACE_SECRET_ID": self.SECRET_ID,
            "FACE_SECRET_KEY": self.SECRET_KEY,
            "FACE_RULE_ID": self.RULE_ID,
            "FACE_TIMEOUT_SECONDS": 5,
        }

    def latest(self) -> Verification:
        with self.lock:
            return list(self.sessions.values())[-1]

    def decide(self, token: str | None = None, *, passed: bool = True, err_code: int = 1001, sim: str = "92.34"):
        """The person finishes on the phone: a pass (ErrCode 0) or a failure with err_code."""
        with self.lock:
            session = self.sessions[token] if token else list(self.sessions.values())[-1]
            session.err_code = 0 if passed else err_code
            session.err_msg = "成功" if passed else "比对相似度未达到通过标准"
            session.sim = sim if passed else "41.20"
        return session

    def age(self, seconds: float, token: str | None = None):
        """Pretend the session was opened `seconds` earlier."""
        with self.lock:
            session = self.sessions[token] if token else list(self.sessions.values())[-1]
            session.created -= seconds

    def actions(self) -> list[str]:
        return [call["action"] for call in self.calls]

    # ---- the API ----------------------------------------------------------------------------

    def handle(self, headers, body: bytes) -> dict:
        request_id = str(uuid.uuid4())
        action = headers.get("X-TC-Action", "")
        call = {"action": action, "params": None, "error": None}
        self.calls.append(call)
        try:
            self._authenticate(headers, body)
            if action not in PARAMS:
                raise Refusal("InvalidAction", f"The action {action} does not exist.")
            if headers.get("X-TC-Version") != VERSION:
                raise Refusal("NoSuchVersion", "The API version does not exist.")
            try:
                params = json.loads(body)
            except ValueError:
                raise Refusal("InvalidParameter", "The request body is not JSON.") from None
            if not isinstance(params, dict):
                raise Refusal("InvalidParameter", "The request body is not a JSON object.")
            call["params"] = params
            self._check_params(action, params)
            answer = self._detect_auth(params) if action == "DetectAuth" else self._detect_info(params)
        except Refusal as refusal:
            call["error"] = refusal.code
            return {"Response": {"Error": {"Code": refusal.code, "Message": refusal.message}, "RequestId": request_id}}
        return {"Response": {**answer, "RequestId": request_id}}

    def _authenticate(self, headers, body: bytes):
        match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
        if not match:
            raise Refusal("AuthFailure.InvalidAuthorization", "The Authorization header is not TC3-HMAC-SHA256.")
        secret_key = self.keys.get(match["id"])
        if secret_key is None:
            raise Refusal("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            timestamp = int(headers.get("X-TC-Timestamp", ""))
        except ValueError:
            raise Refusal("MissingParameter", "X-TC-Timestamp is missing.") from None
        if abs(time.time() - timestamp) > SIGNATURE_WINDOW:
            raise Refusal("AuthFailure.SignatureExpire", "The signature has expired.")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        signed = match["signed"].split(";")
        if match["date"] != date or match["service"] != "faceid" or not {"content-type", "host"} <= set(signed):
            raise Refusal("AuthFailure.SignatureFailure", "The credential scope or signed headers are wrong.")
        if not headers.get("Content-Type", "").startswith("application/json"):
            raise Refusal("InvalidParameter", "Content-Type must be application/json.")
        # Rebuilt from the headers as received: a header changed after signing breaks the signature.
        canonical_headers = "".join(f"{name}:{(headers.get(name) or '').strip().lower()}\n" for name in signed)
        canonical_request = f"POST\n/\n\n{canonical_headers}\n{match['signed']}\n{hashlib.sha256(body).hexdigest()}"
        string_to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{date}/faceid/tc3_request\n"
            + hashlib.sha256(canonical_request.encode()).hexdigest()
        )
        expected = tc3_signature(secret_key, date, "faceid", string_to_sign)
        if not hmac.compare_digest(expected, match["signature"]):
            raise Refusal("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")

    def _check_params(self, action: str, params: dict):
        spec = PARAMS[action]
        unknown = sorted(params.keys() - spec["allowed"])
        if unknown:
            raise Refusal("UnknownParameter", f"The parameter {unknown[0]} is not recognized.")
        missing = sorted(spec["required"] - params.keys())
        if missing:
            raise Refusal("MissingParameter", f"The request is missing a required parameter {missing[0]}.")
        for name in sorted(STRINGS & params.keys()):
            if not isinstance(params[name], str):
                raise Refusal("InvalidParameter", f"The parameter {name} must be a String.")
        if params["RuleId"] not in self.rule_ids:
            raise Refusal("InvalidParameterValue.RuleIdNotExist", "The RuleId does not exist.")

    def _detect_auth(self, params: dict) -> dict:
        if "IdCard" in params and not ID_CARD.fullmatch(params["IdCard"]):
            raise Refusal("InvalidParameterValue", "IdCard is not a resident ID number.")
        if len(params.get("Name", "")) > 32:
            raise Refusal("InvalidParameterValue", "Name is longer than 32 characters.")
        redirect = params.get("RedirectUrl", "")
        if redirect and (not redirect.startswith(("http://", "https://")) or len(redirect) > 1024):
            raise Refusal("InvalidParameterValue", "RedirectUrl must be an http(s) URL of at most 1024 characters.")
        if len(params.get("Extra", "")) > 1024:
            raise Refusal("InvalidParameterValue", "Extra is longer than 1024 characters.")
        token = str(uuid.uuid4()).upper()
        with self.lock:
            self.sessions[token] = Verification(
                token=token,
                rule_id=params["RuleId"],
                name=params.get("Name", ""),
                id_card=params.get("IdCard", ""),
                redirect_url=redirect,
                extra=params.get("Extra", ""),
            )
        return {"Url": f"{self.url}h5/{token}", "BizToken": token}

    def _detect_info(self, params: dict) -> dict:
        with self.lock:
            session = self.sessions.get(params["BizToken"])
        if session is None or session.rule_id != params["RuleId"]:
            raise Refusal("InvalidParameterValue.BizTokenIllegal", "The BizToken is invalid.")
        finished = session.err_code is not None
        if not finished and time.time() - session.created > SESSION_SECONDS:
            raise Refusal("InvalidParameterValue.BizTokenExpired", "The BizToken has expired.")
        # Before the person finishes, the result fields are null, as the real service answers.
        text = {
            "ErrCode": session.err_code,
            "ErrMsg": session.err_msg,
            "IdCard": session.id_card if finished else "",
            "Name": session.name if finished else "",
            "Sim": session.sim,
            "LiveStatus": session.err_code,
            "Comparestatus": session.err_code,
            "Extra": session.extra,
            "Mobile": "",
        }
        # InfoType lists what to return: "0" everything, else digits (1 text, 2 ID card, 3 best frames).
        info = params.get("InfoType", "0")
        wants = set("123") if info == "0" else set(info)
        return {
            "Text": text if "1" in wants else None,
            "IdCardData": {"OcrFront": "/9j/fake-id-card-photo"} if "2" in wants and finished else None,
            "BestFrame": {"BestFrame": "/9j/fake-best-frame"} if "3" in wants and finished else None,
            "VideoData": None,
            "Encryption": None,
            "IntentionVerifyData": None,
        }

    # ---- the H5 page the phone opens ----------------------------------------------------------

    def h5_page(self, token: str) -> str:
        with self.lock:
            session = self.sessions.get(token)
        if session is None:
            return "<p>链接无效</p>"
        return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>人脸核身（测试）</title></head>
<body><h1>人脸核身</h1><p>{html.escape(session.name)}，请完成人脸识别（测试替身）。</p>
<form method="post" action="/h5/{token}"><button name="verdict" value="pass">完成核验</button>
<button name="verdict" value="fail">模拟比对失败</button></form></body></html>"""

    def h5_finish(self, token: str, verdict: str) -> str:
        session = self.decide(token, passed=verdict == "pass")
        separator = "&" if "?" in session.redirect_url else "?"
        # The real flow appends the BizToken; a test may add more to show it is not believed.
        return f"{session.redirect_url}{separator}BizToken={token}"


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeFaceId/1.0"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        peer = self.server.peer
        path = urlsplit(self.path).path
        if path == "/":
            answer = peer.handle(self.headers, self._body())
            self._send(200, json.dumps(answer, ensure_ascii=False).encode(), "application/json")
        elif path.startswith("/h5/"):
            verdict = parse_qs(self._body().decode()).get("verdict", ["pass"])[0]
            location = peer.h5_finish(path.removeprefix("/h5/"), verdict)
            self._send(303, b"", "text/plain", {"Location": location})
        else:
            self._send(404, b"", "text/plain")

    def do_GET(self):
        path = urlsplit(self.path).path
        if path.startswith("/h5/"):
            page = self.server.peer.h5_page(path.removeprefix("/h5/"))
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"", "text/plain")


FakeFaceId.handler = _Handler
