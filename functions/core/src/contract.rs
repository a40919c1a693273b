//! The one contract between the functions and everything around them: each
//! function's environment variables, the stable error names with their retry
//! classes, the `Retry` policy of every Lambda task of the state machines, and
//! the fields of a run's execution input (`crate::run::FIELDS`).
//!
//! `statemachine/contract.json` is generated from here
//! (`cargo run --package backup-core --bin contract`) and a test fails when
//! the checked-in file differs. Terraform reads it (`jsondecode(file(...))`)
//! for the functions' environment checks, the state machines' `Retry` blocks
//! and the check of the run's defaults; the tests and the docs' tables read it too.

use serde::Serialize;
use serde_json::{Value, json};
use strum::{EnumMessage, IntoEnumIterator};

use crate::error::ErrorType;

/// The functions, by the name Terraform and the state machines use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Function {
    /// The run's settings from its execution input and the module's configuration.
    Select,
    Snapshot,
    WaitForAvailable,
    Export,
    Copy,
    /// Copies each snapshot into the vault account, and checks the vault at the start of a run.
    Vault,
    Prune,
    Notify,
    /// The restore drills' steps (`<prefix>-drill`): deployed only with `restore_drill`.
    Drill,
    /// A drill's read-only SQL probe of the restored database, in the drill databases' VPC:
    /// deployed only with `restore_drill.sql_probe`.
    Probe,
}

/// The names of the functions' environment variables.
pub mod env {
    pub const PROJECT_NAME: &str = "PROJECT_NAME";
    pub const ENVIRONMENT: &str = "ENVIRONMENT";
    pub const BACKUP_INSTANCE: &str = "BACKUP_INSTANCE";
    pub const ADOPTED_INSTANCES: &str = "ADOPTED_INSTANCES";
    pub const PROJECT_TAG_KEY: &str = "PROJECT_TAG_KEY";
    pub const ENVIRONMENT_TAG_KEY: &str = "ENVIRONMENT_TAG_KEY";
    pub const ADDITIONAL_TAGS: &str = "ADDITIONAL_TAGS";
    pub const EXPORT_BUCKET: &str = "EXPORT_BUCKET";
    pub const EXPORT_ROLE_ARN: &str = "EXPORT_ROLE_ARN";
    pub const EXPORT_KMS_KEY_ARN: &str = "EXPORT_KMS_KEY_ARN";
    pub const COPY_DESTINATION_REGION: &str = "COPY_DESTINATION_REGION";
    pub const COPY_KMS_KEY_ARN: &str = "COPY_KMS_KEY_ARN";
    pub const COPY_OPTION_GROUPS: &str = "COPY_OPTION_GROUPS";
    pub const RETENTION_DAYS: &str = "RETENTION_DAYS";
    pub const MIN_SNAPSHOTS_TO_KEEP: &str = "MIN_SNAPSHOTS_TO_KEEP";
    pub const DRY_RUN: &str = "DRY_RUN";
    pub const MAX_SNAPSHOT_AGE_HOURS: &str = "MAX_SNAPSHOT_AGE_HOURS";
    pub const RETENTION_POLICY: &str = "RETENTION_POLICY";
    pub const COPY_RETENTION_POLICY: &str = "COPY_RETENTION_POLICY";
    pub const PRUNE_GUARD_FRACTION: &str = "PRUNE_GUARD_FRACTION";
    pub const COPIED_FROM_ACCOUNT: &str = "COPIED_FROM_ACCOUNT";
    pub const EXPORT_TIERS: &str = "EXPORT_TIERS";
    pub const SNS_TOPIC_ARN: &str = "SNS_TOPIC_ARN";
    pub const SLACK_WEBHOOK_SECRET_ARN: &str = "SLACK_WEBHOOK_SECRET_ARN";
    pub const SLACK_WEBHOOK_SECRET_VERSION: &str = "SLACK_WEBHOOK_SECRET_VERSION";
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    pub const DATABASE_STATE_MACHINE_ARN: &str = "DATABASE_STATE_MACHINE_ARN";
    pub const AUTOMATED_BACKUPS: &str = "AUTOMATED_BACKUPS";
    pub const DRILL: &str = "DRILL";
    pub const PROBE_EXTRA_CA_CERTIFICATES: &str = "PROBE_EXTRA_CA_CERTIFICATES";
    pub const EXPORT_SLOT_QUEUE_URL: &str = "EXPORT_SLOT_QUEUE_URL";
    pub const SCHEDULE_GROUP_NAME: &str = "SCHEDULE_GROUP_NAME";
    pub const SCHEDULER_ROLE_ARN: &str = "SCHEDULER_ROLE_ARN";
    pub const SELECTION: &str = "SELECTION";
    pub const VAULT_ACCOUNT_ID: &str = "VAULT_ACCOUNT_ID";
    pub const VAULT_REGION: &str = "VAULT_REGION";
    pub const VAULT_ROLE_ARN: &str = "VAULT_ROLE_ARN";
    pub const VAULT_EXTERNAL_ID: &str = "VAULT_EXTERNAL_ID";
    pub const VAULT_KMS_KEY_ARN: &str = "VAULT_KMS_KEY_ARN";
    pub const VAULT_SHARE_KMS_KEY_ARN: &str = "VAULT_SHARE_KMS_KEY_ARN";
    pub const VAULT_CLUSTER_SHARE_KMS_KEY_ARN: &str = "VAULT_CLUSTER_SHARE_KMS_KEY_ARN";
}

/// One environment variable a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Variable {
    pub name: &'static str,
    /// Whether the function refuses to start without it.
    pub required: bool,
    pub description: &'static str,
}

const fn required(name: &'static str, description: &'static str) -> Variable {
    Variable {
        name,
        required: true,
        description,
    }
}

const fn optional(name: &'static str, description: &'static str) -> Variable {
    Variable {
        name,
        required: false,
        description,
    }
}

/// What every function but `wait-for-available` reads: the module instance's identity.
const MODULE: [Variable; 7] = [
    required(
        env::PROJECT_NAME,
        "the module's project_name: tags, S3 prefix, messages",
    ),
    required(env::ENVIRONMENT, "the module's environment: tags, S3 prefix, messages"),
    required(
        env::BACKUP_INSTANCE,
        "value of the managed-by tag: `<project>/<environment>/<region>`",
    ),
    optional(
        env::ADOPTED_INSTANCES,
        "JSON array of earlier instances' managed-by values whose snapshots this one takes over (default `[]`)",
    ),
    optional(
        env::PROJECT_TAG_KEY,
        "key of the snapshots' project tag (default `Project`)",
    ),
    optional(
        env::ENVIRONMENT_TAG_KEY,
        "key of the snapshots' environment tag (default `Environment`)",
    ),
    optional(
        env::ADDITIONAL_TAGS,
        "JSON object of tags put on every snapshot (default `{}`)",
    ),
];

/// The errors every function may raise: a malformed input or environment.
pub const COMMON_ERRORS: [ErrorType; 2] = [ErrorType::InvalidInput, ErrorType::ConfigError];

/// The errors of AWS's answers, which every function may raise.
pub const AWS_ERRORS: [ErrorType; 4] = [
    ErrorType::Throttled,
    ErrorType::AwsUnavailable,
    ErrorType::AccessDenied,
    ErrorType::AwsRequestFailed,
];

/// When a Lambda task retries an error, and how: one policy per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RetryClass {
    /// Lambda's own transient errors (service, SDK client, timeout of the invoke).
    LambdaService,
    /// Lambda throttled the invoke (concurrency).
    LambdaThrottled,
    /// AWS throttled or failed a call of the function, after the SDK's retries.
    Aws,
    /// The database or snapshot is in a transient state: wait for it.
    Busy,
}

/// One entry of a state's `Retry` list, as Amazon States Language spells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryRule {
    pub error_equals: Vec<&'static str>,
    pub interval_seconds: u32,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: u32,
    /// Full jitter: retries of many databases do not hit RDS at the same instant.
    pub jitter_strategy: &'static str,
}

impl RetryClass {
    fn rule(self, error_equals: Vec<&'static str>) -> RetryRule {
        let (interval_seconds, max_attempts, backoff_rate, max_delay_seconds) = match self {
            RetryClass::LambdaService => (2, 6, 2.0, 60),
            RetryClass::LambdaThrottled => (2, 8, 2.0, 120),
            RetryClass::Aws => (3, 6, 2.0, 120),
            RetryClass::Busy => (60, 10, 1.5, 900),
        };
        RetryRule {
            error_equals,
            interval_seconds,
            max_attempts,
            backoff_rate,
            max_delay_seconds,
            jitter_strategy: "FULL",
        }
    }

    /// The errors of this class that are Lambda's own, not the functions'.
    fn lambda_errors(self) -> &'static [&'static str] {
        match self {
            RetryClass::LambdaService => &[
                "Lambda.ServiceException",
                "Lambda.AWSLambdaException",
                "Lambda.SdkClientException",
                "Lambda.ClientExecutionTimeoutException",
            ],
            RetryClass::LambdaThrottled => &["Lambda.TooManyRequestsException"],
            _ => &[],
        }
    }
}

impl ErrorType {
    /// How the state machine retries this error before catching it (`None`: it does not).
    pub const fn retry_class(self) -> Option<RetryClass> {
        match self {
            ErrorType::Throttled | ErrorType::AwsUnavailable => Some(RetryClass::Aws),
            // A full export or copy slot is waited for in the state machine (`slot_full`), to its bound.
            ErrorType::DatabaseBusy | ErrorType::SnapshotBusy => Some(RetryClass::Busy),
            _ => None,
        }
    }

    /// Whether the state machine retries this error (with backoff) before catching it.
    pub const fn is_retryable(self) -> bool {
        self.retry_class().is_some()
    }

    /// What the error means: the doc comment of its variant.
    pub fn description(self) -> &'static str {
        self.get_documentation().unwrap_or_default()
    }
}

/// Export and wait-for-available read the queue alike.
const EXPORT_SLOT_QUEUE: &str = "the queue of exports waiting for a slot: the poll that sees an export end, and an export's first try that finds a slot free, wake the waiter whose wait began first, and such a first try queues behind it (unset: no hand-on, a free slot is taken)";

impl Function {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The environment variables the function reads.
    pub fn environment(self) -> Vec<Variable> {
        let own: &[Variable] = match self {
            Function::Select => &[optional(
                env::SELECTION,
                "JSON object of the selection by tag and name: `tags`, `exclude_tags`, `patterns` (default `{}`: the named databases only)",
            )],
            Function::Snapshot => &[],
            Function::WaitForAvailable => &[
                required(
                    env::SCHEDULE_GROUP_NAME,
                    "the EventBridge Scheduler group of the waits' one-time schedules (each poll schedules the next)",
                ),
                required(
                    env::SCHEDULER_ROLE_ARN,
                    "the role EventBridge Scheduler assumes to invoke this function for the next poll",
                ),
                optional(env::EXPORT_SLOT_QUEUE_URL, EXPORT_SLOT_QUEUE),
            ],
            Function::Export => &[
                required(env::EXPORT_BUCKET, "the S3 bucket exports are written to"),
                required(env::EXPORT_ROLE_ARN, "the role RDS assumes to write the export"),
                required(env::EXPORT_KMS_KEY_ARN, "the KMS key exports are encrypted with"),
                optional(
                    env::EXPORT_TIERS,
                    "a JSON list of tiers (daily, weekly, monthly, yearly): only the snapshot that represents its period in one of them is exported, the first of the period whose export did not fail (unset or empty: every snapshot)",
                ),
                optional(env::EXPORT_SLOT_QUEUE_URL, EXPORT_SLOT_QUEUE),
            ],
            Function::Copy => &[
                required(
                    env::COPY_DESTINATION_REGION,
                    "the region of the cross-region copies; prune prunes there too",
                ),
                optional(
                    env::COPY_KMS_KEY_ARN,
                    "a KMS key in the destination region; required for encrypted snapshots",
                ),
                optional(
                    env::COPY_OPTION_GROUPS,
                    "a JSON object: source option group -> the destination region's option group with the same persistent and permanent options (Oracle and SQL Server TDE); a snapshot that needs one and has none is not copied, with a warning",
                ),
            ],
            Function::Vault => &[
                required(env::VAULT_ACCOUNT_ID, "the vault account, where the copies go"),
                required(
                    env::VAULT_REGION,
                    "the vault's region (the source region, or another: a DB snapshot's copy crosses both in one step, a DB cluster snapshot's in two, see VAULT_CLUSTER_SHARE_KMS_KEY_ARN)",
                ),
                required(
                    env::VAULT_ROLE_ARN,
                    "the vault account's role the function assumes: it may copy into the vault and tag, nothing else",
                ),
                optional(
                    env::VAULT_EXTERNAL_ID,
                    "the external id the vault role's trust policy asks for (unset: none sent)",
                ),
                required(
                    env::VAULT_KMS_KEY_ARN,
                    "the vault's key, in the vault's region: every vault copy is encrypted with it",
                ),
                required(
                    env::VAULT_SHARE_KMS_KEY_ARN,
                    "the module's key in the source region whose policy lets the vault account use it: a snapshot under another key (aws/rds cannot be shared) or none is first copied with it",
                ),
                optional(
                    env::VAULT_CLUSTER_SHARE_KMS_KEY_ARN,
                    "for a vault in another region: a key of the source account in the vault's region whose policy lets the vault account use it; a DB cluster snapshot is first copied there with it, then shared (it cannot cross regions and accounts in one copy). Unset: cluster snapshots are not vaulted there (VaultCopyRefused)",
                ),
            ],
            Function::Prune => &[
                optional(
                    env::EXPORT_BUCKET,
                    "the S3 bucket exports are written to: the run summary reports what it holds by storage class and its cost (unset: not reported)",
                ),
                optional(
                    env::RETENTION_DAYS,
                    "days a snapshot of ours is kept, 1 to 36500 (default 30)",
                ),
                optional(
                    env::MIN_SNAPSHOTS_TO_KEEP,
                    "newest snapshots of a database always kept, at least 1 (default 3)",
                ),
                optional(
                    env::DRY_RUN,
                    "true: report what would be deleted, delete nothing (default false)",
                ),
                optional(
                    env::COPY_DESTINATION_REGION,
                    "the region of the cross-region copies; prune prunes there too",
                ),
                optional(
                    env::MAX_SNAPSHOT_AGE_HOURS,
                    "hours: a database whose newest snapshot of ours is older keeps every snapshot, and the run fails naming it (unset: no such check; Terraform sets the no-recent-backup alarm's hours)",
                ),
                optional(
                    env::RETENTION_POLICY,
                    "JSON counts of daily, weekly, monthly and yearly snapshots to keep, in place of RETENTION_DAYS (unset or empty: keep by age)",
                ),
                optional(
                    env::COPY_RETENTION_POLICY,
                    "the same for the copies in the destination region (unset or empty: as in the source region)",
                ),
                optional(
                    env::PRUNE_GUARD_FRACTION,
                    "above 0, at most 1: a run that would delete more of a database's snapshots than this fraction deletes nothing unless its input confirms it (default 0.5; 1: no guard)",
                ),
                optional(
                    env::COPIED_FROM_ACCOUNT,
                    "an account id: only snapshots RDS records as copied from that account's snapshots are ours, whatever their tags say (the vault account's prune: the source account may tag vault copies, not change where RDS says they came from)",
                ),
            ],
            Function::Notify => &[
                required(env::SNS_TOPIC_ARN, "the topic the run summary is published to"),
                optional(
                    env::SLACK_WEBHOOK_SECRET_ARN,
                    "the Secrets Manager secret holding the Slack incoming-webhook URL, read at cold start (the URL is a secret: never logged)",
                ),
                optional(
                    env::SLACK_WEBHOOK_SECRET_VERSION,
                    "the secret's version to read (Terraform sets the one it wrote, so that a new URL starts new environments; unset: the current one)",
                ),
                optional(
                    env::METRICS_NAMESPACE,
                    "CloudWatch namespace of the metrics (default `CustomMetrics/DatabaseBackup`)",
                ),
                optional(
                    env::COPIED_FROM_ACCOUNT,
                    "an account id (the vault account's measurement): only snapshots RDS records as copied from that account's snapshots count, each of the database RDS records, whatever their tags say",
                ),
                optional(
                    env::DATABASE_STATE_MACHINE_ARN,
                    "`<prefix>-database`, whose executions hold each database's result (unset only in the vault account, whose deployment measures `VaultSnapshotAge` and sends no run summary)",
                ),
                optional(
                    env::AUTOMATED_BACKUPS,
                    "JSON `{retention_days, window, shorten_retention}`: as each run ends, its databases get this automated backup retention (1-35 days; a longer one is kept unless shorten_retention) and backup window, ApplyImmediately off (unset or empty: left alone)",
                ),
            ],
            Function::Drill => &[
                required(
                    env::DRILL,
                    "JSON object of the drills (`restore_drill`): `copy` (source, copy or vault), `identifier_prefix` of the drill databases, `instance_class`, `subnet_group`, `security_group_ids`, `rto_minutes`, `keep_minutes`, `max_wait_minutes`, `poll_seconds`, `databases`, `random_count`, `vault` (the vault's drill role: `account_id`, `region`, `role_arn`, `external_id`; null without one), and `sql_probe` (`secret_arns` by database, `query`, `connect_timeout_seconds`; null without one)",
                ),
                optional(
                    env::COPY_DESTINATION_REGION,
                    "the region of the cross-region copies: where a drill of `copy` restores, and the sweeper looks too",
                ),
            ],
            Function::Probe => &[optional(
                env::PROBE_EXTRA_CA_CERTIFICATES,
                "PEM certificates of authorities trusted besides RDS's (the built-in rds-ca-bundle.pem): the local AWS's, whose databases RDS's authorities did not sign (unset: RDS's only)",
            )],
        };
        let module: &[Variable] = match self {
            Function::Select | Function::WaitForAvailable | Function::Probe => &[],
            _ => &MODULE,
        };
        module.iter().chain(own).copied().collect()
    }

    /// The errors this function raises besides [`COMMON_ERRORS`] and [`AWS_ERRORS`].
    pub fn raises(self) -> &'static [ErrorType] {
        use ErrorType::*;
        match self {
            Function::Select => &[],
            Function::Snapshot => &[
                DatabaseBusy,
                DatabaseNotFound,
                DatabaseNotAvailable,
                SnapshotNotFound,
                SnapshotQuotaExceeded,
                IdentifierConflict,
            ],
            Function::WaitForAvailable => &[
                SnapshotNotFound,
                ExportTaskNotFound,
                SnapshotFailed,
                ExportFailed,
                WaitTimedOut,
            ],
            Function::Export => &[
                SnapshotBusy,
                ExportSlotsFull,
                SnapshotNotFound,
                IdentifierConflict,
                BucketsHoldBackups,
            ],
            Function::Copy => &[
                SnapshotBusy,
                CopySlotsFull,
                SnapshotNotFound,
                SnapshotQuotaExceeded,
                IdentifierConflict,
            ],
            Function::Vault => &[
                SnapshotBusy,
                SnapshotNotFound,
                SnapshotFailed,
                SnapshotQuotaExceeded,
                IdentifierConflict,
                WaitTimedOut,
                VaultUnusable,
                VaultCopyRefused,
            ],
            Function::Prune => &[RetentionChangeUnconfirmed],
            Function::Notify => &[NotificationFailed],
            Function::Probe => &[],
            Function::Drill => &[
                DatabaseBusy,
                RestoreRefused,
                RestoreFailed,
                WaitTimedOut,
                IdentifierConflict,
            ],
        }
    }

    /// Whether the function may fail with `error`. Every function calls AWS (`select`
    /// when the module selects by tag or pattern).
    pub fn may_raise(self, error: ErrorType) -> bool {
        COMMON_ERRORS.contains(&error) || AWS_ERRORS.contains(&error) || self.raises().contains(&error)
    }

    /// The `Retry` list of every task that invokes this function: Lambda's
    /// own errors, then each retry class's errors the function raises.
    pub fn retry(self) -> Vec<RetryRule> {
        RetryClass::iter()
            .filter_map(|class| {
                let mut errors: Vec<&'static str> = class.lambda_errors().to_vec();
                errors.extend(
                    ErrorType::all()
                        .filter(|e| e.retry_class() == Some(class) && self.may_raise(*e))
                        .map(ErrorType::as_str),
                );
                (!errors.is_empty()).then(|| class.rule(errors))
            })
            .collect()
    }
}

/// The whole contract as JSON: what `statemachine/contract.json` holds.
pub fn document() -> Value {
    let errors: Vec<Value> = ErrorType::all()
        .map(|e| {
            let raised_by: Vec<&str> = if COMMON_ERRORS.contains(&e) {
                vec!["any"]
            } else if AWS_ERRORS.contains(&e) {
                vec!["any that calls AWS"]
            } else {
                Function::iter()
                    .filter(|f| f.raises().contains(&e))
                    .map(Function::name)
                    .collect()
            };
            json!({
                "name": e.as_str(),
                "retry_class": e.retry_class().map(<&'static str>::from),
                "raised_by": raised_by,
                "description": e.description(),
            })
        })
        .collect();
    let functions: serde_json::Map<String, Value> = Function::iter()
        .map(|f| {
            let entry = json!({"environment": f.environment(), "retry": f.retry()});
            (f.name().to_owned(), entry)
        })
        .collect();
    let execution_input: Vec<Value> = crate::run::FIELDS
        .iter()
        .map(|f| {
            json!({"name": f.name, "kind": f.kind, "expected": f.kind.expected(), "part": f.part,
                   "default": f.default, "effect": f.effect})
        })
        .collect();
    json!({
        "generated_by": "cargo run --package backup-core --bin contract",
        "version": crate::VERSION,
        "errors": errors,
        "functions": functions,
        "execution_input": execution_input,
        "waits": {
            "heartbeat_seconds": crate::run::WAIT_HEARTBEAT_SECONDS,
            "longest_poll_interval_seconds": crate::run::LONGEST_POLL_INTERVAL_SECONDS,
            "timeout_seconds": crate::run::WAIT_TASK_TIMEOUT_SECONDS,
        },
    })
}

/// The checked-in text of `statemachine/contract.json`: keys sorted, whether
/// or not serde_json keeps insertion order in this build (`preserve_order`).
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&sorted(document())).expect("the contract is plain JSON");
    text.push('\n');
    text
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_contract_is_generated_from_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../statemachine/contract.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == render(),
            "statemachine/contract.json differs from the code: run cargo run --package backup-core --bin contract"
        );
    }

    #[test]
    fn every_error_has_a_description_and_a_function_that_raises_it() {
        for error in ErrorType::all() {
            assert!(!error.description().is_empty(), "{error} has no doc comment");
            assert!(
                Function::iter().any(|f| f.may_raise(error)),
                "{error} is raised by no function"
            );
        }
    }

    #[test]
    fn retries_are_the_lambda_errors_then_each_class_the_function_raises() {
        let names = |f: Function| -> Vec<Vec<&str>> { f.retry().into_iter().map(|r| r.error_equals).collect() };
        let lambda_and_aws = [
            RetryClass::LambdaService.lambda_errors().to_vec(),
            RetryClass::LambdaThrottled.lambda_errors().to_vec(),
            vec!["Throttled", "AwsUnavailable"],
        ];
        assert_eq!(names(Function::Prune), lambda_and_aws);
        assert_eq!(names(Function::WaitForAvailable), lambda_and_aws);
        let mut copy = lambda_and_aws.to_vec();
        copy.push(vec!["SnapshotBusy"]);
        assert_eq!(names(Function::Copy), copy);
        let mut snapshot = lambda_and_aws.to_vec();
        snapshot.push(vec!["DatabaseBusy"]);
        assert_eq!(names(Function::Snapshot), snapshot);
    }
}
