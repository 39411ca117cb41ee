"""Background jobs: one module per domain (in JOB_MODULES) listing its functions in `JOBS` and, for
periodic ones, their cron fields in `SCHEDULES`.

A job function is `async def name(ctx, *ids) -> result`: it takes ids (never ORM objects), opens its own
unit of work with `app.db.session_scope()`, and is idempotent, because arq may run it again after a crash
or a timeout. Job code never imports arq: enqueue with `app.worker.enqueue(name, *ids)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

JobFunction = Callable[..., Awaitable[Any]]

# Modules are imported by name, on first use, so that a job module may itself import app.worker
# (to enqueue follow-up jobs) without an import cycle.
JOB_MODULES: tuple[str, ...] = ("app.tasks.maintenance", "app.tasks.mutes", "app.tasks.scans")


def job_functions() -> dict[str, JobFunction]:
    """Every job, by the name it is enqueued under (its function name, as arq names it)."""
    jobs: dict[str, JobFunction] = {}
    for module_name in JOB_MODULES:
        module = importlib.import_module(module_name)
        for fn in getattr(module, "JOBS", ()):
            if fn.__name__ in jobs:
                raise RuntimeError(f"two jobs are named {fn.__name__!r}")
            jobs[fn.__name__] = fn
    return jobs


# Fields of an arq cron schedule that a task module may set; plain data, so job modules need no arq.
SCHEDULE_FIELDS = frozenset({"month", "day", "weekday", "hour", "minute", "second", "run_at_startup"})


def job_schedules() -> dict[str, dict[str, Any]]:
    """Periodic jobs, from each module's `SCHEDULES = {"job_name": {"minute": {17}}, ...}` (cron fields;
    one left out matches every value, except `second`, which defaults to 0). Only `cloudwizard worker`
    runs them: the in-process default has no scheduler."""
    jobs = job_functions()
    schedules: dict[str, dict[str, Any]] = {}
    for module_name in JOB_MODULES:
        for name, fields in getattr(importlib.import_module(module_name), "SCHEDULES", {}).items():
            if name not in jobs:
                raise RuntimeError(f"{module_name} schedules {name!r}, which is not one of its JOBS")
            unknown = set(fields) - SCHEDULE_FIELDS
            if unknown:
                raise RuntimeError(f"{module_name} schedules {name!r} with unknown fields {sorted(unknown)}")
            schedules[name] = dict(fields)
    return schedules
