"""The Terraform module planned against the local AWS: the examples, and callers with
the longest names, other regions, an organisation's guardrails, values known only after
apply (test_refusals.py holds what it refuses; test_destroy.py applies it).

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import json
import re
import unittest

import release
from local_aws.terraform import local_provider
from workspace import BASE, EXAMPLES, ROOT, WorkspaceTest, init, plan_json, run

# AWS's limit on each name the module generates: S3 bucket naming rules (3-63), IAM
# quotas (role name 64, inline policy name 128), Lambda function name 64, Step Functions
# state machine name 80, EventBridge rule name 64, CloudWatch alarm and dashboard names
# 255, log group name 512, SNS topic name 256, KMS alias name 256.
NAME_LIMITS = {
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_iam_role", "name"): 64,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_sfn_state_machine", "name"): 80,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_dashboard", "dashboard_name"): 255,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_sns_topic", "name"): 256,
    ("aws_kms_alias", "name"): 256,
}


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


def target_input(target: dict) -> str:
    """A rule target's constant input, or its input transformer's template."""
    transformers = target.get("input_transformer") or [{}]
    return target.get("input") or transformers[0].get("input_template") or "{}"


def hourly_age_measurements(plan: dict) -> int:
    """Every how many hours the module measures SnapshotAge on its own: the schedule of
    the rule whose target hands notify a `snapshot_age` input (0: no such rule)."""
    targets = [after(t) for t in resources(plan, "aws_cloudwatch_event_target")
               if "snapshot_age" in json.loads(target_input(after(t)))]
    if not targets:
        return 0
    [target] = targets
    [rule] = [after(r) for r in resources(plan, "aws_cloudwatch_event_rule") if after(r)["name"] == target["rule"]]
    [(hours, _)] = re.findall(r"^rate\((\d+) (hours?)\)$", rule["schedule_expression"])
    return int(hours)


def alarm_hours(alarm: dict, backups: list[int], measured_every: int, until: int) -> list[bool]:
    """Whether the no-recent-backup alarm is in ALARM at the end of each hour, evaluated as
    CloudWatch does (the last `evaluation_periods` periods of an hour, each breaching when
    its Maximum is over the threshold or, with treat_missing_data = breaching, when it has
    no data point; ALARM when `datapoints_to_alarm` of them breach), for backups that
    succeed at the given hours. SnapshotAge data points: each run's notify puts 0 when it
    ends, and the hourly measurement, if any, the hours since the last backup."""
    assert (alarm["period"], alarm["statistic"], alarm["comparison_operator"]) == (3600, "Maximum", "GreaterThanThreshold")
    assert alarm["period"] * alarm["evaluation_periods"] <= 604_800  # PutMetricAlarm's evaluation range
    points: dict[int, list[float]] = {hour: [0.0] for hour in backups}
    if measured_every:
        for hour in range(backups[0], until):
            if hour % measured_every == 0:
                last = max(b for b in backups if b <= hour)
                points.setdefault(hour, []).append(float(hour - last))
    states = []
    for hour in range(until):
        periods = range(hour - alarm["evaluation_periods"] + 1, hour + 1)
        breaching = sum(1 for p in periods
                        if (max(points[p]) > alarm["threshold"] if p in points
                            else alarm["treat_missing_data"] == "breaching"))
        states.append(breaching >= (alarm["datapoints_to_alarm"] or alarm["evaluation_periods"]))
    return states


class TerraformModuleTest(WorkspaceTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plans = {}
        for name in EXAMPLES:
            path = cls.workspace.example(name, cls.endpoint)
            init(path)
            cls.plans[name] = plan_json(path)

    def test_basic_example_plans_the_whole_module(self):
        plan = self.plans["basic-backup"]
        # A destroy stops at a bucket that holds exports or logs unless the caller says otherwise.
        self.assertEqual({after(b)["force_destroy"] for b in resources(plan, "aws_s3_bucket")}, {False})
        functions = {after(f)["function_name"]: after(f) for f in resources(plan, "aws_lambda_function")}
        self.assertEqual(len(functions), 8)
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
        self.assertEqual(prune_env["BACKUP_INSTANCE"], "nestedphoenix/production/us-east-1")
        self.assertNotIn("ADOPTED_INSTANCES", prune_env)
        self.assertNotIn("COPY_DESTINATION_REGION", prune_env)
        # The bucket prune lists for the exports' storage is the module's, named when planning.
        bucket = next(after(b)["bucket"] for b in resources(plan, "aws_s3_bucket") if b["name"] == "backup")
        self.assertEqual(prune_env["EXPORT_BUCKET"], bucket)
        self.assertTrue(bucket.startswith("nestedphoenix-production-backups-"), bucket)

        machines = {after(m)["name"]: after(m) for m in resources(plan, "aws_sfn_state_machine")}
        self.assertEqual(set(machines), {"nestedphoenix-production-backup", "nestedphoenix-production-database"})
        definition = json.loads(machines["nestedphoenix-production-backup"]["definition"])
        self.assertEqual(
            definition["States"]["Select"]["Parameters"]["defaults"]["db_instance_ids"],
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
        # Notify is invoked by that rule and by the hourly snapshot-age rule, and by nothing else.
        permissions = {after(p)["statement_id"]: after(p) for p in resources(plan, "aws_lambda_permission")}
        self.assertEqual(set(permissions), {"NotifyOfRunsThatEndedBadly", "MeasureSnapshotAgeHourly"})
        for permission in permissions.values():
            self.assertEqual((permission["principal"], permission["function_name"]),
                             ("events.amazonaws.com", "nestedphoenix-production-notify"))
        age_target = after(next(t for t in resources(plan, "aws_cloudwatch_event_target")
                                if after(t)["rule"] == "nestedphoenix-production-snapshot-age"))
        # The databases, and the time the rule fired (EventBridge fills in <time>).
        self.assertEqual(json.loads(target_input(age_target)),
                         {"snapshot_age": {"databases": ["prod-database-1", "prod-database-2"], "at": "<time>"}})
        self.assertEqual(age_target["input_transformer"][0]["input_paths"], {"time": "$.time"})
        [key] = resources(plan, "aws_kms_key")
        self.assertTrue(after(key)["enable_key_rotation"])
        [subscription] = resources(plan, "aws_sns_topic_subscription")
        self.assertEqual(after(subscription)["endpoint"], "dba-team@company.com")
        self.assertEqual(resources(plan, "aws_vpc_endpoint"), [])
        alarms = {after(a)["alarm_name"]: after(a) for a in resources(plan, "aws_cloudwatch_metric_alarm")}
        self.assertIn("nestedphoenix-production-backup-failure", alarms)
        self.assertIn("nestedphoenix-production-no-recent-backup", alarms)
        # Point-in-time recovery, run-wide: the longest lag over 15 minutes (the default) in 2 of
        # 3 hours, the shortest retention 0; an hour without data (a stopped database) is not breaching.
        lag, off = alarms["nestedphoenix-production-restorable-lag"], alarms["nestedphoenix-production-automated-backups-off"]
        self.assertEqual((lag["metric_name"], lag["statistic"], lag["comparison_operator"], lag["threshold"],
                          lag["treat_missing_data"], lag["period"], lag["evaluation_periods"], lag["datapoints_to_alarm"]),
                         ("RestorableLag", "Maximum", "GreaterThanThreshold", 15, "notBreaching", 3600, 3, 2))
        self.assertEqual((off["metric_name"], off["statistic"], off["comparison_operator"], off["threshold"],
                          off["treat_missing_data"]),
                         ("BackupRetentionDays", "Minimum", "LessThanThreshold", 1, "notBreaching"))
        self.assertEqual(lag["dimensions"], {"BackupInstance": "nestedphoenix/production/us-east-1"})
        self.assertEqual(len(alarms), 4 + 3 + 8, sorted(alarms))

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
        self.assertEqual(services, ["kms", "logs", "monitoring", "rds", "s3", "scheduler", "sns", "sqs", "states", "sts"])
        per_database = [
            a for a in resources(plan, "aws_cloudwatch_metric_alarm") if "DatabaseIdentifier" in (after(a).get("dimensions") or {})
        ]
        # Three databases: failure, no recent backup, restorable lag, automated backups off.
        self.assertEqual(len(per_database), 3 * 4)
        [machine] = [m for m in resources(plan, "aws_sfn_state_machine") if after(m)["name"].endswith("-backup")]
        defaults = json.loads(after(machine)["definition"])["States"]["Select"]["Parameters"]["defaults"]
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
        # Eight functions and two state machines.
        self.assertEqual(len(groups), 10)
        [age] = [a for a in resources(plan, "aws_cloudwatch_metric_alarm") if after(a)["alarm_name"] == "ledger-production-no-recent-backup"]
        # Monthly: 744 hours plus a quarter.
        self.assertEqual(after(age)["threshold"], 930)

    def test_the_no_recent_backup_alarm_means_what_it_says_for_monthly_and_daily_schedules(self):
        # The compliance example backs up monthly (cron(0 3 1 * ? *)), the basic one daily.
        month_starts = [0, 744, 744 + 672, 744 + 672 + 744]  # 03:00 on Jan 1, Feb 1, Mar 1, Apr 1
        schedules = {
            "compliance-backup": ("ledger-production-no-recent-backup", month_starts),
            "basic-backup": ("nestedphoenix-production-no-recent-backup", [24 * day for day in range(40)]),
        }
        for example, (alarm_name, runs) in schedules.items():
            with self.subTest(example=example):
                plan = self.plans[example]
                [alarm] = [after(a) for a in resources(plan, "aws_cloudwatch_metric_alarm") if after(a)["alarm_name"] == alarm_name]
                every = hourly_age_measurements(plan)
                threshold = alarm["threshold"]
                # Every backup succeeds but the third: once the first window is full, the alarm
                # stays OK until the newest backup is older than the threshold, then goes to
                # ALARM within three hours.
                succeeded = runs[:2] + runs[3:]
                last_good = runs[1]
                until = last_good + int(threshold) + 6
                states = alarm_hours(alarm, succeeded, every, until)
                due = last_good + int(threshold)
                early = [hour for hour in range(alarm["evaluation_periods"], due + 1) if states[hour]]
                self.assertEqual(early[:3], [], f"ALARM with every backup on schedule (the next is due at hour {due})")
                self.assertIn(True, states[due + 1:due + 4], "no ALARM within three hours of the missed backup's due time")
                self.assertEqual(every, 1)

    def test_every_generated_name_is_within_aws_limits_at_the_longest_allowed_names(self):
        longest_db = "d" * 63  # RDS allows 63 characters
        callers = {
            # The longest project and environment the role names allow (38 with the hyphen)...
            "longest-generated-names": {"project_name": "p" * 24, "environment": "e" * 13},
            # ...and with a role prefix and the longest bucket name of the caller's own beside its log bucket.
            "longest-names": {"project_name": "p" * 24, "environment": "e" * 9, "s3_bucket_name": "b" * 58,
                              "iam_role_name_prefix": "r" * 4},
        }
        for name, arguments in callers.items():
            with self.subTest(caller=name):
                path = self.workspace.caller(name, self.endpoint, {
                    **BASE, **arguments, "rds_instance_ids": [longest_db], "enable_detailed_monitoring": True,
                    "enable_s3_access_logging": True})
                init(path)
                plan = plan_json(path)
                names = [(change["type"], attribute, after(change)[attribute])
                         for (kind, attribute) in NAME_LIMITS for change in resources(plan, kind)]
                self.assertGreater(len(names), 30)
                too_long = [(kind, attribute, value, len(value), NAME_LIMITS[kind, attribute])
                            for kind, attribute, value in names if len(value) > NAME_LIMITS[kind, attribute]]
                self.assertEqual(too_long, [])

    def test_other_regions_and_ambiguous_names_get_global_names_and_a_managed_by_value_of_their_own(self):
        """team-a + prod and team + a-prod share the prefix team-a-prod; the same project and
        environment in a second region share everything but the region. IAM role and bucket
        names (global) and the managed-by value (what prune may delete) must differ for each."""
        callers = {"ambiguous-a": ("team-a", "prod", "us-east-1"), "ambiguous-b": ("team", "a-prod", "us-east-1"),
                   "other-region": ("team-a", "prod", "us-west-2")}
        seen: dict[str, dict] = {}
        for name, (project, environment, region) in callers.items():
            path = self.workspace.caller(name, self.endpoint, {**BASE, "project_name": project, "environment": environment},
                                         region=region)
            init(path)
            plan = plan_json(path)
            [select] = [after(f) for f in resources(plan, "aws_lambda_function") if after(f)["function_name"].endswith("-select")]
            [snapshot] = [after(f) for f in resources(plan, "aws_lambda_function")
                          if after(f)["function_name"].endswith("-snapshot")]
            seen[name] = {
                "roles": {after(r)["name"] for r in resources(plan, "aws_iam_role")},
                "buckets": {after(b)["bucket"] for b in resources(plan, "aws_s3_bucket")},
                "managed-by": snapshot["environment"][0]["variables"]["BACKUP_INSTANCE"],
            }
            self.assertEqual(seen[name]["managed-by"], f"{project}/{environment}/{region}")
            self.assertEqual(len(seen[name]["roles"]), 12)
            self.assertTrue(select["function_name"].startswith(f"{project}-{environment}-"))
        for first, second in [("ambiguous-a", "ambiguous-b"), ("ambiguous-a", "other-region"), ("ambiguous-b", "other-region")]:
            with self.subTest(first=first, second=second):
                self.assertEqual(seen[first]["roles"] & seen[second]["roles"], set())
                self.assertEqual(seen[first]["buckets"] & seen[second]["buckets"], set())
                self.assertNotEqual(seen[first]["managed-by"], seen[second]["managed-by"])

    def test_restore_drills_plan_their_machine_function_schedules_and_alarms(self):
        """restore_drill beside the same caller without it, in one plan: the drill adds its
        function and role, state machine, two schedules and alarms."""
        drilled = {**BASE, "enable_cross_region_copy": True, "cross_region_destination": "us-west-2",
                   "restore_drill": {"copy": "copy", "instance_class": "db.t4g.micro", "rto_minutes": 45,
                                     "random_count": 1}}
        secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader"
        probed = {**BASE, "environment": "probed", "restore_drill": {"sql_probe": {
            "secret_arns": {"db-one": secret}, "subnet_ids": ["subnet-0123456789abcdef0"],
            "security_group_ids": ["sg-0123456789abcdef0"], "query": "SELECT count(*) FROM orders"}}}
        path = self.workspace.caller_of_many("drills", self.endpoint, {
            "database_backup": drilled, "without": {**drilled, "restore_drill": None, "environment": "other"},
            "probed": probed})
        init(path)
        planned = plan_json(path)
        changes = planned["resource_changes"]

        def of(module: str, kind: str) -> dict[str, dict]:
            """By address in the module (`backup["drill"]`, `drill["drill-sweep"]`)."""
            return {c["address"].split(f"{kind}.", 1)[1]: after(c) for c in changes
                    if c["type"] == kind and c.get("module_address") == f"module.{module}" and c["mode"] == "managed"}

        functions = of("database_backup", "aws_lambda_function")
        self.assertEqual(len(functions), 9)
        self.assertEqual(len(of("without", "aws_lambda_function")), 8)
        environment = functions['backup["drill"]']["environment"][0]["variables"]
        settings = json.loads(environment["DRILL"])
        self.assertRegex(settings["identifier_prefix"], r"^drill-[0-9a-f]{6}-$")
        self.assertEqual((settings["copy"], settings["instance_class"], settings["rto_minutes"], settings["poll_seconds"],
                          settings["random_count"], settings["max_wait_minutes"], settings["keep_minutes"]),
                         ("copy", "db.t4g.micro", 45, 60, 1, 240, 0))
        self.assertEqual(environment["COPY_DESTINATION_REGION"], "us-west-2")

        machine = of("database_backup", "aws_sfn_state_machine")['workflow["drill"]']
        self.assertEqual(machine["name"], "checks-test-drill")
        definition = json.loads(machine["definition"])
        self.assertEqual(definition["States"]["Report"]["Parameters"]["drill"]["rto_minutes"], 45)
        restore = definition["States"]["Drills"]["ItemProcessor"]["States"]["Restore"]
        self.assertEqual(restore["Resource"], "arn:aws:lambda:us-east-1:123456789012:function:checks-test-drill")
        self.assertNotIn("${", machine["definition"])

        rules = {r["name"]: r for r in of("database_backup", "aws_cloudwatch_event_rule").values()}
        self.assertEqual(rules["checks-test-drill-schedule"]["schedule_expression"], "cron(0 5 ? * SUN *)")
        self.assertEqual(rules["checks-test-drill-sweep"]["schedule_expression"], "rate(1 hour)")
        inputs = {t["rule"]: json.loads(t["input"]) for t in of("database_backup", "aws_cloudwatch_event_target").values()
                  if t["rule"].startswith("checks-test-drill")}
        self.assertEqual(inputs, {"checks-test-drill-schedule": {}, "checks-test-drill-sweep": {"sweep_only": True}})

        alarms = {a["alarm_name"]: a for a in of("database_backup", "aws_cloudwatch_metric_alarm").values()}
        failed, slow = alarms["checks-test-restore-drill-failed"], alarms["checks-test-restore-drill-over-target"]
        self.assertEqual((failed["metric_name"], failed["statistic"], failed["threshold"]), ("RestoreTestFailure", "Sum", 0))
        self.assertEqual((slow["metric_name"], slow["statistic"], slow["threshold"]), ("RestoreTime", "Maximum", 45))
        self.assertIn("checks-test-drill-executions-aborted", alarms)

        # The roles: one more (the drill's); its policy and the others' are checked against the
        # code as applied (tests/e2e/test_demo.py, each role grants exactly what its code calls).
        self.assertEqual(len(of("database_backup", "aws_iam_role")), len(of("without", "aws_iam_role")) + 1)

        # With sql_probe, a tenth function in the given subnets, reading only the given secret
        # (by its ARN, or by the ARN it stands for with Secrets Manager's six characters).
        probe = of("probed", "aws_lambda_function")['backup["probe"]']
        self.assertEqual(len(of("probed", "aws_lambda_function")), 10)
        self.assertEqual(probe["vpc_config"][0]["subnet_ids"], ["subnet-0123456789abcdef0"])
        self.assertEqual(probe["vpc_config"][0]["security_group_ids"], ["sg-0123456789abcdef0"])
        self.assertEqual(functions['backup["snapshot"]']["vpc_config"], [], "the others stay out of the VPC")
        drill_settings = json.loads(of("probed", "aws_lambda_function")['backup["drill"]']["environment"][0]["variables"]["DRILL"])
        self.assertEqual(drill_settings["sql_probe"], {"secret_arns": {"db-one": secret},
                                                       "query": "SELECT count(*) FROM orders", "connect_timeout_seconds": 10})
        # The probe's own grants, as the plan reads them (the role's policy adds the module key's).
        [policy] = [json.loads(r["values"]["json"]) for m in planned["prior_state"]["values"]["root_module"]["child_modules"]
                    for r in m["resources"] if r["address"] == "module.probed.data.aws_iam_policy_document.probe[0]"]
        reads = [s for s in policy["Statement"] if s["Sid"] == "ReadTheProbeSecrets"]
        self.assertEqual([(s["Action"], sorted(s["Resource"])) for s in reads],
                         [("secretsmanager:GetSecretValue", [secret, f"{secret}-??????"])])
        definition = json.loads(of("probed", "aws_sfn_state_machine")['workflow["drill"]']["definition"])
        probe_state = definition["States"]["Drills"]["ItemProcessor"]["States"]["Probe"]
        self.assertEqual(probe_state["Resource"], "arn:aws:lambda:us-east-1:123456789012:function:checks-probed-probe")

    def test_a_vault_plans_both_accounts_each_granting_only_what_the_copy_needs(self):
        """The source module with a vault and modules/vault with a provider for the vault
        account, in one root module as docs/vault.md has them."""
        path = self.workspace.root / "callers" / "vault"
        path.mkdir(parents=True)
        vault_provider = {**local_provider(self.endpoint), "alias": "vault", "region": "eu-west-1",
                          "access_key": "111111111111"}
        config = {
            "provider": {"aws": [{"region": "us-east-1", **local_provider(self.endpoint)}, vault_provider]},
            "data": {"aws_caller_identity": {"source": {}}},
            "module": {
                "vault": {"source": "../../terraform/modules/vault", "providers": {"aws": "aws.vault"},
                          "name": "checks-test", "source_account_id": "${data.aws_caller_identity.source.account_id}",
                          "source_region": "us-east-1", "source_prefix": "checks-test", "external_id": "checks-test-vault",
                          "source_managed_by": "checks/test/us-east-1", "retention_policy": {"monthly": 84},
                          "prune_schedule": "cron(0 5 ? * SUN *)", "databases": ["db-one"]},
                "database_backup": {"source": "../../terraform", **BASE, "rds_cluster_ids": ["ledger-aurora"], "vault": {
                    "account_id": "${module.vault.account_id}", "region": "${module.vault.region}",
                    "kms_key_arn": "${module.vault.kms_key_arn}", "role_arn": "${module.vault.role_arn}",
                    "external_id": "checks-test-vault"}},
            },
        }
        (path / "main.tf.json").write_text(json.dumps(config, indent=2))
        init(path)
        plan = plan_json(path)
        changes = plan["resource_changes"]

        def of(module: str, kind: str) -> list[dict]:
            return [after(c) for c in changes if c["type"] == kind and c.get("module_address") == f"module.{module}"
                    and c["mode"] == "managed"]

        # The source account: a key the vault account may use only through RDS, for RDS's grants.
        share_key = [after(c) for c in changes if c["type"] == "aws_kms_key"
                     and c.get("module_address") == "module.database_backup.module.vault_share_key[0]"]
        [policy] = [json.loads(k["policy"]) for k in share_key]
        grants = {st["Sid"]: st for st in policy["Statement"]}
        vault_root = "arn:aws:iam::111111111111:root"
        self.assertEqual(grants["VaultAccountCopiesThroughRds"]["Principal"], {"AWS": vault_root})
        self.assertEqual(grants["VaultAccountCopiesThroughRds"]["Condition"],
                         {"StringEquals": {"kms:ViaService": ["rds.us-east-1.amazonaws.com", "rds.eu-west-1.amazonaws.com"]}})
        self.assertEqual(grants["VaultAccountLetsRdsHoldGrants"]["Condition"],
                         {"Bool": {"kms:GrantIsForAWSResource": "true"}})
        # (The vault function's environment holds the share key's ARN, known only after apply:
        # the demo's apply and the e2e suite run it.)
        [machine] = [m for m in of("database_backup", "aws_sfn_state_machine") if m["name"].endswith("-backup")]
        self.assertIn('"skip_vault":false', machine["definition"])
        # The vault account: its key, and one role that trusts the source's vault function by
        # name, with the external id.
        [copier] = [r for r in of("vault", "aws_iam_role") if r["name"] == "checks-test-vault-copier"]
        [trust] = json.loads(copier["assume_role_policy"])["Statement"]
        self.assertEqual(trust["Principal"], {"AWS": "arn:aws:iam::123456789012:root"})
        self.assertEqual(trust["Condition"], {
            "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/*checks-test-??????-vault"},
            "StringEquals": {"sts:ExternalId": "checks-test-vault"}})
        # Two keys: the vault's, for the copies only; the other for its functions' logs, environments
        # and alarm topic.
        keys = {k["description"]: json.loads(k["policy"]) for k in of("vault", "aws_kms_key")}
        self.assertEqual(len(keys), 2)
        [vault_key] = [policy for description, policy in keys.items() if description.endswith("from account 123456789012")]
        self.assertEqual([st["Sid"] for st in vault_key["Statement"]], ["VaultAccountAdministers"])
        # A cluster meets a vault in another region without a key of the source account there:
        # said at plan (its vault step will be refused; tests/e2e/test_vault_regions.py has the key).
        [check] = [c for c in plan.get("checks", [])
                   if c["address"]["to_display"].endswith("check.vault_region_takes_the_clusters")]
        self.assertEqual(check["status"], "fail")
        [problem] = check["instances"][0]["problems"]
        self.assertIn("the clusters ledger-aurora are not copied into the vault", problem["message"])
        self.assertIn("give its key_arn as vault.cluster_share_kms_key_arn", problem["message"])
        # The vault's own retention: prune's zip, run there with the vault's policy on the source's
        # copies, on the vault's schedule; and notify's, measuring VaultSnapshotAge every hour.
        functions = {f["function_name"]: f for f in of("vault", "aws_lambda_function")}
        self.assertEqual(sorted(functions), ["checks-test-vault-prune", "checks-test-vault-snapshot-age"])
        prune = functions["checks-test-vault-prune"]["environment"][0]["variables"]
        self.assertEqual((prune["BACKUP_INSTANCE"], prune["PROJECT_NAME"], prune["ENVIRONMENT"]),
                         ("checks/test/us-east-1", "checks", "test"))
        self.assertEqual((json.loads(prune["RETENTION_POLICY"]), prune["MAX_SNAPSHOT_AGE_HOURS"]), ({"monthly": 84}, "36"))
        self.assertNotIn("COPY_DESTINATION_REGION", prune)
        self.assertEqual(prune["COPIED_FROM_ACCOUNT"], "123456789012")
        # (The measurement's environment holds its topic's ARN, known only after apply: the e2e
        # suite reads the deployed one.)
        rules = {r["name"]: r["schedule_expression"] for r in of("vault", "aws_cloudwatch_event_rule")}
        self.assertEqual(rules, {"checks-test-vault-prune": "cron(0 5 ? * SUN *)",
                                 "checks-test-vault-snapshot-age": "rate(1 hour)"})
        inputs = {json.loads(t["input_transformer"][0]["input_template"].replace("<time>", "2026-12-06T06:00:00Z")
                             .replace("<id>", "e1")).popitem()[0]: t["input_transformer"][0]["input_paths"]
                  for t in of("vault", "aws_cloudwatch_event_target")}
        self.assertEqual(inputs, {"execution": {"id": "$.id", "time": "$.time"},
                                  "snapshot_age": {"id": "$.id", "time": "$.time"}})
        [age_target] = [t for t in of("vault", "aws_cloudwatch_event_target") if "snapshot_age" in
                        t["input_transformer"][0]["input_template"]]
        self.assertEqual(json.loads(age_target["input_transformer"][0]["input_template"].replace("<time>", "t")),
                         {"snapshot_age": {"databases": ["db-one"], "at": "t", "metric": "VaultSnapshotAge"}})
        alarms = {a["alarm_name"]: a for a in of("vault", "aws_cloudwatch_metric_alarm")}
        no_recent = alarms["checks-test-vault-no-recent-copy"]
        self.assertEqual((no_recent["metric_name"], no_recent["dimensions"], no_recent["threshold"],
                          no_recent["treat_missing_data"]),
                         ("VaultSnapshotAge", {"BackupInstance": "checks/test/us-east-1"}, 36, "breaching"))
        self.assertEqual(set(alarms), {"checks-test-vault-no-recent-copy", "checks-test-vault-prune-errors",
                                       "checks-test-vault-snapshot-age-errors", "checks-test-vault-prune-warnings"})

    def test_an_organisations_caller_guardrails_switches_and_tags(self):
        """One plan of a caller as a platform team configures the module: IAM boundary, path and
        prefix; a topic of theirs; alarms paging elsewhere; cheaper logs
        without payloads or X-Ray; no dashboard; and the provider's default_tags."""
        boundary = "arn:aws:iam::123456789012:policy/platform-boundary"
        topic = "arn:aws:sns:eu-west-1:123456789012:dba-alerts"
        pager = "arn:aws:sns:us-east-1:123456789012:pager"
        path = self.workspace.caller("organisation", self.endpoint, {
            **BASE, "iam_permissions_boundary_arn": boundary, "iam_role_path": "/backup/",
            "iam_role_name_prefix": "app-", "sns_topic_arn": topic,
            "log_group_class": "INFREQUENT_ACCESS", "state_machine_log_level": "ERROR",
            "enable_xray_tracing": False, "create_dashboard": False, "alarm_sns_topic_arn": pager,
            "additional_tags": {"CostCenter": "7"}, "environment_tag_key": "backup:environment",
            "manage_automated_backups": {"retention_days": 14, "shorten_retention": True}, "backup_window": "01:30-02:30"},
            default_tags={"Team": "dba", "CostCenter": "42", "Project": "org-wide"})
        init(path)
        plan = plan_json(path)

        roles = [after(r) for r in resources(plan, "aws_iam_role")]
        self.assertEqual(len(roles), 12)  # eight functions, RDS's export, Step Functions, the schedule, the polls' Scheduler
        for role in roles:
            with self.subTest(role=role["name"]):
                self.assertTrue(role["name"].startswith("app-checks-test-"), role["name"])
                self.assertEqual((role["path"], role["permissions_boundary"]), ("/backup/", boundary))
        # (The role policies are known only after apply: the package suite's apply checks the
        # grant on the topic's key and that no role may use X-Ray when it is off.)

        # manage_automated_backups reaches notify with the module's backup_window.
        [notify] = [after(f) for f in resources(plan, "aws_lambda_function") if after(f)["function_name"].endswith("-notify")]
        self.assertEqual(json.loads(notify["environment"][0]["variables"]["AUTOMATED_BACKUPS"]),
                         {"retention_days": 14, "window": "01:30-02:30", "shorten_retention": True})
        self.assertEqual(resources(plan, "aws_cloudwatch_dashboard"), [])
        for function in resources(plan, "aws_lambda_function"):
            self.assertEqual(after(function)["tracing_config"], [{"mode": "PassThrough"}])
        # The functions' log groups take the class; the state machines' keep CloudWatch's default.
        classes = {after(g)["name"]: after(g).get("log_group_class") for g in resources(plan, "aws_cloudwatch_log_group")}
        self.assertEqual({name: c for name, c in classes.items() if name.startswith("/aws/lambda/")},
                         {f"/aws/lambda/checks-test-{f}": "INFREQUENT_ACCESS" for f in release.functions()
                          if f not in ("drill", "probe")})  # they come with restore_drill (and its sql_probe) only
        self.assertEqual({name: c for name, c in classes.items() if "/vendedlogs/states/" in name},
                         {"/aws/vendedlogs/states/checks-test-backup": None,
                          "/aws/vendedlogs/states/checks-test-database": None})
        for machine in resources(plan, "aws_sfn_state_machine"):
            self.assertEqual(after(machine)["tracing_configuration"], [{"enabled": False}])
            [logging] = after(machine)["logging_configuration"]
            self.assertEqual((logging["level"], logging["include_execution_data"]), ("ERROR", False))
        alarms = resources(plan, "aws_cloudwatch_metric_alarm")
        self.assertTrue(alarms)
        for alarm in alarms:
            self.assertEqual(after(alarm)["alarm_actions"], [pager], after(alarm)["alarm_name"])
        module_outputs = plan["configuration"]["root_module"]["module_calls"]["database_backup"]["module"]["outputs"]
        for name in ("alarm_arns", "access_log_bucket_name", "managed_by_tag_value", "state_machine_role_arn",
                     "schedule_role_arn", "lambda_security_group_id", "module_version"):
            self.assertIn(name, module_outputs)

        # Snapshots get the default tags below additional_tags; the organisation's Project stays on
        # the module's resources, the snapshots' is the module's own. The environment goes under
        # the key the organisation leaves to the module.
        [snapshot] = [after(f) for f in resources(plan, "aws_lambda_function")
                      if after(f)["function_name"].endswith("-snapshot")]
        variables = snapshot["environment"][0]["variables"]
        self.assertEqual(json.loads(variables["ADDITIONAL_TAGS"]), {"Team": "dba", "CostCenter": "7"})
        self.assertEqual((variables["PROJECT_TAG_KEY"], variables["ENVIRONMENT_TAG_KEY"]),
                         ("Project", "backup:environment"))
        for machine in resources(plan, "aws_sfn_state_machine"):
            self.assertEqual(after(machine)["tags"]["backup:environment"], "test")
            self.assertNotIn("Environment", after(machine)["tags"])

        # The defaults: X-Ray on, the dashboard, the state machines log every state but no payloads.
        default = self.plans["basic-backup"]
        self.assertEqual(len(resources(default, "aws_cloudwatch_dashboard")), 1)
        for machine in resources(default, "aws_sfn_state_machine"):
            [logging] = after(machine)["logging_configuration"]
            self.assertEqual((logging["level"], logging["include_execution_data"]), ("ALL", False))
            self.assertEqual(after(machine)["tracing_configuration"], [{"enabled": True}])

    def test_a_key_and_a_topic_created_in_the_same_apply_plan_with_the_switches(self):
        def plan_with(name: str, switches: dict) -> tuple[int, str]:
            path = self.workspace.caller(name, self.endpoint, {
                **BASE, "kms_key_id": "${aws_kms_key.caller.arn}", "sns_topic_arn": "${aws_sns_topic.caller.arn}",
                **switches}, resources={"aws_kms_key": {"caller": {"description": "the caller's key"}},
                                        "aws_sns_topic": {"caller": {"name": "caller-alerts"}}})
            init(path)
            result = run(["plan", "-input=false"], path, check=False)
            return result.returncode, " ".join((result.stdout + result.stderr).split())

        # Whether to create a key or a topic cannot hang on values known only after apply...
        returncode, output = plan_with("unknown-without-switches", {})
        self.assertNotEqual(returncode, 0)
        self.assertIn("Invalid count argument", output)
        # ...which the switches say instead.
        returncode, output = plan_with("unknown-with-switches", {"create_kms_key": False, "create_sns_topic": False})
        self.assertEqual(returncode, 0, output)
        self.assertNotIn("module.database_backup.aws_kms_key.backup", output)
        self.assertNotIn("module.database_backup.aws_sns_topic.notifications", output)

if __name__ == "__main__":
    unittest.main()
