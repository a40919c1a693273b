"""EventBridge Scheduler's one-time schedules, fired on the clock. moto keeps a
schedule but never fires one. Here a schedule whose expression is `at(...)`
invokes its Lambda target when the clock (local_aws/clock.py) reaches that
time, asynchronously and with the target's `Input`, as the Scheduler does
("When you set up EventBridge Scheduler with Lambda, EventBridge Scheduler
invokes your Lambda function asynchronously", Lambda Developer Guide, "Invoke
a Lambda function on a schedule"), through the local AWS itself, so that the
invocation counts and meets the function's reservation. A schedule whose
`ActionAfterCompletion` is `DELETE` is deleted once it has fired ("For one-time
schedules, this occurs after the schedule has invoked its target once", User
Guide, "Deleting a schedule").

CreateSchedule is refused as the Scheduler refuses it (API Reference,
CreateSchedule and Target): `ValidationException` without `FlexibleTimeWindow`
(its `Mode` OFF or FLEXIBLE), without the target's `Arn` and `RoleArn`, for a
name that is not 1 to 64 of [0-9a-zA-Z-_.], or an at() that is not
`at(yyyy-mm-ddThh:mm:ss)` (User Guide, "Schedule types"); a name taken in the
group is moto's `ConflictException`.

The Scheduler fires "with 60 second precision": at(1:00:00) fires between 1:00:00
and 1:00:59. Here it fires at the time itself, within that window. A time already
past fires at once: with the clock on, a function's own run time is real time and
the clock's seconds pass hundreds of times faster, so a poll that asks for its next
one a minute after it was due can find that minute gone; on AWS the function never
asks for a time already past (wait-for-available's callback.rs).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from . import events
from .clock import CLOCK

log = logging.getLogger("local_aws.scheduler")

NAME = re.compile(r"[0-9a-zA-Z\-_.]{1,64}")
AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")


@dataclass(order=True)
class _Due:
    at: datetime
    order: int
    account: str = field(compare=False)
    region: str = field(compare=False)
    group: str = field(compare=False)
    name: str = field(compare=False)
    target: dict = field(compare=False)
    delete_after: bool = field(compare=False)


def refusal(action: str, name: str, body: bytes) -> str | None:
    """Why the Scheduler refuses this CreateSchedule (None: it does not, or it is another call)."""
    if action != "CreateSchedule":
        return None
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return "The request body is not JSON."
    if not NAME.fullmatch(name):
        return f"Schedule name {name!r} must be 1 to 64 characters of [0-9a-zA-Z-_.]."
    window = document.get("FlexibleTimeWindow")
    if not isinstance(window, dict) or window.get("Mode") not in ("OFF", "FLEXIBLE"):
        return "FlexibleTimeWindow is required, its Mode OFF or FLEXIBLE."
    target = document.get("Target")
    if not isinstance(target, dict) or not target.get("Arn") or not target.get("RoleArn"):
        return "Target is required, with its Arn and RoleArn."
    expression = document.get("ScheduleExpression", "")
    if expression.startswith("at(") and not AT.fullmatch(expression):
        return f"Invalid Schedule Expression {expression}: a one-time schedule is at(yyyy-mm-ddThh:mm:ss)."
    return None


class OneTimeSchedules:
    """The one-time schedules not yet fired, in the order they fall due."""

    def __init__(self):
        self._due: list[_Due] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._fired = 0
        threading.Thread(target=self._run, name="scheduler", daemon=True).start()

    def created(self, account: str, region: str, name: str, body: bytes) -> None:
        """A CreateSchedule that moto accepted: a one-time schedule falls due at its time."""
        document = json.loads(body)
        found = AT.fullmatch(document.get("ScheduleExpression", ""))
        if not found or document.get("State", "ENABLED") != "ENABLED":
            return
        zone = ZoneInfo(document.get("ScheduleExpressionTimezone") or "UTC")
        at = datetime.fromisoformat(found.group(1)).replace(tzinfo=zone)
        due = _Due(at, next(self._order), account, region, document.get("GroupName") or "default",
                   name, document["Target"],
                   document.get("ActionAfterCompletion") == "DELETE")
        with self._changed:
            heapq.heappush(self._due, due)
            self._changed.notify()

    def fired(self) -> int:
        return self._fired

    def clear(self) -> None:
        with self._changed:
            self._due.clear()
            self._fired = 0
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0].at > CLOCK.now():
                    left = (self._due[0].at - CLOCK.now()).total_seconds() if self._due else None
                    self._changed.wait(None if left is None else max(CLOCK.real_seconds(left), 0.001))
                due = heapq.heappop(self._due)
                self._fired += 1
            threading.Thread(target=self._fire, args=(due,), daemon=True).start()

    @staticmethod
    def _fire(due: _Due) -> None:
        arn = due.target["Arn"]
        try:
            if arn.split(":")[2] != "lambda":
                log.warning("schedule %s/%s: target %s is not invoked here", due.group, due.name, arn)
            else:
                events.client("lambda", arn.split(":")[3]).invoke(
                    FunctionName=arn, InvocationType="Event", Payload=(due.target.get("Input") or "{}").encode())
                log.info("schedule %s/%s invoked %s", due.group, due.name, arn)
            if due.delete_after:
                events.client("scheduler", due.region).delete_schedule(GroupName=due.group, Name=due.name)
        except Exception:  # noqa: BLE001 - the Scheduler retries, then drops; here: logged
            log.exception("schedule %s/%s: invocation of %s failed", due.group, due.name, arn)

