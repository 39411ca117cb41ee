"""Findings API: filters, sorted cursor pagination, summaries and trends, detail with history, a scan's results.

Two accounts' scans are recorded through the lifecycle service (the scan job's own write path) so the workspace
holds findings of every severity, status, delta and age; expectations are computed from the database rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.checks.base import Severity
from app.db import session_scope
from app.models import Finding, ScanFinding
from app.services.findings import latest_scan_ids
from tests.findings_helpers import all_pages, coverage_of, make_account, record, record_scan

CHECKS = ["s3_bucket_public_access", "ec2_securitygroup_ingress_all_traffic", "kms_key_rotation_enabled",
          "s3_bucket_versioning_enabled", "kms_key_pending_deletion"]
REGIONS = ["us-east-1", "eu-west-1"]
STATUSES = ["PASS", "FAIL", "ERROR"]
RANK = {s.value: s.rank for s in Severity}


def _records(account, *, flip: set[int] = frozenset(), drop: set[int] = frozenset(), extra: int = 0):
    out, n = [], 0
    for check in CHECKS:
        for region in REGIONS:
            for i in range(6):
                n += 1
                if n in drop:
                    continue
                name = f"odd%Name_{i}" if i == 5 else f"res-{account.name}-{i}"
                status = STATUSES[(n + i) % 3]
                if n in flip:
                    status = "PASS" if status != "PASS" else "FAIL"
                out.append(record(account, check, region, name, status))
    out += [record(account, CHECKS[i % 5], "us-east-1", f"new-{account.name}-{i}", "FAIL") for i in range(extra)]
    return out


@pytest.fixture
async def world(client, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    a = await make_account(ws["id"], "prod")
    b = await make_account(ws["id"], "dev")
    coverage = coverage_of(CHECKS, REGIONS)
    marks = {"t0": datetime.now(UTC)}
    a1, _ = await record_scan(a, _records(a), coverage)
    await asyncio.sleep(0.01)
    marks["t1"] = datetime.now(UTC)
    b1, _ = await record_scan(b, _records(b), coverage)
    # A finding from another source: listed and filtered, never resolved by scans.
    await record_scan(b, [record(b, CHECKS[0], "us-east-1", "hub-1", "FAIL", source="securityhub")], None)
    await asyncio.sleep(0.01)
    marks["t2"] = datetime.now(UTC)
    a2, deltas = await record_scan(a, _records(a, flip={1, 2, 3, 20}, drop={4, 5, 30, 31}, extra=3), coverage)
    assert deltas == {"new": 3, "changed": 4, "resolved": 4, "reopened": 0, "unchanged": 60 - 8}
    marks["t3"] = datetime.now(UTC)
    return {"h": owner["headers"], "ws": ws, "path": f"/v1/workspaces/{ws['id']}", "a": a, "b": b,
            "scans": {"a1": a1, "b1": b1, "a2": a2}, **marks}


async def _rows() -> list[tuple[Finding, str | None]]:
    """Every finding with its delta in its account's latest scan."""
    async with session_scope() as s:
        findings = (await s.scalars(select(Finding))).all()
        ws = findings[0].workspace_id
        latest = await latest_scan_ids(s, ws)
        deltas = dict((await s.execute(select(ScanFinding.finding_id, ScanFinding.delta)
                                       .where(ScanFinding.scan_id.in_(latest)))).tuples().all())
    return [(f, deltas[f.id].value if f.id in deltas else None) for f in findings]


async def _walk(client, url: str, headers: dict, limit: int = 7) -> list[dict]:
    """Small pages by default: the cursor is what these tests exercise."""
    return await all_pages(client, url, headers, limit)


def _expected_order(rows: list[Finding], sort: str, order: str) -> list[str]:
    def key(f: Finding):
        value = {"severity": RANK[f.severity], "last_seen": f.last_seen_at, "first_seen": f.first_seen_at}[sort]
        return (value, f.id)

    return [str(f.id) for f in sorted(rows, key=key, reverse=order == "desc")]


@pytest.mark.parametrize("sort", ["severity", "last_seen", "first_seen"])
@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_pages_walk_every_sort_without_duplicates_or_gaps(client, world, sort, order):
    rows = await _rows()
    open_rows = [f for f, _ in rows if f.resolved_at is None]
    items = await _walk(client, f"{world['path']}/findings?sort={sort}&order={order}", world["h"])
    assert [i["id"] for i in items] == _expected_order(open_rows, sort, order)
    # The same with a filter, resolved findings included, and another page size.
    failing = [f for f, _ in rows if f.status == "FAIL"]
    items = await _walk(client, f"{world['path']}/findings?sort={sort}&order={order}&status=FAIL"
                                "&include_resolved=true", world["h"], limit=5)
    assert [i["id"] for i in items] == _expected_order(failing, sort, order)


async def test_default_order_is_severity_then_id_and_items_carry_their_lifecycle(client, world):
    r = await client.get(f"{world['path']}/findings?limit=200", headers=world["h"])
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["id"] for i in items] == _expected_order([f for f, _ in await _rows() if f.resolved_at is None],
                                                       "severity", "desc")
    assert items[0]["severity"] == "critical" and items[-1]["severity"] == "informational"
    deltas = {i["id"]: i["last_delta"] for i in items}
    expected = {str(f.id): d for f, d in await _rows() if f.resolved_at is None}
    assert deltas == expected
    assert all(i["state"] == "open" and i["resolved_at"] is None for i in items)


FILTERS = [
    ("account_id={a}", lambda f, d, w: f.aws_account_id == w["a"].id and f.resolved_at is None),
    ("account_id={a}&account_id={b}", lambda f, d, w: f.resolved_at is None),
    ("region=eu-west-1", lambda f, d, w: f.region == "eu-west-1" and f.resolved_at is None),
    ("service=s3", lambda f, d, w: f.service == "s3" and f.resolved_at is None),
    ("category=encryption", lambda f, d, w: f.category == "encryption" and f.resolved_at is None),
    ("check_id=kms_key_rotation_enabled&check_id=s3_bucket_versioning_enabled",
     lambda f, d, w: f.check_id in ("kms_key_rotation_enabled", "s3_bucket_versioning_enabled")
     and f.resolved_at is None),
    ("severity=critical&severity=high", lambda f, d, w: f.severity in ("critical", "high") and f.resolved_at is None),
    ("status=FAIL", lambda f, d, w: f.status == "FAIL" and f.resolved_at is None),
    ("status=PASS&status=ERROR", lambda f, d, w: f.status in ("PASS", "ERROR") and f.resolved_at is None),
    ("source=securityhub", lambda f, d, w: f.source == "securityhub"),
    ("resource=ODD%25name", lambda f, d, w: "odd%name" in f.resource_id.lower() and f.resolved_at is None),
    ("resource=PROD-4", lambda f, d, w: "prod-4" in f.resource_id and f.resolved_at is None),
    ("resource=d_4", lambda f, d, w: False),          # `_` is literal: "res-prod-4" does not match
    ("resource=res%25prod", lambda f, d, w: False),   # `%` too
    ("resource={b_number}", lambda f, d, w: f.aws_account_id == w["b"].id and f.resolved_at is None),  # in the ARN
    ("delta=new", lambda f, d, w: d == "new"),
    ("delta=changed&delta=unchanged", lambda f, d, w: d in ("changed", "unchanged")),
    ("delta=resolved", lambda f, d, w: False),
    ("delta=resolved&include_resolved=true", lambda f, d, w: d == "resolved"),
    ("include_resolved=true", lambda f, d, w: True),
    ("first_seen_since={t2}", lambda f, d, w: f.first_seen_at >= w["t2"]),
    ("first_seen_until={t1}", lambda f, d, w: f.first_seen_at < w["t1"] and f.resolved_at is None),
    ("first_seen_until={t1}&include_resolved=true", lambda f, d, w: f.first_seen_at < w["t1"]),
    ("last_seen_since={t1}&last_seen_until={t2}", lambda f, d, w: f.aws_account_id == w["b"].id),
    ("last_seen_until={t1}&include_resolved=true", lambda f, d, w: f.resolved_at is not None),
    ("service=kms&status=FAIL&region=us-east-1&account_id={a}",
     lambda f, d, w: (f.service, f.status, f.region, f.aws_account_id) == ("kms", "FAIL", "us-east-1", w["a"].id)
     and f.resolved_at is None),
]


async def test_filters(client, world):
    rows = await _rows()
    values = {"a": world["a"].id, "b": world["b"].id, "b_number": world["b"].aws_account_id,
              **{t: world[t].isoformat().replace("+00:00", "Z") for t in ("t0", "t1", "t2", "t3")}}
    for query, predicate in FILTERS:
        items = await _walk(client, f"{world['path']}/findings?{query.format(**values)}", world["h"], limit=50)
        expected = {str(f.id) for f, d in rows if predicate(f, d, world)}
        assert [i["id"] for i in items if i["id"] not in expected] == [], query
        assert {i["id"] for i in items} == expected, query
        assert len(items) == len(expected), query
    # The filters really select: all but the deliberately empty ones match something.
    assert {q for q, p in FILTERS if not any(p(f, d, world) for f, d in rows)} == {
        "delta=resolved", "resource=d_4", "resource=res%25prod"}


def _cursor(sort: str, order: str, key) -> str:
    """A well-formed cursor around a key no page could have produced."""
    from app.services.findings import encode_sort_cursor

    return f"sort={sort}&order={order}&cursor={encode_sort_cursor(sort, order, key, uuid.uuid4())}"


@pytest.mark.parametrize("query", [
    "cursor=bm90LWEtY3Vyc29y", "cursor=%%%", "severity=urgent", "status=FAILED", "delta=gone", "sort=name",
    "order=sideways", "first_seen_since=2026-01-01T00:00:00", "last_seen_until=yesterday", "limit=0",
    "account_id=nope", "resource=", "resource=a%00b", "category=%1F",
    "first_seen_since=0001-01-01T00:00:00%2B01:00", _cursor("severity", "desc", 10**30),
    _cursor("last_seen", "desc", "0001-01-01T00:00:00+01:00"), _cursor("first_seen", "desc", 5),
    "&".join(["region=r"] * 51),
])
async def test_bad_filters_are_refused_with_problem_details(client, world, query):
    r = await client.get(f"{world['path']}/findings?{query}", headers=world["h"])
    assert r.status_code == 422, (query, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_cursor_cannot_be_reused_under_another_sort(client, world):
    r = await client.get(f"{world['path']}/findings?limit=3&sort=last_seen", headers=world["h"])
    cursor = r.json()["next_cursor"]
    assert cursor
    r = await client.get(f"{world['path']}/findings?limit=3&cursor={cursor}", headers=world["h"])
    assert r.status_code == 422 and "another sort" in r.json()["detail"]
    r = await client.get(f"{world['path']}/findings?limit=3&sort=last_seen&order=asc&cursor={cursor}",
                         headers=world["h"])
    assert r.status_code == 422


def _counts(rows) -> dict[str, int]:
    c = Counter(f.status for f in rows)
    return {"total": len(rows), "passed": c["PASS"], "failed": c["FAIL"], "errored": c["ERROR"]}


@pytest.mark.parametrize("scope", ["workspace", "account"])
async def test_summary_counts_and_trend(client, world, scope):
    account = world["a"] if scope == "account" else None
    query = f"?account_id={account.id}" if account else ""
    r = await client.get(f"{world['path']}/findings/summary{query}", headers=world["h"])
    assert r.status_code == 200, r.text
    body = r.json()
    rows = [f for f, _ in await _rows() if account is None or f.aws_account_id == account.id]
    open_rows = [f for f in rows if f.resolved_at is None]
    assert {k: body["open"][k] for k in ("total", "passed", "failed", "errored")} == _counts(open_rows)
    assert body["resolved"] == len(rows) - len(open_rows) == 4

    def grouped(attr):
        groups = defaultdict(list)
        for f in open_rows:
            groups[str(getattr(f, attr))].append(f)
        return {k: _counts(v) for k, v in groups.items()}

    def buckets(name):
        return {b["key"]: {k: b[k] for k in ("total", "passed", "failed", "errored")} for b in body[name]
                if b["total"]}

    assert buckets("by_severity") == grouped("severity")
    assert [b["key"] for b in body["by_severity"]] == ["critical", "high", "medium", "low", "informational"]
    assert buckets("by_category") == grouped("category")
    assert buckets("by_account") == grouped("aws_account_id")
    labels = {b["key"]: b["label"] for b in body["by_account"]}
    assert labels[str(world["a"].id)] == "prod" and (account or labels[str(world["b"].id)] == "dev")

    trend = body["trend"]
    expected_scans = [world["scans"]["a1"], world["scans"]["a2"]] if account else None
    if expected_scans:
        assert [p["scan_id"] for p in trend] == [str(s) for s in expected_scans]
    else:
        assert len(trend) == 4 and trend[-1]["scan_id"] == str(world["scans"]["a2"])
    last = trend[-1]
    assert last["deltas"] == {"new": 3, "changed": 4, "resolved": 4, "reopened": 0, "unchanged": 52}
    assert last["total"] == 59 and last["passed"] + last["failed"] + last["errored"] == 59
    r = await client.get(f"{world['path']}/findings/summary?scans=1{'&' + query[1:] if query else ''}",
                         headers=world["h"])
    assert [p["scan_id"] for p in r.json()["trend"]] == [str(world["scans"]["a2"])]


async def test_detail_has_history_and_check_metadata(client, world):
    rows = await _rows()
    changed = next(f for f, d in rows if d == "changed")
    r = await client.get(f"{world['path']}/findings/{changed.id}", headers=world["h"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(changed.id) and body["last_delta"] == "changed" and body["state"] == "open"
    assert [(e["delta"], e["scan_id"]) for e in body["history"]] == [
        ("changed", str(world["scans"]["a2"])), ("new", str(world["scans"]["a1"]))]
    assert body["history"][0]["from_status"] != body["history"][0]["to_status"] == changed.status
    assert body["history_total"] == 2
    assert body["check"]["id"] == changed.check_id and len(body["check"]["remediation"]["text"]) >= 10

    hub = next(f for f, _ in rows if f.source == "securityhub")
    r = await client.get(f"{world['path']}/findings/{hub.id}", headers=world["h"])
    assert r.status_code == 200 and r.json()["check"] is None

    r = await client.get(f"{world['path']}/findings/{uuid.uuid4()}", headers=world["h"])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(f"{world['path']}/findings/not-a-uuid", headers=world["h"])
    assert r.status_code == 422


async def test_a_scans_results_with_deltas(client, world):
    a, scan = world["a"], world["scans"]["a2"]
    url = f"{world['path']}/aws-accounts/{a.id}/scans/{scan}/findings"
    async with session_scope() as s:
        verdicts = {str(v.finding_id): v for v in (await s.scalars(
            select(ScanFinding).where(ScanFinding.scan_id == scan))).all()}
    items = await _walk(client, url, world["h"], limit=9)
    assert [i["finding"]["id"] for i in items] == sorted(verdicts, key=uuid.UUID)
    assert all(i["delta"] == verdicts[i["finding"]["id"]].delta.value for i in items)
    assert Counter(i["delta"] for i in items) == {"new": 3, "changed": 4, "resolved": 4, "unchanged": 52}

    resolved = await _walk(client, f"{url}?delta=resolved", world["h"])
    assert len(resolved) == 4
    assert all(i["status"] is None and i["previous_status"] and i["finding"]["state"] == "resolved"
               for i in resolved)
    changed = await _walk(client, f"{url}?delta=changed&delta=new", world["h"])
    assert len(changed) == 7
    assert all((i["previous_status"] is None) == (i["delta"] == "new") for i in changed)
    failing = await _walk(client, f"{url}?status=FAIL&severity=critical", world["h"])
    assert failing and all(i["status"] == "FAIL" and i["finding"]["severity"] == "critical" for i in failing)
    assert len(failing) == sum(1 for i in items if i["status"] == "FAIL" and i["finding"]["severity"] == "critical")

    # The scan belongs to account a: through account b, or unknown, it is not found.
    for bad in (f"{world['path']}/aws-accounts/{world['b'].id}/scans/{scan}/findings",
                f"{world['path']}/aws-accounts/{a.id}/scans/{uuid.uuid4()}/findings"):
        r = await client.get(bad, headers=world["h"])
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get(f"{url}?delta=sideways", headers=world["h"])
    assert r.status_code == 422


async def test_other_workspaces_see_nothing(client, world, signup, make_workspace):
    stranger = await signup()
    theirs = await make_workspace(stranger["headers"], "Theirs")
    finding = (await _rows())[0][0]
    for url in (f"{world['path']}/findings", f"{world['path']}/findings/summary",
                f"{world['path']}/findings/{finding.id}"):
        r = await client.get(url, headers=stranger["headers"])
        assert r.status_code == 404, url
    # Their own workspace is empty, even when asked for our ids.
    r = await client.get(f"/v1/workspaces/{theirs['id']}/findings?include_resolved=true", headers=stranger["headers"])
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(f"/v1/workspaces/{theirs['id']}/findings/{finding.id}", headers=stranger["headers"])
    assert r.status_code == 404
    r = await client.get(f"/v1/workspaces/{theirs['id']}/findings/summary", headers=stranger["headers"])
    assert r.json()["open"]["total"] == 0 and r.json()["trend"] == []



async def test_a_long_history_is_capped_newest_first(client, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await make_account(ws["id"], "flappy")
    coverage = coverage_of(["ec2_ebs_default_encryption"], ["us-east-1"])
    for i in range(101):  # a finding that flips on every scan: new, then 100 changes
        await record_scan(account, [record(account, "ec2_ebs_default_encryption", "us-east-1", "ebs",
                                           "FAIL" if i % 2 == 0 else "PASS")], coverage)
    async with session_scope() as s:
        finding = (await s.scalars(select(Finding))).one()
    r = await client.get(f"/v1/workspaces/{ws['id']}/findings/{finding.id}", headers=owner["headers"])
    body = r.json()
    assert body["history_total"] == 101 and len(body["history"]) == 100
    assert body["history"][0]["delta"] == "changed" and body["history"][0]["to_status"] == "FAIL"
    assert [e["id"] for e in body["history"]] == sorted((e["id"] for e in body["history"]), reverse=True)
    assert all(e["delta"] == "changed" for e in body["history"])  # the oldest one, `new`, is beyond the cap
