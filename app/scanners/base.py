"""Collector framework: each collector declares the AWS actions it calls and fills an Inventory.

A failed call never becomes data: it is recorded as a CollectionError, and the checks that depend
on the action report ERROR for that region (or resource) instead of guessing PASS or FAIL.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries.standard import ThrottledRetryableChecker
from pydantic import BaseModel, ConfigDict

from app.aws.guard import iam_action

THROTTLE_CODES = frozenset(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "UnauthorizedAccess", "AuthFailure", "Forbidden", "NotAuthorized",
})
GLOBAL = "global"  # the region key of account-wide resources (IAM, S3 bucket list, CloudFront...)
# What no database column can hold: NUL (PostgreSQL refuses it in text) and lone surrogates (no driver encodes them).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` (a string, or a dict or list of them, nested) with NUL and lone surrogates replaced by U+FFFD. For
    free text a third party wrote (findings imported into Security Hub: anyone allowed to import can put either in
    a title or an id), so that one such value cannot fail the write of a whole scan."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


class Resource(BaseModel):
    """Base of every inventory item: enough to name it in a finding."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    resource_type: ClassVar[str] = "AwsResource"
    region: str
    resource_id: str
    arn: str | None = None
    tags: dict[str, str] = {}


class CollectionError(BaseModel):
    service: str
    action: str                 # the IAM action, e.g. "s3:GetEncryptionConfiguration"
    region: str                 # GLOBAL for global services
    resource_id: str | None = None  # set when only one resource's detail failed
    code: str
    message: str

    @property
    def denied(self) -> bool:
        return self.code in DENIED_CODES


class AwsCallFailed(Exception):
    def __init__(self, error: CollectionError) -> None:
        super().__init__(f"{error.action} in {error.region}: {error.code}: {error.message}")
        self.error = error


@dataclass
class ScanStats:
    calls_by_service: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    errors: int = 0
    first_call_at: float | None = None

    @property
    def api_calls(self) -> int:
        return sum(self.calls_by_service.values())


@dataclass
class Inventory:
    account_id: str
    partition: str = "aws"
    regions: list[str] = field(default_factory=list)
    resources: dict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))
    errors: list[CollectionError] = field(default_factory=list)
    # (collector name, region) pairs that ran to the end; a check on a pair that did not run is ERROR.
    completed: set[tuple[str, str]] = field(default_factory=set)

    def add(self, resource: Resource) -> None:
        self.resources[type(resource).__name__].append(resource)

    def of(self, kind: type[Resource]) -> list[Resource]:
        return self.resources.get(kind.__name__, [])

    def record_error(self, error: CollectionError) -> None:
        self.errors.append(error)

    def errors_for(self, actions: Iterable[str], region: str, resource_id: str | None = None) -> list[CollectionError]:
        wanted = {a.lower() for a in actions}
        return [e for e in self.errors
                if e.action.lower() in wanted and e.region in (region, GLOBAL)
                and (e.resource_id is None or e.resource_id == resource_id)]


class ClientProvider(Protocol):
    """Where clients come from: an AssumedRole (hosted scans) or the caller's own session (CLI)."""

    def client(self, service: str, region: str) -> AbstractAsyncContextManager[Any]: ...


@dataclass
class Limits:
    concurrency: int = 32            # AWS calls in flight for the whole scan
    per_service: int = 8             # in flight per service and region
    # S3 serves thousands of requests per second per prefix, and its per-bucket detail calls dominate a scan.
    per_service_overrides: dict[str, int] = field(default_factory=lambda: {"s3": 32})
    # Regions collected at once. Each (service, region) client costs ~0.4 MB, so a scan keeps only the clients
    # of the regions in flight; a handful of regions already gives more work than `concurrency` calls.
    regions_in_flight: int = 6


class ScanContext:
    """One scan's clients, limits, stats and inventory. Use as `async with`."""

    def __init__(self, provider: ClientProvider, inventory: Inventory, limits: Limits | None = None) -> None:
        self.provider = provider
        self.inventory = inventory
        self.limits = limits or Limits()
        self.stats = ScanStats()
        self._global = asyncio.Semaphore(self.limits.concurrency)
        self._service_limits: dict[tuple[str, str], asyncio.Semaphore] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._client_stacks: dict[tuple[str, str], AsyncExitStack] = {}
        self._client_locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def __aenter__(self) -> ScanContext:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for region in {region for _, region in self._client_stacks}:
            await self.release(region)

    async def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key in self._clients:
            return self._clients[key]
        async with self._client_locks[key]:
            if key not in self._clients:
                stack = AsyncExitStack()
                client = await stack.enter_async_context(self.provider.client(service, region))
                self._instrument(client, service)
                self._client_stacks[key] = stack
                self._clients[key] = client
        return self._clients[key]

    async def release(self, region: str) -> None:
        """Close the clients of a region whose collectors are done (a later call opens a new one)."""
        for key in [k for k in self._client_stacks if k[1] == region]:
            self._clients.pop(key, None)
            await self._client_stacks.pop(key).aclose()

    def _instrument(self, client: Any, service: str) -> None:
        stats = self.stats

        def _count(**_: Any) -> None:
            if stats.first_call_at is None:
                stats.first_call_at = time.perf_counter()
            stats.calls_by_service[service] += 1

        def _throttle(response: Any = None, **_: Any) -> None:
            if response and isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
                code = response[1].get("Error", {}).get("Code")
                if code in THROTTLE_CODES:
                    stats.throttled += 1

        client.meta.events.register("before-send", _count)
        client.meta.events.register_first("needs-retry", _throttle)

    def _service_limit(self, service: str, region: str) -> asyncio.Semaphore:
        key = (service, region)
        if key not in self._service_limits:
            n = self.limits.per_service_overrides.get(service, self.limits.per_service)
            self._service_limits[key] = asyncio.Semaphore(n)
        return self._service_limits[key]

    async def call(self, service: str, region: str, operation: str, *, resource_id: str | None = None,
                   ignore_codes: Iterable[str] = (), error_region: str | None = None, **kwargs: Any) -> dict | None:
        """Make one API call. Errors are recorded and raised as AwsCallFailed; a code listed in
        `ignore_codes` (e.g. NoSuchBucketPolicy, meaning "there is none") returns None instead."""
        client = await self.client(service, region)
        action = iam_action(client, operation)
        method = getattr(client, _snake(operation))
        async with self._global, self._service_limit(service, region):
            try:
                return await method(**kwargs)
            except ClientError as exc:
                err = exc.response.get("Error", {})
                code = err.get("Code", "ClientError")
                if code in ignore_codes:
                    return None
                raise self._fail(service, error_region or region, action, code, err.get("Message") or str(exc),
                                 resource_id) from exc
            except BotoCoreError as exc:
                raise self._fail(service, error_region or region, action, type(exc).__name__, str(exc),
                                 resource_id) from exc

    async def pages(self, service: str, region: str, operation: str, *, resource_id: str | None = None,
                    error_region: str | None = None, **kwargs: Any) -> AsyncIterator[dict]:
        """Every page of a paginated operation (full pagination, never a silent first page)."""
        client = await self.client(service, region)
        action = iam_action(client, operation)
        iterator = client.get_paginator(_snake(operation)).paginate(**kwargs).__aiter__()
        while True:
            async with self._global, self._service_limit(service, region):
                try:
                    page = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                except ClientError as exc:
                    err = exc.response.get("Error", {})
                    raise self._fail(service, error_region or region, action, err.get("Code", "ClientError"),
                                     err.get("Message") or str(exc), resource_id) from exc
                except BotoCoreError as exc:
                    raise self._fail(service, error_region or region, action, type(exc).__name__, str(exc),
                                     resource_id) from exc
            yield page

    async def collect_all(self, service: str, region: str, operation: str, key: str, **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        async for page in self.pages(service, region, operation, **kwargs):
            out.extend(page.get(key, []))
        return out

    def _fail(self, service: str, region: str, action: str, code: str, message: str,
              resource_id: str | None) -> AwsCallFailed:
        error = CollectionError(service=service, action=action, region=region, resource_id=resource_id,
                                code=code, message=message[:500])
        self.inventory.record_error(error)
        self.stats.errors += 1
        return AwsCallFailed(error)


def _snake(operation: str) -> str:
    from botocore import xform_name

    return xform_name(operation)


class UndeclaredAction(Exception):
    """A collector called an action it did not declare: a bug, caught by the collector tests."""


class CollectorContext:
    """What a collector sees: its region, and calls that must be among its declared actions."""

    def __init__(self, scan: ScanContext, collector: Collector, region: str) -> None:
        self.scan = scan
        self.collector = collector
        self.region = region
        self._declared = {a.lower() for a in collector.actions}

    @property
    def account_id(self) -> str:
        return self.scan.inventory.account_id

    @property
    def partition(self) -> str:
        return self.scan.inventory.partition

    def arn(self, service: str, resource: str, *, region: str | None = None, account: bool = True) -> str:
        """arn:<partition>:<service>:<region>:<account>:<resource> (region "" for global resources)."""
        reg = "" if region is None and self.collector.scope == "global" else (region or self.region)
        return f"arn:{self.partition}:{service}:{reg}:{self.account_id if account else ''}:{resource}"

    async def _check(self, service: str, operation: str) -> None:
        client = await self.scan.client(service, self.region)
        action = iam_action(client, operation)
        if action.lower() not in self._declared:
            raise UndeclaredAction(f"collector {self.collector.name} calls {action} without declaring it")

    @property
    def error_region(self) -> str:
        # A global collector's failure is about the whole account, not the region its endpoint lives in.
        return GLOBAL if self.collector.scope == "global" else self.region

    async def call(self, service: str, operation: str, **kwargs: Any) -> dict | None:
        await self._check(service, operation)
        kwargs.setdefault("error_region", self.error_region)
        return await self.scan.call(service, self.region, operation, **kwargs)

    async def pages(self, service: str, operation: str, **kwargs: Any) -> AsyncIterator[dict]:
        await self._check(service, operation)
        kwargs.setdefault("error_region", self.error_region)
        async for page in self.scan.pages(service, self.region, operation, **kwargs):
            yield page

    async def collect_all(self, service: str, operation: str, key: str, **kwargs: Any) -> list[Any]:
        await self._check(service, operation)
        kwargs.setdefault("error_region", self.error_region)
        return await self.scan.collect_all(service, self.region, operation, key, **kwargs)

    def add(self, resource: Resource) -> None:
        self.scan.inventory.add(resource)


class Collector:
    """Subclasses declare `name`, `service` (the user-facing service label used by --services), `scope`
    and every IAM action they call; `collect` fills the inventory for one region (global collectors run
    once, in the partition's home region, and store resources under region GLOBAL or their own region)."""

    name: ClassVar[str]
    service: ClassVar[str]
    scope: ClassVar[Literal["global", "regional"]]
    actions: ClassVar[frozenset[str]]

    async def collect(self, ctx: CollectorContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError


COLLECTORS: dict[str, type[Collector]] = {}


def register(cls: type[Collector]) -> type[Collector]:
    if cls.name in COLLECTORS:
        raise ValueError(f"collector {cls.name} registered twice")
    if not cls.actions:
        raise ValueError(f"collector {cls.name} declares no actions")
    COLLECTORS[cls.name] = cls
    return cls
