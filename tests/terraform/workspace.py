"""Runs Terraform on a copy of the module: the provider from an offline mirror
when this machine has one, and the AWS endpoints pointed at the local AWS."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from local_aws.terraform import ROOT, local_provider, terraform_env

MODULE = ROOT / "terraform"
EXAMPLES = ("basic-backup", "enterprise-backup", "compliance-backup")
# The module's required inputs, as the callers of the tests give them.
BASE = {"project_name": "checks", "environment": "test", "rds_instance_ids": ["db-one"]}


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["terraform", *args, "-no-color"],
        cwd=cwd, env=terraform_env(), capture_output=True, text=True, timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"terraform {' '.join(args)} in {cwd} failed:\n{result.stdout}\n{result.stderr}")
    return result


class Workspace:
    """A temporary copy of terraform/ and statemachine/, with the built zips linked in: the
    module's links to ../statemachine and ../target/lambda stay links."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="terraform-checks-")
        self.root = Path(self._tmp.name)
        shutil.copytree(MODULE, self.root / "terraform", symlinks=True, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
        shutil.copytree(ROOT / "statemachine", self.root / "statemachine")
        (self.root / "target").mkdir()
        (self.root / "target" / "lambda").symlink_to(ROOT / "target" / "lambda")
        self.module = self.root / "terraform"

    def close(self):
        self._tmp.cleanup()

    def example(self, name: str, endpoint: str) -> Path:
        """An example directory, its provider overridden to the local AWS (an override file)."""
        path = self.module / "examples" / name
        override = {"provider": {"aws": local_provider(endpoint)}}
        (path / "local_aws_override.tf.json").write_text(json.dumps(override, indent=2))
        return path

    def caller(self, name: str, endpoint: str, arguments: dict, default_tags: dict | None = None,
               resources: dict | None = None, outputs: tuple[str, ...] = (), region: str = "us-east-1") -> Path:
        """A root module that calls the module with `arguments` (Terraform JSON), with the
        provider's `default_tags`, the caller's own `resources` and the module's `outputs`
        (as the root module's) if given."""
        return self.caller_of_many(name, endpoint, {"database_backup": arguments}, default_tags, resources,
                                   outputs, region)

    def caller_of_many(self, name: str, endpoint: str, modules: dict[str, dict], default_tags: dict | None = None,
                       resources: dict | None = None, outputs: tuple[str, ...] = (),
                       region: str = "us-east-1") -> Path:
        """As `caller`, with a module block for each entry of `modules` (block name -> its
        arguments); `outputs` are the first block's."""
        path = self.root / "callers" / name
        path.mkdir(parents=True)
        provider = {"region": region, **local_provider(endpoint)}
        if default_tags:
            provider["default_tags"] = [{"tags": default_tags}]
        first = next(iter(modules))
        config = {
            "provider": {"aws": provider},
            "module": {block: {"source": "../../terraform", **arguments} for block, arguments in modules.items()},
            **({"resource": resources} if resources else {}),
            **({"output": {o: {"value": f"${{module.{first}.{o}}}"} for o in outputs}} if outputs else {}),
        }
        (path / "main.tf.json").write_text(json.dumps(config, indent=2))
        return path


def local_aws_endpoint() -> str:
    """The local AWS these tests run in (scripts/local-aws run sets it), or skip them."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise unittest.SkipTest("needs the local AWS: run inside scripts/local-aws run")
    return endpoint


def init(path: Path) -> None:
    run(["init", "-backend=false", "-input=false"], path)


def plan_json(path: Path) -> dict:
    """Plans `path` and returns the plan as `terraform show -json` gives it."""
    run(["plan", "-input=false", "-out=tfplan"], path)
    shown = run(["show", "-json", "tfplan"], path)
    return json.loads(shown.stdout)


class WorkspaceTest(unittest.TestCase):
    """A test class with the local AWS's endpoint and a Workspace of its own, for the class."""

    @classmethod
    def setUpClass(cls):
        cls.endpoint = local_aws_endpoint()
        cls.workspace = Workspace()

    @classmethod
    def tearDownClass(cls):
        cls.workspace.close()
