"""Scan runs and the normalized findings they write."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, utcnow


class ScanStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"    # every collector ran; results are complete
    partial = "partial"        # some calls failed (e.g. AccessDenied on one service); their checks say ERROR
    failed = "failed"          # no usable result (role revoked, time limit, crash after retries)
    cancelled = "cancelled"

    @property
    def active(self) -> bool:
        return self in (ScanStatus.queued, ScanStatus.running)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, native_enum=False, create_constraint=True, length=16, name=name,
                values_callable=lambda e: [m.value for m in e])


class ScanRun(IdMixin, Base):
    __tablename__ = "scan_runs"
    __table_args__ = (
        # One active scan per account: a second request gets the active one.
        Index("uq_scan_runs_active_account", "aws_account_id", unique=True,
              postgresql_where=text("status IN ('queued', 'running')"),
              sqlite_where=text("status IN ('queued', 'running')")),
        Index("ix_scan_runs_workspace_account", "workspace_id", "aws_account_id", "id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    aws_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("aws_accounts.id", ondelete="CASCADE"))
    status: Mapped[ScanStatus] = mapped_column(_enum(ScanStatus, "scan_status"), default=ScanStatus.queued)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")   # manual | scheduled
    requested_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    cancel_requested_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(2000))
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    collection_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Set when retention removed its per-finding results (scan_findings); its counts stay in `summary`.
    results_purged_at: Mapped[datetime | None]


def severity_rank(severity: str | None) -> int:
    from app.checks.base import Severity

    try:
        return Severity(severity).rank
    except ValueError:
        return -1


def _rank_of_severity(context: Any) -> int:
    return severity_rank(context.get_current_parameters().get("severity"))


class Finding(IdMixin, Base):
    """The latest state of one (account, region, check, resource); `uid` is stable across scans."""

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("workspace_id", "uid", name="uq_findings_workspace_uid"),
        Index("ix_findings_workspace_account", "workspace_id", "aws_account_id"),
        Index("ix_findings_workspace_status_severity", "workspace_id", "status", "severity"),
        Index("ix_findings_workspace_check", "workspace_id", "check_id"),
        # Keyset pages sorted by severity, last seen or first seen (lists and streamed exports).
        Index("ix_findings_workspace_severity_rank", "workspace_id", "severity_rank", "id"),
        Index("ix_findings_workspace_last_seen", "workspace_id", "last_seen_at", "id"),
        Index("ix_findings_workspace_first_seen", "workspace_id", "first_seen_at", "id"),
        # Mute rule counts, and the SET NULL when a rule row goes.
        Index("ix_findings_workspace_mute_rule", "workspace_id", "mute_rule_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    aws_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("aws_accounts.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="cloudwizard")  # cloudwizard | securityhub | guardduty
    source_id: Mapped[str | None] = mapped_column(String(512))               # the source's own finding id
    check_id: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    service: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    # critical 4 ... informational 0 (-1 unknown): what "sort by severity" orders by, through an index.
    severity_rank: Mapped[int] = mapped_column(SmallInteger, default=_rank_of_severity)
    status: Mapped[str] = mapped_column(String(8))                            # PASS | FAIL | ERROR
    region: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[str] = mapped_column(String(1024))
    resource_arn: Mapped[str | None] = mapped_column(String(2048))
    resource_tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    message: Mapped[str] = mapped_column(Text)
    compliance: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    last_scan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scan_runs.id", ondelete="SET NULL"))
    # The active mute rule that covers it (kept in step by app.services.mutes); muted while muted_until is None
    # or in the future, so a mute expires on time even before the expiry job has run.
    mute_rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mute_rules.id", ondelete="SET NULL"))
    muted_until: Mapped[datetime | None]
