"""What the Terraform module would deploy, read from its plan: `terraform plan` of
a root module that calls terraform/ with the given arguments, against the local
AWS (the provider's data sources read it), and `terraform show -json` of that
plan. Test deployments take from here every value Terraform knows at plan time
(definitions, function settings and environments, resource names), so what the
tests run is what the module deploys.

Plans are slow to make (about 10 s, most of it Terraform starting) and cheap to
make together: `plan()` plans every argument set it is not holding in one
Terraform run, one module block each, and keeps each result under
.tools/module-plans/, keyed by the module's files and the arguments."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .terraform import ROOT, local_provider, terraform_env

PLANS = ROOT / ".tools" / "module-plans"
# A plan names the local AWS's port (Slack's URL): older ones served a local AWS long gone.
KEEP_SECONDS = 24 * 3600
# What a deployment reads from a plan; the rest (policies, alarms, logs...) is left out.
RESOURCE_TYPES = ("aws_lambda_function", "aws_sfn_state_machine", "aws_iam_role", "aws_s3_bucket", "aws_sns_topic",
                  "aws_secretsmanager_secret", "aws_secretsmanager_secret_version", "aws_cloudwatch_event_rule",
                  "aws_cloudwatch_event_target", "aws_sqs_queue", "aws_scheduler_schedule_group")


class PlanError(RuntimeError):
    pass


@dataclass(frozen=True)
class Planned:
    """The planned resources of one call of the module, by address inside it
    (`aws_lambda_function.backup["copy"]`): the values Terraform knows, and
    which it will only know after apply."""

    values: dict[str, dict]
    unknown: dict[str, dict]

    def resource(self, address: str) -> dict:
        if address not in self.values:
            raise PlanError(f"the module's plan has no {address}")
        return self.values[address]

    def known(self, address: str, attribute: str) -> bool:
        """Whether the plan shows the whole of an attribute (no part left for apply)."""
        return not _holds_unknown(self.unknown.get(address, {}).get(attribute))

    def addresses(self, resource_type: str) -> dict[str, dict]:
        """`key -> values` of each instance of a resource of this type: `copy` for `...backup["copy"]`,
        `schedule` for `...schedule`, `name[0]` for a counted `...name[0]`."""
        prefix = f"{resource_type}."

        def key(address: str) -> str:
            name = address.removeprefix(prefix)
            index = name.partition("[")[2].rstrip("]")
            return index.strip('"') if index.startswith('"') else name

        return {key(a): v for a, v in self.values.items() if a.startswith(prefix)}


def _holds_unknown(marks) -> bool:
    """`after_unknown` marks a value known only after apply with `true`, at any depth."""
    if isinstance(marks, dict):
        return any(_holds_unknown(m) for m in marks.values())
    if isinstance(marks, list):
        return any(_holds_unknown(m) for m in marks)
    return marks is True


def module_fingerprint() -> str:
    """The module as Terraform reads it: its files and the statemachine/ files it renders."""
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "terraform").glob("*.tf"), *(ROOT / "statemachine").glob("*.json")]):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _cache_file(fingerprint: str, arguments: dict) -> Path:
    key = hashlib.sha256(json.dumps([fingerprint, arguments], sort_keys=True).encode()).hexdigest()[:32]
    return PLANS / f"{key}.json"


def plan(endpoint: str, argument_sets: list[dict]) -> list[Planned]:
    """The plan of each set of module arguments, in order: from the cache, or
    planned together in one Terraform run against the local AWS at `endpoint`."""
    fingerprint = module_fingerprint()
    files = [_cache_file(fingerprint, arguments) for arguments in argument_sets]
    missing = {file: arguments for file, arguments in zip(files, argument_sets) if not file.is_file()}
    if missing:
        _forget_old_plans()
        for file, planned in zip(missing, _run_terraform(endpoint, list(missing.values()))):
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps({"values": planned.values, "unknown": planned.unknown}))
            partial.replace(file)
    return [Planned(**json.loads(file.read_text())) for file in files]


def _forget_old_plans() -> None:
    for old in PLANS.glob("*.json"):
        if time.time() - old.stat().st_mtime > KEEP_SECONDS:
            old.unlink(missing_ok=True)


def _run_terraform(endpoint: str, argument_sets: list[dict]) -> list[Planned]:
    PLANS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="plan-", dir=PLANS) as directory:
        # A relative source: Terraform reads a local module in place (an absolute path
        # would be copied, the module's links to statemachine/ and target/lambda dangling).
        source = os.path.relpath(ROOT / "terraform", directory)
        config = {
            "provider": {"aws": {"region": "us-east-1", **local_provider(endpoint)}},
            "module": {f"call_{i}": {"source": source, **arguments} for i, arguments in enumerate(argument_sets)},
        }
        Path(directory, "main.tf.json").write_text(json.dumps(config, indent=2))
        for command in (["init", "-backend=false", "-input=false"], ["plan", "-refresh=false", "-input=false", "-out=tfplan"]):
            _terraform(command, directory)
        shown = json.loads(_terraform(["show", "-json", "tfplan"], directory))
    calls = {c["address"]: c for c in shown["planned_values"]["root_module"].get("child_modules", [])}
    changes: dict[str, dict] = {}
    for change in shown["resource_changes"]:
        changes.setdefault(change["module_address"], {})[change["address"]] = change["change"]["after_unknown"]
    planned = []
    for i in range(len(argument_sets)):
        call = f"module.call_{i}"
        resources = [r for r in calls[call]["resources"] if r["type"] in RESOURCE_TYPES and r["mode"] == "managed"]
        local = {r["address"].removeprefix(f"{call}."): r for r in resources}
        planned.append(Planned(
            values={address: r["values"] for address, r in local.items()},
            unknown={address: changes[call][f"{call}.{address}"] for address in local},
        ))
    return planned


def _terraform(arguments: list[str], directory: str) -> str:
    if shutil.which("terraform") is None:
        raise PlanError("terraform is not on PATH (scripts/terraform-setup installs it)")
    result = subprocess.run(["terraform", *arguments, "-no-color"], cwd=directory,
                            env=terraform_env(), capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise PlanError(f"terraform {arguments[0]} of the module failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout
