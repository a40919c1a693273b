"""The state machine definitions: the checks behind the local
`ValidateStateMachineDefinition`, and what tests change in a definition the
module renders to run faster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Generated from the functions' code: error names, retry policies, environment.
CONTRACT = Path(__file__).resolve().parents[3] / "statemachine" / "contract.json"


def contract() -> dict:
    return json.loads(CONTRACT.read_text())


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: str

    def as_api(self) -> dict:
        return {"severity": "ERROR", "code": self.code, "message": self.message, "location": self.location}


TRANSITIONS = ("Next", "Default")


def check(definition: str) -> list[Diagnostic]:
    """Problems in a definition: JSON syntax, moto's ASL parser (the grammar of
    every state and field), and transitions to states that do not exist in
    their scope or states nothing reaches."""
    try:
        document = json.loads(definition)
    except ValueError as err:
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"the definition is not JSON: {err}", "/")]
    if not isinstance(document, dict):
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", "the definition must be a JSON object", "/")]
    diagnostics = list(_scope_problems(document, ""))
    if not diagnostics:
        diagnostics.extend(_parser_problems(definition))
    return diagnostics


def _parser_problems(definition: str) -> list[Diagnostic]:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    try:
        AmazonStateLanguageParser.parse(definition)
    except ASLParserException as err:
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", str(e), "/") for e in err.errors] or [
            Diagnostic("SCHEMA_VALIDATION_FAILED", str(err), "/")
        ]
    except FailureEventException as err:
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", str(err), "/")]
    except Exception as err:  # noqa: BLE001 - the parser raises plain exceptions for unknown fields
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", f"{type(err).__name__}: {err}", "/")]
    return []


def _scope_problems(scope: dict, location: str) -> Iterator[Diagnostic]:
    states = scope.get("States")
    start = scope.get("StartAt")
    if not isinstance(states, dict) or not states:
        yield Diagnostic("SCHEMA_VALIDATION_FAILED", "States must be a non-empty object", f"{location}/States")
        return
    if start not in states:
        yield Diagnostic("MISSING_TRANSITION_TARGET", f"StartAt names no state: {start!r}", f"{location}/StartAt")
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        here = f"{location}/States/{name}"
        if not isinstance(state, dict):
            yield Diagnostic("SCHEMA_VALIDATION_FAILED", "a state must be an object", here)
            continue
        targets = [(f"{here}/{key}", state[key]) for key in TRANSITIONS if key in state]
        targets += [(f"{here}/Choices/{i}/Next", c.get("Next")) for i, c in enumerate(state.get("Choices", []))]
        targets += [(f"{here}/Catch/{i}/Next", c.get("Next")) for i, c in enumerate(state.get("Catch", []))]
        edges[name] = set()
        for where, target in targets:
            if target not in states:
                yield Diagnostic("MISSING_TRANSITION_TARGET", f"no state named {target!r}", where)
            else:
                edges[name].add(target)
        ends = state.get("Type") in ("Succeed", "Fail", "Choice") or state.get("End") is True
        if not ends and "Next" not in state:
            yield Diagnostic("SCHEMA_VALIDATION_FAILED", "a state needs Next or End", here)
        for i, branch in enumerate(state.get("Branches", [])):
            yield from _scope_problems(branch, f"{here}/Branches/{i}")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _scope_problems(state[key], f"{here}/{key}")
    reached, frontier = set(), [start] if start in states else []
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier.extend(edges.get(name, ()))
    for name in states:
        if name not in reached and start in states:
            yield Diagnostic("UNREACHABLE_STATE", f"no transition reaches {name!r}", f"{location}/States/{name}")


def with_retry_delays(definition: str, seconds: int) -> str:
    """The definition with every retrier waiting at most `seconds` between attempts.
    Which errors are retried, how many times and with what backoff stay as they are:
    tests run the production retry policy, only faster."""
    document = json.loads(definition)

    def shorten(states: dict) -> None:
        for state in states.values():
            for retrier in state.get("Retry", []):
                retrier["IntervalSeconds"] = min(retrier.get("IntervalSeconds", 1), seconds)
                retrier["MaxDelaySeconds"] = min(retrier.get("MaxDelaySeconds", seconds), seconds)
            for scope in [state.get("ItemProcessor") or state.get("Iterator") or {}, *state.get("Branches", [])]:
                shorten(scope.get("States", {}))

    shorten(document["States"])
    return json.dumps(document)


def with_run_defaults(definition: str, **overrides) -> str:
    """The run's definition with some of the run's defaults (what the Select step
    passes as `defaults`) changed, e.g. shorter polls than the module allows."""
    document = json.loads(definition)
    defaults = document["States"]["Select"]["Parameters"]["defaults"]
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"the run has no defaults named {unknown}")
    defaults.update(overrides)
    return json.dumps(document)
