//! Configuration from the environment Terraform sets on each function.
//!
//! Every reader names the variable in its error, so a bad deployment fails
//! with `ConfigError: configuration RETENTION_DAYS is invalid: ...` before
//! any AWS call changes anything.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::contract::env;
use crate::error::Error;
use crate::tags;

/// Where configuration values come from: the process environment in Lambda,
/// a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

/// A variable that must be set and not blank.
pub fn required(env: &impl Env, name: &str) -> Result<String, Error> {
    optional(env, name)?.ok_or_else(|| Error::config(name, "is not set"))
}

/// A variable that may be unset; blank counts as unset (Terraform renders null as "").
pub fn optional(env: &impl Env, name: &str) -> Result<Option<String>, Error> {
    Ok(env
        .get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty()))
}

/// An optional AWS account id variable: 12 digits.
pub fn optional_account_id(env: &impl Env, name: &str) -> Result<Option<String>, Error> {
    let value = optional(env, name)?;
    if let Some(account) = &value
        && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::config(
            name,
            format!("{account:?} is not an AWS account id (12 digits)"),
        ));
    }
    Ok(value)
}

/// A parsed variable with a default when unset.
pub fn parsed_or<T: FromStr>(env: &impl Env, name: &str, default: T) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    match optional(env, name)? {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| Error::config(name, format!("{raw:?} is not valid: {e}"))),
    }
}

/// Checks an ARN of the given service, e.g. `arn:aws:sns:us-east-1:123456789012:topic`;
/// the error is the reason, for the caller to attach to its field.
pub fn check_arn(value: &str, service: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && !parts[5].is_empty();
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not an ARN of the {service} service (arn:aws:{service}:...)"
        ))
    }
}

/// Checks a region name such as `us-west-2` or `eu-central-1`.
pub fn check_region(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let valid = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(format!("{value:?} is not an AWS region name (for example us-west-2)"))
    }
}

/// Checks an S3 bucket name: 3 to 63 lowercase letters, digits, hyphens and dots,
/// beginning and ending with a letter or digit.
pub fn check_bucket_name(value: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!("{value:?} is not an S3 bucket name"))
    }
}

/// An optional ARN variable of the given service.
pub fn optional_arn(env: &impl Env, name: &str, service: &str) -> Result<Option<String>, Error> {
    let value = optional(env, name)?;
    if let Some(arn) = &value {
        check_arn(arn, service).map_err(|reason| Error::config(name, reason))?;
    }
    Ok(value)
}

/// A required ARN variable of the given service.
pub fn required_arn(env: &impl Env, name: &str, service: &str) -> Result<String, Error> {
    optional_arn(env, name, service)?.ok_or_else(|| Error::config(name, "is not set"))
}

/// An optional region variable.
pub fn optional_region(env: &impl Env, name: &str) -> Result<Option<String>, Error> {
    let value = optional(env, name)?;
    if let Some(region) = &value {
        check_region(region).map_err(|reason| Error::config(name, reason))?;
    }
    Ok(value)
}

/// An optional JSON variable (absent: the type's default).
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    env: &impl Env,
    name: &str,
    expected: &str,
) -> Result<T, Error> {
    match optional(env, name)? {
        None => Ok(T::default()),
        Some(raw) => serde_json::from_str(&raw).map_err(|e| Error::config(name, format!("must be {expected}: {e}"))),
    }
}

/// The identity of one deployment of the module, shared by every function:
/// what goes into snapshot tags and what marks a snapshot as ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSettings {
    pub project: String,
    pub environment: String,
    /// Value of the managed-by tag; prune only ever touches snapshots carrying it.
    pub instance: String,
    /// Managed-by values of earlier instances whose snapshots this one takes over
    /// (`adopt_snapshots_managed_by`): treated as its own by retention and the age metric.
    pub adopted: Vec<String>,
    /// The keys of the project and environment tags (`project_tag_key`,
    /// `environment_tag_key`): an organisation's tag policy may own `Project`.
    pub tag_keys: tags::TagKeys,
    /// The user's `additional_tags`, applied to every snapshot.
    pub additional_tags: BTreeMap<String, String>,
}

impl ModuleSettings {
    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        let project = required(env, env::PROJECT_NAME)?;
        let environment = required(env, env::ENVIRONMENT)?;
        let instance = required(env, env::BACKUP_INSTANCE)?;
        tags::check_value(env::BACKUP_INSTANCE, &instance)?;
        let adopted: Vec<String> = optional_json(env, env::ADOPTED_INSTANCES, "a JSON array of strings")?;
        for value in &adopted {
            tags::check_value(env::ADOPTED_INSTANCES, value)?;
        }
        let additional_tags: BTreeMap<String, String> =
            optional_json(env, env::ADDITIONAL_TAGS, "a JSON object of string values")?;
        let tag_keys = tags::TagKeys {
            project: optional(env, env::PROJECT_TAG_KEY)?.unwrap_or_else(|| tags::PROJECT.to_owned()),
            environment: optional(env, env::ENVIRONMENT_TAG_KEY)?.unwrap_or_else(|| tags::ENVIRONMENT.to_owned()),
        };
        tag_keys.check()?;
        tags::validate_user_tags(env::ADDITIONAL_TAGS, &additional_tags, &tag_keys)?;
        Ok(ModuleSettings {
            project,
            environment,
            instance,
            adopted,
            tag_keys,
            additional_tags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_settings_read_the_instance_and_the_adopted_ones() {
        let env = [
            ("PROJECT_NAME", "nestedphoenix"),
            ("ENVIRONMENT", "production"),
            ("BACKUP_INSTANCE", "nestedphoenix/production/us-east-1"),
        ];
        let settings = ModuleSettings::from_env(&env).unwrap();
        assert_eq!(settings.instance, "nestedphoenix/production/us-east-1");
        assert!(settings.adopted.is_empty() && settings.additional_tags.is_empty());

        let with_adopted = |value: &'static str| {
            let [project, environment, instance] = env;
            [project, environment, instance, ("ADOPTED_INSTANCES", value)]
        };
        let settings = ModuleSettings::from_env(&with_adopted(r#"["nestedphoenix-production"]"#)).unwrap();
        assert_eq!(settings.adopted, ["nestedphoenix-production"]);
        for bad in [r#"{"a": 1}"#, r#"[""]"#] {
            let err = ModuleSettings::from_env(&with_adopted(bad)).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("configuration ADOPTED_INSTANCES is invalid"),
                "{err}"
            );
        }
        let err = ModuleSettings::from_env(&[env[0], env[1]]).unwrap_err();
        assert_eq!(err.to_string(), "configuration BACKUP_INSTANCE is invalid: is not set");
    }

    #[test]
    fn missing_and_malformed_values_name_the_variable() {
        let err = ModuleSettings::from_env(&[("PROJECT_NAME", "p")]).unwrap_err();
        assert_eq!(err.to_string(), "configuration ENVIRONMENT is invalid: is not set");

        let env = [
            ("PROJECT_NAME", "p"),
            ("ENVIRONMENT", "e"),
            ("BACKUP_INSTANCE", "p/e/us-east-1"),
            ("ADDITIONAL_TAGS", "{\"Owner\": 3}"),
        ];
        let err = ModuleSettings::from_env(&env).unwrap_err();
        assert!(err.to_string().starts_with("configuration ADDITIONAL_TAGS is invalid"));

        let env = [("RETENTION_DAYS", "thirty")];
        let err = parsed_or::<u32>(&env, "RETENTION_DAYS", 30).unwrap_err();
        assert!(err.to_string().contains("RETENTION_DAYS"), "{err}");
    }

    #[test]
    fn arns_and_regions_are_checked() {
        check_arn("arn:aws:sns:us-east-1:123456789012:t", "sns").unwrap();
        assert!(check_arn("arn:aws:sqs:us-east-1:123456789012:t", "sns").is_err());
        assert!(check_arn("topic", "sns").is_err());
        check_region("us-west-2").unwrap();
        check_region("us-gov-west-1").unwrap();
        assert!(check_region("uswest2").is_err());
        assert!(check_region("US-WEST-2").is_err());

        let env = [("SNS_TOPIC_ARN", "topic"), ("COPY_DESTINATION_REGION", "mars")];
        let err = required_arn(&env, "SNS_TOPIC_ARN", "sns").unwrap_err();
        assert!(
            err.to_string().starts_with("configuration SNS_TOPIC_ARN is invalid"),
            "{err}"
        );
        let err = optional_region(&env, "COPY_DESTINATION_REGION").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("configuration COPY_DESTINATION_REGION is invalid"),
            "{err}"
        );
        assert_eq!(optional_region(&env, "UNSET").unwrap(), None);
    }
}
