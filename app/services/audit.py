"""Append an audit event for every state-changing action; there is no update or delete path."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent

if TYPE_CHECKING:
    from app.api.deps import Principal


async def record(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal | None, action: str,
                 target_type: str | None = None, target_id: Any = None,
                 details: dict[str, Any] | None = None, source_ip: str | None = None) -> AuditEvent:
    """`actor=None` records a system action (a scheduled job, for instance)."""
    event = AuditEvent(
        workspace_id=workspace_id,
        actor_type=actor.kind if actor else "system",
        actor_id=actor.id if actor else None,
        actor_label=actor.label if actor else "cloudwizard",
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        source_ip=source_ip if source_ip is not None else (actor.source_ip if actor else None),
        details=details or {},
    )
    session.add(event)
    await session.flush()
    return event


async def record_independent(**kwargs: Any) -> None:
    """Record in a transaction of its own, for events that must survive the request's rollback
    (a refused AssumeRole is still an AssumeRole the customer will see in CloudTrail)."""
    from app.db import session_scope

    async with session_scope() as session:
        await record(session, **kwargs)
