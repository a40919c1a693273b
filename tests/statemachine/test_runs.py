"""Executions of the real state machine with the real functions, in the local
AWS: the paths a run can take, asserted on the execution history and on the
emulated AWS state."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import escape

from harness import DESTINATION, MANAGED_BY, SOURCE_DB, LocalAwsTest, control, endpoint, planned


def state_name(event: dict) -> str | None:
    details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
    return details["name"] if details else None


def tag_map(snapshot: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}


class AllDatabasesSucceed(LocalAwsTest):
    def test_snapshots_copies_exports_prune_and_one_notification(self):
        # Before the run: one expired snapshot of ours per database, one recent
        # one, and a foreign expired one that prune must never touch.
        self.make_snapshot("prod-database-1", "ours-expired-1", 40, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-2", "ours-expired-2", 35, self.our_tags("prod-database-2"))
        self.make_snapshot("prod-database-1", "ours-recent-1", 2, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-1", "foreign-expired", 90, [{"Key": "owner", "Value": "dba"}])

        run = self.run_execution({"min_snapshots_to_keep": 1})

        self.assert_succeeded(run)
        self.assertEqual(run.lambda_failures(), [])
        results = run.results()
        self.assertEqual(set(results), {"prod-database-1", "prod-database-2"})
        source = self.manual_snapshots()
        copies = self.manual_snapshots(self.rds_destination)
        tasks = {t["ExportTaskIdentifier"]: t for t in self.rds.describe_export_tasks()["ExportTasks"]}
        for db, item in results.items():
            self.assertNotIn("error", item)
            snapshot_id = item["snapshot"]["snapshot_id"]
            self.assertRegex(snapshot_id, rf"^{db}-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}$")
            tags = tag_map(source[snapshot_id])
            self.assertEqual(tags[MANAGED_BY], self.instance)
            self.assertEqual(tags[SOURCE_DB], db)
            self.assertEqual(tags["database-backup:execution"], run.arn)
            self.assertEqual(item["copy"]["region"], DESTINATION)
            self.assertIn(item["copy"]["snapshot_id"], copies)
            self.assertEqual(tag_map(copies[item["copy"]["snapshot_id"]])[SOURCE_DB], db)
            self.assertEqual(tasks[item["export"]["export_task_id"]]["SourceArn"], item["snapshot"]["snapshot_arn"])
            self.assertEqual(tasks[item["export"]["export_task_id"]]["S3Bucket"], self.deployment.export_bucket)

        # Prune: only our expired snapshots went; ours within retention and the foreign one stay.
        self.assertNotIn("ours-expired-1", source)
        self.assertNotIn("ours-expired-2", source)
        self.assertIn("ours-recent-1", source)
        self.assertIn("foreign-expired", source)
        prune = run.report()["prune"]
        deleted = sorted(d for region in prune["regions"] for d in region["deleted"])
        self.assertEqual(deleted, ["ours-expired-1", "ours-expired-2"])

        messages = self.sns_messages()
        self.assertEqual(len(messages), 1, messages)
        self.assertTrue(messages[0]["Subject"].startswith("[SUCCEEDED]"), messages[0]["Subject"])
        self.assertIn("2 of 2 database backups succeeded", messages[0]["Subject"])
        self.assertEqual(len(self.slack_messages()), 1)
        for db in results:
            self.assertEqual((self.metric("BackupSuccess", db), self.metric("BackupFailure", db)), (1, 0))
        self.assertEqual(run.exited_output("BackupSucceeded")[0]["succeeded"], 2)


class DryRun(LocalAwsTest):
    databases = {"prod-database-1": "mysql"}

    def test_a_dry_run_reports_what_it_would_delete_and_deletes_nothing(self):
        self.make_snapshot("prod-database-1", "ours-expired-1", 40, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-1", "ours-expired-2", 35, self.our_tags("prod-database-1"))

        run = self.run_execution({"dry_run": True, "min_snapshots_to_keep": 1, "skip_export": True, "skip_copy": True})

        self.assert_succeeded(run)
        prune = run.report()["prune"]
        self.assertIs(prune["dry_run"], True)
        would = sorted(s for region in prune["regions"] for s in region["would_delete"])
        self.assertEqual(would, ["ours-expired-1", "ours-expired-2"])
        self.assertEqual([s for region in prune["regions"] for s in region["deleted"]], [])
        self.assertLessEqual({"ours-expired-1", "ours-expired-2"}, set(self.manual_snapshots()))


class AnEarlierInstancesSnapshots(LocalAwsTest):
    """Snapshots an earlier instance made (1.0's managed-by value <project>-<environment>, or an
    instance since renamed): left alone until adopted, then pruned by this instance's retention."""
    databases = {"prod-database-1": "mysql"}
    settings = LocalAwsTest.settings.with_(adopted=("dbbackup-local",))

    def test_adopted_snapshots_are_pruned_by_retention_and_the_others_left_alone(self):
        def made_by(instance: str) -> list[dict]:
            return [{"Key": MANAGED_BY, "Value": instance}, {"Key": SOURCE_DB, "Value": "prod-database-1"}]

        self.make_snapshot("prod-database-1", "adopted-expired-1", 40, made_by("dbbackup-local"))
        self.make_snapshot("prod-database-1", "adopted-expired-2", 50, made_by("dbbackup-local"))
        self.make_snapshot("prod-database-1", "adopted-recent", 2, made_by("dbbackup-local"))
        self.make_snapshot("prod-database-1", "not-adopted-expired", 60, made_by("dbbackup-retired"))

        run = self.run_execution({"min_snapshots_to_keep": 1, "skip_export": True, "skip_copy": True})

        self.assert_succeeded(run)
        deleted = sorted(d for region in run.report()["prune"]["regions"] for d in region["deleted"])
        self.assertEqual(deleted, ["adopted-expired-1", "adopted-expired-2"])
        self.assertLessEqual({"adopted-recent", "not-adopted-expired"}, set(self.manual_snapshots()))


class AuroraCluster(LocalAwsTest):
    databases = {"prod-aurora-1": "aurora-postgresql", "prod-database-1": "postgres"}

    def test_a_cluster_is_snapshotted_exported_copied_and_kept_as_a_cluster(self):
        run = self.run_execution({"min_snapshots_to_keep": 1})

        self.assert_succeeded(run)
        item = run.results()["prod-aurora-1"]
        self.assertNotIn("error", item)
        self.assertEqual(item["snapshot"]["kind"], "cluster")
        snapshot_id = item["snapshot"]["snapshot_id"]
        source = self.rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        self.assertEqual([s["DBClusterSnapshotIdentifier"] for s in source], [snapshot_id])
        self.assertEqual(tag_map(source[0])[MANAGED_BY], self.instance)
        self.assertEqual(tag_map(source[0])[SOURCE_DB], "prod-aurora-1")
        # The database's execution polled the cluster snapshot as a cluster snapshot.
        child = next(c for c in run.children if '"prod-aurora-1"' in c.description["input"])
        payloads = [json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"] for e in child.history
                    if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"]
        polled = {(p["resource"], p.get("region")) for p in payloads if "resource" in p}
        self.assertEqual(polled, {("cluster_snapshot", "us-east-1"), ("cluster_snapshot", DESTINATION), ("export_task", None)})
        copies = self.rds_destination.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        copy = {c["DBClusterSnapshotIdentifier"]: c for c in copies}[item["copy"]["snapshot_id"]]
        self.assertEqual((item["copy"]["kind"], item["copy"]["region"]), ("cluster", DESTINATION))
        self.assertEqual(tag_map(copy)[MANAGED_BY], self.instance)
        task = self.rds.describe_export_tasks(ExportTaskIdentifier=item["export"]["export_task_id"])["ExportTasks"][0]
        self.assertEqual(task["SourceArn"], item["snapshot"]["snapshot_arn"])
        # Prune lists cluster snapshots too: the only one of the cluster is its newest, kept.
        kept = {k["snapshot_id"]: k["reason"] for region in run.report()["prune"]["regions"] for k in region["kept"]}
        self.assertEqual(kept[snapshot_id], "newest_of_database")
        self.assertEqual((self.metric("BackupSuccess", "prod-aurora-1"), self.metric("BackupFailure", "prod-aurora-1")),
                         (1, 0))


class AuroraClusterWithTheLongestName(LocalAwsTest):
    """RDS takes cluster snapshot identifiers of 63 characters at most (the local AWS too):
    a cluster's own 63-character name leaves no room for the date."""

    databases = {"a" * 62 + "1": "aurora-postgresql"}

    def test_its_snapshot_and_copy_are_named_within_the_limit(self):
        run = self.run_execution()

        self.assert_succeeded(run)
        item = run.results()["a" * 62 + "1"]
        self.assertNotIn("error", item)
        for record in (item["snapshot"], item["copy"]):
            self.assertLessEqual(len(record["snapshot_id"]), 63)
            self.assertTrue(record["snapshot_id"].startswith("a" * 40), record["snapshot_id"])
        self.assertEqual(item["copy"]["snapshot_id"], item["snapshot"]["snapshot_id"])


class UnencryptedDatabases(LocalAwsTest):
    """An unencrypted database's snapshot is copied as it is: RDS refuses a key for an
    unencrypted cluster snapshot (the local AWS too), and the copy is reported as RDS made it."""

    databases = {"plain-aurora-1": "aurora-postgresql", "plain-database-1": "postgres"}
    storage_encrypted = False

    def test_each_copy_is_made_without_a_key_and_reported_unencrypted(self):
        run = self.run_execution({"skip_export": True, "skip_prune": True})

        self.assert_succeeded(run)
        for db, item in run.results().items():
            self.assertNotIn("copy_error", item, db)
            self.assertIs(item["copy"]["encrypted"], False, db)
        [cluster_copy] = self.rds_destination.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        [instance_copy] = self.rds_destination.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        self.assertIs(cluster_copy["StorageEncrypted"], False)
        self.assertIs(instance_copy["Encrypted"], False)


class ExportThatSkippedTables(LocalAwsTest):
    """RDS completes an export that skipped tables and says so in WarningMessage (the
    gateway adds it to moto's answer, as RDS would for, e.g., a PostgreSQL unlogged table):
    the run reports it by database, never as a silent success."""

    databases = {"prod-database-1": "postgres"}
    WARNING = '{"skippedTables":["public.sessions"],"skippedObjectives":[],"general":[]}'

    def test_the_warning_reaches_the_result_the_summary_and_the_metric(self):
        control("POST", "faults", {"action": "rds:DescribeExportTasks", "count": None, "replace": [
            "<Status>COMPLETE</Status>", f"<Status>COMPLETE</Status><WarningMessage>{escape(self.WARNING)}</WarningMessage>"]})
        run = self.run_execution({"skip_copy": True, "skip_prune": True})
        control("DELETE", "faults")

        self.assert_succeeded(run)
        self.assertEqual(run.result_of("prod-database-1", "export_warning"), self.WARNING)
        [message] = self.sns_messages()
        self.assertIn(f"export WARNING (RDS skipped data): {self.WARNING}", message["Message"])
        self.assertEqual(self.metric("ExportWarnings", "prod-database-1"), 1)


class ThrottledSnapshot(LocalAwsTest):
    # One SDK attempt per call: each throttle reaches the state machine's retrier.
    settings = LocalAwsTest.settings.with_(function_env=(("AWS_MAX_ATTEMPTS", "1"),))
    databases = {"prod-database-1": "postgres"}

    def test_create_snapshot_throttled_twice_is_retried_then_succeeds(self):
        control("POST", "faults", {"action": "rds:CreateDBSnapshot", "count": 2, "error_code": "Throttling",
                                   "message": "Rate exceeded"})

        run = self.run_execution({"skip_export": True, "skip_copy": True})

        self.assert_succeeded(run)
        self.assertEqual(run.lambda_failures(), ["Throttled", "Throttled"])
        self.assertEqual(run.entered("Snapshot"), 1)
        self.assertEqual(self.calls("rds:CreateDBSnapshot"), 3)
        snapshot_id = run.result_of("prod-database-1", "snapshot")["snapshot_id"]
        self.assertIn(snapshot_id, self.manual_snapshots())


class ThrottledFunction(LocalAwsTest):
    # Real time: the local AWS limits a function to its reserved concurrency only off the clock.
    clock_scale = 0
    databases = {f"prod-database-{n}": "postgres" for n in (1, 2, 3)}

    @classmethod
    def deploy_settings(cls):
        # Off the clock a wait's first poll comes the interval later in real time: the shortest
        # (and a bound that keeps its polls within the history select allows).
        return super().deploy_settings().with_(poll_interval_seconds=5, wait_timeout_seconds=600)

    def test_invocations_beyond_the_reservation_are_retried_and_every_database_succeeds(self):
        # The module's default reservation, which the deployment applies.
        functions = planned(self.deploy_settings()).addresses("aws_lambda_function")
        self.assertEqual({f["reserved_concurrent_executions"] for f in functions.values()}, {1})
        # Each snapshot holds the function's one reserved execution for a second.
        control("POST", "faults", {"action": "rds:CreateDBSnapshot", "count": 3, "delay_seconds": 1})

        run = self.run_execution({"skip_export": True, "skip_copy": True})

        self.assert_succeeded(run)
        throttles = control("GET", "lambda/throttles")
        self.assertGreater(throttles.get("dbbackup-local-snapshot", 0), 0, throttles)
        self.assertEqual(set(run.lambda_failures()), {"Lambda.TooManyRequestsException"})
        self.assertEqual(run.entered("Snapshot"), 3)
        self.assertEqual(self.calls("rds:CreateDBSnapshot"), 3)


class MissingDatabase(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    @classmethod
    def deploy_settings(cls):
        return super().deploy_settings().with_(db_identifiers=("prod-database-1", "no-such-database"))

    def test_the_other_databases_are_backed_up_and_the_failure_is_reported(self):
        run = self.run_execution()

        self.assertEqual(run.status, "FAILED")
        self.assertEqual(run.description["error"], "BackupFailed")
        self.assertIn("1 of 2 database backups succeeded", run.description["cause"])
        results = run.results()
        failed = results["no-such-database"]
        self.assertEqual(failed["error"]["step"], "snapshot")
        self.assertEqual(failed["error"]["Error"], "DatabaseNotFound")
        self.assertIn("no-such-database", failed["error"]["Cause"])
        self.assertNotIn("error", results["prod-database-1"])
        self.assertIn(results["prod-database-1"]["snapshot"]["snapshot_id"], self.manual_snapshots())

        messages = self.sns_messages()
        self.assertEqual(len(messages), 1)
        self.assertIn("FAILED  no-such-database at snapshot: DatabaseNotFound", messages[0]["Message"])
        slack = self.slack_messages()
        self.assertEqual(len(slack), 1)
        self.assertIn("no-such-database", json.dumps(slack[0]))
        self.assertEqual(self.metric("BackupFailure", "no-such-database"), 1)
        self.assertEqual(self.metric("BackupFailure", "prod-database-1"), 0)
        self.assertEqual(self.metric("BackupSuccess", "prod-database-1"), 1)


class DatabaseExecutions(LocalAwsTest):
    """Each database is backed up by its own execution of the database state
    machine; the run holds one task per database and reads no result itself."""

    SKIP_ALL = {"skip_export": True, "skip_copy": True, "skip_prune": True}

    def test_each_database_runs_in_its_own_execution(self):
        run = self.run_execution(self.SKIP_ALL)

        self.assert_succeeded(run)
        inputs = [json.loads(child.description["input"]) for child in run.children]
        self.assertEqual(sorted(i["db_identifier"] for i in inputs), sorted(self.databases))
        for child, started in zip(run.children, inputs):
            self.assertEqual(child.status, "SUCCEEDED")
            self.assertEqual(started["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"], run.arn)
            self.assertEqual(started["execution"]["execution_id"], run.arn, "snapshots are named and tagged by the run")
            self.assertIn("Snapshot", {e["stateEnteredEventDetails"]["name"] for e in child.history
                                       if e["type"].endswith("StateEntered")})
        # The run's own history: 8 events per database (Map iteration, the task waiting for the
        # execution), none of the database's states; its Map result: identifier and execution name.
        per_database = Counter(e["type"] for e in run.history if e["type"].startswith(("MapIteration", "Task"))
                               and state_name(e) in (None, "BackupDatabase"))
        self.assertEqual(sum(per_database.values()), 8 * len(self.databases), per_database)
        self.assertEqual(run.entered("Snapshot"), len(self.databases))
        self.assertNotIn("Snapshot", {e["stateEnteredEventDetails"]["name"] for e in run.history
                                      if e["type"].endswith("StateEntered")})
        self.assertEqual([set(item) for item in run.report()["results"]], [{"db_identifier", "execution_name"}] * 2)

    def test_a_refused_start_is_retried(self):
        control("POST", "faults", {"action": "states:StartExecution", "count": 1, "http_status": 400,
                                   "error_code": "ExecutionLimitExceeded", "message": "Maximum executions reached",
                                   "match": "prod-database-2"})

        run = self.run_execution(self.SKIP_ALL)

        self.assert_succeeded(run)
        # The run's own start, one per database, and the retry.
        self.assertEqual(self.calls("states:StartExecution"), 4)
        self.assertEqual(len(run.children), 2)
        # Named as Step Functions names it (not moto's StepFunctions.ExecutionLimitExceededException).
        self.assertEqual([e["taskFailedEventDetails"]["error"] for e in run.history if e["type"] == "TaskFailed"],
                         ["StepFunctions.ExecutionLimitExceeded"])

    def test_a_database_whose_execution_cannot_start_fails_alone_and_is_reported(self):
        control("POST", "faults", {"action": "states:StartExecution", "count": None, "http_status": 400,
                                   "error_code": "AccessDeniedException", "match": "prod-database-2",
                                   "message": "not authorized to perform: states:StartExecution"})

        run = self.run_execution(self.SKIP_ALL)

        self.assertEqual(run.status, "FAILED")
        results = run.results()
        self.assertNotIn("error", results["prod-database-1"])
        error = results["prod-database-2"]["error"]
        self.assertEqual(error["step"], "start_database_execution")
        self.assertIn("not authorized to perform: states:StartExecution", error["Cause"])
        message = self.sns_messages()[0]["Message"]
        self.assertIn("FAILED  prod-database-2 at start_database_execution: StepFunctions.AccessDenied", message)
        self.assertIn("not authorized to perform: states:StartExecution", message)
        self.assertEqual(self.metric("BackupFailure", "prod-database-2"), 1)
        self.assertEqual(self.metric("BackupSuccess", "prod-database-1"), 1)

    def test_a_database_execution_stopped_from_the_console_fails_that_database_and_is_reported(self):
        # prod-database-1's snapshot stays `creating`: its execution waits until someone stops it.
        control("POST", "faults", {"action": "rds:DescribeDBSnapshots", "count": None, "match": "prod-database-1-",
                                   "replace": ["<Status>available</Status>", "<Status>creating</Status>"]})
        arn = self.start_execution(self.SKIP_ALL)
        deadline = time.monotonic() + 60
        while True:
            running = self.sfn.list_executions(stateMachineArn=self.deployment.database_state_machine_arn,
                                               statusFilter="RUNNING")["executions"]
            waiting = [e for e in running if '"prod-database-1"' in self.sfn.describe_execution(
                executionArn=e["executionArn"])["input"]]
            # Stopped while it waits (its wait's task entered), as a DBA would find it.
            if waiting and any(e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] ==
                               "WaitForSnapshot" for e in self.sfn.get_execution_history(
                    executionArn=waiting[0]["executionArn"], maxResults=1000)["events"]):
                break
            self.assertLess(time.monotonic(), deadline, "prod-database-1's execution never started")
            time.sleep(0.25)
        self.sfn.stop_execution(executionArn=waiting[0]["executionArn"], error="Stopped", cause="stopped by a DBA")

        run = self.wait(arn)

        self.assertEqual(run.status, "FAILED")
        results = run.results()
        self.assertEqual(results["prod-database-1"]["error"], {"step": "database_execution", "Error": "States.TaskFailed"})
        self.assertNotIn("error", results["prod-database-2"])
        messages = self.sns_messages()
        self.assertEqual(len(messages), 1)
        self.assertIn(f"FAILED  prod-database-1 at database_execution: ExecutionAborted: the execution "
                      f"{waiting[0]['executionArn']} ended ABORTED", messages[0]["Message"])
        self.assertEqual(self.metric("BackupFailure", "prod-database-1"), 1)
        # The stopped wait's polls stop: the next one finds its task closed and schedules none.
        deadline = time.monotonic() + 30
        while not any('"task_ended"' in i["output"] for i in self.wait_invocations()):
            self.assertLess(time.monotonic(), deadline, "the stopped wait's polls went on")
            time.sleep(0.25)
        polls = len(self.wait_invocations())
        time.sleep(2)  # 20 simulated minutes
        self.assertEqual(len(self.wait_invocations()), polls)

    def wait_invocations(self) -> list[dict]:
        return [i for i in control("GET", "invocations") if i["function"].endswith("-wait-for-available")]


class SnapshotQuotaExhausted(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_a_clear_failure_and_nothing_deleted(self):
        self.make_snapshot("prod-database-1", "ours-recent-1", 1, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-1", "foreign-old", 400, [])
        control("PUT", "settings", {"snapshot_limit": 2})
        before = set(self.manual_snapshots())

        run = self.run_execution()

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "error")
        self.assertEqual(error["Error"], "SnapshotQuotaExceeded")
        self.assertIn("2 of 2", error["Cause"])
        self.assertEqual(self.calls("rds:CreateDBSnapshot"), 0)
        self.assertEqual(set(self.manual_snapshots()), before)
        self.assertEqual(self.calls("rds:DeleteDBSnapshot"), 0)
        self.assertIn("SnapshotQuotaExceeded", self.sns_messages()[0]["Message"])


class BranchesSkippedByInput(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_copy_and_export_disabled_by_input_are_skipped(self):
        run = self.run_execution({"skip_copy": True, "skip_export": True, "skip_prune": True})

        self.assert_succeeded(run)
        self.assertEqual((run.entered("Copy"), run.entered("Export"), run.entered("Prune")), (0, 0, 0))
        self.assertEqual((run.entered("CopySkipped"), run.entered("ExportSkipped")), (1, 1))
        item = run.results()["prod-database-1"]
        self.assertNotIn("copy", item)
        self.assertNotIn("export", item)
        self.assertEqual(self.manual_snapshots(self.rds_destination), {})
        self.assertEqual(self.rds.describe_export_tasks()["ExportTasks"], [])
        self.assertIn("retention (prune) was skipped", self.sns_messages()[0]["Message"])


class DatabasesFromInput(LocalAwsTest):
    databases = {"prod-database-1": "postgres", "prod-database-9": "postgres"}

    def test_a_subset_of_databases_from_input(self):
        run = self.run_execution({"db_instance_ids": ["prod-database-9"], "skip_copy": True, "skip_export": True})

        self.assert_succeeded(run)
        self.assertEqual(set(run.results()), {"prod-database-9"})


class WaitBoundExceeded(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_a_snapshot_slower_than_its_bound_fails_its_item(self):
        # A snapshot that takes ten simulated hours (local_aws/operations.py's model; a minute of
        # real time, so that a slow machine's polls cannot outlast it): the bound is one minute,
        # two polls of 30 s.
        control("PUT", "settings", {"snapshot_base_seconds": 36_000})
        run = self.run_execution({"snapshot_wait_timeout_seconds": 60})

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "error")
        self.assertEqual(error["step"], "wait_snapshot")
        self.assertEqual(error["Error"], "WaitTimedOut")
        # The poll at the bound finds it unfinished (its time includes the calls' own, on the clock).
        waited = re.search(r"was still creating \(\d+% done\) after (\d+) seconds, the bound set by "
                           "snapshot_wait_timeout_seconds", error["Cause"])
        self.assertIsNotNone(waited, error["Cause"])
        self.assertGreaterEqual(int(waited.group(1)), 60)
        # One task, whose call schedules the polls: one at the start, one or none between (as the
        # clock went), one at the bound.
        self.assertEqual(run.entered("WaitForSnapshot"), 1)
        polls = [i for i in control("GET", "invocations") if i["function"].endswith("-wait-for-available")]
        self.assertIn(len(polls) - 1, (2, 3))
        self.assertEqual(run.entered("Copy") + run.entered("Export"), 0)
        self.assertEqual(len(self.sns_messages()), 1)


class BrokenPollChain(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_a_wait_whose_polls_stop_fails_at_its_heartbeat_not_at_its_bound(self):
        # The first poll cannot schedule the second (CreateSchedule of `<name>-2` refused for
        # good; Lambda's own retries of the poll meet the same): nothing polls any more. The
        # task's HeartbeatSeconds (3 simulated hours, 18 real seconds) fails it, long before
        # the 24-hour bound: "a Task state ... failed to send a heartbeat for a period longer
        # than the HeartbeatSeconds value" is States.Timeout (Step Functions error names).
        # (With a 6-hour bound a loaded machine's delays, 24 real seconds in one CI run, made
        # the heartbeat's failure come past the bound's time, though first.)
        control("PUT", "settings", {"snapshot_base_seconds": 36_000})
        control("POST", "faults", {"action": "scheduler:CreateSchedule", "count": None, "match": "-2?",
                                   "error_code": "InternalServerException", "http_status": 500,
                                   "message": "Internal failure"})
        run = self.run_execution({"skip_export": True, "skip_copy": True, "snapshot_wait_timeout_seconds": 24 * 3600})

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "error")
        self.assertEqual((error["step"], error["Error"]), ("wait_snapshot", "States.Timeout"))
        # On the clock (the executions' dates are simulated): the heartbeat, then the run's end.
        [child] = run.children
        waited = (child.description["stopDate"] - child.description["startDate"]).total_seconds()
        self.assertGreaterEqual(waited, 3 * 3600)
        self.assertLess(waited, 12 * 3600)


class FunctionCrashes(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_invalid_configuration_is_caught_and_notify_still_runs(self):
        self.set_function_env("copy", "COPY_DESTINATION_REGION", "not a region")

        run = self.run_execution({"skip_export": True})

        self.assertEqual(run.status, "FAILED")
        item = run.results()["prod-database-1"]
        self.assertEqual(item["copy_error"]["Error"], "ConfigError")
        self.assertIn("COPY_DESTINATION_REGION", item["copy_error"]["Cause"])
        self.assertIn(item["snapshot"]["snapshot_id"], self.manual_snapshots())
        self.assertEqual(run.entered("Notify"), 1)
        self.assertEqual(len(self.sns_messages()), 1)

    def test_a_runtime_that_exits_is_caught_and_notify_still_runs(self):
        lambda_client = self.aws.client("lambda", "us-east-1")
        lambda_client.update_function_code(
            FunctionName=self.deployment.function_arns["wait-for-available"], ZipFile=exiting_bootstrap()
        )

        run = self.run_execution({"skip_export": True, "skip_copy": True})

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "error")
        self.assertEqual((error["step"], error["Error"]), ("wait_snapshot", "Runtime.ExitError"))
        self.assertEqual(run.entered("Notify"), 1)
        self.assertIn("Runtime.ExitError", self.sns_messages()[0]["Message"])


class InvalidInput(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_a_wrong_input_is_refused_before_any_aws_call_and_reported(self):
        run = self.run_execution({"dry_run": "yes"})

        self.assertEqual(run.status, "FAILED")
        self.assertIn("run stopped: InvalidInput", run.description["cause"])
        self.assertEqual(self.calls("lambda:Invoke"), 2)  # select and notify only
        self.assertEqual(self.rds_calls(), 0)
        self.assertIn('dry_run is invalid: must be true or false, not "yes"', self.sns_messages()[0]["Message"])


class StartedWithTheAwsCli(LocalAwsTest):
    """docs/local-aws.md's way of running a backup by hand, with the pinned AWS CLI."""

    databases = {"prod-database-1": "postgres"}

    def aws_cli(self, *args: str) -> dict:
        cli = Path(sys.executable).with_name("aws")
        environment = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}
        result = subprocess.run([str(cli), "--endpoint-url", endpoint(), *args], capture_output=True, text=True,
                                env=environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_start_execution_and_watch_it_finish(self):
        started = self.aws_cli("stepfunctions", "start-execution", "--state-machine-arn",
                               self.deployment.state_machine_arn, "--input", '{"skip_copy": true}')
        for _ in range(120):
            described = self.aws_cli("stepfunctions", "describe-execution", "--execution-arn", started["executionArn"])
            if described["status"] != "RUNNING":
                break
            time.sleep(0.25)
        self.assertEqual(described["status"], "SUCCEEDED", described)
        self.assertIn("1 of 1 database backups succeeded", json.loads(described["output"])["subject"])


def exiting_bootstrap() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        archive.writestr(info, "#!/bin/sh\necho 'crashing on purpose' >&2\nexit 7\n")
    return buffer.getvalue()


class HistoryLimit(LocalAwsTest):
    """Step Functions keeps 25,000 events of an execution's history and fails the execution at
    the last one (States.Runtime); the local AWS does too, at a limit a test can set low."""

    databases = {"prod-database-1": "postgres"}

    def test_a_database_execution_over_the_limit_fails_and_the_run_names_it(self):
        first = self.run_execution({})
        self.assert_succeeded(first)
        [child] = first.children
        # Below a database's history (its waits add no event however many polls they make:
        # about 55 with the copy and the export), above the run's own (about 40 when a
        # database fails).
        limit = len(child.history) - 5
        self.assertLess(len(first.history), limit)
        control("PUT", "settings", {"sfn_history_limit": limit})
        try:
            run = self.run_execution({})
        finally:
            control("PUT", "settings", {"sfn_history_limit": 25000})

        self.assertEqual((run.status, run.description["error"]), ("FAILED", "BackupFailed"), run.description)
        [child] = run.children
        self.assertEqual(child.status, "FAILED")
        self.assertEqual(len(child.history), limit)
        last = child.history[-1]
        self.assertEqual((last["id"], last["type"]), (limit, "ExecutionFailed"))
        cause = f"The execution reached the maximum number of history events ({limit})."
        self.assertEqual(last["executionFailedEventDetails"], {"error": "States.Runtime", "cause": cause})
        [message] = self.sns_messages()[-1:]
        self.assertIn(cause, message["Message"])
