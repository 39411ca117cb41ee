"""The job queue (in-process and arq on real Redis) and the auth purge job, on the suite's database."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import worker
from app.config import ConfigError, get_settings
from app.db import session_scope
from app.models import AuthSession, Invitation, RefreshToken, Role, User, Workspace
from app.security import new_token, token_digest
from app.tasks.maintenance import purge_expired_auth

needs_redis = pytest.mark.skipif(not os.environ.get("CW_TEST_REDIS_URL"), reason="needs CW_TEST_REDIS_URL")
DAY = timedelta(days=1)


async def _seed() -> dict[str, set[uuid.UUID]]:
    """Rows on both sides of every cut-off; returns the ids that must survive a purge, by table."""
    now = datetime.now(UTC)
    ttl = timedelta(seconds=get_settings().refresh_token_ttl_seconds)
    keep: dict[str, set[uuid.UUID]] = {"sessions": set(), "tokens": set(), "invitations": set()}
    async with session_scope() as s:
        user = User(email=f"purge-{uuid.uuid4().hex[:8]}@example.com", password_hash="x", is_active=True)
        ws = Workspace(name="Purge")
        s.add_all([user, ws])
        await s.flush()

        def session(keep_it: bool, **kw) -> AuthSession:
            row = AuthSession(id=uuid.uuid4(), user_id=user.id, **kw)
            s.add(row)
            if keep_it:
                keep["sessions"].add(row.id)
            return row

        def token(owner: AuthSession, expires_at: datetime, keep_it: bool) -> None:
            row = RefreshToken(id=uuid.uuid4(), session_id=owner.id, token_hash=token_digest(new_token()),
                               expires_at=expires_at, created_at=min(now, expires_at - ttl))
            s.add(row)
            if keep_it:
                keep["tokens"].add(row.id)

        live = session(True, created_at=now - DAY)
        revoked_old = session(False, created_at=now - 40 * DAY, revoked_at=now - 31 * DAY)
        revoked_recent = session(True, created_at=now - 40 * DAY, revoked_at=now - 29 * DAY)
        expired_old = session(False, created_at=now - ttl - 31 * DAY)
        expired_recent = session(True, created_at=now - ttl - 29 * DAY)
        # Created long ago but refreshed an hour ago: very much alive.
        refreshed = session(True, created_at=now - ttl - 60 * DAY, last_refreshed_at=now - timedelta(hours=1))
        # Old by its timestamps, yet holding a valid refresh token: never purged from under a user.
        holds_token = session(True, created_at=now - ttl - 60 * DAY)
        await s.flush()

        token(live, now + 29 * DAY, True)
        token(live, now - timedelta(hours=12), True)   # expired, but within the day of grace
        token(live, now - 2 * DAY, False)
        token(revoked_old, now + DAY, False)             # goes with its session
        token(revoked_recent, now - 25 * DAY, False)
        token(expired_old, now - 31 * DAY, False)
        token(expired_recent, now - 29 * DAY, False)
        token(refreshed, now + 20 * DAY, True)
        token(holds_token, now + 5 * DAY, True)

        def invitation(expires_at: datetime, keep_it: bool, **kw) -> None:
            row = Invitation(id=uuid.uuid4(), workspace_id=ws.id, email="guest@example.com", role=Role.viewer,
                             token_hash=token_digest(new_token()), expires_at=expires_at,
                             created_at=expires_at - 7 * DAY, **kw)
            s.add(row)
            if keep_it:
                keep["invitations"].add(row.id)

        invitation(now - 31 * DAY, False)
        invitation(now - 45 * DAY, False, accepted_at=now - 50 * DAY)
        invitation(now - 29 * DAY, True)
        invitation(now + 3 * DAY, True)
    return keep


async def _remaining() -> dict[str, set[uuid.UUID]]:
    async with session_scope() as s:
        return {
            "sessions": set(await s.scalars(select(AuthSession.id))),
            "tokens": set(await s.scalars(select(RefreshToken.id))),
            "invitations": set(await s.scalars(select(Invitation.id))),
        }


async def test_purge_deletes_exactly_the_expired_rows():
    keep = await _seed()
    counts = await purge_expired_auth({"job_id": "t"})
    assert await _remaining() == keep
    # Direct deletes only; the revoked-old session's own token goes by cascade.
    assert counts == {"refresh_tokens": 4, "auth_sessions": 2, "invitations": 2}
    # Idempotent: a second run finds nothing more.
    assert await purge_expired_auth({"job_id": "t2"}) == {"refresh_tokens": 0, "auth_sessions": 0,
                                                          "invitations": 0}
    assert await _remaining() == keep


async def test_unknown_job_is_refused():
    with pytest.raises(ValueError, match="unknown job"):
        await worker.enqueue("no_such_job")


async def test_in_process_enqueue_runs_the_job(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", None)
    keep = await _seed()
    job_id = await worker.enqueue("purge_expired_auth", job_id="purge-1", defer_by=0.2)
    assert job_id == "purge-1"
    # Same id while the first is pending: deduplicated.
    assert await worker.enqueue("purge_expired_auth", job_id="purge-1") is None
    assert await _remaining() != keep  # deferred: nothing has run yet
    async with asyncio.timeout(30):
        await worker.drain()
    assert await _remaining() == keep
    # Once it has finished, the id may be used again.
    assert await worker.enqueue("purge_expired_auth", job_id="purge-1") == "purge-1"
    async with asyncio.timeout(30):
        await worker.drain()


async def test_in_process_shutdown_cancels_jobs_past_the_grace(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", None)
    keep = await _seed()
    await worker.enqueue("purge_expired_auth", defer_by=60)
    await worker.shutdown(grace=0.1)
    assert not worker._tasks
    assert await _remaining() != keep  # cancelled before it ran


def test_worker_settings_need_redis(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", None)
    with pytest.raises(ConfigError, match="CW_REDIS_URL is not set"):
        worker.build_worker_settings()


def test_worker_settings_schedule_the_purge_hourly(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:6379/13")
    cls = worker.build_worker_settings()
    assert purge_expired_auth in cls.functions
    (job,) = [c for c in cls.cron_jobs if c.name == "cron:purge_expired_auth"]
    assert job.coroutine is purge_expired_auth and job.minute == {17} and job.hour is None and job.unique
    assert cls.queue_name == worker.QUEUE_NAME
    assert cls.keep_result <= 600 and cls.max_tries >= 2 and cls.job_timeout > 0
    assert cls.redis_settings.database == 13


def test_every_schedule_becomes_a_unique_cron_job(monkeypatch):
    from app.tasks import job_functions, job_schedules

    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:6379/13")
    cls = worker.build_worker_settings()
    schedules = job_schedules()
    assert "purge_expired_auth" in schedules
    assert {c.name for c in cls.cron_jobs} == {f"cron:{name}" for name in schedules}
    for job in cls.cron_jobs:
        assert job.unique and job.coroutine is job_functions()[job.name.removeprefix("cron:")]
    # Every job, scheduled or not, can be run by the worker.
    assert {f.__name__ for f in cls.functions} == set(job_functions())


@needs_redis
async def test_arq_enqueue_then_burst_worker_runs_the_job():
    from arq.worker import Worker, get_kwargs

    keep = await _seed()
    job_id = f"purge-{uuid.uuid4().hex[:8]}"
    assert await worker.enqueue("purge_expired_auth", job_id=job_id) == job_id
    assert await worker.enqueue("purge_expired_auth", job_id=job_id) is None  # queued already
    assert await _remaining() != keep  # only queued: the API process does not run it

    # Without the cron schedule: a burst that happened to span xx:17:00 would run the purge twice.
    options = {**get_kwargs(worker.build_worker_settings()), "cron_jobs": []}
    arq_worker = Worker(**options, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        async with asyncio.timeout(60):
            assert await arq_worker.run_check() == 1
    finally:
        await arq_worker.close()
    assert await _remaining() == keep
    await worker.shutdown()
