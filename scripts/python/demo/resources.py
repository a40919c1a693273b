"""What exists in the local AWS, by kind, for the kinds of resource the module
and its example create: `terraform destroy` must bring this back to what it
was before `terraform apply`. (Snapshots and exports are backups: they outlive
the module on purpose and are not listed here.)"""

from __future__ import annotations

from local_aws.deploy import Aws

from .world import SOURCE


def take(aws: Aws, region: str = SOURCE) -> dict[str, list[str]]:
    iam = aws.client("iam", region)
    kms = aws.client("kms", region)
    logs = aws.client("logs", region)
    cloudwatch = aws.client("cloudwatch", region)
    sns = aws.client("sns", region)
    live_keys = [
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if (meta := kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"])["KeyManager"] == "CUSTOMER"
        and meta["KeyState"] not in ("PendingDeletion", "PendingReplicaDeletion")
    ]
    found = {
        "iam roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "iam policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
        "lambda functions": [f["FunctionName"] for f in aws.client("lambda", region).list_functions()["Functions"]],
        "state machines": [m["name"] for m in aws.client("stepfunctions", region).list_state_machines()["stateMachines"]],
        "s3 buckets": [b["Name"] for b in aws.client("s3", region).list_buckets()["Buckets"]],
        "kms keys": live_keys,
        "kms aliases": [a["AliasName"] for a in kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")],
        "sns topics": [t["TopicArn"] for t in sns.list_topics()["Topics"]],
        "sns subscriptions": [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]],
        "sqs queues": aws.client("sqs", region).list_queues().get("QueueUrls", []),
        "eventbridge rules": [r["Name"] for r in aws.client("events", region).list_rules()["Rules"]],
        "cloudwatch alarms": [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]],
        "cloudwatch dashboards": [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]],
        "log groups": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
    }
    return {kind: sorted(names) for kind, names in found.items()}


def left_behind(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    """What exists now and did not before."""
    extra = {kind: sorted(set(names) - set(before.get(kind, []))) for kind, names in after.items()}
    return {kind: names for kind, names in extra.items() if names}
