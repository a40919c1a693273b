"""Restores a database from its newest good backup made by database-backup.

"Good": a manual snapshot that carries the module's managed-by tag and the
database's source-db tag, with status `available`. It is looked for in one
region: the database's own, or the copy region for a disaster recovery. The
restore makes a NEW instance (or cluster) and never touches the original.
With --dry-run it prints what it would do and changes nothing.

AWS access is boto3's usual: credentials, AWS_PROFILE, AWS_REGION, and
AWS_ENDPOINT_URL (the local AWS: scripts/local-aws).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MANAGED_BY = "database-backup:managed-by"
SOURCE_DB = "database-backup:source-db"
RESTORED_FROM = "database-backup:restored-from"
IDENTIFIER = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$")


class RestoreError(Exception):
    """A reason not to restore, naming the argument or resource."""


def rds_identifier(name: str, value: str) -> str:
    if not IDENTIFIER.match(value):
        raise RestoreError(
            f"{name} {value!r} is not an RDS identifier: 1-63 letters, digits and hyphens, starting with a letter, "
            "no two hyphens in a row, not ending with a hyphen"
        )
    return value.lower()


def tags_of(snapshot: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}


def newest_backup(rds, db: str, managed_by: str | None, snapshot_id: str | None) -> tuple[str, dict]:
    """('instance' | 'cluster', the snapshot) to restore from."""
    candidates = []
    for kind, operation, key in (
        ("instance", "describe_db_snapshots", "DBSnapshots"),
        ("cluster", "describe_db_cluster_snapshots", "DBClusterSnapshots"),
    ):
        for page in rds.get_paginator(operation).paginate(SnapshotType="manual"):
            for snapshot in page[key]:
                tags = tags_of(snapshot)
                identifier = snapshot.get("DBSnapshotIdentifier") or snapshot.get("DBClusterSnapshotIdentifier")
                if snapshot_id is not None:
                    if identifier == snapshot_id:
                        candidates.append((kind, snapshot))
                    continue
                if tags.get(SOURCE_DB) != db or MANAGED_BY not in tags:
                    continue
                if managed_by is not None and tags[MANAGED_BY] != managed_by:
                    continue
                candidates.append((kind, snapshot))
    if snapshot_id is not None and not candidates:
        raise RestoreError(f"--snapshot-id {snapshot_id}: no manual snapshot with this identifier in {rds.meta.region_name}")
    instances = {tags_of(s)[MANAGED_BY] for _, s in candidates if MANAGED_BY in tags_of(s)}
    if snapshot_id is None and len(instances) > 1:
        raise RestoreError(
            f"snapshots of {db} from several module instances ({', '.join(sorted(instances))}): choose one with --managed-by"
        )
    good = [(kind, s) for kind, s in candidates if s["Status"] == "available"]
    if not good:
        found = ", ".join(f"{_identifier(s)} ({s['Status']})" for _, s in candidates) or "none"
        raise RestoreError(f"no available backup of {db} in {rds.meta.region_name} (snapshots found: {found})")
    return max(good, key=lambda pair: _created(pair[1]))


def _identifier(snapshot: dict) -> str:
    return snapshot.get("DBSnapshotIdentifier") or snapshot["DBClusterSnapshotIdentifier"]


def _created(snapshot: dict) -> datetime:
    created = snapshot["SnapshotCreateTime"]
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def exists(rds, kind: str, identifier: str) -> bool:
    try:
        if kind == "instance":
            rds.describe_db_instances(DBInstanceIdentifier=identifier)
        else:
            rds.describe_db_clusters(DBClusterIdentifier=identifier)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"):
            return False
        raise
    return True


def source_settings(rds, kind: str, db: str) -> dict:
    """The original database's settings that the restore keeps, when it is in this region."""
    try:
        if kind == "instance":
            original = rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]
            settings = {
                "DBInstanceClass": original.get("DBInstanceClass"),
                "DBSubnetGroupName": (original.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
                "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in original.get("VpcSecurityGroups", [])],
                "MultiAZ": original.get("MultiAZ"),
                "Port": (original.get("Endpoint") or {}).get("Port"),
            }
        else:
            original = rds.describe_db_clusters(DBClusterIdentifier=db)["DBClusters"][0]
            settings = {
                "DBSubnetGroupName": original.get("DBSubnetGroup"),
                "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in original.get("VpcSecurityGroups", [])],
                "Port": original.get("Port"),
            }
    except ClientError as err:
        if "NotFound" in err.response["Error"]["Code"]:
            return {}
        raise
    return {k: v for k, v in settings.items() if v not in (None, [], "")}


def restore_request(args, kind: str, snapshot: dict, rds) -> tuple[str, dict]:
    """The RDS operation and its parameters."""
    settings = source_settings(rds, kind, args.db)
    if args.instance_class:
        settings["DBInstanceClass"] = args.instance_class
    if args.subnet_group:
        settings["DBSubnetGroupName"] = args.subnet_group
    if args.security_group_ids:
        settings["VpcSecurityGroupIds"] = args.security_group_ids
    tags = [{"Key": RESTORED_FROM, "Value": snapshot.get("DBSnapshotArn") or snapshot["DBClusterSnapshotArn"]}]
    if kind == "instance":
        if "DBInstanceClass" not in settings:
            raise RestoreError(
                f"{args.db} is not in {rds.meta.region_name} to copy its instance class from: give --instance-class"
            )
        return "restore_db_instance_from_db_snapshot", {
            "DBInstanceIdentifier": args.new_id,
            "DBSnapshotIdentifier": snapshot["DBSnapshotIdentifier"],
            "PubliclyAccessible": False,
            "CopyTagsToSnapshot": True,
            "Tags": tags,
            **settings,
        }
    settings.pop("DBInstanceClass", None)
    settings.pop("MultiAZ", None)
    return "restore_db_cluster_from_snapshot", {
        "DBClusterIdentifier": args.new_id,
        "SnapshotIdentifier": snapshot["DBClusterSnapshotIdentifier"],
        "Engine": snapshot["Engine"],
        "CopyTagsToSnapshot": True,
        "Tags": tags,
        **settings,
    }


def wait_available(rds, kind: str, identifier: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        if kind == "instance":
            status = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]
        else:
            status = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]
        if status == "available" or time.monotonic() > deadline:
            return status
        time.sleep(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the database the backups are of (instance or cluster identifier)")
    parser.add_argument("--new-id", required=True, help="identifier of the new instance (or cluster)")
    parser.add_argument("--region", help="where to look for the backup and restore: the source region (default: "
                        "AWS_REGION) or the copy region")
    parser.add_argument("--managed-by", help="the module instance (<project>-<environment>) whose backups to use")
    parser.add_argument("--snapshot-id", help="restore from this snapshot instead of the newest backup")
    parser.add_argument("--instance-class", help="DB instance class (default: the original's, when in this region)")
    parser.add_argument("--subnet-group", help="DB subnet group (default: the original's, when in this region)")
    parser.add_argument("--security-group-ids", nargs="+", help="VPC security groups (default: the original's)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; change nothing")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help="wait up to this long for the new database to be available")
    args = parser.parse_args(argv)
    try:
        args.db = rds_identifier("--db", args.db)
        args.new_id = rds_identifier("--new-id", args.new_id)
        if args.new_id == args.db:
            raise RestoreError("--new-id must differ from --db: a restore makes a new database beside the original")
        rds = boto3.client("rds", region_name=args.region) if args.region else boto3.client("rds")
        region = rds.meta.region_name
        kind, snapshot = newest_backup(rds, args.db, args.managed_by, args.snapshot_id)
        if exists(rds, kind, args.new_id):
            raise RestoreError(f"--new-id {args.new_id}: a DB {kind} with this identifier already exists in {region}")
        operation, request = restore_request(args, kind, snapshot, rds)
    except RestoreError as err:
        print(f"restore: {err}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as err:
        print(f"restore: AWS refused a lookup: {err}", file=sys.stderr)
        return 1
    age_days = (datetime.now(UTC) - _created(snapshot)).total_seconds() / 86400
    print(f"backup:  {_identifier(snapshot)} ({kind} snapshot of {args.db}) in {region}, "
          f"created {_created(snapshot):%Y-%m-%d %H:%M} UTC ({age_days:.1f} days ago), "
          f"managed by {tags_of(snapshot).get(MANAGED_BY, '-')}")
    print(f"restore: rds.{operation}({json.dumps(request, default=str)})")
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    try:
        getattr(rds, operation)(**request)
        print(f"restoring {args.new_id} in {region}")
        if kind == "cluster":
            print(f"a restored cluster has no instances yet; add a writer with: aws rds create-db-instance "
                  f"--db-cluster-identifier {args.new_id} --db-instance-identifier {args.new_id}-1 "
                  f"--engine {request['Engine']} --db-instance-class <class>")
        if args.wait:
            status = wait_available(rds, kind, args.new_id, args.wait)
            print(f"{args.new_id} is {status}")
            return 0 if status == "available" else 1
    except (ClientError, BotoCoreError) as err:
        print(f"restore: {operation} failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
