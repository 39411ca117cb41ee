"""Scan API and job: queue, run (in-process or arq), progress, one active scan per account, cancel,
re-runs without duplicates, revoked roles, AccessDenied on one service, throttling, time limits."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope
from app.models import AwsAccount, Finding, ScanRun, ScanStatus
from app.tasks.scans import run_scan_job
from tests.scan_helpers import connect_account, run_queued_jobs

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture
async def setup(client, signup, make_workspace, aws_fake):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await connect_account(client, aws_fake, owner["headers"], ws["id"], regions=REGIONS)
    base = f"/v1/workspaces/{ws['id']}/aws-accounts/{account['id']}/scans"
    return {"owner": owner, "ws": ws, "account": account, "base": base, "h": owner["headers"]}


async def _finding_count() -> int:
    async with session_scope() as s:
        return await s.scalar(select(func.count()).select_from(Finding))


async def test_scan_runs_to_completion_and_writes_findings(client, setup, aws_fake):
    aws_fake.client("ec2", "eu-west-1").enable_ebs_encryption_by_default()
    r = await client.post(setup["base"], headers=setup["h"])
    assert r.status_code == 202, r.text
    assert r.headers["X-Scan-Created"] == "true"
    scan = r.json()
    assert scan["status"] in ("queued", "running", "succeeded")
    await run_queued_jobs()
    r = await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])
    body = r.json()
    # Every call of every collector succeeded against the simulated account: no guessed results anywhere.
    assert body["status"] == "succeeded", body["collection_errors"]
    assert body["collection_errors"] == [] and body["error"] is None
    assert body["regions"] == REGIONS
    assert body["progress"]["regions_done"] == body["progress"]["regions_total"] == 2
    assert body["progress"]["services_done"] == body["progress"]["services_total"] > 10
    summary = body["summary"]
    assert summary["total"] == summary["passed"] + summary["failed"] + summary["errored"] == await _finding_count()
    assert summary["errored"] == 0
    async with session_scope() as s:
        rows = (await s.scalars(select(Finding).where(Finding.check_id == "ec2_ebs_default_encryption"))).all()
    by_region = {f.region: f.status for f in rows}
    assert by_region == {"eu-west-1": "PASS", "us-east-1": "FAIL"}
    assert all(f.resource_arn and f.resource_arn.startswith("arn:aws:ec2:") for f in rows)
    # Scan listings, account-level and workspace-level.
    r = await client.get(setup["base"], headers=setup["h"])
    assert [s["id"] for s in r.json()["items"]] == [scan["id"]]
    r = await client.get(f"/v1/workspaces/{setup['ws']['id']}/scans", headers=setup["h"])
    assert [s["id"] for s in r.json()["items"]] == [scan["id"]]


async def test_second_request_returns_the_active_scan(client, setup, aws_fake):
    aws_fake.configure(latency_ms=300)  # keep the first scan running
    first = (await client.post(setup["base"], headers=setup["h"])).json()
    r = await client.post(setup["base"], headers=setup["h"])
    assert r.status_code == 202 and r.headers["X-Scan-Created"] == "false"
    assert r.json()["id"] == first["id"]
    aws_fake.configure(latency_ms=0)
    await run_queued_jobs()
    async with session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(ScanRun)) == 1


async def test_rerun_of_a_job_is_idempotent_and_crash_rerun_equals_clean_run(client, setup):
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    async with session_scope() as s:
        before = {(f.uid, f.status) for f in (await s.scalars(select(Finding))).all()}
    # Running the finished job again changes nothing.
    assert await run_scan_job({"job_try": 1}, scan["id"]) == "succeeded"
    # A worker killed mid-scan leaves the scan "running": the re-run repeats it and upserts by uid.
    async with session_scope() as s:
        row = await s.get(ScanRun, uuid.UUID(scan["id"]))
        row.status = ScanStatus.running
        row.finished_at = None
    assert await run_scan_job({"job_try": 2}, scan["id"]) == "succeeded"
    async with session_scope() as s:
        after = {(f.uid, f.status) for f in (await s.scalars(select(Finding))).all()}
        attempts = (await s.get(ScanRun, uuid.UUID(scan["id"]))).attempts
    assert after == before and len(after) == await _finding_count()
    assert attempts == 2


async def test_cancel_queued_scan(client, setup, aws_fake, monkeypatch):
    # Hold the job back so the scan stays queued.
    import app.services.scans as scans_service

    async def no_enqueue(scan_id):
        return None

    monkeypatch.setattr(scans_service, "enqueue_scan", no_enqueue)
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    assert scan["status"] == "queued"
    r = await client.post(f"{setup['base']}/{scan['id']}/cancel", headers=setup["h"])
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    r = await client.post(f"{setup['base']}/{scan['id']}/cancel", headers=setup["h"])
    assert r.status_code == 409
    assert await run_scan_job({"job_try": 1}, scan["id"]) == "cancelled"
    assert await _finding_count() == 0


async def test_cancel_running_scan_stops_and_writes_nothing(client, setup, aws_fake):
    aws_fake.configure(latency_ms=400)
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    r = await client.post(f"{setup['base']}/{scan['id']}/cancel", headers=setup["h"])
    assert r.status_code == 202
    aws_fake.configure(latency_ms=0)
    await run_queued_jobs()
    r = await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])
    assert r.json()["status"] == "cancelled"
    assert await _finding_count() == 0


async def test_revoked_role_marks_account_revoked_and_fails_without_retry(client, setup, aws_fake):
    iam = aws_fake.client("iam")
    role_name = setup["account"]["role_arn"].rsplit("/", 1)[-1]
    someone_else = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                    "Action": "sts:AssumeRole"}
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [someone_else]}))
    denied_before = aws_fake.stats()["denied"].get("sts:AssumeRole", 0)  # verify's confused-deputy probes
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    body = (await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])).json()
    assert body["status"] == "failed" and "revoked" in body["error"]
    async with session_scope() as s:
        account = await s.get(AwsAccount, uuid.UUID(setup["account"]["id"]))
        assert account.status.value == "revoked"
    # Denied once, not retried in a storm.
    assert aws_fake.stats()["denied"].get("sts:AssumeRole", 0) - denied_before == 1
    r = await client.get(f"/v1/workspaces/{setup['ws']['id']}/audit-events?action=aws_account.revoked",
                         headers=setup["h"])
    assert r.json()["items"] and r.json()["items"][0]["actor_type"] == "system"
    # A revoked account cannot be scanned.
    assert (await client.post(setup["base"], headers=setup["h"])).status_code == 409


async def test_access_denied_on_one_service_makes_scan_partial_with_error_findings(client, setup, aws_fake):
    aws_fake.configure(deny=[{"service": "ec2", "operation": "GetEbsEncryptionByDefault", "region": "eu-west-1"}])
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    body = (await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])).json()
    assert body["status"] == "partial"
    assert [(e["action"], e["region"]) for e in body["collection_errors"]] == [
        ("ec2:GetEbsEncryptionByDefault", "eu-west-1")]
    async with session_scope() as s:
        found = (await s.scalars(select(Finding))).all()
    rows = {f.region: (f.status, f.message) for f in found if f.check_id == "ec2_ebs_default_encryption"}
    assert rows["eu-west-1"][0] == "ERROR" and "UnauthorizedOperation" in rows["eu-west-1"][1]
    assert rows["us-east-1"][0] == "FAIL"  # the other region is untouched
    # Only the check that reads the denied call is ERROR; every other service's checks still judged.
    assert {f.check_id for f in found if f.status == "ERROR"} == {"ec2_ebs_default_encryption"}
    assert {f.service for f in found if f.status in ("PASS", "FAIL")} >= {"iam", "s3", "ec2", "cloudtrail"}


async def test_throttling_is_retried_and_counted(client, setup, aws_fake):
    aws_fake.configure(throttle=[{"service": "ec2", "operation": "GetEbsEncryptionByDefault", "count": 1}])
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    body = (await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])).json()
    assert body["status"] == "succeeded", body["collection_errors"]
    assert body["progress"]["throttled"] == 1


async def test_time_limit_marks_scan_failed(client, setup, aws_fake, monkeypatch):
    monkeypatch.setattr(get_settings(), "scan_time_limit_seconds", 1)
    aws_fake.configure(latency_ms=1500)
    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    aws_fake.configure(latency_ms=0)
    body = (await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])).json()
    assert body["status"] == "failed" and "time limit" in body["error"]


async def test_unauthenticated_and_viewer_cannot_start_scans(client, setup, signup):
    r = await client.post(setup["base"], headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    viewer = await signup()
    r = await client.post(f"/v1/workspaces/{setup['ws']['id']}/invitations",
                          json={"email": viewer["email"], "role": "viewer"}, headers=setup["h"])
    assert r.status_code == 201, r.text
    r = await client.post("/v1/invitations/accept", json={"token": r.json()["token"]}, headers=viewer["headers"])
    assert r.status_code == 200, r.text
    r = await client.post(setup["base"], headers=viewer["headers"])
    assert r.status_code == 403
    r = await client.get(setup["base"], headers=viewer["headers"])
    assert r.status_code == 200


async def test_in_process_restart_recovers_orphaned_scans(client, setup, monkeypatch):
    # Start-up recovery is the single-process default's (no Redis: arq retries its own jobs), so test that mode.
    from app.tasks.scans import recover_in_process_scans

    scan = (await client.post(setup["base"], headers=setup["h"])).json()
    await run_queued_jobs()
    monkeypatch.setattr(get_settings(), "redis_url", None)
    before = {(f.uid, f.status) for f in (await _all_findings())}
    # The process died mid-scan: the row still says running and nothing will run it.
    async with session_scope() as s:
        row = await s.get(ScanRun, uuid.UUID(scan["id"]))
        row.status, row.finished_at = ScanStatus.running, None
    assert await recover_in_process_scans() == 1
    await run_queued_jobs()
    body = (await client.get(f"{setup['base']}/{scan['id']}", headers=setup["h"])).json()
    assert body["status"] == "succeeded" and body["attempts"] == 2
    assert {(f.uid, f.status) for f in (await _all_findings())} == before


async def _all_findings() -> list[Finding]:
    async with session_scope() as s:
        return list((await s.scalars(select(Finding))).all())
