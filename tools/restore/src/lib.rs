//! `scripts/restore`: restores a database to a NEW database beside the original, from the
//! newest good backup the module made (a manual snapshot carrying its tags, `available`), a
//! named snapshot, or a point in time. What to restore and the request are
//! `backup_core::restore`'s (for the restore drills to share); this adds the arguments, the output and
//! the wait. With `--dry-run` it prints the exact request and changes nothing.

use std::io::Write;
use std::time::Duration;

use backup_core::rds::Rds;
use backup_core::restore::{FAILED_STATUSES, Origin, RestoreError, RestoreOptions, Source, plan, status};
use backup_core::tags;
use backup_core::types::DatabaseKind;
use chrono::{DateTime, SecondsFormat, Utc};

pub const USAGE: &str = "usage: scripts/restore --db ID --new-id ID [options]
  --db ID                    the database the backups are of (instance or cluster identifier)
  --new-id ID                identifier of the new instance (or cluster)
  --region REGION            where to look for the backup and restore: the source region (default:
                             AWS_REGION) or the copy region
  --managed-by NAME          the module instance (<project>-<environment>) whose backups to use
  --snapshot-id ID           restore from this snapshot instead of the newest backup
  --point-in-time TIME       restore the database's automated backups to TIME (RFC 3339, e.g.
                             2026-12-06T10:30:00Z) or `latest`: within its restorable window
  --instance-class CLASS     DB instance class (default: the original's, when in this region)
  --subnet-group NAME        DB subnet group (default: the original's, when in this region)
  --security-group-ids ID... VPC security groups (default: the original's)
  --dry-run                  print what would be done; change nothing
  --wait SECONDS             wait up to this long for the new database to be available
Credentials, region and endpoint come from the usual AWS settings (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL...).";

/// The longest `--wait`: a week (a restore of many TB takes hours, not weeks).
const MAX_WAIT_SECONDS: f64 = 604_800.0;

/// The command line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Arguments {
    pub options: RestoreOptions,
    pub region: Option<String>,
    pub dry_run: bool,
    pub wait: Duration,
}

/// Reads the arguments (without the program's name). `Err("")`: help was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Arguments, String> {
    let mut args = args.into_iter().peekable();
    let mut options = RestoreOptions {
        db: String::new(),
        new_id: String::new(),
        origin: Origin::NewestBackup,
        managed_by: None,
        instance_class: None,
        subnet_group: None,
        security_group_ids: Vec::new(),
        tags: Vec::new(),
    };
    let (mut region, mut dry_run, mut wait) = (None, false, Duration::ZERO);
    let (mut snapshot_id, mut point_in_time) = (None, None);
    while let Some(given) = args.next() {
        // `--db=x` as well as `--db x`.
        let (arg, mut inline) = match given.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (given, None),
        };
        let mut value = || {
            inline
                .take()
                .or_else(|| args.next_if(|next| !next.starts_with("--")))
                .filter(|v| !v.is_empty())
                .ok_or(format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--db" => options.db = value()?,
            "--new-id" => options.new_id = value()?,
            "--region" => region = Some(value()?),
            "--managed-by" => options.managed_by = Some(value()?),
            "--snapshot-id" => snapshot_id = Some(value()?),
            "--point-in-time" => point_in_time = Some(value()?),
            "--instance-class" => options.instance_class = Some(value()?),
            "--subnet-group" => options.subnet_group = Some(value()?),
            "--security-group-ids" => {
                options.security_group_ids.push(value()?);
                while let Some(id) = args.next_if(|next| !next.starts_with("--")) {
                    options.security_group_ids.push(id);
                }
            }
            "--dry-run" => dry_run = true,
            "--wait" => {
                let raw = value()?;
                let seconds: f64 = raw
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.0..=MAX_WAIT_SECONDS).contains(s))
                    .ok_or(format!(
                        "--wait {raw}: not a number of seconds from 0 to {MAX_WAIT_SECONDS}"
                    ))?;
                wait = Duration::from_secs_f64(seconds);
            }
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    for (name, given) in [("--db", &options.db), ("--new-id", &options.new_id)] {
        if given.is_empty() {
            return Err(format!("{name} is required"));
        }
    }
    options.origin = match (snapshot_id, point_in_time) {
        (Some(_), Some(_)) => return Err("--snapshot-id and --point-in-time: give one or neither".into()),
        (Some(id), None) => Origin::Snapshot(id),
        (None, Some(time)) if time == "latest" => Origin::PointInTime(None),
        (None, Some(time)) => Origin::PointInTime(Some(
            DateTime::parse_from_rfc3339(&time)
                .map_err(|err| {
                    format!("--point-in-time {time}: {err} (RFC 3339, e.g. 2026-12-06T10:30:00Z, or latest)")
                })?
                .with_timezone(&Utc),
        )),
        (None, None) => Origin::NewestBackup,
    };
    Ok(Arguments {
        options,
        region,
        dry_run,
        wait,
    })
}

/// The option a refusal's field stands for: `new_id` is `--new-id`.
fn option(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

fn minutes(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Plans the restore, prints it and, unless a dry run, asks for it and waits as told. `Err`:
/// the message for standard error (the exit status is then 1). `poll`: the wait's interval.
pub async fn run(
    rds: &Rds,
    arguments: &Arguments,
    now: DateTime<Utc>,
    poll: Duration,
    out: &mut impl Write,
) -> Result<(), String> {
    let planned = plan(rds, &arguments.options, now).await.map_err(|err| match err {
        RestoreError::Refused { field, reason } => format!("{} {reason}", option(field)),
        RestoreError::Aws(err) => format!("AWS refused a lookup: {err}"),
    })?;
    let request = &planned.request;
    let (db, region) = (&planned.db, &planned.region);
    let mut print = |line: String| writeln!(out, "{line}").map_err(|err| format!("writing the output: {err}"));
    match &planned.source {
        Source::Backup(snapshot) => {
            let created = snapshot.created_at.map_or_else(
                || "created at an unknown time".to_owned(),
                |created| {
                    let days = (now - created).num_minutes() as f64 / 1440.0;
                    format!("created {} ({days:.1} days ago)", minutes(created))
                },
            );
            let managed_by = tags::tag_value(&snapshot.tags, tags::MANAGED_BY).unwrap_or("-");
            print(format!(
                "backup:  {} ({} snapshot of {db}) in {region}, {created}, managed by {managed_by}",
                snapshot.snapshot_id,
                snapshot.kind.label()
            ))?;
        }
        Source::PointInTime { window, time } => {
            let to = time.map_or_else(
                || format!("its latest restorable time ({})", minutes(window.latest)),
                |time| time.to_rfc3339_opts(SecondsFormat::Secs, true),
            );
            print(format!(
                "point in time: {db} in {region} to {to}; its restorable window is {window}"
            ))?;
        }
    }
    print(format!("restore: {} {}", request.operation(), request.parameters()))?;
    match &request.writer {
        Some(writer) => print(format!(
            "then, once the cluster is available, its writer: CreateDBInstance {}",
            writer.parameters()
        ))?,
        None if request.kind == DatabaseKind::Cluster => print(format!(
            "a restored cluster has no DB instance, and {db} has no writer here to take its class from: give \
             --instance-class to have one added once the cluster is available"
        ))?,
        None => {}
    }
    if arguments.dry_run {
        return print("dry run: nothing was changed".into());
    }
    request
        .send(rds)
        .await
        .map_err(|err| format!("{} failed: {err}", request.operation()))?;
    print(format!("restoring {} in {region}", request.new_id))?;
    if arguments.wait.is_zero() {
        if let Some(writer) = &request.writer {
            print(format!(
                "not waiting: add its writer once {} is available with CreateDBInstance {}",
                request.new_id,
                writer.parameters()
            ))?;
        }
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + arguments.wait;
    let waited = wait_until_available(
        rds,
        arguments,
        request.kind,
        &request.new_id,
        deadline,
        poll,
        &mut print,
    )
    .await;
    let Some(writer) = &request.writer else {
        return waited;
    };
    let then_add = || {
        format!(
            "once {} is available, add its writer with CreateDBInstance {}",
            request.new_id,
            writer.parameters()
        )
    };
    waited.map_err(|err| format!("{err}; {}", then_add()))?;
    writer
        .send(rds)
        .await
        .map_err(|err| format!("adding the writer {} failed: {err}; {}", writer.instance_id, then_add()))?;
    print(format!(
        "adding its writer {} ({})",
        writer.instance_id, writer.instance_class
    ))?;
    wait_until_available(
        rds,
        arguments,
        DatabaseKind::Instance,
        &writer.instance_id,
        deadline,
        poll,
        &mut print,
    )
    .await
}

/// Reads `identifier` every `poll` until it is available, failed, or the deadline has passed.
async fn wait_until_available(
    rds: &Rds,
    arguments: &Arguments,
    kind: DatabaseKind,
    identifier: &str,
    deadline: tokio::time::Instant,
    poll: Duration,
    print: &mut impl FnMut(String) -> Result<(), String>,
) -> Result<(), String> {
    loop {
        let state = status(rds, kind, identifier)
            .await
            .map_err(|err| format!("reading {identifier}: {err}"))?
            .unwrap_or_else(|| "not listed".to_owned());
        if FAILED_STATUSES.contains(&state.as_str()) {
            print(format!("{identifier} is {state}"))?;
            return Err(format!("{identifier} failed: RDS reports it {state}"));
        }
        let now = tokio::time::Instant::now();
        if state == "available" || now >= deadline {
            print(format!("{identifier} is {state}"))?;
            return if state == "available" {
                Ok(())
            } else {
                Err(format!(
                    "{identifier} was not available within --wait {} s",
                    arguments.wait.as_secs()
                ))
            };
        }
        // The last read at the deadline itself.
        tokio::time::sleep(poll.min(deadline - now)).await;
    }
}
