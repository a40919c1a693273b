"""Baseline of functions/notify: each database's result from its execution of the database state
machine, snapshot ages (one paginated listing), the metrics, SNS, Slack."""

import json
import os
import urllib.request
from datetime import datetime, timezone

import boto3
import common

rds = boto3.client("rds")
cloudwatch = boto3.client("cloudwatch")
sns = boto3.client("sns")
sfn = boto3.client("stepfunctions")


def database_result(run: dict) -> dict:
    executions = os.environ["DATABASE_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:", 1)
    described = sfn.describe_execution(executionArn=f"{executions}:{run['execution_name']}")
    if described["status"] == "SUCCEEDED":
        return json.loads(described["output"])
    return {**run, "error": {"Error": described.get("error", described["status"]), "Cause": described.get("cause", "")}}


def handler(event, _context):
    now = datetime.now(timezone.utc)
    results = [database_result(run) for run in event.get("results", [])]
    failed = [r["db_identifier"] for r in results
              if any(k in r for k in ("error", "export_error", "copy_error"))]
    newest = {}
    for page in rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual", MaxRecords=100):
        for s in page["DBSnapshots"]:
            tags = common.tags_of(s)
            if s["Status"] == "available" and tags.get(common.MANAGED_BY) == common.INSTANCE:
                db = tags.get(common.SOURCE_DB)
                newest[db] = max(newest.get(db, s["SnapshotCreateTime"]), s["SnapshotCreateTime"])
    data = [{"MetricName": "BackupSuccess", "Value": len(results) - len(failed), "Unit": "Count"},
            {"MetricName": "BackupFailure", "Value": len(failed), "Unit": "Count"}]
    for r in results:
        dims = [{"Name": "DatabaseIdentifier", "Value": r["db_identifier"]}]
        ok = r["db_identifier"] not in failed
        data += [{"MetricName": "BackupSuccess", "Value": int(ok), "Unit": "Count", "Dimensions": dims},
                 {"MetricName": "BackupFailure", "Value": int(not ok), "Unit": "Count", "Dimensions": dims}]
        if r["db_identifier"] in newest:
            hours = (now - newest[r["db_identifier"]]).total_seconds() / 3600
            data.append({"MetricName": "SnapshotAge", "Value": hours, "Unit": "None", "Dimensions": dims})
    cloudwatch.put_metric_data(Namespace=f"{common.PROJECT}/{common.ENVIRONMENT}/DatabaseBackup",
                               MetricData=[{**d, "Timestamp": now} for d in data])
    status = "FAILED" if failed else "SUCCEEDED"
    subject = f"[{status}] {common.INSTANCE}: {len(results) - len(failed)} of {len(results)} databases backed up"
    lines = [f"{r['db_identifier']}: {'failed' if r['db_identifier'] in failed else 'ok'}" for r in results]
    message_id = sns.publish(TopicArn=os.environ["SNS_TOPIC_ARN"], Subject=subject[:100],
                             Message="\n".join([subject, *lines]))["MessageId"]
    request = urllib.request.Request(os.environ["SLACK_WEBHOOK_URL"], method="POST",
                                     data=json.dumps({"text": subject}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return {"status": status, "run_failed": bool(failed), "subject": subject, "sns_message_id": message_id,
            "metrics_put": len(data)}
