"""Request and response bodies for workspaces."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from app.models import Role
from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel


def _printable(value: str) -> str:
    # Control characters (NUL above all, which PostgreSQL refuses in text) have no place in a display name.
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


WorkspaceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_printable),
    Field(description="1 to 100 characters; surrounding whitespace is removed.", examples=["Acme Security"]),
]


class WorkspaceCreate(RequestModel):
    name: WorkspaceName


class WorkspaceUpdate(RequestModel):
    name: WorkspaceName


class WorkspaceRead(ResponseModel):
    id: uuid.UUID
    name: str
    role: Role = Field(description="The caller's role in this workspace (an API key's own role).")
    created_at: datetime
    updated_at: datetime


class WorkspacePage(Page[WorkspaceRead]):
    pass
