"""Invitation routes: invite by e-mail (token shown once), list, revoke, and accept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.api.deps import CurrentPrincipal, CurrentUser, SessionDep, WorkspaceAdmin
from app.errors import error_responses
from app.models import Invitation
from app.pagination import PageParams, page_params
from app.schemas.invitations import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationPage,
    InvitationRead,
    InvitationStatus,
)
from app.schemas.workspaces import WorkspaceRead
from app.services import invitations as service

router = APIRouter(tags=["invitations"])

InvitationIdPath = Annotated[uuid.UUID, Path(description="Invitation id.")]


def _fields(invitation: Invitation, now: datetime) -> dict[str, Any]:
    return {
        "id": invitation.id, "workspace_id": invitation.workspace_id, "email": invitation.email,
        "role": invitation.role, "status": service.status_of(invitation, now),
        "invited_by_user_id": invitation.invited_by_user_id, "created_at": invitation.created_at,
        "expires_at": invitation.expires_at, "accepted_at": invitation.accepted_at,
        "accepted_by_user_id": invitation.accepted_by_user_id, "revoked_at": invitation.revoked_at,
    }


def _accept_errors() -> dict[int | str, dict[str, Any]]:
    responses = error_responses(400, 401, 403, 404, 409, 410, 422)
    responses[403]["description"] = "An API key was used, or the invitation is for another e-mail address."
    responses[404]["description"] = "No invitation matches the token."
    responses[409]["description"] = "You are already a member of the workspace."
    responses[410]["description"] = ("The invitation was used, revoked or has expired; the problem `type` "
                                     "ends with invitation-used, invitation-revoked or invitation-expired.")
    return responses


@router.post(
    "/workspaces/{workspace_id}/invitations", name="invitations_create", status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    summary="Invite someone by e-mail",
    description="Needs the admin role or higher; the role given may not exceed yours, and only owners "
                "invite owners. The answer carries the `token` and the `accept_url` to send to the invitee: "
                "they are shown only this once. Inviting an address that already has a pending invitation "
                "replaces it (the old link stops working). Inviting an existing member is a conflict (409). "
                "The invitation expires after the configured time (7 days by default).",
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def invitations_create(body: InvitationCreate, ctx: WorkspaceAdmin,
                             session: SessionDep) -> InvitationCreated:
    invitation, token = await service.create(session, ctx, email=body.email, role=body.role)
    return InvitationCreated(**_fields(invitation, datetime.now(UTC)), token=token,
                             accept_url=service.accept_url(token))


@router.get(
    "/workspaces/{workspace_id}/invitations", name="invitations_list", response_model=InvitationPage,
    summary="List invitations",
    description="Newest first, with their status (pending, accepted, expired, revoked); never the token. "
                "Needs the admin role or higher.",
    responses=error_responses(401, 403, 404, 422),
)
async def invitations_list(
    ctx: WorkspaceAdmin, session: SessionDep, params: Annotated[PageParams, Depends(page_params)],
    status_: Annotated[InvitationStatus | None,
                       Query(alias="status", description="Only invitations with this status.")] = None,
) -> InvitationPage:
    rows, cursor = await service.list_invitations(session, ctx.id, params, status_)
    now = datetime.now(UTC)
    return InvitationPage(items=[InvitationRead(**_fields(i, now)) for i in rows], next_cursor=cursor)


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}", name="invitations_revoke",
    status_code=status.HTTP_204_NO_CONTENT, response_class=Response, response_model=None,
    summary="Revoke an invitation",
    description="Its link stops working at once. Revoking a revoked invitation does nothing; an accepted one "
                "cannot be revoked (409: remove the member instead). Needs the admin role or higher.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def invitations_revoke(invitation_id: InvitationIdPath, ctx: WorkspaceAdmin,
                             session: SessionDep) -> Response:
    await service.revoke(session, ctx, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/invitations/accept", name="invitations_accept", response_model=InvitationAccepted,
    summary="Accept an invitation",
    description="The signed-in user joins the workspace with the invitation's role. The user's e-mail "
                "must be the invited address (case does not matter). An invitation works once. Unknown "
                "token: 404; used, revoked or expired: 410; already a member: 409.",
    responses=_accept_errors(),
)
async def invitations_accept(body: InvitationAccept, user: CurrentUser, principal: CurrentPrincipal,
                             session: SessionDep) -> InvitationAccepted:
    workspace, membership = await service.accept(session, principal, user, body.token)
    read = WorkspaceRead(id=workspace.id, name=workspace.name, role=membership.role,
                         created_at=workspace.created_at, updated_at=workspace.updated_at)
    return InvitationAccepted(workspace=read, role=membership.role)
