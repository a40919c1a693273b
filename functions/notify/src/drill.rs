//! A restore drill's report. The drill state machine (`<prefix>-drill`) ends by invoking
//! notify with `{"drill": {...}}`: each database's drill as its Map item ended (what `restore`
//! and `check` recorded, the error that stopped it, what `delete` did). Notify puts, per
//! database and run-wide, `RestoreTestSuccess`, `RestoreTestFailure` (Count) and `RestoreTime`
//! (minutes from the restore's request to the first check that found it available, unit
//! `None`), and sends one SNS message and one Slack message: which snapshot, how long against
//! the target, what was checked, and whether the drill database was deleted.
//!
//! A database's drill passes when its restore became available and every check held; a
//! recovery time above the target is reported (and alarmed on) beside it. The drill fails
//! (`drill_failed`, which ends the execution failed) when any database's did not pass, took
//! longer than the target or was left undeleted, and when there was nothing to drill.

use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use backup_core::drill::{Deleted, DrillRestore, Swept};
use backup_core::{Error, input};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::metrics::{self, Scope};
use crate::summary::{MAX_SLACK_SECTION, StepError, execution_console_url, truncate};
use crate::{Clients, Config, Message, SlackDelivery};

/// One database's drill, as its Map item ended.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillOutcome {
    pub db: String,
    #[serde(default)]
    pub restore: Option<DrillRestore>,
    /// What stopped the drill (restore refused or failed, wait timed out).
    #[serde(default)]
    pub error: Option<StepError>,
    #[serde(default)]
    pub deleted: Option<Deleted>,
    #[serde(default)]
    pub delete_error: Option<StepError>,
}

/// The drill's input to notify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    pub execution_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub rto_minutes: u32,
    /// The hourly sweep alone: no database was to be drilled.
    #[serde(default)]
    pub sweep_only: bool,
    #[serde(default)]
    pub outcomes: Vec<DrillOutcome>,
    /// What stopped the drill before or while drilling (the pick, or the Map itself).
    #[serde(default)]
    pub run_error: Option<StepError>,
    /// The sweep's error: drill databases past their time may be left.
    #[serde(default)]
    pub sweep_error: Option<StepError>,
    #[serde(default)]
    pub swept: Option<Swept>,
}

pub fn is_drill_report(event: &Value) -> bool {
    event.get("drill").is_some()
}

impl DrillOutcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.restore.as_ref().is_some_and(|r| r.ready && r.checks_passed())
    }

    pub fn recovery_minutes(&self) -> Option<f64> {
        self.restore.as_ref().and_then(DrillRestore::recovery_minutes)
    }

    pub fn over_target(&self, rto_minutes: u32) -> bool {
        self.recovery_minutes()
            .is_some_and(|minutes| minutes > f64::from(rto_minutes))
    }

    /// A drill database was created and not deleted: the sweeper deletes it after its time.
    pub fn left_behind(&self) -> bool {
        self.restore.is_some() && self.deleted.is_none()
    }

    /// The outcome in a line or a few.
    fn text(&self, rto_minutes: u32) -> String {
        let mut lines = Vec::new();
        let verdict = match (self.passed(), self.recovery_minutes()) {
            (true, Some(minutes)) => format!(
                "restored and checked in {minutes:.1} min ({} the {rto_minutes} min target)",
                if self.over_target(rto_minutes) {
                    "OVER"
                } else {
                    "within"
                }
            ),
            (false, Some(minutes)) => format!("restored in {minutes:.1} min, CHECKS FAILED"),
            _ => "FAILED".to_owned(),
        };
        lines.push(format!("{}: {verdict}", self.db));
        if let Some(restore) = &self.restore {
            let taken = restore
                .snapshot_created_at
                .map(|at| format!(", taken {}", at.format("%Y-%m-%d %H:%M UTC")))
                .unwrap_or_default();
            let place = backup_core::drill::place_label(&restore.region, restore.account.as_deref());
            lines.push(format!("  snapshot: {} ({place}{taken})", restore.snapshot_id));
            lines.push(format!(
                "  restored to: {} ({}), last status {}",
                restore.restored_id, restore.operation, restore.status
            ));
            if let Some(writer) = &restore.writer {
                let status = writer.status.as_deref().unwrap_or("the cluster was never available");
                lines.push(if writer.requested {
                    format!(
                        "  writer: {} ({}), added once the cluster was available, last status {status}",
                        writer.instance_id, writer.instance_class
                    )
                } else {
                    format!(
                        "  writer: {} ({}), not added: {status}",
                        writer.instance_id, writer.instance_class
                    )
                });
            }
            if !restore.checks.is_empty() {
                let checks: Vec<String> = restore
                    .checks
                    .iter()
                    .map(|c| {
                        if c.passed {
                            format!("{} {}", c.name, c.actual)
                        } else {
                            format!("{} {} (expected {}) FAILED", c.name, c.actual, c.expected)
                        }
                    })
                    .collect();
                lines.push(format!("  checks: {}", checks.join("; ")));
            }
        }
        if let Some(error) = &self.error {
            lines.push(format!("  error: {}", error.describe()));
        }
        match (&self.deleted, &self.delete_error) {
            (Some(deleted), _) => {
                let instances = if deleted.instances.is_empty() {
                    String::new()
                } else {
                    format!(", after its DB instances {}", deleted.instances.join(", "))
                };
                lines.push(format!(
                    "  deleted: {} ({}, no final snapshot){instances}",
                    deleted.restored_id, deleted.status
                ))
            }
            (None, Some(error)) => lines.push(format!(
                "  NOT DELETED: {}; the sweeper deletes it after its delete-after time",
                error.describe()
            )),
            (None, None) if self.restore.is_some() => {
                lines.push("  NOT DELETED: the sweeper deletes it after its delete-after time".to_owned())
            }
            (None, None) => {}
        }
        lines.join("\n")
    }
}

/// What notify returns for a drill; `drill_failed` drives the drill's last Choice.
#[derive(Debug, Clone, Serialize)]
pub struct DrillSummary {
    pub status: &'static str,
    pub drill_failed: bool,
    pub subject: String,
    pub passed: usize,
    pub failed: usize,
    pub over_target: usize,
    pub left_behind: usize,
    pub metrics_put: usize,
    pub sns_message_id: Option<String>,
    pub slack: SlackDelivery,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_error: Option<String>,
}

/// The drill's counts and texts.
pub struct Drill<'a> {
    pub report: &'a DrillReport,
    pub project: &'a str,
    pub environment: &'a str,
    pub region: &'a str,
}

impl Drill<'_> {
    fn passed(&self) -> usize {
        self.report.outcomes.iter().filter(|o| o.passed()).count()
    }

    fn over_target(&self) -> usize {
        let rto = self.report.rto_minutes;
        self.report.outcomes.iter().filter(|o| o.over_target(rto)).count()
    }

    /// The longest recovery time of the drill's databases, minutes (None: none measured).
    fn longest_recovery(&self) -> Option<f64> {
        self.report
            .outcomes
            .iter()
            .filter_map(DrillOutcome::recovery_minutes)
            .reduce(f64::max)
    }

    fn left_behind(&self) -> usize {
        self.report.outcomes.iter().filter(|o| o.left_behind()).count()
    }

    pub fn failed(&self) -> usize {
        self.report.outcomes.len() - self.passed()
    }

    /// Drill databases the sweep deleted: their drills never finished.
    fn swept(&self) -> &[String] {
        self.report.swept.as_ref().map_or(&[], |swept| swept.deleted.as_slice())
    }

    /// Places the sweep could not list, and drill databases it could not delete.
    fn sweep_failures(&self) -> &[String] {
        self.report.swept.as_ref().map_or(&[], |swept| swept.failed.as_slice())
    }

    /// Failures with no database's drill to carry them: nothing drilled (a drill, not the
    /// hourly sweep), the drill or the sweep stopped, databases the sweep had to delete.
    fn other_failures(&self) -> usize {
        let report = self.report;
        usize::from(report.outcomes.is_empty() && !report.sweep_only && report.run_error.is_none())
            + usize::from(report.run_error.is_some())
            + usize::from(report.sweep_error.is_some())
            + self.swept().len()
            + self.sweep_failures().len()
    }

    /// Everything that fails the drill but a recovery over the target (alarmed on by itself):
    /// the databases whose drill did not pass, those left undeleted, and the rest.
    pub fn failures(&self) -> usize {
        let passed_but_left = self
            .report
            .outcomes
            .iter()
            .filter(|o| o.passed() && o.left_behind())
            .count();
        self.failed() + passed_but_left + self.other_failures()
    }

    pub fn drill_failed(&self) -> bool {
        self.failures() + self.over_target() > 0
    }

    pub fn status(&self) -> &'static str {
        if self.drill_failed() { "FAILED" } else { "PASSED" }
    }

    pub fn subject(&self) -> String {
        let subject = format!(
            "database-backup restore drill {}: {} {} ({} of {} restored)",
            self.status(),
            self.project,
            self.environment,
            self.passed(),
            self.report.outcomes.len()
        );
        truncate(&subject, crate::summary::MAX_SUBJECT_LEN)
    }

    pub fn message(&self) -> String {
        let report = self.report;
        let mut text = format!(
            "Restore drill of {} {} ({}): {}\nExecution: {}\nStarted {}, ended {}\nTarget recovery time (RTO): {} min\n",
            self.project,
            self.environment,
            self.region,
            self.status(),
            execution_console_url(&report.execution_id, self.region),
            report.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            report.ended_at.format("%Y-%m-%d %H:%M:%S UTC"),
            report.rto_minutes,
        );
        if let Some(error) = &report.sweep_error {
            text.push_str(&format!(
                "\nThe sweep of drill databases failed: {}\n",
                error.describe()
            ));
        }
        if !self.sweep_failures().is_empty() {
            text.push_str(&format!(
                "\nThe sweep could not finish (the next sweep tries again): {}\n",
                self.sweep_failures().join("; ")
            ));
        }
        if !self.swept().is_empty() {
            text.push_str(&format!(
                "\nThe sweep deleted drill databases past their delete-after time (their drills did not finish): {}\n",
                self.swept().join(", ")
            ));
        }
        if let Some(error) = &report.run_error {
            text.push_str(&format!("\nThe drill stopped: {}\n", error.describe()));
        } else if report.outcomes.is_empty() && !report.sweep_only {
            text.push_str(
                "\nNo database to drill: none has an available backup of this module in the drill's region.\n",
            );
        }
        for outcome in &report.outcomes {
            text.push('\n');
            text.push_str(&outcome.text(report.rto_minutes));
            text.push('\n');
        }
        text
    }

    pub fn slack_payload(&self) -> Value {
        let header = format!(
            "{} restore drill {}: {} {}",
            if self.drill_failed() { "\u{274c}" } else { "\u{2705}" },
            self.status().to_lowercase(),
            self.project,
            self.environment
        );
        let slowest = self
            .longest_recovery()
            .map_or_else(|| "none measured".to_owned(), |minutes| format!("{minutes:.1} min"));
        // The message below its first line (the header says it), as preformatted text.
        let message = self.message();
        let details = message.split_once('\n').map_or(message.as_str(), |(_, rest)| rest);
        json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&header, 150), "emoji": true}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Restored and checked*\n{} of {}", self.passed(), self.report.outcomes.len())},
                {"type": "mrkdwn", "text": format!("*Longest recovery*\n{slowest} (target {} min)", self.report.rto_minutes)},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", truncate(details, MAX_SLACK_SECTION))}},
        ]})
    }

    /// Per database and run-wide: RestoreTestSuccess, RestoreTestFailure, RestoreTime.
    pub fn metric_data(&self, instance: &str) -> Vec<MetricDatum> {
        let at = self.report.ended_at;
        let run = Scope::run(instance);
        let mut data = Vec::new();
        for outcome in &self.report.outcomes {
            let scope = run.database(&outcome.db);
            let passed = f64::from(u8::from(outcome.passed()));
            data.push(metrics::datum(
                "RestoreTestSuccess",
                passed,
                StandardUnit::Count,
                scope,
                at,
            ));
            data.push(metrics::datum(
                "RestoreTestFailure",
                1.0 - passed,
                StandardUnit::Count,
                scope,
                at,
            ));
            if let Some(minutes) = outcome.recovery_minutes() {
                data.push(metrics::datum("RestoreTime", minutes, StandardUnit::None, scope, at));
            }
        }
        // Nothing drilled, a stopped drill or sweep, and a database the sweep had to delete are
        // failed drills too: the alarm on failed drills sees them.
        let failed = self.failures();
        data.push(metrics::datum(
            "RestoreTestSuccess",
            self.passed() as f64,
            StandardUnit::Count,
            run,
            at,
        ));
        data.push(metrics::datum(
            "RestoreTestFailure",
            failed as f64,
            StandardUnit::Count,
            run,
            at,
        ));
        if let Some(longest) = self.longest_recovery() {
            data.push(metrics::datum("RestoreTime", longest, StandardUnit::None, run, at));
        }
        data
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<DrillSummary, Error> {
    let mut event = event;
    let report: DrillReport = input::parse(event["drill"].take())?;
    let drill = Drill {
        report: &report,
        project: &config.settings.project,
        environment: &config.settings.environment,
        region: &clients.rds.region,
    };
    let subject = drill.subject();
    let body = drill.message();
    let message = Message {
        subject: &subject,
        body: &body,
        status: drill.status(),
        failed_count: drill.failures(),
    };
    let (metrics, published, (slack, slack_error)) = futures_util::future::join3(
        crate::put_metric_data(clients, config, drill.metric_data(&config.settings.instance)),
        crate::publish_message(clients, config, message),
        crate::deliver_to_slack(clients, &drill.slack_payload()),
    )
    .await;
    if let Some(err) = crate::undelivered(config, &metrics, &published) {
        return Err(err);
    }
    tracing::info!(
        execution_id = %report.execution_id,
        status = drill.status(),
        passed = drill.passed(),
        failed = drill.failed(),
        "drill report sent"
    );
    Ok(DrillSummary {
        status: drill.status(),
        drill_failed: drill.drill_failed(),
        subject,
        passed: drill.passed(),
        failed: drill.failed(),
        over_target: drill.over_target(),
        left_behind: drill.left_behind(),
        metrics_put: metrics.unwrap_or(0),
        sns_message_id: published.ok(),
        slack,
        slack_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(value: Value) -> DrillReport {
        serde_json::from_value(value).expect("a drill report")
    }

    fn restore(db: &str, minutes: i64, engine_version: &str) -> Value {
        json!({
            "db": db, "region": "us-east-1", "kind": "instance",
            "restored_id": format!("drill-a1b2c3-{db}-12060500"),
            "snapshot_id": format!("{db}-20261205-020000-abcdef"),
            "snapshot_created_at": "2026-12-05T02:00:00Z",
            "operation": "RestoreDBInstanceFromDBSnapshot",
            "requested_at": "2026-12-06T05:00:00Z",
            "deadline": "2026-12-06T09:00:00Z", "delete_after": "2026-12-06T09:00:00Z",
            "rto_minutes": 30, "keep_seconds": 0, "poll_seconds": 60,
            "expected": {"engine": "postgres", "engine_version": "16.3", "allocated_storage_gib": 20, "encrypted": true},
            "status": "available", "ready": true, "next_poll_seconds": 0,
            "available_at": (chrono::DateTime::parse_from_rfc3339("2026-12-06T05:00:00Z").unwrap()
                + chrono::Duration::minutes(minutes)).to_rfc3339(),
            "checks": [
                {"name": "status", "expected": "available", "actual": "available", "passed": true},
                {"name": "engine version", "expected": "16.3", "actual": engine_version, "passed": engine_version == "16.3"},
            ],
        })
    }

    fn drill(report: &DrillReport) -> Drill<'_> {
        Drill {
            report,
            project: "nestedphoenix",
            environment: "production",
            region: "us-east-1",
        }
    }

    fn metric(data: &[MetricDatum], name: &str, db: Option<&str>) -> Option<f64> {
        data.iter()
            .find(|d| {
                d.metric_name() == Some(name)
                    && d.dimensions()
                        .iter()
                        .find(|x| x.name() == Some("DatabaseIdentifier"))
                        .and_then(|x| x.value())
                        == db
            })
            .and_then(MetricDatum::value)
    }

    #[test]
    fn a_passed_drill_reports_each_recovery_time_within_the_target() {
        let report = report(json!({
            "execution_id": "arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-drill:weekly",
            "started_at": "2026-12-06T05:00:00Z", "ended_at": "2026-12-06T05:20:00Z", "rto_minutes": 30,
            "sweep_only": false, "run_error": null, "sweep_error": null,
            "swept": {"deleted": [], "kept": []},
            "outcomes": [
                {"db": "orders", "restore": restore("orders", 12, "16.3"), "error": null,
                 "deleted": {"restored_id": "drill-a1b2c3-orders-12060500", "status": "deleting"}, "delete_error": null},
            ],
        }));
        let drill = drill(&report);
        assert!(!drill.drill_failed());
        assert_eq!(
            drill.subject(),
            "database-backup restore drill PASSED: nestedphoenix production (1 of 1 restored)"
        );
        let message = drill.message();
        assert!(
            message.contains("orders: restored and checked in 12.0 min (within the 30 min target)"),
            "{message}"
        );
        assert!(
            message.contains("  deleted: drill-a1b2c3-orders-12060500 (deleting, no final snapshot)"),
            "{message}"
        );
        let data = drill.metric_data("nestedphoenix/production/us-east-1");
        assert_eq!(metric(&data, "RestoreTime", Some("orders")), Some(12.0));
        assert_eq!(metric(&data, "RestoreTestSuccess", Some("orders")), Some(1.0));
        assert_eq!(metric(&data, "RestoreTestFailure", None), Some(0.0));
        assert_eq!(metric(&data, "RestoreTime", None), Some(12.0));
    }

    #[test]
    fn a_failed_check_a_slow_restore_and_a_swept_database_each_fail_the_drill() {
        let report = report(json!({
            "execution_id": "arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-drill:weekly",
            "started_at": "2026-12-06T05:00:00Z", "ended_at": "2026-12-06T06:00:00Z", "rto_minutes": 30,
            "swept": {"deleted": ["drill-a1b2c3-old-12050500 (us-east-1)"], "kept": []},
            "outcomes": [
                {"db": "orders", "restore": restore("orders", 45, "16.3"),
                 "deleted": {"restored_id": "drill-a1b2c3-orders-12060500", "status": "deleting"}},
                {"db": "ledger", "restore": restore("ledger", 10, "15.4"),
                 "delete_error": {"Error": "AccessDenied", "Cause": "{\"errorMessage\": \"DeleteDBInstance failed\"}"}},
                {"db": "billing", "error": {"Error": "RestoreRefused", "Cause": "{\"errorMessage\": \"no backup\"}"}},
            ],
        }));
        let drill = drill(&report);
        assert!(drill.drill_failed());
        assert_eq!(drill.failed(), 2, "ledger's check and billing's refusal");
        let message = drill.message();
        assert!(
            message.contains("orders: restored and checked in 45.0 min (OVER the 30 min target)"),
            "{message}"
        );
        assert!(
            message.contains("ledger: restored in 10.0 min, CHECKS FAILED"),
            "{message}"
        );
        assert!(
            message.contains("engine version 15.4 (expected 16.3) FAILED"),
            "{message}"
        );
        assert!(
            message.contains("NOT DELETED: AccessDenied: DeleteDBInstance failed"),
            "{message}"
        );
        assert!(
            message.contains("billing: FAILED\n  error: RestoreRefused: no backup"),
            "{message}"
        );
        assert!(message.contains("drill-a1b2c3-old-12050500 (us-east-1)"), "{message}");
        let data = drill.metric_data("nestedphoenix/production/us-east-1");
        assert_eq!(
            metric(&data, "RestoreTestFailure", None),
            Some(3.0),
            "two databases and the swept one"
        );
        assert_eq!(metric(&data, "RestoreTime", None), Some(45.0));
        assert_eq!(metric(&data, "RestoreTime", Some("billing")), None);
    }

    #[test]
    fn a_sweep_that_found_nothing_is_no_failure_and_a_drill_with_nothing_is() {
        let sweep = report(json!({
            "execution_id": "x", "started_at": "2026-12-06T05:00:00Z", "ended_at": "2026-12-06T05:00:01Z",
            "rto_minutes": 30, "sweep_only": true, "swept": {"deleted": [], "kept": ["a (us-east-1)"]},
        }));
        assert!(!drill(&sweep).drill_failed());
        let nothing = report(json!({
            "execution_id": "x", "started_at": "2026-12-06T05:00:00Z", "ended_at": "2026-12-06T05:00:01Z",
            "rto_minutes": 30, "outcomes": [],
        }));
        assert!(drill(&nothing).drill_failed());
        assert!(drill(&nothing).message().contains("No database to drill"));
    }

    #[test]
    fn a_place_the_sweep_could_not_list_fails_the_drill_beside_what_it_deleted() {
        let sweep = report(json!({
            "execution_id": "x", "started_at": "2026-12-06T05:00:00Z", "ended_at": "2026-12-06T05:00:01Z",
            "rto_minutes": 30, "sweep_only": true,
            "swept": {"deleted": ["drill-a1b2c3-a-12050500 (eu-west-1, vault account 444455556666)"], "kept": [],
                      "failed": ["us-east-1: Throttled: DescribeDBInstances failed: Throttling: Rate exceeded"]},
        }));
        let drill = drill(&sweep);
        assert!(drill.drill_failed());
        assert_eq!(drill.failures(), 2, "the deleted database and the place");
        let message = drill.message();
        assert!(
            message.contains(
                "The sweep could not finish (the next sweep tries again): us-east-1: Throttled: DescribeDBInstances \
                 failed: Throttling: Rate exceeded"
            ),
            "{message}"
        );
        assert!(
            message.contains("(their drills did not finish): drill-a1b2c3-a-12050500 (eu-west-1, vault account"),
            "{message}"
        );
    }
}
