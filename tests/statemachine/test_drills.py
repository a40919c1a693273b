"""Restore drills (restore_drill): the deployed <prefix>-drill state machine restores each
database's newest backup with the operator's restore implementation, waits for it on the local
AWS's clock (a restore is `creating` for 10 minutes plus 6 s a GB, local_aws/operations.py),
checks it against the snapshot, measures the recovery time, deletes it, and reports through
notify (metrics, SNS, Slack). A restore that fails, one past the wait's bound, a drill over its
target and a drill stopped mid-way each report and leave no database behind (the last one
through the sweep)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import timedelta

from harness import SOURCE, LocalAwsTest, Settings, control, now


class DrillTest(LocalAwsTest):
    settings = Settings(restore_drill=(("rto_minutes", 60), ("max_wait_minutes", 60)))

    def setUp(self):
        super().setUp()
        for db in self.databases:
            self.make_snapshot(db, f"{db}-backup", age_days=1, tags=self.our_tags(db))
            self.available(f"{db}-backup")

    @property
    def prefix(self) -> str:
        return json.loads(self.deployment.environments["drill"]["DRILL"])["identifier_prefix"]

    def start_drill(self, execution_input: dict | None = None) -> str:
        control("DELETE", "calls")
        return self.sfn.start_execution(stateMachineArn=self.deployment.drill_state_machine_arn,
                                        name=f"drill-{uuid.uuid4().hex[:12]}",
                                        input=json.dumps(execution_input or {}))["executionArn"]

    def drill(self, execution_input: dict | None = None) -> dict:
        arn = self.start_drill(execution_input)
        self.wait_for_end(arn, timeout=180)
        return self.sfn.describe_execution(executionArn=arn)

    def drill_databases(self) -> list[str]:
        return [d["DBInstanceIdentifier"] for d in self.rds.describe_db_instances()["DBInstances"]
                if d["DBInstanceIdentifier"].startswith(self.prefix)]

    def run_wide(self, name: str) -> float | None:
        """The sum of a run-wide metric (dimension BackupInstance alone) over the last two weeks."""
        at = now()
        points = self.aws.client("cloudwatch", SOURCE).get_metric_statistics(
            Namespace="CustomMetrics/DatabaseBackup", MetricName=name,
            Dimensions=[{"Name": "BackupInstance", "Value": self.instance}],
            StartTime=at - timedelta(days=14), EndTime=at + timedelta(minutes=5), Period=86400,
            Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points) if points else None

    def restore_time(self, db: str) -> float | None:
        at = now()
        points = self.aws.client("cloudwatch", SOURCE).get_metric_statistics(
            Namespace="CustomMetrics/DatabaseBackup", MetricName="RestoreTime",
            Dimensions=[{"Name": "BackupInstance", "Value": self.instance}, {"Name": "DatabaseIdentifier", "Value": db}],
            StartTime=at - timedelta(days=14), EndTime=at + timedelta(minutes=5), Period=86400,
            Statistics=["Maximum"])["Datapoints"]
        return max(p["Maximum"] for p in points) if points else None


class Drills(DrillTest):
    # The clock runs on while a function computes (real time): slower here, so that the recovery
    # time measured is the restore's own, give or take a poll.
    clock_scale = 120

    def test_each_database_is_restored_checked_measured_and_deleted(self):
        execution = self.drill()
        # The drill's own span on the local AWS's clock: no recovery time can be longer.
        span = (execution["stopDate"] - execution["startDate"]).total_seconds() / 60

        self.assertEqual(execution["status"], "SUCCEEDED", execution.get("cause"))
        self.assertEqual(self.calls("rds:RestoreDBInstanceFromDBSnapshot"), 2)
        self.assertEqual(self.calls("rds:DeleteDBInstance"), 2)
        self.assertEqual(self.drill_databases(), [])
        for db in self.databases:
            self.assertEqual(self.metric("RestoreTestSuccess", db), 1)
            self.assertEqual(self.metric("RestoreTestFailure", db), 0)
            # 20 GB: 10 minutes and 6 s a GB on the clock, seen by a check at most a poll (the
            # module's poll_interval_seconds, 60 s) later; the functions' own (real) time runs
            # on the clock too, more of it on a loaded machine.
            self.assertGreaterEqual(self.restore_time(db), 12.0)
            self.assertLess(self.restore_time(db), span)
        self.assertEqual(self.run_wide("RestoreTestFailure"), 0)

        [message] = self.sns_messages()
        self.assertEqual(message["Subject"], "database-backup restore drill PASSED: dbbackup local (2 of 2 restored)")
        text = message["Message"]
        self.assertIn("Target recovery time (RTO): 60 min", text)
        self.assertRegex(text, r"prod-database-1: restored and checked in \d+\.\d min \(within the 60 min target\)")
        self.assertIn("  snapshot: prod-database-1-backup (us-east-1, taken ", text)
        self.assertRegex(text, rf"restored to: {self.prefix}prod-database-1-\d{{8}} \(RestoreDBInstanceFromDBSnapshot\)")
        self.assertRegex(text, r"checks: status available; engine postgres; engine version \S+; "
                               r"allocated storage 20 GiB; encrypted true")
        self.assertRegex(text, rf"deleted: {self.prefix}prod-database-2-\d{{8}} \(deleting, no final snapshot\)")
        [slack] = self.slack_messages()
        self.assertIn("restore drill passed", json.dumps(slack))

    def test_a_failed_restore_fails_the_drill_and_its_database_is_deleted(self):
        control("POST", "rds/restore-fails", {"region": SOURCE, "db_identifier": f"{self.prefix}prod-database-1*",
                                              "status": "incompatible-restore"})

        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        self.assertEqual(execution["error"], "DrillFailed")
        self.assertEqual(self.metric("RestoreTestFailure", "prod-database-1"), 1)
        self.assertEqual(self.metric("RestoreTestSuccess", "prod-database-2"), 1)
        self.assertEqual(self.run_wide("RestoreTestFailure"), 1)
        self.assertEqual(self.drill_databases(), [])
        [message] = self.sns_messages()
        text = message["Message"]
        self.assertIn("prod-database-1: FAILED", text)
        self.assertIn("RestoreFailed: the drill's restore of prod-database-1", text)
        self.assertIn("is incompatible-restore", text)
        self.assertRegex(text, rf"deleted: {self.prefix}prod-database-1-\d{{8}}")
        self.assertEqual(message["MessageAttributes"]["status"]["Value"], "FAILED")

    def test_a_database_without_a_backup_is_refused_before_anything_is_created(self):
        execution = self.drill({"databases": ["prod-database-1", "prod-database-9"]})

        self.assertEqual(execution["status"], "FAILED")
        self.assertEqual(self.calls("rds:RestoreDBInstanceFromDBSnapshot"), 1)
        [message] = self.sns_messages()
        self.assertIn("prod-database-9: FAILED\n  error: RestoreRefused: the drill of prod-database-9 in us-east-1 "
                      "restores nothing: db prod-database-9: no available backup of it in us-east-1",
                      message["Message"])
        self.assertEqual(self.drill_databases(), [])


class DrillsWithAProbe(DrillTest):
    """restore_drill.sql_probe: the probe function logs in to the restored database with the
    secret's credentials, over TLS verified against the authority of its certificate, and runs
    the query in a read-only transaction. The local AWS serves each restored PostgreSQL instance
    from a PostgreSQL server of its own and each MySQL one from a MariaDB server, with the
    snapshot's master user, TLS only (local_aws/databases.py): prod-database-1 (PostgreSQL) is
    probed over PostgreSQL's protocol, prod-database-2 (MySQL) over MySQL's."""

    clock_scale = 120
    SECRETS = {db: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-probe/{db}"
               for db in ("prod-database-1", "prod-database-2")}
    # One query for both engines: information_schema is SQL's.
    QUERY = "SELECT table_name FROM information_schema.tables WHERE table_name = 'tables'"
    settings = Settings(restore_drill=(("rto_minutes", 60), ("max_wait_minutes", 60), ("sql_probe", (
        ("secret_arns", tuple(SECRETS.items())), ("subnet_ids", ("subnet-0123456789abcdef0",)),
        ("security_group_ids", ("sg-0123456789abcdef0",)), ("query", QUERY)))))

    def credentials(self, password: str) -> None:
        for db, engine in self.databases.items():
            self.aws.client("secretsmanager", SOURCE).create_secret(
                Name=f"drill-probe/{db}",
                SecretString=json.dumps({"engine": engine, "username": "admin", "password": password}))

    def probe_lines(self, text: str) -> dict[str, str]:
        """Each database's probe check, from the drill's message (a database's block opens with
        `<db>: <verdict>`)."""
        found, db = {}, None
        for line in text.splitlines():
            db = next((name for name in self.databases if line.startswith(f"{name}: ")), db)
            if line.startswith("  checks: ") and "sql probe" in line:
                found[db] = line[line.index("sql probe"):]
        return found

    def use_query(self, query: str) -> None:
        drill_settings = json.loads(self.deployment.environments["drill"]["DRILL"])
        drill_settings["sql_probe"]["query"] = query
        self.set_function_env("drill", "DRILL", json.dumps(drill_settings))

    def test_the_probe_queries_each_engine_read_only_over_verified_tls(self):
        self.credentials("correct-horse-battery")

        execution = self.drill()

        self.assertEqual(execution["status"], "SUCCEEDED", execution.get("cause"))
        self.assertEqual(self.metric("RestoreTestSuccess", "prod-database-1"), 1)
        self.assertEqual(self.metric("RestoreTestSuccess", "prod-database-2"), 1)
        self.assertEqual(self.drill_databases(), [])
        [message] = self.sns_messages()
        lines = self.probe_lines(message["Message"])
        self.assertRegex(lines["prod-database-1"],
                         r"^sql probe 1 row in \d+ ms, as admin on postgres, over TLS \(server certificate verified\)$")
        self.assertRegex(lines["prod-database-2"],
                         r"^sql probe 1 row in \d+ ms, as admin, over TLS \(server certificate verified\)$")

    def test_a_probe_that_cannot_log_in_or_would_write_fails_the_drill_and_nothing_is_left(self):
        self.credentials("not-the-password")

        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        self.assertEqual(self.metric("RestoreTestFailure", "prod-database-1"), 1)
        self.assertEqual(self.metric("RestoreTestFailure", "prod-database-2"), 1)
        self.assertEqual(self.drill_databases(), [])
        [message] = self.sns_messages()
        lines = self.probe_lines(message["Message"])
        self.assertEqual(lines["prod-database-1"],
                         'sql probe connecting failed: db error: FATAL: password authentication failed for user '
                         f'"admin" (expected {self.QUERY} answered, read-only) FAILED')
        self.assertRegex(lines["prod-database-2"],
                         r"^sql probe connecting failed: .*Access denied for user 'admin'@'[^']+' \(using password: "
                         r"YES\).* FAILED$")
        self.assertNotIn("not-the-password", message["Message"])

        # The right password, and a query that writes: the read-only transaction refuses it. (The
        # MySQL copy has no DBName: the secret's dbname chooses the database, else MySQL would
        # refuse the unqualified table first, "No database selected".)
        for db, secret in self.SECRETS.items():
            credentials = {"username": "admin", "password": "correct-horse-battery"}
            if self.databases[db] == "mysql":
                credentials["dbname"] = "mysql"
            self.aws.client("secretsmanager", SOURCE).put_secret_value(
                SecretId=secret, SecretString=json.dumps(credentials))
        self.use_query("CREATE TABLE probe_was_here (id int)")

        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        self.assertEqual(self.drill_databases(), [])
        [message] = self.sns_messages()
        lines = self.probe_lines(message["Message"])
        self.assertIn("sql probe the query failed: db error: ERROR: cannot execute CREATE TABLE in a read-only "
                      "transaction", lines["prod-database-1"])
        self.assertIn("sql probe the query failed: ", lines["prod-database-2"])
        self.assertIn("Cannot execute statement in a READ ONLY transaction", lines["prod-database-2"])

        # Nor can the query end the read-only transaction and write after it: one statement only.
        self.use_query("COMMIT; CREATE TABLE probe_was_here (id int)")

        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        [message] = self.sns_messages()
        lines = self.probe_lines(message["Message"])
        self.assertIn("sql probe the query failed: db error: ERROR: cannot insert multiple commands into a prepared "
                      "statement", lines["prod-database-1"])
        self.assertIn("sql probe the query failed: ", lines["prod-database-2"])
        self.assertIn("You have an error in your SQL syntax", lines["prod-database-2"])


class DrillsWithShortBounds(DrillTest):
    """A 5-minute target and a 15-minute bound: the 20 GB database restores in 12 minutes (over
    the target), the 200 GB one would take 30 (past the bound)."""

    databases = {"small-database": "postgres", "big-database": "postgres"}
    settings = Settings(restore_drill=(("rto_minutes", 5), ("max_wait_minutes", 15)))
    # 120 times real time: the big restore is past its bound from 7.5 s to 15 s of real time, when
    # it becomes available. At 600 that window was 1.5 s, which a loaded CI's polls (a function's
    # real time runs on the clock) stepped over, finding the restore available instead.
    clock_scale = 120

    def create_database(self, db: str, engine: str):
        self.rds.create_db_instance(DBInstanceIdentifier=db, Engine=engine, DBInstanceClass="db.t3.micro",
                                    AllocatedStorage=200 if db == "big-database" else 20, MasterUsername="admin",
                                    MasterUserPassword="correct-horse-battery", StorageEncrypted=True)

    def test_over_the_target_and_past_the_bound_are_reported_and_nothing_is_left(self):
        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        # The timed-out restore is deleted once RDS lets it (still creating: DatabaseBusy, retried).
        self.assertEqual(self.drill_databases(), [])
        self.assertEqual(self.metric("RestoreTestSuccess", "small-database"), 1)
        self.assertGreater(self.restore_time("small-database"), 5)
        self.assertEqual(self.metric("RestoreTestFailure", "big-database"), 1)
        self.assertIsNone(self.restore_time("big-database"))
        [message] = self.sns_messages()
        text = message["Message"]
        self.assertRegex(text, r"small-database: restored and checked in \d+\.\d min \(OVER the 5 min target\)")
        self.assertIn("big-database: FAILED", text)
        self.assertIn("WaitTimedOut: the drill's restore of big-database", text)
        self.assertIn("the bound set by restore_drill.max_wait_minutes", text)
        self.assertRegex(text, rf"deleted: {self.prefix}big-database-\d{{8}}")


class DrillSweep(DrillTest):
    # Delete-after: the request, plus 60 minutes of wait, no keep, 30 of margin (9 s of real time).
    settings = Settings(restore_drill=(("rto_minutes", 60), ("max_wait_minutes", 60), ("random_count", 1)))

    def test_a_stopped_drill_leaves_its_database_to_the_sweep_which_reports_it(self):
        arn = self.start_drill({"databases": ["prod-database-1"]})
        deadline = time.monotonic() + 30
        while not self.drill_databases():
            self.assertLess(time.monotonic(), deadline, "the drill restored nothing")
            time.sleep(0.1)
        self.sfn.stop_execution(executionArn=arn)
        [left] = self.drill_databases()

        # Not yet due: the sweep keeps it.
        sweep = self.drill({"sweep_only": True})
        self.assertEqual(sweep["status"], "SUCCEEDED")
        self.assertEqual(self.drill_databases(), [left])
        self.assertEqual(self.sns_messages(), [])

        # Its delete-after time passes.
        target = now() + timedelta(minutes=91)
        while now() < target:
            time.sleep(0.2)
        sweep = self.drill({"sweep_only": True})

        self.assertEqual(sweep["status"], "FAILED")
        self.assertEqual(self.drill_databases(), [])
        self.assertEqual(self.run_wide("RestoreTestFailure"), 1)
        [message] = self.sns_messages()
        self.assertIn(f"The sweep deleted drill databases past their delete-after time (their drills did not "
                      f"finish): {left} (us-east-1)", message["Message"])

    def test_a_database_the_drill_could_not_delete_is_reported_and_left_to_the_sweep(self):
        control("POST", "faults", {"action": "rds:DeleteDBInstance", "count": None, "error_code": "AccessDenied",
                                   "http_status": 403, "message": "not authorized to perform rds:DeleteDBInstance"})
        execution = self.drill({"databases": ["prod-database-1"]})
        control("DELETE", "faults")

        self.assertEqual(execution["status"], "FAILED")
        [left] = self.drill_databases()
        [message] = self.sns_messages()
        self.assertIn("prod-database-1: restored and checked in", message["Message"])
        self.assertIn("  NOT DELETED: AccessDenied: DeleteDBInstance failed: AccessDenied: not authorized to perform "
                      "rds:DeleteDBInstance; the sweeper deletes it after its delete-after time", message["Message"])

        target = now() + timedelta(minutes=91)
        while now() < target:
            time.sleep(0.2)
        self.assertEqual(self.drill({"sweep_only": True})["status"], "FAILED")
        self.assertEqual(self.drill_databases(), [])
        [message] = self.sns_messages()
        self.assertIn(f"{left} (us-east-1)", message["Message"])

    def test_random_count_drills_that_many_of_the_backed_up_databases(self):
        execution = self.drill()

        self.assertEqual(execution["status"], "SUCCEEDED", execution.get("cause"))
        self.assertEqual(self.calls("rds:RestoreDBInstanceFromDBSnapshot"), 1)
        [message] = self.sns_messages()
        self.assertIn("(1 of 1 restored)", message["Subject"])

    def test_nothing_to_drill_fails_the_drill(self):
        for db in self.databases:
            self.rds.delete_db_snapshot(DBSnapshotIdentifier=f"{db}-backup")

        execution = self.drill()

        self.assertEqual(execution["status"], "FAILED")
        [message] = self.sns_messages()
        self.assertIn("No database to drill: none has an available backup of this module", message["Message"])
        self.assertEqual(self.run_wide("RestoreTestFailure"), 1)


class AuroraDrills(DrillTest):
    """An Aurora drill restores the cluster and, once it is available (the local AWS refuses a DB
    instance before, as RDS does), adds its writer of the original writer's class, waits for it
    (`creating` for 7 minutes on the clock), probes it over its engine's protocol (Aurora
    PostgreSQL served by PostgreSQL, Aurora MySQL by MariaDB, with the cluster's master user),
    and deletes the writer, then the cluster."""

    clock_scale = 120
    databases = {"orders-pg": "aurora-postgresql", "orders-my": "aurora-mysql"}
    SECRETS = {db: f"arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-probe/{db}" for db in databases}
    settings = Settings(restore_drill=(("rto_minutes", 60), ("max_wait_minutes", 60), ("sql_probe", (
        ("secret_arns", tuple(SECRETS.items())), ("subnet_ids", ("subnet-0123456789abcdef0",)),
        ("security_group_ids", ("sg-0123456789abcdef0",)), ("query", DrillsWithAProbe.QUERY)))))

    def setUp(self):
        LocalAwsTest.setUp(self)  # cluster snapshots, not DrillTest's DB snapshots
        for db, engine in self.databases.items():
            self.rds.create_db_instance(DBInstanceIdentifier=f"{db}-a", DBClusterIdentifier=db, Engine=engine,
                                        DBInstanceClass="db.r6g.large")
            self.rds.create_db_cluster_snapshot(DBClusterIdentifier=db, DBClusterSnapshotIdentifier=f"{db}-backup",
                                                Tags=self.our_tags(db))
            self.aws.client("secretsmanager", SOURCE).create_secret(
                Name=f"drill-probe/{db}",
                SecretString=json.dumps({"engine": engine, "username": "admin", "password": "correct-horse-battery"}))
        deadline = time.monotonic() + 30
        while any(s["Status"] != "available" for s in self.rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]):
            self.assertLess(time.monotonic(), deadline, "the cluster snapshots are not available")
            time.sleep(0.1)

    def drill_clusters(self) -> list[str]:
        return [c["DBClusterIdentifier"] for c in self.rds.describe_db_clusters()["DBClusters"]
                if c["DBClusterIdentifier"].startswith(self.prefix)]

    def test_the_writer_is_added_probed_and_deleted_before_its_cluster(self):
        execution = self.drill()

        [message] = self.sns_messages()
        text = message["Message"]
        self.assertEqual(execution["status"], "SUCCEEDED", text)
        self.assertEqual(self.calls("rds:RestoreDBClusterFromSnapshot"), 2)
        self.assertEqual(self.calls("rds:CreateDBInstance"), 2)
        self.assertEqual((self.calls("rds:DeleteDBInstance"), self.calls("rds:DeleteDBCluster")), (2, 2))
        self.assertEqual((self.drill_databases(), self.drill_clusters()), ([], []))
        for db in self.databases:
            self.assertEqual(self.metric("RestoreTestSuccess", db), 1)
            # The cluster's restore (10 minutes and 6 s a GB), then its writer's 7 minutes.
            self.assertGreaterEqual(self.restore_time(db), 17.0)
            drill_id = re.search(rf"restored to: ({self.prefix}{db}-\d{{8}}) \(RestoreDBClusterFromSnapshot\)",
                                 text)[1]
            self.assertIn(f"  writer: {drill_id}-1 (db.r6g.large), added once the cluster was available, last "
                          f"status available", text)
            self.assertIn(f"  deleted: {drill_id} (deleting, no final snapshot), after its DB instances {drill_id}-1",
                          text)
        self.assertIn("writer available (db.r6g.large); sql probe 1 row in ", text)
        probes = re.findall(r"sql probe 1 row in \d+ ms, as admin(?: on postgres)?, over TLS \(server certificate "
                            r"verified\)", text)
        self.assertEqual(len(probes), 2, text)

    def test_a_drill_stopped_after_adding_its_writer_leaves_both_to_the_sweep(self):
        control("PUT", "settings", {"clock_scale": 600})
        arn = self.start_drill({"databases": ["orders-pg"]})
        deadline = time.monotonic() + 60
        while not self.drill_databases():
            self.assertLess(time.monotonic(), deadline, "the drill added no writer")
            time.sleep(0.1)
        self.sfn.stop_execution(executionArn=arn)
        [cluster], [writer] = self.drill_clusters(), self.drill_databases()
        self.assertEqual(writer, f"{cluster}-1")

        target = now() + timedelta(minutes=91)
        while now() < target:
            time.sleep(0.2)
        sweep = self.drill({"sweep_only": True})

        self.assertEqual(sweep["status"], "FAILED")
        self.assertEqual((self.drill_databases(), self.drill_clusters()), ([], []))
        [message] = self.sns_messages()
        self.assertIn(f"The sweep deleted drill databases past their delete-after time (their drills did not "
                      f"finish): {writer} (us-east-1), {cluster} (us-east-1)", message["Message"])
