//! The restore: what to restore a database from (the newest good backup the module made, a
//! named snapshot, or a point in time) and the exact RDS request that restores it to a NEW
//! database beside the original. One implementation for the operator's `scripts/restore`
//! (tools/restore) and the restore drills to come, so that a drill tests what an operator runs.
//! [`plan`] only reads; [`RestoreRequest::send`] is the one call that changes anything.

use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::error::AwsFailure;
use crate::naming::{MAX_DB_IDENTIFIER_LEN, rds_identifier};
use crate::rds::{Described, Rds, SnapshotInfo, to_chrono};
use crate::tags;
use crate::types::DatabaseKind;

/// The tag a restored database carries: the snapshot's ARN, or `<database> at <time>` for a
/// point-in-time restore.
pub const RESTORED_FROM: &str = "database-backup:restored-from";

/// Statuses a restored database ends in when the restore failed: it will not become
/// available (RDS User Guide, "Viewing Amazon RDS DB instance status").
pub const FAILED_STATUSES: [&str; 5] = [
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
];

/// What to restore from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// The newest `available` manual snapshot carrying the module's tags for the database.
    NewestBackup,
    /// This manual snapshot (identifier), whoever made it.
    Snapshot(String),
    /// The database's automated backups at this time; `None`: its latest restorable time.
    PointInTime(Option<DateTime<Utc>>),
}

/// A restore as asked for. `field` names in errors are these fields' names.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOptions {
    /// The database the backups are of (DB instance or Aurora DB cluster identifier).
    pub db: String,
    /// The new database's identifier.
    pub new_id: String,
    pub origin: Origin,
    /// The module instance (`<project>-<environment>`) whose backups to use, when several
    /// back up the same database.
    pub managed_by: Option<String>,
    /// Overrides of the original's settings (which are used when it is in this region).
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Tags the new database carries besides [`RESTORED_FROM`].
    pub tags: Vec<Tag>,
}

/// Why a restore is refused before anything changes, naming the option (`field`) or the
/// resource; or a lookup AWS refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RestoreError {
    #[error("{field} {reason}")]
    Refused { field: &'static str, reason: String },
    #[error("{0}")]
    Aws(#[from] crate::Error),
}

impl From<AwsFailure> for RestoreError {
    fn from(failure: AwsFailure) -> Self {
        RestoreError::Aws(failure.into())
    }
}

fn refused(field: &'static str, reason: impl Into<String>) -> RestoreError {
    RestoreError::Refused {
        field,
        reason: reason.into(),
    }
}

/// The span a point-in-time restore may go to: "any point in time before LatestRestorableTime
/// for up to BackupRetentionPeriod days" (RDS API Reference, RestoreDBInstanceToPointInTime and
/// RestoreDBClusterToPointInTime), and not before the database existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreWindow {
    pub earliest: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

impl std::fmt::Display for RestoreWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", rfc3339(self.earliest), rfc3339(self.latest))
    }
}

/// The original database's settings a restore keeps, and its point-in-time window.
#[derive(Debug, Clone, Default, PartialEq)]
struct Original {
    /// For a DB instance of an Aurora cluster: the cluster, whose recovery is its members'.
    cluster: Option<String>,
    engine: Option<String>,
    instance_class: Option<String>,
    subnet_group: Option<String>,
    security_group_ids: Vec<String>,
    multi_az: Option<bool>,
    port: Option<i32>,
    backup_retention_days: Option<i32>,
    created_at: Option<DateTime<Utc>>,
    earliest_restorable_time: Option<DateTime<Utc>>,
    latest_restorable_time: Option<DateTime<Utc>>,
    /// An Aurora cluster's Serverless v2 capacity range (ACUs, minimum and maximum).
    serverless_v2: Option<(f64, f64)>,
}

impl From<&DbInstance> for Original {
    fn from(db: &DbInstance) -> Self {
        Original {
            cluster: db.db_cluster_identifier().map(str::to_owned),
            engine: db.engine().map(str::to_owned),
            instance_class: db.db_instance_class().map(str::to_owned),
            subnet_group: db
                .db_subnet_group()
                .and_then(|group| group.db_subnet_group_name())
                .map(str::to_owned),
            security_group_ids: db
                .vpc_security_groups()
                .iter()
                .filter_map(|group| group.vpc_security_group_id().map(str::to_owned))
                .collect(),
            multi_az: db.multi_az(),
            port: db.endpoint().and_then(|endpoint| endpoint.port()),
            backup_retention_days: db.backup_retention_period(),
            created_at: db.instance_create_time().and_then(to_chrono),
            earliest_restorable_time: None,
            latest_restorable_time: db.latest_restorable_time().and_then(to_chrono),
            serverless_v2: None,
        }
    }
}

impl From<&DbCluster> for Original {
    fn from(db: &DbCluster) -> Self {
        Original {
            cluster: None,
            engine: db.engine().map(str::to_owned),
            instance_class: None,
            subnet_group: db.db_subnet_group().map(str::to_owned),
            security_group_ids: db
                .vpc_security_groups()
                .iter()
                .filter_map(|group| group.vpc_security_group_id().map(str::to_owned))
                .collect(),
            multi_az: None,
            port: db.port(),
            backup_retention_days: db.backup_retention_period(),
            created_at: db.cluster_create_time().and_then(to_chrono),
            earliest_restorable_time: db.earliest_restorable_time().and_then(to_chrono),
            latest_restorable_time: db.latest_restorable_time().and_then(to_chrono),
            serverless_v2: db
                .serverless_v2_scaling_configuration()
                .and_then(|scaling| Some((scaling.min_capacity()?, scaling.max_capacity()?))),
        }
    }
}

impl Original {
    /// The window, or why there is none. A cluster reports its earliest restorable time; for a
    /// DB instance it is its retention before the latest, and not before its creation.
    fn window(&self, db: &str, region: &str) -> Result<RestoreWindow, RestoreError> {
        let retention = self.backup_retention_days.unwrap_or(0);
        let latest = match self.latest_restorable_time {
            Some(latest) if retention > 0 => latest,
            _ if retention > 0 => {
                return Err(refused(
                    "point_in_time",
                    format!(
                        "{db} in {region} has no restorable time yet: RDS reports none (its first automated \
                         backup may not have finished)"
                    ),
                ));
            }
            _ => {
                return Err(refused(
                    "point_in_time",
                    format!(
                        "{db} in {region} has no point-in-time recovery: its automated backups are off \
                         (backup retention {retention} days)"
                    ),
                ));
            }
        };
        let earliest = self.earliest_restorable_time.unwrap_or_else(|| {
            let by_retention = latest - Duration::days(i64::from(retention));
            self.created_at
                .map_or(by_retention, |created| by_retention.max(created))
        });
        if earliest > latest {
            return Err(refused(
                "point_in_time",
                format!(
                    "{db} in {region} has nothing to restore yet: its automated backups began at {}, after its \
                     latest restorable time {}",
                    rfc3339(earliest),
                    rfc3339(latest)
                ),
            ));
        }
        Ok(RestoreWindow { earliest, latest })
    }
}

/// Where a restore comes from, as read before it is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Backup(Box<SnapshotInfo>),
    PointInTime {
        window: RestoreWindow,
        /// `None`: the latest restorable time.
        time: Option<DateTime<Utc>>,
    },
}

/// The one RDS call a restore makes, with every parameter it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRequest {
    pub kind: DatabaseKind,
    pub new_id: String,
    /// The snapshot identifier, or for a point-in-time restore the source database.
    pub from: String,
    pub point_in_time: bool,
    /// For a point-in-time restore: the time; `None` uses the latest restorable time.
    pub restore_time: Option<DateTime<Utc>>,
    /// A cluster snapshot's engine (RestoreDBClusterFromSnapshot requires it).
    pub engine: Option<String>,
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_group_ids: Vec<String>,
    pub multi_az: Option<bool>,
    pub port: Option<i32>,
    pub tags: Vec<Tag>,
    /// An Aurora cluster's Serverless v2 capacity range (the original's), which a `db.serverless`
    /// writer needs: RDS refuses one in a cluster without it.
    pub serverless_v2: Option<(f64, f64)>,
    /// For an Aurora cluster, the writer to add once it is available, when its class is known
    /// (given, or the original's writer's): until then nothing can connect to the cluster.
    pub writer: Option<WriterRequest>,
}

/// The DB instance a restored Aurora cluster needs before anything can connect to it: the
/// restore "only restores the DB cluster, not the DB instances for that DB cluster. You must
/// invoke the CreateDBInstance operation to create DB instances for the restored DB cluster
/// [...]. You can create DB instances only after the RestoreDBClusterFromSnapshot operation has
/// completed and the DB cluster is available" (RDS API Reference, RestoreDBClusterFromSnapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct WriterRequest {
    pub cluster_id: String,
    pub instance_id: String,
    /// The cluster's engine (CreateDBInstance requires it, and it must be the cluster's).
    pub engine: String,
    pub instance_class: String,
    /// The cluster's tags: a drill's writer is a drill database too.
    pub tags: Vec<Tag>,
}

/// The identifier of a restored cluster's writer: the cluster's with `-1` (shortened to fit).
pub fn writer_identifier(cluster_id: &str) -> String {
    let room = MAX_DB_IDENTIFIER_LEN - WRITER_SUFFIX.len();
    let stem: String = cluster_id.chars().take(room).collect();
    format!("{}{WRITER_SUFFIX}", stem.trim_end_matches('-'))
}

/// What [`writer_identifier`] adds to the cluster's identifier.
pub const WRITER_SUFFIX: &str = "-1";

/// The instance class of an Aurora Serverless v2 DB instance.
pub const SERVERLESS_V2_CLASS: &str = "db.serverless";

/// What [`plan`] found: where the restore comes from and the request that makes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RestorePlan {
    pub db: String,
    pub region: String,
    /// The restored database's engine, when known (the snapshot's, or the original's).
    pub engine: Option<String>,
    pub source: Source,
    pub request: RestoreRequest,
}

/// A time as RDS's API and the tags show it: RFC 3339, to the second, `Z`.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads what the restore needs and builds its request; changes nothing. Refused: an invalid
/// identifier, `new_id` equal to `db` or taken, no backup to restore from, a time outside the
/// window, an instance with no class to restore to.
pub async fn plan(rds: &Rds, options: &RestoreOptions, now: DateTime<Utc>) -> Result<RestorePlan, RestoreError> {
    let identifier = |field, value: &str| {
        rds_identifier(field, value, MAX_DB_IDENTIFIER_LEN).map_err(|_| {
            refused(
                field,
                format!(
                    "{value:?} is not an RDS identifier: 1-63 letters, digits and hyphens, starting with a \
                     letter, no two hyphens in a row, not ending with a hyphen"
                ),
            )
        })
    };
    let db = identifier("db", &options.db)?;
    let new_id = identifier("new_id", &options.new_id)?;
    if new_id == db {
        return Err(refused(
            "new_id",
            "must differ from db: a restore makes a new database beside the original",
        ));
    }
    let region = rds.region.clone();
    let original = describe_original(rds, &db).await?;
    let (kind, source) = match &options.origin {
        Origin::NewestBackup => {
            let backup = newest_backup(rds, &db, options.managed_by.as_deref()).await?;
            (backup.kind, Source::Backup(Box::new(backup)))
        }
        Origin::Snapshot(snapshot_id) => {
            let snapshot = named_snapshot(rds, snapshot_id).await?;
            // The new database takes the original's settings: they must be the snapshot's database's.
            if snapshot.db_identifier != db {
                return Err(refused(
                    "snapshot_id",
                    format!(
                        "{snapshot_id} is a snapshot of {}, not of {db}: give --db {}",
                        snapshot.db_identifier, snapshot.db_identifier
                    ),
                ));
            }
            (snapshot.kind, Source::Backup(Box::new(snapshot)))
        }
        Origin::PointInTime(time) => {
            let Some((kind, original)) = &original else {
                return Err(refused(
                    "point_in_time",
                    format!(
                        "{db} is not a DB instance or DB cluster in {region}: a point-in-time restore is made in \
                         the database's own region"
                    ),
                ));
            };
            if let Some(cluster) = &original.cluster {
                return Err(refused(
                    "db",
                    format!(
                        "{db} is a DB instance of the Aurora DB cluster {cluster}, which is what is restored to a \
                         point in time: give --db {cluster}"
                    ),
                ));
            }
            let mut original = original.clone();
            if *kind == DatabaseKind::Instance {
                original.earliest_restorable_time = earliest_restorable_time(rds, &db).await;
            }
            let window = original.window(&db, &region)?;
            if let Some(time) = time {
                check_time(*time, window, now)?;
            }
            (*kind, Source::PointInTime { window, time: *time })
        }
    };
    if database_exists(rds, kind, &new_id).await? {
        return Err(refused(
            "new_id",
            format!(
                "{new_id}: a {} with this identifier already exists in {region}",
                kind.label()
            ),
        ));
    }
    let original = original
        .filter(|(original_kind, _)| *original_kind == kind)
        .map(|(_, original)| original)
        .unwrap_or_default();
    let engine = match &source {
        Source::Backup(snapshot) => Some(snapshot.engine.clone()).filter(|engine| !engine.is_empty()),
        Source::PointInTime { .. } => original.engine.clone(),
    };
    let request = build_request(options, kind, new_id, &db, &source, original, &region)?;
    Ok(RestorePlan {
        db,
        region,
        engine,
        source,
        request,
    })
}

fn check_time(time: DateTime<Utc>, window: RestoreWindow, now: DateTime<Utc>) -> Result<(), RestoreError> {
    let when = if time > now {
        "is in the future"
    } else if time > window.latest {
        "is after the latest restorable time"
    } else if time < window.earliest {
        "is before the earliest restorable time"
    } else {
        return Ok(());
    };
    Err(refused(
        "point_in_time",
        format!("{} {when}: the restorable window is {window}", rfc3339(time)),
    ))
}

fn build_request(
    options: &RestoreOptions,
    kind: DatabaseKind,
    new_id: String,
    db: &str,
    source: &Source,
    original: Original,
    region: &str,
) -> Result<RestoreRequest, RestoreError> {
    let (from, point_in_time, restore_time, engine, restored_from) = match source {
        Source::Backup(snapshot) => (
            snapshot.snapshot_id.clone(),
            false,
            None,
            Some(snapshot.engine.clone()),
            snapshot.arn.clone(),
        ),
        Source::PointInTime { time, .. } => (
            db.to_owned(),
            true,
            *time,
            None,
            format!(
                "{db} at {}",
                time.map_or_else(|| "its latest restorable time".to_owned(), rfc3339)
            ),
        ),
    };
    let writer_engine = engine.clone().or_else(|| original.engine.clone());
    let instance_class = options.instance_class.clone().or(original.instance_class);
    if kind == DatabaseKind::Instance && instance_class.is_none() {
        return Err(refused(
            "instance_class",
            format!("is needed: {db} is not a DB instance in {region} to take its instance class from"),
        ));
    }
    let security_group_ids = if options.security_group_ids.is_empty() {
        original.security_group_ids
    } else {
        options.security_group_ids.clone()
    };
    let mut tags = vec![Tag::builder().key(RESTORED_FROM).value(restored_from).build()];
    tags.extend(options.tags.iter().cloned());
    let serverless_v2 = original.serverless_v2.filter(|_| kind == DatabaseKind::Cluster);
    if kind == DatabaseKind::Cluster
        && instance_class.as_deref() == Some(SERVERLESS_V2_CLASS)
        && serverless_v2.is_none()
    {
        return Err(refused(
            "instance_class",
            format!(
                "{SERVERLESS_V2_CLASS} (Aurora Serverless v2) needs the cluster's Serverless v2 capacity range, and \
                 {db} is not an Aurora Serverless v2 cluster in {region} to take it from: give a provisioned class"
            ),
        ));
    }
    let writer = match (kind, writer_engine, &instance_class) {
        // Aurora's only: a Multi-AZ DB cluster is restored with its instances.
        (DatabaseKind::Cluster, Some(engine), Some(class)) if engine.starts_with("aurora") => Some(WriterRequest {
            cluster_id: new_id.clone(),
            instance_id: writer_identifier(&new_id),
            engine,
            instance_class: class.clone(),
            tags: tags.clone(),
        }),
        _ => None,
    };
    Ok(RestoreRequest {
        kind,
        new_id,
        from,
        point_in_time,
        restore_time,
        engine: engine.filter(|_| kind == DatabaseKind::Cluster && !point_in_time),
        instance_class: instance_class.filter(|_| kind == DatabaseKind::Instance),
        subnet_group: options.subnet_group.clone().or(original.subnet_group),
        security_group_ids,
        multi_az: original.multi_az.filter(|_| kind == DatabaseKind::Instance),
        port: original.port,
        tags,
        serverless_v2,
        writer,
    })
}

/// The original as this region knows it (`None`: not here, e.g. a restore in the copy region).
/// A cluster's instance class is its writer's, the class its restore's writer gets.
async fn describe_original(rds: &Rds, db: &str) -> Result<Option<(DatabaseKind, Original)>, RestoreError> {
    let Some(described) = rds.describe_raw(db, None).await? else {
        return Ok(None);
    };
    Ok(Some(match described {
        Described::Instance(instance) => (DatabaseKind::Instance, Original::from(instance.as_ref())),
        Described::Cluster(cluster) => {
            let mut original = Original::from(cluster.as_ref());
            original.instance_class = cluster_writer_class(rds, &cluster).await?;
            (DatabaseKind::Cluster, original)
        }
    }))
}

/// The instance class of the Aurora cluster `db`'s writer in this region (`None`: no such
/// cluster here, or it has no writer).
pub async fn writer_class(rds: &Rds, db: &str) -> Result<Option<String>, crate::Error> {
    match rds.describe_raw(db, Some(DatabaseKind::Cluster)).await? {
        Some(Described::Cluster(cluster)) => cluster_writer_class(rds, &cluster).await,
        _ => Ok(None),
    }
}

async fn cluster_writer_class(rds: &Rds, cluster: &DbCluster) -> Result<Option<String>, crate::Error> {
    let writer = cluster
        .db_cluster_members()
        .iter()
        .find(|member| member.is_cluster_writer() == Some(true))
        .and_then(|member| member.db_instance_identifier());
    let Some(writer) = writer else {
        return Ok(None);
    };
    Ok(match rds.describe_raw(writer, Some(DatabaseKind::Instance)).await? {
        Some(Described::Instance(instance)) => instance.db_instance_class().map(str::to_owned),
        _ => None,
    })
}

/// A DB instance's earliest restorable time: the `RestoreWindow` of its active automated
/// backups (DescribeDBInstanceAutomatedBackups). `None` when RDS does not say, or the caller
/// may not ask: the window is then its retention before the latest restorable time.
async fn earliest_restorable_time(rds: &Rds, db: &str) -> Option<DateTime<Utc>> {
    let described = rds
        .client
        .describe_db_instance_automated_backups()
        .db_instance_identifier(db)
        .send()
        .await;
    let out = match described {
        Ok(out) => out,
        Err(err) => {
            let failure = AwsFailure::from_sdk("DescribeDBInstanceAutomatedBackups", &err);
            tracing::debug!(error = %failure, "no restore window: the retention's is used");
            return None;
        }
    };
    out.db_instance_automated_backups()
        .iter()
        .filter(|backup| backup.status() == Some("active"))
        .find_map(|backup| backup.restore_window()?.earliest_time().and_then(to_chrono))
}

async fn database_exists(rds: &Rds, kind: DatabaseKind, identifier: &str) -> Result<bool, RestoreError> {
    Ok(rds.describe_database(identifier, Some(kind)).await?.is_some())
}

/// The newest available manual snapshot of `db` carrying the module's tags in this region (of
/// the module instance `managed_by`, required when several back `db` up).
pub async fn newest_backup(rds: &Rds, db: &str, managed_by: Option<&str>) -> Result<SnapshotInfo, RestoreError> {
    let region = &rds.region;
    let ours: Vec<SnapshotInfo> = rds
        .list_manual_snapshots(&[DatabaseKind::Instance, DatabaseKind::Cluster])
        .await?
        .into_iter()
        .filter(|s| tags::tag_value(&s.tags, tags::SOURCE_DB) == Some(db))
        .filter(|s| {
            tags::tag_value(&s.tags, tags::MANAGED_BY).is_some_and(|by| managed_by.is_none_or(|wanted| by == wanted))
        })
        .collect();
    let mut instances: Vec<&str> = ours
        .iter()
        .filter_map(|s| tags::tag_value(&s.tags, tags::MANAGED_BY))
        .collect();
    instances.sort_unstable();
    instances.dedup();
    if instances.len() > 1 {
        return Err(refused(
            "managed_by",
            format!(
                "is needed: {region} holds backups of {db} from several module instances ({})",
                instances.join(", ")
            ),
        ));
    }
    let found = ours
        .iter()
        .map(|s| format!("{} ({})", s.snapshot_id, s.status))
        .collect::<Vec<_>>();
    ours.into_iter()
        .filter(SnapshotInfo::is_available)
        .max_by_key(|s| s.created_at)
        .ok_or_else(|| {
            let found = if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            };
            refused(
                "db",
                format!("{db}: no available backup of it in {region} (its snapshots here: {found})"),
            )
        })
}

/// The manual snapshot named `snapshot_id` in this region, DB or DB cluster snapshot.
pub async fn named_snapshot(rds: &Rds, snapshot_id: &str) -> Result<SnapshotInfo, RestoreError> {
    for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
        if let Some(snapshot) = rds.describe_snapshot(kind, snapshot_id).await? {
            if !snapshot.is_available() {
                return Err(refused(
                    "snapshot_id",
                    format!("{snapshot_id} in {} is {}, not available", rds.region, snapshot.status),
                ));
            }
            return Ok(snapshot);
        }
    }
    Err(refused(
        "snapshot_id",
        format!("{snapshot_id}: no snapshot with this identifier in {}", rds.region),
    ))
}

impl RestoreRequest {
    /// The RDS action.
    pub fn operation(&self) -> &'static str {
        match (self.kind, self.point_in_time) {
            (DatabaseKind::Instance, false) => "RestoreDBInstanceFromDBSnapshot",
            (DatabaseKind::Cluster, false) => "RestoreDBClusterFromSnapshot",
            (DatabaseKind::Instance, true) => "RestoreDBInstanceToPointInTime",
            (DatabaseKind::Cluster, true) => "RestoreDBClusterToPointInTime",
        }
    }

    /// The request's parameters as the RDS API names them: exactly what [`Self::send`] sends.
    pub fn parameters(&self) -> Value {
        let mut parameters = Map::new();
        let mut put = |name: &str, value: Value| {
            if !value.is_null() && value != json!([]) {
                parameters.insert(name.to_owned(), value);
            }
        };
        match (self.kind, self.point_in_time) {
            (DatabaseKind::Instance, false) => {
                put("DBInstanceIdentifier", json!(self.new_id));
                put("DBSnapshotIdentifier", json!(self.from));
            }
            (DatabaseKind::Cluster, false) => {
                put("DBClusterIdentifier", json!(self.new_id));
                put("SnapshotIdentifier", json!(self.from));
                put("Engine", json!(self.engine));
            }
            (DatabaseKind::Instance, true) => {
                put("SourceDBInstanceIdentifier", json!(self.from));
                put("TargetDBInstanceIdentifier", json!(self.new_id));
                put("RestoreTime", json!(self.restore_time.map(rfc3339)));
                put(
                    "UseLatestRestorableTime",
                    json!(self.restore_time.is_none().then_some(true)),
                );
            }
            (DatabaseKind::Cluster, true) => {
                put("DBClusterIdentifier", json!(self.new_id));
                put("SourceDBClusterIdentifier", json!(self.from));
                put("RestoreToTime", json!(self.restore_time.map(rfc3339)));
                put(
                    "UseLatestRestorableTime",
                    json!(self.restore_time.is_none().then_some(true)),
                );
            }
        }
        put("DBInstanceClass", json!(self.instance_class));
        put("DBSubnetGroupName", json!(self.subnet_group));
        put("VpcSecurityGroupIds", json!(self.security_group_ids));
        put("MultiAZ", json!(self.multi_az));
        put("Port", json!(self.port));
        put(
            "ServerlessV2ScalingConfiguration",
            json!(
                self.serverless_v2
                    .map(|(min, max)| json!({"MinCapacity": min, "MaxCapacity": max}))
            ),
        );
        if self.kind == DatabaseKind::Instance {
            put("PubliclyAccessible", json!(false));
        }
        put("CopyTagsToSnapshot", json!(true));
        let tags: Vec<Value> = self
            .tags
            .iter()
            .map(|tag| json!({"Key": tag.key(), "Value": tag.value()}))
            .collect();
        put("Tags", json!(tags));
        Value::Object(parameters)
    }

    fn serverless_v2_scaling(&self) -> Option<aws_sdk_rds::types::ServerlessV2ScalingConfiguration> {
        self.serverless_v2.map(|(min, max)| {
            aws_sdk_rds::types::ServerlessV2ScalingConfiguration::builder()
                .min_capacity(min)
                .max_capacity(max)
                .build()
        })
    }

    /// Asks RDS for the restore.
    pub async fn send(&self, rds: &Rds) -> Result<(), AwsFailure> {
        let time = self
            .restore_time
            .map(|time| aws_smithy_types::DateTime::from_secs(time.timestamp()));
        let latest = self.restore_time.is_none().then_some(true);
        let client = &rds.client;
        // The settings every restore request takes, sent, and RDS's answer reduced to its outcome.
        macro_rules! sent {
            ($request:expr) => {
                $request
                    .set_db_subnet_group_name(self.subnet_group.clone())
                    .set_vpc_security_group_ids(
                        (!self.security_group_ids.is_empty()).then(|| self.security_group_ids.clone()),
                    )
                    .set_port(self.port)
                    .copy_tags_to_snapshot(true)
                    .set_tags(Some(self.tags.clone()))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|err| AwsFailure::from_sdk(self.operation(), &err))
            };
        }
        match (self.kind, self.point_in_time) {
            (DatabaseKind::Instance, false) => sent!(
                client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(&self.new_id)
                    .db_snapshot_identifier(&self.from)
                    .set_db_instance_class(self.instance_class.clone())
                    .set_multi_az(self.multi_az)
                    .publicly_accessible(false)
            ),
            (DatabaseKind::Cluster, false) => sent!(
                client
                    .restore_db_cluster_from_snapshot()
                    .db_cluster_identifier(&self.new_id)
                    .snapshot_identifier(&self.from)
                    .set_engine(self.engine.clone())
                    .set_serverless_v2_scaling_configuration(self.serverless_v2_scaling())
            ),
            (DatabaseKind::Instance, true) => sent!(
                client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(&self.from)
                    .target_db_instance_identifier(&self.new_id)
                    .set_restore_time(time)
                    .set_use_latest_restorable_time(latest)
                    .set_db_instance_class(self.instance_class.clone())
                    .set_multi_az(self.multi_az)
                    .publicly_accessible(false)
            ),
            (DatabaseKind::Cluster, true) => sent!(
                client
                    .restore_db_cluster_to_point_in_time()
                    .db_cluster_identifier(&self.new_id)
                    .source_db_cluster_identifier(&self.from)
                    .set_restore_to_time(time)
                    .set_use_latest_restorable_time(latest)
                    .set_serverless_v2_scaling_configuration(self.serverless_v2_scaling())
            ),
        }
    }
}

impl WriterRequest {
    /// The request's parameters as the RDS API names them: exactly what [`Self::send`] sends.
    pub fn parameters(&self) -> Value {
        let tags: Vec<Value> = self
            .tags
            .iter()
            .map(|tag| json!({"Key": tag.key(), "Value": tag.value()}))
            .collect();
        json!({
            "DBInstanceIdentifier": self.instance_id,
            "DBClusterIdentifier": self.cluster_id,
            "Engine": self.engine,
            "DBInstanceClass": self.instance_class,
            "PubliclyAccessible": false,
            "Tags": tags,
        })
    }

    /// Asks RDS for the writer (the cluster's subnet group, security groups and storage are its).
    pub async fn send(&self, rds: &Rds) -> Result<(), AwsFailure> {
        rds.client
            .create_db_instance()
            .db_instance_identifier(&self.instance_id)
            .db_cluster_identifier(&self.cluster_id)
            .engine(&self.engine)
            .db_instance_class(&self.instance_class)
            .publicly_accessible(false)
            .set_tags(Some(self.tags.clone()))
            .send()
            .await
            .map(drop)
            .map_err(|err| AwsFailure::from_sdk("CreateDBInstance", &err))
    }
}

/// The restored database's status (`None`: RDS does not list it).
pub async fn status(rds: &Rds, kind: DatabaseKind, identifier: &str) -> Result<Option<String>, RestoreError> {
    Ok(rds
        .describe_database(identifier, Some(kind))
        .await?
        .map(|database| database.status))
}
