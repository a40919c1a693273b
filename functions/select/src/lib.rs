//! `select`: the run's first task. It checks the execution input against the
//! run's fields (`backup_core::run::FIELDS`), merges it over the module's
//! configuration and splits the result by the part of the run that uses it,
//! so that a malformed input ends the run before any AWS call with the field
//! named, and the state machine carries no list of fields.

use backup_core::run::{self, FIELDS, Part, RunPlan, SelectRequest};
use backup_core::{Error, input};
use serde_json::{Map, Value, json};

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
            let value = field.kind.check(value).map_err(|reason| Error::config(&name, reason))?;
            Ok((field.name.to_owned(), value))
        })
        .collect()
}

/// The input may choose among the module's databases only: the functions' roles
/// may back up no other (IAM would refuse it deep in a function, as AccessDenied).
fn within_module(selected: &Value, configured: &Value) -> Result<(), Error> {
    let identifiers = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let configured = identifiers(configured);
    let outside: Vec<String> = identifiers(selected)
        .into_iter()
        .filter(|id| !configured.iter().any(|c| c.eq_ignore_ascii_case(id)))
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(Error::invalid_input(
        "db_instance_ids",
        format!(
            "names {} outside the module's databases ({}): the functions may back up only those; \
             add it to rds_instance_ids or rds_cluster_ids and apply",
            outside.join(", "),
            configured.join(", ")
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
pub fn handle(event: Value) -> Result<RunPlan, Error> {
    // The state machine builds this request: a malformed one is the module's fault, not the input's.
    let request = input::parse(event).map_err(|err| match err {
        Error::InvalidInput { field, reason } => Error::config(format!("select's request: {field}"), reason),
        other => other,
    })?;
    let plan = plan(request)?;
    tracing::info!(
        databases = plan.databases.len(),
        skip_prune = plan.skip_prune,
        "run settings selected"
    );
    Ok(plan)
}

/// The run's settings of a parsed request.
pub fn plan(request: SelectRequest) -> Result<RunPlan, Error> {
    let defaults = defaults(&request.defaults)?;
    let overrides = overrides(&request.input)?;
    if let Some(selected) = overrides.get("db_instance_ids") {
        within_module(selected, &defaults["db_instance_ids"])?;
    }
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
    let mut prune = part(Part::Prune);
    prune.insert("execution".to_owned(), json!(request.execution));
    let plan = json!({
        "databases": part(Part::Selection)["db_instance_ids"],
        "database_config": database_config,
        "prune": prune,
        "skip_prune": part(Part::Run)["skip_prune"],
    });
    // Both sides are checked above and held together by this module's tests.
    Ok(serde_json::from_value(plan).expect("FIELDS' parts are RunPlan's and PruneRequest's fields"))
}
