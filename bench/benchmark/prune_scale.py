"""Prune at scale: thousands of snapshots of ten databases, deleted by our prune and by the
spec's naive cleanup, each from the same inventory; wall time and RDS calls counted at the gateway."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from local_aws.control import control

from .common import REGION, BenchError, Local, create_databases, deleted_count, execution, say

DATABASES = [f"bench-scale-{n:02d}" for n in range(1, 11)]
PROJECT, ENVIRONMENT = "bench", "scale"
RETENTION_DAYS, MIN_SNAPSHOTS_TO_KEEP = 30, 3
# Snapshot ages spread evenly over this many days: about half are past retention.
SPAN_DAYS = 60
# One in this many snapshots belongs to someone else (a DBA, another tool): it must survive.
FOREIGN_EVERY = 50


@dataclass
class PruneRun:
    implementation: str
    snapshots: int
    deleted: int
    foreign_deleted: int
    seconds: float
    calls: dict[str, int]

    @property
    def rds_calls(self) -> int:
        return sum(n for action, n in self.calls.items() if action.startswith("rds:"))

    @property
    def pages(self) -> int:
        return sum(n for action, n in self.calls.items() if action.startswith("rds:Describe"))


def inventory(total: int, now: datetime) -> tuple[list[dict], set[str]]:
    """`total` manual snapshots over the databases; the foreign ones' identifiers."""
    rows, foreign = [], set()
    per_database = total // len(DATABASES)
    for db in DATABASES:
        for n in range(per_database):
            snapshot_id = f"{db}-{n:05d}"
            tags = {"database-backup:managed-by": f"{PROJECT}/{ENVIRONMENT}/{REGION}", "database-backup:source-db": db,
                    "database-backup:execution": "seeded", "Project": PROJECT, "Environment": ENVIRONMENT}
            if n % FOREIGN_EVERY == FOREIGN_EVERY - 1:
                tags = {"owner": "dba"}
                foreign.add(snapshot_id)
            created = now - timedelta(days=SPAN_DAYS * n / per_database, minutes=1)
            rows.append({"db_instance_identifier": db, "snapshot_id": snapshot_id,
                         "created": created.isoformat(), "tags": tags})
    return rows, foreign


def prepare(local: Local, total: int, now: datetime) -> set[str]:
    local.reset(snapshot_limit=total + 1000)
    create_databases(local, DATABASES)
    rows, foreign = inventory(total, now)
    for start in range(0, len(rows), 1000):
        try:
            control(local.endpoint, "POST", "rds/snapshots", {"region": REGION, "snapshots": rows[start:start + 1000]})
        except Exception as err:
            raise BenchError(f"seeding {total} snapshots failed ({err}); moto's limit is MOTO_RDS_SNAPSHOT_LIMIT, "
                             "which scripts/bench sets before it starts the local AWS") from err
    return foreign


def remaining(local: Local) -> set[str]:
    pages = local.aws.client("rds", REGION).get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
    return {s["DBSnapshotIdentifier"] for page in pages for s in page["DBSnapshots"]}


def measure(local: Local, totals: list[int]) -> list[PruneRun]:
    environment = {"PROJECT_NAME": PROJECT, "ENVIRONMENT": ENVIRONMENT, "RETENTION_DAYS": str(RETENTION_DAYS),
                   "MIN_SNAPSHOTS_TO_KEEP": str(MIN_SNAPSHOTS_TO_KEEP), "DRY_RUN": "false",
                   # Deletions at scale are measured here, not the guard on a retention change.
                   "PRUNE_GUARD_FRACTION": "1"}
    runs = []
    for total in totals:
        for implementation, language, function in (("prune (Rust)", "rust", "prune"),
                                                   ("naive cleanup (Python)", "python", "naive-cleanup")):
            now = datetime.now(UTC)
            foreign = prepare(local, total, now)
            before = remaining(local)
            event = {"execution": execution("bench-scale-backup", now)}
            started = time.monotonic()
            run = local.cold_start(language, function, environment, event, timeout_seconds=900)
            seconds = time.monotonic() - started
            gone = before - remaining(local)
            reported = deleted_count(run.output)
            if reported != len(gone):
                raise BenchError(f"{implementation} reported {reported} deletions, but {len(gone)} snapshots are gone")
            runs.append(PruneRun(implementation, total, len(gone), len(gone & foreign), seconds, run.calls))
            say(f"  {total} snapshots, {implementation}: {len(gone)} deleted in {seconds:.1f} s, "
                f"{runs[-1].rds_calls} RDS calls")
    return runs
