"""GuardDuty and Security Hub findings ingested as findings: source and source id, normalized severity and category,
the affected resource, and their lifecycle (archived, resolved or deleted at the source resolves them, a failed or
truncated read resolves nothing) through the real scan job and API against the AWS fake."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Finding, FindingEvent, ScanRun, ScanStatus
from app.reports import report_from_outcome
from app.reports.formats import render
from app.scanners import guardduty as gd_scanner
from app.scanners import securityhub as sh_scanner
from app.scanners.base import Inventory
from app.scanners.external import (
    external_findings,
    external_uid,
    guardduty_severity,
    securityhub_category,
    securityhub_check_id,
    securityhub_severity,
)
from app.scanners.guardduty import GuardDutyCollector, GuardDutyFinding, GuardDutyRegion
from app.scanners.securityhub import SecurityHubFinding
from app.tasks.scans import run_scan_job
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.findings_helpers import findings_by_uid, history, verdicts
from tests.logging_helpers import REGION, asff, one, scan, seed_guardduty_findings
from tests.scan_helpers import connect_account, run_queued_jobs

THREAT_CHECKS = {"guardduty_no_high_severity_findings", "securityhub_no_high_severity_findings"}
MEMBER = "444455556666"


def detector(fake, region: str = REGION) -> str:
    return fake.client("guardduty", region).create_detector(Enable=True)["DetectorId"]


def by_source(outcome, source: str) -> dict[str, object]:
    return {f.source_id: f for f in outcome.findings if f.source == source}


def control(finding_id: str, control_id: str, title: str, severity: str, **kwargs) -> dict:
    """A Security Hub control finding of the AWS Foundational Security Best Practices standard."""
    finding = asff(finding_id, control_id=control_id, title=title, severity=severity, **kwargs)
    finding["Types"] = ["Software and Configuration Checks/Industry and Regulatory Standards/"
                        "AWS-Foundational-Security-Best-Practices"]
    finding["Compliance"]["AssociatedStandards"] = [
        {"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}]
    return finding


# ==================================================================================================
# What one scan reads and how it maps
# ==================================================================================================

async def test_active_findings_are_ingested_with_their_source_severity_category_and_resource(aws_fake):
    detector(aws_fake)
    crit, high, medium, low = seed_guardduty_findings(aws_fake, REGION, [
        {"type": "AttackSequence:IAM/CompromisedCredentials", "severity": 9.5, "resource_id": "alice"},
        {"type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "resource_id": "i-0aaa"},
        {"type": "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B", "severity": 4.0, "resource_id": "bob"},
        {"type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 3.9, "resource_id": "i-0bbb"},
    ])
    archived, member = seed_guardduty_findings(aws_fake, REGION, [
        {"type": "Trojan:EC2/DNSDataExfiltration", "archived": True},
        {"type": "Trojan:EC2/DNSDataExfiltration", "member_account": MEMBER},
    ])
    hub = aws_fake.client("securityhub")
    hub.enable_security_hub()
    inspector = asff("arn:aws:inspector2:us-east-1:111:finding/cve", severity="HIGH", product="inspector",
                     title="CVE-2024-3094 - xz", resource_type="AwsEc2Instance",
                     resource_id=f"arn:aws:ec2:us-east-1:{CUSTOMER_ACCOUNT}:instance/i-0aaa")
    macie = {**asff("macie-1", severity="MEDIUM", product="macie", title="S3 object holds credentials"),
             "Types": ["Sensitive Data Identifications/Passwords"]}
    partner = {**asff("partner-1", title="Beaconing to a known C2 host"), "Severity": {"Normalized": 45},
               "Types": ["TTPs/Command and Control"], "GeneratorId": "acme-edr-rule-7",
               "ProductArn": f"arn:aws:securityhub:us-east-1:{CUSTOMER_ACCOUNT}:product/{CUSTOMER_ACCOUNT}/default"}
    hub.batch_import_findings(Findings=[
        control("iam-4", "IAM.4", "IAM root user access key should not exist", "CRITICAL"),
        control("athena-1", "Athena.1", "Athena workgroups should be encrypted at rest", "LOW"),
        inspector, macie, partner,
        asff("resolved", workflow="RESOLVED"), asff("suppressed", workflow="SUPPRESSED"),
        asff("archived", record_state="ARCHIVED"), asff("guardduty-copy", product="guardduty"),
        {**asff("other-region"), "Region": "eu-west-1"}, {**asff("member"), "AwsAccountId": MEMBER},
    ])

    out = await scan(THREAT_CHECKS)
    assert out.sources_read == {("guardduty", REGION), ("securityhub", REGION)}

    guardduty = by_source(out, "guardduty")
    assert set(guardduty) == {crit, high, medium, low}   # not the archived one, not the member's
    assert archived not in guardduty and member not in guardduty
    assert {k: f.severity for k, f in guardduty.items()} == {crit: "critical", high: "high", medium: "medium",
                                                             low: "low"}
    f = guardduty[high]
    assert f.uid == external_uid("guardduty", CUSTOMER_ACCOUNT, REGION, high) and f.uid.startswith("gd-")
    assert f.check_id == "guardduty:CryptoCurrency:EC2/BitcoinTool.B!DNS" and f.status == "FAIL"
    assert (f.service, f.category, f.region, f.account_id) == ("guardduty", "threat-detection", REGION,
                                                               CUSTOMER_ACCOUNT)
    assert (f.resource_type, f.resource_id) == ("AwsEc2Instance", "i-0aaa")
    assert f.resource_arn == f"arn:aws:ec2:{REGION}:{CUSTOMER_ACCOUNT}:instance/i-0aaa"
    assert f.title == "Bitcoin-related domain name queried by EC2 instance i-0aaa." and f.title in f.message
    assert f.details["finding_id"] == high and f.details["type"] == f.check_id.split(":", 1)[1]
    assert f.details["severity"] == 8.0 and f.details["first_seen"] and f.details["sample"] is False
    assert f.compliance == {}
    assert (guardduty[crit].resource_type, guardduty[crit].resource_id) == ("AwsIamAccessKey", "alice")

    securityhub = by_source(out, "securityhub")
    assert set(securityhub) == {"iam-4", "athena-1", inspector["Id"], "macie-1", "partner-1"}
    expected = {  # source id: (check id, severity, category)
        "iam-4": ("securityhub:IAM.4", "critical", "identity"),             # the catalog maps IAM.4
        "athena-1": ("securityhub:Athena.1", "low", "encryption"),          # the control's title
        inspector["Id"]: ("securityhub:inspector", "high", "patching"),     # Vulnerabilities/CVE
        "macie-1": ("securityhub:macie", "medium", "exposure"),             # Sensitive Data Identifications
        "partner-1": ("securityhub:custom/acme-edr-rule-7", "medium", "threat-detection"),   # TTPs; Normalized 45
    }
    assert {k: (f.check_id, f.severity, f.category) for k, f in securityhub.items()} == expected
    cve = securityhub[inspector["Id"]]
    assert cve.uid == external_uid("securityhub", CUSTOMER_ACCOUNT, REGION, inspector["Id"])
    assert (cve.resource_type, cve.resource_id, cve.resource_arn) == ("AwsEc2Instance", inspector["Resources"][0]["Id"],
                                                                      inspector["Resources"][0]["Id"])
    assert cve.service == "securityhub" and cve.details["product"] == "Inspector"
    assert securityhub["iam-4"].compliance == {"aws-fsbp": ["IAM.4"]} and cve.compliance == {}

    # The high-severity checks see the same high findings as before.
    assert "2 active high or critical finding(s)" in one(out, "guardduty_no_high_severity_findings").message
    assert "2 active high or critical finding(s)" in one(out, "securityhub_no_high_severity_findings").message


async def test_sample_findings_are_kept_and_flagged(aws_fake):
    detector_id = detector(aws_fake)
    aws_fake.client("guardduty").create_sample_findings(DetectorId=detector_id,
                                                        FindingTypes=["Recon:EC2/PortProbeUnprotectedPort"])
    out = await scan({"guardduty_enabled"})
    [sample] = by_source(out, "guardduty").values()
    assert sample.details["sample"] is True and sample.title.startswith("[SAMPLE] ")
    assert "sample finding" in sample.message and sample.severity == "low"


async def test_only_the_sources_whose_collectors_ran_are_ingested(aws_fake):
    detector(aws_fake)
    seed_guardduty_findings(aws_fake, REGION, [{"type": "Trojan:EC2/DNSDataExfiltration"}])
    aws_fake.client("securityhub").enable_security_hub()
    aws_fake.client("securityhub").batch_import_findings(Findings=[asff("x")])
    out = await scan({"s3_bucket_versioning_enabled"})
    assert not [f for f in out.findings if f.source != "cloudwizard"] and out.sources_read == frozenset()
    out = await scan({"guardduty_enabled"})
    assert {f.source for f in out.findings} == {"cloudwizard", "guardduty"}
    assert out.sources_read == {("guardduty", REGION)}


async def test_a_failed_read_ingests_and_covers_nothing_of_that_source_and_region(aws_fake):
    for region in (REGION, "eu-west-1"):
        detector(aws_fake, region)
        seed_guardduty_findings(aws_fake, region, [{"type": "Trojan:EC2/DNSDataExfiltration"}])
    aws_fake.client("securityhub").enable_security_hub()
    aws_fake.client("securityhub").batch_import_findings(Findings=[asff("x")])
    aws_fake.configure(deny=[{"service": "guardduty", "operation": "GetFindings", "region": REGION},
                             {"service": "securityhub", "operation": "GetFindings"}])
    out = await scan(THREAT_CHECKS, regions=[REGION, "eu-west-1"])
    assert {(f.source, f.region) for f in out.findings if f.source != "cloudwizard"} == {("guardduty", "eu-west-1")}
    # Security Hub is off in eu-west-1: nothing to read there, which is a complete read.
    assert out.sources_read == {("guardduty", "eu-west-1"), ("securityhub", "eu-west-1")}


async def test_a_truncated_read_keeps_the_most_severe_and_covers_nothing(aws_fake, monkeypatch):
    monkeypatch.setattr(gd_scanner, "FINDINGS_CAP", 2)
    monkeypatch.setattr(sh_scanner, "FINDINGS_CAP", 2)
    detector(aws_fake)
    ids = seed_guardduty_findings(aws_fake, REGION, [
        {"type": "Recon:EC2/PortProbeUnprotectedPort"}, {"type": "CryptoCurrency:EC2/BitcoinTool.B"},
        {"type": "AttackSequence:S3/CompromisedData"}, {"type": "UnauthorizedAccess:EC2/SSHBruteForce"}])
    aws_fake.client("securityhub").enable_security_hub()
    aws_fake.client("securityhub").batch_import_findings(Findings=[
        asff("low", severity="LOW"), asff("crit", severity="CRITICAL"), asff("med", severity="MEDIUM")])
    out = await scan(THREAT_CHECKS)
    assert set(by_source(out, "guardduty")) == {ids[1], ids[2]}
    assert set(by_source(out, "securityhub")) == {"crit", "med"}
    assert out.sources_read == frozenset()
    # Both high GuardDuty findings were read, but more may exist: the check says "at least".
    assert "at least 2 active" in one(out, "guardduty_no_high_severity_findings").message
    assert "has 1 active" in one(out, "securityhub_no_high_severity_findings").message


def test_one_finding_listed_twice_is_one_record():
    finding = GuardDutyFinding(finding_id="f1", type="Trojan:EC2/DNSDataExfiltration", severity=8.0)
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=[REGION])
    inventory.add(GuardDutyRegion(region=REGION, resource_id="gd", detector_id="d", findings=[finding, finding],
                                  findings_complete=True))
    records, covered = external_findings(inventory)
    assert [r.source_id for r in records] == ["f1"]
    assert covered == frozenset()   # the collector did not run to its end in this scan
    inventory.completed.add((GuardDutyCollector.name, REGION))
    assert external_findings(inventory)[1] == {("guardduty", REGION)}


@pytest.mark.parametrize(("score", "severity"), [
    (10.0, "critical"), (9.0, "critical"), (8.9, "high"), (7.0, "high"), (6.9, "medium"), (4.0, "medium"),
    (3.9, "low"), (1.0, "low"), (0.5, "informational")])
def test_guardduty_severity_bands(score, severity):
    assert guardduty_severity(score).value == severity


@pytest.mark.parametrize(("label", "normalized", "severity"), [
    ("CRITICAL", None, "critical"), ("INFORMATIONAL", 90, "informational"), (None, 95, "critical"),
    (None, 70, "high"), (None, 69, "medium"), (None, 40, "medium"), (None, 39, "low"), (None, 1, "low"),
    (None, 0, "informational"), (None, None, "informational")])
def test_security_hub_severity_from_label_else_normalized(label, normalized, severity):
    assert securityhub_severity(label, normalized).value == severity


@pytest.mark.parametrize(("finding", "category", "check_id"), [
    (SecurityHubFinding(finding_id="1", product="Security Hub", control_id="S3.8", title="x"), "exposure",
     "securityhub:S3.8"),
    (SecurityHubFinding(finding_id="1", product="Security Hub", control_id="KMS.99", title="x"), "encryption",
     "securityhub:KMS.99"),
    (SecurityHubFinding(finding_id="1", product="Security Hub", control_id="Foo.1",
                        title="Foo clusters should have deletion protection enabled"), "resilience",
     "securityhub:Foo.1"),
    (SecurityHubFinding(finding_id="1", product="GuardDuty", types=["Effects/Data Exposure"]), "exposure",
     "securityhub:guardduty"),
    (SecurityHubFinding(finding_id="1", product="Partner X", types=["Unusual Behaviors/User"]), "threat-detection",
     "securityhub:partner-x"),
    (SecurityHubFinding(finding_id="1", product="IAM Access Analyzer", types=[
        "Software and Configuration Checks/AWS Security Best Practices/Unused IAM Role"]), "identity",
     "securityhub:iam-access-analyzer"),
    (SecurityHubFinding(finding_id="1", product="Health", types=["Software and Configuration Checks"]),
     "resilience", "securityhub:health"),
    (SecurityHubFinding(finding_id="1", product="Default", types=["Software and Configuration Checks"]),
     "exposure", "securityhub:custom/unknown"),
])
def test_security_hub_category_and_check_id(finding, category, check_id):
    assert (securityhub_category(finding), securityhub_check_id(finding)) == (category, check_id)


async def test_reports_render_findings_whose_check_is_not_in_the_catalog(aws_fake):
    detector(aws_fake)
    seed_guardduty_findings(aws_fake, REGION, [{"type": "Trojan:EC2/DNSDataExfiltration", "resource_id": "i-0zz"}])
    aws_fake.client("securityhub").enable_security_hub()
    aws_fake.client("securityhub").batch_import_findings(Findings=[asff("sh-1", title="Partner <b>finding</b>")])
    report = report_from_outcome(await scan(THREAT_CHECKS))
    external = [f for f in report.findings if f["source"] != "cloudwizard"]
    assert {f["source"] for f in external} == {"guardduty", "securityhub"}
    assert not {f["check_id"] for f in external} & set(report.checks)
    for fmt in ("json", "csv", "ocsf", "html", "table"):
        text = render(report, fmt)   # the table lists failed checks by severity: the high one is there too
        assert "guardduty:Trojan:EC2/DNSDataExfiltration" in text, fmt
    assert "Partner &lt;b&gt;finding&lt;/b&gt;" in render(report, "html")
    rows = json.loads(render(report, "json"))["findings"]
    assert {(r["source"], r["check_id"]) for r in rows if r["source"] != "cloudwizard"} == {
        ("guardduty", "guardduty:Trojan:EC2/DNSDataExfiltration"), ("securityhub", "securityhub:security-hub")}
    ocsf = [e for e in json.loads(render(report, "ocsf")) if e["metadata"]["event_code"].startswith("securityhub:")]
    assert [e["finding_info"]["title"] for e in ocsf] == ["Partner <b>finding</b>"]
    # The high findings count for --fail-on high, as the failed checks on them always did.
    assert {f["check_id"] for f in report.failing_at_or_above("high")} == {
        "guardduty:Trojan:EC2/DNSDataExfiltration", "guardduty_no_high_severity_findings",
        "securityhub:security-hub", "securityhub_no_high_severity_findings"}


# ==================================================================================================
# Lifecycle through the scan job and the API
# ==================================================================================================

@pytest.fixture
async def setup(client, signup, make_workspace, aws_fake):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await connect_account(client, aws_fake, owner["headers"], ws["id"], regions=[REGION])
    ws_path = f"/v1/workspaces/{ws['id']}"
    return {"h": owner["headers"], "ws_path": ws_path, "scans": f"{ws_path}/aws-accounts/{account['id']}/scans"}


async def _scan(client, setup) -> dict:
    r = await client.post(setup["scans"], headers=setup["h"])
    assert r.status_code == 202, r.text
    await run_queued_jobs()
    body = (await client.get(f"{setup['scans']}/{r.json()['id']}", headers=setup["h"])).json()
    assert body["status"] in ("succeeded", "partial"), body
    return body


async def _external() -> dict[str, Finding]:
    """source id -> stored finding, for GuardDuty and Security Hub findings (one row each, asserted)."""
    rows = [f for f in (await findings_by_uid()).values() if f.source != "cloudwizard"]
    assert len({f.source_id for f in rows}) == len(rows)
    return {f.source_id: f for f in rows}


def _external_verdicts(v: dict, state: dict[str, Finding]) -> dict[str, str]:
    by_uid = {f.uid: sid for sid, f in state.items()}
    return {by_uid[uid]: delta for uid, (delta, _, _) in v.items() if uid in by_uid}


async def test_findings_resolve_when_archived_resolved_or_gone_and_never_on_a_failed_read(client, setup, aws_fake):
    gd, hub = aws_fake.client("guardduty"), aws_fake.client("securityhub")
    detector_id = detector(aws_fake)
    a, b, c = seed_guardduty_findings(aws_fake, REGION, [
        {"type": "CryptoCurrency:EC2/BitcoinTool.B!DNS", "resource_id": "i-0aaa"},
        {"type": "UnauthorizedAccess:EC2/SSHBruteForce", "resource_id": "i-0bbb"},
        {"type": "Recon:EC2/PortProbeUnprotectedPort", "resource_id": "i-0ccc"}])
    [theirs] = seed_guardduty_findings(aws_fake, REGION, [{"type": "Trojan:EC2/DNSDataExfiltration",
                                                           "member_account": MEMBER}])
    hub.enable_security_hub()
    x, y = asff("sh-x", severity="HIGH"), asff("sh-y", severity="LOW", title="Minor")
    hub.batch_import_findings(Findings=[x, y])

    # Scan 1: every active finding is new, each once; the member's finding is not this account's.
    scan1 = await _scan(client, setup)
    state1 = await _external()
    assert set(state1) == {a, b, c, "sh-x", "sh-y"} and theirs not in state1
    assert set(_external_verdicts(await verdicts(scan1["id"]), state1).values()) == {"new"}
    assert {state1[a].severity, state1[b].severity, state1["sh-y"].severity} == {"high", "low"}
    r = await client.get(f"{setup['ws_path']}/findings?source=guardduty&check_id=guardduty:"
                         "CryptoCurrency:EC2/BitcoinTool.B!DNS", headers=setup["h"])
    assert r.status_code == 200 and [i["uid"] for i in r.json()["items"]] == [state1[a].uid]

    # Scan 2: a archived in GuardDuty, sh-y resolved in Security Hub, a new GuardDuty finding d.
    gd.archive_findings(DetectorId=detector_id, FindingIds=[a])
    assert hub.batch_update_findings(FindingIdentifiers=[{"Id": "sh-y", "ProductArn": y["ProductArn"]}],
                                     Workflow={"Status": "RESOLVED"})["ProcessedFindings"]
    [d] = seed_guardduty_findings(aws_fake, REGION, [{"type": "Backdoor:EC2/C&CActivity.B!DNS"}])
    scan2 = await _scan(client, setup)
    state2 = await _external()
    v2 = await verdicts(scan2["id"])
    assert _external_verdicts(v2, state2) == {a: "resolved", "sh-y": "resolved", b: "unchanged", c: "unchanged",
                                              "sh-x": "unchanged", d: "new"}
    assert state2[a].resolved_at is not None and state2["sh-y"].resolved_at is not None
    assert all(state2[k].resolved_at is None for k in (b, c, d, "sh-x"))

    # A crash re-run of scan 2 writes the same results, counting nothing twice.
    async with session_scope() as s:
        events = await s.scalar(select(func.count()).select_from(FindingEvent))
        row = await s.get(ScanRun, uuid.UUID(scan2["id"]))
        row.status, row.finished_at = ScanStatus.running, None
    assert await run_scan_job({"job_try": 2}, scan2["id"]) in ("succeeded", "partial")
    assert await verdicts(scan2["id"]) == v2
    async with session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(FindingEvent)) == events

    # Scan 3: b archived and sh-x resolved, but neither source can be read: nothing of theirs changes.
    gd.archive_findings(DetectorId=detector_id, FindingIds=[b])
    hub.batch_update_findings(FindingIdentifiers=[{"Id": "sh-x", "ProductArn": x["ProductArn"]}],
                              Workflow={"Status": "SUPPRESSED"})
    aws_fake.configure(deny=[{"service": "guardduty", "operation": "ListFindings"},
                             {"service": "securityhub", "operation": "GetFindings"}])
    scan3 = await _scan(client, setup)
    assert scan3["status"] == "partial"
    v3 = _external_verdicts(await verdicts(scan3["id"]), await _external())
    assert v3 == {}   # neither produced nor resolved
    assert all(f.resolved_at is None for k, f in (await _external()).items() if k in (b, c, d, "sh-x"))

    # Scan 4: readable again; a unarchived comes back.
    aws_fake.configure(deny=[])
    gd.unarchive_findings(DetectorId=detector_id, FindingIds=[a])
    scan4 = await _scan(client, setup)
    state4 = await _external()
    assert _external_verdicts(await verdicts(scan4["id"]), state4) == {
        a: "reopened", b: "resolved", "sh-x": "resolved", c: "unchanged", d: "unchanged"}
    assert await history(state4[a].id) == [("new", None, "FAIL"), ("resolved", "FAIL", None),
                                           ("reopened", "FAIL", "FAIL")]

    # Scan 5: GuardDuty and Security Hub turned off: their findings are gone with them.
    gd.delete_detector(DetectorId=detector_id)
    hub.disable_security_hub()
    scan5 = await _scan(client, setup)
    state5 = await _external()
    assert _external_verdicts(await verdicts(scan5["id"]), state5) == {a: "resolved", c: "resolved", d: "resolved"}
    assert all(f.resolved_at is not None for f in state5.values())
    assert len(state5) == 6   # one row per finding across five scans


async def test_a_scan_without_the_threat_collectors_resolves_nothing_of_theirs(client, setup, aws_fake):
    """A plan that does not read a source (here: its collector crashed) leaves that source's findings alone."""
    detector(aws_fake)
    seed_guardduty_findings(aws_fake, REGION, [{"type": "Trojan:EC2/DNSDataExfiltration"}])
    await _scan(client, setup)
    [finding] = (await _external()).values()
    aws_fake.configure(deny=[{"service": "guardduty", "operation": "ListDetectors"}])
    scan2 = await _scan(client, setup)
    assert _external_verdicts(await verdicts(scan2["id"]), await _external()) == {}
    assert (await _external())[finding.source_id].resolved_at is None
