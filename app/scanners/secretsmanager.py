"""Secrets Manager secrets: rotation, last access and resource policy. Metadata only: secret values are never
read (ListSecrets and GetResourcePolicy answer without them; the read-only guard refuses GetSecretValue)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy


class SecretsManagerSecret(Resource):
    resource_type = "AwsSecretsManagerSecret"
    name: str
    rotation_enabled: bool = False
    rotation_days: int | None = None
    last_rotated: datetime | None = None
    last_accessed: datetime | None = None
    created: datetime | None = None
    owning_service: str | None = None
    policy: dict[str, Any] | None = None


@register
class SecretsManagerCollector(Collector):
    name = "secretsmanager_secrets"
    service = "secretsmanager"
    scope = "regional"
    actions = frozenset({"secretsmanager:ListSecrets", "secretsmanager:GetResourcePolicy"})

    async def collect(self, ctx: CollectorContext) -> None:
        listed = await ctx.collect_all("secretsmanager", "ListSecrets", "SecretList")
        secrets = [SecretsManagerSecret(
            region=ctx.region, resource_id=raw["Name"], arn=raw.get("ARN"), name=raw["Name"],
            tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) if "Key" in t},
            rotation_enabled=bool(raw.get("RotationEnabled")),
            rotation_days=(raw.get("RotationRules") or {}).get("AutomaticallyAfterDays"),
            last_rotated=raw.get("LastRotatedDate"), last_accessed=raw.get("LastAccessedDate"),
            created=raw.get("CreatedDate"), owning_service=raw.get("OwningService")) for raw in listed]
        kept = await asyncio.gather(*(self._policy(ctx, s) for s in secrets))
        for secret, keep in zip(secrets, kept, strict=True):
            if keep:
                ctx.add(secret)

    async def _policy(self, ctx: CollectorContext, secret: SecretsManagerSecret) -> bool:
        try:
            answer = await ctx.call("secretsmanager", "GetResourcePolicy", SecretId=secret.arn or secret.name,
                                    resource_id=secret.resource_id, ignore_codes={"ResourceNotFoundException"})
        except AwsCallFailed:
            return True
        if answer is None:
            return False  # deleted since it was listed
        secret.policy = load_policy(ctx, answer.get("ResourcePolicy"), action="secretsmanager:GetResourcePolicy",
                                    resource_id=secret.resource_id)
        return True
