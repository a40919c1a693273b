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
SendTaskFailure drops its `cause` in moto; Step Functions records it (API Reference,
SendTaskFailure: "A more detailed explanation of the cause of the failure"), and the
module's wait puts there what failed: the patch passes it on. A `.waitForTaskToken` task
that an execution stopped (StopExecution) was waiting in fails as the wait ends, and moto
then records the execution FAILED; Step Functions keeps it ABORTED: the patch does.
A retried `.waitForTaskToken` task waits on the token of its first attempt in moto, which
that attempt's end closed; here each attempt gets its own (see `_a_token_for_each_attempt`).
A `.waitForTaskToken` task that timed out (or missed its heartbeat) or has ended still
takes moto's SendTaskSuccess (and SendTaskHeartbeat) for its token (which then wakes nothing); Step Functions refuses it
with `TaskTimedOut`, "The task token has either expired or the task associated
with the token has already been closed" (API Reference, SendTaskSuccess). The
patch closes the token when the task's wait for it ends, either way (and an
event moto records with an object in an integer field, seen once under load, is
logged and that field left out: GetExecutionHistory failed on it); and
moto's own `TaskTimedOut` and `TaskDoesNotExist` errors fail to build (they need
a message), so the call answered 500: the patch gives them AWS's code and message.
A Task whose Resource is a Lambda function's ARN reports a refused Invoke as
`Exception` in moto; Step Functions reports it as `Lambda.<code>`: "When Lambda hits
the maximum number of invocations, the error is Lambda.TooManyRequestsException"
(Developer Guide, "Handle Lambda service exceptions"), the error the module's
retriers name. The patch names it as the service integration does (and as AWS does).
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
caller deleting between pages skips nothing). A DB snapshot names no option
group in moto; RDS reports the one it was taken with (`OptionGroupName`), and a
copy made with `OptionGroupName` has that one: the patches keep both. An
option group's options come without `Persistent` and `Permanent`; RDS gives
both (Oracle's `TDE` is both, SQL Server's persistent), and the patches take
them from moto's own copy of RDS's option data (DescribeOptionGroupOptions).
A copy names its source in RDS (`SourceDBSnapshotIdentifier` for a copy from
another account or region, `SourceDBClusterSnapshotArn` for every cluster
copy), which no tag can change: the vault's prune deletes only copies made from
the source account's snapshots. moto names none; the patches record both.
A database's `LatestRestorableTime` is "typically within 5 minutes of the current
time" (RDS User Guide, Restoring a DB instance to a specified time), and there is
none while automated backups are off (retention 0); moto answers the current time
either way. The patches answer the local AWS's clock less the database's lag (5
minutes, or what `POST /_gateway/rds/restorable-lag` set), and nothing at retention 0.
A cluster's `EarliestRestorableTime` (moto: its creation, for ever) follows it: its
retention before the latest, not before its automated backups began (`restorable_window`);
so does a DB instance's `RestoreWindow` in DescribeDBInstanceAutomatedBackups (moto: none).
Turning a DB instance's automated backups on or off (BackupRetentionPeriod from or to
0) without ApplyImmediately waits for its next maintenance window, shown until then in
`PendingModifiedValues` (ModifyDBInstance); moto applied every change at once.
"All read replica DB instances are created with backups disabled"
(CreateDBInstanceReadReplica); moto's replica copies its source's retention: the
patch sets it to 0.

Step Functions keeps at most 25,000 events of a Standard execution's history:
"If the event number 25,000 isn't ExecutionSucceeded, the ExecutionFailed event
is logged and the state machine execution fails because of reaching the
history limit" (Developer Guide, "Avoid reaching the history quota"); AWS names
it `States.Runtime`, "The execution reached the maximum number of history
events (25000)." moto has no limit; the patches apply it (the gateway setting
`sfn_history_limit`), and every event after it is dropped. (A state's output
over 256 KiB is moto's own `States.DataLimitExceeded`.)

The context object's `$$.Execution.StartTime` is a datetime object in moto
(rendered `+00:00` with microseconds where it is rendered at all, and an
execution's output holding it cannot be read back); Step Functions gives ISO
8601 text with milliseconds: "StartTime": "2019-03-26T20:14:13.192Z"
(Developer Guide, "Accessing execution data from the Context object"). The
patch gives the text.

EventBridge: see local_aws/events.py. An ended Standard execution puts its
status change on the default bus; a rule delivers to Lambda and Step Functions
targets there; a disabled rule, or a schedule rule, matches no event (moto
matches both).

CloudWatch Logs: moto ignores CreateLogGroup's `logGroupClass` and answers
DescribeLogGroups without it; CloudWatch Logs keeps it ("If you omit this
parameter, the default of STANDARD is used. The value of logGroupClass can't
be changed after a log group is created", CreateLogGroup) and returns it for
every group. Without it Terraform plans to replace every log group after each
apply. The patches keep it and answer it, STANDARD by default.

Not a difference from AWS but from a single-threaded moto: its ASL parser is an
ANTLR parser, whose generated lexers and parsers share one DFA cache between
instances (antlr/antlr4#4400, #4936), and the gateway parses on many threads at
once (definitions validated by concurrent `terraform plan`s while executions
start). Worse, its Preprocessor keeps the query-language scopes in a list that
is a class attribute, shared by every parse: it checks the list is not empty,
then reads the last entry, which another thread's parse may have popped in
between. Unguarded, a parse now and then failed with `IndexError: list index
out of range` on a valid definition (a module plan in CI). The patches parse
one definition at a time.
"""

from __future__ import annotations

import datetime
import functools
import logging
import threading
import uuid
from typing import Any

from botocore import xform_name
from botocore.model import OperationModel, ServiceModel
from botocore.session import get_session
from moto.awslambda.models import LambdaFunction
from moto.events.models import Rule as EventRule
from moto.events.models import events_backends
from moto.logs.models import LogGroup
from moto.logs.responses import LogsResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.rds import models as rds_models
from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBCluster, DBClusterSnapshot, DBInstance, DBSnapshot, OptionGroup, RDSBackend
from moto.rds.responses import RDSResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.exceptions import AWSError
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType, StateMachineType
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from . import events

_original_init = LambdaFunction.__init__
_original_update = LambdaFunction.update_configuration
_original_get = LambdaFunction.get_configuration
_original_start_execution = StepFunctionsParserBackend.start_execution
_original_describe_db_snapshots = RDSResponse.describe_db_snapshots
_original_describe_db_cluster_snapshots = RDSResponse.describe_db_cluster_snapshots
_original_sfn_normalise_parameters = StateTaskServiceSfn._normalise_parameters
_original_sfn_from_error = StateTaskServiceSfn._from_error
_original_lambda_from_error = StateTaskLambda._from_error
_original_copy_db_snapshot = RDSBackend.copy_db_snapshot
_original_copy_db_cluster_snapshot = RDSBackend.copy_db_cluster_snapshot
_original_terminated = BaseExecutionWorkerCommunication.terminated
_original_execution_details = Execution.get_start_execution_details
_original_environment_init = Environment.__init__
_original_add_event = EventManager.add_event
_original_set_error = Environment.set_error
# Events a Standard execution's history keeps (the gateway's setting sfn_history_limit).
HISTORY_LIMIT = {"events": 25_000}
_original_send_to_targets = EventRule.send_to_targets


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


@functools.cache
def _service_operations(service: str) -> tuple[ServiceModel, dict[str, str]]:
    """botocore's model of a service (read once), and its operations by snake_case name."""
    model = get_session().get_service_model(service)
    return model, {xform_name(name): name for name in model.operation_names}


def _operation(task, boto_service_name: str | None = None, service_action_name: str | None = None) -> OperationModel:
    """The model of the API operation a service integration's task calls."""
    model, operations = _service_operations(task._get_boto_service_name(boto_service_name))
    return model.operation_model(operations[task._get_boto_service_action(service_action_name)])


def _sfn_normalise_parameters(self: StateTaskServiceSfn, parameters: dict, boto_service_name: str | None = None,
                              service_action_name: str | None = None) -> None:
    # moto's own step first: it turns an object `Input` into the JSON string the API takes.
    _original_sfn_normalise_parameters(self, parameters, boto_service_name, service_action_name)
    self._to_boto_request(parameters, _operation(self, boto_service_name, service_action_name).input_shape)


class _TaskTimedOut(AWSError):
    TYPE = "TaskTimedOut"

    def __init__(self):
        super().__init__("The task token has either expired or the task associated with the token has already been closed.")


class _TaskDoesNotExist(AWSError):
    TYPE = "TaskDoesNotExist"

    def __init__(self):
        super().__init__("The task does not exist.")


def _closing_the_token(wait_for_task_token_timeout):
    def wait(self: StateTaskServiceCallback, timeout_seconds: float, callback_endpoint):
        try:
            return wait_for_task_token_timeout(self, timeout_seconds, callback_endpoint)
        finally:
            callback_endpoint.report(CallbackConsumerTimeout())

    return wait


def _a_token_for_each_attempt(evaluate_with_timeout):
    """moto makes a `.waitForTaskToken` task's token once, as the state is entered, and its
    retries wait on that same token, which the attempt before closed as it ended. Each attempt
    here gets a token of its own: a retried task is scheduled again (its own TaskScheduled
    event, its `$$.Task.Token` passed again), and a late answer to an attempt that ended is
    refused (`TaskTimedOut`) rather than ending the next one."""

    def evaluate(self: StateTaskServiceCallback, env):
        retried = env.states.context_object.context_object_data["State"].get("RetryCount", 0) > 0
        if retried and self._is_integration_pattern() and \
                ResourceCondition.WaitForTaskToken in self._supported_integration_patterns:
            env.callback_pool_manager.add(env.states.context_object.update_task_token())
        return evaluate_with_timeout(self, env)

    return evaluate


def _closing_the_token_after_heartbeats(wait_for_task_token_heartbeat):
    def wait(self: StateTaskServiceCallback, env, callback_endpoint, heartbeat_endpoint):
        try:
            return wait_for_task_token_heartbeat(self, env, callback_endpoint, heartbeat_endpoint)
        finally:
            callback_endpoint.report(CallbackConsumerTimeout())

    return wait


def _sfn_normalise_response(self: StateTaskServiceSfn, response: Any, boto_service_name: str | None = None,
                            service_action_name: str | None = None) -> None:
    self._from_boto_response(response, _operation(self, boto_service_name, service_action_name).output_shape)


def _sfn_from_error(self: StateTaskServiceSfn, env, ex: Exception):
    event = _original_sfn_from_error(self, env, ex)
    if isinstance(ex, ClientError):
        name = f"StepFunctions.{ex.response['Error']['Code']}"
        event.error_name = CustomErrorName(name)
        event.event_details["taskFailedEventDetails"]["error"] = name
    return event


def _lambda_from_error(self: StateTaskLambda, env, ex: Exception):
    event = _original_lambda_from_error(self, env, ex)
    if isinstance(ex, ClientError):
        name, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
        event.error_name = CustomErrorName(name)
        event.event_details["lambdaFunctionFailedEventDetails"].update(error=name, cause=cause)
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


def _snapshot_option_group(self: DBSnapshot) -> str | None:
    return self.database.option_group_name


def _copy_db_snapshot(self: RDSBackend, source_db_snapshot_identifier: str, *args,
                      option_group_name: str | None = None, **kwargs) -> DBSnapshot:
    copied = _original_copy_db_snapshot(self, source_db_snapshot_identifier, *args, **kwargs)
    if option_group_name:
        copied.database.option_group_name = option_group_name
    # RDS records where a copy came from: SourceDBSnapshotIdentifier, "The DB snapshot ARN
    # that the DB snapshot was copied from. It only has a value in the case of a
    # cross-account or cross-Region copy" (API Reference, DBSnapshot). moto records nothing.
    arn = source_db_snapshot_identifier.split(":")
    if len(arn) > 4 and (arn[3], arn[4]) != (self.region_name, self.account_id):
        copied.source_db_snapshot_identifier = source_db_snapshot_identifier
    return copied


def _copy_db_cluster_snapshot(self: RDSBackend, source_db_cluster_snapshot_identifier: str, *args,
                              **kwargs) -> DBClusterSnapshot:
    """As RDS, records the source of every copy: SourceDBClusterSnapshotArn, "If the DB
    cluster snapshot was copied from a source DB cluster snapshot, the ARN for the source DB
    cluster snapshot, otherwise, a null value" (API Reference, DBClusterSnapshot)."""
    copied = _original_copy_db_cluster_snapshot(self, source_db_cluster_snapshot_identifier, *args, **kwargs)
    source = source_db_cluster_snapshot_identifier
    if not source.startswith("arn:"):
        source = f"arn:{self.partition}:rds:{self.region_name}:{self.account_id}:cluster-snapshot:{source}"
    copied.source_db_cluster_snapshot_arn = source
    return copied


# RDS: "The latest restorable time for a DB instance is typically within 5 minutes of the
# current time."
TYPICAL_RESTORABLE_LAG = datetime.timedelta(minutes=5)


def _latest_restorable_time(self: DBInstance | DBCluster) -> datetime.datetime | None:
    if not self.backup_retention_period:
        return None
    # rds_models.utcnow is the local AWS's clock (local_aws/clock.py).
    return rds_models.utcnow() - getattr(self, "restorable_lag", TYPICAL_RESTORABLE_LAG)


def restorable_window(database: DBInstance | DBCluster) -> tuple[datetime.datetime, datetime.datetime] | None:
    """(earliest, latest) a point-in-time restore may go to, None with backups off: "any point in
    time before LatestRestorableTime for up to BackupRetentionPeriod days" (RDS API Reference,
    RestoreDBInstanceToPointInTime, RestoreDBClusterToPointInTime), and not before its automated
    backups began (its creation, or when they were last turned on)."""
    latest = database.latest_restorable_time
    if latest is None:
        return None
    since = getattr(database, "backups_since", database.created)
    return max(since, latest - datetime.timedelta(days=database.backup_retention_period)), latest


class _AutomatedBackup:
    """DescribeDBInstanceAutomatedBackups' answer for a DB instance with automated backups on:
    `RestoreWindow` is where a point-in-time restore may go (moto lists only instances that
    have automated snapshots, without a window)."""

    def __init__(self, database: DBInstance, window: tuple[datetime.datetime, datetime.datetime]) -> None:
        self.db_instance_identifier = database.db_instance_identifier
        self.db_instance_arn = database.arn
        self.dbi_resource_id = database.dbi_resource_id
        self.engine = database.engine
        self.allocated_storage = database.allocated_storage
        self.backup_retention_period = database.backup_retention_period
        self.status = "active"
        self.restore_window = {"EarliestTime": window[0], "LatestTime": window[1]}


def _automated_backups(self: RDSBackend, db_instance_identifier: str | None = None,
                       **_: Any) -> list[_AutomatedBackup]:
    # A cluster's members have none of their own: the cluster's are its (DescribeDBClusterAutomatedBackups).
    return [_AutomatedBackup(database, window) for identifier, database in self.databases.items()
            if db_instance_identifier in (None, identifier) and not getattr(database, "db_cluster_identifier", None)
            and (window := restorable_window(database))]


def _earliest_restorable_time(self: DBCluster) -> datetime.datetime | None:
    window = restorable_window(self)
    return window and window[0]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _next_maintenance_window(window: str, after: datetime.datetime) -> datetime.datetime:
    """The start of the next `ddd:hh24:mi-ddd:hh24:mi` window (UTC) after `after`."""
    day, hours, minutes = window.split("-")[0].split(":")
    start = after.replace(hour=int(hours), minute=int(minutes), second=0, microsecond=0)
    start += datetime.timedelta(days=(WEEKDAYS.index(day.lower()) - after.weekday()) % 7)
    return start if start > after else start + datetime.timedelta(days=7)


def _retention_waits_for_the_maintenance_window(modify):
    """ModifyDBInstance, BackupRetentionPeriod: turning automated backups on or off is "applied
    during the next maintenance window unless the ApplyImmediately parameter is enabled";
    "from one non-zero value to another non-zero value, the change is asynchronously applied
    as soon as possible". Until then DescribeDBInstances shows it in PendingModifiedValues."""

    @functools.wraps(modify)
    def modify_db_instance(self: RDSBackend, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> DBInstance:
        database = self.databases.get(db_instance_identifier)
        wanted = db_kwargs.get("backup_retention_period")
        if database is not None and getattr(database, "db_cluster_identifier", None) and wanted is not None:
            # "This setting doesn't apply to Amazon Aurora DB instances. The retention period for
            # automated backups is managed by the DB cluster" (ModifyDBInstance); moto answered 500.
            raise RDSClientError("InvalidParameterCombination", "The requested DB Instance is a member of a DB "
                                 "Cluster. Set the backup retention period for the DB Cluster.")
        if database is not None and db_kwargs.get("apply_immediately"):
            pending = getattr(database, "pending_backup_retention", None)
            database.pending_backup_retention = None
            if pending and wanted is None:
                db_kwargs = {**db_kwargs, "backup_retention_period": pending[0]}
        elif database is not None and wanted is not None:
            database.pending_backup_retention = None
            if (int(wanted) == 0) != (database.backup_retention_period == 0):
                database.pending_backup_retention = (int(wanted), rds_models.utcnow())
                db_kwargs = {k: v for k, v in db_kwargs.items() if k != "backup_retention_period"}
        return modify(self, db_instance_identifier, db_kwargs)
    return modify_db_instance


_moto_retention = DBInstance.backup_retention_period


def _set_retention(self: DBInstance, value: int, since: datetime.datetime | None = None) -> None:
    # When automated backups began: the window of point-in-time restores starts there.
    if value and not self.__dict__.get("_backup_retention_period"):
        self.backups_since = since or rds_models.utcnow()
    _moto_retention.fset(self, value)


def _retention_applied_when_due(self: DBInstance) -> int:
    """The retention, once a change held for the maintenance window has met one (the window
    as it is now: moving it moves the change)."""
    pending = getattr(self, "pending_backup_retention", None)
    window = pending and _next_maintenance_window(self.preferred_maintenance_window, pending[1])
    if pending and window <= rds_models.utcnow():
        self.pending_backup_retention = None
        _set_retention(self, pending[0], since=window)
    return _moto_retention.fget(self)


def _pending_modified_values(self: DBInstance) -> dict[str, int] | None:
    if getattr(self, "db_cluster_identifier", None):
        return None  # a cluster member's retention is the cluster's
    _retention_applied_when_due(self)
    pending = getattr(self, "pending_backup_retention", None)
    return {"BackupRetentionPeriod": pending[0]} if pending else None


def _replica_without_backups(create):
    @functools.wraps(create)
    def create_replica(self: RDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
        replica = create(self, db_kwargs)
        replica.backup_retention_period = 0
        return replica
    return create_replica


def _options_with_flags(self: OptionGroup) -> list[dict[str, Any]]:
    """The options as RDS describes them: with `Persistent` and `Permanent`."""
    known = {option["Name"]: option for option in
             RDSBackend.describe_option_group_options(self.engine_name, self.major_engine_version)}
    return [
        {"OptionName": name,
         "Persistent": bool(known.get(name, {}).get("Persistent")),
         "Permanent": bool(known.get(name, {}).get("Permanent")),
         "OptionSettings": [{"Name": s.get("Name"), "Value": s.get("Value")} for s in settings]}
        for name, settings in self._options.items()
    ]


def _execution_details(self: Execution):
    details = _original_execution_details(self)
    details.start_time = self.start_date.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.start_date.microsecond // 1000:03d}Z"
    return details


class HistoryLimitReached(Exception):
    """Unwinds the state being evaluated once the history is full."""


def _environment_init(self: Environment, *args, **kwargs) -> None:
    _original_environment_init(self, *args, **kwargs)
    # A frame (Map, Parallel) shares its parent's event manager: the one kept knows the root.
    self.event_manager.root_environment = self


# The integer fields of history events' details (API Reference, HistoryEvent).
INTEGER_DETAILS = {"timeoutInSeconds", "heartbeatInSeconds", "length", "index"}


def _without_broken_integers(event_type, event_details):
    """moto once (under load, in the fault matrix) recorded an event whose integer field held
    an object, and GetExecutionHistory then answered 500 for the whole execution. Such a field
    is logged and left out, so that the history stays readable and the log names the event."""
    for details in (event_details or {}).values():
        if not isinstance(details, dict):
            continue
        for key in [k for k in details if k in INTEGER_DETAILS and not isinstance(details[k], int)]:
            logging.getLogger("local_aws").error("moto recorded %s with %s = %r: left out of the history",
                                                 event_type, key, details.pop(key))
    return event_details


def _add_event(self: EventManager, context, event_type, event_details=None, timestamp=None,
               update_source_event_id: bool = True) -> int:
    event_details = _without_broken_integers(event_type, event_details)
    if getattr(self, "history_full", False):
        return len(self._history_event_list)
    root = getattr(self, "root_environment", None)
    limit = HISTORY_LIMIT["events"]
    if (root is None or root.execution_type != StateMachineType.STANDARD
            or len(self._history_event_list) < limit - 1 or event_type == HistoryEventType.ExecutionSucceeded):
        return _original_add_event(self, context, event_type, event_details, timestamp, update_source_event_id)
    details = ExecutionFailedEventDetails(
        error="States.Runtime", cause=f"The execution reached the maximum number of history events ({limit}).")
    _original_add_event(self, context, HistoryEventType.ExecutionFailed, EventDetails(executionFailedEventDetails=details))
    self.history_full = True
    root.set_error(details)
    raise HistoryLimitReached(details["cause"])


def _set_error(self: Environment, error) -> None:
    # Once the history is full its failure stands: moto's own handler would replace it.
    if getattr(self.event_manager, "history_full", False) and isinstance(self._program_state, ProgramError):
        return
    # A stopped execution stays stopped (ABORTED): the task it was waiting in fails as it ends.
    if isinstance(self._program_state, ProgramStopped):
        return
    _original_set_error(self, error)


def _send_task_failure(self: StepFunctionResponse) -> ActionResult:
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
    return EmptyResult()


def _terminated(self: BaseExecutionWorkerCommunication) -> None:
    _original_terminated(self)
    execution = self.execution
    if execution.sm_type == StateMachineType.STANDARD:
        events_backends[execution.account_id][execution.region_name].put_events([events.status_change(execution)])


def _send_to_targets(self: EventRule, original_event: dict, transform_input: bool = True) -> None:
    if self.state != "ENABLED" or not self.event_pattern.get_pattern():
        return
    if not self.event_pattern.matches_event(original_event):
        return
    delivered_here = [t for t in self.targets if t["Arn"].split(":")[2] in ("lambda", "states")]
    for target in delivered_here:
        events.deliver(self.name, self.arn, target, original_event)
    others = [t for t in self.targets if t not in delivered_here]
    if others:  # moto's own deliveries (logs, SQS, buses)
        every, self.targets = self.targets, others
        try:
            _original_send_to_targets(self, original_event, transform_input)
        finally:
            self.targets = every


def _create_log_group(self: LogsResponse) -> str:
    group = self.logs_backend.create_log_group(
        self._get_param("logGroupName"), self._get_param("tags"), kmsKeyId=self._get_param("kmsKeyId"))
    group.log_group_class = self._get_param("logGroupClass") or "STANDARD"
    return ""


_original_log_group_describe = LogGroup.to_describe_dict


def _log_group_describe(self: LogGroup) -> dict[str, Any]:
    return {**_original_log_group_describe(self), "logGroupClass": getattr(self, "log_group_class", "STANDARD")}


def one_parse_at_a_time(parse):
    lock = threading.Lock()

    @functools.wraps(parse)
    def locked(definition: str, *args, **kwargs):
        with lock:
            return parse(definition, *args, **kwargs)
    return locked


def apply() -> None:
    AmazonStateLanguageParser.parse = staticmethod(one_parse_at_a_time(AmazonStateLanguageParser.parse))
    LogsResponse.create_log_group = _create_log_group
    LogGroup.to_describe_dict = _log_group_describe
    Environment.__init__ = _environment_init
    EventManager.add_event = _add_event
    Environment.set_error = _set_error
    StepFunctionResponse.send_task_failure = _send_task_failure
    BaseExecutionWorkerCommunication.terminated = _terminated
    Execution.get_start_execution_details = _execution_details
    EventRule.send_to_targets = _send_to_targets
    DBSnapshot.option_group_name = property(_snapshot_option_group)
    RDSBackend.copy_db_snapshot = _copy_db_snapshot
    RDSBackend.copy_db_cluster_snapshot = _copy_db_cluster_snapshot
    OptionGroup.options = property(_options_with_flags)
    DBInstance.latest_restorable_time = property(_latest_restorable_time)
    DBCluster.latest_restorable_time = property(_latest_restorable_time)
    # moto set it once, at creation; it moves with the clock (the setter drops moto's value).
    DBCluster.earliest_restorable_time = property(_earliest_restorable_time, lambda _self, _value: None)
    RDSBackend.create_db_instance_read_replica = _replica_without_backups(RDSBackend.create_db_instance_read_replica)
    RDSBackend.modify_db_instance = _retention_waits_for_the_maintenance_window(RDSBackend.modify_db_instance)
    DBInstance.backup_retention_period = property(_retention_applied_when_due, _set_retention)
    RDSBackend.describe_db_instance_automated_backups = _automated_backups
    DBInstance.pending_modified_values = property(_pending_modified_values)
    RDSResponse.describe_db_snapshots = _paged(_original_describe_db_snapshots, "DBSnapshots", "db_snapshot_identifier")
    RDSResponse.describe_db_cluster_snapshots = _paged(
        _original_describe_db_cluster_snapshots, "DBClusterSnapshots", "db_cluster_snapshot_identifier"
    )
    StepFunctionsParserBackend.start_execution = _start_execution
    StateTaskServiceSfn._normalise_parameters = _sfn_normalise_parameters
    StateTaskServiceSfn._normalise_response = _sfn_normalise_response
    StateTaskServiceSfn._from_error = _sfn_from_error
    StateTaskLambda._from_error = _lambda_from_error
    parser_models.TaskTimedOut, parser_models.TaskDoesNotExist = _TaskTimedOut, _TaskDoesNotExist
    StateTaskServiceCallback._wait_for_task_token_timeout = _closing_the_token(
        StateTaskServiceCallback._wait_for_task_token_timeout)
    StateTaskServiceCallback._wait_for_task_token_heartbeat = _closing_the_token_after_heartbeats(
        StateTaskServiceCallback._wait_for_task_token_heartbeat)
    StateTaskServiceCallback._evaluate_with_timeout = _a_token_for_each_attempt(
        StateTaskServiceCallback._evaluate_with_timeout)
    LambdaFunction.__init__ = _init
    LambdaFunction.update_configuration = _update_configuration
    LambdaFunction.get_configuration = _get_configuration
