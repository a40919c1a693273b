"""The benchmark's results as markdown tables, and the plot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from statistics import median

from local_aws import asl

from .common import Run
from .prune_scale import PruneRun
from .workflow import (HISTORY_EVENT_LIMIT, MODULE_MEMORY_MB, PAYLOAD_LIMIT_BYTES, RUNS_PER_MONTH, WorkflowRun,
                       per_database)

# us-east-1 list prices (../shared/AWS-NOTES.md, from aws.amazon.com/step-functions/pricing and
# aws.amazon.com/lambda/pricing); free tiers left out.
PRICES = {
    "transition": 0.025 / 1000,
    "request": 0.20 / 1_000_000,
    "gb_second": 0.0000166667,
    "scheduled_invocation": 1.00 / 1_000_000,
}
PRICE_SOURCES = ("Step Functions Standard $0.025 per 1,000 state transitions (aws.amazon.com/step-functions/pricing); "
                 "Lambda $0.20 per 1M requests and $0.0000166667 per GB-second, x86_64 "
                 "(aws.amazon.com/lambda/pricing); EventBridge Scheduler $1.00 per million invocations after 14 million "
                 "free a month (aws.amazon.com/eventbridge/pricing, as cloudburn.io quotes it for March 2026); "
                 "us-east-1, free tiers not deducted")
ZIP_LIMIT_BYTES = 4 * 1000 * 1000
TARGETS = {"cold_start": 1 / 10, "memory": 1 / 3}
# Prune's result, in the run's state, lists at most 100 snapshots per list (MAX_LISTED in
# functions/prune): its share stops growing at 100 databases. The payload's line is fitted on
# runs at least that large.
PRUNE_LISTED = 100


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1_000_000:.2f} MB"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass
class Fit:
    """A straight line through measured points, and how far the worst point is from it."""

    intercept: float
    slope: float
    worst_residual: float

    @classmethod
    def of(cls, points: list[tuple[float, float]]) -> Fit:
        n = len(points)
        mean_x = sum(x for x, _ in points) / n
        mean_y = sum(y for _, y in points) / n
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0
        intercept = mean_y - slope * mean_x
        worst = max(abs(y - (intercept + slope * x)) / max(y, 1) for x, y in points)
        return cls(intercept, slope, worst)

    def reach(self, limit: float) -> int:
        return int((limit - self.intercept) // self.slope) if self.slope > 0 else 10**9


@dataclass
class Medians:
    """One function's medians over its cold starts, per language."""

    cold_start_ms: dict[str, float]
    init_ms: dict[str, float]
    peak_rss_kb: dict[str, float]
    emulator_ms: dict[str, float]
    own_ms: dict[str, float]

    @classmethod
    def of(cls, by_language: dict[str, list[Run]]) -> Medians:
        def per_language(measure) -> dict[str, float]:
            return {language: median(measure(r) for r in runs) for language, runs in by_language.items()}

        return cls(per_language(lambda r: r.cold_start_ms), per_language(lambda r: r.init_ms),
                   per_language(lambda r: r.peak_rss_kb), per_language(lambda r: r.emulator_ms),
                   per_language(lambda r: r.own_ms))

    @property
    def time_ratio(self) -> float:
        return self.cold_start_ms["rust"] / self.cold_start_ms["python"]

    @property
    def own_ratio(self) -> float:
        return self.own_ms["rust"] / self.own_ms["python"]

    @property
    def memory_ratio(self) -> float:
        return self.peak_rss_kb["rust"] / self.peak_rss_kb["python"]


def cold_start_table(results: dict[str, dict[str, list[Run]]], zips: dict[str, tuple[int, int]]) -> list[str]:
    runs = len(next(iter(results.values()))["rust"])
    lines = [
        f"### Cold start, peak memory and package size (median of {runs} cold starts each)",
        "",
        "Cold start: process start to the first response posted to the Runtime API, AWS calls included; "
        "init: process start to the runtime's first request for an invocation. Both implementations make "
        "the same calls (counted at the gateway, checked equal) against the same emulator. Emulator: the "
        "time the local AWS took to answer those calls (moto in Python: about 7 ms per RDS call, one call at a "
        "time whatever the client overlaps); own: cold start less that, what the function itself spent.",
        "",
        "| function | Rust cold start | Python cold start | Rust/Python | Rust init | Python init | "
        "emulator (Rust, Python) | Rust own | Python own | Rust/Python own | "
        "Rust peak RSS | Python peak RSS | Rust/Python | AWS calls (each) | zip | bootstrap |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    targets = []
    for function, by_language in results.items():
        m = Medians.of(by_language)
        calls = ", ".join(f"{action.split(':')[1]} {n}" for action, n in sorted(by_language["rust"][0].calls.items()))
        zip_bytes, bootstrap_bytes = zips[function]
        lines.append(
            f"| {function} | {m.cold_start_ms['rust']:.0f} ms | {m.cold_start_ms['python']:.0f} ms | "
            f"{m.time_ratio:.3f} | {m.init_ms['rust']:.1f} ms | {m.init_ms['python']:.0f} ms | "
            f"{m.emulator_ms['rust']:.0f} ms, {m.emulator_ms['python']:.0f} ms | {m.own_ms['rust']:.1f} ms | "
            f"{m.own_ms['python']:.0f} ms | {m.own_ratio:.3f} | "
            f"{m.peak_rss_kb['rust'] / 1024:.1f} MiB | {m.peak_rss_kb['python'] / 1024:.1f} MiB | "
            f"{m.memory_ratio:.3f} | {calls} | {mb(zip_bytes)} | {mb(bootstrap_bytes)} |")
        targets.append(
            f"- {function}: cold start {m.time_ratio:.3f} of Python (target 0.100: "
            f"{verdict(m.time_ratio <= TARGETS['cold_start'])}; without the emulator's time {m.own_ratio:.3f}); "
            f"memory {m.memory_ratio:.3f} (target 0.333: "
            f"{verdict(m.memory_ratio <= TARGETS['memory'])}); zip {mb(zip_bytes)} (target 4 MB: "
            f"{verdict(zip_bytes <= ZIP_LIMIT_BYTES)})")
    return [*lines, "", *targets]


def prune_table(runs: list[PruneRun]) -> list[str]:
    lines = [
        "### Prune at scale (10 databases, ages spread over 60 days, retention 30 days, 1 in 50 snapshots foreign)",
        "",
        "| snapshots | implementation | deleted | foreign deleted | wall time | RDS calls | Describe pages | "
        "calls per deleted snapshot | calls - deleted - pages |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        per_deleted = run.rds_calls / run.deleted if run.deleted else float("nan")
        lines.append(
            f"| {run.snapshots} | {run.implementation} | {run.deleted} | {run.foreign_deleted} | {run.seconds:.1f} s | "
            f"{run.rds_calls} | {run.pages} | {per_deleted:.3f} | {run.rds_calls - run.deleted - run.pages} |")
    return lines


def cost_lines(first: WorkflowRun, slow: WorkflowRun) -> list[str]:
    lines = [
        "### Workflow cost (the module's defaults: 256 MB functions, one run a day)",
        "",
        "| waits | transitions per database | + per run | Lambda invocations per database | + per run | "
        "GB-s per database | 10 DBs $/month | 100 DBs $/month | 1,000 DBs $/month |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in (first, slow):
        figures = per_database(run)
        label = "available on the 1st poll" if run.polls == 1 else f"available on poll {run.polls}"
        costs = []
        for count in (10, 100, 1000):
            transitions = figures["run_transitions"] + count * figures["transitions"]
            invocations = figures["run_invocations"] + count * figures["invocations"]
            gb_seconds = count * figures["gb_seconds"]
            month = RUNS_PER_MONTH * (transitions * PRICES["transition"] + invocations * PRICES["request"]
                                      + gb_seconds * PRICES["gb_second"])
            costs.append(f"${month:.2f}")
        lines.append(
            f"| {label} ({run.databases} DBs measured) | {figures['transitions']:.0f} | "
            f"{figures['run_transitions']:.0f} | {figures['invocations']:.0f} | {figures['run_invocations']:.0f} | "
            f"{figures['gb_seconds']:.3f} | {' | '.join(costs)} |")
    lines += ["", f"Prices: {PRICE_SOURCES}. GB-s are the emulator's durations (each invocation rounded up to "
              "1 ms) at 256 MB; the run's select, prune and notify are in the per-database GB-s share."]
    return lines


def scale_lines(runs: list[WorkflowRun], slow: WorkflowRun) -> list[str]:
    events = Fit.of([(r.databases, r.events) for r in runs])
    full = [r for r in runs if r.databases >= PRUNE_LISTED]
    fitted = full if len(full) >= 2 else runs
    payload = Fit.of([(r.databases, r.largest_payload_bytes) for r in fitted])
    slow_per_db = (slow.events - events.intercept) / slow.databases
    lines = [
        "### Scale of one execution",
        "",
        "Each database runs in its own execution of the database state machine (its own 25,000 events); the run "
        "keeps per database a Map item and the task waiting for that execution, and its identifier and execution "
        "name (notify reads each result from the execution).",
        "",
        "| databases | status | run: history events | run: largest state payload | each database's execution: "
        "most events | its largest state payload | wall time |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs + [slow]:
        polls = "" if run.polls == 1 else f" ({run.polls} polls)"
        lines.append(f"| {run.databases}{polls} | {run.status} | {run.events:,} | {run.largest_payload_bytes:,} B | "
                     f"{run.database_events:,} | {run.database_payload_bytes:,} B | {run.seconds:.1f} s |")
    reach = min(events.reach(HISTORY_EVENT_LIMIT), payload.reach(PAYLOAD_LIMIT_BYTES))
    largest = max(runs, key=lambda r: r.databases).databases
    lines += [
        "",
        f"- Run history events = {events.intercept:.0f} + {events.slope:.1f} x databases (worst point "
        f"{events.worst_residual:.1%} off the line, measured up to {largest:,} databases): "
        f"{events.reach(HISTORY_EVENT_LIMIT):,} databases within {HISTORY_EVENT_LIMIT:,} events. With every wait "
        f"taking {slow.polls} polls the run still records {slow_per_db:.1f} events per database: the polls are in "
        f"each database's own execution ({slow.database_events:,} events at most, against its own "
        f"{HISTORY_EVENT_LIMIT:,}).",
        f"- Largest run state payload = {payload.intercept:.0f} + {payload.slope:.1f} B x databases, "
        f"{fit_basis(payload, fitted)} (identifiers of {len('bench-db-0001')} characters; below {PRUNE_LISTED} "
        f"databases prune's lists, at most {PRUNE_LISTED} snapshots each, still grow): "
        f"{payload.reach(PAYLOAD_LIMIT_BYTES):,} databases within 256 KB.",
        f"- One execution handles {reach:,} databases (the smaller of the two; target 1,000: "
        f"{verdict(reach >= 1000)}).",
    ]
    return lines


def fit_basis(fit: Fit, runs: list[WorkflowRun]) -> str:
    """What a line was fitted on: two runs fix it; more show how well it holds."""
    sizes = " and ".join(f"{r.databases:,}" for r in runs)
    if len(runs) == 2:
        return f"the line through the runs of {sizes} databases"
    return f"fitted on {len(runs)} runs (worst point {fit.worst_residual:.1%} off the line)"


def plot(results: dict[str, dict[str, list[Run]]], path: os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    functions = list(results)
    positions = range(len(functions))
    width = 0.38
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    medians = [Medians.of(results[f]) for f in functions]
    for axis, measure, unit, title in (
        (time_axis, lambda m: m.cold_start_ms, 1, "Cold start to first response (ms, median)"),
        (memory_axis, lambda m: m.peak_rss_kb, 1024, "Peak RSS (MiB, median)"),
    ):
        for offset, language, colour in ((-width / 2, "rust", "#b7410e"), (width / 2, "python", "#3572a5")):
            values = [measure(m)[language] / unit for m in medians]
            bars = axis.bar([p + offset for p in positions], values, width, label=language.capitalize(), color=colour)
            axis.bar_label(bars, fmt="%.0f", fontsize=7)
        axis.set_xticks(list(positions), functions, rotation=20, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8)
    figure.suptitle("database-backup functions: Rust vs a Python 3 + boto3 baseline, same local AWS", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def fleet_lines(fleet) -> list[str]:
    """The fleet on the clock: the waits as they are (one task each, its polls scheduled from
    RDS's progress) against polling every interval in Wait states, for the same durations."""
    ratio = fleet.makespan_seconds / fleet.lower_bound_seconds
    return [
        f"### A fleet on the clock: {fleet.databases} databases, 20 GB to 4 TB (log-uniform), copies and exports",
        "",
        f"The local AWS's clock at {fleet.scale}x (`scripts/python/local_aws/operations.py`'s durations; the "
        f"longest database takes {fleet.longest_chain_hours:.1f} h); {fleet.lanes} databases at once "
        f"(`max_concurrent_databases`), polls at least {fleet.poll_intervals[0]} s apart (exports "
        f"{fleet.poll_intervals[1]} s), "
        f"wait bounds the slots' queue fits in (copies {fleet.copy_bound_hours:.0f} h, exports "
        f"{fleet.export_bound_hours:.0f} h: the others' work over the slots, then its own, and a fifth more). Run: "
        f"{fleet.status}, {fleet.failed} databases failed"
        + (f" ({', '.join(f'{n} x {reason}' for reason, n in fleet.failure_reasons.most_common())})"
           if fleet.failure_reasons else "")
        + f", {fleet.throttled} RDS calls throttled, {fleet.real_seconds:.0f} s of real time.",
        "",
        f"| | Polls per database | Transitions per database | Makespan / bound with {fleet.lanes} lanes | "
        "Makespan / bound of AWS's limits |",
        "|---|---|---|---|---|",
        f"| one task per wait, each poll scheduled from the progress (measured) | {fleet.polls_per_database:.1f} | "
        f"{fleet.transitions_per_database:.1f} | {fleet.makespan_seconds / 3600:.1f} h / "
        f"{fleet.lower_bound_seconds / 3600:.1f} h = {ratio:.2f} | {fleet.makespan_seconds / 3600:.1f} h / "
        f"{fleet.limits_bound_seconds / 3600:.1f} h = {fleet.makespan_seconds / fleet.limits_bound_seconds:.2f} |",
        f"| a poll every interval in Wait states (computed from the same durations) | "
        f"{fleet.fixed_polls_per_database:.1f} | "
        f"{fleet.fixed_transitions_per_database:.1f} | - | - |",
        "",
        "Transitions per database by part (measured): " + ", ".join(
            f"{name} {fleet.parts_per_database.get(name, 0):.1f}" for name in ("waits", "slot tries", "the rest"))
        + " (waits: one task each, whatever its polls; slot tries: each past the first a wait, the try and "
        "its choice; the rest: the states a database enters once).",
        "",
        f"RDS calls per database (measured): {fleet.rds_calls_per_database:.1f}. The bound of AWS's limits is the "
        "largest of the longest chain (snapshot, then the longer of copy and export), all exports over 5 slots and "
        f"all copies over 20; the bound with {fleet.lanes} lanes adds all chains over the {fleet.lanes} databases "
        "the run backs up at once.",
        "",
        *export_slot_lines(fleet),
        *heartbeat_slack_lines(fleet),
        *fleet_cost_lines(fleet),
    ]


def export_slot_lines(fleet) -> list[str]:
    """What the 5 export slots did, from the export tasks' own start and end times: the slot
    time left idle between the first start and the last end, per hand-over of a slot."""
    if fleet.exports <= 5:
        return []
    idle = 5 * fleet.export_span_seconds - fleet.export_busy_seconds
    handovers = fleet.exports - 5
    return [
        f"Export slots (measured from the {fleet.exports} export tasks' start and end times): they held "
        f"{fleet.export_busy_seconds / 3600:.1f} slot-hours of the 5 x {fleet.export_span_seconds / 3600:.1f} h "
        f"from the first start to the last end; {idle / 3600:.1f} slot-hours idle, "
        f"{idle / handovers / 60:.1f} minutes per hand-over of a slot ({handovers} hand-overs), so "
        f"{idle / 5 / 3600:.1f} h of the span is idle slots and {fleet.export_busy_seconds / 5 / 3600:.1f} h the "
        "exports' own work over 5 slots (a slot is idle while it is handed on, or while no database is ready to "
        "export: with few lanes, the lanes bound the run, not the slots).",
        "",
    ]


def heartbeat_slack_lines(fleet) -> list[str]:
    """How late a poll may come before its wait fails at the heartbeat, against how long the
    emulator's invocations took in real time, which its clock multiplies by the scale."""
    waits = asl.contract()["waits"]
    slack = waits["heartbeat_seconds"] - waits["longest_poll_interval_seconds"]
    p50, p99 = fleet.invocation_ms_percentiles
    return [
        f"A wait's task fails without a poll for {waits['heartbeat_seconds'] / 3600:.0f} h (its heartbeat), its "
        f"polls at most {waits['longest_poll_interval_seconds'] / 3600:.0f} h apart: a poll may come "
        f"{slack / 3600:.0f} h late, {slack / fleet.scale:.1f} s of real time at {fleet.scale}x. The emulator's "
        f"invocations took {p50:.0f} ms (median) and {p99:.0f} ms (99th percentile) of real time, "
        f"{p50 / 1000 * fleet.scale / 60:.0f} and {p99 / 1000 * fleet.scale / 60:.0f} minutes on its clock "
        "(Lambda's take milliseconds to a few seconds).",
        "",
    ]


def fleet_cost_lines(fleet) -> list[str]:
    """What the fleet's databases cost a month (one run a day) at the measured rates, and what
    polling every interval would cost: one invocation more per extra poll, at the same mean
    billed time. The run's own share (select, prune, notify, the run's states) is left out:
    the workflow cost table above has it."""
    gb_seconds_per_invocation = fleet.billed_ms_per_invocation / 1000 * MODULE_MEMORY_MB / 1024
    # Polling every interval: those polls, instead of the scheduled ones and each wait's first call.
    fixed_invocations = (fleet.invocations_per_database + fleet.fixed_polls_per_database - fleet.polls_per_database
                         - fleet.parts_per_database.get("waits", 0))
    rows = []
    for label, transitions, invocations, scheduled in (
            ("one task per wait, polls scheduled (measured)", fleet.transitions_per_database,
             fleet.invocations_per_database, fleet.polls_per_database),
            ("a poll every interval (computed)", fleet.fixed_transitions_per_database, fixed_invocations, 0)):
        per_database = RUNS_PER_MONTH * (transitions * PRICES["transition"] + invocations * PRICES["request"]
                                         + invocations * gb_seconds_per_invocation * PRICES["gb_second"]
                                         + scheduled * PRICES["scheduled_invocation"])
        costs = " | ".join(f"${count * per_database:,.2f}" for count in (10, 100, 1000))
        rows.append(f"| {label} | {transitions:.1f} | {invocations:.1f} | {costs} |")
    return [
        "Step Functions and Lambda a month for the databases' executions, one run a day, at these durations:",
        "",
        "| waits | transitions per database | Lambda invocations per database | 10 DBs | 100 DBs | 1,000 DBs |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Prices: {PRICE_SOURCES}. Each invocation billed {fleet.billed_ms_per_invocation:.0f} ms at "
        f"{MODULE_MEMORY_MB} MB (the emulator's mean duration in this run; a loaded machine makes it longer than "
        "Lambda's).",
    ]
