use backup_wait_for_available::{Clients, Config, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = backup_core::aws::load_sdk_config();
    let clients =
        Config::from_env(&backup_core::config::ProcessEnv).and_then(|config| Clients::new(sdk_config, &config));
    let clients = &clients;
    backup_core::logging::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let clients = clients.as_ref().map_err(Clone::clone)?;
        handle(clients, event.payload).await
    }))
    .await
}
