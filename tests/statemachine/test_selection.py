"""Databases chosen by tag and by pattern (selection_tags, exclude_tags,
db_identifier_patterns): read at each run, so that databases created after the
module was applied are backed up by its next run; excluded ones are not, and the
run summary lists both with their reasons."""

from __future__ import annotations

from harness import MANAGED_BY, SOURCE_DB, LocalAwsTest
from local_aws.deploy import Settings

ONLY_SNAPSHOTS = {"skip_export": True, "skip_copy": True, "skip_prune": True}


def tags_of(tag_list: list[dict]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}


class SelectedByTag(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}
    settings = Settings(selection_tags=(("backup", "daily"), ("team", "*")), exclude_tags=(("backup-skip", "*"),))

    def create_tagged(self, identifier: str, tags: dict[str, str], cluster: bool = False):
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        if cluster:
            self.rds.create_db_cluster(DBClusterIdentifier=identifier, Engine="aurora-postgresql", MasterUsername="admin",
                                       MasterUserPassword="correct-horse-battery", StorageEncrypted=True, Tags=tag_list)
            return
        self.rds.create_db_instance(DBInstanceIdentifier=identifier, Engine="postgres", DBInstanceClass="db.t3.micro",
                                    AllocatedStorage=20, MasterUsername="admin",
                                    MasterUserPassword="correct-horse-battery", StorageEncrypted=True, Tags=tag_list)

    def test_databases_tagged_after_apply_are_backed_up_and_the_excluded_are_not(self):
        # Created after the module was deployed: no apply tells it of them.
        self.create_tagged("orders", {"backup": "daily", "team": "shop"})
        self.create_tagged("reports", {"backup": "daily", "team": "data"}, cluster=True)
        self.create_tagged("ledger", {"backup": "daily", "team": "money", "backup-skip": "legal-hold"})
        self.create_tagged("scratch", {"backup": "daily"})  # no team tag: not all the tags

        run = self.run_execution(ONLY_SNAPSHOTS)

        self.assert_succeeded(run)
        results = run.results()
        self.assertEqual(set(results), {"prod-database-1", "orders", "reports"})
        snapshots = self.manual_snapshots()
        for db in ("orders", "reports"):
            snapshot_id = run.result_of(db, "snapshot")["snapshot_id"]
            if db == "reports":
                tags = tags_of(self.rds.describe_db_cluster_snapshots(
                    DBClusterSnapshotIdentifier=snapshot_id)["DBClusterSnapshots"][0]["TagList"])
            else:
                tags = tags_of(snapshots[snapshot_id]["TagList"])
            self.assertEqual((tags[MANAGED_BY], tags[SOURCE_DB]), (self.instance, db))
        self.assertEqual({s["DBInstanceIdentifier"] for s in snapshots.values()}, {"prod-database-1", "orders"})

        selection = run.report()["selection"]
        self.assertEqual(selection["selected"], [
            {"reason": "named in rds_instance_ids or rds_cluster_ids", "databases": ["prod-database-1"]},
            {"reason": "tags backup=daily, team=*", "databases": ["orders", "reports"]},
        ])
        self.assertEqual(selection["excluded"], [
            {"reason": "tags backup=daily, team=*, but carries exclude tag backup-skip=*", "databases": ["ledger"]}])
        self.assertEqual(selection["unmatched"], 1)
        message = self.sns_messages()[0]["Message"]
        self.assertIn("EXCLUDED  1 (tags backup=daily, team=*, but carries exclude tag backup-skip=*): ledger", message)
        self.assertIn("selected  2 (tags backup=daily, team=*): orders, reports", message)
        self.assertIn("1 of the region's databases matched no criterion", message)

    def test_an_input_naming_a_database_outside_the_selection_is_refused_before_any_snapshot(self):
        self.create_tagged("scratch", {"backup": "daily"})

        run = self.run_execution({**ONLY_SNAPSHOTS, "db_instance_ids": ["scratch"]})

        self.assertEqual(run.status, "FAILED")
        self.assertIn("run stopped: InvalidInput", run.description["cause"])
        self.assertIn("names scratch outside the module's databases (prod-database-1)", self.sns_messages()[0]["Message"])
        self.assertEqual(self.manual_snapshots(), {})
        self.assertEqual(self.calls("rds:CreateDBSnapshot"), 0)


class SelectedByPattern(LocalAwsTest):
    databases = {}
    settings = Settings(patterns=("prod-.*",))

    def test_only_identifiers_the_pattern_matches_whole_are_backed_up(self):
        for identifier in ("prod-orders", "dev-orders", "preprod-orders"):
            self.create_database(identifier, "postgres")

        run = self.run_execution(ONLY_SNAPSHOTS)

        self.assert_succeeded(run)
        self.assertEqual(set(run.results()), {"prod-orders"})
        self.assertEqual(run.report()["selection"]["selected"],
                         [{"reason": "pattern prod-.*", "databases": ["prod-orders"]}])

    def test_a_selection_that_matches_nothing_fails_the_run_saying_so(self):
        self.create_database("dev-orders", "postgres")

        run = self.run_execution(ONLY_SNAPSHOTS)

        self.assertEqual(run.status, "FAILED")
        message = self.sns_messages()[0]["Message"]
        self.assertIn("selects no database: the module names none, and of the region's 1 databases 0 matched", message)
        self.assertEqual(self.calls("rds:CreateDBSnapshot"), 0)
