//! The one executable of every function, `bootstrap` in each zip. Lambda hands a custom
//! runtime the function's handler setting in `_HANDLER`; the module sets it to the
//! function's name, and that function is served. One executable links the AWS SDK once,
//! so the release build optimises the whole program once rather than once per function.

// Seven functions' futures nest in one async main: computing its layout in a release build
// goes deeper than rustc's default limit of 128.
#![recursion_limit = "256"]

use backup_core::contract::Function;
use lambda_runtime::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = match Function::from_handler(&std::env::var("_HANDLER").unwrap_or_default()) {
        Ok(function) => function,
        Err(refusal) => {
            // Logged as written: the error main returns is printed quoted and escaped.
            tracing::error!("{refusal}");
            return Err(refusal.into());
        }
    };
    let sdk_config = backup_core::aws::load_sdk_config().await;
    match function {
        Function::Select => backup_select::serve().await,
        Function::Snapshot => backup_snapshot::serve(&sdk_config).await,
        Function::WaitForAvailable => backup_wait_for_available::serve(sdk_config).await,
        Function::Export => backup_export::serve(&sdk_config).await,
        Function::Copy => backup_copy::serve(&sdk_config).await,
        Function::Prune => backup_prune::serve(&sdk_config).await,
        Function::Notify => backup_notify::serve(&sdk_config).await,
    }
}
