//! `notify`: publishes one summary of a run, after the Map and prune, on the
//! success and the failure paths alike. It first reads each database's result
//! from that database's execution (see [`results`]), then sends:
//!
//! 1. CloudWatch metrics (see [`metrics`]);
//! 2. one SNS message: a subject within SNS's limit, a plain-text body that
//!    names every failed database, its failing step and cause, and message
//!    attributes (`status`, `project`, `environment`, `failed_count`) for
//!    subscription filters;
//! 3. a Slack message (Block Kit) when a webhook is configured.
//!
//! The three go out at the same time, and each is attempted whatever
//! happened to the others. A Slack failure is
//! logged and reported in the result but never fails the run; an SNS or
//! CloudWatch failure fails `notify` with `NotificationFailed`, after the
//! other two were tried. The webhook URL is a secret: it lives in a Secrets
//! Manager secret that notify reads once, at cold start (see
//! [`read_webhook`]); it is never logged or returned, and errors are stripped
//! of it. A secret that cannot be read, or holds no valid URL, is a Slack
//! failure like any other: reported in every summary, never a lost SNS message.
//!
//! Notify is also the target of an EventBridge rule on runs that end outside
//! their own error handling (stopped, timed out, an uncatchable error), see
//! [`ended`], and of an hourly rule that measures `SnapshotAge` and point-in-time
//! recovery, see [`age`] and [`recovery`].
//! It also reports each restore drill (`<prefix>-drill`), see [`drill`].
//! [`handle_invocation`] tells the four inputs apart.

pub mod age;
pub mod automated_backups;
pub mod drill;
pub mod ended;
pub mod metrics;
pub mod recovery;
pub mod results;
pub mod summary;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_sns::types::MessageAttributeValue;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::rds::Rds;
use backup_core::types::DatabaseKind;
use backup_core::{AwsFailure, Error, input};
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;

use crate::automated_backups::AutomatedBackups;
use crate::summary::{NotifyRequest, RunNotification, RunReport, Summary};

/// Slack gets this long to answer; the SNS message is already out by then.
pub const SLACK_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_NAMESPACE: &str = "CustomMetrics/DatabaseBackup";

pub struct Clients {
    /// The RDS client of the function's region, which is the run's region.
    pub rds: Rds,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub http: reqwest::Client,
    /// The webhook read from its secret (None: Slack is not configured), or why it is unusable.
    pub slack_webhook: Option<Result<SecretUrl, String>>,
}

impl Clients {
    /// SNS talks to the topic's own region, which may differ from ours. The
    /// Slack webhook is read from its secret here, once per cold start.
    pub async fn connect(sdk_config: &SdkConfig, config: &Config) -> Result<Self, Error> {
        let topic_region = config.sns_topic_arn.split(':').nth(3).unwrap_or_default().to_owned();
        let sns_config = aws_sdk_sns::config::Builder::from(sdk_config)
            .region(Region::new(topic_region))
            .build();
        let http = reqwest::Client::builder().timeout(SLACK_TIMEOUT).build().map_err(|e| {
            Error::config(
                env::SLACK_WEBHOOK_SECRET_ARN,
                format!("HTTP client: {}", e.without_url()),
            )
        })?;
        // One run reads up to one execution per database: adaptive retries
        // slow the reads down when Step Functions throttles them.
        let sfn_config = aws_sdk_sfn::config::Builder::from(sdk_config)
            .retry_config(backup_core::aws::adaptive_retries(sdk_config))
            .build();
        let slack_webhook = match &config.slack_webhook_secret_arn {
            None => None,
            Some(arn) => {
                let secrets = aws_sdk_secretsmanager::Client::new(sdk_config);
                Some(read_webhook(&secrets, arn, config.slack_webhook_secret_version.as_deref()).await)
            }
        };
        Ok(Clients {
            rds: Rds::new(sdk_config)?,
            sns: aws_sdk_sns::Client::from_conf(sns_config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk_config),
            sfn: aws_sdk_sfn::Client::from_conf(sfn_config),
            http,
            slack_webhook,
        })
    }
}

/// Reads the Slack webhook URL from its secret: the given version, or the
/// current one. The error names the secret and what went wrong, never the value.
pub async fn read_webhook(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
    version: Option<&str>,
) -> Result<SecretUrl, String> {
    let unusable = |reason: String| format!("the Slack webhook secret {secret_arn} {reason}");
    let out = secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .map_err(|err| {
            unusable(format!(
                "cannot be read: {}",
                AwsFailure::from_sdk("GetSecretValue", &err)
            ))
        })?;
    let value = out
        .secret_string()
        .ok_or_else(|| unusable("holds no text value".to_owned()))?;
    SecretUrl::parse(value.trim()).map_err(|reason| unusable(format!("{reason} (value not shown: it is a secret)")))
}

/// A Slack incoming-webhook URL. Debug and Display never show it.
#[derive(Clone)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// Accepts `https://` URLs, and `http://` only to this machine (a local
    /// sink in tests). The error never repeats the value: it is a secret.
    pub fn parse(raw: &str) -> Result<SecretUrl, String> {
        let url = Url::parse(raw).map_err(|_| "is not a URL".to_owned())?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match url.scheme() {
            "https" if url.host_str().is_some() => Ok(SecretUrl(url)),
            "http" if loopback => Ok(SecretUrl(url)),
            _ => Err("must be an https:// URL such as https://hooks.slack.com/services/...".to_owned()),
        }
    }

    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub sns_topic_arn: String,
    /// The Secrets Manager secret holding the Slack webhook URL.
    pub slack_webhook_secret_arn: Option<String>,
    /// The version Terraform wrote: a new URL changes it, and so starts new environments.
    pub slack_webhook_secret_version: Option<String>,
    pub namespace: String,
    /// The state machine each database of a run is backed up by (None: the vault account's
    /// deployment, which only measures its copies' age).
    pub database_state_machine_arn: Option<String>,
    /// In the vault account: the source account, from whose snapshots RDS must record a copy
    /// as made for it to count (see `metrics::newest_snapshots`).
    pub copied_from_account: Option<String>,
    /// `manage_automated_backups`: what each run's databases get as the run ends (None: left alone).
    pub automated_backups: Option<AutomatedBackups>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            sns_topic_arn: config::required_arn(env, env::SNS_TOPIC_ARN, "sns")?,
            slack_webhook_secret_arn: config::optional_arn(env, env::SLACK_WEBHOOK_SECRET_ARN, "secretsmanager")?,
            slack_webhook_secret_version: config::optional(env, env::SLACK_WEBHOOK_SECRET_VERSION)?,
            namespace: config::optional(env, env::METRICS_NAMESPACE)?.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            database_state_machine_arn: config::optional_arn(env, env::DATABASE_STATE_MACHINE_ARN, "states")?,
            copied_from_account: config::optional_account_id(env, env::COPIED_FROM_ACCOUNT)?,
            automated_backups: AutomatedBackups::from_json(
                env::AUTOMATED_BACKUPS,
                config::optional(env, env::AUTOMATED_BACKUPS)?.as_deref(),
            )?,
        })
    }
}

/// What happened to the Slack message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackDelivery {
    NotConfigured,
    Delivered,
    Failed,
}

/// Output of `notify`; `run_failed` drives the state machine's final Choice.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyResult {
    pub status: &'static str,
    pub run_failed: bool,
    pub subject: String,
    pub succeeded: usize,
    pub failed: usize,
    pub failed_databases: Vec<String>,
    pub prune_failed: bool,
    pub sns_message_id: Option<String>,
    pub slack: SlackDelivery,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_error: Option<String>,
    pub metrics_put: usize,
}

/// What notify returns: a run's summary sent, or the report on a run that ended badly.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Output {
    Run(NotifyResult),
    Ended(ended::EndedReport),
    SnapshotAge(age::SnapshotAgeReport),
    Drill(drill::DrillSummary),
}

/// The state machine's run summary, an EventBridge execution status change
/// (see [`ended`]), or the hourly snapshot-age measurement (see [`age`]).
pub async fn handle_invocation(clients: &Clients, config: &Config, event: Value) -> Result<Output, Error> {
    if ended::is_status_change(&event) {
        ended::handle(clients, config, event).await.map(Output::Ended)
    } else if drill::is_drill_report(&event) {
        drill::handle(clients, config, event).await.map(Output::Drill)
    } else if age::is_snapshot_age_request(&event) {
        age::handle(clients, config, event).await.map(Output::SnapshotAge)
    } else {
        handle(clients, config, event).await.map(Output::Run)
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<NotifyResult, Error> {
    let Some(database_state_machine_arn) = &config.database_state_machine_arn else {
        return Err(Error::config(
            env::DATABASE_STATE_MACHINE_ARN,
            "is not set: a run's summary reads each database's result from its executions",
        ));
    };
    let RunNotification {
        report: request,
        notified_at,
    } = input::parse(event)?;
    for (i, run) in request.results.iter().enumerate() {
        if run.db_identifier.trim().is_empty() {
            return Err(Error::invalid_input(
                format!("report.results[{i}].db_identifier"),
                "must not be empty",
            ));
        }
        if run.execution_name.trim().is_empty() {
            return Err(Error::invalid_input(
                format!("report.results[{i}].execution_name"),
                "must not be empty",
            ));
        }
    }
    // Each database's automated backups set as asked (manage_automated_backups), and its
    // point-in-time recovery as the run ends, for the summary (the hourly measurement puts its
    // metrics), while the run's results are read: each within its own budget, side by side,
    // so that neither delays the summary by more than the longest of them.
    let databases: Vec<String> = request.results.iter().map(|r| r.db_identifier.clone()).collect();
    let managed = async {
        match &config.automated_backups {
            Some(asked) => automated_backups::apply(&clients.rds, asked, &databases).await,
            None => BTreeMap::new(),
        }
    };
    let ((request, newest), (_, recovery), managed) = futures_util::future::join3(
        read_run(clients, config, database_state_machine_arn, request),
        recovery::watch(&clients.rds, &config.settings.instance, &databases, notified_at),
        managed,
    )
    .await;
    let summary = Summary::new(&request, &config.settings, &clients.rds.region, notified_at)
        .with_recovery(&recovery)
        .with_automated_backups(&managed);
    let subject = summary.subject();

    let (metrics, published, (slack, slack_error)) = futures_util::future::join3(
        put_metrics(clients, config, &summary, &newest),
        publish(clients, config, &summary, &subject),
        deliver_to_slack(clients, &summary.slack_payload()),
    )
    .await;

    let undelivered = undelivered(config, &metrics, &published);
    let metrics_put = metrics.unwrap_or(0);
    let sns_message_id = published.ok();

    tracing::info!(
        execution_id = %request.execution.execution_id,
        status = summary.status(),
        succeeded = summary.succeeded,
        failed = summary.failed,
        metrics_put,
        sns = sns_message_id.is_some(),
        slack = ?slack,
        "run summary sent"
    );
    if let Some(err) = undelivered {
        return Err(err);
    }
    Ok(NotifyResult {
        status: summary.status(),
        run_failed: summary.run_failed(),
        subject,
        succeeded: summary.succeeded,
        failed: summary.failed,
        failed_databases: request
            .results
            .iter()
            .filter(|r| r.failed())
            .map(|r| r.db_identifier.clone())
            .take(100)
            .collect(),
        prune_failed: summary.prune_failed(),
        sns_message_id,
        slack,
        slack_error,
        metrics_put,
    })
}

/// What CloudWatch and SNS did not take, each logged, as one `NotificationFailed`.
pub(crate) fn undelivered(
    config: &Config,
    metrics: &Result<usize, AwsFailure>,
    published: &Result<String, AwsFailure>,
) -> Option<Error> {
    let mut undelivered = Vec::new();
    if let Err(failure) = metrics {
        tracing::error!(error = %failure, "metrics not put");
        undelivered.push(format!("CloudWatch metrics: {failure}"));
    }
    if let Err(failure) = published {
        tracing::error!(error = %failure, topic = %config.sns_topic_arn, "SNS message not published");
        undelivered.push(format!("SNS: {failure}"));
    }
    (!undelivered.is_empty()).then(|| Error::NotificationFailed(undelivered.join("; ")))
}

/// Each database's result, and when our newest available snapshot of each
/// database was made, read at once: DB snapshots alongside the results;
/// cluster snapshots, rarer, once a result shows a cluster.
async fn read_run(
    clients: &Clients,
    config: &Config,
    database_state_machine_arn: &str,
    request: NotifyRequest,
) -> (RunReport, HashMap<String, DateTime<Utc>>) {
    let ages = async {
        if request.results.is_empty() {
            HashMap::new()
        } else {
            snapshot_ages(clients, config, DatabaseKind::Instance).await
        }
    };
    let read = results::read(&clients.sfn, database_state_machine_arn, &request.results);
    let (results, mut newest) = futures_util::future::join(read, ages).await;
    let report = request.with_results(results);
    let has_cluster = report
        .results
        .iter()
        .any(|r| r.snapshot.as_ref().is_some_and(|s| s.kind == DatabaseKind::Cluster));
    if has_cluster {
        for (db, created) in snapshot_ages(clients, config, DatabaseKind::Cluster).await {
            let entry = newest.entry(db).or_insert(created);
            *entry = (*entry).max(created);
        }
    }
    (report, newest)
}

/// When our newest available snapshot of each database of this kind was made.
/// SnapshotAge is worth having, not worth failing the summary for.
async fn snapshot_ages(clients: &Clients, config: &Config, kind: DatabaseKind) -> HashMap<String, DateTime<Utc>> {
    metrics::newest_snapshots(
        &clients.rds,
        &config.settings,
        &[kind],
        config.copied_from_account.as_deref(),
    )
    .await
    .unwrap_or_else(|err| {
        tracing::warn!(error = %err, kind = kind.label(), "snapshot ages unknown; SnapshotAge not put");
        HashMap::new()
    })
}

async fn put_metrics(
    clients: &Clients,
    config: &Config,
    summary: &Summary<'_>,
    newest: &HashMap<String, DateTime<Utc>>,
) -> Result<usize, AwsFailure> {
    put_metric_data(clients, config, metrics::metric_data(summary, newest)).await
}

pub(crate) async fn put_metric_data(
    clients: &Clients,
    config: &Config,
    data: Vec<aws_sdk_cloudwatch::types::MetricDatum>,
) -> Result<usize, AwsFailure> {
    for chunk in data.chunks(metrics::MAX_PER_REQUEST) {
        clients
            .cloudwatch
            .put_metric_data()
            .namespace(&config.namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("PutMetricData", &err))?;
    }
    Ok(data.len())
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

async fn publish(
    clients: &Clients,
    config: &Config,
    summary: &Summary<'_>,
    subject: &str,
) -> Result<String, AwsFailure> {
    let message = Message {
        subject,
        body: &summary.message(),
        status: summary.status(),
        failed_count: summary.failed,
    };
    publish_message(clients, config, message).await
}

/// One SNS message, with the attributes subscription filters use.
pub(crate) struct Message<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub status: &'a str,
    pub failed_count: usize,
}

pub(crate) async fn publish_message(
    clients: &Clients,
    config: &Config,
    message: Message<'_>,
) -> Result<String, AwsFailure> {
    let failed_count = MessageAttributeValue::builder()
        .data_type("Number")
        .string_value(message.failed_count.to_string())
        .build()
        .expect("data type is set");
    let out = clients
        .sns
        .publish()
        .topic_arn(&config.sns_topic_arn)
        .subject(message.subject)
        .message(message.body)
        .message_attributes("status", string_attribute(message.status))
        .message_attributes("project", string_attribute(&config.settings.project))
        .message_attributes("environment", string_attribute(&config.settings.environment))
        .message_attributes("failed_count", failed_count)
        .send()
        .await
        .map_err(|err| AwsFailure::from_sdk("Publish", &err))?;
    Ok(out.message_id().unwrap_or_default().to_owned())
}

/// Slack's part of the summary, when a webhook is configured; its failure is
/// only reported.
pub(crate) async fn deliver_to_slack(clients: &Clients, payload: &Value) -> (SlackDelivery, Option<String>) {
    let delivered = match &clients.slack_webhook {
        None => return (SlackDelivery::NotConfigured, None),
        Some(Err(unusable)) => Err(unusable.clone()),
        Some(Ok(url)) => post_to_slack(&clients.http, url, payload).await,
    };
    match delivered {
        Ok(()) => (SlackDelivery::Delivered, None),
        Err(reason) => {
            tracing::warn!(error = %reason, "Slack message not delivered; SNS and metrics are unaffected");
            (SlackDelivery::Failed, Some(reason))
        }
    }
}

/// Posts the Block Kit message; the error never contains the URL.
async fn post_to_slack(http: &reqwest::Client, url: &SecretUrl, payload: &Value) -> Result<(), String> {
    let response = http
        .post(url.expose().clone())
        .json(payload)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
    Err(format!("Slack answered {status}: {body}"))
}
