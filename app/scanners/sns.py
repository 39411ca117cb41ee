"""SNS topics: server-side encryption key and access policy."""

from __future__ import annotations

import asyncio
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy


class SnsTopic(Resource):
    resource_type = "AwsSnsTopic"
    name: str
    kms_key_id: str | None = None
    policy: dict[str, Any] | None = None


@register
class SnsCollector(Collector):
    name = "sns_topics"
    service = "sns"
    scope = "regional"
    actions = frozenset({"sns:ListTopics", "sns:GetTopicAttributes"})

    async def collect(self, ctx: CollectorContext) -> None:
        arns = [t["TopicArn"] for t in await ctx.collect_all("sns", "ListTopics", "Topics")]
        topics = await asyncio.gather(*(self._topic(ctx, arn) for arn in arns))
        for topic in topics:
            if topic is not None:
                ctx.add(topic)

    async def _topic(self, ctx: CollectorContext, arn: str) -> SnsTopic | None:
        name = arn.rsplit(":", 1)[-1]
        topic = SnsTopic(region=ctx.region, resource_id=name, arn=arn, name=name)
        try:
            answer = await ctx.call("sns", "GetTopicAttributes", TopicArn=arn, resource_id=name,
                                    ignore_codes={"NotFound"})
        except AwsCallFailed:
            return topic
        if answer is None:
            return None  # deleted since it was listed
        attributes = answer.get("Attributes") or {}
        topic.kms_key_id = attributes.get("KmsMasterKeyId") or None
        topic.policy = load_policy(ctx, attributes.get("Policy"), action="sns:GetTopicAttributes", resource_id=name)
        return topic
