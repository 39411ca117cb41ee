"""Test helpers for workspaces, members, invitations and audit: users, memberships and API keys
made directly in the database (quick, and free of the sign-up rate limit), and table snapshots."""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from app.db import session_scope
from app.models import ApiKey, AuthSession, Base, Membership, Role, User
from app.security import create_access_token, hash_password, new_token, token_digest

_PASSWORD_HASH = hash_password("not used by these tests: they sign in with minted tokens")
CLIENT_IP = "203.0.113.10"  # what the `client` fixture presents as the peer address


@dataclass
class TestUser:
    id: uuid.UUID
    email: str
    display_name: str | None
    headers: dict[str, str] = field(repr=False)

    __test__ = False  # not a pytest test class


@dataclass
class TestKey:
    id: uuid.UUID
    prefix: str
    headers: dict[str, str] = field(repr=False)

    __test__ = False


async def make_user(email: str | None = None, display_name: str | None = None) -> TestUser:
    """A user with an open sign-in session and a valid access token for it."""
    email = (email or f"user-{uuid.uuid4().hex[:10]}@example.com").lower()
    async with session_scope() as session:
        user = User(email=email, password_hash=_PASSWORD_HASH, display_name=display_name, is_active=True)
        session.add(user)
        await session.flush()
        auth = AuthSession(user_id=user.id, source_ip=CLIENT_IP)
        session.add(auth)
        await session.flush()
        user_id, session_id = user.id, auth.id
    token, _ttl = create_access_token(user_id, session_id)
    return TestUser(
        id=user_id, email=email, display_name=display_name, headers={"Authorization": f"Bearer {token}"}
    )


async def add_member(workspace_id: str | uuid.UUID, user: TestUser, role: Role) -> None:
    async with session_scope() as session:
        session.add(Membership(workspace_id=uuid.UUID(str(workspace_id)), user_id=user.id, role=role))


async def make_api_key(workspace_id: str | uuid.UUID, role: Role, name: str = "ci") -> TestKey:
    """An API key row in the format the service issues: `cw_<8 chars>_<secret>`, stored as a digest."""
    prefix = "cw_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
    full_key = f"{prefix}_{new_token(32)}"
    async with session_scope() as session:
        key = ApiKey(
            workspace_id=uuid.UUID(str(workspace_id)),
            name=name,
            role=role,
            prefix=prefix,
            secret_hash=token_digest(full_key),
        )
        session.add(key)
        await session.flush()
        key_id = key.id
    return TestKey(id=key_id, prefix=prefix, headers={"Authorization": f"Bearer {full_key}"})


async def membership_role(workspace_id: str | uuid.UUID, user_id: uuid.UUID) -> Role | None:
    async with session_scope() as session:
        return (
            await session.scalars(
                select(Membership.role).where(
                    Membership.workspace_id == uuid.UUID(str(workspace_id)), Membership.user_id == user_id
                )
            )
        ).one_or_none()


def _sortable(value: Any) -> str:
    return repr(value)


async def snapshot(ignore: dict[str, set[str]] | None = None) -> dict[str, list[tuple]]:
    """Every row of every table (all models), sorted, minus the ignored columns per table."""
    ignore = ignore or {}
    out: dict[str, list[tuple]] = {}
    async with session_scope() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if c.name not in ignore.get(table.name, set())]
            rows = (await session.execute(select(*columns))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=lambda r: tuple(_sortable(v) for v in r))
    return out


async def count_by_workspace(workspace_id: str | uuid.UUID) -> dict[str, int]:
    """Rows per table that belong to the workspace (the workspaces table counts the row itself)."""
    wid = uuid.UUID(str(workspace_id))
    counts: dict[str, int] = {}
    async with session_scope() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "workspaces":
                stmt = select(func.count()).select_from(table).where(table.c.id == wid)
            elif "workspace_id" in table.c:
                stmt = select(func.count()).select_from(table).where(table.c.workspace_id == wid)
            else:
                continue
            counts[table.name] = (await session.execute(stmt)).scalar_one()
    return counts


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Team:
    """A workspace created through the API by its owner, with one admin, member and viewer added."""

    workspace_id: str
    owner: TestUser
    admin: TestUser
    member: TestUser
    viewer: TestUser

    __test__ = False

    def by_role(self, role: Role | str) -> TestUser:
        return getattr(self, Role(role).value)

    @property
    def path(self) -> str:
        return f"/v1/workspaces/{self.workspace_id}"


async def make_team(client, name: str = "Acme Security") -> Team:
    owner = await make_user(display_name="Olivia Owner")
    r = await client.post("/v1/workspaces", json={"name": name}, headers=owner.headers)
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    others = {}
    for role in (Role.admin, Role.member, Role.viewer):
        user = await make_user(display_name=f"{role.value.title()} Person")
        await add_member(wid, user, role)
        others[role.value] = user
    return Team(workspace_id=wid, owner=owner, **others)


ROLES = [Role.viewer, Role.member, Role.admin, Role.owner]
