"""The /v1 router: every resource router is mounted here."""

from fastapi import APIRouter

from app.api import (
    api_keys,
    audit,
    auth,
    aws_accounts,
    checks,
    exports,
    findings,
    invitations,
    me,
    members,
    mutes,
    overview,
    scans,
    templates,
    workspaces,
)

api_router = APIRouter(prefix="/v1")
for module in (auth, me, workspaces, members, invitations, api_keys, audit, aws_accounts, scans, overview, findings,
               mutes, exports, checks, templates):
    api_router.include_router(module.router)
