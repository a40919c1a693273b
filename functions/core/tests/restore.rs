//! The restore's plan against mocked RDS answers: which backup, which window, and the exact
//! request (what `scripts/restore` prints in a dry run and sends otherwise).

use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instance_automated_backups::DescribeDbInstanceAutomatedBackupsOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{
    DbCluster, DbInstance, DbInstanceAutomatedBackup, DbSnapshot, DbSubnetGroup, Endpoint, RestoreWindow, Tag,
    VpcSecurityGroupMembership,
};
use aws_smithy_mocks::{Rule, mock};
use backup_core::restore::{Origin, RestoreError, RestoreOptions, Source, plan};
use backup_core::tags::{MANAGED_BY, SOURCE_DB};
use backup_core::testing::{manual_snapshots, mock_rds, mock_rds_in, rds_error};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

fn time(hour: u32, minute: u32) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(Utc.with_ymd_and_hms(2026, 12, 6, hour, minute, 0).unwrap().timestamp())
}

fn days_ago(days: i64) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs((now() - chrono::Duration::days(days)).timestamp())
}

fn options(origin: Origin) -> RestoreOptions {
    RestoreOptions {
        db: "prod-database-1".into(),
        new_id: "prod-database-1-restored".into(),
        origin,
        managed_by: None,
        instance_class: None,
        subnet_group: None,
        security_group_ids: Vec::new(),
        tags: Vec::new(),
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn snapshot(id: &str, status: &str, created: aws_smithy_types::DateTime, managed_by: Option<&str>) -> DbSnapshot {
    let mut builder = DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
        .db_instance_identifier("prod-database-1")
        .status(status)
        .snapshot_type("manual")
        .engine("postgres")
        .snapshot_create_time(created)
        .tag_list(tag(SOURCE_DB, "prod-database-1"));
    if let Some(managed_by) = managed_by {
        builder = builder.tag_list(tag(MANAGED_BY, managed_by));
    }
    builder.build()
}

fn original_instance(retention: i32, latest: Option<aws_smithy_types::DateTime>) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier("prod-database-1")
        .db_instance_class("db.r6g.large")
        .db_instance_status("available")
        .engine("postgres")
        .multi_az(true)
        .endpoint(Endpoint::builder().port(5432).build())
        .db_subnet_group(DbSubnetGroup::builder().db_subnet_group_name("private").build())
        .vpc_security_groups(
            VpcSecurityGroupMembership::builder()
                .vpc_security_group_id("sg-1")
                .build(),
        )
        .backup_retention_period(retention)
        .instance_create_time(days_ago(30))
        .set_latest_restorable_time(latest)
        .build()
}

/// DescribeDBInstances: `original` for prod-database-1; nothing else exists (instances or clusters).
fn databases(original: Option<DbInstance>) -> [Rule; 3] {
    [
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("prod-database-1"))
            .then_output(move || {
                DescribeDbInstancesOutput::builder()
                    .set_db_instances(original.clone().map(|o| vec![o]))
                    .build()
            }),
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance not found")),
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found")),
    ]
}

/// DescribeDBInstanceAutomatedBackups: an active backup whose restore window starts at `earliest`
/// (None: RDS lists none, and the window is the retention's).
fn automated_backups(earliest: Option<aws_smithy_types::DateTime>) -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_instance_automated_backups).then_output(move || {
        let backups = earliest.map(|earliest| {
            DbInstanceAutomatedBackup::builder()
                .db_instance_identifier("prod-database-1")
                .status("active")
                .restore_window(
                    RestoreWindow::builder()
                        .earliest_time(earliest)
                        .latest_time(time(11, 55))
                        .build(),
                )
                .build()
        });
        DescribeDbInstanceAutomatedBackupsOutput::builder()
            .set_db_instance_automated_backups(backups.map(|b| vec![b]))
            .build()
    })
}

fn refused(err: RestoreError) -> (&'static str, String) {
    match err {
        RestoreError::Refused { field, reason } => (field, reason),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn the_newest_available_backup_of_ours_with_the_originals_settings() {
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let [listed, cluster_snapshots] = manual_snapshots(vec![
        snapshot("prod-database-1-old", "available", days_ago(2), Some("shop-prod")),
        snapshot("prod-database-1-newest", "available", days_ago(1), Some("shop-prod")),
        snapshot("prod-database-1-creating", "creating", days_ago(0), Some("shop-prod")),
        snapshot("someone-elses", "available", days_ago(0), None),
    ]);
    let rds = mock_rds(&[&instances, &missing, &clusters, &listed, &cluster_snapshots]);
    let planned = plan(&rds, &options(Origin::NewestBackup), now()).await.unwrap();
    let Source::Backup(backup) = &planned.source else {
        panic!("a backup")
    };
    assert_eq!(backup.snapshot_id, "prod-database-1-newest");
    assert_eq!(planned.request.operation(), "RestoreDBInstanceFromDBSnapshot");
    assert_eq!(
        planned.request.parameters(),
        json!({
            "DBInstanceIdentifier": "prod-database-1-restored",
            "DBSnapshotIdentifier": "prod-database-1-newest",
            "DBInstanceClass": "db.r6g.large",
            "DBSubnetGroupName": "private",
            "VpcSecurityGroupIds": ["sg-1"],
            "MultiAZ": true,
            "Port": 5432,
            "PubliclyAccessible": false,
            "CopyTagsToSnapshot": true,
            "Tags": [{"Key": "database-backup:restored-from",
                      "Value": "arn:aws:rds:us-east-1:123456789012:snapshot:prod-database-1-newest"}],
        })
    );
}

#[tokio::test]
async fn backups_of_several_module_instances_need_managed_by() {
    let listed = vec![
        snapshot("a", "available", days_ago(1), Some("shop-prod")),
        snapshot("b", "available", days_ago(2), Some("shop-staging")),
    ];
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let [dbs, cluster_snapshots] = manual_snapshots(listed.clone());
    let rds = mock_rds(&[&instances, &missing, &clusters, &dbs, &cluster_snapshots]);
    let (field, reason) = refused(plan(&rds, &options(Origin::NewestBackup), now()).await.unwrap_err());
    assert_eq!(field, "managed_by");
    assert!(reason.contains("shop-prod, shop-staging"), "{reason}");

    let chosen = RestoreOptions {
        managed_by: Some("shop-staging".into()),
        ..options(Origin::NewestBackup)
    };
    let planned = plan(&rds, &chosen, now()).await.unwrap();
    assert_eq!(planned.request.from, "b");
}

#[tokio::test]
async fn no_available_backup_names_what_there_is() {
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let [dbs, cluster_snapshots] = manual_snapshots(vec![snapshot("half", "failed", days_ago(1), Some("shop-prod"))]);
    let rds = mock_rds(&[&instances, &missing, &clusters, &dbs, &cluster_snapshots]);
    let (field, reason) = refused(plan(&rds, &options(Origin::NewestBackup), now()).await.unwrap_err());
    assert_eq!(field, "db");
    assert!(
        reason.contains("no available backup") && reason.contains("half (failed)"),
        "{reason}"
    );
}

#[tokio::test]
async fn in_the_copy_region_the_instance_class_must_be_given_and_a_taken_identifier_is_refused() {
    let [instances, missing, clusters] = databases(None);
    let [dbs, cluster_snapshots] =
        manual_snapshots(vec![snapshot("copy", "available", days_ago(1), Some("shop-prod"))]);
    let rds = mock_rds_in(
        "us-west-2",
        &[&instances, &missing, &clusters, &dbs, &cluster_snapshots],
    );
    let (field, _) = refused(plan(&rds, &options(Origin::NewestBackup), now()).await.unwrap_err());
    assert_eq!(field, "instance_class");
    let given = RestoreOptions {
        instance_class: Some("db.t3.small".into()),
        ..options(Origin::NewestBackup)
    };
    let request = plan(&rds, &given, now()).await.unwrap().request.parameters();
    assert_eq!(request["DBInstanceClass"], "db.t3.small");
    assert!(request.get("DBSubnetGroupName").is_none() && request.get("MultiAZ").is_none());

    let taken = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("prod-database-1-restored"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-database-1-restored")
                        .build(),
                )
                .build()
        });
    let rds = mock_rds_in(
        "us-west-2",
        &[&taken, &instances, &missing, &clusters, &dbs, &cluster_snapshots],
    );
    let (field, reason) = refused(plan(&rds, &given, now()).await.unwrap_err());
    assert_eq!(
        (field, reason.contains("already exists in us-west-2")),
        ("new_id", true),
        "{reason}"
    );
}

#[tokio::test]
async fn a_named_snapshot_of_another_database_or_a_cluster_member_to_a_point_in_time_is_refused() {
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let other = mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(
                DbSnapshot::builder()
                    .db_snapshot_identifier("billing-1")
                    .db_instance_identifier("billing")
                    .status("available")
                    .build(),
            )
            .build()
    });
    let rds = mock_rds(&[&instances, &missing, &clusters, &other]);
    let (field, reason) = refused(
        plan(&rds, &options(Origin::Snapshot("billing-1".into())), now())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (field, reason.as_str()),
        (
            "snapshot_id",
            "billing-1 is a snapshot of billing, not of prod-database-1: give --db billing"
        )
    );

    let member = DbInstance::builder()
        .db_instance_identifier("prod-database-1")
        .db_cluster_identifier("ledger")
        .backup_retention_period(7)
        .build();
    let [instances, missing, clusters] = databases(Some(member));
    let rds = mock_rds(&[&instances, &missing, &clusters]);
    let (field, reason) = refused(
        plan(&rds, &options(Origin::PointInTime(None)), now())
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "db");
    assert!(reason.ends_with("give --db ledger"), "{reason}");
}

#[tokio::test]
async fn identifiers_are_checked_before_any_call() {
    let rds = mock_rds(&[]);
    let bad = RestoreOptions {
        new_id: "two--hyphens".into(),
        ..options(Origin::NewestBackup)
    };
    assert_eq!(refused(plan(&rds, &bad, now()).await.unwrap_err()).0, "new_id");
    let same = RestoreOptions {
        new_id: "PROD-database-1".into(),
        ..options(Origin::NewestBackup)
    };
    assert_eq!(refused(plan(&rds, &same, now()).await.unwrap_err()).0, "new_id");
}

#[tokio::test]
async fn a_point_in_time_inside_the_window_and_the_latest_restorable_time() {
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let window = automated_backups(None);
    let rds = mock_rds(&[&instances, &missing, &clusters, &window]);
    let at = Utc.with_ymd_and_hms(2026, 12, 6, 10, 30, 0).unwrap();
    let planned = plan(&rds, &options(Origin::PointInTime(Some(at))), now())
        .await
        .unwrap();
    let Source::PointInTime { window, .. } = planned.source else {
        panic!("a point in time")
    };
    assert_eq!(window.latest, Utc.with_ymd_and_hms(2026, 12, 6, 11, 55, 0).unwrap());
    assert_eq!(window.earliest, window.latest - chrono::Duration::days(7));
    assert_eq!(
        planned.request.parameters(),
        json!({
            "SourceDBInstanceIdentifier": "prod-database-1",
            "TargetDBInstanceIdentifier": "prod-database-1-restored",
            "RestoreTime": "2026-12-06T10:30:00Z",
            "DBInstanceClass": "db.r6g.large",
            "DBSubnetGroupName": "private",
            "VpcSecurityGroupIds": ["sg-1"],
            "MultiAZ": true,
            "Port": 5432,
            "PubliclyAccessible": false,
            "CopyTagsToSnapshot": true,
            "Tags": [{"Key": "database-backup:restored-from", "Value": "prod-database-1 at 2026-12-06T10:30:00Z"}],
        })
    );
    let latest = plan(&rds, &options(Origin::PointInTime(None)), now()).await.unwrap();
    let parameters = latest.request.parameters();
    assert_eq!(parameters["UseLatestRestorableTime"], true);
    assert!(parameters.get("RestoreTime").is_none());
}

#[tokio::test]
async fn a_point_in_time_outside_the_window_or_without_backups_is_refused_naming_the_window() {
    let [instances, missing, clusters] = databases(Some(original_instance(1, Some(time(11, 55)))));
    let window = automated_backups(None);
    let rds = mock_rds(&[&instances, &missing, &clusters, &window]);
    for (at, why) in [
        (
            Utc.with_ymd_and_hms(2026, 12, 6, 11, 58, 0).unwrap(),
            "after the latest restorable time",
        ),
        (Utc.with_ymd_and_hms(2026, 12, 6, 13, 0, 0).unwrap(), "in the future"),
        (
            Utc.with_ymd_and_hms(2026, 12, 5, 11, 0, 0).unwrap(),
            "before the earliest restorable time",
        ),
    ] {
        let (field, reason) = refused(
            plan(&rds, &options(Origin::PointInTime(Some(at))), now())
                .await
                .unwrap_err(),
        );
        assert_eq!(field, "point_in_time");
        assert!(
            reason.contains(why) && reason.contains("2026-12-05T11:55:00Z to 2026-12-06T11:55:00Z"),
            "{reason}"
        );
    }
    let [instances, missing, clusters] = databases(Some(original_instance(0, None)));
    let rds = mock_rds(&[&instances, &missing, &clusters, &window]);
    let (field, reason) = refused(
        plan(&rds, &options(Origin::PointInTime(None)), now())
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "point_in_time");
    assert!(
        reason.contains("automated backups are off (backup retention 0 days)"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_instances_window_starts_where_rds_says_its_automated_backups_do() {
    // Seven days kept, but turned on at 09:00 today: RDS's restore window starts there.
    let [instances, missing, clusters] = databases(Some(original_instance(7, Some(time(11, 55)))));
    let window = automated_backups(Some(time(9, 0)));
    let rds = mock_rds(&[&instances, &missing, &clusters, &window]);
    let early = Utc.with_ymd_and_hms(2026, 12, 6, 8, 0, 0).unwrap();
    let (_, reason) = refused(
        plan(&rds, &options(Origin::PointInTime(Some(early))), now())
            .await
            .unwrap_err(),
    );
    assert!(
        reason.contains("before the earliest restorable time: the restorable window is 2026-12-06T09:00:00Z to"),
        "{reason}"
    );
    let planned = plan(&rds, &options(Origin::PointInTime(None)), now()).await.unwrap();
    let Source::PointInTime { window, .. } = planned.source else {
        panic!("a point in time")
    };
    assert_eq!(window.earliest, Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap());
}

#[tokio::test]
async fn a_clusters_window_is_the_one_it_reports() {
    let instances = mock!(aws_sdk_rds::Client::describe_db_instances)
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance not found"));
    let cluster = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("ledger"))
        .then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("ledger")
                        .engine("aurora-postgresql")
                        .db_subnet_group("private")
                        .port(5432)
                        .backup_retention_period(7)
                        .earliest_restorable_time(time(9, 0))
                        .latest_restorable_time(time(11, 55))
                        .build(),
                )
                .build()
        });
    let missing = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found"));
    let rds = mock_rds(&[&instances, &cluster, &missing]);
    let ledger = |at| RestoreOptions {
        db: "ledger".into(),
        new_id: "ledger-restored".into(),
        ..options(Origin::PointInTime(at))
    };
    let early = Utc.with_ymd_and_hms(2026, 12, 6, 8, 59, 0).unwrap();
    let (_, reason) = refused(plan(&rds, &ledger(Some(early)), now()).await.unwrap_err());
    assert!(
        reason.contains("2026-12-06T09:00:00Z to 2026-12-06T11:55:00Z"),
        "{reason}"
    );
    let planned = plan(&rds, &ledger(Some(early + chrono::Duration::hours(1))), now())
        .await
        .unwrap();
    assert_eq!(planned.request.operation(), "RestoreDBClusterToPointInTime");
    let parameters = planned.request.parameters();
    assert_eq!(parameters["RestoreToTime"], "2026-12-06T09:59:00Z");
    assert_eq!(parameters["SourceDBClusterIdentifier"], "ledger");
    assert!(parameters.get("DBInstanceClass").is_none() && parameters.get("PubliclyAccessible").is_none());
}
