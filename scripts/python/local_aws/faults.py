"""Fault injection: the next N calls of an AWS action fail with a given error,
lose their connection (a reset, no answer at all), are answered late, or have
their response rewritten (for example a status that never changes)."""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import asdict, dataclass

ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


class FaultSpecError(ValueError):
    """A fault document a test sent is wrong; the message names the field."""


@dataclass
class Fault:
    id: int
    # `service:Action`, the service being the signing name: `rds:CreateDBSnapshot`, `lambda:Invoke`.
    action: str
    # How many more calls it applies to; None: every call until cleared.
    remaining: int | None
    # Fail: the error code and HTTP status returned instead of calling the emulator.
    error_code: str | None
    http_status: int
    message: str
    # Rewrite: call the emulator, then replace `replace[0]` by `replace[1]` in the response.
    replace: tuple[str, str] | None
    # Reset: close the caller's connection (TCP RST) instead of answering.
    reset: bool
    # Delay: answer this many seconds late (alone: then answer normally).
    delay_seconds: float
    # Only calls whose region or request (path, query and body) contain these.
    region: str | None
    match: str | None

    @classmethod
    def from_document(cls, fault_id: int, doc: object) -> Fault:
        if not isinstance(doc, dict):
            raise FaultSpecError("a fault is a JSON object")
        known = {"action", "count", "delay_seconds", "error_code", "http_status", "message", "replace", "reset",
                 "region", "match"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise FaultSpecError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        action = doc.get("action")
        if not isinstance(action, str) or not ACTION.match(action):
            raise FaultSpecError("action must look like `rds:CreateDBSnapshot` (signing name:Action)")
        count = doc.get("count", 1)
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise FaultSpecError("count must be a whole number >= 1, or null for every call")
        replace = doc.get("replace")
        if replace is not None and not (
            isinstance(replace, list) and len(replace) == 2 and all(isinstance(r, str) for r in replace) and replace[0]
        ):
            raise FaultSpecError('replace must be ["text to find", "replacement"]')
        reset = doc.get("reset", False)
        if not isinstance(reset, bool):
            raise FaultSpecError("reset must be true or false")
        delay = doc.get("delay_seconds", 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 900:
            raise FaultSpecError("delay_seconds must be a number of seconds from 0 to 900")
        error_code = doc.get("error_code")
        http_status = doc.get("http_status", 400 if error_code else None)
        ways = [name for name, given in (("error_code/http_status", error_code is not None or http_status is not None),
                                         ("replace", replace is not None), ("reset", reset)) if given]
        if not ways and not delay:
            raise FaultSpecError("give error_code and/or http_status (to fail the call), replace (to rewrite it), "
                                 "reset (to drop the connection) or delay_seconds (to answer late)")
        if len(ways) > 1:
            raise FaultSpecError(f"a fault fails, rewrites or resets a call, one of them; given: {', '.join(ways)}")
        if http_status is not None and (not isinstance(http_status, int) or not 400 <= http_status <= 599):
            raise FaultSpecError("http_status must be an HTTP error status, 400-599")
        for name in ("error_code", "message", "region", "match"):
            if doc.get(name) is not None and not isinstance(doc[name], str):
                raise FaultSpecError(f"{name} must be a string")
        if error_code is None and http_status is not None:
            error_code = "ServiceUnavailable" if http_status >= 500 else "BadRequest"
        return cls(
            id=fault_id,
            action=action,
            remaining=count,
            error_code=error_code,
            http_status=http_status or 200,
            message=doc.get("message") or f"Injected fault: {error_code or 'connection reset'}",
            replace=tuple(replace) if replace else None,
            reset=reset,
            delay_seconds=delay,
            region=doc.get("region"),
            match=doc.get("match"),
        )

    def applies_to(self, action: str, region: str, request_text: str) -> bool:
        return (
            self.action == action
            and (self.region is None or self.region == region)
            and (self.match is None or self.match in request_text)
        )


class FaultTable:
    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, doc: object) -> Fault:
        fault = Fault.from_document(next(self._ids), doc)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, action: str, region: str, request_text: str) -> Fault | None:
        """The first fault that applies to this call, counting the call against it."""
        with self._lock:
            for fault in self._faults:
                if fault.applies_to(action, region, request_text):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self):
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._faults]
