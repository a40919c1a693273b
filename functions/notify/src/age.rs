//! The hourly `SnapshotAge` measurement. An EventBridge rule
//! (`<prefix>-snapshot-age`, `rate(1 hour)`) invokes notify with
//! `{"snapshot_age": {"databases": [...], "at": "<the event's time>"}}`, the
//! module's databases, whatever
//! the backup schedule: CloudWatch evaluates alarms over at most a week of
//! hourly periods, so an age put only when a weekly or monthly run ends would
//! leave the no-recent-backup alarm without data for most of the interval.
//!
//! Each database with an available snapshot of ours gets its age (hours, the
//! newest one); the run-wide `SnapshotAge` (no dimension, what the module's
//! alarm watches) is the oldest of those, and is put only when every database
//! has one: a database never backed up leaves the hour without data, which
//! the alarm counts as breaching. An empty list measures every database that
//! has a snapshot of ours (a module that selects by tags names none).
//!
//! The same hour watches each database's point-in-time recovery ([`crate::recovery`]).
//!
//! The vault account runs the same measurement of its copies (modules/vault,
//! `"metric": "VaultSnapshotAge"`): the copies carry the source's managed-by
//! value, and the vault's deployment of this function reads its own account (and
//! has no databases to watch).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use backup_core::types::DatabaseKind;
use backup_core::{Error, input};

use crate::recovery::{self, RecoveryReport};
use crate::{Clients, Config, metrics};

/// The input the `<prefix>-snapshot-age` rule hands notify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotAgeRequest {
    pub databases: Vec<String>,
    /// When the rule fired (the scheduled event's `time`): ages are measured at it.
    pub at: DateTime<Utc>,
    /// What is measured: the module's snapshots, or in the vault account its copies.
    #[serde(default)]
    pub metric: AgeMetric,
}

/// The metric an hourly measurement puts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AgeMetric {
    /// The age of the newest snapshot the module made, in its own account.
    #[default]
    SnapshotAge,
    /// The age of the newest copy in the vault account, measured there.
    VaultSnapshotAge,
}

impl AgeMetric {
    pub fn name(self) -> &'static str {
        match self {
            AgeMetric::SnapshotAge => "SnapshotAge",
            AgeMetric::VaultSnapshotAge => "VaultSnapshotAge",
        }
    }
}

/// Whether notify was invoked by the hourly rule.
pub fn is_snapshot_age_request(event: &Value) -> bool {
    event.get("snapshot_age").is_some()
}

/// Output of notify for the hourly measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotAgeReport {
    /// Hours since each database's newest available snapshot of ours.
    pub hours: HashMap<String, f64>,
    /// The databases with no available snapshot of ours: no age for them, and
    /// none run-wide.
    pub without_snapshot: Vec<String>,
    /// Point-in-time recovery of each database (the source account's measurement only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryReport>,
    pub metrics_put: usize,
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<SnapshotAgeReport, Error> {
    let mut event = event;
    let request: SnapshotAgeRequest = input::parse(event["snapshot_age"].take())?;
    if let Some(i) = request.databases.iter().position(|db| db.trim().is_empty()) {
        return Err(Error::invalid_input(
            format!("snapshot_age.databases[{i}]"),
            "must not be empty",
        ));
    }
    let newest = metrics::newest_snapshots(
        &clients.rds,
        &config.settings,
        &[DatabaseKind::Instance, DatabaseKind::Cluster],
        config.copied_from_account.as_deref(),
    )
    .await?;
    let databases = if request.databases.is_empty() {
        newest.keys().cloned().collect()
    } else {
        request.databases
    };
    let (data, mut report) = measure(
        &config.settings.instance,
        request.metric,
        &databases,
        &newest,
        request.at,
    );
    let put = |data| async move {
        crate::put_metric_data(clients, config, data)
            .await
            .map_err(|failure| Error::NotificationFailed(format!("CloudWatch metrics: {failure}")))
    };
    // The ages first: the no-recent-backup alarm counts a missing hour as breaching, and the
    // watch's reads may take their time.
    put(data).await?;
    if request.metric == AgeMetric::SnapshotAge {
        let (recovery_data, recovery) =
            recovery::watch(&clients.rds, &config.settings.instance, &databases, request.at).await;
        report.metrics_put += recovery_data.len();
        report.recovery = Some(recovery);
        put(recovery_data).await?;
    }
    if !report.without_snapshot.is_empty() {
        tracing::warn!(
            databases = %report.without_snapshot.join(", "),
            metric = request.metric.name(),
            "no available snapshot of ours: no age for these, nor run-wide"
        );
    }
    Ok(report)
}

/// The age data of this hour, and what they say.
pub fn measure(
    instance: &str,
    metric: AgeMetric,
    databases: &[String],
    newest: &HashMap<String, DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Vec<aws_sdk_cloudwatch::types::MetricDatum>, SnapshotAgeReport) {
    let mut hours = HashMap::new();
    let mut without_snapshot = Vec::new();
    for db in databases {
        // Snapshot tags keep the identifier as configured; RDS identifiers are case-insensitive.
        match newest.iter().find(|(source, _)| source.eq_ignore_ascii_case(db)) {
            Some((_, created)) => {
                hours.insert(db.clone(), metrics::age_hours(*created, now));
            }
            None => without_snapshot.push(db.clone()),
        }
    }
    let run = metrics::Scope::run(instance);
    let mut data: Vec<_> = databases
        .iter()
        .filter_map(|db| {
            hours
                .get(db)
                .map(|h| metrics::snapshot_age(metric, *h, run.database(db), now))
        })
        .collect();
    if without_snapshot.is_empty()
        && let Some(oldest) = hours.values().copied().reduce(f64::max)
    {
        data.push(metrics::snapshot_age(metric, oldest, run, now));
    }
    let report = SnapshotAgeReport {
        hours,
        without_snapshot,
        recovery: None,
        metrics_put: data.len(),
    };
    (data, report)
}
