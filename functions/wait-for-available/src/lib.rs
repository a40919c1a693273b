//! `wait-for-available`: reports the status of what the state machine waits
//! for, in one call, so that the waiting itself happens in a Wait state (free)
//! rather than in a running Lambda (billed):
//!
//! - a DB snapshot or DB cluster snapshot, in any region (the new snapshot,
//!   and its cross-region copy);
//! - a snapshot export task (the export branch).
//!
//! `ready: true` once the snapshot is `available` or the export `complete`;
//! `ready: false` while in progress; an error when it failed or vanished.
//! Each poll also says when to poll next (see [`schedule`]): the state
//! machine hands back the wait so far (`wait`), the poll's time
//! (`polled_at`, `$$.State.EnteredTime`), the interval and the bound, and
//! waits `next_poll_seconds`, or stops at `timed_out`.

pub mod callback;
pub mod schedule;

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use backup_core::config::Env;
use backup_core::contract::env;
use backup_core::naming::{self, MAX_EXPORT_TASK_ID_LEN};
use backup_core::rds::Rds;
use backup_core::slot_queue::{self, HandOn, SlotQueue};
use backup_core::types::{DatabaseKind, PollRequest, PollResult};
use backup_core::{AwsFailure, Error, config, input, logging};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schedule::{Reading, WaitSoFar};

/// Export task statuses that end the task without a complete export.
const EXPORT_FAILED: [&str; 3] = ["failed", "canceled", "canceling"];

/// The function's environment.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The module's queue of exports waiting for a slot (None: no hand-on).
    pub export_slot_queue_url: Option<String>,
    /// The schedule group of the waits' polls (see [`callback`]).
    pub schedule_group: String,
    /// The role EventBridge Scheduler assumes to invoke the next poll.
    pub scheduler_role_arn: String,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let export_slot_queue_url = slot_queue::url_from_env(env)?;
        let schedule_group = config::required(env, env::SCHEDULE_GROUP_NAME)?;
        if schedule_group.is_empty()
            || schedule_group.len() > 64
            || !schedule_group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::config(
                env::SCHEDULE_GROUP_NAME,
                format!("{schedule_group:?} is not a schedule group name (1 to 64 of 0-9, a-z, A-Z, -, _ and .)"),
            ));
        }
        Ok(Config {
            export_slot_queue_url,
            schedule_group,
            scheduler_role_arn: config::required_arn(env, env::SCHEDULER_ROLE_ARN, "iam")?,
        })
    }
}

/// The shared SDK configuration and the RDS client of the function's region.
/// Clients of other regions are derived from the same configuration when
/// first needed and kept, so polls of a copy reuse their connections.
pub struct Clients {
    pub sdk_config: SdkConfig,
    /// The function's own region.
    pub home: Rds,
    other_regions: Mutex<HashMap<String, Rds>>,
    /// Where an export that ends hands its slot on (None: nowhere).
    pub slot_queue: Option<SlotQueue>,
}

impl Clients {
    pub fn new(sdk_config: SdkConfig, config: &Config) -> Result<Self, Error> {
        let slot_queue = config
            .export_slot_queue_url
            .clone()
            .map(|url| SlotQueue::new(&sdk_config, url));
        Ok(Self::with_client(Rds::new(&sdk_config)?, sdk_config).with_slot_queue(slot_queue))
    }

    /// Clients around a given client of the home region (tests pass a mocked one).
    pub fn with_client(home: Rds, sdk_config: SdkConfig) -> Self {
        Clients {
            sdk_config,
            home,
            other_regions: Mutex::default(),
            slot_queue: None,
        }
    }

    pub fn with_slot_queue(self, slot_queue: Option<SlotQueue>) -> Self {
        Clients { slot_queue, ..self }
    }

    fn rds_in(&self, region: &str) -> Rds {
        if region == self.home.region {
            return self.home.clone();
        }
        let mut clients = self
            .other_regions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| Rds::in_region(&self.sdk_config, region))
            .clone()
    }
}

/// The wait around a poll, as the state machine hands it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitInput {
    /// The previous poll's output, or the wait's start (`started_at`) before the first.
    wait: WaitSoFar,
    polled_at: DateTime<Utc>,
    interval_seconds: u64,
    timeout_seconds: u64,
}

const WAIT_FIELDS: [&str; 4] = ["wait", "polled_at", "interval_seconds", "timeout_seconds"];

/// A poll's output: what RDS said, and the schedule of the wait.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitResult {
    #[serde(flatten)]
    pub poll: PollResult,
    pub started_at: DateTime<Utc>,
    pub elapsed_seconds: u64,
    pub next_poll_seconds: u64,
    /// Not ready, and the wait's bound reached.
    pub timed_out: bool,
    pub since: Reading,
}

/// A poll, and the export of this module it saw end (complete, failed or canceled), whose
/// slot is to be handed on.
pub struct Polled {
    pub result: Result<WaitResult, Error>,
    pub ended_export: Option<String>,
}

/// A poll whose ended export hands its slot on at once.
pub async fn handle(clients: &Clients, event: Value) -> Result<WaitResult, Error> {
    let polled = poll(clients, event).await;
    if let Some(export_task_id) = &polled.ended_export {
        hand_on_slot(clients, export_task_id).await;
    }
    polled.result
}

/// A poll; the caller hands on the slot of an export it saw end ([`hand_on_slot`]) once it
/// has answered the wait.
pub async fn poll(clients: &Clients, event: Value) -> Polled {
    let mut ended_export = None;
    let result = poll_and_note(clients, event, &mut ended_export).await;
    Polled { result, ended_export }
}

async fn poll_and_note(
    clients: &Clients,
    event: Value,
    ended_export: &mut Option<String>,
) -> Result<WaitResult, Error> {
    // The state machine adds the run and the database for the logs only (see main.rs).
    let mut event = logging::without_context(event);
    let wait_fields: Map<String, Value> = WAIT_FIELDS
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), event.as_object_mut()?.remove(*name)?)))
        .collect();
    let wait: WaitInput = input::parse(Value::Object(wait_fields))?;
    let poll = match input::parse::<PollRequest>(event)? {
        PollRequest::DbSnapshot { snapshot_id, region } => {
            poll_snapshot(clients, DatabaseKind::Instance, &snapshot_id, region).await
        }
        PollRequest::ClusterSnapshot { snapshot_id, region } => {
            poll_snapshot(clients, DatabaseKind::Cluster, &snapshot_id, region).await
        }
        PollRequest::ExportTask { export_task_id } => {
            let polled = poll_export(clients, &export_task_id).await;
            *ended_export = match &polled {
                Ok(poll) if poll.ready => Some(poll.id.clone()),
                Err(Error::ExportFailed { export_task_id, .. }) => Some(export_task_id.clone()),
                _ => None,
            };
            polled
        }
    }?;
    let next = schedule::next_poll(
        &wait.wait,
        wait.polled_at,
        poll.percent_progress,
        wait.interval_seconds,
        wait.timeout_seconds,
    );
    if !poll.ready {
        tracing::info!(
            next_poll_seconds = next.next_poll_seconds,
            elapsed_seconds = next.elapsed_seconds,
            timed_out = next.timed_out,
            "next poll"
        );
    }
    Ok(WaitResult {
        timed_out: next.timed_out && !poll.ready,
        poll,
        started_at: wait.wait.started_at,
        elapsed_seconds: next.elapsed_seconds,
        next_poll_seconds: next.next_poll_seconds,
        since: next.since,
    })
}

async fn poll_snapshot(
    clients: &Clients,
    kind: DatabaseKind,
    snapshot_id: &str,
    region: Option<String>,
) -> Result<PollResult, Error> {
    let snapshot_id = naming::rds_identifier("snapshot_id", snapshot_id, naming::max_snapshot_id_len(kind))?;
    let region = match region {
        Some(region) => {
            config::check_region(&region).map_err(|reason| Error::invalid_input("region", reason))?;
            region
        }
        None => clients.home.region.clone(),
    };
    let snapshot = clients.rds_in(&region).require_snapshot(kind, &snapshot_id).await?;
    if snapshot.has_failed() {
        return Err(Error::SnapshotFailed {
            snapshot_id,
            region,
            status: snapshot.status,
        });
    }
    tracing::info!(%snapshot_id, %region, status = %snapshot.status, progress = ?snapshot.percent_progress, "snapshot polled");
    Ok(PollResult {
        resource: match kind {
            DatabaseKind::Instance => "db_snapshot",
            DatabaseKind::Cluster => "cluster_snapshot",
        }
        .to_owned(),
        id: snapshot_id,
        region,
        ready: snapshot.is_available(),
        status: snapshot.status,
        percent_progress: snapshot.percent_progress,
        warning: None,
    })
}

async fn poll_export(clients: &Clients, export_task_id: &str) -> Result<PollResult, Error> {
    let export_task_id = naming::rds_identifier("export_task_id", export_task_id, MAX_EXPORT_TASK_ID_LEN)?;
    let region = clients.home.region.clone();
    let not_found = || Error::ExportTaskNotFound {
        export_task_id: export_task_id.clone(),
        region: region.clone(),
    };
    let result = clients
        .home
        .client
        .describe_export_tasks()
        .export_task_identifier(&export_task_id)
        .send()
        .await;
    let task = match result {
        Ok(out) => out.export_tasks().first().cloned().ok_or_else(not_found)?,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_export_task_not_found_fault()) =>
        {
            return Err(not_found());
        }
        Err(err) => return Err(AwsFailure::from_sdk("DescribeExportTasks", &err).into()),
    };
    // RDS documents upper-case statuses (COMPLETE); some tools report lower case.
    let status = task.status().unwrap_or_default().to_ascii_lowercase();
    if EXPORT_FAILED.contains(&status.as_str()) {
        return Err(Error::ExportFailed {
            export_task_id,
            region,
            status,
            cause: task.failure_cause().unwrap_or("no cause given").to_owned(),
        });
    }
    let ready = status == "complete";
    // A complete export may have skipped tables (PostgreSQL unlogged or temporary tables,
    // names with slashes, rows near 2 GB): RDS says so in WarningMessage, never silently.
    let warning = task
        .warning_message()
        .filter(|w| ready && !w.trim().is_empty())
        .map(str::to_owned);
    if let Some(warning) = &warning {
        tracing::warn!(%export_task_id, %warning, "export complete with a warning");
    }
    tracing::info!(%export_task_id, %status, progress = ?task.percent_progress(), "export task polled");
    Ok(PollResult {
        resource: "export_task".to_owned(),
        id: export_task_id,
        region,
        ready,
        status,
        percent_progress: task.percent_progress(),
        warning,
    })
}

/// The export has ended: its slot goes to the waiter in the module's queue that has waited longest.
/// Whatever happens, the poll's own answer stands: a waiter not woken tries at its own time.
pub async fn hand_on_slot(clients: &Clients, export_task_id: &str) {
    let Some(queue) = &clients.slot_queue else {
        return;
    };
    match queue.hand_on().await {
        HandOn::Woke { skipped, taken } => {
            tracing::info!(%export_task_id, skipped, taken, "export slot handed on to the longest waiter")
        }
        HandOn::NoWaiter { skipped } => tracing::info!(%export_task_id, skipped, "no export waits for the slot"),
        HandOn::GaveUp => tracing::warn!(
            %export_task_id,
            skipped = slot_queue::MOST_TAKEN,
            "export slot not handed on: every waiter taken had stopped waiting; the others try at their own time"
        ),
        HandOn::Failed(reason) => tracing::warn!(
            %export_task_id,
            %reason,
            "export slot not handed on: the waiters try at their own time"
        ),
    }
}
