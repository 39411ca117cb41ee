"""Mute rule jobs: record the expiry of mute rules whose time has passed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from app.db import session_scope
from app.services.mutes import expire_due_rules

log = structlog.get_logger(__name__)


async def expire_mute_rules(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """End the mute rules past their expiry (`end_reason='expired'`, by `system`), audit each one, and relink
    their findings (to another rule that still covers them, or to none).

    Reads already treat a finding whose `muted_until` has passed as unmuted, so a mute ends on time whether or
    not this job has run: the job is cleanup and the audit record. Idempotent, and safe to run concurrently."""
    async with session_scope() as session:
        count = await expire_due_rules(session, now)
    if count:
        log.info("mute_rules.expire_job", job_id=ctx.get("job_id"), expired=count)
    return count


JOBS = [expire_mute_rules]
# Every minute, at second 0.
SCHEDULES = {"expire_mute_rules": {"second": {0}}}
