"""Scans: start (one active per account), list, get, cancel, and the summary of their results.

Writing a scan's findings and their lifecycle lives in app.services.findings (`upsert_findings`, re-exported
here for the callers that know it from this module)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import Principal
from app.db import after_commit
from app.errors import Conflict, NotFound
from app.models import AccountStatus, ScanRun, ScanStatus
from app.pagination import PageParams, paginate
from app.scanners.engine import FindingRecord
from app.services import audit
from app.services.aws_accounts import get_or_404 as get_account_or_404
from app.services.findings import upsert_findings  # noqa: F401  (re-exported)
from app.services.scoping import get_scoped_or_404, scoped

SCANNABLE = (AccountStatus.connected, AccountStatus.degraded)


def scan_job_id(scan_id: uuid.UUID) -> str:
    """One job id per scan: enqueueing twice (a retry, the stale-scan sweeper) never runs it twice at once."""
    return f"scan:{scan_id}"


async def enqueue_scan(scan_id: uuid.UUID) -> None:
    from app.worker import enqueue

    await enqueue("run_scan_job", str(scan_id), job_id=scan_job_id(scan_id))


async def active_scan(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID) -> ScanRun | None:
    return (await session.scalars(
        scoped(ScanRun, workspace_id).where(ScanRun.aws_account_id == account_id,
                                            ScanRun.status.in_([ScanStatus.queued, ScanStatus.running]))
    )).first()


async def start(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal | None,
                *, trigger: str = "manual") -> tuple[ScanRun, bool]:
    """Queue a scan, or return the account's active one; the bool says whether a new scan was created."""
    account = await get_account_or_404(session, workspace_id, account_id)
    if account.status not in SCANNABLE:
        raise Conflict(f"The account is {account.status.value}; only connected or degraded accounts can be "
                       "scanned. Verify the connection first.")
    existing = await active_scan(session, workspace_id, account_id)
    if existing is not None:
        return existing, False
    scan = ScanRun(workspace_id=workspace_id, aws_account_id=account_id, status=ScanStatus.queued,
                   trigger=trigger, requested_by=actor.label if actor else "scheduler",
                   regions=account.regions or [], progress={}, summary={}, collection_errors=[])
    try:
        async with session.begin_nested():
            session.add(scan)
            await session.flush()
    except IntegrityError:
        # Another request created the active scan between our check and insert: answer with that one.
        existing = await active_scan(session, workspace_id, account_id)
        if existing is None:
            raise
        return existing, False
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="scan.requested",
                       target_type="scan", target_id=scan.id,
                       details={"aws_account_id": str(account_id), "trigger": trigger})
    after_commit(session, lambda: enqueue_scan(scan.id))
    return scan, True


async def list_scans(session: AsyncSession, workspace_id: uuid.UUID, params: PageParams,
                     account_id: uuid.UUID | None = None,
                     status: ScanStatus | None = None) -> tuple[list[ScanRun], str | None]:
    stmt = scoped(ScanRun, workspace_id)
    if account_id is not None:
        stmt = stmt.where(ScanRun.aws_account_id == account_id)
    if status is not None:
        stmt = stmt.where(ScanRun.status == status)
    return await paginate(session, stmt, ScanRun.id, params, descending=True)


async def get_or_404(session: AsyncSession, workspace_id: uuid.UUID, scan_id: uuid.UUID,
                     account_id: uuid.UUID | None = None, *, for_update: bool = False) -> ScanRun:
    scan = await get_scoped_or_404(session, ScanRun, workspace_id, scan_id, what="Scan", for_update=for_update)
    if account_id is not None and scan.aws_account_id != account_id:
        raise NotFound("Scan not found.")
    return scan


async def cancel(session: AsyncSession, workspace_id: uuid.UUID, scan_id: uuid.UUID, actor: Principal,
                 account_id: uuid.UUID | None = None) -> ScanRun:
    scan = await get_or_404(session, workspace_id, scan_id, account_id, for_update=True)
    if not scan.status.active:
        raise Conflict(f"The scan already ended ({scan.status.value}).")
    now = datetime.now(UTC)
    scan.cancel_requested_at = scan.cancel_requested_at or now
    if scan.status == ScanStatus.queued:
        # Not started: nothing to interrupt. A running scan stops at its next progress report.
        scan.status = ScanStatus.cancelled
        scan.finished_at = now
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="scan.cancelled",
                       target_type="scan", target_id=scan.id)
    return scan


def summarize(records: Iterable[FindingRecord]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    failed_by_severity: Counter[str] = Counter()
    for r in records:
        statuses[r.status] += 1
        if r.status == "FAIL":
            failed_by_severity[r.severity] += 1
    return {"total": sum(statuses.values()), "passed": statuses["PASS"], "failed": statuses["FAIL"],
            "errored": statuses["ERROR"], "failed_by_severity": dict(failed_by_severity)}
