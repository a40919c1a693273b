//! Helpers for the tests that run the functions' handlers against the local
//! AWS emulator. `scripts/test` starts moto on a free loopback port and sets
//! the SDK's standard variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, test
//! credentials), so the handlers build their clients exactly as in Lambda.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{Region, SdkConfig};
use aws_sdk_rds::types::Tag;
use backup_core::rds::SnapshotInfo;

pub const SOURCE_REGION: &str = "us-east-1";
pub const DESTINATION_REGION: &str = "us-west-2";

/// The SDK configuration the functions load in Lambda, pointed at the
/// emulator. Fails the test with instructions when run outside `scripts/test`.
pub async fn sdk_config() -> SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "AWS_ENDPOINT_URL is {endpoint:?}: run these tests through scripts/test, which starts the local AWS"
    );
    let config = backup_core::aws::load_sdk_config().await;
    assert_eq!(
        config.region().map(Region::as_ref),
        Some(SOURCE_REGION),
        "scripts/test sets AWS_REGION"
    );
    config
}

/// A prefix no other test (or earlier run against the same emulator) uses.
pub fn unique(name: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{name}{nanos:09}")
}

/// A configuration environment, as Terraform sets it on a function.
pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub async fn create_instance(rds: &aws_sdk_rds::Client, id: &str, engine: &str) {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine(engine)
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .storage_encrypted(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating {id}: {e:?}"));
}

/// A snapshot made outside the functions, with the given tags.
pub async fn create_snapshot(rds: &aws_sdk_rds::Client, db: &str, id: &str, tags: Vec<Tag>) {
    rds.create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(id)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating snapshot {id}: {e:?}"));
}

pub async fn create_kms_key(sdk_config: &SdkConfig, region: &'static str) -> String {
    let config = aws_sdk_kms::config::Builder::from(sdk_config)
        .region(Region::from_static(region))
        .build();
    let key = aws_sdk_kms::Client::from_conf(config)
        .create_key()
        .description("database-backup integration test")
        .send()
        .await
        .expect("creating a KMS key");
    key.key_metadata().and_then(|m| m.arn()).expect("key ARN").to_owned()
}

/// Every manual DB snapshot in the emulator whose id starts with `prefix`.
pub async fn manual_snapshots(rds: &aws_sdk_rds::Client, prefix: &str) -> Vec<SnapshotInfo> {
    let mut found = Vec::new();
    let mut pages = rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("listing snapshots");
        found.extend(
            page.db_snapshots()
                .iter()
                .map(SnapshotInfo::from)
                .filter(|s| s.snapshot_id.starts_with(prefix)),
        );
    }
    found.sort_by(|a, b| a.snapshot_id.cmp(&b.snapshot_id));
    found
}

/// A stand-in for the database state machine: each execution's output is
/// the `result` of its input, as the real one's is the database's result.
/// Returns its ARN and, for each result, `{db_identifier, execution_name}`
/// of an execution that ended with it, as a run hands them to notify.
pub async fn database_executions(
    sdk_config: &SdkConfig,
    name: &str,
    results: &[serde_json::Value],
) -> (String, Vec<serde_json::Value>) {
    let sfn = aws_sdk_sfn::Client::new(sdk_config);
    let definition =
        r#"{"StartAt": "Result", "States": {"Result": {"Type": "Pass", "InputPath": "$.result", "End": true}}}"#;
    let machine = sfn
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/integration-tests")
        .send()
        .await
        .expect("creating the database state machine");
    let mut runs = Vec::new();
    for (i, result) in results.iter().enumerate() {
        let execution_name = format!("{name}-{i}");
        let started = sfn
            .start_execution()
            .state_machine_arn(machine.state_machine_arn())
            .name(&execution_name)
            .input(serde_json::json!({ "result": result }).to_string())
            .send()
            .await
            .expect("starting a database execution");
        loop {
            let described = sfn
                .describe_execution()
                .execution_arn(started.execution_arn())
                .send()
                .await
                .expect("describing a database execution");
            if described.status().as_str() != "RUNNING" {
                assert_eq!(described.status().as_str(), "SUCCEEDED", "{described:?}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        runs.push(serde_json::json!({"db_identifier": result["db_identifier"], "execution_name": execution_name}));
    }
    (machine.state_machine_arn().to_owned(), runs)
}

pub fn ids(snapshots: &[SnapshotInfo]) -> Vec<&str> {
    snapshots.iter().map(|s| s.snapshot_id.as_str()).collect()
}
