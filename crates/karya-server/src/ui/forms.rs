//! Forms generated from a pack's JSON Schema, and form posts read back into JSON.
//!
//! Scalar properties become inputs (an `enum` a choice, a boolean a yes/no choice, numbers a
//! number input); arrays and objects become a JSON text area. Values come back as text and are
//! converted by the schema's types; the pack then validates the object, and each problem is
//! shown under its field (JSON pointer `/field`), or above the form when it concerns the whole
//! object.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, Request};
use karya_packs::FieldError;
use serde_json::{Map, Value};

use super::{Field, UiError};
use crate::error::ApiError;

/// Prefix of the form fields that belong to the schema's object, so they never collide with
/// the form's own fields (title, priority).
pub const FIELD_PREFIX: &str = "f.";
/// Most fields read from one form post; a pack form has a few dozen at most.
pub const FORM_FIELDS_MAX: usize = 500;

/// The fields of a urlencoded form post, in order.
pub struct FormData(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Form(fields) = axum::Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|rejection| {
                UiError(ApiError::invalid(format!(
                    "send the form as application/x-www-form-urlencoded: {}",
                    rejection.body_text()
                )))
            })?;
        if fields.len() > FORM_FIELDS_MAX {
            return Err(UiError(ApiError::invalid(format!(
                "a form has at most {FORM_FIELDS_MAX} fields"
            ))));
        }
        Ok(FormData(fields))
    }
}

impl FormData {
    /// The first value of a field, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The schema fields, by property name.
    pub fn schema_values(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(FIELD_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect()
    }
}

fn properties(schema: &Value) -> Vec<(String, &Value)> {
    schema["properties"]
        .as_object()
        .map(|props| props.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What kind of input a property gets.
fn kind_of(prop: &Value) -> &'static str {
    if prop.get("enum").is_some() {
        return "select";
    }
    match prop["type"].as_str() {
        Some("integer") | Some("number") => "number",
        Some("boolean") => "select",
        Some("string") => match prop["format"].as_str() {
            Some("date") => "date",
            Some("email") => "email",
            _ => "text",
        },
        _ => "textarea",
    }
}

fn label_of(name: &str) -> String {
    let text = name.replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The form fields of a schema's object, filled with `values` and showing `errors`.
pub fn fields_of(
    schema_text: &str,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<Field> {
    let Ok(schema) = serde_json::from_str::<Value>(schema_text) else {
        return Vec::new();
    };
    let required = required(&schema);
    // Required fields first, in the schema's order of `required`, then the rest by name.
    let mut props = properties(&schema);
    props.sort_by_key(|(name, _)| {
        let rank = required
            .iter()
            .position(|r| r == name)
            .unwrap_or(required.len());
        (rank, name.clone())
    });
    props
        .into_iter()
        .map(|(name, prop)| {
            let kind = kind_of(prop);
            let mut field = Field::new(&format!("{FIELD_PREFIX}{name}"), &label_of(&name), kind);
            field.required = required.contains(&name.as_str());
            field.value = values.get(&name).cloned().unwrap_or_default();
            field.error = errors.get(&name).cloned();
            if let Some(choices) = prop["enum"].as_array() {
                field.options = std::iter::once((String::new(), "— choose —".to_string()))
                    .chain(choices.iter().map(|c| {
                        let text = match c {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (text.clone(), text)
                    }))
                    .collect();
            } else if prop["type"].as_str() == Some("boolean") {
                field.options = vec![
                    (String::new(), "— choose —".into()),
                    ("true".into(), "Yes".into()),
                    ("false".into(), "No".into()),
                ];
            }
            field.help = match (kind, prop["description"].as_str()) {
                (_, Some(text)) => text.to_string(),
                ("textarea", None) => json_help(prop),
                _ => String::new(),
            };
            if kind == "textarea" {
                field.rows = 3;
            }
            field
        })
        .collect()
}

/// What to type in a JSON area: the keys an object needs, or what a list holds.
fn json_help(prop: &Value) -> String {
    let keys = |schema: &Value| -> String {
        let required = required(schema);
        match required.is_empty() {
            true => String::new(),
            false => format!(" with {}", required.join(", ")),
        }
    };
    match prop["type"].as_str() {
        Some("array") => match prop["items"]["type"].as_str() {
            Some("object") => format!("A JSON list of objects{}", keys(&prop["items"])),
            Some("string") => "A JSON list of texts, e.g. [\"a\", \"b\"]".into(),
            _ => "A JSON list".into(),
        },
        Some("object") => format!("A JSON object{}", keys(prop)),
        _ => "JSON".into(),
    }
}

/// Reads form values into the schema's JSON object. Empty values are left out (so `required`
/// speaks for them); a value that does not fit its type is an error under its field.
pub fn object_of(
    schema_text: &str,
    values: &BTreeMap<String, String>,
) -> Result<Value, BTreeMap<String, String>> {
    let schema: Value = serde_json::from_str(schema_text).unwrap_or(Value::Null);
    let mut object = Map::new();
    let mut errors = BTreeMap::new();
    for (name, prop) in properties(&schema) {
        let Some(text) = values.get(&name).map(|v| v.trim()) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        let is_enum_of_strings = prop["enum"]
            .as_array()
            .is_some_and(|e| e.iter().all(Value::is_string));
        let parsed = match prop["type"].as_str() {
            _ if is_enum_of_strings => Ok(Value::String(text.to_string())),
            Some("string") => Ok(Value::String(text.to_string())),
            Some("integer") => text
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| "must be a whole number".to_string()),
            Some("number") => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| "must be a number".to_string()),
            Some("boolean") => match text {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err("choose yes or no".to_string()),
            },
            _ => serde_json::from_str::<Value>(text)
                .map_err(|err| format!("is not valid JSON: {err}")),
        };
        match parsed {
            Ok(value) => {
                object.insert(name, value);
            }
            Err(problem) => {
                errors.insert(name, problem);
            }
        }
    }
    match errors.is_empty() {
        true => Ok(Value::Object(object)),
        false => Err(errors),
    }
}

/// Splits a pack's validation errors into per-field messages and messages about the whole.
pub fn split_errors(errors: &[FieldError]) -> (BTreeMap<String, String>, Vec<String>) {
    let mut by_field = BTreeMap::new();
    let mut general = Vec::new();
    for err in errors {
        let top = err
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        let missing = err
            .problem
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix("\" is a required property"));
        match (top, missing) {
            ("", Some(field)) => {
                by_field
                    .entry(field.to_string())
                    .or_insert_with(|| "is required".to_string());
            }
            ("", None) => general.push(err.problem.clone()),
            (field, _) => {
                by_field.entry(field.to_string()).or_insert_with(|| {
                    match err.path.matches('/').count() {
                        1 => err.problem.clone(),
                        _ => format!("{}: {}", err.path, err.problem),
                    }
                });
            }
        }
    }
    (by_field, general)
}

/// An object's values as the text fields the QA engine compares: strings as they are, other
/// values as JSON.
pub fn fields_text(object: &Value) -> BTreeMap<String, String> {
    object
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","required":["name","count"],
        "properties":{"name":{"type":"string"},"count":{"type":"integer"},
        "ok":{"type":"boolean"},"kind":{"enum":["a","b"]},"tags":{"type":"array"}}}"#;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(pairs: &[(&str, &str)], expect: &str) {
        let got = match object_of(SCHEMA, &values(pairs)) {
            Ok(value) => value.to_string(),
            Err(errors) => format!("errors {errors:?}"),
        };
        assert_eq!(got, expect, "{pairs:?}");
    }

    #[test]
    fn form_values_take_the_schema_types() {
        check(
            &[("name", "x"), ("count", "3")],
            r#"{"count":3,"name":"x"}"#,
        );
        check(&[("name", ""), ("count", "")], "{}");
        check(
            &[("ok", "true"), ("kind", "b"), ("tags", r#"["p"]"#)],
            r#"{"kind":"b","ok":true,"tags":["p"]}"#,
        );
        check(
            &[("count", "3.5")],
            r#"errors {"count": "must be a whole number"}"#,
        );
        check(&[("ok", "maybe")], r#"errors {"ok": "choose yes or no"}"#);
    }

    #[test]
    fn fields_follow_the_schema() {
        let fields = fields_of(SCHEMA, &values(&[("name", "x")]), &BTreeMap::new());
        let shape: Vec<(String, &str, bool, String)> = fields
            .iter()
            .map(|f| (f.name.clone(), f.kind, f.required, f.value.clone()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("f.name".into(), "text", true, "x".into()),
                ("f.count".into(), "number", true, String::new()),
                ("f.kind".into(), "select", false, String::new()),
                ("f.ok".into(), "select", false, String::new()),
                ("f.tags".into(), "textarea", false, String::new()),
            ]
        );
    }

    #[test]
    fn errors_land_under_their_field() {
        let errors = vec![
            FieldError {
                path: "/count".into(),
                problem: "must be at least 0".into(),
            },
            FieldError {
                path: "".into(),
                problem: "\"name\" is a required property".into(),
            },
            FieldError {
                path: "".into(),
                problem: "must have at most 3 properties".into(),
            },
            FieldError {
                path: "/tags/0".into(),
                problem: "is not a string".into(),
            },
        ];
        let (by_field, general) = split_errors(&errors);
        assert_eq!(by_field["count"], "must be at least 0");
        assert_eq!(by_field["tags"], "/tags/0: is not a string");
        assert_eq!(by_field["name"], "is required");
        assert_eq!(general, vec!["must have at most 3 properties".to_string()]);
    }
}
