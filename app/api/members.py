"""Member routes: list the people in a workspace, change their roles, remove them or leave."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from app.api.deps import SessionDep, WorkspaceAdmin, WorkspaceViewer
from app.errors import error_responses
from app.models import Membership, User
from app.pagination import PageParams, page_params
from app.schemas.members import MemberPage, MemberRead, MemberUpdate
from app.services import members as service

router = APIRouter(tags=["members"])

UserIdPath = Annotated[uuid.UUID, Path(description="The member's user id.")]


def _read(membership: Membership, user: User) -> MemberRead:
    return MemberRead(user_id=user.id, email=user.email, display_name=user.display_name, role=membership.role,
                      joined_at=membership.created_at)


@router.get(
    "/workspaces/{workspace_id}/members", name="members_list", response_model=MemberPage,
    summary="List members", description="Members with their e-mail, display name and role, in joining order. "
                                        "Any member may list them.",
    responses=error_responses(401, 404, 422),
)
async def members_list(ctx: WorkspaceViewer, session: SessionDep,
                       params: Annotated[PageParams, Depends(page_params)]) -> MemberPage:
    rows, cursor = await service.list_members(session, ctx.id, params)
    return MemberPage(items=[_read(m, u) for m, u in rows], next_cursor=cursor)


@router.patch(
    "/workspaces/{workspace_id}/members/{user_id}", name="members_update", response_model=MemberRead,
    summary="Change a member's role",
    description="Needs the admin role or higher. Only owners may grant the owner role or change an owner's "
                "role. The last owner cannot be demoted (409).",
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def members_update(user_id: UserIdPath, body: MemberUpdate, ctx: WorkspaceAdmin,
                         session: SessionDep) -> MemberRead:
    membership, user = await service.update_role(session, ctx, user_id, body.role)
    return _read(membership, user)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}", name="members_remove",
    status_code=status.HTTP_204_NO_CONTENT, response_class=Response, response_model=None,
    summary="Remove a member or leave",
    description="Admins and owners remove other members (only owners remove owners). Any member may remove "
                "themselves, which is leaving. The last owner cannot leave (409).",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def members_remove(user_id: UserIdPath, ctx: WorkspaceViewer, session: SessionDep) -> Response:
    await service.remove(session, ctx, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
