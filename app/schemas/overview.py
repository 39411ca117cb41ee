"""The organization view: one posture row per AWS account."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.models import AccountStatus, ScanStatus
from app.schemas.findings import CountBucket, TrendPoint


class LastScan(BaseModel):
    id: uuid.UUID
    status: ScanStatus
    created_at: datetime
    finished_at: datetime | None
    error: str | None = Field(description="Why it failed, or what made it partial.")


class AccountPostureRead(BaseModel):
    aws_account_id: uuid.UUID = Field(description="The AWS account connection id.")
    name: str
    aws_account_number: str | None = Field(description="The 12-digit AWS account id, once verified.")
    connection_status: AccountStatus
    open: CountBucket = Field(description="Open, unmuted findings by status.")
    failed_by_severity: dict[str, int] = Field(description="Open, unmuted failures per severity, critical first.")
    failed_by_source: dict[str, int] = Field(
        description="Open, unmuted failures per source (`cloudwizard` checks, `securityhub`, `guardduty`).")
    pass_rate: float | None = Field(description="Passed / (passed + failed) of open findings; null before results.")
    muted: int = Field(description="Open findings covered by a live mute rule.")
    resolved: int = Field(description="Findings resolved and not reopened.")
    last_scan: LastScan | None = Field(description="The latest scan, whatever its outcome.")
    last_results: TrendPoint | None = Field(description="The latest scan that wrote results: counts and deltas.")


class AccountPostureList(BaseModel):
    items: list[AccountPostureRead] = Field(description="Every AWS account of the workspace, worst first: most "
                                                        "critical failures, then high, and so on, then by name.")
