"""manage_automated_backups: as a run ends, the deployed notify sets each database's automated
backup retention and backup window (ModifyDBInstance, ApplyImmediately off), within the role
the module plans, and the summary says what each got. The local AWS holds turning automated
backups on for the database's maintenance window, as RDS does (ModifyDBInstance,
BackupRetentionPeriod), and applies it once the clock passes the window."""

from __future__ import annotations

import time
from datetime import timedelta

from harness import LocalAwsTest, Settings, control, now


class ManagedAutomatedBackups(LocalAwsTest):
    databases = {"prod-database-1": "postgres", "prod-database-2": "mysql", "prod-database-3": "postgres"}
    settings = Settings(managed_automated_backups=(7, False))

    def test_each_database_gets_the_retention_and_window_asked_for_but_a_longer_retention_stays(self):
        # prod-database-1 keeps RDS's default of 1 day; a DBA set 14 on prod-database-2 and turned
        # prod-database-3's automated backups off.
        self.rds.modify_db_instance(DBInstanceIdentifier="prod-database-2", BackupRetentionPeriod=14,
                                    PreferredBackupWindow="05:00-05:30", ApplyImmediately=True)
        self.rds.modify_db_instance(DBInstanceIdentifier="prod-database-3", BackupRetentionPeriod=0,
                                    ApplyImmediately=True)

        run = self.run_execution({"skip_copy": True, "skip_export": True, "skip_prune": True})

        self.assert_succeeded(run)
        described = {db: self.rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]
                     for db in self.databases}
        self.assertEqual((described["prod-database-1"]["BackupRetentionPeriod"],
                          described["prod-database-1"]["PreferredBackupWindow"]), (7, "02:00-03:00"))
        self.assertEqual((described["prod-database-2"]["BackupRetentionPeriod"],
                          described["prod-database-2"]["PreferredBackupWindow"]), (14, "02:00-03:00"))
        # Turning backups on waits for the maintenance window: RDS shows it pending.
        self.assertEqual(described["prod-database-3"]["BackupRetentionPeriod"], 0)
        self.assertEqual(described["prod-database-3"]["PendingModifiedValues"], {"BackupRetentionPeriod": 7})
        self.assertEqual(self.calls("rds:ModifyDBInstance"), 2 + 1 + 2)  # retention and window each on its own

        [message] = self.sns_messages()
        text = message["Message"]
        self.assertIn("managed: retention 1 -> 7 days; window", text)
        self.assertIn("managed: kept its 14 days, longer than the 7 asked (shorten_retention would shorten it); "
                      "window 05:00-05:30 -> 02:00-03:00", text)
        self.assertIn("OFF     prod-database-3: automated backups are off (retention 0)\n"
                      "        managed: retention 0 -> 7 days, from the next maintenance window", text)

        # The next maintenance window (at most a week of the clock away) turns them on.
        window = described["prod-database-3"]["PreferredMaintenanceWindow"]
        control("PUT", "settings", {"clock_scale": 400_000})
        deadline = now() + timedelta(days=7, hours=1)
        while now() < deadline:
            time.sleep(0.2)
        control("PUT", "settings", {"clock_scale": self.clock_scale})
        on = self.rds.describe_db_instances(DBInstanceIdentifier="prod-database-3")["DBInstances"][0]
        self.assertEqual(on["BackupRetentionPeriod"], 7, f"after the window {window}")
        self.assertNotIn("PendingModifiedValues", on)

        # The next run finds them as asked and changes nothing.
        self.run_execution({"skip_copy": True, "skip_export": True, "skip_prune": True})
        self.assertEqual(self.calls("rds:ModifyDBInstance"), 0)
        [message] = self.sns_messages()
        self.assertIn("managed: as asked: 7 days, window 02:00-03:00", message["Message"])
