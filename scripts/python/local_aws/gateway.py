"""The gateway: a WSGI application in front of moto's server application.

Every AWS call goes through it. It counts calls per action, applies injected
faults, answers the Lambda Invoke API by running the function's own
`bootstrap`, answers the calls moto lacks, and passes everything else to moto.
Its control API lives under `/_gateway/` (see `CONTROL_HELP`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.awslambda.utils import get_backend as lambda_backend
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rds.models import rds_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.stepfunctions.responses import get_backend as stepfunctions_backend
from werkzeug.test import run_wsgi_app
from werkzeug.wrappers import Request, Response

from . import accounts, alarms, asl, clock, databases, events, moto_patches, operations, rules, scheduler
from .clock import CLOCK
from .faults import FaultSpecError, FaultTable
from .lambda_env import (
    MAX_PAYLOAD_BYTES,
    CodeError,
    EnvironmentPool,
    FunctionSpec,
    InvokeResult,
    sdk_environment,
)

log = logging.getLogger("local_aws")

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
# Lambda's calls that set a function's execution role and VPC (the rules read both from the body).
LAMBDA_CONFIGURING = {("POST", re.compile(r"^/2015-03-31/functions/?$")): "CreateFunction",
                      ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/configuration/?$")): "UpdateFunctionConfiguration"}
# A path-style S3 request on a bucket itself (PUT without a sub-resource: CreateBucket).
S3_BUCKET_PATH = re.compile(r"^/[^/]+/?$")
# EventBridge Scheduler's REST paths: a schedule or a group, by name.
SCHEDULER_PATH = re.compile(r"/(schedules|schedule-groups)/([^/]+)")
SCHEDULER_ACTIONS = {("POST", "schedules"): "CreateSchedule", ("GET", "schedules"): "GetSchedule",
                     ("PUT", "schedules"): "UpdateSchedule", ("DELETE", "schedules"): "DeleteSchedule",
                     ("POST", "schedule-groups"): "CreateScheduleGroup", ("GET", "schedule-groups"): "GetScheduleGroup",
                     ("DELETE", "schedule-groups"): "DeleteScheduleGroup"}
# moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for signs with this key.
INTERPRETER_ACCESS_KEY = "ak"
# The interpreter's own tracking of a `.sync` child (moto polls DescribeExecution once,
# without retries; AWS tracks it with the managed EventBridge rule and its own calls).
# Faults meant for notify's DescribeExecution must not fail that poll; the start of
# the child can be faulted like any call of the module.
INTERPRETER_ONLY = {"states:DescribeExecution"}
CONTROL_HELP = {
    "POST /_gateway/faults": "add a fault: {action, count, error_code, http_status, message, replace, reset, "
    "delay_seconds, region, match}",
    "GET|DELETE /_gateway/faults": "list or clear the faults",
    "GET|DELETE /_gateway/calls": "calls seen per `service:Action`, or reset the counts (and the times)",
    "GET /_gateway/calls/time": "{busy_seconds}: how long at least one call was being answered (a caller's wait on the emulator)",
    "GET /_gateway/invocations": "Lambda invocations: function, duration, outcome",
    "GET /_gateway/lambda/throttles": "{function: invocations refused over its reserved concurrency}",
    "POST /_gateway/slack/<any path>": "the local Slack webhook: records the message, answers `ok`",
    "GET|DELETE /_gateway/slack": "the messages received, or clear them",
    "GET|PUT /_gateway/settings": "snapshot_limit, cluster_snapshot_limit (DescribeAccountAttributes); "
    "slack_status, slack_delay_seconds (how the webhook answers); lambda_concurrency_quota (the account's "
    "concurrent executions, default 1000); sfn_history_limit (events a Standard execution keeps, default "
    "25000); clock_scale (simulated seconds per real second, 0: instant, see local_aws/clock.py) and the "
    "duration model of local_aws/operations.py; rds_request_rate, rds_request_burst (RDS's token bucket, "
    "rate 0: none); copy_limit, cluster_copy_limit, export_limit; each refusal of local_aws/rules.py "
    "(1 on, 0 off); iam_authorization (sts:AssumeRole held to trust policies, assumed roles to their "
    "policies, local_aws/accounts.py; 1 on, 0 off)",
    "GET /_gateway/clock": "{now, scale, rds_throttled}: the simulated time, its scale, the RDS requests throttled",
    "GET /_gateway/cloudwatch/metric-data?region=R": "every data point put (PutMetricData), with its exact dimensions",
    "POST /_gateway/cloudwatch/evaluate-alarms?region=R[&at=T]": "evaluate every metric alarm at the clock's now "
    "(or an earlier minute T), as CloudWatch does every minute (local_aws/alarms.py); run the actions of each "
    "state change; each alarm's name, state, reason and whether it changed",
    "GET /_gateway/s3/objects?bucket=B": "what a bucket holds (key, size, encryption, KMS key), read past its policy",
    "GET /_gateway/sns/published?region=R": "every message published to every topic, in order",
    "POST /_gateway/rds/snapshot-created": "{region, snapshot_id, created}: backdate a snapshot (for retention)",
    "POST /_gateway/rds/restorable-lag": "{region, db_identifier, minutes}: how far a database's LatestRestorableTime "
                                         "lags the clock (default 5)",
    "POST /_gateway/rds/restore-fails": "{region, db_identifier, status}: the next restore to that identifier "
                                        "(prefix*: to any starting so) ends in status (incompatible-restore, "
                                        "failed...) instead of available",
    "POST /_gateway/rds/snapshots": "{region, snapshots: [{db_instance_identifier, snapshot_id, created, tags}]}: "
    "seed manual snapshots in bulk (benchmarks), without counting as RDS calls",
    "POST /_gateway/events/fire": "{rule, region?, account?}: fire a schedule rule now; what each target was handed "
    "(and the execution a state machine target started)",
    "GET /_gateway/scheduler": "{fired}: the one-time schedules fired so far (local_aws/scheduler.py)",
    "GET|DELETE /_gateway/events": "what EventBridge rules delivered (rule, target, input, at), or forget it",
    "POST /_gateway/reset": "forget everything: moto's state, faults, counters, messages, environments",
}


@dataclass
class AwsCall:
    service: str
    region: str
    account: str
    protocol: str  # query, json or rest
    action: str
    body: bytes
    # Made by moto's state machine interpreter itself (its service integrations sign
    # with the access key `ak`): the `.sync:2` task's StartExecution, and its polling.
    interpreter: bool = False
    # A REST call's parameters from its path (a query call's are in its body).
    path_params: dict[str, str] | None = None
    access_key: str = ""

    @property
    def name(self) -> str:
        return f"{self.service}:{self.action}"

    def params(self) -> dict[str, str]:
        """The call's parameters, where the rules read them."""
        if self.protocol == "query":
            return {name: values[0] for name, values in parse_qs(self.body.decode("utf-8", "replace")).items()}
        return self.path_params or {}

    @classmethod
    def parse(cls, request: Request, body: bytes) -> AwsCall | None:
        found = CREDENTIAL.search(request.headers.get("Authorization", "")) or CREDENTIAL.search(
            "Credential=" + request.args.get("X-Amz-Credential", "")
        )
        if not found:
            return None
        access_key, region, service = found.groups()
        account = accounts.account_of_key(access_key) or get_account_id_from(access_key)
        interpreter = access_key == INTERPRETER_ACCESS_KEY
        target = request.headers.get("X-Amz-Target")

        def call(protocol: str, action: str, path_params: dict[str, str] | None = None) -> AwsCall:
            return cls(service, region, account, protocol, action, body, interpreter, path_params, access_key)

        if target:
            return call("json", target.rsplit(".", 1)[-1])
        form = parse_qs(body.decode("utf-8", "replace")) if body else {}
        action = (form.get("Action") or request.args.getlist("Action") or [None])[0]
        if action:
            return call("query", action)
        if service == "lambda" and request.method == "POST" and LAMBDA_INVOKE.match(request.path):
            return call("rest", "Invoke")
        configuring = next((name for (method, path), name in LAMBDA_CONFIGURING.items()
                            if service == "lambda" and request.method == method and path.match(request.path)), None)
        if configuring:
            try:
                document = json.loads(body or b"{}")
            except ValueError:
                document = {}
            named = request.path.split("/")
            return call("rest", configuring, {"FunctionName": document.get("FunctionName") or (named + ["", "", "", ""])[3],
                                              "Role": document.get("Role") or "",
                                              "VpcConfig": json.dumps(document.get("VpcConfig") or {})})
        if service == "s3" and request.method == "PUT" and S3_BUCKET_PATH.match(request.path) and not request.args:
            return call("rest", "CreateBucket", {"Bucket": request.path.strip("/")})
        scheduler = SCHEDULER_PATH.fullmatch(request.path) if service == "scheduler" else None
        if scheduler and (request.method, scheduler.group(1)) in SCHEDULER_ACTIONS:
            return call("rest", SCHEDULER_ACTIONS[request.method, scheduler.group(1)],
                        {"Name": unquote(scheduler.group(2))})
        return call("rest", f"{request.method} {request.path}")


def aws_error(call: AwsCall, status: int, code: str, message: str, members: dict | None = None) -> Response:
    """An error in the shape the caller's protocol expects; `members`: the error's own
    fields besides its message, in a JSON protocol's document (Lambda's `Reason`)."""
    request_id = str(uuid.uuid4())
    if call.service == "ec2":  # the EC2 query protocol's own error document
        body = (
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"</Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return Response(body, status, {"Content-Type": "text/xml;charset=UTF-8"})
    if call.protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type>"
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Response(body, status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id})
    if call.service == "s3":  # REST-XML: the error document is the root
        body = f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        return Response(body, status, {"Content-Type": "application/xml", "x-amz-request-id": request_id})
    document = {"__type": code, "message": message} if call.protocol == "json" else {"Type": "User", "message": message}
    document.update(members or {})
    return Response(
        json.dumps(document),
        status,
        {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
    )


def reset_connection(environ) -> None:
    """Drops the caller's connection with a TCP reset, answering nothing, the way
    a load balancer or a NAT that lost the flow does."""
    connection = environ["werkzeug.socket"]
    # Detached, so the server's own file objects cannot write to (or close) the descriptor afterwards.
    dropped = socket.socket(fileno=connection.detach())
    dropped.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    dropped.close()
    # The server treats this as a connection the client dropped: nothing logged, nothing sent.
    raise ConnectionResetError("injected fault: connection reset")


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """The length of the union of time spans."""
    total, covered_until = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > covered_until:
            total += end - max(start, covered_until)
            covered_until = end
    return total


class Gateway:
    def __init__(self, state_dir: Path, port: int, snapshot_limit: int = 100):
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.faults = FaultTable()
        self.schedules = scheduler.OneTimeSchedules()
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        # When each call was being answered (perf_counter start, end): overlapping calls wait on
        # each other (moto answers one at a time), so their busy time is the union of these.
        self.call_spans: list[tuple[float, float]] = []
        self.invocations: list[dict] = []
        self.slack_messages: list[dict] = []
        self.snapshot_limit = snapshot_limit
        self.settings = self.default_settings(snapshot_limit)
        self._apply_settings()
        self.lambdas = EnvironmentPool(state_dir / "lambda", {**sdk_environment(f"http://127.0.0.1:{port}"),
                                                              **databases.function_environment()})
        moto_api_backend.set_config(MOTO_CONFIG)
        moto_patches.apply()
        alarms.apply()
        clock.apply()
        operations.apply()
        accounts.apply()
        self.rds_requests = TokenBuckets(lambda: self.settings)
        self.reservations = Reservations()
        self.ruled_calls = threading.Lock()
        events.configure(f"http://127.0.0.1:{port}")
        self.emulated = {
            "lambda:Invoke": self.invoke_lambda,
            "rds:DescribeAccountAttributes": self.describe_account_attributes,
            "states:ValidateStateMachineDefinition": self.validate_state_machine_definition,
            "states:ListStateMachineVersions": self.list_state_machine_versions,
        }

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data(cache=True)
        # moto reads the body again from the environment.
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = False
        if request.path.startswith("/_gateway/") or request.path == "/_gateway":
            response = self.control(request, body)
        else:
            response = self.aws(environ, request, body)
        return response(environ, start_response)

    def aws(self, environ, request: Request, body: bytes) -> Response:
        call = AwsCall.parse(request, body)
        if call is None:
            return self.forward(environ)
        if accounts.account_of_key(call.access_key):
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = call.account  # moto's own way to name the account
        started = time.perf_counter()
        try:
            return self.answer(environ, request, call)
        finally:  # a call whose connection a fault reset counts too
            with self.lock:
                self.calls[call.name] += 1
                self.call_spans.append((started, time.perf_counter()))

    def answer(self, environ, request: Request, call: AwsCall) -> Response:
        request_text = f"{request.full_path}\n{call.body.decode('utf-8', 'replace')}"
        own_poll = call.interpreter and call.name in INTERPRETER_ONLY
        fault = None if own_poll else self.faults.take(call.name, call.region, request_text)
        if fault is not None and fault.delay_seconds:
            log.info("fault: %s answered %s s late", call.name, fault.delay_seconds)
            time.sleep(fault.delay_seconds)
        if fault is not None and fault.reset:
            log.info("fault: %s connection reset", call.name)
            reset_connection(environ)
        if fault is not None and fault.error_code is not None:
            log.info("fault: %s answered %s %s", call.name, fault.http_status, fault.error_code)
            return aws_error(call, fault.http_status, fault.error_code, fault.message)
        if self.settings["iam_authorization"]:
            caller = accounts.caller_of(call.access_key, call.account, call.region)
            denied = None
            if call.name == "sts:AssumeRole" or caller.role_arn is not None:
                params = call.params()
                denied = (accounts.assume_role_refusal(caller, params, call.region) if call.name == "sts:AssumeRole"
                          else None) or accounts.denial(caller, call.service, call.action, params, call.region)
            if denied is not None:
                log.info("denied: %s (%s)", call.name, caller.principal)
                # The query protocol's services (STS, RDS, IAM) answer AccessDenied, the JSON ones
                # (KMS, Step Functions, ...) AccessDeniedException, as their API references list.
                if call.protocol == "query":
                    return aws_error(call, 403, "AccessDenied", denied)
                return aws_error(call, 400, "AccessDeniedException", denied)
        if call.service == "rds" and not call.interpreter and not self.rds_requests.take(call.account, call.region):
            log.info("throttled: %s (RDS request rate)", call.name)
            return aws_error(call, 400, "Throttling", "Rate exceeded")
        # An RDS call is answered at one instant of the clock (see Clock.one_instant).
        with CLOCK.one_instant() if call.service == "rds" else contextlib.nullcontext():
            if call.name in rules.BY_ACTION:
                # A rule that counts (running exports, copies in progress) and the call it lets
                # through are one step, as on AWS: two calls at once cannot both take the last slot.
                with self.ruled_calls:
                    refused = rules.refusal(call.name, call.params(), call.account, call.region, self.settings)
                    response = None if refused else self.forward(environ)
                if refused is not None:
                    rule, message = refused
                    log.info("rule %s: %s refused with %s", rule.name, call.name, rule.code)
                    return aws_error(call, rule.status, rule.code, message)
            elif call.service == "scheduler":
                response = self.schedule(environ, call)
            else:
                handler = self.emulated.get(call.name)
                response = handler(call, request) if handler else self.forward(environ)
        if fault is not None and fault.replace is not None:
            text = response.get_data(as_text=True)
            response.set_data(text.replace(fault.replace[0], fault.replace[1]))
            log.info("fault: %s response rewritten", call.name)
        return response

    def schedule(self, environ, call: AwsCall) -> Response:
        """EventBridge Scheduler: refused as AWS refuses, and one-time schedules fired (local_aws/scheduler.py)."""
        refused = scheduler.refusal(call.action, call.params().get("Name", ""), call.body)
        if refused is not None:
            log.info("scheduler: %s refused: %s", call.action, refused)
            return aws_error(call, 400, "ValidationException", refused)
        response = self.forward(environ)
        if response.status_code == 200 and call.action == "CreateSchedule":
            self.schedules.created(call.account, call.region, call.params()["Name"], call.body)
        return response

    def forward(self, environ) -> Response:
        app_iter, status, headers = run_wsgi_app(self.moto, environ, buffered=True)
        return Response(app_iter, status, headers)

    # Lambda.
    def invoke_lambda(self, call: AwsCall, request: Request) -> Response:
        name = unquote(LAMBDA_INVOKE.match(request.path).group("name"))
        try:
            function = lambda_backend(call.account, call.region).get_function(name, request.args.get("Qualifier"))
        except Exception as err:  # noqa: BLE001 - moto's own Lambda errors carry their status and code
            return aws_error(call, getattr(err, "code", 404), getattr(err, "error_type", "ResourceNotFoundException"),
                             getattr(err, "message", str(err)))
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if len(call.body) > MAX_PAYLOAD_BYTES:
            return aws_error(call, 413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes")
        if invocation_type == "DryRun":
            return Response(status=204)
        spec = FunctionSpec(
            arn=function.function_arn,
            name=function.function_name,
            region=call.region,
            handler=function.handler,
            code_sha256=function.code_sha_256,
            environment=tuple(sorted({
                **{k: str(v) for k, v in (function.environment_vars or {}).items()},
                "AWS_LAMBDA_LOG_FORMAT": moto_patches.logging_config(function)["LogFormat"],
            }.items())),
            timeout_seconds=int(function.timeout),
            memory_mb=int(function.memory_size),
            credentials=accounts.execution_role_keys(function.role, call.region),
        )
        reserved = function.reserved_concurrency
        if invocation_type == "Event":
            threading.Thread(target=self._run_queued, args=(spec, function.code_bytes, call.body, reserved),
                             daemon=True).start()
            return Response(status=202, headers={"x-amzn-RequestId": str(uuid.uuid4())})
        if not self.reservations.enter(spec.arn, reserved):
            log.info("lambda %s throttled: %s in flight, its reserved concurrency", spec.name, reserved)
            return aws_error(call, 429, "TooManyRequestsException", "Rate Exceeded.",
                             {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
        try:
            result = self._run(spec, function.code_bytes, call.body)
        finally:
            self.reservations.leave(spec.arn)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail).decode()
        return Response(result.payload, 200, headers)

    def _run_queued(self, spec: FunctionSpec, code_bytes: bytes, payload: bytes, reserved) -> None:
        """An asynchronous invocation: Lambda queues the event and, while the function is
        throttled, "returns the event to the queue and tries to run the function again for
        up to 6 hours": here it waits for the reservation. "If the function returns an error,
        by default Lambda attempts to run it two more times, with a one-minute wait between
        the first two attempts, and two minutes between the second and third attempts"
        (Lambda Developer Guide, "How Lambda handles errors and retries with asynchronous
        invocation"): so it does here, on the clock."""
        for attempt, wait_before in enumerate((0, 60, 120)):
            CLOCK.sleep(wait_before)
            if not self.reservations.enter(spec.arn, reserved, wait_seconds=6 * 3600):
                log.info("lambda %s: event dropped after 6 hours throttled", spec.name)
                return
            try:
                result = self._run(spec, code_bytes, payload)
            finally:
                self.reservations.leave(spec.arn)
            if result.error_type is None:
                return
            log.info("lambda %s: asynchronous attempt %d failed with %s", spec.name, attempt + 1, result.error_type)

    def _run(self, spec: FunctionSpec, code_bytes: bytes, payload: bytes) -> InvokeResult:
        started = time.time()
        try:
            code_dir = self.lambdas.code.unpack(code_bytes)
        except (CodeError, ValueError) as err:
            body = json.dumps({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": str(err)}).encode()
            result = InvokeResult(body, "Unhandled", "Runtime.InvalidEntrypoint", 0.0, cold_start=True)
        else:
            result = self.lambdas.invoke(spec, code_dir, payload)
        record = {
            "function": spec.name,
            "started": started,
            "duration_ms": round(result.duration_ms, 1),
            "cold_start": result.cold_start,
            "outcome": result.error_type or "ok",
            # What it answered, for tests that read a function's outcome (cut short: fleets).
            "output": result.payload[:500].decode("utf-8", "replace"),
        }
        with self.lock:
            self.invocations.append(record)
        log.info("lambda %s %s in %.0f ms%s", spec.name, record["outcome"], record["duration_ms"],
                 " (cold start)" if record["cold_start"] else "")
        return result

    # Calls moto does not implement.
    def describe_account_attributes(self, call: AwsCall, _request: Request) -> Response:
        backend = rds_backends[call.account][call.region]
        manual = sum(1 for s in list(backend.database_snapshots.values()) if s.snapshot_type == "manual")
        manual_cluster = sum(1 for s in list(backend.cluster_snapshots.values()) if s.snapshot_type == "manual")
        quotas = [
            ("DBInstances", len(backend.databases), 40),
            ("DBClusters", len(backend.clusters), 40),
            ("ManualSnapshots", manual, self.settings["snapshot_limit"]),
            ("ManualClusterSnapshots", manual_cluster, self.settings["cluster_snapshot_limit"]),
        ]
        members = "".join(
            f"<AccountQuota><AccountQuotaName>{name}</AccountQuotaName><Used>{used}</Used><Max>{limit}</Max></AccountQuota>"
            for name, used, limit in quotas
        )
        body = (
            '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
            f"<DescribeAccountAttributesResult><AccountQuotas>{members}</AccountQuotas></DescribeAccountAttributesResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
            "</DescribeAccountAttributesResponse>"
        )
        return Response(body, 200, {"Content-Type": "text/xml"})

    def validate_state_machine_definition(self, call: AwsCall, _request: Request) -> Response:
        try:
            definition = json.loads(call.body)["definition"]
        except (ValueError, KeyError, TypeError):
            return aws_error(call, 400, "ValidationException", "definition is required")
        diagnostics = [d.as_api() for d in asl.check(definition)]
        document = {"result": "FAIL" if diagnostics else "OK", "diagnostics": diagnostics, "truncated": False}
        return Response(json.dumps(document), 200, {"Content-Type": "application/x-amz-json-1.0"})

    def list_state_machine_versions(self, call: AwsCall, _request: Request) -> Response:
        try:
            arn = json.loads(call.body)["stateMachineArn"]
            machine = stepfunctions_backend(call.account, call.region).describe_state_machine(arn)
        except (ValueError, KeyError, TypeError):
            return aws_error(call, 400, "ValidationException", "stateMachineArn is required")
        except Exception as err:  # noqa: BLE001 - moto's StateMachineDoesNotExist and friends
            return aws_error(call, 400, getattr(err, "error_type", "StateMachineDoesNotExist"), str(err))
        versions = [
            {"stateMachineVersionArn": v.arn, "creationDate": _epoch(v.creation_date)}
            for v in sorted(machine.versions.values(), key=lambda v: -v.version)
        ]
        return Response(json.dumps({"stateMachineVersions": versions}), 200,
                        {"Content-Type": "application/x-amz-json-1.0"})

    # The control API.
    def control(self, request: Request, body: bytes) -> Response:
        route = request.path.removeprefix("/_gateway").strip("/")
        method = request.method
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
        if route.startswith("slack") and route != "slack" and method == "POST":
            return self._slack_received(route, body)
        if (route, method) == ("faults", "POST"):
            try:
                fault = self.faults.add(document)
            except FaultSpecError as err:
                return _json({"error": str(err)}, 400)
            return _json({"id": fault.id}, 201)
        if (route, method) == ("faults", "GET"):
            return _json(self.faults.list())
        if (route, method) == ("faults", "DELETE"):
            self.faults.clear()
            return _json({})
        with self.lock:
            if (route, method) == ("calls", "GET"):
                return _json(dict(self.calls))
            if (route, method) == ("calls/time", "GET"):
                return _json({"busy_seconds": busy_seconds(self.call_spans)})
            if (route, method) == ("calls", "DELETE"):
                self.calls.clear()
                self.call_spans.clear()
                return _json({})
            if (route, method) == ("invocations", "GET"):
                return _json(self.invocations)
            if (route, method) == ("lambda/throttles", "GET"):
                return _json(dict(self.reservations.throttled))
            if (route, method) == ("slack", "GET"):
                return _json(self.slack_messages)
            if (route, method) == ("slack", "DELETE"):
                self.slack_messages.clear()
                return _json({})
            if (route, method) == ("settings", "GET"):
                return _json(self.settings)
            if (route, method) == ("clock", "GET"):
                return _json({"now": CLOCK.now().isoformat(), "scale": CLOCK.scale,
                              "rds_throttled": self.rds_requests.throttled})
        if (route, method) == ("settings", "PUT"):
            return self._update_settings(document)
        if (route, method) == ("cloudwatch/metric-data", "GET"):
            return _json(self._metric_data(request.args.get("region", "us-east-1")))
        if (route, method) == ("cloudwatch/evaluate-alarms", "POST"):
            at = request.args.get("at")
            return _json(alarms.evaluate(DEFAULT_ACCOUNT_ID, request.args.get("region", "us-east-1"),
                                         datetime.fromisoformat(at) if at else None))
        if (route, method) == ("s3/objects", "GET"):
            return self._s3_objects(request.args.get("bucket", ""))
        if (route, method) == ("sns/published", "GET"):
            return _json(self._sns_published(request.args.get("region", "us-east-1")))
        if (route, method) == ("rds/snapshot-created", "POST"):
            return self._backdate_snapshot(document)
        if (route, method) == ("rds/restorable-lag", "POST"):
            return self._set_restorable_lag(document)
        if (route, method) == ("rds/restore-fails", "POST"):
            return self._fail_next_restore(document)
        if (route, method) == ("rds/snapshots", "POST"):
            return self._seed_snapshots(document)
        if (route, method) == ("scheduler", "GET"):
            return _json({"fired": self.schedules.fired()})
        if (route, method) == ("events", "GET"):
            return _json(events.delivered())
        if (route, method) == ("events", "DELETE"):
            events.clear()
            return _json({})
        if (route, method) == ("events/fire", "POST"):
            return self._fire_rule(document or {})
        if (route, method) == ("reset", "POST"):
            self.reset()
            return _json({})
        return _json({"error": f"unknown control call {method} /_gateway/{route}", "calls": CONTROL_HELP}, 404)

    @staticmethod
    def _fire_rule(document: dict) -> Response:
        try:
            return _json(events.fire(document.get("account") or DEFAULT_ACCOUNT_ID, document.get("region", "us-east-1"),
                                     document["rule"]))
        except KeyError:
            return _json({"error": "name the rule: {rule, region?, account?}"}, 400)
        except ValueError as err:
            return _json({"error": str(err)}, 400)
        except Exception as err:  # noqa: BLE001 - moto's ResourceNotFoundException for an unknown rule
            return _json({"error": getattr(err, "message", str(err))}, 404)

    def _slack_received(self, route: str, body: bytes) -> Response:
        try:
            message = json.loads(body)
        except ValueError:
            return Response("invalid_payload", 400, {"Content-Type": "text/plain"})
        with self.lock:
            self.slack_messages.append({"path": "/" + route, "message": message})
            status, delay = self.settings["slack_status"], self.settings["slack_delay_seconds"]
        log.info("slack message received on /%s", route)
        # A webhook that hangs, or answers an error, as Slack does in an outage.
        time.sleep(delay)
        if status != 200:
            return Response("service_unavailable", status, {"Content-Type": "text/plain"})
        return Response("ok", 200, {"Content-Type": "text/plain"})

    @staticmethod
    def default_settings(snapshot_limit: int) -> dict[str, int]:
        return {"snapshot_limit": snapshot_limit, "cluster_snapshot_limit": snapshot_limit,
                "slack_status": 200, "slack_delay_seconds": 0, "lambda_concurrency_quota": 1000,
                "sfn_history_limit": 25_000, "clock_scale": 0, **operations.DEFAULTS,
                "rds_request_rate": 12, "rds_request_burst": 300, "iam_authorization": 1,
                **rules.default_settings()}

    def _update_settings(self, document) -> Response:
        if not isinstance(document, dict):
            return _json({"error": "send a JSON object"}, 400)
        for name, value in document.items():
            if name not in self.settings:
                return _json({"error": f"unknown setting {name}; known: {', '.join(self.settings)}"}, 400)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return _json({"error": f"{name} must be a whole number >= 0"}, 400)
        with self.lock:
            self.settings.update(document)
            self._apply_settings()
            return _json(self.settings)

    def _apply_settings(self) -> None:
        """Hands the settings to the parts that apply them."""
        apply_lambda_concurrency_quota(self.settings)
        moto_patches.HISTORY_LIMIT["events"] = self.settings["sfn_history_limit"]
        operations.MODEL.update({name: self.settings[name] for name in operations.DEFAULTS})
        if self.settings["clock_scale"] != CLOCK.scale:
            CLOCK.set_scale(self.settings["clock_scale"])

    def _metric_data(self, region: str) -> list[dict]:
        # Every data point as put: the module's tests sum them per exact dimensions.
        backend = cloudwatch_backends[get_account_id_from("test")][region]
        return [
            {
                "namespace": datum.namespace,
                "name": datum.name,
                "dimensions": {d.name: d.value for d in datum.dimensions},
                "value": getattr(datum, "value", None),
                "sum": getattr(datum, "sum", None),
                "unit": datum.unit,
                "timestamp": datum.timestamp.isoformat(),
            }
            for datum in list(backend.metric_data)
        ]

    @staticmethod
    def _s3_objects(bucket: str) -> Response:
        try:
            keys = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_bucket(bucket).keys.values()
        except MissingBucket:
            return _json({"error": f"no bucket {bucket!r}"}, 404)
        return _json([{"key": key.name, "size": key.size, "encryption": key.encryption, "kms_key_id": key.kms_key_id}
                      for key in list(keys)])

    def _sns_published(self, region: str) -> list[dict]:
        backend = sns_backends[get_account_id_from("test")][region]
        return [
            {"topic_arn": topic.arn, "message_id": message_id, "subject": subject, "message": message}
            for topic in list(backend.topics.values())
            for message_id, message, subject, _attributes, _group in list(topic.sent_notifications)
        ]

    def _backdate_snapshot(self, document) -> Response:
        try:
            region, snapshot_id = document["region"], document["snapshot_id"]
            created = _parse_time(document["created"])
        except (TypeError, KeyError, ValueError, AttributeError):
            return _json({"error": "send {region, snapshot_id, created (ISO 8601)}"}, 400)
        account = document.get("account") or get_account_id_from("test")
        backend = rds_backends[account][region]
        snapshot = backend.database_snapshots.get(snapshot_id) or backend.cluster_snapshots.get(snapshot_id)
        if snapshot is None:
            return _json({"error": f"no snapshot {snapshot_id} in {region}"}, 404)
        _set_created(snapshot, created)
        return _json({"snapshot_id": snapshot_id, "created": snapshot.created.isoformat()})

    def _set_restorable_lag(self, document) -> Response:
        try:
            region, identifier, minutes = document["region"], document["db_identifier"], float(document["minutes"])
        except (TypeError, KeyError, ValueError):
            return _json({"error": "send {region, db_identifier, minutes}"}, 400)
        backend = rds_backends[document.get("account") or get_account_id_from("test")][region]
        database = backend.databases.get(identifier) or backend.clusters.get(identifier)
        if database is None:
            return _json({"error": f"no database {identifier} in {region}"}, 404)
        database.restorable_lag = timedelta(minutes=minutes)
        latest = database.latest_restorable_time
        return _json({"db_identifier": identifier, "latest_restorable_time": latest and latest.isoformat()})

    def _fail_next_restore(self, document) -> Response:
        try:
            region, identifier, status = document["region"], document["db_identifier"], document["status"]
            operations.fail_next_restore(document.get("account") or get_account_id_from("test"), region, identifier,
                                         status)
        except (TypeError, KeyError):
            return _json({"error": "send {region, db_identifier, status}"}, 400)
        except ValueError as err:
            return _json({"error": str(err)}, 400)
        return _json({"db_identifier": identifier, "status": status})

    def _seed_snapshots(self, document) -> Response:
        try:
            region, wanted = document["region"], document["snapshots"]
            rows = [
                (s["db_instance_identifier"], s["snapshot_id"], _parse_time(s["created"]),
                 [{"Key": k, "Value": v} for k, v in (s.get("tags") or {}).items()])
                for s in wanted
            ]
        except (TypeError, KeyError, ValueError, AttributeError):
            return _json({"error": "send {region, snapshots: [{db_instance_identifier, snapshot_id, "
                                   "created (ISO 8601), tags {key: value}}]}"}, 400)
        backend = rds_backends[document.get("account") or get_account_id_from("test")][region]
        for db, snapshot_id, created, tags in rows:
            try:
                snapshot = backend.create_db_snapshot(db, snapshot_id, tags=tags)
            except Exception as err:  # noqa: BLE001 - moto's RDS errors carry their code and message
                return _json({"error": f"{snapshot_id}: {getattr(err, 'message', err)}"}, 400)
            _set_created(snapshot, created)
        return _json({"created": len(rows)}, 201)

    def reset(self):
        self.lambdas.stop_all()
        databases.SERVERS.stop_all()
        moto_api_backend.reset()
        moto_api_backend.set_config(MOTO_CONFIG)
        self.faults.clear()
        operations.FAILING_RESTORES.clear()
        events.clear()
        self.schedules.clear()
        with self.lock:
            self.calls.clear()
            self.call_spans.clear()
            self.invocations.clear()
            self.slack_messages.clear()
            self.settings = self.default_settings(self.snapshot_limit)
            CLOCK.restart()
            self._apply_settings()
            self.rds_requests.clear()
            self.reservations.throttled.clear()

    def close(self):
        self.lambdas.stop_all()
        databases.SERVERS.stop_all()


class Reservations:
    """A function's reserved concurrency is also its most: "Reserving concurrency both
    ensures that your function has capacity to process the specified number of events
    simultaneously, and prevents it from scaling beyond that level" (Lambda API Reference,
    PutFunctionConcurrency); an invocation beyond it is throttled, Invoke answering 429
    `TooManyRequestsException` with Reason `ReservedFunctionConcurrentInvocationLimitExceeded`
    (Lambda API Reference, Invoke), which Step Functions reports as
    `Lambda.TooManyRequestsException` (Developer Guide, "Handle Lambda service exceptions").
    Counted in real time, the functions' own time: with the clock on (local_aws/clock.py),
    retriers' back-off shrinks by its scale while a function's run does not, so a
    reservation would throttle far more than on AWS; there invocations are not limited."""

    def __init__(self):
        self.changed = threading.Condition()
        self.in_flight: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def enter(self, arn: str, reserved, wait_seconds: float = 0) -> bool:
        """Whether an invocation of `arn` may run now (waiting up to `wait_seconds` for one to end)."""
        limit = int(reserved) if reserved is not None and CLOCK.instant else None
        with self.changed:
            admitted = self.changed.wait_for(lambda: limit is None or self.in_flight[arn] < limit, wait_seconds)
            if admitted:
                self.in_flight[arn] += 1
            else:
                self.throttled[arn.rsplit(":", 1)[-1]] += 1
            return admitted

    def leave(self, arn: str) -> None:
        with self.changed:
            self.in_flight[arn] -= 1
            self.changed.notify_all()


class TokenBuckets:
    """RDS's API rate: "By default, you can make up to 300 requests in a burst and a
    sustained 12 requests per second" per account and region, shared by every caller
    (RDS User Guide, "Amazon RDS API request throttling"); beyond it RDS answers
    `Throttling`, "Rate exceeded". The bucket refills on the clock (settings
    rds_request_rate, 0 for no limit, and rds_request_burst)."""

    def __init__(self, settings: Callable[[], dict[str, int]]):
        self.settings = settings
        self.lock = threading.Lock()
        # (account, region): (tokens, when they were counted)
        self.buckets: dict[tuple[str, str], tuple[float, datetime]] = {}
        self.throttled = 0

    def take(self, account: str, region: str) -> bool:
        """One request's token; False: throttled."""
        settings = self.settings()
        rate, burst = settings["rds_request_rate"], settings["rds_request_burst"]
        if rate == 0:
            return True
        now = CLOCK.now()
        with self.lock:
            tokens, counted = self.buckets.get((account, region), (float(burst), now))
            tokens = min(float(burst), tokens + rate * max((now - counted).total_seconds(), 0.0))
            taken = tokens >= 1
            self.buckets[(account, region)] = (tokens - 1 if taken else tokens, now)
            self.throttled += not taken
            return taken

    def clear(self) -> None:
        with self.lock:
            self.buckets.clear()
            self.throttled = 0


def apply_lambda_concurrency_quota(settings: dict[str, int]) -> None:
    """Lambda refuses a reservation that leaves fewer than 100 unreserved executions ("You
    can reserve up to the Unreserved account concurrency value that is shown, minus 100",
    Lambda Developer Guide, "Configuring reserved concurrency"). moto applies that rule,
    with AWS's message, only when MOTO_LAMBDA_CONCURRENCY_QUOTA is set: always, here."""
    os.environ["MOTO_LAMBDA_CONCURRENCY_QUOTA"] = str(settings["lambda_concurrency_quota"])


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _set_created(snapshot, created: datetime) -> None:
    """Backdates a moto snapshot, done (moto keeps naive or aware times, depending on the kind)."""
    operations.finish(snapshot)
    snapshot.created = created.replace(tzinfo=None) if snapshot.created.tzinfo is None else created
    if hasattr(snapshot, "original_snapshot_create_time"):
        snapshot.original_snapshot_create_time = snapshot.created


def _json(document, status: int = 200) -> Response:
    return Response(json.dumps(document, default=str), status, {"Content-Type": "application/json"})


def _epoch(value) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value or 0)
