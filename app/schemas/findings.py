"""Finding schemas: findings with their lifecycle, their history, a scan's verdicts, and workspace summaries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from app.models import FindingDelta, ScanStatus
from app.pagination import Page
from app.schemas.base import ResponseModel
from app.schemas.checks import CheckRead

FindingStatus = Literal["PASS", "FAIL", "ERROR"]

DELTA_HELP = ("What a scan said about the finding: `new` (first seen), `unchanged`, `changed` (status changed "
              "between PASS, FAIL and ERROR), `resolved` (no longer produced by a scan that covered its check and "
              "region without errors: the resource is gone or the check no longer applies), `reopened` (produced "
              "again after being resolved).")


class FindingRead(ResponseModel):
    id: uuid.UUID
    aws_account_id: uuid.UUID
    uid: str = Field(description="Stable across scans: for a check, the same account, region, check and resource; "
                                 "for an ingested finding, the same source, account, region and source id.")
    source: str = Field(examples=["cloudwizard"])
    source_id: str | None = Field(description="The source's own id (GuardDuty finding id, Security Hub finding "
                                              "Id); null for CloudWizard's checks.")
    check_id: str
    title: str
    service: str
    category: str
    severity: str
    status: FindingStatus = Field(description="The latest status; a resolved finding keeps the one it had.")
    region: str = Field(description="An AWS region, or `global` for account-wide resources.")
    resource_type: str
    resource_id: str
    resource_arn: str | None
    message: str
    compliance: dict[str, list[str]]
    details: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime = Field(description="When a scan last produced it.")
    status_changed_at: datetime = Field(description="When its status last changed, or it was resolved or reopened.")
    resolved_at: datetime | None
    last_scan_id: uuid.UUID | None = Field(description="The last scan that produced it.")
    resource_tags: dict[str, str] = Field(description="The resource's tags when it was last seen.")
    mute_rule_id: uuid.UUID | None = Field(description="The mute rule that covers it, if any.")
    muted_until: datetime | None = Field(description="When that rule expires; null if it does not.")
    muted: bool = Field(default=False, description="Covered by a mute rule that has not expired: accepted risk, "
                                                   "left out of lists and counts unless asked for.")
    last_delta: FindingDelta | None = Field(
        default=None, description="Its delta in its account's latest scan; null if that scan did not cover it. "
                                  + DELTA_HELP)

    @computed_field(description="`resolved` once a scan no longer produces it; `open` otherwise.")
    @property
    def state(self) -> Literal["open", "resolved"]:
        return "resolved" if self.resolved_at is not None else "open"


class FindingPage(Page[FindingRead]):
    """A page of findings in the requested order."""


class FindingEventRead(ResponseModel):
    id: uuid.UUID
    scan_id: uuid.UUID | None = Field(description="The scan that observed the transition.")
    delta: FindingDelta = Field(description=DELTA_HELP)
    from_status: FindingStatus | None = Field(description="Null for a new finding.")
    to_status: FindingStatus | None = Field(description="Null when resolved.")
    at: datetime


class FindingDetail(FindingRead):
    history: list[FindingEventRead] = Field(
        description="Status transitions, newest first (the latest 100); `unchanged` scans are not listed.")
    history_total: int = Field(description="How many transitions there are in all.")
    check: CheckRead | None = Field(description="The check's metadata, with its remediation; null for findings "
                                                "from other sources.")


class ScanFindingRead(BaseModel):
    delta: FindingDelta = Field(description=DELTA_HELP)
    status: FindingStatus | None = Field(description="The status this scan gave it; null when it resolved it.")
    previous_status: FindingStatus | None = Field(description="The status before this scan; null when new.")
    finding: FindingRead = Field(description="The finding as it is now.")


class ScanFindingPage(Page[ScanFindingRead]):
    """A page of one scan's verdicts, in finding order."""


class CountBucket(BaseModel):
    key: str = Field(description="The severity, category or account id counted.")
    label: str | None = Field(default=None, description="The account's name (by_account only).")
    total: int
    passed: int
    failed: int
    errored: int


class DeltaCounts(BaseModel):
    new: int = 0
    changed: int = 0
    resolved: int = 0
    reopened: int = 0
    unchanged: int = 0


class TrendPoint(BaseModel):
    scan_id: uuid.UUID
    aws_account_id: uuid.UUID
    status: ScanStatus
    finished_at: datetime | None
    total: int
    passed: int
    failed: int
    errored: int
    deltas: DeltaCounts

    @classmethod
    def of_scan(cls, scan: Any) -> TrendPoint:
        """A finished scan's counts and deltas, from its stored summary."""
        summary = scan.summary or {}
        return cls(scan_id=scan.id, aws_account_id=scan.aws_account_id, status=scan.status,
                   finished_at=scan.finished_at, total=summary.get("total", 0), passed=summary.get("passed", 0),
                   failed=summary.get("failed", 0), errored=summary.get("errored", 0),
                   deltas=DeltaCounts(**(summary.get("deltas") or {})))


class FindingSummary(BaseModel):
    open: CountBucket = Field(description="Open, unmuted findings by status.")
    resolved: int = Field(description="Findings resolved and not reopened.")
    muted: int = Field(default=0, description="Open findings covered by a live mute rule (not counted above).")
    by_severity: list[CountBucket] = Field(description="Open findings per severity, critical first.")
    by_category: list[CountBucket] = Field(description="Open findings per category.")
    by_account: list[CountBucket] = Field(description="Open findings per AWS account, most failures first.")
    trend: list[TrendPoint] = Field(description="The latest scans that wrote results, oldest first: their counts "
                                                "and deltas.")
