//! `index`: index terms and metadata per document, and the load file a document management
//! system imports.
//!
//! Documents come from the latest earlier output with `documents` (the verified index of the
//! scanning pack, or the automatic one), their text from the OCR output. Each document gets its
//! keyword terms (tf-idf over the batch's documents, top 20), its index fields as metadata, and
//! a row in a CSV load file (`path`, `document_type`, pages, then one column per index field).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::extract::value_text;
use crate::text::terms;
use crate::{AutomationError, Context, Result};

/// The `k` terms of each text with the highest tf-idf within the set.
pub fn keywords(texts: &[String], k: usize) -> Vec<Vec<(String, f64)>> {
    let docs: Vec<Vec<String>> = texts.iter().map(|t| terms(t)).collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for d in &docs {
        for t in d.iter().map(String::as_str).collect::<HashSet<_>>() {
            *df.entry(t).or_default() += 1;
        }
    }
    let n = docs.len() as f64;
    docs.iter()
        .map(|d| {
            let mut tf: BTreeMap<&str, f64> = BTreeMap::new();
            for t in d {
                // Numbers and one-letter fragments are not keywords.
                if t.chars().any(|c| c.is_alphabetic()) && t.chars().count() > 2 {
                    *tf.entry(t).or_default() += 1.0;
                }
            }
            let mut scored: Vec<(String, f64)> = tf
                .into_iter()
                .map(|(t, f)| {
                    (
                        t.to_string(),
                        f * ((1.0 + n) / (1.0 + df[t] as f64)).ln().max(0.0) + f * 1e-6,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(k);
            scored
        })
        .collect()
}

/// An index field's value: extracted fields are `{value, confidence}`, keyed ones plain.
fn plain(v: &Value) -> Value {
    v.get("value").cloned().unwrap_or_else(|| v.clone())
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let docs = ctx
        .latest_output_with("documents")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| AutomationError::bad("no documents in the earlier outputs to index"))?;
    // Page texts from the OCR output, if any.
    let pages: Vec<String> = ctx
        .outputs()
        .into_iter()
        .filter_map(|(_, o)| {
            o.get("documents")
                .and_then(Value::as_array)
                .filter(|d| d.iter().any(|x| x.get("text").is_some()))
                .cloned()
        })
        .next_back()
        .map(|d| {
            d.iter()
                .filter_map(|x| x.get("text").and_then(Value::as_str))
                .flat_map(|t| t.split('\u{c}').map(str::to_string).collect::<Vec<_>>())
                .collect()
        })
        .unwrap_or_default();
    let texts: Vec<String> = docs
        .iter()
        .map(|d| {
            let first = d
                .get("first_page")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1) as usize;
            let last = d
                .get("last_page")
                .and_then(Value::as_u64)
                .unwrap_or(first as u64) as usize;
            let body = pages
                .get(first - 1..last.min(pages.len()))
                .map(|p| p.join("\n"))
                .unwrap_or_default();
            let index = d
                .get("index")
                .map(|i| {
                    i.as_object()
                        .map(|o| {
                            o.values()
                                .map(|v| value_text(&plain(v)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            format!(
                "{} {index}\n{body}",
                value_text(d.get("document_type").unwrap_or(&Value::Null)).replace('_', " ")
            )
        })
        .collect();
    let kw = keywords(&texts, 20);
    let field_names: Vec<String> = item
        .get("index_fields")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(|x| x.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_else(|| {
            let mut names: Vec<String> = Vec::new();
            for d in &docs {
                for k in d
                    .get("index")
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    if !names.contains(&k) {
                        names.push(k);
                    }
                }
            }
            names
        });
    let batch = item
        .get("batch_id")
        .map(value_text)
        .unwrap_or_else(|| "batch".into());
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    let mut entries = Vec::new();
    let mut missing = Vec::new();
    let required: HashSet<String> = item
        .get("index_fields")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter(|x| x.get("required").and_then(Value::as_bool) == Some(true))
                .filter_map(|x| x.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for (i, d) in docs.iter().enumerate() {
        let path = format!("{batch}/{:04}.pdf", i + 1);
        let mut metadata = Map::new();
        for name in &field_names {
            let v = d
                .pointer(&format!("/index/{name}"))
                .map(plain)
                .unwrap_or(Value::Null);
            if v.is_null() && required.contains(name) {
                missing.push(format!("{path}: {name} is required"));
            }
            metadata.insert(name.clone(), v);
        }
        let mut row = Map::new();
        row.insert("path".into(), json!(path));
        row.insert(
            "document_type".into(),
            d.get("document_type").cloned().unwrap_or(Value::Null),
        );
        row.insert(
            "first_page".into(),
            d.get("first_page").cloned().unwrap_or(Value::Null),
        );
        row.insert(
            "last_page".into(),
            d.get("last_page").cloned().unwrap_or(Value::Null),
        );
        for (k, v) in &metadata {
            row.insert(k.clone(), v.clone());
        }
        rows.push(row);
        entries.push(json!({
            "path": path,
            "document_type": d.get("document_type"),
            "metadata": metadata,
            "terms": kw[i].iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        }));
    }
    let mut cols: Vec<String> = ["path", "document_type", "first_page", "last_page"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    cols.extend(field_names.iter().cloned());
    let load_file = crate::convert::render_with(&rows, &cols, "csv", &format!("{batch}-index"))?;
    Ok(json!({
        "batch_id": item.get("batch_id"),
        "documents": entries,
        "load_file": load_file,
        "missing_required": missing,
        "pages": pages.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_prefer_distinctive_terms() {
        let texts = vec![
            "appointment letter appointment terms salary employee".to_string(),
            "salary revision revised salary employee increment".to_string(),
            "nomination form provident fund nominee employee".to_string(),
        ];
        let kw = keywords(&texts, 3);
        assert_eq!(kw[0][0].0, "appoint");
        assert!(
            kw.iter().all(|k| k.iter().all(|(t, _)| t != "employee")),
            "common to all: {kw:?}"
        );
    }

    #[test]
    fn load_file_from_verified_documents() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .by_id("scan-ocr-index")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap();
        let input = json!({"item": item, "outputs": {
        "ocr": {"documents": [{"id": "d", "name": "b.pdf", "text": "APPOINTMENT LETTER Ramesh\u{c}page two\u{c}PF NOMINATION nominee Lakshmi"}]},
        "verification": {"documents": [
            {"document_type": "appointment_letter", "first_page": 1, "last_page": 2, "index": {"employee_code": "SPC-0117", "employee_name": "Ramesh Gowda", "document_date": "1998-06-01"}},
            {"document_type": "pf_nomination", "first_page": 3, "last_page": 3, "index": {"employee_code": {"value": "SPC-0117", "confidence": 0.8}, "employee_name": "Ramesh Gowda"}}
        ]}}});
        let out = automation.run("index", &input).unwrap();
        let csv = out["load_file"]["content"].as_str().unwrap();
        assert_eq!(
            csv.lines().next().unwrap(),
            "path,document_type,first_page,last_page,employee_code,employee_name,document_date"
        );
        assert_eq!(
            csv.lines().nth(2).unwrap(),
            "HR-BOX-0042/0002.pdf,pf_nomination,3,3,SPC-0117,Ramesh Gowda,"
        );
        assert_eq!(
            out["missing_required"],
            json!(["HR-BOX-0042/0002.pdf: document_date is required"])
        );
        assert!(
            out["documents"][1]["terms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "nominee"),
            "{out}"
        );
    }
}
