"""What AWS refuses and moto accepts, where the module meets it. Each rule is
one refusal AWS documents, answered by the gateway before moto sees the call,
in the shape the caller's protocol expects. Every rule is on by default; a
setting of its name (`PUT /_gateway/settings {"<name>": 0}`) turns it off, to
show what the code would meet without it. docs/local-aws.md lists them
(`scripts/docs-tables.py` writes the table from here)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from moto.rds.models import rds_backends


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
    # The refusal's message for a call's parameters (account, region), or None: accepted.
    refuses: Callable[[dict[str, str], str, str], str | None]
    # False where AWS documents the refusal but not its error code: the code is our choice.
    code_documented: bool = True


def _cluster_snapshot(identifier: str, account: str, region: str):
    """A DB cluster snapshot by identifier or ARN (of any region) in moto's state."""
    parts = identifier.split(":")
    if len(parts) == 7 and parts[0] == "arn":
        region, identifier = parts[3], parts[6]
    return rds_backends[account][region].cluster_snapshots.get(identifier)


def _key_for_unencrypted_cluster_snapshot(params: dict[str, str], account: str, region: str) -> str | None:
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


def _copy_without_the_option_group_it_needs(params: dict[str, str], account: str, region: str) -> str | None:
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


def _invalid_identifier(parameter: str, max_len: int) -> Callable[[dict[str, str], str, str], str | None]:
    """Refuses an identifier parameter outside RDS's rules (moto checks DB snapshot
    identifiers itself, not cluster snapshot ones)."""
    def refuses(params: dict[str, str], account: str, region: str) -> str | None:
        value = params.get(parameter)
        if value is None or (len(value) <= max_len and _IDENTIFIER.match(value)):
            return None
        return (f"The parameter {parameter} is not a valid identifier. Identifiers must begin with a letter; must "
                f"contain only ASCII letters, digits, and hyphens; must be 1 to {max_len} characters; and must not "
                "end with a hyphen or contain two consecutive hyphens.")
    return refuses


RULES = (
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
)
BY_ACTION: dict[str, list[Rule]] = {}
for _rule in RULES:
    BY_ACTION.setdefault(_rule.action, []).append(_rule)


def default_settings() -> dict[str, int]:
    """Each rule's setting: 1, on."""
    return {rule.name: 1 for rule in RULES}


def refusal(action: str, body: bytes, account: str, region: str, settings: dict[str, int]) -> tuple[Rule, str] | None:
    """The first rule that refuses this call (a query-protocol body), with its message."""
    rules = [rule for rule in BY_ACTION.get(action, ()) if settings.get(rule.name, 1)]
    if not rules:
        return None
    params = {name: values[0] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}
    for rule in rules:
        message = rule.refuses(params, account, region)
        if message is not None:
            return rule, message
    return None
