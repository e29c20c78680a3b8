//! `karya bench processors`: the quality of karya's processors on real documents.
//!
//! - OCR: character and word error rate of tesseract (as the `ocr` processor runs it) on the
//!   SROIE scanned receipts, against each receipt's line ground truth; seconds per receipt.
//! - Extraction: exact-match accuracy, precision, recall and F1 per field (company, date,
//!   total) on the receipts, both from the OCR text and from the true text (to separate OCR
//!   errors from extraction errors); and per field on the invoices (issuer, date, invoice
//!   number, total, currency, tax id) from their text layers.
//! - Prior-art search: recall@100, MAP and nDCG@10 over the prior-art judgments, for plain BM25
//!   and for karya's search (BM25 + date cut-off + IPC boost + pseudo-relevance feedback), in
//!   the same run; query latency as the median of `--runs` runs.
//!
//! The data is read from `--data` (never copied). The last output line is one JSON object.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};
use karya_automation::extract::{invoice_fields, Fields};
use karya_automation::prior_art::{self, Corpus, Options as SearchOptions, Query};
use karya_automation::text::{levenshtein, parse_date, parse_number};
use karya_automation::{ocr, tools, Config};
use serde_json::{json, Value};

pub struct Options {
    pub data: PathBuf,
    /// Receipts to OCR (0: all).
    pub limit: usize,
    /// Runs of the timed search; medians are reported.
    pub runs: usize,
    /// Skip OCR (extraction and search only).
    pub skip_ocr: bool,
    /// Tesseract page segmentation mode [default: the processor's].
    pub psm: Option<u32>,
}

/// The data directory: as given, else `../shared/data` beside the repository.
pub fn resolve_data(given: Option<PathBuf>) -> PathBuf {
    if let Some(p) = given {
        return p;
    }
    let relative = PathBuf::from("../shared/data");
    if relative.is_dir() {
        return relative;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// Collapses whitespace; the comparison keeps case and punctuation.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Exact-match counts of one field.
#[derive(Default, Debug, Clone, Copy)]
struct FieldScore {
    gold: usize,
    predicted: usize,
    correct: usize,
    documents: usize,
}

impl FieldScore {
    fn add(&mut self, gold: bool, predicted: bool, correct: bool) {
        self.documents += 1;
        self.gold += usize::from(gold);
        self.predicted += usize::from(predicted);
        self.correct += usize::from(correct);
    }

    fn json(&self) -> Value {
        let p = if self.predicted == 0 {
            0.0
        } else {
            self.correct as f64 / self.predicted as f64
        };
        let r = if self.gold == 0 {
            0.0
        } else {
            self.correct as f64 / self.gold as f64
        };
        let f1 = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        json!({
            "accuracy": round(self.correct as f64 / self.documents.max(1) as f64, 3),
            "precision": round(p, 3), "recall": round(r, 3), "f1": round(f1, 3),
            "documents": self.documents,
        })
    }
}

/// Upper-case letters and digits only: how names and ids are compared.
fn key(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

fn field_text(fields: &Fields, name: &str) -> Option<String> {
    fields.get(name).map(|f| match &f.value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn same_amount(a: Option<f64>, b: Option<f64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < 0.005)
}

fn receipt_date(raw: &str) -> Option<String> {
    parse_date(raw).or_else(|| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        if digits.len() == 8 {
            karya_automation::text::iso_date(
                digits[..4].parse().ok()?,
                digits[4..6].parse().ok()?,
                digits[6..].parse().ok()?,
            )
        } else {
            None
        }
    })
}

/// Scores receipt fields against a key file.
fn score_receipt(
    fields: &Fields,
    key_json: &Value,
    scores: &mut BTreeMap<&'static str, FieldScore>,
) {
    let gold = |k: &str| key_json.get(k).and_then(Value::as_str).map(str::to_string);
    let company = gold("company");
    let got = field_text(fields, "issuer");
    scores.entry("company").or_default().add(
        company.is_some(),
        got.is_some(),
        matches!((&company, &got), (Some(a), Some(b)) if key(a) == key(b)),
    );
    let date = gold("date").and_then(|d| receipt_date(&d));
    let got = field_text(fields, "date");
    scores.entry("date").or_default().add(
        date.is_some(),
        got.is_some(),
        date.is_some() && date == got,
    );
    let total = gold("total")
        .and_then(|t| parse_number(t.trim_start_matches(|c: char| !c.is_ascii_digit())));
    let got = fields.get("total").and_then(|f| f.value.as_f64());
    scores
        .entry("total")
        .or_default()
        .add(total.is_some(), got.is_some(), same_amount(total, got));
}

struct Receipt {
    name: String,
    image: PathBuf,
    truth_lines: Vec<String>,
    key: Value,
}

fn receipts(data: &Path, limit: usize) -> anyhow::Result<Vec<Receipt>> {
    let dir = data.join("receipts");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("img"))
        .with_context(|| format!("{}: no receipts/img", data.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg"))
        .map(|n| n.trim_end_matches(".jpg").to_string())
        .collect();
    names.sort();
    if limit > 0 {
        names.truncate(limit);
    }
    names
        .into_iter()
        .map(|name| {
            let boxes = std::fs::read_to_string(dir.join("box").join(format!("{name}.csv")))?;
            let truth_lines = boxes
                .lines()
                .filter_map(|l| {
                    // x1,y1,...,x4,y4,TEXT: the text is everything after the eighth comma.
                    let mut parts = l.splitn(9, ',');
                    for _ in 0..8 {
                        parts.next()?;
                    }
                    parts.next().map(|t| t.trim().to_string())
                })
                .filter(|t| !t.is_empty())
                .collect();
            let key: Value = serde_json::from_str(&std::fs::read_to_string(
                dir.join("key").join(format!("{name}.json")),
            )?)?;
            Ok(Receipt {
                image: dir.join("img").join(format!("{name}.jpg")),
                name,
                truth_lines,
                key,
            })
        })
        .collect()
}

/// Character and word edit distances of a hypothesis against a reference (whitespace
/// collapsed), and the reference's lengths.
fn errors(reference: &str, hypothesis: &str) -> (usize, usize, usize, usize) {
    let r: Vec<char> = squash(reference).chars().collect();
    let h: Vec<char> = squash(hypothesis).chars().collect();
    let rw: Vec<&str> = reference.split_whitespace().collect();
    let hw: Vec<&str> = hypothesis.split_whitespace().collect();
    (
        levenshtein(&r, &h),
        r.len(),
        levenshtein(&rw, &hw),
        rw.len(),
    )
}

/// Words of the hypothesis found in the reference, as multisets, whatever their order (the
/// SROIE text-recognition measure): matched, hypothesis words, reference words.
fn bag_of_words(reference: &str, hypothesis: &str) -> (usize, usize, usize) {
    let mut counts: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    let reference: Vec<&str> = reference.split_whitespace().collect();
    for w in &reference {
        *counts.entry(w).or_default() += 1;
    }
    let hypothesis: Vec<&str> = hypothesis.split_whitespace().collect();
    let mut matched = 0;
    for w in &hypothesis {
        if let Some(n) = counts.get_mut(w).filter(|n| **n > 0) {
            *n -= 1;
            matched += 1;
        }
    }
    (matched, hypothesis.len(), reference.len())
}

fn bench_receipts(
    config: &Config,
    data: &Path,
    limit: usize,
    skip_ocr: bool,
) -> anyhow::Result<Value> {
    let list = receipts(data, limit)?;
    let mut ocr_scores: BTreeMap<&'static str, FieldScore> = BTreeMap::new();
    let mut truth_scores: BTreeMap<&'static str, FieldScore> = BTreeMap::new();
    let (mut char_edits, mut chars, mut word_edits, mut words) = (0usize, 0usize, 0usize, 0usize);
    let mut per_receipt_cer = Vec::new();
    let (mut bag_matched, mut bag_hyp, mut bag_ref) = (0usize, 0usize, 0usize);
    let mut seconds = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let truth = r.truth_lines.join("\n");
        score_receipt(&invoice_fields(&truth), &r.key, &mut truth_scores);
        if skip_ocr {
            continue;
        }
        let started = Instant::now();
        let recognised =
            ocr::image(config, &r.image, "eng").with_context(|| format!("receipt {}", r.name))?;
        seconds.push(started.elapsed().as_secs_f64());
        let text = recognised.text();
        let (ce, cn, we, wn) = errors(&truth, &text);
        char_edits += ce;
        chars += cn;
        word_edits += we;
        words += wn;
        per_receipt_cer.push(ce as f64 / cn.max(1) as f64);
        let (bm, bh, br) = bag_of_words(&truth, &text);
        bag_matched += bm;
        bag_hyp += bh;
        bag_ref += br;
        score_receipt(&invoice_fields(&text), &r.key, &mut ocr_scores);
        if (i + 1) % 10 == 0 {
            eprintln!("  ocr: {} of {} receipts", i + 1, list.len());
        }
    }
    let fields = |s: &BTreeMap<&'static str, FieldScore>| -> Value {
        Value::Object(s.iter().map(|(k, v)| (k.to_string(), v.json())).collect())
    };
    let ocr = if skip_ocr {
        Value::Null
    } else {
        json!({
            "receipts": list.len(),
            "cer": round(char_edits as f64 / chars.max(1) as f64, 4),
            "wer": round(word_edits as f64 / words.max(1) as f64, 4),
            "median_receipt_cer": round(median(per_receipt_cer), 4),
            "word_precision": round(bag_matched as f64 / bag_hyp.max(1) as f64, 4),
            "word_recall": round(bag_matched as f64 / bag_ref.max(1) as f64, 4),
            "median_seconds_per_receipt": round(median(seconds), 3),
            "psm": config.ocr_psm,
        })
    };
    Ok(json!({
        "ocr": ocr,
        "extraction_from_ocr": if skip_ocr { Value::Null } else { fields(&ocr_scores) },
        "extraction_from_truth": fields(&truth_scores),
    }))
}

fn bench_invoices(config: &Config, data: &Path) -> anyhow::Result<Value> {
    let dir = data.join("invoices");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: no invoices", data.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    let mut scores: BTreeMap<&'static str, FieldScore> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    for name in &names {
        let gold: Value = serde_json::from_str::<Value>(&std::fs::read_to_string(
            dir.join(format!("{name}.json")),
        )?)?
        .get(0)
        .cloned()
        .unwrap_or(Value::Null);
        let source = ["pdf", "txt"]
            .iter()
            .map(|ext| dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists());
        let Some(source) = source else { continue };
        let media = if source.extension().is_some_and(|e| e == "pdf") {
            "application/pdf"
        } else {
            "text/plain"
        };
        let doc = tools::Document {
            id: name.clone(),
            name: source.file_name().unwrap().to_string_lossy().into_owned(),
            media_type: media.into(),
            sha256: None,
            path: Some(source.clone()),
        };
        let text = ocr::document(config, &doc, "eng")?.text();
        let f = invoice_fields(&text);
        let g = |k: &str| gold.get(k).filter(|v| !v.is_null());
        let mut check = |field: &'static str,
                         gold: Option<&Value>,
                         got: Option<String>,
                         same: &dyn Fn(&Value, &str) -> bool| {
            let correct = matches!((gold, &got), (Some(a), Some(b)) if same(a, b));
            if let (Some(want), false) = (gold, correct) {
                misses.push(format!(
                    "{name}.{field}: want {want} got {}",
                    got.as_deref().unwrap_or("-")
                ));
            }
            scores
                .entry(field)
                .or_default()
                .add(gold.is_some(), got.is_some(), correct);
        };
        let text_of = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // The issuer counts when the gold name is in the extracted one or the other way round.
        check("issuer", g("issuer"), field_text(&f, "issuer"), &|a, b| {
            let (a, b) = (key(&text_of(a)), key(b));
            !a.is_empty() && !b.is_empty() && (a.contains(&b) || b.contains(&a))
        });
        check("date", g("date"), field_text(&f, "date"), &|a, b| {
            text_of(a) == b
        });
        check(
            "invoice_number",
            g("invoice_number"),
            field_text(&f, "invoice_number"),
            &|a, b| key(&text_of(a)) == key(b),
        );
        check("total", g("amount"), field_text(&f, "total"), &|a, b| {
            same_amount(a.as_f64(), b.parse().ok())
        });
        check(
            "currency",
            g("currency"),
            field_text(&f, "currency"),
            &|a, b| text_of(a) == b,
        );
        let tax = g("vat").or_else(|| g("gstin"));
        check("tax_id", tax, field_text(&f, "tax_id"), &|a, b| {
            key(&text_of(a)).ends_with(&key(b)) || key(b).ends_with(&key(&text_of(a)))
        });
    }
    Ok(json!({
        "invoices": names.len(),
        "fields": Value::Object(scores.iter().map(|(k, v)| (k.to_string(), v.json())).collect()),
        "misses": misses,
    }))
}

fn bench_search(data: &Path, runs: usize) -> anyhow::Result<Value> {
    let dir = data.join("patents");
    let started = Instant::now();
    let corpus = Corpus::load(&dir.join("corpus")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index_seconds = started.elapsed().as_secs_f64();
    let qrels_text = std::fs::read_to_string(dir.join("prior-art-qrels.dev.tsv"))?;
    let mut qrels: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for line in qrels_text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 4 && cols[3] != "0" {
            qrels
                .entry(cols[0].to_string())
                .or_default()
                .insert(cols[2].to_string());
        }
    }
    let queries: Vec<(Query, &HashSet<String>)> = qrels
        .iter()
        .filter_map(|(q, rel)| {
            let r = corpus.get(q)?;
            Some((
                Query {
                    text: format!("{}\n{}", r.title, r.abstract_text),
                    cutoff: r.earliest_date().map(str::to_string),
                    ipc: r.ipc.clone(),
                    exclude: vec![r.number.clone(), r.application_number.clone()],
                },
                rel,
            ))
        })
        .collect();
    if queries.is_empty() {
        bail!("no query of the judgments is in the corpus");
    }
    let mut systems = serde_json::Map::new();
    for (name, options) in [
        ("bm25", SearchOptions::BASELINE),
        ("karya", SearchOptions::KARYA),
    ] {
        let mut recall = Vec::new();
        let mut ap = Vec::new();
        let mut ndcg = Vec::new();
        let mut run_medians = Vec::new();
        for run in 0..runs.max(1) {
            let mut latencies = Vec::new();
            for (query, relevant) in &queries {
                let t = Instant::now();
                let hits = corpus.search(query, options, 1000);
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                if run == 0 {
                    let ranking: Vec<String> = hits
                        .iter()
                        .map(|h| corpus.records[h.doc].number.clone())
                        .collect();
                    recall.push(prior_art::recall_at(&ranking, relevant, 100));
                    ap.push(prior_art::average_precision(&ranking, relevant));
                    ndcg.push(prior_art::ndcg_at(&ranking, relevant, 10));
                }
            }
            run_medians.push(median(latencies));
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        systems.insert(
            name.to_string(),
            json!({
                "recall_at_100": round(mean(&recall), 4),
                "map": round(mean(&ap), 4),
                "ndcg_at_10": round(mean(&ndcg), 4),
                "median_query_ms": round(median(run_medians), 2),
            }),
        );
    }
    Ok(json!({
        "corpus": corpus.records.len(),
        "queries": queries.len(),
        "judgments": qrels.values().map(HashSet::len).sum::<usize>(),
        "index_seconds": round(index_seconds, 2),
        "systems": systems,
    }))
}

fn print_fields(title: &str, fields: &Value) {
    println!("{title}");
    println!(
        "  {:<16} {:>8} {:>9} {:>7} {:>6}",
        "field", "accuracy", "precision", "recall", "f1"
    );
    if let Some(map) = fields.as_object() {
        for (k, v) in map {
            println!(
                "  {:<16} {:>8.3} {:>9.3} {:>7.3} {:>6.3}",
                k,
                v["accuracy"].as_f64().unwrap_or(0.0),
                v["precision"].as_f64().unwrap_or(0.0),
                v["recall"].as_f64().unwrap_or(0.0),
                v["f1"].as_f64().unwrap_or(0.0)
            );
        }
    }
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let data = &options.data;
    if !data.join("receipts").is_dir() || !data.join("patents").is_dir() {
        bail!(
            "{}: not the evaluation data directory (receipts/, invoices/, patents/); pass --data",
            data.display()
        );
    }
    let mut config = Config::default();
    if let Some(psm) = options.psm {
        config.ocr_psm = psm;
    }
    if !options.skip_ocr {
        tools::run(&config.tesseract, &["--version"], config.tool_timeout)
            .map_err(|e| anyhow::anyhow!("{e}; or pass --skip-ocr"))?;
    }
    let receipts = bench_receipts(&config, data, options.limit, options.skip_ocr)?;
    if !receipts["ocr"].is_null() {
        let o = &receipts["ocr"];
        println!(
            "ocr: {} SROIE receipts, CER {:.2} %, WER {:.2} % in reading order; words found regardless of order: precision {:.2} %, recall {:.2} % (median receipt CER {:.2} %), {:.2} s per receipt (median)",
            o["receipts"], o["cer"].as_f64().unwrap_or(0.0) * 100.0, o["wer"].as_f64().unwrap_or(0.0) * 100.0,
            o["word_precision"].as_f64().unwrap_or(0.0) * 100.0, o["word_recall"].as_f64().unwrap_or(0.0) * 100.0,
            o["median_receipt_cer"].as_f64().unwrap_or(0.0) * 100.0, o["median_seconds_per_receipt"].as_f64().unwrap_or(0.0)
        );
        print_fields(
            "receipt fields from OCR text (exact match):",
            &receipts["extraction_from_ocr"],
        );
    }
    print_fields(
        "receipt fields from the true text (exact match):",
        &receipts["extraction_from_truth"],
    );
    let invoices = bench_invoices(&config, data)?;
    print_fields(
        &format!(
            "invoice fields from text layers ({} invoices, exact match):",
            invoices["invoices"]
        ),
        &invoices["fields"],
    );
    let search = bench_search(data, options.runs)?;
    println!(
        "prior-art search: {} queries, {} judgments, {} records (indexed in {} s)",
        search["queries"], search["judgments"], search["corpus"], search["index_seconds"]
    );
    println!(
        "  {:<8} {:>12} {:>8} {:>10} {:>10}",
        "system", "recall@100", "MAP", "nDCG@10", "ms/query"
    );
    for name in ["bm25", "karya"] {
        let s = &search["systems"][name];
        println!(
            "  {:<8} {:>12.4} {:>8.4} {:>10.4} {:>10.2}",
            name,
            s["recall_at_100"].as_f64().unwrap_or(0.0),
            s["map"].as_f64().unwrap_or(0.0),
            s["ndcg_at_10"].as_f64().unwrap_or(0.0),
            s["median_query_ms"].as_f64().unwrap_or(0.0)
        );
    }
    let mut summary = json!({ "receipts": receipts, "invoices": invoices, "prior_art": search });
    // The misses are for reading, not for the JSON line's consumers.
    let misses = summary["invoices"]["misses"].take();
    for m in misses.as_array().into_iter().flatten() {
        eprintln!("  invoice miss: {}", m.as_str().unwrap_or(""));
    }
    if let Some(o) = summary["invoices"].as_object_mut() {
        o.remove("misses");
    }
    println!("{summary}");
    Ok(())
}
