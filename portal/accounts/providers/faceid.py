"""Face verification (人脸核验) with Tencent Cloud FaceID (腾讯云慧眼人脸核身), the WeChat H5 flow.

The contract (faceid.tencentcloudapi.com, API 3.0, Version 2018-03-01):

* DetectAuth {RuleId, IdCard, Name, RedirectUrl, Extra} opens a verification and answers
  {Url, BizToken}. Url is the H5 page, opened by scanning its QR code with WeChat; BizToken
  names the verification and is valid for 7200 s.
* The person does liveness and a 1:1 comparison with the authoritative photo on the phone, and
  the phone is then sent to RedirectUrl. That redirect is the front channel: anyone can type it,
  so it decides nothing.
* GetDetectInfoEnhanced {BizToken, RuleId, InfoType} reads the result server-side, the only
  source of truth. Text.ErrCode 0 is a pass, another code a failure (Text.ErrMsg says why), and
  null means the person has not finished yet. InfoType "1" asks for the text result only: the
  portal has no use for the best frames or the ID-card photo, so it never receives them.

Every call is an HTTPS POST of a JSON body signed with TC3-HMAC-SHA256 under the account's
SecretId/SecretKey; errors come back with HTTP 200 as Response.Error {Code, Message}.
HTTP goes through `requests`.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests

from portal.accounts.models import RealNameRequest
from portal.accounts.providers.base import Provider, ProviderError, Session, Verdict
from portal.db import utcnow

log = logging.getLogger(__name__)

SERVICE = "faceid"
VERSION = "2018-03-01"
CONTENT_TYPE = "application/json; charset=utf-8"
ALGORITHM = "TC3-HMAC-SHA256"
SESSION_LIFETIME = timedelta(seconds=7200)  # a BizToken's validity
TEXT_ONLY = "1"  # InfoType: the result text, no images
EXPIRED = "InvalidParameterValue.BizTokenExpired"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, service: str, timestamp: int, payload: bytes, headers: dict[str, str]
) -> str:
    """The Authorization header of Tencent Cloud's signature v3 for a POST to "/" with no query.

    `headers` are the headers to sign, which must include content-type and host; names and values
    are signed lower-cased and trimmed, in name order."""
    signed = {name.lower(): value.strip().lower() for name, value in headers.items()}
    names = sorted(signed)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",  # the query string
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"


class FaceIdProvider(Provider):
    name = "face"
    label = "人脸核验"
    poll_seconds = 2
    required_config = ("FACE_API_URL", "FACE_SECRET_ID", "FACE_SECRET_KEY", "FACE_RULE_ID")

    def start(self, request: RealNameRequest, id_number: str, return_url: str) -> Session:
        answer = self._call(
            "DetectAuth",
            {
                "RuleId": self.config["FACE_RULE_ID"],
                "IdCard": id_number,
                "Name": request.name,
                "RedirectUrl": return_url,
                # Comes back with the result, which binds the result to this request.
                "Extra": request.public_id,
            },
        )
        try:
            return Session(id=answer["BizToken"], url=answer["Url"])
        except KeyError:
            raise ProviderError("FaceID DetectAuth answered without BizToken/Url") from None

    def result(self, request: RealNameRequest, id_number: str) -> Verdict | None:
        try:
            answer = self._call(
                "GetDetectInfoEnhanced",
                {"BizToken": request.provider_session, "RuleId": self.config["FACE_RULE_ID"], "InfoType": TEXT_ONLY},
            )
        except ProviderError as e:
            if e.code == EXPIRED:
                return Verdict(False, "核验二维码已过期，请重新进行实名认证", {"error": e.code})
            raise
        text = answer.get("Text") or {}
        code = text.get("ErrCode")
        if code is None:  # not finished on the phone yet
            if utcnow() - request.created_at > SESSION_LIFETIME:
                return Verdict(False, "核验二维码已过期，请重新进行实名认证", {"error": "not finished in time"})
            return None
        evidence = {"provider_request": answer.get("RequestId"), "err_code": code, "similarity": text.get("Sim")}
        if code != 0:
            return Verdict(False, f"人脸核验未通过：{text.get('ErrMsg') or code}", evidence)
        # A pass for another request or another person (a mix-up on either side) is no pass.
        if text.get("Extra") != request.public_id or any(
            text.get(key) and str(text[key]).upper() != value.upper()
            for key, value in (("IdCard", id_number), ("Name", request.name))
        ):
            return Verdict(False, "核验结果与提交的信息不一致，请重新进行实名认证", {**evidence, "mismatch": True})
        return Verdict(True, "", evidence)

    def _call(self, action: str, params: dict) -> dict:
        """POST one signed API call; the Response object, or ProviderError with the error code."""
        url = self.config["FACE_API_URL"]
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        signed = {"Content-Type": CONTENT_TYPE, "Host": urlsplit(url).netloc, "X-TC-Action": action}
        headers = {
            **signed,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "Authorization": tc3_authorization(
                secret_id=self.config["FACE_SECRET_ID"],
                secret_key=self.config["FACE_SECRET_KEY"],
                service=SERVICE,
                timestamp=timestamp,
                payload=payload,
                headers=signed,
            ),
        }
        try:
            response = requests.post(url, data=payload, headers=headers, timeout=self.config["FACE_TIMEOUT_SECONDS"])
            response.raise_for_status()
            body = response.json()["Response"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as e:
            # The exception's type only: its text could quote the request.
            raise ProviderError(f"FaceID {action} failed: {type(e).__name__}") from None
        error = body.get("Error")
        if error:
            code = error.get("Code", "")
            log.warning("FaceID %s refused: %s (request %s)", action, code, body.get("RequestId"))
            raise ProviderError(f"FaceID {action} refused: {code}", code=code)
        return body
