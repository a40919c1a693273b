"""Baseline of functions/snapshot: the database, the quota, then CreateDBSnapshot with tags."""

import boto3
import common

rds = boto3.client("rds")


def handler(event, _context):
    db = event["db_identifier"]
    execution = event["execution"]
    instance = rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]
    if instance["DBInstanceStatus"] not in ("available", "backing-up", "storage-optimization"):
        raise RuntimeError(f"{db} is {instance['DBInstanceStatus']}")
    common.room_for_snapshot(rds, "ManualSnapshots")
    snapshot_id = common.snapshot_id(db, execution["execution_start_time"])
    snapshot = rds.create_db_snapshot(
        DBInstanceIdentifier=db,
        DBSnapshotIdentifier=snapshot_id,
        Tags=common.snapshot_tags(db, execution["execution_id"]),
    )["DBSnapshot"]
    return {
        "db_identifier": db,
        "kind": "instance",
        "snapshot_id": snapshot_id,
        "snapshot_arn": snapshot["DBSnapshotArn"],
        "region": rds.meta.region_name,
        "engine": instance["Engine"],
        "encrypted": instance.get("StorageEncrypted", False),
        "status": snapshot["Status"],
        "created": True,
    }
