"""Deploys the project into the local AWS with boto3, the way the Terraform
module does in AWS: the seven functions from their zips, with their
environment, and the state machine rendered from `statemachine/`, plus what
they use (export bucket and role, KMS keys, SNS topic with an SQS queue to
read it, the local Slack webhook)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import boto3
import hcl2
from botocore.config import Config

from . import asl

FUNCTIONS = tuple(asl.contract()["functions"])
VARIABLES = Path(__file__).resolve().parents[3] / "terraform" / "variables.tf"
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # noqa: E501


@dataclass(frozen=True)
class Settings:
    """The module's settings that shape a deployment (Terraform variables)."""

    db_identifiers: list[str] = field(default_factory=lambda: ["prod-database-1"])
    project: str = "dbbackup"
    environment: str = "local"
    region: str = "us-east-1"
    copy_region: str | None = "us-west-2"
    export_enabled: bool = True
    retention_days: int = 30
    min_snapshots_to_keep: int = 3
    # The module's default for a daily schedule (the no-recent-backup alarm's bound).
    max_snapshot_age_hours: int = 30
    dry_run: bool = False
    max_concurrency: int = 5
    poll_interval_seconds: int = 60
    export_poll_interval_seconds: int = 300
    snapshot_wait_timeout_seconds: int = 21600
    export_wait_timeout_seconds: int = 86400
    copy_wait_timeout_seconds: int = 21600
    # Extra environment for every function (tests use AWS_MAX_ATTEMPTS=1 to see each throttle).
    function_env: tuple[tuple[str, str], ...] = ()
    # Each retrier of the state machines waits at most this long (None: as written).
    retry_delay_seconds: int | None = None
    # Function timeouts that differ from the module's (seconds).
    timeouts: tuple[tuple[str, int], ...] = ()

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


@functools.cache
def module_variables() -> dict[str, dict]:
    """The module's variables (terraform/variables.tf): each one's block, by name."""
    with VARIABLES.open() as handle:
        blocks = hcl2.load(handle)["variable"]
    return {name.strip('"'): body for block in blocks for name, body in block.items()}


def module_default(variable: str):
    """The module's default of a variable (terraform/variables.tf), so that a test
    deployment gives what `terraform apply` gives."""
    default = module_variables()[variable]["default"]
    return default.strip('"') if isinstance(default, str) else default


def check_environment(function: str, environment: dict[str, str], copies: bool) -> None:
    """Refuses an environment that is not what the function reads (statemachine/contract.json),
    as the module's precondition does; the SDK's own AWS_* variables aside."""
    contracted = asl.contract()["functions"][function]["environment"]
    names = {v["name"] for v in contracted}
    unknown = sorted(n for n in environment if n not in names and not n.startswith("AWS_"))
    missing = sorted(v["name"] for v in contracted
                     if v["required"] and v["name"] not in environment and (function != "copy" or copies))
    if unknown or missing:
        raise ValueError(f"{function}'s environment does not match the contract: unknown {unknown}, missing {missing}")


def resource_name(settings: Settings, suffix: str) -> str:
    """A function (`snapshot`...) or a state machine (`backup`, `database`) of this deployment."""
    return f"{settings.project}-{settings.environment}-{suffix}"


def function_arn(settings: Settings, account: str, function: str) -> str:
    return f"arn:aws:lambda:{settings.region}:{account}:function:{resource_name(settings, function)}"


def state_machine_arn(settings: Settings, account: str, machine: str) -> str:
    return f"arn:aws:states:{settings.region}:{account}:stateMachine:{resource_name(settings, machine)}"


def function_arns(settings: Settings, account: str, functions) -> dict[str, str]:
    return {f"{f.replace('-', '_')}_function_arn": function_arn(settings, account, f) for f in functions}


def database_template_values(settings: Settings, account: str, region: str) -> dict[str, str]:
    """The `templatefile` values of the database state machine, as the Terraform module passes them."""
    functions = ("snapshot", "wait-for-available", "export", "copy")
    return {**function_arns(settings.with_(region=region), account, functions), **asl.retry_values(functions)}


def run_defaults(settings: Settings) -> dict:
    """The run's settings when its input overrides none, as terraform/stepfunctions.tf
    passes them: one value for each field of the contract's execution_input."""
    defaults = {
        "db_instance_ids": settings.db_identifiers,
        "retention_days": settings.retention_days,
        "min_snapshots_to_keep": settings.min_snapshots_to_keep,
        "dry_run": settings.dry_run,
        "skip_export": not settings.export_enabled,
        "skip_copy": settings.copy_region is None,
        "skip_prune": False,
        "poll_interval_seconds": settings.poll_interval_seconds,
        "export_poll_interval_seconds": settings.export_poll_interval_seconds,
        "snapshot_wait_timeout_seconds": settings.snapshot_wait_timeout_seconds,
        "export_wait_timeout_seconds": settings.export_wait_timeout_seconds,
        "copy_wait_timeout_seconds": settings.copy_wait_timeout_seconds,
    }
    fields = [f["name"] for f in asl.contract()["execution_input"]]
    if sorted(defaults) != sorted(fields):
        raise ValueError(f"the run's defaults {sorted(defaults)} are not the contract's execution input {sorted(fields)}")
    return defaults


def template_values(settings: Settings, account: str, region: str) -> dict[str, str]:
    """The `templatefile` values of the backup state machine, as the Terraform module passes them."""
    settings = settings.with_(region=region)
    functions = ("select", "prune", "notify")
    return {
        **function_arns(settings, account, functions),
        **asl.retry_values(functions),
        "database_state_machine_arn": state_machine_arn(settings, account, "database"),
        "run_defaults": json.dumps(run_defaults(settings)),
        "max_concurrency": str(settings.max_concurrency),
    }


class Aws:
    """boto3 clients for the local AWS."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._config = Config(retries={"mode": "standard", "total_max_attempts": 1})

    def client(self, service: str, region: str = "us-east-1"):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=self._config,
        )


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
    function_arns: dict[str, str]
    topic_arn: str
    queue_url: str
    slack_path: str
    export_bucket: str
    copy_kms_key: str | None
    # Each function's environment variables, as deployed.
    environments: dict[str, dict[str, str]]

    @classmethod
    def create(cls, endpoint: str, zips: Path, settings: Settings) -> Deployment:
        aws = Aws(endpoint)
        account = aws.client("sts").get_caller_identity()["Account"]
        region = settings.region
        prefix = f"{settings.project}-{settings.environment}"
        iam = aws.client("iam")
        role = iam.create_role(RoleName=f"{prefix}-functions", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
        states_role = iam.create_role(
            RoleName=f"{prefix}-state-machine",
            AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA).replace("lambda.amazonaws.com", "states.amazonaws.com"),
        )
        export_role = iam.create_role(
            RoleName=f"{prefix}-export",
            AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA).replace("lambda.amazonaws.com", "export.rds.amazonaws.com"),
        )
        bucket = f"{prefix}-db-backups"
        aws.client("s3", region).create_bucket(Bucket=bucket)
        export_key = aws.client("kms", region).create_key(Description=f"{prefix} exports")["KeyMetadata"]["Arn"]
        copy_key = None
        if settings.copy_region:
            copy_key = aws.client("kms", settings.copy_region).create_key(Description=f"{prefix} copies")[
                "KeyMetadata"
            ]["Arn"]
        sns = aws.client("sns", region)
        topic = sns.create_topic(Name=f"{prefix}-notifications")["TopicArn"]
        sqs = aws.client("sqs", region)
        queue_url = sqs.create_queue(QueueName=f"{prefix}-notifications-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        slack_path = "/_gateway/slack/services/T0LOCAL/B0LOCAL/local-webhook"

        # As terraform/lambda.tf sets them, with the module's defaults.
        common = {"PROJECT_NAME": settings.project, "ENVIRONMENT": settings.environment, "BACKUP_INSTANCE": prefix,
                  "ADDITIONAL_TAGS": "{}", **dict(settings.function_env)}
        destination = {"COPY_DESTINATION_REGION": settings.copy_region} if settings.copy_region else {}
        environments = {
            "select": dict(settings.function_env),
            "snapshot": common,
            "wait-for-available": dict(settings.function_env),
            "export": {**common, "EXPORT_BUCKET": bucket, "EXPORT_ROLE_ARN": export_role["Role"]["Arn"],
                       "EXPORT_KMS_KEY_ARN": export_key},
            "copy": {**common, **destination, **({"COPY_KMS_KEY_ARN": copy_key} if copy_key else {})},
            "prune": {**common, **destination, "RETENTION_DAYS": str(settings.retention_days),
                      "MIN_SNAPSHOTS_TO_KEEP": str(settings.min_snapshots_to_keep),
                      "MAX_SNAPSHOT_AGE_HOURS": str(settings.max_snapshot_age_hours),
                      "DRY_RUN": json.dumps(settings.dry_run)},
            "notify": {**common, "SNS_TOPIC_ARN": topic, "SLACK_WEBHOOK_URL": endpoint.rstrip("/") + slack_path,
                       "METRICS_NAMESPACE": module_default("metrics_namespace"),
                       "DATABASE_STATE_MACHINE_ARN": state_machine_arn(settings, account, "database")},
        }
        for function, environment in environments.items():
            check_environment(function, environment, copies=settings.copy_region is not None)
        lambda_client = aws.client("lambda", region)
        arns = {}
        for function in FUNCTIONS:
            package = zips / f"backup-{function}" / "bootstrap.zip"
            if not package.is_file():
                raise FileNotFoundError(f"{package} is missing: run scripts/build-lambdas first")
            created = lambda_client.create_function(
                FunctionName=resource_name(settings, function),
                Runtime="provided.al2023",
                Handler="bootstrap",
                Role=role["Role"]["Arn"],
                Code={"ZipFile": package.read_bytes()},
                Timeout=dict(settings.timeouts).get(function, module_default("lambda_timeout")),
                MemorySize=module_default("lambda_memory_size"),
                Architectures=["x86_64"],
                Environment={"Variables": environments[function]},
                LoggingConfig={"LogFormat": "JSON"},
            )
            arns[function] = created["FunctionArn"]
        sfn = aws.client("stepfunctions", region)

        def definition(template: Path, values: dict[str, str]) -> str:
            rendered = asl.render(template.read_text(), values)
            if settings.retry_delay_seconds is None:
                return rendered
            return asl.with_retry_delays(rendered, settings.retry_delay_seconds)

        database = sfn.create_state_machine(
            name=resource_name(settings, "database"), roleArn=states_role["Role"]["Arn"],
            definition=definition(asl.DATABASE_TEMPLATE, database_template_values(settings, account, region)),
        )
        machine = sfn.create_state_machine(
            name=resource_name(settings, "backup"), roleArn=states_role["Role"]["Arn"],
            definition=definition(asl.TEMPLATE, template_values(settings, account, region)),
        )
        return cls(aws, settings, account, machine["stateMachineArn"], database["stateMachineArn"], arns, topic,
                   queue_url, slack_path, bucket, copy_key, environments)
