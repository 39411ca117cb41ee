"""The `cloudwizard` command, run in-process with Typer's runner against a temporary SQLite database."""

from __future__ import annotations

import json
import sqlite3

import pytest
import structlog
import uvicorn
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from app.cli import cli
from app.migrate import alembic_config
from app.security import verify_password

PASSWORD = "correct horse battery staple"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db_file(tmp_path, monkeypatch):
    path = tmp_path / "cli.db"
    monkeypatch.setenv("CW_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def uvicorn_calls(monkeypatch):
    """Record instead of serving: these tests check what `serve` decides, not uvicorn itself."""
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    return calls


def _version(path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("select version_num from alembic_version").fetchone()[0]


def _users(path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("select email, password_hash, display_name from users").fetchall()


def test_migrate_to_a_revision_then_head(runner, db_file):
    first = runner.invoke(cli, ["migrate", "--revision", "0001"])
    assert first.exit_code == 0, first.output
    assert _version(db_file) == "0001"
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert _version(db_file) == HEAD
    assert "at revision head" in result.output
    # Running it again is a no-op.
    assert runner.invoke(cli, ["migrate"]).exit_code == 0 and _version(db_file) == HEAD


def test_migrate_reports_an_unreachable_database(runner, monkeypatch):
    monkeypatch.setenv("CW_DATABASE_URL", "postgresql+asyncpg://cw:s3cret-pw@127.0.0.1:1/nowhere")
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
    assert "s3cret-pw" not in result.output  # the URL is shown with its password masked
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["not a url", "postgresql://cw:s3cret-pw@127.0.0.1/x", "mysql+aiomysql://a@b/c"])
def test_an_unusable_database_url_is_a_configuration_error(runner, monkeypatch, url):
    monkeypatch.setenv("CW_DATABASE_URL", url)
    for args in (["migrate"], ["admin", "create-user", "--email", "a@example.com", "--password", PASSWORD]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert "CW_DATABASE_URL must start with postgresql+asyncpg://" in result.output
        assert "s3cret-pw" not in result.output and "Traceback" not in result.output


def test_create_user_on_an_unmigrated_database_says_what_to_do(runner, db_file):
    result = runner.invoke(cli, ["admin", "create-user", "--email", "a@example.com", "--password", PASSWORD])
    assert result.exit_code == 1
    assert "has `cloudwizard migrate` been run?" in result.output and "Traceback" not in result.output


def test_migrate_reports_an_unknown_revision(runner, db_file):
    result = runner.invoke(cli, ["migrate", "--revision", "nope"])
    assert result.exit_code == 1
    assert "migration failed" in result.output


def test_create_user_prompts_for_the_password_and_hashes_it(runner, db_file):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    args = ["admin", "create-user", "--email", "Alice@Example.com", "--display-name", "Alice"]
    result = runner.invoke(cli, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Created user alice@example.com" in result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    [(email, password_hash, name)] = _users(db_file)
    assert (email, name) == ("alice@example.com", "Alice")
    assert password_hash.startswith("$argon2id$") and verify_password(password_hash, PASSWORD)


def test_create_user_refuses_a_duplicate_cleanly(runner, db_file):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    args = ["admin", "create-user", "--email", "bob@example.com", "--password", PASSWORD]
    assert runner.invoke(cli, args).exit_code == 0
    again = ["admin", "create-user", "--email", "BOB@example.com", "--password", "x" * 20]
    result = runner.invoke(cli, again)
    assert result.exit_code == 1
    assert "already exists" in result.output and "Traceback" not in result.output
    [(email, password_hash, _)] = _users(db_file)
    assert verify_password(password_hash, PASSWORD)  # the first account is untouched


@pytest.mark.parametrize(("email", "password", "message"), [
    ("not-an-email", PASSWORD, "email"),
    ("carol@example.com", "short", "at least 12 characters"),
])
def test_create_user_applies_the_sign_up_rules(runner, db_file, email, password, message):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["admin", "create-user", "--email", email, "--password", password])
    assert result.exit_code == 1
    assert message in result.output
    assert _users(db_file) == []


def test_create_user_with_mismatched_confirmation_creates_nothing(runner, db_file):
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["admin", "create-user", "--email", "dan@example.com"],
                           input=f"{PASSWORD}\n{PASSWORD}x\n")
    assert result.exit_code != 0
    assert _users(db_file) == []


def test_serve_refuses_a_weak_key_in_production(runner, monkeypatch, uvicorn_calls):
    monkeypatch.setenv("CW_ENV", "production")
    monkeypatch.setenv("CW_JWT_SECRET", "changeme")
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "CW_JWT_SECRET is too weak" in result.output
    assert "Traceback" not in result.output and "changeme" not in result.output
    assert uvicorn_calls == []


def test_serve_refuses_an_invalid_setting(runner, monkeypatch, uvicorn_calls):
    monkeypatch.setenv("CW_ACCESS_TOKEN_TTL_SECONDS", "5")
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2
    assert "CW_ACCESS_TOKEN_TTL_SECONDS" in result.output
    assert uvicorn_calls == []


def test_serve_starts_uvicorn_with_the_app_factory(runner, uvicorn_calls):
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "9001", "--proxy-headers"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9001/docs" in result.output
    [(args, kwargs)] = uvicorn_calls
    assert args == ("app.main:create_app",)
    assert kwargs["factory"] is True and kwargs["host"] == "0.0.0.0" and kwargs["port"] == 9001
    assert kwargs["proxy_headers"] is True and kwargs["access_log"] is False


def test_serve_refuses_several_workers_on_sqlite(runner, db_file, uvicorn_calls):
    result = runner.invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2 and "--workers" in result.output
    assert uvicorn_calls == []


def test_worker_needs_redis(runner, monkeypatch):
    monkeypatch.delenv("CW_REDIS_URL", raising=False)
    result = runner.invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "CW_REDIS_URL is not set" in result.output


def test_openapi_writes_the_document(runner, tmp_path):
    # create_app() points structlog at the runner's stderr, which closes when the command ends.
    saved = structlog.get_config()
    try:
        _write_openapi(runner, tmp_path)
    finally:
        structlog.configure(**saved)


def _write_openapi(runner, tmp_path):
    target = tmp_path / "openapi.json"
    result = runner.invoke(cli, ["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text())
    assert document["openapi"].startswith("3.1") and "/healthz" in document["paths"]
