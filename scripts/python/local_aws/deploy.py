"""Deploys the project into the local AWS with boto3, as the Terraform module
plans it (module_plan): the functions from their zips with the settings and
environment Terraform plans, the two state machines with the definitions it
renders, and the resources they use under the names it gives them (export
bucket and role, KMS key, SNS topic, the Slack webhook's secret, the queue of
exports waiting for a slot, the waits' schedule group and the Scheduler's role). Values Terraform learns only when it
creates a resource (a key's ARN) come from the resources created here. What a
test adds is explicit and only makes things faster: polls, retry delays,
function timeouts, the SDK's own retries; and an SQS queue subscribed to the
topic, to read the notifications."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import hcl2
from botocore.config import Config

from . import asl, module_plan

VARIABLES = Path(__file__).resolve().parents[3] / "terraform" / "variables.tf"
# Where the local AWS collects what notify posts to Slack.
SLACK_PATH = "/_gateway/slack/services/T0LOCAL/B0LOCAL/local-webhook"


@dataclass(frozen=True)
class Settings:
    """A test deployment: the module's variables it sets, and what a test changes in
    what the module plans, to run faster (None or empty: as planned)."""

    db_identifiers: tuple[str, ...] = ("prod-database-1",)
    cluster_identifiers: tuple[str, ...] = ()
    project: str = "dbbackup"
    environment: str = "local"
    copy_region: str | None = "us-west-2"
    export_enabled: bool = True
    retention_days: int = 30
    min_snapshots_to_keep: int = 3
    # retention_policy and copy_retention_policy (tier-count pairs; empty: keep by age), and
    # prune_guard_fraction (None: the module's).
    retention_policy: tuple[tuple[str, int], ...] = ()
    copy_retention_policy: tuple[tuple[str, int], ...] = ()
    prune_guard_fraction: float | None = None
    # s3_export_tiers: only the first snapshot of each period of these is exported.
    export_tiers: tuple[str, ...] = ()
    dry_run: bool = False
    max_concurrency: int = 5
    # The bound on each wait (snapshot, export, copy), seconds (None: the module's); the
    # export's own where export_wait_timeout_seconds is set.
    wait_timeout_seconds: int | None = None
    export_wait_timeout_seconds: int | None = None
    # Every wait polls at least this often apart (the module allows 5 s at least).
    # Short polls need short bounds (wait_timeout_seconds): a database's execution keeps
    # at most 25,000 events, which select holds the run's settings to.
    poll_interval_seconds: int | None = None
    # The module's own poll_interval_seconds and export_poll_interval_seconds, planned (None:
    # its defaults): long bounds need longer shortest polls to plan within the 25,000 events.
    module_poll_intervals: tuple[int, int] | None = None
    # Extra environment for every function (tests use AWS_MAX_ATTEMPTS=1 to see each throttle).
    function_env: tuple[tuple[str, str], ...] = ()
    # Each retrier of the state machines waits at most this long.
    retry_delay_seconds: int | None = None
    # Function timeouts that differ from the module's (seconds).
    timeouts: tuple[tuple[str, int], ...] = ()
    # The module's EventBridge rules too: the local AWS then delivers their events (the run's
    # status changes to notify, a schedule fired by a control call) as AWS does.
    event_rules: bool = False
    # adopt_snapshots_managed_by: earlier instances' managed-by values this one takes over.
    adopted: tuple[str, ...] = ()
    # selection_tags, exclude_tags (key-value pairs) and db_identifier_patterns.
    selection_tags: tuple[tuple[str, str], ...] = ()
    exclude_tags: tuple[tuple[str, str], ...] = ()
    patterns: tuple[str, ...] = ()
    # manage_automated_backups: (retention_days, shorten_retention); None: off.
    managed_automated_backups: tuple[int, bool] | None = None
    # restore_drill's settings (key-value pairs, nested for sql_probe; None: no drills).
    restore_drill: tuple[tuple[str, object], ...] | None = None

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.environment}"

    def module_arguments(self, endpoint: str) -> dict:
        """The module's variables, as a caller of the module sets them."""
        arguments = {
            "project_name": self.project,
            "environment": self.environment,
            "rds_instance_ids": list(self.db_identifiers),
            "rds_cluster_ids": list(self.cluster_identifiers),
            "enable_cross_region_copy": self.copy_region is not None,
            "enable_s3_export": self.export_enabled,
            "backup_retention_days": self.retention_days,
            "min_snapshots_to_keep": self.min_snapshots_to_keep,
            "prune_dry_run": self.dry_run,
            "max_concurrent_databases": self.max_concurrency,
            "slack_webhook_url": endpoint.rstrip("/") + SLACK_PATH,
        }
        if self.selection_tags or self.patterns:
            arguments.update(selection_tags=dict(self.selection_tags), exclude_tags=dict(self.exclude_tags),
                             db_identifier_patterns=list(self.patterns))
        if self.copy_region is not None:
            arguments["cross_region_destination"] = self.copy_region
        if self.module_poll_intervals is not None:
            arguments["poll_interval_seconds"], arguments["export_poll_interval_seconds"] = self.module_poll_intervals
        if self.adopted:
            arguments["adopt_snapshots_managed_by"] = list(self.adopted)
        if self.retention_policy:
            arguments["retention_policy"] = dict(self.retention_policy)
        if self.copy_retention_policy:
            arguments["copy_retention_policy"] = dict(self.copy_retention_policy)
        if self.export_tiers:
            arguments["s3_export_tiers"] = list(self.export_tiers)
        if self.managed_automated_backups is not None:
            days, shorten = self.managed_automated_backups
            arguments["manage_automated_backups"] = {"retention_days": days, "shorten_retention": shorten}
        if self.restore_drill is not None:
            arguments["restore_drill"] = _plain(self.restore_drill)
        if self.prune_guard_fraction is not None:
            arguments["prune_guard_fraction"] = self.prune_guard_fraction
        if self.wait_timeout_seconds is not None:
            arguments["wait_timeout_seconds"] = {
                **dict.fromkeys(("snapshot", "export", "copy"), self.wait_timeout_seconds),
                **({"export": self.export_wait_timeout_seconds} if self.export_wait_timeout_seconds else {})}
        return arguments


def _plain(value: object) -> object:
    """A setting as the module takes it: key-value pairs (kept hashable in Settings) as an
    object, other tuples as lists."""
    if isinstance(value, tuple):
        if value and all(isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in value):
            return {key: _plain(item) for key, item in value}
        return [_plain(item) for item in value]
    return value


def plans(endpoint: str, settings: list[Settings]) -> dict[Settings, module_plan.Planned]:
    """The module's plan for each of these settings, planned together where not yet planned."""
    unique = list(dict.fromkeys(settings))
    planned = module_plan.plan(endpoint, [s.module_arguments(endpoint) for s in unique])
    return dict(zip(unique, planned))


@functools.cache
def module_variables(path: Path = VARIABLES) -> dict[str, dict]:
    """A module's variables (by default the module's, terraform/variables.tf): each one's block, by name."""
    with path.open() as handle:
        blocks = hcl2.load(handle)["variable"]
    return {name.strip('"'): body for block in blocks for name, body in block.items()}


def module_default(variable: str):
    """The module's default of a variable (terraform/variables.tf)."""
    default = module_variables()[variable]["default"]
    return default.strip('"') if isinstance(default, str) else default


def environments(planned: module_plan.Planned, after_apply: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each function's environment as the module sets it. A variable the plan shows
    without its value (known only after apply) takes the created resource's value
    (`after_apply`), or the value the plan gives the same variable of another function.
    Where the plan cannot show even the names, each variable the function reads
    (statemachine/contract.json) is filled so, and only a required one must be."""
    functions = planned.addresses("aws_lambda_function")
    result, pending = {}, {}
    for key, values in functions.items():
        result[key] = dict(((values.get("environment") or [{}])[0] or {}).get("variables") or {})
        marks = planned.unknown.get(f'aws_lambda_function.backup["{key}"]', {}).get("environment")
        variables = marks[0].get("variables") if isinstance(marks, list) and marks and isinstance(marks[0], dict) else marks
        if variables is True or marks is True:
            pending[key] = {v["name"]: v["required"] for v in asl.contract()["functions"][key]["environment"]
                            if v["name"] not in result[key]}
        else:
            pending[key] = {name: True for name, unknown in (variables or {}).items() if unknown is True}
    shared = {name: value for environment in result.values() for name, value in environment.items()}
    for key, names in pending.items():
        for name, required in names.items():
            value = after_apply.get(name, shared.get(name))
            if value is not None:
                result[key][name] = value
            elif required:
                raise module_plan.PlanError(f"{key} reads {name}: the plan does not show it and nothing created here holds it")
    return result


class Aws:
    """boto3 clients for the local AWS."""

    def __init__(self, endpoint: str, account: str | None = None):
        self.endpoint = endpoint
        # The default account's keys, or an administrator's of `account` (local_aws/accounts.py).
        self.access_key = account or "test"
        self._config = Config(retries={"mode": "standard", "total_max_attempts": 1})

    def client(self, service: str, region: str = "us-east-1", **credentials):
        credentials = credentials or {"aws_access_key_id": self.access_key, "aws_secret_access_key": "test"}
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region, config=self._config,
                            **credentials)


def drain_queue(aws: Aws, queue_url: str, region: str = "us-east-1") -> list[dict]:
    """Takes every message off a queue subscribed to a topic: the SNS envelopes, oldest first."""
    sqs = aws.client("sqs", region)
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return messages
        messages += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )


@dataclass
class Deployment:
    aws: Aws
    settings: Settings
    account: str
    state_machine_arn: str
    database_state_machine_arn: str
    # The restore drills' state machine (None: restore_drill is off).
    drill_state_machine_arn: str | None
    function_arns: dict[str, str]
    topic_arn: str
    queue_url: str
    export_bucket: str
    # Each function's environment variables, as deployed.
    environments: dict[str, dict[str, str]]

    @classmethod
    def create(cls, endpoint: str, zips: Path, settings: Settings,
               planned: module_plan.Planned | None = None) -> Deployment:
        """Deploys `settings` as the module plans them (`planned`: that plan, already made)."""
        planned = planned or plans(endpoint, [settings])[settings]
        aws = Aws(endpoint)
        account = aws.client("sts").get_caller_identity()["Account"]
        region = "us-east-1"
        iam = aws.client("iam")
        roles = {}
        for key, role in planned.addresses("aws_iam_role").items():
            roles[key] = iam.create_role(RoleName=role["name"], AssumeRolePolicyDocument=role["assume_role_policy"])["Role"]["Arn"]
        bucket = planned.resource("aws_s3_bucket.backup")["bucket"]
        aws.client("s3", region).create_bucket(Bucket=bucket)
        key_arn = aws.client("kms", region).create_key(Description=f"{settings.prefix} database backups")["KeyMetadata"]["Arn"]
        sns = aws.client("sns", region)
        topic = sns.create_topic(Name=planned.resource("aws_sns_topic.notifications[0]")["name"])["TopicArn"]
        sqs = aws.client("sqs", region)
        waiters = planned.resource("aws_sqs_queue.export_slot_waiters")
        waiters_url = sqs.create_queue(QueueName=waiters["name"], Attributes={
            "MessageRetentionPeriod": str(waiters["message_retention_seconds"]),
            "VisibilityTimeout": str(waiters["visibility_timeout_seconds"])})["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=f"{settings.prefix}-notifications-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

        schedule_group = planned.resource("aws_scheduler_schedule_group.polls")["name"]
        aws.client("scheduler", region).create_schedule_group(Name=schedule_group)

        database_machine = planned.addresses("aws_sfn_state_machine")["database"]["name"]
        secret = planned.resource("aws_secretsmanager_secret.slack_webhook[0]")
        webhook = aws.client("secretsmanager", region).create_secret(
            Name=secret["name"], KmsKeyId=key_arn,
            SecretString=planned.resource("aws_secretsmanager_secret_version.slack_webhook[0]")["secret_string"])

        deployed = environments(planned, after_apply={
            "EXPORT_BUCKET": bucket, "EXPORT_ROLE_ARN": roles["export"], "EXPORT_KMS_KEY_ARN": key_arn,
            "SNS_TOPIC_ARN": topic, "SLACK_WEBHOOK_SECRET_ARN": webhook["ARN"],
            "DATABASE_STATE_MACHINE_ARN": f"arn:aws:states:{region}:{account}:stateMachine:{database_machine}",
            "SLACK_WEBHOOK_SECRET_VERSION": webhook["VersionId"],
            "SCHEDULE_GROUP_NAME": schedule_group, "SCHEDULER_ROLE_ARN": roles["poll_scheduler"],
            "EXPORT_SLOT_QUEUE_URL": waiters_url,
            # Planned beside values known only after apply, export's environment shows no
            # value at all: this one as the module renders it (lambda.tf).
            "EXPORT_TIERS": json.dumps(list(settings.export_tiers)) if settings.export_tiers else "",
            # So is notify's, beside the topic's ARN: manage_automated_backups with the module's
            # default backup_window, as lambda.tf renders it.
            "AUTOMATED_BACKUPS": json.dumps({"retention_days": settings.managed_automated_backups[0],
                                             "shorten_retention": settings.managed_automated_backups[1],
                                             "window": "02:00-03:00"})
            if settings.managed_automated_backups else ""})
        deployed = {key: {**environment, **dict(settings.function_env)} for key, environment in deployed.items()}
        lambda_client = aws.client("lambda", region)
        arns = {}
        for key, function in planned.addresses("aws_lambda_function").items():
            package = zips / f"backup-{key}" / "bootstrap.zip"
            if not package.is_file():
                raise FileNotFoundError(f"{package} is missing: run scripts/build-lambdas first")
            created = lambda_client.create_function(
                FunctionName=function["function_name"],
                Runtime=function["runtime"],
                Handler=function["handler"],
                Role=roles[key],
                Code={"ZipFile": package.read_bytes()},
                Timeout=dict(settings.timeouts).get(key, function["timeout"]),
                MemorySize=function["memory_size"],
                Architectures=function["architectures"],
                Environment={"Variables": deployed[key]},
                LoggingConfig={"LogFormat": function["logging_config"][0]["log_format"]},
            )
            arns[key] = created["FunctionArn"]
            # The module's reservation (lambda_reserved_concurrency, -1 for none) is also each
            # function's most: the local AWS throttles invocations beyond it, as Lambda does.
            if function["reserved_concurrent_executions"] >= 0:
                lambda_client.put_function_concurrency(
                    FunctionName=function["function_name"],
                    ReservedConcurrentExecutions=function["reserved_concurrent_executions"])

        sfn = aws.client("stepfunctions", region)
        machines = {}
        for key, machine in planned.addresses("aws_sfn_state_machine").items():
            definition = machine["definition"]
            if settings.retry_delay_seconds is not None:
                definition = asl.with_retry_delays(definition, settings.retry_delay_seconds)
            if settings.poll_interval_seconds is not None and key == "backup":
                definition = asl.with_run_defaults(definition, poll_interval_seconds=settings.poll_interval_seconds,
                                                   export_poll_interval_seconds=settings.poll_interval_seconds)
            machines[key] = sfn.create_state_machine(name=machine["name"], roleArn=roles["state_machine"],
                                                     definition=definition, type=machine["type"])["stateMachineArn"]
        if settings.event_rules:
            create_event_rules(aws.client("events", region), planned, {
                "function": arns, "state_machine": machines, "role": roles})
        return cls(aws, settings, account, machines["backup"], machines["database"], machines.get("drill"), arns,
                   topic, queue_url, bucket, deployed)


# What each of the module's rules targets (the plan cannot show the created ARNs).
RULE_TARGETS = {"schedule": ("state_machine", "backup"), "run_ended_badly": ("function", "notify"),
                "snapshot_age": ("function", "notify"), "drill-schedule": ("state_machine", "drill"),
                "drill-sweep": ("state_machine", "drill")}


def create_event_rules(events, planned: module_plan.Planned, created: dict[str, dict[str, str]]) -> None:
    """The module's EventBridge rules and targets, as planned, aimed at what was created here."""
    targets = planned.addresses("aws_cloudwatch_event_target")
    if not set(targets) <= set(RULE_TARGETS):
        raise module_plan.PlanError(f"the module's rule targets are {sorted(targets)}; RULE_TARGETS knows {sorted(RULE_TARGETS)}")
    for rule in planned.addresses("aws_cloudwatch_event_rule").values():
        schedule = {"ScheduleExpression": rule["schedule_expression"]} if rule.get("schedule_expression") else {}
        pattern = {"EventPattern": rule["event_pattern"]} if rule.get("event_pattern") else {}
        events.put_rule(Name=rule["name"], State="ENABLED", **schedule, **pattern)
    for key, target in targets.items():
        kind, name = RULE_TARGETS[key]
        entry = {"Id": key, "Arn": created[kind][name]}
        if target.get("input"):
            entry["Input"] = target["input"]
        for transformer in target.get("input_transformer") or []:
            entry["InputTransformer"] = {"InputPathsMap": transformer.get("input_paths") or {},
                                         "InputTemplate": transformer["input_template"]}
        if kind == "state_machine":
            entry["RoleArn"] = created["role"]["schedule"]
        events.put_targets(Rule=target["rule"], Targets=[entry])
