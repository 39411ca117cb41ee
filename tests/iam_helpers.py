"""Helpers for the IAM check tests: scans on the AWS fake, and inventories shaped like collector output for what
moto cannot represent (the root user, old credentials, Access Analyzer)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import app.checks.iam  # noqa: F401 - registers the checks
from app.checks.base import CHECKS, Result, evaluate
from app.scanners.base import GLOBAL, CollectionError, Inventory, Resource
from app.scanners.engine import FindingRecord, ScanOutcome
from app.scanners.iam import AccessKeyState, IamRole, IamRootAccount, IamUserCredentials
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.check_helpers import fixture_inventory
from tests.check_helpers import scan as scan_checks

ROOT_ARN = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def key(slot: int, *, active: bool = True, created_days: float = 10, used_days: float | None = None) -> AccessKeyState:
    return AccessKeyState(slot=slot, active=active, last_rotated=ago(created_days),
                          last_used=None if used_days is None else ago(used_days))


def report_user(name: str, *, password: bool = False, mfa: bool = False, keys: tuple[AccessKeyState, ...] = (),
                created_days: float = 400, password_used_days: float | None = None,
                password_changed_days: float | None = None) -> IamUserCredentials:
    return IamUserCredentials(
        region=GLOBAL, resource_id=name, arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/{name}",
        created=ago(created_days), password_enabled=password,
        password_last_used=None if password_used_days is None else ago(password_used_days),
        password_last_changed=None if password_changed_days is None else ago(password_changed_days),
        mfa_active=mfa, access_keys=list(keys))


def root(*, mfa: bool = True, keys: tuple[AccessKeyState, ...] = (),
         password_used_days: float | None = None) -> IamRootAccount:
    return IamRootAccount(region=GLOBAL, resource_id=CUSTOMER_ACCOUNT, arn=ROOT_ARN, mfa_active=mfa,
                          access_keys=list(keys),
                          password_last_used=None if password_used_days is None else ago(password_used_days))


def role(name: str, trust: dict[str, Any] | None = None, *, created_days: float = 400,
         last_used_days: float | None = None, path: str = "/") -> IamRole:
    return IamRole(region=GLOBAL, resource_id=name, arn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role{path}{name}",
                   path=path, created=ago(created_days), trust_policy=trust,
                   last_used=None if last_used_days is None else ago(last_used_days))


def inventory(*resources: Resource, errors: tuple[CollectionError, ...] = (),
              regions: tuple[str, ...] = ("us-east-1",)) -> Inventory:
    return fixture_inventory(*resources, errors=errors, regions=regions)


def denied(action: str, *, region: str = GLOBAL, resource_id: str | None = None) -> CollectionError:
    service = action.split(":")[0]
    return CollectionError(service=service, action=action, region=region, resource_id=resource_id,
                           code="AccessDenied", message=f"not authorized to perform: {action}")


def results(check_id: str, inv: Inventory) -> list[Result]:
    return list(evaluate(CHECKS[check_id], inv))


def only(check_id: str, inv: Inventory) -> Result:
    out = results(check_id, inv)
    assert len(out) == 1, out
    return out[0]


def statuses(check_id: str, inv: Inventory) -> dict[str, str]:
    return {r.resource_id: r.status.value for r in results(check_id, inv)}


async def scan(*checks: str, regions: tuple[str, ...] = ("us-east-1",)) -> ScanOutcome:
    return await scan_checks(checks, regions)


def findings(outcome: ScanOutcome) -> dict[str, dict[str, FindingRecord]]:
    """check id -> resource id -> finding (resource ids are unique per check in these scans)."""
    out: dict[str, dict[str, FindingRecord]] = defaultdict(dict)
    for f in outcome.findings:
        assert f.resource_id not in out[f.check_id], f"two findings for {f.check_id} {f.resource_id}"
        out[f.check_id][f.resource_id] = f
    return out


def status_map(outcome: ScanOutcome, check_id: str) -> dict[str, str]:
    return {rid: f.status for rid, f in findings(outcome)[check_id].items()}


def trust(principal: Any, *, action: str | list[str] = "sts:AssumeRole", condition: dict[str, Any] | None = None,
          effect: str = "Allow", extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": action}
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement, *(extra or [])]}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}
