"""The Terraform module: format, validate, the examples planned against the
local AWS, every validated variable refused with its message, checkov.

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

from workspace import EXAMPLES, ROOT, Workspace, init, plan_json, run

BASE = {"project_name": "checks", "environment": "test", "rds_instance_ids": ["db-one"]}

# (arguments beside BASE, a message the plan must print). Grouped into as few plans as
# possible, never two cases setting the same variable in one plan.
BAD_VALUES = [
    ({"project_name": "Bad_Name"}, "project_name must be 2-24 lowercase letters"),
    ({"environment": "Prod!"}, "environment must be 2-16 lowercase letters"),
    ({"rds_instance_ids": ["1db"]}, "Each rds_instance_ids entry must be an RDS identifier"),
    ({"rds_instance_ids": ["db-a", "DB-A"]}, "rds_instance_ids lists a database twice"),
    ({"rds_instance_ids": []}, "give at least one database to back up"),
    ({"backup_retention_days": 0}, "backup_retention_days must be a whole number of days from 1 to 36500"),
    ({"backup_retention_days": 3000}, "the S3 exports would expire before the snapshots they archive"),
    ({"backup_schedule": "daily at 2"}, "backup_schedule must be an EventBridge schedule expression"),
    ({"backup_schedule": "rate(1 days)"}, "backup_schedule must be an EventBridge schedule expression"),
    ({"enable_cross_region_copy": True}, "enable_cross_region_copy is true but cross_region_destination is not set"),
    ({"cross_region_destination": "uswest2"}, "cross_region_destination must be an AWS region name"),
    ({"backup_window": "2am-3am"}, "backup_window must be hh24:mi-hh24:mi in UTC"),
    ({"backup_window": "02:00-02:10"}, "backup_window must be at least 30 minutes long"),
    ({"s3_bucket_name": "Bad_Bucket"}, "s3_bucket_name must be a valid S3 bucket name"),
    ({"s3_bucket_name": "10.0.0.1"}, "s3_bucket_name must be a valid S3 bucket name"),
    ({"s3_storage_class": "GLACIER"}, "s3_storage_class must be one of"),
    ({"s3_lifecycle_rules": {"transition_to_ia_days": 10}}, "transition_to_ia_days must be at least 30"),
    ({"s3_lifecycle_rules": {"transition_to_glacier_days": 40}}, "s3_lifecycle_rules days must increase in order"),
    ({"s3_lifecycle_rules": {"expiration_days": 1.5}}, "must be null or a whole number of days"),
    ({"lambda_timeout": 1000}, "lambda_timeout must be a whole number of seconds from 30 to 900"),
    ({"lambda_memory_size": 64}, "lambda_memory_size must be a whole number of MB from 128 to 10240"),
    ({"lambda_runtime": "cobol"}, "lambda_runtime must be a Lambda runtime name"),
    ({"lambda_reserved_concurrency": 0}, "lambda_reserved_concurrency must be -1 (unreserved)"),
    ({"log_retention_days": 10}, "log_retention_days must be a value CloudWatch Logs accepts"),
    ({"notification_email": "dba-team"}, "notification_email must be an email address"),
    ({"slack_webhook_url": "http://hooks.slack.com/services/x"}, "slack_webhook_url must be an https:// URL"),
    ({"sns_topic_arn": "alerts"}, "sns_topic_arn must be an SNS topic ARN"),
    ({"kms_key_id": "my key"}, "kms_key_id must be a KMS key id, key ARN"),
    ({"vpc_id": "vpc1"}, "vpc_id must be a VPC id"),
    ({"vpc_id": "vpc-0abc1234def567890"}, "vpc_id is set but subnet_ids is empty"),
    ({"subnet_ids": ["sub-1"]}, "Each subnet_ids entry must be a subnet id"),
    ({"enable_vpc_endpoints": True}, "enable_vpc_endpoints is true but vpc_id is not set"),
    ({"additional_tags": {"aws:owner": "x"}}, "additional_tags keys must be 1-128 characters"),
    ({"additional_tags": {f"k{i}": "v" for i in range(45)}}, "additional_tags may hold at most 44 tags"),
    ({"rds_cluster_ids": ["bad--id"]}, "Each rds_cluster_ids entry must be an RDS identifier"),
    ({"min_snapshots_to_keep": 0}, "min_snapshots_to_keep must be a whole number from 1 to 1000"),
    ({"max_concurrent_databases": 41}, "max_concurrent_databases must be a whole number from 1 to 40"),
    ({"poll_interval_seconds": 1}, "poll_interval_seconds must be a whole number from 5 to 3600"),
    ({"export_poll_interval_seconds": 0}, "export_poll_interval_seconds must be a whole number from 5 to 3600"),
    ({"wait_timeout_seconds": {"snapshot": 10}}, "wait_timeout_seconds values must be whole numbers of seconds"),
    ({"cross_region_kms_key_arn": "key"}, "cross_region_kms_key_arn must be a KMS key or alias ARN"),
    (
        {
            "cross_region_destination": "us-west-2",
            "cross_region_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        "cross_region_kms_key_arn must be a key in cross_region_destination",
    ),
    ({"lambda_architecture": "ppc64"}, "lambda_architecture must be x86_64 or arm64"),
    ({"metrics_namespace": "AWS/RDS"}, "metrics_namespace must be 1-255"),
    ({"snapshot_age_alarm_hours": 0}, "snapshot_age_alarm_hours must be at least 1"),
]


# Variables with a rule that reads another variable: Terraform checks all their rules
# only when no other variable failed, so each of their cases gets a plan of its own.
CROSS_CHECKED = {
    "rds_instance_ids", "backup_retention_days", "enable_cross_region_copy", "subnet_ids",
    "enable_vpc_endpoints", "cross_region_kms_key_arn", "vpc_id",
}


def batches(cases):
    """Groups cases so that no variable is set twice in a group; cross-variable rules alone."""
    groups: list[tuple[set, list]] = []
    for case in cases:
        if CROSS_CHECKED & set(case[0]):
            groups.append((set(), [case]))
            continue
        names = set(case[0])
        for used, members in groups:
            if used and not used & names:
                used |= names
                members.append(case)
                break
        else:
            groups.append((names, [case]))
    return [members for _, members in groups]


def resources(plan: dict, kind: str) -> list[dict]:
    """The planned values of every resource of `kind` (any module)."""
    return [c for c in plan["resource_changes"] if c["mode"] == "managed" and c["type"] == kind]


def matches(pattern: dict, event: dict) -> bool:
    """EventBridge's matching for the patterns this module uses: every field of the
    pattern present in the event, a list naming the allowed values, objects nested."""
    for field, wanted in pattern.items():
        if field not in event:
            return False
        if isinstance(wanted, dict):
            if not (isinstance(event[field], dict) and matches(wanted, event[field])):
                return False
        elif event[field] not in wanted:
            return False
    return True


def after(change: dict) -> dict:
    return change["change"]["after"]


def module_variables() -> set[str]:
    text = (ROOT / "terraform" / "variables.tf").read_text()
    return {line.split('"')[1] for line in text.splitlines() if line.startswith('variable "')}


class TerraformModuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if not cls.endpoint:
            raise unittest.SkipTest("needs the local AWS: run inside scripts/local-aws run")
        cls.workspace = Workspace()
        cls.plans = {}
        for name in EXAMPLES:
            path = cls.workspace.example(name, cls.endpoint)
            init(path)
            cls.plans[name] = plan_json(path)

    @classmethod
    def tearDownClass(cls):
        cls.workspace.close()

    def plan_caller(self, name: str, arguments: dict) -> tuple[int, str]:
        """Plans a caller of the module; returns the exit code and the output on one line
        (Terraform wraps long messages)."""
        path = self.workspace.caller(name, self.endpoint, {**BASE, **arguments})
        init(path)
        result = run(["plan", "-input=false"], path, check=False)
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    def test_format(self):
        result = run(["fmt", "-check", "-recursive", "-diff"], ROOT / "terraform", check=False)
        self.assertEqual(result.returncode, 0, f"terraform fmt would change:\n{result.stdout}")

    def test_module_and_examples_validate(self):
        examples = sorted(p for p in (self.workspace.module / "examples").iterdir() if p.is_dir())
        for path in [self.workspace.module, *examples]:
            with self.subTest(path=path.name):
                init(path)
                result = run(["validate"], path)
                self.assertIn("The configuration is valid", result.stdout)

    def test_generated_doc_tables_match_their_sources(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "docs-tables.py"), "--check"], capture_output=True, text=True
        )
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_basic_example_plans_the_whole_module(self):
        plan = self.plans["basic-backup"]
        # A destroy stops at a bucket that holds exports or logs unless the caller says otherwise.
        self.assertEqual({after(b)["force_destroy"] for b in resources(plan, "aws_s3_bucket")}, {False})
        functions = {after(f)["function_name"]: after(f) for f in resources(plan, "aws_lambda_function")}
        self.assertEqual(len(functions), 6)
        for function in functions.values():
            # The spec's default lambda_runtime (python3.9) cannot run Rust: provided.al2023 is used.
            self.assertEqual(function["runtime"], "provided.al2023")
            self.assertEqual(function["handler"], "bootstrap")
            self.assertEqual(function["reserved_concurrent_executions"], 1)
            self.assertEqual(function["tracing_config"], [{"mode": "Active"}])
            self.assertEqual(function["logging_config"][0]["log_format"], "JSON")
            self.assertEqual((function["timeout"], function["memory_size"]), (300, 256))
        prune_env = functions["nestedphoenix-production-prune"]["environment"][0]["variables"]
        self.assertEqual(prune_env["RETENTION_DAYS"], "30")
        self.assertEqual(prune_env["BACKUP_INSTANCE"], "nestedphoenix-production")
        self.assertNotIn("COPY_DESTINATION_REGION", prune_env)

        machines = {after(m)["name"]: after(m) for m in resources(plan, "aws_sfn_state_machine")}
        self.assertEqual(set(machines), {"nestedphoenix-production-backup", "nestedphoenix-production-database"})
        definition = json.loads(machines["nestedphoenix-production-backup"]["definition"])
        self.assertEqual(
            definition["States"]["ReadInput"]["Parameters"]["defaults"]["db_instance_ids"],
            ["prod-database-1", "prod-database-2"],
        )
        # The run starts one execution of the database state machine per database; notify reads them.
        database_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-database"
        task = definition["States"]["BackupDatabases"]["ItemProcessor"]["States"]["BackupDatabase"]
        self.assertEqual(task["Parameters"]["StateMachineArn"], database_arn)
        database = json.loads(machines["nestedphoenix-production-database"]["definition"])
        self.assertEqual(database["States"]["Snapshot"]["Resource"],
                         "arn:aws:lambda:us-east-1:123456789012:function:nestedphoenix-production-snapshot")
        for machine in machines.values():
            self.assertNotIn("${", machine["definition"])
        rules = {after(r)["name"]: after(r) for r in resources(plan, "aws_cloudwatch_event_rule")}
        self.assertEqual(rules["nestedphoenix-production-backup-schedule"]["schedule_expression"], "cron(0 2 * * ? *)")
        # A run that ends outside its own error handling reaches notify through this rule.
        ended_badly = rules["nestedphoenix-production-run-ended-badly"]
        pattern = json.loads(ended_badly["event_pattern"])
        self.assertEqual(pattern["detail"]["stateMachineArn"],
                         ["arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-backup"])
        for status in ("aborted", "failed", "timed-out"):
            event = json.loads((ROOT / "tests" / "fixtures" / f"execution-status-change-{status}.json").read_text())
            event["detail"]["stateMachineArn"] = pattern["detail"]["stateMachineArn"][0]
            self.assertTrue(matches(pattern, event), status)
            for other in ({"status": "SUCCEEDED"}, {"status": "RUNNING"},
                          {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:someone-else"}):
                self.assertFalse(matches(pattern, {**event, "detail": {**event["detail"], **other}}), other)
        targets = [t for t in resources(plan, "aws_cloudwatch_event_target") if after(t)["rule"] == ended_badly["name"]]
        self.assertEqual(len(targets), 1)
        [permission] = resources(plan, "aws_lambda_permission")
        self.assertEqual((after(permission)["principal"], after(permission)["function_name"]),
                         ("events.amazonaws.com", "nestedphoenix-production-notify"))
        [key] = resources(plan, "aws_kms_key")
        self.assertTrue(after(key)["enable_key_rotation"])
        [subscription] = resources(plan, "aws_sns_topic_subscription")
        self.assertEqual(after(subscription)["endpoint"], "dba-team@company.com")
        self.assertEqual(resources(plan, "aws_vpc_endpoint"), [])
        alarms = {after(a)["alarm_name"] for a in resources(plan, "aws_cloudwatch_metric_alarm")}
        self.assertIn("nestedphoenix-production-backup-failure", alarms)
        self.assertIn("nestedphoenix-production-no-recent-backup", alarms)
        self.assertEqual(len(alarms), 2 + 3 + 6, alarms)

    def test_enterprise_example_plans_copies_vpc_and_the_callers_key_and_topic(self):
        plan = self.plans["enterprise-backup"]
        backup = [c for c in plan["resource_changes"] if c.get("module_address") == "module.database_backup"]
        self.assertFalse([c for c in backup if c["mode"] == "managed" and c["type"] in ("aws_kms_key", "aws_sns_topic")])
        functions = {after(f)["function_name"]: f for f in resources(plan, "aws_lambda_function")}
        copy = after(functions["nestedphoenix-production-copy"])["environment"][0]["variables"]
        self.assertEqual(copy["COPY_DESTINATION_REGION"], "us-west-2")
        self.assertEqual(copy["COPY_KMS_KEY_ARN"], "arn:aws:kms:us-west-2:123456789012:alias/aws/rds")
        self.assertEqual(json.loads(copy["ADDITIONAL_TAGS"])["Compliance"], "SOX")
        for change in functions.values():
            self.assertEqual((after(change)["timeout"], after(change)["memory_size"]), (900, 512))
            self.assertTrue(change["change"]["after_unknown"].get("vpc_config"), "functions run in the VPC")
        endpoints = [c for c in resources(plan, "aws_vpc_endpoint") if c.get("module_address") == "module.database_backup"]
        services = sorted(after(e)["service_name"].rsplit(".", 1)[1] for e in endpoints)
        self.assertEqual(services, ["kms", "logs", "monitoring", "rds", "s3", "sns", "states", "sts"])
        per_database = [
            a for a in resources(plan, "aws_cloudwatch_metric_alarm") if "DatabaseIdentifier" in (after(a).get("dimensions") or {})
        ]
        self.assertEqual(len(per_database), 6)
        [machine] = [m for m in resources(plan, "aws_sfn_state_machine") if after(m)["name"].endswith("-backup")]
        defaults = json.loads(after(machine)["definition"])["States"]["ReadInput"]["Parameters"]["defaults"]
        self.assertEqual(defaults["skip_copy"], False)
        [rules] = [r for r in resources(plan, "aws_s3_bucket_lifecycle_configuration") if r.get("index") is None]
        transitions = after(rules)["rule"][0]["transition"]
        self.assertEqual(
            sorted((t["days"], t["storage_class"]) for t in transitions),
            [(30, "STANDARD_IA"), (90, "GLACIER"), (365, "DEEP_ARCHIVE")],
        )
        self.assertEqual(after(rules)["rule"][0]["expiration"][0]["days"], 2555)

    def test_compliance_example_plans_seven_years(self):
        plan = self.plans["compliance-backup"]
        functions = {after(f)["function_name"]: after(f) for f in resources(plan, "aws_lambda_function")}
        prune = functions["ledger-production-prune"]["environment"][0]["variables"]
        self.assertEqual((prune["RETENTION_DAYS"], prune["MIN_SNAPSHOTS_TO_KEEP"]), ("2555", "12"))
        self.assertEqual(prune["COPY_DESTINATION_REGION"], "us-west-2")
        groups = resources(plan, "aws_cloudwatch_log_group")
        self.assertEqual({after(g)["retention_in_days"] for g in groups}, {2557})
        # Six functions and two state machines.
        self.assertEqual(len(groups), 8)
        [age] = [a for a in resources(plan, "aws_cloudwatch_metric_alarm") if after(a)["alarm_name"] == "ledger-production-no-recent-backup"]
        # Monthly: 744 hours plus a quarter; CloudWatch evaluates at most 168 hourly periods.
        self.assertEqual((after(age)["threshold"], after(age)["evaluation_periods"]), (930, 168))

    def test_only_required_variables_plan(self):
        returncode, output = self.plan_caller("required-only", {})
        self.assertEqual(returncode, 0, output)
        self.assertNotIn("Warning: Check block assertion failed", output)

    def test_every_validated_variable_refuses_a_bad_value_with_its_message(self):
        validated = module_variables()
        covered = {name for arguments, _ in BAD_VALUES for name in arguments}
        # Booleans and free-form inputs have nothing to validate on their own.
        unvalidated = {
            "enable_s3_versioning", "enable_cloudwatch_logs", "enable_detailed_monitoring", "enable_s3_encryption",
            "enable_s3_access_logging", "enable_s3_export", "prune_dry_run", "lambda_package_dir", "s3_force_destroy",
        }
        self.assertEqual(validated - unvalidated, covered)
        for number, group in enumerate(batches(BAD_VALUES)):
            arguments = {name: value for case, _ in group for name, value in case.items()}
            returncode, output = self.plan_caller(f"bad-{number}", arguments)
            self.assertNotEqual(returncode, 0, f"plan accepted {arguments}")
            for case, message in group:
                with self.subTest(case=case):
                    self.assertIn(message, output)

    def test_checkov_finds_no_failed_check(self):
        checkov = ROOT / ".tools" / "checkov" / "bin" / "checkov"
        result = subprocess.run(
            [str(checkov), "--directory", str(ROOT / "terraform"), "--framework", "terraform", "--output", "json"],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=900,
        )
        report = json.loads(result.stdout)
        summary = report["summary"]
        print(f"\ncheckov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
              f"{summary['skipped']} skipped, {summary['resource_count']} resources", file=sys.stderr)
        failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
        self.assertEqual(failed, [])
        # Every function is checked: a for_each checkov cannot expand would hide them.
        checked = {c["resource"].rsplit(".", 1)[-1] for kind in ("passed_checks", "skipped_checks")
                   for c in report["results"][kind] if ".aws_lambda_function." in f".{c['resource']}"}
        contract = json.loads((ROOT / "statemachine" / "contract.json").read_text())
        self.assertEqual(checked, {f'backup["{f}"]' for f in contract["functions"]})
        self.assertGreater(summary["passed"], 0)
        unexplained = [
            c["check_id"] for c in report["results"]["skipped_checks"]
            if not c["check_result"].get("suppress_comment", "").strip()
        ]
        self.assertEqual(unexplained, [], "every skip carries its reason inline")

    def test_plan_time_checks(self):
        returncode, output = self.plan_caller(
            "same-region", {"enable_cross_region_copy": True, "cross_region_destination": "us-east-1"}
        )
        self.assertNotEqual(returncode, 0)
        self.assertIn("copies must go to another region", output)

        returncode, output = self.plan_caller("no-zips", {"lambda_package_dir": "/nonexistent"})
        self.assertNotEqual(returncode, 0)
        self.assertIn("/nonexistent/backup-snapshot/bootstrap.zip is missing: run scripts/build-lambdas", output)

        returncode, output = self.plan_caller("outside-window", {"backup_schedule": "cron(30 5 * * ? *)"})
        self.assertEqual(returncode, 0, output)
        self.assertIn("starts outside backup_window 02:00-03:00", output)

if __name__ == "__main__":
    unittest.main()
