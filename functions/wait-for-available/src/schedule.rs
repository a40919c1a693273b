//! When to poll next. A fixed interval costs polls (Lambda invocations, RDS
//! calls, state transitions) in proportion to how long RDS takes; here the
//! next poll is when the operation should be done, from its `PercentProgress`:
//! the rate measured since progress was first seen (or since the last poll
//! that saw none, or, at the first poll, since the wait began, at 0 %), and most
//! of the time left at that rate. While RDS shows no progress
//! (a queued copy, an export `STARTING`), each wait lasts as long as the wait
//! so far, so their number grows with the logarithm of the duration. Every
//! wait is at least the configured interval, at most [`LONGEST_POLL_INTERVAL_SECONDS`],
//! and never past the wait's bound: the last poll is at the bound, where an
//! unfinished operation is `timed_out`.

use backup_core::run::LONGEST_POLL_INTERVAL_SECONDS;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
/// The share of the estimated time left that a wait lasts: PercentProgress is a
/// whole number, so an early estimate can be long by a third; a poll a little
/// early costs one more poll, one late costs the whole overshoot.
const AIM: f64 = 0.9;

/// A progress reading: what RDS said, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub at: DateTime<Utc>,
    pub percent: i32,
}

/// The wait so far, as the previous poll left it (the state machine hands it back).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WaitSoFar {
    /// When the wait began (`$$.State.EnteredTime` of its first state).
    pub started_at: DateTime<Utc>,
    /// The reading the rate is measured from: the first that showed progress, or,
    /// while none has, the latest.
    #[serde(default)]
    pub since: Option<Reading>,
}

/// The next poll, and the reading later polls measure from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextPoll {
    pub elapsed_seconds: u64,
    pub next_poll_seconds: u64,
    pub timed_out: bool,
    pub since: Reading,
}

/// The schedule after a poll at `now` that read `percent` (None: RDS gave none).
pub fn next_poll(
    wait: &WaitSoFar,
    now: DateTime<Utc>,
    percent: Option<i32>,
    interval_seconds: u64,
    timeout_seconds: u64,
) -> NextPoll {
    let elapsed_seconds = u64::try_from((now - wait.started_at).num_seconds()).unwrap_or(0);
    let reading = Reading {
        at: now,
        percent: percent.unwrap_or(0).clamp(0, 100),
    };
    let since = match wait.since {
        Some(since) if since.percent > 0 => since,
        _ => reading,
    };
    // Before the first poll the operation was at 0 % when the wait began (it starts the wait).
    let from = wait.since.unwrap_or(Reading {
        at: wait.started_at,
        percent: 0,
    });
    let estimate = seconds_left(from, reading).map_or(elapsed_seconds as f64, |left| left * AIM);
    let left_in_bound = timeout_seconds.saturating_sub(elapsed_seconds);
    let next_poll_seconds = (estimate.ceil() as u64)
        .clamp(
            interval_seconds.max(1),
            LONGEST_POLL_INTERVAL_SECONDS.max(interval_seconds),
        )
        .min(left_in_bound)
        .max(1);
    NextPoll {
        elapsed_seconds,
        next_poll_seconds,
        timed_out: elapsed_seconds >= timeout_seconds,
        since,
    }
}

/// Seconds until 100 % at the rate from `from` to `now`; None without progress between them.
fn seconds_left(from: Reading, now: Reading) -> Option<f64> {
    let seconds = (now.at - from.at).num_milliseconds() as f64 / 1000.0;
    if now.percent <= from.percent || now.percent >= 100 || seconds <= 0.0 {
        return None;
    }
    // PercentProgress is truncated: progress first seen as N % began at most N + 1 % ago,
    // so the first rate counts half a percent more.
    let gained = f64::from(now.percent - from.percent) + if from.percent == 0 { 0.5 } else { 0.0 };
    Some(f64::from(100 - now.percent) * seconds / gained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn start() -> DateTime<Utc> {
        "2026-11-24T02:00:00Z".parse().unwrap()
    }

    /// An operation queued `queued` seconds, then progressing linearly for `working`.
    fn percent_at(t: i64, queued: i64, working: i64) -> i32 {
        if t < queued {
            0
        } else {
            (100 * (t - queued) / working).min(100) as i32
        }
    }

    /// Polls an operation until it is done, the first poll one interval after the wait
    /// began (as the state machine does): how many polls, and how late the last one was.
    fn polls(queued: i64, working: i64, interval: u64, timeout: u64) -> (usize, i64, bool) {
        let mut wait = WaitSoFar {
            started_at: start(),
            since: None,
        };
        let (mut t, mut count) = (interval as i64, 0);
        loop {
            count += 1;
            let percent = percent_at(t, queued, working);
            if percent >= 100 {
                return (count, t - (queued + working), false);
            }
            let next = next_poll(&wait, start() + Duration::seconds(t), Some(percent), interval, timeout);
            if next.timed_out {
                return (count, 0, true);
            }
            wait.since = Some(next.since);
            t += next.next_poll_seconds as i64;
        }
    }

    #[test]
    fn long_operations_cost_a_few_polls_not_one_a_minute() {
        // A 1-hour snapshot, a 3-hour copy, a 6-hour export (10 minutes STARTING first).
        let (snapshot, copy, export) = (
            polls(0, 3600, 60, 86_400),
            polls(0, 10_800, 60, 86_400),
            polls(600, 21_600, 60, 86_400),
        );
        assert!(
            snapshot.0 <= 2 && copy.0 <= 6 && export.0 <= 9,
            "{snapshot:?} {copy:?} {export:?}"
        );
        // Done is seen soon after it happens.
        assert!(
            snapshot.1 <= 120 && copy.1 <= 600 && export.1 <= 600,
            "{snapshot:?} {copy:?} {export:?}"
        );
    }

    #[test]
    fn the_first_poll_measures_the_rate_from_the_start_of_the_wait() {
        // One interval in, 2 % of an operation: the rest at that rate (90 % of it).
        let wait = WaitSoFar {
            started_at: start(),
            since: None,
        };
        let first = next_poll(&wait, start() + Duration::seconds(60), Some(2), 60, 86_400);
        assert_eq!(first.next_poll_seconds, (98.0 * 60.0 / 2.5 * AIM).ceil() as u64);
        assert_eq!(
            first.since,
            Reading {
                at: start() + Duration::seconds(60),
                percent: 2
            }
        );
        // No progress yet: the wait so far again.
        let queued = next_poll(&wait, start() + Duration::seconds(300), Some(0), 60, 86_400);
        assert_eq!(queued.next_poll_seconds, 300);
    }

    #[test]
    fn a_queue_without_progress_is_polled_less_and_less_often() {
        let (count, _, timed_out) = polls(4 * 3600, 600, 60, 86_400);
        assert!(!timed_out);
        assert!(count <= 12, "{count} polls");
    }

    #[test]
    fn the_last_poll_is_at_the_bound_and_times_out() {
        let (count, _, timed_out) = polls(0, 20_000, 60, 3600);
        assert!(timed_out);
        assert!(count <= 8, "{count} polls");
        let wait = WaitSoFar {
            started_at: start(),
            since: None,
        };
        let at_bound = next_poll(&wait, start() + Duration::seconds(3600), Some(10), 60, 3600);
        assert!(at_bound.timed_out);
        let before = next_poll(&wait, start() + Duration::seconds(3590), Some(0), 60, 3600);
        assert_eq!((before.timed_out, before.next_poll_seconds), (false, 10));
    }

    proptest! {
        /// Whatever the readings, a wait is at least the interval (unless the bound is
        /// nearer), at most the maximum, and never past the bound.
        #[test]
        fn every_wait_stays_within_its_limits(
            elapsed in 0_i64..100_000, since_ago in 0_i64..100_000, since_percent in 0_i32..=100,
            percent in proptest::option::of(-5_i32..=105), interval in 1_u64..3600, timeout in 1_u64..200_000,
        ) {
            let now = start() + Duration::seconds(elapsed);
            let wait = WaitSoFar {
                started_at: start(),
                since: Some(Reading { at: now - Duration::seconds(since_ago), percent: since_percent }),
            };
            let next = next_poll(&wait, now, percent, interval, timeout);
            let left = timeout.saturating_sub(elapsed as u64);
            prop_assert!(next.next_poll_seconds >= 1);
            prop_assert!(next.next_poll_seconds <= left.max(1));
            prop_assert!(next.next_poll_seconds >= interval.min(left).max(1));
            prop_assert!(next.next_poll_seconds <= LONGEST_POLL_INTERVAL_SECONDS.max(interval));
            prop_assert_eq!(next.timed_out, elapsed as u64 >= timeout);
        }
    }
}
