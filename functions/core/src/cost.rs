//! What retained backups cost a month, at list prices: the run summary's and the
//! retention plan's estimate. Prices are those of us-east-1 (N. Virginia), read on
//! 2026-12-05 from <https://aws.amazon.com/rds/pricing/> (backup storage),
//! <https://aws.amazon.com/rds/aurora/pricing/> (backup storage) and
//! <https://aws.amazon.com/s3/pricing/> (first 50 TB a month); other regions differ.
//!
//! A snapshot is priced at its database's allocated storage: an upper bound, since
//! snapshots are incremental (each is billed for the blocks no other snapshot of its
//! database holds) and RDS gives backup storage up to a database's size free. The
//! estimate says what the retention could cost at most, not what the bill will say.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rds::SnapshotInfo;
use crate::types::DatabaseKind;

/// When the prices were read, as the estimates cite them.
pub const PRICES_READ_ON: &str = "2026-12-05";
/// The region whose prices these are.
pub const PRICES_REGION: &str = "us-east-1";

/// RDS backup storage beyond the free allowance, USD per GiB-month.
pub const RDS_SNAPSHOT_GIB_MONTH: f64 = 0.095;
/// Aurora backup storage beyond the free allowance, USD per GiB-month.
pub const AURORA_SNAPSHOT_GIB_MONTH: f64 = 0.021;

/// S3 storage, USD per GB-month, by storage class as `ListObjectsV2` names it.
pub const S3_GB_MONTH: [(&str, f64); 7] = [
    ("STANDARD", 0.023),
    ("INTELLIGENT_TIERING", 0.023),
    ("STANDARD_IA", 0.0125),
    ("ONEZONE_IA", 0.01),
    ("GLACIER_IR", 0.004),
    ("GLACIER", 0.0036),
    ("DEEP_ARCHIVE", 0.00099),
];

/// The price of a snapshot's storage, USD per GiB-month: Aurora's for an Aurora
/// cluster's, RDS's for the others (instances and Multi-AZ DB clusters).
pub fn snapshot_price(kind: DatabaseKind, engine: &str) -> f64 {
    if kind == DatabaseKind::Cluster && engine.starts_with("aurora") {
        AURORA_SNAPSHOT_GIB_MONTH
    } else {
        RDS_SNAPSHOT_GIB_MONTH
    }
}

/// The price of an S3 storage class, USD per GB-month (None: a class without a listed price here).
pub fn s3_price(storage_class: &str) -> Option<f64> {
    S3_GB_MONTH
        .iter()
        .find(|(class, _)| *class == storage_class)
        .map(|&(_, price)| price)
}

/// Snapshots retained and their estimated monthly cost, in whole cents (exact to add up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    pub snapshots: usize,
    /// Allocated storage of the snapshots, GiB (an upper bound of the billed storage).
    pub gib: u64,
    /// Estimated monthly cost at list prices, US cents.
    pub monthly_cost_cents: u64,
}

impl Retained {
    /// The snapshots' storage and cost; a snapshot whose size RDS did not report counts 0 GiB.
    pub fn of<'a>(snapshots: impl IntoIterator<Item = &'a SnapshotInfo>) -> Self {
        let mut retained = Retained::default();
        let mut cost = 0.0;
        for snapshot in snapshots {
            let gib = u64::from(snapshot.allocated_storage_gib.unwrap_or(0));
            retained.snapshots += 1;
            retained.gib += gib;
            cost += gib as f64 * snapshot_price(snapshot.kind, &snapshot.engine);
        }
        retained.monthly_cost_cents = (cost * 100.0).round() as u64;
        retained
    }

    pub fn add(&mut self, other: Retained) {
        self.snapshots += other.snapshots;
        self.gib += other.gib;
        self.monthly_cost_cents += other.monthly_cost_cents;
    }
}

/// What the export bucket holds, by storage class (the S3 lifecycle moves exports on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStorage {
    pub bucket: String,
    pub by_class: BTreeMap<String, ClassStorage>,
    /// The listing stopped before its end (a time limit): these are at least the bucket's.
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStorage {
    pub objects: u64,
    pub bytes: u64,
    /// None: no list price known here for this class.
    pub monthly_cost_cents: Option<u64>,
}

/// Bytes as gigabytes (10^9 bytes), as S3 bills its storage.
pub fn gigabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

impl ExportStorage {
    /// Adds an object of `bytes` in `storage_class` (None: STANDARD, as ListObjectsV2 omits it).
    pub fn add_object(&mut self, storage_class: Option<&str>, bytes: u64) {
        let class = self
            .by_class
            .entry(storage_class.unwrap_or("STANDARD").to_owned())
            .or_default();
        class.objects += 1;
        class.bytes += bytes;
    }

    /// Prices each class at its list price, once every object is added.
    pub fn priced(mut self) -> Self {
        for (class, storage) in self.by_class.iter_mut() {
            let gb = gigabytes(storage.bytes);
            storage.monthly_cost_cents = s3_price(class).map(|price| (gb * price * 100.0).round() as u64);
        }
        self
    }

    pub fn bytes(&self) -> u64 {
        self.by_class.values().map(|c| c.bytes).sum()
    }

    /// The classes with a known price, US cents a month.
    pub fn monthly_cost_cents(&self) -> u64 {
        self.by_class.values().filter_map(|c| c.monthly_cost_cents).sum()
    }
}

/// The export bucket's objects by storage class, listed (None: the bucket does not exist); no page
/// is requested after `until` (then `truncated`, the pages read counted). Current objects only:
/// noncurrent versions are not counted.
#[cfg(feature = "export-storage")]
pub async fn export_storage(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    until: Option<std::time::SystemTime>,
) -> Result<Option<ExportStorage>, crate::AwsFailure> {
    let mut storage = ExportStorage {
        bucket: bucket.to_owned(),
        ..ExportStorage::default()
    };
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(page) => page,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_bucket()) => return Ok(None),
            Err(err) => return Err(crate::AwsFailure::from_sdk("ListObjectsV2", &err)),
        };
        for object in page.contents() {
            let bytes = object.size().and_then(|size| u64::try_from(size).ok()).unwrap_or(0);
            storage.add_object(object.storage_class().map(|c| c.as_str()), bytes);
        }
        let more = page.is_truncated() == Some(true);
        if more && until.is_some_and(|until| std::time::SystemTime::now() >= until) {
            storage.truncated = true;
            break;
        }
    }
    Ok(Some(storage.priced()))
}

/// An S3 client for the module's buckets: a custom endpoint (the local AWS) serves buckets by
/// path, since the DNS names of virtual-hosted buckets exist only under AWS's own endpoints;
/// only general-purpose buckets are read (no S3 Express session auth).
#[cfg(feature = "export-storage")]
pub fn s3_client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk_config)
        .force_path_style(sdk_config.endpoint_url().is_some())
        .disable_s3_express_session_auth(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// `$1,234.56`: dollars with thousands separated, as the summary and the plan print them.
pub fn dollars(cents: u64) -> String {
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("${grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(kind: DatabaseKind, engine: &str, gib: Option<u32>) -> SnapshotInfo {
        SnapshotInfo {
            kind,
            snapshot_id: "s".into(),
            arn: "arn".into(),
            db_identifier: "db".into(),
            status: "available".into(),
            snapshot_type: "manual".into(),
            engine: engine.into(),
            engine_version: None,
            encrypted: Some(true),
            kms_key_id: None,
            created_at: None,
            original_created_at: None,
            percent_progress: None,
            source_arn: None,
            option_group: None,
            allocated_storage_gib: gib,
            tags: Vec::new(),
        }
    }

    #[test]
    fn aurora_snapshots_are_priced_as_aurora_backup_storage_and_the_rest_as_rds() {
        let snapshots = [
            snapshot(DatabaseKind::Instance, "postgres", Some(500)),
            snapshot(DatabaseKind::Cluster, "aurora-postgresql", Some(1000)),
            snapshot(DatabaseKind::Cluster, "mysql", Some(100)),
            snapshot(DatabaseKind::Instance, "postgres", None),
        ];
        let retained = Retained::of(&snapshots);
        assert_eq!((retained.snapshots, retained.gib), (4, 1600));
        // 600 GiB at $0.095 and 1,000 GiB at $0.021.
        assert_eq!(retained.monthly_cost_cents, 5700 + 2100);
    }

    #[test]
    fn dollars_group_thousands() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(7), "$0.07");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
        assert_eq!(dollars(100_000), "$1,000.00");
    }

    #[test]
    fn export_storage_adds_up_by_class_and_prices_the_classes_it_knows() {
        let mut storage = ExportStorage::default();
        storage.add_object(None, 30_000_000_000);
        storage.add_object(Some("STANDARD"), 20_000_000_000);
        storage.add_object(Some("DEEP_ARCHIVE"), 1_000_000_000_000);
        storage.add_object(Some("REDUCED_REDUNDANCY"), 5);
        let storage = storage.priced();
        assert_eq!(storage.by_class["STANDARD"].objects, 2);
        assert_eq!(storage.bytes(), 1_050_000_000_005);
        // 50 GB at $0.023 and 1,000 GB at $0.00099; no price known for the last class.
        assert_eq!(storage.by_class["STANDARD"].monthly_cost_cents, Some(115));
        assert_eq!(storage.by_class["DEEP_ARCHIVE"].monthly_cost_cents, Some(99));
        assert_eq!(storage.by_class["REDUCED_REDUNDANCY"].monthly_cost_cents, None);
        assert_eq!(storage.monthly_cost_cents(), 214);
    }

    #[test]
    fn storage_classes_have_prices_and_unknown_ones_none() {
        assert_eq!(s3_price("DEEP_ARCHIVE"), Some(0.00099));
        assert_eq!(s3_price("REDUCED_REDUNDANCY"), None);
    }
}
