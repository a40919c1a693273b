"""CloudWatch metrics and alarms where moto 5.2.5 differs from CloudWatch in ways the
module depends on.

Dimensions: "CloudWatch treats each unique combination of dimensions as a separate
metric. If a specific combination of dimensions was not published, you can't retrieve
statistics for it. You must specify the same dimensions that were used when the metrics
were created" (GetMetricStatistics, Dimensions; also the Knowledge Center's
"cloudwatch-getmetricstatistics-data"). moto matches the asked dimensions as a subset,
so a read for `BackupInstance=prod` also sums staging's per-database data points. The
patch matches them exactly, as an alarm does.

Alarms: moto stores them (PutMetricAlarm) but never evaluates them: every alarm stays
`OK` ("Unchecked: Initial alarm creation") whatever is put. CloudWatch evaluates each
alarm every minute over its last `EvaluationPeriods` periods of `Period` seconds: a
period breaches when its statistic compares to the threshold as `ComparisonOperator`
says; with `DatapointsToAlarm` (default `EvaluationPeriods`) breaching periods the
alarm is in ALARM, else OK; a period without data counts as `TreatMissingData` says
(`breaching`, `notBreaching`, `ignore`: the state stays; `missing`, the default: left
out, INSUFFICIENT_DATA when every period is missing) (User Guide, "Using Amazon
CloudWatch alarms", "Configuring how CloudWatch alarms treat missing data"). On a
change of state CloudWatch runs the new state's actions: a topic in AlarmActions,
OKActions or InsufficientDataActions gets the alarm's JSON message. `evaluate` does all
of that at the local AWS's clock (the gateway's POST /_gateway/cloudwatch/evaluate-alarms,
what CloudWatch does every minute). The periods end at the evaluation time, not at
CloudWatch's minute boundaries; only metric alarms on one metric are evaluated
(the module makes no other kind).
"""

from __future__ import annotations

import json
import operator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricDatumBase, cloudwatch_backends
from moto.sns.exceptions import SNSNotFoundError
from moto.sns.models import sns_backends

from .clock import CLOCK

_original_get_metric_statistics = CloudWatchBackend.get_metric_statistics

COMPARISONS = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
STATISTICS = {
    "Sum": sum,
    "Maximum": max,
    "Minimum": min,
    "Average": lambda values: sum(values) / len(values),
    "SampleCount": len,
}


def dimension_set(dimensions) -> frozenset[tuple[str, str]]:
    """A metric's identity beside its namespace and name: its dimensions, as a set."""
    return frozenset((d["Name"], d["Value"]) if isinstance(d, dict) else (d.name, d.value) for d in dimensions or [])


def _get_metric_statistics(self: CloudWatchBackend, namespace: str, metric_name: str, start_time: datetime,
                           end_time: datetime, period: int, stats: list[str], dimensions: list[dict[str, str]],
                           unit: str | None = None):
    """moto's statistics, over the data points with exactly the asked dimensions."""
    wanted = dimension_set(dimensions)
    exact = [md for md in self.get_all_metrics() if dimension_set(md.dimensions) == wanted]
    view = SimpleNamespace(get_all_metrics=lambda: exact)
    return _original_get_metric_statistics(view, namespace, metric_name, start_time, end_time, period, stats, [], unit)


def _values(datum: MetricDatumBase) -> list[float]:
    """The values a data point holds: one value, or a statistic set's sum over its count."""
    if getattr(datum, "value", None) is not None:
        return [float(datum.value)]
    count = float(getattr(datum, "sample_count", 0) or 0)
    return [float(datum.sum) / count] * int(count) if count else []


def _state(alarm: Alarm, data: list[MetricDatumBase], now: datetime) -> tuple[str, str]:
    """The state the alarm's definition gives at `now`, and why."""
    dimensions = dimension_set(alarm.dimensions)
    # moto keeps naive UTC timestamps.
    metric = [(d.timestamp if d.timestamp.tzinfo else d.timestamp.replace(tzinfo=UTC), _values(d)) for d in data
              if d.namespace == alarm.namespace and d.name == alarm.metric_name
              and dimension_set(d.dimensions) == dimensions]
    compare, statistic = COMPARISONS[alarm.comparison_operator], STATISTICS[alarm.statistic]
    missing_as = alarm.treat_missing_data or "missing"
    period = timedelta(seconds=alarm.period)
    breaching = present = 0
    points = []
    for i in range(alarm.evaluation_periods):
        end = now - i * period
        values = [v for at, held in metric if end - period <= at < end for v in held]
        if values:
            present += 1
            value = statistic(values)
            points.append(round(value, 3))
            breaching += compare(value, alarm.threshold)
        elif missing_as == "breaching":
            breaching += 1
    to_alarm = alarm.datapoints_to_alarm or alarm.evaluation_periods
    window = f"{alarm.evaluation_periods} periods of {alarm.period} s"
    if not present and missing_as == "ignore":
        return alarm.state_value, alarm.state_reason
    if not present and missing_as == "missing":
        return "INSUFFICIENT_DATA", f"no data points in the last {window}"
    state = "ALARM" if breaching >= to_alarm else "OK"
    return state, (f"{breaching} of the last {window} breaching (datapoints {points}, threshold "
                   f"{alarm.threshold:g}, {alarm.comparison_operator}, {to_alarm} to alarm)")


def evaluate(account: str, region: str, at: datetime | None = None) -> list[dict[str, Any]]:
    """Evaluates every metric alarm of the region as CloudWatch does at `at` (default: the
    clock's now; CloudWatch evaluates every minute, so any earlier minute is one it
    evaluated at); runs the actions of each state change. Returns each alarm's name,
    state, reason and whether it changed."""
    backend = cloudwatch_backends[account][region]
    now = at or CLOCK.now()
    data = list(backend.get_all_metrics())
    results = []
    for alarm in list(backend.alarms.values()):
        if alarm.rule or alarm.metric_data_queries or alarm.statistic not in STATISTICS:
            continue
        state, reason = _state(alarm, data, now)
        changed = state != alarm.state_value or alarm.state_reason.startswith("Unchecked")
        if changed:
            old = alarm.state_value
            alarm.update_state(reason, json.dumps({"evaluatedAt": now.isoformat()}), state)
            if alarm.actions_enabled:
                _notify(account, region, alarm, old, now)
        results.append({"name": alarm.name, "state": state, "reason": reason, "changed": changed})
    return results


def _notify(account: str, region: str, alarm: Alarm, old_state: str, now: datetime) -> None:
    """Publishes the alarm's message to each topic of its new state's actions."""
    actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
               "INSUFFICIENT_DATA": alarm.insufficient_data_actions}[alarm.state_value]
    message = json.dumps({
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason,
        "StateChangeTime": now.isoformat(), "Region": region, "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace,
                    "Dimensions": [{"name": d.name, "value": d.value} for d in alarm.dimensions]},
    })
    # SNS takes subjects under 100 characters.
    subject = f'{alarm.state_value}: "{alarm.name}" in {region}'[:99]
    for topic in actions:
        if topic.startswith("arn:aws:sns:"):
            topic_region, topic_account = topic.split(":")[3:5]
            try:
                sns_backends[topic_account][topic_region].publish(message, arn=topic, subject=subject)
            except SNSNotFoundError:
                pass  # CloudWatch records a failed action; the alarm's state still changes


def apply() -> None:
    CloudWatchBackend.get_metric_statistics = _get_metric_statistics
