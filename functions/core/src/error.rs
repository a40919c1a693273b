//! The error contract between the functions and the state machine.
//!
//! Step Functions matches `Retry` and `Catch` on the `errorType` a function
//! returns. Every function fails with one [`Error`], whose variant names are
//! those `errorType` names ([`ErrorType`], derived from the variants, so the
//! two cannot drift). Their retry classes and descriptions go into the
//! contract (`crate::contract`, `statemachine/contract.json`), from which the
//! state machines' `Retry` blocks and the docs' error table are made.

use std::error::Error as StdError;
use std::fmt;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Every failure of a function. The variant's name is the stable `errorType`
/// Step Functions sees: never rename one without changing `statemachine/`.
#[derive(Debug, Clone, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(ErrorType),
    vis(pub),
    derive(Hash, strum::EnumIter, strum::IntoStaticStr, strum::Display, strum::EnumMessage)
)]
pub enum Error {
    /// AWS throttled the call and the SDK's own retries (`AWS_MAX_ATTEMPTS`, 6 by default) ran out.
    #[error("{0}")]
    Throttled(AwsFailure),
    /// AWS answered 5xx, timed out or the connection failed, after the SDK's retries.
    #[error("{0}")]
    AwsUnavailable(AwsFailure),
    /// The database is backing up, modifying, rebooting...: a transient state.
    #[error("{kind} {db_identifier} in {region} is {status}; retrying until it is available")]
    DatabaseBusy {
        kind: &'static str,
        db_identifier: String,
        region: String,
        status: String,
    },
    /// The source snapshot is not yet in a state for the operation.
    #[error("snapshot {snapshot_id} in {region} is {status}: {reason}")]
    SnapshotBusy {
        snapshot_id: String,
        region: String,
        status: String,
        reason: String,
    },
    /// The destination region ran its maximum of cross-region copies for as long
    /// as the copy may wait (`copy_wait_timeout_seconds`): no slot came free.
    #[error(
        "cross-region copy slots in {region} were full for all the {waited_seconds} s that the copy of \
         {snapshot_id} waited for one, the bound set by copy_wait_timeout_seconds ({detail})"
    )]
    CopySlotsFull {
        snapshot_id: String,
        region: String,
        detail: String,
        waited_seconds: u64,
    },
    /// The account ran its maximum of five snapshot exports for as long as the
    /// export may wait (`export_wait_timeout_seconds`): no slot came free.
    #[error(
        "{running} snapshot exports were running in {region} (RDS allows {}) for all the {waited_seconds} s that \
         {export_task_id} waited for a slot, the bound set by export_wait_timeout_seconds",
        crate::exports::MAX_RUNNING_EXPORTS
    )]
    ExportSlotsFull {
        export_task_id: String,
        region: String,
        running: String,
        waited_seconds: u64,
    },
    /// The state's input is malformed; the message names the field.
    #[error("input {field} is invalid: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The function's environment is missing or malformed; the message names the variable.
    #[error("configuration {field} is invalid: {reason}")]
    ConfigError { field: String, reason: String },
    /// No DB instance or DB cluster has this identifier in the region.
    #[error("database {db_identifier} not found in {region}: no DB instance{also} has this identifier")]
    DatabaseNotFound {
        db_identifier: String,
        region: String,
        also: &'static str,
    },
    /// The database cannot be backed up as it is: stopped, storage-full, deleting, failed, or an Aurora member.
    #[error("{kind} {db_identifier} in {region} cannot be backed up: {reason}")]
    DatabaseNotAvailable {
        kind: &'static str,
        db_identifier: String,
        region: String,
        reason: String,
    },
    /// A snapshot this run created or copied is gone.
    #[error("snapshot {snapshot_id} not found in {region}")]
    SnapshotNotFound { snapshot_id: String, region: String },
    /// An export task this run started is gone.
    #[error("export task {export_task_id} not found in {region}")]
    ExportTaskNotFound { export_task_id: String, region: String },
    /// The region's manual snapshot quota is used up.
    #[error(
        "manual {kind} snapshot quota in {region} is used up ({detail}); \
         delete old snapshots or ask AWS to raise the quota"
    )]
    SnapshotQuotaExceeded {
        kind: &'static str,
        region: String,
        detail: String,
    },
    /// The snapshot ended in a failed status.
    #[error("snapshot {snapshot_id} in {region} ended in status {status}")]
    SnapshotFailed {
        snapshot_id: String,
        region: String,
        status: String,
    },
    /// The export task failed or was canceled.
    #[error("export task {export_task_id} in {region} ended in status {status}: {cause}")]
    ExportFailed {
        export_task_id: String,
        region: String,
        status: String,
        cause: String,
    },
    /// A snapshot, copy or export was not ready within its wait's bound (`*_wait_timeout_seconds`).
    #[error("{what} was still {status} after {elapsed_seconds} seconds, the bound set by {timeout_field}")]
    WaitTimedOut {
        /// What was waited for, named ("snapshot copy <id> in <region>").
        what: String,
        /// Its last status and progress ("creating (40% done)").
        status: String,
        elapsed_seconds: u64,
        timeout_field: String,
    },
    /// Our deterministic identifier is taken by a snapshot or task that is not ours.
    #[error("{resource} {id} in {region} already exists but was not created by this module: {reason}")]
    IdentifierConflict {
        resource: &'static str,
        id: String,
        region: String,
        reason: String,
    },
    /// The run's check of the vault found a key or the vault's role unusable: no database's
    /// snapshot goes to the vault in this run, and this one message says why.
    #[error("no snapshot goes to the vault in this run: {detail}")]
    VaultUnusable { detail: String },
    /// AWS cannot share this snapshot with the vault account or encrypt it there: it stays
    /// in the source account only.
    #[error("snapshot {snapshot_id} in {region} cannot go to the vault: {reason}")]
    VaultCopyRefused {
        snapshot_id: String,
        region: String,
        reason: String,
    },
    /// IAM, KMS or S3 refused the call (e.g. `KMSKeyNotAccessibleFault`).
    #[error("{0}")]
    AccessDenied(AwsFailure),
    /// Any other AWS error; permanent.
    #[error("{0}")]
    AwsRequestFailed(AwsFailure),
    /// A destroy (Terraform, `s3_force_destroy` off) reached buckets that still hold
    /// exports: it stops there, before anything that protects or encrypts them goes.
    #[error(
        "{buckets} still hold objects (s3_force_destroy is off): the destroy stops before it removes their \
         policy, public access block, encryption, lifecycle, versioning or logging, or the key that encrypts \
         them. To keep the exports, retire the module as docs/operations.md says (\"Destroy, retire, and the \
         module's key\"); to delete them with the stack, apply s3_force_destroy = true first"
    )]
    BucketsHoldBackups { buckets: String },
    /// Prune would delete more of a database's snapshots in one run than the guard allows
    /// (a retention change, or a typo in one): it deletes nothing until a run confirms it.
    #[error(
        "prune would delete {deleting} of the {available} snapshots of {db_identifier} in {region} in one run, \
         more than prune_guard_fraction ({fraction}) allows: nothing was deleted in any region. If the retention \
         change is meant, run once with the input {{\"confirm_retention_change\": true}} (a dry run first shows \
         what goes)"
    )]
    RetentionChangeUnconfirmed {
        db_identifier: String,
        region: String,
        deleting: usize,
        available: usize,
        fraction: String,
    },
    /// A restore drill found nothing it may restore, or RDS's settings refuse the restore
    /// (no backup of the database, no instance class in the copy region...): nothing was created.
    #[error("the drill of {db_identifier} in {region} restores nothing: {reason}")]
    RestoreRefused {
        db_identifier: String,
        region: String,
        reason: String,
    },
    /// A drill's restored database ended in a failed status, or vanished, before it was available.
    #[error("the drill's restore of {db_identifier} to {restored_id} in {region} failed: it is {status}")]
    RestoreFailed {
        db_identifier: String,
        restored_id: String,
        region: String,
        status: String,
    },
    /// SNS or CloudWatch did not take the run summary.
    #[error("run summary not delivered: {0}")]
    NotificationFailed(String),
}

impl ErrorType {
    /// Every name, in the order of the variants (and of the docs' table).
    pub fn all() -> impl Iterator<Item = ErrorType> {
        <ErrorType as strum::IntoEnumIterator>::iter()
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How an AWS call failed, once the SDK's own retries are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFailureKind {
    Throttled,
    Unavailable,
    AccessDenied,
    Rejected,
}

/// A failed AWS call: which action, the service's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    pub action: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub kind: AwsFailureKind,
}

/// Throttling codes of the services called that the SDK's list lacks: SNS and Step
/// Functions report KMS throttling their own way (Publish, StartExecution).
const KMS_THROTTLING_ERRORS: &[&str] = &["KMSThrottling", "KmsThrottlingException"];

/// Codes that mean a principal, key, role or bucket refused us: retrying cannot help.
/// The KMS ones are each service's own (SNS Publish: `KMSAccessDenied`...; Step
/// Functions: `KmsAccessDeniedException`...; Secrets Manager: `DecryptionFailure`).
const ACCESS_DENIED_ERRORS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "KMSKeyNotAccessibleFault",
    "IamRoleNotFound",
    "IamRoleMissingPermissions",
    "InvalidS3BucketFault",
    "KMSAccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSOptInRequired",
    "KmsAccessDeniedException",
    "KmsInvalidStateException",
    "DecryptionFailure",
];

impl AwsFailure {
    /// Classifies an SDK error of `action` (the API operation name, e.g. `CreateDBSnapshot`).
    pub fn from_sdk<E>(action: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let code = err.code().map(str::to_owned);
        let message = err.message().map(str::to_owned).unwrap_or_else(|| error_chain(err));
        let kind = match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                AwsFailureKind::Unavailable
            }
            SdkError::ConstructionFailure(_) => AwsFailureKind::Rejected,
            _ => match code.as_deref() {
                Some(c) if THROTTLING_ERRORS.contains(&c) || KMS_THROTTLING_ERRORS.contains(&c) => {
                    AwsFailureKind::Throttled
                }
                Some(c) if TRANSIENT_ERRORS.contains(&c) => AwsFailureKind::Unavailable,
                Some(c) if ACCESS_DENIED_ERRORS.contains(&c) => AwsFailureKind::AccessDenied,
                _ if err.raw_response().is_some_and(|r| r.status().is_server_error()) => AwsFailureKind::Unavailable,
                _ => AwsFailureKind::Rejected,
            },
        };
        AwsFailure {
            action,
            code,
            message,
            kind,
        }
    }

    pub fn error_type(&self) -> ErrorType {
        ErrorType::from(&Error::from(self.clone()))
    }
}

impl fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} failed: {code}: {}", self.action, self.message),
            None => write!(f, "{} failed: {}", self.action, self.message),
        }
    }
}

/// The whole `source()` chain of an error on one line: dispatch and timeout
/// errors hide the useful part (connection refused, reset) in their sources.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Error {
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::ConfigError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The stable `errorType` name of this error.
    pub fn error_type(&self) -> ErrorType {
        self.into()
    }
}

/// A failed AWS call becomes the error its kind names.
impl From<AwsFailure> for Error {
    fn from(failure: AwsFailure) -> Self {
        match failure.kind {
            AwsFailureKind::Throttled => Error::Throttled(failure),
            AwsFailureKind::Unavailable => Error::AwsUnavailable(failure),
            AwsFailureKind::AccessDenied => Error::AccessDenied(failure),
            AwsFailureKind::Rejected => Error::AwsRequestFailed(failure),
        }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_type().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_stable() {
        let names: HashSet<_> = ErrorType::all().map(ErrorType::as_str).collect();
        assert_eq!(names.len(), ErrorType::all().count());
        assert_eq!(ErrorType::CopySlotsFull.as_str(), "CopySlotsFull");
        assert!(ErrorType::DatabaseBusy.is_retryable());
        assert!(!ErrorType::CopySlotsFull.is_retryable());
        assert!(!ErrorType::SnapshotQuotaExceeded.is_retryable());
    }

    #[test]
    fn diagnostic_carries_stable_name_and_message() {
        let err = Error::invalid_input("db_identifier", "must start with a letter");
        let diag = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diag.error_type, "InvalidInput");
        assert_eq!(
            diag.error_message,
            "input db_identifier is invalid: must start with a letter"
        );
    }
}
