"""Read-only guard: refuses any AWS call that could change state or read customer data, before it is sent."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from app.aws.readonly import (
    ALLOWED_EXTRA,
    DATA_PLANE_DENY,
    HTTP_VERB_SERVICES,
    OPERATION_ACTION_OVERRIDES,
    READ_ONLY_PREFIXES,
    SECRET_PARAMETERS,
    SERVICE_PREFIX_OVERRIDES,
)

_GUARD_ID = "cloudwizard-readonly-guard"
# The earliest event of every call (also of generate_presigned_url): it fires before parameters are
# validated or serialized, so a refused call never builds a request, let alone sends one.
_GUARD_EVENT = "provide-client-params"

# A read verb followed by a capitalised word: "GetBucketPolicy" yes, "Getaway" or "Get" no.
_READ_VERBS = "|".join(map(re.escape, READ_ONLY_PREFIXES))
_READ_NAME = re.compile(rf"(?:{_READ_VERBS})[A-Z][A-Za-z0-9]*")
_DENY_PATTERNS: tuple[str, ...] = tuple(a.lower() for a in DATA_PLANE_DENY)
_ALLOWED_EXTRA_LOWER = frozenset(a.lower() for a in ALLOWED_EXTRA)


class ReadOnlyViolation(Exception):
    """An AWS call refused by the read-only guard; nothing was sent."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation} refused by the read-only guard: {reason}")
        self.operation = operation
        self.reason = reason

    def __reduce__(self) -> tuple[type[ReadOnlyViolation], tuple[str, str]]:
        # Job runners (arq) pickle exceptions; keep both fields across the round trip.
        return (type(self), (self.operation, self.reason))


def _service_model(client_or_service_model: Any) -> Any:
    meta = getattr(client_or_service_model, "meta", None)
    return meta.service_model if meta is not None else client_or_service_model


def iam_prefix(client_or_service_model: Any) -> str:
    """The IAM service prefix ("cloudwatch", "elasticloadbalancing", ...) of a botocore client or model."""
    model = _service_model(client_or_service_model)
    override = SERVICE_PREFIX_OVERRIDES.get(model.service_name)
    if override:
        return override
    metadata = model.metadata
    return metadata.get("signingName") or metadata.get("endpointPrefix") or model.service_name


def iam_action(client_or_service_model: Any, operation_name: str) -> str:
    """The IAM action ("iam-prefix:Action") that authorizes a botocore operation."""
    model = _service_model(client_or_service_model)
    override = OPERATION_ACTION_OVERRIDES.get((model.service_name, operation_name))
    if override:
        return override
    prefix = iam_prefix(model)
    if prefix in HTTP_VERB_SERVICES:
        return f"{prefix}:{model.operation_model(operation_name).http['method'].upper()}"
    return f"{prefix}:{operation_name}"


def _split(action: str) -> tuple[str, str]:
    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        raise ValueError(f"not an IAM action: {action!r}")
    return service, name


def denied_by(action: str) -> str | None:
    """The DATA_PLANE_DENY entry matching `action` (IAM matching: case-insensitive, * and ? wildcards)."""
    lowered = action.lower()
    for pattern, original in zip(_DENY_PATTERNS, DATA_PLANE_DENY, strict=True):
        if fnmatch.fnmatchcase(lowered, pattern):
            return original
    return None


def is_allowed(action: str, extra_allowed: frozenset[str] = frozenset()) -> tuple[bool, str]:
    """Whether one concrete IAM action is a read-only, non-data action, and why."""
    _, name = _split(action)
    if "*" in action or "?" in action:
        # A wildcard can cover data-plane or write actions that do not exist yet.
        return False, "wildcard actions are never read-only by construction"
    deny = denied_by(action)
    if deny is not None:
        return False, f"reads customer data or secrets ({deny}: {DATA_PLANE_DENY[deny]})"
    lowered = action.lower()
    if lowered in _ALLOWED_EXTRA_LOWER:
        return True, "explicitly allowed read"
    if lowered in {a.lower() for a in extra_allowed}:
        return True, "allowed for this client only"
    # Deliberately case-sensitive: the word boundary after the verb is only visible in the canonical
    # spelling, so "s3:getobjectx" style spellings are refused rather than guessed.
    if _READ_NAME.fullmatch(name):
        return True, "read-only verb"
    return False, f"not a read: only {', '.join(READ_ONLY_PREFIXES)} verbs and listed reads are allowed"


def check_call(
    client_or_service_model: Any,
    operation_name: str,
    params: dict[str, Any] | None = None,
    extra_allowed: frozenset[str] = frozenset(),
) -> str:
    """Return the IAM action of an allowed call, or raise ReadOnlyViolation."""
    model = _service_model(client_or_service_model)
    action = iam_action(model, operation_name)
    literal = f"{iam_prefix(model)}:{operation_name}"
    # Both spellings are checked so that a missing entry in OPERATION_ACTION_OVERRIDES cannot open a hole.
    for candidate in dict.fromkeys((action, literal)):
        deny = denied_by(candidate)
        if deny is not None:
            raise ReadOnlyViolation(action, f"reads customer data or secrets ({DATA_PLANE_DENY[deny]})")
    allowed, reason = is_allowed(action, extra_allowed)
    if not allowed:
        raise ReadOnlyViolation(action, reason)
    rule = SECRET_PARAMETERS.get(literal)
    if rule is not None:
        parameter, api_default, safe_value, why = rule
        if (params or {}).get(parameter, api_default) != safe_value:
            raise ReadOnlyViolation(action, f"{why}: pass {parameter}={safe_value!r}")
    return action


def guard_extras(client: Any) -> frozenset[str] | None:
    """The extra_allowed of the guard installed on `client`, or None when the client is unguarded."""
    return getattr(client, "_cloudwizard_readonly_extra", None)


def install_readonly_guard(client: Any, *, extra_allowed: frozenset[str] = frozenset()) -> None:
    """Make every call of a botocore/aiobotocore client pass check_call before anything is built or sent.

    Each client owns a copy of the session's event emitter, so the guard (and its extra_allowed) applies
    to this client only. Installing twice with the same extras is a no-op; different extras are refused
    rather than silently ignored.
    """
    extra = frozenset(extra_allowed)
    for action in extra:
        _split(action)
    installed = guard_extras(client)
    if installed is not None:
        if installed != extra:
            raise ValueError("a read-only guard with different extra_allowed is already installed")
        return

    def _guard(params: dict[str, Any], model: Any, **_: Any) -> None:
        # `model` is the OperationModel of the call being made.
        check_call(model.service_model, model.name, params, extra)

    # Synchronous on purpose: aiobotocore's emitter awaits coroutine results and calls plain handlers
    # directly, so an exception raised here propagates from the awaited API call in both libraries.
    client.meta.events.register_first(_GUARD_EVENT, _guard, unique_id=_GUARD_ID)
    client._cloudwizard_readonly_extra = extra
