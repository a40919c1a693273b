"""The fault matrix: every AWS action the functions call, failed by the gateway
with a throttle, an HTTP 500 and a connection reset, once and for good, through
the real state machine. Once, the run succeeds (the SDK's or the state
machine's retries absorb it); for good, only what depended on that call fails,
and it is reported naming the action, with nothing deleted that must be kept.

The deployment runs the production retry policy with three changes that only
shorten the waits: each retrier waits at most 1 s, the SDK makes 2 attempts
per call instead of 6, and prune's and notify's clients back off without the
adaptive rate limiter (`AWS_RETRY_MODE=standard`), which would otherwise slow
each throttled-for-good cell down to minutes. Prints the matrix of faults x outcome.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from harness import DESTINATION, SOURCE, LocalAwsTest, control

FAULTS = {
    "Throttling": lambda service: {"error_code": "ThrottlingException" if service == "states" else "Throttling",
                                   "http_status": 400, "message": "Rate exceeded"},
    "HTTP 500": lambda service: {"error_code": "InternalFailure", "http_status": 500, "message": "Internal failure"},
    "reset": lambda service: {"reset": True},
}
ONCE, PERSISTENT = "once", "persistent"
# The functions' SDK retries, shortened for the matrix (see the module's docstring).
FAST_RETRIES = (("AWS_MAX_ATTEMPTS", "2"), ("AWS_RETRY_MODE", "standard"))
# A database with an expired snapshot of ours and a recent one: prune may delete the first only.
EXPIRED, RECENT = "ours-expired", "ours-recent"


@dataclass(frozen=True)
class Action:
    """An AWS action as one function calls it; `match` picks its calls out of the
    others of the same action (request text; `{db}` is the database)."""

    function: str
    action: str
    region: str = SOURCE
    match: str | None = None
    # The step a database fails at when the action fails for good (None: the run's own steps).
    step: str | None = None

    @property
    def error_key(self) -> str:
        """Where a database's result records the failure: export and copy run side by side, each its own."""
        return {"export": "export_error", "wait_export": "export_error",
                "copy": "copy_error", "wait_copy": "copy_error"}.get(self.step, "error")
    # The quota pre-checks: when the quota cannot be read, the backup goes on without them (a warning).
    optional: bool = False
    # Another step that makes the same call, when it happens to (None: only `step` does).
    also_step: str | None = None

    @property
    def label(self) -> str:
        where = "" if self.region == SOURCE else f" ({self.region})"
        return f"{self.function}: {self.action}{where}"

    def fault(self, kind: str, count: int | None, db: str | None = None) -> dict:
        service = self.action.split(":")[0]
        match = self.match.format(db=db) if self.match else None
        return {"action": self.action, "count": count, "region": self.region, "match": match,
                **FAULTS[kind](service)}


# Calls made for one database: the fault is put on that database's calls only.
DATABASE_ACTIONS = [
    Action("snapshot", "rds:DescribeDBInstances", match="DBInstanceIdentifier={db}", step="snapshot"),
    Action("snapshot", "rds:CreateDBSnapshot", match="DBInstanceIdentifier={db}", step="snapshot"),
    Action("wait-for-available", "rds:DescribeDBSnapshots", match="DBSnapshotIdentifier={db}-", step="wait_snapshot"),
    # The snapshot's wait schedules its first poll (the schedule's input names the database).
    Action("wait-for-available", "scheduler:CreateSchedule", match="{db}-", step="wait_snapshot"),
    Action("export", "rds:StartExportTask", match="snapshot%3A{db}-", step="export"),
    # Export reads its own task by the same identifier when StartExportTask answers
    # ExportTaskAlreadyExists for it: a start tried again after its first try went through (an
    # attempt past the SDK's 30 s timeout, or an invocation tried again), seen in a loaded CI
    # run. The failure is then export's, for the same call.
    Action("wait-for-available", "rds:DescribeExportTasks", match="ExportTaskIdentifier={db}-", step="wait_export",
           also_step="export"),
    Action("copy", "rds:CopyDBSnapshot", region=DESTINATION, match="snapshot%3A{db}-", step="copy"),
    Action("wait-for-available", "rds:DescribeDBSnapshots", region=DESTINATION, match="DBSnapshotIdentifier={db}-",
           step="wait_copy"),
]
# Calls made once for every database, or once per run.
RUN_ACTIONS = [
    Action("snapshot", "rds:DescribeAccountAttributes", optional=True),
    Action("copy", "rds:DescribeAccountAttributes", region=DESTINATION, optional=True),
    # A poll's heartbeat and the wait's end name their task by its token alone: one database's run.
    Action("wait-for-available", "states:SendTaskHeartbeat", step="wait_snapshot"),
    Action("wait-for-available", "states:SendTaskSuccess", step="wait_snapshot"),
    Action("prune", "rds:DescribeDBSnapshots", match="SnapshotType=manual"),
    Action("prune", "rds:DescribeExportTasks", match="Filters."),
    Action("prune", "rds:DeleteDBSnapshot"),
    Action("notify", "monitoring:PutMetricData"),  # CloudWatch signs as `monitoring`
    Action("notify", "sns:Publish"),
    Action("notify", "states:DescribeExecution", match=":execution:dbbackup-local-database:"),
]


def database_name(index: int) -> str:
    # Equal lengths: no name is the start of another, so a match never hits two databases.
    return f"fault-{index:03d}"


# One database for each (action, fault) of one database: faulted calls match its name.
DATABASE_CASES = {case: database_name(i) for i, case in enumerate(
    (action, kind) for action in DATABASE_ACTIONS for kind in FAULTS)}


class FaultMatrix(LocalAwsTest):
    settings = LocalAwsTest.settings.with_(
        function_env=FAST_RETRIES, retry_delay_seconds=1, max_concurrency=40)
    # Half the usual speed: a failed wait is retried as a new wait, each of whose polls must
    # come within the 3-hour heartbeat, 36 real seconds here. At 600x (18 s) a loaded CI
    # machine once let one pass, and the wait failed States.Timeout instead of naming the call.
    clock_scale = 300
    databases = {"prod-database-1": "postgres"}
    # The run backs up prod-database-1 unless its input names some of the cases' databases,
    # which the module must list too (the input may select only among the module's databases).
    ONE = {"db_instance_ids": ["prod-database-1"]}

    @classmethod
    def deploy_settings(cls):
        return super().deploy_settings().with_(db_identifiers=("prod-database-1", *DATABASE_CASES.values()))
    matrix: dict[str, dict[str, str]] = {}

    @classmethod
    def tearDownClass(cls):
        columns = [f"{kind} {when}" for when in (ONCE, PERSISTENT) for kind in FAULTS]
        rows = [["action", *columns]] + [[label, *(outcomes.get(c, "-") for c in columns)]
                                         for label, outcomes in cls.matrix.items()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        print(f"\nFault matrix (outcome of a run with the fault; {len(cls.matrix)} actions x {len(columns)} faults):")
        for row in rows:
            print("  " + "  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths)))

    def record(self, action: Action, kind: str, when: str, outcome: str):
        FaultMatrix.matrix.setdefault(action.label, {})[f"{kind} {when}"] = outcome

    def seed_retention(self, db: str):
        """Our expired and recent snapshot of `db`, made again if a run deleted them."""
        present = self.manual_snapshots()
        for snapshot_id, age_days in ((f"{EXPIRED}-{db}", 40), (f"{RECENT}-{db}", 2)):
            if snapshot_id not in present:
                self.make_snapshot(db, snapshot_id, age_days, self.our_tags(db))

    def finish(self, arn: str):
        """The run, read once the faults are cleared (the reads go through the gateway too)."""
        self.wait_for_end(arn, timeout=300)
        control("DELETE", "faults")
        return self.execution(arn)

    def assert_kept(self, db: str, expired_may_go: bool):
        snapshots = self.manual_snapshots()
        self.assertIn(f"{RECENT}-{db}", snapshots, "a snapshot within retention was deleted")
        if not expired_may_go:
            self.assertIn(f"{EXPIRED}-{db}", snapshots)

    def test_calls_for_one_database_failed_once_then_for_good(self):
        names = DATABASE_CASES
        for db in names.values():
            self.create_database(db, "postgres")
        db_list = ["prod-database-1", *names.values()]

        # Once: every database is backed up.
        for (action, kind), db in names.items():
            control("POST", "faults", action.fault(kind, 1, db))
        run = self.wait(self.start_execution({"db_instance_ids": db_list}), timeout=300)
        unused = control("GET", "faults")
        control("DELETE", "faults")
        self.assertEqual(unused, [], "a call was never made")
        results = run.results()
        self.assertEqual(len(self.sns_messages()), 1)
        for (action, kind), db in names.items():
            with self.subTest(action=action.label, fault=kind, when=ONCE):
                self.assertNotIn("error", results[db])
                self.assertIn(results[db]["snapshot"]["snapshot_id"], self.manual_snapshots())
                self.record(action, kind, ONCE, "succeeded")
        self.assert_succeeded(run)

        # For good: that database fails at the step that made the call, named; the others are backed up.
        self.seed_retention("prod-database-1")
        for (action, kind), db in names.items():
            control("POST", "faults", action.fault(kind, None, db))
        run = self.finish(self.start_execution({"db_instance_ids": db_list, "min_snapshots_to_keep": 1}))
        self.assertEqual((run.status, run.description.get("error")), ("FAILED", "BackupFailed"))
        results = run.results()
        self.assertNotIn("error", results["prod-database-1"])
        [message] = self.sns_messages()
        for (action, kind), db in names.items():
            with self.subTest(action=action.label, fault=kind, when=PERSISTENT):
                error = results[db].get(action.error_key)
                self.assertIsNotNone(error, results[db])
                self.assertIn(error["step"], (action.step, action.also_step or action.step))
                self.assertIn(error["Error"], ("Throttled", "AwsUnavailable"))
                self.assertIn(action.action.split(":")[1], error["Cause"])
                self.assertIn(f"FAILED  {db} ", message["Message"])
                self.assertEqual(self.metric("BackupFailure", db), 1)
                if action.step in ("export", "wait_export", "copy", "wait_copy"):
                    # The source snapshot still succeeded and is reported.
                    self.assertIn(results[db]["snapshot"]["snapshot_id"], self.manual_snapshots())
                self.record(action, kind, PERSISTENT, f"{db} failed: {error['Error']}")
        self.assertNotIn(f"{EXPIRED}-prod-database-1", self.manual_snapshots())
        self.assert_kept("prod-database-1", expired_may_go=True)

    def test_calls_of_the_whole_run_failed_once_then_for_good(self):
        # Once: every action fails once in the same run; each fault is used up and the run succeeds.
        for kind in FAULTS:
            with self.subTest(fault=kind, when=ONCE):
                self.seed_retention("prod-database-1")
                for action in RUN_ACTIONS:
                    control("POST", "faults", action.fault(kind, 1))
                run = self.wait(self.start_execution({**self.ONE, "skip_export": True, "min_snapshots_to_keep": 1}),
                                timeout=300)
                unused = control("GET", "faults")
                control("DELETE", "faults")
                self.assertEqual(unused, [], "an action was never called")
                self.assert_succeeded(run)
                self.assertEqual(len(self.sns_messages()), 1)
                for action in RUN_ACTIONS:
                    self.record(action, kind, ONCE, "succeeded")
        # For good: one action per run.
        for action in RUN_ACTIONS:
            for kind in FAULTS:
                with self.subTest(action=action.label, fault=kind, when=PERSISTENT):
                    started = time.monotonic()
                    outcome = self.run_with_fault(action, kind)
                    self.record(action, kind, PERSISTENT, f"{outcome} ({time.monotonic() - started:.0f} s)")
                control("DELETE", "faults")

    def run_with_fault(self, action: Action, kind: str) -> str:
        """One run with the action failing for good; asserts its outcome and says it in a few words."""
        self.seed_retention("prod-database-1")
        self.sns_messages()
        control("DELETE", "slack")
        succeeded_before = self.metric("BackupSuccess", "prod-database-1") or 0
        failed_before = self.metric("BackupFailure", "prod-database-1") or 0
        control("POST", "faults", action.fault(kind, None))
        run = self.finish(self.start_execution({**self.ONE, "skip_export": True, "skip_copy": action.function != "copy",
                                                "min_snapshots_to_keep": 1}))
        messages = self.sns_messages()
        if action.optional:
            self.assert_succeeded(run)
            self.assertEqual(len(messages), 1)
            self.assertIn(run.result_of("prod-database-1", "snapshot")["snapshot_id"], self.manual_snapshots())
            return "succeeded, quota unchecked"

        self.assertEqual(run.status, "FAILED", run.description)
        self.assert_kept("prod-database-1", expired_may_go=action.function != "prune")
        name = action.action.split(":")[1]
        if action.step is not None:
            # One database, failed at that step, the action named in the message.
            error = run.result_of("prod-database-1", action.error_key)
            self.assertEqual(error["step"], action.step)
            self.assertIn(name, json.dumps(error))
            [message] = messages
            self.assertIn("FAILED  prod-database-1", message["Message"])
            self.assertIn(name, message["Message"])
            self.assertEqual(self.metric("BackupFailure", "prod-database-1") - failed_before, 1)
            return f"database failed: {error['Error']}"
        if action.action == "states:DescribeExecution":
            # The database's result cannot be read: it counts as failed, never as a success.
            [message] = messages
            self.assertIn("FAILED  prod-database-1", message["Message"])
            self.assertIn(name, message["Message"])
            self.assertEqual(self.metric("BackupFailure", "prod-database-1") - failed_before, 1)
            return "database failed: result unread"
        if action.function == "prune":
            prune_error = run.report()["prune_error"]
            self.assertIn(name, prune_error["Cause"])
            [message] = messages
            self.assertIn("FAILED  retention (prune)", message["Message"])
            self.assertIn(name, message["Message"])
            return f"prune failed: {prune_error['Error']}"
        # notify's own delivery: the execution fails naming what was not delivered; the rest went out.
        self.assertEqual(run.description["error"], "NotificationFailed")
        self.assertIn(name, run.description["cause"])
        if action.action == "sns:Publish":
            self.assertEqual(messages, [])
            self.assertEqual(self.metric("BackupSuccess", "prod-database-1") - succeeded_before, 1)
        else:
            self.assertEqual(len(messages), 1)
        self.assertEqual(len(self.slack_messages()), 1)
        return "run failed: NotificationFailed"


class SlackFails(LocalAwsTest):
    """Slack answering an error or hanging never holds up the SNS message or the metrics."""

    databases = {"prod-database-1": "postgres"}

    def run_with_slack(self, settings: dict) -> tuple:
        control("PUT", "settings", settings)
        run = self.run_execution({"skip_export": True, "skip_copy": True})
        notify = [i for i in control("GET", "invocations") if i["function"].endswith("-notify")]
        return run, notify

    def test_slack_answering_500_leaves_sns_and_metrics(self):
        run, _ = self.run_with_slack({"slack_status": 500})
        self.assert_succeeded(run)
        self.assertEqual(json.loads(run.description["output"])["slack"], "failed")
        self.assertEqual(len(self.sns_messages()), 1)
        self.assertEqual(self.metric("BackupSuccess", "prod-database-1"), 1)

    def test_slack_hanging_is_given_up_within_the_functions_timeout(self):
        run, notify = self.run_with_slack({"slack_delay_seconds": 30})
        self.assert_succeeded(run)
        self.assertEqual(json.loads(run.description["output"])["slack"], "failed")
        self.assertEqual(len(self.sns_messages()), 1)
        # notify gives Slack 10 s, well inside its 60 s timeout.
        self.assertLess(max(i["duration_ms"] for i in notify), 15_000, notify)


class FunctionTimesOut(LocalAwsTest):
    databases = {"prod-database-1": "postgres", "prod-database-2": "mysql"}
    settings = LocalAwsTest.settings.with_(timeouts=(("snapshot", 2),), retry_delay_seconds=1)

    def test_a_function_over_its_timeout_fails_its_database_only_named(self):
        control("POST", "faults", {"action": "rds:CreateDBSnapshot", "match": "DBInstanceIdentifier=prod-database-1",
                                   "delay_seconds": 4, "count": None})
        run = self.run_execution({"skip_export": True, "skip_copy": True})
        control("DELETE", "faults")
        self.assertEqual(run.status, "FAILED")
        results = run.results()
        error = results["prod-database-1"]["error"]
        self.assertEqual((error["step"], error["Error"]), ("snapshot", "Sandbox.Timedout"))
        self.assertNotIn("error", results["prod-database-2"])
        [message] = self.sns_messages()
        self.assertIn("FAILED  prod-database-1 at snapshot: Sandbox.Timedout", message["Message"])
        self.assertEqual(self.metric("BackupFailure", "prod-database-1"), 1)


class DestinationRegionDown(LocalAwsTest):
    """Every RDS call to the copy region loses its connection: the source backup is
    made and reported, the copy's failure is named, prune keeps everything there."""

    databases = {"prod-database-1": "postgres"}
    settings = LocalAwsTest.settings.with_(function_env=FAST_RETRIES, retry_delay_seconds=1)

    def test_the_source_backup_succeeds_and_the_copy_failure_is_named(self):
        for action in ("CopyDBSnapshot", "DescribeAccountAttributes", "DescribeDBSnapshots",
                       "DescribeDBClusterSnapshots", "DescribeExportTasks", "DeleteDBSnapshot"):
            control("POST", "faults", {"action": f"rds:{action}", "region": DESTINATION, "reset": True, "count": None})
        run = self.wait(self.start_execution(), timeout=300)
        control("DELETE", "faults")
        self.assertEqual(run.status, "FAILED")
        item = run.results()["prod-database-1"]
        self.assertIn(item["snapshot"]["snapshot_id"], self.manual_snapshots())
        task = self.rds.describe_export_tasks(ExportTaskIdentifier=item["export"]["export_task_id"])["ExportTasks"][0]
        self.assertEqual(task["Status"], "COMPLETE")
        error = item["copy_error"]
        self.assertEqual((error["step"], error["Error"]), ("copy", "AwsUnavailable"))
        self.assertIn("CopyDBSnapshot", error["Cause"])
        [message] = self.sns_messages()
        self.assertIn(f"snapshot {item['snapshot']['snapshot_id']} ({SOURCE})", message["Message"])
        self.assertIn("at copy: AwsUnavailable: CopyDBSnapshot", message["Message"])
