"""Dependency aliases so routes read like plain functions: SessionDep, CurrentPrincipal,
CurrentUser, and workspace contexts that enforce membership (404) and role (403)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import request_session
from app.errors import Forbidden, NotFound, Unauthorized
from app.models import ApiKey, AuthSession, Membership, Role, User, Workspace
from app.security import decode_access_token, token_digest

# scope="function": commit before the response is sent, so a client never races its own write.
SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]

API_KEY_PREFIX = "cw_"
_LAST_USED_GRANULARITY = timedelta(seconds=60)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="Either an access token from `POST /v1/auth/login`, or a workspace API key (`cw_...`).",
)


@dataclass(slots=True)
class Principal:
    kind: Literal["user", "api_key"]
    id: uuid.UUID
    label: str
    source_ip: str | None
    user: User | None = None
    api_key: ApiKey | None = None
    session_id: uuid.UUID | None = None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_principal(
    request: Request, session: SessionDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthorized("Send `Authorization: Bearer <access token or API key>`.")
    token = creds.credentials
    ip = client_ip(request)
    if token.startswith(API_KEY_PREFIX):
        key = (await session.scalars(select(ApiKey).where(ApiKey.secret_hash == token_digest(token)))).one_or_none()
        now = datetime.now(UTC)
        if key is None or key.revoked_at is not None or (key.expires_at and key.expires_at <= now):
            raise Unauthorized("Invalid, revoked or expired API key.")
        if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_GRANULARITY:
            key.last_used_at = now
        return Principal(kind="api_key", id=key.id, label=f"api-key:{key.prefix}", source_ip=ip, api_key=key)
    claims = decode_access_token(token)
    if claims is None:
        raise Unauthorized("Invalid or expired access token.")
    row = (await session.execute(
        select(User, AuthSession).join(AuthSession, AuthSession.user_id == User.id)
        .where(User.id == uuid.UUID(claims["sub"]), AuthSession.id == uuid.UUID(claims["sid"]))
    )).one_or_none()
    if row is None:
        raise Unauthorized("Invalid or expired access token.")
    user, auth_session = row
    if not user.is_active or auth_session.revoked_at is not None:
        raise Unauthorized("This sign-in has ended; sign in again.")
    return Principal(kind="user", id=user.id, label=user.email, source_ip=ip, user=user,
                     session_id=auth_session.id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: CurrentPrincipal) -> User:
    if principal.user is None:
        raise Forbidden("This operation needs a signed-in user; API keys act only inside their workspace.")
    return principal.user


CurrentUser = Annotated[User, Depends(current_user)]


@dataclass(slots=True)
class WorkspaceContext:
    workspace: Workspace
    role: Role
    principal: Principal

    @property
    def id(self) -> uuid.UUID:
        return self.workspace.id


WorkspaceIdPath = Annotated[uuid.UUID, Path(description="Workspace id.")]


async def workspace_context(workspace_id: WorkspaceIdPath, principal: CurrentPrincipal,
                            session: SessionDep) -> WorkspaceContext:
    """Resolve the caller's role in the workspace; a non-member sees 404, as for a missing one."""
    if principal.api_key is not None:
        if principal.api_key.workspace_id != workspace_id:
            raise NotFound("Workspace not found.")
        workspace = await session.get(Workspace, workspace_id)
        if workspace is None:
            raise NotFound("Workspace not found.")
        return WorkspaceContext(workspace=workspace, role=principal.api_key.role, principal=principal)
    row = (await session.execute(
        select(Workspace, Membership.role).join(Membership, Membership.workspace_id == Workspace.id)
        .where(Workspace.id == workspace_id, Membership.user_id == principal.id)
    )).one_or_none()
    if row is None:
        raise NotFound("Workspace not found.")
    return WorkspaceContext(workspace=row[0], role=row[1], principal=principal)


def require_role(minimum: Role):
    async def _dep(ctx: Annotated[WorkspaceContext, Depends(workspace_context)]) -> WorkspaceContext:
        if not ctx.role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or higher in the workspace.")
        return ctx

    return _dep


WorkspaceViewer = Annotated[WorkspaceContext, Depends(require_role(Role.viewer))]
WorkspaceMember = Annotated[WorkspaceContext, Depends(require_role(Role.member))]
WorkspaceAdmin = Annotated[WorkspaceContext, Depends(require_role(Role.admin))]
WorkspaceOwner = Annotated[WorkspaceContext, Depends(require_role(Role.owner))]
