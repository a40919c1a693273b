//! A wait as one Step Functions task, whatever RDS takes: the state machine
//! invokes this function with a task token (`lambda:invoke.waitForTaskToken`)
//! and waits, at no cost in state transitions, until a poll reports back.
//! Each poll schedules the next with a one-time EventBridge Scheduler schedule
//! (`at(...)`, when [`crate::schedule`] says, deleted once it has fired) that
//! invokes this function again with the wait so far. The poll that finds the
//! resource ready ends the task (`SendTaskSuccess`, the poll's result); one that
//! finds it failed, or the wait's bound passed, fails it (`SendTaskFailure`,
//! the error's stable name and message). Every poll first beats the task's
//! heartbeat: a task whose execution was stopped, or that already ended,
//! refuses it, and the chain stops there. A chain that breaks (a dropped
//! invocation) fails the task at its `HeartbeatSeconds`
//! ([`backup_core::run::WAIT_HEARTBEAT_SECONDS`]).
//!
//! Before: a Wait, the poll and a Choice per poll, three state transitions and
//! nine history events each; here a wait is one task's transitions however
//! many polls it takes.

use std::fmt::Write as _;

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use backup_core::{AwsFailure, Error, input};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{Clients, Config, WaitResult, schedule::WaitSoFar};

/// `SendTaskFailure` takes a cause of at most 32,768 characters (API Reference).
const MAX_CAUSE_CHARS: usize = 32_768;

/// Where the next poll is scheduled, and who runs it.
#[derive(Debug, Clone)]
pub struct Scheduling {
    pub sfn: aws_sdk_sfn::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    /// The module's schedule group: the function may create schedules in it only.
    pub group: String,
    /// The role the Scheduler assumes to invoke this function.
    pub role_arn: String,
}

impl Scheduling {
    pub fn new(sdk_config: &aws_config::SdkConfig, config: &Config) -> Self {
        Scheduling {
            sfn: aws_sdk_sfn::Client::new(sdk_config),
            scheduler: aws_sdk_scheduler::Client::new(sdk_config),
            group: config.schedule_group.clone(),
            role_arn: config.scheduler_role_arn.clone(),
        }
    }
}

/// The callback's own fields, besides the poll's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Callback {
    task_token: String,
    /// What is waited for, as a WaitTimedOut message names it ("snapshot copy").
    subject: String,
    /// The execution input field that sets the wait's bound.
    timeout_field: String,
    /// The task's attempt (`$$.State.RetryCount`): a retried wait schedules its own polls.
    #[serde(default)]
    attempt: u32,
    /// The polls scheduled so far: names the next one's schedule.
    #[serde(default)]
    polls: u32,
}

const CALLBACK_FIELDS: [&str; 5] = ["task_token", "subject", "timeout_field", "attempt", "polls"];

/// The wait's start as the first call carries it (the poll's own fields are read by the poll).
#[derive(Debug, Clone, Deserialize)]
struct Start {
    wait: WaitSoFar,
    interval_seconds: u64,
    timeout_seconds: u64,
}

/// What one invocation did: the function's output, for its logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The next poll is scheduled.
    Scheduled { schedule: String, at: DateTime<Utc> },
    /// A schedule of that name exists: this invocation is a repeat of one that made it.
    AlreadyScheduled { schedule: String },
    /// The wait ended: ready.
    Ready,
    /// The wait ended: failed with this error.
    Failed { error: String },
    /// The task no longer waits (its execution stopped, or a repeat of this poll ended it).
    TaskEnded,
}

/// One invocation: from Step Functions as the wait begins (no `polled_at` yet), or
/// from the Scheduler for a poll. `now` is this function's clock: a schedule is never
/// asked for a time already past.
pub async fn handle(
    clients: &Clients,
    scheduling: &Scheduling,
    function_arn: &str,
    event: Value,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let Value::Object(mut poll) = event else {
        return Err(Error::invalid_input("event", "must be a JSON object"));
    };
    let callback_fields: Map<String, Value> = CALLBACK_FIELDS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), poll.remove(*name)?)))
        .collect();
    let callback: Callback = input::parse(Value::Object(callback_fields))?;
    if !poll.contains_key("polled_at") {
        // Nothing RDS creates is ready at once: the first poll comes one interval in.
        let start: Start = input::parse(json!({
            "wait": poll.get("wait"),
            "interval_seconds": poll.get("interval_seconds"),
            "timeout_seconds": poll.get("timeout_seconds"),
        }))?;
        let first = start.interval_seconds.min(start.timeout_seconds).max(1);
        let at = start.wait.started_at + Duration::seconds(first as i64);
        return schedule_poll(scheduling, function_arn, &callback, poll, at, now).await;
    }
    // A heartbeat or an ending refused for another reason (throttled, unavailable after the
    // SDK's retries) fails the wait naming the call, as a failed poll does: the task's Retry
    // then decides, and the database's result says what failed.
    match heartbeat(scheduling, &callback.task_token).await {
        Ok(true) => {}
        Ok(false) => return Ok(Outcome::TaskEnded),
        Err(err) => return fail(scheduling, &callback.task_token, &err).await,
    }
    let polled = crate::poll(clients, Value::Object(poll.clone())).await;
    let outcome = answer(scheduling, function_arn, &callback, poll, polled.result, now).await;
    // An export's slot goes on once its wait is answered: the hand-on takes a few calls, and
    // the wait's heartbeat must not run out meanwhile (on a busy local AWS at 1200x it did).
    if let Some(export_task_id) = &polled.ended_export {
        crate::hand_on_slot(clients, export_task_id).await;
    }
    outcome
}

/// Ends the wait with the poll's result, or schedules the next poll.
async fn answer(
    scheduling: &Scheduling,
    function_arn: &str,
    callback: &Callback,
    mut poll: Map<String, Value>,
    result: Result<WaitResult, Error>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let result = match result {
        Ok(result) => result,
        Err(err) => return fail(scheduling, &callback.task_token, &err).await,
    };
    if result.poll.ready {
        let output = serde_json::to_string(&result).expect("a poll's result serializes");
        let sent = scheduling
            .sfn
            .send_task_success()
            .task_token(&callback.task_token)
            .output(output)
            .send()
            .await;
        return match answered(
            sent,
            "SendTaskSuccess",
            |e| e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token(),
            Outcome::Ready,
        ) {
            Err(err) => fail(scheduling, &callback.task_token, &err).await,
            answered => answered,
        };
    }
    if result.timed_out {
        return fail(scheduling, &callback.task_token, &timed_out(callback, &result)).await;
    }
    let polled_at = input::parse::<DateTime<Utc>>(poll["polled_at"].clone())?;
    poll.insert(
        "wait".to_owned(),
        json!({"started_at": result.started_at, "since": result.since}),
    );
    let at = polled_at + Duration::seconds(result.next_poll_seconds as i64);
    schedule_poll(scheduling, function_arn, callback, poll, at, now).await
}

fn timed_out(callback: &Callback, result: &WaitResult) -> Error {
    let poll = &result.poll;
    Error::WaitTimedOut {
        what: format!("{} {} in {}", callback.subject, poll.id, poll.region),
        status: format!("{} ({}% done)", poll.status, poll.percent_progress.unwrap_or(0)),
        elapsed_seconds: result.elapsed_seconds,
        timeout_field: callback.timeout_field.clone(),
    }
}

/// Schedules the poll at `at` (whole seconds, the at() expression's; never before
/// `now`), the wait so far in its input.
async fn schedule_poll(
    scheduling: &Scheduling,
    function_arn: &str,
    callback: &Callback,
    mut poll: Map<String, Value>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let at = at.max(now + Duration::seconds(1));
    let at = at.duration_trunc(Duration::seconds(1)).map_or(at, |whole| {
        if whole < at {
            whole + Duration::seconds(1)
        } else {
            whole
        }
    });
    let next = Callback {
        polls: callback.polls + 1,
        ..callback.clone()
    };
    let name = schedule_name(&callback.task_token, callback.attempt, next.polls);
    poll.insert("polled_at".to_owned(), json!(at));
    if let Value::Object(fields) = serde_json::to_value(&next).expect("a callback serializes") {
        poll.extend(fields);
    }
    let target = Target::builder()
        .arn(function_arn)
        .role_arn(&scheduling.role_arn)
        .input(Value::Object(poll).to_string())
        .build()
        .map_err(|err| Error::invalid_input("schedule", err.to_string()))?;
    let window = FlexibleTimeWindow::builder()
        .mode(FlexibleTimeWindowMode::Off)
        .build()
        .map_err(|err| Error::invalid_input("schedule", err.to_string()))?;
    let created = scheduling
        .scheduler
        .create_schedule()
        .name(&name)
        .group_name(&scheduling.group)
        .schedule_expression(format!("at({})", at.format("%Y-%m-%dT%H:%M:%S")))
        .schedule_expression_timezone("UTC")
        .flexible_time_window(window)
        .action_after_completion(ActionAfterCompletion::Delete)
        .target(target)
        .send()
        .await;
    match created {
        Ok(_) => {
            tracing::info!(schedule = %name, %at, "next poll scheduled");
            Ok(Outcome::Scheduled { schedule: name, at })
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conflict_exception()) => {
            tracing::info!(schedule = %name, "next poll already scheduled (a repeated invocation)");
            Ok(Outcome::AlreadyScheduled { schedule: name })
        }
        Err(err) => Err(AwsFailure::from_sdk("CreateSchedule", &err).into()),
    }
}

/// The poll's schedule: unique to its wait (the digest of the task token and the attempt,
/// whether or not a retry gets a token of its own) and its number, so that a repeated
/// invocation of a poll finds its successor taken instead of doubling the chain.
fn schedule_name(task_token: &str, attempt: u32, poll: u32) -> String {
    let digest = Sha256::digest(format!("{task_token}/{attempt}").as_bytes());
    let mut name = String::with_capacity(64);
    for byte in &digest[..24] {
        let _ = write!(name, "{byte:02x}");
    }
    let _ = write!(name, "-{poll}");
    name
}

/// Beats the task's heartbeat: false when the task no longer waits.
async fn heartbeat(scheduling: &Scheduling, task_token: &str) -> Result<bool, Error> {
    let sent = scheduling.sfn.send_task_heartbeat().task_token(task_token).send().await;
    Ok(answered(
        sent,
        "SendTaskHeartbeat",
        |e| e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token(),
        Outcome::Ready,
    )? != Outcome::TaskEnded)
}

async fn fail(scheduling: &Scheduling, task_token: &str, err: &Error) -> Result<Outcome, Error> {
    let error = err.error_type().as_str();
    let cause: String = err.to_string().chars().take(MAX_CAUSE_CHARS).collect();
    tracing::warn!(%error, %cause, "wait failed");
    let sent = scheduling
        .sfn
        .send_task_failure()
        .task_token(task_token)
        .error(error)
        .cause(cause)
        .send()
        .await;
    answered(
        sent,
        "SendTaskFailure",
        |e| e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token(),
        Outcome::Failed {
            error: error.to_owned(),
        },
    )
}

/// The answer to a call about the task: `done` when Step Functions took it, `TaskEnded`
/// when the task no longer waits (it refuses the token: "The task token has either expired
/// or the task associated with the token has already been closed", `TaskTimedOut`).
/// `ended` tells the operation's refusals of a closed task.
fn answered<T, E>(
    sent: Result<T, SdkError<E, HttpResponse>>,
    action: &'static str,
    ended: impl Fn(&E) -> bool,
    done: Outcome,
) -> Result<Outcome, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match sent {
        Ok(_) => Ok(done),
        Err(err) if err.as_service_error().is_some_and(&ended) => {
            tracing::info!(action, code = ?err.code(), "the task no longer waits");
            Ok(Outcome::TaskEnded)
        }
        Err(err) => Err(AwsFailure::from_sdk(action, &err).into()),
    }
}
