"""Baseline of functions/export: the running exports, then StartExportTask."""

import os

import boto3

rds = boto3.client("rds")
MAX_RUNNING_EXPORTS = 5


def handler(event, _context):
    snapshot, execution = event["snapshot"], event["execution"]
    task_id = snapshot["snapshot_id"][:60]
    running = 0
    pages = rds.get_paginator("describe_export_tasks").paginate(
        Filters=[{"Name": "status", "Values": ["STARTING", "IN_PROGRESS"]}], MaxRecords=100
    )
    for page in pages:
        running += sum(1 for t in page["ExportTasks"] if t["Status"].upper() in ("STARTING", "IN_PROGRESS"))
    if running >= MAX_RUNNING_EXPORTS:
        raise RuntimeError(f"{running} exports running")
    prefix = "/".join([os.environ["PROJECT_NAME"], os.environ["ENVIRONMENT"], snapshot["db_identifier"],
                       execution["execution_start_time"][:10]])
    task = rds.start_export_task(
        ExportTaskIdentifier=task_id,
        SourceArn=snapshot["snapshot_arn"],
        S3BucketName=os.environ["EXPORT_BUCKET"],
        S3Prefix=prefix,
        IamRoleArn=os.environ["EXPORT_ROLE_ARN"],
        KmsKeyId=os.environ["EXPORT_KMS_KEY_ARN"],
    )
    return {"skipped": False, "export_task_id": task_id, "s3_bucket": os.environ["EXPORT_BUCKET"],
            "s3_prefix": prefix, "status": task["Status"].lower(), "created": True}
