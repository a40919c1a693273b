//! The drill's steps against mocked RDS answers: what it picks, the restore it asks for, what a
//! check concludes, and what it deletes (only its own drill databases).

use std::sync::{Arc, Mutex};

use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::delete_db_cluster::DeleteDbClusterOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterMember, DbClusterSnapshot, DbInstance, DbSnapshot, Endpoint, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use backup_core::contract::Function;
use backup_core::drill::{CopySource, DrillRestore, DrillWriter, Expected};
use backup_core::tags::{MANAGED_BY, SOURCE_DB};
use backup_core::testing::{self, manual_snapshots, mock_rds, rds_error};
use backup_core::types::DatabaseKind;
use backup_drill::{
    Clients, Config, DrillSettings, SqlProbeSettings, VaultDrill, check, delete, drill_identifier, handle, pick,
    start_restore, sweep,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

const PREFIX: &str = "drill-a1b2c3-";
const INSTANCE: &str = "nestedphoenix-production";
const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-drill:weekly";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 5, 0, 0).unwrap()
}

fn config(random_count: u32) -> Config {
    Config {
        settings: testing::settings(),
        drill: DrillSettings {
            copy: CopySource::Source,
            identifier_prefix: PREFIX.into(),
            instance_class: None,
            subnet_group: Some("drill-subnets".into()),
            security_group_ids: vec!["sg-0123456789abcdef0".into()],
            rto_minutes: 30,
            keep_minutes: 0,
            max_wait_minutes: 60,
            poll_seconds: 60,
            databases: Vec::new(),
            random_count,
            vault: None,
            sql_probe: None,
        },
        copy_region: None,
    }
}

fn clients(rules: &[&Rule]) -> Clients {
    let sdk_config = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .build();
    Clients {
        home: mock_rds(rules),
        sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[] as &[&Rule]),
        sdk_config,
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn backup(db: &str, managed_by: &str) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(format!("{db}-20261205-020000-abcdef"))
        .db_snapshot_arn(format!(
            "arn:aws:rds:us-east-1:123456789012:snapshot:{db}-20261205-020000-abcdef"
        ))
        .db_instance_identifier(db)
        .status("available")
        .snapshot_type("manual")
        .engine("postgres")
        .engine_version("16.3")
        .allocated_storage(20)
        .encrypted(true)
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(
            (now() - Duration::hours(3)).timestamp(),
        ))
        .tag_list(tag(SOURCE_DB, db))
        .tag_list(tag(MANAGED_BY, managed_by))
        .build()
}

fn drill_instance(id: &str, status: &str, drill_tag: Option<&str>, delete_after: DateTime<Utc>) -> DbInstance {
    let mut builder = DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_status(status)
        .engine("postgres")
        .engine_version("16.3")
        .allocated_storage(20)
        .storage_encrypted(true)
        .tag_list(tag(backup_core::drill::DELETE_AFTER, &delete_after.to_rfc3339()));
    if let Some(value) = drill_tag {
        builder = builder.tag_list(tag(backup_core::drill::DRILL, value));
    }
    builder.build()
}

fn described(instance: DbInstance) -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(instance.clone())
            .build()
    })
}

fn restore_record() -> DrillRestore {
    DrillRestore {
        db: "prod-database-1".into(),
        region: "us-east-1".into(),
        account: None,
        kind: DatabaseKind::Instance,
        restored_id: format!("{PREFIX}prod-database-1-12060500"),
        snapshot_id: "prod-database-1-20261205-020000-abcdef".into(),
        snapshot_created_at: None,
        operation: "RestoreDBInstanceFromDBSnapshot".into(),
        requested_at: now(),
        deadline: now() + Duration::minutes(60),
        delete_after: now() + Duration::minutes(60),
        rto_minutes: 30,
        keep_seconds: 0,
        poll_seconds: 60,
        expected: Expected {
            engine: "postgres".into(),
            engine_version: Some("16.3".into()),
            allocated_storage_gib: Some(20),
            encrypted: Some(true),
        },
        status: "requested".into(),
        ready: false,
        next_poll_seconds: 60,
        available_at: None,
        checks: Vec::new(),
        probe: None,
        writer: None,
    }
}

#[test]
fn reads_its_contracted_environment() {
    testing::assert_reads_its_contracted_environment(Function::Drill, Config::from_env);
}

#[test]
fn drill_identifiers_fit_rds_and_carry_the_prefix() {
    let short = drill_identifier(PREFIX, "orders", now());
    assert_eq!(short, "drill-a1b2c3-orders-12060500");
    let long = drill_identifier(PREFIX, &format!("a{}", "-b".repeat(40)), now());
    // Room for an Aurora drill's writer, `<cluster>-1`.
    assert!(long.len() <= 61, "{long}");
    assert_eq!(backup_core::restore::writer_identifier(&long), format!("{long}-1"));
    assert!(
        long.starts_with(PREFIX) && long.ends_with("-12060500") && !long.contains("--"),
        "{long}"
    );
}

#[tokio::test]
async fn pick_takes_the_backed_up_databases_and_random_count_of_them_the_same_per_execution() {
    let [listed, clusters] = manual_snapshots(vec![
        backup("prod-database-1", INSTANCE),
        backup("prod-database-2", INSTANCE),
        backup("prod-database-3", INSTANCE),
        backup("someone-elses", "another/instance/us-east-1"),
    ]);
    let clients = clients(&[&listed, &clusters]);
    let all = pick(&clients, &config(0), "exec-1", None).await.unwrap();
    assert_eq!(all.databases, ["prod-database-1", "prod-database-2", "prod-database-3"]);
    let one = pick(&clients, &config(1), "exec-1", None).await.unwrap();
    assert_eq!(one.databases.len(), 1);
    assert_eq!(one.candidates, 3);
    let again = pick(&clients, &config(1), "exec-1", None).await.unwrap();
    assert_eq!(again.databases, one.databases);
    let one_of_three = config(1);
    let mut picks = std::collections::BTreeSet::new();
    for i in 0..20 {
        let picked = pick(&clients, &one_of_three, &format!("exec-{i}"), None).await.unwrap();
        picks.insert(picked.databases[0].clone());
    }
    assert!(picks.len() > 1, "twenty drills always picked {picks:?}");

    let asked = pick(&clients, &config(0), "exec-1", Some(vec!["Bad--name".into()])).await;
    assert_eq!(asked.unwrap_err().error_type().as_str(), "InvalidInput");
    let typo =
        serde_json::json!({"action": "pick", "execution_id": "exec-1", "input": {"database": ["prod-database-1"]}});
    let err = handle(&clients, &config(0), typo).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(err.to_string().contains("database"), "{err}");
}

#[tokio::test]
async fn restore_asks_for_the_newest_backup_to_a_tagged_private_drill_database() {
    let [listed, clusters] = manual_snapshots(vec![backup("prod-database-1", INSTANCE)]);
    let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance not found"));
    let no_cluster = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found"));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .match_requests(move |r| {
            seen.lock().unwrap().push(r.clone());
            true
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let mut config = config(0);
    config.drill.instance_class = Some("db.t4g.micro".into());
    let clients = clients(&[&listed, &clusters, &no_instance, &no_cluster, &restore]);

    let record = start_restore(&clients, &config, "prod-database-1", EXECUTION, now())
        .await
        .unwrap();

    assert_eq!(record.restored_id, "drill-a1b2c3-prod-database-1-12060500");
    assert_eq!(record.snapshot_id, "prod-database-1-20261205-020000-abcdef");
    assert_eq!(record.deadline, now() + Duration::minutes(60));
    assert_eq!(record.expected.engine_version.as_deref(), Some("16.3"));
    assert_eq!(record.expected.allocated_storage_gib, Some(20));
    let [request] = sent.lock().unwrap().clone().try_into().unwrap();
    assert_eq!(request.db_instance_identifier(), Some(record.restored_id.as_str()));
    assert_eq!(request.publicly_accessible(), Some(false));
    assert_eq!(request.db_subnet_group_name(), Some("drill-subnets"));
    assert_eq!(request.db_instance_class(), Some("db.t4g.micro"));
    let tags: Vec<(&str, &str)> = request
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&(backup_core::drill::DRILL, INSTANCE)), "{tags:?}");
    assert!(tags.contains(&(backup_core::tags::EXECUTION, EXECUTION)), "{tags:?}");
    // The bound (60 minutes), no keep time, and 30 minutes for a late check.
    assert!(
        tags.contains(&(backup_core::drill::DELETE_AFTER, "2026-12-06T06:30:00Z")),
        "{tags:?}"
    );
}

#[tokio::test]
async fn a_retried_restore_goes_on_with_the_database_its_first_try_asked_for() {
    let [listed, clusters] = manual_snapshots(vec![backup("prod-database-1", INSTANCE)]);
    let id = "drill-a1b2c3-prod-database-1-12060500";
    let mut instance = drill_instance(id, "creating", Some(INSTANCE), now());
    instance.tag_list = Some(
        [
            instance.tag_list().to_vec(),
            vec![tag(backup_core::tags::EXECUTION, EXECUTION)],
        ]
        .concat(),
    );
    let ours = described(instance);
    let never = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let clients = clients(&[&listed, &clusters, &ours, &never]);
    let record = start_restore(&clients, &config(0), "prod-database-1", EXECUTION, now())
        .await
        .unwrap();
    assert_eq!((record.restored_id.as_str(), record.kind), (id, DatabaseKind::Instance));
    assert_eq!(record.snapshot_id, "prod-database-1-20261205-020000-abcdef");
    assert_eq!(never.num_calls(), 0);
    // Another execution's drill database of the same minute is not this one's.
    let other = start_restore(&clients, &config(0), "prod-database-1", "another-execution", now()).await;
    assert_eq!(other.unwrap_err().error_type().as_str(), "RestoreRefused");
    assert_eq!(never.num_calls(), 0);
}

#[tokio::test]
async fn a_database_without_a_backup_is_refused_before_anything_is_asked_for() {
    let [listed, clusters] = manual_snapshots(vec![backup("prod-database-1", "another/instance/us-east-1")]);
    let no_cluster = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found"));
    let original = described(DbInstance::builder().db_instance_identifier("prod-database-1").build());
    let clients = clients(&[&listed, &clusters, &original, &no_cluster]);
    let err = start_restore(&clients, &config(0), "prod-database-1", EXECUTION, now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "RestoreRefused");
    assert!(
        err.to_string().contains("no available backup of it in us-east-1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_check_waits_then_checks_the_restored_database_against_its_snapshot() {
    let id = format!("{PREFIX}prod-database-1-12060500");
    let creating = described(drill_instance(&id, "creating", Some(INSTANCE), now()));
    let later = now() + Duration::minutes(59) + Duration::seconds(30);
    let record = check(&clients(&[&creating]), &config(0), restore_record(), later)
        .await
        .unwrap();
    assert!(!record.ready);
    assert_eq!(record.next_poll_seconds, 30, "the last poll comes at the bound");

    let timed_out = check(
        &clients(&[&creating]),
        &config(0),
        restore_record(),
        now() + Duration::minutes(60),
    )
    .await;
    assert_eq!(timed_out.unwrap_err().error_type().as_str(), "WaitTimedOut");

    let failed = described(drill_instance(&id, "incompatible-restore", Some(INSTANCE), now()));
    let err = check(&clients(&[&failed]), &config(0), restore_record(), later)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "RestoreFailed");
    assert!(err.to_string().ends_with("it is incompatible-restore"), "{err}");

    let available = described(drill_instance(&id, "available", Some(INSTANCE), now()));
    let at = now() + Duration::minutes(12);
    let record = check(&clients(&[&available]), &config(0), restore_record(), at)
        .await
        .unwrap();
    assert!(record.ready && record.checks_passed(), "{:?}", record.checks);
    assert_eq!(record.recovery_minutes(), Some(12.0));
    let names: Vec<&str> = record.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["status", "engine", "engine version", "allocated storage", "encrypted"]
    );

    let mut other_version = restore_record();
    other_version.expected.engine_version = Some("15.4".into());
    let record = check(&clients(&[&available]), &config(0), other_version, at)
        .await
        .unwrap();
    assert!(!record.checks_passed());
    let failed: Vec<_> = record.checks.iter().filter(|c| !c.passed).collect();
    assert_eq!(
        (failed[0].name.as_str(), failed[0].actual.as_str()),
        ("engine version", "16.3")
    );
}

fn with_probe(mut config: Config, db: &str) -> Config {
    config.drill.sql_probe = Some(SqlProbeSettings {
        secret_arns: [(db.to_owned(), SECRET.to_owned())].into(),
        query: "SELECT count(*) FROM orders".into(),
        connect_timeout_seconds: 10,
    });
    config
}

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader-AbCdEf";

#[tokio::test]
async fn an_available_database_with_a_probe_secret_is_handed_to_the_probe_and_others_are_not() {
    let id = format!("{PREFIX}prod-database-1-12060500");
    let at = now() + Duration::minutes(12);
    let mut instance = drill_instance(&id, "available", Some(INSTANCE), now());
    instance.endpoint = Some(
        Endpoint::builder()
            .address("drill.abc.us-east-1.rds.amazonaws.com")
            .port(5432)
            .build(),
    );
    instance.db_name = Some("shop".into());
    let available = described(instance.clone());

    let record = check(
        &clients(&[&available]),
        &with_probe(config(0), "prod-database-1"),
        restore_record(),
        at,
    )
    .await
    .unwrap();
    assert!(record.checks_passed(), "{:?}", record.checks);
    let probe = record.probe.expect("the probe's target");
    assert_eq!(
        (
            probe.address.as_str(),
            probe.port,
            probe.database.as_deref(),
            probe.secret_arn.as_str()
        ),
        ("drill.abc.us-east-1.rds.amazonaws.com", 5432, Some("shop"), SECRET)
    );
    assert_eq!(probe.query, "SELECT count(*) FROM orders");

    let unprobed = check(
        &clients(&[&available]),
        &with_probe(config(0), "another-db"),
        restore_record(),
        at,
    )
    .await
    .unwrap();
    assert_eq!(unprobed.probe, None, "a database without a secret is not probed");
    assert!(
        unprobed
            .checks
            .iter()
            .all(|c| c.name != backup_core::drill::PROBE_CHECK)
    );

    for engine in ["mysql", "mariadb"] {
        instance.engine = Some(engine.into());
        let mut expected = restore_record();
        expected.expected.engine = engine.into();
        let record = check(
            &clients(&[&described(instance.clone())]),
            &with_probe(config(0), "prod-database-1"),
            expected,
            at,
        )
        .await
        .unwrap();
        let probe = record.probe.expect("MySQL's protocol is probed too");
        assert_eq!(probe.engine, engine);
    }

    instance.engine = Some("sqlserver-se".into());
    let sqlserver = described(instance);
    let mut expected_sqlserver = restore_record();
    expected_sqlserver.expected.engine = "sqlserver-se".into();
    let record = check(
        &clients(&[&sqlserver]),
        &with_probe(config(0), "prod-database-1"),
        expected_sqlserver,
        at,
    )
    .await
    .unwrap();
    assert_eq!(record.probe, None);
    assert!(!record.checks_passed(), "a probe asked for and not run fails the drill");
    let probe_check = record.checks.last().unwrap();
    assert_eq!(probe_check.name, backup_core::drill::PROBE_CHECK);
    assert_eq!(
        probe_check.actual,
        "not run: the probe speaks to postgres, aurora-postgresql, mysql, mariadb, aurora-mysql only, and this \
         database's engine is sqlserver-se"
    );
}

#[test]
fn a_probe_is_refused_for_drills_outside_the_module_region() {
    let drill = serde_json::json!({
        "copy": "copy", "identifier_prefix": PREFIX, "instance_class": "db.t4g.micro", "subnet_group": null,
        "security_group_ids": [], "rto_minutes": 60, "keep_minutes": 0, "max_wait_minutes": 60, "poll_seconds": 60,
        "databases": [], "random_count": 0, "vault": null,
        "sql_probe": {"secret_arns": {"db": SECRET}, "query": "SELECT 1", "connect_timeout_seconds": 10},
    });
    let env = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", INSTANCE),
        ("DRILL", &drill.to_string()),
        ("COPY_DESTINATION_REGION", "us-west-2"),
    ];
    let err = Config::from_env(&env).unwrap_err();
    assert!(err.to_string().contains("sql_probe"), "{err}");
}

#[tokio::test]
async fn delete_deletes_only_a_drill_database_of_this_instance() {
    let id = format!("{PREFIX}prod-database-1-12060500");
    let deletes = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| r.skip_final_snapshot() == Some(true))
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let ours = described(drill_instance(&id, "available", Some(INSTANCE), now()));
    let clients_ours = clients(&[&ours, &deletes]);
    let deleted = delete(&clients_ours, &config(0), &restore_record()).await.unwrap();
    assert_eq!(deleted.status, "deleting");
    assert_eq!(deletes.num_calls(), 1);

    let someone_elses = described(drill_instance(&id, "available", Some("another/instance"), now()));
    let never =
        mock!(aws_sdk_rds::Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let err = delete(&clients(&[&someone_elses, &never]), &config(0), &restore_record())
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "IdentifierConflict");
    assert_eq!(never.num_calls(), 0);

    let creating = described(drill_instance(&id, "creating", Some(INSTANCE), now()));
    let refused = mock!(aws_sdk_rds::Client::delete_db_instance)
        .then_http_response(|| rds_error(400, "InvalidDBInstanceState", "Instance is creating"));
    let err = delete(&clients(&[&creating, &refused]), &config(0), &restore_record())
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "DatabaseBusy");
}

#[tokio::test]
async fn the_sweep_deletes_only_this_instances_drill_databases_past_their_time() {
    let due = drill_instance(
        &format!("{PREFIX}a-12050500"),
        "available",
        Some(INSTANCE),
        now() - Duration::minutes(1),
    );
    let not_due = drill_instance(
        &format!("{PREFIX}b-12060450"),
        "creating",
        Some(INSTANCE),
        now() + Duration::hours(1),
    );
    let other = drill_instance(
        "drill-ffffff-c-12050500",
        "available",
        Some("another"),
        now() - Duration::days(1),
    );
    let untagged = drill_instance(
        &format!("{PREFIX}d-12050500"),
        "available",
        None,
        now() - Duration::days(1),
    );
    let listed = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(due.clone())
            .db_instances(not_due.clone())
            .db_instances(other.clone())
            .db_instances(untagged.clone())
            .build()
    });
    let clusters =
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build());
    let deletes = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| r.db_instance_identifier() == Some("drill-a1b2c3-a-12050500"))
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let swept = sweep(&clients(&[&listed, &clusters, &deletes]), &config(0), now())
        .await
        .unwrap();
    assert_eq!(swept.deleted, ["drill-a1b2c3-a-12050500 (us-east-1)"]);
    assert_eq!(swept.kept, ["drill-a1b2c3-b-12060450 (us-east-1)"]);
    assert_eq!(deletes.num_calls(), 1);
}

const VAULT_ROLE: &str = "arn:aws:iam::444455556666:role/nestedphoenix-production-drill";

/// Drills of the vault's copies, through its drill role in eu-west-1.
fn vault_config() -> Config {
    let mut config = config(0);
    config.drill.copy = CopySource::Vault;
    config.drill.instance_class = Some("db.t4g.micro".into());
    config.drill.vault = Some(VaultDrill {
        account_id: "444455556666".into(),
        region: "eu-west-1".into(),
        role_arn: VAULT_ROLE.into(),
        external_id: Some("nestedphoenix-production-vault".into()),
    });
    config
}

fn vault_session() -> Rule {
    testing::assume_role(VAULT_ROLE, "nestedphoenix-production-vault", "database-backup-drill")
}

fn vault_clients(sts: &Rule, rds: &[&Rule]) -> Clients {
    Clients {
        sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, &[sts]),
        ..clients(rds)
    }
}

#[test]
fn vault_drills_need_the_vaults_drill_role() {
    let drill = r#"{"copy":"vault","identifier_prefix":"drill-a1b2c3-","instance_class":"db.t4g.micro","subnet_group":null,"rto_minutes":60,"keep_minutes":0,"max_wait_minutes":240,"poll_seconds":60,"vault":null}"#;
    let err = Config::from_env(&[("DRILL", drill)]).unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(
        err.to_string().contains("DRILL is invalid: has no vault drill role"),
        "{err}"
    );
}

#[tokio::test]
async fn a_vault_drill_restores_the_vaults_copy_in_the_vault_through_its_drill_role() {
    // The vault's copy, made a day after the source's snapshot it copies was taken.
    let mut copy = backup("prod-database-1", INSTANCE);
    let taken = now() - Duration::hours(27);
    copy.original_snapshot_create_time = Some(aws_smithy_types::DateTime::from_secs(taken.timestamp()));
    let [listed, clusters] = manual_snapshots(vec![copy]);
    let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance not found"));
    let no_cluster = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found"));
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .match_requests(|r| r.db_instance_class() == Some("db.t4g.micro") && r.publicly_accessible() == Some(false))
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let session = vault_session();
    let clients = vault_clients(&session, &[&listed, &clusters, &no_instance, &no_cluster, &restore]);

    let picked = pick(&clients, &vault_config(), EXECUTION, None).await.unwrap();
    assert_eq!(
        (picked.region.as_str(), picked.account.as_deref()),
        ("eu-west-1", Some("444455556666"))
    );
    assert_eq!(picked.databases, ["prod-database-1"]);
    let record = start_restore(&clients, &vault_config(), "prod-database-1", EXECUTION, now())
        .await
        .unwrap();
    assert_eq!(restore.num_calls(), 1);
    assert_eq!(
        (record.region.as_str(), record.account.as_deref()),
        ("eu-west-1", Some("444455556666"))
    );
    assert_eq!(
        record.snapshot_created_at,
        Some(taken),
        "when the data was taken, not copied"
    );
    // Every step in the vault signs with a session of the vault's drill role.
    assert_eq!(session.num_calls(), 2);
}

#[tokio::test]
async fn without_a_session_of_the_vault_role_nothing_is_restored() {
    // STS answers in the query protocol's XML, as RDS does.
    let denied = mock!(aws_sdk_sts::Client::assume_role)
        .then_http_response(|| rds_error(403, "AccessDenied", "not authorized to perform: sts:AssumeRole"));
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let clients = vault_clients(&denied, &[&restore]);
    let err = start_restore(&clients, &vault_config(), "prod-database-1", EXECUTION, now())
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "AccessDenied");
    assert!(err.to_string().contains(VAULT_ROLE), "{err}");
    assert_eq!(restore.num_calls(), 0);
}

#[tokio::test]
async fn the_sweep_looks_in_the_vault_too() {
    let due = drill_instance(
        &format!("{PREFIX}a-12050500"),
        "available",
        Some(INSTANCE),
        now() - Duration::minutes(1),
    );
    let listed = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_output(move || DescribeDbInstancesOutput::builder().db_instances(due.clone()).build());
    let (swept, deletes, sessions) = sweep_listing(&listed).await;
    // The mocked RDS answers both accounts alike: the same database, in each.
    assert_eq!(
        swept.deleted,
        [
            "drill-a1b2c3-a-12050500 (us-east-1)",
            "drill-a1b2c3-a-12050500 (eu-west-1, vault account 444455556666)"
        ]
    );
    assert_eq!((deletes, sessions), (2, 1));
}

/// The sweep of the module's region and the vault, each listing DB instances as `listed`
/// answers, no DB cluster, every deletion accepted: what it swept, and how many deletions and
/// sessions of the vault's drill role it asked for.
async fn sweep_listing(listed: &Rule) -> (backup_core::drill::Swept, usize, usize) {
    let clusters =
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build());
    let deletes =
        mock!(aws_sdk_rds::Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let session = vault_session();
    let clients = vault_clients(&session, &[listed, &clusters, &deletes]);
    let swept = sweep(&clients, &vault_config(), now()).await.unwrap();
    (swept, deletes.num_calls(), session.num_calls())
}

const AURORA: &str = "orders-aurora";
const AURORA_DRILL: &str = "drill-a1b2c3-orders-aurora-12060500";
const AURORA_WRITER: &str = "drill-a1b2c3-orders-aurora-12060500-1";

fn aurora_backup() -> DbClusterSnapshot {
    DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier(format!("{AURORA}-20261205-020000-abcdef"))
        .db_cluster_snapshot_arn(format!(
            "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:{AURORA}-20261205-020000-abcdef"
        ))
        .db_cluster_identifier(AURORA)
        .status("available")
        .snapshot_type("manual")
        .engine("aurora-postgresql")
        .engine_version("16.4")
        .storage_encrypted(true)
        .tag_list(tag(SOURCE_DB, AURORA))
        .tag_list(tag(MANAGED_BY, INSTANCE))
        .build()
}

/// A cluster (`members`: its DB instances, the first its writer) carrying this instance's drill
/// tag, and the restore's tag that AWS sets, which no request may.
fn aurora_cluster(id: &str, status: &str, members: &[&str]) -> DbCluster {
    let mut builder = DbCluster::builder()
        .db_cluster_identifier(id)
        .status(status)
        .engine("aurora-postgresql")
        .engine_version("16.4")
        .storage_encrypted(true)
        .database_name("shop")
        .tag_list(tag(backup_core::drill::DRILL, INSTANCE))
        .tag_list(tag("aws:cloudformation:stack-name", "not ours to set"));
    for (i, member) in members.iter().enumerate() {
        builder = builder.db_cluster_members(
            DbClusterMember::builder()
                .db_instance_identifier(*member)
                .is_cluster_writer(i == 0)
                .build(),
        );
    }
    builder.build()
}

fn aurora_instance(id: &str, cluster: &str, status: &str, class: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .db_instance_status(status)
        .db_instance_class(class)
        .engine("aurora-postgresql")
        .endpoint(
            Endpoint::builder()
                .address(format!("{id}.abc.us-east-1.rds.amazonaws.com"))
                .port(5432)
                .build(),
        )
        .tag_list(tag(backup_core::drill::DRILL, INSTANCE))
        .build()
}

fn cluster_described(cluster: DbCluster) -> Rule {
    let id = cluster.db_cluster_identifier().unwrap_or_default().to_owned();
    mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(move |r| r.db_cluster_identifier() == Some(id.as_str()))
        .then_output(move || DescribeDbClustersOutput::builder().db_clusters(cluster.clone()).build())
}

fn instance_described(instance: DbInstance) -> Rule {
    let id = instance.db_instance_identifier().unwrap_or_default().to_owned();
    mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(move |r| r.db_instance_identifier() == Some(id.as_str()))
        .then_output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(instance.clone())
                .build()
        })
}

/// The drill's restore of AURORA, whose backup is a cluster snapshot, with RDS answering as
/// `found` (the original cluster, its writer) and `restores` (RestoreDBClusterFromSnapshot); no
/// other DB instance or cluster exists.
async fn restore_aurora(config: &Config, found: &[&Rule], restores: &Rule) -> Result<DrillRestore, backup_core::Error> {
    let listed =
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let cluster_snapshots = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(|| {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(aurora_backup())
            .build()
    });
    let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance not found"));
    let no_cluster = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found"));
    let rules: Vec<&Rule> = [&listed, &cluster_snapshots]
        .into_iter()
        .chain(found.iter().copied())
        .chain([&no_instance, &no_cluster, restores])
        .collect();
    start_restore(&clients(&rules), config, AURORA, EXECUTION, now()).await
}

fn aurora_record() -> DrillRestore {
    DrillRestore {
        db: AURORA.into(),
        kind: DatabaseKind::Cluster,
        restored_id: AURORA_DRILL.into(),
        snapshot_id: format!("{AURORA}-20261205-020000-abcdef"),
        operation: "RestoreDBClusterFromSnapshot".into(),
        expected: Expected {
            engine: "aurora-postgresql".into(),
            engine_version: Some("16.4".into()),
            allocated_storage_gib: None,
            encrypted: Some(true),
        },
        writer: Some(DrillWriter {
            instance_id: AURORA_WRITER.into(),
            instance_class: "db.r6g.large".into(),
            requested: false,
            status: None,
        }),
        ..restore_record()
    }
}

#[tokio::test]
async fn an_aurora_drill_gets_a_writer_of_the_originals_class_or_is_refused_before_anything_is_created() {
    let original = cluster_described(aurora_cluster(
        AURORA,
        "available",
        &["orders-aurora-a", "orders-aurora-b"],
    ));
    let writer = instance_described(aurora_instance("orders-aurora-a", AURORA, "available", "db.r6g.large"));
    let restores = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());

    let record = restore_aurora(&config(0), &[&original, &writer], &restores)
        .await
        .unwrap();

    assert_eq!(
        (record.restored_id.as_str(), record.kind),
        (AURORA_DRILL, DatabaseKind::Cluster)
    );
    assert_eq!(record.writer, aurora_record().writer, "the original writer's class");
    assert_eq!(restores.num_calls(), 1);

    // restore_drill.instance_class is the writer's class when set.
    let mut sized = config(0);
    sized.drill.instance_class = Some("db.t4g.medium".into());
    let record = restore_aurora(&sized, &[&original, &writer], &restores).await.unwrap();
    assert_eq!(record.writer.unwrap().instance_class, "db.t4g.medium");

    // No class set and no writer to take it from (as in the copy region or the vault).
    let no_writer = cluster_described(aurora_cluster(AURORA, "available", &[]));
    let err = restore_aurora(&config(0), &[&no_writer], &restores).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "RestoreRefused");
    assert!(
        err.to_string().contains("restore_drill.instance_class is needed"),
        "{err}"
    );
    assert_eq!(restores.num_calls(), 2, "nothing asked for");
}

/// A look at `record` at its bound, RDS answering from `rules`: the WaitTimedOut's text.
async fn timed_out(rules: &[&Rule], config: &Config, record: &DrillRestore) -> String {
    let err = check(&clients(rules), config, record.clone(), record.deadline)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "WaitTimedOut");
    err.to_string()
}

#[tokio::test]
async fn an_aurora_drill_adds_its_writer_once_the_cluster_is_available_and_is_ready_with_it() {
    let config = with_probe(config(0), AURORA);
    let at = now() + Duration::minutes(20);

    // The cluster still restoring: no writer asked for (RDS would refuse it).
    let creating = cluster_described(aurora_cluster(AURORA_DRILL, "creating", &[]));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    let creates = mock!(aws_sdk_rds::Client::create_db_instance)
        .match_requests(move |r| {
            seen.lock().unwrap().push(r.clone());
            true
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let record = check(&clients(&[&creating, &creates]), &config, aurora_record(), at)
        .await
        .unwrap();
    assert!(!record.ready);
    assert_eq!(creates.num_calls(), 0);

    // Available, but at the bound: the drill ends there, asking for nothing more.
    let available = cluster_described(aurora_cluster(AURORA_DRILL, "available", &[]));
    let late = timed_out(&[&available, &creates], &config, &record).await;
    assert!(late.contains("its writer"), "{late}");
    assert_eq!(creates.num_calls(), 0);

    // Available: the writer is asked for, in the cluster, private, with the drill's tags.
    let record = check(&clients(&[&available, &creates]), &config, record, at)
        .await
        .unwrap();
    assert!(!record.ready, "not before its writer is available");
    assert_eq!(record.next_poll_seconds, 60);
    let writer = record.writer.clone().unwrap();
    assert_eq!((writer.requested, writer.status.as_deref()), (true, Some("requested")));
    let [request] = sent.lock().unwrap().clone().try_into().unwrap();
    assert_eq!(
        (
            request.db_instance_identifier(),
            request.db_cluster_identifier(),
            request.db_instance_class(),
            request.engine(),
            request.publicly_accessible()
        ),
        (
            Some(AURORA_WRITER),
            Some(AURORA_DRILL),
            Some("db.r6g.large"),
            Some("aurora-postgresql"),
            Some(false)
        )
    );
    let keys: Vec<&str> = request.tags().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys, [backup_core::drill::DRILL], "the cluster's tags but AWS's own");

    // The writer creating, then failed, then available.
    let with_writer = cluster_described(aurora_cluster(AURORA_DRILL, "available", &[AURORA_WRITER]));
    let creating_writer = instance_described(aurora_instance(AURORA_WRITER, AURORA_DRILL, "creating", "db.r6g.large"));
    let record = check(&clients(&[&with_writer, &creating_writer]), &config, record, at)
        .await
        .unwrap();
    assert!(!record.ready);
    assert_eq!(record.writer.as_ref().unwrap().status.as_deref(), Some("creating"));
    let past_bound = timed_out(&[&with_writer, &creating_writer], &config, &record).await;
    assert!(
        past_bound.contains(&format!("available, its writer {AURORA_WRITER} creating")),
        "{past_bound}"
    );

    let failed_writer = instance_described(aurora_instance(AURORA_WRITER, AURORA_DRILL, "failed", "db.r6g.large"));
    let err = check(&clients(&[&with_writer, &failed_writer]), &config, record.clone(), at)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "RestoreFailed");
    assert!(
        err.to_string()
            .contains(&format!("its writer {AURORA_WRITER} is failed")),
        "{err}"
    );

    let ready_writer = instance_described(aurora_instance(
        AURORA_WRITER,
        AURORA_DRILL,
        "available",
        "db.r6g.large",
    ));
    let record = check(&clients(&[&with_writer, &ready_writer]), &config, record, at)
        .await
        .unwrap();
    assert!(record.ready && record.checks_passed(), "{:?}", record.checks);
    assert_eq!(record.recovery_minutes(), Some(20.0), "until the writer is available");
    let names: Vec<&str> = record.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["status", "engine", "engine version", "encrypted", "writer"]);
    assert_eq!(record.checks[4].actual, "available (db.r6g.large)");
    let probe = record.probe.expect("probed through its writer");
    assert_eq!(
        (probe.engine.as_str(), probe.address.as_str(), probe.database.as_deref()),
        (
            "aurora-postgresql",
            "drill-a1b2c3-orders-aurora-12060500-1.abc.us-east-1.rds.amazonaws.com",
            Some("shop")
        )
    );
    assert_eq!(creates.num_calls(), 1);
}

#[tokio::test]
async fn an_aurora_drill_deletes_its_writer_before_its_cluster() {
    let cluster = cluster_described(aurora_cluster(AURORA_DRILL, "available", &[AURORA_WRITER]));
    let writer = instance_described(aurora_instance(
        AURORA_WRITER,
        AURORA_DRILL,
        "available",
        "db.r6g.large",
    ));
    let instance_deletes = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some(AURORA_WRITER)
                && r.skip_final_snapshot() == Some(true)
                && r.delete_automated_backups().is_none()
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let cluster_deletes = mock!(aws_sdk_rds::Client::delete_db_cluster)
        .match_requests(|r| r.db_cluster_identifier() == Some(AURORA_DRILL) && r.skip_final_snapshot() == Some(true))
        .then_output(|| DeleteDbClusterOutput::builder().build());
    let rules = [&cluster, &writer, &instance_deletes, &cluster_deletes];

    let deleted = delete(&clients(&rules), &config(0), &aurora_record()).await.unwrap();

    assert_eq!(deleted.status, "deleting");
    assert_eq!(deleted.instances, [AURORA_WRITER]);
    assert_eq!((instance_deletes.num_calls(), cluster_deletes.num_calls()), (1, 1));

    // RDS refusing the cluster while its writer is not yet deleting: retried (DatabaseBusy).
    let refused = mock!(aws_sdk_rds::Client::delete_db_cluster).then_http_response(|| {
        rds_error(
            400,
            "InvalidDBClusterStateFault",
            "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
        )
    });
    let err = delete(
        &clients(&[&cluster, &writer, &instance_deletes, &refused]),
        &config(0),
        &aurora_record(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "DatabaseBusy");

    // A DB instance in the cluster that is not a drill's: nothing is deleted, not even the
    // drill's own writer listed before it.
    let mut foreign = aurora_instance("someone-elses", AURORA_DRILL, "available", "db.r6g.large");
    foreign.tag_list = None;
    let shared = cluster_described(aurora_cluster(
        AURORA_DRILL,
        "available",
        &[AURORA_WRITER, "someone-elses"],
    ));
    let never = mock!(aws_sdk_rds::Client::delete_db_cluster).then_output(|| DeleteDbClusterOutput::builder().build());
    let never_instance =
        mock!(aws_sdk_rds::Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let err = delete(
        &clients(&[&shared, &writer, &instance_described(foreign), &never_instance, &never]),
        &config(0),
        &aurora_record(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "IdentifierConflict");
    assert!(err.to_string().contains("someone-elses"), "{err}");
    assert_eq!((never_instance.num_calls(), never.num_calls()), (0, 0));
}

#[tokio::test]
async fn a_place_that_fails_is_reported_and_the_sweep_goes_on_with_the_others() {
    let due = drill_instance(
        &format!("{PREFIX}a-12050500"),
        "available",
        Some(INSTANCE),
        now() - Duration::minutes(1),
    );
    // The module's region refuses the listing; the vault (the same mocked RDS, asked second) answers.
    let listed = mock!(aws_sdk_rds::Client::describe_db_instances)
        .sequence()
        .http_response(|| rds_error(400, "Throttling", "Rate exceeded"))
        .times(3)
        .output(move || DescribeDbInstancesOutput::builder().db_instances(due.clone()).build())
        .build();

    let (swept, deletes, sessions) = sweep_listing(&listed).await;

    assert_eq!(
        swept.deleted,
        ["drill-a1b2c3-a-12050500 (eu-west-1, vault account 444455556666)"],
        "the vault's drill database is deleted all the same"
    );
    let [failed] = swept.failed.try_into().unwrap();
    assert!(
        failed.starts_with("us-east-1: Throttled: ") && failed.contains("DescribeDBInstances"),
        "{failed}"
    );
    assert_eq!((deletes, sessions), (1, 1));
}

#[tokio::test]
async fn a_serverless_v2_clusters_capacity_range_goes_with_its_restore() {
    let mut serverless = aurora_cluster(AURORA, "available", &["orders-aurora-a"]);
    serverless.serverless_v2_scaling_configuration = Some(
        aws_sdk_rds::types::ServerlessV2ScalingConfigurationInfo::builder()
            .min_capacity(0.5)
            .max_capacity(8.0)
            .build(),
    );
    let original = cluster_described(serverless);
    let writer = instance_described(aurora_instance("orders-aurora-a", AURORA, "available", "db.serverless"));
    let restores = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .match_requests(|r| {
            r.serverless_v2_scaling_configuration()
                .is_some_and(|scaling| (scaling.min_capacity(), scaling.max_capacity()) == (Some(0.5), Some(8.0)))
        })
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());

    let record = restore_aurora(&config(0), &[&original, &writer], &restores)
        .await
        .unwrap();

    assert_eq!(record.writer.unwrap().instance_class, "db.serverless");
    assert_eq!(restores.num_calls(), 1);

    // db.serverless for a cluster with no capacity range to restore with: RDS would refuse the
    // writer once the cluster is restored, so nothing is.
    let provisioned = cluster_described(aurora_cluster(AURORA, "available", &[]));
    let mut asks_serverless = config(0);
    asks_serverless.drill.instance_class = Some("db.serverless".into());
    let err = restore_aurora(&asks_serverless, &[&provisioned], &restores)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "RestoreRefused");
    assert!(err.to_string().contains("Serverless v2 capacity range"), "{err}");
    assert_eq!(restores.num_calls(), 1);
}

#[tokio::test]
async fn a_retried_aurora_restore_with_no_writer_class_fails_and_leaves_its_cluster_to_the_sweep() {
    let mut ours = aurora_cluster(AURORA_DRILL, "creating", &[]);
    ours.tag_list = Some(vec![
        tag(backup_core::drill::DRILL, INSTANCE),
        tag(backup_core::tags::EXECUTION, EXECUTION),
    ]);
    let ours = cluster_described(ours);
    let no_writer = cluster_described(aurora_cluster(AURORA, "available", &[]));
    let never = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());

    let err = restore_aurora(&config(0), &[&ours, &no_writer], &never)
        .await
        .unwrap_err();

    // Not "refused" (that says nothing was created): the cluster is there.
    assert_eq!(err.error_type().as_str(), "RestoreFailed");
    assert!(
        err.to_string()
            .contains("restored, without a writer: restore_drill.instance_class is needed"),
        "{err}"
    );
    assert_eq!(never.num_calls(), 0);
}
