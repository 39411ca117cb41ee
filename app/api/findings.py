"""Findings of a workspace: filtered and sorted lists, summaries with trends, detail with history, and what one
scan said about each finding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from app.api.deps import SessionDep, WorkspaceViewer
from app.api.exports import FORMATS_HELP, FormatQuery, export_response, export_responses, record_export
from app.checks.base import Severity
from app.errors import error_responses
from app.models import Finding, FindingDelta
from app.pagination import PageParams, page_params
from app.schemas.exports import FindingsExportDocument
from app.schemas.findings import (
    CountBucket,
    FindingDetail,
    FindingEventRead,
    FindingPage,
    FindingRead,
    FindingStatus,
    FindingSummary,
    ScanFindingPage,
    ScanFindingRead,
    TrendPoint,
)
from app.services import exports as exports_service
from app.services import findings as service
from app.services.catalog import check_read
from app.services.exports import ExportFormat
from app.services.findings import FindingFilter, FindingSort, MutedFilter, SortOrder

# Tags per route: the export of a filtered set lives here (before `/findings/{finding_id}`) under "exports".
router = APIRouter(prefix="/workspaces/{workspace_id}")
FINDINGS = ["findings"]

FindingIdPath = Annotated[uuid.UUID, Path(description="Finding id.")]
AccountIdPath = Annotated[uuid.UUID, Path(description="AWS account connection id.")]
ScanIdPath = Annotated[uuid.UUID, Path(description="Scan id.")]
MAX_VALUES = 50  # values of one repeated filter
# Control characters never occur in what is filtered, and PostgreSQL refuses NUL in text outright.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=PRINTABLE)]


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
        raise ValueError("Date out of range.") from exc


Moment = Annotated[AwareDatetime, AfterValidator(_utc)]


def _many(description: str, alias: str | None = None):
    return Query(alias=alias, max_length=MAX_VALUES,
                 description=f"{description} Repeat the parameter to match any of several.")


def _read(finding: Finding, delta: FindingDelta | None = None) -> FindingRead:
    return exports_service.finding_read(finding, delta)


def _bucket(b: service.Bucket) -> CountBucket:
    return CountBucket(key=b.key, label=b.label, total=b.total, passed=b.passed, failed=b.failed, errored=b.errored)


def finding_filter(
    account_id: Annotated[list[uuid.UUID] | None, _many("AWS account connection id.")] = None,
    region: Annotated[list[Text] | None, _many("Region, or `global`.")] = None,
    service_name: Annotated[list[Text] | None, _many("Service label, e.g. `s3`.", "service")] = None,
    category: Annotated[list[Text] | None, _many("Category, e.g. `exposure`.")] = None,
    check_id: Annotated[list[Text] | None, _many("Check id.")] = None,
    severity: Annotated[list[Severity] | None, _many("Severity.")] = None,
    status: Annotated[list[FindingStatus] | None, _many("Status.")] = None,
    source: Annotated[list[Text] | None, _many("Source, e.g. `cloudwizard`.")] = None,
    delta: Annotated[list[FindingDelta] | None, _many("Delta in the account's latest scan.")] = None,
    resource: Annotated[str | None, Query(min_length=1, max_length=512, pattern=PRINTABLE,
                                          description="Substring of the resource id or ARN (any case).")] = None,
    first_seen_since: Annotated[Moment | None, Query(description="First seen at or after.")] = None,
    first_seen_until: Annotated[Moment | None, Query(description="First seen before.")] = None,
    last_seen_since: Annotated[Moment | None, Query(description="Last seen at or after.")] = None,
    last_seen_until: Annotated[Moment | None, Query(description="Last seen before.")] = None,
    include_resolved: Annotated[bool, Query(description="Include resolved findings.")] = False,
    muted: Annotated[MutedFilter, Query(description="Muted findings: left out (`exclude`), listed with the rest "
                                                    "(`include`), or listed alone (`only`).")] = MutedFilter.exclude,
) -> FindingFilter:
    """findings_list's filters, shared with the export of a filtered set so both select exactly the same."""
    return FindingFilter(
        account_ids=account_id, regions=region, services=service_name, categories=category, check_ids=check_id,
        severities=[s.value for s in severity] if severity else None, statuses=status, sources=source,
        deltas=delta, resource=resource, first_seen_since=first_seen_since, first_seen_until=first_seen_until,
        last_seen_since=last_seen_since, last_seen_until=last_seen_until, include_resolved=include_resolved,
        muted=muted)


@dataclass(frozen=True, slots=True)
class FindingOrder:
    sort: FindingSort
    order: SortOrder


def finding_order(
    sort: Annotated[FindingSort, Query(description="Sort key; ties are broken by id.")] = FindingSort.severity,
    order: Annotated[SortOrder, Query(description="Sort direction.")] = SortOrder.desc,
) -> FindingOrder:
    return FindingOrder(sort, order)


FilterDep = Annotated[FindingFilter, Depends(finding_filter)]
OrderDep = Annotated[FindingOrder, Depends(finding_order)]


@router.get("/findings", tags=FINDINGS, name="findings_list", response_model=FindingPage, summary="List findings",
            description="The workspace's findings (every account: the organization view), open and unmuted ones "
                        "unless `include_resolved=true` or `muted=include|only`. Filters combine with AND; a "
                        "repeated filter matches any of its values. `delta` matches the finding's delta in its "
                        "account's latest scan. Sorted by severity (then id), `last_seen` or `first_seen`, newest "
                        "or highest first unless `order=asc`; the cursor carries the sort, so pages stay exact "
                        "under any order.",
            responses=error_responses(401, 404, 422))
async def findings_list(ctx: WorkspaceViewer, session: SessionDep, params: Annotated[PageParams, Depends(page_params)],
                        filters: FilterDep, ordering: OrderDep):
    rows, cursor = await service.list_findings(session, ctx.id, filters, params, ordering.sort, ordering.order)
    return FindingPage(items=[_read(f, d) for f, d in rows], next_cursor=cursor)


@router.get("/findings/summary", tags=FINDINGS, name="findings_summary", response_model=FindingSummary,
            summary="Summarize findings",
            description="Open, unmuted findings counted by status, severity, category and account, the numbers "
                        "resolved and muted, and "
                        "the trend of the latest scans (pass/fail/error and deltas). For the whole workspace, or "
                        "one account with `account_id`.",
            responses=error_responses(401, 404, 422))
async def findings_summary(
    ctx: WorkspaceViewer, session: SessionDep,
    account_id: Annotated[uuid.UUID | None, Query(description="Only this AWS account connection.")] = None,
    scans: Annotated[int, Query(ge=1, le=100, description="How many scans the trend covers.")] = 10,
):
    s = await service.summary(session, ctx.id, account_id, scans)
    return FindingSummary(open=_bucket(s.totals), resolved=s.resolved, muted=s.muted,
                          by_severity=[_bucket(b) for b in s.by_severity],
                          by_category=[_bucket(b) for b in s.by_category],
                          by_account=[_bucket(b) for b in s.by_account],
                          trend=[TrendPoint.of_scan(scan) for scan in s.trend])


@router.get("/findings/export", name="exports_findings", tags=["exports"], response_model=None,
            summary="Export findings",
            description="The whole filtered set (no pages) under the same filters and order as `GET /findings`: open "
                        "and unmuted findings unless `include_resolved=true` or `muted=include|only`. The JSON "
                        "`findings` are exactly the list's items; the HTML report adds cards and charts by severity, "
                        "category and account, and the trend of the latest scans." + FORMATS_HELP,
            responses=export_responses(FindingsExportDocument))
async def exports_findings(ctx: WorkspaceViewer, session: SessionDep, filters: FilterDep, ordering: OrderDep,
                           fmt: FormatQuery = ExportFormat.json):
    source = exports_service.FindingsSource(ws=ctx.id, filters=filters, sort=ordering.sort, order=ordering.order)
    await record_export(session, ctx, fmt, target_type="workspace", target_id=ctx.id,
                        details={"filters": exports_service.describe_filters(filters), "sort": ordering.sort.value,
                                 "order": ordering.order.value})
    return export_response(source, fmt)


@router.get("/findings/{finding_id}", tags=FINDINGS, name="findings_get", response_model=FindingDetail,
            summary="Get a finding",
            description="The finding, its history of transitions, and the check's metadata with its remediation.",
            responses=error_responses(401, 404, 422))
async def findings_get(finding_id: FindingIdPath, ctx: WorkspaceViewer, session: SessionDep):
    d = await service.get_detail(session, ctx.id, finding_id)
    return FindingDetail(**_read(d.finding, d.last_delta).model_dump(exclude={"state"}),
                         history=[FindingEventRead.model_validate(e) for e in d.history],
                         history_total=d.history_total, check=check_read(d.check) if d.check else None)


@router.get("/aws-accounts/{account_id}/scans/{scan_id}/findings", tags=FINDINGS, name="findings_list_for_scan",
            response_model=ScanFindingPage, summary="List a scan's results",
            description="What the scan said about each finding it produced or resolved, with its delta and the "
                        "status before, in finding order. Filter by `delta`, `status` (a resolved verdict has no "
                        "status) or `severity`. A scan whose results retention removed answers 410.",
            responses=error_responses(401, 404, 410, 422))
async def findings_list_for_scan(
    account_id: AccountIdPath, scan_id: ScanIdPath, ctx: WorkspaceViewer, session: SessionDep,
    params: Annotated[PageParams, Depends(page_params)],
    delta: Annotated[list[FindingDelta] | None, _many("Delta.")] = None,
    status: Annotated[list[FindingStatus] | None, _many("Status in this scan.")] = None,
    severity: Annotated[list[Severity] | None, _many("Severity.")] = None,
):
    rows, cursor = await service.list_scan_findings(
        session, ctx.id, account_id, scan_id, params, deltas=delta, statuses=status,
        severities=[s.value for s in severity] if severity else None)
    return ScanFindingPage(items=[ScanFindingRead(delta=v.delta, status=v.status, previous_status=v.previous_status,
                                                  finding=_read(f)) for v, f in rows], next_cursor=cursor)
