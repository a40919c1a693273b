//! Identifiers: the rules RDS applies to them and the deterministic names the
//! module derives from the database and the execution's start time, so that a
//! retry or redrive of the same execution finds its own earlier work.

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::types::DatabaseKind;

/// RDS DB instance and cluster identifiers: 1-63 characters.
pub const MAX_DB_IDENTIFIER_LEN: usize = 63;
/// RDS export task identifiers: 1-60 characters.
pub const MAX_EXPORT_TASK_ID_LEN: usize = 60;
/// RDS DB snapshot identifiers: 1-255 characters (CreateDBSnapshot, CopyDBSnapshot).
pub const MAX_SNAPSHOT_ID_LEN: usize = 255;
/// RDS DB cluster snapshot identifiers: 1-63 characters (CreateDBClusterSnapshot,
/// CopyDBClusterSnapshot): a cluster's 63-character name leaves no room for a date.
pub const MAX_CLUSTER_SNAPSHOT_ID_LEN: usize = 63;

/// The longest snapshot identifier RDS takes for snapshots of this kind.
pub fn max_snapshot_id_len(kind: DatabaseKind) -> usize {
    match kind {
        DatabaseKind::Instance => MAX_SNAPSHOT_ID_LEN,
        DatabaseKind::Cluster => MAX_CLUSTER_SNAPSHOT_ID_LEN,
    }
}

/// Checks an RDS identifier: letters, digits and hyphens; starts with a letter;
/// no two consecutive hyphens; does not end with a hyphen. Returns it lowercased,
/// as RDS stores it.
pub fn rds_identifier(field: &str, value: &str, max_len: usize) -> Result<String, Error> {
    let reason = if value.is_empty() || value.len() > max_len {
        Some(format!("{value:?} must be 1-{max_len} characters"))
    } else if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some(format!("{value:?} must start with a letter"))
    } else if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        Some(format!(
            "{value:?} contains {c:?}; only letters, digits and hyphens are allowed"
        ))
    } else if value.contains("--") || value.ends_with('-') {
        Some(format!(
            "{value:?} must not end with a hyphen or contain two consecutive hyphens"
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::invalid_input(field, reason)),
        None => Ok(value.to_ascii_lowercase()),
    }
}

/// The snapshot identifier for `db_identifier` in the execution that started
/// at `started`: `<db>-<YYYYMMDD>-<HHMMSS>-<instance hash>`, shortened as [`fit`]
/// does where it exceeds what RDS takes for the kind. The last part (six hex
/// digits of a hash of the managed-by value) keeps two instances of the module
/// that back up the same database in the same second apart. Also used for the
/// cross-region copy.
pub fn snapshot_id(db_identifier: &str, kind: DatabaseKind, started: DateTime<Utc>, instance: &str) -> String {
    let instance_hash = &format!("{:08x}", fnv1a_32(instance.as_bytes()))[..6];
    let id = format!("{db_identifier}-{}-{instance_hash}", started.format("%Y%m%d-%H%M%S"));
    fit(&id, max_snapshot_id_len(kind))
}

/// The export task identifier for a snapshot: the snapshot id, shortened as
/// [`fit`] does to RDS's 60 characters.
pub fn export_task_id(snapshot_id: &str) -> String {
    fit(snapshot_id, MAX_EXPORT_TASK_ID_LEN)
}

/// The identifier of the copy the vault function makes in the source account with the
/// module's key, to share it: `<snapshot id>-vault`, the snapshot id shortened as [`fit`]
/// does where the whole would be too long, so that it always ends in `-vault` (what the
/// function's IAM policy lets it delete).
pub fn vault_intermediate_id(snapshot_id: &str, kind: DatabaseKind) -> String {
    const SUFFIX: &str = "-vault";
    format!("{}{SUFFIX}", fit(snapshot_id, max_snapshot_id_len(kind) - SUFFIX.len()))
}

/// `id` when it has at most `max_len` characters, else a prefix of it plus a
/// hash of the whole: still a valid RDS identifier, and distinct per `id`.
fn fit(id: &str, max_len: usize) -> String {
    if id.len() <= max_len {
        return id.to_owned();
    }
    let hash = format!("{:08x}", fnv1a_32(id.as_bytes()));
    let keep = max_len - hash.len() - 1;
    let prefix = id[..keep].trim_end_matches('-');
    format!("{prefix}-{hash}")
}

/// The S3 prefix of an export: `<project>/<environment>/<db>/<YYYY-MM-DD>`.
/// RDS writes the export under `<prefix>/<export task id>/`.
pub fn export_prefix(project: &str, environment: &str, db_identifier: &str, started: DateTime<Utc>) -> String {
    format!("{project}/{environment}/{db_identifier}/{}", started.format("%Y-%m-%d"))
}

/// 32-bit FNV-1a: stable across builds and platforms, unlike `std`'s hasher,
/// so a redrive after an upgrade derives the same export task id.
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5, |hash, &b| (hash ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const PROD: &str = "nestedphoenix/production/us-east-1";

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 7).unwrap()
    }

    #[test]
    fn identifier_rules() {
        assert_eq!(rds_identifier("db", "Prod-Database-1", 63).unwrap(), "prod-database-1");
        for bad in ["", "1db", "db_1", "db--1", "db-", "d b", &"a".repeat(64)] {
            let err = rds_identifier("db_instance_ids[0]", bad, 63).unwrap_err();
            assert!(
                err.to_string().starts_with("input db_instance_ids[0] is invalid"),
                "{err}"
            );
        }
    }

    #[test]
    fn snapshot_id_derives_from_database_execution_start_and_instance() {
        for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
            assert_eq!(
                snapshot_id("prod-database-1", kind, start(), PROD),
                "prod-database-1-20261124-020007-f40d8a"
            );
        }
        // Another instance backing up the same database in the same second: another identifier.
        assert_eq!(
            snapshot_id(
                "prod-database-1",
                DatabaseKind::Instance,
                start(),
                "nestedphoenix/staging/us-east-1"
            ),
            "prod-database-1-20261124-020007-c4a555"
        );
        let longest = "a".repeat(MAX_DB_IDENTIFIER_LEN);
        let instance = snapshot_id(&longest, DatabaseKind::Instance, start(), PROD);
        assert_eq!(instance, format!("{longest}-20261124-020007-f40d8a"));
        // A cluster snapshot takes 63 characters at most: a prefix and a hash of the whole.
        let cluster = snapshot_id(&longest, DatabaseKind::Cluster, start(), PROD);
        let other = snapshot_id(&format!("{}b", &longest[1..]), DatabaseKind::Cluster, start(), PROD);
        let other_instance = snapshot_id(
            &longest,
            DatabaseKind::Cluster,
            start(),
            "nestedphoenix/staging/us-east-1",
        );
        assert_eq!(cluster.len(), MAX_CLUSTER_SNAPSHOT_ID_LEN);
        assert_ne!(cluster, other);
        assert_ne!(cluster, other_instance);
        rds_identifier("snapshot", &cluster, MAX_CLUSTER_SNAPSHOT_ID_LEN).unwrap();
    }

    #[test]
    fn export_task_id_fits_sixty_characters_and_stays_distinct() {
        assert_eq!(
            export_task_id("prod-database-1-20261124-020007"),
            "prod-database-1-20261124-020007"
        );
        let long_a = snapshot_id(&format!("{}-a", "x".repeat(55)), DatabaseKind::Instance, start(), PROD);
        let long_b = snapshot_id(&format!("{}-b", "x".repeat(55)), DatabaseKind::Instance, start(), PROD);
        let (a, b) = (export_task_id(&long_a), export_task_id(&long_b));
        assert!(a.len() <= MAX_EXPORT_TASK_ID_LEN && b.len() <= MAX_EXPORT_TASK_ID_LEN);
        assert_ne!(a, b);
        assert_eq!(a, export_task_id(&long_a));
        rds_identifier("export", &a, MAX_EXPORT_TASK_ID_LEN).unwrap();
    }

    #[test]
    fn export_prefix_groups_by_project_environment_database_and_day() {
        assert_eq!(
            export_prefix("nestedphoenix", "production", "prod-database-1", start()),
            "nestedphoenix/production/prod-database-1/2026-11-24"
        );
    }

    #[test]
    fn the_copy_made_to_share_ends_in_vault_and_fits_whatever_the_name() {
        let short = vault_intermediate_id("db-20261124-020000-abcdef", DatabaseKind::Cluster);
        assert_eq!(short, "db-20261124-020000-abcdef-vault");
        let cluster = "c".repeat(40);
        let id = snapshot_id(
            &cluster,
            DatabaseKind::Cluster,
            Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap(),
            "np",
        );
        let long = vault_intermediate_id(&id, DatabaseKind::Cluster);
        assert!(
            long.ends_with("-vault") && long.len() <= MAX_CLUSTER_SNAPSHOT_ID_LEN,
            "{long}"
        );
        assert_ne!(long, vault_intermediate_id(&format!("{id}x"), DatabaseKind::Cluster));
        rds_identifier("id", &long, MAX_CLUSTER_SNAPSHOT_ID_LEN).unwrap();
    }
}
