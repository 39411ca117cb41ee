"""THE cross-workspace test: every route under /workspaces/{workspace_id}, present and future, answers
404 to an outsider (a user of another workspace, or another workspace's API key) and changes nothing.

Routes are found by walking `app.routes`, so a route added later is covered without editing this file.
Path parameters are filled with real objects of the victim workspace wherever the parameter can be
mapped to a table; an unmappable `{..._id}` gets a random uuid, and any other parameter fails the test
until this file learns how to fill it.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from app.db import session_scope
from app.models import Base, Membership, Role
from tests.findings_helpers import coverage_of, make_account, record, record_scan
from tests.ws_helpers import make_api_key, make_team, make_user, snapshot

PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_URLS_PER_ROUTE = 50
# Written by authentication itself on every use of a key; not a change made by the route.
IGNORED_COLUMNS = {"api_keys": {"last_used_at"}}
# Routes this module's owners built: the walk must find at least these, or it is walking nothing.
EXPECTED = {
    "workspaces_get",
    "workspaces_update",
    "workspaces_delete",
    "members_list",
    "members_update",
    "members_remove",
    "invitations_create",
    "invitations_list",
    "invitations_revoke",
    "audit_list",
}


def workspace_routes(app) -> list[tuple[str, str, str]]:
    """(method, path template, route name) of every API route whose path holds `{workspace_id}`."""
    out = []
    # FastAPI resolves included routers lazily; iter_route_contexts yields each route with its full path.
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and "{workspace_id}" in route.path:
            for method in sorted(set(route.methods) - {"HEAD", "OPTIONS"}):
                out.append((method, route.path, route.name))
    return out


# Parameters whose table name does not follow from the parameter's name.
TABLE_ALIASES = {"scan_id": "scan_runs"}


def _table_for(param: str):
    """`invitation_id` -> invitations, `key_id` -> api_keys, `account_id` -> aws_accounts, ..."""
    base = param.removesuffix("_id")
    owned = [t for t in Base.metadata.sorted_tables if "workspace_id" in t.c and "id" in t.c]
    if param in TABLE_ALIASES:
        return next(t for t in owned if t.name == TABLE_ALIASES[param])
    for candidates in (
        [f"{base}s", f"{base}es", base],
        [t.name for t in owned if t.name.endswith(f"_{base}s") or t.name.endswith(f"_{base}es")],
    ):
        for table in owned:
            if table.name in candidates:
                return table
    return None


async def _candidates(
    param: str, workspace_id: str, people: dict[str, list[uuid.UUID]]
) -> tuple[list[str], str]:
    """Values for one path parameter: every real object of the workspace it can name, else a random uuid."""
    if param == "workspace_id":
        return [workspace_id], "real"
    if param in people:
        return [str(v) for v in people[param]], "real"
    if not param.endswith("_id"):
        return [], "unfillable"
    table = _table_for(param)
    if table is not None:
        async with session_scope() as session:
            ids = (
                (
                    await session.execute(
                        select(table.c.id)
                        .where(table.c.workspace_id == uuid.UUID(workspace_id))
                        .order_by(table.c.id)
                    )
                )
                .scalars()
                .all()
            )
        if ids:
            return [str(i) for i in ids], "real"
    return [str(uuid.uuid4())], "random"


async def fill_path(
    path: str, workspace_id: str, people: dict[str, list[uuid.UUID]]
) -> tuple[list[str], dict[str, str]]:
    """Every URL the template yields with the workspace's objects, and how each parameter was filled."""
    params = PARAM.findall(path)
    options, how, unfillable = [], {}, []
    for param in params:
        values, how[param] = await _candidates(param, workspace_id, people)
        if how[param] == "unfillable":
            unfillable.append(param)
        options.append(values)
    if unfillable:
        pytest.fail(f"{path}: cannot fill path parameter(s) {unfillable}; teach tests/test_isolation.py how")
    urls = []
    for combo in itertools.islice(itertools.product(*options), MAX_URLS_PER_ROUTE):
        values = dict(zip(params, combo, strict=True))
        urls.append(PARAM.sub(lambda m, v=values: v[m.group(1)], path))
    return urls, how


@pytest.fixture
async def victim(client):
    """Workspace A, with members of every role, invitations in several states, an API key and audit events."""
    team = await make_team(client, name="Victim")
    h = team.owner.headers
    await make_api_key(team.workspace_id, Role.admin, name="victim-key")
    assert (await client.patch(team.path, json={"name": "Victim Inc"}, headers=h)).status_code == 200
    joiner = await make_user()
    accepted = (
        await client.post(
            f"{team.path}/invitations", json={"email": joiner.email, "role": "viewer"}, headers=h
        )
    ).json()
    assert (
        await client.post("/v1/invitations/accept", json={"token": accepted["token"]}, headers=joiner.headers)
    ).status_code == 200
    revoked = (
        await client.post(
            f"{team.path}/invitations", json={"email": "gone@example.com", "role": "member"}, headers=h
        )
    ).json()
    await client.delete(f"{team.path}/invitations/{revoked['id']}", headers=h)
    pending = (
        await client.post(
            f"{team.path}/invitations", json={"email": "soon@example.com", "role": "admin"}, headers=h
        )
    ).json()
    assert pending["status"] == "pending"
    # An AWS account with a finished scan and its findings, so account, scan and finding routes get real ids.
    account = await make_account(team.workspace_id, "victim-prod")
    await record_scan(account, [record(account, "ec2_ebs_default_encryption", "us-east-1", "ebs", "FAIL")],
                      coverage_of(["ec2_ebs_default_encryption"], ["us-east-1"]))
    return team


@pytest.fixture
async def outsider(client):
    """User B, owner of workspace B, and an owner-role API key of workspace B."""
    team = await make_team(client, name="Outsider")
    key = await make_api_key(team.workspace_id, Role.owner, name="outsider-key")
    return team, key


async def _victim_people(workspace_id: str) -> dict[str, list[uuid.UUID]]:
    """`{user_id}` / `{member_id}` stand for each member of the victim: a removal or re-role would show."""
    async with session_scope() as session:
        users = (
            await session.scalars(
                select(Membership.user_id)
                .where(Membership.workspace_id == uuid.UUID(workspace_id))
                .order_by(Membership.id)
            )
        ).all()
    return {"user_id": list(users), "member_id": list(users)}


def _is_404_problem(r) -> bool:
    return (
        r.status_code == 404
        and r.headers.get("content-type", "").startswith("application/problem+json")
        and r.json().get("type", "").endswith("/not-found")
    )


async def test_outsiders_get_404_and_change_nothing_on_every_workspace_route(client, app, victim, outsider):
    outsider_team, outsider_key = outsider
    routes = workspace_routes(app)
    names = {name for _, _, name in routes}
    assert EXPECTED <= names, f"routes missing from the walk: {EXPECTED - names}"
    people = await _victim_people(victim.workspace_id)
    callers = {
        "user of another workspace": outsider_team.owner.headers,
        "API key of another workspace": outsider_key.headers,
    }

    before = await snapshot(IGNORED_COLUMNS)
    assert sum(len(rows) for rows in before.values()) > 20
    failures, fills, calls = [], {}, 0
    for method, template, _name in routes:
        urls, how = await fill_path(template, victim.workspace_id, people)
        fills[(method, template)] = (urls, how)
        for url in urls:
            for who, headers in callers.items():
                kwargs = {"json": {}} if method in BODY_METHODS else {}
                r = await client.request(method, url, headers=headers, **kwargs)
                calls += 1
                if not _is_404_problem(r):
                    failures.append(f"{method} {url} as {who}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
    assert await snapshot(IGNORED_COLUMNS) == before, "an outsider's request changed the database"
    assert calls >= 2 * len(routes)

    # The filled URLs are real: the victim's owner reads every fully-resolved GET URL successfully, so the
    # outsiders' 404s above come from the workspace boundary, not from a wrong id.
    for (method, _template), (urls, how) in fills.items():
        if method == "GET" and all(v == "real" for v in how.values()):
            for url in urls:
                r = await client.get(url, headers=victim.owner.headers)
                assert r.status_code == 200, f"{url} as the victim's owner: {r.status_code} {r.text[:200]}"
    really_filled = {p for _, how in fills.values() for p, v in how.items() if v == "real"}
    assert {"workspace_id", "user_id", "invitation_id", "account_id", "scan_id", "finding_id"} <= really_filled


async def test_outsiders_cannot_reach_victim_objects_through_their_own_workspace(
    client, app, victim, outsider
):
    """The workspace in the path is the outsider's own, the object ids are the victim's: 404, no change."""
    outsider_team, outsider_key = outsider
    people = await _victim_people(victim.workspace_id)
    before = await snapshot(IGNORED_COLUMNS)
    failures, checked = [], 0
    for method, template, _name in workspace_routes(app):
        if set(PARAM.findall(template)) == {"workspace_id"}:
            continue  # nothing of the victim's in such a path
        urls, how = await fill_path(template, victim.workspace_id, people)
        if not all(v == "real" for v in how.values()):
            continue
        for victim_url in urls:
            url = victim_url.replace(victim.workspace_id, outsider_team.workspace_id, 1)
            for who, headers in {"owner": outsider_team.owner.headers, "key": outsider_key.headers}.items():
                kwargs = {"json": {}} if method in BODY_METHODS else {}
                r = await client.request(method, url, headers=headers, **kwargs)
                checked += 1
                # Body-less requests must not find the object. Routes with bodies may refuse `{}` (422) before
                # looking; the snapshot below proves they changed nothing either way.
                allowed = {404} if method not in BODY_METHODS else {404, 422}
                if r.status_code not in allowed or not r.headers["content-type"].startswith(
                    "application/problem"
                ):
                    failures.append(f"{method} {template} as outsider {who}: {r.status_code} {r.text[:200]}")
    assert checked >= 4
    assert not failures, "\n".join(failures)
    assert await snapshot(IGNORED_COLUMNS) == before


async def test_the_walk_fails_on_a_parameter_it_cannot_fill():
    with pytest.raises(pytest.fail.Exception, match="cannot fill"):
        await fill_path("/v1/workspaces/{workspace_id}/frameworks/{framework}", str(uuid.uuid4()), {})
