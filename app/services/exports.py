"""Exports of findings (a filtered set, or what one scan produced) as JSON, CSV, OCSF, ASFF or an HTML report,
streamed: rows are read in keyset chunks, each from a session of its own, and written as they come.

The request only validates, authorizes and audits; by the time the body is written the request's session is
closed, so the stream opens its own sessions (one per chunk: a slow client holds no connection or transaction)
and scopes every query to the workspace like any other. Counts for the headers and charts come from one
GROUP BY query before the rows. A database error half-way aborts the response (the client sees a broken
transfer, never a short file that parses).

The scan export lists the results the scan produced (its scan_findings rows with a status), with the status
and delta that scan gave and the finding's data as it is now. Findings the scan resolved are not results it
produced: they are counted in the header's `deltas` and listed by `GET .../scans/{scan_id}/findings?delta=resolved`.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.checks.catalog import catalog
from app.db import session_scope
from app.errors import NotFound
from app.models import AwsAccount, Finding, FindingDelta, ScanFinding, ScanRun, Workspace
from app.pagination import PageParams
from app.reports import FINDING_FIELDS, SEVERITIES, finding_dict, iso, meta_dict, scan_summary
from app.reports import html as report_html
from app.reports.asff import asff_finding
from app.reports.formats import epoch_ms, flatten_compliance, ocsf_event, write_csv_rows
from app.schemas.findings import FindingRead, ScanFindingRead
from app.services import findings as findings_service
from app.services.findings import FINISHED, SOURCE, FindingFilter, FindingSort, MutedFilter, SortOrder
from app.services.scoping import get_scoped_or_404, scoped

CHUNK = 1000               # rows per query and per written piece of the body
HTML_MAX_ROWS = 20_000     # a browser table beyond this is not readable; counts and charts still cover all
TREND_SCANS = 12
TOOL = {"name": "cloudwizard", "version": __version__}


class ExportAborted(RuntimeError):
    """The exported set stopped being readable half-way: the response is broken off, never finished short."""


class ExportFormat(enum.StrEnum):
    json = "json"
    csv = "csv"
    ocsf = "ocsf"
    asff = "asff"
    html = "html"


MEDIA_TYPES = {
    ExportFormat.json: "application/json",
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.ocsf: "application/json",
    ExportFormat.asff: "application/json",
    ExportFormat.html: "text/html; charset=utf-8",
}
EXTENSIONS = {ExportFormat.json: "json", ExportFormat.csv: "csv", ExportFormat.ocsf: "ocsf.json",
              ExportFormat.asff: "asff.json", ExportFormat.html: "html"}
# CSV columns: the CLI's FINDING_FIELDS with the finding's id first, then its lifecycle.
_LIFECYCLE = ("account_name", "aws_account_connection_id", "state", "muted", "first_seen_at", "last_seen_at",
              "status_changed_at", "resolved_at")
CSV_COLUMNS = ("id", *FINDING_FIELDS, *_LIFECYCLE, "last_delta")
SCAN_CSV_COLUMNS = ("id", *FINDING_FIELDS, *_LIFECYCLE, "delta", "previous_status")


def finding_read(finding: Finding, delta: FindingDelta | None = None) -> FindingRead:
    """A finding as the API shows it (findings list, detail, exports)."""
    out = FindingRead.model_validate(finding)
    out.last_delta = delta
    out.muted = findings_service.is_muted(finding)
    return out


# --------------------------------------------------------------------------------------------------------------
# What is exported


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    name: str
    number: str
    partition: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.number})" if self.number else self.name


@dataclass
class Item:
    """One exported row: the finding now, with its delta (latest scan's, or the exported scan's) and, for a scan
    export, the status the scan gave it and the one before."""

    finding: Finding
    delta: FindingDelta | None
    status: str
    previous_status: str | None = None


@dataclass
class Counts:
    """The exported set counted (for headers, cards and charts), before any row is written."""

    by_status: Counter[str] = field(default_factory=Counter)
    failed_by_severity: Counter[str] = field(default_factory=Counter)
    severity: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    category: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    account: dict[uuid.UUID, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    region: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    check: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    check_head: dict[str, dict[str, str]] = field(default_factory=dict)
    deltas: Counter[str] = field(default_factory=Counter)
    resolved: int = 0
    muted: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    def add(self, *, severity: str, category: str, account: uuid.UUID, region: str, check_id: str, title: str,
            service: str, status: str, n: int, delta: str | None = None, resolved: int = 0, muted: int = 0) -> None:
        self.by_status[status] += n
        if status == "FAIL":
            self.failed_by_severity[severity] += n
        for bucket, key in ((self.severity, severity), (self.category, category), (self.account, account),
                            (self.region, region), (self.check, check_id)):
            bucket[key][status] += n
        self.check_head.setdefault(check_id, {"title": title, "severity": severity, "service": service})
        if delta:
            self.deltas[delta] += n
        self.resolved += resolved or 0
        self.muted += muted or 0

    def as_json(self) -> dict[str, Any]:
        """As count_findings gives them (the CLI's "counts"), plus resolved and muted."""
        return {"total": self.total, "by_status": {s: self.by_status.get(s, 0) for s in ("PASS", "FAIL", "ERROR")},
                "failed_by_severity": {s: self.failed_by_severity.get(s, 0) for s in SEVERITIES},
                "resolved": self.resolved, "muted": self.muted}


class _Source:
    """What an export reads: a header, counts, trend and rows, each query scoped to the workspace."""

    ws: uuid.UUID
    kind: str          # "export" | "scan": the JSON header's key
    delta_label: str

    async def counts(self, session: AsyncSession) -> Counts:
        raise NotImplementedError

    async def trend(self, session: AsyncSession) -> list[ScanRun]:
        raise NotImplementedError

    def chunks(self, size: int) -> AsyncIterator[list[Item]]:
        raise NotImplementedError

    def header(self, counts: Counts, accounts: dict[uuid.UUID, Account], workspace: Workspace) -> dict[str, Any]:
        raise NotImplementedError


def _filters_json(f: FindingFilter) -> dict[str, Any]:
    """The filters that narrow the set (None and empty ones left out), JSON-ready, for headers and the audit."""
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(f).items():
        if value is None or value == []:
            continue
        if isinstance(value, list):
            value = [str(v) for v in value]
        elif isinstance(value, datetime):
            value = iso(value)
        elif isinstance(value, enum.Enum):
            value = value.value
        out[key] = value
    return out


@dataclass
class FindingsSource(_Source):
    """The workspace's findings under findings_list's filters and order, read page by page with its own query."""

    ws: uuid.UUID
    filters: FindingFilter
    sort: FindingSort = FindingSort.severity
    order: SortOrder = SortOrder.desc
    kind: str = "export"
    delta_label: str = "Delta (latest scan)"

    async def counts(self, session: AsyncSession) -> Counts:
        f = self.filters
        now = datetime.now(UTC)
        stmt = scoped(Finding, self.ws).with_only_columns(
            Finding.severity, Finding.category, Finding.aws_account_id, Finding.region, Finding.check_id,
            Finding.service, Finding.status, func.count(), func.max(Finding.title),
            func.sum(case((Finding.resolved_at.is_not(None), 1), else_=0)),
            func.sum(case((findings_service.muted_clause(now), 1), else_=0)))
        stmt = findings_service._apply_filter(stmt, f)
        if f.deltas:
            latest = await findings_service.latest_scan_ids(session, self.ws, f.account_ids)
            stmt = findings_service.join_latest_verdict(stmt, latest, outer=False).where(
                ScanFinding.delta.in_(f.deltas))
        stmt = stmt.group_by(Finding.severity, Finding.category, Finding.aws_account_id, Finding.region,
                             Finding.check_id, Finding.service, Finding.status)
        out = Counts()
        for severity, category, account, region, check_id, service, status, n, title, resolved, muted in (
                await session.execute(stmt)).all():
            out.add(severity=severity, category=category, account=account, region=region, check_id=check_id,
                    title=title, service=service, status=status, n=n, resolved=resolved, muted=muted)
        return out

    async def trend(self, session: AsyncSession) -> list[ScanRun]:
        stmt = scoped(ScanRun, self.ws).where(ScanRun.status.in_(FINISHED))
        if self.filters.account_ids:
            stmt = stmt.where(ScanRun.aws_account_id.in_(self.filters.account_ids))
        return list(reversed((await session.scalars(stmt.order_by(ScanRun.id.desc()).limit(TREND_SCANS))).all()))

    async def chunks(self, size: int) -> AsyncIterator[list[Item]]:
        cursor: str | None = None
        while True:
            async with session_scope() as session:
                rows, cursor = await findings_service.list_findings(
                    session, self.ws, self.filters, PageParams(limit=size, cursor=cursor), self.sort, self.order)
            if rows:
                yield [Item(finding=f, delta=d, status=f.status) for f, d in rows]
            if cursor is None:
                return

    def header(self, counts: Counts, accounts: dict[uuid.UUID, Account], workspace: Workspace) -> dict[str, Any]:
        return {"generated_at": iso(datetime.now(UTC)), "workspace": {"id": str(workspace.id), "name": workspace.name},
                "filters": _filters_json(self.filters), "sort": self.sort.value, "order": self.order.value,
                "counts": counts.as_json(), "tool": TOOL}


_rank = Finding.severity_rank


@dataclass
class ScanSource(_Source):
    """The results one scan produced: its scan_findings rows with a status, most severe first."""

    ws: uuid.UUID
    scan: ScanRun
    account: AwsAccount
    kind: str = "scan"
    delta_label: str = "Delta (this scan)"

    def _verdicts(self):
        return (scoped(ScanFinding, self.ws).join(Finding, Finding.id == ScanFinding.finding_id)
                .where(ScanFinding.scan_id == self.scan.id, ScanFinding.status.is_not(None),
                       Finding.workspace_id == self.ws))

    async def counts(self, session: AsyncSession) -> Counts:
        stmt = self._verdicts().with_only_columns(
            Finding.severity, Finding.category, Finding.aws_account_id, Finding.region, Finding.check_id,
            Finding.service, ScanFinding.status, ScanFinding.delta, func.count(), func.max(Finding.title)
        ).group_by(Finding.severity, Finding.category, Finding.aws_account_id, Finding.region, Finding.check_id,
                   Finding.service, ScanFinding.status, ScanFinding.delta)
        out = Counts()
        for severity, category, account, region, check_id, service, status, delta, n, title in (
                await session.execute(stmt)).all():
            out.add(severity=severity, category=category, account=account, region=region, check_id=check_id,
                    title=title, service=service, status=status, n=n, delta=delta.value)
        return out

    async def trend(self, session: AsyncSession) -> list[ScanRun]:
        stmt = scoped(ScanRun, self.ws).where(ScanRun.status.in_(FINISHED),
                                              ScanRun.aws_account_id == self.scan.aws_account_id,
                                              ScanRun.id <= self.scan.id)
        return list(reversed((await session.scalars(stmt.order_by(ScanRun.id.desc()).limit(TREND_SCANS))).all()))

    async def chunks(self, size: int) -> AsyncIterator[list[Item]]:
        after: tuple[int, uuid.UUID] | None = None
        while True:
            stmt = self._verdicts().add_columns(Finding, _rank)
            if after is not None:
                rank, last = after
                stmt = stmt.where(or_(_rank < rank, and_(_rank == rank, ScanFinding.finding_id > last)))
            async with session_scope() as session:
                rows = (await session.execute(
                    stmt.order_by(_rank.desc(), ScanFinding.finding_id).limit(size))).all()
                # Retention may remove the results between two chunks: then the transfer breaks rather than end
                # as a short file that parses. Read after the rows, so rows read before a purge are whole.
                purged = await session.scalar(scoped(ScanRun, self.ws).with_only_columns(ScanRun.results_purged_at)
                                              .where(ScanRun.id == self.scan.id))
            if purged is not None:
                raise ExportAborted("the scan's results were removed under the retention policy during the export")
            if not rows:
                return
            yield [Item(finding=f, delta=v.delta, status=v.status, previous_status=v.previous_status)
                   for v, f, _ in rows]
            if len(rows) < size:
                return
            after = (rows[-1][2], rows[-1][0].finding_id)

    def header(self, counts: Counts, accounts: dict[uuid.UUID, Account], workspace: Workspace) -> dict[str, Any]:
        scan, account = self.scan, self.account
        progress = scan.progress or {}
        duration = None
        if scan.started_at and scan.finished_at:
            duration = round((scan.finished_at - scan.started_at).total_seconds(), 3)
        summary = scan_summary({
            "account_id": account.aws_account_id, "partition": account.partition or "aws",
            "regions": scan.regions, "status": scan.status.value, "started_at": scan.started_at,
            "finished_at": scan.finished_at, "duration_seconds": duration, "api_calls": progress.get("api_calls"),
            "throttled": progress.get("throttled"), "errors": scan.collection_errors,
            "collectors_run": progress.get("collectors_total"),
        }, {k: v for k, v in counts.as_json().items() if k not in ("resolved", "muted")})
        return {"id": str(scan.id), "aws_account_connection_id": str(account.id), "account_name": account.name,
                **summary, "deltas": {**findings_service.empty_deltas(), **((scan.summary or {}).get("deltas") or {})},
                "tool": TOOL}


async def scan_source(session: AsyncSession, ws: uuid.UUID, account_id: uuid.UUID, scan_id: uuid.UUID) -> ScanSource:
    """The scan of that account in the workspace (404 otherwise); 410 if retention removed its results."""
    scan = await findings_service.scan_with_results_or_404(session, ws, account_id, scan_id)
    account = await get_scoped_or_404(session, AwsAccount, ws, account_id, what="AWS account")
    return ScanSource(ws=ws, scan=scan, account=account)


def describe_filters(f: FindingFilter) -> dict[str, Any]:
    """The filters that narrow the set, JSON-ready (for the audit trail)."""
    return _filters_json(f)


# --------------------------------------------------------------------------------------------------------------
# Writing


class _Rows:
    """Shared per-export state: accounts by connection id, check metadata by id (read once each)."""

    def __init__(self, accounts: dict[uuid.UUID, Account]) -> None:
        self.accounts = accounts
        self._meta: dict[str, dict[str, Any]] = {}
        self._catalog = catalog()

    def account(self, finding: Finding) -> Account:
        found = self.accounts.get(finding.aws_account_id)
        return found or Account(id=finding.aws_account_id, name=str(finding.aws_account_id), number="",
                                partition="aws")

    def meta(self, finding: Finding) -> dict[str, Any]:
        if finding.source != SOURCE:
            return {}
        if finding.check_id not in self._meta:
            entry = self._catalog.get(finding.check_id)
            self._meta[finding.check_id] = meta_dict(entry.meta) if entry else {}
        return self._meta[finding.check_id]

    def report_row(self, item: Item) -> dict[str, Any]:
        """FINDING_FIELDS + details, with the status this export reports."""
        row = finding_dict(item.finding)
        row["account_id"] = self.account(item.finding).number
        row["status"] = item.status
        return row


def _csv_lines(rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    write_csv_rows(buffer, rows)
    return buffer.getvalue()


def _csv_row(rows: _Rows, item: Item, columns: tuple[str, ...]) -> list[Any]:
    f = item.finding
    base = rows.report_row(item)
    account = rows.account(f)
    extra = {"id": f.id, "account_name": account.name, "aws_account_connection_id": f.aws_account_id,
             "state": "resolved" if f.resolved_at else "open", "muted": str(findings_service.is_muted(f)).lower(),
             "first_seen_at": iso(f.first_seen_at), "last_seen_at": iso(f.last_seen_at),
             "status_changed_at": iso(f.status_changed_at), "resolved_at": iso(f.resolved_at),
             "last_delta": item.delta.value if item.delta else None, "delta": item.delta.value if item.delta else None,
             "previous_status": item.previous_status,
             "compliance": flatten_compliance(base["compliance"])}
    return [extra[c] if c in extra else base[c] for c in columns]


def _json_item(item: Item, scan: bool) -> str:
    read = finding_read(item.finding, None if scan else item.delta)
    if scan:
        return ScanFindingRead(delta=item.delta, status=item.status, previous_status=item.previous_status,
                               finding=read).model_dump_json()
    return read.model_dump_json()


def _ocsf_item(rows: _Rows, item: Item, source: _Source) -> str:
    f = item.finding
    account = rows.account(f)
    muted = findings_service.is_muted(f)
    unmapped: dict[str, Any] = {"finding_id": str(f.id), "aws_account_connection_id": str(f.aws_account_id),
                                "account_name": account.name, "muted": muted}
    if isinstance(source, ScanSource):
        unmapped.update(scan_id=str(source.scan.id), delta=item.delta.value if item.delta else None)
        observed = source.scan.finished_at or f.last_seen_at
        state = "muted" if muted else None
    else:
        unmapped["last_delta"] = item.delta.value if item.delta else None
        observed = f.last_seen_at
        state = "resolved" if f.resolved_at else "muted" if muted else None
    event = ocsf_event(rows.report_row(item), rows.meta(f), partition=account.partition, tool=TOOL,
                       time_ms=epoch_ms(observed), first_seen_ms=epoch_ms(f.first_seen_at), state=state,
                       unmapped=unmapped)
    return json.dumps(event, ensure_ascii=False, default=str)


def _asff_item(rows: _Rows, item: Item, source: _Source) -> str:
    f = item.finding
    account = rows.account(f)
    fields = {"ProviderVersion": __version__, "cloudwizard/finding_id": str(f.id),
              "cloudwizard/aws_account_connection_id": str(f.aws_account_id),
              "cloudwizard/delta": item.delta.value if item.delta else None}
    if isinstance(source, ScanSource):
        fields["cloudwizard/scan_id"] = str(source.scan.id)
        observed = source.scan.finished_at or f.last_seen_at
        updated, resolved = observed, False
    else:
        observed = f.last_seen_at
        updated, resolved = max(_utc(f.last_seen_at), _utc(f.status_changed_at)), f.resolved_at is not None
    out = asff_finding(rows.report_row(item), rows.meta(f), partition=account.partition,
                       created_at=iso(f.first_seen_at), updated_at=iso(updated), last_observed_at=iso(observed),
                       resolved=resolved, muted=findings_service.is_muted(f), resource_tags=f.resource_tags,
                       product_fields=fields)
    return json.dumps(out, ensure_ascii=False)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _html_row(rows: _Rows, item: Item) -> str:
    f = item.finding
    return report_html.export_row({
        "severity": f.severity, "status": item.status, "title": f.title, "check_id": f.check_id,
        "account": rows.account(f).label, "region": f.region, "resource_id": f.resource_id,
        "resource_arn": f.resource_arn, "message": f.message, "delta": item.delta.value if item.delta else "",
        "last_seen": (iso(f.last_seen_at) or "")[:16].replace("T", " "),
        "resolved": f.resolved_at is not None, "muted": findings_service.is_muted(f),
    })


# --------------------------------------------------------------------------------------------------------------
# HTML: header, cards and charts from the counts


def _stacked(buckets: dict[Any, Counter[str]], label: Callable[[Any], str] = str) -> list[tuple[str, dict[str, int]]]:
    return sorted(((label(k), dict(v)) for k, v in buckets.items()),
                  key=lambda kv: (-kv[1].get("FAIL", 0), -sum(kv[1].values()), kv[0]))


def _trend_points(scans: list[ScanRun], accounts: dict[uuid.UUID, Account]) -> list[tuple[Any, ...]]:
    points = []
    for scan in scans:
        s = scan.summary or {}
        when = iso(scan.finished_at or scan.created_at) or ""
        account = accounts.get(scan.aws_account_id)
        points.append((when[:16].replace("T", " "), account.label if account else str(scan.aws_account_id),
                       {"PASS": s.get("passed", 0), "FAIL": s.get("failed", 0), "ERROR": s.get("errored", 0)},
                       s.get("deltas") or {}))
    return points


def _describe(f: FindingFilter, accounts: dict[uuid.UUID, Account]) -> str:
    names = {"account_ids": "account", "regions": "region", "services": "service", "categories": "category",
             "check_ids": "check", "severities": "severity", "statuses": "status", "sources": "source",
             "deltas": "delta", "resource": "resource contains", "first_seen_since": "first seen since",
             "first_seen_until": "first seen before", "last_seen_since": "last seen since",
             "last_seen_until": "last seen before"}
    parts = []
    for key, value in _filters_json(f).items():
        if key not in names:
            continue
        if key == "account_ids":
            value = [accounts[uuid.UUID(v)].label if uuid.UUID(v) in accounts else v for v in value]
        parts.append(f"{names[key]}: {', '.join(value) if isinstance(value, list) else value}")
    parts.append(("open and resolved" if f.include_resolved else "open") + " findings, muted ones "
                 + {MutedFilter.exclude: "left out", MutedFilter.include: "included",
                    MutedFilter.only: "only"}[f.muted])
    return "Filters — " + " · ".join(parts)


def _html_start(source: _Source, counts: Counts, accounts: dict[uuid.UUID, Account], workspace: Workspace,
                trend: list[ScanRun], shown: int, rows: _Rows) -> str:
    by_status = counts.by_status
    evaluated = by_status["PASS"] + by_status["FAIL"]
    rate = f"{100 * by_status['PASS'] / evaluated:.0f}%" if evaluated else "–"
    failed = counts.failed_by_severity
    cards: list[tuple[Any, str, str | None]] = [
        (rate, "pass rate", None),
        (f"{by_status['FAIL']:,}", "failed", report_html.STATUS_COLOURS["FAIL"]),
        (f"{failed['critical'] + failed['high']:,}", "critical + high failed",
         report_html.SEVERITY_COLOURS["critical"]),
        (f"{by_status['PASS']:,}", "passed", report_html.STATUS_COLOURS["PASS"]),
        (f"{by_status['ERROR']:,}", "not evaluated (error)", report_html.STATUS_COLOURS["ERROR"]),
    ]
    sev_rows = [(s, dict(counts.severity[s])) for s in SEVERITIES if s in counts.severity]
    charts = [("Failed findings by severity", report_html.severity_donut(failed)),
              ("Findings by severity", report_html.stacked_bars(sev_rows, "Findings by severity")),
              ("Findings by category", report_html.stacked_bars(_stacked(counts.category), "Findings by category"))]
    now = iso(datetime.now(UTC)) or ""
    if isinstance(source, ScanSource):
        scan, account = source.scan, source.account
        label = accounts[account.id].label if account.id in accounts else account.name
        heading = f"CloudWizard scan report — AWS account {label}"
        started = (iso(scan.started_at) or "")[:19].replace("T", " ")
        duration = (f"{(scan.finished_at - scan.started_at).total_seconds():.0f} s"
                    if scan.started_at and scan.finished_at else "–")
        subtitle = (f"Workspace {workspace.name} · partition {account.partition or 'aws'} · scan {scan.status.value} · "
                    f"started {started} UTC · {duration} · regions: {', '.join(sorted(scan.regions or [])) or 'none'}")
        filters = ""
        deltas = {**findings_service.empty_deltas(), **((scan.summary or {}).get("deltas") or {})}
        cards += [(deltas["new"], "new in this scan", None), (deltas["resolved"], "resolved by this scan", None),
                  ((scan.progress or {}).get("api_calls", "–"), "AWS API calls", None)]
        charts.append(("Findings by region", report_html.stacked_bars(_stacked(counts.region), "Findings by region",
                                                                      label_w=180)))
        trend_title = "This account's scans"
    else:
        assert isinstance(source, FindingsSource)
        heading = f"CloudWizard findings — {workspace.name}"
        subtitle = (f"{counts.total:,} findings in {len(counts.account)} account(s) · generated "
                    f"{now[:16].replace('T', ' ')} UTC")
        filters = _describe(source.filters, accounts)
        cards.append((len(counts.account), "accounts", None))
        if source.filters.include_resolved:
            cards.append((f"{counts.resolved:,}", "resolved", None))
        if source.filters.muted != MutedFilter.exclude:
            cards.append((f"{counts.muted:,}", "muted", None))
        charts.append(("Findings by account", report_html.stacked_bars(
            _stacked(counts.account, lambda k: accounts[k].name if k in accounts else str(k)),
            "Findings by account", label_w=180)))
        trend_title = "Trend of the latest scans"
    charts.append((trend_title, report_html.trend_chart(_trend_points(trend, accounts), trend_title)))
    checks = []
    rank = findings_service.SEVERITY_RANK
    for cid in sorted(counts.check, key=lambda c: (-counts.check[c]["FAIL"],
                                                   -rank.get(counts.check_head[c]["severity"], 0), c)):
        entry = rows._catalog.get(cid)
        meta = {**counts.check_head[cid], **(meta_dict(entry.meta) if entry else {})}
        checks.append((cid, meta, dict(counts.check[cid])))
    return report_html.export_page_start(heading=heading, subtitle=subtitle, filters=filters, cards=cards,
                                         charts=charts, checks=report_html.check_table(checks), total=counts.total,
                                         shown=shown, delta_label=source.delta_label,
                                         status="FAIL" if by_status["FAIL"] and len(by_status) > 1 else None)


# --------------------------------------------------------------------------------------------------------------
# The stream


async def _accounts(session: AsyncSession, ws: uuid.UUID) -> dict[uuid.UUID, Account]:
    rows = (await session.execute(scoped(AwsAccount, ws).with_only_columns(
        AwsAccount.id, AwsAccount.name, AwsAccount.aws_account_id, AwsAccount.partition))).all()
    return {i: Account(id=i, name=name, number=number or "", partition=partition or "aws")
            for i, name, number, partition in rows}


async def stream(source: _Source, fmt: ExportFormat, *, chunk: int | None = None,
                 html_max_rows: int | None = None) -> AsyncIterator[bytes]:
    """The export's body, piece by piece: the head, one piece per chunk of rows, the tail."""
    chunk = chunk or CHUNK
    html_max_rows = HTML_MAX_ROWS if html_max_rows is None else html_max_rows
    async with session_scope() as session:
        workspace = await session.get(Workspace, source.ws)
        if workspace is None:
            raise NotFound("Workspace not found.")
        accounts = await _accounts(session, source.ws)
        counts = await source.counts(session) if fmt in (ExportFormat.json, ExportFormat.html) else Counts()
        trend = await source.trend(session) if fmt == ExportFormat.html else []
    rows = _Rows(accounts)
    scan = isinstance(source, ScanSource)
    if fmt == ExportFormat.json:
        head = json.dumps({source.kind: source.header(counts, accounts, workspace)}, ensure_ascii=False)
        yield (head[:-1] + ', "findings": [').encode()
    elif fmt == ExportFormat.csv:
        yield _csv_lines([list(SCAN_CSV_COLUMNS if scan else CSV_COLUMNS)]).encode()
    elif fmt == ExportFormat.ocsf:
        yield b"["
    elif fmt == ExportFormat.asff:
        yield b'{"Findings": ['
    else:
        shown = min(counts.total, html_max_rows)
        yield _html_start(source, counts, accounts, workspace, trend, shown, rows).encode()

    written = 0
    async for items in source.chunks(chunk):
        if fmt == ExportFormat.csv:
            columns = SCAN_CSV_COLUMNS if scan else CSV_COLUMNS
            piece = _csv_lines([_csv_row(rows, i, columns) for i in items])
        elif fmt == ExportFormat.html:
            items = items[:max(html_max_rows - written, 0)]
            if not items:
                break
            piece = "".join(_html_row(rows, i) for i in items)
        else:
            if fmt == ExportFormat.json:
                parts = [_json_item(i, scan) for i in items]
            elif fmt == ExportFormat.ocsf:
                parts = [_ocsf_item(rows, i, source) for i in items]
            else:
                parts = [_asff_item(rows, i, source) for i in items]
            piece = ("\n" if written == 0 else ",\n") + ",\n".join(parts)
        written += len(items)
        yield piece.encode()

    if fmt == ExportFormat.json:
        yield b"\n]}\n"
    elif fmt == ExportFormat.ocsf:
        yield b"\n]\n"
    elif fmt == ExportFormat.asff:
        yield b"\n]}\n"
    elif fmt == ExportFormat.html:
        footer = (f"Generated by cloudwizard {__version__} at {iso(datetime.now(UTC))}. This file makes no network "
                  "requests.")
        yield report_html.export_page_end(shown=written, total=max(counts.total, written), footer=footer).encode()


def filename(source: _Source, fmt: ExportFormat) -> str:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    if isinstance(source, ScanSource):
        return f"cloudwizard-scan-{source.account.aws_account_id or 'account'}-{day}-{source.scan.id}.{EXTENSIONS[fmt]}"
    return f"cloudwizard-findings-{day}.{EXTENSIONS[fmt]}"

