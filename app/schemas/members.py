"""Request and response bodies for workspace members."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.models import Role
from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel


class MemberRead(ResponseModel):
    user_id: uuid.UUID
    email: str
    display_name: str | None
    role: Role
    joined_at: datetime


class MemberPage(Page[MemberRead]):
    pass


class MemberUpdate(RequestModel):
    role: Role = Field(description="The new role. Only owners may grant or take away `owner`.")
