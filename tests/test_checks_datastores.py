"""RDS, EFS, DynamoDB, SNS, SQS, KMS, Secrets Manager and Redshift collectors and checks: against the moto fake
where it can hold the state, against inventory fixtures where it cannot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.aws.session import CallerCredentials
from app.checks.base import Status
from app.checks.resource_policies import summarize
from app.scanners.base import CollectorContext, Inventory, ScanContext
from app.scanners.dynamodb import DynamoDbCollector, DynamoDbTable
from app.scanners.kms import KmsCollector, KmsKey
from app.scanners.rds import RdsDbCluster, RdsDbInstance, ssl_enforced
from app.scanners.redshift import RedshiftCluster
from app.scanners.resource_policy import load_policy
from app.scanners.s3 import S3Collector
from app.scanners.secretsmanager import SecretsManagerCollector, SecretsManagerSecret
from app.scanners.sns import SnsCollector
from app.scanners.sqs import SqsCollector, SqsQueue
from tests.aws_fixtures import CUSTOMER_ACCOUNT
from tests.datastore_helpers import (
    REGION,
    allow_everyone,
    denied,
    evaluate_on,
    findings,
    only,
    policy,
    scan,
    status,
    statuses,
)

PASSWORD = "not-a-real-password-1"


# --- RDS --------------------------------------------------------------------------------------------------

RDS_INSTANCE_CHECKS = {
    "rds_instance_storage_encrypted", "rds_instance_auto_minor_version_upgrade",
    "rds_instance_not_publicly_accessible", "rds_instance_backup_enabled", "rds_instance_deletion_protection",
    "rds_instance_iam_authentication", "rds_instance_multi_az", "rds_instance_force_ssl",
    "rds_instance_enhanced_monitoring",
}
RDS_CLUSTER_CHECKS = {
    "rds_cluster_storage_encrypted", "rds_cluster_deletion_protection", "rds_cluster_iam_authentication",
    "rds_cluster_multi_az", "rds_cluster_force_ssl", "rds_cluster_auto_minor_version_upgrade",
}
RDS_SNAPSHOT_CHECKS = {"rds_snapshot_encrypted", "rds_snapshot_not_public", "rds_cluster_snapshot_encrypted",
                       "rds_cluster_snapshot_not_public"}


def parameter_group(rds, name: str, family: str, parameter: str | None = None, value: str = "1") -> None:
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=family, Description=name)
    if parameter:
        rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=[
            {"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "immediate"}])


def instance(rds, name: str, engine: str, group: str, **settings) -> None:
    rds.create_db_instance(DBInstanceIdentifier=name, Engine=engine, DBInstanceClass="db.t3.micro",
                           MasterUsername="admin_user", MasterUserPassword=PASSWORD, AllocatedStorage=20,
                           DBParameterGroupName=group, **settings)


async def test_rds_hardened_instance_passes_and_legacy_instance_fails(aws_fake):
    rds = aws_fake.client("rds")
    parameter_group(rds, "cw-mysql-tls", "mysql8.0", "require_secure_transport", "1")
    parameter_group(rds, "cw-mysql-plain", "mysql8.0")
    instance(rds, "cw-hardened", "mysql", "cw-mysql-tls", StorageEncrypted=True, PubliclyAccessible=False,
             AutoMinorVersionUpgrade=True, BackupRetentionPeriod=7, DeletionProtection=True,
             EnableIAMDatabaseAuthentication=True, MultiAZ=True, MonitoringInterval=60,
             MonitoringRoleArn=f"arn:aws:iam::{CUSTOMER_ACCOUNT}:role/rds-monitoring")
    instance(rds, "cw-legacy", "mysql", "cw-mysql-plain", StorageEncrypted=False, PubliclyAccessible=True,
             AutoMinorVersionUpgrade=False, BackupRetentionPeriod=0, DeletionProtection=False,
             EnableIAMDatabaseAuthentication=False, MultiAZ=False, EngineVersion="8.0.35")

    out = await scan(RDS_INSTANCE_CHECKS)

    assert out.errors == []
    for check in RDS_INSTANCE_CHECKS:
        assert status(out, check, "cw-hardened") == "PASS", check
        assert status(out, check, "cw-legacy") == "FAIL", check
    legacy = findings(out, "rds_instance_force_ssl", "cw-legacy")[0]
    assert legacy.details == {"parameter_group": "cw-mysql-plain", "parameter": "require_secure_transport",
                              "value": None}
    assert legacy.resource_arn == f"arn:aws:rds:{REGION}:{CUSTOMER_ACCOUNT}:db:cw-legacy"
    assert legacy.resource_type == "AwsRdsDbInstance"


async def test_rds_postgres_force_ssl_and_shared_parameter_group_read_once(aws_fake):
    rds = aws_fake.client("rds")
    parameter_group(rds, "cw-pg-tls", "postgres14", "rds.force_ssl", "1")
    parameter_group(rds, "cw-pg-off", "postgres14", "rds.force_ssl", "0")
    for name in ("cw-pg-a", "cw-pg-b", "cw-pg-c"):
        instance(rds, name, "postgres", "cw-pg-tls")
    instance(rds, "cw-pg-off", "postgres", "cw-pg-off")

    out = await scan({"rds_instance_force_ssl"})

    assert statuses(out, "rds_instance_force_ssl") == {"cw-pg-a": "PASS", "cw-pg-b": "PASS", "cw-pg-c": "PASS",
                                                       "cw-pg-off": "FAIL"}
    assert aws_fake.calls("rds:DescribeDBParameters") == 2


async def test_rds_clusters_and_their_members(aws_fake):
    rds = aws_fake.client("rds")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="cw-apg-tls",
                                          DBParameterGroupFamily="aurora-postgresql14", Description="tls")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName="cw-apg-tls", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="cw-amy-plain",
                                          DBParameterGroupFamily="aurora-mysql8.0", Description="plain")
    rds.create_db_cluster(DBClusterIdentifier="cw-aurora-good", Engine="aurora-postgresql",
                          MasterUsername="admin_user", MasterUserPassword=PASSWORD, StorageEncrypted=True,
                          DeletionProtection=True, EnableIAMDatabaseAuthentication=True,
                          DBClusterParameterGroupName="cw-apg-tls")
    rds.create_db_cluster(DBClusterIdentifier="cw-aurora-bad", Engine="aurora-mysql", MasterUsername="admin_user",
                          MasterUserPassword=PASSWORD, StorageEncrypted=False, DeletionProtection=False,
                          DBClusterParameterGroupName="cw-amy-plain")
    rds.create_db_instance(DBInstanceIdentifier="cw-aurora-bad-1", Engine="aurora-mysql",
                           DBInstanceClass="db.r5.large", DBClusterIdentifier="cw-aurora-bad")

    out = await scan(RDS_CLUSTER_CHECKS | {"rds_instance_deletion_protection", "rds_instance_backup_enabled",
                                           "rds_instance_storage_encrypted"})

    expected = {"rds_cluster_storage_encrypted": ("PASS", "FAIL"), "rds_cluster_deletion_protection": ("PASS", "FAIL"),
                "rds_cluster_iam_authentication": ("PASS", "FAIL"), "rds_cluster_force_ssl": ("PASS", "FAIL")}
    for check, (good, bad) in expected.items():
        assert statuses(out, check) == {"cw-aurora-good": good, "cw-aurora-bad": bad}, check
    assert statuses(out, "rds_cluster_multi_az") == {"cw-aurora-good": "FAIL", "cw-aurora-bad": "FAIL"}
    # moto reports the cluster-level minor-upgrade setting as on (the API default).
    assert statuses(out, "rds_cluster_auto_minor_version_upgrade") == {"cw-aurora-good": "PASS",
                                                                       "cw-aurora-bad": "PASS"}
    # The member's deletion protection and backups are the cluster's: the instance checks skip it.
    assert findings(out, "rds_instance_deletion_protection") == []
    assert findings(out, "rds_instance_backup_enabled") == []
    assert status(out, "rds_instance_storage_encrypted", "cw-aurora-bad-1") == "FAIL"


async def test_rds_snapshots_encryption_and_public_restore(aws_fake):
    rds = aws_fake.client("rds")
    parameter_group(rds, "cw-snap-group", "mysql8.0")
    instance(rds, "cw-enc", "mysql", "cw-snap-group", StorageEncrypted=True)
    instance(rds, "cw-plain", "mysql", "cw-snap-group", StorageEncrypted=False)
    rds.create_db_snapshot(DBInstanceIdentifier="cw-enc", DBSnapshotIdentifier="cw-enc-snap")
    rds.create_db_snapshot(DBInstanceIdentifier="cw-plain", DBSnapshotIdentifier="cw-plain-snap")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="cw-plain-snap", AttributeName="restore",
                                     ValuesToAdd=["all"])
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="cw-enc-snap", AttributeName="restore",
                                     ValuesToAdd=["444455556666"])
    rds.create_db_cluster(DBClusterIdentifier="cw-cl-enc", Engine="aurora-postgresql", MasterUsername="admin_user",
                          MasterUserPassword=PASSWORD, StorageEncrypted=True)
    rds.create_db_cluster(DBClusterIdentifier="cw-cl-plain", Engine="aurora-postgresql",
                          MasterUsername="admin_user", MasterUserPassword=PASSWORD, StorageEncrypted=False)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="cw-cl-enc", DBClusterSnapshotIdentifier="cw-cl-enc-snap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier="cw-cl-plain", DBClusterSnapshotIdentifier="cw-cl-plain-snap")
    rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier="cw-cl-plain-snap", AttributeName="restore",
                                             ValuesToAdd=["all"])

    out = await scan(RDS_SNAPSHOT_CHECKS)

    assert statuses(out, "rds_snapshot_encrypted") == {"cw-enc-snap": "PASS", "cw-plain-snap": "FAIL"}
    assert statuses(out, "rds_snapshot_not_public") == {"cw-enc-snap": "PASS", "cw-plain-snap": "FAIL"}
    assert findings(out, "rds_snapshot_not_public", "cw-enc-snap")[0].details["shared_with"] == ["444455556666"]
    assert statuses(out, "rds_cluster_snapshot_encrypted") == {"cw-cl-enc-snap": "PASS", "cw-cl-plain-snap": "FAIL"}
    assert statuses(out, "rds_cluster_snapshot_not_public") == {"cw-cl-enc-snap": "PASS", "cw-cl-plain-snap": "FAIL"}


async def test_rds_denied_listing_errors_the_region_and_spares_other_collectors(aws_fake):
    rds = aws_fake.client("rds")
    parameter_group(rds, "cw-g", "mysql8.0")
    instance(rds, "cw-db", "mysql", "cw-g", StorageEncrypted=True)
    rds.create_db_cluster(DBClusterIdentifier="cw-cl", Engine="aurora-postgresql", MasterUsername="admin_user",
                          MasterUserPassword=PASSWORD, StorageEncrypted=True)
    aws_fake.configure(deny=[denied("rds", "DescribeDBInstances")])

    out = await scan({"rds_instance_storage_encrypted", "rds_cluster_storage_encrypted"})

    error = only(findings(out, "rds_instance_storage_encrypted"))
    assert (error.status, error.region) == ("ERROR", REGION)
    assert "rds:DescribeDBInstances" in error.message
    assert statuses(out, "rds_cluster_storage_encrypted") == {"cw-cl": "PASS"}


async def test_rds_denied_detail_calls_error_only_their_resources_checks(aws_fake):
    rds = aws_fake.client("rds")
    parameter_group(rds, "cw-g", "postgres14", "rds.force_ssl", "1")
    instance(rds, "cw-db", "postgres", "cw-g", StorageEncrypted=True)
    rds.create_db_snapshot(DBInstanceIdentifier="cw-db", DBSnapshotIdentifier="cw-db-snap")
    aws_fake.configure(deny=[denied("rds", "DescribeDBParameters"), denied("rds", "DescribeDBSnapshotAttributes")])

    out = await scan({"rds_instance_force_ssl", "rds_instance_storage_encrypted", "rds_snapshot_not_public",
                      "rds_snapshot_encrypted"})

    assert status(out, "rds_instance_force_ssl", "cw-db") == "ERROR"
    assert status(out, "rds_instance_storage_encrypted", "cw-db") == "PASS"
    assert status(out, "rds_snapshot_not_public", "cw-db-snap") == "ERROR"
    assert status(out, "rds_snapshot_encrypted", "cw-db-snap") == "PASS"
    # The parameter group's failure is an error of the instance, not a region-wide one.
    assert len(findings(out, "rds_instance_force_ssl")) == 1


@pytest.mark.parametrize(("engine", "version", "value", "enforced"), [
    ("postgres", "14.10", None, False),
    ("postgres", "15.4", None, True),       # rds.force_ssl defaults to 1 from PostgreSQL 15
    ("postgres", "16.1", "0", False),
    ("mysql", "8.0.35", None, False),
    ("mysql", "8.0.35", "1", True),
    ("mysql", "8.0.35", "ON", True),
    ("mariadb", "10.11.6", None, False),
    ("sqlserver-se", "16.00", "true", True),
    ("aurora-mysql", "8.0.mysql_aurora.3.05.2", "OFF", False),
])
def test_rds_tls_parameter_values_and_engine_defaults(engine, version, value, enforced):
    assert ssl_enforced(engine, version, value) is enforced


def test_rds_fixture_cases_moto_cannot_hold():
    replica = RdsDbInstance(region=REGION, resource_id="cw-replica", engine="postgres", read_replica_of="cw-src")
    assert evaluate_on("rds_instance_backup_enabled", replica) == []
    oracle = RdsDbInstance(region=REGION, resource_id="cw-ora", engine="oracle-ee", parameter_group="default.oracle")
    assert evaluate_on("rds_instance_iam_authentication", oracle) == []
    assert evaluate_on("rds_instance_force_ssl", oracle) == []
    multi_az_cluster = RdsDbCluster(region=REGION, resource_id="cw-maz", engine="postgres", multi_az=True)
    assert only(evaluate_on("rds_cluster_multi_az", multi_az_cluster)).status == Status.PASS
    assert evaluate_on("rds_cluster_auto_minor_version_upgrade", multi_az_cluster) == []
    for setting, expected in ((True, Status.PASS), (False, Status.FAIL)):
        cluster = multi_az_cluster.model_copy(update={"auto_minor_version_upgrade": setting})
        assert only(evaluate_on("rds_cluster_auto_minor_version_upgrade", cluster)).status == expected


# --- EFS --------------------------------------------------------------------------------------------------

async def test_efs_encryption_and_public_policy(aws_fake):
    efs = aws_fake.client("efs")
    good = efs.create_file_system(CreationToken="cw-good", Encrypted=True)["FileSystemId"]
    bad = efs.create_file_system(CreationToken="cw-bad", Encrypted=False)["FileSystemId"]
    vpc_only = efs.create_file_system(CreationToken="cw-vpc", Encrypted=True)["FileSystemId"]
    efs.put_file_system_policy(FileSystemId=bad, Policy=policy(allow_everyone(
        ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"], principal={"AWS": "*"})))
    efs.put_file_system_policy(FileSystemId=vpc_only, Policy=policy(allow_everyone(
        "elasticfilesystem:ClientMount", principal={"AWS": "*"},
        condition={"StringEquals": {"aws:SourceVpc": "vpc-0123456789abcdef0"}})))

    out = await scan({"efs_file_system_encrypted", "efs_file_system_policy_not_public"})

    assert statuses(out, "efs_file_system_encrypted") == {good: "PASS", bad: "FAIL", vpc_only: "PASS"}
    assert statuses(out, "efs_file_system_policy_not_public") == {good: "PASS", bad: "FAIL", vpc_only: "PASS"}


async def test_efs_denied_policy_read_errors_only_the_policy_check(aws_fake):
    fs = aws_fake.client("efs").create_file_system(CreationToken="cw-fs", Encrypted=True)["FileSystemId"]
    aws_fake.configure(deny=[denied("efs", "DescribeFileSystemPolicy")])

    out = await scan({"efs_file_system_encrypted", "efs_file_system_policy_not_public"})

    assert status(out, "efs_file_system_policy_not_public", fs) == "ERROR"
    assert status(out, "efs_file_system_encrypted", fs) == "PASS"


async def test_efs_denied_listing_errors_both_checks(aws_fake):
    aws_fake.client("efs").create_file_system(CreationToken="cw-fs", Encrypted=True)
    aws_fake.configure(deny=[denied("efs", "DescribeFileSystems")])

    out = await scan({"efs_file_system_encrypted", "efs_file_system_policy_not_public"})

    assert [f.status for f in out.findings] == ["ERROR", "ERROR"]


# --- DynamoDB ---------------------------------------------------------------------------------------------

def table(ddb, name: str, **settings) -> None:
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST", **settings)


async def test_dynamodb_kms_pitr_and_deletion_protection(aws_fake):
    ddb = aws_fake.client("dynamodb")
    table(ddb, "cw-good", SSESpecification={"Enabled": True, "SSEType": "KMS"}, DeletionProtectionEnabled=True)
    ddb.update_continuous_backups(TableName="cw-good",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    table(ddb, "cw-default")

    out = await scan({"dynamodb_table_kms_encryption", "dynamodb_table_pitr_enabled",
                      "dynamodb_table_deletion_protection"})

    for check in ("dynamodb_table_kms_encryption", "dynamodb_table_pitr_enabled", "dynamodb_table_deletion_protection"):
        assert statuses(out, check) == {"cw-good": "PASS", "cw-default": "FAIL"}, check
    good = findings(out, "dynamodb_table_kms_encryption", "cw-good")[0]
    assert good.details["kms_key_arn"].startswith(f"arn:aws:kms:{REGION}:{CUSTOMER_ACCOUNT}:key/")
    assert good.resource_arn == f"arn:aws:dynamodb:{REGION}:{CUSTOMER_ACCOUNT}:table/cw-good"


async def test_dynamodb_denied_backup_read_errors_only_pitr(aws_fake):
    table(aws_fake.client("dynamodb"), "cw-t")
    aws_fake.configure(deny=[denied("dynamodb", "DescribeContinuousBackups")])

    out = await scan({"dynamodb_table_pitr_enabled", "dynamodb_table_deletion_protection"})

    assert status(out, "dynamodb_table_pitr_enabled", "cw-t") == "ERROR"
    assert status(out, "dynamodb_table_deletion_protection", "cw-t") == "FAIL"


async def test_dynamodb_denied_listing_errors_the_region(aws_fake):
    table(aws_fake.client("dynamodb"), "cw-t")
    aws_fake.configure(deny=[denied("dynamodb", "ListTables")])

    out = await scan({"dynamodb_table_pitr_enabled"})

    assert [(f.status, f.region) for f in out.findings] == [("ERROR", REGION)]


def test_dynamodb_aws_managed_key_counts_as_kms():
    managed = DynamoDbTable(region=REGION, resource_id="cw-t", sse_type="KMS",
                            kms_key_arn=f"arn:aws:kms:{REGION}:{CUSTOMER_ACCOUNT}:key/aws-dynamodb")
    assert only(evaluate_on("dynamodb_table_kms_encryption", managed)).status == Status.PASS


# --- SNS and SQS ------------------------------------------------------------------------------------------

async def test_sns_encryption_and_public_topics(aws_fake):
    sns = aws_fake.client("sns")
    good = sns.create_topic(Name="cw-good", Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    bad = sns.create_topic(Name="cw-open")["TopicArn"]
    sns.set_topic_attributes(TopicArn=bad, AttributeName="Policy", AttributeValue=policy(
        allow_everyone(["SNS:Publish", "SNS:Subscribe"], bad, principal={"AWS": "*"})))

    out = await scan({"sns_topic_encrypted", "sns_topic_not_public"})

    assert statuses(out, "sns_topic_encrypted") == {"cw-good": "PASS", "cw-open": "FAIL"}
    # moto's default topic policy, like AWS's, is limited by aws:SourceOwner to the account.
    assert statuses(out, "sns_topic_not_public") == {"cw-good": "PASS", "cw-open": "FAIL"}
    assert findings(out, "sns_topic_not_public", "cw-good")[0].resource_arn == good


async def test_sns_denied_attributes_errors_the_topic(aws_fake):
    aws_fake.client("sns").create_topic(Name="cw-t")
    aws_fake.configure(deny=[denied("sns", "GetTopicAttributes")])

    out = await scan({"sns_topic_encrypted"})

    assert status(out, "sns_topic_encrypted", "cw-t") == "ERROR"


async def test_sqs_encryption_and_public_queues(aws_fake):
    sqs = aws_fake.client("sqs")
    sqs.create_queue(QueueName="cw-sse-sqs")   # SSE-SQS: the default for new queues
    sqs.create_queue(QueueName="cw-kms", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    plain = sqs.create_queue(QueueName="cw-plain", Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{CUSTOMER_ACCOUNT}:cw-plain"
    sqs.set_queue_attributes(QueueUrl=plain, Attributes={"Policy": policy(allow_everyone("sqs:SendMessage", arn))})
    sqs.create_queue(QueueName="cw-from-topic", Attributes={"Policy": policy(allow_everyone(
        "sqs:SendMessage", condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{REGION}:{CUSTOMER_ACCOUNT}:t"}}))})

    out = await scan({"sqs_queue_encrypted", "sqs_queue_not_public"})

    assert statuses(out, "sqs_queue_encrypted") == {"cw-sse-sqs": "PASS", "cw-kms": "PASS", "cw-plain": "FAIL",
                                                    "cw-from-topic": "PASS"}
    assert statuses(out, "sqs_queue_not_public") == {"cw-sse-sqs": "PASS", "cw-kms": "PASS", "cw-plain": "FAIL",
                                                     "cw-from-topic": "PASS"}
    assert findings(out, "sqs_queue_not_public", "cw-plain")[0].resource_arn == arn


async def test_sqs_denied_listing_errors_the_region(aws_fake):
    aws_fake.client("sqs").create_queue(QueueName="cw-q")
    aws_fake.configure(deny=[denied("sqs", "ListQueues")])

    out = await scan({"sqs_queue_encrypted", "sqs_queue_not_public"})

    assert {(f.check_id, f.status) for f in out.findings} == {("sqs_queue_encrypted", "ERROR"),
                                                              ("sqs_queue_not_public", "ERROR")}


# --- KMS --------------------------------------------------------------------------------------------------

async def test_kms_rotation_public_policy_and_pending_deletion(aws_fake):
    kms = aws_fake.client("kms")
    rotated = kms.create_key(Description="rotated")["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=rotated)
    kms.create_alias(AliasName="alias/cw-rotated", TargetKeyId=rotated)
    stale = kms.create_key(Description="not rotated")["KeyMetadata"]["KeyId"]
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    public = kms.create_key(Policy=policy(
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER_ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        allow_everyone(["kms:Decrypt", "kms:DescribeKey"])))["KeyMetadata"]["KeyId"]
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)

    out = await scan({"kms_key_rotation_enabled", "kms_key_policy_not_public", "kms_key_pending_deletion"})

    assert out.errors == []
    # Asymmetric keys cannot rotate automatically; keys pending deletion are no longer in use.
    assert statuses(out, "kms_key_rotation_enabled") == {rotated: "PASS", stale: "FAIL", public: "FAIL"}
    assert statuses(out, "kms_key_policy_not_public") == {rotated: "PASS", stale: "PASS", signing: "PASS",
                                                          public: "FAIL", doomed: "PASS"}
    assert statuses(out, "kms_key_pending_deletion") == {rotated: "PASS", stale: "PASS", signing: "PASS",
                                                         public: "PASS", doomed: "FAIL"}
    assert "alias/cw-rotated" in findings(out, "kms_key_rotation_enabled", rotated)[0].message


async def test_kms_denied_rotation_status_errors_only_rotation(aws_fake):
    kms = aws_fake.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    aws_fake.configure(deny=[denied("kms", "GetKeyRotationStatus"), denied("kms", "ListAliases")])

    out = await scan({"kms_key_rotation_enabled", "kms_key_policy_not_public"})

    assert status(out, "kms_key_rotation_enabled", key) == "ERROR"
    # Without the alias list every key is described instead: the other checks still have their data.
    assert status(out, "kms_key_policy_not_public", key) == "PASS"


async def test_kms_denied_listing_errors_the_region(aws_fake):
    aws_fake.client("kms").create_key()
    aws_fake.configure(deny=[denied("kms", "ListKeys")])

    out = await scan({"kms_key_rotation_enabled"})

    assert [(f.status, f.region) for f in out.findings] == [("ERROR", REGION)]


def test_kms_rotation_applies_only_to_enabled_symmetric_kms_generated_keys():
    def key(**fields):
        base = {"key_manager": "CUSTOMER", "key_state": "Enabled", "key_spec": "SYMMETRIC_DEFAULT",
                "origin": "AWS_KMS"}
        return KmsKey(region=REGION, resource_id="k-1", **(base | fields))

    assert only(evaluate_on("kms_key_rotation_enabled", key(rotation_enabled=True))).status == Status.PASS
    assert only(evaluate_on("kms_key_rotation_enabled", key(rotation_enabled=False))).status == Status.FAIL
    for skipped in (key(origin="EXTERNAL"), key(origin="AWS_CLOUDHSM"), key(key_spec="HMAC_256"),
                    key(key_state="Disabled")):
        assert evaluate_on("kms_key_rotation_enabled", skipped) == []


# --- Secrets Manager --------------------------------------------------------------------------------------

async def test_secrets_manager_public_policy_and_rotation_off(aws_fake):
    sm = aws_fake.client("secretsmanager")
    sm.create_secret(Name="cw-open", SecretString="placeholder")
    sm.put_resource_policy(SecretId="cw-open", ResourcePolicy=policy(allow_everyone("secretsmanager:GetSecretValue")))
    sm.create_secret(Name="cw-private", SecretString="placeholder")

    out = await scan({"secretsmanager_secret_not_public", "secretsmanager_secret_rotation_enabled",
                      "secretsmanager_secret_unused"})

    assert statuses(out, "secretsmanager_secret_not_public") == {"cw-open": "FAIL", "cw-private": "PASS"}
    assert statuses(out, "secretsmanager_secret_rotation_enabled") == {"cw-open": "FAIL", "cw-private": "FAIL"}
    assert statuses(out, "secretsmanager_secret_unused") == {"cw-open": "PASS", "cw-private": "PASS"}
    assert aws_fake.calls("secretsmanager:GetSecretValue") == 0


async def test_secrets_manager_denied_policy_read_errors_only_that_check(aws_fake):
    aws_fake.client("secretsmanager").create_secret(Name="cw-s", SecretString="placeholder")
    aws_fake.configure(deny=[denied("secretsmanager", "GetResourcePolicy")])

    out = await scan({"secretsmanager_secret_not_public", "secretsmanager_secret_rotation_enabled"})

    assert status(out, "secretsmanager_secret_not_public", "cw-s") == "ERROR"
    assert status(out, "secretsmanager_secret_rotation_enabled", "cw-s") == "FAIL"


def test_secrets_manager_rotation_and_last_access_fixtures():
    now = datetime.now(UTC)

    def secret(**fields):
        return SecretsManagerSecret(region=REGION, resource_id="cw-s", name="cw-s", **fields)

    assert only(evaluate_on("secretsmanager_secret_rotation_enabled",
                            secret(rotation_enabled=True, rotation_days=30))).status == Status.PASS
    assert only(evaluate_on("secretsmanager_secret_unused",
                            secret(last_accessed=now - timedelta(days=91)))).status == Status.FAIL
    assert only(evaluate_on("secretsmanager_secret_unused",
                            secret(last_accessed=now - timedelta(days=3)))).status == Status.PASS
    assert only(evaluate_on("secretsmanager_secret_unused",
                            secret(created=now - timedelta(days=200)))).status == Status.FAIL
    naive_recent = (now - timedelta(days=10)).replace(tzinfo=None)
    assert only(evaluate_on("secretsmanager_secret_unused", secret(created=naive_recent))).status == Status.PASS
    rotated = "secretsmanager_secret_rotated_90_days"
    assert only(evaluate_on(rotated, secret(last_rotated=now - timedelta(days=30)))).status == Status.PASS
    assert only(evaluate_on(rotated, secret(last_rotated=now - timedelta(days=120)))).status == Status.FAIL
    assert only(evaluate_on(rotated, secret(created=now - timedelta(days=365)))).status == Status.FAIL
    assert only(evaluate_on(rotated, secret(created=now - timedelta(days=5)))).status == Status.PASS


# --- Redshift ---------------------------------------------------------------------------------------------

async def test_redshift_cluster_settings(aws_fake):
    rs = aws_fake.client("redshift")
    rs.create_cluster(ClusterIdentifier="cw-good", NodeType="dc2.large", MasterUsername="admin_user",
                      MasterUserPassword="NotReal-Passw0rd", ClusterType="single-node", Encrypted=True,
                      PubliclyAccessible=False, AllowVersionUpgrade=True, EnhancedVpcRouting=True)
    rs.create_cluster(ClusterIdentifier="cw-open", NodeType="dc2.large", MasterUsername="awsuser",
                      MasterUserPassword="NotReal-Passw0rd", ClusterType="single-node", Encrypted=False,
                      PubliclyAccessible=True, AllowVersionUpgrade=False, EnhancedVpcRouting=False)

    out = await scan({"redshift_cluster_encrypted", "redshift_cluster_not_public", "redshift_cluster_require_ssl",
                      "redshift_cluster_automated_snapshots", "redshift_cluster_version_upgrade",
                      "redshift_cluster_enhanced_vpc_routing", "redshift_cluster_default_admin_username"})

    assert statuses(out, "redshift_cluster_encrypted") == {"cw-good": "PASS", "cw-open": "FAIL"}
    assert statuses(out, "redshift_cluster_not_public") == {"cw-good": "PASS", "cw-open": "FAIL"}
    # The default parameter group has require_ssl false.
    assert statuses(out, "redshift_cluster_require_ssl") == {"cw-good": "FAIL", "cw-open": "FAIL"}
    assert statuses(out, "redshift_cluster_automated_snapshots") == {"cw-good": "PASS", "cw-open": "PASS"}
    for check in ("redshift_cluster_version_upgrade", "redshift_cluster_enhanced_vpc_routing",
                  "redshift_cluster_default_admin_username"):
        assert statuses(out, check) == {"cw-good": "PASS", "cw-open": "FAIL"}, check
    assert aws_fake.calls("redshift:DescribeClusterParameters") == 1
    assert findings(out, "redshift_cluster_encrypted", "cw-good")[0].resource_arn == \
        f"arn:aws:redshift:{REGION}:{CUSTOMER_ACCOUNT}:cluster:cw-good"


async def test_redshift_denied_parameters_error_the_ssl_check_of_each_cluster(aws_fake):
    rs = aws_fake.client("redshift")
    for name in ("cw-a", "cw-b"):
        rs.create_cluster(ClusterIdentifier=name, NodeType="dc2.large", MasterUsername="admin_user",
                          MasterUserPassword="NotReal-Passw0rd", ClusterType="single-node", Encrypted=True)
    aws_fake.configure(deny=[denied("redshift", "DescribeClusterParameters")])

    out = await scan({"redshift_cluster_require_ssl", "redshift_cluster_encrypted"})

    assert statuses(out, "redshift_cluster_require_ssl") == {"cw-a": "ERROR", "cw-b": "ERROR"}
    assert statuses(out, "redshift_cluster_encrypted") == {"cw-a": "PASS", "cw-b": "PASS"}


def test_redshift_fixture_cases_moto_cannot_hold():
    def cluster(**fields):
        return RedshiftCluster(region=REGION, resource_id="cw-c", parameter_group="cw-tls", **fields)

    assert only(evaluate_on("redshift_cluster_require_ssl", cluster(require_ssl="true"))).status == Status.PASS
    assert only(evaluate_on("redshift_cluster_automated_snapshots",
                            cluster(automated_snapshot_retention=0))).status == Status.FAIL


# --- shared behaviour -------------------------------------------------------------------------------------

async def test_unreadable_policy_is_an_error_of_that_resource_not_a_pass():
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=[REGION])
    async with ScanContext(CallerCredentials(), inventory) as scan_ctx:
        ctx = CollectorContext(scan_ctx, SqsCollector(), REGION)
        assert load_policy(ctx, "{not json", action="sqs:GetQueueAttributes", resource_id="cw-q") is None
        assert load_policy(ctx, '["a list"]', action="sqs:GetQueueAttributes", resource_id="cw-q") is None
        assert load_policy(ctx, "", action="sqs:GetQueueAttributes", resource_id="cw-q") is None
    assert [(e.code, e.resource_id) for e in inventory.errors] == [("UnreadablePolicy", "cw-q")] * 2
    queue = SqsQueue(region=REGION, resource_id="cw-q", url="https://sqs.us-east-1.amazonaws.com/1/cw-q")
    other = SqsQueue(region=REGION, resource_id="cw-other", url="https://sqs.us-east-1.amazonaws.com/1/cw-other")
    results = evaluate_on("sqs_queue_not_public", queue, other, errors=inventory.errors)
    assert {r.resource_id: r.status for r in results} == {"cw-q": Status.ERROR, "cw-other": Status.PASS}
    # An error of one service's action never leaks into another service's checks.
    table_result = only(evaluate_on("dynamodb_table_deletion_protection",
                                    DynamoDbTable(region=REGION, resource_id="cw-q"), errors=inventory.errors))
    assert table_result.status == Status.FAIL


async def test_resources_deleted_between_listing_and_detail_are_dropped_without_error(aws_fake):
    """Each collector's detail step, given a name that no longer exists, drops it: gone is not an error."""
    inventory = Inventory(account_id=CUSTOMER_ACCOUNT, regions=[REGION])
    async with ScanContext(CallerCredentials(), inventory) as scan_ctx:
        def ctx(collector):
            return CollectorContext(scan_ctx, collector, REGION)

        s3 = S3Collector()
        await s3._bucket(ctx(s3), {"Name": "cw-ghost-located"}, None)
        await s3._bucket(ctx(s3), {"Name": "cw-ghost-listed", "BucketRegion": REGION}, None)
        ddb = DynamoDbCollector()
        assert await ddb._table(ctx(ddb), "cw-ghost") is None
        sns = SnsCollector()
        assert await sns._topic(ctx(sns), f"arn:aws:sns:{REGION}:{CUSTOMER_ACCOUNT}:cw-ghost") is None
        sqs = SqsCollector()
        assert await sqs._queue(ctx(sqs), f"{aws_fake.endpoint_url}/{CUSTOMER_ACCOUNT}/cw-ghost") is None
        kms = KmsCollector()
        assert await kms._key(ctx(kms), {"KeyId": "0f1e2d3c-0000-0000-0000-000000000000"}, []) is None
        sm = SecretsManagerCollector()
        secret = SecretsManagerSecret(region=REGION, resource_id="cw-ghost", name="cw-ghost")
        assert await sm._policy(ctx(sm), secret) is False
    assert inventory.errors == []
    assert not inventory.resources.get("S3Bucket")


def test_policy_helper_summarizes_without_condition_values():
    statement = allow_everyone("s3:GetObject", condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})
    assert summarize(json.loads(json.dumps(statement))) == {
        "sid": None, "principal": "*", "actions": "s3:GetObject", "condition_keys": ["aws:SourceIp"]}
