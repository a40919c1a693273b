//! The context every log line of an invocation carries: the run (the backup
//! state machine's execution) and the database. The state machines pass both
//! to every function; the JSON log format puts a span's fields on each line,
//! so CloudWatch Logs Insights can filter one run or one database. [`run`]
//! opens that span around the whole invocation, so the runtime's own lines
//! (the handler's error, a malformed event) carry it too.

use std::fmt::Debug;
use std::future::Future;
use std::task::{Context, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;
use tracing::instrument::Instrumented;

/// The `db_identifier` of an invocation that works on the whole run (select, prune, notify).
pub const WHOLE_RUN: &str = "(all)";
/// The `execution_id` of an invocation whose input names no execution.
pub const NO_EXECUTION: &str = "(none)";

/// A span with `execution_id` and `db_identifier`, read from the raw input
/// (before it is parsed, so that a malformed input is logged with them too).
pub fn invocation_span(event: &Value) -> tracing::Span {
    let execution_id = event
        .pointer("/execution/execution_id")
        .or_else(|| event.pointer("/report/execution/execution_id"))
        .or_else(|| event.pointer("/detail/executionArn"))
        .and_then(Value::as_str)
        .unwrap_or(NO_EXECUTION);
    let db_identifier = event
        .get("db_identifier")
        .or_else(|| event.pointer("/snapshot/db_identifier"))
        .and_then(Value::as_str)
        .unwrap_or(WHOLE_RUN);
    tracing::info_span!("invocation", execution_id, db_identifier)
}

/// `lambda_runtime::run` with every line of an invocation inside [`invocation_span`].
pub async fn run<A, F, R, B, S, D, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Service<LambdaEvent<A>, Response = R>,
    F::Future: Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + Debug,
    A: for<'de> Deserialize<'de>,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures_util::Stream<Item = Result<D, E>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E: Into<lambda_runtime::Error> + Send + Debug,
{
    // At cold start: which release runs, so that logs tell a mixed deployment apart.
    tracing::info!(version = crate::VERSION, "database-backup {} starting", crate::VERSION);
    Runtime::new(handler)
        .layer(InvocationSpan)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

/// A layer that runs each invocation in its [`invocation_span`].
#[derive(Clone, Copy, Debug)]
pub struct InvocationSpan;

impl<S> Layer<S> for InvocationSpan {
    type Service = InvocationSpanService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvocationSpanService(inner)
    }
}

#[derive(Clone, Debug)]
pub struct InvocationSpanService<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for InvocationSpanService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        // Parsed twice (here and by the runtime): a few KB, microseconds.
        let event = serde_json::from_slice(&invocation.body).unwrap_or(Value::Null);
        let span = invocation_span(&event);
        self.0.call(invocation).instrument(span)
    }
}

/// The input without the log context (`execution`, `db_identifier`), for a
/// function whose own input has neither (`wait-for-available`).
pub fn without_context(mut event: Value) -> Value {
    if let Some(fields) = event.as_object_mut() {
        fields.remove("execution");
        fields.remove("db_identifier");
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::tracing::subscriber;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON line a message logged in the invocation's span becomes, as in Lambda.
    fn logged_within(event: Value) -> Value {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let json_lines = subscriber::fmt()
            .json()
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(json_lines, || {
            invocation_span(&event).in_scope(|| tracing::info!(snapshot_id = "s1", "created"));
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        serde_json::from_str(text.trim()).unwrap()
    }

    #[test]
    fn every_line_names_the_run_and_the_database() {
        let run = "arn:aws:states:us-east-1:1:execution:backup:run";
        let execution = json!({"execution_id": run});
        let line = logged_within(json!({"db_identifier": "db1", "execution": execution}));
        assert_eq!(line["span"]["execution_id"], run);
        assert_eq!(line["span"]["db_identifier"], "db1");
        assert_eq!(line["fields"]["snapshot_id"], "s1");
        let line = logged_within(json!({"snapshot": {"db_identifier": "db2"}, "execution": execution}));
        assert_eq!(line["span"]["db_identifier"], "db2");
        let line = logged_within(json!({"report": {"execution": execution, "results": []}}));
        assert_eq!(
            (&line["span"]["execution_id"], &line["span"]["db_identifier"]),
            (&json!(run), &json!(WHOLE_RUN))
        );
        // An EventBridge execution status change (notify): the execution is the run.
        let line = logged_within(
            json!({"detail-type": "Step Functions Execution Status Change", "detail": {"executionArn": run}}),
        );
        assert_eq!(
            (&line["span"]["execution_id"], &line["span"]["db_identifier"]),
            (&json!(run), &json!(WHOLE_RUN))
        );
        let line = logged_within(json!("not an object"));
        assert_eq!(line["span"]["execution_id"], NO_EXECUTION);
    }

    #[test]
    fn the_context_is_taken_off_only_its_own_fields() {
        let event = json!({"resource": "export_task", "export_task_id": "t", "execution": {}, "db_identifier": "db1"});
        assert_eq!(
            without_context(event),
            json!({"resource": "export_task", "export_task_id": "t"})
        );
        assert_eq!(without_context(json!([1])), json!([1]));
    }
}
