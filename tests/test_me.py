"""GET and PATCH /v1/me: the signed-in user, their workspaces and roles; API keys are refused."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.auth_helpers import add_member, add_workspace, reset_rate_limits


@pytest.fixture(autouse=True)
def _fresh_limits():
    reset_rate_limits()


async def test_me_shows_the_user_and_their_workspaces_with_roles(client, signup):
    alice = await signup(display_name="Alice")
    bob = await signup()
    first = await add_workspace(alice["user"]["id"], name="First")
    second = await add_workspace(bob["user"]["id"], name="Second")
    await add_member(second, alice["user"]["id"], Role.viewer)
    await add_workspace(bob["user"]["id"], name="Bob only")

    r = await client.get("/v1/me", headers=alice["headers"])
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == alice["user"]["id"] and me["email"] == alice["email"]
    assert me["display_name"] == "Alice" and me["created_at"]
    assert [(w["id"], w["name"], w["role"]) for w in me["workspaces"]] == [
        (first, "First", "owner"), (second, "Second", "viewer"),
    ]
    assert all(w["joined_at"] for w in me["workspaces"])
    assert "password_hash" not in r.text and "password" not in me


async def test_me_without_workspaces(client, signup):
    account = await signup()
    r = await client.get("/v1/me", headers=account["headers"])
    assert r.status_code == 200 and r.json()["workspaces"] == []


async def test_me_needs_a_token(client):
    r = await client.get("/v1/me")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/me", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401


async def test_api_keys_cannot_call_me(client, signup):
    account = await signup()
    workspace_id = await add_workspace(account["user"]["id"])
    created = await client.post(f"/v1/workspaces/{workspace_id}/api-keys", headers=account["headers"],
                                json={"name": "ci", "role": "admin"})
    assert created.status_code == 201, created.text
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {created.json()['key']}"})
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    r = await client.patch("/v1/me", headers={"Authorization": f"Bearer {created.json()['key']}"},
                           json={"display_name": "robot"})
    assert r.status_code == 403


async def test_update_display_name(client, signup):
    account = await signup()
    r = await client.patch("/v1/me", headers=account["headers"], json={"display_name": "  Dana Scully "})
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Dana Scully"
    assert (await client.get("/v1/me", headers=account["headers"])).json()["display_name"] == "Dana Scully"
    r = await client.patch("/v1/me", headers=account["headers"], json={"display_name": None})
    assert r.status_code == 200 and r.json()["display_name"] is None


@pytest.mark.parametrize("body, field", [
    ({}, None),
    ({"email": "new@example.com"}, "email"),
    ({"display_name": "x" * 201}, "display_name"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "tab\there"}, "display_name"),
])
async def test_update_rejects_bad_bodies_and_changes_nothing(client, signup, body, field):
    account = await signup(display_name="Original")
    r = await client.patch("/v1/me", headers=account["headers"], json=body)
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"]
    if field:
        assert problem["errors"][0]["loc"][-1] == field
    me = (await client.get("/v1/me", headers=account["headers"])).json()
    assert me["display_name"] == "Original" and me["email"] == account["email"]
