//! `probe`: a restore drill's read-only SQL probe (`restore_drill.sql_probe`). The drill
//! function's `check` hands it the restore with a [`ProbeTarget`] (the available drill
//! database's endpoint, the secret of the credentials and the query); the probe reads the
//! credentials from Secrets Manager, connects over TLS verified against the RDS certificate
//! authorities (`rds-ca-bundle.pem`, with the server's name), runs the query in a read-only
//! transaction, rolls it back, and adds what happened to the restore's checks
//! ([`drill::PROBE_CHECK`]). A login, a query or a connection that fails is a failed check, and
//! so a failed drill, named in its message; AWS throttling the secret's read is `Throttled`, which
//! the state machine retries.
//!
//! The probe runs in the VPC of the drill databases (`sql_probe.subnet_ids`), so the drill
//! databases' security groups must let it in, and it needs a route to Secrets Manager (an
//! interface endpoint or a NAT gateway).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use backup_core::config::{self, Env};
use backup_core::contract::env;
use backup_core::drill::{self, Check, DrillRestore, ProbeTarget};
use backup_core::{AwsFailure, Error, input};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::config::SslMode;

/// The certificate authorities of RDS's server certificates, every region's (scripts/rds-ca-bundle).
const RDS_CA_BUNDLE: &str = include_str!("../rds-ca-bundle.pem");

/// How long the query may run once connected.
const QUERY_SECONDS: u64 = 60;

/// The connection's application name: `pg_stat_activity` and the database's logs show it.
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
    #[error("no connection to {address}:{port} within {seconds} s")]
    ConnectTimedOut { address: String, port: u16, seconds: u64 },
    #[error("the query did not end within {QUERY_SECONDS} s")]
    QueryTimedOut,
    #[error("{stage} failed: {}", database_error(source))]
    Database {
        stage: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

async fn probe(clients: &Clients, config: &Config, target: &ProbeTarget) -> Result<String, Failure> {
    let credentials = credentials(clients, &target.secret_arn).await?;
    let database = target
        .database
        .clone()
        .or(credentials.dbname)
        .unwrap_or_else(|| "postgres".to_owned());
    let mut postgres = tokio_postgres::Config::new();
    postgres
        .host(&target.address)
        .port(target.port)
        .user(&credentials.username)
        .password(&credentials.password)
        .dbname(&database)
        .application_name(APPLICATION_NAME)
        // Every transaction of the session read-only, not only the probe's own.
        .options("-c default_transaction_read_only=on")
        .ssl_mode(SslMode::Require)
        .connect_timeout(Duration::from_secs(u64::from(target.connect_timeout_seconds)));
    let connect_seconds = u64::from(target.connect_timeout_seconds);
    let connecting = postgres.connect(tls(config)?);
    let (mut client, connection) = tokio::time::timeout(Duration::from_secs(connect_seconds), connecting)
        .await
        .map_err(|_| Failure::ConnectTimedOut {
            address: target.address.clone(),
            port: target.port,
            seconds: connect_seconds,
        })?
        .map_err(|source| Failure::Database {
            stage: "connecting",
            source,
        })?;
    let connection = tokio::spawn(connection);
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(QUERY_SECONDS), async {
        let transaction = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|source| Failure::Database {
                stage: "starting a read-only transaction",
                source,
            })?;
        // The extended protocol takes one statement: `COMMIT; DELETE ...` cannot end the
        // read-only transaction and write after it.
        let rows = transaction
            .query(target.query.as_str(), &[])
            .await
            .map_err(|source| Failure::Database {
                stage: "the query",
                source,
            })?;
        transaction.rollback().await.map_err(|source| Failure::Database {
            stage: "rolling back",
            source,
        })?;
        Ok::<_, Failure>(rows.len())
    })
    .await;
    // Whatever happened, the connection ends with the probe (a query past its time with it).
    connection.abort();
    let rows = answered.map_err(|_| Failure::QueryTimedOut)??;
    let elapsed = started.elapsed().as_millis();
    Ok(format!(
        "{rows} row{} in {elapsed} ms, as {} on {database}, over TLS (server certificate verified)",
        if rows == 1 { "" } else { "s" },
        credentials.username,
    ))
}

/// What the database answered (`FATAL: password authentication failed for user "admin"`), or
/// the whole chain of a failure without an answer (a refused connection, a TLS failure):
/// tokio-postgres's own text is only its kind (`db error`).
fn database_error(err: &tokio_postgres::Error) -> String {
    if let Some(answer) = err.as_db_error() {
        return format!("db error: {}: {}", answer.severity(), answer.message());
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
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

fn tls(config: &Config) -> Result<tokio_postgres_rustls::MakeRustlsConnect, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(config.trusted.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| Failure::Tls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(client))
}
