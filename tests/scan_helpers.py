"""Helpers for scan tests: a connected account through the real API flow, and running queued jobs in
whichever mode the suite uses (in-process tasks, or an arq burst worker on the real Redis)."""

from __future__ import annotations

import asyncio

from app import worker
from app.config import get_settings
from tests.aws_fixtures import trust_policy


async def run_queued_jobs(limit_seconds: float = 120) -> None:
    """Run every job queued so far to completion."""
    if not get_settings().redis_url:
        async with asyncio.timeout(limit_seconds):
            await worker.drain()
        return
    from arq.worker import Worker, get_kwargs

    options = {**get_kwargs(worker.build_worker_settings()), "cron_jobs": []}
    arq_worker = Worker(**options, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        async with asyncio.timeout(limit_seconds):
            await arq_worker.main()
    finally:
        await arq_worker.close()


async def connect_account(client, aws_fake, headers: dict, workspace_id: str, *, name: str = "prod",
                          regions: list[str] | None = None) -> dict:
    """Create a connection, deploy the role in moto with its External ID, and verify it through the API."""
    r = await client.post(f"/v1/workspaces/{workspace_id}/aws-accounts",
                          json={"name": name, "regions": regions}, headers=headers)
    assert r.status_code == 201, r.text
    account = r.json()
    role_arn = aws_fake.create_role(f"CloudWizardScanner-{account['id'][-6:]}",
                                    trust_policy(external_id=account["external_id"]))
    r = await client.post(f"/v1/workspaces/{workspace_id}/aws-accounts/{account['id']}/verify",
                          json={"role_arn": role_arn}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("connected", "degraded")
    return r.json()
