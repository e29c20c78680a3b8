//! Plausible JSON for the demo: task outputs that satisfy a pack's output form, decision
//! payloads that satisfy their type's schema, and intake inputs varied from a pack's examples.
//!
//! Values are drawn from a schema (the subset of JSON Schema the packs use: objects, arrays,
//! enums, numbers with bounds, strings with formats and a known set of patterns), and fields
//! the input already carries (a claim number, a patent number) are copied into the output.
//! Every generated document is checked against its schema; when a draw does not validate the
//! caller falls back to the plain sample, which always does.

use karya_packs::LoadedPack;
use karya_sim::rng::Rng;
use serde_json::{json, Map, Value};

/// A sample string for each pattern the packs' forms use.
const PATTERN_SAMPLES: &[(&str, &str)] = &[
    (
        r"\.(step|stp|igs|iges|x_t|prt|sldprt|catpart)$",
        "bracket.step",
    ),
    ("^(INC|REQ|RITM)[0-9]{7}$", "INC0012345"),
    ("^97[89][0-9]{10}$", "9781234567897"),
    ("^[0-9A-Z.]{2,8}$", "A1.B"),
    ("^[0-9A-Z]{2}$", "A1"),
    (r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", "1.0"),
    ("^[0-9]{10}$", "1234567890"),
    ("^[0-9]{12}$", "123456789012"),
    ("^[0-9]{2}$", "12"),
    ("^[0-9]{3}$", "123"),
    ("^[0-9]{4}$", "2024"),
    ("^[0-9]{4}-(0[1-9]|1[0-2])$", "2024-05"),
    ("^[0-9]{9,18}$", "123456789"),
    (
        "^[0-9a-f]{64}$",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    ("^[1-9][0-9]{5}$", "560001"),
    ("^[A-HY][0-9]{2}[A-Z]( ?[0-9]{1,4}/[0-9]{2,6})?$", "G06F"),
    (r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$", "E11.9"),
    ("^[A-Z0-9-]{4,32}$", "ABC-123"),
    ("^[A-Z0-9/-]{6,30}$", "ABC/123"),
    ("^[A-Z0-9]{8,20}$", "ABCD1234"),
    ("^[A-Z]{2}$", "IN"),
    ("^[A-Z]{2}[0-9A-Z]{4,14}$", "IN1234"),
    ("^[A-Z]{3}$", "INR"),
    ("^[A-Z]{4}0[A-Z0-9]{6}$", "HDFC0001234"),
    ("^[A-Z]{5}[0-9]{4}[A-Z]$", "ABCDE1234F"),
    ("^[A-Z]{5}[0-9]{7}[0-9]{3}$", "MHBAN0012345000"),
    ("^[A-Za-z][A-Za-z0-9_]*$", "field_1"),
    ("^[a-z0-9-]+$", "slug-1"),
    ("^[a-z]{2}(-[A-Z]{2})?$", "en"),
    (r"^\+?[0-9 -]{8,20}$", "+91 80 1234 5678"),
    (r"^\+[1-9][0-9]{7,14}$", "+918012345678"),
];

/// Phrases for free-text fields, so outputs read like work notes.
const NOTES: &[&str] = &[
    "Checked against the source documents; figures reconcile.",
    "Verified with the checklist for this item type; no exceptions found.",
    "Two discrepancies corrected and noted for the client.",
    "Completed as per the engagement's standard operating procedure.",
    "Cross-checked with the previous submission and the client's reference data.",
    "Sources cited; assumptions listed in the annexure.",
    "Escalated one query to the team lead; resolved before submission.",
];

/// How a draw varies: `plain` takes the first choice everywhere (always valid for the packs),
/// `varied` draws from the rng.
enum Mode<'a> {
    Plain,
    Varied(&'a mut Rng),
}

fn draw(schema: &Value, mode: &mut Mode, name: &str, today: &str) -> Value {
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return match mode {
            Mode::Plain => values[0].clone(),
            Mode::Varied(rng) => values[rng.below(values.len())].clone(),
        };
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    let low = match (schema.get("minimum"), schema.get("exclusiveMinimum")) {
        (Some(min), _) => min.as_f64().unwrap_or(0.0),
        (None, Some(min)) => min.as_f64().unwrap_or(0.0) + 1.0,
        (None, None) => 1.0,
    };
    let high = schema.get("maximum").and_then(Value::as_f64);
    match kind {
        "object" => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut object = Map::new();
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (field, property) in properties {
                    let keep = match mode {
                        Mode::Plain => true,
                        Mode::Varied(rng) => required.contains(&field.as_str()) || rng.chance(0.7),
                    };
                    if keep {
                        object.insert(field.clone(), draw(property, mode, field, today));
                    }
                }
            }
            Value::Object(object)
        }
        "array" => {
            let min = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(3);
            let unique = schema.get("uniqueItems").and_then(Value::as_bool) == Some(true);
            let n = match mode {
                Mode::Plain => min,
                Mode::Varied(rng) => {
                    min + rng.below((max.max(min) - min + 1).min(3) as usize) as u64
                }
            };
            let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
            let mut items: Vec<Value> = Vec::new();
            for _ in 0..n {
                let item = draw(&item_schema, mode, name, today);
                if unique && items.contains(&item) {
                    continue;
                }
                items.push(item);
            }
            if items.is_empty() {
                items.push(draw(&item_schema, &mut Mode::Plain, name, today));
            }
            Value::Array(items)
        }
        "integer" | "number" => {
            let value = match mode {
                Mode::Plain => high.map_or(low, |h| h.min(low)),
                Mode::Varied(rng) => {
                    let span = match high {
                        Some(h) => (h - low).max(0.0),
                        None if looks_like_money(name) => 25_000.0,
                        None => 40.0,
                    };
                    low + span * rng.unit()
                }
            };
            match kind {
                "integer" => json!(value.round() as i64),
                _ => json!((value * 100.0).round() / 100.0),
            }
        }
        "boolean" => match mode {
            Mode::Plain => json!(true),
            Mode::Varied(rng) => json!(rng.chance(0.7)),
        },
        "null" => Value::Null,
        _ => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let text = PATTERN_SAMPLES
                    .iter()
                    .find(|(p, _)| *p == pattern)
                    .map_or("A1", |(_, text)| text);
                return json!(text);
            }
            match schema.get("format").and_then(Value::as_str) {
                Some("date") => json!(today),
                Some("date-time") => json!(format!("{today}T10:30:00Z")),
                Some("email") => json!("operations@firm.example"),
                Some("uri") => json!("https://docs.firm.example/workpapers"),
                Some("ipv4") => json!("10.20.30.40"),
                _ => {
                    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let max = schema
                        .get("maxLength")
                        .and_then(Value::as_u64)
                        .map_or(usize::MAX, |m| m as usize);
                    let mut text = match mode {
                        Mode::Plain => "sample text".to_string(),
                        Mode::Varied(rng) => text_for(name, rng),
                    };
                    while text.chars().count() < min {
                        text.push_str(" Noted.");
                    }
                    json!(text.chars().take(max).collect::<String>())
                }
            }
        }
    }
}

/// Free text that fits a field's name: a code for identifiers, a name for people, a note
/// for everything else.
fn text_for(name: &str, rng: &mut Rng) -> String {
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    if has(&["code", "_id", "number", "serial", "ref", "account"]) {
        let prefix: String = name
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(3)
            .collect::<String>()
            .to_uppercase();
        return format!("{prefix}-{:05}", rng.below(100_000));
    }
    if has(&["name", "assignee", "owner", "contact", "payee"]) {
        const PEOPLE: &[&str] = &[
            "A. Sharma",
            "R. Iyer",
            "J. Fernandes",
            "M. Castillo",
            "S. Kulkarni",
            "P. Menon",
        ];
        return PEOPLE[rng.below(PEOPLE.len())].to_string();
    }
    if has(&["url", "link"]) {
        return "https://docs.firm.example/workpapers".to_string();
    }
    NOTES[rng.below(NOTES.len())].to_string()
}

fn looks_like_money(name: &str) -> bool {
    [
        "amount", "premium", "total", "value", "balance", "salary", "wages",
    ]
    .iter()
    .any(|word| name.contains(word))
}

fn schema_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(json!({"type": "object"}))
}

/// A task output valid against the pack's output form: drawn with variety, with fields of the
/// same name taken from the input, falling back to the plain sample.
pub fn output(pack: &LoadedPack, input: &Value, rng: &mut Rng, today: &str) -> Value {
    let schema = schema_of(&pack.pack.output_schema);
    let mut varied = draw(&schema, &mut Mode::Varied(rng), "", today);
    if let (Value::Object(out), Value::Object(inp)) = (&mut varied, input) {
        let names: Vec<String> = out.keys().cloned().collect();
        for name in names {
            if let Some(value) = inp.get(&name) {
                let before = out.insert(name.clone(), value.clone());
                if pack
                    .validate_output(&Value::Object(out.clone()).to_string())
                    .is_err()
                {
                    if let Some(before) = before {
                        out.insert(name, before);
                    }
                }
            }
        }
    }
    match pack.validate_output(&varied.to_string()) {
        Ok(()) => varied,
        Err(_) => draw(&schema, &mut Mode::Plain, "", today),
    }
}

/// A decision payload for `decision_type`, with the amount (if the type has one) set to
/// `amount`, a whole number in the currency's major unit as the packs' payloads give amounts.
pub fn payload(
    pack: &LoadedPack,
    decision_type: &str,
    amount: Option<(&str, f64)>,
    rng: &mut Rng,
    today: &str,
) -> Value {
    let Some(decision) = pack.pack.decision(decision_type) else {
        return json!({});
    };
    let schema = schema_of(&decision.payload_schema);
    let set_amount = |value: &mut Value| {
        if let Some((pointer, amount)) = amount {
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = json!(amount.round() as i64);
            } else if let Value::Object(map) = value {
                let field = pointer.trim_start_matches('/');
                if !field.contains('/') {
                    map.insert(field.to_string(), json!(amount.round() as i64));
                }
            }
        }
    };
    let mut varied = draw(&schema, &mut Mode::Varied(rng), "", today);
    set_amount(&mut varied);
    match pack.validate_decision(decision_type, &varied.to_string()) {
        Ok(()) => varied,
        Err(_) => {
            let mut plain = draw(&schema, &mut Mode::Plain, "", today);
            set_amount(&mut plain);
            plain
        }
    }
}

/// An intake input: one of the pack's examples, its amounts varied, still valid.
pub fn input(pack: &LoadedPack, variant: u64) -> (usize, Value) {
    let examples = &pack.pack.examples;
    let idx = (variant % examples.len().max(1) as u64) as usize;
    let base: Value = examples
        .get(idx)
        .and_then(|e| serde_json::from_str(&e.input).ok())
        .unwrap_or(json!({}));
    let mut rng = Rng::new(variant);
    let mut varied = base.clone();
    vary_numbers(&mut varied, &mut rng);
    match pack.validate_input(&varied.to_string()) {
        Ok(()) => (idx, varied),
        Err(_) => (idx, base),
    }
}

/// Scales numbers by 0.6 to 1.6, keeping integers integral.
fn vary_numbers(value: &mut Value, rng: &mut Rng) {
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| vary_numbers(v, rng)),
        Value::Array(items) => items.iter_mut().for_each(|v| vary_numbers(v, rng)),
        Value::Number(n) => {
            let factor = 0.6 + rng.unit();
            if let Some(i) = n.as_i64() {
                if i > 10 {
                    *value = json!(((i as f64) * factor).round() as i64);
                }
            } else if let Some(f) = n.as_f64() {
                if f > 10.0 {
                    *value = json!(((f * factor) * 100.0).round() / 100.0);
                }
            }
        }
        _ => {}
    }
}

/// The output as the store's submission fields: top-level values as text.
pub fn fields_text(output: &Value) -> std::collections::BTreeMap<String, String> {
    match output {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
        _ => Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_gets_valid_outputs_payloads_and_inputs() {
        let catalog = karya_packs::builtin().unwrap();
        let mut rng = Rng::new(5);
        for loaded in catalog.packs() {
            let id = &loaded.pack.id;
            for variant in 0..20 {
                let (_, input) = input(loaded, variant);
                loaded
                    .validate_input(&input.to_string())
                    .unwrap_or_else(|e| panic!("{id}: input {e:?}"));
                let out = output(loaded, &input, &mut rng, "2026-03-02");
                loaded
                    .validate_output(&out.to_string())
                    .unwrap_or_else(|e| panic!("{id}: output {e:?}"));
                for decision in &loaded.pack.decisions {
                    let p = payload(loaded, &decision.name, None, &mut rng, "2026-03-02");
                    assert!(p.is_object(), "{id}: {}", decision.name);
                }
            }
        }
    }
}
