//! The probe against mocked Secrets Manager answers and a port nothing listens on: what it
//! adds to the drill's checks, what it raises, and that it never shows the secret. Its queries
//! of a real PostgreSQL and MariaDB over TLS are the local AWS's (tests/statemachine/test_drills.py).

use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use backup_core::contract::Function;
use backup_core::drill::{DrillRestore, PROBE_CHECK, ProbeTarget};
use backup_core::testing;
use backup_probe::{Clients, Config, handle};
use serde_json::json;

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader-AbCdEf";

fn clients(rule: &Rule) -> Clients {
    Clients {
        secrets: mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [rule], |b| b
            .retry_config(testing::fast_retries())),
    }
}

fn config() -> Config {
    Config::from_env(&[("PROBE_EXTRA_CA_CERTIFICATES", "")]).unwrap()
}

fn secret(value: &'static str) -> Rule {
    mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .match_requests(|req| req.secret_id() == Some(SECRET))
        .then_output(move || GetSecretValueOutput::builder().secret_string(value).build())
}

/// Secrets Manager refusing the read with this error code.
fn secret_error(code: &'static str, message: &'static str) -> Rule {
    mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(move || {
        GetSecretValueError::generic(
            aws_sdk_secretsmanager::error::ErrorMetadata::builder()
                .code(code)
                .message(message)
                .build(),
        )
    })
}

/// A drill's restore as the drill function's check leaves it, aimed at `port` on this machine.
fn restore(port: u16) -> DrillRestore {
    let mut restore: DrillRestore = serde_json::from_value(json!({
        "db": "prod-database-1", "region": "us-east-1", "kind": "instance",
        "restored_id": "drill-a1b2c3-prod-database-1-12060500", "snapshot_id": "prod-database-1-backup",
        "snapshot_created_at": null, "operation": "RestoreDBInstanceFromDBSnapshot",
        "requested_at": "2026-12-06T05:00:00Z", "deadline": "2026-12-06T06:00:00Z",
        "delete_after": "2026-12-06T07:00:00Z", "rto_minutes": 60, "keep_seconds": 0, "poll_seconds": 60,
        "expected": {"engine": "postgres", "engine_version": "16.3", "allocated_storage_gib": 20, "encrypted": true},
        "status": "available", "ready": true, "next_poll_seconds": 0, "available_at": "2026-12-06T05:12:00Z",
        "checks": [{"name": "status", "expected": "available", "actual": "available", "passed": true}],
    }))
    .unwrap();
    restore.probe = Some(ProbeTarget {
        engine: "postgres".into(),
        address: "127.0.0.1".into(),
        port,
        database: Some("shop".into()),
        secret_arn: SECRET.into(),
        query: "SELECT 1".into(),
        connect_timeout_seconds: 5,
    });
    restore
}

/// A port on this machine that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn probe_check(rule: &Rule) -> backup_core::drill::Check {
    probe_check_of("postgres", rule).await
}

async fn probe_check_of(engine: &str, rule: &Rule) -> backup_core::drill::Check {
    let mut restore = restore(closed_port());
    restore.probe.as_mut().unwrap().engine = engine.into();
    let event = json!({ "restore": restore });
    let probed = handle(&clients(rule), &config(), event).await.unwrap();
    assert_eq!(probed.checks.len(), 2, "the probe adds one check: {:?}", probed.checks);
    probed.checks.last().unwrap().clone()
}

#[test]
fn reads_its_contracted_environment() {
    testing::assert_reads_its_contracted_environment(Function::Probe, Config::from_env);
}

#[test]
fn trusts_the_rds_authorities_and_the_extra_ones_only_if_they_are_certificates() {
    let rds_only = config().trusted.len();
    assert!(
        rds_only >= 90,
        "the built-in bundle holds every region's authorities: {rds_only}"
    );
    let extra = include_str!("../../../tests/fixtures/probe-extra-ca.pem");
    let with_extra = Config::from_env(&[("PROBE_EXTRA_CA_CERTIFICATES", extra)]).unwrap();
    assert_eq!(with_extra.trusted.len(), rds_only + 1);
    let err = Config::from_env(&[("PROBE_EXTRA_CA_CERTIFICATES", "not a certificate")]).unwrap_err();
    assert_eq!(err.error_type().as_str(), "ConfigError");
    assert!(err.to_string().contains("PROBE_EXTRA_CA_CERTIFICATES"), "{err}");
}

#[tokio::test]
async fn a_restore_without_a_probe_target_is_invalid_input() {
    let mut without = restore(5432);
    without.probe = None;
    let err = handle(&clients(&secret("{}")), &config(), json!({ "restore": without }))
        .await
        .unwrap_err();
    assert_eq!(err.error_type().as_str(), "InvalidInput");
    assert!(err.to_string().contains("restore.probe"), "{err}");
}

#[tokio::test]
async fn a_database_that_refuses_the_connection_fails_the_check_naming_where() {
    for engine in ["postgres", "mysql", "mariadb"] {
        let check = probe_check_of(
            engine,
            &secret(r#"{"username": "reader", "password": "p4ss", "engine": "postgres"}"#),
        )
        .await;
        assert_eq!(check.name, PROBE_CHECK);
        assert_eq!(check.expected, "SELECT 1 answered, read-only");
        assert!(!check.passed);
        assert!(
            check.actual.starts_with("connecting failed: "),
            "{engine}: {}",
            check.actual
        );
        assert!(
            check.actual.to_lowercase().contains("refused"),
            "{engine}: the cause is named: {}",
            check.actual
        );
        assert!(!check.actual.contains("p4ss"));
    }
}

#[tokio::test]
async fn a_stored_procedure_is_refused_over_mysqls_protocol_before_connecting() {
    let mut restore = restore(closed_port());
    let target = restore.probe.as_mut().unwrap();
    target.engine = "mysql".into();
    target.query = "  call refresh_totals()".into();
    let rule = secret(r#"{"username": "reader", "password": "p4ss"}"#);
    let probed = handle(&clients(&rule), &config(), json!({ "restore": restore }))
        .await
        .unwrap();
    let check = probed.checks.last().unwrap();
    assert!(!check.passed);
    assert_eq!(
        check.actual,
        "the query failed: refused before connecting: over MySQL's protocol a CALL can commit the \
         read-only transaction and write after it"
    );
}

#[tokio::test]
async fn an_engine_the_probe_does_not_speak_fails_the_check_before_reading_the_secret() {
    let unread = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
        panic!("the secret is not read for an engine the probe does not speak");
    });
    let check = probe_check_of("sqlserver-se", &unread).await;
    assert!(!check.passed);
    assert_eq!(check.actual, "the probe does not speak to the engine sqlserver-se");
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_or_holds_no_credentials_fails_the_check_never_showing_it() {
    let denied = secret_error(
        "AccessDeniedException",
        "not authorized to perform: secretsmanager:GetSecretValue",
    );
    let check = probe_check(&denied).await;
    assert!(!check.passed);
    assert!(
        check.actual.starts_with(&format!(
            "the secret {SECRET} cannot be read: GetSecretValue failed: AccessDeniedException"
        )),
        "{}",
        check.actual
    );

    let check = probe_check(&secret(r#"{"user": "reader", "pass": "p4ss"}"#)).await;
    assert!(!check.passed);
    assert!(
        check.actual.contains("username and password (value not shown)"),
        "{}",
        check.actual
    );
    assert!(!check.actual.contains("p4ss"));
}

#[tokio::test]
async fn throttling_of_the_secret_is_raised_for_the_state_machine_to_retry() {
    let throttled = secret_error("ThrottlingException", "Rate exceeded");
    let err = handle(
        &clients(&throttled),
        &config(),
        json!({ "restore": restore(closed_port()) }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type().as_str(), "Throttled", "{err}");
}
