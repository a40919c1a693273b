//! `drill`: the steps of a restore drill (`<prefix>-drill`, statemachine/drill.asl.json). Each
//! invocation is one `action`:
//!
//! - `sweep`: deletes every drill database of this module instance whose delete-after time
//!   ([`drill::DELETE_AFTER`]) has passed, whatever happened to its drill (a stopped execution
//!   never reaches its own delete);
//! - `pick`: the databases this drill restores: the list given, or every database with an
//!   available backup of ours in the drill's region, N of them at random when asked;
//! - `restore`: plans the restore of a database's newest backup with the operator's
//!   implementation ([`backup_core::restore::plan`]) and sends it, to a new database
//!   named `<identifier_prefix><db>-<MMDDHHMM>` and tagged [`drill::DRILL`];
//! - `check`: reads the restored database: not yet available (when to look again), failed
//!   (`RestoreFailed`), past the wait's bound (`WaitTimedOut`), or available and checked against
//!   the snapshot (engine and version, allocated storage, encryption), and, with a
//!   `sql_probe` secret for the database, where the `probe` function is to query it. A restored
//!   Aurora cluster gets its writer (CreateDBInstance) once it is available, and is ready once
//!   the writer is: the recovery time is the time until something can connect;
//! - `delete`: deletes the drill database, skipping the final snapshot, after checking that it
//!   is one (its identifier and tag), an Aurora drill's writer before its cluster; a database
//!   still being created is `DatabaseBusy`.
//!
//! With `copy = "vault"` the drills restore the vault account's copies there, through the vault's
//! drill role (modules/vault, `allow_restore_drills`), and the sweep looks there too.
//!
//! Every time comes from the state machine (`now`: `$$.State.EnteredTime`), so that recovery
//! times are measured on the clock the restore runs on.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_rds::types::Tag;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::drill::{
    self, Check, CopySource, Deleted, DrillRestore, DrillWriter, Expected, ProbeProtocol, ProbeTarget, Swept,
};
use backup_core::naming::{self, MAX_DB_IDENTIFIER_LEN, rds_identifier};
use backup_core::rds::{Described, Rds, SnapshotInfo};
use backup_core::restore::{self, Origin, RestoreError, RestoreOptions, Source, WRITER_SUFFIX, WriterRequest};
use backup_core::types::DatabaseKind;
use backup_core::{AwsFailure, Error, input, tags};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `restore_drill` as Terraform renders it (env `DRILL`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    pub copy: CopySource,
    /// Every drill database's identifier starts with it (IAM scopes the restores to it).
    pub identifier_prefix: String,
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub rto_minutes: u32,
    pub keep_minutes: u32,
    pub max_wait_minutes: u32,
    pub poll_seconds: u32,
    /// The databases to drill (empty: every one with a backup of ours).
    #[serde(default)]
    pub databases: Vec<String>,
    /// 0: every picked database; N: N of them at random.
    #[serde(default)]
    pub random_count: u32,
    /// The vault's drill role, when the vault has one (`vault.drill_role_arn`).
    #[serde(default)]
    pub vault: Option<VaultDrill>,
    /// The read-only SQL probe of the restored databases (`restore_drill.sql_probe`).
    #[serde(default)]
    pub sql_probe: Option<SqlProbeSettings>,
}

/// `restore_drill.sql_probe`: the databases whose drills end with a read-only query by the
/// `probe` function, each with the Secrets Manager secret of the credentials it logs in with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlProbeSettings {
    pub secret_arns: BTreeMap<String, String>,
    pub query: String,
    pub connect_timeout_seconds: u32,
}

/// The role of the vault account through which drills restore the vault's copies there and
/// delete their databases (and nothing else: modules/vault's drill role).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultDrill {
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

/// The session name of the vault drill role's sessions: CloudTrail in the vault account shows it.
const VAULT_SESSION_NAME: &str = "database-backup-drill";

/// Where drill databases are: a region of the module's account (`account` None) or the vault's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place<'a> {
    account: Option<&'a str>,
    region: &'a str,
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&drill::place_label(self.region, self.account))
    }
}

/// The function's environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub drill: DrillSettings,
    pub copy_region: Option<String>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let raw = config::required(env, env::DRILL)?;
        let drill: DrillSettings = serde_json::from_str(&raw)
            .map_err(|e| Error::config(env::DRILL, format!("is not the drill's settings: {e}")))?;
        let copy_region = config::optional_region(env, env::COPY_DESTINATION_REGION)?;
        if drill.copy == CopySource::Copy && copy_region.is_none() {
            return Err(Error::config(
                env::COPY_DESTINATION_REGION,
                "is not set, and the drills restore the cross-region copies (copy = \"copy\")",
            ));
        }
        if drill.sql_probe.is_some() && drill.copy != CopySource::Source {
            return Err(Error::config(
                env::DRILL,
                "has a sql_probe, which reaches databases in the module's own region and account only (copy = \"source\")",
            ));
        }
        if drill.copy == CopySource::Vault && drill.vault.is_none() {
            return Err(Error::config(
                env::DRILL,
                "has no vault drill role, and the drills restore the vault's copies (copy = \"vault\")",
            ));
        }
        if drill.identifier_prefix.is_empty() || drill.poll_seconds == 0 || drill.max_wait_minutes == 0 {
            return Err(Error::config(
                env::DRILL,
                "needs an identifier_prefix, and poll_seconds and max_wait_minutes above 0",
            ));
        }
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            drill,
            copy_region,
        })
    }

    /// Where the drills restore: the module's region, the copy region, or the vault.
    fn drill_place<'a>(&'a self, home: &'a str) -> Place<'a> {
        let own = |region| Place { account: None, region };
        match self.drill.copy {
            CopySource::Source => own(home),
            CopySource::Copy => own(self.copy_region.as_deref().unwrap_or(home)),
            CopySource::Vault => self.vault_place().unwrap_or(own(home)),
        }
    }

    /// Where drill databases may be: the module's region, the copy region, and the vault.
    fn places<'a>(&'a self, home: &'a str) -> Vec<Place<'a>> {
        let copy = self.copy_region.as_deref().filter(|region| *region != home);
        [Some(home), copy]
            .into_iter()
            .flatten()
            .map(|region| Place { account: None, region })
            .chain(self.vault_place())
            .collect()
    }

    /// The vault's region and account, when the vault has a drill role.
    fn vault_place(&self) -> Option<Place<'_>> {
        self.drill.vault.as_ref().map(|vault| Place {
            account: Some(&vault.account_id),
            region: &vault.region,
        })
    }
}

pub struct Clients {
    pub sdk_config: SdkConfig,
    /// The RDS client of the function's region.
    pub home: Rds,
    /// STS, for sessions of the vault's drill role.
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub fn new(sdk_config: SdkConfig) -> Result<Self, Error> {
        Ok(Clients {
            home: Rds::new(&sdk_config)?,
            sts: aws_sdk_sts::Client::new(&sdk_config),
            sdk_config,
        })
    }

    /// RDS where drill databases are: the module's account in `place`'s region, or the vault's
    /// account through a session of its drill role (the home client's settings, signing as it).
    async fn rds_at(&self, config: &Config, place: Place<'_>) -> Result<Rds, Error> {
        let Some(account) = place.account else {
            return Ok(if place.region == self.home.region {
                self.home.clone()
            } else {
                Rds::in_region(&self.sdk_config, place.region)
            });
        };
        let vault = config
            .drill
            .vault
            .as_ref()
            .filter(|vault| vault.account_id == account)
            .ok_or_else(|| Error::config(env::DRILL, format!("has no drill role of the vault account {account}")))?;
        let credentials = backup_core::aws::assume_role(
            &self.sts,
            &vault.role_arn,
            VAULT_SESSION_NAME,
            vault.external_id.clone(),
        )
        .await?;
        Ok(self.home.with_credentials(place.region, credentials))
    }
}

/// One step of a drill.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Sweep {
        now: DateTime<Utc>,
    },
    Pick {
        execution_id: String,
        /// The execution's input, over its defaults.
        input: DrillInput,
    },
    Restore {
        db: String,
        /// The drill's execution: its databases carry it (a retried step finds its own).
        execution_id: String,
        now: DateTime<Utc>,
    },
    Check {
        restore: Box<DrillRestore>,
        now: DateTime<Utc>,
    },
    Delete {
        restore: Box<DrillRestore>,
    },
}

/// A drill execution's input: `{}` drills as configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillInput {
    /// These databases (null or empty: the configured ones).
    #[serde(default)]
    pub databases: Option<Vec<String>>,
    /// Only the sweep (the hourly schedule).
    #[serde(default)]
    pub sweep_only: bool,
}

/// The databases a drill restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Picked {
    pub region: String,
    /// The vault account, when the drill restores its copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub databases: Vec<String>,
    /// How many there were to pick from.
    pub candidates: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Output {
    Swept(Swept),
    Picked(Picked),
    Restore(Box<DrillRestore>),
    Deleted(Deleted),
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<Output, Error> {
    match input::parse(event)? {
        Request::Sweep { now } => sweep(clients, config, now).await.map(Output::Swept),
        Request::Pick { execution_id, input } => pick(clients, config, &execution_id, input.databases)
            .await
            .map(Output::Picked),
        Request::Restore { db, execution_id, now } => start_restore(clients, config, &db, &execution_id, now)
            .await
            .map(|restore| Output::Restore(Box::new(restore))),
        Request::Check { restore, now } => check(clients, config, *restore, now)
            .await
            .map(|restore| Output::Restore(Box::new(restore))),
        Request::Delete { restore } => delete(clients, config, &restore).await.map(Output::Deleted),
    }
}

/// The databases to restore: `asked`, else the configured ones, else every database with an
/// available backup of ours in the drill's region; `random_count` of them, chosen by the
/// execution (a retried pick picks the same).
pub async fn pick(
    clients: &Clients,
    config: &Config,
    execution_id: &str,
    asked: Option<Vec<String>>,
) -> Result<Picked, Error> {
    let place = config.drill_place(&clients.home.region);
    let named = asked
        .filter(|databases| !databases.is_empty())
        .unwrap_or_else(|| config.drill.databases.clone());
    for (i, db) in named.iter().enumerate() {
        rds_identifier(&format!("databases[{i}]"), db, MAX_DB_IDENTIFIER_LEN)?;
    }
    let mut candidates = if named.is_empty() {
        backed_up(&clients.rds_at(config, place).await?, config).await?
    } else {
        named
    };
    candidates.sort();
    candidates.dedup();
    let count = candidates.len();
    let wanted = config.drill.random_count as usize;
    if wanted > 0 && wanted < count {
        // A stable order by execution: no seed to keep, and a retried pick picks the same.
        candidates.sort_by_key(|db| naming::fnv1a_32(format!("{execution_id}/{db}").as_bytes()));
        candidates.truncate(wanted);
        candidates.sort();
    }
    Ok(Picked {
        region: place.region.to_owned(),
        account: place.account.map(str::to_owned),
        databases: candidates,
        candidates: count,
    })
}

/// The databases with an available backup of this module instance where the drill restores.
async fn backed_up(rds: &Rds, config: &Config) -> Result<Vec<String>, Error> {
    let snapshots = rds
        .list_manual_snapshots(&[DatabaseKind::Instance, DatabaseKind::Cluster])
        .await?;
    Ok(snapshots
        .iter()
        .filter(|s| s.is_available() && tags::tag_value(&s.tags, tags::MANAGED_BY) == Some(&config.settings.instance))
        .filter_map(|s| tags::tag_value(&s.tags, tags::SOURCE_DB).map(str::to_owned))
        // A drill's database is never drilled (nor, by select, backed up).
        .filter(|db| !db.starts_with(&config.drill.identifier_prefix))
        .collect())
}

/// The drill database's identifier: the prefix, the database (shortened to fit RDS's 63
/// characters with room for an Aurora writer's suffix) and the request's month, day, hour and
/// minute.
pub fn drill_identifier(prefix: &str, db: &str, now: DateTime<Utc>) -> String {
    let stamp = now.format("%m%d%H%M").to_string();
    let room = MAX_DB_IDENTIFIER_LEN.saturating_sub(prefix.len() + stamp.len() + 1 + WRITER_SUFFIX.len());
    let db: String = db.chars().take(room).collect();
    let db = db.trim_end_matches('-');
    format!("{prefix}{db}-{stamp}").replace("--", "-")
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// How long past a drill's bound and keep time its database is left to the drill itself: the
/// check that finds it available may come late (its retries), and the keep time starts then.
const SWEEP_MARGIN_MINUTES: i64 = 30;

/// Plans and sends the restore of `db`'s newest backup: nothing is created when the plan refuses.
/// The identifier carries the step's time and the database its execution, so a retry of the step
/// after RDS took the request finds its own drill database and goes on with it (another
/// execution's, of the same minute, is refused).
pub async fn start_restore(
    clients: &Clients,
    config: &Config,
    db: &str,
    execution_id: &str,
    now: DateTime<Utc>,
) -> Result<DrillRestore, Error> {
    let place = config.drill_place(&clients.home.region);
    let rds = clients.rds_at(config, place).await?;
    let settings = &config.drill;
    let refused = |reason: String| Error::RestoreRefused {
        db_identifier: db.to_owned(),
        region: place.to_string(),
        reason,
    };
    let from_restore = |err: RestoreError| match err {
        RestoreError::Refused { field, reason } => refused(format!("{field} {reason}")),
        RestoreError::Aws(err) => err,
    };
    let restored_id = drill_identifier(&settings.identifier_prefix, db, now);
    let module = &config.settings;
    if let Some(existing) = rds.describe_raw(&restored_id, None).await? {
        let kind = match existing {
            Described::Instance(_) => DatabaseKind::Instance,
            Described::Cluster(_) => DatabaseKind::Cluster,
        };
        let existing = Restored::from(existing);
        if is_drill_database(config, &restored_id, &existing.tags)
            && tags::tag_value(&existing.tags, tags::EXECUTION) == Some(execution_id)
        {
            let snapshot = restore::newest_backup(&rds, db, Some(&module.instance))
                .await
                .map_err(from_restore)?;
            let writer = match kind {
                DatabaseKind::Instance => None,
                DatabaseKind::Cluster => {
                    let class = match &settings.instance_class {
                        Some(class) => Some(class.clone()),
                        None => restore::writer_class(&rds, db).await?,
                    };
                    // The cluster exists: not a refusal (nothing created) but a failed restore,
                    // whose cluster the sweep deletes.
                    let class = class.ok_or_else(|| Error::RestoreFailed {
                        db_identifier: db.to_owned(),
                        restored_id: restored_id.clone(),
                        region: place.to_string(),
                        status: format!("restored, without a writer: {}", no_writer_class(db)),
                    })?;
                    Some(drill_writer(&restored_id, class))
                }
            };
            tracing::info!(db, restored_id, "drill restore already requested by this step");
            return Ok(DrillRestore {
                writer,
                ..record(config, db, place, kind, restored_id, &snapshot, now)
            });
        }
    }
    let delete_after = delete_after(settings, now);
    let options = RestoreOptions {
        db: db.to_owned(),
        new_id: restored_id.clone(),
        origin: Origin::NewestBackup,
        managed_by: Some(module.instance.clone()),
        instance_class: settings.instance_class.clone(),
        subnet_group: settings.subnet_group.clone(),
        security_group_ids: settings.security_group_ids.clone(),
        tags: vec![
            tag(&module.tag_keys.project, &module.project),
            tag(&module.tag_keys.environment, &module.environment),
            tag(drill::DRILL, &module.instance),
            tag(drill::DELETE_AFTER, &restore::rfc3339(delete_after)),
            tag(tags::SOURCE_DB, db),
            tag(tags::EXECUTION, execution_id),
        ],
    };
    let plan = restore::plan(&rds, &options, now).await.map_err(from_restore)?;
    let Source::Backup(snapshot) = &plan.source else {
        return Err(refused("a drill restores a backup, not a point in time".to_owned()));
    };
    let writer = match (plan.request.kind, &plan.request.writer) {
        (DatabaseKind::Instance, _) => None,
        (DatabaseKind::Cluster, Some(writer)) => Some(drill_writer(&restored_id, writer.instance_class.clone())),
        (DatabaseKind::Cluster, None) => return Err(refused(no_writer_class(db))),
    };
    plan.request.send(&rds).await?;
    tracing::info!(db, restored_id, snapshot = %snapshot.snapshot_id, %place, "drill restore requested");
    Ok(DrillRestore {
        writer,
        ..record(config, db, place, plan.request.kind, restored_id, snapshot, now)
    })
}

/// An Aurora drill whose writer has no class: neither `restore_drill.instance_class` nor a
/// writer of the original in the drill's region to take it from.
fn no_writer_class(db: &str) -> String {
    format!(
        "restore_drill.instance_class is needed: a restored Aurora cluster needs a DB instance (its writer) \
         before anything connects to it, and {db} has no writer here to take its class from"
    )
}

/// The writer an Aurora drill adds to the cluster `restored_id`, not yet asked for.
fn drill_writer(restored_id: &str, instance_class: String) -> DrillWriter {
    DrillWriter {
        instance_id: restore::writer_identifier(restored_id),
        instance_class,
        requested: false,
        status: None,
    }
}

/// When the sweep may delete a drill database requested at `now`.
fn delete_after(settings: &DrillSettings, now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(
        i64::from(settings.max_wait_minutes) + i64::from(settings.keep_minutes) + SWEEP_MARGIN_MINUTES,
    )
}

/// The drill of `db` as requested at `now`, restoring `snapshot` to `restored_id`.
fn record(
    config: &Config,
    db: &str,
    place: Place<'_>,
    kind: DatabaseKind,
    restored_id: String,
    snapshot: &SnapshotInfo,
    now: DateTime<Utc>,
) -> DrillRestore {
    let settings = &config.drill;
    DrillRestore {
        db: db.to_owned(),
        region: place.region.to_owned(),
        account: place.account.map(str::to_owned),
        kind,
        restored_id,
        snapshot_id: snapshot.snapshot_id.clone(),
        snapshot_created_at: snapshot.taken_at(),
        operation: match kind {
            DatabaseKind::Instance => "RestoreDBInstanceFromDBSnapshot",
            DatabaseKind::Cluster => "RestoreDBClusterFromSnapshot",
        }
        .to_owned(),
        requested_at: now,
        deadline: now + Duration::minutes(i64::from(settings.max_wait_minutes)),
        delete_after: delete_after(settings, now),
        rto_minutes: settings.rto_minutes,
        keep_seconds: settings.keep_minutes * 60,
        poll_seconds: settings.poll_seconds,
        expected: Expected {
            engine: snapshot.engine.clone(),
            engine_version: snapshot.engine_version.clone(),
            allocated_storage_gib: snapshot
                .allocated_storage_gib
                .filter(|_| snapshot.kind == DatabaseKind::Instance),
            encrypted: snapshot.encrypted,
        },
        status: "requested".to_owned(),
        ready: false,
        next_poll_seconds: settings.poll_seconds,
        available_at: None,
        checks: Vec::new(),
        probe: None,
        writer: None,
    }
}

/// What the restored database is, as RDS describes it.
struct Restored {
    status: String,
    engine: String,
    engine_version: Option<String>,
    allocated_storage_gib: Option<i32>,
    encrypted: Option<bool>,
    tags: Vec<Tag>,
    /// A DB instance's endpoint (address, port); a cluster is connected to through its writer.
    endpoint: Option<(String, u16)>,
    db_name: Option<String>,
    /// A DB instance's class and Aurora cluster.
    instance_class: Option<String>,
    cluster_id: Option<String>,
    /// A cluster's DB instances.
    members: Vec<String>,
}

impl From<Described> for Restored {
    fn from(described: Described) -> Self {
        match described {
            Described::Instance(db) => Restored {
                status: db.db_instance_status().unwrap_or_default().to_owned(),
                engine: db.engine().unwrap_or_default().to_owned(),
                engine_version: db.engine_version().map(str::to_owned),
                allocated_storage_gib: db.allocated_storage(),
                encrypted: db.storage_encrypted(),
                tags: db.tag_list().to_vec(),
                endpoint: db.endpoint().and_then(|endpoint| {
                    let port = u16::try_from(endpoint.port()?).ok()?;
                    Some((endpoint.address()?.to_owned(), port))
                }),
                db_name: db.db_name().map(str::to_owned),
                instance_class: db.db_instance_class().map(str::to_owned),
                cluster_id: db.db_cluster_identifier().map(str::to_owned),
                members: Vec::new(),
            },
            Described::Cluster(cluster) => Restored {
                status: cluster.status().unwrap_or_default().to_owned(),
                engine: cluster.engine().unwrap_or_default().to_owned(),
                engine_version: cluster.engine_version().map(str::to_owned),
                allocated_storage_gib: cluster.allocated_storage(),
                encrypted: cluster.storage_encrypted(),
                tags: cluster.tag_list().to_vec(),
                endpoint: None,
                db_name: cluster.database_name().map(str::to_owned),
                instance_class: None,
                cluster_id: None,
                members: cluster
                    .db_cluster_members()
                    .iter()
                    .filter_map(|member| member.db_instance_identifier().map(str::to_owned))
                    .collect(),
            },
        }
    }
}

async fn describe(rds: &Rds, restore: &DrillRestore) -> Result<Option<Restored>, Error> {
    Ok(rds
        .describe_raw(&restore.restored_id, Some(restore.kind))
        .await?
        .map(Restored::from))
}

/// Where a drill's database is.
fn place_of(restore: &DrillRestore) -> Place<'_> {
    Place {
        account: restore.account.as_deref(),
        region: &restore.region,
    }
}

/// One look at the restored database.
pub async fn check(
    clients: &Clients,
    config: &Config,
    mut restore: DrillRestore,
    now: DateTime<Utc>,
) -> Result<DrillRestore, Error> {
    let rds = clients.rds_at(config, place_of(&restore)).await?;
    let found = describe(&rds, &restore).await?;
    let failed = |status: &str| Error::RestoreFailed {
        db_identifier: restore.db.clone(),
        restored_id: restore.restored_id.clone(),
        region: place_of(&restore).to_string(),
        status: status.to_owned(),
    };
    let Some(restored) = found else {
        return Err(failed("gone (RDS lists no such database)"));
    };
    let status = restored.status.as_str();
    if restore::FAILED_STATUSES.contains(&status) || status == "deleting" {
        return Err(failed(status));
    }
    restore.status = restored.status.clone();
    // What a client connects to once available: the instance, or the cluster's writer.
    // (No writer is asked for past the bound: the drill ends there.)
    let connectable = match (status, restore.writer.is_some()) {
        ("available", false) => Some(None),
        ("available", true) if now < restore.deadline => writer_step(&rds, &mut restore, &restored).await?.map(Some),
        _ => None,
    };
    if let Some(writer) = connectable {
        restore.ready = true;
        restore.available_at = Some(now);
        restore.checks = checks(&restore.expected, &restored);
        if let (Some(writer), Some(drill_writer)) = (&writer, &restore.writer) {
            let class = |class: &str| format!("available ({class})");
            restore.checks.push(compare(
                "writer",
                &class(&drill_writer.instance_class),
                &class(writer.instance_class.as_deref().unwrap_or("unknown")),
            ));
        }
        restore.next_poll_seconds = 0;
        let connect_to = writer.as_ref().unwrap_or(&restored);
        if let Some((probe, secret_arn)) = config
            .drill
            .sql_probe
            .as_ref()
            .and_then(|probe| Some((probe, probe.secret_arns.get(&restore.db)?)))
        {
            match probe_target(probe, secret_arn, connect_to, restored.db_name.as_deref()) {
                Ok(target) => restore.probe = Some(target),
                Err(reason) => restore.checks.push(Check {
                    name: drill::PROBE_CHECK.to_owned(),
                    expected: "a read-only query answered".to_owned(),
                    actual: format!("not run: {reason}"),
                    passed: false,
                }),
            }
        }
        return Ok(restore);
    }
    if now >= restore.deadline {
        let status = match &restore.writer {
            Some(writer) if status == "available" => format!(
                "available, its writer {} {}",
                writer.instance_id,
                writer.status.as_deref().unwrap_or("not requested")
            ),
            _ => restored.status,
        };
        return Err(Error::WaitTimedOut {
            what: format!(
                "the drill's restore of {} to {} in {}",
                restore.db,
                restore.restored_id,
                place_of(&restore)
            ),
            status,
            elapsed_seconds: u64::try_from((now - restore.requested_at).num_seconds()).unwrap_or(0),
            timeout_field: "restore_drill.max_wait_minutes".to_owned(),
        });
    }
    let left = u32::try_from((restore.deadline - now).num_seconds().max(1)).unwrap_or(u32::MAX);
    restore.next_poll_seconds = restore.poll_seconds.min(left);
    Ok(restore)
}

/// An Aurora drill's writer, once its cluster (`cluster`) is available: asked for at the first
/// look, then read at each; the writer once it is available too.
async fn writer_step(rds: &Rds, restore: &mut DrillRestore, cluster: &Restored) -> Result<Option<Restored>, Error> {
    let cluster_id = restore.restored_id.clone();
    let (db, region) = (restore.db.clone(), place_of(restore).to_string());
    let failed = |status: String| Error::RestoreFailed {
        db_identifier: db.clone(),
        restored_id: cluster_id.clone(),
        region: region.clone(),
        status,
    };
    let Some(writer) = restore.writer.clone() else {
        return Ok(None);
    };
    if !writer.requested {
        let request = WriterRequest {
            cluster_id: cluster_id.clone(),
            instance_id: writer.instance_id.clone(),
            engine: cluster.engine.clone(),
            instance_class: writer.instance_class.clone(),
            // The cluster's (the drill's tags): the writer is a drill database too. `aws:` tags
            // are AWS's own, which no request may set.
            tags: cluster
                .tags
                .iter()
                .filter(|tag| !tag.key().unwrap_or_default().starts_with("aws:"))
                .cloned()
                .collect(),
        };
        let (requested, status) = match request.send(rds).await {
            Ok(()) => (true, "requested".to_owned()),
            // A retried look whose request RDS took: the read below checks it is the cluster's.
            Err(failure) if failure.code.as_deref() == Some("DBInstanceAlreadyExists") => {
                (true, "requested".to_owned())
            }
            // Not in a state to take it after all: asked again at the next look, until the bound,
            // whose error then carries RDS's reason.
            Err(failure) if failure.code.as_deref() == Some("InvalidDBClusterStateFault") => {
                (false, format!("not added yet: {}", failure.message))
            }
            Err(failure) => return Err(failure.into()),
        };
        tracing::info!(cluster = %cluster_id, writer = %writer.instance_id, status, "drill cluster's writer");
        if let Some(drill_writer) = restore.writer.as_mut() {
            drill_writer.requested = requested;
            drill_writer.status = Some(status);
        }
        return Ok(None);
    }
    let Some(described) = rds
        .describe_raw(&writer.instance_id, Some(DatabaseKind::Instance))
        .await?
    else {
        return Err(failed(format!(
            "available, and its writer {} is gone (RDS lists no such DB instance)",
            writer.instance_id
        )));
    };
    let found = Restored::from(described);
    if found.cluster_id.as_deref() != Some(cluster_id.as_str()) {
        return Err(failed(format!(
            "available, and the DB instance {} is not its writer: it belongs to {}",
            writer.instance_id,
            found.cluster_id.as_deref().unwrap_or("no cluster")
        )));
    }
    if let Some(drill_writer) = restore.writer.as_mut() {
        drill_writer.status = Some(found.status.clone());
    }
    if restore::FAILED_STATUSES.contains(&found.status.as_str()) || found.status == "deleting" {
        return Err(failed(format!(
            "available, and its writer {} is {}",
            writer.instance_id, found.status
        )));
    }
    Ok((found.status == "available").then_some(found))
}

/// What the `probe` function connects to, or why the restored database cannot be probed; an
/// Aurora writer's database is its cluster's (`cluster_db_name`).
fn probe_target(
    probe: &SqlProbeSettings,
    secret_arn: &str,
    restored: &Restored,
    cluster_db_name: Option<&str>,
) -> Result<ProbeTarget, String> {
    if ProbeProtocol::of_engine(&restored.engine).is_none() {
        let probed: Vec<&str> = drill::PROBED_ENGINES.iter().map(|(engine, _)| *engine).collect();
        return Err(format!(
            "the probe speaks to {} only, and this database's engine is {}",
            probed.join(", "),
            restored.engine
        ));
    }
    let Some((address, port)) = restored.endpoint.clone() else {
        return Err("the restored database has no endpoint to connect to".to_owned());
    };
    Ok(ProbeTarget {
        engine: restored.engine.clone(),
        address,
        port,
        database: restored.db_name.clone().or_else(|| cluster_db_name.map(str::to_owned)),
        secret_arn: secret_arn.to_owned(),
        query: probe.query.clone(),
        connect_timeout_seconds: probe.connect_timeout_seconds,
    })
}

/// The restored database against the snapshot it came from.
fn checks(expected: &Expected, restored: &Restored) -> Vec<Check> {
    let mut checks = vec![
        compare("status", "available", &restored.status),
        compare("engine", &expected.engine, &restored.engine),
    ];
    if let Some(version) = &expected.engine_version {
        checks.push(compare(
            "engine version",
            version,
            restored.engine_version.as_deref().unwrap_or("unknown"),
        ));
    }
    if let Some(gib) = expected.allocated_storage_gib {
        let actual = restored
            .allocated_storage_gib
            .map_or_else(|| "unknown".to_owned(), |gib| format!("{gib} GiB"));
        checks.push(compare("allocated storage", &format!("{gib} GiB"), &actual));
    }
    if let Some(encrypted) = expected.encrypted {
        let actual = restored
            .encrypted
            .map_or_else(|| "unknown".to_owned(), |e| e.to_string());
        checks.push(compare("encrypted", &encrypted.to_string(), &actual));
    }
    checks
}

fn compare(name: &str, expected: &str, actual: &str) -> Check {
    Check {
        name: name.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
        passed: expected == actual,
    }
}

/// Whether a database is a drill database of this module instance: its identifier and its tag.
fn is_drill_database(config: &Config, identifier: &str, tags: &[Tag]) -> bool {
    identifier.starts_with(&config.drill.identifier_prefix)
        && tags::tag_value(tags, drill::DRILL) == Some(config.settings.instance.as_str())
}

/// Deletes the drill database, skipping its final snapshot.
pub async fn delete(clients: &Clients, config: &Config, restore: &DrillRestore) -> Result<Deleted, Error> {
    let rds = clients.rds_at(config, place_of(restore)).await?;
    let deleted = |status: &str| Deleted {
        restored_id: restore.restored_id.clone(),
        status: status.to_owned(),
        instances: Vec::new(),
    };
    let Some(restored) = describe(&rds, restore).await? else {
        return Ok(deleted("gone"));
    };
    if !is_drill_database(config, &restore.restored_id, &restored.tags) {
        return Err(Error::IdentifierConflict {
            resource: restore.kind.label(),
            id: restore.restored_id.clone(),
            region: place_of(restore).to_string(),
            reason: format!(
                "it does not carry the tag {}={} of this module's drills: not deleted",
                drill::DRILL,
                config.settings.instance
            ),
        });
    }
    if restored.status == "deleting" {
        return Ok(deleted("deleting"));
    }
    // A cluster's instances first: RDS deletes no cluster that "still contains DB instances in
    // non-deleting state" (its InvalidDBClusterStateFault); a retried delete finds them deleting.
    // All are checked before any is deleted.
    let mut members = Vec::new();
    for member in &restored.members {
        if let Some(instance) = rds.describe_raw(member, Some(DatabaseKind::Instance)).await? {
            members.push((member, Restored::from(instance)));
        }
    }
    if let Some((member, _)) = members
        .iter()
        .find(|(member, instance)| !is_drill_database(config, member, &instance.tags))
    {
        return Err(Error::IdentifierConflict {
            resource: DatabaseKind::Instance.label(),
            id: (*member).clone(),
            region: place_of(restore).to_string(),
            reason: format!(
                "it is in the drill's cluster {} and does not carry the tag {}={} of this module's drills: \
                     neither is deleted",
                restore.restored_id,
                drill::DRILL,
                config.settings.instance
            ),
        });
    }
    let mut instances = Vec::new();
    for (member, instance) in members {
        if instance.status != "deleting" {
            delete_database(&rds, DatabaseKind::Instance, member, instance.cluster_id.is_some()).await?;
        }
        instances.push(member.clone());
    }
    delete_database(&rds, restore.kind, &restore.restored_id, false).await?;
    tracing::info!(restored_id = %restore.restored_id, place = %place_of(restore), ?instances, "drill database deleted");
    Ok(Deleted {
        instances,
        ..deleted("deleting")
    })
}

/// DeleteDBInstance or DeleteDBCluster without a final snapshot; a database RDS will not delete
/// in its present state (still creating) is `DatabaseBusy`, which the state machine retries.
/// An Aurora cluster's instance (`in_cluster`) has no automated backups of its own to delete:
/// they are the cluster's.
async fn delete_database(rds: &Rds, kind: DatabaseKind, identifier: &str, in_cluster: bool) -> Result<(), Error> {
    let failure = match kind {
        DatabaseKind::Instance => rds
            .client
            .delete_db_instance()
            .db_instance_identifier(identifier)
            .skip_final_snapshot(true)
            .set_delete_automated_backups((!in_cluster).then_some(true))
            .send()
            .await
            .err()
            .map(|err| AwsFailure::from_sdk("DeleteDBInstance", &err)),
        DatabaseKind::Cluster => rds
            .client
            .delete_db_cluster()
            .db_cluster_identifier(identifier)
            .skip_final_snapshot(true)
            .send()
            .await
            .err()
            .map(|err| AwsFailure::from_sdk("DeleteDBCluster", &err)),
    };
    match failure {
        None => Ok(()),
        Some(failure)
            if matches!(
                failure.code.as_deref(),
                Some("DBInstanceNotFound" | "DBClusterNotFoundFault")
            ) =>
        {
            Ok(())
        }
        Some(failure)
            if matches!(
                failure.code.as_deref(),
                Some("InvalidDBInstanceState" | "InvalidDBClusterStateFault")
            ) =>
        {
            Err(Error::DatabaseBusy {
                kind: kind.label(),
                db_identifier: identifier.to_owned(),
                region: rds.region.clone(),
                status: format!("not deletable yet ({})", failure.message),
            })
        }
        Some(failure) => Err(failure.into()),
    }
}

/// Deletes the drill databases of this module instance whose delete-after time has passed, in
/// every place they may be. A place that cannot be swept (its listing refused, its role not
/// assumable) or a database that cannot be deleted is in `failed`, and the sweep goes on with
/// the rest: what it deleted is always in its result, which notify reports, never lost to a
/// task error (a retried sweep would find those databases `deleting` and report nothing).
pub async fn sweep(clients: &Clients, config: &Config, now: DateTime<Utc>) -> Result<Swept, Error> {
    let home = clients.home.region.clone();
    let mut swept = Swept::default();
    for place in config.places(&home) {
        if let Err(err) = sweep_place(clients, config, place, now, &mut swept).await {
            tracing::error!(%place, error = %err, "the sweep could not look at a place");
            swept
                .failed
                .push(format!("{place}: {}: {err}", err.error_type().as_str()));
        }
    }
    Ok(swept)
}

/// Sweeps one place, adding to `swept`; `Err`: the place could not be listed.
async fn sweep_place(
    clients: &Clients,
    config: &Config,
    place: Place<'_>,
    now: DateTime<Utc>,
    swept: &mut Swept,
) -> Result<(), Error> {
    let rds = clients.rds_at(config, place).await?;
    // DB instances come first: an Aurora drill's writer is deleted before its cluster.
    for (kind, identifier, restored) in drill_databases(&rds).await? {
        if !is_drill_database(config, &identifier, &restored.tags) || restored.status == "deleting" {
            continue;
        }
        let due = tags::tag_value(&restored.tags, drill::DELETE_AFTER)
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .is_none_or(|at| at <= now);
        let name = format!("{identifier} ({place})");
        if !due {
            swept.kept.push(name);
            continue;
        }
        match delete_database(&rds, kind, &identifier, restored.cluster_id.is_some()).await {
            Ok(()) => {
                tracing::warn!(
                    identifier,
                    %place,
                    "drill database past its delete-after time deleted by the sweep"
                );
                swept.deleted.push(name);
            }
            // Still being created (or a cluster whose writer is): RDS deletes it at a later sweep.
            Err(Error::DatabaseBusy { .. }) => swept.kept.push(format!("{name}: not deletable yet")),
            Err(err) => {
                tracing::error!(identifier, %place, error = %err, "the sweep could not delete a drill database");
                swept
                    .failed
                    .push(format!("{name}: {}: {err}", err.error_type().as_str()));
            }
        }
    }
    Ok(())
}

/// The region's DB instances and DB clusters (pages of 100), with their tags.
async fn drill_databases(rds: &Rds) -> Result<Vec<(DatabaseKind, String, Restored)>, Error> {
    let mut found = Vec::new();
    let mut instances = rds
        .client
        .describe_db_instances()
        .max_records(100)
        .into_paginator()
        .send();
    while let Some(page) = instances.next().await {
        let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBInstances", &err))?;
        for db in page.db_instances() {
            let identifier = db.db_instance_identifier().unwrap_or_default().to_owned();
            found.push((
                DatabaseKind::Instance,
                identifier,
                Restored::from(Described::Instance(Box::new(db.clone()))),
            ));
        }
    }
    let mut clusters = rds
        .client
        .describe_db_clusters()
        .max_records(100)
        .into_paginator()
        .send();
    while let Some(page) = clusters.next().await {
        let page = page.map_err(|err| AwsFailure::from_sdk("DescribeDBClusters", &err))?;
        for cluster in page.db_clusters() {
            let identifier = cluster.db_cluster_identifier().unwrap_or_default().to_owned();
            found.push((
                DatabaseKind::Cluster,
                identifier,
                Restored::from(Described::Cluster(Box::new(cluster.clone()))),
            ));
        }
    }
    Ok(found)
}
