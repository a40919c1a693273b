"""The module applied in the local AWS and destroyed: a destroy keeps the key that encrypts
the backups, and the bucket's protections, while exports exist (issue 20). Apart from
test_module.py, whose plans need no apply, so that the two run side by side.

Run inside `scripts/local-aws run` (AWS_ENDPOINT_URL), after scripts/build-lambdas."""

from __future__ import annotations

import json
import re
import unittest
from pathlib import Path

import boto3

from local_aws.control import control
from workspace import BASE, WorkspaceTest, init, run


class DestroyTest(WorkspaceTest):
    def test_a_destroy_keeps_the_key_and_the_bucket_protections_while_exports_exist(self):
        """Applied in the local AWS with an export in the bucket: terraform destroy is refused
        before it changes anything; retiring the module as docs/operations.md says keeps the
        key, the bucket, its protections and the export. With the key's protection moved off
        as documented, the buckets' guard stops a destroy before it reaches the bucket's
        protections, the key or the state machines; with s3_force_destroy applied, the destroy
        goes through."""
        kms = boto3.client("kms", endpoint_url=self.endpoint, region_name="us-east-1")
        s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1")
        functions = boto3.client("lambda", endpoint_url=self.endpoint, region_name="us-east-1")
        rds = boto3.client("rds", endpoint_url=self.endpoint, region_name="us-east-1")
        rds.create_db_instance(DBInstanceIdentifier="db-one", Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="dbadmin", MasterUserPassword="correct-horse-battery")

        def applied_with_an_export(environment: str) -> tuple[Path, str, str, str]:
            """A stack of the module and an export of db-one in its bucket, as the export function starts it."""
            path = self.workspace.caller(environment, self.endpoint, {**BASE, "environment": environment},
                                         outputs=("s3_bucket_name", "kms_key_arn"))
            init(path)
            run(["apply", "-auto-approve", "-input=false"], path)
            outputs = json.loads(run(["output", "-json"], path).stdout)
            bucket, key_arn = outputs["s3_bucket_name"]["value"], outputs["kms_key_arn"]["value"]
            [role] = [r["Arn"] for r in iam.list_roles()["Roles"]
                      if r["RoleName"].startswith(f"checks-{environment}-") and r["RoleName"].endswith("-rds-export")]
            snapshot = rds.create_db_snapshot(DBInstanceIdentifier="db-one", DBSnapshotIdentifier=f"db-one-{environment}")
            task = f"db-one-{environment}"
            rds.start_export_task(ExportTaskIdentifier=task, SourceArn=snapshot["DBSnapshot"]["DBSnapshotArn"],
                                  S3BucketName=bucket, S3Prefix=f"checks/{environment}/db-one/2026-12-02",
                                  IamRoleArn=role, KmsKeyId=key_arn)
            [described] = rds.describe_export_tasks(ExportTaskIdentifier=task)["ExportTasks"]
            self.assertEqual(described["Status"], "COMPLETE")
            return path, bucket, key_arn, f"checks/{environment}/db-one/2026-12-02/{task}/export_info_{task}.json"

        def objects(bucket: str) -> dict:
            """The bucket's objects and their keys, read past the bucket policy (which denies
            plain HTTP, as S3 does)."""
            listed = control(self.endpoint, "GET", f"s3/objects?bucket={bucket}")
            return {o["key"]: (o["encryption"], o["kms_key_id"]) for o in listed}

        def destroy_refused(path: Path) -> str:
            result = run(["destroy", "-auto-approve", "-input=false"], path, check=False)
            output = " ".join((result.stdout + result.stderr).split())
            self.assertNotEqual(result.returncode, 0, output)
            return output

        path, bucket, key_arn, export = applied_with_an_export("keeps")

        def protections() -> dict:
            return {
                "key": kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"],
                "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Sid"],
                "public access": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
                "encryption": s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
                ["ApplyServerSideEncryptionByDefault"],
                "versioning": s3.get_bucket_versioning(Bucket=bucket)["Status"],
                "lifecycle": [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]],
                "export": objects(bucket)[export],
            }

        kept = protections()
        self.assertEqual(kept["key"], "Enabled")
        self.assertEqual(kept["policy"], "DenyInsecureTransport")
        self.assertEqual(set(kept["public access"].values()), {True})
        self.assertEqual(kept["encryption"], {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn})
        self.assertEqual(kept["export"], ("aws:kms", key_arn))
        self.assertEqual((kept["versioning"], kept["lifecycle"]), ("Enabled", ["backup-retention"]))

        # A bucket keeps its name: a new s3_bucket_name plans no replacement of it (which would
        # leave the exports behind), and the plan says so.
        renamed = json.loads((path / "main.tf.json").read_text())
        renamed["module"]["database_backup"]["s3_bucket_name"] = "checks-keeps-renamed"
        (path / "main.tf.json").write_text(json.dumps(renamed))
        plan = run(["plan", "-input=false", "-detailed-exitcode"], path, check=False)
        output = " ".join((plan.stdout + plan.stderr).split())
        self.assertEqual(plan.returncode, 0, output)
        self.assertIn(f"The backup bucket keeps its name {bucket}, not the configured checks-keeps-renamed", output)
        del renamed["module"]["database_backup"]["s3_bucket_name"]
        (path / "main.tf.json").write_text(json.dumps(renamed))

        # Refused at plan: nothing is touched, not even the functions.
        state = run(["state", "list"], path).stdout
        output = destroy_refused(path)
        self.assertIn("Instance cannot be destroyed", output)
        self.assertIn("module.database_backup.aws_kms_key.backup[0] has lifecycle.prevent_destroy set", output)
        self.assertEqual(protections(), kept)
        self.assertEqual(run(["state", "list"], path).stdout, state)
        functions.get_function(FunctionName="checks-keeps-select")

        # Retired as documented: Terraform forgets the key and the buckets, then destroys the rest.
        forget = [a for a in state.split()
                  if re.match(r"module\.database_backup\.(aws_kms_key|aws_kms_alias|aws_s3_bucket|aws_lambda_invocation)", a)]
        self.assertIn("module.database_backup.aws_s3_bucket_policy.backup", forget)
        self.assertIn("module.database_backup.aws_lambda_invocation.bucket_guard", forget)
        run(["state", "rm", *forget], path)
        run(["destroy", "-auto-approve", "-input=false"], path)
        self.assertEqual(protections(), kept)
        with self.assertRaises(functions.exceptions.ResourceNotFoundException):
            functions.get_function(FunctionName="checks-keeps-select")

        # Protection moved off as documented (the same key, not a new one): the buckets' guard
        # stops the destroy while the bucket holds the export, before the bucket's protections,
        # the key or the state machines go.
        path, bucket, key_arn, export = applied_with_an_export("unkept")
        run(["state", "mv", "module.database_backup.aws_kms_key.backup[0]",
             "module.database_backup.aws_kms_key.deletable[0]"], path)
        config = json.loads((path / "main.tf.json").read_text())
        config["module"]["database_backup"]["kms_key_deletion_protection"] = False
        (path / "main.tf.json").write_text(json.dumps(config))
        changes = run(["plan", "-input=false", "-detailed-exitcode"], path, check=False)
        self.assertEqual(changes.returncode, 0, changes.stdout + changes.stderr)
        guarded, state = protections(), run(["state", "list"], path).stdout
        self.assertIn("module.database_backup.aws_lambda_invocation.bucket_guard", state)
        output = destroy_refused(path)
        self.assertIn("BucketsHoldBackups", output)
        # The access-log bucket holds logs too (the local AWS writes them, as S3 does).
        self.assertRegex(output, rf"S3 bucket {bucket}( and {bucket}-logs)? \(for one, s3://{bucket}/checks/unkept/db-one/"
                                 r"\S+\) still hold objects \(s3_force_destroy is off\)")
        self.assertNotIn("BucketNotEmpty", output)
        self.assertEqual(protections(), guarded)
        self.assertEqual(guarded["key"], "Enabled")
        # Nothing destroyed: the functions, state machines, schedule and alarms run on.
        self.assertEqual(run(["state", "list"], path).stdout, state)
        functions.get_function(FunctionName="checks-unkept-select")

        # s3_force_destroy applied first: the guard lets the destroy through, exports and all.
        config["module"]["database_backup"]["s3_force_destroy"] = True
        (path / "main.tf.json").write_text(json.dumps(config))
        run(["apply", "-auto-approve", "-input=false"], path)
        run(["destroy", "-auto-approve", "-input=false"], path)
        self.assertNotIn(bucket, [b["Name"] for b in s3.list_buckets()["Buckets"]])
        self.assertEqual(kms.describe_key(KeyId=key_arn)["KeyMetadata"]["KeyState"], "PendingDeletion")


if __name__ == "__main__":
    unittest.main()
