"""CloudTrail trails: configuration, logging status and event selectors, each trail read once in its home region.

DescribeTrails in any region also lists the multi-region trails homed elsewhere ("shadow trails") and the
organization's trails. A trail is read once, by ARN and in its home region: by the collector of that region
when it is scanned, otherwise by the collector of the first scanned region (which sees it as a shadow).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

_GONE = object()   # the trail was deleted between DescribeTrails and a detail call


class CloudTrailTrail(Resource):
    resource_type = "AwsCloudTrailTrail"
    name: str
    home_region: str
    is_multi_region: bool = False
    is_organization_trail: bool = False
    include_global_service_events: bool = False
    log_file_validation: bool = False
    kms_key_id: str | None = None
    s3_bucket_name: str | None = None
    s3_key_prefix: str | None = None
    sns_topic_arn: str | None = None
    cloudwatch_log_group_arn: str | None = None
    cloudwatch_role_arn: str | None = None
    has_custom_event_selectors: bool = False
    # GetTrailStatus; None when the call failed (the error is recorded for this trail).
    is_logging: bool | None = None
    latest_delivery_time: datetime | None = None
    latest_delivery_error: str | None = None
    latest_cloudwatch_logs_delivery_time: datetime | None = None
    latest_cloudwatch_logs_delivery_error: str | None = None
    latest_digest_delivery_error: str | None = None
    # GetEventSelectors; None when the call failed. Both empty with has_custom_event_selectors False means the
    # trail never had selectors set: AWS then logs all management events, read and write.
    event_selectors: list[dict[str, Any]] | None = None
    advanced_event_selectors: list[dict[str, Any]] | None = None

    @property
    def owner_account(self) -> str:
        """The account that owns the trail (the management account for an organization trail)."""
        parts = (self.arn or "").split(":")
        return parts[4] if len(parts) > 5 else ""


def reader_region(home_region: str, scanned: list[str], here: str) -> str:
    """Which scanned region's collector reads a trail homed in `home_region`."""
    if home_region in scanned:
        return home_region
    return sorted(scanned)[0] if scanned else here


@register
class CloudTrailCollector(Collector):
    name = "cloudtrail_trails"
    service = "cloudtrail"
    scope = "regional"
    actions = frozenset({"cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"})

    async def collect(self, ctx: CollectorContext) -> None:
        answer = await ctx.call("cloudtrail", "DescribeTrails", includeShadowTrails=True) or {}
        scanned = list(ctx.scan.inventory.regions)
        mine = [t for t in answer.get("trailList", []) if t.get("TrailARN")
                and reader_region(t.get("HomeRegion") or ctx.region, scanned, ctx.region) == ctx.region]
        await asyncio.gather(*(self._trail(ctx, t) for t in mine))

    async def _trail(self, ctx: CollectorContext, listed: dict[str, Any]) -> None:
        arn = listed["TrailARN"]
        home = listed.get("HomeRegion") or ctx.region
        trail = CloudTrailTrail(
            region=home, resource_id=arn, arn=arn, name=listed.get("Name") or arn.rsplit("/", 1)[-1],
            home_region=home,
            is_multi_region=bool(listed.get("IsMultiRegionTrail")),
            is_organization_trail=bool(listed.get("IsOrganizationTrail")),
            include_global_service_events=bool(listed.get("IncludeGlobalServiceEvents")),
            log_file_validation=bool(listed.get("LogFileValidationEnabled")),
            kms_key_id=listed.get("KmsKeyId") or None,
            s3_bucket_name=listed.get("S3BucketName") or None,
            s3_key_prefix=listed.get("S3KeyPrefix") or None,
            sns_topic_arn=listed.get("SnsTopicARN") or None,
            cloudwatch_log_group_arn=listed.get("CloudWatchLogsLogGroupArn") or None,
            cloudwatch_role_arn=listed.get("CloudWatchLogsRoleArn") or None,
            has_custom_event_selectors=bool(listed.get("HasCustomEventSelectors")),
        )
        home_ctx = CollectorContext(ctx.scan, ctx.collector, home)
        status, selectors = await asyncio.gather(self._status(home_ctx, arn), self._selectors(home_ctx, arn))
        if status is _GONE or selectors is _GONE:
            return  # deleted while we read it: no longer part of the account
        if isinstance(status, dict):
            trail.is_logging = bool(status.get("IsLogging"))
            trail.latest_delivery_time = status.get("LatestDeliveryTime")
            trail.latest_delivery_error = status.get("LatestDeliveryError") or None
            trail.latest_cloudwatch_logs_delivery_time = status.get("LatestCloudWatchLogsDeliveryTime")
            trail.latest_cloudwatch_logs_delivery_error = status.get("LatestCloudWatchLogsDeliveryError") or None
            trail.latest_digest_delivery_error = status.get("LatestDigestDeliveryError") or None
        if isinstance(selectors, dict):
            trail.event_selectors = list(selectors.get("EventSelectors") or [])
            trail.advanced_event_selectors = list(selectors.get("AdvancedEventSelectors") or [])
        ctx.add(trail)

    async def _status(self, ctx: CollectorContext, arn: str) -> dict[str, Any] | object | None:
        return await self._detail(ctx, "GetTrailStatus", arn, Name=arn)

    async def _selectors(self, ctx: CollectorContext, arn: str) -> dict[str, Any] | object | None:
        return await self._detail(ctx, "GetEventSelectors", arn, TrailName=arn)

    async def _detail(self, ctx: CollectorContext, operation: str, arn: str,
                      **params: Any) -> dict[str, Any] | object | None:
        # "Not found" means deleted since DescribeTrails only for our own trails; for an organization trail seen
        # from a member account it is a refusal, and stays an error of that trail.
        own = arn.split(":")[4:5] == [ctx.account_id]
        try:
            answer = await ctx.call("cloudtrail", operation, resource_id=arn,
                                    ignore_codes={"TrailNotFoundException"} if own else (), **params)
        except AwsCallFailed:
            return None
        return _GONE if answer is None else answer
