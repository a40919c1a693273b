//! The handlers, through the real SDK, against moto: snapshot -> wait -> copy
//! to a second region -> export -> prune -> notify, then the emulator's state
//! is checked. Each test uses its own identifiers and module instance marker,
//! so tests running side by side see each other's snapshots only as foreign.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_rds::types::Tag;
use backup_core::config::ModuleSettings;
use backup_core::types::{DatabaseKind, KeepReason};
use backup_core::{naming, tags};
use chrono::Utc;
use integration_tests::*;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PROJECT: &str = "nestedphoenix";
const ENVIRONMENT: &str = "production";

/// The module environment every function of one test shares.
struct Module {
    instance: String,
    settings: ModuleSettings,
}

impl Module {
    fn new(prefix: &str) -> Self {
        let instance = format!("{prefix}-backup");
        let settings = ModuleSettings::from_env(&env(&Self::pairs(&instance))).unwrap();
        Module { instance, settings }
    }

    fn pairs(instance: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("PROJECT_NAME", PROJECT),
            ("ENVIRONMENT", ENVIRONMENT),
            ("BACKUP_INSTANCE", instance),
            ("ADDITIONAL_TAGS", r#"{"Owner":"DBA Team"}"#),
        ]
    }

    fn env(&self, extra: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        let mut pairs = Self::pairs(&self.instance);
        pairs.extend_from_slice(extra);
        env(&pairs)
    }

    /// Runs `copy` of this module into the destination region, with `kms_key` there.
    async fn copy(
        &self,
        sdk: &aws_config::SdkConfig,
        kms_key: &str,
        event: Value,
    ) -> Result<backup_core::types::SnapshotRecord, backup_core::Error> {
        let copy_env = self.env(&[
            ("COPY_DESTINATION_REGION", DESTINATION_REGION),
            ("COPY_KMS_KEY_ARN", kms_key),
        ]);
        let copy_config = backup_copy::Config::from_env(&copy_env).unwrap();
        let clients = backup_copy::Clients::new(sdk, DESTINATION_REGION).unwrap();
        backup_copy::handle(&clients, &copy_config, event).await
    }
}

/// A run that started 40 days from now: every snapshot made today is past a
/// 30-day retention for it (moto cannot backdate snapshots).
fn execution(prefix: &str) -> (Value, chrono::DateTime<Utc>) {
    let start = Utc::now() + chrono::Duration::days(40);
    let execution = json!({
        "execution_id": format!("arn:aws:states:us-east-1:123456789012:execution:{prefix}-backup:scheduled"),
        "execution_start_time": start.to_rfc3339(),
    });
    (execution, start)
}

async fn sink() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_full_run_backs_up_copies_exports_prunes_and_notifies() {
    let sdk = sdk_config().await;
    let p = unique("full");
    let module = Module::new(&p);
    let (db1, db2) = (format!("{p}-db1"), format!("{p}-db2"));
    let rds = aws_sdk_rds::Client::new(&sdk);
    let west = backup_core::rds::Rds::in_region(&sdk, DESTINATION_REGION).client;
    create_instance(&rds, &db1, "postgres").await;
    create_instance(&rds, &db2, "mysql").await;
    let west_key = create_kms_key(&sdk, DESTINATION_REGION).await;
    let east_key = create_kms_key(&sdk, SOURCE_REGION).await;

    // Earlier backups by this module, a DBA's own snapshot, and one of another
    // module instance (staging) of the same database.
    for i in 1..=3 {
        let tags = tags::snapshot_tags(&module.settings, &db1, "earlier-run");
        create_snapshot(&rds, &db1, &format!("{db1}-old-{i}"), tags).await;
    }
    create_snapshot(
        &rds,
        &db1,
        &format!("{db1}-by-dba"),
        vec![Tag::builder().key("Owner").value("dba").build()],
    )
    .await;
    let mut staging = module.settings.clone();
    staging.instance = format!("{p}-staging");
    create_snapshot(
        &rds,
        &db1,
        &format!("{db1}-staging"),
        tags::snapshot_tags(&staging, &db1, "x"),
    )
    .await;

    let (execution, start) = execution(&p);
    let snapshot_clients = backup_snapshot::Clients::new(&sdk).unwrap();
    let snapshot_config = backup_snapshot::Config::from_env(&module.env(&[])).unwrap();
    let wait_clients = backup_wait_for_available::Clients::new(sdk.clone()).unwrap();
    let copy_env = module.env(&[
        ("COPY_DESTINATION_REGION", DESTINATION_REGION),
        ("COPY_KMS_KEY_ARN", &west_key),
    ]);
    let copy_config = backup_copy::Config::from_env(&copy_env).unwrap();
    let copy_clients = backup_copy::Clients::new(&sdk, &copy_config.destination_region).unwrap();
    let bucket = format!("{p}-exports");
    let export_env = module.env(&[
        ("EXPORT_BUCKET", &bucket),
        (
            "EXPORT_ROLE_ARN",
            "arn:aws:iam::123456789012:role/nestedphoenix-production-export",
        ),
        ("EXPORT_KMS_KEY_ARN", &east_key),
    ]);
    let export_config = backup_export::Config::from_env(&export_env).unwrap();
    let export_clients = backup_export::Clients::new(&sdk).unwrap();

    let mut results = Vec::new();
    for db in [&db1, &db2] {
        let snapshot = backup_snapshot::handle(
            &snapshot_clients,
            &snapshot_config,
            json!({"db_identifier": db, "execution": execution}),
        )
        .await
        .unwrap();
        assert!(snapshot.created);
        assert_eq!(snapshot.snapshot_id, naming::snapshot_id(db, start));
        let poll = json!({"resource": "db_snapshot", "snapshot_id": snapshot.snapshot_id});
        assert!(
            backup_wait_for_available::handle(&wait_clients, poll)
                .await
                .unwrap()
                .ready
        );

        let task = json!({"snapshot": snapshot, "execution": execution});
        let copy = backup_copy::handle(&copy_clients, &copy_config, task.clone())
            .await
            .unwrap();
        assert_eq!(copy.region, DESTINATION_REGION);
        let poll = json!({"resource": "db_snapshot", "snapshot_id": copy.snapshot_id, "region": DESTINATION_REGION});
        let polled = backup_wait_for_available::handle(&wait_clients, poll).await.unwrap();
        assert!(polled.ready && polled.region == DESTINATION_REGION);

        let export = backup_export::handle(&export_clients, &export_config, task)
            .await
            .unwrap();
        let poll = json!({"resource": "export_task", "export_task_id": export.export_task_id});
        assert!(
            backup_wait_for_available::handle(&wait_clients, poll)
                .await
                .unwrap()
                .ready
        );

        results.push(json!({"db_identifier": db, "snapshot": snapshot, "copy": copy, "export": export, "completed_at": Utc::now()}));
    }

    // A retry of the same execution finds its own snapshot instead of failing.
    let again = backup_snapshot::handle(
        &snapshot_clients,
        &snapshot_config,
        json!({"db_identifier": db1, "execution": execution}),
    )
    .await
    .unwrap();
    assert!(!again.created);

    let prune_env = module.env(&[
        ("RETENTION_DAYS", "30"),
        ("MIN_SNAPSHOTS_TO_KEEP", "1"),
        ("COPY_DESTINATION_REGION", DESTINATION_REGION),
    ]);
    let prune_config = backup_prune::Config::from_env(&prune_env).unwrap();
    let prune_clients = backup_prune::Clients::new(&sdk, &prune_config).unwrap();
    let prune = backup_prune::handle(&prune_clients, &prune_config, json!({"execution": execution}), None)
        .await
        .unwrap();
    let east = &prune.regions[0];
    let mut deleted = east.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        [format!("{db1}-old-1"), format!("{db1}-old-2"), format!("{db1}-old-3")]
    );
    assert_eq!(prune.regions[1].region, DESTINATION_REGION);
    assert_eq!(prune.regions[1].deleted_count, 0);
    let kept_new = east
        .kept
        .iter()
        .find(|k| k.snapshot_id == naming::snapshot_id(&db1, start))
        .unwrap();
    assert_eq!(kept_new.reason, KeepReason::NewestOfDatabase);

    // Pruning again changes nothing.
    let again = backup_prune::handle(&prune_clients, &prune_config, json!({"execution": execution}), None)
        .await
        .unwrap();
    assert_eq!(again.regions.iter().map(|r| r.deleted_count).sum::<usize>(), 0);

    // Notify: SNS delivered to an HTTP subscriber, Slack to a local sink, metrics to CloudWatch.
    let (sns_sink, slack_sink) = (sink().await, sink().await);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(format!("{p}-notifications"))
        .send()
        .await
        .unwrap();
    let topic_arn = topic.topic_arn().unwrap().to_owned();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(format!("{}/sns", sns_sink.uri()))
        .send()
        .await
        .unwrap();
    let namespace = format!("IntegrationTest/{p}");
    let slack_url = format!("{}/services/T/B/X", slack_sink.uri());
    // Each database's result is the output of its own execution, which notify reads.
    let (database_machine, runs) = database_executions(&sdk, &format!("{p}-database"), &results).await;
    let notify_env = module.env(&[
        ("SNS_TOPIC_ARN", &topic_arn),
        ("SLACK_WEBHOOK_URL", &slack_url),
        ("METRICS_NAMESPACE", &namespace),
        ("DATABASE_STATE_MACHINE_ARN", &database_machine),
    ]);
    let notify_config = backup_notify::Config::from_env(&notify_env).unwrap();
    let notify_clients = backup_notify::Clients::new(&sdk, &notify_config).unwrap();
    let summary = backup_notify::handle(
        &notify_clients,
        &notify_config,
        json!({"execution": execution, "results": runs, "prune": prune}),
    )
    .await
    .unwrap();
    assert_eq!(summary.status, "SUCCEEDED");
    assert_eq!((summary.succeeded, summary.failed), (results.len(), 0));
    assert_eq!(summary.slack, backup_notify::SlackDelivery::Delivered);

    // The emulator's state, region by region.
    let east_snapshots = manual_snapshots(&rds, &p).await;
    let new1 = naming::snapshot_id(&db1, start);
    let new2 = naming::snapshot_id(&db2, start);
    let mut expected = vec![
        new1.clone(),
        new2.clone(),
        format!("{db1}-by-dba"),
        format!("{db1}-staging"),
    ];
    expected.sort();
    assert_eq!(ids(&east_snapshots), expected);
    let taken = east_snapshots.iter().find(|s| s.snapshot_id == new1).unwrap();
    assert_eq!(
        tags::tag_value(&taken.tags, tags::MANAGED_BY),
        Some(module.instance.as_str())
    );
    assert_eq!(tags::tag_value(&taken.tags, tags::SOURCE_DB), Some(db1.as_str()));
    assert_eq!(
        tags::tag_value(&taken.tags, tags::EXECUTION),
        execution["execution_id"].as_str()
    );
    assert_eq!(tags::tag_value(&taken.tags, tags::PROJECT), Some(PROJECT));
    assert_eq!(tags::tag_value(&taken.tags, "Owner"), Some("DBA Team"));

    let west_snapshots = manual_snapshots(&west, &p).await;
    assert_eq!(ids(&west_snapshots), [new1.as_str(), new2.as_str()]);
    let copied = &west_snapshots[0];
    assert_eq!(
        tags::tag_value(&copied.tags, tags::COPIED_FROM),
        Some(taken.arn.as_str())
    );
    assert_eq!(
        tags::tag_value(&copied.tags, tags::MANAGED_BY),
        Some(module.instance.as_str())
    );
    let copy_key = west
        .describe_db_snapshots()
        .db_snapshot_identifier(&new1)
        .send()
        .await
        .unwrap();
    assert_eq!(copy_key.db_snapshots()[0].kms_key_id(), Some(west_key.as_str()));

    let task = rds
        .describe_export_tasks()
        .export_task_identifier(naming::export_task_id(&new1))
        .send()
        .await
        .unwrap();
    let task = &task.export_tasks()[0];
    assert_eq!(task.s3_bucket(), Some(bucket.as_str()));
    assert_eq!(
        task.s3_prefix(),
        Some(naming::export_prefix(PROJECT, ENVIRONMENT, &db1, start).as_str())
    );
    assert_eq!(task.source_arn(), Some(taken.arn.as_str()));

    // SNS, as the HTTP subscriber received it.
    let delivered = sns_sink.received_requests().await.unwrap();
    assert_eq!(delivered.len(), 1);
    let notification: Value = serde_json::from_slice(&delivered[0].body).unwrap();
    assert_eq!(notification["Type"], "Notification");
    assert_eq!(
        notification["Subject"],
        "[SUCCEEDED] nestedphoenix production: 2 of 2 database backups succeeded"
    );
    let message = notification["Message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "OK      {db1} snapshot {new1} (us-east-1); copy {new1} in us-west-2"
        )),
        "{message}"
    );
    assert!(message.contains("retention in us-east-1: deleted 3"), "{message}");
    assert_eq!(slack_sink.received_requests().await.unwrap().len(), 1);

    // Metrics: the aggregate and one series per database.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
    let listed = cloudwatch.list_metrics().namespace(&namespace).send().await.unwrap();
    for name in ["BackupSuccess", "BackupFailure", "BackupDuration", "SnapshotAge"] {
        for db in [&db1, &db2] {
            let found = listed.metrics().iter().any(|m| {
                m.metric_name() == Some(name) && m.dimensions().iter().any(|d| d.value() == Some(db.as_str()))
            });
            assert!(found, "{name} for {db}");
        }
    }
    let success = cloudwatch
        .get_metric_statistics()
        .namespace(&namespace)
        .metric_name("BackupSuccess")
        .dimensions(Dimension::builder().name("DatabaseIdentifier").value(&db2).build())
        .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            Utc::now().timestamp() - 3600,
        ))
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            Utc::now().timestamp() + 3600,
        ))
        .period(3600)
        .statistics(Statistic::Sum)
        .send()
        .await
        .unwrap();
    assert_eq!(success.datapoints().iter().filter_map(|d| d.sum()).sum::<f64>(), 1.0);
}

#[tokio::test]
async fn an_aurora_cluster_is_snapshotted_copied_and_pruned_as_a_cluster() {
    let sdk = sdk_config().await;
    let p = unique("aurora");
    let module = Module::new(&p);
    let cluster = format!("{p}-cluster");
    let rds = aws_sdk_rds::Client::new(&sdk);
    rds.create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .storage_encrypted(true)
        .send()
        .await
        .unwrap();
    let west_key = create_kms_key(&sdk, DESTINATION_REGION).await;
    let (execution, start) = execution(&p);

    let snapshot_config = backup_snapshot::Config::from_env(&module.env(&[])).unwrap();
    let snapshot = backup_snapshot::handle(
        &backup_snapshot::Clients::new(&sdk).unwrap(),
        &snapshot_config,
        json!({"db_identifier": cluster, "execution": execution}),
    )
    .await
    .unwrap();
    assert_eq!(snapshot.kind, DatabaseKind::Cluster);
    assert_eq!(snapshot.engine, "aurora-postgresql");

    let wait_clients = backup_wait_for_available::Clients::new(sdk.clone()).unwrap();
    let poll = json!({"resource": "cluster_snapshot", "snapshot_id": snapshot.snapshot_id});
    assert!(
        backup_wait_for_available::handle(&wait_clients, poll)
            .await
            .unwrap()
            .ready
    );

    let copy = module
        .copy(&sdk, &west_key, json!({"snapshot": snapshot, "execution": execution}))
        .await
        .unwrap();
    assert_eq!(
        (copy.kind, copy.region.as_str()),
        (DatabaseKind::Cluster, DESTINATION_REGION)
    );

    let west = backup_core::rds::Rds::in_region(&sdk, DESTINATION_REGION).client;
    let copies = west
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(naming::snapshot_id(&cluster, start))
        .send()
        .await
        .unwrap();
    let copied = &copies.db_cluster_snapshots()[0];
    assert_eq!(
        tags::tag_value(copied.tag_list(), tags::MANAGED_BY),
        Some(module.instance.as_str())
    );

    // The only snapshot of the cluster is its newest: prune keeps it.
    let prune_config = backup_prune::Config::from_env(&module.env(&[("MIN_SNAPSHOTS_TO_KEEP", "1")])).unwrap();
    let prune = backup_prune::handle(
        &backup_prune::Clients::new(&sdk, &prune_config).unwrap(),
        &prune_config,
        json!({"execution": execution}),
        None,
    )
    .await
    .unwrap();
    let kept = prune.regions[0]
        .kept
        .iter()
        .find(|k| k.snapshot_id == snapshot.snapshot_id)
        .unwrap();
    assert_eq!(kept.reason, KeepReason::NewestOfDatabase);
    assert_eq!(prune.regions[0].deleted_count, 0);
}

#[tokio::test]
async fn refusals_name_the_database_and_leave_nothing_behind() {
    let sdk = sdk_config().await;
    let p = unique("refuse");
    let module = Module::new(&p);
    let rds = aws_sdk_rds::Client::new(&sdk);
    let clients = backup_snapshot::Clients::new(&sdk).unwrap();
    let config = backup_snapshot::Config::from_env(&module.env(&[])).unwrap();
    let (execution, _) = execution(&p);
    let snapshot =
        |db: String| backup_snapshot::handle(&clients, &config, json!({"db_identifier": db, "execution": execution}));

    let err = snapshot(format!("{p}-missing")).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "DatabaseNotFound");
    assert!(err.to_string().contains(&format!("{p}-missing")), "{err}");

    // moto would snapshot an Aurora member instance; RDS refuses, and so do we.
    let cluster = format!("{p}-cluster");
    rds.create_db_cluster()
        .db_cluster_identifier(&cluster)
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier(format!("{p}-member"))
        .db_cluster_identifier(&cluster)
        .engine("aurora-mysql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap();
    let err = snapshot(format!("{p}-member")).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "DatabaseNotAvailable");
    assert!(err.to_string().contains(&cluster), "{err}");

    let stopped = format!("{p}-stopped");
    create_instance(&rds, &stopped, "postgres").await;
    rds.stop_db_instance()
        .db_instance_identifier(&stopped)
        .send()
        .await
        .unwrap();
    let err = snapshot(stopped).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "DatabaseNotAvailable");
    assert!(err.to_string().contains("stopped"), "{err}");

    assert!(manual_snapshots(&rds, &p).await.is_empty(), "no snapshot was created");

    // A destination key that does not exist: the copy is refused, nothing is created.
    let db = format!("{p}-db");
    create_instance(&rds, &db, "postgres").await;
    let taken = snapshot(db.clone()).await.unwrap();
    let missing_key = "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000";
    let err = module
        .copy(&sdk, missing_key, json!({"snapshot": taken, "execution": execution}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "AccessDenied");
    assert!(err.to_string().contains("KMSKeyNotAccessibleFault"), "{err}");
    let west = backup_core::rds::Rds::in_region(&sdk, DESTINATION_REGION).client;
    assert!(manual_snapshots(&west, &p).await.is_empty());
}

#[tokio::test]
async fn a_dry_run_reports_what_it_would_delete_and_deletes_nothing() {
    let sdk = sdk_config().await;
    let p = unique("dry");
    let module = Module::new(&p);
    let rds = aws_sdk_rds::Client::new(&sdk);
    let db = format!("{p}-db");
    create_instance(&rds, &db, "mysql").await;
    for i in 1..=3 {
        create_snapshot(
            &rds,
            &db,
            &format!("{db}-{i}"),
            tags::snapshot_tags(&module.settings, &db, "earlier"),
        )
        .await;
        // moto's creation times have microsecond resolution; keep them distinct.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (execution, _) = execution(&p);
    let config =
        backup_prune::Config::from_env(&module.env(&[("DRY_RUN", "true"), ("MIN_SNAPSHOTS_TO_KEEP", "1")])).unwrap();
    let result = backup_prune::handle(
        &backup_prune::Clients::new(&sdk, &config).unwrap(),
        &config,
        json!({"execution": execution}),
        None,
    )
    .await
    .unwrap();

    let mut would = result.regions[0].would_delete.clone();
    would.sort();
    assert_eq!(would, [format!("{db}-1"), format!("{db}-2")]);
    assert_eq!(manual_snapshots(&rds, &p).await.len(), 3);
}
