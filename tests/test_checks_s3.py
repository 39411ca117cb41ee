"""S3 collector and checks against the moto fake (pre-2023 defaults, and current defaults set explicitly), plus
inventory fixtures for what moto cannot represent (MFA delete, policy shapes)."""

from __future__ import annotations

import json

import pytest

from app.checks.base import Status
from app.checks.resource_policies import public_statements
from app.scanners.base import GLOBAL, CollectionError
from app.scanners.s3 import (
    ALL_USERS,
    AclGrant,
    PublicAccessBlock,
    S3AccountPublicAccessBlock,
    S3Bucket,
    bucket_region,
)
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.datastore_helpers import (
    allow_everyone,
    denied,
    evaluate_on,
    findings,
    only,
    policy,
    s3control,
    scan,
    status,
    statuses,
)

BUCKET_CHECKS = {
    "s3_bucket_block_public_access", "s3_bucket_default_encryption", "s3_bucket_kms_encryption",
    "s3_bucket_secure_transport", "s3_bucket_policy_not_public", "s3_bucket_acl_not_public",
    "s3_bucket_public_access", "s3_bucket_versioning_enabled", "s3_bucket_mfa_delete", "s3_bucket_access_logging",
    "s3_bucket_acls_not_used", "s3_bucket_lifecycle_configured",
}
ALL_CHECKS = BUCKET_CHECKS | {"s3_account_public_access_block"}
ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
KEY_ARN = f"arn:aws:kms:us-east-1:{CUSTOMER_ACCOUNT}:key/0f1e2d3c-aaaa-bbbb-cccc-111122223333"


def deny_http(bucket: str) -> dict:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def harden(s3, bucket: str, log_bucket: str) -> None:
    """Every setting the checks ask for, set explicitly (moto starts from pre-2023 defaults)."""
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
        "BucketKeyEnabled": True}]})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_policy(Bucket=bucket, Policy=policy(deny_http(bucket)))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": f"{bucket}/"}})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "expire-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})


async def test_hardened_bucket_passes_and_legacy_bucket_fails(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-logs")
    s3.put_bucket_acl(Bucket="cw-logs", ACL="log-delivery-write")
    s3.create_bucket(Bucket="cw-hardened")
    harden(s3, "cw-hardened", "cw-logs")
    s3.create_bucket(Bucket="cw-legacy")   # moto = AWS before 2023: no encryption, no BPA, ACLs enabled

    out = await scan(ALL_CHECKS)

    assert out.errors == []
    for check in BUCKET_CHECKS - {"s3_bucket_mfa_delete"}:
        assert status(out, check, "cw-hardened") == "PASS", check
    expected_legacy = {
        "s3_bucket_block_public_access": "FAIL", "s3_bucket_default_encryption": "FAIL",
        "s3_bucket_kms_encryption": "FAIL", "s3_bucket_secure_transport": "FAIL",
        "s3_bucket_versioning_enabled": "FAIL", "s3_bucket_mfa_delete": "FAIL", "s3_bucket_access_logging": "FAIL",
        "s3_bucket_lifecycle_configured": "FAIL",
        # Nothing public, and an ACL that grants only the owner: ACLs are enabled but not used.
        "s3_bucket_policy_not_public": "PASS", "s3_bucket_acl_not_public": "PASS", "s3_bucket_public_access": "PASS",
        "s3_bucket_acls_not_used": "PASS",
    }
    assert {c: status(out, c, "cw-legacy") for c in expected_legacy} == expected_legacy
    account = only(findings(out, "s3_account_public_access_block"))
    assert (account.status, account.region, account.resource_type) == ("FAIL", GLOBAL,
                                                                       "AwsS3AccountPublicAccessBlock")
    hardened = findings(out, "s3_bucket_kms_encryption", "cw-hardened")[0]
    assert hardened.resource_arn == "arn:aws:s3:::cw-hardened"
    assert hardened.details["kms_key_id"] == KEY_ARN
    assert "cw-logs" in findings(out, "s3_bucket_access_logging", "cw-hardened")[0].message


async def test_current_aws_defaults_pass_without_false_results(aws_fake):
    """A bucket as AWS creates it since 2023 (SSE-S3, BucketOwnerEnforced, Block Public Access on)."""
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-new-default")
    s3.put_bucket_encryption(Bucket="cw-new-default", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]})
    s3.put_bucket_ownership_controls(Bucket="cw-new-default", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_public_access_block(Bucket="cw-new-default", PublicAccessBlockConfiguration=ALL_ON)

    out = await scan(BUCKET_CHECKS)

    got = {c: status(out, c, "cw-new-default") for c in (
        "s3_bucket_default_encryption", "s3_bucket_kms_encryption", "s3_bucket_block_public_access",
        "s3_bucket_acl_not_public", "s3_bucket_acls_not_used", "s3_bucket_public_access")}
    assert got == {"s3_bucket_default_encryption": "PASS", "s3_bucket_kms_encryption": "FAIL",
                   "s3_bucket_block_public_access": "PASS", "s3_bucket_acl_not_public": "PASS",
                   "s3_bucket_acls_not_used": "PASS", "s3_bucket_public_access": "PASS"}
    # ACLs are disabled: the collector does not spend a GetBucketAcl on this bucket.
    assert aws_fake.calls("s3:GetBucketAcl") == 0


async def test_account_block_public_access_passes_and_covers_every_bucket(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-covered")
    s3.create_bucket(Bucket="cw-covered-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_policy(Bucket="cw-covered", Policy=policy(allow_everyone("s3:GetObject",
                                                                           "arn:aws:s3:::cw-covered/*")))
    s3control(aws_fake).put_public_access_block(AccountId=CUSTOMER_ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)

    out = await scan(ALL_CHECKS)

    assert only(findings(out, "s3_account_public_access_block")).status == "PASS"
    assert statuses(out, "s3_bucket_block_public_access") == {"cw-covered": "PASS", "cw-covered-eu": "PASS"}
    effective = findings(out, "s3_bucket_block_public_access", "cw-covered")[0].details["effective"]
    assert set(effective.values()) == {"account"}
    # The public policy is still wrong, but RestrictPublicBuckets neutralizes it.
    assert status(out, "s3_bucket_policy_not_public", "cw-covered") == "FAIL"
    exposure = findings(out, "s3_bucket_public_access", "cw-covered")[0]
    assert exposure.status == "PASS" and "neutralizes" in exposure.message


async def test_public_policy_and_acl_make_a_bucket_public(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-public-policy")
    s3.put_bucket_policy(Bucket="cw-public-policy", Policy=policy(
        allow_everyone(["s3:GetObject", "s3:ListBucket"],
                       ["arn:aws:s3:::cw-public-policy", "arn:aws:s3:::cw-public-policy/*"])))
    s3.create_bucket(Bucket="cw-public-acl")
    s3.put_bucket_acl(Bucket="cw-public-acl", ACL="public-read")
    s3.create_bucket(Bucket="cw-acl-ignored")
    s3.put_bucket_acl(Bucket="cw-acl-ignored", ACL="authenticated-read")
    s3.put_public_access_block(Bucket="cw-acl-ignored", PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    s3.create_bucket(Bucket="cw-org-only")
    s3.put_bucket_policy(Bucket="cw-org-only", Policy=policy(allow_everyone(
        "s3:GetObject", "arn:aws:s3:::cw-org-only/*",
        condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}})))

    out = await scan({"s3_bucket_public_access", "s3_bucket_policy_not_public", "s3_bucket_acl_not_public",
                      "s3_bucket_acls_not_used"})

    assert statuses(out, "s3_bucket_public_access") == {
        "cw-public-policy": "FAIL", "cw-public-acl": "FAIL", "cw-acl-ignored": "PASS", "cw-org-only": "PASS"}
    assert statuses(out, "s3_bucket_policy_not_public") == {
        "cw-public-policy": "FAIL", "cw-public-acl": "PASS", "cw-acl-ignored": "PASS", "cw-org-only": "PASS"}
    assert statuses(out, "s3_bucket_acl_not_public") == {
        "cw-public-policy": "PASS", "cw-public-acl": "FAIL", "cw-acl-ignored": "FAIL", "cw-org-only": "PASS"}
    assert status(out, "s3_bucket_acls_not_used", "cw-public-acl") == "FAIL"
    public = findings(out, "s3_bucket_public_access", "cw-public-policy")[0]
    assert public.details["exposed_by"] == ["bucket policy"]
    assert public.details["public_policy_statements"][0]["principal"] == "*"
    acl = findings(out, "s3_bucket_public_access", "cw-public-acl")[0]
    assert acl.details["exposed_by"] == ["bucket ACL"]
    assert acl.details["public_acl_grants"] == [{"grantee": ALL_USERS, "permission": "READ"}]


async def test_buckets_are_read_in_their_own_region(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-frankfurt", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.create_bucket(Bucket="cw-old-eu", CreateBucketConfiguration={"LocationConstraint": "EU"})
    s3.create_bucket(Bucket="cw-virginia")

    out = await scan({"s3_bucket_versioning_enabled"})   # a global service: buckets of every region

    regions = {f.resource_id: f.region for f in findings(out, "s3_bucket_versioning_enabled")}
    assert regions == {"cw-frankfurt": "eu-central-1", "cw-old-eu": "eu-west-1", "cw-virginia": "us-east-1"}


def test_bucket_location_names_map_to_regions():
    assert bucket_region(None) == "us-east-1"
    assert bucket_region("") == "us-east-1"
    assert bucket_region("EU") == "eu-west-1"
    assert bucket_region("ap-southeast-2") == "ap-southeast-2"
    assert bucket_region("", "aws-cn") == "cn-north-1"


async def test_listing_denied_makes_bucket_checks_error_but_not_the_account_check(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-unseen")
    s3control(aws_fake).put_public_access_block(AccountId=CUSTOMER_ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)
    aws_fake.configure(deny=[denied("s3", "ListBuckets")])

    out = await scan({"s3_bucket_default_encryption", "s3_bucket_public_access", "s3_account_public_access_block"})

    for check in ("s3_bucket_default_encryption", "s3_bucket_public_access"):
        error = only(findings(out, check))
        assert (error.status, error.region) == ("ERROR", GLOBAL)
        assert "s3:ListAllMyBuckets" in error.message and "AccessDenied" in error.message
    assert only(findings(out, "s3_account_public_access_block")).status == "PASS"
    assert out.status == "partial"


async def test_denied_detail_call_errors_only_the_checks_that_read_it(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-virginia")
    s3.create_bucket(Bucket="cw-ireland", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    aws_fake.configure(deny=[denied("s3", "GetBucketPolicy", region="eu-west-1")])

    out = await scan({"s3_bucket_secure_transport", "s3_bucket_public_access", "s3_bucket_default_encryption"})

    assert status(out, "s3_bucket_secure_transport", "cw-ireland") == "ERROR"
    assert status(out, "s3_bucket_public_access", "cw-ireland") == "ERROR"
    assert status(out, "s3_bucket_default_encryption", "cw-ireland") == "FAIL"
    assert status(out, "s3_bucket_secure_transport", "cw-virginia") == "FAIL"
    assert status(out, "s3_bucket_public_access", "cw-virginia") == "PASS"
    error = findings(out, "s3_bucket_secure_transport", "cw-ireland")[0]
    assert "s3:GetBucketPolicy" in error.message and error.resource_arn == "arn:aws:s3:::cw-ireland"


async def test_denied_account_setting_errors_exposure_checks_of_buckets_in_every_region(aws_fake):
    s3 = aws_fake.client("s3")
    s3.create_bucket(Bucket="cw-virginia")
    s3.create_bucket(Bucket="cw-tokyo", CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    aws_fake.configure(deny=[denied("s3control", "GetPublicAccessBlock")])

    out = await scan({"s3_account_public_access_block", "s3_bucket_block_public_access",
                      "s3_bucket_versioning_enabled"})

    assert only(findings(out, "s3_account_public_access_block")).status == "ERROR"
    by_bucket = {f.resource_id: f.status for f in findings(out, "s3_bucket_block_public_access")
                 if f.resource_id != CUSTOMER_ACCOUNT}
    assert by_bucket == {"cw-virginia": "ERROR", "cw-tokyo": "ERROR"}
    assert statuses(out, "s3_bucket_versioning_enabled") == {"cw-virginia": "FAIL", "cw-tokyo": "FAIL"}


async def test_denied_bucket_location_errors_every_check_of_that_bucket(aws_fake):
    aws_fake.client("s3").create_bucket(Bucket="cw-nowhere")
    aws_fake.configure(deny=[denied("s3", "GetBucketLocation")])

    out = await scan({"s3_bucket_default_encryption", "s3_bucket_versioning_enabled"})

    assert status(out, "s3_bucket_default_encryption", "cw-nowhere") == "ERROR"
    assert status(out, "s3_bucket_versioning_enabled", "cw-nowhere") == "ERROR"
    assert aws_fake.calls("s3:GetBucketVersioning") == 0


# --- inventory fixtures: states moto cannot represent -----------------------------------------------------

def bucket(**fields) -> S3Bucket:
    name = fields.pop("name", "cw-fixture")
    return S3Bucket(region="us-east-1", resource_id=name, name=name, arn=f"arn:aws:s3:::{name}", **fields)


def test_mfa_delete_passes_only_with_versioning_and_mfa_delete():
    assert only(evaluate_on("s3_bucket_mfa_delete", bucket(versioning="Enabled", mfa_delete=True))).status \
        == Status.PASS
    assert only(evaluate_on("s3_bucket_mfa_delete", bucket(versioning="Enabled"))).status == Status.FAIL
    assert only(evaluate_on("s3_bucket_mfa_delete", bucket(versioning="Suspended", mfa_delete=True))).status \
        == Status.FAIL


@pytest.mark.parametrize(("statement", "ok"), [
    (deny_http("cw-fixture"), True),
    ({**deny_http("cw-fixture"), "Principal": {"AWS": "*"}, "Action": ["s3:GetObject", "s3:PutObject"],
      "Condition": {"BoolIfExists": {"aws:securetransport": ["false"]}}}, True),
    ({**deny_http("cw-fixture"), "Resource": "*", "Action": "*", "Condition": {"Bool": {"aws:SecureTransport": False}}},
     True),
    ({**deny_http("cw-fixture"), "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
    ({**deny_http("cw-fixture"), "Effect": "Allow"}, False),
    ({**deny_http("cw-fixture"), "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"}}, False),
    ({**deny_http("cw-fixture"), "Resource": "arn:aws:s3:::cw-fixture"}, False),   # the bucket, not its objects
    ({**deny_http("cw-fixture"), "Action": "s3:PutObject"}, False),               # reads stay allowed over HTTP
])
def test_secure_transport_policy_shapes(statement, ok):
    result = only(evaluate_on("s3_bucket_secure_transport", bucket(policy=json.loads(policy(statement)))))
    assert result.status == (Status.PASS if ok else Status.FAIL)


@pytest.mark.parametrize(("statement", "public"), [
    (allow_everyone("s3:GetObject"), True),
    (allow_everyone("s3:GetObject", principal={"AWS": "*"}), True),
    (allow_everyone("s3:GetObject", principal={"AWS": "arn:aws:iam::*:root"}), True),
    (allow_everyone("s3:GetObject", condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True),
    (allow_everyone("s3:GetObject", condition={"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}), True),
    (allow_everyone("s3:GetObject", condition={"Bool": {"aws:SecureTransport": "true"}}), True),
    (allow_everyone("s3:GetObject", condition={"StringEquals": {"aws:SourceVpc": "vpc-0abc"}}), False),
    (allow_everyone("s3:GetObject", condition={"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}), False),
    (allow_everyone("s3:GetObject", condition={"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}), False),
    (allow_everyone("s3:GetObject", condition={"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}), False),
    (allow_everyone("s3:PutObject", condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::cw-logs-source"}}),
     False),
    (allow_everyone("s3:GetObject", principal={"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/app"}), False),
    (allow_everyone("s3:PutObject", principal={"Service": "logging.s3.amazonaws.com"}), False),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}, False),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"}, "Action": "s3:*",
      "Resource": "*"}, True),
])
def test_public_policy_statements(statement, public):
    assert bool(public_statements({"Version": "2012-10-17", "Statement": [statement]})) is public
    result = only(evaluate_on("s3_bucket_policy_not_public", bucket(policy={"Statement": statement})))
    assert result.status == (Status.FAIL if public else Status.PASS)


def test_exposure_needs_both_a_public_grant_and_no_block_at_either_level():
    public_acl = [AclGrant(grantee_type="Group", grantee=ALL_USERS, permission="READ")]
    public_policy = {"Statement": [allow_everyone("s3:GetObject")]}
    ignore_acls = PublicAccessBlock(ignore_public_acls=True)
    restrict = PublicAccessBlock(restrict_public_buckets=True)
    cases = [
        (bucket(acl_grants=public_acl), Status.FAIL),
        (bucket(acl_grants=public_acl, account_public_access_block=ignore_acls), Status.PASS),
        (bucket(acl_grants=public_acl, public_access_block=ignore_acls), Status.PASS),
        (bucket(acl_grants=public_acl, object_ownership="BucketOwnerEnforced"), Status.PASS),
        (bucket(acl_grants=public_acl, public_access_block=restrict), Status.FAIL),
        (bucket(policy=public_policy, account_public_access_block=restrict), Status.PASS),
        (bucket(policy=public_policy, public_access_block=PublicAccessBlock(block_public_policy=True)), Status.FAIL),
        (bucket(policy=public_policy, acl_grants=public_acl, public_access_block=restrict), Status.FAIL),
    ]
    for resource, expected in cases:
        assert only(evaluate_on("s3_bucket_public_access", resource)).status == expected, resource


def test_account_block_public_access_results():
    def account(configuration):
        return S3AccountPublicAccessBlock(region=GLOBAL, resource_id=CUSTOMER_ACCOUNT, configuration=configuration)

    on = PublicAccessBlock(**{f: True for f in PublicAccessBlock.model_fields})
    assert only(evaluate_on("s3_account_public_access_block", account(on))).status == Status.PASS
    partial = only(evaluate_on("s3_account_public_access_block",
                               account(on.model_copy(update={"ignore_public_acls": False}))))
    assert partial.status == Status.FAIL and partial.details["disabled"] == ["ignore_public_acls"]
    assert only(evaluate_on("s3_account_public_access_block", account(None))).status == Status.FAIL


def test_detail_error_on_one_bucket_spares_the_others():
    error = CollectionError(service="s3", action="s3:GetBucketVersioning", region="us-east-1",
                            resource_id="cw-broken", code="AccessDenied", message="denied")
    results = evaluate_on("s3_bucket_versioning_enabled", bucket(name="cw-broken"),
                          bucket(name="cw-fine", versioning="Enabled"), errors=[error])
    assert {r.resource_id: r.status for r in results} == {"cw-broken": Status.ERROR, "cw-fine": Status.PASS}
