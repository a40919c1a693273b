//! Which databases a run backs up: those the module names (`rds_instance_ids`,
//! `rds_cluster_ids`), and those its criteria select among the account's
//! databases in the region, read at each run (`selection_tags`, `exclude_tags`,
//! `db_identifier_patterns`).
//!
//! | named | every `selection_tags` tag carried | some pattern matches | an `exclude_tags` tag carried | backed up |
//! |---|---|---|---|---|
//! | yes | any | any | any | yes: named always wins |
//! | no | yes (or none given) | yes (or none given) | no | yes |
//! | no | yes (or none given) | yes (or none given) | yes | no: excluded, listed as such |
//! | no | no | any | any | no |
//! | no | any | no | any | no |
//!
//! With neither `selection_tags` nor `db_identifier_patterns` the criteria select
//! nothing (the account is not listed). A tag value of `*` means any value.
//! Patterns are regular expressions of the `regex` crate's syntax without
//! Unicode classes (`regex-lite`, a subset of RE2's, as Terraform's `regex`),
//! matched against the whole identifier as RDS stores it (lowercase).

use std::collections::BTreeMap;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::types::DatabaseKind;

/// A tag value that matches any value of its key.
pub const ANY_VALUE: &str = "*";
/// Why a named database is backed up.
pub const NAMED: &str = "named in rds_instance_ids or rds_cluster_ids";

/// The module's selection criteria, as Terraform passes them (`SELECTION`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// A database is selected only if it carries every one of these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// A selected database carrying any of these tags is left out.
    #[serde(default)]
    pub exclude_tags: BTreeMap<String, String>,
    /// A database is selected only if one of these matches its whole identifier.
    #[serde(default)]
    pub patterns: Vec<String>,
}

impl Criteria {
    /// Whether the criteria select any database at all (else the account is not listed).
    pub fn selects(&self) -> bool {
        !self.tags.is_empty() || !self.patterns.is_empty()
    }

    /// The criteria ready to match, or `ConfigError` naming the pattern that does not compile.
    pub fn compile(self) -> Result<Matcher, Error> {
        let patterns = self
            .patterns
            .iter()
            .map(|pattern| {
                Regex::new(&format!("^(?:{pattern})$")).map_err(|err| {
                    Error::config(
                        "SELECTION.patterns",
                        format!("{pattern} is not a regular expression: {err}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Matcher {
            criteria: self,
            patterns,
        })
    }
}

/// A database of the account, as the selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub identifier: String,
    pub kind: DatabaseKind,
    pub tags: BTreeMap<String, String>,
}

/// The databases chosen (or left out) for one reason: `named in rds_instance_ids or
/// rds_cluster_ids`, `tags team=db`, `pattern prod-.*`... Grouped so that the run's state
/// grows by an identifier a database, not a sentence (Step Functions holds a state's data
/// to 256 KiB, and a fleet's run carries the selection).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Group {
    pub reason: String,
    pub databases: Vec<String>,
}

/// The run's databases and how they were chosen: the run summary lists both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Selection {
    /// In the order the run backs them up: the named ones first, as named.
    pub selected: Vec<Group>,
    /// Matched by the criteria, left out by an exclude tag.
    pub excluded: Vec<Group>,
    /// How many of the account's databases the criteria did not match.
    pub unmatched: usize,
}

impl Selection {
    pub fn identifiers(&self) -> Vec<String> {
        self.selected.iter().flat_map(|g| g.databases.iter().cloned()).collect()
    }

    pub fn excluded_count(&self) -> usize {
        self.excluded.iter().map(|g| g.databases.len()).sum()
    }
}

/// Adds `database` to the group of `reason`, which follows the others when new.
fn add(groups: &mut Vec<Group>, reason: String, database: &str) {
    match groups.iter_mut().find(|g| g.reason == reason) {
        Some(group) => group.databases.push(database.to_owned()),
        None => groups.push(Group {
            reason,
            databases: vec![database.to_owned()],
        }),
    }
}

/// The criteria with their patterns compiled: built once, at the function's start.
#[derive(Debug, Clone)]
pub struct Matcher {
    criteria: Criteria,
    patterns: Vec<Regex>,
}

fn carries(tags: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    tags.get(key).is_some_and(|v| value == ANY_VALUE || v == value)
}

fn listed(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Matcher {
    /// Whether the criteria select any database at all (else the account is not listed).
    pub fn selects(&self) -> bool {
        self.criteria.selects()
    }

    /// Why the criteria select this database, or `None`.
    fn matches(&self, candidate: &Candidate) -> Option<String> {
        let criteria = &self.criteria;
        if !criteria.selects() || !criteria.tags.iter().all(|(k, v)| carries(&candidate.tags, k, v)) {
            return None;
        }
        let mut because = Vec::new();
        if !criteria.tags.is_empty() {
            because.push(format!("tags {}", listed(&criteria.tags)));
        }
        if !self.patterns.is_empty() {
            let matched = self
                .patterns
                .iter()
                .zip(&criteria.patterns)
                .find(|(regex, _)| regex.is_match(&candidate.identifier))?;
            because.push(format!("pattern {}", matched.1));
        }
        Some(because.join(" and "))
    }

    /// The exclude tag this database carries, as `key=value`. A restore drill's database
    /// (tagged [`crate::drill::DRILL`]) is always left out: it carries the module's project
    /// and environment tags, and lives minutes.
    fn excluded_by(&self, candidate: &Candidate) -> Option<String> {
        if let Some(instance) = candidate.tags.get(crate::drill::DRILL) {
            return Some(format!(
                "{}={instance} (a restore drill's database)",
                crate::drill::DRILL
            ));
        }
        self.criteria
            .exclude_tags
            .iter()
            .find(|(k, v)| carries(&candidate.tags, k, v))
            .map(|(k, v)| format!("{k}={v}"))
    }

    /// The named databases, then the candidates the criteria select (by identifier),
    /// each once; the candidates an exclude tag leaves out; the count matched by nothing.
    pub fn select(&self, named: &[String], candidates: &[Candidate]) -> Selection {
        let mut selection = Selection::default();
        let is_named = |id: &str| named.iter().any(|n| n.eq_ignore_ascii_case(id));
        for id in named {
            add(&mut selection.selected, NAMED.to_owned(), id);
        }
        let mut sorted: Vec<&Candidate> = candidates.iter().filter(|c| !is_named(&c.identifier)).collect();
        sorted.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        sorted.dedup_by(|a, b| a.identifier == b.identifier);
        for candidate in sorted {
            let Some(reason) = self.matches(candidate) else {
                selection.unmatched += 1;
                continue;
            };
            match self.excluded_by(candidate) {
                Some(tag) => add(
                    &mut selection.excluded,
                    format!("{reason}, but carries exclude tag {tag}"),
                    &candidate.identifier,
                ),
                None => add(&mut selection.selected, reason, &candidate.identifier),
            }
        }
        selection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn candidate(id: &str, pairs: &[(&str, &str)]) -> Candidate {
        Candidate {
            identifier: id.to_owned(),
            kind: DatabaseKind::Instance,
            tags: tags(pairs),
        }
    }

    fn criteria(include: &[(&str, &str)], exclude: &[(&str, &str)], patterns: &[&str]) -> Criteria {
        Criteria {
            tags: tags(include),
            exclude_tags: tags(exclude),
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn selected(criteria: &Criteria, named: &[&str], candidates: &[Candidate]) -> Vec<String> {
        let named: Vec<String> = named.iter().map(|n| (*n).to_owned()).collect();
        criteria
            .clone()
            .compile()
            .unwrap()
            .select(&named, candidates)
            .identifiers()
    }

    #[test]
    fn a_restore_drills_database_is_never_selected_by_the_criteria() {
        let criteria = criteria(&[("Environment", "production")], &[], &[]);
        let drill = candidate(
            "drill-a1b2c3-prod-db-12060500",
            &[
                ("Environment", "production"),
                (crate::drill::DRILL, "p/production/us-east-1"),
            ],
        );
        let selection = criteria
            .compile()
            .unwrap()
            .select(&[], &[drill, candidate("prod-db", &[("Environment", "production")])]);
        assert_eq!(selection.identifiers(), ["prod-db"]);
        assert_eq!(selection.excluded_count(), 1);
    }

    #[test]
    fn every_row_of_the_truth_table() {
        let fleet = [
            candidate("prod-orders", &[("backup", "daily"), ("team", "shop")]),
            candidate(
                "prod-ledger",
                &[("backup", "daily"), ("team", "money"), ("backup-skip", "yes")],
            ),
            candidate("dev-orders", &[("backup", "daily")]),
            candidate("prod-cache", &[("team", "shop")]),
        ];
        // Tags: all of them (AND), a value of * any value.
        let by_tag = criteria(&[("backup", "daily"), ("team", "*")], &[], &[]);
        assert_eq!(selected(&by_tag, &[], &fleet), ["prod-ledger", "prod-orders"]);
        // Patterns: any of them (OR), against the whole identifier.
        let by_pattern = criteria(&[], &[], &["prod-.*", "dev-orders"]);
        assert_eq!(
            selected(&by_pattern, &[], &fleet),
            ["dev-orders", "prod-cache", "prod-ledger", "prod-orders"]
        );
        assert_eq!(
            selected(&criteria(&[], &[], &["prod"]), &[], &fleet),
            Vec::<String>::new()
        );
        // Tags AND patterns; then exclusion (any exclude tag).
        let both = criteria(&[("backup", "daily")], &[("backup-skip", "*")], &["prod-.*"]);
        let selection = both.clone().compile().unwrap().select(&[], &fleet);
        assert_eq!(selection.identifiers(), ["prod-orders"]);
        assert_eq!(
            selection.excluded,
            [Group {
                reason: "tags backup=daily and pattern prod-.*, but carries exclude tag backup-skip=*".to_owned(),
                databases: vec!["prod-ledger".to_owned()]
            }]
        );
        assert_eq!(selection.unmatched, 2);
        // One group a reason: the databases a pattern chose together, each pattern its own.
        let groups = by_pattern.compile().unwrap().select(&["x".to_owned()], &fleet).selected;
        let reasons: Vec<(&str, usize)> = groups.iter().map(|g| (g.reason.as_str(), g.databases.len())).collect();
        assert_eq!(reasons, [(NAMED, 1), ("pattern dev-orders", 1), ("pattern prod-.*", 3)]);
        // Named always wins, first and once, whatever it carries; no criteria select nothing.
        assert_eq!(
            selected(&both, &["prod-ledger"], &fleet),
            ["prod-ledger", "prod-orders"]
        );
        assert_eq!(selected(&Criteria::default(), &["x"], &fleet), ["x"]);
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_a_config_error_naming_it() {
        let err = criteria(&[], &[], &["prod-(unclosed"]).compile().err().unwrap();
        assert!(
            err.to_string().contains("prod-(unclosed is not a regular expression"),
            "{err}"
        );
    }

    fn arbitrary_tags() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map("[abc]", "[xy*]", 0..3)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// The truth table, against a direct reading of it, for random fleets and criteria.
        #[test]
        fn selection_is_the_truth_table(
            fleet in prop::collection::btree_map("[a-d]{1,3}", arbitrary_tags(), 0..12),
            include in arbitrary_tags(),
            exclude in arbitrary_tags(),
            patterns in prop::collection::vec("[a-d]\\.?\\*?", 0..3),
            named in prop::collection::btree_set("[a-d]{1,3}", 0..3),
        ) {
            let named: Vec<String> = named.into_iter().collect();
            let candidates: Vec<Candidate> = fleet
                .iter()
                .map(|(id, t)| Candidate { identifier: id.clone(), kind: DatabaseKind::Cluster, tags: t.clone() })
                .collect();
            let criteria = Criteria { tags: include.clone(), exclude_tags: exclude.clone(), patterns: patterns.clone() };
            let selects = criteria.selects();
            let selection = criteria.compile().unwrap().select(&named, &candidates);
            let ids = selection.identifiers();
            for (id, t) in &fleet {
                let is_named = named.contains(id);
                let tagged = include.iter().all(|(k, v)| t.get(k).is_some_and(|have| v == "*" || have == v));
                let patterned = patterns.is_empty()
                    || patterns.iter().any(|p| Regex::new(&format!("^(?:{p})$")).unwrap().is_match(id));
                let excluded = exclude.iter().any(|(k, v)| t.get(k).is_some_and(|have| v == "*" || have == v));
                let chosen = is_named || (selects && tagged && patterned && !excluded);
                prop_assert_eq!(ids.contains(id), chosen, "{} with tags {:?}", id, t);
            }
            // Each database once; the named ones first, in their order.
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), ids.len());
            prop_assert_eq!(&ids[..named.len()], &named[..]);
        }
    }
}
