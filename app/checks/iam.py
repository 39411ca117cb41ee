"""IAM, IAM Access Analyzer and account contact checks (CIS AWS Foundations section 1, Security Hub IAM.*)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from app.checks.base import (
    Result,
    Status,
    account_arn,
    account_check,
    account_result,
    failed,
    passed,
    resource_check,
)
from app.scanners.account import AccountSecurityContact
from app.scanners.base import GLOBAL, Inventory
from app.scanners.iam import (
    AccessAnalyzerRegion,
    IamGroup,
    IamManagedPolicy,
    IamPasswordPolicy,
    IamRole,
    IamRootAccount,
    IamServerCertificate,
    IamUser,
    IamUserCredentials,
    IamVirtualMfaDevice,
)

CREDENTIAL_REPORT = frozenset({"iam:GenerateCredentialReport", "iam:GetCredentialReport"})
AUTH_DETAILS = frozenset({"iam:GetAccountAuthorizationDetails"})
PASSWORD_POLICY = frozenset({"iam:GetAccountPasswordPolicy"})

ROOT_RECENT_USE_DAYS = 90          # CIS 1.7: root used within this window is reported for review
UNUSED_CREDENTIAL_DAYS_CIS = 45    # CIS 1.12 / Security Hub IAM.22
UNUSED_CREDENTIAL_DAYS = 90        # Security Hub IAM.8
KEY_ROTATION_DAYS = 90             # CIS 1.14 / IAM.3
UNUSED_ROLE_DAYS = 90
MIN_PASSWORD_LENGTH = 14           # CIS 1.8 / IAM.15
PASSWORD_REUSE_PREVENTION = 24     # CIS 1.9 / IAM.16
MAX_PASSWORD_AGE_DAYS = 90         # IAM.17

ADMIN_POLICY = "AdministratorAccess"
SUPPORT_POLICY = "AWSSupportAccess"
CLOUDSHELL_POLICY = "AWSCloudShellFullAccess"

ASSUME_ACTIONS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")
# Actions that let a principal grant itself any permission: a NotAction statement that leaves one of them
# allowed on every resource is administrator-equivalent.
ESCALATION_ACTIONS = (
    "iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:PutUserPolicy",
    "iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy",
)
# Condition keys that pin a trust to known principals, organizations or source resources.
IDENTITY_KEYS = frozenset({
    "aws:principalorgid", "aws:principalorgpaths", "aws:principalaccount", "aws:principalarn", "aws:userid",
    "aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths", "aws:sourceowner",
})
# What makes a cross-account trust deliberate: an External ID (confused deputy), MFA, or identity pinning.
CROSS_ACCOUNT_KEYS = IDENTITY_KEYS | {"sts:externalid", "sts:sourceidentity", "aws:sourceidentity"}
MFA_KEYS = frozenset({"aws:multifactorauthpresent", "aws:multifactorauthage"})
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_SUB_KEY = f"{GITHUB_OIDC_HOST}:sub"

_POSITIVE_OPS = frozenset({"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"})
_NEGATIVE_OPS = frozenset({"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals",
                           "arnnotlike"})


def _now() -> datetime:
    return datetime.now(UTC)


def _days_since(when: datetime | None, now: datetime) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (now - when).days


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _error(resource_type: str, resource_id: str, region: str, arn: str | None, message: str) -> Result:
    return Result(status=Status.ERROR, message=message, resource_type=resource_type, resource_id=resource_id,
                  region=region, resource_arn=arn)


def _managed_arn(inventory: Inventory, name: str) -> str:
    return f"arn:{inventory.partition}:iam::aws:policy/{name}"


# --------------------------------------------------------------------------------------------------
# Policy document analysis (pure)
# --------------------------------------------------------------------------------------------------

def statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]


def _matches(pattern: str, action: str) -> bool:
    # IAM action matching: case-insensitive, * and ? wildcards (no character classes).
    if not isinstance(pattern, str):
        return False
    return fnmatch.fnmatchcase(action.lower(), pattern.lower().replace("[", "[[]"))


def _covers_all_resources(statement: dict[str, Any]) -> bool:
    if "NotResource" in statement:
        return True  # Allow on everything except a list is, for these checks, everything
    return any(r == "*" for r in _as_list(statement.get("Resource")))


def full_admin_statements(document: dict[str, Any] | None) -> list[str]:
    """Allow statements that grant every action on every resource, or that are administrator-equivalent
    through NotAction (everything except a list that leaves IAM privilege escalation open)."""
    out = []
    for i, st in enumerate(statements(document)):
        if st.get("Effect") != "Allow" or not _covers_all_resources(st):
            continue
        label = str(st.get("Sid") or f"statement {i + 1}")
        if "Action" in st:
            if any(a in ("*", "*:*") for a in _as_list(st["Action"]) if isinstance(a, str)):
                out.append(label)
        elif "NotAction" in st:
            excluded = [a for a in _as_list(st["NotAction"]) if isinstance(a, str)]
            if not all(any(_matches(p, action) for p in excluded) for action in ESCALATION_ACTIONS):
                out.append(f"{label} (NotAction)")
    return out


def service_wildcard_actions(document: dict[str, Any] | None) -> list[str]:
    """Actions of Allow statements that grant every action of a service ("s3:*") or of all services ("*")."""
    found: list[str] = []
    for st in statements(document):
        if st.get("Effect") != "Allow":
            continue
        for action in _as_list(st.get("Action")):
            if isinstance(action, str) and (action in ("*", "*:*") or action.endswith(":*")) \
                    and action not in found:
                found.append(action)
    return found


def _split_operator(operator: str) -> tuple[str, bool, str | None]:
    """(base operator lowercased, IfExists, set qualifier) of a condition operator."""
    op = operator
    qualifier = None
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if op.startswith(prefix):
            qualifier, op = prefix[:-1], op[len(prefix):]
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    return op.lower(), if_exists, qualifier


def _wildcard_only(value: Any) -> bool:
    return not isinstance(value, str) or value.strip("*?") == ""


def _conditions(statement: dict[str, Any]) -> Iterator[tuple[str, bool, str | None, str, list[Any]]]:
    block = statement.get("Condition")
    if not isinstance(block, dict):
        return
    for operator, tests in block.items():
        if not isinstance(operator, str) or not isinstance(tests, dict):
            continue
        op, if_exists, qualifier = _split_operator(operator)
        for key, values in tests.items():
            yield op, if_exists, qualifier, str(key).lower(), _as_list(values)


def restricting_keys(statement: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """Condition keys of an Allow statement, among `keys`, that really narrow it: a positive operator that
    must match (no IfExists, no ForAllValues, which pass when the key is absent) on values that are not
    just wildcards. MFA keys count when they demand MFA."""
    wanted = {k.lower() for k in keys}
    out = []
    for op, if_exists, qualifier, key, values in _conditions(statement):
        if key not in wanted or if_exists or qualifier == "ForAllValues" or not values:
            continue
        if key == "aws:multifactorauthpresent":
            ok = op == "bool" and all(str(v).lower() == "true" for v in values)
        elif key == "aws:multifactorauthage":
            ok = op in ("numericlessthan", "numericlessthanequals") or (
                op == "null" and all(str(v).lower() == "false" for v in values))
        else:
            ok = op in _POSITIVE_OPS and not any(_wildcard_only(v) for v in values)
        if ok and key not in out:
            out.append(key)
    return out


def _denies_outsiders(statement: dict[str, Any]) -> bool:
    """A Deny on everyone unless an identity key matches (the "deny if not my organization" pattern)."""
    if statement.get("Effect") != "Deny" or not _is_public_principal(statement.get("Principal")):
        return False
    if not _grants_assume(statement):
        return False
    return any(op in _NEGATIVE_OPS and qualifier is None and key in IDENTITY_KEYS and values
               and not any(_wildcard_only(v) for v in values)
               for op, _if_exists, qualifier, key, values in _conditions(statement))


def _grants_assume(statement: dict[str, Any]) -> bool:
    if "Action" in statement:
        return any(_matches(p, a) for p in _as_list(statement["Action"]) for a in ASSUME_ACTIONS)
    if "NotAction" in statement:
        excluded = _as_list(statement["NotAction"])
        return not all(any(_matches(p, a) for p in excluded) for a in ASSUME_ACTIONS)
    return False


def _aws_principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [p for p in _as_list(principal.get("AWS")) if isinstance(p, str)]
    return []


def _is_public_principal(principal: Any) -> bool:
    return "*" in _aws_principals(principal)


def _principal_account(value: str) -> str | None:
    """The account of an AWS principal: a bare account id or an IAM/STS ARN; None for unique ids ("AROA...",
    left behind when the principal was deleted) and anything else."""
    if len(value) == 12 and value.isdigit():
        return value
    parts = value.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] in ("iam", "sts") and parts[4].isdigit():
        return parts[4]
    return None


def _allow_assume_statements(role: IamRole) -> list[tuple[int, dict[str, Any]]]:
    return [(i, st) for i, st in enumerate(statements(role.trust_policy))
            if st.get("Effect") == "Allow" and _grants_assume(st)]


def _label(index: int, statement: dict[str, Any]) -> str:
    return str(statement.get("Sid") or f"statement {index + 1}")


# --------------------------------------------------------------------------------------------------
# Root user (credential report <root_account> row)
# --------------------------------------------------------------------------------------------------

def _root(inventory: Inventory) -> IamRootAccount | Result:
    roots = inventory.of(IamRootAccount)
    if not roots:
        return _error("AwsAccount", inventory.account_id, GLOBAL, account_arn(inventory),
                      "Could not evaluate: the credential report has no <root_account> row, so the root user's "
                      "credentials are unknown.")
    return roots[0]  # type: ignore[return-value]


@account_check("iam_root_no_access_keys", requires=CREDENTIAL_REPORT)
def iam_root_no_access_keys(inventory: Inventory) -> Result:
    root = _root(inventory)
    if isinstance(root, Result):
        return root
    active = [k.slot for k in root.active_keys]
    if active:
        return failed(root, f"The root user has {len(active)} active access key(s).", active_key_slots=active)
    present = [k.slot for k in root.access_keys if k.last_rotated is not None]
    if present:
        return passed(root, "The root user has no active access key (inactive keys exist: delete them).",
                      inactive_key_slots=present)
    return passed(root, "The root user has no access keys.")


@account_check("iam_root_mfa_enabled", requires=CREDENTIAL_REPORT)
def iam_root_mfa_enabled(inventory: Inventory) -> Result:
    root = _root(inventory)
    if isinstance(root, Result):
        return root
    if root.mfa_active:
        return passed(root, "MFA is enabled for the root user.")
    return failed(root, "MFA is not enabled for the root user.")


@account_check("iam_root_hardware_mfa_enabled", requires=CREDENTIAL_REPORT | {"iam:ListVirtualMFADevices"})
def iam_root_hardware_mfa_enabled(inventory: Inventory) -> Result:
    root = _root(inventory)
    if isinstance(root, Result):
        return root
    if not root.mfa_active:
        return failed(root, "The root user has no MFA device at all.")
    virtual = [d.resource_id for d in inventory.of(IamVirtualMfaDevice) if d.belongs_to_root]  # type: ignore[attr-defined]
    if virtual:
        return failed(root, "The root user's MFA is a virtual (software) device, not a hardware one.",
                      virtual_devices=virtual)
    return passed(root, "The root user's MFA is not a virtual device (hardware token or security key).")


@account_check("iam_root_not_recently_used", requires=CREDENTIAL_REPORT)
def iam_root_not_recently_used(inventory: Inventory) -> Result:
    root = _root(inventory)
    if isinstance(root, Result):
        return root
    now = _now()
    uses = {"password": root.password_last_used}
    uses.update({f"access key {k.slot}": k.last_used for k in root.access_keys})
    recent = {what: days for what, when in uses.items()
              if (days := _days_since(when, now)) is not None and days <= ROOT_RECENT_USE_DAYS}
    if recent:
        latest = min(recent.values())
        return failed(root, f"The root user was used {latest} day(s) ago "
                            f"({', '.join(f'{w}: {d} days ago' for w, d in sorted(recent.items()))}).",
                      last_used={w: _iso(uses[w]) for w in recent})
    last = max((w for w in uses.values() if w), default=None)
    if last is None:
        return passed(root, "The credential report shows no use of the root user.")
    return passed(root, f"The root user was last used {_days_since(last, now)} days ago "
                        f"(more than {ROOT_RECENT_USE_DAYS}).", last_used=_iso(last))


# --------------------------------------------------------------------------------------------------
# Password policy
# --------------------------------------------------------------------------------------------------

def _no_policy(policy: IamPasswordPolicy) -> Result:
    return failed(policy, "The account has no IAM password policy: AWS defaults apply (8 characters, no "
                          "reuse prevention, no expiry).")


@resource_check("iam_password_policy_minimum_length_14", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_minimum_length_14(policy: IamPasswordPolicy) -> Result:
    if not policy.configured:
        return _no_policy(policy)
    n = policy.minimum_length or 0
    if n >= MIN_PASSWORD_LENGTH:
        return passed(policy, f"The password policy requires at least {n} characters.")
    return failed(policy, f"The password policy requires only {n} characters (at least {MIN_PASSWORD_LENGTH} "
                          "required).", minimum_length=n)


@resource_check("iam_password_policy_reuse_prevention_24", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_reuse_prevention_24(policy: IamPasswordPolicy) -> Result:
    if not policy.configured:
        return _no_policy(policy)
    n = policy.reuse_prevention or 0
    if n >= PASSWORD_REUSE_PREVENTION:
        return passed(policy, f"The password policy prevents reuse of the last {n} passwords.")
    if n == 0:
        return failed(policy, "The password policy does not prevent password reuse.")
    return failed(policy, f"The password policy prevents reuse of only the last {n} passwords "
                          f"({PASSWORD_REUSE_PREVENTION} required).", reuse_prevention=n)


def _requirement(policy: IamPasswordPolicy, required: bool, what: str) -> Result:
    if not policy.configured:
        return _no_policy(policy)
    if required:
        return passed(policy, f"The password policy requires at least one {what}.")
    return failed(policy, f"The password policy does not require any {what}.")


@resource_check("iam_password_policy_uppercase", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_uppercase(policy: IamPasswordPolicy) -> Result:
    return _requirement(policy, policy.require_uppercase, "uppercase letter")


@resource_check("iam_password_policy_lowercase", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_lowercase(policy: IamPasswordPolicy) -> Result:
    return _requirement(policy, policy.require_lowercase, "lowercase letter")


@resource_check("iam_password_policy_number", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_number(policy: IamPasswordPolicy) -> Result:
    return _requirement(policy, policy.require_numbers, "number")


@resource_check("iam_password_policy_symbol", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_symbol(policy: IamPasswordPolicy) -> Result:
    return _requirement(policy, policy.require_symbols, "symbol")


@resource_check("iam_password_policy_expires_90_days", IamPasswordPolicy, requires=PASSWORD_POLICY)
def iam_password_policy_expires_90_days(policy: IamPasswordPolicy) -> Result:
    if not policy.configured:
        return _no_policy(policy)
    age = policy.max_age_days
    if not policy.expire_passwords or not age:
        return failed(policy, "The password policy never expires passwords.")
    if age <= MAX_PASSWORD_AGE_DAYS:
        return passed(policy, f"Passwords expire after {age} days.")
    return failed(policy, f"Passwords expire only after {age} days (at most {MAX_PASSWORD_AGE_DAYS} required).",
                  max_age_days=age)


# --------------------------------------------------------------------------------------------------
# Users: credentials (credential report)
# --------------------------------------------------------------------------------------------------

@resource_check("iam_user_console_mfa_enabled", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_console_mfa_enabled(user: IamUserCredentials) -> Result:
    if not user.password_enabled:
        return passed(user, f"User {user.resource_id} has no console password.")
    if user.mfa_active:
        return passed(user, f"User {user.resource_id} has a console password and MFA.")
    return failed(user, f"User {user.resource_id} can sign in to the console with a password alone (no MFA).")


@resource_check("iam_user_mfa_enabled", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_mfa_enabled(user: IamUserCredentials) -> Result:
    if user.mfa_active:
        return passed(user, f"User {user.resource_id} has MFA enabled.")
    return failed(user, f"User {user.resource_id} has no MFA device.")


@resource_check("iam_user_no_unused_setup_access_key", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_no_unused_setup_access_key(user: IamUserCredentials) -> Result:
    if not user.password_enabled:
        return passed(user, f"User {user.resource_id} has no console password.")
    never_used = [k for k in user.active_keys if k.last_used is None]
    if never_used:
        return failed(user, f"Console user {user.resource_id} has {len(never_used)} active access key(s) that "
                            "were never used.",
                      keys={f"access_key_{k.slot}": {"created": _iso(k.last_rotated)} for k in never_used})
    return passed(user, f"Console user {user.resource_id} has no active access key that was never used.")


def _stale_credentials(user: IamUserCredentials, days: int, now: datetime) -> dict[str, int]:
    """Credentials unused for more than `days`; never-used ones count from when they were set."""
    stale: dict[str, int] = {}
    if user.password_enabled:
        reference = user.password_last_used or user.password_last_changed or user.created
        age = _days_since(reference, now)
        if age is not None and age > days:
            stale["password"] = age
    for key in user.active_keys:
        age = _days_since(key.last_used or key.last_rotated, now)
        if age is not None and age > days:
            stale[f"access key {key.slot}"] = age
    return stale


def _unused_credentials(user: IamUserCredentials, days: int) -> Result:
    stale = _stale_credentials(user, days, _now())
    if stale:
        listed = ", ".join(f"{what} unused for {age} days" for what, age in stale.items())
        return failed(user, f"User {user.resource_id} has credentials unused for more than {days} days: {listed}.",
                      unused_days=stale)
    if not user.password_enabled and not user.active_keys:
        return passed(user, f"User {user.resource_id} has no password and no active access key.")
    return passed(user, f"Every credential of user {user.resource_id} was used (or set) in the last {days} days.")


@resource_check("iam_user_credentials_unused_45_days", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_credentials_unused_45_days(user: IamUserCredentials) -> Result:
    return _unused_credentials(user, UNUSED_CREDENTIAL_DAYS_CIS)


@resource_check("iam_user_credentials_unused_90_days", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_credentials_unused_90_days(user: IamUserCredentials) -> Result:
    return _unused_credentials(user, UNUSED_CREDENTIAL_DAYS)


@resource_check("iam_user_single_active_access_key", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_single_active_access_key(user: IamUserCredentials) -> Result:
    n = len(user.active_keys)
    if n > 1:
        return failed(user, f"User {user.resource_id} has {n} active access keys.")
    return passed(user, f"User {user.resource_id} has {n} active access key(s).")


@resource_check("iam_user_access_keys_rotated_90_days", IamUserCredentials, requires=CREDENTIAL_REPORT)
def iam_user_access_keys_rotated_90_days(user: IamUserCredentials) -> Result:
    now = _now()
    old: dict[str, int] = {}
    for key in user.active_keys:
        age = _days_since(key.last_rotated, now)
        if age is not None and age > KEY_ROTATION_DAYS:
            old[f"access_key_{key.slot}"] = age
    if old:
        return failed(user, f"User {user.resource_id} has active access keys older than {KEY_ROTATION_DAYS} days "
                            f"({', '.join(f'{k}: {d} days' for k, d in old.items())}).", key_age_days=old)
    if not user.active_keys:
        return passed(user, f"User {user.resource_id} has no active access key.")
    return passed(user, f"Every active access key of user {user.resource_id} is at most {KEY_ROTATION_DAYS} "
                        "days old.")


# --------------------------------------------------------------------------------------------------
# Users, groups and policies (authorization details)
# --------------------------------------------------------------------------------------------------

@resource_check("iam_user_no_direct_policies", IamUser, requires=AUTH_DETAILS)
def iam_user_no_direct_policies(user: IamUser) -> Result:
    attached = [p.name for p in user.attached_policies]
    inline = [p.name for p in user.inline_policies]
    if attached or inline:
        return failed(user, f"User {user.resource_id} has policies of its own "
                            f"({len(attached)} attached, {len(inline)} inline) instead of through groups.",
                      attached_policies=attached, inline_policies=inline)
    return passed(user, f"User {user.resource_id} receives permissions only through groups.")


def _policies_by_arn(inventory: Inventory) -> dict[str, IamManagedPolicy]:
    return {p.arn: p for p in inventory.of(IamManagedPolicy) if p.arn}  # type: ignore[misc]


def _admin_grants(inventory: Inventory, attached: list, inline: list,
                  policies: dict[str, IamManagedPolicy]) -> list[str]:
    admin_arn = _managed_arn(inventory, ADMIN_POLICY)
    grants = []
    for p in attached:
        if p.arn == admin_arn:
            grants.append(f"managed policy {ADMIN_POLICY}")
        elif p.arn in policies and full_admin_statements(policies[p.arn].document):
            grants.append(f"managed policy {p.name}")
    for p in inline:
        if full_admin_statements(p.document):
            grants.append(f"inline policy {p.name}")
    return grants


@account_check("iam_user_no_administrator_access", requires=AUTH_DETAILS)
def iam_user_no_administrator_access(inventory: Inventory) -> Iterator[Result]:
    policies = _policies_by_arn(inventory)
    for user in inventory.of(IamUser):
        assert isinstance(user, IamUser)
        grants = _admin_grants(inventory, user.attached_policies, user.inline_policies, policies)
        if grants:
            yield failed(user, f"User {user.resource_id} holds full administrator rights directly through "
                               f"{', '.join(grants)}.", grants=grants)
        else:
            yield passed(user, f"User {user.resource_id} has no administrator policy attached directly.")


def _customer_policy_admin(policy: IamManagedPolicy) -> Result:
    offending = full_admin_statements(policy.document)
    attached = f"attached to {policy.attachment_count} identit{'y' if policy.attachment_count == 1 else 'ies'}"
    if offending:
        return failed(policy, f"Customer managed policy {policy.resource_id} ({attached}) grants full "
                              f"administrative privileges (\"*\" on \"*\") in {', '.join(offending)}.",
                      statements=offending, attachment_count=policy.attachment_count)
    return passed(policy, f"Customer managed policy {policy.resource_id} ({attached}) does not grant full "
                          "administrative privileges.")


@resource_check("iam_customer_attached_policy_no_admin", IamManagedPolicy, requires=AUTH_DETAILS)
def iam_customer_attached_policy_no_admin(policy: IamManagedPolicy) -> Result | None:
    if policy.attachment_count == 0:
        return None  # reported by iam_customer_unattached_policy_no_admin
    return _customer_policy_admin(policy)


@resource_check("iam_customer_unattached_policy_no_admin", IamManagedPolicy, requires=AUTH_DETAILS)
def iam_customer_unattached_policy_no_admin(policy: IamManagedPolicy) -> Result | None:
    if policy.attachment_count > 0:
        return None  # reported by iam_customer_attached_policy_no_admin
    return _customer_policy_admin(policy)


@account_check("iam_inline_policy_no_admin", requires=AUTH_DETAILS)
def iam_inline_policy_no_admin(inventory: Inventory) -> Iterator[Result]:
    for kind in (IamUser, IamGroup, IamRole):
        for identity in inventory.of(kind):
            inline = getattr(identity, "inline_policies", [])
            if not inline:
                continue
            offending = {p.name: s for p in inline if (s := full_admin_statements(p.document))}
            noun = kind.resource_type.removeprefix("AwsIam").lower()
            label = f"{noun} {identity.resource_id}"
            result = (failed(identity, f"Inline policies of {label} grant full administrative privileges: "
                                       f"{', '.join(offending)}.", policies=offending) if offending
                      else passed(identity, f"No inline policy of {label} grants full administrative privileges."))
            # Users, groups and roles share this check and may share a name: "role/app" keeps findings apart.
            result.resource_id = f"{noun}/{identity.resource_id}"
            yield result


@resource_check("iam_customer_policy_no_service_wildcard", IamManagedPolicy, requires=AUTH_DETAILS)
def iam_customer_policy_no_service_wildcard(policy: IamManagedPolicy) -> Result:
    wildcards = service_wildcard_actions(policy.document)
    if wildcards:
        return failed(policy, f"Customer managed policy {policy.resource_id} allows every action of a service: "
                              f"{', '.join(wildcards)}.", actions=wildcards)
    return passed(policy, f"Customer managed policy {policy.resource_id} allows no service-wide wildcard action.")


def _holders(inventory: Inventory, policy_arn: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"users": [], "groups": [], "roles": []}
    for key, kind in (("users", IamUser), ("groups", IamGroup), ("roles", IamRole)):
        for identity in inventory.of(kind):
            if any(p.arn == policy_arn for p in getattr(identity, "attached_policies", [])):
                out[key].append(identity.resource_id)
    return out


@account_check("iam_support_role_exists", requires=AUTH_DETAILS)
def iam_support_role_exists(inventory: Inventory) -> Result:
    roles = _holders(inventory, _managed_arn(inventory, SUPPORT_POLICY))["roles"]
    if roles:
        return account_result(inventory, True, f"{len(roles)} role(s) have {SUPPORT_POLICY} attached: "
                                               f"{', '.join(sorted(roles))}.", roles=sorted(roles))
    return account_result(inventory, False, f"No IAM role has the {SUPPORT_POLICY} policy attached: nobody can "
                                            "manage AWS Support cases through a role.")


@account_check("iam_cloudshell_full_access_restricted", requires=AUTH_DETAILS)
def iam_cloudshell_full_access_restricted(inventory: Inventory) -> Result:
    holders = _holders(inventory, _managed_arn(inventory, CLOUDSHELL_POLICY))
    if any(holders.values()):
        listed = "; ".join(f"{k}: {', '.join(sorted(v))}" for k, v in holders.items() if v)
        return account_result(inventory, False, f"{CLOUDSHELL_POLICY} is attached to {listed}.",
                              **{k: sorted(v) for k, v in holders.items() if v})
    return account_result(inventory, True, f"{CLOUDSHELL_POLICY} is attached to no user, group or role.")


# --------------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------------

@resource_check("iam_role_trust_not_public", IamRole, requires=AUTH_DETAILS)
def iam_role_trust_not_public(role: IamRole) -> Result:
    if role.trust_policy is None:
        return _error(role.resource_type, role.resource_id, role.region, role.arn,
                      f"Could not evaluate: the trust policy of role {role.resource_id} could not be parsed.")
    fenced = any(_denies_outsiders(st) for st in statements(role.trust_policy))
    open_statements = []
    for i, st in _allow_assume_statements(role):
        if _is_public_principal(st.get("Principal")) and not fenced \
                and not restricting_keys(st, IDENTITY_KEYS):
            open_statements.append(_label(i, st))
    if open_statements:
        return failed(role, f"Role {role.resource_id} can be assumed by any AWS principal (Principal \"*\" without "
                            f"a condition on account, organization or source): {', '.join(open_statements)}.",
                      statements=open_statements)
    return passed(role, f"The trust policy of role {role.resource_id} does not open it to any AWS principal.")


@resource_check("iam_role_cross_account_trust_restricted", IamRole, requires=AUTH_DETAILS)
def iam_role_cross_account_trust_restricted(role: IamRole) -> Result:
    if role.trust_policy is None:
        return _error(role.resource_type, role.resource_id, role.region, role.arn,
                      f"Could not evaluate: the trust policy of role {role.resource_id} could not be parsed.")
    own = role.account_id
    unrestricted: dict[str, list[str]] = {}
    trusted: set[str] = set()
    for i, st in _allow_assume_statements(role):
        accounts = {a for p in _aws_principals(st.get("Principal")) if p != "*"
                    if (a := _principal_account(p)) and a != own}
        if not accounts:
            continue
        trusted |= accounts
        if not restricting_keys(st, CROSS_ACCOUNT_KEYS | MFA_KEYS):
            unrestricted[_label(i, st)] = sorted(accounts)
    if unrestricted:
        accounts = sorted({a for v in unrestricted.values() for a in v})
        return failed(role, f"Role {role.resource_id} trusts other accounts ({', '.join(accounts)}) without an "
                            "External ID, MFA or principal/organization condition.",
                      statements=unrestricted, accounts=accounts)
    if trusted:
        return passed(role, f"Role {role.resource_id} trusts other accounts ({', '.join(sorted(trusted))}) only "
                            "under restricting conditions.", accounts=sorted(trusted))
    return passed(role, f"Role {role.resource_id} does not trust other AWS accounts.")


def _github_sub_restricted(statement: dict[str, Any]) -> bool:
    for op, if_exists, qualifier, key, values in _conditions(statement):
        if key != GITHUB_SUB_KEY or if_exists or qualifier == "ForAllValues" or op not in _POSITIVE_OPS:
            continue
        if values and all(_github_subject_pinned(v) for v in values):
            return True
    return False


def _github_subject_pinned(value: Any) -> bool:
    """A subject that names at least an owner: "repo:org/*" yes; "*", "repo:*" or "repo:*/x" no."""
    if _wildcard_only(value):
        return False
    if value.startswith("repo:"):
        owner = value[len("repo:"):].split("/", 1)[0]
        return bool(owner) and "*" not in owner and "?" not in owner
    return not value.startswith(("*", "?"))


@resource_check("iam_role_github_oidc_trust_restricted", IamRole, requires=AUTH_DETAILS)
def iam_role_github_oidc_trust_restricted(role: IamRole) -> Result | None:
    github = []
    for i, st in _allow_assume_statements(role):
        principal = st.get("Principal")
        federated = _as_list(principal.get("Federated")) if isinstance(principal, dict) else []
        if any(isinstance(f, str) and GITHUB_OIDC_HOST in f for f in federated):
            github.append((i, st))
    if not github:
        return None  # the role does not trust GitHub Actions
    open_statements = [_label(i, st) for i, st in github if not _github_sub_restricted(st)]
    if open_statements:
        return failed(role, f"Role {role.resource_id} trusts GitHub Actions OIDC without pinning the token subject "
                            f"({GITHUB_SUB_KEY}) to a repository owner: any GitHub workflow could assume it "
                            f"({', '.join(open_statements)}).", statements=open_statements)
    return passed(role, f"Role {role.resource_id} trusts GitHub Actions OIDC only for named repositories.")


@resource_check("iam_role_unused_90_days", IamRole, requires=AUTH_DETAILS)
def iam_role_unused_90_days(role: IamRole) -> Result | None:
    if role.service_linked:
        return None  # AWS manages service-linked roles' lifecycle
    now = _now()
    used = _days_since(role.last_used, now)
    if used is not None:
        if used <= UNUSED_ROLE_DAYS:
            return passed(role, f"Role {role.resource_id} was used {used} day(s) ago.", last_used=_iso(role.last_used))
        return failed(role, f"Role {role.resource_id} was last used {used} days ago.", last_used=_iso(role.last_used))
    age = _days_since(role.created, now)
    if age is not None and age <= UNUSED_ROLE_DAYS:
        return passed(role, f"Role {role.resource_id} was created {age} day(s) ago and has not been used yet.")
    return failed(role, f"Role {role.resource_id} has no recorded use (IAM tracks the last 400 days)"
                        + (f" and was created {age} days ago." if age is not None else "."))


# --------------------------------------------------------------------------------------------------
# Certificates, Access Analyzer, account contact
# --------------------------------------------------------------------------------------------------

@resource_check("iam_server_certificate_not_expired", IamServerCertificate,
                requires={"iam:ListServerCertificates"})
def iam_server_certificate_not_expired(cert: IamServerCertificate) -> Result:
    if cert.expiration is None:
        return _error(cert.resource_type, cert.resource_id, cert.region, cert.arn,
                      f"Could not evaluate: server certificate {cert.name} has no expiration date.")
    now = _now()
    expiration = cert.expiration if cert.expiration.tzinfo else cert.expiration.replace(tzinfo=UTC)
    if expiration <= now:
        return failed(cert, f"Server certificate {cert.name} expired on {expiration.date().isoformat()}.",
                      expiration=_iso(expiration))
    return passed(cert, f"Server certificate {cert.name} is valid until {expiration.date().isoformat()}.",
                  expiration=_iso(expiration))


EXTERNAL_ACCESS_TYPES = frozenset({"ACCOUNT", "ORGANIZATION"})


@resource_check("accessanalyzer_enabled", AccessAnalyzerRegion, requires={"access-analyzer:ListAnalyzers"})
def accessanalyzer_enabled(region: AccessAnalyzerRegion) -> Result:
    active = [a for a in region.analyzers if a.type in EXTERNAL_ACCESS_TYPES and a.status == "ACTIVE"]
    if active:
        return passed(region, f"IAM Access Analyzer is active in {region.region} ({active[0].name}, "
                              f"{active[0].type.lower()} zone of trust).", analyzers=[a.arn for a in active])
    others = [f"{a.name} ({a.type}, {a.status})" for a in region.analyzers]
    detail = f"; other analyzers: {', '.join(others)}" if others else ""
    return failed(region, f"No active IAM Access Analyzer for external access in {region.region}{detail}.")


@resource_check("account_security_contact_registered", AccountSecurityContact,
                requires={"account:GetAlternateContact"})
def account_security_contact_registered(contact: AccountSecurityContact) -> Result:
    if contact.configured:
        return passed(contact, "A security alternate contact is registered for the account.")
    return failed(contact, "No security alternate contact is registered: AWS security notifications go only "
                           "to the root e-mail address.")

