"""What the baseline handlers share, read from the same environment variables as the Rust functions."""

from __future__ import annotations

import os
from datetime import datetime

MANAGED_BY = "database-backup:managed-by"
SOURCE_DB = "database-backup:source-db"
EXECUTION = "database-backup:execution"
COPIED_FROM = "database-backup:copied-from"

PROJECT = os.environ["PROJECT_NAME"]
ENVIRONMENT = os.environ["ENVIRONMENT"]
INSTANCE = os.environ["BACKUP_INSTANCE"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def snapshot_id(db_identifier: str, started: str) -> str:
    return f"{db_identifier}-{parse_time(started):%Y%m%d-%H%M%S}"


def snapshot_tags(db_identifier: str, execution_id: str) -> list[dict[str, str]]:
    return [
        {"Key": MANAGED_BY, "Value": INSTANCE},
        {"Key": SOURCE_DB, "Value": db_identifier},
        {"Key": EXECUTION, "Value": execution_id},
        {"Key": "Project", "Value": PROJECT},
        {"Key": "Environment", "Value": ENVIRONMENT},
    ]


def tags_of(snapshot: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}


def room_for_snapshot(rds, quota_name: str) -> None:
    quotas = rds.describe_account_attributes()["AccountQuotas"]
    for quota in quotas:
        if quota["AccountQuotaName"] == quota_name and quota["Used"] >= quota["Max"]:
            raise RuntimeError(f"{quota_name} quota full: {quota['Used']} of {quota['Max']}")
