"""Workspace routes: the tenant boundary. Create, list yours, read, rename, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from app.api.deps import (
    CurrentPrincipal,
    CurrentUser,
    SessionDep,
    WorkspaceAdmin,
    WorkspaceOwner,
    WorkspaceViewer,
)
from app.errors import error_responses
from app.models import Role, Workspace
from app.pagination import PageParams, page_params
from app.schemas.workspaces import WorkspaceCreate, WorkspacePage, WorkspaceRead, WorkspaceUpdate
from app.services import workspaces as service

router = APIRouter(tags=["workspaces"])


def _read(workspace: Workspace, role: Role) -> WorkspaceRead:
    return WorkspaceRead(id=workspace.id, name=workspace.name, role=role, created_at=workspace.created_at,
                         updated_at=workspace.updated_at)


@router.post(
    "/workspaces", name="workspaces_create", status_code=status.HTTP_201_CREATED,
    response_model=WorkspaceRead, summary="Create a workspace",
    description="Creates a workspace; the signed-in user becomes its owner. "
                "API keys cannot create workspaces.",
    responses=error_responses(400, 401, 403, 422),
)
async def workspaces_create(body: WorkspaceCreate, user: CurrentUser, principal: CurrentPrincipal,
                            session: SessionDep) -> WorkspaceRead:
    workspace = await service.create(session, user=user, principal=principal, name=body.name)
    return _read(workspace, Role.owner)


@router.get(
    "/workspaces", name="workspaces_list", response_model=WorkspacePage,
    summary="List your workspaces",
    description="The workspaces you are a member of, with your role, oldest first. "
                "With an API key: only the key's own workspace.",
    responses=error_responses(401, 422),
)
async def workspaces_list(principal: CurrentPrincipal, session: SessionDep,
                          params: Annotated[PageParams, Depends(page_params)]) -> WorkspacePage:
    rows, cursor = await service.list_for(session, principal, params)
    return WorkspacePage(items=[_read(w, role) for w, role in rows], next_cursor=cursor)


@router.get(
    "/workspaces/{workspace_id}", name="workspaces_get", response_model=WorkspaceRead,
    summary="Get a workspace", description="Any member (viewer or higher) may read the workspace.",
    responses=error_responses(401, 404, 422),
)
async def workspaces_get(ctx: WorkspaceViewer) -> WorkspaceRead:
    return _read(ctx.workspace, ctx.role)


@router.patch(
    "/workspaces/{workspace_id}", name="workspaces_update", response_model=WorkspaceRead,
    summary="Rename a workspace", description="Needs the admin role or higher.",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def workspaces_update(body: WorkspaceUpdate, ctx: WorkspaceAdmin, session: SessionDep) -> WorkspaceRead:
    workspace = await service.rename(session, ctx, body.name)
    return _read(workspace, ctx.role)


@router.delete(
    "/workspaces/{workspace_id}", name="workspaces_delete", status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response, response_model=None,
    summary="Delete a workspace",
    description="Deletes the workspace and everything in it — members, invitations, API keys, its audit log "
                "and all its data — at once and for good. Needs a signed-in owner (not an API key). "
                "The deletion is recorded in the service log, since the workspace's audit log goes with it.",
    responses=error_responses(401, 403, 404, 422),
)
async def workspaces_delete(ctx: WorkspaceOwner, session: SessionDep) -> Response:
    await service.delete_workspace(session, ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
