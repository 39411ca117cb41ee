"""The fake's handlers for security-service calls moto lacks: GuardDuty findings, Security Hub filters and
standards, Access Analyzer, and CloudTrail's CloudWatch Logs delivery status (app/fakes/security_services.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.logging_helpers import asff, seed_guardduty_findings, seed_trail


def _code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


# ------------------------------------------------------------------------------------------------
# GuardDuty
# ------------------------------------------------------------------------------------------------

HIGH_ACTIVE = {"Criterion": {"severity": {"GreaterThanOrEqual": 7}, "service.archived": {"Equals": ["false"]}}}


def test_guardduty_findings_honour_criteria_sort_and_pagination(aws_fake):
    gd = aws_fake.client("guardduty")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    ids = seed_guardduty_findings(aws_fake, "us-east-1", [
        {"type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "resource_id": "i-0aaa"},     # 8.0
        {"type": "AttackSequence:S3/CompromisedData", "resource_id": "payroll"},       # 9.0
        {"type": "Recon:EC2/PortProbeUnprotectedPort"},                                 # 2.0
        {"type": "Trojan:EC2/DNSDataExfiltration", "archived": True},                   # 8.0, archived
        {"type": "Policy:S3/BucketAnonymousAccessGranted", "severity": 7.0},
    ])
    everything = gd.list_findings(DetectorId=detector)["FindingIds"]
    assert sorted(everything) == sorted(ids)
    listed = gd.list_findings(DetectorId=detector, FindingCriteria=HIGH_ACTIVE,
                              SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"})["FindingIds"]
    assert listed == [ids[1], ids[0], ids[4]]
    # The short condition names and other fields work too.
    low = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "severity": {"Lt": 7}, "type": {"Neq": ["UnauthorizedAccess:EC2/SSHBruteForce"]}}})["FindingIds"]
    assert low == [ids[2]]
    s3 = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "resource.resourceType": {"Eq": ["S3Bucket"]}}})["FindingIds"]
    assert sorted(s3) == sorted([ids[1], ids[4]])
    first = gd.list_findings(DetectorId=detector, MaxResults=2, FindingCriteria=HIGH_ACTIVE,
                             SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"})
    second = gd.list_findings(DetectorId=detector, MaxResults=2, FindingCriteria=HIGH_ACTIVE,
                              SortCriteria={"AttributeName": "severity", "OrderBy": "DESC"},
                              NextToken=first["NextToken"])
    assert first["FindingIds"] + second["FindingIds"] == listed and "NextToken" not in second


def test_guardduty_get_findings_has_the_real_shape(aws_fake):
    gd = aws_fake.client("guardduty", "eu-west-1")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    [finding_id] = seed_guardduty_findings(aws_fake, "eu-west-1", [
        {"type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 8.0, "resource_id": "i-0abc", "count": 12}])
    [finding] = gd.get_findings(DetectorId=detector, FindingIds=[finding_id, "unknown"])["Findings"]
    assert finding["Id"] == finding_id
    assert finding["Type"] == "UnauthorizedAccess:EC2/SSHBruteForce"
    assert finding["Severity"] == 8.0
    assert finding["Region"] == "eu-west-1" and finding["AccountId"] == CUSTOMER_ACCOUNT
    assert finding["Arn"] == (f"arn:aws:guardduty:eu-west-1:{CUSTOMER_ACCOUNT}:detector/{detector}/finding/"
                              f"{finding_id}")
    assert finding["Resource"]["ResourceType"] == "Instance"
    assert finding["Resource"]["InstanceDetails"]["InstanceId"] == "i-0abc"
    assert finding["Service"]["Archived"] is False and finding["Service"]["Count"] == 12
    assert finding["Service"]["DetectorId"] == detector
    assert "i-0abc" in finding["Title"]


def test_guardduty_sample_findings_and_unknown_detectors(aws_fake):
    gd = aws_fake.client("guardduty")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    gd.create_sample_findings(DetectorId=detector, FindingTypes=["Backdoor:EC2/C&CActivity.B!DNS"])
    [finding_id] = gd.list_findings(DetectorId=detector)["FindingIds"]
    [finding] = gd.get_findings(DetectorId=detector, FindingIds=[finding_id])["Findings"]
    assert finding["Severity"] == 8.0
    assert json.loads(finding["Service"]["AdditionalInfo"]["Value"]) == {"sample": True}
    with pytest.raises(ClientError) as exc_info:
        gd.list_findings(DetectorId="0" * 32)
    assert _code(exc_info) == "BadRequestException"
    with pytest.raises(ClientError) as exc_info:
        gd.create_sample_findings(DetectorId=detector, FindingTypes=["not a type"])
    assert _code(exc_info) == "BadRequestException"
    # Other accounts and regions have their own findings.
    other = aws_fake.client("guardduty", "eu-west-1").create_detector(Enable=True)["DetectorId"]
    assert aws_fake.client("guardduty", "eu-west-1").list_findings(DetectorId=other)["FindingIds"] == []


def test_guardduty_archive_unarchive_and_delete_detector(aws_fake):
    gd = aws_fake.client("guardduty")
    detector = gd.create_detector(Enable=True)["DetectorId"]
    kept, archived = seed_guardduty_findings(aws_fake, "us-east-1", [{"type": "Trojan:EC2/DNSDataExfiltration"},
                                                                     {"type": "Recon:EC2/PortProbeUnprotectedPort"}])
    active = {"Criterion": {"service.archived": {"Equals": ["false"]}}}
    before = gd.get_findings(DetectorId=detector, FindingIds=[archived])["Findings"][0]["UpdatedAt"]
    gd.archive_findings(DetectorId=detector, FindingIds=[archived, "0" * 32])   # unknown ids are ignored
    assert gd.list_findings(DetectorId=detector, FindingCriteria=active)["FindingIds"] == [kept]
    [finding] = gd.get_findings(DetectorId=detector, FindingIds=[archived])["Findings"]
    assert finding["Service"]["Archived"] is True and finding["UpdatedAt"] >= before
    gd.unarchive_findings(DetectorId=detector, FindingIds=[archived])
    assert sorted(gd.list_findings(DetectorId=detector, FindingCriteria=active)["FindingIds"]) == sorted([kept,
                                                                                                       archived])
    with pytest.raises(ClientError) as exc_info:
        gd.archive_findings(DetectorId="0" * 32, FindingIds=[kept])
    assert _code(exc_info) == "BadRequestException"
    # Deleting the detector deletes its findings: they cannot be read any more, and a new detector starts empty.
    gd.delete_detector(DetectorId=detector)
    with pytest.raises(ClientError) as exc_info:
        gd.list_findings(DetectorId=detector)
    assert _code(exc_info) == "BadRequestException"
    again = gd.create_detector(Enable=True)["DetectorId"]
    assert gd.list_findings(DetectorId=again)["FindingIds"] == []


def test_guardduty_seeding_endpoint_validates_and_reset_clears(aws_fake):
    url = f"{aws_fake.endpoint_url}/_cwfake/guardduty/findings"
    body = {"account_id": CUSTOMER_ACCOUNT, "region": "us-east-1",
            "findings": [{"type": "Trojan:EC2/DNSDataExfiltration"}]}
    r = httpx.post(url, content=json.dumps(body))
    assert r.status_code == 400 and "0 detectors" in r.json()["error"]
    detector = aws_fake.client("guardduty").create_detector(Enable=True)["DetectorId"]
    for bad, message in (({**body, "findings": [{"type": "nope"}]}, "GuardDuty type"),
                         ({**body, "findings": [{"type": "Trojan:EC2/DNSDataExfiltration", "severity": 11}]},
                          "severity"),
                         ({**body, "findings": [{"type": "Trojan:EC2/DNSDataExfiltration", "colour": "red"}]},
                          "unknown finding keys"),
                         ({**body, "detector_id": "f" * 32}, "no detector"),
                         ({**body, "findings": []}, "non-empty")):
        r = httpx.post(url, content=json.dumps(bad))
        assert r.status_code == 400 and message in r.json()["error"], (bad, r.text)
    r = httpx.post(url, content=json.dumps(body))
    assert r.status_code == 201 and r.json()["detector_id"] == detector
    assert aws_fake.client("guardduty").list_findings(DetectorId=detector)["FindingIds"] == r.json()["finding_ids"]
    aws_fake.reset()
    detector = aws_fake.client("guardduty").create_detector(Enable=True)["DetectorId"]
    assert aws_fake.client("guardduty").list_findings(DetectorId=detector)["FindingIds"] == []


# ------------------------------------------------------------------------------------------------
# Security Hub
# ------------------------------------------------------------------------------------------------

def _ids(answer) -> list[str]:
    return sorted(f["Id"] for f in answer["Findings"])


def test_security_hub_get_findings_honours_filters(aws_fake):
    sh = aws_fake.client("securityhub")
    with pytest.raises(ClientError) as exc_info:
        sh.get_findings()
    assert _code(exc_info) == "InvalidAccessException"
    sh.enable_security_hub()
    sh.batch_import_findings(Findings=[
        asff("a", severity="CRITICAL"), asff("b", severity="HIGH", workflow="NOTIFIED"),
        asff("c", severity="HIGH", workflow="RESOLVED"), asff("d", severity="HIGH", record_state="ARCHIVED"),
        asff("e", severity="LOW"), asff("f", severity="HIGH", product="guardduty"),
    ])
    eq = "EQUALS"
    assert _ids(sh.get_findings()) == ["a", "b", "c", "d", "e", "f"]
    assert _ids(sh.get_findings(Filters={"SeverityLabel": [{"Value": "CRITICAL", "Comparison": eq},
                                                           {"Value": "HIGH", "Comparison": eq}]})) == \
        ["a", "b", "c", "d", "f"]
    assert _ids(sh.get_findings(Filters={
        "SeverityLabel": [{"Value": "HIGH", "Comparison": eq}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": eq}],
        "WorkflowStatus": [{"Value": "NEW", "Comparison": eq}, {"Value": "NOTIFIED", "Comparison": eq}],
        "ProductName": [{"Value": "GuardDuty", "Comparison": "NOT_EQUALS"}]})) == ["b"]
    assert _ids(sh.get_findings(Filters={"ProductArn": [{"Value": "arn:aws:securityhub:us-east-1::product/aws/g",
                                                         "Comparison": "PREFIX"}]})) == ["f"]
    assert _ids(sh.get_findings(Filters={"SeverityNormalized": [{"Gte": 70}]})) == ["a", "b", "c", "d", "f"]
    assert _ids(sh.get_findings(Filters={"UpdatedAt": [{"Start": "2024-05-02T00:00:00Z",
                                                        "End": "2024-05-03T00:00:00Z"}]})) == \
        ["a", "b", "c", "d", "e", "f"]
    assert _ids(sh.get_findings(Filters={"UpdatedAt": [{"DateRange": {"Value": 7, "Unit": "DAYS"}}]})) == []
    with pytest.raises(ClientError) as exc_info:
        sh.get_findings(Filters={"NoteText": [{"Value": "x", "Comparison": eq}]})
    assert _code(exc_info) == "InvalidInputException"


def test_security_hub_batch_update_findings_sets_the_customers_fields(aws_fake):
    sh = aws_fake.client("securityhub")
    sh.enable_security_hub()
    a, b = asff("a", severity="HIGH"), asff("b", severity="HIGH")
    sh.batch_import_findings(Findings=[a, b])
    answer = sh.batch_update_findings(
        FindingIdentifiers=[{"Id": "a", "ProductArn": a["ProductArn"]}, {"Id": "nope", "ProductArn": a["ProductArn"]}],
        Workflow={"Status": "RESOLVED"}, Note={"Text": "fixed", "UpdatedBy": "ops"}, Severity={"Label": "LOW"})
    assert answer["ProcessedFindings"] == [{"Id": "a", "ProductArn": a["ProductArn"]}]
    assert [u["FindingIdentifier"]["Id"] for u in answer["UnprocessedFindings"]] == ["nope"]
    active = {"WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]}
    assert _ids(sh.get_findings(Filters=active)) == ["b"]
    [updated] = [f for f in sh.get_findings()["Findings"] if f["Id"] == "a"]
    assert updated["Workflow"]["Status"] == "RESOLVED" and updated["Note"]["Text"] == "fixed"
    assert updated["Severity"] == {"Label": "LOW", "Normalized": 1}
    with pytest.raises(ClientError) as exc_info:
        sh.batch_update_findings(FindingIdentifiers=[{"Id": "b", "ProductArn": b["ProductArn"]}],
                                 Workflow={"Status": "DONE"})
    assert _code(exc_info) == "InvalidInputException"
    sh.disable_security_hub()
    with pytest.raises(ClientError) as exc_info:
        sh.batch_update_findings(FindingIdentifiers=[{"Id": "b", "ProductArn": b["ProductArn"]}],
                                 Workflow={"Status": "RESOLVED"})
    assert _code(exc_info) == "InvalidAccessException"


def test_security_hub_findings_get_the_defaults_aws_fills_in_and_paginate(aws_fake):
    sh = aws_fake.client("securityhub", "eu-west-1")
    sh.enable_security_hub()
    sh.batch_import_findings(Findings=[asff(f"f{i}", region="eu-west-1", product="inspector") for i in range(5)])
    first = sh.get_findings(MaxResults=2, SortCriteria=[{"Field": "Id", "SortOrder": "desc"}])
    finding = first["Findings"][0]
    assert finding["Id"] == "f4"
    assert (finding["RecordState"], finding["Workflow"]["Status"], finding["Region"]) == ("ACTIVE", "NEW",
                                                                                          "eu-west-1")
    assert (finding["ProductName"], finding["CompanyName"]) == ("Inspector", "AWS")
    assert finding["Severity"] == {"Label": "HIGH", "Normalized": 70}
    seen = [f["Id"] for f in first["Findings"]]
    token = first["NextToken"]
    while token:
        page = sh.get_findings(MaxResults=2, NextToken=token, SortCriteria=[{"Field": "Id", "SortOrder": "desc"}])
        seen += [f["Id"] for f in page["Findings"]]
        token = page.get("NextToken")
    assert seen == ["f4", "f3", "f2", "f1", "f0"]


def test_security_hub_standards(aws_fake):
    sh = aws_fake.client("securityhub")
    with pytest.raises(ClientError) as exc_info:
        sh.get_enabled_standards()
    assert _code(exc_info) == "InvalidAccessException"
    sh.enable_security_hub()
    subscriptions = sh.get_enabled_standards()["StandardsSubscriptions"]
    assert sorted(s["StandardsArn"] for s in subscriptions) == [
        "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0",
        "arn:aws:securityhub:us-east-1::standards/aws-foundational-security-best-practices/v/1.0.0"]
    assert {s["StandardsStatus"] for s in subscriptions} == {"READY"}
    fsbp = next(s for s in subscriptions if "best-practices" in s["StandardsArn"])
    assert fsbp["StandardsSubscriptionArn"] == (f"arn:aws:securityhub:us-east-1:{CUSTOMER_ACCOUNT}:subscription/"
                                                "aws-foundational-security-best-practices/v/1.0.0")
    sh.batch_disable_standards(StandardsSubscriptionArns=[fsbp["StandardsSubscriptionArn"]])
    assert len(sh.get_enabled_standards()["StandardsSubscriptions"]) == 1
    with pytest.raises(ClientError) as exc_info:
        sh.batch_enable_standards(StandardsSubscriptionRequests=[{"StandardsArn": "arn:aws:securityhub:::nope"}])
    assert _code(exc_info) == "InvalidInputException"
    sh.disable_security_hub()
    sh.enable_security_hub(EnableDefaultStandards=False)
    assert sh.get_enabled_standards()["StandardsSubscriptions"] == []


# ------------------------------------------------------------------------------------------------
# Access Analyzer
# ------------------------------------------------------------------------------------------------

def test_access_analyzer_lifecycle(aws_fake):
    aa = aws_fake.client("accessanalyzer")
    assert aa.list_analyzers()["analyzers"] == []
    arn = aa.create_analyzer(analyzerName="account-analyzer", type="ACCOUNT")["arn"]
    assert arn == f"arn:aws:access-analyzer:us-east-1:{CUSTOMER_ACCOUNT}:analyzer/account-analyzer"
    aa.create_analyzer(analyzerName="unused", type="ACCOUNT_UNUSED_ACCESS")
    [listed] = aa.list_analyzers(type="ACCOUNT")["analyzers"]
    assert (listed["name"], listed["status"], listed["arn"]) == ("account-analyzer", "ACTIVE", arn)
    assert listed["createdAt"].year >= 2024
    assert len(aa.list_analyzers()["analyzers"]) == 2
    assert aa.get_analyzer(analyzerName="unused")["analyzer"]["type"] == "ACCOUNT_UNUSED_ACCESS"
    with pytest.raises(ClientError) as exc_info:
        aa.create_analyzer(analyzerName="unused", type="ACCOUNT")
    assert _code(exc_info) == "ConflictException"
    aa.delete_analyzer(analyzerName="unused")
    with pytest.raises(ClientError) as exc_info:
        aa.get_analyzer(analyzerName="unused")
    assert _code(exc_info) == "ResourceNotFoundException"
    assert aws_fake.client("accessanalyzer", "eu-west-1").list_analyzers()["analyzers"] == []


# ------------------------------------------------------------------------------------------------
# CloudTrail
# ------------------------------------------------------------------------------------------------

def test_trail_status_reports_cloudwatch_logs_delivery(aws_fake):
    arn = seed_trail(aws_fake, "with-logs")
    seed_trail(aws_fake, "without-logs", log_group=None)
    seed_trail(aws_fake, "stopped", logging=False)
    ct = aws_fake.client("cloudtrail")
    status = ct.get_trail_status(Name=arn)
    assert status["IsLogging"] is True
    assert status["LatestCloudWatchLogsDeliveryTime"] == status["LatestDeliveryTime"]
    assert "LatestCloudWatchLogsDeliveryTime" not in ct.get_trail_status(Name="without-logs")
    assert "LatestCloudWatchLogsDeliveryTime" not in ct.get_trail_status(Name="stopped")
    # A multi-region trail is found by ARN from another region too.
    assert aws_fake.client("cloudtrail", "eu-west-1").get_trail_status(Name=arn)["IsLogging"] is True
    with pytest.raises(ClientError) as exc_info:
        ct.get_trail_status(Name="no-such-trail")
    assert _code(exc_info) == "TrailNotFoundException"
