"""EBS per region: the account's encryption-by-default setting, every volume, and every snapshot the account
owns, with whether it is public.

Volumes and snapshots come from paginated Describe* calls. Public snapshots are found without reading every
snapshot's permissions: DescribeSnapshots with RestorableByUserIds=all lists the owned snapshots anyone can
restore, and only those few are confirmed with DescribeSnapshotAttribute (concurrently).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

SNAPSHOT_PAGE = {"PageSize": 1000}
VOLUME_PAGE = {"PageSize": 500}     # DescribeVolumes accepts at most 500 per page


class EbsEncryptionDefault(Resource):
    resource_type = "AwsEc2EbsEncryptionByDefault"
    enabled: bool
    kms_key_id: str | None = None


class EbsVolume(Resource):
    resource_type = "AwsEc2Volume"
    volume_id: str
    state: str | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    size_gib: int | None = None
    volume_type: str | None = None
    attached_instance_ids: list[str] = []
    created: datetime | None = None


class EbsSnapshot(Resource):
    resource_type = "AwsEc2Snapshot"
    snapshot_id: str
    volume_id: str | None = None
    state: str | None = None
    encrypted: bool = False
    kms_key_id: str | None = None
    started: datetime | None = None
    public: bool = False          # createVolumePermission grants the group "all"


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or [] if "Key" in t}


@register
class EbsEncryptionCollector(Collector):
    name = "ebs_encryption_default"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:GetEbsEncryptionByDefault", "ec2:GetEbsDefaultKmsKeyId"})

    async def collect(self, ctx: CollectorContext) -> None:
        answer = await ctx.call("ec2", "GetEbsEncryptionByDefault") or {}
        enabled = bool(answer.get("EbsEncryptionByDefault"))
        resource_id = f"{ctx.account_id}/{ctx.region}/ebs-encryption-by-default"
        key = None
        if enabled:
            try:
                key = ((await ctx.call("ec2", "GetEbsDefaultKmsKeyId", resource_id=resource_id)) or {}).get("KmsKeyId")
            except AwsCallFailed:
                pass  # recorded; which key encrypts by default is detail, the setting itself was read
        ctx.add(EbsEncryptionDefault(region=ctx.region, resource_id=resource_id,
                                     arn=ctx.arn("ec2", "ebs-encryption-by-default"), enabled=enabled, kms_key_id=key))


@register
class EbsVolumeCollector(Collector):
    name = "ebs_volumes"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeVolumes"})

    async def collect(self, ctx: CollectorContext) -> None:
        async for page in ctx.pages("ec2", "DescribeVolumes", PaginationConfig=VOLUME_PAGE):
            for volume in page.get("Volumes", []):
                volume_id = volume["VolumeId"]
                ctx.add(EbsVolume(
                    region=ctx.region, resource_id=volume_id, arn=ctx.arn("ec2", f"volume/{volume_id}"),
                    tags=_tags(volume), volume_id=volume_id, state=volume.get("State"),
                    encrypted=bool(volume.get("Encrypted")), kms_key_id=volume.get("KmsKeyId"),
                    size_gib=volume.get("Size"), volume_type=volume.get("VolumeType"),
                    attached_instance_ids=[a["InstanceId"] for a in volume.get("Attachments") or []
                                           if a.get("InstanceId")],
                    created=volume.get("CreateTime")))


@register
class EbsSnapshotCollector(Collector):
    name = "ebs_snapshots"
    service = "ec2"
    scope = "regional"
    actions = frozenset({"ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute"})

    async def collect(self, ctx: CollectorContext) -> None:
        owned, restorable_by_all = await _gather(
            ctx.collect_all("ec2", "DescribeSnapshots", "Snapshots", OwnerIds=["self"],
                            PaginationConfig=SNAPSHOT_PAGE),
            ctx.collect_all("ec2", "DescribeSnapshots", "Snapshots", OwnerIds=["self"],
                            RestorableByUserIds=["all"], PaginationConfig=SNAPSHOT_PAGE))
        snapshots = {s["SnapshotId"]: self._snapshot(ctx, s) for s in owned}
        candidates = [sid for sid in {s["SnapshotId"] for s in restorable_by_all} if sid in snapshots]
        # The listing filter says which snapshots are public; their permission attribute is the proof.
        gone = await asyncio.gather(*(self._read_permission(ctx, snapshots[sid]) for sid in candidates))
        for sid, is_gone in zip(candidates, gone, strict=True):
            if is_gone:
                del snapshots[sid]
        for snapshot in snapshots.values():
            ctx.add(snapshot)

    def _snapshot(self, ctx: CollectorContext, item: dict[str, Any]) -> EbsSnapshot:
        sid = item["SnapshotId"]
        return EbsSnapshot(
            region=ctx.region, resource_id=sid, arn=f"arn:{ctx.partition}:ec2:{ctx.region}::snapshot/{sid}",
            tags=_tags(item), snapshot_id=sid, volume_id=item.get("VolumeId"), state=item.get("State"),
            encrypted=bool(item.get("Encrypted")), kms_key_id=item.get("KmsKeyId"), started=item.get("StartTime"))

    async def _read_permission(self, ctx: CollectorContext, snapshot: EbsSnapshot) -> bool:
        """Set `public` from the snapshot's createVolumePermission; True when the snapshot no longer exists.
        A failed call is recorded against this snapshot only, so its exposure check reports ERROR."""
        try:
            answer = await ctx.call("ec2", "DescribeSnapshotAttribute", SnapshotId=snapshot.snapshot_id,
                                    Attribute="createVolumePermission", resource_id=snapshot.snapshot_id,
                                    ignore_codes={"InvalidSnapshot.NotFound"})
        except AwsCallFailed:
            return False
        if answer is None:
            return True
        snapshot.public = any(p.get("Group") == "all" for p in answer.get("CreateVolumePermissions") or [])
        return False


async def _gather(*calls: Any) -> list[Any]:
    """Run listing calls together; the first failure is raised as itself (the collector stops for the region)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)
