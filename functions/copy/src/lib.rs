//! `copy`: copies a snapshot to the destination region, encrypted with a key
//! of that region (KMS keys are regional), with the module's tags plus the
//! source snapshot's ARN.
//!
//! RDS answers `SnapshotQuotaExceeded` both when the destination's manual
//! snapshot quota is used up (permanent: fail and tell someone) and when its
//! cross-region copy slots are all busy (transient: retry). The quota is read
//! first to tell the two apart.

use aws_config::SdkConfig;
use aws_sdk_rds::error::ProvideErrorMetadata;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::error::diagnostic;
use backup_core::naming;
use backup_core::quota::{self, QuotaUsage};
use backup_core::snapshots::{self, SnapshotInfo};
use backup_core::types::{DatabaseKind, SnapshotRecord, SnapshotTaskRequest};
use backup_core::{AwsFailure, CoreError, ErrorType, input, tags};
use serde_json::Value;

/// The RDS client of the destination region: `CopyDBSnapshot` is called there.
pub struct Clients {
    pub destination_rds: aws_sdk_rds::Client,
}

impl Clients {
    pub fn new(sdk_config: &SdkConfig, destination_region: &str) -> Result<Self, CoreError> {
        Ok(Clients {
            destination_rds: backup_core::aws::rds_client_in(sdk_config, destination_region),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub destination_region: String,
    /// A key in the destination region; required for encrypted snapshots.
    pub kms_key_arn: Option<String>,
}

impl Config {
    pub const DESTINATION_REGION: &'static str = "COPY_DESTINATION_REGION";
    pub const KMS_KEY_ARN: &'static str = "COPY_KMS_KEY_ARN";

    pub fn from_env(env: &impl Env) -> Result<Self, CoreError> {
        let destination_region = config::optional_region(env, Self::DESTINATION_REGION)?
            .ok_or_else(|| CoreError::config(Self::DESTINATION_REGION, "is not set"))?;
        let kms_key_arn = config::optional_arn(env, Self::KMS_KEY_ARN, "kms")?;
        if let Some(key) = &kms_key_arn {
            let key_region = key.split(':').nth(3).unwrap_or_default();
            if key_region != destination_region {
                return Err(CoreError::config(
                    Self::KMS_KEY_ARN,
                    format!(
                        "{key} is in {key_region:?}, not in the destination region {destination_region}; KMS keys are regional"
                    ),
                ));
            }
        }
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            destination_region,
            kms_key_arn,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("cross-region copy slots in {region} are full ({detail}); retrying the copy of {snapshot_id} later")]
    CopySlotsFull {
        snapshot_id: String,
        region: String,
        detail: String,
    },
}

impl CopyError {
    pub fn error_type(&self) -> ErrorType {
        match self {
            CopyError::Core(e) => e.error_type(),
            CopyError::CopySlotsFull { .. } => ErrorType::CopySlotsFull,
        }
    }
}

impl From<CopyError> for lambda_runtime::Diagnostic {
    fn from(err: CopyError) -> Self {
        diagnostic(err.error_type(), &err)
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<SnapshotRecord, CopyError> {
    let request: SnapshotTaskRequest = input::parse(event)?;
    let source = request.snapshot;
    let snapshot_id = naming::rds_identifier("snapshot.snapshot_id", &source.snapshot_id, naming::MAX_SNAPSHOT_ID_LEN)?;
    config::check_arn(&source.snapshot_arn, "rds")
        .map_err(|reason| CoreError::invalid_input("snapshot.snapshot_arn", reason))?;
    let region = config.destination_region.as_str();
    if source.region == region {
        return Err(CoreError::config(
            Config::DESTINATION_REGION,
            format!("{region} is the source region of {snapshot_id}; copies must go to another region"),
        )
        .into());
    }
    if source.encrypted && config.kms_key_arn.is_none() {
        return Err(CoreError::config(
            Config::KMS_KEY_ARN,
            format!("is not set, but {snapshot_id} is encrypted and needs a KMS key in {region}"),
        )
        .into());
    }
    let rds = &clients.destination_rds;
    let usage = quota::ensure_room(rds, source.kind, region).await?;

    let mut copy_tags = tags::snapshot_tags(&config.settings, &source.db_identifier, &request.execution.execution_id);
    copy_tags.push(
        aws_sdk_rds::types::Tag::builder()
            .key(tags::COPIED_FROM)
            .value(&source.snapshot_arn)
            .build(),
    );
    let (action, result) = match source.kind {
        DatabaseKind::Instance => {
            let result = rds
                .copy_db_snapshot()
                .source_db_snapshot_identifier(&source.snapshot_arn)
                .target_db_snapshot_identifier(&snapshot_id)
                .set_kms_key_id(config.kms_key_arn.clone())
                .set_tags(Some(copy_tags))
                .send()
                .await;
            let result = result
                .map(|out| out.db_snapshot().map(SnapshotInfo::from))
                .map_err(|err| {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_db_snapshot_already_exists_fault()) {
                        Refusal::AlreadyExists
                    } else if service.is_some_and(|e| e.is_snapshot_quota_exceeded_fault()) {
                        Refusal::QuotaExceeded(err.message().unwrap_or_default().to_owned())
                    } else if service.is_some_and(|e| e.is_invalid_db_snapshot_state_fault()) {
                        Refusal::SourceBusy(err.message().unwrap_or_default().to_owned())
                    } else if service.is_some_and(|e| e.is_db_snapshot_not_found_fault()) {
                        Refusal::SourceNotFound
                    } else {
                        Refusal::Other(AwsFailure::from_sdk("CopyDBSnapshot", &err))
                    }
                });
            ("CopyDBSnapshot", result)
        }
        DatabaseKind::Cluster => {
            let result = rds
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(&source.snapshot_arn)
                .target_db_cluster_snapshot_identifier(&snapshot_id)
                .set_kms_key_id(config.kms_key_arn.clone())
                .set_tags(Some(copy_tags))
                .send()
                .await;
            let result = result
                .map(|out| out.db_cluster_snapshot().map(SnapshotInfo::from))
                .map_err(|err| {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_db_cluster_snapshot_already_exists_fault()) {
                        Refusal::AlreadyExists
                    } else if service.is_some_and(|e| e.is_snapshot_quota_exceeded_fault()) {
                        Refusal::QuotaExceeded(err.message().unwrap_or_default().to_owned())
                    } else if service.is_some_and(|e| e.is_invalid_db_cluster_snapshot_state_fault()) {
                        Refusal::SourceBusy(err.message().unwrap_or_default().to_owned())
                    } else if service.is_some_and(|e| e.is_db_cluster_snapshot_not_found_fault()) {
                        Refusal::SourceNotFound
                    } else {
                        Refusal::Other(AwsFailure::from_sdk("CopyDBClusterSnapshot", &err))
                    }
                });
            ("CopyDBClusterSnapshot", result)
        }
    };

    let record = match result {
        Ok(copy) => SnapshotRecord {
            db_identifier: source.db_identifier.clone(),
            kind: source.kind,
            snapshot_arn: copy.as_ref().map(|c| c.arn.clone()).unwrap_or_default(),
            status: copy.map_or_else(|| "copying".to_owned(), |c| c.status),
            snapshot_id: snapshot_id.clone(),
            region: region.to_owned(),
            engine: source.engine.clone(),
            encrypted: source.encrypted || config.kms_key_arn.is_some(),
            created: true,
        },
        Err(Refusal::AlreadyExists) => {
            tracing::info!(%snapshot_id, region, "copy already exists; checking it is ours");
            snapshots::require(rds, source.kind, &snapshot_id, region)
                .await?
                .adopt(&config.settings, &source.db_identifier, region)?
        }
        Err(Refusal::QuotaExceeded(message)) => return Err(slots_full(&snapshot_id, region, usage, &message)),
        Err(Refusal::SourceBusy(message)) => {
            return Err(CoreError::SnapshotBusy {
                snapshot_id,
                region: source.region.clone(),
                status: "not ready to copy".into(),
                reason: format!("{action}: {message}"),
            }
            .into());
        }
        Err(Refusal::SourceNotFound) => {
            return Err(CoreError::SnapshotNotFound {
                snapshot_id,
                region: source.region.clone(),
            }
            .into());
        }
        Err(Refusal::Other(failure)) => return Err(CoreError::from(failure).into()),
    };
    tracing::info!(
        %snapshot_id,
        source_region = %source.region,
        destination_region = region,
        status = %record.status,
        created = record.created,
        "cross-region copy requested"
    );
    Ok(record)
}

/// Why RDS refused a copy, independent of the snapshot kind.
enum Refusal {
    AlreadyExists,
    QuotaExceeded(String),
    SourceBusy(String),
    SourceNotFound,
    Other(AwsFailure),
}

/// The quota pre-check passed (or could not be read), so `SnapshotQuotaExceeded`
/// from the copy means the copy slots are full.
fn slots_full(snapshot_id: &str, region: &str, usage: Option<QuotaUsage>, message: &str) -> CopyError {
    let detail = match usage {
        Some(u) => format!(
            "RDS answered SnapshotQuotaExceeded while the snapshot quota has room, {} of {} used: {message}",
            u.used, u.max
        ),
        None => format!("RDS answered SnapshotQuotaExceeded and the snapshot quota could not be read: {message}"),
    };
    CopyError::CopySlotsFull {
        snapshot_id: snapshot_id.to_owned(),
        region: region.to_owned(),
        detail,
    }
}
