"""Shared by the check tests of every domain: a real scan of the fake (moto) account limited to some checks, the
findings it produced, and checks evaluated on fixture inventories (for states moto cannot represent)."""

from __future__ import annotations

from collections.abc import Iterable

from app.aws.session import CallerCredentials
from app.checks.base import CHECKS, Result, evaluate
from app.checks.catalog import load_check_modules
from app.scanners.base import CollectionError, Inventory, Resource
from app.scanners.engine import FindingRecord, ScanOutcome, ScanPlan, run_scan
from tests.aws_fixtures import CUSTOMER_ACCOUNT

REGION = "us-east-1"

load_check_modules()


async def scan(checks: Iterable[str], regions: Iterable[str] | None = None) -> ScanOutcome:
    """A real scan of the fake account, limited to `checks` and `regions` (default: REGION)."""
    return await run_scan(CallerCredentials(), CUSTOMER_ACCOUNT,
                          plan=ScanPlan(regions=list(regions or [REGION]), checks=set(checks)))


def findings_of(outcome: ScanOutcome, check_id: str, *, resource_id: str | None = None,
                region: str | None = None) -> list[FindingRecord]:
    return [f for f in outcome.findings if f.check_id == check_id
            and (resource_id is None or f.resource_id == resource_id) and (region is None or f.region == region)]


def status(outcome: ScanOutcome, check_id: str, resource_id: str) -> str:
    """The one status `check_id` reported for `resource_id` (fails if there is not exactly one)."""
    found = findings_of(outcome, check_id, resource_id=resource_id)
    assert len(found) == 1, (check_id, resource_id, [(f.resource_id, f.status, f.message)
                                                     for f in findings_of(outcome, check_id)])
    return found[0].status


def statuses(outcome: ScanOutcome, check_id: str) -> dict[str, str]:
    """resource id -> status of `check_id`'s findings."""
    return {f.resource_id: f.status for f in findings_of(outcome, check_id)}


def fixture_inventory(*resources: Resource, errors: Iterable[CollectionError] = (),
                      regions: Iterable[str] | None = None) -> Inventory:
    """An inventory built like collector output."""
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=list(regions or [REGION]))
    for resource in resources:
        inventory.add(resource)
    for error in errors:
        inventory.record_error(error)
    return inventory


def evaluate_on(check_id: str, *resources: Resource, errors: list[CollectionError] | None = None,
                regions: list[str] | None = None) -> list[Result]:
    """Run one check on a fixture inventory."""
    return list(evaluate(CHECKS[check_id], fixture_inventory(*resources, errors=errors or (), regions=regions)))


def only(results: list[Result]) -> Result:
    assert len(results) == 1, [(r.status, r.resource_id, r.message) for r in results]
    return results[0]
