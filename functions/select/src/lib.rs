//! `select`: the run's first task. It checks the execution input against the
//! run's fields (`backup_core::run::FIELDS`), merges it over the module's
//! configuration and splits the result by the part of the run that uses it,
//! so that a malformed input ends the run before any AWS call with the field
//! named, and the state machine carries no list of fields.

use backup_core::run::{self, FIELDS, Part, RunPlan, SelectRequest};
use backup_core::{Error, input};
use serde_json::{Map, Value, json};

/// Longest quotation of a refused value in an error message.
const MAX_QUOTED: usize = 120;

fn quoted(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > MAX_QUOTED {
        let end = (0..=MAX_QUOTED).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// The execution input's overrides, or `InvalidInput` naming the first field
/// that is unknown or of the wrong kind.
pub fn overrides(input: &Value) -> Result<&Map<String, Value>, Error> {
    let object = input.as_object().ok_or_else(|| {
        Error::invalid_input(
            "$",
            format!(
                "must be a JSON object of the fields {}, not {}",
                run::field_names(),
                quoted(input)
            ),
        )
    })?;
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
        if !field.kind.accepts(value) {
            return Err(Error::invalid_input(
                name.as_str(),
                format!("must be {}, not {}", field.kind.expected(), quoted(value)),
            ));
        }
    }
    Ok(object)
}

/// The module's configuration, or `ConfigError` naming the first field it
/// lacks or holds wrongly (Terraform passes every field, validated).
fn defaults(defaults: &Value) -> Result<&Map<String, Value>, Error> {
    let object = defaults
        .as_object()
        .ok_or_else(|| Error::config("defaults", "must be a JSON object"))?;
    for field in &FIELDS {
        match object.get(field.name) {
            Some(value) if field.kind.accepts(value) => {}
            Some(value) => {
                return Err(Error::config(
                    format!("defaults.{}", field.name),
                    format!("must be {}, not {}", field.kind.expected(), quoted(value)),
                ));
            }
            None => return Err(Error::config(format!("defaults.{}", field.name), "is missing")),
        }
    }
    if let Some(unknown) = object.keys().find(|k| FIELDS.iter().all(|f| f.name != k.as_str())) {
        return Err(Error::config(
            format!("defaults.{unknown}"),
            "is not a field of the execution input",
        ));
    }
    Ok(object)
}

/// The run's settings: the input's fields over the module's, split by part.
pub fn handle(event: Value) -> Result<RunPlan, Error> {
    let plan = plan(input::parse(event)?)?;
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
    let mut prune = part(Part::Prune);
    prune.insert("execution".to_owned(), json!(request.execution));
    let plan = json!({
        "databases": part(Part::Selection)["db_instance_ids"],
        "database_config": part(Part::Database),
        "prune": prune,
        "skip_prune": part(Part::Run)["skip_prune"],
    });
    // Both sides are checked above and held together by this module's tests.
    Ok(serde_json::from_value(plan).expect("FIELDS' parts are RunPlan's and PruneRequest's fields"))
}
