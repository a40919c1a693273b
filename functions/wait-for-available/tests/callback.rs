//! A wait as one task: the first call schedules the first poll, each poll beats the
//! task's heartbeat and ends the task or schedules the next (mocked RDS, Step Functions
//! and EventBridge Scheduler).

mod common;

use aws_sdk_scheduler::operation::create_schedule::{CreateScheduleError, CreateScheduleOutput};
use aws_sdk_scheduler::types::error::ConflictException;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
use aws_sdk_sfn::operation::send_task_heartbeat::{SendTaskHeartbeatError, SendTaskHeartbeatOutput};
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_sdk_sfn::types::error::TaskTimedOut;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use backup_core::testing::{fixture, mock_rds_in};
use backup_wait_for_available::Clients;
use backup_wait_for_available::callback::{Outcome, Scheduling, handle};
use chrono::{DateTime, Utc};
use common::{SNAPSHOT_ID, snapshot_with_status as snapshot};
use serde_json::{Value, json};

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:dbbackup-prod-wait-for-available";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/dbbackup-prod-scheduler";
const GROUP: &str = "dbbackup-prod";
const TOKEN: &str = "AQCEAAAAKgAAAAMAAAAAAAAAAeXampleTaskToken0123456789abcdef";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn beats() -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .match_requests(|r| r.task_token() == Some(TOKEN))
        .then_output(|| SendTaskHeartbeatOutput::builder().build())
}

/// Answers CreateSchedule as the module's schedules must be made, keeping the last
/// one's name, expression and input for the test to read ([`scheduled`]).
fn schedules() -> Rule {
    mock!(aws_sdk_scheduler::Client::create_schedule)
        .match_requests(|r| {
            let input = r.target().and_then(|t| t.input()).unwrap_or_default();
            let kept = json!({"name": r.name(), "expression": r.schedule_expression(), "input": input});
            SCHEDULED.with(|s| *s.borrow_mut() = kept.to_string());
            r.group_name() == Some(GROUP)
                && r.schedule_expression_timezone() == Some("UTC")
                && r.action_after_completion() == Some(&ActionAfterCompletion::Delete)
                && r.flexible_time_window().map(|w| w.mode()) == Some(&FlexibleTimeWindowMode::Off)
                && r.target()
                    .is_some_and(|t| t.arn() == FUNCTION_ARN && t.role_arn() == ROLE_ARN)
        })
        .then_output(|| CreateScheduleOutput::builder().schedule_arn("arn").build().unwrap())
}

thread_local! {
    static SCHEDULED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The schedule the call made (there must be one): its name, expression and input.
fn scheduled(rule: &Rule) -> (String, String, Value) {
    assert_eq!(rule.num_calls(), 1);
    let kept: Value = SCHEDULED.with(|kept| serde_json::from_str(&kept.borrow()).unwrap());
    let input = serde_json::from_str(kept["input"].as_str().unwrap()).unwrap();
    (
        kept["name"].as_str().unwrap().to_owned(),
        kept["expression"].as_str().unwrap().to_owned(),
        input,
    )
}

struct Mocks {
    rds: Vec<Rule>,
    sfn: Vec<Rule>,
    scheduler: Vec<Rule>,
}

impl Mocks {
    fn clients(&self) -> (Clients, Scheduling) {
        let sdk_config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::from_static("us-east-1"))
            .build();
        let rds: Vec<&Rule> = self.rds.iter().collect();
        let sfn: Vec<&Rule> = self.sfn.iter().collect();
        let scheduler: Vec<&Rule> = self.scheduler.iter().collect();
        let scheduling = Scheduling {
            sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &sfn),
            scheduler: mock_client!(aws_sdk_scheduler, RuleMode::MatchAny, &scheduler),
            group: GROUP.to_owned(),
            role_arn: ROLE_ARN.to_owned(),
        };
        (
            Clients::with_client(mock_rds_in("us-east-1", &rds), sdk_config),
            scheduling,
        )
    }

    async fn handle(&self, event: Value, now: &str) -> Outcome {
        let (clients, scheduling) = self.clients();
        handle(&clients, &scheduling, FUNCTION_ARN, event, at(now))
            .await
            .unwrap()
    }

    /// The fixture's poll, run a moment after its schedule's time.
    async fn poll(&self) -> Outcome {
        self.handle(fixture("wait-callback-poll.json"), "2026-11-24T02:02:01.300Z")
            .await
    }
}

fn failed(error: &str) -> Outcome {
    Outcome::Failed {
        error: error.to_owned(),
    }
}

#[tokio::test]
async fn the_first_call_schedules_the_first_poll_one_interval_in_without_calling_rds() {
    let mocks = Mocks {
        rds: vec![],
        sfn: vec![],
        scheduler: vec![schedules()],
    };
    let outcome = mocks
        .handle(fixture("wait-callback-start.json"), "2026-11-24T02:01:00.500Z")
        .await;
    // The wait began at 02:01:00.118; the interval is 60 s; at() takes whole seconds.
    assert!(
        matches!(&outcome, Outcome::Scheduled { at: when, .. } if *when == at("2026-11-24T02:02:01Z")),
        "{outcome:?}"
    );
    let (name, expression, input) = scheduled(&mocks.scheduler[0]);
    assert_eq!(expression, "at(2026-11-24T02:02:01)");
    assert_eq!(input["polled_at"], "2026-11-24T02:02:01Z");
    assert_eq!(
        (input["polls"].clone(), input["task_token"].clone()),
        (json!(1), json!(TOKEN))
    );
    assert_eq!(input["wait"]["started_at"], "2026-11-24T02:01:00.118Z");
    assert_eq!(input["db_identifier"], "prod-database-1");
    // Named for its wait and its number: 48 hex digits of the token's digest, then the number.
    assert!(name.len() <= 64 && name.ends_with("-1") && name[..48].chars().all(|c| c.is_ascii_hexdigit()));
}

#[tokio::test]
async fn a_poll_that_finds_it_creating_beats_the_heartbeat_and_schedules_the_next_from_the_progress() {
    let heartbeat = beats();
    let mocks = Mocks {
        rds: vec![snapshot("creating", 20)],
        sfn: vec![heartbeat],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.poll().await;
    assert_eq!(mocks.sfn[0].num_calls(), 1);
    let Outcome::Scheduled { at: next, schedule } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(schedule.ends_with("-2"), "{schedule}");
    // 20 % (20.5) in the 60.882 s since the wait began: 80 % more in about 238 s, polled at 90 %.
    assert_eq!(next, at("2026-11-24T02:02:01Z") + chrono::Duration::seconds(214));
    let (_, _, input) = scheduled(&mocks.scheduler[0]);
    assert_eq!(input["wait"]["since"]["percent"], 20);
    assert_eq!(input["polls"], 2);
}

#[tokio::test]
async fn the_poll_that_finds_it_ready_ends_the_task_with_its_result() {
    let success = mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(|r| {
            let output: Value = serde_json::from_str(r.output().unwrap_or("{}")).unwrap();
            r.task_token() == Some(TOKEN) && output["ready"] == true && output["id"] == SNAPSHOT_ID
        })
        .then_output(|| SendTaskSuccessOutput::builder().build());
    let mocks = Mocks {
        rds: vec![snapshot("available", 100)],
        sfn: vec![beats(), success],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.poll().await;
    assert_eq!(outcome, Outcome::Ready);
    assert_eq!((mocks.sfn[1].num_calls(), mocks.scheduler[0].num_calls()), (1, 0));
}

fn fails_with(error: &'static str, cause: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_failure)
        .match_requests(move |r| {
            r.task_token() == Some(TOKEN) && r.error() == Some(error) && r.cause().is_some_and(|c| c.contains(cause))
        })
        .then_output(|| SendTaskFailureOutput::builder().build())
}

#[tokio::test]
async fn a_failed_snapshot_fails_the_task_with_the_errors_stable_name() {
    let mocks = Mocks {
        rds: vec![snapshot("failed", 40)],
        sfn: vec![beats(), fails_with("SnapshotFailed", "ended in status failed")],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.poll().await;
    assert_eq!(outcome, failed("SnapshotFailed"));
    assert_eq!((mocks.sfn[1].num_calls(), mocks.scheduler[0].num_calls()), (1, 0));
}

#[tokio::test]
async fn a_poll_at_the_bound_fails_the_task_naming_the_resource_its_status_and_the_bound() {
    let mut event = fixture("wait-callback-poll.json");
    event["polled_at"] = "2026-11-24T03:01:00.118Z".into();
    let mocks = Mocks {
        rds: vec![snapshot("creating", 40)],
        sfn: vec![
            beats(),
            fails_with(
                "WaitTimedOut",
                "snapshot prod-database-1-20261124-020000 in us-east-1 was still creating (40% done) after 3600 \
                 seconds, the bound set by snapshot_wait_timeout_seconds",
            ),
        ],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.handle(event, "2026-11-24T03:01:00.500Z").await;
    assert_eq!(outcome, failed("WaitTimedOut"));
    assert_eq!(mocks.scheduler[0].num_calls(), 0);
}

#[tokio::test]
async fn a_task_that_no_longer_waits_stops_the_chain_before_any_rds_call() {
    let refused = mock!(aws_sdk_sfn::Client::send_task_heartbeat).then_error(|| {
        SendTaskHeartbeatError::TaskTimedOut(
            TaskTimedOut::builder()
                .message(
                    "The task token has either expired or the task associated with the token has already been closed",
                )
                .build(),
        )
    });
    let polled = snapshot("creating", 20);
    let mocks = Mocks {
        rds: vec![polled],
        sfn: vec![refused],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.poll().await;
    assert_eq!(outcome, Outcome::TaskEnded);
    assert_eq!((mocks.rds[0].num_calls(), mocks.scheduler[0].num_calls()), (0, 0));
}

#[tokio::test]
async fn a_repeated_invocation_finds_the_next_poll_scheduled_and_adds_none() {
    let taken = mock!(aws_sdk_scheduler::Client::create_schedule).then_error(|| {
        CreateScheduleError::ConflictException(
            ConflictException::builder()
                .message("Schedule already exists.")
                .build()
                .unwrap(),
        )
    });
    let mocks = Mocks {
        rds: vec![snapshot("creating", 20)],
        sfn: vec![beats()],
        scheduler: vec![taken],
    };
    let outcome = mocks.poll().await;
    assert!(matches!(outcome, Outcome::AlreadyScheduled { .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_poll_run_late_never_schedules_the_next_in_the_past() {
    let mocks = Mocks {
        rds: vec![snapshot("creating", 0)],
        sfn: vec![beats()],
        scheduler: vec![schedules()],
    };
    // Scheduled for 02:02:01 (the next due 61 s later), run at 02:10:00.
    let outcome = mocks
        .handle(fixture("wait-callback-poll.json"), "2026-11-24T02:10:00.200Z")
        .await;
    assert!(
        matches!(&outcome, Outcome::Scheduled { at: when, .. } if *when == at("2026-11-24T02:10:02Z")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_call_without_its_token_names_the_field_and_calls_nothing() {
    let mut event = fixture("wait-callback-poll.json");
    event.as_object_mut().unwrap().remove("task_token");
    let mocks = Mocks {
        rds: vec![snapshot("creating", 20)],
        sfn: vec![beats()],
        scheduler: vec![schedules()],
    };
    let (clients, scheduling) = mocks.clients();
    let err = handle(&clients, &scheduling, FUNCTION_ARN, event, at("2026-11-24T02:02:01Z"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(err.to_string().contains("task_token"), "{err}");
    assert_eq!(mocks.sfn[0].num_calls() + mocks.rds[0].num_calls(), 0);
}

#[tokio::test]
async fn a_heartbeat_refused_by_a_throttle_fails_the_wait_naming_the_call() {
    let throttled = mock!(aws_sdk_sfn::Client::send_task_heartbeat).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::from(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#),
        )
    });
    let mocks = Mocks {
        rds: vec![snapshot("creating", 20)],
        sfn: vec![
            throttled,
            fails_with("Throttled", "SendTaskHeartbeat failed: ThrottlingException"),
        ],
        scheduler: vec![schedules()],
    };
    let outcome = mocks.poll().await;
    assert_eq!(outcome, failed("Throttled"));
    assert_eq!((mocks.rds[0].num_calls(), mocks.scheduler[0].num_calls()), (0, 0));
}

#[tokio::test]
async fn a_retried_wait_schedules_its_polls_under_names_of_its_own() {
    let first_try = Mocks {
        rds: vec![],
        sfn: vec![],
        scheduler: vec![schedules()],
    };
    first_try
        .handle(fixture("wait-callback-start.json"), "2026-11-24T02:01:00.500Z")
        .await;
    let (first_name, _, _) = scheduled(&first_try.scheduler[0]);
    // The same task retried (Step Functions' RetryCount 1), whether or not its token is new.
    let mut event = fixture("wait-callback-start.json");
    event["attempt"] = 1.into();
    let retry = Mocks {
        rds: vec![],
        sfn: vec![],
        scheduler: vec![schedules()],
    };
    retry.handle(event, "2026-11-24T02:01:00.500Z").await;
    let (retry_name, _, input) = scheduled(&retry.scheduler[0]);
    assert_ne!(first_name, retry_name);
    assert!(retry_name.ends_with("-1"), "{retry_name}");
    assert_eq!(input["attempt"], 1);
}
