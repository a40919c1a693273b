//! The retention rule as properties over random snapshot sets: several
//! databases of both kinds; snapshots of this module instance, of another
//! instance and untagged; manual and automated; every status; known and
//! unknown ages; some the source of a running copy or export; with or without
//! a bound on the age of a database's newest snapshot. Each property is stated
//! from the rule itself, not from `plan`'s code.

use std::cmp::Ordering;
use std::collections::HashSet;

use backup_core::config::ModuleSettings;
use backup_core::rds::SnapshotInfo;
use backup_core::types::{DatabaseKind, KeepReason};
use backup_core::{tags, testing};
use backup_prune::plan::{Decision, Policy, plan};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

/// Whose snapshot it is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    ThisInstance,
    OtherInstance,
    Untagged,
}

#[derive(Debug, Clone)]
struct Spec {
    db: usize,
    kind: DatabaseKind,
    owner: Owner,
    automated: bool,
    status: &'static str,
    /// Hours before the run's start; None: RDS reported no creation time.
    age_hours: Option<i64>,
    in_flight: bool,
}

const DATABASES: [&str; 4] = ["orders", "billing", "users", "audit"];
const STATUSES: [&str; 6] = ["available", "available", "available", "creating", "copying", "failed"];

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..DATABASES.len(),
        prop_oneof![Just(DatabaseKind::Instance), Just(DatabaseKind::Cluster)],
        prop_oneof![
            6 => Just(Owner::ThisInstance),
            1 => Just(Owner::OtherInstance),
            1 => Just(Owner::Untagged)
        ],
        prop::bool::weighted(0.1),
        prop::sample::select(&STATUSES[..]),
        prop::option::weighted(0.95, 0..24 * 120i64),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(db, kind, owner, automated, status, age_hours, in_flight)| Spec {
            db,
            kind,
            owner,
            automated,
            status,
            age_hours,
            in_flight,
        })
}

fn snapshot(index: usize, spec: &Spec, settings: &ModuleSettings) -> SnapshotInfo {
    let db = DATABASES[spec.db];
    let id = format!("{db}-{index:04}");
    let tag_list = match spec.owner {
        Owner::ThisInstance => tags::snapshot_tags(settings, db, "exec"),
        Owner::OtherInstance => {
            let mut other = settings.clone();
            other.instance = "staging-backup".into();
            tags::snapshot_tags(&other, db, "exec")
        }
        Owner::Untagged => Vec::new(),
    };
    SnapshotInfo {
        kind: spec.kind,
        arn: format!("arn:aws:rds:us-east-1:123456789012:{}:{id}", spec.kind.label()),
        snapshot_id: id,
        db_identifier: db.into(),
        status: spec.status.into(),
        snapshot_type: if spec.automated { "automated" } else { "manual" }.into(),
        engine: "postgres".into(),
        encrypted: Some(true),
        created_at: spec.age_hours.map(|h| testing::start_time() - Duration::hours(h)),
        percent_progress: None,
        source_arn: None,
        option_group: None,
        tags: tag_list,
    }
}

/// A generated region: its snapshots, the ARNs a running copy or export reads, the policy.
#[derive(Debug)]
struct Case {
    snapshots: Vec<SnapshotInfo>,
    specs: Vec<Spec>,
    in_flight: HashSet<String>,
    policy: Policy,
    settings: ModuleSettings,
}

fn case() -> impl Strategy<Value = Case> {
    let stale_after_hours = prop::option::of(1..24 * 60i64);
    (
        prop::collection::vec(spec(), 0..60),
        1..90i64,
        1..6usize,
        stale_after_hours,
    )
        .prop_map(|(specs, retention_days, keep, stale_after_hours)| {
            let settings = testing::settings();
            let snapshots: Vec<SnapshotInfo> = specs
                .iter()
                .enumerate()
                .map(|(i, s)| snapshot(i, s, &settings))
                .collect();
            let in_flight = specs
                .iter()
                .zip(&snapshots)
                .filter(|(spec, _)| spec.in_flight)
                .map(|(_, s)| s.arn.clone())
                .collect();
            let policy = Policy {
                cutoff: testing::start_time() - Duration::days(retention_days),
                min_snapshots_to_keep: keep,
                stale_before: stale_after_hours.map(|h| testing::start_time() - Duration::hours(h)),
            };
            Case {
                snapshots,
                specs,
                in_flight,
                policy,
                settings,
            }
        })
}

impl Case {
    /// Ours in the rule's sense: manual and carrying this instance's marker.
    fn ours(&self, i: usize) -> bool {
        self.specs[i].owner == Owner::ThisInstance && !self.specs[i].automated
    }

    fn deletable_by_age(&self, i: usize) -> bool {
        self.snapshots[i].created_at.is_some_and(|t| t < self.policy.cutoff)
    }

    /// Available snapshots of ours of the same database (and kind) as `i` that are newer
    /// (unknown age counts as newest; equal times ordered by identifier).
    fn newer_available(&self, i: usize) -> usize {
        let key = |j: usize| {
            let s = &self.snapshots[j];
            (s.created_at.unwrap_or(DateTime::<Utc>::MAX_UTC), s.snapshot_id.clone())
        };
        (0..self.snapshots.len())
            .filter(|&j| j != i && self.ours(j) && self.snapshots[j].is_available())
            .filter(|&j| self.specs[j].db == self.specs[i].db && self.specs[j].kind == self.specs[i].kind)
            .filter(|&j| key(j).cmp(&key(i)) == Ordering::Greater)
            .count()
    }

    /// Whether the newest available snapshot of ours of `i`'s database is older than the bound.
    fn database_is_stale(&self, i: usize) -> bool {
        let Some(bound) = self.policy.stale_before else {
            return false;
        };
        let same_database = (0..self.snapshots.len())
            .filter(|&j| self.ours(j) && self.snapshots[j].is_available())
            .filter(|&j| self.specs[j].db == self.specs[i].db && self.specs[j].kind == self.specs[i].kind);
        // Unknown age counts as newest, as in the retention rule: such a database is never stale.
        let newest = same_database
            .map(|j| self.snapshots[j].created_at.unwrap_or(DateTime::<Utc>::MAX_UTC))
            .max();
        newest.is_some_and(|t| t < bound)
    }

    fn decide(&self) -> Vec<Decision> {
        plan(&self.snapshots, &self.settings, self.policy, &self.in_flight)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn deletes_only_what_no_rule_keeps(case in case()) {
        for (i, decision) in case.decide().into_iter().enumerate() {
            if decision != Decision::Delete {
                continue;
            }
            let s = &case.snapshots[i];
            prop_assert!(case.ours(i), "{} is not ours (foreign, another instance's or automated)", s.snapshot_id);
            prop_assert!(s.is_available(), "{} is {}", s.snapshot_id, s.status);
            prop_assert!(!case.in_flight.contains(&s.arn), "{} is read by a running copy or export", s.snapshot_id);
            prop_assert!(case.deletable_by_age(i), "{} is within retention or of unknown age", s.snapshot_id);
            prop_assert!(!case.database_is_stale(i), "{}'s database has no recent snapshot", s.snapshot_id);
            prop_assert!(
                case.newer_available(i) >= case.policy.min_snapshots_to_keep,
                "{} is among the newest {} of its database", s.snapshot_id, case.policy.min_snapshots_to_keep
            );
        }
    }

    #[test]
    fn foreign_and_automated_snapshots_are_never_touched(case in case()) {
        for (i, decision) in case.decide().into_iter().enumerate() {
            if !case.ours(i) {
                prop_assert_eq!(decision, Decision::Ignore, "{}", case.snapshots[i].snapshot_id);
            }
        }
    }

    #[test]
    fn the_newest_of_every_database_stay(case in case()) {
        let decisions = case.decide();
        for (db, name) in DATABASES.iter().enumerate() {
            for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
                let available: Vec<usize> = (0..case.snapshots.len())
                    .filter(|&i| case.ours(i) && case.snapshots[i].is_available())
                    .filter(|&i| case.specs[i].db == db && case.specs[i].kind == kind)
                    .collect();
                let remaining = available.iter().filter(|&&i| decisions[i] != Decision::Delete).count();
                prop_assert!(remaining >= available.len().min(case.policy.min_snapshots_to_keep),
                    "{} {:?}: {} of {} available kept, at least {} must stay",
                    name, kind, remaining, available.len(), case.policy.min_snapshots_to_keep);
            }
        }
    }

    /// The rule is applied, not only respected: a snapshot no rule keeps goes.
    #[test]
    fn everything_the_rule_allows_is_deleted(case in case()) {
        for (i, decision) in case.decide().into_iter().enumerate() {
            let expired = case.ours(i)
                && case.snapshots[i].is_available()
                && !case.in_flight.contains(&case.snapshots[i].arn)
                && case.deletable_by_age(i)
                && case.newer_available(i) >= case.policy.min_snapshots_to_keep
                && !case.database_is_stale(i);
            prop_assert_eq!(decision == Decision::Delete, expired, "{}", case.snapshots[i].snapshot_id);
        }
    }

    /// Backups of a database may have stopped: nothing of it goes until someone looks.
    #[test]
    fn a_database_without_a_recent_snapshot_keeps_them_all(case in case()) {
        for (i, decision) in case.decide().into_iter().enumerate() {
            if case.ours(i) && case.snapshots[i].is_available() && case.database_is_stale(i) {
                prop_assert_eq!(decision, Decision::Keep(KeepReason::NewestTooOld), "{}", case.snapshots[i].snapshot_id);
            }
        }
    }

    #[test]
    fn a_second_run_deletes_nothing_more(case in case()) {
        let decisions = case.decide();
        let (mut snapshots, mut specs) = (Vec::new(), Vec::new());
        for (i, decision) in decisions.iter().enumerate() {
            if *decision != Decision::Delete {
                snapshots.push(case.snapshots[i].clone());
                specs.push(case.specs[i].clone());
            }
        }
        let after = Case { snapshots, specs, ..case };
        prop_assert!(after.decide().iter().all(|d| *d != Decision::Delete));
    }
}
