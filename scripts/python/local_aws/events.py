"""EventBridge delivery, as AWS delivers for the module's rules. moto's EventBridge
matches rules but never invokes a Lambda function or a Step Functions state
machine target (it raises NotImplementedError for them), never fires a schedule,
and moto's Step Functions sends no "Step Functions Execution Status Change"
events. Here:

- every Standard execution that ends puts its status change on the default
  bus, in the shape Step Functions gives it;
- a rule's Lambda targets are invoked asynchronously (`InvocationType=Event`,
  as EventBridge invokes them) and its Step Functions targets start an
  execution, through the local AWS itself, so that the functions run as
  deployed and the calls count;
- each target gets the input AWS would give it: its constant `Input`, the part
  of the event its `InputPath` selects, its `InputTransformer`'s template
  filled in, or else the event itself;
- `fire` delivers a schedule rule's "Scheduled Event" now, at the clock's time
  (local_aws/clock.py; rules do not fire by themselves).

Sources: EventBridge targets (Input, InputPath, InputTransformer):
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html;
Step Functions events: https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html;
scheduled events: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC
from typing import Any

import boto3
from botocore.config import Config

from .clock import CLOCK

log = logging.getLogger("local_aws.events")

_endpoint: str | None = None
_delivered: list[dict] = []
_lock = threading.Lock()


def configure(endpoint: str) -> None:
    """Where targets are invoked: the local AWS itself."""
    global _endpoint
    _endpoint = endpoint


def delivered() -> list[dict]:
    """What was delivered, oldest first: rule, target ARN, input."""
    with _lock:
        return list(_delivered)


def clear() -> None:
    with _lock:
        _delivered.clear()


def client(service: str, region: str, account: str | None = None):
    """A client of the local AWS as EventBridge: of the default account, or (a 12-digit
    access key) of the target's own account, where a rule delivers."""
    return boto3.client(service, endpoint_url=_endpoint, region_name=region, aws_access_key_id=account or "test",
                        aws_secret_access_key="test", config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def _json_path(event: dict, path: str) -> Any:
    """The value at a simple JSON path (`$`, `$.detail.status`, `$.resources[0]`)."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSON path")
    value: Any = event
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
        if value is None:
            return None
        value = value.get(name) if name else (value[int(index)] if int(index) < len(value) else None)
    return value


def target_input(target: dict, event: dict, rule_arn: str | None = None) -> str:
    """The input EventBridge hands a target for this event, matched by the rule `rule_arn`."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(_json_path(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        text = transformer["InputTemplate"]
        values = {name: _json_path(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}
        values.update({"aws.events.rule-arn": rule_arn, "aws.events.event": json.dumps(event),
                       "aws.events.event.ingestion-time": event.get("time")})
        for name, value in values.items():
            # A string goes in as its text (the template quotes it where it wants a JSON string).
            filled = json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)
            text = text.replace(f"<{name}>", filled)
        return text
    return json.dumps(event)


def deliver(rule_name: str, rule_arn: str, target: dict, event: dict, wait: bool = False) -> dict:
    """Hands one target its input, as EventBridge does: in the background, or (`wait`)
    before returning what was delivered: the rule, the target, the input and, for a
    state machine, the execution started."""
    payload = target_input(target, event, rule_arn)
    arn = target["Arn"]
    record = {"rule": rule_name, "target": arn, "input": payload, "at": time.time()}
    with _lock:
        _delivered.append(record)

    def send() -> None:
        service, region, account = arn.split(":")[2:5]
        try:
            if service == "lambda":
                client("lambda", region, account).invoke(FunctionName=arn, InvocationType="Event", Payload=payload.encode())
            elif service == "states":
                record["execution_arn"] = client("stepfunctions", region, account).start_execution(
                    stateMachineArn=arn, input=payload)["executionArn"]
            else:
                log.warning("rule %s: target %s is not delivered here", rule_name, arn)
                return
            log.info("rule %s delivered to %s", rule_name, arn)
        except Exception as err:  # noqa: BLE001 - EventBridge drops what it cannot deliver (after its retries)
            record["error"] = str(err)
            log.exception("rule %s: delivery to %s failed", rule_name, arn)

    if wait:
        send()
    else:
        threading.Thread(target=send, daemon=True).start()
    return record


def status_change(execution) -> dict[str, Any]:
    """The put-events entry of an ended execution (moto's parser `Execution`)."""
    millis = lambda at: int(at.timestamp() * 1000) if at else None  # noqa: E731 - a one-line converter
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.status,
        "startDate": millis(execution.start_date),
        "stopDate": millis(execution.stop_date),
        "input": execution.execution_input,
        "output": json.dumps(execution.output) if execution.output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }
    ended = execution.stop_date or CLOCK.now()
    return {"Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
            "Resources": [execution.exec_arn], "Detail": json.dumps(detail),
            "Time": ended.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def scheduled_event(rule, account: str, region: str) -> dict[str, Any]:
    """The event a schedule rule sends when it fires."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": CLOCK.now().strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [rule.arn], "detail": {}}


def fire(account: str, region: str, rule_name: str) -> list[dict]:
    """Fires a schedule rule now: each of its targets gets the rule's "Scheduled Event"
    (or the input the target makes of it). A disabled rule fires nothing."""
    from moto.events.models import events_backends

    rule = events_backends[account][region].describe_rule(rule_name, None)
    if not rule.scheduled_expression:
        raise ValueError(f"rule {rule_name} has no schedule: it fires on events, not on time")
    if rule.state != "ENABLED":
        return []
    event = scheduled_event(rule, account, region)
    return [deliver(rule.name, rule.arn, target, event, wait=True) for target in rule.targets]
