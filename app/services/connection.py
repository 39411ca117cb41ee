"""Verifying a customer's role and keeping connection state true.

Verify proves, in order: we can assume the role with this connection's External ID; the credentials act
in the account named by the ARN; the role refuses AssumeRole without an External ID and with a wrong
one (confused-deputy protection); its trust policy trusts no `*` principal and demands `sts:ExternalId`
wherever it trusts us; and which services it can read (one cheap probe per service). Every AssumeRole is
audited, including refused ones, in a transaction of its own so that the record survives a failed request.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import aioboto3
import structlog
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import Principal
from app.aws.errors import ACCESS_DENIED_CODES, AssumeRoleDenied, AwsCallError, InvalidRoleArn
from app.aws.guard import ReadOnlyViolation
from app.aws.permissions import PROBES, Probe
from app.aws.session import (
    PARTITION_STS_REGION,
    AssumedRole,
    RoleArn,
    parse_role_arn,
    scanner_session,
    verify_identity,
)
from app.config import get_settings
from app.errors import Conflict, DomainError, InvalidInput
from app.models import AccountStatus, AwsAccount
from app.services import audit
from app.services.aws_accounts import get_or_404, set_status
from app.services.scoping import scoped

log = structlog.get_logger(__name__)

# Probes hit 34 different services, so AWS throttling is not the limit; creating each client is CPU work
# on the event loop, which more concurrency does not speed up (measured: 4, 8, 16 and 34 all within noise).
PROBE_CONCURRENCY = 8
LIVE_STATUSES = (AccountStatus.connected, AccountStatus.degraded)

# "You may not": the role lacks the permission (app.aws.errors.ACCESS_DENIED_CODES, which includes the
# common-errors NotAuthorized "You do not have permission to perform this action").
# "You may, but this account does not use the service (here)": not a missing permission, and nothing for a
# scan to read there, so the probe passes. Common to every query/JSON API: OptInRequired / (JSON)
# SubscriptionRequiredException "The AWS access key ID needs a subscription for the service"; EC2 sends
# OptInRequired too; S3 answers NotSignedUp "Your account is not signed up for the Amazon S3 service".
SERVICE_NOT_ENABLED_CODES = frozenset({"OptInRequired", "SubscriptionRequiredException", "NotSignedUp"})
# Per service, because these codes mean other things elsewhere. Security Hub answers DescribeHub with
# InvalidAccessException "Account ... is not subscribed to AWS Security Hub" until it is enabled in the
# region (a missing permission is AccessDeniedException). The other probes (GuardDuty ListDetectors, Config
# DescribeConfigurationRecorders, Access Analyzer ListAnalyzers, ...) answer an empty list when the service
# is off, so they need no entry.
SERVICE_NOT_ENABLED_BY_SERVICE: dict[str, frozenset[str]] = {
    "securityhub": frozenset({"InvalidAccessException"}),
}


def probe_outcome(client: str, code: str) -> str:
    """How a failed probe counts: "passed" (service not enabled), "denied" or "error"."""
    if code in SERVICE_NOT_ENABLED_CODES or code in SERVICE_NOT_ENABLED_BY_SERVICE.get(client, ()):
        return "passed"
    return "denied" if code in ACCESS_DENIED_CODES else "error"


class RoleNotAssumable(DomainError):
    status, slug, title = 422, "role-not-assumable", "The role cannot be assumed"


class AccountMismatch(DomainError):
    status, slug, title = 422, "account-mismatch", "The role acts in another account"


class ExternalIdNotEnforced(DomainError):
    status, slug, title = 422, "external-id-not-enforced", "The role does not enforce the External ID"


class TrustPolicyTooBroad(DomainError):
    status, slug, title = 422, "trust-policy-too-broad", "The role's trust policy is too broad"


class ExternalIdExpired(DomainError):
    status, slug, title = 409, "external-id-expired", "The External ID expired"


class AccountAlreadyConnected(DomainError):
    status, slug, title = 409, "account-already-connected", "AWS account already connected"


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

    async def write(self, session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                    actor: Principal | None) -> None:
        for event in self.events:
            details = {k: (v.isoformat() if isinstance(v, datetime) else v)
                       for k, v in event.items() if k != "action"}
            await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws.assume_role",
                               target_type="aws_account", target_id=account_id, details=details)
        self.events.clear()

    async def write_independent(self, workspace_id: uuid.UUID, account_id: uuid.UUID,
                                actor: Principal | None) -> None:
        if not self.events:
            return
        from app.db import session_scope

        async with session_scope() as session:
            await self.write(session, workspace_id, account_id, actor)


def session_name(account_id: uuid.UUID, purpose: str) -> str:
    # Shows up in the customer's CloudTrail: our product, the whole connection id and why we assumed the role.
    return f"CloudWizard-{account_id.hex}-{purpose}"[:64]


def _assumed(arn: RoleArn, external_id: str | None, account_id: uuid.UUID, purpose: str,
             trail: AssumeAuditTrail, scanner: aioboto3.Session | None = None) -> AssumedRole:
    return AssumedRole(arn, external_id, session_name=session_name(account_id, purpose),
                       duration_seconds=get_settings().assume_role_duration_seconds, on_assume=trail,
                       scanner=scanner)


def _policy_document(value: Any) -> dict[str, Any]:
    """A trust policy as IAM returns it: botocore decodes it to a dict; be safe if it is still text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for text in (value, unquote(value)):
            try:
                parsed = json.loads(text)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return {}


async def inspect_role(arn: RoleArn, account: AwsAccount, trail: AssumeAuditTrail,
                       probes: Iterable[Probe] = PROBES) -> Inspection:
    """Run every verification step against AWS; raise a DomainError that says how to fix a failure."""
    external_id = account.external_id
    scanner_arn = get_settings().scanner_principal_arn
    # One scanner session for the three AssumeRole calls: its credentials are resolved once, not per call.
    scanner = scanner_session()
    assumed = _assumed(arn, external_id, account.id, "verify", trail, scanner)
    try:
        await assumed.start()
    except AssumeRoleDenied as exc:
        raise RoleNotAssumable(
            f"AssumeRole on {arn} with this connection's External ID was denied ({exc.message}). Check that "
            f"the CloudFormation stack finished creating in account {arn.account_id}, that its ExternalId "
            f"parameter is {external_id} and its ScannerPrincipalArn is {scanner_arn}.") from exc
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
            await _assumed(arn, wrong_id, account.id, "deputy-check", trail, scanner).start()
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
    except (ClientError, BotoCoreError) as exc:
        # The AssumeRole checks above already proved the External ID is enforced for us; without GetRole we
        # only cannot see who else the role trusts, so this degrades the connection instead of refusing it.
        err = AwsCallError.from_exception(exc, service="iam", operation="GetRole")
        missing.append({"service": "iam", "action": "iam:GetRole",
                        "reason": "denied" if err.code in ACCESS_DENIED_CODES else "error",
                        "error_code": err.code, "message": err.message[:300]})
    else:
        problems = trust_policy_problems(_policy_document(role.get("AssumeRolePolicyDocument")), scanner_arn)
        if problems:
            raise TrustPolicyTooBroad(" ".join(problems) + " " + _fix_trust_policy(external_id))

    region = account.regions[0] if account.regions else PARTITION_STS_REGION[arn.partition]
    missing.extend(await run_probes(assumed, probes, region))
    return Inspection(account_id=identity.account_id, caller_arn=identity.arn, missing=missing)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _may_be_scanner(principal: str, scanner_arn: str) -> bool:
    """Whether a Principal.AWS entry lets our scanner in: its ARN, its account (ID or root), or a wildcard."""
    if "*" in principal:
        return True
    parts = scanner_arn.split(":")
    partition, account = parts[1], parts[4]
    return principal in (scanner_arn, account, f"arn:{partition}:iam::{account}:root")


def trust_policy_problems(document: dict[str, Any], scanner_arn: str | None = None) -> list[str]:
    """What in a trust policy lets anyone (`*`) assume the role, or lets us in without the External ID.

    Statements that trust only other principals (the customer's own admin role, another vendor) are the
    customer's business and not a confused-deputy risk through us.
    """
    scanner_arn = scanner_arn or get_settings().scanner_principal_arn
    problems = []
    for st in _as_list(document.get("Statement", [])):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(st.get("Action", [])) if isinstance(a, str)]
        if not any(a in ("sts:assumerole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal")
        aws_principals = [p for p in (_as_list(principal.get("AWS", [])) if isinstance(principal, dict)
                                      else [principal]) if isinstance(p, str)]
        if "*" in aws_principals:
            problems.append("The trust policy lets any AWS principal (`*`) assume the role.")
        trusting_us = [p for p in aws_principals if _may_be_scanner(p, scanner_arn)]
        if not trusting_us:
            continue  # a service, a federated principal or someone else: not a trust in us
        condition = st.get("Condition") or {}
        keys = {k.lower() for op, kv in condition.items() if op.lower() == "stringequals" and isinstance(kv, dict)
                for k in kv} if isinstance(condition, dict) else set()
        if "sts:externalid" not in keys:
            problems.append(f"The statement trusting {', '.join(trusting_us)} does not require "
                            "`StringEquals` on `sts:ExternalId`.")
    return problems


async def run_probes(assumed: AssumedRole, probes: Iterable[Probe], region: str) -> list[dict[str, Any]]:
    """One cheap read per service; returns the probes that did not pass (see `probe_outcome`)."""
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
                outcome = probe_outcome(p.client, err.code)
                if outcome == "passed":
                    return None
                return {"service": p.service, "action": p.action, "reason": outcome,
                        "error_code": err.code, "message": err.message[:300]}
            except ReadOnlyViolation as exc:  # a probe outside the allowlist is our bug; report, don't crash
                return {"service": p.service, "action": p.action, "reason": "error",
                        "error_code": "ReadOnlyViolation", "message": str(exc)[:300]}

    results = await asyncio.gather(*(probe(p) for p in probes))
    return [r for r in results if r is not None]


async def verify(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal,
                 role_arn: str) -> AwsAccount:
    """Check the role and connect the account; a failure changes nothing but the audit log (and marks a
    connected account whose role can no longer be assumed revoked)."""
    # No row lock yet: the AWS calls take seconds, and a revocation must be able to commit meanwhile.
    account = await get_or_404(session, workspace_id, account_id)
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
    await _refuse_duplicate(session, workspace_id, account.id, arn.account_id)

    verified_external_id, previous = account.external_id, account.status
    trail = AssumeAuditTrail()
    try:
        result = await inspect_role(arn, account, trail)
    except BaseException as exc:
        # The request rolls back; the AssumeRole attempts (and a revocation) must still be recorded.
        await trail.write_independent(workspace_id, account.id, actor)
        if isinstance(exc, RoleNotAssumable) and previous in LIVE_STATUSES:
            await _mark_revoked_independent(workspace_id, account.id, actor, exc.detail)
        raise
    # Committed on its own as well: these calls happened even if saving the result below fails.
    await trail.write_independent(workspace_id, account.id, actor)

    await session.refresh(account, with_for_update=True)
    if account.status == AccountStatus.disconnected or account.external_id != verified_external_id:
        raise Conflict("The connection changed while it was being verified (disconnected, or its External ID "
                       "regenerated); check it and verify again.")
    denied = [m for m in result.missing if m["reason"] == "denied"]
    new_status = AccountStatus.degraded if denied else AccountStatus.connected
    previous = account.status
    account.role_arn = str(arn)
    account.partition = arn.partition
    account.aws_account_id = result.account_id
    account.missing_permissions = result.missing
    account.last_verified_at = now
    account.external_id_expires_at = None  # a verified External ID no longer expires
    if account.connected_at is None:
        account.connected_at = now
    set_status(account, new_status,
               f"Missing permissions: {', '.join(m['action'] for m in denied)}" if denied else None)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another connection of this workspace took the AWS account between the check above and now.
        await session.rollback()
        raise AccountAlreadyConnected(f"AWS account {result.account_id} is already connected in this "
                                      "workspace.") from exc
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.verified",
                       target_type="aws_account", target_id=account.id,
                       details={"role_arn": str(arn), "aws_account_id": result.account_id,
                                "previous_status": previous.value, "status": new_status.value,
                                "missing_permissions": [m["action"] for m in result.missing]})
    return account


async def _refuse_duplicate(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID,
                            aws_account_id: str) -> None:
    duplicate = await session.scalar(
        scoped(AwsAccount, workspace_id).where(
            AwsAccount.aws_account_id == aws_account_id, AwsAccount.id != account_id,
            AwsAccount.status != AccountStatus.disconnected).with_only_columns(AwsAccount.id))
    if duplicate is not None:
        raise AccountAlreadyConnected(f"AWS account {aws_account_id} is already connected in this workspace "
                                      f"(connection {duplicate}).")


async def _mark_revoked_independent(workspace_id: uuid.UUID, account_id: uuid.UUID, actor: Principal | None,
                                    reason: str) -> None:
    from app.db import session_scope

    async with session_scope() as session:
        account = await get_or_404(session, workspace_id, account_id, for_update=True)
        previous = account.status
        if previous not in LIVE_STATUSES:
            return  # disconnected (or already revoked) meanwhile
        set_status(account, AccountStatus.revoked, reason[:1000])
        await audit.record(session, workspace_id=workspace_id, actor=actor, action="aws_account.revoked",
                           target_type="aws_account", target_id=account_id,
                           details={"previous_status": previous.value, "reason": reason[:1000]})


async def reverify(account_id: uuid.UUID) -> AccountStatus | None:
    """The periodic cheap check of one connected account: AssumeRole + GetCallerIdentity.

    Denied -> revoked (audited as a system action). Other failures change nothing (AWS may be having a bad
    minute); they are logged and retried on the next run. Returns the resulting status (None: no account).
    """
    from app.db import session_scope

    async with session_scope() as session:
        account = await session.get(AwsAccount, account_id)
        if account is None or account.status not in LIVE_STATUSES:
            return account.status if account else None
        workspace_id, external_id = account.workspace_id, account.external_id
        arn = parse_role_arn(account.role_arn or "")
    trail = AssumeAuditTrail()
    message = ""
    try:
        assumed = await _assumed(arn, external_id, account_id, "reverify", trail).start()
        await verify_identity(assumed)
        outcome = "ok"
    except AssumeRoleDenied as exc:
        outcome, message = "revoked", exc.message
    except AwsCallError as exc:
        outcome, message = "error", f"{exc.code}: {exc.message}"
    async with session_scope() as session:
        account = (await session.scalars(select(AwsAccount).where(AwsAccount.id == account_id)
                                          .with_for_update())).one_or_none()
        if account is None:
            return None  # deleted with its workspace meanwhile; nothing left to audit into
        await trail.write(session, workspace_id, account_id, None)
        if account.status not in LIVE_STATUSES:
            return account.status  # changed by a user meanwhile
        if outcome == "ok":
            account.last_verified_at = datetime.now(UTC)
        elif outcome == "revoked":
            previous = account.status
            reason = f"AssumeRole is now denied ({message}); the role was removed or no longer trusts us."
            set_status(account, AccountStatus.revoked, reason[:1000])
            await audit.record(session, workspace_id=workspace_id, actor=None, action="aws_account.revoked",
                               target_type="aws_account", target_id=account_id,
                               details={"previous_status": previous.value, "reason": reason[:1000]})
        else:
            log.warning("aws_account.reverify_failed", account_id=str(account_id), error=message)
        return account.status
