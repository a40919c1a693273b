//! The RDS layer: every RDS call the functions make, written once for DB
//! instances and Aurora DB clusters alike. The SDK has a separate operation
//! for each kind (`CreateDBSnapshot` / `CreateDBClusterSnapshot`...); callers
//! pass a [`DatabaseKind`] and get one [`SnapshotInfo`], [`DatabaseInfo`] or
//! [`Refusal`] back, whatever the kind.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use aws_config::{Region, SdkConfig};
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use crate::config::ModuleSettings;
use crate::error::{AwsFailure, Error};
use crate::selection::Candidate;
use crate::tags;
use crate::types::{DatabaseKind, SnapshotRecord};

/// Snapshot statuses after which a snapshot will never become available.
pub const FAILED_STATUSES: [&str; 5] = [
    "failed",
    "deleted",
    "deleting",
    "incompatible-restore",
    "incompatible-parameters",
];

/// Engines whose option groups can hold options a snapshot keeps (persistent or permanent,
/// such as Oracle's and SQL Server's `TDE`).
const ENGINES_WITH_PERSISTENT_OPTIONS: [&str; 2] = ["oracle", "sqlserver"];

/// Whether a snapshot of this kind and engine can have been taken with options it keeps: a
/// DB instance snapshot of Oracle or SQL Server (DB cluster snapshots have no option group).
pub fn may_keep_options(kind: DatabaseKind, engine: &str) -> bool {
    let engine = engine.to_ascii_lowercase();
    kind == DatabaseKind::Instance && ENGINES_WITH_PERSISTENT_OPTIONS.iter().any(|e| engine.starts_with(e))
}

/// An RDS client and the region it talks to.
#[derive(Debug, Clone)]
pub struct Rds {
    pub region: String,
    pub client: aws_sdk_rds::Client,
}

/// The fields of a DB or DB cluster snapshot the functions use.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    pub kind: DatabaseKind,
    pub snapshot_id: String,
    pub arn: String,
    pub db_identifier: String,
    pub status: String,
    pub snapshot_type: String,
    pub engine: String,
    pub engine_version: Option<String>,
    /// As RDS describes it; None when an answer leaves it out.
    pub encrypted: Option<bool>,
    /// The ARN of the KMS key an encrypted snapshot is encrypted with.
    pub kms_key_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// A DB snapshot's OriginalSnapshotCreateTime ("doesn't change when the snapshot is
    /// copied", RDS API Reference, DBSnapshot); DB cluster snapshots have no such time.
    pub original_created_at: Option<DateTime<Utc>>,
    pub percent_progress: Option<i32>,
    /// For a cross-region copy: the ARN of its source, as RDS reports it.
    pub source_arn: Option<String>,
    /// The option group a DB snapshot was taken with (cluster snapshots have none).
    pub option_group: Option<String>,
    /// The database's allocated storage when the snapshot was taken, in GiB: an upper bound
    /// of what the snapshot is billed for (snapshots are incremental).
    pub allocated_storage_gib: Option<u32>,
    pub tags: Vec<Tag>,
}

/// The source's copies as the vault account sees them (`account`: the source account). There
/// the source's role may tag a snapshot, so the tags alone do not decide; what RDS records,
/// and no one can change, does (API Reference, DBSnapshot SourceDBSnapshotIdentifier and
/// DBInstanceIdentifier, DBClusterSnapshot SourceDBClusterSnapshotArn and DBClusterIdentifier):
/// - a snapshot carrying our managed-by tag that RDS does not record as copied from
///   `account`'s snapshots is set apart (returned second): a tag could mark one of the vault's
///   own as ours;
/// - a copy's source-db tag becomes, in memory only, the database RDS records: a tag moved to
///   another database could put a copy in no tier there, or make that database look copied.
///
/// The snapshots not ours stay with the copies (first), as listed.
pub fn copies_made_from(
    snapshots: Vec<SnapshotInfo>,
    account: &str,
    settings: &ModuleSettings,
) -> (Vec<SnapshotInfo>, Vec<SnapshotInfo>) {
    let (mut copies, set_apart): (Vec<SnapshotInfo>, Vec<SnapshotInfo>) = snapshots
        .into_iter()
        .partition(|s| s.copied_from_account() == Some(account) || !tags::is_ours(&s.tags, settings, None));
    for copy in copies.iter_mut().filter(|s| s.copied_from_account() == Some(account)) {
        copy.tags.retain(|tag| tag.key() != Some(tags::SOURCE_DB));
        copy.tags
            .push(Tag::builder().key(tags::SOURCE_DB).value(&copy.db_identifier).build());
    }
    (copies, set_apart)
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn owned(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

impl From<&DbSnapshot> for SnapshotInfo {
    fn from(s: &DbSnapshot) -> Self {
        SnapshotInfo {
            kind: DatabaseKind::Instance,
            snapshot_id: owned(s.db_snapshot_identifier()),
            arn: owned(s.db_snapshot_arn()),
            db_identifier: owned(s.db_instance_identifier()),
            status: owned(s.status()),
            snapshot_type: owned(s.snapshot_type()),
            engine: owned(s.engine()),
            engine_version: s.engine_version().map(str::to_owned),
            encrypted: s.encrypted(),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            original_created_at: s.original_snapshot_create_time().and_then(to_chrono),
            percent_progress: s.percent_progress(),
            source_arn: s.source_db_snapshot_identifier().map(str::to_owned),
            option_group: s.option_group_name().map(str::to_owned),
            allocated_storage_gib: s.allocated_storage().and_then(|gib| u32::try_from(gib).ok()),
            tags: s.tag_list().to_vec(),
        }
    }
}

impl From<&DbClusterSnapshot> for SnapshotInfo {
    fn from(s: &DbClusterSnapshot) -> Self {
        SnapshotInfo {
            kind: DatabaseKind::Cluster,
            snapshot_id: owned(s.db_cluster_snapshot_identifier()),
            arn: owned(s.db_cluster_snapshot_arn()),
            db_identifier: owned(s.db_cluster_identifier()),
            status: owned(s.status()),
            snapshot_type: owned(s.snapshot_type()),
            engine: owned(s.engine()),
            engine_version: s.engine_version().map(str::to_owned),
            encrypted: s.storage_encrypted(),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            original_created_at: None,
            percent_progress: s.percent_progress(),
            source_arn: s.source_db_cluster_snapshot_arn().map(str::to_owned),
            option_group: None,
            allocated_storage_gib: s.allocated_storage().and_then(|gib| u32::try_from(gib).ok()),
            tags: s.tag_list().to_vec(),
        }
    }
}

impl SnapshotInfo {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// When its data was taken: for a copy (cross-region or in the vault) its original's
    /// creation, not the copy's; a DB cluster snapshot's own creation.
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        self.original_created_at.or(self.created_at)
    }

    /// The account RDS records this snapshot as copied from (its source's ARN), if any: no
    /// tag changes it (API Reference, DBSnapshot SourceDBSnapshotIdentifier, "only has a value
    /// in the case of a cross-account or cross-Region copy"; DBClusterSnapshot
    /// SourceDBClusterSnapshotArn).
    pub fn copied_from_account(&self) -> Option<&str> {
        self.source_arn.as_deref().and_then(|arn| arn.split(':').nth(4))
    }

    pub fn has_failed(&self) -> bool {
        FAILED_STATUSES.contains(&self.status.as_str())
    }

    /// The record of a snapshot an earlier attempt of this execution created;
    /// `IdentifierConflict` when the snapshot with our identifier is not ours.
    pub fn adopt(self, settings: &ModuleSettings, db_identifier: &str, region: &str) -> Result<SnapshotRecord, Error> {
        if !tags::is_ours(&self.tags, settings, Some(db_identifier)) {
            return Err(Error::IdentifierConflict {
                resource: "snapshot",
                id: self.snapshot_id,
                region: region.to_owned(),
                reason: format!(
                    "its tags do not carry {}={} and {}={db_identifier}",
                    tags::MANAGED_BY,
                    settings.instance,
                    tags::SOURCE_DB
                ),
            });
        }
        Ok(SnapshotRecord {
            db_identifier: db_identifier.to_owned(),
            kind: self.kind,
            snapshot_id: self.snapshot_id,
            snapshot_arn: self.arn,
            region: region.to_owned(),
            engine: self.engine,
            encrypted: self.encrypted.unwrap_or(false),
            status: self.status,
            created: false,
        })
    }
}

/// A database as RDS describes it, whole (see [`Rds::describe_raw`]).
#[derive(Debug, Clone)]
pub enum Described {
    Instance(Box<DbInstance>),
    Cluster(Box<DbCluster>),
}

/// The fields of a DB instance or DB cluster the functions use.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseInfo {
    pub kind: DatabaseKind,
    pub identifier: String,
    pub engine: String,
    pub encrypted: bool,
    pub status: String,
    /// For a DB instance that belongs to an Aurora DB cluster: the cluster.
    pub cluster: Option<String>,
    /// Days RDS keeps automated backups (0: off, and no point-in-time recovery).
    pub backup_retention_days: Option<i32>,
    /// The latest time point-in-time recovery can restore to ("typically within 5 minutes of
    /// the current time", RDS User Guide, Restoring a DB instance to a specified time).
    pub latest_restorable_time: Option<DateTime<Utc>>,
    /// For a read replica: its source ("All read replica DB instances are created with backups
    /// disabled", CreateDBInstanceReadReplica; its point-in-time recovery is the source's).
    pub replica_of: Option<String>,
    /// The daily time range (UTC, `hh24:mi-hh24:mi`) RDS takes automated backups in.
    pub preferred_backup_window: Option<String>,
    /// A retention change RDS holds for the next maintenance window (`PendingModifiedValues`).
    pub pending_backup_retention_days: Option<i32>,
}

impl From<&DbInstance> for DatabaseInfo {
    fn from(db: &DbInstance) -> Self {
        DatabaseInfo {
            kind: DatabaseKind::Instance,
            identifier: owned(db.db_instance_identifier()),
            engine: owned(db.engine()),
            encrypted: db.storage_encrypted().unwrap_or(false),
            status: owned(db.db_instance_status()),
            cluster: db.db_cluster_identifier().map(str::to_owned),
            backup_retention_days: db.backup_retention_period(),
            latest_restorable_time: db.latest_restorable_time().and_then(to_chrono),
            replica_of: db
                .read_replica_source_db_instance_identifier()
                .or(db.read_replica_source_db_cluster_identifier())
                .map(str::to_owned),
            preferred_backup_window: db.preferred_backup_window().map(str::to_owned),
            pending_backup_retention_days: db
                .pending_modified_values()
                .and_then(|pending| pending.backup_retention_period()),
        }
    }
}

impl From<&DbCluster> for DatabaseInfo {
    fn from(db: &DbCluster) -> Self {
        DatabaseInfo {
            kind: DatabaseKind::Cluster,
            identifier: owned(db.db_cluster_identifier()),
            engine: owned(db.engine()),
            encrypted: db.storage_encrypted().unwrap_or(false),
            status: owned(db.status()),
            cluster: None,
            backup_retention_days: db.backup_retention_period(),
            latest_restorable_time: db.latest_restorable_time().and_then(to_chrono),
            replica_of: db.replication_source_identifier().map(str::to_owned),
            preferred_backup_window: db.preferred_backup_window().map(str::to_owned),
            pending_backup_retention_days: db
                .pending_modified_values()
                .and_then(|pending| pending.backup_retention_period()),
        }
    }
}

/// Why RDS refused to create, copy or delete a snapshot, whatever the kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A snapshot with the target identifier exists already.
    AlreadyExists,
    /// The database, or the source snapshot, does not exist.
    NotFound,
    /// The database (create) or the source snapshot (copy) is not in a state for it.
    InvalidState(AwsFailure),
    /// `SnapshotQuotaExceeded`: the manual snapshot quota, or for a copy the
    /// destination's copy slots.
    QuotaExceeded(AwsFailure),
    /// Any other failure.
    Failed(AwsFailure),
}

/// RDS error codes by what they mean, the same for both kinds (the codes the
/// SDK's `is_*_fault` methods test; the API reference lists them per action).
const ALREADY_EXISTS: [&str; 2] = ["DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"];
const NOT_FOUND: [&str; 4] = [
    "DBInstanceNotFound",
    "DBClusterNotFoundFault",
    "DBSnapshotNotFound",
    "DBClusterSnapshotNotFoundFault",
];
const QUOTA_EXCEEDED: &str = "SnapshotQuotaExceeded";

impl Refusal {
    /// `invalid_state`: the code by which this operation says that what it acts
    /// on (the database for a create, the source snapshot for a copy) is not in
    /// a state for it; the operations' other invalid-state codes are failures.
    fn from_sdk<E>(action: &'static str, invalid_state: &str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        match err.code() {
            Some(code) if ALREADY_EXISTS.contains(&code) => Refusal::AlreadyExists,
            Some(code) if NOT_FOUND.contains(&code) => Refusal::NotFound,
            Some(code) if code == invalid_state => Refusal::InvalidState(AwsFailure::from_sdk(action, err)),
            Some(QUOTA_EXCEEDED) => Refusal::QuotaExceeded(AwsFailure::from_sdk(action, err)),
            _ => Refusal::Failed(AwsFailure::from_sdk(action, err)),
        }
    }
}

/// `Ok(None)` for a missing resource, the error of `action` otherwise.
fn none_if_not_found<T, E>(
    action: &'static str,
    result: Result<T, SdkError<E, HttpResponse>>,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.code().is_some_and(|code| NOT_FOUND.contains(&code)) => Ok(None),
        Err(err) => Err(AwsFailure::from_sdk(action, &err).into()),
    }
}

impl Rds {
    /// The client of the configuration's own region.
    pub fn new(sdk_config: &SdkConfig) -> Result<Self, Error> {
        Ok(Rds {
            region: crate::aws::region_of(sdk_config)?,
            client: aws_sdk_rds::Client::new(sdk_config),
        })
    }

    /// A client of another region, sharing everything else with `sdk_config`.
    pub fn in_region(sdk_config: &SdkConfig, region: &str) -> Self {
        let config = aws_sdk_rds::config::Builder::from(sdk_config)
            .region(Region::new(region.to_owned()))
            .build();
        Rds {
            region: region.to_owned(),
            client: aws_sdk_rds::Client::from_conf(config),
        }
    }

    /// A client of `region` that signs with `credentials` (another account's role),
    /// sharing everything else with this one.
    pub fn with_credentials(&self, region: &str, credentials: aws_sdk_rds::config::Credentials) -> Self {
        let config = self
            .client
            .config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .credentials_provider(credentials)
            .build();
        Rds {
            region: region.to_owned(),
            client: aws_sdk_rds::Client::from_conf(config),
        }
    }

    /// The database named `identifier`: a DB instance or, failing that (or
    /// when `kind` says so), an Aurora DB cluster. `None` when neither exists.
    pub async fn describe_database(
        &self,
        identifier: &str,
        kind: Option<DatabaseKind>,
    ) -> Result<Option<DatabaseInfo>, Error> {
        let found = self.find_database(identifier, kind).await?;
        Ok(found.map(|database| DatabaseInfo {
            identifier: identifier.to_owned(),
            ..database
        }))
    }

    async fn find_database(&self, identifier: &str, kind: Option<DatabaseKind>) -> Result<Option<DatabaseInfo>, Error> {
        Ok(self
            .describe_raw(identifier, kind)
            .await?
            .map(|described| match described {
                Described::Instance(instance) => DatabaseInfo::from(instance.as_ref()),
                Described::Cluster(cluster) => DatabaseInfo::from(cluster.as_ref()),
            }))
    }

    /// The database named `identifier` as RDS describes it, whole: a DB instance or, failing
    /// that (or when `kind` says so), an Aurora DB cluster. `None` when neither exists.
    pub async fn describe_raw(&self, identifier: &str, kind: Option<DatabaseKind>) -> Result<Option<Described>, Error> {
        if kind != Some(DatabaseKind::Cluster) {
            let action = "DescribeDBInstances";
            let result = self
                .client
                .describe_db_instances()
                .db_instance_identifier(identifier)
                .send()
                .await;
            let found = none_if_not_found(action, result)?;
            if let Some(instance) = found.and_then(|out| out.db_instances.unwrap_or_default().into_iter().next()) {
                return Ok(Some(Described::Instance(Box::new(instance))));
            }
            if kind == Some(DatabaseKind::Instance) {
                return Ok(None);
            }
        }
        let action = "DescribeDBClusters";
        let result = self
            .client
            .describe_db_clusters()
            .db_cluster_identifier(identifier)
            .send()
            .await;
        Ok(none_if_not_found(action, result)?
            .and_then(|out| out.db_clusters.unwrap_or_default().into_iter().next())
            .map(|cluster| Described::Cluster(Box::new(cluster))))
    }

    /// Creates a manual snapshot of the database, with `tags`. `Ok(None)` when
    /// RDS accepted it without describing it.
    pub async fn create_snapshot(
        &self,
        kind: DatabaseKind,
        db_identifier: &str,
        snapshot_id: &str,
        tags: Vec<Tag>,
    ) -> Result<Option<SnapshotInfo>, Refusal> {
        match kind {
            DatabaseKind::Instance => {
                let action = "CreateDBSnapshot";
                self.client
                    .create_db_snapshot()
                    .db_instance_identifier(db_identifier)
                    .db_snapshot_identifier(snapshot_id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|out| out.db_snapshot().map(SnapshotInfo::from))
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBInstanceState", &err))
            }
            DatabaseKind::Cluster => {
                let action = "CreateDBClusterSnapshot";
                self.client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(db_identifier)
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|out| out.db_cluster_snapshot().map(SnapshotInfo::from))
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBClusterStateFault", &err))
            }
        }
    }

    /// Copies the snapshot `source_arn` (of another region) into this region
    /// as `target_id`, encrypted with `kms_key_id` when given, with `tags`.
    /// `Ok(None)` when RDS accepted it without describing it.
    pub async fn copy_snapshot(
        &self,
        kind: DatabaseKind,
        source_arn: &str,
        target_id: &str,
        kms_key_id: Option<String>,
        tags: Vec<Tag>,
        option_group: Option<String>,
    ) -> Result<Option<SnapshotInfo>, Refusal> {
        match kind {
            DatabaseKind::Instance => {
                let action = "CopyDBSnapshot";
                self.client
                    .copy_db_snapshot()
                    .source_db_snapshot_identifier(source_arn)
                    .target_db_snapshot_identifier(target_id)
                    .set_kms_key_id(kms_key_id)
                    .set_tags(Some(tags))
                    .set_option_group_name(option_group)
                    .send()
                    .await
                    .map(|out| out.db_snapshot().map(SnapshotInfo::from))
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBSnapshotState", &err))
            }
            DatabaseKind::Cluster => {
                let action = "CopyDBClusterSnapshot";
                self.client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(source_arn)
                    .target_db_cluster_snapshot_identifier(target_id)
                    .set_kms_key_id(kms_key_id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|out| out.db_cluster_snapshot().map(SnapshotInfo::from))
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBClusterSnapshotStateFault", &err))
            }
        }
    }

    /// Sets one tag on a snapshot (by ARN); a snapshot that is gone is left so.
    pub async fn tag_snapshot(&self, arn: &str, key: &str, value: &str) -> Result<(), Error> {
        let result = self
            .client
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await;
        none_if_not_found("AddTagsToResource", result).map(drop)
    }

    /// Lets `account` copy or restore the manual snapshot (`restore` attribute;
    /// `share: false` takes that away again). Adding an account that is already there, or
    /// removing one that is not, changes nothing. A snapshot that is gone: `Refusal::NotFound`.
    pub async fn share_snapshot(
        &self,
        kind: DatabaseKind,
        snapshot_id: &str,
        account: &str,
        share: bool,
    ) -> Result<(), Refusal> {
        let values = Some(vec![account.to_owned()]);
        let (added, removed) = if share { (values, None) } else { (None, values) };
        match kind {
            DatabaseKind::Instance => {
                let action = "ModifyDBSnapshotAttribute";
                self.client
                    .modify_db_snapshot_attribute()
                    .db_snapshot_identifier(snapshot_id)
                    .attribute_name("restore")
                    .set_values_to_add(added)
                    .set_values_to_remove(removed)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBSnapshotState", &err))
            }
            DatabaseKind::Cluster => {
                let action = "ModifyDBClusterSnapshotAttribute";
                self.client
                    .modify_db_cluster_snapshot_attribute()
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .attribute_name("restore")
                    .set_values_to_add(added)
                    .set_values_to_remove(removed)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| Refusal::from_sdk(action, "InvalidDBClusterSnapshotStateFault", &err))
            }
        }
    }

    /// Deletes a snapshot; a snapshot that is already gone counts as deleted.
    pub async fn delete_snapshot(&self, kind: DatabaseKind, snapshot_id: &str) -> Result<(), Error> {
        match kind {
            DatabaseKind::Instance => {
                let action = "DeleteDBSnapshot";
                let result = self
                    .client
                    .delete_db_snapshot()
                    .db_snapshot_identifier(snapshot_id)
                    .send()
                    .await;
                none_if_not_found(action, result).map(drop)
            }
            DatabaseKind::Cluster => {
                let action = "DeleteDBClusterSnapshot";
                let result = self
                    .client
                    .delete_db_cluster_snapshot()
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .send()
                    .await;
                none_if_not_found(action, result).map(drop)
            }
        }
    }

    /// Looks a snapshot up by identifier; `None` when it does not exist.
    pub async fn describe_snapshot(
        &self,
        kind: DatabaseKind,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotInfo>, Error> {
        match kind {
            DatabaseKind::Instance => {
                let action = "DescribeDBSnapshots";
                let result = self
                    .client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(snapshot_id)
                    .send()
                    .await;
                Ok(none_if_not_found(action, result)?
                    .and_then(|out| out.db_snapshots().first().map(SnapshotInfo::from)))
            }
            DatabaseKind::Cluster => {
                let action = "DescribeDBClusterSnapshots";
                let result = self
                    .client
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .send()
                    .await;
                Ok(none_if_not_found(action, result)?
                    .and_then(|out| out.db_cluster_snapshots().first().map(SnapshotInfo::from)))
            }
        }
    }

    /// The option group a DB snapshot was taken with and its options that cannot leave it
    /// (persistent or permanent), when it has any; None for a default option group, which is
    /// empty and cannot be changed.
    pub async fn kept_options(&self, option_group: Option<&str>) -> Result<Option<(String, Vec<String>)>, Error> {
        let Some(option_group) = option_group.filter(|group| !group.starts_with("default:")) else {
            return Ok(None);
        };
        let kept = self.persistent_options(option_group).await?;
        Ok((!kept.is_empty()).then(|| (option_group.to_owned(), kept)))
    }

    /// The options of an option group that cannot leave it (persistent or
    /// permanent, such as Oracle's and SQL Server's `TDE`): a cross-region copy
    /// of a snapshot taken with them needs an option group in the destination
    /// that has them too.
    pub async fn persistent_options(&self, option_group: &str) -> Result<Vec<String>, Error> {
        let action = "DescribeOptionGroups";
        let out = self
            .client
            .describe_option_groups()
            .option_group_name(option_group)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk(action, &err))?;
        Ok(out
            .option_groups_list()
            .iter()
            .flat_map(|group| group.options())
            .filter(|option| option.persistent() == Some(true) || option.permanent() == Some(true))
            .filter_map(|option| option.option_name().map(str::to_owned))
            .collect())
    }

    /// Like [`Rds::describe_snapshot`], but a missing snapshot is `SnapshotNotFound`.
    pub async fn require_snapshot(&self, kind: DatabaseKind, snapshot_id: &str) -> Result<SnapshotInfo, Error> {
        self.describe_snapshot(kind, snapshot_id)
            .await?
            .ok_or_else(|| Error::SnapshotNotFound {
                snapshot_id: snapshot_id.to_owned(),
                region: self.region.clone(),
            })
    }

    /// Every DB instance and DB cluster of this region the module can back up, with
    /// its tags (from `TagList`: no per-database calls), pages of 100, both kinds
    /// listed at the same time. Left out: an instance of a cluster (the cluster is
    /// snapshotted, not its members) and the engines RDS's API also lists but RDS
    /// snapshots do not back up (DocumentDB, Neptune).
    pub async fn list_databases(&self) -> Result<Vec<Candidate>, Error> {
        let tags_of = |list: &[Tag]| -> BTreeMap<String, String> {
            list.iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect()
        };
        let backed_up = |engine: Option<&str>| !matches!(engine, Some("docdb" | "neptune"));
        let instances = async {
            let mut found = Vec::new();
            let mut pages = self
                .client
                .describe_db_instances()
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBInstances", &err))?;
                found.extend(
                    page.db_instances()
                        .iter()
                        .filter(|i| i.db_cluster_identifier().is_none() && backed_up(i.engine()))
                        .filter_map(|i| {
                            Some(Candidate {
                                identifier: i.db_instance_identifier()?.to_owned(),
                                kind: DatabaseKind::Instance,
                                tags: tags_of(i.tag_list()),
                            })
                        }),
                );
            }
            Ok::<_, Error>(found)
        };
        let clusters = async {
            let mut found = Vec::new();
            let mut pages = self
                .client
                .describe_db_clusters()
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBClusters", &err))?;
                found.extend(
                    page.db_clusters()
                        .iter()
                        .filter(|c| backed_up(c.engine()))
                        .filter_map(|c| {
                            Some(Candidate {
                                identifier: c.db_cluster_identifier()?.to_owned(),
                                kind: DatabaseKind::Cluster,
                                tags: tags_of(c.tag_list()),
                            })
                        }),
                );
            }
            Ok(found)
        };
        let (mut databases, clusters) = futures_util::future::try_join(instances, clusters).await?;
        databases.extend(clusters);
        Ok(databases)
    }

    /// The manual snapshots of one database: pages of 100, tags read from `TagList`.
    pub async fn list_database_snapshots(
        &self,
        kind: DatabaseKind,
        db_identifier: &str,
    ) -> Result<Vec<SnapshotInfo>, Error> {
        self.list_manual(kind, Some(db_identifier)).await
    }

    /// Every manual snapshot of the given kinds in this region: pages of 100,
    /// tags read from `TagList` (no per-snapshot calls). The two kinds are
    /// listed at the same time; DB snapshots come first in the result.
    pub async fn list_manual_snapshots(&self, kinds: &[DatabaseKind]) -> Result<Vec<SnapshotInfo>, Error> {
        let listed = |kind| async move {
            if kinds.contains(&kind) {
                self.list_manual(kind, None).await
            } else {
                Ok(Vec::new())
            }
        };
        let (instances, clusters) = (listed(DatabaseKind::Instance), listed(DatabaseKind::Cluster));
        let (mut snapshots, clusters) = futures_util::future::try_join(instances, clusters).await?;
        snapshots.extend(clusters);
        Ok(snapshots)
    }

    /// The manual snapshots of one kind, of one database or all: pages of 100, tags from `TagList`.
    async fn list_manual(&self, kind: DatabaseKind, db_identifier: Option<&str>) -> Result<Vec<SnapshotInfo>, Error> {
        let db_identifier = db_identifier.map(str::to_owned);
        let mut snapshots = Vec::new();
        match kind {
            DatabaseKind::Instance => {
                let mut pages = self
                    .client
                    .describe_db_snapshots()
                    .set_db_instance_identifier(db_identifier)
                    .snapshot_type("manual")
                    .max_records(100)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBSnapshots", &err))?;
                    snapshots.extend(page.db_snapshots().iter().map(SnapshotInfo::from));
                }
            }
            DatabaseKind::Cluster => {
                let mut pages = self
                    .client
                    .describe_db_cluster_snapshots()
                    .set_db_cluster_identifier(db_identifier)
                    .snapshot_type("manual")
                    .max_records(100)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBClusterSnapshots", &err))?;
                    snapshots.extend(page.db_cluster_snapshots().iter().map(SnapshotInfo::from));
                }
            }
        }
        Ok(snapshots)
    }
}
