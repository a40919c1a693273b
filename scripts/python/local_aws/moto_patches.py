"""Where moto 5.2.5 differs from AWS in ways the module and the demo meet.

Step Functions: an execution started without a name (as EventBridge starts
them) gets the name `None` in its ARN, and a second such start with the same
input returns the first execution (name idempotency). AWS names it with a
UUID; so does the patch. A Task that starts another state machine
(`arn:aws:states:::states:startExecution.sync:2`, the per-database child
executions) fails in moto with `States.Runtime` ('StateMachineArn'): its
request and response normalisation are left empty, so the ASL's
`StateMachineArn`/`Input`/`Name` never become the API's `stateMachineArn`...
and the answer keeps boto's casing. The patches map both through botocore's
model of the operation, as Step Functions does: PascalCase in the state
machine (`ExecutionArn`, `Output`, `Status`), the API's own names on the wire.
When that start is refused, moto names the error `StepFunctions.<code>Exception`
(`StepFunctions.ExecutionLimitExceededException`); Step Functions names it
`StepFunctions.<code>`: "Use the Retry on StepFunctions.ExecutionLimitExceeded
to ensure your execution is started" (Developer Guide, "Start workflow
executions from a task state"). The patch names it as AWS does.

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

from botocore import xform_name
from botocore.model import OperationModel
from botocore.session import get_session
from moto.awslambda.models import LambdaFunction
from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_original_init = LambdaFunction.__init__
_original_update = LambdaFunction.update_configuration
_original_get = LambdaFunction.get_configuration
_original_start_execution = StepFunctionsParserBackend.start_execution
_original_describe_db_snapshots = RDSResponse.describe_db_snapshots
_original_describe_db_cluster_snapshots = RDSResponse.describe_db_cluster_snapshots
_original_sfn_normalise_parameters = StateTaskServiceSfn._normalise_parameters
_original_sfn_from_error = StateTaskServiceSfn._from_error
_STEPFUNCTIONS_MODEL = get_session().get_service_model("stepfunctions")
_STEPFUNCTIONS_OPERATIONS = {xform_name(name): name for name in _STEPFUNCTIONS_MODEL.operation_names}


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


def _sfn_operation(task: StateTaskServiceSfn, service_action_name: str | None) -> OperationModel:
    action = task._get_boto_service_action(service_action_name)
    return _STEPFUNCTIONS_MODEL.operation_model(_STEPFUNCTIONS_OPERATIONS[action])


def _sfn_normalise_parameters(self: StateTaskServiceSfn, parameters: dict, boto_service_name: str | None = None,
                              service_action_name: str | None = None) -> None:
    # moto's own step first: it turns an object `Input` into the JSON string the API takes.
    _original_sfn_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    self._to_boto_request(parameters, _sfn_operation(self, service_action_name).input_shape)


def _sfn_normalise_response(self: StateTaskServiceSfn, response: Any, boto_service_name: str | None = None,
                            service_action_name: str | None = None) -> None:
    self._from_boto_response(response, _sfn_operation(self, service_action_name).output_shape)


def _sfn_from_error(self: StateTaskServiceSfn, env, ex: Exception):
    event = _original_sfn_from_error(self, env, ex)
    if isinstance(ex, ClientError):
        name = f"StepFunctions.{ex.response['Error']['Code']}"
        event.error_name = CustomErrorName(name)
        event.event_details["taskFailedEventDetails"]["error"] = name
    return event


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
    StateTaskServiceSfn._normalise_parameters = _sfn_normalise_parameters
    StateTaskServiceSfn._normalise_response = _sfn_normalise_response
    StateTaskServiceSfn._from_error = _sfn_from_error
    LambdaFunction.__init__ = _init
    LambdaFunction.update_configuration = _update_configuration
    LambdaFunction.get_configuration = _get_configuration
