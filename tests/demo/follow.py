"""Starting a backup the way the EventBridge rule does, and following the
execution state by state, per database, as it goes."""

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
    arn: str
    description: dict
    history: list[dict]

    @property
    def status(self) -> str:
        return self.description["status"]

    @property
    def duration_seconds(self) -> float:
        return (self.description["stopDate"] - self.description["startDate"]).total_seconds()

    def transitions(self) -> Counter[str]:
        """States entered per database (RUN: the states outside the per-database Map)."""
        scopes = Scopes()
        counts: Counter[str] = Counter()
        for event in self.history:
            scope = scopes.add(event)
            if event["type"].endswith("StateEntered"):
                counts[scope] += 1
        return counts

    def entered(self, state: str) -> list[dict]:
        return entered(self.history, state)


def entered(events: list[dict], state: str) -> list[dict]:
    """The inputs of each entry into `state`."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])
        for e in events
        if e["type"].endswith("StateEntered") and e["stateEnteredEventDetails"]["name"] == state
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
    input names the database, and a function's events back to its Task state."""

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
            if isinstance(state_input, dict) and isinstance(state_input.get("db_identifier"), str):
                self._iteration_db[iteration] = state_input["db_identifier"]
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


def follow(sfn, arn: str, say: Callable[[str], None], poll_seconds: float = 0.5, timeout: float = 900) -> Execution:
    """Prints progress lines as the execution's history grows; returns the finished execution."""
    scopes = Scopes()
    seen = 0
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=arn)
        events = history(sfn, arn)
        for event in events[seen:]:
            scope = scopes.add(event)
            line = describe(event, scopes.state(event))
            if line:
                elapsed = (event["timestamp"] - description["startDate"]).total_seconds()
                say(f"  [{elapsed:6.1f}s] {scope:<22} {line}")
        seen = len(events)
        if description["status"] != "RUNNING":
            return Execution(arn, description, events)
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout:.0f} s")
        time.sleep(poll_seconds)


def history(sfn, arn: str) -> list[dict]:
    """Every event of an execution's history, oldest first."""
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events
