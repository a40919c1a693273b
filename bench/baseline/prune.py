"""Baseline of functions/prune, the same rule and the same calls: list both regions (instance and
cluster snapshots), the running exports, then delete what the rule allows."""

import os
from collections import defaultdict
from datetime import timedelta

import boto3
import common

REGIONS = [os.environ["AWS_REGION"]] + ([os.environ["COPY_DESTINATION_REGION"]]
                                        if os.environ.get("COPY_DESTINATION_REGION") else [])
clients = {region: boto3.client("rds", region_name=region) for region in REGIONS}


def list_all(rds, operation, key):
    found = []
    for page in rds.get_paginator(operation).paginate(SnapshotType="manual", MaxRecords=100):
        found += page[key]
    return found


def handler(event, _context):
    retention = int(event.get("retention_days") or os.environ["RETENTION_DAYS"])
    keep = int(event.get("min_snapshots_to_keep") or os.environ["MIN_SNAPSHOTS_TO_KEEP"])
    cutoff = common.parse_time(event["execution"]["execution_start_time"]) - timedelta(days=retention)
    listings, in_flight = {}, set()
    for region, rds in clients.items():
        listings[region] = list_all(rds, "describe_db_snapshots", "DBSnapshots") + list_all(
            rds, "describe_db_cluster_snapshots", "DBClusterSnapshots")
        pages = rds.get_paginator("describe_export_tasks").paginate(
            Filters=[{"Name": "status", "Values": ["STARTING", "IN_PROGRESS"]}], MaxRecords=100)
        in_flight |= {t["SourceArn"] for page in pages for t in page["ExportTasks"]
                      if t["Status"].upper() in ("STARTING", "IN_PROGRESS")}
    deleted = []
    for region, snapshots in listings.items():
        by_db = defaultdict(list)
        for s in snapshots:
            tags = common.tags_of(s)
            if tags.get(common.MANAGED_BY) == common.INSTANCE and "DBSnapshotIdentifier" in s:
                by_db[tags.get(common.SOURCE_DB)].append(s)
        for candidates in by_db.values():
            candidates.sort(key=lambda s: s["SnapshotCreateTime"], reverse=True)
            for s in candidates[keep:]:
                if (s["Status"] == "available" and s["SnapshotCreateTime"] < cutoff
                        and s["DBSnapshotArn"] not in in_flight):
                    clients[region].delete_db_snapshot(DBSnapshotIdentifier=s["DBSnapshotIdentifier"])
                    deleted.append(s["DBSnapshotIdentifier"])
    return {"deleted_count": len(deleted), "deleted": deleted[:100]}
