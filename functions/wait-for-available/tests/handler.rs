//! The wait-for-available handler against mocked RDS clients.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_export_tasks::DescribeExportTasksOutput;
use aws_sdk_rds::types::{DbClusterSnapshot, ExportTask};
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_smithy_mocks::{Rule, mock};
use backup_core::contract::Function;
use backup_core::slot_queue::MOST_TAKEN;
use backup_core::testing::slot_queue::{
    Waiting, counts, deletes, message, mock_slot_queue, puts_back, refuses, waiters, wakes,
};
use backup_core::testing::{assert_reads_its_contracted_environment, fixture, http_status, mock_rds_in, rds_error};
use backup_wait_for_available::{Clients, Config, handle};
use serde_json::json;
use std::sync::{Arc, Mutex};

mod common;

use common::{SNAPSHOT_ID, snapshot_with_status};

fn clients(region: &'static str, rules: &[&Rule]) -> Clients {
    let sdk_config = aws_config::SdkConfig::builder()
        .region(aws_config::Region::from_static("us-east-1"))
        .build();
    Clients::with_client(mock_rds_in(region, rules), sdk_config)
}

fn export_with_status(status: &'static str) -> Rule {
    mock!(Client::describe_export_tasks)
        .match_requests(|r| r.export_task_identifier() == Some(SNAPSHOT_ID))
        .then_output(move || {
            DescribeExportTasksOutput::builder()
                .export_tasks(
                    ExportTask::builder()
                        .export_task_identifier(SNAPSHOT_ID)
                        .status(status)
                        .failure_cause("The IAM role lacks s3:PutObject")
                        .build(),
                )
                .build()
        })
}

#[tokio::test]
async fn a_creating_snapshot_is_not_ready_and_an_available_one_is() {
    let creating = snapshot_with_status("creating", 40);
    let result = handle(&clients("us-east-1", &[&creating]), fixture("wait-db-snapshot.json"))
        .await
        .unwrap();
    assert!(!result.poll.ready);
    assert_eq!(result.poll.status, "creating");
    assert_eq!(result.poll.percent_progress, Some(40));
    assert_eq!(result.poll.region, "us-east-1");

    let available = snapshot_with_status("available", 100);
    let result = handle(&clients("us-east-1", &[&available]), fixture("wait-db-snapshot.json"))
        .await
        .unwrap();
    assert!(result.poll.ready);
    assert_eq!(result.poll.resource, "db_snapshot");
}

#[tokio::test]
async fn the_state_machine_names_an_instance_snapshot_by_its_kind() {
    // The state machine sends `States.Format('{}_snapshot', $.snapshot.kind)`.
    let available = snapshot_with_status("available", 100);
    let mut event = fixture("wait-db-snapshot.json");
    event["resource"] = "instance_snapshot".into();
    let result = handle(&clients("us-east-1", &[&available]), event).await.unwrap();
    assert!(result.poll.ready);
    assert_eq!(result.poll.resource, "db_snapshot");
}

#[tokio::test]
async fn a_failed_snapshot_is_an_error_carrying_the_rds_status() {
    for status in ["failed", "incompatible-restore", "deleting"] {
        let rule = snapshot_with_status(status, 0);
        let err = handle(&clients("us-east-1", &[&rule]), fixture("wait-db-snapshot.json"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), "SnapshotFailed");
        assert!(err.to_string().contains(status), "{err}");
        assert!(err.to_string().contains(SNAPSHOT_ID), "{err}");
    }
}

#[tokio::test]
async fn a_vanished_snapshot_is_not_found() {
    let rule = mock!(Client::describe_db_snapshots)
        .then_http_response(|| rds_error(404, "DBSnapshotNotFound", "DBSnapshot not found."));
    let err = handle(&clients("us-east-1", &[&rule]), fixture("wait-db-snapshot.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "SnapshotNotFound");
}

#[tokio::test]
async fn the_copy_is_polled_in_the_destination_region() {
    // The mocked client of the function is in us-west-2 here, so a request for
    // us-west-2 must use it rather than derive another client.
    let copying = snapshot_with_status("copying", 10);
    let result = handle(&clients("us-west-2", &[&copying]), fixture("wait-copy-snapshot.json"))
        .await
        .unwrap();
    assert!(!result.poll.ready);
    assert_eq!(result.poll.region, "us-west-2");
    assert_eq!(copying.num_calls(), 1);
}

#[tokio::test]
async fn cluster_snapshots_are_polled_with_the_cluster_api() {
    let rule = mock!(Client::describe_db_cluster_snapshots)
        .match_requests(|r| r.db_cluster_snapshot_identifier() == Some(SNAPSHOT_ID))
        .then_output(|| {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_identifier(SNAPSHOT_ID)
                        .status("available")
                        .build(),
                )
                .build()
        });
    let mut event = fixture("wait-db-snapshot.json");
    event["resource"] = "cluster_snapshot".into();
    let result = handle(&clients("us-east-1", &[&rule]), event).await.unwrap();
    assert!(result.poll.ready);
    assert_eq!(result.poll.resource, "cluster_snapshot");
}

#[tokio::test]
async fn export_tasks_report_progress_completion_and_failure() {
    for (status, ready) in [
        ("STARTING", false),
        ("IN_PROGRESS", false),
        ("COMPLETE", true),
        ("complete", true),
    ] {
        let rule = export_with_status(status);
        let result = handle(&clients("us-east-1", &[&rule]), fixture("wait-export-task.json"))
            .await
            .unwrap();
        assert_eq!(result.poll.ready, ready, "{status}");
        assert_eq!(result.poll.status, status.to_ascii_lowercase());
    }
    for status in ["FAILED", "CANCELED"] {
        let rule = export_with_status(status);
        let err = handle(&clients("us-east-1", &[&rule]), fixture("wait-export-task.json"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), "ExportFailed");
        assert!(err.to_string().contains("s3:PutObject"), "{err}");
    }
    let rule = mock!(Client::describe_export_tasks)
        .then_http_response(|| rds_error(404, "ExportTaskNotFound", "Export task not found."));
    let err = handle(&clients("us-east-1", &[&rule]), fixture("wait-export-task.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "ExportTaskNotFound");
}

#[tokio::test]
async fn a_complete_export_carries_rds_warning_and_a_running_one_none() {
    const WARNING: &str = r#"{"skippedTables":["public.sessions"],"skippedObjectives":[],"general":[]}"#;
    for (status, expected) in [("IN_PROGRESS", None), ("COMPLETE", Some(WARNING))] {
        let rule = mock!(Client::describe_export_tasks).then_output(move || {
            DescribeExportTasksOutput::builder()
                .export_tasks(
                    ExportTask::builder()
                        .export_task_identifier(SNAPSHOT_ID)
                        .status(status)
                        .warning_message(WARNING)
                        .build(),
                )
                .build()
        });
        let result = handle(&clients("us-east-1", &[&rule]), fixture("wait-export-task.json"))
            .await
            .unwrap();
        assert_eq!(result.poll.warning.as_deref(), expected, "{status}");
    }
    // Always present, so that the state machine can pass it on by path.
    let rule = export_with_status("COMPLETE");
    let result = handle(&clients("us-east-1", &[&rule]), fixture("wait-export-task.json"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&result).unwrap()["warning"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn bad_input_names_the_field_without_calling_aws() {
    let cases = [
        (
            json!({"resource": "table", "snapshot_id": "x"}),
            "input resource is invalid",
        ),
        (
            json!({"resource": "db_snapshot"}),
            "input snapshot_id is invalid: is required",
        ),
        (
            json!({"resource": "db_snapshot", "snapshot_id": "a--b"}),
            "input snapshot_id is invalid",
        ),
        (
            json!({"resource": "db_snapshot", "snapshot_id": "a", "region": "west"}),
            "input region is invalid",
        ),
        (
            json!({"resource": "export_task", "export_task_id": "x".repeat(61)}),
            "input export_task_id is invalid",
        ),
    ];
    let wait = fixture("wait-db-snapshot.json");
    for (mut event, expected) in cases {
        for field in ["wait", "polled_at", "interval_seconds", "timeout_seconds"] {
            event[field] = wait[field].clone();
        }
        let err = handle(&clients("us-east-1", &[]), event).await.unwrap_err();
        assert_eq!(err.error_type().as_str(), "InvalidInput");
        assert!(err.to_string().starts_with(expected), "{err} / {expected}");
    }
}

#[tokio::test]
async fn each_poll_says_when_to_poll_next_from_the_progress_and_stops_at_the_bound() {
    // The fixture's wait began at 02:01:00.118 and polls at 02:03:00.250 (120 s in).
    let first = snapshot_with_status("creating", 0);
    let result = handle(&clients("us-east-1", &[&first]), fixture("wait-db-snapshot.json"))
        .await
        .unwrap();
    // No progress yet: wait as long again as the wait so far.
    assert_eq!(
        (result.elapsed_seconds, result.next_poll_seconds, result.timed_out),
        (120, 120, false)
    );

    // 20 % (20.5: RDS truncates) in the 120 s since that reading: 80 % more takes about 468 s,
    // and the next poll is at 90 % of that.
    let later = snapshot_with_status("creating", 20);
    let mut event = fixture("wait-db-snapshot.json");
    event["wait"] = serde_json::to_value(&result).unwrap();
    event["polled_at"] = "2026-11-24T02:05:00.250Z".into();
    let result = handle(&clients("us-east-1", &[&later]), event.clone()).await.unwrap();
    assert_eq!((result.elapsed_seconds, result.next_poll_seconds), (240, 422));
    assert_eq!(result.since.percent, 20);

    // At the bound, still creating: timed out.
    event["polled_at"] = "2026-11-24T03:01:00.118Z".into();
    let result = handle(&clients("us-east-1", &[&later]), event).await.unwrap();
    assert!(result.timed_out);
}

#[tokio::test]
async fn a_poll_without_its_wait_names_the_field() {
    let mut event = fixture("wait-db-snapshot.json");
    event.as_object_mut().unwrap().remove("polled_at");
    let err = handle(&clients("us-east-1", &[]), event).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(err.to_string().contains("polled_at"), "{err}");
}

/// The clients of a poll of the fixture's export task (`export`: its status) with the
/// module's queue of waiters answering from `sqs_rules`, Step Functions from `sfn_rules`.
fn export_clients(export: &Rule, sqs_rules: &[&Rule], sfn_rules: &[&Rule]) -> Clients {
    clients("us-east-1", &[export]).with_slot_queue(Some(mock_slot_queue(sqs_rules, sfn_rules)))
}

/// Polls the fixture's export task: whether it is ready (the poll must succeed).
async fn export_ready(polled: &Clients) -> bool {
    handle(polled, fixture("wait-export-task.json"))
        .await
        .unwrap()
        .poll
        .ready
}

#[tokio::test]
async fn an_export_that_ends_wakes_the_longest_live_waiter_past_ended_ones_and_puts_the_others_back() {
    for status in ["COMPLETE", "FAILED"] {
        let export = export_with_status(status);
        // In the queue's order; the waits began in another.
        let receive = waiters(&[
            ("handle-late", "token-late", Some("2026-12-05T03:00:00Z")),
            ("handle-unknown", "token-unknown", None),
            ("handle-ended", "token-ended", Some("2026-12-05T01:00:00.000Z")),
            ("handle-first", "token-first", Some("2026-12-05T01:00:00Z")),
            ("handle-second", "token-second", Some("2026-12-05T02:00:00+00:00")),
        ]);
        let put_back = Arc::new(Mutex::new(Vec::new()));
        let (delete, back) = (deletes(), puts_back(&put_back));
        let (ended, first) = (refuses("token-ended"), wakes("token-first"));
        let polled = export_clients(&export, &[&receive, &delete, &back], &[&ended, &first]);
        let result = handle(&polled, fixture("wait-export-task.json")).await;
        assert_eq!(
            result.is_ok(),
            status == "COMPLETE",
            "{status}: the poll's own answer stands"
        );
        // One receive (a short batch is the whole queue); the ended wait of the same moment,
        // older in the queue, is deleted and skipped, and the first live one woken.
        assert_eq!((receive.num_calls(), delete.num_calls()), (1, 2), "{status}");
        assert_eq!((ended.num_calls(), first.num_calls()), (1, 1), "{status}");
        // The others are visible again at once, in the order they will be served.
        assert_eq!(back.num_calls(), 1, "{status}");
        assert_eq!(
            *put_back.lock().unwrap(),
            ["handle-second", "handle-late", "handle-unknown"],
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_hand_on_polls_a_queue_counted_empty_once_and_waits_out_another_that_holds_the_messages() {
    // Counted empty: one long poll all the same (a message of the last minute may not be counted).
    let export = export_with_status("COMPLETE");
    let empty = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| counts(0, 0));
    let receive = waiters(&[]);
    let polled = export_clients(&export, &[&empty, &receive], &[]);
    assert!(export_ready(&polled).await);
    assert_eq!((empty.num_calls(), receive.num_calls()), (2, 1));

    // Both messages held by another hand-on (exports that ended together): long polls of 5 s
    // until it puts them back, rather than a slot handed on to no one.
    let held = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| counts(0, 2));
    let receive = mock!(aws_sdk_sqs::Client::receive_message)
        .match_requests(|r| r.wait_time_seconds() == Some(5))
        .sequence()
        .output(|| ReceiveMessageOutput::builder().build())
        .output(|| {
            ReceiveMessageOutput::builder()
                .messages(message(("handle-1", "token-first", Some("2026-12-05T01:00:00Z"))))
                .build()
        })
        .build();
    let (delete, woken) = (deletes(), wakes("token-first"));
    let polled = export_clients(&export, &[&held, &receive, &delete], &[&woken]);
    assert!(export_ready(&polled).await);
    assert_eq!((receive.num_calls(), woken.num_calls()), (2, 1));
}

#[tokio::test]
async fn a_hand_on_receives_again_while_it_took_fewer_messages_than_the_queue_counts() {
    // Three counted; the first long poll answers with one of them, the next with the other two.
    let export = export_with_status("COMPLETE");
    let three = mock!(aws_sdk_sqs::Client::get_queue_attributes).then_output(|| counts(3, 0));
    let receive = mock!(aws_sdk_sqs::Client::receive_message)
        .sequence()
        .output(|| {
            ReceiveMessageOutput::builder()
                .messages(message(("handle-late", "token-late", Some("2026-12-05T03:00:00Z"))))
                .build()
        })
        .output(|| {
            ReceiveMessageOutput::builder()
                .messages(message(("handle-first", "token-first", Some("2026-12-05T01:00:00Z"))))
                .messages(message(("handle-second", "token-second", Some("2026-12-05T02:00:00Z"))))
                .build()
        })
        .build();
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let (delete, back, woken) = (deletes(), puts_back(&put_back), wakes("token-first"));
    let polled = export_clients(&export, &[&three, &receive, &delete, &back], &[&woken]);
    assert!(export_ready(&polled).await);
    // The longest waiter came in the second answer.
    assert_eq!((receive.num_calls(), woken.num_calls()), (2, 1));
    assert_eq!(*put_back.lock().unwrap(), ["handle-second", "handle-late"]);
}

#[tokio::test]
async fn a_hand_on_takes_the_queue_ten_at_a_time_up_to_its_bound() {
    // 150 waiters, the longest last in the queue's order but past the bound: the first 100
    // are taken, the longest of them (the 100th) woken, 99 put back in ten calls.
    let mut messages: Vec<Waiting> = vec![("handle", "token-later", Some("2026-12-05T02:00:00Z")); 150];
    messages[99] = ("handle-99", "token-longest-taken", Some("2026-12-05T01:30:00Z"));
    messages[149] = ("handle-149", "token-longest", Some("2026-12-05T01:00:00Z"));
    let export = export_with_status("COMPLETE");
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let (receive, delete, back) = (waiters(&messages), deletes(), puts_back(&put_back));
    let woken = wakes("token-longest-taken");
    let polled = export_clients(&export, &[&receive, &delete, &back], &[&woken]);
    assert!(export_ready(&polled).await);
    assert_eq!(receive.num_calls(), MOST_TAKEN / 10);
    assert_eq!((delete.num_calls(), woken.num_calls()), (1, 1));
    assert_eq!((back.num_calls(), put_back.lock().unwrap().len()), (10, MOST_TAKEN - 1));
}

#[tokio::test]
async fn a_running_export_hands_nothing_on_and_an_empty_queue_wakes_no_one() {
    let export = export_with_status("IN_PROGRESS");
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let (receive, delete, back) = (
        waiters(&[("handle-1", "token-live", None)]),
        deletes(),
        puts_back(&put_back),
    );
    let wake = wakes("token-live");
    let polled = export_clients(&export, &[&receive, &delete, &back], &[&wake]);
    assert!(!export_ready(&polled).await);
    assert_eq!(
        receive.num_calls() + delete.num_calls() + wake.num_calls() + back.num_calls(),
        0
    );

    let export = export_with_status("COMPLETE");
    let (receive, delete, back) = (waiters(&[]), deletes(), puts_back(&put_back));
    let wake = wakes("token-live");
    let polled = export_clients(&export, &[&receive, &delete, &back], &[&wake]);
    assert!(export_ready(&polled).await);
    assert_eq!(
        (
            receive.num_calls(),
            delete.num_calls(),
            wake.num_calls(),
            back.num_calls()
        ),
        (1, 0, 0, 0)
    );
}

#[tokio::test]
async fn a_hand_on_that_fails_fails_nothing_and_one_goes_past_every_ended_wait_it_took() {
    let export = export_with_status("COMPLETE");
    let receive = mock!(aws_sdk_sqs::Client::receive_message).then_http_response(|| http_status(500));
    let polled = export_clients(&export, &[&receive], &[]);
    assert!(export_ready(&polled).await);
    assert!(receive.num_calls() >= 1);

    // 25 messages of ended waits before the live one, all of the longest wait: each deleted.
    let export = export_with_status("COMPLETE");
    let put_back = Arc::new(Mutex::new(Vec::new()));
    let mut messages = vec![("handle", "token-ended", Some("2026-12-05T01:00:00Z")); 25];
    messages.push(("handle-live", "token-live", Some("2026-12-05T01:00:00Z")));
    messages.push(("handle-later", "token-later", Some("2026-12-05T02:00:00Z")));
    let receive = waiters(&messages);
    let (delete, back, ended, live) = (
        deletes(),
        puts_back(&put_back),
        refuses("token-ended"),
        wakes("token-live"),
    );
    let polled = export_clients(&export, &[&receive, &delete, &back], &[&ended, &live]);
    assert!(export_ready(&polled).await);
    assert_eq!(receive.num_calls(), 3, "ten, ten and seven taken");
    assert_eq!((delete.num_calls(), ended.num_calls(), live.num_calls()), (26, 25, 1));
    assert_eq!(*put_back.lock().unwrap(), ["handle-later"]);

    // Every message taken, up to the bound, of an ended wait: the rest wait for the next hand-on.
    let export = export_with_status("COMPLETE");
    let receive = waiters(&vec![
        ("handle", "token-ended", Some("2026-12-05T01:00:00Z"));
        MOST_TAKEN + 5
    ]);
    let (delete, back, ended) = (deletes(), puts_back(&put_back), refuses("token-ended"));
    let polled = export_clients(&export, &[&receive, &delete, &back], &[&ended]);
    assert!(export_ready(&polled).await);
    assert_eq!((receive.num_calls(), ended.num_calls()), (MOST_TAKEN / 10, MOST_TAKEN));
    assert_eq!(back.num_calls(), 0);
}

#[test]
fn the_queue_url_is_read_from_the_contracted_environment() {
    assert_reads_its_contracted_environment(Function::WaitForAvailable, Config::from_env);
    let scheduling = [
        ("SCHEDULE_GROUP_NAME", "dbbackup-prod"),
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/dbbackup-prod-scheduler",
        ),
    ];
    let err = Config::from_env(&[
        ("EXPORT_SLOT_QUEUE_URL", "export-slot-waiters"),
        scheduling[0],
        scheduling[1],
    ])
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(err.to_string().contains("EXPORT_SLOT_QUEUE_URL"), "{err}");
    let err = Config::from_env(&[("SCHEDULE_GROUP_NAME", "db backups"), scheduling[1]]).unwrap_err();
    assert!(err.to_string().contains("SCHEDULE_GROUP_NAME"), "{err}");
}
