//! What the handler's tests share: the fixtures' snapshot, as RDS describes it.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::DbSnapshot;
use aws_smithy_mocks::{Rule, mock};

/// The snapshot of the fixtures (`tests/fixtures/wait-*.json`).
pub const SNAPSHOT_ID: &str = "prod-database-1-20261124-020000";

/// DescribeDBSnapshots of the fixtures' snapshot, answering this status and progress.
pub fn snapshot_with_status(status: &'static str, progress: i32) -> Rule {
    mock!(Client::describe_db_snapshots)
        .match_requests(|r| r.db_snapshot_identifier() == Some(SNAPSHOT_ID))
        .then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(
                    DbSnapshot::builder()
                        .db_snapshot_identifier(SNAPSHOT_ID)
                        .status(status)
                        .percent_progress(progress)
                        .build(),
                )
                .build()
        })
}
