"""The release package as users get it (scripts/package): what it holds, the
spec's two Usage examples planned from a vendored copy and from the tarball,
the tarball as a module source, and a git source of the repository with its zips in S3.

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import unittest
from pathlib import Path

import boto3

import release
from local_aws.terraform import local_provider
from workspace import ROOT, init, local_aws_endpoint, plan_json, run

# The spec's two Usage examples: the module blocks of these examples, which are the spec's as
# written, with the spec's source.
SPEC_USAGE = {"basic": ROOT / "terraform" / "examples" / "basic-backup" / "main.tf",
              "advanced": ROOT / "terraform" / "examples" / "enterprise-backup" / "main.tf"}
MODULE_BLOCK = re.compile(r'^module "database_backup" \{\n.*?^\}\n', re.S | re.M)
# The organisation's own modules the advanced example reads, as the enterprise example stands them in.
STAND_INS = ROOT / "terraform" / "examples" / "enterprise-backup" / "modules"
STUB_MODULES = {
    "security_baseline": ("security-baseline", {"name": "nestedphoenix-prod"}),
    "notifications": ("notifications", {"name": "nestedphoenix-prod-alerts",
                                        "kms_key_arn": "${module.security_baseline.kms_key_arn}"}),
    "shared_networking": ("shared-networking", {"name": "nestedphoenix-prod", "cidr_block": "10.40.0.0/16"}),
}
PREFIX = f"database-backup/{release.version()}/"


def infra(root: Path, module: Path) -> dict[str, Path]:
    """An infrastructure repository as the spec's examples expect it: the module at
    infra/modules/database-backup, each example in infra/environments/<name>/."""
    shutil.copytree(module, root / "modules" / "database-backup")
    for name, (directory, _) in STUB_MODULES.items():
        shutil.copytree(STAND_INS / directory, root / "modules" / directory)
    roots = {}
    for example in ("basic", "advanced"):
        path = root / "environments" / example
        path.mkdir(parents=True)
        [block] = MODULE_BLOCK.findall(SPEC_USAGE[example].read_text())
        spec_source = 'source = "../../modules/database-backup"'
        (path / "main.tf").write_text(block.replace('source = "../.."', spec_source, 1))
        roots[example] = path
    stubs = {
        "module": {name: {"source": f"../../modules/{directory}", **arguments}
                   for name, (directory, arguments) in STUB_MODULES.items()},
        "variable": {"slack_webhook_url": {"type": "string", "sensitive": True,
                                           "default": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"}},
    }
    (roots["advanced"] / "stubs.tf.json").write_text(json.dumps(stubs, indent=2))
    return roots


class ReleasePackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.endpoint = local_aws_endpoint()
        cls._tmp = tempfile.TemporaryDirectory(prefix="package-checks-")
        cls.tmp = Path(cls._tmp.name)
        cls.dist = cls.tmp / "dist"
        cls.package = release.build_package(cls.dist, ROOT / "target" / "lambda")
        cls.tarball = cls.dist / f"{cls.package.name}.tar.gz"

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def provider(self, path: Path) -> None:
        config = {"provider": {"aws": {"region": "us-east-1", **local_provider(self.endpoint)}}}
        (path / "provider.tf.json").write_text(json.dumps(config, indent=2))

    def plan(self, path: Path) -> dict:
        """init, validate and plan `path` against the local AWS; the plan as `terraform show -json` gives it."""
        self.provider(path)
        outputs = {"output": {"module_version": {"value": "${module.database_backup.module_version}"}}}
        (path / "outputs.tf.json").write_text(json.dumps(outputs))
        init(path)
        run(["validate"], path)
        return plan_json(path)

    def assert_plans_whole_module(self, plan: dict, copies_to: str | None) -> None:
        """The whole module planned: both state machines, the eight functions from the zips of
        this release, copies to `copies_to`; and its version reported."""
        planned = {c["address"]: c["change"]["after"] for c in plan["resource_changes"] if c["mode"] == "managed"}
        module = "module.database_backup."
        for machine in ("backup", "database"):
            self.assertIn(f'{module}aws_sfn_state_machine.workflow["{machine}"]', planned)
        functions = {a: v for a, v in planned.items() if a.startswith(f"{module}aws_lambda_function.backup[")}
        self.assertEqual(len(functions), 8, sorted(functions))
        copy = functions[f'{module}aws_lambda_function.backup["copy"]']
        self.assertEqual(copy["environment"][0]["variables"].get("COPY_DESTINATION_REGION"), copies_to)
        self.assertEqual(plan["planned_values"]["outputs"]["module_version"]["value"], release.version())

    def test_the_package_holds_the_module_and_nothing_else(self):
        self.assertEqual(release.check_package(self.dist), [])
        held = sorted(p.relative_to(self.package).as_posix() for p in self.package.rglob("*") if p.is_file())
        self.assertIn("lambda/backup-snapshot/bootstrap.zip", held)
        # Every definition a module reads (templatefile, file) is held, the drill machine's too.
        read = {match for tf in (ROOT / "terraform").rglob("*.tf") if ".terraform" not in tf.parts
                for match in re.findall(r"statemachine/([\w.-]+\.json)", tf.read_text())}
        self.assertTrue({"drill.asl.json", "contract.json"} <= read, read)
        self.assertEqual({f"statemachine/{name}" for name in read} - set(held), set())
        self.assertFalse([f for f in held if f.startswith(("target/", ".tools/", "tests/", "examples/"))], held)
        verified = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=self.dist,
                                  capture_output=True, text=True)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        # The release's links point into the repository at its tag; none is left relative.
        readme = (self.package / "README.md").read_text()
        self.assertIn(f"{release.repository_url()}/blob/v{release.version()}/docs/operations.md", readme)
        self.assertNotIn("](docs/", readme)

        # The check fails on a stray file, a file missing and a changed zip.
        broken = self.tmp / "broken"
        shutil.copytree(self.dist, broken)
        (broken / self.package.name / "tests").mkdir()
        (broken / self.package.name / "tests" / "stray.py").write_text("")
        (broken / self.package.name / "LICENSE").unlink()
        with open(broken / self.package.name / "lambda" / "backup-copy" / "bootstrap.zip", "ab") as zip_file:
            zip_file.write(b"\0")
        problems = release.check_package(broken)
        self.assertIn(f"{self.package.name}/tests/stray.py is not part of the module", problems)
        self.assertIn(f"{self.package.name}/LICENSE is missing", problems)
        self.assertIn(f"{release.LAMBDA_SUMS}: backup-copy/bootstrap.zip does not match its checksum", problems)

    def test_the_specs_examples_plan_from_a_vendored_copy(self):
        roots = infra(self.tmp / "vendored" / "infra", self.package)
        self.assert_plans_whole_module(self.plan(roots["basic"]), copies_to=None)
        self.assert_plans_whole_module(self.plan(roots["advanced"]), copies_to="us-west-2")

    def test_the_specs_examples_plan_from_the_tarball_extracted_elsewhere(self):
        extracted = self.tmp / "elsewhere"
        with tarfile.open(self.tarball) as tar:
            tar.extractall(extracted, filter="data")
        roots = infra(self.tmp / "from-tarball" / "infra", extracted / self.package.name)
        self.assert_plans_whole_module(self.plan(roots["basic"]), copies_to=None)
        self.assert_plans_whole_module(self.plan(roots["advanced"]), copies_to="us-west-2")

    def test_the_tarball_itself_is_a_module_source(self):
        # As a tarball URL is used: Terraform fetches and unpacks it into .terraform/modules/, and
        # the module loads from there (planning it again would repeat the extracted tarball's plans).
        path = self.tmp / "tarball-source"
        path.mkdir()
        config = {"module": {"database_backup": {
            "source": f"{self.tarball}//{self.package.name}",
            "project_name": "nestedphoenix", "environment": "production", "rds_instance_ids": ["prod-database-1"],
        }}}
        (path / "main.tf.json").write_text(json.dumps(config))
        self.provider(path)
        init(path)
        run(["validate"], path)
        installed = json.loads((path / ".terraform" / "modules" / "modules.json").read_text())["Modules"]
        [module] = [m for m in installed if m["Key"] == "database_backup"]
        directory = path / module["Dir"]
        self.assertEqual(sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()),
                         release.expected_files())

    def git_source(self) -> str:
        """The repository as a git source: a commit of this working tree's files (the
        module's links to statemachine/ and target/lambda included, as git keeps them)."""
        repository = self.tmp / "repository"
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source, target = ROOT / name, repository / name
            if not (source.exists() or source.is_symlink()):
                continue  # deleted in the working tree
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
            else:
                shutil.copy2(source, target)
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "release under test"]):
            subprocess.run([*git, *command], cwd=repository, check=True, capture_output=True)
        return f"git::file://{repository}//terraform"

    def caller(self, name: str, arguments: dict) -> Path:
        path = self.tmp / "callers" / name
        path.mkdir(parents=True)
        config = {"module": {"database_backup": {
            "source": self.git_source(), "project_name": "gitsource", "environment": name,
            "rds_instance_ids": ["prod-database-1"], "s3_force_destroy": True, **arguments,
        }}}
        (path / "main.tf.json").write_text(json.dumps(config))
        return path

    def test_a_git_source_applies_with_the_zips_in_s3(self):
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        bucket = "artifacts-database-backup"
        s3.create_bucket(Bucket=bucket)
        # As `aws s3 sync <package>/lambda s3://bucket/prefix` uploads them: content types by extension.
        for file in sorted((self.package / "lambda").rglob("*")):
            if file.is_file():
                content_type = mimetypes.guess_type(file.name)[0] or "binary/octet-stream"
                s3.put_object(Bucket=bucket, Key=PREFIX + file.relative_to(self.package / "lambda").as_posix(),
                              Body=file.read_bytes(), ContentType=content_type)
        # As a platform team applies it: a permissions boundary, role path and prefix, their own
        # topic encrypted with their key, no X-Ray.
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1")
        boundary = iam.create_policy(PolicyName="platform-boundary", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        topic = boto3.client("sns", endpoint_url=self.endpoint, region_name="us-east-1").create_topic(
            Name="dba-alerts")["TopicArn"]
        topic_key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        path = self.caller("zips-s3", {
            "lambda_s3_bucket": bucket, "lambda_s3_key_prefix": PREFIX,
            "iam_permissions_boundary_arn": boundary["Policy"]["Arn"], "iam_role_path": "/backup/",
            "iam_role_name_prefix": "app-", "sns_topic_arn": topic, "sns_topic_kms_key_arn": topic_key,
            # With the restore drills and their probe: every zip of the package is deployed.
            "enable_xray_tracing": False, "restore_drill": {"sql_probe": {
                "secret_arns": {"db-one": "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader"},
                "subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}}})
        self.provider(path)
        init(path)
        run(["apply", "-auto-approve", "-input=false"], path)
        lambda_client = boto3.client("lambda", endpoint_url=self.endpoint, region_name="us-east-1")
        for zip_path in sorted((self.package / "lambda").glob("backup-*/bootstrap.zip")):
            function = zip_path.parent.name.removeprefix("backup-")
            configuration = lambda_client.get_function(FunctionName=f"gitsource-zips-s3-{function}")["Configuration"]
            digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
            self.assertEqual(configuration["CodeSha256"], digest, function)
        roles = iam.list_roles(PathPrefix="/backup/")["Roles"]
        self.assertEqual(len(roles), 14)  # ten functions, RDS's export, Step Functions, the schedule, the polls' Scheduler
        for role in roles:
            role = iam.get_role(RoleName=role["RoleName"])["Role"]
            self.assertTrue(role["RoleName"].startswith("app-gitsource-zips-s3-"), role["RoleName"])
            self.assertEqual(role["PermissionsBoundary"]["PermissionsBoundaryArn"], boundary["Policy"]["Arn"])
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
                self.assertNotIn("xray:", json.dumps(document), role["RoleName"])
                if role["RoleName"].endswith("-notify"):
                    statements = {s.get("Sid"): s for s in document["Statement"]}
                    self.assertEqual(statements["PublishToYourEncryptedTopic"]["Resource"], topic_key)
                    self.assertEqual(statements["PublishToYourEncryptedTopic"]["Condition"],
                                     {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}})
        for zip_path in sorted((self.package / "lambda").glob("backup-*/bootstrap.zip")):
            function = zip_path.parent.name.removeprefix("backup-")
            configuration = lambda_client.get_function(FunctionName=f"gitsource-zips-s3-{function}")["Configuration"]
            self.assertEqual(configuration["TracingConfig"]["Mode"], "PassThrough", function)
        # The deployed code runs: select answers the run's first request with its plan.
        request = (ROOT / "tests" / "fixtures" / "select-request.json").read_bytes()
        answer = lambda_client.invoke(FunctionName="gitsource-zips-s3-select", Payload=request)
        body = json.loads(answer["Payload"].read())
        self.assertNotIn("FunctionError", answer, body)
        self.assertIn("prod-database-1", json.dumps(body))
        # The published checksums are a stable change trigger: nothing left to change.
        again = run(["plan", "-input=false", "-detailed-exitcode"], path, check=False)
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)

        # Checksums that do not list a function's zip stop the plan, naming the zip.
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}{release.LAMBDA_SUMS}", ContentType="text/plain",
                      Body=b"".join(line + b"\n" for line in
                                    (self.package / "lambda" / release.LAMBDA_SUMS).read_bytes().splitlines()
                                    if b"backup-notify/" not in line))
        result = run(["plan", "-input=false"], path, check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("does not list backup-notify/bootstrap.zip", " ".join((result.stdout + result.stderr).split()))


if __name__ == "__main__":
    unittest.main()
