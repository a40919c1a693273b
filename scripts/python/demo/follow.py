"""Starting a backup the way the EventBridge rule does, and following the
execution state by state, per database, as it goes: the run's own states,
and each database's execution of the database state machine that it starts."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# States that only move data around; progress shows the ones that do work or wait.
QUIET_TYPES = ("PassStateEntered", "ChoiceStateEntered")
RUN = "(run)"


@dataclass
class Execution:
    """A run, or one database's execution of the database state machine (`databases`: those the run started)."""

    arn: str
    description: dict
    history: list[dict]
    databases: dict[str, Execution] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.description["status"]

    @property
    def duration_seconds(self) -> float:
        return (self.description["stopDate"] - self.description["startDate"]).total_seconds()

    def transitions(self) -> Counter[str]:
        """States entered per database (its own execution's, and the run's task waiting for it);
        RUN: the run's states outside the per-database Map."""
        scopes = Scopes()
        counts: Counter[str] = Counter()
        for event in self.history:
            scope = scopes.add(event)
            if event["type"].endswith("StateEntered"):
                counts[scope] += 1
        for db, execution in self.databases.items():
            counts[db] += sum(1 for e in execution.history if e["type"].endswith("StateEntered"))
        return counts

    def entered(self, state: str) -> list[dict]:
        return entered(self.history, state)

    def results(self) -> dict[str, dict]:
        """Each database's result, as notify read it: its execution's output."""
        notified = self.entered("Notify")
        recorded = notified[0].get("report", {}).get("results", []) if notified else []
        return database_results(recorded, {e.arn: e.description for e in self.databases.values()})


def database_results(recorded: list[dict], executions: dict[str, dict]) -> dict[str, dict]:
    """Each database's result from the run's record of it (`db_identifier`, `execution_name`,
    perhaps `error`) and the descriptions of its executions (by ARN): the execution's output
    when it succeeded, else what the run recorded."""
    by_name = {arn.rsplit(":", 1)[1]: description for arn, description in executions.items()}
    results = {}
    for item in recorded:
        description = by_name.get(item.get("execution_name"))
        succeeded = description is not None and description["status"] == "SUCCEEDED"
        results[item["db_identifier"]] = json.loads(description["output"]) if succeeded else item
    return results


def entered(events: list[dict], state: str) -> list[dict]:
    """The inputs of each entry into `state`."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in events
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
    ]


def database_of(description: dict) -> str:
    """The database an execution of the database state machine backs up (a DescribeExecution answer)."""
    return json.loads(description["input"])["db_identifier"]


def database_executions(events: list[dict]) -> list[str]:
    """The executions of the database state machine a run started (one per database), in start order."""
    return [
        json.loads(e["taskSubmittedEventDetails"]["output"])["ExecutionArn"]
        for e in events
        if e["type"] == "TaskSubmitted" and e["taskSubmittedEventDetails"].get("resource", "").startswith("startExecution")
    ]


def scheduled_target(events, rule_name: str) -> tuple[str, str]:
    """The state machine and the input the schedule's rule starts it with."""
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    if len(targets) != 1:
        raise RuntimeError(f"rule {rule_name} has {len(targets)} targets; expected the state machine alone")
    return targets[0]["Arn"], targets[0].get("Input", "{}")


@dataclass
class Scopes:
    """Which database and state each history event belongs to: events chain
    through previousEventId back to their Map iteration, whose first state's
    input names the database (`database.db_identifier`), and a function's
    events back to its Task state."""

    _iteration_db: dict[int, str] = field(default_factory=dict)
    _iteration_of: dict[int, int] = field(default_factory=dict)
    _state_of: dict[int, str] = field(default_factory=dict)

    def add(self, event: dict) -> str:
        event_id, previous = event["id"], event.get("previousEventId", 0)
        if event["type"].endswith("StateEntered"):
            self._state_of[event_id] = event["stateEnteredEventDetails"]["name"]
        elif event["type"].startswith("LambdaFunction") and previous in self._state_of:
            self._state_of[event_id] = self._state_of[previous]
        if event["type"] == "MapIterationStarted":
            self._iteration_of[event_id] = event_id
        elif event["type"].startswith("MapState"):
            # The Map's own end chains to its last iteration's event, yet belongs to the run.
            pass
        elif previous in self._iteration_of:
            self._iteration_of[event_id] = self._iteration_of[previous]
        iteration = self._iteration_of.get(event_id)
        if iteration is None:
            return RUN
        if iteration not in self._iteration_db and event["type"].endswith("StateEntered"):
            state_input = json.loads(event["stateEnteredEventDetails"].get("input") or "{}")
            database = state_input.get("database") if isinstance(state_input, dict) else None
            if isinstance(database, dict) and isinstance(database.get("db_identifier"), str):
                self._iteration_db[iteration] = database["db_identifier"]
        return self._iteration_db.get(iteration, f"iteration {iteration}")

    def state(self, event: dict) -> str:
        """The Task state a function's event belongs to."""
        return self._state_of.get(event["id"], "?")


def describe(event: dict, state: str) -> str | None:
    """One progress line for an event (`state`: its Task state), or None for an event not worth a line."""
    kind = event["type"]
    if kind in QUIET_TYPES:
        return None
    if kind.endswith("StateEntered"):
        return event["stateEnteredEventDetails"]["name"]
    if kind == "LambdaFunctionSucceeded":
        output = json.loads(event["lambdaFunctionSucceededEventDetails"].get("output") or "null")
        return f"{state} done{_summary(output)}"
    if kind in ("LambdaFunctionFailed", "LambdaFunctionTimedOut"):
        details = event.get("lambdaFunctionFailedEventDetails") or event.get("lambdaFunctionTimedOutEventDetails") or {}
        return f"{state} failed: {details.get('error')}: {error_message(details.get('cause'))[:300]}"
    if kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
        details = event.get("executionFailedEventDetails") or {}
        reason = f": {details.get('error')} {details.get('cause', '')[:200]}" if details else ""
        return f"execution {kind.removeprefix('Execution').lower()}{reason}"
    return None


def error_message(cause) -> str:
    """A Lambda error's cause is the function's error document; its message is what to show."""
    try:
        document = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)
    return str(document.get("errorMessage", cause)) if isinstance(document, dict) else str(cause)


def _summary(output) -> str:
    """The interesting part of a task's output."""
    if not isinstance(output, dict):
        return ""
    for key in ("snapshot_id", "export_task_id"):
        if key in output:
            status = f", {output['status']}" if "status" in output else ""
            return f": {output[key]}{status}"
    if isinstance(output.get("regions"), list):
        deleted = sum(len(r.get("deleted", [])) for r in output["regions"] if isinstance(r, dict))
        return f": {deleted} snapshot(s) deleted"
    if "status" in output:
        return f": {output['status']}"
    return ""


@dataclass
class Followed:
    """An execution being followed: the events reported so far and where they belong."""

    arn: str
    scope: str | None = None  # the database; None for the run, whose events find their own
    seen: int = 0
    scopes: Scopes = field(default_factory=Scopes)
    execution: Execution | None = None

    def poll(self, sfn, started) -> list[tuple[float, str]]:
        """Reads the execution again; its new progress lines, with their seconds since `started`."""
        description = sfn.describe_execution(executionArn=self.arn)
        events = history(sfn, self.arn)
        lines = []
        for event in events[self.seen:]:
            scope = self.scopes.add(event)
            line = describe(event, self.scopes.state(event))
            if line:
                lines.append(((event["timestamp"] - started).total_seconds(), f"{self.scope or scope:<22} {line}"))
        self.seen = len(events)
        self.execution = Execution(self.arn, description, events)
        return lines


def follow(sfn, arn: str, say: Callable[[str], None], poll_seconds: float = 0.5, timeout: float = 900) -> Execution:
    """Prints progress lines, in time order, as the run's history and its databases' executions
    grow; returns the finished run with its databases' executions."""
    run = Followed(arn)
    databases: dict[str, Followed] = {}
    started = sfn.describe_execution(executionArn=arn)["startDate"]
    deadline = time.monotonic() + timeout
    while True:
        # The run first: once it has ended, every database execution has too.
        lines = run.poll(sfn, started)
        execution = run.execution
        for child in database_executions(execution.history):
            if child not in databases:
                databases[child] = Followed(child, scope=database_of(sfn.describe_execution(executionArn=child)))
        for database in databases.values():
            if database.execution is None or database.execution.status == "RUNNING":
                lines += database.poll(sfn, started)
        for elapsed, line in sorted(lines, key=lambda entry: entry[0]):
            say(f"  [{elapsed:6.1f}s] {line}")
        if execution.status != "RUNNING":
            execution.databases = {d.scope: d.execution for d in databases.values()}
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout:.0f} s")
        time.sleep(poll_seconds)


def read(sfn, arn: str) -> Execution:
    """A finished run with its databases' executions."""
    execution = Execution(arn, sfn.describe_execution(executionArn=arn), history(sfn, arn))
    for child in database_executions(execution.history):
        description = sfn.describe_execution(executionArn=child)
        execution.databases[database_of(description)] = Execution(child, description, history(sfn, child))
    return execution


def history(sfn, arn: str) -> list[dict]:
    """Every event of an execution's history, oldest first."""
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events
