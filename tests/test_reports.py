"""Report writers on a report built from engine finding records: JSON, CSV, OCSF, table and HTML,
with hostile values where customer accounts can put them (resource ids, ARNs, messages)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from py_ocsf_models.events.findings.detection_finding import DetectionFinding

from app.checks.base import finding_uid
from app.reports import FINDING_FIELDS, SCAN_FIELDS, ScanReport
from app.reports.formats import FORMATS, flatten_compliance, render, to_csv, to_json, to_ocsf
from app.reports.html import render_html
from app.scanners.engine import FindingRecord

ACCOUNT = "123456789012"
HOSTILE = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(2)>'
STARTED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

CHECKS = {
    "ec2_ebs_default_encryption": {
        "id": "ec2_ebs_default_encryption", "title": "EBS encryption by default is enabled", "service": "ec2",
        "category": "encryption", "severity": "medium", "resource_type": "AwsEc2EbsEncryptionByDefault",
        "description": "Checks EBS encryption by default.", "risk": "Unencrypted volumes <b>leak</b>.",
        "remediation": {"text": "Enable it & relax.", "cli": "aws ec2 enable-ebs-encryption-by-default",
                        "cloudformation": None},
        "references": ["https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html",
                       "javascript:alert(3)"],
        "compliance": {"aws-fsbp": ["EC2.7"], "cis-aws-3.0": ["2.2.1"]},
    },
    "iam_role_trust_not_public": {
        "id": "iam_role_trust_not_public", "title": "Role trust policies do not allow everyone", "service": "iam",
        "category": "identity", "severity": "critical", "resource_type": "AwsIamRole",
        "description": "Checks role trust policies.", "risk": "Anyone can assume the role.",
        "remediation": {"text": "Name the trusted principals.", "cli": None, "cloudformation": None},
        "references": ["https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles.html"],
        "compliance": {"aws-fsbp": ["IAM.1"], "nist-800-53-r5": ["AC-3", "AC-6"]},
    },
}


def _record(check_id: str, status: str, region: str, resource_id: str, message: str,
            arn: str | None = None) -> FindingRecord:
    meta = CHECKS[check_id]
    return FindingRecord(
        uid=finding_uid(ACCOUNT, region, check_id, resource_id), check_id=check_id, title=meta["title"],
        status=status, severity=meta["severity"], service=meta["service"], category=meta["category"],
        region=region, account_id=ACCOUNT, resource_type=meta["resource_type"], resource_id=resource_id,
        resource_arn=arn, message=message, source="cloudwizard", compliance=meta["compliance"],
        details={"seen": ["a", "b"]} if status == "FAIL" else {})


def _report() -> ScanReport:
    hostile_arn = f"arn:aws:iam::{ACCOUNT}:role/{HOSTILE}/open"
    records = [
        _record("ec2_ebs_default_encryption", "PASS", "us-east-1", f"{ACCOUNT}/us-east-1/ebs", "Enabled."),
        _record("ec2_ebs_default_encryption", "FAIL", "eu-west-1", f"{ACCOUNT}/eu-west-1/ebs", "Disabled."),
        _record("ec2_ebs_default_encryption", "ERROR", "ap-south-1", ACCOUNT,
                "Could not evaluate: ec2:GetEbsEncryptionByDefault failed in ap-south-1 with AccessDenied: no"),
        _record("iam_role_trust_not_public", "FAIL", "global", "open", f"Trusts everyone {ATTRIBUTE_BREAKOUT}",
                hostile_arn),
        _record("iam_role_trust_not_public", "FAIL", "global", "=HYPERLINK(\"http://evil\")", HOSTILE,
                f"arn:aws:iam::{ACCOUNT}:role/formula"),
    ]
    scan = {
        "account_id": ACCOUNT, "partition": "aws", "regions": ["us-east-1", "eu-west-1", "ap-south-1"],
        "status": "partial", "started_at": STARTED, "finished_at": STARTED + timedelta(seconds=12.5),
        "duration_seconds": 12.5, "api_calls": 42, "api_calls_by_service": {"iam": 2, "ec2": 40},
        "throttled": 1, "checks_run": 2, "collectors_run": 4,
        "errors": [{"service": "ec2", "action": "ec2:GetEbsEncryptionByDefault", "region": "ap-south-1",
                    "resource_id": None, "code": "AccessDenied", "message": f"denied {HOSTILE}"}],
    }
    return ScanReport.build(scan, reversed(records), CHECKS)


def test_guardduty_sample_findings_never_count_for_fail_on():
    real = _record("iam_role_trust_not_public", "FAIL", "global", "real", "Trusts everyone")
    sample = FindingRecord(**{**real.as_dict(), "uid": "gd-sample", "check_id": "guardduty:Backdoor:EC2/C&CActivity.B",
                              "source": "guardduty", "severity": "critical", "details": {"sample": True}})
    live = FindingRecord(**{**sample.as_dict(), "uid": "gd-live", "details": {"sample": False}})
    report = ScanReport.build(_report().scan, [real, sample, live], CHECKS)
    assert len(report.failed) == 3
    for floor in ("critical", "informational"):
        assert {f["uid"] for f in report.failing_at_or_above(floor)} == {real.uid, "gd-live"}


def test_build_normalises_the_scan_and_sorts_findings():
    report = _report()
    assert tuple(report.scan) == SCAN_FIELDS
    assert report.scan["started_at"] == "2025-03-01T12:00:00.000Z"
    assert report.scan["regions"] == ["ap-south-1", "eu-west-1", "us-east-1"]
    assert list(report.scan["api_calls_by_service"]) == ["ec2", "iam"]
    assert report.scan["counts"] == {
        "total": 5, "by_status": {"PASS": 1, "FAIL": 3, "ERROR": 1},
        "failed_by_severity": {"critical": 2, "high": 0, "medium": 1, "low": 0, "informational": 0}}
    keys = [(f["check_id"], f["region"], f["resource_id"]) for f in report.findings]
    assert keys == sorted(keys)
    assert all(tuple(f)[:len(FINDING_FIELDS)] == FINDING_FIELDS for f in report.findings)
    assert set(report.checks) == set(CHECKS)
    assert [f["severity"] for f in report.failing_at_or_above("critical")] == ["critical", "critical"]
    assert len(report.failing_at_or_above("medium")) == 3
    assert len(report.failing_at_or_above("informational")) == 3


def test_json_is_the_scan_and_the_findings_and_stable():
    report = _report()
    document = json.loads(to_json(report))
    assert list(document) == ["scan", "findings"]
    assert document["scan"]["errors"][0]["code"] == "AccessDenied"
    assert document["findings"][0]["compliance"] == {"aws-fsbp": ["EC2.7"], "cis-aws-3.0": ["2.2.1"]}
    # The same scan written twice, from records in another order, is the same text.
    again = ScanReport.build(report.scan, list(reversed(report.findings)), CHECKS)
    assert to_json(again) == to_json(report)


def test_csv_has_one_row_per_finding_and_defuses_formulas():
    report = _report()
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert len(rows) == len(report.findings)
    assert tuple(rows[0]) == FINDING_FIELDS
    by_id = {r["resource_id"]: r for r in rows}
    # A spreadsheet would run =HYPERLINK(...): the cell keeps its text behind an apostrophe.
    assert by_id["'=HYPERLINK(\"http://evil\")"]["message"] == HOSTILE
    assert by_id["open"]["compliance"] == "aws-fsbp:IAM.1;nist-800-53-r5:AC-3;nist-800-53-r5:AC-6"
    assert by_id["open"]["resource_arn"] == f"arn:aws:iam::{ACCOUNT}:role/{HOSTILE}/open"
    assert flatten_compliance({}) == ""
    assert by_id[ACCOUNT]["resource_arn"] == ""


@pytest.mark.parametrize(("status", "status_id", "status_name", "compliance_status_id"), [
    ("PASS", 4, "Resolved", 1), ("FAIL", 1, "New", 3), ("ERROR", 0, "Unknown", 2)])
def test_ocsf_events_are_valid_detection_findings(status, status_id, status_name, compliance_status_id):
    report = _report()
    events = json.loads(to_ocsf(report))
    assert len(events) == len(report.findings)
    for event, finding in zip(events, report.findings, strict=True):
        model = DetectionFinding.model_validate(event)
        # Nothing the model does not know, nothing of the wrong type: it gives back exactly what we wrote.
        assert model.model_dump(mode="json", exclude_none=True) == event
        assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2004, 2, 200401)
        assert event["finding_info"]["uid"] == finding["uid"]
        assert event["unmapped"]["compliance"] == finding["compliance"]
        assert event["status_code"] == finding["status"]
        assert event["cloud"]["account"]["uid"] == ACCOUNT
    chosen = [e for e in events if e["status_code"] == status]
    assert chosen and all(e["status_id"] == status_id and e["status"] == status_name
                          and e["unmapped"]["compliance_status_id"] == compliance_status_id for e in chosen)
    severities = {e["finding_info"]["title"]: e["severity_id"] for e in events}
    assert severities == {CHECKS["ec2_ebs_default_encryption"]["title"]: 3,
                          CHECKS["iam_role_trust_not_public"]["title"]: 5}
    failed = next(e for e in events if e["status_code"] == "FAIL" and e["severity_id"] == 3)
    assert failed["remediation"]["desc"] == "Enable it & relax."
    assert failed["time"] == int((STARTED + timedelta(seconds=12.5)).timestamp() * 1000)


def test_a_finding_whose_check_is_gone_still_renders():
    report = _report()
    bare = ScanReport.build(report.scan, report.findings, checks={})
    assert bare.checks == {}
    for fmt in ("json", "csv", "ocsf", "html", "table"):
        assert "open" in render(bare, fmt)
    DetectionFinding.model_validate(json.loads(to_ocsf(bare))[0])


def test_table_lists_what_failed_and_keeps_markup_literal():
    report = _report()
    report.findings[0]["resource_id"] = "[bold]not markup[/bold]"
    text = render(report, "table")
    assert "Account 123456789012" in text and "1 passed, 3 failed, 1 could not be evaluated" in text
    assert "[bold]not markup[/bold]" in text
    assert "Enabled." not in text   # PASS rows are counted, not listed
    assert text.index("critical") < text.index("medium")
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "xml")
    assert set(FORMATS) == {"table", "json", "csv", "ocsf", "html"}


class _Page(HTMLParser):
    """What a browser would build: elements, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def test_html_is_self_contained_and_escapes_customer_data():
    report = _report()
    page_text = render_html(report)
    page = _Page()
    page.feed(page_text)
    tags = [t for t, _ in page.tags]
    # Hostile names are text, never markup: one script (ours), no injected element or handler.
    assert tags.count("script") == 1 and "img" not in tags
    assert not [a for _, attrs in page.tags for a in attrs if a.startswith("on")]
    assert HOSTILE not in page_text and "onerror=alert(2)>" not in page_text
    text = "".join(page.text)
    assert HOSTILE in text and ATTRIBUTE_BREAKOUT in text
    # Nothing loads from elsewhere, and the policy runs no script but ours.
    assert not [attrs for _, attrs in page.tags if "src" in attrs or attrs.get("rel") == "stylesheet"]
    [csp] = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    [script] = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    # References become links only for http(s).
    hrefs = [a["href"] for t, a in page.tags if t == "a"]
    assert "javascript:alert(3)" not in hrefs and any(h.startswith("https://docs.aws.amazon.com") for h in hrefs)
    assert "javascript:alert(3)" in text
    # Summary cards, four charts, the failed findings grouped by check with remediation, errors.
    assert tags.count("svg") == 4
    sections = [a for t, a in page.tags if t == "section"]
    assert [s["data-severity"] for s in sections] == ["critical", "medium"]
    assert "Enable it & relax." in text and "Unencrypted volumes <b>leak</b>." in text
    assert "Collection errors (1)" in text and f"denied {HOSTILE}" in text
    rows = [a for t, a in page.tags if t == "tr" and "data-status" in a]
    assert sorted(r["data-status"] for r in rows) == ["ERROR", "FAIL", "FAIL", "FAIL"]
    assert {r["data-region"] for r in rows} == {"global", "eu-west-1", "ap-south-1"}
    assert "NIST SP 800-53 Rev. 5" in text


def test_html_with_nothing_failed_says_so():
    report = _report()
    clean = ScanReport.build(report.scan, [f for f in report.findings if f["status"] == "PASS"], CHECKS)
    text = render_html(clean)
    assert "Nothing failed and nothing was left unevaluated." in text
    assert re.search(r'<div class="n"[^>]*>100%</div>', text)


def test_streamed_json_is_exactly_json_dumps():
    report = _report()
    assert to_json(report) == json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"
    events = json.loads(to_ocsf(report))
    assert to_ocsf(report) == json.dumps(events, indent=2, ensure_ascii=False) + "\n"
    empty = ScanReport.build(report.scan, [], CHECKS)
    assert to_json(empty) == json.dumps(empty.as_json(), indent=2, ensure_ascii=False) + "\n"
    assert empty.scan["counts"]["total"] == 0 and to_ocsf(empty) == "[]\n"
    assert to_csv(empty) == ",".join(FINDING_FIELDS) + "\n"


def test_timestamps_are_utc_with_a_z_whatever_they_came_as():
    from app.reports import iso

    assert iso(datetime(2025, 3, 1, 12, 0)) == "2025-03-01T12:00:00.000Z"   # naive, as SQLite returns it
    assert iso(datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == "2025-03-01T12:00:00.000Z"
    assert iso("2025-03-01T12:00:00Z") == "2025-03-01T12:00:00Z" and iso(None) is None
