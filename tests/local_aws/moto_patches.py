"""Where moto 5.2.5 differs from AWS in ways the module and the demo meet.

Step Functions: an execution started without a name (as EventBridge starts
them) gets the name `None` in its ARN, and a second such start with the same
input returns the first execution (name idempotency). AWS names it with a
UUID; so does the patch.

Lambda: moto drops a Lambda function's `LoggingConfig`: Terraform then plans a
change to every function after each apply, and the function never learns its
log format. These patches keep it, answer it as Lambda does (default: Text,
log group /aws/lambda/<name>), and the gateway passes its format to the
function's environment as AWS_LAMBDA_LOG_FORMAT, which Lambda sets too.

RDS: moto answers DescribeDBSnapshots and DescribeDBClusterSnapshots in one
page whatever MaxRecords says. RDS pages them (MaxRecords 20 to 100, default
100, with a Marker), and callers' call counts depend on it: the patches page,
in identifier order, the Marker naming the next page's first snapshot (so a
caller deleting between pages skips nothing).
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_original_init = LambdaFunction.__init__
_original_update = LambdaFunction.update_configuration
_original_get = LambdaFunction.get_configuration
_original_start_execution = StepFunctionsParserBackend.start_execution
_original_describe_db_snapshots = RDSResponse.describe_db_snapshots
_original_describe_db_cluster_snapshots = RDSResponse.describe_db_cluster_snapshots


def logging_config(function: LambdaFunction) -> dict[str, str]:
    given = getattr(function, "_logging_config", None) or {}
    return {
        "LogFormat": given.get("LogFormat", "Text"),
        "LogGroup": given.get("LogGroup", f"/aws/lambda/{function.function_name}"),
        **{k: v for k, v in given.items() if k in ("ApplicationLogLevel", "SystemLogLevel")},
    }


def _init(self: LambdaFunction, account_id: str, spec: dict[str, Any], *args, **kwargs) -> None:
    _original_init(self, account_id, spec, *args, **kwargs)
    self._logging_config = dict(spec.get("LoggingConfig") or {})


def _update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
    if "LoggingConfig" in config_updates:
        self._logging_config = dict(config_updates["LoggingConfig"] or {})
    return _original_update(self, config_updates)


def _get_configuration(self: LambdaFunction, *args, **kwargs) -> dict[str, Any]:
    return {**_original_get(self, *args, **kwargs), "LoggingConfig": logging_config(self)}


def _start_execution(self, state_machine_arn: str, name: str | None = None, *args, **kwargs):
    return _original_start_execution(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)


def _paged(original, key: str, identifier: str):
    def describe(self: RDSResponse) -> ActionResult:
        size = min(max(int(self.params.get("MaxRecords") or 100), 20), 100)
        marker = self.params.get("Marker") or ""
        items = sorted((i for i in original(self).result[key] if getattr(i, identifier) >= marker),
                       key=lambda i: getattr(i, identifier))
        page = {key: items[:size]}
        if len(items) > size:
            page["Marker"] = getattr(items[size], identifier)
        return ActionResult(page)

    return describe


def apply() -> None:
    RDSResponse.describe_db_snapshots = _paged(_original_describe_db_snapshots, "DBSnapshots", "db_snapshot_identifier")
    RDSResponse.describe_db_cluster_snapshots = _paged(
        _original_describe_db_cluster_snapshots, "DBClusterSnapshots", "db_cluster_snapshot_identifier"
    )
    StepFunctionsParserBackend.start_execution = _start_execution
    LambdaFunction.__init__ = _init
    LambdaFunction.update_configuration = _update_configuration
    LambdaFunction.get_configuration = _get_configuration
