"""Test helpers for AWS account connections: API shortcuts, database snapshots and the fake's issued secrets."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

import httpx
from sqlalchemy import select, text

from app.db import session_scope
from app.models import AwsAccount, Base
from tests.aws_fixtures import AwsFake


def accounts_url(workspace_id: str, *rest: str) -> str:
    return "/".join([f"/v1/workspaces/{workspace_id}/aws-accounts", *rest])


async def create_account(client: httpx.AsyncClient, workspace_id: str, headers: dict[str, str],
                         name: str = "prod", **body: Any) -> dict[str, Any]:
    r = await client.post(accounts_url(workspace_id), json={"name": name, **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def verify(client: httpx.AsyncClient, workspace_id: str, account_id: str, headers: dict[str, str],
                 role_arn: str) -> httpx.Response:
    return await client.post(accounts_url(workspace_id, account_id, "verify"), json={"role_arn": role_arn},
                             headers=headers)


async def audit_events(client: httpx.AsyncClient, workspace_id: str, headers: dict[str, str],
                       action: str | None = None) -> list[dict[str, Any]]:
    """Every audit event of the workspace through the API, oldest first.

    Sorted by time: the API orders by id, and ids made in the same millisecond do not sort by creation.
    """
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    if action:
        params["action"] = action
    while True:
        r = await client.get(f"/v1/workspaces/{workspace_id}/audit-events", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        events.extend(page["items"])
        if not page["next_cursor"]:
            return sorted(events, key=lambda e: e["created_at"])
        params["cursor"] = page["next_cursor"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return value


async def account_row(account_id: str | uuid.UUID) -> dict[str, Any]:
    """Every column of one aws_accounts row, as stored."""
    async with session_scope() as session:
        account = await session.scalar(select(AwsAccount).where(AwsAccount.id == uuid.UUID(str(account_id))))
        assert account is not None
        return {c.key: _plain(getattr(account, c.key)) for c in AwsAccount.__table__.columns}


async def database_dump() -> str:
    """Every row of every table, as text: what an attacker with a database backup would see."""
    rows = []
    async with session_scope() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(text(f"SELECT * FROM {table.name}"))
            for row in result.mappings():
                rows.append({"table": table.name, **{k: _plain(v) for k, v in row.items()}})
    return json.dumps(rows, default=str)


def issued_credentials(fake: AwsFake) -> list[dict[str, str]]:
    """The credentials moto issued for every successful AssumeRole since the last reset (its own state)."""
    r = httpx.get(f"{fake.endpoint_url}/moto-api/data.json", timeout=30)
    r.raise_for_status()
    return [{"access_key_id": a["access_key_id"], "secret_access_key": a["secret_access_key"],
             "session_token": a["session_token"]}
            for a in r.json().get("sts", {}).get("AssumedRole", [])]
