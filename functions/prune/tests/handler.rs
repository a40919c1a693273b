//! The prune handler against mocked RDS clients of both regions. A deletion of
//! any snapshot not expected by a test matches no rule and panics the test.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDbSnapshotOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::describe_export_tasks::DescribeExportTasksOutput;
use aws_sdk_rds::types::{DbSnapshot, ExportTask, Tag};
use aws_smithy_mocks::{Rule, mock};
use backup_core::retention::RetentionPolicy;
use backup_core::testing::{self, fixture, http_status, mock_rds_in, rds_error};
use backup_core::types::{KeepReason, PruneResult};
use backup_core::{Error, tags};
use backup_prune::{Clients, Config, handle};
use serde_json::json;

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:rds:{region}:123456789012:snapshot:{id}")
}

/// A manual snapshot `age_days` before the fixture execution started.
fn snapshot(region: &str, id: &str, db: &str, age_days: i64, status: &str, ours: bool) -> DbSnapshot {
    let tags = if ours {
        tags::snapshot_tags(&testing::settings(), db, "earlier-run")
    } else {
        vec![Tag::builder().key("Owner").value("someone else").build()]
    };
    let created = testing::start_time() - chrono::Duration::days(age_days);
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(arn(region, id))
        .db_instance_identifier(db)
        .snapshot_type("manual")
        .status(status)
        .snapshot_create_time(aws_smithy_types::DateTime::from_millis(created.timestamp_millis()))
        .set_tag_list(Some(tags))
        .build()
}

/// DescribeDBSnapshots answering `snapshots` in pages of `page_size`, checking
/// the request asks for manual snapshots in pages of 100.
fn listing(snapshots: Vec<DbSnapshot>, page_size: usize) -> Rule {
    mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.snapshot_type() == Some("manual") && r.max_records() == Some(100))
        .then_compute_output(move |r| {
            let start: usize = r.marker().map_or(0, |m| m.parse().unwrap());
            let end = (start + page_size).min(snapshots.len());
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(snapshots[start..end].to_vec()))
                .set_marker((end < snapshots.len()).then(|| end.to_string()))
                .build()
        })
}

fn no_cluster_snapshots() -> Rule {
    mock!(Client::describe_db_cluster_snapshots).then_output(|| DescribeDbClusterSnapshotsOutput::builder().build())
}

fn export_tasks(tasks: Vec<(&'static str, &'static str)>) -> Rule {
    mock!(Client::describe_export_tasks).then_output(move || {
        let mut out = DescribeExportTasksOutput::builder();
        for (source, status) in &tasks {
            out = out.export_tasks(ExportTask::builder().source_arn(*source).status(*status).build());
        }
        out.build()
    })
}

/// DeleteDBSnapshot accepting only `allowed` ids and recording what it deleted.
fn deletions(allowed: &[&str]) -> (Rule, Arc<Mutex<Vec<String>>>) {
    let allowed: HashSet<String> = allowed.iter().map(|s| s.to_string()).collect();
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let record = deleted.clone();
    let rule = mock!(Client::delete_db_snapshot)
        .match_requests(move |r| allowed.contains(r.db_snapshot_identifier().unwrap_or_default()))
        .then_compute_output(move |r| {
            record
                .lock()
                .unwrap()
                .push(r.db_snapshot_identifier().unwrap().to_owned());
            DeleteDbSnapshotOutput::builder().build()
        });
    (rule, deleted)
}

fn config() -> Config {
    Config {
        settings: testing::settings(),
        retention_days: 30,
        min_snapshots_to_keep: 2,
        dry_run: false,
        destination_region: Some("us-west-2".into()),
        max_snapshot_age_hours: None,
        retention_policy: None,
        copy_retention_policy: None,
        prune_guard_fraction: 1.0,
        export_bucket: None,
        copied_from_account: None,
    }
}

fn clients(source: &[&Rule], destination: Option<&[&Rule]>) -> Clients {
    Clients {
        source: mock_rds_in("us-east-1", source),
        destination: destination.map(|rules| mock_rds_in("us-west-2", rules)),
        s3: None,
    }
}

fn source_only() -> Config {
    Config {
        destination_region: None,
        ..config()
    }
}

async fn run(clients: &Clients, config: &Config) -> Result<PruneResult, Error> {
    handle(clients, config, fixture("prune-request.json"), None).await
}

#[tokio::test]
async fn deletes_only_own_expired_snapshots_across_pages_and_keeps_the_newest() {
    // 250 snapshots over three pages: ours of db1 aged 0..=124 days, foreign
    // ones of db1 of the same ages.
    let mut all = Vec::new();
    for age in 0..125 {
        all.push(snapshot(
            "us-east-1",
            &format!("db1-ours-{age}"),
            "db1",
            age,
            "available",
            true,
        ));
        all.push(snapshot(
            "us-east-1",
            &format!("db1-foreign-{age}"),
            "db1",
            age,
            "available",
            false,
        ));
    }
    let expired: Vec<String> = (31..125).map(|age| format!("db1-ours-{age}")).collect();
    let expired_refs: Vec<&str> = expired.iter().map(String::as_str).collect();
    let (list, clusters, exports, (delete, deleted)) = (
        listing(all, 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&expired_refs),
    );

    let result = run(&clients(&[&list, &clusters, &exports, &delete], None), &source_only())
        .await
        .unwrap();

    assert_eq!(list.num_calls(), 3, "three pages of 100");
    let region = &result.regions[0];
    assert_eq!(region.region, "us-east-1");
    assert_eq!(region.deleted_count, 94);
    assert_eq!(region.ignored_count, 125);
    assert_eq!(region.kept_count, 31);
    assert_eq!(region.deleted.len(), 94);
    assert!(!region.truncated);
    let deleted: HashSet<String> = deleted.lock().unwrap().iter().cloned().collect();
    assert_eq!(deleted, expired.into_iter().collect());
    assert_eq!(result.cutoff, testing::start_time() - chrono::Duration::days(30));
}

#[tokio::test]
async fn in_the_vault_only_copies_rds_records_as_made_from_the_source_account_are_ours() {
    // The vault's copies of db1, all past retention: two copied from the source account
    // (RDS names their source), one the vault's administrator made and one copied from a
    // third account, both carrying our tags (the source's role can tag vault snapshots),
    // and an older one from the source whose source-db tag was moved to db2.
    let copied_from = |id: &str, age_days: i64, account: Option<&str>| {
        let mut copy = snapshot("us-east-1", id, "db1", age_days, "available", true);
        copy.source_db_snapshot_identifier =
            account.map(|account| format!("arn:aws:rds:us-east-1:{account}:snapshot:{id}"));
        copy
    };
    let mut moved = copied_from("db1-tagged-as-db2", 70, Some("123456789012"));
    moved.tag_list = Some(tags::snapshot_tags(&testing::settings(), "db2", "earlier-run"));
    let all = vec![
        snapshot("us-east-1", "db1-newest", "db1", 1, "available", true),
        copied_from("db1-copy-a", 60, Some("123456789012")),
        copied_from("db1-copy-b", 60, Some("123456789012")),
        copied_from("db1-made-in-the-vault", 60, None),
        copied_from("db1-from-elsewhere", 60, Some("444455556666")),
        moved,
    ];
    let (list, clusters, exports, (delete, deleted)) = (
        listing(all, 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&["db1-copy-a", "db1-copy-b", "db1-tagged-as-db2"]),
    );
    let vault = Config {
        min_snapshots_to_keep: 1,
        copied_from_account: Some("123456789012".into()),
        ..source_only()
    };

    let result = run(&clients(&[&list, &clusters, &exports, &delete], None), &vault)
        .await
        .unwrap();

    // The newest counts as ours only if RDS records it as copied from the source: it is not, so
    // the newest copy made from the source (copy-b, by id) is kept in its place. The copy whose
    // tag says db2 is db1's for RDS: an older one of db1, it goes.
    let mut deleted = deleted.lock().unwrap().clone();
    deleted.sort();
    assert_eq!(deleted, ["db1-copy-a", "db1-tagged-as-db2"]);
    let kept: Vec<_> = result.regions[0].kept.iter().map(|k| k.snapshot_id.as_str()).collect();
    assert_eq!(kept, ["db1-copy-b"]);
}

#[tokio::test]
async fn keeps_the_newest_n_of_each_database_even_past_retention() {
    let all = vec![
        snapshot("us-east-1", "db1-a", "db1", 40, "available", true),
        snapshot("us-east-1", "db1-b", "db1", 50, "available", true),
        snapshot("us-east-1", "db1-c", "db1", 60, "available", true),
        snapshot("us-east-1", "db2-a", "db2", 90, "available", true),
    ];
    let (list, clusters, exports, (delete, deleted)) = (
        listing(all, 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&["db1-c"]),
    );

    let result = run(&clients(&[&list, &clusters, &exports, &delete], None), &source_only())
        .await
        .unwrap();

    assert_eq!(*deleted.lock().unwrap(), ["db1-c"]);
    let kept: Vec<_> = result.regions[0]
        .kept
        .iter()
        .map(|k| (k.snapshot_id.as_str(), k.reason))
        .collect();
    assert_eq!(
        kept,
        [
            ("db1-a", KeepReason::NewestOfDatabase),
            ("db1-b", KeepReason::NewestOfDatabase),
            ("db2-a", KeepReason::NewestOfDatabase)
        ]
    );
}

#[tokio::test]
async fn sources_of_running_copies_and_exports_are_kept_in_both_regions() {
    let source = vec![
        snapshot("us-east-1", "new-1", "db1", 0, "available", true),
        snapshot("us-east-1", "new-2", "db1", 1, "available", true),
        snapshot("us-east-1", "being-copied", "db1", 45, "available", true),
        snapshot("us-east-1", "being-exported", "db1", 46, "available", true),
        snapshot("us-east-1", "expired", "db1", 47, "available", true),
    ];
    // The unfinished copy in the destination names its source by tag.
    let mut copying = snapshot("us-west-2", "being-copied", "db1", 0, "copying", true);
    copying.tag_list.get_or_insert_default().push(
        Tag::builder()
            .key(tags::COPIED_FROM)
            .value(arn("us-east-1", "being-copied"))
            .build(),
    );
    let destination = vec![
        copying,
        snapshot("us-west-2", "west-new-1", "db1", 1, "available", true),
        snapshot("us-west-2", "west-new-2", "db1", 2, "available", true),
        snapshot("us-west-2", "west-expired", "db1", 100, "available", true),
        snapshot("us-west-2", "west-foreign", "db1", 100, "available", false),
    ];
    let export_source = Box::leak(arn("us-east-1", "being-exported").into_boxed_str());
    let (list, clusters, running, (delete, deleted)) = (
        listing(source, 100),
        no_cluster_snapshots(),
        export_tasks(vec![
            (export_source, "IN_PROGRESS"),
            ("arn:aws:rds:us-east-1:123456789012:snapshot:expired", "COMPLETE"),
        ]),
        deletions(&["expired"]),
    );
    let (west_list, west_clusters, west_exports, (west_delete, west_deleted)) = (
        listing(destination, 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&["west-expired"]),
    );
    let clients = clients(
        &[&list, &clusters, &running, &delete],
        Some(&[&west_list, &west_clusters, &west_exports, &west_delete]),
    );

    let result = run(&clients, &config()).await.unwrap();

    assert_eq!(*deleted.lock().unwrap(), ["expired"]);
    assert_eq!(*west_deleted.lock().unwrap(), ["west-expired"]);
    let reasons: Vec<_> = result.regions[0]
        .kept
        .iter()
        .map(|k| (k.snapshot_id.as_str(), k.reason))
        .collect();
    assert!(reasons.contains(&("being-copied", KeepReason::InFlight)), "{reasons:?}");
    assert!(
        reasons.contains(&("being-exported", KeepReason::InFlight)),
        "{reasons:?}"
    );
    assert_eq!(result.regions[1].region, "us-west-2");
    assert_eq!(result.regions[1].ignored_count, 1);
    let west: Vec<_> = result.regions[1]
        .kept
        .iter()
        .map(|k| (k.snapshot_id.as_str(), k.reason))
        .collect();
    assert!(west.contains(&("being-copied", KeepReason::NotAvailable)), "{west:?}");
}

#[tokio::test]
async fn dry_run_reports_without_deleting() {
    let all = vec![
        snapshot("us-east-1", "a", "db1", 0, "available", true),
        snapshot("us-east-1", "b", "db1", 1, "available", true),
        snapshot("us-east-1", "c", "db1", 100, "available", true),
    ];
    // No DeleteDBSnapshot rule: a deletion would panic the test.
    let (list, clusters, exports) = (listing(all, 100), no_cluster_snapshots(), export_tasks(vec![]));
    let mut event = fixture("prune-request.json");
    event["dry_run"] = json!(true);

    let result = handle(
        &clients(&[&list, &clusters, &exports], None),
        &source_only(),
        event,
        None,
    )
    .await
    .unwrap();

    assert!(result.dry_run);
    assert_eq!(result.regions[0].would_delete, ["c"]);
    assert_eq!(result.regions[0].deleted_count, 0);
}

#[tokio::test]
async fn a_failed_listing_in_the_destination_deletes_nothing_anywhere() {
    let all = vec![
        snapshot("us-east-1", "a", "db1", 0, "available", true),
        snapshot("us-east-1", "b", "db1", 1, "available", true),
        snapshot("us-east-1", "c", "db1", 100, "available", true),
    ];
    let (list, clusters, exports) = (listing(all, 100), no_cluster_snapshots(), export_tasks(vec![]));
    // The destination's DB snapshot listing fails; its other listings answer. No deletion
    // rule exists: a deletion anywhere would fail the test.
    let west_list = mock!(Client::describe_db_snapshots).then_http_response(|| http_status(503));
    let (west_clusters, west_exports) = (no_cluster_snapshots(), export_tasks(vec![]));
    let clients = clients(
        &[&list, &clusters, &exports],
        Some(&[&west_list, &west_clusters, &west_exports]),
    );

    let err = run(&clients, &config()).await.unwrap_err();

    assert_eq!(err.error_type().as_str(), "AwsUnavailable");
    assert!(err.to_string().contains("DescribeDBSnapshots"), "{err}");
}

#[tokio::test]
async fn throttled_deletions_abort_for_a_retry_and_refusals_are_reported() {
    let all = || {
        vec![
            snapshot("us-east-1", "a", "db1", 0, "available", true),
            snapshot("us-east-1", "b", "db1", 1, "available", true),
            snapshot("us-east-1", "c", "db1", 100, "available", true),
            snapshot("us-east-1", "d", "db1", 101, "available", true),
        ]
    };
    let (list, clusters, exports) = (listing(all(), 100), no_cluster_snapshots(), export_tasks(vec![]));
    let throttled =
        mock!(Client::delete_db_snapshot).then_http_response(|| rds_error(400, "Throttling", "Rate exceeded"));
    let err = run(
        &clients(&[&list, &clusters, &exports, &throttled], None),
        &source_only(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "Throttled");
    assert!(err.error_type().is_retryable());

    let (list, clusters, exports) = (listing(all(), 100), no_cluster_snapshots(), export_tasks(vec![]));
    let refuse_c = mock!(Client::delete_db_snapshot)
        .match_requests(|r| r.db_snapshot_identifier() == Some("c"))
        .then_http_response(|| rds_error(400, "InvalidDBSnapshotState", "Cannot delete a snapshot being shared"));
    let (delete_d, deleted) = deletions(&["d"]);
    let result = run(
        &clients(&[&list, &clusters, &exports, &refuse_c, &delete_d], None),
        &source_only(),
    )
    .await
    .unwrap();
    let region = &result.regions[0];
    assert_eq!(*deleted.lock().unwrap(), ["d"]);
    assert_eq!(region.failed_count, 1);
    assert_eq!(region.failed[0].snapshot_id, "c");
    assert!(region.failed[0].error.contains("InvalidDBSnapshotState"));
}

#[tokio::test]
async fn a_near_deadline_defers_deletions_to_the_next_run() {
    let all = vec![
        snapshot("us-east-1", "a", "db1", 0, "available", true),
        snapshot("us-east-1", "b", "db1", 1, "available", true),
        snapshot("us-east-1", "c", "db1", 100, "available", true),
    ];
    let (list, clusters, exports) = (listing(all, 100), no_cluster_snapshots(), export_tasks(vec![]));
    let deadline = SystemTime::now() + Duration::from_secs(5);

    let result = handle(
        &clients(&[&list, &clusters, &exports], None),
        &source_only(),
        fixture("prune-request.json"),
        Some(deadline),
    )
    .await
    .unwrap();

    assert_eq!(result.regions[0].deferred_count, 1);
    assert_eq!(result.regions[0].deleted_count, 0);
}

#[tokio::test]
async fn per_run_overrides_apply_and_the_destination_can_be_skipped() {
    // Overrides: retention 7 days, keep 2, dry run, destination listed (for
    // in-flight copies) but not pruned. Start time 2026-11-24T09:15Z.
    let all = vec![
        snapshot("us-east-1", "a", "db1", 0, "available", true),
        snapshot("us-east-1", "b", "db1", 1, "available", true),
        snapshot("us-east-1", "c", "db1", 10, "available", true),
    ];
    let (list, clusters, exports) = (listing(all, 100), no_cluster_snapshots(), export_tasks(vec![]));
    let (west_list, west_clusters, west_exports) = (listing(vec![], 100), no_cluster_snapshots(), export_tasks(vec![]));
    let clients = clients(
        &[&list, &clusters, &exports],
        Some(&[&west_list, &west_clusters, &west_exports]),
    );

    let result = handle(&clients, &config(), fixture("prune-request-overrides.json"), None)
        .await
        .unwrap();

    assert_eq!(
        (result.retention_days, result.min_snapshots_to_keep, result.dry_run),
        (7, 2, true)
    );
    assert_eq!(result.regions.len(), 1);
    assert_eq!(result.regions[0].would_delete, ["c"]);
    assert_eq!(
        west_list.num_calls(),
        1,
        "the destination is still read for in-flight copies"
    );
}

#[tokio::test]
async fn unsafe_or_malformed_input_is_refused_before_any_call() {
    let cases = [
        (json!({"retention_days": 0}), "input retention_days is invalid"),
        (json!({"retention_days": -3}), "input retention_days is invalid"),
        (
            json!({"min_snapshots_to_keep": 0}),
            "input min_snapshots_to_keep is invalid",
        ),
        (json!({"dry_run": "yes"}), "input dry_run is invalid"),
        (json!({"retention": 3}), "input retention is invalid: unknown field"),
    ];
    for (extra, expected) in cases {
        let mut event = fixture("prune-request.json");
        event
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let err = handle(&clients(&[], None), &source_only(), event, None)
            .await
            .unwrap_err();
        assert_eq!(err.error_type().as_str(), "InvalidInput");
        assert!(err.to_string().starts_with(expected), "{err}");
    }
}

#[test]
fn configuration_is_checked_and_names_the_variable() {
    let base = [
        ("PROJECT_NAME", "nestedphoenix"),
        ("ENVIRONMENT", "production"),
        ("BACKUP_INSTANCE", "nestedphoenix/production/us-east-1"),
        ("RETENTION_DAYS", "90"),
        ("MIN_SNAPSHOTS_TO_KEEP", "3"),
        ("DRY_RUN", "false"),
        ("COPY_DESTINATION_REGION", ""),
        ("MAX_SNAPSHOT_AGE_HOURS", "30"),
        ("RETENTION_POLICY", r#"{"daily": 7, "monthly": 12}"#),
        ("COPY_RETENTION_POLICY", ""),
        ("PRUNE_GUARD_FRACTION", "0.25"),
        ("COPIED_FROM_ACCOUNT", "123456789012"),
    ];
    let config = Config::from_env(&base).unwrap();
    assert_eq!(config.copied_from_account.as_deref(), Some("123456789012"));
    assert_eq!(
        (
            config.retention_policy.map(|p| (p.daily, p.weekly, p.monthly)),
            config.copy_retention_policy
        ),
        (Some((7, 0, 12)), None)
    );
    assert_eq!(config.prune_guard_fraction, 0.25);
    assert_eq!(
        (config.retention_days, config.min_snapshots_to_keep, config.dry_run),
        (90, 3, false)
    );
    assert_eq!(config.destination_region, None);
    assert_eq!(config.max_snapshot_age_hours, Some(30));

    for (name, bad) in [
        ("RETENTION_DAYS", "0"),
        ("RETENTION_DAYS", "thirty"),
        ("MIN_SNAPSHOTS_TO_KEEP", "0"),
        ("DRY_RUN", "maybe"),
        ("COPY_DESTINATION_REGION", "Oregon"),
        ("MAX_SNAPSHOT_AGE_HOURS", "0"),
        ("MAX_SNAPSHOT_AGE_HOURS", "a day"),
        ("RETENTION_POLICY", r#"{"dayly": 7}"#),
        ("RETENTION_POLICY", r#"{"daily": 0}"#),
        ("COPY_RETENTION_POLICY", "7 days"),
        ("PRUNE_GUARD_FRACTION", "0"),
        ("PRUNE_GUARD_FRACTION", "1.5"),
        ("COPIED_FROM_ACCOUNT", "the source"),
    ] {
        let mut env = base;
        env.iter_mut().find(|(k, _)| *k == name).unwrap().1 = bad;
        let err = Config::from_env(&env).unwrap_err().to_string();
        assert!(err.starts_with(&format!("configuration {name} is invalid")), "{err}");
    }
}

#[test]
fn the_configuration_reads_the_environment_the_contract_lists() {
    testing::assert_reads_its_contracted_environment(backup_core::contract::Function::Prune, Config::from_env);
}

#[tokio::test]
async fn a_run_that_would_delete_most_of_a_database_deletes_nothing_until_confirmed() {
    // Five of db1 (two within retention) and one of db2: three of db1's five would go.
    let all = || {
        let mut all: Vec<DbSnapshot> = [10, 20, 40, 50, 60]
            .iter()
            .map(|&age| snapshot("us-east-1", &format!("db1-{age}"), "db1", age, "available", true))
            .collect();
        all.push(snapshot("us-east-1", "db2-90", "db2", 90, "available", true));
        all
    };
    let guarded = Config {
        prune_guard_fraction: 0.5,
        ..source_only()
    };
    let (list, clusters, exports, (delete, deleted)) = (
        listing(all(), 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&["db1-40", "db1-50", "db1-60"]),
    );
    let err = run(&clients(&[&list, &clusters, &exports, &delete], None), &guarded)
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "RetentionChangeUnconfirmed");
    let message = err.to_string();
    assert!(
        message.contains("delete 3 of the 5 snapshots of db1 in us-east-1"),
        "{message}"
    );
    assert!(message.contains(r#""confirm_retention_change": true"#), "{message}");
    assert_eq!(delete.num_calls(), 0, "nothing is deleted");

    // A dry run reports without refusing; a confirmed run deletes.
    let mut request = fixture("prune-request.json");
    request["dry_run"] = json!(true);
    let clients = clients(&[&list, &clusters, &exports, &delete], None);
    let result = handle(&clients, &guarded, request, None).await.unwrap();
    assert_eq!(result.regions[0].would_delete_count, 3);
    let mut request = fixture("prune-request.json");
    request["confirm_retention_change"] = json!(true);
    let result = handle(&clients, &guarded, request, None).await.unwrap();
    assert_eq!(result.regions[0].deleted_count, 3);
    assert_eq!(deleted.lock().unwrap().len(), 3);

    // One may always go, whatever the fraction: a policy's daily turnover.
    let (list, clusters, exports, (delete, _)) = (
        listing(all()[2..].to_vec(), 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&["db1-60"]),
    );
    let tight = Config {
        prune_guard_fraction: 0.1,
        ..guarded
    };
    let result = run(&clients_of(&[&list, &clusters, &exports, &delete]), &tight)
        .await
        .unwrap();
    assert_eq!(result.regions[0].deleted_count, 1);
}

fn clients_of(source: &[&Rule]) -> Clients {
    clients(source, None)
}

#[tokio::test]
async fn under_a_policy_the_kept_snapshots_are_tagged_with_their_tiers_once() {
    // A snapshot a day for ten days to Tuesday 2026-11-24; 3 daily and 2 weekly kept: the
    // last three days, and the Mondays 11-23 and 11-16. The newest is tagged already.
    let mut all: Vec<DbSnapshot> = (0..10)
        .map(|age| snapshot("us-east-1", &format!("db1-{age}"), "db1", age, "available", true))
        .collect();
    let mut tagged = tags::snapshot_tags(&testing::settings(), "db1", "earlier-run");
    tagged.push(Tag::builder().key(tags::RETENTION_TIERS).value("daily").build());
    let created = testing::start_time();
    all[0] = DbSnapshot::builder()
        .db_snapshot_identifier("db1-0")
        .db_snapshot_arn(arn("us-east-1", "db1-0"))
        .db_instance_identifier("db1")
        .snapshot_type("manual")
        .status("available")
        .snapshot_create_time(aws_smithy_types::DateTime::from_millis(created.timestamp_millis()))
        .set_tag_list(Some(tagged))
        .build();
    let policy = RetentionPolicy {
        daily: 3,
        weekly: 2,
        ..RetentionPolicy::default()
    };
    let config = Config {
        retention_policy: Some(policy),
        min_snapshots_to_keep: 1,
        ..source_only()
    };
    let tags_set = Arc::new(Mutex::new(Vec::new()));
    let record = tags_set.clone();
    let tag = mock!(Client::add_tags_to_resource).then_compute_output(move |r| {
        let [tag] = r.tags() else { panic!("one tag at a time") };
        record.lock().unwrap().push((
            r.resource_name().unwrap().rsplit(':').next().unwrap().to_owned(),
            tag.key().unwrap().to_owned(),
            tag.value().unwrap().to_owned(),
        ));
        AddTagsToResourceOutput::builder().build()
    });
    let start = testing::start_time();
    let kept_by_tiers = RetentionPolicy::keeping(
        &policy,
        &(0..10)
            .rev()
            .map(|age| start - chrono::Duration::days(age))
            .collect::<Vec<_>>(),
    );
    let expected_kept: Vec<String> = (0..10)
        .rev()
        .zip(&kept_by_tiers)
        .filter(|(_, tiers)| !tiers.is_empty())
        .map(|(age, _)| format!("db1-{age}"))
        .collect();
    let deleted_ids: Vec<String> = (0..10)
        .map(|age| format!("db1-{age}"))
        .filter(|id| !expected_kept.contains(id))
        .collect();
    let deleted_refs: Vec<&str> = deleted_ids.iter().map(String::as_str).collect();
    let (list, clusters, exports, (delete, _)) = (
        listing(all, 100),
        no_cluster_snapshots(),
        export_tasks(vec![]),
        deletions(&deleted_refs),
    );

    let result = run(&clients_of(&[&list, &clusters, &exports, &delete, &tag]), &config)
        .await
        .unwrap();

    let region = &result.regions[0];
    assert_eq!(region.deleted_count, deleted_ids.len());
    assert_eq!(region.kept_count, expected_kept.len());
    assert!(
        region
            .kept
            .iter()
            .all(|k| k.reason == KeepReason::InTier || k.snapshot_id == "db1-0")
    );
    assert_eq!(expected_kept, ["db1-8", "db1-2", "db1-1", "db1-0"]);
    // Every kept one tagged, but the newest, whose tag already says "daily".
    let mut tags_set = tags_set.lock().unwrap().clone();
    tags_set.sort();
    assert!(tags_set.iter().all(|(_, key, _)| key == tags::RETENTION_TIERS));
    assert_eq!(tags_set.len(), expected_kept.len() - 1, "{tags_set:?}");
    assert!(!tags_set.iter().any(|(id, _, _)| id == "db1-0"));
    assert!(
        tags_set
            .iter()
            .any(|(id, _, value)| id == "db1-1" && value == "daily weekly")
    );
    assert!(tags_set.iter().any(|(id, _, value)| id == "db1-8" && value == "weekly"));
    assert_eq!(region.tagged_count, tags_set.len());
    assert_eq!(result.retention_policy, Some(policy));
}

const EXPORT_BUCKET: &str = "nestedphoenix-prod-db-backups";

/// The export bucket listed over two pages: objects of the exports, some moved on by the lifecycle.
fn export_objects() -> Rule {
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::types::{Object, ObjectStorageClass};
    let object = |key: &str, bytes: i64, class: Option<ObjectStorageClass>| {
        Object::builder().key(key).size(bytes).set_storage_class(class).build()
    };
    mock!(aws_sdk_s3::Client::list_objects_v2)
        .match_requests(|r| r.bucket() == Some(EXPORT_BUCKET))
        .sequence()
        .output(move || {
            ListObjectsV2Output::builder()
                .contents(object("a/1.parquet", 40_000_000_000, None))
                .contents(object(
                    "a/2.parquet",
                    10_000_000_000,
                    Some(ObjectStorageClass::Standard),
                ))
                .is_truncated(true)
                .next_continuation_token("page-2")
                .build()
        })
        .output(move || {
            ListObjectsV2Output::builder()
                .contents(object(
                    "b/1.parquet",
                    200_000_000_000,
                    Some(ObjectStorageClass::Glacier),
                ))
                .is_truncated(false)
                .build()
        })
        .build()
}

fn no_such_bucket() -> Rule {
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
    use aws_sdk_s3::types::error::NoSuchBucket;
    mock!(aws_sdk_s3::Client::list_objects_v2).then_error(|| {
        ListObjectsV2Error::NoSuchBucket(
            NoSuchBucket::builder()
                .message("The specified bucket does not exist")
                .build(),
        )
    })
}

fn access_denied() -> Rule {
    mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_http_response(|| testing::s3_error(403, "AccessDenied", "Access Denied"))
}

/// Prune's result against the export bucket answering `s3_rule`, with the Lambda `deadline`.
async fn run_with_export_bucket(s3_rule: Rule, deadline: Option<SystemTime>) -> PruneResult {
    let with_bucket = Config {
        export_bucket: Some(EXPORT_BUCKET.into()),
        ..source_only()
    };
    let (list, clusters, exports) = (listing(Vec::new(), 100), no_cluster_snapshots(), export_tasks(vec![]));
    let clients = Clients {
        s3: Some(aws_smithy_mocks::mock_client!(
            aws_sdk_s3,
            aws_smithy_mocks::RuleMode::MatchAny,
            [&s3_rule],
            |b| b.force_path_style(true)
        )),
        ..clients_of(&[&list, &clusters, &exports])
    };
    handle(&clients, &with_bucket, fixture("prune-request.json"), deadline)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_result_reports_what_the_export_bucket_holds_by_storage_class() {
    let result = run_with_export_bucket(export_objects(), None).await;
    let storage = result.exports.expect("the bucket's storage");
    assert_eq!(storage.bytes(), 250_000_000_000);
    assert_eq!(storage.by_class["STANDARD"].objects, 2);
    // 50 GB at $0.023 and 200 GB at $0.0036 a month.
    assert_eq!(storage.by_class["STANDARD"].monthly_cost_cents, Some(115));
    assert_eq!(storage.by_class["GLACIER"].monthly_cost_cents, Some(72));
    assert!(!storage.truncated);
    assert_eq!(result.exports_unread, None);
}

#[tokio::test]
async fn an_unreadable_export_bucket_is_reported_by_name_and_reason_and_prune_goes_on() {
    for (s3_rule, reason_names) in [(no_such_bucket(), "does not exist"), (access_denied(), "AccessDenied")] {
        let result = run_with_export_bucket(s3_rule, None).await;
        assert_eq!(result.exports, None);
        let reason = result.exports_unread.expect("why the storage is not reported");
        assert!(
            reason.contains(EXPORT_BUCKET) && reason.contains(reason_names),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn the_export_bucket_listing_stops_before_the_deadline_counting_the_pages_read() {
    // Less than half the margin left: the first page is counted, the second never requested.
    let deadline = SystemTime::now() + backup_prune::DEADLINE_MARGIN / 4;
    let result = run_with_export_bucket(export_objects(), Some(deadline)).await;
    let storage = result.exports.expect("the storage of the pages read");
    assert!(storage.truncated);
    assert_eq!(storage.bytes(), 50_000_000_000);
    assert_eq!(storage.by_class["STANDARD"].objects, 2);
    assert!(!storage.by_class.contains_key("GLACIER"));
}
