//! AWS client setup: one `SdkConfig` per cold start, from which every client
//! is built, from the environment alone (`AWS_REGION`, the role's credentials,
//! `AWS_ENDPOINT_URL`), so the functions run unchanged against the local AWS.
//! aws-config's default chains (profile files, instance metadata, STS) are not
//! used: a function never needs them, and its binary is 14% smaller without.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::config::SharedCredentialsProvider;

/// RDS throttles at about 12 requests/s per account, shared with every other
/// caller: retry more than the SDK's default 3 attempts, with backoff.
pub const MAX_ATTEMPTS: u32 = 6;
/// A pre-check (quota usage) may not hold a backup up: few attempts.
pub const PRECHECK_MAX_ATTEMPTS: u32 = 2;

/// Loads the shared configuration from what Lambda gives every function: the region
/// (`AWS_REGION`), the role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and the SDK's `AWS_ENDPOINT_URL` (the local AWS sets it); with
/// retries and timeouts. Nothing else is read: no profile files, instance metadata or
/// STS, which a function never needs.
pub fn load_sdk_config() -> SdkConfig {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let max_attempts = max_attempts(variable("AWS_MAX_ATTEMPTS").as_deref());
    let mut config = SdkConfig::builder();
    config.set_endpoint_url(variable("AWS_ENDPOINT_URL"));
    config
        .behavior_version(BehaviorVersion::latest())
        .region(variable("AWS_REGION").map(Region::new))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        )
        .build()
}

/// Adaptive retries with the configuration's attempts: besides backing each
/// call off, the client slows its own rate down once AWS throttles it. For
/// callers that make many calls in a row (prune's deletions, notify's reads).
/// `AWS_RETRY_MODE=standard` (the SDK's standard variable) turns the rate
/// limiter off: the fault tests, which throttle every call for good, use it
/// so as not to wait minutes on it.
pub fn adaptive_retries(sdk_config: &SdkConfig) -> RetryConfig {
    let attempts = sdk_config.retry_config().map_or(MAX_ATTEMPTS, |r| r.max_attempts());
    retries_for_mode(std::env::var("AWS_RETRY_MODE").ok().as_deref()).with_max_attempts(attempts)
}

/// Adaptive retries unless `setting` asks for standard ones.
fn retries_for_mode(setting: Option<&str>) -> RetryConfig {
    match setting.map(str::trim) {
        Some(mode) if mode.eq_ignore_ascii_case("standard") => RetryConfig::standard(),
        _ => RetryConfig::adaptive(),
    }
}

/// The SDK's attempts per call: `AWS_MAX_ATTEMPTS` (the SDK's standard
/// variable, 1 to 20) when set, else [`MAX_ATTEMPTS`]. 1 leaves every retry to
/// the state machine's retriers, which is how the local tests see each throttle.
pub fn max_attempts(setting: Option<&str>) -> u32 {
    match setting.map(str::trim) {
        None | Some("") => MAX_ATTEMPTS,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => n,
            _ => {
                tracing::warn!(
                    AWS_MAX_ATTEMPTS = text,
                    default = MAX_ATTEMPTS,
                    "not a whole number from 1 to 20; using the default"
                );
                MAX_ATTEMPTS
            }
        },
    }
}

/// The region of the configuration, or an error naming `AWS_REGION`.
pub fn region_of(sdk_config: &SdkConfig) -> Result<String, crate::Error> {
    sdk_config
        .region()
        .map(|r| r.as_ref().to_owned())
        .ok_or_else(|| crate::Error::config("AWS_REGION", "is not set"))
}

/// Credentials of a session of `role_arn` (another account's role), named `session_name` in
/// that account's CloudTrail, with the external id the role's trust policy asks for.
#[cfg(feature = "assume-role")]
pub async fn assume_role(
    sts: &aws_sdk_sts::Client,
    role_arn: &str,
    session_name: &str,
    external_id: Option<String>,
) -> Result<aws_sdk_rds::config::Credentials, crate::Error> {
    use crate::error::{AwsFailure, AwsFailureKind};
    let assumed = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .set_external_id(external_id)
        .send()
        .await
        .map_err(|err| {
            let mut failure = AwsFailure::from_sdk("AssumeRole", &err);
            failure.message = format!("{role_arn}: {}", failure.message);
            crate::Error::from(failure)
        })?;
    let credentials = assumed.credentials().ok_or_else(|| {
        crate::Error::AwsRequestFailed(AwsFailure {
            action: "AssumeRole",
            code: None,
            message: format!("the role {role_arn} answered without credentials"),
            kind: AwsFailureKind::Rejected,
        })
    })?;
    Ok(aws_sdk_rds::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "assumed-role",
    ))
}

/// Per-call override for pre-checks, which must not delay the backup for long.
pub fn precheck_config() -> aws_sdk_rds::config::Builder {
    aws_sdk_rds::config::Builder::default()
        .retry_config(RetryConfig::standard().with_max_attempts(PRECHECK_MAX_ATTEMPTS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_retries_keep_the_configured_attempts() {
        let config = SdkConfig::builder()
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .build();
        let retries = adaptive_retries(&config);
        assert_eq!(retries.mode(), aws_config::retry::RetryMode::Adaptive);
        assert_eq!(retries.max_attempts(), 4);
        assert_eq!(
            adaptive_retries(&SdkConfig::builder().build()).max_attempts(),
            MAX_ATTEMPTS
        );
    }

    #[test]
    fn retries_are_adaptive_unless_standard_is_asked_for() {
        use aws_config::retry::RetryMode;
        assert_eq!(retries_for_mode(None).mode(), RetryMode::Adaptive);
        assert_eq!(retries_for_mode(Some("adaptive")).mode(), RetryMode::Adaptive);
        assert_eq!(retries_for_mode(Some("legacy")).mode(), RetryMode::Adaptive);
        assert_eq!(retries_for_mode(Some(" Standard ")).mode(), RetryMode::Standard);
    }

    #[test]
    fn max_attempts_follows_the_sdk_variable_within_bounds() {
        assert_eq!(max_attempts(None), MAX_ATTEMPTS);
        assert_eq!(max_attempts(Some("")), MAX_ATTEMPTS);
        assert_eq!(max_attempts(Some("1")), 1);
        assert_eq!(max_attempts(Some(" 10 ")), 10);
        assert_eq!(max_attempts(Some("0")), MAX_ATTEMPTS);
        assert_eq!(max_attempts(Some("21")), MAX_ATTEMPTS);
        assert_eq!(max_attempts(Some("many")), MAX_ATTEMPTS);
    }
}
