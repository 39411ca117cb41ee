"""DynamoDB tables: encryption key type, point-in-time recovery and deletion protection."""

from __future__ import annotations

import asyncio
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register


class DynamoDbTable(Resource):
    resource_type = "AwsDynamoDbTable"
    sse_type: str | None = None          # None: encrypted with an AWS owned key (the default); "KMS": AWS KMS key
    kms_key_arn: str | None = None
    deletion_protection: bool = False
    pitr_enabled: bool = False


@register
class DynamoDbCollector(Collector):
    name = "dynamodb_tables"
    service = "dynamodb"
    scope = "regional"
    actions = frozenset({"dynamodb:ListTables", "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups"})

    async def collect(self, ctx: CollectorContext) -> None:
        names = await ctx.collect_all("dynamodb", "ListTables", "TableNames")
        tables = await asyncio.gather(*(self._table(ctx, name) for name in names))
        for table in tables:
            if table is not None:
                ctx.add(table)

    async def _table(self, ctx: CollectorContext, name: str) -> DynamoDbTable | None:
        arn = ctx.arn("dynamodb", f"table/{name}")
        described, backups = await asyncio.gather(
            self._call(ctx, "DescribeTable", name), self._call(ctx, "DescribeContinuousBackups", name))
        if described is _GONE or backups is _GONE:
            return None  # deleted since it was listed
        table = DynamoDbTable(region=ctx.region, resource_id=name, arn=arn)
        if isinstance(described, dict):
            raw = described.get("Table") or {}
            table.arn = raw.get("TableArn") or arn
            sse = raw.get("SSEDescription") or {}
            if sse.get("Status") in ("ENABLED", "UPDATING"):
                table.sse_type = sse.get("SSEType")
                table.kms_key_arn = sse.get("KMSMasterKeyArn")
            table.deletion_protection = bool(raw.get("DeletionProtectionEnabled"))
        if isinstance(backups, dict):
            pitr = ((backups.get("ContinuousBackupsDescription") or {})
                    .get("PointInTimeRecoveryDescription") or {})
            table.pitr_enabled = pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
        return table

    async def _call(self, ctx: CollectorContext, operation: str, name: str) -> Any:
        try:
            answer = await ctx.call("dynamodb", operation, TableName=name, resource_id=name,
                                    ignore_codes={"ResourceNotFoundException", "TableNotFoundException"})
        except AwsCallFailed:
            return None
        return _GONE if answer is None else answer


_GONE = object()
