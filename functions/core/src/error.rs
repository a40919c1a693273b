//! The error contract between the functions and the state machine.
//!
//! Step Functions matches `Retry` and `Catch` on the `errorType` a function
//! returns. Those names are listed once, in [`ErrorType`], and documented in the
//! README's error table; `statemachine/` refers to them by these strings.

use std::error::Error as StdError;
use std::fmt;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Stable `errorType` names. Never rename one without changing `statemachine/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// AWS throttled the call and the SDK's own retries ran out.
    Throttled,
    /// AWS answered 5xx, timed out or the connection failed, after the SDK's retries.
    AwsUnavailable,
    /// The database is in a transient state (backup, modification, reboot...).
    DatabaseBusy,
    /// The snapshot is not yet in a state that allows the operation.
    SnapshotBusy,
    /// The destination region has no free slot for another cross-region copy.
    CopySlotsFull,
    /// The account already runs the maximum number of snapshot exports.
    ExportSlotsFull,
    /// The execution input of a state is malformed.
    InvalidInput,
    /// The function's configuration (environment) is missing or malformed.
    ConfigError,
    /// The database does not exist in the region.
    DatabaseNotFound,
    /// The database exists but cannot be backed up in its present state.
    DatabaseNotAvailable,
    /// A snapshot this run created or copied is gone.
    SnapshotNotFound,
    /// An export task this run started is gone.
    ExportTaskNotFound,
    /// The region's manual snapshot quota is used up.
    SnapshotQuotaExceeded,
    /// The snapshot ended in a failed status.
    SnapshotFailed,
    /// The export task failed or was canceled.
    ExportFailed,
    /// A snapshot or task with our deterministic identifier exists but is not ours.
    IdentifierConflict,
    /// IAM, KMS or S3 refused the call.
    AccessDenied,
    /// Any other AWS error; permanent.
    AwsRequestFailed,
    /// The run summary could not be delivered (SNS or CloudWatch).
    NotificationFailed,
}

impl ErrorType {
    /// Every name, in the order of the README table.
    pub const ALL: [ErrorType; 19] = [
        ErrorType::Throttled,
        ErrorType::AwsUnavailable,
        ErrorType::DatabaseBusy,
        ErrorType::SnapshotBusy,
        ErrorType::CopySlotsFull,
        ErrorType::ExportSlotsFull,
        ErrorType::InvalidInput,
        ErrorType::ConfigError,
        ErrorType::DatabaseNotFound,
        ErrorType::DatabaseNotAvailable,
        ErrorType::SnapshotNotFound,
        ErrorType::ExportTaskNotFound,
        ErrorType::SnapshotQuotaExceeded,
        ErrorType::SnapshotFailed,
        ErrorType::ExportFailed,
        ErrorType::IdentifierConflict,
        ErrorType::AccessDenied,
        ErrorType::AwsRequestFailed,
        ErrorType::NotificationFailed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::Throttled => "Throttled",
            ErrorType::AwsUnavailable => "AwsUnavailable",
            ErrorType::DatabaseBusy => "DatabaseBusy",
            ErrorType::SnapshotBusy => "SnapshotBusy",
            ErrorType::CopySlotsFull => "CopySlotsFull",
            ErrorType::ExportSlotsFull => "ExportSlotsFull",
            ErrorType::InvalidInput => "InvalidInput",
            ErrorType::ConfigError => "ConfigError",
            ErrorType::DatabaseNotFound => "DatabaseNotFound",
            ErrorType::DatabaseNotAvailable => "DatabaseNotAvailable",
            ErrorType::SnapshotNotFound => "SnapshotNotFound",
            ErrorType::ExportTaskNotFound => "ExportTaskNotFound",
            ErrorType::SnapshotQuotaExceeded => "SnapshotQuotaExceeded",
            ErrorType::SnapshotFailed => "SnapshotFailed",
            ErrorType::ExportFailed => "ExportFailed",
            ErrorType::IdentifierConflict => "IdentifierConflict",
            ErrorType::AccessDenied => "AccessDenied",
            ErrorType::AwsRequestFailed => "AwsRequestFailed",
            ErrorType::NotificationFailed => "NotificationFailed",
        }
    }

    /// Whether the state machine retries this error (with backoff) before catching it.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorType::Throttled
                | ErrorType::AwsUnavailable
                | ErrorType::DatabaseBusy
                | ErrorType::SnapshotBusy
                | ErrorType::CopySlotsFull
                | ErrorType::ExportSlotsFull
        )
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// Codes that mean a principal, key, role or bucket refused us: retrying cannot help.
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
    "KMSAccessDeniedException",
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
                Some(c) if THROTTLING_ERRORS.contains(&c) => AwsFailureKind::Throttled,
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
        match self.kind {
            AwsFailureKind::Throttled => ErrorType::Throttled,
            AwsFailureKind::Unavailable => ErrorType::AwsUnavailable,
            AwsFailureKind::AccessDenied => ErrorType::AccessDenied,
            AwsFailureKind::Rejected => ErrorType::AwsRequestFailed,
        }
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

/// Errors shared by every function.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    #[error("configuration {field} is invalid: {reason}")]
    Config { field: String, reason: String },
    #[error("input {field} is invalid: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("{0}")]
    Aws(AwsFailure),
    #[error("snapshot {snapshot_id} not found in {region}")]
    SnapshotNotFound { snapshot_id: String, region: String },
    #[error("snapshot {snapshot_id} in {region} is {status}: {reason}")]
    SnapshotBusy {
        snapshot_id: String,
        region: String,
        status: String,
        reason: String,
    },
    #[error(
        "manual {kind} snapshot quota in {region} is used up ({detail}); \
         delete old snapshots or ask AWS to raise the quota"
    )]
    SnapshotQuotaExceeded {
        kind: &'static str,
        region: String,
        detail: String,
    },
    #[error("{resource} {id} in {region} already exists but was not created by this module: {reason}")]
    IdentifierConflict {
        resource: &'static str,
        id: String,
        region: String,
        reason: String,
    },
}

impl CoreError {
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn error_type(&self) -> ErrorType {
        match self {
            CoreError::Config { .. } => ErrorType::ConfigError,
            CoreError::InvalidInput { .. } => ErrorType::InvalidInput,
            CoreError::Aws(failure) => failure.error_type(),
            CoreError::SnapshotNotFound { .. } => ErrorType::SnapshotNotFound,
            CoreError::SnapshotBusy { .. } => ErrorType::SnapshotBusy,
            CoreError::SnapshotQuotaExceeded { .. } => ErrorType::SnapshotQuotaExceeded,
            CoreError::IdentifierConflict { .. } => ErrorType::IdentifierConflict,
        }
    }
}

impl From<AwsFailure> for CoreError {
    fn from(failure: AwsFailure) -> Self {
        CoreError::Aws(failure)
    }
}

/// Builds the `Diagnostic` Lambda reports for any error with a stable name.
pub fn diagnostic(error_type: ErrorType, error: &dyn fmt::Display) -> lambda_runtime::Diagnostic {
    lambda_runtime::Diagnostic {
        error_type: error_type.as_str().to_owned(),
        error_message: error.to_string(),
    }
}

impl From<CoreError> for lambda_runtime::Diagnostic {
    fn from(err: CoreError) -> Self {
        diagnostic(err.error_type(), &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_stable() {
        let names: HashSet<_> = ErrorType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), ErrorType::ALL.len());
        assert_eq!(ErrorType::CopySlotsFull.as_str(), "CopySlotsFull");
        assert!(ErrorType::CopySlotsFull.is_retryable());
        assert!(!ErrorType::SnapshotQuotaExceeded.is_retryable());
    }

    /// The README's error table is what `statemachine/` authors read: it must
    /// list exactly these names, in this order, with the same retry column.
    #[test]
    fn readme_error_table_lists_every_name_with_its_retry_class() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split("<!-- error-types:start -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- error-types:end -->").next())
            .expect("README.md has the error-types markers");
        let rows: Vec<(String, bool)> = table
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[2] == "yes")
            })
            .collect();
        let expected: Vec<(String, bool)> = ErrorType::ALL
            .iter()
            .map(|t| (t.as_str().to_owned(), t.is_retryable()))
            .collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn diagnostic_carries_stable_name_and_message() {
        let err = CoreError::invalid_input("db_identifier", "must start with a letter");
        let diag = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diag.error_type, "InvalidInput");
        assert_eq!(
            diag.error_message,
            "input db_identifier is invalid: must start with a letter"
        );
    }
}
