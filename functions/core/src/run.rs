//! The settings of one run: the module's configuration, which the run state
//! machine passes as `defaults`, overridden field by field by the execution
//! input. [`FIELDS`] lists the fields once: the `select` function checks both
//! against it, and the contract publishes it (Terraform holds the defaults it
//! passes to it, the docs' table of the execution input comes from it).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::selection::Selection;
use crate::types::{Execution, PruneRequest};

/// What a field's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A non-empty list of identifiers (each is checked when its database is backed up).
    Databases,
    /// A whole number of at least 1.
    WholeNumber,
    /// The shortest wait between polls, seconds: a poll that comes later than the wait's
    /// heartbeat ([`WAIT_HEARTBEAT_SECONDS`]) would fail it (the module's own are 5 to 3600).
    PollInterval,
    /// The bound on a wait, seconds: as the module's `wait_timeout_seconds` (60 s to 7 days).
    WaitBound,
    Flag,
}

/// The longest poll interval and wait bound an execution input may set.
pub const MAX_POLL_INTERVAL_SECONDS: u32 = 3600;
pub const MIN_WAIT_BOUND_SECONDS: u32 = 60;
pub const MAX_WAIT_BOUND_SECONDS: u32 = 604_800;

impl Kind {
    /// The end of "<field> must be ...".
    pub const fn expected(self) -> &'static str {
        match self {
            Kind::Databases => "a non-empty list of DB instance or Aurora cluster identifiers",
            Kind::WholeNumber => "a whole number from 1 to 4294967295",
            Kind::PollInterval => "a whole number of seconds from 1 to 3600",
            Kind::WaitBound => "a whole number of seconds from 60 to 604800 (7 days)",
            Kind::Flag => "true or false",
        }
    }

    /// `value` as the run uses it (`30.0` becomes `30`), or why it is refused:
    /// `must be ..., not <value>`.
    pub fn check(self, value: &Value) -> Result<Value, String> {
        let refused = || format!("must be {}, not {}", self.expected(), quoted(value));
        match self {
            Kind::Databases => {
                let ids = value
                    .as_array()
                    .filter(|ids| !ids.is_empty() && ids.iter().all(Value::is_string))
                    .ok_or_else(refused)?;
                // Two executions of one database in a run would race for one snapshot name.
                let mut seen = std::collections::BTreeSet::new();
                for id in ids.iter().filter_map(Value::as_str) {
                    if !seen.insert(id.to_ascii_lowercase()) {
                        return Err(format!("lists {id} twice (RDS identifiers are case-insensitive)"));
                    }
                }
                Ok(value.clone())
            }
            Kind::WholeNumber | Kind::PollInterval | Kind::WaitBound => {
                let whole = value.as_u64().or_else(|| {
                    value
                        .as_f64()
                        .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                        .map(|n| n as u64)
                });
                let range = match self {
                    Kind::PollInterval => 1..=MAX_POLL_INTERVAL_SECONDS,
                    Kind::WaitBound => MIN_WAIT_BOUND_SECONDS..=MAX_WAIT_BOUND_SECONDS,
                    _ => 1..=u32::MAX,
                };
                match whole.and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if range.contains(&n) => Ok(Value::from(n)),
                    _ => Err(refused()),
                }
            }
            Kind::Flag => value.as_bool().map(Value::from).ok_or_else(refused),
        }
    }
}

/// Longest quotation of a refused value in an error message.
const MAX_QUOTED: usize = 120;

/// `value` as JSON, shortened to [`MAX_QUOTED`] bytes.
pub fn quoted(value: &Value) -> String {
    let mut text = value.to_string();
    if crate::text::truncate_bytes(&mut text, MAX_QUOTED) {
        text.push_str("...");
    }
    text
}

/// Which part of the run a field configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Which databases the run backs up.
    Selection,
    /// Every database's execution (its `config`).
    Database,
    /// The prune step's input.
    Prune,
    /// Whether the run prunes at all.
    Run,
}

/// One field of the execution input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub part: Part,
    /// Where the module's value comes from (a Terraform variable, or a constant).
    pub default: &'static str,
    pub effect: &'static str,
}

const fn field(name: &'static str, kind: Kind, part: Part, default: &'static str, effect: &'static str) -> Field {
    Field {
        name,
        kind,
        part,
        default,
        effect,
    }
}

/// The fields of the execution input, every one optional: the run's settings.
pub const FIELDS: [Field; 14] = [
    field(
        "db_instance_ids",
        Kind::Databases,
        Part::Selection,
        "`rds_instance_ids` and `rds_cluster_ids`",
        "the DB instances or Aurora clusters to back up: the module's, or some of them (no other: the functions' roles allow only those)",
    ),
    field(
        "retention_days",
        Kind::WholeNumber,
        Part::Prune,
        "`backup_retention_days`",
        "prune's retention",
    ),
    field(
        "min_snapshots_to_keep",
        Kind::WholeNumber,
        Part::Prune,
        "`min_snapshots_to_keep`",
        "prune never deletes the newest N of a database",
    ),
    field(
        "dry_run",
        Kind::Flag,
        Part::Prune,
        "`prune_dry_run`",
        "prune reports what it would delete and deletes nothing",
    ),
    field(
        "confirm_retention_change",
        Kind::Flag,
        Part::Prune,
        "false",
        "prune may delete more of a database's snapshots in this run than `prune_guard_fraction` allows: a retention change that is meant",
    ),
    field(
        "skip_export",
        Kind::Flag,
        Part::Database,
        "not `enable_s3_export`",
        "no export to S3 in this run",
    ),
    field(
        "skip_copy",
        Kind::Flag,
        Part::Database,
        "not `enable_cross_region_copy`",
        "no cross-region copy in this run",
    ),
    field(
        "skip_vault",
        Kind::Flag,
        Part::Database,
        "`vault` unset",
        "no copy to the vault account in this run",
    ),
    field("skip_prune", Kind::Flag, Part::Run, "false", "no retention in this run"),
    field(
        "poll_interval_seconds",
        Kind::PollInterval,
        Part::Database,
        "`poll_interval_seconds`",
        "the shortest wait between polls of a snapshot or a copy",
    ),
    field(
        "export_poll_interval_seconds",
        Kind::PollInterval,
        Part::Database,
        "`export_poll_interval_seconds`",
        "the shortest wait between polls of an export",
    ),
    field(
        "snapshot_wait_timeout_seconds",
        Kind::WaitBound,
        Part::Database,
        "`wait_timeout_seconds.snapshot`",
        "bound on waiting for the snapshot",
    ),
    field(
        "export_wait_timeout_seconds",
        Kind::WaitBound,
        Part::Database,
        "`wait_timeout_seconds.export`",
        "bound on waiting for the export",
    ),
    field(
        "copy_wait_timeout_seconds",
        Kind::WaitBound,
        Part::Database,
        "`wait_timeout_seconds.copy`",
        "bound on waiting for the copy, and for the vault copy",
    ),
];

/// Input of `select`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SelectRequest {
    /// The module's configuration: every field of [`FIELDS`].
    pub defaults: Value,
    /// The execution input: any of the fields, each overriding its default.
    pub input: Value,
    pub execution: Execution,
}

/// Output of `select`: the run's settings, split by the part of the run that uses them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPlan {
    pub databases: Vec<String>,
    /// The `config` of every database's execution.
    pub database_config: Map<String, Value>,
    /// The prune step's input.
    pub prune: PruneRequest,
    pub skip_prune: bool,
    /// How the databases were chosen: the run summary lists it.
    pub selection: Selection,
}

/// The fields' names, in order: `db_instance_ids, retention_days, ...`.
pub fn field_names() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// The field named `name`.
pub fn field_named(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The longest wait between two polls of a wait (wait-for-available's schedule): an estimate
/// of the time left that is too long costs at most this.
pub const LONGEST_POLL_INTERVAL_SECONDS: u64 = 7200;
/// How long a wait's task goes without a poll's heartbeat before Step Functions fails it
/// (`HeartbeatSeconds`; the task fails with `States.Timeout`): a poll that schedules none after it
/// (its invocation dropped, its schedule lost) fails the database within this, not at the
/// wait's bound, hours or days later. The longest time between two polls, then an hour for the
/// Scheduler's minute and a queued or slow invocation.
pub const WAIT_HEARTBEAT_SECONDS: u64 = LONGEST_POLL_INTERVAL_SECONDS + 3600;
/// The most a wait's task lasts (`TimeoutSeconds`): the longest bound, then a heartbeat. Its
/// polls end it at its own bound (WaitTimedOut); this only says it in the definition, where
/// Step Functions' default is 99999999 s and the States Language's 60 s.
pub const WAIT_TASK_TIMEOUT_SECONDS: u64 = MAX_WAIT_BOUND_SECONDS as u64 + WAIT_HEARTBEAT_SECONDS;

/// The longest wait between two tries for a slot, unless the caller expects one to come
/// free later: a slot comes free when any of the running copies or exports ends, which a
/// longer wait would leave idle.
pub const SLOT_LONGEST_WAIT_SECONDS: u64 = 900;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SlotWait;
    use chrono::{Duration, TimeZone, Utc};

    /// Step Functions keeps at most 25,000 events in one execution's history ("Quotas for
    /// state machine executions", Step Functions Developer Guide).
    const HISTORY_EVENTS_LIMIT: u64 = 25_000;
    /// The events one try for a slot adds: the try task (5: entered, scheduled, started,
    /// succeeded, exited), its choice (2), its wait (2); an export's waits in the queue (a
    /// `.waitForTaskToken` task: entered, scheduled, started, submitted, succeeded or timed
    /// out, exited) 4 more.
    const EVENTS_PER_SLOT_TRY: u64 = 9;
    const QUEUED_TRY_EXTRA_EVENTS: u64 = 4;
    /// The rest of a database's execution: its states (about 60 events, a wait's task 6
    /// however many polls it makes) and the retries of its tasks (about 3 events each).
    const OTHER_EVENTS: u64 = 500;

    /// The most tries for a slot within `bound`: each waits at least as long as the wait
    /// so far up to [`SLOT_LONGEST_WAIT_SECONDS`], and at least `interval`
    /// (`SlotWait::next_try_seconds`), so at most log2(900 / interval) + 1 waits reach the
    /// longest, then one every 15 minutes (or every interval, if longer); and the try at
    /// the bound.
    fn slot_tries(bound: u64, interval: u64) -> u64 {
        let interval = interval.max(1);
        let shorter_than_longest = (0..u64::BITS)
            .take_while(|&k| interval.saturating_mul(1 << k) < SLOT_LONGEST_WAIT_SECONDS)
            .count() as u64;
        shorter_than_longest + 1 + bound.div_ceil(interval.max(SLOT_LONGEST_WAIT_SECONDS)) + 1
    }

    #[test]
    fn the_longest_waits_fit_in_an_executions_history_whatever_the_intervals() {
        // A wait's polls add no event (one task, ended by a poll: wait-for-available's
        // callback.rs); only the tries for a slot do, and the vault step's tries (a task, a
        // choice and a wait each, as a copy's try for a slot). The export, the copy and the
        // vault copy each wait the longest bound at the shortest interval (1 s), and find no
        // slot, or their copy never done.
        let tries = slot_tries(u64::from(MAX_WAIT_BOUND_SECONDS), 1);
        let events = OTHER_EVENTS
            + tries * (EVENTS_PER_SLOT_TRY + QUEUED_TRY_EXTRA_EVENTS)
            + tries * EVENTS_PER_SLOT_TRY
            + tries * EVENTS_PER_SLOT_TRY;
        assert_eq!(tries, 10 + 1 + 672 + 1);
        assert!(events <= HISTORY_EVENTS_LIMIT, "{events} events");
    }

    /// The tries made when no slot ever comes and nothing says when one should: the
    /// waits as `SlotWait` gives them.
    fn simulated_tries(bound: u64, interval: u64) -> u64 {
        let started_at = Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap();
        let mut slot = SlotWait {
            started_at,
            tried_at: started_at,
            interval_seconds: interval,
            timeout_seconds: bound,
            queued: false,
        };
        let mut tries = 1;
        while !slot.is_over() {
            let wait = slot.next_try_seconds(None);
            slot.tried_at += Duration::seconds(wait as i64);
            tries += 1;
        }
        tries
    }

    #[test]
    fn a_wait_in_the_queue_doubles_and_is_never_shorter_than_a_plain_one() {
        let started_at = Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap();
        let slot = |waited: i64| SlotWait {
            started_at,
            tried_at: started_at + Duration::seconds(waited),
            interval_seconds: 300,
            timeout_seconds: 86_400,
            queued: false,
        };
        // The hand-on expected, plus two intervals for its execution to see the export end
        // and hand its slot on.
        assert_eq!(slot(0).next_try_in_queue(Some(3600)), 4200);
        assert_eq!(slot(0).next_try_in_queue(None), 900);
        // Far back in the queue: twice the wait so far, then what is left of the bound.
        assert_eq!(slot(18_000).next_try_in_queue(Some(3600)), 36_000);
        assert_eq!(slot(36_000).next_try_in_queue(None), 50_400);
        for waited in (0..86_400).step_by(97) {
            assert!(slot(waited).next_try_in_queue(None) >= slot(waited).next_try_seconds(None));
        }
    }

    #[test]
    fn the_slot_tries_bound_holds_the_tries_made() {
        for interval in [5, 30, 60, 300, 899, 900, 3600] {
            for bound in [60, 3600, 21_600, 86_400, 604_800] {
                let (made, bound_of_tries) = (simulated_tries(bound, interval), slot_tries(bound, interval));
                assert!(
                    made <= bound_of_tries,
                    "{interval} s, {bound} s: {made} tries > {bound_of_tries}"
                );
                // And not far above: a waste of the history the check allows.
                assert!(
                    bound_of_tries <= made + 10,
                    "{interval} s, {bound} s: {made} tries, bound {bound_of_tries}"
                );
            }
        }
        // 60 s: waits of 60, 60, 120, 240, 480, then 900 (24 of them in 6 hours), and the last try.
        assert_eq!(slot_tries(21_600, 60), 5 + 24 + 1);
    }
}
