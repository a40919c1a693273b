# The queue of exports waiting for a slot: RDS runs at most five exports per account.
# An export that finds every slot taken puts its task token here and waits
# (sqs:sendMessage.waitForTaskToken); the poll that sees an export of this module end
# (wait-for-available), and an export's first try that finds a slot free (export), take
# the messages, wake the database's execution whose wait began first (the message
# attribute wait_started_at), which tries again at once, and put the others back. The
# waiters still try at their own time (a slot another caller frees sends no hand-on).

resource "aws_sqs_queue" "export_slot_waiters" {
  name = "${local.prefix}-${local.instance_hash}-export-slot-waiters"
  # Longer than the longest wait the module accepts (7 days): a message outlives its waiter.
  message_retention_seconds = 1209600
  # A hand-on deletes the message it received before it wakes the waiter.
  visibility_timeout_seconds = 30
  # The messages are task tokens, not backup data: SQS's own keys (SSE-SQS) encrypt them.
  sqs_managed_sse_enabled = true
  tags                    = local.tags
}
