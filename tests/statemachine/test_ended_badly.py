"""Runs that end outside the state machine's own error handling: stopped from
the console, or failed with an error no Catch applies to. The local AWS does
not deliver EventBridge events, so each test hands notify the event the
module's rule delivers (the rule's pattern is checked against the same shape
in tests/terraform), built from the ended execution as Step Functions builds
it, and counts the messages."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

from demo.report import metric_sums
from harness import LocalAwsTest, control, endpoint


def status_change_event(execution: dict) -> dict:
    """The "Step Functions Execution Status Change" event of an ended execution."""
    arn = execution["executionArn"]
    millis = lambda at: int(at.timestamp() * 1000) if at else None  # noqa: E731 - a one-line converter
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": arn.split(":")[4],
        "time": execution["stopDate"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": arn.split(":")[3],
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "startDate": millis(execution["startDate"]),
            "stopDate": millis(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }


class RunsEndingBadly(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def notify_of(self, arn: str) -> tuple[dict, list[dict]]:
        """Invokes notify as the rule does; its report and the SNS messages sent."""
        self.sns_messages()
        event = status_change_event(self.sfn.describe_execution(executionArn=arn))
        response = self.aws.client("lambda").invoke(FunctionName=self.deployment.function_arns["notify"],
                                                    Payload=json.dumps(event).encode())
        report = json.loads(response["Payload"].read())
        self.assertNotIn("FunctionError", response, report)
        return report, self.sns_messages()

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
        self.assertEqual(self.sns_messages(), [])  # its own Notify step never ran

        report, messages = self.notify_of(arn)

        self.assertEqual((report["status"], report["already_reported"]), ("ABORTED", False))
        self.assertEqual(report["failing_state"], "Prune")
        [message] = messages
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
        self.assertEqual(self.sns_messages(), [])  # its own Notify step never ran

        report, messages = self.notify_of(arn)

        self.assertEqual((report["failing_state"], report["error"]), ("Prune", "States.Runtime"))
        [message] = messages
        self.assertIn("Error:       States.Runtime", message["Message"])
        sums = metric_sums(endpoint(), "CustomMetrics/DatabaseBackup", datetime.min.replace(tzinfo=UTC),
                           datetime.max.replace(tzinfo=UTC))
        self.assertEqual(sums[("BackupFailure", "(run)")], 1)

    def test_a_run_its_own_notify_step_reported_is_not_reported_again(self):
        # Refused by the run itself (a database outside the module), which notify reports.
        run = self.run_execution({"db_instance_ids": ["no-such-database"], "skip_export": True, "skip_copy": True})
        self.assertEqual((run.status, run.description["error"]), ("FAILED", "BackupFailed"))
        self.assertEqual(len(self.sns_messages()), 1)

        report, messages = self.notify_of(run.arn)

        self.assertTrue(report["already_reported"])
        self.assertEqual(messages, [])
