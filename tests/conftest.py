"""Test harness: real database (PostgreSQL when CW_TEST_DATABASE_URL is set, else a SQLite file),
real Redis when CW_TEST_REDIS_URL is set; schema from the migrations; tables emptied after each test."""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from pathlib import Path

pytest_plugins = ["tests.aws_fixtures"]

_TMP = Path(tempfile.mkdtemp(prefix="cw-tests-"))
os.environ["CW_ENV"] = "test"
os.environ["CW_DATA_DIR"] = str(_TMP)
os.environ["CW_JWT_SECRET"] = secrets.token_urlsafe(48)
os.environ["CW_LOG_JSON"] = "true"
os.environ.setdefault("CW_LOGIN_RATE_LIMIT", "1000")  # rate-limit tests lower it themselves
os.environ["CW_DATABASE_URL"] = os.environ.get("CW_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
if os.environ.get("CW_TEST_REDIS_URL"):
    os.environ["CW_REDIS_URL"] = os.environ["CW_TEST_REDIS_URL"]
else:
    os.environ.pop("CW_REDIS_URL", None)

import httpx  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from app.config import get_settings  # noqa: E402
from app.db import get_engine  # noqa: E402
from app.models import Base  # noqa: E402

DB_URL = os.environ["CW_DATABASE_URL"]
IS_POSTGRES = DB_URL.startswith("postgresql")
PASSWORD = "correct horse battery staple"


def _reset_postgres_schema(url: str) -> None:
    import asyncio

    async def _go() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(_go())


def pytest_configure(config: pytest.Config) -> None:
    from app.migrate import upgrade

    if IS_POSTGRES:
        _reset_postgres_schema(DB_URL)
    upgrade("head", DB_URL)
    config.addinivalue_line("markers", "postgres: needs PostgreSQL (skipped on the SQLite default)")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"cloudwizard database: {'postgresql' if IS_POSTGRES else 'sqlite'}; "
            f"redis: {'yes' if os.environ.get('CW_REDIS_URL') else 'no (in-process)'}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set CW_TEST_DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


async def _truncate_all() -> None:
    engine = get_engine()
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if IS_POSTGRES:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(autouse=True)
async def _clean_state():
    yield
    from app import worker

    await worker.shutdown(grace=5)  # no background job may run on into the next test
    await _truncate_all()
    from app.ratelimit import memory_limiter

    memory_limiter().clear()  # in-process counters outlive a test; Redis is flushed below
    from app.redis import get_redis

    redis = get_redis()
    if redis is not None:
        await redis.flushdb()


@pytest.fixture(scope="session")
def settings():
    return get_settings()


@pytest.fixture(scope="session")
def app():
    from app.main import create_app

    return create_app()


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def signup(client):
    """Sign up (and so sign in) a new user; returns the token answer with an `email` and `headers`."""

    async def _signup(email: str | None = None, password: str = PASSWORD, **extra) -> dict:
        email = email or unique_email()
        r = await client.post("/v1/auth/signup", json={"email": email, "password": password, **extra})
        assert r.status_code == 201, r.text
        body = r.json()
        body["email"] = email
        body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
        return body

    return _signup


@pytest.fixture
def make_workspace(client):
    async def _make(headers: dict, name: str = "Acme Security") -> dict:
        r = await client.post("/v1/workspaces", json={"name": name}, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()

    return _make
