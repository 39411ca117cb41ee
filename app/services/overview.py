"""The organization view: every AWS account of a workspace side by side, with its posture and latest scans."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.checks.base import Severity
from app.models import AwsAccount, Finding, ScanRun
from app.services.findings import FINISHED, Bucket, latest_scan_ids, muted_clause
from app.services.scoping import scoped

SEVERITIES = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]   # critical first


@dataclass
class AccountPosture:
    account: AwsAccount
    open: Bucket
    failed_by_severity: dict[str, int]
    muted: int = 0
    resolved: int = 0
    last_scan: ScanRun | None = None            # the latest scan, whatever its outcome
    last_results: ScanRun | None = None         # the latest scan that wrote results
    by_source: dict[str, int] = field(default_factory=dict)   # open failures per source

    @property
    def pass_rate(self) -> float | None:
        judged = self.open.passed + self.open.failed
        return round(self.open.passed / judged, 4) if judged else None

    def sort_key(self) -> tuple:
        # Worst first: critical failures, then high, ... then name.
        return (*(-self.failed_by_severity[s] for s in SEVERITIES), self.account.name, str(self.account.id))


async def account_postures(session: AsyncSession, ws: uuid.UUID) -> list[AccountPosture]:
    """One row per AWS account connection of the workspace, worst first. Counts are of open findings; muted ones
    are counted apart, as in the findings summary."""
    accounts = list((await session.scalars(scoped(AwsAccount, ws))).all())
    if not accounts:
        return []
    now = datetime.now(UTC)
    postures = {a.id: AccountPosture(account=a, open=Bucket(key=str(a.id), label=a.name),
                                     failed_by_severity=dict.fromkeys(SEVERITIES, 0)) for a in accounts}
    open_findings = scoped(Finding, ws).where(Finding.resolved_at.is_(None))
    rows = (await session.execute(
        open_findings.where(~muted_clause(now))
        .with_only_columns(Finding.aws_account_id, Finding.status, Finding.severity, Finding.source, func.count())
        .group_by(Finding.aws_account_id, Finding.status, Finding.severity, Finding.source))).all()
    sources: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account_id, status, severity, source, n in rows:
        posture = postures.get(account_id)
        if posture is None:
            continue
        posture.open.add(status, n)
        if status == "FAIL":
            posture.failed_by_severity[severity] = posture.failed_by_severity.get(severity, 0) + n
            sources[account_id][source] += n
    for account_id, n in (await session.execute(
            open_findings.where(muted_clause(now)).with_only_columns(Finding.aws_account_id, func.count())
            .group_by(Finding.aws_account_id))).tuples().all():
        if account_id in postures:
            postures[account_id].muted = n
    for account_id, n in (await session.execute(
            scoped(Finding, ws).where(Finding.resolved_at.is_not(None))
            .with_only_columns(Finding.aws_account_id, func.count()).group_by(Finding.aws_account_id))).tuples().all():
        if account_id in postures:
            postures[account_id].resolved = n
    for account_id, by_source in sources.items():
        postures[account_id].by_source = dict(sorted(by_source.items()))

    rank = func.row_number().over(partition_by=ScanRun.aws_account_id, order_by=ScanRun.id.desc()).label("rank")
    newest = scoped(ScanRun, ws).add_columns(rank).subquery()
    latest_any = list((await session.scalars(
        scoped(ScanRun, ws).where(ScanRun.id.in_(
            newest.select().with_only_columns(newest.c.id).where(newest.c.rank == 1))))).all())
    for scan in latest_any:
        if scan.aws_account_id in postures:
            postures[scan.aws_account_id].last_scan = scan
    finished_ids = await latest_scan_ids(session, ws)
    if finished_ids:
        for scan in (await session.scalars(scoped(ScanRun, ws).where(ScanRun.id.in_(finished_ids),
                                                                      ScanRun.status.in_(FINISHED)))).all():
            if scan.aws_account_id in postures:
                postures[scan.aws_account_id].last_results = scan
    return sorted(postures.values(), key=AccountPosture.sort_key)
