"""The signed-in user: profile and workspace memberships."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import CurrentUser, SessionDep
from app.errors import error_responses
from app.schemas.auth import MeRead, MeUpdate, WorkspaceMembershipRead
from app.services import auth as auth_service

router = APIRouter(prefix="/me", tags=["me"])


async def _me_read(session: SessionDep, user: CurrentUser) -> MeRead:
    memberships = await auth_service.list_memberships(session, user.id)
    return MeRead(id=user.id, email=user.email, display_name=user.display_name, created_at=user.created_at,
                  workspaces=[WorkspaceMembershipRead.model_validate(m) for m in memberships])


@router.get(
    "", name="me_get", response_model=MeRead, summary="Who am I",
    description="The signed-in user and the workspaces they belong to, with their role in each. "
                "Needs a user's access token: API keys get 403.",
    responses=error_responses(401, 403),
)
async def me_get(user: CurrentUser, session: SessionDep) -> MeRead:
    return await _me_read(session, user)


@router.patch(
    "", name="me_update", response_model=MeRead, summary="Update my profile",
    description="Changes the fields sent (only `display_name` for now); fields left out stay as they are.",
    responses=error_responses(400, 401, 403, 422),
)
async def me_update(body: MeUpdate, user: CurrentUser, session: SessionDep) -> MeRead:
    await auth_service.update_profile(session, user, changes=body.model_dump(exclude_unset=True))
    return await _me_read(session, user)
