"""The demo, end to end, as a user runs it: `scripts/demo` (build, local AWS,
databases, terraform apply of terraform/examples/local-aws, a scheduled-style
backup), then reruns, a console rerun for one database, a failing step, a
restore, and `terraform destroy`. Every assertion reads the local AWS's state
(boto3 and the gateway's control API), not the demo's printout.

The steps build on each other (one deployment, several runs), so they are
one scenario: test methods named in order, each skipped once one has failed.
Run by scripts/test inside `scripts/local-aws run`; it empties that local AWS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import unittest
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.exceptions import ClientError

from demo import resources, world
from least_privilege import (VAULT_ROLE_CALLS, check_role, check_state_machine_role, operations_in, policy_document,
                             role_documents, statements)
from demo.follow import Execution, read
from demo.report import Inventory, created_at, manual_snapshots, metric_sums, tag_map
from demo.stack import Stack
from local_aws.control import control, local_endpoint
from local_aws.deploy import Aws

ROOT = Path(__file__).resolve().parents[2]
DATABASES = [d.identifier for d in world.DATABASES]
# The example's vault account (terraform/examples/local-aws, vault_account_id).
VAULT_ACCOUNT = "111111111111"
SOURCE_ACCOUNT = "123456789012"
SNAPSHOT_ID = re.compile(r"^(?P<db>[a-z0-9-]+)-\d{8}-\d{6}(-[0-9a-f]{6})?$")


endpoint = local_endpoint


def expected_deletions(ours: dict[tuple[str, str], datetime], now: datetime) -> set[tuple[str, str]]:
    """The module's retention rule, written out independently of the Rust code: per database
    and region, the newest MIN_SNAPSHOTS_TO_KEEP stay; of the rest, those older than
    RETENTION_DAYS go. Prune applies it to every database of the module instance, whichever
    the run backed up. `ours`: (region, snapshot id) -> creation time."""
    groups: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for (region, sid), created in ours.items():
        groups.setdefault((region, SNAPSHOT_ID.match(sid).group("db")), []).append((created, sid))
    deletions = set()
    for (region, _db), snapshots in groups.items():
        older = sorted(snapshots, reverse=True)[world.MIN_SNAPSHOTS_TO_KEEP:]
        deletions |= {(region, sid) for created, sid in older if now - created > timedelta(days=world.RETENTION_DAYS)}
    return deletions


# The example's vault retention (terraform/examples/local-aws, module "vault").
VAULT_POLICY = {"daily": 7, "monthly": 84}
VAULT_MIN_KEEP = 3
VAULT_STALE_HOURS = 36
TIER_PERIOD = {"daily": lambda at: at.date(), "weekly": lambda at: at.isocalendar()[:2],
               "monthly": lambda at: (at.year, at.month), "yearly": lambda at: at.year}


def vault_keeps(copies: dict[str, tuple[str, datetime]], now: datetime) -> dict[str, list[str]]:
    """The vault's retention, written out independently of the Rust code: of each database's
    available copies (id -> (database, created)), the newest VAULT_MIN_KEEP stay, and each
    tier of VAULT_POLICY keeps the first copy of each of its newest periods that have one;
    a database whose newest copy is older than VAULT_STALE_HOURS keeps them all. Returns the
    kept ids, each with the tiers that keep it."""
    by_db: dict[str, list[tuple[datetime, str]]] = {}
    for sid, (db, created) in copies.items():
        by_db.setdefault(db, []).append((created, sid))
    kept: dict[str, list[str]] = {}
    for snapshots in by_db.values():
        newest_first = sorted(snapshots, reverse=True)
        tiers: dict[str, list[str]] = {sid: [] for _, sid in snapshots}
        for tier, count in VAULT_POLICY.items():
            first_of: dict = {}
            for created, sid in sorted(snapshots):
                first_of.setdefault(TIER_PERIOD[tier](created), sid)
            for period in sorted(first_of, reverse=True)[:count]:
                tiers[first_of[period]].append(tier)
        stale = now - newest_first[0][0] > timedelta(hours=VAULT_STALE_HOURS)
        for rank, (_, sid) in enumerate(newest_first):
            if stale or rank < VAULT_MIN_KEEP or tiers[sid]:
                kept[sid] = tiers[sid]
    return kept


class Demo(unittest.TestCase):
    aws: Aws
    stack: Stack
    outputs: dict
    failed_step: str | None = None
    published_seen = 0
    # Our snapshots (region, id) -> created, as of the end of the previous step.
    ours_before: dict[tuple[str, str], datetime]

    @classmethod
    def setUpClass(cls):
        control(endpoint(), "POST", "reset")
        cls.aws = Aws(endpoint())
        cls.vault = Aws(endpoint(), account=VAULT_ACCOUNT)
        cls.stack = Stack(endpoint())
        cls.ours_before = {}

    def run(self, result=None):
        result = result or self.defaultTestResult()
        problems = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > problems:
            Demo.failed_step = self._testMethodName
        return result

    def setUp(self):
        if Demo.failed_step:
            self.skipTest(f"an earlier step failed: {Demo.failed_step}")

    def tearDown(self):
        control(endpoint(), "DELETE", "faults")

    # Helpers reading the local AWS.
    def demo(self, *args: str) -> tuple[int, str, float]:
        """Runs scripts/demo ARGS; (exit status, output, seconds)."""
        started = time.monotonic()
        # The retention plan as scripts/check built it (cargo run's flags differ: it would rebuild).
        env = {**os.environ, "RETENTION_PLAN_BINARY": str(ROOT / "target" / "debug" / "retention-plan")}
        result = subprocess.run(["scripts/demo", *args], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                                env=env)
        output = result.stdout + result.stderr
        print(f"\n--- scripts/demo {' '.join(args)}: exit {result.returncode} in {time.monotonic() - started:.0f} s")
        print(output)  # terraform's own output is in the demo's log (.tools/demo/terraform.log)
        return result.returncode, output, time.monotonic() - started

    def snapshots(self, region: str) -> dict[str, dict]:
        return manual_snapshots(self.aws, region)

    def ours(self) -> dict[tuple[str, str], datetime]:
        """This module instance's snapshots in both regions: (region, id) -> created."""
        inventory = Inventory.take(self.aws)
        return {key: created_at(inventory.snapshots[key]) for key in inventory.ours()}

    def executions(self) -> list[dict]:
        """The state machine's executions, oldest first, each described."""
        sfn = self.aws.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=Demo.outputs["state_machine_arn"])["executions"]
        described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
        return sorted(described, key=lambda e: e["startDate"])

    def read(self, arn: str) -> Execution:
        """A run with its databases' executions."""
        return read(self.aws.client("stepfunctions"), arn)

    def lambda_payloads(self, arn: str, state: str) -> list[dict]:
        """What a Task state sent its function, each time it was entered, in the run or in its databases' executions."""
        run = self.read(arn)
        payloads = []
        for history in [run.history] + [database.history for database in run.databases.values()]:
            entered = {e["id"] for e in history
                       if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == state}
            payloads += [
                json.loads(e["lambdaFunctionScheduledEventDetails"]["input"])
                for e in history
                if e["type"] == "LambdaFunctionScheduled" and e["previousEventId"] in entered
            ]
        return payloads

    def made_by(self, execution_arn: str, region: str) -> dict[str, dict]:
        """The snapshots an execution made in a region, by database."""
        found: dict[str, dict] = {}
        for snapshot in self.snapshots(region).values():
            tags = tag_map(snapshot)
            if tags.get(world.EXECUTION) == execution_arn:
                self.assertNotIn(tags[world.SOURCE_DB], found, f"two snapshots of one database in {region}")
                found[tags[world.SOURCE_DB]] = snapshot
        return found

    def vault_copies(self) -> dict[str, dict]:
        """The vault account's snapshots, by identifier."""
        return manual_snapshots(Demo.vault, world.SOURCE)

    def vault_made_by(self, execution_arn: str) -> dict[str, dict]:
        """The copies of an execution's snapshots in the vault account, by database."""
        return {tag_map(s)[world.SOURCE_DB]: s for s in self.vault_copies().values()
                if tag_map(s).get(world.EXECUTION) == execution_arn}

    def assert_nothing_left_shared(self):
        """No copy made to share is left in the source account, and no snapshot of it is shared."""
        rds = self.aws.client("rds", world.SOURCE)
        listed = self.snapshots(world.SOURCE)
        self.assertEqual([sid for sid in listed if sid.endswith("-vault")], [])
        for sid in listed:
            attributes = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=sid)["DBSnapshotAttributesResult"]
            shared = [v for a in attributes["DBSnapshotAttributes"] if a["AttributeName"] == "restore"
                      for v in a.get("AttributeValues", [])]
            self.assertEqual(shared, [], sid)

    def metric_sums(self, since: datetime) -> dict[tuple[str, str], float]:
        """Metric sums since an instant: (name, database or "(run)") -> sum."""
        return metric_sums(endpoint(), Demo.outputs["metrics_namespace"], Demo.outputs["managed_by_tag_value"],
                           since, datetime.max.replace(tzinfo=UTC))

    def published(self) -> list[dict]:
        """The messages published to the module's topic since the previous call."""
        messages = [m for m in control(endpoint(), "GET", "sns/published?region=us-east-1")
                    if m["topic_arn"] == Demo.outputs["sns_topic_arn"]]
        new, Demo.published_seen = messages[Demo.published_seen:], len(messages)
        return new

    def invoke(self, function: str, payload: dict) -> dict:
        response = self.aws.client("lambda").invoke(
            FunctionName=Demo.outputs["lambda_function_names"][function], Payload=json.dumps(payload).encode()
        )
        body = json.loads(response["Payload"].read())
        self.assertNotIn("FunctionError", response, body)
        return body

    def assert_backed_up(self, execution: dict, databases: list[str]):
        """Each database has one available snapshot, copy and export from this execution; the others none."""
        arn = execution["executionArn"]
        source = self.made_by(arn, world.SOURCE)
        copies = self.made_by(arn, world.DESTINATION)
        self.assertEqual(sorted(source), sorted(databases))
        self.assertEqual(sorted(copies), sorted(databases))
        tasks = self.aws.client("rds").describe_export_tasks()["ExportTasks"]
        started = execution["startDate"].astimezone(UTC)
        for db in databases:
            snapshot, copy = source[db], copies[db]
            self.assertEqual(SNAPSHOT_ID.match(snapshot["DBSnapshotIdentifier"]).group("db"), db)
            # <db>-<start>-<instance>: six hex digits of a hash of the managed-by value.
            self.assertRegex(snapshot["DBSnapshotIdentifier"], rf"^{db}-{started:%Y%m%d-%H%M%S}-[0-9a-f]{{6}}$")
            self.assertEqual((snapshot["Status"], copy["Status"]), ("available", "available"))
            self.assertEqual(tag_map(snapshot)[world.MANAGED_BY], world.INSTANCE)
            self.assertEqual(copy["DBSnapshotIdentifier"], snapshot["DBSnapshotIdentifier"])
            # A copy is encrypted as its source is: an unencrypted database's copy too.
            if snapshot["Encrypted"]:
                self.assertTrue(copy["KmsKeyId"].startswith(f"arn:aws:kms:{world.DESTINATION}:"), copy["KmsKeyId"])
            else:
                self.assertNotIn("KmsKeyId", copy)
            exports = [t for t in tasks if t["SourceArn"] == snapshot["DBSnapshotArn"]]
            self.assertEqual(len(exports), 1, exports)
            # (RDS documents COMPLETE; moto answers lower case)
            self.assertEqual(exports[0]["Status"].upper(), "COMPLETE")
            self.assertEqual(exports[0]["S3Bucket"], Demo.outputs["s3_bucket_name"])
            self.assertEqual(exports[0]["S3Prefix"], f"{world.PROJECT}/{world.ENVIRONMENT}/{db}/{started:%Y-%m-%d}")
        # Each reached the vault account encrypted with the vault's key, whatever encrypted it
        # here (aws/rds, the DBA team's key, nothing), tagged with where it came from.
        vault = self.vault_made_by(arn)
        self.assertEqual(sorted(vault), sorted(databases))
        encryption = {d.identifier: d.encryption for d in world.DATABASES}
        for db in databases:
            copy, snapshot = vault[db], source[db]
            self.assertEqual(copy["DBSnapshotIdentifier"], snapshot["DBSnapshotIdentifier"])
            self.assertEqual(copy["Status"], "available")
            self.assertEqual((copy["Encrypted"], copy["KmsKeyId"]), (True, Demo.outputs["vault_kms_key_arn"]), db)
            self.assertEqual(snapshot["Encrypted"], encryption[db] != world.UNENCRYPTED, db)
            self.assertEqual(tag_map(copy)["database-backup:source-account"], SOURCE_ACCOUNT)
            self.assertEqual(tag_map(copy)["database-backup:copied-from"], snapshot["DBSnapshotArn"])
            self.assertEqual(tag_map(copy)[world.MANAGED_BY], world.INSTANCE)
        self.assert_nothing_left_shared()

    def assert_pruned_by_the_rule(self, run_started: datetime):
        """Exactly the snapshots the retention rule names are gone; every foreign one stays."""
        now_ours = self.ours()
        before = {**Demo.ours_before, **{k: v for k, v in now_ours.items() if k not in Demo.ours_before}}
        gone = set(Demo.ours_before) - set(now_ours)
        self.assertEqual(gone, expected_deletions(before, run_started))
        for old in world.OLD_SNAPSHOTS:
            if not old.ours:
                self.assertIn(old.snapshot_id(Demo.seeded_at), self.snapshots(old.region), "a foreign snapshot was deleted")
        Demo.ours_before = now_ours

    # The scenario.
    def test_1_demo_runs_to_the_final_report(self):
        status, output, seconds = self.demo()
        self.assertEqual(status, 0, output[-4000:])
        # One restore drill, its recovery time printed (restore_drill of the example: one database
        # of two at random, a 30-minute target), the restored copy queried by the SQL probe.
        self.assertRegex(output, r"recovery time of prod-database-[12] \(metric RestoreTime\): \d+\.\d min")
        # PostgreSQL's protocol (prod-database-1) or MySQL's (prod-database-2), whichever was drilled.
        self.assertRegex(output, r"sql probe 1 row in \d+ ms, as dbadmin( on postgres)?, over TLS \(server certificate "
                                 r"verified\)")
        self.assertIn("restore drill PASSED", output)
        Demo.outputs = self.stack.outputs()
        # The webhook URL is a secret: its Secrets Manager secret holds it; no output, no state
        # machine definition and no function's configuration (environment) does.
        secret = self.stack.slack_webhook_url.split("/services/", 1)[1]
        sfn = self.aws.client("stepfunctions")
        definitions = [sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])["definition"]
                       for m in sfn.list_state_machines()["stateMachines"]]
        self.assertEqual(len(definitions), 3)  # the run, one database, the restore drill
        lambda_client = self.aws.client("lambda")
        configurations = [json.dumps(lambda_client.get_function_configuration(FunctionName=f["FunctionName"]), default=str)
                          for f in lambda_client.list_functions()["Functions"]]
        self.assertEqual(len(configurations), 10)  # with the drills and their SQL probe
        for text in [json.dumps(Demo.outputs), *definitions, *configurations]:
            self.assertNotIn(secret, text)
        notify = lambda_client.get_function_configuration(FunctionName=Demo.outputs["lambda_function_names"]["notify"])
        stored = self.aws.client("secretsmanager").get_secret_value(
            SecretId=notify["Environment"]["Variables"]["SLACK_WEBHOOK_SECRET_ARN"])
        self.assertEqual(stored["SecretString"], self.stack.slack_webhook_url)
        # The seeds are named and dated from the moment the databases were made.
        first_db = self.aws.client("rds").describe_db_instances(DBInstanceIdentifier=DATABASES[0])["DBInstances"][0]
        Demo.seeded_at = first_db["InstanceCreateTime"].astimezone(UTC)
        self.assertIsNone(self.stack.drift(), "a plan after the apply still changes things")
        executions = self.executions()
        self.assertEqual(len(executions), 1)
        run = executions[0]
        self.assertEqual(run["status"], "SUCCEEDED", run)
        # Started by the deployed schedule rule (fired now): its target's input, unchanged.
        target = self.aws.client("events").list_targets_by_rule(Rule=Demo.outputs["schedule_rule_name"])["Targets"]
        self.assertEqual([t["Arn"] for t in target], [Demo.outputs["state_machine_arn"]])
        self.assertEqual(json.loads(run["input"]), json.loads(target[0]["Input"]))
        started = [d for d in control(endpoint(), "GET", "events") if d["rule"] == Demo.outputs["schedule_rule_name"]]
        self.assertEqual([d.get("execution_arn") for d in started], [run["executionArn"]])
        self.assert_backed_up(run, DATABASES)

        # Prune: seeds of ours past retention beyond the newest 3 went; the rest stayed.
        seeds = {}
        for old in world.OLD_SNAPSHOTS:
            if old.ours:
                seeds[(old.region, old.snapshot_id(Demo.seeded_at))] = Demo.seeded_at - timedelta(days=old.age_days)
        Demo.ours_before = seeds
        self.assert_pruned_by_the_rule(run["startDate"])
        self.assertEqual(len(set(seeds) - set(self.ours())), 4, "the seeds are laid out for four deletions")

        # The run's summary, then the restore drill's.
        messages = self.published()
        self.assertEqual(len(messages), 2, messages)
        drill = messages.pop()
        self.assertTrue(drill["subject"].startswith("database-backup restore drill PASSED"), drill["subject"])
        self.assertRegex(drill["message"], r"prod-database-[12]: restored and checked in \d+\.\d min "
                                           r"\(within the 30 min target\)")
        self.assertTrue(messages[0]["subject"].startswith("[SUCCEEDED]"), messages[0]["subject"])
        self.assertIn(f"{len(DATABASES)} of {len(DATABASES)}", messages[0]["subject"])
        for db in DATABASES:
            self.assertIn(db, messages[0]["message"])
        # The demo read it from the queue subscribed to the topic, as printed.
        self.assertIn(f"subject: {messages[0]['subject']}", output)
        slack = control(endpoint(), "GET", "slack")
        self.assertEqual(len(slack), 2)  # the run's, then the drill's
        self.assertEqual(slack[0]["path"], "/slack/services/T0DEMO/B0DEMO/database-backup")
        self.assertIn("succeeded", slack[0]["message"]["text"])
        self.assertIn("restore drill passed", json.dumps(slack[1]["message"]))
        metrics = self.metric_sums(run["startDate"] - timedelta(seconds=1))
        for db in DATABASES:
            self.assertEqual((metrics[("BackupSuccess", db)], metrics[("BackupFailure", db)]), (1, 0))
        self.assertEqual(metrics[("BackupFailure", "(run)")], 0)
        self.assertEqual((metrics[("VaultCopySuccess", "(run)")], metrics[("VaultCopyFailure", "(run)")]),
                         (len(DATABASES), 0))
        for db, copy in self.vault_made_by(run["executionArn"]).items():
            self.assertIn(f"vault copy {copy['DBSnapshotIdentifier']} in {world.SOURCE} (account {VAULT_ACCOUNT})",
                          messages[0]["message"], db)
        # The storage prune kept, per region: its snapshots' allocated GiB, at RDS's list price.
        for region in (world.SOURCE, Demo.outputs["copy_region"]):
            listed = self.snapshots(region)
            gib = sum(listed[sid]["AllocatedStorage"] for (r, sid) in self.ours() if r == region)
            self.assertGreater(gib, 0)
            self.assertEqual(metrics[("RetainedSnapshotGB", region)], gib, region)
            # In the module's region, the export bucket's objects too: STANDARD at $0.023 a GB-month.
            export_cost = round(self.exported_bytes() / 1e9 * 0.023, 2) if region == world.SOURCE else 0
            self.assertAlmostEqual(metrics[("EstimatedMonthlyCost", region)], round(gib * 0.095, 2) + export_cost, 2)
        self.assertGreater(self.exported_bytes(), 0)
        self.assertAlmostEqual(metrics[("RetainedExportGB", world.SOURCE)], self.exported_bytes() / 1e9, 6)
        self.assertNotIn(("RetainedExportGB", Demo.outputs["copy_region"]), metrics)
        self.assertIn(f"exports in s3://{Demo.outputs['s3_bucket_name']}: ", messages[0]["message"])
        # The printed report says the same (what users read must match what happened).
        for snapshot in self.made_by(run["executionArn"], world.SOURCE).values():
            self.assertIn(snapshot["DBSnapshotIdentifier"], output)
        transitions = re.search(r"state transitions: (.*)", output).group(1)
        print(f"demo wall time {seconds:.0f} s; state transitions: {transitions}")

    def exported_bytes(self) -> int:
        """What the export bucket holds, every object in STANDARD (the lifecycle moves none in a day)."""
        pages = self.aws.client("s3", world.SOURCE).get_paginator("list_objects_v2").paginate(
            Bucket=Demo.outputs["s3_bucket_name"])
        objects = [o for page in pages for o in page.get("Contents", [])]
        self.assertEqual({o.get("StorageClass", "STANDARD") for o in objects} - {"STANDARD"}, set())
        return sum(o["Size"] for o in objects)

    def test_1b_each_dashboard_graph_lists_one_metric_a_row(self):
        """CloudWatch reads a graph's `metrics` as rows (namespace, name, dimension pairs, options);
        `flatten` over rows once made one list of strings of them."""
        cloudwatch = self.aws.client("cloudwatch", world.SOURCE)
        [dashboard] = cloudwatch.list_dashboards()["DashboardEntries"]  # the demo's one instance
        body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard["DashboardName"])["DashboardBody"])
        graphs = [w["properties"] for w in body["widgets"] if w["type"] == "metric"]
        self.assertGreater(len(graphs), 3)
        for graph in graphs:
            for row in graph["metrics"]:
                self.assertIsInstance(row, list, graph["title"])
                self.assertTrue(all(isinstance(v, str) for v in row if not isinstance(v, dict)), row)
        titles = {g["title"]: g["metrics"] for g in graphs}
        [retained] = [m for t, m in titles.items() if t.startswith("Retained snapshots")]
        self.assertIn("RetainedExportGB", retained[0])

    def test_1a_each_function_role_grants_exactly_what_its_code_calls(self):
        """The applied roles' policies against the actions in each deployed function's binary."""
        lambda_client, iam = self.aws.client("lambda"), self.aws.client("iam")
        checks = []
        for function, name in sorted(Demo.outputs["lambda_function_names"].items()):
            role = lambda_client.get_function(FunctionName=name)["Configuration"]["Role"].rsplit("/", 1)[-1]
            self.assertEqual(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], role)
            checks.append(check_role(function, ROOT / "target" / "lambda" / f"backup-{function}" / "bootstrap.zip",
                                     role_documents(iam, role), in_vpc=function == "probe"))
        # The state machines' role against what their definitions call.
        sfn = self.aws.client("stepfunctions")
        machines = [sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])
                    for m in sfn.list_state_machines()["stateMachines"]]
        tracing = {m.get("tracingConfiguration", {}).get("enabled", False) for m in machines}
        self.assertEqual(len(tracing), 1, "both state machines trace, or neither")
        [role] = {m["roleArn"].rsplit("/", 1)[-1] for m in machines}
        checks.append(check_state_machine_role([json.loads(m["definition"]) for m in machines],
                                               role_documents(iam, role), tracing.pop()))
        print("\nIAM diff (actions the code calls, plus what AWS authorises with them, against each role):")
        for check in checks:
            print("  " + check.line())
        self.assertEqual([c.line() for c in checks if not c.ok], [])
        # The check sees the calls: each function calls what its job needs.
        called = {c.function: c.called for c in checks}
        self.assertIn("rds:CreateDBSnapshot", called["snapshot"])
        self.assertIn("rds:DeleteDBSnapshot", called["prune"])
        # The drill's SQL probe reads its secret and nothing else of AWS (its role, the secret).
        self.assertEqual(called["probe"], {"secretsmanager:GetSecretValue"})
        # It only reads its input: the demo names its databases, so select lists none (and may not).
        self.assertEqual(called["select"], set())
        # The buckets' guard: the S3 operation under its IAM name, and nothing else of S3.
        self.assertEqual({a for a in called["export"] if a.startswith("s3:")}, {"s3:ListBucketVersions"})
        # Prune lists the export bucket (ListObjectsV2) for the summary's storage and cost.
        self.assertEqual({a for a in called["prune"] if a.startswith("s3:")}, {"s3:ListBucket"})
        # DescribeExportTasks names no resource: IAM matches it against "*", never a named ARN.
        wait_zip = ROOT / "target" / "lambda" / "backup-wait-for-available" / "bootstrap.zip"
        grant = {"Effect": "Allow", "Action": "rds:DescribeExportTasks", "Resource": "arn:aws:rds:us-east-1:123456789012:*"}
        self.assertIn("rds:DescribeExportTasks", check_role("wait-for-available", wait_zip, [{"Statement": [grant]}]).missing)
        grant["Resource"] = "*"
        self.assertIn("rds:DescribeExportTasks",
                      check_role("wait-for-available", wait_zip, [{"Statement": [grant]}]).star_in_every_region)
        # The export slot queue: the state machines wait in it; the poll that sees an export end
        # hands its slot on.
        self.assertIn("sqs:SendMessage", called["state machines"])
        # A wait's polls: each beats, ends or schedules the next (its role passed to the Scheduler).
        self.assertEqual({a for a in called["wait-for-available"] if not a.startswith("rds:")},
                         {"sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                          "states:SendTaskSuccess",
                          "states:SendTaskFailure", "states:SendTaskHeartbeat", "scheduler:CreateSchedule"})
        # The Scheduler's role: assumed by the Scheduler for the module's group only, and it may
        # invoke wait-for-available only.
        wait_arn = lambda_client.get_function(
            FunctionName=Demo.outputs["lambda_function_names"]["wait-for-available"])["Configuration"]["FunctionArn"]
        [scheduler_role] = [r for r in iam.list_roles()["Roles"]
                            if "scheduler.amazonaws.com" in json.dumps(policy_document(r["AssumeRolePolicyDocument"]))]
        [trust] = policy_document(scheduler_role["AssumeRolePolicyDocument"])["Statement"]
        self.assertRegex(trust["Condition"]["ArnEquals"]["aws:SourceArn"], r":schedule-group/[a-z0-9-]+-polls$")
        grants = [s for document in role_documents(iam, scheduler_role["RoleName"]) for s in statements(document)]
        self.assertEqual([(s.actions, sorted(s.resources)) for s in grants],
                         [({"lambda:InvokeFunction"}, [wait_arn, f"{wait_arn}:*"])])
        # The vault function: the vault role is assumed, the share key read; what the vault
        # account does is the vault role's (modules/vault), not this role's.
        self.assertEqual({a for a in called["vault"] if not a.startswith("rds:")},
                         {"sts:AssumeRole", "kms:DescribeKey", "kms:GetKeyPolicy"})
        self.assertIn("rds:ModifyDBSnapshotAttribute", called["vault"])
        # The vault account's side: the one role the vault function assumes may do what the
        # function does as it (with what RDS authorises with a copy: tags, the keys), nothing
        # more; and it is denied every call that could delete or expose a vault copy.
        vault_iam = Demo.vault.client("iam")
        copier = Demo.outputs["vault_role_arn"].rsplit("/", 1)[-1]
        documents = role_documents(vault_iam, copier)
        self.assertEqual(vault_iam.list_attached_role_policies(RoleName=copier)["AttachedPolicies"], [])
        vault_zip = ROOT / "target" / "lambda" / "backup-vault" / "bootstrap.zip"
        self.assertLessEqual(VAULT_ROLE_CALLS, operations_in(vault_zip))
        allowed = {a for d in documents for s in statements(d) for a in s.actions}
        needed = VAULT_ROLE_CALLS | {"rds:AddTagsToResource", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt",
                                     "kms:ReEncrypt*", "kms:GenerateDataKey*"}
        self.assertEqual(allowed, needed)
        denied = {a for d in documents for s in d["Statement"] if s["Effect"] == "Deny" for a in s["Action"]}
        self.assertLessEqual({"rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot", "rds:ModifyDBSnapshotAttribute",
                              "rds:RestoreDBInstanceFromDBSnapshot", "kms:ScheduleKeyDeletion"}, denied)
        self.assertEqual({a for a in called["notify"] if not a.startswith("rds:")},
                         {"sns:Publish", "cloudwatch:PutMetricData", "states:DescribeExecution",
                          "states:GetExecutionHistory", "secretsmanager:GetSecretValue"})

    def test_2_rerun_with_the_same_input_is_safe(self):
        status, output, _ = self.demo("run")
        self.assertEqual(status, 0, output[-4000:])
        first, second = self.executions()
        self.assertEqual(second["status"], "SUCCEEDED")
        self.assertEqual(second["input"], first["input"])
        self.assert_backed_up(second, DATABASES)
        self.assert_pruned_by_the_rule(second["startDate"])
        # A retry of a step of that run (as Step Functions retries or redrives it) finds its
        # own work: the same snapshot and copy, no new ones, no error; prune deletes nothing more.
        arn = second["executionArn"]
        ours = self.ours()
        for state, function in (("Snapshot", "snapshot"), ("Copy", "copy")):
            payloads = self.lambda_payloads(arn, state)
            self.assertEqual(len(payloads), len(DATABASES))
            for payload in payloads:
                result = self.invoke(function, payload)
                self.assertFalse(result["created"], result)
                self.assertEqual(result["status"], "available")
        # The vault step's last try, again: the vault already holds the copy, nothing more is made.
        vault_before = self.vault_copies()
        tries = {}
        for payload in self.lambda_payloads(arn, "Vault"):
            tries[payload["snapshot"]["db_identifier"]] = payload
        self.assertEqual(sorted(tries), sorted(DATABASES))
        for payload in tries.values():
            result = self.invoke("vault", payload)
            self.assertEqual((result["status"], result["account_id"]), ("available", VAULT_ACCOUNT), result)
        self.assertEqual(self.vault_copies().keys(), vault_before.keys())
        self.assert_nothing_left_shared()
        pruned = self.invoke("prune", self.lambda_payloads(arn, "Prune")[0])
        self.assertEqual([d for region in pruned["regions"] for d in region["deleted"]], [])
        self.assertEqual(self.ours(), ours)
        self.assertEqual(len(self.published()), 1)

    def test_2a_the_retention_plan_shows_what_the_runs_left(self):
        status, output, _ = self.demo("plan", "--json")
        self.assertEqual(status, 0, output[-4000:])
        plan = json.loads(output[output.index("{"):])
        self.assertEqual(plan["selection"]["selected"],
                         [{"reason": "named in rds_instance_ids or rds_cluster_ids", "databases": DATABASES}])
        self.assertEqual([r["region"] for r in plan["regions"]], [world.SOURCE, Demo.outputs["copy_region"]])
        ours = self.ours()
        for region in plan["regions"]:
            with self.subTest(region=region["region"]):
                # Prune just ran: nothing more to delete, and every snapshot of ours is listed, kept.
                self.assertEqual(region["deleting"], 0)
                self.assertEqual(region["retention"], f"{world.RETENTION_DAYS} days")
                listed = {s["snapshot_id"]: s for d in region["databases"] for s in d["snapshots"]}
                self.assertEqual(set(listed), {sid for (r, sid) in ours if r == region["region"]})
                for snapshot_id, snapshot in listed.items():
                    created = datetime.fromisoformat(snapshot["created_at"])
                    self.assertEqual(datetime.fromisoformat(snapshot["expires"]),
                                     created + timedelta(days=world.RETENTION_DAYS), snapshot_id)
                self.assertEqual(region["retained"]["snapshots"], len(listed))
        foreign = {old.snapshot_id(Demo.seeded_at) for old in world.OLD_SNAPSHOTS if not old.ours}
        self.assertFalse(foreign & {s["snapshot_id"] for r in plan["regions"] for d in r["databases"]
                                    for s in d["snapshots"]}, "a foreign snapshot is in the plan")
        self.assertEqual(plan["exports"]["bucket"], Demo.outputs["s3_bucket_name"])

        status, table, _ = self.demo("plan")
        self.assertEqual(status, 0, table[-4000:])
        self.assertIn(f"{world.SOURCE}, retention {world.RETENTION_DAYS} days", table)
        for db in DATABASES:
            self.assertIn(f"  {db} (instance)", table)
        self.assertIn("the next run deletes 0 snapshots", table)

    def test_2b_the_source_account_cannot_delete_a_vault_copy(self):
        """Nothing in the source account can delete, unshare or restore the vault's copies."""
        [copy_id, *_] = sorted(self.vault_copies())
        copy_arn = self.vault_copies()[copy_id]["DBSnapshotArn"]
        # The source account's administrator: RDS has no resource policies, so another
        # account's snapshot is not there to delete.
        with self.assertRaises(ClientError) as refused:
            self.aws.client("rds").delete_db_snapshot(DBSnapshotIdentifier=copy_arn)
        self.assertEqual(refused.exception.response["Error"]["Code"], "DBSnapshotNotFound")
        # A role of the source account named as the vault role's trust expects: it gets into the
        # vault role, and the vault role's explicit deny refuses every destructive call.
        iam, sts = self.aws.client("iam"), self.aws.client("sts")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})
        may_assume = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
        # (The vault function's role is <prefix>-<six hex digits>-vault: the lookalike is a role
        # an administrator of the source account could make.)
        roles = {"intruder": "nestedphoenix-production-abc123-vault", "other": "nestedphoenix-production-admin"}
        try:
            for name in roles.values():
                iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
                iam.put_role_policy(RoleName=name, PolicyName="assume", PolicyDocument=may_assume)

            def as_role(name: str) -> dict:
                credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{SOURCE_ACCOUNT}:role/{name}",
                                              RoleSessionName="test")["Credentials"]
                return {"aws_access_key_id": credentials["AccessKeyId"],
                        "aws_secret_access_key": credentials["SecretAccessKey"],
                        "aws_session_token": credentials["SessionToken"]}

            def into_vault(name: str):
                return self.aws.client("sts", **as_role(name)).assume_role(
                    RoleArn=Demo.outputs["vault_role_arn"], RoleSessionName="test",
                    ExternalId="nestedphoenix-production-vault")["Credentials"]

            with self.assertRaises(ClientError) as refused:
                into_vault(roles["other"])
            self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDenied")
            credentials = into_vault(roles["intruder"])
            vault_rds = self.aws.client("rds", aws_access_key_id=credentials["AccessKeyId"],
                                        aws_secret_access_key=credentials["SecretAccessKey"],
                                        aws_session_token=credentials["SessionToken"])
            attempts = {
                "rds:DeleteDBSnapshot": lambda: vault_rds.delete_db_snapshot(DBSnapshotIdentifier=copy_id),
                "rds:ModifyDBSnapshotAttribute": lambda: vault_rds.modify_db_snapshot_attribute(
                    DBSnapshotIdentifier=copy_id, AttributeName="restore", ValuesToAdd=[SOURCE_ACCOUNT]),
                "rds:RestoreDBInstanceFromDBSnapshot": lambda: vault_rds.restore_db_instance_from_db_snapshot(
                    DBInstanceIdentifier="stolen", DBSnapshotIdentifier=copy_id),
            }
            for action, attempt in attempts.items():
                with self.subTest(action=action), self.assertRaises(ClientError) as refused:
                    attempt()
                self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDenied")
                self.assertIn(f"not authorized to perform: {action}", refused.exception.response["Error"]["Message"])
                self.assertIn("explicit deny", refused.exception.response["Error"]["Message"])
        finally:
            for name in roles.values():
                if name in [r["RoleName"] for r in iam.list_roles()["Roles"]]:
                    iam.delete_role_policy(RoleName=name, PolicyName="assume")
                    iam.delete_role(RoleName=name)
        self.assertIn(copy_id, self.vault_copies())

    def test_2c_a_key_policy_that_keeps_the_vault_out_is_named_once_before_any_copy(self):
        kms = self.aws.client("kms")
        key = Demo.outputs["vault_share_kms_key_arn"]
        original = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        policy = json.loads(original)
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "VaultAccountLetsRdsHoldGrants"]
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
        vault_before = self.vault_copies()
        try:
            status, output, _ = self.demo("run")
        finally:
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=original)
        self.assertNotEqual(status, 0, output[-4000:])
        run = self.executions()[-1]
        # The backups themselves were made, everywhere but in the vault.
        self.assertEqual(sorted(self.made_by(run["executionArn"], world.SOURCE)), sorted(DATABASES))
        self.assertEqual(sorted(self.made_by(run["executionArn"], world.DESTINATION)), sorted(DATABASES))
        self.assertEqual(self.vault_copies().keys(), vault_before.keys())
        self.assert_nothing_left_shared()
        [message] = self.published()
        self.assertTrue(message["subject"].endswith(", vault not used"), message["subject"])
        self.assertEqual(message["message"].count("kms:CreateGrant"), 1, message["message"])
        self.assertIn(f"FAILED  no snapshot went to the vault: VaultUnusable: no snapshot goes to the vault in this run: "
                      f"the policy of the module's key {key} does not allow the vault account {VAULT_ACCOUNT} "
                      "kms:CreateGrant", message["message"])
        metrics = self.metric_sums(run["startDate"] - timedelta(seconds=1))
        self.assertEqual(metrics[("VaultCopyFailure", "(run)")], len(DATABASES))

    def test_2d_a_vault_out_of_reach_fails_only_each_databases_vault_step(self):
        # Every copy into the vault account answers 503 (the SDK's retries, then Step Functions'
        # retries, then the step fails), after the run's check passed.
        control(endpoint(), "POST", "faults", {
            "action": "rds:CopyDBSnapshot", "count": None, "region": world.SOURCE, "match": VAULT_ACCOUNT,
            "http_status": 503, "error_code": "ServiceUnavailable", "message": "the vault account is out of reach",
        })
        vault_before = self.vault_copies()
        status, output, _ = self.demo("run")
        self.assertNotEqual(status, 0, output[-4000:])
        run = self.executions()[-1]
        results = self.read(run["executionArn"]).results()
        for db in DATABASES:
            with self.subTest(db=db):
                self.assertEqual(results[db]["vault_error"]["step"], "vault")
                self.assertEqual(results[db]["vault_error"]["Error"], "AwsUnavailable")
                self.assertIn("the vault account is out of reach", results[db]["vault_error"]["Cause"])
                self.assertNotIn("error", results[db])
                self.assertNotIn("copy_error", results[db])
                self.assertNotIn("export_error", results[db])
        self.assertEqual(sorted(self.made_by(run["executionArn"], world.DESTINATION)), sorted(DATABASES))
        self.assertEqual(self.vault_copies().keys(), vault_before.keys())
        [message] = self.published()
        self.assertEqual(message["message"].count("at vault: AwsUnavailable"), len(DATABASES), message["message"])
        # Each step failed with its copy made to share still there, shared: no step comes back
        # to it, and a later run's check deletes it once it is older than any run's longest wait
        # (7 days) and an hour.
        left = {sid: s for sid, s in self.snapshots(world.SOURCE).items() if sid.endswith("-vault")}
        self.assertEqual(len(left), len(DATABASES), sorted(left))
        oldest = min(s["SnapshotCreateTime"] for s in left.values())
        newest = max(s["SnapshotCreateTime"] for s in left.values())
        sooner = oldest + timedelta(days=7, hours=1, seconds=-60)
        checked = self.invoke("vault", {"step": "check", "execution": {
            "execution_id": run["executionArn"], "execution_start_time": sooner.isoformat()}})
        self.assertEqual((checked["abandoned_copies_deleted"], checked["abandoned_copies_kept"]), ([], []))
        later = newest + timedelta(days=7, hours=1, seconds=60)
        checked = self.invoke("vault", {"step": "check", "execution": {
            "execution_id": run["executionArn"], "execution_start_time": later.isoformat()}})
        self.assertEqual(sorted(checked["abandoned_copies_deleted"]), sorted(left))
        self.assertEqual(checked["abandoned_copies_kept"], [])
        self.assert_nothing_left_shared()

    def test_2e_the_vault_prunes_by_its_own_policy_and_measures_its_copies(self):
        """The vault account's own prune (its schedule's rule, fired) keeps exactly the vault
        policy's set of the source's copies and nothing else is touched; its hourly
        measurement puts VaultSnapshotAge; its roles may do that and no more."""
        vault_rds = Demo.vault.client("rds", world.SOURCE)
        # The clock stops racing (a database's newest copy must not age past the prune's
        # stale bound while the test seeds): real time, operations done at once.
        control(endpoint(), "PUT", "settings", {"clock_scale": 0})
        self.addCleanup(control, endpoint(), "PUT", "settings", {"clock_scale": 600})
        now = datetime.fromisoformat(control(endpoint(), "GET", "clock")["now"])
        # Earlier copies from the source account, as the vault role makes them: a snapshot the
        # source shares (an unencrypted one: any shares), copied with the vault's key. RDS
        # records where each came from; that, not a tag, makes a copy the source's.
        source_rds = self.aws.client("rds", world.SOURCE)
        [shared] = [s for s in self.snapshots(world.SOURCE).values()
                    if tag_map(s).get(world.SOURCE_DB) == "prod-database-3" and s["Status"] == "available"][:1]
        source_rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=shared["DBSnapshotIdentifier"],
                                                AttributeName="restore", ValuesToAdd=[VAULT_ACCOUNT])
        [own_copy] = [sid for sid, s in self.vault_copies().items() if s["DBInstanceIdentifier"] == "prod-database-3"][:1]

        def seed(sid: str, created: datetime, tags: dict[str, str], source: str = shared["DBSnapshotArn"]):
            vault_rds.copy_db_snapshot(SourceDBSnapshotIdentifier=source, TargetDBSnapshotIdentifier=sid,
                                       KmsKeyId=Demo.outputs["vault_kms_key_arn"],
                                       Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            control(endpoint(), "POST", "rds/snapshot-created", {"account": VAULT_ACCOUNT, "region": world.SOURCE,
                                                                 "snapshot_id": sid, "created": created.isoformat()})

        # Copies of prod-database-3 of earlier days, two a day (the second of a day is in no
        # tier), and one an hour old. A copy whose source-db tag was changed to another
        # database (the source's role may tag a vault copy) is still prod-database-3's for RDS,
        # a third of its day. Left alone: a copy of another instance, and one the vault's
        # administrator made in the vault that carries our tags, as the source's role could
        # tag one, RDS recording no source account for it (if it counted, it would go: the
        # second of its day).
        ours = {world.MANAGED_BY: world.INSTANCE, world.SOURCE_DB: "prod-database-3",
                world.EXECUTION: "arn:aws:states:us-east-1:123456789012:execution:earlier:seeded"}
        days = {back: (now - timedelta(days=back)).replace(minute=0, second=0, microsecond=0) for back in (3, 20, 50, 400)}
        for day in days.values():
            for hour in (2, 4):
                seed(f"prod-database-3-{day:%Y%m%d}-0{hour}0000", day.replace(hour=hour), ours)
        seed(f"prod-database-3-{now:%Y%m%d-%H%M%S}-fresh", now - timedelta(hours=1), ours)
        seed("prod-database-3-tagged-as-prod-database-1", days[20].replace(hour=5),
             {**ours, world.SOURCE_DB: "prod-database-1"})
        foreign = {"prod-database-3-of-staging": {**ours, world.MANAGED_BY: f"{world.PROJECT}/staging/us-east-1"},
                   "prod-database-3-made-in-the-vault": ours}
        seed("prod-database-3-of-staging", now - timedelta(days=3000), foreign["prod-database-3-of-staging"])
        seed("prod-database-3-made-in-the-vault", days[3].replace(hour=3), ours, source=own_copy)
        source_rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=shared["DBSnapshotIdentifier"],
                                                AttributeName="restore", ValuesToRemove=[VAULT_ACCOUNT])

        before = self.vault_copies()
        # The source's copies, each of the database RDS records (not its tag).
        mine = {sid: (s["DBInstanceIdentifier"], s["SnapshotCreateTime"].astimezone(UTC))
                for sid, s in before.items() if tag_map(s).get(world.MANAGED_BY) == world.INSTANCE
                and s.get("SourceDBSnapshotIdentifier", "").split(":")[4:5] == [SOURCE_ACCOUNT]}
        self.assertEqual(set(foreign) & set(mine), set())
        runs = {sid for sid, s in before.items() if tag_map(s).get("database-backup:source-account") == SOURCE_ACCOUNT}
        self.assertTrue(runs)
        self.assertLessEqual(runs, set(mine), "a copy a run made, RDS not naming its source")
        self.assertTrue(all(s["Status"] == "available" for s in before.values()))
        source_before = self.ours()
        invocations = len(control(endpoint(), "GET", "invocations"))
        [delivery] = control(endpoint(), "POST", "events/fire", {"rule": Demo.outputs["vault_rule_names"]["prune"],
                                                                 "region": world.SOURCE, "account": VAULT_ACCOUNT})
        fired_at = datetime.fromisoformat(json.loads(delivery["input"])["execution"]["execution_start_time"])
        expected = vault_keeps(mine, fired_at)
        prune_name = Demo.outputs["vault_function_names"]["prune"]
        deadline = time.monotonic() + 120
        while not (ran := [i for i in control(endpoint(), "GET", "invocations")[invocations:]
                           if i["function"] == prune_name]):
            self.assertLess(time.monotonic(), deadline, "the vault's prune did not run")
            time.sleep(0.5)
        self.assertEqual(ran[0]["outcome"], "ok", ran[0]["output"])

        after = self.vault_copies()
        deleted = set(before) - set(after)
        self.assertEqual(deleted, set(mine) - set(expected))
        print(f"\nthe vault's prune: {len(deleted)} of the source's {len(mine)} copies deleted, {len(expected)} kept "
              f"({sum(1 for tiers in expected.values() if tiers)} in a tier), {len(foreign)} foreign left")
        self.assertGreaterEqual(len(deleted), 4, "the seeded days' second copies go")
        self.assertLessEqual(set(foreign), set(after), "a copy the source's instance did not make was deleted")
        self.assertIn("prod-database-3-tagged-as-prod-database-1", deleted)
        for sid in foreign:
            self.assertNotIn(world.RETENTION_TIERS, tag_map(after[sid]), sid)
        for sid, tiers in expected.items():
            self.assertEqual(tag_map(after[sid])[world.RETENTION_TIERS], " ".join(tiers) or "none", sid)
        # The source account's snapshots are the source's prune's: the vault's touched none.
        self.assertEqual(self.ours(), source_before)

        # The hourly measurement: each database's newest copy's age, and the oldest run-wide, of
        # the copies RDS records as the source's.
        measurement = Demo.vault.client("lambda", world.SOURCE).get_function_configuration(
            FunctionName=Demo.outputs["vault_function_names"]["snapshot-age"])["Environment"]["Variables"]
        self.assertEqual((measurement["COPIED_FROM_ACCOUNT"], measurement["BACKUP_INSTANCE"]),
                         (SOURCE_ACCOUNT, world.INSTANCE))
        control(endpoint(), "POST", "events/fire", {"rule": Demo.outputs["vault_rule_names"]["snapshot-age"],
                                                    "region": world.SOURCE, "account": VAULT_ACCOUNT})
        cloudwatch = Demo.vault.client("cloudwatch", world.SOURCE)
        deadline = time.monotonic() + 120
        while True:
            listed = cloudwatch.list_metrics(Namespace=Demo.outputs["metrics_namespace"],
                                             MetricName="VaultSnapshotAge")["Metrics"]
            measured = {next((d["Value"] for d in m["Dimensions"] if d["Name"] == "DatabaseIdentifier"), "(run)")
                        for m in listed}
            if measured >= {*DATABASES, "(run)"}:
                break
            self.assertLess(time.monotonic(), deadline, f"VaultSnapshotAge put for {measured} only")
            time.sleep(0.5)
        self.assertEqual(measured, {*DATABASES, "(run)"})

        # The vault's roles: each grants what its function calls there, and no more.
        vault_iam = Demo.vault.client("iam")
        vault_lambda = Demo.vault.client("lambda", world.SOURCE)
        granted = {}
        for function, name in Demo.outputs["vault_function_names"].items():
            role = vault_lambda.get_function(FunctionName=name)["Configuration"]["Role"].rsplit("/", 1)[-1]
            self.assertEqual(vault_iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [])
            granted[function] = {a for document in role_documents(vault_iam, role)
                                 for st in statements(document) for a in st.actions}
        zips = {"prune": "prune", "snapshot-age": "notify"}
        needed = {
            "prune": {"rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:DescribeExportTasks",
                      "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot", "rds:AddTagsToResource"},
            "snapshot-age": {"rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "cloudwatch:PutMetricData"},
        }
        for function, actions in needed.items():
            with self.subTest(function=function):
                code = operations_in(ROOT / "target" / "lambda" / f"backup-{zips[function]}" / "bootstrap.zip")
                self.assertLessEqual(actions, code)
                # Besides: its log, and its environment's key.
                self.assertEqual(granted[function] - {"logs:CreateLogStream", "logs:PutLogEvents", "kms:Decrypt"},
                                 actions)

    def test_3_console_rerun_for_one_database(self):
        status, output, _ = self.demo("run", "--input", json.dumps({"db_instance_ids": ["prod-database-2"]}))
        self.assertEqual(status, 0, output[-4000:])
        run = self.executions()[-1]
        self.assertEqual(run["status"], "SUCCEEDED")
        self.assert_backed_up(run, ["prod-database-2"])
        self.assert_pruned_by_the_rule(run["startDate"])
        messages = self.published()
        self.assertEqual(len(messages), 1)
        self.assertIn("1 of 1", messages[0]["subject"])

    def test_4_a_failing_step_is_named_and_the_command_fails(self):
        control(endpoint(), "DELETE", "slack")
        control(endpoint(), "POST", "faults", {
            "action": "rds:CopyDBSnapshot", "count": None, "region": world.DESTINATION, "match": "prod-database-1",
            "error_code": "KMSKeyNotAccessibleFault", "message": "The KMS key of the destination is disabled",
        })
        status, output, _ = self.demo("run")
        self.assertNotEqual(status, 0, output[-4000:])
        run = self.executions()[-1]
        self.assertEqual(run["status"], "FAILED")
        error = self.read(run["executionArn"]).results()["prod-database-1"]["copy_error"]
        self.assertEqual(error["step"], "copy")
        self.assertIn("The KMS key of the destination is disabled", error["Cause"])
        # The others were backed up; the failing database's source snapshot too.
        self.assertEqual(sorted(self.made_by(run["executionArn"], world.SOURCE)), sorted(DATABASES))
        self.assertNotIn("prod-database-1", self.made_by(run["executionArn"], world.DESTINATION))
        messages = self.published()
        self.assertEqual(len(messages), 1)
        self.assertTrue(messages[0]["subject"].startswith("[FAILED]"), messages[0]["subject"])
        for text in (messages[0]["message"], json.dumps(control(endpoint(), "GET", "slack"))):
            self.assertIn("prod-database-1", text)
            self.assertIn("copy", text)
            self.assertIn("The KMS key of the destination is disabled", text)
        self.assertRegex(output, r"FAILED\s+step copy: .*The KMS key of the destination is disabled")
        metrics = self.metric_sums(run["startDate"] - timedelta(seconds=1))
        self.assertEqual(metrics[("BackupFailure", "prod-database-1")], 1)
        # Nothing of ours that the rule keeps went missing.
        self.assert_pruned_by_the_rule(run["startDate"])

    def test_5_restore_from_the_newest_good_backup(self):
        rds_west = self.aws.client("rds", world.DESTINATION)
        dry = self.restore("--db", "prod-database-1", "--new-id", "prod-database-1-restored", "--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        ours = self.ours()
        newest_source = max(
            (sid for (region, sid) in ours if region == world.SOURCE and sid.startswith("prod-database-1-2")),
            key=lambda sid: ours[(world.SOURCE, sid)],
        )
        self.assertIn(newest_source, dry.stdout)
        self.assertIn("nothing was changed", dry.stdout)
        instances = self.aws.client("rds").describe_db_instances()["DBInstances"]
        self.assertNotIn("prod-database-1-restored", [i["DBInstanceIdentifier"] for i in instances])

        # Disaster recovery: from the destination region's newest available copy.
        copies = {sid: created for (region, sid), created in ours.items()
                  if region == world.DESTINATION and sid.startswith("prod-database-1-")}
        newest_copy = max(copies, key=copies.get)
        done = self.restore("--db", "prod-database-1", "--new-id", "prod-database-1-dr", "--region", world.DESTINATION,
                            "--instance-class", "db.t3.small", "--wait", "60")
        self.assertEqual(done.returncode, 0, done.stderr)
        restored = rds_west.describe_db_instances(DBInstanceIdentifier="prod-database-1-dr")["DBInstances"][0]
        self.assertEqual(restored["DBInstanceStatus"], "available")
        self.assertEqual(restored["DBInstanceClass"], "db.t3.small")
        self.assertEqual(tag_map(restored)["database-backup:restored-from"],
                         self.snapshots(world.DESTINATION)[newest_copy]["DBSnapshotArn"])
        again = self.restore("--db", "prod-database-1", "--new-id", "prod-database-1-dr", "--region", world.DESTINATION,
                             "--instance-class", "db.t3.small")
        self.assertEqual(again.returncode, 1)
        self.assertIn("already exists", again.stderr)
        rds_west.delete_db_instance(DBInstanceIdentifier="prod-database-1-dr", SkipFinalSnapshot=True)

        # Point in time: a time outside the window is refused naming the window, before any change;
        # the latest restorable time restores, tagged with what it came from.
        early = self.restore("--db", "prod-database-1", "--new-id", "prod-database-1-pitr",
                             "--point-in-time", "2000-01-01T00:00:00Z")
        self.assertEqual(early.returncode, 1)
        self.assertRegex(early.stderr, r"--point-in-time 2000-01-01T00:00:00Z is before the earliest restorable time: "
                                       r"the restorable window is \S+ to \S+")
        pitr = self.restore("--db", "prod-database-1", "--new-id", "prod-database-1-pitr", "--point-in-time", "latest",
                            "--wait", "60")
        self.assertEqual(pitr.returncode, 0, pitr.stderr)
        self.assertIn("restore: RestoreDBInstanceToPointInTime ", pitr.stdout)
        self.assertIn('"PubliclyAccessible":false', pitr.stdout)
        rds = self.aws.client("rds")
        restored = rds.describe_db_instances(DBInstanceIdentifier="prod-database-1-pitr")["DBInstances"][0]
        original = rds.describe_db_instances(DBInstanceIdentifier="prod-database-1")["DBInstances"][0]
        self.assertEqual(restored["DBInstanceStatus"], "available")
        self.assertEqual(restored["DBInstanceClass"], original["DBInstanceClass"])
        self.assertEqual(tag_map(restored)["database-backup:restored-from"],
                         "prod-database-1 at its latest restorable time")
        rds.delete_db_instance(DBInstanceIdentifier="prod-database-1-pitr", SkipFinalSnapshot=True)

    def test_5a_a_failed_drill_alarms_and_leaves_nothing(self):
        """The demo ran one drill (test 1, which printed its recovery time); a drill whose restore
        fails reports it, alarms and deletes the failed database."""
        sfn, rds = self.aws.client("stepfunctions"), self.aws.client("rds")
        drills = sfn.list_executions(stateMachineArn=Demo.outputs["drill_state_machine_arn"])["executions"]
        self.assertEqual([e["status"] for e in drills], ["SUCCEEDED"])
        prefix = "drill-"
        control(endpoint(), "POST", "rds/restore-fails", {"region": world.SOURCE, "db_identifier": f"{prefix}*",
                                                          "status": "incompatible-restore"})
        described = self.drill("prod-database-1")
        self.assertEqual((described["status"], described.get("error")), ("FAILED", "DrillFailed"))
        left = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]
                if i["DBInstanceIdentifier"].startswith(prefix)]
        self.assertEqual(left, [])
        states = {a["name"]: a["state"] for a in
                  control(endpoint(), "POST", f"cloudwatch/evaluate-alarms?region={world.SOURCE}")}
        self.assertEqual(states["nestedphoenix-production-restore-drill-failed"], "ALARM")
        self.assertEqual(states["nestedphoenix-production-restore-drill-over-target"], "OK")

    def test_5b_a_mysql_database_is_probed_over_mysqls_protocol(self):
        """The example's probe also speaks to prod-database-2 (RDS for MySQL; a MariaDB server
        here), whichever database the demo's drill picked: its secret names no database."""
        described = self.drill("prod-database-2")
        self.assertEqual(described["status"], "SUCCEEDED", described.get("cause"))
        drill = self.published()[-1]
        self.assertRegex(drill["message"], r"prod-database-2: restored and checked in \d+\.\d min")
        self.assertRegex(drill["message"], r"sql probe 1 row in \d+ ms, as dbadmin, over TLS \(server certificate "
                                           r"verified\)")

    def drill(self, db: str) -> dict:
        """A drill of `db`, started by hand, once it ended (described)."""
        sfn = self.aws.client("stepfunctions")
        # 120 times real time: the 12-minute restore takes 6 s, and a poll's 0.5 s is a minute of
        # the clock, well within the alarm's 5-minute period (at 600, a loaded machine's second
        # took the drill's datapoint out of the period before the alarms were evaluated).
        control(endpoint(), "PUT", "settings", {"clock_scale": 120})
        self.addCleanup(control, endpoint(), "PUT", "settings", {"clock_scale": 600})
        arn = sfn.start_execution(stateMachineArn=Demo.outputs["drill_state_machine_arn"],
                                  input=json.dumps({"databases": [db]}))["executionArn"]
        deadline = time.monotonic() + 180
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            self.assertLess(time.monotonic(), deadline, "the drill is still running")
            time.sleep(0.5)
        control(endpoint(), "PUT", "settings", {"clock_scale": 0})  # real time again, as it ended
        return described

    def restore(self, *args: str) -> subprocess.CompletedProcess:
        # The binary scripts/check built: scripts/restore would `cargo run` it with other flags.
        env = {**os.environ, "RESTORE_BINARY": str(ROOT / "target" / "debug" / "restore")}
        return subprocess.run(["scripts/restore", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env=env)

    def test_6_destroy_leaves_nothing_behind(self):
        result = subprocess.run(
            [str(ROOT / ".tools" / "venv" / "bin" / "python"), "-m", "demo", "down"],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
            env=dict(os.environ, PYTHONPATH=str(ROOT / "scripts" / "python")),
        )
        self.assertEqual(result.returncode, 0, result.stdout[-4000:] + result.stderr)
        self.assertEqual(self.stack.resources(), [])
        # The DBA team's key, which encrypts its databases, is the world's, not the module's.
        kms = self.aws.client("kms")
        dba_key = kms.describe_key(KeyId=world.DBA_KEY_ALIAS)["KeyMetadata"]["KeyId"]
        world_made = {"kms keys": [dba_key], "kms aliases": [world.DBA_KEY_ALIAS]}
        left = resources.left_behind(world_made, resources.take(self.aws))
        self.assertEqual(left, {}, "terraform destroy left these in the local AWS")
        left = {kind: names for kind, names in resources.take(Demo.vault).items() if names}
        self.assertEqual(left, {}, "terraform destroy left these in the vault account")
        # The vault's copies are backups: they outlive the module too.
        self.assertTrue(self.vault_copies())
        # The backups outlive the module.
        self.assertTrue(self.ours())
