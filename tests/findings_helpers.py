"""Helpers for findings tests: read a scan's verdicts and a finding's history from the database, and record
synthetic scans through the real lifecycle service (for API tests that need many findings fast)."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from app.checks.base import finding_uid
from app.checks.catalog import catalog
from app.db import session_scope
from app.models import AccountStatus, AwsAccount, Finding, FindingEvent, ScanFinding, ScanRun, ScanStatus
from app.scanners.engine import FindingRecord
from app.services.findings import Coverage, upsert_findings
from app.services.scans import summarize


async def verdicts(scan_id: str | uuid.UUID) -> dict[str, tuple[str, str | None, str | None]]:
    """uid -> (delta, previous_status, status) of every scan_findings row of the scan."""
    async with session_scope() as s:
        rows = (await s.execute(
            select(Finding.uid, ScanFinding.delta, ScanFinding.previous_status, ScanFinding.status)
            .join(Finding, Finding.id == ScanFinding.finding_id)
            .where(ScanFinding.scan_id == uuid.UUID(str(scan_id))))).all()
    return {uid: (delta.value, prev, status) for uid, delta, prev, status in rows}


async def findings_by_uid() -> dict[str, Finding]:
    async with session_scope() as s:
        return {f.uid: f for f in (await s.scalars(select(Finding))).all()}


async def history(finding_id: uuid.UUID) -> list[tuple[str, str | None, str | None]]:
    """(delta, from, to) of a finding's events, oldest first."""
    async with session_scope() as s:
        rows = (await s.execute(select(FindingEvent.delta, FindingEvent.from_status, FindingEvent.to_status)
                                .where(FindingEvent.finding_id == finding_id).order_by(FindingEvent.id))).all()
    return [(d.value, a, b) for d, a, b in rows]


async def make_account(workspace_id: str | uuid.UUID, name: str = "prod", aws_account_id: str | None = None,
                       regions: list[str] | None = None) -> AwsAccount:
    """A connected account row (no role: it is never scanned for real)."""
    number = aws_account_id or f"{secrets.randbelow(10**12):012d}"
    async with session_scope() as s:
        account = AwsAccount(workspace_id=uuid.UUID(str(workspace_id)), name=name,
                             external_id=secrets.token_urlsafe(32), status=AccountStatus.connected,
                             aws_account_id=number, role_arn=f"arn:aws:iam::{number}:role/CloudWizardScanner",
                             partition="aws", regions=regions, missing_permissions=[])
        s.add(account)
    return account


def record(aws_account: AwsAccount, check_id: str, region: str, resource_id: str, status: str,
           **overrides) -> FindingRecord:
    """A finding record as the engine would build it for a catalog check."""
    meta = catalog()[check_id].meta
    fields = dict(
        uid=finding_uid(aws_account.aws_account_id, region, check_id, resource_id), check_id=check_id,
        title=meta.title, status=status, severity=meta.severity.value, service=meta.service,
        category=meta.category, region=region, account_id=aws_account.aws_account_id,
        resource_type=meta.resource_type, resource_id=resource_id,
        resource_arn=f"arn:aws:{meta.service}:{region}:{aws_account.aws_account_id}:{resource_id}",
        message=f"{check_id} on {resource_id}: {status}", source="cloudwizard", compliance=meta.compliance,
        details={},
    )
    fields.update(overrides)
    return FindingRecord(**fields)


def coverage_of(check_ids: Iterable[str], regions: Iterable[str], errors=()) -> Coverage:
    entries = catalog()
    return Coverage.of([entries[c] for c in check_ids], regions, errors)


async def record_scan(aws_account: AwsAccount, records: list[FindingRecord], coverage: Coverage | None,
                      *, scan_id: uuid.UUID | None = None) -> tuple[uuid.UUID, dict[str, int]]:
    """Write a finished scan's results exactly as the scan job does (same service, same summary)."""
    async with session_scope() as s:
        if scan_id is None:
            now = datetime.now(UTC)
            scan = ScanRun(workspace_id=aws_account.workspace_id, aws_account_id=aws_account.id,
                           status=ScanStatus.running, started_at=now, regions=[], progress={}, summary={},
                           collection_errors=[])
            s.add(scan)
            await s.flush()
        else:
            scan = await s.get(ScanRun, scan_id)
        deltas = await upsert_findings(s, scan, records, coverage)
        scan.summary = {**summarize(records), "deltas": deltas}
        scan.status = ScanStatus.succeeded
        scan.finished_at = datetime.now(UTC)
        return scan.id, deltas


async def all_pages(client, url: str, headers: dict, limit: int = 50) -> list[dict]:
    """Every item of a cursor-paginated list, walking `next_cursor` (pages never larger than `limit`)."""
    items, cursor, pages = [], None, 0
    sep = "&" if "?" in url else "?"
    while True:
        r = await client.get(f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 10_000, "the cursor never ends"


def shape_errors(shape, value, where: str = "$") -> list[str]:
    """What botocore's ParamValidator does not check of a value against its service-model shape: enums and string
    patterns (Security Hub's ASFF requires e.g. non-blank strings)."""
    errors = []
    if getattr(shape, "enum", None) and value not in shape.enum:
        errors.append(f"{where}: {value!r} not in {shape.enum}")
    pattern = shape.metadata.get("pattern")
    if shape.type_name == "string" and pattern and not re.search(pattern, value):
        errors.append(f"{where}: {value!r} does not match {pattern!r}")
    if shape.type_name == "structure":
        for key, item in value.items():
            errors += shape_errors(shape.members[key], item, f"{where}.{key}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            errors += shape_errors(shape.member, item, f"{where}[{i}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            errors += shape_errors(shape.key, key, f"{where} key {key!r}")
            errors += shape_errors(shape.value, item, f"{where}[{key!r}]")
    return errors
