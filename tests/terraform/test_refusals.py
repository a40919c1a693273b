"""What the module refuses, and the checks it passes without an apply: fmt, validate, the
generated doc tables, a bad value for every validated variable (terraform test). Apart
from test_module.py (the examples' and callers' plans) and test_plan_checks.py (the
plan-time checks, checkov), so that they run side by side.

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import re
import subprocess
import sys

from local_aws.deploy import module_variables
from workspace import ROOT, WorkspaceTest, init, run

# The bad-value cases: terraform test runs them, each expecting one variable's validation to fail.
BAD_VALUES = ROOT / "terraform" / "tests" / "bad_values.tftest.hcl"
RUN = re.compile(r'^run "(?P<name>[a-z0-9_]+)" \{\n(?P<body>.*?)^\}', re.S | re.M)


def bad_value_cases() -> list[tuple[str, str, str]]:
    """(run name, the variable expected to refuse, the message quoted for it) of each case."""
    cases = []
    for match in RUN.finditer(BAD_VALUES.read_text()):
        body = match.group("body")
        [variable] = re.findall(r"expect_failures = \[var\.([a-z0-9_]+)\]", body)
        [message] = re.findall(r"# expect: (.+)", body)
        cases.append((match.group("name"), variable, message.strip()))
    return cases


def validation_messages() -> dict[str, list[str]]:
    """Each variable's validation messages, whitespace collapsed."""
    return {
        name: [" ".join(v["error_message"].strip('"').split()) for v in body.get("validation", [])]
        for name, body in module_variables().items()
    }


class RefusalsTest(WorkspaceTest):
    def test_format(self):
        result = run(["fmt", "-check", "-recursive", "-diff"], ROOT / "terraform", check=False)
        self.assertEqual(result.returncode, 0, f"terraform fmt would change:\n{result.stdout}")

    def test_module_and_examples_validate(self):
        examples = sorted(p for p in (self.workspace.module / "examples").iterdir() if p.is_dir())
        for path in [self.workspace.module, *examples]:
            with self.subTest(path=path.name):
                init(path)
                result = run(["validate"], path)
                self.assertIn("The configuration is valid", result.stdout)

    def test_generated_doc_tables_match_their_sources(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "docs-tables.py"), "--check"], capture_output=True, text=True
        )
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_every_validated_variable_refuses_a_bad_value_with_its_message(self):
        cases = bad_value_cases()
        messages = validation_messages()
        # Booleans and free-form inputs have nothing to validate on their own.
        unvalidated = {
            "enable_s3_versioning", "enable_cloudwatch_logs", "enable_detailed_monitoring", "enable_s3_encryption",
            "enable_s3_access_logging", "enable_s3_export", "prune_dry_run", "lambda_package_dir", "s3_force_destroy",
            "enable_xray_tracing", "state_machine_log_execution_data", "create_dashboard", "kms_key_deletion_protection",
        }
        self.assertEqual(set(module_variables()) - unvalidated, {variable for _, variable, _ in cases})
        for variable, texts in messages.items():
            for text in texts:
                self.assertIn(variable, text, f"a validation message of {variable} does not name it")
        for name, variable, message in cases:
            with self.subTest(run=name):
                self.assertTrue(any(message in text for text in messages[variable]),
                                f"{message!r} is not a message of {variable}")

        init(self.workspace.module)
        result = run(["test"], self.workspace.module, check=False)
        summary = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
        self.assertEqual(result.returncode, 0, result.stdout[-6000:] + result.stderr)
        self.assertEqual(summary.groups(), (str(len(cases)), "0"), result.stdout[-3000:])
        print(f"\nterraform test: {len(cases)} bad values, each refused by its variable's validation")
