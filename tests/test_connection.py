"""Verifying a connection against the AWS fake: the role's trust, the External ID, permission probes,
revocation, the audit trail of every AssumeRole, and that no credential is ever kept."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from sqlalchemy import update

from app.aws.permissions import PROBES
from app.db import session_scope
from app.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from app.logging import configure_logging
from app.models import AccountStatus, AwsAccount
from app.services import connection
from app.services.connection import probe_outcome, reverify, trust_policy_problems
from tests.aws_accounts_helpers import (
    account_row,
    accounts_url,
    audit_events,
    create_account,
    database_dump,
    issued_credentials,
    verify,
)
from tests.aws_fixtures import CUSTOMER_ACCOUNT, OTHER_ACCOUNT, SCANNER_ARN, trust_policy

# Probes whose calls moto 5.2 does not implement (HTTP 500): they report "error" until the fake answers them.
MOTO_GAPS = {"access-analyzer:ListAnalyzers", "ssm:DescribeInstanceInformation"}
ASSUME_DETAIL_KEYS = {"scanner_principal", "account_id", "role_arn", "session_name", "external_id_provided",
                      "duration_seconds", "refresh", "outcome", "request_id", "assumed_role_arn", "expires_at",
                      "error_code", "error_message"}


@pytest.fixture
async def owner(signup):
    return await signup()


@pytest.fixture
async def ws(owner, make_workspace):
    return await make_workspace(owner["headers"])


@pytest.fixture
async def acct(client, owner, ws):
    return await create_account(client, ws["id"], owner["headers"])


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


def assert_connected(body: dict, role_arn: str, aws_account_id: str = CUSTOMER_ACCOUNT) -> None:
    assert body["status"] == "connected", body
    assert body["role_arn"] == role_arn and body["aws_account_id"] == aws_account_id
    assert body["partition"] == "aws" and body["status_reason"] is None and body["setup"] is None
    assert body["external_id_expires_at"] is None
    assert body["connected_at"] and body["last_verified_at"]
    assert all(m["reason"] == "error" and m["action"] in MOTO_GAPS for m in body["missing_permissions"]), (
        body["missing_permissions"])


async def connect(client, aws_fake, ws, owner, acct, name: str = "CloudWizardScanner") -> str:
    role_arn = aws_fake.create_role(name, trust_policy(external_id=acct["external_id"]))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role_arn)
    return role_arn


async def assume_events(client, ws, owner) -> list[dict]:
    return await audit_events(client, ws["id"], owner["headers"], "aws.assume_role")


# --- the happy path --------------------------------------------------------------------------------


async def test_the_right_external_id_connects_and_every_assume_role_is_audited(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    body = r.json()
    assert_connected(body, role_arn)
    assert body["external_id"] == acct["external_id"]
    # Security Hub is not enabled in the fake's account; that is not a missing permission.
    assert "securityhub:DescribeHub" not in {m["action"] for m in body["missing_permissions"]}
    assert aws_fake.calls("securityhub:DescribeHub") == 1

    stats = aws_fake.stats()
    assert stats["calls"]["sts:AssumeRole"] == 3 and stats["denied"] == {"sts:AssumeRole": 2}
    assert stats["calls"]["iam:GetRole"] == 1
    probed = {f"{p.client}:{p.operation}" for p in PROBES}
    assert probed <= set(stats["by_account"][CUSTOMER_ACCOUNT]), probed - set(stats["by_account"][CUSTOMER_ACCOUNT])

    events = await assume_events(client, ws, owner)
    prefix = f"CloudWizard-{uuid.UUID(acct['id']).hex}-"
    assert [(e["details"]["session_name"], e["details"]["external_id_provided"], e["details"]["outcome"])
            for e in events] == [(prefix + "verify", True, "success"),
                                 (prefix + "deputy-check", False, "denied"),
                                 (prefix + "deputy-check", True, "denied")]
    for e in events:
        assert e["actor_type"] == "user" and e["actor_label"] == owner["email"]
        assert e["target_type"] == "aws_account" and e["target_id"] == acct["id"]
        assert e["details"]["role_arn"] == role_arn and e["details"]["account_id"] == CUSTOMER_ACCOUNT
        assert e["details"]["scanner_principal"] == SCANNER_ARN
        assert set(e["details"]) <= ASSUME_DETAIL_KEYS, set(e["details"]) - ASSUME_DETAIL_KEYS
        assert e["details"]["request_id"]
    assert events[0]["details"]["assumed_role_arn"] == (
        f"arn:aws:sts::{CUSTOMER_ACCOUNT}:assumed-role/CloudWizardScanner/{prefix}verify")
    assert datetime.fromisoformat(events[0]["details"]["expires_at"]) > datetime.now(UTC)
    assert events[1]["details"]["error_code"] == "AccessDenied"

    [verified] = await audit_events(client, ws["id"], owner["headers"], "aws_account.verified")
    assert verified["details"]["status"] == "connected" and verified["details"]["previous_status"] == "pending"
    assert verified["details"]["aws_account_id"] == CUSTOMER_ACCOUNT


async def test_a_verified_external_id_is_immutable(client, aws_fake, owner, ws, acct):
    await connect(client, aws_fake, ws, owner, acct)
    r = await client.post(accounts_url(ws["id"], acct["id"], "external-id"), headers=owner["headers"])
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert (await account_row(acct["id"]))["external_id"] == acct["external_id"]


async def test_verify_again_keeps_the_connection_and_refreshes_it(client, aws_fake, owner, ws, acct):
    role_arn = await connect(client, aws_fake, ws, owner, acct)
    first = await account_row(acct["id"])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    second = await account_row(acct["id"])
    assert second["last_verified_at"] > first["last_verified_at"]
    assert second["connected_at"] == first["connected_at"]
    assert second["status_changed_at"] == first["status_changed_at"]
    other = aws_fake.create_role("Other", trust_policy(OTHER_ACCOUNT), account_id=OTHER_ACCOUNT)
    r = await verify(client, ws["id"], acct["id"], owner["headers"], other)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.role_arn"
    assert CUSTOMER_ACCOUNT in r.json()["detail"]


# --- refused roles change nothing but the audit log ----------------------------------------------


async def _refused(client, aws_fake, owner, ws, acct, role_arn: str, slug: str, status: int = 422) -> dict:
    before = await account_row(acct["id"])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem = r.json()
    assert problem["type"] == problem_type(slug), problem
    assert await account_row(acct["id"]) == before
    return problem


async def test_a_role_that_does_not_demand_the_external_id_is_refused(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("NoCondition", trust_policy(SCANNER_ARN))
    problem = await _refused(client, aws_fake, owner, ws, acct, role_arn, "external-id-not-enforced")
    assert "without an External ID" in problem["detail"] and acct["external_id"] in problem["detail"]
    assert (await account_row(acct["id"]))["status"] == "pending"
    events = await assume_events(client, ws, owner)
    # The role let us in without the ID: that AssumeRole happened, and it is on record.
    assert [(e["details"]["external_id_provided"], e["details"]["outcome"]) for e in events] == [
        (True, "success"), (False, "success")]
    assert await audit_events(client, ws["id"], owner["headers"], "aws_account.verified") == []


async def test_a_role_that_wants_another_external_id_is_not_assumable(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("OtherId", trust_policy(external_id="cw-" + "x" * 32))
    problem = await _refused(client, aws_fake, owner, ws, acct, role_arn, "role-not-assumable")
    assert acct["external_id"] in problem["detail"] and CUSTOMER_ACCOUNT in problem["detail"]
    [event] = await assume_events(client, ws, owner)
    assert event["details"]["outcome"] == "denied" and event["details"]["external_id_provided"] is True


async def test_a_role_that_trusts_anyone_is_refused(client, aws_fake, owner, ws, acct):
    anyone = aws_fake.create_role("Anyone", trust_policy("*"))
    await _refused(client, aws_fake, owner, ws, acct, anyone, "external-id-not-enforced")
    # Even when it asks for our External ID: the ID is not a secret, so anyone could present it.
    anyone_with_id = aws_fake.create_role("AnyoneWithId", trust_policy("*", acct["external_id"]))
    problem = await _refused(client, aws_fake, owner, ws, acct, anyone_with_id, "trust-policy-too-broad")
    assert "`*`" in problem["detail"]
    assert len(await assume_events(client, ws, owner)) == 2 + 3


async def test_a_role_that_does_not_exist_is_not_assumable(client, aws_fake, owner, ws, acct):
    await _refused(client, aws_fake, owner, ws, acct, f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/Nope",
                   "role-not-assumable")
    await _refused(client, aws_fake, owner, ws, acct, f"arn:aws:iam::{OTHER_ACCOUNT}:role/cw/Nope",
                   "role-not-assumable")


async def test_a_role_in_another_account_connects_only_if_it_trusts_us(client, aws_fake, owner, ws, acct):
    untrusting = aws_fake.create_role("CloudWizardScanner",
                                      trust_policy("arn:aws:iam::999999999999:role/SomeoneElse",
                                                   acct["external_id"]), account_id=OTHER_ACCOUNT)
    await _refused(client, aws_fake, owner, ws, acct, untrusting, "role-not-assumable")

    trusting = aws_fake.create_role("Trusting", trust_policy(external_id=acct["external_id"]),
                                    account_id=OTHER_ACCOUNT, path="/security/")
    r = await verify(client, ws["id"], acct["id"], owner["headers"], trusting)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), trusting, OTHER_ACCOUNT)
    by_account = aws_fake.stats()["by_account"]
    assert by_account[OTHER_ACCOUNT]["ec2:DescribeSecurityGroups"] == 1
    assert "ec2:DescribeSecurityGroups" not in by_account.get(CUSTOMER_ACCOUNT, {})


MALFORMED_ARNS = [
    "arn:aws-foo:iam::123456789012:role/CloudWizardScanner",      # unknown partition
    "arn:aws:iam::12345678901:role/CloudWizardScanner",           # 11-digit account
    "arn:aws:iam::1234567890123:role/CloudWizardScanner",         # 13 digits
    "arn:aws:iam::12345678901a:role/CloudWizardScanner",          # not digits
    "arn:aws:iam::123456789012:user/alice-the-admin",             # a user
    "arn:aws:sts::123456789012:assumed-role/CloudWizardScanner/session",  # a session, not the role
    "arn:aws:iam::123456789012:role/",                            # empty name
    "arn:aws:iam::123456789012:role/Cloud Wizard",                # whitespace inside
    "arn:aws:iam::123456789012:role/Cloud\tWizard",
    "arn:aws:iam::123456789012:role/CloudWizard\nScanner",
    "arn:aws:iam:us-east-1:123456789012:role/CloudWizardScanner",  # IAM has no region
    "arn:aws:s3:::a-bucket-that-is-not-a-role",
    "arn:aws:iam::123456789012:role//double/CloudWizardScanner",
    "arn:aws:iam::123456789012:role/" + "n" * 65,                 # name too long
    "arn:aws:iam::123456789012:role/Cloud*Wizard",
    "arn:aws:iam::123456789012",
    "not-an-arn-but-long-enough",
    "",
    "arn:aws:iam::123456789012:role/" + "p/" * 1010 + "x",        # over 2048 characters
]


@pytest.mark.parametrize("role_arn", MALFORMED_ARNS)
async def test_malformed_role_arns_are_field_errors(client, aws_fake, owner, ws, acct, role_arn):
    before = await account_row(acct["id"])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert [e["field"] for e in r.json()["errors"]] == ["body.role_arn"]
    assert await account_row(acct["id"]) == before
    assert aws_fake.stats()["total"] == 0


@pytest.mark.parametrize("payload", [{}, {"role_arn": None}, {"role_arn": 123456789012},
                                     {"role_arn": ["arn:aws:iam::123456789012:role/CloudWizardScanner"]}])
async def test_a_missing_or_mistyped_role_arn_is_a_field_error(client, aws_fake, owner, ws, acct, payload):
    r = await client.post(accounts_url(ws["id"], acct["id"], "verify"), json=payload, headers=owner["headers"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.role_arn", r.text
    assert aws_fake.stats()["total"] == 0


async def test_an_expired_external_id_must_be_regenerated_first(client, aws_fake, owner, ws, acct):
    async with session_scope() as session:
        await session.execute(update(AwsAccount).where(AwsAccount.id == uuid.UUID(acct["id"]))
                              .values(external_id_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    problem = await _refused(client, aws_fake, owner, ws, acct, role_arn, "external-id-expired", 409)
    assert "Regenerate" in problem["detail"]
    assert aws_fake.stats()["total"] == 1  # only our own create_role

    fresh = (await client.post(accounts_url(ws["id"], acct["id"], "external-id"), headers=owner["headers"])).json()
    aws_fake.client("iam").update_assume_role_policy(
        RoleName="CloudWizardScanner", PolicyDocument=json.dumps(trust_policy(external_id=fresh["external_id"])))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role_arn)
    assert r.json()["external_id"] == fresh["external_id"]


async def test_one_aws_account_connects_once_per_workspace(client, aws_fake, owner, ws, acct, make_workspace):
    await connect(client, aws_fake, ws, owner, acct)
    second = await create_account(client, ws["id"], owner["headers"], name="prod again")
    role2 = aws_fake.create_role("Second", trust_policy(external_id=second["external_id"]))
    problem = await _refused(client, aws_fake, owner, ws, second, role2, "account-already-connected", 409)
    assert acct["id"] in problem["detail"]

    elsewhere = await make_workspace(owner["headers"], "Elsewhere")
    third = await create_account(client, elsewhere["id"], owner["headers"])
    role3 = aws_fake.create_role("Third", trust_policy(external_id=third["external_id"]))
    r = await verify(client, elsewhere["id"], third["id"], owner["headers"], role3)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role3)

    # A disconnected connection no longer holds the account.
    await client.post(accounts_url(ws["id"], acct["id"], "disconnect"), headers=owner["headers"])
    r = await verify(client, ws["id"], second["id"], owner["headers"], role2)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role2)


async def test_two_connections_racing_for_one_aws_account_connect_once(client, aws_fake, owner, ws, acct):
    second = await create_account(client, ws["id"], owner["headers"], name="prod twin")
    roles = [aws_fake.create_role(f"Twin{i}", trust_policy(external_id=a["external_id"]))
             for i, a in enumerate((acct, second))]
    answers = await asyncio.gather(*(verify(client, ws["id"], a["id"], owner["headers"], role)
                                     for a, role in zip((acct, second), roles, strict=True)))
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    lost = next(r for r in answers if r.status_code == 409)
    assert lost.json()["type"] == problem_type("account-already-connected")
    rows = [await account_row(a["id"]) for a in (acct, second)]
    assert sorted(r["status"] for r in rows) == ["connected", "pending"]
    assert [r["aws_account_id"] for r in rows if r["status"] == "pending"] == [None]
    # Both verifications assumed the role, and both are on record.
    assert sum(e["details"]["session_name"].endswith("-verify") for e in await assume_events(client, ws, owner)) == 2


async def test_surrounding_whitespace_of_a_pasted_arn_is_ignored(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], f"  {role_arn}\n")
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role_arn)


async def test_a_disconnected_account_is_not_verified(client, aws_fake, owner, ws, acct):
    role_arn = await connect(client, aws_fake, ws, owner, acct)
    await client.post(accounts_url(ws["id"], acct["id"], "disconnect"), headers=owner["headers"])
    calls = aws_fake.stats()["total"]
    problem = await _refused(client, aws_fake, owner, ws, acct, role_arn, "conflict", 409)
    assert "disconnected" in problem["detail"]
    assert aws_fake.stats()["total"] == calls


async def test_aws_unavailable_is_a_503_and_changes_nothing(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    aws_fake.configure(throttle=[{"service": "sts", "operation": "AssumeRole"}])
    before = await account_row(acct["id"])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 503, r.text
    assert r.json()["type"] == problem_type("aws-unavailable") and r.headers["retry-after"] == "30"
    assert "Throttling" in r.json()["detail"]
    assert await account_row(acct["id"]) == before
    [event] = await assume_events(client, ws, owner)
    assert event["details"]["outcome"] == "error" and event["details"]["error_code"] == "Throttling"


# --- revocation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["trust changed", "role deleted"])
async def test_a_connected_role_that_stops_trusting_us_is_revoked(client, aws_fake, owner, ws, acct, how):
    role_arn = await connect(client, aws_fake, ws, owner, acct)
    iam = aws_fake.client("iam")
    if how == "role deleted":
        iam.delete_role(RoleName="CloudWizardScanner")
    else:
        iam.update_assume_role_policy(RoleName="CloudWizardScanner", PolicyDocument=json.dumps(
            trust_policy("arn:aws:iam::999999999999:role/AnotherVendor", acct["external_id"])))
    connected = await account_row(acct["id"])

    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 422 and r.json()["type"] == problem_type("role-not-assumable"), r.text
    revoked = await account_row(acct["id"])
    assert revoked["status"] == "revoked" and "denied" in revoked["status_reason"]
    assert revoked["status_changed_at"] > connected["status_changed_at"]
    unchanged = {k: v for k, v in revoked.items() if k not in ("status", "status_reason", "status_changed_at",
                                                                "updated_at")}
    assert unchanged == {k: connected[k] for k in unchanged}
    [event] = await audit_events(client, ws["id"], owner["headers"], "aws_account.revoked")
    assert event["actor_type"] == "user" and event["details"]["previous_status"] == "connected"
    assert (await assume_events(client, ws, owner))[-1]["details"]["outcome"] == "denied"

    # Fixing the role reconnects the same connection.
    if how == "role deleted":
        aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    else:
        iam.update_assume_role_policy(RoleName="CloudWizardScanner",
                                      PolicyDocument=json.dumps(trust_policy(external_id=acct["external_id"])))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role_arn)
    assert (await account_row(acct["id"]))["connected_at"] == connected["connected_at"]


# --- permission probes ----------------------------------------------------------------------------


DENIED = {"cloudtrail": "cloudtrail:DescribeTrails", "ec2": "ec2:DescribeSecurityGroups",
          "s3": "s3:ListAllMyBuckets", "sns": "sns:ListTopics", "lambda": "lambda:ListFunctions"}


async def test_denied_probes_degrade_the_account_until_the_role_is_fixed(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    aws_fake.configure(deny=[{"service": s} for s in DENIED])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded" and body["aws_account_id"] == CUSTOMER_ACCOUNT
    denied = [m for m in body["missing_permissions"] if m["reason"] == "denied"]
    assert {m["action"] for m in denied} == set(DENIED.values())
    assert {m["service"] for m in denied} == set(DENIED)
    assert {m["error_code"] for m in denied} == {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
    assert all("not authorized" in m["message"] for m in denied)
    assert all(a in body["status_reason"] for a in DENIED.values())

    aws_fake.configure(deny=[])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    assert_connected(r.json(), role_arn)
    events = await audit_events(client, ws["id"], owner["headers"], "aws_account.verified")
    assert [(e["details"]["previous_status"], e["details"]["status"]) for e in events] == [
        ("pending", "degraded"), ("degraded", "connected")]


async def test_a_role_that_cannot_read_itself_is_degraded_not_refused(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    aws_fake.configure(deny=[{"service": "iam", "operation": "GetRole"}])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    assert [m["action"] for m in body["missing_permissions"] if m["reason"] == "denied"] == ["iam:GetRole"]


async def test_an_enabled_security_hub_passes_too(client, aws_fake, owner, ws, acct):
    aws_fake.client("securityhub").enable_security_hub()
    await connect(client, aws_fake, ws, owner, acct)


async def test_probes_use_the_first_allowed_region(client, aws_fake, owner, ws):
    acct = await create_account(client, ws["id"], owner["headers"], regions=["eu-west-2", "us-east-1"])
    aws_fake.configure(deny=[{"service": "ec2", "region": "eu-west-2"}])
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert [m["action"] for m in r.json()["missing_permissions"] if m["reason"] == "denied"] == [
        "ec2:DescribeSecurityGroups"]


@pytest.mark.parametrize("client_name, code, outcome", [
    ("securityhub", "InvalidAccessException", "passed"),
    ("ec2", "OptInRequired", "passed"),
    ("dynamodb", "SubscriptionRequiredException", "passed"),
    ("s3", "NotSignedUp", "passed"),
    ("securityhub", "AccessDeniedException", "denied"),
    ("ec2", "UnauthorizedOperation", "denied"),
    ("s3", "AccessDenied", "denied"),
    ("sns", "AuthorizationError", "denied"),
    ("opensearch", "NotAuthorized", "denied"),
    ("kms", "InvalidAccessException", "error"),       # means "not enabled" only for Security Hub
    ("ssm", "500", "error"),
    ("ec2", "RequestLimitExceeded", "error"),
    ("sts", "EndpointConnectionError", "error"),
])
def test_how_a_failed_probe_counts(client_name, code, outcome):
    assert probe_outcome(client_name, code) == outcome


@pytest.mark.parametrize("statement, problems", [
    ({"Principal": {"AWS": SCANNER_ARN}, "Condition": {"StringEquals": {"sts:ExternalId": "cw-x"}}}, []),
    ({"Principal": {"AWS": [SCANNER_ARN]}, "Condition": {"stringequals": {"STS:EXTERNALID": "cw-x"}}}, []),
    ({"Principal": {"AWS": SCANNER_ARN}}, ["does not require"]),
    ({"Principal": {"AWS": "111111111111"}}, ["does not require"]),
    ({"Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Condition": {"StringLike": {"sts:ExternalId": "*"}}},
     ["does not require"]),
    ({"Principal": "*", "Condition": {"StringEquals": {"sts:ExternalId": "cw-x"}}}, ["`*`"]),
    ({"Principal": {"AWS": "*"}}, ["`*`", "does not require"]),
    # Someone else's trust is the customer's business, not a way for anyone to use us.
    ({"Principal": {"AWS": "arn:aws:iam::999999999999:role/Admin"}}, []),
    ({"Principal": {"Service": "ec2.amazonaws.com"}}, []),
    ({"Principal": {"AWS": SCANNER_ARN}, "Action": "sts:TagSession"}, []),
    ({"Principal": {"AWS": SCANNER_ARN}, "Effect": "Deny"}, []),
])
def test_trust_policy_problems(statement, problems):
    document = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"} | statement]}
    found = trust_policy_problems(document, SCANNER_ARN)
    assert len(found) == len(problems), found
    for text, fragment in zip(found, problems, strict=True):
        assert fragment in text


# --- no credential is ever kept ------------------------------------------------------------------------


ACCESS_KEY_SHAPE = re.compile(r"\b(?:ASIA|AKIA)[A-Z0-9]{16}\b")


@contextmanager
def _all_logs_captured(caplog):
    """The app's real log pipeline at DEBUG (botocore included) into the captured stderr."""
    saved = structlog.get_config()
    configure_logging("DEBUG", json=True)
    caplog.set_level(logging.DEBUG)
    try:
        yield
    finally:
        structlog.configure(**saved)


async def test_no_credential_reaches_the_audit_log_the_database_or_the_logs(client, aws_fake, owner, ws, acct,
                                                                           capsys, caplog):
    bodies = []
    with _all_logs_captured(caplog):
        role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
        bodies.append((await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)).text)
        second = await create_account(client, ws["id"], owner["headers"], name="lax")
        lax = aws_fake.create_role("Lax", trust_policy(SCANNER_ARN), account_id=OTHER_ACCOUNT)
        refused = await verify(client, ws["id"], second["id"], owner["headers"], lax)
        assert refused.json()["type"] == problem_type("external-id-not-enforced"), refused.text
        bodies.append(refused.text)
        await reverify(uuid.UUID(acct["id"]))
    app_logs = capsys.readouterr().err
    logs = app_logs + caplog.text
    credentials = issued_credentials(aws_fake)
    # verify; the lax role's verify and its accepted no-ID deputy check; reverify.
    assert len(credentials) == 4, credentials
    # The capture saw botocore print the AssumeRole answers (scrubbed), so the search below means something.
    assert "aws.assume_role" in app_logs and "<SessionToken>[REDACTED]</SessionToken>" in caplog.text
    events = await audit_events(client, ws["id"], owner["headers"])
    dump = await database_dump()
    haystacks = {"audit API": json.dumps(events), "database": dump, "logs": logs, "responses": "".join(bodies)}
    for where, text in haystacks.items():
        for cred in credentials:
            for kind, value in cred.items():
                assert value not in text, f"{kind} in {where}"
        assert not ACCESS_KEY_SHAPE.search(text), f"an access key id in {where}"
    assert acct["external_id"] not in app_logs, "the External ID is scrubbed from the service's logs"


# --- periodic re-verification ------------------------------------------------------------------------


async def test_reverify_keeps_a_live_account_and_stamps_it(client, aws_fake, owner, ws, acct):
    await connect(client, aws_fake, ws, owner, acct)
    before = await account_row(acct["id"])
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.connected
    after = await account_row(acct["id"])
    assert after["last_verified_at"] > before["last_verified_at"]
    assert {k: v for k, v in after.items() if k not in ("last_verified_at", "updated_at")} == {
        k: v for k, v in before.items() if k not in ("last_verified_at", "updated_at")}
    event = (await assume_events(client, ws, owner))[-1]
    assert event["actor_type"] == "system" and event["actor_id"] is None
    assert event["details"]["session_name"] == f"CloudWizard-{uuid.UUID(acct['id']).hex}-reverify"
    assert event["details"]["outcome"] == "success" and event["details"]["external_id_provided"] is True
    assert await audit_events(client, ws["id"], owner["headers"], "aws_account.revoked") == []


async def test_reverify_keeps_a_degraded_account_degraded(client, aws_fake, owner, ws, acct):
    role_arn = aws_fake.create_role("CloudWizardScanner", trust_policy(external_id=acct["external_id"]))
    aws_fake.configure(deny=[{"service": "kms"}])
    r = await verify(client, ws["id"], acct["id"], owner["headers"], role_arn)
    assert r.json()["status"] == "degraded"
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.degraded
    assert (await account_row(acct["id"]))["missing_permissions"] == r.json()["missing_permissions"]


async def test_reverify_revokes_an_account_whose_role_is_gone(client, aws_fake, owner, ws, acct):
    await connect(client, aws_fake, ws, owner, acct)
    aws_fake.client("iam").delete_role(RoleName="CloudWizardScanner")
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.revoked
    row = await account_row(acct["id"])
    assert row["status"] == "revoked" and "AssumeRole is now denied" in row["status_reason"]
    [event] = await audit_events(client, ws["id"], owner["headers"], "aws_account.revoked")
    assert event["actor_type"] == "system" and event["actor_id"] is None and event["actor_label"] == "cloudwizard"
    assert event["target_id"] == acct["id"] and event["details"]["previous_status"] == "connected"
    last = (await assume_events(client, ws, owner))[-1]
    assert last["actor_type"] == "system" and last["details"]["outcome"] == "denied"

    calls = aws_fake.stats()["total"]
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.revoked
    assert aws_fake.stats()["total"] == calls, "a revoked account is not assumed again until verified"


async def test_reverify_changes_nothing_when_aws_fails_otherwise(client, aws_fake, owner, ws, acct):
    await connect(client, aws_fake, ws, owner, acct)
    aws_fake.configure(throttle=[{"service": "sts", "operation": "AssumeRole"}])
    before = await account_row(acct["id"])
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.connected
    assert await account_row(acct["id"]) == before
    assert aws_fake.stats()["throttled"]["sts:AssumeRole"] >= 1
    last = (await assume_events(client, ws, owner))[-1]
    assert last["actor_type"] == "system" and last["details"]["outcome"] == "error"
    assert last["details"]["error_code"] == "Throttling"
    assert await audit_events(client, ws["id"], owner["headers"], "aws_account.revoked") == []


async def test_reverify_leaves_accounts_that_are_not_live_alone(client, aws_fake, owner, ws, acct):
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.pending
    await client.post(accounts_url(ws["id"], acct["id"], "disconnect"), headers=owner["headers"])
    assert await reverify(uuid.UUID(acct["id"])) == AccountStatus.disconnected
    assert await reverify(uuid.uuid4()) is None
    assert aws_fake.stats()["total"] == 0
    assert await assume_events(client, ws, owner) == []


def test_probe_concurrency_is_bounded():
    assert 1 <= connection.PROBE_CONCURRENCY <= len(PROBES)
