//! `export`: starts an export of a snapshot to the S3 backup bucket, under
//! `<project>/<environment>/<db>/<YYYY-MM-DD>/`, encrypted with the module's
//! KMS key and written by the export role.
//!
//! The account runs at most five exports. When all five are taken (by this
//! module or any other caller), export starts nothing and says how long to wait
//! at most (`slot_full`, `next_try_seconds`). The state machine waits in the
//! module's queue, where an export of this module that ends hands its slot on
//! to the export that has waited longest; so while one of the running exports is
//! this module's (it writes to this module's bucket), the wait lasts until that
//! hand-on should have come, and at least twice the wait so far. While all five
//! are other callers', nothing will hand a slot on: the wait ends when the
//! running export nearest its end should be done, from its progress. The
//! export tries again for as long as its wait bound, and only then is the
//! database failed (`ExportSlotsFull`, naming the wait). A first try that finds
//! a slot free while exports wait in the queue hands the slot on to the
//! longest waiter and queues behind it: the waiters are served first.
//!
//! Engines RDS cannot export (Oracle, SQL Server, Db2) are skipped with a
//! warning in the result: the snapshot itself is the backup, the export only
//! an extra copy. With `EXPORT_TIERS` (`s3_export_tiers`, e.g. monthly and
//! yearly) only the snapshot that represents its period in one of those tiers
//! is exported: the first of the database's snapshots of ours in that month or
//! year, or a later one when none before it in the period has an export that
//! completed or runs (the first one's export failed), so a failed export is
//! made up by the next run rather than leaving the period without one. The export task id derives from the snapshot id, so a retry
//! finds its own task (`ExportTaskAlreadyExists`) and reports it.
//!
//! Terraform invokes it too, to keep a destroy from stripping the buckets of
//! their protections while they hold exports ([`buckets`]).

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::ExportTask;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::error::AwsFailureKind;
use backup_core::exports::{self, MAX_RUNNING_EXPORTS};
use backup_core::naming;
use backup_core::rds::Rds;
use backup_core::rds::SnapshotInfo;
use backup_core::retention::Tier;
use backup_core::slot_queue::{self, HandOn, SlotQueue};
use backup_core::types::{ExportRecord, SlotWait, SnapshotRecord, SnapshotTaskRequest};
use backup_core::{AwsFailure, Error, input, tags};
use serde::Serialize;
use serde_json::Value;

pub mod buckets;

/// RDS documents at most five running exports per account, but StartExportTask's
/// documented errors include no code for a sixth. The code reported from the field
/// is `ExportTaskLimitReachedFault` ("You have reached the limit of 5 concurrent
/// export tasks"): unconfirmed, so any other limit- or quota-like code that is not
/// throttling counts as the same.
const EXPORT_LIMIT_ERROR: &str = "ExportTaskLimitReachedFault";

fn is_export_limit(code: &str) -> bool {
    code == EXPORT_LIMIT_ERROR || code.contains("Limit") || code.contains("Quota")
}

/// Engines whose snapshots RDS can export to S3 (as Parquet).
const EXPORTABLE_ENGINES: [&str; 5] = ["mysql", "mariadb", "postgres", "aurora-mysql", "aurora-postgresql"];

/// RDS, to export; the module's queue of exports waiting for a slot; S3, to look into
/// the buckets for Terraform.
pub struct Clients {
    pub rds: Rds,
    pub slot_queue: Option<SlotQueue>,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(sdk_config: &aws_config::SdkConfig, config: &Config) -> Result<Self, Error> {
        let slot_queue = config
            .export_slot_queue_url
            .clone()
            .map(|url| SlotQueue::new(sdk_config, url));
        Ok(Clients {
            rds: Rds::new(sdk_config)?,
            slot_queue,
            s3: backup_core::cost::s3_client(sdk_config),
        })
    }
}

/// What an invocation returns: an export's record to the state machine, or what the
/// buckets hold to Terraform.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Export(ExportRecord),
    Buckets(buckets::GuardReport),
}

/// Every invocation: Terraform's guard of the buckets, or an export for the state machine.
pub async fn handle_invocation(clients: &Clients, config: &Config, event: Value) -> Result<Response, Error> {
    if buckets::is_terraform_lifecycle(&event) {
        buckets::guard(&clients.s3, event).await.map(Response::Buckets)
    } else {
        handle(&clients.rds, clients.slot_queue.as_ref(), config, event)
            .await
            .map(Response::Export)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub bucket: String,
    pub role_arn: String,
    pub kms_key_arn: String,
    /// Only the snapshots that represent a period of these tiers are exported (empty: all).
    pub export_tiers: Vec<Tier>,
    /// The module's queue of exports waiting for a slot (None: a first try takes a free
    /// slot whoever waits).
    pub export_slot_queue_url: Option<String>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let bucket = config::required(env, env::EXPORT_BUCKET)?;
        config::check_bucket_name(&bucket).map_err(|reason| Error::config(env::EXPORT_BUCKET, reason))?;
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            bucket,
            role_arn: config::required_arn(env, env::EXPORT_ROLE_ARN, "iam")?,
            kms_key_arn: config::required_arn(env, env::EXPORT_KMS_KEY_ARN, "kms")?,
            export_tiers: export_tiers(env)?,
            export_slot_queue_url: slot_queue::url_from_env(env)?,
        })
    }
}

/// `EXPORT_TIERS`: a JSON list of tier names (unset or empty: every snapshot is exported).
fn export_tiers(env: &impl Env) -> Result<Vec<Tier>, Error> {
    let Some(raw) = config::optional(env, env::EXPORT_TIERS)?.filter(|raw| !raw.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = serde_json::from_str(&raw).map_err(|err| {
        Error::config(
            env::EXPORT_TIERS,
            format!("{err}: expected a JSON list of tiers, such as [\"monthly\", \"yearly\"]"),
        )
    })?;
    names
        .iter()
        .map(|name| {
            Tier::parse(name).ok_or_else(|| {
                Error::config(
                    env::EXPORT_TIERS,
                    format!("{name:?} is not a tier: daily, weekly, monthly or yearly"),
                )
            })
        })
        .collect()
}

/// Why this snapshot is not exported under `EXPORT_TIERS`, or None when a tier's period
/// needs it: no earlier snapshot of ours of the database in that period has an export that
/// completed or runs.
async fn outside_export_tiers(rds: &Rds, config: &Config, snapshot: &SnapshotRecord) -> Result<Option<String>, Error> {
    let listed = rds
        .list_database_snapshots(snapshot.kind, &snapshot.db_identifier)
        .await?;
    let Some(created) = listed
        .iter()
        .find(|s| s.snapshot_id == snapshot.snapshot_id)
        .and_then(|s| s.created_at)
    else {
        // Its time unknown: exported, rather than a period left without an export.
        return Ok(None);
    };
    let mut earlier: Vec<&SnapshotInfo> = listed
        .iter()
        .filter(|s| tags::is_ours(&s.tags, &config.settings, None) && !s.has_failed())
        .filter(|s| s.created_at.is_some_and(|at| at < created))
        .collect();
    earlier.sort_by_key(|s| s.created_at);
    let mut exported_from = Vec::new();
    for &tier in &config.export_tiers {
        let period = tier.period(created);
        let mut covered_by = None;
        for earlier in earlier
            .iter()
            .filter(|s| s.created_at.is_some_and(|at| tier.period(at) == period))
        {
            if exports::exported_or_exporting(rds, &naming::export_task_id(&earlier.snapshot_id)).await? {
                covered_by = Some(earlier.snapshot_id.as_str());
                break;
            }
        }
        match covered_by {
            None => return Ok(None),
            Some(id) => exported_from.push(format!("its {} by {id}", tier.period_name())),
        }
    }
    let tiers: Vec<&str> = config.export_tiers.iter().map(|t| t.as_str()).collect();
    Ok(Some(format!(
        "snapshot {} was not exported: s3_export_tiers ({}) exports one snapshot a period, and {} already was",
        snapshot.snapshot_id,
        tiers.join(", "),
        exported_from.join(", ")
    )))
}

pub async fn handle(
    clients: &Rds,
    slot_queue: Option<&SlotQueue>,
    config: &Config,
    event: Value,
) -> Result<ExportRecord, Error> {
    let request: SnapshotTaskRequest = input::parse(event)?;
    let snapshot = request.snapshot;
    let snapshot_id = naming::rds_identifier(
        "snapshot.snapshot_id",
        &snapshot.snapshot_id,
        naming::max_snapshot_id_len(snapshot.kind),
    )?;
    config::check_arn(&snapshot.snapshot_arn, "rds")
        .map_err(|reason| Error::invalid_input("snapshot.snapshot_arn", reason))?;
    let region = clients.region.as_str();

    if !EXPORTABLE_ENGINES.contains(&snapshot.engine.as_str()) {
        let warning = format!(
            "snapshot {snapshot_id} of engine {:?} was not exported: RDS exports only MySQL, MariaDB, \
             PostgreSQL and Aurora snapshots to S3; the snapshot itself is kept",
            snapshot.engine
        );
        tracing::warn!(%snapshot_id, engine = %snapshot.engine, "export skipped: engine not exportable");
        return Ok(ExportRecord {
            skipped: true,
            warning: Some(warning),
            ..ExportRecord::default()
        });
    }

    if !config.export_tiers.is_empty()
        && let Some(reason) = outside_export_tiers(clients, config, &snapshot).await?
    {
        tracing::info!(%snapshot_id, %reason, "export skipped: not the first of its period in s3_export_tiers");
        return Ok(ExportRecord {
            skipped: true,
            warning: Some(reason),
            ..ExportRecord::default()
        });
    }

    let export_task_id = naming::export_task_id(&snapshot_id);
    let s3_prefix = naming::export_prefix(
        &config.settings.project,
        &config.settings.environment,
        &snapshot.db_identifier,
        request.execution.execution_start_time,
    );
    let (own, others): (Vec<ExportTask>, Vec<ExportTask>) = exports::running(clients)
        .await?
        .into_iter()
        .partition(|t| t.export_task_identifier() == Some(export_task_id.as_str()));
    if others.len() >= MAX_RUNNING_EXPORTS {
        return wait_for_slot(export_task_id, &clients.region, &config.bucket, &request.slot, &others);
    }
    // A retry of a first try whose start went through finds its own task running: it holds its
    // slot already, and leaves none to the waiters.
    if !request.slot.queued
        && own.is_empty()
        && let Some(queue) = slot_queue
        && leave_free_slots_to_waiters(queue, &export_task_id, MAX_RUNNING_EXPORTS - others.len()).await
    {
        return wait_for_slot(export_task_id, &clients.region, &config.bucket, &request.slot, &others);
    }

    let result = clients
        .client
        .start_export_task()
        .export_task_identifier(&export_task_id)
        .source_arn(&snapshot.snapshot_arn)
        .s3_bucket_name(&config.bucket)
        .s3_prefix(&s3_prefix)
        .iam_role_arn(&config.role_arn)
        .kms_key_id(&config.kms_key_arn)
        .send()
        .await;
    let (status, created) = match result {
        Ok(out) => (out.status().unwrap_or("starting").to_ascii_lowercase(), true),
        Err(err) => {
            let service = err.as_service_error();
            if service.is_some_and(|e| e.is_export_task_already_exists_fault()) {
                let existing = adopt(clients, &export_task_id, &snapshot.snapshot_arn).await?;
                (existing.status().unwrap_or_default().to_ascii_lowercase(), false)
            } else if service.is_some_and(|e| e.is_invalid_export_source_state_fault()) {
                return Err(Error::SnapshotBusy {
                    snapshot_id,
                    region: region.to_owned(),
                    status: "not ready for export".into(),
                    reason: err.message().unwrap_or("InvalidExportSourceState").to_owned(),
                });
            } else if service
                .is_some_and(|e| e.is_db_snapshot_not_found_fault() || e.is_db_cluster_snapshot_not_found_fault())
            {
                return Err(Error::SnapshotNotFound {
                    snapshot_id,
                    region: region.to_owned(),
                });
            } else {
                let failure = AwsFailure::from_sdk("StartExportTask", &err);
                if failure.kind == AwsFailureKind::Rejected && failure.code.as_deref().is_some_and(is_export_limit) {
                    // Another caller took the last slot since the count: wait as for a full count.
                    return wait_for_slot(export_task_id, region, &config.bucket, &request.slot, &others);
                }
                return Err(failure.into());
            }
        }
    };
    tracing::info!(%export_task_id, %snapshot_id, bucket = %config.bucket, %s3_prefix, %status, created, "export started");
    Ok(ExportRecord {
        export_task_id: Some(export_task_id),
        s3_bucket: Some(config.bucket.clone()),
        s3_prefix: Some(s3_prefix),
        status: Some(status),
        created,
        ..ExportRecord::default()
    })
}

/// How long a first try spends handing free slots on before it takes one: well within the
/// function's shortest timeout (`lambda_timeout`, 30 s at least), a hand-on waiting out another's
/// held messages taking up to 11 s.
const HAND_ON_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// A first try that finds slots free hands each on to the export that has waited longest in the
/// module's queue, as the poll that saw an export end does; true when a waiter was woken for
/// every free slot, and this export queues behind them. Without this, a database reaching its
/// export takes the slot freed for the waiter woken a few invocations before (in the
/// 1,000-database fleet one export in eight started only after six or more returns to the
/// queue, and six found every slot taken for their whole seven-day bound). A waiter's own
/// tries take a free slot: they are the ones this protects.
async fn leave_free_slots_to_waiters(queue: &SlotQueue, export_task_id: &str, free: usize) -> bool {
    let started = std::time::Instant::now();
    for woken in 0..free {
        if started.elapsed() > HAND_ON_BUDGET {
            tracing::warn!(%export_task_id, woken, "handing free export slots on took too long: taking one");
            return false;
        }
        match queue.hand_on().await {
            HandOn::Woke { skipped, taken } => {
                tracing::info!(%export_task_id, skipped, taken, "a free export slot handed on to the longest waiter")
            }
            outcome => {
                tracing::info!(%export_task_id, woken, ?outcome, "no more exports wait: taking a free slot");
                return false;
            }
        }
    }
    true
}

/// Every slot is taken (or left to waiters): when to try again, or, once the wait has lasted its
/// bound, `ExportSlotsFull`.
fn wait_for_slot(
    export_task_id: String,
    region: &str,
    bucket: &str,
    slot: &SlotWait,
    running: &[ExportTask],
) -> Result<ExportRecord, Error> {
    let waited_seconds = slot.elapsed_seconds();
    if slot.is_over() {
        return Err(Error::ExportSlotsFull {
            export_task_id,
            region: region.to_owned(),
            running: running.len().max(MAX_RUNNING_EXPORTS).to_string(),
            waited_seconds,
        });
    }
    let (own, others): (Vec<&ExportTask>, Vec<&ExportTask>) =
        running.iter().partition(|task| task.s3_bucket() == Some(bucket));
    let soonest_end = |tasks: &[&ExportTask]| tasks.iter().filter_map(|task| seconds_left(task, slot)).min();
    let next_try_seconds = if own.is_empty() {
        slot.next_try_seconds(soonest_end(&others))
    } else {
        slot.next_try_in_queue(soonest_end(&own))
    };
    tracing::info!(%export_task_id, running = running.len(), own = own.len(), waited_seconds, next_try_seconds, "no export slot for this export now; waiting for one");
    Ok(ExportRecord {
        export_task_id: Some(export_task_id),
        slot_full: true,
        next_try_seconds: Some(next_try_seconds),
        ..ExportRecord::default()
    })
}

/// When a running export should end, at the rate of its progress since it started.
fn seconds_left(task: &ExportTask, slot: &SlotWait) -> Option<u64> {
    let percent = u64::try_from(task.percent_progress()?)
        .ok()
        .filter(|p| (1..100).contains(p))?;
    let started = chrono::DateTime::from_timestamp_millis(task.task_start_time()?.to_millis().ok()?)?;
    let elapsed = u64::try_from((slot.tried_at - started).num_seconds()).ok()?;
    Some(elapsed * (100 - percent) / percent)
}

/// The existing task with our identifier, when it exports the same snapshot.
async fn adopt(clients: &Rds, export_task_id: &str, source_arn: &str) -> Result<ExportTask, Error> {
    let out = clients
        .client
        .describe_export_tasks()
        .export_task_identifier(export_task_id)
        .send()
        .await
        .map_err(|err| AwsFailure::from_sdk("DescribeExportTasks", &err))?;
    let task = out
        .export_tasks()
        .first()
        .cloned()
        .unwrap_or_else(|| ExportTask::builder().build());
    if task.source_arn() != Some(source_arn) {
        return Err(Error::IdentifierConflict {
            resource: "export task",
            id: export_task_id.to_owned(),
            region: clients.region.clone(),
            reason: format!(
                "it exports {} rather than {source_arn}",
                task.source_arn().unwrap_or("an unknown source")
            ),
        });
    }
    Ok(task)
}
