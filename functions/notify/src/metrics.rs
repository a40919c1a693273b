//! CloudWatch metrics of a run, in namespace `CustomMetrics/DatabaseBackup`:
//! `BackupSuccess`, `BackupFailure`, `ExportWarnings` (Count: complete exports
//! RDS warned of, e.g. skipped tables; per database only when warned),
//! `BackupDuration` (Seconds), with a vault `VaultCopySuccess` and
//! `VaultCopyFailure` (Count: the databases whose snapshot reached the vault
//! account, and those whose did not; run-wide only) and
//! `SnapshotAge` (hours, unit `None`: CloudWatch has no hour unit; the age of
//! the newest available snapshot of ours; also put every hour, see
//! [`crate::age`]). Every hour too, per database: `RestorableLag` (minutes) and
//! `BackupRetentionDays` (see [`crate::recovery`]). Each carries the dimension `BackupInstance` (the module
//! instance's managed-by value, so that instances sharing an account and a
//! namespace never move each other's alarms) and is put once with it alone
//! (the run-wide aggregate, what the module's alarms watch) and once per
//! database with `DatabaseIdentifier` too. After prune, per region (dimension
//! `Region` beside `BackupInstance`): `RetainedSnapshotGB` (Gigabytes: the
//! allocated storage of the snapshots of ours it kept, an upper bound),
//! `RetainedExportGB` (Gigabytes: what the export bucket holds, in the module's
//! region) and `EstimatedMonthlyCost` (US dollars, unit `None`, at list prices:
//! `backup_core::cost`; the exports' storage counts in the module's region).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use backup_core::config::ModuleSettings;
use backup_core::rds::{self, Rds};
use backup_core::types::DatabaseKind;
use backup_core::{Error, tags};
use chrono::{DateTime, Utc};

use crate::age::AgeMetric;
use crate::summary::Summary;

pub const INSTANCE_DIMENSION: &str = "BackupInstance";
pub const DATABASE_DIMENSION: &str = "DatabaseIdentifier";
pub const REGION_DIMENSION: &str = "Region";
/// CloudWatch has no hour unit: `SnapshotAge` is a number of hours with unit `None`.
const HOURS: StandardUnit = StandardUnit::None;
/// CloudWatch accepts up to 1000 metrics per `PutMetricData` request.
pub const MAX_PER_REQUEST: usize = 1000;

/// Where a datum belongs: the module instance, and the database or the region (None: the whole run).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub instance: &'a str,
    pub db: Option<&'a str>,
    pub region: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn run(instance: &'a str) -> Self {
        Scope {
            instance,
            db: None,
            region: None,
        }
    }

    pub fn database(self, db: &'a str) -> Self {
        Scope { db: Some(db), ..self }
    }

    pub fn region(self, region: &'a str) -> Self {
        Scope {
            region: Some(region),
            ..self
        }
    }
}

pub fn datum(name: &str, value: f64, unit: StandardUnit, scope: Scope<'_>, at: DateTime<Utc>) -> MetricDatum {
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let mut dimensions = vec![dimension(INSTANCE_DIMENSION, scope.instance)];
    dimensions.extend(scope.db.map(|db| dimension(DATABASE_DIMENSION, db)));
    dimensions.extend(scope.region.map(|region| dimension(REGION_DIMENSION, region)));
    MetricDatum::builder()
        .metric_name(name)
        .value(value)
        .unit(unit)
        .timestamp(AwsDateTime::from_millis(at.timestamp_millis()))
        .set_dimensions(Some(dimensions))
        .build()
}

/// `BackupFailure` = 1 for the whole run: a run that ended outside its own error handling.
pub fn run_failure(instance: &str, at: DateTime<Utc>) -> MetricDatum {
    datum("BackupFailure", 1.0, StandardUnit::Count, Scope::run(instance), at)
}

/// The metrics of a run. `newest` maps each database to the creation time of
/// its newest available snapshot of ours (absent: unknown, no `SnapshotAge`).
pub fn metric_data(summary: &Summary<'_>, newest: &HashMap<String, DateTime<Utc>>) -> Vec<MetricDatum> {
    let now = summary.now;
    let run = Scope::run(&summary.settings.instance);
    let start = summary.request.execution.execution_start_time;
    let age_hours = |db: &str| newest.get(db).map(|created| age_hours(*created, now));

    let failures = summary.failed
        + usize::from(summary.prune_failed())
        + usize::from(summary.vault_unusable())
        + usize::from(summary.run_stopped());
    let warned = summary.export_warnings();
    let mut data = vec![
        datum("BackupSuccess", summary.succeeded as f64, StandardUnit::Count, run, now),
        datum("BackupFailure", failures as f64, StandardUnit::Count, run, now),
        datum("ExportWarnings", warned as f64, StandardUnit::Count, run, now),
        datum(
            "BackupDuration",
            summary.duration_seconds(),
            StandardUnit::Seconds,
            run,
            now,
        ),
    ];
    // Only for runs with a vault: a module without one has no such metrics.
    if let Some((copied, failed)) = summary.vault_copies() {
        data.push(datum("VaultCopySuccess", copied as f64, StandardUnit::Count, run, now));
        data.push(datum("VaultCopyFailure", failed as f64, StandardUnit::Count, run, now));
    }
    let oldest_newest = summary
        .request
        .results
        .iter()
        .filter_map(|r| age_hours(&r.db_identifier))
        .reduce(f64::max);
    if let Some(hours) = oldest_newest {
        data.push(snapshot_age(AgeMetric::SnapshotAge, hours, run, now));
    }
    for item in &summary.request.results {
        let db = run.database(&item.db_identifier);
        let failed = item.failed();
        data.push(datum(
            "BackupSuccess",
            f64::from(u8::from(!failed)),
            StandardUnit::Count,
            db,
            now,
        ));
        data.push(datum(
            "BackupFailure",
            f64::from(u8::from(failed)),
            StandardUnit::Count,
            db,
            now,
        ));
        // Per database only when warned: each dimension value is a custom metric billed by the month.
        if item.export_warning.is_some() {
            data.push(datum("ExportWarnings", 1.0, StandardUnit::Count, db, now));
        }
        if let Some(done) = item.completed_at {
            let seconds = ((done - start).num_milliseconds() as f64 / 1000.0).max(0.0);
            data.push(datum("BackupDuration", seconds, StandardUnit::Seconds, db, now));
        }
        if let Some(hours) = age_hours(&item.db_identifier) {
            data.push(snapshot_age(AgeMetric::SnapshotAge, hours, db, now));
        }
    }
    if let Some(prune) = &summary.request.prune {
        for (i, region) in prune.regions.iter().enumerate() {
            let scope = run.region(&region.region);
            let mut monthly_cost_cents = region.retained.monthly_cost_cents;
            data.push(datum(
                "RetainedSnapshotGB",
                region.retained.gib as f64,
                StandardUnit::Gigabytes,
                scope,
                now,
            ));
            // The first region is the module's, where its export bucket is.
            if let Some(exports) = prune.exports.as_ref().filter(|_| i == 0) {
                data.push(datum(
                    "RetainedExportGB",
                    backup_core::cost::gigabytes(exports.bytes()),
                    StandardUnit::Gigabytes,
                    scope,
                    now,
                ));
                monthly_cost_cents += exports.monthly_cost_cents();
            }
            data.push(datum(
                "EstimatedMonthlyCost",
                monthly_cost_cents as f64 / 100.0,
                StandardUnit::None,
                scope,
                now,
            ));
        }
    }
    data
}

/// Hours from a snapshot's creation to `now` (never negative: clocks differ).
pub fn age_hours(created: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((now - created).num_seconds() as f64 / 3600.0).max(0.0)
}

/// A measured value with no CloudWatch unit of its own (minutes, days): `RestorableLag`,
/// `BackupRetentionDays`.
pub fn gauge(name: &str, value: f64, scope: Scope<'_>, at: DateTime<Utc>) -> MetricDatum {
    datum(name, value, StandardUnit::None, scope, at)
}

/// An age datum (`SnapshotAge`, or the vault's `VaultSnapshotAge`): of one database, or run-wide.
pub fn snapshot_age(metric: AgeMetric, hours: f64, scope: Scope<'_>, at: DateTime<Utc>) -> MetricDatum {
    datum(metric.name(), hours, HOURS, scope, at)
}

/// Creation time of the newest available snapshot of ours, per database, for
/// the databases of this run: one paginated listing, not one call per database.
/// `copied_from`: in the vault account, the source account; a snapshot then counts only if
/// RDS records it as copied from there, and its database is the one RDS records (the
/// source's role may tag vault snapshots: a tag alone could make a database look copied).
pub async fn newest_snapshots(
    rds: &Rds,
    settings: &ModuleSettings,
    kinds: &[DatabaseKind],
    copied_from: Option<&str>,
) -> Result<HashMap<String, DateTime<Utc>>, Error> {
    let mut snapshots = rds.list_manual_snapshots(kinds).await?;
    if let Some(account) = copied_from {
        snapshots = rds::copies_made_from(snapshots, account, settings).0;
    }
    let mut newest: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for s in snapshots
        .iter()
        .filter(|s| s.is_available() && tags::is_ours(&s.tags, settings, None))
    {
        let (Some(db), Some(created)) = (tags::tag_value(&s.tags, tags::SOURCE_DB), s.created_at) else {
            continue;
        };
        let entry = newest.entry(db.to_owned()).or_insert(created);
        *entry = (*entry).max(created);
    }
    Ok(newest.into_iter().collect())
}
