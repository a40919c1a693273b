"""The hourly SnapshotAge measurement: notify invoked with the input the module's
`<prefix>-snapshot-age` rule gives it (the module's databases and the time the
rule fired, through the target's input transformer), whatever the backup
schedule. Ages are compared in whole hours: the local AWS's clock keeps real
time here (clock_scale 0), so that the test's own seconds do not count."""

from __future__ import annotations

import json
import time

from datetime import datetime

from harness import LocalAwsTest, Settings, control, now, planned


class HourlySnapshotAge(LocalAwsTest):
    databases = {"prod-database-1": "postgres", "prod-database-2": "mysql"}
    clock_scale = 0

    def measure(self) -> dict:
        """Invokes notify as the hourly rule does; its report."""
        plan = planned(self.deploy_settings())
        rule = plan.resource("aws_cloudwatch_event_rule.snapshot_age")
        target = plan.resource("aws_cloudwatch_event_target.snapshot_age")
        self.assertEqual((rule["schedule_expression"], target["rule"]), ("rate(1 hour)", rule["name"]))
        [transformer] = target["input_transformer"]
        self.assertEqual(transformer["input_paths"], {"time": "$.time"})
        fired = transformer["input_template"].replace("<time>", now().strftime("%Y-%m-%dT%H:%M:%SZ"))
        answer = self.aws.client("lambda").invoke(FunctionName=self.deployment.function_arns["notify"],
                                                   Payload=fired.encode())
        payload = json.loads(answer["Payload"].read())
        self.assertNotIn("FunctionError", answer, payload)
        return payload

    def test_each_database_gets_its_age_and_the_run_wide_one_needs_them_all(self):
        self.make_snapshot("prod-database-1", "ours-newest", 2, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-1", "ours-older", 9, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-2", "not-ours", 0.1, [])

        report = self.measure()

        self.assertEqual(round(report["hours"]["prod-database-1"]), 48)
        self.assertEqual(report["without_snapshot"], ["prod-database-2"])  # a snapshot not ours does not count
        self.assertEqual(report["metrics_put"], 1)  # no run-wide age while a database has none
        self.assertEqual(round(self.metric("SnapshotAge", "prod-database-1")), 48)
        self.assertIsNone(self.metric("SnapshotAge", "prod-database-2"))

        self.make_snapshot("prod-database-2", "ours-2", 0.5, self.our_tags("prod-database-2"))
        report = self.measure()

        self.assertEqual({db: round(h) for db, h in report["hours"].items()}, {"prod-database-1": 48, "prod-database-2": 12})
        self.assertEqual((report["without_snapshot"], report["metrics_put"]), ([], 3))
        self.assertEqual(self.calls("states:StartExecution"), 0)  # a measurement, not a backup
        self.assertEqual(self.sns_messages(), [])  # and nothing to tell


class HourlyRuleFired(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}
    settings = Settings(event_rules=True)
    clock_scale = 0

    def test_the_deployed_rule_hands_notify_the_databases_and_the_age_is_put(self):
        self.make_snapshot("prod-database-1", "ours-newest", 1, self.our_tags("prod-database-1"))

        [delivery] = control("POST", "events/fire", {"rule": f"{self.settings.prefix}-snapshot-age"})

        self.assertEqual(delivery["target"], self.deployment.function_arns["notify"])
        handed = json.loads(delivery["input"])["snapshot_age"]
        self.assertEqual(handed["databases"], ["prod-database-1"])
        fired_at = datetime.fromisoformat(handed["at"].replace("Z", "+00:00"))
        self.assertLess(abs((now() - fired_at).total_seconds()), 60, "the scheduled event's time")
        deadline = time.monotonic() + 30
        while self.metric("SnapshotAge", "prod-database-1") is None:  # notify runs asynchronously
            self.assertLess(time.monotonic(), deadline, "no SnapshotAge put")
            time.sleep(0.25)
        self.assertEqual(round(self.metric("SnapshotAge", "prod-database-1")), 24)
