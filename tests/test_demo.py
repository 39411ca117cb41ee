"""The demo end to end (simulated account, real API process, real HTTP flow, the scan's exports, a mute rule,
the organization view), its documented seed configuration, and seeding twice."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from app.checks.catalog import catalog
from app.cli import cli
from app.demo import seed
from app.demo.run import DEMO_MUTE, DemoOptions, attachment_name, run_demo

REPO = Path(__file__).resolve().parent.parent
# The five; the catalog may add more (it has resilience and patching), which the demo covers too.
REQUIRED_CATEGORIES = {"identity", "encryption", "exposure", "logging", "threat-detection"}


def _catalog_categories() -> set[str]:
    return {entry.meta.category for entry in catalog().values()}


def _names_resource(finding: dict, identifier: str) -> bool:
    for value in (finding.get("resource_id") or "", finding.get("resource_arn") or ""):
        if value == identifier or value.endswith((f"/{identifier}", f":{identifier}")):
            return True
    return False


def _about(finding: dict, expectation: seed.Expectation, seeded: seed.SeedResult) -> bool:
    if expectation.region != seed.GLOBAL and finding["region"] not in (expectation.region, "global"):
        return False
    if not expectation.per_resource:
        return True
    return any(_names_resource(finding, name) for name in seeded.identifiers(expectation))


def test_docs_show_the_seeded_configuration_table():
    assert seed.markdown_table() in (REPO / "docs" / "DEMO.md").read_text()


def test_the_documented_checks_are_the_catalogs_with_its_categories():
    entries = catalog()
    documented = {c for e in seed.EXPECTATIONS for c in e.checks}
    assert documented - set(entries) == set()
    assert [(e.resource, c, e.category, entries[c].meta.category) for e in seed.EXPECTATIONS for c in e.checks
            if entries[c].meta.category != e.category] == []
    # Every category of the catalog meets a good and a bad configuration.
    categories = _catalog_categories()
    assert REQUIRED_CATEGORIES <= categories
    for category in categories:
        assert {e.verdict for e in seed.EXPECTATIONS if e.category == category} == {"good", "bad"}, category


def _account_state(aws_fake) -> dict:
    """Counts of what seeding creates, to show a second run adds nothing."""
    iam = aws_fake.client("iam")
    state = {
        "users": sorted(u["UserName"] for u in iam.list_users()["Users"]),
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "policies": sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]),
        "keys": len(iam.list_access_keys(UserName="ci-deploy")["AccessKeyMetadata"]),
        "mfa": len(iam.list_virtual_mfa_devices()["VirtualMFADevices"]),
        "buckets": sorted(b["Name"] for b in aws_fake.client("s3").list_buckets()["Buckets"]),
        "trails": len(aws_fake.client("cloudtrail").describe_trails()["trailList"]),
        "hub_findings": len(aws_fake.client("securityhub").get_findings()["Findings"]),
        "functions": len(aws_fake.client("lambda", "eu-west-1").list_functions()["Functions"]),
        "load_balancers": len(aws_fake.client("elbv2").describe_load_balancers()["LoadBalancers"]),
        "distributions": aws_fake.client("cloudfront").list_distributions()["DistributionList"]["Quantity"],
    }
    for region in seed.REGIONS:
        ec2 = aws_fake.client("ec2", region)
        state[region] = {
            "instances": sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"]),
            "volumes": len(ec2.describe_volumes()["Volumes"]),
            "snapshots": len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
            "groups": len(ec2.describe_security_groups()["SecurityGroups"]),
            "keys": len(aws_fake.client("kms", region).list_keys()["Keys"]),
            "databases": len(aws_fake.client("rds", region).describe_db_instances()["DBInstances"]),
            "queues": len(aws_fake.client("sqs", region).list_queues().get("QueueUrls", [])),
            "topics": len(aws_fake.client("sns", region).list_topics()["Topics"]),
            "detectors": len(aws_fake.client("guardduty", region).list_detectors()["DetectorIds"]),
            "tables": len(aws_fake.client("dynamodb", region).list_tables()["TableNames"]),
        }
        for detector in aws_fake.client("guardduty", region).list_detectors()["DetectorIds"]:
            guardduty = aws_fake.client("guardduty", region)
            state[region]["threats"] = len(guardduty.list_findings(DetectorId=detector)["FindingIds"])
    return state


def test_seeding_twice_changes_nothing(aws_fake):
    first = seed.seed_account(aws_fake.client)
    before = _account_state(aws_fake)
    assert before["ap-southeast-2"]["instances"] == 1 and before["trails"] == 1
    assert before["us-east-1"]["threats"] > 0 and before["hub_findings"] == 1
    second = seed.seed_account(aws_fake.client)
    assert second.ids == first.ids
    assert _account_state(aws_fake) == before


def test_demo_runs_the_real_flow_exports_and_mutes(aws_fake, tmp_path):
    output = io.StringIO()
    console = Console(file=output, width=140, force_terminal=False)
    result = run_demo(DemoOptions(data_dir=tmp_path / "data", aws_endpoint=aws_fake.endpoint_url), console)

    # The real flow: a verified connection whose role demanded the External ID, a finished scan.
    assert result.account["status"] in ("connected", "degraded")
    assert result.account["aws_account_id"] == seed.DEMO_ACCOUNT
    assert aws_fake.stats()["denied"].get("sts:AssumeRole", 0) >= 2  # verify's confused-deputy probes
    assert result.scan["status"] in ("succeeded", "partial")
    assert result.scan["progress"]["regions_done"] == 3
    assert sorted(result.scan["regions"]) == sorted(seed.REGIONS)

    findings = result.findings
    assert findings and all(f["aws_account_id"] == result.account["id"] for f in findings)  # from the API
    categories = _catalog_categories()
    assert {f["category"] for f in findings if f["status"] == "FAIL"} == categories
    assert {f["category"] for f in findings if f["status"] == "PASS"} == categories

    # Every documented expectation holds for the checks in the catalog.
    known = set(catalog())
    wrong = []
    for expectation in seed.EXPECTATIONS:
        wanted = "PASS" if expectation.verdict == "good" else "FAIL"
        for check in expectation.checks:
            if check not in known:
                continue
            about = [f for f in findings if f["check_id"] == check and _about(f, expectation, result.seeded)]
            statuses = {f["status"] for f in about}
            if wanted not in statuses or (expectation.per_resource and statuses != {wanted}):
                wrong.append((check, expectation.region, expectation.resource, wanted, sorted(statuses)))
    assert wrong == []

    # GuardDuty's sample findings and the partner finding in Security Hub arrive as findings of their sources.
    ingested = sorted((f["source"], f["check_id"]) for f in findings if f["source"] != "cloudwizard")
    assert ingested == sorted([("guardduty", f"guardduty:{t}") for t in seed.SAMPLE_FINDING_TYPES]
                              + [("securityhub", "securityhub:custom/acme-demo-review")])
    assert all(f["details"]["sample"] and f["status"] == "FAIL" and f["source_id"]
               for f in findings if f["source"] == "guardduty")

    # The summary the terminal shows agrees with the findings.
    assert result.summary["total"] == len(findings)
    assert result.summary["by_status"]["FAIL"] == sum(1 for f in findings if f["status"] == "FAIL")
    text = output.getvalue()
    for words in ("Verified", "By category", "Top failing checks", "Ingested findings: 5 from GuardDuty",
                  "1 from Security Hub", "Organization view: acme-production (123456789012)"):
        assert words in text
    _assert_exports_are_valid(result, findings, text)
    _assert_the_mute_rule_worked(result)


def _assert_exports_are_valid(result, findings: list[dict], text: str) -> None:
    """The scan's export in five formats, downloaded from the API into the output folder, each valid."""
    assert set(result.exports) == {"html", "json", "csv", "ocsf", "asff"}
    suffixes = {"html": ".html", "json": ".json", "csv": ".csv", "ocsf": ".ocsf.json", "asff": ".asff.json"}
    for fmt, path in result.exports.items():
        assert path.is_file() and path.stat().st_size > 0, fmt
        assert path.name.endswith(suffixes[fmt]) and path.name.startswith("cloudwizard-scan-"), path.name
        assert path.parent == result.exports["html"].parent
        assert str(path) in text  # the terminal ends with the five paths
    assert not list(result.exports["html"].parent.glob("*.part"))

    document = json.loads(result.exports["json"].read_text())
    assert document["scan"]["id"] == result.scan["id"]
    assert document["scan"]["account_id"] == seed.DEMO_ACCOUNT
    assert len(document["findings"]) == len(findings)
    assert {r["finding"]["id"] for r in document["findings"]} == {f["id"] for f in findings}

    with result.exports["csv"].open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["id", "uid", "check_id"]  # a header row
    assert len(rows) - 1 == len(document["findings"])

    events = json.loads(result.exports["ocsf"].read_text())
    assert isinstance(events, list) and len(events) == len(findings)
    assert {e["class_uid"] for e in events} == {2004}

    asff = json.loads(result.exports["asff"].read_text())
    assert len(asff["Findings"]) == len(findings)
    assert {f["SchemaVersion"] for f in asff["Findings"]} == {"2018-10-08"}

    html = result.exports["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and seed.DEMO_ACCOUNT in html
    assert "<svg" in html and "<script src" not in html


def _assert_the_mute_rule_worked(result) -> None:
    rule = result.mute_rule
    assert rule["state"] == "active" and rule["reason"] and rule["owner"] == DEMO_MUTE["owner"]
    assert rule["check_id"] == DEMO_MUTE["check_id"] and rule["resource_pattern"] == DEMO_MUTE["resource_pattern"]
    expires = datetime.fromisoformat(rule["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    # It mutes what it says, and only that: the website bucket's public policy finding, which the seed documents.
    muted = [f for f in result.findings if f["check_id"] == DEMO_MUTE["check_id"]
             and fnmatch.fnmatchcase(f["resource_arn"] or "", DEMO_MUTE["resource_pattern"])]
    assert [f["status"] for f in muted] == ["FAIL"]
    assert rule["matched_findings"] == len(muted) >= 1
    before, after = result.summary_before_mute, result.summary_after_mute
    assert before["muted"] == 0 and after["muted"] == rule["matched_findings"]
    assert after["open"]["failed"] == before["open"]["failed"] - rule["matched_findings"]
    # The organization view counts the same (after the mute), with the ingested findings' sources.
    row = result.organization
    assert row["aws_account_number"] == seed.DEMO_ACCOUNT and row["muted"] == rule["matched_findings"]
    assert row["open"]["failed"] == after["open"]["failed"]
    assert row["failed_by_source"]["guardduty"] == len(seed.SAMPLE_FINDING_TYPES)
    assert row["failed_by_source"]["securityhub"] == 1
    assert 0 < row["pass_rate"] < 1


def test_attachment_names_are_plain_file_names():
    disposition = 'attachment; filename="cloudwizard-scan-123456789012-2025-01-01-abc.ocsf.json"'
    assert attachment_name(disposition, "ocsf.json") == "cloudwizard-scan-123456789012-2025-01-01-abc.ocsf.json"
    assert attachment_name(disposition, "csv") is None           # not the format asked for
    for unsafe in ('attachment; filename="../../etc/x.json"', 'attachment; filename=".x.json"',
                   'attachment; filename="a/b.json"', "attachment", None):
        assert attachment_name(unsafe, "json") is None


def test_demo_command_refuses_a_busy_port_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["demo", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"demo failed: port {port} on 127.0.0.1 is in use" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # no database, no logs, no simulated account


def test_demo_command_help_names_its_options():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--serve", "--port", "--output"):
        assert option in result.output
