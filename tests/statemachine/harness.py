"""What the state-machine tests share: the local AWS they run against (started
by `scripts/local-aws run`, which sets AWS_ENDPOINT_URL), a fresh deployment
per test, and readers of the emulated AWS state."""

from __future__ import annotations

import json
import time
import unittest
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import botocore.exceptions

from demo.follow import database_results, read
from local_aws import control as gateway
from local_aws.deploy import Aws, Deployment, Settings, drain_queue, plans
from local_aws.module_plan import Planned

ROOT = Path(__file__).resolve().parents[2]
ZIPS = ROOT / "target" / "lambda"
SOURCE, DESTINATION = "us-east-1", "us-west-2"
MANAGED_BY = "database-backup:managed-by"
SOURCE_DB = "database-backup:source-db"
# Other settings a test module deploys or reads the module's plan of (test_definition's).
ALSO_PLANNED: list[Settings] = []
# The local AWS's clock in these tests: 10 simulated minutes a real second, so that a
# 20 GB database's snapshot (3 minutes), copy (8) and export (17) pass through their
# statuses and every wait loop polls (local_aws/operations.py has the model).
CLOCK_SCALE = 600
# How often the tests' waits poll, and their bound (simulated seconds).
POLL_INTERVAL_SECONDS = 30
WAIT_TIMEOUT_SECONDS = 6 * 3600


endpoint = gateway.local_endpoint


def control(method: str, path: str, document: object | None = None):
    return gateway.control(endpoint(), method, path, document)


def now() -> datetime:
    """The local AWS's time (its clock runs CLOCK_SCALE times faster than the real one)."""
    return datetime.fromisoformat(control("GET", "clock")["now"])


class Execution:
    """A run and the executions of the database state machine it started (`children`)."""

    def __init__(self, arn: str, description: dict, history: list[dict], children: list[Execution] = ()):
        self.arn, self.description, self.history, self.children = arn, description, history, list(children)

    @property
    def status(self) -> str:
        return self.description["status"]

    def events(self) -> list[dict]:
        """The run's events and its databases' events."""
        return self.history + [e for child in self.children for e in child.history]

    def entered(self, state: str) -> int:
        """How many times a state was entered, in the run or in any of its databases."""
        return sum(1 for e in self.events() if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state)

    def exited_output(self, state: str) -> list[dict]:
        return [
            json.loads(e["stateExitedEventDetails"]["output"])
            for e in self.history
            if e["type"].endswith("StateExited") and e["stateExitedEventDetails"]["name"] == state
        ]

    def lambda_failures(self) -> list[str]:
        return [e["lambdaFunctionFailedEventDetails"]["error"] for e in self.events() if e["type"] == "LambdaFunctionFailed"]

    def report(self) -> dict:
        """What notify received: each database's execution, prune's outcome, errors."""
        inputs = [
            json.loads(e["stateEnteredEventDetails"]["input"])
            for e in self.history
            if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "Notify"
        ]
        assert len(inputs) == 1, f"Notify entered {len(inputs)} times"
        return inputs[0]["report"]

    def results(self) -> dict[str, dict]:
        """Each database's result: its execution's output, or what the run recorded when it has none."""
        return database_results(self.report().get("results", []), {c.arn: c.description for c in self.children})

    def result_of(self, database: str, key: str):
        """One part of a database's result; when it has none, the failure shows the whole
        result, each database execution's status and the run's cause (a flaky run explains
        itself in CI's log)."""
        result = self.results()[database]
        if key not in result:
            statuses = {c.arn.rsplit(":", 1)[1]: c.description["status"] for c in self.children}
            raise AssertionError(f"{database}'s result has no {key}: {result}; the database executions: "
                                 f"{statuses}; the run {self.status}: {self.description.get('cause')}")
        return result[key]


def planned(settings: Settings) -> Planned:
    """The module's plan of `settings`. The first call plans every test's settings in one
    Terraform run (unittest has imported every test module by then); later ones read them."""
    wanted = [settings, *ALSO_PLANNED, *(cls.deploy_settings() for cls in _subclasses(LocalAwsTest))]
    return plans(endpoint(), wanted)[settings]


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


class LocalAwsTest(unittest.TestCase):
    """Each test: an emptied local AWS, the project deployed, databases created."""

    settings = Settings()
    databases: dict[str, str] = {"prod-database-1": "postgres", "prod-database-2": "mysql"}
    # Whether the test's databases (and so their snapshots) are encrypted.
    storage_encrypted = True
    clock_scale = CLOCK_SCALE

    def setUp(self):
        endpoint()
        control("POST", "reset")
        control("PUT", "settings", {"clock_scale": self.clock_scale})
        self.aws = Aws(endpoint())
        self.rds = self.aws.client("rds", SOURCE)
        self.rds_destination = self.aws.client("rds", DESTINATION)
        self.sfn = self.aws.client("stepfunctions", SOURCE)
        for db, engine in self.databases.items():
            self.create_database(db, engine)
        settings = self.deploy_settings()
        self.deployment = Deployment.create(endpoint(), ZIPS, settings, planned(settings))

    def tearDown(self):
        control("DELETE", "faults")

    @classmethod
    def deploy_settings(cls) -> Settings:
        """The test's settings, its databases (Aurora clusters apart), every wait polling every
        POLL_INTERVAL_SECONDS for at most WAIT_TIMEOUT_SECONDS."""
        clusters = tuple(db for db, engine in cls.databases.items() if engine.startswith("aurora"))
        instances = tuple(db for db in cls.databases if db not in clusters)
        return cls.settings.with_(db_identifiers=instances, cluster_identifiers=clusters, poll_interval_seconds=POLL_INTERVAL_SECONDS,
                                   wait_timeout_seconds=WAIT_TIMEOUT_SECONDS)

    def create_database(self, db: str, engine: str):
        """A DB instance, or an Aurora DB cluster for an `aurora-*` engine."""
        if engine.startswith("aurora"):
            self.rds.create_db_cluster(DBClusterIdentifier=db, Engine=engine, MasterUsername="admin",
                                       MasterUserPassword="correct-horse-battery",
                                       StorageEncrypted=self.storage_encrypted)
            return
        self.rds.create_db_instance(
            DBInstanceIdentifier=db,
            Engine=engine,
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="correct-horse-battery",
            StorageEncrypted=self.storage_encrypted,
        )

    def set_function_env(self, function: str, name: str, value: str):
        """Changes one variable of a deployed function's environment."""
        lambda_client = self.aws.client("lambda", SOURCE)
        arn = self.deployment.function_arns[function]
        environment = lambda_client.get_function_configuration(FunctionName=arn)["Environment"]["Variables"]
        lambda_client.update_function_configuration(FunctionName=arn, Environment={"Variables": {**environment,
                                                                                                  name: value}})

    @property
    def instance(self) -> str:
        """The deployment's managed-by value (BACKUP_INSTANCE), also its metrics' BackupInstance."""
        return f"{self.settings.project}/{self.settings.environment}/{SOURCE}"

    def our_tags(self, db: str) -> list[dict]:
        return [{"Key": MANAGED_BY, "Value": self.instance}, {"Key": SOURCE_DB, "Value": db}]

    def make_snapshot(self, db: str, snapshot_id: str, age_days: float, tags: list[dict]):
        """A snapshot made before this run, `age_days` old."""
        self.rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=snapshot_id, Tags=tags)
        created = now() - timedelta(days=age_days)
        control("POST", "rds/snapshot-created", {"region": SOURCE, "snapshot_id": snapshot_id, "created": created.isoformat()})

    def available(self, snapshot_id: str, rds=None, timeout: float = 30) -> dict:
        """A DB snapshot once it is available (on the clock, RDS takes its time)."""
        deadline = time.monotonic() + timeout
        while (snapshot := self.manual_snapshots(rds)[snapshot_id])["Status"] != "available":
            self.assertLess(time.monotonic(), deadline, f"{snapshot_id} still {snapshot['Status']} after {timeout} s")
            time.sleep(0.1)
        return snapshot

    def manual_snapshots(self, rds=None) -> dict[str, dict]:
        snapshots = (rds or self.rds).describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        return {s["DBSnapshotIdentifier"]: s for s in snapshots}

    def run_execution(self, execution_input: dict | None = None, timeout: float = 120) -> Execution:
        """Starts an execution and waits for its end; `calls()` then counts the run's calls only."""
        return self.wait(self.start_execution(execution_input), timeout)

    def start_execution(self, execution_input: dict | None = None) -> str:
        control("DELETE", "calls")
        return self.sfn.start_execution(
            stateMachineArn=self.deployment.state_machine_arn,
            name=f"test-{uuid.uuid4().hex[:12]}",
            input=json.dumps(execution_input or {}),
        )["executionArn"]

    def wait(self, arn: str, timeout: float = 120) -> Execution:
        self.wait_for_end(arn, timeout)
        return self.execution(arn)

    def assert_succeeded(self, run: Execution) -> None:
        """The run succeeded; if not, the message names each failed database's error."""
        if run.status != "SUCCEEDED":
            failed = {db: result for db, result in run.results().items() if "error" in result}
            # What notify reported (the Slack copy: reading it leaves the SNS queue to the test).
            reported = [line for m in self.slack_messages()[-1:] for line in json.dumps(m).split("\\n")
                        if "FAILED" in line]
            self.fail(f"the run {run.status}: {run.description.get('cause')}; failed databases: {failed}; "
                      f"notify reported: {reported}")

    def wait_for_end(self, arn: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.status(arn) == "RUNNING":
            self.assertLess(time.monotonic(), deadline, f"execution {arn} still running after {timeout} s")
            time.sleep(0.25)

    def status(self, arn: str) -> str:
        """The execution's status. Only the test reads it: a read that a loaded local AWS left
        unanswered for the client's 60 s (seen once in a fault-matrix run beside the other
        suites) is asked again, within the wait's own bound."""
        try:
            return self.sfn.describe_execution(executionArn=arn)["status"]
        except botocore.exceptions.ReadTimeoutError:
            return "RUNNING"

    def execution(self, arn: str) -> Execution:
        """A finished execution with the database executions it started."""
        run = read(self.sfn, arn)
        children = [Execution(c.arn, c.description, c.history) for c in run.databases.values()]
        return Execution(run.arn, run.description, run.history, children)

    def sns_messages(self) -> list[dict]:
        return drain_queue(self.aws, self.deployment.queue_url)

    def slack_messages(self) -> list[dict]:
        return [m["message"] for m in control("GET", "slack")]

    def metric(self, name: str, db: str) -> float | None:
        """The sum of a database's metric in the last two weeks (a test's runs span hours
        on the clock): its dimensions exactly the instance's and the database's."""
        cloudwatch = self.aws.client("cloudwatch", SOURCE)
        at = now()
        points = cloudwatch.get_metric_statistics(
            Namespace="CustomMetrics/DatabaseBackup",
            MetricName=name,
            Dimensions=[{"Name": "BackupInstance", "Value": self.instance}, {"Name": "DatabaseIdentifier", "Value": db}],
            StartTime=at - timedelta(days=14),
            EndTime=at + timedelta(minutes=5),
            Period=86400,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(p["Sum"] for p in points) if points else None

    def calls(self, action: str) -> int:
        return control("GET", "calls").get(action, 0)

    def rds_calls(self) -> int:
        """RDS API calls of any action, in any region."""
        return sum(n for action, n in control("GET", "calls").items() if action.startswith("rds:"))
