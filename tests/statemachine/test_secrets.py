"""The Slack webhook URL is a secret: it lives in a Secrets Manager secret under
the module's key, which notify reads at cold start, and nowhere else: not in
any function's configuration (lambda:GetFunctionConfiguration shows the
environment), the functions' logs, the state machine definitions, the
execution histories and outputs, or the messages sent. The functions' logs are
JSON, one object per line, each naming the run and the database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import ROOT, LocalAwsTest, control
from release import version

RELEASE = version()

LOGS = Path(os.environ.get("LOCAL_AWS_STATE") or ROOT / ".tools" / "local-aws") / "lambda" / "logs"


class SlackWebhookStaysSecret(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}

    @classmethod
    def deploy_settings(cls):
        # One database that does not exist: a failure is reported too.
        return super().deploy_settings().with_(db_identifiers=("prod-database-1", "no-such-database"))

    def function_logs(self) -> dict[str, int]:
        return {path.name: path.stat().st_size for path in LOGS.glob(f"{self.settings.project}-*.log")}

    def test_the_webhook_url_is_in_no_log_definition_history_or_message(self):
        notify = self.deployment.environments["notify"]
        stored = self.aws.client("secretsmanager").get_secret_value(
            SecretId=notify["SLACK_WEBHOOK_SECRET_ARN"], VersionId=notify["SLACK_WEBHOOK_SECRET_VERSION"])
        secret = stored["SecretString"].split("/services/", 1)[1]  # the part of a Slack URL that grants posting
        described = self.aws.client("secretsmanager").describe_secret(SecretId=notify["SLACK_WEBHOOK_SECRET_ARN"])
        self.assertEqual(described["Name"], f"{self.settings.prefix}-slack-webhook-url")
        self.assertTrue(described["KmsKeyId"].startswith("arn:aws:kms:"))  # the module's key, not aws/secretsmanager
        logged_before = self.function_logs()
        # Slack refuses the message, so notify logs what went wrong with it as well.
        control("PUT", "settings", {"slack_status": 500})

        run = self.run_execution()

        self.assertEqual(run.status, "FAILED")
        places = {"SNS message": json.dumps(self.sns_messages()), "Slack message": json.dumps(self.slack_messages()),
                  "execution history": json.dumps(run.events(), default=str),
                  "execution output": json.dumps(run.description, default=str)}
        lambda_client = self.aws.client("lambda")
        for function, arn in self.deployment.function_arns.items():
            places[f"configuration of {function}"] = json.dumps(
                lambda_client.get_function_configuration(FunctionName=arn), default=str)
        for arn in (self.deployment.state_machine_arn, self.deployment.database_state_machine_arn):
            places[f"definition of {arn}"] = self.sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        lines = []
        for name, size in self.function_logs().items():
            with (LOGS / name).open("rb") as log:
                log.seek(logged_before.get(name, 0))
                lines += [(name, line) for line in log.read().decode().splitlines() if line.strip()]
        places["function logs"] = "\n".join(line for _, line in lines)

        self.assertIn("Slack answered 500", places["function logs"])  # notify did log the Slack failure
        self.assertEqual(len(self.slack_messages()), 1)  # notify read the URL from the secret, and posted
        for place, text in places.items():
            with self.subTest(place=place):
                self.assertNotIn(secret, text)
        self.assertGreater(len(lines), 10)
        # Each environment's first line, before any invocation, says which release it runs:
        # every function's log (from its start) has one.
        for name in self.function_logs():
            with self.subTest(cold_start=name):
                # (A function crashed on purpose by another test prints plain text: not a log line.)
                logged = [json.loads(line) for line in (LOGS / name).read_text().splitlines() if line.startswith("{")]
                starts = [entry for entry in logged if "span" not in entry]
                self.assertTrue(starts, f"{name}: no line before the first invocation")
                for entry in starts:
                    self.assertEqual(entry["fields"], {"message": f"database-backup {RELEASE} starting",
                                                       "version": RELEASE})
        lines = [(name, line) for name, line in lines if "span" in json.loads(line)]
        per_database = {"prod-database-1", "no-such-database"}
        for name, line in lines:
            with self.subTest(log=name, line=line[:120]):
                span = json.loads(line)["span"]
                self.assertEqual(span["execution_id"], run.arn)
                whole_run = name.endswith(("-select.log", "-prune.log", "-notify.log"))
                self.assertIn(span["db_identifier"], {"(all)"} if whole_run else per_database)
        logged = {json.loads(line)["span"]["db_identifier"] for _, line in lines}
        self.assertLessEqual({"prod-database-1", "(all)"}, logged)
