"""Scan benchmark: `cloudwizard scan --format json` on a large seeded account behind the AWS fake with
30 ms per call, measured as its own process. Prints the figures (and --json FILE writes them).

    python bench/scan_benchmark.py                      # start a fake, seed it, measure, stop it
    python bench/scan_benchmark.py --keep               # ... and leave the seeded fake running
    python bench/scan_benchmark.py --endpoint URL       # reuse a running (seeded) fake: no re-seeding

Figures: wall time; AWS calls (total and by service, from the report and from the fake's own counter);
calls per second; throttles; peak memory of the scan process; the latency bound calls x latency /
concurrency; what the fake can serve (cheap calls, high concurrency, no latency) and the bound
calls / that rate; start-up to the first AWS call. Targets: wall time within 2x of the fake's bound,
peak RSS < 300 MB, start-up to first call < 1.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(REPO_ROOT))

from seed_large_account import ACCOUNT, REGIONS, ensure_seeded  # noqa: E402

CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/bench"
TARGET_RATIO = 2.0
TARGET_RSS_MB = 300
TARGET_STARTUP_S = 1.5


def aws_env(endpoint: str) -> dict[str, str]:
    """An environment in which the scan can reach nothing but the fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CW_"))}
    scratch = tempfile.mkdtemp(prefix="cw-bench-")
    return env | {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": f"{scratch}/none",
        "AWS_SHARED_CREDENTIALS_FILE": f"{scratch}/none", "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    log = Path(tempfile.mkdtemp(prefix="cw-bench-fake-")) / "fake.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    with log.open("wb") as fh:
        process = subprocess.Popen([sys.executable, "-m", "app.fakes.server", "--port", "0", "--quiet"],
                                   cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("cwfake ready "):
                return process, line.split()[-1]
        if process.poll() is not None:
            raise SystemExit(f"the fake exited:\n{log.read_text()}")
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the fake did not start within 60 s")


def configure(endpoint: str, **config: Any) -> None:
    httpx.post(f"{endpoint}/_cwfake/config", content=json.dumps(config), timeout=30).raise_for_status()


def reset_stats(endpoint: str) -> None:
    """Clear the fake's counters (its reset also clears latency and caller: set them again after)."""
    httpx.post(f"{endpoint}/_cwfake/reset", timeout=30).raise_for_status()


def fake_stats(endpoint: str) -> dict[str, Any]:
    return httpx.get(f"{endpoint}/_cwfake/stats", timeout=30).json()


async def _fire(endpoint: str, calls: int, concurrency: int) -> float:
    """Cheap calls as fast as the fake answers them, through the scanner's own client stack."""
    import aioboto3
    from botocore.config import Config

    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    config = Config(max_pool_connections=concurrency, retries={"mode": "standard", "total_max_attempts": 1})
    async with session.client("ec2", region_name="us-east-1", endpoint_url=endpoint, config=config) as ec2:
        await ec2.describe_regions()   # warm: connection, model, moto's backend
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await ec2.describe_regions()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(calls)))
        return calls / (time.perf_counter() - started)


def fake_capacity(endpoint: str, calls: int, concurrency: int) -> float:
    configure(endpoint, latency_ms=0)
    return asyncio.run(_fire(endpoint, calls, concurrency))


def run_scan(endpoint: str, latency_ms: float, concurrency: int, extra: list[str]) -> dict[str, Any]:
    """The scan as a child process; its own rusage gives its peak memory."""
    reset_stats(endpoint)
    configure(endpoint, latency_ms=latency_ms, caller_arn=CALLER_ARN)
    out_dir = Path(tempfile.mkdtemp(prefix="cw-bench-scan-"))
    report_path, err_path = out_dir / "report.json", out_dir / "stderr.txt"
    command = [sys.executable, "-m", "app.cli", "scan", "--format", "json", "--quiet", "--regions",
               ",".join(REGIONS), "--concurrency", str(concurrency), "--output", str(report_path), *extra]
    env = aws_env(endpoint) | {"CW_BENCH": "1"}
    with err_path.open("wb") as err:
        launched = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    if process.returncode not in (0, 3):
        raise SystemExit(f"scan exited with {process.returncode}:\n{stderr}")
    bench_line = next((line for line in stderr.splitlines() if line.startswith("cw-bench ")), "")
    fields = dict(item.split("=", 1) for item in bench_line.split()[1:])
    first_call = float(fields["first_aws_call_unix"]) if "first_aws_call_unix" in fields else None
    in_process = fields.get("process_start_to_first_call_s")
    return {
        "exit_code": process.returncode,
        "wall_seconds": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,   # Linux reports KiB
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "startup_to_first_call_s": (first_call - launched) if first_call else None,
        "startup_in_process_s": float(in_process) if in_process not in (None, "unknown") else None,
        "startup_cpu_s": float(fields["cpu_to_first_call_s"]) if "cpu_to_first_call_s" in fields else None,
        "report": json.loads(report_path.read_text()),
        "report_bytes": report_path.stat().st_size,
        "fake": fake_stats(endpoint),
        "stderr": stderr,
    }


def figures(seed: dict[str, Any], capacity: float, scan: dict[str, Any], latency_ms: float,
            concurrency: int) -> dict[str, Any]:
    report = scan["report"]["scan"]
    fake = scan["fake"]
    by_service_fake: Counter[str] = Counter()
    for key, n in fake["calls"].items():
        by_service_fake[key.split(":", 1)[0]] += n
    calls = report["api_calls"]
    wall = scan["wall_seconds"]
    latency_bound = calls * latency_ms / 1000 / concurrency
    moto_bound = fake["total"] / capacity
    return {
        "resources_seeded": seed["total"],
        "regions": len(report["regions"]),
        "wall_seconds": round(wall, 2),
        "scan_duration_seconds": report["duration_seconds"],
        "api_calls_report": calls,
        "api_calls_fake": fake["total"],
        "api_calls_by_service_report": report["api_calls_by_service"],
        "api_calls_by_service_fake": dict(sorted(by_service_fake.items())),
        "calls_per_second": round(fake["total"] / wall, 1),
        "throttled_report": report["throttled"],
        "throttled_fake": sum(fake["throttled"].values()),
        "collection_errors": len(report["errors"]),
        "error_codes": dict(Counter(e["code"] for e in report["errors"]).most_common()),
        "findings": report["counts"],
        "checks_run": report["checks_run"],
        "report_megabytes": round(scan["report_bytes"] / 1e6, 2),
        "peak_rss_mb": round(scan["peak_rss_mb"], 1),
        "cpu_seconds": round(scan["cpu_seconds"], 2),
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "latency_bound_seconds": round(latency_bound, 2),
        "fake_capacity_calls_per_second": round(capacity, 1),
        "fake_bound_seconds": round(moto_bound, 2),
        "wall_over_fake_bound": round(wall / moto_bound, 2) if moto_bound else None,
        "startup_to_first_call_s": round(scan["startup_to_first_call_s"], 3)
        if scan["startup_to_first_call_s"] is not None else None,
        "startup_in_process_s": scan["startup_in_process_s"],
        "startup_cpu_s": scan["startup_cpu_s"],
        "exit_code": scan["exit_code"],
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }


def show(f: dict[str, Any]) -> None:
    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"resources seeded            {f['resources_seeded']} in {f['regions']} regions")
    print(f"wall time                   {f['wall_seconds']:.2f} s (engine: {f['scan_duration_seconds']:.2f} s), "
          f"exit code {f['exit_code']}")
    print(f"AWS calls                   {f['api_calls_report']} (report) / {f['api_calls_fake']} (fake)")
    print(f"calls per second            {f['calls_per_second']}")
    print(f"throttled                   {f['throttled_report']} (report) / {f['throttled_fake']} (fake)")
    print(f"collection errors           {f['collection_errors']} {f['error_codes']}")
    print(f"findings                    {f['findings']['total']} {f['findings']['by_status']} "
          f"from {f['checks_run']} checks; report {f['report_megabytes']} MB")
    print(f"latency bound               {f['latency_bound_seconds']:.2f} s "
          f"(= calls x {f['latency_ms']:.0f} ms / {f['concurrency']})")
    print(f"fake capacity               {f['fake_capacity_calls_per_second']} calls/s "
          f"-> bound {f['fake_bound_seconds']:.2f} s")
    ratio = f["wall_over_fake_bound"]
    print(f"wall / fake bound           {ratio} (target <= {TARGET_RATIO}: {verdict(ratio <= TARGET_RATIO)})")
    print(f"peak memory (RSS)           {f['peak_rss_mb']:.1f} MB "
          f"(target < {TARGET_RSS_MB}: {verdict(f['peak_rss_mb'] < TARGET_RSS_MB)}); "
          f"CPU {f['cpu_seconds']:.1f} s")
    startup = f["startup_to_first_call_s"]
    if startup is None:
        print("start-up to first AWS call  not reported (CW_BENCH line missing)")
    else:
        print(f"start-up to first AWS call  {startup:.3f} s from spawn ({f['startup_in_process_s']} s from the "
              f"process's start, {f['startup_cpu_s']} s of it CPU) "
              f"(target < {TARGET_STARTUP_S}: {verdict(startup < TARGET_STARTUP_S)})")
    print(f"machine                     {f['cpus']} CPUs, load average {tuple(round(x, 2) for x in f['load_average'])}")
    print("calls by service (report / fake):")
    fake = f["api_calls_by_service_fake"]
    for service in sorted(set(f["api_calls_by_service_report"]) | set(fake)):
        print(f"  {service:24} {f['api_calls_by_service_report'].get(service, 0):6} / {fake.get(service, 0):6}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running fake to use (seeded if it is not yet)")
    parser.add_argument("--keep", action="store_true", help="leave the fake this script started running")
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=32, help="the scan's --concurrency")
    parser.add_argument("--scale", type=float, default=1.0, help="seed size multiplier")
    parser.add_argument("--capacity-calls", type=int, default=2000)
    parser.add_argument("--capacity-concurrency", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("scan_args", nargs="*", help="extra `cloudwizard scan` arguments (after --)")
    args = parser.parse_args(argv)

    process = None
    endpoint = args.endpoint
    if endpoint is None:
        process, endpoint = start_fake()
        print(f"fake on {endpoint}", file=sys.stderr)
    try:
        reset_stats(endpoint)
        started = time.monotonic()
        seed, fresh = ensure_seeded(endpoint, scale=args.scale, log=lambda m: print(m, file=sys.stderr))
        print(f"seed: {seed['total']} resources ({'seeded now' if fresh else 'already there'}, "
              f"{time.monotonic() - started:.1f} s): {seed['resources']}", file=sys.stderr)
        capacity = fake_capacity(endpoint, args.capacity_calls, args.capacity_concurrency)
        scan = run_scan(endpoint, args.latency_ms, args.concurrency, args.scan_args)
        result = figures(seed, capacity, scan, args.latency_ms, args.concurrency)
        show(result)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if process is not None:
            if args.keep:
                print(f"fake left running on {endpoint} (pid {process.pid})", file=sys.stderr)
            else:
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
