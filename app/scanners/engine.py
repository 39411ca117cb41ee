"""One scan: find the enabled regions, run global collectors once and regional collectors for every region
concurrently (bounded by the scan's limits), then evaluate the selected checks into finding records.

The same engine serves the hosted worker and the `cloudwizard scan` command; only the ClientProvider
(assumed customer role, or the caller's own credentials) differs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from app.aws.permissions import declare, load_declarations
from app.aws.session import PARTITION_STS_REGION
from app.checks.base import Status, evaluate, finding_uid
from app.checks.catalog import CatalogEntry, catalog
from app.scanners.base import (
    COLLECTORS,
    GLOBAL,
    AwsCallFailed,
    ClientProvider,
    CollectionError,
    Collector,
    CollectorContext,
    Inventory,
    Limits,
    ScanContext,
    ScanStats,
)

log = structlog.get_logger(__name__)

ENGINE_ACTIONS = declare("engine", {"ec2:DescribeRegions"})
ENABLED_OPT_IN = {"opt-in-not-required", "opted-in"}

Progress = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass
class ScanPlan:
    regions: list[str] | None = None      # allow-list; None = every enabled region
    services: set[str] | None = None      # service labels (iam, s3, ec2...)
    checks: set[str] | None = None        # check ids


@dataclass
class FindingRecord:
    uid: str
    check_id: str
    title: str
    status: str
    severity: str
    service: str
    category: str
    region: str
    account_id: str
    resource_type: str
    resource_id: str
    resource_arn: str | None
    message: str
    source: str
    compliance: dict[str, list[str]]
    details: dict[str, Any] = field(default_factory=dict)
    resource_tags: dict[str, str] = field(default_factory=dict)   # the resource's tags (mute rules match them)
    source_id: str | None = None      # the source's own finding id (Security Hub, GuardDuty); None for checks

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScanOutcome:
    account_id: str
    partition: str
    regions: list[str]
    status: str                      # succeeded | partial
    findings: list[FindingRecord]
    errors: list[CollectionError]
    stats: ScanStats
    started_at: datetime
    finished_at: datetime
    checks_run: int
    collectors_run: int
    # (source, region) pairs whose GuardDuty or Security Hub findings this scan read completely: there, a finding
    # of that source that is no longer listed was archived, resolved or deleted (app.scanners.external).
    sources_read: frozenset[tuple[str, str]] = frozenset()


class UnknownSelection(ValueError):
    """A --checks/--services/--regions value that names nothing we know."""


def select_checks(plan: ScanPlan) -> list[CatalogEntry]:
    entries = catalog()
    chosen = list(entries.values())
    if plan.checks:
        unknown = sorted(plan.checks - set(entries))
        if unknown:
            raise UnknownSelection(f"unknown check ids: {', '.join(unknown)}")
        chosen = [e for e in chosen if e.spec.id in plan.checks]
    if plan.services:
        known = {e.meta.service for e in entries.values()}
        unknown = sorted(plan.services - known)
        if unknown:
            raise UnknownSelection(f"unknown services: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        chosen = [e for e in chosen if e.meta.service in plan.services]
    return chosen


def collectors_for(checks: list[CatalogEntry]) -> list[type[Collector]]:
    """Only the collectors whose actions feed the chosen checks run: no call without a reader."""
    load_declarations()
    needed = {a.lower() for e in checks for a in e.spec.requires}
    return [c for c in COLLECTORS.values() if {a.lower() for a in c.actions} & needed]


@functools.cache
def _in_partition(region: str, partition: str) -> bool:
    """AWS lists only its own partition's regions; simulators list them all. Unknown regions are kept."""
    from botocore.exceptions import UnknownRegionError
    from botocore.session import get_session

    try:
        return get_session().get_partition_for_region(region) == partition
    except UnknownRegionError:
        return True


async def discover_regions(ctx: ScanContext, partition: str, allow: list[str] | None) -> list[str]:
    home = PARTITION_STS_REGION[partition]
    try:
        answer = await ctx.call("ec2", home, "DescribeRegions", AllRegions=False)
    except AwsCallFailed:
        # Without the list we scan what we were told, or the home region; the error makes the scan partial.
        return list(allow) if allow else [home]
    enabled = sorted(r["RegionName"] for r in (answer or {}).get("Regions", [])
                     if r.get("OptInStatus", "opt-in-not-required") in ENABLED_OPT_IN
                     and _in_partition(r["RegionName"], partition))
    if allow:
        skipped = sorted(set(allow) - set(enabled))
        if skipped:
            log.info("scan.regions_not_enabled", regions=skipped)
        return [r for r in allow if r in enabled]
    return enabled


async def run_scan(provider: ClientProvider, account_id: str, partition: str = "aws",
                   plan: ScanPlan | None = None, *, limits: Limits | None = None,
                   progress: Progress | None = None) -> ScanOutcome:
    plan = plan or ScanPlan()
    checks = select_checks(plan)
    collectors = collectors_for(checks)
    started = datetime.now(UTC)
    inventory = Inventory(account_id=account_id, partition=partition)
    async with ScanContext(provider, inventory, limits) as ctx:
        regions = await discover_regions(ctx, partition, plan.regions)
        inventory.regions = regions
        home = PARTITION_STS_REGION[partition]
        tasks = [(c, home if c.scope == "global" else r) for c in collectors
                 for r in ([home] if c.scope == "global" else regions)]
        tracker = _Progress(tasks, regions, ctx.stats, progress)
        await tracker.emit(force=True)

        async def run_one(collector: type[Collector], region: str) -> None:
            instance = collector()
            try:
                await instance.collect(CollectorContext(ctx, instance, region))
                inventory.completed.add((collector.name, GLOBAL if collector.scope == "global" else region))
            except AwsCallFailed:
                pass  # recorded in the inventory; dependent checks report ERROR
            except Exception as exc:  # a collector bug must not sink the scan, nor pass silently
                log.exception("scan.collector_crashed", collector=collector.name, region=region)
                for action in collector.actions:
                    inventory.record_error(CollectionError(
                        service=collector.service, action=action,
                        region=GLOBAL if collector.scope == "global" else region,
                        code="CollectorError", message=f"{type(exc).__name__}: {exc}"[:500]))
            await tracker.done(collector, region)

        regional = [c for c in collectors if c.scope == "regional"]
        region_slots = asyncio.Semaphore(ctx.limits.regions_in_flight)

        async def run_region(region: str) -> None:
            async with region_slots:
                async with asyncio.TaskGroup() as tg:
                    for collector in regional:
                        tg.create_task(run_one(collector, region))
                if region != home:   # global collectors share the home region's clients
                    await ctx.release(region)

        try:
            async with asyncio.TaskGroup() as tg:
                for collector in collectors:
                    if collector.scope == "global":
                        tg.create_task(run_one(collector, home))
                for region in regions:
                    tg.create_task(run_region(region))
        except BaseExceptionGroup as group:
            # Collector failures are caught in run_one; what escapes is the progress callback stopping the
            # scan (a cancel): re-raise it as itself.
            error: BaseException = group
            while isinstance(error, BaseExceptionGroup):
                error = error.exceptions[0]
            raise error from None
        await tracker.emit(force=True)

    tags = _tags_by_resource(inventory)
    findings = [record for entry in checks for record in _records(entry, inventory, tags)]
    # The active findings of GuardDuty and Security Hub, wherever their collectors ran (imported here: the module
    # builds FindingRecords).
    from app.scanners.external import external_findings

    ingested, sources_read = external_findings(inventory, tags)
    findings.extend(ingested)
    return ScanOutcome(
        account_id=account_id, partition=partition, regions=regions,
        status="partial" if inventory.errors else "succeeded", findings=findings,
        errors=list(inventory.errors), stats=ctx.stats, started_at=started, finished_at=datetime.now(UTC),
        checks_run=len(checks), collectors_run=len(tasks), sources_read=sources_read,
    )


def _tags_by_resource(inventory: Inventory) -> dict[tuple[str, str], dict[str, str]]:
    """(region, resource id) -> the resource's tags, for the resources that have any."""
    return {(r.region, r.resource_id): r.tags for resources in inventory.resources.values()
            for r in resources if r.tags}


def _records(entry: CatalogEntry, inventory: Inventory,
             tags: dict[tuple[str, str], dict[str, str]] | None = None) -> list[FindingRecord]:
    meta = entry.meta
    tags = tags or {}
    out = []
    for result in evaluate(entry.spec, inventory):
        out.append(FindingRecord(
            uid=finding_uid(inventory.account_id, result.region, meta.id, result.resource_id),
            check_id=meta.id, title=meta.title, status=Status(result.status).value,
            severity=meta.severity.value, service=meta.service, category=meta.category,
            region=result.region, account_id=inventory.account_id, resource_type=result.resource_type,
            resource_id=result.resource_id, resource_arn=result.resource_arn, message=result.message,
            source="cloudwizard", compliance=meta.compliance, details=result.details,
            resource_tags=tags.get((result.region, result.resource_id), {}),
        ))
    return out


class _Progress:
    """Live progress: regions and services done/total, API calls, throttles, errors."""

    MIN_INTERVAL = 1.0

    def __init__(self, tasks: list[tuple[type[Collector], str]], regions: list[str], stats: ScanStats,
                 callback: Progress | None) -> None:
        self.stats = stats
        self.callback = callback
        self.left_by_region: dict[str, int] = defaultdict(int)
        self.left_by_service: dict[str, int] = defaultdict(int)
        for collector, region in tasks:
            if collector.scope == "regional":
                self.left_by_region[region] += 1
            self.left_by_service[collector.service] += 1
        self.regions_total = len(regions)
        self.services_total = len(self.left_by_service)
        self.tasks_total = len(tasks)
        self.tasks_done = 0
        self._last = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "regions_total": self.regions_total,
            "regions_done": self.regions_total - sum(1 for n in self.left_by_region.values() if n > 0),
            "services_total": self.services_total,
            "services_done": sum(1 for n in self.left_by_service.values() if n == 0),
            "collectors_total": self.tasks_total,
            "collectors_done": self.tasks_done,
            "api_calls": self.stats.api_calls,
            "throttled": self.stats.throttled,
            "errors": self.stats.errors,
        }

    async def done(self, collector: type[Collector], region: str) -> None:
        self.tasks_done += 1
        if collector.scope == "regional":
            self.left_by_region[region] -= 1
        self.left_by_service[collector.service] -= 1
        await self.emit()

    async def emit(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self.MIN_INTERVAL and self.tasks_done < self.tasks_total:
            return
        self._last = now
        result = self.callback(self.snapshot())
        if inspect.isawaitable(result):
            await result
