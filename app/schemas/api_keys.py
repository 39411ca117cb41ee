"""Request and response bodies for workspace API keys; the secret appears in one response only."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, Field, field_validator

from app.models import Role
from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, description="What the key is for, e.g. `ci-pipeline`.",
                      examples=["ci-pipeline"])
    role: Role = Field(description="What the key may do in the workspace; at most your own role.")
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (with a time zone, in the future). "
                                  "Null: until revoked.")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("Names cannot contain control characters.")
        return value


class ApiKeyRead(ResponseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    role: Role
    prefix: str = Field(description="The key's public part (`cw_` and 8 characters), to tell keys apart.")
    created_by_user_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The full key, shown this once: store it now. Send it as "
                                 "`Authorization: Bearer <key>`.")


class ApiKeyPage(Page[ApiKeyRead]):
    """A page of API keys."""
