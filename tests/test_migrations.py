"""Migrations: the models and the migrated schema agree, and every revision upgrades and downgrades
cleanly (on a temporary SQLite file, and on a scratch PostgreSQL database beside the suite's)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import get_engine
from app.migrate import alembic_config, downgrade, upgrade
from app.models import Base

SCRIPT = ScriptDirectory.from_config(alembic_config())
REVISIONS = [r.revision for r in reversed(list(SCRIPT.walk_revisions()))]  # oldest first


def _diffs(sync_conn) -> list:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True,
                                                          "compare_server_default": True})
    return compare_metadata(context, Base.metadata)


def _state(url: str) -> tuple[list, set[str], str | None]:
    """(model/schema differences, tables, alembic revision) of the database at `url`."""

    def read(sync_conn):
        tables = set(inspect(sync_conn).get_table_names())
        version = None
        if "alembic_version" in tables:
            version = sync_conn.execute(text("select version_num from alembic_version")).scalar()
        return _diffs(sync_conn) if version == REVISIONS[-1] else None, tables, version

    async def go():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _round_trip(url: str) -> None:
    model_tables = set(Base.metadata.tables)
    # Stairway: each revision goes up, down one step and up again, so every downgrade is exercised
    # against the schema it was written for.
    for i, revision in enumerate(REVISIONS):
        upgrade(revision, url)
        assert _state(url)[2] == revision
        downgrade(REVISIONS[i - 1] if i else "base", url)
        upgrade(revision, url)
    diffs, tables, version = _state(url)
    assert version == REVISIONS[-1]
    assert tables == model_tables | {"alembic_version"}
    assert diffs == []

    downgrade("base", url)
    _, tables, version = _state(url)
    assert version is None and tables <= {"alembic_version"}

    upgrade("head", url)
    diffs, tables, version = _state(url)
    assert version == REVISIONS[-1] and tables == model_tables | {"alembic_version"} and diffs == []


async def test_models_and_migrations_do_not_drift():
    """The suite's database (migrated to head by conftest) is exactly what the models declare:
    a model change without a migration, or the reverse, fails here."""
    async with get_engine().connect() as conn:
        diffs = await conn.run_sync(_diffs)
    assert diffs == [], "models and migrations differ; write a migration (alembic revision --autogenerate)"


def test_single_head_and_linear_history():
    assert len(SCRIPT.get_heads()) == 1
    assert len(REVISIONS) == len(set(REVISIONS)) >= 1


def test_round_trip_on_sqlite(tmp_path):
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}")


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    """A throw-away database on the suite's PostgreSQL server, so the suite's own schema is untouched."""
    base = make_url(os.environ["CW_DATABASE_URL"])
    name = f"cw_scratch_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        engine = create_async_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_round_trip_on_postgres(scratch_postgres):
    _round_trip(scratch_postgres)

    async def leftover_types() -> list[str]:
        engine = create_async_engine(scratch_postgres)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(
                    "select typname from pg_type t join pg_namespace n on n.oid = t.typnamespace "
                    "where n.nspname = 'public' and t.typtype = 'e'"))).scalars())
        finally:
            await engine.dispose()

    downgrade("base", scratch_postgres)
    # Enum types outlive their tables unless a downgrade drops them explicitly.
    assert asyncio.run(leftover_types()) == []
