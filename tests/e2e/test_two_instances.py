"""Two instances of the module side by side in one account and region, as a platform team
runs them: production and staging of one project, applied by Terraform into the local
AWS in one root module, both backing up the same database, with the metrics in the
default namespace, their functions in one VPC. Staging's run fails (one of its
databases is gone); production's alarms, metrics, snapshots and names must not move.
The alarms are evaluated as CloudWatch does (local_aws/alarms.py), on the local AWS's
clock. The VPC already has a central team's RDS and S3 endpoints: production creates
the endpoints that are missing, staging none, and the local AWS refuses a second
private-DNS endpoint for a service or a second S3 route in a route table, as AWS does.

Run by scripts/test inside `scripts/local-aws run`; it empties that local AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import unittest
from datetime import UTC, datetime, timedelta

from demo.report import metric_sums, tag_map
from local_aws.control import control, local_endpoint
from local_aws.deploy import Aws
from local_aws.terraform import ROOT, local_provider
from applied import finished, terraform
from least_privilege import check_role, role_documents

REGION = "us-east-1"
DATABASE = "orders-db"
GONE = "orders-archive-db"  # in staging's configuration, but not in RDS
INSTANCES = {"prod": [DATABASE], "staging": [DATABASE, GONE]}
MANAGED_BY = "database-backup:managed-by"
NAMESPACE = "CustomMetrics/DatabaseBackup"
# Simulated seconds per real second (local_aws/clock.py): a snapshot takes minutes, an hour 6 s.
CLOCK_SCALE = 600
# The services the functions call, each with an endpoint in the VPC.
ENDPOINT_SERVICES = ["rds", "sns", "monitoring", "logs", "states", "kms", "sts", "sqs", "scheduler", "s3"]


endpoint = local_endpoint
# The resource types whose `name` is scoped to another resource (a role's inline policy).
SCOPED_NAMES = {"aws_iam_role_policy"}


class TwoInstances(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        control(endpoint(), "POST", "reset")
        control(endpoint(), "PUT", "settings", {"clock_scale": CLOCK_SCALE})
        cls.aws = Aws(endpoint())
        cls.aws.client("rds", REGION).create_db_instance(
            DBInstanceIdentifier=DATABASE, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
            MasterUsername="dbadmin", MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True)
        cls.network = cls.shared_vpc()
        cls.directory = ROOT / ".tools" / "e2e" / "two-instances"
        shutil.rmtree(cls.directory, ignore_errors=True)
        cls.directory.mkdir(parents=True)
        module_source = os.path.relpath(ROOT / "terraform", cls.directory)
        config = {
            "provider": {"aws": {"region": REGION, **local_provider(endpoint())}},
            "module": {
                environment: {
                    "source": module_source, "project_name": "shop", "environment": environment,
                    "rds_instance_ids": databases, "enable_s3_export": False, "enable_detailed_monitoring": True,
                    "s3_force_destroy": True, "kms_key_deletion_protection": False,
                    "vpc_id": cls.network["vpc"], "subnet_ids": cls.network["subnets"], "enable_vpc_endpoints": True,
                    "vpc_endpoint_security_group_ids": [cls.network["endpoints_group"]],
                    # The central endpoints; staging finds production's too.
                    "existing_vpc_endpoint_services": ["rds", "s3"] if environment == "prod" else ENDPOINT_SERVICES,
                    # Staging takes over the snapshots of the 1.0 instance it replaced.
                    **({"adopt_snapshots_managed_by": ["shop-staging"]} if environment == "staging" else {}),
                    # Staging also selects by tag (no database carries it here: IAM is what is checked).
                    **({"selection_tags": {"backup": "staging"}} if environment == "staging" else {}),
                    # Both set the databases' automated backups (staging may only where its tag is).
                    "manage_automated_backups": {"retention_days": 7},
                }
                for environment, databases in INSTANCES.items()
            },
            "output": {
                f"{environment}_{name}": {"value": f"${{module.{environment}.{name}}}"}
                for environment in INSTANCES
                for name in ("managed_by_tag_value", "sns_topic_arn", "lambda_security_group_id", "vpc_endpoint_ids")
            },
        }
        (cls.directory / "main.tf.json").write_text(json.dumps(config, indent=1))
        terraform(cls.directory, "init", "-input=false")
        terraform(cls.directory, "apply", "-auto-approve", "-input=false")
        outputs = json.loads(terraform(cls.directory, "output", "-json"))
        cls.outputs = {name: value["value"] for name, value in outputs.items()}

    @classmethod
    def shared_vpc(cls) -> dict:
        """A VPC as a platform team hands it over: two private subnets, a route table, and the
        central team's RDS endpoint (private DNS) and S3 gateway, behind one security group."""
        ec2 = cls.aws.client("ec2", REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        group = ec2.create_security_group(VpcId=vpc, GroupName="central-endpoints",
                                          Description="The VPC's shared interface endpoints")["GroupId"]
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.rds", VpcEndpointType="Interface",
                                SubnetIds=subnets, SecurityGroupIds=[group], PrivateDnsEnabled=True)
        ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway",
                                RouteTableIds=[table])
        return {"vpc": vpc, "subnets": subnets, "route_table": table, "endpoints_group": group}

    def output(self, environment: str, name: str):
        return self.outputs[f"{environment}_{name}"]

    def now(self) -> datetime:
        return datetime.fromisoformat(control(endpoint(), "GET", "clock")["now"])

    def wait_until(self, moment: datetime) -> None:
        while self.now() < moment:
            time.sleep(0.5)

    def fire(self, rule: str) -> list[dict]:
        return control(endpoint(), "POST", "events/fire", {"rule": rule, "region": REGION})

    def last_put(self, environment: str, metric: str) -> datetime:
        """When the instance last put a data point of the metric."""
        instance = self.output(environment, "managed_by_tag_value")
        times = [datetime.fromisoformat(d["timestamp"])
                 for d in control(endpoint(), "GET", f"cloudwatch/metric-data?region={REGION}")
                 if d["name"] == metric and dict(d["dimensions"]).get("BackupInstance") == instance]
        return max((t if t.tzinfo else t.replace(tzinfo=UTC) for t in times), default=datetime.min.replace(tzinfo=UTC))

    def alarm_states(self, at: datetime | None = None) -> dict[str, str]:
        """Every alarm's state as CloudWatch evaluates it at `at` (default: now)."""
        query = f"region={REGION}" + (f"&at={at.isoformat().replace('+', '%2B')}" if at else "")
        return {a["name"]: a["state"] for a in control(endpoint(), "POST", f"cloudwatch/evaluate-alarms?{query}")}

    def test_one_instance_failing_leaves_the_other_untouched(self):
        # Both schedules fire together; each instance backs up orders-db at the same moment.
        started = {environment: self.fire(f"shop-{environment}-backup-schedule")[0]["execution_arn"]
                   for environment in INSTANCES}
        runs = {environment: finished(self.aws.client("stepfunctions", REGION), arn) for environment, arn in started.items()}
        self.assertEqual(runs["prod"]["status"], "SUCCEEDED", runs["prod"])
        self.assertEqual(runs["staging"]["status"], "FAILED", runs["staging"])

        # manage_automated_backups: the runs' notify set RDS's 1 day to 7 and the backup window,
        # under the role Terraform gave it (checked below).
        database = self.aws.client("rds", REGION).describe_db_instances(DBInstanceIdentifier=DATABASE)["DBInstances"][0]
        self.assertEqual((database["BackupRetentionPeriod"], database["PreferredBackupWindow"]), (7, "02:00-03:00"))

        # Snapshots: one of orders-db per instance, each tagged with its own managed-by value
        # and named apart (the identifier ends in a hash of it), neither pruned by the other.
        snapshots = self.aws.client("rds", REGION).describe_db_snapshots(
            DBInstanceIdentifier=DATABASE, SnapshotType="manual")["DBSnapshots"]
        by_instance = {tag_map(s)[MANAGED_BY]: s["DBSnapshotIdentifier"] for s in snapshots}
        self.assertEqual(set(by_instance), {f"shop/{e}/{REGION}" for e in INSTANCES}, snapshots)
        self.assertNotEqual(by_instance[f"shop/prod/{REGION}"], by_instance[f"shop/staging/{REGION}"])
        for snapshot_id in by_instance.values():
            self.assertRegex(snapshot_id, rf"^{DATABASE}-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}$")

        # Each instance's metrics under its own BackupInstance.
        sums = {environment: metric_sums(endpoint(), NAMESPACE, self.output(environment, "managed_by_tag_value"),
                                         datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
                for environment in INSTANCES}
        self.assertEqual(sums["prod"][("BackupFailure", "(run)")], 0)
        self.assertEqual(sums["prod"][("BackupSuccess", "(run)")], 1)
        self.assertEqual(sums["staging"][("BackupFailure", "(run)")], 1)
        self.assertEqual(sums["staging"][("BackupFailure", GONE)], 1)
        self.assertNotIn(("BackupFailure", GONE), sums["prod"])

        # The alarms as CloudWatch evaluates them a minute after staging's failure was put (its
        # notify's time; on the clock a busy machine can stop the execution simulated minutes
        # later): its failure alarms; production's, in the same namespace, do not move.
        states = self.alarm_states(at=self.last_put("staging", "BackupFailure") + timedelta(minutes=1))
        self.assertEqual(states["shop-staging-backup-failure"], "ALARM")
        self.assertEqual(states[f"shop-staging-{GONE}-backup-failure"], "ALARM")
        self.assertEqual(states["shop-prod-backup-failure"], "OK")
        self.assertEqual(states[f"shop-prod-{DATABASE}-backup-failure"], "OK")

        # Three hours of the hourly SnapshotAge measurement: staging's database that was never
        # backed up keeps its no-recent-backup alarms in ALARM; production's are OK (a fresh
        # deployment's are in ALARM until two hours hold a measurement).
        first = self.now()
        for hour in range(3):
            self.wait_until(first + timedelta(hours=hour))
            for environment in INSTANCES:
                self.fire(f"shop-{environment}-snapshot-age")
        self.wait_until(first + timedelta(hours=2, minutes=1))
        states = self.alarm_states()
        self.assertEqual(states[f"shop-staging-{GONE}-no-recent-backup"], "ALARM")
        self.assertEqual(states["shop-staging-no-recent-backup"], "ALARM")  # no run-wide age while one has none
        self.assertEqual(states["shop-prod-no-recent-backup"], "OK")
        self.assertEqual(states[f"shop-prod-{DATABASE}-no-recent-backup"], "OK")
        # What the API reports, and what each instance's topic was told: only its own alarms.
        cloudwatch = self.aws.client("cloudwatch", REGION)
        described = {a["AlarmName"]: a["StateValue"]
                     for a in cloudwatch.describe_alarms(AlarmNamePrefix="shop-")["MetricAlarms"]}
        self.assertEqual({name: described[name] for name in states}, states)
        published = control(endpoint(), "GET", f"sns/published?region={REGION}")
        told = {environment: [json.loads(m["message"])["AlarmName"] for m in published
                              if m["topic_arn"] == self.output(environment, "sns_topic_arn")
                              and (m["subject"] or "").startswith("ALARM")]
                for environment in INSTANCES}
        self.assertIn("shop-staging-backup-failure", told["staging"])
        self.assertTrue(all(name.startswith("shop-prod-") for name in told["prod"]), told["prod"])
        self.assertNotIn("shop-prod-backup-failure", told["prod"])

        # Each prune role may delete only its own instance's snapshots (and those it adopted).
        iam = self.aws.client("iam", REGION)
        for environment, owned in {"prod": [f"shop/prod/{REGION}"], "staging": [f"shop/staging/{REGION}", "shop-staging"]}.items():
            [role] = [r["RoleName"] for r in iam.list_roles()["Roles"]
                      if r["RoleName"].startswith(f"shop-{environment}-") and r["RoleName"].endswith("-prune")]
            [policy] = iam.list_role_policies(RoleName=role)["PolicyNames"]
            statements = {s["Sid"]: s for s in iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]["Statement"]}
            condition = statements["DeleteOwnInstanceSnapshots"]["Condition"]["StringEquals"]
            values = condition["rds:snapshot-tag/database-backup:managed-by"]
            self.assertEqual(sorted([values] if isinstance(values, str) else values), sorted(owned), role)

        # Staging selects by tag: its select role may list the region's databases and its snapshot
        # role snapshot only databases carrying the tag; prod's select role may call nothing.
        for environment, selects in {"prod": False, "staging": True}.items():
            for function in ("select", "snapshot", "notify"):
                [role] = [r["RoleName"] for r in iam.list_roles()["Roles"]
                          if r["RoleName"].startswith(f"shop-{environment}-") and r["RoleName"].endswith(f"-{function}")]
                documents = role_documents(iam, role)
                check = check_role(function, ROOT / "target" / "lambda" / f"backup-{function}" / "bootstrap.zip",
                                   documents, selects,
                                   in_vpc=True, manages_automated_backups=True, slack=False)
                self.assertTrue(check.ok, check.line())
                statements = {s["Sid"]: s for d in documents for s in d["Statement"]}
                if environment == "staging" and function == "snapshot":
                    self.assertEqual(statements["LookUpAndSnapshotTheSelectedDatabases"]["Condition"],
                                     {"StringEquals": {"aws:ResourceTag/backup": "staging"}})
                if function == "notify":
                    # Modify only the named databases (in the statement that reads them, each ARN
                    # once, when not selecting); the selected ones only where the tag is.
                    named = statements["ManageAutomatedBackupsOfTheConfiguredDatabases" if selects
                                       else "WatchAndManagePointInTimeRecovery"]
                    self.assertIn("rds:ModifyDBInstance", named["Action"])
                    self.assertEqual(sorted(named["Resource"]), sorted(
                        f"arn:aws:rds:{REGION}:123456789012:{kind}:{db}"
                        for db in INSTANCES[environment] for kind in ("db", "cluster")))
                    selected = statements.get("ManageAutomatedBackupsOfTheSelectedDatabases")
                    self.assertEqual(selected and selected["Condition"],
                                     {"StringEquals": {"aws:ResourceTag/backup": "staging"}} if selects else None)

        # Names: nothing either instance created carries a name or ARN of the other's.
        state = json.loads(terraform(self.directory, "show", "-json"))
        names = {environment: set() for environment in INSTANCES}
        for child in state["values"]["root_module"]["child_modules"]:
            environment = child["address"].removeprefix("module.")
            for resource in child["resources"]:
                if resource["mode"] == "managed":
                    values = resource["values"]
                    keys = ("arn", "bucket", "function_name") + (() if resource["type"] in SCOPED_NAMES else ("name",))
                    names[environment].update(str(values[k]) for k in keys if values.get(k))
        self.assertGreater(len(names["prod"]), 50)
        self.assertEqual(names["prod"] & names["staging"], set())

    def test_one_vpc_holds_one_endpoint_per_service_and_admits_both_instances(self):
        ec2 = self.aws.client("ec2", REGION)
        vpc = self.network["vpc"]
        live = [e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
                if e["State"] != "deleted"]
        by_service = {}
        for found in live:
            by_service.setdefault(found["ServiceName"].rsplit(".", 1)[1], []).append(found)
        # One endpoint per service the functions call: the central two, and production's six.
        self.assertEqual({service: len(found) for service, found in by_service.items()},
                         {service: 1 for service in ENDPOINT_SERVICES})
        self.assertEqual(set(self.output("prod", "vpc_endpoint_ids")),
                         set(ENDPOINT_SERVICES) - {"rds", "s3"})
        self.assertEqual(self.output("staging", "vpc_endpoint_ids"), {})
        for service, [found] in by_service.items():
            if service != "s3":
                self.assertTrue(found["PrivateDnsEnabled"], service)
                self.assertEqual([g["GroupId"] for g in found["Groups"]], [self.network["endpoints_group"]], service)
        [route] = [r for r in ec2.describe_route_tables(RouteTableIds=[self.network["route_table"]])["RouteTables"][0]["Routes"]
                   if r.get("DestinationPrefixListId")]
        self.assertEqual(route["GatewayId"], by_service["s3"][0]["VpcEndpointId"])

        # Each instance's functions run in its own group, and the endpoints' group admits both.
        groups = {environment: self.output(environment, "lambda_security_group_id") for environment in INSTANCES}
        self.assertNotEqual(groups["prod"], groups["staging"])
        functions = self.aws.client("lambda", REGION)
        for environment, group in groups.items():
            config = functions.get_function_configuration(FunctionName=f"shop-{environment}-prune")["VpcConfig"]
            self.assertEqual((config["SecurityGroupIds"], sorted(config["SubnetIds"])),
                             ([group], sorted(self.network["subnets"])), environment)
        [central] = ec2.describe_security_groups(GroupIds=[self.network["endpoints_group"]])["SecurityGroups"]
        admitted = {pair["GroupId"] for permission in central["IpPermissions"] if permission.get("FromPort") == 443
                    for pair in permission["UserIdGroupPairs"]}
        self.assertEqual(admitted, set(groups.values()))

    def test_point_in_time_recovery_lagging_or_off_alarms_and_only_there(self):
        """Runs last (unittest's order): it turns the database's automated backups off."""
        def measure(metric: str) -> None:
            """Fires both instances' hourly measurement and waits for production's `metric`."""
            fired = self.now()
            for environment in INSTANCES:
                self.fire(f"shop-{environment}-snapshot-age")
            deadline = time.monotonic() + 60
            # The event's time, which the data points carry, is in whole seconds.
            while self.last_put("prod", metric) < fired - timedelta(seconds=1):
                self.assertLess(time.monotonic(), deadline, f"the hourly measurement put no {metric}")
                time.sleep(0.5)

        def two_hours_measured(metric: str) -> dict[str, str]:
            """Two hourly measurements, an hour apart on the clock; the alarms then."""
            first = self.now()
            measure(metric)
            self.wait_until(first + timedelta(hours=1, minutes=1))
            measure(metric)
            return self.alarm_states(at=self.now() + timedelta(minutes=1))

        # RDS keeps the latest restorable time within minutes of now: nothing alarms.
        states = two_hours_measured("RestorableLag")
        self.assertEqual((states["shop-prod-restorable-lag"], states["shop-prod-automated-backups-off"]), ("OK", "OK"))
        # Transaction logs stopped reaching S3 ten hours ago: both instances' lag alarms (in 2 of
        # 3 hours), the backups-off alarm does not.
        control(endpoint(), "POST", "rds/restorable-lag", {"region": REGION, "db_identifier": DATABASE, "minutes": 600})
        states = two_hours_measured("RestorableLag")
        self.assertEqual((states["shop-prod-restorable-lag"], states["shop-staging-restorable-lag"]), ("ALARM", "ALARM"))
        self.assertEqual(states["shop-prod-automated-backups-off"], "OK")
        # Automated backups turned off: no point-in-time recovery, and no lag to measure.
        self.aws.client("rds", REGION).modify_db_instance(DBInstanceIdentifier=DATABASE, BackupRetentionPeriod=0,
                                                          ApplyImmediately=True)
        measure("BackupRetentionDays")
        states = self.alarm_states(at=self.now() + timedelta(minutes=1))
        self.assertEqual(states["shop-prod-automated-backups-off"], "ALARM")

if __name__ == "__main__":
    unittest.main()
