"""Runs that end outside the state machine's own error handling: stopped from
the console, or failed with an error no Catch applies to. The deployment has
the module's EventBridge rules, and the local AWS delivers Step Functions'
status change of each ended execution as AWS does: the module's
`<prefix>-run-ended-badly` rule hands it to notify, which reports the run
unless its own Notify step already did."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from demo.report import metric_sums
from harness import LocalAwsTest, Settings, control, endpoint


class RunsEndingBadly(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}
    settings = Settings(event_rules=True)

    def delivered_to_notify(self, arn: str) -> list[dict]:
        """Waits until the rule has handed notify the run's status change and notify has
        handled it; the SNS messages it sent."""
        rule = f"{self.settings.prefix}-run-ended-badly"
        deadline = time.monotonic() + 60
        while True:
            deliveries = [d for d in control("GET", "events") if d["rule"] == rule and arn in d["input"]]
            handled = [i for i in control("GET", "invocations") if i["function"].endswith("-notify")
                       and deliveries and i["started"] >= deliveries[0]["at"]]
            if handled:
                break
            self.assertLess(time.monotonic(), deadline, f"no delivery of {arn}'s end to notify: {deliveries}")
            time.sleep(0.25)
        [delivery] = deliveries
        self.assertEqual(delivery["target"], self.deployment.function_arns["notify"])
        self.assertEqual([i["outcome"] for i in handled], ["ok"])
        return self.sns_messages()

    def test_a_run_stopped_from_the_console_is_reported_once(self):
        # Prune's listing answers late: the run is in its Prune step when someone stops it. (Stopping
        # it while it waits on a database's execution makes moto fail it with States.Runtime.)
        control("POST", "faults", {"action": "rds:DescribeDBSnapshots", "match": "SnapshotType=manual",
                                   "delay_seconds": 10})
        arn = self.start_execution({"skip_export": True, "skip_copy": True})
        deadline = time.monotonic() + 30
        while self.execution(arn).entered("Prune") == 0:
            self.assertLess(time.monotonic(), deadline, "the run never reached Prune")
            time.sleep(0.25)
        self.sfn.stop_execution(executionArn=arn, error="Stopped", cause="stopped by a DBA")
        stopped = self.wait(arn)
        self.assertEqual(stopped.status, "ABORTED", stopped.description)

        [message] = self.delivered_to_notify(arn)  # its own Notify step never ran: this is the only one

        self.assertTrue(message["Subject"].startswith("[ABORTED] dbbackup local: backup run "), message["Subject"])
        self.assertIn(f"Execution:   {arn}", message["Message"])
        self.assertIn("Failed in:   Prune\n", message["Message"])
        self.assertEqual(len(self.slack_messages()), 1)

    def test_a_run_failed_by_an_uncatchable_error_is_reported_once(self):
        # A select whose answer lacks prune's input: Prune's InputPath fails with States.Runtime,
        # which its Catch of States.ALL does not catch (as in AWS).
        control("POST", "faults", {"action": "lambda:Invoke", "match": "-select/invocations",
                                   "replace": ['"prune":{', '"prune_input":{']})
        arn = self.start_execution({"skip_export": True, "skip_copy": True})
        run = self.wait(arn)
        self.assertEqual((run.status, run.description.get("error")), ("FAILED", "States.Runtime"), run.description)

        [message] = self.delivered_to_notify(arn)

        self.assertIn("Failed in:   Prune\n", message["Message"])
        self.assertIn("Error:       States.Runtime", message["Message"])
        sums = metric_sums(endpoint(), "CustomMetrics/DatabaseBackup", self.instance, datetime.min.replace(tzinfo=UTC),
                           datetime.max.replace(tzinfo=UTC))
        self.assertEqual(sums[("BackupFailure", "(run)")], 1)

    def test_a_run_its_own_notify_step_reported_is_not_reported_again(self):
        # Refused by the run itself (a database outside the module), which notify reports.
        arn = self.start_execution({"db_instance_ids": ["no-such-database"], "skip_export": True, "skip_copy": True})
        run = self.wait(arn)
        self.assertEqual((run.status, run.description["error"]), ("FAILED", "BackupFailed"))
        self.assertEqual(len(self.sns_messages()), 1)  # its own

        self.assertEqual(self.delivered_to_notify(arn), [])

    def test_a_successful_run_is_not_delivered_and_a_schedule_fires_the_backup(self):
        fired = control("POST", "events/fire", {"rule": f"{self.settings.prefix}-backup-schedule"})

        [delivery] = fired
        self.assertEqual((delivery["target"], delivery["input"]), (self.deployment.state_machine_arn, "{}"))
        run = self.wait(delivery["execution_arn"])
        self.assert_succeeded(run)
        time.sleep(1)
        rules = {d["rule"] for d in control("GET", "events")}
        self.assertEqual(rules, {f"{self.settings.prefix}-backup-schedule"})  # the run's end matched no rule
