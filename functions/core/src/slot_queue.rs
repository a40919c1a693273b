//! The export slot's hand-on. RDS runs at most five exports per account; an
//! export that finds every slot taken waits in the module's queue (its task
//! token in a message, `QueueForExportSlot`, with the time its wait for a slot
//! began). The poll that sees an export of this module end frees its slot for
//! the execution that has waited longest, and an export that reaches a free
//! slot at its first try hands it on in the same way while anyone waits
//! (rather than take it from the waiter woken for it): it takes the queue's messages (up to
//! [`MOST_TAKEN`]), and of them the one whose wait began first is deleted and
//! its execution woken (`SendTaskSuccess`), which tries at once; the others are
//! put back at once. The wait's beginning, not the message's place, orders the
//! waiters: a woken waiter that finds the slot taken after all (by a database
//! that reached its export in between) queues again at the back, and by the
//! order of the queue alone it would wait behind every later one, again and
//! again, up to its bound. A message whose wait has already ended (the token
//! refused) is deleted and the next one tried, through every message taken: a
//! waiter leaves a message at each try at its own time, and those of the
//! longest waits sort first (in the 1,000-database fleet a bound of ten
//! skipped left one slot in ten not handed on).
//! Several hand-ons at once (exports that end together) each take the messages the
//! others have not: one that finds every message held waits until they are put back,
//! rather than see an empty queue and hand its slot on to no one (in a fault
//! matrix run on a loaded machine, six of 25 slots went to no one so). Here, in
//! the functions, rather than in states of the state machine: each waiter skipped there
//! cost six state transitions, and in a fleet whose exports queue most messages
//! are of waiters that tried again at their own time. A hand-on that fails
//! fails nothing: the waiters try again at theirs.

use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, QueueAttributeName};
use chrono::{DateTime, Utc};

use crate::config::{self, Env};
use crate::contract::env;
use crate::{AwsFailure, Error};

/// Messages one hand-on takes to find the longest wait: more than the waiters of the
/// largest `max_concurrency` it expects, with their messages of earlier tries.
pub const MOST_TAKEN: usize = 100;
/// The message attribute `QueueForExportSlot` sets: when the wait for a slot began.
pub const WAIT_STARTED_AT: &str = "wait_started_at";
/// The most messages one ReceiveMessage returns (SQS API Reference, ReceiveMessage).
const BATCH: usize = 10;
/// How long taken messages stay hidden from other hand-ons should this one stop
/// before it puts them back.
const VISIBILITY_TIMEOUT_SECONDS: i32 = 30;
/// How long a hand-on that finds every message held by another waits for them to be put back,
/// at most, and how many times: SQS answers as soon as they are.
const HELD_WAIT_SECONDS: i32 = 5;
const HELD_WAITS: usize = 2;
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

impl SlotQueue {
    pub fn new(sdk_config: &aws_config::SdkConfig, url: String) -> Self {
        SlotQueue {
            sqs: aws_sdk_sqs::Client::new(sdk_config),
            sfn: aws_sdk_sfn::Client::new(sdk_config),
            url,
        }
    }
}

/// `EXPORT_SLOT_QUEUE_URL`: the queue's URL, or None (no queue: no hand-on).
pub fn url_from_env(env: &impl Env) -> Result<Option<String>, Error> {
    let url = config::optional(env, env::EXPORT_SLOT_QUEUE_URL)?;
    if let Some(url) = &url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(Error::config(
            env::EXPORT_SLOT_QUEUE_URL,
            format!("{url:?} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"),
        ));
    }
    Ok(url)
}

/// What a hand-on did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOn {
    /// The waiter of this message got the slot, past this many ended waits,
    /// among this many messages taken.
    Woke { skipped: usize, taken: usize },
    /// No one waits (past this many ended waits).
    NoWaiter { skipped: usize },
    /// Each of the [`MOST_TAKEN`] messages taken was of an ended wait: any others wait for
    /// the next hand-on.
    GaveUp,
    /// A call failed: the waiters try at their own time.
    Failed(String),
}

/// How many messages the queue holds, approximately (SQS's counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    visible: u64,
    held: u64,
}

/// A message taken from the queue: a waiter's task token and when its wait began.
struct Waiter<'a> {
    message: &'a Message,
    /// None for a message without the attribute: it is served after those with it.
    wait_started_at: Option<DateTime<Utc>>,
}

impl SlotQueue {
    pub async fn hand_on(&self) -> HandOn {
        let messages = match self.take().await {
            Ok(messages) => messages,
            Err(reason) => return HandOn::Failed(reason),
        };
        let mut waiters: Vec<Waiter> = messages.iter().map(Waiter::of).collect();
        // Stable: of one waiter's messages, the oldest (of tries that ended) come first and are
        // deleted on the way to its live one, as the queue's own order would have them.
        waiters.sort_by_key(|w| (w.wait_started_at.is_none(), w.wait_started_at));
        let mut outcome = HandOn::NoWaiter { skipped: 0 };
        let mut untried = waiters.len();
        for (skipped, waiter) in waiters.iter().enumerate() {
            untried -= 1;
            match self.wake(waiter.message).await {
                Ok(true) => {
                    outcome = HandOn::Woke {
                        skipped,
                        taken: messages.len(),
                    };
                    break;
                }
                Ok(false) => outcome = HandOn::NoWaiter { skipped: skipped + 1 },
                Err(reason) => {
                    outcome = HandOn::Failed(reason);
                    break;
                }
            }
        }
        if outcome == (HandOn::NoWaiter { skipped: MOST_TAKEN }) {
            outcome = HandOn::GaveUp;
        }
        let rest = &waiters[waiters.len() - untried..];
        if let Err(reason) = self.put_back(rest).await {
            // Hidden for the visibility timeout only: the next hand-on sees them again.
            tracing::warn!(%reason, messages = rest.len(), "messages of waiters not put back at once");
        }
        outcome
    }

    /// The queue's messages, up to [`MOST_TAKEN`], each hidden from other hand-ons until put back.
    /// SQS's counts say how many to expect, approximately: they "may not achieve consistency until
    /// at least 1 minute after the producers stop sending messages" (SQS API Reference,
    /// GetQueueAttributes), so the queue is long-polled even when it counts none, and a long poll
    /// answers with the first messages it finds, so receiving goes on while fewer were taken than
    /// counted. While another hand-on holds every message (exports that ended together), this one
    /// waits for it to put them back, up to [`HELD_WAITS`] more long polls.
    async fn take(&self) -> Result<Vec<Message>, String> {
        let mut queued = self.count().await?;
        let mut taken = Vec::new();
        let mut held_waits = 0;
        while taken.len() < MOST_TAKEN {
            let held = taken.is_empty() && queued.visible == 0 && queued.held > 0;
            let batch = self
                .receive(if held { HELD_WAIT_SECONDS } else { WAIT_TIME_SECONDS })
                .await?;
            let received = batch.len();
            taken.extend(batch);
            if taken.is_empty() {
                if held_waits == HELD_WAITS {
                    break;
                }
                queued = self.count().await?;
                if queued == (Count { visible: 0, held: 0 }) {
                    break;
                }
                held_waits += 1;
                continue;
            }
            if received == 0 || (received < BATCH && taken.len() as u64 >= queued.visible) {
                break;
            }
        }
        Ok(taken)
    }

    /// One long poll of up to [`BATCH`] messages, hidden for [`VISIBILITY_TIMEOUT_SECONDS`].
    async fn receive(&self, wait_seconds: i32) -> Result<Vec<Message>, String> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(BATCH as i32)
            .message_attribute_names(WAIT_STARTED_AT)
            .visibility_timeout(VISIBILITY_TIMEOUT_SECONDS)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("ReceiveMessage", &err).to_string())?;
        Ok(received.messages.unwrap_or_default())
    }

    /// The queue's messages visible, and held by a hand-on (received, not yet put back or deleted).
    async fn count(&self) -> Result<Count, String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("GetQueueAttributes", &err).to_string())?;
        let number = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|attributes| attributes.get(&name))
                .and_then(|value| value.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Count {
            visible: number(QueueAttributeName::ApproximateNumberOfMessages),
            held: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// Deletes the waiter's message and wakes it: false when its wait had already ended.
    async fn wake(&self, message: &Message) -> Result<bool, String> {
        let (Some(receipt_handle), Some(token)) = (message.receipt_handle(), message.body()) else {
            return Err("SQS returned a message without its body or receipt handle".to_owned());
        };
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(|err| AwsFailure::from_sdk("DeleteMessage", &err).to_string())?;
        match self.sfn.send_task_success().task_token(token).output("{}").send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(wait_has_ended) => Ok(false),
            Err(err) => Err(AwsFailure::from_sdk("SendTaskSuccess", &err).to_string()),
        }
    }

    /// Makes the messages of the waiters not woken visible again, ten to a call.
    async fn put_back(&self, waiters: &[Waiter<'_>]) -> Result<(), String> {
        for chunk in waiters.chunks(BATCH) {
            let entries = chunk.iter().enumerate().map(|(i, waiter)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(waiter.message.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .map_err(|err| err.to_string())
            });
            let out = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries.collect::<Result<_, _>>()?))
                .send()
                .await
                .map_err(|err| AwsFailure::from_sdk("ChangeMessageVisibilityBatch", &err).to_string())?;
            if let Some(failed) = out.failed().first() {
                return Err(format!(
                    "ChangeMessageVisibilityBatch refused {} of {} messages: {}",
                    out.failed().len(),
                    chunk.len(),
                    failed.message().unwrap_or(&failed.code)
                ));
            }
        }
        Ok(())
    }
}

impl<'a> Waiter<'a> {
    fn of(message: &'a Message) -> Self {
        let wait_started_at = message
            .message_attributes()
            .and_then(|attributes| attributes.get(WAIT_STARTED_AT))
            .and_then(|value| value.string_value())
            .and_then(|value| DateTime::parse_from_rfc3339(value).ok())
            .map(|at| at.with_timezone(&Utc));
        Self {
            message,
            wait_started_at,
        }
    }
}

/// Step Functions refuses the token of a task that is no longer waiting.
fn wait_has_ended(err: &SendTaskSuccessError) -> bool {
    err.is_invalid_token() || err.is_task_does_not_exist() || err.is_task_timed_out()
}
