//! `retention-plan`: what the retention of one module instance keeps, deletes and
//! costs, read from the account and changing nothing.
//!
//! The instance is named by its run state machine (the module's `state_machine_arn`
//! output). Its definition holds the run's defaults (the named databases, the
//! retention days, the minimum to keep) and the select function's ARN; the other
//! functions are named alike (`<prefix>-prune`, `<prefix>-export`), and their
//! environment is the configuration the plan reads, as the functions themselves
//! read it. The decisions are prune's own ([`backup_prune::plan_regions`]), so the
//! plan shows what the next run deletes, with the same in-flight, newest and
//! stale-database rules; the selection is select's; the prices are
//! `backup_core::cost`'s.

pub mod render;

use std::collections::BTreeMap;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use backup_core::cost::{self, Retained};
pub use backup_core::cost::{ClassStorage, ExportStorage};
use backup_core::rds::SnapshotInfo;
use backup_core::retention::{RetentionPolicy, Tier, Tiers};
use backup_core::selection::Selection;
use backup_core::types::{DatabaseKind, KeepReason};
use backup_core::{AwsFailure, Error};
use backup_prune::plan::{self, Decision, Retention};
use backup_prune::{RegionPlan, plan_regions};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The clients the plan reads with: all in the state machine's region (and the
/// copies' region for RDS, from prune's configuration).
pub struct Clients {
    pub sfn: aws_sdk_sfn::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub s3: aws_sdk_s3::Client,
    pub sdk_config: aws_config::SdkConfig,
}

/// The module instance's configuration, as its state machine and functions hold it.
pub struct Instance {
    pub state_machine_arn: String,
    /// The run's defaults (`db_instance_ids`, `retention_days`, ...), from the state machine.
    pub defaults: Value,
    pub select: backup_select::Config,
    pub prune: backup_prune::Config,
    pub export: backup_export::Config,
}

/// The whole plan: what `--json` prints, and what the table shows.
#[derive(Debug, Serialize)]
pub struct Report {
    pub state_machine_arn: String,
    pub at: DateTime<Utc>,
    pub prices: Prices,
    pub selection: Selection,
    pub regions: Vec<RegionReport>,
    pub exports: Option<ExportStorage>,
    /// Snapshots and exports together, US cents a month.
    pub monthly_cost_cents: u64,
}

#[derive(Debug, Serialize)]
pub struct Prices {
    pub region: &'static str,
    pub read_on: &'static str,
    pub note: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RegionReport {
    pub region: String,
    /// `7 daily, 4 weekly, 12 monthly` or `30 days`.
    pub retention: String,
    pub retained: Retained,
    /// What is kept, by the longest tier that keeps it, or by the rule that keeps it.
    pub kept_by: BTreeMap<String, Retained>,
    pub deleting: usize,
    /// Why the next run would refuse to delete without `confirm_retention_change` (None: it would not).
    pub guard: Option<String>,
    pub databases: Vec<DatabaseReport>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseReport {
    pub db_identifier: String,
    pub kind: DatabaseKind,
    /// Newest first.
    pub snapshots: Vec<SnapshotPlan>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotPlan {
    pub snapshot_id: String,
    pub created_at: Option<DateTime<Utc>>,
    pub status: String,
    pub allocated_storage_gib: Option<u32>,
    pub delete: bool,
    /// Why it stays (None: it is deleted).
    pub kept_because: Option<KeepReason>,
    pub tiers: Vec<Tier>,
    /// When prune may delete it, if backups go on as scheduled (None: no date applies,
    /// such as a snapshot kept only as one of the newest).
    pub expires: Option<DateTime<Utc>>,
}

/// The prefix of the module's function names: the select function's name without `-select`.
fn function_prefix(select_arn: &str) -> Result<&str, Error> {
    select_arn
        .rsplit(':')
        .next()
        .and_then(|name| name.strip_suffix("-select"))
        .ok_or_else(|| {
            Error::config(
                "state machine",
                format!("its Select state runs {select_arn}, not a database-backup select function"),
            )
        })
}

impl Instance {
    /// Reads the instance's configuration from its state machine and functions.
    pub async fn read(clients: &Clients, state_machine_arn: &str) -> Result<Instance, Error> {
        let described = clients
            .sfn
            .describe_state_machine()
            .state_machine_arn(state_machine_arn)
            .send()
            .await
            .map_err(|err| aws_error("DescribeStateMachine", state_machine_arn, err))?;
        let definition: Value = serde_json::from_str(described.definition())
            .map_err(|err| Error::config("state machine", format!("its definition is not JSON: {err}")))?;
        let select_state = &definition["States"]["Select"];
        let (Some(select_arn), Some(defaults)) = (
            select_state["Resource"].as_str(),
            select_state["Parameters"]["defaults"].as_object(),
        ) else {
            return Err(Error::config(
                "state machine",
                format!("{state_machine_arn} has no Select state with the run's defaults: not a database-backup run"),
            ));
        };
        let prefix = function_prefix(select_arn)?;
        let environment = |function: String| async move {
            let configuration = clients
                .lambda
                .get_function_configuration()
                .function_name(&function)
                .send()
                .await
                .map_err(|err| aws_error("GetFunctionConfiguration", &function, err))?;
            let variables = configuration.environment().and_then(|e| e.variables());
            Ok::<BTreeMap<String, String>, Error>(
                variables
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        let (select, prune, export) = futures_util::future::try_join3(
            environment(format!("{prefix}-select")),
            environment(format!("{prefix}-prune")),
            environment(format!("{prefix}-export")),
        )
        .await?;
        Ok(Instance {
            state_machine_arn: state_machine_arn.to_owned(),
            defaults: Value::Object(defaults.clone()),
            select: backup_select::Config::from_env(&select)?,
            prune: backup_prune::Config::from_env(&prune)?,
            export: backup_export::Config::from_env(&export)?,
        })
    }

    fn default_u32(&self, field: &str, fallback: u32) -> u32 {
        self.defaults[field]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(fallback)
    }

    fn named(&self) -> Vec<String> {
        self.defaults["db_instance_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    }
}

/// An AWS call's failure, as the functions word it (`AwsFailure`), naming the resource.
fn aws_error<E>(operation: &'static str, resource: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::config(resource, AwsFailure::from_sdk(operation, &err).to_string())
}

/// Reads the account and builds the plan as of `at`.
pub async fn report(clients: &Clients, instance: &Instance, at: DateTime<Utc>) -> Result<Report, Error> {
    let config = &instance.prune;
    let retention_days = instance.default_u32("retention_days", config.retention_days);
    let min_snapshots_to_keep = instance.default_u32("min_snapshots_to_keep", config.min_snapshots_to_keep);
    let rds = backup_prune::Clients::new(&clients.sdk_config, config)?;
    let policies = config.policies(at, retention_days, min_snapshots_to_keep);
    let candidates = async {
        if instance.select.selection.selects() {
            rds.source.list_databases().await
        } else {
            Ok(Vec::new())
        }
    };
    let (planned, candidates, exports) =
        futures_util::future::try_join3(plan_regions(&rds, config, policies, true), candidates, async {
            let bucket = &instance.export.bucket;
            cost::export_storage(&clients.s3, bucket, None)
                .await
                .map_err(|failure| Error::config(bucket, failure.to_string()))
        })
        .await?;
    let regions: Vec<RegionReport> = planned
        .iter()
        .map(|plan| region_report(plan, config, retention_days))
        .collect();
    let monthly_cost_cents = regions.iter().map(|r| r.retained.monthly_cost_cents).sum::<u64>()
        + exports.as_ref().map_or(0, ExportStorage::monthly_cost_cents);
    Ok(Report {
        state_machine_arn: instance.state_machine_arn.clone(),
        at,
        prices: Prices {
            region: cost::PRICES_REGION,
            read_on: cost::PRICES_READ_ON,
            note: "a snapshot counts at its database's allocated storage, an upper bound: \
                   snapshots are incremental and backup storage up to a database's size is free",
        },
        selection: instance.select.selection.select(&instance.named(), &candidates),
        regions,
        exports,
        monthly_cost_cents,
    })
}

/// One region's plan: per database, each snapshot of ours with its decision, tiers and expiry.
pub fn region_report(plan: &RegionPlan<'_>, config: &backup_prune::Config, retention_days: u32) -> RegionReport {
    let snapshots = &plan.listing.snapshots;
    let (policy, tiers) = match plan.listing.policy.retention {
        Retention::Tiers(policy) => (Some(policy), plan::tiers(snapshots, &config.settings, policy)),
        Retention::Age { .. } => (None, vec![Tiers::default(); snapshots.len()]),
    };
    let mut databases: BTreeMap<(DatabaseKind, &str), Vec<SnapshotPlan>> = BTreeMap::new();
    let mut kept_by: BTreeMap<String, Vec<&SnapshotInfo>> = BTreeMap::new();
    let mut kept = Vec::new();
    for ((snapshot, decision), tiers) in snapshots.iter().zip(&plan.decisions).zip(tiers) {
        let kept_because = match decision {
            Decision::Ignore => continue,
            Decision::Keep(reason) => Some(*reason),
            Decision::Delete => None,
        };
        if let Some(reason) = kept_because {
            kept.push(snapshot);
            let label = tiers.iter().last().map_or_else(|| reason_label(reason), Tier::as_str);
            kept_by.entry(label.to_owned()).or_default().push(snapshot);
        }
        let expires = snapshot.created_at.and_then(|created| match policy {
            Some(policy) => policy.expires(tiers, created),
            None => Some(created + chrono::Duration::days(i64::from(retention_days))),
        });
        databases
            .entry(plan::database_of(snapshot))
            .or_default()
            .push(SnapshotPlan {
                snapshot_id: snapshot.snapshot_id.clone(),
                created_at: snapshot.created_at,
                status: snapshot.status.clone(),
                allocated_storage_gib: snapshot.allocated_storage_gib,
                delete: kept_because.is_none(),
                kept_because,
                tiers: tiers.iter().collect(),
                expires: kept_because.and(expires),
            });
    }
    let databases = databases
        .into_iter()
        .map(|((kind, db_identifier), mut snapshots)| {
            snapshots.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.snapshot_id.cmp(&a.snapshot_id)));
            DatabaseReport {
                db_identifier: db_identifier.to_owned(),
                kind,
                snapshots,
            }
        })
        .collect();
    RegionReport {
        region: plan.listing.client.region.clone(),
        retention: policy.map_or_else(|| format!("{retention_days} days"), |p: RetentionPolicy| p.to_string()),
        retained: Retained::of(kept),
        kept_by: kept_by
            .into_iter()
            .map(|(label, snapshots)| (label, Retained::of(snapshots)))
            .collect(),
        deleting: plan.decisions.iter().filter(|d| **d == Decision::Delete).count(),
        guard: backup_prune::guard(plan, config.prune_guard_fraction)
            .err()
            .map(|err| err.to_string()),
        databases,
    }
}

/// The label of a snapshot kept by a rule rather than a tier.
pub(crate) fn reason_label(reason: KeepReason) -> &'static str {
    match reason {
        KeepReason::NewestOfDatabase => "newest of its database",
        KeepReason::WithinRetention => "within retention",
        KeepReason::NotAvailable => "not available",
        KeepReason::InFlight => "copy or export running",
        KeepReason::NewestTooOld => "backups stopped",
        KeepReason::InTier => "in a tier",
    }
}
