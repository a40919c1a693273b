//! Test support for the function crates (feature `test-util`, dev-dependencies only):
//! mocked RDS clients with fast retries, and real RDS error responses, so that
//! handlers are tested through the SDK's own deserialization and retry logic.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_rds::operation::describe_account_attributes::DescribeAccountAttributesOutput;
use aws_sdk_rds::types::AccountQuota;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, TimeZone, Utc};

use crate::config::ModuleSettings;
use crate::rds::Rds;
use crate::types::Execution;

/// The SDK's standard retries (3 attempts) without the waiting.
pub fn fast_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
}

/// The RDS layer in `region`, answering from `rules`; an unmatched call panics.
pub fn mock_rds_in(region: &'static str, rules: &[&Rule]) -> Rds {
    Rds {
        region: region.to_owned(),
        client: mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |b| b
            .region(aws_sdk_rds::config::Region::from_static(region))
            .retry_config(fast_retries())),
    }
}

/// The RDS layer in us-east-1, answering from `rules`.
pub fn mock_rds(rules: &[&Rule]) -> Rds {
    mock_rds_in("us-east-1", rules)
}

/// The region's manual snapshots: `listed` DB snapshots (one page) and no DB cluster snapshot.
pub fn manual_snapshots(listed: Vec<aws_sdk_rds::types::DbSnapshot>) -> [Rule; 2] {
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
    [
        mock!(aws_sdk_rds::Client::describe_db_snapshots).then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(listed.clone()))
                .build()
        }),
        mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

/// `DescribeAccountAttributes` reporting `used` of `max` for the quota `name`
/// (`ManualSnapshots` or `ManualClusterSnapshots`), beside an unrelated quota.
pub fn account_quota(name: &'static str, used: i64, max: i64) -> Rule {
    mock!(aws_sdk_rds::Client::describe_account_attributes).then_output(move || {
        DescribeAccountAttributesOutput::builder()
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name(name)
                    .used(used)
                    .max(max)
                    .build(),
            )
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name("DBInstances")
                    .used(1)
                    .max(40)
                    .build(),
            )
            .build()
    })
}

/// An RDS (AWS Query protocol) error response, as the service sends it.
pub fn rds_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
         <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(status).expect("valid status"), SdkBody::from(body))
}

/// An S3 error response as S3 sends it (XML, no namespace).
pub fn s3_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>0000000000000000</RequestId></Error>"
    );
    HttpResponse::new(StatusCode::try_from(status).expect("valid status"), SdkBody::from(body))
}

/// A bare HTTP error without an AWS error body (e.g. a load balancer's 503).
pub fn http_status(status: u16) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).expect("valid status"),
        SdkBody::from("error"),
    )
}

pub const EXECUTION_ID: &str =
    "arn:aws:states:us-east-1:123456789012:execution:nestedphoenix-production-backup:scheduled-1";

/// 2026-11-24T02:00:00.462Z, the start of the fixture execution.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 2, 0, 0).unwrap() + chrono::Duration::milliseconds(462)
}

pub fn execution() -> Execution {
    Execution {
        execution_id: EXECUTION_ID.to_owned(),
        execution_start_time: start_time(),
    }
}

/// The settings of the spec's basic example.
pub fn settings() -> ModuleSettings {
    ModuleSettings {
        project: "nestedphoenix".into(),
        environment: "production".into(),
        instance: "nestedphoenix-production".into(),
        adopted: Vec::new(),
        tag_keys: Default::default(),
        additional_tags: [("Owner".to_string(), "DBA Team".to_string())].into(),
    }
}

/// A fixture from the repository's `tests/fixtures/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An environment that hands out a valid value for every variable of the
/// contract, leaves out `missing`, and records which names were read.
pub struct RecordingEnv {
    missing: Option<&'static str>,
    read: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl RecordingEnv {
    fn new(missing: Option<&'static str>) -> Self {
        RecordingEnv {
            missing,
            read: Default::default(),
        }
    }

    fn read(&self) -> Vec<String> {
        self.read.lock().expect("not poisoned").iter().cloned().collect()
    }
}

impl crate::config::Env for RecordingEnv {
    fn get(&self, name: &str) -> Option<String> {
        use crate::contract::env::*;
        self.read.lock().expect("not poisoned").insert(name.to_owned());
        if self.missing == Some(name) {
            return None;
        }
        let value = match name {
            PROJECT_NAME => "nestedphoenix",
            ENVIRONMENT => "production",
            BACKUP_INSTANCE => "nestedphoenix-production",
            ADOPTED_INSTANCES => r#"["nestedphoenix-production-v1"]"#,
            PROJECT_TAG_KEY => "Project",
            ENVIRONMENT_TAG_KEY => "Environment",
            ADDITIONAL_TAGS => "{\"Owner\": \"DBA Team\"}",
            EXPORT_BUCKET => "nestedphoenix-production-backups",
            EXPORT_ROLE_ARN => "arn:aws:iam::123456789012:role/export",
            EXPORT_KMS_KEY_ARN => "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            COPY_DESTINATION_REGION => "us-west-2",
            COPY_KMS_KEY_ARN => "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            COPY_OPTION_GROUPS => r#"{"ledger-oracle-tde":"ledger-oracle-tde-west"}"#,
            RETENTION_DAYS => "30",
            MIN_SNAPSHOTS_TO_KEEP => "3",
            DRY_RUN => "false",
            MAX_SNAPSHOT_AGE_HOURS => "30",
            SNS_TOPIC_ARN => "arn:aws:sns:us-east-1:123456789012:backup-alerts",
            SLACK_WEBHOOK_SECRET_ARN => {
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:nestedphoenix-production-slack-webhook-url-AbCdEf"
            }
            SLACK_WEBHOOK_SECRET_VERSION => "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            METRICS_NAMESPACE => "CustomMetrics/DatabaseBackup",
            DATABASE_STATE_MACHINE_ARN => {
                "arn:aws:states:us-east-1:123456789012:stateMachine:nestedphoenix-production-database"
            }
            SCHEDULE_GROUP_NAME => "nestedphoenix-production",
            SCHEDULER_ROLE_ARN => "arn:aws:iam::123456789012:role/nestedphoenix-production-scheduler",
            SELECTION => r#"{"tags":{"backup":"daily"},"exclude_tags":{"backup-skip":"*"},"patterns":["prod-.*"]}"#,
            DRILL => {
                r#"{"copy":"source","identifier_prefix":"drill-a1b2c3-","instance_class":null,"subnet_group":null,"security_group_ids":[],"rto_minutes":60,"keep_minutes":0,"max_wait_minutes":240,"poll_seconds":60,"databases":[],"random_count":0}"#
            }
            PROBE_EXTRA_CA_CERTIFICATES => include_str!("../../../tests/fixtures/probe-extra-ca.pem"),
            _ => return None,
        };
        Some(value.to_owned())
    }
}

/// Checks a function's configuration against the contract: it reads exactly
/// the variables the contract lists for `function`, starts with all of them,
/// and refuses to start, naming the variable, without each required one.
pub fn assert_reads_its_contracted_environment<T>(
    function: crate::contract::Function,
    from_env: impl Fn(&RecordingEnv) -> Result<T, crate::Error>,
) {
    let contracted = function.environment();
    let env = RecordingEnv::new(None);
    if let Err(err) = from_env(&env) {
        panic!("{function} does not start with the contract's environment: {err}");
    }
    let mut listed: Vec<String> = contracted.iter().map(|v| v.name.to_owned()).collect();
    listed.sort();
    assert_eq!(
        env.read(),
        listed,
        "{function} reads other variables than the contract lists"
    );
    for variable in contracted {
        let result = from_env(&RecordingEnv::new(Some(variable.name)));
        match (variable.required, result) {
            (true, Ok(_)) => panic!("{function} starts without its required {}", variable.name),
            (true, Err(err)) => assert!(
                err.error_type() == crate::ErrorType::ConfigError && err.to_string().contains(variable.name),
                "{function} without {}: {err}",
                variable.name
            ),
            (false, Err(err)) => panic!(
                "{function} needs {}, which the contract calls optional: {err}",
                variable.name
            ),
            (false, Ok(_)) => {}
        }
    }
}

/// The module's queue of exports waiting for a slot, mocked: the queue's messages as
/// waiters leave them, and the calls of a hand-on.
#[cfg(feature = "slot-queue")]
pub mod slot_queue {
    use std::sync::{Arc, Mutex};

    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    use aws_sdk_sfn::types::error::InvalidToken;
    use aws_sdk_sqs::operation::change_message_visibility_batch::ChangeMessageVisibilityBatchOutput;
    use aws_sdk_sqs::operation::delete_message::DeleteMessageOutput;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
    use aws_sdk_sqs::types::{Message, MessageAttributeValue, QueueAttributeName};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use crate::slot_queue::{SlotQueue, WAIT_STARTED_AT};

    /// The queue, its SQS calls answered from `sqs_rules` and Step Functions' from `sfn_rules`.
    /// Unless a rule of `sqs_rules` answers GetQueueAttributes, the queue counts a message at
    /// first (a hand-on receives what `sqs_rules` give) and none after.
    pub fn mock_slot_queue(sqs_rules: &[&Rule], sfn_rules: &[&Rule]) -> SlotQueue {
        let counted = mock!(aws_sdk_sqs::Client::get_queue_attributes)
            .sequence()
            .output(|| counts(1, 0))
            .output(|| counts(0, 0))
            .repeatedly()
            .build();
        let sqs_rules: Vec<&Rule> = sqs_rules.iter().copied().chain([&counted]).collect();
        SlotQueue {
            sqs: mock_client!(aws_sdk_sqs, RuleMode::MatchAny, sqs_rules.as_slice()),
            sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn_rules),
            url: QUEUE_URL.to_owned(),
        }
    }

    /// GetQueueAttributes' answer: messages visible, and held (not visible).
    pub fn counts(visible: u64, held: u64) -> GetQueueAttributesOutput {
        GetQueueAttributesOutput::builder()
            .attributes(QueueAttributeName::ApproximateNumberOfMessages, visible.to_string())
            .attributes(
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                held.to_string(),
            )
            .build()
    }

    pub const QUEUE_URL: &str =
        "https://sqs.us-east-1.amazonaws.com/123456789012/dbbackup-local-0a1b2c-export-slot-waiters";

    /// A waiter's message: (receipt handle, task token, when its wait began, if the message says).
    pub type Waiting = (&'static str, &'static str, Option<&'static str>);

    /// The queue answers each receive with the next ten of `messages`, then with none.
    pub fn waiters(messages: &[Waiting]) -> Rule {
        let mut sequence = mock!(aws_sdk_sqs::Client::receive_message)
            .match_requests(|r| {
                r.queue_url() == Some(QUEUE_URL)
                    && r.max_number_of_messages() == Some(10)
                    && r.wait_time_seconds() == Some(1)
                    && r.message_attribute_names() == [WAIT_STARTED_AT]
            })
            .sequence();
        for batch in messages.chunks(10) {
            let batch = batch.to_vec();
            sequence = sequence.output(move || {
                ReceiveMessageOutput::builder()
                    .set_messages(Some(batch.iter().map(|&w| message(w)).collect()))
                    .build()
            });
        }
        sequence
            .output(|| ReceiveMessageOutput::builder().build())
            .repeatedly()
            .build()
    }

    pub fn message((handle, token, wait_started_at): Waiting) -> Message {
        let builder = Message::builder().receipt_handle(handle).body(token);
        match wait_started_at {
            Some(at) => builder.message_attributes(
                WAIT_STARTED_AT,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(at)
                    .build()
                    .unwrap(),
            ),
            None => builder,
        }
        .build()
    }

    /// The queue puts messages back; each call's receipt handles go to `put_back`.
    pub fn puts_back(put_back: &Arc<Mutex<Vec<String>>>) -> Rule {
        let put_back = Arc::clone(put_back);
        mock!(aws_sdk_sqs::Client::change_message_visibility_batch)
            .match_requests(move |r| {
                let visible_now = r.entries().iter().all(|e| e.visibility_timeout() == Some(0));
                put_back
                    .lock()
                    .unwrap()
                    .extend(r.entries().iter().map(|e| e.receipt_handle().to_owned()));
                r.queue_url() == Some(QUEUE_URL) && visible_now && r.entries().len() <= 10
            })
            .then_output(|| {
                ChangeMessageVisibilityBatchOutput::builder()
                    .set_successful(Some(Vec::new()))
                    .set_failed(Some(Vec::new()))
                    .build()
                    .unwrap()
            })
    }

    pub fn deletes() -> Rule {
        mock!(aws_sdk_sqs::Client::delete_message)
            .match_requests(|r| r.queue_url() == Some(QUEUE_URL))
            .then_output(|| DeleteMessageOutput::builder().build())
    }

    pub fn wakes(token: &'static str) -> Rule {
        mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(move |r| r.task_token() == Some(token) && r.output() == Some("{}"))
            .then_output(|| SendTaskSuccessOutput::builder().build())
    }

    pub fn refuses(token: &'static str) -> Rule {
        mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(move |r| r.task_token() == Some(token))
            .then_error(|| SendTaskSuccessError::InvalidToken(InvalidToken::builder().message("Invalid Token").build()))
    }
}

/// STS answering AssumeRole of `role_arn`, asked with `external_id` for a session named
/// `session_name`, with a session's keys (and nothing else: another request gets no answer).
#[cfg(feature = "assume-role")]
pub fn assume_role(role_arn: &'static str, external_id: &'static str, session_name: &'static str) -> Rule {
    use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
    use aws_sdk_sts::types::Credentials;
    mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(move |r| {
            r.role_arn() == Some(role_arn)
                && r.external_id() == Some(external_id)
                && r.role_session_name() == Some(session_name)
        })
        .then_output(|| {
            AssumeRoleOutput::builder()
                .credentials(
                    Credentials::builder()
                        .access_key_id("ASIASESSION")
                        .secret_access_key("secret")
                        .session_token("token")
                        .expiration(aws_smithy_types::DateTime::from_secs(1_900_000_000))
                        .build()
                        .expect("complete credentials"),
                )
                .build()
        })
}
