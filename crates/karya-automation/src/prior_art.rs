//! `prior_art_search`: ranked prior art from a patent corpus.
//!
//! The corpus is a directory of flat XML records (`<str name="Title">...</str>`), loaded once
//! and indexed with BM25 over title and abstract (title terms counted twice). A search by
//! karya adds to plain BM25:
//! - a date cut-off: only documents filed (earliest priority or application date) before the
//!   priority date searched; those published on or after it are category `E`;
//! - an IPC boost for documents sharing the searched subclass or main group;
//! - one round of pseudo-relevance feedback: the terms that best mark the top documents are
//!   added to the query with a lower weight (RM3-style).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::{json, Value};

use crate::text::terms;
use crate::{AutomationError, Context, Result};

/// One patent record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub number: String,
    pub application_number: String,
    pub title: String,
    pub abstract_text: String,
    /// IPC codes without spaces, e.g. `H01M10/613`.
    pub ipc: Vec<String>,
    pub application_date: Option<String>,
    pub priority_date: Option<String>,
    pub publication_date: Option<String>,
}

impl Record {
    /// The earliest filing date: priority or application, whichever is first.
    pub fn earliest_date(&self) -> Option<&str> {
        [
            self.priority_date.as_deref(),
            self.application_date.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|d| d.len() == 10)
        .min()
    }
}

/// The text of `<str name="NAME">` in a flat record.
fn field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<str name=\"{name}\">");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find("</str>")? + start;
    let raw = xml[start..end].trim();
    let text = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub fn normalise_ipc(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Subclass (`H01M`) and main group (`H01M10`) of an IPC code.
pub fn ipc_parts(code: &str) -> (String, String) {
    let code = normalise_ipc(code);
    let subclass: String = code.chars().take(4).collect();
    let group = code.split('/').next().unwrap_or(&code).to_string();
    (subclass, group)
}

pub fn parse_record(xml: &str) -> Option<Record> {
    let number = field(xml, "Patent Number")?;
    Some(Record {
        application_number: field(xml, "Application Number").unwrap_or_default(),
        title: field(xml, "Title").unwrap_or_default(),
        abstract_text: field(xml, "Abstract").unwrap_or_default(),
        ipc: field(xml, "All IPC")
            .map(|s| {
                s.split('|')
                    .map(normalise_ipc)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        application_date: field(xml, "Application Date"),
        priority_date: field(xml, "Priority Date"),
        publication_date: field(xml, "Publication Date"),
        number,
    })
}

/// A BM25 index over documents' term lists.
#[derive(Debug, Default)]
pub struct Bm25 {
    postings: HashMap<String, Vec<(u32, f32)>>,
    doc_len: Vec<f32>,
    avg_len: f32,
    pub k1: f32,
    pub b: f32,
}

impl Bm25 {
    pub fn build(docs: &[Vec<String>]) -> Self {
        let mut postings: HashMap<String, Vec<(u32, f32)>> = HashMap::new();
        let mut doc_len = Vec::with_capacity(docs.len());
        for (i, terms) in docs.iter().enumerate() {
            let mut tf: HashMap<&str, f32> = HashMap::new();
            for t in terms {
                *tf.entry(t).or_default() += 1.0;
            }
            for (t, n) in tf {
                postings
                    .entry(t.to_string())
                    .or_default()
                    .push((i as u32, n));
            }
            doc_len.push(terms.len() as f32);
        }
        let avg_len = doc_len.iter().sum::<f32>() / doc_len.len().max(1) as f32;
        Bm25 {
            postings,
            doc_len,
            avg_len: avg_len.max(1.0),
            k1: 1.2,
            b: 0.75,
        }
    }

    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    pub fn idf(&self, term: &str) -> f32 {
        let n = self.len() as f32;
        let df = self.postings.get(term).map_or(0, Vec::len) as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Scores of every document matching a weighted query.
    pub fn scores(&self, query: &[(String, f32)]) -> HashMap<u32, f32> {
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for (term, weight) in query {
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let idf = self.idf(term);
            for &(doc, tf) in list {
                let norm = 1.0 - self.b + self.b * self.doc_len[doc as usize] / self.avg_len;
                let s = idf * tf * (self.k1 + 1.0) / (tf + self.k1 * norm);
                *scores.entry(doc).or_default() += weight * s;
            }
        }
        scores
    }
}

/// The corpus and its index.
#[derive(Debug)]
pub struct Corpus {
    pub records: Vec<Record>,
    pub index: Bm25,
    /// Each document's terms (for feedback and claim matching).
    doc_terms: Vec<Vec<String>>,
    by_number: HashMap<String, usize>,
    pub source: String,
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub date_cutoff: bool,
    /// Multiplier added for a shared subclass, and again for a shared main group.
    pub ipc_subclass_boost: f32,
    pub ipc_group_boost: f32,
    /// Pseudo-relevance feedback: documents and terms taken, and the weight of added terms.
    pub feedback_docs: usize,
    pub feedback_terms: usize,
    pub feedback_weight: f32,
}

impl Options {
    /// Plain BM25: no cut-off, no boost, no feedback.
    pub const BASELINE: Options = Options {
        date_cutoff: false,
        ipc_subclass_boost: 0.0,
        ipc_group_boost: 0.0,
        feedback_docs: 0,
        feedback_terms: 0,
        feedback_weight: 0.0,
    };
    /// What the processor uses.
    pub const KARYA: Options = Options {
        date_cutoff: true,
        ipc_subclass_boost: 0.10,
        ipc_group_boost: 0.10,
        feedback_docs: 8,
        feedback_terms: 20,
        feedback_weight: 0.3,
    };
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: String,
    /// Only documents filed before this ISO date count (with `Options::date_cutoff`).
    pub cutoff: Option<String>,
    pub ipc: Vec<String>,
    /// Publication or application numbers never returned (the patent searched from).
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub doc: usize,
    pub score: f32,
}

impl Corpus {
    pub fn load(dir: &Path) -> Result<Corpus> {
        let entries = std::fs::read_dir(dir).map_err(|e| AutomationError::file(dir, e))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        paths.sort();
        let mut records = Vec::with_capacity(paths.len());
        for path in &paths {
            let xml = std::fs::read_to_string(path).map_err(|e| AutomationError::file(path, e))?;
            if let Some(r) = parse_record(&xml) {
                records.push(r);
            }
        }
        if records.is_empty() {
            return Err(AutomationError::file(
                dir,
                "no patent records (*.xml) found",
            ));
        }
        Ok(Corpus::from_records(records, &dir.display().to_string()))
    }

    pub fn from_records(records: Vec<Record>, source: &str) -> Corpus {
        let doc_terms: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                let mut t = terms(&r.title);
                t.extend(terms(&r.title));
                t.extend(terms(&r.abstract_text));
                t
            })
            .collect();
        let index = Bm25::build(&doc_terms);
        let by_number = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.number.clone(), i))
            .collect();
        Corpus {
            records,
            index,
            doc_terms,
            by_number,
            source: source.to_string(),
        }
    }

    pub fn get(&self, number: &str) -> Option<&Record> {
        self.by_number.get(number).map(|&i| &self.records[i])
    }

    /// Ranked documents for a query, best first, at most `k`.
    pub fn search(&self, query: &Query, options: Options, k: usize) -> Vec<Hit> {
        let mut weights: BTreeMap<String, f32> = BTreeMap::new();
        for t in terms(&query.text) {
            *weights.entry(t).or_default() += 1.0;
        }
        let q: Vec<(String, f32)> = weights.into_iter().collect();
        let excluded: HashSet<&str> = query.exclude.iter().map(String::as_str).collect();
        let allowed = |doc: usize| -> bool {
            let r = &self.records[doc];
            if excluded.contains(r.number.as_str())
                || (!r.application_number.is_empty()
                    && excluded.contains(r.application_number.as_str()))
            {
                return false;
            }
            if options.date_cutoff {
                if let (Some(cut), Some(date)) = (query.cutoff.as_deref(), r.earliest_date()) {
                    return date < cut;
                }
            }
            true
        };
        let wanted: Vec<(String, String)> = query.ipc.iter().map(|c| ipc_parts(c)).collect();
        let boost = |doc: usize| -> f32 {
            if wanted.is_empty() {
                return 1.0;
            }
            let parts: Vec<(String, String)> =
                self.records[doc].ipc.iter().map(|c| ipc_parts(c)).collect();
            let sub = wanted
                .iter()
                .any(|(s, _)| parts.iter().any(|(ps, _)| ps == s));
            let group = wanted
                .iter()
                .any(|(_, g)| parts.iter().any(|(_, pg)| pg == g));
            1.0 + options.ipc_subclass_boost * f32::from(u8::from(sub))
                + options.ipc_group_boost * f32::from(u8::from(group))
        };
        let rank = |q: &[(String, f32)]| -> Vec<Hit> {
            let mut hits: Vec<Hit> = self
                .index
                .scores(q)
                .into_iter()
                .filter(|(doc, _)| allowed(*doc as usize))
                .map(|(doc, s)| Hit {
                    doc: doc as usize,
                    score: s * boost(doc as usize),
                })
                .collect();
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
            hits
        };
        let mut hits = rank(&q);
        if options.feedback_docs > 0 && !hits.is_empty() {
            // Terms weighted by their share in the top documents × idf, then normalised.
            let mut scores: HashMap<&str, f32> = HashMap::new();
            let top = &hits[..hits.len().min(options.feedback_docs)];
            let max_score = top[0].score.max(f32::EPSILON);
            for hit in top {
                let terms = &self.doc_terms[hit.doc];
                let len = terms.len().max(1) as f32;
                for t in terms {
                    *scores.entry(t.as_str()).or_default() += hit.score / max_score / len;
                }
            }
            let mut expansion: Vec<(&str, f32)> = scores
                .into_iter()
                .map(|(t, s)| (t, s * self.index.idf(t)))
                .collect();
            expansion.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            expansion.truncate(options.feedback_terms);
            let top_weight = expansion.first().map_or(1.0, |e| e.1.max(f32::EPSILON));
            let mut expanded: BTreeMap<String, f32> = q.iter().cloned().collect();
            for (t, w) in expansion {
                *expanded.entry(t.to_string()).or_default() +=
                    options.feedback_weight * w / top_weight;
            }
            let eq: Vec<(String, f32)> = expanded.into_iter().collect();
            hits = rank(&eq);
        }
        hits.truncate(k);
        hits
    }

    pub fn doc_terms(&self, doc: usize) -> &[String] {
        &self.doc_terms[doc]
    }
}

// --- metrics -----------------------------------------------------------------------------------

/// Recall at k, average precision and nDCG at k of a ranking against a set of relevant ids.
pub fn recall_at(ranking: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    ranking
        .iter()
        .take(k)
        .filter(|d| relevant.contains(*d))
        .count() as f64
        / relevant.len() as f64
}

pub fn average_precision(ranking: &[String], relevant: &HashSet<String>) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let mut found = 0.0;
    let mut sum = 0.0;
    for (i, d) in ranking.iter().enumerate() {
        if relevant.contains(d) {
            found += 1.0;
            sum += found / (i as f64 + 1.0);
        }
    }
    sum / relevant.len() as f64
}

pub fn ndcg_at(ranking: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, d)| relevant.contains(*d))
        .map(|(i, _)| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

// --- the processor -----------------------------------------------------------------------------

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let item = ctx.item();
    let mut text = String::new();
    for key in ["invention_title", "invention_disclosure"] {
        if let Some(s) = item.get(key).and_then(Value::as_str) {
            text.push_str(s);
            text.push('\n');
        }
    }
    let claims: Vec<(i64, String)> = item
        .get("claims")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|c| {
                    Some((
                        c.get("number")?.as_i64()?,
                        c.get("text")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for (_, claim) in &claims {
        text.push_str(claim);
        text.push('\n');
    }
    if terms(&text).is_empty() {
        return Err(AutomationError::bad(
            "nothing to search for: the item has no invention title, disclosure or claims",
        ));
    }
    let corpus = ctx.automation.corpus()?;
    let query = Query {
        text,
        cutoff: item
            .get("priority_date_cutoff")
            .and_then(Value::as_str)
            .map(str::to_string),
        ipc: item
            .get("ipc_cpc_classes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        exclude: item
            .get("target_patent")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
    };
    let hits = corpus.search(&query, Options::KARYA, 100);
    let known: HashSet<String> = item
        .get("known_references")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let claim_terms: Vec<(i64, HashSet<String>)> = claims
        .iter()
        .map(|(n, t)| (*n, terms(t).into_iter().collect()))
        .collect();
    let max_refs = item
        .get("max_references_reported")
        .and_then(Value::as_u64)
        .unwrap_or(10) as usize;
    let top_score = hits.first().map_or(1.0, |h| h.score.max(f32::EPSILON));
    let rows: Vec<Value> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let r = &corpus.records[h.doc];
            let doc_terms: HashSet<&str> =
                corpus.doc_terms(h.doc).iter().map(String::as_str).collect();
            let relevant_claims: Vec<i64> = claim_terms
                .iter()
                .filter(|(_, t)| {
                    !t.is_empty()
                        && t.iter().filter(|x| doc_terms.contains(x.as_str())).count() * 2
                            >= t.len()
                })
                .map(|(n, _)| *n)
                .collect();
            let published_after = match (query.cutoff.as_deref(), r.publication_date.as_deref()) {
                (Some(cut), Some(p)) => p >= cut,
                _ => false,
            };
            json!({
                "rank": i + 1,
                "publication_number": r.number,
                "title": r.title,
                "publication_date": r.publication_date,
                "earliest_date": r.earliest_date(),
                "ipc": r.ipc,
                "score": (h.score / top_score * 1000.0).round() / 1000.0,
                // E: filed before the cut-off but published after; A: background until an
                // analyst reads it (X and Y are an analyst's call).
                "category": if published_after { "E" } else { "A" },
                "relevant_claims": relevant_claims,
                "known": known.contains(&r.number),
                "passages": r.abstract_text.chars().take(400).collect::<String>(),
            })
        })
        .collect();
    let mut strings: Vec<(String, f32)> = terms(&query.text)
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|t| {
            let idf = corpus.index.idf(&t);
            (t, idf)
        })
        .collect();
    strings.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let references: Vec<Value> = rows
        .iter()
        .take(max_refs)
        .map(|r| {
            json!({
                "publication_number": r["publication_number"], "title": r["title"],
                "publication_date": r["publication_date"], "category": r["category"],
                "relevant_claims": r["relevant_claims"], "passages": r["passages"],
                "legal_status": "unknown",
            })
        })
        .collect();
    Ok(json!({
        "search_type": item.get("search_type"),
        "databases_searched": [format!("patent corpus ({} records)", corpus.records.len())],
        "search_strings": [strings.iter().take(12).map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(" ")],
        "cutoff": query.cutoff,
        "ipc": query.ipc,
        "hits": rows,
        "references": references,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        number: &str,
        title: &str,
        abstract_text: &str,
        ipc: &[&str],
        filed: &str,
        published: &str,
    ) -> Record {
        Record {
            number: number.into(),
            application_number: format!("APP-{number}"),
            title: title.into(),
            abstract_text: abstract_text.into(),
            ipc: ipc.iter().map(|c| normalise_ipc(c)).collect(),
            application_date: Some(filed.into()),
            priority_date: None,
            publication_date: Some(published.into()),
        }
    }

    fn corpus() -> Corpus {
        Corpus::from_records(
            vec![
                record(
                    "US1",
                    "Immersion cooled battery module",
                    "Cylindrical cells immersed in dielectric fluid with busbar spacers.",
                    &["H01M10/613"],
                    "2019-01-01",
                    "2020-07-01",
                ),
                record(
                    "US2",
                    "Battery pack with phase change material",
                    "Paraffin phase change material absorbs heat of battery cells.",
                    &["H01M10/659"],
                    "2024-05-01",
                    "2025-11-01",
                ),
                record(
                    "US3",
                    "Laundry washer with bubbles",
                    "Washing machine producing foam bubbles.",
                    &["D06F39/00"],
                    "2010-01-01",
                    "2011-01-01",
                ),
                record(
                    "US4",
                    "Battery charger",
                    "A charger for battery cells with a display.",
                    &["H02J7/00"],
                    "2015-01-01",
                    "2016-01-01",
                ),
                record(
                    "US5",
                    "Battery module",
                    "Module of cells.",
                    &["H01M50/20"],
                    "2026-01-01",
                    "2026-06-01",
                ),
            ],
            "test",
        )
    }

    #[test]
    fn parses_a_flat_record() {
        let xml = "<doc>\n<str name=\"Patent Number\">\n\t\tEP0049154B2\n\t</str>\n<str name=\"Title\">\n\t\tIn place gas cleaning &amp; diffusion\n\t</str>\n<str name=\"All IPC\">\n\t\tB08B5/00 | C02F3/20\n\t</str>\n<str name=\"Application Date\">1981-09-29</str><str name=\"Priority Date\">1980-11-04</str></doc>";
        let r = parse_record(xml).unwrap();
        assert_eq!(r.number, "EP0049154B2");
        assert_eq!(r.title, "In place gas cleaning & diffusion");
        assert_eq!(r.ipc, vec!["B08B5/00", "C02F3/20"]);
        assert_eq!(r.earliest_date(), Some("1980-11-04"));
        assert!(r.abstract_text.is_empty());
    }

    #[test]
    fn bm25_ranks_the_matching_document_first() {
        let c = corpus();
        let q = Query {
            text: "battery cells immersed in dielectric fluid".into(),
            ..Query::default()
        };
        let hits = c.search(&q, Options::BASELINE, 10);
        assert_eq!(c.records[hits[0].doc].number, "US1");
        assert!(
            hits.iter().all(|h| c.records[h.doc].number != "US3"),
            "no shared term"
        );
    }

    #[test]
    fn cut_off_drops_later_filings_and_the_searched_patent() {
        let c = corpus();
        let q = Query {
            text: "battery module cells".into(),
            cutoff: Some("2025-03-14".into()),
            exclude: vec!["US1".into()],
            ..Query::default()
        };
        let numbers: Vec<&str> = c
            .search(&q, Options::KARYA, 10)
            .iter()
            .map(|h| c.records[h.doc].number.as_str())
            .collect();
        assert!(!numbers.contains(&"US5"), "filed after the cut-off");
        assert!(!numbers.contains(&"US1"), "the patent searched from");
        assert!(
            numbers.contains(&"US2"),
            "filed before, published after: still found"
        );
    }

    #[test]
    fn ipc_boost_lifts_the_same_group() {
        let c = corpus();
        let plain = Query {
            text: "battery cells".into(),
            ..Query::default()
        };
        let boosted = Query {
            ipc: vec!["H02J 7/00".into()],
            ..plain.clone()
        };
        let opts = Options {
            ipc_subclass_boost: 1.0,
            ipc_group_boost: 1.0,
            ..Options::BASELINE
        };
        let before = c.search(&plain, opts, 10);
        let after = c.search(&boosted, opts, 10);
        let pos = |hits: &[Hit]| {
            hits.iter()
                .position(|h| c.records[h.doc].number == "US4")
                .unwrap()
        };
        assert!(pos(&after) < pos(&before), "{before:?} {after:?}");
        assert_eq!(pos(&after), 0);
    }

    #[test]
    fn metrics_worked_example() {
        let ranking: Vec<String> = ["a", "x", "b", "y", "z"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let relevant: HashSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert!((recall_at(&ranking, &relevant, 3) - 2.0 / 3.0).abs() < 1e-9);
        // AP = (1/1 + 2/3) / 3.
        assert!((average_precision(&ranking, &relevant) - (1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-9);
        // DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4).
        let ideal = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg_at(&ranking, &relevant, 10) - 1.5 / ideal).abs() < 1e-9);
    }

    #[test]
    fn the_processor_needs_a_corpus_and_a_query() {
        let automation = crate::Automation::new(crate::Config::default());
        let item: Value = serde_json::from_str(
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
        .unwrap();
        let err = automation
            .run("prior_art_search", &json!({"item": item}))
            .unwrap_err();
        assert!(err.to_string().contains("no patent corpus"), "{err}");
    }

    #[test]
    fn the_processor_ranks_a_corpus_directory() {
        let dir = tempfile::tempdir().unwrap();
        for r in corpus().records {
            let xml = format!(
                "<doc><str name=\"Patent Number\">{}</str><str name=\"Title\">{}</str><str name=\"Abstract\">{}</str><str name=\"All IPC\">{}</str><str name=\"Application Date\">{}</str><str name=\"Publication Date\">{}</str></doc>",
                r.number, r.title, r.abstract_text, r.ipc.join(" | "), r.application_date.unwrap(), r.publication_date.unwrap()
            );
            std::fs::write(dir.path().join(format!("{}.xml", r.number)), xml).unwrap();
        }
        let config = crate::Config {
            patent_corpus: Some(dir.path().to_path_buf()),
            ..crate::Config::default()
        };
        let automation = crate::Automation::new(config);
        let item: Value = serde_json::from_str(
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
        .unwrap();
        let out = automation
            .run("prior_art_search", &json!({"item": item}))
            .unwrap();
        let hits = out["hits"].as_array().unwrap();
        assert_eq!(hits[0]["publication_number"], "US1", "{out}");
        assert_eq!(hits[0]["relevant_claims"], json!([1]));
        assert!(hits.iter().all(|h| h["publication_number"] != "US5"));
        let us2 = hits
            .iter()
            .find(|h| h["publication_number"] == "US2")
            .unwrap();
        assert_eq!(us2["category"], "E");
        assert!(out["references"].as_array().unwrap().len() <= 10);
    }
}
