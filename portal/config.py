"""Configuration, read once from the environment (a `.env` file is honoured).

Two modes share one code path:

* embedded (the default): SQLite in `var/`, jobs inline, blobs in `var/blobs`, and a
  SECRET_KEY / PORTAL_KEK generated into `var/` on first run;
* production (`PORTAL_MODE=production`): PostgreSQL, Redis/RQ and S3 are expected, and the
  app refuses to start without an explicit SECRET_KEY and PORTAL_KEK.
"""

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """The environment does not describe a runnable portal."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_file(var_dir: Path, name: str, nbytes: int) -> str:
    """Read a generated secret from var/, creating it (mode 0600) on first use."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(nbytes))
    return path.read_text().strip()


class Config:
    """Settings for one app instance. Attributes are Flask config keys."""

    def __init__(self, environ: dict[str, str] | None = None, *, load_env_file: bool = True):
        if environ is None:
            if load_env_file:
                load_dotenv(ROOT / ".env")
            environ = dict(os.environ)
        env = environ.get

        self.PORTAL_MODE = env("PORTAL_MODE", "embedded")
        if self.PORTAL_MODE not in {"embedded", "production"}:
            raise ConfigError(f"PORTAL_MODE must be 'embedded' or 'production', not {self.PORTAL_MODE!r}")
        production = self.PORTAL_MODE == "production"

        self.VAR_DIR = Path(env("PORTAL_VAR_DIR") or ROOT / "var")
        self.DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{self.VAR_DIR / 'portal.db'}"
        self.REDIS_URL = env("REDIS_URL") or None
        self.STORAGE_URL = env("STORAGE_URL") or str(self.VAR_DIR / "blobs")

        secret_key, kek = env("SECRET_KEY"), env("PORTAL_KEK")
        if production:
            missing = [n for n, v in (("SECRET_KEY", secret_key), ("PORTAL_KEK", kek)) if not v]
            if missing:
                raise ConfigError(f"production mode needs {', '.join(missing)} in the environment")
        self.SECRET_KEY = secret_key or _secret_file(self.VAR_DIR, "secret_key", 32)
        # 128-bit SM4 key-encryption key, hex. Wraps key shares, org keys and ID numbers.
        self.PORTAL_KEK = kek or _secret_file(self.VAR_DIR, "portal_kek", 16)
        # Earlier KEKs, comma-separated, still accepted for unwrapping until `flask keys rotate`.
        self.PORTAL_KEK_PREVIOUS = [k.strip() for k in (env("PORTAL_KEK_PREVIOUS") or "").split(",") if k.strip()]
        for value in [self.PORTAL_KEK, *self.PORTAL_KEK_PREVIOUS]:
            try:
                if len(bytes.fromhex(value)) != 16:
                    raise ValueError
            except ValueError:
                raise ConfigError("PORTAL_KEK must be 32 hex digits (a 128-bit SM4 key)") from None

        # Demo passwords only work while this is on; never on by default in production.
        self.DEMO_MODE = _flag(env("PORTAL_DEMO"), default=not production)
        self.SCHOOL_NAME = env("PORTAL_SCHOOL_NAME", "示范大学")
        # Where the portal is reached from outside: certificates point their CRL here.
        self.PORTAL_PUBLIC_URL = (env("PORTAL_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")

        # Cookies: Secure needs HTTPS, which the embedded portal on 127.0.0.1 does not have.
        self.SESSION_COOKIE_SECURE = _flag(env("SESSION_COOKIE_SECURE"), default=production)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.PERMANENT_SESSION_LIFETIME = int(env("SESSION_LIFETIME_SECONDS", str(8 * 3600)))
        self.WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session

        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI") or self.REDIS_URL or "memory://"
        self.RATELIMIT_HEADERS_ENABLED = True
        self.LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", "10 per minute")

        # --- Real-name authentication (实名认证, SPEC F2) ---------------------------------------
        # Who confirms a person's identity: "review" (an administrator, the embedded default) or
        # "face" (Tencent Cloud FaceID 人脸核身: a QR code opens the face check in WeChat). The
        # portal refuses to start with an unknown provider or without the face provider's keys.
        self.REAL_NAME_PROVIDER = env("REAL_NAME_PROVIDER", "review")
        # Tencent Cloud FaceID: the API endpoint, the API key pair (访问管理 → API密钥), and the
        # business flow (RuleId) created in the FaceID console. Where the phone returns after the
        # check is derived from PORTAL_PUBLIC_URL.
        self.FACE_API_URL = env("FACE_API_URL", "https://faceid.tencentcloudapi.com/")
        self.FACE_SECRET_ID = env("FACE_SECRET_ID", "")
        self.FACE_SECRET_KEY = env("FACE_SECRET_KEY", "")
        self.FACE_RULE_ID = env("FACE_RULE_ID", "")
        self.FACE_TIMEOUT_SECONDS = float(env("FACE_TIMEOUT_SECONDS", "10"))
        # Per person: submitting (each face submission opens a session at the provider) and the page's
        # status polling (every 2 s while a check is open, so 60 a minute allows two tabs).
        self.REAL_NAME_SUBMIT_RATE_LIMIT = env("REAL_NAME_SUBMIT_RATE_LIMIT", "10 per hour")
        self.REAL_NAME_POLL_RATE_LIMIT = env("REAL_NAME_POLL_RATE_LIMIT", "60 per minute")
        # --- end of real-name authentication -------------------------------------------------

        # --- WeChat Work (企业微信) --------------------------------------------------------------
        # The school's CorpID (我的企业 → 企业信息), and the portal's self-built app (自建应用):
        # its AgentId and Secret. A token is only good for the app whose secret fetched it.
        # Without the CorpID and the Secret the portal runs without WeChat Work features (the
        # phone's 扫一扫 explains how to scan with the camera instead).
        self.WXWORK_CORP_ID = env("WXWORK_CORP_ID", "")
        self.WXWORK_AGENT_ID = env("WXWORK_AGENT_ID", "")
        self.WXWORK_SECRET = env("WXWORK_SECRET", "")
        self.WXWORK_API_URL = (env("WXWORK_API_URL") or "https://qyapi.weixin.qq.com").rstrip("/")
        self.WXWORK_TIMEOUT_SECONDS = float(env("WXWORK_TIMEOUT_SECONDS", "10"))
        # --- end of WeChat Work -----------------------------------------------------------------

        self.PASSWORD_HASH_METHOD = "scrypt"
        self.MAX_CONTENT_LENGTH = int(env("MAX_UPLOAD_MB", "100")) * 1024 * 1024
        self.TESTING = False

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}


class TestConfig(Config):
    """Embedded settings in a throwaway directory; overrides come from the test."""

    __test__ = False  # not a pytest class

    def __init__(self, var_dir: Path, **overrides):
        super().__init__(
            {"PORTAL_VAR_DIR": str(var_dir), "SESSION_COOKIE_SECURE": "0"}, load_env_file=False
        )
        self.TESTING = True
        self.LOGIN_RATE_LIMIT = "1000 per minute"
        self.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashes keep seeding cheap
        for key, value in overrides.items():
            setattr(self, key, value)
