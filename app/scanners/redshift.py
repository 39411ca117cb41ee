"""Redshift provisioned clusters: encryption, public accessibility, automated snapshots and require_ssl."""

from __future__ import annotations

import asyncio

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

ON_VALUES = frozenset({"true", "1", "on"})


class RedshiftCluster(Resource):
    resource_type = "AwsRedshiftCluster"
    encrypted: bool = False
    kms_key_id: str | None = None
    publicly_accessible: bool = False
    automated_snapshot_retention: int = 0
    allow_version_upgrade: bool = False
    enhanced_vpc_routing: bool = False
    master_username: str | None = None    # a user name, not a credential: kept for the default-name check
    parameter_group: str | None = None
    require_ssl: str | None = None        # the parameter's value; None: not in the group (engine default false)

    @property
    def ssl_required(self) -> bool:
        return (self.require_ssl or "").strip().lower() in ON_VALUES


@register
class RedshiftCollector(Collector):
    name = "redshift_clusters"
    service = "redshift"
    scope = "regional"
    actions = frozenset({"redshift:DescribeClusters", "redshift:DescribeClusterParameters"})

    async def collect(self, ctx: CollectorContext) -> None:
        clusters = [RedshiftCluster(
            region=ctx.region, resource_id=raw["ClusterIdentifier"],
            arn=ctx.arn("redshift", f"cluster:{raw['ClusterIdentifier']}"),
            tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) if "Key" in t},
            encrypted=bool(raw.get("Encrypted")), kms_key_id=raw.get("KmsKeyId"),
            publicly_accessible=bool(raw.get("PubliclyAccessible")),
            automated_snapshot_retention=int(raw.get("AutomatedSnapshotRetentionPeriod") or 0),
            allow_version_upgrade=bool(raw.get("AllowVersionUpgrade")),
            enhanced_vpc_routing=bool(raw.get("EnhancedVpcRouting")), master_username=raw.get("MasterUsername"),
            parameter_group=next((g.get("ParameterGroupName") for g in raw.get("ClusterParameterGroups", [])), None))
            for raw in await ctx.collect_all("redshift", "DescribeClusters", "Clusters")]
        reads: dict[str, asyncio.Task[str | None]] = {}
        for cluster in clusters:
            if cluster.parameter_group and cluster.parameter_group not in reads:
                reads[cluster.parameter_group] = asyncio.create_task(self._require_ssl(ctx, cluster.parameter_group))
        for cluster in clusters:
            if cluster.parameter_group:
                try:
                    cluster.require_ssl = await reads[cluster.parameter_group]
                except AwsCallFailed as exc:
                    ctx.scan.inventory.record_error(exc.error.model_copy(update={"resource_id": cluster.resource_id}))
            ctx.add(cluster)

    async def _require_ssl(self, ctx: CollectorContext, group: str) -> str | None:
        value = None
        # resource_id names the group with a prefix identifiers cannot have, so it never matches a cluster.
        async for page in ctx.pages("redshift", "DescribeClusterParameters", ParameterGroupName=group,
                                    resource_id=f"parametergroup:{group}"):
            for parameter in page.get("Parameters", []):
                if parameter.get("ParameterName") == "require_ssl":
                    value = parameter.get("ParameterValue")
        return value
