"""How long RDS takes. moto makes every snapshot, copy and export ready as it
is requested; here, on the clock (local_aws/clock.py), each moves through its
statuses over a duration drawn from the model below, with `PercentProgress`,
and the counts the limits need (copies in progress, running exports) follow.

The model (AWS documents no durations; the defaults give about an hour for the
first snapshot of a 1 TB database, 3 hours for its first cross-region copy and
6 for its export, the scale users report):

- a snapshot takes `snapshot_base_seconds` + `snapshot_seconds_per_gb` x GB;
- a copy takes `copy_base_seconds` + `copy_seconds_per_gb` x GB;
- an export is `STARTING` for `export_start_seconds` (RDS restores the
  snapshot first), then `IN_PROGRESS` for `export_seconds_per_gb` x GB;
- a restore (from a snapshot or to a point in time) leaves the new DB instance
  or cluster `creating` for `restore_base_seconds` + `restore_seconds_per_gb` x GB
  (about 2 hours for 1 TB), then `available`, or the status a control call set
  for it (`POST /_gateway/rds/restore-fails`: `incompatible-restore`, `failed`...,
  statuses of the RDS User Guide's "Viewing Amazon RDS DB instance status");
- a DB instance added to a restored Aurora cluster (its writer: the restore
  "only restores the DB cluster, not the DB instances", RDS API Reference,
  RestoreDBClusterFromSnapshot) is `creating` for `instance_create_seconds`,
  then `available`, or the status a control call set for its identifier; the
  gateway refuses it while the cluster is not available (rules.py);
- a snapshot is incremental when the region already holds an available
  snapshot of the same database, a copy when the destination does: its per-GB
  part is `incremental_percent` % of a full one ("the first snapshot contains
  the data for the full DB instance; subsequent snapshots are incremental";
  "an incremental copy copies only the data that has changed", RDS User Guide,
  "Creating a DB snapshot" and "Copying a DB snapshot"); an export is always full;
- copies of one source database queue: "When you request multiple snapshot
  copies for the same source DB instance, they're queued internally. The
  copies requested later won't start until the previous snapshot copies are
  completed" (RDS User Guide, "Copying a DB snapshot"). A queued DB snapshot
  copy is `pending` with no progress, then `copying` (DB cluster snapshots are
  `copying` throughout: their documented statuses are available, copying and
  creating); AWS documents no list of DB snapshot statuses, so `pending` and
  `copying` there are our reading (the module treats every status but
  `available` and the failed ones as "not yet").

GB is the snapshot's allocated storage (`AllocatedStorage` of the instance, or
of the cluster where it was given). In the instant mode (`clock_scale` 0)
nothing here applies.

An export writes into its bucket: RDS "exports data to an Amazon S3 bucket"
under the task's prefix, a folder named after the export task, encrypted with
the task's KMS key (RDS User Guide, "Exporting DB snapshot data to Amazon
S3"). moto writes nothing; here a complete export (also in the instant mode)
holds one object, `<prefix>/<export task id>/export_info_<export task id>.json`,
SSE-KMS with the task's key: the export's summary, standing for the files RDS
writes, so that a bucket holding exports is not empty (a destroy stops at it).

A restored RDS for PostgreSQL, MySQL or MariaDB instance, and a DB instance added to a restored
Aurora PostgreSQL or Aurora MySQL cluster, has a real database server behind its endpoint, with
the snapshot's master user: see local_aws/databases.py.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot, ExportTask, RDSBackend, rds_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends

from . import databases
from .clock import CLOCK

DEFAULTS = {
    "snapshot_base_seconds": 120,
    "snapshot_seconds_per_gb": 3,
    "restore_base_seconds": 600,
    "restore_seconds_per_gb": 6,
    "instance_create_seconds": 420,
    "copy_base_seconds": 300,
    "copy_seconds_per_gb": 10,
    "export_start_seconds": 600,
    "export_seconds_per_gb": 20,
    "incremental_percent": 10,
}
# The gateway's current values of DEFAULTS' settings.
MODEL = dict(DEFAULTS)
EXPORT_RUNNING = ("STARTING", "IN_PROGRESS")

# RDSBackend's methods as found when `apply` wraps them (other patches may wrap them first).
_original: dict[str, Any] = {}
# What a restore to (account, region, identifier) ends in instead of `available`, once.
FAILING_RESTORES: dict[tuple[str, str, str], str] = {}
# DB instance statuses a restore can end in that mean it failed (RDS User Guide, "Viewing
# Amazon RDS DB instance status"); the control call takes one of these.
RESTORE_FAILURES = ("failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
                    "inaccessible-encryption-credentials")


@dataclass(frozen=True)
class Timeline:
    """One operation's course: queued (or an export STARTING) until `working_from`, working
    until `ends`."""

    kind: str  # snapshot, copy or export
    source_database: str
    working_from: datetime
    ends: datetime
    queued_status: str
    working_status: str

    def done(self, now: datetime) -> bool:
        return now >= self.ends

    def status(self, now: datetime) -> str | None:
        """The status while not done; None once done (the object's own status stands)."""
        if self.done(now):
            return None
        if now < self.working_from:
            return self.queued_status
        return self.working_status

    def percent(self, now: datetime) -> int:
        if self.done(now):
            return 100
        if now <= self.working_from:
            return 0
        return int(100 * (now - self.working_from) / (self.ends - self.working_from))


def _seconds(base: str, per_gb: str, gb: int, incremental: bool) -> float:
    share = MODEL["incremental_percent"] / 100 if incremental else 1
    return MODEL[base] + MODEL[per_gb] * gb * share


def _database_of(snapshot) -> str:
    return getattr(snapshot, "db_cluster_identifier", None) or snapshot.db_instance_identifier


def _snapshots(backend: RDSBackend, cluster: bool) -> list:
    return list((backend.cluster_snapshots if cluster else backend.database_snapshots).values())


def _holds_available_snapshot_of(backend: RDSBackend, database: str, cluster: bool, other_than) -> bool:
    return any(s is not other_than and _database_of(s) == database and s.status == "available"
               for s in _snapshots(backend, cluster))


def timeline(obj) -> Timeline | None:
    return getattr(obj, "_timeline", None)


def _in_flight_copies_of(database: str, cluster: bool, account: str, now: datetime) -> list[Timeline]:
    return [t for backend in rds_backends[account].values() for s in _snapshots(backend, cluster)
            if (t := timeline(s)) and t.kind == "copy" and t.source_database == database and not t.done(now)]


def _gb(snapshot) -> int:
    return int(getattr(snapshot, "allocated_storage", 0) or 0)


def _start_snapshot(backend: RDSBackend, snapshot, cluster: bool) -> None:
    now, database = CLOCK.now(), _database_of(snapshot)
    incremental = _holds_available_snapshot_of(backend, database, cluster, snapshot)
    ends = now + timedelta(seconds=_seconds("snapshot_base_seconds", "snapshot_seconds_per_gb", _gb(snapshot),
                                            incremental))
    snapshot._timeline = Timeline("snapshot", database, now, ends, "creating", "creating")


def _start_copy(backend: RDSBackend, copied, cluster: bool) -> None:
    now, database = CLOCK.now(), _database_of(copied)
    queue = _in_flight_copies_of(database, cluster, backend.account_id, now)
    starts = max([now, *(t.ends for t in queue)])
    incremental = _holds_available_snapshot_of(backend, database, cluster, copied)
    ends = starts + timedelta(seconds=_seconds("copy_base_seconds", "copy_seconds_per_gb", _gb(copied), incremental))
    queued = "copying" if cluster else "pending"
    copied._timeline = Timeline("copy", database, starts, ends, queued, "copying")


def _start_export(task: ExportTask) -> None:
    working_from = CLOCK.now() + timedelta(seconds=MODEL["export_start_seconds"])
    ends = working_from + timedelta(seconds=MODEL["export_seconds_per_gb"] * _gb(task.snapshot))
    task._timeline = Timeline("export", _database_of(task.snapshot), working_from, ends, "STARTING", "IN_PROGRESS")


def _start_restore(backend: RDSBackend, restored) -> None:
    now = CLOCK.now()
    ends = now + timedelta(seconds=MODEL["restore_base_seconds"] + MODEL["restore_seconds_per_gb"] * _gb(restored))
    identifier = _identifier(restored)
    failure = _next_failure(backend.account_id, backend.region_name, identifier)
    # The status the course ends in (the object's own, set without ending the course).
    restored.__dict__["_status"] = failure or "available"
    restored._timeline = Timeline("restore", identifier, now, ends, "creating", "creating")


def _start_instance_create(backend: RDSBackend, instance: DBInstance) -> None:
    now = CLOCK.now()
    failure = _next_failure(backend.account_id, backend.region_name, instance.db_instance_identifier)
    instance.__dict__["_status"] = failure or "available"
    ends = now + timedelta(seconds=MODEL["instance_create_seconds"])
    instance._timeline = Timeline("create", instance.db_instance_identifier, now, ends, "creating", "creating")


def _adding_writers(create):
    """CreateDBInstance: one added to a cluster a restore made takes its time and, for an Aurora
    PostgreSQL or MySQL cluster, gets a database server with the cluster's master user."""
    def create_db_instance(self: RDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
        made = create(self, db_kwargs)
        cluster = self.clusters.get(made.db_cluster_identifier or "")
        if cluster is None or not cluster.__dict__.get("_restored"):
            return made
        if made.engine in databases.ENGINES and cluster.master_username:
            _serve(made, cluster.master_username, cluster.__dict__.get("_master_user_password") or "")
        if not CLOCK.instant:
            _start_instance_create(self, made)
        return made
    return create_db_instance


def _timed(name: str, start, cluster: bool | None = None):
    def call(self: RDSBackend, *args, **kwargs):
        made = _original[name](self, *args, **kwargs)
        if not CLOCK.instant:
            if cluster is None:
                start(made)
            else:
                start(self, made, cluster)
        return made

    return call


def _restore_timed(name: str):
    def call(self: RDSBackend, *args, **kwargs):
        restored = _original[name](self, *args, **kwargs)
        # moto passes a point-in-time restore's source on as if it made a read replica of it.
        if isinstance(restored, DBInstance):
            restored.source_db_instance_identifier = None
            if restored.engine in databases.ENGINES and restored.master_username:
                # moto keeps the password, though its property will not read it back (as RDS will not).
                _serve(restored, restored.master_username, restored.__dict__.get("_master_user_password") or "")
        else:
            restored.__dict__["_restored"] = True
        if not CLOCK.instant:
            _start_restore(self, restored)
        elif failure := _next_failure(self.account_id, self.region_name, _identifier(restored)):
            restored.__dict__["_status"] = failure  # the instant mode: failed at once
        return restored
    return call


def _serve(restored: DBInstance, user: str, password: str) -> None:
    """Starts a database server of its own for the restored instance (local_aws/databases.py),
    with the snapshot's master user and password, beside the restore: its processes start while
    the restore runs on the clock, and no call waits for them."""
    started: dict[str, object] = {}

    def start() -> None:
        try:
            started["server"] = databases.SERVERS.start(restored.db_instance_identifier, restored.engine,
                                                        user, password, restored.db_name)
        except Exception:  # noqa: BLE001 - described as AWS describes it; nothing answers at its endpoint
            logging.getLogger("local_aws").exception("no database server for %s", restored.db_instance_identifier)

    thread = threading.Thread(target=start, name=f"database-{restored.db_instance_identifier}", daemon=True)
    restored.__dict__["_starting"] = (thread, started)
    thread.start()


def _started_server(instance: DBInstance):
    """The instance's server once its start has ended (waiting for it, if it has not yet)."""
    with _SERVING:
        if (starting := instance.__dict__.pop("_starting", None)) is not None:
            thread, started = starting
            thread.join(timeout=60)
            if (server := started.get("server")) is not None:
                instance.__dict__["_server"] = server
                instance.port = server.port
        return instance.__dict__.get("_server")


def _served_address(instance: DBInstance) -> str:
    """A restored instance's address once it is available: its own server's (if it has one), localhost."""
    if "_starting" in instance.__dict__ and instance.status == "available":
        _started_server(instance)
    return "localhost" if "_server" in instance.__dict__ else _moto_address.fget(instance)


def _stopping_the_server(delete):
    def delete_db_instance(self: RDSBackend, db_instance_identifier: str, *args, **kwargs):
        deleted = delete(self, db_instance_identifier, *args, **kwargs)
        if (server := _started_server(deleted)) is not None:
            databases.SERVERS.stop(server)
        return deleted
    return delete_db_instance


def _identifier(database) -> str:
    return database.db_cluster_identifier if isinstance(database, DBCluster) else database.db_instance_identifier


_moto_cluster_status = DBCluster.status
_moto_address = DBInstance.address
_SERVING = threading.Lock()


def _cluster_status(cluster: DBCluster) -> str:
    course = timeline(cluster)
    return (course.status(CLOCK.now()) if course else None) or _moto_cluster_status.fget(cluster)


def _next_failure(account: str, region: str, identifier: str) -> str | None:
    """The status a restore to `identifier` is to end in instead of `available` (once), if any."""
    for (at_account, at_region, pattern), status in list(FAILING_RESTORES.items()):
        matches = identifier.startswith(pattern[:-1]) if pattern.endswith("*") else identifier == pattern
        if (at_account, at_region) == (account, region) and matches:
            del FAILING_RESTORES[(at_account, at_region, pattern)]
            return status
    return None


def fail_next_restore(account: str, region: str, identifier: str, status: str) -> None:
    """The next restore to `identifier` (`prefix*`: to any identifier starting so, such as a
    drill's, whose name carries the time) ends in `status` (one of RESTORE_FAILURES)."""
    if status not in RESTORE_FAILURES:
        raise ValueError(f"status {status!r} is not one of {', '.join(RESTORE_FAILURES)}")
    FAILING_RESTORES[(account, region, identifier)] = status


def finish(obj) -> None:
    """Makes an operation done now (a snapshot seeded or backdated as made earlier)."""
    obj.__dict__.pop("_timeline", None)


# What the objects report, through the clock.
def _status(obj) -> str:
    course = timeline(obj)
    return (course.status(CLOCK.now()) if course else None) or obj._status


def _set_status(obj, value: str) -> None:
    # moto sets the final status as it creates the object; a later change (a cancel) ends the course.
    finish(obj)
    obj._status = value


def _export_status(task: ExportTask) -> str:
    # RDS documents upper-case export statuses (COMPLETE, CANCELED); moto keeps lower case.
    status = _status(task).upper()
    if status == "COMPLETE" and not getattr(task, "_written", False):
        task._written = True
        _write_export(task)
    return status


def _write_export(task: ExportTask) -> None:
    """The export's summary object in its bucket (see the module docstring)."""
    folder = "/".join(part for part in (task.s3_prefix.strip("/"), task.export_task_identifier) if part)
    summary = {"exportTaskIdentifier": task.export_task_identifier, "sourceArn": task.source_arn,
               "exportOnly": task.export_only, "snapshotTime": str(task.snapshot.created), "status": "COMPLETE"}
    try:
        s3_backends[task.backend.account_id]["global"].put_object(
            task.s3_bucket, f"{folder}/export_info_{task.export_task_identifier}.json", json.dumps(summary).encode(),
            encryption="aws:kms", kms_key_id=task.kms_key_id, disable_notification=True)
    except MissingBucket:
        pass  # a bucket deleted since the export started: nothing to write into


def _percent(obj) -> int:
    course = timeline(obj)
    return course.percent(CLOCK.now()) if course else 100


def _ignore(_obj, _value: Any) -> None:
    """moto sets a constant (100) that the clock decides instead."""


def _export_end(task: ExportTask) -> datetime | None:
    course = timeline(task)
    if course is None:
        return task.created_at if task._status == "complete" else None
    return course.ends.replace(tzinfo=None) if course.done(CLOCK.now()) else None


def _extracted_gb(task: ExportTask) -> int | None:
    return _gb(task.snapshot) if _export_status(task) == "COMPLETE" else None


def copies_in_progress(account: str, region: str, cluster: bool) -> int:
    now = CLOCK.now()
    return sum(1 for s in _snapshots(rds_backends[account][region], cluster)
               if (t := timeline(s)) and t.kind == "copy" and not t.done(now))


def running_exports(account: str) -> list[ExportTask]:
    """Export tasks STARTING or IN_PROGRESS in any region of the account."""
    return [task for backend in rds_backends[account].values() for task in list(backend.export_tasks.values())
            if _export_status(task) in EXPORT_RUNNING]


def apply() -> None:
    for name in ("create_db_snapshot", "copy_db_snapshot", "create_db_cluster_snapshot", "copy_db_cluster_snapshot",
                 "start_export_task"):
        _original[name] = getattr(RDSBackend, name)
    RDSBackend.create_db_snapshot = _timed("create_db_snapshot", _start_snapshot, cluster=False)
    RDSBackend.copy_db_snapshot = _timed("copy_db_snapshot", _start_copy, cluster=False)
    RDSBackend.create_db_cluster_snapshot = _timed("create_db_cluster_snapshot", _start_snapshot, cluster=True)
    RDSBackend.copy_db_cluster_snapshot = _timed("copy_db_cluster_snapshot", _start_copy, cluster=True)
    RDSBackend.start_export_task = _timed("start_export_task", _start_export)
    for snapshot_class in (DBSnapshot, DBClusterSnapshot):
        snapshot_class.status = property(_status, _set_status)
        snapshot_class.percent_progress = property(_percent, _ignore)
    for name in ("restore_db_instance_from_db_snapshot", "restore_db_instance_to_point_in_time",
                 "restore_db_cluster_from_snapshot", "restore_db_cluster_to_point_in_time"):
        _original[name] = getattr(RDSBackend, name)
        setattr(RDSBackend, name, _restore_timed(name))
    # A DB instance's status is moto's attribute, a cluster's a property of moto's (its own
    # `creating` once, then `available`): both report the restore's course while it runs.
    DBInstance.status = property(_status, _set_status)
    DBInstance.address = property(_served_address)
    RDSBackend.delete_db_instance = _stopping_the_server(RDSBackend.delete_db_instance)
    RDSBackend.create_db_instance = _adding_writers(RDSBackend.create_db_instance)
    DBCluster.status = property(_cluster_status, _set_status)
    ExportTask.status = property(_export_status, _set_status)
    ExportTask.percent_progress = property(_percent)
    ExportTask.task_start_time = property(lambda task: task.created_at)
    ExportTask.task_end_time = property(_export_end)
    ExportTask.snapshot_time = property(lambda task: task.snapshot.created)
    ExportTask.total_extracted_data_in_gb = property(_extracted_gb)
