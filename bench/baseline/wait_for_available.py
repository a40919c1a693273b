"""Baseline of functions/wait-for-available: one DescribeDBSnapshots in the snapshot's region."""

import os

import boto3

clients = {}


def handler(event, _context):
    region = event.get("region") or os.environ["AWS_REGION"]
    if region not in clients:
        clients[region] = boto3.client("rds", region_name=region)
    snapshot = clients[region].describe_db_snapshots(DBSnapshotIdentifier=event["snapshot_id"])["DBSnapshots"][0]
    return {
        "resource": event["resource"],
        "id": event["snapshot_id"],
        "region": region,
        "ready": snapshot["Status"] == "available",
        "status": snapshot["Status"],
    }
