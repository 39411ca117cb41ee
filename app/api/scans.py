"""Scans of a connected AWS account: start (202), list, detail with live progress, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.api.deps import SessionDep, WorkspaceMember, WorkspaceViewer
from app.errors import error_responses
from app.models import ScanStatus
from app.pagination import PageParams, page_params
from app.schemas.scans import ScanPage, ScanRead
from app.services import scans as service
from app.services.aws_accounts import get_or_404 as get_account_or_404

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["scans"])

AccountIdPath = Annotated[uuid.UUID, Path(description="AWS account connection id.")]
ScanIdPath = Annotated[uuid.UUID, Path(description="Scan id.")]


@router.post("/aws-accounts/{account_id}/scans", name="scans_create", status_code=status.HTTP_202_ACCEPTED,
             response_model=ScanRead, summary="Start a scan",
             description="Queues a scan of a connected (or degraded) account and answers at once; follow it with "
                         "`GET .../scans/{scan_id}`. One scan runs per account at a time: while one is queued or "
                         "running, this answers that scan (header `X-Scan-Created: false`). Members and up.",
             responses=error_responses(401, 403, 404, 409, 422))
async def scans_create(account_id: AccountIdPath, ctx: WorkspaceMember, session: SessionDep, response: Response):
    scan, created = await service.start(session, ctx.id, account_id, ctx.principal)
    response.headers["X-Scan-Created"] = "true" if created else "false"
    return ScanRead.model_validate(scan)


@router.get("/aws-accounts/{account_id}/scans", name="scans_list", response_model=ScanPage,
            summary="List an account's scans", description="Newest first.",
            responses=error_responses(401, 404, 422))
async def scans_list(account_id: AccountIdPath, ctx: WorkspaceViewer, session: SessionDep,
                     params: Annotated[PageParams, Depends(page_params)],
                     status_filter: Annotated[ScanStatus | None, Query(alias="status")] = None):
    await get_account_or_404(session, ctx.id, account_id)
    items, cursor = await service.list_scans(session, ctx.id, params, account_id, status_filter)
    return ScanPage(items=[ScanRead.model_validate(s) for s in items], next_cursor=cursor)


@router.get("/scans", name="scans_list_workspace", response_model=ScanPage,
            summary="List the workspace's scans", description="Every account's scans, newest first.",
            responses=error_responses(401, 404, 422))
async def scans_list_workspace(ctx: WorkspaceViewer, session: SessionDep,
                               params: Annotated[PageParams, Depends(page_params)],
                               account_id: Annotated[uuid.UUID | None, Query()] = None,
                               status_filter: Annotated[ScanStatus | None, Query(alias="status")] = None):
    items, cursor = await service.list_scans(session, ctx.id, params, account_id, status_filter)
    return ScanPage(items=[ScanRead.model_validate(s) for s in items], next_cursor=cursor)


@router.get("/aws-accounts/{account_id}/scans/{scan_id}", name="scans_get", response_model=ScanRead,
            summary="Get a scan", description="Status, live progress (regions and services done/total, API "
                                              "calls, throttled calls, errors), summary and collection errors.",
            responses=error_responses(401, 404, 422))
async def scans_get(account_id: AccountIdPath, scan_id: ScanIdPath, ctx: WorkspaceViewer, session: SessionDep):
    return ScanRead.model_validate(await service.get_or_404(session, ctx.id, scan_id, account_id))


@router.post("/aws-accounts/{account_id}/scans/{scan_id}/cancel", name="scans_cancel", status_code=202,
             response_model=ScanRead, summary="Cancel a scan",
             description="A queued scan is cancelled at once; a running one stops at its next progress report "
                         "and writes no results. 409 if it already ended.",
             responses=error_responses(401, 403, 404, 409, 422))
async def scans_cancel(account_id: AccountIdPath, scan_id: ScanIdPath, ctx: WorkspaceMember, session: SessionDep):
    return ScanRead.model_validate(await service.cancel(session, ctx.id, scan_id, ctx.principal, account_id))
