"""Accounts kept apart as AWS keeps them. moto keeps one world per account (a call's account
comes from its access key; sts:AssumeRole into a role of another account hands out keys of that
account) but lets every caller do everything: here

- an access key of 12 digits is the administrator of that account (how the demo and the tests
  act in a second, vault, account: a profile with that account's credentials on AWS);
- a Lambda function runs with keys of its execution role, as Lambda gives it (IAM User Guide,
  "the function's execution role ... temporary security credentials"): its calls are the
  role's, seen as such by trust policies (`aws:PrincipalArn`) and resource checks, but its
  identity policies are not enforced on them (tests/e2e/least_privilege.py checks those
  against the code instead);
- sts:AssumeRole is refused unless the role exists and its trust policy lets the caller in
  (principal, `sts:ExternalId` and `aws:PrincipalArn`), as STS refuses it;
- a call made with keys from sts:AssumeRole is allowed only by the role's identity policies
  (an explicit Deny wins; a statement's `aws:ResourceTag/<key>` conditions hold only for RDS
  resources carrying that tag, a resource not yet made carrying none; see `denial`);
- an RDS database encrypted without a key of its own is encrypted with its account's AWS
  managed key `aws/rds`, as RDS does, and a snapshot of another account is found by its ARN
  only when shared with the caller (local_aws/rules.py refuses what sharing AWS refuses).

Sources: IAM User Guide, "Policy evaluation logic" and "Access to AWS accounts owned by third
parties" (external ID); RDS API reference, CopyDBSnapshot ("If you are copying from a shared
manual DB snapshot, this parameter must be the Amazon Resource Name (ARN) of the shared DB
snapshot"); RDS User Guide, "Sharing a DB snapshot" and "Encryption of RDS resources"."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from moto.iam.models import iam_backends
from moto.kms.models import KmsBackend, kms_backends
from moto.rds.models import RDSBackend, rds_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

ACCOUNT_KEY = re.compile(r"\d{12}")
AWS_MANAGED_RDS_KEY = "alias/aws/rds"
# moto's placeholder for "encrypted with the default key".
MOTO_DEFAULT_KEY = "default_kms_key_id"

_original: dict[str, Any] = {}


@dataclass(frozen=True)
class Caller:
    """Who signed a call: `role_arn` when the keys came from sts:AssumeRole or are a Lambda
    function's; `enforced`: whether the role's identity policies are held to its calls."""

    account: str
    principal: str
    role_arn: str | None = None
    enforced: bool = True


# The keys handed to Lambda functions, by execution role ARN, and the set of their ids.
_execution_keys: dict[str, tuple[str, str]] = {}
EXECUTION_KEY_IDS: set[str] = set()


def execution_role_keys(role_arn: str, region: str) -> tuple[str, str] | None:
    """The access key id and secret a function with this execution role runs with (one pair
    per role, so that its environments stay warm), or None for an ARN of no account."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not ACCOUNT_KEY.fullmatch(parts[4]):
        return None
    iam = iam_backends[parts[4]][get_partition(region)]
    cached = _execution_keys.get(role_arn)
    if cached is None or cached[0] not in iam.access_keys:  # none yet, or moto's state was reset
        key = iam.create_temp_access_key()
        key.role_arn = role_arn
        EXECUTION_KEY_IDS.add(key.access_key_id)
        _execution_keys[role_arn] = (key.access_key_id, key.secret_access_key)
    return _execution_keys[role_arn]


def caller_of(access_key: str, account: str, region: str) -> Caller:
    partition = get_partition(region)
    key = iam_backends[account][partition].access_keys.get(access_key)
    if key is None or not key.role_arn:
        return Caller(account, f"arn:aws:iam::{account}:root")
    session = next((a.session_name for a in sts_backends[account][partition].assumed_roles
                    if a.access_key_id == access_key), "session")
    if access_key in EXECUTION_KEY_IDS:
        session = "function"  # Lambda names the session after the function
    return Caller(account, f"arn:aws:sts::{account}:assumed-role/{key.role_arn.split('/')[-1]}/{session}",
                  key.role_arn, enforced=access_key not in EXECUTION_KEY_IDS)


def account_of_key(access_key: str) -> str | None:
    """The account an administrator's key of 12 digits names."""
    return access_key if ACCOUNT_KEY.fullmatch(access_key) else None


# Policy evaluation: Action/NotAction and Resource/NotResource with wildcards, principals by
# ARN or account; conditions only `sts:ExternalId` and `aws:PrincipalArn` (trust policies) and,
# given the resources' tags, `aws:ResourceTag/<key>` - the others are not read.
def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str, case_sensitive: bool = True) -> bool:
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, pattern) for pattern in _listed(patterns))
    return any(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern in _listed(patterns))


def _concerns(statement: dict, action: str, resource: str | None) -> bool:
    if "Action" in statement and not _matches(statement["Action"], action, case_sensitive=False):
        return False
    if "NotAction" in statement and _matches(statement["NotAction"], action, case_sensitive=False):
        return False
    if resource is not None:
        if "Resource" in statement and not _matches(statement["Resource"], resource):
            return False
        if "NotResource" in statement and _matches(statement["NotResource"], resource):
            return False
    return True


def _statements(document: str | dict) -> list[dict]:
    policy = json.loads(document) if isinstance(document, str) else document
    return _listed(policy.get("Statement", []))


def _tag_conditions_hold(statement: dict, tags: dict[str, str], context_key: str = "aws:resourcetag/") -> bool:
    """The statement's `aws:ResourceTag/<key>` (or `aws:RequestTag/<key>`) conditions with
    StringEquals or StringLike hold for a resource (or a request) with `tags`: one on a tag it
    lacks does not ("If the key that you specify in a policy condition is not present in the
    request context, the values do not match", IAM User Guide, "Condition operators"), unless
    ...IfExists. Other operators are not read."""
    for operator, keys in (statement.get("Condition") or {}).items():
        base = operator.removesuffix("IfExists")
        if base not in ("StringEquals", "StringLike"):
            continue
        for key, expected in keys.items():
            if not key.lower().startswith(context_key):
                continue
            value = tags.get(key.split("/", 1)[1])
            if value is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            if base == "StringEquals" and value not in _listed(expected):
                return False
            if base == "StringLike" and not _matches(expected, value):
                return False
    return True


def evaluate(documents: list[str], action: str, resources: list[str],
             resource_tags: Callable[[str], dict[str, str]] | None = None,
             request_tags: dict[str, str] | None = None) -> str:
    """`allowed`, `denied` (an explicit Deny) or `implicit` (nothing allows it) for every
    resource of one call; with `resource_tags` (a resource's tags by ARN), statements whose
    `aws:ResourceTag` conditions do not hold for a resource do not concern it; with
    `request_tags` (the tags the call creates its resource with), those whose `aws:RequestTag`
    conditions do not hold."""
    statements = [statement for document in documents for statement in _statements(document)]
    if request_tags is not None:
        statements = [s for s in statements if _tag_conditions_hold(s, request_tags, "aws:requesttag/")]
    allowed = True
    for resource in resources or ["*"]:
        concerned = [s for s in statements if _concerns(s, action, resource)]
        if resource_tags is not None and resource != "*":
            tags = resource_tags(resource)
            concerned = [s for s in concerned if _tag_conditions_hold(s, tags)]
        if any(s.get("Effect") == "Deny" for s in concerned):
            return "denied"
        allowed &= any(s.get("Effect") == "Allow" for s in concerned)
    return "allowed" if allowed else "implicit"


def _names_principal(statement: dict, caller: Caller) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    names = _listed(principal.get("AWS", []))
    return any(name in ("*", caller.account, f"arn:aws:iam::{caller.account}:root", caller.role_arn, caller.principal)
               for name in names)


def _trust_conditions_hold(statement: dict, caller: Caller, external_id: str | None) -> bool:
    """The statement's `sts:ExternalId` and `aws:PrincipalArn` conditions (the principal's
    ARN: a role's own ARN for its sessions, IAM User Guide, "AWS global condition context
    keys") hold for the call; a key it does not read never holds."""
    principal_arn = caller.role_arn or f"arn:aws:iam::{caller.account}:root"
    context = {"sts:externalid": external_id, "aws:principalarn": principal_arn}
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if key.lower() not in context:
                continue
            value = context[key.lower()]
            if value is None:
                return False
            if operator in ("StringEquals", "ArnEquals") and value not in _listed(expected):
                return False
            if operator in ("StringLike", "ArnLike") and not _matches(expected, value):
                return False
            if operator not in ("StringEquals", "ArnEquals", "StringLike", "ArnLike"):
                return False
    return True


def key_policy_allows(key, account: str, actions: tuple[str, ...]) -> bool:
    """A key policy letting principals of `account` (the account, or any of its roles) do every
    one of `actions` (its own account's principals come in through IAM: "Enable IAM policies")."""
    if key.account_id == account:
        return True
    caller = Caller(account, f"arn:aws:iam::{account}:root")
    statements = _statements(key.policy)

    def names_account(statement: dict) -> bool:
        principal = statement.get("Principal")
        if principal == "*":
            return True
        names = _listed(principal.get("AWS", [])) if isinstance(principal, dict) else []
        return _names_principal(statement, caller) or any(f":iam::{account}:" in name for name in names)

    for action in actions:
        concerned = [s for s in statements if names_account(s) and _concerns(s, action, None)]
        if any(s.get("Effect") == "Deny" for s in concerned) or not any(s.get("Effect") == "Allow" for s in concerned):
            return False
    return True


def role_policies(role) -> list[str]:
    return list(role.policies.values()) + [
        next(v.document for v in policy.versions if v.is_default) for policy in role.managed_policies.values()
    ]


def _role(arn: str, region: str):
    """The role an ARN names (its path included), or None."""
    parts = arn.split(":")
    if len(parts) < 6 or not ACCOUNT_KEY.fullmatch(parts[4]):
        return None
    return next((r for r in iam_backends[parts[4]][get_partition(region)].roles.values() if r.arn == arn), None)


def assume_role_refusal(caller: Caller, params: dict[str, str], region: str) -> str | None:
    """STS's AccessDenied for a role that does not exist or whose trust policy does not let the
    caller in, with the external id it asks for."""
    role_arn = params.get("RoleArn", "")
    denied = f"User: {caller.principal} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    role = _role(role_arn, region)
    if role is None:
        return denied
    trusting = [
        s for s in _statements(role.assume_role_policy_document)
        if s.get("Effect") == "Allow" and _concerns(s, "sts:AssumeRole", None) and _names_principal(s, caller)
        and _trust_conditions_hold(s, caller, params.get("ExternalId"))
    ]
    return None if trusting else denied


def request_tags(params: dict[str, str]) -> dict[str, str]:
    """The tags a query-protocol call (RDS) creates its resource with: `Tags.Tag.<n>.Key` and
    `.Value`."""
    parts: dict[str, dict[str, str]] = {}
    for name, value in params.items():
        if (found := re.fullmatch(r"Tags\.(?:Tag|member)\.(\d+)\.(Key|Value)", name)) is not None:
            parts.setdefault(found[1], {})[found[2]] = value
    return {tag["Key"]: tag.get("Value", "") for tag in parts.values() if "Key" in tag}


def _rds_arn(identifier: str, account: str, region: str, kind: str) -> str:
    # RDS stores identifiers in lowercase, and its ARNs with them.
    return identifier if identifier.startswith("arn:") else f"arn:aws:rds:{region}:{account}:{kind}:{identifier.lower()}"


# Signing names that are not the service's IAM prefix, and calls whose IAM action has another name.
IAM_PREFIX = {"monitoring": "cloudwatch"}
IAM_ACTION = {"Invoke": "InvokeFunction"}

# The resources an RDS call acts on, as IAM names them (Service Authorization Reference,
# Amazon RDS: a copy needs both its source and its target).
RDS_RESOURCES = {
    "CopyDBSnapshot": (("SourceDBSnapshotIdentifier", "snapshot"), ("TargetDBSnapshotIdentifier", "snapshot")),
    "CopyDBClusterSnapshot": (("SourceDBClusterSnapshotIdentifier", "cluster-snapshot"),
                              ("TargetDBClusterSnapshotIdentifier", "cluster-snapshot")),
    "DeleteDBSnapshot": (("DBSnapshotIdentifier", "snapshot"),),
    "DeleteDBClusterSnapshot": (("DBClusterSnapshotIdentifier", "cluster-snapshot"),),
    "ModifyDBSnapshotAttribute": (("DBSnapshotIdentifier", "snapshot"),),
    "ModifyDBClusterSnapshotAttribute": (("DBClusterSnapshotIdentifier", "cluster-snapshot"),),
    "AddTagsToResource": (("ResourceName", "snapshot"),),
    "RestoreDBInstanceFromDBSnapshot": (("DBSnapshotIdentifier", "snapshot"), ("DBInstanceIdentifier", "db"),
                                        ("DBSubnetGroupName", "subgrp")),
    "RestoreDBClusterFromSnapshot": (("SnapshotIdentifier", "cluster-snapshot"), ("DBClusterIdentifier", "cluster"),
                                     ("DBSubnetGroupName", "subgrp")),
    "CreateDBInstance": (("DBInstanceIdentifier", "db"), ("DBClusterIdentifier", "cluster"),
                         ("DBSubnetGroupName", "subgrp")),
    "DeleteDBInstance": (("DBInstanceIdentifier", "db"),),
    "DeleteDBCluster": (("DBClusterIdentifier", "cluster"),),
    "ModifyDBInstance": (("DBInstanceIdentifier", "db"),),
    "ModifyDBCluster": (("DBClusterIdentifier", "cluster"),),
    "RemoveTagsFromResource": (("ResourceName", "snapshot"),),
}


def resources(service: str, action: str, params: dict[str, str], account: str, region: str) -> list[str] | None:
    """The ARNs the call acts on; None where they are not mapped here (then any Allow of the
    action counts)."""
    if service != "rds" or action not in RDS_RESOURCES:
        return None
    return [_rds_arn(params[name], account, region, kind) for name, kind in RDS_RESOURCES[action] if params.get(name)]


def denial(caller: Caller, service: str, action: str, params: dict[str, str], region: str) -> str | None:
    """AccessDenied's message for a call of keys from sts:AssumeRole that the role's policies
    do not allow; None: allowed (or not such keys)."""
    if caller.role_arn is None or not caller.enforced or " " in action:
        return None  # not keys from AssumeRole; a function's; or a REST call, whose IAM action is not named here
    iam_action = f"{IAM_PREFIX.get(service, service)}:{IAM_ACTION.get(action, action)}"
    if iam_action == "sts:GetCallerIdentity":
        return None  # "No permissions are required to perform this operation" (STS API Reference)
    role = _role(caller.role_arn, region)
    documents = role_policies(role) if role is not None else []
    arns = resources(service, action, params, caller.account, region)
    verdict = evaluate(documents, iam_action, arns or [], resource_tags=lambda arn: rds_tags(arn, region),
                       request_tags=request_tags(params))
    if arns is None and verdict == "implicit":
        # Resources not mapped: any Allow of the action, whatever its resources, lets it through.
        statements = [s for d in documents for s in _statements(d)]
        if any(s.get("Effect") == "Allow" and _concerns(s, iam_action, None) for s in statements):
            verdict = "allowed"
    if verdict == "allowed":
        return None
    on = f" on resource: {arns[0]}" if arns else ""
    why = "with an explicit deny in an identity-based policy" if verdict == "denied" else (
        "because no identity-based policy allows the " + iam_action + " action")
    return f"User: {caller.principal} is not authorized to perform: {iam_action}{on} {why}"


def rds_tags(arn: str, region: str) -> dict[str, str]:
    """An RDS resource's tags by ARN (none for a resource not made yet, or not RDS's)."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "rds":
        return {}
    backend = _backend(parts[4], parts[3] or region)
    if backend is None:
        return {}
    try:
        return {tag["Key"]: tag["Value"] for tag in backend.list_tags_for_resource(arn)}
    except Exception:  # noqa: BLE001 - moto raises its own NotFound types, or KeyError
        return {}


# RDS: the AWS managed key, and snapshots of other accounts by ARN.
def aws_managed_rds_key(account: str, region: str) -> str:
    kms = kms_backends[account][region]
    return kms.describe_key(kms.get_key_id_from_alias(AWS_MANAGED_RDS_KEY)).arn


def _aws_managed(generate):
    """moto makes the keys of reserved aliases (alias/aws/rds, ...) on first use as customer
    managed; AWS manages them."""
    def call(self: KmsBackend, alias_name: str) -> str | None:
        key_id = generate(self, alias_name)
        if key_id is not None:
            self.keys[key_id].key_manager = "AWS"
        return key_id
    return call


def is_aws_managed(key_id: str | None, account: str, region: str) -> bool:
    key = find_key(key_id, account, region)
    return key is not None and key.key_manager == "AWS"


def find_key(key_id: str | None, account: str, region: str):
    """A KMS key by ARN (of any account) or by id in `account`."""
    if not key_id or key_id == MOTO_DEFAULT_KEY:
        return None
    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        if len(parts) < 6 or not ACCOUNT_KEY.fullmatch(parts[4]):
            return None
        region, account = parts[3], parts[4]
    try:
        return kms_backends[account][region].describe_key(key_id)
    except Exception:  # noqa: BLE001 - moto raises KeyError or its own NotFound types
        return None


def _with_aws_managed_key(create):
    def call(self: RDSBackend, kwargs: dict[str, Any]):
        created = create(self, kwargs)
        if created.storage_encrypted and created.kms_key_id in (None, MOTO_DEFAULT_KEY):
            created.kms_key_id = aws_managed_rds_key(self.account_id, self.region_name)
        return created
    return call


def shared_with(snapshot, account: str) -> bool:
    restore = snapshot.attributes.get("restore", [])
    return account in restore or ("all" in restore and not snapshot.encrypted)


def _backend(account: str, region: str) -> RDSBackend | None:
    """moto's RDS of an account and region; None for what is neither (no backend made for it)."""
    if not ACCOUNT_KEY.fullmatch(account) or region not in rds_backends[account].regions:
        return None
    return rds_backends[account][region]


def _get_snapshot(self: RDSBackend, identifier: str, resource_type, not_found_exception):
    parts = identifier.split(":", 6) if identifier.startswith("arn:") else []
    if len(parts) == 7 and parts[4] != self.account_id:
        owner = _backend(parts[4], parts[3])
        snapshot = owner.resource_map[resource_type].get(parts[6]) if owner else None
        if snapshot is None or not shared_with(snapshot, self.account_id):
            raise not_found_exception(identifier)
        return snapshot
    return _original["get_snapshot"](self, identifier, resource_type, not_found_exception)


def snapshot_of(identifier: str, account: str, region: str, cluster: bool, own_only: bool = False):
    """A snapshot by identifier or ARN (of any account or region; `own_only`: of `account`
    only), or None."""
    parts = identifier.split(":", 6) if identifier.startswith("arn:") else []
    if len(parts) == 7:
        if own_only and parts[4] != account:
            return None
        account, region, identifier = parts[4], parts[3], parts[6]
    backend = _backend(account, region)
    if backend is None:
        return None
    return (backend.cluster_snapshots if cluster else backend.database_snapshots).get(identifier)


def apply() -> None:
    _original["get_snapshot"] = RDSBackend.get_snapshot
    RDSBackend.get_snapshot = _get_snapshot
    RDSBackend.create_db_instance = _with_aws_managed_key(RDSBackend.create_db_instance)
    RDSBackend.create_db_cluster = _with_aws_managed_key(RDSBackend.create_db_cluster)
    KmsBackend._generate_default_keys = _aws_managed(KmsBackend._generate_default_keys)

