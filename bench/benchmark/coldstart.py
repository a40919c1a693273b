"""Cold start, peak memory and AWS calls of each function, Rust against the Python baseline:
every run starts a new execution environment (a new process under the Runtime API) and sends it
one realistic event, on state prepared so that both implementations do the same work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count

from local_aws.control import control
from local_aws.deploy import Deployment, Settings

from .common import ACCOUNT, COPY_REGION, REGION, ROOT, ZIPS, BenchError, Local, Run, say

FUNCTIONS = ("snapshot", "wait-for-available", "export", "copy", "prune", "notify")
LANGUAGES = ("rust", "python")
DB = "bench-db-1"
SETTINGS = Settings(db_identifiers=[DB], project="bench", environment="coldstart")
TAGS = {"database-backup:managed-by": "bench-coldstart", "database-backup:source-db": DB,
        "database-backup:execution": "seeded", "Project": "bench", "Environment": "coldstart"}
# The prune event's inventory, re-seeded before each run: each run deletes these.
EXPIRED_PER_RUN = 5
# The module's default lambda_memory_size, for every function.
MODULE_MEMORY_MB = 256


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
        local.aws.client("rds", REGION).create_db_instance(
            DBInstanceIdentifier=DB, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
            MasterUsername="dbadmin", MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True)
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
            rust, python = results[function]["rust"], results[function]["python"]
            say(f"  {function}: rust {sorted(r.cold_start_ms for r in rust)[len(rust) // 2]:.0f} ms, "
                f"python {sorted(r.cold_start_ms for r in python)[len(python) // 2]:.0f} ms")
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

    def _execution(self) -> dict:
        # A new start time per event: a new snapshot identifier per snapshot run.
        started = self.now + timedelta(minutes=next(self._sequence))
        return {"execution_id": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:bench-coldstart-backup:run",
                "execution_start_time": started.isoformat().replace("+00:00", "Z")}

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
        return request

    def _check(self, function: str, language: str, run: Run) -> None:
        """Both did the work the event asked for, or the comparison means nothing."""
        output = run.output
        done = {
            "snapshot": output.get("created") is True,
            "wait-for-available": output.get("ready") is True,
            "export": output.get("created") is True,
            "copy": output.get("created") is True and output.get("region") == COPY_REGION,
            "prune": _deleted(output) == EXPIRED_PER_RUN,
            "notify": bool(output.get("sns_message_id")),
        }[function]
        if not done:
            raise BenchError(f"{language} {function} answered without doing the work: {json.dumps(output)[:500]}")


def _deleted(output: dict) -> int:
    if "regions" in output:
        return sum(r["deleted_count"] for r in output["regions"])
    return output.get("deleted_count", -1)
