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
use backup_core::rds::{DatabaseInfo, Rds};

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
        let read = describe(rds, db, deadline).await;
        let (info, retention) = match read.and_then(|info| retention_of(&info).map(|days| (info, days))) {
            Ok(read) => read,
            Err(why) => {
                report.not_measured.insert(db.clone(), why);
                continue;
            }
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
        match lag_minutes(&info, at) {
            Ok(minutes) => {
                data.push(metrics::gauge(RESTORABLE_LAG, minutes, run.database(db), at));
                report.restorable_lag_minutes.insert(db.clone(), minutes);
            }
            Err(why) => {
                report.not_measured.insert(db.clone(), why);
            }
        }
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

/// The database as RDS describes it, within what is left of the watch's time; or why not.
async fn describe(rds: &Rds, db: &str, deadline: Instant) -> Result<DatabaseInfo, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, rds.describe_database(db, None)).await {
        Ok(Ok(Some(info))) => Ok(info),
        Ok(Ok(None)) => Err("not found".into()),
        Ok(Err(err)) => {
            tracing::warn!(database = %db, error = %err, "point-in-time recovery not measured");
            Err(err.to_string())
        }
        Err(_) => Err(format!("the watch's {} s were spent", TIME_BUDGET.as_secs())),
    }
}

/// Its automated backup retention, days; or why it has none of its own.
fn retention_of(info: &DatabaseInfo) -> Result<i32, String> {
    if let Some(source) = &info.replica_of {
        return Err(format!(
            "a read replica of {source}: its point-in-time recovery is the source's"
        ));
    }
    info.backup_retention_days
        .ok_or_else(|| "RDS reported no backup retention".into())
}

/// Minutes its latest restorable time lags `at`; or why it is not measured.
fn lag_minutes(info: &DatabaseInfo, at: DateTime<Utc>) -> Result<f64, String> {
    if NOT_RUNNING.contains(&info.status.as_str()) {
        return Err(format!("status {}", info.status));
    }
    let latest = info
        .latest_restorable_time
        .ok_or("RDS reported no latest restorable time")?;
    Ok(((at - latest).num_seconds() as f64 / 60.0).max(0.0))
}
