//! `probe`: a restore drill's read-only SQL probe (`restore_drill.sql_probe`). The drill
//! function's `check` hands it the restore with a [`ProbeTarget`] (the available drill
//! database's engine and endpoint, the secret of the credentials and the query); the probe
//! reads the credentials from Secrets Manager, connects over TLS verified against the RDS
//! certificate authorities (`rds-ca-bundle.pem`, with the server's name), runs the query as
//! one statement in a read-only transaction of a read-only session, rolls it back, and adds
//! what happened to the restore's checks ([`drill::PROBE_CHECK`]). It speaks PostgreSQL's
//! protocol to RDS for PostgreSQL (`postgres`) and MySQL's to RDS for MySQL and MariaDB
//! (`mysql`), as [`drill::PROBED_ENGINES`] says. A login, a query or a connection that fails
//! is a failed check, and so a failed drill, named in its message; AWS throttling the secret's
//! read is `Throttled`, which the state machine retries.
//!
//! The probe runs in the VPC of the drill databases (`sql_probe.subnet_ids`), so the drill
//! databases' security groups must let it in, and it needs a route to Secrets Manager (an
//! interface endpoint or a NAT gateway).

mod mysql;
mod postgres;

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use backup_core::config::{self, Env};
use backup_core::contract::env;
use backup_core::drill::{self, Check, DrillRestore, ProbeProtocol, ProbeTarget};
use backup_core::{AwsFailure, Error, input};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::Value;

/// The certificate authorities of RDS's server certificates, every region's (scripts/rds-ca-bundle).
const RDS_CA_BUNDLE: &str = include_str!("../rds-ca-bundle.pem");

/// How long the query may run once connected.
const QUERY_SECONDS: u64 = 60;

/// The connection's application name (`program_name` to MySQL): `pg_stat_activity`,
/// `performance_schema.session_connect_attrs` and the databases' logs show it.
const APPLICATION_NAME: &str = "database-backup-drill-probe";

pub struct Clients {
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(sdk_config: &SdkConfig) -> Self {
        Clients {
            secrets: aws_sdk_secretsmanager::Client::new(sdk_config),
        }
    }
}

/// The function's environment: the certificate authorities trusted besides RDS's.
#[derive(Debug, Clone)]
pub struct Config {
    pub trusted: Vec<CertificateDer<'static>>,
}

impl Config {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let mut trusted = certificates(RDS_CA_BUNDLE)
            .map_err(|reason| Error::config("rds-ca-bundle.pem", format!("(built in) {reason}")))?;
        if let Some(extra) = config::optional(env, env::PROBE_EXTRA_CA_CERTIFICATES)? {
            trusted.extend(
                certificates(&extra).map_err(|reason| Error::config(env::PROBE_EXTRA_CA_CERTIFICATES, reason))?,
            );
        }
        Ok(Config { trusted })
    }
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let found: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|err| format!("is not PEM certificates: {err}"))?;
    if found.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(found)
}

/// The state's input: the drill's restore, its probe target set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeInput {
    restore: DrillRestore,
}

/// The credentials the probe logs in with: a secret in the form RDS and Secrets Manager's
/// rotation use (`username`, `password`, optionally `dbname`; other keys are ignored).
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
}

pub async fn handle(clients: &Clients, config: &Config, event: Value) -> Result<DrillRestore, Error> {
    let ProbeInput { mut restore } = input::parse(event)?;
    let target = restore
        .probe
        .clone()
        .ok_or_else(|| Error::invalid_input("restore.probe", "is required: the drill's check sets it"))?;
    let (actual, passed) = match probe(clients, config, &target).await {
        Ok(answer) => (answer, true),
        Err(Failure::Aws(failure)) if failure.error_type().retry_class().is_some() => {
            return Err(failure.into());
        }
        Err(failure) => (failure.to_string(), false),
    };
    tracing::info!(db = %restore.db, restored_id = %restore.restored_id, passed, actual = %actual, "sql probe");
    restore.checks.push(Check {
        name: drill::PROBE_CHECK.to_owned(),
        expected: format!("{} answered, read-only", target.query),
        actual,
        passed,
    });
    Ok(restore)
}

/// Why a probe failed, as its check reads.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the secret {secret_arn} cannot be read: {failure}")]
    Secret { secret_arn: String, failure: String },
    #[error("{0}")]
    Aws(AwsFailure),
    #[error("the probe does not speak to the engine {0}")]
    Engine(String),
    #[error("no connection to {address}:{port} within {seconds} s")]
    ConnectTimedOut { address: String, port: u16, seconds: u64 },
    #[error("the query did not end within {QUERY_SECONDS} s")]
    QueryTimedOut,
    /// What the database or the connection answered, at which stage.
    #[error("{stage} failed: {answer}")]
    Database { stage: &'static str, answer: String },
    #[error("TLS: {0}")]
    Tls(String),
}

impl Failure {
    fn at(stage: &'static str) -> impl FnOnce(String) -> Failure {
        move |answer| Failure::Database { stage, answer }
    }
}

/// Where and as whom a probe logs in.
struct Login<'a> {
    address: &'a str,
    port: u16,
    username: &'a str,
    password: &'a str,
    database: Option<&'a str>,
    connect_timeout: Duration,
}

impl Login<'_> {
    /// The connection `connecting` opens, if it does within the connect timeout.
    async fn connect<T, E>(
        &self,
        connecting: impl Future<Output = Result<T, E>>,
        answer: impl FnOnce(E) -> String,
    ) -> Result<T, Failure> {
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| Failure::ConnectTimedOut {
                address: self.address.to_owned(),
                port: self.port,
                seconds: self.connect_timeout.as_secs(),
            })?
            .map_err(|err| Failure::at("connecting")(answer(err)))
    }
}

/// The query's rows, if it ends within [`QUERY_SECONDS`].
async fn within_query_time(querying: impl Future<Output = Result<usize, Failure>>) -> Result<usize, Failure> {
    tokio::time::timeout(Duration::from_secs(QUERY_SECONDS), querying)
        .await
        .map_err(|_| Failure::QueryTimedOut)?
}

async fn probe(clients: &Clients, config: &Config, target: &ProbeTarget) -> Result<String, Failure> {
    let protocol = ProbeProtocol::of_engine(&target.engine).ok_or_else(|| Failure::Engine(target.engine.clone()))?;
    let credentials = credentials(clients, &target.secret_arn).await?;
    let database = target.database.clone().or(credentials.dbname).or(match protocol {
        ProbeProtocol::Postgres => Some(postgres::DEFAULT_DATABASE.to_owned()),
        ProbeProtocol::MySql => None,
    });
    let login = Login {
        address: &target.address,
        port: target.port,
        username: &credentials.username,
        password: &credentials.password,
        database: database.as_deref(),
        connect_timeout: Duration::from_secs(u64::from(target.connect_timeout_seconds)),
    };
    let started = Instant::now();
    let rows = match protocol {
        ProbeProtocol::Postgres => postgres::query(config, &login, &target.query).await?,
        ProbeProtocol::MySql => mysql::query(config, &login, &target.query).await?,
    };
    let elapsed = started.elapsed().as_millis();
    let on = database.map(|name| format!(" on {name}")).unwrap_or_default();
    Ok(format!(
        "{rows} row{} in {elapsed} ms, as {}{on}, over TLS (server certificate verified)",
        if rows == 1 { "" } else { "s" },
        credentials.username,
    ))
}

/// An error with the chain of its causes (a refused connection, a TLS failure): a driver's
/// own text is often only its kind. A cause whose text the message already holds (a driver
/// that shows its source) is not repeated.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

async fn credentials(clients: &Clients, secret_arn: &str) -> Result<Credentials, Failure> {
    let unreadable = |failure: String| Failure::Secret {
        secret_arn: secret_arn.to_owned(),
        failure,
    };
    let out = clients
        .secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await
        .map_err(|err| {
            let failure = AwsFailure::from_sdk("GetSecretValue", &err);
            if failure.error_type().retry_class().is_some() {
                Failure::Aws(failure)
            } else {
                unreadable(failure.to_string())
            }
        })?;
    let text = out
        .secret_string()
        .ok_or_else(|| unreadable("it holds no text value".to_owned()))?;
    // The value is a secret: the error names the keys expected, never the value.
    serde_json::from_str(text).map_err(|_| {
        unreadable("it is not a JSON object with the text keys username and password (value not shown)".to_owned())
    })
}
