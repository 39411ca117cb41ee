"""Threat-detection checks: GuardDuty (enabled, protection plans, active high/critical findings) and Security Hub
(enabled, standards, active high/critical findings), against the moto fake and the handlers the fake adds for
what moto lacks (GuardDuty findings, Security Hub filters and standards); fixtures for the rest."""

from __future__ import annotations

import pytest

from app.checks.base import Status
from app.scanners.guardduty import GuardDutyFinding, GuardDutyRegion
from app.scanners.securityhub import SecurityHubFinding, SecurityHubRegion, SecurityHubStandard
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.logging_helpers import (
    REGION,
    asff,
    assert_status,
    by_region,
    evaluate_on,
    one,
    only,
    scan,
    seed_guardduty_findings,
)

GD_CHECKS = {"guardduty_enabled", "guardduty_no_high_severity_findings"}
PLAN_CHECKS = {
    "guardduty_s3_protection_enabled": "S3_DATA_EVENTS",
    "guardduty_eks_audit_logs_enabled": "EKS_AUDIT_LOGS",
    "guardduty_malware_protection_enabled": "EBS_MALWARE_PROTECTION",
    "guardduty_rds_protection_enabled": "RDS_LOGIN_EVENTS",
    "guardduty_lambda_protection_enabled": "LAMBDA_NETWORK_LOGS",
    "guardduty_runtime_monitoring_enabled": "RUNTIME_MONITORING",
}
SH_CHECKS = {"securityhub_enabled", "securityhub_standards_enabled", "securityhub_no_high_severity_findings"}
TWO_REGIONS = ["us-east-1", "eu-west-1"]


def detector(fake, region: str = REGION, *, enable: bool = True, features: list[dict] | None = None) -> str:
    return fake.client("guardduty", region).create_detector(Enable=enable, Features=features or [])["DetectorId"]


# ==================================================================================================
# GuardDuty
# ==================================================================================================

async def test_guardduty_enabled_per_region(aws_fake):
    detector_id = detector(aws_fake)
    out = await scan(GD_CHECKS, regions=TWO_REGIONS)
    assert by_region(out, "guardduty_enabled") == {"us-east-1": "PASS", "eu-west-1": "FAIL"}
    passed = one(out, "guardduty_enabled", "us-east-1")
    assert detector_id in passed.message
    assert passed.resource_arn == f"arn:aws:guardduty:us-east-1:{CUSTOMER_ACCOUNT}:detector/{detector_id}"
    assert "not enabled in eu-west-1" in one(out, "guardduty_enabled", "eu-west-1").message
    # No detector, no findings to judge: only guardduty_enabled speaks for eu-west-1.
    assert by_region(out, "guardduty_no_high_severity_findings") == {"us-east-1": "PASS"}


async def test_suspended_detector_fails(aws_fake):
    detector(aws_fake, enable=False)
    out = await scan({"guardduty_enabled"})
    assert_status(one(out, "guardduty_enabled"), "FAIL", "suspended")


async def test_active_high_and_critical_findings_fail_naming_them(aws_fake):
    detector(aws_fake)
    seed_guardduty_findings(aws_fake, REGION, [
        {"type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "resource_id": "i-0aaa"},
        {"type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "resource_id": "i-0bbb", "severity": 8.5},
        {"type": "AttackSequence:IAM/CompromisedCredentials"},
        {"type": "Recon:EC2/PortProbeUnprotectedPort"},                            # low: not reported
        {"type": "Backdoor:EC2/C&CActivity.B!DNS", "archived": True},              # archived: not reported
        {"type": "Trojan:EC2/DNSDataExfiltration", "member_account": "444455556666"},  # a member's: not ours
    ])
    out = await scan({"guardduty_no_high_severity_findings"})
    result = one(out, "guardduty_no_high_severity_findings")
    assert_status(result, "FAIL", "3 active high or critical finding(s) in us-east-1, 1 critical",
                  "1 x AttackSequence:IAM/CompromisedCredentials (critical 9)",
                  "2 x CryptoCurrency:EC2/BitcoinTool.B!DNS (high 8.5)")
    assert all(word not in result.message for word in ("PortProbe", "Backdoor", "Trojan"))
    assert result.details["by_type"] == {"AttackSequence:IAM/CompromisedCredentials": 1,
                                         "CryptoCurrency:EC2/BitcoinTool.B!DNS": 2}
    assert {f["resource_id"] for f in result.details["findings"]} >= {"i-0aaa", "i-0bbb"}
    assert result.category == "threat-detection"


async def test_only_low_or_archived_findings_pass(aws_fake):
    detector(aws_fake)
    seed_guardduty_findings(aws_fake, REGION, [{"type": "UnauthorizedAccess:EC2/SSHBruteForce"},
                                               {"type": "Trojan:EC2/DNSDataExfiltration", "archived": True}])
    out = await scan({"guardduty_no_high_severity_findings"})
    assert_status(one(out, "guardduty_no_high_severity_findings"), "PASS", "no active high or critical")


async def test_sample_findings_created_through_the_api_are_reported(aws_fake):
    detector_id = detector(aws_fake)
    aws_fake.client("guardduty").create_sample_findings(
        DetectorId=detector_id, FindingTypes=["UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
                                              "Recon:EC2/PortProbeUnprotectedPort"])
    out = await scan({"guardduty_no_high_severity_findings"})
    result = one(out, "guardduty_no_high_severity_findings")
    assert_status(result, "FAIL", "1 x UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS")
    assert result.details["findings"][0]["sample"] is True


async def test_findings_listing_denied_errors_only_the_findings_check(aws_fake):
    detector(aws_fake, region="eu-west-1")
    detector(aws_fake)
    aws_fake.configure(deny=[{"service": "guardduty", "operation": "ListFindings", "region": "us-east-1"}])
    out = await scan(GD_CHECKS, regions=TWO_REGIONS)
    assert by_region(out, "guardduty_enabled") == {"us-east-1": "PASS", "eu-west-1": "PASS"}
    assert by_region(out, "guardduty_no_high_severity_findings") == {"us-east-1": "ERROR", "eu-west-1": "PASS"}
    assert "guardduty:ListFindings" in one(out, "guardduty_no_high_severity_findings", "us-east-1").message


async def test_detector_listing_denied_errors_everything_in_that_region(aws_fake):
    detector(aws_fake)
    aws_fake.configure(deny=[{"service": "guardduty", "operation": "ListDetectors"}])
    out = await scan(GD_CHECKS | {"guardduty_s3_protection_enabled", "securityhub_enabled"})
    for check in GD_CHECKS | {"guardduty_s3_protection_enabled"}:
        assert_status(one(out, check), "ERROR", "guardduty:ListDetectors", "AccessDeniedException")
    assert one(out, "securityhub_enabled").status == "FAIL"


async def test_protection_plans(aws_fake):
    detector(aws_fake, features=[{"Name": "S3_DATA_EVENTS", "Status": "ENABLED"},
                                 {"Name": "RUNTIME_MONITORING", "Status": "ENABLED"},
                                 {"Name": "RDS_LOGIN_EVENTS", "Status": "DISABLED"}])
    out = await scan(set(PLAN_CHECKS), regions=TWO_REGIONS)
    expected = {"guardduty_s3_protection_enabled": "PASS", "guardduty_runtime_monitoring_enabled": "PASS"}
    for check in PLAN_CHECKS:
        # Only regions with a detector are judged.
        assert by_region(out, check) == {"us-east-1": expected.get(check, "FAIL")}, check
    assert_status(one(out, "guardduty_rds_protection_enabled"), "FAIL", "RDS Protection is not enabled")


def test_protection_plans_from_the_older_data_sources_shape():
    from app.scanners.guardduty import _features

    features = _features({"DataSources": {"S3Logs": {"Status": "ENABLED"},
                                          "Kubernetes": {"AuditLogs": {"Status": "DISABLED"}},
                                          "MalwareProtection": {"ScanEc2InstanceWithFindings": {
                                              "EbsVolumes": {"Status": "ENABLED"}}}},
                          "Features": [{"Name": "EKS_AUDIT_LOGS", "Status": "ENABLED"}]})
    assert features == {"EKS_AUDIT_LOGS": "ENABLED", "S3_DATA_EVENTS": "ENABLED", "EBS_MALWARE_PROTECTION": "ENABLED"}


def test_more_findings_than_read_are_counted_as_at_least():
    many = [GuardDutyFinding(finding_id=f"f{i}", type="Trojan:EC2/DNSDataExfiltration", severity=8.0)
            for i in range(3)]
    region = GuardDutyRegion(region=REGION, resource_id="gd", detector_id="d1", status="ENABLED",
                             findings=many, findings_truncated=True)
    assert_status(only(evaluate_on("guardduty_no_high_severity_findings", region)), Status.FAIL,
                  "at least 3 active")


def test_a_truncated_read_that_reaches_below_high_counts_every_high_finding():
    # Most severe first: once a medium finding was read, no high one was left unread.
    findings = [GuardDutyFinding(finding_id="f1", type="Trojan:EC2/DNSDataExfiltration", severity=8.0),
                GuardDutyFinding(finding_id="f2", type="Recon:EC2/PortProbeUnprotectedPort", severity=5.0)]
    region = GuardDutyRegion(region=REGION, resource_id="gd", detector_id="d1", status="ENABLED",
                             findings_truncated=True, findings=findings)
    result = only(evaluate_on("guardduty_no_high_severity_findings", region))
    assert_status(result, Status.FAIL, "has 1 active high")
    assert "at least" not in result.message and result.details["truncated"] is False


def test_findings_check_ignores_low_severity_even_if_listed():
    region = GuardDutyRegion(region=REGION, resource_id="gd", detector_id="d1", status="ENABLED", findings=[
        GuardDutyFinding(finding_id="f1", type="Recon:EC2/PortProbeUnprotectedPort", severity=2.0),
        GuardDutyFinding(finding_id="f2", type="Trojan:EC2/DNSDataExfiltration", severity=8.0, archived=True)])
    assert_status(only(evaluate_on("guardduty_no_high_severity_findings", region)), Status.PASS)


# ==================================================================================================
# Security Hub
# ==================================================================================================

async def test_security_hub_enabled_with_default_standards(aws_fake):
    aws_fake.client("securityhub").enable_security_hub()
    out = await scan(SH_CHECKS, regions=TWO_REGIONS)
    assert by_region(out, "securityhub_enabled") == {"us-east-1": "PASS", "eu-west-1": "FAIL"}
    # "Not subscribed" is a state of the account, not a failed call.
    assert out.errors == []
    assert_status(one(out, "securityhub_enabled", "eu-west-1"), "FAIL", "not enabled in eu-west-1")
    assert_status(one(out, "securityhub_standards_enabled"), "PASS", "2 standard(s)",
                  "aws-foundational-security-best-practices/v/1.0.0", "cis-aws-foundations-benchmark/v/1.2.0")
    assert_status(one(out, "securityhub_no_high_severity_findings"), "PASS")
    assert by_region(out, "securityhub_standards_enabled") == {"us-east-1": "PASS"}
    hub = one(out, "securityhub_enabled", "us-east-1")
    assert hub.resource_arn == f"arn:aws:securityhub:us-east-1:{CUSTOMER_ACCOUNT}:hub/default"


async def test_security_hub_without_standards_fails_until_one_is_enabled(aws_fake):
    securityhub = aws_fake.client("securityhub")
    securityhub.enable_security_hub(EnableDefaultStandards=False)
    out = await scan({"securityhub_standards_enabled"})
    assert_status(one(out, "securityhub_standards_enabled"), "FAIL", "no security standard enabled")
    securityhub.batch_enable_standards(StandardsSubscriptionRequests=[{
        "StandardsArn": "arn:aws:securityhub:us-east-1::standards/cis-aws-foundations-benchmark/v/3.0.0"}])
    out = await scan({"securityhub_standards_enabled"})
    assert_status(one(out, "securityhub_standards_enabled"), "PASS", "cis-aws-foundations-benchmark/v/3.0.0")


async def test_security_hub_active_high_and_critical_findings_fail_naming_them(aws_fake):
    securityhub = aws_fake.client("securityhub")
    securityhub.enable_security_hub()
    securityhub.batch_import_findings(Findings=[
        asff("crit-new", severity="CRITICAL", title="Root user has active access keys", control_id="IAM.4"),
        asff("high-notified", severity="HIGH", product="inspector", title="CVE-2024-3094 - xz",
             workflow="NOTIFIED", resource_type="AwsEc2Instance", resource_id="i-0abc"),
        asff("high-resolved", severity="HIGH", workflow="RESOLVED"),
        asff("high-suppressed", severity="HIGH", workflow="SUPPRESSED"),
        asff("high-archived", severity="HIGH", record_state="ARCHIVED"),
        asff("medium", severity="MEDIUM"),
        asff("guardduty", severity="HIGH", product="guardduty", title="Bitcoin-related domain queried"),
        {**asff("other-region", severity="CRITICAL"), "Region": "eu-west-1"},
        {**asff("member", severity="CRITICAL"), "AwsAccountId": "444455556666"},
    ])
    out = await scan({"securityhub_no_high_severity_findings"})
    result = one(out, "securityhub_no_high_severity_findings")
    assert_status(result, "FAIL", "2 active high or critical finding(s) in us-east-1, 1 critical",
                  "1 x Security Hub: IAM.4 Root user has active access keys (critical)",
                  "1 x Inspector: CVE-2024-3094 - xz (high)")
    assert sorted(f["finding_id"] for f in result.details["findings"]) == ["crit-new", "high-notified"]


async def test_security_hub_findings_denied_errors_only_the_findings_check(aws_fake):
    aws_fake.client("securityhub").enable_security_hub()
    aws_fake.configure(deny=[{"service": "securityhub", "operation": "GetFindings"}])
    out = await scan(SH_CHECKS)
    assert one(out, "securityhub_enabled").status == "PASS"
    assert one(out, "securityhub_standards_enabled").status == "PASS"
    assert_status(one(out, "securityhub_no_high_severity_findings"), "ERROR", "securityhub:GetFindings")


async def test_describe_hub_denied_is_an_error_not_a_fail(aws_fake):
    aws_fake.configure(deny=[{"service": "securityhub", "operation": "DescribeHub", "region": "eu-west-1"}])
    out = await scan({"securityhub_enabled"}, regions=TWO_REGIONS)
    assert by_region(out, "securityhub_enabled") == {"us-east-1": "FAIL", "eu-west-1": "ERROR"}


def test_pending_standards_do_not_count():
    region = SecurityHubRegion(region=REGION, resource_id="sh", enabled=True, standards=[SecurityHubStandard(
        standards_arn="arn:aws:securityhub:us-east-1::standards/pci-dss/v/3.2.1", status="PENDING")])
    assert_status(only(evaluate_on("securityhub_standards_enabled", region)), Status.FAIL, "pci-dss/v/3.2.1 (PENDING)")


def test_security_hub_findings_truncated_are_counted_as_at_least():
    region = SecurityHubRegion(region=REGION, resource_id="sh", enabled=True, findings_truncated=True,
                               active_findings=[SecurityHubFinding(finding_id="x", severity="HIGH", title="T",
                                                                   product="Macie")])
    assert_status(only(evaluate_on("securityhub_no_high_severity_findings", region)), Status.FAIL,
                  "at least 1", "Macie: T")


def test_security_hub_truncated_read_below_high_counts_exactly_and_ignores_lower_findings():
    region = SecurityHubRegion(region=REGION, resource_id="sh", enabled=True, findings_truncated=True,
                               active_findings=[SecurityHubFinding(finding_id="x", severity="HIGH", title="T"),
                                                SecurityHubFinding(finding_id="y", severity="MEDIUM", title="M")])
    result = only(evaluate_on("securityhub_no_high_severity_findings", region))
    assert_status(result, Status.FAIL, "has 1 active high")
    assert "at least" not in result.message and result.details["by_title"] == {"unknown product: T": 1}


@pytest.mark.parametrize("check", sorted(SH_CHECKS - {"securityhub_enabled"}))
def test_hub_disabled_leaves_the_other_checks_silent(check):
    region = SecurityHubRegion(region=REGION, resource_id="sh", enabled=False)
    assert evaluate_on(check, region) == []
