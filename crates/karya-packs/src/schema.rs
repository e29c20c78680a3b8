//! JSON Schema handling: compiling a pack's schemas once, and checking JSON text against them
//! with one error per field.
//!
//! Schemas are checked against their meta-schema (draft 2020-12 unless they say otherwise)
//! before they are compiled, so a misspelt type or a malformed keyword is a load error rather
//! than a schema that silently accepts everything. `format` keywords (`date`, `email`, ...)
//! are enforced, because intake relies on them.

use jsonschema::error::ValidationErrorKind;
use jsonschema::Validator;
use serde_json::Value;

/// Most field errors reported for one document; past this the caller sees a count, because a
/// document wrong everywhere is better fixed from the first few errors.
pub const FIELD_ERRORS_MAX: usize = 50;

/// One problem with one field of a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the field, e.g. `/claimant/date_of_birth`; empty for the whole document.
    pub path: String,
    /// What is wrong, without echoing the submitted value.
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path.as_str() {
            "" => write!(f, "(document): {}", self.problem),
            path => write!(f, "{path}: {}", self.problem),
        }
    }
}

/// A compiled schema, with the JSON it came from.
#[derive(Debug)]
pub struct Schema {
    pub value: Value,
    pub validator: Validator,
}

/// Parses and compiles a schema; on failure, the problems in the schema itself.
pub fn compile(text: &str) -> Result<Schema, Vec<FieldError>> {
    let value: Value = parse(text)?;
    if let Err(error) = jsonschema::meta::validate(&value) {
        return Err(vec![FieldError {
            path: error.instance_path().as_str().to_owned(),
            problem: format!("not a valid JSON Schema: {error}"),
        }]);
    }
    match jsonschema::options()
        .should_validate_formats(true)
        .build(&value)
    {
        Ok(validator) => Ok(Schema { value, validator }),
        Err(error) => Err(vec![FieldError {
            path: error.instance_path().as_str().to_owned(),
            problem: format!("not a valid JSON Schema: {error}"),
        }]),
    }
}

/// Parses JSON text, reporting a syntax error with its line and column.
pub fn parse(text: &str) -> Result<Value, Vec<FieldError>> {
    serde_json::from_str(text).map_err(|error| {
        vec![FieldError {
            path: String::new(),
            problem: format!(
                "not valid JSON: {} at line {} column {}",
                error_without_position(&error),
                error.line(),
                error.column()
            ),
        }]
    })
}

/// Every way `instance` fails `schema`, one entry per field, at most [`FIELD_ERRORS_MAX`].
pub fn field_errors(schema: &Schema, instance: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut n_errors = 0_usize;
    for error in schema.validator.iter_errors(instance) {
        n_errors += 1;
        if errors.len() == FIELD_ERRORS_MAX {
            continue;
        }
        let mut path = error.instance_path().as_str().to_owned();
        // A missing property is reported on its parent; point at the property itself.
        if let ValidationErrorKind::Required { property } = error.kind() {
            if let Some(name) = property.as_str() {
                path.push('/');
                path.push_str(&name.replace('~', "~0").replace('/', "~1"));
            }
        }
        errors.push(FieldError {
            path,
            problem: error.masked().to_string(),
        });
    }
    if n_errors > FIELD_ERRORS_MAX {
        errors.push(FieldError {
            path: String::new(),
            problem: format!("{} more errors not shown", n_errors - FIELD_ERRORS_MAX),
        });
    }
    errors
}

/// Whether the JSON pointer `pointer` names a numeric property declared in `schema`, walking
/// `properties` (and `items` for array indices are not allowed: an amount is one number).
pub fn declares_number(schema: &Value, pointer: &str) -> bool {
    let Some(rest) = pointer.strip_prefix('/') else {
        return false;
    };
    let mut node = schema;
    for segment in rest.split('/') {
        let name = segment.replace("~1", "/").replace("~0", "~");
        match node.get("properties").and_then(|p| p.get(&name)) {
            Some(child) => node = child,
            None => return false,
        }
    }
    match node.get("type") {
        Some(Value::String(kind)) => kind == "number" || kind == "integer",
        _ => false,
    }
}

/// The top-level property names a schema declares.
pub fn top_level_properties(schema: &Value) -> Vec<&str> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

fn error_without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(idx) => text[..idx].to_owned(),
        None => text,
    }
}
