"""The AWS fake behaves like AWS where moto does not.

AssumeRole trust and External ID enforcement, real error shapes for injected throttling and AccessDenied,
call statistics, and the calls moto lacks.
"""

from __future__ import annotations

import json
import time

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from app.fakes.aws import Caller, trust_allows
from tests.aws_fixtures import CUSTOMER_ACCOUNT, OTHER_ACCOUNT, SCANNER_ARN, trust_policy

SCANNER_SESSION_ARN = "arn:aws:sts::111111111111:assumed-role/CloudWizardScanner/cloudwizard-scanner"
EXTERNAL_ID = "cw-3f9a1c7e5b2d4a60"


def denied_message(role_arn: str, caller: str = SCANNER_SESSION_ARN) -> str:
    return f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"


def assume(fake, role_arn: str, external_id: str | None = None, *, credentials=None, **extra):
    kwargs = {"RoleArn": role_arn, "RoleSessionName": "cw-test", **extra}
    if external_id is not None:
        kwargs["ExternalId"] = external_id
    # Unvalidated, so that the fake's own checks are what answers out-of-range input.
    return fake.client("sts", credentials=credentials, parameter_validation=False).assume_role(**kwargs)


def assert_denied(exc_info, role_arn: str, caller: str = SCANNER_SESSION_ARN) -> None:
    response = exc_info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"] == {
        "Type": "Sender", "Code": "AccessDenied", "Message": denied_message(role_arn, caller),
    }
    assert response["ResponseMetadata"]["RequestId"]


# ------------------------------------------------------------------------------------------------
# AssumeRole enforcement
# ------------------------------------------------------------------------------------------------

def test_correct_external_id_gives_credentials_in_the_role_account(aws_fake):
    role = aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    answer = assume(aws_fake, role, EXTERNAL_ID, DurationSeconds=900)
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    expected = f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/CloudWizardReadOnly/cw-test"
    assert answer["AssumedRoleUser"]["Arn"] == expected
    identity = aws_fake.client("sts", credentials=creds).get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (CUSTOMER_ACCOUNT, expected)


def test_unknown_keys_act_as_the_scanner_principal(aws_fake):
    identity = aws_fake.client("sts").get_caller_identity()
    assert identity["Arn"] == SCANNER_SESSION_ARN
    assert identity["Account"] == "111111111111"
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":cloudwizard-scanner")


@pytest.mark.parametrize("external_id", [None, "cw-wrong-id", EXTERNAL_ID.upper()])
def test_missing_or_wrong_external_id_is_denied(aws_fake, external_id):
    role = aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, external_id)
    assert_denied(exc_info, role)
    stats = aws_fake.stats()
    assert stats["denied"] == {"sts:AssumeRole": 1}
    assert stats["calls"]["sts:AssumeRole"] == 1


def test_role_trusting_everyone_without_condition_is_assumable_without_external_id(aws_fake):
    # The dangerous configuration the connect/verify step must detect: the fake must let it through.
    role = aws_fake.create_role("OpenRole", trust_policy("*"))
    assert assume(aws_fake, role)["AssumedRoleUser"]["Arn"].endswith(":assumed-role/OpenRole/cw-test")
    role2 = aws_fake.create_role("OpenRole2", trust_policy({"AWS": "*"}))
    assert assume(aws_fake, role2)["Credentials"]["AccessKeyId"]


def test_role_that_does_not_exist_is_denied_like_an_untrusted_one(aws_fake):
    missing = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/NoSuchRole"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, missing, EXTERNAL_ID)
    assert_denied(exc_info, missing)
    never_seen = f"arn:aws:iam::{OTHER_ACCOUNT}:role/NoSuchRole"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, never_seen, EXTERNAL_ID)
    assert_denied(exc_info, never_seen)


def test_role_path_must_match_exactly(aws_fake):
    role = aws_fake.create_role("PathRole", trust_policy(SCANNER_ARN, EXTERNAL_ID), path="/cloudwizard/")
    assert role == f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/cloudwizard/PathRole"
    assert assume(aws_fake, role, EXTERNAL_ID)["Credentials"]
    without_path = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/PathRole"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, without_path, EXTERNAL_ID)
    assert_denied(exc_info, without_path)


def test_revoked_trust_policy_is_denied(aws_fake):
    role = aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    assert assume(aws_fake, role, EXTERNAL_ID)["Credentials"]
    aws_fake.client("iam").update_assume_role_policy(
        RoleName="CloudWizardReadOnly",
        PolicyDocument=json.dumps(trust_policy("arn:aws:iam::999999999999:role/SomeoneElse", EXTERNAL_ID)),
    )
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID)
    assert_denied(exc_info, role)


def test_deleted_role_is_denied(aws_fake):
    role = aws_fake.create_role("CloudWizardReadOnly", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    assert assume(aws_fake, role, EXTERNAL_ID)["Credentials"]
    aws_fake.client("iam").delete_role(RoleName="CloudWizardReadOnly")
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID)
    assert_denied(exc_info, role)


def test_role_in_another_account_follows_its_own_trust_policy(aws_fake):
    trusted = aws_fake.create_role("Trusting", trust_policy(SCANNER_ARN, EXTERNAL_ID),
                                   account_id=OTHER_ACCOUNT)
    untrusted = aws_fake.create_role("NotTrusting", trust_policy("arn:aws:iam::222222222222:root"),
                                     account_id=OTHER_ACCOUNT)
    assert trusted == f"arn:aws:iam::{OTHER_ACCOUNT}:role/Trusting"
    creds = assume(aws_fake, trusted, EXTERNAL_ID)["Credentials"]
    identity = aws_fake.client("sts", credentials=creds).get_caller_identity()
    assert identity["Account"] == OTHER_ACCOUNT
    assert identity["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/Trusting/cw-test"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, untrusted, EXTERNAL_ID)
    assert_denied(exc_info, untrusted)


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        ("arn:aws:iam::111111111111:root", True),
        ({"AWS": "111111111111"}, True),
        ({"AWS": ["arn:aws:iam::999999999999:root", SCANNER_ARN]}, True),
        ({"AWS": SCANNER_SESSION_ARN}, True),
        ("arn:aws:iam::222222222222:root", False),
        ({"AWS": "arn:aws:iam::111111111111:role/SomeOtherRole"}, False),
        ({"Service": "ec2.amazonaws.com"}, False),
        ({"AWS": "arn:aws-cn:iam::111111111111:root"}, False),
    ],
)
def test_principal_forms(aws_fake, principal, allowed):
    role = aws_fake.create_role("R", trust_policy(principal, EXTERNAL_ID))
    if allowed:
        assert assume(aws_fake, role, EXTERNAL_ID)["Credentials"]
    else:
        with pytest.raises(ClientError) as exc_info:
            assume(aws_fake, role, EXTERNAL_ID)
        assert_denied(exc_info, role)


@pytest.mark.parametrize(
    ("condition", "external_id", "allowed"),
    [
        ({"StringLike": {"sts:ExternalId": "cw-*"}}, "cw-123", True),
        ({"StringLike": {"sts:ExternalId": "cw-*"}}, "xx-123", False),
        ({"StringEqualsIgnoreCase": {"sts:ExternalId": "CW-ABC"}}, "cw-abc", True),
        ({"StringEquals": {"sts:ExternalId": ["first-id", "second-id"]}}, "second-id", True),
        ({"StringEquals": {"sts:ExternalId": "the-id", "aws:PrincipalAccount": "111111111111"}},
         "the-id", True),
        ({"StringEquals": {"sts:ExternalId": "the-id", "aws:PrincipalAccount": "222222222222"}},
         "the-id", False),
        ({"StringEquals": {"sts:ExternalId": "the-id"}, "Bool": {"aws:SecureTransport": "true"}},
         "the-id", True),
        ({"StringEquals": {"aws:PrincipalArn": SCANNER_ARN}}, None, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/CloudWizard*"}}, None, True),
        ({"StringEquals": {"sts:RoleSessionName": "cw-test"}}, None, True),
        # Negated operators and ForAllValues hold when the key is absent: AWS's (and the fake's) semantics.
        ({"StringNotEquals": {"sts:ExternalId": "blocked"}}, None, True),
        ({"ForAllValues:StringEquals": {"sts:ExternalId": "the-id"}}, None, True),
        ({"StringEqualsIfExists": {"sts:ExternalId": "the-id"}}, None, True),
        ({"StringEqualsIfExists": {"sts:ExternalId": "the-id"}}, "other-id", False),
        ({"Null": {"sts:ExternalId": "false"}}, "any-id", True),
        ({"Null": {"sts:ExternalId": "false"}}, None, False),
        # Operators the fake does not evaluate fail closed.
        ({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, None, False),
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, None, False),
        ("not-an-object", None, False),
    ],
)
def test_conditions(aws_fake, condition, external_id, allowed):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, condition=condition))
    if allowed:
        assert assume(aws_fake, role, external_id)["Credentials"]
    else:
        with pytest.raises(ClientError) as exc_info:
            assume(aws_fake, role, external_id)
        assert_denied(exc_info, role)


def test_explicit_deny_wins_and_unknown_operators_in_a_deny_fail_closed(aws_fake):
    allow = trust_policy(SCANNER_ARN, EXTERNAL_ID)["Statement"][0]
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sts:*",
            "Condition": {"StringEquals": {"sts:RoleSessionName": "cw-test"}}}
    role = aws_fake.create_role("R1", {"Version": "2012-10-17", "Statement": [allow, deny]})
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID)
    assert_denied(exc_info, role)
    assert assume(aws_fake, role, EXTERNAL_ID, RoleSessionName="other-name")["Credentials"]

    unknown_deny = {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole",
                    "Condition": {"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}}
    role2 = aws_fake.create_role("R2", {"Version": "2012-10-17", "Statement": [allow, unknown_deny]})
    with pytest.raises(ClientError):
        assume(aws_fake, role2, EXTERNAL_ID)


def test_session_tags_need_tag_session_in_the_trust_policy(aws_fake):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID, Tags=[{"Key": "k", "Value": "v"}])
    assert_denied(exc_info, role)
    role2 = aws_fake.create_role("R2", trust_policy(SCANNER_ARN, EXTERNAL_ID,
                                                    action=["sts:AssumeRole", "sts:TagSession"]))
    assert assume(aws_fake, role2, EXTERNAL_ID, Tags=[{"Key": "k", "Value": "v"}])["Credentials"]


def _validation_error(exc_info) -> str:
    response = exc_info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationError"
    return response["Error"]["Message"]


def test_duration_is_checked_against_max_session_duration_and_role_chaining(aws_fake):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, EXTERNAL_ID), max_session_duration=7200)
    assert assume(aws_fake, role, EXTERNAL_ID, DurationSeconds=3600)["Credentials"]
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID, DurationSeconds=7201)
    assert _validation_error(exc_info) == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    # The default caller is a role session, so this is role chaining: one hour at most.
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID, DurationSeconds=5400)
    assert "1 hour session limit for roles assumed by role chaining" in _validation_error(exc_info)
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID, DurationSeconds=899)
    assert _validation_error(exc_info) == (
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 900")


def test_untrusted_caller_does_not_learn_the_max_session_duration(aws_fake):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, "wrong-id", DurationSeconds=7200)
    assert_denied(exc_info, role)


@pytest.mark.parametrize(
    ("session_name", "fragment"),
    [
        ("x", "Member must have length greater than or equal to 2"),
        ("a" * 65, "Member must have length less than or equal to 64"),
        ("has space", r"Member must satisfy regular expression pattern: [\w+=,.@-]*"),
        ("semi;colon", r"Member must satisfy regular expression pattern: [\w+=,.@-]*"),
    ],
)
def test_role_session_name_is_validated(aws_fake, session_name, fragment):
    role = aws_fake.create_role("R", trust_policy("*"))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, RoleSessionName=session_name)
    message = _validation_error(exc_info)
    assert message.startswith("1 validation error detected: ") and fragment in message


def test_invalid_role_arn_and_external_id_are_validation_errors(aws_fake):
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, "arn:aws:s3:::some-bucket-name")
    assert _validation_error(exc_info) == "Request ARN is invalid"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, "arn:aws:iam::123456789012:role/R", "bad id!", RoleSessionName="x")
    message = _validation_error(exc_info)
    assert message.startswith("2 validation errors detected: ")
    assert "'roleSessionName'" in message and "'externalId'" in message


def test_iam_user_caller_is_identified_by_its_access_key(aws_fake):
    iam = aws_fake.client("iam", account_id="111111111111")
    iam.create_user(UserName="scanner-user")
    key = iam.create_access_key(UserName="scanner-user")["AccessKey"]
    user_creds = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    user_arn = "arn:aws:iam::111111111111:user/scanner-user"
    role = aws_fake.create_role("ForUser", trust_policy(user_arn, EXTERNAL_ID), max_session_duration=7200)
    # Not role chaining, so up to the role's MaxSessionDuration.
    assert assume(aws_fake, role, EXTERNAL_ID, credentials=user_creds, DurationSeconds=7200)["Credentials"]
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID)   # the default scanner principal is not trusted
    assert_denied(exc_info, role)
    other = aws_fake.create_role("NotForUser", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, other, EXTERNAL_ID, credentials=user_creds)
    assert_denied(exc_info, other, caller=user_arn)


def test_role_chaining_caller_is_the_assumed_role_session(aws_fake):
    first = aws_fake.create_role("First", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    second = aws_fake.create_role("Second", trust_policy(first))
    creds = assume(aws_fake, first, EXTERNAL_ID)["Credentials"]
    assert assume(aws_fake, second, credentials=creds)["AssumedRoleUser"]["Arn"].endswith("Second/cw-test")
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, second)
    assert_denied(exc_info, second)
    third = aws_fake.create_role("Third", trust_policy(SCANNER_ARN))
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, third, credentials=creds)
    assert_denied(exc_info, third, caller=f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/First/cw-test")


def test_default_caller_is_configurable(aws_fake):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, EXTERNAL_ID))
    aws_fake.configure(caller_arn="arn:aws:iam::222222222222:user/someone")
    assert aws_fake.client("sts").get_caller_identity()["Arn"] == "arn:aws:iam::222222222222:user/someone"
    with pytest.raises(ClientError) as exc_info:
        assume(aws_fake, role, EXTERNAL_ID)
    assert_denied(exc_info, role, caller="arn:aws:iam::222222222222:user/someone")
    aws_fake.reset()
    assert aws_fake.client("sts").get_caller_identity()["Arn"] == SCANNER_SESSION_ARN


def test_trust_evaluation_rejects_unreadable_policies():
    caller = Caller.from_arn(SCANNER_ARN)
    context = {"sts:ExternalId": "x1"}
    assert not trust_allows("not json", caller, ["sts:AssumeRole"], context)
    assert not trust_allows('{"Statement": "nope"}', caller, ["sts:AssumeRole"], context)
    assert not trust_allows({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}, caller,
                            ["sts:AssumeRole"], context)
    url_encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%22*%22%2C" \
                  "%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"
    assert trust_allows(url_encoded, caller, ["sts:AssumeRole"], context)


# ------------------------------------------------------------------------------------------------
# Fault injection and statistics
# ------------------------------------------------------------------------------------------------

def test_latency_is_added_to_every_aws_call(aws_fake):
    ec2 = aws_fake.client("ec2")

    def timed() -> float:
        start = time.perf_counter()
        ec2.describe_regions()
        return time.perf_counter() - start

    ec2.describe_regions()  # the first call builds moto's backend
    fast = min(timed() for _ in range(3))
    aws_fake.configure(latency_ms=300)
    slow = [timed() for _ in range(2)]
    assert fast < 0.3 <= min(slow)
    assert aws_fake.stats()["calls"]["ec2:DescribeRegions"] == 6


def _error(fn):
    with pytest.raises(ClientError) as exc_info:
        fn()
    response = exc_info.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"].get("Message"), response["ResponseMetadata"]["HTTPHeaders"])


THROTTLE_CASES = [
    # (service, operation, call, status, code) — ec2 protocol, query, JSON, REST-JSON, S3 REST-XML
    ("ec2", "DescribeRegions", lambda c: c.describe_regions(), 503, "RequestLimitExceeded"),
    ("iam", "ListRoles", lambda c: c.list_roles(), 400, "Throttling"),
    ("kms", "ListKeys", lambda c: c.list_keys(), 400, "ThrottlingException"),
    ("account", "ListRegions", lambda c: c.list_regions(), 429, "TooManyRequestsException"),
    ("s3", "ListBuckets", lambda c: c.list_buckets(), 503, "SlowDown"),
]


@pytest.mark.parametrize(("service", "operation", "call", "status", "code"), THROTTLE_CASES)
def test_throttling_injection_uses_each_protocols_shape(aws_fake, service, operation, call, status, code):
    aws_fake.configure(throttle=[{"service": service, "operation": operation, "count": 1}])
    client = aws_fake.client(service)
    got_status, got_code, _, _ = _error(lambda: call(client))
    assert (got_status, got_code) == (status, code)
    call(client)  # count exhausted
    stats = aws_fake.stats()
    assert stats["throttled"] == {f"{service}:{operation}": 1}
    assert stats["calls"][f"{service}:{operation}"] == 2


@pytest.mark.parametrize(("service", "operation", "call", "status", "code"), THROTTLE_CASES)
def test_botocore_retries_injected_throttling(aws_fake, service, operation, call, status, code):
    aws_fake.configure(throttle=[{"service": service, "operation": operation, "count": 1}])
    client = boto3.session.Session().client(
        service, region_name="us-east-1", endpoint_url=aws_fake.endpoint_url, aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    answer = call(client)
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert aws_fake.stats()["throttled"] == {f"{service}:{operation}": 1}


DENY_CASES = [
    ("ec2", "DescribeInstances", lambda c: c.describe_instances(), 403, "UnauthorizedOperation"),
    ("iam", "GetAccountSummary", lambda c: c.get_account_summary(), 403, "AccessDenied"),
    ("kms", "ListKeys", lambda c: c.list_keys(), 400, "AccessDeniedException"),
    ("account", "ListRegions", lambda c: c.list_regions(), 403, "AccessDeniedException"),
    ("s3", "ListBuckets", lambda c: c.list_buckets(), 403, "AccessDenied"),
]


@pytest.mark.parametrize(("service", "operation", "call", "status", "code"), DENY_CASES)
def test_access_denied_injection_uses_each_protocols_shape(aws_fake, service, operation, call, status, code):
    aws_fake.configure(deny=[{"service": service, "operation": operation}])
    client = aws_fake.client(service)
    for _ in range(2):  # no count: every matching call
        got_status, got_code, message, headers = _error(lambda: call(client))
        assert (got_status, got_code) == (status, code)
        assert f"User: {SCANNER_SESSION_ARN} is not authorized to perform: " in message
    if code == "AccessDeniedException":
        assert headers["x-amzn-errortype"] == code
    assert aws_fake.stats()["denied"] == {f"{service}:{operation}": 2}


def test_injection_can_target_one_account_and_names_the_iam_action(aws_fake):
    role = aws_fake.create_role("R", trust_policy(SCANNER_ARN, EXTERNAL_ID), account_id=OTHER_ACCOUNT)
    creds = assume(aws_fake, role, EXTERNAL_ID)["Credentials"]
    aws_fake.configure(deny=[{"service": "cloudwatch", "operation": "Describe*",
                              "account_id": OTHER_ACCOUNT}])
    assert aws_fake.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    _, code, message, _ = _error(lambda: aws_fake.client("cloudwatch", credentials=creds).describe_alarms())
    assert code == "AccessDenied"
    assert message == (f"User: arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/R/cw-test is not authorized to "
                       "perform: cloudwatch:DescribeAlarms because no identity-based policy allows the "
                       "cloudwatch:DescribeAlarms action")
    stats = aws_fake.stats()
    assert stats["by_account"][OTHER_ACCOUNT]["cloudwatch:DescribeAlarms"] == 1
    assert stats["by_account"][CUSTOMER_ACCOUNT]["cloudwatch:DescribeAlarms"] == 1


def test_fractional_throttling_is_seeded(aws_fake):
    def run() -> list[bool]:
        aws_fake.reset()
        aws_fake.configure(seed=42, throttle=[{"service": "sts", "operation": "GetCallerIdentity",
                                               "fraction": 0.5}])
        sts = aws_fake.client("sts")
        outcome = []
        for _ in range(30):
            try:
                sts.get_caller_identity()
                outcome.append(False)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "Throttling"
                outcome.append(True)
        return outcome

    first = run()
    assert 5 < sum(first) < 25
    assert run() == first
    assert aws_fake.stats()["throttled"]["sts:GetCallerIdentity"] == sum(first)


def test_stats_name_rest_operations(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-stats-bucket")
    s3.list_buckets()
    s3.list_objects_v2(Bucket="cw-stats-bucket")
    s3.head_bucket(Bucket="cw-stats-bucket")
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket="cw-stats-bucket")
    with pytest.raises(ClientError):
        s3.get_bucket_encryption(Bucket="cw-stats-bucket")
    aws_fake.client("logs").describe_log_groups()
    aws_fake.client("account").list_regions()
    calls = aws_fake.stats()["calls"]
    for key in ("s3:CreateBucket", "s3:ListBuckets", "s3:ListObjectsV2", "s3:HeadBucket",
                "s3:GetBucketPolicy", "s3:GetBucketEncryption", "logs:DescribeLogGroups",
                "account:ListRegions"):
        assert calls.get(key) == 1, (key, calls)


def test_control_api_validates_and_resets(aws_fake):
    with pytest.raises(ValueError, match="unknown configuration keys"):
        aws_fake.configure(latency=3)
    with pytest.raises(ValueError, match="a rule needs a service"):
        aws_fake.configure(throttle=[{"operation": "X"}])
    with pytest.raises(ValueError, match="fraction"):
        aws_fake.configure(deny=[{"service": "s3", "fraction": 2}])
    with pytest.raises(ValueError, match="latency_ms"):
        aws_fake.configure(latency_ms=-1)
    config = aws_fake.configure(latency_ms=5, deny=[{"service": "s3"}])
    assert config["deny"][0]["service"] == "s3" and config["latency_ms"] == 5
    assert httpx.get(f"{aws_fake.endpoint_url}/_cwfake/nope").status_code == 404
    aws_fake.client("sts").get_caller_identity()
    assert aws_fake.stats()["total"] == 1
    assert httpx.post(f"{aws_fake.endpoint_url}/_cwfake/reset").json() == {"status": "reset"}
    assert aws_fake.stats() == {"total": 0, "calls": {}, "throttled": {}, "denied": {}, "by_account": {}}
    assert httpx.get(f"{aws_fake.endpoint_url}/_cwfake/config").json()["deny"] == []


# ------------------------------------------------------------------------------------------------
# Calls moto lacks
# ------------------------------------------------------------------------------------------------

def test_list_regions_agrees_with_describe_regions(aws_fake):
    described = {r["RegionName"]: r["OptInStatus"]
                 for r in aws_fake.client("ec2").describe_regions(AllRegions=True)["Regions"]}
    account = aws_fake.client("account")
    listed, token = {}, None
    while True:
        page = account.list_regions(MaxResults=7, **({"NextToken": token} if token else {}))
        assert len(page["Regions"]) <= 7
        listed.update({r["RegionName"]: r["RegionOptStatus"] for r in page["Regions"]})
        token = page.get("NextToken")
        if not token:
            break
    expected = {"opt-in-not-required": "ENABLED_BY_DEFAULT", "opted-in": "ENABLED",
                "not-opted-in": "DISABLED"}
    commercial = {name: expected[status] for name, status in described.items()
                  if not name.startswith(("us-gov-", "cn-"))}
    assert listed == commercial
    assert listed["us-east-1"] == "ENABLED_BY_DEFAULT"
    assert "DISABLED" in listed.values()
    disabled = account.list_regions(RegionOptStatusContains=["DISABLED"])["Regions"]
    assert disabled and {r["RegionOptStatus"] for r in disabled} == {"DISABLED"}
    disabled_name = disabled[0]["RegionName"]
    assert account.get_region_opt_status(RegionName=disabled_name)["RegionOptStatus"] == "DISABLED"
    _, code, _, _ = _error(lambda: account.list_regions(MaxResults=51))
    assert code == "ValidationException"


def test_ebs_default_kms_key(aws_fake):
    ec2 = aws_fake.client("ec2", "eu-west-1")
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    key_arn = f"arn:aws:kms:eu-west-1:{CUSTOMER_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key_arn)
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key_arn
    assert aws_fake.client("ec2", "us-east-1").get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    aws_fake.reset()
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"


def test_s3_virtual_hosted_requests_are_named_by_their_bucket(aws_fake):
    aws_fake.client("s3").create_bucket(Bucket="cw-vhost-bucket")
    port = aws_fake.endpoint_url.rsplit(":", 1)[1]
    s3 = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url=f"http://localhost:{port}", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(s3={"addressing_style": "virtual"}),
    )

    def connect_to_fake(request, **_):
        # Reach the fake whatever the system resolver does with *.localhost; the Host header keeps the bucket.
        request.headers["Host"] = f"cw-vhost-bucket.localhost:{port}"
        request.url = request.url.replace("cw-vhost-bucket.localhost", "127.0.0.1")

    s3.meta.events.register("before-send.s3.*", connect_to_fake)
    assert s3.list_objects_v2(Bucket="cw-vhost-bucket")["KeyCount"] == 0
    assert aws_fake.calls("s3:ListObjectsV2") == 1
