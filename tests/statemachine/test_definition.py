"""The state machine definitions (the run, and the one database each Map
item starts): they render, asl-validator and the local
ValidateStateMachineDefinition accept them (and refuse broken ones), and their
Retry/Catch use the error names and retry policies the functions define
(statemachine/contract.json, generated from their code)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import ALSO_PLANNED, planned
from local_aws import asl
from local_aws.deploy import Settings

ROOT = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = ROOT / ".tools" / "node" / "node_modules" / ".bin" / "asl-validator"
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
}


def contract_error_names() -> dict[str, bool]:
    """Error name -> retryable, from the contract the functions' code generates."""
    return {e["name"]: e["retry_class"] is not None for e in asl.contract()["errors"]}


def rendered(**changes) -> str:
    """The run's definition, as the module renders it with these settings."""
    return definition(Settings().with_(**changes), "backup")


def rendered_database() -> str:
    return definition(Settings(), "database")


def definition(settings: Settings, machine: str) -> str:
    return planned(settings).resource(f'aws_sfn_state_machine.workflow["{machine}"]')["definition"]


# Planned with every other test's settings, in one Terraform run.
VARIANTS = [Settings().with_(max_concurrency=3, db_identifiers=("a", "b"), export_enabled=False),
            Settings().with_(copy_region=None)]
ALSO_PLANNED.extend([Settings(), *VARIANTS])


def states(scope: dict):
    """Every state, nested ones included."""
    for name, state in scope["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from states(branch)
        if "ItemProcessor" in state:
            yield from states(state["ItemProcessor"])


def asl_validator(definition: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        file.write(definition)
        file.flush()
        return subprocess.run([str(ASL_VALIDATOR), "--json-path", file.name], capture_output=True, text=True)


class Definition(unittest.TestCase):
    def setUp(self):
        self.definition = json.loads(rendered())
        self.database = json.loads(rendered_database())

    def test_the_module_renders_every_placeholder_of_the_templates(self):
        for template, definition in (("backup", rendered()), ("database", rendered_database())):
            self.assertGreater(len(re.findall(r"\$\{\w+\}", (ROOT / "statemachine" / f"{template}.asl.json").read_text())), 4)
            self.assertNotIn("${", definition, template)

    def test_asl_validator_accepts_them_and_refuses_a_broken_one(self):
        self.assertTrue(ASL_VALIDATOR.exists(), "scripts/setup-tools installs asl-validator")
        for definition in (rendered(), rendered_database()):
            result = asl_validator(definition)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        broken = json.loads(rendered())
        broken["States"]["Prune"]["Next"] = "NoSuchState"
        self.assertNotEqual(asl_validator(json.dumps(broken)).returncode, 0)

    def test_the_local_validate_api_accepts_them_and_names_what_is_broken(self):
        self.assertEqual(asl.check(rendered()), [])
        self.assertEqual(asl.check(rendered_database()), [])
        broken = json.loads(rendered_database())
        broken["States"]["Snapshot"]["Next"] = "Nowhere"
        problems = asl.check(json.dumps(broken))
        self.assertIn("MISSING_TRANSITION_TARGET", {p.code for p in problems})
        self.assertIn("/States/Snapshot/Next", {p.location for p in problems})
        del broken["States"]["Snapshot"]["Next"]
        broken["States"]["Snapshot"]["End"] = True
        self.assertIn("UNREACHABLE_STATE", {p.code for p in asl.check(json.dumps(broken))})
        broken = json.loads(rendered())
        broken["States"]["BackupDatabases"]["ItemProcessor"]["States"]["BackupDatabase"]["Catch"][0]["Next"] = "Nowhere"
        self.assertIn("/States/BackupDatabases/ItemProcessor/States/BackupDatabase/Catch/0/Next",
                      {p.location for p in asl.check(json.dumps(broken))})
        self.assertEqual(asl.check("{"), [asl.check("{")[0]])
        self.assertEqual(asl.check("{")[0].code, "INVALID_JSON_DESCRIPTION")

    def lambda_tasks(self):
        """Tasks that invoke a function: by its ARN, or through the Lambda integration (the waits)."""
        return [(name, s) for d in (self.definition, self.database) for name, s in states(d)
                if s["Type"] == "Task" and (s["Resource"].startswith("arn:aws:lambda:")
                                            or s["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken")]

    def test_every_lambda_task_retries_lambda_errors_and_catches_everything(self):
        tasks = self.lambda_tasks()
        # Select, CheckVault, Prune, Notify; Snapshot, Export, Copy, Vault and the three waits.
        self.assertEqual(len(tasks), 11)
        for name, task in tasks:
            retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
            self.assertLessEqual(LAMBDA_TRANSIENT | {"Lambda.TooManyRequestsException"}, retried, name)
            self.assertIn({"Throttled", "AwsUnavailable"}, [set(r["ErrorEquals"]) for r in task["Retry"]], name)
            for retrier in task["Retry"]:
                self.assertEqual(retrier["JitterStrategy"], "FULL", name)
                self.assertGreater(retrier["BackoffRate"], 1, name)
                self.assertIn("MaxDelaySeconds", retrier, name)
            self.assertEqual([c["ErrorEquals"] for c in task["Catch"]], [["States.ALL"]], name)

    def test_each_database_runs_in_its_own_execution_and_the_run_keeps_only_its_name(self):
        tasks = [s for _, s in states(self.definition) if s["Type"] == "Task" and s["Resource"].startswith("arn:aws:states:")]
        self.assertEqual(len(tasks), 1)
        task = tasks[0]
        self.assertEqual(task["Resource"], "arn:aws:states:::states:startExecution.sync:2")
        self.assertEqual(task["Parameters"]["StateMachineArn"],
                         "arn:aws:states:us-east-1:123456789012:stateMachine:dbbackup-local-database")
        # The result (the child's whole description) is dropped; the item is its identifier and name.
        self.assertIsNone(task["ResultPath"])
        self.assertEqual(task["OutputPath"], "$.database")
        selector = self.definition["States"]["BackupDatabases"]["ItemSelector"]
        self.assertEqual(set(selector["database"]), {"db_identifier.$", "execution_name.$"})
        self.assertEqual(task["Parameters"]["Name.$"], "$.database.execution_name")
        retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        # The name Step Functions documents for a start over the limit, and the SDK-style form.
        self.assertLessEqual({"StepFunctions.ExecutionLimitExceeded", "StepFunctions.ExecutionLimitExceededException"},
                             retried)
        self.assertEqual([c["ErrorEquals"] for c in task["Catch"]], [["States.ALL"]])
        # Every setting the database state machine reads is one select passes it, and no other.
        # With the vault's check failed, skip_vault over the run's (an empty object otherwise).
        self.assertEqual(selector["request"]["config.$"],
                         "States.JsonMerge($.run.database_config, $.vault_override, false)")
        read = set(re.findall(r"\$\.config\.([a-z_]+)", rendered_database()))
        passed = {f["name"] for f in asl.contract()["execution_input"] if f["part"] == "database"}
        self.assertEqual(read, passed)

    def test_every_lambda_task_retries_as_the_contract_says_for_its_function(self):
        retries = {name: f["retry"] for name, f in asl.contract()["functions"].items()}
        for name, task in self.lambda_tasks():
            arn = task["Parameters"]["FunctionName"] if task["Resource"].startswith("arn:aws:states:") else task["Resource"]
            function = arn.split(":function:")[1].removeprefix("dbbackup-local-")
            self.assertEqual(task["Retry"], retries[function], name)

    def test_retry_and_catch_use_the_functions_error_names(self):
        names = contract_error_names()
        self.assertGreaterEqual(len(names), 19)
        used = {e for _, s in self.lambda_tasks() for r in s.get("Retry", []) for e in r["ErrorEquals"]}
        for error in used - LAMBDA_TRANSIENT - {"Lambda.TooManyRequestsException"}:
            self.assertIn(error, names, "a retrier names an error no function raises")
            self.assertTrue(names[error], f"{error} is permanent in the contract but retried")
        retryable = {n for n, retry in names.items() if retry}
        self.assertEqual(retryable - used, set(), "retryable errors that no retrier handles")

    def test_map_concurrency_and_defaults_come_from_the_configuration(self):
        definition = json.loads(rendered(max_concurrency=3, db_identifiers=("a", "b"), export_enabled=False))
        self.assertEqual(definition["States"]["BackupDatabases"]["MaxConcurrency"], 3)
        defaults = definition["States"]["Select"]["Parameters"]["defaults"]
        self.assertEqual(defaults["db_instance_ids"], ["a", "b"])
        self.assertIs(defaults["skip_export"], True)
        self.assertIs(defaults["skip_copy"], False)
        self.assertIs(json.loads(rendered(copy_region=None))["States"]["Select"]["Parameters"]["defaults"]["skip_copy"], True)


if __name__ == "__main__":
    unittest.main()
