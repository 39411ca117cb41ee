"""Seed the demo's simulated AWS account: a realistic, documented mix of good and bad configurations.

Every seeding function takes boto3 clients, creates what is missing and leaves what exists alone, so
seeding an account twice gives the same account. `EXPECTATIONS` documents what is seeded, whether it is
good or bad, and which check should PASS or FAIL on it; docs/DEMO.md shows the same table
(`markdown_table()` renders it, and a test keeps the two in step). Only configuration is seeded: no
object, item, message or secret value is ever written.

Where moto cannot represent a state, nothing pretends otherwise: access keys cannot be back-dated (so none
is "old"), and moto's credential report has no root-user row, so the root-user checks report ERROR.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

DEMO_ACCOUNT = "123456789012"      # moto's default account: where plain test keys create resources
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
HOME = "us-east-1"
GLOBAL = "global"
ORG = "acme"

ClientFactory = Callable[[str, str], Any]   # (botocore service name, region) -> boto3 client


class SeedError(RuntimeError):
    """The simulated account did not take a configuration it should have."""


# --------------------------------------------------------------------------------------------------
# What is seeded, and what the scan should say about it
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expectation:
    """One seeded configuration and the verdict the checks named in `checks` should give on it."""

    category: str               # the checks' category in the catalog (identity, encryption, exposure...)
    service: str
    region: str                 # a region, or "global" for account-wide (IAM, S3 names, CloudFront)
    resource: str               # the name as seeded; the key of SeedResult.ids where that differs
    setup: str
    verdict: Literal["good", "bad"]
    checks: tuple[str, ...] = ()
    # Whether `resource` names the finding's resource; False for region- or account-level checks.
    per_resource: bool = True


def _bucket(purpose: str) -> str:
    return f"{ORG}-{purpose}-{DEMO_ACCOUNT}"


BUCKET_PUBLIC = _bucket("public-assets")
BUCKET_LEGACY = _bucket("legacy-uploads")
BUCKET_DATA = _bucket("prod-data")
BUCKET_LOGS = _bucket("access-logs")
BUCKET_TRAIL = _bucket("cloudtrail")
BUCKET_CONFIG = _bucket("config")
BUCKET_BACKUPS = _bucket("backups")
BUCKET_LOGS_EU = _bucket("access-logs-eu")
TRAIL = "acme-org-trail"
BUCKETS = (BUCKET_LOGS, BUCKET_LOGS_EU, BUCKET_PUBLIC, BUCKET_LEGACY, BUCKET_DATA, BUCKET_BACKUPS, BUCKET_TRAIL,
           BUCKET_CONFIG)

E = Expectation
EXPECTATIONS: tuple[Expectation, ...] = (
    # ---- identity: IAM (account-wide)
    E("identity", "iam", GLOBAL, "account password policy",
      "minimum length 8; numbers and symbols not required; no reuse prevention; passwords never expire", "bad",
      ("iam_password_policy_minimum_length_14", "iam_password_policy_number", "iam_password_policy_symbol",
       "iam_password_policy_reuse_prevention_24", "iam_password_policy_expires_90_days"), per_resource=False),
    E("identity", "iam", GLOBAL, "account password policy", "upper- and lower-case letters required", "good",
      ("iam_password_policy_uppercase", "iam_password_policy_lowercase"), per_resource=False),
    E("identity", "iam", GLOBAL, "alice.admin",
      "console password with a virtual MFA device; admin rights only through the Admins group", "good",
      ("iam_user_console_mfa_enabled", "iam_user_mfa_enabled", "iam_user_no_direct_policies")),
    E("identity", "iam", GLOBAL, "carol.audit", "console password with MFA, in the Auditors group", "good",
      ("iam_user_console_mfa_enabled",)),
    E("identity", "iam", GLOBAL, "bob.dev", "console password without MFA; an inline policy of his own", "bad",
      ("iam_user_console_mfa_enabled", "iam_user_mfa_enabled", "iam_user_no_direct_policies")),
    E("identity", "iam", GLOBAL, "bob.dev/break-glass-everything",
      "inline user policy allowing Action * on Resource *", "bad", ("iam_inline_policy_no_admin",),
      per_resource=False),
    E("identity", "iam", GLOBAL, "ci-deploy",
      "programmatic user: two active access keys, no MFA, PowerUserAccess attached directly", "bad",
      ("iam_user_single_active_access_key", "iam_user_no_direct_policies", "iam_user_mfa_enabled")),
    E("identity", "iam", GLOBAL, "AcmeFullAdmin",
      "customer managed policy allowing Action * on Resource *, attached to DeployRole", "bad",
      ("iam_customer_attached_policy_no_admin",)),
    E("identity", "iam", GLOBAL, "SupportTeamRole", "a role with AWSSupportAccess exists", "good",
      ("iam_support_role_exists",), per_resource=False),
    E("identity", "ec2", HOME, "i:bastion", "instance allows IMDSv1 (HttpTokens optional)", "bad",
      ("ec2_instance_imdsv2_required",)),
    E("identity", "ec2", "ap-southeast-2", "i:legacy-batch", "instance allows IMDSv1", "bad",
      ("ec2_instance_imdsv2_required",)),
    E("identity", "ec2", HOME, "i:app-server", "instance requires IMDSv2", "good",
      ("ec2_instance_imdsv2_required",)),
    # ---- exposure
    E("exposure", "iam", GLOBAL, "LegacyCrossAccountRole", "trust policy allows Principal {\"AWS\": \"*\"}", "bad",
      ("iam_role_trust_not_public",)),
    E("exposure", "iam", GLOBAL, "AppServerRole", "trusted by ec2.amazonaws.com only", "good",
      ("iam_role_trust_not_public",)),
    E("exposure", "s3", GLOBAL, "account Block Public Access", "not configured at the account level", "bad",
      ("s3_account_public_access_block",), per_resource=False),
    E("exposure", "s3", HOME, BUCKET_PUBLIC,
      "website bucket whose policy grants s3:GetObject to Principal \"*\"; no Block Public Access", "bad",
      ("s3_bucket_policy_not_public", "s3_bucket_public_access", "s3_bucket_block_public_access")),
    E("exposure", "s3", "eu-west-1", BUCKET_LEGACY, "ACL grants READ to AllUsers (public-read)", "bad",
      ("s3_bucket_acl_not_public", "s3_bucket_public_access")),
    E("exposure", "s3", "eu-west-1", BUCKET_DATA, "all four Block Public Access settings on, private policy",
      "good", ("s3_bucket_block_public_access", "s3_bucket_public_access", "s3_bucket_policy_not_public")),
    E("exposure", "ec2", HOME, "sg:ssh-from-anywhere", "ingress TCP 22 from 0.0.0.0/0", "bad",
      ("ec2_securitygroup_ingress_ipv4_admin_ports",)),
    E("exposure", "ec2", "eu-west-1", "sg:rdp-from-anywhere", "ingress TCP 3389 from 0.0.0.0/0 and ::/0", "bad",
      ("ec2_securitygroup_ingress_ipv4_admin_ports", "ec2_securitygroup_ingress_ipv6_admin_ports")),
    E("exposure", "ec2", HOME, "sg:web-https", "ingress TCP 443 only, from anywhere (a public web tier)", "good",
      ("ec2_securitygroup_ingress_ipv4_admin_ports", "ec2_securitygroup_ingress_ipv6_admin_ports")),
    E("exposure", "ec2", HOME, "i:bastion", "instance with a public IP address", "bad",
      ("ec2_instance_no_public_ip",)),
    E("exposure", "ec2", HOME, "i:app-server", "instance without a public IP address", "good",
      ("ec2_instance_no_public_ip",)),
    E("exposure", "ec2", "ap-southeast-2", "snap:legacy-shared",
      "EBS snapshot anyone may restore (createVolumePermission group all)", "bad", ("ec2_ebs_snapshot_not_public",)),
    E("exposure", "ec2", HOME, "snap:data-unencrypted-nightly", "EBS snapshot shared with no one", "good",
      ("ec2_ebs_snapshot_not_public",)),
    E("exposure", "rds", HOME, "orders-db", "publicly accessible PostgreSQL instance", "bad",
      ("rds_instance_not_publicly_accessible",)),
    E("exposure", "rds", "eu-west-1", "billing-db", "private instance", "good",
      ("rds_instance_not_publicly_accessible",)),
    E("exposure", "lambda", "eu-west-1", "legacy-webhook", "resource policy lets Principal \"*\" invoke it", "bad",
      ("lambda_function_not_publicly_accessible",)),
    E("exposure", "lambda", "eu-west-1", "orders-processor", "no resource policy", "good",
      ("lambda_function_not_publicly_accessible",)),
    E("exposure", "accessanalyzer", HOME, "acme-account-analyzer", "IAM Access Analyzer (account zone of trust)",
      "good", ("accessanalyzer_enabled",), per_resource=False),
    E("exposure", "accessanalyzer", "eu-west-1", "no analyzer",
      "IAM Access Analyzer not set up (nor in ap-southeast-2)", "bad", ("accessanalyzer_enabled",),
      per_resource=False),
    # ---- encryption
    E("encryption", "s3", HOME, BUCKET_PUBLIC, "no default encryption configuration (a pre-2023 bucket)", "bad",
      ("s3_bucket_default_encryption",)),
    E("encryption", "s3", "eu-west-1", BUCKET_DATA, "SSE-KMS with a customer key; policy denies non-TLS requests",
      "good", ("s3_bucket_default_encryption", "s3_bucket_kms_encryption", "s3_bucket_secure_transport")),
    E("encryption", "s3", "ap-southeast-2", BUCKET_BACKUPS, "SSE-S3 only; no TLS-only policy", "bad",
      ("s3_bucket_kms_encryption", "s3_bucket_secure_transport")),
    E("encryption", "ec2", HOME, "vol:data-unencrypted", "unencrypted EBS volume", "bad",
      ("ec2_ebs_volume_encrypted",)),
    E("encryption", "ec2", HOME, "vol:data-encrypted", "encrypted EBS volume", "good",
      ("ec2_ebs_volume_encrypted",)),
    E("encryption", "ec2", HOME, "snap:data-unencrypted-nightly", "snapshot of the unencrypted volume", "bad",
      ("ec2_ebs_snapshot_encrypted",)),
    E("encryption", "ec2", "eu-west-1", "EBS encryption by default", "enabled in eu-west-1", "good",
      ("ec2_ebs_default_encryption",), per_resource=False),
    E("encryption", "ec2", HOME, "EBS encryption by default", "disabled (also in ap-southeast-2)", "bad",
      ("ec2_ebs_default_encryption",), per_resource=False),
    E("encryption", "rds", HOME, "orders-db", "storage not encrypted", "bad", ("rds_instance_storage_encrypted",)),
    E("encryption", "rds", "eu-west-1", "billing-db", "storage encrypted with a customer KMS key", "good",
      ("rds_instance_storage_encrypted",)),
    E("encryption", "kms", HOME, "alias/acme-prod-data", "customer key with automatic rotation", "good",
      ("kms_key_rotation_enabled",)),
    E("encryption", "kms", "eu-west-1", "alias/acme-legacy-app", "customer key without rotation", "bad",
      ("kms_key_rotation_enabled",)),
    E("encryption", "sqs", HOME, "orders-queue", "SSE with the acme-prod-data KMS key", "good",
      ("sqs_queue_encrypted",)),
    E("encryption", "sqs", "eu-west-1", "legacy-events", "no server-side encryption", "bad",
      ("sqs_queue_encrypted",)),
    E("encryption", "sns", HOME, "security-alerts", "encrypted with the acme-prod-data KMS key", "good",
      ("sns_topic_encrypted",)),
    E("encryption", "sns", "ap-southeast-2", "marketing-events", "no server-side encryption", "bad",
      ("sns_topic_encrypted",)),
    E("encryption", "dynamodb", HOME, "orders", "table encrypted with a customer KMS key", "good",
      ("dynamodb_table_kms_encryption",)),
    E("encryption", "dynamodb", "eu-west-1", "sessions", "table with the default AWS-owned key only", "bad",
      ("dynamodb_table_kms_encryption",)),
    E("encryption", "cloudtrail", HOME, TRAIL, "log files encrypted with SSE-S3 only, not SSE-KMS", "bad",
      ("cloudtrail_kms_encryption_enabled",)),
    E("encryption", "elbv2", HOME, "acme-web", "internet-facing ALB listening on plain HTTP, no redirect", "bad",
      ("elbv2_alb_http_redirects_to_https",)),
    E("encryption", "cloudfront", GLOBAL, "acme marketing site", "viewers may use plain HTTP (allow-all)", "bad",
      ("cloudfront_distribution_https_only",)),
    # ---- logging
    E("logging", "cloudtrail", HOME, TRAIL,
      "multi-region trail, logging, log file validation, delivering to CloudWatch Logs", "good",
      ("cloudtrail_log_file_validation_enabled", "cloudtrail_cloudwatch_logs_enabled",
       "cloudtrail_trail_logging_active")),
    E("logging", "cloudtrail", GLOBAL, "account trails", "a multi-region trail exists", "good",
      ("cloudtrail_multi_region_enabled",), per_resource=False),
    E("logging", "cloudtrail", GLOBAL, "account trails", "no S3 object-level (data) events recorded", "bad",
      ("cloudtrail_s3_object_read_events_logged", "cloudtrail_s3_object_write_events_logged"),
      per_resource=False),
    E("logging", "config", HOME, "default recorder", "AWS Config recording all resources, delivering to S3",
      "good", ("config_recorder_enabled",), per_resource=False),
    E("logging", "config", "eu-west-1", "no recorder", "AWS Config not set up (nor in ap-southeast-2)", "bad",
      ("config_recorder_enabled",), per_resource=False),
    E("logging", "cloudwatch", GLOBAL, "RootAccountUsage",
      "metric filter on the trail's log group and an alarm notifying security-alerts", "good",
      ("cloudwatch_root_usage_alarm",), per_resource=False),
    E("logging", "cloudwatch", GLOBAL, "other CIS metric filters",
      "no filter or alarm for unauthorized API calls, console sign-in without MFA, IAM policy changes", "bad",
      ("cloudwatch_unauthorized_api_calls_alarm", "cloudwatch_console_login_without_mfa_alarm",
       "cloudwatch_iam_policy_changes_alarm"), per_resource=False),
    E("logging", "ec2", HOME, "default VPC", "VPC flow logs delivered to S3", "good",
      ("ec2_vpc_flow_logs_enabled",)),
    E("logging", "ec2", "eu-west-1", "default VPC", "no flow logs (nor in ap-southeast-2)", "bad",
      ("ec2_vpc_flow_logs_enabled",)),
    E("logging", "s3", "eu-west-1", BUCKET_DATA, "server access logging to the EU log bucket", "good",
      ("s3_bucket_access_logging",)),
    E("logging", "s3", "ap-southeast-2", BUCKET_BACKUPS, "no server access logging", "bad",
      ("s3_bucket_access_logging",)),
    # ---- resilience
    E("resilience", "s3", "eu-west-1", BUCKET_DATA, "versioning on, old versions expire after 90 days", "good",
      ("s3_bucket_versioning_enabled", "s3_bucket_lifecycle_configured")),
    E("resilience", "s3", "ap-southeast-2", BUCKET_BACKUPS, "no versioning, no lifecycle rules", "bad",
      ("s3_bucket_versioning_enabled", "s3_bucket_lifecycle_configured")),
    E("resilience", "rds", HOME, "orders-db", "no automated backups, single-AZ, no deletion protection", "bad",
      ("rds_instance_backup_enabled", "rds_instance_multi_az", "rds_instance_deletion_protection")),
    E("resilience", "rds", "eu-west-1", "billing-db", "7-day automated backups, Multi-AZ, deletion protection",
      "good", ("rds_instance_backup_enabled", "rds_instance_multi_az", "rds_instance_deletion_protection")),
    E("resilience", "dynamodb", HOME, "orders", "point-in-time recovery on", "good",
      ("dynamodb_table_pitr_enabled",)),
    E("resilience", "dynamodb", "eu-west-1", "sessions", "point-in-time recovery off", "bad",
      ("dynamodb_table_pitr_enabled",)),
    # ---- patching
    E("patching", "lambda", "eu-west-1", "legacy-webhook", "retired python3.7 runtime", "bad",
      ("lambda_function_supported_runtime",)),
    E("patching", "lambda", "eu-west-1", "orders-processor", "python3.12 runtime", "good",
      ("lambda_function_supported_runtime",)),
    E("patching", "rds", HOME, "orders-db", "automatic minor version upgrades off", "bad",
      ("rds_instance_auto_minor_version_upgrade",)),
    E("patching", "rds", "eu-west-1", "billing-db", "automatic minor version upgrades on", "good",
      ("rds_instance_auto_minor_version_upgrade",)),
    # ---- threat detection
    E("threat-detection", "guardduty", HOME, "detector",
      "enabled, with GuardDuty sample findings (several of high severity)", "bad",
      ("guardduty_no_high_severity_findings",), per_resource=False),
    E("threat-detection", "guardduty", "eu-west-1", "detector", "enabled, no findings", "good",
      ("guardduty_enabled", "guardduty_no_high_severity_findings"), per_resource=False),
    E("threat-detection", "guardduty", "ap-southeast-2", "no detector", "GuardDuty never enabled", "bad",
      ("guardduty_enabled",), per_resource=False),
    E("threat-detection", "securityhub", HOME, "hub",
      "Security Hub enabled with its default standards", "good",
      ("securityhub_enabled", "securityhub_standards_enabled"), per_resource=False),
    E("threat-detection", "securityhub", HOME, "hub", "an active HIGH severity finding", "bad",
      ("securityhub_no_high_severity_findings",), per_resource=False),
    E("threat-detection", "securityhub", "eu-west-1", "no hub", "Security Hub off (also in ap-southeast-2)", "bad",
      ("securityhub_enabled",), per_resource=False),
)
del E


@dataclass
class SeedResult:
    """What seeding produced: documented name -> AWS id or ARN (security groups, instances, volumes...)."""

    account_id: str = DEMO_ACCOUNT
    ids: dict[str, str] = field(default_factory=dict)

    def identifiers(self, expectation: Expectation) -> set[str]:
        """What may name this expectation's resource in a finding: its documented name, and the id or ARN it
        got (per region where one name is used in several regions, like "default VPC")."""
        names = {expectation.resource}
        for key in (expectation.resource, f"{expectation.resource}@{expectation.region}"):
            if key in self.ids:
                names.add(self.ids[key])
        return names


def markdown_table(expectations: Iterable[Expectation] = EXPECTATIONS) -> str:
    """The seeded configuration as a Markdown table (docs/DEMO.md embeds this exact text)."""
    lines = ["| Category | Service | Region | Resource | Configuration | Verdict | Checks |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in expectations:
        checks = ", ".join(f"`{c}`" for c in e.checks)
        lines.append(f"| {e.category} | {e.service} | {e.region} | `{e.resource}` | {e.setup} | "
                     f"{'good (PASS)' if e.verdict == 'good' else 'bad (FAIL)'} | {checks} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _ignoring(codes: set[str], fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Call fn; an answer meaning "it already exists" is success (idempotent seeding)."""
    try:
        return fn(**kwargs)
    except ClientError as exc:
        if _code(exc) in codes:
            return None
        raise


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _tags(name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}, {"Key": "Owner", "Value": "platform-team"}]


def _tag_spec(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": _tags(name)}]


ADMIN_STATEMENT = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _arn(service: str, region: str, resource: str, account_id: str = DEMO_ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account_id}:{resource}"


# --------------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------------

def _user(iam: Any, name: str, *, console: bool, mfa: bool, groups: Iterable[str] = ()) -> None:
    _ignoring({"EntityAlreadyExists"}, iam.create_user, UserName=name, Tags=_tags(name))
    if console:
        # A throwaway password inside the simulated account only (never printed, logged or stored).
        _ignoring({"EntityAlreadyExists"}, iam.create_login_profile, UserName=name,
                  Password=f"Demo-{secrets.token_urlsafe(18)}!", PasswordResetRequired=False)
    if mfa and not iam.list_mfa_devices(UserName=name)["MFADevices"]:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                              AuthenticationCode2="654321")
    for group in groups:
        iam.add_user_to_group(GroupName=group, UserName=name)


def _role(iam: Any, name: str, trust: dict[str, Any], *, managed: Iterable[str] = ()) -> str:
    _ignoring({"EntityAlreadyExists"}, iam.create_role, RoleName=name,
              AssumeRolePolicyDocument=json.dumps(trust), Tags=_tags(name))
    for policy_arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return iam.get_role(RoleName=name)["Role"]["Arn"]


def _trust(principal: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]}


def seed_iam(iam: Any, result: SeedResult) -> None:
    """Users with and without MFA, admin inline and managed policies, a role anyone may assume, a weak
    password policy, and the roles the other services use."""
    aws = "arn:aws:iam::aws:policy"
    iam.update_account_password_policy(
        MinimumPasswordLength=8, RequireSymbols=False, RequireNumbers=False, RequireUppercaseCharacters=True,
        RequireLowercaseCharacters=True, AllowUsersToChangePassword=True)
    for group, policy in (("Admins", f"{aws}/AdministratorAccess"), ("Auditors", f"{aws}/SecurityAudit")):
        _ignoring({"EntityAlreadyExists"}, iam.create_group, GroupName=group)
        iam.attach_group_policy(GroupName=group, PolicyArn=policy)

    _user(iam, "alice.admin", console=True, mfa=True, groups=["Admins"])
    _user(iam, "carol.audit", console=True, mfa=True, groups=["Auditors"])
    _user(iam, "bob.dev", console=True, mfa=False)
    iam.put_user_policy(UserName="bob.dev", PolicyName="break-glass-everything",
                        PolicyDocument=_policy(ADMIN_STATEMENT))
    _user(iam, "ci-deploy", console=False, mfa=False)
    iam.attach_user_policy(UserName="ci-deploy", PolicyArn=f"{aws}/PowerUserAccess")
    for _ in range(2 - len(iam.list_access_keys(UserName="ci-deploy")["AccessKeyMetadata"])):
        # The secret half is discarded at once: it exists only inside the simulated account.
        iam.create_access_key(UserName="ci-deploy")
    for user in ("alice.admin", "bob.dev", "carol.audit", "ci-deploy"):
        result.ids[user] = f"arn:aws:iam::{DEMO_ACCOUNT}:user/{user}"

    admin_policy = f"arn:aws:iam::{DEMO_ACCOUNT}:policy/AcmeFullAdmin"
    _ignoring({"EntityAlreadyExists"}, iam.create_policy, PolicyName="AcmeFullAdmin",
              PolicyDocument=_policy(ADMIN_STATEMENT), Description="Legacy all-powerful deploy policy")
    result.ids["AcmeFullAdmin"] = admin_policy
    account_root = f"arn:aws:iam::{DEMO_ACCOUNT}:root"
    roles = {
        "LegacyCrossAccountRole": (_trust({"AWS": "*"}), [f"{aws}/ReadOnlyAccess"]),
        "AppServerRole": (_trust({"Service": "ec2.amazonaws.com"}), [f"{aws}/AmazonS3ReadOnlyAccess"]),
        "DeployRole": (_trust({"AWS": account_root}), [admin_policy]),
        "SupportTeamRole": (_trust({"AWS": account_root}), [f"{aws}/AWSSupportAccess"]),
        "ConfigRecorderRole": (_trust({"Service": "config.amazonaws.com"}), [f"{aws}/service-role/AWS_ConfigRole"]),
        "CloudTrailToLogsRole": (_trust({"Service": "cloudtrail.amazonaws.com"}), []),
        "OrdersLambdaRole": (_trust({"Service": "lambda.amazonaws.com"}),
                             [f"{aws}/service-role/AWSLambdaBasicExecutionRole"]),
    }
    for name, (trust, managed) in roles.items():
        result.ids[name] = _role(iam, name, trust, managed=managed)


# --------------------------------------------------------------------------------------------------
# KMS (regional)
# --------------------------------------------------------------------------------------------------

def seed_kms_key(kms: Any, alias: str, *, rotation: bool, description: str) -> str:
    """A customer managed key behind `alias`; returns its ARN."""
    for entry in kms.list_aliases()["Aliases"]:
        if entry["AliasName"] == alias and entry.get("TargetKeyId"):
            return kms.describe_key(KeyId=entry["TargetKeyId"])["KeyMetadata"]["Arn"]
    key = kms.create_key(Description=description, Tags=[{"TagKey": "Owner", "TagValue": "platform-team"}])
    meta = key["KeyMetadata"]
    if rotation:
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return meta["Arn"]


# --------------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------------

def _create_bucket(s3: Any, name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    _ignoring({"BucketAlreadyOwnedByYou"}, s3.create_bucket, **kwargs)


def _block_all(s3: Any, bucket: str) -> None:
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})


def _sse(s3: Any, bucket: str, kms_key_arn: str | None = None) -> None:
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    if kms_key_arn:
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn},
                "BucketKeyEnabled": True}
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})


def _tls_only(bucket: str) -> dict[str, Any]:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def seed_s3(s3: Any, data_key_arn: str, result: SeedResult) -> None:
    """A public website bucket, a bucket with a public ACL, a well-protected data bucket, log buckets.

    Every configuration call is a PUT of the whole setting, so running this again changes nothing.
    """
    for logs, region in ((BUCKET_LOGS, HOME), (BUCKET_LOGS_EU, "eu-west-1")):
        _create_bucket(s3, logs, region)
        _block_all(s3, logs)
        _sse(s3, logs)
        s3.put_bucket_policy(Bucket=logs, Policy=_policy(
            {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
             "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{logs}/*"}, _tls_only(logs)))

    _create_bucket(s3, BUCKET_PUBLIC, HOME)
    s3.put_bucket_policy(Bucket=BUCKET_PUBLIC, Policy=_policy(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{BUCKET_PUBLIC}/*"}))
    s3.put_bucket_website(Bucket=BUCKET_PUBLIC, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})

    _create_bucket(s3, BUCKET_LEGACY, "eu-west-1")
    s3.put_bucket_acl(Bucket=BUCKET_LEGACY, ACL="public-read")
    _sse(s3, BUCKET_LEGACY)

    _create_bucket(s3, BUCKET_DATA, "eu-west-1")
    _block_all(s3, BUCKET_DATA)
    _sse(s3, BUCKET_DATA, data_key_arn)
    s3.put_bucket_versioning(Bucket=BUCKET_DATA, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_logging(Bucket=BUCKET_DATA, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": BUCKET_LOGS_EU, "TargetPrefix": f"{BUCKET_DATA}/"}})
    s3.put_bucket_policy(Bucket=BUCKET_DATA, Policy=_policy(_tls_only(BUCKET_DATA)))
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET_DATA, LifecycleConfiguration={"Rules": [
        {"ID": "expire-old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90}}]})

    _create_bucket(s3, BUCKET_BACKUPS, "ap-southeast-2")
    _block_all(s3, BUCKET_BACKUPS)
    _sse(s3, BUCKET_BACKUPS)

    _create_bucket(s3, BUCKET_TRAIL, HOME)
    _block_all(s3, BUCKET_TRAIL)
    _sse(s3, BUCKET_TRAIL)
    s3.put_bucket_policy(Bucket=BUCKET_TRAIL, Policy=_policy(
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{BUCKET_TRAIL}"},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{BUCKET_TRAIL}/AWSLogs/{DEMO_ACCOUNT}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
        _tls_only(BUCKET_TRAIL)))

    _create_bucket(s3, BUCKET_CONFIG, HOME)
    _block_all(s3, BUCKET_CONFIG)
    _sse(s3, BUCKET_CONFIG)
    for bucket in BUCKETS:
        result.ids[bucket] = f"arn:aws:s3:::{bucket}"


# --------------------------------------------------------------------------------------------------
# EC2 / VPC (regional)
# --------------------------------------------------------------------------------------------------

def _default_vpc(ec2: Any) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if vpcs:
        return vpcs[0]["VpcId"]
    return ec2.create_default_vpc()["Vpc"]["VpcId"]


def _security_group(ec2: Any, vpc_id: str, name: str, description: str,
                    rules: list[dict[str, Any]]) -> str:
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                  {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    if found:
        return found[0]["GroupId"]
    group_id = ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                         TagSpecifications=_tag_spec("security-group", name))["GroupId"]
    if rules:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rules)
    return group_id


def _tcp(port: int, *, v4: str | None = None, v6: str | None = None, description: str = "") -> dict[str, Any]:
    rule: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if v4:
        rule["IpRanges"] = [{"CidrIp": v4, "Description": description}]
    if v6:
        rule["Ipv6Ranges"] = [{"CidrIpv6": v6, "Description": description}]
    return rule


def _tagged(ec2: Any, describe: str, key: str, name: str, extra: list[dict[str, Any]] | None = None) -> str | None:
    filters = [{"Name": "tag:Name", "Values": [name]}, *(extra or [])]
    answer = getattr(ec2, describe)(Filters=filters)
    if key == "Reservations":
        items = [i for r in answer["Reservations"] for i in r["Instances"]]
        return items[0]["InstanceId"] if items else None
    items = answer[key]
    return items[0]["VolumeId"] if items else None


def _instance(ec2: Any, name: str, *, imds_v2: bool, group_id: str, public_ip: bool = False) -> str:
    existing = _tagged(ec2, "describe_instances", "Reservations", name,
                       [{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}])
    if existing:
        return existing
    answer = ec2.run_instances(
        # An AMI id of the right shape: the fake starts without moto's public AMI catalogue.
        ImageId="ami-0c02fb55956c7d316", MinCount=1, MaxCount=1, InstanceType="t3.micro",
        MetadataOptions={"HttpTokens": "required" if imds_v2 else "optional", "HttpEndpoint": "enabled"},
        NetworkInterfaces=[{"DeviceIndex": 0, "Groups": [group_id], "AssociatePublicIpAddress": public_ip}],
        TagSpecifications=_tag_spec("instance", name))
    return answer["Instances"][0]["InstanceId"]


def _volume(ec2: Any, region: str, name: str, *, encrypted: bool) -> str:
    existing = _tagged(ec2, "describe_volumes", "Volumes", name)
    if existing:
        return existing
    return ec2.create_volume(AvailabilityZone=f"{region}a", Size=50, VolumeType="gp3", Encrypted=encrypted,
                             TagSpecifications=_tag_spec("volume", name))["VolumeId"]


def _snapshot(ec2: Any, volume_id: str, name: str) -> str:
    existing = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:Name", "Values": [name]}])
    if existing["Snapshots"]:
        return existing["Snapshots"][0]["SnapshotId"]
    return ec2.create_snapshot(VolumeId=volume_id, Description=name,
                               TagSpecifications=_tag_spec("snapshot", name))["SnapshotId"]


def seed_ec2(ec2: Any, region: str, result: SeedResult) -> None:
    """Security groups open to the world on 22/3389, IMDSv1 instances, unencrypted volumes and snapshots,
    a public snapshot, EBS encryption by default in one region and VPC flow logs in another."""
    vpc = _default_vpc(ec2)
    ids = result.ids
    if region == HOME:
        ssh = _security_group(ec2, vpc, "ssh-from-anywhere", "Bastion SSH (temporary, 2019)",
                              [_tcp(22, v4="0.0.0.0/0", description="anyone")])
        web = _security_group(ec2, vpc, "web-https", "Public HTTPS for the web tier",
                              [_tcp(443, v4="0.0.0.0/0", v6="::/0", description="HTTPS")])
        app = _security_group(ec2, vpc, "app-internal", "App tier from inside the VPC",
                              [_tcp(8080, v4="172.31.0.0/16", description="VPC")])
        ids["sg:ssh-from-anywhere"], ids["sg:web-https"], ids["sg:app-internal"] = ssh, web, app
        ids["i:bastion"] = _instance(ec2, "bastion", imds_v2=False, group_id=ssh, public_ip=True)
        ids["i:app-server"] = _instance(ec2, "app-server", imds_v2=True, group_id=app)
        unencrypted = _volume(ec2, region, "data-unencrypted", encrypted=False)
        ids["vol:data-unencrypted"] = unencrypted
        ids["vol:data-encrypted"] = _volume(ec2, region, "data-encrypted", encrypted=True)
        ids["snap:data-unencrypted-nightly"] = _snapshot(ec2, unencrypted, "data-unencrypted-nightly")
        if not ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]:
            # The bucket itself, not a prefix in it: moto looks the destination up as a bucket name.
            answer = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                          LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{BUCKET_LOGS}")
            if answer.get("Unsuccessful"):
                raise SeedError(f"the flow log was not created: {answer['Unsuccessful']}")
    elif region == "eu-west-1":
        ids["sg:rdp-from-anywhere"] = _security_group(
            ec2, vpc, "rdp-from-anywhere", "Windows jump host",
            [_tcp(3389, v4="0.0.0.0/0", v6="::/0", description="anyone")])
        ec2.enable_ebs_encryption_by_default()
    elif region == "ap-southeast-2":
        batch = _security_group(ec2, vpc, "batch-workers", "Batch workers (egress only)", [])
        ids["i:legacy-batch"] = _instance(ec2, "legacy-batch", imds_v2=False, group_id=batch)
        volume = _volume(ec2, region, "legacy-scratch", encrypted=False)
        ids["vol:legacy-scratch"] = volume
        shared = _snapshot(ec2, volume, "legacy-shared")
        ids["snap:legacy-shared"] = shared
        ec2.modify_snapshot_attribute(SnapshotId=shared, Attribute="createVolumePermission",
                                      OperationType="add", GroupNames=["all"])
    ids[f"default VPC@{region}"] = vpc


# --------------------------------------------------------------------------------------------------
# RDS (regional)
# --------------------------------------------------------------------------------------------------

def _db_instance(rds: Any, identifier: str, **settings: Any) -> str:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceArn"]
    except ClientError as exc:
        if _code(exc) != "DBInstanceNotFound":
            raise
    answer = rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", EngineVersion="16.3",
                                    DBInstanceClass="db.t3.medium", AllocatedStorage=100, MasterUsername="app",
                                    ManageMasterUserPassword=True, Tags=_tags(identifier), **settings)
    return answer["DBInstance"]["DBInstanceArn"]


def seed_rds(rds: Any, region: str, kms_key_arn: str | None, result: SeedResult) -> None:
    if region == HOME:
        result.ids["orders-db"] = _db_instance(
            rds, "orders-db", PubliclyAccessible=True, StorageEncrypted=False, BackupRetentionPeriod=0,
            DeletionProtection=False, MultiAZ=False, AutoMinorVersionUpgrade=False)
    elif region == "eu-west-1":
        result.ids["billing-db"] = _db_instance(
            rds, "billing-db", PubliclyAccessible=False, StorageEncrypted=True, KmsKeyId=kms_key_arn,
            BackupRetentionPeriod=7, DeletionProtection=True, MultiAZ=True, AutoMinorVersionUpgrade=True)


# --------------------------------------------------------------------------------------------------
# SQS and SNS (regional)
# --------------------------------------------------------------------------------------------------

def seed_queue(sqs: Any, name: str, kms_key_arn: str | None, result: SeedResult) -> None:
    attributes = {"KmsMasterKeyId": kms_key_arn} if kms_key_arn else {"SqsManagedSseEnabled": "false"}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # idempotent in SQS itself
    result.ids[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def seed_topic(sns: Any, name: str, kms_key_arn: str | None, result: SeedResult) -> str:
    attributes = {"KmsMasterKeyId": kms_key_arn} if kms_key_arn else {}
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]  # idempotent in SNS itself
    result.ids[name] = arn
    return arn


# --------------------------------------------------------------------------------------------------
# Logging and monitoring: CloudTrail, CloudWatch, Config
# --------------------------------------------------------------------------------------------------

TRAIL_LOG_GROUP = "aws-cloudtrail-logs-acme"
ROOT_USAGE_PATTERN = ('{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
                      '&& $.eventType != "AwsServiceEvent" }')


def _log_group(logs: Any, name: str, *, retention_days: int | None) -> str:
    _ignoring({"ResourceAlreadyExistsException"}, logs.create_log_group, logGroupName=name)
    if retention_days:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
    return f"arn:aws:logs:{HOME}:{DEMO_ACCOUNT}:log-group:{name}:*"


def seed_cloudtrail(cloudtrail: Any, logs: Any, result: SeedResult) -> None:
    """One multi-region trail in the home region: logging, validated, sent to CloudWatch Logs; no SSE-KMS."""
    group_arn = _log_group(logs, TRAIL_LOG_GROUP, retention_days=365)
    if not any(t["Name"] == TRAIL for t in cloudtrail.describe_trails()["trailList"]):
        cloudtrail.create_trail(
            Name=TRAIL, S3BucketName=BUCKET_TRAIL, IsMultiRegionTrail=True, IncludeGlobalServiceEvents=True,
            EnableLogFileValidation=True, CloudWatchLogsLogGroupArn=group_arn,
            CloudWatchLogsRoleArn=result.ids["CloudTrailToLogsRole"], TagsList=[{"Key": "Owner", "Value": "security"}])
    cloudtrail.start_logging(Name=TRAIL)
    result.ids[TRAIL] = _arn("cloudtrail", HOME, f"trail/{TRAIL}")


def seed_monitoring(logs: Any, cloudwatch: Any, topic_arn: str, result: SeedResult) -> None:
    """CIS 4.3 (root usage) metric filter and alarm on the trail's log group; no other CIS alarms. Plus an
    application log group with no retention setting."""
    logs.put_metric_filter(
        logGroupName=TRAIL_LOG_GROUP, filterName="RootAccountUsage", filterPattern=ROOT_USAGE_PATTERN,
        metricTransformations=[{"metricName": "RootAccountUsageCount", "metricNamespace": "CISBenchmark",
                                "metricValue": "1"}])
    cloudwatch.put_metric_alarm(
        AlarmName="RootAccountUsage", MetricName="RootAccountUsageCount", Namespace="CISBenchmark",
        Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic_arn], TreatMissingData="notBreaching")
    result.ids["/acme/app/orders"] = _log_group(logs, "/acme/app/orders", retention_days=None)


def seed_config(config: Any, role_arn: str) -> None:
    """AWS Config recording everything in the client's region (the only one), delivering to the config
    bucket."""
    config.put_configuration_recorder(ConfigurationRecorder={
        "name": "default", "roleARN": role_arn,
        "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
    config.put_delivery_channel(DeliveryChannel={
        "name": "default", "s3BucketName": BUCKET_CONFIG,
        "configSnapshotDeliveryProperties": {"deliveryFrequency": "TwentyFour_Hours"}})
    config.start_configuration_recorder(ConfigurationRecorderName="default")


# --------------------------------------------------------------------------------------------------
# Threat detection: GuardDuty and Security Hub
# --------------------------------------------------------------------------------------------------

# Sample finding types across severities (GuardDuty's CreateSampleFindings names).
SAMPLE_FINDING_TYPES = (
    "UnauthorizedAccess:EC2/SSHBruteForce",
    "Recon:EC2/PortProbeUnprotectedPort",
    "CryptoCurrency:EC2/BitcoinTool.B!DNS",
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
    "Policy:S3/BucketBlockPublicAccessDisabled",
)


def seed_guardduty(guardduty: Any, *, sample_findings: bool) -> str:
    detectors = guardduty.list_detectors()["DetectorIds"]
    detector = detectors[0] if detectors else guardduty.create_detector(
        Enable=True, FindingPublishingFrequency="FIFTEEN_MINUTES")["DetectorId"]
    if sample_findings:
        existing = guardduty.list_findings(DetectorId=detector)["FindingIds"]
        if not existing:
            guardduty.create_sample_findings(DetectorId=detector, FindingTypes=list(SAMPLE_FINDING_TYPES))
    return detector


def seed_securityhub(securityhub: Any, region: str) -> None:
    """Security Hub with its default standards and one active HIGH finding from a (pretend) partner tool."""
    _ignoring({"ResourceConflictException"}, securityhub.enable_security_hub, EnableDefaultStandards=True)
    now = "2025-01-15T09:30:00.000Z"
    securityhub.batch_import_findings(Findings=[{
        "SchemaVersion": "2018-10-08", "Id": "acme-demo/public-rds-snapshot-review",
        "ProductArn": f"arn:aws:securityhub:{region}:{DEMO_ACCOUNT}:product/{DEMO_ACCOUNT}/default",
        "GeneratorId": "acme-demo-review", "AwsAccountId": DEMO_ACCOUNT, "CreatedAt": now, "UpdatedAt": now,
        "Types": ["Software and Configuration Checks/AWS Security Best Practices"],
        "Title": "Database reachable from the internet", "Description": "orders-db accepts connections from "
        "any address.", "Severity": {"Label": "HIGH", "Normalized": 70},
        "Resources": [{"Type": "AwsRdsDbInstance", "Id": f"arn:aws:rds:{region}:{DEMO_ACCOUNT}:db:orders-db"}],
    }])


def seed_access_analyzer(accessanalyzer: Any) -> None:
    if not accessanalyzer.list_analyzers(type="ACCOUNT")["analyzers"]:
        accessanalyzer.create_analyzer(analyzerName="acme-account-analyzer", type="ACCOUNT")


# --------------------------------------------------------------------------------------------------
# DynamoDB (regional)
# --------------------------------------------------------------------------------------------------

def seed_table(dynamodb: Any, name: str, *, kms_key_arn: str | None, pitr: bool, result: SeedResult) -> None:
    try:
        arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        kwargs: dict[str, Any] = {}
        if kms_key_arn:
            kwargs["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key_arn}
        arn = dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], Tags=_tags(name), **kwargs,
        )["TableDescription"]["TableArn"]
    dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": pitr})
    result.ids[name] = arn


# --------------------------------------------------------------------------------------------------
# Edge and compute: load balancer, Lambda, CloudFront
# --------------------------------------------------------------------------------------------------

def seed_load_balancer(elbv2: Any, ec2: Any, result: SeedResult) -> None:
    """An internet-facing ALB whose only listener is plain HTTP (no redirect to HTTPS)."""
    try:
        arn = elbv2.describe_load_balancers(Names=["acme-web"])["LoadBalancers"][0]["LoadBalancerArn"]
    except ClientError as exc:
        if _code(exc) != "LoadBalancerNotFound":
            raise
        vpc = _default_vpc(ec2)
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
        arn = elbv2.create_load_balancer(
            Name="acme-web", Subnets=sorted(by_zone.values())[:2], SecurityGroups=[result.ids["sg:web-https"]],
            Scheme="internet-facing", Type="application", Tags=_tags("acme-web"))["LoadBalancers"][0]["LoadBalancerArn"]
        group = elbv2.create_target_group(Name="acme-web-app", Protocol="HTTP", Port=8080, VpcId=vpc,
                                          TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    result.ids["acme-web"] = arn


def lambda_zip() -> bytes:
    """A tiny deployment package (handler source only)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {'ok': True}\n")
    return buffer.getvalue()


def _function(lambda_: Any, name: str, runtime: str, role_arn: str) -> str:
    try:
        return lambda_.get_function_configuration(FunctionName=name)["FunctionArn"]
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    return lambda_.create_function(FunctionName=name, Runtime=runtime, Role=role_arn, Handler="handler.handler",
                                   Code={"ZipFile": lambda_zip()}, Timeout=30, Tags={"Owner": "platform-team"},
                                   )["FunctionArn"]


def seed_functions(lambda_: Any, result: SeedResult) -> None:
    """A current, private function and a legacy one on a retired runtime that anyone may invoke."""
    role = result.ids["OrdersLambdaRole"]
    result.ids["orders-processor"] = _function(lambda_, "orders-processor", "python3.12", role)
    result.ids["legacy-webhook"] = _function(lambda_, "legacy-webhook", "python3.7", role)
    _ignoring({"ResourceConflictException"}, lambda_.add_permission, FunctionName="legacy-webhook",
              StatementId="public-invoke", Action="lambda:InvokeFunction", Principal="*")


def seed_distribution(cloudfront: Any, result: SeedResult) -> None:
    """A CloudFront distribution in front of the public bucket that still serves plain HTTP."""
    comment = "acme marketing site"
    for item in (cloudfront.list_distributions().get("DistributionList", {}).get("Items") or []):
        if item.get("Comment") == comment:
            result.ids["acme marketing site"] = item["ARN"]
            return
    origin = f"{BUCKET_PUBLIC}.s3.amazonaws.com"
    answer = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": "acme-marketing-site", "Comment": comment, "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "site", "DomainName": origin,
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "site", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    })
    result.ids["acme marketing site"] = answer["Distribution"]["ARN"]


# --------------------------------------------------------------------------------------------------
# The whole account
# --------------------------------------------------------------------------------------------------

def seed_account(clients: ClientFactory, *, progress: Callable[[str], None] | None = None) -> SeedResult:
    """Seed every service of the demo account (EXPECTATIONS); safe to call again on a seeded account."""
    result = SeedResult()

    def step(label: str) -> None:
        if progress is not None:
            progress(label)

    step("IAM users, roles, policies and the password policy")
    seed_iam(clients("iam", HOME), result)
    step("KMS keys")
    data_key = seed_kms_key(clients("kms", HOME), "alias/acme-prod-data", rotation=True,
                            description="Production data (S3, SQS, SNS)")
    eu_data_key = seed_kms_key(clients("kms", "eu-west-1"), "alias/acme-prod-data-eu", rotation=True,
                               description="Production data in the EU (S3, RDS)")
    result.ids["alias/acme-prod-data"] = data_key
    result.ids["alias/acme-legacy-app"] = seed_kms_key(
        clients("kms", "eu-west-1"), "alias/acme-legacy-app", rotation=False, description="Legacy app, 2018")
    step("S3 buckets")
    seed_s3(clients("s3", HOME), eu_data_key, result)
    for region in REGIONS:
        step(f"EC2, VPC and RDS in {region}")
        seed_ec2(clients("ec2", region), region, result)
        seed_rds(clients("rds", region), region, eu_data_key if region == "eu-west-1" else None, result)
    step("Load balancer, Lambda functions and CloudFront")
    seed_load_balancer(clients("elbv2", HOME), clients("ec2", HOME), result)
    seed_functions(clients("lambda", "eu-west-1"), result)
    seed_distribution(clients("cloudfront", HOME), result)
    step("SQS queues and SNS topics")
    seed_queue(clients("sqs", HOME), "orders-queue", data_key, result)
    seed_queue(clients("sqs", "eu-west-1"), "legacy-events", None, result)
    alerts = seed_topic(clients("sns", HOME), "security-alerts", data_key, result)
    seed_topic(clients("sns", "ap-southeast-2"), "marketing-events", None, result)
    clients("sns", HOME).subscribe(TopicArn=alerts, Protocol="email", Endpoint="security@acme.example")
    step("CloudTrail, CloudWatch alarms and AWS Config")
    seed_cloudtrail(clients("cloudtrail", HOME), clients("logs", HOME), result)
    seed_monitoring(clients("logs", HOME), clients("cloudwatch", HOME), alerts, result)
    seed_config(clients("config", HOME), result.ids["ConfigRecorderRole"])
    step("DynamoDB tables")
    seed_table(clients("dynamodb", HOME), "orders", kms_key_arn=data_key, pitr=True, result=result)
    seed_table(clients("dynamodb", "eu-west-1"), "sessions", kms_key_arn=None, pitr=False, result=result)
    step("GuardDuty, Security Hub and IAM Access Analyzer")
    seed_guardduty(clients("guardduty", HOME), sample_findings=True)
    seed_guardduty(clients("guardduty", "eu-west-1"), sample_findings=False)
    seed_securityhub(clients("securityhub", HOME), HOME)
    seed_access_analyzer(clients("accessanalyzer", HOME))
    return result
