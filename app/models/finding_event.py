"""A finding's lifecycle: what each scan said about it (scan_findings) and its transitions (finding_events)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, utcnow


class FindingDelta(enum.StrEnum):
    new = "new"               # first produced by this scan
    unchanged = "unchanged"   # produced again with the same status
    changed = "changed"       # produced again with another status (PASS / FAIL / ERROR)
    resolved = "resolved"     # not produced although the scan covered its check and region without errors
    reopened = "reopened"     # produced again after it had been resolved


def _delta_enum() -> Enum:
    return Enum(FindingDelta, native_enum=False, create_constraint=True, length=16, name="finding_delta",
                values_callable=lambda e: [m.value for m in e])


class ScanFinding(Base):
    """One scan's verdict on one finding; the primary key makes a re-run of the scan rewrite, not add."""

    __tablename__ = "scan_findings"
    __table_args__ = (
        # Cascading deletes of findings and "delta of the latest scan" lookups go by finding.
        Index("ix_scan_findings_finding_id", "finding_id"),
    )

    scan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scan_runs.id", ondelete="CASCADE"), primary_key=True)
    finding_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    status: Mapped[str | None] = mapped_column(String(8))            # None when the scan resolved it
    previous_status: Mapped[str | None] = mapped_column(String(8))   # None when it is new
    delta: Mapped[FindingDelta] = mapped_column(_delta_enum())


class FindingEvent(IdMixin, Base):
    """A transition of a finding (every delta but `unchanged`); at most one per (finding, scan)."""

    __tablename__ = "finding_events"
    __table_args__ = (
        UniqueConstraint("finding_id", "scan_id", name="uq_finding_events_finding_scan"),
        # A re-run of a scan replaces that scan's events; deleting a scan nulls them.
        Index("ix_finding_events_scan_id", "scan_id"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    finding_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    # Kept when the scan row goes: history outlives scan retention.
    scan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scan_runs.id", ondelete="SET NULL"))
    delta: Mapped[FindingDelta] = mapped_column(_delta_enum())
    from_status: Mapped[str | None] = mapped_column(String(8))   # None for a new finding
    to_status: Mapped[str | None] = mapped_column(String(8))     # None when resolved
    at: Mapped[datetime] = mapped_column(default=utcnow)
