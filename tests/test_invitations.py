"""Invitations: token shown once and kept as a digest, role bounds, the acceptance flow and its refusals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from app.db import session_scope
from app.models import Invitation, Role
from app.security import token_digest
from tests.ws_helpers import (
    ROLES,
    add_member,
    assert_problem,
    make_api_key,
    make_team,
    make_user,
    membership_role,
    snapshot,
)

ACCEPT = "/v1/invitations/accept"


async def _invite(client, team, email, role="member", headers=None):
    r = await client.post(
        f"{team.path}/invitations", json={"email": email, "role": role}, headers=headers or team.owner.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _list(client, team, **params):
    r = await client.get(f"{team.path}/invitations", params=params, headers=team.owner.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _events(client, team, action):
    r = await client.get(f"{team.path}/audit-events", params={"action": action}, headers=team.owner.headers)
    return r.json()["items"]


async def test_invitation_flow_end_to_end(client, settings):
    team = await make_team(client)
    carol = await make_user("carol@example.com", display_name="Carol")
    created = await _invite(client, team, "Carol@Example.COM", "admin", headers=team.admin.headers)
    token = created["token"]
    assert len(token) >= 40
    assert created["email"] == "carol@example.com"
    assert (created["role"], created["status"]) == ("admin", "pending")
    assert created["invited_by_user_id"] == str(team.admin.id)
    assert created["workspace_id"] == team.workspace_id
    expires = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"])
    assert expires == timedelta(seconds=settings.invitation_ttl_seconds)
    url = urlsplit(created["accept_url"])
    assert f"{url.scheme}://{url.netloc}" == settings.public_base_url.rstrip("/")
    assert url.path == "/invitations/accept" and parse_qs(url.query) == {"token": [token]}

    # Only the digest is stored; the token appears nowhere in the database or in a listing.
    async with session_scope() as session:
        row = await session.get(Invitation, uuid.UUID(created["id"]))
        assert row.token_hash == token_digest(token)
    assert token not in repr(await snapshot())
    listing = await _list(client, team)
    assert [i["id"] for i in listing["items"]] == [created["id"]]
    assert "token" not in listing["items"][0] and token not in str(listing)

    r = await client.post(ACCEPT, json={"token": token}, headers=carol.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["role"] == "admin"
    assert body["workspace"]["id"] == team.workspace_id and body["workspace"]["role"] == "admin"
    assert body["workspace"]["name"] == "Acme Security"
    assert await membership_role(team.workspace_id, carol.id) == Role.admin
    assert (await client.get(team.path, headers=carol.headers)).json()["role"] == "admin"

    [item] = (await _list(client, team))["items"]
    assert item["status"] == "accepted" and item["accepted_by_user_id"] == str(carol.id)
    assert item["accepted_at"] is not None

    [event] = await _events(client, team, "invitation.accepted")
    assert (event["actor_type"], event["actor_id"], event["actor_label"]) == (
        "user",
        str(carol.id),
        carol.email,
    )
    assert (event["target_type"], event["target_id"]) == ("invitation", created["id"])
    assert event["details"] == {"email": "carol@example.com", "role": "admin", "user_id": str(carol.id)}
    [event] = await _events(client, team, "invitation.created")
    assert event["actor_id"] == str(team.admin.id)
    assert event["details"] == {"email": "carol@example.com", "role": "admin"}

    # Single use: the same token, even for its rightful owner, is gone.
    assert_problem(
        await client.post(ACCEPT, json={"token": token}, headers=carol.headers), 410, "invitation-used"
    )


async def test_a_user_with_another_email_cannot_accept(client):
    team = await make_team(client)
    dave = await make_user("dave@example.com")
    mallory = await make_user("mallory@example.com")
    token = (await _invite(client, team, "dave@example.com"))["token"]
    before = await snapshot(ignore={"api_keys": {"last_used_at"}})
    problem = assert_problem(await client.post(ACCEPT, json={"token": token}, headers=mallory.headers), 403)
    assert "different e-mail" in problem["detail"] and "dave" not in problem["detail"]
    assert await snapshot(ignore={"api_keys": {"last_used_at"}}) == before
    assert await membership_role(team.workspace_id, mallory.id) is None
    r = await client.post(ACCEPT, json={"token": token}, headers=dave.headers)
    assert r.status_code == 200, r.text


async def test_an_expired_invitation_is_refused(client):
    team = await make_team(client)
    erin = await make_user()
    created = await _invite(client, team, erin.email)
    async with session_scope() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.id == uuid.UUID(created["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(
        await client.post(ACCEPT, json={"token": created["token"]}, headers=erin.headers),
        410,
        "invitation-expired",
    )
    assert await membership_role(team.workspace_id, erin.id) is None
    assert [i["status"] for i in (await _list(client, team))["items"]] == ["expired"]
    assert [i["id"] for i in (await _list(client, team, status="expired"))["items"]] == [created["id"]]
    assert (await _list(client, team, status="pending"))["items"] == []
    # A fresh invitation to the same address works (the expired one is not "pending").
    again = await _invite(client, team, erin.email)
    assert (
        await client.post(ACCEPT, json={"token": again["token"]}, headers=erin.headers)
    ).status_code == 200


async def test_a_revoked_invitation_is_refused(client):
    team = await make_team(client)
    frank = await make_user()
    created = await _invite(client, team, frank.email, "viewer")
    r = await client.delete(f"{team.path}/invitations/{created['id']}", headers=team.admin.headers)
    assert r.status_code == 204, r.text
    assert_problem(
        await client.post(ACCEPT, json={"token": created["token"]}, headers=frank.headers),
        410,
        "invitation-revoked",
    )
    assert await membership_role(team.workspace_id, frank.id) is None
    [item] = (await _list(client, team))["items"]
    assert item["status"] == "revoked" and item["revoked_at"] is not None
    # Revoking again changes nothing and records nothing.
    r = await client.delete(f"{team.path}/invitations/{created['id']}", headers=team.admin.headers)
    assert r.status_code == 204
    [event] = await _events(client, team, "invitation.revoked")
    assert event["actor_id"] == str(team.admin.id) and event["target_id"] == created["id"]


async def test_an_accepted_invitation_cannot_be_revoked(client):
    team = await make_team(client)
    gina = await make_user()
    created = await _invite(client, team, gina.email)
    assert (
        await client.post(ACCEPT, json={"token": created["token"]}, headers=gina.headers)
    ).status_code == 200
    assert_problem(
        await client.delete(f"{team.path}/invitations/{created['id']}", headers=team.owner.headers), 409
    )
    assert (await _list(client, team))["items"][0]["status"] == "accepted"


async def test_unknown_tokens_and_bad_accept_requests(client):
    team = await make_team(client)
    user = await make_user()
    assert_problem(
        await client.post(ACCEPT, json={"token": "no-such-token"}, headers=user.headers), 404, "not-found"
    )
    for body in ({}, {"token": ""}, {"token": "x" * 201}, {"token": "abc", "role": "owner"}):
        assert_problem(await client.post(ACCEPT, json=body, headers=user.headers), 422, "validation-error")
    token = (await _invite(client, team, user.email))["token"]
    assert_problem(await client.post(ACCEPT, json={"token": token}), 401)
    key = await make_api_key(team.workspace_id, Role.owner)
    assert_problem(await client.post(ACCEPT, json={"token": token}, headers=key.headers), 403)
    assert await membership_role(team.workspace_id, user.id) is None


async def test_accepting_when_already_a_member_is_a_conflict(client):
    team = await make_team(client)
    hank = await make_user()
    created = await _invite(client, team, hank.email)
    await add_member(team.workspace_id, hank, Role.viewer)  # joined another way meanwhile
    assert_problem(await client.post(ACCEPT, json={"token": created["token"]}, headers=hank.headers), 409)
    assert await membership_role(team.workspace_id, hank.id) == Role.viewer
    assert (await _list(client, team))["items"][0]["status"] == "pending"


async def test_inviting_an_existing_member_is_a_conflict(client):
    team = await make_team(client)
    problem = assert_problem(
        await client.post(
            f"{team.path}/invitations",
            json={"email": team.member.email.upper(), "role": "admin"},
            headers=team.owner.headers,
        ),
        409,
    )
    assert "already a member" in problem["detail"]
    assert (await _list(client, team))["items"] == []


async def test_reinviting_a_pending_address_replaces_the_invitation(client):
    team = await make_team(client)
    ivy = await make_user()
    first = await _invite(client, team, ivy.email, "viewer")
    second = await _invite(client, team, ivy.email.upper(), "member", headers=team.admin.headers)
    assert first["token"] != second["token"]
    statuses = {i["id"]: i["status"] for i in (await _list(client, team))["items"]}
    assert statuses == {first["id"]: "revoked", second["id"]: "pending"}
    [revoked] = await _events(client, team, "invitation.revoked")
    assert revoked["target_id"] == first["id"] and revoked["details"]["reason"] == "replaced"
    created = await _events(client, team, "invitation.created")
    assert created[0]["details"]["replaces"] == [first["id"]]
    assert_problem(
        await client.post(ACCEPT, json={"token": first["token"]}, headers=ivy.headers),
        410,
        "invitation-revoked",
    )
    r = await client.post(ACCEPT, json={"token": second["token"]}, headers=ivy.headers)
    assert r.status_code == 200 and r.json()["role"] == "member"


@pytest.mark.parametrize(
    "inviter, role, status",
    [
        (Role.admin, Role.viewer, 201),
        (Role.admin, Role.member, 201),
        (Role.admin, Role.admin, 201),
        (Role.admin, Role.owner, 403),
        (Role.owner, Role.owner, 201),
        (Role.owner, Role.admin, 201),
    ],
)
async def test_invited_role_cannot_exceed_the_inviters(client, inviter, role, status):
    team = await make_team(client)
    r = await client.post(
        f"{team.path}/invitations",
        json={"email": "new@example.com", "role": role.value},
        headers=team.by_role(inviter).headers,
    )
    assert r.status_code == status, r.text
    assert len((await _list(client, team))["items"]) == (1 if status == 201 else 0)


async def test_api_keys_invite_within_their_role(client):
    team = await make_team(client)
    key = await make_api_key(team.workspace_id, Role.admin)
    assert_problem(
        await client.post(
            f"{team.path}/invitations", json={"email": "a@example.com", "role": "owner"}, headers=key.headers
        ),
        403,
    )
    created = await _invite(client, team, "a@example.com", "admin", headers=key.headers)
    assert created["invited_by_user_id"] is None
    [event] = await _events(client, team, "invitation.created")
    assert (event["actor_type"], event["actor_id"]) == ("api_key", str(key.id))


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "role": "member"},
        {"email": "a@example.com", "role": "superuser"},
        {"email": "a@example.com"},
        {"role": "member"},
        {"email": "a@example.com", "role": "member", "token": "mine"},
        {"email": "a\x00@example.com", "role": "member"},
    ],
)
async def test_create_rejects_bad_bodies(client, body):
    team = await make_team(client)
    assert_problem(
        await client.post(f"{team.path}/invitations", json=body, headers=team.owner.headers),
        422,
        "validation-error",
    )
    assert (await _list(client, team))["items"] == []


@pytest.mark.parametrize("role", ROLES)
async def test_roles_matrix(client, role):
    team = await make_team(client)
    existing = await _invite(client, team, "existing@example.com")
    h = team.by_role(role).headers
    allowed = role.at_least(Role.admin)
    r_create = await client.post(
        f"{team.path}/invitations", json={"email": "n@example.com", "role": "viewer"}, headers=h
    )
    r_list = await client.get(f"{team.path}/invitations", headers=h)
    r_revoke = await client.delete(f"{team.path}/invitations/{existing['id']}", headers=h)
    if allowed:
        assert (r_create.status_code, r_list.status_code, r_revoke.status_code) == (201, 200, 204)
    else:
        for r in (r_create, r_list, r_revoke):
            assert_problem(r, 403, "forbidden")
        statuses = {i["email"]: i["status"] for i in (await _list(client, team))["items"]}
        assert statuses == {"existing@example.com": "pending"}


async def test_list_is_newest_first_paginated_and_filterable(client):
    team = await make_team(client)
    ids = [(await _invite(client, team, f"p{i}@example.com"))["id"] for i in range(5)]
    walked, cursor = [], None
    while True:
        page = await _list(client, team, limit=2, **({"cursor": cursor} if cursor else {}))
        walked.extend(i["id"] for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == ids[::-1]
    await client.delete(f"{team.path}/invitations/{ids[0]}", headers=team.owner.headers)
    assert [i["id"] for i in (await _list(client, team, status="revoked"))["items"]] == [ids[0]]
    assert [i["id"] for i in (await _list(client, team, status="pending"))["items"]] == ids[:0:-1]
    assert (await _list(client, team, status="accepted"))["items"] == []
    assert_problem(
        await client.get(f"{team.path}/invitations", params={"status": "lost"}, headers=team.owner.headers),
        422,
    )


async def test_invitations_of_another_workspace_are_invisible(client):
    team = await make_team(client)
    other = await make_team(client, name="Other")
    theirs = await _invite(client, other, "x@example.com")
    assert_problem(
        await client.delete(f"{team.path}/invitations/{theirs['id']}", headers=team.owner.headers),
        404,
        "not-found",
    )
    assert_problem(
        await client.delete(f"{team.path}/invitations/{uuid.uuid4()}", headers=team.owner.headers), 404
    )
    assert_problem(
        await client.delete(f"{team.path}/invitations/not-a-uuid", headers=team.owner.headers), 422
    )
    assert (await _list(client, team))["items"] == []
    assert (await _list(client, other))["items"][0]["status"] == "pending"


@pytest.mark.postgres
async def test_one_invitation_accepted_twice_at_once_makes_one_member(client):
    team = await make_team(client)
    jo = await make_user()
    token = (await _invite(client, team, jo.email))["token"]
    results = await asyncio.gather(
        *[client.post(ACCEPT, json={"token": token}, headers=jo.headers) for _ in range(3)]
    )
    assert sorted(r.status_code for r in results) == [200, 410, 410], [r.text for r in results]
    async with session_scope() as session:
        accepted = (await session.scalars(select(Invitation.accepted_by_user_id))).all()
    assert accepted == [jo.id]
    assert len(await _events(client, team, "invitation.accepted")) == 1
