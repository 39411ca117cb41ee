"""Mute rules of a workspace: mute a finding or a rule over its findings, list, read, revise, unmute."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import SessionDep, WorkspaceMember, WorkspaceViewer
from app.errors import error_responses
from app.models import MuteRule
from app.pagination import PageParams, page_params
from app.schemas.mutes import (
    CheckId,
    MuteRuleCreate,
    MuteRulePage,
    MuteRuleRead,
    MuteRuleStateFilter,
    MuteRuleUpdate,
)
from app.services import mutes as service

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["mutes"])

RuleIdPath = Annotated[uuid.UUID, Path(description="Mute rule id.")]


def _read(rule: MuteRule, matched: int, now: datetime) -> MuteRuleRead:
    finding_id = (rule.selectors or {}).get("finding_id")
    return MuteRuleRead(
        id=rule.id, workspace_id=rule.workspace_id, finding_id=uuid.UUID(finding_id) if finding_id else None,
        finding_uid=rule.finding_uid, check_id=rule.check_id, aws_account_id=rule.aws_account_id,
        region=rule.region, resource_pattern=rule.resource_pattern, tag_key=rule.tag_key, tag_value=rule.tag_value,
        reason=rule.reason, owner=rule.owner, created_by=rule.created_by, created_at=rule.created_at,
        updated_at=rule.updated_at, expires_at=rule.expires_at, ended_at=rule.ended_at, ended_by=rule.ended_by,
        end_reason=rule.end_reason, state=service.state_of(rule, now), matched_findings=matched)


async def _one(session: AsyncSession, rule: MuteRule) -> MuteRuleRead:
    now = datetime.now(UTC)
    counts = await service.matched_counts(session, rule.workspace_id, [rule.id], now)
    return _read(rule, counts[rule.id], now)


@router.post(
    "/mute-rules", name="mutes_create", status_code=status.HTTP_201_CREATED, response_model=MuteRuleRead,
    summary="Mute findings",
    description="Members and above. Mutes one finding (`finding_id`) or every finding that matches all the "
                "selectors given (check, account connection, region, resource glob, resource tag), at once and for "
                "findings that later scans bring. Muted findings leave the findings list and the summary's counts "
                "(list them with `muted=include|only`). Needs a reason; the owner defaults to the caller. An "
                "optional expiry ends the mute by itself. A finding or account of another workspace is refused "
                "exactly like an unknown one (422). The answer counts the open findings the rule mutes.",
    responses=error_responses(401, 403, 404, 422),
)
async def mutes_create(body: MuteRuleCreate, ctx: WorkspaceMember, session: SessionDep) -> MuteRuleRead:
    rule = await service.create(session, workspace_id=ctx.id, actor=ctx.principal, data=body)
    return await _one(session, rule)


@router.get(
    "/mute-rules", name="mutes_list", response_model=MuteRulePage, summary="List mute rules",
    description="Viewers and above. Newest first. `state=active` (the default) lists the rules that mute now; "
                "`ended` those unmuted or past their expiry; `all` both. Filters combine with AND.",
    responses=error_responses(401, 404, 422),
)
async def mutes_list(
    ctx: WorkspaceViewer, session: SessionDep, params: Annotated[PageParams, Depends(page_params)],
    state: Annotated[MuteRuleStateFilter, Query(description="Active rules, ended ones, or all.")]
    = MuteRuleStateFilter.active,
    check_id: Annotated[CheckId | None, Query(description="Only rules with this check selector.")] = None,
    aws_account_id: Annotated[uuid.UUID | None, Query(description="Only rules with this account selector.")] = None,
) -> MuteRulePage:
    rules, cursor = await service.list_rules(session, workspace_id=ctx.id, params=params, state=state,
                                             check_id=check_id, aws_account_id=aws_account_id)
    now = datetime.now(UTC)
    counts = await service.matched_counts(session, ctx.id, [r.id for r in rules], now)
    return MuteRulePage(items=[_read(r, counts[r.id], now) for r in rules], next_cursor=cursor)


@router.get(
    "/mute-rules/{rule_id}", name="mutes_get", response_model=MuteRuleRead, summary="Get a mute rule",
    description="Viewers and above. The rule, its state and how many open findings it mutes now.",
    responses=error_responses(401, 404, 422),
)
async def mutes_get(rule_id: RuleIdPath, ctx: WorkspaceViewer, session: SessionDep) -> MuteRuleRead:
    return await _one(session, await service.get_or_404(session, workspace_id=ctx.id, rule_id=rule_id))


@router.patch(
    "/mute-rules/{rule_id}", name="mutes_update", response_model=MuteRuleRead, summary="Revise a mute rule",
    description="Members and above. Changes the reason, the owner or the expiry (null removes it) of an active "
                "rule; fields left out stay as they are. Selectors cannot change: make a new rule and unmute this "
                "one. A rule that has ended (unmuted, or past its expiry) cannot be revised (409).",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def mutes_update(rule_id: RuleIdPath, body: MuteRuleUpdate, ctx: WorkspaceMember,
                       session: SessionDep) -> MuteRuleRead:
    rule = await service.update(session, workspace_id=ctx.id, actor=ctx.principal, rule_id=rule_id, data=body)
    return await _one(session, rule)


@router.delete(
    "/mute-rules/{rule_id}", name="mutes_delete", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
    response_model=None, summary="Unmute",
    description="Members and above. Ends the rule (it stays listed under `state=ended`, marked `unmuted`) and "
                "shows its findings again at once, unless another active rule covers them. Unmuting a rule that "
                "has already ended succeeds and changes nothing.",
    responses=error_responses(401, 403, 404, 422),
)
async def mutes_delete(rule_id: RuleIdPath, ctx: WorkspaceMember, session: SessionDep) -> Response:
    await service.delete(session, workspace_id=ctx.id, actor=ctx.principal, rule_id=rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
