use std::process::ExitCode;

use aws_config::{BehaviorVersion, Region};
use backup_retention_plan::{Clients, Instance, render, report};
use chrono::{DateTime, Utc};

const USAGE: &str = "usage: retention-plan STATE_MACHINE_ARN [--json] [--at RFC3339-TIME]
  STATE_MACHINE_ARN  the module's state_machine_arn output
  --json             the plan as JSON instead of a table
  --at TIME          plan as of this time instead of now (e.g. 2027-01-01T00:00:00Z)
Credentials and the endpoint come from the usual AWS settings (AWS_PROFILE, AWS_ENDPOINT_URL...).";

struct Arguments {
    state_machine_arn: String,
    json: bool,
    at: DateTime<Utc>,
}

fn arguments() -> Result<Arguments, String> {
    let mut args = std::env::args().skip(1);
    let (mut state_machine_arn, mut json, mut at) = (None, false, Utc::now());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--at" => {
                let raw = args.next().ok_or("--at needs a time")?;
                at = DateTime::parse_from_rfc3339(&raw)
                    .map_err(|err| format!("--at {raw}: {err}"))?
                    .with_timezone(&Utc);
            }
            "-h" | "--help" => return Err(String::new()),
            _ if arg.starts_with("arn:") && state_machine_arn.is_none() => state_machine_arn = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok(Arguments {
        state_machine_arn: state_machine_arn.ok_or("the state machine's ARN is missing")?,
        json,
        at,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments = match arguments() {
        Ok(arguments) => arguments,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("retention-plan: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // arn:aws:states:REGION:ACCOUNT:stateMachine:NAME: the instance's region.
    let Some(region) = arguments.state_machine_arn.split(':').nth(3).filter(|r| !r.is_empty()) else {
        eprintln!(
            "retention-plan: {} is not a state machine ARN",
            arguments.state_machine_arn
        );
        return ExitCode::from(2);
    };
    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .load()
        .await;
    let clients = Clients {
        sfn: aws_sdk_sfn::Client::new(&sdk_config),
        lambda: aws_sdk_lambda::Client::new(&sdk_config),
        s3: backup_core::cost::s3_client(&sdk_config),
        sdk_config,
    };
    let planned = async {
        let instance = Instance::read(&clients, &arguments.state_machine_arn).await?;
        report(&clients, &instance, arguments.at).await
    };
    match planned.await {
        Ok(report) if arguments.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("the report serializes")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", render::table(&report));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("retention-plan: {err}");
            ExitCode::FAILURE
        }
    }
}
