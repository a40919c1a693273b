"""A vault in another region that takes an Aurora cluster, as docs/vault.md has it: the source
module in us-east-1, modules/vault in a second account in us-west-2, and modules/share-key
applied with a provider for the source account in us-west-2 (its key_arn given as
vault.cluster_share_kms_key_arn), all applied by Terraform into the local AWS in one root
module. A DB cluster snapshot cannot cross regions and accounts in one copy, and the local AWS
refuses that copy as AWS does (rule cluster_copy_across_region_and_account): the cluster's
snapshot goes in two copies (into us-west-2 in the source account, shared, then into the vault),
the instance's in one. The functions' roles are those Terraform made, and the local AWS
authorizes every call against them. Then a restore drill of the vault's copies (restore_drill
with copy = "vault"): the drill function restores both in the vault account through the vault's
drill role (allow_restore_drills), which the local AWS holds to its policies, checks and deletes
them.

Run by scripts/test inside `scripts/local-aws run`; it empties that local AWS.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import unittest

from botocore.exceptions import ClientError

from demo.report import tag_map
from local_aws.accounts import evaluate
from local_aws.control import control, local_endpoint
from local_aws.deploy import Aws
from local_aws.terraform import ROOT, local_provider
from applied import finished, terraform
from least_privilege import check_role, role_documents

SOURCE, VAULT_REGION = "us-east-1", "us-west-2"
VAULT = "111111111111"  # a second account, acted in by its administrator's key (local_aws/accounts.py)
CLUSTER, INSTANCE = "ledger-aurora", "ledger-db"
INSTANCE_NAME = "ledger/prod/us-east-1"  # the source module's managed-by value
VAULT_INTERMEDIATE = "database-backup:vault-intermediate"
CLOCK_SCALE = 600
endpoint = local_endpoint


class VaultInAnotherRegion(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        control(endpoint(), "POST", "reset")
        control(endpoint(), "PUT", "settings", {"clock_scale": CLOCK_SCALE})
        cls.source = Aws(endpoint())
        cls.vault = Aws(endpoint(), account=VAULT)
        rds = cls.source.client("rds", SOURCE)
        # Both under the AWS managed key aws/rds, which cannot be shared.
        rds.create_db_cluster(DBClusterIdentifier=CLUSTER, Engine="aurora-postgresql", MasterUsername="dbadmin",
                              MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True)
        rds.create_db_instance(DBInstanceIdentifier=INSTANCE, Engine="postgres", DBInstanceClass="db.t3.micro",
                               AllocatedStorage=20, MasterUsername="dbadmin",
                               MasterUserPassword="correct-horse-battery-staple", StorageEncrypted=True)
        cls.directory = ROOT / ".tools" / "e2e" / "vault-regions"
        shutil.rmtree(cls.directory, ignore_errors=True)
        cls.directory.mkdir(parents=True)
        modules = os.path.relpath(ROOT / "terraform", cls.directory)
        config = {
            "provider": {"aws": [
                {"region": SOURCE, **local_provider(endpoint())},
                {"alias": "source_in_vault_region", "region": VAULT_REGION, **local_provider(endpoint())},
                {"alias": "vault", "region": VAULT_REGION, **local_provider(endpoint()), "access_key": VAULT},
            ]},
            "data": {"aws_caller_identity": {"source": {}}},
            "module": {
                "vault": {
                    "source": f"{modules}/modules/vault", "providers": {"aws": "aws.vault"},
                    "name": "ledger-prod", "source_account_id": "${data.aws_caller_identity.source.account_id}",
                    "source_region": SOURCE, "source_prefix": "ledger-prod", "source_managed_by": INSTANCE_NAME,
                    "external_id": "ledger-prod-vault", "databases": [CLUSTER, INSTANCE],
                    "kms_key_deletion_window_days": 7, "allow_restore_drills": True,
                },
                "cluster_share_key": {
                    "source": f"{modules}/modules/share-key", "providers": {"aws": "aws.source_in_vault_region"},
                    "vault_account_id": "${module.vault.account_id}", "alias_name": "ledger-prod-vault-share-us-west-2",
                    "deletion_window_in_days": 7,
                },
                "backup": {
                    "source": modules, "project_name": "ledger", "environment": "prod",
                    "rds_instance_ids": [INSTANCE], "rds_cluster_ids": [CLUSTER], "enable_s3_export": False,
                    "s3_force_destroy": True, "kms_key_deletion_protection": False,
                    "vault": {
                        "account_id": "${module.vault.account_id}", "region": "${module.vault.region}",
                        "kms_key_arn": "${module.vault.kms_key_arn}", "role_arn": "${module.vault.role_arn}",
                        "external_id": "ledger-prod-vault",
                        "cluster_share_kms_key_arn": "${module.cluster_share_key.key_arn}",
                        "drill_role_arn": "${module.vault.drill_role_arn}",
                    },
                    "restore_drill": {"copy": "vault", "instance_class": "db.t3.micro", "rto_minutes": 60},
                },
            },
            "output": {
                "vault_kms_key_arn": {"value": "${module.vault.kms_key_arn}"},
                "vault_rule_names": {"value": "${module.vault.rule_names}"},
                "cluster_share_key": {"value": "${module.cluster_share_key.key_arn}"},
                "source_account": {"value": "${data.aws_caller_identity.source.account_id}"},
                "drill_state_machine_arn": {"value": "${module.backup.drill_state_machine_arn}"},
                "drill_role_arn": {"value": "${module.vault.drill_role_arn}"},
                "sns_topic_arn": {"value": "${module.backup.sns_topic_arn}"},
            },
        }
        (cls.directory / "main.tf.json").write_text(json.dumps(config, indent=1))
        terraform(cls.directory, "init", "-input=false")
        applied = terraform(cls.directory, "apply", "-auto-approve", "-input=false")
        # With the key in the vault's region, the plan-time check that warns of clusters the vault
        # would not take passes.
        assert "vault_region_takes_the_clusters" not in applied, applied[-3000:]
        outputs = json.loads(terraform(cls.directory, "output", "-json"))
        cls.outputs = {name: value["value"] for name, value in outputs.items()}

    backed_up = False

    def back_up(self) -> None:
        """One run of the backup (once for the tests): the vault then holds a copy of each database."""
        if VaultInAnotherRegion.backed_up:
            return
        [fired] = control(endpoint(), "POST", "events/fire", {"rule": "ledger-prod-backup-schedule", "region": SOURCE})
        run = finished(self.source.client("stepfunctions", SOURCE), fired["execution_arn"])
        self.assertEqual(run["status"], "SUCCEEDED", run)
        VaultInAnotherRegion.backed_up = True

    def intermediates(self) -> list[str]:
        """The copies made to share, in the source account, in both regions."""
        found = []
        for region in (SOURCE, VAULT_REGION):
            rds = self.source.client("rds", region)
            for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
                if VAULT_INTERMEDIATE in tag_map(s):
                    found.append(f"{region}:{s['DBSnapshotIdentifier']}")
            for s in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
                if VAULT_INTERMEDIATE in tag_map(s):
                    found.append(f"{region}:{s['DBClusterSnapshotIdentifier']}")
        return found

    def test_the_cluster_goes_in_two_copies_and_the_instance_in_one(self):
        self.back_up()

        vault_rds = self.vault.client("rds", VAULT_REGION)
        vault_key = self.outputs["vault_kms_key_arn"]
        source_account = self.outputs["source_account"]
        [cluster_copy] = vault_rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        [instance_copy] = vault_rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        self.assertEqual((cluster_copy["Status"], cluster_copy["KmsKeyId"]), ("available", vault_key))
        self.assertEqual((instance_copy["Status"], instance_copy["KmsKeyId"]), ("available", vault_key))
        # RDS records the cluster copy's source: the source account's copy made to share in the
        # vault's region (the second step, within one region), so the vault's retention counts it
        # as the source's; the instance's came across both in one step from the source region.
        cluster_id = cluster_copy["DBClusterSnapshotIdentifier"]
        self.assertEqual(cluster_copy["SourceDBClusterSnapshotArn"],
                         f"arn:aws:rds:{VAULT_REGION}:{source_account}:cluster-snapshot:{cluster_id}-vault")
        self.assertTrue(instance_copy["SourceDBSnapshotIdentifier"].startswith(f"arn:aws:rds:{SOURCE}:{source_account}:"),
                        instance_copy)
        self.assertEqual(tag_map(cluster_copy)["database-backup:managed-by"], INSTANCE_NAME)
        # The source's own snapshots stay where they were; the copies made to share are gone, in
        # both regions, and nothing in the source account is still shared.
        self.assertEqual(self.intermediates(), [])
        source_rds = self.source.client("rds", SOURCE)
        [snapshot] = source_rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
        self.assertEqual(snapshot["DBClusterSnapshotIdentifier"], cluster_id)
        attributes = source_rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=cluster_id)
        shared = [a["AttributeValues"] for a in attributes["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
                  if a["AttributeName"] == "restore"]
        self.assertIn(shared, ([], [[]]))

        # The vault's measurement counts the cluster's copy as copied from the source account.
        control(endpoint(), "POST", "events/fire", {"rule": self.outputs["vault_rule_names"]["snapshot-age"],
                                                    "region": VAULT_REGION, "account": VAULT})
        cloudwatch = self.vault.client("cloudwatch", VAULT_REGION)
        deadline = time.monotonic() + 120
        while True:
            listed = cloudwatch.list_metrics(MetricName="VaultSnapshotAge")["Metrics"]
            measured = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "DatabaseIdentifier"}
            if {CLUSTER, INSTANCE} <= measured:
                break
            self.assertLess(time.monotonic(), deadline, f"VaultSnapshotAge measured only {measured}")
            time.sleep(0.5)

        # The vault function's role: what its code calls, each action scoped as the module scopes it.
        iam = self.source.client("iam", SOURCE)
        [role] = [r["RoleName"] for r in iam.list_roles()["Roles"]
                  if r["RoleName"].startswith("ledger-prod-") and r["RoleName"].endswith("-vault")]
        documents = role_documents(iam, role)
        check = check_role("vault", ROOT / "target" / "lambda" / "backup-vault" / "bootstrap.zip", documents)
        self.assertTrue(check.ok, check.line())
        # The local AWS holds assumed roles to their policies, not the functions' own roles
        # (local_aws/accounts.py): the calls of the two steps in the vault's region, each on the
        # resources it acts on, are evaluated against the role's policies by the same evaluator.
        source_snapshot = f"arn:aws:rds:{SOURCE}:{source_account}:cluster-snapshot:{cluster_id}"
        made_to_share = f"arn:aws:rds:{VAULT_REGION}:{source_account}:cluster-snapshot:{cluster_id}-vault"
        calls = [("rds:CopyDBClusterSnapshot", [source_snapshot, made_to_share]),
                 ("rds:AddTagsToResource", [made_to_share]),
                 ("rds:ModifyDBClusterSnapshotAttribute", [made_to_share]),
                 ("rds:DeleteDBClusterSnapshot", [made_to_share]),
                 ("rds:DescribeDBClusterSnapshots", [made_to_share]),
                 ("kms:DescribeKey", [self.outputs["cluster_share_key"]]),
                 ("kms:GetKeyPolicy", [self.outputs["cluster_share_key"]]),
                 ("kms:CreateGrant", [self.outputs["cluster_share_key"]])]
        for action, arns in calls:
            self.assertEqual(evaluate(documents, action, arns), "allowed", f"{action} on {arns}")
        # Nothing else there: not the vault's region's other cluster snapshots of this account.
        other = f"arn:aws:rds:{VAULT_REGION}:{source_account}:cluster-snapshot:{cluster_id}"
        for action in ("rds:DeleteDBClusterSnapshot", "rds:ModifyDBClusterSnapshotAttribute", "rds:CopyDBClusterSnapshot"):
            self.assertEqual(evaluate(documents, action, [other]), "implicit", action)
        statements = {s["Sid"]: s for d in documents for s in d["Statement"]}
        self.assertEqual(statements["CreateClusterCopiesToShareInTheVaultRegionWithOwnTag"]["Condition"],
                         {"StringEquals": {"aws:RequestTag/database-backup:vault-intermediate": INSTANCE_NAME}})

    def drill_databases(self, aws: Aws, region: str) -> list[str]:
        rds = aws.client("rds", region)
        return ([d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]
                 if d["DBInstanceIdentifier"].startswith("drill-")]
                + [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]
                   if c["DBClusterIdentifier"].startswith("drill-")])

    def test_a_drill_restores_the_vaults_copies_in_the_vault_and_deletes_them(self):
        self.back_up()
        control(endpoint(), "DELETE", "calls")
        sfn = self.source.client("stepfunctions", SOURCE)
        [fired] = control(endpoint(), "POST", "events/fire", {"rule": "ledger-prod-drill-schedule", "region": SOURCE})
        drill = finished(sfn, fired["execution_arn"])
        self.assertEqual(drill["status"], "SUCCEEDED", drill)

        # Both restored in the vault account, in its region, from the vault's copies.
        history = sfn.get_execution_history(executionArn=fired["execution_arn"], maxResults=1000)["events"]
        outputs = [json.loads(e["lambdaFunctionSucceededEventDetails"]["output"]) for e in history
                   if e["type"] == "LambdaFunctionSucceeded"]
        restored = [o for o in outputs if "restored_id" in o and "db" in o]
        places = {(r["db"], r["account"], r["region"], r["kind"]) for r in restored}
        self.assertEqual(places, {(CLUSTER, VAULT, VAULT_REGION, "cluster"), (INSTANCE, VAULT, VAULT_REGION, "instance")})
        calls = control(endpoint(), "GET", "calls")
        self.assertEqual((calls.get("rds:RestoreDBInstanceFromDBSnapshot"), calls.get("rds:RestoreDBClusterFromSnapshot")),
                         (1, 1))
        # The restored cluster's writer, added through the drill role as the local AWS holds it.
        self.assertEqual(calls.get("rds:CreateDBInstance"), 1)
        self.assertGreaterEqual(calls.get("sts:AssumeRole", 0), 4)  # a session of the drill role per step there
        # Nothing left behind, in either account; nothing restored in the source account.
        self.assertEqual(self.drill_databases(self.vault, VAULT_REGION), [])
        self.assertEqual(self.drill_databases(self.source, SOURCE), [])
        # The vault's copies are still there.
        vault_rds = self.vault.client("rds", VAULT_REGION)
        self.assertEqual(len(vault_rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]), 1)
        self.assertEqual(len(vault_rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]), 1)

        # The drill's message names the vault account the copies were restored in.
        published = control(endpoint(), "GET", f"sns/published?region={SOURCE}")
        [message] = [m for m in published if m["topic_arn"] == self.outputs["sns_topic_arn"]
                     and "restore drill" in (m.get("subject") or "")]
        self.assertIn("restore drill PASSED", message["subject"])
        self.assertIn(f"({VAULT_REGION}, vault account {VAULT}", message["message"])

        # The drill role, as the local AWS holds it: restores only the source's copies, to drill
        # databases; deletes only those carrying the source's drill tag; never a copy.
        iam = self.vault.client("iam", VAULT_REGION)
        role = self.outputs["drill_role_arn"].split("/")[-1]
        documents = role_documents(iam, role)
        instance_copy = vault_rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"][0]["DBSnapshotArn"]
        restored_id = next(r["restored_id"] for r in restored if r["db"] == INSTANCE)
        prefix = restored_id[:restored_id.index(INSTANCE)]
        db = f"arn:aws:rds:{VAULT_REGION}:{VAULT}:db"
        # A database of the vault's named like a drill's, without the drill tag (left to the next
        # reset: the local AWS, as RDS, will not delete it while it is being created); and a
        # snapshot without the source's managed-by tag (none: a name no snapshot has).
        vault_rds.create_db_instance(DBInstanceIdentifier=f"{prefix}own-1", Engine="postgres",
                                     DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="dbadmin",
                                     MasterUserPassword="correct-horse-battery-staple")
        own_snapshot = f"arn:aws:rds:{VAULT_REGION}:{VAULT}:snapshot:not-a-copy"

        def tags(arn: str) -> dict[str, str]:
            """A resource's tags as the vault account's RDS lists them (none: not made yet)."""
            try:
                return {t["Key"]: t["Value"] for t in vault_rds.list_tags_for_resource(ResourceName=arn)["TagList"]}
            except ClientError:
                return {}

        def verdict(action: str, arns: list[str], request_tags: dict[str, str] | None = None) -> str:
            return evaluate(documents, action, arns, tags, request_tags)

        verdicts = {
            "restore a copy to a drill database": verdict(
                "rds:RestoreDBInstanceFromDBSnapshot", [instance_copy, f"{db}:{prefix}x-1"]),
            "restore a snapshot without the source's tag": verdict(
                "rds:RestoreDBInstanceFromDBSnapshot", [own_snapshot, f"{db}:{prefix}x-1"]),
            "restore a copy to another name": verdict(
                "rds:RestoreDBInstanceFromDBSnapshot", [instance_copy, f"{db}:ledger-db-2"]),
            "delete a database without the drill tag": verdict("rds:DeleteDBInstance", [f"{db}:{prefix}own-1"]),
            "create a drill-named DB instance without the drill tag": verdict(
                "rds:CreateDBInstance", [f"{db}:{prefix}x-2"], {"team": "dba"}),
            "create a drill-named DB instance with the drill tag": verdict(
                "rds:CreateDBInstance", [f"{db}:{prefix}x-2"], {"database-backup:drill": INSTANCE_NAME}),
            "add a DB instance to a cluster without the drill tag": verdict(
                "rds:CreateDBInstance", [f"{db}:{prefix}own-2", f"arn:aws:rds:{VAULT_REGION}:{VAULT}:cluster:{prefix}own"]),
            "delete a copy": verdict("rds:DeleteDBSnapshot", [instance_copy]),
            "share a copy": verdict("rds:ModifyDBSnapshotAttribute", [instance_copy]),
            "change a database": verdict("rds:ModifyDBInstance", [f"{db}:{prefix}x-1"]),
        }
        self.assertEqual(verdicts, {
            "restore a copy to a drill database": "allowed",
            "restore a snapshot without the source's tag": "implicit",
            "restore a copy to another name": "implicit",
            "delete a database without the drill tag": "implicit",
            "create a drill-named DB instance without the drill tag": "implicit",
            "create a drill-named DB instance with the drill tag": "allowed",
            "add a DB instance to a cluster without the drill tag": "implicit",
            "delete a copy": "denied",
            "share a copy": "denied",
            "change a database": "denied",
        })
        # The tag is what refuses that deletion: its name and the action are the drill's.
        self.assertEqual(evaluate(documents, "rds:DeleteDBInstance", [f"{db}:{prefix}own-1"]), "allowed")
        # The source's drill role: what its code calls, sts:AssumeRole on the vault's drill role included.
        source_iam = self.source.client("iam", SOURCE)
        [source_role] = [r["RoleName"] for r in source_iam.list_roles()["Roles"]
                         if r["RoleName"].startswith("ledger-prod-") and r["RoleName"].endswith("-drill")]
        check = check_role("drill", ROOT / "target" / "lambda" / "backup-drill" / "bootstrap.zip",
                           role_documents(source_iam, source_role), vault_drills=True)
        self.assertTrue(check.ok, check.line())


if __name__ == "__main__":
    unittest.main()
