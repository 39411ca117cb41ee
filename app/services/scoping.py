"""The one place that scopes queries to a workspace. Every workspace-owned query starts here,
so an object of another workspace is indistinguishable from a missing one (404)."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound

M = TypeVar("M")


def scoped(model: type[M], workspace_id: uuid.UUID) -> Select[tuple[M]]:
    """`SELECT model WHERE model.workspace_id = :workspace_id` — the start of every tenant query."""
    return select(model).where(model.workspace_id == workspace_id)  # type: ignore[attr-defined]


async def get_scoped(session: AsyncSession, model: type[M], workspace_id: uuid.UUID, obj_id: Any,
                     *, for_update: bool = False) -> M | None:
    stmt = scoped(model, workspace_id).where(model.id == obj_id)  # type: ignore[attr-defined]
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def get_scoped_or_404(session: AsyncSession, model: type[M], workspace_id: uuid.UUID, obj_id: Any,
                            *, what: str | None = None, for_update: bool = False) -> M:
    obj = await get_scoped(session, model, workspace_id, obj_id, for_update=for_update)
    if obj is None:
        raise NotFound(f"{what or model.__name__} not found.")
    return obj
