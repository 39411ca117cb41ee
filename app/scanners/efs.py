"""EFS file systems: encryption at rest and the file system policy (for public access)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy


class EfsFileSystem(Resource):
    resource_type = "AwsEfsFileSystem"
    name: str | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    policy: dict[str, Any] | None = None


@register
class EfsCollector(Collector):
    name = "efs_file_systems"
    service = "efs"
    scope = "regional"
    actions = frozenset({"elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeFileSystemPolicy"})

    async def collect(self, ctx: CollectorContext) -> None:
        listed = await ctx.collect_all("efs", "DescribeFileSystems", "FileSystems")
        systems = [EfsFileSystem(
            region=ctx.region, resource_id=raw["FileSystemId"], arn=raw.get("FileSystemArn"), name=raw.get("Name"),
            tags={t["Key"]: t.get("Value", "") for t in raw.get("Tags", []) if "Key" in t},
            encrypted=bool(raw.get("Encrypted")), kms_key_id=raw.get("KmsKeyId")) for raw in listed]
        await asyncio.gather(*(self._policy(ctx, fs) for fs in systems))
        for fs in systems:
            ctx.add(fs)

    async def _policy(self, ctx: CollectorContext, fs: EfsFileSystem) -> None:
        try:
            answer = await ctx.call("efs", "DescribeFileSystemPolicy", FileSystemId=fs.resource_id,
                                    resource_id=fs.resource_id, ignore_codes={"PolicyNotFound"})
        except AwsCallFailed:
            return
        if answer is not None:
            fs.policy = load_policy(ctx, answer.get("Policy"), action="elasticfilesystem:DescribeFileSystemPolicy",
                                    resource_id=fs.resource_id)
