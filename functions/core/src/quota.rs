//! The manual-snapshot quota pre-check. RDS answers `SnapshotQuotaExceeded`
//! both for a full quota and for a full set of cross-region copy slots; reading
//! the quota first tells the two apart. A pre-check never blocks a backup: when
//! the quota cannot be read, it logs a warning and lets the backup go on.

use crate::aws::precheck_config;
use crate::error::{AwsFailure, Error};
use crate::rds::Rds;
use crate::types::DatabaseKind;

/// Manual snapshots used and allowed in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    pub used: i64,
    pub max: i64,
}

impl QuotaUsage {
    pub fn is_full(self) -> bool {
        self.used >= self.max
    }
}

/// The `DescribeAccountAttributes` quota name for a kind of snapshot.
pub fn quota_name(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Instance => "ManualSnapshots",
        DatabaseKind::Cluster => "ManualClusterSnapshots",
    }
}

/// Reads the manual snapshot quota of `kind`; `None` (with a warning logged)
/// when it cannot be read.
pub async fn read_usage(rds: &Rds, kind: DatabaseKind) -> Option<QuotaUsage> {
    let name = quota_name(kind);
    let region = rds.region.as_str();
    let result = rds
        .client
        .describe_account_attributes()
        .customize()
        .config_override(precheck_config())
        .send()
        .await;
    let usage = match result {
        Ok(output) => output
            .account_quotas()
            .iter()
            .find(|q| q.account_quota_name() == Some(name))
            .and_then(|q| {
                Some(QuotaUsage {
                    used: q.used()?,
                    max: q.max()?,
                })
            }),
        Err(err) => {
            let failure = AwsFailure::from_sdk("DescribeAccountAttributes", &err);
            tracing::warn!(region, quota = name, error = %failure, "snapshot quota could not be read; going on without the pre-check");
            return None;
        }
    };
    if usage.is_none() {
        tracing::warn!(
            region,
            quota = name,
            "snapshot quota not reported; going on without the pre-check"
        );
    }
    usage
}

/// Fails with `SnapshotQuotaExceeded` when the quota is known to be used up.
pub async fn ensure_room(rds: &Rds, kind: DatabaseKind) -> Result<Option<QuotaUsage>, Error> {
    let usage = read_usage(rds, kind).await;
    let region = rds.region.as_str();
    match usage {
        Some(u) if u.is_full() => Err(Error::SnapshotQuotaExceeded {
            kind: kind.label(),
            region: region.to_owned(),
            detail: format!("{} of {} used", u.used, u.max),
        }),
        Some(u) => {
            tracing::info!(
                region,
                quota = quota_name(kind),
                used = u.used,
                max = u.max,
                "snapshot quota has room"
            );
            Ok(usage)
        }
        None => Ok(None),
    }
}
