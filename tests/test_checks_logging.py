"""Logging checks: CloudTrail (CIS 3.1-3.5, 3.8, 3.9), AWS Config (3.3), VPC flow logs (3.7) and the CIS 4.1-4.15
metric filter + alarm pairs, against the moto fake; inventory fixtures for what moto cannot represent (delivery
errors, pending subscriptions, cross-account log groups, recorder failures)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.checks.base import Status
from app.checks.filter_patterns import MONITORED, MONITORED_BY_CHECK, compile_pattern, covers, record
from app.scanners.awsconfig import ConfigRecorder, ConfigRegion
from app.scanners.base import GLOBAL, CollectionError
from app.scanners.cloudtrail import CloudTrailTrail
from app.scanners.flowlogs import FlowLog, VpcFlowLogs
from app.scanners.monitoring import LogGroupMonitoring, MetricAlarm, MetricFilter, MetricRef, TopicSubscriptions
from app.scanners.s3 import S3Bucket
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.logging_helpers import (
    LOG_GROUP,
    REGION,
    TRAIL_BUCKET,
    assert_status,
    by_region,
    evaluate_on,
    findings,
    log_group_arn,
    one,
    only,
    scan,
    seed_cis_alarm,
    seed_topic,
    seed_trail,
)

TRAIL_CHECKS = {
    "cloudtrail_multi_region_enabled", "cloudtrail_trail_logging_active", "cloudtrail_log_file_validation_enabled",
    "cloudtrail_kms_encryption_enabled", "cloudtrail_cloudwatch_logs_enabled",
    "cloudtrail_bucket_access_logging_enabled", "cloudtrail_bucket_not_public",
    "cloudtrail_s3_object_write_events_logged", "cloudtrail_s3_object_read_events_logged",
}
ALL_DATA_EVENTS = [{"ReadWriteType": "All", "IncludeManagementEvents": True,
                    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]
MONITORING_CHECKS = {m.check_id for m in MONITORED}
TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{CUSTOMER_ACCOUNT}:trail/main-trail"


def trail_fixture(**overrides) -> CloudTrailTrail:
    values = dict(region=REGION, resource_id=TRAIL_ARN, arn=TRAIL_ARN, name="main-trail", home_region=REGION,
                  is_multi_region=True, log_file_validation=True, s3_bucket_name=TRAIL_BUCKET,
                  cloudwatch_log_group_arn=log_group_arn(), is_logging=True,
                  latest_delivery_time=datetime.now(UTC), latest_cloudwatch_logs_delivery_time=datetime.now(UTC),
                  event_selectors=[], advanced_event_selectors=[])
    values.update(overrides)
    return CloudTrailTrail(**values)


def detail_error(action: str, resource_id: str, region: str = REGION, code: str = "AccessDenied") -> CollectionError:
    return CollectionError(service=action.split(":")[0], action=action, region=region, resource_id=resource_id,
                           code=code, message="denied")


# ==================================================================================================
# CloudTrail on the fake
# ==================================================================================================

async def test_well_configured_trail_passes_every_trail_check(aws_fake):
    key = aws_fake.client("kms").create_key(Description="trail logs")["KeyMetadata"]["Arn"]
    seed_trail(aws_fake, kms_key=key, event_selectors=ALL_DATA_EVENTS)
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-test-access-logs")
    s3.put_bucket_acl(Bucket="cw-test-access-logs", ACL="log-delivery-write")
    s3.put_bucket_logging(Bucket=TRAIL_BUCKET, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": "cw-test-access-logs", "TargetPrefix": "trail/"}})
    # Current defaults set explicitly: Block Public Access on, ACLs disabled.
    s3.put_public_access_block(Bucket=TRAIL_BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_ownership_controls(Bucket=TRAIL_BUCKET, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})

    out = await scan(TRAIL_CHECKS)

    assert out.errors == []
    for check in TRAIL_CHECKS:
        assert [f.status for f in findings(out, check)] == ["PASS"], (check, [f.message for f in findings(out, check)])
    assert one(out, "cloudtrail_multi_region_enabled").region == GLOBAL
    trail = one(out, "cloudtrail_kms_encryption_enabled")
    assert (trail.resource_id, trail.resource_arn, trail.region) == (TRAIL_ARN, TRAIL_ARN, REGION)
    assert key in trail.message
    bucket = one(out, "cloudtrail_bucket_not_public")
    assert (bucket.resource_id, bucket.resource_arn) == (TRAIL_BUCKET, f"arn:aws:s3:::{TRAIL_BUCKET}")


async def test_badly_configured_trail_fails_every_trail_check(aws_fake):
    seed_trail(aws_fake, multi_region=False, logging=False, validation=False, log_group=None)
    # A pre-2023 bucket (ACLs enabled, no Block Public Access) with a public read policy.
    aws_fake.client("s3").put_bucket_policy(Bucket=TRAIL_BUCKET, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                "Resource": f"arn:aws:s3:::{TRAIL_BUCKET}/*"}]}))

    out = await scan(TRAIL_CHECKS)

    for check in TRAIL_CHECKS:
        assert [f.status for f in findings(out, check)] == ["FAIL"], (check, [f.message for f in findings(out, check)])
    assert_status(one(out, "cloudtrail_multi_region_enabled"), "FAIL", "main-trail covers only us-east-1")
    assert_status(one(out, "cloudtrail_trail_logging_active"), "FAIL", "logging is stopped")
    assert_status(one(out, "cloudtrail_cloudwatch_logs_enabled"), "FAIL", "does not send events to CloudWatch Logs")
    assert_status(one(out, "cloudtrail_bucket_not_public"), "FAIL", "publicly accessible", "bucket policy")
    assert_status(one(out, "cloudtrail_s3_object_read_events_logged"), "FAIL", "No logging trail records")


async def test_no_trail_at_all(aws_fake):
    out = await scan(TRAIL_CHECKS)
    assert_status(one(out, "cloudtrail_multi_region_enabled"), "FAIL", "No CloudTrail trail exists")
    assert_status(one(out, "cloudtrail_s3_object_write_events_logged"), "FAIL")
    # No trail, so no trail bucket and no trail to judge: nothing is reported rather than a guess.
    for check in ("cloudtrail_bucket_access_logging_enabled", "cloudtrail_bucket_not_public",
                  "cloudtrail_log_file_validation_enabled"):
        assert findings(out, check) == []


async def test_trail_that_is_not_logging_does_not_count_as_enabled(aws_fake):
    seed_trail(aws_fake, logging=False)
    out = await scan({"cloudtrail_multi_region_enabled", "cloudtrail_cloudwatch_logs_enabled"})
    assert_status(one(out, "cloudtrail_multi_region_enabled"), "FAIL", "logging is stopped")
    assert_status(one(out, "cloudtrail_cloudwatch_logs_enabled"), "FAIL", "nothing is delivered")


@pytest.mark.parametrize("scanned", [["us-east-1"], ["eu-west-1", "us-east-1"]])
async def test_shadow_trail_is_read_once_in_its_home_region(aws_fake, scanned):
    arn = seed_trail(aws_fake, "eu-trail", region="eu-west-1")
    out = await scan({"cloudtrail_log_file_validation_enabled", "cloudtrail_multi_region_enabled"}, regions=scanned)
    result = one(out, "cloudtrail_log_file_validation_enabled")
    assert (result.resource_id, result.region, result.status) == (arn, "eu-west-1", "PASS")
    assert_status(one(out, "cloudtrail_multi_region_enabled"), "PASS", "eu-trail")
    assert aws_fake.calls("cloudtrail:GetTrailStatus") == 1
    assert aws_fake.calls("cloudtrail:GetEventSelectors") == 1


@pytest.mark.parametrize(("selectors", "advanced", "expected", "fragment"), [
    ([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}], None, "FAIL", "write-only"),
    ([{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
      {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}], None, "PASS", "main-trail"),
    ([{"ReadWriteType": "All", "IncludeManagementEvents": False, "DataResources": [
        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}], None, "FAIL", "no management events"),
    (None, [{"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}],
     "PASS", "main-trail"),
    (None, [{"Name": "reads", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                 {"Field": "readOnly", "Equals": ["true"]}]}], "FAIL", "read-only"),
    (None, [{"Name": "no-kms", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]}], "PASS", "excluding events from kms"),
])
async def test_management_event_selectors(aws_fake, selectors, advanced, expected, fragment):
    seed_trail(aws_fake, event_selectors=selectors, advanced_selectors=advanced)
    out = await scan({"cloudtrail_multi_region_enabled"})
    assert_status(one(out, "cloudtrail_multi_region_enabled"), expected, fragment)


@pytest.mark.parametrize(("selectors", "advanced", "write", "read", "fragment"), [
    (ALL_DATA_EVENTS, None, "PASS", "PASS", ""),
    ([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True,
       "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::"]}]}], None, "PASS", "FAIL", ""),
    ([{"ReadWriteType": "All", "IncludeManagementEvents": True,
       "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}]}],
     None, "FAIL", "FAIL", "payroll"),
    ([{"ReadWriteType": "All", "IncludeManagementEvents": True,
       "DataResources": [{"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]}]}],
     None, "FAIL", "FAIL", "No logging trail"),
    (None, [{"Name": "mgmt", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
            {"Name": "s3-writes", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                                     {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                                                     {"Field": "readOnly", "Equals": ["false"]}]}],
     "PASS", "FAIL", ""),
    (None, [{"Name": "s3-all-but-logs", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "NotStartsWith": [f"arn:aws:s3:::{TRAIL_BUCKET}/"]}]}], "PASS", "PASS", ""),
    (None, [{"Name": "one-bucket", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::payroll/"]}]}], "FAIL", "FAIL", "payroll"),
    (None, [{"Name": "puts-only", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]}, {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "eventName", "Equals": ["PutObject"]}]}], "FAIL", "FAIL", "No logging trail"),
])
async def test_s3_object_level_logging(aws_fake, selectors, advanced, write, read, fragment):
    seed_trail(aws_fake, event_selectors=selectors, advanced_selectors=advanced)
    out = await scan({"cloudtrail_s3_object_write_events_logged", "cloudtrail_s3_object_read_events_logged"})
    assert_status(one(out, "cloudtrail_s3_object_write_events_logged"), write, fragment if write == "FAIL" else "")
    assert_status(one(out, "cloudtrail_s3_object_read_events_logged"), read, fragment if read == "FAIL" else "")


async def test_data_events_on_a_single_region_trail_cover_only_its_region(aws_fake):
    seed_trail(aws_fake, multi_region=False, event_selectors=ALL_DATA_EVENTS)
    out = await scan({"cloudtrail_s3_object_write_events_logged"})
    assert_status(one(out, "cloudtrail_s3_object_write_events_logged"), "FAIL", "all buckets in us-east-1 only")


async def test_describe_trails_denied_makes_every_trail_check_error(aws_fake):
    seed_trail(aws_fake)
    aws_fake.configure(deny=[{"service": "cloudtrail", "operation": "DescribeTrails"}])
    out = await scan(TRAIL_CHECKS | {"config_recorder_enabled"})
    for check in ("cloudtrail_multi_region_enabled", "cloudtrail_s3_object_write_events_logged",
                  "cloudtrail_s3_object_read_events_logged", "cloudtrail_bucket_not_public",
                  "cloudtrail_bucket_access_logging_enabled"):
        assert_status(one(out, check), "ERROR", "cloudtrail:DescribeTrails", "AccessDenied")
    # Per-trail checks have no trail to name: the listing failure is reported for each place it failed.
    per_trail = findings(out, "cloudtrail_log_file_validation_enabled")
    assert per_trail and all(f.status == "ERROR" and "cloudtrail:DescribeTrails" in f.message for f in per_trail)
    assert one(out, "config_recorder_enabled").status == "FAIL"   # other checks are unaffected


async def test_trail_status_denied_errors_only_what_needs_it(aws_fake):
    seed_trail(aws_fake, validation=False)
    aws_fake.configure(deny=[{"service": "cloudtrail", "operation": "GetTrailStatus"}])
    out = await scan(TRAIL_CHECKS)
    for check in ("cloudtrail_trail_logging_active", "cloudtrail_cloudwatch_logs_enabled"):
        result = one(out, check)
        assert_status(result, "ERROR", "cloudtrail:GetTrailStatus")
        assert result.resource_id == TRAIL_ARN
    assert_status(one(out, "cloudtrail_multi_region_enabled"), "ERROR", "cloudtrail:GetTrailStatus")
    # These do not read the trail's status: they still conclude.
    assert one(out, "cloudtrail_log_file_validation_enabled").status == "FAIL"
    assert one(out, "cloudtrail_kms_encryption_enabled").status == "FAIL"
    assert one(out, "cloudtrail_bucket_access_logging_enabled").status == "FAIL"


async def test_trail_bucket_detail_denied_errors_for_that_bucket(aws_fake):
    seed_trail(aws_fake)
    aws_fake.configure(deny=[{"service": "s3", "operation": "GetBucketLogging"}])
    out = await scan({"cloudtrail_bucket_access_logging_enabled", "cloudtrail_bucket_not_public"})
    result = one(out, "cloudtrail_bucket_access_logging_enabled")
    assert_status(result, "ERROR", f"bucket {TRAIL_BUCKET}", "s3:GetBucketLogging")
    assert result.resource_id == TRAIL_BUCKET
    assert one(out, "cloudtrail_bucket_not_public").status == "PASS"


# ==================================================================================================
# CloudTrail fixtures (what moto cannot represent)
# ==================================================================================================

def test_cloudwatch_delivery_must_be_recent():
    stale = datetime.now(UTC) - timedelta(days=3)
    failing = trail_fixture(latest_cloudwatch_logs_delivery_time=stale,
                            latest_cloudwatch_logs_delivery_error="AccessDeniedException: role cannot PutLogEvents")
    assert_status(only(evaluate_on("cloudtrail_cloudwatch_logs_enabled", failing)), Status.FAIL,
                  "no events to CloudWatch Logs in the last 24 hours", "role cannot PutLogEvents")
    never = trail_fixture(latest_cloudwatch_logs_delivery_time=None)
    assert_status(only(evaluate_on("cloudtrail_cloudwatch_logs_enabled", never)), Status.FAIL, "(never)")
    assert_status(only(evaluate_on("cloudtrail_cloudwatch_logs_enabled", trail_fixture())), Status.PASS)


def test_s3_delivery_failure_fails_the_logging_check():
    broken = trail_fixture(latest_delivery_error="InsufficientS3BucketPolicyException",
                           latest_delivery_time=datetime.now(UTC) - timedelta(days=2))
    assert_status(only(evaluate_on("cloudtrail_trail_logging_active", broken)), Status.FAIL,
                  "cannot deliver log files", "InsufficientS3BucketPolicyException")
    # An error followed by a recent successful delivery is a past incident, not a current failure.
    recovered = trail_fixture(latest_delivery_error="InsufficientS3BucketPolicyException")
    assert_status(only(evaluate_on("cloudtrail_trail_logging_active", recovered)), Status.PASS)


def test_digest_delivery_failure_fails_log_file_validation():
    trail = trail_fixture(latest_digest_delivery_error="AccessDenied")
    assert_status(only(evaluate_on("cloudtrail_log_file_validation_enabled", trail)), Status.FAIL, "digest files")


def test_organization_trail_bucket_in_another_account_is_not_judged_here():
    org_arn = "arn:aws:cloudtrail:us-east-1:999988887777:trail/org-trail"
    trail = trail_fixture(resource_id=org_arn, arn=org_arn, name="org-trail", is_organization_trail=True,
                          s3_bucket_name="central-log-archive")
    local = S3Bucket(region=REGION, resource_id="app-data", name="app-data", arn="arn:aws:s3:::app-data")
    assert evaluate_on("cloudtrail_bucket_access_logging_enabled", trail, local) == []
    assert_status(only(evaluate_on("cloudtrail_multi_region_enabled", trail)), Status.PASS, "org-trail")


def test_unknown_trail_status_is_an_error_not_a_fail():
    trail = trail_fixture(is_logging=None, event_selectors=None, advanced_event_selectors=None)
    errors = [detail_error("cloudtrail:GetTrailStatus", TRAIL_ARN)]
    assert_status(only(evaluate_on("cloudtrail_multi_region_enabled", trail, errors=errors)), Status.ERROR,
                  "cloudtrail:GetTrailStatus")
    # Another trail that qualifies settles the question.
    other_arn = TRAIL_ARN.replace("main-trail", "second")
    good = trail_fixture(resource_id=other_arn, arn=other_arn, name="second")
    assert_status(only(evaluate_on("cloudtrail_multi_region_enabled", trail, good, errors=errors)), Status.PASS,
                  "second")


# ==================================================================================================
# AWS Config
# ==================================================================================================

def seed_recorder(fake, region: str = REGION, *, all_supported: bool = True, global_types: bool = True,
                  channel: bool = True, start: bool = True, resource_types: list[str] | None = None) -> None:
    config = fake.client("config", region)
    group = {"allSupported": all_supported, "includeGlobalResourceTypes": global_types}
    if resource_types is not None:
        group = {"allSupported": False, "includeGlobalResourceTypes": False, "resourceTypes": resource_types}
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/config", "recordingGroup": group})
    if channel:
        bucket = f"cw-config-{region}"
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        fake.client("s3", region).create_bucket(Bucket=bucket, **kwargs)
        config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
    if start and channel:
        config.start_configuration_recorder(ConfigurationRecorderName="default")


CONFIG_CHECKS = {"config_recorder_enabled", "config_global_resources_recorded"}


async def test_config_recording_everywhere_passes(aws_fake):
    seed_recorder(aws_fake, "us-east-1")
    seed_recorder(aws_fake, "eu-west-1", global_types=False)
    out = await scan(CONFIG_CHECKS, regions=["us-east-1", "eu-west-1"])
    assert by_region(out, "config_recorder_enabled") == {"us-east-1": "PASS", "eu-west-1": "PASS"}
    assert_status(one(out, "config_global_resources_recorded"), "PASS", "us-east-1")
    result = one(out, "config_recorder_enabled", "eu-west-1")
    assert (result.resource_id, result.resource_type) == (CUSTOMER_ACCOUNT, "AwsConfigConfigurationRecorder")


async def test_config_missing_or_partial_fails(aws_fake):
    seed_recorder(aws_fake, "us-east-1", global_types=False, resource_types=["AWS::EC2::Instance"])
    out = await scan(CONFIG_CHECKS, regions=["us-east-1", "eu-west-1"])
    assert_status(one(out, "config_recorder_enabled", "us-east-1"), "FAIL", "1 selected resource type")
    assert_status(one(out, "config_recorder_enabled", "eu-west-1"), "FAIL", "no configuration recorder")
    assert_status(one(out, "config_global_resources_recorded"), "FAIL", "recorders run in us-east-1")


async def test_config_recorder_stopped_or_without_channel_fails(aws_fake):
    seed_recorder(aws_fake, "us-east-1", channel=False)
    seed_recorder(aws_fake, "eu-west-1", start=False)
    out = await scan(CONFIG_CHECKS, regions=["us-east-1", "eu-west-1"])
    assert_status(one(out, "config_recorder_enabled", "us-east-1"), "FAIL", "no delivery channel", "stopped")
    assert_status(one(out, "config_recorder_enabled", "eu-west-1"), "FAIL", "stopped")
    assert_status(one(out, "config_global_resources_recorded"), "FAIL", "no recorder is running")


async def test_config_denied_in_one_region_errors_there_only(aws_fake):
    seed_recorder(aws_fake, "us-east-1")
    aws_fake.configure(deny=[{"service": "config", "operation": "DescribeConfigurationRecorderStatus",
                              "region": "eu-west-1"}])
    out = await scan(CONFIG_CHECKS, regions=["us-east-1", "eu-west-1"])
    assert by_region(out, "config_recorder_enabled") == {"us-east-1": "PASS", "eu-west-1": "ERROR"}
    assert "config:DescribeConfigurationRecorderStatus" in one(out, "config_recorder_enabled", "eu-west-1").message
    assert one(out, "config_global_resources_recorded").status == "ERROR"


def test_config_failure_status_and_exclusions_fail():
    failing = ConfigRegion(region=REGION, resource_id="r", delivery_channels=["default"], recorders=[ConfigRecorder(
        name="default", all_supported=True, recording=True, last_status="FAILURE", last_error_code="AccessDenied")])
    assert_status(only(evaluate_on("config_recorder_enabled", failing)), Status.FAIL, "reports a failure",
                  "AccessDenied")
    excluding = ConfigRegion(region=REGION, resource_id="r", delivery_channels=["default"], recorders=[ConfigRecorder(
        name="default", strategy="EXCLUSION_BY_RESOURCE_TYPES", excluded_resource_types=["AWS::EC2::Volume"],
        recording=True, last_status="SUCCESS")])
    assert_status(only(evaluate_on("config_recorder_enabled", excluding)), Status.FAIL, "excludes 1")
    strategy = ConfigRegion(region=REGION, resource_id="r", delivery_channels=["default"], recorders=[ConfigRecorder(
        name="default", strategy="ALL_SUPPORTED_RESOURCE_TYPES", recording=True, last_status="SUCCESS",
        resource_types=[], include_global_resource_types=False)])
    assert_status(only(evaluate_on("config_recorder_enabled", strategy)), Status.PASS)
    iam_only = ConfigRegion(region=REGION, resource_id="r", delivery_channels=["default"], recorders=[ConfigRecorder(
        name="default", recording=True, resource_types=["AWS::IAM::User", "AWS::IAM::Role", "AWS::IAM::Group",
                                                         "AWS::IAM::Policy"])])
    assert_status(only(evaluate_on("config_global_resources_recorded", iam_only)), Status.PASS)


# ==================================================================================================
# VPC flow logs
# ==================================================================================================

async def test_vpc_flow_logs(aws_fake):
    ec2 = aws_fake.client("ec2")
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    accept_only = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    bare = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    aws_fake.client("s3").create_bucket(Bucket="cw-flow-logs")
    for vpc, traffic in ((default_vpc, "REJECT"), (accept_only, "ACCEPT")):
        ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType=traffic,
                             LogDestinationType="s3", LogDestination="arn:aws:s3:::cw-flow-logs")
    out = await scan({"ec2_vpc_flow_logs_enabled"})
    assert_status(one(out, "ec2_vpc_flow_logs_enabled", resource_id=default_vpc), "PASS", "REJECT")
    assert_status(one(out, "ec2_vpc_flow_logs_enabled", resource_id=accept_only), "FAIL", "only logs accepted")
    assert_status(one(out, "ec2_vpc_flow_logs_enabled", resource_id=bare), "FAIL", "has no flow log")
    assert one(out, "ec2_vpc_flow_logs_enabled", resource_id=bare).resource_arn == \
        f"arn:aws:ec2:{REGION}:{CUSTOMER_ACCOUNT}:vpc/{bare}"


async def test_vpc_flow_logs_listing_denied_is_an_error_for_the_region(aws_fake):
    aws_fake.configure(deny=[{"service": "ec2", "operation": "DescribeFlowLogs", "region": "eu-west-1"}])
    out = await scan({"ec2_vpc_flow_logs_enabled"}, regions=["us-east-1", "eu-west-1"])
    assert by_region(out, "ec2_vpc_flow_logs_enabled") == {"us-east-1": "FAIL", "eu-west-1": "ERROR"}
    assert "UnauthorizedOperation" in one(out, "ec2_vpc_flow_logs_enabled", "eu-west-1").message


def test_flow_log_that_fails_to_deliver_fails():
    vpc = VpcFlowLogs(region=REGION, resource_id="vpc-1", vpc_id="vpc-1", flow_logs=[FlowLog(
        flow_log_id="fl-1", status="ACTIVE", traffic_type="ALL", destination_type="cloud-watch-logs",
        deliver_status="FAILED", deliver_error="Access error")])
    assert_status(only(evaluate_on("ec2_vpc_flow_logs_enabled", vpc)), Status.FAIL, "fails to deliver", "Access error")


# ==================================================================================================
# CIS 4.1-4.15: metric filters and alarms
# ==================================================================================================

async def test_every_cis_alarm_in_place_passes_all_fifteen(aws_fake):
    seed_trail(aws_fake)
    topic = seed_topic(aws_fake)
    for check in MONITORING_CHECKS:
        seed_cis_alarm(aws_fake, check, topic)
    out = await scan(MONITORING_CHECKS)
    assert out.errors == []
    for check in MONITORING_CHECKS:
        result = one(out, check)
        assert_status(result, "PASS", LOG_GROUP, topic)
        assert (result.region, result.resource_id) == (GLOBAL, CUSTOMER_ACCOUNT)
        assert result.details["alarm"] == check.removeprefix("cloudwatch_")


async def test_no_filters_fail_all_fifteen(aws_fake):
    seed_trail(aws_fake)
    out = await scan(MONITORING_CHECKS)
    for check in MONITORING_CHECKS:
        assert_status(one(out, check), "FAIL", f"log group {LOG_GROUP} has no metric filter that matches")


async def test_equivalent_pattern_written_differently_passes(aws_fake):
    seed_trail(aws_fake)
    topic = seed_topic(aws_fake)
    # Reordered, unquoted, without spaces, with an extra alternative: the same activity is matched.
    seed_cis_alarm(aws_fake, "cloudwatch_cloudtrail_changes_alarm", topic,
                   pattern="{($.eventName=StopLogging)||($.eventName=DeleteTrail)||($.eventName=UpdateTrail)||"
                           "($.eventName=CreateTrail)||($.eventName=StartLogging)||($.eventName=PutEventSelectors)}")
    seed_cis_alarm(aws_fake, "cloudwatch_root_usage_alarm", topic,
                   pattern='{ ($.userIdentity.type = "Root") && ($.userIdentity.invokedBy NOT EXISTS) && '
                           '($.eventType != "AwsServiceEvent") }')
    out = await scan({"cloudwatch_cloudtrail_changes_alarm", "cloudwatch_root_usage_alarm"})
    assert one(out, "cloudwatch_cloudtrail_changes_alarm").status == "PASS"
    assert one(out, "cloudwatch_root_usage_alarm").status == "PASS"


async def test_incomplete_or_noisy_patterns_fail_with_the_reason(aws_fake):
    seed_trail(aws_fake)
    topic = seed_topic(aws_fake)
    seed_cis_alarm(aws_fake, "cloudwatch_unauthorized_api_calls_alarm", topic,
                   pattern='{($.errorCode="UnauthorizedOperation") || ($.errorCode="AccessDenied")}')
    seed_cis_alarm(aws_fake, "cloudwatch_iam_policy_changes_alarm", topic,
                   pattern="{ $.eventSource = iam.amazonaws.com }")
    out = await scan({"cloudwatch_unauthorized_api_calls_alarm", "cloudwatch_iam_policy_changes_alarm"})
    assert_status(one(out, "cloudwatch_unauthorized_api_calls_alarm"), "FAIL",
                  "does not match an EC2 call refused with Client.UnauthorizedOperation")
    assert_status(one(out, "cloudwatch_iam_policy_changes_alarm"), "FAIL",
                  "also matches ordinary activity (a read-only IAM ListUsers call)")


async def test_filter_without_alarm_action_or_subscriber_fails_at_that_step(aws_fake):
    seed_trail(aws_fake)
    topic = seed_topic(aws_fake)
    silent_topic = seed_topic(aws_fake, "nobody-listens", subscribe=False)
    seed_cis_alarm(aws_fake, "cloudwatch_root_usage_alarm", topic, alarm=False)
    seed_cis_alarm(aws_fake, "cloudwatch_vpc_changes_alarm", topic, actions_enabled=False)
    seed_cis_alarm(aws_fake, "cloudwatch_nacl_changes_alarm", None)
    seed_cis_alarm(aws_fake, "cloudwatch_route_table_changes_alarm", silent_topic)
    out = await scan({"cloudwatch_root_usage_alarm", "cloudwatch_vpc_changes_alarm", "cloudwatch_nacl_changes_alarm",
                      "cloudwatch_route_table_changes_alarm"})
    assert_status(one(out, "cloudwatch_root_usage_alarm"), "FAIL", "no alarm watches its metric")
    assert_status(one(out, "cloudwatch_vpc_changes_alarm"), "FAIL", "has its actions disabled")
    assert_status(one(out, "cloudwatch_nacl_changes_alarm"), "FAIL", "notifies no SNS topic")
    assert_status(one(out, "cloudwatch_route_table_changes_alarm"), "FAIL", "notifies nobody",
                  "no confirmed subscription")


async def test_alarm_needs_a_multi_region_logging_trail(aws_fake):
    seed_trail(aws_fake, multi_region=False)
    seed_trail(aws_fake, "stopped-trail", logging=False, log_group=LOG_GROUP)
    topic = seed_topic(aws_fake)
    seed_cis_alarm(aws_fake, "cloudwatch_root_usage_alarm", topic)
    out = await scan({"cloudwatch_root_usage_alarm"})
    assert_status(one(out, "cloudwatch_root_usage_alarm"), "FAIL", "no multi-region trail",
                  "stopped-trail is not logging")


async def test_alarm_on_a_log_group_no_trail_uses_does_not_count(aws_fake):
    seed_trail(aws_fake)
    aws_fake.client("logs").create_log_group(logGroupName="app-logs")
    topic = seed_topic(aws_fake)
    seed_cis_alarm(aws_fake, "cloudwatch_root_usage_alarm", topic, log_group="app-logs")
    out = await scan({"cloudwatch_root_usage_alarm"})
    assert_status(one(out, "cloudwatch_root_usage_alarm"), "FAIL", f"log group {LOG_GROUP} has no metric filter")


async def test_metric_filters_denied_errors_all_fifteen(aws_fake):
    seed_trail(aws_fake)
    aws_fake.configure(deny=[{"service": "logs", "operation": "DescribeMetricFilters"}])
    out = await scan(MONITORING_CHECKS | {"cloudtrail_multi_region_enabled"})
    for check in MONITORING_CHECKS:
        assert_status(one(out, check), "ERROR", "logs:DescribeMetricFilters")
    assert one(out, "cloudtrail_multi_region_enabled").status == "PASS"


async def test_topic_subscriptions_denied_is_an_error(aws_fake):
    seed_trail(aws_fake)
    topic = seed_topic(aws_fake)
    seed_cis_alarm(aws_fake, "cloudwatch_root_usage_alarm", topic)
    seed_cis_alarm(aws_fake, "cloudwatch_vpc_changes_alarm", None)
    aws_fake.configure(deny=[{"service": "sns", "operation": "ListSubscriptionsByTopic"}])
    out = await scan({"cloudwatch_root_usage_alarm", "cloudwatch_vpc_changes_alarm"})
    assert_status(one(out, "cloudwatch_root_usage_alarm"), "ERROR", "sns:ListSubscriptionsByTopic")
    # The VPC alarm notifies no topic: no subscription needs reading to conclude.
    assert one(out, "cloudwatch_vpc_changes_alarm").status == "FAIL"


def _monitoring_fixture(**group_overrides) -> tuple[CloudTrailTrail, LogGroupMonitoring]:
    key = log_group_arn().removesuffix(":*")
    topic = f"arn:aws:sns:{REGION}:{CUSTOMER_ACCOUNT}:alerts"
    activity = MONITORED_BY_CHECK["cloudwatch_root_usage_alarm"]
    values = dict(region=REGION, resource_id=key, arn=key, log_group_name=LOG_GROUP, owner_account=CUSTOMER_ACCOUNT,
                  metric_filters=[MetricFilter(name="root", pattern=activity.reference_pattern,
                                               metrics=[MetricRef(namespace="CIS", name="Root")])],
                  alarms=[MetricAlarm(name="root", metrics=[MetricRef(namespace="CIS", name="Root")],
                                      alarm_actions=[topic])],
                  topics={topic: TopicSubscriptions(topic_arn=topic, confirmed=1, protocols=["email"])})
    values.update(group_overrides)
    return trail_fixture(), LogGroupMonitoring(**values)


def test_pending_subscription_does_not_count():
    topic = f"arn:aws:sns:{REGION}:{CUSTOMER_ACCOUNT}:alerts"
    trail, group = _monitoring_fixture(topics={topic: TopicSubscriptions(topic_arn=topic, pending=2)})
    assert_status(only(evaluate_on("cloudwatch_root_usage_alarm", trail, group)), Status.FAIL,
                  "2 pending confirmation")
    trail, group = _monitoring_fixture()
    assert_status(only(evaluate_on("cloudwatch_root_usage_alarm", trail, group)), Status.PASS)


def test_alarm_with_dimensions_watches_another_series():
    trail, group = _monitoring_fixture()
    group.alarms = [MetricAlarm(name="root", metrics=[MetricRef(namespace="CIS", name="Root", dimensions=["Env"])],
                                alarm_actions=list(group.topics))]
    assert_status(only(evaluate_on("cloudwatch_root_usage_alarm", trail, group)), Status.FAIL, "no alarm watches")


def test_metric_math_alarm_counts():
    trail, group = _monitoring_fixture()
    group.alarms = [MetricAlarm(name="math", metrics=[MetricRef(namespace="Other", name="X"),
                                                      MetricRef(namespace="CIS", name="Root")],
                                alarm_actions=list(group.topics))]
    assert_status(only(evaluate_on("cloudwatch_root_usage_alarm", trail, group)), Status.PASS, "'math'")


def test_log_group_in_another_account_cannot_be_inspected():
    trail, group = _monitoring_fixture(inspected=False, owner_account="999988887777", metric_filters=[], alarms=[],
                                       topics={})
    assert_status(only(evaluate_on("cloudwatch_root_usage_alarm", trail, group)), Status.FAIL,
                  "belongs to account 999988887777")


# ==================================================================================================
# The filter pattern language
# ==================================================================================================

@pytest.mark.parametrize(("pattern", "event", "expected"), [
    ('{ $.eventName = "ConsoleLogin" }', record("ConsoleLogin", "signin.amazonaws.com"), True),
    ("{ $.eventName = Console* }", record("ConsoleLogin", "signin.amazonaws.com"), True),
    ("{ $.eventName = consolelogin }", record("ConsoleLogin", "signin.amazonaws.com"), False),
    ("{ $.eventName = %Delete(Trail|Bucket)% }", record("DeleteTrail", "cloudtrail.amazonaws.com"), True),
    ("{ $.errorCode != AccessDenied }", record("ListUsers", "iam.amazonaws.com"), False),   # absent: no match
    ("{ $.errorCode NOT EXISTS }", record("ListUsers", "iam.amazonaws.com"), True),
    ("{ $.readOnly IS FALSE }", record("CreateUser", "iam.amazonaws.com"), True),
    ("{ $.requestParameters IS NULL }", record("ListUsers", "iam.amazonaws.com"), True),
    ('{ $.userIdentity.type = "IAMUser" && ($.eventName = A || $.eventName = ListUsers) }',
     record("ListUsers", "iam.amazonaws.com"), True),
    ("ListUsers iam.amazonaws.com", record("ListUsers", "iam.amazonaws.com"), True),
    ("ListUsers -jane", record("ListUsers", "iam.amazonaws.com"), False),
    ("?CreateUser ?ListUsers", record("ListUsers", "iam.amazonaws.com"), True),
    ("", record("ListUsers", "iam.amazonaws.com"), True),
])
def test_pattern_semantics(pattern, event, expected):
    assert compile_pattern(pattern)(event) is expected


@pytest.mark.parametrize("pattern", ["{ $.eventName = ", "{ eventName = x }", "[ip, user]", "{ $.a = 1 && }",
                                     '{ $.a = "open }'])
def test_unreadable_patterns_never_pass(pattern):
    verdict = covers(pattern, MONITORED_BY_CHECK["cloudwatch_root_usage_alarm"])
    assert not verdict.ok and "cannot be read" in verdict.reason


def test_each_reference_pattern_covers_its_own_activity_only():
    for activity in MONITORED:
        assert covers(activity.reference_pattern, activity).ok, activity.check_id
        for other in MONITORED:
            if other is not activity:
                assert not covers(activity.reference_pattern, other).ok, (activity.check_id, other.check_id)


def test_classic_link_events_are_optional_for_vpc_changes():
    activity = MONITORED_BY_CHECK["cloudwatch_vpc_changes_alarm"]
    without = ("{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || "
               "($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || "
               "($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) }")
    assert covers(without, activity).ok
    assert not covers(without.replace("($.eventName = ModifyVpcAttribute) || ", ""), activity).ok
