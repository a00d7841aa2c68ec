"""One code path: embedded defaults, production refuses to start without its secrets."""

import pytest

from portal import create_app
from portal.config import Config, ConfigError, TestConfig
from portal.db import database


def test_production_mode_refuses_to_start_without_secret_key_and_kek(tmp_path):
    env = {"PORTAL_MODE": "production", "PORTAL_VAR_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="SECRET_KEY, PORTAL_KEK"):
        Config(env)
    with pytest.raises(ConfigError, match="PORTAL_KEK"):
        Config({**env, "SECRET_KEY": "s" * 32})
    config = Config({**env, "SECRET_KEY": "s" * 32, "PORTAL_KEK": "00" * 16})
    assert config.SESSION_COOKIE_SECURE and not config.DEMO_MODE
    assert not (tmp_path / "secret_key").exists()


def test_the_embedded_portal_generates_its_secrets_once(tmp_path):
    first = Config({"PORTAL_VAR_DIR": str(tmp_path)})
    second = Config({"PORTAL_VAR_DIR": str(tmp_path)})
    assert first.SECRET_KEY == second.SECRET_KEY and len(first.SECRET_KEY) == 64
    assert first.PORTAL_KEK == second.PORTAL_KEK and len(bytes.fromhex(first.PORTAL_KEK)) == 16
    assert (tmp_path / "portal_kek").stat().st_mode & 0o777 == 0o600
    assert first.DEMO_MODE and first.REDIS_URL is None


def test_a_kek_that_is_not_128_bits_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="32 hex digits"):
        Config({"PORTAL_VAR_DIR": str(tmp_path), "PORTAL_KEK": "abcd"})


def test_the_embedded_database_is_sqlite_in_var_with_wal(tmp_path):
    app = create_app(TestConfig(tmp_path))
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'portal.db'}"
    assert app.config["STORAGE_URL"] == str(tmp_path / "blobs")
    with database.connection_context():
        assert database.obj.pragma("journal_mode") == "wal"
        assert database.obj.pragma("foreign_keys") == 1
