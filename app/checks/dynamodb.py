"""DynamoDB checks: KMS encryption, point-in-time recovery and deletion protection."""

from __future__ import annotations

from app.checks.base import Result, failed, passed, resource_check
from app.scanners.dynamodb import DynamoDbTable

DESCRIBED = frozenset({"dynamodb:ListTables", "dynamodb:DescribeTable"})


@resource_check("dynamodb_table_kms_encryption", DynamoDbTable, requires=DESCRIBED)
def dynamodb_table_kms_encryption(table: DynamoDbTable) -> Result:
    if table.sse_type == "KMS":
        return passed(table, f"DynamoDB table {table.resource_id} is encrypted with an AWS KMS key (AWS managed or "
                             "customer managed).", kms_key_arn=table.kms_key_arn)
    return failed(table, f"DynamoDB table {table.resource_id} is encrypted with an AWS owned key (the default): key "
                         "use is neither visible in CloudTrail nor controllable by a key policy.")


@resource_check("dynamodb_table_pitr_enabled", DynamoDbTable,
                requires={"dynamodb:ListTables", "dynamodb:DescribeContinuousBackups"})
def dynamodb_table_pitr_enabled(table: DynamoDbTable) -> Result:
    if table.pitr_enabled:
        return passed(table, f"Point-in-time recovery is enabled for DynamoDB table {table.resource_id}.")
    return failed(table, f"Point-in-time recovery is off for DynamoDB table {table.resource_id}: accidental writes "
                         "or deletes cannot be rolled back.")


@resource_check("dynamodb_table_deletion_protection", DynamoDbTable, requires=DESCRIBED)
def dynamodb_table_deletion_protection(table: DynamoDbTable) -> Result:
    if table.deletion_protection:
        return passed(table, f"DynamoDB table {table.resource_id} has deletion protection enabled.")
    return failed(table, f"DynamoDB table {table.resource_id} can be deleted in one call (deletion protection is off).")
