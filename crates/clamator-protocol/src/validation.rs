//! Mapping of params decoding failures to the Python-shaped `Invalid params` data:
//! `{"errors": [{"type", "loc", "msg", "input"}]}` with `loc` the JSON path of the bad field.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// One validation error, in pydantic's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationIssue {
    /// Error type, e.g. `missing`, `extra_forbidden`, `float_type`, `model_type`.
    pub kind: &'static str,
    /// Path of the bad field: keys as strings, array indices as integers.
    pub loc: Vec<Value>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input (the value at `loc`, or the enclosing object for `missing`).
    pub input: Value,
}

impl ValidationIssue {
    /// The issue as a JSON object `{"type", "loc", "msg", "input"}`.
    pub fn to_value(&self) -> Value {
        json!({ "type": self.kind, "loc": self.loc, "msg": self.msg, "input": self.input })
    }
}

/// Params that failed to decode into the method's params type.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamsError {
    /// The issues found (serde stops at the first one).
    pub issues: Vec<ValidationIssue>,
}

impl ParamsError {
    /// The params are not a JSON object although the params type is one (`model_type`).
    pub fn not_an_object(input: Value) -> Self {
        let msg = "Input should be a valid dictionary or object".to_owned();
        Self {
            issues: vec![ValidationIssue {
                kind: "model_type",
                loc: Vec::new(),
                msg,
                input,
            }],
        }
    }

    /// The `data` of the `-32602 Invalid params` reply.
    pub fn to_data(&self) -> Value {
        json!({ "errors": self.issues.iter().map(ValidationIssue::to_value).collect::<Vec<_>>() })
    }
}

impl std::fmt::Display for ParamsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{} at {}: {}",
                issue.kind,
                Value::from(issue.loc.clone()),
                issue.msg
            )?;
        }
        Ok(())
    }
}

/// Decodes `params` into `P`, or describes where and why it does not fit.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Add { a: f64, b: f64 }
/// let err = clamator_protocol::decode_params::<Add>(&serde_json::json!({"a": "two", "b": 3}))
///     .err().unwrap();
/// assert_eq!(err.issues[0].kind, "float_type");
/// assert_eq!(err.issues[0].loc, vec![serde_json::json!("a")]);
/// assert_eq!(err.issues[0].input, serde_json::json!("two"));
/// ```
pub fn decode_params<P: DeserializeOwned>(params: &Value) -> Result<P, ParamsError> {
    // Fast path without path tracking; on failure decode again to find where it failed.
    if let Ok(p) = P::deserialize(params) {
        return Ok(p);
    }
    serde_path_to_error::deserialize(params).map_err(|e| {
        let mut loc: Vec<Value> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(Value::from(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Value::from(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let message = e.into_inner().to_string();
        ParamsError {
            issues: vec![classify(params, &mut loc, &message)],
        }
    })
}

fn lookup<'a>(root: &'a Value, loc: &[Value]) -> Option<&'a Value> {
    loc.iter().try_fold(root, |v, seg| match seg {
        Value::String(k) => v.get(k.as_str()),
        Value::Number(n) => n.as_u64().and_then(|i| v.get(usize::try_from(i).ok()?)),
        _ => None,
    })
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn classify(root: &Value, loc: &mut Vec<Value>, message: &str) -> ValidationIssue {
    if let Some(rest) = message.strip_prefix("missing field ") {
        let parent = lookup(root, loc).cloned().unwrap_or(Value::Null);
        if let Some(field) = backticked(rest) {
            loc.push(Value::from(field));
        }
        return issue("missing", loc, "Field required".into(), parent);
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        if let Some(field) = backticked(rest) {
            if loc.last().and_then(Value::as_str) != Some(field) {
                loc.push(Value::from(field));
            }
        }
        let input = lookup(root, loc).cloned().unwrap_or(Value::Null);
        return issue(
            "extra_forbidden",
            loc,
            "Extra inputs are not permitted".into(),
            input,
        );
    }
    let input = lookup(root, loc).cloned().unwrap_or(Value::Null);
    if message.starts_with("invalid type") {
        let expected = message.rsplit("expected ").next().unwrap_or("");
        let (kind, msg) = expected_kind(expected);
        let msg = msg.map_or_else(|| format!("Input should be {expected}"), str::to_owned);
        return issue(kind, loc, msg, input);
    }
    issue("value_error", loc, message.to_owned(), input)
}

fn expected_kind(expected: &str) -> (&'static str, Option<&'static str>) {
    match expected {
        "f64" | "f32" => ("float_type", Some("Input should be a valid number")),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => ("int_type", Some("Input should be a valid integer")),
        "a string" | "a borrowed string" | "a character" => {
            ("string_type", Some("Input should be a valid string"))
        }
        "a boolean" => ("bool_type", Some("Input should be a valid boolean")),
        e if e.starts_with("a sequence") || e.starts_with("a tuple") => {
            ("list_type", Some("Input should be a valid list"))
        }
        e if e.starts_with("struct ") || e.starts_with("a map") => {
            ("model_type", Some("Input should be a valid dictionary"))
        }
        _ => ("type_error", None),
    }
}

fn issue(kind: &'static str, loc: &[Value], msg: String, input: Value) -> ValidationIssue {
    ValidationIssue {
        kind,
        loc: loc.to_vec(),
        msg,
        input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Inner {
        process_id: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        a: f64,
        items: Vec<Inner>,
    }

    #[allow(clippy::needless_pass_by_value)]
    fn first(v: Value) -> ValidationIssue {
        decode_params::<Outer>(&v).unwrap_err().issues.remove(0)
    }

    #[test]
    fn missing_field() {
        let i = first(json!({"items": []}));
        assert_eq!(i.kind, "missing");
        assert_eq!(i.loc, vec![json!("a")]);
        assert_eq!(i.input, json!({"items": []}));
    }

    #[test]
    fn nested_loc_uses_wire_names() {
        let i = first(json!({"a": 1, "items": [{"processId": "x"}, {"process_id": "y"}]}));
        assert_eq!(i.kind, "extra_forbidden");
        assert_eq!(i.loc, vec![json!("items"), json!(1), json!("process_id")]);
        assert_eq!(i.input, json!("y"));
    }

    #[test]
    fn not_an_object() {
        let i = first(Value::Null);
        assert_eq!(i.kind, "model_type");
        assert!(i.loc.is_empty());
        assert_eq!(i.input, Value::Null);
    }

    #[test]
    fn wrong_type_deep() {
        let i = first(json!({"a": 1, "items": [{"processId": 5}]}));
        assert_eq!(i.kind, "string_type");
        assert_eq!(i.loc, vec![json!("items"), json!(0), json!("processId")]);
        assert_eq!(i.input, json!(5));
    }
}
