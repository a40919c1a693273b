"""Grandfather-father-son retention, run for real: a year and more of daily snapshots
(backdated, as the demo's history is) in the source region and months of copies in the
destination, pruned by the module's retention_policy and copy_retention_policy to exactly
the tiers' set, each kept snapshot tagged with its tiers; and the guard that refuses a
policy change deleting most of a database's snapshots until the run's input confirms it."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

from harness import DESTINATION, ROOT, SOURCE, LocalAwsTest, control, now

# Built by the unit tests' build (scripts/check): the command scripts/retention-plan runs.
RETENTION_PLAN = ROOT / "target" / "debug" / "retention-plan"

TIERS_TAG = "database-backup:retention-tiers"
# A tier's periods as calendar strings (ISO weeks): independent of the functions' own code.
PERIODS = {"daily": "%Y-%m-%d", "weekly": "%G-W%V", "monthly": "%Y-%m", "yearly": "%Y"}
POLICY = {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}
COPY_POLICY = {"daily": 3, "monthly": 2}


def tiers_keeping(created: dict[str, datetime], policy: dict[str, int]) -> dict[str, list[str]]:
    """The tiers that keep each snapshot: the first of its period, among the newest periods."""
    kept: dict[str, list[str]] = {snapshot_id: [] for snapshot_id in created}
    for tier, fmt in PERIODS.items():
        first: dict[str, tuple[datetime, str]] = {}
        for snapshot_id, at in created.items():
            period = at.astimezone(timezone.utc).strftime(fmt)
            first[period] = min(first.get(period, (at, snapshot_id)), (at, snapshot_id))
        for period in sorted(first, reverse=True)[:policy.get(tier, 0)]:
            kept[first[period][1]].append(tier)
    return kept


class RetentionTiers(LocalAwsTest):
    databases = {"prod-database-1": "postgres"}
    settings = LocalAwsTest.settings.with_(retention_policy=tuple(POLICY.items()),
                                           copy_retention_policy=tuple(COPY_POLICY.items()))
    ONLY_SNAPSHOTS_AND_COPIES = {"skip_export": True}

    def setUp(self):
        super().setUp()
        # The seeding and the first plan run on a real-time clock (the instant mode): the
        # newest seeded snapshot is a day old and the staleness guard's bound is 30 hours,
        # a margin that 600 times real time shrinks to 36 real seconds, less than seeding
        # 440 snapshots takes on a loaded machine (then every snapshot was kept as "too old").
        control("PUT", "settings", {"clock_scale": 0})
        # An account whose manual snapshot quota was raised (100 by default) to hold the
        # year of daily snapshots the earlier, age-based policy kept.
        control("PUT", "settings", {"snapshot_limit": 1000})
        self.copies = self.aws.client("rds", DESTINATION)
        tags = self.our_tags("prod-database-1")
        at = now()
        for age_days in range(1, 401):
            self.make_snapshot("prod-database-1", f"daily-{age_days:03}", age_days, tags)
        # Copies of the last 40 days in the destination, as the module made them.
        source_arn = self.rds.describe_db_snapshots(DBSnapshotIdentifier="daily-001")["DBSnapshots"][0]["DBSnapshotArn"]
        for age_days in range(1, 41):
            copy_id = f"copy-{age_days:03}"
            self.copies.copy_db_snapshot(SourceDBSnapshotIdentifier=source_arn.replace("daily-001", f"daily-{age_days:03}"),
                                         TargetDBSnapshotIdentifier=copy_id, SourceRegion=SOURCE,
                                         Tags=tags + [{"Key": "database-backup:copied-from", "Value": source_arn}])
            control("POST", "rds/snapshot-created", {"region": DESTINATION, "snapshot_id": copy_id,
                                                     "created": (at - timedelta(days=age_days)).isoformat()})

    def ours(self, rds) -> dict[str, dict]:
        """The available manual snapshots (every page: RDS answers 100 at most at a time)."""
        pages = rds.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
        return {s["DBSnapshotIdentifier"]: s for page in pages for s in page["DBSnapshots"] if s["Status"] == "available"}

    def retention_plan(self, *arguments: str) -> str:
        """The retention plan of this instance, as of the local AWS's clock."""
        done = subprocess.run([str(RETENTION_PLAN), self.deployment.state_machine_arn, "--at", now().isoformat(),
                               *arguments], capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_a_year_of_backups_is_pruned_to_exactly_the_tiers_in_both_regions(self):
        # The plan, before any run: prune's decisions under the new policy, and the guard.
        plan = json.loads(self.retention_plan("--json"))
        source = plan["regions"][0]
        self.assertEqual((source["region"], source["retention"]), (SOURCE, "7 daily, 4 weekly, 12 monthly, 3 yearly"))
        [database] = source["databases"]
        created = {i: s["SnapshotCreateTime"] for i, s in self.ours(self.rds).items()}
        tiers = tiers_keeping(created, POLICY)
        newest = sorted(created, key=lambda i: created[i])[-self.settings.min_snapshots_to_keep:]
        kept = {s["snapshot_id"] for s in database["snapshots"] if not s["delete"]}
        self.assertEqual(kept, {i for i, t in tiers.items() if t} | set(newest))
        self.assertEqual(source["deleting"], len(created) - len(kept))
        self.assertIn(f"{source['deleting']} of the 400 snapshots of prod-database-1 in us-east-1", source["guard"])
        for snapshot in database["snapshots"]:
            self.assertEqual(snapshot["tiers"], tiers[snapshot["snapshot_id"]], snapshot["snapshot_id"])
        # A daily-only snapshot goes when the seventh later day has its backup.
        daily_only = next(s for s in database["snapshots"] if s["tiers"] == ["daily"])
        created_day = datetime.fromisoformat(daily_only["created_at"]).date()
        self.assertEqual(datetime.fromisoformat(daily_only["expires"]).date(), created_day + timedelta(days=7))
        # The storage kept: each snapshot's allocated storage, at RDS's price.
        gib = sum(s["AllocatedStorage"] for i, s in self.ours(self.rds).items() if i in kept)
        self.assertGreater(gib, 0)
        self.assertEqual(source["retained"], {"snapshots": len(kept), "gib": gib,
                                              "monthly_cost_cents": round(gib * 0.095 * 100)})
        self.assertEqual(plan["selection"]["selected"],
                         [{"reason": "named in rds_instance_ids or rds_cluster_ids", "databases": ["prod-database-1"]}])
        self.assertEqual(plan["regions"][1]["region"], DESTINATION)
        table = self.retention_plan()
        self.assertIn(f"{SOURCE}, retention 7 daily, 4 weekly, 12 monthly, 3 yearly", table)
        self.assertIn("GUARD: the next run deletes nothing unless", table)
        self.assertIn(f"the next run deletes {source['deleting']} snapshots", table)

        # The new policy would delete most of the year: the guard refuses it, nothing goes.
        control("PUT", "settings", {"clock_scale": self.clock_scale})
        run = self.run_execution(self.ONLY_SNAPSHOTS_AND_COPIES, timeout=300)
        self.assertEqual(run.status, "FAILED")
        error = run.report()["prune_error"]
        self.assertEqual(error["Error"], "RetentionChangeUnconfirmed")
        cause = json.loads(error["Cause"])["errorMessage"]
        self.assertIn("of the 401 snapshots of prod-database-1 in us-east-1", cause)
        self.assertIn('"confirm_retention_change": true', cause)
        self.assertEqual(len(self.ours(self.rds)), 401)
        [message] = self.sns_messages()[-1:]
        self.assertIn("FAILED  retention (prune) RetentionChangeUnconfirmed", message["Message"])

        # Confirmed: exactly the tiers' set stays, in each region by its own policy.
        before = {region: {i: s["SnapshotCreateTime"] for i, s in self.ours(rds).items()}
                  for region, rds in ((SOURCE, self.rds), (DESTINATION, self.copies))}
        run = self.run_execution({**self.ONLY_SNAPSHOTS_AND_COPIES, "confirm_retention_change": True}, timeout=300)
        self.assert_succeeded(run)
        made = run.results()["prod-database-1"]
        for region, rds, policy in ((SOURCE, self.rds, POLICY), (DESTINATION, self.copies, COPY_POLICY)):
            with self.subTest(region=region):
                created = dict(before[region])
                new_id = made["snapshot"]["snapshot_id"] if region == SOURCE else made["copy"]["snapshot_id"]
                created[new_id] = self.ours(rds)[new_id]["SnapshotCreateTime"]
                tiers = tiers_keeping(created, policy)
                newest = sorted(created, key=lambda i: created[i])[-self.settings.min_snapshots_to_keep:]
                expected = {i for i, kept in tiers.items() if kept} | set(newest)
                remaining = self.ours(rds)
                self.assertEqual(set(remaining), expected)
                self.assertLessEqual(len(expected), sum(policy.values()) + self.settings.min_snapshots_to_keep)
                # Each kept snapshot says which tiers keep it.
                for snapshot_id, snapshot in remaining.items():
                    tag = {t["Key"]: t["Value"] for t in snapshot.get("TagList", [])}.get(TIERS_TAG)
                    self.assertEqual(tag, " ".join(tiers[snapshot_id]) or "none", snapshot_id)
        prune = run.report()["prune"]
        self.assertEqual(prune["retention_policy"], POLICY)
        self.assertEqual(prune["copy_retention_policy"], {"weekly": 0, "yearly": 0, **COPY_POLICY})
        [message] = self.sns_messages()[-1:]
        self.assertIn("retention (7 daily, 4 weekly, 12 monthly, 3 yearly) in us-east-1: deleted", message["Message"])
        self.assertIn("retention (3 daily, 2 monthly) in us-west-2: deleted", message["Message"])

        # The plan now shows what the run left, and the run summary's storage is the plan's.
        plan = json.loads(self.retention_plan("--json"))
        for planned, pruned in zip(plan["regions"], prune["regions"], strict=True):
            with self.subTest(region=planned["region"]):
                self.assertEqual(planned["deleting"], 0)
                self.assertIsNone(planned["guard"])
                self.assertEqual(planned["retained"], pruned["retained"])
        self.assertIn("retained up to", message["Message"])

        # A second run the same day deletes nothing more than the day's turnover, and
        # needs no confirmation.
        run = self.run_execution(self.ONLY_SNAPSHOTS_AND_COPIES, timeout=300)
        self.assert_succeeded(run)
        self.assertLessEqual(sum(r["deleted_count"] for r in run.report()["prune"]["regions"]), 2)


class ExportTiers(LocalAwsTest):
    """s3_export_tiers: one export a month, the first snapshot's, or the next one's when
    no export of an earlier snapshot of the month completed or runs."""

    databases = {"prod-database-1": "postgres"}
    settings = LocalAwsTest.settings.with_(export_tiers=("monthly",))
    ONLY_EXPORTS = {"skip_copy": True, "skip_prune": True}

    def test_one_export_a_month_and_a_failed_one_is_made_up(self):
        # An earlier snapshot of ours this month whose export never ran: the first run's
        # snapshot is exported in its place.
        self.make_snapshot("prod-database-1", "earlier-this-month", 0.01, self.our_tags("prod-database-1"))
        first = self.run_execution(self.ONLY_EXPORTS, timeout=300)
        self.assert_succeeded(first)
        first_result = first.results()["prod-database-1"]
        self.assertFalse(first_result["export"]["skipped"], first_result)
        self.assertIsNotNone(first_result["export"]["export_task_id"])

        second = self.run_execution(self.ONLY_EXPORTS, timeout=300)
        self.assert_succeeded(second)
        result = second.results()["prod-database-1"]
        snapshots = self.manual_snapshots()
        months = {snapshots[r["snapshot"]["snapshot_id"]]["SnapshotCreateTime"].strftime("%Y-%m")
                  for r in (first_result, result)}
        if len(months) == 2:
            self.skipTest(f"the clock crossed into a new month between the runs: {months}")
        self.assertTrue(result["export"]["skipped"], result)
        self.assertIn(f"its month by {first_result['snapshot']['snapshot_id']}", result["export"]["warning"])
        self.assertEqual(len(self.rds.describe_export_tasks()["ExportTasks"]), 1)
        [message] = self.sns_messages()[-1:]
        self.assertIn("export skipped: snapshot", message["Message"])
