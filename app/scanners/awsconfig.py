"""AWS Config per region: configuration recorders, what they record, whether they run, and delivery channels."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from app.scanners.base import Collector, CollectorContext, Resource, register


class ConfigRecorder(BaseModel):
    name: str
    arn: str | None = None                        # returned by the API since 2024
    all_supported: bool = False
    include_global_resource_types: bool = False
    strategy: str | None = None                  # ALL_SUPPORTED_RESOURCE_TYPES | INCLUSION_BY_... | EXCLUSION_BY_...
    resource_types: list[str] = []               # recorded types when recording by inclusion
    excluded_resource_types: list[str] = []
    service_principal: str | None = None          # set for service-linked recorders (they record for one service)
    # DescribeConfigurationRecorderStatus
    recording: bool = False
    last_status: str | None = None               # PENDING | SUCCESS | FAILURE (case as AWS returns it)
    last_error_code: str | None = None


class ConfigRegion(Resource):
    """AWS Config in one region of the account."""

    resource_type = "AwsConfigConfigurationRecorder"
    recorders: list[ConfigRecorder] = []
    delivery_channels: list[str] = []             # channel names


@register
class ConfigCollector(Collector):
    name = "config_recorders"
    service = "config"
    scope = "regional"
    actions = frozenset({"config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus",
                         "config:DescribeDeliveryChannels"})

    async def collect(self, ctx: CollectorContext) -> None:
        answers = await asyncio.gather(
            ctx.call("config", "DescribeConfigurationRecorders"),
            ctx.call("config", "DescribeConfigurationRecorderStatus"),
            ctx.call("config", "DescribeDeliveryChannels"),
            return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        recorders_answer, status_answer, channels_answer = (a or {} for a in answers)
        statuses = {s.get("name"): s for s in status_answer.get("ConfigurationRecordersStatus", [])}
        recorders = [_recorder(r, statuses.get(r.get("name"), {}))
                     for r in recorders_answer.get("ConfigurationRecorders", [])]
        channels = [c.get("name", "") for c in channels_answer.get("DeliveryChannels", [])]
        ctx.add(ConfigRegion(region=ctx.region, resource_id=f"{ctx.account_id}/{ctx.region}/config",
                             arn=next((r.arn for r in recorders if r.arn), None), recorders=recorders,
                             delivery_channels=channels))


def _recorder(raw: dict[str, Any], status: dict[str, Any]) -> ConfigRecorder:
    group = raw.get("recordingGroup") or {}
    return ConfigRecorder(
        name=raw.get("name", ""),
        arn=raw.get("arn"),
        all_supported=bool(group.get("allSupported")),
        include_global_resource_types=bool(group.get("includeGlobalResourceTypes")),
        strategy=(group.get("recordingStrategy") or {}).get("useOnly"),
        resource_types=list(group.get("resourceTypes") or []),
        excluded_resource_types=list((group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or []),
        service_principal=raw.get("servicePrincipal"),
        recording=bool(status.get("recording")),
        last_status=status.get("lastStatus"),
        last_error_code=status.get("lastErrorCode") or None,
    )
