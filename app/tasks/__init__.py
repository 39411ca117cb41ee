"""Background jobs: one module per domain; JOB_MODULES lists them for the worker and the in-process runner.

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
JOB_MODULES: tuple[str, ...] = ("app.tasks.maintenance",)


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
