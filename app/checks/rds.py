"""RDS checks: encryption at rest and in transit, public access, snapshots, backups, deletion protection,
IAM authentication, Multi-AZ and minor version upgrades.

Settings that belong to a DB cluster (backups, deletion protection, IAM authentication, Multi-AZ, TLS) are
judged on the cluster; its member instances are skipped by the instance checks for those settings.
"""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.rds import (
    IAM_AUTH_ENGINES,
    RdsDbCluster,
    RdsDbClusterSnapshot,
    RdsDbInstance,
    RdsDbSnapshot,
)

INSTANCES = frozenset({"rds:DescribeDBInstances"})
CLUSTERS = frozenset({"rds:DescribeDBClusters"})


@resource_check("rds_instance_storage_encrypted", RdsDbInstance, requires=INSTANCES)
def rds_instance_storage_encrypted(db: RdsDbInstance) -> Result:
    if db.storage_encrypted:
        return passed(db, f"DB instance {db.resource_id} is encrypted at rest.", kms_key_id=db.kms_key_id)
    return failed(db, f"DB instance {db.resource_id} is not encrypted at rest; encryption can only be added by "
                      "restoring an encrypted snapshot copy.")


@resource_check("rds_instance_auto_minor_version_upgrade", RdsDbInstance, requires=INSTANCES)
def rds_instance_auto_minor_version_upgrade(db: RdsDbInstance) -> Result:
    if db.auto_minor_version_upgrade:
        return passed(db, f"DB instance {db.resource_id} receives minor engine upgrades automatically.")
    engine = " ".join(filter(None, (db.engine, db.engine_version)))
    return failed(db, f"Automatic minor version upgrade is off for DB instance {db.resource_id} ({engine}): "
                      "security patches wait for a manual upgrade.")


@resource_check("rds_instance_not_publicly_accessible", RdsDbInstance, requires=INSTANCES)
def rds_instance_not_publicly_accessible(db: RdsDbInstance) -> Result:
    if db.publicly_accessible:
        return failed(db, f"DB instance {db.resource_id} is publicly accessible: its endpoint resolves to a public "
                          "IP address, reachable wherever its security groups allow.")
    return passed(db, f"DB instance {db.resource_id} is not publicly accessible.")


@resource_check("rds_instance_backup_enabled", RdsDbInstance, requires=INSTANCES)
def rds_instance_backup_enabled(db: RdsDbInstance) -> Result | None:
    if db.cluster_id or db.read_replica_of:
        return None  # backups belong to the cluster, or to the replica's source
    if db.backup_retention_period > 0:
        return passed(db, f"DB instance {db.resource_id} keeps automated backups for "
                          f"{db.backup_retention_period} day(s).", retention_days=db.backup_retention_period)
    return failed(db, f"Automated backups are off for DB instance {db.resource_id} (retention 0 days): no "
                      "point-in-time recovery.")


@resource_check("rds_instance_deletion_protection", RdsDbInstance, requires=INSTANCES)
def rds_instance_deletion_protection(db: RdsDbInstance) -> Result | None:
    if db.cluster_id:
        return None
    if db.deletion_protection:
        return passed(db, f"DB instance {db.resource_id} has deletion protection enabled.")
    return failed(db, f"DB instance {db.resource_id} can be deleted without first disabling deletion protection.")


@resource_check("rds_instance_iam_authentication", RdsDbInstance, requires=INSTANCES)
def rds_instance_iam_authentication(db: RdsDbInstance) -> Result | None:
    if db.cluster_id or db.engine not in IAM_AUTH_ENGINES:
        return None
    if db.iam_auth:
        return passed(db, f"IAM database authentication is enabled for DB instance {db.resource_id}.")
    return failed(db, f"IAM database authentication is off for DB instance {db.resource_id}: only database "
                      "passwords authenticate users.")


@resource_check("rds_instance_multi_az", RdsDbInstance, requires=INSTANCES)
def rds_instance_multi_az(db: RdsDbInstance) -> Result | None:
    if db.cluster_id or db.read_replica_of:
        return None
    if db.multi_az:
        return passed(db, f"DB instance {db.resource_id} is deployed in multiple Availability Zones.")
    return failed(db, f"DB instance {db.resource_id} runs in a single Availability Zone.")


@resource_check("rds_instance_force_ssl", RdsDbInstance, requires=INSTANCES | {"rds:DescribeDBParameters"})
def rds_instance_force_ssl(db: RdsDbInstance) -> Result | None:
    if not db.ssl_parameter:
        return None  # cluster members (the cluster decides) and engines without such a parameter
    shown = db.ssl_parameter_value if db.ssl_parameter_value is not None else "unset (engine default)"
    details = {"parameter_group": db.parameter_group, "parameter": db.ssl_parameter, "value": db.ssl_parameter_value}
    if db.ssl_enforced:
        return passed(db, f"DB instance {db.resource_id} refuses unencrypted connections ({db.ssl_parameter} = "
                          f"{shown} in {db.parameter_group}).", **details)
    return failed(db, f"DB instance {db.resource_id} accepts unencrypted connections ({db.ssl_parameter} = {shown} "
                      f"in parameter group {db.parameter_group}).", **details)


@resource_check("rds_instance_enhanced_monitoring", RdsDbInstance, requires=INSTANCES)
def rds_instance_enhanced_monitoring(db: RdsDbInstance) -> Result:
    if db.monitoring_interval > 0:
        return passed(db, f"Enhanced Monitoring samples DB instance {db.resource_id} every {db.monitoring_interval} s.",
                      monitoring_interval=db.monitoring_interval)
    return failed(db, f"Enhanced Monitoring is off for DB instance {db.resource_id}: no OS-level metrics to "
                      "investigate load or abuse.")


@resource_check("rds_cluster_auto_minor_version_upgrade", RdsDbCluster, requires=CLUSTERS)
def rds_cluster_auto_minor_version_upgrade(cluster: RdsDbCluster) -> Result | None:
    if cluster.auto_minor_version_upgrade is None:
        return None  # not reported at cluster level: the instance check judges each member
    if cluster.auto_minor_version_upgrade:
        return passed(cluster, f"DB cluster {cluster.resource_id} receives minor engine upgrades automatically.")
    return failed(cluster, f"Automatic minor version upgrade is off for DB cluster {cluster.resource_id}: security "
                           "patches wait for a manual upgrade.")


@resource_check("rds_cluster_storage_encrypted", RdsDbCluster, requires=CLUSTERS)
def rds_cluster_storage_encrypted(cluster: RdsDbCluster) -> Result:
    if cluster.storage_encrypted:
        return passed(cluster, f"DB cluster {cluster.resource_id} is encrypted at rest.", kms_key_id=cluster.kms_key_id)
    return failed(cluster, f"DB cluster {cluster.resource_id} is not encrypted at rest.")


@resource_check("rds_cluster_deletion_protection", RdsDbCluster, requires=CLUSTERS)
def rds_cluster_deletion_protection(cluster: RdsDbCluster) -> Result:
    if cluster.deletion_protection:
        return passed(cluster, f"DB cluster {cluster.resource_id} has deletion protection enabled.")
    return failed(cluster, f"DB cluster {cluster.resource_id} can be deleted without first disabling deletion "
                           "protection.")


@resource_check("rds_cluster_iam_authentication", RdsDbCluster, requires=CLUSTERS)
def rds_cluster_iam_authentication(cluster: RdsDbCluster) -> Result | None:
    if cluster.engine not in IAM_AUTH_ENGINES:
        return None
    if cluster.iam_auth:
        return passed(cluster, f"IAM database authentication is enabled for DB cluster {cluster.resource_id}.")
    return failed(cluster, f"IAM database authentication is off for DB cluster {cluster.resource_id}.")


@resource_check("rds_cluster_multi_az", RdsDbCluster, requires=CLUSTERS)
def rds_cluster_multi_az(cluster: RdsDbCluster) -> Result:
    if cluster.multi_az:
        return passed(cluster, f"DB cluster {cluster.resource_id} has instances in multiple Availability Zones.")
    return failed(cluster, f"DB cluster {cluster.resource_id} has no instance in a second Availability Zone: a zone "
                           "failure means downtime until a new instance is created.")


@resource_check("rds_cluster_force_ssl", RdsDbCluster, requires=CLUSTERS | {"rds:DescribeDBClusterParameters"})
def rds_cluster_force_ssl(cluster: RdsDbCluster) -> Result | None:
    if not cluster.ssl_parameter or not cluster.parameter_group:
        return None
    shown = cluster.ssl_parameter_value if cluster.ssl_parameter_value is not None else "unset (engine default)"
    details = {"parameter_group": cluster.parameter_group, "parameter": cluster.ssl_parameter,
               "value": cluster.ssl_parameter_value}
    if cluster.ssl_enforced:
        return passed(cluster, f"DB cluster {cluster.resource_id} refuses unencrypted connections "
                               f"({cluster.ssl_parameter} = {shown}).", **details)
    return failed(cluster, f"DB cluster {cluster.resource_id} accepts unencrypted connections ({cluster.ssl_parameter} "
                           f"= {shown} in cluster parameter group {cluster.parameter_group}).", **details)


def _snapshot_encrypted(snapshot: RdsDbSnapshot, kind: str) -> Result:
    if snapshot.encrypted:
        return passed(snapshot, f"{kind} {snapshot.resource_id} is encrypted.", kms_key_id=snapshot.kms_key_id)
    return failed(snapshot, f"{kind} {snapshot.resource_id} (of {snapshot.source_id}) is not encrypted.")


def _snapshot_not_public(snapshot: RdsDbSnapshot, kind: str) -> Result:
    if "all" in snapshot.restorable_by:
        return failed(snapshot, f"{kind} {snapshot.resource_id} is public: any AWS account can restore it and read "
                                "the database.", restorable_by=snapshot.restorable_by)
    shared = [a for a in snapshot.restorable_by if a != "all"]
    return passed(snapshot, f"{kind} {snapshot.resource_id} is not public"
                  + (f" (shared with {len(shared)} account(s))." if shared else "."), shared_with=shared)


@resource_check("rds_snapshot_encrypted", RdsDbSnapshot, requires={"rds:DescribeDBSnapshots"})
def rds_snapshot_encrypted(snapshot: RdsDbSnapshot) -> Result:
    return _snapshot_encrypted(snapshot, "DB snapshot")


@resource_check("rds_snapshot_not_public", RdsDbSnapshot,
                requires={"rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes"})
def rds_snapshot_not_public(snapshot: RdsDbSnapshot) -> Result:
    return _snapshot_not_public(snapshot, "DB snapshot")


@resource_check("rds_cluster_snapshot_encrypted", RdsDbClusterSnapshot, requires={"rds:DescribeDBClusterSnapshots"})
def rds_cluster_snapshot_encrypted(snapshot: RdsDbClusterSnapshot) -> Result:
    return _snapshot_encrypted(snapshot, "DB cluster snapshot")


@resource_check("rds_cluster_snapshot_not_public", RdsDbClusterSnapshot,
                requires={"rds:DescribeDBClusterSnapshots", "rds:DescribeDBClusterSnapshotAttributes"})
def rds_cluster_snapshot_not_public(snapshot: RdsDbClusterSnapshot) -> Result:
    return _snapshot_not_public(snapshot, "DB cluster snapshot")
