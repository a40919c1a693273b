//! The buckets' guard (Terraform's `aws_lambda_invocation`) against a mocked S3 client.

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::list_object_versions::{ListObjectVersionsError, ListObjectVersionsOutput};
use aws_sdk_s3::types::{DeleteMarkerEntry, ObjectVersion};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use backup_core::testing::{fast_retries, fixture};
use backup_core::{Error, ErrorType};
use backup_export::buckets::{BucketContents, GuardReport, guard, is_terraform_lifecycle};
use serde_json::{Value, json};

const BUCKET: &str = "nestedphoenix-prod-backups-f40d8a";
const LOG_BUCKET: &str = "nestedphoenix-prod-backups-f40d8a-logs";
const EXPORT_INFO: &str = "nestedphoenix/prod/db1/2026-11-24/db1-20261124-020000/export_info.json";

fn s3(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules, |b| b
        .region(aws_sdk_s3::config::Region::from_static("us-east-1"))
        .retry_config(fast_retries()))
}

/// `bucket` holds one object version (or, with `marker`, only a delete marker) or nothing.
fn versions(bucket: &'static str, key: Option<&'static str>, marker: bool) -> Rule {
    mock!(Client::list_object_versions)
        .match_requests(move |r| r.bucket() == Some(bucket) && r.max_keys() == Some(1))
        .then_output(move || {
            let out = ListObjectVersionsOutput::builder().name(bucket);
            match key {
                Some(key) if marker => out.delete_markers(DeleteMarkerEntry::builder().key(key).build()),
                Some(key) => out.versions(ObjectVersion::builder().key(key).build()),
                None => out,
            }
            .build()
        })
}

fn no_such_bucket(bucket: &'static str) -> Rule {
    mock!(Client::list_object_versions)
        .match_requests(move |r| r.bucket() == Some(bucket))
        .then_error(|| {
            ListObjectVersionsError::generic(
                aws_sdk_s3::error::ErrorMetadata::builder()
                    .code("NoSuchBucket")
                    .message("The specified bucket does not exist")
                    .build(),
            )
        })
}

/// The provider's payload (fixture: a delete) with another action or `force_destroy`.
fn event(action: &str, force_destroy: bool) -> Value {
    let mut event = fixture("terraform-bucket-guard-delete.json");
    event["tf"]["action"] = json!(action);
    event["force_destroy"] = json!(force_destroy);
    event
}

#[tokio::test]
async fn a_destroy_stops_while_a_bucket_holds_an_export() {
    let holding = versions(BUCKET, Some(EXPORT_INFO), false);
    let empty = versions(LOG_BUCKET, None, false);
    let event = fixture("terraform-bucket-guard-delete.json");
    assert!(is_terraform_lifecycle(&event));
    let err = guard(&s3(&[&holding, &empty]), event).await.unwrap_err();
    assert_eq!(err.error_type(), ErrorType::BucketsHoldBackups);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "S3 bucket {BUCKET} (for one, s3://{BUCKET}/{EXPORT_INFO}) still hold objects"
        )),
        "{message}"
    );
    assert!(!message.contains(LOG_BUCKET), "{message}");
    assert!(message.contains("apply s3_force_destroy = true first"), "{message}");
}

#[tokio::test]
async fn a_delete_marker_is_enough_to_stop_it_and_each_holding_bucket_is_named() {
    // S3 deletes no bucket holding a delete marker (a versioned bucket's deleted object).
    let holding = versions(BUCKET, Some(EXPORT_INFO), false);
    let marker = versions(LOG_BUCKET, Some("s3-access/2026-11-24-02-00-00"), true);
    let err = guard(&s3(&[&holding, &marker]), event("delete", false))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BucketsHoldBackups { buckets } if buckets.starts_with(&format!("S3 bucket {BUCKET} and {LOG_BUCKET} ")))
    );
}

#[tokio::test]
async fn a_destroy_passes_when_the_buckets_are_empty_gone_or_force_destroy_is_on() {
    let empty = versions(BUCKET, None, false);
    let gone = no_such_bucket(LOG_BUCKET);
    let report = guard(&s3(&[&empty, &gone]), event("delete", false)).await.unwrap();
    assert_eq!(
        report,
        GuardReport {
            buckets: vec![
                BucketContents {
                    bucket: BUCKET.into(),
                    holds: None
                },
                BucketContents {
                    bucket: LOG_BUCKET.into(),
                    holds: None
                },
            ],
        }
    );

    let holding = versions(BUCKET, Some(EXPORT_INFO), false);
    let empty_logs = versions(LOG_BUCKET, None, false);
    let report = guard(&s3(&[&holding, &empty_logs]), event("delete", true))
        .await
        .unwrap();
    assert_eq!(report.buckets[0].holds.as_deref(), Some(EXPORT_INFO));
}

#[tokio::test]
async fn create_and_update_read_the_buckets_and_never_refuse() {
    for action in ["create", "update"] {
        let holding = versions(BUCKET, Some(EXPORT_INFO), false);
        let empty = versions(LOG_BUCKET, None, false);
        let client = s3(&[&holding, &empty]);
        let report = guard(&client, event(action, false)).await.unwrap();
        assert_eq!(report.buckets[0].holds.as_deref(), Some(EXPORT_INFO), "{action}");
        assert_eq!(holding.num_calls(), 1, "{action}");
    }
}

#[tokio::test]
async fn a_denied_read_is_an_error_not_an_empty_bucket() {
    let denied = mock!(Client::list_object_versions).then_error(|| {
        ListObjectVersionsError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .message("User is not authorized to perform: s3:ListBucketVersions")
                .build(),
        )
    });
    let err = guard(&s3(&[&denied]), event("delete", false)).await.unwrap_err();
    assert_eq!(err.error_type(), ErrorType::AccessDenied);
    assert!(
        err.to_string().contains("ListObjectVersions failed: AccessDenied"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_input_names_the_field_before_any_call() {
    let mut bad_name = event("delete", false);
    bad_name["buckets"][1] = json!("Not_A_Bucket");
    let err = guard(&s3(&[]), bad_name).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "buckets[1]"),
        "{err}"
    );

    let mut directory_bucket = event("delete", false);
    directory_bucket["buckets"][0] = json!("backups--use1-az4--x-s3");
    let err = guard(&s3(&[]), directory_bucket).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, reason } if field == "buckets[0]" && reason.contains("directory bucket")),
        "{err}"
    );

    let mut unknown_action = event("delete", false);
    unknown_action["tf"]["action"] = json!("import");
    let err = guard(&s3(&[]), unknown_action).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "tf.action"),
        "{err}"
    );

    let mut no_switch = event("delete", false);
    no_switch.as_object_mut().unwrap().remove("force_destroy");
    let err = guard(&s3(&[]), no_switch).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "force_destroy"),
        "{err}"
    );
}
