"""Bad input is refused with a clear error naming the field or the resource,
and nothing is lost: every case runs through the real state machine, and our
snapshots are all still there afterwards."""

from __future__ import annotations

import json
import re

from harness import LocalAwsTest, control

LIST = "db_instance_ids is invalid: must be a non-empty list of DB instance or Aurora cluster identifiers"
WHOLE = "is invalid: must be a whole number from 1 to 4294967295"
UNKNOWN = "is invalid: is not a field of the execution input"

# Execution input refused before any AWS call: (input, what the error says).
BAD_EXECUTION_INPUTS = [
    ({"dry_run": "yes"}, 'dry_run is invalid: must be true or false, not "yes"'),
    ({"skip_copy": None}, "skip_copy is invalid: must be true or false, not null"),
    ({"skip_prune": 1}, "skip_prune is invalid: must be true or false, not 1"),
    ({"retention_days": -1}, f"retention_days {WHOLE}"),
    ({"retention_days": 0}, f"retention_days {WHOLE}"),
    ({"retention_days": 1.5}, f"retention_days {WHOLE}"),
    ({"retention_days": "30"}, f"retention_days {WHOLE}"),
    ({"min_snapshots_to_keep": 0}, f"min_snapshots_to_keep {WHOLE}"),
    ({"poll_interval_seconds": 0}, "poll_interval_seconds is invalid: must be a whole number of seconds from 1 to 3600"),
    ({"copy_wait_timeout_seconds": False},
     "copy_wait_timeout_seconds is invalid: must be a whole number of seconds from 60 to 604800 (7 days)"),
    ({"export_wait_timeout_seconds": 8 * 86400},
     "export_wait_timeout_seconds is invalid: must be a whole number of seconds from 60 to 604800 (7 days)"),
    ({"db_instance_ids": []}, LIST),
    ({"db_instance_ids": "prod-database-1"}, LIST),
    ({"db_instance_ids": None}, LIST),
    ({"db_instance_ids": 7}, LIST),
    ({"db_instance_ids": ["prod-database-1", "Prod-Database-1"]}, "lists Prod-Database-1 twice"),
    # IAM lets the functions back up the module's databases only.
    ({"db_instance_ids": ["prod-database-1", "Prod_DB!", "prod-database-9"]},
     "names Prod_DB!, prod-database-9 outside the module's databases (prod-database-1): the functions may back "
     "up only those; add it to rds_instance_ids or rds_cluster_ids, or tag it with selection_tags, and apply"),
    # An object, which the state machine's own checks could not tell from a list.
    ({"db_instance_ids": {"prod-database-1": True}}, LIST),
    ({"retention_day": 7}, f"retention_day {UNKNOWN}"),
    ({"db_instance_ids": ["prod-database-1"], "skip_exports": True}, f"skip_exports {UNKNOWN}"),
    (["prod-database-1"], "$ is invalid: must be a JSON object of the fields db_instance_ids, retention_days"),
]


class BadExecutionInput(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_each_is_refused_naming_the_field_before_any_aws_call(self):
        self.make_snapshot("prod-database-1", "ours-expired", 40, self.our_tags("prod-database-1"))
        before = set(self.manual_snapshots())
        for execution_input, error in BAD_EXECUTION_INPUTS:
            with self.subTest(execution_input=execution_input):
                run = self.run_execution(execution_input)
                self.assertEqual((run.status, run.description["error"]), ("FAILED", "BackupFailed"))
                self.assertEqual(run.report()["run_error"]["Error"], "InvalidInput")
                # A Lambda error's Cause is the function's error document.
                self.assertIn(error, json.loads(run.report()["run_error"]["Cause"])["errorMessage"])
                self.assertEqual(self.calls("lambda:Invoke"), 2)  # select and notify, and nothing else
                self.assertEqual(self.rds_calls(), 0)
                [message] = self.sns_messages()
                self.assertIn(error, message["Message"])
                self.assertEqual(set(self.manual_snapshots()), before)
        print(f"\n{len(BAD_EXECUTION_INPUTS)} bad execution inputs refused, each naming its field")

    def test_a_good_input_with_every_field_passes_the_checks(self):
        run = self.run_execution({
            "db_instance_ids": ["prod-database-1"], "retention_days": 30, "min_snapshots_to_keep": 3,
            "dry_run": True, "skip_export": True, "skip_copy": True, "skip_prune": False,
            "poll_interval_seconds": 30, "export_poll_interval_seconds": 30, "snapshot_wait_timeout_seconds": 3600,
            "export_wait_timeout_seconds": 3600, "copy_wait_timeout_seconds": 3600,
        })
        self.assert_succeeded(run)


class BadDatabases(LocalAwsTest):
    """Databases that cannot be backed up: each fails alone, named with the reason;
    the good one is backed up, and no snapshot of any of them is deleted."""

    databases = {"prod-database-1": "postgres", "stopped-db": "postgres", "full-db": "mysql"}

    @classmethod
    def deploy_settings(cls):
        # The module lists them all: an input may name only the module's databases.
        return super().deploy_settings().with_(
            db_identifiers=(*cls.databases, "no-such-database", "aurora-member"))

    def test_each_fails_alone_naming_the_database_and_the_reason(self):
        self.rds.stop_db_instance(DBInstanceIdentifier="stopped-db")
        self.rds.create_db_cluster(DBClusterIdentifier="aurora-cluster", Engine="aurora-postgresql",
                                   MasterUsername="admin", MasterUserPassword="correct-horse-battery")
        self.rds.create_db_instance(DBInstanceIdentifier="aurora-member", DBClusterIdentifier="aurora-cluster",
                                    Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
        # RDS reports a full volume as the instance's status.
        control("POST", "faults", {"action": "rds:DescribeDBInstances", "match": "DBInstanceIdentifier=full-db",
                                   "replace": ["<DBInstanceStatus>available<", "<DBInstanceStatus>storage-full<"],
                                   "count": None})
        self.make_snapshot("prod-database-1", "ours-old", 40, self.our_tags("prod-database-1"))
        self.make_snapshot("full-db", "ours-only-one", 40, self.our_tags("full-db"))
        expected = {
            "no-such-database": ("DatabaseNotFound", "no-such-database"),
            "stopped-db": ("DatabaseNotAvailable", "stopped"),
            "full-db": ("DatabaseNotAvailable", "storage-full"),
            "aurora-member": ("DatabaseNotAvailable", "list the cluster identifier aurora-cluster instead"),
        }

        run = self.run_execution({"db_instance_ids": ["prod-database-1", *expected], "skip_export": True,
                                  "skip_copy": True, "min_snapshots_to_keep": 1})
        control("DELETE", "faults")

        self.assertEqual(run.status, "FAILED")
        results = run.results()
        self.assertNotIn("error", results["prod-database-1"])
        [message] = self.sns_messages()
        for db, (error_type, reason) in expected.items():
            with self.subTest(db=db):
                error = results[db]["error"]
                self.assertEqual((error["step"], error["Error"]), ("snapshot", error_type))
                self.assertIn(reason, error["Cause"])
                self.assertIn(f"FAILED  {db} at snapshot: {error_type}", message["Message"])
        snapshots = self.manual_snapshots()
        self.assertIn("ours-only-one", snapshots)  # the newest of its database stays, whatever its age
        self.assertNotIn("ours-old", snapshots)  # beyond the newest of a database backed up now: retention applies
        print(f"\n{len(expected)} databases that cannot be backed up, each named with its reason")


class InvalidSlackUrl(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    def test_slack_alone_fails_naming_the_secret_not_the_value(self):
        notify = self.deployment.environments["notify"]
        secrets = self.aws.client("secretsmanager")
        # Someone writes a bad URL into the secret; notify reads the new version at its next cold start.
        version = secrets.put_secret_value(SecretId=notify["SLACK_WEBHOOK_SECRET_ARN"],
                                           SecretString="http://hooks.slack.com/services/T0/B0/not-https")["VersionId"]
        self.set_function_env("notify", "SLACK_WEBHOOK_SECRET_VERSION", version)
        self.make_snapshot("prod-database-1", "ours-recent", 1, self.our_tags("prod-database-1"))

        run = self.run_execution({"skip_export": True, "skip_copy": True})

        self.assertEqual(run.status, "SUCCEEDED")  # the backup did succeed, and SNS says so
        output = json.loads(run.description["output"])
        self.assertEqual(output["slack"], "failed")
        self.assertIn(notify["SLACK_WEBHOOK_SECRET_ARN"], output["slack_error"])
        self.assertIn("must be an https:// URL", output["slack_error"])
        self.assertNotIn("not-https", json.dumps(output))
        self.assertEqual(len(self.sns_messages()), 1)
        self.assertEqual(self.slack_messages(), [])
        self.assertIn("ours-recent", self.manual_snapshots())


class BackupsStoppedSilently(LocalAwsTest):
    """A database whose newest snapshot is older than expected: prune deletes
    none of its snapshots and the run fails naming it."""

    databases = {"prod-database-1": "postgres", "quiet-db": "postgres"}

    def test_prune_keeps_every_snapshot_of_it_and_the_run_fails_naming_it(self):
        for snapshot_id, age_days in (("quiet-1", 40), ("quiet-2", 50), ("quiet-3", 60)):
            self.make_snapshot("quiet-db", snapshot_id, age_days, self.our_tags("quiet-db"))
        self.make_snapshot("prod-database-1", "prod-expired", 40, self.our_tags("prod-database-1"))

        # Backups of quiet-db stopped: this run backs up the other database only.
        run = self.run_execution({"db_instance_ids": ["prod-database-1"], "skip_export": True, "skip_copy": True,
                                  "min_snapshots_to_keep": 1})

        self.assertEqual((run.status, run.description["error"]), ("FAILED", "BackupFailed"))
        snapshots = self.manual_snapshots()
        self.assertTrue({"quiet-1", "quiet-2", "quiet-3"} <= set(snapshots))
        self.assertNotIn("prod-expired", snapshots)  # the rule still applies to a database backed up now
        [source] = [r for r in run.report()["prune"]["regions"] if r["region"] == "us-east-1"]
        self.assertEqual([s["db_identifier"] for s in source["stale"]], ["quiet-db"])
        [message] = self.sns_messages()
        # 40 days old when made, and older by the time the run took on the clock (about an hour).
        [hours] = re.findall(r"FAILED  retention \(prune\) in us-east-1: kept every snapshot of quiet-db: its newest is "
                             r"(\d+) h old \(expected within 30 h\)", message["Message"])
        self.assertLessEqual(960, int(hours))
        self.assertLessEqual(int(hours), 960 + 6, message["Message"])
