"""Cold start, peak memory and AWS calls of each function, Rust against the Python baseline:
every run starts a new execution environment (a new process under the Runtime API) and sends it
one realistic event, on state prepared so that both implementations do the same work."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from itertools import count
from statistics import median

from local_aws.control import control
from local_aws.deploy import Deployment, Settings, module_default

from .common import (
    ACCOUNT,
    COPY_REGION,
    REGION,
    ROOT,
    ZIPS,
    BenchError,
    Local,
    Run,
    create_databases,
    deleted_count,
    execution,
    say,
)

# The functions with a Python baseline (select, which only checks the input, has none).
FUNCTIONS = ("snapshot", "wait-for-available", "export", "copy", "prune", "notify")
LANGUAGES = ("rust", "python")
DB = "bench-db-1"
# The notify event's run: these databases, each backed up by its own execution of the database state machine.
NOTIFY_DATABASES = (DB, "bench-db-2", "bench-db-3")
SETTINGS = Settings(db_identifiers=(DB,), project="bench", environment="coldstart")
TAGS = {"database-backup:managed-by": "bench-coldstart", "database-backup:source-db": DB,
        "database-backup:execution": "seeded", "Project": "bench", "Environment": "coldstart"}
# The prune event's inventory, re-seeded before each run: each run deletes these.
EXPIRED_PER_RUN = 5
# The module's default lambda_memory_size, for every function.
MODULE_MEMORY_MB = module_default("lambda_memory_size")


class ColdStart:
    def __init__(self, local: Local, runs: int):
        self.local = local
        self.runs = runs
        self._sequence = count()
        self.now = datetime.now(UTC).replace(microsecond=0)

    def measure(self) -> dict[str, dict[str, list[Run]]]:
        local = self.local
        local.reset(snapshot_limit=10_000)
        self.deployment = Deployment.create(local.endpoint, ZIPS, SETTINGS)
        create_databases(local, list(NOTIFY_DATABASES))
        self.notified_run = self._database_executions()
        self.waited = self._seed(1)[0]
        # Prune keeps the newest three: these stay, the expired ones go.
        self._seed(3, age_days=1)
        results: dict[str, dict[str, list[Run]]] = {f: {lang: [] for lang in LANGUAGES} for f in FUNCTIONS}
        for function in FUNCTIONS:
            for run in range(self.runs):
                # Alternate which goes first, so neither always runs on a warmer machine.
                order = LANGUAGES if run % 2 == 0 else tuple(reversed(LANGUAGES))
                for language in order:
                    payload = self._event(function)
                    measured = local.cold_start(language, function, self.deployment.environments[function],
                                                payload, memory_mb=MODULE_MEMORY_MB)
                    self._check(function, language, measured)
                    if results[function]["rust"] and measured.calls != results[function]["rust"][0].calls:
                        raise BenchError(f"{language} {function} made other AWS calls than Rust: {measured.calls} "
                                         f"against {results[function]['rust'][0].calls}")
                    results[function][language].append(measured)
            say(f"  {function}: " + ", ".join(
                f"{lang} {median(r.cold_start_ms for r in results[function][lang]):.0f} ms" for lang in LANGUAGES))
        return results

    def _seed(self, number: int, age_days: float = 0.0) -> list[dict]:
        """Available snapshots of the database, with this deployment's tags."""
        created = self.now - timedelta(days=age_days)
        rows = []
        for _ in range(number):
            n = next(self._sequence)
            rows.append({"db_instance_identifier": DB, "snapshot_id": f"{DB}-seed-{n:05d}",
                         "created": (created - timedelta(seconds=n)).isoformat(), "tags": TAGS})
        control(self.local.endpoint, "POST", "rds/snapshots", {"region": REGION, "snapshots": rows})
        return [{"db_identifier": DB, "kind": "instance", "snapshot_id": r["snapshot_id"],
                 "snapshot_arn": f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:{r['snapshot_id']}",
                 "region": REGION, "engine": "postgres", "encrypted": True, "status": "available",
                 "created": True} for r in rows]

    def _database_executions(self) -> list[dict]:
        """Backs up each of NOTIFY_DATABASES in its own execution of the deployed database state machine,
        as a run does: the `results` a run hands notify, naming executions that exist and succeeded."""
        sfn = self.local.aws.client("stepfunctions", REGION)
        run = self._execution()
        config = {"skip_export": True, "skip_copy": True, "poll_interval_seconds": 1, "export_poll_interval_seconds": 1,
                  "snapshot_wait_timeout_seconds": 60, "export_wait_timeout_seconds": 60,
                  "copy_wait_timeout_seconds": 60}
        started = {}
        for db in NOTIFY_DATABASES:
            started[db] = sfn.start_execution(
                stateMachineArn=self.deployment.database_state_machine_arn, name=f"bench-{db}",
                input=json.dumps({"db_identifier": db, "execution": run, "config": config}))["executionArn"]
        for db, arn in started.items():
            while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                time.sleep(0.2)
            if described["status"] != "SUCCEEDED" or "error" in json.loads(described["output"]):
                raise BenchError(f"the database execution of {db} did not back it up: "
                                 f"{described.get('output') or described.get('cause')}")
        return [{"db_identifier": db, "execution_name": arn.rsplit(":", 1)[1]} for db, arn in started.items()]

    def _execution(self) -> dict:
        # A new start time per event: a new snapshot identifier per snapshot run.
        return execution("bench-coldstart-backup", self.now + timedelta(minutes=next(self._sequence)))

    def _event(self, function: str) -> dict:
        if function == "snapshot":
            return {"db_identifier": DB, "execution": self._execution()}
        if function == "wait-for-available":
            return {"resource": "db_snapshot", "snapshot_id": self.waited["snapshot_id"], "region": REGION}
        if function in ("export", "copy"):
            return {"snapshot": self._seed(1)[0], "execution": self._execution()}
        if function == "prune":
            self._seed(EXPIRED_PER_RUN, age_days=45)
            return {"execution": self._execution()}
        request = json.loads((ROOT / "tests" / "fixtures" / "notify-request.json").read_text())
        request["execution"] = self._execution()
        request["results"] = self.notified_run
        return request

    def _check(self, function: str, language: str, run: Run) -> None:
        """Both did the work the event asked for, or the comparison means nothing."""
        output = run.output
        checks = {
            "snapshot": lambda: output.get("created") is True,
            "wait-for-available": lambda: output.get("ready") is True,
            "export": lambda: output.get("created") is True,
            "copy": lambda: output.get("created") is True and output.get("region") == COPY_REGION,
            "prune": lambda: deleted_count(output) == EXPIRED_PER_RUN,
            # SUCCEEDED only if every database's result was read from its execution.
            "notify": lambda: bool(output.get("sns_message_id")) and output.get("status") == "SUCCEEDED",
        }
        done = checks[function]()
        if not done:
            raise BenchError(f"{language} {function} answered without doing the work: {json.dumps(output)[:500]}")
