//! The snapshot handler against real SDK clients answering from mock rules.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::create_db_cluster_snapshot::CreateDbClusterSnapshotOutput;
use aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag};
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use backup_core::testing::{self, account_quota, fixture, http_status, mock_rds, rds_error};
use backup_core::{Error, tags, types::DatabaseKind};
use backup_snapshot::{Clients, Config, handle};
use serde_json::json;

/// Builds the HTTP response a mocked call answers with.
type ErrorResponse = fn() -> HttpResponse;

const SNAPSHOT_ID: &str = "prod-database-1-20261124-020000-d65505";
const SNAPSHOT_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-20261124-020000-d65505";

fn clients(rules: &[&Rule]) -> Clients {
    mock_rds(rules)
}

fn config() -> Config {
    Config {
        settings: testing::settings(),
    }
}

fn instance(status: &str) -> Rule {
    let status = status.to_owned();
    mock!(Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("prod-database-1"))
        .then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-database-1")
                        .db_instance_status(&status)
                        .engine("postgres")
                        .storage_encrypted(true)
                        .build(),
                )
                .build()
        })
}

fn quota(used: i64, max: i64) -> Rule {
    account_quota("ManualSnapshots", used, max)
}

/// CreateDBSnapshot that checks the request carries our id and tags.
fn create_ok() -> Rule {
    mock!(Client::create_db_snapshot)
        .match_requests(|r| {
            let tags = r.tags();
            r.db_snapshot_identifier() == Some(SNAPSHOT_ID)
                && r.db_instance_identifier() == Some("prod-database-1")
                && tags::tag_value(tags, tags::MANAGED_BY) == Some("nestedphoenix-production")
                && tags::tag_value(tags, tags::SOURCE_DB) == Some("prod-database-1")
                && tags::tag_value(tags, tags::EXECUTION) == Some(testing::EXECUTION_ID)
                && tags::tag_value(tags, tags::PROJECT) == Some("nestedphoenix")
                && tags::tag_value(tags, tags::ENVIRONMENT) == Some("production")
                && tags::tag_value(tags, "Owner") == Some("DBA Team")
        })
        .then_output(|| {
            CreateDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT_ID)
                        .db_snapshot_arn(SNAPSHOT_ARN)
                        .status("creating")
                        .build(),
                )
                .build()
        })
}

fn existing_snapshot(tags: Vec<Tag>) -> Rule {
    mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT_ID))
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT_ID)
                        .db_snapshot_arn(SNAPSHOT_ARN)
                        .status("available")
                        .engine("postgres")
                        .encrypted(true)
                        .set_tag_list(Some(tags.clone()))
                        .build(),
                )
                .build()
        })
}

fn create_fails(status: u16, code: &'static str) -> Rule {
    mock!(Client::create_db_snapshot).then_http_response(move || rds_error(status, code, "refused"))
}

#[tokio::test]
async fn creates_a_tagged_snapshot_named_after_database_and_execution_start() {
    let (describe, quota, create) = (instance("available"), quota(10, 100), create_ok());
    let clients = clients(&[&describe, &quota, &create]);

    let record = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap();

    assert_eq!(record.snapshot_id, SNAPSHOT_ID);
    assert_eq!(record.snapshot_arn, SNAPSHOT_ARN);
    assert_eq!(record.kind, DatabaseKind::Instance);
    assert_eq!(record.engine, "postgres");
    assert!(record.encrypted);
    assert_eq!(record.status, "creating");
    assert!(record.created);
    assert_eq!((describe.num_calls(), quota.num_calls(), create.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn an_existing_snapshot_of_this_execution_counts_as_done() {
    let ours = tags::snapshot_tags(&testing::settings(), "prod-database-1", testing::EXECUTION_ID);
    let (describe, quota, create, existing) = (
        instance("available"),
        quota(10, 100),
        create_fails(400, "DBSnapshotAlreadyExists"),
        existing_snapshot(ours),
    );
    let clients = clients(&[&describe, &quota, &create, &existing]);

    let record = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap();

    assert!(!record.created);
    assert_eq!(record.snapshot_id, SNAPSHOT_ID);
    assert_eq!(record.status, "available");
    assert_eq!(existing.num_calls(), 1);
}

#[tokio::test]
async fn an_existing_snapshot_that_is_not_ours_is_a_conflict() {
    let foreign = vec![Tag::builder().key("Owner").value("someone else").build()];
    let (describe, quota, create, existing) = (
        instance("available"),
        quota(10, 100),
        create_fails(400, "DBSnapshotAlreadyExists"),
        existing_snapshot(foreign),
    );
    let clients = clients(&[&describe, &quota, &create, &existing]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "IdentifierConflict");
    assert!(err.to_string().contains(SNAPSHOT_ID), "{err}");
}

#[tokio::test]
async fn throttling_once_is_retried_by_the_sdk() {
    let create = mock!(Client::create_db_snapshot)
        .sequence()
        .http_response(|| rds_error(400, "Throttling", "Rate exceeded"))
        .output(|| {
            CreateDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_arn(SNAPSHOT_ARN)
                        .status("creating")
                        .build(),
                )
                .build()
        })
        .build();
    let (describe, quota) = (instance("available"), quota(10, 100));
    let clients = clients(&[&describe, &quota, &create]);

    let record = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap();

    assert!(record.created);
    assert_eq!(create.num_calls(), 2);
}

#[tokio::test]
async fn persistent_throttling_and_server_errors_are_retryable_errors() {
    let cases: [(ErrorResponse, &str); 2] = [
        (|| rds_error(400, "Throttling", "Rate exceeded"), "Throttled"),
        (|| http_status(503), "AwsUnavailable"),
    ];
    for (response, expected) in cases {
        let create = mock!(Client::create_db_snapshot).then_http_response(response);
        let (describe, quota) = (instance("available"), quota(10, 100));
        let clients = clients(&[&describe, &quota, &create]);

        let err = handle(&clients, &config(), fixture("snapshot-request.json"))
            .await
            .unwrap_err();

        assert_eq!(err.error_type().as_str(), expected, "{err}");
        assert!(err.error_type().is_retryable());
        assert!(err.to_string().contains("CreateDBSnapshot"), "{err}");
        assert_eq!(create.num_calls(), 3, "the SDK's 3 attempts");
    }
}

#[tokio::test]
async fn a_busy_database_is_retryable_and_not_snapshotted() {
    let (describe, quota) = (instance("backing-up"), quota(10, 100));
    let clients = clients(&[&describe, &quota]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert!(matches!(err, Error::DatabaseBusy { .. }), "{err:?}");
    assert_eq!(err.error_type().as_str(), "DatabaseBusy");
    assert!(
        err.to_string().contains("prod-database-1") && err.to_string().contains("backing-up"),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_db_instance_state_from_rds_is_retryable() {
    let (describe, quota, create) = (
        instance("available"),
        quota(10, 100),
        create_fails(400, "InvalidDBInstanceState"),
    );
    let clients = clients(&[&describe, &quota, &create]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "DatabaseBusy");
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "DatabaseBusy");
}

#[tokio::test]
async fn stopped_or_full_databases_fail_with_their_status() {
    for status in ["stopped", "storage-full", "deleting"] {
        let describe = instance(status);
        let clients = clients(&[&describe]);

        let err = handle(&clients, &config(), fixture("snapshot-request.json"))
            .await
            .unwrap_err();

        assert_eq!(err.error_type().as_str(), "DatabaseNotAvailable");
        assert!(err.to_string().contains(status), "{err}");
    }
}

#[tokio::test]
async fn an_unknown_database_is_not_found_without_any_write() {
    let describe = mock!(Client::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance prod-database-1 not found."));
    let clusters = mock!(Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster prod-database-1 not found."));
    let clients = clients(&[&describe, &clusters]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "DatabaseNotFound");
    assert_eq!(
        err.to_string(),
        "database prod-database-1 not found in us-east-1: no DB instance or DB cluster has this identifier"
    );
}

#[tokio::test]
async fn a_full_quota_fails_before_creating() {
    let (describe, quota) = (instance("available"), quota(100, 100));
    let clients = clients(&[&describe, &quota]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "SnapshotQuotaExceeded");
    assert!(!err.error_type().is_retryable());
    assert!(err.to_string().contains("100 of 100 used"), "{err}");
}

#[tokio::test]
async fn an_unreadable_quota_does_not_block_the_backup() {
    let quota = mock!(Client::describe_account_attributes).then_http_response(|| http_status(500));
    let (describe, create) = (instance("available"), create_ok());
    let clients = clients(&[&describe, &quota, &create]);

    let record = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap();

    assert!(record.created);
    assert_eq!(quota.num_calls(), backup_core::aws::PRECHECK_MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn quota_refusal_from_rds_is_a_quota_error() {
    let (describe, create) = (instance("available"), create_fails(400, "SnapshotQuotaExceeded"));
    let quota = mock!(Client::describe_account_attributes).then_http_response(|| http_status(500));
    let clients = clients(&[&describe, &quota, &create]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "SnapshotQuotaExceeded");
}

#[tokio::test]
async fn an_aurora_cluster_identifier_gets_a_cluster_snapshot() {
    let describe =
        mock!(Client::describe_db_instances).then_http_response(|| rds_error(404, "DBInstanceNotFound", "not found"));
    let cluster = mock!(Client::describe_db_clusters).then_output(|| {
        DescribeDbClustersOutput::builder()
            .db_clusters(
                DbCluster::builder()
                    .db_cluster_identifier("prod-database-1")
                    .status("available")
                    .engine("aurora-postgresql")
                    .storage_encrypted(true)
                    .build(),
            )
            .build()
    });
    let quota = account_quota("ManualClusterSnapshots", 3, 100);
    let create = mock!(Client::create_db_cluster_snapshot)
        .match_requests(|r| {
            r.db_cluster_snapshot_identifier() == Some(SNAPSHOT_ID)
                && tags::tag_value(r.tags(), tags::MANAGED_BY) == Some("nestedphoenix-production")
        })
        .then_output(|| {
            CreateDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_arn("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:x")
                        .status("creating")
                        .build(),
                )
                .build()
        });
    let clients = clients(&[&describe, &cluster, &quota, &create]);

    let record = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap();

    assert_eq!(record.kind, DatabaseKind::Cluster);
    assert_eq!(record.engine, "aurora-postgresql");
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn an_aurora_member_instance_is_refused_with_its_cluster_named() {
    let describe = mock!(Client::describe_db_instances).then_output(|| {
        DescribeDbInstancesOutput::builder()
            .db_instances(
                DbInstance::builder()
                    .db_instance_identifier("prod-database-1")
                    .db_instance_status("available")
                    .db_cluster_identifier("prod-aurora")
                    .build(),
            )
            .build()
    });
    let clients = clients(&[&describe]);

    let err = handle(&clients, &config(), fixture("snapshot-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "DatabaseNotAvailable");
    assert!(err.to_string().contains("prod-aurora"), "{err}");
}

#[tokio::test]
async fn bad_input_names_the_field_and_makes_no_aws_call() {
    let mut event = fixture("snapshot-request.json");
    let cases = [
        (json!("prod_database"), "input db_identifier is invalid"),
        (json!(42), "input db_identifier is invalid"),
        (json!(""), "input db_identifier is invalid"),
    ];
    for (value, expected) in cases {
        event["db_identifier"] = value;
        // No rules: any AWS call would panic the test.
        let clients = clients(&[]);
        let err = handle(&clients, &config(), event.clone()).await.unwrap_err();
        assert_eq!(err.error_type().as_str(), "InvalidInput");
        assert!(err.to_string().starts_with(expected), "{err}");
    }

    let mut event = fixture("snapshot-request.json");
    event.as_object_mut().unwrap().remove("execution");
    let err = handle(&clients(&[]), &config(), event).await.unwrap_err();
    assert_eq!(err.to_string(), "input execution is invalid: is required");
}

#[test]
fn the_configuration_reads_the_environment_the_contract_lists() {
    testing::assert_reads_its_contracted_environment(backup_core::contract::Function::Snapshot, Config::from_env);
}

#[tokio::test]
async fn only_the_clusters_state_makes_a_cluster_snapshot_wait() {
    for (code, expected) in [
        ("InvalidDBClusterStateFault", "DatabaseBusy"),
        ("InvalidDBClusterSnapshotStateFault", "AwsRequestFailed"),
    ] {
        let cluster = mock!(Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().status("available").engine("aurora-mysql").build())
                .build()
        });
        let quota = account_quota("ManualClusterSnapshots", 3, 100);
        let create =
            mock!(Client::create_db_cluster_snapshot).then_http_response(move || rds_error(400, code, "refused"));
        let mut event = fixture("snapshot-request.json");
        event["kind"] = serde_json::json!("cluster");
        let err = handle(&clients(&[&cluster, &quota, &create]), &config(), event)
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), expected, "{code}: {err}");
    }
}
