//! `validate_rules`: records checked field by field against rules, with check digits.
//!
//! A rule is a small JSON-Schema-like object on one field:
//! `{"field", "required", "type": "text|integer|decimal|date|email|phone|pin_code|zip_code|choice|checkbox",
//!   "pattern", "min", "max", "max_length", "choices", "checksum": "iban|gstin|pan|luhn|isbn|verhoeff|ifsc"}`.
//! Rules come from the input (`rules`), or from the pack: the data-entry layout (and the two
//! keyings compared field by field), ISBN and files for conversion jobs, E.164 numbers and a
//! do-not-call list for telemarketing, the data sources of an analytics brief, and the draft of
//! a piece of writing (word count, keywords, sources). Every error names its record and field.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::{json, Value};

use crate::extract::{value_number, value_text};
use crate::{AutomationError, Context, Result};

// --- check digits --------------------------------------------------------------------------------

/// Luhn (ISO/IEC 7812) over the digits of `s`: payment cards, IMEI.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// IBAN (ISO 13616): country, check digits, and mod 97 of the rearranged number equal to 1.
pub fn iban_valid(s: &str) -> bool {
    let s: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if !(15..=34).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    if !s[..2].chars().all(|c| c.is_ascii_alphabetic())
        || !s[2..4].chars().all(|c| c.is_ascii_digit())
    {
        return false;
    }
    let rearranged = format!("{}{}", &s[4..], &s[..4]);
    let mut rem: u32 = 0;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap_or(0);
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// GSTIN (India): 2-digit state, PAN, entity number, `Z`, and a base-36 check character
/// (weights alternating 1 and 2, sum of quotient and remainder of each product by 36).
pub fn gstin_valid(s: &str) -> bool {
    const CHARS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let s = s.trim().to_ascii_uppercase();
    if s.len() != 15 || !s.is_ascii() {
        return false;
    }
    let shape = Regex::new(r"^\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]$").expect("valid");
    if !shape.is_match(&s) {
        return false;
    }
    let mut sum = 0u32;
    for (i, c) in s[..14].chars().enumerate() {
        let v = CHARS.find(c).unwrap_or(0) as u32;
        let p = v * if i % 2 == 0 { 1 } else { 2 };
        sum += p / 36 + p % 36;
    }
    let check = (36 - sum % 36) % 36;
    s.as_bytes()[14] == CHARS.as_bytes()[check as usize]
}

/// PAN (India): five letters (the fourth the holder's status), four digits, a letter.
pub fn pan_valid(s: &str) -> bool {
    let shape = Regex::new(r"^[A-Z]{3}[ABCFGHJLPT][A-Z][0-9]{4}[A-Z]$").expect("valid");
    shape.is_match(s.trim())
}

/// ISBN-10 or ISBN-13 check digit.
pub fn isbn_valid(s: &str) -> bool {
    let chars: Vec<char> = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    match chars.len() {
        13 => {
            let Some(d) = chars
                .iter()
                .map(|c| c.to_digit(10))
                .collect::<Option<Vec<u32>>>()
            else {
                return false;
            };
            d.iter()
                .enumerate()
                .map(|(i, v)| if i % 2 == 0 { *v } else { v * 3 })
                .sum::<u32>()
                % 10
                == 0
        }
        10 => {
            let mut sum = 0;
            for (i, c) in chars.iter().enumerate() {
                let v = match (i, c) {
                    (9, 'X' | 'x') => 10,
                    (_, c) => match c.to_digit(10) {
                        Some(v) => v,
                        None => return false,
                    },
                };
                sum += v * (10 - i as u32);
            }
            sum % 11 == 0
        }
        _ => false,
    }
}

/// Verhoeff check digit (Aadhaar numbers).
pub fn verhoeff_valid(s: &str) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let digits: Option<Vec<u8>> = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    let Some(digits) = digits.filter(|d| d.len() >= 2) else {
        return false;
    };
    let mut c = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        c = D[c as usize][P[i % 8][*d as usize] as usize];
    }
    c == 0
}

/// IFSC (India): four letters, a zero, six letters or digits.
pub fn ifsc_valid(s: &str) -> bool {
    Regex::new(r"^[A-Z]{4}0[A-Z0-9]{6}$")
        .expect("valid")
        .is_match(s.trim())
}

pub fn checksum_valid(kind: &str, value: &str) -> Option<bool> {
    Some(match kind {
        "iban" => iban_valid(value),
        "gstin" => gstin_valid(value),
        "pan" => pan_valid(value),
        "luhn" => luhn_valid(value),
        "isbn" => isbn_valid(value),
        "verhoeff" | "aadhaar" => verhoeff_valid(value),
        "ifsc" => ifsc_valid(value),
        _ => return None,
    })
}

/// The check a field's name implies (`pan`, `gstin`, `iban`, `ifsc`, `isbn`, `card_number`).
fn implied_checksum(field: &str) -> Option<&'static str> {
    let f = field.to_ascii_lowercase();
    let last = f.rsplit(['_', '.', '/']).next().unwrap_or(&f);
    Some(match last {
        "pan" => "pan",
        "gstin" => "gstin",
        "iban" => "iban",
        "ifsc" => "ifsc",
        "isbn" => "isbn",
        "aadhaar" => "verhoeff",
        _ if f.contains("card_number") => "luhn",
        _ => return None,
    })
}

// --- rules ---------------------------------------------------------------------------------------

/// One error: which record (its index or id), which field, which rule, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub record: String,
    pub field: String,
    pub rule: String,
    pub message: String,
}

impl Violation {
    fn to_json(&self) -> Value {
        json!({ "record": self.record, "field": self.field, "rule": self.rule, "message": self.message })
    }
}

fn lookup<'a>(record: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        return record.pointer(field);
    }
    let mut cur = record;
    for part in field.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

/// Checks one record against rules.
pub fn check_record(record_id: &str, record: &Value, rules: &[Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in rules {
        let Some(field) = rule.get("field").and_then(Value::as_str) else {
            continue;
        };
        let mut fail = |name: &str, message: String| {
            out.push(Violation {
                record: record_id.to_string(),
                field: field.to_string(),
                rule: name.to_string(),
                message,
            })
        };
        let value = lookup(record, field).filter(|v| !v.is_null() && *v != &json!(""));
        let Some(value) = value else {
            if rule.get("required").and_then(Value::as_bool) == Some(true) {
                fail("required", "is required".into());
            }
            continue;
        };
        let text = value_text(value);
        let kind = rule.get("type").and_then(Value::as_str).unwrap_or("text");
        let type_ok = match kind {
            "integer" => value.as_i64().is_some() || text.trim().parse::<i64>().is_ok(),
            "decimal" | "number" => value_number(value).is_some(),
            "date" => {
                type_pattern(&DATE, r"^\d{4}-\d{2}-\d{2}$").is_match(&text)
                    && crate::text::parse_date(&text).as_deref() == Some(text.as_str())
            }
            "email" => type_pattern(&EMAIL, r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$").is_match(&text),
            "phone" => {
                let digits = text.chars().filter(char::is_ascii_digit).count();
                (8..=15).contains(&digits)
                    && type_pattern(&PHONE, r"^\+?[0-9 ()\-]+$").is_match(&text)
            }
            "e164" => type_pattern(&E164, r"^\+[1-9][0-9]{7,14}$").is_match(&text),
            "pin_code" => type_pattern(&PIN_CODE, r"^[1-9][0-9]{5}$").is_match(&text),
            "zip_code" => type_pattern(&ZIP_CODE, r"^[0-9]{5}(-[0-9]{4})?$").is_match(&text),
            "checkbox" | "boolean" => {
                value.is_boolean()
                    || matches!(
                        text.to_lowercase().as_str(),
                        "y" | "n" | "yes" | "no" | "true" | "false" | "x" | ""
                    )
            }
            _ => true,
        };
        if !type_ok {
            fail("type", format!("{text:?} is not a valid {kind}"));
            continue;
        }
        if let Some(p) = rule.get("pattern").and_then(Value::as_str) {
            match Regex::new(p) {
                Ok(re) if !re.is_match(&text) => {
                    fail("pattern", format!("{text:?} does not match {p}"))
                }
                Err(_) => fail(
                    "pattern",
                    format!("the rule's pattern {p:?} is not a valid expression"),
                ),
                _ => {}
            }
        }
        if let Some(max) = rule.get("max_length").and_then(Value::as_u64) {
            if text.chars().count() as u64 > max {
                fail(
                    "max_length",
                    format!(
                        "is {} characters long, at most {max} allowed",
                        text.chars().count()
                    ),
                );
            }
        }
        if let Some(n) = value_number(value) {
            if let Some(min) = rule.get("min").and_then(Value::as_f64) {
                if n < min {
                    fail("min", format!("{n} is below {min}"));
                }
            }
            if let Some(max) = rule.get("max").and_then(Value::as_f64) {
                if n > max {
                    fail("max", format!("{n} is above {max}"));
                }
            }
        }
        if let Some(choices) = rule.get("choices").and_then(Value::as_array) {
            if !choices.iter().any(|c| value_text(c) == text) {
                fail(
                    "choices",
                    format!("{text:?} is not one of the allowed values"),
                );
            }
        }
        let checksum = rule
            .get("checksum")
            .and_then(Value::as_str)
            .or_else(|| implied_checksum(field));
        if let Some(kind) = checksum {
            match checksum_valid(kind, &text) {
                Some(false) => fail("checksum", format!("{text:?} fails the {kind} check")),
                None => fail("checksum", format!("unknown check {kind:?}")),
                Some(true) => {}
            }
        }
    }
    out
}

/// Rules of a data-entry layout.
fn layout_rules(layout: &[Value]) -> Vec<Value> {
    layout
        .iter()
        .map(|f| {
            let mut rule = json!({ "field": f.get("field"), "type": f.get("type").cloned().unwrap_or(json!("text")) });
            for key in ["required", "max_length", "choices"] {
                if let Some(v) = f.get(key) {
                    rule[key] = v.clone();
                }
            }
            rule
        })
        .collect()
}

/// Field-by-field differences between two keyings of the same records (double-entry compare).
pub fn compare_keyings(first: &[Value], second: &[Value], fields: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, (a, b)) in first.iter().zip(second).enumerate() {
        for field in fields {
            let (x, y) = (a.get(field).map(value_text), b.get(field).map(value_text));
            let norm = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_string();
            if norm(&x) != norm(&y) {
                out.push(json!({ "record": i, "field": field, "first": x, "second": y }));
            }
        }
    }
    if first.len() != second.len() {
        out.push(
            json!({ "record": null, "field": null, "first": first.len(), "second": second.len(),
            "message": "the keyings have different numbers of records" }),
        );
    }
    out
}

fn records_of(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).cloned().unwrap_or_default()
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let explicit = ctx
        .input
        .get("rules")
        .or_else(|| item.get("rules"))
        .and_then(Value::as_array)
        .cloned();
    let mut violations: Vec<Violation> = Vec::new();
    let mut extra = serde_json::Map::new();
    let mut checked = 0usize;

    let line = ctx.service_line().unwrap_or("");
    if let Some(rules) = explicit {
        let records = ctx
            .input
            .get("records")
            .or_else(|| ctx.latest_output_with("records"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![item.clone()]);
        for (i, r) in records.iter().enumerate() {
            violations.extend(check_record(&record_name(r, i), r, &rules));
            checked += 1;
        }
    } else if line == "data_entry" {
        let layout = records_of(item.get("layout"));
        let rules = layout_rules(&layout);
        let fields: Vec<String> = layout
            .iter()
            .filter_map(|f| f.get("field").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        let keyings: Vec<(&str, Vec<Value>)> = ctx
            .outputs()
            .into_iter()
            .filter_map(|(step, out)| {
                out.get("records")
                    .and_then(Value::as_array)
                    .map(|r| (step, r.clone()))
            })
            .collect();
        if keyings.is_empty() {
            return Err(AutomationError::bad(
                "no keyed records in the earlier outputs to compare",
            ));
        }
        if keyings.len() >= 2 {
            let diffs = compare_keyings(&keyings[0].1, &keyings[1].1, &fields);
            extra.insert("mismatches".into(), json!(diffs));
            extra.insert(
                "fields_compared".into(),
                json!(keyings[0].1.len().min(keyings[1].1.len()) * fields.len()),
            );
        }
        let last = &keyings[keyings.len() - 1].1;
        for (i, r) in last.iter().enumerate() {
            violations.extend(check_record(&record_name(r, i), r, &rules));
            checked += 1;
        }
        let marker = item
            .get("illegible_marker")
            .and_then(Value::as_str)
            .unwrap_or("#");
        let illegible = last
            .iter()
            .flat_map(|r| fields.iter().filter_map(move |f| r.get(f)))
            .filter(|v| value_text(v).contains(marker))
            .count();
        extra.insert("illegible_fields".into(), json!(illegible));
        extra.insert("records_keyed".into(), json!(last.len()));
    } else if line == "data_conversion" {
        let rules = vec![
            json!({"field": "isbn", "checksum": "isbn"}),
            json!({"field": "files", "required": true}),
        ];
        violations.extend(check_record("item", item, &rules));
        checked += 1;
        // Files the conversion produced must be there and not empty.
        for (step, out) in ctx.outputs() {
            if let Some(files) = out.get("files").and_then(Value::as_array) {
                for f in files {
                    if f.get("bytes").and_then(Value::as_u64) == Some(0) {
                        violations.push(Violation {
                            record: step.into(),
                            field: value_text(f.get("name").unwrap_or(&Value::Null)),
                            rule: "non_empty".into(),
                            message: "the converted file is empty".into(),
                        });
                    }
                }
            }
        }
    } else if line == "telemarketing" {
        let rules = vec![json!({"field": "prospect.phone", "required": true, "type": "e164"})];
        violations.extend(check_record("prospect", item, &rules));
        checked += 1;
        let phone = item
            .pointer("/prospect/phone")
            .map(value_text)
            .unwrap_or_default();
        let dnc: BTreeSet<String> = ctx
            .input
            .get("do_not_call")
            .or_else(|| item.get("do_not_call"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(value_text)
                    .map(|p| p.chars().filter(|c| c.is_ascii_digit()).collect())
                    .collect()
            })
            .unwrap_or_default();
        let digits: String = phone.chars().filter(|c| c.is_ascii_digit()).collect();
        let listed = dnc.contains(&digits);
        if listed {
            violations.push(Violation {
                record: "prospect".into(),
                field: "prospect.phone".into(),
                rule: "do_not_call".into(),
                message: "the number is on the do-not-call list".into(),
            });
        }
        let attempts = item
            .pointer("/prospect/previous_attempts")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if attempts >= 6 {
            violations.push(Violation {
                record: "prospect".into(),
                field: "prospect.previous_attempts".into(),
                rule: "max_attempts".into(),
                message: "six attempts already made".into(),
            });
        }
        extra.insert(
            "callable".into(),
            json!(!listed && attempts < 6 && violations.is_empty()),
        );
        extra.insert("do_not_call_checked".into(), json!(dnc.len()));
    } else if line == "data_analytics" {
        let sources = records_of(item.get("data_sources"));
        for (i, s) in sources.iter().enumerate() {
            let rules = vec![
                json!({"field": "name", "required": true}),
                json!({"field": "rows_approx", "type": "integer", "min": 1}),
            ];
            violations.extend(check_record(&format!("data_sources[{i}]"), s, &rules));
            if s.get("contains_pii").and_then(Value::as_bool) == Some(true) {
                violations.push(Violation {
                    record: format!("data_sources[{i}]"),
                    field: "contains_pii".into(),
                    rule: "pii".into(),
                    message: "personal data must be masked before analysis".into(),
                });
            }
            checked += 1;
        }
        if let (Some(from), Some(to)) = (
            item.pointer("/time_window/from").and_then(Value::as_str),
            item.pointer("/time_window/to").and_then(Value::as_str),
        ) {
            if from > to {
                violations.push(Violation {
                    record: "item".into(),
                    field: "time_window".into(),
                    rule: "order".into(),
                    message: format!("the window starts {from}, after it ends {to}"),
                });
            }
        }
    } else if line == "writing_and_content" {
        let draft = ctx
            .latest_output_with("body")
            .or_else(|| ctx.latest_output_with("text"))
            .map(value_text)
            .unwrap_or_default();
        if draft.is_empty() {
            return Err(AutomationError::bad(
                "no draft (an earlier output's body or text) to check",
            ));
        }
        let words = draft.split_whitespace().count();
        extra.insert("word_count".into(), json!(words));
        if let Some(target) = item.get("word_count").and_then(Value::as_u64) {
            let (lo, hi) = (target as f64 * 0.9, target as f64 * 1.1);
            if (words as f64) < lo || (words as f64) > hi {
                violations.push(Violation {
                    record: "draft".into(),
                    field: "word_count".into(),
                    rule: "range".into(),
                    message: format!("{words} words, asked {target} (±10 %)"),
                });
            }
        }
        let lower = draft.to_lowercase();
        for kw in item.get("primary_keyword").into_iter().chain(
            item.get("secondary_keywords")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        ) {
            let kw = value_text(kw).to_lowercase();
            if !kw.is_empty() && !lower.contains(&kw) {
                violations.push(Violation {
                    record: "draft".into(),
                    field: "keywords".into(),
                    rule: "present".into(),
                    message: format!("{kw:?} does not appear"),
                });
            }
        }
        // Originality: share of the draft's 8-word shingles not found in the sources given.
        let sources: Vec<String> = ctx
            .input
            .get("sources")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(value_text).collect())
            .unwrap_or_default();
        let shingles = |t: &str| -> BTreeSet<String> {
            let w: Vec<String> = crate::text::words(t).collect();
            w.windows(8).map(|s| s.join(" ")).collect()
        };
        let mine = shingles(&draft);
        let theirs: BTreeSet<String> = sources.iter().flat_map(|s| shingles(s)).collect();
        let copied = mine.intersection(&theirs).count();
        let originality = if mine.is_empty() {
            100.0
        } else {
            100.0 * (1.0 - copied as f64 / mine.len() as f64)
        };
        extra.insert(
            "originality_percent".into(),
            json!(crate::text::round2(originality)),
        );
        checked += 1;
    } else {
        return Err(AutomationError::bad(
            "no rules: give `rules` in the input or the item, or run this processor for a pack that defines them",
        ));
    }

    let mut out = json!({
        "valid": violations.is_empty(),
        "checked": checked,
        "errors": violations.iter().map(Violation::to_json).collect::<Vec<_>>(),
    });
    for (k, v) in extra {
        out[k] = v;
    }
    Ok(out)
}

fn record_name(record: &Value, i: usize) -> String {
    ["record_id", "id", "application_number"]
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| i.to_string())
}

/// The patterns of the field types, compiled once each (a validation job checks every field of
/// every record against them).
static DATE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static EMAIL: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static PHONE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static E164: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static PIN_CODE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
static ZIP_CODE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();

fn type_pattern(cell: &'static std::sync::OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("the field type patterns are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits() {
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(!luhn_valid("4111 1111 1111 1112"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("DE89370400440532013000"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(
            gstin_valid("06AABCO6063D1ZQ"),
            "OYO's GSTIN from a real invoice"
        );
        assert!(gstin_valid("27AAPFU0939F1ZV"));
        assert!(!gstin_valid("27AAPFU0939F1ZW"));
        assert!(pan_valid("AHKPI4471Q"));
        assert!(!pan_valid("AHKXI4471Q"), "X is no holder status");
        assert!(isbn_valid("9780199481231"), "the data-conversion example");
        assert!(isbn_valid("978-0-306-40615-7"));
        assert!(!isbn_valid("978-0-306-40615-8"));
        assert!(isbn_valid("0-306-40615-2"));
        assert!(verhoeff_valid("2363"));
        assert!(!verhoeff_valid("2364"));
        assert!(ifsc_valid("HDFC0001234"));
        assert!(!ifsc_valid("HDFC1001234"));
    }

    #[test]
    fn rules_name_field_and_rule() {
        let rules = vec![
            json!({"field": "pin_code", "type": "pin_code", "required": true}),
            json!({"field": "customer_name", "type": "text", "max_length": 10, "required": true}),
            json!({"field": "purchase_date", "type": "date"}),
            json!({"field": "pan"}),
            json!({"field": "qty", "type": "integer", "min": 1, "max": 5}),
            json!({"field": "size", "choices": ["S", "M", "L"]}),
        ];
        let record = json!({"pin_code": "041103", "customer_name": "Venkataraman Subramanian",
            "purchase_date": "2026-02-30", "pan": "AHKXI4471Q", "qty": 9, "size": "XL"});
        let v = check_record("r1", &record, &rules);
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|v| (v.field.as_str(), v.rule.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("pin_code", "type"),
                ("customer_name", "max_length"),
                ("purchase_date", "type"),
                ("pan", "checksum"),
                ("qty", "max"),
                ("size", "choices"),
            ]
        );
        let missing = check_record("r2", &json!({}), &rules);
        assert_eq!(missing.len(), 2, "two required fields");
    }

    #[test]
    fn data_entry_keyings_are_compared() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .by_id(&pack_id("data_entry"))
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let first = json!([{"serial_number": "SN0001", "purchase_date": "2026-03-01", "customer_name": "Asha", "pin_code": "411038"},
                           {"serial_number": "SN0002", "purchase_date": "2026-03-02", "customer_name": "Ravi", "pin_code": "560001"}]);
        let second = json!([{"serial_number": "SN0001", "purchase_date": "2026-03-01", "customer_name": "Asha", "pin_code": "411038"},
                            {"serial_number": "SN0O02", "purchase_date": "2026-03-02", "customer_name": "Ravi", "pin_code": "56001"}]);
        let out = automation
            .run("validate_rules", &json!({"item": item, "outputs": {"first_keying": {"records": first}, "second_keying": {"records": second}}}))
            .unwrap();
        assert_eq!(out["mismatches"].as_array().unwrap().len(), 2, "{out}");
        assert_eq!(out["valid"], false);
        assert_eq!(out["errors"][0]["field"], "pin_code");
        assert_eq!(out["errors"][0]["record"], "1");
    }

    #[test]
    fn telemarketing_scrubs_against_the_list() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .by_id(&pack_id("telemarketing"))
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let out = automation
            .run(
                "validate_rules",
                &json!({"item": item, "do_not_call": ["+44 1632 960417"]}),
            )
            .unwrap();
        assert_eq!(out["callable"], false);
        assert_eq!(out["errors"][0]["rule"], "do_not_call");
        let out = automation
            .run(
                "validate_rules",
                &json!({"item": item, "do_not_call": ["+441632960000"]}),
            )
            .unwrap();
        assert_eq!(out["callable"], true);
    }

    #[test]
    fn no_rules_is_a_clear_error() {
        let automation = crate::Automation::new(crate::Config::default());
        let err = automation
            .run("validate_rules", &json!({"item": {"x": 1}}))
            .unwrap_err();
        assert!(err.to_string().contains("no rules"), "{err}");
    }

    pub(crate) fn pack_id(line: &str) -> String {
        karya_packs::builtin()
            .unwrap()
            .packs()
            .iter()
            .find(|p| p.pack.service_line.code() == line)
            .unwrap()
            .pack
            .id
            .clone()
    }
}
