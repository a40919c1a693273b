//! The notify handler against mocked SNS, CloudWatch, RDS and Step Functions
//! clients and a local HTTP server standing in for Slack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDatum;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot};
use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};
use aws_sdk_sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
use aws_sdk_sfn::types::error::ExecutionDoesNotExist;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType, StateEnteredEventDetails};
use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use backup_core::testing::{self, fixture, http_status, mock_rds};
use backup_core::{Error, tags};
use backup_notify::automated_backups::AutomatedBackups;
use backup_notify::summary::{ItemResult, NotifyRequest, Summary};
use backup_notify::{
    Clients, Config, NotifyResult, Output, SecretUrl, SlackDelivery, handle, handle_invocation, read_webhook,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:nestedphoenix-production-backup";
const DATABASE_STATE_MACHINE: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-database";

/// A run as the state machine hands it to notify (`notify-request.json`:
/// each database's execution name), and the output of each of those
/// executions (`database-results.json`, in the same order).
struct Run {
    event: Value,
    outputs: Vec<Value>,
}

impl Run {
    fn fixture() -> Self {
        Run {
            event: fixture("notify-request.json"),
            outputs: fixture("database-results.json").as_array().unwrap().clone(),
        }
    }

    /// The run without database `index`.
    fn without(mut self, index: usize) -> Self {
        self.event["report"]["results"].as_array_mut().unwrap().remove(index);
        self.outputs.remove(index);
        self
    }

    /// Step Functions: each database's execution succeeded with its output.
    fn executions(&self) -> Rule {
        let outputs: HashMap<String, String> = self.event["report"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&self.outputs)
            .map(|(run, output)| (run["execution_name"].as_str().unwrap().to_owned(), output.to_string()))
            .collect();
        mock!(aws_sdk_sfn::Client::describe_execution)
            .match_requests(move |r| outputs_of(r.execution_arn()).is_some())
            .then_compute_output(move |r| {
                let arn = r.execution_arn().unwrap();
                let name = outputs_of(Some(arn)).unwrap();
                succeeded(arn, outputs.get(name).cloned())
            })
    }
}

/// The execution name of an ARN of the database state machine's executions.
fn outputs_of(arn: Option<&str>) -> Option<&str> {
    arn?.strip_prefix("arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-database:")
}

fn execution(
    arn: &str,
    status: ExecutionStatus,
) -> aws_sdk_sfn::operation::describe_execution::builders::DescribeExecutionOutputBuilder {
    DescribeExecutionOutput::builder()
        .execution_arn(arn)
        .state_machine_arn(DATABASE_STATE_MACHINE)
        .status(status)
        .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(1_795_917_600))
}

fn succeeded(arn: &str, output: Option<String>) -> DescribeExecutionOutput {
    execution(arn, ExecutionStatus::Succeeded)
        .set_output(output)
        .build()
        .unwrap()
}

struct Recorded {
    metrics: Arc<Mutex<Vec<MetricDatum>>>,
    published: Arc<Mutex<Vec<PublishInput>>>,
}

fn put_metrics_ok(recorded: &Recorded) -> Rule {
    let metrics = recorded.metrics.clone();
    mock!(aws_sdk_cloudwatch::Client::put_metric_data)
        .match_requests(|r| r.namespace() == Some("CustomMetrics/DatabaseBackup"))
        .then_compute_output(move |r| {
            metrics.lock().unwrap().extend(r.metric_data().iter().cloned());
            PutMetricDataOutput::builder().build()
        })
}

fn publish_ok(recorded: &Recorded) -> Rule {
    let published = recorded.published.clone();
    mock!(aws_sdk_sns::Client::publish).then_compute_output(move |r| {
        published.lock().unwrap().push(r.clone());
        PublishOutput::builder().message_id("msg-1").build()
    })
}

/// When the fixture's run reached its Notify state (`notified_at`).
fn notified_at() -> chrono::DateTime<chrono::Utc> {
    serde_json::from_value(fixture("notify-request.json")["notified_at"].clone()).unwrap()
}

/// The newest snapshot of prod-database-1 of ours: 30 minutes before the run's notification.
fn snapshot_listing() -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| {
        let created = notified_at() - chrono::Duration::minutes(30);
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(
                DbSnapshot::builder()
                    .db_snapshot_identifier("prod-database-1-20261124-020000")
                    .status("available")
                    .snapshot_type("manual")
                    .snapshot_create_time(aws_smithy_types_datetime(created))
                    .set_tag_list(Some(tags::snapshot_tags(&testing::settings(), "prod-database-1", "e")))
                    .build(),
            )
            .build()
    })
}

fn aws_smithy_types_datetime(t: chrono::DateTime<chrono::Utc>) -> aws_sdk_rds::primitives::DateTime {
    aws_sdk_rds::primitives::DateTime::from_millis(t.timestamp_millis())
}

fn clients(cloudwatch: &[&Rule], sns: &[&Rule], rds: &[&Rule], sfn: &[&Rule], slack_timeout: Duration) -> Clients {
    // A database a test does not describe is not found (its point-in-time recovery not read).
    let not_found = [
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .then_http_response(|| testing::rds_error(404, "DBInstanceNotFound", "not found")),
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .then_http_response(|| testing::rds_error(404, "DBClusterNotFoundFault", "not found")),
    ];
    let rds: Vec<&Rule> = rds.iter().copied().chain(&not_found).collect();
    Clients {
        rds: mock_rds(&rds),
        sns: mock_client!(aws_sdk_sns, RuleMode::MatchAny, sns, |b| b
            .retry_config(testing::fast_retries())),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cloudwatch, |b| b
            .retry_config(testing::fast_retries())),
        sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn, |b| b
            .retry_config(testing::fast_retries())),
        http: reqwest::Client::builder().timeout(slack_timeout).build().unwrap(),
        slack_webhook: None,
    }
}

/// Clients that post to this webhook, as read from its secret.
fn with_slack(clients: Clients, url: &str) -> Clients {
    Clients {
        slack_webhook: Some(Ok(SecretUrl::parse(url).unwrap())),
        ..clients
    }
}

/// The managed-by value of the instance under test, also its metrics' BackupInstance.
const INSTANCE: &str = "nestedphoenix-production";

fn config() -> Config {
    let env = vec![
        ("PROJECT_NAME", "nestedphoenix".to_string()),
        ("ENVIRONMENT", "production".to_string()),
        ("BACKUP_INSTANCE", INSTANCE.to_string()),
        ("SNS_TOPIC_ARN", TOPIC.to_string()),
        ("DATABASE_STATE_MACHINE_ARN", DATABASE_STATE_MACHINE.to_string()),
    ];
    let env: std::collections::BTreeMap<String, String> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Config::from_env(&env).unwrap()
}

async fn slack_server(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T000/B000/XXXX"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn webhook(server: &MockServer) -> String {
    format!("{}/services/T000/B000/XXXX", server.uri())
}

fn recorded() -> Recorded {
    Recorded {
        metrics: Arc::default(),
        published: Arc::default(),
    }
}

/// The text of the one SNS message notify published.
fn published_message(rec: &Recorded) -> String {
    rec.published.lock().unwrap()[0].message().unwrap().to_owned()
}

/// The value of metric `name` of the run (`db` None) or of one database: its dimensions
/// exactly the instance's, and the database's.
fn metric(metrics: &[MetricDatum], name: &str, db: Option<&str>) -> Option<f64> {
    let mut wanted = vec![("BackupInstance", INSTANCE)];
    wanted.extend(db.map(|db| ("DatabaseIdentifier", db)));
    metrics
        .iter()
        .find(|m| {
            let dimensions: Vec<_> = m
                .dimensions()
                .iter()
                .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
                .collect();
            m.metric_name() == Some(name) && dimensions == wanted
        })
        .and_then(MetricDatum::value)
}

/// Runs notify without Slack, every AWS call succeeding but what the `sfn`
/// rules answer (tried before the run's executions); returns what it sent.
async fn notify_without_slack(run: Run, sfn: &[&Rule]) -> (NotifyResult, Recorded) {
    let rec = recorded();
    let (cw, sns, rds, executions) = (
        put_metrics_ok(&rec),
        publish_ok(&rec),
        snapshot_listing(),
        run.executions(),
    );
    let sfn: Vec<&Rule> = sfn.iter().copied().chain([&executions]).collect();
    let result = handle(
        &clients(&[&cw], &[&sns], &[&rds], &sfn, Duration::from_secs(5)),
        &config(),
        run.event,
    )
    .await
    .unwrap();
    (result, rec)
}

#[tokio::test]
async fn one_summary_goes_to_metrics_sns_and_slack_naming_each_failure() {
    let slack = slack_server(ResponseTemplate::new(200).set_body_string("ok")).await;
    let rec = recorded();
    let run = Run::fixture();
    let (cw, sns, rds, sfn) = (
        put_metrics_ok(&rec),
        publish_ok(&rec),
        snapshot_listing(),
        run.executions(),
    );
    let clients = with_slack(
        clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_secs(5)),
        &webhook(&slack),
    );

    let result = handle(&clients, &config(), run.event).await.unwrap();

    // Each database's result was read from its own execution.
    assert_eq!(sfn.num_calls(), 3);
    assert_eq!(result.status, "FAILED");
    assert!(result.run_failed);
    assert_eq!((result.succeeded, result.failed), (2, 1));
    assert_eq!(result.failed_databases, ["prod-database-2"]);
    assert_eq!(result.sns_message_id.as_deref(), Some("msg-1"));
    assert_eq!(result.slack, SlackDelivery::Delivered);

    // Metrics: the run's (dimension BackupInstance alone), and per database.
    let metrics = rec.metrics.lock().unwrap().clone();
    assert_eq!(result.metrics_put, metrics.len());
    assert_eq!(metric(&metrics, "BackupSuccess", None), Some(2.0));
    assert_eq!(metric(&metrics, "BackupFailure", None), Some(1.0));
    assert_eq!(metric(&metrics, "BackupFailure", Some("prod-database-2")), Some(1.0));
    assert_eq!(metric(&metrics, "BackupSuccess", Some("prod-database-1")), Some(1.0));
    assert_eq!(
        metric(&metrics, "BackupDuration", Some("prod-database-1")),
        Some(1299.538)
    );
    let age = metric(&metrics, "SnapshotAge", Some("prod-database-1")).unwrap();
    assert!((0.49..0.52).contains(&age), "age {age} hours");
    assert_eq!(
        metric(&metrics, "SnapshotAge", Some("prod-database-2")),
        None,
        "no snapshot of ours listed"
    );
    // The run's duration ends when the run reached Notify (2026-11-24T02:14:07.118Z).
    assert_eq!(metric(&metrics, "BackupDuration", None), Some(846.656));
    // The storage prune kept in its region, and its cost at list prices.
    let of_region = |name: &str| {
        metrics.iter().find_map(|m| {
            let region = m
                .dimensions()
                .iter()
                .any(|d| d.name() == Some("Region") && d.value() == Some("us-east-1"));
            (m.metric_name() == Some(name) && region && m.dimensions().len() == 2).then(|| m.value())
        })
    };
    assert_eq!(of_region("RetainedSnapshotGB"), Some(Some(20.0)));
    // The export bucket, in the module's region: 50 GB STANDARD ($1.15) and 200 GB GLACIER ($0.72).
    assert_eq!(of_region("RetainedExportGB"), Some(Some(250.0)));
    assert_eq!(of_region("EstimatedMonthlyCost"), Some(Some(1.9 + 1.87)));

    // SNS: subject within limits, body naming database, step and cause.
    let message = rec.published.lock().unwrap()[0].clone();
    assert_eq!(message.topic_arn(), Some(TOPIC));
    let subject = message.subject().unwrap();
    assert_eq!(
        subject,
        "[FAILED] nestedphoenix production: 2 of 3 database backups succeeded"
    );
    let body = message.message().unwrap();
    assert!(
        body.contains("FAILED  prod-database-2 at copy: CopySlotsFull: cross-region copy slots in us-west-2 were full"),
        "{body}"
    );
    assert!(
        body.contains("OK      prod-database-1 snapshot prod-database-1-20261124-020000"),
        "{body}"
    );
    assert!(body.contains("export skipped"), "{body}");
    assert!(body.contains("retention (30 days) in us-east-1: deleted 1"), "{body}");
    assert!(
        body.contains("; retained up to 20 GiB, at most $1.90 a month at us-east-1 list prices"),
        "{body}"
    );
    assert!(
        body.contains(
            "exports in s3://nestedphoenix-prod-db-backups: 42 objects, 250.00 GB (GLACIER 200.00 GB, \
             STANDARD 50.00 GB), at most $1.87 a month at us-east-1 list prices"
        ),
        "{body}"
    );
    assert!(
        body.contains("console.aws.amazon.com/states/home?region=us-east-1"),
        "{body}"
    );
    // The release that ran, from the workspace's version.
    assert!(
        body.contains(&format!("Version:     database-backup {}\n", env!("CARGO_PKG_VERSION"))),
        "{body}"
    );
    let attributes = message.message_attributes().unwrap();
    assert_eq!(attributes["status"].string_value(), Some("FAILED"));
    assert_eq!(attributes["failed_count"].string_value(), Some("1"));
    assert_eq!(attributes["failed_count"].data_type(), "Number");

    // Slack: Block Kit with the failure named.
    let requests = slack.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let payload: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(payload["blocks"][0]["type"], "header");
    let text = payload.to_string();
    assert!(text.contains("`prod-database-2` at copy: CopySlotsFull"), "{text}");
    assert!(
        text.contains(&format!("database-backup {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[tokio::test]
async fn a_clean_run_is_reported_as_succeeded() {
    let (result, rec) = notify_without_slack(Run::fixture().without(1), &[]).await;

    assert_eq!(result.status, "SUCCEEDED");
    assert!(!result.run_failed);
    assert_eq!(result.slack, SlackDelivery::NotConfigured);
    assert_eq!(metric(&rec.metrics.lock().unwrap(), "BackupFailure", None), Some(0.0));
    assert!(
        rec.published.lock().unwrap()[0]
            .subject()
            .unwrap()
            .starts_with("[SUCCEEDED]")
    );
}

#[tokio::test]
async fn slack_down_or_hanging_never_stops_sns_or_metrics() {
    for response in [
        ResponseTemplate::new(500).set_body_string("internal_error"),
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    ] {
        let slack = slack_server(response).await;
        let rec = recorded();
        let run = Run::fixture();
        let (cw, sns, rds, sfn) = (
            put_metrics_ok(&rec),
            publish_ok(&rec),
            snapshot_listing(),
            run.executions(),
        );
        let url = webhook(&slack);
        let clients = with_slack(
            clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_millis(300)),
            &url,
        );

        let result = handle(&clients, &config(), run.event).await.unwrap();

        assert_eq!(result.slack, SlackDelivery::Failed);
        let error = result.slack_error.unwrap();
        assert!(error.contains("500") || error.contains("request failed"), "{error}");
        assert!(
            !error.contains("XXXX") && !error.contains(&url),
            "the webhook URL leaked: {error}"
        );
        assert_eq!(sns.num_calls(), 1);
        assert_eq!(cw.num_calls(), 1);
    }
}

#[tokio::test]
async fn sns_failing_still_puts_metrics_and_fails_the_step() {
    let slack = slack_server(ResponseTemplate::new(200)).await;
    let rec = recorded();
    let run = Run::fixture();
    let (cw, rds, sfn) = (put_metrics_ok(&rec), snapshot_listing(), run.executions());
    let sns = mock!(aws_sdk_sns::Client::publish).then_http_response(|| http_status(500));
    let clients = with_slack(
        clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_secs(5)),
        &webhook(&slack),
    );

    let err = handle(&clients, &config(), run.event).await.unwrap_err();

    assert_eq!(err.error_type().as_str(), "NotificationFailed");
    assert!(err.to_string().contains("SNS: Publish failed"), "{err}");
    assert_eq!(metric(&rec.metrics.lock().unwrap(), "BackupFailure", None), Some(1.0));
    assert_eq!(slack.received_requests().await.unwrap().len(), 1, "Slack still told");
}

#[tokio::test]
async fn an_unreadable_snapshot_listing_only_drops_snapshot_age() {
    let rec = recorded();
    let run = Run::fixture();
    let (cw, sns, sfn) = (put_metrics_ok(&rec), publish_ok(&rec), run.executions());
    let rds = mock!(aws_sdk_rds::Client::describe_db_snapshots).then_http_response(|| http_status(503));

    let result = handle(
        &clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_secs(5)),
        &config(),
        run.event,
    )
    .await
    .unwrap();

    let metrics = rec.metrics.lock().unwrap();
    assert!(metrics.iter().all(|m| m.metric_name() != Some("SnapshotAge")));
    assert_eq!(metric(&metrics, "BackupSuccess", None), Some(2.0));
    assert_eq!(result.sns_message_id.as_deref(), Some("msg-1"));
}

#[tokio::test]
async fn a_failed_prune_fails_the_run_and_counts_as_a_failure() {
    let mut run = Run::fixture().without(1);
    run.event.as_object_mut().unwrap().remove("prune");
    run.event["report"]["prune_error"] = json!({"step": "prune", "Error": "Throttled", "Cause": "{\"errorType\":\"Throttled\",\"errorMessage\":\"DeleteDBSnapshot failed: Throttling: Rate exceeded\"}"});

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert!(result.run_failed && result.prune_failed);
    assert_eq!(result.failed, 0);
    assert_eq!(metric(&rec.metrics.lock().unwrap(), "BackupFailure", None), Some(1.0));
    let published = rec.published.lock().unwrap();
    assert!(published[0].subject().unwrap().ends_with(", retention failed"));
    assert!(
        published[0]
            .message()
            .unwrap()
            .contains("FAILED  retention (prune) at prune: Throttled: DeleteDBSnapshot failed")
    );
}

#[tokio::test]
async fn a_database_prune_left_alone_for_want_of_a_recent_snapshot_fails_the_run() {
    let mut run = Run::fixture().without(1);
    run.event["report"]["prune"]["max_snapshot_age_hours"] = json!(30);
    run.event["report"]["prune"]["regions"][0]["stale"] = json!([
        {"db_identifier": "prod-database-9", "newest_created_at": "2026-11-20T02:00:00Z"}
    ]);

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert!(result.run_failed && result.prune_failed);
    assert_eq!(metric(&rec.metrics.lock().unwrap(), "BackupFailure", None), Some(1.0));
    let published = rec.published.lock().unwrap();
    let message = published[0].message().unwrap();
    assert!(
        message
            .contains("FAILED  retention (prune) in us-east-1: kept every snapshot of prod-database-9: its newest is"),
        "{message}"
    );
    assert!(
        message.contains("(expected within 30 h); backups of it may have stopped"),
        "{message}"
    );
}

#[tokio::test]
async fn export_and_copy_errors_both_fail_the_database_and_are_both_named() {
    let mut run = Run::fixture();
    let item = &mut run.outputs[0];
    item.as_object_mut().unwrap().remove("copy");
    item["export_error"] = json!({"step": "wait_export", "Error": "WaitTimedOut", "Cause": "export task x was still starting after 600 seconds"});
    item["copy_error"] = json!({"step": "copy", "Error": "ConfigError", "Cause": "{\"errorType\":\"ConfigError\",\"errorMessage\":\"COPY_DESTINATION_REGION: is not a region\"}"});

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert!(result.run_failed);
    assert_eq!(result.failed, 2);
    assert!(result.failed_databases.contains(&"prod-database-1".to_owned()));
    let message = published_message(&rec);
    let line = message.lines().find(|l| l.contains("prod-database-1")).unwrap();
    assert!(
        line.starts_with("FAILED  prod-database-1 at wait_export: WaitTimedOut: export task x"),
        "{line}"
    );
    assert!(
        line.contains("; at copy: ConfigError: COPY_DESTINATION_REGION: is not a region"),
        "{line}"
    );
    assert!(
        line.contains("; snapshot prod-database-1-20261124-020000 (us-east-1)"),
        "{line}"
    );
}

#[tokio::test]
async fn an_export_rds_warned_of_is_reported_never_a_silent_success() {
    let mut run = Run::fixture();
    let warning = r#"{"skippedTables":["public.sessions (unlogged)"],"skippedObjectives":[],"general":[]}"#;
    run.outputs[0]["export_warning"] = json!(warning);
    run.outputs[1]["export_warning"] = Value::Null;

    let (result, rec) = notify_without_slack(run, &[]).await;

    let (subject, line) = reported_ok(&result, &rec, "prod-database-1");
    assert!(subject.ends_with(", 1 export with a warning"), "{subject}");
    assert!(
        line.ends_with(&format!("; export WARNING (RDS skipped data): {warning}")),
        "{line}"
    );
    let metrics = rec.metrics.lock().unwrap().clone();
    assert_eq!(metric(&metrics, "ExportWarnings", None), Some(1.0));
    assert_eq!(metric(&metrics, "ExportWarnings", Some("prod-database-1")), Some(1.0));
    assert_eq!(metric(&metrics, "ExportWarnings", Some("prod-database-2")), None);
}

#[tokio::test]
async fn a_copy_not_made_is_reported_with_its_reason_and_the_backup_stands() {
    let mut run = Run::fixture();
    let warning = "no copy to us-west-2: prod-database-1-20261124-020000 was taken with option group ledger-oracle-tde";
    run.outputs[0].as_object_mut().unwrap().remove("copy");
    run.outputs[0]["copy_warning"] = json!(warning);

    let (result, rec) = notify_without_slack(run, &[]).await;

    let (subject, line) = reported_ok(&result, &rec, "prod-database-1");
    assert!(subject.ends_with(", 1 copy not made"), "{subject}");
    assert!(line.ends_with(&format!("; copy WARNING: {warning}")), "{line}");
}

/// A database reported backed up despite a warning: the subject, and its line of the message.
fn reported_ok(result: &NotifyResult, rec: &Recorded, db: &str) -> (String, String) {
    assert!(!result.failed_databases.iter().any(|failed| failed == db));
    let subject = rec.published.lock().unwrap()[0]
        .subject()
        .unwrap_or_default()
        .to_owned();
    let message = published_message(rec);
    let line = message.lines().find(|l| l.contains(db)).unwrap().to_owned();
    assert!(line.starts_with(&format!("OK      {db}")), "{line}");
    (subject, line)
}

#[tokio::test]
async fn a_stopped_run_is_a_failure_even_without_results() {
    let mut run = Run::fixture().without(2).without(1).without(0);
    run.event.as_object_mut().unwrap().remove("prune");
    // As the run's Select step catches select's error: a Lambda error document as Cause.
    run.event["report"]["run_error"] = json!({"Error": "InvalidInput", "Cause": "{\"errorType\":\"InvalidInput\",\"errorMessage\":\"input dry_run is invalid: must be true or false, not \\\"yes\\\"\"}"});

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert!(result.run_failed);
    assert_eq!((result.succeeded, result.failed), (0, 0));
    assert_eq!(metric(&rec.metrics.lock().unwrap(), "BackupFailure", None), Some(1.0));
    let published = rec.published.lock().unwrap();
    assert!(published[0].subject().unwrap().starts_with("[FAILED]"));
    assert!(published[0].subject().unwrap().contains("run stopped: InvalidInput"));
    assert!(published[0].message().unwrap().contains(
        "FAILED  the run stopped: InvalidInput: input dry_run is invalid: must be true or false, not \"yes\""
    ));
}

#[tokio::test]
async fn metrics_of_many_databases_go_in_batches_of_a_thousand() {
    let rec = recorded();
    let (cw, sns) = (put_metrics_ok(&rec), publish_ok(&rec));
    let rds =
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let mut run = Run::fixture();
    let (run_template, output_template) = (run.event["report"]["results"][0].clone(), run.outputs[0].clone());
    let (mut runs, mut outputs) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let (mut database, mut output) = (run_template.clone(), output_template.clone());
        database["db_identifier"] = json!(format!("db-{i}"));
        database["execution_name"] = json!(format!("execution-{i}"));
        output["db_identifier"] = json!(format!("db-{i}"));
        runs.push(database);
        outputs.push(output);
    }
    run.event["report"]["results"] = json!(runs);
    run.outputs = outputs;
    let sfn = run.executions();

    let result = handle(
        &clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_secs(5)),
        &config(),
        run.event,
    )
    .await
    .unwrap();

    // Every database's result read, each once.
    assert_eq!((sfn.num_calls(), result.succeeded), (400, 400));
    // 4 aggregates + 400 x (success, failure, duration) + the retained snapshots, the exports
    // and their cost in prune's one region.
    assert_eq!(result.metrics_put, 1207);
    assert_eq!(cw.num_calls(), 2);
    assert_eq!(rec.metrics.lock().unwrap().len(), 1207);
}

const SECRET: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:nestedphoenix-production-slack-webhook-url-AbCdEf";

fn secrets(rule: &Rule) -> aws_sdk_secretsmanager::Client {
    mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [rule], |b| b
        .retry_config(testing::fast_retries()))
}

#[tokio::test]
async fn the_webhook_is_read_from_its_secret_and_never_shown() {
    let secret = "https://hooks.slack.com/services/T000/B000/SECRETSECRET";
    let read = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .match_requests(|req| req.secret_id() == Some(SECRET) && req.version_id() == Some("v1"))
        .then_output(move || {
            GetSecretValueOutput::builder()
                .secret_string(format!("{secret}\n"))
                .build()
        });

    let url = read_webhook(&secrets(&read), SECRET, Some("v1")).await.unwrap();

    assert_eq!(url.expose().as_str(), secret);
    assert!(!format!("{url:?}").contains("SECRET"));
}

#[tokio::test]
async fn an_unusable_secret_is_named_never_its_value() {
    for bad in [
        "http://hooks.slack.com/services/T/B/SECRET",
        "hooks.slack.com/SECRET",
        "ftp://x/SECRET",
    ] {
        let read = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_output(move || GetSecretValueOutput::builder().secret_string(bad).build());
        let err = read_webhook(&secrets(&read), SECRET, None).await.unwrap_err();
        assert!(err.starts_with(&format!("the Slack webhook secret {SECRET} ")), "{err}");
        assert!(
            err.contains("must be an https:// URL") || err.contains("is not a URL"),
            "{err}"
        );
        assert!(!err.contains("SECRET,") && !err.contains("/SECRET"), "{err}");
    }
    let denied = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
        GetSecretValueError::generic(
            aws_sdk_secretsmanager::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform: secretsmanager:GetSecretValue")
                .build(),
        )
    });
    let err = read_webhook(&secrets(&denied), SECRET, None).await.unwrap_err();
    assert!(err.contains(&format!("{SECRET} cannot be read")), "{err}");
    assert!(err.contains("AccessDeniedException"), "{err}");
}

#[tokio::test]
async fn an_unusable_webhook_fails_only_slack() {
    let rec = recorded();
    let run = Run::fixture();
    let (cw, sns, rds, sfn) = (
        put_metrics_ok(&rec),
        publish_ok(&rec),
        snapshot_listing(),
        run.executions(),
    );
    let reason = format!("the Slack webhook secret {SECRET} cannot be read: AccessDeniedException");
    let clients = Clients {
        slack_webhook: Some(Err(reason.clone())),
        ..clients(&[&cw], &[&sns], &[&rds], &[&sfn], Duration::from_secs(5))
    };

    let result = handle(&clients, &config(), run.event).await.unwrap();

    assert_eq!(result.slack, SlackDelivery::Failed);
    assert_eq!(result.slack_error.as_deref(), Some(reason.as_str()));
    assert_eq!((sns.num_calls(), cw.num_calls()), (1, 1));
}

#[test]
fn subjects_stay_within_sns_limits() {
    let mut run = Run::fixture();
    run.event["report"]["execution"]["execution_id"] = json!(TOPIC);
    let request: NotifyRequest = serde_json::from_value(run.event["report"].take()).unwrap();
    let results: Vec<ItemResult> = run
        .outputs
        .into_iter()
        .map(|o| serde_json::from_value(o).unwrap())
        .collect();
    let report = request.with_results(results);
    let mut settings = testing::settings();
    settings.project = format!("pr\u{f6}ject\n{}", "x".repeat(200));
    let summary = Summary::new(&report, &settings, "us-east-1", testing::start_time());
    let subject = summary.subject();
    assert!(subject.len() <= 99);
    assert!(
        subject.chars().all(|c| c.is_ascii() && !c.is_ascii_control()),
        "{subject:?}"
    );
}

#[tokio::test]
async fn malformed_input_names_the_field_without_sending_anything() {
    let mut event = fixture("notify-request.json");
    event["report"]["results"][1]
        .as_object_mut()
        .unwrap()
        .remove("db_identifier");
    let err = handle(&clients(&[], &[], &[], &[], Duration::from_secs(1)), &config(), event)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert_eq!(
        err.to_string(),
        "input report.results[1].db_identifier is invalid: is required"
    );
}

/// Answers `DescribeExecution` of the execution named `name` with `answer`.
fn execution_named(
    name: &'static str,
) -> aws_smithy_mocks::RuleBuilder<
    aws_sdk_sfn::operation::describe_execution::DescribeExecutionInput,
    DescribeExecutionOutput,
    DescribeExecutionError,
> {
    mock!(aws_sdk_sfn::Client::describe_execution).match_requests(move |r| outputs_of(r.execution_arn()) == Some(name))
}

#[tokio::test]
async fn a_database_whose_execution_failed_or_was_stopped_is_a_failure_naming_why() {
    let run = Run::fixture();
    let failed = execution_named("0b8f1c52-6a3e-4d0e-9a51-2f4f5c0d7e11").then_compute_output(move |r| {
        execution(r.execution_arn().unwrap(), ExecutionStatus::Failed)
            .error("States.Runtime")
            .cause("An error occurred while executing the state 'Snapshot'")
            .build()
            .unwrap()
    });
    let aborted = execution_named("5d2a9e07-3b4c-4f8a-8e6d-91c0b7a4f322").then_compute_output(|r| {
        execution(r.execution_arn().unwrap(), ExecutionStatus::Aborted)
            .build()
            .unwrap()
    });
    let (result, rec) = notify_without_slack(run, &[&failed, &aborted]).await;

    assert_eq!((result.succeeded, result.failed), (1, 2));
    assert_eq!(result.failed_databases, ["prod-database-1", "prod-database-2"]);
    let metrics = rec.metrics.lock().unwrap();
    assert_eq!(metric(&metrics, "BackupFailure", Some("prod-database-1")), Some(1.0));
    assert_eq!(metric(&metrics, "BackupFailure", None), Some(2.0));
    let message = published_message(&rec);
    assert!(
        message.contains("FAILED  prod-database-1 at database_execution: States.Runtime: An error occurred while executing the state 'Snapshot'"),
        "{message}"
    );
    assert!(
        message.contains("FAILED  prod-database-2 at database_execution: ExecutionAborted: the execution arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-database:5d2a9e07-3b4c-4f8a-8e6d-91c0b7a4f322 ended ABORTED"),
        "{message}"
    );
}

#[tokio::test]
async fn a_database_whose_execution_never_started_reports_the_runs_error() {
    let mut run = Run::fixture();
    run.event["report"]["results"][2]["error"] = json!({
        "step": "start_database_execution",
        "Error": "StepFunctions.ExecutionLimitExceeded",
        "Cause": "Maximum number of running executions reached"
    });
    let missing = execution_named("c41e7f90-8d15-4a2b-b3c6-7e9f0a1d5b33").then_error(|| {
        DescribeExecutionError::ExecutionDoesNotExist(
            ExecutionDoesNotExist::builder().message("no such execution").build(),
        )
    });
    let (result, rec) = notify_without_slack(run, &[&missing]).await;

    assert!(result.failed_databases.contains(&"prod-read-replica-1".to_owned()));
    let message = published_message(&rec);
    assert!(
        message.contains("FAILED  prod-read-replica-1 at start_database_execution: StepFunctions.ExecutionLimitExceeded: Maximum number of running executions reached"),
        "{message}"
    );
}

#[tokio::test]
async fn a_result_that_cannot_be_read_fails_that_database_only() {
    let run = Run::fixture().without(1);
    let unreadable = execution_named("0b8f1c52-6a3e-4d0e-9a51-2f4f5c0d7e11").then_http_response(|| http_status(500));
    let (result, rec) = notify_without_slack(run, &[&unreadable]).await;

    assert_eq!((result.succeeded, result.failed), (1, 1));
    assert_eq!(result.failed_databases, ["prod-database-1"]);
    assert!(result.sns_message_id.is_some(), "the summary still goes out");
    let message = published_message(&rec);
    assert!(
        message.contains("FAILED  prod-database-1 at read_result: AwsUnavailable: the result of arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-database:0b8f1c52-6a3e-4d0e-9a51-2f4f5c0d7e11 could not be read: DescribeExecution failed"),
        "{message}"
    );
}

#[tokio::test]
async fn a_result_of_another_database_is_not_taken_for_this_one() {
    let mut run = Run::fixture().without(2).without(1);
    run.outputs[0]["db_identifier"] = json!("prod-database-9");

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert_eq!(result.failed_databases, ["prod-database-1"]);
    let message = published_message(&rec);
    assert!(
        message.contains("at database_execution: UnexpectedResult:"),
        "{message}"
    );
    assert!(message.contains("reports database prod-database-9"), "{message}");
}

// Runs that ended outside the state machine's own error handling (EventBridge status-change events).

const RUN_ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-backup:scheduled-1";

/// A history event; `state`: the state an entered event names.
fn history_event(id: i64, kind: HistoryEventType, state: Option<&str>) -> HistoryEvent {
    HistoryEvent::builder()
        .id(id)
        .r#type(kind)
        .timestamp(aws_sdk_sfn::primitives::DateTime::from_secs(1_763_949_600 + id))
        .set_state_entered_event_details(
            state.map(|name| StateEnteredEventDetails::builder().name(name).build().unwrap()),
        )
        .build()
        .unwrap()
}

/// The end of a run's history, newest first as Step Functions returns it with reverseOrder.
fn history(events: Vec<HistoryEvent>) -> Rule {
    let mut newest_first = events;
    newest_first.reverse();
    mock!(aws_sdk_sfn::Client::get_execution_history)
        .match_requests(|r| r.execution_arn() == Some(RUN_ARN) && r.reverse_order() == Some(true))
        .then_output(move || {
            GetExecutionHistoryOutput::builder()
                .set_events(Some(newest_first.clone()))
                .build()
                .unwrap()
        })
}

/// A run stopped (or failed) while its databases were being backed up.
fn stopped_in_the_map() -> Vec<HistoryEvent> {
    use HistoryEventType::*;
    vec![
        history_event(1, ExecutionStarted, None),
        history_event(2, PassStateEntered, Some("StartRun")),
        history_event(3, PassStateExited, None),
        history_event(4, MapStateEntered, Some("BackupDatabases")),
        history_event(5, MapStateStarted, None),
        history_event(6, ExecutionAborted, None),
    ]
}

/// A run that failed after its own Notify step reported it.
fn failed_after_notify() -> Vec<HistoryEvent> {
    use HistoryEventType::*;
    vec![
        history_event(40, TaskStateEntered, Some("Notify")),
        history_event(41, LambdaFunctionScheduled, None),
        history_event(42, LambdaFunctionStarted, None),
        history_event(43, LambdaFunctionSucceeded, None),
        history_event(44, TaskStateExited, None),
        history_event(45, ChoiceStateEntered, Some("DidRunFail")),
        history_event(46, ChoiceStateExited, None),
        history_event(47, FailStateEntered, Some("BackupFailed")),
        history_event(48, ExecutionFailed, None),
    ]
}

fn described_run(status: ExecutionStatus, error: Option<&str>, cause: Option<&str>) -> Rule {
    let (error, cause) = (error.map(str::to_owned), cause.map(str::to_owned));
    mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(|r| r.execution_arn() == Some(RUN_ARN))
        .then_output(move || {
            DescribeExecutionOutput::builder()
                .execution_arn(RUN_ARN)
                .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-backup")
                .status(status.clone())
                .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(1_763_949_600))
                .stop_date(aws_sdk_sfn::primitives::DateTime::from_secs(1_763_952_067))
                .set_error(error.clone())
                .set_cause(cause.clone())
                .build()
                .unwrap()
        })
}

/// notify invoked with a status-change fixture; what it returned and sent.
async fn notify_of_status_change(event: Value, sfn: &[&Rule]) -> (Result<Output, Error>, Recorded) {
    let rec = recorded();
    let (cw, sns) = (put_metrics_ok(&rec), publish_ok(&rec));
    let result = handle_invocation(
        &clients(&[&cw], &[&sns], &[], sfn, Duration::from_secs(5)),
        &config(),
        event,
    )
    .await;
    (result, rec)
}

#[tokio::test]
async fn a_run_that_ended_outside_its_error_handling_is_reported_once_with_the_reason() {
    let cases = [
        (
            "execution-status-change-aborted.json",
            ExecutionStatus::Aborted,
            Some("Stopped"),
            Some("stopped by a DBA"),
            "was stopped",
        ),
        (
            "execution-status-change-failed.json",
            ExecutionStatus::Failed,
            Some("States.Runtime"),
            Some("An error occurred while executing the state 'Prune'"),
            "failed",
        ),
        (
            "execution-status-change-timed-out.json",
            ExecutionStatus::TimedOut,
            Some("States.Timeout"),
            None,
            "timed out",
        ),
    ];
    for (file, status, error, cause, what) in cases {
        let (tail, described) = (history(stopped_in_the_map()), described_run(status, error, cause));
        let (result, rec) = notify_of_status_change(fixture(file), &[&tail, &described]).await;
        let Output::Ended(report) = result.unwrap() else {
            panic!("{file}: not a status-change report")
        };
        assert!(!report.already_reported, "{file}");
        assert_eq!(report.failing_state.as_deref(), Some("BackupDatabases"), "{file}");
        let published = rec.published.lock().unwrap();
        assert_eq!(published.len(), 1, "{file}");
        let subject = published[0].subject().unwrap();
        assert!(
            subject.starts_with("[") && subject.ends_with(&format!("backup run scheduled-1 {what}")),
            "{subject}"
        );
        assert!(subject.len() <= 100);
        let message = published[0].message().unwrap();
        for expected in [
            format!("Execution:   {RUN_ARN}"),
            "Failed in:   BackupDatabases".to_owned(),
            format!("Error:       {}", error.unwrap_or("-")),
            format!("Cause:       {}", cause.unwrap_or("-")),
            format!("#/v2/executions/details/{RUN_ARN}"),
            format!("aws stepfunctions redrive-execution --execution-arn {RUN_ARN}"),
        ] {
            assert!(message.contains(&expected), "{file}: {expected:?} not in {message}");
        }
        let metrics = rec.metrics.lock().unwrap();
        assert_eq!(metric(&metrics, "BackupFailure", None), Some(1.0), "{file}");
        // The failure is put at the time the run ended (the event's), not at notify's own.
        let put_at = metrics[0].timestamp().map(|t| t.to_millis().unwrap());
        let ended_at = chrono::DateTime::parse_from_rfc3339(fixture(file)["time"].as_str().unwrap()).unwrap();
        assert_eq!(put_at, Some(ended_at.timestamp_millis()), "{file}");
    }
}

#[tokio::test]
async fn a_run_its_own_notify_step_reported_is_not_reported_again() {
    let tail = history(failed_after_notify());
    let mut event = fixture("execution-status-change-failed.json");
    event["detail"]["error"] = json!("BackupFailed");
    let (result, rec) = notify_of_status_change(event, &[&tail]).await;
    let Output::Ended(report) = result.unwrap() else {
        panic!("not a status-change report")
    };
    assert!(report.already_reported);
    assert!(rec.published.lock().unwrap().is_empty());
    assert!(rec.metrics.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_run_whose_notify_step_failed_is_reported() {
    use HistoryEventType::*;
    let tail = history(vec![
        history_event(40, TaskStateEntered, Some("Notify")),
        history_event(41, LambdaFunctionScheduled, None),
        history_event(42, LambdaFunctionFailed, None),
        history_event(43, FailStateEntered, Some("NotificationFailed")),
        history_event(44, ExecutionFailed, None),
    ]);
    let described = described_run(
        ExecutionStatus::Failed,
        Some("NotificationFailed"),
        Some("SNS: Publish failed"),
    );
    let (result, rec) =
        notify_of_status_change(fixture("execution-status-change-failed.json"), &[&tail, &described]).await;
    let Output::Ended(report) = result.unwrap() else {
        panic!("not a status-change report")
    };
    assert!(!report.already_reported);
    assert_eq!(report.failing_state.as_deref(), Some("NotificationFailed"));
    assert_eq!(rec.published.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_status_change_that_is_not_a_bad_end_is_refused_naming_the_field() {
    let mut event = fixture("execution-status-change-aborted.json");
    event["detail"]["status"] = json!("SUCCEEDED");
    let (result, rec) = notify_of_status_change(event, &[]).await;
    let err = result.unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(err.to_string().contains("detail.status"), "{err}");
    assert!(rec.published.lock().unwrap().is_empty());
}

#[test]
fn the_configuration_reads_the_environment_the_contract_lists() {
    testing::assert_reads_its_contracted_environment(backup_core::contract::Function::Notify, Config::from_env);
}

/// Our snapshots of `db`, made `hours_ago` hours before now, as RDS lists them.
fn our_db_snapshot(db: &str, id: &str, hours_ago: i64) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .status("available")
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types_datetime(
            chrono::Utc::now() - chrono::Duration::hours(hours_ago),
        ))
        .set_tag_list(Some(tags::snapshot_tags(&testing::settings(), db, "e")))
        .build()
}

#[tokio::test]
async fn the_hourly_measurement_puts_each_databases_snapshot_age_and_the_oldest_run_wide() {
    let instances = mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| {
        let foreign = DbSnapshot::builder()
            .db_snapshot_identifier("someone-elses")
            .status("available")
            .snapshot_type("manual")
            .snapshot_create_time(aws_smithy_types_datetime(chrono::Utc::now()))
            .build();
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(our_db_snapshot("prod-database-1", "newest", 2))
            .db_snapshots(our_db_snapshot("prod-database-1", "older", 30))
            .db_snapshots(foreign)
            .build()
    });
    let clusters = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier("ledger-1")
                    .status("available")
                    .snapshot_type("manual")
                    .snapshot_create_time(aws_smithy_types_datetime(
                        chrono::Utc::now() - chrono::Duration::hours(50),
                    ))
                    .set_tag_list(Some(tags::snapshot_tags(&testing::settings(), "ledger", "e")))
                    .build(),
            )
            .build()
    });
    // Ages are measured at the time the rule fired, not at notify's own.
    let at = chrono::Utc::now() + chrono::Duration::hours(10);
    for (request, name, run_wide) in [
        (
            json!({"databases": ["prod-database-1", "ledger"]}),
            "SnapshotAge",
            Some(60.0),
        ),
        // A database never backed up: no age of its own, and none run-wide.
        (
            json!({"databases": ["prod-database-1", "ledger", "never-backed-up"]}),
            "SnapshotAge",
            None,
        ),
        // The vault account's measurement of its copies: every database it holds copies of.
        (
            json!({"databases": [], "metric": "VaultSnapshotAge"}),
            "VaultSnapshotAge",
            Some(60.0),
        ),
    ] {
        let rec = recorded();
        let cw = put_metrics_ok(&rec);
        let described = databases_described(at);
        let clients = clients(
            &[&cw],
            &[],
            &[&instances, &clusters, &described[0], &described[1]],
            &[],
            Duration::from_secs(5),
        );
        let mut request = request;
        request["at"] = json!(at);

        let output = handle_invocation(&clients, &config(), json!({ "snapshot_age": request }))
            .await
            .unwrap();

        let Output::SnapshotAge(report) = output else {
            panic!("not a snapshot-age report: {output:?}")
        };
        let data = rec.metrics.lock().unwrap();
        let hours = |db| metric(&data, name, db).map(|h| h.round());
        assert_eq!(hours(Some("prod-database-1")), Some(12.0));
        assert_eq!(hours(Some("ledger")), Some(60.0));
        assert_eq!(hours(Some("never-backed-up")), None);
        assert_eq!(hours(None), run_wide);
        assert_eq!(report.metrics_put, data.len());
        let never = usize::from(run_wide.is_none());
        assert_eq!(report.without_snapshot.len(), never);
        // The source's hour watches point-in-time recovery too; the vault's has no databases.
        let recovery = data.iter().filter(|d| d.metric_name() != Some(name)).count();
        assert_eq!(recovery, if name == "SnapshotAge" { 6 } else { 0 });
    }
}

/// Databases as DescribeDBInstances answers them, their restorable times counted back from `at`.
struct Described {
    at: chrono::DateTime<chrono::Utc>,
}

impl Described {
    /// An instance (matched on its identifier) in `status`, keeping automated backups
    /// `retention` days, restorable to `lag` minutes before `at` (None: no restorable time).
    fn instance(&self, id: &'static str, status: &'static str, retention: i32, lag: Option<i64>) -> Rule {
        self.replica(id, status, retention, lag, None)
    }

    /// The same, a read replica of `replica_of` when given.
    fn replica(
        &self,
        id: &'static str,
        status: &'static str,
        retention: i32,
        lag: Option<i64>,
        replica_of: Option<&'static str>,
    ) -> Rule {
        let latest = lag.map(|m| aws_smithy_types_datetime(self.at - chrono::Duration::minutes(m)));
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(move |r| r.db_instance_identifier() == Some(id))
            .then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .db_instances(
                        DbInstance::builder()
                            .db_instance_identifier(id)
                            .db_instance_status(status)
                            .backup_retention_period(retention)
                            .set_latest_restorable_time(latest)
                            .set_read_replica_source_db_instance_identifier(replica_of.map(str::to_owned))
                            .build(),
                    )
                    .build()
            })
    }
}

/// `prod-database-1` (an instance) and `ledger` (a cluster), both available, keeping
/// automated backups 7 days, restorable to 5 minutes before `at`.
fn databases_described(at: chrono::DateTime<chrono::Utc>) -> [Rule; 2] {
    let latest = aws_smithy_types_datetime(at - chrono::Duration::minutes(5));
    [
        Described { at }.instance("prod-database-1", "available", 7, Some(5)),
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("ledger"))
            .then_output(move || {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_identifier("ledger")
                            .status("available")
                            .backup_retention_period(7)
                            .latest_restorable_time(latest)
                            .build(),
                    )
                    .build()
            }),
    ]
}

#[tokio::test]
async fn the_vault_accounts_deployment_names_its_missing_state_machine_for_a_run_summary() {
    let env: std::collections::BTreeMap<String, String> = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", INSTANCE),
        ("SNS_TOPIC_ARN", TOPIC),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_env(&env).unwrap();
    let clients = clients(&[], &[], &[], &[], Duration::from_secs(1));

    let err = handle(&clients, &config, Run::fixture().event).await.unwrap_err();

    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(err.to_string().contains("DATABASE_STATE_MACHINE_ARN"), "{err}");
}

#[tokio::test]
async fn in_the_vault_only_copies_rds_records_as_the_sources_count_each_for_its_rds_database() {
    // Two days old: a copy RDS records as made from the source account, its source-db tag moved
    // to another database. An hour old: one made in the vault with our tags, no source account.
    let instances = mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| {
        let mut copied = our_db_snapshot("moved-away", "copied", 48);
        copied.db_instance_identifier = Some("prod-database-1".into());
        copied.source_db_snapshot_identifier = Some("arn:aws:rds:us-east-1:123456789012:snapshot:copied".into());
        let mut made_here = our_db_snapshot("prod-database-1", "made-here", 1);
        made_here.db_instance_identifier = Some("prod-database-1".into());
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(copied)
            .db_snapshots(made_here)
            .build()
    });
    let clusters = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let rec = recorded();
    let cw = put_metrics_ok(&rec);
    let clients = clients(&[&cw], &[], &[&instances, &clusters], &[], Duration::from_secs(5));
    let env: std::collections::BTreeMap<String, String> = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", INSTANCE),
        ("SNS_TOPIC_ARN", TOPIC),
        ("COPIED_FROM_ACCOUNT", "123456789012"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let vault = Config::from_env(&env).unwrap();
    let at = chrono::Utc::now();

    handle_invocation(
        &clients,
        &vault,
        json!({"snapshot_age": {"databases": [], "at": at, "metric": "VaultSnapshotAge"}}),
    )
    .await
    .unwrap();

    let data = rec.metrics.lock().unwrap();
    let hours = |db| metric(&data, "VaultSnapshotAge", db).map(|h| h.round());
    assert_eq!(hours(Some("prod-database-1")), Some(48.0));
    assert_eq!(hours(Some("moved-away")), None);
    assert_eq!(hours(None), Some(48.0));
}

#[tokio::test]
async fn a_snapshot_age_request_without_databases_names_the_field() {
    let clients = clients(&[], &[], &[], &[], Duration::from_secs(1));
    for (event, field) in [
        (json!({"snapshot_age": {}}), "databases"),
        (
            json!({"snapshot_age": {"databases": [], "at": "2026-11-24T03:00:00Z", "metric": "Age"}}),
            "metric",
        ),
        (
            json!({"snapshot_age": {"databases": ["ok", " "], "at": "2026-11-24T03:00:00Z"}}),
            "snapshot_age.databases[1]",
        ),
    ] {
        let err = handle_invocation(&clients, &config(), event).await.unwrap_err();
        assert_eq!(err.error_type().as_str(), "InvalidInput");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[tokio::test]
async fn the_summary_lists_what_the_selection_chose_and_left_out_and_why() {
    let mut run = Run::fixture().without(1);
    run.event["report"]["selection"] = json!({
        "selected": [{"reason": "tags backup=daily", "databases": ["prod-database-1"]}],
        "excluded": [{"reason": "tags backup=daily, but carries exclude tag backup-skip=*",
                      "databases": ["ledger", "vault"]}],
        "unmatched": 7,
    });
    let (_, rec) = notify_without_slack(run, &[]).await;
    let message = published_message(&rec);
    assert!(
        message.contains(
            "Selection:\nselected  1 (tags backup=daily): prod-database-1\n\
             EXCLUDED  2 (tags backup=daily, but carries exclude tag backup-skip=*): ledger, vault\n\
             7 of the region's databases matched no criterion\n"
        ),
        "{message}"
    );

    // A module that only names its databases has no selection to explain.
    let mut named = Run::fixture().without(1);
    named.event["report"]["selection"] = json!({
        "selected": [{"reason": "named in rds_instance_ids or rds_cluster_ids", "databases": ["prod-database-1"]}],
        "excluded": [], "unmatched": 0,
    });
    let (_, rec) = notify_without_slack(named, &[]).await;
    assert!(!published_message(&rec).contains("Selection:"));
}

const VAULT_ARN: &str = "arn:aws:rds:us-east-1:111111111111:snapshot:prod-database-1-20261124-020000";

#[tokio::test]
async fn vault_copies_are_reported_per_database_and_counted() {
    let mut run = Run::fixture();
    run.event["report"]["vault"] = json!({
        "account_id": "111111111111", "region": "us-east-1",
        "role_arn": "arn:aws:iam::111111111111:role/vault-copier",
        "kms_key_arn": "arn:aws:kms:us-east-1:111111111111:key/vault",
        "share_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/share",
        "abandoned_copies_deleted": ["prod-database-2-20261123-020000-vault"],
        "abandoned_copies_kept": ["prod-database-1-20261101-020000-vault: DeleteDBSnapshot failed: AccessDenied: no"]
    });
    run.outputs[0]["vault"] = json!({
        "account_id": "111111111111", "region": "us-east-1", "snapshot_id": "prod-database-1-20261124-020000",
        "snapshot_arn": VAULT_ARN, "kms_key_arn": "arn:aws:kms:us-east-1:111111111111:key/vault",
        "status": "available"
    });
    run.outputs[1]["vault_error"] = json!({"step": "vault", "Error": "AccessDenied",
        "Cause": "{\"errorType\":\"AccessDenied\",\"errorMessage\":\"AssumeRole failed: AccessDenied: arn:aws:iam::111111111111:role/vault-copier: not authorized\"}"});

    let (result, rec) = notify_without_slack(run, &[]).await;

    let (_, line) = reported_ok(&result, &rec, "prod-database-1");
    assert!(
        line.contains("; vault copy prod-database-1-20261124-020000 in us-east-1 (account 111111111111)"),
        "{line}"
    );
    let message = published_message(&rec);
    assert!(
        message.contains("vault: deleted 1 copies made to share that earlier vault steps left behind: prod-database-2-20261123-020000-vault"),
        "{message}"
    );
    assert!(
        message.contains("vault WARNING: a copy made to share could not be deleted: prod-database-1-20261101-020000-vault: DeleteDBSnapshot failed: AccessDenied"),
        "{message}"
    );
    let failed = message
        .lines()
        .find(|l| l.starts_with("FAILED  prod-database-2"))
        .unwrap();
    assert!(
        failed.starts_with("FAILED  prod-database-2 ")
            && failed.contains(
                "; at vault: AccessDenied: AssumeRole failed: AccessDenied: arn:aws:iam::111111111111:role/vault-copier"
            ),
        "{failed}"
    );
    let metrics = rec.metrics.lock().unwrap();
    assert_eq!(metric(&metrics, "VaultCopySuccess", None), Some(1.0));
    assert_eq!(metric(&metrics, "VaultCopyFailure", None), Some(1.0));
}

#[tokio::test]
async fn a_vault_that_failed_its_check_is_named_once_and_fails_the_run() {
    let mut run = Run::fixture();
    run.event["report"]["vault_error"] = json!({"Error": "VaultUnusable",
        "Cause": "{\"errorType\":\"VaultUnusable\",\"errorMessage\":\"no snapshot goes to the vault in this run: the policy of the module's key K does not allow the vault account 111111111111 kms:CreateGrant\"}"});

    let (result, rec) = notify_without_slack(run, &[]).await;

    assert!(result.run_failed);
    let message = published_message(&rec);
    assert_eq!(message.matches("kms:CreateGrant").count(), 1, "{message}");
    assert!(
        message.contains(
            "FAILED  no snapshot went to the vault: VaultUnusable: no snapshot goes to the vault in this run"
        ),
        "{message}"
    );
    let published = rec.published.lock().unwrap();
    assert!(
        published[0].subject().unwrap().ends_with(", vault not used"),
        "{:?}",
        published[0].subject()
    );
    drop(published);
    let metrics = rec.metrics.lock().unwrap();
    let snapshots = result.succeeded + result.failed;
    assert_eq!(metric(&metrics, "VaultCopySuccess", None), Some(0.0));
    assert_eq!(metric(&metrics, "VaultCopyFailure", None), Some(snapshots as f64));
}

#[tokio::test]
async fn a_run_without_a_vault_puts_no_vault_metrics() {
    let (_, rec) = notify_without_slack(Run::fixture(), &[]).await;
    let metrics = rec.metrics.lock().unwrap();
    assert!(
        !metrics
            .iter()
            .any(|m| m.metric_name().is_some_and(|n| n.starts_with("Vault")))
    );
}

#[tokio::test]
async fn point_in_time_recovery_is_watched_off_lagging_and_stopped_databases_each_said() {
    let at = chrono::Utc::now();
    let described = Described { at };
    // A database whose storage is full, its logs stuck: measured (what the alarm is for). A
    // read replica, created with backups off: its source's recovery, not its own.
    let (fresh, lagging, off, stopped, in_window, replica) = (
        described.instance("fresh", "available", 7, Some(4)),
        described.instance("lagging", "storage-full", 7, Some(40)),
        described.instance("backups-off", "available", 0, None),
        described.instance("stopped", "stopped", 7, Some(600)),
        described.instance("in-backup-window", "backing-up", 7, Some(3)),
        described.replica("replica", "available", 0, None, Some("fresh")),
    );
    let rds = mock_rds(&[&fresh, &lagging, &off, &stopped, &in_window, &replica]);
    let databases = [
        "fresh",
        "lagging",
        "backups-off",
        "stopped",
        "in-backup-window",
        "replica",
    ]
    .map(String::from);

    let (data, report) = backup_notify::recovery::watch(&rds, INSTANCE, &databases, at).await;

    let lag: HashMap<_, _> = report
        .restorable_lag_minutes
        .iter()
        .map(|(db, m)| (db.as_str(), m.round()))
        .collect();
    assert_eq!(
        lag,
        HashMap::from([("fresh", 4.0), ("lagging", 40.0), ("in-backup-window", 3.0)])
    );
    assert_eq!(
        report.not_measured.get("replica").map(String::as_str),
        Some("a read replica of fresh: its point-in-time recovery is the source's")
    );
    assert_eq!(report.automated_backups_off, ["backups-off"]);
    assert_eq!(
        report.not_measured.get("stopped").map(String::as_str),
        Some("status stopped")
    );
    assert_eq!(report.backup_retention_days.get("backups-off"), Some(&0));
    // Retention of all but the replica, a lag of the three running with backups on.
    assert_eq!(
        metric(&data, "RestorableLag", Some("lagging")).map(f64::round),
        Some(40.0)
    );
    assert_eq!(metric(&data, "RestorableLag", Some("stopped")), None);
    assert_eq!(metric(&data, "BackupRetentionDays", Some("backups-off")), Some(0.0));
    // Run-wide: the longest lag, the shortest retention (what the module's alarms watch).
    assert_eq!(metric(&data, "RestorableLag", None).map(f64::round), Some(40.0));
    assert_eq!(metric(&data, "BackupRetentionDays", None), Some(0.0));
    // Retention of five, lags of three, and both run-wide.
    assert_eq!(data.len(), 5 + 3 + 2);
}

/// The fixture run notified with `config`, prod-database-1 kept `retention_1` days (restorable 4
/// minutes ago) and prod-database-2 with automated backups off (the third, prod-read-replica-1,
/// is not found), RDS answering also from `rds`: the result and the summary's point-in-time
/// recovery section.
async fn recovery_summary(retention_1: i32, rds: &[&Rule], config: &Config) -> (NotifyResult, String) {
    let rec = recorded();
    let run = Run::fixture();
    // Lags are measured at the run's notification time.
    let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(run.event["notified_at"].clone()).unwrap();
    let described = Described { at };
    let (kept, off) = (
        described.instance("prod-database-1", "available", retention_1, Some(4)),
        described.instance("prod-database-2", "available", 0, None),
    );
    let (cw, sns, listing, sfn) = (
        put_metrics_ok(&rec),
        publish_ok(&rec),
        snapshot_listing(),
        run.executions(),
    );
    let rds: Vec<&Rule> = [&listing, &kept, &off].into_iter().chain(rds.iter().copied()).collect();
    let clients = clients(&[&cw], &[&sns], &rds, &[&sfn], Duration::from_secs(5));

    let result = handle(&clients, config, run.event).await.unwrap();

    let message = published_message(&rec);
    let section = message
        .split("Point-in-time recovery (RDS automated backups):\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{message}"))
        .to_owned();
    (result, section)
}

#[tokio::test]
async fn the_summary_says_each_databases_point_in_time_recovery_and_the_subject_counts_those_without() {
    let (result, section) = recovery_summary(7, &[], &config()).await;

    assert!(result.subject.ends_with(", 1 without PITR"), "{}", result.subject);
    let lines: Vec<&str> = section.lines().take(3).collect();
    assert!(
        lines[0].starts_with("prod-database-1: restorable to 4 min ago, automated backups kept 7 days"),
        "{section}"
    );
    assert_eq!(
        lines[1],
        "OFF     prod-database-2: automated backups are off (retention 0)"
    );
    assert_eq!(lines[2], "prod-read-replica-1: not read: not found");
}

#[tokio::test]
async fn managed_automated_backups_are_set_before_the_summary_reads_them_and_each_line_says_what() {
    // Only the window of the first (its 14 days are longer than the 7 asked); both for the
    // second, each in a request of its own.
    let modify = mock!(aws_sdk_rds::Client::modify_db_instance)
        .match_requests(|r| {
            let asked = (
                r.db_instance_identifier().unwrap_or_default(),
                r.backup_retention_period(),
                r.preferred_backup_window(),
            );
            r.apply_immediately() == Some(false)
                && matches!(
                    asked,
                    ("prod-database-1" | "prod-database-2", None, Some("02:00-03:00"))
                        | ("prod-database-2", Some(7), None)
                )
        })
        .then_output(|| aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput::builder().build());
    let config = Config {
        automated_backups: AutomatedBackups::from_json(
            "AUTOMATED_BACKUPS",
            Some(r#"{"retention_days":7,"window":"02:00-03:00"}"#),
        )
        .unwrap(),
        ..config()
    };

    let (_, section) = recovery_summary(14, &[&modify], &config).await;

    assert_eq!(modify.num_calls(), 3);
    let lines: Vec<&str> = section.lines().take(5).collect();
    assert_eq!(
        lines[1],
        "        managed: kept its 14 days, longer than the 7 asked (shorten_retention would shorten it); \
         window none -> 02:00-03:00"
    );
    assert_eq!(
        lines[2..4],
        [
            "OFF     prod-database-2: automated backups are off (retention 0)",
            "        managed: retention 0 -> 7 days, from the next maintenance window; window none -> 02:00-03:00",
        ]
    );
    assert_eq!(lines[4], "prod-read-replica-1: not read: not found");
}
