//! The retention rule as properties over random snapshot sets: several
//! databases of both kinds; snapshots of this module instance, of another
//! instance and untagged; manual and automated; every status; known and
//! unknown ages; some the source of a running copy or export; with or without
//! a bound on the age of a database's newest snapshot; retention by age or by a
//! grandfather-father-son policy. Each property is stated from the rule itself,
//! not from `plan`'s code: the tiers' periods here are calendar strings
//! (`%Y-%m-%d`, ISO `%G-W%V`, `%Y-%m`, `%Y`), not `Tier::period`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use backup_core::config::ModuleSettings;
use backup_core::rds::SnapshotInfo;
use backup_core::retention::RetentionPolicy;
use backup_core::types::{DatabaseKind, KeepReason};
use backup_core::{tags, testing};
use backup_prune::plan::{Decision, Policy, Retention, plan};
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
/// Cases per property: 9 properties, at least 10,000 cases a run in all.
const CASES: u32 = 1_120;
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
        engine_version: None,
        encrypted: Some(true),
        kms_key_id: None,
        created_at: spec.age_hours.map(|h| testing::start_time() - Duration::hours(h)),
        original_created_at: None,
        percent_progress: None,
        source_arn: None,
        option_group: None,
        allocated_storage_gib: Some(20),
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

fn retention_policy() -> impl Strategy<Value = RetentionPolicy> {
    (0..10u32, 0..6u32, 0..6u32, 0..3u32)
        .prop_map(|(daily, weekly, monthly, yearly)| RetentionPolicy {
            daily,
            weekly,
            monthly,
            yearly,
        })
        .prop_filter("a policy keeps something", |p| p.check().is_ok())
}

fn retention() -> impl Strategy<Value = Retention> {
    prop_oneof![
        (1..90i64).prop_map(|days| Retention::Age {
            cutoff: testing::start_time() - Duration::days(days)
        }),
        retention_policy().prop_map(Retention::Tiers),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let stale_after_hours = prop::option::of(1..24 * 60i64);
    (
        prop::collection::vec(spec(), 0..60),
        retention(),
        1..6usize,
        stale_after_hours,
    )
        .prop_map(|(specs, retention, keep, stale_after_hours)| {
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
                retention,
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

    /// What the retention alone says of each snapshot: past its age, or kept by no tier.
    fn past_retention(&self) -> Vec<bool> {
        let kept_by_tiers = match self.policy.retention {
            Retention::Tiers(policy) => self.kept_by_tiers(policy),
            Retention::Age { .. } => HashSet::new(),
        };
        (0..self.snapshots.len())
            .map(|i| match (self.policy.retention, self.snapshots[i].created_at) {
                (_, None) => false,
                (Retention::Age { cutoff }, Some(created)) => created < cutoff,
                (Retention::Tiers(_), Some(_)) => !kept_by_tiers.contains(&i),
            })
            .collect()
    }

    /// The snapshots a tier keeps: each the first snapshot of its period (a calendar day, ISO
    /// week, month or year in UTC; the smaller identifier of equal times) among the available
    /// snapshots of ours of known age of its database, that period among the tier's count
    /// newest periods that have one.
    fn kept_by_tiers(&self, policy: RetentionPolicy) -> HashSet<usize> {
        let tiers = [
            ("%Y-%m-%d", policy.daily),
            ("%G-W%V", policy.weekly),
            ("%Y-%m", policy.monthly),
            ("%Y", policy.yearly),
        ];
        let mut by_database: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
        for j in 0..self.snapshots.len() {
            if self.ours(j) && self.snapshots[j].is_available() && self.snapshots[j].created_at.is_some() {
                let database = (self.specs[j].db, format!("{:?}", self.specs[j].kind));
                by_database.entry(database).or_default().push(j);
            }
        }
        let mut kept = HashSet::new();
        for indices in by_database.values() {
            for &(format, count) in &tiers {
                let mut first: BTreeMap<String, (DateTime<Utc>, &str, usize)> = BTreeMap::new();
                for &j in indices {
                    let s = &self.snapshots[j];
                    let candidate = (s.created_at.unwrap(), s.snapshot_id.as_str(), j);
                    first
                        .entry(candidate.0.format(format).to_string())
                        .and_modify(|f| *f = (*f).min(candidate))
                        .or_insert(candidate);
                }
                kept.extend(first.values().rev().take(count as usize).map(|&(_, _, j)| j));
            }
        }
        kept
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
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn deletes_only_what_no_rule_keeps(case in case()) {
        let past_retention = case.past_retention();
        for (i, decision) in case.decide().into_iter().enumerate() {
            if decision != Decision::Delete {
                continue;
            }
            let s = &case.snapshots[i];
            prop_assert!(case.ours(i), "{} is not ours (foreign, another instance's or automated)", s.snapshot_id);
            prop_assert!(s.is_available(), "{} is {}", s.snapshot_id, s.status);
            prop_assert!(!case.in_flight.contains(&s.arn), "{} is read by a running copy or export", s.snapshot_id);
            prop_assert!(past_retention[i], "{} is within retention, kept by a tier or of unknown age", s.snapshot_id);
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
        exactly_what_the_rule_allows_is_deleted(&case)?;
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

/// Deleted exactly when no rule keeps it.
fn exactly_what_the_rule_allows_is_deleted(case: &Case) -> Result<(), TestCaseError> {
    let past_retention = case.past_retention();
    let newer = case.newer_available_all();
    for (i, decision) in case.decide().into_iter().enumerate() {
        let expired = case.ours(i)
            && case.snapshots[i].is_available()
            && !case.in_flight.contains(&case.snapshots[i].arn)
            && past_retention[i]
            && newer[i] >= case.policy.min_snapshots_to_keep
            && !case.database_is_stale(i);
        prop_assert_eq!(
            decision == Decision::Delete,
            expired,
            "{}",
            case.snapshots[i].snapshot_id
        );
    }
    Ok(())
}

/// Years of one database's backups under a policy: each day none, one or two snapshots
/// (a failed day, a rerun from the console), at any hour; the newest `min_snapshots_to_keep`
/// and nothing else protected.
fn history() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            (prop::sample::select(&[0usize, 1, 1, 1, 1, 1, 1, 2][..]), 0..24i64),
            30..800,
        ),
        retention_policy(),
        1..4usize,
        prop_oneof![Just(DatabaseKind::Instance), Just(DatabaseKind::Cluster)],
    )
        .prop_map(|(days, policy, keep, kind)| {
            let settings = testing::settings();
            let mut specs = Vec::new();
            let today = days.len() as i64;
            for (day, &(count, hour)) in days.iter().enumerate() {
                for nth in 0..count as i64 {
                    // Hours before the run's start: day 0 is the oldest.
                    let age_hours = (today - day as i64) * 24 - hour - nth * 3;
                    specs.push(Spec {
                        db: 0,
                        kind,
                        owner: Owner::ThisInstance,
                        automated: false,
                        status: "available",
                        age_hours: Some(age_hours),
                        in_flight: false,
                    });
                }
            }
            // Oldest first: a day's second snapshot may fall after the next day's first.
            specs.sort_by_key(|s| std::cmp::Reverse(s.age_hours));
            Case::of(
                specs,
                Policy {
                    retention: Retention::Tiers(policy),
                    min_snapshots_to_keep: keep,
                    stale_before: None,
                },
                settings,
            )
        })
}

impl Case {
    fn of(specs: Vec<Spec>, policy: Policy, settings: ModuleSettings) -> Case {
        let snapshots = specs
            .iter()
            .enumerate()
            .map(|(i, s)| snapshot(i, s, &settings))
            .collect();
        Case {
            snapshots,
            specs,
            in_flight: HashSet::new(),
            policy,
            settings,
        }
    }

    /// `newer_available` of every snapshot, in one pass per database.
    fn newer_available_all(&self) -> Vec<usize> {
        if self.snapshots.len() <= 100 {
            return (0..self.snapshots.len()).map(|i| self.newer_available(i)).collect();
        }
        let key = |j: usize| {
            let s = &self.snapshots[j];
            (s.created_at.unwrap_or(DateTime::<Utc>::MAX_UTC), s.snapshot_id.clone())
        };
        let mut newer = vec![0; self.snapshots.len()];
        let mut by_database: BTreeMap<(usize, String), Vec<usize>> = BTreeMap::new();
        for j in 0..self.snapshots.len() {
            if self.ours(j) && self.snapshots[j].is_available() {
                by_database
                    .entry((self.specs[j].db, format!("{:?}", self.specs[j].kind)))
                    .or_default()
                    .push(j);
            }
        }
        for indices in by_database.values_mut() {
            indices.sort_by_key(|&j| std::cmp::Reverse(key(j)));
            for (rank, &j) in indices.iter().enumerate() {
                newer[j] = rank;
            }
        }
        newer
    }

    /// The snapshots a run leaves, as a case of its own.
    fn after(&self, decisions: &[Decision]) -> Case {
        let kept = |i: &usize| decisions[*i] != Decision::Delete;
        Case {
            snapshots: (0..self.snapshots.len())
                .filter(kept)
                .map(|i| self.snapshots[i].clone())
                .collect(),
            specs: (0..self.specs.len())
                .filter(kept)
                .map(|i| self.specs[i].clone())
                .collect(),
            in_flight: self.in_flight.clone(),
            policy: self.policy,
            settings: self.settings.clone(),
        }
    }

    fn ids(&self) -> BTreeSet<String> {
        self.snapshots.iter().map(|s| s.snapshot_id.clone()).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Over years of backups, exactly the grandfather-father-son set (and the newest few) stays.
    #[test]
    fn years_of_backups_keep_exactly_the_tiers(case in history()) {
        exactly_what_the_rule_allows_is_deleted(&case)?;
    }

    /// A run every day (each after that day's backups) leaves exactly what one run at the
    /// end leaves: time moving forward never deletes what the policy will keep, never
    /// brings back what it let go, and lets go of everything else.
    #[test]
    fn a_run_each_day_leaves_what_one_run_leaves(case in history(), days in 1..40usize) {
        let mut by_day: Vec<Vec<usize>> = Vec::new();
        let day_of = |s: &SnapshotInfo| s.created_at.unwrap().date_naive();
        let mut last = None;
        for i in 0..case.snapshots.len() {
            let day = day_of(&case.snapshots[i]);
            if last != Some(day) {
                by_day.push(Vec::new());
                last = Some(day);
            }
            by_day.last_mut().unwrap().push(i);
        }
        let replayed_from = by_day.len().saturating_sub(days);
        let first: Vec<usize> = by_day[..replayed_from].iter().flatten().copied().collect();
        let mut current = Case::of(first.iter().map(|&i| case.specs[i].clone()).collect(), case.policy, case.settings.clone());
        current.snapshots = first.iter().map(|&i| case.snapshots[i].clone()).collect();
        for day in &by_day[replayed_from..] {
            current = current.after(&current.decide());
            for &i in day {
                current.snapshots.push(case.snapshots[i].clone());
                current.specs.push(case.specs[i].clone());
            }
        }
        let daily = current.after(&current.decide());
        let once = case.after(&case.decide());
        prop_assert_eq!(daily.ids(), once.ids());
    }

    /// A snapshot no tier keeps today is kept by none tomorrow, whatever is backed up meanwhile.
    #[test]
    fn newer_backups_never_bring_back_what_the_tiers_let_go(case in history(), split in 0.0..1.0f64) {
        let Retention::Tiers(policy) = case.policy.retention else { unreachable!() };
        let earlier = Case::of(Vec::new(), case.policy, case.settings.clone());
        let cut = (case.snapshots.len() as f64 * split) as usize;
        let earlier = Case { snapshots: case.snapshots[..cut].to_vec(), specs: case.specs[..cut].to_vec(), ..earlier };
        let kept_earlier = earlier.kept_by_tiers(policy);
        for i in case.kept_by_tiers(policy) {
            prop_assert!(i >= cut || kept_earlier.contains(&i), "{} came back", case.snapshots[i].snapshot_id);
        }
    }
}
