"""Least privilege, checked: the AWS actions each function's code can call,
against the IAM policy Terraform gave that function's role.

The actions come from the built function itself. The SDK names every
operation it links in (`aws_sdk_rds::operation::create_db_snapshot::
CreateDBSnapshotError`), and the release build's link-time optimisation drops
every operation the code cannot reach, so the names left in `bootstrap` are
what the function can call, including through the shared `core` crate.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

OPERATION = re.compile(rb"aws_sdk_([a-z0-9]+)::operation::[a-z0-9_]+::([A-Z][A-Za-z0-9]*?)Error")
# SDK crate -> IAM service prefix.
IAM_PREFIX = {"rds": "rds", "sns": "sns", "cloudwatch": "cloudwatch", "sfn": "states", "kms": "kms",
              "secretsmanager": "secretsmanager", "s3": "s3", "sqs": "sqs",
              "scheduler": "scheduler", "sts": "sts"}
# Operations the SDK links in but never calls for the module: the S3 client opens S3 Express
# sessions (CreateSession) only for directory buckets, whose names end in --x-s3; the export
# function turns that off and refuses such names (functions/export/src/buckets.rs).
NEVER_CALLED = {"s3:CreateSession"}
# Operations whose IAM action has another name (S3 API reference, ListObjectVersions: "you must
# have permission to perform the s3:ListBucketVersions action. Be aware of the name difference";
# ListObjectsV2: "you must have permission to perform the s3:ListBucket action").
IAM_ACTION = {"s3:ListObjectVersions": "s3:ListBucketVersions", "s3:ListObjectsV2": "s3:ListBucket",
              "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility"}

# What AWS authorises besides the call itself (the Service Authorization Reference's
# dependent actions, and the keys RDS and SNS use on the caller's behalf).
DEPENDENT = {
    "rds:CreateDBSnapshot": {"rds:AddTagsToResource"},  # the snapshot is created with tags
    "rds:CreateDBClusterSnapshot": {"rds:AddTagsToResource"},
    "rds:CopyDBSnapshot": {"rds:AddTagsToResource", "kms:DescribeKey", "kms:CreateGrant"},  # tags; re-encrypts
    "rds:CopyDBClusterSnapshot": {"rds:AddTagsToResource", "kms:DescribeKey", "kms:CreateGrant"},
    "rds:StartExportTask": {"iam:PassRole", "kms:DescribeKey", "kms:CreateGrant"},  # passes the export role; the key
    "sns:Publish": {"kms:Decrypt", "kms:GenerateDataKey*"},  # the module's topic is encrypted with its key
    "secretsmanager:GetSecretValue": {"kms:Decrypt"},  # the Slack webhook's secret is under the module's key
    "scheduler:CreateSchedule": {"iam:PassRole"},  # passes the role the Scheduler invokes the target with
    # A drill's restore: the new database is created with tags, from a snapshot under its key.
    "rds:RestoreDBInstanceFromDBSnapshot": {"rds:AddTagsToResource", "kms:DescribeKey", "kms:CreateGrant"},
    "rds:RestoreDBClusterFromSnapshot": {"rds:AddTagsToResource", "kms:DescribeKey", "kms:CreateGrant"},
    # An Aurora drill's writer is created with tags (the cluster's).
    "rds:CreateDBInstance": {"rds:AddTagsToResource"},
}
# What the Lambda service does for every function: its logs, X-Ray traces, its encrypted environment.
PLATFORM = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "kms:Decrypt"}
# And for a function in a VPC: its network interfaces (AWSLambdaVPCAccessExecutionRole's actions,
# which EC2 does not scope to resources: "*").
VPC_ACCESS = {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
              "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}

# Actions whose Service Authorization Reference entry lists no resource type: only
# `Resource: "*"` can grant them. Every other action must name its resources.
NO_RESOURCE_TYPES = {
    "rds:DescribeAccountAttributes",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat name their task by a token; IAM can scope
# them only to an activity, which a service integration's task (a wait, an export slot's waiter) is not.
NAMED_BY_TOKEN = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
# Calls a function makes only under a setting: select lists the region's databases only when
# the module selects by tag or pattern (selection_tags, db_identifier_patterns), and its role
# grants the listing only then.
CALLED_ONLY_WHEN_SELECTING = {"select": {"rds:DescribeDBInstances", "rds:DescribeDBClusters"}}
# Notify modifies databases (their automated backups' retention and window) only under
# manage_automated_backups, and its role grants it only then.
CALLED_ONLY_WHEN_MANAGING_AUTOMATED_BACKUPS = {"notify": {"rds:ModifyDBInstance", "rds:ModifyDBCluster"}}
# Notify reads the Slack webhook's secret only with slack_webhook_url set.
CALLED_ONLY_WITH_SLACK = {"notify": {"secretsmanager:GetSecretValue"}}
# The drill function assumes the vault's drill role only when the vault has one
# (vault.drill_role_arn), and its role grants sts:AssumeRole on it only then.
CALLED_ONLY_WITH_VAULT_DRILLS = {"drill": {"sts:AssumeRole"}}
# Calls a function makes only with another role's keys: the vault function reads the vault's
# snapshot quota as the vault role (modules/vault grants it there); its copies, descriptions and
# kms:DescribeKey it makes as both. VAULT_ROLE_CALLS is what the vault role is checked against.
CALLED_AS_ANOTHER_ROLE = {"vault": {"rds:DescribeAccountAttributes"}}
VAULT_ROLE_CALLS = {"rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:DescribeDBSnapshots",
                    "rds:DescribeDBClusterSnapshots", "rds:DescribeAccountAttributes", "kms:DescribeKey"}
# Actions whose resource types are all optional (none marked required in the Service
# Authorization Reference) and that the code calls without naming a resource: IAM matches
# such a call against "*", so a grant on named resources does not allow it. Granted on "*",
# each must be held to its regions by `aws:RequestedRegion`.
CALLED_WITHOUT_RESOURCE = {"rds:DescribeExportTasks"}
# The drill plans its restores with the operator's planner (backup_core::restore), always from a
# backup (Origin::NewestBackup): the planner's point-in-time branch is linked in, never taken.
NEVER_TAKEN = {"drill": {"rds:RestoreDBInstanceToPointInTime", "rds:RestoreDBClusterToPointInTime",
                         "rds:DescribeDBInstanceAutomatedBackups"}}


def policy_document(value: str | dict) -> dict:
    """An IAM policy document as IAM answers it: URL-encoded JSON (or already parsed)."""
    return json.loads(unquote(value)) if isinstance(value, str) else value


def role_documents(iam, role: str) -> list[dict]:
    """The inline policy documents of a role, by its name, as `iam` (a boto3 client) reads them."""
    return [policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]


def operations_in(zip_path: Path) -> set[str]:
    """The AWS actions (`rds:CreateDBSnapshot`) a function's `bootstrap` can call."""
    with zipfile.ZipFile(zip_path) as archive:
        binary = archive.read("bootstrap")
    found = set()
    for crate, operation in OPERATION.findall(binary):
        crate = crate.decode()
        if crate not in IAM_PREFIX:
            raise ValueError(f"{zip_path}: SDK crate aws-sdk-{crate} has no IAM prefix in IAM_PREFIX")
        action = f"{IAM_PREFIX[crate]}:{operation.decode()}"
        if action not in NEVER_CALLED:
            found.add(IAM_ACTION.get(action, action))
    return found


def required(called: set[str], in_vpc: bool = False) -> set[str]:
    """The calls, what AWS authorises with them, and the platform's actions."""
    needed = set(called) | PLATFORM | (VPC_ACCESS if in_vpc else set())
    for action in called:
        needed |= DEPENDENT.get(action, set())
    return needed


@dataclass
class Statement:
    actions: set[str]
    resources: list[str]
    condition: dict

    def allows(self, action: str) -> bool:
        """Whether the statement allows a call of the action as the code makes it."""
        return action in self.actions and (action not in CALLED_WITHOUT_RESOURCE or "*" in self.resources)

    def region_scoped(self) -> bool:
        return any("aws:RequestedRegion" in keys for keys in self.condition.values())


def statements(document: dict) -> list[Statement]:
    """The Allow statements of a policy document."""
    found = []
    for statement in document["Statement"]:
        if statement.get("Effect") != "Allow":
            continue
        actions, resources = statement["Action"], statement.get("Resource", [])
        found.append(Statement(
            set([actions] if isinstance(actions, str) else actions),
            [resources] if isinstance(resources, str) else list(resources),
            statement.get("Condition", {}),
        ))
    return found


@dataclass
class RoleCheck:
    function: str
    called: set[str]
    granted: set[str]
    missing: set[str]
    extra: set[str]
    star_without_need: set[str]
    star_in_every_region: set[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.star_without_need or self.star_in_every_region)

    def line(self) -> str:
        return (f"{self.function:<20} calls {len(self.called):>2}, grants {len(self.granted):>2}: "
                f"missing {sorted(self.missing) or 'none'}, extra {sorted(self.extra) or 'none'}, "
                f"'*' where resources could be named {sorted(self.star_without_need) or 'none'}, "
                f"'*' in every region {sorted(self.star_in_every_region) or 'none'}")


def check_role(function: str, zip_path: Path, documents: list[dict], selects: bool = False,
               in_vpc: bool = False, manages_automated_backups: bool = False, slack: bool = True,
               vault_drills: bool = False) -> RoleCheck:
    """`selects`: whether the module instance selects databases by tag or pattern; `in_vpc`:
    whether its functions run in a VPC; `manages_automated_backups`: whether it sets them;
    `slack`: whether it has a Slack webhook; `vault_drills`: whether its drills reach the vault."""
    called = operations_in(zip_path) - CALLED_AS_ANOTHER_ROLE.get(function, set()) - NEVER_TAKEN.get(function, set())
    if not selects:
        called -= CALLED_ONLY_WHEN_SELECTING.get(function, set())
    if not manages_automated_backups:
        called -= CALLED_ONLY_WHEN_MANAGING_AUTOMATED_BACKUPS.get(function, set())
    if not slack:
        called -= CALLED_ONLY_WITH_SLACK.get(function, set())
    if not vault_drills:
        called -= CALLED_ONLY_WITH_VAULT_DRILLS.get(function, set())
    granted_statements = [s for d in documents for s in statements(d)]
    granted = {a for s in granted_statements for a in s.actions}
    allowed = {a for s in granted_statements for a in s.actions if s.allows(a)}
    needed = required(called, in_vpc)
    on_star = [s for s in granted_statements if "*" in s.resources]
    star = ({a for s in on_star for a in s.actions} - NO_RESOURCE_TYPES - NAMED_BY_TOKEN - CALLED_WITHOUT_RESOURCE
            - VPC_ACCESS)
    unscoped = {a for s in on_star if not s.region_scoped() for a in s.actions & CALLED_WITHOUT_RESOURCE}
    return RoleCheck(function, called, granted, needed - allowed, granted - needed, star, unscoped)


# The state machines' role: what their Task states call, read from the definitions.
# Step Functions calls a service integration's API on the role's behalf.
OPTIMISED_INTEGRATION = {
    "arn:aws:states:::sqs:sendMessage.waitForTaskToken": {"sqs:SendMessage"},
    "arn:aws:states:::lambda:invoke.waitForTaskToken": {"lambda:InvokeFunction"},
    # A child execution followed to its end (.sync): "Step Functions ... uses the
    # StepFunctionsGetEventsForStepFunctionsExecutionRule" (Developer Guide, "IAM policies for
    # Step Functions": startExecution.sync), and stops the child when the parent stops.
    "arn:aws:states:::states:startExecution.sync:2": {
        "states:StartExecution", "states:DescribeExecution", "states:StopExecution",
        "events:PutTargets", "events:PutRule", "events:DescribeRule"},
}
# What Step Functions does for every state machine the module creates: log delivery to the
# execution log group (AWS documents these on "*"), and X-Ray when tracing is on.
LOG_DELIVERY = {
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"}
STATE_MACHINE_PLATFORM = LOG_DELIVERY | XRAY


def task_resources(states: dict) -> set[str]:
    """The `Resource` of every Task state, in parallel branches and map iterators too."""
    found = set()
    for state in states.values():
        if state.get("Type") == "Task":
            found.add(state["Resource"])
        for branch in state.get("Branches", []) + [state.get("ItemProcessor") or state.get("Iterator") or {}]:
            found |= task_resources(branch.get("States", {}))
    return found


def state_machine_calls(definitions: list[dict]) -> set[str]:
    called = set()
    for resource in {r for d in definitions for r in task_resources(d["States"])}:
        if resource.startswith("arn:aws:lambda:"):
            called.add("lambda:InvokeFunction")
        else:
            called |= OPTIMISED_INTEGRATION[resource]
    return called


def check_state_machine_role(definitions: list[dict], documents: list[dict], tracing: bool) -> RoleCheck:
    """The role's grants against what the definitions call (and what Step Functions does for
    them, X-Ray when `tracing`): nothing missing, nothing extra, "*" only where IAM names no
    resource."""
    called = state_machine_calls(definitions)
    granted_statements = [s for d in documents for s in statements(d)]
    granted = {a for s in granted_statements for a in s.actions}
    needed = called | LOG_DELIVERY | (XRAY if tracing else set())
    star = {a for s in granted_statements if "*" in s.resources for a in s.actions} - STATE_MACHINE_PLATFORM
    return RoleCheck("state machines", called, granted, needed - granted, granted - needed, star, set())
