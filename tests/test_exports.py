"""Exports: every format from the demo account (seeded on the AWS fake, scanned through the API) checked against
the findings list and the formats' own validators (py-ocsf-models, botocore's Security Hub model, an HTML
parser); filters, muting, the route order, isolation, roles, audit and streaming on recorded findings."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import uuid
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from sqlalchemy import select, update

from app.db import session_scope
from app.demo import seed
from app.models import AuditEvent, Finding, MuteRule, Role, ScanRun
from app.reports.formats import csv_cell, to_csv
from app.services import exports as exports_service
from app.services.exports import CSV_COLUMNS, SCAN_CSV_COLUMNS
from tests.findings_helpers import all_pages, coverage_of, make_account, record, record_scan, shape_errors
from tests.scan_helpers import connect_account, run_queued_jobs
from tests.ws_helpers import add_member, make_user

FORMATS = ("json", "csv", "ocsf", "asff", "html")
HOSTILE = "<img src=x onerror=alert(1)>\"'&"
FORMULAS = ["=HYPERLINK(\"http://evil\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]
CHECKS = ["s3_bucket_public_access", "ec2_securitygroup_ingress_all_traffic", "kms_key_rotation_enabled",
          "iam_role_trust_not_public"]
REGIONS = ["us-east-1", "eu-west-1"]
SAVE_TO = os.environ.get("CW_EXPORTS_SAVE")   # a folder: keep the demo's exports to look at them


# --------------------------------------------------------------------------------------------------------------
# Reading the formats back


def _ocsf_valid(events: list[dict]) -> None:
    for event in events:
        model = DetectionFinding.model_validate(event)
        # Nothing the model does not know, nothing of the wrong type: it gives back exactly what we wrote.
        assert model.model_dump(mode="json", exclude_none=True) == event
        assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (2004, 2, 200401)


_HUB = botocore.session.get_session().get_service_model("securityhub")
_IMPORT = _HUB.operation_model("BatchImportFindings").input_shape


def _asff_valid(document: dict) -> list[dict]:
    assert list(document) == ["Findings"]
    findings = document["Findings"]
    for start in range(0, len(findings), 100):   # BatchImportFindings takes up to 100 at a time
        batch = {"Findings": findings[start:start + 100]}
        report = ParamValidator().validate(batch, _IMPORT)
        assert not report.has_errors(), report.generate_report()
        assert shape_errors(_IMPORT, batch) == []
    for f in findings:
        assert f["SchemaVersion"] == "2018-10-08"
        assert len(f["Title"]) <= 256 and len(f["Description"]) <= 1024 and f["Description"]
        account, region = f["AwsAccountId"], f["Region"]
        assert f["ProductArn"] == f"arn:aws:securityhub:{region}:{account}:product/{account}/default"
        assert region != "global" and all(r["Region"] == region for r in f["Resources"])
        assert all(len(t.split("/")) == 3 for t in f["Types"])
        for stamp in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
            datetime.fromisoformat(f[stamp].replace("Z", "+00:00"))
        assert f["CreatedAt"] <= f["UpdatedAt"]
    return findings


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._script = tag == "script"

    def handle_endtag(self, tag):
        self._script = False

    def handle_data(self, data):
        (self.scripts if self._script else self.text).append(data)


def _html(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    tags = [t for t, _ in page.tags]
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    # Self-contained: nothing loaded from elsewhere, no handler attributes, one script (ours, allowed by hash).
    assert tags.count("script") == 1 and "img" not in tags and "iframe" not in tags
    assert not [a for _, attrs in page.tags for a in attrs if a.startswith("on") or a == "src"]
    assert not [a for t, a in page.tags if t == "link"]
    assert "url(" not in text and "@import" not in text
    assert all(a["href"].startswith(("https://", "http://")) for t, a in page.tags if t == "a")   # links, not loads
    [csp] = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    return page


def _rows(page: _Page) -> list[dict]:
    return [a for t, a in page.tags if t == "tr" and "data-status" in a]


async def _export(client, url: str, headers: dict, fmt: str):
    sep = "&" if "?" in url else "?"
    r = await client.get(f"{url}{sep}format={fmt}", headers=headers)
    assert r.status_code == 200, r.text
    media = {"csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}.get(fmt, "application/json")
    assert r.headers["content-type"] == media
    disposition = r.headers["content-disposition"]
    ext = {"ocsf": "ocsf.json", "asff": "asff.json"}.get(fmt, fmt)
    assert disposition.startswith('attachment; filename="cloudwizard-') and disposition.endswith(f'.{ext}"')
    if fmt == "html":
        assert "default-src 'none'" in r.headers["content-security-policy"]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(r.text)))
    return r.text if fmt == "html" else r.json()


# --------------------------------------------------------------------------------------------------------------
# The demo account, every format


async def test_every_format_from_the_demo_account(client, signup, make_workspace, aws_fake):
    seed.seed_account(aws_fake.client)
    owner = await signup()
    ws = await make_workspace(owner["headers"], "Acme Demo")
    h = owner["headers"]
    account = await connect_account(client, aws_fake, h, ws["id"], name="acme-prod", regions=list(seed.REGIONS))
    scans = f"/v1/workspaces/{ws['id']}/aws-accounts/{account['id']}/scans"
    r = await client.post(scans, headers=h)
    assert r.status_code == 202, r.text
    await run_queued_jobs()
    scan = (await client.get(f"{scans}/{r.json()['id']}", headers=h)).json()
    assert scan["status"] in ("succeeded", "partial")
    path = f"/v1/workspaces/{ws['id']}"
    listed = await all_pages(client, f"{path}/findings", h, limit=200)
    assert len(listed) == scan["summary"]["total"] > 300
    assert {"PASS", "FAIL"} <= {f["status"] for f in listed} and len({f["category"] for f in listed}) >= 5

    docs = {fmt: await _export(client, f"{path}/findings/export", h, fmt) for fmt in FORMATS}
    if SAVE_TO:
        folder = Path(SAVE_TO)
        folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a debugging aid, off by default
        for fmt in FORMATS:
            for name, url in (("findings", f"{path}/findings/export"), ("scan", f"{scans}/{scan['id']}/export")):
                r = await client.get(f"{url}?format={fmt}", headers=h)
                (folder / f"{name}.{fmt}").write_bytes(r.content)  # noqa: ASYNC240

    # JSON: exactly the list's items, in the list's order, under a header that counts them.
    document = docs["json"]
    assert list(document) == ["export", "findings"]
    assert document["findings"] == listed
    header = document["export"]
    assert header["workspace"] == {"id": ws["id"], "name": "Acme Demo"}
    assert header["filters"] == {"include_resolved": False, "muted": "exclude"}
    assert header["counts"]["total"] == len(listed)
    assert header["counts"]["by_status"] == {"PASS": 0, "FAIL": 0, "ERROR": 0} | Counter(f["status"] for f in listed)
    # CSV: the same rows in the same order.
    rows = docs["csv"]
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["id"] for r in rows] == [f["id"] for f in listed]
    assert {r["account_id"] for r in rows} == {seed.DEMO_ACCOUNT}
    assert all(r["status"] == f["status"] and r["uid"] == f["uid"] for r, f in zip(rows, listed, strict=True))
    # OCSF: valid Detection Findings, one per finding.
    events = docs["ocsf"]
    _ocsf_valid(events)
    assert [e["finding_info"]["uid"] for e in events] == [f["uid"] for f in listed]
    assert all(e["unmapped"]["finding_id"] == f["id"] for e, f in zip(events, listed, strict=True))
    # ASFF: what BatchImportFindings accepts, one per finding.
    findings = _asff_valid(docs["asff"])
    assert [f["Id"] for f in findings] == [f["uid"] for f in listed]
    assert {f["AwsAccountId"] for f in findings} == {seed.DEMO_ACCOUNT}
    expected = {"PASS": ("PASSED", "RESOLVED"), "FAIL": ("FAILED", "NEW"), "ERROR": ("NOT_AVAILABLE", "NEW")}
    assert [(f["Compliance"]["Status"], f["Workflow"]["Status"]) for f in findings] == [
        expected[f["status"]] for f in listed]
    assert all(f["RecordState"] == "ACTIVE" for f in findings)
    # The catalog's checks carry their remediation (findings of other sources have none to give).
    assert [("Remediation" in a, a["ProductFields"]["cloudwizard/source"]) for a in findings] == [
        (f["source"] == "cloudwizard", f["source"]) for f in listed]
    # The fake's Security Hub takes them too.
    hub = aws_fake.client("securityhub")
    before = len(hub.get_findings(MaxResults=100)["Findings"])
    answer = hub.batch_import_findings(Findings=findings[:100])
    assert answer["FailedCount"] == 0 and answer["SuccessCount"] == 100
    assert len(hub.get_findings(MaxResults=100)["Findings"]) == min(before + 100, 100)
    # HTML: the charts, the table of every finding, no external asset.
    page = _html(docs["html"])
    text = "".join(page.text)
    assert f"Findings ({len(listed):,})" in text and "Acme Demo" in text
    assert len([t for t, _ in page.tags if t == "svg"]) == 5
    for title in ("Failed findings by severity", "Findings by severity", "Findings by category",
                  "Findings by account", "Trend of the latest scans"):
        assert title in text
    assert f"acme-prod ({seed.DEMO_ACCOUNT})" in text
    assert len(_rows(page)) == len(listed)
    assert Counter(r["data-status"] for r in _rows(page)) == Counter(f["status"] for f in listed)

    # A filter narrows every format alike.
    query = "findings/export?severity=critical&severity=high&status=FAIL"
    wanted = await all_pages(client, f"{path}/findings?severity=critical&severity=high&status=FAIL", h, limit=200)
    assert 0 < len(wanted) < len(listed)
    assert (await _export(client, f"{path}/{query}", h, "json"))["findings"] == wanted
    assert [r["id"] for r in await _export(client, f"{path}/{query}", h, "csv")] == [f["id"] for f in wanted]
    assert len(await _export(client, f"{path}/{query}", h, "ocsf")) == len(wanted)
    assert len((await _export(client, f"{path}/{query}", h, "asff"))["Findings"]) == len(wanted)
    assert len(_rows(_html(await _export(client, f"{path}/{query}", h, "html")))) == len(wanted)

    # The scan's export: what it produced, with its summary.
    url = f"{scans}/{scan['id']}/export"
    verdicts = await all_pages(client, f"{scans}/{scan['id']}/findings", h, limit=200)
    produced = [v for v in verdicts if v["status"] is not None]
    sdoc = await _export(client, url, h, "json")
    assert list(sdoc) == ["scan", "findings"]
    head = sdoc["scan"]
    assert head["id"] == scan["id"] and head["account_id"] == seed.DEMO_ACCOUNT and head["account_name"] == "acme-prod"
    assert sorted(head["regions"]) == sorted(seed.REGIONS) and head["status"] == scan["status"]
    assert head["counts"]["total"] == scan["summary"]["total"] == len(sdoc["findings"]) == len(produced)
    assert head["deltas"] == scan["summary"]["deltas"]
    assert sorted(sdoc["findings"], key=lambda v: v["finding"]["id"]) == produced
    ranks = [seed_rank(v["finding"]["severity"]) for v in sdoc["findings"]]
    assert ranks == sorted(ranks, reverse=True)   # most severe first
    srows = await _export(client, url, h, "csv")
    assert tuple(srows[0]) == SCAN_CSV_COLUMNS
    assert [r["id"] for r in srows] == [v["finding"]["id"] for v in sdoc["findings"]]
    assert {r["delta"] for r in srows} == {"new"}
    sevents = await _export(client, url, h, "ocsf")
    _ocsf_valid(sevents)
    assert {e["unmapped"]["scan_id"] for e in sevents} == {scan["id"]} and len(sevents) == len(produced)
    assert {f["ProductFields"]["cloudwizard/scan_id"] for f in _asff_valid(await _export(client, url, h, "asff"))} \
        == {scan["id"]}
    spage = _html(await _export(client, url, h, "html"))
    stext = "".join(spage.text)
    assert f"AWS account acme-prod ({seed.DEMO_ACCOUNT})" in stext and "This account's scans" in stext
    assert "new in this scan" in stext and len(_rows(spage)) == len(produced)


def seed_rank(severity: str) -> int:
    return {"critical": 5, "high": 4, "medium": 3, "low": 2, "informational": 1}[severity]


# --------------------------------------------------------------------------------------------------------------
# Recorded findings: filters, muting, resolution, hostile names


@pytest.fixture
async def world(client, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"], f"Exports {HOSTILE}")
    a = await make_account(ws["id"], "prod")
    b = await make_account(ws["id"], "dev")
    coverage = coverage_of(CHECKS, REGIONS)

    def records(account, drop: int = 0):
        out, n = [], 0
        for check in CHECKS:
            for region in REGIONS:
                for i in range(4):
                    n += 1
                    name = f"{account.name}-{check[:6]}-{i}"
                    message = f"{check} on {name}"
                    if account.name == "prod" and n <= len(FORMULAS):
                        name, message = FORMULAS[n - 1] + HOSTILE, FORMULAS[-n]
                    out.append(record(account, check, region, name, ("PASS", "FAIL", "ERROR")[n % 3],
                                      message=message))
        return out[drop:]

    await record_scan(a, records(a), coverage)
    await record_scan(b, records(b), coverage)
    a2, _ = await record_scan(a, records(a, drop=3), coverage)   # three findings resolved
    # Mute one open finding of each account.
    async with session_scope() as s:
        open_ = (await s.scalars(select(Finding).where(Finding.resolved_at.is_(None)).order_by(Finding.uid))).all()
        muted = [next(f for f in open_ if f.aws_account_id == x.id and f.status == "FAIL") for x in (a, b)]
        for f in muted:
            rule = MuteRule(workspace_id=f.workspace_id, finding_uid=f.uid, reason="accepted", owner="sec",
                            created_by="sec", selectors={"finding_uid": f.uid})
            s.add(rule)
            await s.flush()
            await s.execute(update(Finding).where(Finding.id == f.id).values(mute_rule_id=rule.id))
    return {"h": owner["headers"], "ws": ws, "path": f"/v1/workspaces/{ws['id']}", "a": a, "b": b,
            "scan": a2, "muted": {str(f.id) for f in muted}}


QUERIES = ["", "severity=critical", "account_id={b}", "account_id={a}&status=FAIL&status=ERROR", "muted=only",
           "muted=include", "include_resolved=true", "include_resolved=true&muted=include&sort=last_seen&order=asc",
           "delta=new", "region=eu-west-1&service=s3", "resource=%3Dhyperlink", "sort=first_seen&order=asc"]


async def test_filters_select_exactly_what_the_list_does(client, world):
    path, h = world["path"], world["h"]
    seen = set()
    for query in QUERIES:
        q = query.format(a=world["a"].id, b=world["b"].id)
        listed = await all_pages(client, f"{path}/findings?{q}", h, limit=200)
        url = f"{path}/findings/export?{q}"
        document = await _export(client, url, h, "json")
        assert document["findings"] == listed, q
        assert document["export"]["counts"]["total"] == len(listed), q
        assert [r["id"] for r in await _export(client, url, h, "csv")] == [f["id"] for f in listed], q
        events = await _export(client, url, h, "ocsf")
        _ocsf_valid(events)
        assert [e["unmapped"]["finding_id"] for e in events] == [f["id"] for f in listed], q
        asff = _asff_valid(await _export(client, url, h, "asff"))
        assert [f["ProductFields"]["cloudwizard/finding_id"] for f in asff] == [f["id"] for f in listed], q
        assert len(_rows(_html(await _export(client, url, h, "html")))) == len(listed), q
        seen.add((q, len(listed)))
    counts = dict(seen)
    assert counts[""] > counts["severity=critical"] > 0
    assert counts["muted=only"] == 2 and counts["muted=include"] == counts[""] + 2
    assert counts["include_resolved=true"] == counts[""] + 3


async def test_muted_and_resolved_findings_say_so_in_every_format(client, world):
    path, h = world["path"], world["h"]
    url = f"{path}/findings/export?muted=include&include_resolved=true"
    listed = {f["id"]: f for f in (await _export(client, url, h, "json"))["findings"]}
    resolved = {i for i, f in listed.items() if f["state"] == "resolved"}
    assert len(resolved) == 3 and {i for i, f in listed.items() if f["muted"]} == world["muted"]
    rows = {r["id"]: r for r in await _export(client, url, h, "csv")}
    assert {i for i, r in rows.items() if r["state"] == "resolved"} == resolved
    assert {i for i, r in rows.items() if r["muted"] == "true"} == world["muted"]
    events = {e["unmapped"]["finding_id"]: e for e in await _export(client, url, h, "ocsf")}
    passed = {i for i, f in listed.items() if f["status"] == "PASS"}
    assert {i for i, e in events.items() if (e["status_id"], e["status"]) == (4, "Resolved")} == resolved | passed
    assert {i for i, e in events.items() if e["status_id"] == 3} == world["muted"]
    asff = {f["ProductFields"]["cloudwizard/finding_id"]: f
            for f in _asff_valid(await _export(client, url, h, "asff"))}
    assert {i for i, f in asff.items() if f["RecordState"] == "ARCHIVED"} == resolved
    assert {i for i, f in asff.items() if f["Workflow"]["Status"] == "SUPPRESSED"} == world["muted"]
    page = _html(await _export(client, url, h, "html"))
    text = "".join(page.text)
    assert "resolved" in text and "muted" in text
    cards = [a for t, a in page.tags if t == "div" and a.get("class") == "l"]
    assert len(cards) >= 7   # resolved and muted get cards when they are part of the set


async def test_hostile_names_stay_text_and_csv_cells_never_run(client, world):
    path, h = world["path"], world["h"]
    text = await _export(client, f"{path}/findings/export", h, "html")
    page = _html(text)
    assert HOSTILE not in text and "onerror=alert(1)>" not in text
    assert HOSTILE in "".join(page.text)
    rows = await _export(client, f"{path}/findings/export?include_resolved=true&muted=include", h, "csv")
    starts = tuple(FORMULAS_START)
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(starts), (column, value)
    names = {r["resource_id"] for r in rows}
    assert {"'" + f + HOSTILE for f in FORMULAS} <= names
    assert {"'" + f for f in FORMULAS} <= {r["message"] for r in rows}
    # The terminal scan's CSV writer defuses the same cells the same way.
    assert all(csv_cell(f) == "'" + f for f in FORMULAS) and csv_cell("plain") == "plain"
    assert csv_cell("  =1+1") == "'  =1+1" and csv_cell("a -1") == "a -1"
    assert "'=HYPERLINK" in to_csv(_tiny_report("=HYPERLINK(1)"))


FORMULAS_START = ("=", "+", "-", "@", "\t", "\r")


def _tiny_report(resource_id: str):
    from app.reports import ScanReport

    scan = {"account_id": "123456789012", "partition": "aws", "regions": ["us-east-1"], "status": "succeeded",
            "started_at": datetime.now(UTC), "finished_at": datetime.now(UTC), "errors": []}
    finding = {"uid": "cw-1", "check_id": "kms_key_rotation_enabled", "title": "t", "status": "FAIL",
               "severity": "medium", "service": "kms", "category": "encryption", "region": "us-east-1",
               "account_id": "123456789012", "resource_type": "AwsKmsKey", "resource_id": resource_id,
               "resource_arn": None, "message": "m", "source": "cloudwizard", "compliance": {}}
    return ScanReport.build(scan, [finding], {})


async def test_the_export_route_wins_over_a_finding_id(client, world):
    path, h = world["path"], world["h"]
    r = await client.get(f"{path}/findings/export", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    finding = (await all_pages(client, f"{path}/findings", h, limit=200))[0]
    assert (await client.get(f"{path}/findings/{finding['id']}", headers=h)).json()["id"] == finding["id"]
    r = await client.get(f"{path}/findings/not-a-uuid", headers=h)
    assert r.status_code == 422


@pytest.mark.parametrize("query", ["format=xml", "format=", "format=JSON", "severity=urgent", "muted=sometimes",
                                   "first_seen_since=yesterday", "sort=name"])
async def test_bad_formats_and_filters_are_422_problems(client, world, query):
    for url in (f"{world['path']}/findings/export?{query}",
                f"{world['path']}/aws-accounts/{world['a'].id}/scans/{world['scan']}/export?{query}"):
        if "format" not in query and "/scans/" in url:
            continue
        r = await client.get(url, headers=world["h"])
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_scan_export_of_another_account_or_workspace_is_404(client, world, signup, make_workspace):
    path, h, scan = world["path"], world["h"], world["scan"]
    ok = await client.get(f"{path}/aws-accounts/{world['a'].id}/scans/{scan}/export?format=csv", headers=h)
    assert ok.status_code == 200 and len(list(csv.DictReader(io.StringIO(ok.text)))) > 0
    stranger = await signup()
    theirs = await make_workspace(stranger["headers"], "Theirs")
    for url, headers in (
            (f"{path}/aws-accounts/{world['b'].id}/scans/{scan}/export", h),          # another account's scan
            (f"{path}/aws-accounts/{world['a'].id}/scans/{uuid.uuid4()}/export", h),  # no such scan
            (f"{path}/aws-accounts/{world['a'].id}/scans/{scan}/export", stranger["headers"]),
            (f"/v1/workspaces/{theirs['id']}/aws-accounts/{world['a'].id}/scans/{scan}/export", stranger["headers"]),
            (f"{path}/findings/export", stranger["headers"])):
        r = await client.get(url, headers=headers)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith("application/problem+json")
    # Their own workspace exports nothing of ours.
    r = await client.get(f"/v1/workspaces/{theirs['id']}/findings/export?include_resolved=true&muted=include",
                         headers=stranger["headers"])
    assert r.status_code == 200 and r.json()["findings"] == []


async def test_a_purged_scan_cannot_be_exported(client, world):
    async with session_scope() as s:
        await s.execute(update(ScanRun).where(ScanRun.id == world["scan"]).values(results_purged_at=datetime.now(UTC)))
    r = await client.get(f"{world['path']}/aws-accounts/{world['a'].id}/scans/{world['scan']}/export",
                         headers=world["h"])
    assert r.status_code == 410 and r.headers["content-type"].startswith("application/problem+json")


async def test_viewers_export_and_every_export_is_audited(client, world):
    viewer = await make_user()
    await add_member(world["ws"]["id"], viewer, Role.viewer)
    r = await client.get(f"{world['path']}/findings/export?format=csv&severity=high&account_id={world['a'].id}",
                         headers=viewer.headers)
    assert r.status_code == 200
    r = await client.get(f"{world['path']}/aws-accounts/{world['a'].id}/scans/{world['scan']}/export?format=html",
                         headers=viewer.headers)
    assert r.status_code == 200
    async with session_scope() as s:
        events = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "findings.exported")
                                  .order_by(AuditEvent.created_at))).all()
    assert [(e.actor_id, e.target_type, e.details["format"]) for e in events] == [
        (viewer.id, "workspace", "csv"), (viewer.id, "scan", "html")]
    assert events[0].details["filters"] == {"account_ids": [str(world["a"].id)], "severities": ["high"],
                                            "include_resolved": False, "muted": "exclude"}
    assert events[1].target_id == str(world["scan"])


async def test_the_html_table_stops_at_its_cap_with_a_note(client, world, monkeypatch):
    monkeypatch.setattr(exports_service, "HTML_MAX_ROWS", 5)
    text = await _export(client, f"{world['path']}/findings/export", world["h"], "html")
    page = _html(text)
    total = len(await all_pages(client, f"{world['path']}/findings", world["h"], limit=200))
    assert len(_rows(page)) == 5
    assert f"This table lists the first 5 of {total} findings" in "".join(page.text)
    assert "export CSV or JSON" in "".join(page.text)


# --------------------------------------------------------------------------------------------------------------
# Streaming


async def _asgi_get(app, url: str, headers: dict) -> tuple[dict, list[dict]]:
    """Call the app as an ASGI server would and keep every message it sends: httpx's ASGI transport joins the
    body's pieces, a server passes each one on as it comes."""
    path, _, query = url.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in {**headers, "host": "testserver"}.items()],
             "client": ("203.0.113.10", 50000), "server": ("testserver", 80)}
    sent: list[dict] = []
    requested = False

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()   # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start, [m for m in sent if m["type"] == "http.response.body"]


async def test_a_large_export_is_streamed_in_pieces(app, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await make_account(ws["id"], "big")
    n = 2 * exports_service.CHUNK + 500
    records = [record(account, CHECKS[i % len(CHECKS)], REGIONS[i % 2], f"bucket-{i:05d}", "FAIL")
               for i in range(n)]
    await record_scan(account, records, None)
    url = f"/v1/workspaces/{ws['id']}/findings/export"
    for fmt in FORMATS:
        start, bodies = await _asgi_get(app, f"{url}?format={fmt}", owner["headers"])
        assert start["status"] == 200
        headers = {k.decode(): v.decode() for k, v in start["headers"]}
        assert "content-length" not in headers   # sent chunked: the length was never known up front
        pieces = [m["body"] for m in bodies if m["body"]]
        # The head, one piece per chunk of rows, the tail (CSV has none); every piece but the last says more is
        # coming.
        assert len(pieces) == (1 if fmt == "csv" else 2) + 3, (fmt, len(pieces))
        assert all(m.get("more_body") for m in bodies[:-1]) and not bodies[-1].get("more_body")
        body = b"".join(pieces).decode()
        if fmt == "csv":
            assert len(list(csv.DictReader(io.StringIO(body)))) == n
        elif fmt == "html":
            assert len(_rows(_html(body))) == n
        else:
            document = json.loads(body)
            assert len(document["findings"] if fmt == "json" else document["Findings"] if fmt == "asff"
                       else document) == n


async def test_a_scan_export_breaks_off_if_retention_removes_its_results_midway(app, signup, make_workspace):
    """Never a short file that parses: the transfer stops with an error instead."""
    from sqlalchemy import delete

    from app.models import ScanFinding

    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await make_account(ws["id"], "big")
    n = 2 * exports_service.CHUNK + 10
    scan_id, _ = await record_scan(account, [record(account, CHECKS[0], REGIONS[0], f"bucket-{i:05d}", "FAIL")
                                             for i in range(n)], None)
    url = f"/v1/workspaces/{ws['id']}/aws-accounts/{account.id}/scans/{scan_id}/export"
    path = url
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"format=json", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in {**owner["headers"], "host": "t"}.items()],
             "client": ("203.0.113.10", 50000), "server": ("t", 80)}
    bodies: list[dict] = []
    requested = []

    async def receive() -> dict:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()   # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] != "http.response.body":
            return
        bodies.append(message)
        if len([b for b in bodies if b.get("body")]) == 2:   # the head and the first chunk of rows went out
            async with session_scope() as s:
                await s.execute(update(ScanRun).where(ScanRun.id == scan_id)
                                .values(results_purged_at=datetime.now(UTC)))
                await s.execute(delete(ScanFinding).where(ScanFinding.scan_id == scan_id))

    with pytest.raises(exports_service.ExportAborted):
        await app(scope, receive, send)
    assert bodies and bodies[-1].get("more_body")        # never finished
    with pytest.raises(json.JSONDecodeError):
        json.loads(b"".join(b["body"] for b in bodies))
