"""CIS AWS Foundations 3.0 checks 4.1-4.15: a metric filter and alarm for each kind of sensitive activity.

One check per activity. It passes when a multi-region trail that is logging all read and write management
events delivers to a CloudWatch Logs group that has a metric filter matching the activity
(app.checks.filter_patterns judges the pattern by what it matches), an alarm on the filter's metric with
actions enabled, and an SNS topic among the alarm's actions with at least one confirmed subscription.
Findings are account-wide (region "global"); the details name the log group, filter, alarm and topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.checks.base import Result, account_check, account_result
from app.checks.cloudtrail import SELECTORS, STATUS, error_result, management_coverage, trail_errors, trails
from app.checks.filter_patterns import MONITORED, MonitoredActivity, compile_pattern, covers
from app.scanners.base import CollectionError, Inventory
from app.scanners.cloudtrail import CloudTrailTrail
from app.scanners.monitoring import LogGroupMonitoring, MetricAlarm, MetricFilter, log_group_key

REQUIRES = frozenset({"cloudtrail:DescribeTrails", STATUS, SELECTORS, "logs:DescribeMetricFilters",
                      "cloudwatch:DescribeAlarms", "sns:ListSubscriptionsByTopic"})

# How far a log group got towards a working alarm, worst first: the best one explains a FAIL.
_STAGES = ("not_inspected", "missing", "no_filter", "no_alarm", "no_action", "no_subscriber", "unknown", "ok")


@dataclass
class Chain:
    stage: str
    log_group: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    errors: list[CollectionError] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return _STAGES.index(self.stage)


def _qualifying(inventory: Inventory) -> tuple[list[CloudTrailTrail], list[str], list[CollectionError]]:
    """Trails a CIS alarm can rely on, the reasons others cannot, and errors that left a trail unknown."""
    good, reasons, unknown = [], [], []
    for trail in sorted(trails(inventory), key=lambda t: t.resource_id):
        if not trail.is_multi_region:
            if log_group_key(trail.cloudwatch_log_group_arn):
                reasons.append(f"{trail.name} covers only {trail.home_region}")
            continue
        if not log_group_key(trail.cloudwatch_log_group_arn):
            reasons.append(f"{trail.name} does not send events to CloudWatch Logs")
            continue
        errors = trail_errors(inventory, trail, (STATUS, SELECTORS))
        if errors:
            unknown += errors
        elif not trail.is_logging:
            reasons.append(f"{trail.name} is not logging")
        elif not management_coverage(trail).all:
            reasons.append(f"{trail.name} records {management_coverage(trail).describe()}")
        else:
            good.append(trail)
    return good, reasons, unknown


def _alarm_watches(alarm: MetricAlarm, metrics: dict[tuple[str, str], list[str]]) -> bool:
    for m in alarm.metrics:
        dims = metrics.get((m.namespace, m.name))
        # A filter metric without dimensions is one time series; an alarm that adds dimensions watches another.
        if dims is not None and (dims or not m.dimensions):
            return True
    return False


def _sns_actions(alarm: MetricAlarm) -> list[str]:
    return [a for a in alarm.alarm_actions if a.split(":")[2:3] == ["sns"]]


def _relevant(f: MetricFilter, activity: MonitoredActivity) -> bool:
    """Whether a filter is an attempt at this activity (matches at least one of its records)."""
    try:
        match = compile_pattern(f.pattern)
    except Exception:  # noqa: BLE001 - an unreadable pattern is reported by covers(); here it is no attempt
        return False
    return any(match(rec) for _, rec in activity.required)


def _chain(inventory: Inventory, group: LogGroupMonitoring | None, key: str,
           activity: MonitoredActivity) -> Chain:
    if group is None:
        return Chain("missing", key, f"log group {key} was not inspected")
    name = group.log_group_name
    if not group.inspected:
        return Chain("not_inspected", key, f"log group {name} belongs to account {group.owner_account} and cannot "
                                           "be inspected from this account")
    if not group.exists:
        return Chain("missing", key, f"log group {name} does not exist")
    matching = [f for f in group.metric_filters if covers(f.pattern, activity).ok]
    if not matching:
        attempts = [f"filter {f.name!r}: {covers(f.pattern, activity).reason}"
                    for f in group.metric_filters if _relevant(f, activity)]
        extra = f" ({'; '.join(attempts[:2])})" if attempts else ""
        return Chain("no_filter", key, f"log group {name} has no metric filter that matches {activity.activity}{extra}",
                     {"log_group": key, "near_misses": attempts[:5]})
    metrics: dict[tuple[str, str], list[str]] = {}
    for f in matching:
        for m in f.metrics:
            metrics[(m.namespace, m.name)] = m.dimensions
    base = {"log_group": key, "metric_filters": [f.name for f in matching],
            "metrics": [f"{ns}/{n}" for ns, n in sorted(metrics)]}
    alarms = [a for a in group.alarms if _alarm_watches(a, metrics)]
    if not alarms:
        return Chain("no_alarm", key, f"metric filter {matching[0].name!r} on log group {name} matches "
                                      f"{activity.activity} but no alarm watches its metric", base)
    notifying = [a for a in alarms if a.actions_enabled and _sns_actions(a)]
    if not notifying:
        why = "has its actions disabled" if all(not a.actions_enabled for a in alarms) else "notifies no SNS topic"
        return Chain("no_action", key, f"alarm {alarms[0].name!r} on the {activity.activity} metric {why}",
                     {**base, "alarms": [a.name for a in alarms]})
    unknown: list[CollectionError] = []
    weak: list[str] = []
    for alarm in notifying:
        for topic_arn in _sns_actions(alarm):
            topic = group.topics.get(topic_arn)
            if topic is None:
                unknown += [e for e in inventory.errors if e.resource_id == topic_arn] or [CollectionError(
                    service="sns", action="sns:ListSubscriptionsByTopic", region=topic_arn.split(":")[3],
                    resource_id=topic_arn, code="NotRead", message="the topic's subscriptions were not read")]
            elif not topic.readable:
                weak.append(f"{topic_arn} is in another account and its subscriptions cannot be read")
            elif not topic.exists:
                weak.append(f"{topic_arn} does not exist")
            elif topic.confirmed:
                return Chain("ok", key, f"metric filter {matching[0].name!r} on log group {name}, alarm "
                                        f"{alarm.name!r} and SNS topic {topic_arn} "
                                        f"({topic.confirmed} confirmed subscription(s))",
                             {**base, "alarm": alarm.name, "topic": topic_arn, "protocols": topic.protocols})
            else:
                pending = f" ({topic.pending} pending confirmation)" if topic.pending else ""
                weak.append(f"{topic_arn} has no confirmed subscription{pending}")
    if unknown:
        return Chain("unknown", key, "the subscriptions of the alarm's topic could not be read", base, unknown)
    return Chain("no_subscriber", key, f"alarm {notifying[0].name!r} notifies nobody: {'; '.join(weak[:3])}",
                 {**base, "alarms": [a.name for a in notifying]})


def evaluate_activity(inventory: Inventory, activity: MonitoredActivity) -> Result:
    good, reasons, unknown_trails = _qualifying(inventory)
    if not good:
        if unknown_trails:
            return error_result(inventory, unknown_trails, context="the status or event selectors of a trail")
        why = f" ({'; '.join(reasons)})" if reasons else ""
        return account_result(inventory, False, f"No alarm watches for {activity.activity}: no multi-region trail "
                                                "logging all read and write management events delivers to "
                                                f"CloudWatch Logs{why}.", reasons=reasons)
    groups = {g.resource_id: g for g in inventory.of(LogGroupMonitoring) if isinstance(g, LogGroupMonitoring)}
    keys = sorted({log_group_key(t.cloudwatch_log_group_arn) or "" for t in good})
    chains = [_chain(inventory, groups.get(k), k, activity) for k in keys]
    best = max(chains, key=lambda c: c.rank)
    if best.stage == "ok":
        return account_result(inventory, True, f"An alarm watches for {activity.activity}: {best.message}.",
                              **best.details)
    if best.stage == "unknown":
        return error_result(inventory, best.errors, context=best.message)
    return account_result(inventory, False, f"No alarm watches for {activity.activity}: {best.message}.",
                          stage=best.stage, **best.details)


def _register(activity: MonitoredActivity) -> None:
    def check(inventory: Inventory) -> Result:
        return evaluate_activity(inventory, activity)

    check.__name__ = check.__qualname__ = activity.check_id
    check.__doc__ = f"CIS 3.0 {activity.cis}: a metric filter and alarm for {activity.activity}."
    globals()[activity.check_id] = account_check(activity.check_id, requires=REQUIRES)(check)


for _activity in MONITORED:
    _register(_activity)
