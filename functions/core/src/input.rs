//! Parsing a state's input. Handlers take raw JSON and parse it here, so that
//! a malformed input fails with `InvalidInput` naming the field (the runtime's
//! own deserialization error would carry an unstable Rust type name instead).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Error;

/// Deserializes `event` into `T`, naming the offending field on error.
pub fn parse<T: DeserializeOwned>(event: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(event).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        // serde reports a missing field at its parent; name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            let field = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            return Error::invalid_input(field, "is required");
        }
        let field = if path == "." { "event".to_owned() } else { path };
        Error::invalid_input(field, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SnapshotRequest;
    use serde_json::json;

    fn execution() -> Value {
        json!({"execution_id": "arn:aws:states:us-east-1:123456789012:execution:sm:run", "execution_start_time": "2026-11-24T02:00:00.123Z"})
    }

    #[test]
    fn valid_input_parses() {
        let req: SnapshotRequest = parse(json!({"db_identifier": "db1", "execution": execution()})).unwrap();
        assert_eq!(req.db_identifier, "db1");
        assert_eq!(req.kind, None);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"execution": execution()}),
                "input db_identifier is invalid: is required",
            ),
            (
                json!({"db_identifier": "db1", "execution": {"execution_id": "x"}}),
                "input execution.execution_start_time is invalid: is required",
            ),
            (
                json!({"db_identifier": 5, "execution": execution()}),
                "input db_identifier is invalid: invalid type: integer `5`, expected a string",
            ),
            (
                json!({"db_identifier": "db1", "kind": "table", "execution": execution()}),
                "input kind is invalid",
            ),
            (
                json!({"db_identifier": "db1", "execution": execution(), "retention": 3}),
                "input retention is invalid: unknown field `retention`, expected one of",
            ),
            (
                json!({"db_identifier": "db1", "execution": {"execution_id": "x", "execution_start_time": "yesterday"}}),
                "input execution.execution_start_time is invalid",
            ),
        ];
        for (event, expected) in cases {
            let err = parse::<SnapshotRequest>(event).unwrap_err();
            assert!(
                err.to_string().starts_with(expected),
                "{err} does not start with {expected}"
            );
            assert_eq!(err.error_type().as_str(), "InvalidInput");
        }
    }
}
