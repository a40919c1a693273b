"""What AWS refuses and moto accepts, where the module meets it. Each rule is
one refusal AWS documents, answered by the gateway before moto sees the call,
in the shape the caller's protocol expects. Every rule is on by default; a
setting of its name (`PUT /_gateway/settings {"<name>": 0}`) turns it off, to
show what the code would meet without it. docs/local-aws.md lists them
(`scripts/docs-tables.py` writes the table from here)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from collections.abc import Callable
from dataclasses import dataclass

from moto.awslambda.utils import get_backend as lambda_backend
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition
from moto.rds.models import rds_backends

from . import accounts, moto_patches, operations
from .clock import CLOCK


@dataclass(frozen=True)
class Rule:
    name: str
    # `service:Action`, as the gateway names calls.
    action: str
    code: str
    status: int
    # What AWS documents, and where.
    documented: str
    source: str
    # The refusal's message for a call's parameters (account, region, the gateway's settings), or None: accepted.
    refuses: Callable[[dict[str, str], str, str, dict[str, int]], str | None]
    # False where AWS documents the refusal but not its error code: the code is our choice.
    code_documented: bool = True


def _cluster_snapshot(identifier: str, account: str, region: str):
    """A DB cluster snapshot by identifier or ARN (of any region) in moto's state."""
    parts = identifier.split(":")
    if len(parts) == 7 and parts[0] == "arn":
        region, identifier = parts[3], parts[6]
    return rds_backends[account][region].cluster_snapshots.get(identifier)


def _key_for_unencrypted_cluster_snapshot(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    if not params.get("KmsKeyId"):
        return None
    source = params.get("SourceDBClusterSnapshotIdentifier", "")
    snapshot = _cluster_snapshot(source, account, region)
    if snapshot is None or snapshot.encrypted:
        return None
    return (f"The source DB cluster snapshot {source} is not encrypted: KmsKeyId cannot be specified "
            "when copying an unencrypted DB cluster snapshot.")


def _db_snapshot(identifier: str, account: str, region: str):
    """A DB snapshot by identifier or ARN (of any region) in moto's state, with its region."""
    parts = identifier.split(":")
    if len(parts) == 7 and parts[0] == "arn":
        region, identifier = parts[3], parts[6]
    return rds_backends[account][region].database_snapshots.get(identifier), region


def _copy_without_the_option_group_it_needs(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    if params.get("OptionGroupName"):
        return None
    snapshot, source_region = _db_snapshot(params.get("SourceDBSnapshotIdentifier", ""), account, region)
    if snapshot is None or source_region == region:
        return None
    group = rds_backends[account][source_region].option_groups.get(snapshot.option_group_name or "")
    kept = [o["OptionName"] for o in (group.options if group else []) if o["Persistent"] or o["Permanent"]]
    if not kept:
        return None
    return f"The snapshot requires a target option group with the following options: [{', '.join(kept)}]"


# Letters, digits and hyphens; a letter first; no two hyphens together, none last.
_IDENTIFIER = re.compile(r"^[A-Za-z](-?[A-Za-z0-9])*$")


def _invalid_identifier(parameter: str, max_len: int) -> Callable[[dict[str, str], str, str, dict], str | None]:
    """Refuses an identifier parameter outside RDS's rules (moto checks DB snapshot
    identifiers itself, not cluster snapshot ones)."""
    def refuses(params: dict[str, str], _account: str, _region: str, _settings) -> str | None:
        value = params.get(parameter)
        if value is None or (len(value) <= max_len and _IDENTIFIER.match(value)):
            return None
        return (f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a letter; must "
                f"contain only ASCII letters, digits, and hyphens; must be 1 to {max_len} characters; and must not "
                "end with a hyphen or contain two consecutive hyphens.")
    return refuses


def _copy_slots_full(cluster: bool) -> Callable[[dict[str, str], str, str, dict], str | None]:
    """Refuses a copy into a region that has its maximum of copies in progress (on the clock)."""
    setting = "cluster_copy_limit" if cluster else "copy_limit"

    def refuses(_params: dict[str, str], account: str, region: str, settings: dict[str, int]) -> str | None:
        limit = settings[setting]
        if operations.copies_in_progress(account, region, cluster) < limit:
            return None
        return f"Cannot copy more than {limit} snapshots across regions"
    return refuses


def _source_not_available(parameter: str, cluster: bool) -> Callable[[dict[str, str], str, str, dict], str | None]:
    """Refuses a copy of a snapshot that is not yet available (moto copies any)."""
    def refuses(params: dict[str, str], account: str, region: str, _settings) -> str | None:
        source = params.get(parameter, "")
        snapshot = (_cluster_snapshot(source, account, region) if cluster else _db_snapshot(source, account, region)[0])
        if snapshot is None or snapshot.status == "available":
            return None
        kind = "DB cluster snapshot" if cluster else "DB snapshot"
        return f"{kind} {source} is not in available state (status: {snapshot.status})."
    return refuses


def _export_slots_full(_params: dict[str, str], account: str, _region: str, settings: dict[str, int]) -> str | None:
    limit = settings["export_limit"]
    if len(operations.running_exports(account)) < limit:
        return None
    return f"You have reached the limit of {limit} concurrent export tasks"


def _snapshot_already_exporting(params: dict[str, str], account: str, _region: str, _settings) -> str | None:
    source = params.get("SourceArn", "")
    running = [t.export_task_identifier for t in operations.running_exports(account) if t.source_arn == source]
    if not running:
        return None
    return f"The snapshot {source} is already being exported by export task {running[0]}."


# S3's general purpose bucket names: 3 to 63 lower-case letters, digits, periods and
# hyphens; a letter or digit first and last; no two periods together; not an IP address;
# none of the reserved prefixes and suffixes.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def _invalid_bucket_name(params: dict[str, str], _account: str, _region: str, _settings) -> str | None:
    name = params.get("Bucket", "")
    if (_BUCKET.match(name) and ".." not in name and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name)
            and not name.startswith(_RESERVED_PREFIXES) and not name.endswith(_RESERVED_SUFFIXES)):
        return None
    return "The specified bucket is not valid."


def _private_dns_taken(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    """Refuses a private-DNS interface endpoint for a service that already has one in the VPC
    (moto creates any number). Private DNS is the default for AWS services. The code and
    message are AWS's as users meet them (hashicorp/terraform-provider-aws#17535, #17269)."""
    if params.get("VpcEndpointType", "").lower() != "interface" or params.get("PrivateDnsEnabled", "true") == "false":
        return None
    vpc, service = params.get("VpcId", ""), params.get("ServiceName", "")
    taken = [e for e in ec2_backends[account][region].vpc_end_points.values()
             if (e.vpc_id, e.service_name) == (vpc, service) and e.private_dns_enabled and e.state != "deleted"
             and (e.vpc_endpoint_type or "").lower() == "interface"]
    if not taken:
        return None
    # com.amazonaws.us-east-1.rds answers as rds.us-east-1.amazonaws.com
    *_, service_region, name = service.split(".")
    return (f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
            f"{name}.{service_region}.amazonaws.com in the VPC {vpc}")


def _gateway_route_taken(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    """Refuses a gateway endpoint whose route table already routes to that service (moto
    overwrites the other endpoint's route). The code and message are AWS's as users meet
    them (eksctl-io/eksctl#2510)."""
    if params.get("VpcEndpointType", "Gateway").lower() != "gateway":
        return None
    backend = ec2_backends[account][region]
    prefix_lists = [p.id for p in backend.managed_prefix_lists.values() if p.prefix_list_name == params.get("ServiceName")]
    tables = [value for name, value in params.items() if name.startswith("RouteTableId.")]
    for table in (backend.route_tables.get(t) for t in tables):
        routed = [r.destination_prefix_list_id for r in (table.routes if table else ())
                  if r.destination_prefix_list_id in prefix_lists]
        if routed:
            return f"route table {table.id} already has a route with destination-prefix-list-id {routed[0]}"
    return None


def _sharing(cluster: bool, refuses: Callable[[object, list[str], str, str], str | None]):
    """A refusal of ModifyDB(Cluster)SnapshotAttribute adding accounts to `restore`."""
    parameter = "DBClusterSnapshotIdentifier" if cluster else "DBSnapshotIdentifier"

    def check(params: dict[str, str], account: str, region: str, _settings) -> str | None:
        added = [value for name, value in params.items() if name.startswith("ValuesToAdd.")]
        snapshot = accounts.snapshot_of(params.get(parameter, ""), account, region, cluster, own_only=True)
        if params.get("AttributeName") != "restore" or not added or snapshot is None:
            return None
        return refuses(snapshot, added, account, region)
    return check


def _shared_with_the_aws_managed_key(snapshot, _added: list[str], account: str, region: str) -> str | None:
    if not snapshot.encrypted or not accounts.is_aws_managed(snapshot.kms_key_id, account, region):
        return None
    name = getattr(snapshot, "db_cluster_snapshot_identifier", None) or snapshot.db_snapshot_identifier
    return (f"Snapshot {name} is encrypted with the default KMS key {snapshot.kms_key_id} of account {account}: "
            "it cannot be shared. Copy it with a customer managed key and share the copy.")


# Oracle options that do not keep a snapshot from being shared.
SHAREABLE_ORACLE_OPTIONS = {"TIMEZONE", "OLS"}


def _shared_with_persistent_options(snapshot, _added: list[str], account: str, region: str) -> str | None:
    group = rds_backends[account][region].option_groups.get(getattr(snapshot, "option_group_name", None) or "")
    oracle = (snapshot.engine or "").lower().startswith("oracle")
    kept = [o["OptionName"] for o in (group.options if group else []) if (o["Persistent"] or o["Permanent"])
            and not (oracle and o["OptionName"].upper() in SHAREABLE_ORACLE_OPTIONS)]
    if not kept:
        return None
    return (f"The snapshot {snapshot.db_snapshot_identifier} uses option group {group.name} with permanent or "
            f"persistent options [{', '.join(kept)}] and cannot be shared.")


def _encrypted_made_public(snapshot, added: list[str], _account: str, _region: str) -> str | None:
    if not snapshot.encrypted or "all" not in added:
        return None
    return "Encrypted snapshots can be shared only with a list of account IDs, not with all."


def _shared_copy(cluster: bool, refuses: Callable[[object, dict[str, str], str, str], str | None]):
    """A refusal of a copy of a snapshot another account shared (its source is an ARN of that account)."""
    parameter = "SourceDBClusterSnapshotIdentifier" if cluster else "SourceDBSnapshotIdentifier"

    def check(params: dict[str, str], account: str, region: str, _settings) -> str | None:
        source = params.get(parameter, "")
        parts = source.split(":")
        if len(parts) < 7 or parts[4] == account:
            return None
        snapshot = accounts.snapshot_of(source, account, region, cluster)
        if snapshot is None or not snapshot.encrypted or not accounts.shared_with(snapshot, account):
            return None  # moto answers "not found" for a snapshot not shared with the caller
        return refuses(snapshot, params, account, region)
    return check


def _cluster_copy_across_region_and_account(params: dict[str, str], account: str, region: str,
                                            _settings) -> str | None:
    parts = params.get("SourceDBClusterSnapshotIdentifier", "").split(":")
    if len(parts) < 7 or parts[4] == account or parts[3] == region:
        return None
    return ("You can't copy a DB cluster snapshot across Regions and accounts in a single step: copy it to "
            f"{region} in account {parts[4]}, or within {parts[3]} into this account, first.")


def _key_not_accessible(key: str | None) -> str:
    return f"Specified KMS key [{key}] does not exist, is not enabled or you do not have permissions to access it."


def _shared_encrypted_copied_without_a_key(_snapshot, params: dict[str, str], _account: str, _region: str) -> str | None:
    return None if params.get("KmsKeyId") else _key_not_accessible(None)


# What the account the snapshot is shared with needs on the key that encrypts it: RDS creates a
# grant on it and decrypts with it (RDS User Guide, "Sharing encrypted snapshots": allow the
# account "as Principal in the KMS key policy ... the kms:CreateGrant action").
SHARED_KEY_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey")


def _shared_key_not_allowing(snapshot, _params: dict[str, str], account: str, region: str) -> str | None:
    key = accounts.find_key(snapshot.kms_key_id, account, region)
    if key is not None and accounts.key_policy_allows(key, account, SHARED_KEY_ACTIONS):
        return None
    return _key_not_accessible(snapshot.kms_key_id)


# IAM's cap on the inline policies of one role together, in characters other than white space.
ROLE_POLICY_SIZE = 10_240


def _point_in_time_source(cluster: bool, account: str, region: str, params: dict[str, str]):
    backend = rds_backends[account][region]
    if cluster:
        return backend.clusters.get(params.get("SourceDBClusterIdentifier", ""))
    return backend.databases.get(params.get("SourceDBInstanceIdentifier", ""))


def _point_in_time_with_backups_off(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    source = _point_in_time_source(False, account, region, params)
    if source is None or source.backup_retention_period:
        return None
    return f"Point-in-time restore is not enabled for DB instance {source.db_instance_identifier}: its backup retention is 0."


def _outside_the_restorable_window(cluster: bool):
    time_parameter = "RestoreToTime" if cluster else "RestoreTime"

    def check(params: dict[str, str], account: str, region: str, _settings) -> str | None:
        source = _point_in_time_source(cluster, account, region, params)
        raw = params.get(time_parameter)
        window = source and moto_patches.restorable_window(source)
        if not raw or window is None:
            return None
        time = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        earliest, latest = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in window)
        if earliest <= time <= latest:
            return None
        return (f"Restore time {raw} is outside the restorable window of the source, "
                f"{earliest:%Y-%m-%dT%H:%M:%SZ} to {latest:%Y-%m-%dT%H:%M:%SZ}.")
    return check


def _policy_size(document: str) -> int:
    return len(re.sub(r"\s", "", document))


def _role_policies_too_large(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    """Refuses an inline policy that takes the role's inline policies past 10,240 characters
    (the one it replaces, of the same name, no longer counted). Moto keeps any size."""
    role_name, policy_name = params.get("RoleName", ""), params.get("PolicyName", "")
    role = next((r for r in iam_backends[account][get_partition(region)].roles.values() if r.name == role_name), None)
    others = {} if role is None else {name: doc for name, doc in role.policies.items() if name != policy_name}
    size = _policy_size(params.get("PolicyDocument", "")) + sum(_policy_size(doc) for doc in others.values())
    if size <= ROLE_POLICY_SIZE:
        return None
    return f"Maximum policy size of {ROLE_POLICY_SIZE} bytes exceeded for role {role_name}"


VPC_FUNCTION_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")


def _vpc_function_without_network_interfaces(params: dict[str, str], account: str, region: str,
                                             _settings) -> str | None:
    """Refuses a function in a VPC (subnets given) whose execution role's policies do not allow
    the network interface actions, on `*` (EC2 names no interface before it makes one). An
    update without a role checks the function's own."""
    if not (json.loads(params.get("VpcConfig") or "{}").get("SubnetIds") or []):
        return None
    role_arn = params.get("Role")
    if not role_arn:
        try:
            role_arn = lambda_backend(account, region).get_function(params.get("FunctionName", "")).role
        except Exception:  # noqa: BLE001 - moto's UnknownFunctionException: moto answers it
            return None
    role = next((r for r in iam_backends[account][get_partition(region)].roles.values() if r.arn == role_arn), None)
    if role is None:
        return None  # a role that does not exist: moto's own answer
    documents = accounts.role_policies(role)
    missing = [a for a in VPC_FUNCTION_ACTIONS if accounts.evaluate(documents, a, ["*"]) != "allowed"]
    if not missing:
        return None
    # Lambda's message as deployments meet it (e.g. cloudposse/terraform-aws-lambda-function#13,
    # github-aws-runners/terraform-aws-github-runner#2732): the code and text are not in the reference.
    return f"The provided execution role does not have permissions to call {missing[0].split(':')[1]} on EC2"


RULES = (
    # One refusal, of both calls that put a function in a VPC.
    *(Rule(
        name=name,
        action=action,
        code="InvalidParameterValueException",
        status=400,
        documented="To connect to a VPC, your function's execution role must have the following permissions: "
        "ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces, ec2:DeleteNetworkInterface.",
        source="https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html",
        refuses=_vpc_function_without_network_interfaces,
        code_documented=False,
    ) for name, action in (("vpc_function_role_without_network_interface_permissions", "lambda:CreateFunction"),
                           ("vpc_function_update_role_without_network_interface_permissions",
                            "lambda:UpdateFunctionConfiguration"))),
    Rule(
        name="role_inline_policy_size",
        action="iam:PutRolePolicy",
        code="LimitExceeded",
        status=409,
        documented="Role policy size cannot exceed 10,240 characters (the aggregate of all inline policies "
        "embedded in the role; IAM does not count white space).",
        source="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
        refuses=_role_policies_too_large,
    ),
    Rule(
        name="copy_unencrypted_cluster_snapshot_with_key",
        action="rds:CopyDBClusterSnapshot",
        code="InvalidParameterCombination",
        status=400,
        documented="If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId "
        "parameter, an error is returned.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html",
        refuses=_key_for_unencrypted_cluster_snapshot,
        code_documented=False,
    ),
    Rule(
        name="copy_across_regions_without_option_group",
        action="rds:CopyDBSnapshot",
        code="InvalidParameterValue",
        status=400,
        documented="OptionGroupName: If your source DB instance uses Transparent Data Encryption for Oracle or "
        "Microsoft SQL Server, you must specify this option when copying across AWS Regions (and the new "
        "option group must contain the persistent and permanent options of the original).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html",
        refuses=_copy_without_the_option_group_it_needs,
        code_documented=False,
    ),
    Rule(
        name="cluster_snapshot_identifier",
        action="rds:CreateDBClusterSnapshot",
        code="InvalidParameterValue",
        status=400,
        documented="DBClusterSnapshotIdentifier: Must contain from 1 to 63 letters, numbers, or hyphens. First "
        "character must be a letter. Can't end with a hyphen or contain two consecutive hyphens.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html",
        refuses=_invalid_identifier("DBClusterSnapshotIdentifier", 63),
        code_documented=False,
    ),
    Rule(
        name="cluster_snapshot_copy_identifier",
        action="rds:CopyDBClusterSnapshot",
        code="InvalidParameterValue",
        status=400,
        documented="TargetDBClusterSnapshotIdentifier: Must contain from 1 to 63 letters, numbers, or hyphens. "
        "First character must be a letter. Can't end with a hyphen or contain two consecutive hyphens.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html",
        refuses=_invalid_identifier("TargetDBClusterSnapshotIdentifier", 63),
        code_documented=False,
    ),
    Rule(
        name="cluster_copy_across_region_and_account",
        action="rds:CopyDBClusterSnapshot",
        code="InvalidParameterCombination",
        status=400,
        documented="You can't copy a DB cluster snapshot across Regions and accounts in a single step. Perform "
        "one step for each of these copy actions.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html",
        refuses=_cluster_copy_across_region_and_account,
        code_documented=False,
    ),
    Rule(
        name="copy_of_a_snapshot_not_available",
        action="rds:CopyDBSnapshot",
        code="InvalidDBSnapshotState",
        status=400,
        documented="InvalidDBSnapshotStateFault: The state of the DB snapshot doesn't allow the operation "
        "(a snapshot is copied once it is available).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html",
        refuses=_source_not_available("SourceDBSnapshotIdentifier", cluster=False),
    ),
    Rule(
        name="copy_of_a_cluster_snapshot_not_available",
        action="rds:CopyDBClusterSnapshot",
        code="InvalidDBClusterSnapshotStateFault",
        status=400,
        documented="InvalidDBClusterSnapshotStateFault: The supplied value isn't a valid DB cluster snapshot "
        "state (the source must be available).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html",
        refuses=_source_not_available("SourceDBClusterSnapshotIdentifier", cluster=True),
    ),
    Rule(
        name="copies_in_progress_per_region",
        action="rds:CopyDBSnapshot",
        code="SnapshotQuotaExceeded",
        status=400,
        documented="You can have up to 20 snapshot copy requests in progress to a single destination Region per "
        "account (setting copy_limit; copies queued behind another of the same source count).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CopySnapshot.html",
        refuses=_copy_slots_full(cluster=False),
        code_documented=False,
    ),
    Rule(
        name="cluster_copies_in_progress_per_region",
        action="rds:CopyDBClusterSnapshot",
        code="SnapshotQuotaExceeded",
        status=400,
        documented="You can have up to five snapshot copy requests in progress to a single destination Region per "
        "account (setting cluster_copy_limit).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html",
        refuses=_copy_slots_full(cluster=True),
        code_documented=False,
    ),
    Rule(
        name="exports_running_per_account",
        action="rds:StartExportTask",
        code="ExportTaskLimitReachedFault",
        status=400,
        documented="You can have up to five concurrent DB snapshot export tasks in progress per AWS account "
        "(setting export_limit).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-export-snapshot.Considerations.html",
        refuses=_export_slots_full,
        code_documented=False,
    ),
    Rule(
        name="one_export_per_snapshot",
        action="rds:StartExportTask",
        code="ExportTaskAlreadyExists",
        status=400,
        documented="You can't run multiple export tasks for the same DB cluster snapshot simultaneously.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-export-snapshot.Considerations.html",
        refuses=_snapshot_already_exporting,
        code_documented=False,
    ),
    Rule(
        name="bucket_name",
        action="s3:CreateBucket",
        code="InvalidBucketName",
        status=400,
        documented="Bucket names must be between 3 and 63 characters long, consist only of lowercase letters, "
        "numbers, periods and hyphens, begin and end with a letter or number, must not contain two adjacent "
        "periods, must not be formatted as an IP address, and must not start with xn--, sthree- or amzn-s3-demo- "
        "nor end with -s3alias, --ol-s3, .mrap or --x-s3.",
        source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
        refuses=_invalid_bucket_name,
    ),
    Rule(
        name="interface_endpoint_private_dns_per_vpc",
        action="ec2:CreateVpcEndpoint",
        code="InvalidParameter",
        status=400,
        documented="PrivateDnsEnabled: (Interface endpoint) Indicates whether to associate a private hosted zone "
        "with the specified VPC. The private hosted zone contains a record set for the default public DNS name for "
        "the service for the Region (a VPC has one such zone per service: a second endpoint with private DNS for "
        "it is refused).",
        source="https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVpcEndpoint.html",
        refuses=_private_dns_taken,
        code_documented=False,
    ),
    Rule(
        name="gateway_endpoint_route_per_route_table",
        action="ec2:CreateVpcEndpoint",
        code="RouteAlreadyExists",
        status=400,
        documented="You cannot have multiple endpoint routes to the same service in a single route table: if you "
        "create two endpoints to Amazon S3 in your VPC, you cannot create endpoint routes for both endpoints in "
        "the same route table.",
        source="https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html",
        refuses=_gateway_route_taken,
        code_documented=False,
    ),
)
# Sharing and copying across accounts, one rule for DB snapshots and one for DB cluster
# snapshots each: name, action ({} the kind), code, what AWS documents, source, the refusal of a
# kind (cluster or not), whether AWS documents the code.
SHARE_GUIDE = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/share-encrypted-snapshot.html"
for _name, _action, _code, _documented, _source, _refusal, _code_documented in (
    ("share_encrypted_with_aws_managed_key", "Modify{}Attribute", "InvalidParameterValue",
     "You can't share a snapshot that has been encrypted using the default KMS key of the AWS account that "
     "shared the snapshot.", SHARE_GUIDE, lambda cluster: _sharing(cluster, _shared_with_the_aws_managed_key), False),
    ("share_encrypted_publicly", "Modify{}Attribute", "InvalidParameterValue",
     "If the manual snapshot is encrypted, it can be shared, but only by specifying a list of authorized AWS "
     "account IDs for the ValuesToAdd parameter. You can't use all as a value for that parameter in this case.",
     "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Modify{}Attribute.html",
     lambda cluster: _sharing(cluster, _encrypted_made_public), False),
    ("copy_shared_encrypted_without_key", "Copy{}", "KMSKeyNotAccessibleFault",
     "KmsKeyId: If you copy an encrypted snapshot that is shared from another AWS account, then you must specify "
     "a value for this parameter (the message is what users report: "
     "github.com/awslabs/aurora-snapshot-tool/issues/25).",
     "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Copy{}.html",
     lambda cluster: _shared_copy(cluster, _shared_encrypted_copied_without_a_key), False),
    ("copy_shared_key_policy", "Copy{}", "KMSKeyNotAccessibleFault",
     "To share an encrypted snapshot, add the account you share it with to the KMS key policy as Principal and "
     "allow it kms:CreateGrant (and use of the key): without it the copy cannot use the key "
     "(KMSKeyNotAccessibleFault: an error occurred accessing an AWS KMS key).",
     SHARE_GUIDE, lambda cluster: _shared_copy(cluster, _shared_key_not_allowing), True),
):
    RULES += tuple(
        Rule(name=_name, action=f"rds:{_action.format(kind)}", code=_code, status=400, documented=_documented,
             source=_source.format(kind), refuses=_refusal(cluster), code_documented=_code_documented)
        for cluster, kind in ((False, "DBSnapshot"), (True, "DBClusterSnapshot"))
    )
RULES += (
    Rule(
        name="point_in_time_restore_with_backups_off",
        action="rds:RestoreDBInstanceToPointInTime",
        code="PointInTimeRestoreNotEnabled",
        status=400,
        documented="PointInTimeRestoreNotEnabled: SourceDBInstanceIdentifier refers to a DB instance with "
        "BackupRetentionPeriod equal to 0.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceToPointInTime.html",
        refuses=_point_in_time_with_backups_off,
    ),
    Rule(
        name="point_in_time_restore_outside_the_window",
        action="rds:RestoreDBInstanceToPointInTime",
        code="InvalidRestoreFault",
        status=400,
        documented="You can restore to any point in time before the time identified by the LatestRestorableTime "
        "property. You can restore to a point up to the number of days specified by the BackupRetentionPeriod "
        "property.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceToPointInTime.html",
        refuses=_outside_the_restorable_window(cluster=False),
        code_documented=False,
    ),
    Rule(
        name="cluster_point_in_time_restore_outside_the_window",
        action="rds:RestoreDBClusterToPointInTime",
        code="InvalidRestoreFault",
        status=400,
        documented="Users can restore to any point in time before LatestRestorableTime for up to "
        "BackupRetentionPeriod days.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterToPointInTime.html",
        refuses=_outside_the_restorable_window(cluster=True),
        code_documented=False,
    ),
)


def _deleted_while_creating(cluster: bool):
    def check(params: dict[str, str], account: str, region: str, _settings) -> str | None:
        backend = rds_backends[account][region]
        identifier = params.get("DBClusterIdentifier" if cluster else "DBInstanceIdentifier", "")
        database = (backend.clusters if cluster else backend.databases).get(identifier)
        if database is None or database.status != "creating":
            return None
        kind = "DB cluster" if cluster else "DB instance"
        return f"{kind} {identifier} is not in a valid state to be deleted: it is creating."
    return check


# A database being created (a restore still running) cannot be deleted yet: a drill that timed
# out deletes its database once RDS lets it (the drill retries), or the sweep does.
RULES += (
    Rule(
        name="delete_db_instance_while_creating",
        action="rds:DeleteDBInstance",
        code="InvalidDBInstanceState",
        status=400,
        documented="InvalidDBInstanceState: The DB instance isn't in a valid state.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html",
        refuses=_deleted_while_creating(cluster=False),
    ),
    Rule(
        name="delete_db_cluster_while_creating",
        action="rds:DeleteDBCluster",
        code="InvalidDBClusterStateFault",
        status=400,
        documented="InvalidDBClusterStateFault: The requested operation can't be performed while the cluster is "
        "in this state.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html",
        refuses=_deleted_while_creating(cluster=True),
    ),
)


def _instance_into_unavailable_cluster(params: dict[str, str], account: str, region: str, _settings) -> str | None:
    cluster = rds_backends[account][region].clusters.get(params.get("DBClusterIdentifier", ""))
    if cluster is None:
        return None  # no cluster named: moto's own answer (DBClusterNotFoundFault)
    course = operations.timeline(cluster)
    # moto's own `creating` is a new cluster's first read, after which it is available.
    status = (course.status(CLOCK.now()) if course else None) or (
        "available" if cluster._status == "creating" else cluster._status)
    if status == "available":
        return None
    return (f"DB cluster {cluster.db_cluster_identifier} is {status}: DB instances can be created in it only once it "
            "is available.")


# A restored Aurora cluster gets its DB instances only once the restore has ended.
RULES += (
    Rule(
        name="instance_into_unavailable_cluster",
        action="rds:CreateDBInstance",
        code="InvalidDBClusterStateFault",
        status=400,
        documented="You can create DB instances only after the RestoreDBClusterFromSnapshot operation has "
        "completed and the DB cluster is available.",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html",
        refuses=_instance_into_unavailable_cluster,
    ),
)
# DB cluster snapshots have no option group.
RULES += (
    Rule(
        name="share_with_persistent_options",
        action="rds:ModifyDBSnapshotAttribute",
        code="InvalidParameterCombination",
        status=400,
        documented="You can't share a DB snapshot that uses an option group with permanent or persistent options, "
        "except for Oracle DB instances that have the Timezone or OLS option (or both).",
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html",
        refuses=_sharing(False, _shared_with_persistent_options),
        code_documented=False,
    ),
)
BY_ACTION: dict[str, list[Rule]] = {}
for _rule in RULES:
    BY_ACTION.setdefault(_rule.action, []).append(_rule)


# The limits the rules apply, as AWS sets them by default.
LIMITS = {"copy_limit": 20, "cluster_copy_limit": 5, "export_limit": 5}


def default_settings() -> dict[str, int]:
    """Each rule's setting (1, on) and the limits."""
    return {**{rule.name: 1 for rule in RULES}, **LIMITS}


def refusal(action: str, params: dict[str, str], account: str, region: str,
            settings: dict[str, int]) -> tuple[Rule, str] | None:
    """The first rule that refuses this call, with its message."""
    for rule in (rule for rule in BY_ACTION.get(action, ()) if settings.get(rule.name, 1)):
        message = rule.refuses(params, account, region, settings)
        if message is not None:
            return rule, message
    return None
