"""EBS account settings per region: encryption by default and its KMS key."""

from __future__ import annotations

from app.scanners.base import Collector, CollectorContext, Resource, register


class EbsEncryptionDefault(Resource):
    resource_type = "AwsEc2EbsEncryptionByDefault"
    enabled: bool
    kms_key_id: str | None = None


@register
class EbsEncryptionCollector(Collector):
    name = "ebs_encryption_default"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:GetEbsEncryptionByDefault", "ec2:GetEbsDefaultKmsKeyId"})

    async def collect(self, ctx: CollectorContext) -> None:
        answer = await ctx.call("ec2", "GetEbsEncryptionByDefault") or {}
        enabled = bool(answer.get("EbsEncryptionByDefault"))
        key = None
        if enabled:
            key = ((await ctx.call("ec2", "GetEbsDefaultKmsKeyId")) or {}).get("KmsKeyId")
        ctx.add(EbsEncryptionDefault(
            region=ctx.region, resource_id=f"{ctx.account_id}/{ctx.region}/ebs-encryption-by-default",
            arn=ctx.arn("ec2", "ebs-encryption-by-default"), enabled=enabled, kms_key_id=key))
