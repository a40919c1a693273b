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
RETENTION_TIERS = "database-backup:retention-tiers"
RETENTION_DAYS = 30
MIN_SNAPSHOTS_TO_KEEP = 3


# How a database is encrypted: with its account's AWS managed key (what RDS uses when given
# none), with a customer managed key of the DBA team, or not at all. The vault copies each
# into the vault account under the vault's key.
AWS_MANAGED_KEY = "aws/rds"
CUSTOMER_KEY = "customer managed key"
UNENCRYPTED = "unencrypted"
DBA_KEY_ALIAS = "alias/dba-team"


@dataclass(frozen=True)
class Database:
    identifier: str
    engine: str
    replica_of: str | None = None
    # A read replica is encrypted as its source is.
    encryption: str = AWS_MANAGED_KEY


DATABASES = (
    Database("prod-database-1", "postgres"),
    Database("prod-database-2", "mysql", encryption=CUSTOMER_KEY),
    Database("prod-read-replica-1", "mysql", replica_of="prod-database-2", encryption=CUSTOMER_KEY),
    Database("prod-database-3", "postgres", encryption=UNENCRYPTED),
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
    dba_key = None
    for db in DATABASES:
        if db.replica_of:
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=db.identifier,
                SourceDBInstanceIdentifier=db.replica_of,
                DBInstanceClass="db.t3.micro",
            )
            lines.append(f"DB instance {db.identifier} ({db.engine}, read replica of {db.replica_of}, {db.encryption})")
        else:
            if db.encryption == CUSTOMER_KEY and dba_key is None:
                kms = aws.client("kms", SOURCE)
                dba_key = kms.create_key(Description="the DBA team's key for its databases")["KeyMetadata"]["Arn"]
                kms.create_alias(AliasName=DBA_KEY_ALIAS, TargetKeyId=dba_key)
            encryption = {"StorageEncrypted": db.encryption != UNENCRYPTED}
            if db.encryption == CUSTOMER_KEY:
                encryption["KmsKeyId"] = dba_key
            rds.create_db_instance(
                DBInstanceIdentifier=db.identifier,
                Engine=db.engine,
                DBInstanceClass="db.t3.micro",
                AllocatedStorage=20,
                MasterUsername="dbadmin",
                MasterUserPassword="correct-horse-battery-staple",
                BackupRetentionPeriod=7,
                **encryption,
            )
            lines.append(f"DB instance {db.identifier} ({db.engine}, {db.encryption})")
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
