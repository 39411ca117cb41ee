"""Verifying a customer's role and keeping connection state true.

Verify proves, in order: we can assume the role with this connection's External ID; the credentials act
in the account named by the ARN; the role refuses AssumeRole without an External ID and with a wrong
one (confused-deputy protection); its trust policy trusts no `*` principal and demands `sts:ExternalId`;
and which services it can read (one cheap probe per service). Every AssumeRole is audited, including
refused ones, which survive the request's rollback.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import Principal
from app.aws.errors import ACCESS_DENIED_CODES, AssumeRoleDenied, AwsCallError, InvalidRoleArn
from app.aws.guard import ReadOnlyViolation
from app.aws.permissions import PROBES, Probe
from app.aws.session import PARTITION_STS_REGION, AssumedRole, RoleArn, parse_role_arn, verify_identity
from app.config import get_settings
from app.errors import Conflict, DomainError, InvalidInput
from app.models import AccountStatus, AwsAccount
from app.services import audit
from app.services.aws_accounts import get_or_404, set_status
from app.services.scoping import scoped

log = structlog.get_logger(__name__)
PROBE_CONCURRENCY = 8


class RoleNotAssumable(DomainError):
    status, slug, title = 422, "role-not-assumable", "The role cannot be assumed"


class AccountMismatch(DomainError):
    status, slug, title = 422, "account-mismatch", "The role acts in another account"


class ExternalIdNotEnforced(DomainError):
    status, slug, title = 422, "external-id-not-enforced", "The role does not enforce the External ID"


class TrustPolicyTooBroad(DomainError):
    status, slug, title = 422, "trust-policy-too-broad", "The role's trust policy is too broad"


class AwsUnavailable(DomainError):
    status, slug, title = 503, "aws-unavailable", "AWS did not answer"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "30"})


def _fix_trust_policy(external_id: str) -> str:
    scanner = get_settings().scanner_principal_arn
    return (f'Fix the role\'s trust policy so that it allows sts:AssumeRole only for {scanner} with '
            f'"Condition": {{"StringEquals": {{"sts:ExternalId": "{external_id}"}}}} — updating the stack with '
            f"our CloudFormation template (cfn/cloudwizard-role.yaml) sets exactly that — then verify again.")


@dataclass
class Inspection:
    account_id: str
    caller_arn: str
    missing: list[dict[str, Any]] = field(default_factory=list)


class AssumeAuditTrail:
    """Collects the AssumeRole events of one operation so they can be written where they will survive."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def _kwargs(self, workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal | None,
                event: dict[str, Any]) -> dict[str, Any]:
        details = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in event.items() if k != "action"}
        return dict(workspace_id=workspace_id, actor=actor, action="aws.assume_role", target_type="aws_account",
                    target_id=account_id, details=details)

    async def write(self, session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                    actor: Principal | None) -> None:
        for event in self.events:
            await audit.record(session, **self._kwargs(workspace_id, account_id, actor, event))
        self.events.clear()

    async def write_independent(self, workspace_id: uuid.UUID, account_id: uuid.UUID,
                                actor: Principal | None) -> None:
        from app.db import session_scope

        async with session_scope() as session:
            await self.write(session, workspace_id, account_id, actor)


def session_name(account_id: uuid.UUID, purpose: str) -> str:
    # Shows up in the customer's CloudTrail: our product, the connection and why we assumed the role.
    return f"CloudWizard-{account_id.hex[:12]}-{purpose}"[:64]


def _assumed(arn: RoleArn, external_id: str | None, account: AwsAccount, purpose: str,
             trail: AssumeAuditTrail) -> AssumedRole:
    return AssumedRole(arn, external_id, session_name=session_name(account.id, purpose),
                       duration_seconds=get_settings().assume_role_duration_seconds, on_assume=trail)


async def inspect_role(arn: RoleArn, account: AwsAccount, trail: AssumeAuditTrail,
                       probes: Iterable[Probe] = PROBES) -> Inspection:
    """Run every verification step against AWS; raise a DomainError that says how to fix a failure."""
    external_id = account.external_id
    scanner = get_settings().scanner_principal_arn
    assumed = _assumed(arn, external_id, account, "verify", trail)
    try:
        await assumed.start()
    except AssumeRoleDenied as exc:
        raise RoleNotAssumable(
            f"AssumeRole on {arn} with this connection's External ID was denied ({exc.message}). Check that "
            f"the CloudFormation stack finished creating in account {arn.account_id}, that its ExternalId "
            f"parameter is {external_id} and its ScannerPrincipalArn is {scanner}.") from exc
    except AwsCallError as exc:
        raise AwsUnavailable(f"AssumeRole on {arn} failed: {exc.code}: {exc.message}") from exc

    try:
        identity = await verify_identity(assumed)
    except AwsCallError as exc:
        if exc.code == "AccountMismatch":
            raise AccountMismatch(f"The credentials of {arn} act in another account ({exc.message}).") from exc
        raise AwsUnavailable(f"GetCallerIdentity failed: {exc.code}: {exc.message}") from exc

    for label, wrong_id in (("without an External ID", None),
                            ("with a wrong External ID", f"cw-{secrets.token_urlsafe(24)}")):
        try:
            await _assumed(arn, wrong_id, account, "confused-deputy-check", trail).start()
        except AssumeRoleDenied:
            continue
        except AwsCallError as exc:
            raise AwsUnavailable(f"Could not complete the External ID check: {exc.code}: {exc.message}") from exc
        raise ExternalIdNotEnforced(
            f"The role accepted AssumeRole {label}, so anyone who learns its ARN could make their scanner read "
            f"your account (the confused-deputy problem). We did not connect. {_fix_trust_policy(external_id)}")

    missing: list[dict[str, Any]] = []
    try:
        async with assumed.client("iam", assumed.sts_region) as iam:
            role = (await iam.get_role(RoleName=arn.name))["Role"]
        problems = trust_policy_problems(role.get("AssumeRolePolicyDocument") or {})
        if problems:
            raise TrustPolicyTooBroad(" ".join(problems) + " " + _fix_trust_policy(external_id))
    except (ClientError, BotoCoreError) as exc:
        err = AwsCallError.from_exception(exc, service="iam", operation="GetRole")
        missing.append({"service": "iam", "action": "iam:GetRole",
                        "reason": "denied" if err.is_access_denied else "error",
                        "error_code": err.code, "message": err.message[:300]})

    region = account.regions[0] if account.regions else PARTITION_STS_REGION[arn.partition]
    missing.extend(await run_probes(assumed, probes, region))
    return Inspection(account_id=identity.account_id, caller_arn=identity.arn, missing=missing)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def trust_policy_problems(document: dict[str, Any]) -> list[str]:
    """What in a trust policy lets someone other than us, or us without the External ID, assume the role."""
    problems = []
    for st in _as_list(document.get("Statement", [])):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(st.get("Action", []))]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal")
        aws_principals = _as_list(principal.get("AWS", [])) if isinstance(principal, dict) else [principal]
        if principal == "*" or "*" in aws_principals:
            problems.append("The trust policy lets any AWS principal (`*`) assume the role.")
        if not aws_principals or aws_principals == [None]:
            continue  # a service or federated principal: not a cross-account trust
        condition = st.get("Condition") or {}
        keys = {k.lower() for op, kv in condition.items() if op.lower() == "stringequals" and isinstance(kv, dict)
                for k in kv}
        if "sts:externalid" not in keys:
            problems.append(f"The statement trusting {', '.join(map(str, aws_principals))} does not require "
                            "`StringEquals` on `sts:ExternalId`.")
    return problems


async def run_probes(assumed: AssumedRole, probes: Iterable[Probe], region: str) -> list[dict[str, Any]]:
    """One cheap read per service; AccessDenied means a missing permission, anything else an error."""
    limit = asyncio.Semaphore(PROBE_CONCURRENCY)
    global_region = PARTITION_STS_REGION[assumed.role.partition]

    async def probe(p: Probe) -> dict[str, Any] | None:
        async with limit:
            try:
                async with assumed.client(p.client, region if p.regional else global_region) as client:
                    await getattr(client, xform_name(p.operation))(**p.params)
                return None
            except (ClientError, BotoCoreError) as exc:
                err = AwsCallError.from_exception(exc, service=p.client, operation=p.operation)
                return {"service": p.service, "action": p.action,
                        "reason": "denied" if err.code in ACCESS_DENIED_CODES else "error",
                        "error_code": err.code, "message": err.message[:300]}
            except ReadOnlyViolation as exc:  # a probe outside the allowlist is our bug; report, don't crash
                return {"service": p.service, "action": p.action, "reason": "error",
                        "error_code": "ReadOnlyViolation", "message": str(exc)[:300]}

    results = await asyncio.gather(*(probe(p) for p in probes))
    return [r for r in results if r is not None]


async def verify(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal,
                 role_arn: str) -> AwsAccount:
    account = await get_or_404(session, workspace_id, account_id, for_update=True)
    if account.status == AccountStatus.disconnected:
        raise Conflict("This connection was disconnected; create a new one to connect the account again.")
    now = datetime.now(UTC)
    if (account.status == AccountStatus.pending and account.external_id_expires_at
            and account.external_id_expires_at <= now):
        raise ExternalIdExpired("This connection's External ID expired. Regenerate it "
                                "(POST .../external-id), update the stack's ExternalId parameter, and verify again.")
    try:
        arn = parse_role_arn(role_arn)
    except InvalidRoleArn as exc:
        raise InvalidInput.field("role_arn", str(exc)) from exc
    if account.aws_account_id and account.aws_account_id != arn.account_id:
        raise InvalidInput.field("role_arn", f"This connection is for AWS account {account.aws_account_id}; "
                                             f"create a new connection for {arn.account_id}.")
    duplicate = await session.scalar(
        scoped(AwsAccount, workspace_id).where(
            AwsAccount.aws_account_id == arn.account_id, AwsAccount.id != account.id,
            AwsAccount.status != AccountStatus.disconnected).with_only_columns(AwsAccount.id))
    if duplicate is not None:
        raise AccountAlreadyConnected(f"AWS account {arn.account_id} is already connected in this workspace "
                                      f"(connection {duplicate}).")

    trail = AssumeAuditTrail()
    try:
        result = await inspect_role(arn, account, trail)
    except DomainError as exc:
        # The request rolls back; the AssumeRole attempts (and a revocation) must still be recorded.
        await trail.write_independent(workspace_id, account.id, actor)
        if isinstance(exc, RoleNotAssumable) and account.status in (AccountStatus.connected,
                                                                     AccountStatus.degraded):
            await _mark_revoked_independent(workspace_id, account.id, actor, exc.detail)
        raise

    await trail.write(session, workspace_id, account.id, actor)
    denied = [m for m in result.missing if m["reason"] == "denied"]
    new_status = AccountStatus.degraded if denied else AccountStatus.connected
    previous = account.status
    reason = (f"Missing permissions: {', '.join(m['action'] for m in denied)}" if denied else None)
    account.role_arn = str(arn)
    account.partition = arn.partition
    account.aws_account_id = result.account_id
    account.missing_permissions = result.missing
    account.last_verified_at = now
    account.external_id_expires_at = None  # a verified External ID no longer expires
    if account.connected_at is None:
        account.connected_at = now
    set_status(account, new_status, reason)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.verified",
                       target_type="aws_account", target_id=account.id,
                       details={"role_arn": str(arn), "aws_account_id": result.account_id,
                                "previous_status": previous.value, "status": new_status.value,
                                "missing_permissions": [m["action"] for m in result.missing]})
    return account


class ExternalIdExpired(DomainError):
    status, slug, title = 409, "external-id-expired", "The External ID expired"


class AccountAlreadyConnected(DomainError):
    status, slug, title = 409, "account-already-connected", "AWS account already connected"


async def _mark_revoked_independent(workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal | None,
                                    reason: str) -> None:
    from app.db import session_scope

    async with session_scope() as session:
        account = await get_or_404(session, workspace_id, account_id, for_update=True)
        previous = account.status
        if set_status(account, AccountStatus.revoked, reason[:1000]):
            await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.revoked",
                               target_type="aws_account", target_id=account_id,
                               details={"previous_status": previous.value})


async def reverify(account_id: uuid.UUID) -> AccountStatus | None:
    """The periodic cheap check of one connected account: AssumeRole + GetCallerIdentity.

    Denied -> revoked (audited as a system action). Other failures change nothing (AWS may be having a bad
    minute); they are logged and retried on the next run. Returns the resulting status.
    """
    from app.db import session_scope

    async with session_scope() as session:
        account = await session.get(AwsAccount, account_id)
        if account is None or account.status not in (AccountStatus.connected, AccountStatus.degraded):
            return account.status if account else None
        workspace_id, arn = account.workspace_id, parse_role_arn(account.role_arn or "")
        snapshot = AwsAccount(id=account.id, external_id=account.external_id, regions=account.regions)
    trail = AssumeAuditTrail()
    outcome: str
    try:
        assumed = await _assumed(arn, snapshot.external_id, snapshot, "reverify", trail).start()
        await verify_identity(assumed)
        outcome = "ok"
    except AssumeRoleDenied as exc:
        outcome, message = "revoked", exc.message
    except AwsCallError as exc:
        outcome, message = "error", f"{exc.code}: {exc.message}"
    async with session_scope() as session:
        await trail.write(session, workspace_id, account_id, None)
        account = (await session.scalars(select(AwsAccount).where(AwsAccount.id == account_id)
                                          .with_for_update())).one()
        if account.status not in (AccountStatus.connected, AccountStatus.degraded):
            return account.status  # changed by a user meanwhile
        if outcome == "ok":
            account.last_verified_at = datetime.now(UTC)
        elif outcome == "revoked":
            previous = account.status
            set_status(account, AccountStatus.revoked,
                       f"AssumeRole is now denied ({message}); the role was removed or no longer trusts us.")
            await audit.record(session, workspace_id=workspace_id, actor=None, action="aws_account.revoked",
                               target_type="aws_account", target_id=account_id,
                               details={"previous_status": previous.value})
        else:
            log.warning("aws_account.reverify_failed", account_id=str(account_id), error=message)
        return account.status
