"""Audit log API: admin-only, newest first, complete pages, filters, and who/where on every event."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from app.models import Role
from tests.ws_helpers import CLIENT_IP, ROLES, assert_problem, make_api_key, make_team, make_user

FIELDS = {
    "id",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "source_ip",
    "details",
    "created_at",
}


async def _walk(client, url, headers, **params):
    """All pages, with the page sizes seen."""
    items, sizes, cursor = [], [], None
    while True:
        r = await client.get(
            url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return items, sizes


@pytest.mark.parametrize(
    "role, status",
    [
        (Role.viewer, 403),
        (Role.member, 403),
        (Role.admin, 200),
        (Role.owner, 200),
    ],
)
async def test_audit_log_needs_admin(client, role, status):
    team = await make_team(client)
    r = await client.get(f"{team.path}/audit-events", headers=team.by_role(role).headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert_problem(r, 403, "forbidden")


@pytest.mark.parametrize("role, status", [(r, 200 if r.at_least(Role.admin) else 403) for r in ROLES])
async def test_audit_log_with_api_keys_follows_the_keys_role(client, role, status):
    team = await make_team(client)
    key = await make_api_key(team.workspace_id, role)
    assert (await client.get(f"{team.path}/audit-events", headers=key.headers)).status_code == status


async def test_every_action_is_recorded_with_actor_and_address(client):
    team = await make_team(client)
    owner, admin = team.owner, team.admin
    await client.patch(team.path, json={"name": "Renamed"}, headers=admin.headers)
    await client.patch(
        f"{team.path}/members/{team.viewer.id}", json={"role": "member"}, headers=admin.headers
    )
    await client.delete(f"{team.path}/members/{team.member.id}", headers=admin.headers)
    await client.delete(f"{team.path}/members/{team.viewer.id}", headers=team.viewer.headers)
    invitee = await make_user()
    inv = (
        await client.post(
            f"{team.path}/invitations", json={"email": invitee.email, "role": "viewer"}, headers=owner.headers
        )
    ).json()
    other = (
        await client.post(
            f"{team.path}/invitations",
            json={"email": "z@example.com", "role": "viewer"},
            headers=owner.headers,
        )
    ).json()
    await client.delete(f"{team.path}/invitations/{other['id']}", headers=owner.headers)
    assert (
        await client.post("/v1/invitations/accept", json={"token": inv["token"]}, headers=invitee.headers)
    ).status_code == 200

    events, _ = await _walk(client, f"{team.path}/audit-events", owner.headers)
    assert all(set(e) == FIELDS for e in events)
    assert [(e["action"], e["actor_id"]) for e in events] == [
        ("invitation.accepted", str(invitee.id)),
        ("invitation.revoked", str(owner.id)),
        ("invitation.created", str(owner.id)),
        ("invitation.created", str(owner.id)),
        ("member.left", str(team.viewer.id)),
        ("member.removed", str(admin.id)),
        ("member.role_changed", str(admin.id)),
        ("workspace.renamed", str(admin.id)),
        ("workspace.created", str(owner.id)),
    ]
    labels = {str(u.id): u.email for u in (owner, admin, team.viewer, invitee)}
    for e in events:
        assert e["actor_type"] == "user" and e["actor_label"] == labels[e["actor_id"]]
        assert e["source_ip"] == CLIENT_IP
        assert e["target_type"] and e["target_id"]
    assert inv["token"] not in str(events) and other["token"] not in str(events)
    ids = [e["id"] for e in events]
    assert ids == sorted(ids, reverse=True)
    times = [datetime.fromisoformat(e["created_at"]) for e in events]
    assert times == sorted(times, reverse=True) and all(t.tzinfo is not None for t in times)


async def test_pages_are_complete_without_duplicates(client):
    team = await make_team(client)
    for i in range(10):
        r = await client.patch(team.path, json={"name": f"Name {i}"}, headers=team.owner.headers)
        assert r.status_code == 200
    url = f"{team.path}/audit-events"
    full = (await client.get(url, headers=team.owner.headers)).json()
    assert full["next_cursor"] is None and len(full["items"]) == 11
    items, sizes = await _walk(client, url, team.owner.headers, limit=4)
    assert sizes == [4, 4, 3]
    assert [e["id"] for e in items] == [e["id"] for e in full["items"]]
    assert len({e["id"] for e in items}) == 11
    assert [e["details"]["to"] for e in items[:10]] == [f"Name {i}" for i in range(9, -1, -1)]
    # A page size equal to the total gives one page and a null cursor, never a repeat.
    items, sizes = await _walk(client, url, team.owner.headers, limit=11)
    assert sizes == [11] and len(items) == 11
    # Events recorded while paging show up on no page already served and do not shift later pages.
    first = (await client.get(url, params={"limit": 5}, headers=team.owner.headers)).json()
    await client.patch(team.path, json={"name": "Latest"}, headers=team.owner.headers)
    rest, _ = await _walk(client, url, team.owner.headers, limit=5)
    later, _ = await _walk(client, url, team.owner.headers, limit=5, cursor=first["next_cursor"])
    assert [e["id"] for e in first["items"] + later] == [e["id"] for e in rest[1:]]


async def test_filters(client):
    team = await make_team(client)
    await client.patch(team.path, json={"name": "By admin"}, headers=team.admin.headers)
    await client.patch(team.path, json={"name": "By owner"}, headers=team.owner.headers)
    await client.patch(
        f"{team.path}/members/{team.viewer.id}", json={"role": "member"}, headers=team.admin.headers
    )
    url, h = f"{team.path}/audit-events", team.owner.headers

    async def get(**params):
        r = await client.get(url, params=params, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    assert [e["details"]["to"] for e in await get(action="workspace.renamed")] == ["By owner", "By admin"]
    assert [e["action"] for e in await get(actor_id=str(team.admin.id))] == [
        "member.role_changed",
        "workspace.renamed",
    ]
    assert [e["action"] for e in await get(actor_id=str(team.admin.id), action="workspace.renamed")] == [
        "workspace.renamed"
    ]
    assert await get(action="no.such.action") == []
    assert await get(actor_id=str(uuid.uuid4())) == []

    everything = await get()
    oldest, middle, newest = (datetime.fromisoformat(everything[i]["created_at"]) for i in (-1, 1, 0))
    assert [e["id"] for e in await get(since=middle.isoformat())] == [
        e["id"] for e in everything if datetime.fromisoformat(e["created_at"]) >= middle
    ]
    assert everything[1]["id"] in [e["id"] for e in await get(since=middle.isoformat())]  # inclusive
    assert everything[1]["id"] not in [e["id"] for e in await get(until=middle.isoformat())]  # exclusive
    assert [e["id"] for e in await get(until=(newest + timedelta(seconds=1)).isoformat())] == [
        e["id"] for e in everything
    ]
    assert await get(until=oldest.isoformat()) == []
    assert await get(since=(newest + timedelta(seconds=1)).isoformat()) == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "2024-01-01T00:00:00"}, "query.since"),  # no time zone: ambiguous
        ({"until": "yesterday"}, "query.until"),
        ({"since": "2024-01-02T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "query.until"),
        ({"actor_id": "not-a-uuid"}, "query.actor_id"),
        ({"action": ""}, "query.action"),
        ({"action": "a" * 65}, "query.action"),
        ({"cursor": "%%%"}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
    ],
)
async def test_bad_filters_are_422(client, params, field):
    team = await make_team(client)
    problem = assert_problem(
        await client.get(f"{team.path}/audit-events", params=params, headers=team.owner.headers),
        422,
        "validation-error",
    )
    assert field in [e["field"] for e in problem["errors"]]


async def test_api_key_actions_are_attributed_to_the_key(client):
    team = await make_team(client)
    key = await make_api_key(team.workspace_id, Role.admin)
    assert (await client.patch(team.path, json={"name": "Via key"}, headers=key.headers)).status_code == 200
    [event] = (
        await client.get(
            f"{team.path}/audit-events", params={"action": "workspace.renamed"}, headers=key.headers
        )
    ).json()["items"]
    assert (event["actor_type"], event["actor_id"], event["actor_label"], event["source_ip"]) == (
        "api_key",
        str(key.id),
        f"api-key:{key.prefix}",
        CLIENT_IP,
    )


async def test_each_workspace_sees_only_its_own_events(client):
    team = await make_team(client)
    other = await make_team(client, name="Other")
    await client.patch(other.path, json={"name": "Other renamed"}, headers=other.owner.headers)
    mine, _ = await _walk(client, f"{team.path}/audit-events", team.owner.headers)
    theirs, _ = await _walk(client, f"{other.path}/audit-events", other.owner.headers)
    assert [e["action"] for e in mine] == ["workspace.created"]
    assert [e["action"] for e in theirs] == ["workspace.renamed", "workspace.created"]
    assert not {e["id"] for e in mine} & {e["id"] for e in theirs}
    assert_problem(await client.get(f"{other.path}/audit-events", headers=team.owner.headers), 404)
