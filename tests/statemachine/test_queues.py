"""The account's slots, as the run's executions queue for them in the local AWS: exports wait
for one of the account's export slots (the export slot queue), copies for one of the
destination's copy slots; each on the clock, failed only at its wait's bound. Apart from
test_runs.py, in a suite of its own: these executions mostly wait, half the runs' time."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from harness import SOURCE, LocalAwsTest, control, now, planned


class ExportSlots(LocalAwsTest):
    """The account runs at most five exports (here one: the setting export_limit): a
    database whose export finds every slot taken waits for one, on the clock, and is
    failed only when its wait bound is reached, naming the wait."""

    databases = {"prod-database-1": "postgres", "prod-database-2": "postgres", "prod-database-3": "mysql"}
    ONLY_EXPORTS = {"skip_copy": True, "skip_prune": True}

    def test_exports_take_turns_and_every_database_succeeds(self):
        # Exports of 100 simulated minutes (10 real seconds): far longer than the real time
        # between the databases reaching theirs on a busy machine, so each later one finds
        # the slot taken and waits (with 20-minute exports, one once found it free).
        control("PUT", "settings", {"export_limit": 1, "export_seconds_per_gb": 300})
        # The third waits for two exports and then runs its own, about 7 simulated hours in all
        # on a busy machine (each real second of delay is 10 simulated minutes at 600x): a
        # bound of 12 hours, so that only a slot that never comes fails it. Exports polled
        # hourly: a waiter expects the hand-on two hours after the export's end at the latest
        # (12 real seconds), room for a busy machine's delays.
        run = self.run_execution({**self.ONLY_EXPORTS, "export_wait_timeout_seconds": 12 * 3600,
                                  "export_poll_interval_seconds": 3600})

        self.assert_succeeded(run)
        tasks = self.rds.describe_export_tasks()["ExportTasks"]
        self.assertEqual(sorted(t["Status"] for t in tasks), ["COMPLETE"] * 3)
        # One at a time: each started after the one before it ended.
        spans = sorted((t["TaskStartTime"], t["TaskEndTime"]) for t in tasks)
        for (_, ended), (started, _) in zip(spans, spans[1:]):
            self.assertGreaterEqual(started, ended)
        # The later two waited in the queue; a hand-on woke one at least (the other may find
        # the slot free at its own try first, when it expected the hand-on).
        self.assertGreaterEqual(run.entered("QueueForExportSlot"), 2)
        self.assertGreaterEqual(len(self.woken(run)), 1, self.woken(run))
        # Each export's end handed its slot on in the poll that saw it end, after that poll
        # answered its wait: a receive each for the two that ended while another waited (the
        # last one's may come after the run's end), and each message taken was deleted and
        # its waiter woken, or its token refused.
        self.assertGreaterEqual(self.calls("sqs:ReceiveMessage"), 2)
        self.assertEqual(self.calls("sqs:DeleteMessage"), self.hand_on_wakes(run))
        self.assertEqual(run.entered("WaitForExportSlot"), 0)
        self.assertEqual(self.queued_messages(), 0)

    def woken(self, run) -> list[dict]:
        """The waits in the queue that a hand-on ended (the others timed out)."""
        return [e for e in run.events() if e["type"] == "TaskSucceeded"
                and e["taskSucceededEventDetails"]["resource"] == "sendMessage.waitForTaskToken"]

    def hand_on_wakes(self, run) -> int:
        """The hand-ons' SendTaskSuccess calls: the others each ended a wait for RDS, ready."""
        ended_waits = [e for e in run.events() if e["type"] == "TaskSucceeded"
                       and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"]
        return self.calls("states:SendTaskSuccess") - len(ended_waits)

    def queue_url(self) -> str:
        name = planned(self.deploy_settings()).resource("aws_sqs_queue.export_slot_waiters")["name"]
        return self.aws.client("sqs", SOURCE).get_queue_url(QueueName=name)["QueueUrl"]

    def queued_messages(self) -> int:
        attributes = self.aws.client("sqs", SOURCE).get_queue_attributes(
            QueueUrl=self.queue_url(), AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())

    def test_a_hand_on_skips_a_waiter_whose_wait_ended(self):
        # A message left by a wait that ended (its token is no longer valid): the hand-on
        # deletes it and wakes the next waiter.
        self.aws.client("sqs", SOURCE).send_message(QueueUrl=self.queue_url(), MessageBody="a-token-of-a-wait-long-gone")
        # The waiter waits in the queue until the hand-on is due and two poll intervals more (2
        # simulated hours), then tries by itself. A machine busy with the other suites once took
        # longer than the 12 real seconds that is on the suites' clock (600 times real time) to
        # poll the export's end and hand the slot on, and the waiter found it by itself: on a
        # clock 200 times real time it has 36 s (each export's first poll, an interval after it
        # begins, comes 18 s later too).
        control("PUT", "settings", {"clock_scale": 200, "export_limit": 1, "export_seconds_per_gb": 90})
        run = self.run_execution({**self.ONLY_EXPORTS, "db_instance_ids": ["prod-database-1", "prod-database-2"],
                                  "export_wait_timeout_seconds": 12 * 3600, "export_poll_interval_seconds": 3600},
                                 timeout=300)

        self.assert_succeeded(run)
        self.assertEqual(len(self.woken(run)), 1)
        # The stale message's token was refused, then the live waiter's taken: a wake that
        # woke no one (each accepted one ends a wait in the queue).
        self.assertGreaterEqual(self.hand_on_wakes(run) - len(self.woken(run)), 1)
        self.assertEqual(self.queued_messages(), 0)

    def test_the_hand_on_wakes_the_wait_that_began_first_not_the_first_message(self):
        # A waiter queued again (its wake found the slot taken, or it tried at its own time)
        # is behind later waiters in the queue's order; the hand-on serves the wait's
        # beginning. Here a second waiter, a state machine of the test's that waits in the
        # module's queue as QueueForExportSlot does, queues after prod-database-2 a wait that
        # began a day earlier: the end of prod-database-1's export wakes it, not prod-database-2
        # (in the queue's order, prod-database-2's ended wait and then its live one come first).
        control("PUT", "settings", {"export_limit": 1, "export_seconds_per_gb": 900})
        arn = self.start_execution({**self.ONLY_EXPORTS, "db_instance_ids": ["prod-database-1", "prod-database-2"],
                                    "export_wait_timeout_seconds": 24 * 3600, "export_poll_interval_seconds": 3600})
        # prod-database-2 queues, tries at its own time an hour later (the slot still taken for
        # 5 hours) and queues again: its first message is of an ended wait, its second live.
        self.wait_until(lambda: self.queued_messages() >= 2, "prod-database-2 queues for the slot twice")
        self.assertEqual(len(self.rds.describe_export_tasks()["ExportTasks"]), 1, "the slot is still taken")
        earlier = (now() - timedelta(days=1)).isoformat()
        [other_waiter] = self.start_queued_waiters(earlier)
        self.wait_until(lambda: self.queued_messages() >= 3, "the test's waiter queues behind it")

        self.wait_until(lambda: self.sfn.describe_execution(executionArn=other_waiter)["status"] != "RUNNING",
                        "the hand-on wakes the wait that began first", timeout=300)
        self.assertEqual(self.sfn.describe_execution(executionArn=other_waiter)["status"], "SUCCEEDED")
        run = self.wait(arn, timeout=300)
        self.assert_succeeded(run)
        # prod-database-2 was never woken: it found the slot free at its own try.
        self.assertEqual(len(self.woken(run)), 0, self.woken(run))
        self.assertEqual(sorted(t["Status"] for t in self.rds.describe_export_tasks()["ExportTasks"]), ["COMPLETE"] * 2)

    def test_a_first_try_leaves_free_slots_to_the_waiters_and_queues_behind_them(self):
        # Waiters of an hour already (the test's state machine, waiting as QueueForExportSlot
        # does), one for each of the five slots export counts on, all free: prod-database-1
        # reaching its export for the first time hands each on and queues, then takes one at
        # its own try.
        waiters = self.start_queued_waiters((now() - timedelta(hours=1)).isoformat(), count=5)
        self.wait_until(lambda: self.queued_messages() >= 5, "the test's waiters queue")

        run = self.run_execution({**self.ONLY_EXPORTS, "db_instance_ids": ["prod-database-1"],
                                  "export_wait_timeout_seconds": 12 * 3600, "export_poll_interval_seconds": 1800})

        self.assert_succeeded(run)
        self.assertEqual([self.sfn.describe_execution(executionArn=arn)["status"] for arn in waiters],
                         ["SUCCEEDED"] * 5)
        self.assertEqual((run.entered("QueueForExportSlot"), run.entered("Export")), (1, 2))
        self.assertEqual(len(self.woken(run)), 0, "prod-database-1 took a slot at its own try")
        self.assertEqual([t["Status"] for t in self.rds.describe_export_tasks()["ExportTasks"]], ["COMPLETE"])
        # Its message of the wait that timed out goes at its export's end (the poll that saw it
        # end hands on after answering its wait: maybe after the run's end).
        self.wait_until(lambda: self.queued_messages() == 0, "the ended wait's message is deleted")

    def start_queued_waiters(self, wait_started_at: str, count: int = 1) -> list[str]:
        """Executions that wait in the module's queue as QueueForExportSlot does."""
        definition = {"StartAt": "QueueForExportSlot", "States": {"QueueForExportSlot": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": self.queue_url(), "MessageBody.$": "$$.Task.Token", "MessageAttributes": {
                "wait_started_at": {"DataType": "String", "StringValue.$": "$.wait_started_at"}}},
            "TimeoutSeconds": 2 * 24 * 3600, "End": True}}}
        machine = self.sfn.create_state_machine(
            name="test-queued-waiter", definition=json.dumps(definition),
            roleArn=self.sfn.describe_state_machine(stateMachineArn=self.deployment.state_machine_arn)["roleArn"])
        return [self.sfn.start_execution(stateMachineArn=machine["stateMachineArn"],
                                         input=json.dumps({"wait_started_at": wait_started_at}))["executionArn"]
                for _ in range(count)]

    def wait_until(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"not within {timeout} s: {what}")
            time.sleep(0.2)

    def test_without_the_queue_a_waiter_waits_and_tries_again(self):
        # The queue is gone (deleted by hand): waiting in it fails, the execution waits in a
        # Wait state as long instead, and the hand-on fails nothing.
        self.aws.client("sqs", SOURCE).delete_queue(QueueUrl=self.queue_url())
        control("PUT", "settings", {"export_limit": 1, "export_seconds_per_gb": 300})
        run = self.run_execution({**self.ONLY_EXPORTS, "db_instance_ids": ["prod-database-1", "prod-database-2"],
                                  "export_wait_timeout_seconds": 12 * 3600})

        self.assert_succeeded(run)
        self.assertGreaterEqual(run.entered("WaitForExportSlot"), 1)
        self.assertEqual(sorted(t["Status"] for t in self.rds.describe_export_tasks()["ExportTasks"]), ["COMPLETE"] * 2)

    def test_a_slot_that_never_comes_fails_the_database_at_its_bound(self):
        control("PUT", "settings", {"export_limit": 0})  # RDS refuses every export
        run = self.run_execution({**self.ONLY_EXPORTS, "db_instance_ids": ["prod-database-1"],
                                  "export_wait_timeout_seconds": 3600})

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "export_error")
        self.assertEqual((error["step"], error["Error"]), ("export", "ExportSlotsFull"))
        self.assertIn("waited for a slot, the bound set by export_wait_timeout_seconds", error["Cause"])
        self.assertEqual(self.rds.describe_export_tasks()["ExportTasks"], [])
        # The waits grow to 15 minutes: at most 11 tries in the hour at 30 s (run.rs, slot_tries),
        # not one a poll interval (121).
        self.assertLessEqual(run.entered("Export"), 11)


class CopySlots(LocalAwsTest):
    """A destination region runs at most 20 copies in progress (here one: the setting
    copy_limit): a database whose copy finds every slot taken waits for one, on the clock,
    and is failed only when its wait bound is reached, naming the wait."""

    databases = {"prod-database-1": "postgres", "prod-database-2": "postgres", "prod-database-3": "mysql"}
    ONLY_COPIES = {"skip_export": True, "skip_prune": True}

    def copies(self) -> list[dict]:
        return self.rds_destination.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]

    def test_copies_take_turns_and_every_database_succeeds(self):
        # Copies of 100 simulated minutes and more: far longer than the real time between the
        # databases reaching theirs on a busy machine, so each later one finds the slot taken.
        control("PUT", "settings", {"copy_limit": 1, "copy_seconds_per_gb": 300})
        run = self.run_execution({**self.ONLY_COPIES, "copy_wait_timeout_seconds": 12 * 3600})

        self.assert_succeeded(run)
        self.assertEqual(sorted(c["Status"] for c in self.copies()), ["available"] * 3)
        self.assertGreaterEqual(run.entered("WaitForCopySlot"), 2)

    def test_a_slot_that_never_comes_fails_the_database_at_its_bound(self):
        control("PUT", "settings", {"copy_limit": 0})  # RDS refuses every copy
        run = self.run_execution({**self.ONLY_COPIES, "db_instance_ids": ["prod-database-1"],
                                  "copy_wait_timeout_seconds": 3600})

        self.assertEqual(run.status, "FAILED")
        error = run.result_of("prod-database-1", "copy_error")
        self.assertEqual((error["step"], error["Error"]), ("copy", "CopySlotsFull"))
        self.assertIn("waited for one, the bound set by copy_wait_timeout_seconds", error["Cause"])
        self.assertEqual(self.copies(), [])
        # The waits grow to 15 minutes: at most 11 tries in the hour at 30 s (run.rs, slot_tries),
        # not one a poll interval (121).
        self.assertLessEqual(run.entered("Copy"), 11)
