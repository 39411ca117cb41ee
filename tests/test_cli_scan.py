"""`cloudwizard scan` and `cloudwizard checks list` against the AWS fake: in-process with Typer's runner,
and as a real process where stdout purity, exit codes and start-up matter."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import jsonschema
import pytest
import structlog
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from typer.testing import CliRunner

from app.aws.errors import AwsCallError
from app.cli import _credential_problem, cli
from app.reports import FINDING_FIELDS, SCAN_FIELDS
from tests.aws_fixtures import CUSTOMER_ACCOUNT, REPO_ROOT, trust_policy

HOSTILE = "<script>alert(1)</script>"
EBS = "ec2_ebs_default_encryption"
BUCKET_ENCRYPTION = "s3_bucket_default_encryption"
ROLE_TRUST = "iam_role_trust_not_public"
REGIONS = "us-east-1,eu-west-1"
CALLER = f"arn:aws:iam::{CUSTOMER_ACCOUNT}:user/alice"

_string = {"type": "string"}
_count = {"type": "integer", "minimum": 0}
_nullable_string = {"type": ["string", "null"]}
# The contract of `--format json`. Adding a field is a deliberate change here too.
REPORT_SCHEMA = {
    "type": "object",
    "required": ["scan", "findings"],
    "additionalProperties": False,
    "properties": {
        "scan": {
            "type": "object",
            "required": list(SCAN_FIELDS),
            "additionalProperties": False,
            "properties": {
                "account_id": {"type": "string", "pattern": "^[0-9]{12}$"},
                "partition": {"enum": ["aws", "aws-us-gov", "aws-cn"]},
                "regions": {"type": "array", "items": _string},
                "status": {"enum": ["succeeded", "partial"]},
                "started_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": "string", "format": "date-time"},
                "duration_seconds": {"type": "number", "minimum": 0},
                "api_calls": _count,
                "api_calls_by_service": {"type": "object", "additionalProperties": _count},
                "throttled": _count,
                "errors": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["service", "action", "region", "resource_id", "code", "message"],
                    "properties": {"service": _string, "action": _string, "region": _string,
                                   "resource_id": _nullable_string, "code": _string, "message": _string}}},
                "checks_run": _count,
                "collectors_run": _count,
                "counts": {
                    "type": "object", "additionalProperties": False,
                    "required": ["total", "by_status", "failed_by_severity"],
                    "properties": {
                        "total": _count,
                        "by_status": {"type": "object", "additionalProperties": False,
                                      "required": ["PASS", "FAIL", "ERROR"],
                                      "properties": {k: _count for k in ("PASS", "FAIL", "ERROR")}},
                        "failed_by_severity": {
                            "type": "object", "additionalProperties": False,
                            "required": ["critical", "high", "medium", "low", "informational"],
                            "properties": {k: _count for k in ("critical", "high", "medium", "low",
                                                               "informational")}},
                    }},
                "tool": {"type": "object", "required": ["name", "version"],
                         "properties": {"name": {"const": "cloudwizard"}, "version": _string}},
            },
        },
        "findings": {"type": "array", "items": {
            "type": "object",
            "required": [*FINDING_FIELDS, "details"],
            "additionalProperties": False,
            "properties": {
                "uid": {"type": "string", "pattern": "^cw-[0-9a-f]{32}$"},
                "check_id": {"type": "string", "pattern": "^[a-z0-9]+(_[a-z0-9]+)+$"},
                "title": _string,
                "status": {"enum": ["PASS", "FAIL", "ERROR"]},
                "severity": {"enum": ["informational", "low", "medium", "high", "critical"]},
                "service": _string, "category": _string, "region": _string,
                "account_id": {"type": "string", "pattern": "^[0-9]{12}$"},
                "resource_type": _string, "resource_id": _string, "resource_arn": _nullable_string,
                "message": _string, "source": {"const": "cloudwizard"},
                "compliance": {"type": "object", "minProperties": 1,
                               "additionalProperties": {"type": "array", "items": _string, "minItems": 1}},
                "details": {"type": "object"},
            },
        }},
    },
}


@pytest.fixture
def runner():
    saved = structlog.get_config()   # the command points structlog at its own stderr
    yield CliRunner()
    structlog.configure(**saved)


@pytest.fixture
def fake(aws_fake):
    """The fake, with the caller's own keys acting as a user of the account they seed."""
    aws_fake.configure(caller_arn=CALLER)
    return aws_fake


def _scan(runner, *args: str):
    return runner.invoke(cli, ["scan", *args])


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _seed_ebs(fake) -> None:
    """Encryption by default on in eu-west-1, off in us-east-1 (a medium FAIL)."""
    fake.client("ec2", "eu-west-1").enable_ebs_encryption_by_default()


def _seed_open_role(fake, name: str = "open") -> str:
    """A role anyone may assume (a critical FAIL), with a path that AWS allows and HTML must escape."""
    return fake.create_role(name, trust_policy("*"), path=f"/{HOSTILE}/")


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --------------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------------

def test_json_report_follows_the_schema_and_is_stable(runner, fake):
    _seed_ebs(fake)
    fake.client("s3").create_bucket(Bucket="cw-cli-data")
    args = ["--regions", REGIONS, "--checks", f"{EBS},{BUCKET_ENCRYPTION}", "--format", "json", "--quiet"]
    first = _json(_scan(runner, *args))
    jsonschema.validate(first, REPORT_SCHEMA, format_checker=jsonschema.FormatChecker())
    scan = first["scan"]
    assert (scan["account_id"], scan["partition"], scan["status"]) == (CUSTOMER_ACCOUNT, "aws", "succeeded")
    assert scan["regions"] == ["eu-west-1", "us-east-1"] and scan["checks_run"] == 2
    assert scan["api_calls"] == sum(scan["api_calls_by_service"].values()) > 0
    assert {"ec2", "s3"} <= set(scan["api_calls_by_service"])
    assert scan["counts"] == {"total": 3, "by_status": {"PASS": 1, "FAIL": 2, "ERROR": 0},
                              "failed_by_severity": {"critical": 0, "high": 0, "medium": 2, "low": 0,
                                                     "informational": 0}}
    outcome = {(f["check_id"], f["region"], f["status"]) for f in first["findings"]}
    assert outcome == {(EBS, "eu-west-1", "PASS"), (EBS, "us-east-1", "FAIL"),
                       (BUCKET_ENCRYPTION, "us-east-1", "FAIL")}
    bucket = next(f for f in first["findings"] if f["check_id"] == BUCKET_ENCRYPTION)
    assert bucket["resource_arn"] == "arn:aws:s3:::cw-cli-data" and bucket["account_id"] == CUSTOMER_ACCOUNT
    assert bucket["compliance"]["nist-800-53-r5"] == ["SC-28", "SC-28(1)"]

    # A second scan of the same account gives the same findings, in the same order, with the same uids.
    second = _json(_scan(runner, *args))
    assert second["findings"] == first["findings"]
    timing = {"started_at", "finished_at", "duration_seconds"}
    assert {k: v for k, v in second["scan"].items() if k not in timing} == \
           {k: v for k, v in scan.items() if k not in timing}


def test_csv_report_has_one_row_per_finding(runner, fake, tmp_path):
    _seed_ebs(fake)
    target = tmp_path / "findings.csv"
    result = _scan(runner, "--regions", REGIONS, "--checks", EBS, "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""    # the report went to the file; the summary to stderr
    assert f"report in {target}" in result.stderr
    with target.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == FINDING_FIELDS
    assert sorted((r["region"], r["status"]) for r in rows) == [("eu-west-1", "PASS"), ("us-east-1", "FAIL")]
    compliance = rows[0]["compliance"].split(";")
    assert "cis-aws-3.0:2.2.1" in compliance and "aws-fsbp:EC2.7" in compliance
    assert all(r["account_id"] == CUSTOMER_ACCOUNT and r["severity"] == "medium" for r in rows)


def test_ocsf_report_validates_as_detection_findings(runner, fake):
    _seed_ebs(fake)
    _seed_open_role(fake)
    result = _scan(runner, "--regions", REGIONS, "--checks", f"{EBS},{ROLE_TRUST}", "--format", "ocsf", "-q")
    assert result.exit_code == 0, result.output
    events = json.loads(result.stdout)
    assert events
    for event in events:
        model = DetectionFinding.model_validate(event)
        assert model.model_dump(mode="json", exclude_none=True) == event
        assert event["class_uid"] == 2004 and event["category_uid"] == 2
        assert event["cloud"]["account"]["uid"] == CUSTOMER_ACCOUNT
    by_status = {e["status_code"]: e for e in events}
    assert by_status["FAIL"]["status_id"] == 1 and by_status["PASS"]["status_id"] == 4
    role = next(e for e in events if e["metadata"]["event_code"] == ROLE_TRUST and e["status_code"] == "FAIL")
    assert role["severity_id"] == 5 and role["resources"][0]["uid"].endswith(f"/{HOSTILE}/open")
    assert role["remediation"]["desc"]


def test_html_report_escapes_hostile_names(runner, fake, tmp_path):
    _seed_open_role(fake)
    target = tmp_path / "report.html"
    result = _scan(runner, "--regions", "us-east-1", "--checks", ROLE_TRUST, "--format", "html", "-o", str(target))
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<script") == 1
    assert HOSTILE not in page
    assert f"role/{HOSTILE}/open".replace("<", "&lt;").replace(">", "&gt;") in page
    assert 'data-severity="critical"' in page and "How to fix" in page


def test_table_report_on_stdout(runner, fake):
    _seed_ebs(fake)
    result = _scan(runner, "--regions", REGIONS, "--checks", EBS)
    assert result.exit_code == 0, result.output
    assert f"Account {CUSTOMER_ACCOUNT}" in result.stdout and "1 passed, 1 failed" in result.stdout
    assert "us-east-1" in result.stdout and EBS in result.stdout
    # Progress and the summary are on stderr, not mixed into the report.
    assert f"Scanning AWS account {CUSTOMER_ACCOUNT}" in result.stderr
    assert "1 failed (1 medium), 1 passed" in result.stderr


# --------------------------------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------------------------------

def test_fail_on_sets_exit_code_3_at_or_above_the_severity(runner, fake):
    _seed_ebs(fake)
    base = ["--regions", REGIONS, "--checks", EBS, "--format", "json"]
    medium = _scan(runner, *base, "--fail-on", "medium")
    assert medium.exit_code == 3, medium.output
    assert json.loads(medium.stdout)["scan"]["counts"]["by_status"]["FAIL"] == 1   # the report is still written
    assert "1 failed findings at or above medium" in medium.stderr
    assert _scan(runner, *base, "--fail-on", "low").exit_code == 3
    assert _scan(runner, *base, "--fail-on", "high").exit_code == 0
    assert _scan(runner, *base, "--fail-on", "CRITICAL").exit_code == 0
    assert _scan(runner, *base).exit_code == 0
    _seed_open_role(fake)
    critical = _scan(runner, "--regions", "us-east-1", "--checks", f"{EBS},{ROLE_TRUST}", "--fail-on", "critical",
                     "-q", "-f", "json")
    assert critical.exit_code == 3 and critical.stderr == ""


def test_usage_errors_exit_1_before_any_aws_call(runner, fake, tmp_path):
    cases = [
        (["--checks", "nope_not_a_check"], "unknown check ids: nope_not_a_check"),
        (["--services", "nosuchservice"], "unknown services: nosuchservice"),
        (["--regions", "us-east-1,Mars"], "'Mars' is not an AWS region name"),
        (["--checks", EBS, "--services", "s3"], "select no check"),
        (["--format", "xml"], "xml"),
        (["--fail-on", "severe"], "severe"),
        (["--external-id", "abc"], "--external-id needs --role-arn"),
        (["--output", str(tmp_path / "missing" / "r.json")], "does not exist"),
        (["--role-arn", "arn:aws:iam::123:role/x"], "account ID must be exactly 12 digits"),
    ]
    for args, message in cases:
        result = _scan(runner, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        _no_traceback(result)
    assert fake.stats()["total"] == 0


def test_no_credentials_is_a_clear_error(runner, fake, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = _scan(runner, "--regions", "us-east-1", "--checks", EBS)
    assert result.exit_code == 1
    assert "no AWS credentials found" in result.stderr
    _no_traceback(result)


def test_profile_selects_the_credentials(runner, fake, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text("[audit]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    document = _json(_scan(runner, "--profile", "audit", "--regions", "us-east-1", "--checks", EBS, "-f", "json",
                           "-q"))
    assert document["scan"]["account_id"] == CUSTOMER_ACCOUNT

    missing = _scan(runner, "--profile", "does-not-exist", "--checks", EBS)
    assert missing.exit_code == 1
    assert "AWS profile 'does-not-exist' is not in the AWS config or credentials file" in missing.stderr
    _no_traceback(missing)


@pytest.mark.parametrize(("code", "expected"), [
    ("NoCredentialsError", "no AWS credentials found: pass --profile"),
    ("ExpiredToken", "the AWS credentials have expired (ExpiredToken): get fresh ones, e.g. `aws sso login "
                     "--profile dev`"),
    ("UnauthorizedSSOTokenError", "the AWS SSO session is missing or has expired"),
    ("InvalidClientTokenId", "AWS rejected the credentials (InvalidClientTokenId): the message"),
    ("EndpointConnectionError", "cannot reach AWS for sts:GetCallerIdentity: the message"),
    ("Throttling", "sts:GetCallerIdentity failed: Throttling: the message"),
])
def test_credential_problems_read_as_one_line(code, expected):
    error = AwsCallError(service="sts", operation="GetCallerIdentity", code=code, message="the message")
    text = _credential_problem(error, "dev")
    assert text.startswith(expected) and "\n" not in text


def test_the_scan_needs_no_database_or_service_configuration(runner, fake, monkeypatch, tmp_path):
    monkeypatch.setenv("CW_ENV", "production")
    monkeypatch.delenv("CW_JWT_SECRET", raising=False)
    monkeypatch.setenv("CW_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/nowhere")
    monkeypatch.setenv("CW_ACCESS_TOKEN_TTL_SECONDS", "5")   # invalid for the service, irrelevant here
    monkeypatch.setenv("CW_SCANNER_PRINCIPAL_ARN", "not an arn")
    monkeypatch.chdir(tmp_path)
    document = _json(_scan(runner, "--regions", "us-east-1", "--checks", EBS, "-f", "json", "-q"))
    assert document["scan"]["counts"]["total"] == 1
    assert list(tmp_path.iterdir()) == []    # no embedded database, no key file


# --------------------------------------------------------------------------------------------------
# Assumed role
# --------------------------------------------------------------------------------------------------

def test_role_arn_with_external_id(runner, aws_fake):
    # The caller's own keys act as the scanner principal the role trusts (the fake's default caller).
    role_arn = aws_fake.create_role("CloudWizardAudit", trust_policy(external_id="ext-1234567"))
    aws_fake.client("ec2", "us-east-1").enable_ebs_encryption_by_default()
    args = ["--role-arn", role_arn, "--regions", "us-east-1", "--checks", EBS, "-f", "json", "-q"]

    document = _json(_scan(runner, *args, "--external-id", "ext-1234567", "--session-name", "audit-run"))
    assert document["scan"]["account_id"] == CUSTOMER_ACCOUNT
    [finding] = document["findings"]
    assert finding["status"] == "PASS" and finding["account_id"] == CUSTOMER_ACCOUNT
    assert aws_fake.calls("sts:AssumeRole") == 1

    for extra in (["--external-id", "wrong-id-000"], []):
        refused = _scan(runner, *args, *extra)
        assert refused.exit_code == 1, refused.output
        assert f"AssumeRole on {role_arn} was refused (AccessDenied)" in refused.stderr
        assert "--external-id" in refused.stderr and refused.stdout == ""
        _no_traceback(refused)
    assert aws_fake.stats()["denied"] == {"sts:AssumeRole": 2}


# --------------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------------

def test_regions_services_and_checks_select_what_runs(runner, fake):
    _seed_ebs(fake)
    fake.client("s3").create_bucket(Bucket="cw-cli-selection")

    only_us = _json(_scan(runner, "--regions", "us-east-1", "--checks", f"{EBS},{BUCKET_ENCRYPTION}", "-f", "json",
                          "-q"))
    assert only_us["scan"]["regions"] == ["us-east-1"]
    assert {f["region"] for f in only_us["findings"]} == {"us-east-1"}
    assert {f["check_id"] for f in only_us["findings"]} == {EBS, BUCKET_ENCRYPTION}

    before = fake.stats()["calls"]
    s3_only = _json(_scan(runner, "--regions", REGIONS, "--services", "s3", "-f", "json", "-q"))
    assert {f["service"] for f in s3_only["findings"]} == {"s3"}
    assert s3_only["scan"]["checks_run"] > 1
    assert set(s3_only["scan"]["api_calls_by_service"]) <= {"ec2", "s3", "s3control"}
    after = fake.stats()["calls"]
    ec2_calls = {k: after[k] - before.get(k, 0) for k in after if k.startswith("ec2:")}
    assert {k for k, n in ec2_calls.items() if n} == {"ec2:DescribeRegions"}   # no EC2 collector ran

    one = _json(_scan(runner, "--regions", REGIONS, "--checks", EBS, "-f", "json", "-q"))
    assert {f["check_id"] for f in one["findings"]} == {EBS} and one["scan"]["checks_run"] == 1


def test_regions_not_enabled_are_reported(runner, fake):
    # ap-east-1 is an opt-in region the fake's account has not enabled.
    result = _scan(runner, "--regions", "us-east-1,ap-east-1", "--checks", EBS, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scan"]["regions"] == ["us-east-1"]
    assert "not scanned (not enabled in this account): ap-east-1" in result.stderr


def test_collection_errors_become_error_findings(runner, fake):
    fake.configure(deny=[{"service": "ec2", "operation": "GetEbsEncryptionByDefault", "region": "eu-west-1"}])
    document = _json(_scan(runner, "--regions", REGIONS, "--checks", EBS, "-f", "json", "-q"))
    assert document["scan"]["status"] == "partial"
    [error] = document["scan"]["errors"]
    assert (error["action"], error["region"], error["code"]) == \
           ("ec2:GetEbsEncryptionByDefault", "eu-west-1", "UnauthorizedOperation")
    statuses = {f["region"]: f["status"] for f in document["findings"]}
    assert statuses == {"eu-west-1": "ERROR", "us-east-1": "FAIL"}


# --------------------------------------------------------------------------------------------------
# checks list
# --------------------------------------------------------------------------------------------------

def test_checks_list_json_and_filters(runner):
    everything = json.loads(runner.invoke(cli, ["checks", "list", "--format", "json"]).stdout)
    ids = [c["id"] for c in everything]
    assert EBS in ids and ids == sorted(ids)
    ebs = next(c for c in everything if c["id"] == EBS)
    assert ebs["requires"] == ["ec2:GetEbsEncryptionByDefault"] and ebs["kind"] == "resource"
    assert ebs["compliance"]["aws-fsbp"] == ["EC2.7"] and ebs["remediation"]["text"]

    s3 = json.loads(runner.invoke(cli, ["checks", "list", "-f", "json", "--service", "s3"]).stdout)
    assert s3 and {c["service"] for c in s3} == {"s3"}
    cis = json.loads(runner.invoke(cli, ["checks", "list", "-f", "json", "--framework", "cis-aws-3.0"]).stdout)
    assert EBS in {c["id"] for c in cis} and all("cis-aws-3.0" in c["compliance"] for c in cis)
    assert len(cis) < len(everything)

    table = runner.invoke(cli, ["checks", "list", "--service", "ec2", "--framework", "aws-fsbp"],
                          env={"COLUMNS": "250"})
    assert table.exit_code == 0 and EBS in table.stdout and "EC2.7" in table.stdout

    for args, message in ((["--framework", "cis-9"], "unknown framework 'cis-9'"),
                          (["--service", "ec2,nope"], "unknown services: nope")):
        bad = runner.invoke(cli, ["checks", "list", *args])
        assert bad.exit_code == 1 and message in bad.output


# --------------------------------------------------------------------------------------------------
# As a real process
# --------------------------------------------------------------------------------------------------

def test_scan_as_a_process_writes_only_the_report_on_stdout(fake):
    _seed_ebs(fake)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CW_")} | {"CW_BENCH": "1"}
    command = [sys.executable, "-m", "app.cli", "scan", "--regions", REGIONS, "--checks", EBS, "--format", "json",
               "--fail-on", "medium"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)   # nothing but the report: no progress, no log line
    assert document["scan"]["account_id"] == CUSTOMER_ACCOUNT   # AWS_ENDPOINT_URL took it to the fake
    assert "cw-bench first_aws_call_unix=" in done.stderr
    assert "Traceback" not in done.stderr

    usage = subprocess.run([sys.executable, "-m", "app.cli", "scan", "--bogus"], cwd=REPO_ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 1 and "No such option" in usage.stderr
    assert usage.stdout == ""
