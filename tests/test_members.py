"""Members: listing, role changes and removals under the role rules; a workspace always keeps an owner."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.models import Role
from tests.ws_helpers import (
    ROLES,
    add_member,
    assert_problem,
    make_api_key,
    make_team,
    make_user,
    membership_role,
)


async def _events(client, team, action):
    r = await client.get(f"{team.path}/audit-events", params={"action": action}, headers=team.owner.headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.parametrize("role", ROLES)
async def test_every_member_can_list_members(client, role):
    team = await make_team(client)
    r = await client.get(f"{team.path}/members", headers=team.by_role(role).headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(m["user_id"], m["email"], m["display_name"], m["role"]) for m in items] == [
        (str(u.id), u.email, u.display_name, u_role)
        for u, u_role in (
            (team.owner, "owner"),
            (team.admin, "admin"),
            (team.member, "member"),
            (team.viewer, "viewer"),
        )
    ]
    assert all(set(m) == {"user_id", "email", "display_name", "role", "joined_at"} for m in items)


async def test_member_list_paginates_without_gaps(client):
    team = await make_team(client)
    for _ in range(3):
        await add_member(team.workspace_id, await make_user(), Role.viewer)
    full = (await client.get(f"{team.path}/members", headers=team.viewer.headers)).json()
    assert full["next_cursor"] is None and len(full["items"]) == 7
    sizes, walked, cursor = [], [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = await client.get(f"{team.path}/members", params=params, headers=team.viewer.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page["items"]))
        walked.extend(m["user_id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [3, 3, 1]
    assert walked == [m["user_id"] for m in full["items"]]


@pytest.mark.parametrize(
    "role, status",
    [
        (Role.viewer, 403),
        (Role.member, 403),
        (Role.admin, 200),
        (Role.owner, 200),
    ],
)
async def test_changing_roles_needs_admin(client, role, status):
    team = await make_team(client)
    target = await make_user()
    await add_member(team.workspace_id, target, Role.viewer)
    r = await client.patch(
        f"{team.path}/members/{target.id}", json={"role": "member"}, headers=team.by_role(role).headers
    )
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["role"] == "member" and r.json()["user_id"] == str(target.id)
        assert await membership_role(team.workspace_id, target.id) == Role.member
        [event] = await _events(client, team, "member.role_changed")
        assert event["actor_id"] == str(team.by_role(role).id)
        assert (event["target_type"], event["target_id"]) == ("user", str(target.id))
        assert event["details"] == {"from": "viewer", "to": "member"}
    else:
        assert_problem(r, 403, "forbidden")
        assert await membership_role(team.workspace_id, target.id) == Role.viewer
        assert await _events(client, team, "member.role_changed") == []


@pytest.mark.parametrize(
    "role, status",
    [
        (Role.viewer, 403),
        (Role.member, 403),
        (Role.admin, 204),
        (Role.owner, 204),
    ],
)
async def test_removing_others_needs_admin(client, role, status):
    team = await make_team(client)
    target = await make_user()
    await add_member(team.workspace_id, target, Role.member)
    r = await client.delete(f"{team.path}/members/{target.id}", headers=team.by_role(role).headers)
    assert r.status_code == status, r.text
    if status == 204:
        assert await membership_role(team.workspace_id, target.id) is None
        [event] = await _events(client, team, "member.removed")
        assert event["actor_id"] == str(team.by_role(role).id)
        assert (event["target_id"], event["details"]) == (str(target.id), {"role": "member"})
        # The removed user no longer sees the workspace at all.
        assert_problem(await client.get(team.path, headers=target.headers), 404)
    else:
        assert_problem(r, 403)
        assert await membership_role(team.workspace_id, target.id) == Role.member


@pytest.mark.parametrize("role", [Role.viewer, Role.member, Role.admin])
async def test_anyone_can_leave(client, role):
    team = await make_team(client)
    user = team.by_role(role)
    r = await client.delete(f"{team.path}/members/{user.id}", headers=user.headers)
    assert r.status_code == 204, r.text
    assert await membership_role(team.workspace_id, user.id) is None
    [event] = await _events(client, team, "member.left")
    assert (event["actor_id"], event["target_id"]) == (str(user.id), str(user.id))
    assert event["details"] == {"role": role.value}
    assert_problem(await client.get(team.path, headers=user.headers), 404)


async def test_the_last_owner_can_neither_leave_nor_be_demoted(client):
    team = await make_team(client)
    owner = team.owner
    problem = assert_problem(
        await client.delete(f"{team.path}/members/{owner.id}", headers=owner.headers), 409, "conflict"
    )
    assert "last owner" in problem["detail"]
    problem = assert_problem(
        await client.patch(f"{team.path}/members/{owner.id}", json={"role": "admin"}, headers=owner.headers),
        409,
    )
    assert "last owner" in problem["detail"]
    assert await membership_role(team.workspace_id, owner.id) == Role.owner
    assert await _events(client, team, "member.left") == []

    # With a second owner, either can go.
    r = await client.patch(
        f"{team.path}/members/{team.admin.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    r = await client.patch(f"{team.path}/members/{owner.id}", json={"role": "viewer"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    # ...but now the former admin is the last owner again.
    assert_problem(
        await client.delete(f"{team.path}/members/{team.admin.id}", headers=team.admin.headers), 409
    )
    r = await client.delete(f"{team.path}/members/{owner.id}", headers=owner.headers)
    assert r.status_code == 204, r.text


async def test_admins_cannot_touch_owners_or_make_owners(client):
    team = await make_team(client)
    second_owner = await make_user()
    await add_member(team.workspace_id, second_owner, Role.owner)
    h = team.admin.headers
    assert_problem(
        await client.patch(f"{team.path}/members/{team.member.id}", json={"role": "owner"}, headers=h), 403
    )
    assert_problem(
        await client.patch(f"{team.path}/members/{team.admin.id}", json={"role": "owner"}, headers=h), 403
    )
    assert_problem(
        await client.patch(f"{team.path}/members/{second_owner.id}", json={"role": "viewer"}, headers=h), 403
    )
    assert_problem(await client.delete(f"{team.path}/members/{second_owner.id}", headers=h), 403)
    assert await membership_role(team.workspace_id, second_owner.id) == Role.owner
    assert await membership_role(team.workspace_id, team.member.id) == Role.member
    # Admins do manage other admins and themselves below owner.
    other_admin = await make_user()
    await add_member(team.workspace_id, other_admin, Role.admin)
    r = await client.patch(f"{team.path}/members/{other_admin.id}", json={"role": "viewer"}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.patch(f"{team.path}/members/{team.admin.id}", json={"role": "member"}, headers=h)
    assert r.status_code == 200, r.text
    # Demoted, the former admin has lost the right at once.
    assert_problem(
        await client.patch(f"{team.path}/members/{other_admin.id}", json={"role": "admin"}, headers=h), 403
    )


async def test_owners_can_grant_and_take_the_owner_role(client):
    team = await make_team(client)
    h = team.owner.headers
    r = await client.patch(f"{team.path}/members/{team.member.id}", json={"role": "owner"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "owner"
    r = await client.patch(f"{team.path}/members/{team.member.id}", json={"role": "admin"}, headers=h)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert [e["details"] for e in await _events(client, team, "member.role_changed")] == [
        {"from": "owner", "to": "admin"},
        {"from": "member", "to": "owner"},
    ]


async def test_an_unchanged_role_records_nothing(client):
    team = await make_team(client)
    r = await client.patch(
        f"{team.path}/members/{team.member.id}", json={"role": "member"}, headers=team.owner.headers
    )
    assert r.status_code == 200 and r.json()["role"] == "member"
    assert await _events(client, team, "member.role_changed") == []


async def test_unknown_members_and_bad_input(client):
    team = await make_team(client)
    h = team.owner.headers
    stranger = await make_user()
    for user_id in (stranger.id, uuid.uuid4()):
        assert_problem(
            await client.patch(f"{team.path}/members/{user_id}", json={"role": "viewer"}, headers=h),
            404,
            "not-found",
        )
        assert_problem(await client.delete(f"{team.path}/members/{user_id}", headers=h), 404)
    problem = assert_problem(
        await client.patch(f"{team.path}/members/not-a-uuid", json={"role": "viewer"}, headers=h), 422
    )
    assert ["path", "user_id"] in [e["loc"] for e in problem["errors"]]
    assert_problem(await client.delete(f"{team.path}/members/123", headers=h), 422)
    target = f"{team.path}/members/{team.member.id}"
    for body in ({"role": "superuser"}, {}, {"role": "admin", "email": "x@example.com"}, {"role": None}):
        assert_problem(await client.patch(target, json=body, headers=h), 422, "validation-error")
    assert await membership_role(team.workspace_id, team.member.id) == Role.member


async def test_members_of_another_workspace_cannot_be_reached(client):
    team = await make_team(client)
    other = await make_team(client, name="Other")
    # Team's owner is admin of nothing in `other`: its members are invisible, like missing ones.
    assert_problem(
        await client.patch(
            f"{team.path}/members/{other.member.id}", json={"role": "viewer"}, headers=team.owner.headers
        ),
        404,
    )
    assert_problem(
        await client.delete(f"{team.path}/members/{other.member.id}", headers=team.owner.headers), 404
    )
    assert await membership_role(other.workspace_id, other.member.id) == Role.member


async def test_api_keys_manage_members_within_their_role(client):
    team = await make_team(client)
    admin_key = await make_api_key(team.workspace_id, Role.admin)
    member_key = await make_api_key(team.workspace_id, Role.member)
    assert (await client.get(f"{team.path}/members", headers=member_key.headers)).status_code == 200
    assert_problem(
        await client.patch(
            f"{team.path}/members/{team.viewer.id}", json={"role": "member"}, headers=member_key.headers
        ),
        403,
    )
    assert_problem(
        await client.patch(
            f"{team.path}/members/{team.viewer.id}", json={"role": "owner"}, headers=admin_key.headers
        ),
        403,
    )
    r = await client.patch(
        f"{team.path}/members/{team.viewer.id}", json={"role": "member"}, headers=admin_key.headers
    )
    assert r.status_code == 200, r.text
    [event] = await _events(client, team, "member.role_changed")
    assert (event["actor_type"], event["actor_id"]) == ("api_key", str(admin_key.id))
    assert event["actor_label"] == f"api-key:{admin_key.prefix}"
    r = await client.delete(f"{team.path}/members/{team.viewer.id}", headers=admin_key.headers)
    assert r.status_code == 204, r.text
    [event] = await _events(client, team, "member.removed")
    assert event["actor_type"] == "api_key"


@pytest.mark.postgres
async def test_two_owners_leaving_at_once_leave_one_owner(client):
    """Without the workspace lock both requests count two owners and both leave."""
    for _ in range(3):
        team = await make_team(client)
        second = await make_user()
        await add_member(team.workspace_id, second, Role.owner)
        results = await asyncio.gather(
            client.delete(f"{team.path}/members/{team.owner.id}", headers=team.owner.headers),
            client.delete(f"{team.path}/members/{second.id}", headers=second.headers),
        )
        assert sorted(r.status_code for r in results) == [204, 409], [r.text for r in results]
        roles = [await membership_role(team.workspace_id, u.id) for u in (team.owner, second)]
        assert roles.count(Role.owner) == 1 and roles.count(None) == 1


@pytest.mark.postgres
async def test_owners_demoting_each_other_at_once_leave_one_owner(client):
    for _ in range(3):
        team = await make_team(client)
        second = await make_user()
        await add_member(team.workspace_id, second, Role.owner)
        results = await asyncio.gather(
            client.patch(
                f"{team.path}/members/{second.id}", json={"role": "admin"}, headers=team.owner.headers
            ),
            client.patch(
                f"{team.path}/members/{team.owner.id}", json={"role": "admin"}, headers=second.headers
            ),
        )
        # The loser's role is re-read under the lock: it is an admin by then, and admins cannot change owners.
        assert sorted(r.status_code for r in results) == [200, 403], [r.text for r in results]
        roles = [await membership_role(team.workspace_id, u.id) for u in (team.owner, second)]
        assert sorted(roles) == sorted([Role.owner, Role.admin])
