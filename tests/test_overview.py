"""The organization view: one posture row per AWS account, worst first, counts matching the findings list."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import update

from app.db import session_scope
from app.models import Finding, MuteRule, ScanRun, ScanStatus
from tests.findings_helpers import all_pages, coverage_of, make_account, record, record_scan

CRIT = "ec2_securitygroup_ingress_all_traffic"   # critical
LOW = "s3_bucket_versioning_enabled"
CHECKS = [CRIT, LOW]


async def test_each_account_side_by_side_worst_first(client, signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    h, base = owner["headers"], f"/v1/workspaces/{ws['id']}"
    prod = await make_account(ws["id"], "prod")
    dev = await make_account(ws["id"], "dev")
    never = await make_account(ws["id"], "never-scanned")
    cov = coverage_of(CHECKS, ["us-east-1"])
    # dev: one critical failure; prod: low failures only, a resolved finding and a muted one.
    await record_scan(dev, [record(dev, CRIT, "us-east-1", "sg-1", "FAIL"),
                            record(dev, LOW, "us-east-1", "b-1", "PASS")], cov)
    await record_scan(prod, [record(prod, LOW, "us-east-1", f"b-{i}", "FAIL") for i in range(4)]
                      + [record(prod, CRIT, "us-east-1", "sg-9", "PASS"),
                         record(prod, LOW, "us-east-1", "gone", "FAIL")], cov)
    second, _ = await record_scan(prod, [record(prod, LOW, "us-east-1", f"b-{i}", "FAIL") for i in range(4)]
                                  + [record(prod, CRIT, "us-east-1", "sg-9", "PASS")], cov)
    async with session_scope() as s:
        rule = MuteRule(workspace_id=prod.workspace_id, check_id=LOW, resource_pattern="b-0", reason="accepted",
                        owner="sec", created_by="sec", selectors={"check_id": LOW})
        s.add(rule)
        await s.flush()
        await s.execute(update(Finding).where(Finding.aws_account_id == prod.id, Finding.resource_id == "b-0")
                        .values(mute_rule_id=rule.id))
        # A later scan of dev that failed: the latest scan, but not the latest results.
        failed = ScanRun(workspace_id=dev.workspace_id, aws_account_id=dev.id, status=ScanStatus.failed,
                         error="role revoked", regions=[], progress={}, summary={}, collection_errors=[])
        s.add(failed)

    r = await client.get(f"{base}/findings/summary/accounts", headers=h)
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert [row["name"] for row in rows] == ["dev", "prod", "never-scanned"]   # critical failures first
    by_name = {row["name"]: row for row in rows}

    for account, name in ((prod, "prod"), (dev, "dev")):
        listed = await all_pages(client, f"{base}/findings?account_id={account.id}", h)
        row = by_name[name]
        statuses = Counter(f["status"] for f in listed)
        assert row["open"] == {"key": str(account.id), "label": name, "total": len(listed),
                               "passed": statuses["PASS"], "failed": statuses["FAIL"], "errored": statuses["ERROR"]}
        failing = Counter(f["severity"] for f in listed if f["status"] == "FAIL")
        assert {k: v for k, v in row["failed_by_severity"].items() if v} == dict(failing)
        assert list(row["failed_by_severity"]) == ["critical", "high", "medium", "low", "informational"]
        muted = await all_pages(client, f"{base}/findings?account_id={account.id}&muted=only", h)
        assert row["muted"] == len(muted)
        everything = await all_pages(client, f"{base}/findings?account_id={account.id}&include_resolved=true", h)
        resolved = [f for f in everything if f["state"] == "resolved"]
        assert row["resolved"] == len(resolved)

    assert by_name["prod"]["muted"] == 1 and by_name["prod"]["resolved"] == 1
    assert by_name["prod"]["open"]["failed"] == 3 and by_name["prod"]["pass_rate"] == 0.25
    assert by_name["prod"]["failed_by_source"] == {"cloudwizard": 3}
    assert by_name["prod"]["last_results"]["scan_id"] == str(second)
    assert by_name["prod"]["last_results"]["deltas"]["resolved"] == 1
    assert by_name["dev"]["last_scan"]["status"] == "failed" and by_name["dev"]["last_scan"]["error"]
    assert by_name["dev"]["last_results"]["status"] == "succeeded"
    empty = by_name["never-scanned"]
    assert empty["aws_account_id"] == str(never.id) and empty["open"]["total"] == 0 and empty["pass_rate"] is None
    assert empty["last_scan"] is None and empty["last_results"] is None


async def test_other_workspaces_accounts_are_not_listed(client, signup, make_workspace):
    a, b = await signup(), await signup()
    ws_a = await make_workspace(a["headers"])
    ws_b = await make_workspace(b["headers"])
    acct = await make_account(ws_b["id"], "theirs")
    await record_scan(acct, [record(acct, CRIT, "us-east-1", "sg-1", "FAIL")], coverage_of(CHECKS, ["us-east-1"]))
    mine = (await client.get(f"/v1/workspaces/{ws_a['id']}/findings/summary/accounts", headers=a["headers"])).json()
    assert mine == {"items": []}
    r = await client.get(f"/v1/workspaces/{ws_b['id']}/findings/summary/accounts", headers=a["headers"])
    assert r.status_code == 404
