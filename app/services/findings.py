"""Findings: the lifecycle a scan writes (upsert, deltas, exact resolution, history) and the read queries."""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.aws.permissions import load_declarations
from app.checks.base import Severity
from app.checks.catalog import CatalogEntry, catalog
from app.errors import Gone, InvalidInput, NotFound
from app.models import AwsAccount, Finding, FindingDelta, FindingEvent, ScanFinding, ScanRun, ScanStatus
from app.models.base import uuid7
from app.models.scan import severity_rank
from app.pagination import PageParams
from app.pagination import decode_cursor as decode_id_cursor
from app.pagination import encode_cursor as encode_id_cursor
from app.scanners.base import COLLECTORS, GLOBAL, CollectionError
from app.scanners.engine import FindingRecord
from app.services.scoping import get_scoped_or_404, scoped

log = structlog.get_logger(__name__)

SOURCE = "cloudwizard"
CHUNK = 500                       # rows per statement: well under both drivers' bind-parameter limits
FINISHED = (ScanStatus.succeeded, ScanStatus.partial)   # the scans that wrote results
HISTORY_LIMIT = 100
SEVERITY_RANK = {s.value: s.rank for s in Severity}
DELTAS = tuple(FindingDelta)
# Where one check yields two results for one resource, the finding keeps the one that matters most.
_KEEP_RANK = {"PASS": 0, "ERROR": 1, "FAIL": 2}
# Bulk statements touch rows this session never loaded: nothing in the identity map to synchronize.
_BULK = {"synchronize_session": False}


# --------------------------------------------------------------------------------------------------------------
# What a scan covered


@dataclass(frozen=True)
class Coverage:
    """What a scan looked at. A finding the scan did not produce is resolved only if the scan covered it: its
    check ran, its region was scanned (or the check's inputs all come from account-wide listings), and nothing
    the check reads failed there. Anything else keeps its state: a scan that could not look proves nothing."""

    checks: frozenset[str]
    regions: frozenset[str]
    account_wide: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()                          # checks with a failed input everywhere
    blocked_in: Mapping[str, frozenset[str]] = field(default_factory=dict)   # check -> regions with a failure
    # Findings of another source (GuardDuty, Security Hub) resolve only where the scan read that source's active
    # findings completely: (source, region) pairs, from ScanOutcome.sources_read.
    sources_read: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(cls, checks: Iterable[CatalogEntry], regions: Iterable[str],
           errors: Iterable[CollectionError], sources_read: Iterable[tuple[str, str]] = ()) -> Coverage:
        load_declarations()
        global_actions = {a.lower() for c in COLLECTORS.values() if c.scope == "global" for a in c.actions}
        regional_actions = {a.lower() for c in COLLECTORS.values() if c.scope == "regional" for a in c.actions}
        specs = {e.spec.id: e.spec for e in checks}
        requires = {cid: {a.lower() for a in spec.requires} for cid, spec in specs.items()}
        by_action: dict[str, set[str]] = defaultdict(set)
        for cid, actions in requires.items():
            for action in actions:
                by_action[action].add(cid)
        blocked: set[str] = set()
        blocked_in: dict[str, set[str]] = defaultdict(set)
        for error in errors:
            action = error.action.lower()
            for cid in by_action.get(action, ()):
                # An account check is skipped whole on any failed input; a failure filed under GLOBAL, or a
                # failed account-wide listing (filed under the home region), hides resources of every region.
                if (specs[cid].kind == "account" or error.region == GLOBAL
                        or (action in global_actions and error.resource_id is None)):
                    blocked.add(cid)
                else:
                    blocked_in[cid].update((error.region, GLOBAL))
        account_wide = {cid for cid, actions in requires.items()
                        if actions <= global_actions and not actions & regional_actions}
        return cls(checks=frozenset(specs), regions=frozenset(regions), account_wide=frozenset(account_wide),
                   blocked=frozenset(blocked), blocked_in={k: frozenset(v) for k, v in blocked_in.items()},
                   sources_read=frozenset(sources_read))

    def covers(self, check_id: str, region: str) -> bool:
        if check_id not in self.checks or check_id in self.blocked:
            return False
        if region in self.blocked_in.get(check_id, ()):
            return False
        return region == GLOBAL or region in self.regions or check_id in self.account_wide

    def covers_finding(self, source: str, check_id: str, region: str) -> bool:
        if source != SOURCE:
            return (source, region) in self.sources_read
        return self.covers(check_id, region)


# --------------------------------------------------------------------------------------------------------------
# Writing a scan's results


def _insert(session: AsyncSession):
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def empty_deltas() -> dict[str, int]:
    return {d.value: 0 for d in DELTAS}


@dataclass(slots=True)
class _Baseline:
    """A finding's state before this scan (for a re-run, before its first attempt)."""

    exists: bool
    open: bool
    status: str | None


def _unique(records: Iterable[FindingRecord]) -> list[FindingRecord]:
    by_uid: dict[str, FindingRecord] = {}
    duplicates = 0
    for r in records:
        kept = by_uid.get(r.uid)
        if kept is not None:
            duplicates += 1
            if _KEEP_RANK.get(r.status, 0) <= _KEEP_RANK.get(kept.status, 0):
                continue
        by_uid[r.uid] = r
    if duplicates:
        log.warning("findings.duplicate_uids", count=duplicates)
    return list(by_uid.values())


async def _connections_of_same_aws_account(session: AsyncSession, scan: ScanRun) -> list[uuid.UUID]:
    """Uids are derived from the AWS account number, so a reconnected account meets its old findings again:
    they are the same resources, and they move to the live connection."""
    account = await session.get(AwsAccount, scan.aws_account_id)
    ids = {scan.aws_account_id}
    if account is not None and account.aws_account_id:
        ids.update((await session.scalars(
            scoped(AwsAccount, scan.workspace_id).with_only_columns(AwsAccount.id)
            .where(AwsAccount.aws_account_id == account.aws_account_id))).all())
    return sorted(ids)


async def upsert_findings(session: AsyncSession, scan: ScanRun, records: Sequence[FindingRecord],
                          coverage: Coverage | None = None) -> dict[str, int]:
    """Write a scan's results and their lifecycle in bulk; return the count of each delta.

    Findings are upserted by uid; each one the scan produced or resolved gets a scan_findings row, and each
    transition a finding_events row. Without `coverage` nothing is resolved. Running it again for the same scan
    (a crash re-run) recomputes everything against the state before the scan's first attempt, so deltas and
    history are never counted twice.
    """
    now = datetime.now(UTC)
    ws = scan.workspace_id
    records = _unique(records)
    connections = await _connections_of_same_aws_account(session, scan)
    known = {row.uid: row for row in (await session.execute(
        scoped(Finding, ws).with_only_columns(
            Finding.id, Finding.uid, Finding.source, Finding.status, Finding.resolved_at, Finding.check_id,
            Finding.region, Finding.status_changed_at)
        .where(Finding.aws_account_id.in_(connections)))).all()}
    prior = {row.finding_id: row for row in (await session.execute(
        scoped(ScanFinding, ws).with_only_columns(ScanFinding.finding_id, ScanFinding.delta,
                                                  ScanFinding.previous_status)
        .where(ScanFinding.scan_id == scan.id))).all()}

    def baseline(row: Any) -> _Baseline:
        before = prior.get(row.id)
        if before is None:
            return _Baseline(True, row.resolved_at is None, row.status)
        return _Baseline(before.delta != FindingDelta.new, before.delta != FindingDelta.reopened,
                         before.previous_status)

    if prior:
        # A re-run replaces what the first attempt wrote for this scan; the baselines above remember the rest.
        await session.execute(delete(ScanFinding).where(ScanFinding.workspace_id == ws,
                                                        ScanFinding.scan_id == scan.id), execution_options=_BULK)
        await session.execute(delete(FindingEvent).where(FindingEvent.workspace_id == ws,
                                                         FindingEvent.scan_id == scan.id), execution_options=_BULK)

    verdicts: list[dict[str, Any]] = []   # scan_findings rows, finding_id filled in after the upsert
    rows: list[dict[str, Any]] = []
    for r in records:
        row = known.get(r.uid)
        base = baseline(row) if row is not None else None
        if base is None or not base.exists:
            delta, previous = FindingDelta.new, None
        elif not base.open:
            delta, previous = FindingDelta.reopened, base.status
        else:
            delta = FindingDelta.unchanged if base.status == r.status else FindingDelta.changed
            previous = base.status
        rows.append({
            "id": row.id if row is not None else uuid7(), "workspace_id": ws, "aws_account_id": scan.aws_account_id,
            "uid": r.uid, "source": r.source, "source_id": r.source_id, "check_id": r.check_id, "title": r.title,
            "service": r.service, "category": r.category, "severity": r.severity,
            "severity_rank": severity_rank(r.severity), "status": r.status,
            "region": r.region, "resource_type": r.resource_type, "resource_id": r.resource_id[:1024],
            "resource_arn": r.resource_arn, "resource_tags": r.resource_tags, "message": r.message,
            "compliance": r.compliance, "details": r.details, "first_seen_at": now, "last_seen_at": now,
            "status_changed_at": (row.status_changed_at if delta == FindingDelta.unchanged and row is not None
                                  else now),
            "resolved_at": None, "last_scan_id": scan.id,
        })
        verdicts.append({"uid": r.uid, "status": r.status, "previous_status": previous, "delta": delta})

    ids_by_uid = await _upsert_rows(session, rows)

    resolved: list[tuple[Any, _Baseline]] = []
    if coverage is not None:
        for uid, row in known.items():
            if uid in ids_by_uid:
                continue
            base = baseline(row)
            if base.exists and base.open and coverage.covers_finding(row.source, row.check_id, row.region):
                resolved.append((row, base))
    await _resolve(session, scan, resolved, now)

    touched = set(ids_by_uid.values()) | {row.id for row, _ in resolved}
    leftovers = [(known_row, before) for known_row in known.values()
                 if known_row.id not in touched and (before := prior.get(known_row.id)) is not None]
    if leftovers:
        await _undo_first_attempt(session, ws, leftovers)

    for v in verdicts:
        v["finding_id"] = ids_by_uid[v.pop("uid")]
    for row, base in resolved:
        verdicts.append({"finding_id": row.id, "status": None, "previous_status": base.status,
                         "delta": FindingDelta.resolved})
    await _write_verdicts(session, ws, scan.id, verdicts, now)
    counts = empty_deltas()
    counts.update(Counter(v["delta"].value for v in verdicts))
    return counts


async def _upsert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, uuid.UUID]:
    # One statement executed with many parameter sets: compiled once, sent as multi-row batches by the driver
    # layer, with the ids of inserted and updated rows returned.
    table = Finding.__table__
    stmt = _insert(session)(table)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.workspace_id, table.c.uid],
        set_={name: excluded[name] for name in (
            "aws_account_id", "status", "severity", "severity_rank", "title", "service", "category", "resource_type",
            "resource_id", "message", "resource_arn", "resource_tags", "compliance", "details", "last_seen_at",
            "last_scan_id", "resolved_at", "status_changed_at")},
    ).returning(table.c.id, table.c.uid)
    ids: dict[str, uuid.UUID] = {}
    for chunk in _chunks(rows, 1000):
        for finding_id, uid in (await session.execute(stmt, list(chunk))).all():
            ids[uid] = finding_id
    return ids


async def _resolve(session: AsyncSession, scan: ScanRun, resolved: list[tuple[Any, _Baseline]],
                   now: datetime) -> None:
    # Grouped by the status to keep (a re-run may have to put back the status before its first attempt).
    by_status: dict[str | None, list[uuid.UUID]] = defaultdict(list)
    for row, base in resolved:
        by_status[base.status].append(row.id)
    for status, ids in by_status.items():
        values: dict[str, Any] = {"resolved_at": now, "status_changed_at": now,
                                  "aws_account_id": scan.aws_account_id}
        if status is not None:
            values["status"] = status
        for chunk in _chunks(ids):
            await session.execute(update(Finding).where(Finding.workspace_id == scan.workspace_id,
                                                        Finding.id.in_(chunk)).values(**values),
                                  execution_options=_BULK)


async def _undo_first_attempt(session: AsyncSession, ws: uuid.UUID, leftovers: list[tuple[Any, Any]]) -> None:
    """Findings the first attempt of this scan touched but this attempt neither produced nor resolved: put back
    the state they had before the scan. Rare (the account changed between the attempts), so plainly written."""
    created = [row.id for row, before in leftovers if before.delta == FindingDelta.new]
    for chunk in _chunks(created):
        await session.execute(delete(Finding).where(Finding.workspace_id == ws, Finding.id.in_(chunk)),
                              execution_options=_BULK)
    reopened = [row.id for row, before in leftovers if before.delta == FindingDelta.reopened]
    resolved_at: dict[uuid.UUID, datetime] = {}
    for chunk in _chunks(reopened):
        resolved_at.update((await session.execute(
            scoped(FindingEvent, ws).with_only_columns(FindingEvent.finding_id, func.max(FindingEvent.at))
            .where(FindingEvent.finding_id.in_(chunk), FindingEvent.delta == FindingDelta.resolved)
            .group_by(FindingEvent.finding_id))).tuples().all())
    now = datetime.now(UTC)
    for row, before in leftovers:
        if before.delta == FindingDelta.new:
            continue
        values: dict[str, Any] = {"status": before.previous_status or row.status}
        if before.delta == FindingDelta.reopened:
            values["resolved_at"] = resolved_at.get(row.id, now)
        elif before.delta == FindingDelta.resolved:
            values["resolved_at"] = None
        await session.execute(update(Finding).where(Finding.workspace_id == ws, Finding.id == row.id)
                              .values(**values), execution_options=_BULK)


async def _write_verdicts(session: AsyncSession, ws: uuid.UUID, scan_id: uuid.UUID,
                          verdicts: list[dict[str, Any]], now: datetime) -> None:
    scan_rows = [{"scan_id": scan_id, "workspace_id": ws, **v} for v in verdicts]
    events = [{"id": uuid7(), "workspace_id": ws, "finding_id": v["finding_id"], "scan_id": scan_id,
               "delta": v["delta"], "from_status": v["previous_status"], "to_status": v["status"], "at": now}
              for v in verdicts if v["delta"] != FindingDelta.unchanged]
    for chunk in _chunks(scan_rows, 1000):
        await session.execute(ScanFinding.__table__.insert(), list(chunk))
    for chunk in _chunks(events, 1000):
        await session.execute(FindingEvent.__table__.insert(), list(chunk))


# --------------------------------------------------------------------------------------------------------------
# Reading


class FindingSort(enum.StrEnum):
    severity = "severity"
    last_seen = "last_seen"
    first_seen = "first_seen"


class SortOrder(enum.StrEnum):
    desc = "desc"
    asc = "asc"


class MutedFilter(enum.StrEnum):
    exclude = "exclude"   # what needs attention: muted findings left out
    include = "include"   # muted and unmuted
    only = "only"         # only muted findings


def muted_clause(now: datetime | None = None):
    """True where a finding is muted now: a live rule covers it and that rule has not expired. The expiry job
    unlinks expired rules later; comparing muted_until here makes a mute end exactly on time."""
    now = now or datetime.now(UTC)
    return and_(Finding.mute_rule_id.is_not(None), or_(Finding.muted_until.is_(None), Finding.muted_until > now))


def is_muted(finding: Finding, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return finding.mute_rule_id is not None and (finding.muted_until is None or finding.muted_until > now)


@dataclass
class FindingFilter:
    account_ids: list[uuid.UUID] | None = None
    regions: list[str] | None = None
    services: list[str] | None = None
    categories: list[str] | None = None
    check_ids: list[str] | None = None
    severities: list[str] | None = None
    statuses: list[str] | None = None
    sources: list[str] | None = None
    deltas: list[FindingDelta] | None = None
    resource: str | None = None
    first_seen_since: datetime | None = None
    first_seen_until: datetime | None = None
    last_seen_since: datetime | None = None
    last_seen_until: datetime | None = None
    include_resolved: bool = False
    muted: MutedFilter = MutedFilter.exclude


def _sort_key(sort: FindingSort):
    if sort == FindingSort.severity:
        return Finding.severity_rank
    return Finding.last_seen_at if sort == FindingSort.last_seen else Finding.first_seen_at


def _key_of(finding: Finding, sort: FindingSort) -> Any:
    if sort == FindingSort.severity:
        return SEVERITY_RANK.get(finding.severity, -1)
    value = finding.last_seen_at if sort == FindingSort.last_seen else finding.first_seen_at
    return value.astimezone(UTC).isoformat()


def _invalid_cursor(reason: str = "Invalid cursor.") -> InvalidInput:
    return InvalidInput.field("cursor", reason, loc=["query", "cursor"])


def encode_sort_cursor(sort: str, order: str, key: Any, last_id: uuid.UUID) -> str:
    raw = json.dumps([sort, order, key, last_id.hex], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_sort_cursor(cursor: str, sort: str, order: str) -> tuple[Any, uuid.UUID]:
    """The sort key and id of the last row seen. A cursor carries its sort, so reusing it under another sort
    (which would skip or repeat rows) is refused."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        c_sort, c_order, key, last = data
        if not isinstance(last, str):   # uuid.UUID(hex=...) of a number or a list raises AttributeError
            raise TypeError("the id is not a string")
        last_id = uuid.UUID(hex=last)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise _invalid_cursor() from exc
    if (c_sort, c_order) != (sort, order):
        raise _invalid_cursor("The cursor belongs to another sort order; start again without a cursor.")
    if sort == FindingSort.severity:
        if not isinstance(key, int) or isinstance(key, bool) or not -1 <= key <= max(SEVERITY_RANK.values()):
            raise _invalid_cursor()
        return key, last_id
    try:
        moment = datetime.fromisoformat(key)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment.astimezone(UTC), last_id
    except (TypeError, ValueError, OverflowError) as exc:
        raise _invalid_cursor() from exc


async def latest_scan_ids(session: AsyncSession, ws: uuid.UUID,
                          account_ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """The latest scan that wrote results, for each account of the workspace."""
    rank = func.row_number().over(partition_by=ScanRun.aws_account_id, order_by=ScanRun.id.desc()).label("rank")
    stmt = scoped(ScanRun, ws).with_only_columns(ScanRun.id, rank).where(ScanRun.status.in_(FINISHED))
    if account_ids:
        stmt = stmt.where(ScanRun.aws_account_id.in_(account_ids))
    sub = stmt.subquery()
    return list((await session.scalars(select(sub.c.id).where(sub.c.rank == 1))).all())


def _apply_filter(stmt, f: FindingFilter):
    for column, values in ((Finding.aws_account_id, f.account_ids), (Finding.region, f.regions),
                           (Finding.service, f.services), (Finding.category, f.categories),
                           (Finding.check_id, f.check_ids), (Finding.severity, f.severities),
                           (Finding.status, f.statuses), (Finding.source, f.sources)):
        if values:
            stmt = stmt.where(column.in_(values))
    if f.resource:
        stmt = stmt.where(or_(Finding.resource_id.icontains(f.resource, autoescape=True),
                              Finding.resource_arn.icontains(f.resource, autoescape=True)))
    for column, since, until in ((Finding.first_seen_at, f.first_seen_since, f.first_seen_until),
                                 (Finding.last_seen_at, f.last_seen_since, f.last_seen_until)):
        if since is not None:
            stmt = stmt.where(column >= since)
        if until is not None:
            stmt = stmt.where(column < until)
    if not f.include_resolved:
        stmt = stmt.where(Finding.resolved_at.is_(None))
    if f.muted == MutedFilter.exclude:
        stmt = stmt.where(~muted_clause())
    elif f.muted == MutedFilter.only:
        stmt = stmt.where(muted_clause())
    return stmt


_LatestScan = aliased(ScanRun, name="latest_scan")


def join_latest_verdict(stmt, latest: Sequence[uuid.UUID], *, outer: bool = True):
    """Join each finding to what the latest scan of its own account said of it (`latest`: from latest_scan_ids).
    By the finding's account, not any latest scan: a finding that moved to a reconnected account's new connection
    also has verdicts from the old connection's scans, and must still come out as one row."""
    join = stmt.outerjoin if outer else stmt.join
    stmt = join(_LatestScan, and_(_LatestScan.aws_account_id == Finding.aws_account_id,
                                  _LatestScan.id.in_(list(latest))))
    join = stmt.outerjoin if outer else stmt.join
    return join(ScanFinding, and_(ScanFinding.finding_id == Finding.id, ScanFinding.scan_id == _LatestScan.id))


async def list_findings(session: AsyncSession, ws: uuid.UUID, f: FindingFilter, params: PageParams,
                        sort: FindingSort = FindingSort.severity, order: SortOrder = SortOrder.desc,
                        ) -> tuple[list[tuple[Finding, FindingDelta | None]], str | None]:
    """A keyset page of findings with each one's delta in its account's latest scan."""
    latest = await latest_scan_ids(session, ws, f.account_ids)
    stmt = join_latest_verdict(_apply_filter(scoped(Finding, ws), f), latest).add_columns(ScanFinding.delta)
    if f.deltas:
        stmt = stmt.where(ScanFinding.delta.in_(f.deltas))
    key = _sort_key(sort)
    descending = order == SortOrder.desc
    if params.cursor:
        after_key, after_id = decode_sort_cursor(params.cursor, sort.value, order.value)
        if descending:
            stmt = stmt.where(or_(key < after_key, and_(key == after_key, Finding.id < after_id)))
        else:
            stmt = stmt.where(or_(key > after_key, and_(key == after_key, Finding.id > after_id)))
    stmt = stmt.order_by(*((key.desc(), Finding.id.desc()) if descending else (key.asc(), Finding.id.asc())))
    rows = [tuple(r) for r in (await session.execute(stmt.limit(params.limit + 1))).all()]
    next_cursor = None
    if len(rows) > params.limit:
        rows = rows[:params.limit]
        last = rows[-1][0]
        next_cursor = encode_sort_cursor(sort.value, order.value, _key_of(last, sort), last.id)
    return rows, next_cursor


async def get_or_404(session: AsyncSession, ws: uuid.UUID, finding_id: uuid.UUID) -> Finding:
    return await get_scoped_or_404(session, Finding, ws, finding_id, what="Finding")


@dataclass
class FindingDetail:
    finding: Finding
    last_delta: FindingDelta | None
    history: list[FindingEvent]
    history_total: int
    check: CatalogEntry | None


async def get_detail(session: AsyncSession, ws: uuid.UUID, finding_id: uuid.UUID) -> FindingDetail:
    finding = await get_or_404(session, ws, finding_id)
    events = scoped(FindingEvent, ws).where(FindingEvent.finding_id == finding.id)
    history = list((await session.scalars(
        events.order_by(FindingEvent.at.desc(), FindingEvent.id.desc()).limit(HISTORY_LIMIT))).all())
    total = len(history)
    if total == HISTORY_LIMIT:
        total = await session.scalar(events.with_only_columns(func.count()))
    latest = await latest_scan_ids(session, ws, [finding.aws_account_id])
    delta = None
    if latest:
        delta = await session.scalar(scoped(ScanFinding, ws).with_only_columns(ScanFinding.delta).where(
            ScanFinding.scan_id == latest[0], ScanFinding.finding_id == finding.id))
    return FindingDetail(finding=finding, last_delta=delta, history=history, history_total=total,
                         check=catalog().get(finding.check_id) if finding.source == SOURCE else None)


async def scan_with_results_or_404(session: AsyncSession, ws: uuid.UUID, account_id: uuid.UUID,
                                   scan_id: uuid.UUID) -> ScanRun:
    """The scan of that account in the workspace (404 otherwise), whose per-finding results are still kept (410
    once retention removed them)."""
    scan = await get_scoped_or_404(session, ScanRun, ws, scan_id, what="Scan")
    if scan.aws_account_id != account_id:
        raise NotFound("Scan not found.")
    if scan.results_purged_at is not None:
        raise Gone("This scan's per-finding results were removed under the retention policy "
                   "(CW_SCAN_RESULTS_RETENTION_DAYS); its counts and deltas remain on the scan.")
    return scan


async def list_scan_findings(session: AsyncSession, ws: uuid.UUID, account_id: uuid.UUID, scan_id: uuid.UUID,
                             params: PageParams, *, deltas: list[FindingDelta] | None = None,
                             statuses: list[str] | None = None, severities: list[str] | None = None,
                             ) -> tuple[list[tuple[ScanFinding, Finding]], str | None]:
    """What one scan said about each finding it produced or resolved, in finding-id order."""
    scan = await scan_with_results_or_404(session, ws, account_id, scan_id)
    stmt = (scoped(ScanFinding, ws).where(ScanFinding.scan_id == scan.id)
            .join(Finding, Finding.id == ScanFinding.finding_id).add_columns(Finding))
    if deltas:
        stmt = stmt.where(ScanFinding.delta.in_(deltas))
    if statuses:
        stmt = stmt.where(ScanFinding.status.in_(statuses))
    if severities:
        stmt = stmt.where(Finding.severity.in_(severities))
    if params.cursor:
        stmt = stmt.where(ScanFinding.finding_id > decode_id_cursor(params.cursor))
    rows = [tuple(r) for r in (await session.execute(
        stmt.order_by(ScanFinding.finding_id).limit(params.limit + 1))).all()]
    next_cursor = None
    if len(rows) > params.limit:
        rows = rows[:params.limit]
        next_cursor = encode_id_cursor(rows[-1][0].finding_id)
    return rows, next_cursor


@dataclass
class Bucket:
    key: str
    label: str | None = None
    passed: int = 0
    failed: int = 0
    errored: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored

    def add(self, status: str, n: int) -> None:
        if status == "PASS":
            self.passed += n
        elif status == "FAIL":
            self.failed += n
        else:
            self.errored += n


@dataclass
class Summary:
    totals: Bucket
    resolved: int
    muted: int
    by_severity: list[Bucket]
    by_category: list[Bucket]
    by_account: list[Bucket]
    trend: list[ScanRun]


async def summary(session: AsyncSession, ws: uuid.UUID, account_id: uuid.UUID | None = None,
                  trend_scans: int = 10) -> Summary:
    """Open, unmuted findings counted by status, severity, category and account; the resolved and muted ones
    counted apart; and the last scans' counts and deltas."""
    base = scoped(Finding, ws)
    if account_id is not None:
        base = base.where(Finding.aws_account_id == account_id)
    now = datetime.now(UTC)
    muted = await session.scalar(base.where(Finding.resolved_at.is_(None), muted_clause(now))
                                 .with_only_columns(func.count()))
    groups = (await session.execute(
        base.where(Finding.resolved_at.is_(None), ~muted_clause(now))
        .with_only_columns(Finding.severity, Finding.category, Finding.aws_account_id, Finding.status,
                           func.count())
        .group_by(Finding.severity, Finding.category, Finding.aws_account_id, Finding.status))).all()
    resolved = await session.scalar(base.where(Finding.resolved_at.is_not(None)).with_only_columns(func.count()))
    totals = Bucket(key="all")
    severities = {s.value: Bucket(key=s.value) for s in sorted(Severity, key=lambda s: -s.rank)}
    categories: dict[str, Bucket] = {}
    accounts: dict[uuid.UUID, Bucket] = {}
    for severity, category, account, status, n in groups:
        totals.add(status, n)
        severities.setdefault(severity, Bucket(key=severity)).add(status, n)
        categories.setdefault(category, Bucket(key=category)).add(status, n)
        accounts.setdefault(account, Bucket(key=str(account))).add(status, n)
    if accounts:
        names = dict((await session.execute(scoped(AwsAccount, ws).with_only_columns(AwsAccount.id, AwsAccount.name)
                                            .where(AwsAccount.id.in_(list(accounts))))).tuples().all())
        for account, bucket in accounts.items():
            bucket.label = names.get(account)
    scans = scoped(ScanRun, ws).where(ScanRun.status.in_(FINISHED))
    if account_id is not None:
        scans = scans.where(ScanRun.aws_account_id == account_id)
    trend = list((await session.scalars(scans.order_by(ScanRun.id.desc()).limit(trend_scans))).all())
    trend.reverse()
    return Summary(totals=totals, resolved=resolved or 0, muted=muted or 0, by_severity=list(severities.values()),
                   by_category=sorted(categories.values(), key=lambda b: b.key),
                   by_account=sorted(accounts.values(), key=lambda b: (-b.failed, b.label or "", b.key)),
                   trend=trend)
