//! The copy handler against mocked RDS clients of the source and destination regions.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDbClusterSnapshotOutput;
use aws_sdk_rds::operation::copy_db_snapshot::CopyDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::describe_option_groups::DescribeOptionGroupsOutput;
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Option as RdsOption, OptionGroup, Tag};
use aws_smithy_mocks::{Rule, mock};
use backup_copy::{Clients, Config, CopyOutcome, handle};
use backup_core::tags;
use backup_core::testing::{self, account_quota, fixture, http_status, mock_rds_in, rds_error};
use backup_core::types::SnapshotRecord;
use serde_json::json;

const SNAPSHOT_ID: &str = "prod-database-1-20261124-020000";
const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-20261124-020000";
const COPY_ARN: &str = "arn:aws:rds:us-west-2:123456789012:snapshot:prod-database-1-20261124-020000";
const WEST_KEY: &str = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn clients(rules: &[&Rule]) -> Clients {
    with_source(&[], rules)
}

fn with_source(source: &[&Rule], destination: &[&Rule]) -> Clients {
    Clients {
        source: mock_rds_in("us-east-1", source),
        destination: mock_rds_in("us-west-2", destination),
    }
}

/// The copy a call made (a test failure if it made none).
fn copied(outcome: CopyOutcome) -> SnapshotRecord {
    match outcome {
        CopyOutcome::Copied(record) => record,
        CopyOutcome::Skipped(skipped) => panic!("no copy: {}", skipped.warning),
        CopyOutcome::SlotFull(full) => panic!("no copy: slots full, next try in {} s", full.next_try_seconds),
    }
}

fn config() -> Config {
    Config {
        settings: testing::settings(),
        destination_region: "us-west-2".into(),
        kms_key_arn: Some(WEST_KEY.into()),
        option_groups: Default::default(),
    }
}

fn quota(used: i64, max: i64) -> Rule {
    account_quota("ManualSnapshots", used, max)
}

fn copy_ok() -> Rule {
    mock!(Client::copy_db_snapshot)
        .match_requests(|r| {
            let t = r.tags();
            r.source_db_snapshot_identifier() == Some(SOURCE_ARN)
                && r.target_db_snapshot_identifier() == Some(SNAPSHOT_ID)
                && r.kms_key_id() == Some(WEST_KEY)
                && tags::tag_value(t, tags::MANAGED_BY) == Some("nestedphoenix-production")
                && tags::tag_value(t, tags::SOURCE_DB) == Some("prod-database-1")
                && tags::tag_value(t, tags::COPIED_FROM) == Some(SOURCE_ARN)
                && tags::tag_value(t, "Owner") == Some("DBA Team")
                && r.option_group_name().is_none()
        })
        .then_output(|| {
            CopyDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT_ID)
                        .db_snapshot_arn(COPY_ARN)
                        .status("pending")
                        .encrypted(true)
                        .build(),
                )
                .build()
        })
}

fn copy_fails(code: &'static str) -> Rule {
    mock!(Client::copy_db_snapshot).then_http_response(move || rds_error(400, code, "refused"))
}

#[tokio::test]
async fn copies_into_the_destination_region_with_its_key_and_our_tags() {
    let (quota, copy) = (quota(20, 100), copy_ok());
    let record = copied(
        handle(&clients(&[&quota, &copy]), &config(), fixture("copy-request.json"))
            .await
            .unwrap(),
    );

    assert_eq!(record.region, "us-west-2");
    assert_eq!(record.snapshot_id, SNAPSHOT_ID);
    assert_eq!(record.snapshot_arn, COPY_ARN);
    assert_eq!(record.status, "pending");
    assert!(record.created && record.encrypted);
    assert_eq!(copy.num_calls(), 1);
}

/// The fixture's request, `waited` seconds into its wait for a copy slot.
fn waited(waited: i64) -> serde_json::Value {
    let mut event = fixture("copy-request.json");
    let started = chrono::DateTime::parse_from_rfc3339(event["slot"]["tried_at"].as_str().unwrap()).unwrap()
        - chrono::Duration::seconds(waited);
    event["slot"]["started_at"] = json!(started.to_rfc3339());
    event
}

#[tokio::test]
async fn quota_exceeded_with_room_in_the_quota_means_wait_for_a_copy_slot() {
    // Each try waits as long as the wait so far: at least the interval, at most 15 minutes
    // and the rest of the bound.
    for (waited_seconds, next_try) in [(0, 60), (600, 600), (3_600, 900), (21_000, 600)] {
        let (quota, copy) = (quota(20, 100), copy_fails("SnapshotQuotaExceeded"));
        let outcome = handle(&clients(&[&quota, &copy]), &config(), waited(waited_seconds))
            .await
            .unwrap();
        let CopyOutcome::SlotFull(full) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            (full.slot_full, full.next_try_seconds),
            (true, next_try),
            "{waited_seconds}"
        );
        assert_eq!(full.snapshot_id, SNAPSHOT_ID);
        assert_eq!(
            serde_json::to_value(CopyOutcome::SlotFull(full)).unwrap(),
            json!({"snapshot_id": SNAPSHOT_ID, "slot_full": true, "next_try_seconds": next_try})
        );
    }
}

#[tokio::test]
async fn slots_full_for_the_whole_bound_fail_the_copy_naming_the_wait() {
    let (quota, copy) = (quota(20, 100), copy_fails("SnapshotQuotaExceeded"));
    let err = handle(&clients(&[&quota, &copy]), &config(), waited(21_600))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "CopySlotsFull");
    assert!(!err.error_type().is_retryable());
    let message = err.to_string();
    assert!(
        message.contains("full for all the 21600 s that the copy of"),
        "{message}"
    );
    assert!(message.contains("copy_wait_timeout_seconds"), "{message}");
    assert!(message.contains("20 of 100 used"), "{message}");
}

#[tokio::test]
async fn a_full_destination_quota_fails_without_copying() {
    let quota = quota(100, 100);
    let err = handle(&clients(&[&quota]), &config(), fixture("copy-request.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "SnapshotQuotaExceeded");
    assert!(!err.error_type().is_retryable());
    assert!(err.to_string().contains("us-west-2"), "{err}");
}

#[tokio::test]
async fn an_unreadable_quota_treats_quota_exceeded_as_slots_full() {
    let quota = mock!(Client::describe_account_attributes).then_http_response(|| http_status(500));
    let copy = copy_fails("SnapshotQuotaExceeded");
    let err = handle(&clients(&[&quota, &copy]), &config(), waited(21_600))
        .await
        .unwrap_err();

    assert_eq!(err.error_type().as_str(), "CopySlotsFull");
    assert!(err.to_string().contains("could not be read"), "{err}");
}

#[tokio::test]
async fn an_existing_copy_of_ours_counts_as_done_and_a_foreign_one_conflicts() {
    for (tags, expected) in [
        (
            tags::snapshot_tags(&testing::settings(), "prod-database-1", "earlier"),
            Ok(()),
        ),
        (
            vec![Tag::builder().key("Owner").value("x").build()],
            Err("IdentifierConflict"),
        ),
    ] {
        let existing = mock!(Client::describe_db_snapshots)
            .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT_ID))
            .then_output(move || {
                DescribeDbSnapshotsOutput::builder()
                    .db_snapshots(
                        DbSnapshot::builder()
                            .db_snapshot_identifier(SNAPSHOT_ID)
                            .db_snapshot_arn(COPY_ARN)
                            .status("available")
                            .set_tag_list(Some(tags.clone()))
                            .build(),
                    )
                    .build()
            });
        let (quota, copy) = (quota(20, 100), copy_fails("DBSnapshotAlreadyExists"));
        let result = handle(
            &clients(&[&quota, &copy, &existing]),
            &config(),
            fixture("copy-request.json"),
        )
        .await;
        match expected {
            Ok(()) => {
                let record = copied(result.unwrap());
                assert!(!record.created);
                assert_eq!(record.region, "us-west-2");
            }
            Err(name) => assert_eq!(result.unwrap_err().error_type().as_str(), name),
        }
    }
}

#[tokio::test]
async fn rds_errors_map_to_stable_names() {
    for (code, expected) in [
        ("InvalidDBSnapshotState", "SnapshotBusy"),
        ("DBSnapshotNotFound", "SnapshotNotFound"),
        ("KMSKeyNotAccessibleFault", "AccessDenied"),
        ("Throttling", "Throttled"),
    ] {
        let (quota, copy) = (quota(20, 100), copy_fails(code));
        let err = handle(&clients(&[&quota, &copy]), &config(), fixture("copy-request.json"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), expected, "{code}: {err}");
    }
}

/// The copy request fixture, for a DB cluster snapshot.
fn cluster_copy_request() -> serde_json::Value {
    let mut event = fixture("copy-request.json");
    event["snapshot"]["kind"] = json!("cluster");
    event["snapshot"]["snapshot_arn"] =
        json!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:prod-database-1-20261124-020000");
    event
}

#[tokio::test]
async fn cluster_snapshots_use_the_cluster_copy() {
    let event = cluster_copy_request();
    let quota = account_quota("ManualClusterSnapshots", 1, 100);
    let copy = mock!(Client::copy_db_cluster_snapshot)
        .match_requests(|r| {
            r.target_db_cluster_snapshot_identifier() == Some(SNAPSHOT_ID) && r.kms_key_id() == Some(WEST_KEY)
        })
        .then_output(|| {
            CopyDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(DbClusterSnapshot::builder().status("copying").build())
                .build()
        });
    let record = copied(handle(&clients(&[&quota, &copy]), &config(), event).await.unwrap());
    assert_eq!(record.status, "copying");
    assert_eq!(copy.num_calls(), 1);
}

#[tokio::test]
async fn an_unencrypted_snapshot_is_copied_without_a_key_and_reported_unencrypted() {
    for kind in ["instance", "cluster"] {
        let mut event = if kind == "cluster" {
            cluster_copy_request()
        } else {
            fixture("copy-request.json")
        };
        event["snapshot"]["encrypted"] = json!(false);
        let quota = if kind == "cluster" {
            account_quota("ManualClusterSnapshots", 1, 100)
        } else {
            quota(1, 100)
        };
        let instance_copy = mock!(Client::copy_db_snapshot)
            .match_requests(|r| r.kms_key_id().is_none())
            .then_output(|| {
                CopyDbSnapshotOutput::builder()
                    .db_snapshot(DbSnapshot::builder().status("pending").encrypted(false).build())
                    .build()
            });
        let cluster_copy = mock!(Client::copy_db_cluster_snapshot)
            .match_requests(|r| r.kms_key_id().is_none())
            .then_output(|| {
                CopyDbClusterSnapshotOutput::builder()
                    .db_cluster_snapshot(
                        DbClusterSnapshot::builder()
                            .status("copying")
                            .storage_encrypted(false)
                            .build(),
                    )
                    .build()
            });
        let record = copied(
            handle(&clients(&[&quota, &instance_copy, &cluster_copy]), &config(), event)
                .await
                .unwrap(),
        );
        assert!(!record.encrypted, "{kind}");
        assert_eq!(instance_copy.num_calls() + cluster_copy.num_calls(), 1, "{kind}");
    }
}

#[tokio::test]
async fn an_encrypted_snapshot_without_a_destination_key_is_a_config_error_before_any_call() {
    let mut config = config();
    config.kms_key_arn = None;
    let err = handle(&clients(&[]), &config, fixture("copy-request.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(
        err.to_string().starts_with("configuration COPY_KMS_KEY_ARN is invalid"),
        "{err}"
    );
}

#[test]
fn configuration_requires_a_destination_and_a_key_in_it() {
    let base = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", "nestedphoenix/production/us-east-1"),
        ("COPY_DESTINATION_REGION", "us-west-2"),
        ("COPY_KMS_KEY_ARN", WEST_KEY),
    ];
    assert_eq!(Config::from_env(&base).unwrap().destination_region, "us-west-2");

    for (name, bad, expected) in [
        ("COPY_DESTINATION_REGION", "", "is not set"),
        ("COPY_DESTINATION_REGION", "west", "is not an AWS region name"),
        (
            "COPY_KMS_KEY_ARN",
            "arn:aws:kms:us-east-1:123456789012:key/k",
            "KMS keys are regional",
        ),
    ] {
        let mut env = base;
        env.iter_mut().find(|(k, _)| *k == name).unwrap().1 = bad;
        let err = Config::from_env(&env).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("configuration {name} is invalid")) && err.contains(expected),
            "{err}"
        );
    }
}

#[test]
fn the_configuration_reads_the_environment_the_contract_lists() {
    testing::assert_reads_its_contracted_environment(backup_core::contract::Function::Copy, Config::from_env);
}

#[tokio::test]
async fn only_the_source_snapshots_state_makes_a_cluster_copy_wait() {
    let event = cluster_copy_request();
    for (code, expected) in [
        ("InvalidDBClusterSnapshotStateFault", "SnapshotBusy"),
        ("InvalidDBClusterStateFault", "AwsRequestFailed"),
    ] {
        let quota = account_quota("ManualClusterSnapshots", 1, 100);
        let copy = mock!(Client::copy_db_cluster_snapshot).then_http_response(move || rds_error(400, code, "refused"));
        let err = handle(&clients(&[&quota, &copy]), &config(), event.clone())
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), expected, "{code}: {err}");
    }
}

/// An Oracle snapshot taken with option group `ledger-oracle-tde`, whose TDE option is
/// permanent and persistent (as RDS describes it), beside one that is neither.
fn oracle_tde_source() -> (serde_json::Value, Rule, Rule) {
    let mut event = fixture("copy-request.json");
    event["snapshot"]["engine"] = json!("oracle-ee");
    let snapshot = mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT_ID))
        .then_output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT_ID)
                        .option_group_name("ledger-oracle-tde")
                        .build(),
                )
                .build()
        });
    let options = mock!(Client::describe_option_groups)
        .match_requests(|r| r.option_group_name() == Some("ledger-oracle-tde"))
        .then_output(|| {
            DescribeOptionGroupsOutput::builder()
                .option_groups_list(
                    OptionGroup::builder()
                        .option_group_name("ledger-oracle-tde")
                        .options(
                            RdsOption::builder()
                                .option_name("TDE")
                                .persistent(true)
                                .permanent(true)
                                .build(),
                        )
                        .options(
                            RdsOption::builder()
                                .option_name("STATSPACK")
                                .persistent(false)
                                .permanent(false)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    (event, snapshot, options)
}

#[tokio::test]
async fn a_tde_snapshot_without_a_destination_option_group_is_not_copied_and_says_why() {
    let (event, snapshot, options) = oracle_tde_source();
    let copy = mock!(Client::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());

    let outcome = handle(&with_source(&[&snapshot, &options], &[&copy]), &config(), event)
        .await
        .unwrap();

    let CopyOutcome::Skipped(skipped) = outcome else {
        panic!("copied: {outcome:?}")
    };
    assert!(skipped.skipped);
    for part in [
        "us-west-2",
        SNAPSHOT_ID,
        "ledger-oracle-tde",
        "TDE",
        "cross_region_option_groups",
    ] {
        assert!(skipped.warning.contains(part), "{part}: {}", skipped.warning);
    }
    assert!(!skipped.warning.contains("STATSPACK"), "{}", skipped.warning);
    // One sentence for the summary and Slack, without the source's line breaks or indentation.
    assert!(!skipped.warning.contains("  "), "{}", skipped.warning);
    assert_eq!(copy.num_calls(), 0);
    let output = serde_json::to_value(CopyOutcome::Skipped(skipped)).unwrap();
    assert_eq!(output["skipped"], json!(true));
}

#[tokio::test]
async fn a_tde_snapshot_is_copied_with_the_configured_destination_option_group() {
    let (event, snapshot, options) = oracle_tde_source();
    let (quota, copy) = (
        quota(1, 100),
        mock!(Client::copy_db_snapshot)
            .match_requests(|r| r.option_group_name() == Some("ledger-oracle-tde-west"))
            .then_output(|| {
                CopyDbSnapshotOutput::builder()
                    .db_snapshot(DbSnapshot::builder().status("pending").encrypted(true).build())
                    .build()
            }),
    );
    let mut config = config();
    config.option_groups = [("ledger-oracle-tde".to_owned(), "ledger-oracle-tde-west".to_owned())].into();

    let record = copied(
        handle(&with_source(&[&snapshot, &options], &[&quota, &copy]), &config, event)
            .await
            .unwrap(),
    );

    assert_eq!(record.status, "pending");
    assert_eq!(copy.num_calls(), 1);
}

#[tokio::test]
async fn other_engines_and_default_option_groups_are_copied_without_a_lookup() {
    let (mut event, _, options) = oracle_tde_source();
    let default_group = mock!(Client::describe_db_snapshots).then_output(|| {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(DbSnapshot::builder().option_group_name("default:oracle-ee-19").build())
            .build()
    });
    let (quota, copy) = (quota(1, 100), copy_ok());
    copied(
        handle(
            &with_source(&[&default_group, &options], &[&quota, &copy]),
            &config(),
            event.clone(),
        )
        .await
        .unwrap(),
    );
    assert_eq!((default_group.num_calls(), options.num_calls()), (1, 0));

    event["snapshot"]["engine"] = json!("postgres");
    copied(
        handle(
            &with_source(&[&default_group, &options], &[&quota, &copy]),
            &config(),
            event,
        )
        .await
        .unwrap(),
    );
    assert_eq!((default_group.num_calls(), options.num_calls()), (1, 0));
}
