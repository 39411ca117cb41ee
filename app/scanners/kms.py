"""KMS customer managed keys: state, type, automatic rotation and key policy.

AWS managed keys (alias/aws/...) are recognized from the alias list and skipped: AWS rotates them and owns
their policies, so no check judges them, and skipping them saves a DescribeKey per key and region.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy


class KmsKey(Resource):
    resource_type = "AwsKmsKey"
    key_manager: str | None = None       # CUSTOMER | AWS; None when DescribeKey failed
    key_state: str | None = None         # Enabled | Disabled | PendingDeletion | ...
    key_spec: str | None = None
    origin: str | None = None            # AWS_KMS | EXTERNAL | AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    multi_region: bool = False
    deletion_date: datetime | None = None
    aliases: list[str] = []
    rotation_enabled: bool | None = None  # None: rotation does not apply to this key (or was not read)
    policy: dict[str, Any] | None = None

    @property
    def rotation_applies(self) -> bool:
        """Automatic rotation exists only for enabled symmetric keys whose material KMS generated."""
        return (self.key_manager == "CUSTOMER" and self.key_spec == "SYMMETRIC_DEFAULT"
                and self.origin == "AWS_KMS" and self.key_state == "Enabled")


@register
class KmsCollector(Collector):
    name = "kms_keys"
    service = "kms"
    scope = "regional"
    actions = frozenset({"kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyRotationStatus",
                         "kms:GetKeyPolicy"})

    async def collect(self, ctx: CollectorContext) -> None:
        keys, aliases = await asyncio.gather(ctx.collect_all("kms", "ListKeys", "Keys"), self._aliases(ctx))
        aws_managed = {a["TargetKeyId"] for a in aliases
                       if a.get("AliasName", "").startswith("alias/aws/") and a.get("TargetKeyId")}
        names: dict[str, list[str]] = {}
        for alias in aliases:
            if alias.get("TargetKeyId"):
                names.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
        found = await asyncio.gather(*(self._key(ctx, k, names.get(k["KeyId"], []))
                                       for k in keys if k["KeyId"] not in aws_managed))
        for key in found:
            if key is not None:
                ctx.add(key)

    async def _aliases(self, ctx: CollectorContext) -> list[dict[str, Any]]:
        try:
            return await ctx.collect_all("kms", "ListAliases", "Aliases")
        except AwsCallFailed:
            return []  # only an optimization and message detail: every key gets a DescribeKey instead

    async def _key(self, ctx: CollectorContext, listed: dict[str, Any], aliases: list[str]) -> KmsKey | None:
        key_id = listed["KeyId"]
        key = KmsKey(region=ctx.region, resource_id=key_id, arn=listed.get("KeyArn"), aliases=sorted(aliases))
        try:
            answer = await ctx.call("kms", "DescribeKey", KeyId=key_id, resource_id=key_id,
                                    ignore_codes={"NotFoundException"})
        except AwsCallFailed:
            return key
        if answer is None:
            return None
        meta = answer.get("KeyMetadata") or {}
        if meta.get("KeyManager") != "CUSTOMER":
            return None
        key.key_manager = "CUSTOMER"
        key.key_state = meta.get("KeyState")
        key.key_spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
        key.origin = meta.get("Origin")
        key.multi_region = bool(meta.get("MultiRegion"))
        key.deletion_date = meta.get("DeletionDate")
        await asyncio.gather(self._rotation(ctx, key), self._policy(ctx, key))
        return key

    async def _rotation(self, ctx: CollectorContext, key: KmsKey) -> None:
        if not key.rotation_applies:
            return
        try:
            answer = await ctx.call("kms", "GetKeyRotationStatus", KeyId=key.resource_id, resource_id=key.resource_id)
        except AwsCallFailed:
            return
        key.rotation_enabled = bool((answer or {}).get("KeyRotationEnabled"))

    async def _policy(self, ctx: CollectorContext, key: KmsKey) -> None:
        try:
            answer = await ctx.call("kms", "GetKeyPolicy", KeyId=key.resource_id, PolicyName="default",
                                    resource_id=key.resource_id)
        except AwsCallFailed:
            return
        key.policy = load_policy(ctx, (answer or {}).get("Policy"), action="kms:GetKeyPolicy",
                                 resource_id=key.resource_id)
