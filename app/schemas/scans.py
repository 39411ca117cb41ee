"""Scan run schemas."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.models import ScanStatus
from app.pagination import Page
from app.schemas.base import ResponseModel


class ScanProgress(BaseModel):
    regions_total: int = 0
    regions_done: int = 0
    services_total: int = 0
    services_done: int = 0
    collectors_total: int = 0
    collectors_done: int = 0
    api_calls: int = 0
    throttled: int = Field(default=0, description="AWS calls answered with a throttling error (then retried).")
    errors: int = Field(default=0, description="AWS calls that failed for good; their checks report ERROR.")


class ScanDeltas(BaseModel):
    new: int = Field(default=0, description="Findings this scan produced for the first time.")
    changed: int = Field(default=0, description="Findings whose status (PASS, FAIL, ERROR) changed.")
    resolved: int = Field(default=0, description="Findings no longer produced where the scan looked without errors.")
    reopened: int = Field(default=0, description="Resolved findings produced again.")
    unchanged: int = Field(default=0, description="Findings produced again with the same status.")


class ScanSummary(BaseModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    failed_by_severity: dict[str, int] = Field(default_factory=dict)
    deltas: ScanDeltas = Field(default_factory=ScanDeltas,
                               description="How this scan changed the account's findings; zeros before it ends.")


class CollectionErrorRead(BaseModel):
    service: str
    action: str
    region: str
    resource_id: str | None = None
    code: str
    message: str


class ScanRead(ResponseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    aws_account_id: uuid.UUID
    status: ScanStatus
    trigger: str
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    attempts: int
    error: str | None = Field(description="Why the scan failed, or what made it partial.")
    regions: list[str]
    progress: ScanProgress
    summary: ScanSummary
    results_purged_at: datetime | None = Field(
        default=None, description="When retention removed its per-finding results; its counts stay in `summary`.")
    collection_errors: list[CollectionErrorRead] = Field(
        description="AWS calls that failed (first 200); checks that depended on them report ERROR.")


class ScanPage(Page[ScanRead]):
    """A page of scans, newest first."""
