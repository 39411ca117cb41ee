"""AWS account connections: create (External ID + template), verify the role, re-verify, disconnect."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from app.api.deps import SessionDep, WorkspaceAdmin, WorkspaceViewer
from app.errors import error_responses
from app.models import AccountStatus, AwsAccount
from app.pagination import PageParams, page_params
from app.schemas.aws_accounts import (
    AwsAccountCreate,
    AwsAccountPage,
    AwsAccountRead,
    AwsAccountUpdate,
    AwsAccountVerify,
    AwsAccountWithSetup,
)
from app.services import aws_accounts as service
from app.services import connection

router = APIRouter(prefix="/workspaces/{workspace_id}/aws-accounts", tags=["aws_accounts"])

AccountIdPath = Annotated[uuid.UUID, Path(description="AWS account connection id.")]


def _read(account: AwsAccount, *, with_setup: bool = True) -> AwsAccountWithSetup:
    out = AwsAccountWithSetup.model_validate(account, from_attributes=True)
    if with_setup and account.status == AccountStatus.pending:
        out.setup = service.connection_setup(account)
    return out


@router.post("", name="aws_accounts_create", status_code=status.HTTP_201_CREATED,
             response_model=AwsAccountWithSetup, summary="Start connecting an AWS account",
             description="Creates a pending connection with a fresh External ID (generated here, never accepted "
                         "from a client) and returns the CloudFormation template, a quick-create console link and "
                         "the equivalent AWS CLI command. The External ID expires if unused. Admins only.",
             responses=error_responses(401, 403, 404, 422))
async def aws_accounts_create(data: AwsAccountCreate, ctx: WorkspaceAdmin, session: SessionDep):
    return _read(await service.create(session, ctx.id, ctx.principal, data))


@router.get("", name="aws_accounts_list", response_model=AwsAccountPage, summary="List AWS accounts",
            description="Connections of the workspace, oldest first.", responses=error_responses(401, 404, 422))
async def aws_accounts_list(ctx: WorkspaceViewer, session: SessionDep,
                            params: Annotated[PageParams, Depends(page_params)],
                            status_filter: Annotated[AccountStatus | None, Query(alias="status")] = None):
    items, cursor = await service.list_accounts(session, ctx.id, params, status_filter)
    return AwsAccountPage(items=[AwsAccountRead.model_validate(a) for a in items], next_cursor=cursor)


@router.get("/{account_id}", name="aws_accounts_get", response_model=AwsAccountWithSetup,
            summary="Get an AWS account", description="Includes set-up instructions while pending.",
            responses=error_responses(401, 404, 422))
async def aws_accounts_get(account_id: AccountIdPath, ctx: WorkspaceViewer, session: SessionDep):
    return _read(await service.get_or_404(session, ctx.id, account_id))


@router.patch("/{account_id}", name="aws_accounts_update", response_model=AwsAccountWithSetup,
              summary="Rename an AWS account or change its regions", responses=error_responses(401, 403, 404, 422))
async def aws_accounts_update(account_id: AccountIdPath, data: AwsAccountUpdate, ctx: WorkspaceAdmin,
                              session: SessionDep):
    return _read(await service.update(session, ctx.id, account_id, ctx.principal, data))


@router.post("/{account_id}/external-id", name="aws_accounts_regenerate_external_id",
             response_model=AwsAccountWithSetup, summary="Regenerate the External ID of a pending connection",
             description="For a pending connection whose ID expired or leaked. A verified connection's ID is "
                         "immutable (409).", responses=error_responses(401, 403, 404, 409, 422))
async def aws_accounts_regenerate_external_id(account_id: AccountIdPath, ctx: WorkspaceAdmin, session: SessionDep):
    return _read(await service.regenerate_external_id(session, ctx.id, account_id, ctx.principal))


@router.post("/{account_id}/verify", name="aws_accounts_verify", response_model=AwsAccountWithSetup,
             summary="Verify the role and connect the account",
             description="Assumes the role with the External ID, checks the account with GetCallerIdentity, "
                         "proves the role refuses a missing or wrong External ID (confused-deputy protection), "
                         "reads the role's trust policy, and probes one read per scanned service. The account "
                         "becomes `connected`, or `degraded` with `missing_permissions`. Failures answer a "
                         "problem that says how to fix the role and change nothing, except that a connected "
                         "account whose role can no longer be assumed becomes `revoked`. Every AssumeRole is in "
                         "the audit log.",
             responses=error_responses(401, 403, 404, 409, 422, 503))
async def aws_accounts_verify(account_id: AccountIdPath, data: AwsAccountVerify, ctx: WorkspaceAdmin,
                              session: SessionDep):
    return _read(await connection.verify(session, ctx.id, account_id, ctx.principal, data.role_arn))


@router.post("/{account_id}/disconnect", name="aws_accounts_disconnect", response_model=AwsAccountRead,
             summary="Disconnect an AWS account",
             description="Stops all use of the role. The connection is kept as `disconnected` so past results "
                         "keep their account; delete the CloudFormation stack to remove the role itself.",
             responses=error_responses(401, 403, 404, 409, 422))
async def aws_accounts_disconnect(account_id: AccountIdPath, ctx: WorkspaceAdmin, session: SessionDep):
    return AwsAccountRead.model_validate(await service.disconnect(session, ctx.id, account_id, ctx.principal))
