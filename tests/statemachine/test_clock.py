"""The local AWS on a clock (local_aws/clock.py, local_aws/operations.py):
snapshots, copies and exports take time and pass through RDS's statuses; the
limits that only time can reach (copies in progress, running exports, RDS's
request rate) refuse as AWS does; Step Functions waits and reads the same
clock."""

from __future__ import annotations

import json
import time
import unittest
from datetime import datetime, timedelta

import botocore.exceptions

from harness import DESTINATION, SOURCE, control, endpoint, now
from local_aws.deploy import Aws

ACCOUNT = "123456789012"
EXPORT = {"S3BucketName": "exports", "IamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/export", "KmsKeyId": "key"}


class ClockTest(unittest.TestCase):
    scale = 3600  # an hour a second

    def setUp(self):
        control("POST", "reset")
        control("PUT", "settings", {"clock_scale": self.scale})
        self.aws = Aws(endpoint())
        self.rds = self.aws.client("rds", SOURCE)
        self.destination = self.aws.client("rds", DESTINATION)

    def tearDown(self):
        control("PUT", "settings", {"clock_scale": 0})

    def database(self, name: str = "db", gb: int = 100) -> None:
        self.rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
                                    AllocatedStorage=gb, MasterUsername="admin",
                                    MasterUserPassword="correct-horse-battery")

    def snapshot(self, snapshot_id: str, rds=None) -> dict:
        return (rds or self.rds).describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"][0]

    def until(self, read, done, timeout: float = 20) -> list:
        """What `read()` returned, polled until `done(last)`: every value seen."""
        seen, deadline = [read()], time.monotonic() + timeout
        while not done(seen[-1]):
            self.assertLess(time.monotonic(), deadline, f"still {seen[-1]} after {timeout} s")
            time.sleep(0.05)
            seen.append(read())
        return seen

    def available_snapshot(self, snapshot_id: str, db: str = "db") -> dict:
        self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=snapshot_id)
        return self.until(lambda: self.snapshot(snapshot_id), lambda s: s["Status"] == "available")[-1]


class Operations(ClockTest):
    def test_a_snapshot_is_creating_with_progress_until_its_duration_has_passed(self):
        # 4 real seconds of creating, however slow the calls are on a busy machine (at an hour a
        # second it was 0.1 s, and a loaded CI saw the snapshot available at the first look).
        control("PUT", "settings", {"clock_scale": 100})
        self.database(gb=100)  # the model: 120 s + 3 s per GB, a full first snapshot: 7 simulated minutes
        before = now()
        self.rds.create_db_snapshot(DBInstanceIdentifier="db", DBSnapshotIdentifier="first")
        seen = self.until(lambda: self.snapshot("first"), lambda s: s["Status"] == "available", timeout=60)
        self.assertEqual(seen[0]["Status"], "creating")
        progress = [s["PercentProgress"] for s in seen]
        self.assertEqual(progress, sorted(progress), "progress only grows")
        self.assertEqual(progress[-1], 100)
        self.assertLess(progress[0], 100)
        created = seen[-1]["SnapshotCreateTime"]
        self.assertLess(abs((created - before).total_seconds()), 600, "the creation time is the clock's")
        self.assertGreaterEqual((now() - created).total_seconds(), 420)

    def test_later_snapshots_are_incremental_and_copies_of_one_source_queue(self):
        self.database(gb=4000)
        first = self.available_snapshot("first")
        started = now()
        second = self.available_snapshot("second")
        # A full snapshot of 4 TB: 120 + 12,000 s; an incremental one: 120 + 1,200 s (the rest: the
        # polls' own time, on a loaded machine).
        self.assertLess((now() - started).total_seconds(), 6000)
        copies = {}
        for snapshot in (first, second):
            copied = self.destination.copy_db_snapshot(SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
                                                       TargetDBSnapshotIdentifier=f"{snapshot['DBSnapshotIdentifier']}-copy")
            copies[copied["DBSnapshot"]["DBSnapshotIdentifier"]] = copied["DBSnapshot"]["Status"]
        self.assertEqual(copies, {"first-copy": "copying", "second-copy": "pending"},
                         "the second copy of the same database waits for the first")
        def both() -> tuple[str, str]:
            # One call, one moment: read apart, the two could straddle the hand-over.
            statuses = {s["DBSnapshotIdentifier"]: s["Status"]
                        for s in self.destination.describe_db_snapshots()["DBSnapshots"]}
            return statuses["first-copy"], statuses["second-copy"]

        seen = self.until(both, lambda statuses: statuses == ("available", "available"), timeout=60)
        self.assertIn(("available", "copying"), seen, "the second copy starts once the first is done")
        self.assertNotIn(("copying", "copying"), seen)

    def test_an_export_starts_then_runs_then_completes_with_the_data_exported(self):
        control("PUT", "settings", {"clock_scale": 100})  # 6 real seconds starting, then 10 running
        self.database(gb=50)
        snapshot = self.available_snapshot("s")
        task = self.rds.start_export_task(ExportTaskIdentifier="e", SourceArn=snapshot["DBSnapshotArn"], **EXPORT)
        self.assertEqual(task["Status"], "STARTING")
        seen = self.until(lambda: self.rds.describe_export_tasks(ExportTaskIdentifier="e")["ExportTasks"][0],
                          lambda t: t["Status"] == "COMPLETE", timeout=60)
        statuses = [t["Status"] for t in seen]
        self.assertEqual(sorted(set(statuses), key=statuses.index), ["STARTING", "IN_PROGRESS", "COMPLETE"])
        self.assertEqual(seen[-1]["TotalExtractedDataInGB"], 50)
        self.assertEqual(seen[-1]["PercentProgress"], 100)
        self.assertGreaterEqual((seen[-1]["TaskEndTime"] - seen[-1]["TaskStartTime"]).total_seconds(), 600 + 50 * 20)

    def test_a_copy_of_a_snapshot_still_being_created_is_refused(self):
        # A snapshot that stays creating for 100 real seconds, however slow the calls are on a busy machine.
        control("PUT", "settings", {"snapshot_seconds_per_gb": 3600})
        self.database()
        self.rds.create_db_snapshot(DBInstanceIdentifier="db", DBSnapshotIdentifier="s")
        arn = self.snapshot("s")["DBSnapshotArn"]
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.destination.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier="c")
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidDBSnapshotState")
        self.assertIn("creating", refused.exception.response["Error"]["Message"])


class Limits(ClockTest):
    """What only time can reach: each refusal's count includes what runs now."""

    def test_copies_in_progress_to_one_region_are_limited(self):
        # Copies that last (30 real seconds at most) whatever the machine's load, and a limit of 2.
        control("PUT", "settings", {"copy_limit": 2, "copy_seconds_per_gb": 100})
        for db in ("a", "b", "c"):
            self.database(db)
        sources = [self.available_snapshot(f"{db}-1", db)["DBSnapshotArn"] for db in ("a", "b", "c")]
        for n, arn in enumerate(sources[:2]):
            self.destination.copy_db_snapshot(SourceDBSnapshotIdentifier=arn, TargetDBSnapshotIdentifier=f"copy-{n}")
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.destination.copy_db_snapshot(SourceDBSnapshotIdentifier=sources[2], TargetDBSnapshotIdentifier="copy-2")
        self.assertEqual(refused.exception.response["Error"]["Code"], "SnapshotQuotaExceeded")
        self.assertIn("Cannot copy more than 2 snapshots", refused.exception.response["Error"]["Message"])
        # Another region has slots of its own; once the copies are done, this one has too.
        self.aws.client("rds", "eu-west-1").copy_db_snapshot(SourceDBSnapshotIdentifier=sources[2],
                                                             TargetDBSnapshotIdentifier="copy-2")
        self.until(lambda: self.snapshot("copy-0", self.destination)["Status"], lambda s: s == "available", timeout=40)
        self.destination.copy_db_snapshot(SourceDBSnapshotIdentifier=sources[2], TargetDBSnapshotIdentifier="copy-2")

    def test_five_exports_run_per_account_and_one_per_snapshot(self):
        for db in ("a", "b", "c"):
            self.database(db, gb=20)
        # Exports that last (a simulated day: 24 real seconds) whatever the machine's load.
        control("PUT", "settings", {"export_limit": 2, "export_seconds_per_gb": 4320})
        arns = [self.available_snapshot(f"{db}-1", db)["DBSnapshotArn"] for db in ("a", "b", "c")]
        self.rds.start_export_task(ExportTaskIdentifier="a-export", SourceArn=arns[0], **EXPORT)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.rds.start_export_task(ExportTaskIdentifier="a-again", SourceArn=arns[0], **EXPORT)
        self.assertEqual(refused.exception.response["Error"]["Code"], "ExportTaskAlreadyExists")
        self.assertIn("a-export", refused.exception.response["Error"]["Message"])
        # The limit is the account's: an export in another region counts.
        west = self.aws.client("rds", DESTINATION)
        west.create_db_instance(DBInstanceIdentifier="w", Engine="postgres", DBInstanceClass="db.t3.micro",
                                AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="correct-horse-battery")
        west.create_db_snapshot(DBInstanceIdentifier="w", DBSnapshotIdentifier="w-1")
        self.until(lambda: self.snapshot("w-1", west)["Status"], lambda s: s == "available")
        west.start_export_task(ExportTaskIdentifier="w-export", SourceArn=self.snapshot("w-1", west)["DBSnapshotArn"],
                               **EXPORT)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            self.rds.start_export_task(ExportTaskIdentifier="b-export", SourceArn=arns[1], **EXPORT)
        self.assertEqual(refused.exception.response["Error"]["Code"], "ExportTaskLimitReachedFault")
        control("PUT", "settings", {"exports_running_per_account": 0})
        self.rds.start_export_task(ExportTaskIdentifier="b-export", SourceArn=arns[1], **EXPORT)

    def test_rds_requests_beyond_the_bucket_are_throttled_until_it_refills(self):
        control("PUT", "settings", {"rds_request_rate": 2, "rds_request_burst": 5, "clock_scale": 1})
        single_try = self.aws.client("rds", SOURCE)  # no retries
        answers = []
        for _ in range(8):
            try:
                single_try.describe_db_snapshots()
                answers.append("ok")
            except botocore.exceptions.ClientError as err:
                answers.append(f"{err.response['Error']['Code']}: {err.response['Error']['Message']}")
        self.assertEqual(answers[:5], ["ok"] * 5, "the burst")
        self.assertIn("Throttling: Rate exceeded", answers[5:])
        time.sleep(1.1)  # two tokens a second
        single_try.describe_db_snapshots()
        self.assertGreaterEqual(control("GET", "clock")["rds_throttled"], 1)
        # Other regions have buckets of their own.
        self.destination.describe_db_snapshots()


class StepFunctionsTime(ClockTest):
    def test_a_wait_lasts_its_simulated_time_and_the_context_times_follow_the_clock(self):
        definition = {
            "StartAt": "Before",
            "States": {
                "Before": {"Type": "Pass", "Parameters": {"started.$": "$$.Execution.StartTime",
                                                          "entered.$": "$$.State.EnteredTime"}, "Next": "AnHour"},
                "AnHour": {"Type": "Wait", "Seconds": 3600, "Next": "After"},
                "After": {"Type": "Pass", "Parameters": {"before.$": "$", "after.$": "$$.State.EnteredTime"},
                            "End": True},
            },
        }
        sfn = self.aws.client("stepfunctions", SOURCE)
        role = self.aws.client("iam").create_role(RoleName="clock", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(name="clock", definition=json.dumps(definition), roleArn=role)
        started_real, started = time.monotonic(), now()
        execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
        description = self.until(lambda: sfn.describe_execution(executionArn=execution),
                                 lambda d: d["status"] != "RUNNING")[-1]
        self.assertEqual(description["status"], "SUCCEEDED")
        self.assertLess(time.monotonic() - started_real, 10, "an hour at 3600x is a second or so")
        output = json.loads(description["output"])
        start, after = (datetime.fromisoformat(value.replace("Z", "+00:00"))
                        for value in (output["before"]["started"], output["after"]))
        self.assertLess(abs((start - started).total_seconds()), 600, "StartTime is the clock's")
        self.assertGreaterEqual(after - start, timedelta(hours=1))
        self.assertGreaterEqual(description["stopDate"] - description["startDate"], timedelta(hours=1))


if __name__ == "__main__":
    unittest.main()
