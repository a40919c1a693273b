"""What the end-to-end tests that write their own root module share: Terraform run in it,
and a run followed to its end."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from local_aws.terraform import terraform_env


def terraform(directory: Path, *args: str) -> str:
    """Runs `terraform <args>` in `directory`; its output, or an AssertionError with its end."""
    result = subprocess.run(["terraform", *args, "-no-color"], cwd=directory, env=terraform_env(),
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"terraform {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr}")
    return result.stdout


def finished(stepfunctions, execution_arn: str, timeout: float = 300) -> dict:
    """The execution once it is no longer running (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while (execution := stepfunctions.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise AssertionError(f"{execution_arn} still running after {timeout} s")
        time.sleep(0.2)
    return execution
