"""SQS queues: server-side encryption (SSE-SQS or SSE-KMS) and access policy."""

from __future__ import annotations

import asyncio
from typing import Any

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register
from app.scanners.resource_policy import load_policy

ATTRIBUTES = ["QueueArn", "Policy", "KmsMasterKeyId", "SqsManagedSseEnabled"]


class SqsQueue(Resource):
    resource_type = "AwsSqsQueue"
    url: str
    kms_key_id: str | None = None
    sqs_managed_sse: bool = False
    policy: dict[str, Any] | None = None


@register
class SqsCollector(Collector):
    name = "sqs_queues"
    service = "sqs"
    scope = "regional"
    actions = frozenset({"sqs:ListQueues", "sqs:GetQueueAttributes"})

    async def collect(self, ctx: CollectorContext) -> None:
        # Without MaxResults, ListQueues stops at 1,000 queues and returns no token.
        urls = await ctx.collect_all("sqs", "ListQueues", "QueueUrls", PaginationConfig={"PageSize": 1000})
        queues = await asyncio.gather(*(self._queue(ctx, url) for url in urls))
        for queue in queues:
            if queue is not None:
                ctx.add(queue)

    async def _queue(self, ctx: CollectorContext, url: str) -> SqsQueue | None:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        queue = SqsQueue(region=ctx.region, resource_id=name, arn=ctx.arn("sqs", name), url=url)
        try:
            answer = await ctx.call("sqs", "GetQueueAttributes", QueueUrl=url, AttributeNames=ATTRIBUTES,
                                    resource_id=name, ignore_codes={"AWS.SimpleQueueService.NonExistentQueue",
                                                                    "QueueDoesNotExist"})
        except AwsCallFailed:
            return queue
        if answer is None:
            return None  # deleted since it was listed
        attributes = answer.get("Attributes") or {}
        queue.arn = attributes.get("QueueArn") or queue.arn
        queue.kms_key_id = attributes.get("KmsMasterKeyId") or None
        queue.sqs_managed_sse = str(attributes.get("SqsManagedSseEnabled", "")).lower() == "true"
        queue.policy = load_policy(ctx, attributes.get("Policy"), action="sqs:GetQueueAttributes", resource_id=name)
        return queue
