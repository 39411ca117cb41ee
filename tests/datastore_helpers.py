"""Helpers for the S3 and data-store check tests: scan the fake, pick findings, evaluate fixture inventories."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config

from app.scanners.engine import FindingRecord, ScanOutcome
from tests.aws_fixtures import TEST_KEY, AwsFake

# Re-exported: the check tests import these from their domain's helpers.
from tests.check_helpers import (  # noqa: F401
    REGION,
    evaluate_on,
    findings_of,
    only,
    scan,
    status,
    statuses,
)


def findings(outcome: ScanOutcome, check_id: str, resource_id: str | None = None) -> list[FindingRecord]:
    return findings_of(outcome, check_id, resource_id=resource_id)



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
