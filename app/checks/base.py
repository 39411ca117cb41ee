"""Check registry: pure functions over the inventory. No I/O here.

Three kinds of checks:
- resource checks, `fn(resource) -> Result | None`, run for each resource of a type;
- regional checks, `fn(inventory, region) -> Result | Iterable[Result] | None`, run for every scanned region;
- account checks, `fn(inventory) -> Result | Iterable[Result] | None`, run once per account.
Each declares the IAM actions whose data it reads (`requires`). When one of them failed where the check
looks, the framework reports ERROR naming the action and the AWS error instead of calling the function:
never a guessed PASS or FAIL.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from app.scanners.base import GLOBAL, CollectionError, Inventory, Resource


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


def account_arn(inventory: Inventory) -> str:
    return f"arn:{inventory.partition}:iam::{inventory.account_id}:root"


def account_result(inventory: Inventory, ok: bool, message: str, *, region: str = GLOBAL,
                   resource_type: str = "AwsAccount", resource_id: str | None = None,
                   arn: str | None = None, **details: Any) -> Result:
    """A result about the account (or one region of it) rather than one resource."""
    return Result(status=Status.PASS if ok else Status.FAIL, message=message, resource_type=resource_type,
                  resource_id=resource_id or inventory.account_id, region=region,
                  resource_arn=arn or account_arn(inventory), details=details)


Kind = Literal["resource", "regional", "account"]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    id: str
    kind: Kind
    requires: frozenset[str]                 # IAM actions whose results the check reads
    func: Callable[..., Any]
    resource: type[Resource] | None = None   # for resource checks

    @property
    def service(self) -> str:
        return self.id.split("_", 1)[0]


CHECKS: dict[str, CheckSpec] = {}


def _register(check_id: str, kind: Kind, requires: Iterable[str], resource: type[Resource] | None):
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if check_id in CHECKS:
            raise ValueError(f"check {check_id} registered twice")
        if fn.__name__ != check_id:
            raise ValueError(f"check function {fn.__name__} must be named like its id {check_id}")
        reqs = frozenset(requires)
        if not reqs:
            raise ValueError(f"check {check_id} declares no required actions")
        CHECKS[check_id] = CheckSpec(check_id, kind, reqs, fn, resource)
        return fn
    return deco


def resource_check(check_id: str, resource: type[Resource], requires: Iterable[str]):
    return _register(check_id, "resource", requires, resource)


def regional_check(check_id: str, requires: Iterable[str]):
    return _register(check_id, "regional", requires, None)


def account_check(check_id: str, requires: Iterable[str]):
    return _register(check_id, "account", requires, None)


def _error(spec: CheckSpec, inventory: Inventory, errors: list[CollectionError], region: str,
           resource_type: str, resource_id: str | None, arn: str | None) -> Result:
    e = errors[0]
    return Result(status=Status.ERROR, resource_type=resource_type,
                  resource_id=resource_id or inventory.account_id, region=region,
                  resource_arn=arn or (account_arn(inventory) if resource_id is None else None),
                  message=f"Could not evaluate: {e.action} failed in {e.region} with {e.code}: {e.message}",
                  details={"errors": [x.model_dump() for x in errors[:5]]})


def _as_results(out: Result | Iterable[Result] | None) -> Iterator[Result]:
    if out is None:
        return
    if isinstance(out, Result):
        yield out
    else:
        yield from out


def evaluate(spec: CheckSpec, inventory: Inventory) -> Iterator[Result]:
    if spec.kind == "resource":
        assert spec.resource is not None
        rtype = spec.resource.resource_type
        for res in inventory.of(spec.resource):
            errs = inventory.errors_for(spec.requires, res.region, res.resource_id)
            if errs:
                yield _error(spec, inventory, errs, res.region, rtype, res.resource_id, res.arn)
                continue
            yield from _as_results(spec.func(res))
        # Where listing failed there are no resources to look at: say so, once per region.
        for region in [GLOBAL, *inventory.regions]:
            errs = [e for e in inventory.errors_for(spec.requires, region) if e.resource_id is None
                    and e.region == region]
            if errs:
                yield _error(spec, inventory, errs, region, rtype, None, None)
    elif spec.kind == "regional":
        for region in inventory.regions:
            errs = [e for e in inventory.errors_for(spec.requires, region) if e.resource_id is None]
            if errs:
                yield _error(spec, inventory, errs, region, "AwsAccountRegion", None, None)
                continue
            yield from _as_results(spec.func(inventory, region))
    else:
        wanted = {a.lower() for a in spec.requires}
        errs = [e for e in inventory.errors if e.action.lower() in wanted and e.resource_id is None]
        if errs:
            yield _error(spec, inventory, errs, GLOBAL, "AwsAccount", None, None)
            return
        yield from _as_results(spec.func(inventory))


def finding_uid(account_id: str, region: str, check_id: str, resource_id: str) -> str:
    """Deterministic across scans: the same account, region, check and resource give the same uid."""
    digest = hashlib.sha256(f"{account_id}|{region}|{check_id}|{resource_id}".encode()).hexdigest()[:32]
    return f"cw-{digest}"
