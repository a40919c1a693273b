//! The hourly watch on point-in-time recovery, beside `SnapshotAge` (see [`crate::age`]):
//! snapshots are the module's, point-in-time recovery is RDS's own automated backups, and a
//! DBA who turned those off, or whose transaction logs stopped reaching S3, finds out here.
//!
//! Per database, from DescribeDBInstances (or DescribeDBClusters for a cluster):
//! `BackupRetentionDays` (the automated backup retention; 0: automated backups are off, and
//! there is no point-in-time recovery), and `RestorableLag` (minutes between the hour's
//! measurement and `LatestRestorableTime`, "typically within 5 minutes of the current
//! time", RDS User Guide, Restoring a DB instance to a specified time), measured from the
//! hour's event time. A database stopped, starting, stopping, being created or deleted gets
//! no lag (its latest restorable time stands still by design): its alarm treats the missing
//! hour as not breaching, so a stopped database does not flap; every other status is
//! measured (a database `storage-full` whose logs stopped is what the alarm is for). A read
//! replica is left out: "All read replica DB instances are created with backups disabled"
//! (CreateDBInstanceReadReplica), and its point-in-time recovery is its source's. Each is put per database
//! (`BackupInstance`, `DatabaseIdentifier`) and run-wide (`BackupInstance` alone: the
//! longest lag, the shortest retention), which the module's two alarms watch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use aws_sdk_cloudwatch::types::MetricDatum;
use backup_core::rds::Rds;

use crate::metrics::{self, Scope};

pub const RESTORABLE_LAG: &str = "RestorableLag";
pub const BACKUP_RETENTION_DAYS: &str = "BackupRetentionDays";
/// How long the watch may read databases, all of them: a throttled account or a large fleet
/// leaves the rest "not read" rather than holding notify up to its timeout.
pub const TIME_BUDGET: Duration = Duration::from_secs(60);
/// Statuses in which the latest restorable time stands still by design.
const NOT_RUNNING: [&str; 5] = ["stopped", "stopping", "starting", "creating", "deleting"];

/// What the hour found of each database's point-in-time recovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecoveryReport {
    /// Minutes each database's latest restorable time lags the measurement.
    pub restorable_lag_minutes: BTreeMap<String, f64>,
    /// Each database's automated backup retention, days.
    pub backup_retention_days: BTreeMap<String, i32>,
    /// The databases whose automated backups are off (retention 0).
    pub automated_backups_off: Vec<String>,
    /// The databases with no lag this hour, and why (not found, not available, unreadable).
    pub not_measured: BTreeMap<String, String>,
}

/// Reads each database and returns its data points and what they say. A database that
/// cannot be read is named in the report, not a failed measurement: `SnapshotAge` still goes.
pub async fn watch(
    rds: &Rds,
    instance: &str,
    databases: &[String],
    at: DateTime<Utc>,
) -> (Vec<MetricDatum>, RecoveryReport) {
    let mut report = RecoveryReport::default();
    let mut data = Vec::new();
    let run = Scope::run(instance);
    let deadline = Instant::now() + TIME_BUDGET;
    for db in databases {
        let left = deadline.saturating_duration_since(Instant::now());
        let info = match tokio::time::timeout(left, rds.describe_database(db, None)).await {
            Ok(Ok(Some(info))) => info,
            Ok(Ok(None)) => {
                report.not_measured.insert(db.clone(), "not found".into());
                continue;
            }
            Ok(Err(err)) => {
                tracing::warn!(database = %db, error = %err, "point-in-time recovery not measured");
                report.not_measured.insert(db.clone(), err.to_string());
                continue;
            }
            Err(_) => {
                report.not_measured.insert(
                    db.clone(),
                    format!("the watch's {} s were spent", TIME_BUDGET.as_secs()),
                );
                continue;
            }
        };
        if let Some(source) = &info.replica_of {
            report.not_measured.insert(
                db.clone(),
                format!("a read replica of {source}: its point-in-time recovery is the source's"),
            );
            continue;
        }
        let Some(retention) = info.backup_retention_days else {
            report
                .not_measured
                .insert(db.clone(), "RDS reported no backup retention".into());
            continue;
        };
        data.push(metrics::gauge(
            BACKUP_RETENTION_DAYS,
            f64::from(retention),
            run.database(db),
            at,
        ));
        report.backup_retention_days.insert(db.clone(), retention);
        if retention == 0 {
            report.automated_backups_off.push(db.clone());
            continue;
        }
        if NOT_RUNNING.contains(&info.status.as_str()) {
            report
                .not_measured
                .insert(db.clone(), format!("status {}", info.status));
            continue;
        }
        let Some(latest) = info.latest_restorable_time else {
            report
                .not_measured
                .insert(db.clone(), "RDS reported no latest restorable time".into());
            continue;
        };
        let minutes = ((at - latest).num_seconds() as f64 / 60.0).max(0.0);
        data.push(metrics::gauge(RESTORABLE_LAG, minutes, run.database(db), at));
        report.restorable_lag_minutes.insert(db.clone(), minutes);
    }
    if let Some(longest) = report.restorable_lag_minutes.values().copied().reduce(f64::max) {
        data.push(metrics::gauge(RESTORABLE_LAG, longest, run, at));
    }
    if let Some(shortest) = report.backup_retention_days.values().copied().min() {
        data.push(metrics::gauge(BACKUP_RETENTION_DAYS, f64::from(shortest), run, at));
    }
    if !report.automated_backups_off.is_empty() {
        tracing::warn!(databases = %report.automated_backups_off.join(", "), "automated backups are off: no point-in-time recovery");
    }
    (data, report)
}
