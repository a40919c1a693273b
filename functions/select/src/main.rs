use backup_select::handle;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    backup_core::logging::run(service_fn(
        |event: LambdaEvent<Value>| async move { handle(event.payload) },
    ))
    .await
}
