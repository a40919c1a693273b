//! Snapshot export tasks that are running: they hold one of the account's
//! export slots, and RDS reads their source snapshot.

use aws_sdk_rds::types::{ExportTask, Filter};

use crate::error::{AwsFailure, Error};
use crate::rds::Rds;

/// RDS runs at most five snapshot exports per account at a time.
pub const MAX_RUNNING_EXPORTS: usize = 5;

/// Export task statuses during which a task runs.
pub const RUNNING_STATUSES: [&str; 2] = ["starting", "in_progress"];

/// Whether the export task `export_task_id` is complete or running: false when it failed,
/// was canceled or does not exist.
pub async fn exported_or_exporting(rds: &Rds, export_task_id: &str) -> Result<bool, Error> {
    let out = rds
        .client
        .describe_export_tasks()
        .export_task_identifier(export_task_id)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_export_task_not_found_fault()) =>
        {
            return Ok(false);
        }
        Err(err) => return Err(AwsFailure::from_sdk("DescribeExportTasks", &err).into()),
    };
    Ok(out.export_tasks().iter().any(|task| {
        task.status()
            .map(str::to_ascii_lowercase)
            .is_some_and(|status| status == "complete" || RUNNING_STATUSES.contains(&status.as_str()))
    }))
}

/// Every running export task of the client's region (pages of 100).
pub async fn running(rds: &Rds) -> Result<Vec<ExportTask>, Error> {
    let status = Filter::builder()
        .name("status")
        .set_values(Some(RUNNING_STATUSES.map(str::to_owned).to_vec()))
        .build();
    let mut tasks = Vec::new();
    let mut pages = rds
        .client
        .describe_export_tasks()
        .filters(status)
        .max_records(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| AwsFailure::from_sdk("DescribeExportTasks", &err))?;
        // The status filter is checked again: not every endpoint applies it.
        tasks.extend(
            page.export_tasks()
                .iter()
                .filter(|t| {
                    t.status()
                        .is_some_and(|s| RUNNING_STATUSES.contains(&s.to_ascii_lowercase().as_str()))
                })
                .cloned(),
        );
    }
    Ok(tasks)
}
