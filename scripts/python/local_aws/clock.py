"""The local AWS's clock. Every time the module meets here comes from it: RDS
creation times, the progress of snapshots, copies and exports
(local_aws/operations.py), Step Functions' `$$.Execution.StartTime`,
`$$.State.EnteredTime`, history and execution dates, its `Wait` states and its
retriers' back-off, and the `time` of EventBridge events.

The clock runs `scale` simulated seconds per real second (the gateway setting
`clock_scale`). At 0, the instant mode, it keeps real time and RDS operations
finish as soon as they start (moto's own behaviour); at 600 a Wait of an hour
lasts 6 real seconds and a 20-minute snapshot 2. A change of scale keeps the
time continuous.

Task `TimeoutSeconds` (and `TimeoutSecondsPath`) and `HeartbeatSeconds` are on
the clock too: the module's wait in the export slot queue ends at its timeout, a
wait whose polls stop at its heartbeat; so are EventBridge Scheduler's one-time
schedules (local_aws/scheduler.py), which run the waits' polls. Not on the clock:
Lambda timeouts and the functions' own run time (real compute).
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import threading
import time
from types import SimpleNamespace

from moto.events import models as events_models
from moto.rds import models as rds_models
from moto.stepfunctions import models as stepfunctions_models
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state import state as asl_state
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import timestamp as wait_timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatEndpoint
from moto.stepfunctions.parser.asl.eval.event import event_manager
from moto.stepfunctions.parser.backend import execution as parser_execution

UTC = _datetime.timezone.utc


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scale = 0
        self._origin_real = time.monotonic()
        self._origin = _datetime.datetime.now(UTC)
        # The instant of the call this thread answers, if it is inside one (`one_instant`).
        self._call = threading.local()

    @property
    def scale(self) -> int:
        return self._scale

    @property
    def instant(self) -> bool:
        """RDS operations finish as they start."""
        return self._scale == 0

    def _rate(self) -> int:
        return self._scale or 1

    @contextlib.contextmanager
    def one_instant(self):
        """Within it, this thread reads one time: a call that describes many resources sees
        them all at one moment, as AWS answers from one state (read resource by resource on
        a loaded machine, two copies could straddle the hand-over from one to the next)."""
        self._call.at = self.now()
        try:
            yield
        finally:
            self._call.at = None

    def now(self) -> _datetime.datetime:
        """The simulated time (UTC, aware)."""
        at = getattr(self._call, "at", None)
        if at is not None:
            return at
        with self._lock:
            elapsed = (time.monotonic() - self._origin_real) * self._rate()
            return self._origin + _datetime.timedelta(seconds=elapsed)

    def naive_now(self) -> _datetime.datetime:
        """The simulated time as moto keeps most of its times: naive UTC."""
        return self.now().replace(tzinfo=None)

    def set_scale(self, scale: int) -> None:
        now = self.now()
        with self._lock:
            self._origin, self._origin_real, self._scale = now, time.monotonic(), scale

    def restart(self) -> None:
        """Back to real time (the local AWS was reset), at the same scale."""
        with self._lock:
            self._origin, self._origin_real = _datetime.datetime.now(UTC), time.monotonic()

    def real_seconds(self, simulated: float) -> float:
        return max(simulated, 0) / self._rate()

    def sleep(self, simulated: float) -> None:
        time.sleep(self.real_seconds(simulated))


CLOCK = Clock()


class _SimulatedDatetime(_datetime.datetime):
    """`datetime.datetime` whose `now()` is the clock's: naive (UTC) without a zone,
    as moto's Timestamp wait compares it, aware with one."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206 - datetime's own signature
        now = CLOCK.now()
        return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)


# Stands for the `datetime` module in the moto modules that read the time through it.
_DATETIME_MODULE = SimpleNamespace(datetime=_SimulatedDatetime, timezone=_datetime.timezone,
                                   timedelta=_datetime.timedelta, date=_datetime.date)


def _wait_interval(self: WaitFunction, env, wait_seconds: int) -> None:
    """A Wait of `wait_seconds` simulated seconds; stops early when the execution stops."""
    end = CLOCK.now() + _datetime.timedelta(seconds=wait_seconds)
    while env.is_running():
        left = (end - CLOCK.now()).total_seconds()
        if left <= 0:
            return
        # Any change of the execution's state (a stop) sets the event: the loop looks again.
        env.program_state_event.wait(CLOCK.real_seconds(left))


class _ClockEvent(threading.Event):
    """A `threading.Event` whose `wait(timeout)` counts the timeout in simulated seconds
    (the Task state's own timeout, `ExecutionState._evaluate_with_timeout`)."""

    def wait(self, timeout: float | None = None) -> bool:
        return super().wait(None if timeout is None else CLOCK.real_seconds(timeout))


def _on_the_clock(wait_for_task_token_timeout):
    """A `.waitForTaskToken` task's wait for its token, in simulated seconds."""

    def wait(self: StateTaskServiceCallback, timeout_seconds: int, callback_endpoint):
        return wait_for_task_token_timeout(self, CLOCK.real_seconds(timeout_seconds), callback_endpoint)

    return wait


def _clear_and_wait(self: HeartbeatEndpoint) -> bool:
    """A `.waitForTaskToken` task's wait for its next heartbeat (`HeartbeatSeconds`), on the clock."""
    with self._mutex:
        if self._next_heartbeat_event.is_set():
            self._next_heartbeat_event.clear()
            return True
    return self._next_heartbeat_event.wait(timeout=CLOCK.real_seconds(self._heartbeat_seconds))


def _unix_time(at: _datetime.datetime | None = None) -> float:
    at = at or CLOCK.naive_now()
    return (at.replace(tzinfo=UTC) if at.tzinfo is None else at).timestamp()


def apply() -> None:
    for module in (parser_models, parser_execution, asl_state, event_manager, wait_timestamp):
        module.datetime = _DATETIME_MODULE
    WaitFunction._wait_interval = _wait_interval
    execute_state.threading = SimpleNamespace(Event=_ClockEvent)
    StateTaskServiceCallback._wait_for_task_token_timeout = _on_the_clock(
        StateTaskServiceCallback._wait_for_task_token_timeout)
    HeartbeatEndpoint.clear_and_wait = _clear_and_wait
    retrier_decl.time = SimpleNamespace(sleep=CLOCK.sleep)
    stepfunctions_models.utcnow = CLOCK.naive_now
    rds_models.utcnow = CLOCK.naive_now
    events_models.unix_time = _unix_time
