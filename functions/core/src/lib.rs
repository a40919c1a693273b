//! Shared library of the database-backup functions: the JSON contract between
//! states, configuration, naming and tag rules, the error taxonomy and AWS
//! client setup.

pub mod aws;
pub mod config;
pub mod contract;
pub mod cost;
pub mod drill;
pub mod error;
pub mod exports;
pub mod input;
pub mod logging;
pub mod naming;
pub mod quota;
pub mod rds;
pub mod restore;
pub mod retention;
pub mod run;
pub mod selection;
#[cfg(feature = "slot-queue")]
pub mod slot_queue;
pub mod tags;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod text;
pub mod types;

pub use error::{AwsFailure, Error, ErrorType};

/// The release this function belongs to: the workspace's version, which the
/// module reports as its `module_version` output (through the contract).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Clients and configuration are built once per cold start; when building them
/// failed, every invocation reports that error (a `ConfigError` naming the
/// variable) instead of the runtime crashing with an unnamed init error.
pub fn ready<'a, C, K>(clients: &'a Result<C, Error>, config: &'a Result<K, Error>) -> Result<(&'a C, &'a K), Error> {
    let clients = clients.as_ref().map_err(Clone::clone)?;
    let config = config.as_ref().map_err(Clone::clone)?;
    Ok((clients, config))
}
