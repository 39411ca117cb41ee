"""Check registry: pure functions over the inventory. No I/O here.

A check declares the IAM actions its inputs came from. When any of them failed for the region
(or for the one resource) the check reports ERROR naming the action and the AWS error, never a
guessed PASS or FAIL.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from app.scanners.base import GLOBAL, Inventory, Resource


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


class Severity(enum.StrEnum):
    informational = "informational"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(slots=True)
class Result:
    status: Status
    message: str
    resource_type: str
    resource_id: str
    region: str
    resource_arn: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def passed(resource: Resource, message: str, **details: Any) -> Result:
    return _result(Status.PASS, resource, message, details)


def failed(resource: Resource, message: str, **details: Any) -> Result:
    return _result(Status.FAIL, resource, message, details)


def _result(status: Status, resource: Resource, message: str, details: dict[str, Any]) -> Result:
    return Result(status=status, message=message, resource_type=type(resource).resource_type,
                  resource_id=resource.resource_id, region=resource.region, resource_arn=resource.arn,
                  details=details)


ResourceCheck = Callable[[Any], Result | None]
InventoryCheck = Callable[[Inventory], Iterable[Result]]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    service: str
    requires: frozenset[str]                 # IAM actions whose results the check reads
    kind: Literal["resource", "inventory"]
    func: Callable[..., Any]
    resource: type[Resource] | None = None   # for resource checks


CHECKS: dict[str, CheckSpec] = {}


def resource_check(check_id: str, resource: type[Resource], requires: Iterable[str]):
    """`fn(resource) -> Result | None` called for each resource of that type (None = not applicable)."""
    def deco(fn: ResourceCheck) -> ResourceCheck:
        _register(CheckSpec(check_id, check_id.split("_", 1)[0], frozenset(requires), "resource", fn, resource), fn)
        return fn
    return deco


def inventory_check(check_id: str, requires: Iterable[str]):
    """`fn(inventory) -> iterable of Result`, for account-wide and per-region checks."""
    def deco(fn: InventoryCheck) -> InventoryCheck:
        _register(CheckSpec(check_id, check_id.split("_", 1)[0], frozenset(requires), "inventory", fn), fn)
        return fn
    return deco


def _register(spec: CheckSpec, fn: Callable[..., Any]) -> None:
    if spec.id in CHECKS:
        raise ValueError(f"check {spec.id} registered twice")
    if fn.__name__ != spec.id:
        raise ValueError(f"check function {fn.__name__} must be named like its id {spec.id}")
    CHECKS[spec.id] = spec


def error_result(spec: CheckSpec, inventory: Inventory, region: str, resource_id: str | None,
                 resource_type: str, arn: str | None = None) -> Result | None:
    errs = inventory.errors_for(spec.requires, region, resource_id)
    if not errs:
        return None
    e = errs[0]
    return Result(status=Status.ERROR, resource_type=resource_type, resource_id=resource_id or inventory.account_id,
                  region=region, resource_arn=arn,
                  message=f"Could not evaluate: {e.action} failed in {e.region} with {e.code}: {e.message}",
                  details={"errors": [x.model_dump() for x in errs[:5]]})


def evaluate(spec: CheckSpec, inventory: Inventory) -> Iterator[Result]:
    if spec.kind == "resource":
        assert spec.resource is not None
        for res in inventory.of(spec.resource):
            err = error_result(spec, inventory, res.region, res.resource_id, spec.resource.resource_type, res.arn)
            if err is not None:
                yield err
                continue
            out = spec.func(res)
            if out is not None:
                yield out
        # A region whose listing failed has no resources to evaluate: say so instead of silence.
        for region in [GLOBAL, *inventory.regions]:
            listing_errors = [e for e in inventory.errors_for(spec.requires, region) if e.resource_id is None
                              and e.region == region]
            if listing_errors:
                err = error_result(spec, inventory, region, None, spec.resource.resource_type)
                if err is not None:
                    yield err
        return
    yield from spec.func(inventory)


def finding_uid(account_id: str, region: str, check_id: str, resource_id: str) -> str:
    """Deterministic across scans: the same account, region, check and resource give the same uid."""
    digest = hashlib.sha256(f"{account_id}|{region}|{check_id}|{resource_id}".encode()).hexdigest()[:32]
    return f"cw-{digest}"
