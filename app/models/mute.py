"""Mute rules: a reviewed decision that some findings are accepted risk, with a reason, an owner and an expiry."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, TimestampMixin


class MuteRule(IdMixin, TimestampMixin, Base):
    """Mutes every finding that matches all of its set selectors: one finding (by its stable uid), or a rule over
    check, account, region, resource pattern and resource tag. A rule ends when it is deleted (unmuted) or when
    `expires_at` passes; an ended rule is kept, so the record of who accepted what stays readable."""

    __tablename__ = "mute_rules"
    __table_args__ = (
        Index("ix_mute_rules_workspace_ended", "workspace_id", "ended_at"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # Selectors (at least one is set). A uid, not a foreign key: the decision is about that finding whatever
    # happens to the row, and it keeps the two tables free of a reference cycle.
    finding_uid: Mapped[str | None] = mapped_column(String(64))
    check_id: Mapped[str | None] = mapped_column(String(128))
    aws_account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("aws_accounts.id", ondelete="CASCADE"))
    region: Mapped[str | None] = mapped_column(String(32))
    resource_pattern: Mapped[str | None] = mapped_column(String(1024))   # glob over resource id and ARN
    tag_key: Mapped[str | None] = mapped_column(String(128))
    tag_value: Mapped[str | None] = mapped_column(String(256))           # None: any value of tag_key
    # The decision.
    reason: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(320))
    created_by: Mapped[str] = mapped_column(String(320))
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(320))
    end_reason: Mapped[str | None] = mapped_column(String(16))            # unmuted | expired
    selectors: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # as given, for the audit trail
