"""Workspace members: list, change roles, remove or leave; a workspace always keeps an owner."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Forbidden, NotFound
from app.models import Membership, Role, User
from app.pagination import PageParams, paginate
from app.services import audit, workspaces
from app.services.scoping import scoped

if TYPE_CHECKING:
    from app.api.deps import WorkspaceContext


async def list_members(session: AsyncSession, workspace_id: uuid.UUID,
                       params: PageParams) -> tuple[list[tuple[Membership, User]], str | None]:
    memberships, cursor = await paginate(session, scoped(Membership, workspace_id), Membership.id, params)
    if not memberships:
        return [], cursor
    users = {u.id: u for u in (await session.scalars(
        select(User).where(User.id.in_([m.user_id for m in memberships]))
    )).all()}
    return [(m, users[m.user_id]) for m in memberships], cursor


async def _membership(session: AsyncSession, workspace_id: uuid.UUID,
                      user_id: uuid.UUID) -> Membership | None:
    stmt = (scoped(Membership, workspace_id).where(Membership.user_id == user_id)
            .execution_options(populate_existing=True))
    return (await session.scalars(stmt)).one_or_none()


async def _owner_count(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    stmt = scoped(Membership, workspace_id).where(Membership.role == Role.owner).with_only_columns(
        func.count(Membership.id))
    return (await session.execute(stmt)).scalar_one()


async def update_role(session: AsyncSession, ctx: WorkspaceContext, user_id: uuid.UUID,
                      role: Role) -> tuple[Membership, User]:
    actor_role = await workspaces.lock_for_member_change(session, ctx)
    if not actor_role.at_least(Role.admin):
        raise Forbidden("Changing roles needs the admin role or higher in the workspace.")
    target = await _membership(session, ctx.id, user_id)
    if target is None:
        raise NotFound("Member not found.")
    if actor_role != Role.owner and (target.role == Role.owner or role == Role.owner):
        raise Forbidden("Only owners may grant the owner role or change an owner's role.")
    old = target.role
    if role != old:
        if old == Role.owner and await _owner_count(session, ctx.id) <= 1:
            raise Conflict("This is the workspace's last owner: make another member an owner first.")
        target.role = role
        await session.flush()
        await audit.record(session, workspace_id=ctx.id, actor=ctx.principal, action="member.role_changed",
                           target_type="user", target_id=user_id,
                           details={"from": old.value, "to": role.value})
    user = await session.get(User, user_id)
    assert user is not None  # the membership's foreign key guarantees it
    return target, user


async def remove(session: AsyncSession, ctx: WorkspaceContext, user_id: uuid.UUID) -> None:
    """Remove a member (admin+), or leave (any member removing themselves)."""
    actor_role = await workspaces.lock_for_member_change(session, ctx)
    leaving = ctx.principal.kind == "user" and ctx.principal.id == user_id
    if not leaving and not actor_role.at_least(Role.admin):
        raise Forbidden("Removing other members needs the admin role or higher; you may remove yourself.")
    target = await _membership(session, ctx.id, user_id)
    if target is None:
        raise NotFound("Member not found.")
    if not leaving and target.role == Role.owner and actor_role != Role.owner:
        raise Forbidden("Only owners may remove an owner.")
    if target.role == Role.owner and await _owner_count(session, ctx.id) <= 1:
        raise Conflict("This is the workspace's last owner: make another member an owner first, "
                       "or delete the workspace.")
    role = target.role
    await session.delete(target)
    await session.flush()
    await audit.record(session, workspace_id=ctx.id, actor=ctx.principal,
                       action="member.left" if leaving else "member.removed",
                       target_type="user", target_id=user_id, details={"role": role.value})
