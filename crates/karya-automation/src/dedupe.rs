//! `dedupe`: duplicate records and submissions.
//!
//! Each record gets a fingerprint of normalised fields (lower case, accents and punctuation
//! off, legal-form words such as "GmbH" or "Pvt Ltd" dropped, tokens sorted); equal
//! fingerprints are duplicates outright. Records whose fingerprints differ are compared by
//! Jaro-Winkler and trigram similarity of the name, and count as duplicates when the name is
//! close and no distinguishing field (country, website domain, date of birth, PAN) disagrees.
//! Web research de-duplicates the item's company list; form processing checks the applicant
//! against existing customers given in the input (`existing` or an earlier output's `records`).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::extract::value_text;
use crate::text::{jaro_winkler, trigram_similarity, words};
use crate::{AutomationError, Context, Result};

const LEGAL_FORMS: &[&str] = &[
    "gmbh",
    "ag",
    "kg",
    "co",
    "ltd",
    "limited",
    "llp",
    "llc",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "plc",
    "pvt",
    "private",
    "bv",
    "nv",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "sdn",
    "bhd",
    "berhad",
    "oy",
    "ab",
    "as",
    "the",
    "company",
    "und",
    "and",
    "europe",
];

fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ß' => 's',
        c => c,
    }
}

/// A name reduced to what tells it apart: folded, without legal forms, tokens sorted.
pub fn normalise_name(name: &str) -> String {
    let folded: String = name.to_lowercase().chars().map(fold).collect();
    // "B.V." and "S.A." are single legal-form tokens once their dots are dropped.
    let folded = folded.replace('.', "");
    let mut tokens: Vec<String> = words(&folded)
        .filter(|w| !LEGAL_FORMS.contains(&w.as_str()))
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens.join(" ")
}

/// The registrable part of a website address: `https://www.raumedic.com/de` → `raumedic.com`.
pub fn domain(url: &str) -> String {
    let s = url.trim().to_lowercase();
    let s = s.split("://").nth(1).unwrap_or(&s);
    let host = s.split(['/', '?', '#', ':']).next().unwrap_or("");
    host.trim_start_matches("www.").to_string()
}

/// A record to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    /// Fields that must agree when both are present (country, domain, date of birth, PAN).
    pub keys: Vec<(String, String)>,
}

impl Candidate {
    pub fn fingerprint(&self) -> String {
        let mut parts = vec![normalise_name(&self.name)];
        parts.extend(self.keys.iter().map(|(k, v)| format!("{k}={v}")));
        parts.join("|")
    }
}

/// A pair judged duplicate: the later record, the earlier one it duplicates, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub id: String,
    pub duplicate_of: String,
    pub score: f64,
    pub reason: String,
}

pub const NAME_THRESHOLD: f64 = 0.92;

fn conflicts(a: &Candidate, b: &Candidate) -> Option<String> {
    for (k, v) in &a.keys {
        if let Some((_, w)) = b.keys.iter().find(|(bk, _)| bk == k) {
            if v != w {
                return Some(k.clone());
            }
        }
    }
    None
}

fn agrees_on_a_key(a: &Candidate, b: &Candidate) -> bool {
    a.keys.iter().any(|(k, v)| {
        b.keys
            .iter()
            .any(|(bk, w)| bk == k && v == w && k != "country")
    })
}

/// Duplicates within `records` (each against the earlier ones), and those against `existing`.
pub fn find(records: &[Candidate], existing: &[Candidate]) -> Vec<Duplicate> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for c in existing {
        seen.entry(c.fingerprint()).or_insert(c.id.clone());
    }
    let mut earlier: Vec<&Candidate> = existing.iter().collect();
    for r in records {
        let fp = r.fingerprint();
        if let Some(first) = seen.get(&fp) {
            out.push(Duplicate {
                id: r.id.clone(),
                duplicate_of: first.clone(),
                score: 1.0,
                reason: "same normalised fields".into(),
            });
            continue;
        }
        let name = normalise_name(&r.name);
        let mut best: Option<(f64, &Candidate, String)> = None;
        for e in &earlier {
            if conflicts(r, e).is_some() {
                continue;
            }
            // A shared website or PAN identifies the same company or person whatever the name.
            let same_id = r.keys.iter().find(|(k, v)| {
                (k == "domain" || k == "pan") && e.keys.iter().any(|(ek, ev)| ek == k && ev == v)
            });
            let other = normalise_name(&e.name);
            let (score, reason) = match same_id {
                Some((k, _)) => (1.0, format!("same {k}")),
                None => {
                    let s = jaro_winkler(&name, &other).max(trigram_similarity(&name, &other));
                    (s, format!("names alike ({s:.2})"))
                }
            };
            // A shared birth date makes a weaker name match enough.
            let threshold = if agrees_on_a_key(r, e) {
                0.8
            } else {
                NAME_THRESHOLD
            };
            if score >= threshold && best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, e, reason));
            }
        }
        if let Some((score, e, reason)) = best {
            out.push(Duplicate {
                id: r.id.clone(),
                duplicate_of: e.id.clone(),
                score: (score * 1000.0).round() / 1000.0,
                reason,
            });
        } else {
            seen.insert(fp, r.id.clone());
            earlier.push(r);
        }
    }
    out
}

fn company(v: &Value, i: usize) -> Candidate {
    let mut keys = Vec::new();
    if let Some(c) = v.get("country").and_then(Value::as_str) {
        keys.push(("country".into(), c.to_uppercase()));
    }
    if let Some(w) = v
        .get("known_website")
        .or_else(|| v.get("website"))
        .and_then(Value::as_str)
    {
        keys.push(("domain".into(), domain(w)));
    }
    Candidate {
        id: v
            .get("record_id")
            .map(value_text)
            .unwrap_or_else(|| i.to_string()),
        name: v
            .get("company_name")
            .or_else(|| v.get("name"))
            .map(value_text)
            .unwrap_or_default(),
        keys,
    }
}

fn person(v: &Value, id: String) -> Candidate {
    let mut keys = Vec::new();
    for k in ["date_of_birth", "pan"] {
        if let Some(x) = v.get(k).and_then(Value::as_str) {
            keys.push((k.to_string(), x.to_uppercase()));
        }
    }
    Candidate {
        id,
        name: v.get("name").map(value_text).unwrap_or_default(),
        keys,
    }
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let existing_list = ctx
        .input
        .get("existing")
        .or_else(|| ctx.latest_output_with("existing"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ctx.service_line() == Some("form_processing") {
        let declared = item.get("declared").cloned().unwrap_or(json!({}));
        let me = person(
            &declared,
            item.get("application_number")
                .map(value_text)
                .unwrap_or_default(),
        );
        let existing: Vec<Candidate> = existing_list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                person(
                    e,
                    e.get("customer_id")
                        .map(value_text)
                        .unwrap_or_else(|| i.to_string()),
                )
            })
            .collect();
        let found = find(std::slice::from_ref(&me), &existing);
        return Ok(json!({
            "application_number": item.get("application_number"),
            "checked_against": existing.len(),
            "duplicate_of": found.first().map(|d| d.duplicate_of.clone()),
            "matches": found.iter().map(|d| json!({"customer_id": d.duplicate_of, "score": d.score, "reason": d.reason})).collect::<Vec<_>>(),
        }));
    }
    let records = ctx
        .latest_output_with("records")
        .or_else(|| item.get("records"))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| {
            AutomationError::bad("no records to de-duplicate (item or earlier output `records`)")
        })?;
    let candidates: Vec<Candidate> = records
        .iter()
        .enumerate()
        .map(|(i, r)| company(r, i))
        .collect();
    let existing: Vec<Candidate> = existing_list
        .iter()
        .enumerate()
        .map(|(i, r)| company(r, i))
        .collect();
    let found = find(&candidates, &existing);
    let dup_ids: std::collections::HashSet<&str> = found.iter().map(|d| d.id.as_str()).collect();
    // Records are handed on with status `duplicate` where they are one.
    let marked: Vec<Value> = records
        .iter()
        .zip(&candidates)
        .map(|(r, c)| {
            let mut r = r.clone();
            if dup_ids.contains(c.id.as_str()) {
                r["status"] = json!("duplicate");
            }
            r
        })
        .collect();
    Ok(json!({
        "records": marked,
        "duplicates": found.iter().map(|d| json!({"record_id": d.id, "duplicate_of": d.duplicate_of, "score": d.score, "reason": d.reason})).collect::<Vec<_>>(),
        "unique": records.len() - found.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(
            normalise_name("Freudenberg Medical Europe GmbH"),
            "freudenberg medical"
        );
        assert_eq!(normalise_name("RAUMEDIC AG"), normalise_name("Raumedic"));
        assert_eq!(
            normalise_name("Müller Präzision GmbH & Co. KG"),
            "muller prazision"
        );
        assert_eq!(normalise_name("Coolblue B.V."), "coolblue");
        assert_eq!(domain("https://www.raumedic.com/de/home"), "raumedic.com");
    }

    #[test]
    fn company_duplicates_in_a_list() {
        let records = json!([
            {"record_id": "R1", "company_name": "Raumedic AG", "country": "DE", "known_website": "https://www.raumedic.com"},
            {"record_id": "R2", "company_name": "Freudenberg Medical Europe GmbH", "country": "DE"},
            {"record_id": "R3", "company_name": "RAUMEDIC", "country": "DE"},
            {"record_id": "R4", "company_name": "Freudenberg Medicall GmbH", "country": "DE"},
            {"record_id": "R5", "company_name": "Raumedic Inc", "country": "US"},
            {"record_id": "R6", "company_name": "Rau Medical Devices", "country": "DE", "known_website": "http://raumedic.com"},
            {"record_id": "R7", "company_name": "Vention Medical", "country": "DE"}
        ]);
        let cands: Vec<Candidate> = records
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, r)| company(r, i))
            .collect();
        let found = find(&cands, &[]);
        let pairs: Vec<(&str, &str)> = found
            .iter()
            .map(|d| (d.id.as_str(), d.duplicate_of.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![("R3", "R1"), ("R4", "R2"), ("R6", "R1")],
            "{found:?}"
        );
    }

    #[test]
    fn an_applicant_against_existing_customers() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .packs()
                .iter()
                .find(|p| p.pack.service_line.code() == "form_processing")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let existing = json!([
            {"customer_id": "C-1", "name": "Meera Iyer", "date_of_birth": "1990-01-01"},
            {"customer_id": "C-2", "name": "MEERA  IYER.", "date_of_birth": "1994-04-17", "pan": "AHKPI4471Q"},
        ]);
        let out = automation
            .run("dedupe", &json!({"item": item, "existing": existing}))
            .unwrap();
        assert_eq!(out["duplicate_of"], "C-2", "{out}");
        let out = automation
            .run("dedupe", &json!({"item": item, "existing": []}))
            .unwrap();
        assert_eq!(out["duplicate_of"], Value::Null);
    }
}
