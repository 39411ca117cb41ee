"""Helpers for the S3 and data-store check tests: scan the fake, pick findings, evaluate fixture inventories."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config

from app.aws.session import CallerCredentials
from app.checks.base import CHECKS, Result, evaluate
from app.checks.catalog import load_check_modules
from app.scanners.base import CollectionError, Inventory, Resource
from app.scanners.engine import FindingRecord, ScanOutcome, ScanPlan, run_scan
from tests.aws_fixtures import CUSTOMER_ACCOUNT, TEST_KEY, AwsFake

REGION = "us-east-1"

load_check_modules()


async def scan(checks: set[str], regions: list[str] | None = None) -> ScanOutcome:
    """A real scan of the fake (moto) account, limited to `checks` and `regions`."""
    return await run_scan(CallerCredentials(), CUSTOMER_ACCOUNT,
                          plan=ScanPlan(regions=regions or [REGION], checks=checks))


def findings(outcome: ScanOutcome, check_id: str, resource_id: str | None = None) -> list[FindingRecord]:
    return [f for f in outcome.findings
            if f.check_id == check_id and (resource_id is None or f.resource_id == resource_id)]


def status(outcome: ScanOutcome, check_id: str, resource_id: str) -> str:
    """The one status `check_id` reported for `resource_id` (fails if there is not exactly one)."""
    found = findings(outcome, check_id, resource_id)
    assert len(found) == 1, (check_id, resource_id, [(f.resource_id, f.status, f.message) for f in outcome.findings
                                                     if f.check_id == check_id])
    return found[0].status


def statuses(outcome: ScanOutcome, check_id: str) -> dict[str, str]:
    return {f.resource_id: f.status for f in findings(outcome, check_id)}


def evaluate_on(check_id: str, *resources: Resource, errors: list[CollectionError] | None = None,
                regions: list[str] | None = None) -> list[Result]:
    """Run one check on an inventory built like collector output (for states moto cannot represent)."""
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=regions or [REGION])
    for resource in resources:
        inventory.add(resource)
    for error in errors or []:
        inventory.record_error(error)
    return list(evaluate(CHECKS[check_id], inventory))


def only(results: list[Result]) -> Result:
    assert len(results) == 1, results
    return results[0]


def s3control(fake: AwsFake, region: str = REGION) -> Any:
    """An S3 Control client for seeding. botocore sends S3 Control calls to <account>.<host>, which does not
    resolve for a local endpoint, so the prefix is dropped before sending (as app.aws.session does)."""
    client = boto3.session.Session().client(
        "s3control", region_name=region, endpoint_url=fake.endpoint_url,
        aws_access_key_id=TEST_KEY, aws_secret_access_key=TEST_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    host = urlsplit(fake.endpoint_url).netloc

    def strip_prefix(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc.endswith("." + host):
            request.url = urlunsplit(parts._replace(netloc=host))
            request.headers["host"] = host

    client.meta.events.register("before-send.s3-control", strip_prefix)
    return client


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_everyone(action: str | list[str], resource: str = "*", condition: dict[str, Any] | None = None,
                   principal: Any = "*") -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def denied(service: str, operation: str, **extra: Any) -> dict[str, Any]:
    return {"service": service, "operation": operation, **extra}
