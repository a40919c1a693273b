//! `copy`: copies a snapshot to the destination region with the module's tags
//! plus the source snapshot's ARN. An encrypted snapshot is copied with a key
//! of that region (KMS keys are regional); an unencrypted one is copied as it
//! is, without a key, DB instance and cluster snapshots alike: RDS refuses a
//! key for an unencrypted cluster snapshot ("If you copy an unencrypted DB
//! cluster snapshot and specify a value for the KmsKeyId parameter, an error is
//! returned", CopyDBClusterSnapshot API reference), and a copy restores as its
//! source does. The record reports the encryption RDS gives the copy.
//!
//! Oracle and SQL Server snapshots taken with persistent or permanent options
//! (Transparent Data Encryption: `TDE`; Oracle's `Timezone`, `OLS`) copy to
//! another region only with an option group there that has the same options
//! (`OptionGroupName`: "If your source DB instance uses Transparent Data
//! Encryption for Oracle or Microsoft SQL Server, you must specify this option
//! when copying across Amazon Web Services Regions", CopyDBSnapshot API
//! reference). Copy reads the snapshot's option group in the source region;
//! with such options it copies with the destination group configured for it
//! (`COPY_OPTION_GROUPS`, the module's `cross_region_option_groups`), or, with
//! none configured, makes no copy and says why: `skipped`, with a warning the
//! run's summary shows. It never fails the database for it.
//!
//! RDS answers `SnapshotQuotaExceeded` both when the destination's manual
//! snapshot quota is used up (permanent: fail and tell someone) and when its
//! cross-region copy slots are all busy (transient). The quota is read first to
//! tell the two apart. With the slots busy, copy starts nothing and says when
//! to try again (`slot_full`, `next_try_seconds`); the state machine waits and
//! tries again for as long as the copy's wait bound, and only then is the
//! database failed (`CopySlotsFull`, naming the wait).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::naming;
use backup_core::quota::{self, QuotaUsage};
use backup_core::rds::{self, Rds, Refusal};
use backup_core::types::{DatabaseKind, SlotWait, SnapshotRecord, SnapshotTaskRequest};
use backup_core::{Error, input, tags};
use serde::Serialize;
use serde_json::Value;

/// The RDS clients of the source region (the function's: the snapshot's
/// option group is read there) and of the destination region
/// (`CopyDBSnapshot` is called there).
pub struct Clients {
    pub source: Rds,
    pub destination: Rds,
}

impl Clients {
    pub fn new(sdk_config: &SdkConfig, destination_region: &str) -> Result<Self, Error> {
        Ok(Clients {
            source: Rds::new(sdk_config)?,
            destination: Rds::in_region(sdk_config, destination_region),
        })
    }
}

/// What `copy` returns: the copy, or why none was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CopyOutcome {
    Copied(SnapshotRecord),
    Skipped(CopySkipped),
    SlotFull(CopySlotFull),
}

/// Every copy slot of the destination region is taken: try again after `next_try_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopySlotFull {
    pub snapshot_id: String,
    /// Always true: the state machine's Choice tells the outcomes apart by it.
    pub slot_full: bool,
    pub next_try_seconds: u64,
}

/// No copy was made, for a reason the run's summary shows; the backup itself stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopySkipped {
    /// Always true: the state machine's Choice tells the two outcomes apart by it.
    pub skipped: bool,
    pub warning: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub destination_region: String,
    /// A key in the destination region; required for encrypted snapshots, never sent for others.
    pub kms_key_arn: Option<String>,
    /// Source option group -> the destination region's option group with the same
    /// persistent and permanent options (names as RDS keeps them: lower case).
    pub option_groups: BTreeMap<String, String>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let destination_region = config::optional_region(env, env::COPY_DESTINATION_REGION)?
            .ok_or_else(|| Error::config(env::COPY_DESTINATION_REGION, "is not set"))?;
        let kms_key_arn = config::optional_arn(env, env::COPY_KMS_KEY_ARN, "kms")?;
        if let Some(key) = &kms_key_arn {
            let key_region = key.split(':').nth(3).unwrap_or_default();
            if key_region != destination_region {
                return Err(Error::config(
                    env::COPY_KMS_KEY_ARN,
                    format!(
                        "{key} is in {key_region:?}, not in the destination region {destination_region}; KMS keys are regional"
                    ),
                ));
            }
        }
        let option_groups: BTreeMap<String, String> =
            config::optional_json(env, env::COPY_OPTION_GROUPS, "a JSON object of option group names")?;
        let option_groups = option_groups
            .into_iter()
            .map(|(source, destination)| (source.to_ascii_lowercase(), destination))
            .collect();
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            destination_region,
            kms_key_arn,
            option_groups,
        })
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<CopyOutcome, Error> {
    let request: SnapshotTaskRequest = input::parse(event)?;
    let source = request.snapshot;
    let snapshot_id = naming::rds_identifier(
        "snapshot.snapshot_id",
        &source.snapshot_id,
        naming::max_snapshot_id_len(source.kind),
    )?;
    config::check_arn(&source.snapshot_arn, "rds")
        .map_err(|reason| Error::invalid_input("snapshot.snapshot_arn", reason))?;
    let region = config.destination_region.as_str();
    if source.region == region {
        return Err(Error::config(
            env::COPY_DESTINATION_REGION,
            format!("{region} is the source region of {snapshot_id}; copies must go to another region"),
        ));
    }
    if source.encrypted && config.kms_key_arn.is_none() {
        return Err(Error::config(
            env::COPY_KMS_KEY_ARN,
            format!("is not set, but {snapshot_id} is encrypted and needs a KMS key in {region}"),
        ));
    }
    let option_group = match destination_option_group(clients, config, &source).await? {
        DestinationOptionGroup::NotNeeded => None,
        DestinationOptionGroup::Configured(option_group) => Some(option_group),
        DestinationOptionGroup::Missing { warning } => {
            tracing::warn!(%snapshot_id, destination_region = region, %warning, "copy skipped");
            return Ok(CopyOutcome::Skipped(CopySkipped { skipped: true, warning }));
        }
    };
    let rds = &clients.destination;
    let usage = quota::ensure_room(rds, source.kind).await?;

    let mut copy_tags = tags::snapshot_tags(&config.settings, &source.db_identifier, &request.execution.execution_id);
    copy_tags.push(
        aws_sdk_rds::types::Tag::builder()
            .key(tags::COPIED_FROM)
            .value(&source.snapshot_arn)
            .build(),
    );
    let copy_key = if source.encrypted {
        config.kms_key_arn.clone()
    } else {
        None
    };
    let copied = rds
        .copy_snapshot(
            source.kind,
            &source.snapshot_arn,
            &snapshot_id,
            copy_key,
            copy_tags,
            option_group,
        )
        .await;
    let record = match copied {
        Ok(copy) => SnapshotRecord {
            db_identifier: source.db_identifier.clone(),
            kind: source.kind,
            snapshot_arn: copy.as_ref().map(|c| c.arn.clone()).unwrap_or_default(),
            // As RDS describes the copy; a copy it did not describe is as its source.
            encrypted: copy.as_ref().and_then(|c| c.encrypted).unwrap_or(source.encrypted),
            status: copy.map_or_else(|| "copying".to_owned(), |c| c.status),
            snapshot_id: snapshot_id.clone(),
            region: region.to_owned(),
            engine: source.engine.clone(),
            created: true,
        },
        Err(Refusal::AlreadyExists) => {
            tracing::info!(%snapshot_id, region, "copy already exists; checking it is ours");
            rds.require_snapshot(source.kind, &snapshot_id).await?.adopt(
                &config.settings,
                &source.db_identifier,
                region,
            )?
        }
        Err(Refusal::QuotaExceeded(refusal)) => {
            return wait_for_slot(snapshot_id, region, &request.slot, usage, &refusal.message);
        }
        Err(Refusal::InvalidState(refusal)) => {
            return Err(Error::SnapshotBusy {
                snapshot_id,
                region: source.region.clone(),
                status: "not ready to copy".into(),
                reason: format!("{}: {}", refusal.action, refusal.message),
            });
        }
        Err(Refusal::NotFound) => {
            return Err(Error::SnapshotNotFound {
                snapshot_id,
                region: source.region.clone(),
            });
        }
        Err(Refusal::Failed(failure)) => return Err(failure.into()),
    };
    tracing::info!(
        %snapshot_id,
        source_region = %source.region,
        destination_region = region,
        status = %record.status,
        created = record.created,
        "cross-region copy requested"
    );
    Ok(CopyOutcome::Copied(record))
}

/// What the snapshot's options ask of the copy's destination.
enum DestinationOptionGroup {
    NotNeeded,
    /// The destination option group configured for the snapshot's.
    Configured(String),
    /// One is needed and none is configured: no copy, and this says why.
    Missing {
        warning: String,
    },
}

async fn destination_option_group(
    clients: &Clients,
    config: &Config,
    source: &SnapshotRecord,
) -> Result<DestinationOptionGroup, Error> {
    if !rds::may_keep_options(source.kind, &source.engine) {
        return Ok(DestinationOptionGroup::NotNeeded);
    }
    let taken_with = clients
        .source
        .require_snapshot(DatabaseKind::Instance, &source.snapshot_id)
        .await?
        .option_group;
    let Some((option_group, kept)) = clients.source.kept_options(taken_with.as_deref()).await? else {
        return Ok(DestinationOptionGroup::NotNeeded);
    };
    if let Some(destination) = config.option_groups.get(&option_group.to_ascii_lowercase()) {
        return Ok(DestinationOptionGroup::Configured(destination.clone()));
    }
    let warning = format!(
        "no copy to {region}: {snapshot} was taken with option group {option_group}, whose options {options} \
         (persistent or permanent) a copy must keep, and RDS copies it to another region only with an \
         option group there that has them; create one in {region} and name it in \
         cross_region_option_groups = {{ \"{option_group}\" = \"<its name>\" }}",
        region = config.destination_region,
        snapshot = source.snapshot_id,
        options = kept.join(", "),
    );
    Ok(DestinationOptionGroup::Missing { warning })
}

/// The quota pre-check passed (or could not be read), so `SnapshotQuotaExceeded`
/// from the copy means the copy slots are full: when to try again, or, once the
/// wait has lasted its bound, `CopySlotsFull`. RDS tells nothing of when the
/// running copies end, so the tries thin out as the wait goes on (each waits as
/// long as the wait so far), to one every 15 minutes.
fn wait_for_slot(
    snapshot_id: String,
    region: &str,
    slot: &SlotWait,
    usage: Option<QuotaUsage>,
    message: &str,
) -> Result<CopyOutcome, Error> {
    let waited_seconds = slot.elapsed_seconds();
    if slot.is_over() {
        let detail = match usage {
            Some(u) => format!(
                "RDS answered SnapshotQuotaExceeded while the snapshot quota has room, {} of {} used: {message}",
                u.used, u.max
            ),
            None => format!("RDS answered SnapshotQuotaExceeded and the snapshot quota could not be read: {message}"),
        };
        return Err(Error::CopySlotsFull {
            snapshot_id,
            region: region.to_owned(),
            detail,
            waited_seconds,
        });
    }
    let next_try_seconds = slot.next_try_seconds(None);
    tracing::info!(%snapshot_id, region, waited_seconds, next_try_seconds, "every copy slot is taken; waiting for one");
    Ok(CopyOutcome::SlotFull(CopySlotFull {
        snapshot_id,
        slot_full: true,
        next_try_seconds,
    }))
}
