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

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::SdkConfig;
use backup_core::error::diagnostic;
use backup_core::naming::{self, MAX_EXPORT_TASK_ID_LEN, MAX_SNAPSHOT_ID_LEN};
use backup_core::types::{DatabaseKind, PollRequest, PollResult};
use backup_core::{AwsFailure, CoreError, ErrorType, config, input, logging, snapshots};
use serde_json::Value;

/// Export task statuses that end the task without a complete export.
const EXPORT_FAILED: [&str; 3] = ["failed", "canceled", "canceling"];

/// The shared SDK configuration and the RDS client of the function's region.
/// Clients of other regions are derived from the same configuration when
/// first needed and kept, so polls of a copy reuse their connections.
pub struct Clients {
    pub sdk_config: SdkConfig,
    pub rds: aws_sdk_rds::Client,
    pub region: String,
    other_regions: Mutex<HashMap<String, aws_sdk_rds::Client>>,
}

impl Clients {
    pub fn new(sdk_config: SdkConfig) -> Result<Self, CoreError> {
        Ok(Self::with_client(
            aws_sdk_rds::Client::new(&sdk_config),
            backup_core::aws::region_of(&sdk_config)?,
            sdk_config,
        ))
    }

    /// Clients around a given client of `region` (tests pass a mocked one).
    pub fn with_client(rds: aws_sdk_rds::Client, region: String, sdk_config: SdkConfig) -> Self {
        Clients {
            sdk_config,
            rds,
            region,
            other_regions: Mutex::default(),
        }
    }

    fn rds_in(&self, region: &str) -> aws_sdk_rds::Client {
        if region == self.region {
            return self.rds.clone();
        }
        let mut clients = self
            .other_regions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| backup_core::aws::rds_client_in(&self.sdk_config, region))
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("snapshot {snapshot_id} in {region} ended in status {status}")]
    SnapshotFailed {
        snapshot_id: String,
        region: String,
        status: String,
    },
    #[error("export task {export_task_id} in {region} ended in status {status}: {cause}")]
    ExportFailed {
        export_task_id: String,
        region: String,
        status: String,
        cause: String,
    },
    #[error("export task {export_task_id} not found in {region}")]
    ExportTaskNotFound { export_task_id: String, region: String },
}

impl WaitError {
    pub fn error_type(&self) -> ErrorType {
        match self {
            WaitError::Core(e) => e.error_type(),
            WaitError::SnapshotFailed { .. } => ErrorType::SnapshotFailed,
            WaitError::ExportFailed { .. } => ErrorType::ExportFailed,
            WaitError::ExportTaskNotFound { .. } => ErrorType::ExportTaskNotFound,
        }
    }
}

impl From<WaitError> for lambda_runtime::Diagnostic {
    fn from(err: WaitError) -> Self {
        diagnostic(err.error_type(), &err)
    }
}

pub async fn handle(clients: &Clients, event: Value) -> Result<PollResult, WaitError> {
    // The state machine adds the run and the database for the logs only (see main.rs).
    match input::parse::<PollRequest>(logging::without_context(event))? {
        PollRequest::DbSnapshot { snapshot_id, region } => {
            poll_snapshot(clients, DatabaseKind::Instance, &snapshot_id, region).await
        }
        PollRequest::ClusterSnapshot { snapshot_id, region } => {
            poll_snapshot(clients, DatabaseKind::Cluster, &snapshot_id, region).await
        }
        PollRequest::ExportTask { export_task_id } => poll_export(clients, &export_task_id).await,
    }
}

async fn poll_snapshot(
    clients: &Clients,
    kind: DatabaseKind,
    snapshot_id: &str,
    region: Option<String>,
) -> Result<PollResult, WaitError> {
    let snapshot_id = naming::rds_identifier("snapshot_id", snapshot_id, MAX_SNAPSHOT_ID_LEN)?;
    let region = match region {
        Some(region) => {
            config::check_region(&region).map_err(|reason| CoreError::invalid_input("region", reason))?;
            region
        }
        None => clients.region.clone(),
    };
    let rds = clients.rds_in(&region);
    let snapshot = snapshots::require(&rds, kind, &snapshot_id, &region).await?;
    if snapshot.has_failed() {
        return Err(WaitError::SnapshotFailed {
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
    })
}

async fn poll_export(clients: &Clients, export_task_id: &str) -> Result<PollResult, WaitError> {
    let export_task_id = naming::rds_identifier("export_task_id", export_task_id, MAX_EXPORT_TASK_ID_LEN)?;
    let region = clients.region.clone();
    let not_found = || WaitError::ExportTaskNotFound {
        export_task_id: export_task_id.clone(),
        region: region.clone(),
    };
    let result = clients
        .rds
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
        Err(err) => return Err(CoreError::from(AwsFailure::from_sdk("DescribeExportTasks", &err)).into()),
    };
    // RDS documents upper-case statuses (COMPLETE); some tools report lower case.
    let status = task.status().unwrap_or_default().to_ascii_lowercase();
    if EXPORT_FAILED.contains(&status.as_str()) {
        return Err(WaitError::ExportFailed {
            export_task_id,
            region,
            status,
            cause: task.failure_cause().unwrap_or("no cause given").to_owned(),
        });
    }
    tracing::info!(%export_task_id, %status, progress = ?task.percent_progress(), "export task polled");
    Ok(PollResult {
        resource: "export_task".to_owned(),
        id: export_task_id,
        region,
        ready: status == "complete",
        status,
        percent_progress: task.percent_progress(),
    })
}
