"""The databases of the demo and the snapshots they had before the module came:
the spec's example names (one a read replica), older snapshots carrying this
module instance's tags (some past retention), and foreign snapshots that prune
must never touch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from local_aws.control import control
from local_aws.deploy import Aws

SOURCE, DESTINATION = "us-east-1", "us-west-2"
PROJECT, ENVIRONMENT = "nestedphoenix", "production"
INSTANCE = f"{PROJECT}/{ENVIRONMENT}/{SOURCE}"  # the module's managed-by value
MANAGED_BY = "database-backup:managed-by"
SOURCE_DB = "database-backup:source-db"
EXECUTION = "database-backup:execution"
RETENTION_DAYS = 30
MIN_SNAPSHOTS_TO_KEEP = 3


@dataclass(frozen=True)
class Database:
    identifier: str
    engine: str
    replica_of: str | None = None


DATABASES = (
    Database("prod-database-1", "postgres"),
    Database("prod-database-2", "mysql"),
    Database("prod-read-replica-1", "mysql", replica_of="prod-database-2"),
)


@dataclass(frozen=True)
class OldSnapshot:
    """A snapshot made before the demo's first run."""

    db: str
    region: str
    age_days: int
    # The managed-by tag: this module instance, another one, or none at all.
    managed_by: str | None = INSTANCE
    name: str | None = None

    @property
    def ours(self) -> bool:
        return self.managed_by == INSTANCE

    def snapshot_id(self, now: datetime) -> str:
        return self.name or f"{self.db}-{(now - timedelta(days=self.age_days)):%Y%m%d}-020000"


OLD_SNAPSHOTS = (
    # Ours, in the source region: two past the 30 days of retention for prod-database-1;
    # prod-database-2 and the replica have fewer than 3, so even the expired ones stay.
    OldSnapshot("prod-database-1", SOURCE, 45),
    OldSnapshot("prod-database-1", SOURCE, 35),
    OldSnapshot("prod-database-1", SOURCE, 20),
    OldSnapshot("prod-database-1", SOURCE, 10),
    OldSnapshot("prod-database-2", SOURCE, 50),
    OldSnapshot("prod-database-2", SOURCE, 8),
    OldSnapshot("prod-read-replica-1", SOURCE, 40),
    # Ours, copies in the destination region.
    OldSnapshot("prod-database-1", DESTINATION, 60),
    OldSnapshot("prod-database-1", DESTINATION, 42),
    OldSnapshot("prod-database-1", DESTINATION, 38),
    OldSnapshot("prod-database-1", DESTINATION, 33),
    # Foreign: a DBA's manual snapshot, and one of another module instance (staging)
    # whose name looks like ours. Both are far past retention; both must survive.
    OldSnapshot("prod-database-1", SOURCE, 120, managed_by=None, name="prod-database-1-before-upgrade"),
    OldSnapshot("prod-database-2", SOURCE, 100, managed_by=f"{PROJECT}-staging"),
    OldSnapshot("prod-database-1", DESTINATION, 90, managed_by=None, name="prod-database-1-dr-drill"),
)


def seeded(aws: Aws) -> bool:
    """Whether this local AWS already has the demo's databases."""
    found = aws.client("rds", SOURCE).describe_db_instances()["DBInstances"]
    return {d.identifier for d in DATABASES} <= {i["DBInstanceIdentifier"] for i in found}


def seed(aws: Aws, now: datetime | None = None) -> list[str]:
    """Creates the databases and their old snapshots; returns what it did, line by line."""
    now = now or datetime.now(UTC)
    rds = aws.client("rds", SOURCE)
    lines = []
    for db in DATABASES:
        if db.replica_of:
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=db.identifier,
                SourceDBInstanceIdentifier=db.replica_of,
                DBInstanceClass="db.t3.micro",
            )
            lines.append(f"DB instance {db.identifier} ({db.engine}, read replica of {db.replica_of})")
        else:
            rds.create_db_instance(
                DBInstanceIdentifier=db.identifier,
                Engine=db.engine,
                DBInstanceClass="db.t3.micro",
                AllocatedStorage=20,
                MasterUsername="dbadmin",
                MasterUserPassword="correct-horse-battery-staple",
                StorageEncrypted=True,
                BackupRetentionPeriod=7,
            )
            lines.append(f"DB instance {db.identifier} ({db.engine})")
    for old in OLD_SNAPSHOTS:
        snapshot_id = old.snapshot_id(now)
        created = now - timedelta(days=old.age_days)
        tags = []
        if old.managed_by:
            tags = [
                {"Key": MANAGED_BY, "Value": old.managed_by},
                {"Key": SOURCE_DB, "Value": old.db},
                {"Key": EXECUTION, "Value": f"arn:aws:states:{SOURCE}:000000000000:execution:earlier:{created:%Y%m%d}"},
            ]
        if old.region == SOURCE:
            rds.create_db_snapshot(DBInstanceIdentifier=old.db, DBSnapshotIdentifier=snapshot_id, Tags=tags)
        else:
            # A copy: made from a source-region snapshot, which then goes away.
            staging_id = f"{snapshot_id}-staging"
            source = rds.create_db_snapshot(DBInstanceIdentifier=old.db, DBSnapshotIdentifier=staging_id)
            aws.client("rds", old.region).copy_db_snapshot(
                SourceDBSnapshotIdentifier=source["DBSnapshot"]["DBSnapshotArn"],
                TargetDBSnapshotIdentifier=snapshot_id,
                SourceRegion=SOURCE,
                Tags=tags,
            )
            rds.delete_db_snapshot(DBSnapshotIdentifier=staging_id)
        backdate(aws.endpoint, old.region, snapshot_id, created)
        owner = "ours" if old.ours else f"foreign ({old.managed_by or 'no managed-by tag'})"
        lines.append(f"snapshot {snapshot_id} in {old.region}, {old.age_days} days old, {owner}")
    return lines


def backdate(endpoint: str, region: str, snapshot_id: str, created: datetime) -> None:
    """Sets a snapshot's creation time (the local AWS's control API)."""
    control(endpoint, "POST", "rds/snapshot-created",
            {"region": region, "snapshot_id": snapshot_id, "created": created.isoformat()})
