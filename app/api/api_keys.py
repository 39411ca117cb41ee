"""Workspace API keys: create (secret shown once), list, read, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.api.deps import SessionDep, WorkspaceAdmin
from app.errors import error_responses
from app.pagination import PageParams, page_params
from app.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyRead
from app.services import api_keys as api_keys_service

router = APIRouter(prefix="/workspaces/{workspace_id}/api-keys", tags=["api_keys"])

KeyIdPath = Annotated[uuid.UUID, Path(description="API key id.")]


@router.post(
    "", name="api_keys_create", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated,
    summary="Create an API key",
    description="Admins and owners only, signed in as a user (API keys cannot create keys). The key's role "
                "can be at most your own. The full key is in this response only: it is stored as a digest "
                "and cannot be shown again.",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def api_keys_create(body: ApiKeyCreate, ctx: WorkspaceAdmin, session: SessionDep) -> ApiKeyCreated:
    key, secret = await api_keys_service.create(
        session, workspace_id=ctx.id, actor=ctx.principal, actor_role=ctx.role,
        name=body.name, role=body.role, expires_at=body.expires_at,
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get(
    "", name="api_keys_list", response_model=ApiKeyPage, summary="List API keys",
    description="Admins and owners only. Newest first; revoked keys are left out unless `include_revoked`. "
                "Secrets are never shown again.",
    responses=error_responses(401, 403, 404, 422),
)
async def api_keys_list(
    ctx: WorkspaceAdmin, session: SessionDep, params: Annotated[PageParams, Depends(page_params)],
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.")] = False,
) -> ApiKeyPage:
    rows, next_cursor = await api_keys_service.list_keys(session, workspace_id=ctx.id, params=params,
                                                         include_revoked=include_revoked)
    return ApiKeyPage(items=[ApiKeyRead.model_validate(k) for k in rows], next_cursor=next_cursor)


@router.get(
    "/{key_id}", name="api_keys_get", response_model=ApiKeyRead, summary="Get an API key",
    description="Admins and owners only. Shows when the key was last used; never its secret.",
    responses=error_responses(401, 403, 404, 422),
)
async def api_keys_get(key_id: KeyIdPath, ctx: WorkspaceAdmin, session: SessionDep) -> ApiKeyRead:
    return ApiKeyRead.model_validate(await api_keys_service.get_or_404(session, workspace_id=ctx.id,
                                                                        key_id=key_id))


@router.delete(
    "/{key_id}", name="api_keys_revoke", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    response_model=None, summary="Revoke an API key",
    description="Admins and owners only; a key above your own role needs an owner. The key stops working at "
                "once. Revoking an already revoked key succeeds and changes nothing.",
    responses=error_responses(401, 403, 404, 422),
)
async def api_keys_revoke(key_id: KeyIdPath, ctx: WorkspaceAdmin, session: SessionDep) -> Response:
    await api_keys_service.revoke(session, workspace_id=ctx.id, actor=ctx.principal, actor_role=ctx.role,
                                  key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
