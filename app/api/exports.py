"""Exports of findings (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["exports"])
