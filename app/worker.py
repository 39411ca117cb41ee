"""Job queue: arq's WorkerSettings for `cloudwizard worker`, and `enqueue`, which job callers use.

With CW_REDIS_URL set, `enqueue` puts the job on the arq queue in Redis and a separate
`cloudwizard worker` process runs it (with retries, and the cron schedule below).
Without it (the single-process default) the job runs in this process as a background asyncio task;
such jobs are lost if the process stops, are tried once, and no cron job is scheduled: the API's
lifespan deliberately runs no scheduler, so periodic housekeeping needs `cloudwizard worker`
(or a system timer that runs it).

Callers (services, routes, other jobs) only use `enqueue`; nothing outside this module imports arq.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from app.config import ConfigError, get_settings

log = structlog.get_logger(__name__)

QUEUE_NAME = "cloudwizard:queue"
JOB_TIMEOUT_SECONDS = 600
MAX_TRIES = 3
# Results are only read by tests and operators right after a run; don't let Redis fill up with them.
KEEP_RESULT_SECONDS = 300
# The worker refreshes its health key this often; `arq --check` (the container health check) fails
# once the key is older than this, so a dead worker shows up within about a minute.
HEALTH_CHECK_SECONDS = 60
# In-process jobs still running at shutdown get this long to finish before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 10.0

_pool: Any = None
_pool_loop: asyncio.AbstractEventLoop | None = None
_tasks: set[asyncio.Task[Any]] = set()
_running_ids: dict[str, asyncio.Task[Any]] = {}


def _jobs() -> dict[str, Any]:
    from app.tasks import job_functions

    return job_functions()


def redis_settings() -> Any:
    from arq.connections import RedisSettings

    url = get_settings().redis_url
    if not url:
        raise ConfigError(
            "CW_REDIS_URL is not set. `cloudwizard worker` needs Redis "
            "(e.g. CW_REDIS_URL=redis://127.0.0.1:6379/0); without it the API runs jobs in its own process."
        )
    try:
        return RedisSettings.from_dsn(url)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"CW_REDIS_URL is not a valid redis:// URL: {exc}") from None


async def _arq_pool() -> Any:
    """One arq connection pool per event loop (a pool cannot cross loops)."""
    global _pool, _pool_loop
    from arq.connections import create_pool

    loop = asyncio.get_running_loop()
    if _pool is None or _pool_loop is not loop:
        _pool = await create_pool(redis_settings(), default_queue_name=QUEUE_NAME)
        _pool_loop = loop
    return _pool


async def enqueue(job_name: str, *args: Any, job_id: str | None = None,
                  defer_by: float | None = None) -> str | None:
    """Schedule `job_name(*args)`; return its job id, or None when a job with `job_id` is already
    queued or running (so a job id deduplicates). Call it after the data the job reads is committed."""
    jobs = _jobs()
    if job_name not in jobs:
        raise ValueError(f"unknown job {job_name!r}; known jobs: {', '.join(sorted(jobs))}")
    if get_settings().redis_url:
        pool = await _arq_pool()
        job = await pool.enqueue_job(job_name, *args, _job_id=job_id, _defer_by=defer_by)
        return None if job is None else job.job_id
    job_id = job_id or uuid.uuid4().hex
    if job_id in _running_ids:
        return None
    task = asyncio.create_task(_run_in_process(jobs[job_name], job_name, job_id, args, defer_by),
                               name=f"job:{job_name}:{job_id}")
    _tasks.add(task)
    _running_ids[job_id] = task

    def _forget(t: asyncio.Task[Any]) -> None:
        _tasks.discard(t)
        if _running_ids.get(job_id) is t:
            del _running_ids[job_id]

    task.add_done_callback(_forget)
    return job_id


async def _run_in_process(fn: Any, job_name: str, job_id: str, args: tuple[Any, ...],
                          defer_by: float | None) -> Any:
    if defer_by:
        await asyncio.sleep(defer_by)
    ctx = {"job_id": job_id, "job_try": 1, "enqueue_time": datetime.now(UTC), "redis": None}
    try:
        result = await asyncio.wait_for(fn(ctx, *args), timeout=JOB_TIMEOUT_SECONDS)
    except asyncio.CancelledError:
        log.warning("job_cancelled", job=job_name, job_id=job_id)
        raise
    except Exception:
        # Nobody awaits a background task: an unlogged exception would vanish.
        log.exception("job_failed", job=job_name, job_id=job_id)
        return None
    log.info("job_done", job=job_name, job_id=job_id)
    return result


async def drain() -> None:
    """Wait for this process's in-process jobs (including ones they enqueue) to finish."""
    while _tasks:
        await asyncio.gather(*list(_tasks), return_exceptions=True)


async def shutdown(grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """Give in-process jobs a bounded time to finish, cancel the rest, and close the arq pool."""
    global _pool, _pool_loop
    try:
        async with asyncio.timeout(grace):
            await drain()
    except TimeoutError:
        pending = list(_tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    if _pool is not None and _pool_loop is asyncio.get_running_loop():
        await _pool.aclose()
    _pool = None
    _pool_loop = None


async def _worker_startup(ctx: dict[str, Any]) -> None:
    from app.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


async def _worker_shutdown(ctx: dict[str, Any]) -> None:
    from app.db import dispose_engine
    from app.redis import close_redis

    await close_redis()
    await dispose_engine()


def build_worker_settings() -> type:
    """The class arq reads its options from (arq takes the class attributes as Worker arguments)."""
    from arq import cron

    from app.tasks import job_schedules

    jobs = _jobs()
    # unique: with several workers, each scheduled run still happens once.
    cron_jobs = [cron(jobs[name], name=f"cron:{name}", unique=True, timeout=JOB_TIMEOUT_SECONDS, **fields)
                 for name, fields in job_schedules().items()]
    return type("WorkerSettings", (), {
        "functions": list(jobs.values()),
        "cron_jobs": cron_jobs,
        "redis_settings": redis_settings(),
        "queue_name": QUEUE_NAME,
        "job_timeout": JOB_TIMEOUT_SECONDS,
        "max_tries": MAX_TRIES,
        "keep_result": KEEP_RESULT_SECONDS,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "on_startup": _worker_startup,
        "on_shutdown": _worker_shutdown,
        "__doc__": "arq settings for `cloudwizard worker` (also usable as `arq app.worker.WorkerSettings`).",
    })


def __getattr__(name: str) -> Any:
    # Built on first access, not at import: the job modules may import this module to enqueue
    # follow-up jobs, and an API process without Redis never needs the worker settings at all.
    if name == "WorkerSettings":
        settings_cls = build_worker_settings()
        globals()["WorkerSettings"] = settings_cls
        return settings_cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
