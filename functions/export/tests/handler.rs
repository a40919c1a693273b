//! The export handler against mocked RDS clients.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::describe_export_tasks::DescribeExportTasksOutput;
use aws_sdk_rds::operation::start_export_task::StartExportTaskOutput;
use aws_sdk_rds::types::{DbSnapshot, ExportTask};
use aws_smithy_mocks::{Rule, mock};
use backup_core::Error;
use backup_core::rds::Rds;
use backup_core::retention::Tier;
use backup_core::slot_queue::SlotQueue;
use backup_core::testing::slot_queue::{deletes, mock_slot_queue, puts_back, refuses, waiters, wakes};
use backup_core::testing::{self, fixture, mock_rds, rds_error};
use backup_core::types::ExportRecord;
use backup_export::{Config, handle};
use serde_json::json;
use std::sync::{Arc, Mutex};

const TASK_ID: &str = "prod-database-1-20261124-020000";
const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-20261124-020000";
const BUCKET: &str = "nestedphoenix-prod-db-backups";
const ROLE: &str = "arn:aws:iam::123456789012:role/nestedphoenix-production-export";
const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn clients(rules: &[&Rule]) -> Rds {
    mock_rds(rules)
}

/// Export's answer to the fixture's request, RDS answering from `rules`, without the queue.
async fn export_of_fixture(rules: &[&Rule]) -> Result<ExportRecord, Error> {
    export_of_fixture_queued_in(rules, None).await
}

/// Export's answer to the fixture's request, RDS answering from `rules`, with the module's queue.
async fn export_of_fixture_queued_in(rules: &[&Rule], queue: Option<&SlotQueue>) -> Result<ExportRecord, Error> {
    handle(&clients(rules), queue, &config(), fixture("export-request.json")).await
}

fn config() -> Config {
    Config {
        settings: testing::settings(),
        bucket: BUCKET.into(),
        role_arn: ROLE.into(),
        kms_key_arn: KEY.into(),
        export_tiers: Vec::new(),
        export_slot_queue_url: None,
    }
}

fn running_exports(count: usize) -> Rule {
    running_exports_of_which_own(count, 0)
}

/// `count` running exports, the first `own` of them this module's (into its bucket).
fn running_exports_of_which_own(count: usize, own: usize) -> Rule {
    mock!(Client::describe_export_tasks)
        .match_requests(|r| r.export_task_identifier().is_none())
        .then_output(move || {
            let mut out = DescribeExportTasksOutput::builder()
                // A finished export never holds a slot.
                .export_tasks(
                    ExportTask::builder()
                        .export_task_identifier("old")
                        .status("COMPLETE")
                        .build(),
                );
            // Each started an hour before the fixture's try, at 10 %, 20 %...: the first ends
            // soonest, in 9 hours (32,400 s) at its rate.
            let tried_at = chrono::DateTime::parse_from_rfc3339("2026-11-24T02:04:10.180Z").unwrap();
            for i in 0..count {
                let started = tried_at - chrono::Duration::hours(1);
                out = out.export_tasks(
                    ExportTask::builder()
                        .export_task_identifier(format!("other-{i}"))
                        .s3_bucket(if i < own { BUCKET } else { "another-callers-bucket" })
                        .status("IN_PROGRESS")
                        .percent_progress(10 + 10 * i as i32)
                        .task_start_time(aws_sdk_rds::primitives::DateTime::from_millis(
                            started.timestamp_millis(),
                        ))
                        .build(),
                );
            }
            out.build()
        })
}

fn start_ok() -> Rule {
    mock!(Client::start_export_task)
        .match_requests(|r| {
            r.export_task_identifier() == Some(TASK_ID)
                && r.source_arn() == Some(SOURCE_ARN)
                && r.s3_bucket_name() == Some(BUCKET)
                && r.s3_prefix() == Some("nestedphoenix/production/prod-database-1/2026-11-24")
                && r.iam_role_arn() == Some(ROLE)
                && r.kms_key_id() == Some(KEY)
        })
        .then_output(|| {
            StartExportTaskOutput::builder()
                .export_task_identifier(TASK_ID)
                .status("STARTING")
                .build()
        })
}

fn start_fails(code: &'static str) -> Rule {
    mock!(Client::start_export_task).then_http_response(move || rds_error(400, code, "refused"))
}

fn existing_task(source_arn: &'static str) -> Rule {
    mock!(Client::describe_export_tasks)
        .match_requests(|r| r.export_task_identifier() == Some(TASK_ID))
        .then_output(move || {
            DescribeExportTasksOutput::builder()
                .export_tasks(
                    ExportTask::builder()
                        .export_task_identifier(TASK_ID)
                        .source_arn(source_arn)
                        .status("IN_PROGRESS")
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn starts_an_export_under_project_environment_database_and_day() {
    let (slots, start) = (running_exports(4), start_ok());
    let record = export_of_fixture(&[&slots, &start]).await.unwrap();

    assert!(!record.skipped);
    assert_eq!(record.export_task_id.as_deref(), Some(TASK_ID));
    assert_eq!(record.s3_bucket.as_deref(), Some(BUCKET));
    assert_eq!(
        record.s3_prefix.as_deref(),
        Some("nestedphoenix/production/prod-database-1/2026-11-24")
    );
    assert_eq!(record.status.as_deref(), Some("starting"));
    assert!(record.created);
    assert_eq!(start.num_calls(), 1);
}

#[tokio::test]
async fn unsupported_engines_are_skipped_with_a_warning_and_no_call() {
    let mut event = fixture("export-request.json");
    event["snapshot"]["engine"] = json!("oracle-ee");

    let record = handle(&clients(&[]), None, &config(), event).await.unwrap();

    assert!(record.skipped);
    assert!(record.warning.unwrap().contains("oracle-ee"));
    assert_eq!(record.export_task_id, None);
}

#[tokio::test]
async fn an_existing_task_for_the_same_snapshot_counts_as_started() {
    let (slots, start, existing) = (
        running_exports(0),
        start_fails("ExportTaskAlreadyExists"),
        existing_task(SOURCE_ARN),
    );
    let record = export_of_fixture(&[&slots, &start, &existing]).await.unwrap();

    assert!(!record.created);
    assert_eq!(record.status.as_deref(), Some("in_progress"));
}

#[tokio::test]
async fn an_existing_task_for_another_snapshot_is_a_conflict() {
    let other = "arn:aws:rds:us-east-1:123456789012:snapshot:someone-elses";
    let (slots, start, existing) = (
        running_exports(0),
        start_fails("ExportTaskAlreadyExists"),
        existing_task(other),
    );
    let err = export_of_fixture(&[&slots, &start, &existing]).await.unwrap_err();

    assert_eq!(err.error_type().as_str(), "IdentifierConflict");
    assert!(err.to_string().contains("someone-elses"), "{err}");
}

#[tokio::test]
async fn five_running_exports_mean_trying_again_when_one_should_end_without_starting() {
    let slots = running_exports(5);
    let record = export_of_fixture(&[&slots]).await.unwrap();

    assert!(record.slot_full);
    assert!(!record.created);
    // The fifth export (50 % in an hour) ends soonest: in an hour.
    assert_eq!(record.next_try_seconds, Some(3600));
    assert_eq!(slots.num_calls(), 1);
}

#[tokio::test]
async fn with_an_export_of_this_module_running_the_wait_lasts_until_its_hand_on_should_come() {
    // Two of the five are this module's: the second (20 % in an hour) ends first, in 4 hours;
    // its execution sees it within an interval (300 s) and hands its slot on: two intervals' margin.
    let slots = running_exports_of_which_own(5, 2);
    let record = export_of_fixture(&[&slots]).await.unwrap();
    assert!(record.slot_full);
    assert_eq!(record.next_try_seconds, Some(4 * 3600 + 600));
}

#[tokio::test]
async fn a_slot_that_never_comes_fails_the_export_at_its_bound_naming_the_wait() {
    let slots = running_exports(5);
    let mut event = fixture("export-request.json");
    event["slot"]["tried_at"] = "2026-11-25T02:04:10.118Z".into(); // 86,400 s after the wait began
    let err = handle(&clients(&[&slots]), None, &config(), event).await.unwrap_err();

    assert_eq!(err.error_type().as_str(), "ExportSlotsFull");
    assert!(
        !err.error_type().is_retryable(),
        "waited for already, in the state machine"
    );
    assert!(err.to_string().contains("for all the 86400 s"), "{err}");
    assert!(err.to_string().contains("export_wait_timeout_seconds"), "{err}");
}

#[tokio::test]
async fn a_slot_taken_between_the_count_and_the_start_is_waited_for_too() {
    let (slots, start) = (running_exports(4), start_fails("ExportTaskLimitReachedFault"));
    let record = export_of_fixture(&[&slots, &start]).await.unwrap();
    assert!(record.slot_full);
    // The fourth of the four running (40 % in an hour) ends soonest: in 1.5 hours.
    assert_eq!(record.next_try_seconds, Some(5400));
}

#[tokio::test]
async fn a_first_try_leaves_a_free_slot_to_the_longest_waiter_and_queues_behind_it() {
    // Four running, one of them this module's (10 % in an hour: 9 hours left); one waiter queued.
    let slots = running_exports_of_which_own(4, 1);
    let receive = waiters(&[("handle-waiter", "token-waiter", Some("2026-11-24T01:00:00Z"))]);
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let (delete, back, woken) = (deletes(), puts_back(&put_back), wakes("token-waiter"));
    let queue = mock_slot_queue(&[&receive, &delete, &back], &[&woken]);
    // No StartExportTask rule: a start would fail the test.
    let record = export_of_fixture_queued_in(&[&slots], Some(&queue)).await.unwrap();
    assert!(record.slot_full, "{record:?}");
    assert_eq!((delete.num_calls(), woken.num_calls()), (1, 1));
    // In the queue until this module's export should end and hand its slot on, plus two intervals.
    assert_eq!(record.next_try_seconds, Some(9 * 3600 + 600));
}

#[tokio::test]
async fn a_first_try_takes_a_free_slot_once_a_waiter_is_woken_for_each_other_one() {
    // Three running: two free slots, one live waiter behind an ended wait.
    let (slots, start) = (running_exports(3), start_ok());
    let receive = waiters(&[
        ("handle-ended", "token-ended", Some("2026-11-24T00:00:00Z")),
        ("handle-waiter", "token-waiter", Some("2026-11-24T01:00:00Z")),
    ]);
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let (delete, back) = (deletes(), puts_back(&put_back));
    let (ended, woken) = (refuses("token-ended"), wakes("token-waiter"));
    let queue = mock_slot_queue(&[&receive, &delete, &back], &[&ended, &woken]);
    let record = export_of_fixture_queued_in(&[&slots, &start], Some(&queue))
        .await
        .unwrap();
    assert!(!record.slot_full && record.created, "{record:?}");
    assert_eq!((ended.num_calls(), woken.num_calls(), start.num_calls()), (1, 1, 1));
    // The second hand-on counted the queue empty, long-polled it once all the same and took nothing.
    assert_eq!(receive.num_calls(), 2);
}

#[tokio::test]
async fn a_waiters_try_takes_a_free_slot_without_looking_into_the_queue() {
    let (slots, start) = (running_exports(4), start_ok());
    // A queue that answers no receive: a hand-on would fail the test.
    let queue = mock_slot_queue(&[], &[]);
    let mut event = fixture("export-request.json");
    event["slot"]["queued"] = true.into();
    let record = handle(&clients(&[&slots, &start]), Some(&queue), &config(), event)
        .await
        .unwrap();
    assert!(!record.slot_full && record.created, "{record:?}");
}

#[tokio::test]
async fn a_retried_first_try_whose_export_already_runs_hands_no_slot_on() {
    // The first invocation's start went through; its retry finds its own task running.
    let slots = mock!(Client::describe_export_tasks)
        .match_requests(|r| r.export_task_identifier().is_none())
        .then_output(|| {
            DescribeExportTasksOutput::builder()
                .export_tasks(
                    ExportTask::builder()
                        .export_task_identifier(TASK_ID)
                        .status("IN_PROGRESS")
                        .build(),
                )
                .build()
        });
    let (start, existing) = (start_fails("ExportTaskAlreadyExists"), existing_task(SOURCE_ARN));
    // A queue that answers no receive: a hand-on would fail the test.
    let queue = mock_slot_queue(&[], &[]);
    let record = export_of_fixture_queued_in(&[&slots, &start, &existing], Some(&queue))
        .await
        .unwrap();
    assert!(!record.slot_full && !record.created, "{record:?}");
}

#[tokio::test]
async fn rds_errors_map_to_retryable_or_permanent_names() {
    let cases = [
        ("InvalidExportSourceState", "SnapshotBusy", true),
        ("Throttling", "Throttled", true),
        // Throttling codes that name a limit are throttling, not the export limit.
        ("RequestLimitExceeded", "Throttled", true),
        ("LimitExceededException", "Throttled", true),
        ("IamRoleMissingPermissions", "AccessDenied", false),
        ("KMSKeyNotAccessibleFault", "AccessDenied", false),
        ("DBSnapshotNotFound", "SnapshotNotFound", false),
        ("InvalidParameterValue", "AwsRequestFailed", false),
    ];
    for (code, expected, retryable) in cases {
        let (slots, start) = (running_exports(0), start_fails(code));
        let err = export_of_fixture(&[&slots, &start]).await.unwrap_err();
        assert_eq!(err.error_type().as_str(), expected, "{code}: {err}");
        assert_eq!(err.error_type().is_retryable(), retryable, "{code}");
    }
}

#[tokio::test]
async fn configuration_is_checked_and_names_the_variable() {
    let base = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", "nestedphoenix/production/us-east-1"),
        ("EXPORT_BUCKET", BUCKET),
        ("EXPORT_ROLE_ARN", ROLE),
        ("EXPORT_KMS_KEY_ARN", KEY),
        ("EXPORT_TIERS", r#"["monthly", "yearly"]"#),
    ];
    let config = Config::from_env(&base).unwrap();
    assert_eq!(config.bucket, BUCKET);
    assert_eq!(config.export_tiers, [Tier::Monthly, Tier::Yearly]);

    for (name, bad) in [
        ("EXPORT_BUCKET", "Bad_Bucket"),
        ("EXPORT_ROLE_ARN", "export-role"),
        ("EXPORT_KMS_KEY_ARN", "arn:aws:iam::123456789012:role/x"),
        ("EXPORT_BUCKET", ""),
        ("EXPORT_TIERS", r#"["quarterly"]"#),
        ("EXPORT_TIERS", "monthly"),
    ] {
        let mut env = base;
        env.iter_mut().find(|(k, _)| *k == name).unwrap().1 = bad;
        let err = Config::from_env(&env).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!("configuration {name} is invalid")),
            "{err}"
        );
        assert_eq!(err.error_type().as_str(), "ConfigError");
    }
}

#[tokio::test]
async fn bad_input_names_the_field_without_calling_aws() {
    let mut event = fixture("export-request.json");
    event["snapshot"]["snapshot_arn"] = json!("not-an-arn");
    let err = handle(&clients(&[]), None, &config(), event).await.unwrap_err();
    assert!(
        err.to_string().starts_with("input snapshot.snapshot_arn is invalid"),
        "{err}"
    );

    let mut event = fixture("export-request.json");
    event["snapshot"].as_object_mut().unwrap().remove("engine");
    let err = handle(&clients(&[]), None, &config(), event).await.unwrap_err();
    assert_eq!(err.to_string(), "input snapshot.engine is invalid: is required");
}

#[test]
fn the_configuration_reads_the_environment_the_contract_lists() {
    testing::assert_reads_its_contracted_environment(backup_core::contract::Function::Export, Config::from_env);
}

/// The database's snapshots of ours: the fixture's (2026-11-24) and earlier ones (id, created).
fn database_snapshots(earlier: &'static [(&'static str, &'static str)]) -> Rule {
    mock!(Client::describe_db_snapshots)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("prod-database-1") && r.snapshot_type() == Some("manual")
        })
        .then_output(move || {
            let ours = backup_core::tags::snapshot_tags(&testing::settings(), "prod-database-1", "a-run");
            let snapshot = |id: &str, created: &str| {
                let created = chrono::DateTime::parse_from_rfc3339(created).unwrap();
                DbSnapshot::builder()
                    .db_snapshot_identifier(id)
                    .db_instance_identifier("prod-database-1")
                    .snapshot_type("manual")
                    .status("available")
                    .snapshot_create_time(aws_sdk_rds::primitives::DateTime::from_millis(
                        created.timestamp_millis(),
                    ))
                    .set_tag_list(Some(ours.clone()))
                    .build()
            };
            let mut out = DescribeDbSnapshotsOutput::builder().db_snapshots(snapshot(TASK_ID, "2026-11-24T02:00:30Z"));
            for (id, created) in earlier {
                out = out.db_snapshots(snapshot(id, created));
            }
            out.build()
        })
}

/// An earlier snapshot's export task, by its identifier, in `status`.
fn export_of(id: &'static str, status: &'static str) -> Rule {
    mock!(Client::describe_export_tasks)
        .match_requests(move |r| r.export_task_identifier() == Some(id))
        .then_output(move || {
            DescribeExportTasksOutput::builder()
                .export_tasks(ExportTask::builder().export_task_identifier(id).status(status).build())
                .build()
        })
}

#[tokio::test]
async fn export_tiers_export_the_first_snapshot_of_a_period_whose_export_did_not_fail() {
    let monthly = Config {
        export_tiers: vec![Tier::Monthly],
        ..config()
    };
    let earlier = &[
        ("nov-01", "2026-11-01T02:00:00Z"),
        ("nov-02", "2026-11-02T02:00:00Z"),
        ("oct-31", "2026-10-31T02:00:00Z"),
    ];

    // November's first snapshot was exported: this one is not.
    let (listed, first, running, start) = (
        database_snapshots(earlier),
        export_of("nov-01", "COMPLETE"),
        running_exports(0),
        start_ok(),
    );
    let record = handle(
        &clients(&[&listed, &first, &running, &start]),
        None,
        &monthly,
        fixture("export-request.json"),
    )
    .await
    .unwrap();
    assert!(record.skipped, "{record:?}");
    let warning = record.warning.unwrap();
    assert!(
        warning.contains("s3_export_tiers (monthly)") && warning.contains("its month by nov-01"),
        "{warning}"
    );
    assert_eq!((start.num_calls(), running.num_calls()), (0, 0));

    // Its export failed, and the next one's was canceled: this one is exported in their place.
    let (listed, first, second, running, start) = (
        database_snapshots(earlier),
        export_of("nov-01", "FAILED"),
        export_of("nov-02", "CANCELED"),
        running_exports(0),
        start_ok(),
    );
    let record = handle(
        &clients(&[&listed, &first, &second, &running, &start]),
        None,
        &monthly,
        fixture("export-request.json"),
    )
    .await
    .unwrap();
    assert!(!record.skipped, "{record:?}");
    assert_eq!((first.num_calls(), second.num_calls(), start.num_calls()), (1, 1, 1));

    // The first of a month: exported without looking at any export.
    let (listed, running, start) = (
        database_snapshots(&[("oct-31", "2026-10-31T02:00:00Z")]),
        running_exports(0),
        start_ok(),
    );
    let record = handle(
        &clients(&[&listed, &running, &start]),
        None,
        &monthly,
        fixture("export-request.json"),
    )
    .await
    .unwrap();
    assert!(!record.skipped && start.num_calls() == 1, "{record:?}");
}
