use std::process::ExitCode;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use backup_core::rds::Rds;
use backup_restore::{USAGE, parse, run};

/// How often the wait reads the new database's status.
const POLL: Duration = Duration::from_secs(15);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let arguments = match parse(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        // Help asked for: the usage on standard output, and success.
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("restore: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &arguments.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let sdk_config = loader.load().await;
    let rds = match Rds::new(&sdk_config) {
        Ok(rds) => rds,
        Err(err) => {
            eprintln!("restore: {err} (give --region or set AWS_REGION)");
            return ExitCode::from(2);
        }
    };
    match run(&rds, &arguments, chrono::Utc::now(), POLL, &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("restore: {problem}");
            ExitCode::FAILURE
        }
    }
}
