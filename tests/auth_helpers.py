"""Shared helpers for the auth, me, API-key and rate-limit tests: rows made directly in the database
(so these tests do not depend on the workspace routes), extra clients with other addresses."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import func, select

from app.db import session_scope
from app.models import AuthSession, Membership, Role, User, Workspace
from app.ratelimit import memory_limiter


def reset_rate_limits() -> None:
    """The in-process counters outlive a test (Redis is flushed by conftest, memory is not)."""
    memory_limiter().clear()


async def add_workspace(user_id: str | uuid.UUID, *, role: Role = Role.owner,
                        name: str = "Acme Security") -> str:
    """Create a workspace with `user_id` as a member of `role`; returns the workspace id."""
    async with session_scope() as session:
        workspace = Workspace(name=name)
        session.add(workspace)
        await session.flush()
        session.add(Membership(workspace_id=workspace.id, user_id=uuid.UUID(str(user_id)), role=role))
        return str(workspace.id)


async def add_member(workspace_id: str, user_id: str | uuid.UUID, role: Role) -> None:
    async with session_scope() as session:
        session.add(Membership(workspace_id=uuid.UUID(workspace_id), user_id=uuid.UUID(str(user_id)),
                               role=role))


async def count_sessions(user_id: str | None = None) -> int:
    async with session_scope() as session:
        stmt = select(func.count()).select_from(AuthSession)
        if user_id is not None:
            stmt = stmt.where(AuthSession.user_id == uuid.UUID(user_id))
        return await session.scalar(stmt)


async def count_users() -> int:
    async with session_scope() as session:
        return await session.scalar(select(func.count()).select_from(User))


@asynccontextmanager
async def client_from(app, ip: str):
    """A client whose requests come from another address."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def without_request_specifics(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("request_id", "instance")}
