//! Grandfather-father-son retention: how many daily, weekly, monthly and yearly
//! snapshots a database keeps. Periods are calendar periods in UTC (weeks are
//! ISO 8601 weeks, Monday to Sunday); the first snapshot of a period (the
//! earliest created) represents it; a tier of `n` keeps the representatives of
//! the newest `n` periods that have a snapshot. A period without a snapshot
//! (backups paused, a failed day) does not use up a place: "7 dailies" are the
//! last seven days that have one, never fewer backups because some days failed.
//! A snapshot is kept when any tier keeps it. Shared by prune, export
//! (`s3_export_tiers`) and the retention plan.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Days, Months, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// The most periods one tier may keep: a century of each, as the S3 lifecycle's horizon.
pub const MAX_PERIODS: [u32; 4] = [36_500, 5_200, 1_200, 100];

/// A tier of the policy, from the shortest period to the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
        }
    }

    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|tier| tier.as_str() == name)
    }

    /// The period of this tier that `at` falls in, as a number that orders the periods.
    pub fn period(self, at: DateTime<Utc>) -> i64 {
        let date = at.date_naive();
        match self {
            Tier::Daily => i64::from(date.num_days_from_ce()),
            Tier::Weekly => {
                let week = date.iso_week();
                i64::from(week.year()) * 100 + i64::from(week.week())
            }
            Tier::Monthly => i64::from(date.year()) * 100 + i64::from(date.month()),
            Tier::Yearly => i64::from(date.year()),
        }
    }

    /// The start (00:00 UTC) of the period `periods` after the one `at` falls in: when a
    /// tier of `periods` stops keeping a snapshot of `at`'s period, if every period since
    /// has a snapshot.
    pub fn start_after(self, at: DateTime<Utc>, periods: u32) -> DateTime<Utc> {
        let date = at.date_naive();
        let start = match self {
            Tier::Daily => date + Days::new(u64::from(periods)),
            Tier::Weekly => {
                let monday = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
                monday + Days::new(7 * u64::from(periods))
            }
            Tier::Monthly => date.with_day(1).expect("day 1 exists") + Months::new(periods),
            Tier::Yearly => {
                date.with_day(1)
                    .and_then(|d| d.with_month(1))
                    .expect("1 January exists")
                    + Months::new(12 * periods)
            }
        };
        start.and_time(NaiveTime::MIN).and_utc()
    }

    /// The period's name: `day`, `week`, `month`, `year`.
    pub fn period_name(self) -> &'static str {
        match self {
            Tier::Daily => "day",
            Tier::Weekly => "week",
            Tier::Monthly => "month",
            Tier::Yearly => "year",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tiers that keep one snapshot (none: no tier keeps it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Tiers(u8);

impl Tiers {
    pub fn insert(&mut self, tier: Tier) {
        self.0 |= tier.bit();
    }

    pub fn contains(self, tier: Tier) -> bool {
        self.0 & tier.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Tier> {
        Tier::ALL.into_iter().filter(move |&tier| self.contains(tier))
    }
}

impl fmt::Display for Tiers {
    /// `daily weekly`, or `none`: the value of the tag prune sets on what it keeps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Tier::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

/// How many periods of each tier a database keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
}

impl RetentionPolicy {
    pub fn count(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Daily => self.daily,
            Tier::Weekly => self.weekly,
            Tier::Monthly => self.monthly,
            Tier::Yearly => self.yearly,
        }
    }

    /// A policy keeps something, and no tier more than a century of periods.
    pub fn check(&self) -> Result<(), String> {
        if Tier::ALL.iter().all(|&tier| self.count(tier) == 0) {
            return Err("keeps nothing: give at least one of daily, weekly, monthly, yearly a count above 0".into());
        }
        for (tier, most) in Tier::ALL.into_iter().zip(MAX_PERIODS) {
            if self.count(tier) > most {
                return Err(format!("{tier} is {}, more than {most}", self.count(tier)));
            }
        }
        Ok(())
    }

    /// A policy from its JSON (`{"daily": 7, "monthly": 12}`), checked; the error names the problem.
    pub fn from_json(raw: &str) -> Result<Self, String> {
        let policy: RetentionPolicy = serde_json::from_str(raw).map_err(|err| {
            format!("{err}: expected an object of daily, weekly, monthly and yearly counts, such as {{\"daily\": 7, \"monthly\": 12}}")
        })?;
        policy.check()?;
        Ok(policy)
    }

    /// The tiers that keep each of one database's snapshots, given their creation times
    /// (same order). Of snapshots created at the same instant, the first given represents
    /// the period.
    pub fn keeping(&self, created: &[DateTime<Utc>]) -> Vec<Tiers> {
        let mut kept = vec![Tiers::default(); created.len()];
        for tier in Tier::ALL {
            let count = self.count(tier) as usize;
            if count == 0 {
                continue;
            }
            // Each period's representative: its earliest snapshot.
            let mut first_of_period: BTreeMap<i64, usize> = BTreeMap::new();
            for (i, &at) in created.iter().enumerate() {
                first_of_period
                    .entry(tier.period(at))
                    .and_modify(|first| {
                        if at < created[*first] {
                            *first = i;
                        }
                    })
                    .or_insert(i);
            }
            for &i in first_of_period.values().rev().take(count) {
                kept[i].insert(tier);
            }
        }
        kept
    }

    /// When the tiers that keep a snapshot created at `at` stop keeping it, if a backup
    /// is taken in every period from now on: the latest of its tiers' ends (None: no tier keeps it).
    pub fn expires(&self, tiers: Tiers, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        tiers.iter().map(|tier| tier.start_after(at, self.count(tier))).max()
    }

    /// Whether a snapshot created at `at` is the first of its period in one of `tiers`,
    /// given when the database's other snapshots were created.
    pub fn first_of_period(tiers: &[Tier], at: DateTime<Utc>, others: &[DateTime<Utc>]) -> Vec<Tier> {
        tiers
            .iter()
            .copied()
            .filter(|tier| {
                let period = tier.period(at);
                !others.iter().any(|&other| other < at && tier.period(other) == period)
            })
            .collect()
    }
}

impl fmt::Display for RetentionPolicy {
    /// `7 daily, 4 weekly, 12 monthly`: the tiers with a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Tier::ALL
            .into_iter()
            .filter(|&tier| self.count(tier) > 0)
            .map(|tier| format!("{} {tier}", self.count(tier)))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn counts(daily: u32, weekly: u32, monthly: u32, yearly: u32) -> RetentionPolicy {
        RetentionPolicy {
            daily,
            weekly,
            monthly,
            yearly,
        }
    }

    #[test]
    fn a_snapshot_expires_when_its_longest_tier_moves_past_its_period() {
        let policy = counts(7, 4, 12, 7);
        let wednesday = at(2026, 12, 2, 3);
        let tiers = |names: &[Tier]| {
            let mut tiers = Tiers::default();
            names.iter().for_each(|&tier| tiers.insert(tier));
            tiers
        };
        assert_eq!(
            policy.expires(tiers(&[Tier::Daily]), wednesday),
            Some(at(2026, 12, 9, 0))
        );
        // Its week began on Monday 30 November: four weeks on.
        assert_eq!(
            policy.expires(tiers(&[Tier::Daily, Tier::Weekly]), wednesday),
            Some(at(2026, 12, 28, 0))
        );
        assert_eq!(
            policy.expires(tiers(&[Tier::Daily, Tier::Monthly]), wednesday),
            Some(at(2027, 12, 1, 0))
        );
        assert_eq!(
            policy.expires(tiers(&[Tier::Yearly]), wednesday),
            Some(at(2033, 1, 1, 0))
        );
        assert_eq!(policy.expires(Tiers::default(), wednesday), None);
    }

    #[test]
    fn the_expiry_is_the_day_the_tiers_stop_keeping_it_when_backups_go_on_daily() {
        let policy = counts(3, 2, 2, 1);
        let first = at(2026, 1, 1, 3);
        let created: Vec<DateTime<Utc>> = (0..800).map(|day| first + chrono::Duration::days(day)).collect();
        for s in (0..700).step_by(5) {
            let tiers = policy.keeping(&created[..=s])[s];
            let expires = policy.expires(tiers, created[s]).expect("the newest snapshot is kept");
            let day = usize::try_from((expires - at(2026, 1, 1, 0)).num_days()).unwrap();
            if day >= created.len() {
                continue;
            }
            assert!(
                !policy.keeping(&created[..day])[s].is_empty(),
                "snapshot {s} kept the day before {expires}"
            );
            assert!(
                policy.keeping(&created[..=day])[s].is_empty(),
                "snapshot {s} gone once {expires} has one"
            );
        }
    }

    #[test]
    fn iso_weeks_run_monday_to_sunday_across_the_year() {
        // 2026-12-28 is a Monday: ISO week 53 of 2026 runs to Sunday 2027-01-03.
        assert_eq!(Tier::Weekly.period(at(2026, 12, 28, 0)), 2026 * 100 + 53);
        assert_eq!(Tier::Weekly.period(at(2027, 1, 3, 23)), 2026 * 100 + 53);
        assert_eq!(Tier::Weekly.period(at(2027, 1, 4, 0)), 2027 * 100 + 1);
        // ... while the calendar year of those days differs.
        assert_eq!(Tier::Yearly.period(at(2027, 1, 3, 23)), 2027);
    }

    #[test]
    fn the_first_snapshot_of_each_period_represents_it_and_the_newest_periods_are_kept() {
        // Two snapshots a day (3:00 and 15:00) for 60 days from Thursday 2026-10-01.
        let created: Vec<_> = (0..120)
            .map(|i| at(2026, 10, 1, 3) + chrono::Duration::hours(12 * i))
            .collect();
        let policy = RetentionPolicy {
            daily: 3,
            weekly: 2,
            monthly: 2,
            yearly: 1,
        };
        let kept = policy.keeping(&created);
        let kept_by = |tier: Tier| -> Vec<DateTime<Utc>> {
            (0..created.len())
                .filter(|&i| kept[i].contains(tier))
                .map(|i| created[i])
                .collect()
        };
        // The last three days' morning snapshots.
        assert_eq!(
            kept_by(Tier::Daily),
            [at(2026, 11, 27, 3), at(2026, 11, 28, 3), at(2026, 11, 29, 3)]
        );
        // ISO weeks begin on Monday: 2026-11-16 and 2026-11-23.
        assert_eq!(kept_by(Tier::Weekly), [at(2026, 11, 16, 3), at(2026, 11, 23, 3)]);
        assert_eq!(kept_by(Tier::Monthly), [at(2026, 10, 1, 3), at(2026, 11, 1, 3)]);
        assert_eq!(kept_by(Tier::Yearly), [at(2026, 10, 1, 3)]);
        let kept_count = kept.iter().filter(|t| !t.is_empty()).count();
        assert_eq!(kept_count, 3 + 2 + 2, "the first of October is both monthly and yearly");
        assert_eq!(kept[0].to_string(), "monthly yearly");
        assert_eq!(Tiers::default().to_string(), "none");
    }

    #[test]
    fn a_day_without_a_snapshot_does_not_use_up_a_place() {
        let created = [at(2026, 11, 1, 3), at(2026, 11, 2, 3), at(2026, 11, 9, 3)];
        let kept = RetentionPolicy {
            daily: 2,
            ..RetentionPolicy::default()
        }
        .keeping(&created);
        assert_eq!(
            kept.iter().map(|t| !t.is_empty()).collect::<Vec<_>>(),
            [false, true, true]
        );
    }

    #[test]
    fn policies_that_keep_nothing_or_too_much_or_name_unknown_tiers_are_refused() {
        assert!(RetentionPolicy::from_json("{}").unwrap_err().contains("keeps nothing"));
        assert!(
            RetentionPolicy::from_json(r#"{"daily": 0}"#)
                .unwrap_err()
                .contains("keeps nothing")
        );
        let unknown = RetentionPolicy::from_json(r#"{"dayly": 7}"#).unwrap_err();
        assert!(unknown.contains("dayly"), "{unknown}");
        assert!(RetentionPolicy::from_json(r#"{"daily": -1}"#).is_err());
        assert!(
            RetentionPolicy::from_json(r#"{"yearly": 101}"#)
                .unwrap_err()
                .contains("yearly is 101")
        );
        let policy = RetentionPolicy::from_json(r#"{"daily": 7, "monthly": 12}"#).unwrap();
        assert_eq!(policy.to_string(), "7 daily, 12 monthly");
    }

    #[test]
    fn a_snapshot_is_first_of_its_period_when_no_earlier_one_shares_it() {
        let tiers = [Tier::Monthly, Tier::Yearly];
        let others = [at(2026, 11, 30, 3), at(2026, 12, 1, 3)];
        assert_eq!(
            RetentionPolicy::first_of_period(&tiers, at(2026, 12, 1, 3), &others),
            [Tier::Monthly]
        );
        assert_eq!(
            RetentionPolicy::first_of_period(&tiers, at(2026, 12, 2, 3), &others),
            Vec::<Tier>::new()
        );
        assert_eq!(
            RetentionPolicy::first_of_period(&tiers, at(2027, 1, 1, 3), &others),
            tiers
        );
    }
}
