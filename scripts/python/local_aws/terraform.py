"""Terraform against the local AWS: the CLI configuration scripts/terraform-setup
writes (an offline provider mirror, where this machine has one) and the aws
provider settings that point every service the module uses at the emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# The services the module and its examples use, as the provider's endpoints block names them.
SERVICES = ("cloudwatch", "cloudwatchlogs", "ec2", "events", "iam", "kms", "lambda", "rds", "s3", "secretsmanager", "sfn", "sns", "sqs",
            "sts")


def cli_config() -> Path | None:
    """The Terraform CLI configuration written by scripts/terraform-setup (None: use the registry)."""
    path = ROOT / ".tools" / "terraform" / "terraformrc"
    return path if path.is_file() else None


def terraform_env() -> dict[str, str]:
    env = dict(os.environ, TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
    # Terraform and the AWS provider (both Go) spend much of a plan collecting garbage: each
    # command starts the provider three times, and each start builds its whole schema. A
    # collection when the heap has grown by 400 % rather than 100 %: a plan of the module
    # took 0.74 of the CPU time, its largest process 444 MB against 312 MB (measured).
    env.setdefault("GOGC", "400")
    config = cli_config()
    if config:
        env["TF_CLI_CONFIG_FILE"] = str(config)
    # One provider download (or mirror link) for every working directory.
    env.setdefault("TF_PLUGIN_CACHE_DIR", str(ROOT / ".tools" / "terraform" / "plugin-cache"))
    Path(env["TF_PLUGIN_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    return env


def local_provider(endpoint: str) -> dict:
    """The aws provider configuration (Terraform JSON) that talks to the local AWS."""
    return {
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        "skip_metadata_api_check": True,
        "s3_use_path_style": True,
        "endpoints": [{service: endpoint for service in SERVICES}],
    }


def fill_plugin_cache() -> None:
    """Installs the module's providers into the shared plugin cache. Terraform's cache
    is not safe for concurrent installs: scripts/test fills it before its suites run
    `terraform init` side by side."""
    with tempfile.TemporaryDirectory(prefix="plugin-cache-") as directory:
        shutil.copy(ROOT / "terraform" / "versions.tf", directory)
        subprocess.run(["terraform", "init", "-backend=false", "-no-color"], cwd=directory, env=terraform_env(),
                       check=True, capture_output=True, text=True, timeout=900)


if __name__ == "__main__":
    fill_plugin_cache()
