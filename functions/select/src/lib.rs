//! `select`: the run's first task. It checks the execution input against the
//! run's fields (`backup_core::run::FIELDS`), merges it over the module's
//! configuration and splits the result by the part of the run that uses it,
//! so that a malformed input ends the run before any AWS call that changes
//! anything, with the field named, and the state machine carries no list of
//! fields. It chooses the run's databases: the module's named ones and, when the
//! module selects by tag or pattern (`SELECTION`), those of the account's
//! databases in the region the criteria match, read at each run
//! (`backup_core::selection`).

use backup_core::config::{self, Env};
use backup_core::contract::env;
use backup_core::rds::Rds;
use backup_core::run::{self, FIELDS, Kind, Part, RunPlan, SelectRequest};
use backup_core::selection::{Criteria, Matcher, Selection};
use backup_core::{Error, input};
use serde_json::{Map, Value, json};

/// The module's selection criteria (`SELECTION`, a JSON object; unset: none), compiled.
#[derive(Debug, Clone)]
pub struct Config {
    pub selection: Matcher,
}

impl Config {
    /// Compiled once, at the cold start: a pattern that does not compile stops every run,
    /// and is named there.
    pub fn new(criteria: Criteria) -> Result<Self, Error> {
        Ok(Config {
            selection: criteria.compile()?,
        })
    }

    pub fn from_env(env: &impl Env) -> Result<Self, Error> {
        Self::new(config::optional_json(
            env,
            env::SELECTION,
            "a JSON object of tags, exclude_tags and patterns",
        )?)
    }
}

/// The execution input's overrides (as the run uses them), or `InvalidInput`
/// naming the first field that is unknown or of the wrong kind.
pub fn overrides(input: &Value) -> Result<Map<String, Value>, Error> {
    let object = input.as_object().ok_or_else(|| {
        Error::invalid_input(
            "$",
            format!(
                "must be a JSON object of the fields {}, not {}",
                run::field_names(),
                run::quoted(input)
            ),
        )
    })?;
    let mut overrides = Map::new();
    for (name, value) in object {
        let Some(field) = run::field_named(name) else {
            return Err(Error::invalid_input(
                name.as_str(),
                format!(
                    "is not a field of the execution input (refused, so that a typo does not pass unnoticed); its fields are {}",
                    run::field_names()
                ),
            ));
        };
        let value = field
            .kind
            .check(value)
            .map_err(|reason| Error::invalid_input(name.as_str(), reason))?;
        overrides.insert(name.clone(), value);
    }
    Ok(overrides)
}

/// The module's configuration (as the run uses it), or `ConfigError` naming
/// the first field it lacks or holds wrongly (Terraform passes every field, validated).
fn defaults(defaults: &Value) -> Result<Map<String, Value>, Error> {
    let object = defaults
        .as_object()
        .ok_or_else(|| Error::config("defaults", "must be a JSON object"))?;
    if let Some(unknown) = object.keys().find(|k| run::field_named(k).is_none()) {
        return Err(Error::config(
            format!("defaults.{unknown}"),
            "is not a field of the execution input",
        ));
    }
    FIELDS
        .iter()
        .map(|field| {
            let name = format!("defaults.{}", field.name);
            let value = object
                .get(field.name)
                .ok_or_else(|| Error::config(&name, "is missing"))?;
            // The module may name no database and select by tag or pattern instead
            // (Terraform refuses a module that does neither).
            if field.kind == Kind::Databases && value.as_array().is_some_and(Vec::is_empty) {
                return Ok((field.name.to_owned(), value.clone()));
            }
            let value = field.kind.check(value).map_err(|reason| Error::config(&name, reason))?;
            Ok((field.name.to_owned(), value))
        })
        .collect()
}

/// The input may choose among the run's databases only: the functions' roles
/// may back up no other (IAM would refuse it deep in a function, as AccessDenied).
fn within_selection(selected: &Value, selection: &Selection) -> Result<(), Error> {
    let chosen = selection.identifiers();
    let outside: Vec<&str> = selected
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|id| !chosen.iter().any(|c| c.eq_ignore_ascii_case(id)))
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(Error::invalid_input(
        "db_instance_ids",
        format!(
            "names {} outside the module's databases ({}): the functions may back up only those; \
             add it to rds_instance_ids or rds_cluster_ids, or tag it with selection_tags, and apply",
            outside.join(", "),
            if chosen.is_empty() {
                "none".to_owned()
            } else {
                chosen.join(", ")
            }
        ),
    ))
}

/// A wait's first poll comes one interval after it begins: an interval longer than
/// its wait's bound would find the wait over at its first poll.
fn intervals_within_bounds(config: &Map<String, Value>, overrides: &Map<String, Value>) -> Result<(), Error> {
    let number = |name: &str| config.get(name).and_then(Value::as_u64).unwrap_or(0);
    let skipped = |name: &str| config.get(name).and_then(Value::as_bool).unwrap_or(false);
    let waits = [
        ("poll_interval_seconds", "snapshot_wait_timeout_seconds", None),
        (
            "export_poll_interval_seconds",
            "export_wait_timeout_seconds",
            Some("skip_export"),
        ),
        ("poll_interval_seconds", "copy_wait_timeout_seconds", Some("skip_copy")),
        ("poll_interval_seconds", "copy_wait_timeout_seconds", Some("skip_vault")),
    ];
    for (interval, bound, skip) in waits {
        if skip.is_some_and(skipped) || number(interval) <= number(bound) {
            continue;
        }
        let reason = format!(
            "{interval} {} exceeds {bound} {}: a wait's first poll comes one interval after it begins",
            number(interval),
            number(bound)
        );
        return Err(
            match [interval, bound].into_iter().find(|name| overrides.contains_key(*name)) {
                Some(field) => Error::invalid_input(field, reason),
                None => Error::config("defaults", reason),
            },
        );
    }
    Ok(())
}

/// The run's settings: the input's fields over the module's, split by part.
/// The account is listed only when the criteria select by tag or pattern.
pub async fn handle(rds: &Rds, config: &Config, event: Value) -> Result<RunPlan, Error> {
    // The state machine builds this request: a malformed one is the module's fault, not the input's.
    let request = input::parse(event).map_err(|err| match err {
        Error::InvalidInput { field, reason } => Error::config(format!("select's request: {field}"), reason),
        other => other,
    })?;
    let settings = settings(&request)?;
    let candidates = if config.selection.selects() {
        rds.list_databases().await?
    } else {
        Vec::new()
    };
    let selection = config.selection.select(&settings.named, &candidates);
    let plan = plan(&request, settings, selection)?;
    tracing::info!(
        databases = plan.databases.len(),
        excluded = plan.selection.excluded_count(),
        skip_prune = plan.skip_prune,
        "run settings selected"
    );
    Ok(plan)
}

/// The module's settings and the input's overrides, each checked.
pub struct Settings {
    defaults: Map<String, Value>,
    overrides: Map<String, Value>,
    /// The databases the module names (`rds_instance_ids`, `rds_cluster_ids`).
    pub named: Vec<String>,
}

/// The request's settings, or the first field that is wrong, named; no AWS call is made.
pub fn settings(request: &SelectRequest) -> Result<Settings, Error> {
    let defaults = defaults(&request.defaults)?;
    let overrides = overrides(&request.input)?;
    let named = defaults["db_instance_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    Ok(Settings {
        defaults,
        overrides,
        named,
    })
}

/// An input cannot turn on a part the module is not configured for: the part would fail
/// every database (its function has no destination, or no vault, in its environment).
fn parts_the_module_has(defaults: &Map<String, Value>, overrides: &Map<String, Value>) -> Result<(), Error> {
    let parts = [
        (
            "skip_copy",
            "the module copies to no region (enable_cross_region_copy is off)",
        ),
        ("skip_vault", "the module has no vault (its vault variable is null)"),
    ];
    for (field, missing) in parts {
        if defaults.get(field) == Some(&Value::Bool(true)) && overrides.get(field) == Some(&Value::Bool(false)) {
            return Err(Error::invalid_input(
                field,
                format!("is false, but {missing}: configure it and apply"),
            ));
        }
    }
    Ok(())
}

/// The run's settings of a checked request and its databases' selection.
pub fn plan(request: &SelectRequest, settings: Settings, selection: Selection) -> Result<RunPlan, Error> {
    let Settings {
        defaults, overrides, ..
    } = settings;
    let databases = match overrides.get("db_instance_ids") {
        Some(chosen) => {
            within_selection(chosen, &selection)?;
            chosen.clone()
        }
        None if selection.selected.is_empty() => {
            return Err(Error::config(
                "selection",
                format!(
                    "selects no database: the module names none, and of the region's {} databases \
                     {} matched selection_tags and db_identifier_patterns, each left out by exclude_tags",
                    selection.unmatched + selection.excluded_count(),
                    selection.excluded_count()
                ),
            ));
        }
        None => json!(selection.identifiers()),
    };
    let part = |part: Part| -> Map<String, Value> {
        FIELDS
            .iter()
            .filter(|f| f.part == part)
            .map(|f| {
                let value = overrides.get(f.name).unwrap_or(&defaults[f.name]);
                (f.name.to_owned(), value.clone())
            })
            .collect()
    };
    let database_config = part(Part::Database);
    intervals_within_bounds(&database_config, &overrides)?;
    parts_the_module_has(&defaults, &overrides)?;
    let mut prune = part(Part::Prune);
    prune.insert("execution".to_owned(), json!(request.execution));
    let plan = json!({
        "databases": databases,
        "database_config": database_config,
        "prune": prune,
        "skip_prune": part(Part::Run)["skip_prune"],
        "selection": selection,
    });
    // Both sides are checked above and held together by this module's tests.
    Ok(serde_json::from_value(plan).expect("FIELDS' parts are RunPlan's and PruneRequest's fields"))
}
