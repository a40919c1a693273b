//! The retention decision, free of I/O: given every manual snapshot of a
//! region, which may be deleted. The rules, each enough to keep a snapshot:
//!
//! 1. not carrying this module instance's managed-by tag, or not `manual`: ignored;
//! 2. not `available` (creating, copying, failed...): kept;
//! 3. of a database whose newest available snapshot was created before
//!    `stale_before` (backups of it may have stopped silently): kept;
//! 4. among the newest `min_snapshots_to_keep` available ones of its database: kept;
//! 5. the source of a running cross-region copy or export: kept;
//! 6. of unknown age, or, by the retention: created at or after the cutoff
//!    (an age), or kept by a tier of the policy (grandfather-father-son,
//!    `backup_core::retention`): kept.
//!
//! Only what passes none of these is deleted.

use std::collections::{BTreeMap, HashSet};

use backup_core::config::ModuleSettings;
use backup_core::rds::SnapshotInfo;
use backup_core::retention::{RetentionPolicy, Tiers};
use backup_core::tags;
use backup_core::types::{DatabaseKind, KeepReason};
use chrono::{DateTime, Utc};

/// What the retention keeps, beside the rules that keep a snapshot whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Snapshots created before this instant are past retention.
    Age { cutoff: DateTime<Utc> },
    /// The snapshots the policy's tiers keep, per database.
    Tiers(RetentionPolicy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub retention: Retention,
    /// Available snapshots always kept per database; at least 1.
    pub min_snapshots_to_keep: usize,
    /// A database whose newest available snapshot was created before this keeps them all.
    pub stale_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not ours (foreign, automated, shared): never touched, not reported.
    Ignore,
    Keep(KeepReason),
    Delete,
}

/// The database a snapshot belongs to: our tag, else what RDS reports.
pub fn database_of(snapshot: &SnapshotInfo) -> (DatabaseKind, &str) {
    let db = tags::tag_value(&snapshot.tags, tags::SOURCE_DB).unwrap_or(&snapshot.db_identifier);
    (snapshot.kind, db)
}

/// Decides, for each snapshot (same order), what prune does with it.
/// `in_flight` holds the ARNs of snapshots a running copy or export reads.
pub fn plan(
    snapshots: &[SnapshotInfo],
    settings: &ModuleSettings,
    policy: Policy,
    in_flight: &HashSet<String>,
) -> Vec<Decision> {
    let ours = |s: &SnapshotInfo| is_ours(s, settings);
    let mut available_by_db = available_by_database(snapshots, settings);
    let tiers = match policy.retention {
        Retention::Tiers(tiers) => keeping(snapshots, &available_by_db, tiers),
        Retention::Age { .. } => vec![Tiers::default(); snapshots.len()],
    };
    let mut newest: HashSet<usize> = HashSet::new();
    let mut stale: HashSet<(DatabaseKind, &str)> = HashSet::new();
    for (&database, indices) in available_by_db.iter_mut() {
        // Unknown creation time sorts as newest: never the first to go.
        indices.sort_by(|&a, &b| {
            let key = |i: usize| snapshots[i].created_at.unwrap_or(DateTime::<Utc>::MAX_UTC);
            key(b)
                .cmp(&key(a))
                .then_with(|| snapshots[b].snapshot_id.cmp(&snapshots[a].snapshot_id))
        });
        newest.extend(indices.iter().take(policy.min_snapshots_to_keep.max(1)));
        let newest_created = indices.first().and_then(|&i| snapshots[i].created_at);
        if let (Some(created), Some(before)) = (newest_created, policy.stale_before)
            && created < before
        {
            stale.insert(database);
        }
    }

    snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if !ours(s) {
                Decision::Ignore
            } else if !s.is_available() {
                Decision::Keep(KeepReason::NotAvailable)
            } else if stale.contains(&database_of(s)) {
                Decision::Keep(KeepReason::NewestTooOld)
            } else if newest.contains(&i) {
                Decision::Keep(KeepReason::NewestOfDatabase)
            } else if in_flight.contains(&s.arn) {
                Decision::Keep(KeepReason::InFlight)
            } else {
                match (policy.retention, s.created_at) {
                    (_, None) => Decision::Keep(KeepReason::WithinRetention),
                    (Retention::Age { cutoff }, Some(created)) if created >= cutoff => {
                        Decision::Keep(KeepReason::WithinRetention)
                    }
                    (Retention::Tiers(_), _) if !tiers[i].is_empty() => Decision::Keep(KeepReason::InTier),
                    _ => Decision::Delete,
                }
            }
        })
        .collect()
}

/// The tiers of `policy` that keep each snapshot (same order): none for what is not
/// ours, not available or of unknown age. What prune tags each kept snapshot with.
pub fn tiers(snapshots: &[SnapshotInfo], settings: &ModuleSettings, policy: RetentionPolicy) -> Vec<Tiers> {
    keeping(snapshots, &available_by_database(snapshots, settings), policy)
}

fn is_ours(snapshot: &SnapshotInfo, settings: &ModuleSettings) -> bool {
    snapshot.snapshot_type == "manual" && tags::is_ours(&snapshot.tags, settings, None)
}

/// The indices of the available snapshots of ours, per database.
fn available_by_database<'a>(
    snapshots: &'a [SnapshotInfo],
    settings: &ModuleSettings,
) -> BTreeMap<(DatabaseKind, &'a str), Vec<usize>> {
    let mut by_database: BTreeMap<(DatabaseKind, &str), Vec<usize>> = BTreeMap::new();
    for (i, s) in snapshots.iter().enumerate() {
        if is_ours(s, settings) && s.is_available() {
            by_database.entry(database_of(s)).or_default().push(i);
        }
    }
    by_database
}

fn keeping(
    snapshots: &[SnapshotInfo],
    by_database: &BTreeMap<(DatabaseKind, &str), Vec<usize>>,
    policy: RetentionPolicy,
) -> Vec<Tiers> {
    let mut tiers = vec![Tiers::default(); snapshots.len()];
    for indices in by_database.values() {
        // Of equal creation times the smaller identifier represents the period, whatever the listing's order.
        let mut dated: Vec<(DateTime<Utc>, &str, usize)> = indices
            .iter()
            .filter_map(|&i| Some((snapshots[i].created_at?, snapshots[i].snapshot_id.as_str(), i)))
            .collect();
        dated.sort();
        let created: Vec<DateTime<Utc>> = dated.iter().map(|&(at, _, _)| at).collect();
        for ((_, _, i), kept) in dated.iter().zip(policy.keeping(&created)) {
            tiers[*i] = kept;
        }
    }
    tiers
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::retention::Tier;
    use backup_core::testing;
    use chrono::Duration;

    fn snap(id: &str, db: &str, age_days: i64, status: &str, marker: Option<&str>) -> SnapshotInfo {
        let mut tag_list = Vec::new();
        if let Some(instance) = marker {
            let mut settings = testing::settings();
            settings.instance = instance.to_owned();
            tag_list = tags::snapshot_tags(&settings, db, "exec");
        }
        SnapshotInfo {
            kind: DatabaseKind::Instance,
            snapshot_id: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            db_identifier: db.into(),
            status: status.into(),
            snapshot_type: "manual".into(),
            engine: "postgres".into(),
            engine_version: None,
            encrypted: Some(true),
            kms_key_id: None,
            created_at: Some(testing::start_time() - Duration::days(age_days)),
            original_created_at: None,
            percent_progress: None,
            source_arn: None,
            option_group: None,
            allocated_storage_gib: Some(20),
            tags: tag_list,
        }
    }

    fn ours(id: &str, db: &str, age_days: i64) -> SnapshotInfo {
        snap(id, db, age_days, "available", Some("nestedphoenix-production"))
    }

    fn policy(retention_days: i64, keep: usize) -> Policy {
        Policy {
            retention: Retention::Age {
                cutoff: testing::start_time() - Duration::days(retention_days),
            },
            min_snapshots_to_keep: keep,
            stale_before: None,
        }
    }

    fn decide(snapshots: &[SnapshotInfo], policy: Policy, in_flight: &[&str]) -> Vec<Decision> {
        let in_flight = in_flight
            .iter()
            .map(|id| format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
            .collect();
        plan(snapshots, &testing::settings(), policy, &in_flight)
    }

    #[test]
    fn deletes_only_our_available_snapshots_past_retention() {
        let snapshots = [
            ours("new", "db1", 1),
            ours("mid", "db1", 20),
            ours("old", "db1", 40),
            ours("older", "db1", 50),
        ];
        let decisions = decide(&snapshots, policy(30, 1), &[]);
        assert_eq!(
            decisions,
            [
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Keep(KeepReason::WithinRetention),
                Decision::Delete,
                Decision::Delete
            ]
        );
    }

    #[test]
    fn foreign_other_instance_and_automated_snapshots_are_ignored() {
        let mut automated = ours("rds-auto", "db1", 90);
        automated.snapshot_type = "automated".into();
        let snapshots = [
            ours("mine", "db1", 1),
            snap("foreign", "db1", 90, "available", None),
            snap("staging", "db1", 90, "available", Some("nestedphoenix-staging")),
            automated,
        ];
        let decisions = decide(&snapshots, policy(30, 1), &[]);
        assert_eq!(decisions[1..], [Decision::Ignore, Decision::Ignore, Decision::Ignore]);
    }

    #[test]
    fn a_database_without_a_recent_snapshot_keeps_them_all() {
        let snapshots = [
            ours("a1", "db1", 100),
            ours("a2", "db1", 200),
            ours("b1", "db2", 1),
            ours("b2", "db2", 300),
        ];
        let stale_after_two_days = Policy {
            stale_before: Some(testing::start_time() - Duration::days(2)),
            ..policy(30, 1)
        };
        assert_eq!(
            decide(&snapshots, stale_after_two_days, &[]),
            [
                // db1's newest is 100 days old: backups of it may have stopped.
                Decision::Keep(KeepReason::NewestTooOld),
                Decision::Keep(KeepReason::NewestTooOld),
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Delete,
            ]
        );
    }

    #[test]
    fn the_newest_n_available_per_database_stay_however_old() {
        let snapshots = [
            ours("a1", "db1", 100),
            ours("a2", "db1", 200),
            ours("a3", "db1", 300),
            ours("b1", "db2", 400),
            snap("a0", "db1", 50, "failed", Some("nestedphoenix-production")),
        ];
        let decisions = decide(&snapshots, policy(30, 2), &[]);
        assert_eq!(
            decisions,
            [
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Delete,
                Decision::Keep(KeepReason::NewestOfDatabase),
                // A failed snapshot neither counts as a good backup nor gets deleted.
                Decision::Keep(KeepReason::NotAvailable),
            ]
        );
    }

    #[test]
    fn in_flight_and_unavailable_snapshots_stay() {
        let snapshots = [
            ours("new", "db1", 0),
            ours("copying-source", "db1", 60),
            snap("creating", "db1", 60, "creating", Some("nestedphoenix-production")),
            ours("plain-old", "db1", 60),
        ];
        let decisions = decide(&snapshots, policy(30, 1), &["copying-source"]);
        assert_eq!(
            decisions,
            [
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Keep(KeepReason::InFlight),
                Decision::Keep(KeepReason::NotAvailable),
                Decision::Delete
            ]
        );
    }

    #[test]
    fn zero_to_keep_still_keeps_the_newest_and_unknown_ages_stay() {
        let mut unknown_age = ours("unknown", "db1", 0);
        unknown_age.created_at = None;
        let snapshots = [ours("only", "db2", 365), unknown_age, ours("old", "db1", 365)];
        let decisions = decide(&snapshots, policy(30, 0), &[]);
        assert_eq!(
            decisions,
            [
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Keep(KeepReason::NewestOfDatabase),
                Decision::Delete
            ]
        );
    }

    #[test]
    fn under_a_policy_the_tiers_keep_the_first_of_each_period_and_the_rest_goes() {
        // A snapshot a day for 400 days; 7 daily, 4 weekly, 12 monthly, 1 yearly.
        let mut snapshots: Vec<SnapshotInfo> = (0..400).map(|age| ours(&format!("s{age:03}"), "db1", age)).collect();
        snapshots[398].created_at = None;
        snapshots[399].created_at = None;
        let tiers = RetentionPolicy {
            daily: 7,
            weekly: 4,
            monthly: 12,
            yearly: 1,
        };
        let policy = Policy {
            retention: Retention::Tiers(tiers),
            ..policy(30, 1)
        };
        let decisions = decide(&snapshots, policy, &["s300"]);
        let kept_by_tiers = |i: usize| decisions[i] == Decision::Keep(KeepReason::InTier);
        // Unknown ages sort as the newest (one of them is the newest kept), and stay.
        assert_eq!(decisions[399], Decision::Keep(KeepReason::NewestOfDatabase));
        assert_eq!(decisions[398], Decision::Keep(KeepReason::WithinRetention));
        assert!((0..7).all(kept_by_tiers), "seven dailies");
        assert_eq!(decisions[300], Decision::Keep(KeepReason::InFlight));
        // 7 days, 4 weeks and 12 months overlap; the year is that of the oldest month but one.
        let kept = decisions.iter().filter(|d| **d != Decision::Delete).count();
        assert!((7 + 3 + 11..=7 + 4 + 12 + 1 + 2).contains(&kept), "{kept} kept");
        let tags = tiers_of(&snapshots, tiers);
        assert!(tags[0].contains(Tier::Daily) && tags[398].is_empty());
        // Kept by a tier exactly when tagged with one, the rules before it aside.
        for (i, decision) in decisions.iter().enumerate().filter(|&(i, _)| i != 300 && i < 398) {
            assert_eq!(
                *decision == Decision::Keep(KeepReason::InTier),
                !tags[i].is_empty(),
                "{i}"
            );
        }
    }

    fn tiers_of(snapshots: &[SnapshotInfo], policy: RetentionPolicy) -> Vec<Tiers> {
        tiers(snapshots, &testing::settings(), policy)
    }

    #[test]
    fn exactly_at_the_cutoff_is_kept() {
        let snapshots = [ours("new", "db1", 0), ours("edge", "db1", 30)];
        assert_eq!(
            decide(&snapshots, policy(30, 1), &[])[1],
            Decision::Keep(KeepReason::WithinRetention)
        );
    }
}
