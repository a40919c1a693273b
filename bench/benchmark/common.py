"""What the benchmark's parts share: paths, the local AWS, running one function in a fresh
execution environment (a cold start) and reading what it cost."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from local_aws.control import control, local_endpoint
from local_aws.deploy import Aws
from local_aws.lambda_env import CodeStore, ExecutionEnvironment, FunctionSpec, sdk_environment

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "bench" / "baseline"
ZIPS = ROOT / "target" / "lambda"
STATE = ROOT / ".tools" / "bench"
ACCOUNT = "123456789012"
REGION = "us-east-1"
COPY_REGION = "us-west-2"
# awslambdaric module names of the baseline handlers, per function.
PYTHON_HANDLERS = {
    "snapshot": "snapshot.handler",
    "wait-for-available": "wait_for_available.handler",
    "export": "export.handler",
    "copy": "copy_snapshot.handler",
    "prune": "prune.handler",
    "notify": "notify.handler",
    "naive-cleanup": "naive_cleanup.handler",
}


def say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


@dataclass
class Run:
    """One invocation in a fresh environment: cold start to the posted response, peak memory,
    the AWS calls it made (counted at the gateway) and the time the emulator took to answer
    them, its answer."""

    cold_start_ms: float
    # Process start to the runtime's first request for an invocation (Lambda's Init Duration).
    init_ms: float
    peak_rss_kb: int
    calls: dict[str, int]
    emulator_ms: float
    output: dict

    @property
    def own_ms(self) -> float:
        """The cold start less the emulator's time answering the calls: what the function itself spent."""
        return self.cold_start_ms - self.emulator_ms


class Local:
    """The local AWS of this benchmark run, and the code of both implementations."""

    def __init__(self):
        self.endpoint = local_endpoint()
        self.aws = Aws(self.endpoint)
        STATE.mkdir(parents=True, exist_ok=True)
        self._code = CodeStore(STATE / "code")
        self._logs = STATE / "logs"
        self._logs.mkdir(exist_ok=True)
        self._code_dirs: dict[tuple[str, str], Path] = {}
        self.extra_env = sdk_environment(self.endpoint)

    def reset(self, snapshot_limit: int = 100) -> None:
        control(self.endpoint, "POST", "reset")
        control(self.endpoint, "PUT", "settings", {"snapshot_limit": snapshot_limit,
                                                   "cluster_snapshot_limit": snapshot_limit})

    def code(self, language: str, function: str) -> Path:
        """The function's unpacked zip, or the baseline's handlers with a `bootstrap` that starts
        AWS's Python runtime client; prepared once per function."""
        key = (language, function)
        if key not in self._code_dirs:
            self._code_dirs[key] = self._rust_code(function) if language == "rust" else self._python_code(function)
        return self._code_dirs[key]

    def _rust_code(self, function: str) -> Path:
        package = ZIPS / f"backup-{function}" / "bootstrap.zip"
        if not package.is_file():
            raise BenchError(f"{package} is missing: run scripts/build-lambdas first")
        return self._code.unpack(package.read_bytes())

    @staticmethod
    def _python_code(function: str) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=f"python-{function}-", dir=STATE))
        for source in BASELINE.glob("*.py"):
            shutil.copy(source, directory / source.name)
        bootstrap = directory / "bootstrap"
        bootstrap.write_text(f"#!/bin/sh\nexec {sys.executable} -m awslambdaric {PYTHON_HANDLERS[function]}\n")
        bootstrap.chmod(0o755)
        return directory

    def cold_start(self, language: str, function: str, environment: dict[str, str], payload: dict,
                   memory_mb: int = 256, timeout_seconds: int = 60) -> Run:
        """Starts a new environment, invokes it once and stops it."""
        spec = FunctionSpec(
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench-{language}-{function}",
            name=f"bench-{language}-{function}",
            region=REGION,
            handler=function,
            code_sha256=language,
            environment=tuple(sorted({**environment, "AWS_LAMBDA_LOG_FORMAT": "JSON"}.items())),
            timeout_seconds=timeout_seconds,
            memory_mb=memory_mb,
        )
        control(self.endpoint, "DELETE", "calls")
        environment_process = ExecutionEnvironment(spec, self.code(language, function), self.extra_env,
                                                   self._logs / f"{spec.name}.log")
        try:
            result = environment_process.invoke(json.dumps(payload).encode(), cold_start=True)
            if result.function_error or result.responded_at is None:
                raise BenchError(f"{language} {function} failed: {result.payload.decode(errors='replace')[:600]}\n"
                                 f"{result.log_tail.decode(errors='replace')[-1500:]}")
            peak = peak_rss_kb(environment_process.process.pid)
        finally:
            environment_process.stop()
        calls = control(self.endpoint, "GET", "calls")
        emulator_ms = control(self.endpoint, "GET", "calls/time")["busy_seconds"] * 1000
        started = environment_process.started_at
        return Run((result.responded_at - started) * 1000, (environment_process.ready_at - started) * 1000, peak,
                   calls, emulator_ms, json.loads(result.payload))


def run_backup(sfn, state_machine_arn: str, what: str, timeout: float) -> tuple[dict, float]:
    """Starts a backup run and waits for its end: its description, and the real seconds it took."""
    started = time.monotonic()
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input="{}")["executionArn"]
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() - started > timeout:
            raise BenchError(f"the backup of {what} still runs after {timeout:.0f} s")
        time.sleep(1)
    return description, time.monotonic() - started


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM), read while it waits for its next invocation."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchError(f"no VmHWM for process {pid}")


# The tag the benchmark's fleets carry: a module instance names at most about 45 databases
# (IAM's policy size), so the larger runs select theirs by tag (selection_tags).
SELECTED = (("backup", "bench"),)


def create_databases(local: Local, identifiers: list[str]) -> None:
    """PostgreSQL instances (exportable), encrypted as production databases are, carrying SELECTED."""
    rds = local.aws.client("rds", REGION)
    for identifier in identifiers:
        rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="dbadmin",
                               MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True,
                               Tags=[{"Key": k, "Value": v} for k, v in SELECTED])


def execution(name: str, started: datetime) -> dict:
    """The `execution` field the state machine passes to the functions."""
    return {"execution_id": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:run",
            "execution_start_time": started.isoformat().replace("+00:00", "Z")}


def deleted_count(output: dict) -> int:
    """Deletions a prune (per region) or the naive cleanup (one count) reported."""
    if "regions" in output:
        return sum(r["deleted_count"] for r in output["regions"])
    return output["deleted_count"]
