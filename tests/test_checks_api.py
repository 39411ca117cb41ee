"""The check catalog and framework routes: full metadata, filters, keyset pages, coverage, 404/422 problems,
and access for any principal (user or API key) but never for anonymous callers."""

from __future__ import annotations

import base64

import pytest

from app.checks.catalog import catalog, frameworks
from app.errors import PROBLEM_MEDIA_TYPE
from tests.auth_helpers import add_workspace, reset_rate_limits

CIS = "cis-aws-3.0"


@pytest.fixture(autouse=True)
def _fresh_limits():
    reset_rate_limits()


@pytest.fixture
async def user(signup) -> dict:
    return (await signup())["headers"]


async def _all_pages(client, headers, path: str, **params) -> list[dict]:
    items, cursor, seen_cursors = [], None, set()
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert cursor not in seen_cursors, "pagination loops"
        seen_cursors.add(cursor)


def _assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["detail"]
    return body


# --- checks -------------------------------------------------------------------------------------------


async def test_anonymous_callers_get_401_problems(client):
    for path in ("/v1/checks", "/v1/checks/ec2_ebs_default_encryption", "/v1/frameworks", f"/v1/frameworks/{CIS}"):
        r = await client.get(path)
        _assert_problem(r, 401)
        assert r.headers["www-authenticate"].lower().startswith("bearer")
        r = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        _assert_problem(r, 401)


async def test_list_returns_every_check_with_full_metadata(client, user):
    items = await _all_pages(client, user, "/v1/checks", limit=200)
    expected = catalog()
    assert [i["id"] for i in items] == sorted(expected), "every check, ordered by id"
    for item in items:
        entry = expected[item["id"]]
        meta = entry.meta
        assert item["title"] == meta.title and item["service"] == meta.service
        assert item["category"] == meta.category and item["severity"] == meta.severity.value
        assert item["resource_type"] == meta.resource_type and item["kind"] == entry.spec.kind
        assert item["description"] == meta.description and item["risk"] == meta.risk
        assert item["remediation"] == meta.remediation.model_dump()
        assert item["references"] == [str(u) for u in meta.references]
        assert item["compliance"] == meta.compliance
        assert item["required_actions"] == sorted(entry.spec.requires)


async def test_list_pages_with_an_opaque_cursor(client, user):
    ids = sorted(catalog())
    assert len(ids) >= 2, "needs at least two checks to page"
    first = (await client.get("/v1/checks", params={"limit": 1}, headers=user)).json()
    assert [i["id"] for i in first["items"]] == ids[:1] and first["next_cursor"]
    paged = await _all_pages(client, user, "/v1/checks", limit=1)
    assert [i["id"] for i in paged] == ids
    last = (await client.get("/v1/checks", params={"limit": len(ids)}, headers=user)).json()
    assert len(last["items"]) == len(ids) and last["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["%%%", base64.urlsafe_b64encode(b"DROP TABLE; --").decode(), "x" * 200])
async def test_a_forged_cursor_is_a_422_problem(client, user, cursor):
    r = await client.get("/v1/checks", params={"cursor": cursor}, headers=user)
    body = _assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["query", "cursor"]


async def test_filters_select_exactly_the_matching_checks(client, user):
    entries = catalog()
    sample = entries[sorted(entries)[0]].meta
    cases = [
        ({"service": sample.service}, lambda m: m.service == sample.service),
        ({"category": sample.category}, lambda m: m.category == sample.category),
        ({"severity": sample.severity.value}, lambda m: m.severity == sample.severity),
        ({"framework": CIS}, lambda m: bool(m.compliance.get(CIS))),
        ({"service": sample.service, "severity": sample.severity.value},
         lambda m: m.service == sample.service and m.severity == sample.severity),
    ]
    for params, wanted in cases:
        got = [i["id"] for i in await _all_pages(client, user, "/v1/checks", **params)]
        expected = sorted(cid for cid, e in entries.items() if wanted(e.meta))
        assert got == expected, params
    assert await _all_pages(client, user, "/v1/checks", framework=CIS), "some check maps to CIS"
    assert await _all_pages(client, user, "/v1/checks", service="no-such-service") == []


@pytest.mark.parametrize("params, field", [
    ({"severity": "urgent"}, "severity"),
    ({"category": "everything"}, "category"),
    ({"framework": "cis-aws-9.9"}, "framework"),
    ({"service": "S3!"}, "service"),
    ({"limit": 0}, "limit"),
])
async def test_bad_filters_are_422_problems(client, user, params, field):
    body = _assert_problem(await client.get("/v1/checks", params=params, headers=user), 422)
    assert body["errors"][0]["loc"][-1] == field


async def test_get_returns_one_check_and_404_for_unknown_ones(client, user):
    check_id = sorted(catalog())[0]
    r = await client.get(f"/v1/checks/{check_id}", headers=user)
    assert r.status_code == 200, r.text
    listed = (await client.get("/v1/checks", params={"limit": 200}, headers=user)).json()["items"]
    assert r.json() == next(i for i in listed if i["id"] == check_id)

    _assert_problem(await client.get("/v1/checks/s3_bucket_does_not_exist", headers=user), 404)
    _assert_problem(await client.get("/v1/checks/Not-A-Check", headers=user), 422)


async def test_api_keys_may_read_the_catalog(client, signup):
    owner = await signup()
    workspace_id = await add_workspace(owner["user"]["id"])
    r = await client.post(f"/v1/workspaces/{workspace_id}/api-keys", json={"name": "catalog", "role": "viewer"},
                          headers=owner["headers"])
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['key']}"}
    assert (await client.get("/v1/checks", headers=key)).status_code == 200
    assert (await client.get(f"/v1/frameworks/{CIS}", headers=key)).status_code == 200


# --- frameworks ---------------------------------------------------------------------------------------


def _served() -> dict[tuple[str, str], list[str]]:
    served: dict[tuple[str, str], list[str]] = {}
    for check_id, entry in sorted(catalog().items()):
        for framework_id, control_ids in entry.meta.compliance.items():
            for control_id in control_ids:
                served.setdefault((framework_id, control_id), []).append(check_id)
    return served


async def test_frameworks_list_counts_controls_and_coverage(client, user):
    items = await _all_pages(client, user, "/v1/frameworks")
    known = frameworks()
    assert [i["id"] for i in items] == sorted(known)
    served = _served()
    for item in items:
        fw = known[item["id"]]
        covered = [c for c in fw.controls if (fw.id, c.id) in served]
        assert item["name"] == fw.name and item["version"] == fw.version and item["description"] == fw.description
        assert item["control_count"] == len(fw.controls)
        assert item["automated_count"] == len([c for c in fw.controls if c.automated])
        assert item["covered_count"] == len(covered)
        assert item["automated_covered_count"] == len([c for c in covered if c.automated])
    cis = next(i for i in items if i["id"] == CIS)
    assert cis["control_count"] == 62 and cis["automated_count"] == 36 and cis["covered_count"] >= 1

    one = (await client.get("/v1/frameworks", params={"limit": 1}, headers=user)).json()
    assert len(one["items"]) == 1 and one["next_cursor"]


async def test_framework_detail_lists_controls_with_the_checks_that_serve_them(client, user):
    r = await client.get(f"/v1/frameworks/{CIS}", headers=user)
    assert r.status_code == 200, r.text
    body = r.json()
    fw = frameworks()[CIS]
    served = _served()
    assert [c["id"] for c in body["controls"]] == [c.id for c in fw.controls]
    for control, source in zip(body["controls"], fw.controls, strict=True):
        assert control["title"] == source.title and control["automated"] == source.automated
        assert control["section"] == source.section and control["note"] == source.note
        assert control["check_ids"] == served.get((CIS, source.id), [])
    assert any(c["check_ids"] for c in body["controls"])
    assert body["covered_count"] == sum(1 for c in body["controls"] if c["check_ids"])
    summary = next(i for i in (await client.get("/v1/frameworks", headers=user)).json()["items"] if i["id"] == CIS)
    assert {k: body[k] for k in summary} == summary


async def test_unknown_framework_is_a_404_problem(client, user):
    body = _assert_problem(await client.get("/v1/frameworks/cis-aws-9.9", headers=user), 404)
    assert "cis-aws-9.9" in body["detail"]
