use backup_core::rds::Rds;
use backup_select::{Config, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk_config = backup_core::aws::load_sdk_config();
    let rds = Rds::new(&sdk_config);
    let config = Config::from_env(&backup_core::config::ProcessEnv);
    let (rds, config) = (&rds, &config);
    backup_core::logging::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (rds, config) = backup_core::ready(rds, config)?;
        handle(rds, config, event.payload).await
    }))
    .await
}
