"""Liveness and readiness probes (outside /v1, unauthenticated)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.db import get_sessionmaker
from app.redis import get_redis

router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: Literal["ok"]


class ReadinessRead(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Literal["ok", "unavailable", "not_configured"]]


@router.get("/healthz", name="health_live", response_model=HealthRead,
            summary="Liveness", description="Answers while the process is alive; checks nothing else.")
async def health_live() -> HealthRead:
    return HealthRead(status="ok")


@router.get("/readyz", name="health_ready", response_model=ReadinessRead,
            summary="Readiness", description="Checks the database, and Redis where configured. 503 when one is down.",
            responses={503: {"model": ReadinessRead, "description": "A dependency is unavailable."}})
async def health_ready():
    checks: dict[str, str] = {}
    try:
        async with get_sessionmaker()() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    redis = get_redis()
    if redis is None:
        checks["redis"] = "not_configured"
    else:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "unavailable"
    ok = all(v != "unavailable" for v in checks.values())
    body = ReadinessRead(status="ok" if ok else "unavailable", checks=checks)  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
