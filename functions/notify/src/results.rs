//! Each database of a run is backed up by its own execution of the database
//! state machine, whose output is that database's [`ItemResult`]. The run
//! hands `notify` only each database's identifier and execution name (what the
//! run's 256 KB state can hold for thousands of databases); the results are
//! read here, from the executions themselves.

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use backup_core::AwsFailure;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::summary::{ItemResult, StepError};

/// Executions described at once: Step Functions meters `DescribeExecution`
/// per account, and the client slows down further when it is throttled.
pub const CONCURRENT_READS: usize = 8;

/// One database of the run, as the run's Map recorded it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRun {
    pub db_identifier: String,
    /// The name of the database's execution of the database state machine.
    pub execution_name: String,
    /// Set when that execution failed or could not be started.
    #[serde(default)]
    pub error: Option<StepError>,
}

/// The ARN of an execution of a state machine, from the state machine's ARN.
pub fn execution_arn(state_machine_arn: &str, execution_name: &str) -> String {
    format!(
        "{}:{execution_name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// Every database's result, in the order of `runs`. A result that cannot be
/// read is a failure of that database, named as such: never a silent success.
pub async fn read(sfn: &aws_sdk_sfn::Client, state_machine_arn: &str, runs: &[DatabaseRun]) -> Vec<ItemResult> {
    futures_util::stream::iter(runs)
        .map(|run| read_one(sfn, state_machine_arn, run))
        .buffered(CONCURRENT_READS)
        .collect()
        .await
}

async fn read_one(sfn: &aws_sdk_sfn::Client, state_machine_arn: &str, run: &DatabaseRun) -> ItemResult {
    let arn = execution_arn(state_machine_arn, &run.execution_name);
    match sfn.describe_execution().execution_arn(&arn).send().await {
        Ok(execution) => from_execution(run, &execution),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => {
            // Never started: the run recorded why.
            let error = run.error.clone().unwrap_or_else(|| StepError {
                step: Some("start_database_execution".to_owned()),
                error: "DatabaseExecutionMissing".to_owned(),
                cause: format!("the execution {arn} of this database does not exist"),
            });
            ItemResult::failure(&run.db_identifier, error)
        }
        Err(err) => {
            let failure = AwsFailure::from_sdk("DescribeExecution", &err);
            tracing::warn!(db_identifier = %run.db_identifier, execution_arn = %arn, error = %failure,
                "the database's result could not be read");
            let error = StepError {
                step: Some("read_result".to_owned()),
                error: failure.error_type().as_str().to_owned(),
                cause: format!("the result of {arn} could not be read: {failure}"),
            };
            ItemResult::failure(&run.db_identifier, error)
        }
    }
}

fn from_execution(run: &DatabaseRun, execution: &DescribeExecutionOutput) -> ItemResult {
    let status = execution.status();
    let failure = |error: String, cause: String| {
        let step = Some("database_execution".to_owned());
        ItemResult::failure(&run.db_identifier, StepError { step, error, cause })
    };
    if *status != ExecutionStatus::Succeeded {
        // Failed, timed out or stopped: outside the execution's own error
        // handling. Named like the history event Step Functions records.
        let ended = match status {
            ExecutionStatus::Failed => "ExecutionFailed",
            ExecutionStatus::TimedOut => "ExecutionTimedOut",
            ExecutionStatus::Aborted => "ExecutionAborted",
            _ => "ExecutionNotFinished",
        };
        return failure(
            execution.error().unwrap_or(ended).to_owned(),
            execution.cause().map_or_else(
                || format!("the execution {} ended {status}", execution.execution_arn()),
                str::to_owned,
            ),
        );
    }
    match execution.output().map(serde_json::from_str::<ItemResult>) {
        Some(Ok(item)) if item.db_identifier == run.db_identifier => item,
        Some(Ok(item)) => failure(
            "UnexpectedResult".to_owned(),
            format!(
                "the execution {} reports database {}",
                execution.execution_arn(),
                item.db_identifier
            ),
        ),
        Some(Err(err)) => failure(
            "UnexpectedResult".to_owned(),
            format!(
                "the output of {} is not a database result: {err}",
                execution.execution_arn()
            ),
        ),
        None => failure(
            "UnexpectedResult".to_owned(),
            format!("the execution {} has no output", execution.execution_arn()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_execution_arn_is_derived_from_the_state_machine_arn() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:np-prod-database",
                "a1-b2"
            ),
            "arn:aws:states:us-east-1:123456789012:execution:np-prod-database:a1-b2"
        );
    }
}
