"""The module deployed into the local AWS by Terraform, through the root module
terraform/examples/local-aws (its state stays in that directory). Terraform's own
output goes to a log file; the demo shows a progress line now and then instead."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from local_aws.terraform import ROOT, terraform_env

EXAMPLE = ROOT / "terraform" / "examples" / "local-aws"
LOG = ROOT / ".tools" / "demo" / "terraform.log"
DATA_SOURCE = re.compile(r"(^|\.)data\.")
SLACK_PATH = "/_gateway/slack/services/T0DEMO/B0DEMO/database-backup"
# What terraform prints (with -no-color) that progress lines count: the plan's total, each
# resource done, and the summary line of an apply or destroy.
PLANNED = re.compile(r"^Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
RESOURCE_DONE = re.compile(r": (Creation|Modifications|Destruction) complete after ")
SUMMARY = re.compile(r"^(Apply|Destroy) complete! Resources: (.*?)\.?$")
PROGRESS_EVERY_SECONDS = 15
TAIL_LINES = 40


class TerraformError(RuntimeError):
    pass


class Stack:
    def __init__(self, endpoint: str, directory: Path = EXAMPLE, log: Path = LOG,
                 progress: Callable[[str], None] | None = None):
        """`log`: where init, apply and destroy write terraform's output (appended);
        `progress`: what shows their progress lines (None: nothing is shown)."""
        self.endpoint = endpoint.rstrip("/")
        self.directory = directory
        self.log = log
        self.progress = progress

    @property
    def slack_webhook_url(self) -> str:
        return self.endpoint + SLACK_PATH

    @property
    def log_name(self) -> str:
        """The log's path, relative to the repository when it is inside."""
        return str(self.log.relative_to(ROOT) if self.log.is_relative_to(ROOT) else self.log)

    @property
    def state_file(self) -> Path:
        return self.directory / "terraform.tfstate"

    def _variables(self) -> list[str]:
        return ["-var", f"local_aws_endpoint={self.endpoint}", "-var", f"slack_webhook_url={self.slack_webhook_url}"]

    def terraform(self, *args: str) -> str:
        """Runs terraform in the example and returns its output."""
        result = subprocess.run(["terraform", *args], cwd=self.directory, env=terraform_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            tail = "".join(result.stdout.splitlines(keepends=True)[-TAIL_LINES:])
            raise TerraformError(f"terraform {' '.join(args[:1])} failed in {self.directory}:\n{tail}")
        return result.stdout

    def logged(self, *args: str) -> None:
        """Runs a long terraform command (init, apply, destroy) with its output appended to
        the log; shows a progress line every PROGRESS_EVERY_SECONDS and one when it is done.
        On failure the error holds the output's tail and the log's path."""
        command = args[0]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        show = self.progress or (lambda _line: None)
        show(f"terraform {command} ...")
        started = last_shown = time.monotonic()
        planned, done, summary, tail = None, 0, None, deque(maxlen=TAIL_LINES)
        with self.log.open("a") as log, subprocess.Popen(
            ["terraform", *args], cwd=self.directory, env=terraform_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        ) as process:
            # The command without its -var values: the Slack webhook URL is a secret.
            log.write(f"\n==> {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: terraform {command} in {self.directory}\n")
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                tail.append(line)
                if match := PLANNED.match(line):
                    planned = sum(int(n) for n in match.groups())
                elif RESOURCE_DONE.search(line):
                    done += 1
                elif match := SUMMARY.match(line):
                    summary = match.group(2)
                if time.monotonic() - last_shown >= PROGRESS_EVERY_SECONDS:
                    last_shown = time.monotonic()
                    so_far = f"{done} of {planned} resources done" if planned is not None else "running"
                    show(f"terraform {command}: {so_far} ({last_shown - started:.0f} s)")
        elapsed = time.monotonic() - started
        if process.returncode != 0:
            raise TerraformError(
                f"terraform {command} failed in {self.directory} after {elapsed:.0f} s; the end of its output:\n"
                f"{''.join(tail)}(the whole output: {self.log_name})"
            )
        show(f"terraform {command}: {summary + ', ' if summary else ''}done in {elapsed:.0f} s")

    def forget(self) -> None:
        """Drops the state of a deployment into a local AWS that no longer runs."""
        for path in (self.state_file, self.directory / "terraform.tfstate.backup"):
            path.unlink(missing_ok=True)

    def init(self) -> None:
        self.logged("init", "-input=false", "-no-color")

    def apply(self) -> None:
        self.logged("apply", "-auto-approve", "-input=false", "-no-color", *self._variables())

    def drift(self) -> str | None:
        """None when a plan of the applied configuration changes nothing; else the plan."""
        result = subprocess.run(
            ["terraform", "plan", "-detailed-exitcode", "-input=false", "-no-color", *self._variables()],
            cwd=self.directory, env=terraform_env(), capture_output=True, text=True,
        )
        if result.returncode == 0:
            return None
        if result.returncode == 2:
            return result.stdout
        raise TerraformError(f"terraform plan failed in {self.directory}:\n{result.stdout}\n{result.stderr}")

    def destroy(self) -> None:
        self.logged("destroy", "-auto-approve", "-input=false", "-no-color", *self._variables())

    def outputs(self) -> dict:
        shown = self.terraform("output", "-json")
        return {name: value["value"] for name, value in json.loads(shown).items()}

    def resources(self) -> list[str]:
        """The addresses of the managed resources the state holds (not data sources)."""
        if not self.state_file.is_file():
            return []
        listed = self.terraform("state", "list")
        return [line for line in listed.splitlines() if line.strip() and not DATA_SOURCE.search(line)]
