//! The buckets' guard: Terraform invokes the export function from an
//! `aws_lambda_invocation` with `lifecycle_scope = "CRUD"` (terraform/s3.tf).
//!
//! Terraform destroys a resource's dependents before the resource: a bucket's
//! policy, public access block, encryption, lifecycle, logging and versioning
//! would all be gone by the time S3 refuses to delete the bucket itself for
//! holding exports (`BucketNotEmpty`). The invocation depends on every other
//! resource of the module, so Terraform destroys it before any of them: on that
//! destroy the guard looks into each bucket and,
//! unless `s3_force_destroy` is on, fails while one holds an object version
//! (`BucketsHoldBackups`), so the destroy stops before it touches anything that
//! protects, encrypts or runs the backups. On create and update it reads the
//! same, which shows at apply time that it can (a destroy's check must not fail
//! for want of access).

use aws_sdk_s3::error::ProvideErrorMetadata;
use backup_core::config;
use backup_core::{AwsFailure, Error, input};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The suffix of every directory bucket's name (S3 user guide, "Directory bucket naming rules").
const DIRECTORY_BUCKET_SUFFIX: &str = "--x-s3";

/// The key under which the provider passes the lifecycle event (its `terraform_key` default).
const TERRAFORM_KEY: &str = "tf";

/// Whether `event` comes from Terraform's `aws_lambda_invocation` rather than from the state machine.
pub fn is_terraform_lifecycle(event: &Value) -> bool {
    event.get(TERRAFORM_KEY).is_some()
}

/// The invocation's input, as the provider sends it: the configured input plus
/// `tf.action` (`prev_input`, the input of the last apply, is not needed: on
/// delete the input is that of the state).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardRequest {
    buckets: Vec<String>,
    /// `s3_force_destroy`: the caller lets a destroy delete the exports.
    force_destroy: bool,
    tf: Lifecycle,
}

#[derive(Debug, Deserialize)]
struct Lifecycle {
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Create,
    Update,
    Delete,
}

/// What each bucket holds, as the invocation's result (its `result` attribute in Terraform).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardReport {
    pub buckets: Vec<BucketContents>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketContents {
    pub bucket: String,
    /// One object version or delete marker the bucket holds (S3 deletes no bucket
    /// that holds either), or `None` when it is empty or already gone.
    pub holds: Option<String>,
}

pub async fn guard(s3: &aws_sdk_s3::Client, event: Value) -> Result<GuardReport, Error> {
    let request: GuardRequest = input::parse(event)?;
    for (i, bucket) in request.buckets.iter().enumerate() {
        let field = || format!("buckets[{i}]");
        config::check_bucket_name(bucket).map_err(|reason| Error::invalid_input(field(), reason))?;
        // The module's buckets are general purpose; a directory bucket would have the S3
        // client open an S3 Express session (s3:CreateSession), which its role may not.
        if bucket.ends_with(DIRECTORY_BUCKET_SUFFIX) {
            return Err(Error::invalid_input(
                field(),
                format!("{bucket:?} names a directory bucket (S3 Express One Zone), not one of the module's"),
            ));
        }
    }
    let mut contents = Vec::with_capacity(request.buckets.len());
    for bucket in request.buckets {
        let holds = first_version(s3, &bucket).await?;
        contents.push(BucketContents { bucket, holds });
    }
    // (bucket, one key it holds) of each bucket that is not empty.
    let holding: Vec<(&str, &str)> = contents
        .iter()
        .filter_map(|c| c.holds.as_deref().map(|key| (c.bucket.as_str(), key)))
        .collect();
    tracing::info!(action = ?request.tf.action, force_destroy = request.force_destroy, ?holding, "buckets looked into");
    if request.tf.action == Action::Delete
        && !request.force_destroy
        && let Some((first_bucket, first_key)) = holding.first()
    {
        let buckets = holding
            .iter()
            .map(|(bucket, _)| *bucket)
            .collect::<Vec<_>>()
            .join(" and ");
        return Err(Error::BucketsHoldBackups {
            buckets: format!("S3 bucket {buckets} (for one, s3://{first_bucket}/{first_key})"),
        });
    }
    Ok(GuardReport { buckets: contents })
}

/// The key of one object version or delete marker in `bucket`; `None` when it holds none
/// or no longer exists (deleted outside Terraform: nothing is left to protect).
async fn first_version(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<String>, Error> {
    match s3.list_object_versions().bucket(bucket).max_keys(1).send().await {
        Ok(out) => Ok(out
            .versions()
            .iter()
            .filter_map(|v| v.key())
            .chain(out.delete_markers().iter().filter_map(|m| m.key()))
            .next()
            .map(str::to_owned)),
        Err(err) if err.code() == Some("NoSuchBucket") => Ok(None),
        Err(err) => Err(AwsFailure::from_sdk("ListObjectVersions", &err).into()),
    }
}
