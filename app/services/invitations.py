"""Invitations: single-use, expiring tokens (kept only as digests) that make an e-mail address a member.

Re-inviting an address that already has a pending invitation replaces it: the old one is revoked
and a new token is issued, since tokens are shown only once and a lost link must be re-sendable.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.errors import Conflict, DomainError, Forbidden, NotFound
from app.models import Invitation, Membership, Role, User, Workspace
from app.pagination import PageParams, paginate
from app.schemas.invitations import InvitationStatus
from app.security import new_token, token_digest
from app.services import audit, workspaces
from app.services.scoping import get_scoped_or_404, scoped

if TYPE_CHECKING:
    from app.api.deps import Principal, WorkspaceContext


class InvitationGone(DomainError):
    """The token was valid once but can no longer be used (410: asking again will not help)."""

    status, slug, title = 410, "invitation-gone", "Invitation no longer valid"


class InvitationExpired(InvitationGone):
    slug, title = "invitation-expired", "Invitation expired"


class InvitationRevoked(InvitationGone):
    slug, title = "invitation-revoked", "Invitation revoked"


class InvitationUsed(InvitationGone):
    slug, title = "invitation-used", "Invitation already used"


def status_of(invitation: Invitation, now: datetime) -> InvitationStatus:
    if invitation.accepted_at is not None:
        return InvitationStatus.accepted
    if invitation.revoked_at is not None:
        return InvitationStatus.revoked
    if invitation.expires_at <= now:
        return InvitationStatus.expired
    return InvitationStatus.pending


def _status_clause(status: InvitationStatus, now: datetime):
    open_ = and_(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
    return {
        InvitationStatus.accepted: Invitation.accepted_at.is_not(None),
        InvitationStatus.revoked: and_(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_not(None)),
        InvitationStatus.expired: and_(open_, Invitation.expires_at <= now),
        InvitationStatus.pending: and_(open_, Invitation.expires_at > now),
    }[status]


def accept_url(token: str) -> str:
    # The web app's page, which signs the user in if needed and posts the token to the API.
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/invitations/accept?{urlencode({'token': token})}"


def _normalize(email: str) -> str:
    return email.strip().lower()


async def create(session: AsyncSession, ctx: WorkspaceContext, *, email: str,
                 role: Role) -> tuple[Invitation, str]:
    """Return the invitation and its token; the token is not stored and cannot be shown again."""
    actor_role = await workspaces.lock_for_member_change(session, ctx)
    if not actor_role.at_least(Role.admin):
        raise Forbidden("Inviting needs the admin role or higher in the workspace.")
    if role == Role.owner and actor_role != Role.owner:
        raise Forbidden("Only owners may invite owners.")
    if not actor_role.at_least(role):
        raise Forbidden(f"You cannot invite with a role above your own ({actor_role.value}).")
    email = _normalize(email)
    already_member = (await session.scalars(
        scoped(Membership, ctx.id).join(User, User.id == Membership.user_id)
        .where(func.lower(User.email) == email).with_only_columns(Membership.id)
    )).first()
    if already_member is not None:
        raise Conflict("A user with this e-mail address is already a member of the workspace.")
    now = datetime.now(UTC)
    # Locked, so that a revocation racing with this replacement is seen (and not recorded twice).
    pending = (await session.scalars(
        scoped(Invitation, ctx.id)
        .where(func.lower(Invitation.email) == email, _status_clause(InvitationStatus.pending, now))
        .with_for_update()
    )).all()
    for old in pending:
        old.revoked_at = now
        await audit.record(session, workspace_id=ctx.id, actor=ctx.principal, action="invitation.revoked",
                           target_type="invitation", target_id=old.id,
                           details={"email": email, "role": old.role.value, "reason": "replaced"})
    token = new_token()
    invitation = Invitation(
        workspace_id=ctx.id, email=email, role=role, token_hash=token_digest(token),
        invited_by_user_id=ctx.principal.user.id if ctx.principal.user else None,
        created_at=now, expires_at=now + timedelta(seconds=get_settings().invitation_ttl_seconds),
    )
    session.add(invitation)
    await session.flush()
    details = {"email": email, "role": role.value}
    if pending:
        details["replaces"] = [str(old.id) for old in pending]
    await audit.record(session, workspace_id=ctx.id, actor=ctx.principal, action="invitation.created",
                       target_type="invitation", target_id=invitation.id, details=details)
    return invitation, token


async def list_invitations(session: AsyncSession, workspace_id: uuid.UUID, params: PageParams,
                           status: InvitationStatus | None = None) -> tuple[list[Invitation], str | None]:
    stmt = scoped(Invitation, workspace_id)
    if status is not None:
        stmt = stmt.where(_status_clause(status, datetime.now(UTC)))
    return await paginate(session, stmt, Invitation.id, params, descending=True)


async def revoke(session: AsyncSession, ctx: WorkspaceContext, invitation_id: uuid.UUID) -> None:
    """Revoke a pending (or expired) invitation; revoking twice is a no-op, an accepted one is a conflict."""
    invitation = await get_scoped_or_404(session, Invitation, ctx.id, invitation_id, what="Invitation",
                                         for_update=True)
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has been accepted; remove the member instead.")
    if invitation.revoked_at is not None:
        return
    invitation.revoked_at = datetime.now(UTC)
    await session.flush()
    await audit.record(session, workspace_id=ctx.id, actor=ctx.principal, action="invitation.revoked",
                       target_type="invitation", target_id=invitation.id,
                       details={"email": invitation.email, "role": invitation.role.value})


async def accept(session: AsyncSession, principal: Principal, user: User,
                 token: str) -> tuple[Workspace, Membership]:
    """Make the signed-in user a member; the invitation must be theirs, pending, and unused."""
    # Not scoped: the token itself is the capability, and it names its workspace.
    invitation = (await session.scalars(
        select(Invitation).where(Invitation.token_hash == token_digest(token))
    )).one_or_none()
    if invitation is None:
        raise NotFound("No invitation matches this token.")
    # Lock the workspace first, as every membership change does, then re-read the invitation under it.
    workspace = await workspaces.lock(session, invitation.workspace_id)
    # populate_existing: the row may have been accepted or revoked while this request waited for the lock.
    invitation = (await session.scalars(
        scoped(Invitation, workspace.id).where(Invitation.id == invitation.id).with_for_update()
        .execution_options(populate_existing=True)
    )).one()
    if _normalize(user.email) != _normalize(invitation.email):
        raise Forbidden("This invitation was sent to a different e-mail address; sign in with that address.")
    now = datetime.now(UTC)
    status = status_of(invitation, now)
    if status == InvitationStatus.accepted:
        raise InvitationUsed("This invitation has already been used.")
    if status == InvitationStatus.revoked:
        raise InvitationRevoked("This invitation has been revoked; ask for a new one.")
    if status == InvitationStatus.expired:
        raise InvitationExpired("This invitation has expired; ask for a new one.")
    existing = (await session.scalars(
        scoped(Membership, workspace.id).where(Membership.user_id == user.id)
    )).one_or_none()
    if existing is not None:
        raise Conflict("You are already a member of this workspace.")
    membership = Membership(workspace_id=workspace.id, user_id=user.id, role=invitation.role, created_at=now)
    session.add(membership)
    invitation.accepted_at = now
    invitation.accepted_by_user_id = user.id
    await session.flush()
    await audit.record(session, workspace_id=workspace.id, actor=principal, action="invitation.accepted",
                       target_type="invitation", target_id=invitation.id,
                       details={"email": invitation.email, "role": invitation.role.value,
                                "user_id": str(user.id)})
    return workspace, membership
