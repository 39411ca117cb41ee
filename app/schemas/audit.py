"""Response bodies for the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from app.pagination import Page
from app.schemas.base import ResponseModel


class AuditEventRead(ResponseModel):
    id: uuid.UUID
    actor_type: Literal["user", "api_key", "system"]
    actor_id: uuid.UUID | None = Field(description="User id or API key id; null for system actions.")
    actor_label: str | None = Field(description="The actor's e-mail, `api-key:<prefix>` or `cloudwizard`, "
                                                "as it was at the time.")
    action: str = Field(examples=["member.role_changed"])
    target_type: str | None
    target_id: str | None
    source_ip: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditEventPage(Page[AuditEventRead]):
    pass
