"""Workspaces: creation (creator is owner), listing with roles, reading, renaming, complete deletion."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from app.db import session_scope
from app.models import Role, User, Workspace
from tests.ws_helpers import (
    CLIENT_IP,
    ROLES,
    add_member,
    assert_problem,
    count_by_workspace,
    make_api_key,
    make_team,
    make_user,
)


async def _workspace_count() -> int:
    async with session_scope() as session:
        return (await session.execute(select(func.count()).select_from(Workspace))).scalar_one()


async def test_create_makes_the_creator_owner_and_records_it(client):
    user = await make_user(display_name="Ann")
    r = await client.post("/v1/workspaces", json={"name": "  Acme Security  "}, headers=user.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Acme Security"
    assert body["role"] == "owner"
    uuid.UUID(body["id"])
    assert set(body) == {"id", "name", "role", "created_at", "updated_at"}

    members = (await client.get(f"/v1/workspaces/{body['id']}/members", headers=user.headers)).json()["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(str(user.id), "owner")]

    events = (await client.get(f"/v1/workspaces/{body['id']}/audit-events", headers=user.headers)).json()[
        "items"
    ]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "workspace.created"
    assert (event["actor_type"], event["actor_id"], event["actor_label"]) == (
        "user",
        str(user.id),
        user.email,
    )
    assert event["source_ip"] == CLIENT_IP
    assert (event["target_type"], event["target_id"]) == ("workspace", body["id"])
    assert event["details"] == {"name": "Acme Security"}


async def test_create_needs_a_signed_in_user(client):
    team = await make_team(client)
    key = await make_api_key(team.workspace_id, Role.owner)
    before = await _workspace_count()
    assert_problem(await client.post("/v1/workspaces", json={"name": "Via key"}, headers=key.headers), 403)
    assert_problem(await client.post("/v1/workspaces", json={"name": "Anonymous"}), 401)
    assert_problem(
        await client.post(
            "/v1/workspaces", json={"name": "Forged"}, headers={"Authorization": "Bearer not-a-token"}
        ),
        401,
    )
    assert await _workspace_count() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "body.name"),
        ({"name": "    "}, "body.name"),
        ({"name": "x" * 101}, "body.name"),
        ({"name": "bad\x00name"}, "body.name"),
        ({"name": "line\nbreak"}, "body.name"),
        ({"name": 42}, "body.name"),
        ({}, "body.name"),
        ({"name": "ok", "owner_id": str(uuid.uuid4())}, "body.owner_id"),
    ],
)
async def test_create_rejects_bad_names_and_unknown_fields(client, body, field):
    user = await make_user()
    r = await client.post("/v1/workspaces", json=body, headers=user.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert field in [e["field"] for e in problem["errors"]]
    assert await _workspace_count() == 0


async def test_create_accepts_100_characters_and_unicode(client):
    user = await make_user()
    for name in ("x" * 100, "Sécurité — 東京 🚀"):
        r = await client.post("/v1/workspaces", json={"name": name}, headers=user.headers)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == name


async def test_list_shows_only_my_workspaces_with_my_role_and_paginates(client):
    me = await make_user()
    other = await make_user()
    mine = []
    for i in range(3):
        r = await client.post("/v1/workspaces", json={"name": f"Mine {i}"}, headers=me.headers)
        mine.append(r.json()["id"])
    theirs = (await client.post("/v1/workspaces", json={"name": "Theirs"}, headers=other.headers)).json()[
        "id"
    ]
    shared = (await client.post("/v1/workspaces", json={"name": "Shared"}, headers=other.headers)).json()[
        "id"
    ]
    await add_member(shared, me, Role.viewer)

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/v1/workspaces", params=params, headers=me.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert [w["id"] for w in seen] == mine + [shared]  # oldest first, no duplicates
    assert theirs not in {w["id"] for w in seen}
    roles = {w["id"]: w["role"] for w in seen}
    assert roles == {**{w: "owner" for w in mine}, shared: "viewer"}

    nobody = await make_user()
    assert (await client.get("/v1/workspaces", headers=nobody.headers)).json() == {
        "items": [],
        "next_cursor": None,
    }


async def test_list_with_an_api_key_shows_only_its_workspace(client):
    team = await make_team(client)
    other = await make_team(client, name="Other")
    await add_member(other.workspace_id, team.owner, Role.owner)
    key = await make_api_key(team.workspace_id, Role.member)
    r = await client.get("/v1/workspaces", headers=key.headers)
    assert r.status_code == 200, r.text
    assert [(w["id"], w["role"]) for w in r.json()["items"]] == [(team.workspace_id, "member")]


async def test_list_rejects_bad_paging(client):
    user = await make_user()
    assert_problem(await client.get("/v1/workspaces", params={"limit": 0}, headers=user.headers), 422)
    assert_problem(await client.get("/v1/workspaces", params={"limit": 201}, headers=user.headers), 422)
    assert_problem(await client.get("/v1/workspaces", params={"cursor": "!!!"}, headers=user.headers), 422)


@pytest.mark.parametrize("role", ROLES)
async def test_get_is_open_to_every_member_with_their_role(client, role):
    team = await make_team(client)
    r = await client.get(team.path, headers=team.by_role(role).headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == team.workspace_id
    assert r.json()["role"] == role.value


async def test_get_hides_other_and_missing_workspaces(client):
    team = await make_team(client)
    stranger = await make_user()
    assert_problem(await client.get(team.path, headers=stranger.headers), 404, "not-found")
    assert_problem(await client.get(f"/v1/workspaces/{uuid.uuid4()}", headers=team.owner.headers), 404)
    problem = assert_problem(await client.get("/v1/workspaces/not-a-uuid", headers=team.owner.headers), 422)
    assert problem["errors"][0]["loc"] == ["path", "workspace_id"]
    assert_problem(await client.get(team.path), 401)


@pytest.mark.parametrize(
    "role, status",
    [
        (Role.viewer, 403),
        (Role.member, 403),
        (Role.admin, 200),
        (Role.owner, 200),
    ],
)
async def test_rename_needs_admin(client, role, status):
    team = await make_team(client)
    r = await client.patch(team.path, json={"name": " Renamed "}, headers=team.by_role(role).headers)
    assert r.status_code == status, r.text
    current = (await client.get(team.path, headers=team.owner.headers)).json()["name"]
    if status == 200:
        assert r.json()["name"] == "Renamed" and r.json()["role"] == role.value
        assert current == "Renamed"
    else:
        assert_problem(r, 403, "forbidden")
        assert current == "Acme Security"


async def test_rename_is_audited_once_and_validated(client):
    team = await make_team(client)
    r = await client.patch(team.path, json={"name": "New name"}, headers=team.admin.headers)
    assert r.status_code == 200
    assert (
        await client.patch(team.path, json={"name": "New name"}, headers=team.admin.headers)
    ).status_code == 200
    for bad in ({"name": ""}, {"name": "y" * 101}, {}, {"name": "ok", "id": team.workspace_id}):
        assert_problem(await client.patch(team.path, json=bad, headers=team.owner.headers), 422)
    events = (
        await client.get(
            f"{team.path}/audit-events", params={"action": "workspace.renamed"}, headers=team.owner.headers
        )
    ).json()["items"]
    assert len(events) == 1  # the unchanged second rename records nothing
    assert events[0]["details"] == {"from": "Acme Security", "to": "New name"}
    assert events[0]["actor_id"] == str(team.admin.id)
    assert (await client.get(team.path, headers=team.owner.headers)).json()["name"] == "New name"


@pytest.mark.parametrize(
    "role, status",
    [
        (Role.viewer, 403),
        (Role.member, 403),
        (Role.admin, 403),
        (Role.owner, 204),
    ],
)
async def test_delete_needs_owner(client, role, status):
    team = await make_team(client)
    r = await client.delete(team.path, headers=team.by_role(role).headers)
    assert r.status_code == status, r.text
    after = await count_by_workspace(team.workspace_id)
    assert (after["workspaces"] == 0) == (status == 204)


async def test_delete_with_an_owner_api_key_is_refused(client):
    team = await make_team(client)
    key = await make_api_key(team.workspace_id, Role.owner)
    assert_problem(await client.delete(team.path, headers=key.headers), 403)
    assert (await count_by_workspace(team.workspace_id))["workspaces"] == 1


async def test_delete_removes_every_row_of_the_workspace_and_nothing_else(client):
    team = await make_team(client)
    other = await make_team(client, name="Other")
    for t in (team, other):
        await make_api_key(t.workspace_id, Role.admin)
        r = await client.post(
            f"{t.path}/invitations",
            json={"email": "guest@example.com", "role": "viewer"},
            headers=t.owner.headers,
        )
        assert r.status_code == 201, r.text
        await client.patch(t.path, json={"name": "Renamed"}, headers=t.owner.headers)
    # The owner of the doomed workspace is also in the other one: that membership must survive.
    await add_member(other.workspace_id, team.owner, Role.member)
    before = await count_by_workspace(team.workspace_id)
    other_before = await count_by_workspace(other.workspace_id)
    assert before["workspaces"] == 1 and before["memberships"] == 4 and before["invitations"] == 1
    assert before["api_keys"] == 1 and before["audit_events"] >= 3
    async with session_scope() as session:
        users_before = (await session.execute(select(func.count()).select_from(User))).scalar_one()

    with capture_logs() as logs:
        r = await client.delete(team.path, headers=team.owner.headers)
    assert r.status_code == 204, r.text
    assert r.content == b""

    assert await count_by_workspace(team.workspace_id) == {name: 0 for name in before}
    assert await count_by_workspace(other.workspace_id) == {**other_before, "memberships": 5}
    async with session_scope() as session:
        assert (await session.execute(select(func.count()).select_from(User))).scalar_one() == users_before

    deleted = [e for e in logs if e["event"] == "workspace_deleted"]
    assert len(deleted) == 1
    assert {k: v for k, v in deleted[0].items() if k != "log_level"} == {
        "event": "workspace_deleted",
        "workspace_id": team.workspace_id,
        "actor_type": "user",
        "actor_id": str(team.owner.id),
    }

    assert_problem(await client.get(team.path, headers=team.owner.headers), 404)
    assert_problem(await client.delete(team.path, headers=team.owner.headers), 404)
    listed = (await client.get("/v1/workspaces", headers=team.owner.headers)).json()["items"]
    assert [w["id"] for w in listed] == [other.workspace_id]


async def test_delete_by_a_stranger_changes_nothing(client):
    team = await make_team(client)
    stranger = await make_user()
    before = await count_by_workspace(team.workspace_id)
    with capture_logs() as logs:
        assert_problem(await client.delete(team.path, headers=stranger.headers), 404)
    assert await count_by_workspace(team.workspace_id) == before
    assert not [e for e in logs if e["event"] == "workspace_deleted"]


async def test_malformed_bodies_are_problems_and_change_nothing(client):
    user = await make_user()
    headers = {**user.headers, "content-type": "application/json"}
    r = await client.post("/v1/workspaces", content=b'{"name": "unterminated', headers=headers)
    assert assert_problem(r, 422, "validation-error")["errors"][0]["type"] == "json_invalid"
    r = await client.post("/v1/workspaces", content=b"{\"name\": \"\xff\"}", headers=headers)
    assert_problem(r, 400, "bad-request")
    assert await _workspace_count() == 0
