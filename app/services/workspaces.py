"""Workspace lifecycle: create (creator becomes owner), list, rename, and complete deletion."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, NotFound
from app.models import Base, Membership, Role, User, Workspace
from app.pagination import PageParams, paginate
from app.services import audit
from app.services.scoping import scoped

if TYPE_CHECKING:
    from app.api.deps import Principal, WorkspaceContext

log = structlog.get_logger("cloudwizard.workspaces")


async def lock(session: AsyncSession, workspace_id: uuid.UUID) -> Workspace:
    """Take the workspace row lock (SELECT ... FOR UPDATE) that serializes membership changes.

    Every operation that adds, removes or re-roles members takes it first, so checks such as
    "is this the last owner?" see a state no concurrent request can change before commit.
    """
    stmt = (select(Workspace).where(Workspace.id == workspace_id).with_for_update()
            .execution_options(populate_existing=True))
    workspace = (await session.scalars(stmt)).one_or_none()
    if workspace is None:
        raise NotFound("Workspace not found.")
    return workspace


async def lock_for_member_change(session: AsyncSession, ctx: WorkspaceContext) -> Role:
    """Lock the workspace, then re-read the caller's role, which may have changed since the request began."""
    await lock(session, ctx.id)
    if ctx.principal.api_key is not None:
        return ctx.principal.api_key.role
    stmt = (scoped(Membership, ctx.id).where(Membership.user_id == ctx.principal.id)
            .with_only_columns(Membership.role))
    role = (await session.scalars(stmt)).one_or_none()
    if role is None:
        raise NotFound("Workspace not found.")
    return role


async def create(session: AsyncSession, *, user: User, principal: Principal, name: str) -> Workspace:
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=Role.owner))
    await audit.record(session, workspace_id=workspace.id, actor=principal, action="workspace.created",
                       target_type="workspace", target_id=workspace.id, details={"name": name})
    return workspace


async def list_for(session: AsyncSession, principal: Principal,
                   params: PageParams) -> tuple[list[tuple[Workspace, Role]], str | None]:
    """The caller's workspaces with their role: a user's memberships, or an API key's own workspace."""
    if principal.api_key is not None:
        key = principal.api_key
        stmt = select(Workspace).where(Workspace.id == key.workspace_id)
        workspaces, cursor = await paginate(session, stmt, Workspace.id, params)
        return [(w, key.role) for w in workspaces], cursor
    stmt = (select(Workspace).join(Membership, Membership.workspace_id == Workspace.id)
            .where(Membership.user_id == principal.id))
    workspaces, cursor = await paginate(session, stmt, Workspace.id, params)
    if not workspaces:
        return [], cursor
    roles = dict((await session.execute(
        select(Membership.workspace_id, Membership.role)
        .where(Membership.user_id == principal.id, Membership.workspace_id.in_([w.id for w in workspaces]))
    )).tuples().all())
    return [(w, roles[w.id]) for w in workspaces], cursor


async def rename(session: AsyncSession, ctx: WorkspaceContext, name: str) -> Workspace:
    workspace = ctx.workspace
    old = workspace.name
    if name == old:
        return workspace
    workspace.name = name
    await session.flush()
    await audit.record(session, workspace_id=workspace.id, actor=ctx.principal, action="workspace.renamed",
                       target_type="workspace", target_id=workspace.id, details={"from": old, "to": name})
    return workspace


def workspace_owned_tables() -> list:
    """Every table with a `workspace_id` column, children before parents (so deletes respect FKs)."""
    return [t for t in reversed(Base.metadata.sorted_tables)
            if t.name != Workspace.__tablename__ and "workspace_id" in t.c]


async def delete_workspace(session: AsyncSession, ctx: WorkspaceContext) -> None:
    """Delete the workspace and every row that carries its id, explicitly, table by table.

    ON DELETE CASCADE would do the same, but an explicit sweep does not depend on every future
    table declaring its foreign key correctly, and rows of tables owned indirectly (no
    `workspace_id` column) still go through their cascades. The audit log goes too, so the
    deletion itself is written to the service log, once the transaction has committed.
    """
    principal = ctx.principal
    if principal.user is None:
        raise Forbidden("Deleting a workspace needs a signed-in owner; API keys cannot do it.")
    workspace_id = ctx.id
    await lock(session, workspace_id)
    await session.flush()
    for table in workspace_owned_tables():
        await session.execute(delete(table).where(table.c.workspace_id == workspace_id))
    await session.execute(delete(Workspace).where(Workspace.id == workspace_id))
    session.expunge(ctx.workspace)

    @event.listens_for(session.sync_session, "after_commit", once=True)
    def _log_deleted(_session) -> None:
        log.info("workspace_deleted", workspace_id=str(workspace_id), actor_type=principal.kind,
                 actor_id=str(principal.id))
