"""Oracle and SQL Server snapshots taken with TDE: RDS copies them to another
region only with an option group there that has the same persistent and
permanent options (CopyDBSnapshot's OptionGroupName), and the local AWS refuses
a copy without one as RDS does. Copy makes none and says why, or copies with
the group configured for it (cross_region_option_groups)."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError
from harness import DESTINATION, LocalAwsTest, control

GROUP = "ledger-oracle-tde"


class OracleWithTde(LocalAwsTest):
    databases = {"ledger": "oracle-ee"}

    def create_database(self, db: str, engine: str):
        self.rds.create_option_group(OptionGroupName=GROUP, EngineName=engine, MajorEngineVersion="19",
                                     OptionGroupDescription="Oracle with TDE")
        self.rds.modify_option_group(OptionGroupName=GROUP, OptionsToInclude=[{"OptionName": "TDE"}])
        self.rds.create_db_instance(DBInstanceIdentifier=db, Engine=engine, DBInstanceClass="db.m5.large",
                                    AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="correct-horse-battery",
                                    StorageEncrypted=True, OptionGroupName=GROUP, LicenseModel="bring-your-own-license")

    def test_the_local_aws_refuses_a_copy_without_the_option_group_as_rds_does(self):
        self.rds.create_db_snapshot(DBInstanceIdentifier="ledger", DBSnapshotIdentifier="by-hand")
        snapshot = self.available("by-hand")
        self.assertEqual(snapshot["OptionGroupName"], GROUP)
        with self.assertRaises(ClientError) as refused:
            self.rds_destination.copy_db_snapshot(SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
                                                  TargetDBSnapshotIdentifier="by-hand-copy", SourceRegion="us-east-1")
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterValue")
        self.assertIn("[TDE]", refused.exception.response["Error"]["Message"])
        control("PUT", "settings", {"copy_across_regions_without_option_group": 0})
        try:
            self.rds_destination.copy_db_snapshot(SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
                                                  TargetDBSnapshotIdentifier="by-hand-copy", SourceRegion="us-east-1")
        finally:
            control("PUT", "settings", {"copy_across_regions_without_option_group": 1})

    def test_the_local_aws_refuses_to_share_it_with_another_account_as_rds_does(self):
        # Under a customer managed key (one under aws/rds cannot be shared at all): a copy keeps
        # the option group.
        self.rds.create_db_snapshot(DBInstanceIdentifier="ledger", DBSnapshotIdentifier="taken")
        self.available("taken")
        key = self.aws.client("kms", "us-east-1").create_key(Description="to share")["KeyMetadata"]["Arn"]
        self.rds.copy_db_snapshot(SourceDBSnapshotIdentifier="taken", TargetDBSnapshotIdentifier="to-share", KmsKeyId=key)
        self.assertEqual(self.available("to-share")["OptionGroupName"], GROUP)
        share = dict(DBSnapshotIdentifier="to-share", AttributeName="restore", ValuesToAdd=["111111111111"])
        with self.assertRaises(ClientError) as refused:
            self.rds.modify_db_snapshot_attribute(**share)
        self.assertEqual(refused.exception.response["Error"]["Code"], "InvalidParameterCombination")
        self.assertIn("[TDE]", refused.exception.response["Error"]["Message"])
        control("PUT", "settings", {"share_with_persistent_options": 0})
        try:
            self.rds.modify_db_snapshot_attribute(**share)
        finally:
            control("PUT", "settings", {"share_with_persistent_options": 1})

    def test_without_a_destination_group_no_copy_is_made_and_the_summary_says_why(self):
        run = self.run_execution({"skip_export": True})

        self.assert_succeeded(run)
        self.assertEqual(run.lambda_failures(), [])
        item = run.results()["ledger"]
        self.assertNotIn("copy", item)
        self.assertNotIn("copy_error", item)
        for part in (GROUP, "TDE", DESTINATION, "cross_region_option_groups"):
            self.assertIn(part, item["copy_warning"])
        self.assertEqual(self.manual_snapshots(self.rds_destination), {})
        [message] = self.sns_messages()
        self.assertIn("1 copy not made", message["Subject"])
        self.assertIn("copy WARNING", message["Message"])
        self.assertIn(f"`ledger` copy: no copy to {DESTINATION}", json.dumps(self.slack_messages()))

    def test_with_a_destination_group_the_copy_is_made_with_it(self):
        self.rds_destination.create_option_group(OptionGroupName=f"{GROUP}-west", EngineName="oracle-ee",
                                                 MajorEngineVersion="19", OptionGroupDescription="TDE in the copy region")
        self.set_function_env("copy", "COPY_OPTION_GROUPS", json.dumps({GROUP: f"{GROUP}-west"}))

        run = self.run_execution({"skip_export": True})

        self.assert_succeeded(run)
        item = run.results()["ledger"]
        self.assertNotIn("copy_warning", item)
        copy = self.manual_snapshots(self.rds_destination)[item["copy"]["snapshot_id"]]
        self.assertEqual(copy["OptionGroupName"], f"{GROUP}-west")
