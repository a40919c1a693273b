"""What the module refuses, and the checks it passes without an apply: fmt, validate, the
generated doc tables, a bad value for every validated variable (terraform test), the
plan-time checks of the module against the local AWS, checkov. Apart from
test_module.py (the examples' and callers' plans), so that the two run side by side.

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

from local_aws.deploy import module_variables
from workspace import BASE, ROOT, WorkspaceTest, init, run

# The bad-value cases of each module (the module, the vault's and the share key's): terraform
# test runs them, each expecting one variable's validation to fail.
MODULES = {"module": ROOT / "terraform", "vault": ROOT / "terraform" / "modules" / "vault",
           "share-key": ROOT / "terraform" / "modules" / "share-key"}
RUN = re.compile(r'^run "(?P<name>[a-z0-9_]+)" \{\n(?P<body>.*?)^\}', re.S | re.M)
# Booleans and free-form inputs have nothing to validate on their own.
UNVALIDATED = {
    "module": {
        "enable_s3_versioning", "enable_cloudwatch_logs", "enable_detailed_monitoring", "enable_s3_encryption",
        "enable_s3_access_logging", "enable_s3_export", "prune_dry_run", "lambda_package_dir", "s3_force_destroy",
        "enable_xray_tracing", "state_machine_log_execution_data", "create_dashboard", "kms_key_deletion_protection",
    },
    "vault": {"tags", "prune_dry_run", "lambda_package_dir", "allow_restore_drills"},
    "share-key": {"tags", "description"},
}


def bad_value_cases(module: Path) -> list[tuple[str, str, str]]:
    """(run name, the variable expected to refuse, the message quoted for it) of each case."""
    cases = []
    for match in RUN.finditer((module / "tests" / "bad_values.tftest.hcl").read_text()):
        body = match.group("body")
        [variable] = re.findall(r"expect_failures = \[var\.([a-z0-9_]+)\]", body)
        [message] = re.findall(r"# expect: (.+)", body)
        cases.append((match.group("name"), variable, message.strip()))
    return cases


def validation_messages(module: Path) -> dict[str, list[str]]:
    """Each variable's validation messages, whitespace collapsed."""
    return {
        name: [" ".join(v["error_message"].strip('"').split()) for v in body.get("validation", [])]
        for name, body in module_variables(module / "variables.tf").items()
    }


# A case's run: a plan, the `# expect:` quote, its variables and the one expected failure.
CASE_BODY = re.compile(r'  command = plan\n  # expect: [^\n]*\n  variables \{\n(?P<variables>.*?)^  \}\n'
                       r'  expect_failures = \[var\.(?P<variable>[a-z0-9_]+)\]\n\Z', re.S | re.M)


def grouped_cases(module: Path) -> tuple[str, int]:
    """The module's bad-value cases as fewer runs, and how many: each run plans several cases at
    once and expects each one's variable to fail, which is what the cases' own runs check when
    no two cases in a run touch a variable the other's validations read (Terraform reports every
    variable's failed validation in one plan; each plan of the module costs about 1.7 CPU
    seconds, 107 of them were three quarters of this suite's CPU).
    A case touches the variables it sets, its expected variable, those that variable's
    validations read, and those whose validations read any of these; a case whose validation
    reads more than variables (locals, data sources) runs alone."""
    text = (module / "tests" / "bad_values.tftest.hcl").read_text()
    reads: dict[str, set[str] | None] = {}
    for name, body in module_variables(module / "variables.tf").items():
        conditions = " ".join(str(v["condition"]) for v in body.get("validation", []))
        others = set(re.findall(r"\b(?:local|data)\.", conditions))
        reads[name] = None if others else set(re.findall(r"\bvar\.([a-z0-9_]+)", conditions)) - {name}
    readers = {v: {w for w, read in reads.items() if read and v in read} for v in reads}
    runs: list[str] = []  # those that run alone, then the groups'
    groups: list[tuple[set[str], list[re.Match]]] = []
    for match in RUN.finditer(text):
        case = CASE_BODY.fullmatch(match.group("body"))
        if case is None or reads.get(case.group("variable")) is None:
            runs.append(match.group(0))
            continue
        own = set(re.findall(r"^    ([a-z0-9_]+) *=", case.group("variables"), re.M)) | {case.group("variable")}
        touched = own | reads[case.group("variable")] | {w for v in own for w in readers.get(v, ())}
        group = next((g for g in groups if not g[0] & touched), None)
        if group is None:
            groups.append((touched, [case]))
        else:
            group[0].update(touched)
            group[1].append(case)
    for number, (_, members) in enumerate(groups, 1):
        variables = "".join(m.group("variables") for m in members)
        expected = ", ".join("var." + m.group("variable") for m in members)
        runs.append(f'run "cases_{number}" {{\n  command = plan\n  variables {{\n{variables}  }}\n'
                    f"  expect_failures = [{expected}]\n}}")
    return text[:RUN.search(text).start()] + "\n\n".join(runs) + "\n", len(runs)


class RefusalsTest(WorkspaceTest):
    def plan_callers(self, name: str, cases: dict[str, dict], default_tags: dict | None = None) -> tuple[int, list[str]]:
        """Plans one root module that calls the module once per case (module blocks named
        after the cases, each with its own project_name): one Terraform run for them all,
        which reports every call's errors and warnings. Returns the exit code and the
        diagnostics ("error: summary: detail", whitespace collapsed)."""
        path = self.workspace.caller_of_many(name, self.endpoint, {
            case: {**BASE, "project_name": case.replace("_", "-"), **arguments} for case, arguments in cases.items()
        }, default_tags=default_tags)
        init(path)
        result = run(["plan", "-input=false", "-json"], path, check=False)
        messages = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        diagnostics = [m["diagnostic"] for m in messages if m.get("type") == "diagnostic"]
        texts = [" ".join(f"{d['severity']}: {d['summary']}: {d.get('detail', '')}".split()) for d in diagnostics]
        return result.returncode, texts + ([result.stderr] if result.stderr.strip() else [])

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
        for module, path in MODULES.items():
            with self.subTest(module=module):
                cases = bad_value_cases(path)
                messages = validation_messages(path)
                self.assertEqual(set(messages) - UNVALIDATED[module], {variable for _, variable, _ in cases})
                for variable, texts in messages.items():
                    for text in texts:
                        self.assertIn(variable, text, f"a validation message of {variable} does not name it")
                for name, variable, message in cases:
                    with self.subTest(run=name):
                        self.assertTrue(any(message in text for text in messages[variable]),
                                        f"{message!r} is not a message of {variable}")

                # The cases planned several at a time (in the workspace's copy); if that fails,
                # each case on its own, as the file has them, decides and names the failing case.
                workspace_path = self.workspace.module / path.relative_to(MODULES["module"])
                cases_file = workspace_path / "tests" / "bad_values.tftest.hcl"
                grouped, runs = grouped_cases(path)
                cases_file.write_text(grouped)
                init(workspace_path)
                result = run(["test"], workspace_path, check=False)
                summary = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
                if result.returncode != 0 or summary is None or summary.groups() != (str(runs), "0"):
                    print(f"\nterraform test ({module}): the cases in {runs} runs failed; each on its own:\n"
                          + result.stdout[-3000:], file=sys.stderr)
                    cases_file.write_text((path / "tests" / "bad_values.tftest.hcl").read_text())
                    runs = len(cases)
                    result = run(["test"], workspace_path, check=False)
                    summary = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
                self.assertEqual(result.returncode, 0, result.stdout[-6000:] + result.stderr)
                self.assertEqual(summary.groups(), (str(runs), "0"), result.stdout[-3000:])
                print(f"\nterraform test ({module}): {len(cases)} bad values in {runs} runs, each refused by its "
                      "variable's validation")

    def test_checkov_finds_no_failed_check(self):
        checkov = ROOT / ".tools" / "checkov" / "bin" / "checkov"
        result = subprocess.run(
            [str(checkov), "--directory", str(ROOT / "terraform"), "--framework", "terraform", "--output", "json"],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}, timeout=900,
        )
        report = json.loads(result.stdout)
        summary = report["summary"]
        print(f"\ncheckov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
              f"{summary['skipped']} skipped, {summary['resource_count']} resources", file=sys.stderr)
        failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
        self.assertEqual(failed, [])
        # Every function is checked: a for_each checkov cannot expand would hide them. (The
        # vault module's two, one resource over a map of their settings, are checked as one.)
        checked = {c["resource"].rsplit(".", 1)[-1] for kind in ("passed_checks", "skipped_checks")
                   for c in report["results"][kind] if ".aws_lambda_function." in f".{c['resource']}"}
        contract = json.loads((ROOT / "statemachine" / "contract.json").read_text())
        self.assertEqual(checked, {f'backup["{f}"]' for f in contract["functions"]} | {"vault"})
        self.assertGreater(summary["passed"], 0)
        unexplained = [
            c["check_id"] for c in report["results"]["skipped_checks"]
            if not c["check_result"].get("suppress_comment", "").strip()
        ]
        self.assertEqual(unexplained, [], "every skip carries its reason inline")

    def test_plan_time_checks(self):
        """The module's own checks at plan time, beyond single variables: refusals, in one
        plan of several callers, each refused with its own message; warnings, in one plan that
        passes, which only the two callers past a bound get."""
        returncode, diagnostics = self.plan_callers("refused", {
            "same_region": {"enable_cross_region_copy": True, "cross_region_destination": "us-east-1"},
            "govcloud": {"enable_cross_region_copy": True, "cross_region_destination": "us-gov-west-1"},
            "no_zips": {"lambda_package_dir": "/nonexistent"},
            # A wait's first poll comes one interval in: an hour's interval cannot poll a 10-minute wait.
            "interval_over_bound": {"poll_interval_seconds": 3600, "wait_timeout_seconds": {"snapshot": 600}},
            # 60 databases: the snapshot function's policy past the 10,240 characters IAM allows a role.
            "too_many_databases": {"rds_instance_ids": [f"fleet-db-{n:04d}" for n in range(1, 61)]},
            # The probe reads its secrets in its own region.
            "probe_secret_elsewhere": {"restore_drill": {"sql_probe": {
                "secret_arns": {"db-1": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reader-AbCdEf",
                                "db-2": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reader-AbCdEf"},
                "subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}}},
        })
        self.assertNotEqual(returncode, 0)
        errors = " | ".join(d for d in diagnostics if d.startswith("error"))
        for case, message in (
            ("same_region", "cross_region_destination us-east-1 is the module's own region: copies must go to another region"),
            ("govcloud", "Cross-region copies in AWS GovCloud (US) (us-east-1 to us-gov-west-1) are not supported"),
            ("no_zips", "/nonexistent/backup-snapshot/bootstrap.zip is missing: run scripts/build-lambdas"),
            ("interval_over_bound", "poll_interval_seconds 3600 and export_poll_interval_seconds 300 must not exceed "
                                    "the wait_timeout_seconds they poll (snapshot 600, export 86400, copy 21600)"),
            ("too_many_databases", "characters, and IAM allows a role 10,240: rds_instance_ids and rds_cluster_ids "
                                   "name 60 databases"),
            ("probe_secret_elsewhere", "restore_drill.sql_probe.secret_arns must name secrets in the module's region, "
                                       "us-east-1, where the probe reads them (replicate a secret of another region "
                                       "here): db-2 arn:aws:secretsmanager:eu-west-1:123456789012:secret:reader-AbCdEf."),
        ):
            with self.subTest(case=case):
                self.assertIn(message, errors)

        # Only the required variables plan without a warning; a schedule outside the window and
        # four databases kept 30 days, daily (4 x (30 + 1) = 124 snapshots, above the default 100)
        # plan with one each; three databases (93) stay within the quota. 45 databases of
        # 13-character identifiers fit IAM's policy size (and pass the quota: a warning).
        returncode, diagnostics = self.plan_callers("warned", {
            "required_only": {},
            "outside_window": {"backup_schedule": "cron(30 5 * * ? *)"},
            "over_quota": {"rds_instance_ids": ["a1", "a2", "a3", "a4"]},
            "within_quota": {"rds_instance_ids": ["a1", "a2", "a3"]},
            "many_databases": {"rds_instance_ids": [f"fleet-db-{n:04d}" for n in range(1, 46)]},
        })
        self.assertEqual(returncode, 0, diagnostics)
        warnings = [d for d in diagnostics if d.startswith("warning: Check block assertion failed")]
        self.assertEqual(len(warnings), 3, warnings)
        [schedule] = [w for w in warnings if "backup_schedule" in w]
        self.assertIn("backup_schedule cron(30 5 * * ? *) starts outside backup_window 02:00-03:00", schedule)
        [quota] = [w for w in warnings if "manual DB snapshots" in w and "4 instances" in w]
        self.assertIn("The module will keep up to 124 manual DB snapshots and 0 manual DB cluster snapshots per "
                      "region (4 instances and 0 clusters x 31: 30 runs within 30 days of retention", quota)
        self.assertIn("above RDS's default quota of 100 of each per region", quota)

        # The provider's default_tags and additional_tags together past what a snapshot can carry.
        returncode, diagnostics = self.plan_callers(
            "too-many-tags", {"tagged": {"additional_tags": {f"team-{i}": "y" for i in range(15)}}},
            default_tags={f"org-{i}": "x" for i in range(30)})
        self.assertNotEqual(returncode, 0)
        self.assertIn("Snapshots would carry 45 tags of the provider's default_tags and additional_tags together",
                      " | ".join(diagnostics))


if __name__ == "__main__":
    unittest.main()
