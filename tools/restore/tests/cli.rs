//! The restore command: its arguments, its dry run (the exact request, nothing sent), the
//! request it sends and its wait, against mocked RDS answers.

use std::time::Duration;

use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
use aws_sdk_rds::operation::restore_db_instance_to_point_in_time::RestoreDbInstanceToPointInTimeOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag};
use aws_smithy_mocks::{Rule, mock};
use backup_core::restore::Origin;
use backup_core::testing::{mock_rds_in, rds_error};
use backup_restore::{Arguments, parse, run};
use chrono::{DateTime, TimeZone, Utc};

fn args(line: &str) -> Result<Arguments, String> {
    parse(line.split_whitespace().map(str::to_owned))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

fn smithy(time: DateTime<Utc>) -> aws_sdk_rds::primitives::DateTime {
    aws_sdk_rds::primitives::DateTime::from_secs(time.timestamp())
}

#[test]
fn arguments_as_before_plus_a_point_in_time() {
    let read =
        args("--db prod-1 --new-id prod-1-dr --region us-west-2 --security-group-ids sg-1 sg-2 --dry-run --wait 60")
            .unwrap();
    assert_eq!(read.options.security_group_ids, ["sg-1", "sg-2"]);
    assert_eq!(read.region.as_deref(), Some("us-west-2"));
    assert_eq!((read.dry_run, read.wait), (true, Duration::from_secs(60)));
    assert_eq!(read.options.origin, Origin::NewestBackup);
    assert_eq!(
        args("--db a --new-id b --point-in-time latest").unwrap().options.origin,
        Origin::PointInTime(None)
    );
    assert_eq!(
        args("--db a --new-id b --point-in-time 2026-12-06T10:30:00+01:00")
            .unwrap()
            .options
            .origin,
        Origin::PointInTime(Some(Utc.with_ymd_and_hms(2026, 12, 6, 9, 30, 0).unwrap()))
    );
    assert_eq!(
        args("--db a --new-id b --snapshot-id s-1").unwrap().options.origin,
        Origin::Snapshot("s-1".into())
    );
    for (line, problem) in [
        ("--new-id b", "--db is required"),
        (
            "--db a --new-id b --point-in-time yesterday",
            "--point-in-time yesterday",
        ),
        (
            "--db a --new-id b --point-in-time latest --snapshot-id s",
            "give one or neither",
        ),
        ("--db a --new-id b --wait soon", "--wait soon"),
        ("--db --new-id b", "--db needs a value"),
        ("--db a --new-id b --force", "unexpected argument --force"),
    ] {
        let err = args(line).unwrap_err();
        assert!(err.contains(problem), "{line}: {err}");
    }
    assert_eq!(args("--help").unwrap_err(), "");
    let inline = args("--db=prod-1 --new-id=prod-1-dr --wait=5").unwrap();
    assert_eq!(
        (inline.options.db.as_str(), inline.options.new_id.as_str(), inline.wait),
        ("prod-1", "prod-1-dr", Duration::from_secs(5))
    );
    assert!(
        args("--db a --new-id b --wait 1e30")
            .unwrap_err()
            .contains("from 0 to 604800")
    );
    assert!(args("--db= --new-id b").unwrap_err().contains("--db needs a value"));
}

fn listed() -> [Rule; 4] {
    let snapshot = DbSnapshot::builder()
        .db_snapshot_identifier("prod-1-20261205-020000-abcdef")
        .db_snapshot_arn("arn:aws:rds:us-west-2:123456789012:snapshot:prod-1-20261205-020000-abcdef")
        .db_instance_identifier("prod-1")
        .status("available")
        .engine("postgres")
        .snapshot_create_time(smithy(now() - chrono::Duration::hours(34)))
        .tag_list(Tag::builder().key("database-backup:source-db").value("prod-1").build())
        .tag_list(
            Tag::builder()
                .key("database-backup:managed-by")
                .value("shop-prod")
                .build(),
        )
        .build();
    [
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(snapshot.clone())
                .build()
        }),
        mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster not found")),
        mock!(aws_sdk_rds::Client::describe_db_instances)
            .match_requests(|r| r.db_instance_identifier() == Some("prod-1"))
            .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance prod-1 not found")),
    ]
}

/// prod-1-dr: not listed at first (the identifier's check), then each status in turn.
fn new_database(statuses: &'static [&'static str]) -> Rule {
    let instance = |status: &'static str| {
        move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-1-dr")
                        .db_instance_status(status)
                        .build(),
                )
                .build()
        }
    };
    let mut sequence = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("prod-1-dr"))
        .sequence()
        .http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance prod-1-dr not found"));
    for status in statuses {
        sequence = sequence.output(instance(status));
    }
    sequence.repeatedly().build()
}

#[tokio::test]
async fn a_dry_run_prints_the_exact_request_and_sends_nothing() {
    let [snapshots, clusters_snapshots, clusters, original] = listed();
    let new = new_database(&["available"]);
    // No restore rule: a restore call would panic the mock.
    let rds = mock_rds_in(
        "us-west-2",
        &[&snapshots, &clusters_snapshots, &clusters, &original, &new],
    );
    let arguments = args("--db prod-1 --new-id prod-1-dr --instance-class db.t3.small --dry-run").unwrap();
    let mut out = Vec::new();
    run(&rds, &arguments, now(), Duration::ZERO, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "backup:  prod-1-20261205-020000-abcdef (DB instance snapshot of prod-1) in us-west-2, \
         created 2026-12-05 02:00 UTC (1.4 days ago), managed by shop-prod"
    );
    let request = lines[1]
        .strip_prefix("restore: RestoreDBInstanceFromDBSnapshot ")
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(request).unwrap(),
        serde_json::json!({
            "DBInstanceIdentifier": "prod-1-dr",
            "DBSnapshotIdentifier": "prod-1-20261205-020000-abcdef",
            "DBInstanceClass": "db.t3.small",
            "PubliclyAccessible": false,
            "CopyTagsToSnapshot": true,
            "Tags": [{"Key": "database-backup:restored-from",
                      "Value": "arn:aws:rds:us-west-2:123456789012:snapshot:prod-1-20261205-020000-abcdef"}],
        })
    );
    assert_eq!(lines[2..], ["dry run: nothing was changed"]);
}

#[tokio::test]
async fn the_restore_sends_that_request_and_waits_for_available() {
    let [snapshots, clusters_snapshots, clusters, original] = listed();
    let new = new_database(&["creating", "backing-up", "available"]);
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("prod-1-dr")
                && r.db_snapshot_identifier() == Some("prod-1-20261205-020000-abcdef")
                && r.db_instance_class() == Some("db.t3.small")
                && r.publicly_accessible() == Some(false)
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some("database-backup:restored-from"))
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let rds = mock_rds_in(
        "us-west-2",
        &[&snapshots, &clusters_snapshots, &clusters, &original, &new, &restore],
    );
    let arguments = args("--db prod-1 --new-id prod-1-dr --instance-class db.t3.small --wait 60").unwrap();
    let mut out = Vec::new();
    run(&rds, &arguments, now(), Duration::from_millis(1), &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.ends_with("restoring prod-1-dr in us-west-2\nprod-1-dr is available\n"),
        "{out}"
    );
    assert_eq!(restore.num_calls(), 1);
    assert_eq!(
        new.num_calls(),
        4,
        "the identifier's check, then creating, backing-up, available"
    );
}

#[tokio::test]
async fn a_point_in_time_refused_by_rds_says_so() {
    let original = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("prod-1"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("prod-1")
                        .db_instance_class("db.t3.small")
                        .backup_retention_period(7)
                        .latest_restorable_time(smithy(now() - chrono::Duration::minutes(5)))
                        .build(),
                )
                .build()
        });
    let new = new_database(&["available"]);
    let clusters =
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build());
    let no_window = mock!(aws_sdk_rds::Client::describe_db_instance_automated_backups).then_output(|| {
        aws_sdk_rds::operation::describe_db_instance_automated_backups::DescribeDbInstanceAutomatedBackupsOutput::builder()
            .build()
    });
    // Every field the dry run would print, and nothing else.
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_to_point_in_time)
        .match_requests(|r| {
            r.use_latest_restorable_time() == Some(true)
                && r.restore_time().is_none()
                && r.source_db_instance_identifier() == Some("prod-1")
                && r.target_db_instance_identifier() == Some("prod-1-dr")
                && r.db_instance_class() == Some("db.t3.small")
                && r.publicly_accessible() == Some(false)
                && r.copy_tags_to_snapshot() == Some(true)
                && r.db_subnet_group_name().is_none()
                && r.vpc_security_group_ids().is_empty()
                && r.multi_az().is_none()
                && r.port().is_none()
                && r.tags().len() == 1
                && r.tags()[0].value() == Some("prod-1 at its latest restorable time")
        })
        .then_http_response(|| rds_error(400, "InvalidRestoreFault", "The source has no backup to restore from"));
    let unused = mock!(aws_sdk_rds::Client::restore_db_instance_to_point_in_time)
        .then_output(|| RestoreDbInstanceToPointInTimeOutput::builder().build());
    let rds = mock_rds_in(
        "us-east-1",
        &[&original, &new, &clusters, &no_window, &restore, &unused],
    );
    let arguments = args("--db prod-1 --new-id prod-1-dr --point-in-time latest").unwrap();
    let mut out = Vec::new();
    let err = run(&rds, &arguments, now(), Duration::ZERO, &mut out)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("RestoreDBInstanceToPointInTime failed") && err.contains("InvalidRestoreFault"),
        "{err}"
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("point in time: prod-1 in us-east-1 to its latest restorable time (2026-12-06 11:55 UTC); its restorable window is 2026-11-29T11:55:00Z to 2026-12-06T11:55:00Z\n"), "{out}");
    assert_eq!(unused.num_calls(), 0);
}

#[tokio::test]
async fn the_wait_stops_at_a_failed_restore() {
    let [snapshots, clusters_snapshots, clusters, original] = listed();
    let new = new_database(&["creating", "incompatible-restore"]);
    let restore = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let rds = mock_rds_in(
        "us-west-2",
        &[&snapshots, &clusters_snapshots, &clusters, &original, &new, &restore],
    );
    let arguments = args("--db prod-1 --new-id prod-1-dr --instance-class db.t3.small --wait 3600").unwrap();
    let mut out = Vec::new();
    let err = run(&rds, &arguments, now(), Duration::from_millis(1), &mut out)
        .await
        .unwrap_err();
    assert_eq!(err, "prod-1-dr failed: RDS reports it incompatible-restore");
    assert!(
        String::from_utf8(out)
            .unwrap()
            .ends_with("prod-1-dr is incompatible-restore\n")
    );
    assert_eq!(new.num_calls(), 3);
}

#[tokio::test]
async fn a_restored_cluster_gets_its_writer_once_available() {
    let snapshot = DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier("orders-20261205-020000-abcdef")
        .db_cluster_snapshot_arn("arn:aws:rds:us-west-2:123456789012:cluster-snapshot:orders-20261205-020000-abcdef")
        .db_cluster_identifier("orders")
        .status("available")
        .engine("aurora-mysql")
        .snapshot_create_time(smithy(now() - chrono::Duration::hours(34)))
        .tag_list(Tag::builder().key("database-backup:source-db").value("orders").build())
        .tag_list(
            Tag::builder()
                .key("database-backup:managed-by")
                .value("shop-prod")
                .build(),
        )
        .build();
    let snapshots =
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let cluster_snapshots = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(move || {
        DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(snapshot.clone())
            .build()
    });
    let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("orders"))
        .then_http_response(|| rds_error(404, "DBInstanceNotFound", "DBInstance orders not found"));
    // The original is not in this region; the new cluster: not listed, then creating, then available.
    let cluster = |status: &'static str| {
        move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("orders-dr")
                        .status(status)
                        .build(),
                )
                .build()
        }
    };
    let original = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some("orders"))
        .then_http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster orders not found"));
    let new_cluster = || {
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("orders-dr"))
            .sequence()
            .http_response(|| rds_error(404, "DBClusterNotFoundFault", "DBCluster orders-dr not found"))
            .output(cluster("creating"))
            .output(cluster("available"))
            .repeatedly()
            .build()
    };
    let (new_for_the_dry_run, new) = (new_cluster(), new_cluster());
    let writer = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(|r| r.db_instance_identifier() == Some("orders-dr-1"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("orders-dr-1")
                        .db_instance_status("available")
                        .build(),
                )
                .build()
        });
    let restore = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());
    let create = mock!(aws_sdk_rds::Client::create_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("orders-dr-1")
                && r.db_cluster_identifier() == Some("orders-dr")
                && r.engine() == Some("aurora-mysql")
                && r.db_instance_class() == Some("db.r6g.large")
                && r.publicly_accessible() == Some(false)
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let rds = |new: &Rule| {
        mock_rds_in(
            "us-west-2",
            &[
                &snapshots,
                &cluster_snapshots,
                &no_instance,
                &original,
                new,
                &writer,
                &restore,
                &create,
            ],
        )
    };

    // Without a class (the original is elsewhere), the tool says how to get a writer.
    let mut out = Vec::new();
    let dry = args("--db orders --new-id orders-dr --dry-run").unwrap();
    run(&rds(&new_for_the_dry_run), &dry, now(), Duration::ZERO, &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("give --instance-class to have one added"), "{out}");

    let arguments = args("--db orders --new-id orders-dr --instance-class db.r6g.large --wait 60").unwrap();
    let mut out = Vec::new();
    run(&rds(&new), &arguments, now(), Duration::from_millis(1), &mut out)
        .await
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("then, once the cluster is available, its writer: CreateDBInstance {"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "restoring orders-dr in us-west-2\norders-dr is available\nadding its writer orders-dr-1 (db.r6g.large)\n\
             orders-dr-1 is available\n"
        ),
        "{out}"
    );
    assert_eq!((restore.num_calls(), create.num_calls()), (1, 1));
}
