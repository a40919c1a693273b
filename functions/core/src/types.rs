//! The JSON each state receives and returns. Results stay small (identifiers
//! and statuses, never whole Describe outputs) because Step Functions limits a
//! state's payload to 256 KB.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::SLOT_LONGEST_WAIT_SECONDS;

/// What kind of RDS database an identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// A DB instance (`CreateDBSnapshot`).
    Instance,
    /// An Aurora DB cluster (`CreateDBClusterSnapshot`).
    Cluster,
}

impl DatabaseKind {
    /// The word used in messages and quota names.
    pub fn label(self) -> &'static str {
        match self {
            DatabaseKind::Instance => "DB instance",
            DatabaseKind::Cluster => "DB cluster",
        }
    }
}

/// Which execution a state runs in. Step Functions fills these from the
/// context object (`$$.Execution.Id`, `$$.Execution.StartTime`); every
/// request carries them as a nested `execution` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    pub execution_id: String,
    pub execution_start_time: DateTime<Utc>,
}

/// Input of `snapshot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    pub db_identifier: String,
    /// Omitted: the function looks the identifier up as an instance, then as a cluster.
    #[serde(default)]
    pub kind: Option<DatabaseKind>,
    pub execution: Execution,
}

/// A snapshot the module created or copied. Output of `snapshot` and `copy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRecord {
    pub db_identifier: String,
    pub kind: DatabaseKind,
    pub snapshot_id: String,
    pub snapshot_arn: String,
    pub region: String,
    pub engine: String,
    pub encrypted: bool,
    /// RDS status when the call returned (`creating`, `copying`, `available`).
    pub status: String,
    /// False when an earlier attempt of this execution had already created it.
    pub created: bool,
}

/// A snapshot's copy in the vault account, available: output of `vault` at the end of a
/// database's copy into the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultRecord {
    pub account_id: String,
    pub region: String,
    pub snapshot_id: String,
    pub snapshot_arn: String,
    pub kms_key_arn: String,
    pub status: String,
}

/// The run's check found the vault usable: output of `vault` at a run's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultCheck {
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    pub kms_key_arn: String,
    pub share_kms_key_arn: String,
    /// The module's key in the vault's region, with which cluster snapshots are copied there
    /// before they are shared (a vault in another region only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_share_kms_key_arn: Option<String>,
    /// Copies made to share that an earlier run's vault step left behind (it failed, or its
    /// execution ended, before it could delete them): deleted now.
    pub abandoned_copies_deleted: Vec<String>,
    /// Such copies that could not be deleted, each with why (`<id>: <error>`).
    pub abandoned_copies_kept: Vec<String>,
}

/// Input of `copy` and `export`: the source snapshot, as `snapshot` returned it,
/// and the wait for a slot that this try is part of (the account runs at most
/// five exports, and a destination region so many copies at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotTaskRequest {
    pub snapshot: SnapshotRecord,
    pub execution: Execution,
    pub slot: SlotWait,
}

/// A wait for a slot: when it began, when this try is (both on Step Functions'
/// clock, `$$.State.EnteredTime`), the shortest wait between tries and the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotWait {
    pub started_at: DateTime<Utc>,
    pub tried_at: DateTime<Utc>,
    pub interval_seconds: u64,
    pub timeout_seconds: u64,
    /// Whether this wait has queued for a slot before (an earlier try found none): a
    /// first try that finds an export slot free leaves it to the module's waiters, if
    /// any wait, and queues behind them; a waiter's try takes it.
    #[serde(default)]
    pub queued: bool,
}

impl SlotWait {
    pub fn elapsed_seconds(&self) -> u64 {
        u64::try_from((self.tried_at - self.started_at).num_seconds()).unwrap_or(0)
    }

    /// Whether the wait has lasted its bound: the caller gives up, naming the wait.
    pub fn is_over(&self) -> bool {
        self.elapsed_seconds() >= self.timeout_seconds
    }

    /// How long to wait before the next try: as long as the wait so far, up to
    /// [`SLOT_LONGEST_WAIT_SECONDS`] (the tries thin out as a wait goes on, so that
    /// their count stays within `run::slot_tries`), or longer when the caller can tell
    /// when a slot should free up (`expected_seconds`); at least the interval, at
    /// most what is left of the bound.
    pub fn next_try_seconds(&self, expected_seconds: Option<u64>) -> u64 {
        let waited = self.elapsed_seconds();
        expected_seconds
            .unwrap_or(0)
            .max(waited.min(SLOT_LONGEST_WAIT_SECONDS))
            .max(self.interval_seconds)
            .min(self.timeout_seconds.saturating_sub(waited))
            .max(1)
    }

    /// How long to wait in the module's queue of waiters, where an export of this
    /// module that ends hands its slot on: until the hand-on should have come
    /// (`hand_on_seconds`, when this module's soonest export should end, plus two
    /// intervals: its execution's poll sees it end within one and hands the slot
    /// on), and at least twice the wait so
    /// far and [`SLOT_LONGEST_WAIT_SECONDS`], so that a waiter far back in the queue
    /// tries seldom (a try that finds the slots still taken queues it again, at
    /// the back, and leaves a message the hand-on skips). Never shorter than
    /// [`Self::next_try_seconds`] without an expectation, so `run::slot_tries` bounds
    /// these tries too; at most what is left of the bound.
    pub fn next_try_in_queue(&self, hand_on_seconds: Option<u64>) -> u64 {
        let waited = self.elapsed_seconds();
        hand_on_seconds
            .map_or(0, |seconds| {
                seconds.saturating_add(self.interval_seconds.saturating_mul(2))
            })
            .max(waited.saturating_mul(2))
            .max(SLOT_LONGEST_WAIT_SECONDS)
            .max(self.interval_seconds)
            .min(self.timeout_seconds.saturating_sub(waited))
            .max(1)
    }
}

/// What `wait-for-available` polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resource", rename_all = "snake_case", deny_unknown_fields)]
pub enum PollRequest {
    /// A DB snapshot, in `region` (default: the function's own region).
    /// `instance_snapshot` is accepted too: the state machine derives the
    /// resource from a snapshot's `kind`.
    #[serde(alias = "instance_snapshot")]
    DbSnapshot {
        snapshot_id: String,
        #[serde(default)]
        region: Option<String>,
    },
    /// A DB cluster snapshot, in `region` (default: the function's own region).
    ClusterSnapshot {
        snapshot_id: String,
        #[serde(default)]
        region: Option<String>,
    },
    /// A snapshot export task (always in the function's own region).
    ExportTask { export_task_id: String },
}

/// Output of `wait-for-available`: `ready` drives the state machine's Choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResult {
    pub resource: String,
    pub id: String,
    pub region: String,
    /// True once the snapshot is `available` or the export `complete`.
    pub ready: bool,
    /// The raw RDS status.
    pub status: String,
    /// Always present (null when RDS gives none): the state machine names it when a wait times out.
    #[serde(default)]
    pub percent_progress: Option<i32>,
    /// What RDS warns of a complete export (tables it skipped), else null: always
    /// present, so that the state machine can pass it on by path.
    #[serde(default)]
    pub warning: Option<String>,
}

/// Output of `export`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// True when no export was due: the engine cannot be exported, or `s3_export_tiers`
    /// exports only the first snapshot of some periods. The backup itself still succeeds.
    pub skipped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub created: bool,
    /// Every export slot of the account is taken: no task started; the state
    /// machine tries again in `next_try_seconds`.
    #[serde(default)]
    pub slot_full: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_try_seconds: Option<u64>,
}

/// Input of `prune`; every field but the execution overrides configuration for one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    pub execution: Execution,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub min_snapshots_to_keep: Option<u32>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// False skips the destination region even when copies are configured.
    #[serde(default)]
    pub include_destination: Option<bool>,
    /// True lets this run delete more than the guard's fraction of a database's snapshots.
    #[serde(default)]
    pub confirm_retention_change: Option<bool>,
}

/// Why prune kept one of our snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// Among the newest `min_snapshots_to_keep` of its database.
    NewestOfDatabase,
    /// Younger than the retention.
    WithinRetention,
    /// Not `available` (creating, copying, failed...).
    NotAvailable,
    /// A cross-region copy or an export of it is running.
    InFlight,
    /// Its database's newest snapshot is older than expected: backups of it may
    /// have stopped, so none of its snapshots is deleted until someone looks.
    NewestTooOld,
    /// A tier of the retention policy keeps it (the tag `database-backup:retention-tiers` says which).
    InTier,
}

/// A database whose snapshots prune left alone because its newest one is too old.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleDatabase {
    pub db_identifier: String,
    /// When its newest available snapshot of ours was created.
    pub newest_created_at: DateTime<Utc>,
}

/// One of our snapshots that prune kept, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSnapshot {
    pub snapshot_id: String,
    pub reason: KeepReason,
}

/// A deletion RDS refused; the snapshot stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneFailure {
    pub snapshot_id: String,
    pub error: String,
}

/// Prune's work in one region. Lists are capped (see `truncated`) to keep the
/// payload small; counts are always complete and every id is logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionPrune {
    pub region: String,
    pub deleted: Vec<String>,
    pub would_delete: Vec<String>,
    pub kept: Vec<KeptSnapshot>,
    pub failed: Vec<PruneFailure>,
    pub deleted_count: usize,
    pub would_delete_count: usize,
    pub kept_count: usize,
    pub failed_count: usize,
    /// Due for deletion but left for the next run: the Lambda deadline was near.
    pub deferred_count: usize,
    /// Snapshots without our marker (foreign or automated): never touched.
    pub ignored_count: usize,
    /// True when a list holds fewer ids than its count.
    pub truncated: bool,
    /// Databases whose newest snapshot is older than `max_snapshot_age_hours`: nothing of theirs deleted.
    #[serde(default)]
    pub stale: Vec<StaleDatabase>,
    /// Kept snapshots whose tiers tag prune set or changed (under a retention policy).
    #[serde(default)]
    pub tagged_count: usize,
    /// The snapshots of ours kept here, their storage and its estimated monthly cost.
    #[serde(default)]
    pub retained: crate::cost::Retained,
}

/// Output of `prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResult {
    pub dry_run: bool,
    pub retention_days: u32,
    pub min_snapshots_to_keep: u32,
    /// Snapshots created before this instant are past retention (when kept by age).
    pub cutoff: DateTime<Utc>,
    /// The tiers kept in place of an age (None: kept by age).
    #[serde(default)]
    pub retention_policy: Option<crate::retention::RetentionPolicy>,
    /// The destination region's tiers, when copies are pruned by tiers.
    #[serde(default)]
    pub copy_retention_policy: Option<crate::retention::RetentionPolicy>,
    /// A database whose newest snapshot is older than this many hours keeps every snapshot (None: no such check).
    #[serde(default)]
    pub max_snapshot_age_hours: Option<u32>,
    pub regions: Vec<RegionPrune>,
    /// What the export bucket holds by storage class (None: exports are off, or see
    /// `exports_unread`).
    #[serde(default)]
    pub exports: Option<crate::cost::ExportStorage>,
    /// Why the export bucket's storage is not reported.
    #[serde(default)]
    pub exports_unread: Option<String>,
}
