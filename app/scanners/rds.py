"""RDS: DB instances, DB clusters (Aurora and Multi-AZ clusters), and manual DB and cluster snapshots.

Encryption in transit is read from the parameter groups (rds.force_ssl, require_secure_transport): each
distinct group is read once per region, concurrently, and its failure becomes an error of every instance
or cluster that uses it. Neptune and DocumentDB share these APIs and are left out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

OTHER_ENGINES = frozenset({"neptune", "docdb"})   # listed by the RDS APIs, judged by their own checks
IAM_AUTH_ENGINES = frozenset({"mysql", "mariadb", "postgres", "aurora", "aurora-mysql", "aurora-postgresql"})
ON_VALUES = frozenset({"1", "on", "true"})


def ssl_parameter(engine: str) -> str | None:
    """The parameter that forces TLS for an engine, or None when no parameter group setting does."""
    if engine in ("postgres", "aurora-postgresql") or engine.startswith("sqlserver"):
        return "rds.force_ssl"
    if engine in ("mysql", "mariadb", "aurora", "aurora-mysql"):
        return "require_secure_transport"
    return None


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text or "")[:2])


def ssl_default_on(engine: str, version: str | None) -> bool:
    """The engine default when the parameter group leaves the setting unset (documented per engine)."""
    if engine == "postgres":
        return _version(version) >= (15,)
    if engine == "mysql":
        return _version(version) >= (9, 7)
    if engine == "mariadb":
        return _version(version) >= (11, 8)
    return False


def ssl_enforced(engine: str, version: str | None, value: str | None) -> bool:
    if value is None:
        return ssl_default_on(engine, version)
    return value.strip().lower() in ON_VALUES


class RdsDbInstance(Resource):
    resource_type = "AwsRdsDbInstance"
    engine: str
    engine_version: str | None = None
    cluster_id: str | None = None            # member of an Aurora or Multi-AZ DB cluster
    read_replica_of: str | None = None
    storage_encrypted: bool = False
    kms_key_id: str | None = None
    publicly_accessible: bool = False
    auto_minor_version_upgrade: bool = False
    backup_retention_period: int = 0
    deletion_protection: bool = False
    iam_auth: bool = False
    multi_az: bool = False
    monitoring_interval: int = 0              # seconds between Enhanced Monitoring samples; 0 = off
    parameter_group: str | None = None
    ssl_parameter: str | None = None          # None: the engine has no such parameter (or the cluster owns it)
    ssl_parameter_value: str | None = None    # None: not set in the group, the engine default applies

    @property
    def ssl_enforced(self) -> bool:
        return ssl_enforced(self.engine, self.engine_version, self.ssl_parameter_value)


class RdsDbCluster(Resource):
    resource_type = "AwsRdsDbCluster"
    engine: str
    engine_version: str | None = None
    storage_encrypted: bool = False
    kms_key_id: str | None = None
    deletion_protection: bool = False
    iam_auth: bool = False
    multi_az: bool = False
    backup_retention_period: int = 0
    auto_minor_version_upgrade: bool | None = None   # None: not reported for this cluster (older engines)
    parameter_group: str | None = None
    ssl_parameter: str | None = None
    ssl_parameter_value: str | None = None

    @property
    def ssl_enforced(self) -> bool:
        return ssl_enforced(self.engine, self.engine_version, self.ssl_parameter_value)


class RdsDbSnapshot(Resource):
    resource_type = "AwsRdsDbSnapshot"
    source_id: str | None = None
    engine: str | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    restorable_by: list[str] = []             # "all" means public


class RdsDbClusterSnapshot(RdsDbSnapshot):
    resource_type = "AwsRdsDbClusterSnapshot"


def _supported(engine: str | None) -> bool:
    return bool(engine) and engine not in OTHER_ENGINES


class _ParameterGroups:
    """Reads each parameter group once per region; concurrent users share the read."""

    def __init__(self, ctx: CollectorContext, operation: str, name_arg: str, kind: str) -> None:
        self.ctx = ctx
        self.operation = operation
        self.name_arg = name_arg
        self.kind = kind
        self._reads: dict[str, asyncio.Task[dict[str, str | None]]] = {}

    def read(self, name: str) -> asyncio.Task[dict[str, str | None]]:
        if name not in self._reads:
            self._reads[name] = asyncio.create_task(self._read(name))
        return self._reads[name]

    async def _read(self, name: str) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        # resource_id names the group with a prefix identifiers cannot have, so it never matches an instance.
        async for page in self.ctx.pages("rds", self.operation, resource_id=f"{self.kind}:{name}",
                                         **{self.name_arg: name}):
            for parameter in page.get("Parameters", []):
                if parameter.get("ParameterName") in ("rds.force_ssl", "require_secure_transport"):
                    values[parameter["ParameterName"]] = parameter.get("ParameterValue")
        return values

    async def apply(self, resource: RdsDbInstance | RdsDbCluster) -> None:
        """Fill the resource's TLS setting; a failed read becomes an error of this resource."""
        if not resource.parameter_group or not resource.ssl_parameter:
            return
        try:
            values = await self.read(resource.parameter_group)
        except AwsCallFailed as exc:
            self.ctx.scan.inventory.record_error(exc.error.model_copy(update={"resource_id": resource.resource_id}))
            return
        resource.ssl_parameter_value = values.get(resource.ssl_parameter)


@register
class RdsInstanceCollector(Collector):
    name = "rds_instances"
    service = "rds"
    scope = "regional"
    actions = frozenset({"rds:DescribeDBInstances", "rds:DescribeDBParameters"})

    async def collect(self, ctx: CollectorContext) -> None:
        groups = _ParameterGroups(ctx, "DescribeDBParameters", "DBParameterGroupName", "dbparametergroup")
        instances = []
        for raw in await ctx.collect_all("rds", "DescribeDBInstances", "DBInstances"):
            if not _supported(raw.get("Engine")):
                continue
            engine = raw["Engine"]
            in_cluster = raw.get("DBClusterIdentifier")
            group = next((g.get("DBParameterGroupName") for g in raw.get("DBParameterGroups", [])), None)
            instances.append(RdsDbInstance(
                region=ctx.region, resource_id=raw["DBInstanceIdentifier"], arn=raw.get("DBInstanceArn"),
                tags=_tags(raw), engine=engine, engine_version=raw.get("EngineVersion"), cluster_id=in_cluster,
                read_replica_of=raw.get("ReadReplicaSourceDBInstanceIdentifier")
                or raw.get("ReadReplicaSourceDBClusterIdentifier"),
                storage_encrypted=bool(raw.get("StorageEncrypted")), kms_key_id=raw.get("KmsKeyId"),
                publicly_accessible=bool(raw.get("PubliclyAccessible")),
                auto_minor_version_upgrade=bool(raw.get("AutoMinorVersionUpgrade")),
                backup_retention_period=int(raw.get("BackupRetentionPeriod") or 0),
                deletion_protection=bool(raw.get("DeletionProtection")),
                iam_auth=bool(raw.get("IAMDatabaseAuthenticationEnabled")), multi_az=bool(raw.get("MultiAZ")),
                monitoring_interval=int(raw.get("MonitoringInterval") or 0), parameter_group=group,
                # In a cluster, TLS is set in the cluster parameter group: the cluster check judges it.
                ssl_parameter=None if in_cluster else ssl_parameter(engine)))
        await asyncio.gather(*(groups.apply(i) for i in instances))
        for instance in instances:
            ctx.add(instance)


@register
class RdsClusterCollector(Collector):
    name = "rds_clusters"
    service = "rds"
    scope = "regional"
    actions = frozenset({"rds:DescribeDBClusters", "rds:DescribeDBClusterParameters"})

    async def collect(self, ctx: CollectorContext) -> None:
        groups = _ParameterGroups(ctx, "DescribeDBClusterParameters", "DBClusterParameterGroupName",
                                  "dbclusterparametergroup")
        clusters = []
        for raw in await ctx.collect_all("rds", "DescribeDBClusters", "DBClusters"):
            if not _supported(raw.get("Engine")):
                continue
            engine = raw["Engine"]
            clusters.append(RdsDbCluster(
                region=ctx.region, resource_id=raw["DBClusterIdentifier"], arn=raw.get("DBClusterArn"),
                tags=_tags(raw), engine=engine, engine_version=raw.get("EngineVersion"),
                storage_encrypted=bool(raw.get("StorageEncrypted")), kms_key_id=raw.get("KmsKeyId"),
                deletion_protection=bool(raw.get("DeletionProtection")),
                iam_auth=bool(raw.get("IAMDatabaseAuthenticationEnabled")), multi_az=bool(raw.get("MultiAZ")),
                backup_retention_period=int(raw.get("BackupRetentionPeriod") or 0),
                auto_minor_version_upgrade=raw.get("AutoMinorVersionUpgrade"),
                parameter_group=raw.get("DBClusterParameterGroup"), ssl_parameter=ssl_parameter(engine)))
        await asyncio.gather(*(groups.apply(c) for c in clusters))
        for cluster in clusters:
            ctx.add(cluster)


async def _restorable_by(ctx: CollectorContext, operation: str, key: str, snapshot_id: str,
                         **kwargs: Any) -> list[str] | None:
    try:
        answer = await ctx.call("rds", operation, resource_id=snapshot_id, **kwargs) or {}
    except AwsCallFailed:
        return None
    attributes = (answer.get(f"{key}Result") or {}).get(key, [])
    return sorted({v for a in attributes if a.get("AttributeName") == "restore" for v in a.get("AttributeValues", [])})


async def _snapshots(ctx: CollectorContext, list_operation: str, list_key: str,
                     build: Callable[[dict[str, Any]], RdsDbSnapshot],
                     attributes: Callable[[RdsDbSnapshot], Awaitable[list[str] | None]]) -> None:
    snapshots = [build(raw) for raw in await ctx.collect_all("rds", list_operation, list_key, SnapshotType="manual")
                 if _supported(raw.get("Engine"))]
    restorable = await asyncio.gather(*(attributes(s) for s in snapshots))
    for snapshot, who in zip(snapshots, restorable, strict=True):
        snapshot.restorable_by = who or []
        ctx.add(snapshot)


@register
class RdsSnapshotCollector(Collector):
    name = "rds_snapshots"
    service = "rds"
    scope = "regional"
    actions = frozenset({"rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes"})

    async def collect(self, ctx: CollectorContext) -> None:
        def build(raw: dict[str, Any]) -> RdsDbSnapshot:
            return RdsDbSnapshot(region=ctx.region, resource_id=raw["DBSnapshotIdentifier"],
                                 arn=raw.get("DBSnapshotArn"), tags=_tags(raw),
                                 source_id=raw.get("DBInstanceIdentifier"), engine=raw.get("Engine"),
                                 encrypted=bool(raw.get("Encrypted")), kms_key_id=raw.get("KmsKeyId"))

        await _snapshots(ctx, "DescribeDBSnapshots", "DBSnapshots", build, lambda s: _restorable_by(
            ctx, "DescribeDBSnapshotAttributes", "DBSnapshotAttributes", s.resource_id,
            DBSnapshotIdentifier=s.resource_id))


@register
class RdsClusterSnapshotCollector(Collector):
    name = "rds_cluster_snapshots"
    service = "rds"
    scope = "regional"
    actions = frozenset({"rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes"})

    async def collect(self, ctx: CollectorContext) -> None:
        def build(raw: dict[str, Any]) -> RdsDbSnapshot:
            return RdsDbClusterSnapshot(region=ctx.region, resource_id=raw["DBClusterSnapshotIdentifier"],
                                        arn=raw.get("DBClusterSnapshotArn"), tags=_tags(raw),
                                        source_id=raw.get("DBClusterIdentifier"), engine=raw.get("Engine"),
                                        encrypted=bool(raw.get("StorageEncrypted")), kms_key_id=raw.get("KmsKeyId"))

        await _snapshots(ctx, "DescribeDBClusterSnapshots", "DBClusterSnapshots", build, lambda s: _restorable_by(
            ctx, "DescribeDBClusterSnapshotAttributes", "DBClusterSnapshotAttributes", s.resource_id,
            DBClusterSnapshotIdentifier=s.resource_id))


def _tags(raw: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in raw.get("TagList", []) if "Key" in t}
