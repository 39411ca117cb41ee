"""The /v1 router: every resource router is mounted here."""

from fastapi import APIRouter

from app.api import api_keys, audit, auth, invitations, me, members, workspaces

api_router = APIRouter(prefix="/v1")
for module in (auth, me, workspaces, members, invitations, api_keys, audit):
    api_router.include_router(module.router)
