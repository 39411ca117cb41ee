"""Export benchmark: `GET /findings/export` in every format for a workspace of N findings, against the API
running as its own process (`cloudwizard serve`), read by a streaming client that keeps nothing.

    python bench/export_benchmark.py                       # 20,000 findings, a fresh SQLite database
    python bench/export_benchmark.py --findings 100000
    python bench/export_benchmark.py --database-url postgresql+asyncpg://postgres@127.0.0.1/cw_bench

Figures per format: time to first byte, total time, rows/s, bytes, and the server's peak RSS above its RSS
before the export (its VmHWM is reset through /proc/<pid>/clear_refs before each export; Linux only). Flat
memory means the delta stays about the same whatever --findings is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import string
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
FORMATS = ("json", "csv", "ocsf", "asff", "html")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(n: int) -> tuple[str, str]:
    """A workspace with one account and one finished scan of n findings; returns (workspace id, API key)."""
    from app.checks.base import finding_uid
    from app.checks.catalog import catalog
    from app.db import dispose_engine, session_scope
    from app.models import AccountStatus, ApiKey, AwsAccount, Role, ScanRun, ScanStatus, Workspace
    from app.scanners.engine import FindingRecord
    from app.security import new_token, token_digest
    from app.services.findings import upsert_findings
    from app.services.scans import summarize

    checks = [e.meta for e in catalog().values()]
    number = "123456789012"
    regions = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"]
    prefix = "cw_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(8))
    key = f"{prefix}_{new_token(32)}"
    async with session_scope() as s:
        ws = Workspace(name="Export benchmark")
        s.add(ws)
        await s.flush()
        account = AwsAccount(workspace_id=ws.id, name="bench", external_id=secrets.token_urlsafe(32),
                             status=AccountStatus.connected, aws_account_id=number, partition="aws",
                             role_arn=f"arn:aws:iam::{number}:role/CloudWizardScanner", regions=regions,
                             missing_permissions=[])
        s.add(account)
        await s.flush()
        s.add(ApiKey(workspace_id=ws.id, name="bench", role=Role.viewer, prefix=prefix, secret_hash=token_digest(key)))
        now = datetime.now(UTC)
        scan = ScanRun(workspace_id=ws.id, aws_account_id=account.id, status=ScanStatus.running, started_at=now,
                       regions=regions, progress={}, summary={}, collection_errors=[])
        s.add(scan)
        await s.flush()
        records = []
        for i in range(n):
            meta = checks[i % len(checks)]
            region = regions[i % len(regions)]
            resource = f"resource-{i:07d}"
            status = ("FAIL", "PASS", "FAIL", "ERROR")[i % 4]
            records.append(FindingRecord(
                uid=finding_uid(number, region, meta.id, resource), check_id=meta.id, title=meta.title,
                status=status, severity=meta.severity.value, service=meta.service, category=meta.category,
                region=region, account_id=number, resource_type=meta.resource_type, resource_id=resource,
                resource_arn=f"arn:aws:{meta.service}:{region}:{number}:{resource}",
                message=f"{meta.title}: {status} for {resource}", source="cloudwizard",
                compliance=meta.compliance, details={"index": i}))
        deltas = await upsert_findings(s, scan, records)
        scan.summary = {**summarize(records), "deltas": deltas}
        scan.status, scan.finished_at = ScanStatus.succeeded, datetime.now(UTC)
        ws_id = str(ws.id)
    await dispose_engine()
    return ws_id, key


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(base: str, ws: str, key: str, fmt: str, pid: int, rows: int) -> dict[str, float]:
    Path(f"/proc/{pid}/clear_refs").write_text("5")   # reset VmHWM to the current RSS
    before = rss_kb(pid, "VmRSS")
    size, first = 0, None
    start = time.perf_counter()
    with httpx.Client(timeout=600) as client, client.stream(
            "GET", f"{base}/v1/workspaces/{ws}/findings/export?format={fmt}&include_resolved=true",
            headers={"Authorization": f"Bearer {key}"}) as r:
        r.raise_for_status()
        for piece in r.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            size += len(piece)
    total = time.perf_counter() - start
    peak = rss_kb(pid, "VmHWM")
    return {"ttfb_s": first or total, "total_s": total, "rows_per_s": rows / total, "mb": size / 1e6,
            "rss_before_mb": before / 1024, "peak_delta_mb": (peak - before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=20_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="cw-export-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{data / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CW_", "AWS_"))}
    env |= {"CW_DATA_DIR": str(data), "CW_DATABASE_URL": url, "CW_JWT_SECRET": secrets.token_urlsafe(48),
            "CW_LOG_LEVEL": "warning"}
    os.environ.update(env)
    from app.migrate import upgrade

    if url.startswith("postgresql"):
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        async def reset() -> None:
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(reset())
    upgrade("head", url)
    t = time.perf_counter()
    ws, key = asyncio.run(seed(args.findings))
    print(f"seeded {args.findings:,} findings in {time.perf_counter() - t:.1f} s ({url.split(':')[0]})")

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=REPO_ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        measure(base, ws, key, "csv", server.pid, args.findings)   # warm-up: imports, catalog, connections
        print(f"{'format':<6} {'TTFB s':>8} {'total s':>8} {'rows/s':>9} {'MB':>7} {'RSS MB':>7} {'peak +MB':>9}")
        for fmt in args.formats.split(","):
            m = measure(base, ws, key, fmt, server.pid, args.findings)
            print(f"{fmt:<6} {m['ttfb_s']:>8.3f} {m['total_s']:>8.2f} {m['rows_per_s']:>9,.0f} {m['mb']:>7.1f} "
                  f"{m['rss_before_mb']:>7.0f} {m['peak_delta_mb']:>9.1f}")
        print("(html lists at most 20,000 rows; its counts and charts cover every finding)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
