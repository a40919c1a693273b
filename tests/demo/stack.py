"""The module deployed into the local AWS by Terraform, through the root module
terraform/examples/local-aws (its state stays in that directory)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from local_aws.terraform import ROOT, terraform_env

EXAMPLE = ROOT / "terraform" / "examples" / "local-aws"
DATA_SOURCE = re.compile(r"(^|\.)data\.")
SLACK_PATH = "/_gateway/slack/services/T0DEMO/B0DEMO/database-backup"


class TerraformError(RuntimeError):
    pass


class Stack:
    def __init__(self, endpoint: str, directory: Path = EXAMPLE):
        self.endpoint = endpoint.rstrip("/")
        self.directory = directory

    @property
    def slack_webhook_url(self) -> str:
        return self.endpoint + SLACK_PATH

    @property
    def state_file(self) -> Path:
        return self.directory / "terraform.tfstate"

    def _variables(self) -> list[str]:
        return ["-var", f"local_aws_endpoint={self.endpoint}", "-var", f"slack_webhook_url={self.slack_webhook_url}"]

    def terraform(self, *args: str, echo: bool = True) -> str:
        """Runs terraform in the example; with `echo`, its output streams to stdout as it comes."""
        command = ["terraform", *args]
        lines = []
        with subprocess.Popen(
            command, cwd=self.directory, env=terraform_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if echo:
                    sys.stdout.write("  | " + line)
                    sys.stdout.flush()
        if process.returncode != 0:
            tail = "".join(lines[-40:])
            raise TerraformError(f"terraform {' '.join(args[:1])} failed in {self.directory}:\n{tail}")
        return "".join(lines)

    def forget(self) -> None:
        """Drops the state of a deployment into a local AWS that no longer runs."""
        for path in (self.state_file, self.directory / "terraform.tfstate.backup"):
            path.unlink(missing_ok=True)

    def init(self) -> None:
        self.terraform("init", "-input=false", "-no-color")

    def apply(self) -> None:
        self.terraform("apply", "-auto-approve", "-input=false", "-no-color", *self._variables())

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
        self.terraform("destroy", "-auto-approve", "-input=false", "-no-color", *self._variables())

    def outputs(self) -> dict:
        shown = self.terraform("output", "-json", echo=False)
        return {name: value["value"] for name, value in json.loads(shown).items()}

    def resources(self) -> list[str]:
        """The addresses of the managed resources the state holds (not data sources)."""
        if not self.state_file.is_file():
            return []
        listed = self.terraform("state", "list", echo=False)
        return [line for line in listed.splitlines() if line.strip() and not DATA_SOURCE.search(line)]
