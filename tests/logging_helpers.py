"""Helpers for the logging and threat-detection check tests: seed CloudTrail, CIS alarms, GuardDuty findings
and Security Hub findings in the fake, scan it, and evaluate fixture inventories."""

from __future__ import annotations

import json
from typing import Any

import httpx

from app.checks.base import Result, Status
from app.checks.filter_patterns import MONITORED_BY_CHECK
from app.scanners.engine import FindingRecord, ScanOutcome
from tests.aws_fixtures import CUSTOMER_ACCOUNT, AwsFake

# Re-exported: the check tests import these from their domain's helpers.
from tests.check_helpers import (  # noqa: F401
    REGION,
    evaluate_on,
    findings_of,
    only,
    scan,
)

TRAIL_BUCKET = "cw-test-trail-logs"
LOG_GROUP = "cw-test-trail-group"


def findings(outcome: ScanOutcome, check_id: str, region: str | None = None) -> list[FindingRecord]:
    return findings_of(outcome, check_id, region=region)


def one(outcome: ScanOutcome, check_id: str, region: str | None = None,
        resource_id: str | None = None) -> FindingRecord:
    found = [f for f in findings(outcome, check_id, region) if resource_id is None or f.resource_id == resource_id]
    assert len(found) == 1, (check_id, region, [(f.region, f.resource_id, f.status, f.message) for f in found])
    return found[0]


def by_region(outcome: ScanOutcome, check_id: str) -> dict[str, str]:
    return {f.region: f.status for f in findings(outcome, check_id)}


def assert_status(result: Result | FindingRecord, expected: Status | str, *fragments: str) -> None:
    assert str(result.status) == str(expected), result.message
    for fragment in fragments:
        assert fragment in result.message, (fragment, result.message)


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------

def log_group_arn(name: str = LOG_GROUP, region: str = REGION) -> str:
    return f"arn:aws:logs:{region}:{CUSTOMER_ACCOUNT}:log-group:{name}:*"


def seed_trail(fake: AwsFake, name: str = "main-trail", *, region: str = REGION, multi_region: bool = True,
               logging: bool = True, validation: bool = True, kms_key: str | None = None,
               log_group: str | None = LOG_GROUP, bucket: str = TRAIL_BUCKET,
               event_selectors: list[dict[str, Any]] | None = None,
               advanced_selectors: list[dict[str, Any]] | None = None) -> str:
    """A trail (and its bucket and log group) in `region`; returns its ARN."""
    s3 = fake.client("s3", region)
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    if bucket not in existing:
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
    params: dict[str, Any] = {"Name": name, "S3BucketName": bucket, "IsMultiRegionTrail": multi_region,
                              "EnableLogFileValidation": validation}
    if kms_key:
        params["KmsKeyId"] = kms_key
    if log_group:
        logs = fake.client("logs", region)
        if not logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]:
            logs.create_log_group(logGroupName=log_group)
        params["CloudWatchLogsLogGroupArn"] = log_group_arn(log_group, region)
        params["CloudWatchLogsRoleArn"] = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/CloudTrailToLogs"
    cloudtrail = fake.client("cloudtrail", region)
    arn = cloudtrail.create_trail(**params)["TrailARN"]
    if event_selectors is not None:
        cloudtrail.put_event_selectors(TrailName=name, EventSelectors=event_selectors)
    if advanced_selectors is not None:
        cloudtrail.put_event_selectors(TrailName=name, AdvancedEventSelectors=advanced_selectors)
    if logging:
        cloudtrail.start_logging(Name=name)
    return arn


def seed_topic(fake: AwsFake, name: str = "security-alerts", *, region: str = REGION,
               subscribe: bool = True) -> str:
    sns = fake.client("sns", region)
    topic = sns.create_topic(Name=name)["TopicArn"]
    if subscribe:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="secops@example.com")
    return topic


def seed_cis_alarm(fake: AwsFake, check_id: str, topic_arn: str | None, *, pattern: str | None = None,
                   log_group: str = LOG_GROUP, region: str = REGION, metric: str | None = None,
                   alarm: bool = True, actions_enabled: bool = True) -> str:
    """A metric filter (the benchmark's pattern unless given) and an alarm on its metric notifying the topic."""
    activity = MONITORED_BY_CHECK[check_id]
    metric = metric or check_id.removeprefix("cloudwatch_")
    fake.client("logs", region).put_metric_filter(
        logGroupName=log_group, filterName=metric, filterPattern=pattern or activity.reference_pattern,
        metricTransformations=[{"metricName": metric, "metricNamespace": "CISBenchmark", "metricValue": "1"}])
    if alarm:
        fake.client("cloudwatch", region).put_metric_alarm(
            AlarmName=metric, MetricName=metric, Namespace="CISBenchmark", Statistic="Sum", Period=300,
            EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
            ActionsEnabled=actions_enabled, AlarmActions=[topic_arn] if topic_arn else [])
    return metric


def seed_guardduty_findings(fake: AwsFake, region: str, findings: list[dict[str, Any]],
                            account_id: str = CUSTOMER_ACCOUNT) -> list[str]:
    r = httpx.post(f"{fake.endpoint_url}/_cwfake/guardduty/findings",
                   content=json.dumps({"account_id": account_id, "region": region, "findings": findings}))
    assert r.status_code == 201, r.text
    return r.json()["finding_ids"]


def asff(finding_id: str, *, region: str = REGION, severity: str = "HIGH", product: str = "securityhub",
         title: str = "Example finding", record_state: str | None = None, workflow: str | None = None,
         control_id: str | None = None, resource_type: str = "AwsS3Bucket",
         resource_id: str = "arn:aws:s3:::some-bucket") -> dict[str, Any]:
    """An AWS Security Finding Format finding for BatchImportFindings (defaults left for Security Hub to fill)."""
    finding: dict[str, Any] = {
        "SchemaVersion": "2018-10-08", "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/{product}",
        "GeneratorId": control_id or "example-generator", "AwsAccountId": CUSTOMER_ACCOUNT,
        "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
        "CreatedAt": "2024-05-01T10:00:00.000Z", "UpdatedAt": "2024-05-02T10:00:00.000Z",
        "Severity": {"Label": severity}, "Title": title, "Description": f"{title}.",
        "Resources": [{"Type": resource_type, "Id": resource_id, "Region": region}],
    }
    if record_state:
        finding["RecordState"] = record_state
    if workflow:
        finding["Workflow"] = {"Status": workflow}
    if control_id:
        finding["Compliance"] = {"Status": "FAILED", "SecurityControlId": control_id}
    return finding
