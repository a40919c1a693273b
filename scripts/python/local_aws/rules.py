"""What AWS refuses and moto accepts, where the module meets it. Each rule is
one refusal AWS documents, answered by the gateway before moto sees the call,
in the shape the caller's protocol expects. Every rule is on by default; a
setting of its name (`PUT /_gateway/settings {"<name>": 0}`) turns it off, to
show what the code would meet without it. docs/local-aws.md lists them
(`scripts/docs-tables.py` writes the table from here)."""

from __future__ import annotations

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
