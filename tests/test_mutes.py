"""Muting: rules over findings (one finding, check, account, region, resource glob, tag) through the real API, their
effect on the findings list and summary, expiry (on time for reads, then recorded by the job), unmute, revision,
validation, roles, audit, tenant isolation, a real scan meeting an existing rule, and bulk speed.

Findings are written through the lifecycle service (the scan job's own write path) with hand-picked resources and
tags; each expectation below is spelled out as a plain predicate over those inputs, not derived from the rules.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from app.db import session_scope
from app.models import AccountStatus, AwsAccount, Finding, MuteRule, Role
from app.models.base import uuid7
from app.services import mutes as mutes_service
from app.tasks.mutes import expire_mute_rules
from tests.findings_helpers import all_pages, coverage_of, make_account, record, record_scan
from tests.ws_helpers import assert_problem, make_api_key, make_team, snapshot

CHECK_A = "s3_bucket_versioning_enabled"
CHECK_B = "kms_key_rotation_enabled"
REGIONS = ["us-east-1", "eu-west-1"]
# Resource name -> its tags. Near misses on purpose: case, a tag value on another key, an empty value.
RESOURCES = {
    "sandbox-logs": {"env": "sandbox"},
    "sandbox-tmp": {},
    "Sandbox-upper": {"Env": "sandbox"},
    "prod-data": {"env": "prod"},
    "prod-keys": {"owner": "sandbox"},
    "shared-sandbox": {"env": ""},
}
REASON = "Accepted risk: reviewed with the platform team."


def _records(account) -> list:
    out = []
    for n, (check, region, (name, tags)) in enumerate(
            (c, r, item) for c in (CHECK_A, CHECK_B) for r in REGIONS for item in RESOURCES.items()):
        out.append(record(account, check, region, name, "FAIL" if n % 3 else "PASS", resource_tags=tags))
    return out


@pytest.fixture
async def world(client):
    team = await make_team(client, name="Muters")
    a = await make_account(team.workspace_id, "prod")
    b = await make_account(team.workspace_id, "dev")
    for account in (a, b):
        await record_scan(account, _records(account), coverage_of([CHECK_A, CHECK_B], REGIONS))
    async with session_scope() as s:
        findings = list((await s.scalars(select(Finding))).all())
    assert len(findings) == 2 * 2 * 2 * len(RESOURCES)
    return {"team": team, "path": team.path, "rules": f"{team.path}/mute-rules", "h": team.member.headers,
            "a": a, "b": b, "findings": findings, "account_name": {a.id: "prod", b.id: "dev"}}


async def _views(client, world) -> dict[str, Any]:
    """What the findings API shows: ids by muted filter, the muted flags, and the summary."""
    path, h = world["path"], world["h"]
    default = await all_pages(client, f"{path}/findings", h)
    only = await all_pages(client, f"{path}/findings?muted=only", h)
    both = await all_pages(client, f"{path}/findings?muted=include", h)
    summary = (await client.get(f"{path}/findings/summary", headers=h)).json()
    return {"default": {i["id"] for i in default}, "only": {i["id"] for i in only},
            "flagged": {i["id"] for i in both if i["muted"]}, "include": {i["id"] for i in both},
            "rules": {i["id"]: i["mute_rule_id"] for i in both}, "until": {i["id"]: i["muted_until"] for i in both},
            "summary": summary, "default_flags": {i["muted"] for i in default}}


def _assert_muted_exactly(views: dict, world: dict, expected: set[str]) -> None:
    everything = {str(f.id) for f in world["findings"]}
    assert views["only"] == expected
    assert views["flagged"] == expected
    assert views["default"] == everything - expected
    assert views["include"] == everything
    assert views["default_flags"] <= {False}
    assert views["summary"]["muted"] == len(expected)
    assert views["summary"]["open"]["total"] == len(everything) - len(expected)


async def _create(client, world, body: dict, headers: dict | None = None) -> dict:
    r = await client.post(world["rules"], json={"reason": REASON, **body}, headers=headers or world["h"])
    assert r.status_code == 201, r.text
    return r.json()


def _in(moment: timedelta) -> str:
    return (datetime.now(UTC) + moment).isoformat()


async def _audit(client, world, action: str | None = None) -> list[dict]:
    url = f"{world['path']}/audit-events" + (f"?action={action}" if action else "")
    return await all_pages(client, url, world["team"].owner.headers)


# --------------------------------------------------------------------------------------------------------------
# Each selector mutes exactly its findings


def _first_finding(world) -> Finding:
    return next(f for f in world["findings"] if f.resource_id == "prod-data" and f.region == "eu-west-1"
                and f.check_id == CHECK_B and world["account_name"][f.aws_account_id] == "dev")


SELECTORS = {
    "finding": (lambda w: {"finding_id": str(_first_finding(w).id)},
                lambda w, f: f.id == _first_finding(w).id),
    "check": (lambda w: {"check_id": CHECK_B}, lambda w, f: f.check_id == CHECK_B),
    "account": (lambda w: {"aws_account_id": str(w["b"].id)},
                lambda w, f: w["account_name"][f.aws_account_id] == "dev"),
    "region": (lambda w: {"region": "eu-west-1"}, lambda w, f: f.region == "eu-west-1"),
    # Case-sensitive: not `Sandbox-upper`; anchored: not `shared-sandbox`.
    "pattern on the id": (lambda w: {"resource_pattern": "sandbox-*"},
                          lambda w, f: f.resource_id in ("sandbox-logs", "sandbox-tmp")),
    # Only the ARN holds the region, so this matches through the ARN alone.
    "pattern on the ARN": (lambda w: {"resource_pattern": "arn:aws:*:eu-west-1:*:prod-*"},
                           lambda w, f: f.region == "eu-west-1" and f.resource_id.startswith("prod-")),
    "tag key": (lambda w: {"tag_key": "env"},
                lambda w, f: f.resource_id in ("sandbox-logs", "prod-data", "shared-sandbox")),
    "tag key and value": (lambda w: {"tag_key": "env", "tag_value": "sandbox"},
                          lambda w, f: f.resource_id == "sandbox-logs"),
    "check and region and account": (
        lambda w: {"check_id": CHECK_A, "region": "us-east-1", "aws_account_id": str(w["a"].id)},
        lambda w, f: f.check_id == CHECK_A and f.region == "us-east-1"
        and w["account_name"][f.aws_account_id] == "prod"),
}


@pytest.mark.parametrize("kind", list(SELECTORS))
async def test_each_selector_mutes_exactly_its_findings(client, world, kind):
    body_of, matches = SELECTORS[kind]
    expected = {str(f.id) for f in world["findings"] if matches(world, f)}
    assert 0 < len(expected) < len(world["findings"])
    _assert_muted_exactly(await _views(client, world), world, set())

    rule = await _create(client, world, body_of(world))
    assert rule["matched_findings"] == len(expected)
    assert rule["state"] == "active" and rule["reason"] == REASON
    assert rule["owner"] == rule["created_by"] == world["team"].member.email
    for key, value in body_of(world).items():
        assert rule[key] == value
    views = await _views(client, world)
    _assert_muted_exactly(views, world, expected)
    assert {views["rules"][i] for i in expected} == {rule["id"]}
    assert {views["until"][i] for i in expected} == {None}

    # The finding's own page tells it is muted, and by which rule.
    some = next(iter(expected))
    detail = (await client.get(f"{world['path']}/findings/{some}", headers=world["h"])).json()
    assert detail["muted"] is True and detail["mute_rule_id"] == rule["id"]


async def test_a_finding_rule_keeps_the_finding_uid(client, world):
    target = _first_finding(world)
    rule = await _create(client, world, {"finding_id": str(target.id)})
    assert rule["finding_uid"] == target.uid and rule["finding_id"] == str(target.id)
    async with session_scope() as s:
        row = await s.get(MuteRule, uuid.UUID(rule["id"]))
        assert row.selectors == {"finding_id": str(target.id)}


async def test_global_region_is_a_region(client, world):
    rule = await _create(client, world, {"region": "global"})
    assert rule["region"] == "global" and rule["matched_findings"] == 0


# --------------------------------------------------------------------------------------------------------------
# Several rules, unmute, revision


async def test_overlapping_rules_pick_no_expiry_first_then_the_latest_expiry(client, world):
    h = world["h"]
    soon = await _create(client, world, {"check_id": CHECK_A, "expires_at": _in(timedelta(days=1))})
    later = await _create(client, world, {"region": "us-east-1", "expires_at": _in(timedelta(days=30))})
    forever = await _create(client, world, {"tag_key": "env"})
    by_id = {str(f.id): f for f in world["findings"]}

    def expected_rule(f: Finding) -> str | None:
        if f.resource_id in ("sandbox-logs", "prod-data", "shared-sandbox"):
            return forever["id"]
        if f.region == "us-east-1":
            return later["id"]
        if f.check_id == CHECK_A:
            return soon["id"]
        return None

    views = await _views(client, world)
    assert views["rules"] == {i: expected_rule(f) for i, f in by_id.items()}
    for rule in (soon, later, forever):
        r = await client.get(f"{world['rules']}/{rule['id']}", headers=h)
        assert r.json()["matched_findings"] == sum(expected_rule(f) == rule["id"] for f in by_id.values()) > 0
        if rule["expires_at"]:
            assert {views["until"][i] for i, f in by_id.items() if expected_rule(f) == rule["id"]} == {
                r.json()["expires_at"]}

    # Unmuting the rule without expiry hands its findings to the next rule that covers them, or shows them.
    assert (await client.delete(f"{world['rules']}/{forever['id']}", headers=h)).status_code == 204
    views = await _views(client, world)
    for i, f in by_id.items():
        want = later["id"] if f.region == "us-east-1" else soon["id"] if f.check_id == CHECK_A else None
        assert views["rules"][i] == want, (f.resource_id, f.region, f.check_id)
    assert views["only"] == {i for i, f in by_id.items() if f.region == "us-east-1" or f.check_id == CHECK_A}


async def test_unmute_shows_the_findings_again_and_keeps_the_rule(client, world):
    h = world["h"]
    rule = await _create(client, world, {"check_id": CHECK_A})
    muted = {str(f.id) for f in world["findings"] if f.check_id == CHECK_A}
    _assert_muted_exactly(await _views(client, world), world, muted)

    r = await client.delete(f"{world['rules']}/{rule['id']}", headers=h)
    assert r.status_code == 204 and r.content == b""
    _assert_muted_exactly(await _views(client, world), world, set())
    async with session_scope() as s:
        assert await s.scalar(select(Finding.id).where(Finding.mute_rule_id.is_not(None))) is None
    ended = (await client.get(f"{world['rules']}/{rule['id']}", headers=h)).json()
    assert ended["state"] == "unmuted" and ended["end_reason"] == "unmuted"
    assert ended["ended_by"] == world["team"].member.email and ended["ended_at"] is not None
    assert ended["matched_findings"] == 0

    # Again: nothing changes, nothing more is audited; an ended rule cannot be revised.
    assert (await client.delete(f"{world['rules']}/{rule['id']}", headers=h)).status_code == 204
    assert len(await _audit(client, world, "mute_rule.deleted")) == 1
    before = await snapshot()
    r = await client.patch(f"{world['rules']}/{rule['id']}", json={"reason": "back on"}, headers=h)
    assert_problem(r, 409, "conflict")
    assert await snapshot() == before


async def test_revise_reason_owner_and_expiry(client, world):
    h = world["h"]
    rule = await _create(client, world, {"check_id": CHECK_B})
    url = f"{world['rules']}/{rule['id']}"
    muted = {str(f.id) for f in world["findings"] if f.check_id == CHECK_B}

    expiry = _in(timedelta(days=10))
    r = await client.patch(url, json={"reason": "Still accepted.", "owner": "risk@example.com",
                                      "expires_at": expiry}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["reason"], body["owner"]) == ("Still accepted.", "risk@example.com")
    assert datetime.fromisoformat(body["expires_at"]) == datetime.fromisoformat(expiry)
    assert body["matched_findings"] == len(muted)
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(rule["updated_at"])
    views = await _views(client, world)
    assert {views["until"][i] for i in muted} == {body["expires_at"]}

    # Null removes the expiry, and the findings follow.
    r = await client.patch(url, json={"expires_at": None}, headers=h)
    assert r.status_code == 200 and r.json()["expires_at"] is None and r.json()["reason"] == "Still accepted."
    views = await _views(client, world)
    assert {views["until"][i] for i in muted} == {None}
    assert views["only"] == muted

    # Selectors are fixed; reason and owner cannot be removed; nothing changes on refusal.
    before = await snapshot()
    for patch in ({"check_id": CHECK_A}, {"region": "us-east-1"}, {"reason": None}, {"owner": None},
                  {"reason": ""}, {"expires_at": _in(timedelta(seconds=-5))}, {"expires_at": "2030-01-01T00:00:00"}):
        assert_problem(await client.patch(url, json=patch, headers=h), 422, "validation-error")
    assert await snapshot() == before

    updates = await _audit(client, world, "mute_rule.updated")
    assert len(updates) == 2
    latest, first = updates
    assert first["details"]["before"] == {"reason": REASON, "owner": world["team"].member.email,
                                          "expires_at": None}
    assert first["details"]["after"]["owner"] == "risk@example.com"
    assert latest["details"]["before"]["expires_at"] is not None and latest["details"]["after"] == {
        "expires_at": None}
    assert latest["details"]["selectors"] == {"check_id": CHECK_B}


# --------------------------------------------------------------------------------------------------------------
# Expiry


async def test_an_expired_mute_reads_unmuted_at_once_and_the_job_records_it(client, world):
    h = world["h"]
    rule = await _create(client, world, {"region": "eu-west-1", "expires_at": _in(timedelta(seconds=2))})
    long_lived = await _create(client, world, {"resource_pattern": "prod-keys"})
    in_region = {str(f.id) for f in world["findings"] if f.region == "eu-west-1"}
    prod_keys = {str(f.id) for f in world["findings"] if f.resource_id == "prod-keys"}
    assert rule["matched_findings"] == len(in_region)
    assert long_lived["matched_findings"] == len(prod_keys)   # those in eu-west-1 moved to the rule without expiry
    _assert_muted_exactly(await _views(client, world), world, in_region | prod_keys)

    deadline = datetime.fromisoformat(rule["expires_at"])
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.05)

    # Before any job: reads already treat the mute as over.
    _assert_muted_exactly(await _views(client, world), world, prod_keys)
    got = (await client.get(f"{world['rules']}/{rule['id']}", headers=h)).json()
    assert (got["state"], got["ended_at"], got["matched_findings"]) == ("expired", None, 0)
    active = {i["id"] for i in await all_pages(client, world["rules"], h)}
    ended = {i["id"] for i in await all_pages(client, f"{world['rules']}?state=ended", h)}
    assert (active, ended) == ({long_lived["id"]}, {rule["id"]})
    assert_problem(await client.patch(f"{world['rules']}/{rule['id']}", json={"reason": "x"}, headers=h), 409)

    assert await expire_mute_rules({}) == 1
    got = (await client.get(f"{world['rules']}/{rule['id']}", headers=h)).json()
    assert (got["state"], got["end_reason"], got["ended_by"]) == ("expired", "expired", "system")
    assert got["ended_at"] == got["expires_at"]
    async with session_scope() as s:
        linked = set((await s.scalars(select(Finding.id).where(Finding.mute_rule_id.is_not(None)))).all())
    # prod-keys in eu-west-1 moved to the rule that still covers them; the rest are unlinked.
    assert {str(i) for i in linked} == prod_keys
    _assert_muted_exactly(await _views(client, world), world, prod_keys)

    expired = await _audit(client, world, "mute_rule.expired")
    assert len(expired) == 1
    assert expired[0]["actor_type"] == "system" and expired[0]["target_id"] == rule["id"]
    assert expired[0]["details"]["selectors"] == {"region": "eu-west-1"}
    assert expired[0]["details"]["reason"] == REASON and expired[0]["details"]["expires_at"] is not None

    # Idempotent: nothing left to expire, nothing audited twice.
    assert await expire_mute_rules({}) == 0
    assert len(await _audit(client, world, "mute_rule.expired")) == 1


async def test_the_expiry_job_handles_many_workspaces(client, world):
    other = await make_team(client, name="Other")
    account = await make_account(other.workspace_id, "other")
    await record_scan(account, _records(account), None)
    mine = await _create(client, world, {"check_id": CHECK_A, "expires_at": _in(timedelta(hours=1))})
    r = await client.post(f"{other.path}/mute-rules", headers=other.owner.headers,
                          json={"reason": REASON, "check_id": CHECK_A, "expires_at": _in(timedelta(hours=1))})
    assert r.status_code == 201
    theirs = r.json()
    keep = await _create(client, world, {"check_id": CHECK_B, "expires_at": _in(timedelta(hours=3))})
    assert await expire_mute_rules({}, now=datetime.now(UTC) + timedelta(hours=2)) == 2
    async with session_scope() as s:
        rules = {str(r.id): r for r in (await s.scalars(select(MuteRule))).all()}
        still = {(str(f.workspace_id), str(f.mute_rule_id)) for f in
                 (await s.scalars(select(Finding).where(Finding.mute_rule_id.is_not(None)))).all()}
    assert {k for k, r in rules.items() if r.end_reason == "expired"} == {mine["id"], theirs["id"]}
    assert rules[keep["id"]].ended_at is None
    assert still == {(world["team"].workspace_id, keep["id"])}
    audits = await _audit(client, world, "mute_rule.expired")
    assert [e["target_id"] for e in audits] == [mine["id"]]  # each workspace's log has its own


@pytest.mark.postgres
async def test_concurrent_expiry_runs_record_each_expiry_once(client, world):
    rules = [await _create(client, world, {"check_id": c, "expires_at": _in(timedelta(hours=1))})
             for c in (CHECK_A, CHECK_B)]
    later = datetime.now(UTC) + timedelta(hours=2)
    counts = await asyncio.gather(*(expire_mute_rules({}, now=later) for _ in range(4)))
    assert sorted(counts) == [0, 0, 0, 2]
    assert sorted(e["target_id"] for e in await _audit(client, world, "mute_rule.expired")) == sorted(
        r["id"] for r in rules)


async def test_rules_made_at_once_see_each_other(client, world):
    """Two rules over the same findings, made concurrently: the rule without expiry mutes them, whichever
    request finished last."""
    expiring, forever = await asyncio.gather(
        client.post(world["rules"], headers=world["h"], json={"reason": REASON, "check_id": CHECK_A,
                                                                "expires_at": _in(timedelta(days=1))}),
        client.post(world["rules"], headers=world["h"], json={"reason": REASON, "check_id": CHECK_A}))
    assert expiring.status_code == forever.status_code == 201, (expiring.text, forever.text)
    views = await _views(client, world)
    check_a = {str(f.id) for f in world["findings"] if f.check_id == CHECK_A}
    assert {views["rules"][i] for i in check_a} == {forever.json()["id"]}


# --------------------------------------------------------------------------------------------------------------
# Validation, roles, isolation


def _bad_bodies() -> dict[str, dict]:
    return {
        "no selector": {"reason": REASON},
        "only nulls": {"reason": REASON, "check_id": None, "region": None},
        "wildcard-only pattern": {"reason": REASON, "resource_pattern": "*"},
        "wildcards-only pattern": {"reason": REASON, "resource_pattern": "*?**"},
        "pattern over 1024": {"reason": REASON, "resource_pattern": "a" * 1025},
        "expiry in the past": {"reason": REASON, "check_id": CHECK_A, "expires_at": _in(timedelta(minutes=-1))},
        "expiry now-ish": {"reason": REASON, "check_id": CHECK_A, "expires_at": _in(timedelta(0))},
        "expiry too far": {"reason": REASON, "check_id": CHECK_A, "expires_at": _in(timedelta(days=4 * 365))},
        "naive expiry": {"reason": REASON, "check_id": CHECK_A, "expires_at": "2031-01-01T00:00:00"},
        "unknown finding": {"reason": REASON, "finding_id": str(uuid.uuid4())},
        "unknown account": {"reason": REASON, "aws_account_id": str(uuid.uuid4())},
        "extra field": {"reason": REASON, "check_id": CHECK_A, "severity": "low"},
        "tag value without key": {"reason": REASON, "tag_value": "sandbox"},
        "not a region": {"reason": REASON, "region": "moon-base"},
        "no reason": {"check_id": CHECK_A},
        "blank reason": {"check_id": CHECK_A, "reason": "   "},
        "reason too long": {"check_id": CHECK_A, "reason": "x" * 2001},
        "control character": {"check_id": CHECK_A, "reason": "bad\x00reason"},
        "owner too long": {"check_id": CHECK_A, "reason": REASON, "owner": "o" * 321},
        "empty owner": {"check_id": CHECK_A, "reason": REASON, "owner": ""},
        "bad finding id": {"reason": REASON, "finding_id": "not-a-uuid"},
    }


@pytest.mark.parametrize("case", list(_bad_bodies()))
async def test_invalid_rules_are_refused_and_change_nothing(client, world, case):
    before = await snapshot()
    r = await client.post(world["rules"], json=_bad_bodies()[case], headers=world["h"])
    body = assert_problem(r, 422, "validation-error")
    assert body["errors"] and body["detail"]
    assert await snapshot() == before


async def test_a_foreign_finding_or_account_is_refused_like_an_unknown_one(client, world):
    other = await make_team(client, name="Other")
    account = await make_account(other.workspace_id, "theirs")
    await record_scan(account, [record(account, CHECK_A, "us-east-1", "theirs", "FAIL")], None)
    async with session_scope() as s:
        foreign_finding = await s.scalar(select(Finding.id).where(Finding.aws_account_id == account.id))
    before = await snapshot()
    for field, foreign in (("finding_id", foreign_finding), ("aws_account_id", account.id)):
        answers = []
        for value in (foreign, uuid.uuid4()):
            r = await client.post(world["rules"], json={"reason": REASON, field: str(value)}, headers=world["h"])
            body = assert_problem(r, 422, "validation-error")
            answers.append({k: body[k] for k in ("type", "title", "status", "detail", "errors")})
        assert answers[0] == answers[1]
        assert answers[0]["errors"][0]["loc"] == ["body", field]
    assert await snapshot() == before


async def test_roles(client, world):
    team = world["team"]
    rule = await _create(client, world, {"check_id": CHECK_A})
    url = f"{world['rules']}/{rule['id']}"
    before = await snapshot()
    viewer = team.viewer.headers
    assert_problem(await client.post(world["rules"], json={"reason": REASON, "check_id": CHECK_B}, headers=viewer),
                   403, "forbidden")
    assert_problem(await client.patch(url, json={"reason": "viewer"}, headers=viewer), 403, "forbidden")
    assert_problem(await client.delete(url, headers=viewer), 403, "forbidden")
    assert await snapshot() == before
    assert (await client.get(url, headers=viewer)).json()["id"] == rule["id"]
    assert [i["id"] for i in await all_pages(client, world["rules"], viewer)] == [rule["id"]]
    # Admins, owners and member-role API keys may mute; the key is named as creator and default owner.
    for headers in (team.admin.headers, team.owner.headers):
        await _create(client, world, {"check_id": CHECK_B}, headers=headers)
    key = await make_api_key(team.workspace_id, Role.member)
    by_key = await _create(client, world, {"region": "us-east-1"}, headers=key.headers)
    assert by_key["created_by"] == by_key["owner"] == f"api-key:{key.prefix}"
    viewer_key = await make_api_key(team.workspace_id, Role.viewer)
    assert_problem(await client.post(world["rules"], json={"reason": REASON, "check_id": CHECK_B},
                                     headers=viewer_key.headers), 403)


async def test_other_workspaces_cannot_see_or_touch_a_rule(client, world):
    rule = await _create(client, world, {"check_id": CHECK_A})
    other = await make_team(client, name="Outsider")
    key = await make_api_key(other.workspace_id, Role.owner)
    ignored = {"api_keys": {"last_used_at"}}
    before = await snapshot(ignored)
    for path in (other.path, world["path"]):   # their own workspace with our id, and ours
        url = f"{path}/mute-rules/{rule['id']}"
        for headers in (other.owner.headers, key.headers):
            assert_problem(await client.get(url, headers=headers), 404, "not-found")
            assert_problem(await client.patch(url, json={"reason": "mine"}, headers=headers), 404, "not-found")
            assert_problem(await client.delete(url, headers=headers), 404, "not-found")
    assert (await client.get(f"{other.path}/mute-rules?state=all", headers=other.owner.headers)).json()["items"] == []
    assert await snapshot(ignored) == before
    async with session_scope() as s:
        assert (await s.get(MuteRule, uuid.UUID(rule["id"]))).ended_at is None


# --------------------------------------------------------------------------------------------------------------
# Listing and audit


async def test_list_filters_and_pages(client, world):
    h = world["h"]
    made = [await _create(client, world, body) for body in (
        {"check_id": CHECK_A}, {"check_id": CHECK_A, "aws_account_id": str(world["a"].id)},
        {"check_id": CHECK_B}, {"aws_account_id": str(world["a"].id)}, {"region": "us-east-1"})]
    ids = [m["id"] for m in made]
    assert (await client.delete(f"{world['rules']}/{ids[2]}", headers=h)).status_code == 204
    listed = await all_pages(client, world["rules"], h, limit=2)
    assert [i["id"] for i in listed] == [ids[4], ids[3], ids[1], ids[0]]   # newest first, active only
    assert [i["id"] for i in await all_pages(client, f"{world['rules']}?state=ended", h)] == [ids[2]]
    assert [i["id"] for i in await all_pages(client, f"{world['rules']}?state=all", h, limit=1)] == ids[::-1]
    assert [i["id"] for i in await all_pages(client, f"{world['rules']}?check_id={CHECK_A}", h)] == [ids[1], ids[0]]
    assert [i["id"] for i in await all_pages(
        client, f"{world['rules']}?aws_account_id={world['a'].id}&state=all", h)] == [ids[3], ids[1]]
    for query in ("state=gone", "aws_account_id=nope", "cursor=!!!", "limit=0"):
        assert_problem(await client.get(f"{world['rules']}?{query}", headers=h), 422)
    assert_problem(await client.get(f"{world['rules']}/{uuid.uuid4()}", headers=h), 404, "not-found")


async def test_every_mute_and_unmute_is_audited(client, world):
    h = world["h"]
    expiry = _in(timedelta(days=2))
    rule = await _create(client, world, {"tag_key": "env", "tag_value": "sandbox", "expires_at": expiry,
                                         "owner": "secops@example.com"})
    await client.patch(f"{world['rules']}/{rule['id']}", json={"reason": "Re-reviewed."}, headers=h)
    await client.delete(f"{world['rules']}/{rule['id']}", headers=h)
    events = [e for e in await _audit(client, world) if e["action"].startswith("mute_rule.")]
    assert [e["action"] for e in events] == ["mute_rule.deleted", "mute_rule.updated", "mute_rule.created"]
    assert {e["target_id"] for e in events} == {rule["id"]}
    assert {e["actor_id"] for e in events} == {str(world["team"].member.id)}
    created, deleted = events[2]["details"], events[0]["details"]
    assert created["selectors"] == {"tag_key": "env", "tag_value": "sandbox"}
    assert (created["reason"], created["owner"]) == (REASON, "secops@example.com")
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(expiry)
    # sandbox-logs: 2 accounts x 2 checks x 2 regions
    assert created["matched_findings"] == rule["matched_findings"] == 8
    assert deleted["reason"] == "Re-reviewed." and deleted["end_reason"] == "unmuted"
    assert deleted["matched_findings"] == 8


# --------------------------------------------------------------------------------------------------------------
# Scans meet existing rules


@pytest.mark.parametrize("rule_seen_in_scan_transaction", [True, False])
async def test_new_findings_of_a_later_scan_arrive_muted(client, signup, make_workspace, aws_fake, monkeypatch,
                                                          rule_seen_in_scan_transaction):
    """False: the scan's own apply missed the rule (committed while the scan wrote its results); the apply after
    the scan's commit still mutes its findings."""
    import app.tasks.scans as scan_tasks
    from tests.scan_helpers import connect_account, run_queued_jobs

    if not rule_seen_in_scan_transaction:
        async def blind_apply(session, workspace_id, **kwargs):
            return 0

        monkeypatch.setattr(scan_tasks, "apply_mutes", blind_apply)

    owner = await signup()
    ws = await make_workspace(owner["headers"])
    h, path = owner["headers"], f"/v1/workspaces/{ws['id']}"
    account = await connect_account(client, aws_fake, h, ws["id"], regions=["us-east-1"])
    r = await client.post(f"{path}/mute-rules", headers=h,
                          json={"reason": REASON, "tag_key": "env", "tag_value": "sandbox",
                                "aws_account_id": account["id"]})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["matched_findings"] == 0

    ec2 = aws_fake.client("ec2", "us-east-1")
    groups = {}
    for name, tags in (("sandbox", [{"Key": "env", "Value": "sandbox"}]), ("prod", [{"Key": "env", "Value": "prod"}])):
        group = ec2.create_security_group(GroupName=f"{name}-{uuid.uuid4().hex[:6]}", Description=name,
                                          TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        groups[name] = group["GroupId"]

    r = await client.post(f"{path}/aws-accounts/{account['id']}/scans", headers=h)
    assert r.status_code == 202, r.text
    await run_queued_jobs()
    scan = (await client.get(f"{path}/aws-accounts/{account['id']}/scans/{r.json()['id']}", headers=h)).json()
    assert scan["status"] in ("succeeded", "partial"), scan

    muted = await all_pages(client, f"{path}/findings?muted=only", h)
    shown = await all_pages(client, f"{path}/findings", h)
    assert muted and {i["resource_id"] for i in muted} == {groups["sandbox"]}
    assert all(i["mute_rule_id"] == rule["id"] and i["resource_tags"] == {"env": "sandbox"} for i in muted)
    assert any(i["resource_id"] == groups["prod"] for i in shown)
    assert not any(i["resource_id"] == groups["sandbox"] for i in shown)
    got = (await client.get(f"{path}/mute-rules/{rule['id']}", headers=h)).json()
    assert got["matched_findings"] == len(muted)
    summary = (await client.get(f"{path}/findings/summary", headers=h)).json()
    assert summary["muted"] == len(muted)


async def test_an_account_mute_follows_the_account_to_its_new_connection(client, world):
    """Reconnecting an AWS account makes a new connection, and the next scan moves its findings there (same uids):
    a mute of the account keeps covering them. Another account's findings stay unmuted."""
    path, h, a = world["path"], world["h"], world["a"]
    r = await client.post(world["rules"], headers=h, json={"reason": REASON, "aws_account_id": str(a.id),
                                                           "check_id": CHECK_A})
    assert r.status_code == 201, r.text
    rule = r.json()
    expected = rule["matched_findings"]
    assert expected == len(REGIONS) * len(RESOURCES)

    async with session_scope() as s:   # disconnected: the row stays, with its findings, for history
        await s.execute(update(AwsAccount).where(AwsAccount.id == a.id).values(status=AccountStatus.disconnected))
    again = await make_account(world["team"].workspace_id, "prod (reconnected)", aws_account_id=a.aws_account_id)
    await record_scan(again, _records(again), coverage_of([CHECK_A, CHECK_B], REGIONS))
    async with session_scope() as s:
        moved = await s.scalar(select(func.count()).select_from(Finding).where(Finding.aws_account_id == again.id))
        await mutes_service.apply_mutes(s, again.workspace_id, account_ids=[again.id])   # as the scan job does
    assert moved == len(_records(again))

    muted = await all_pages(client, f"{path}/findings?muted=only", h)
    assert len(muted) == expected
    assert {(m["aws_account_id"], m["check_id"], m["mute_rule_id"]) for m in muted} == {
        (str(again.id), CHECK_A, rule["id"])}
    assert (await client.get(f"{world['rules']}/{rule['id']}", headers=h)).json()["matched_findings"] == expected
    # Each moved finding is listed once, with the delta of its new connection's scan (its old connection's scan
    # said something about it too).
    everything = await all_pages(client, f"{path}/findings?muted=include&account_id={again.id}", h, limit=7)
    assert len(everything) == len({f["id"] for f in everything}) == moved
    assert {f["last_delta"] for f in everything} == {"unchanged"}


# --------------------------------------------------------------------------------------------------------------
# Bulk


async def test_apply_mutes_over_20k_findings_is_quick_and_exact(client):
    team = await make_team(client, name="Big")
    ws = uuid.UUID(team.workspace_id)
    account = await make_account(ws, "big")
    now = datetime.now(UTC)
    rows = []
    for n in range(20_000):
        rows.append({
            "id": uuid7(), "workspace_id": ws, "aws_account_id": account.id, "uid": f"uid-{n}", "source": "cloudwizard",
            "check_id": CHECK_A if n % 4 else CHECK_B, "title": "t", "service": "s3", "category": "c",
            "severity": "low", "status": "FAIL", "region": REGIONS[n % 2], "resource_type": "r",
            "resource_id": f"{'sandbox' if n % 10 == 0 else 'prod'}-{n}", "resource_arn": None,
            "resource_tags": {"team": "data"} if n % 7 == 0 else {}, "message": "m", "compliance": {}, "details": {},
            "first_seen_at": now, "last_seen_at": now, "status_changed_at": now})
    async with session_scope() as s:
        for start in range(0, len(rows), 1000):
            await s.execute(insert(Finding), rows[start:start + 1000])
        expiring = MuteRule(workspace_id=ws, check_id=CHECK_A, reason=REASON, owner="o", created_by="o",
                            expires_at=now + timedelta(days=1), selectors={"check_id": CHECK_A})
        by_pattern = MuteRule(workspace_id=ws, resource_pattern="sandbox-*", reason=REASON, owner="o",
                              created_by="o", selectors={"resource_pattern": "sandbox-*"})
        by_tag = MuteRule(workspace_id=ws, tag_key="team", tag_value="data", reason=REASON, owner="o",
                          created_by="o", selectors={"tag_key": "team", "tag_value": "data"})
        s.add_all([expiring, by_pattern, by_tag])
        await s.flush()
        rule_ids = (expiring.id, by_pattern.id, by_tag.id)

    def want(n: int) -> uuid.UUID | None:
        # Rules without expiry first (the oldest of them), then the expiring one.
        if n % 10 == 0:
            return rule_ids[1]
        if n % 7 == 0:
            return rule_ids[2]
        return rule_ids[0] if n % 4 else None

    async with session_scope() as s:
        started = time.perf_counter()
        changed = await mutes_service.apply_mutes(s, ws)
        elapsed = time.perf_counter() - started
    assert changed == sum(want(n) is not None for n in range(20_000))
    assert elapsed < 3.0, f"apply_mutes took {elapsed:.2f} s over 20k findings"
    async with session_scope() as s:
        state = dict((await s.execute(select(Finding.uid, Finding.mute_rule_id))).tuples().all())
        # Nothing to do the second time.
        started = time.perf_counter()
        assert await mutes_service.apply_mutes(s, ws) == 0
        again = time.perf_counter() - started
        # One rule gone: its findings are handed on or unmuted, in chunks.
        await s.execute(update(MuteRule).where(MuteRule.id == rule_ids[1]).values(ended_at=now,
                                                                                 end_reason="unmuted"))
        assert await mutes_service.apply_mutes(s, ws) == 2_000
        after = dict((await s.execute(select(Finding.uid, Finding.mute_rule_id))).tuples().all())
    assert state == {f"uid-{n}": want(n) for n in range(20_000)}
    assert again < 3.0
    assert after == {f"uid-{n}": (want(n) if n % 10 else rule_ids[2] if n % 7 == 0 else
                                  rule_ids[0] if n % 4 else None) for n in range(20_000)}
