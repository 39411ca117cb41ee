"""The read-only guard refuses writes and data reads before any byte leaves the process, on real clients."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aioboto3
import boto3
import botocore.session
import pytest
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from app.aws.guard import (
    ReadOnlyViolation,
    check_call,
    guard_extras,
    iam_action,
    iam_prefix,
    install_readonly_guard,
    is_allowed,
)
from app.aws.readonly import (
    ALLOWED_EXTRA,
    DATA_PLANE_DENY,
    OPERATION_ACTION_OVERRIDES,
    SECRET_PARAMETERS,
    SERVICE_PREFIX_OVERRIDES,
)
from tests.aws_readonly_helpers import moto_server

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "AKIDGUARDTEST", "aws_secret_access_key": "guard-test-secret"}
IAM_CATALOGUE_PATH = "cfnlint/data/AdditionalSpecs/Policies.json"


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with 403 AccessDenied and records what arrived."""

    # HTTP/1.1 so that S3 uploads sending "Expect: 100-continue" get their 100 and send the body.
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self.server.hits.append({  # type: ignore[attr-defined]
            "method": self.command, "path": self.path, "target": self.headers.get("X-Amz-Target", ""),
            "body": body,
        })
        if "json" in (self.headers.get("Content-Type") or ""):
            payload = json.dumps({"__type": "AccessDeniedException", "message": "recorded"}).encode()
            content_type = "application/x-amz-json-1.1"
        else:
            payload = (b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                       b"<Message>recorded</Message></Error></ErrorResponse>")
            content_type = "text/xml"
        self.send_response(403)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hits(recorder: ThreadingHTTPServer) -> list[dict[str, str]]:
    recorder.hits.clear()  # type: ignore[attr-defined]
    return recorder.hits  # type: ignore[attr-defined]


def _endpoint(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _config() -> AioConfig:
    # One attempt: a request that reaches the endpoint is counted exactly once.
    return AioConfig(retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"},
                     connect_timeout=5, read_timeout=10)


@asynccontextmanager
async def guarded(endpoint: str, service: str, *,
                  extra_allowed: frozenset[str] = frozenset()) -> AsyncIterator:
    session = aioboto3.Session(region_name=REGION, **CREDS)
    async with session.client(service, endpoint_url=endpoint, config=_config()) as client:
        install_readonly_guard(client, extra_allowed=extra_allowed)
        yield client


# --- refused calls never reach the endpoint --------------------------------------------------------------

REFUSED = [
    ("s3", "put_object", {"Bucket": "b", "Key": "k", "Body": b"x"}, "s3:PutObject"),
    ("ec2", "run_instances", {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}, "ec2:RunInstances"),
    ("iam", "create_user", {"UserName": "intruder"}, "iam:CreateUser"),
    ("s3", "get_object", {"Bucket": "b", "Key": "k"}, "s3:GetObject"),
    ("s3", "head_object", {"Bucket": "b", "Key": "k"}, "s3:GetObject"),
    ("secretsmanager", "get_secret_value", {"SecretId": "prod/db"}, "secretsmanager:GetSecretValue"),
    ("ssm", "get_parameter", {"Name": "/prod/db", "WithDecryption": True}, "ssm:GetParameter"),
    ("dynamodb", "scan", {"TableName": "users"}, "dynamodb:Scan"),
    ("dynamodb", "execute_statement", {"Statement": 'SELECT * FROM "users"'}, "dynamodb:PartiQLSelect"),
    ("dynamodbstreams", "get_records", {"ShardIterator": "x" * 40}, "dynamodb:GetRecords"),
    ("logs", "get_log_events", {"logGroupName": "g", "logStreamName": "s"}, "logs:GetLogEvents"),
    ("sqs", "receive_message", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"},
     "sqs:ReceiveMessage"),
    ("lambda", "get_function", {"FunctionName": "f"}, "lambda:GetFunction"),
    ("kms", "decrypt", {"CiphertextBlob": b"ciphertext"}, "kms:Decrypt"),
    ("kms", "generate_data_key_pair", {"KeyId": "k", "KeyPairSpec": "RSA_2048"}, "kms:GenerateDataKeyPair"),
    ("cloudformation", "get_template", {"StackName": "s"}, "cloudformation:GetTemplate"),
    ("ec2", "get_password_data", {"InstanceId": "i-12345678"}, "ec2:GetPasswordData"),
    ("sts", "get_session_token", {}, "sts:GetSessionToken"),
    ("sts", "assume_role", {"RoleArn": "arn:aws:iam::123456789012:role/r", "RoleSessionName": "s"},
     "sts:AssumeRole"),
    ("glue", "get_connection", {"Name": "warehouse"}, "glue:GetConnection"),
    ("apigateway", "get_api_keys", {"includeValues": True}, "apigateway:GET"),
]


@pytest.mark.parametrize(("service", "method", "params", "action"), REFUSED,
                         ids=[f"{r[0]}.{r[1]}" for r in REFUSED])
async def test_refused_call_never_reaches_the_endpoint(recorder, hits, service, method, params, action):
    async with guarded(_endpoint(recorder), service) as client:
        with pytest.raises(ReadOnlyViolation) as err:
            await getattr(client, method)(**params)
    assert err.value.operation == action
    assert err.value.reason
    assert hits == []


ALLOWED = [
    ("s3", "list_buckets", {}, lambda h: h["method"] == "GET" and h["path"].startswith("/")),
    ("iam", "get_account_authorization_details", {},
     lambda h: "Action=GetAccountAuthorizationDetails" in h["body"]),
    ("ec2", "describe_regions", {}, lambda h: "Action=DescribeRegions" in h["body"]),
    ("lambda", "get_function_configuration", {"FunctionName": "f"},
     lambda h: h["path"].endswith("/functions/f/configuration")),
    ("cloudwatch", "describe_alarms", {}, lambda h: "Action=DescribeAlarms" in h["body"]),
    ("glue", "get_connection", {"Name": "warehouse", "HidePassword": True},
     lambda h: h["target"] == "AWSGlue.GetConnection"),
    ("apigateway", "get_api_keys", {}, lambda h: h["path"].startswith("/apikeys")),
]


@pytest.mark.parametrize(("service", "method", "params", "seen"), ALLOWED,
                         ids=[f"{a[0]}.{a[1]}" for a in ALLOWED])
async def test_allowed_read_reaches_the_endpoint(recorder, hits, service, method, params, seen):
    async with guarded(_endpoint(recorder), service) as client:
        with pytest.raises(ClientError) as err:
            await getattr(client, method)(**params)
    # The recorder's 403 proves the request went out; the guard let it through unchanged.
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(hits) == 1 and seen(hits[0]), hits


async def test_extra_allowed_applies_to_that_client_only(recorder, hits):
    args = {"RoleArn": "arn:aws:iam::123456789012:role/CloudWizardScanner", "RoleSessionName": "cw",
            "ExternalId": "cw-" + "a" * 32}
    scanner_extras = frozenset({"sts:AssumeRole"})
    async with guarded(_endpoint(recorder), "sts", extra_allowed=scanner_extras) as scanner_sts:
        with pytest.raises(ClientError):
            await scanner_sts.assume_role(**args)
        assert len(hits) == 1 and "Action=AssumeRole" in hits[0]["body"]
        # Extras never override the data-plane deny list.
        with pytest.raises(ReadOnlyViolation):
            await scanner_sts.get_session_token()
    async with guarded(_endpoint(recorder), "sts") as other_sts:
        with pytest.raises(ReadOnlyViolation):
            await other_sts.assume_role(**args)
    assert len(hits) == 1


async def test_presigned_urls_for_data_are_refused(recorder, hits):
    async with guarded(_endpoint(recorder), "s3") as s3:
        with pytest.raises(ReadOnlyViolation) as err:
            await s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
        assert err.value.operation == "s3:GetObject"
        url = await s3.generate_presigned_url("list_objects_v2", Params={"Bucket": "b"})
        assert "list-type=2" in url
    assert hits == []


async def test_paginators_are_guarded(recorder, hits):
    async with guarded(_endpoint(recorder), "logs") as logs:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName="g")
        with pytest.raises(ReadOnlyViolation) as err:
            async for _ in pages:
                pass
    assert err.value.operation == "logs:FilterLogEvents"
    assert hits == []


async def test_guard_is_per_client(recorder, hits):
    session = aioboto3.Session(region_name=REGION, **CREDS)
    async with session.client("s3", endpoint_url=_endpoint(recorder), config=_config()) as guarded_s3, \
            session.client("s3", endpoint_url=_endpoint(recorder), config=_config()) as plain_s3:
        install_readonly_guard(guarded_s3)
        with pytest.raises(ReadOnlyViolation):
            await guarded_s3.put_object(Bucket="b", Key="k", Body=b"x")
        assert hits == []
        # Same session, no guard: the request does go out, so the refusal above was the guard's doing.
        with pytest.raises(ClientError):
            await plain_s3.put_object(Bucket="b", Key="k", Body=b"x")
        assert len(hits) == 1 and hits[0]["method"] == "PUT"


async def test_installing_twice(recorder, hits):
    async with guarded(_endpoint(recorder), "sts") as sts:
        assert guard_extras(sts) == frozenset()
        install_readonly_guard(sts)  # same extras: no-op
        with pytest.raises(ValueError):
            install_readonly_guard(sts, extra_allowed=frozenset({"sts:AssumeRole"}))
        with pytest.raises(ReadOnlyViolation):
            await sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="s")
    assert hits == []


def test_sync_boto3_client_is_guarded_too(recorder, hits):
    client = boto3.client("s3", region_name=REGION, endpoint_url=_endpoint(recorder), **CREDS,
                          config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}))
    assert guard_extras(client) is None
    install_readonly_guard(client)
    with pytest.raises(ReadOnlyViolation):
        client.put_object(Bucket="b", Key="k", Body=b"x")
    with pytest.raises(ReadOnlyViolation):
        client.get_object(Bucket="b", Key="k")
    assert hits == []
    with pytest.raises(ClientError):
        client.list_buckets()
    assert len(hits) == 1


# --- against a real moto server: allowed reads return data, data reads stay refused --------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


async def test_guarded_client_against_moto(moto_endpoint):
    session = aioboto3.Session(region_name=REGION, **CREDS)
    async with session.client("s3", endpoint_url=moto_endpoint, config=_config()) as setup:
        await setup.create_bucket(Bucket="customer-data")
        await setup.put_object(Bucket="customer-data", Key="payroll.csv", Body=b"alice,100000\n")
    async with guarded(moto_endpoint, "s3") as s3, guarded(moto_endpoint, "ec2") as ec2, \
            guarded(moto_endpoint, "iam") as iam:
        assert "customer-data" in [b["Name"] for b in (await s3.list_buckets())["Buckets"]]
        listing = await s3.list_objects_v2(Bucket="customer-data")
        assert [o["Key"] for o in listing["Contents"]] == ["payroll.csv"]
        assert (await ec2.describe_regions())["Regions"]
        assert "UserDetailList" in await iam.get_account_authorization_details()
        with pytest.raises(ReadOnlyViolation):
            await s3.get_object(Bucket="customer-data", Key="payroll.csv")
        with pytest.raises(ReadOnlyViolation):
            await s3.delete_object(Bucket="customer-data", Key="payroll.csv")
    async with session.client("s3", endpoint_url=moto_endpoint, config=_config()) as check:
        body = await (await check.get_object(Bucket="customer-data", Key="payroll.csv"))["Body"].read()
    assert body == b"alice,100000\n"


# --- the rules themselves -------------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "operation", "action"), [
    ("cloudwatch", "DescribeAlarms", "cloudwatch:DescribeAlarms"),
    ("elbv2", "DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers"),
    ("elb", "DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancers"),
    ("es", "DescribeDomain", "es:DescribeDomain"),
    ("opensearch", "ListDomainNames", "es:ListDomainNames"),
    ("logs", "DescribeMetricFilters", "logs:DescribeMetricFilters"),
    ("s3control", "GetPublicAccessBlock", "s3:GetAccountPublicAccessBlock"),
    ("s3", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ("s3", "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("s3", "ListBuckets", "s3:ListAllMyBuckets"),
    ("sesv2", "GetAccount", "ses:GetAccount"),
    ("efs", "DescribeFileSystems", "elasticfilesystem:DescribeFileSystems"),
    ("stepfunctions", "ListStateMachines", "states:ListStateMachines"),
    ("resourcegroupstaggingapi", "GetResources", "tag:GetResources"),
    ("cloudcontrol", "ListResources", "cloudformation:ListResources"),
    ("accessanalyzer", "ListAnalyzers", "access-analyzer:ListAnalyzers"),
    ("dynamodbstreams", "GetRecords", "dynamodb:GetRecords"),
    ("iot-data", "GetThingShadow", "iot:GetThingShadow"),
    ("apigateway", "GetRestApis", "apigateway:GET"),
    ("apigateway", "CreateRestApi", "apigateway:POST"),
    ("apigatewayv2", "DeleteApi", "apigateway:DELETE"),
    ("lambda", "GetLayerVersionByArn", "lambda:GetLayerVersion"),
])
def test_iam_action_of_botocore_operations(service, operation, action):
    model = botocore.session.get_session().get_service_model(service)
    assert iam_action(model, operation) == action
    client = boto3.client(service, region_name=REGION, **CREDS)
    assert iam_action(client, operation) == action


def _iam_catalogue() -> dict:
    import cfnlint

    path = os.path.join(os.path.dirname(os.path.dirname(cfnlint.__file__)), IAM_CATALOGUE_PATH)
    with open(path) as f:
        return json.load(f)


# botocore still ships these retired services; their prefixes left the IAM reference.
RETIRED = {"applicationcostprofiler", "evidently", "iotevents", "iotevents-data", "iotthingsgraph"}


def test_every_botocore_service_resolves_to_a_real_iam_prefix():
    catalogue = _iam_catalogue()
    session = botocore.session.get_session()
    unknown = {name: iam_prefix(session.get_service_model(name)) for name in session.get_available_services()
               if name not in RETIRED and iam_prefix(session.get_service_model(name)) not in catalogue}
    assert unknown == {}, "add these to SERVICE_PREFIX_OVERRIDES"
    overrides = {v for k, v in SERVICE_PREFIX_OVERRIDES.items() if k not in RETIRED}
    assert overrides <= set(catalogue)


def _exists(action: str, catalogue: dict) -> bool:
    prefix, name = action.lower().split(":", 1)
    actions = catalogue.get(prefix, {}).get("Actions", {})
    return any(re.fullmatch(name.replace("*", ".*").replace("?", "."), a) for a in actions)


def test_every_listed_action_exists():
    catalogue = _iam_catalogue()
    listed = [*DATA_PLANE_DENY, *ALLOWED_EXTRA, *OPERATION_ACTION_OVERRIDES.values()]
    assert [a for a in listed if not _exists(a, catalogue)] == []


def test_secret_parameter_rules_name_real_parameters():
    session = botocore.session.get_session()
    for key, (parameter, default, safe, why) in SECRET_PARAMETERS.items():
        prefix, operation = key.split(":")
        models = (session.get_service_model(name) for name in session.get_available_services())
        model = next(m for m in models if iam_prefix(m) == prefix and operation in m.operation_names)
        members = model.operation_model(operation).input_shape.members
        assert parameter in members and members[parameter].type_name == "boolean", key
        assert isinstance(default, bool) and isinstance(safe, bool) and why


def test_operation_overrides_name_real_operations():
    session = botocore.session.get_session()
    for service, operation in OPERATION_ACTION_OVERRIDES:
        assert operation in session.get_service_model(service).operation_names, (service, operation)


@pytest.mark.parametrize(("action", "allowed"), [
    ("ec2:DescribeInstances", True),
    ("iam:GetAccountAuthorizationDetails", True),
    ("codebuild:BatchGetProjects", True),
    ("iam:GenerateCredentialReport", True),
    ("s3:GetObject", False),
    ("S3:getobject", False),  # IAM names are case-insensitive, so is the deny list
    ("kms:GenerateDataKeyWithoutPlaintext", False),  # via the kms:GenerateDataKey* wildcard
    ("rds-data:ExecuteStatement", False),
    ("sts:GetSessionToken", False),  # a Get verb that mints credentials
    ("states:DescribeExecution", False),  # a Describe verb that returns execution input
    ("sts:AssumeRole", False),
    ("iam:CreateUser", False),
    ("s3:Getaway", False),  # the verb must be followed by a word
    ("ec2:Describe", False),
    ("ec2:Describe*", False),
    ("s3:Get*", False),
    ("*", False),
    ("cloudtrail:LookupEvents", False),
])
def test_is_allowed(action, allowed):
    if ":" not in action:
        with pytest.raises(ValueError):
            is_allowed(action)
        return
    decision, reason = is_allowed(action)
    assert decision is allowed and reason


def test_violation_survives_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(ReadOnlyViolation("s3:GetObject", "reads customer data")))
    assert (error.operation, error.reason) == ("s3:GetObject", "reads customer data")
    assert "s3:GetObject" in str(error)


def test_extra_allowed_does_not_override_the_deny_list():
    extras = frozenset({"sts:AssumeRole"})
    assert is_allowed("sts:AssumeRole", extras) == (True, "allowed for this client only")
    assert is_allowed("s3:GetObject", frozenset({"s3:GetObject"}))[0] is False


def test_no_botocore_operation_outside_the_read_verbs_is_allowed():
    """Sweep every operation botocore knows: the guard lets through reads only."""
    session = botocore.session.get_session()
    allowed_odd = []
    total_allowed = 0
    for service in session.get_available_services():
        model = session.get_service_model(service)
        for operation in model.operation_names:
            try:
                action = check_call(model, operation)
            except ReadOnlyViolation:
                continue
            total_allowed += 1
            if not re.match(r"(Describe|List|Get|BatchGet)[A-Z]", operation) and action not in ALLOWED_EXTRA:
                allowed_odd.append((service, operation, action))
            assert action not in DATA_PLANE_DENY
    # HeadBucket is authorized by s3:ListBucket: existence and region of a bucket, no contents.
    assert allowed_odd == [("s3", "HeadBucket", "s3:ListBucket")]
    assert total_allowed > 5000
