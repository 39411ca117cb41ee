"""Sign-up, sign-in, refresh-token rotation with reuse detection, sign-out, and the user's profile.

A sign-in opens an AuthSession: one family of single-use refresh tokens. Refreshing spends the
presented token and issues its successor. A token that is presented twice was copied; the family
is then revoked (in its own transaction, so that the revocation survives the request's rollback),
which ends every refresh token and access token of that sign-in.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.db import session_scope
from app.errors import Conflict, InvalidCredentials, Unauthorized
from app.models import AuthSession, Membership, RefreshToken, Role, User, Workspace
from app.security import (
    create_access_token,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)

log = structlog.get_logger(__name__)

USER_AGENT_MAX = 300
SOURCE_IP_MAX = 64
# One answer for an unknown e-mail, a wrong password and a disabled account: nothing to enumerate.
INVALID_LOGIN_DETAIL = "Incorrect e-mail or password."
INVALID_REFRESH_DETAIL = "This refresh token is invalid, expired or already used; sign in again."
REUSE_REASON = "refresh_token_reuse"

# Argon2id takes ~64 MiB and tens of milliseconds of CPU per call: run it off the event loop, in a
# pool of its own so that it can neither starve the default executor (DNS lookups use it) nor
# allocate more than a bounded amount of memory at once.
_argon2_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2")


class EmailTaken(Conflict):
    slug, title = "email-taken", "E-mail already registered"


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Invalid refresh token"


@dataclass(slots=True)
class IssuedTokens:
    user: User
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(slots=True)
class WorkspaceMembership:
    id: uuid.UUID
    name: str
    role: Role
    joined_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


async def _hash(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_argon2_pool, hash_password, password)


async def _verify(password_hash: str | None, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_argon2_pool, verify_password, password_hash, password)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.scalars(select(User).where(User.email == email.lower()))).one_or_none()


async def signup(session: AsyncSession, *, email: str, password: str, display_name: str | None,
                 source_ip: str | None, user_agent: str | None) -> IssuedTokens:
    """Create a user and sign them in. `email` must already be normalised (lower case)."""
    if await get_user_by_email(session, email) is not None:
        raise EmailTaken("An account with this e-mail address already exists; sign in instead.")
    user = User(email=email, password_hash=await _hash(password), display_name=display_name, is_active=True)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same e-mail won the race
        raise EmailTaken("An account with this e-mail address already exists; sign in instead.") from exc
    tokens = await _open_session(session, user, source_ip=source_ip, user_agent=user_agent)
    log.info("user_signed_up", user_id=str(user.id))
    return tokens


async def login(session: AsyncSession, *, email: str, password: str, source_ip: str | None,
                user_agent: str | None) -> IssuedTokens:
    """Verify the password (against a dummy hash when the e-mail is unknown, so both failures cost
    the same time) and open a new sign-in session."""
    user = await get_user_by_email(session, email)
    verified = await _verify(user.password_hash if user else None, password)
    if user is None or not verified or not user.is_active:
        log.info("login_failed", reason="unknown_email" if user is None else
                 ("wrong_password" if not verified else "inactive"))
        raise InvalidCredentials(INVALID_LOGIN_DETAIL)
    if password_needs_rehash(user.password_hash):
        # Hashing parameters were raised since this hash was made; the password is at hand now.
        user.password_hash = await _hash(password)
    tokens = await _open_session(session, user, source_ip=source_ip, user_agent=user_agent)
    log.info("user_signed_in", user_id=str(user.id))
    return tokens


async def _open_session(session: AsyncSession, user: User, *, source_ip: str | None,
                        user_agent: str | None) -> IssuedTokens:
    auth_session = AuthSession(
        user_id=user.id,
        source_ip=source_ip[:SOURCE_IP_MAX] if source_ip else None,
        user_agent=user_agent[:USER_AGENT_MAX] if user_agent else None,
    )
    session.add(auth_session)
    await session.flush()
    return await _issue(session, user, auth_session)


async def _issue(session: AsyncSession, user: User, auth_session: AuthSession) -> IssuedTokens:
    ttl = get_settings().refresh_token_ttl_seconds
    refresh_token = new_token()
    session.add(RefreshToken(session_id=auth_session.id, token_hash=token_digest(refresh_token),
                             expires_at=_now() + timedelta(seconds=ttl)))
    await session.flush()
    access_token, expires_in = create_access_token(user.id, auth_session.id)
    return IssuedTokens(user=user, access_token=access_token, expires_in=expires_in,
                        refresh_token=refresh_token, refresh_expires_in=ttl)


async def refresh(session: AsyncSession, *, refresh_token: str) -> IssuedTokens:
    """Spend a refresh token and issue the next one (with a new access token).

    Each successor gets the full refresh lifetime, so a sign-in stays alive while it is used and
    ends after `refresh_token_ttl_seconds` of inactivity.
    """
    now = _now()
    row = (await session.execute(
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .join(User, User.id == AuthSession.user_id)
        .where(RefreshToken.token_hash == token_digest(refresh_token))
    )).one_or_none()
    if row is None:
        raise InvalidRefreshToken(INVALID_REFRESH_DETAIL)
    token, auth_session, user = row
    if auth_session.revoked_at is not None or not user.is_active:
        raise InvalidRefreshToken(INVALID_REFRESH_DETAIL)
    if token.used_at is not None:
        await _revoke_after_reuse(session, session_id=auth_session.id, user_id=user.id)
        raise InvalidRefreshToken(INVALID_REFRESH_DETAIL)
    if token.expires_at <= now:
        raise InvalidRefreshToken(INVALID_REFRESH_DETAIL)
    # Two requests may both have read the token as unused; the conditional update lets one win.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        await _revoke_after_reuse(session, session_id=auth_session.id, user_id=user.id)
        raise InvalidRefreshToken(INVALID_REFRESH_DETAIL)
    auth_session.last_refreshed_at = now
    return await _issue(session, user, auth_session)


async def _revoke_after_reuse(session: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Revoke a whole family in a transaction of its own: the request's transaction is about to be
    rolled back by the 401, and the revocation must outlive it."""
    # Release whatever the request's transaction holds first (on SQLite, a write lock that the
    # independent transaction would otherwise wait for).
    await session.rollback()
    async with session_scope() as independent:
        await independent.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=_now(), revoke_reason=REUSE_REASON)
            .execution_options(synchronize_session=False)
        )
    log.warning("refresh_token_reuse", user_id=str(user_id), session_id=str(session_id),
                outcome="sign-in session revoked")


async def logout(session: AsyncSession, *, session_id: uuid.UUID) -> None:
    """End one sign-in: its access tokens stop working at once and its refresh tokens die."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoke_reason="logout")
        .execution_options(synchronize_session=False)
    )
    log.info("user_signed_out", session_id=str(session_id))


async def list_memberships(session: AsyncSession, user_id: uuid.UUID) -> list[WorkspaceMembership]:
    rows = (await session.execute(
        select(Workspace.id, Workspace.name, Membership.role, Membership.created_at)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at, Workspace.id)
    )).all()
    return [WorkspaceMembership(id=r[0], name=r[1], role=r[2], joined_at=r[3]) for r in rows]


async def update_profile(session: AsyncSession, user: User, *, changes: dict[str, object]) -> User:
    if "display_name" in changes:
        user.display_name = changes["display_name"]  # type: ignore[assignment]
    await session.flush()
    return user
