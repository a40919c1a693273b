"""A fleet on the local AWS's clock (issue 21): databases whose allocated storage is
drawn from a long-tailed distribution (log-uniform from 20 GB to 4 TB, a fixed seed),
backed up with copies and exports, the module's default polls, the clock at `scale`.
Snapshots, copies and exports take the local AWS's model durations
(scripts/python/local_aws/operations.py); measured: the makespan (simulated) against
the lower bound the limits allow, state transitions, Lambda invocations and RDS calls
per database, RDS throttles, databases failed. Beside it, what polling every interval
in Wait states (the design before `schedule.rs` and `callback.rs`) costs for the same
durations: computed, since the polls of a fixed interval follow from the durations alone."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from demo.follow import read
from local_aws.control import control
from local_aws.deploy import Deployment, Settings, module_default

from .common import REGION, SELECTED, ZIPS, Local, run_backup, say

SMALLEST_GB, LARGEST_GB, SEED = 20, 4000, 21
# A poll every interval cost four transitions (a wait, the poll, its choice, and the pass that
# began the wait counted once); a scheduled poll costs none (the wait is one task).
POLL_TRANSITIONS_BEFORE = 4
EXPORT_SLOTS, COPY_SLOTS = 5, 20
# The longest wait_timeout_seconds the module accepts (terraform/variables.tf).
WAIT_BOUND_MAX = 7 * 24 * 3600


def sizes(count: int) -> list[int]:
    generator = random.Random(SEED)
    return [round(math.exp(generator.uniform(math.log(SMALLEST_GB), math.log(LARGEST_GB)))) for _ in range(count)]


@dataclass
class Fleet:
    databases: int
    scale: int
    lanes: int
    status: str
    failed: int
    makespan_seconds: float
    lower_bound_seconds: float
    limits_bound_seconds: float
    real_seconds: float
    transitions_per_database: float
    polls_per_database: float
    rds_calls_per_database: float
    throttled: int
    fixed_polls_per_database: float
    fixed_transitions_per_database: float
    # Lambda invocations of the databases' executions, per database, and their mean billed time.
    invocations_per_database: float
    billed_ms_per_invocation: float
    # The median and the 99th percentile of those invocations' real durations, ms.
    invocation_ms_percentiles: tuple[float, float]
    longest_chain_hours: float
    # The copies' and the exports' wait bounds the run had (wait_timeout_seconds).
    copy_bound_hours: float
    export_bound_hours: float
    # The shortest polls of the run (poll_interval_seconds, export_poll_interval_seconds).
    poll_intervals: tuple[int, int]
    # The export slots, measured from the export tasks (start to end, on the clock): how many
    # ran, the slot time they held together, and the span from the first start to the last end.
    exports: int = 0
    export_busy_seconds: float = 0.0
    export_span_seconds: float = 0.0
    failure_reasons: Counter = field(default_factory=Counter)
    # Transitions per database by what they did (PARTS), measured.
    parts_per_database: dict[str, float] = field(default_factory=dict)


def percentiles(values: list[float], shares: tuple[float, ...]) -> tuple[float, ...]:
    """The nearest-rank percentiles of `values` (zeros for none)."""
    ordered = sorted(values)
    if not ordered:
        return tuple(0.0 for _ in shares)
    return tuple(ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] for share in shares)


# What a database's transitions did, by state: its waits (one task each, however many polls),
# the tries for a slot past the first; the rest is each other state entered once (snapshot,
# branches, results).
SLOT_STATES = {"QueueForExportSlot", "WaitForExportSlot", "WaitForCopySlot"}
WAIT_STATES = {"WaitForSnapshot", "WaitForExport", "WaitForCopy"}


def part(state: str) -> str:
    if state in SLOT_STATES:
        return "slot tries"
    if state in WAIT_STATES:
        return "waits"
    return "the rest"


def transition_parts(databases) -> Counter[str]:
    """Transitions of the databases' executions by part. A try for a slot past the first
    enters the try and its choice again (Export and IsExportRunning, Copy and IsCopyMade):
    those count as slot tries too."""
    parts: Counter[str] = Counter()
    for child in databases:
        entered = Counter(e["stateEnteredEventDetails"]["name"] for e in child.history
                          if e["type"].endswith("StateEntered"))
        for state, times in entered.items():
            parts[part(state)] += times
        retried = 2 * (max(entered["Export"] - 1, 0) + max(entered["Copy"] - 1, 0))
        parts["slot tries"] += retried
        parts["the rest"] -= retried
    return parts


def durations(gb: int, model: dict[str, int]) -> tuple[float, float, float]:
    """A first snapshot, copy and export of `gb`, in the local AWS's model (seconds)."""
    return (model["snapshot_base_seconds"] + model["snapshot_seconds_per_gb"] * gb,
            model["copy_base_seconds"] + model["copy_seconds_per_gb"] * gb,
            model["export_start_seconds"] + model["export_seconds_per_gb"] * gb)


def limits_bound_of(chains: dict[str, tuple[float, float, float]]) -> float:
    """What AWS's limits allow (issue 21's bound): the longest chain (a snapshot, then the
    longer of its copy and export), all exports over 5 slots, all copies over 20."""
    return max(max(snapshot + max(copy, export) for snapshot, copy, export in chains.values()),
               sum(export for _, _, export in chains.values()) / EXPORT_SLOTS,
               sum(copy for _, copy, _ in chains.values()) / COPY_SLOTS)


def lower_bound_of(chains: dict[str, tuple[float, float, float]], lanes: int) -> float:
    """The bound of AWS's limits with the run's lanes besides: all chains over the lanes."""
    return max(limits_bound_of(chains),
               sum(snapshot + max(copy, export) for snapshot, copy, export in chains.values()) / lanes)


def export_slot_use(rds) -> tuple[int, float, float]:
    """The export tasks' number, the slot time they held together (each from its start to its
    end) and the span from the first start to the last end, in seconds."""
    tasks = [t for page in rds.get_paginator("describe_export_tasks").paginate() for t in page["ExportTasks"]]
    spans = [(t["TaskStartTime"], t["TaskEndTime"]) for t in tasks if t.get("TaskEndTime")]
    if not spans:
        return 0, 0.0, 0.0
    busy = sum((end - start).total_seconds() for start, end in spans)
    return len(spans), busy, (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()


def run(local: Local, count: int, scale: int, lanes: int) -> Fleet:
    """Backs up `count` databases on the clock at `scale`, `lanes` at once; what it took."""
    names = [f"fleet-db-{n:04d}" for n in range(1, count + 1)]
    storage = dict(zip(names, sizes(count)))
    local.reset(snapshot_limit=10 * count + 100)
    control(local.endpoint, "PUT", "settings", {"clock_scale": scale})
    model = control(local.endpoint, "GET", "settings")
    rds = local.aws.client("rds", REGION)
    for name, gb in storage.items():
        rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=gb, MasterUsername="dbadmin",
                               MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True,
                               Tags=[{"Key": k, "Value": v} for k, v in SELECTED])
    chains = {name: durations(gb, model) for name, gb in storage.items()}
    # Wait bounds the queue fits in: the last database to get a slot waits for the others' work
    # over the slots, then runs its own (a fifth more for the polls' lateness; the module's 12 h
    # and 24 h at least, its 7 days at most). A database reported failed is then a true failure.
    copy_bound, export_bound = (
        min(WAIT_BOUND_MAX, max(least, math.ceil(1.2 * (sum(d[i] for d in chains.values()) / slots
                                                        + max(d[i] for d in chains.values())))))
        for i, slots, least in ((1, COPY_SLOTS, 12 * 3600), (2, EXPORT_SLOTS, 24 * 3600)))
    # The shortest polls that the module plans with such bounds: it counts every wait as
    # if each poll came after the shortest interval (RDS showing no progress to estimate from).
    poll_intervals = (120, 1800) if export_bound > 24 * 3600 else None
    settings = Settings(db_identifiers=(), selection_tags=SELECTED, project="bench", environment="fleet",
                        max_concurrency=lanes,
                        wait_timeout_seconds=copy_bound, export_wait_timeout_seconds=export_bound,
                        module_poll_intervals=poll_intervals)
    deployment = Deployment.create(local.endpoint, ZIPS, settings)
    control(local.endpoint, "DELETE", "calls")
    sfn = local.aws.client("stepfunctions", REGION)
    # Given up after three times the lower bound in real time (at least an hour): far past any
    # makespan the targets allow, and short of the bench running on for ever.
    timeout = max(3600.0, 3 * lower_bound_of(chains, lanes) / scale)
    description, real_seconds = run_backup(sfn, deployment.state_machine_arn, f"the fleet of {count}", timeout)
    execution = read(sfn, description["executionArn"])
    transitions = execution.transitions()
    # Each poll is a one-time schedule fired (none polls at a wait's start).
    polls = control(local.endpoint, "GET", "scheduler")["fired"]
    calls = control(local.endpoint, "GET", "calls")
    run_functions = {f"{settings.prefix}-{f}" for f in ("select", "prune", "notify")}
    invocations = [i for i in control(local.endpoint, "GET", "invocations") if i["function"] not in run_functions]
    # Lambda bills each invocation's duration rounded up to the millisecond.
    billed_ms = sum(math.ceil(i["duration_ms"]) for i in invocations)
    # Each failed database's errors, by name (a database's result names every step that failed).
    reasons: Counter[str] = Counter()
    failed = 0
    for child in execution.databases.values():
        errors = [value for key, value in json.loads(child.description.get("output") or "{}").items()
                  if key.endswith("error") and isinstance(value, dict)]
        failed += bool(errors)
        reasons.update(f"{e.get('step')}: {e.get('Error')}" for e in errors)

    exports, export_busy, export_span = export_slot_use(rds)
    longest_chain = max(snapshot + max(copy, export) for snapshot, copy, export in chains.values())
    limits_bound, lower_bound = limits_bound_of(chains), lower_bound_of(chains, lanes)
    start = datetime.fromisoformat(str(description["startDate"]))
    stop = datetime.fromisoformat(str(description["stopDate"]))
    interval, export_interval = module_default("poll_interval_seconds"), module_default("export_poll_interval_seconds")
    fixed_polls = sum(math.ceil(snapshot / interval) + 1 + math.ceil(copy / interval) + 1
                      + math.ceil(export / export_interval) + 1 for snapshot, copy, export in chains.values())
    per_db_transitions = sum(transitions[name] for name in names) / count
    parts = transition_parts(execution.databases.values())
    other = per_db_transitions - parts["waits"] / count
    fleet = Fleet(
        databases=count, scale=scale, lanes=lanes, status=description["status"], failed=failed,
        makespan_seconds=(stop - start).total_seconds(), lower_bound_seconds=lower_bound,
        limits_bound_seconds=limits_bound,
        real_seconds=real_seconds, transitions_per_database=per_db_transitions,
        polls_per_database=polls / count,
        rds_calls_per_database=sum(n for action, n in calls.items() if action.startswith("rds:")) / count,
        throttled=control(local.endpoint, "GET", "clock")["rds_throttled"],
        fixed_polls_per_database=fixed_polls / count,
        fixed_transitions_per_database=other + POLL_TRANSITIONS_BEFORE * fixed_polls / count,
        invocations_per_database=len(invocations) / count,
        billed_ms_per_invocation=billed_ms / max(len(invocations), 1),
        invocation_ms_percentiles=percentiles([i["duration_ms"] for i in invocations], (0.5, 0.99)),
        longest_chain_hours=longest_chain / 3600,
        copy_bound_hours=copy_bound / 3600, export_bound_hours=export_bound / 3600,
        poll_intervals=poll_intervals or (interval, export_interval),
        exports=exports, export_busy_seconds=export_busy, export_span_seconds=export_span,
        failure_reasons=reasons,
        parts_per_database={name: n / count for name, n in parts.items()},
    )
    control(local.endpoint, "PUT", "settings", {"clock_scale": 0})
    say(f"  fleet of {count} at {scale}x: {fleet.status}, {failed} failed, makespan "
        f"{fleet.makespan_seconds / 3600:.1f} h (lower bound {lower_bound / 3600:.1f} h) in {real_seconds:.0f} s real, "
        f"{fleet.polls_per_database:.1f} polls and {per_db_transitions:.1f} transitions per database")
    return fleet
