"""Audit log route: a workspace's events, newest first, for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from app.api.deps import SessionDep, WorkspaceAdmin
from app.errors import InvalidInput, error_responses
from app.models import AuditEvent
from app.pagination import PageParams, page_params, paginate
from app.schemas.audit import AuditEventPage, AuditEventRead
from app.services.scoping import scoped

router = APIRouter(tags=["audit"])


@router.get(
    "/workspaces/{workspace_id}/audit-events", name="audit_list", response_model=AuditEventPage,
    summary="List audit events",
    description="Every state-changing action in the workspace: who (user or API key), from which "
                "address, what and when. Newest first. Filters combine: `since` is inclusive, `until` "
                "exclusive; both need a time zone. Needs the admin role or higher.",
    responses=error_responses(401, 403, 404, 422),
)
async def audit_list(
    ctx: WorkspaceAdmin, session: SessionDep, params: Annotated[PageParams, Depends(page_params)],
    action: Annotated[str | None, Query(min_length=1, max_length=64, description="Exact action name.",
                                        examples=["member.role_changed"])] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="User or API key id.")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Events at or after this time.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Events before this time.")] = None,
) -> AuditEventPage:
    if since is not None and until is not None and since >= until:
        raise InvalidInput.field("until", "`until` must be later than `since`.", loc=["query", "until"])
    stmt = scoped(AuditEvent, ctx.id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    events, cursor = await paginate(session, stmt, AuditEvent.id, params, descending=True)
    return AuditEventPage(items=[AuditEventRead.model_validate(e) for e in events], next_cursor=cursor)
