"""Mute rules of a workspace (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["mutes"])
