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


class Measured(LocalAwsTest):
    """A deployment whose hourly measurement a test invokes, on a clock that keeps real time."""

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


class HourlySnapshotAge(Measured):
    databases = {"prod-database-1": "postgres", "prod-database-2": "mysql"}

    def test_each_database_gets_its_age_and_the_run_wide_one_needs_them_all(self):
        self.make_snapshot("prod-database-1", "ours-newest", 2, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-1", "ours-older", 9, self.our_tags("prod-database-1"))
        self.make_snapshot("prod-database-2", "not-ours", 0.1, [])

        report = self.measure()

        self.assertEqual(round(report["hours"]["prod-database-1"]), 48)
        self.assertEqual(report["without_snapshot"], ["prod-database-2"])  # a snapshot not ours does not count
        # One age (no run-wide age while a database has none), and point-in-time recovery: each
        # database's lag and retention, and both run-wide.
        self.assertEqual(report["metrics_put"], 1 + 6)
        self.assertEqual(round(self.metric("SnapshotAge", "prod-database-1")), 48)
        self.assertIsNone(self.metric("SnapshotAge", "prod-database-2"))

        self.make_snapshot("prod-database-2", "ours-2", 0.5, self.our_tags("prod-database-2"))
        report = self.measure()

        self.assertEqual({db: round(h) for db, h in report["hours"].items()}, {"prod-database-1": 48, "prod-database-2": 12})
        self.assertEqual((report["without_snapshot"], report["metrics_put"]), ([], 3 + 6))
        self.assertEqual(self.calls("states:StartExecution"), 0)  # a measurement, not a backup
        self.assertEqual(self.sns_messages(), [])  # and nothing to tell


class HourlyPointInTimeRecovery(Measured):
    """Each database's automated backups, read every hour: RestorableLag (minutes its latest
    restorable time lags the hour) and BackupRetentionDays, per database and run-wide."""

    databases = {"prod-database-1": "postgres", "prod-database-2": "mysql", "prod-database-3": "postgres"}

    def test_a_lagging_database_and_one_without_automated_backups_are_measured_and_said(self):
        self.rds.modify_db_instance(DBInstanceIdentifier="prod-database-3", BackupRetentionPeriod=0, ApplyImmediately=True)
        control("POST", "rds/restorable-lag", {"region": "us-east-1", "db_identifier": "prod-database-2", "minutes": 40})
        # As RDS: no latest restorable time without automated backups.
        [off] = self.rds.describe_db_instances(DBInstanceIdentifier="prod-database-3")["DBInstances"]
        self.assertEqual(off["BackupRetentionPeriod"], 0)
        self.assertNotIn("LatestRestorableTime", off)

        recovery = self.measure()["recovery"]

        self.assertEqual({db: round(m) for db, m in recovery["restorable_lag_minutes"].items()},
                         {"prod-database-1": 5, "prod-database-2": 40})
        self.assertEqual(recovery["automated_backups_off"], ["prod-database-3"])
        self.assertEqual(round(self.metric("RestorableLag", "prod-database-2")), 40)
        self.assertIsNone(self.metric("RestorableLag", "prod-database-3"))
        self.assertEqual(self.metric("BackupRetentionDays", "prod-database-3"), 0)
        self.assertEqual(self.metric("BackupRetentionDays", "prod-database-1"), 1)  # RDS's default, 1 day

        # A stopped database puts no lag (its alarm does not flap), and says why.
        self.rds.stop_db_instance(DBInstanceIdentifier="prod-database-2")
        recovery = self.measure()["recovery"]
        self.assertEqual(recovery["not_measured"], {"prod-database-2": "status stopped"})
        self.assertEqual(set(recovery["restorable_lag_minutes"]), {"prod-database-1"})


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
