//! The probe over PostgreSQL's protocol: RDS for PostgreSQL.

use std::sync::Arc;

use tokio_postgres::config::SslMode;

use crate::{APPLICATION_NAME, Config, Failure, Login, with_causes, within_query_time};

/// The database a login names none of goes to (tokio-postgres would take the user's name).
pub(crate) const DEFAULT_DATABASE: &str = "postgres";

/// Runs `query` in a read-only transaction of a read-only session, rolls it back, and
/// answers how many rows it returned.
pub(crate) async fn query(config: &Config, login: &Login<'_>, query: &str) -> Result<usize, Failure> {
    let mut postgres = tokio_postgres::Config::new();
    postgres
        .host(login.address)
        .port(login.port)
        .user(login.username)
        .password(login.password)
        .application_name(APPLICATION_NAME)
        // Every transaction of the session read-only, not only the probe's own.
        .options("-c default_transaction_read_only=on")
        .ssl_mode(SslMode::Require)
        .connect_timeout(login.connect_timeout);
    // The probe names one always (DEFAULT_DATABASE at the least).
    if let Some(database) = login.database {
        postgres.dbname(database);
    }
    let (mut client, connection) = login.connect(postgres.connect(tls(config)?), answer).await?;
    let connection = tokio::spawn(connection);
    let answered = within_query_time(async {
        let transaction = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|err| Failure::at("starting a read-only transaction")(answer(err)))?;
        // The extended protocol takes one statement: `COMMIT; DELETE ...` cannot end the
        // read-only transaction and write after it.
        let rows = transaction
            .query(query, &[])
            .await
            .map_err(|err| Failure::at("the query")(answer(err)))?;
        transaction
            .rollback()
            .await
            .map_err(|err| Failure::at("rolling back")(answer(err)))?;
        Ok(rows.len())
    })
    .await;
    // Whatever happened, the connection ends with the probe (a query past its time with it).
    connection.abort();
    answered
}

/// What the database answered (`FATAL: password authentication failed for user "admin"`), or
/// the whole chain of a failure without an answer: tokio-postgres's own text is only its
/// kind (`db error`).
fn answer(err: tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(answer) => format!("db error: {}: {}", answer.severity(), answer.message()),
        None => with_causes(&err),
    }
}

/// TLS verified against the trusted authorities only, with the server's name.
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
