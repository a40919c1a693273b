//! Restore drills: what the `drill` function and notify share. A drill restores a database's
//! newest backup (with [`crate::restore`], as `scripts/restore` does) to a new, tagged DB
//! instance or cluster, waits for it, checks it against the snapshot, measures the recovery
//! time and deletes it. [`DrillRestore`] is one database's drill as it goes from state to state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::DatabaseKind;

/// The tag every drill database carries: the module instance's managed-by value. The drill
/// function deletes only databases carrying it (IAM holds it to them too).
pub const DRILL: &str = "database-backup:drill";
/// When the sweeper may delete a drill database whatever happened to its drill (RFC 3339):
/// the restore's request, plus the longest wait, plus the keep time, plus a margin.
pub const DELETE_AFTER: &str = "database-backup:drill-delete-after";

/// Which copy of the backups a drill restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopySource {
    /// The newest backup in the module's region.
    Source,
    /// The newest cross-region copy, in the copy region.
    Copy,
    /// The newest copy in the vault account, restored there through the vault's drill role.
    Vault,
}

/// What a restored database is checked against: the snapshot's, as RDS describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub engine: String,
    pub engine_version: Option<String>,
    /// GiB; not checked for Aurora, whose storage grows with its data.
    pub allocated_storage_gib: Option<u32>,
    pub encrypted: Option<bool>,
}

/// One check of the restored database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

/// One database's drill: what `restore` asked for, and what `check` saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRestore {
    pub db: String,
    pub region: String,
    /// The vault account, when the drill restores there (None: the module's own account; left
    /// out, so that a step's record reads as before where it is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub kind: DatabaseKind,
    /// The drill database's identifier.
    pub restored_id: String,
    pub snapshot_id: String,
    pub snapshot_created_at: Option<DateTime<Utc>>,
    /// The RDS action of the restore (RestoreDBInstanceFromDBSnapshot...).
    pub operation: String,
    pub requested_at: DateTime<Utc>,
    /// The wait's bound: a restore not available by then ends the drill (WaitTimedOut).
    pub deadline: DateTime<Utc>,
    pub delete_after: DateTime<Utc>,
    pub rto_minutes: u32,
    /// How long the drill keeps the database once checked (0: deleted at once).
    pub keep_seconds: u32,
    pub poll_seconds: u32,
    pub expected: Expected,
    /// The restored database's last status read.
    pub status: String,
    pub ready: bool,
    /// Seconds until the next check.
    pub next_poll_seconds: u32,
    /// The first check that found it available (the recovery time's end, to within a poll).
    #[serde(default)]
    pub available_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub checks: Vec<Check>,
    /// What the SQL probe connects to (`restore_drill.sql_probe`), once the database is
    /// available, when the probe is configured for it; left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeTarget>,
    /// An Aurora drill's writer: the DB instance the drill adds to the restored cluster once it
    /// is available, without which nothing connects to it. Left out for a DB instance's drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<DrillWriter>,
}

/// The DB instance an Aurora drill adds to its restored cluster ([`crate::restore::WriterRequest`]):
/// the recovery time runs until it is available, and it is deleted before the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillWriter {
    pub instance_id: String,
    pub instance_class: String,
    /// Whether CreateDBInstance was sent (once the cluster was available).
    #[serde(default)]
    pub requested: bool,
    /// The writer's last status read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Where and how the `probe` function queries a restored database: read-only, with the
/// credentials of a Secrets Manager secret, over TLS verified against the RDS certificate
/// authorities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTarget {
    pub engine: String,
    pub address: String,
    pub port: u16,
    /// The database to connect to: the instance's DBName, if it has one (else the secret's
    /// `dbname`, else the engine's default).
    pub database: Option<String>,
    pub secret_arn: String,
    pub query: String,
    pub connect_timeout_seconds: u32,
}

/// The name of the SQL probe's entry in a drill's checks.
pub const PROBE_CHECK: &str = "sql probe";

/// The wire protocols the SQL probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProtocol {
    Postgres,
    MySql,
}

/// The engines the SQL probe speaks to, each with its protocol: RDS for PostgreSQL and Aurora
/// PostgreSQL, and RDS for MySQL, RDS for MariaDB and Aurora MySQL (MariaDB speaks MySQL's
/// protocol; each Aurora edition is "compatible with" its engine's, Aurora User Guide).
pub const PROBED_ENGINES: [(&str, ProbeProtocol); 5] = [
    ("postgres", ProbeProtocol::Postgres),
    ("aurora-postgresql", ProbeProtocol::Postgres),
    ("mysql", ProbeProtocol::MySql),
    ("mariadb", ProbeProtocol::MySql),
    ("aurora-mysql", ProbeProtocol::MySql),
];

impl ProbeProtocol {
    /// The protocol of an RDS engine (`DBInstance.Engine`), if the probe speaks to it.
    pub fn of_engine(engine: &str) -> Option<Self> {
        PROBED_ENGINES
            .iter()
            .find(|(probed, _)| *probed == engine)
            .map(|(_, protocol)| *protocol)
    }
}

/// What `delete` did to a drill database: the drill function's output, in notify's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deleted {
    pub restored_id: String,
    /// RDS's status after the call (`deleting`), or `gone`.
    pub status: String,
    /// An Aurora drill's DB instances, deleted before its cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
}

/// What the sweep deleted (databases of drills that did not finish), kept (not yet due) and
/// could not do (a place it could not list, a database it could not delete: each fails the
/// drill): the drill function's output, in notify's report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swept {
    pub deleted: Vec<String>,
    pub kept: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// Where a drill database is, as messages name it: its region, and the vault's account when
/// the drill restored there.
pub fn place_label(region: &str, account: Option<&str>) -> String {
    match account {
        None => region.to_owned(),
        Some(account) => format!("{region}, vault account {account}"),
    }
}

impl DrillRestore {
    /// Minutes from the restore's request to the first check that found it available.
    pub fn recovery_minutes(&self) -> Option<f64> {
        self.available_at
            .map(|at| (at - self.requested_at).num_milliseconds() as f64 / 60_000.0)
    }

    pub fn checks_passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|check| check.passed)
    }
}
