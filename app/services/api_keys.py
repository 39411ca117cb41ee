"""Workspace API keys: minted with a one-time secret, stored as a digest, listed, revoked.

A key reads `cw_<8 characters>_<43 characters>`. The first part (`cw_` and 8 characters) is kept in
clear as `prefix` so that people can tell their keys apart; the database holds only the SHA-256
digest of the whole key, which is what a request is matched on.

Rules: only admins and owners manage keys; a key's role never exceeds its creator's role, and a
caller cannot revoke a key whose role is above their own. API keys cannot mint API keys: a leaked
key must not be able to make itself a successor that survives its revocation.
"""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden, InvalidInput
from app.models import ApiKey, Role
from app.pagination import PageParams, paginate
from app.security import new_token, token_digest
from app.services import audit
from app.services.scoping import get_scoped_or_404, scoped

if TYPE_CHECKING:
    from app.api.deps import Principal

log = structlog.get_logger(__name__)

KEY_PREFIX = "cw_"
PUBLIC_ID_LENGTH = 8
_PUBLIC_ALPHABET = string.ascii_letters + string.digits  # no "_" or "-": the key splits unambiguously


def generate_key() -> tuple[str, str]:
    """Return (full key, public prefix)."""
    prefix = KEY_PREFIX + "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
    return f"{prefix}_{new_token(32)}", prefix


async def create(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal, actor_role: Role,
                 name: str, role: Role, expires_at: datetime | None) -> tuple[ApiKey, str]:
    """Mint a key; returns it with the full secret, which is not stored and cannot be shown again."""
    if actor.user is None:
        raise Forbidden("API keys cannot create API keys; sign in as an admin or owner of the workspace.")
    if not actor_role.at_least(role):
        raise Forbidden(f"A key cannot have more rights than its creator: your role is {actor_role.value}, "
                        f"so the key's role can be at most {actor_role.value}.")
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput.field("expires_at", "The expiry must be in the future.")
    full_key, prefix = generate_key()
    key = ApiKey(workspace_id=workspace_id, name=name, role=role, prefix=prefix,
                 secret_hash=token_digest(full_key), created_by_user_id=actor.user.id,
                 expires_at=expires_at.astimezone(UTC) if expires_at else None)
    session.add(key)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="api_key.created",
                       target_type="api_key", target_id=key.id,
                       details={"name": name, "role": role.value, "prefix": prefix,
                                "expires_at": key.expires_at.isoformat() if key.expires_at else None})
    log.info("api_key_created", workspace_id=str(workspace_id), key_id=str(key.id), prefix=prefix)
    return key, full_key


async def list_keys(session: AsyncSession, *, workspace_id: uuid.UUID, params: PageParams,
                    include_revoked: bool) -> tuple[list[ApiKey], str | None]:
    """Newest first."""
    stmt = scoped(ApiKey, workspace_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return await paginate(session, stmt, ApiKey.id, params, descending=True)


async def get_or_404(session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    return await get_scoped_or_404(session, ApiKey, workspace_id, key_id, what="API key")


async def revoke(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal, actor_role: Role,
                 key_id: uuid.UUID) -> ApiKey:
    """Revoke a key at once. Revoking a revoked key changes nothing and succeeds (the outcome the
    caller wants holds), without a second audit event."""
    # The row lock makes concurrent revocations record one event.
    key = await get_scoped_or_404(session, ApiKey, workspace_id, key_id, what="API key", for_update=True)
    if not actor_role.at_least(key.role):
        raise Forbidden(f"This key has the {key.role.value} role, above yours ({actor_role.value}); "
                        "ask an owner to revoke it.")
    if key.revoked_at is not None:
        return key
    key.revoked_at = datetime.now(UTC)
    await session.flush()
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="api_key.revoked",
                       target_type="api_key", target_id=key.id,
                       details={"name": key.name, "role": key.role.value, "prefix": key.prefix})
    log.info("api_key_revoked", workspace_id=str(workspace_id), key_id=str(key.id), prefix=key.prefix)
    return key
