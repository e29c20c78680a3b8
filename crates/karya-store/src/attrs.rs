//! Conversion between JSON text (as stored and sent) and the core's attribute trees.

use std::collections::BTreeMap;

use karya_core::decision::attr::Attr;
use serde_json::Value;

/// Longest nesting accepted in a payload; deeper trees are refused, not recursed into.
const DEPTH_MAX: usize = 32;

pub fn from_json(value: &Value) -> Result<Attr, String> {
    convert(value, 0)
}

fn convert(value: &Value, depth: usize) -> Result<Attr, String> {
    if depth > DEPTH_MAX {
        return Err(format!("nested deeper than {DEPTH_MAX} levels"));
    }
    Ok(match value {
        Value::Null => Attr::Null,
        Value::Bool(b) => Attr::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Attr::Int(i),
            None => Attr::Float(
                n.as_f64()
                    .ok_or_else(|| format!("number {n} out of range"))?,
            ),
        },
        Value::String(s) => Attr::Text(s.clone()),
        Value::Array(items) => Attr::List(
            items
                .iter()
                .map(|v| convert(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Attr::Map(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), convert(v, depth + 1)?)))
                .collect::<Result<BTreeMap<_, _>, String>>()?,
        ),
    })
}

pub fn to_json(attr: &Attr) -> Value {
    match attr {
        Attr::Null => Value::Null,
        Attr::Bool(b) => Value::Bool(*b),
        Attr::Int(n) => Value::from(*n),
        Attr::Float(x) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Attr::Text(text) => Value::String(text.clone()),
        Attr::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Attr::Map(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// Parses stored JSON text into an attribute tree.
pub(crate) fn parse_text(text: &str) -> crate::Result<Attr> {
    let value: Value = serde_json::from_str(text)
        .map_err(|err| anyhow::anyhow!("stored json does not parse: {err}"))?;
    from_json(&value).map_err(|err| anyhow::anyhow!("stored json: {err}").into())
}
