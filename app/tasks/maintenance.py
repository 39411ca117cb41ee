"""Housekeeping jobs: purge authentication rows that can no longer be used, and scans' per-finding results past
their retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import aliased

from app.config import get_settings
from app.db import session_scope
from app.models import AuthSession, Invitation, RefreshToken, ScanFinding, ScanRun, ScanStatus

log = structlog.get_logger(__name__)

# A used or expired refresh token is kept a day so that replay of a rotated token is still recognised
# as reuse (and revokes its family) rather than as an unknown token.
REFRESH_TOKEN_GRACE = timedelta(days=1)
# Ended sessions and stale invitations stay visible for a month, for support and incident review.
RETENTION = timedelta(days=30)


async def purge_expired_auth(ctx: dict[str, Any], *, now: datetime | None = None) -> dict[str, int]:
    """Delete refresh tokens expired over a day ago, sessions revoked or expired over 30 days ago,
    and invitations expired over 30 days ago. Idempotent; safe to run concurrently with sign-ins."""
    now = now or datetime.now(UTC)
    token_cutoff = now - REFRESH_TOKEN_GRACE
    cutoff = now - RETENTION
    refresh_ttl = timedelta(seconds=get_settings().refresh_token_ttl_seconds)
    async with session_scope() as session:
        tokens = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < token_cutoff))
        # A session expires when the refresh token issued at its last activity does; it is purged
        # 30 days after that, and never while it still holds a refresh token that is not that old.
        last_activity = func.coalesce(AuthSession.last_refreshed_at, AuthSession.created_at)
        live_token = exists(select(RefreshToken.id).where(
            RefreshToken.session_id == AuthSession.id, RefreshToken.expires_at >= cutoff))
        sessions = await session.execute(
            delete(AuthSession)
            .where(or_(AuthSession.revoked_at < cutoff,
                       and_(last_activity < cutoff - refresh_ttl, ~live_token)))
            .execution_options(synchronize_session=False)
        )
        invitations = await session.execute(delete(Invitation).where(Invitation.expires_at < cutoff))
    counts = {"refresh_tokens": tokens.rowcount, "auth_sessions": sessions.rowcount,
              "invitations": invitations.rowcount}
    log.info("purged_expired_auth", job_id=ctx.get("job_id"), **counts)
    return counts


# Scans whose results a purge removes in one transaction: short transactions, so scans writing meanwhile never wait
# long on the rows it locks.
RESULTS_BATCH = 20


async def purge_old_scan_results(ctx: dict[str, Any], *, now: datetime | None = None) -> dict[str, int]:
    """Delete the scan_findings rows (one per finding per scan: the largest table) of scans that finished over
    `scan_results_retention_days` ago, except each account's latest finished scan, which findings lists read for
    deltas. The scan row with its counts and deltas stays, and the findings and their history (finding_events)
    are untouched; the scan is marked so that asking for its results answers 410 Gone rather than an empty list.
    Idempotent, and safe to run while scans write."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=get_settings().scan_results_retention_days)
    finished = (ScanStatus.succeeded, ScanStatus.partial)
    newer = aliased(ScanRun)
    superseded = exists(select(newer.id).where(newer.aws_account_id == ScanRun.aws_account_id,
                                               newer.status.in_(finished), newer.id > ScanRun.id))
    scans = purged_rows = 0
    while True:
        async with session_scope() as session:
            due = list((await session.scalars(
                select(ScanRun).where(ScanRun.status.in_(finished), ScanRun.finished_at < cutoff,
                                      ScanRun.results_purged_at.is_(None), superseded)
                .order_by(ScanRun.id).limit(RESULTS_BATCH).with_for_update(skip_locked=True))).all())
            if not due:
                break
            result = await session.execute(
                delete(ScanFinding).where(ScanFinding.scan_id.in_([scan.id for scan in due]))
                .execution_options(synchronize_session=False))
            purged_rows += result.rowcount or 0
            for scan in due:
                scan.results_purged_at = now
            scans += len(due)
    counts = {"scans": scans, "scan_findings": purged_rows}
    log.info("purged_old_scan_results", job_id=ctx.get("job_id"), **counts)
    return counts


JOBS = [purge_expired_auth, purge_old_scan_results]
# Hourly, off the top of the hour when other schedulers pile up; results daily at night (UTC).
SCHEDULES = {"purge_expired_auth": {"minute": {17}}, "purge_old_scan_results": {"hour": {3}, "minute": {41}}}
