"""Baseline of functions/copy: the destination region's quota, then CopyDBSnapshot with tags and the key."""

import os

import boto3
import common

destination = boto3.client("rds", region_name=os.environ["COPY_DESTINATION_REGION"])


def handler(event, _context):
    source, execution = event["snapshot"], event["execution"]
    common.room_for_snapshot(destination, "ManualSnapshots")
    tags = common.snapshot_tags(source["db_identifier"], execution["execution_id"])
    tags.append({"Key": common.COPIED_FROM, "Value": source["snapshot_arn"]})
    copy = destination.copy_db_snapshot(
        SourceDBSnapshotIdentifier=source["snapshot_arn"],
        TargetDBSnapshotIdentifier=source["snapshot_id"],
        KmsKeyId=os.environ["COPY_KMS_KEY_ARN"],
        Tags=tags,
    )["DBSnapshot"]
    return {**source, "snapshot_arn": copy["DBSnapshotArn"], "region": destination.meta.region_name,
            "status": copy["Status"], "created": True}
