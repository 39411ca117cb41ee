"""The organization view: every AWS account of a workspace side by side."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SessionDep, WorkspaceViewer
from app.errors import error_responses
from app.schemas.findings import CountBucket, TrendPoint
from app.schemas.overview import AccountPostureList, AccountPostureRead, LastScan
from app.services.overview import AccountPosture, account_postures

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["findings"])


def _read(p: AccountPosture) -> AccountPostureRead:
    return AccountPostureRead(
        aws_account_id=p.account.id, name=p.account.name, aws_account_number=p.account.aws_account_id,
        connection_status=p.account.status,
        open=CountBucket(key=p.open.key, label=p.open.label, total=p.open.total, passed=p.open.passed,
                         failed=p.open.failed, errored=p.open.errored),
        failed_by_severity=p.failed_by_severity, failed_by_source=p.by_source, pass_rate=p.pass_rate,
        muted=p.muted, resolved=p.resolved,
        last_scan=LastScan(id=p.last_scan.id, status=p.last_scan.status, created_at=p.last_scan.created_at,
                           finished_at=p.last_scan.finished_at, error=p.last_scan.error) if p.last_scan else None,
        last_results=TrendPoint.of_scan(p.last_results) if p.last_results else None)


@router.get("/findings/summary/accounts", name="findings_summary_accounts", response_model=AccountPostureList,
            summary="Summarize each account",
            description="The organization view: one row per AWS account connection of the workspace (scanned or "
                        "not), worst first, with its open findings by status, failures by severity and source, pass "
                        "rate, muted and resolved counts, its latest scan and the counts and deltas of the latest "
                        "scan that wrote results. `findings_summary` gives the same counts for the whole workspace "
                        "or one account, with the trend.",
            responses=error_responses(401, 404))
async def findings_summary_accounts(ctx: WorkspaceViewer, session: SessionDep):
    return AccountPostureList(items=[_read(p) for p in await account_postures(session, ctx.id)])
