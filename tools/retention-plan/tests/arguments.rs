//! The command's arguments: refused with the usage before any AWS call.

use std::process::Command;

fn run(arguments: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_retention-plan"))
        .args(arguments)
        // No endpoint or credentials reach AWS from here: a refusal must come first.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("the command runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn without_a_state_machine_arn_it_prints_the_usage() {
    let (code, stderr) = run(&["--json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("the state machine's ARN is missing"), "{stderr}");
    assert!(stderr.contains("usage: retention-plan STATE_MACHINE_ARN"), "{stderr}");
}

#[test]
fn an_unreadable_time_is_named() {
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-backup";
    let (code, stderr) = run(&[arn, "--at", "tomorrow"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--at tomorrow"), "{stderr}");
}

#[test]
fn an_arn_without_a_region_is_refused() {
    let (code, stderr) = run(&["arn:aws:states::123456789012:stateMachine:backup"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a state machine ARN"), "{stderr}");
}
