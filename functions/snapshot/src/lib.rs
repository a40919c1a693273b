//! `snapshot`: creates a manual snapshot of one RDS DB instance, or of an
//! Aurora DB cluster when the identifier names one, tagged as this module's.
//!
//! Before any call that changes state it checks the input, that the database
//! exists and can be snapshotted now, and that the manual snapshot quota has
//! room. The snapshot identifier derives from the database and the execution's
//! start time, so a retry of the same execution finds its own snapshot
//! (`DBSnapshotAlreadyExists`) and reports it instead of failing.

use backup_core::config::{Env, ModuleSettings};
use backup_core::naming::{self, MAX_DB_IDENTIFIER_LEN};
use backup_core::rds::{DatabaseInfo, Rds, Refusal};
use backup_core::types::{DatabaseKind, SnapshotRecord, SnapshotRequest};
use backup_core::{Error, input, quota, tags};
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
pub type Clients = Rds;

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
        })
    }
}

/// Creates (or finds, on a retry) this execution's snapshot of one database.
pub async fn handle(rds: &Rds, config: &Config, event: Value) -> Result<SnapshotRecord, Error> {
    let request: SnapshotRequest = input::parse(event)?;
    let db_identifier = naming::rds_identifier("db_identifier", &request.db_identifier, MAX_DB_IDENTIFIER_LEN)?;
    if request.execution.execution_id.trim().is_empty() {
        return Err(Error::invalid_input("execution.execution_id", "must not be empty"));
    }
    let region = rds.region.as_str();
    let database = rds
        .describe_database(&db_identifier, request.kind)
        .await?
        .ok_or_else(|| not_found(&db_identifier, region, request.kind != Some(DatabaseKind::Instance)))?;
    check_can_snapshot(&database, region)?;
    quota::ensure_room(rds, database.kind).await?;

    let snapshot_id = naming::snapshot_id(
        &database.identifier,
        database.kind,
        request.execution.execution_start_time,
        &config.settings.instance,
    );
    let snapshot_tags = tags::snapshot_tags(&config.settings, &database.identifier, &request.execution.execution_id);
    let record = match rds
        .create_snapshot(database.kind, &database.identifier, &snapshot_id, snapshot_tags)
        .await
    {
        Ok(Some(info)) => SnapshotRecord {
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
        Ok(None) | Err(Refusal::AlreadyExists) => {
            tracing::info!(db_identifier = %database.identifier, %snapshot_id, "snapshot already exists; checking it is ours");
            rds.require_snapshot(database.kind, &snapshot_id).await?.adopt(
                &config.settings,
                &database.identifier,
                region,
            )?
        }
        Err(Refusal::InvalidState(refusal)) => {
            return Err(busy(&database, region, format!("busy: {}", refusal.message)));
        }
        Err(Refusal::QuotaExceeded(refusal)) => {
            return Err(Error::SnapshotQuotaExceeded {
                kind: database.kind.label(),
                region: region.to_owned(),
                detail: format!("RDS answered SnapshotQuotaExceeded: {}", refusal.message),
            });
        }
        Err(Refusal::NotFound) => {
            return Err(not_found(
                &database.identifier,
                region,
                database.kind == DatabaseKind::Cluster,
            ));
        }
        Err(Refusal::Failed(failure)) => return Err(failure.into()),
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

/// Whether the database can be snapshotted now: busy statuses are retried,
/// unavailable ones fail at once. Any other status (including ones AWS adds
/// later) is left for RDS to judge.
fn check_can_snapshot(database: &DatabaseInfo, region: &str) -> Result<(), Error> {
    if let Some(cluster) = &database.cluster {
        return Err(Error::DatabaseNotAvailable {
            kind: database.kind.label(),
            db_identifier: database.identifier.clone(),
            region: region.to_owned(),
            reason: format!(
                "it is a member of Aurora DB cluster {cluster}, which RDS backs up as a whole; \
                 list the cluster identifier {cluster} instead"
            ),
        });
    }
    let (busy_statuses, unavailable) = match database.kind {
        DatabaseKind::Instance => (&INSTANCE_BUSY[..], &INSTANCE_UNAVAILABLE[..]),
        DatabaseKind::Cluster => (&CLUSTER_BUSY[..], &CLUSTER_UNAVAILABLE[..]),
    };
    let status = database.status.as_str();
    if busy_statuses.contains(&status) {
        return Err(busy(database, region, status.to_owned()));
    }
    if unavailable.contains(&status) {
        return Err(Error::DatabaseNotAvailable {
            kind: database.kind.label(),
            db_identifier: database.identifier.clone(),
            region: region.to_owned(),
            reason: format!("its status is {status}"),
        });
    }
    Ok(())
}

fn busy(database: &DatabaseInfo, region: &str, status: String) -> Error {
    Error::DatabaseBusy {
        kind: database.kind.label(),
        db_identifier: database.identifier.clone(),
        region: region.to_owned(),
        status,
    }
}

/// `searched_clusters`: whether the identifier was looked up as a DB cluster too.
fn not_found(identifier: &str, region: &str, searched_clusters: bool) -> Error {
    Error::DatabaseNotFound {
        db_identifier: identifier.to_owned(),
        region: region.to_owned(),
        also: if searched_clusters { " or DB cluster" } else { "" },
    }
}
