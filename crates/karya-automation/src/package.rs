//! `package`: the deliverable, assembled from the steps' outputs per the pack's `[deliverable]`.
//!
//! Each deliverable field takes the value of the latest step that produced it (later steps
//! correct earlier ones), else the item's own value. The deliverable's data is checked against
//! the pack's output form; the files are listed with their names resolved (`{external_ref}`,
//! `{work_item_id}` from the input) and matched to the item's documents or to files earlier
//! steps produced. A missing required field or file is reported, not invented.

use serde_json::{json, Map, Value};

use crate::extract::value_text;
use crate::{AutomationError, Context, Result};

fn resolve(name: &str, input: &Value) -> String {
    let item = input.get("item").unwrap_or(&Value::Null);
    let external = input
        .get("external_ref")
        .or_else(|| item.get("external_ref"))
        .map(value_text)
        .or_else(|| {
            [
                "client_docket",
                "claim_number",
                "batch_id",
                "job_id",
                "ticket_number",
                "application_number",
                "establishment_code",
                "project_code",
            ]
            .iter()
            .find_map(|k| item.get(*k).map(value_text))
        })
        .unwrap_or_else(|| "deliverable".into());
    let id = input
        .get("work_item_id")
        .map(value_text)
        .unwrap_or_default();
    let safe = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    name.replace("{external_ref}", &safe(&external))
        .replace("{work_item_id}", &safe(&id))
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let pack = ctx.pack.ok_or_else(|| {
        AutomationError::bad("the pack is unknown: give `pack` in the input or an item that matches a pack's input form")
    })?;
    let shape = &pack.pack.deliverable;
    let outputs = ctx.outputs();
    let mut data = Map::new();
    let mut sources = Map::new();
    for field in &shape.fields {
        let from_step = outputs
            .iter()
            .rev()
            .find_map(|(step, out)| out.get(field).map(|v| (*step, v)));
        match from_step {
            Some((step, v)) => {
                data.insert(field.clone(), v.clone());
                sources.insert(field.clone(), json!(step));
            }
            None => {
                if let Some(v) = ctx.item().get(field) {
                    data.insert(field.clone(), v.clone());
                    sources.insert(field.clone(), json!("item"));
                }
            }
        }
    }
    let missing_fields: Vec<&String> = shape
        .fields
        .iter()
        .filter(|f| !data.contains_key(*f))
        .collect();
    let problems: Vec<Value> = match pack.validate_output(&Value::Object(data.clone()).to_string())
    {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| json!({"path": e.path, "problem": e.problem}))
            .collect(),
    };
    // Files: an attached document or a file an earlier step produced, by resolved name.
    let documents = ctx.documents()?;
    let produced: Vec<&Value> = outputs
        .iter()
        .filter_map(|(_, o)| o.get("files").and_then(Value::as_array))
        .flatten()
        .collect();
    let mut files = Vec::new();
    let mut missing_files = Vec::new();
    for f in &shape.files {
        let name = resolve(&f.name, ctx.input);
        let document = documents.iter().find(|d| d.name == name);
        let made = produced
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()));
        let source = match (document, made) {
            (Some(d), _) => json!({"document_id": d.id, "sha256": d.sha256}),
            (None, Some(p)) => json!({"produced": true, "bytes": p.get("bytes")}),
            (None, None) => Value::Null,
        };
        if source.is_null() && f.required {
            missing_files.push(name.clone());
        }
        files.push(json!({
            "name": name, "media_type": f.media_type, "description": f.description,
            "required": f.required, "source": source,
        }));
    }
    let complete = missing_fields.is_empty() && problems.is_empty() && missing_files.is_empty();
    Ok(json!({
        "pack": pack.pack.id,
        "complete": complete,
        "deliverable": Value::Object(data),
        "sources": sources,
        "files": files,
        "missing_fields": missing_fields,
        "missing_files": missing_files,
        "problems": problems,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_item() -> Value {
        serde_json::from_str(
            &karya_packs::builtin()
                .unwrap()
                .packs()
                .iter()
                .find(|p| p.pack.service_line.code() == "ip_research")
                .unwrap()
                .pack
                .examples[0]
                .input,
        )
        .unwrap()
    }

    #[test]
    fn later_steps_win_and_missing_parts_are_reported() {
        let automation = crate::Automation::new(crate::Config::default());
        let input = json!({
            "item": ip_item(),
            "outputs": {
                "search": {"references": [{"publication_number": "US1", "category": "A", "relevant_claims": []}]},
                "analysis": {"references": [{"publication_number": "US1", "category": "X", "relevant_claims": [1]}], "risk_rating": "high"},
                "report_drafting": {"conclusion": "Claim 1 lacks novelty over US1.", "claim_chart": []}
            },
            "documents": [{"id": "d1", "name": "ACME-2026-0147-US-search-report.pdf", "media_type": "application/pdf", "sha256": "ab"}]
        });
        let out = automation.run("package", &input).unwrap();
        assert_eq!(
            out["deliverable"]["references"][0]["category"], "X",
            "{out}"
        );
        assert_eq!(out["sources"]["references"], "analysis");
        assert_eq!(out["deliverable"]["search_type"], "novelty");
        assert_eq!(out["sources"]["search_type"], "item");
        assert_eq!(out["missing_fields"], json!([]));
        let files = out["files"].as_array().unwrap();
        assert!(
            files
                .iter()
                .all(|f| f["name"].as_str().unwrap().starts_with("ACME-2026-0147-US")),
            "{files:?}"
        );
        assert_eq!(
            out["complete"],
            out["missing_files"].as_array().unwrap().is_empty()
        );
    }

    #[test]
    fn bad_data_is_reported_not_delivered_silently() {
        let automation = crate::Automation::new(crate::Config::default());
        let input =
            json!({"item": ip_item(), "outputs": {"analysis": {"risk_rating": "catastrophic"}}});
        let out = automation.run("package", &input).unwrap();
        assert_eq!(out["complete"], false);
        assert!(
            out["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["path"] == "/risk_rating"),
            "{out}"
        );
        assert!(out["missing_fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "conclusion"));
    }

    #[test]
    fn no_pack_no_package() {
        let automation = crate::Automation::new(crate::Config::default());
        let err = automation
            .run("package", &json!({"item": {"x": 1}}))
            .unwrap_err();
        assert!(err.to_string().contains("pack is unknown"), "{err}");
    }
}
