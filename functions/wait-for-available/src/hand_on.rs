//! The export slot's hand-on. RDS runs at most five exports per account; an
//! export that finds every slot taken waits in the module's queue (its task
//! token in a message, `QueueForExportSlot`). The poll that sees an export of
//! this module end frees its slot for the execution that has waited longest:
//! it receives the oldest message (a standard queue keeps its order as best it can), deletes it and wakes that execution
//! (`SendTaskSuccess`), which tries at once. A message whose wait has already
//! ended (the token refused) is deleted and the next one taken, up to
//! [`MOST_SKIPPED`]. Here, in the poll, rather than in states of the state
//! machine: each waiter skipped there cost six state transitions, and in a fleet
//! whose exports queue most messages are of waiters that tried again at their
//! own time. A hand-on that fails fails nothing: the waiters try again at theirs.

use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use backup_core::AwsFailure;

/// Messages of ended waits one hand-on deletes before it gives up.
pub const MOST_SKIPPED: usize = 10;
/// How long a received message stays hidden from other hand-ons: this one deletes it at once.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 30;
/// A long poll, however short, asks every SQS server: a short one samples some and "might not
/// receive any messages" from a queue that holds a few (SQS Developer Guide, "Amazon SQS short
/// and long polling"), and a waiter missed would wait for its own try.
const WAIT_TIME_SECONDS: i32 = 1;

/// The module's queue of exports waiting for a slot.
pub struct SlotQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub url: String,
}

/// What a hand-on did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOn {
    /// The waiter of this message got the slot, past this many ended waits.
    Woke { skipped: usize },
    /// No one waits (past this many ended waits).
    NoWaiter { skipped: usize },
    /// Every message taken was of an ended wait: the rest wait for the next hand-on.
    GaveUp,
    /// A call failed: the waiters try at their own time.
    Failed(String),
}

impl SlotQueue {
    pub async fn hand_on(&self) -> HandOn {
        for skipped in 0..=MOST_SKIPPED {
            let received = match self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(1)
                .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
                .wait_time_seconds(WAIT_TIME_SECONDS)
                .send()
                .await
            {
                Ok(received) => received,
                Err(err) => return HandOn::Failed(AwsFailure::from_sdk("ReceiveMessage", &err).to_string()),
            };
            let Some(message) = received.messages().first() else {
                return HandOn::NoWaiter { skipped };
            };
            let (Some(receipt_handle), Some(token)) = (message.receipt_handle(), message.body()) else {
                return HandOn::Failed("SQS returned a message without its body or receipt handle".to_owned());
            };
            if let Err(err) = self
                .sqs
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(receipt_handle)
                .send()
                .await
            {
                return HandOn::Failed(AwsFailure::from_sdk("DeleteMessage", &err).to_string());
            }
            match self.sfn.send_task_success().task_token(token).output("{}").send().await {
                Ok(_) => return HandOn::Woke { skipped },
                Err(err) if err.as_service_error().is_some_and(wait_has_ended) => {}
                Err(err) => return HandOn::Failed(AwsFailure::from_sdk("SendTaskSuccess", &err).to_string()),
            }
        }
        HandOn::GaveUp
    }
}

/// Step Functions refuses the token of a task that is no longer waiting.
fn wait_has_ended(err: &SendTaskSuccessError) -> bool {
    err.is_invalid_token() || err.is_task_does_not_exist() || err.is_task_timed_out()
}
