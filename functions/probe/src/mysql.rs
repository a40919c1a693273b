//! The probe over MySQL's protocol: RDS for MySQL and RDS for MariaDB.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, SslOpts, TxOpts};

use crate::{APPLICATION_NAME, Config, Failure, Login, with_causes, within_query_time};

/// How long the goodbye may take once the probe is done.
const DISCONNECT_SECONDS: u64 = 5;

/// Runs `query` as a prepared statement in a read-only transaction of a read-only session,
/// rolls it back, and answers how many rows it returned.
pub(crate) async fn query(config: &Config, login: &Login<'_>, query: &str) -> Result<usize, Failure> {
    // A stored procedure may COMMIT and start a read-write transaction of its own (MySQL lets
    // it; a function or a trigger may not): one statement would not be enough.
    if query
        .split_whitespace()
        .next()
        .is_some_and(|word| word.eq_ignore_ascii_case("call"))
    {
        return Err(Failure::at("the query")(
            "refused before connecting: over MySQL's protocol a CALL can commit the read-only \
             transaction and write after it"
                .to_owned(),
        ));
    }
    // TLS required, verified with the server's name against the trusted authorities only
    // (not the web's, which the driver would add).
    let tls = SslOpts::default()
        .with_root_certs(
            config
                .trusted
                .iter()
                .map(|certificate| certificate.to_vec().into())
                .collect(),
        )
        .with_disable_built_in_roots(true);
    let options = OptsBuilder::default()
        .ip_or_hostname(login.address)
        .tcp_port(login.port)
        .user(Some(login.username))
        .pass(Some(login.password))
        .db_name(login.database)
        // Else, connected to a server on this machine, the driver moves to its socket, without TLS.
        .prefer_socket(false)
        .ssl_opts(tls)
        .connect_attribute("program_name", APPLICATION_NAME)
        // Every transaction of the session read-only, not only the probe's own.
        .init(vec!["SET SESSION TRANSACTION READ ONLY"]);
    let mut connection = login.connect(Conn::new(options), |err| with_causes(&err)).await?;
    let answered = within_query_time(async {
        let mut read_only = TxOpts::default();
        read_only.with_readonly(true);
        let mut transaction = connection
            .start_transaction(read_only)
            .await
            .map_err(|err| Failure::at("starting a read-only transaction")(with_causes(&err)))?;
        // A prepared statement is one statement: `COMMIT; DELETE ...` cannot end the
        // read-only transaction and write after it.
        let rows: Vec<Row> = transaction
            .exec(query, ())
            .await
            .map_err(|err| Failure::at("the query")(with_causes(&err)))?;
        transaction
            .rollback()
            .await
            .map_err(|err| Failure::at("rolling back")(with_causes(&err)))?;
        Ok(rows.len())
    })
    .await;
    // The connection ends with the probe. After a query past its time the goodbye waits for
    // the query's end, so it has a bound too; the server then ends it when it sees the socket
    // closed, and the drill deletes the database after its checks anyway.
    let _ = tokio::time::timeout(Duration::from_secs(DISCONNECT_SECONDS), connection.disconnect()).await;
    answered
}
