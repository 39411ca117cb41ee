"""Findings lifecycle: deltas (new, unchanged, changed, resolved, reopened), history and exact resolution.

Real scans run through the scan job against the AWS fake while the account changes between them; the rules that
need many or unusual inputs (coverage, other accounts and sources, crash re-runs with different results, chunking)
go through the same lifecycle service with records built like the engine's.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Finding, FindingEvent, ScanFinding, ScanRun, ScanStatus
from app.scanners.base import GLOBAL, CollectionError
from app.tasks.scans import run_scan_job
from tests.findings_helpers import (
    all_pages,
    coverage_of,
    findings_by_uid,
    history,
    make_account,
    record,
    record_scan,
    verdicts,
)
from tests.scan_helpers import connect_account, run_queued_jobs

REGIONS = ["us-east-1", "eu-west-1"]
BUCKET = "cw-lifecycle-bucket"
EBS_CHECK = "ec2_ebs_default_encryption"
SG_CHECKS = {"ec2_securitygroup_ingress_all_traffic", "ec2_securitygroup_ingress_high_risk_ports",
             "ec2_securitygroup_ingress_ipv4_admin_ports", "ec2_securitygroup_ingress_ipv6_admin_ports",
             "ec2_securitygroup_ingress_unauthorized_ports", "ec2_securitygroup_default_restricts_all_traffic"}


@pytest.fixture
async def account_setup(client, signup, make_workspace, aws_fake):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    account = await connect_account(client, aws_fake, owner["headers"], ws["id"], regions=REGIONS)
    ws_path = f"/v1/workspaces/{ws['id']}"
    return {"h": owner["headers"], "ws": ws, "account": account, "ws_path": ws_path,
            "scans": f"{ws_path}/aws-accounts/{account['id']}/scans"}


async def _scan(client, setup) -> dict:
    r = await client.post(setup["scans"], headers=setup["h"])
    assert r.status_code == 202, r.text
    await run_queued_jobs()
    body = (await client.get(f"{setup['scans']}/{r.json()['id']}", headers=setup["h"])).json()
    assert body["status"] in ("succeeded", "partial"), body
    body["deltas"] = await _stored_deltas(body["id"])
    return body


async def _stored_deltas(scan_id: str) -> dict[str, int]:
    async with session_scope() as s:
        return (await s.get(ScanRun, uuid.UUID(scan_id))).summary["deltas"]


def _open_ssh_group(ec2) -> str:
    group = ec2.create_security_group(GroupName=f"open-ssh-{uuid.uuid4().hex[:6]}", Description="ssh")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return group


def _non_unchanged(v: dict) -> dict[str, tuple]:
    return {uid: x for uid, x in v.items() if x[0] != "unchanged"}


async def _event_count() -> int:
    async with session_scope() as s:
        return await s.scalar(select(func.count()).select_from(FindingEvent))


async def _uids(check_ids=None, *, region=None, resource_id=None) -> set[str]:
    return {uid for uid, f in (await findings_by_uid()).items()
            if (check_ids is None or f.check_id in check_ids) and (region is None or f.region == region)
            and (resource_id is None or f.resource_id == resource_id)}


async def test_three_scans_of_a_changing_account(client, account_setup, aws_fake):
    setup, h = account_setup, account_setup["h"]
    ec2, s3 = aws_fake.client("ec2", "us-east-1"), aws_fake.client("s3", "us-east-1")
    aws_fake.client("ec2", "eu-west-1").enable_ebs_encryption_by_default()
    group = _open_ssh_group(ec2)
    s3.create_bucket(Bucket=BUCKET)

    # Scan 1: everything is new.
    scan1 = await _scan(client, setup)
    v1 = await verdicts(scan1["id"])
    assert v1 and {d for d, _, _ in v1.values()} == {"new"}
    assert all(prev is None for _, prev, _ in v1.values())
    assert scan1["deltas"] == {"new": len(v1), "changed": 0, "resolved": 0, "reopened": 0,
                                          "unchanged": 0}
    assert await _event_count() == len(v1)
    before = await findings_by_uid()
    ebs = next(f for f in before.values() if f.check_id == EBS_CHECK and f.region == "us-east-1")
    assert ebs.status == "FAIL"
    group_uids = await _uids(resource_id=group)
    bucket_uids = await _uids(resource_id=BUCKET)
    assert len(group_uids) >= 5 and len(bucket_uids) >= 10
    assert any(before[u].status == "FAIL" and before[u].check_id == "ec2_securitygroup_ingress_ipv4_admin_ports"
               for u in group_uids)

    # Scan 2: EBS default encryption fixed, the group and the bucket deleted.
    ec2.enable_ebs_encryption_by_default()
    ec2.delete_security_group(GroupId=group)
    s3.delete_bucket(Bucket=BUCKET)
    scan2 = await _scan(client, setup)
    v2 = await verdicts(scan2["id"])
    assert _non_unchanged(v2) == {
        ebs.uid: ("changed", "FAIL", "PASS"),
        **{u: ("resolved", before[u].status, None) for u in group_uids | bucket_uids},
    }
    assert set(v2) == set(v1)  # every finding of scan 1 was covered by scan 2
    assert scan2["deltas"] == {"new": 0, "changed": 1, "resolved": len(group_uids | bucket_uids),
                                          "reopened": 0, "unchanged": len(v1) - 1 - len(group_uids | bucket_uids)}
    after2 = await findings_by_uid()
    for u in group_uids | bucket_uids:
        assert after2[u].resolved_at is not None and after2[u].status == before[u].status
        assert after2[u].last_scan_id == uuid.UUID(scan1["id"])  # the last scan that produced it
    assert after2[ebs.uid].status == "PASS" and after2[ebs.uid].status_changed_at > ebs.status_changed_at
    unchanged = next(u for u, x in v2.items() if x[0] == "unchanged")
    assert after2[unchanged].status_changed_at == before[unchanged].status_changed_at
    assert after2[unchanged].last_seen_at > before[unchanged].last_seen_at

    # The API shows the scan's results with deltas, and hides resolved findings unless asked.
    r = await client.get(f"{setup['scans']}/{scan2['id']}/findings?delta=resolved&limit=200", headers=h)
    assert r.status_code == 200, r.text
    assert {i["finding"]["uid"] for i in r.json()["items"]} == group_uids | bucket_uids
    assert all(i["status"] is None and i["finding"]["state"] == "resolved" for i in r.json()["items"])
    r = await client.get(f"{setup['scans']}/{scan2['id']}/findings?delta=changed", headers=h)
    assert [(i["finding"]["uid"], i["previous_status"], i["status"]) for i in r.json()["items"]] == [
        (ebs.uid, "FAIL", "PASS")]
    listed = await all_pages(client, f"{setup['ws_path']}/findings", h)
    assert not {i["uid"] for i in listed} & (group_uids | bucket_uids)
    listed = await all_pages(client, f"{setup['ws_path']}/findings?include_resolved=true&delta=resolved", h)
    assert {i["uid"] for i in listed} == group_uids | bucket_uids

    # A crash re-run of scan 2 (the worker died after writing) rewrites the same results: nothing counted twice.
    events_before = await _event_count()
    async with session_scope() as s:
        row = await s.get(ScanRun, uuid.UUID(scan2["id"]))
        row.status, row.finished_at = ScanStatus.running, None
    assert await run_scan_job({"job_try": 2}, scan2["id"]) in ("succeeded", "partial")
    assert await verdicts(scan2["id"]) == v2
    assert await _event_count() == events_before
    assert await _stored_deltas(scan2["id"]) == scan2["deltas"]
    state = await findings_by_uid()
    assert all(state[u].resolved_at is not None for u in group_uids | bucket_uids)

    # Scan 3: encryption broken again, the bucket back under the same name, a new open group.
    ec2.disable_ebs_encryption_by_default()
    s3.create_bucket(Bucket=BUCKET)
    new_group = _open_ssh_group(ec2)
    scan3 = await _scan(client, setup)
    v3 = await verdicts(scan3["id"])
    new_group_uids = await _uids(resource_id=new_group)
    after3 = await findings_by_uid()
    assert _non_unchanged(v3) == {
        ebs.uid: ("changed", "PASS", "FAIL"),
        **{u: ("reopened", before[u].status, before[u].status) for u in bucket_uids},
        **{u: ("new", None, after3[u].status) for u in new_group_uids},
    }
    assert scan3["deltas"]["reopened"] == len(bucket_uids)
    assert scan3["deltas"]["new"] == len(new_group_uids) > 0
    assert scan3["deltas"]["resolved"] == 0
    for u in bucket_uids:
        assert after3[u].resolved_at is None and after3[u].first_seen_at == before[u].first_seen_at
        assert after3[u].status_changed_at > after2[u].status_changed_at
    for u in group_uids:  # a deleted group stays resolved
        assert after3[u].resolved_at is not None

    # History: every transition, none for unchanged scans.
    assert await history(ebs.id) == [("new", None, "FAIL"), ("changed", "FAIL", "PASS"), ("changed", "PASS", "FAIL")]
    bucket_fail = next(u for u in bucket_uids if before[u].status == "FAIL")
    assert await history(before[bucket_fail].id) == [("new", None, "FAIL"), ("resolved", "FAIL", None),
                                                     ("reopened", "FAIL", "FAIL")]
    assert await history(before[unchanged].id) == [("new", None, before[unchanged].status)]

    # The detail shows the history newest first and the check's remediation.
    r = await client.get(f"{setup['ws_path']}/findings/{before[bucket_fail].id}", headers=h)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert [(e["delta"], e["scan_id"]) for e in detail["history"]] == [
        ("reopened", scan3["id"]), ("resolved", scan2["id"]), ("new", scan1["id"])]
    assert detail["history_total"] == 3 and detail["last_delta"] == "reopened" and detail["state"] == "open"
    assert detail["check"]["id"] == before[bucket_fail].check_id and detail["check"]["remediation"]["text"]

    # The summary's trend follows the three scans.
    r = await client.get(f"{setup['ws_path']}/findings/summary?account_id={setup['account']['id']}", headers=h)
    trend = r.json()["trend"]
    assert [p["scan_id"] for p in trend] == [scan1["id"], scan2["id"], scan3["id"]]
    assert [p["deltas"] for p in trend] == [scan1["deltas"], scan2["deltas"], scan3["deltas"]]


async def test_an_errored_check_resolves_nothing(client, account_setup, aws_fake):
    setup = account_setup
    ec2 = aws_fake.client("ec2", "us-east-1")
    group = _open_ssh_group(ec2)
    scan1 = await _scan(client, setup)
    group_uids = await _uids(resource_id=group)
    east_sg = await _uids(SG_CHECKS, region="us-east-1")
    west_sg = await _uids(SG_CHECKS, region="eu-west-1")
    assert group_uids < east_sg and west_sg

    # The group is deleted, but the scan cannot list security groups in us-east-1.
    ec2.delete_security_group(GroupId=group)
    aws_fake.configure(deny=[{"service": "ec2", "operation": "DescribeSecurityGroups", "region": "us-east-1"}])
    scan2 = await _scan(client, setup)
    assert scan2["status"] == "partial"
    assert any(e["action"] == "ec2:DescribeSecurityGroups" and e["region"] == "us-east-1"
               for e in scan2["collection_errors"])
    v2 = await verdicts(scan2["id"])
    assert scan2["deltas"]["resolved"] == 0
    assert not east_sg & set(v2)  # not produced, not resolved: untouched
    state = await findings_by_uid()
    assert all(state[u].resolved_at is None and state[u].last_scan_id == uuid.UUID(scan1["id"]) for u in east_sg)
    assert all(v2[u][0] == "unchanged" for u in west_sg)  # the other region is scanned as usual
    errored = {u for u, (d, _, s) in v2.items() if s == "ERROR" and state[u].check_id in SG_CHECKS}
    assert errored and all(v2[u][0] == "new" and state[u].region == "us-east-1" for u in errored)

    # Once the call works again, the deleted group's findings and the ERROR findings are resolved.
    aws_fake.configure(deny=[])
    scan3 = await _scan(client, setup)
    v3 = await verdicts(scan3["id"])
    assert {u for u, x in v3.items() if x[0] == "resolved"} == group_uids | errored
    assert all(v3[u][0] == "unchanged" for u in east_sg - group_uids)


async def test_a_region_restricted_scan_does_not_resolve_other_regions(client, account_setup, aws_fake):
    setup = account_setup
    s3_west = aws_fake.client("s3", "eu-west-1")
    s3_west.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    await _scan(client, setup)
    west = await _uids(region="eu-west-1")
    bucket_uids = await _uids(resource_id=BUCKET)
    assert bucket_uids < west and west - bucket_uids

    r = await client.patch(f"{setup['ws_path']}/aws-accounts/{setup['account']['id']}",
                           json={"regions": ["us-east-1"]}, headers=setup["h"])
    assert r.status_code == 200, r.text
    s3_west.delete_bucket(Bucket=BUCKET)
    scan2 = await _scan(client, setup)
    assert scan2["regions"] == ["us-east-1"]
    v2 = await verdicts(scan2["id"])
    # Regional findings of eu-west-1 were not looked at; the bucket list is account-wide, so its deletion counts.
    assert not (west - bucket_uids) & set(v2)
    assert {u for u, x in v2.items() if x[0] == "resolved"} == bucket_uids
    state = await findings_by_uid()
    assert all(state[u].resolved_at is None for u in west - bucket_uids)


# ---------------------------------------------------------------------------------------------------------------
# The same rules through the lifecycle service, with many or unusual inputs.


def test_coverage_only_covers_checks_that_ran_in_scanned_regions_without_errors():
    checks = ["ec2_ebs_default_encryption", "s3_bucket_versioning_enabled", "iam_root_mfa_enabled",
              "ec2_securitygroup_ingress_all_traffic"]
    clean = coverage_of(checks, ["us-east-1"])
    assert clean.covers("ec2_ebs_default_encryption", "us-east-1")
    assert not clean.covers("ec2_ebs_default_encryption", "eu-west-1")          # region not scanned
    assert not clean.covers("kms_key_rotation_enabled", "us-east-1")            # check did not run
    assert clean.covers("s3_bucket_versioning_enabled", "ap-south-1")           # the bucket list is account-wide
    assert clean.covers("iam_root_mfa_enabled", GLOBAL)

    def error(action, region, resource_id=None):
        return CollectionError(service=action.split(":")[0], action=action, region=region, resource_id=resource_id,
                               code="AccessDenied", message="denied")

    regional = coverage_of(checks, ["us-east-1", "eu-west-1"], [error("ec2:GetEbsEncryptionByDefault", "eu-west-1")])
    assert not regional.covers("ec2_ebs_default_encryption", "eu-west-1")
    assert regional.covers("ec2_ebs_default_encryption", "us-east-1")
    assert regional.covers("ec2_securitygroup_ingress_all_traffic", "eu-west-1")  # reads other calls
    # A failed account-wide listing (filed under the home region) hides buckets everywhere.
    listing = coverage_of(checks, ["us-east-1"], [error("s3:ListAllMyBuckets", "us-east-1")])
    assert not listing.covers("s3_bucket_versioning_enabled", "eu-west-1")
    # One bucket's detail call failing hides only that region.
    detail = coverage_of(checks, ["us-east-1"], [error("s3:GetBucketVersioning", "eu-west-1", "b1")])
    assert not detail.covers("s3_bucket_versioning_enabled", "eu-west-1")
    assert detail.covers("s3_bucket_versioning_enabled", "us-east-1")
    # An account check is skipped whole on any failed input.
    report = coverage_of(checks, ["us-east-1"], [error("iam:GetCredentialReport", "us-east-1")])
    assert not report.covers("iam_root_mfa_enabled", GLOBAL)
    assert report.covers("ec2_ebs_default_encryption", "us-east-1")


@pytest.fixture
async def seeded(signup, make_workspace):
    owner = await signup()
    ws = await make_workspace(owner["headers"])
    return {"ws": ws, "a": await make_account(ws["id"], "a"), "b": await make_account(ws["id"], "b")}


async def test_restricted_checks_other_accounts_and_other_sources_are_never_resolved(seeded):
    a, b = seeded["a"], seeded["b"]
    ebs = record(a, "ec2_ebs_default_encryption", "us-east-1", "ebs", "FAIL")
    bucket = record(a, "s3_bucket_versioning_enabled", "us-east-1", "bucket", "FAIL")
    hub = record(a, "ec2_ebs_default_encryption", "us-east-1", "hub-1", "FAIL", source="securityhub")
    other = record(b, "ec2_ebs_default_encryption", "us-east-1", "ebs", "FAIL")
    everything = coverage_of(["ec2_ebs_default_encryption", "s3_bucket_versioning_enabled"], ["us-east-1"])
    await record_scan(a, [ebs, bucket, hub], everything)
    await record_scan(b, [other], everything)

    # A scan of `a` that ran only the EBS check and produced nothing.
    _, deltas = await record_scan(a, [], coverage_of(["ec2_ebs_default_encryption"], ["us-east-1"]))
    assert deltas == {"new": 0, "unchanged": 0, "changed": 0, "resolved": 1, "reopened": 0}
    state = await findings_by_uid()
    assert state[ebs.uid].resolved_at is not None
    assert state[bucket.uid].resolved_at is None   # its check did not run
    assert state[hub.uid].resolved_at is None      # not ours to resolve
    assert state[other.uid].resolved_at is None    # another account


async def test_crash_rerun_with_different_results_counts_against_the_state_before_the_scan(seeded):
    a = seeded["a"]
    checks = ["ec2_ebs_default_encryption", "s3_bucket_versioning_enabled"]
    full = coverage_of(checks, ["us-east-1"])

    def rec(name, status, check="ec2_ebs_default_encryption"):
        return record(a, check, "us-east-1", name, status)

    await record_scan(a, [rec("f1", "FAIL"), rec("f2", "FAIL"), rec("f3", "PASS", checks[1]), rec("f4", "FAIL")],
                      full)
    await record_scan(a, [rec("f1", "FAIL"), rec("f2", "FAIL"), rec("f3", "PASS", checks[1])], full)  # resolves f4
    state = await findings_by_uid()
    f4_resolved_at = state[rec("f4", "FAIL").uid].resolved_at
    assert f4_resolved_at is not None

    # First attempt of scan 3: f1 changed, f2 resolved, f3 unchanged, f4 reopened, f5 new.
    scan3, first = await record_scan(a, [rec("f1", "PASS"), rec("f3", "PASS", checks[1]), rec("f4", "FAIL"),
                                         rec("f5", "FAIL")], full)
    assert first == {"new": 1, "unchanged": 1, "changed": 1, "resolved": 1, "reopened": 1}

    # The account changed before the re-run: f1 and f2 as before scan 3, f3's check did not run, f4 and f5 gone.
    async with session_scope() as s:
        (await s.get(ScanRun, scan3)).status = ScanStatus.running
    _, second = await record_scan(a, [rec("f1", "FAIL"), rec("f2", "FAIL")], coverage_of(checks[:1], ["us-east-1"]),
                                  scan_id=scan3)
    assert second == {"new": 0, "unchanged": 2, "changed": 0, "resolved": 0, "reopened": 0}
    assert await verdicts(scan3) == {rec("f1", "").uid: ("unchanged", "FAIL", "FAIL"),
                                     rec("f2", "").uid: ("unchanged", "FAIL", "FAIL")}
    state = await findings_by_uid()
    assert rec("f5", "").uid not in state                       # created by the first attempt only
    f1, f2, f4 = (state[rec(n, "").uid] for n in ("f1", "f2", "f4"))
    assert f1.status == "FAIL" and await history(f1.id) == [("new", None, "FAIL")]
    assert f2.resolved_at is None and await history(f2.id) == [("new", None, "FAIL")]
    assert f4.resolved_at == f4_resolved_at and await history(f4.id) == [("new", None, "FAIL"),
                                                                          ("resolved", "FAIL", None)]
    async with session_scope() as s:
        assert await s.scalar(select(func.count()).select_from(FindingEvent)
                              .where(FindingEvent.scan_id == scan3)) == 0


async def test_bulk_scans_of_thousands_of_findings(seeded):
    a = seeded["a"]
    checks = ["ec2_ebs_default_encryption", "s3_bucket_versioning_enabled", "kms_key_rotation_enabled"]
    regions = ["us-east-1", "eu-west-1"]
    records = [record(a, checks[i % 3], regions[i % 2], f"r{i}", "FAIL" if i % 4 else "PASS") for i in range(3000)]
    _, first = await record_scan(a, records, coverage_of(checks, regions))
    assert first["new"] == 3000
    changed = {r.uid for r in records[:40]}
    second_records = [record(a, r.check_id, r.region, r.resource_id, "PASS" if r.status == "FAIL" else "FAIL")
                      if r.uid in changed else r for r in records[:2950]]
    second_records += [record(a, checks[0], "us-east-1", f"extra{i}", "FAIL") for i in range(25)]
    _, deltas = await record_scan(a, second_records, coverage_of(checks, regions))
    assert deltas == {"new": 25, "changed": 40, "resolved": 50, "unchanged": 2910, "reopened": 0}
    async with session_scope() as s:
        per_delta = dict((await s.execute(select(ScanFinding.delta, func.count()).group_by(ScanFinding.delta)))
                         .tuples().all())
        assert {k.value: v for k, v in per_delta.items()} == {"new": 3025, "changed": 40, "resolved": 50,
                                                               "unchanged": 2910}
        assert await s.scalar(select(func.count()).select_from(Finding).where(Finding.resolved_at.is_not(None))) == 50
        assert await s.scalar(select(func.count()).select_from(FindingEvent)) == 3025 + 40 + 50


async def test_a_reconnected_account_takes_over_its_findings(seeded):
    a = seeded["a"]
    first = record(a, "ec2_ebs_default_encryption", "us-east-1", "ebs", "FAIL")
    await record_scan(a, [first], coverage_of(["ec2_ebs_default_encryption"], ["us-east-1"]))
    async with session_scope() as s:
        from app.models import AccountStatus, AwsAccount

        (await s.get(AwsAccount, a.id)).status = AccountStatus.disconnected
    again = await make_account(a.workspace_id, "a again", aws_account_id=a.aws_account_id)
    _, deltas = await record_scan(again, [record(again, "ec2_ebs_default_encryption", "us-east-1", "ebs", "FAIL")],
                                  coverage_of(["ec2_ebs_default_encryption"], ["us-east-1"]))
    assert deltas["unchanged"] == 1 and deltas["new"] == 0
    state = await findings_by_uid()
    assert len(state) == 1 and state[first.uid].aws_account_id == again.id
    counts = Counter(f.aws_account_id for f in state.values())
    assert counts == {again.id: 1}
