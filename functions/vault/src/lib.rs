//! `vault`: copies each snapshot into the vault account, a separate AWS account
//! whose copies the source account cannot delete, and checks at the start of a
//! run that the vault can be used.
//!
//! A copy goes through the snapshot's sharing: the source account lets the
//! vault account copy the snapshot (`restore` attribute), and the vault account
//! copies it with its own key, in the vault's region, in one step ("You can
//! also specify an ARN of a snapshot that is in a different account and a
//! different AWS Region", CopyDBSnapshot and CopyDBClusterSnapshot API
//! references). A snapshot encrypted with the AWS managed key `aws/rds` cannot
//! be shared ("You can't share a snapshot that has been encrypted using the
//! default KMS key of the AWS account that shared the snapshot", RDS User Guide,
//! Sharing encrypted snapshots), so a snapshot under any key but the module's,
//! or under none, is first copied in the source account with the module's key
//! (`VAULT_SHARE_KMS_KEY_ARN`, whose policy lets the vault account use it), and
//! that copy is shared. Once the vault's copy is available (deleting the source
//! earlier may fail the copy, RDS User Guide, Copying a DB snapshot), the
//! sharing is taken back and that intermediate copy deleted.
//!
//! A DB cluster snapshot cannot cross regions and accounts in one copy ("You can't
//! copy a DB cluster snapshot across Regions and accounts in a single step. Perform one
//! step for each of these copy actions", Aurora User Guide, Copying a DB cluster
//! snapshot). For a vault in another region, the source account first copies it into the
//! vault's region with its own key there (`VAULT_CLUSTER_SHARE_KMS_KEY_ARN`, whose policy
//! lets the vault account use it), shares that copy, and the vault account copies it in
//! its region: RDS then records a snapshot of the source account as the vault copy's
//! source, which is what the vault's retention checks.
//!
//! Each invocation looks at where the copy stands and takes the next step, so
//! that a retry or a rerun repeats nothing: the state machine invokes it again
//! after `next_try_seconds` until it reports the vault's copy, within the copy's
//! wait bound (`copy_wait_timeout_seconds`). The vault is reached through a role
//! of the vault account (`VAULT_ROLE_ARN`) that may copy into it and tag, and
//! nothing else: the vault's copies are out of reach of the source account.

mod key_policy;

use aws_config::SdkConfig;
use aws_sdk_rds::types::Tag;
use backup_core::config::{self, Env, ModuleSettings};
use backup_core::contract::env;
use backup_core::rds::{self, Rds, Refusal, SnapshotInfo};
use backup_core::types::{DatabaseKind, Execution, SnapshotRecord, SnapshotTaskRequest, VaultCheck, VaultRecord};
use backup_core::{AwsFailure, Error, input, naming, quota, run, tags};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use key_policy::{SHARED_KEY_ACTIONS, missing_actions};

/// The session name of the vault role's sessions: CloudTrail in the vault account shows it.
const SESSION_NAME: &str = "database-backup-vault";

/// Oracle options that do not ("except for Oracle DB instances that have the Timezone or
/// OLS option (or both)", RDS User Guide, Sharing a DB snapshot).
const SHAREABLE_ORACLE_OPTIONS: [&str; 2] = ["TIMEZONE", "OLS"];

/// The clients of the source account (the function's own) and the vault's, before
/// the vault role's credentials are put in them.
pub struct Clients {
    /// RDS in the source region.
    pub source: Rds,
    /// KMS in the source region (the module's key).
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    /// RDS in the vault's region, signing as the function (the source account: its copies
    /// of cluster snapshots made to share there) until [`Clients::vault`] gives it the role.
    pub vault_rds: Rds,
    /// KMS in the vault's region, likewise (the source account's key there, checked).
    pub vault_kms: aws_sdk_kms::Client,
}

impl Clients {
    pub fn new(sdk_config: &SdkConfig, vault_region: &str) -> Result<Self, Error> {
        let vault_kms = aws_sdk_kms::config::Builder::from(sdk_config)
            .region(aws_config::Region::new(vault_region.to_owned()))
            .build();
        Ok(Clients {
            source: Rds::new(sdk_config)?,
            kms: aws_sdk_kms::Client::new(sdk_config),
            sts: aws_sdk_sts::Client::new(sdk_config),
            vault_rds: Rds::in_region(sdk_config, vault_region),
            vault_kms: aws_sdk_kms::Client::from_conf(vault_kms),
        })
    }

    /// The vault's clients, signing with a session of the vault role.
    async fn vault(&self, config: &Config) -> Result<Vault, Error> {
        let credentials =
            backup_core::aws::assume_role(&self.sts, &config.role_arn, SESSION_NAME, config.external_id.clone())
                .await?;
        let kms = self
            .vault_kms
            .config()
            .to_builder()
            .credentials_provider(credentials.clone())
            .build();
        Ok(Vault {
            rds: self.vault_rds.with_credentials(&config.region, credentials),
            kms: aws_sdk_kms::Client::from_conf(kms),
        })
    }
}

/// The vault account's clients, signing as the vault role.
struct Vault {
    rds: Rds,
    kms: aws_sdk_kms::Client,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: ModuleSettings,
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    /// The vault's key, in the vault's region and account.
    pub kms_key_arn: String,
    /// The module's key in the source region, which the vault account may use.
    pub share_kms_key_arn: String,
    /// For a vault in another region: the source account's key in the vault's region, which
    /// the vault account may use; cluster snapshots are copied there with it to be shared.
    pub cluster_share_kms_key_arn: Option<String>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let account_id = config::optional_account_id(env, env::VAULT_ACCOUNT_ID)?
            .ok_or_else(|| Error::config(env::VAULT_ACCOUNT_ID, "is not set"))?;
        let region = config::optional_region(env, env::VAULT_REGION)?
            .ok_or_else(|| Error::config(env::VAULT_REGION, "is not set"))?;
        let role_arn = config::required_arn(env, env::VAULT_ROLE_ARN, "iam")?;
        let kms_key_arn = config::required_arn(env, env::VAULT_KMS_KEY_ARN, "kms")?;
        let share_kms_key_arn = config::required_arn(env, env::VAULT_SHARE_KMS_KEY_ARN, "kms")?;
        let part = |arn: &str, index: usize| arn.split(':').nth(index).unwrap_or_default().to_owned();
        if part(&role_arn, 4) != account_id {
            return Err(Error::config(
                env::VAULT_ROLE_ARN,
                format!("{role_arn} is not a role of the vault account {account_id}"),
            ));
        }
        if part(&kms_key_arn, 4) != account_id || part(&kms_key_arn, 3) != region {
            return Err(Error::config(
                env::VAULT_KMS_KEY_ARN,
                format!(
                    "{kms_key_arn} is not a key of the vault account {account_id} in {region}; KMS keys are regional"
                ),
            ));
        }
        let cluster_share_kms_key_arn = config::optional_arn(env, env::VAULT_CLUSTER_SHARE_KMS_KEY_ARN, "kms")?;
        if let Some(key) = &cluster_share_kms_key_arn {
            let (source_account, source_region) = (part(&share_kms_key_arn, 4), part(&share_kms_key_arn, 3));
            if source_region == region {
                return Err(Error::config(
                    env::VAULT_CLUSTER_SHARE_KMS_KEY_ARN,
                    format!(
                        "is set, but the vault is in the source region {region}: cluster snapshots are shared with \
                         {} (VAULT_SHARE_KMS_KEY_ARN) there",
                        share_kms_key_arn
                    ),
                ));
            }
            if part(key, 4) != source_account || part(key, 3) != region {
                return Err(Error::config(
                    env::VAULT_CLUSTER_SHARE_KMS_KEY_ARN,
                    format!(
                        "{key} is not a key of the source account {source_account} in the vault's region {region}; \
                         KMS keys are regional"
                    ),
                ));
            }
        }
        Ok(Config {
            settings: ModuleSettings::from_env(env)?,
            account_id,
            region,
            role_arn,
            external_id: config::optional(env, env::VAULT_EXTERNAL_ID)?,
            kms_key_arn,
            share_kms_key_arn,
            cluster_share_kms_key_arn,
        })
    }

    /// Where the vault's copies are, for messages.
    fn vault_place(&self) -> String {
        format!("{} (vault account {})", self.region, self.account_id)
    }
}

/// Where the source account makes and shares the copy the vault account copies from: in the
/// source region with the module's key, or, for a cluster snapshot and a vault in another
/// region, in the vault's region with the module's key there.
struct ShareSite<'a> {
    /// The source account's RDS there.
    rds: &'a Rds,
    key: &'a str,
    /// The copy made to share comes from another region (named by its ARN).
    crosses_region: bool,
}

impl<'a> ShareSite<'a> {
    fn of(clients: &'a Clients, config: &'a Config, kind: DatabaseKind) -> Self {
        match (kind, config.cluster_share_kms_key_arn.as_deref()) {
            (DatabaseKind::Cluster, Some(key)) => ShareSite {
                rds: &clients.vault_rds,
                key,
                crosses_region: true,
            },
            _ => ShareSite {
                rds: &clients.source,
                key: &config.share_kms_key_arn,
                crosses_region: false,
            },
        }
    }

    /// The snapshot shared as it is, or the copy made to share.
    fn shares_as_is(&self, snapshot: &SnapshotInfo) -> bool {
        !self.crosses_region && snapshot.kms_key_id.as_deref() == Some(self.key)
    }
}

/// Input of `vault`: the check at a run's start, or one database's copy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultRequest {
    Check { execution: Execution },
    Copy(SnapshotTaskRequest),
}

/// What `vault` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum VaultOutcome {
    Checked(VaultCheck),
    Pending(VaultPending),
    Copied(VaultRecord),
}

/// Where a database's vault copy stands: try again after `next_try_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaultPending {
    /// Always true: the state machine's Choice tells the outcomes apart by it.
    pub pending: bool,
    pub step: VaultStep,
    /// The status of the snapshot the step waits for.
    pub status: String,
    pub next_try_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultStep {
    /// The copy with the module's key, in the source account, that is shared.
    CopyingWithModuleKey,
    /// The vault's copy.
    CopyingToVault,
}

impl VaultStep {
    fn what(self) -> &'static str {
        match self {
            VaultStep::CopyingWithModuleKey => "the copy with the module's key, to share,",
            VaultStep::CopyingToVault => "the vault's copy",
        }
    }
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<VaultOutcome, Error> {
    match input::parse(event)? {
        VaultRequest::Check { execution } => check(clients, config, &execution).await.map(VaultOutcome::Checked),
        VaultRequest::Copy(request) => copy(clients, config, &request).await,
    }
}

/// The run's check, before any database's copy: the module's key lets the vault
/// account use it, the vault role can be assumed and can use the vault's key. Every
/// problem is named in one `VaultUnusable`. Then the copies made to share that earlier
/// runs left behind are deleted.
async fn check(clients: &Clients, config: &Config, execution: &Execution) -> Result<VaultCheck, Error> {
    let mut problems = Vec::new();
    if let Err(problem) = check_share_key(&clients.kms, &config.share_kms_key_arn, config).await {
        problems.push(problem);
    }
    if let Some(key) = &config.cluster_share_kms_key_arn
        && let Err(problem) = check_share_key(&clients.vault_kms, key, config).await
    {
        problems.push(problem);
    }
    match clients.vault(config).await {
        Err(err) => problems.push(format!("the vault role cannot be assumed: {err}")),
        Ok(vault) => {
            if let Err(problem) = check_key(&vault.kms, &config.kms_key_arn, "the vault's key").await {
                problems.push(format!("{problem} (as the vault role {})", config.role_arn));
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::VaultUnusable {
            detail: problems.join("; "),
        });
    }
    let (abandoned_copies_deleted, abandoned_copies_kept) = delete_abandoned_copies(clients, config, execution).await?;
    tracing::info!(execution_id = %execution.execution_id, vault_account = %config.account_id, "vault checked");
    Ok(VaultCheck {
        account_id: config.account_id.clone(),
        region: config.region.clone(),
        role_arn: config.role_arn.clone(),
        kms_key_arn: config.kms_key_arn.clone(),
        share_kms_key_arn: config.share_kms_key_arn.clone(),
        cluster_share_kms_key_arn: config.cluster_share_kms_key_arn.clone(),
        abandoned_copies_deleted,
        abandoned_copies_kept,
    })
}

/// A vault step that failed for good (the vault out of reach past every retry, its wait
/// over) or whose execution was stopped leaves its copy made to share behind, shared with
/// the vault account. No step comes back to one older than the longest wait any run may
/// set (`run::MAX_WAIT_BOUND_SECONDS`, whatever a run's input said) and an hour for
/// retries, measured from this run's start on Step Functions' clock: each (available, or
/// failed) is unshared and deleted here (in the source region, and in the vault's where
/// cluster snapshots are copied to share), ours only (the vault-intermediate tag of this
/// instance). One that cannot be deleted is named with why, and the others go on: (deleted,
/// kept with the reason).
async fn delete_abandoned_copies(
    clients: &Clients,
    config: &Config,
    execution: &Execution,
) -> Result<(Vec<String>, Vec<String>), Error> {
    let bound = chrono::Duration::seconds(i64::from(run::MAX_WAIT_BOUND_SECONDS) + 3600);
    let abandoned_before = execution.execution_start_time - bound;
    let mut sites = vec![(
        &clients.source,
        [DatabaseKind::Instance, DatabaseKind::Cluster].as_slice(),
    )];
    if config.cluster_share_kms_key_arn.is_some() {
        sites.push((&clients.vault_rds, [DatabaseKind::Cluster].as_slice()));
    }
    let (mut deleted, mut kept) = (Vec::new(), Vec::new());
    for (rds, kinds) in sites {
        for copy in rds.list_manual_snapshots(kinds).await? {
            let ours = tags::is_our_vault_intermediate(&copy.tags, &config.settings, None);
            let settled = copy.is_available() || copy.has_failed();
            if !ours || copy.created_at.is_none_or(|created| created >= abandoned_before) || !settled {
                continue;
            }
            // A failed copy was never shared.
            let unshared = if copy.has_failed() {
                Ok(())
            } else {
                unshare(rds, copy.kind, &copy.snapshot_id, &config.account_id).await
            };
            let removed = match unshared {
                Ok(()) => rds.delete_snapshot(copy.kind, &copy.snapshot_id).await,
                Err(err) => Err(err),
            };
            match removed {
                Ok(()) => {
                    tracing::warn!(copy = %copy.snapshot_id, region = %rds.region, "deleted a copy made to share that an earlier vault step left behind");
                    deleted.push(copy.snapshot_id);
                }
                Err(err) => {
                    tracing::warn!(copy = %copy.snapshot_id, region = %rds.region, error = %err, "a copy made to share that an earlier vault step left behind could not be deleted");
                    kept.push(format!("{}: {err}", copy.snapshot_id));
                }
            }
        }
    }
    Ok((deleted, kept))
}

/// A key the vault account copies shared snapshots through: usable, and its policy lets the
/// vault account in.
async fn check_share_key(kms: &aws_sdk_kms::Client, key: &str, config: &Config) -> Result<(), String> {
    check_key(kms, key, "the module's key").await?;
    let policy = kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .map_err(|err| {
            format!(
                "the policy of the module's key {key} cannot be read: {}",
                AwsFailure::from_sdk("GetKeyPolicy", &err)
            )
        })?;
    let missing = missing_actions(policy.policy().unwrap_or("{}"), &config.account_id, &SHARED_KEY_ACTIONS)
        .map_err(|reason| format!("the module's key {key}: {reason}"))?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the policy of the module's key {key} does not allow the vault account {account} {actions}, \
         which RDS needs to copy a snapshot shared with it",
        account = config.account_id,
        actions = missing.join(", ")
    ))
}

/// The key exists, is enabled and customer managed (an AWS managed key's policy cannot
/// let another account in).
async fn check_key(kms: &aws_sdk_kms::Client, key: &str, name: &str) -> Result<(), String> {
    let described = kms.describe_key().key_id(key).send().await.map_err(|err| {
        format!(
            "{name} {key} cannot be used: {}",
            AwsFailure::from_sdk("DescribeKey", &err)
        )
    })?;
    let metadata = described.key_metadata();
    let state = metadata.and_then(|m| m.key_state()).map(|s| s.as_str().to_owned());
    if state.as_deref() != Some("Enabled") {
        return Err(format!(
            "{name} {key} is {}, not Enabled",
            state.unwrap_or_else(|| "of unknown state".into())
        ));
    }
    if metadata.and_then(|m| m.key_manager()).map(|m| m.as_str()) == Some("AWS") {
        return Err(format!(
            "{name} {key} is an AWS managed key: another account cannot be let use it"
        ));
    }
    Ok(())
}

/// One step of a database's copy to the vault.
async fn copy(clients: &Clients, config: &Config, request: &SnapshotTaskRequest) -> Result<VaultOutcome, Error> {
    let source = &request.snapshot;
    let kind = source.kind;
    let snapshot_id = naming::rds_identifier(
        "snapshot.snapshot_id",
        &source.snapshot_id,
        naming::max_snapshot_id_len(kind),
    )?;
    config::check_arn(&source.snapshot_arn, "rds")
        .map_err(|reason| Error::invalid_input("snapshot.snapshot_arn", reason))?;
    let source_account = source.snapshot_arn.split(':').nth(4).unwrap_or_default();
    if source_account == config.account_id {
        return Err(Error::config(
            env::VAULT_ACCOUNT_ID,
            format!("{source_account} is the account of {snapshot_id}: the vault must be another account"),
        ));
    }
    let vault = clients.vault(config).await?;

    if let Some(copy) = vault.rds.describe_snapshot(kind, &snapshot_id).await? {
        let copy = own_vault_copy(copy, config, source)?;
        if !copy.is_available() {
            return pending(config, request, VaultStep::CopyingToVault, &copy).map(VaultOutcome::Pending);
        }
        clean_up(config, source, &ShareSite::of(clients, config, kind)).await?;
        tracing::info!(%snapshot_id, vault_account = %config.account_id, vault_region = %config.region, "vault copy available");
        return Ok(VaultOutcome::Copied(VaultRecord {
            account_id: config.account_id.clone(),
            region: config.region.clone(),
            snapshot_arn: copy.arn,
            kms_key_arn: copy.kms_key_id.unwrap_or_else(|| config.kms_key_arn.clone()),
            status: copy.status,
            snapshot_id,
        }));
    }

    let current = clients.source.require_snapshot(kind, &snapshot_id).await?;
    refuse_what_cannot_be_shared(clients, config, &current, source).await?;
    // The vault keeps its copies by its own retention (modules/vault): a full manual snapshot
    // quota there is named as such, before anything is copied or shared, not waited out as
    // busy copy slots.
    quota::ensure_room(&vault.rds, kind).await.map_err(|err| match err {
        Error::SnapshotQuotaExceeded { kind, detail, .. } => Error::SnapshotQuotaExceeded {
            kind,
            region: config.vault_place(),
            detail,
        },
        other => other,
    })?;
    let site = ShareSite::of(clients, config, kind);
    let shared = if site.shares_as_is(&current) {
        current
    } else {
        match module_key_copy(config, request, &current, &site).await? {
            Ok(copy) => copy,
            Err(waiting) => return Ok(VaultOutcome::Pending(waiting)),
        }
    };

    match site
        .rds
        .share_snapshot(kind, &shared.snapshot_id, &config.account_id, true)
        .await
    {
        // Not an answer this call gives; were it one, the snapshot would be shared.
        Ok(()) | Err(Refusal::AlreadyExists) => {}
        Err(Refusal::NotFound) => {
            return Err(Error::SnapshotNotFound {
                snapshot_id: shared.snapshot_id,
                region: site.rds.region.clone(),
            });
        }
        Err(Refusal::InvalidState(refusal)) => return Err(busy(&shared, &site.rds.region, &refusal)),
        Err(Refusal::QuotaExceeded(failure) | Refusal::Failed(failure)) => return Err(failure.into()),
    }

    let mut copy_tags = tags::snapshot_tags(&config.settings, &source.db_identifier, &request.execution.execution_id);
    copy_tags.push(tag(tags::COPIED_FROM, &source.snapshot_arn));
    copy_tags.push(tag(tags::SOURCE_ACCOUNT, source_account));
    let requested = vault
        .rds
        .copy_snapshot(
            kind,
            &shared.arn,
            &snapshot_id,
            Some(config.kms_key_arn.clone()),
            copy_tags,
            None,
        )
        .await;
    let status = match requested {
        Ok(copy) => copy.map_or_else(|| "copying".to_owned(), |c| c.status),
        // An earlier try's copy, which the next try describes.
        Err(Refusal::AlreadyExists) => "copying".to_owned(),
        // The quota had room: the vault's copy slots are all taken.
        Err(Refusal::QuotaExceeded(refusal)) if !request.slot.is_over() => {
            tracing::info!(%snapshot_id, vault = %config.vault_place(), message = %refusal.message, "every copy slot of the vault is taken; trying again later");
            "waiting for a copy slot".to_owned()
        }
        Err(Refusal::QuotaExceeded(refusal)) => {
            return Err(Error::SnapshotQuotaExceeded {
                kind: kind.label(),
                region: config.vault_place(),
                detail: format!(
                    "RDS answered SnapshotQuotaExceeded for as long as the copy could wait: {}",
                    refusal.message
                ),
            });
        }
        Err(Refusal::InvalidState(refusal)) => return Err(busy(&shared, &site.rds.region, &refusal)),
        Err(Refusal::NotFound) => {
            return Err(Error::SnapshotNotFound {
                snapshot_id: shared.arn,
                region: config.vault_place(),
            });
        }
        Err(Refusal::Failed(mut failure)) => {
            failure.message = format!(
                "copy of {} into {}: {}",
                shared.arn,
                config.vault_place(),
                failure.message
            );
            return Err(failure.into());
        }
    };
    tracing::info!(%snapshot_id, shared = %shared.arn, vault = %config.vault_place(), %status, "vault copy requested");
    waiting(config, request, VaultStep::CopyingToVault, status).map(VaultOutcome::Pending)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The vault's copy with our identifier, checked to be ours and not failed.
fn own_vault_copy(copy: SnapshotInfo, config: &Config, source: &SnapshotRecord) -> Result<SnapshotInfo, Error> {
    if !tags::is_ours(&copy.tags, &config.settings, Some(&source.db_identifier)) {
        return Err(Error::IdentifierConflict {
            resource: "vault snapshot",
            id: copy.snapshot_id,
            region: config.vault_place(),
            reason: format!(
                "its {} tag is not {} for {}",
                tags::MANAGED_BY,
                config.settings.instance,
                source.db_identifier
            ),
        });
    }
    if copy.has_failed() {
        return Err(Error::SnapshotFailed {
            snapshot_id: copy.snapshot_id,
            region: config.vault_place(),
            status: copy.status,
        });
    }
    Ok(copy)
}

/// The copy of `current` with the module's key where it is shared (`site`), made now or by
/// an earlier try: `Ok(copy)` once available, `Err(pending)` while RDS makes it.
async fn module_key_copy(
    config: &Config,
    request: &SnapshotTaskRequest,
    current: &SnapshotInfo,
    site: &ShareSite<'_>,
) -> Result<Result<SnapshotInfo, VaultPending>, Error> {
    let source = &request.snapshot;
    let kind = source.kind;
    let rds = site.rds;
    let id = naming::vault_intermediate_id(&current.snapshot_id, kind);
    if let Some(copy) = rds.describe_snapshot(kind, &id).await? {
        if !tags::is_our_vault_intermediate(&copy.tags, &config.settings, Some(&source.db_identifier)) {
            return Err(Error::IdentifierConflict {
                resource: "snapshot",
                id,
                region: rds.region.clone(),
                reason: format!(
                    "its {} tag is not {}",
                    tags::VAULT_INTERMEDIATE,
                    config.settings.instance
                ),
            });
        }
        if copy.has_failed() {
            // Ours and of no use: deleted, so that the next run copies afresh (a failed copy
            // would keep its identifier taken, and a manual snapshot of the quota).
            rds.delete_snapshot(kind, &id).await?;
            return Err(Error::SnapshotFailed {
                snapshot_id: id,
                region: rds.region.clone(),
                status: copy.status,
            });
        }
        if copy.is_available() {
            return Ok(Ok(copy));
        }
        return pending(config, request, VaultStep::CopyingWithModuleKey, &copy).map(Err);
    }
    if !current.is_available() {
        return Err(Error::SnapshotBusy {
            snapshot_id: current.snapshot_id.clone(),
            region: source.region.clone(),
            status: current.status.clone(),
            reason: "a snapshot is copied once available".into(),
        });
    }
    if site.crosses_region {
        // The copy made to share is a manual snapshot of the source account in the vault's
        // region: a full quota there is named, not waited out as busy copy slots.
        quota::ensure_room(rds, kind).await?;
    }
    let intermediate_tags =
        tags::vault_intermediate_tags(&config.settings, &source.db_identifier, &request.execution.execution_id);
    // A copy from another region names its source by ARN (CopyDBClusterSnapshot,
    // SourceDBClusterSnapshotIdentifier).
    let from = if site.crosses_region {
        &current.arn
    } else {
        &current.snapshot_id
    };
    let requested = rds
        .copy_snapshot(kind, from, &id, Some(site.key.to_owned()), intermediate_tags, None)
        .await;
    let status = match requested {
        Ok(copy) => copy.map_or_else(|| "creating".to_owned(), |c| c.status),
        Err(Refusal::AlreadyExists) => "creating".to_owned(),
        // Across regions, with room in the quota (checked above), the region's copy slots are
        // all taken: RDS answers the same code for both.
        Err(Refusal::QuotaExceeded(refusal)) if site.crosses_region && !request.slot.is_over() => {
            tracing::info!(copy = %id, region = %rds.region, message = %refusal.message, "every copy slot of the region is taken, or its quota is full; trying again later");
            "waiting for a copy slot".to_owned()
        }
        Err(Refusal::QuotaExceeded(refusal)) => {
            return Err(Error::SnapshotQuotaExceeded {
                kind: kind.label(),
                region: rds.region.clone(),
                detail: format!(
                    "the copy to share with the vault needs one more manual snapshot: {}",
                    refusal.message
                ),
            });
        }
        Err(Refusal::InvalidState(refusal)) => return Err(busy(current, &source.region, &refusal)),
        Err(Refusal::NotFound) => {
            return Err(Error::SnapshotNotFound {
                snapshot_id: current.snapshot_id.clone(),
                region: source.region.clone(),
            });
        }
        Err(Refusal::Failed(failure)) => return Err(failure.into()),
    };
    tracing::info!(snapshot_id = %current.snapshot_id, copy = %id, region = %rds.region, "copying with the module's key to share with the vault");
    waiting(config, request, VaultStep::CopyingWithModuleKey, status).map(Err)
}

/// What AWS will not share or encrypt, named before anything is copied.
async fn refuse_what_cannot_be_shared(
    clients: &Clients,
    config: &Config,
    current: &SnapshotInfo,
    source: &SnapshotRecord,
) -> Result<(), Error> {
    let refused = |reason: String| Error::VaultCopyRefused {
        snapshot_id: current.snapshot_id.clone(),
        region: clients.source.region.clone(),
        reason,
    };
    if current.kind == DatabaseKind::Cluster && current.encrypted == Some(false) {
        return Err(refused(
            "it is not encrypted, and an Aurora cluster snapshot cannot be encrypted by a copy (\"If you copy an \
             unencrypted DB cluster snapshot and specify a value for the KmsKeyId parameter, an error is returned\", \
             CopyDBClusterSnapshot); encrypt the cluster (restore it from the snapshot with a key) to have it vaulted"
                .into(),
        ));
    }
    if current.kind == DatabaseKind::Cluster
        && config.region != clients.source.region
        && config.cluster_share_kms_key_arn.is_none()
    {
        return Err(refused(format!(
            "the vault is in {}, and a DB cluster snapshot cannot be copied to another region and account in one \
             step (\"You can't copy a DB cluster snapshot across Regions and accounts in a single step\", Aurora \
             User Guide, Copying a DB cluster snapshot): it is copied into {} first with a key of this account \
             there, which {} does not name (vault.cluster_share_kms_key_arn: the key_arn output of \
             modules/share-key applied in {}); or a vault in {} takes it",
            config.region,
            config.region,
            env::VAULT_CLUSTER_SHARE_KMS_KEY_ARN,
            config.region,
            clients.source.region
        )));
    }
    if !rds::may_keep_options(current.kind, &source.engine) {
        return Ok(());
    }
    let Some((option_group, options)) = clients.source.kept_options(current.option_group.as_deref()).await? else {
        return Ok(());
    };
    let engine = source.engine.to_ascii_lowercase();
    let kept: Vec<&String> = options
        .iter()
        .filter(|option| {
            !(engine.starts_with("oracle") && SHAREABLE_ORACLE_OPTIONS.contains(&option.to_ascii_uppercase().as_str()))
        })
        .collect();
    if !kept.is_empty() {
        return Err(refused(format!(
            "it was taken with option group {option_group}, whose options {} (persistent or permanent) keep a \
             snapshot from being shared with another account (RDS User Guide, Sharing a DB snapshot)",
            kept.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    if !options.is_empty() && config.region != clients.source.region {
        return Err(refused(format!(
            "it was taken with option group {option_group}, whose options {} (persistent or permanent) a copy \
             to another region keeps only with an option group there that has them (CopyDBSnapshot, \
             OptionGroupName), and the vault's region is {}: a vault in {} takes it",
            options.join(", "),
            config.region,
            clients.source.region
        )));
    }
    Ok(())
}

/// Once the vault holds its copy: the sharing is taken back, and the copy made to share deleted.
async fn clean_up(config: &Config, source: &SnapshotRecord, site: &ShareSite<'_>) -> Result<(), Error> {
    let kind = source.kind;
    let rds = site.rds;
    if !site.crosses_region
        && let Some(current) = rds.describe_snapshot(kind, &source.snapshot_id).await?
        && site.shares_as_is(&current)
    {
        unshare(rds, kind, &current.snapshot_id, &config.account_id).await?;
    }
    let id = naming::vault_intermediate_id(&source.snapshot_id, kind);
    if let Some(copy) = rds.describe_snapshot(kind, &id).await?
        && tags::is_our_vault_intermediate(&copy.tags, &config.settings, None)
    {
        unshare(rds, kind, &id, &config.account_id).await?;
        rds.delete_snapshot(kind, &id).await?;
        tracing::info!(copy = %id, region = %rds.region, "the copy made to share with the vault is deleted");
    }
    Ok(())
}

async fn unshare(rds: &Rds, kind: DatabaseKind, snapshot_id: &str, account: &str) -> Result<(), Error> {
    match rds.share_snapshot(kind, snapshot_id, account, false).await {
        Ok(()) | Err(Refusal::NotFound | Refusal::AlreadyExists) => Ok(()),
        Err(Refusal::InvalidState(refusal) | Refusal::QuotaExceeded(refusal) | Refusal::Failed(refusal)) => {
            Err(refusal.into())
        }
    }
}

fn busy(snapshot: &SnapshotInfo, region: &str, refusal: &AwsFailure) -> Error {
    Error::SnapshotBusy {
        snapshot_id: snapshot.snapshot_id.clone(),
        region: region.to_owned(),
        status: snapshot.status.clone(),
        reason: format!("{}: {}", refusal.action, refusal.message),
    }
}

fn pending(
    config: &Config,
    request: &SnapshotTaskRequest,
    step: VaultStep,
    snapshot: &SnapshotInfo,
) -> Result<VaultPending, Error> {
    let status = match snapshot.percent_progress {
        Some(done) => format!("{} ({done}% done)", snapshot.status),
        None => snapshot.status.clone(),
    };
    waiting(config, request, step, status)
}

/// Try again later, or, once the wait has lasted its bound, `WaitTimedOut`.
fn waiting(
    config: &Config,
    request: &SnapshotTaskRequest,
    step: VaultStep,
    status: String,
) -> Result<VaultPending, Error> {
    let slot = &request.slot;
    if slot.is_over() {
        return Err(Error::WaitTimedOut {
            what: format!(
                "{} of {} to {}",
                step.what(),
                request.snapshot.snapshot_id,
                config.vault_place()
            ),
            status,
            elapsed_seconds: slot.elapsed_seconds(),
            timeout_field: "copy_wait_timeout_seconds".into(),
        });
    }
    Ok(VaultPending {
        pending: true,
        step,
        status,
        next_try_seconds: slot.next_try_seconds(None),
    })
}
