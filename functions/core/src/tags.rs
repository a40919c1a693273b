//! The tags every snapshot the module creates carries, and the ownership test
//! prune relies on: a snapshot is ours only when its managed-by tag names this
//! module instance.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::config::ModuleSettings;
use crate::contract::env;
use crate::error::Error;

/// Marks a snapshot as created by this module instance (value: the instance name).
pub const MANAGED_BY: &str = "database-backup:managed-by";
/// The database the snapshot was taken of.
pub const SOURCE_DB: &str = "database-backup:source-db";
/// The Step Functions execution that created it.
pub const EXECUTION: &str = "database-backup:execution";
/// On a cross-region copy: the ARN of the source snapshot.
pub const COPIED_FROM: &str = "database-backup:copied-from";
/// Set by prune under a retention policy: the tiers that keep the snapshot (`daily weekly`, or `none`).
pub const RETENTION_TIERS: &str = "database-backup:retention-tiers";
/// On a vault copy: the account of the snapshot it was copied from.
pub const SOURCE_ACCOUNT: &str = "database-backup:source-account";
/// On the copy the vault function makes with the module's key to share it (the snapshot's
/// own key cannot be shared): the instance whose vault function made it. Such a copy has no
/// managed-by tag, so retention never counts or deletes it; the vault function deletes it
/// once the vault holds its copy.
pub const VAULT_INTERMEDIATE: &str = "database-backup:vault-intermediate";
/// The default keys of the project and environment tags ([`TagKeys`]).
pub const PROJECT: &str = "Project";
pub const ENVIRONMENT: &str = "Environment";

/// Keys the module sets itself, beside the project and environment keys; a user tag
/// with one of these keys is refused.
pub const OWN: [&str; 7] = [
    MANAGED_BY,
    SOURCE_DB,
    EXECUTION,
    COPIED_FROM,
    RETENTION_TIERS,
    SOURCE_ACCOUNT,
    VAULT_INTERMEDIATE,
];

/// RDS allows 50 tags per resource.
pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 256;

/// The keys of the project and environment tags every snapshot carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKeys {
    pub project: String,
    pub environment: String,
}

impl Default for TagKeys {
    fn default() -> Self {
        TagKeys {
            project: PROJECT.to_owned(),
            environment: ENVIRONMENT.to_owned(),
        }
    }
}

impl TagKeys {
    /// Checks each key against RDS tag rules, the module's own keys and the other.
    pub fn check(&self) -> Result<(), Error> {
        for (field, key) in [
            (env::PROJECT_TAG_KEY, &self.project),
            (env::ENVIRONMENT_TAG_KEY, &self.environment),
        ] {
            let problem = key_problem(key).or_else(|| {
                OWN.contains(&key.as_str())
                    .then(|| format!("key {key:?} is one of the module's own tag keys"))
            });
            if let Some(reason) = problem {
                return Err(Error::config(field, reason));
            }
        }
        if self.project == self.environment {
            return Err(Error::config(
                env::ENVIRONMENT_TAG_KEY,
                format!("{:?} is the project tag's key too", self.environment),
            ));
        }
        Ok(())
    }

    /// Every key the module sets on a snapshot.
    fn reserved(&self) -> impl Iterator<Item = &str> {
        OWN.into_iter()
            .chain([self.project.as_str(), self.environment.as_str()])
    }
}

/// What RDS's tag rules refuse in a key: its length, or a prefix AWS reserves.
fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
        Some(format!("key {key:?} must be 1-{MAX_KEY_LEN} characters"))
    } else if ["aws:", "rds:"].iter().any(|p| key.to_ascii_lowercase().starts_with(p)) {
        Some(format!("key {key:?} uses a prefix reserved by AWS"))
    } else {
        None
    }
}

/// Checks the user's additional tags against RDS tag rules and our reserved keys.
pub fn validate_user_tags(field: &str, user: &BTreeMap<String, String>, keys: &TagKeys) -> Result<(), Error> {
    let reserved = keys.reserved().count();
    if user.len() + reserved > MAX_TAGS {
        return Err(Error::config(
            field,
            format!(
                "has {} tags; at most {} fit beside the module's own {}",
                user.len(),
                MAX_TAGS - reserved,
                reserved
            ),
        ));
    }
    for (key, value) in user {
        let problem = if let Some(problem) = key_problem(key) {
            Some(problem)
        } else if value.chars().count() > MAX_VALUE_LEN {
            Some(format!("value of {key:?} is longer than {MAX_VALUE_LEN} characters"))
        } else if keys.reserved().any(|k| k == key) {
            Some(format!("key {key:?} is set by the module itself"))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(Error::config(field, reason));
        }
    }
    Ok(())
}

/// Checks a tag value the module sets from its configuration (the managed-by values).
pub fn check_value(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.chars().count() > MAX_VALUE_LEN {
        return Err(Error::config(
            field,
            format!("{value:?} must be 1-{MAX_VALUE_LEN} characters"),
        ));
    }
    Ok(())
}

/// The tags of a snapshot of `db_identifier` taken by `execution_id`.
pub fn snapshot_tags(settings: &ModuleSettings, db_identifier: &str, execution_id: &str) -> Vec<Tag> {
    marked_tags(settings, MANAGED_BY, db_identifier, execution_id)
}

/// The tags of the copy the vault function makes to share a snapshot: a snapshot's, with the
/// vault-intermediate marker in place of the managed-by one (retention never touches it).
pub fn vault_intermediate_tags(settings: &ModuleSettings, db_identifier: &str, execution_id: &str) -> Vec<Tag> {
    marked_tags(settings, VAULT_INTERMEDIATE, db_identifier, execution_id)
}

/// Whether a copy made to share was made by this module instance's vault function (of
/// `db_identifier`, when given).
pub fn is_our_vault_intermediate(tags: &[Tag], settings: &ModuleSettings, db_identifier: Option<&str>) -> bool {
    tag_value(tags, VAULT_INTERMEDIATE) == Some(settings.instance.as_str())
        && db_identifier.is_none_or(|db| tag_value(tags, SOURCE_DB) == Some(db))
}

fn marked_tags(settings: &ModuleSettings, marker: &str, db_identifier: &str, execution_id: &str) -> Vec<Tag> {
    let own = [
        (settings.tag_keys.project.as_str(), settings.project.as_str()),
        (settings.tag_keys.environment.as_str(), settings.environment.as_str()),
        (marker, settings.instance.as_str()),
        (SOURCE_DB, db_identifier),
        (EXECUTION, execution_id),
    ];
    settings
        .additional_tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(own)
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// The value of `key` in an RDS tag list.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(Tag::value)
}

/// Whether a snapshot with these tags was created by this module instance, or by
/// an earlier one it adopted (for `db_identifier`, when given).
pub fn is_ours(tags: &[Tag], settings: &ModuleSettings, db_identifier: Option<&str>) -> bool {
    tag_value(tags, MANAGED_BY)
        .is_some_and(|value| value == settings.instance || settings.adopted.iter().any(|a| a == value))
        && db_identifier.is_none_or(|db| tag_value(tags, SOURCE_DB) == Some(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ModuleSettings {
        ModuleSettings {
            project: "nestedphoenix".into(),
            environment: "production".into(),
            instance: "nestedphoenix-production".into(),
            adopted: Vec::new(),
            tag_keys: TagKeys::default(),
            additional_tags: BTreeMap::from([("Owner".into(), "DBA Team".into())]),
        }
    }

    #[test]
    fn snapshot_tags_carry_marker_source_execution_and_user_tags() {
        let tags = snapshot_tags(&settings(), "prod-database-1", "arn:exec");
        assert_eq!(tag_value(&tags, MANAGED_BY), Some("nestedphoenix-production"));
        assert_eq!(tag_value(&tags, SOURCE_DB), Some("prod-database-1"));
        assert_eq!(tag_value(&tags, EXECUTION), Some("arn:exec"));
        assert_eq!(tag_value(&tags, PROJECT), Some("nestedphoenix"));
        assert_eq!(tag_value(&tags, ENVIRONMENT), Some("production"));
        assert_eq!(tag_value(&tags, "Owner"), Some("DBA Team"));
        assert_eq!(tags.len(), 6);
    }

    #[test]
    fn a_copy_made_to_share_carries_the_vault_marker_in_place_of_managed_by() {
        let tags = vault_intermediate_tags(&settings(), "db1", "arn:exec");
        assert_eq!(tag_value(&tags, VAULT_INTERMEDIATE), Some("nestedphoenix-production"));
        assert_eq!(tag_value(&tags, MANAGED_BY), None);
        assert_eq!(tags.len(), 6);
        assert!(!is_ours(&tags, &settings(), None));
        assert!(is_our_vault_intermediate(&tags, &settings(), Some("db1")));
        assert!(!is_our_vault_intermediate(&tags, &settings(), Some("db2")));
        assert!(!is_our_vault_intermediate(
            &snapshot_tags(&settings(), "db1", "e"),
            &settings(),
            None
        ));
    }

    #[test]
    fn ownership_needs_our_marker_and_matching_database() {
        let tags = snapshot_tags(&settings(), "db1", "e");
        assert!(is_ours(&tags, &settings(), Some("db1")));
        assert!(is_ours(&tags, &settings(), None));
        assert!(!is_ours(&tags, &settings(), Some("db2")));
        let mut other = settings();
        other.instance = "nestedphoenix-staging".into();
        assert!(!is_ours(&tags, &other, None));
        assert!(!is_ours(&[], &settings(), None));
        // An instance that adopted the other's snapshots treats them as its own.
        other.adopted = vec!["nestedphoenix-production".into()];
        assert!(is_ours(&tags, &other, Some("db1")));
        assert!(!is_ours(&tags, &other, Some("db2")));
    }

    #[test]
    fn user_tags_cannot_take_reserved_keys_or_break_rds_rules() {
        let ok = BTreeMap::from([("Owner".to_string(), "x".to_string())]);
        validate_user_tags("ADDITIONAL_TAGS", &ok, &TagKeys::default()).unwrap();
        for key in [MANAGED_BY, "aws:foo", "RDS:bar", ""] {
            let bad = BTreeMap::from([(key.to_string(), "x".to_string())]);
            let err = validate_user_tags("ADDITIONAL_TAGS", &bad, &TagKeys::default()).unwrap_err();
            assert!(err.to_string().contains("ADDITIONAL_TAGS"), "{err}");
        }
        let too_many: BTreeMap<_, _> = (0..45).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(validate_user_tags("ADDITIONAL_TAGS", &too_many, &TagKeys::default()).is_err());
    }

    #[test]
    fn the_project_and_environment_keys_are_configurable_and_checked() {
        let keys = TagKeys {
            project: "backup:project".into(),
            environment: "backup:environment".into(),
        };
        keys.check().unwrap();
        let settings = ModuleSettings {
            tag_keys: keys.clone(),
            ..settings()
        };
        let tags = snapshot_tags(&settings, "db1", "e");
        assert_eq!(tag_value(&tags, "backup:project"), Some("nestedphoenix"));
        assert_eq!(tag_value(&tags, "backup:environment"), Some("production"));
        assert_eq!(tag_value(&tags, PROJECT), None);
        // The organisation's own Project tag may now come from additional_tags; the new keys may not.
        let org = BTreeMap::from([("Project".to_string(), "platform".to_string())]);
        validate_user_tags("ADDITIONAL_TAGS", &org, &keys).unwrap();
        assert!(validate_user_tags("ADDITIONAL_TAGS", &org, &TagKeys::default()).is_err());
        let clash = BTreeMap::from([("backup:project".to_string(), "x".to_string())]);
        assert!(validate_user_tags("ADDITIONAL_TAGS", &clash, &keys).is_err());

        for (project, environment, field) in [
            ("aws:project", "Environment", "PROJECT_TAG_KEY"),
            ("Project", MANAGED_BY, "ENVIRONMENT_TAG_KEY"),
            ("Project", "Project", "ENVIRONMENT_TAG_KEY"),
            ("", "Environment", "PROJECT_TAG_KEY"),
        ] {
            let keys = TagKeys {
                project: project.into(),
                environment: environment.into(),
            };
            let err = keys.check().unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("configuration {field} is invalid")),
                "{err}"
            );
        }
    }
}
