//! The vault handler against mocked clients: RDS and KMS of the source account,
//! STS, and RDS and KMS of the vault account (reached with the vault role's keys).

use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState};
use aws_sdk_rds::Client;
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDbClusterSnapshotOutput;
use aws_sdk_rds::operation::copy_db_snapshot::CopyDbSnapshotOutput;
use aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDbClusterSnapshotOutput;
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::describe_option_groups::DescribeOptionGroupsOutput;
use aws_sdk_rds::operation::modify_db_cluster_snapshot_attribute::ModifyDbClusterSnapshotAttributeOutput;
use aws_sdk_rds::operation::modify_db_snapshot_attribute::ModifyDbSnapshotAttributeOutput;
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Option as RdsOption, OptionGroup, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use backup_core::testing::{self, EXECUTION_ID, account_quota, fast_retries, fixture, mock_rds_in, rds_error};
use backup_core::{Error, tags};
use backup_vault::{Clients, Config, VaultOutcome, VaultPending, VaultStep, handle};
use serde_json::{Value, json};

const SNAPSHOT_ID: &str = "prod-database-1-20261124-020000";
const INTERMEDIATE_ID: &str = "prod-database-1-20261124-020000-vault";
const SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-20261124-020000";
const INTERMEDIATE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-20261124-020000-vault";
const VAULT_ARN: &str = "arn:aws:rds:eu-west-1:111111111111:snapshot:prod-database-1-20261124-020000";
const VAULT: &str = "111111111111";
const ROLE: &str = "arn:aws:iam::111111111111:role/nestedphoenix-production-vault-copier";
const VAULT_KEY: &str = "arn:aws:kms:eu-west-1:111111111111:key/7a1c0d2e-1111-4a4a-9b9b-vaultkey0001";
const MODULE_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/5e2b1c3d-2222-4b4b-8c8c-modulekey001";
const AWS_RDS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/0a0a0a0a-3333-4c4c-9d9d-awsrdskey001";

fn config() -> Config {
    Config {
        settings: testing::settings(),
        account_id: VAULT.into(),
        region: "eu-west-1".into(),
        role_arn: ROLE.into(),
        external_id: Some("nestedphoenix-production".into()),
        kms_key_arn: VAULT_KEY.into(),
        share_kms_key_arn: MODULE_KEY.into(),
        cluster_share_kms_key_arn: None,
    }
}

/// The mocked clients: `sts` answers AssumeRole, `source` and `vault` RDS, `kms` both accounts' KMS.
struct Mocks<'a> {
    sts: &'a [&'a Rule],
    source: &'a [&'a Rule],
    vault: &'a [&'a Rule],
    kms: &'a [&'a Rule],
}

impl Mocks<'_> {
    fn clients(&self) -> Clients {
        Clients {
            source: mock_rds_in("us-east-1", self.source),
            kms: mock_client!(aws_sdk_kms, RuleMode::MatchAny, self.kms, |b| b
                .region(aws_sdk_kms::config::Region::from_static("us-east-1"))
                .retry_config(fast_retries())),
            sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, self.sts, |b| b
                .region(aws_sdk_sts::config::Region::from_static("us-east-1"))
                .retry_config(fast_retries())),
            vault_rds: mock_rds_in("eu-west-1", self.vault),
            vault_kms: mock_client!(aws_sdk_kms, RuleMode::MatchAny, self.kms, |b| b
                .region(aws_sdk_kms::config::Region::from_static("eu-west-1"))
                .retry_config(fast_retries())),
        }
    }
}

fn assume_role() -> Rule {
    testing::assume_role(ROLE, "nestedphoenix-production", "database-backup-vault")
}

fn assume_role_denied() -> Rule {
    mock!(aws_sdk_sts::Client::assume_role).then_http_response(|| {
        rds_error(
            403,
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/vault/fn is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/nestedphoenix-production-vault-copier",
        )
    })
}

fn our_tags() -> Vec<Tag> {
    tags::snapshot_tags(&testing::settings(), "prod-database-1", EXECUTION_ID)
}

fn snapshot(id: &str, arn: &str, status: &str, key: Option<&str>, tags: Vec<Tag>) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(arn)
        .db_instance_identifier("prod-database-1")
        .status(status)
        .engine("postgres")
        .snapshot_type("manual")
        .encrypted(key.is_some())
        .set_kms_key_id(key.map(str::to_owned))
        .set_tag_list(Some(tags))
        .build()
}

/// DescribeDBSnapshots of `id`: `found`, or DBSnapshotNotFound.
fn describe(id: &'static str, found: Option<DbSnapshot>) -> Rule {
    let rule = mock!(Client::describe_db_snapshots).match_requests(move |r| r.db_snapshot_identifier() == Some(id));
    match found {
        Some(snapshot) => rule.then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(snapshot.clone())
                .build()
        }),
        None => rule.then_http_response(|| rds_error(404, "DBSnapshotNotFound", "not found")),
    }
}

/// The vault's copy, described in the vault account with `status`.
fn in_vault(status: &str) -> Rule {
    describe(
        SNAPSHOT_ID,
        Some(snapshot(SNAPSHOT_ID, VAULT_ARN, status, Some(VAULT_KEY), our_tags())),
    )
}

/// The run's snapshot, available in the source account under `key`.
fn source_under(key: &str) -> Rule {
    describe(
        SNAPSHOT_ID,
        Some(snapshot(SNAPSHOT_ID, SOURCE_ARN, "available", Some(key), our_tags())),
    )
}

/// The copy made with the module's key to share, available.
fn intermediate_available() -> Rule {
    describe(
        INTERMEDIATE_ID,
        Some(snapshot(
            INTERMEDIATE_ID,
            INTERMEDIATE_ARN,
            "available",
            Some(MODULE_KEY),
            intermediate_tags(),
        )),
    )
}

fn intermediate_tags() -> Vec<Tag> {
    vec![
        Tag::builder()
            .key(tags::VAULT_INTERMEDIATE)
            .value("nestedphoenix-production")
            .build(),
        Tag::builder().key(tags::SOURCE_DB).value("prod-database-1").build(),
    ]
}

fn share(snapshot_id: &'static str, add: bool) -> Rule {
    mock!(Client::modify_db_snapshot_attribute)
        .match_requests(move |r| {
            let values = if add { r.values_to_add() } else { r.values_to_remove() };
            r.db_snapshot_identifier() == Some(snapshot_id)
                && r.attribute_name() == Some("restore")
                && values == [VAULT]
        })
        .then_output(|| ModifyDbSnapshotAttributeOutput::builder().build())
}

fn vault_copy(source_arn: &'static str) -> Rule {
    mock!(Client::copy_db_snapshot)
        .match_requests(move |r| {
            let t = r.tags();
            r.source_db_snapshot_identifier() == Some(source_arn)
                && r.target_db_snapshot_identifier() == Some(SNAPSHOT_ID)
                && r.kms_key_id() == Some(VAULT_KEY)
                && tags::tag_value(t, tags::MANAGED_BY) == Some("nestedphoenix-production")
                && tags::tag_value(t, tags::SOURCE_DB) == Some("prod-database-1")
                && tags::tag_value(t, tags::EXECUTION) == Some(EXECUTION_ID)
                && tags::tag_value(t, tags::COPIED_FROM) == Some(SOURCE_ARN)
                && tags::tag_value(t, tags::SOURCE_ACCOUNT) == Some("123456789012")
                && tags::tag_value(t, "Owner") == Some("DBA Team")
        })
        .then_output(|| {
            CopyDbSnapshotOutput::builder()
                .db_snapshot(snapshot(SNAPSHOT_ID, VAULT_ARN, "pending", Some(VAULT_KEY), our_tags()))
                .build()
        })
}

fn pending(outcome: VaultOutcome) -> VaultPending {
    match outcome {
        VaultOutcome::Pending(pending) => pending,
        other => panic!("not pending: {other:?}"),
    }
}

async fn run(mocks: Mocks<'_>, event: Value) -> Result<VaultOutcome, Error> {
    handle(&mocks.clients(), &config(), event).await
}

async fn run_with(config: Config, mocks: Mocks<'_>, event: Value) -> Result<VaultOutcome, Error> {
    handle(&mocks.clients(), &config, event).await
}

#[tokio::test]
async fn a_snapshot_under_aws_rds_is_first_copied_with_the_modules_key() {
    let sts = assume_role();
    let room = account_quota("ManualSnapshots", 10, 100);
    let in_vault = describe(SNAPSHOT_ID, None);
    let source = source_under(AWS_RDS_KEY);
    let no_intermediate = describe(INTERMEDIATE_ID, None);
    let copy = mock!(Client::copy_db_snapshot)
        .match_requests(|r| {
            let t = r.tags();
            r.source_db_snapshot_identifier() == Some(SNAPSHOT_ID)
                && r.target_db_snapshot_identifier() == Some(INTERMEDIATE_ID)
                && r.kms_key_id() == Some(MODULE_KEY)
                && tags::tag_value(t, tags::VAULT_INTERMEDIATE) == Some("nestedphoenix-production")
                // Without the managed-by tag, retention never counts or deletes it.
                && tags::tag_value(t, tags::MANAGED_BY).is_none()
        })
        .then_output(|| {
            CopyDbSnapshotOutput::builder()
                .db_snapshot(snapshot(
                    INTERMEDIATE_ID,
                    INTERMEDIATE_ARN,
                    "creating",
                    Some(MODULE_KEY),
                    intermediate_tags(),
                ))
                .build()
        });
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &no_intermediate, &copy],
            vault: &[&in_vault, &room],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap();

    let waiting = pending(outcome.clone());
    assert_eq!(
        (waiting.step, waiting.status.as_str()),
        (VaultStep::CopyingWithModuleKey, "creating")
    );
    assert_eq!(copy.num_calls(), 1);
    assert_eq!(
        serde_json::to_value(outcome).unwrap(),
        json!({"pending": true, "step": "copying_with_module_key", "status": "creating", "next_try_seconds": 60})
    );
}

#[tokio::test]
async fn the_available_module_key_copy_is_shared_and_copied_into_the_vault_with_its_key() {
    let sts = assume_role();
    let in_vault = describe(SNAPSHOT_ID, None);
    let source = source_under(AWS_RDS_KEY);
    let intermediate = intermediate_available();
    let (shared, copy) = (share(INTERMEDIATE_ID, true), vault_copy(INTERMEDIATE_ARN));
    let room = account_quota("ManualSnapshots", 10, 100);
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &intermediate, &shared],
            vault: &[&in_vault, &copy, &room],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap();

    assert_eq!(pending(outcome).step, VaultStep::CopyingToVault);
    assert_eq!((shared.num_calls(), copy.num_calls(), sts.num_calls()), (1, 1, 1));
}

#[tokio::test]
async fn a_snapshot_under_the_modules_key_is_shared_as_it_is() {
    let sts = assume_role();
    let in_vault = describe(SNAPSHOT_ID, None);
    let source = source_under(MODULE_KEY);
    let (shared, copy) = (share(SNAPSHOT_ID, true), vault_copy(SOURCE_ARN));
    let room = account_quota("ManualSnapshots", 10, 100);
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &shared],
            vault: &[&in_vault, &copy, &room],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap();

    assert_eq!(pending(outcome).step, VaultStep::CopyingToVault);
    assert_eq!((shared.num_calls(), copy.num_calls()), (1, 1));
}

#[tokio::test]
async fn once_the_vault_holds_its_copy_the_sharing_is_taken_back_and_the_intermediate_deleted() {
    let sts = assume_role();
    let in_vault = in_vault("available");
    let source = source_under(AWS_RDS_KEY);
    let intermediate = intermediate_available();
    let unshared = share(INTERMEDIATE_ID, false);
    let deleted = mock!(Client::delete_db_snapshot)
        .match_requests(|r| r.db_snapshot_identifier() == Some(INTERMEDIATE_ID))
        .then_output(|| DeleteDbSnapshotOutput::builder().build());
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &intermediate, &unshared, &deleted],
            vault: &[&in_vault],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap();

    assert_eq!(
        serde_json::to_value(outcome).unwrap(),
        json!({
            "account_id": VAULT, "region": "eu-west-1", "snapshot_id": SNAPSHOT_ID, "snapshot_arn": VAULT_ARN,
            "kms_key_arn": VAULT_KEY, "status": "available"
        })
    );
    assert_eq!((unshared.num_calls(), deleted.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_rerun_after_the_copy_touches_nothing() {
    // The vault's copy made, its sharing already taken back and the intermediate gone.
    let sts = assume_role();
    let in_vault = in_vault("available");
    let source = source_under(AWS_RDS_KEY);
    let no_intermediate = describe(INTERMEDIATE_ID, None);
    let (copy, shared, deleted) = (
        mock!(Client::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build()),
        mock!(Client::modify_db_snapshot_attribute).then_output(|| ModifyDbSnapshotAttributeOutput::builder().build()),
        mock!(Client::delete_db_snapshot).then_output(|| DeleteDbSnapshotOutput::builder().build()),
    );
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &no_intermediate, &copy, &shared, &deleted],
            vault: &[&in_vault, &copy],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap();

    let VaultOutcome::Copied(record) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(record.snapshot_arn, VAULT_ARN);
    assert_eq!((copy.num_calls(), shared.num_calls(), deleted.num_calls()), (0, 0, 0));
}

#[tokio::test]
async fn a_vault_snapshot_with_our_name_that_is_not_ours_is_a_conflict() {
    let sts = assume_role();
    let in_vault = describe(
        SNAPSHOT_ID,
        Some(snapshot(SNAPSHOT_ID, VAULT_ARN, "available", Some(VAULT_KEY), vec![])),
    );
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[&in_vault],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::IdentifierConflict { .. }), "{err}");
    assert!(
        err.to_string().contains("eu-west-1 (vault account 111111111111)"),
        "{err}"
    );
}

/// A copy step for an Aurora cluster snapshot in us-east-1 (the vault of config() is in
/// eu-west-1): its error, and whether anything was copied.
async fn cluster_snapshot_copy_step(encrypted: bool) -> (Error, usize) {
    let sts = assume_role();
    let in_vault = mock!(Client::describe_db_cluster_snapshots)
        .match_requests(|r| r.db_cluster_snapshot_identifier() == Some("ledger-aurora-20261124-020000"))
        .then_http_response(|| rds_error(404, "DBClusterSnapshotNotFoundFault", "not found"));
    let source = mock!(Client::describe_db_cluster_snapshots).then_output(move || {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier("ledger-aurora-20261124-020000")
                    .db_cluster_snapshot_arn(
                        "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:ledger-aurora-20261124-020000",
                    )
                    .status("available")
                    .storage_encrypted(encrypted)
                    .set_kms_key_id(encrypted.then(|| MODULE_KEY.to_owned()))
                    .build(),
            )
            .build()
    });
    let copy = mock!(Client::copy_db_cluster_snapshot).then_output(|| CopyDbClusterSnapshotOutput::builder().build());
    let mut event = fixture("vault-copy-request.json");
    event["snapshot"]["kind"] = json!("cluster");
    event["snapshot"]["db_identifier"] = json!("ledger-aurora");
    event["snapshot"]["snapshot_id"] = json!("ledger-aurora-20261124-020000");
    event["snapshot"]["snapshot_arn"] =
        json!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:ledger-aurora-20261124-020000");
    event["snapshot"]["engine"] = json!("aurora-postgresql");
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &copy],
            vault: &[&in_vault],
            kms: &[],
        },
        event,
    )
    .await
    .unwrap_err();
    (err, copy.num_calls())
}

#[tokio::test]
async fn an_unencrypted_cluster_snapshot_is_refused_before_any_copy() {
    let (err, copies) = cluster_snapshot_copy_step(false).await;

    assert!(matches!(err, Error::VaultCopyRefused { .. }), "{err}");
    assert!(err.to_string().contains("cannot be encrypted by a copy"), "{err}");
    assert_eq!(copies, 0);
}

#[tokio::test]
async fn a_cluster_snapshot_for_a_vault_in_another_region_without_a_key_there_is_refused_before_any_copy() {
    let (err, copies) = cluster_snapshot_copy_step(true).await;

    assert!(matches!(err, Error::VaultCopyRefused { .. }), "{err}");
    assert!(
        err.to_string().contains("across Regions and accounts in a single step"),
        "{err}"
    );
    assert!(err.to_string().contains("VAULT_CLUSTER_SHARE_KMS_KEY_ARN"), "{err}");
    assert!(err.to_string().contains("or a vault in us-east-1 takes it"), "{err}");
    assert_eq!(copies, 0);
}

#[tokio::test]
async fn a_vault_role_that_cannot_be_assumed_fails_the_step_naming_it() {
    let sts = assume_role_denied();
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err}");
    assert!(err.to_string().contains(ROLE), "{err}");
}

#[tokio::test]
async fn a_copy_not_done_within_the_bound_times_out_naming_the_wait() {
    let sts = assume_role();
    let in_vault = in_vault("copying");
    let mut event = fixture("vault-copy-request.json");
    event["slot"]["started_at"] = json!("2026-11-23T20:00:00Z");
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[&in_vault],
            kms: &[],
        },
        event,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::WaitTimedOut { .. }), "{err}");
    assert!(err.to_string().contains("copy_wait_timeout_seconds"), "{err}");
}

#[tokio::test]
async fn the_vault_must_be_another_account() {
    let mut config = config();
    config.account_id = "123456789012".into();
    let err = handle(
        &Mocks {
            sts: &[],
            source: &[],
            vault: &[],
            kms: &[],
        }
        .clients(),
        &config,
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::ConfigError { field, .. } if field == "VAULT_ACCOUNT_ID"),
        "{err}"
    );
}

#[tokio::test]
async fn a_request_with_an_unknown_field_is_refused_naming_it() {
    let mut event = fixture("vault-copy-request.json");
    event["vault"] = json!(true);
    let err = run(
        Mocks {
            sts: &[],
            source: &[],
            vault: &[],
            kms: &[],
        },
        event,
    )
    .await
    .unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { .. }), "{err}");
    assert!(err.to_string().contains("vault"), "{err}");
}

/// A KMS (JSON protocol) error response.
fn kms_error(code: &str, message: &str) -> HttpResponse {
    let body = json!({"__type": code, "message": message}).to_string();
    HttpResponse::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body))
}

fn key(arn: &'static str) -> Rule {
    mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(move |r| r.key_id() == Some(arn))
        .then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id(arn)
                        .arn(arn)
                        .key_state(KeyState::Enabled)
                        .key_manager(KeyManagerType::Customer)
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// A key policy statement that lets the vault account do what RDS needs to copy a shared snapshot.
fn lets_the_vault_in() -> Value {
    json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{VAULT}:root")},
        "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
}

fn key_policy(vault_statement: Value) -> Rule {
    key_policy_of(MODULE_KEY, vault_statement)
}

fn key_policy_of(key: &'static str, vault_statement: Value) -> Rule {
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
        vault_statement,
    ]})
    .to_string();
    mock!(aws_sdk_kms::Client::get_key_policy)
        .match_requests(move |r| r.key_id() == Some(key) && r.policy_name() == Some("default"))
        .then_output(move || GetKeyPolicyOutput::builder().policy(policy.clone()).build())
}

/// The source account's manual snapshots: `listed` DB snapshots, no cluster snapshots.
fn listing(listed: Vec<DbSnapshot>) -> [Rule; 2] {
    [
        mock!(Client::describe_db_snapshots)
            .match_requests(|r| r.db_snapshot_identifier().is_none() && r.snapshot_type() == Some("manual"))
            .then_output(move || {
                DescribeDbSnapshotsOutput::builder()
                    .set_db_snapshots(Some(listed.clone()))
                    .build()
            }),
        mock!(Client::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

fn created(snapshot: DbSnapshot, at: &str) -> DbSnapshot {
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let mut snapshot = snapshot;
    snapshot.snapshot_create_time = Some(aws_smithy_types::DateTime::from_secs(at.timestamp()));
    snapshot
}

#[tokio::test]
async fn the_check_passes_with_usable_keys_and_role_and_deletes_abandoned_copies() {
    let (sts, module_key, vault_key) = (assume_role(), key(MODULE_KEY), key(VAULT_KEY));
    let policy = key_policy(lets_the_vault_in());
    // The run started 2026-11-24T02:00; no run waits longer than 7 days: a copy made to share
    // before 2026-11-17T01:00 is abandoned, a later one may still be some step's. Of two
    // abandoned ones, one cannot be deleted: it is named, the other deleted.
    let intermediate = |id: &str, at: &str, tags: Vec<Tag>| {
        let arn = format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}");
        created(snapshot(id, &arn, "available", Some(MODULE_KEY), tags), at)
    };
    let listed = listing(vec![
        intermediate(
            "prod-database-1-20261116-020000-vault",
            "2026-11-16T02:10:00Z",
            intermediate_tags(),
        ),
        intermediate(
            "prod-database-1-20261115-020000-vault",
            "2026-11-15T02:10:00Z",
            intermediate_tags(),
        ),
        intermediate(
            "prod-database-1-20261117-020000-vault",
            "2026-11-17T02:10:00Z",
            intermediate_tags(),
        ),
        intermediate("someone-elses-vault", "2026-11-01T02:10:00Z", vec![]),
        created(
            snapshot(SNAPSHOT_ID, SOURCE_ARN, "available", Some(AWS_RDS_KEY), our_tags()),
            "2026-11-01T02:10:00Z",
        ),
    ]);
    let unshared = share("prod-database-1-20261116-020000-vault", false);
    let deleted = mock!(Client::delete_db_snapshot)
        .match_requests(|r| r.db_snapshot_identifier() == Some("prod-database-1-20261116-020000-vault"))
        .then_output(|| DeleteDbSnapshotOutput::builder().build());
    let refused = mock!(Client::modify_db_snapshot_attribute)
        .match_requests(|r| r.db_snapshot_identifier() == Some("prod-database-1-20261115-020000-vault"))
        .then_http_response(|| {
            rds_error(
                403,
                "AccessDenied",
                "not authorized to perform: rds:ModifyDBSnapshotAttribute",
            )
        });
    let outcome = run(
        Mocks {
            sts: &[&sts],
            source: &[&listed[0], &listed[1], &unshared, &deleted, &refused],
            vault: &[],
            kms: &[&module_key, &policy, &vault_key],
        },
        fixture("vault-check-request.json"),
    )
    .await
    .unwrap();
    let VaultOutcome::Checked(checked) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (checked.account_id.as_str(), checked.kms_key_arn.as_str()),
        (VAULT, VAULT_KEY)
    );
    assert_eq!(
        checked.abandoned_copies_deleted,
        ["prod-database-1-20261116-020000-vault"]
    );
    let [kept] = &checked.abandoned_copies_kept[..] else {
        panic!("{:?}", checked.abandoned_copies_kept)
    };
    assert!(
        kept.starts_with("prod-database-1-20261115-020000-vault: ModifyDBSnapshotAttribute failed: AccessDenied"),
        "{kept}"
    );
    assert_eq!(
        (vault_key.num_calls(), unshared.num_calls(), deleted.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn the_check_names_every_problem_in_one_message() {
    let (sts, module_key) = (assume_role_denied(), key(MODULE_KEY));
    let policy = key_policy(json!({"Effect": "Allow", "Principal": {"AWS": VAULT},
        "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}));
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[],
            kms: &[&module_key, &policy],
        },
        fixture("vault-check-request.json"),
    )
    .await
    .unwrap_err();

    let Error::VaultUnusable { detail } = &err else {
        panic!("{err}")
    };
    assert!(
        detail.contains(&format!(
            "the policy of the module's key {MODULE_KEY} does not allow the vault account {VAULT} kms:CreateGrant"
        )),
        "{detail}"
    );
    assert!(
        detail.contains("the vault role cannot be assumed") && detail.contains(ROLE),
        "{detail}"
    );
}

#[tokio::test]
async fn the_check_refuses_a_disabled_or_missing_key() {
    let sts = assume_role();
    let missing = mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|r| r.key_id() == Some(MODULE_KEY))
        .then_http_response(|| kms_error("NotFoundException", "Key 'arn:...' does not exist"));
    let vault_key = key(VAULT_KEY);
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[],
            kms: &[&missing, &vault_key],
        },
        fixture("vault-check-request.json"),
    )
    .await
    .unwrap_err();
    let Error::VaultUnusable { detail } = &err else {
        panic!("{err}")
    };
    assert!(
        detail.contains(&format!("the module's key {MODULE_KEY} cannot be used"))
            && detail.contains("NotFoundException"),
        "{detail}"
    );
}

/// The vault function's configuration from a valid environment with `changes`.
fn config_with(changes: &[(&'static str, &'static str)]) -> Result<Config, Error> {
    let base = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", "nestedphoenix-production"),
        ("VAULT_ACCOUNT_ID", VAULT),
        ("VAULT_REGION", "eu-west-1"),
        ("VAULT_ROLE_ARN", ROLE),
        ("VAULT_KMS_KEY_ARN", VAULT_KEY),
        ("VAULT_SHARE_KMS_KEY_ARN", MODULE_KEY),
    ];
    let env: std::collections::BTreeMap<String, String> = base
        .iter()
        .chain(changes)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_env(&env)
}

#[test]
fn config_comes_from_the_environment_and_is_checked() {
    let env = config_with;
    let config = env(&[]).unwrap();
    assert_eq!((config.account_id.as_str(), config.external_id), (VAULT, None));
    for (name, value, says) in [
        ("VAULT_ACCOUNT_ID", "1111", "12 digits"),
        (
            "VAULT_ROLE_ARN",
            "arn:aws:iam::222222222222:role/x",
            "not a role of the vault account",
        ),
        (
            "VAULT_KMS_KEY_ARN",
            "arn:aws:kms:us-east-1:111111111111:key/x",
            "KMS keys are regional",
        ),
        ("VAULT_REGION", "Ireland", "region"),
    ] {
        let err = env(&[(name, value)]).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigError { field, .. } if field == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(says), "{name}: {err}");
    }
}

/// An Oracle snapshot taken with option group `ledger-oracle` holding `options` (persistent),
/// to a vault in `vault_region`.
async fn oracle_with(options: &'static [&'static str], vault_region: &str) -> (Result<VaultOutcome, Error>, usize) {
    let sts = assume_role();
    let in_vault = describe(SNAPSHOT_ID, None);
    let mut taken = snapshot(SNAPSHOT_ID, SOURCE_ARN, "available", Some(MODULE_KEY), our_tags());
    taken.engine = Some("oracle-ee".into());
    taken.option_group_name = Some("ledger-oracle".into());
    let source = describe(SNAPSHOT_ID, Some(taken));
    let groups = mock!(Client::describe_option_groups)
        .match_requests(|r| r.option_group_name() == Some("ledger-oracle"))
        .then_output(move || {
            let group = options.iter().fold(
                OptionGroup::builder().option_group_name("ledger-oracle"),
                |group, name| group.options(RdsOption::builder().option_name(*name).persistent(true).build()),
            );
            DescribeOptionGroupsOutput::builder()
                .option_groups_list(group.build())
                .build()
        });
    let (shared, copy) = (share(SNAPSHOT_ID, true), vault_copy(SOURCE_ARN));
    let room = account_quota("ManualSnapshots", 10, 100);
    let mut event = fixture("vault-copy-request.json");
    event["snapshot"]["engine"] = json!("oracle-ee");
    let mut config = config();
    config.region = vault_region.into();
    let mocks = Mocks {
        sts: &[&sts],
        source: &[&source, &groups, &shared],
        vault: &[&in_vault, &copy, &room],
        kms: &[],
    };
    let outcome = handle(&mocks.clients(), &config, event).await;
    (outcome, shared.num_calls() + copy.num_calls())
}

#[tokio::test]
async fn a_snapshot_with_tde_is_refused_before_anything_is_shared() {
    let (outcome, calls) = oracle_with(&["TDE", "Timezone"], "us-east-1").await;
    let err = outcome.unwrap_err();
    assert!(matches!(err, Error::VaultCopyRefused { .. }), "{err}");
    assert!(
        err.to_string().contains("whose options TDE (persistent or permanent)"),
        "{err}"
    );
    assert_eq!(calls, 0);
}

#[tokio::test]
async fn oracles_timezone_and_ols_options_do_not_keep_a_snapshot_from_the_vault() {
    let (outcome, calls) = oracle_with(&["Timezone", "OLS"], "us-east-1").await;
    let VaultOutcome::Pending(pending) = outcome.unwrap() else {
        panic!("not pending")
    };
    assert_eq!(pending.step, VaultStep::CopyingToVault);
    assert_eq!(calls, 2);
}

#[tokio::test]
async fn a_full_vault_is_named_as_such_and_nothing_is_copied() {
    let sts = assume_role();
    let in_vault = describe(SNAPSHOT_ID, None);
    let source = source_under(MODULE_KEY);
    let full = account_quota("ManualSnapshots", 100, 100);
    let (shared, copy) = (share(SNAPSHOT_ID, true), vault_copy(SOURCE_ARN));
    let err = run(
        Mocks {
            sts: &[&sts],
            source: &[&source, &shared],
            vault: &[&in_vault, &copy, &full],
            kms: &[],
        },
        fixture("vault-copy-request.json"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::SnapshotQuotaExceeded { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("in eu-west-1 (vault account 111111111111) is used up (100 of 100 used)"),
        "{err}"
    );
    assert_eq!((shared.num_calls(), copy.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_snapshot_with_options_goes_to_a_vault_in_its_own_region_only() {
    let (outcome, calls) = oracle_with(&["Timezone"], "eu-west-1").await;
    let err = outcome.unwrap_err();
    assert!(matches!(err, Error::VaultCopyRefused { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the vault's region is eu-west-1: a vault in us-east-1 takes it"),
        "{err}"
    );
    assert_eq!(calls, 0);
}

// A DB cluster snapshot to a vault in another region goes in two copies: the source account
// copies it into the vault's region with its key there, shares that copy, and the vault
// account copies it in its own region.

const CLUSTER_SNAPSHOT_ID: &str = "ledger-aurora-20261124-020000";
const CLUSTER_INTERMEDIATE_ID: &str = "ledger-aurora-20261124-020000-vault";
const CLUSTER_SOURCE_ARN: &str = "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:ledger-aurora-20261124-020000";
const CLUSTER_INTERMEDIATE_ARN: &str =
    "arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:ledger-aurora-20261124-020000-vault";
const CLUSTER_VAULT_ARN: &str = "arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:ledger-aurora-20261124-020000";
const CLUSTER_SHARE_KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/9c3d2e1f-4444-4d4d-aeae-clusterkey01";

fn two_step_config() -> Config {
    Config {
        cluster_share_kms_key_arn: Some(CLUSTER_SHARE_KEY.into()),
        ..config()
    }
}

/// One copy step of the cluster snapshot, with the key in the vault's region: the source
/// region's and the vault's region's RDS answering from `source` and `vault`.
async fn two_step(source: &[&Rule], vault: &[&Rule]) -> Result<VaultOutcome, Error> {
    let sts = assume_role();
    let mocks = Mocks {
        sts: &[&sts],
        source,
        vault,
        kms: &[],
    };
    run_with(two_step_config(), mocks, cluster_request()).await
}

fn cluster_request() -> Value {
    let mut event = fixture("vault-copy-request.json");
    event["snapshot"]["kind"] = json!("cluster");
    event["snapshot"]["db_identifier"] = json!("ledger-aurora");
    event["snapshot"]["snapshot_id"] = json!(CLUSTER_SNAPSHOT_ID);
    event["snapshot"]["snapshot_arn"] = json!(CLUSTER_SOURCE_ARN);
    event["snapshot"]["engine"] = json!("aurora-postgresql");
    event
}

fn cluster_snapshot(id: &str, arn: &str, status: &str, key: &str, tags: Vec<Tag>) -> DbClusterSnapshot {
    DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier(id)
        .db_cluster_snapshot_arn(arn)
        .db_cluster_identifier("ledger-aurora")
        .status(status)
        .engine("aurora-postgresql")
        .snapshot_type("manual")
        .storage_encrypted(true)
        .kms_key_id(key)
        .set_tag_list(Some(tags))
        .build()
}

/// DescribeDBClusterSnapshots of `id`: `found`, or DBClusterSnapshotNotFoundFault.
fn describe_cluster(id: &'static str, found: Option<DbClusterSnapshot>) -> Rule {
    let rule = mock!(Client::describe_db_cluster_snapshots)
        .match_requests(move |r| r.db_cluster_snapshot_identifier() == Some(id));
    match found {
        Some(snapshot) => rule.then_output(move || {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(snapshot.clone())
                .build()
        }),
        None => rule.then_http_response(|| rds_error(404, "DBClusterSnapshotNotFoundFault", "not found")),
    }
}

/// The run's cluster snapshot, available in the source region under `key`.
fn cluster_source(key: &str, tags: Vec<Tag>) -> Rule {
    describe_cluster(
        CLUSTER_SNAPSHOT_ID,
        Some(cluster_snapshot(
            CLUSTER_SNAPSHOT_ID,
            CLUSTER_SOURCE_ARN,
            "available",
            key,
            tags,
        )),
    )
}

fn cluster_intermediate_tags() -> Vec<Tag> {
    tags::vault_intermediate_tags(&testing::settings(), "ledger-aurora", EXECUTION_ID)
}

/// The source account's copy made to share, in the vault's region.
fn cluster_intermediate(status: &str) -> Rule {
    describe_cluster(
        CLUSTER_INTERMEDIATE_ID,
        Some(cluster_snapshot(
            CLUSTER_INTERMEDIATE_ID,
            CLUSTER_INTERMEDIATE_ARN,
            status,
            CLUSTER_SHARE_KEY,
            cluster_intermediate_tags(),
        )),
    )
}

fn share_cluster(snapshot_id: &'static str, add: bool) -> Rule {
    mock!(Client::modify_db_cluster_snapshot_attribute)
        .match_requests(move |r| {
            let values = if add { r.values_to_add() } else { r.values_to_remove() };
            r.db_cluster_snapshot_identifier() == Some(snapshot_id)
                && r.attribute_name() == Some("restore")
                && values == [VAULT]
        })
        .then_output(|| ModifyDbClusterSnapshotAttributeOutput::builder().build())
}

#[tokio::test]
async fn a_cluster_snapshot_for_a_vault_in_another_region_is_first_copied_there_with_the_modules_key_there() {
    // Under the module's key in its own region, it is still copied: it must cross the region.
    let source = cluster_source(
        MODULE_KEY,
        tags::snapshot_tags(&testing::settings(), "ledger-aurora", EXECUTION_ID),
    );
    let (in_vault, no_intermediate) = (
        describe_cluster(CLUSTER_SNAPSHOT_ID, None),
        describe_cluster(CLUSTER_INTERMEDIATE_ID, None),
    );
    let room = account_quota("ManualClusterSnapshots", 10, 100);
    let copy = mock!(Client::copy_db_cluster_snapshot)
        .match_requests(|r| {
            let t = r.tags();
            r.source_db_cluster_snapshot_identifier() == Some(CLUSTER_SOURCE_ARN)
                && r.target_db_cluster_snapshot_identifier() == Some(CLUSTER_INTERMEDIATE_ID)
                && r.kms_key_id() == Some(CLUSTER_SHARE_KEY)
                && tags::tag_value(t, tags::VAULT_INTERMEDIATE) == Some("nestedphoenix-production")
                && tags::tag_value(t, tags::MANAGED_BY).is_none()
        })
        .then_output(|| {
            CopyDbClusterSnapshotOutput::builder()
                .db_cluster_snapshot(cluster_snapshot(
                    CLUSTER_INTERMEDIATE_ID,
                    CLUSTER_INTERMEDIATE_ARN,
                    "copying",
                    CLUSTER_SHARE_KEY,
                    cluster_intermediate_tags(),
                ))
                .build()
        });
    // Nothing is shared in the source region (no sharing rule there).
    let outcome = two_step(&[&source], &[&in_vault, &room, &no_intermediate, &copy])
        .await
        .unwrap();

    let waiting = pending(outcome);
    assert_eq!(
        (waiting.step, waiting.status.as_str()),
        (VaultStep::CopyingWithModuleKey, "copying")
    );
    assert_eq!(copy.num_calls(), 1);
}

#[tokio::test]
async fn the_copy_made_in_the_vaults_region_is_shared_there_and_copied_by_the_vault_in_its_region() {
    let source = cluster_source(AWS_RDS_KEY, vec![]);
    let (in_vault, intermediate) = (
        describe_cluster(CLUSTER_SNAPSHOT_ID, None),
        cluster_intermediate("available"),
    );
    let room = account_quota("ManualClusterSnapshots", 10, 100);
    let shared = share_cluster(CLUSTER_INTERMEDIATE_ID, true);
    let copy = mock!(Client::copy_db_cluster_snapshot)
        .match_requests(|r| {
            let t = r.tags();
            // Same region as the shared copy: the one step AWS allows across accounts.
            r.source_db_cluster_snapshot_identifier() == Some(CLUSTER_INTERMEDIATE_ARN)
                && r.target_db_cluster_snapshot_identifier() == Some(CLUSTER_SNAPSHOT_ID)
                && r.kms_key_id() == Some(VAULT_KEY)
                && tags::tag_value(t, tags::MANAGED_BY) == Some("nestedphoenix-production")
                && tags::tag_value(t, tags::COPIED_FROM) == Some(CLUSTER_SOURCE_ARN)
        })
        .then_output(|| CopyDbClusterSnapshotOutput::builder().build());
    let outcome = two_step(&[&source], &[&in_vault, &room, &intermediate, &shared, &copy])
        .await
        .unwrap();

    assert_eq!(pending(outcome).step, VaultStep::CopyingToVault);
    assert_eq!((shared.num_calls(), copy.num_calls()), (1, 1));
}

#[tokio::test]
async fn once_the_vault_holds_the_cluster_copy_the_copy_in_its_region_is_unshared_and_deleted() {
    let in_vault = describe_cluster(
        CLUSTER_SNAPSHOT_ID,
        Some(cluster_snapshot(
            CLUSTER_SNAPSHOT_ID,
            CLUSTER_VAULT_ARN,
            "available",
            VAULT_KEY,
            tags::snapshot_tags(&testing::settings(), "ledger-aurora", EXECUTION_ID),
        )),
    );
    let intermediate = cluster_intermediate("available");
    let unshared = share_cluster(CLUSTER_INTERMEDIATE_ID, false);
    let deleted = mock!(Client::delete_db_cluster_snapshot)
        .match_requests(|r| r.db_cluster_snapshot_identifier() == Some(CLUSTER_INTERMEDIATE_ID))
        .then_output(|| DeleteDbClusterSnapshotOutput::builder().build());
    // The source region's snapshot was never shared: nothing to take back there.
    let outcome = two_step(&[], &[&in_vault, &intermediate, &unshared, &deleted])
        .await
        .unwrap();

    let VaultOutcome::Copied(record) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (record.snapshot_arn.as_str(), record.region.as_str()),
        (CLUSTER_VAULT_ARN, "eu-west-1")
    );
    assert_eq!((unshared.num_calls(), deleted.num_calls()), (1, 1));
}

#[tokio::test]
async fn the_check_reads_the_policy_of_the_key_in_the_vaults_region_too() {
    let (sts, module_key, vault_key, cluster_key) =
        (assume_role(), key(MODULE_KEY), key(VAULT_KEY), key(CLUSTER_SHARE_KEY));
    let policy = key_policy(lets_the_vault_in());
    let cluster_policy = key_policy_of(
        CLUSTER_SHARE_KEY,
        json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{VAULT}:root")},
            "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}),
    );
    let err = run_with(
        two_step_config(),
        Mocks {
            sts: &[&sts],
            source: &[],
            vault: &[],
            kms: &[&module_key, &policy, &vault_key, &cluster_key, &cluster_policy],
        },
        fixture("vault-check-request.json"),
    )
    .await
    .unwrap_err();

    let Error::VaultUnusable { detail } = &err else {
        panic!("{err}")
    };
    assert!(
        detail.contains(&format!(
            "the policy of the module's key {CLUSTER_SHARE_KEY} does not allow the vault account {VAULT} kms:CreateGrant"
        )),
        "{detail}"
    );
    assert!(!detail.contains(&format!("key {MODULE_KEY}")), "{detail}");
}

#[test]
fn the_key_in_the_vaults_region_is_checked_to_be_of_the_source_account_there() {
    let env = |changes: &[(&'static str, &'static str)]| {
        let with_key = [("VAULT_CLUSTER_SHARE_KMS_KEY_ARN", CLUSTER_SHARE_KEY)];
        config_with(&[&with_key[..], changes].concat())
    };
    assert_eq!(
        env(&[]).unwrap().cluster_share_kms_key_arn.as_deref(),
        Some(CLUSTER_SHARE_KEY)
    );
    for (changes, says) in [
        (
            [(
                "VAULT_CLUSTER_SHARE_KMS_KEY_ARN",
                "arn:aws:kms:us-east-1:123456789012:key/x",
            )],
            "not a key of the source account 123456789012 in the vault's region eu-west-1",
        ),
        (
            [(
                "VAULT_CLUSTER_SHARE_KMS_KEY_ARN",
                "arn:aws:kms:eu-west-1:111111111111:key/x",
            )],
            "not a key of the source account",
        ),
    ] {
        let err = env(&changes).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigError { field, .. } if field == "VAULT_CLUSTER_SHARE_KMS_KEY_ARN"),
            "{err}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
    let same_region = env(&[
        ("VAULT_REGION", "us-east-1"),
        ("VAULT_KMS_KEY_ARN", "arn:aws:kms:us-east-1:111111111111:key/v"),
    ])
    .unwrap_err();
    assert!(
        same_region
            .to_string()
            .contains("the vault is in the source region us-east-1"),
        "{same_region}"
    );
}

/// DescribeAccountAttributes answering, call after call, each of `used` of 100 manual cluster snapshots.
fn cluster_quotas(used: &'static [i64]) -> Rule {
    use aws_sdk_rds::operation::describe_account_attributes::DescribeAccountAttributesOutput;
    use aws_sdk_rds::types::AccountQuota;
    let mut rule = mock!(Client::describe_account_attributes).sequence();
    for &used in used {
        rule = rule.output(move || {
            DescribeAccountAttributesOutput::builder()
                .account_quotas(
                    AccountQuota::builder()
                        .account_quota_name("ManualClusterSnapshots")
                        .used(used)
                        .max(100)
                        .build(),
                )
                .build()
        });
    }
    rule.build()
}

#[tokio::test]
async fn a_full_quota_of_the_source_account_in_the_vaults_region_is_named_before_anything_is_copied() {
    let source = cluster_source(AWS_RDS_KEY, vec![]);
    let (in_vault, no_intermediate) = (
        describe_cluster(CLUSTER_SNAPSHOT_ID, None),
        describe_cluster(CLUSTER_INTERMEDIATE_ID, None),
    );
    // The vault account's quota has room; the source account's in the vault's region is full.
    let quotas = cluster_quotas(&[10, 100]);
    let copy = mock!(Client::copy_db_cluster_snapshot).then_output(|| CopyDbClusterSnapshotOutput::builder().build());
    let err = two_step(&[&source], &[&in_vault, &quotas, &no_intermediate, &copy])
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::SnapshotQuotaExceeded { region, .. } if region == "eu-west-1"),
        "{err}"
    );
    assert_eq!((quotas.num_calls(), copy.num_calls()), (2, 0));
}

#[tokio::test]
async fn a_failed_copy_made_to_share_is_deleted_and_the_step_fails_naming_it() {
    let source = cluster_source(AWS_RDS_KEY, vec![]);
    let (in_vault, failed) = (
        describe_cluster(CLUSTER_SNAPSHOT_ID, None),
        cluster_intermediate("failed"),
    );
    let room = account_quota("ManualClusterSnapshots", 10, 100);
    let deleted = mock!(Client::delete_db_cluster_snapshot)
        .match_requests(|r| r.db_cluster_snapshot_identifier() == Some(CLUSTER_INTERMEDIATE_ID))
        .then_output(|| DeleteDbClusterSnapshotOutput::builder().build());
    let err = two_step(&[&source], &[&in_vault, &room, &failed, &deleted])
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::SnapshotFailed { snapshot_id, region, .. }
            if snapshot_id == CLUSTER_INTERMEDIATE_ID && region == "eu-west-1"),
        "{err}"
    );
    assert_eq!(deleted.num_calls(), 1);
}

#[tokio::test]
async fn a_snapshot_in_the_vaults_region_with_the_intermediates_name_that_is_not_ours_is_a_conflict() {
    let source = cluster_source(AWS_RDS_KEY, vec![]);
    let in_vault = describe_cluster(CLUSTER_SNAPSHOT_ID, None);
    let someone_elses = describe_cluster(
        CLUSTER_INTERMEDIATE_ID,
        Some(cluster_snapshot(
            CLUSTER_INTERMEDIATE_ID,
            CLUSTER_INTERMEDIATE_ARN,
            "available",
            CLUSTER_SHARE_KEY,
            vec![],
        )),
    );
    let room = account_quota("ManualClusterSnapshots", 10, 100);
    let (shared, deleted) = (
        share_cluster(CLUSTER_INTERMEDIATE_ID, true),
        mock!(Client::delete_db_cluster_snapshot).then_output(|| DeleteDbClusterSnapshotOutput::builder().build()),
    );
    let err = two_step(&[&source], &[&in_vault, &room, &someone_elses, &shared, &deleted])
        .await
        .unwrap_err();

    assert!(
        matches!(&err, Error::IdentifierConflict { region, .. } if region == "eu-west-1"),
        "{err}"
    );
    assert_eq!((shared.num_calls(), deleted.num_calls()), (0, 0));
}

#[tokio::test]
async fn the_check_deletes_copies_left_behind_in_the_vaults_region_too_failed_ones_unshared_first_not() {
    let (sts, module_key, vault_key, cluster_key) =
        (assume_role(), key(MODULE_KEY), key(VAULT_KEY), key(CLUSTER_SHARE_KEY));
    let (policy, cluster_policy) = (
        key_policy(lets_the_vault_in()),
        key_policy_of(CLUSTER_SHARE_KEY, lets_the_vault_in()),
    );
    let source_listing = listing(vec![]);
    // In the vault's region, long before the run: a failed copy made to share (never
    // shared) and an available one (shared: taken back first).
    let left = |id: &str, status: &str| {
        let arn = format!("arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:{id}");
        let mut snapshot = cluster_snapshot(id, &arn, status, CLUSTER_SHARE_KEY, cluster_intermediate_tags());
        snapshot.snapshot_create_time = Some(aws_smithy_types::DateTime::from_secs(1_763_258_400)); // 2025-11-16
        snapshot
    };
    let vault_region_listing = mock!(Client::describe_db_cluster_snapshots)
        .match_requests(|r| r.db_cluster_snapshot_identifier().is_none())
        .then_output(move || {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(left("ledger-aurora-20261101-020000-vault", "failed"))
                .db_cluster_snapshots(left("ledger-aurora-20261102-020000-vault", "available"))
                .build()
        });
    let unshared = share_cluster("ledger-aurora-20261102-020000-vault", false);
    let deleted =
        mock!(Client::delete_db_cluster_snapshot).then_output(|| DeleteDbClusterSnapshotOutput::builder().build());
    let outcome = run_with(
        two_step_config(),
        Mocks {
            sts: &[&sts],
            source: &[&source_listing[0], &source_listing[1]],
            vault: &[&vault_region_listing, &unshared, &deleted],
            kms: &[&module_key, &policy, &vault_key, &cluster_key, &cluster_policy],
        },
        fixture("vault-check-request.json"),
    )
    .await
    .unwrap();

    let VaultOutcome::Checked(checked) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        checked.abandoned_copies_deleted,
        [
            "ledger-aurora-20261101-020000-vault",
            "ledger-aurora-20261102-020000-vault"
        ]
    );
    assert_eq!(checked.cluster_share_kms_key_arn.as_deref(), Some(CLUSTER_SHARE_KEY));
    assert_eq!((unshared.num_calls(), deleted.num_calls()), (1, 2));
}
