"""The final report of a run, read from the local AWS's state: the snapshots,
copies (in the copy region and in the vault account) and exports the execution made, what prune deleted and kept, the
messages SNS and Slack received, the metrics put, and the execution itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from local_aws.control import control
from local_aws.deploy import Aws, drain_queue

from .follow import RUN, Execution, error_message
from .world import DESTINATION, EXECUTION, INSTANCE, MANAGED_BY, SOURCE, SOURCE_DB


# Where a database's result in the run report carries a failed step.
ERROR_KEYS = ("error", "export_error", "copy_error", "vault_error")


def tag_map(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList", [])}


def manual_snapshots(aws: Aws, region: str) -> dict[str, dict]:
    """Every manual DB snapshot in a region, by identifier."""
    pages = aws.client("rds", region).get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
    return {s["DBSnapshotIdentifier"]: s for page in pages for s in page["DBSnapshots"]}


@dataclass
class Inventory:
    """The manual snapshots of both regions at one moment: (region, id) -> snapshot."""

    snapshots: dict[tuple[str, str], dict]

    @classmethod
    def take(cls, aws: Aws) -> Inventory:
        return cls({(region, sid): s for region in (SOURCE, DESTINATION) for sid, s in manual_snapshots(aws, region).items()})

    def ours(self) -> set[tuple[str, str]]:
        return {key for key, s in self.snapshots.items() if tag_map(s).get(MANAGED_BY) == INSTANCE}

    def foreign(self) -> set[tuple[str, str]]:
        return set(self.snapshots) - self.ours()


@dataclass
class DatabaseResult:
    db: str
    snapshot: dict | None = None
    copy: dict | None = None
    # Its copy in the vault account.
    vault: dict | None = None
    export: dict | None = None
    # What the run reported for this database's failed steps: {step, Error, Cause} each.
    errors: list[dict] = field(default_factory=list)
    transitions: int = 0


@dataclass
class Report:
    execution: Execution
    databases: dict[str, DatabaseResult]
    deleted: list[tuple[str, str]]
    kept: list[tuple[str, str, float]]
    foreign_before: list[tuple[str, str]]
    foreign_missing: list[tuple[str, str]]
    sns_messages: list[dict]
    slack_messages: list[dict]
    metrics: list[tuple[str, str, float]]
    run_transitions: int = 0

    @property
    def succeeded(self) -> bool:
        return self.execution.status == "SUCCEEDED"

    def lines(self) -> list[str]:
        out = [f"execution {self.execution.arn}", f"  status {self.execution.status} in {self.execution.duration_seconds:.1f} s"]
        transitions = ", ".join(f"{db} {r.transitions}" for db, r in self.databases.items())
        out.append(f"  state transitions: {transitions}; outside the per-database Map {self.run_transitions}")
        for db, result in self.databases.items():
            out.append(f"database {db}")
            if result.snapshot:
                s = result.snapshot
                out.append(f"  snapshot   {s['DBSnapshotIdentifier']} ({s['Status']}) in {SOURCE}")
            if result.copy:
                c = result.copy
                out.append(f"  copy       {c['DBSnapshotIdentifier']} ({c['Status']}) in {DESTINATION}, KMS key {c.get('KmsKeyId', '-')}")
            if result.vault:
                v = result.vault
                account = v["DBSnapshotArn"].split(":")[4]
                out.append(f"  vault      {v['DBSnapshotIdentifier']} ({v['Status']}) in {SOURCE} of account {account}, "
                           f"KMS key {v.get('KmsKeyId', '-')}")
            if result.export:
                e = result.export
                out.append(f"  export     task {e['ExportTaskIdentifier']} ({e['Status']}) to s3://{e['S3Bucket']}/{e['S3Prefix']}/")
            for error in result.errors:
                out.append(f"  FAILED     step {error.get('step')}: {error.get('Error')}: {error_message(error.get('Cause'))}")
            if not (result.snapshot or result.errors):
                out.append("  no snapshot made by this execution")
        out.append(f"prune deleted {len(self.deleted)} snapshot(s) of this module:")
        out += [f"  - {sid} in {region}" for region, sid in self.deleted] or ["  (none)"]
        out.append(f"prune kept {len(self.kept)} older snapshot(s) of this module:")
        out += [f"  - {sid} in {region}, {age:.0f} days old" for region, sid, age in self.kept] or ["  (none)"]
        survived = len(self.foreign_before) - len(self.foreign_missing)
        out.append(f"foreign snapshots (not this module's): {survived} of {len(self.foreign_before)} untouched")
        out += [f"  ! {sid} in {region} is GONE" for region, sid in self.foreign_missing]
        out.append(f"SNS messages received ({len(self.sns_messages)}):")
        for message in self.sns_messages:
            out.append(f"  subject: {message.get('Subject')}")
            out += [f"    {line}" for line in str(message.get("Message", "")).splitlines()]
        out.append(f"Slack messages received ({len(self.slack_messages)}):")
        for message in self.slack_messages:
            out.append(f"  text: {message.get('text')}")
            out += [f"    {line}" for line in slack_block_lines(message)]
        out.append(f"metrics put ({len(self.metrics)}):")
        out += [f"  {name} {dimension} = {value:g}" for name, dimension, value in self.metrics]
        return out


def slack_block_lines(message: dict) -> list[str]:
    """The text of a Block Kit message's blocks, as Slack would show it, line by line."""
    texts = []
    for block in message.get("blocks", []):
        parts = [block.get("text")] + block.get("fields", []) + block.get("elements", [])
        texts += [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return [line for text in texts for line in text.splitlines()]


def collect(aws: Aws, outputs: dict, execution: Execution, before: Inventory, slack_seen: int) -> Report:
    after = Inventory.take(aws)
    now = datetime.now(UTC)
    transitions = execution.transitions()
    databases: dict[str, DatabaseResult] = {}
    for item in _selected_databases(execution):
        databases[item] = DatabaseResult(item, transitions=transitions.get(item, 0))
    for (region, _sid), snapshot in after.snapshots.items():
        tags = tag_map(snapshot)
        if tags.get(EXECUTION) != execution.arn or tags.get(MANAGED_BY) != INSTANCE:
            continue
        result = databases.setdefault(tags[SOURCE_DB], DatabaseResult(tags[SOURCE_DB]))
        if region == SOURCE:
            result.snapshot = snapshot
        else:
            result.copy = snapshot
    if outputs.get("vault_account_id"):
        for snapshot in manual_snapshots(Aws(aws.endpoint, account=outputs["vault_account_id"]), SOURCE).values():
            tags = tag_map(snapshot)
            if tags.get(EXECUTION) == execution.arn and tags.get(SOURCE_DB) in databases:
                databases[tags[SOURCE_DB]].vault = snapshot
    rds = aws.client("rds", SOURCE)
    for result in databases.values():
        if result.snapshot:
            tasks = rds.describe_export_tasks(SourceArn=result.snapshot["DBSnapshotArn"])["ExportTasks"]
            # (moto answers every task whatever the filter)
            result.export = next((t for t in tasks if t["SourceArn"] == result.snapshot["DBSnapshotArn"]), None)
    for db, errors in _failures(execution).items():
        databases.setdefault(db, DatabaseResult(db)).errors = errors

    ours_before = before.ours()
    deleted = sorted(ours_before - set(after.snapshots))
    kept = sorted(
        (region, sid, (now - created_at(before.snapshots[(region, sid)])).total_seconds() / 86400)
        for region, sid in ours_before & set(after.snapshots)
    )
    foreign_before = sorted(before.foreign())
    foreign_missing = sorted(set(foreign_before) - set(after.snapshots))
    slack = [m["message"] for m in control(aws.endpoint, "GET", "slack")[slack_seen:]]
    return Report(
        execution=execution,
        databases=databases,
        deleted=deleted,
        kept=kept,
        foreign_before=foreign_before,
        foreign_missing=foreign_missing,
        sns_messages=drain_queue(aws, outputs["notification_inbox_url"], SOURCE),
        slack_messages=slack,
        metrics=metrics_put(aws, outputs["metrics_namespace"], outputs["managed_by_tag_value"], execution),
        run_transitions=transitions.get(RUN, 0),
    )


def _selected_databases(execution: Execution) -> list[str]:
    """The databases of the run, as its select step chose them (defaults + input)."""
    entered = execution.entered("BackupDatabases")
    return entered[0].get("run", {}).get("databases", []) if entered else []


def _failures(execution: Execution) -> dict[str, list[dict]]:
    """The failed steps per database, as notify read them from the databases' executions."""
    return {
        db: [r[key] for key in ERROR_KEYS if isinstance(r.get(key), dict)]
        for db, r in execution.results().items()
        if any(isinstance(r.get(key), dict) for key in ERROR_KEYS)
    }


def created_at(snapshot: dict) -> datetime:
    """A snapshot's creation time, with its time zone."""
    created = snapshot["SnapshotCreateTime"]
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def metric_sums(endpoint: str, namespace: str, instance: str, start: datetime, end: datetime) -> dict[tuple[str, str], float]:
    """The data points one module instance put in a namespace between two instants, summed per
    metric and scope: (name, database, region or "(run)") -> sum. The instance's data points are those
    with dimension BackupInstance = `instance` (its managed-by value). Read from the local
    AWS's record of PutMetricData."""
    sums: dict[tuple[str, str], float] = {}
    for datum in control(endpoint, "GET", f"cloudwatch/metric-data?region={SOURCE}"):
        timestamp = datetime.fromisoformat(datum["timestamp"])
        timestamp = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        dimensions = dict(datum["dimensions"])
        if (datum["namespace"] != namespace or dimensions.pop("BackupInstance", None) != instance
                or not start <= timestamp <= end):
            continue
        # A database's, a region's (the storage prune kept there), or the run's.
        scope = dimensions.pop("DatabaseIdentifier", None) or dimensions.pop("Region", None) or RUN
        assert not dimensions, f"unexpected dimensions {dimensions} on {datum['name']}"
        value = datum["value"] if datum["value"] is not None else datum["sum"]
        sums[(datum["name"], scope)] = sums.get((datum["name"], scope), 0.0) + float(value)
    return sums


def metrics_put(aws: Aws, namespace: str, instance: str, execution: Execution) -> list[tuple[str, str, float]]:
    """The metrics the instance put during the execution: (name, database, region or "(run)", sum), sorted."""
    start = execution.description["startDate"] - timedelta(seconds=2)
    end = execution.description["stopDate"] + timedelta(seconds=2)
    sums = metric_sums(aws.endpoint, namespace, instance, start, end)
    return sorted((name, dimensions, value) for (name, dimensions), value in sums.items())


def restore_times(aws: Aws, outputs: dict) -> dict[str, float]:
    """Each database's RestoreTime (minutes) the instance's drills put, the latest of each."""
    times: dict[str, float] = {}
    for datum in control(aws.endpoint, "GET", f"cloudwatch/metric-data?region={SOURCE}"):
        dimensions = dict(datum["dimensions"])
        if (datum["namespace"] == outputs["metrics_namespace"] and datum["name"] == "RestoreTime"
                and dimensions.get("BackupInstance") == outputs["managed_by_tag_value"]
                and "DatabaseIdentifier" in dimensions):
            times[dimensions["DatabaseIdentifier"]] = float(datum["value"] if datum["value"] is not None else datum["sum"])
    return times
