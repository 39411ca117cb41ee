"""Settings: the signing-key policy per environment, the embedded default, and value parsing.

Each test builds its own Settings from explicit arguments and a patched environment; the cached
global settings the rest of the suite uses are never touched."""

from __future__ import annotations

import secrets
import stat

import pytest
from pydantic import ValidationError

from app.config import MIN_KEY_LENGTH, ConfigError, Settings

STRONG = secrets.token_urlsafe(48)


@pytest.fixture
def external_db(monkeypatch):
    """As a deployment with its own database configures it."""
    monkeypatch.setenv("CW_DATABASE_URL", "postgresql+asyncpg://cw@db.internal/cloudwizard")
    monkeypatch.delenv("CW_JWT_SECRET", raising=False)


@pytest.fixture
def embedded(monkeypatch, tmp_path):
    """The zero-configuration default: no database URL, no key."""
    monkeypatch.delenv("CW_DATABASE_URL", raising=False)
    monkeypatch.delenv("CW_JWT_SECRET", raising=False)
    monkeypatch.delenv("CW_ENV", raising=False)
    return tmp_path / "state"


@pytest.mark.parametrize("weak", ["secret", "changeme", "x" * (MIN_KEY_LENGTH - 1), "CloudWizard"])
def test_production_refuses_a_weak_key(external_db, weak):
    settings = Settings(env="production", jwt_secret=weak)
    with pytest.raises(ConfigError, match="CW_JWT_SECRET is too weak") as exc:
        settings.resolved_jwt_secret()
    assert f"at least {MIN_KEY_LENGTH}" in str(exc.value)


def test_the_error_never_echoes_the_key(external_db):
    with pytest.raises(ConfigError) as exc:
        Settings(env="production", jwt_secret="hunter2-zq").resolved_jwt_secret()
    assert "hunter2-zq" not in str(exc.value)


def test_production_refuses_a_missing_key_with_its_own_database(external_db):
    settings = Settings(env="production")
    with pytest.raises(ConfigError, match="CW_JWT_SECRET is not set"):
        settings.resolved_jwt_secret()


def test_production_accepts_a_strong_key(external_db):
    assert Settings(env="production", jwt_secret=STRONG).resolved_jwt_secret() == STRONG


def test_production_reads_the_key_from_the_environment(external_db, monkeypatch):
    monkeypatch.setenv("CW_ENV", "production")
    monkeypatch.setenv("CW_JWT_SECRET", "short")
    with pytest.raises(ConfigError):
        Settings().resolved_jwt_secret()


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_allows_a_weak_key(external_db, env):
    assert Settings(env=env, jwt_secret="dev").resolved_jwt_secret() == "dev"


def test_development_without_a_key_persists_one(external_db, tmp_path):
    settings = Settings(env="development", data_dir=tmp_path)
    key = settings.resolved_jwt_secret()
    assert len(key) >= MIN_KEY_LENGTH
    assert (tmp_path / "jwt.key").read_text() == key


def test_embedded_default_generates_a_private_key_and_reuses_it(embedded):
    settings = Settings(data_dir=embedded)
    assert settings.env == "production" and settings.uses_embedded_database
    assert settings.database_url == f"sqlite+aiosqlite:///{(embedded / 'cloudwizard.db').resolve()}"
    key = settings.resolved_jwt_secret()
    path = embedded / "jwt.key"
    assert len(key) >= MIN_KEY_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A restart (a new Settings) signs with the same key, so issued tokens stay valid.
    assert Settings(data_dir=embedded).resolved_jwt_secret() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_embedded_default_still_refuses_a_weak_explicit_key(embedded):
    with pytest.raises(ConfigError, match="too weak"):
        Settings(data_dir=embedded, jwt_secret="changeme").resolved_jwt_secret()
    assert not (embedded / "jwt.key").exists()


def test_an_explicit_sqlite_url_is_not_the_embedded_default(monkeypatch, tmp_path):
    monkeypatch.setenv("CW_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("CW_JWT_SECRET", raising=False)
    settings = Settings(env="production", data_dir=tmp_path)
    assert settings.is_sqlite and not settings.uses_embedded_database
    with pytest.raises(ConfigError, match="not set"):
        settings.resolved_jwt_secret()


def test_values_are_validated(monkeypatch):
    monkeypatch.setenv("CW_ACCESS_TOKEN_TTL_SECONDS", "5")
    with pytest.raises(ValidationError, match="access_token_ttl_seconds"):
        Settings()
    monkeypatch.delenv("CW_ACCESS_TOKEN_TTL_SECONDS")
    with pytest.raises(ValidationError):
        Settings(env="staging")


def test_cors_origins_accept_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("CW_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("CW_CORS_ORIGINS", '["https://c.example"]')
    assert Settings().cors_origins == ["https://c.example"]


def test_the_key_is_not_in_the_settings_repr(external_db):
    assert STRONG not in repr(Settings(env="production", jwt_secret=STRONG))
