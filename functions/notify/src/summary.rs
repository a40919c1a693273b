//! The run summary: what the state machine hands `notify`, each database's
//! result read from its execution, and the texts made from them for SNS
//! (subject + plain text) and Slack (Block Kit).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use backup_core::config::ModuleSettings;
use backup_core::cost;
use backup_core::selection::{Group, NAMED, Selection};
use backup_core::types::{Execution, ExportRecord, PruneResult, SnapshotRecord, VaultCheck, VaultRecord};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::recovery::RecoveryReport;
use crate::results::DatabaseRun;

/// A run: its databases (`R`), prune's outcome and what stopped it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report<R> {
    pub execution: Execution,
    #[serde(default = "Vec::new")]
    pub results: Vec<R>,
    /// Prune's result; absent when prune was skipped or failed.
    #[serde(default)]
    pub prune: Option<PruneResult>,
    /// Prune's error, as Step Functions' Catch recorded it.
    #[serde(default)]
    pub prune_error: Option<StepError>,
    /// Why the run stopped before or while backing up: a wrong execution
    /// input, or a failure of the Map itself.
    #[serde(default)]
    pub run_error: Option<StepError>,
    /// How select chose the databases; absent when the run stopped before.
    #[serde(default)]
    pub selection: Option<Selection>,
    /// The run's check of the vault, when it has one and the check passed.
    #[serde(default)]
    pub vault: Option<VaultCheck>,
    /// Why no database's snapshot went to the vault in this run (the check failed).
    #[serde(default)]
    pub vault_error: Option<StepError>,
}

/// The run's report as the Map recorded it: each database's execution.
pub type NotifyRequest = Report<DatabaseRun>;

/// Input of `notify` from the run's `Notify` state: the report, and when the
/// state was entered (`$$.State.EnteredTime`): the run's duration and the ages
/// it reports are measured at that time, on Step Functions' clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunNotification {
    pub report: NotifyRequest,
    pub notified_at: DateTime<Utc>,
}
/// What `notify` reports: each database's result, read from its execution.
pub type RunReport = Report<ItemResult>;

impl NotifyRequest {
    /// The same run with each database's result in place of its execution.
    pub fn with_results(self, results: Vec<ItemResult>) -> RunReport {
        Report {
            execution: self.execution,
            results,
            prune: self.prune,
            prune_error: self.prune_error,
            run_error: self.run_error,
            selection: self.selection,
            vault: self.vault,
            vault_error: self.vault_error,
        }
    }
}

/// The outcome of one database: the output of its execution of the database
/// state machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemResult {
    pub db_identifier: String,
    #[serde(default)]
    pub snapshot: Option<SnapshotRecord>,
    #[serde(default)]
    pub export: Option<ExportRecord>,
    #[serde(default)]
    pub copy: Option<SnapshotRecord>,
    #[serde(default)]
    pub error: Option<StepError>,
    /// The export or its wait failed; the snapshot itself may be fine.
    #[serde(default)]
    pub export_error: Option<StepError>,
    /// RDS's warning of a complete export (e.g. tables it skipped).
    #[serde(default)]
    pub export_warning: Option<String>,
    /// The cross-region copy or its wait failed.
    #[serde(default)]
    pub copy_error: Option<StepError>,
    /// Why copy made no copy (a TDE option group with no destination group configured).
    #[serde(default)]
    pub copy_warning: Option<String>,
    /// The copy in the vault account.
    #[serde(default)]
    pub vault: Option<VaultRecord>,
    /// The copy into the vault failed; the backup in this account stands.
    #[serde(default)]
    pub vault_error: Option<StepError>,
    /// When the branch finished (`$$.State.EnteredTime` of its last state).
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
}

/// An error caught by the state machine: `Error` is the stable error name,
/// `Cause` the message (for Lambda errors, a JSON document holding it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepError {
    /// The state that failed (snapshot, wait, export, copy, prune).
    #[serde(default)]
    pub step: Option<String>,
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepError {
    /// The human-readable cause: Lambda errors carry their message inside a
    /// JSON `Cause` (`{"errorType": ..., "errorMessage": ...}`).
    pub fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.cause.clone())
    }

    /// `copy: CopySlotsFull: <message>`.
    pub fn describe(&self) -> String {
        let step = self.step.as_deref().map(|s| format!("at {s}: ")).unwrap_or_default();
        let message = self.message();
        if message.is_empty() {
            format!("{step}{}", self.error)
        } else {
            format!("{step}{}: {message}", self.error)
        }
    }
}

impl ItemResult {
    /// A database that has no result of its own, only the error saying why.
    pub fn failure(db_identifier: &str, error: StepError) -> Self {
        ItemResult {
            db_identifier: db_identifier.to_owned(),
            snapshot: None,
            export: None,
            copy: None,
            error: Some(error),
            export_error: None,
            export_warning: None,
            copy_warning: None,
            copy_error: None,
            vault: None,
            vault_error: None,
            completed_at: None,
        }
    }

    /// Every error of the item: snapshot (or its wait), export, copy, vault.
    pub fn errors(&self) -> impl Iterator<Item = &StepError> {
        [&self.error, &self.export_error, &self.copy_error, &self.vault_error]
            .into_iter()
            .flatten()
    }

    pub fn failed(&self) -> bool {
        self.errors().next().is_some() || self.snapshot.is_none()
    }

    /// What went wrong, one clause per error.
    pub fn failure_text(&self) -> String {
        let errors: Vec<String> = self.errors().map(StepError::describe).collect();
        if errors.is_empty() {
            "produced no snapshot".to_owned()
        } else {
            errors.join("; ")
        }
    }
}

/// Everything the notification says, computed once.
#[derive(Debug, Clone)]
pub struct Summary<'a> {
    pub request: &'a RunReport,
    pub settings: &'a ModuleSettings,
    pub region: &'a str,
    pub now: DateTime<Utc>,
    pub succeeded: usize,
    pub failed: usize,
    /// The databases' point-in-time recovery, read as the run ends (None: not read).
    pub recovery: Option<&'a RecoveryReport>,
    /// What `manage_automated_backups` did to each database as the run ended (empty: off).
    pub automated_backups: Option<&'a BTreeMap<String, String>>,
}

/// SNS subjects: ASCII, no line breaks, under 100 characters.
pub const MAX_SUBJECT_LEN: usize = 99;
/// SNS messages may be 256 KB; leave room for attributes.
pub const MAX_MESSAGE_LEN: usize = 250_000;
/// Slack: a section's text is at most 3000 characters.
pub(crate) const MAX_SLACK_SECTION: usize = 2900;

impl<'a> Summary<'a> {
    pub fn new(request: &'a RunReport, settings: &'a ModuleSettings, region: &'a str, now: DateTime<Utc>) -> Self {
        let failed = request.results.iter().filter(|r| r.failed()).count();
        Summary {
            request,
            settings,
            region,
            now,
            succeeded: request.results.len() - failed,
            failed,
            recovery: None,
            automated_backups: None,
        }
    }

    /// The summary with each database's point-in-time recovery.
    pub fn with_recovery(self, recovery: &'a RecoveryReport) -> Self {
        Summary {
            recovery: Some(recovery),
            ..self
        }
    }

    /// The summary with what `manage_automated_backups` did to each database.
    pub fn with_automated_backups(self, managed: &'a BTreeMap<String, String>) -> Self {
        Summary {
            automated_backups: Some(managed),
            ..self
        }
    }

    /// The run's databases whose automated backups are off: no point-in-time recovery.
    pub fn without_point_in_time_recovery(&self) -> usize {
        self.recovery.map_or(0, |r| r.automated_backups_off.len())
    }

    /// One line per database of the run: how far back point-in-time recovery reaches, or why
    /// it does not.
    fn recovery_lines(&self) -> Vec<String> {
        let Some(recovery) = self.recovery else {
            return Vec::new();
        };
        self.request
            .results
            .iter()
            .map(|r| {
                let db = &r.db_identifier;
                let line = match (
                    recovery.backup_retention_days.get(db),
                    recovery.restorable_lag_minutes.get(db),
                    recovery.not_measured.get(db),
                ) {
                    (Some(0), _, _) => format!("OFF     {db}: automated backups are off (retention 0)"),
                    (Some(days), Some(lag), _) => {
                        format!("{db}: restorable to {lag:.0} min ago, automated backups kept {days} days")
                    }
                    (Some(days), None, Some(why)) => {
                        format!("{db}: automated backups kept {days} days; latest restorable time not read: {why}")
                    }
                    (_, _, Some(why)) => format!("{db}: not read: {why}"),
                    _ => format!("{db}: not read"),
                };
                match self.automated_backups.and_then(|managed| managed.get(db)) {
                    Some(managed) => format!("{line}\n        managed: {managed}"),
                    None => line,
                }
            })
            .collect()
    }

    /// Prune failed, or left a database alone because its newest snapshot is too old.
    pub fn prune_failed(&self) -> bool {
        self.request.prune_error.is_some()
            || self
                .request
                .prune
                .as_ref()
                .is_some_and(|p| p.regions.iter().any(|r| !r.stale.is_empty()))
    }

    /// The run stopped before or while backing up (input refused, Map failed).
    pub fn run_stopped(&self) -> bool {
        self.request.run_error.is_some()
    }

    /// The run's check of the vault failed: no snapshot went to the vault.
    pub fn vault_unusable(&self) -> bool {
        self.request.vault_error.is_some()
    }

    /// The run failed when any database failed, prune failed, the vault could not be
    /// used or the run stopped.
    pub fn run_failed(&self) -> bool {
        self.failed > 0 || self.prune_failed() || self.vault_unusable() || self.run_stopped()
    }

    /// Of the databases whose snapshot was to go to the vault: how many it reached, how many not.
    pub fn vault_copies(&self) -> Option<(usize, usize)> {
        if self.request.vault.is_none() && !self.vault_unusable() {
            return None;
        }
        let results = &self.request.results;
        let copied = results.iter().filter(|r| r.vault.is_some()).count();
        let failed = if self.vault_unusable() {
            results.iter().filter(|r| r.snapshot.is_some()).count()
        } else {
            results.iter().filter(|r| r.vault_error.is_some()).count()
        };
        Some((copied, failed))
    }

    pub fn status(&self) -> &'static str {
        if self.run_failed() { "FAILED" } else { "SUCCEEDED" }
    }

    pub fn duration_seconds(&self) -> f64 {
        let started = self.request.execution.execution_start_time;
        ((self.now - started).num_milliseconds() as f64 / 1000.0).max(0.0)
    }

    fn duration_text(&self) -> String {
        let secs = self.duration_seconds() as u64;
        format!("{}m {:02}s", secs / 60, secs % 60)
    }

    fn execution_name(&self) -> &str {
        let id = &self.request.execution.execution_id;
        id.rsplit(':').next().unwrap_or(id)
    }

    /// The execution in the Step Functions console (from there: redrive).
    pub fn console_url(&self) -> String {
        execution_console_url(&self.request.execution.execution_id, self.region)
    }

    /// Databases whose complete export RDS warned of (skipped tables).
    pub fn export_warnings(&self) -> usize {
        self.request
            .results
            .iter()
            .filter(|r| r.export_warning.is_some())
            .count()
    }

    /// Databases copy made no copy of, saying why.
    pub fn copies_skipped(&self) -> usize {
        self.request.results.iter().filter(|r| r.copy_warning.is_some()).count()
    }

    pub fn subject(&self) -> String {
        let total = self.succeeded + self.failed;
        let mut subject = format!(
            "[{}] {} {}: {} of {total} database backups succeeded",
            self.status(),
            self.settings.project,
            self.settings.environment,
            self.succeeded
        );
        if let Some(error) = &self.request.run_error {
            let _ = write!(subject, ", run stopped: {}", error.error);
        }
        if self.prune_failed() {
            subject.push_str(", retention failed");
        }
        if self.vault_unusable() {
            subject.push_str(", vault not used");
        }
        match self.without_point_in_time_recovery() {
            0 => {}
            // PITR: point-in-time recovery; the subject has 99 characters at most.
            1 => subject.push_str(", 1 without PITR"),
            n => {
                let _ = write!(subject, ", {n} without PITR");
            }
        }
        match self.export_warnings() {
            0 => {}
            1 => subject.push_str(", 1 export with a warning"),
            n => {
                let _ = write!(subject, ", {n} exports with a warning");
            }
        }
        match self.copies_skipped() {
            0 => {}
            1 => subject.push_str(", 1 copy not made"),
            n => {
                let _ = write!(subject, ", {n} copies not made");
            }
        }
        let mut ascii: String = subject
            .chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
            .collect();
        ascii.truncate(MAX_SUBJECT_LEN);
        ascii
    }

    fn database_line(item: &ItemResult) -> String {
        let mut line = match &item.snapshot {
            Some(snapshot) if !item.failed() => format!(
                "OK      {} snapshot {} ({})",
                item.db_identifier, snapshot.snapshot_id, snapshot.region
            ),
            Some(snapshot) => format!(
                "FAILED  {} {}; snapshot {} ({})",
                item.db_identifier,
                item.failure_text(),
                snapshot.snapshot_id,
                snapshot.region
            ),
            None => format!("FAILED  {} {}", item.db_identifier, item.failure_text()),
        };
        if let Some(copy) = &item.copy {
            let _ = write!(line, "; copy {} in {}", copy.snapshot_id, copy.region);
        }
        if let Some(vault) = &item.vault {
            let _ = write!(
                line,
                "; vault copy {} in {} (account {})",
                vault.snapshot_id, vault.region, vault.account_id
            );
        }
        match &item.export {
            Some(export) if export.skipped => {
                let _ = write!(
                    line,
                    "; export skipped: {}",
                    export.warning.as_deref().unwrap_or("engine not exportable")
                );
            }
            Some(export) => {
                let _ = write!(
                    line,
                    "; export {} to s3://{}/{}/",
                    export.export_task_id.as_deref().unwrap_or("?"),
                    export.s3_bucket.as_deref().unwrap_or("?"),
                    export.s3_prefix.as_deref().unwrap_or("?")
                );
            }
            None => {}
        }
        if let Some(warning) = &item.export_warning {
            let _ = write!(line, "; export WARNING (RDS skipped data): {warning}");
        }
        if let Some(warning) = &item.copy_warning {
            let _ = write!(line, "; copy WARNING: {warning}");
        }
        line
    }

    fn prune_lines(&self) -> Vec<String> {
        if let Some(error) = &self.request.prune_error {
            return vec![format!("FAILED  retention (prune) {}", error.describe())];
        }
        let Some(prune) = &self.request.prune else {
            return vec!["retention (prune) was skipped in this run".to_owned()];
        };
        let mode = if prune.dry_run { " (dry run)" } else { "" };
        prune
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // The first region is the source; a second one holds the copies.
                let policy = match (i, prune.retention_policy, prune.copy_retention_policy) {
                    (0, Some(policy), _) | (_, _, Some(policy)) => format!(" ({policy})"),
                    _ => format!(" ({} days)", prune.retention_days),
                };
                let mut line = format!(
                    "retention{mode}{policy} in {}: deleted {}, would delete {}, kept {}, foreign/automated untouched {}",
                    r.region, r.deleted_count, r.would_delete_count, r.kept_count, r.ignored_count
                );
                if r.tagged_count > 0 {
                    let _ = write!(line, "; {} tagged with their tiers", r.tagged_count);
                }
                if r.retained.snapshots > 0 {
                    let _ = write!(
                        line,
                        "; retained up to {} GiB, at most {} a month at {} list prices",
                        r.retained.gib,
                        cost::dollars(r.retained.monthly_cost_cents),
                        cost::PRICES_REGION
                    );
                }
                if r.failed_count > 0 {
                    let _ = write!(
                        line,
                        "; {} deletions refused (first: {})",
                        r.failed_count,
                        r.failed.first().map_or("", |f| f.error.as_str())
                    );
                }
                if r.deferred_count > 0 {
                    let _ = write!(
                        line,
                        "; {} deletions left for the next run (time limit)",
                        r.deferred_count
                    );
                }
                line
            })
            .chain(export_storage_line(prune))
            .chain(prune.regions.iter().flat_map(|r| {
                let bound = prune.max_snapshot_age_hours.unwrap_or_default();
                r.stale.iter().map(move |stale| {
                    let age_hours = (self.now - stale.newest_created_at).num_hours();
                    format!(
                        "FAILED  retention (prune) in {}: kept every snapshot of {}: its newest is {age_hours} h old \
                         (expected within {bound} h); backups of it may have stopped",
                        r.region, stale.db_identifier
                    )
                })
            }))
            .collect()
    }

    /// Which databases the criteria chose and left out, and why, when the module selects
    /// by tag or pattern (a module that only names its databases has nothing to explain).
    fn selection_lines(&self) -> Vec<String> {
        let Some(selection) = &self.request.selection else {
            return Vec::new();
        };
        if selection.excluded.is_empty()
            && selection.unmatched == 0
            && selection.selected.iter().all(|g| g.reason == NAMED)
        {
            return Vec::new();
        }
        let line = |verdict: &str, group: &Group| {
            format!(
                "{verdict}  {} ({}): {}",
                group.databases.len(),
                group.reason,
                group.databases.join(", ")
            )
        };
        let mut lines: Vec<String> = selection
            .selected
            .iter()
            .map(|g| line("selected", g))
            .chain(selection.excluded.iter().map(|g| line("EXCLUDED", g)))
            .collect();
        lines.push(format!(
            "{} of the region's databases matched no criterion",
            selection.unmatched
        ));
        lines
    }

    /// The plain-text body of the SNS message (e-mail subscribers read this).
    pub fn message(&self) -> String {
        let exec = &self.request.execution;
        let mut text = format!(
            "Database backup run {status}\n\n\
             Project:     {project}\nEnvironment: {environment}\n\
             Databases:   {ok} succeeded, {failed} failed\n\
             Started:     {started}\nDuration:    {duration}\n\
             Execution:   {execution}\nConsole:     {console}\n\
             Version:     database-backup {version}\n\n",
            status = self.status(),
            project = self.settings.project,
            environment = self.settings.environment,
            ok = self.succeeded,
            failed = self.failed,
            started = exec.execution_start_time.format("%Y-%m-%d %H:%M:%S UTC"),
            duration = self.duration_text(),
            execution = exec.execution_id,
            console = self.console_url(),
            version = backup_core::VERSION,
        );
        if let Some(error) = &self.request.run_error {
            let _ = writeln!(text, "FAILED  the run stopped: {}\n", error.describe());
        }
        if let Some(error) = &self.request.vault_error {
            let _ = writeln!(text, "FAILED  no snapshot went to the vault: {}\n", error.describe());
        }
        // Failures first: they are what the reader must act on.
        let (failed, succeeded): (Vec<_>, Vec<_>) = self.request.results.iter().partition(|r| r.failed());
        for item in failed.iter().chain(&succeeded) {
            text.push_str(&Self::database_line(item));
            text.push('\n');
        }
        text.push('\n');
        if let Some(vault) = &self.request.vault {
            if !vault.abandoned_copies_deleted.is_empty() {
                let _ = writeln!(
                    text,
                    "vault: deleted {} copies made to share that earlier vault steps left behind: {}",
                    vault.abandoned_copies_deleted.len(),
                    vault.abandoned_copies_deleted.join(", ")
                );
            }
            for kept in &vault.abandoned_copies_kept {
                let _ = writeln!(text, "vault WARNING: a copy made to share could not be deleted: {kept}");
            }
        }
        for line in self.prune_lines() {
            text.push_str(&line);
            text.push('\n');
        }
        let recovery = self.recovery_lines();
        if !recovery.is_empty() {
            text.push_str("\nPoint-in-time recovery (RDS automated backups):\n");
            for line in recovery {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let selection = self.selection_lines();
        if !selection.is_empty() {
            text.push_str("\nSelection:\n");
            for line in selection {
                text.push_str(&line);
                text.push('\n');
            }
        }
        if backup_core::text::truncate_bytes(&mut text, MAX_MESSAGE_LEN) {
            text.push_str("\n... (truncated; see the execution in the console)\n");
        }
        text
    }

    /// The Slack incoming-webhook payload (Block Kit, with a text fallback).
    pub fn slack_payload(&self) -> Value {
        let icon = if self.run_failed() { ":x:" } else { ":white_check_mark:" };
        let header = format!(
            "{} backup {}: {} {}",
            if self.run_failed() { "\u{274c}" } else { "\u{2705}" },
            self.status().to_lowercase(),
            self.settings.project,
            self.settings.environment
        );
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&header, 150), "emoji": true}}),
            json!({"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Databases*\n{} of {} backed up", self.succeeded, self.succeeded + self.failed)},
                {"type": "mrkdwn", "text": format!("*Duration*\n{}", self.duration_text())},
                {"type": "mrkdwn", "text": format!("*Project*\n{}", self.settings.project)},
                {"type": "mrkdwn", "text": format!("*Environment*\n{}", self.settings.environment)},
            ]}),
        ];
        let run_stopped = self
            .request
            .run_error
            .iter()
            .map(|e| format!("\u{2022} the run stopped: {}", e.describe()));
        let vault_unusable = self
            .request
            .vault_error
            .iter()
            .map(|e| format!("\u{2022} no snapshot went to the vault: {}", e.describe()));
        let failures: Vec<String> = run_stopped
            .chain(vault_unusable)
            .chain(
                self.request
                    .results
                    .iter()
                    .filter(|r| r.failed())
                    .map(|r| format!("\u{2022} `{}` {}", r.db_identifier, r.failure_text())),
            )
            .collect();
        if !failures.is_empty() {
            let text = format!("*Failures*\n{}", failures.join("\n"));
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SLACK_SECTION)}}),
            );
        }
        let warnings: Vec<String> = self
            .request
            .results
            .iter()
            .flat_map(|r| {
                let export = r
                    .export_warning
                    .as_deref()
                    .map(|warning| format!("\u{2022} `{}` export (RDS skipped data): {warning}", r.db_identifier));
                let copy = r
                    .copy_warning
                    .as_deref()
                    .map(|warning| format!("\u{2022} `{}` copy: {warning}", r.db_identifier));
                export.into_iter().chain(copy)
            })
            .collect();
        if !warnings.is_empty() {
            let text = format!("*Warnings*\n{}", warnings.join("\n"));
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SLACK_SECTION)}}),
            );
        }
        let retention = format!("*Retention*\n{}", self.prune_lines().join("\n"));
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&retention, MAX_SLACK_SECTION)}}),
        );
        let recovery = self.recovery_lines();
        if !recovery.is_empty() {
            let text = format!("*Point-in-time recovery*\n{}", recovery.join("\n"));
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SLACK_SECTION)}}),
            );
        }
        let selection = self.selection_lines();
        if !selection.is_empty() {
            let text = format!("*Selection*\n{}", selection.join("\n"));
            blocks.push(
                json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, MAX_SLACK_SECTION)}}),
            );
        }
        blocks.push(json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("{icon} Execution <{}|{}>", self.console_url(), self.execution_name())},
            {"type": "mrkdwn", "text": format!("database-backup {}", backup_core::VERSION)}
        ]}));
        json!({"text": self.subject(), "blocks": blocks})
    }
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars - 1).collect();
    cut.push('\u{2026}');
    cut
}

/// An execution in the Step Functions console (from there: redrive); `region`
/// when the ARN names none.
pub fn execution_console_url(execution_arn: &str, region: &str) -> String {
    let region = execution_arn.split(':').nth(3).unwrap_or(region);
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
}

/// What the export bucket holds by storage class and what that costs a month, or why it is
/// not known (None: prune read no bucket).
fn export_storage_line(prune: &PruneResult) -> Option<String> {
    if let Some(reason) = &prune.exports_unread {
        return Some(format!("exports' storage not reported: {reason}"));
    }
    let exports = prune.exports.as_ref()?;
    let classes: Vec<String> = exports
        .by_class
        .iter()
        .map(|(class, storage)| format!("{class} {}", gigabytes(storage.bytes)))
        .collect();
    let objects: u64 = exports.by_class.values().map(|c| c.objects).sum();
    let at_least = if exports.truncated { "at least " } else { "" };
    let mut line = format!(
        "exports in s3://{}: {at_least}{objects} objects, {}",
        exports.bucket,
        gigabytes(exports.bytes())
    );
    if !classes.is_empty() {
        let _ = write!(
            line,
            " ({}), at most {} a month at {} list prices",
            classes.join(", "),
            cost::dollars(exports.monthly_cost_cents()),
            cost::PRICES_REGION
        );
    }
    let unpriced: Vec<&str> = exports
        .by_class
        .iter()
        .filter(|(_, storage)| storage.monthly_cost_cents.is_none())
        .map(|(class, _)| class.as_str())
        .collect();
    if !unpriced.is_empty() {
        let _ = write!(line, " (no list price here for {})", unpriced.join(", "));
    }
    if exports.truncated {
        line.push_str("; the listing stopped at the time limit");
    }
    Some(line)
}

/// Bytes as gigabytes, to two decimals.
fn gigabytes(bytes: u64) -> String {
    format!("{:.2} GB", cost::gigabytes(bytes))
}
