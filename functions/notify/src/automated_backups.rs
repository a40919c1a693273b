//! `manage_automated_backups` (opt-in, env `AUTOMATED_BACKUPS`): as each run ends, every
//! database of the run gets the automated backup retention and the preferred backup window
//! asked for, through ModifyDBInstance (ModifyDBCluster for Aurora) with `ApplyImmediately`
//! off, and the summary reports what each got. A retention a DBA set longer is kept unless
//! `shorten_retention` says otherwise; a read replica is left alone ("All read replica DB
//! instances are created with backups disabled", CreateDBInstanceReadReplica).
//!
//! When a change takes effect is RDS's (ModifyDBInstance, BackupRetentionPeriod): turning
//! automated backups on or off waits for the next maintenance window unless applied
//! immediately ("Enabling and disabling backups can result in a brief I/O suspension"); "from
//! one non-zero value to another non-zero value, the change is asynchronously applied as soon
//! as possible"; a new backup window too. Nothing here ever applies a change immediately.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_rds::error::ProvideErrorMetadata;
use backup_core::Error;
use backup_core::rds::{DatabaseInfo, Rds};
use backup_core::types::DatabaseKind;
use serde::Deserialize;

/// How long the run's end may spend on the databases' settings, all of them.
pub const TIME_BUDGET: Duration = Duration::from_secs(60);

/// What `manage_automated_backups` asks of each database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatedBackups {
    /// Days of automated backups (1-35: "Must be a value from 0 to 35", and 0 would turn them off).
    pub retention_days: i32,
    /// `hh24:mi-hh24:mi` UTC, at least 30 minutes (the module's `backup_window`).
    pub window: String,
    /// Whether a longer retention a DBA set may be shortened to `retention_days`.
    #[serde(default)]
    pub shorten_retention: bool,
}

impl AutomatedBackups {
    /// `Ok(None)` when unset or empty: the module leaves automated backups alone.
    pub fn from_json(field: &str, raw: Option<&str>) -> Result<Option<Self>, Error> {
        let Some(raw) = raw.filter(|raw| !raw.trim().is_empty()) else {
            return Ok(None);
        };
        let asked: AutomatedBackups = serde_json::from_str(raw).map_err(|err| Error::config(field, err.to_string()))?;
        if !(1..=35).contains(&asked.retention_days) {
            return Err(Error::config(
                field,
                format!("retention_days {} is not 1-35", asked.retention_days),
            ));
        }
        if window_minutes(&asked.window).is_none_or(|minutes| minutes < 30) {
            return Err(Error::config(
                field,
                format!(
                    "window {:?} is not hh24:mi-hh24:mi (UTC) of at least 30 minutes",
                    asked.window
                ),
            ));
        }
        Ok(Some(asked))
    }
}

/// The window's length in minutes (through midnight too), or None when it is not `hh24:mi-hh24:mi`.
fn window_minutes(window: &str) -> Option<u32> {
    let minute = |hhmm: &str| -> Option<u32> {
        let (hours, minutes) = hhmm.split_once(':')?;
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        (hhmm.len() == 5 && hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
    };
    let (start, end) = window.split_once('-')?;
    let (start, end) = (minute(start)?, minute(end)?);
    Some((end + 1440 - start) % 1440)
}

/// Sets each database's automated backups as asked; returns what each got, for the summary.
/// The budget is checked before each database: a change already asked for is never cut off.
pub async fn apply(rds: &Rds, asked: &AutomatedBackups, databases: &[String]) -> BTreeMap<String, String> {
    let deadline = Instant::now() + TIME_BUDGET;
    let mut outcomes = BTreeMap::new();
    for db in databases {
        let outcome = if Instant::now() < deadline {
            manage(rds, asked, db).await
        } else {
            format!("not changed: the run's end spent its {} s", TIME_BUDGET.as_secs())
        };
        tracing::info!(database = %db, automated_backups = %outcome, "automated backups");
        outcomes.insert(db.clone(), outcome);
    }
    outcomes
}

async fn manage(rds: &Rds, asked: &AutomatedBackups, db: &str) -> String {
    let info = match rds.describe_database(db, None).await {
        Ok(Some(info)) => info,
        Ok(None) => return "not changed: not found".into(),
        Err(err) => return format!("not changed: {err}"),
    };
    if let Some(source) = &info.replica_of {
        return format!("left alone: a read replica of {source}, whose automated backups are its source's");
    }
    // "This setting doesn't apply to Amazon Aurora DB instances. The retention period for
    // automated backups is managed by the DB cluster" (ModifyDBInstance, BackupRetentionPeriod).
    if let Some(cluster) = &info.cluster {
        return format!("left alone: a member of DB cluster {cluster}, whose automated backups are the cluster's");
    }
    let Some(retention) = info.backup_retention_days else {
        return "not changed: RDS reported no backup retention".into();
    };
    let wanted = asked.retention_days;
    let pending = info.pending_backup_retention_days;
    // What the database will keep once RDS applies what is pending: a DBA's pending change counts.
    let effective = pending.unwrap_or(retention);
    let mut said = Vec::new();
    if effective < wanted || (effective > wanted && asked.shorten_retention) {
        // Turning automated backups on (or off) waits for the maintenance window.
        let when = if retention == 0 {
            ", from the next maintenance window"
        } else {
            ""
        };
        let replacing = pending
            .map(|p| format!(" (replacing a pending {p})"))
            .unwrap_or_default();
        said.push(match modify(rds, &info, Some(wanted), None).await {
            Ok(()) => format!("retention {retention} -> {wanted} days{when}{replacing}"),
            Err(err) => format!("retention not changed: {err}"),
        });
    } else if effective > wanted {
        let pending = pending.map(|_| " (pending)").unwrap_or_default();
        said.push(format!(
            "kept its {effective} days{pending}, longer than the {wanted} asked (shorten_retention would shorten it)"
        ));
    } else if pending.is_some() && retention != wanted {
        said.push(format!(
            "retention {wanted} days pending, from the next maintenance window"
        ));
    }
    let window = info.preferred_backup_window.as_deref();
    if window != Some(asked.window.as_str()) {
        said.push(match modify(rds, &info, None, Some(&asked.window)).await {
            Ok(()) => format!("window {} -> {}", window.unwrap_or("none"), asked.window),
            Err(err) => format!("window not changed: {err}"),
        });
    }
    if said.is_empty() {
        return format!("as asked: {retention} days, window {}", asked.window);
    }
    said.join("; ")
}

/// ModifyDBInstance / ModifyDBCluster with only the retention or only the window (RDS refuses a
/// request whole: a window it will not take must not cost the retention), `ApplyImmediately` off.
async fn modify(rds: &Rds, info: &DatabaseInfo, retention: Option<i32>, window: Option<&str>) -> Result<(), String> {
    let said = |action: &str, err: &dyn ProvideErrorMetadata| {
        format!(
            "{action}: {} {}",
            err.code().unwrap_or("error"),
            err.message().unwrap_or_default()
        )
    };
    // Only these two settings, never applied at once, whatever the kind.
    macro_rules! sent {
        ($action:literal, $request:expr) => {
            $request
                .set_backup_retention_period(retention)
                .set_preferred_backup_window(window.map(str::to_owned))
                .apply_immediately(false)
                .send()
                .await
                .map(drop)
                .map_err(|err| said($action, &err))
        };
    }
    match info.kind {
        DatabaseKind::Instance => sent!(
            "ModifyDBInstance",
            rds.client.modify_db_instance().db_instance_identifier(&info.identifier)
        ),
        DatabaseKind::Cluster => sent!(
            "ModifyDBCluster",
            rds.client.modify_db_cluster().db_cluster_identifier(&info.identifier)
        ),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::operation::modify_db_cluster::ModifyDbClusterOutput;
    use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
    use aws_sdk_rds::types::{DbCluster, DbInstance, PendingModifiedValues};
    use aws_smithy_mocks::{Rule, mock};
    use backup_core::testing::{mock_rds, rds_error};

    use super::*;

    fn asked(shorten_retention: bool) -> AutomatedBackups {
        AutomatedBackups {
            retention_days: 7,
            window: "02:00-03:00".into(),
            shorten_retention,
        }
    }

    fn instance(retention: i32, window: &'static str) -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier("orders")
            .db_instance_status("available")
            .backup_retention_period(retention)
            .preferred_backup_window(window)
            .build()
    }

    fn described(db: DbInstance) -> Rule {
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .then_output(move || DescribeDbInstancesOutput::builder().db_instances(db.clone()).build())
    }

    /// ModifyDBInstance with exactly this retention and window, ApplyImmediately off.
    fn modified(retention: Option<i32>, window: Option<&'static str>) -> Rule {
        mock!(aws_sdk_rds::Client::modify_db_instance)
            .match_requests(move |r| {
                r.backup_retention_period() == retention
                    && r.preferred_backup_window() == window
                    && r.apply_immediately() == Some(false)
            })
            .then_output(|| ModifyDbInstanceOutput::builder().build())
    }

    async fn managed(rules: &[&Rule], shorten: bool) -> String {
        let rds = mock_rds(rules);
        let mut outcomes = apply(&rds, &asked(shorten), &["orders".to_owned()]).await;
        outcomes.remove("orders").unwrap()
    }

    #[tokio::test]
    async fn backups_off_are_turned_on_from_the_maintenance_window_and_the_window_is_set() {
        let db = described(instance(0, "04:00-04:30"));
        let (retention, window) = (modified(Some(7), None), modified(None, Some("02:00-03:00")));
        assert_eq!(
            managed(&[&db, &retention, &window], false).await,
            "retention 0 -> 7 days, from the next maintenance window; window 04:00-04:30 -> 02:00-03:00"
        );
        assert_eq!((retention.num_calls(), window.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_longer_retention_is_kept_unless_shortening_is_asked_for() {
        // No ModifyDBInstance rule: a call would fail the mock.
        let db = described(instance(14, "02:00-03:00"));
        assert_eq!(
            managed(&[&db], false).await,
            "kept its 14 days, longer than the 7 asked (shorten_retention would shorten it)"
        );
        let modify = modified(Some(7), None);
        assert_eq!(managed(&[&db, &modify], true).await, "retention 14 -> 7 days");
        assert_eq!(modify.num_calls(), 1);
        let shorter = described(instance(3, "05:00-05:30"));
        let (retention, window) = (modified(Some(7), None), modified(None, Some("02:00-03:00")));
        assert_eq!(
            managed(&[&shorter, &retention, &window], false).await,
            "retention 3 -> 7 days; window 05:00-05:30 -> 02:00-03:00"
        );
    }

    fn pending(retention: i32, pending: i32) -> Rule {
        described(
            DbInstance::builder()
                .db_instance_identifier("orders")
                .backup_retention_period(retention)
                .preferred_backup_window("02:00-03:00")
                .pending_modified_values(
                    PendingModifiedValues::builder()
                        .backup_retention_period(pending)
                        .build(),
                )
                .build(),
        )
    }

    #[tokio::test]
    async fn as_asked_pending_or_a_replica_is_not_modified() {
        let db = described(instance(7, "02:00-03:00"));
        assert_eq!(managed(&[&db], false).await, "as asked: 7 days, window 02:00-03:00");
        assert_eq!(
            managed(&[&pending(0, 7)], false).await,
            "retention 7 days pending, from the next maintenance window"
        );
        // A DBA's pending 14 days count as theirs: kept, not replaced by the 7 asked.
        assert_eq!(
            managed(&[&pending(0, 14)], false).await,
            "kept its 14 days (pending), longer than the 7 asked (shorten_retention would shorten it)"
        );
        let replica = described(
            DbInstance::builder()
                .db_instance_identifier("orders")
                .backup_retention_period(0)
                .read_replica_source_db_instance_identifier("orders-primary")
                .build(),
        );
        assert!(
            managed(&[&replica], false)
                .await
                .starts_with("left alone: a read replica of orders-primary")
        );
        let member = described(
            DbInstance::builder()
                .db_instance_identifier("orders")
                .backup_retention_period(1)
                .db_cluster_identifier("ledger")
                .build(),
        );
        assert_eq!(
            managed(&[&member], false).await,
            "left alone: a member of DB cluster ledger, whose automated backups are the cluster's"
        );
    }

    #[tokio::test]
    async fn a_pending_shorter_retention_is_replaced_and_said() {
        let modify = modified(Some(7), None);
        assert_eq!(
            managed(&[&pending(5, 0), &modify], false).await,
            "retention 5 -> 7 days (replacing a pending 0)"
        );
        assert_eq!(modify.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_refused_window_is_reported_and_costs_not_the_retention() {
        let db = described(instance(1, "06:45-07:15"));
        let retention = modified(Some(7), None);
        let refused = mock!(aws_sdk_rds::Client::modify_db_instance)
            .match_requests(|r| r.preferred_backup_window().is_some())
            .then_http_response(|| {
                rds_error(
                    400,
                    "InvalidParameterValue",
                    "The backup window and maintenance window must not overlap.",
                )
            });
        assert_eq!(
            managed(&[&db, &retention, &refused], false).await,
            "retention 1 -> 7 days; window not changed: ModifyDBInstance: InvalidParameterValue The backup window and \
             maintenance window must not overlap."
        );
        assert_eq!((retention.num_calls(), refused.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_aurora_cluster_is_modified_as_a_cluster() {
        let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances)
            .then_http_response(|| rds_error(404, "DBInstanceNotFound", "not found"));
        let cluster = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("orders")
                        .backup_retention_period(1)
                        .preferred_backup_window("02:00-03:00")
                        .build(),
                )
                .build()
        });
        let modify = mock!(aws_sdk_rds::Client::modify_db_cluster)
            .match_requests(|r| {
                r.backup_retention_period() == Some(7)
                    && r.preferred_backup_window().is_none()
                    && r.apply_immediately() == Some(false)
            })
            .then_output(|| ModifyDbClusterOutput::builder().build());
        assert_eq!(
            managed(&[&no_instance, &cluster, &modify], false).await,
            "retention 1 -> 7 days"
        );
        assert_eq!(modify.num_calls(), 1);
    }

    #[test]
    fn the_setting_is_checked_as_terraform_checks_it() {
        let read = |raw| AutomatedBackups::from_json("AUTOMATED_BACKUPS", Some(raw));
        assert_eq!(read("").unwrap(), None);
        assert_eq!(
            read(r#"{"retention_days":7,"window":"23:45-00:15"}"#).unwrap(),
            Some(AutomatedBackups {
                retention_days: 7,
                window: "23:45-00:15".into(),
                shorten_retention: false
            })
        );
        for bad in [
            r#"{"retention_days":0,"window":"02:00-03:00"}"#,
            r#"{"retention_days":36,"window":"02:00-03:00"}"#,
            r#"{"retention_days":7,"window":"02:00-02:20"}"#,
            r#"{"retention_days":7,"window":"2:00-03:00"}"#,
            r#"{"retention_days":7,"window":"02:00-03:00","apply_immediately":true}"#,
        ] {
            let err = read(bad).unwrap_err().to_string();
            assert!(err.contains("AUTOMATED_BACKUPS"), "{bad}: {err}");
        }
    }
}
