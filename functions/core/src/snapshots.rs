//! One view over DB snapshots and DB cluster snapshots, so that the functions
//! treat both kinds alike.

use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Tag};
use chrono::{DateTime, Utc};

use crate::config::ModuleSettings;
use crate::error::{AwsFailure, CoreError};
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
    pub encrypted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub percent_progress: Option<i32>,
    /// For a cross-region copy: the ARN of its source, as RDS reports it.
    pub source_arn: Option<String>,
    pub tags: Vec<Tag>,
}

pub fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
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
            encrypted: s.encrypted().unwrap_or(false),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            percent_progress: s.percent_progress(),
            source_arn: s.source_db_snapshot_identifier().map(str::to_owned),
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
            encrypted: s.storage_encrypted().unwrap_or(false),
            created_at: s.snapshot_create_time().and_then(to_chrono),
            percent_progress: s.percent_progress(),
            source_arn: s.source_db_cluster_snapshot_arn().map(str::to_owned),
            tags: s.tag_list().to_vec(),
        }
    }
}

impl SnapshotInfo {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    pub fn has_failed(&self) -> bool {
        FAILED_STATUSES.contains(&self.status.as_str())
    }

    /// The record of a snapshot an earlier attempt of this execution created;
    /// `IdentifierConflict` when the snapshot with our identifier is not ours.
    pub fn adopt(
        self,
        settings: &ModuleSettings,
        db_identifier: &str,
        region: &str,
    ) -> Result<SnapshotRecord, CoreError> {
        if !tags::is_ours(&self.tags, settings, Some(db_identifier)) {
            return Err(CoreError::IdentifierConflict {
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
            encrypted: self.encrypted,
            status: self.status,
            created: false,
        })
    }
}

/// Every manual snapshot of the given kinds in the client's region: pages of
/// 100, tags read from `TagList` (no per-snapshot calls). The two kinds are
/// listed at the same time; DB snapshots come first in the result.
pub async fn list_manual(rds: &aws_sdk_rds::Client, kinds: &[DatabaseKind]) -> Result<Vec<SnapshotInfo>, CoreError> {
    let instances = async {
        if !kinds.contains(&DatabaseKind::Instance) {
            return Ok(Vec::new());
        }
        let mut snapshots = Vec::new();
        let mut pages = rds
            .describe_db_snapshots()
            .snapshot_type("manual")
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBSnapshots", &err))?;
            snapshots.extend(page.db_snapshots().iter().map(SnapshotInfo::from));
        }
        Ok::<_, CoreError>(snapshots)
    };
    let clusters = async {
        if !kinds.contains(&DatabaseKind::Cluster) {
            return Ok(Vec::new());
        }
        let mut snapshots = Vec::new();
        let mut pages = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .max_records(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBClusterSnapshots", &err))?;
            snapshots.extend(page.db_cluster_snapshots().iter().map(SnapshotInfo::from));
        }
        Ok(snapshots)
    };
    let (mut snapshots, clusters) = futures_util::future::try_join(instances, clusters).await?;
    snapshots.extend(clusters);
    Ok(snapshots)
}

/// Looks a snapshot up by identifier; `None` when it does not exist.
pub async fn describe(
    rds: &aws_sdk_rds::Client,
    kind: DatabaseKind,
    snapshot_id: &str,
) -> Result<Option<SnapshotInfo>, CoreError> {
    match kind {
        DatabaseKind::Instance => {
            match rds
                .describe_db_snapshots()
                .db_snapshot_identifier(snapshot_id)
                .send()
                .await
            {
                Ok(out) => Ok(out.db_snapshots().first().map(SnapshotInfo::from)),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_db_snapshot_not_found_fault()) =>
                {
                    Ok(None)
                }
                Err(err) => Err(AwsFailure::from_sdk("DescribeDBSnapshots", &err).into()),
            }
        }
        DatabaseKind::Cluster => {
            let result = rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(snapshot_id)
                .send()
                .await;
            match result {
                Ok(out) => Ok(out.db_cluster_snapshots().first().map(SnapshotInfo::from)),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_db_cluster_snapshot_not_found_fault()) =>
                {
                    Ok(None)
                }
                Err(err) => Err(AwsFailure::from_sdk("DescribeDBClusterSnapshots", &err).into()),
            }
        }
    }
}

/// Like [`describe`], but a missing snapshot is `SnapshotNotFound`.
pub async fn require(
    rds: &aws_sdk_rds::Client,
    kind: DatabaseKind,
    snapshot_id: &str,
    region: &str,
) -> Result<SnapshotInfo, CoreError> {
    describe(rds, kind, snapshot_id)
        .await?
        .ok_or_else(|| CoreError::SnapshotNotFound {
            snapshot_id: snapshot_id.to_owned(),
            region: region.to_owned(),
        })
}
