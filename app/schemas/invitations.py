"""Request and response bodies for invitations; the token appears only in the creation answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import EmailStr, Field

from app.models import Role
from app.pagination import Page
from app.schemas.base import RequestModel, ResponseModel
from app.schemas.workspaces import WorkspaceRead


class InvitationStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    expired = "expired"
    revoked = "revoked"


class InvitationCreate(RequestModel):
    email: EmailStr = Field(description="Who may accept; compared case-insensitively with their "
                                        "account e-mail.")
    role: Role = Field(description="Role given on acceptance; at most the inviter's own role.")


class InvitationRead(ResponseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    invited_by_user_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    accepted_by_user_id: uuid.UUID | None
    revoked_at: datetime | None


class InvitationCreated(InvitationRead):
    token: str = Field(description="Shown only in this answer; the service keeps a digest of it.")
    accept_url: str = Field(description="Link for the invitee: the web app's acceptance page with the token.")


class InvitationPage(Page[InvitationRead]):
    pass


class InvitationAccept(RequestModel):
    token: str = Field(min_length=1, max_length=200, description="The token from the invitation link.")


class InvitationAccepted(ResponseModel):
    workspace: WorkspaceRead
    role: Role
