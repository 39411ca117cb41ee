"""Scan jobs. `run_scan_job` takes a scan id, reloads everything, and is safe to run twice: a finished scan
is left alone, and a re-run after a crash repeats the whole scan and rewrites its results (no duplicates, no
delta or history counted twice).
`sweep_stale_scans` re-enqueues scans whose worker died; `reverify_connections` keeps account states true.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select

from app.aws.errors import AssumeRoleDenied, AwsCallError
from app.aws.session import AssumedRole, parse_role_arn
from app.config import get_settings
from app.db import session_scope
from app.models import AccountStatus, AwsAccount, ScanRun, ScanStatus
from app.scanners.base import Limits
from app.scanners.engine import ScanPlan, run_scan, select_checks
from app.services import audit
from app.services.aws_accounts import set_status
from app.services.connection import AssumeAuditTrail, reverify, session_name
from app.services.findings import Coverage, upsert_findings
from app.services.mutes import apply_mutes, reapply_after_scan
from app.services.scans import SCANNABLE, enqueue_scan, summarize

log = structlog.get_logger(__name__)
MAX_COLLECTION_ERRORS = 200


class ScanCancelled(Exception):
    pass


async def _finish(scan_id: uuid.UUID, status: ScanStatus, error: str | None = None) -> None:
    async with session_scope() as session:
        scan = await session.get(ScanRun, scan_id, with_for_update=True)
        if scan is None or not scan.status.active:
            return
        scan.status = status
        scan.error = error[:2000] if error else None
        scan.finished_at = datetime.now(UTC)


async def run_scan_job(ctx: dict[str, Any], scan_id_text: str) -> str:
    scan_id = uuid.UUID(scan_id_text)
    try:
        return await _run(ctx, scan_id)
    except Exception as exc:
        log.exception("scan.crashed", scan_id=scan_id_text)
        if _last_try(ctx):
            # No try is left: say so on the scan instead of leaving it queued or running forever.
            await _finish(scan_id, ScanStatus.failed, f"Internal error ({type(exc).__name__}); it has been logged.")
            return "failed"
        raise


async def _run(ctx: dict[str, Any], scan_id: uuid.UUID) -> str:
    settings = get_settings()
    now = datetime.now(UTC)
    async with session_scope() as session:
        scan = await session.get(ScanRun, scan_id, with_for_update=True)
        if scan is None:
            return "missing"
        if not scan.status.active:
            return scan.status.value  # already finished: running it again changes nothing
        if scan.cancel_requested_at is not None:
            scan.status, scan.finished_at = ScanStatus.cancelled, now
            return "cancelled"
        account = await session.get(AwsAccount, scan.aws_account_id)
        if account is None or account.status not in SCANNABLE:
            scan.status, scan.finished_at = ScanStatus.failed, now
            scan.error = f"The account is {account.status.value if account else 'gone'}; nothing was scanned."
            return "failed"
        scan.status = ScanStatus.running
        scan.started_at = scan.started_at or now
        scan.heartbeat_at = now
        scan.attempts += 1
        attempt = scan.attempts
        workspace_id, account_pk = scan.workspace_id, account.id
        role = parse_role_arn(account.role_arn or "")
        external_id, regions = account.external_id, account.regions
        sess_name = session_name(account.id, "scan")

    log.info("scan.started", scan_id=str(scan_id), attempt=attempt)
    trail = AssumeAuditTrail()
    try:
        assumed = await AssumedRole(role, external_id, session_name=sess_name,
                                    duration_seconds=settings.assume_role_duration_seconds,
                                    on_assume=trail).start()
    except AssumeRoleDenied as exc:
        # The customer removed the role or its trust: mark the account revoked and stop, without retrying.
        await trail.write_independent(workspace_id, account_pk, None)
        async with session_scope() as session:
            account = await session.get(AwsAccount, account_pk, with_for_update=True)
            if account is not None and account.status in SCANNABLE:
                previous = account.status
                set_status(account, AccountStatus.revoked, f"AssumeRole is now denied ({exc.message}).")
                await audit.record(session, workspace_id=workspace_id, actor=None, action="aws_account.revoked",
                                   target_type="aws_account", target_id=account_pk,
                                   details={"previous_status": previous.value, "scan_id": str(scan_id)})
        await _finish(scan_id, ScanStatus.failed, f"AssumeRole was denied: the role was removed or no longer "
                                                  f"trusts CloudWizard ({exc.message}). The account is now revoked.")
        return "failed"
    except AwsCallError as exc:
        await trail.write_independent(workspace_id, account_pk, None)
        if _last_try(ctx):
            await _finish(scan_id, ScanStatus.failed, f"AssumeRole failed: {exc.code}: {exc.message}")
            return "failed"
        raise  # transient: the queue retries with backoff

    last_check = 0.0

    async def on_progress(progress: dict[str, Any]) -> None:
        nonlocal last_check
        async with session_scope() as session:
            scan = await session.get(ScanRun, scan_id, with_for_update=True)
            if scan is None:
                raise ScanCancelled("scan deleted")
            scan.progress = progress
            scan.heartbeat_at = datetime.now(UTC)
            if scan.cancel_requested_at is not None or not scan.status.active:
                raise ScanCancelled("cancel requested")
        last_check = asyncio.get_running_loop().time()

    limits = Limits(concurrency=settings.scan_concurrency, per_service=settings.scan_per_service_concurrency)
    plan = ScanPlan(regions=regions)
    try:
        async with asyncio.timeout(settings.scan_time_limit_seconds):
            outcome = await run_scan(assumed, role.account_id, role.partition, plan,
                                     limits=limits, progress=on_progress)
    except ScanCancelled:
        await trail.write_independent(workspace_id, account_pk, None)
        await _finish(scan_id, ScanStatus.cancelled, "Cancelled by a user.")
        return "cancelled"
    except TimeoutError:
        await trail.write_independent(workspace_id, account_pk, None)
        await _finish(scan_id, ScanStatus.failed,
                      f"The scan exceeded its time limit of {settings.scan_time_limit_seconds} s and was stopped.")
        return "failed"

    async with session_scope() as session:
        scan = await session.get(ScanRun, scan_id, with_for_update=True)
        if scan is None or not scan.status.active:
            return scan.status.value if scan else "missing"
        if scan.cancel_requested_at is not None:
            scan.status, scan.finished_at, scan.error = ScanStatus.cancelled, datetime.now(UTC), "Cancelled by a user."
            await trail.write(session, workspace_id, account_pk, None)
            return "cancelled"
        # Only what this scan covered can be resolved by its silence: the checks of its plan, in the regions
        # it scanned, where none of their inputs failed.
        coverage = Coverage.of(select_checks(plan), outcome.regions, outcome.errors, outcome.sources_read)
        deltas = await upsert_findings(session, scan, outcome.findings, coverage)
        # New findings that an existing rule covers arrive muted.
        await apply_mutes(session, workspace_id, account_ids=[account_pk])
        await trail.write(session, workspace_id, account_pk, None)
        errors = [e.model_dump() for e in outcome.errors]
        scan.collection_errors = errors[:MAX_COLLECTION_ERRORS]
        scan.summary = {**summarize(outcome.findings), "deltas": deltas}
        scan.regions = outcome.regions
        scan.progress = {**(scan.progress or {}), "api_calls": outcome.stats.api_calls,
                         "throttled": outcome.stats.throttled, "errors": outcome.stats.errors}
        scan.status = ScanStatus.partial if outcome.status == "partial" else ScanStatus.succeeded
        scan.error = (f"{len(errors)} AWS call(s) failed; the checks that depend on them report ERROR."
                      if errors else None)
        scan.finished_at = datetime.now(UTC)
        await audit.record(session, workspace_id=workspace_id, actor=None, action="scan.finished",
                           target_type="scan", target_id=scan_id,
                           details={"status": scan.status.value, "findings": len(outcome.findings),
                                    "api_calls": outcome.stats.api_calls, "deltas": deltas})
    # A mute rule committed while the results were being written saw none of the new findings: apply again.
    async with session_scope() as session:
        await reapply_after_scan(session, workspace_id, account_pk)
    log.info("scan.finished", scan_id=str(scan_id), status=outcome.status, findings=len(outcome.findings),
             api_calls=outcome.stats.api_calls)
    return outcome.status


def _last_try(ctx: dict[str, Any]) -> bool:
    from app.worker import MAX_TRIES

    return int(ctx.get("job_try") or 1) >= MAX_TRIES or ctx.get("redis") is None


async def sweep_stale_scans(ctx: dict[str, Any]) -> int:
    """Re-enqueue scans whose worker died (queued ones too, in case the enqueue was lost); same job id,
    so a scan that is in fact still running is not started twice."""
    stale_before = datetime.now(UTC) - timedelta(seconds=get_settings().scan_stale_after_seconds)
    async with session_scope() as session:
        rows = (await session.scalars(select(ScanRun.id).where(
            ScanRun.status.in_([ScanStatus.queued, ScanStatus.running]),
            ((ScanRun.heartbeat_at.is_(None)) & (ScanRun.created_at < stale_before))
            | (ScanRun.heartbeat_at < stale_before),
        ))).all()
    for scan_id in rows:
        await enqueue_scan(scan_id)
    if rows:
        log.warning("scan.requeued_stale", count=len(rows))
    return len(rows)


async def recover_in_process_scans() -> int:
    """Single-process default (no Redis): jobs live in this process, so at start-up every queued or running
    scan was orphaned by the previous process. Re-run them (same job id, idempotent)."""
    async with session_scope() as session:
        rows = (await session.scalars(select(ScanRun.id).where(
            ScanRun.status.in_([ScanStatus.queued, ScanStatus.running])))).all()
    for scan_id in rows:
        await enqueue_scan(scan_id)
    if rows:
        log.warning("scan.recovered_after_restart", count=len(rows))
    return len(rows)


async def reverify_connections(ctx: dict[str, Any]) -> int:
    """Cheaply re-check every connected account not verified within the interval (AssumeRole only)."""
    before = datetime.now(UTC) - timedelta(seconds=get_settings().reverify_interval_seconds)
    async with session_scope() as session:
        ids = (await session.scalars(select(AwsAccount.id).where(
            AwsAccount.status.in_(list(SCANNABLE)),
            (AwsAccount.last_verified_at.is_(None)) | (AwsAccount.last_verified_at < before),
        ))).all()
    for account_id in ids:
        try:
            await reverify(account_id)
        except Exception:  # one account's trouble must not stop the others
            log.exception("aws_account.reverify_crashed", account_id=str(account_id))
    return len(ids)


JOBS = (run_scan_job, sweep_stale_scans, reverify_connections)
# Periodic jobs for `cloudwizard worker`: sweep every 5 minutes; re-verify hourly (each account at most every
# reverify_interval_seconds).
SCHEDULES = {"sweep_stale_scans": {"minute": set(range(0, 60, 5))}, "reverify_connections": {"minute": {41}}}
