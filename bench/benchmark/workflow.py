"""Whole backups in the local AWS: state transitions, Lambda invocations and GB-seconds per
database (billed), and the history events and state payload of one run as the number of
databases grows (Step Functions' limits: 25,000 events per execution, 256 KB per state). Each
database runs in its own execution of the database state machine, with its own 25,000 events:
the largest of those is measured too."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from demo.follow import read
from local_aws.control import control
from local_aws.deploy import Deployment, Settings, module_default

from .common import COPY_REGION, REGION, SELECTED, ZIPS, BenchError, Local, create_databases, run_backup, say

# The module's defaults: lambda_memory_size, and the schedule cron(0 2 * * ? *) (one run a day).
MODULE_MEMORY_MB = module_default("lambda_memory_size")
RUNS_PER_MONTH = 30
HISTORY_EVENT_LIMIT = 25_000
PAYLOAD_LIMIT_BYTES = 256 * 1024


@dataclass
class WorkflowRun:
    databases: int
    polls: int
    status: str
    seconds: float
    events: int
    transitions: Counter = field(default_factory=Counter)
    invocations: Counter = field(default_factory=Counter)
    billed_ms: int = 0
    largest_payload_bytes: int = 0
    # The longest history of a database's own execution, and its largest state payload.
    database_events: int = 0
    database_payload_bytes: int = 0

    @property
    def transitions_total(self) -> int:
        return sum(self.transitions.values())

    @property
    def gb_seconds(self) -> float:
        return self.billed_ms / 1000 * MODULE_MEMORY_MB / 1024


def databases(count: int) -> list[str]:
    return [f"bench-db-{n:04d}" for n in range(1, count + 1)]


def slow_waits(local: Local, names: list[str], polls: int) -> None:
    """Each database's snapshot, export and copy report unfinished for the first polls - 1 polls."""
    if polls <= 1:
        return
    for db in names:
        for action, region, find, instead in (
            ("rds:DescribeDBSnapshots", REGION, "<Status>available</Status>", "<Status>creating</Status>"),
            ("rds:DescribeDBSnapshots", COPY_REGION, "<Status>available</Status>", "<Status>pending</Status>"),
            ("rds:DescribeExportTasks", REGION, "<Status>COMPLETE</Status>", "<Status>IN_PROGRESS</Status>"),
        ):
            control(local.endpoint, "POST", "faults", {
                "action": action, "region": region, "count": polls - 1, "replace": [find, instead],
                "match": f"Identifier={db}-"})


def run(local: Local, count: int, polls: int = 1, timeout: float = 3600) -> WorkflowRun:
    names = databases(count)
    local.reset(snapshot_limit=10 * count + 100)
    create_databases(local, names)
    settings = Settings(db_identifiers=(), selection_tags=SELECTED, project="bench", environment="workflow",
                        max_concurrency=40,
                        poll_interval_seconds=1, wait_timeout_seconds=600)
    deployment = Deployment.create(local.endpoint, ZIPS, settings)
    slow_waits(local, names, polls)
    sfn = local.aws.client("stepfunctions", REGION)
    description, seconds = run_backup(sfn, deployment.state_machine_arn, f"{count} databases", timeout)
    execution = read(sfn, description["executionArn"])
    if len(execution.databases) != count:
        raise BenchError(f"the backup of {count} databases started {len(execution.databases)} database executions")
    children = execution.databases.values()
    result = WorkflowRun(count, polls, description["status"], seconds, len(execution.history),
                         execution.transitions(), largest_payload_bytes=largest_payload(execution.history),
                         database_events=max(len(c.history) for c in children),
                         database_payload_bytes=max(largest_payload(c.history) for c in children))
    for invocation in control(local.endpoint, "GET", "invocations"):
        result.invocations[invocation["function"].removeprefix("bench-workflow-")] += 1
        # Lambda bills each invocation's duration rounded up to the millisecond.
        result.billed_ms += math.ceil(invocation["duration_ms"])
    if description["status"] != "SUCCEEDED":
        raise BenchError(f"the backup of {count} databases ended {description['status']}: "
                         f"{description.get('cause', '')[:400]}")
    per_db = [result.transitions[db] for db in names]
    say(f"  {count} databases, {polls} poll(s): {result.status} in {seconds:.1f} s, {result.events} events "
        f"(each database's execution at most {result.database_events}), "
        f"{min(per_db)}-{max(per_db)} transitions per database")
    return result


def largest_payload(events: list[dict]) -> int:
    """The largest state input or output of an execution, in bytes (the 256 KB limit)."""
    largest = 0
    for event in events:
        for details in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            document = event.get(details) or {}
            for key in ("input", "output"):
                if isinstance(document.get(key), str):
                    largest = max(largest, len(document[key].encode()))
    return largest


def per_database(run: WorkflowRun) -> dict[str, float]:
    """Transitions, invocations and GB-s of one database, the run's share (select, prune, notify,
    the states outside the Map) left out; and what the run costs besides its databases."""
    names = databases(run.databases)
    run_functions = ("select", "prune", "notify")
    db_invocations = sum(n for f, n in run.invocations.items() if f not in run_functions)
    return {
        "transitions": sum(run.transitions[db] for db in names) / run.databases,
        "run_transitions": run.transitions_total - sum(run.transitions[db] for db in names),
        "invocations": db_invocations / run.databases,
        "run_invocations": sum(run.invocations[f] for f in run_functions),
        "gb_seconds": run.gb_seconds / run.databases,
    }
