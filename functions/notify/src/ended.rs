//! Runs that end outside the state machine's own error handling: stopped
//! from the console, timed out, or failed where no `Catch` applies
//! (`States.Runtime`, `States.DataLimitExceeded`, a lost permission). An
//! EventBridge rule on Step Functions' "Execution Status Change" events
//! (`FAILED`, `TIMED_OUT`, `ABORTED`) of the backup state machine invokes
//! notify with the event. Notify reads the end of the run's history: when
//! its own `Notify` step succeeded, the run was already reported and nothing
//! is sent; otherwise one SNS and Slack message names the execution, the
//! status, the state it failed in, the error and cause, and the console link
//! (from where it can be redriven), and `BackupFailure` is put.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_sfn::types::HistoryEvent;
use backup_core::{AwsFailure, Error, input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Clients, Config, Message, SlackDelivery};

/// The `detail-type` of the events the rule delivers.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";
/// The backup state machine's own summary step.
pub const NOTIFY_STATE: &str = "Notify";
/// The statuses the rule matches: every end but success.
pub const ENDED_BADLY: [&str; 3] = ["FAILED", "TIMED_OUT", "ABORTED"];
/// The last events of a history: the failing state and the Notify step are among them.
const HISTORY_TAIL: usize = 100;

/// The `detail` of a Step Functions execution status change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusChange {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

/// Whether an input is such an event (else it is a run's summary).
pub fn is_status_change(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some(STATUS_CHANGE)
}

/// Output of notify for an execution status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndedReport {
    pub execution_arn: String,
    pub status: String,
    /// The run's own Notify step had already sent its summary: nothing was sent.
    pub already_reported: bool,
    pub failing_state: Option<String>,
    pub error: Option<String>,
    pub sns_message_id: Option<String>,
    pub slack: SlackDelivery,
}

/// What the end of a history says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ending {
    /// The state entered last.
    pub failing_state: Option<String>,
    /// The Notify step ran to success.
    pub notified: bool,
}

impl Ending {
    /// Reads the events, oldest first.
    pub fn read(events: &[HistoryEvent]) -> Self {
        let mut ending = Ending::default();
        for event in events {
            let kind = event.r#type().as_str();
            if let Some(entered) = event.state_entered_event_details() {
                ending.failing_state = Some(entered.name().to_owned());
            } else if matches!(kind, "LambdaFunctionSucceeded" | "TaskSucceeded")
                && ending.failing_state.as_deref() == Some(NOTIFY_STATE)
            {
                ending.notified = true;
            }
        }
        ending
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<EndedReport, Error> {
    let event: EventBridgeEvent<ExecutionStatusChange> = input::parse(event)?;
    // When the run ended, on EventBridge's clock: the failure's data point is put at that time.
    let ended_at = event
        .time
        .ok_or_else(|| Error::invalid_input("time", "is required (EventBridge sets it on every event)"))?;
    let change = event.detail;
    if !ENDED_BADLY.contains(&change.status.as_str()) {
        return Err(Error::invalid_input(
            "detail.status",
            format!("{:?} is not one of {ENDED_BADLY:?}", change.status),
        ));
    }
    let ending = Ending::read(&history_tail(clients, &change.execution_arn).await?);
    if ending.notified {
        tracing::info!(execution_arn = %change.execution_arn, status = %change.status, "already reported by its own Notify step");
        return Ok(EndedReport {
            execution_arn: change.execution_arn,
            status: change.status,
            already_reported: true,
            failing_state: ending.failing_state,
            error: change.error,
            sns_message_id: None,
            slack: SlackDelivery::NotConfigured,
        });
    }
    // The event may carry no error or cause (a stop without them, or a large cause left out).
    let described = clients
        .sfn
        .describe_execution()
        .execution_arn(&change.execution_arn)
        .send()
        .await
        .map_err(|err| AwsFailure::from_sdk("DescribeExecution", &err))?;
    let report = Report {
        change: &change,
        failing_state: ending.failing_state.as_deref(),
        error: described.error().or(change.error.as_deref()),
        cause: described.cause().or(change.cause.as_deref()),
        stopped_at: described
            .stop_date()
            .and_then(|d| DateTime::from_timestamp_millis(d.to_millis().ok()?)),
        project: &config.settings.project,
        environment: &config.settings.environment,
        region: &clients.rds.region,
    };
    let subject = report.subject();
    let body = report.message();
    let message = Message {
        subject: &subject,
        body: &body,
        status: &change.status,
        failed_count: 0,
    };
    let failure = crate::metrics::run_failure(&config.settings.instance, ended_at);
    let (published, metrics, (slack, _)) = futures_util::future::join3(
        crate::publish_message(clients, config, message),
        crate::put_metric_data(clients, config, vec![failure]),
        crate::deliver_to_slack(clients, &report.slack_payload()),
    )
    .await;
    let undelivered = crate::undelivered(config, &metrics, &published);
    tracing::error!(
        execution_arn = %change.execution_arn,
        status = %change.status,
        failing_state = report.failing_state.unwrap_or("-"),
        error = report.error.unwrap_or("-"),
        sns = published.is_ok(),
        "a run ended outside its own error handling"
    );
    if let Some(err) = undelivered {
        return Err(err);
    }
    Ok(EndedReport {
        failing_state: report.failing_state.map(str::to_owned),
        error: report.error.map(str::to_owned),
        execution_arn: change.execution_arn,
        status: change.status,
        already_reported: false,
        sns_message_id: published.ok(),
        slack,
    })
}

/// The last events of the run's history, oldest first, without their inputs and outputs.
async fn history_tail(clients: &Clients, execution_arn: &str) -> Result<Vec<HistoryEvent>, Error> {
    let out = clients
        .sfn
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(HISTORY_TAIL as i32)
        .include_execution_data(false)
        .send()
        .await
        .map_err(|err| AwsFailure::from_sdk("GetExecutionHistory", &err))?;
    // Step Functions answers newest first; the local emulator ignores reverseOrder and
    // maxResults and answers the whole history oldest first. Either way: the newest, in order.
    let mut events = out.events().to_vec();
    events.sort_by_key(HistoryEvent::id);
    Ok(events.split_off(events.len().saturating_sub(HISTORY_TAIL)))
}

/// The message about one run that ended badly.
struct Report<'a> {
    change: &'a ExecutionStatusChange,
    failing_state: Option<&'a str>,
    error: Option<&'a str>,
    cause: Option<&'a str>,
    stopped_at: Option<DateTime<Utc>>,
    project: &'a str,
    environment: &'a str,
    /// Notify's own region, for an execution ARN that names none.
    region: &'a str,
}

impl Report<'_> {
    fn what(&self) -> &'static str {
        match self.change.status.as_str() {
            "ABORTED" => "was stopped",
            "TIMED_OUT" => "timed out",
            _ => "failed",
        }
    }

    fn console_url(&self) -> String {
        crate::summary::execution_console_url(&self.change.execution_arn, self.region)
    }

    /// Within SNS's 100 characters.
    fn subject(&self) -> String {
        let subject = format!(
            "[{}] {} {}: backup run {} {}",
            self.change.status,
            self.project,
            self.environment,
            self.change.name,
            self.what()
        );
        subject.chars().take(100).collect()
    }

    fn message(&self) -> String {
        let stopped = self
            .stopped_at
            .map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        format!(
            "Database backup run {status}: it {what} without sending its own summary.\n\n\
             Project:     {project}\nEnvironment: {environment}\n\
             Execution:   {arn}\nStatus:      {status}\nEnded:       {stopped}\n\
             Failed in:   {state}\nError:       {error}\nCause:       {cause}\n\
             Console:     {console}\n\n\
             Some databases may not have been backed up. Open the execution to see which, then redrive it \
             from the console (within 14 days: `aws stepfunctions redrive-execution --execution-arn {arn}`) \
             or start a new run.\n",
            status = self.change.status,
            what = self.what(),
            project = self.project,
            environment = self.environment,
            arn = self.change.execution_arn,
            state = self.failing_state.unwrap_or("-"),
            error = self.error.unwrap_or("-"),
            cause = self.cause.unwrap_or("-"),
            console = self.console_url(),
        )
    }

    fn slack_payload(&self) -> Value {
        let text = format!(
            "*Failed in* `{}`\n*Error* `{}`\n*Cause* {}",
            self.failing_state.unwrap_or("-"),
            self.error.unwrap_or("-"),
            self.cause.unwrap_or("-")
        );
        json!({
            "text": self.subject(),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": format!("\u{274c} {}", self.subject())}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": format!("Execution <{}|{}>: redrive it from there", self.console_url(), self.change.name)}]},
            ]
        })
    }
}
