//! The tags every snapshot the module creates carries, and the ownership test
//! prune relies on: a snapshot is ours only when its managed-by tag names this
//! module instance.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::config::ModuleSettings;
use crate::error::Error;

/// Marks a snapshot as created by this module instance (value: the instance name).
pub const MANAGED_BY: &str = "database-backup:managed-by";
/// The database the snapshot was taken of.
pub const SOURCE_DB: &str = "database-backup:source-db";
/// The Step Functions execution that created it.
pub const EXECUTION: &str = "database-backup:execution";
/// On a cross-region copy: the ARN of the source snapshot.
pub const COPIED_FROM: &str = "database-backup:copied-from";
pub const PROJECT: &str = "Project";
pub const ENVIRONMENT: &str = "Environment";

/// Keys the module sets itself; a user tag with one of these keys is refused.
pub const RESERVED: [&str; 6] = [MANAGED_BY, SOURCE_DB, EXECUTION, COPIED_FROM, PROJECT, ENVIRONMENT];

/// RDS allows 50 tags per resource.
pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 256;

/// Checks the user's additional tags against RDS tag rules and our reserved keys.
pub fn validate_user_tags(field: &str, user: &BTreeMap<String, String>) -> Result<(), Error> {
    if user.len() + RESERVED.len() > MAX_TAGS {
        return Err(Error::config(
            field,
            format!(
                "has {} tags; at most {} fit beside the module's own {}",
                user.len(),
                MAX_TAGS - RESERVED.len(),
                RESERVED.len()
            ),
        ));
    }
    for (key, value) in user {
        let problem = if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
            Some(format!("key {key:?} must be 1-{MAX_KEY_LEN} characters"))
        } else if value.chars().count() > MAX_VALUE_LEN {
            Some(format!("value of {key:?} is longer than {MAX_VALUE_LEN} characters"))
        } else if ["aws:", "rds:"].iter().any(|p| key.to_ascii_lowercase().starts_with(p)) {
            Some(format!("key {key:?} uses a prefix reserved by AWS"))
        } else if RESERVED.contains(&key.as_str()) {
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

/// The tags of a snapshot of `db_identifier` taken by `execution_id`.
pub fn snapshot_tags(settings: &ModuleSettings, db_identifier: &str, execution_id: &str) -> Vec<Tag> {
    let own = [
        (PROJECT, settings.project.as_str()),
        (ENVIRONMENT, settings.environment.as_str()),
        (MANAGED_BY, settings.instance.as_str()),
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

/// Whether a snapshot with these tags was created by this module instance
/// (for `db_identifier`, when given).
pub fn is_ours(tags: &[Tag], settings: &ModuleSettings, db_identifier: Option<&str>) -> bool {
    tag_value(tags, MANAGED_BY) == Some(settings.instance.as_str())
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
    fn ownership_needs_our_marker_and_matching_database() {
        let tags = snapshot_tags(&settings(), "db1", "e");
        assert!(is_ours(&tags, &settings(), Some("db1")));
        assert!(is_ours(&tags, &settings(), None));
        assert!(!is_ours(&tags, &settings(), Some("db2")));
        let mut other = settings();
        other.instance = "nestedphoenix-staging".into();
        assert!(!is_ours(&tags, &other, None));
        assert!(!is_ours(&[], &settings(), None));
    }

    #[test]
    fn user_tags_cannot_take_reserved_keys_or_break_rds_rules() {
        let ok = BTreeMap::from([("Owner".to_string(), "x".to_string())]);
        validate_user_tags("ADDITIONAL_TAGS", &ok).unwrap();
        for key in [MANAGED_BY, "aws:foo", "RDS:bar", ""] {
            let bad = BTreeMap::from([(key.to_string(), "x".to_string())]);
            let err = validate_user_tags("ADDITIONAL_TAGS", &bad).unwrap_err();
            assert!(err.to_string().contains("ADDITIONAL_TAGS"), "{err}");
        }
        let too_many: BTreeMap<_, _> = (0..45).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(validate_user_tags("ADDITIONAL_TAGS", &too_many).is_err());
    }
}
