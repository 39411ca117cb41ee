"""Defects found reviewing muting, exports, ingestion, the organization view and retention: each test pins one fix."""

from __future__ import annotations

import base64
import json

import botocore.session
import pytest

from app.scanners.external import guardduty_record, securityhub_record
from app.scanners.guardduty import GuardDutyFinding
from app.scanners.securityhub import SecurityHubFinding
from tests.findings_helpers import coverage_of, findings_by_uid, make_account, record, record_scan, shape_errors
from tests.logging_helpers import REGION, asff
from tests.test_external_findings import _scan, setup  # noqa: F401  (the fixture)
from tests.ws_helpers import assert_problem, make_team

CHECK = "s3_bucket_versioning_enabled"


# --------------------------------------------------------------------------------------------------------------
# A findings cursor whose id is not a string is a bad cursor (422), not a 500.


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("payload", [
    ["severity", "desc", 3, 123], ["severity", "desc", 3, [1]], ["severity", "desc", 3, {"a": 1}],
    ["severity", "desc", 3, True], ["last_seen", "desc", "2024-01-01T00:00:00+00:00", 5],
])
async def test_a_cursor_with_a_non_string_id_is_refused(client, payload):
    team = await make_team(client, name="Cursors")
    account = await make_account(team.workspace_id, "prod")
    await record_scan(account, [record(account, CHECK, "us-east-1", f"b{i}", "FAIL") for i in range(3)],
                      coverage_of([CHECK], ["us-east-1"]))
    for muted in ("exclude", "only", "include"):
        r = await client.get(f"{team.path}/findings", headers=team.member.headers,
                             params={"cursor": _cursor(payload), "sort": payload[0], "muted": muted, "limit": 1})
        body = assert_problem(r, 422, "validation-error")
        assert body["errors"][0]["loc"] == ["query", "cursor"]


# --------------------------------------------------------------------------------------------------------------
# A NUL character in an ingested finding (any integration can import one into Security Hub) does not break the
# scan: PostgreSQL refuses NUL in text, which failed the whole upsert and so every scan of the account.


async def test_a_nul_character_in_an_ingested_finding_does_not_fail_the_scan(client, setup, aws_fake):  # noqa: F811
    hub = aws_fake.client("securityhub")
    hub.enable_security_hub()
    finding = asff("nul\x00id", title="bad\x00title", resource_id="arn:aws:s3:::bucket\x00x")
    finding["Description"] = "desc\x00with nul"
    finding["Resources"][0]["Tags"] = {"env\x00": "sand\x00box"}
    hub.batch_import_findings(Findings=[finding, asff("fine", title="A fine finding")])

    body = await _scan(client, setup)
    assert body["status"] == "succeeded", body
    rows = [f for f in (await findings_by_uid()).values() if f.source == "securityhub"]
    assert sorted(f.title for f in rows) == ["A fine finding", "bad\ufffdtitle"]
    for f in rows:
        text = json.dumps([f.title, f.message, f.source_id, f.resource_id, f.resource_arn, f.resource_tags,
                           f.details], ensure_ascii=False)
        assert "\x00" not in text and "\\u0000" not in text


def test_ingested_text_is_scrubbed_of_nul_and_lone_surrogates():
    gd = GuardDutyFinding(finding_id="id\x00", type="Recon:EC2/Port\x00Probe", severity=5.0, title="t\ud800",
                          description="d\x00", resource_id="i-0\x00", resource_tags={"k\x00": "v\udfff"})
    sh = SecurityHubFinding(finding_id="sh\x00", title="t\x00", description="\ud83d", resource_id="arn:aws:x\x00",
                            types=["TTPs/\x00"], resource_tags={"a": "\x00"}, control_id="S3.\x001")
    for rec in (guardduty_record(gd, "123456789012", REGION), securityhub_record(sh, "123456789012", REGION)):
        text = json.dumps([rec.uid, rec.check_id, rec.title, rec.message, rec.source_id, rec.resource_id,
                           rec.resource_arn, rec.resource_tags, rec.details], ensure_ascii=False)
        assert "\x00" not in text and "\\u0000" not in text
        text.encode("utf-8")   # no lone surrogate left: a driver could not encode it


# --------------------------------------------------------------------------------------------------------------
# ASFF: every string Security Hub's model constrains by a pattern matches it. Security Hub validates findings
# against the patterns (a JSON schema, so unanchored): a resource tag with an empty value, which AWS allows,
# made the whole finding "not adhere to the AWS Security Finding Format".

_HUB = botocore.session.get_session().get_service_model("securityhub")
_FINDING = _HUB.shape_for("AwsSecurityFinding")


async def test_asff_export_matches_security_hub_patterns_with_empty_tag_values(client):
    team = await make_team(client, name="Tags")
    account = await make_account(team.workspace_id, "prod")
    tags = {"env": "", "blank": "  ", " ": "space-key", "owner": "alice"}
    await record_scan(account, [record(account, CHECK, "us-east-1", "bucket-1", "FAIL", resource_tags=tags),
                                record(account, CHECK, "global", "bucket-2", "PASS", resource_tags={"env": ""})],
                      coverage_of([CHECK], ["us-east-1"]))
    r = await client.get(f"{team.path}/findings/export?format=asff", headers=team.member.headers)
    assert r.status_code == 200
    findings = r.json()["Findings"]
    assert len(findings) == 2
    errors = [e for f in findings for e in shape_errors(_FINDING, f)]
    assert errors == []
    tagged = next(f for f in findings if f["Resources"][0]["Id"].endswith("bucket-1"))
    assert tagged["Resources"][0]["Tags"] == {"owner": "alice"}
    assert "Tags" not in next(f for f in findings if f is not tagged)["Resources"][0]
