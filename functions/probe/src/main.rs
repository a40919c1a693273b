use backup_probe::{Clients, Config, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = backup_core::aws::load_sdk_config();
    let clients = Ok(Clients::new(&sdk_config));
    let config = Config::from_env(&backup_core::config::ProcessEnv);
    let (clients, config) = (&clients, &config);
    backup_core::logging::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (clients, config) = backup_core::ready(clients, config)?;
        handle(clients, config, event.payload).await
    }))
    .await
}
