use backup_wait_for_available::callback::{self, Scheduling};
use backup_wait_for_available::{Clients, Config};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = backup_core::aws::load_sdk_config();
    let clients = Config::from_env(&backup_core::config::ProcessEnv).and_then(|config| {
        let scheduling = Scheduling::new(&sdk_config, &config);
        Ok((Clients::new(sdk_config, &config)?, scheduling))
    });
    let clients = &clients;
    backup_core::logging::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (clients, scheduling) = clients.as_ref().map_err(Clone::clone)?;
        // The next poll is scheduled to invoke this same function (its ARN as invoked).
        let function_arn = &event.context.invoked_function_arn;
        callback::handle(clients, scheduling, function_arn, event.payload, chrono::Utc::now()).await
    }))
    .await
}
