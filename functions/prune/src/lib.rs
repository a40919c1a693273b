//! `prune`: applies retention to the snapshots this module instance created,
//! in the source region and, when copies are configured, in the destination.
//!
//! Every region is listed before anything is deleted: manual DB and cluster
//! snapshots (pages of 100, tags read from `TagList`, no per-snapshot calls)
//! and running exports, all regions and listings at once; the destination's
//! unfinished copies name the source snapshots they read. If any listing
//! fails, nothing is deleted anywhere. The decision itself is [`plan::plan`].
//! Each region's deletions run [`DELETE_CONCURRENCY`] at a time (the regions
//! side by side: RDS meters each region apart), with adaptive retries that
//! slow down when RDS throttles. A throttled or unavailable RDS, once those
//! retries are spent, aborts the run with a retryable error (prune is
//! idempotent, the state machine retries it); a refusal of one snapshot is
//! reported and the rest go on. `dry_run` reports without deleting.
//!
//! Under a retention policy (grandfather-father-son) each kept snapshot is
//! tagged with the tiers that keep it, when that changed. A run that would
//! delete more of one database's snapshots than `PRUNE_GUARD_FRACTION` deletes
//! nothing anywhere unless its input confirms the change: a typo in a policy
//! must not take a year of backups with it.

pub mod plan;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::cost::{self, ExportStorage, Retained};
use backup_core::rds::{self, Rds, SnapshotInfo};
use backup_core::retention::{RetentionPolicy, Tiers};
use backup_core::types::{
    DatabaseKind, KeepReason, KeptSnapshot, PruneFailure, PruneRequest, PruneResult, RegionPrune, StaleDatabase,
};
use backup_core::{Error, exports, input, tags};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;

use crate::plan::{Decision, Policy, Retention};

/// At most this many ids per list in the result; counts are always complete.
pub const MAX_LISTED: usize = 100;
/// Stop deleting when less time than this is left before the Lambda deadline.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// Deletions in flight per region: RDS takes about 12 requests a second per
/// account and region, shared with every other caller.
pub const DELETE_CONCURRENCY: usize = 4;
/// RDS's longest automated retention is 35 days; manual ones may be kept for
/// years, but not beyond the S3 lifecycle's 100-year horizon.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

pub struct Clients {
    pub source: Rds,
    pub destination: Option<Rds>,
    /// To read what the export bucket holds (None: exports are off).
    pub s3: Option<aws_sdk_s3::Client>,
}

impl Clients {
    /// Adaptive retries: when RDS throttles the deletions, the client slows
    /// its own rate down instead of only backing each call off.
    pub fn new(sdk_config: &SdkConfig, config: &Config) -> Result<Self, Error> {
        let sdk_config = sdk_config
            .to_builder()
            .retry_config(backup_core::aws::adaptive_retries(sdk_config))
            .build();
        Ok(Clients {
            source: Rds::new(&sdk_config)?,
            destination: config
                .destination_region
                .as_ref()
                .map(|region| Rds::in_region(&sdk_config, region)),
            s3: config.export_bucket.as_ref().map(|_| cost::s3_client(&sdk_config)),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub retention_days: u32,
    pub min_snapshots_to_keep: u32,
    pub dry_run: bool,
    pub destination_region: Option<String>,
    /// A database whose newest snapshot is older than this keeps every snapshot (None: no such check).
    pub max_snapshot_age_hours: Option<u32>,
    /// Tiers to keep in place of `retention_days` (None: keep by age).
    pub retention_policy: Option<RetentionPolicy>,
    /// The destination region's tiers (None: as in the source region).
    pub copy_retention_policy: Option<RetentionPolicy>,
    /// The most of a database's snapshots one run deletes unconfirmed, as a fraction.
    pub prune_guard_fraction: f64,
    /// The bucket of the exports, whose storage the result reports (None: exports are off).
    pub export_bucket: Option<String>,
    /// In the vault account: the source account, from whose snapshots RDS must record a
    /// snapshot as copied for it to count as ours (None: the tags decide).
    pub copied_from_account: Option<String>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let retention_days = config::parsed_or(env, env::RETENTION_DAYS, 30)?;
        check_retention(retention_days).map_err(|reason| Error::config(env::RETENTION_DAYS, reason))?;
        let min_snapshots_to_keep = config::parsed_or(env, env::MIN_SNAPSHOTS_TO_KEEP, 3)?;
        check_min_keep(min_snapshots_to_keep).map_err(|reason| Error::config(env::MIN_SNAPSHOTS_TO_KEEP, reason))?;
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            retention_days,
            min_snapshots_to_keep,
            dry_run: config::parsed_or(env, env::DRY_RUN, false)?,
            destination_region: config::optional_region(env, env::COPY_DESTINATION_REGION)?,
            max_snapshot_age_hours: max_snapshot_age_hours(env)?,
            retention_policy: retention_policy(env, env::RETENTION_POLICY)?,
            copy_retention_policy: retention_policy(env, env::COPY_RETENTION_POLICY)?,
            prune_guard_fraction: prune_guard_fraction(env)?,
            export_bucket: export_bucket(env)?,
            copied_from_account: config::optional_account_id(env, env::COPIED_FROM_ACCOUNT)?,
        })
    }
}

fn retention_policy(env: &impl Env, key: &str) -> Result<Option<RetentionPolicy>, Error> {
    match config::optional(env, key)? {
        Some(raw) if !raw.trim().is_empty() => RetentionPolicy::from_json(&raw)
            .map(Some)
            .map_err(|reason| Error::config(key, reason)),
        _ => Ok(None),
    }
}

fn export_bucket(env: &impl Env) -> Result<Option<String>, Error> {
    let bucket = config::optional(env, env::EXPORT_BUCKET)?.filter(|bucket| !bucket.is_empty());
    if let Some(bucket) = &bucket {
        config::check_bucket_name(bucket).map_err(|reason| Error::config(env::EXPORT_BUCKET, reason))?;
    }
    Ok(bucket)
}

fn prune_guard_fraction(env: &impl Env) -> Result<f64, Error> {
    let fraction: f64 = config::parsed_or(env, env::PRUNE_GUARD_FRACTION, 0.5)?;
    if fraction > 0.0 && fraction <= 1.0 {
        Ok(fraction)
    } else {
        Err(Error::config(
            env::PRUNE_GUARD_FRACTION,
            format!("{fraction} is not above 0 and at most 1"),
        ))
    }
}

fn max_snapshot_age_hours(env: &impl Env) -> Result<Option<u32>, Error> {
    let Some(raw) = config::optional(env, env::MAX_SNAPSHOT_AGE_HOURS)? else {
        return Ok(None);
    };
    match raw.trim().parse::<u32>() {
        Ok(hours) if hours >= 1 => Ok(Some(hours)),
        _ => Err(Error::config(
            env::MAX_SNAPSHOT_AGE_HOURS,
            format!("{raw:?} is not a whole number of hours of at least 1"),
        )),
    }
}

fn check_retention(days: u32) -> Result<(), String> {
    if (1..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(format!("{days} is not between 1 and {MAX_RETENTION_DAYS} days"))
    }
}

fn check_min_keep(count: u32) -> Result<(), String> {
    if count >= 1 {
        Ok(())
    } else {
        Err("must be at least 1: prune never deletes the newest snapshot of a database".into())
    }
}

/// Everything listed in one region before any decision.
pub struct RegionListing<'a> {
    pub client: &'a Rds,
    pub snapshots: Vec<SnapshotInfo>,
    /// ARNs of the snapshots a running export of this region reads.
    export_sources: Vec<String>,
    /// Whether this region's snapshots may be deleted in this run.
    prune: bool,
    /// What the retention keeps here.
    pub policy: Policy,
}

/// One region's snapshots and what retention decides for each (same order).
pub struct RegionPlan<'a> {
    pub listing: RegionListing<'a>,
    pub decisions: Vec<Decision>,
}

/// What the retention keeps in the source region and in the copies' region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    pub source: Policy,
    pub destination: Policy,
}

/// Snapshots of a run started at `started` created before this are past `retention_days`.
fn cutoff(started: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    started - chrono::Duration::days(i64::from(retention_days))
}

impl Config {
    /// The copies' tiers: their own, else the source's (None: kept by age).
    fn copy_policy(&self) -> Option<RetentionPolicy> {
        self.copy_retention_policy.or(self.retention_policy)
    }

    /// The policies of a run started at `started`: the tiers when a policy is set, else
    /// `retention_days`; the copies' tiers are the source's unless set apart.
    pub fn policies(&self, started: DateTime<Utc>, retention_days: u32, min_snapshots_to_keep: u32) -> Policies {
        let cutoff = cutoff(started, retention_days);
        let policy = |tiers: Option<RetentionPolicy>| Policy {
            retention: tiers.map_or(Retention::Age { cutoff }, Retention::Tiers),
            min_snapshots_to_keep: min_snapshots_to_keep as usize,
            stale_before: self
                .max_snapshot_age_hours
                .map(|hours| started - chrono::Duration::hours(i64::from(hours))),
        };
        Policies {
            source: policy(self.retention_policy),
            destination: policy(self.copy_policy()),
        }
    }
}

/// What becomes of one snapshot prune decided to delete.
enum Deletion {
    Deleted,
    /// RDS refused this one snapshot; the reason.
    Refused(String),
    /// Left for the next run: the Lambda deadline is near.
    Deferred,
}

/// Applies retention. `deadline` is the Lambda deadline: deletions stop
/// [`DEADLINE_MARGIN`] before it and the rest waits for the next run.
pub async fn handle(
    clients: &Clients,
    config: &Config,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<PruneResult, Error> {
    let request: PruneRequest = input::parse(event)?;
    let retention_days = request.retention_days.unwrap_or(config.retention_days);
    check_retention(retention_days).map_err(|reason| Error::invalid_input("retention_days", reason))?;
    let min_snapshots_to_keep = request.min_snapshots_to_keep.unwrap_or(config.min_snapshots_to_keep);
    check_min_keep(min_snapshots_to_keep).map_err(|reason| Error::invalid_input("min_snapshots_to_keep", reason))?;
    let dry_run = request.dry_run.unwrap_or(config.dry_run);
    let started = request.execution.execution_start_time;
    let policies = config.policies(started, retention_days, min_snapshots_to_keep);
    let include_destination = request.include_destination.unwrap_or(true);
    let planned = plan_regions(clients, config, policies, include_destination).await?;
    if !dry_run && !request.confirm_retention_change.unwrap_or(false) {
        for plan in &planned {
            guard(plan, config.prune_guard_fraction)?;
        }
    }
    let applied = planned
        .iter()
        .map(|plan| apply(plan, &config.settings, dry_run, deadline));
    let regions = futures_util::future::try_join_all(applied).await?;
    let (exports, exports_unread) = exports_held(clients, config, deadline).await;
    Ok(PruneResult {
        dry_run,
        retention_days,
        min_snapshots_to_keep,
        cutoff: cutoff(started, retention_days),
        retention_policy: config.retention_policy,
        copy_retention_policy: clients.destination.as_ref().and(config.copy_policy()),
        max_snapshot_age_hours: config.max_snapshot_age_hours,
        regions,
        exports,
        exports_unread,
    })
}

/// What the export bucket holds by storage class, for the summary's retained storage and cost;
/// a bucket that cannot be read is reported (naming it and why), never a failed prune. The
/// listing stops half the deadline's margin before it (millions of objects take minutes).
async fn exports_held(
    clients: &Clients,
    config: &Config,
    deadline: Option<SystemTime>,
) -> (Option<ExportStorage>, Option<String>) {
    let (Some(s3), Some(bucket)) = (&clients.s3, &config.export_bucket) else {
        return (None, None);
    };
    let until = deadline.and_then(|deadline| deadline.checked_sub(DEADLINE_MARGIN / 2));
    match cost::export_storage(s3, bucket, until).await {
        Ok(Some(storage)) => (Some(storage), None),
        Ok(None) => (None, Some(format!("the export bucket {bucket} does not exist"))),
        Err(failure) => {
            tracing::warn!(%bucket, %failure, "the export bucket's storage was not read");
            (
                None,
                Some(format!("the export bucket {bucket} was not read: {failure}")),
            )
        }
    }
}

/// Lists every region, then decides for each region whose snapshots this run prunes (the
/// copies' region unless `include_destination` is false). A failed listing decides nothing
/// anywhere; a running copy or export in either region keeps its source in both.
pub async fn plan_regions<'a>(
    clients: &'a Clients,
    config: &Config,
    policies: Policies,
    include_destination: bool,
) -> Result<Vec<RegionPlan<'a>>, Error> {
    let destination = async {
        match &clients.destination {
            Some(destination) => list_region(destination, include_destination, policies.destination)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let source = list_region(&clients.source, true, policies.source);
    let (source, destination) = futures_util::future::try_join(source, destination).await?;
    let mut listings: Vec<RegionListing> = std::iter::once(source).chain(destination).collect();
    // What any running copy or export reads, of every snapshot listed (those left out below too).
    let mut in_flight = HashSet::new();
    for listing in &listings {
        in_flight.extend(listing.export_sources.iter().cloned());
        in_flight.extend(unfinished_copy_sources(&listing.snapshots));
    }
    if let Some(account) = &config.copied_from_account {
        for listing in &mut listings {
            only_copies_made_from(listing, account, &config.settings);
        }
    }
    Ok(listings
        .into_iter()
        .filter(|listing| listing.prune)
        .map(|listing| {
            let decisions = plan::plan(&listing.snapshots, &config.settings, listing.policy, &in_flight);
            RegionPlan { listing, decisions }
        })
        .collect())
}

/// In the vault account: plans only the source's copies, each of the database RDS records
/// (`rds::copies_made_from`); what carries our tag without being one is left out of the plan
/// (never deleted, never counted), and named in a warning.
fn only_copies_made_from(listing: &mut RegionListing, account: &str, settings: &ModuleSettings) {
    let (kept, left_out) = rds::copies_made_from(std::mem::take(&mut listing.snapshots), account, settings);
    if !left_out.is_empty() {
        let ids: Vec<&str> = left_out.iter().map(|s| s.snapshot_id.as_str()).collect();
        tracing::warn!(
            region = %listing.client.region,
            snapshots = %ids.join(", "),
            %account,
            "carry the managed-by tag but were not copied from the source account: left alone"
        );
    }
    listing.snapshots = kept;
}

/// Refuses a run that would delete more of one database's available snapshots than
/// `fraction` of them (at least one may always go: the daily turnover of a small policy).
pub fn guard(plan: &RegionPlan, fraction: f64) -> Result<(), Error> {
    let mut by_database: BTreeMap<(DatabaseKind, &str), (usize, usize)> = BTreeMap::new();
    for (snapshot, decision) in plan.listing.snapshots.iter().zip(&plan.decisions) {
        let counted = match decision {
            Decision::Delete => (1, 1),
            Decision::Keep(_) if snapshot.is_available() => (0, 1),
            _ => continue,
        };
        let entry = by_database.entry(plan::database_of(snapshot)).or_default();
        *entry = (entry.0 + counted.0, entry.1 + counted.1);
    }
    for ((_, db_identifier), (deleting, available)) in by_database {
        let allowed = ((available as f64 * fraction).floor() as usize).max(1);
        if deleting > allowed {
            return Err(Error::RetentionChangeUnconfirmed {
                db_identifier: db_identifier.to_owned(),
                region: plan.listing.client.region.clone(),
                deleting,
                available,
                fraction: fraction.to_string(),
            });
        }
    }
    Ok(())
}

/// A region's manual DB and DB cluster snapshots and its running exports, listed at once.
async fn list_region(client: &Rds, prune: bool, policy: Policy) -> Result<RegionListing<'_>, Error> {
    let kinds = [DatabaseKind::Instance, DatabaseKind::Cluster];
    let (snapshots, export_sources) =
        futures_util::future::try_join(client.list_manual_snapshots(&kinds), running_export_sources(client)).await?;
    tracing::info!(region = %client.region, count = snapshots.len(), "manual snapshots listed");
    Ok(RegionListing {
        client,
        snapshots,
        export_sources,
        prune,
        policy,
    })
}

/// ARNs of snapshots that a running export reads.
async fn running_export_sources(client: &Rds) -> Result<Vec<String>, Error> {
    let tasks = exports::running(client).await?;
    Ok(tasks.iter().filter_map(|t| t.source_arn().map(str::to_owned)).collect())
}

/// ARNs of source snapshots that an unfinished copy in this region reads:
/// RDS reports them on the copy, and our copies also carry them as a tag.
fn unfinished_copy_sources(snapshots: &[SnapshotInfo]) -> impl Iterator<Item = String> + '_ {
    snapshots
        .iter()
        .filter(|s| !s.is_available())
        .flat_map(|s| [s.source_arn.as_deref(), tags::tag_value(&s.tags, tags::COPIED_FROM)])
        .flatten()
        .map(str::to_owned)
}

/// Carries out the decisions for one region.
async fn apply(
    plan: &RegionPlan<'_>,
    settings: &ModuleSettings,
    dry_run: bool,
    deadline: Option<SystemTime>,
) -> Result<RegionPrune, Error> {
    let (listing, decisions) = (&plan.listing, plan.decisions.as_slice());
    let region = listing.client.region.as_str();
    let kept = listing
        .snapshots
        .iter()
        .zip(decisions)
        .filter(|(_, decision)| matches!(decision, Decision::Keep(_)));
    let mut result = RegionPrune {
        region: region.to_owned(),
        retained: Retained::of(kept.map(|(snapshot, _)| snapshot)),
        ..RegionPrune::default()
    };
    let mut to_delete = Vec::new();
    let mut stale: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for (snapshot, decision) in listing.snapshots.iter().zip(decisions) {
        let id = &snapshot.snapshot_id;
        match decision {
            Decision::Ignore => result.ignored_count += 1,
            Decision::Keep(reason) => {
                if let (KeepReason::NewestTooOld, Some(created)) = (reason, snapshot.created_at) {
                    let newest = stale.entry(plan::database_of(snapshot).1).or_insert(created);
                    *newest = (*newest).max(created);
                }
                tracing::debug!(region, snapshot_id = %id, ?reason, "kept");
                result.kept_count += 1;
                push_capped(
                    &mut result.kept,
                    KeptSnapshot {
                        snapshot_id: id.clone(),
                        reason: *reason,
                    },
                    &mut result.truncated,
                );
            }
            Decision::Delete if dry_run => {
                tracing::info!(region, snapshot_id = %id, created_at = ?snapshot.created_at, "would delete (dry run)");
                result.would_delete_count += 1;
                push_capped(&mut result.would_delete, id.clone(), &mut result.truncated);
            }
            Decision::Delete => to_delete.push(snapshot),
        }
    }

    for (db_identifier, newest_created_at) in stale {
        tracing::error!(
            region,
            db_identifier,
            newest_created_at = %newest_created_at,
            "newest snapshot older than expected: backups of this database may have stopped; none of its snapshots deleted"
        );
        result.stale.push(StaleDatabase {
            db_identifier: db_identifier.to_owned(),
            newest_created_at,
        });
    }

    // A few deletions in flight, reported in listing order; none starts once the deadline is near.
    let mut stopped_for_deadline = false;
    let mut deletions = futures_util::stream::iter(to_delete)
        .map(|snapshot| {
            stopped_for_deadline |= deadline.is_some_and(|d| SystemTime::now() + DEADLINE_MARGIN >= d);
            let deferred = stopped_for_deadline;
            async move {
                let deletion = if deferred {
                    Deletion::Deferred
                } else {
                    delete(listing.client, snapshot).await?
                };
                Ok::<_, Error>((snapshot, deletion))
            }
        })
        .buffered(DELETE_CONCURRENCY);
    while let Some(outcome) = deletions.next().await {
        let (snapshot, deletion) = outcome?;
        let id = &snapshot.snapshot_id;
        match deletion {
            Deletion::Deleted => {
                tracing::info!(region, snapshot_id = %id, created_at = ?snapshot.created_at, "deleted");
                result.deleted_count += 1;
                push_capped(&mut result.deleted, id.clone(), &mut result.truncated);
            }
            Deletion::Refused(refusal) => {
                tracing::warn!(region, snapshot_id = %id, error = %refusal, "deletion refused; snapshot kept");
                push_capped(
                    &mut result.failed,
                    PruneFailure {
                        snapshot_id: id.clone(),
                        error: refusal,
                    },
                    &mut result.truncated,
                );
                result.failed_count += 1;
            }
            Deletion::Deferred => result.deferred_count += 1,
        }
    }
    if let (Retention::Tiers(policy), false) = (listing.policy.retention, dry_run) {
        result.tagged_count = tag_tiers(listing, decisions, settings, policy, deadline).await?;
    }
    if result.deferred_count > 0 {
        tracing::warn!(
            region,
            deferred = result.deferred_count,
            "deadline near: remaining deletions left for the next run"
        );
    }
    tracing::info!(
        region,
        deleted = result.deleted_count,
        would_delete = result.would_delete_count,
        kept = result.kept_count,
        failed = result.failed_count,
        ignored = result.ignored_count,
        dry_run,
        "retention applied"
    );
    Ok(result)
}

/// Tags each kept available snapshot of ours with the tiers that keep it, where the tag
/// says otherwise; how many were tagged. A refusal is logged and the rest go on.
async fn tag_tiers(
    listing: &RegionListing<'_>,
    decisions: &[Decision],
    settings: &ModuleSettings,
    policy: RetentionPolicy,
    deadline: Option<SystemTime>,
) -> Result<usize, Error> {
    let tiers = plan::tiers(&listing.snapshots, settings, policy);
    let retagged: Vec<(&SnapshotInfo, Tiers)> = listing
        .snapshots
        .iter()
        .zip(decisions)
        .zip(tiers)
        .filter(|((snapshot, decision), _)| matches!(decision, Decision::Keep(_)) && snapshot.is_available())
        .map(|((snapshot, _), tiers)| (snapshot, tiers))
        .filter(|(snapshot, tiers)| {
            tags::tag_value(&snapshot.tags, tags::RETENTION_TIERS) != Some(tiers.to_string().as_str())
        })
        .collect();
    let mut tagging = futures_util::stream::iter(retagged)
        .map(|(snapshot, tiers)| async move {
            if deadline.is_some_and(|d| SystemTime::now() + DEADLINE_MARGIN >= d) {
                return Ok(false);
            }
            let value = tiers.to_string();
            match listing
                .client
                .tag_snapshot(&snapshot.arn, tags::RETENTION_TIERS, &value)
                .await
            {
                Ok(()) => Ok(true),
                Err(err) if err.error_type().is_retryable() => Err(err),
                Err(err) => {
                    tracing::warn!(snapshot_id = %snapshot.snapshot_id, error = %err, "tiers not tagged");
                    Ok(false)
                }
            }
        })
        .buffer_unordered(DELETE_CONCURRENCY);
    let mut tagged = 0;
    while let Some(outcome) = tagging.next().await {
        tagged += usize::from(outcome?);
    }
    Ok(tagged)
}

fn push_capped<T>(list: &mut Vec<T>, item: T, truncated: &mut bool) {
    if list.len() < MAX_LISTED {
        list.push(item);
    } else {
        *truncated = true;
    }
}

/// Deletes one snapshot (also done when it was already gone), or reports
/// RDS's refusal of this one snapshot; `Err` when RDS is throttling or
/// unavailable and the whole prune should be retried later.
async fn delete(client: &Rds, snapshot: &SnapshotInfo) -> Result<Deletion, Error> {
    match client.delete_snapshot(snapshot.kind, &snapshot.snapshot_id).await {
        Ok(()) => Ok(Deletion::Deleted),
        Err(err) if err.error_type().is_retryable() => Err(err),
        Err(err) => Ok(Deletion::Refused(err.to_string())),
    }
}
