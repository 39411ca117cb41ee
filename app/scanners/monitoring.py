"""CIS section 4 monitoring: for each CloudWatch Logs group that a multi-region trail delivers to, its metric
filters, the alarms on their metrics and the subscriptions of the SNS topics those alarms notify.

Only what the monitoring checks need is read: the log groups come from DescribeTrails (one more call; the
CloudTrail collector reads trails too, but collectors do not depend on each other), alarms are read once per
log group region and kept only when they watch a metric of one of those filters, and of a topic only the
number of confirmed subscriptions and their protocols are kept (never an endpoint).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import BaseModel

from app.scanners.base import AwsCallFailed, Collector, CollectorContext, Resource, register

_LOG_GROUP_ARN = re.compile(r"arn:([\w-]+):logs:([\w-]+):(\d{12}):log-group:(.+?)(?::\*)?$")
_TOPIC_ARN = re.compile(r"arn:([\w-]+):sns:([\w-]+):(\d{12}):[\w.-]+$")


def parse_log_group_arn(arn: str | None) -> tuple[str, str, str] | None:
    """(region, account, log group name) of a log group ARN (with or without the trailing ":*")."""
    m = _LOG_GROUP_ARN.fullmatch(arn or "")
    return (m.group(2), m.group(3), m.group(4)) if m else None


def log_group_key(arn: str | None) -> str | None:
    """A log group ARN without the ":*" suffix CloudTrail puts on it: how the two collectors agree on a group."""
    parsed = parse_log_group_arn(arn)
    if parsed is None:
        return None
    return (arn or "").removesuffix(":*")


class MetricRef(BaseModel):
    namespace: str
    name: str
    dimensions: list[str] = []          # dimension names (metric filters rarely set any)


class MetricFilter(BaseModel):
    name: str
    pattern: str
    metrics: list[MetricRef] = []


class MetricAlarm(BaseModel):
    name: str
    arn: str | None = None
    metrics: list[MetricRef] = []       # the metric of a plain alarm, or the metrics of a metric-math alarm
    actions_enabled: bool = True
    alarm_actions: list[str] = []


class TopicSubscriptions(BaseModel):
    topic_arn: str
    readable: bool = True               # False: the topic is in another account, its subscriptions were not read
    exists: bool = True
    confirmed: int = 0
    pending: int = 0
    protocols: list[str] = []


class LogGroupMonitoring(Resource):
    """A CloudTrail log group and the alarms built on it."""

    resource_type = "AwsLogsLogGroup"
    log_group_name: str
    owner_account: str
    inspected: bool = True              # False: the group is in another account (e.g. an organization trail)
    exists: bool = True
    metric_filters: list[MetricFilter] = []
    alarms: list[MetricAlarm] = []
    topics: dict[str, TopicSubscriptions] = {}


def _dimension_names(raw: Any) -> list[str]:
    if isinstance(raw, dict):
        return sorted(str(k) for k in raw)
    if isinstance(raw, list):
        return sorted(str(d.get("Name")) for d in raw if isinstance(d, dict) and d.get("Name"))
    return []


def _alarm_metrics(alarm: dict[str, Any]) -> list[MetricRef]:
    if alarm.get("MetricName"):
        return [MetricRef(namespace=alarm.get("Namespace", ""), name=alarm["MetricName"],
                          dimensions=_dimension_names(alarm.get("Dimensions")))]
    out = []
    for query in alarm.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric") or {}
        if metric.get("MetricName"):
            out.append(MetricRef(namespace=metric.get("Namespace", ""), name=metric["MetricName"],
                                 dimensions=_dimension_names(metric.get("Dimensions"))))
    return out


@register
class MonitoringCollector(Collector):
    name = "cloudtrail_log_group_monitoring"
    service = "cloudwatch"
    scope = "global"
    actions = frozenset({"cloudtrail:DescribeTrails", "logs:DescribeMetricFilters", "cloudwatch:DescribeAlarms",
                         "sns:ListSubscriptionsByTopic"})

    def __init__(self) -> None:
        self._alarms: dict[str, asyncio.Task[list[dict[str, Any]]]] = {}
        self._topics: dict[str, asyncio.Task[TopicSubscriptions | None]] = {}

    async def collect(self, ctx: CollectorContext) -> None:
        answer = await ctx.call("cloudtrail", "DescribeTrails", includeShadowTrails=True) or {}
        groups = sorted({key for t in answer.get("trailList", []) if t.get("IsMultiRegionTrail")
                         and (key := log_group_key(t.get("CloudWatchLogsLogGroupArn")))})
        outcomes = await asyncio.gather(*(self._group(ctx, arn) for arn in groups), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, AwsCallFailed):
                raise outcome

    async def _group(self, ctx: CollectorContext, arn: str) -> None:
        parsed = parse_log_group_arn(arn)
        assert parsed is not None
        region, account, name = parsed
        group = LogGroupMonitoring(region=region, resource_id=arn, arn=arn, log_group_name=name,
                                   owner_account=account)
        if account != ctx.account_id:
            group.inspected = False
            ctx.add(group)
            return
        rctx = CollectorContext(ctx.scan, ctx.collector, region)
        filters: list[dict[str, Any]] = []
        token = None
        while True:
            page = await rctx.call("logs", "DescribeMetricFilters", logGroupName=name,
                                   ignore_codes={"ResourceNotFoundException"},
                                   **({"nextToken": token} if token else {}))
            if page is None:
                group.exists = False
                ctx.add(group)
                return
            filters.extend(page.get("metricFilters", []))
            token = page.get("nextToken")
            if not token:
                break
        group.metric_filters = [MetricFilter(
            name=f.get("filterName", ""), pattern=f.get("filterPattern", ""),
            metrics=[MetricRef(namespace=m.get("metricNamespace", ""), name=m.get("metricName", ""),
                               dimensions=_dimension_names(m.get("dimensions")))
                     for m in f.get("metricTransformations", [])]) for f in filters]
        produced = {(m.namespace, m.name) for f in group.metric_filters for m in f.metrics}
        if produced:
            alarms = await self._region_alarms(rctx, region)
            for raw in alarms:
                metrics = _alarm_metrics(raw)
                if any((m.namespace, m.name) in produced for m in metrics):
                    group.alarms.append(MetricAlarm(
                        name=raw.get("AlarmName", ""), arn=raw.get("AlarmArn"), metrics=metrics,
                        actions_enabled=raw.get("ActionsEnabled", True) is not False,
                        alarm_actions=list(raw.get("AlarmActions") or [])))
        topic_arns = sorted({a for alarm in group.alarms for a in alarm.alarm_actions if _TOPIC_ARN.fullmatch(a)})
        topics = await asyncio.gather(*(self._topic(ctx, t) for t in topic_arns))
        group.topics = {t.topic_arn: t for t in topics if t is not None}
        ctx.add(group)

    async def _region_alarms(self, ctx: CollectorContext, region: str) -> list[dict[str, Any]]:
        if region not in self._alarms:
            self._alarms[region] = asyncio.ensure_future(
                ctx.collect_all("cloudwatch", "DescribeAlarms", "MetricAlarms", AlarmTypes=["MetricAlarm"]))
        return await self._alarms[region]

    async def _topic(self, ctx: CollectorContext, arn: str) -> TopicSubscriptions | None:
        if arn not in self._topics:
            self._topics[arn] = asyncio.ensure_future(self._read_topic(ctx, arn))
        return await self._topics[arn]

    async def _read_topic(self, ctx: CollectorContext, arn: str) -> TopicSubscriptions | None:
        m = _TOPIC_ARN.fullmatch(arn)
        assert m is not None
        region, account = m.group(2), m.group(3)
        topic = TopicSubscriptions(topic_arn=arn)
        if account != ctx.account_id:
            topic.readable = False
            return topic
        rctx = CollectorContext(ctx.scan, ctx.collector, region)
        protocols: set[str] = set()
        token = None
        try:
            while True:
                page = await rctx.call("sns", "ListSubscriptionsByTopic", TopicArn=arn, resource_id=arn,
                                       ignore_codes={"NotFound"}, **({"NextToken": token} if token else {}))
                if page is None:
                    topic.exists = False
                    return topic
                for sub in page.get("Subscriptions", []):
                    if str(sub.get("SubscriptionArn", "")).startswith("arn:"):
                        topic.confirmed += 1
                        protocols.add(str(sub.get("Protocol", "")))
                    elif sub.get("SubscriptionArn") == "PendingConfirmation":
                        topic.pending += 1
                token = page.get("NextToken")
                if not token:
                    break
        except AwsCallFailed:
            return None  # recorded for this topic: the checks that need it report ERROR
        topic.protocols = sorted(p for p in protocols if p)
        return topic
