//! The plan as a table for people (`--json` prints the [`Report`] itself).

use std::fmt::Write as _;

use backup_core::cost::{Retained, dollars};
use backup_core::retention::Tier;
use chrono::{DateTime, Utc};

use crate::{Report, SnapshotPlan, reason_label};

/// Rows with each column padded to its widest cell; numbers (`right`) align right.
fn columns(rows: &[Vec<String>], right: &[usize], indent: &str) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &width))| {
                if right.contains(&c) {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{indent}{}", cells.join("  ").trim_end());
    }
    out
}

fn day(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.format("%Y-%m-%d").to_string())
}

fn minute(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "unknown".to_owned(), |at| at.format("%Y-%m-%d %H:%M").to_string())
}

/// `1 snapshot`, `2 snapshots`.
fn snapshots(count: usize) -> String {
    format!("{count} snapshot{}", if count == 1 { "" } else { "s" })
}

fn storage(retained: &Retained) -> String {
    format!(
        "{}, up to {} GiB, at most {} a month",
        snapshots(retained.snapshots),
        retained.gib,
        dollars(retained.monthly_cost_cents)
    )
}

/// Why a snapshot stays or goes, in a word or two.
fn why(snapshot: &SnapshotPlan, by_tiers: bool) -> String {
    match snapshot.kept_because {
        _ if !snapshot.tiers.is_empty() => {
            let tiers: Vec<&str> = snapshot.tiers.iter().map(|t| Tier::as_str(*t)).collect();
            tiers.join(" ")
        }
        Some(reason) => reason_label(reason).to_owned(),
        None if by_tiers => "no tier keeps it".to_owned(),
        None => "past retention".to_owned(),
    }
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Retention plan of {}, as of {} UTC. It changes nothing.\n",
        report.state_machine_arn,
        report.at.format("%Y-%m-%d %H:%M")
    );

    let _ = writeln!(out, "Databases the selection picks");
    let mut rows = Vec::new();
    for group in &report.selection.selected {
        rows.push(vec![
            "selected".to_owned(),
            group.databases.join(", "),
            group.reason.clone(),
        ]);
    }
    for group in &report.selection.excluded {
        rows.push(vec![
            "EXCLUDED".to_owned(),
            group.databases.join(", "),
            group.reason.clone(),
        ]);
    }
    out.push_str(&columns(&rows, &[], "  "));
    if report.selection.unmatched > 0 {
        let _ = writeln!(
            out,
            "  {} of the region's databases matched no criterion",
            report.selection.unmatched
        );
    }

    for region in &report.regions {
        let by_tiers = !region.retention.ends_with(" days");
        let _ = writeln!(out, "\n{}, retention {}", region.region, region.retention);
        for database in &region.databases {
            let kind = serde_json::to_value(database.kind).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} ({})",
                database.db_identifier,
                kind.as_str().unwrap_or_default()
            );
            let mut rows = vec![
                ["SNAPSHOT", "CREATED (UTC)", "GIB", "PLAN", "WHY", "EXPIRES"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for snapshot in &database.snapshots {
                rows.push(vec![
                    snapshot.snapshot_id.clone(),
                    minute(snapshot.created_at),
                    snapshot
                        .allocated_storage_gib
                        .map_or_else(|| "-".to_owned(), |g| g.to_string()),
                    if snapshot.delete { "delete" } else { "keep" }.to_owned(),
                    why(snapshot, by_tiers),
                    if snapshot.delete {
                        "next run".to_owned()
                    } else {
                        day(snapshot.expires)
                    },
                ]);
            }
            out.push_str(&columns(&rows, &[2], "    "));
        }
        let _ = writeln!(out, "  kept: {}", storage(&region.retained));
        let rows: Vec<Vec<String>> = region
            .kept_by
            .iter()
            .map(|(label, retained)| {
                vec![
                    label.clone(),
                    snapshots(retained.snapshots),
                    format!("{} GiB", retained.gib),
                    dollars(retained.monthly_cost_cents),
                ]
            })
            .collect();
        out.push_str(&columns(&rows, &[1, 2, 3], "    "));
        let _ = writeln!(out, "  the next run deletes {}", snapshots(region.deleting));
        if let Some(refusal) = &region.guard {
            let _ = writeln!(
                out,
                "  GUARD: the next run deletes nothing unless its input has \"confirm_retention_change\": true: {refusal}"
            );
        }
    }

    if let Some(exports) = &report.exports {
        let _ = writeln!(out, "\nS3 exports (bucket {})", exports.bucket);
        let mut rows = vec![["CLASS", "OBJECTS", "GB", "$/MONTH"].map(str::to_owned).to_vec()];
        for (class, storage) in &exports.by_class {
            rows.push(vec![
                class.clone(),
                storage.objects.to_string(),
                format!("{:.3}", backup_core::cost::gigabytes(storage.bytes)),
                storage
                    .monthly_cost_cents
                    .map_or_else(|| "no list price here".to_owned(), dollars),
            ]);
        }
        out.push_str(&columns(&rows, &[1, 2, 3], "  "));
    }

    let _ = writeln!(
        out,
        "\nIn all at most {} a month, at {} list prices read on {}: {}.",
        dollars(report.monthly_cost_cents),
        report.prices.region,
        report.prices.read_on,
        report.prices.note
    );
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use backup_core::selection::{Group, Selection};
    use backup_core::types::{DatabaseKind, KeepReason};
    use chrono::TimeZone;

    use super::*;
    use crate::{ClassStorage, DatabaseReport, ExportStorage, Prices, RegionReport};

    fn at(day: u32) -> Option<DateTime<Utc>> {
        Some(Utc.with_ymd_and_hms(2026, 12, day, 3, 0, 0).unwrap())
    }

    fn snapshot(id: &str, day: u32, kept_because: Option<KeepReason>, tiers: &[Tier], expires: u32) -> SnapshotPlan {
        SnapshotPlan {
            snapshot_id: id.into(),
            created_at: at(day),
            status: "available".into(),
            allocated_storage_gib: Some(500),
            delete: kept_because.is_none(),
            kept_because,
            tiers: tiers.to_vec(),
            expires: kept_because.and(at(expires)),
        }
    }

    #[test]
    fn the_table_says_what_stays_why_until_when_and_what_it_costs() {
        let kept = Retained {
            snapshots: 2,
            gib: 1000,
            monthly_cost_cents: 9500,
        };
        let report = Report {
            state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:shop-compliance-backup".into(),
            at: at(5).unwrap(),
            prices: Prices {
                region: "us-east-1",
                read_on: "2026-12-05",
                note: "list prices",
            },
            selection: Selection {
                selected: vec![Group {
                    reason: "named in rds_instance_ids or rds_cluster_ids".into(),
                    databases: vec!["prod-ledger-1".into()],
                }],
                excluded: vec![],
                unmatched: 0,
            },
            regions: vec![RegionReport {
                region: "us-east-1".into(),
                retention: "7 daily, 12 monthly".into(),
                retained: kept,
                kept_by: BTreeMap::from([("monthly".to_owned(), kept)]),
                deleting: 1,
                guard: None,
                databases: vec![DatabaseReport {
                    db_identifier: "prod-ledger-1".into(),
                    kind: DatabaseKind::Instance,
                    snapshots: vec![
                        snapshot("ledger-5", 5, Some(KeepReason::InTier), &[Tier::Daily], 12),
                        snapshot(
                            "ledger-1",
                            1,
                            Some(KeepReason::InTier),
                            &[Tier::Daily, Tier::Monthly],
                            31,
                        ),
                        snapshot("ledger-0", 1, None, &[], 1),
                    ],
                }],
            }],
            exports: Some(ExportStorage {
                bucket: "shop-compliance-backups".into(),
                by_class: BTreeMap::from([(
                    "DEEP_ARCHIVE".to_owned(),
                    ClassStorage {
                        objects: 3,
                        bytes: 2_000_000_000_000,
                        monthly_cost_cents: Some(198),
                    },
                )]),
                truncated: false,
            }),
            monthly_cost_cents: 9698,
        };
        let table = table(&report);
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.trim_start().starts_with(start))
                .unwrap_or_else(|| panic!("no line {start} in\n{table}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line("selected"),
            "selected prod-ledger-1 named in rds_instance_ids or rds_cluster_ids"
        );
        assert_eq!(line("ledger-5"), "ledger-5 2026-12-05 03:00 500 keep daily 2026-12-12");
        assert_eq!(
            line("ledger-1"),
            "ledger-1 2026-12-01 03:00 500 keep daily monthly 2026-12-31"
        );
        assert_eq!(
            line("ledger-0"),
            "ledger-0 2026-12-01 03:00 500 delete no tier keeps it next run"
        );
        assert_eq!(
            line("kept:"),
            "kept: 2 snapshots, up to 1000 GiB, at most $95.00 a month"
        );
        assert_eq!(line("DEEP_ARCHIVE"), "DEEP_ARCHIVE 3 2000.000 $1.98");
        assert!(table.contains("the next run deletes 1 snapshot\n"), "{table}");
        assert!(!table.contains("GUARD"), "{table}");
        assert!(table.contains("In all at most $96.98 a month, at us-east-1 list prices read on 2026-12-05"));
    }
}
