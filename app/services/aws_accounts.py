"""Connecting AWS accounts: External IDs, set-up instructions, verification and state changes."""

from __future__ import annotations

import secrets
import shlex
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import Principal
from app.config import get_settings
from app.errors import Conflict
from app.models import AccountStatus, AwsAccount
from app.pagination import PageParams, paginate
from app.schemas.aws_accounts import AwsAccountCreate, AwsAccountUpdate, ConnectionSetup
from app.services import audit
from app.services.scoping import get_scoped_or_404, scoped

CFN_DIR = Path(__file__).resolve().parent.parent.parent / "cfn"
ROLE_TEMPLATE = "cloudwizard-role.yaml"
ORGANIZATION_TEMPLATE = "cloudwizard-organization.yaml"
TEMPLATES = (ROLE_TEMPLATE, ORGANIZATION_TEMPLATE)
DEFAULT_ROLE_NAME = "CloudWizardScanner"
EXTERNAL_ID_PREFIX = "cw-"

_CONSOLE_HOSTS = {"aws": "console.aws.amazon.com", "aws-us-gov": "console.amazonaws-us-gov.com",
                  "aws-cn": "console.amazonaws.cn"}


def new_external_id() -> str:
    """192 random bits, URL-safe; matches the template's AllowedPattern."""
    return EXTERNAL_ID_PREFIX + secrets.token_urlsafe(24)


@lru_cache
def template_body(name: str) -> str:
    if name not in TEMPLATES:
        raise KeyError(name)
    return (CFN_DIR / name).read_text()


def template_url(name: str = ROLE_TEMPLATE) -> str:
    s = get_settings()
    if name == ROLE_TEMPLATE and s.role_template_url:
        return s.role_template_url
    return f"{s.public_base_url.rstrip('/')}/v1/templates/{name}"


def connection_setup(account: AwsAccount) -> ConnectionSetup:
    s = get_settings()
    region = s.quick_create_region
    # The whole id: a UUIDv7's leading characters are its timestamp, shared by connections made in the
    # same minute, and a stack name must be unique in its account and region.
    stack_name = f"CloudWizard-{account.id.hex}"
    params = {"ExternalId": account.external_id, "ScannerPrincipalArn": s.scanner_principal_arn,
              "RoleName": DEFAULT_ROLE_NAME}
    url = template_url()
    query = urlencode({"templateURL": url, "stackName": stack_name} | {f"param_{k}": v for k, v in params.items()},
                      quote_via=quote)
    quick_create = (f"https://{region}.{_CONSOLE_HOSTS['aws']}/cloudformation/home?region={region}"
                    f"#/stacks/quickcreate?{query}")
    # create-stack only takes a template URL on S3, so the command downloads our copy first.
    cli = " ".join([
        "curl -fsSL -o", ROLE_TEMPLATE, shlex.quote(url), "&&",
        "aws cloudformation create-stack", f"--region {region}", f"--stack-name {stack_name}",
        f"--template-body file://{ROLE_TEMPLATE}", "--capabilities CAPABILITY_NAMED_IAM",
        "--parameters", *(shlex.quote(f"ParameterKey={k},ParameterValue={v}") for k, v in params.items()),
    ])
    return ConnectionSetup(
        external_id=account.external_id, external_id_expires_at=account.external_id_expires_at,
        scanner_principal_arn=s.scanner_principal_arn, role_name=DEFAULT_ROLE_NAME, stack_name=stack_name,
        template_url=url, template_body=template_body(ROLE_TEMPLATE), quick_create_url=quick_create,
        cli_command=cli,
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def _unique_external_id(session: AsyncSession) -> str:
    # 192 random bits never collide in practice; the unique constraint is the real guarantee.
    while True:
        candidate = new_external_id()
        taken = await session.scalar(select(AwsAccount.id).where(AwsAccount.external_id == candidate))
        if taken is None:
            return candidate


async def create(session: AsyncSession, workspace_id: uuid.UUID, actor: Principal,
                 data: AwsAccountCreate) -> AwsAccount:
    account = AwsAccount(
        workspace_id=workspace_id, name=data.name, regions=data.regions, status=AccountStatus.pending,
        external_id=await _unique_external_id(session),
        external_id_expires_at=_now() + timedelta(seconds=get_settings().external_id_ttl_seconds),
        missing_permissions=[],
    )
    session.add(account)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.created",
                       target_type="aws_account", target_id=account.id, details={"name": data.name})
    return account


async def list_accounts(session: AsyncSession, workspace_id: uuid.UUID, params: PageParams,
                        status: AccountStatus | None = None) -> tuple[list[AwsAccount], str | None]:
    stmt = scoped(AwsAccount, workspace_id)
    if status is not None:
        stmt = stmt.where(AwsAccount.status == status)
    return await paginate(session, stmt, AwsAccount.id, params)


async def get_or_404(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                     *, for_update: bool = False) -> AwsAccount:
    return await get_scoped_or_404(session, AwsAccount, workspace_id, account_id, what="AWS account",
                                   for_update=for_update)


async def update(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal,
                 data: AwsAccountUpdate) -> AwsAccount:
    account = await get_or_404(session, workspace_id, account_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        changes.pop("name")
    if not changes:
        return account
    before = {k: getattr(account, k) for k in changes}
    for key, value in changes.items():
        setattr(account, key, value)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.updated",
                       target_type="aws_account", target_id=account.id,
                       details={"before": before, "after": changes})
    return account


async def regenerate_external_id(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                                 actor: Principal) -> AwsAccount:
    account = await get_or_404(session, workspace_id, account_id, for_update=True)
    if account.status != AccountStatus.pending:
        # Once a role trusts this ID it must not change under the customer's feet.
        raise Conflict("The External ID of a verified account is immutable; only a pending connection's "
                       "ID can be regenerated.")
    account.external_id = await _unique_external_id(session)
    account.external_id_expires_at = _now() + timedelta(seconds=get_settings().external_id_ttl_seconds)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.external_id_regenerated",
                       target_type="aws_account", target_id=account.id)
    return account


def set_status(account: AwsAccount, status: AccountStatus, reason: str | None) -> bool:
    """Change the state and its timestamp; True when it changed (the caller audits it)."""
    changed = account.status != status
    if changed:
        account.status = status
        account.status_changed_at = _now()
    account.status_reason = reason
    return changed


async def disconnect(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                     actor: Principal) -> AwsAccount:
    """Stop using the role; the row stays so past results keep their account."""
    account = await get_or_404(session, workspace_id, account_id, for_update=True)
    if account.status == AccountStatus.disconnected:
        raise Conflict("This account is already disconnected.")
    previous = account.status
    set_status(account, AccountStatus.disconnected, "Disconnected by a user.")
    account.external_id_expires_at = None
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.disconnected",
                       target_type="aws_account", target_id=account.id,
                       details={"previous_status": previous.value})
    return account
