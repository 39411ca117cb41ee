"""Resource-policy analysis shared by the data-store checks: which statements make a resource public.

Built on policyuniverse: an Allow statement is public when its principal is anyone ("*", an account "*",
NotPrincipal) and no condition limits it to known callers (aws:SourceVpc/SourceVpce, aws:SourceIp other
than /0, aws:PrincipalOrgID, aws:SourceArn/SourceAccount/PrincipalAccount, aws:userid...). Negated
operators (StringNotEquals...) limit nothing and are ignored, like AWS's own "public" evaluation.
"""

from __future__ import annotations

from typing import Any

from policyuniverse.statement import Statement


def _statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not policy:
        return []
    raw = policy.get("Statement", [])
    raw = raw if isinstance(raw, list) else [raw]
    return [s for s in raw if isinstance(s, dict)]


def _is_public(statement: dict[str, Any]) -> bool:
    try:
        return bool(Statement(statement).is_internet_accessible())
    except Exception:  # noqa: BLE001 - an odd shape policyuniverse cannot parse: judge it conservatively
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        return statement.get("Effect") == "Allow" and "*" in repr(principal)


def public_statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The Allow statements of `policy` that grant access to anyone."""
    return [s for s in _statements(policy) if _is_public(s)]


def summarize(statement: dict[str, Any]) -> dict[str, Any]:
    """What a finding shows about a statement: who, what, and which condition keys (not their values)."""
    condition = statement.get("Condition") or {}
    keys = sorted({key for tests in condition.values() if isinstance(tests, dict) for key in tests})
    return {
        "sid": statement.get("Sid"),
        "principal": statement.get("Principal", statement.get("NotPrincipal")),
        "actions": statement.get("Action", statement.get("NotAction")),
        "condition_keys": keys,
    }
