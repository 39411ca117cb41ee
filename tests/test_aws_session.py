"""app.aws.session against the AWS fake: AssumeRole, refresh, read-only clients, ARN parsing, no leaks."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import pickle
import socket
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from app.aws.errors import (
    AssumeRoleDenied,
    AwsCallError,
    InvalidAssumeRoleInput,
    InvalidRoleArn,
    SessionNotStarted,
)
from app.aws.guard import ReadOnlyViolation
from app.aws.session import (
    USER_AGENT_EXTRA,
    AssumedRole,
    CallerIdentity,
    ClientOptions,
    RoleArn,
    parse_role_arn,
    scanner_client,
    scanner_identity,
    scanner_session,
    scrub,
    verify_identity,
)
from tests.aws_fixtures import CUSTOMER_ACCOUNT, OTHER_ACCOUNT, SCANNER_ARN, trust_policy

EXTERNAL_ID = "cw-8d41f0c2a97e4b15"
OPTIONS = ClientOptions(max_attempts=1)


class Clock:
    """A wall clock the test can move forward; credentials judge expiry by it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def role(aws_fake) -> str:
    return aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID))


def assumed_role(role_arn: str, external_id: str | None = EXTERNAL_ID, **kwargs) -> AssumedRole:
    kwargs.setdefault("options", OPTIONS)
    kwargs.setdefault("session_name", "cw-scan-1")
    return AssumedRole(role_arn, external_id, **kwargs)


# ------------------------------------------------------------------------------------------------
# Role ARNs and inputs
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:iam::123456789012:role/CloudWizard", RoleArn("aws", "123456789012", "/", "CloudWizard")),
        ("arn:aws:iam::123456789012:role/security/CloudWizard",
         RoleArn("aws", "123456789012", "/security/", "CloudWizard")),
        ("arn:aws:iam::000000000001:role/a/b-c/d_e/R", RoleArn("aws", "000000000001", "/a/b-c/d_e/", "R")),
        ("arn:aws-us-gov:iam::123456789012:role/R", RoleArn("aws-us-gov", "123456789012", "/", "R")),
        ("arn:aws-cn:iam::123456789012:role/R", RoleArn("aws-cn", "123456789012", "/", "R")),
        ("arn:aws:iam::123456789012:role/a+b=c,d.e@f_g-h",
         RoleArn("aws", "123456789012", "/", "a+b=c,d.e@f_g-h")),
        ("arn:aws:iam::123456789012:role/" + "n" * 64, RoleArn("aws", "123456789012", "/", "n" * 64)),
        ("arn:aws:iam::123456789012:role/" + "p" * 510 + "/R",
         RoleArn("aws", "123456789012", "/" + "p" * 510 + "/", "R")),
        ("arn:aws:iam::123456789012:role/path:with!odd~chars/R",
         RoleArn("aws", "123456789012", "/path:with!odd~chars/", "R")),
    ],
)
def test_parse_role_arn_accepts(arn, expected):
    parsed = parse_role_arn(arn)
    assert parsed == expected
    assert str(parsed) == arn


@pytest.mark.parametrize(
    ("arn", "reason"),
    [
        (None, "must be a string"),
        (123456789012, "must be a string"),
        ("", "must not be empty"),
        (" arn:aws:iam::123456789012:role/R", "must not contain whitespace"),
        ("arn:aws:iam::123456789012:role/R\n", "must not contain whitespace"),
        ("arn:aws:iam::123456789012:role/" + "p" * 2030 + "/R", "at most 2048 characters"),
        ("CloudWizardReadOnly", "must look like arn:aws:iam::123456789012:role/NAME"),
        ("arn:aws:iam::123456789012", "must look like"),
        ("urn:aws:iam::123456789012:role/R", "must look like"),
        ("arn:aws-foo:iam::123456789012:role/R", "unknown partition 'aws-foo'"),
        ("arn:AWS:iam::123456789012:role/R", "unknown partition 'AWS'"),
        ("arn:aws:sts::123456789012:assumed-role/R/session", "assumed-role session ARN"),
        ("arn:aws:s3:::my-bucket", "service must be 'iam', not 's3'"),
        ("arn:aws:iam:us-east-1:123456789012:role/R", "IAM ARNs have no region"),
        ("arn:aws:iam::12345678901:role/R", "exactly 12 digits, not '12345678901'"),
        ("arn:aws:iam::1234567890123:role/R", "exactly 12 digits"),
        ("arn:aws:iam::12345678901a:role/R", "exactly 12 digits"),
        ("arn:aws:iam:::role/R", "exactly 12 digits, not ''"),
        ("arn:aws:iam::123456789012:user/alice", "must name a role (role/NAME), not 'user'"),
        ("arn:aws:iam::123456789012:root", "must name a role (role/NAME), not 'root'"),
        ("arn:aws:iam::123456789012:rolex/R", "not 'rolex'"),
        ("arn:aws:iam::123456789012:role/", "role name is empty"),
        ("arn:aws:iam::123456789012:role/path/", "role name is empty"),
        ("arn:aws:iam::123456789012:role/" + "n" * 65, "at most 64 characters"),
        ("arn:aws:iam::123456789012:role/bad*name", "letters, digits and + = , . @ _ -"),
        ("arn:aws:iam::123456789012:role/bad:name", "letters, digits and + = , . @ _ -"),
        ("arn:aws:iam::123456789012:role/rôle", "letters, digits and + = , . @ _ -"),
        ("arn:aws:iam::123456789012:role//R", "empty segment"),
        ("arn:aws:iam::123456789012:role/a//b/R", "empty segment"),
        ("arn:aws:iam::123456789012:role/" + "p" * 512 + "/R", "path must be at most 512 characters"),
        ("arn:aws:iam::123456789012:role/pâth/R", "printable ASCII"),
    ],
)
def test_parse_role_arn_rejects_with_a_precise_reason(arn, reason):
    with pytest.raises(InvalidRoleArn) as exc_info:
        parse_role_arn(arn)
    assert reason in exc_info.value.reason
    assert isinstance(exc_info.value, ValueError)
    assert str(exc_info.value).startswith("invalid IAM role ARN: ")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"session_name": "x"}, "session_name"),
        ({"session_name": "s" * 65}, "session_name"),
        ({"session_name": "has space"}, "session_name"),
        ({"session_name": "scan/1"}, "session_name"),
        ({"external_id": "x"}, "external_id"),
        ({"external_id": "e" * 1225}, "external_id"),
        ({"external_id": "has space"}, "external_id"),
        ({"external_id": "semi;colon"}, "external_id"),
        ({"duration_seconds": 899}, "duration_seconds"),
        ({"duration_seconds": 3601}, "duration_seconds"),
        ({"duration_seconds": True}, "duration_seconds"),
        ({"duration_seconds": 900.0}, "duration_seconds"),
    ],
)
def test_assumed_role_inputs_are_validated(kwargs, field):
    external_id = kwargs.pop("external_id", EXTERNAL_ID)
    with pytest.raises(InvalidAssumeRoleInput) as exc_info:
        AssumedRole("arn:aws:iam::123456789012:role/R", external_id, **kwargs)
    assert exc_info.value.field == field


def test_assumed_role_rejects_bad_arns_and_options():
    with pytest.raises(InvalidRoleArn):
        AssumedRole("arn:aws:iam::123456789012:user/alice", EXTERNAL_ID)
    with pytest.raises(ValueError, match="refresh windows"):
        AssumedRole("arn:aws:iam::123456789012:role/R", EXTERNAL_ID, advisory_refresh_seconds=60,
                    mandatory_refresh_seconds=120)
    with pytest.raises(ValueError):
        ClientOptions(max_attempts=0)
    with pytest.raises(ValueError):
        ClientOptions(read_timeout=0)


def test_partition_picks_the_sts_region():
    assert AssumedRole("arn:aws-us-gov:iam::123456789012:role/R", EXTERNAL_ID).sts_region == "us-gov-west-1"
    assert AssumedRole("arn:aws-cn:iam::123456789012:role/R", EXTERNAL_ID).sts_region == "cn-north-1"
    assert AssumedRole("arn:aws:iam::123456789012:role/R", EXTERNAL_ID).sts_region == "us-east-1"


# ------------------------------------------------------------------------------------------------
# AssumeRole
# ------------------------------------------------------------------------------------------------

async def test_start_assumes_the_role_and_verify_identity_names_the_customer_account(aws_fake, role):
    events = []
    assumed = assumed_role(role, on_assume=events.append, duration_seconds=900)
    assert not assumed.started
    assert await assumed.start() is assumed
    assert assumed.started and assumed.assume_count == 1
    session_arn = f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/CloudWizardReadOnly/cw-scan-1"
    assert assumed.assumed_role_arn == session_arn
    assert timedelta(minutes=14) < assumed.expires_at - datetime.now(UTC) <= timedelta(minutes=15)

    identity = await verify_identity(assumed)
    assert identity == CallerIdentity(CUSTOMER_ACCOUNT, session_arn)
    account_id, arn = identity
    assert (account_id, arn) == (CUSTOMER_ACCOUNT, session_arn)

    assert [e["outcome"] for e in events] == ["success"]
    event = events[0]
    assert event == {
        "action": "aws.assume_role",
        "scanner_principal": SCANNER_ARN,
        "account_id": CUSTOMER_ACCOUNT,
        "role_arn": role,
        "session_name": "cw-scan-1",
        "external_id_provided": True,
        "duration_seconds": 900,
        "refresh": False,
        "outcome": "success",
        "request_id": event["request_id"],
        "assumed_role_arn": session_arn,
        "expires_at": assumed.expires_at.isoformat(),
    }
    assert event["request_id"]
    stats = aws_fake.stats()
    assert stats["calls"]["sts:AssumeRole"] == 1
    assert stats["by_account"][CUSTOMER_ACCOUNT]["sts:GetCallerIdentity"] == 1


async def test_start_is_idempotent_and_concurrent_starts_assume_once(aws_fake, role):
    assumed = assumed_role(role)
    await asyncio.gather(*(assumed.start() for _ in range(5)))
    await assumed.start()
    assert assumed.assume_count == 1
    assert aws_fake.calls("sts:AssumeRole") == 1


async def test_client_before_start_is_refused(role):
    assumed = assumed_role(role)
    with pytest.raises(SessionNotStarted):
        async with assumed.client("ec2", "us-east-1"):
            pass


async def test_role_in_another_account(aws_fake):
    other = aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID),
                                 account_id=OTHER_ACCOUNT)
    assumed = await assumed_role(parse_role_arn(other)).start()
    assert (await verify_identity(assumed)).account_id == OTHER_ACCOUNT
    async with assumed.client("ec2", "eu-west-1") as ec2:
        await ec2.describe_vpcs()
    assert aws_fake.stats()["by_account"][OTHER_ACCOUNT]["ec2:DescribeVpcs"] == 1


@pytest.mark.parametrize("external_id", [None, "cw-wrong-external-id"])
async def test_wrong_or_missing_external_id_raises_assume_role_denied(aws_fake, role, external_id):
    events = []

    async def audit(event):   # an async hook is awaited
        await asyncio.sleep(0)
        events.append(event)

    assumed = assumed_role(role, external_id, on_assume=audit)
    with pytest.raises(AssumeRoleDenied) as exc_info:
        await assumed.start()
    error = exc_info.value
    assert isinstance(error, AwsCallError)
    assert (error.role_arn, error.code, error.http_status, error.operation) == (role, "AccessDenied", 403,
                                                                                 "AssumeRole")
    assert error.message == ("User: arn:aws:sts::111111111111:assumed-role/CloudWizardScanner/"
                             "cloudwizard-scanner is not authorized to perform: sts:AssumeRole "
                             f"on resource: {role}")
    assert error.request_id and error.is_access_denied
    assert not assumed.started
    assert len(events) == 1
    event = events[0]
    assert event["outcome"] == "denied" and event["error_code"] == "AccessDenied"
    assert event["request_id"] == error.request_id
    assert event["external_id_provided"] is (external_id is not None)
    assert "assumed_role_arn" not in event


async def test_missing_role_raises_assume_role_denied(aws_fake):
    with pytest.raises(AssumeRoleDenied):
        await assumed_role(f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/Gone").start()


async def test_other_sts_failures_are_aws_call_errors(aws_fake, role):
    events = []
    aws_fake.configure(throttle=[{"service": "sts", "operation": "AssumeRole", "count": 1}])
    assumed = assumed_role(role, on_assume=events.append)
    with pytest.raises(AwsCallError) as exc_info:
        await assumed.start()
    error = exc_info.value
    assert not isinstance(error, AssumeRoleDenied)
    assert (error.code, error.http_status, error.is_throttling) == ("Throttling", 400, True)
    assert events[0]["outcome"] == "error" and events[0]["error_code"] == "Throttling"
    await assumed.start()  # the throttle was for one call only
    assert assumed.assume_count == 1


async def test_unreachable_sts_is_an_aws_call_error(role):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    options = ClientOptions(max_attempts=1, connect_timeout=1, endpoint_url=f"http://127.0.0.1:{closed_port}")
    with pytest.raises(AwsCallError) as exc_info:
        await assumed_role(role, options=options).start()
    assert exc_info.value.code == "EndpointConnectionError"
    assert exc_info.value.http_status is None


async def test_audit_hook_failure_propagates(aws_fake, role):
    def broken(event):
        raise RuntimeError("audit log unavailable")

    assumed = assumed_role(role, on_assume=broken)
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        await assumed.start()
    assert not assumed.started


# ------------------------------------------------------------------------------------------------
# Refresh
# ------------------------------------------------------------------------------------------------

async def test_credentials_refresh_by_assuming_the_role_again(aws_fake, role):
    clock = Clock()
    events = []

    def audit(event):
        events.append(event)
        if event["outcome"] == "success":
            clock.offset = timedelta()   # fresh credentials: their 15 minutes start now

    assumed = await assumed_role(role, duration_seconds=900, clock=clock, on_assume=audit).start()
    first_expiry = assumed.expires_at
    async with assumed.client("ec2", "us-east-1") as ec2:
        for _ in range(3):
            await ec2.describe_regions()
        assert aws_fake.calls("sts:AssumeRole") == 1

        # 11 minutes in: inside the 5-minute advisory window, so the next call re-assumes the role.
        clock.offset = timedelta(minutes=11)
        await ec2.describe_regions()
        assert aws_fake.calls("sts:AssumeRole") == 2
        assert assumed.assume_count == 2
        assert assumed.expires_at >= first_expiry
        await ec2.describe_regions()
        assert aws_fake.calls("sts:AssumeRole") == 2

        # Past the original expiry (a scan longer than the session): the call blocks on a refresh and works.
        clock.offset = timedelta(minutes=16)
        answers = await asyncio.gather(*(ec2.describe_regions() for _ in range(10)))
        assert all(a["Regions"] for a in answers)
        assert aws_fake.calls("sts:AssumeRole") == 3   # one refresh for ten concurrent calls

    assert [e["refresh"] for e in events] == [False, True, True]
    assert {e["outcome"] for e in events} == {"success"}
    assert aws_fake.calls("ec2:DescribeRegions") == 15
    assert aws_fake.stats()["by_account"][CUSTOMER_ACCOUNT]["ec2:DescribeRegions"] == 15


async def test_revoked_role_is_detected_at_the_next_refresh(aws_fake, role):
    clock = Clock()
    events = []
    assumed = await assumed_role(role, clock=clock, on_assume=events.append).start()
    aws_fake.client("iam").update_assume_role_policy(
        RoleName="CloudWizardReadOnly",
        PolicyDocument=json.dumps(trust_policy("arn:aws:iam::999999999999:root")),
    )
    async with assumed.client("ec2", "us-east-1") as ec2:
        await ec2.describe_regions()   # the session issued before the revocation still works
        clock.offset = timedelta(minutes=14)   # mandatory refresh window: the refresh must succeed
        with pytest.raises(AssumeRoleDenied):
            await ec2.describe_regions()
    assert [e["outcome"] for e in events] == ["success", "denied"]


# ------------------------------------------------------------------------------------------------
# Clients: guard, configuration, endpoint
# ------------------------------------------------------------------------------------------------

async def test_every_client_is_read_only_and_refused_calls_never_reach_aws(aws_fake, role):
    assumed = await assumed_role(role).start()
    before = aws_fake.stats()["total"]
    async with assumed.client("s3", "us-east-1") as s3:
        with pytest.raises(ReadOnlyViolation) as exc_info:
            await s3.create_bucket(Bucket="cw-should-not-exist")
        assert exc_info.value.operation == "s3:CreateBucket"
        with pytest.raises(ReadOnlyViolation):
            await s3.get_object(Bucket="b", Key="k")
    async with assumed.client("iam", "us-east-1") as iam:
        with pytest.raises(ReadOnlyViolation):
            await iam.create_user(UserName="backdoor")
    async with assumed.client("ec2", "us-east-1") as ec2:
        with pytest.raises(ReadOnlyViolation):
            await ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    async with assumed.client("sts", "us-east-1") as sts:
        # Only the internal STS client may AssumeRole: customer credentials cannot chain onwards.
        with pytest.raises(ReadOnlyViolation):
            await sts.assume_role(RoleArn=role, RoleSessionName="chained")
    async with scanner_client("iam", "us-east-1", options=OPTIONS) as iam:
        with pytest.raises(ReadOnlyViolation):
            await iam.delete_role(RoleName="CloudWizardReadOnly")
    assert aws_fake.stats()["total"] == before
    assert aws_fake.client("s3").list_buckets()["Buckets"] == []

    async with assumed.client("s3", "us-east-1") as s3:
        assert (await s3.list_buckets())["Buckets"] == []
    assert aws_fake.calls("s3:ListBuckets") == 2


async def test_extra_allowed_is_per_client(aws_fake, role):
    assumed = await assumed_role(role).start()
    extra = frozenset({"iam:GenerateCredentialReport"})
    async with assumed.client("iam", "us-east-1", extra_allowed=extra) as iam:
        assert (await iam.generate_credential_report())["State"]
        with pytest.raises(ReadOnlyViolation):
            await iam.create_user(UserName="x")


async def test_client_configuration(aws_fake, role):
    options = ClientOptions(max_attempts=4, max_pool_connections=64, connect_timeout=2, read_timeout=9)
    assumed = await assumed_role(role, options=options).start()
    async with assumed.client("ec2", "eu-central-1") as ec2:
        config = ec2.meta.config
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
        assert config.max_pool_connections == 64
        assert (config.connect_timeout, config.read_timeout) == (2, 9)
        assert USER_AGENT_EXTRA == "CloudWizard/0.1.0"
        assert USER_AGENT_EXTRA in config.user_agent_extra
        # AWS_ENDPOINT_URL is honoured by botocore itself: nothing in the options names the fake.
        assert ec2.meta.endpoint_url == aws_fake.endpoint_url
        assert ec2.meta.region_name == "eu-central-1"
    assert ClientOptions().max_pool_connections == 50


async def test_default_attempts_follow_the_standard_aws_setting(aws_fake, role, monkeypatch):
    assumed = await assumed_role(role, options=ClientOptions()).start()
    async with assumed.client("ec2", "us-east-1") as ec2:   # the fixture sets AWS_MAX_ATTEMPTS=2
        assert ec2.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 2}
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    async with assumed.client("ec2", "us-east-1") as ec2:
        assert ec2.meta.config.retries == {"mode": "adaptive"}   # botocore's adaptive default: 3 attempts
        aws_fake.configure(throttle=[{"service": "ec2", "operation": "DescribeVpcs", "count": 5}])
        with pytest.raises(ClientError) as exc_info:
            await ec2.describe_vpcs()
    assert exc_info.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert aws_fake.stats()["throttled"]["ec2:DescribeVpcs"] == 3


async def test_s3_control_reaches_a_local_endpoint(aws_fake, role):
    assumed = await assumed_role(role).start()
    async with assumed.client("s3control", "us-east-1") as s3control:
        with pytest.raises(ClientError) as exc_info:
            await s3control.get_public_access_block(AccountId=CUSTOMER_ACCOUNT)
    # An answer from moto's S3 Control backend, not a DNS failure for 123456789012.127.0.0.1.
    assert exc_info.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    assert aws_fake.stats()["by_account"][CUSTOMER_ACCOUNT]["s3control:GetPublicAccessBlock"] == 1


async def test_scanner_session_uses_the_standard_chain(aws_fake, tmp_path, monkeypatch):
    assert await scanner_identity(options=OPTIONS) == CallerIdentity(
        "111111111111", "arn:aws:sts::111111111111:assumed-role/CloudWizardScanner/cloudwizard-scanner")

    iam = aws_fake.client("iam", account_id="111111111111")
    iam.create_user(UserName="scanner")
    key = iam.create_access_key(UserName="scanner")["AccessKey"]
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text(f"[scanner]\naws_access_key_id = {key['AccessKeyId']}\n"
                                f"aws_secret_access_key = {key['SecretAccessKey']}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    session = scanner_session("scanner")
    assert await scanner_identity(session, options=OPTIONS) == CallerIdentity(
        "111111111111", "arn:aws:iam::111111111111:user/scanner")

    user_role = aws_fake.create_role("TrustsUser", trust_policy("arn:aws:iam::111111111111:user/scanner",
                                                                 EXTERNAL_ID))
    assumed = await assumed_role(user_role, scanner=session).start()
    assert (await verify_identity(assumed)).arn.endswith(":assumed-role/TrustsUser/cw-scan-1")
    with pytest.raises(AssumeRoleDenied):   # the default chain is a different principal
        await assumed_role(user_role).start()


# ------------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------------

async def test_credentials_never_leak_into_repr_events_or_logs(aws_fake, role, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    events = []
    assumed = assumed_role(role, clock=clock, on_assume=events.append)
    secrets = {EXTERNAL_ID}

    async def collect() -> None:
        frozen = await (await assumed.session.get_credentials()).get_frozen_credentials()
        secrets.update({frozen.access_key, frozen.secret_key, frozen.token})

    await assumed.start()
    await collect()
    async with assumed.client("ec2", "us-east-1") as ec2:
        await ec2.describe_regions()
        clock.offset = timedelta(minutes=14)
        await ec2.describe_regions()   # refresh
        clock.offset = timedelta()
    await collect()
    assert assumed.assume_count == 2 and len(secrets) == 7

    texts = {
        "repr": repr(assumed),
        "str": str(assumed),
        "events": repr(events),
        "logs": caplog.text,
        "output": "".join(capfd.readouterr()),
    }
    assert "botocore" in caplog.text   # debug logging really was on
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into {where}"
    assert "[REDACTED]" in caplog.text
    assert role in repr(assumed) and "cw-scan-1" in repr(assumed)
    with pytest.raises(TypeError):
        pickle.dumps(assumed)
    with pytest.raises(TypeError):
        copy.copy(assumed)


def test_scrub_removes_aws_secrets_from_text():
    text = ("<Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
            "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG</SecretAccessKey>"
            "<SessionToken>FQoGZXIvYXdzEBY+abc/def=</SessionToken></Credentials> "
            "{'X-Amz-Security-Token': b'FQoGZXIvYXdzEBYtoken', 'Authorization': b'AWS4-HMAC-SHA256 "
            "Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, "
            "Signature=0123abcd'} ExternalId=my-external-id&RoleSessionName=x "
            "{'ExternalId': 'another-external-id', \"secretAccessKey\": \"json-secret\"}")
    scrubbed = scrub(text)
    for secret in ("ASIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "FQoGZXIvYXdzEBY",
                   "0123abcd", "my-external-id", "another-external-id", "json-secret"):
        assert secret not in scrubbed
    assert "RoleSessionName=x" in scrubbed
