"""The product spec's cleanup ("Cleanup Process"): describe the manual snapshots, delete every one
older than the retention. Only a paginator is added (the spec's single call sees the first 100).
It keeps no newest snapshots and does not look at tags: it deletes other tools' snapshots too."""

import os
from datetime import datetime, timedelta, timezone

import boto3

rds_client = boto3.client("rds")


def handler(event, _context):
    cutoff_date = datetime.now(timezone.utc) - timedelta(days=int(os.environ["RETENTION_DAYS"]))
    deleted = []
    for page in rds_client.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual",
                                                                           IncludeShared=False):
        for snapshot in page["DBSnapshots"]:
            if snapshot["SnapshotCreateTime"] < cutoff_date:
                rds_client.delete_db_snapshot(DBSnapshotIdentifier=snapshot["DBSnapshotIdentifier"])
                deleted.append(snapshot["DBSnapshotIdentifier"])
    return {"deleted_count": len(deleted), "deleted": deleted}
