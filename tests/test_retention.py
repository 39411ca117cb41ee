"""Retention of scans' per-finding results: old scans lose their scan_findings rows (and say so with 410), while
the scans' counts, the findings, their history and each account's latest results stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from app.config import get_settings
from app.db import session_scope
from app.models import FindingEvent, ScanFinding, ScanRun
from app.tasks.maintenance import purge_old_scan_results
from tests.findings_helpers import coverage_of, make_account, record, record_scan

CHECK = "s3_bucket_versioning_enabled"


async def _rows(table, **where) -> int:
    async with session_scope() as s:
        stmt = select(func.count()).select_from(table)
        for key, value in where.items():
            stmt = stmt.where(getattr(table, key) == value)
        return await s.scalar(stmt)


async def _age(scan_id, days: float) -> None:
    async with session_scope() as s:
        await s.execute(update(ScanRun).where(ScanRun.id == scan_id)
                        .values(finished_at=datetime.now(UTC) - timedelta(days=days)))


async def test_old_results_are_purged_but_latest_counts_and_history_stay(client, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    a = await make_account(ws["id"], "prod")
    b = await make_account(ws["id"], "dev")
    cov = coverage_of([CHECK], ["us-east-1"])
    keep_days = get_settings().scan_results_retention_days
    # Account a: three scans, the first two past retention; account b: one scan, past retention but its latest.
    a1, _ = await record_scan(a, [record(a, CHECK, "us-east-1", f"bucket-{i}", "FAIL") for i in range(5)], cov)
    a2, _ = await record_scan(a, [record(a, CHECK, "us-east-1", f"bucket-{i}", "PASS") for i in range(4)], cov)
    a3, _ = await record_scan(a, [record(a, CHECK, "us-east-1", f"bucket-{i}", "PASS") for i in range(4)], cov)
    b1, _ = await record_scan(b, [record(b, CHECK, "us-east-1", "bucket-b", "FAIL")], cov)
    for scan, days in ((a1, keep_days + 30), (a2, keep_days + 1), (a3, keep_days - 1), (b1, keep_days + 90)):
        await _age(scan, days)
    events_before = await _rows(FindingEvent)
    a2_summary = (await client.get(f"/v1/workspaces/{ws['id']}/aws-accounts/{a.id}/scans/{a2}",
                                   headers=owner["headers"])).json()["summary"]

    counts = await purge_old_scan_results({"job_id": "t"})

    assert counts == {"scans": 2, "scan_findings": 5 + 5}   # a1: 5 new; a2: 4 changed + 1 resolved
    assert await _rows(ScanFinding, scan_id=a1) == 0 and await _rows(ScanFinding, scan_id=a2) == 0
    assert await _rows(ScanFinding, scan_id=a3) == 4       # within retention
    assert await _rows(ScanFinding, scan_id=b1) == 1       # old, but account b's latest results
    assert await _rows(FindingEvent) == events_before      # history outlives results

    base = f"/v1/workspaces/{ws['id']}/aws-accounts/{a.id}/scans"
    r = await client.get(f"{base}/{a2}/findings", headers=owner["headers"])
    assert r.status_code == 410 and r.headers["content-type"].startswith("application/problem+json")
    assert "retention" in r.json()["detail"]
    scan = (await client.get(f"{base}/{a2}", headers=owner["headers"])).json()
    assert scan["results_purged_at"] is not None and scan["summary"] == a2_summary
    assert (await client.get(f"{base}/{a3}/findings", headers=owner["headers"])).status_code == 200
    # Findings still carry their latest-scan delta (from a3, untouched).
    listed = (await client.get(f"/v1/workspaces/{ws['id']}/findings?account_id={a.id}",
                               headers=owner["headers"])).json()["items"]
    assert len(listed) == 4 and all(f["last_delta"] == "unchanged" for f in listed)

    # Idempotent.
    assert await purge_old_scan_results({"job_id": "t2"}) == {"scans": 0, "scan_findings": 0}


async def test_the_purge_is_scheduled():
    from app.tasks import job_schedules

    assert "purge_old_scan_results" in job_schedules()
