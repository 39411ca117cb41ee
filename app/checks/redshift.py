"""Redshift checks: encryption at rest, public accessibility, encryption in transit, automated snapshots."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.redshift import RedshiftCluster

DESCRIBED = frozenset({"redshift:DescribeClusters"})
RECOMMENDED_DAYS = 7
DEFAULT_ADMIN = "awsuser"


@resource_check("redshift_cluster_encrypted", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_encrypted(cluster: RedshiftCluster) -> Result:
    if cluster.encrypted:
        return passed(cluster, f"Redshift cluster {cluster.resource_id} is encrypted at rest.",
                      kms_key_id=cluster.kms_key_id)
    return failed(cluster, f"Redshift cluster {cluster.resource_id} is not encrypted at rest.")


@resource_check("redshift_cluster_not_public", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_not_public(cluster: RedshiftCluster) -> Result:
    if cluster.publicly_accessible:
        return failed(cluster, f"Redshift cluster {cluster.resource_id} is publicly accessible: its endpoint has a "
                               "public IP address.")
    return passed(cluster, f"Redshift cluster {cluster.resource_id} is not publicly accessible.")


@resource_check("redshift_cluster_require_ssl", RedshiftCluster,
                requires=DESCRIBED | {"redshift:DescribeClusterParameters"})
def redshift_cluster_require_ssl(cluster: RedshiftCluster) -> Result:
    shown = cluster.require_ssl if cluster.require_ssl is not None else "unset (default false)"
    details = {"parameter_group": cluster.parameter_group, "require_ssl": cluster.require_ssl}
    if cluster.ssl_required:
        return passed(cluster, f"Redshift cluster {cluster.resource_id} requires SSL (require_ssl = {shown} in "
                               f"{cluster.parameter_group}).", **details)
    return failed(cluster, f"Redshift cluster {cluster.resource_id} accepts unencrypted connections (require_ssl = "
                           f"{shown} in parameter group {cluster.parameter_group}).", **details)


@resource_check("redshift_cluster_automated_snapshots", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_automated_snapshots(cluster: RedshiftCluster) -> Result:
    days = cluster.automated_snapshot_retention
    if days > 0:
        note = "" if days >= RECOMMENDED_DAYS else f" (fewer than the {RECOMMENDED_DAYS} days AWS recommends)"
        return passed(cluster, f"Redshift cluster {cluster.resource_id} keeps automated snapshots for {days} "
                               f"day(s){note}.", retention_days=days)
    return failed(cluster, f"Automated snapshots are off for Redshift cluster {cluster.resource_id}.")


@resource_check("redshift_cluster_version_upgrade", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_version_upgrade(cluster: RedshiftCluster) -> Result:
    if cluster.allow_version_upgrade:
        return passed(cluster, f"Redshift cluster {cluster.resource_id} receives engine upgrades in its maintenance "
                               "window.")
    return failed(cluster, f"Automatic version upgrades are off for Redshift cluster {cluster.resource_id}: security "
                           "fixes wait for a manual upgrade.")


@resource_check("redshift_cluster_enhanced_vpc_routing", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_enhanced_vpc_routing(cluster: RedshiftCluster) -> Result:
    if cluster.enhanced_vpc_routing:
        return passed(cluster, f"Redshift cluster {cluster.resource_id} routes COPY and UNLOAD traffic through the "
                               "VPC.")
    return failed(cluster, f"Enhanced VPC routing is off for Redshift cluster {cluster.resource_id}: COPY and UNLOAD "
                           "traffic bypasses VPC endpoints, endpoint policies and flow logs.")


@resource_check("redshift_cluster_default_admin_username", RedshiftCluster, requires=DESCRIBED)
def redshift_cluster_default_admin_username(cluster: RedshiftCluster) -> Result:
    if (cluster.master_username or "").lower() == DEFAULT_ADMIN:
        return failed(cluster, f"Redshift cluster {cluster.resource_id} uses the default admin user name "
                               f"{DEFAULT_ADMIN!r}, the first one password-guessing tries.")
    return passed(cluster, f"Redshift cluster {cluster.resource_id} uses a custom admin user name.")
