"""Workspace API keys: one-time secret, digest storage, roles, scoping, revocation, expiry, audit."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.db import session_scope
from app.models import ApiKey, AuditEvent, Role
from app.security import token_digest
from tests.auth_helpers import add_member, add_workspace, reset_rate_limits

KEY_FORMAT = re.compile(r"^cw_[A-Za-z0-9]{8}_[A-Za-z0-9_\-]{43}$")


@pytest.fixture(autouse=True)
def _fresh_limits():
    reset_rate_limits()


@pytest.fixture
async def owner(signup):
    account = await signup()
    account["workspace_id"] = await add_workspace(account["user"]["id"])
    return account


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def _create(client, owner, headers=None, **body):
    body.setdefault("name", "ci-pipeline")
    body.setdefault("role", "admin")
    return await client.post(f"/v1/workspaces/{owner['workspace_id']}/api-keys", json=body,
                             headers=headers or owner["headers"])


async def _audit(workspace_id: str) -> list[AuditEvent]:
    async with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.workspace_id == uuid.UUID(workspace_id))
        return list((await s.scalars(stmt.order_by(AuditEvent.id))).all())


async def test_create_shows_the_secret_once_and_stores_a_digest(client, owner):
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    r = await _create(client, owner, role="member", expires_at=expires.isoformat())
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert KEY_FORMAT.match(key), key
    assert created["prefix"] == key[:11] and created["prefix"].startswith("cw_")
    assert created["role"] == "member" and created["name"] == "ci-pipeline"
    assert created["workspace_id"] == owner["workspace_id"]
    assert created["created_by_user_id"] == owner["user"]["id"]
    assert datetime.fromisoformat(created["expires_at"]) == expires
    assert created["last_used_at"] is None and created["revoked_at"] is None
    assert "secret_hash" not in created

    async with session_scope() as s:
        row = await s.get(ApiKey, uuid.UUID(created["id"]))
    assert row.secret_hash == token_digest(key) and key not in row.secret_hash
    assert row.prefix == created["prefix"]

    # Never shown again: not in the read, not in the list.
    one = await client.get(f"/v1/workspaces/{owner['workspace_id']}/api-keys/{created['id']}",
                           headers=owner["headers"])
    listed = await client.get(f"/v1/workspaces/{owner['workspace_id']}/api-keys", headers=owner["headers"])
    for r in (one, listed):
        assert r.status_code == 200
        assert key not in r.text and key[12:] not in r.text and row.secret_hash not in r.text
        assert '"key"' not in r.text
    assert one.json()["prefix"] == created["prefix"]

    events = await _audit(owner["workspace_id"])
    assert [e.action for e in events] == ["api_key.created"]
    assert events[0].target_id == created["id"] and events[0].actor_id == uuid.UUID(owner["user"]["id"])
    assert events[0].details["role"] == "member" and key not in str(events[0].details)


async def test_key_authenticates_in_its_workspace_only(client, owner, signup):
    key = (await _create(client, owner, role="admin")).json()
    other = await signup()
    other_ws = await add_workspace(other["user"]["id"], name="Other")

    r = await client.get(f"/v1/workspaces/{owner['workspace_id']}/api-keys", headers=_bearer(key["key"]))
    assert r.status_code == 200, r.text
    assert [k["id"] for k in r.json()["items"]] == [key["id"]]
    # Using the key stamped last_used_at, which reads show.
    r = await client.get(f"/v1/workspaces/{owner['workspace_id']}/api-keys/{key['id']}",
                         headers=owner["headers"])
    assert r.json()["last_used_at"] is not None

    # Another workspace is invisible to it: 404, like a missing one.
    r = await client.get(f"/v1/workspaces/{other_ws}/api-keys", headers=_bearer(key["key"]))
    assert r.status_code == 404
    r = await client.get(f"/v1/workspaces/{uuid.uuid4()}/api-keys", headers=_bearer(key["key"]))
    assert r.status_code == 404


async def test_revoked_key_stops_working_and_revocation_is_idempotent(client, owner):
    key = (await _create(client, owner)).json()
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    assert (await client.get(base, headers=_bearer(key["key"]))).status_code == 200

    r = await client.delete(f"{base}/{key['id']}", headers=owner["headers"])
    assert r.status_code == 204 and r.content == b""
    r = await client.get(base, headers=_bearer(key["key"]))
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")

    again = await client.delete(f"{base}/{key['id']}", headers=owner["headers"])
    assert again.status_code == 204
    assert [e.action for e in await _audit(owner["workspace_id"])] == ["api_key.created", "api_key.revoked"]

    # Revoked keys leave the default list but remain visible on request, with their revocation time.
    assert (await client.get(base, headers=owner["headers"])).json()["items"] == []
    r = await client.get(base, params={"include_revoked": "true"}, headers=owner["headers"])
    items = r.json()["items"]
    assert [k["id"] for k in items] == [key["id"]] and items[0]["revoked_at"] is not None


async def test_expired_key_is_rejected(client, owner):
    soon = datetime.now(UTC) + timedelta(hours=1)
    key = (await _create(client, owner, expires_at=soon.isoformat())).json()
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    assert (await client.get(base, headers=_bearer(key["key"]))).status_code == 200
    async with session_scope() as s:  # an hour passes
        await s.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = await client.get(base, headers=_bearer(key["key"]))
    assert r.status_code == 401


async def test_viewer_key_cannot_manage_keys(client, owner):
    viewer = (await _create(client, owner, role="viewer")).json()
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    r = await client.post(base, json={"name": "x", "role": "viewer"}, headers=_bearer(viewer["key"]))
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    assert (await client.get(base, headers=_bearer(viewer["key"]))).status_code == 403
    assert (await client.delete(f"{base}/{viewer['id']}", headers=_bearer(viewer["key"]))).status_code == 403


async def test_api_keys_cannot_mint_keys_even_as_admin(client, owner):
    admin_key = (await _create(client, owner, role="owner")).json()
    r = await _create(client, owner, headers=_bearer(admin_key["key"]), role="viewer")
    assert r.status_code == 403
    assert "API keys cannot create API keys" in r.json()["detail"]
    async with session_scope() as s:
        assert len((await s.scalars(select(ApiKey))).all()) == 1


async def test_admin_key_can_revoke_keys_up_to_its_role(client, owner):
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    admin_key = (await _create(client, owner, role="admin")).json()
    member_key = (await _create(client, owner, role="member")).json()
    owner_key = (await _create(client, owner, role="owner")).json()
    r = await client.delete(f"{base}/{owner_key['id']}", headers=_bearer(admin_key["key"]))
    assert r.status_code == 403
    r = await client.delete(f"{base}/{member_key['id']}", headers=_bearer(admin_key["key"]))
    assert r.status_code == 204
    events = await _audit(owner["workspace_id"])
    assert events[-1].action == "api_key.revoked" and events[-1].actor_type == "api_key"
    assert events[-1].actor_id == uuid.UUID(admin_key["id"])


@pytest.mark.parametrize("creator_role, allowed, refused", [
    (Role.admin, ["viewer", "member", "admin"], ["owner"]),
    (Role.owner, ["viewer", "member", "admin", "owner"], []),
])
async def test_key_role_cannot_exceed_the_creator_role(client, owner, signup, creator_role, allowed, refused):
    creator = await signup()
    await add_member(owner["workspace_id"], creator["user"]["id"], creator_role)
    for role in allowed:
        r = await _create(client, owner, headers=creator["headers"], role=role)
        assert r.status_code == 201, (role, r.text)
    for role in refused:
        r = await _create(client, owner, headers=creator["headers"], role=role)
        assert r.status_code == 403, role
    async with session_scope() as s:
        assert len((await s.scalars(select(ApiKey))).all()) == len(allowed)


@pytest.mark.parametrize("role, status", [(Role.member, 403), (Role.viewer, 403)])
async def test_members_and_viewers_cannot_see_or_manage_keys(client, owner, signup, role, status):
    key = (await _create(client, owner)).json()
    user = await signup()
    await add_member(owner["workspace_id"], user["user"]["id"], role)
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    assert (await client.get(base, headers=user["headers"])).status_code == status
    assert (await client.get(f"{base}/{key['id']}", headers=user["headers"])).status_code == status
    assert (await _create(client, owner, headers=user["headers"], role="viewer")).status_code == status
    assert (await client.delete(f"{base}/{key['id']}", headers=user["headers"])).status_code == status


async def test_admin_user_cannot_revoke_an_owner_key(client, owner, signup):
    owner_key = (await _create(client, owner, role="owner")).json()
    admin = await signup()
    await add_member(owner["workspace_id"], admin["user"]["id"], Role.admin)
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    assert (await client.delete(f"{base}/{owner_key['id']}", headers=admin["headers"])).status_code == 403
    assert (await client.get(base, headers=_bearer(owner_key["key"]))).status_code == 200


async def test_non_members_get_404_and_keys_of_other_workspaces_are_invisible(client, owner, signup):
    key = (await _create(client, owner)).json()
    stranger = await signup()
    their_ws = await add_workspace(stranger["user"]["id"], name="Theirs")
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    assert (await client.get(base, headers=stranger["headers"])).status_code == 404
    assert (await client.delete(f"{base}/{key['id']}", headers=stranger["headers"])).status_code == 404
    # Through their own workspace, the key id does not exist either.
    r = await client.get(f"/v1/workspaces/{their_ws}/api-keys/{key['id']}", headers=stranger["headers"])
    assert r.status_code == 404
    r = await client.delete(f"/v1/workspaces/{their_ws}/api-keys/{key['id']}", headers=stranger["headers"])
    assert r.status_code == 404
    assert (await client.get(base, headers=_bearer(key["key"]))).status_code == 200  # still alive


async def test_list_paginates_newest_first(client, owner):
    ids = [(await _create(client, owner, name=f"key-{i}")).json()["id"] for i in range(5)]
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(base, params=params, headers=owner["headers"])).json()
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    r = await client.get(base, params={"cursor": "!!!"}, headers=owner["headers"])
    assert r.status_code == 422


@pytest.mark.parametrize("body, field", [
    ({"name": "", "role": "admin"}, "name"),
    ({"name": "x" * 101, "role": "admin"}, "name"),
    ({"name": "ok", "role": "superuser"}, "role"),
    ({"name": "ok", "role": "admin", "secret": "mine"}, "secret"),
    ({"name": "ok", "role": "admin", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no time zone
    ({"name": "ok", "role": "admin", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),  # in the past
])
async def test_create_rejects_bad_input_and_writes_nothing(client, owner, body, field):
    r = await client.post(f"/v1/workspaces/{owner['workspace_id']}/api-keys", json=body,
                          headers=owner["headers"])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"][-1] == field
    async with session_scope() as s:
        assert (await s.scalars(select(ApiKey))).all() == []
    assert await _audit(owner["workspace_id"]) == []


async def test_unknown_and_malformed_keys_are_401(client, owner):
    base = f"/v1/workspaces/{owner['workspace_id']}/api-keys"
    for token in ("cw_AAAAAAAA_" + "x" * 43, "cw_", "cw_garbage"):
        assert (await client.get(base, headers=_bearer(token))).status_code == 401
    r = await client.get(f"{base}/not-a-uuid", headers=owner["headers"])
    assert r.status_code == 422
