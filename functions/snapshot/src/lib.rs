//! `snapshot`: creates a manual snapshot of one RDS DB instance, or of an
//! Aurora DB cluster when the identifier names one, tagged as this module's.
//!
//! Before any call that changes state it checks the input, that the database
//! exists and can be snapshotted now, and that the manual snapshot quota has
//! room. The snapshot identifier derives from the database and the execution's
//! start time, so a retry of the same execution finds its own snapshot
//! (`DBSnapshotAlreadyExists`) and reports it instead of failing.

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use backup_core::config::{Env, ModuleSettings};
use backup_core::error::diagnostic;
use backup_core::naming::{self, MAX_DB_IDENTIFIER_LEN};
use backup_core::snapshots::{self, SnapshotInfo};
use backup_core::types::{DatabaseKind, SnapshotRecord, SnapshotRequest};
use backup_core::{AwsFailure, CoreError, ErrorType, input, quota, tags};
use serde_json::Value;

/// Instance statuses during which RDS refuses a snapshot but will accept one later.
const INSTANCE_BUSY: [&str; 16] = [
    "backing-up",
    "configuring-activity-stream",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "creating",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "storage-initialization",
    "upgrading",
];

/// Instance statuses that need someone to act before a backup can succeed.
const INSTANCE_UNAVAILABLE: [&str; 14] = [
    "deleting",
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "stopped",
    "stopping",
    "storage-full",
    "delete-precheck",
];

const CLUSTER_BUSY: [&str; 12] = [
    "backing-up",
    "backtracking",
    "creating",
    "failing-over",
    "maintenance",
    "migrating",
    "modifying",
    "promoting",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "upgrading",
];

const CLUSTER_UNAVAILABLE: [&str; 8] = [
    "cloning-failed",
    "deleting",
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "migration-failed",
    "stopped",
    "stopping",
];

/// The RDS client of the function's region.
pub type Clients = backup_core::aws::RegionalRds;

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, CoreError> {
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("database {db_identifier} not found in {region}: no DB instance{also} has this identifier")]
    DatabaseNotFound {
        db_identifier: String,
        region: String,
        also: &'static str,
    },
    #[error("{kind} {db_identifier} in {region} is {status}; retrying until it is available")]
    DatabaseBusy {
        kind: &'static str,
        db_identifier: String,
        region: String,
        status: String,
    },
    #[error("{kind} {db_identifier} in {region} cannot be backed up: {reason}")]
    DatabaseNotAvailable {
        kind: &'static str,
        db_identifier: String,
        region: String,
        reason: String,
    },
}

impl SnapshotError {
    pub fn error_type(&self) -> ErrorType {
        match self {
            SnapshotError::Core(e) => e.error_type(),
            SnapshotError::DatabaseNotFound { .. } => ErrorType::DatabaseNotFound,
            SnapshotError::DatabaseBusy { .. } => ErrorType::DatabaseBusy,
            SnapshotError::DatabaseNotAvailable { .. } => ErrorType::DatabaseNotAvailable,
        }
    }
}

impl From<SnapshotError> for lambda_runtime::Diagnostic {
    fn from(err: SnapshotError) -> Self {
        diagnostic(err.error_type(), &err)
    }
}

/// What the snapshot is taken of.
struct Database {
    kind: DatabaseKind,
    identifier: String,
    engine: String,
    encrypted: bool,
}

/// Creates (or finds, on a retry) this execution's snapshot of one database.
pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<SnapshotRecord, SnapshotError> {
    let request: SnapshotRequest = input::parse(event)?;
    let db_identifier = naming::rds_identifier("db_identifier", &request.db_identifier, MAX_DB_IDENTIFIER_LEN)?;
    if request.execution.execution_id.trim().is_empty() {
        return Err(CoreError::invalid_input("execution.execution_id", "must not be empty").into());
    }
    let region = clients.region.as_str();
    let database = locate(clients, &db_identifier, request.kind).await?;
    quota::ensure_room(&clients.rds, database.kind, region).await?;

    let snapshot_id = naming::snapshot_id(&database.identifier, request.execution.execution_start_time);
    let snapshot_tags = tags::snapshot_tags(&config.settings, &database.identifier, &request.execution.execution_id);
    let created = match database.kind {
        DatabaseKind::Instance => {
            let result = clients
                .rds
                .create_db_snapshot()
                .db_instance_identifier(&database.identifier)
                .db_snapshot_identifier(&snapshot_id)
                .set_tags(Some(snapshot_tags))
                .send()
                .await;
            match result {
                Ok(out) => out.db_snapshot().map(SnapshotInfo::from),
                Err(err) => {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_db_snapshot_already_exists_fault()) {
                        None
                    } else if service.is_some_and(|e| e.is_invalid_db_instance_state_fault()) {
                        return Err(busy(&database, region, refused_because(err.message())));
                    } else if service.is_some_and(|e| e.is_snapshot_quota_exceeded_fault()) {
                        return Err(quota_refused(&database, region, err.message()));
                    } else if service.is_some_and(|e| e.is_db_instance_not_found_fault()) {
                        return Err(not_found(&database.identifier, region, None));
                    } else {
                        return Err(CoreError::from(AwsFailure::from_sdk("CreateDBSnapshot", &err)).into());
                    }
                }
            }
        }
        DatabaseKind::Cluster => {
            let result = clients
                .rds
                .create_db_cluster_snapshot()
                .db_cluster_identifier(&database.identifier)
                .db_cluster_snapshot_identifier(&snapshot_id)
                .set_tags(Some(snapshot_tags))
                .send()
                .await;
            match result {
                Ok(out) => out.db_cluster_snapshot().map(SnapshotInfo::from),
                Err(err) => {
                    let service = err.as_service_error();
                    if service.is_some_and(|e| e.is_db_cluster_snapshot_already_exists_fault()) {
                        None
                    } else if service.is_some_and(|e| e.is_invalid_db_cluster_state_fault()) {
                        return Err(busy(&database, region, refused_because(err.message())));
                    } else if service.is_some_and(|e| e.is_snapshot_quota_exceeded_fault()) {
                        return Err(quota_refused(&database, region, err.message()));
                    } else if service.is_some_and(|e| e.is_db_cluster_not_found_fault()) {
                        return Err(not_found(&database.identifier, region, Some(" or DB cluster")));
                    } else {
                        return Err(CoreError::from(AwsFailure::from_sdk("CreateDBClusterSnapshot", &err)).into());
                    }
                }
            }
        }
    };

    let record = match created {
        Some(info) => SnapshotRecord {
            db_identifier: database.identifier.clone(),
            kind: database.kind,
            snapshot_arn: info.arn,
            snapshot_id: snapshot_id.clone(),
            region: region.to_owned(),
            engine: database.engine,
            encrypted: database.encrypted,
            status: info.status,
            created: true,
        },
        None => {
            tracing::info!(db_identifier = %database.identifier, %snapshot_id, "snapshot already exists; checking it is ours");
            snapshots::require(&clients.rds, database.kind, &snapshot_id, region)
                .await?
                .adopt(&config.settings, &database.identifier, region)?
        }
    };
    tracing::info!(
        db_identifier = %record.db_identifier,
        snapshot_id = %record.snapshot_id,
        status = %record.status,
        created = record.created,
        "snapshot requested"
    );
    Ok(record)
}

/// Finds the database as an instance or, failing that, as a cluster, and
/// checks that it can be snapshotted now.
async fn locate(clients: &Clients, identifier: &str, kind: Option<DatabaseKind>) -> Result<Database, SnapshotError> {
    let region = clients.region.as_str();
    if kind != Some(DatabaseKind::Cluster) {
        let result = clients
            .rds
            .describe_db_instances()
            .db_instance_identifier(identifier)
            .send()
            .await;
        match result {
            Ok(out) => {
                if let Some(instance) = out.db_instances().first() {
                    return check_instance(instance, identifier, region);
                }
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_instance_not_found_fault()) => {}
            Err(err) => return Err(CoreError::from(AwsFailure::from_sdk("DescribeDBInstances", &err)).into()),
        }
        if kind == Some(DatabaseKind::Instance) {
            return Err(not_found(identifier, region, None));
        }
    }
    let result = clients
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(identifier)
        .send()
        .await;
    match result {
        Ok(out) => match out.db_clusters().first() {
            Some(cluster) => check_cluster(cluster, identifier, region),
            None => Err(not_found(identifier, region, Some(" or DB cluster"))),
        },
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_db_cluster_not_found_fault()) =>
        {
            Err(not_found(identifier, region, Some(" or DB cluster")))
        }
        Err(err) => Err(CoreError::from(AwsFailure::from_sdk("DescribeDBClusters", &err)).into()),
    }
}

fn check_instance(instance: &DbInstance, identifier: &str, region: &str) -> Result<Database, SnapshotError> {
    let database = Database {
        kind: DatabaseKind::Instance,
        identifier: identifier.to_owned(),
        engine: instance.engine().unwrap_or_default().to_owned(),
        encrypted: instance.storage_encrypted().unwrap_or(false),
    };
    if let Some(cluster) = instance.db_cluster_identifier() {
        return Err(SnapshotError::DatabaseNotAvailable {
            kind: DatabaseKind::Instance.label(),
            db_identifier: identifier.to_owned(),
            region: region.to_owned(),
            reason: format!(
                "it is a member of Aurora DB cluster {cluster}, which RDS backs up as a whole; \
                 list the cluster identifier {cluster} instead"
            ),
        });
    }
    let status = instance.db_instance_status().unwrap_or_default();
    check_status(&database, status, &INSTANCE_BUSY, &INSTANCE_UNAVAILABLE, region)?;
    Ok(database)
}

fn check_cluster(cluster: &DbCluster, identifier: &str, region: &str) -> Result<Database, SnapshotError> {
    let database = Database {
        kind: DatabaseKind::Cluster,
        identifier: identifier.to_owned(),
        engine: cluster.engine().unwrap_or_default().to_owned(),
        encrypted: cluster.storage_encrypted().unwrap_or(false),
    };
    let status = cluster.status().unwrap_or_default();
    check_status(&database, status, &CLUSTER_BUSY, &CLUSTER_UNAVAILABLE, region)?;
    Ok(database)
}

/// Busy statuses are retried; unavailable ones fail at once. Any other status
/// (including ones AWS adds later) is left for RDS to judge.
fn check_status(
    database: &Database,
    status: &str,
    busy_statuses: &[&str],
    unavailable: &[&str],
    region: &str,
) -> Result<(), SnapshotError> {
    if busy_statuses.contains(&status) {
        return Err(busy(database, region, status.to_owned()));
    }
    if unavailable.contains(&status) {
        return Err(SnapshotError::DatabaseNotAvailable {
            kind: database.kind.label(),
            db_identifier: database.identifier.clone(),
            region: region.to_owned(),
            reason: format!("its status is {status}"),
        });
    }
    Ok(())
}

fn busy(database: &Database, region: &str, status: String) -> SnapshotError {
    SnapshotError::DatabaseBusy {
        kind: database.kind.label(),
        db_identifier: database.identifier.clone(),
        region: region.to_owned(),
        status,
    }
}

fn refused_because(message: Option<&str>) -> String {
    format!(
        "busy: {}",
        message.unwrap_or("RDS refused the snapshot in its present state")
    )
}

fn quota_refused(database: &Database, region: &str, message: Option<&str>) -> SnapshotError {
    CoreError::SnapshotQuotaExceeded {
        kind: database.kind.label(),
        region: region.to_owned(),
        detail: format!(
            "RDS answered SnapshotQuotaExceeded: {}",
            message.unwrap_or("no message")
        ),
    }
    .into()
}

fn not_found(identifier: &str, region: &str, also: Option<&'static str>) -> SnapshotError {
    SnapshotError::DatabaseNotFound {
        db_identifier: identifier.to_owned(),
        region: region.to_owned(),
        also: also.unwrap_or(""),
    }
}
