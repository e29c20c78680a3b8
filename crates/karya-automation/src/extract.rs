//! `extract_fields`: named fields from OCR text or text layers, each with a confidence.
//!
//! Rules and regular expressions, no model: a value found after its label (`Invoice No:`,
//! `Date of Birth`) scores higher than one found by shape alone. What is extracted depends on
//! the pack: invoice and receipt fields (bookkeeping and any other pack), KYC form fields
//! compared with the declared values (form processing), claim document fields compared with
//! the claim (insurance), payroll register rows (provident fund and gratuity), and document
//! types and index fields per page (scanning and indexing).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{json, Map, Value};

use crate::text::{find_amounts, find_dates, round2};
use crate::tools::Kind;
use crate::validate::{gstin_valid, pan_valid};
use crate::{ocr, AutomationError, Context, Result};

/// One extracted value and how sure the rule is, 0 to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub value: Value,
    pub confidence: f64,
}

impl Field {
    fn new(value: impl Into<Value>, confidence: f64) -> Self {
        Field {
            value: value.into(),
            confidence,
        }
    }
}

pub type Fields = BTreeMap<String, Field>;

pub fn fields_json(fields: &Fields) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    json!({ "value": f.value, "confidence": (f.confidence * 100.0).round() / 100.0 }),
                )
            })
            .collect(),
    )
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid pattern"))
}

fn lines(text: &str) -> Vec<&str> {
    text.split(['\n', '\u{c}']).map(str::trim).collect()
}

// --- invoices and receipts -------------------------------------------------------------------

const COMPANY_SUFFIX: &str = r"(?i)\b(sdn\.?\s*bhd|bhd|berhad|ltd|limited|llp|llc|inc|gmbh|ag|b\.\s?v|bv|s\.a|sas|sarl|s\.r\.l|pvt|private|corp|corporation|co\.|company|enterprise|enterprises|trading|holdings|spółka|n\.v|plc|oy|ab)\b";

/// The issuer: a line near the top that names a company, else the first line of words.
fn issuer(lines: &[&str]) -> Option<Field> {
    static SUFFIX: OnceLock<Regex> = OnceLock::new();
    static SKIP: OnceLock<Regex> = OnceLock::new();
    let suffix = re(&SUFFIX, COMPANY_SUFFIX);
    let skip = re(
        &SKIP,
        r"(?i)(invoice|receipt|tax|tel|fax|phone|date|gst|page|bill to|ship to|customer|www\.|@|http|no\.\s*\d)",
    );
    let top: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.is_empty())
        .take(12)
        .collect();
    for line in &top {
        if suffix.is_match(line) && !skip.is_match(line) && line.len() <= 80 {
            let cleaned = line.trim_matches(|c: char| !c.is_alphanumeric() && c != ')' && c != '.');
            return Some(Field::new(cleaned, 0.8));
        }
    }
    top.iter()
        .find(|l| {
            let letters = l.chars().filter(|c| c.is_alphabetic()).count();
            letters >= 3 && letters * 2 >= l.chars().count() && !skip.is_match(l)
        })
        .map(|l| Field::new(l.trim(), 0.4))
}

/// The document date: on a line labelled as a date (not a due date), else the first date.
fn document_date(lines: &[&str], month_first: bool) -> Option<Field> {
    static LABEL: OnceLock<Regex> = OnceLock::new();
    static NOT: OnceLock<Regex> = OnceLock::new();
    let label = re(
        &LABEL,
        r"(?i)\b(date|dated|datum|data|fecha|tarikh|invoice date|bill date|issued|wystawienia)\b",
    );
    let not = re(
        &NOT,
        r"(?i)(due|expiry|valid until|delivery|birth|period|from|to:)",
    );
    let mut first: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let found = find_dates(line, month_first);
        if first.is_none() {
            first = found.first().map(|d| d.iso.clone());
        }
        if label.is_match(line) && !not.is_match(line) {
            if let Some(d) = found.first() {
                return Some(Field::new(d.iso.clone(), 0.9));
            }
            if let Some(d) = lines
                .get(i + 1)
                .and_then(|n| find_dates(n, month_first).into_iter().next())
            {
                return Some(Field::new(d.iso, 0.8));
            }
        }
    }
    if let Some(iso) = first {
        return Some(Field::new(iso, 0.6));
    }
    // Compact dates (20180304), only when nothing else was found.
    static COMPACT: OnceLock<Regex> = OnceLock::new();
    let compact = re(
        &COMPACT,
        r"\b(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\b",
    );
    lines.iter().find_map(|l| {
        let c = compact.captures(l)?;
        crate::text::iso_date(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?)
            .map(|iso| Field::new(iso, 0.4))
    })
}

fn invoice_number(lines: &[&str]) -> Option<Field> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &RE,
        r"(?i)\b(?:invoice|inv|bill|receipt|rcpt|faktura|factuur|rechnung|facture|document|doc|order)\s*(?:number|nummer|numéro|num\.?|no\.?|nr\.?|n°|nº|#|id)?\s*[:#.]?\s*(#?[A-Z0-9][A-Z0-9/_\-#.]{2,30})",
    );
    static LABEL_ONLY: OnceLock<Regex> = OnceLock::new();
    let label_only = re(
        &LABEL_ONLY,
        r"(?i)\b(?:invoice|bill|receipt)\s*(?:no\.?|number|nr\.?|#)\s*:?\s*$",
    );
    for (i, line) in lines.iter().enumerate() {
        if let Some(c) = r.captures(line) {
            let value = c[1].trim_end_matches(['.', ':']);
            let has_digit = value.chars().any(|ch| ch.is_ascii_digit());
            let is_date = !find_dates(value, false).is_empty();
            if has_digit && !is_date {
                return Some(Field::new(value, 0.85));
            }
        }
        if label_only.is_match(line) {
            if let Some(next) = lines.get(i + 1) {
                let token = next.split_whitespace().next().unwrap_or("");
                if token.chars().any(|c| c.is_ascii_digit()) {
                    return Some(Field::new(token, 0.7));
                }
            }
        }
    }
    None
}

/// Candidate total lines: strong labels (rounded, nett, grand, amount due) beat a plain
/// "total"; among equals the last one on the page wins (it is after discounts and rounding).
fn total(lines: &[&str]) -> Option<Field> {
    static STRONG: OnceLock<Regex> = OnceLock::new();
    static PLAIN: OnceLock<Regex> = OnceLock::new();
    static EXCLUDE: OnceLock<Regex> = OnceLock::new();
    let strong = re(
        &STRONG,
        r"(?i)(round(?:e?d|\s?d)?\s*total|nett?\s*total|grand\s*total|total\s*amount|amount\s*due|total\s*due|balance\s*due|total\s*payable|amount\s*payable|total\s*incl|total\s*\(incl|total\s*rm|total\s*\(rm|do\s*zapłaty|gesamtbetrag|rechnungsbetrag|totaal|montant\s*total|total\s*ttc|total\s*sales\s*\(incl)",
    );
    let plain = re(&PLAIN, r"(?i)\b(total|amount|razem|summe|betrag)\b");
    let exclude = re(
        &EXCLUDE,
        r"(?i)(sub[\s\-]?total|total\s*qty|total\s*quantity|qty|total\s*items?|no\.?\s*of\s*items|total\s*discount|discount|total\s*tax|total\s*gst|gst\s*summary|tax\s*amount|total\s*excl|excl|savings|before|change|tender|points|weight|kg)",
    );
    let mut best: Option<(u8, usize, f64)> = None;
    for (i, line) in lines.iter().enumerate() {
        let rank = if strong.is_match(line) {
            2
        } else if plain.is_match(line) && !exclude.is_match(line) {
            1
        } else {
            continue;
        };
        if rank == 2 && exclude.is_match(line) && !line.to_lowercase().contains("incl") {
            continue;
        }
        let mut amounts: Vec<f64> = find_amounts(line)
            .into_iter()
            .filter(|a| a.decimals && a.value > 0.0)
            .map(|a| a.value)
            .collect();
        if amounts.is_empty() {
            // The amount in the next line or two (a label above its figure).
            for next in lines.iter().skip(i + 1).take(2) {
                let letters = next.chars().filter(|c| c.is_alphabetic()).count();
                let found: Vec<f64> = find_amounts(next)
                    .into_iter()
                    .filter(|a| a.decimals && a.value > 0.0)
                    .map(|a| a.value)
                    .collect();
                if !found.is_empty() && letters <= 4 {
                    amounts = found;
                    break;
                }
            }
        }
        if let Some(value) = amounts.last().copied() {
            if best.is_none_or(|(r, _, _)| rank >= r) {
                best = Some((rank, i, value));
            }
        }
    }
    if let Some((rank, _, value)) = best {
        return Some(Field::new(
            round2(value),
            if rank == 2 { 0.85 } else { 0.7 },
        ));
    }
    // No label: the largest two-decimal amount on the page.
    lines
        .iter()
        .flat_map(|l| find_amounts(l))
        .filter(|a| a.decimals && a.value > 0.0)
        .map(|a| a.value)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map(|v| Field::new(round2(v), 0.3))
}

fn tax_amount(lines: &[&str]) -> Option<Field> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &RE,
        r"(?i)\b(total\s*tax|tax\s*amount|total\s*gst|gst\s*\d+%|igst|cgst|sgst|vat\s*\d*|mwst|btw|tva|kwota\s*vat|sales\s*tax)\b",
    );
    let mut sum = 0.0;
    let mut found = false;
    for line in lines {
        if r.is_match(line) && !line.to_lowercase().contains("incl") {
            if let Some(a) = find_amounts(line).into_iter().rfind(|a| a.decimals) {
                sum += a.value;
                found = true;
            }
        }
    }
    found.then(|| Field::new(round2(sum), 0.6))
}

/// The currency from codes and symbols, the most frequent one winning.
fn currency(text: &str) -> Option<Field> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &RE,
        r"(?:\b(USD|EUR|GBP|INR|MYR|SGD|PLN|AUD|CAD|CHF|JPY|CNY|AED|SAR|RM|Rs\.?|zł)\b|(€|£|₹|\$|zł))",
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in r.captures_iter(text) {
        let token = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        let code = match token.trim_end_matches('.') {
            "RM" => "MYR",
            "Rs" | "₹" => "INR",
            "€" => "EUR",
            "£" => "GBP",
            "$" => "USD",
            "zł" => "PLN",
            other => other,
        };
        *counts.entry(code).or_default() += 1;
    }
    // "$" on a Singapore or Malaysian receipt is not USD when the code is written.
    if counts.contains_key("SGD") || counts.contains_key("AUD") || counts.contains_key("CAD") {
        counts.remove("USD");
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(code, n)| Field::new(code, if n > 1 { 0.8 } else { 0.6 }))
}

/// A tax registration: a GSTIN (check digit verified), an EU VAT number, a Polish NIP or a
/// Malaysian GST id.
fn tax_id(text: &str) -> Option<Field> {
    static GSTIN: OnceLock<Regex> = OnceLock::new();
    static VAT: OnceLock<Regex> = OnceLock::new();
    static NIP: OnceLock<Regex> = OnceLock::new();
    static MY_GST: OnceLock<Regex> = OnceLock::new();
    let gstin = re(&GSTIN, r"\b\d{2}[A-Z]{5}\d{4}[A-Z][1-9A-Z]Z[0-9A-Z]\b");
    for m in gstin.find_iter(text) {
        if gstin_valid(m.as_str()) {
            return Some(Field::new(m.as_str(), 0.95));
        }
    }
    if let Some(m) = gstin.find(text) {
        return Some(Field::new(m.as_str(), 0.5));
    }
    let vat = re(
        &VAT,
        r"(?i)(?:vat|btw|ust|tva|mwst|iva|tax)[\s\-]*(?:id|no\.?|number|nr\.?|reg\.?(?:istration)?|identification)?[\s.:\-]*((?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|GB|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)\s?[0-9A-Z][0-9A-Z ]{7,13}[0-9A-Z])",
    );
    if let Some(c) = vat.captures(text) {
        return Some(Field::new(c[1].trim(), 0.8));
    }
    let bare_vat =
        Regex::new(r"\b(NL\d{9}B\d{2}|DE\d{9}|FR[0-9A-Z]{2}\d{9}|GB\d{9}|PL\d{10})\b").ok()?;
    if let Some(m) = bare_vat.find(text) {
        return Some(Field::new(m.as_str(), 0.7));
    }
    let nip = re(
        &NIP,
        r"(?i)\bNIP[\s:]*(\d{3}-?\d{2}-?\d{2}-?\d{3}|\d{3}-?\d{3}-?\d{2}-?\d{2})\b",
    );
    if let Some(c) = nip.captures(text) {
        return Some(Field::new(c[1].replace('-', ""), 0.8));
    }
    let my = re(
        &MY_GST,
        r"(?i)\bGST\s*(?:REG\.?|ID|NO)\.?\s*(?:NO\.?)?\s*[:.]?\s*(\d{12})\b",
    );
    my.captures(text).map(|c| Field::new(&c[1], 0.8))
}

/// Invoice and receipt fields of one document's text.
pub fn invoice_fields(text: &str) -> Fields {
    let lines = lines(text);
    let mut fields = Fields::new();
    let currency = currency(text);
    let month_first = currency.as_ref().is_some_and(|c| c.value == "USD") && !text.contains("GST");
    let mut put = |name: &str, field: Option<Field>| {
        if let Some(field) = field {
            fields.insert(name.to_string(), field);
        }
    };
    put("issuer", issuer(&lines));
    put("date", document_date(&lines, month_first));
    put("invoice_number", invoice_number(&lines));
    put("total", total(&lines));
    put("tax_amount", tax_amount(&lines));
    put("currency", currency);
    put("tax_id", tax_id(text));
    fields
}

// --- KYC forms (form processing) --------------------------------------------------------------

/// Value after a label on the same line (after `:` or spaces), or on the next line.
fn labelled<'a>(lines: &[&'a str], label: &Regex) -> Option<&'a str> {
    for (i, line) in lines.iter().enumerate() {
        if let Some(m) = label.find(line) {
            let rest = line[m.end()..]
                .trim_start_matches([':', '-', '.', ' ', '\t'])
                .trim();
            if !rest.is_empty() {
                return Some(rest);
            }
            if let Some(next) = lines.get(i + 1).filter(|n| !n.is_empty()) {
                return Some(next);
            }
        }
    }
    None
}

pub fn kyc_fields(text: &str) -> Fields {
    let lines = lines(text);
    let mut fields = Fields::new();
    static PAN: OnceLock<Regex> = OnceLock::new();
    let pan = re(&PAN, r"\b[A-Z]{5}[0-9]{4}[A-Z]\b");
    if let Some(m) = pan.find_iter(text).find(|m| pan_valid(m.as_str())) {
        fields.insert("pan".into(), Field::new(m.as_str(), 0.9));
    }
    static AADHAAR: OnceLock<Regex> = OnceLock::new();
    let aadhaar = re(
        &AADHAAR,
        r"(?i)\b(?:X{4}|\*{4})[\s-]?(?:X{4}|\*{4})[\s-]?(\d{4})\b|\b\d{4}\s\d{4}\s(\d{4})\b",
    );
    if let Some(c) = aadhaar.captures(text) {
        let last4 = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        fields.insert("aadhaar_last4".into(), Field::new(last4, 0.85));
    }
    static DOB: OnceLock<Regex> = OnceLock::new();
    let dob = re(
        &DOB,
        r"(?i)\b(date\s*of\s*birth|d\.?\s?o\.?\s?b\.?|birth\s*date|जन्म\s*तिथि)",
    );
    if let Some(value) = labelled(&lines, dob) {
        if let Some(d) = find_dates(value, false).first() {
            fields.insert("date_of_birth".into(), Field::new(d.iso.clone(), 0.85));
        }
    }
    static NAME: OnceLock<Regex> = OnceLock::new();
    let name = re(
        &NAME,
        r"(?i)\b(?:full\s*)?(?:applicant'?s?\s*)?name\b(?:\s*of\s*(?:the\s*)?applicant)?",
    );
    if let Some(value) = labelled(&lines, name) {
        let value: String = value
            .split("  ")
            .next()
            .unwrap_or(value)
            .chars()
            .take_while(|c| c.is_alphabetic() || *c == ' ' || *c == '.')
            .collect();
        if value.trim().len() >= 2 {
            fields.insert("name".into(), Field::new(value.trim(), 0.7));
        }
    }
    static PIN: OnceLock<Regex> = OnceLock::new();
    let pin = re(
        &PIN,
        r"(?i)\b(?:pin|pincode|pin\s*code|postal\s*code)\b[\s:.\-]*([1-9]\d{5})\b",
    );
    if let Some(c) = pin.captures(text) {
        fields.insert("pin_code".into(), Field::new(&c[1], 0.85));
    } else {
        static SIX: OnceLock<Regex> = OnceLock::new();
        if let Some(m) = re(&SIX, r"\b[1-9]\d{2}\s?\d{3}\b").find(text) {
            fields.insert(
                "pin_code".into(),
                Field::new(m.as_str().replace(' ', ""), 0.4),
            );
        }
    }
    static DEPOSIT: OnceLock<Regex> = OnceLock::new();
    let deposit = re(
        &DEPOSIT,
        r"(?i)\b(initial\s*deposit|deposit\s*amount|amount\s*deposited)",
    );
    if let Some(value) = labelled(&lines, deposit) {
        if let Some(a) = find_amounts(value).first() {
            fields.insert("initial_deposit".into(), Field::new(a.value, 0.7));
        }
    }
    fields
}

fn normalise_name(s: &str) -> String {
    crate::text::words(s).collect::<Vec<_>>().join(" ")
}

/// Differences between what a form's documents say and what the applicant declared.
pub fn compare_declared(fields: &Fields, declared: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(declared) = declared.as_object() else {
        return out;
    };
    for (name, want) in declared {
        let Some(got) = fields.get(name) else {
            continue;
        };
        let same = match (want, &got.value) {
            (Value::Number(a), Value::Number(b)) => {
                (a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0)).abs() < 0.005
            }
            (Value::String(a), Value::String(b)) if name == "name" => {
                crate::text::jaro_winkler(&normalise_name(a), &normalise_name(b)) >= 0.93
            }
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        if !same {
            out.push(json!({
                "field": name,
                "issue": format!("declared {want} but the documents show {}", got.value),
            }));
        }
    }
    out
}

// --- insurance claims -------------------------------------------------------------------------

pub fn claim_fields(text: &str) -> Fields {
    let lines = lines(text);
    let mut fields = Fields::new();
    let mut label = |name: &str, pattern: &str, date: bool| {
        let r = Regex::new(pattern).expect("valid pattern");
        if let Some(value) = labelled(&lines, &r) {
            if date {
                if let Some(d) = find_dates(value, false).first() {
                    fields.insert(name.to_string(), Field::new(d.iso.clone(), 0.85));
                }
            } else {
                let v = value.split("  ").next().unwrap_or(value).trim();
                if !v.is_empty() {
                    fields.insert(name.to_string(), Field::new(v, 0.75));
                }
            }
        }
    };
    label("policy_number", r"(?i)\bpolicy\s*(?:no\.?|number|#)", false);
    label(
        "claim_number",
        r"(?i)\bclaim\s*(?:no\.?|number|#|ref(?:erence)?)",
        false,
    );
    label(
        "patient_name",
        r"(?i)\b(?:patient(?:'s)?\s*name|name\s*of\s*(?:the\s*)?patient)",
        false,
    );
    label(
        "hospital_name",
        r"(?i)\b(?:hospital\s*name|name\s*of\s*(?:the\s*)?hospital)",
        false,
    );
    label(
        "admission_date",
        r"(?i)\b(?:date\s*of\s*admission|admission\s*date|admitted\s*on|doa)\b",
        true,
    );
    label(
        "discharge_date",
        r"(?i)\b(?:date\s*of\s*discharge|discharge\s*date|discharged\s*on|dod)\b",
        true,
    );
    label(
        "loss_date",
        r"(?i)\b(?:date\s*of\s*(?:loss|accident|incident)|loss\s*date|accident\s*date)\b",
        true,
    );
    label("diagnosis", r"(?i)\b(?:final\s*)?diagnosis\b", false);
    label(
        "vehicle_registration",
        r"(?i)\b(?:registration|reg\.?)\s*(?:no\.?|number)",
        false,
    );
    static ICD: OnceLock<Regex> = OnceLock::new();
    let icd = re(&ICD, r"\b[A-TV-Z][0-9][0-9A-Z]\.[0-9A-Z]{1,4}\b");
    let codes: Vec<&str> = icd.find_iter(text).map(|m| m.as_str()).collect();
    if !codes.is_empty() {
        fields.insert("icd10_codes".into(), Field::new(json!(codes), 0.7));
    }
    if let Some(total) = total(&lines) {
        fields.insert("bill_total".into(), total);
    }
    fields
}

fn compare_claim(fields: &Fields, item: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut check = |field: &str, want: Option<&Value>| {
        if let (Some(want), Some(got)) = (want, fields.get(field)) {
            if want != &got.value {
                out.push(json!({
                    "field": field,
                    "issue": format!("the claim says {want} but the documents show {}", got.value),
                }));
            }
        }
    };
    check("policy_number", item.get("policy_number"));
    check("admission_date", item.pointer("/hospital/admission_date"));
    check("discharge_date", item.pointer("/hospital/discharge_date"));
    check("loss_date", item.get("loss_date"));
    if let (Some(claimed), Some(bill)) = (
        item.pointer("/amount_claimed/amount")
            .and_then(Value::as_f64),
        fields.get("bill_total").and_then(|f| f.value.as_f64()),
    ) {
        if bill + 0.005 < claimed {
            out.push(json!({
                "field": "amount_claimed",
                "issue": format!("claimed {claimed} exceeds the bills' total {bill}"),
            }));
        }
    }
    out
}

// --- payroll registers (provident fund) --------------------------------------------------------

/// Column of a payroll register by its header.
fn member_column(header: &str) -> Option<&'static str> {
    let h = header.to_lowercase().replace(['_', '-', '.'], " ");
    let h = h.trim();
    Some(match h {
        _ if h.contains("uan") => "uan",
        _ if h.contains("ncp") || h.contains("non contributory") || h.contains("lop") => "ncp_days",
        _ if h.contains("eps") || h.contains("pension") => "eps_wages",
        _ if h.contains("edli") => "edli_wages",
        _ if h.contains("epf") || h.contains("pf wage") => "epf_wages",
        _ if h.contains("gross") => "gross_wages",
        _ if h.contains("refund") => "refund_of_advance",
        _ if h.contains("birth") || h == "dob" => "date_of_birth",
        _ if h.contains("joining") || h == "doj" => "date_of_joining",
        _ if h.contains("exit") || h.contains("leaving") => "date_of_exit",
        _ if h.contains("name") => "name",
        _ => return None,
    })
}

/// Member rows of a payroll register (CSV or XLSX records, keyed by header).
pub fn payroll_members(records: &[Map<String, Value>]) -> (Vec<Value>, Vec<String>) {
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let mut member = Map::new();
        for (header, value) in record {
            let Some(field) = member_column(header) else {
                continue;
            };
            let value = match field {
                "uan" | "name" => json!(value_text(value).trim()),
                "date_of_birth" | "date_of_joining" | "date_of_exit" => {
                    match crate::text::parse_date(&value_text(value)) {
                        Some(iso) => json!(iso),
                        None => continue,
                    }
                }
                "ncp_days" => json!(value_number(value).unwrap_or(0.0).round() as i64),
                _ => match value_number(value) {
                    Some(n) => json!(n),
                    None => {
                        problems.push(format!("row {}: {header} is not a number", i + 1));
                        continue;
                    }
                },
            };
            member.insert(field.to_string(), value);
        }
        if member
            .get("uan")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(format!("row {}: no UAN", i + 1));
            continue;
        }
        members.push(Value::Object(member));
    }
    (members, problems)
}

pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn value_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => crate::text::parse_number(s),
        _ => None,
    }
}

/// Checks members against the EPF scheme's wage rules.
pub fn member_exceptions(members: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for m in members {
        let uan = m.get("uan").and_then(Value::as_str).unwrap_or("?");
        let n = |k: &str| m.get(k).and_then(Value::as_f64);
        if !(uan.len() == 12 && uan.chars().all(|c| c.is_ascii_digit())) {
            out.push(format!("{uan}: a UAN has 12 digits"));
        }
        if let (Some(epf), Some(gross)) = (n("epf_wages"), n("gross_wages")) {
            if epf > gross + 0.005 {
                out.push(format!("{uan}: EPF wages {epf} exceed gross wages {gross}"));
            }
        }
        if let Some(eps) = n("eps_wages") {
            if eps > crate::calculate::EPS_WAGE_CEILING + 0.005 {
                out.push(format!(
                    "{uan}: EPS wages {eps} exceed the ceiling of {}",
                    crate::calculate::EPS_WAGE_CEILING
                ));
            }
        }
        if let Some(ncp) = n("ncp_days") {
            if !(0.0..=31.0).contains(&ncp) {
                out.push(format!("{uan}: {ncp} non-contributory days"));
            }
        }
    }
    out
}

// --- scanning and indexing ----------------------------------------------------------------------

/// The document type whose words appear on the page, weighted to the top of the page.
pub fn document_type(text: &str, types: &[String]) -> Option<(String, f64)> {
    let spaced = |t: &str| format!(" {} ", crate::text::words(t).collect::<Vec<_>>().join(" "));
    let lower = spaced(text);
    let head = spaced(&text.lines().take(8).collect::<Vec<_>>().join(" "));
    let mut best: Option<(String, f64)> = None;
    for t in types {
        if t == "other" {
            continue;
        }
        let words: Vec<String> = t
            .split(['_', '-', ' '])
            .map(|w| format!(" {} ", w.to_lowercase()))
            .collect();
        let in_head = words.iter().filter(|w| head.contains(w.as_str())).count();
        let in_body = words.iter().filter(|w| lower.contains(w.as_str())).count();
        // Every word of the type near the top of the page, as a title would be.
        if in_head < words.len() {
            continue;
        }
        let score = (in_head as f64 * 2.0 + in_body as f64) / (3.0 * words.len() as f64);
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((t.clone(), score));
        }
    }
    best
}

/// Index fields named by the item (`employee_code`, `document_date`, ...) found after labels
/// made of their words.
pub fn index_values(text: &str, index_fields: &[Value]) -> Fields {
    let lines = lines(text);
    let mut out = Fields::new();
    for f in index_fields {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let kind = f.get("type").and_then(Value::as_str).unwrap_or("text");
        let words: Vec<String> = name.split('_').map(regex::escape).collect();
        let label = Regex::new(&format!(r"(?i)\b{}\b", words.join(r"[\s_\-]*")));
        let Ok(label) = label else { continue };
        let value = labelled(&lines, &label);
        let field = match (kind, value) {
            ("date", Some(v)) => find_dates(v, false)
                .first()
                .map(|d| Field::new(d.iso.clone(), 0.85)),
            ("date", None) => find_dates(text, false)
                .first()
                .map(|d| Field::new(d.iso.clone(), 0.4)),
            ("number", Some(v)) => find_amounts(v).first().map(|a| Field::new(a.value, 0.8)),
            (_, Some(v)) => {
                let v = v.split("  ").next().unwrap_or(v).trim();
                (!v.is_empty()).then(|| Field::new(v, 0.75))
            }
            _ => None,
        };
        if let Some(field) = field {
            out.insert(name.to_string(), field);
        }
    }
    out
}

// --- the processor -----------------------------------------------------------------------------

/// The text of one document, from an earlier OCR output or read now.
#[derive(Debug, Clone)]
pub struct DocText {
    pub id: String,
    pub name: String,
    /// Pages (form feeds in OCR output).
    pub pages: Vec<String>,
    pub confidence: Option<f64>,
}

impl DocText {
    pub fn text(&self) -> String {
        self.pages.join("\n")
    }
}

/// Texts from the latest earlier output with recognised documents, else the documents read now
/// (images and scanned PDFs through OCR), else an earlier output's `text`.
pub(crate) fn texts(ctx: &Context) -> Result<Vec<DocText>> {
    if let Some(docs) = ctx
        .latest_output_with("documents")
        .and_then(Value::as_array)
    {
        let with_text: Vec<DocText> = docs
            .iter()
            .filter_map(|d| {
                let text = d.get("text")?.as_str()?;
                Some(DocText {
                    id: d
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    name: d
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    pages: text.split('\u{c}').map(str::to_string).collect(),
                    confidence: d.get("mean_confidence").and_then(Value::as_f64),
                })
            })
            .collect();
        if !with_text.is_empty() {
            return Ok(with_text);
        }
    }
    let docs = ctx.documents()?;
    let langs = ocr::language_arg(ctx.config(), ctx.item());
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| d.path.is_some()) {
        let kind = doc.kind()?;
        if matches!(kind, Kind::Xlsx | Kind::Other) {
            continue;
        }
        let r = ocr::document(ctx.config(), doc, &langs)?;
        let text = r.text();
        out.push(DocText {
            id: doc.id.clone(),
            name: doc.name.clone(),
            pages: text.split('\u{c}').map(str::to_string).collect(),
            confidence: r.mean_confidence,
        });
    }
    if out.is_empty() {
        if let Some(text) = ctx.latest_output_with("text").and_then(Value::as_str) {
            out.push(DocText {
                id: String::new(),
                name: String::new(),
                pages: text.split('\u{c}').map(str::to_string).collect(),
                confidence: None,
            });
        }
    }
    Ok(out)
}

fn no_text() -> AutomationError {
    AutomationError::bad(
        "nothing to extract from: no earlier OCR output and no readable document attached",
    )
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    match ctx.service_line() {
        Some("provident_fund_gratuity") => run_payroll(ctx),
        Some("scanning_ocr_indexing") => run_index(ctx),
        Some("form_processing") => {
            let texts = texts(ctx)?;
            if texts.is_empty() {
                return Err(no_text());
            }
            let all: String = texts
                .iter()
                .map(DocText::text)
                .collect::<Vec<_>>()
                .join("\n");
            let fields = kyc_fields(&all);
            let declared = ctx.item().get("declared").cloned().unwrap_or(Value::Null);
            Ok(json!({
                "kind": "kyc_form",
                "application_number": ctx.item().get("application_number"),
                "fields": fields_json(&fields),
                "discrepancies": compare_declared(&fields, &declared),
                "documents": texts.iter().map(|t| json!({"id": t.id, "name": t.name, "fields": fields_json(&kyc_fields(&t.text()))})).collect::<Vec<_>>(),
            }))
        }
        Some("insurance_processing") => {
            let texts = texts(ctx)?;
            if texts.is_empty() {
                return Err(no_text());
            }
            let all: String = texts
                .iter()
                .map(DocText::text)
                .collect::<Vec<_>>()
                .join("\n");
            let fields = claim_fields(&all);
            Ok(json!({
                "kind": "claim",
                "claim_number": ctx.item().get("claim_number"),
                "fields": fields_json(&fields),
                "discrepancies": compare_claim(&fields, ctx.item()),
                "documents": texts.iter().map(|t| json!({"id": t.id, "name": t.name, "fields": fields_json(&claim_fields(&t.text()))})).collect::<Vec<_>>(),
            }))
        }
        _ => {
            let texts = texts(ctx)?;
            if texts.is_empty() {
                return Err(no_text());
            }
            let docs: Vec<(String, String, Fields)> = texts
                .iter()
                .map(|t| (t.id.clone(), t.name.clone(), invoice_fields(&t.text())))
                .collect();
            let total: f64 = docs
                .iter()
                .filter_map(|(_, _, f)| f.get("total").and_then(|f| f.value.as_f64()))
                .sum();
            let tax: f64 = docs
                .iter()
                .filter_map(|(_, _, f)| f.get("tax_amount").and_then(|f| f.value.as_f64()))
                .sum();
            Ok(json!({
                "kind": "invoice",
                "fields": fields_json(&docs[0].2),
                "documents": docs.iter().map(|(id, name, f)| json!({"id": id, "name": name, "fields": fields_json(f)})).collect::<Vec<_>>(),
                "totals": { "documents": docs.len(), "amount": round2(total), "tax": round2(tax) },
            }))
        }
    }
}

fn run_payroll(ctx: &Context) -> Result<Value> {
    let mut members: Vec<Value> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut source = "item";
    for doc in ctx.documents()?.iter().filter(|d| d.path.is_some()) {
        let kind = doc.kind()?;
        if matches!(kind, Kind::Csv | Kind::Xlsx | Kind::Json) {
            let records = crate::convert::read_records(doc)?;
            let (found, issues) = payroll_members(&records);
            members.extend(found);
            problems.extend(issues.into_iter().map(|p| format!("{}: {p}", doc.name)));
            source = "documents";
        }
    }
    if members.is_empty() {
        members = ctx
            .item()
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        source = "item";
    }
    if members.is_empty() {
        return Err(AutomationError::bad(
            "no members: attach a payroll register (CSV or XLSX) or list members in the item",
        ));
    }
    problems.extend(member_exceptions(&members));
    Ok(json!({
        "kind": "payroll",
        "wage_month": ctx.item().get("wage_month"),
        "source": source,
        "members_count": members.len(),
        "members": members,
        "exceptions": problems,
    }))
}

fn run_index(ctx: &Context) -> Result<Value> {
    let texts = texts(ctx)?;
    if texts.is_empty() {
        return Err(no_text());
    }
    let types: Vec<String> = ctx
        .item()
        .get("document_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let index_fields = ctx
        .item()
        .get("index_fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Every page in order; a page whose type is recognised starts a new document.
    let mut pages: Vec<(String, f64)> = Vec::new();
    for t in &texts {
        for p in &t.pages {
            pages.push((p.clone(), t.confidence.unwrap_or(0.0)));
        }
    }
    let mut documents: Vec<Value> = Vec::new();
    let mut current: Option<(String, usize, String, Vec<f64>)> = None;
    let mut blank = 0;
    let flush =
        |cur: Option<(String, usize, String, Vec<f64>)>, last: usize, docs: &mut Vec<Value>| {
            if let Some((kind, first, text, confs)) = cur {
                let conf = confs.iter().sum::<f64>() / confs.len().max(1) as f64;
                docs.push(json!({
                    "document_type": kind,
                    "first_page": first,
                    "last_page": last,
                    "index": fields_json(&index_values(&text, &index_fields)),
                    "ocr_confidence": (conf * 1000.0).round() / 1000.0,
                }));
            }
        };
    for (i, (page, conf)) in pages.iter().enumerate() {
        let number = i + 1;
        if page.chars().filter(|c| c.is_alphanumeric()).count() < 5 {
            blank += 1;
            continue;
        }
        match document_type(page, &types) {
            Some((kind, _)) => {
                flush(current.take(), number - 1, &mut documents);
                current = Some((kind, number, page.clone(), vec![*conf]));
            }
            None => match current.as_mut() {
                Some((_, _, text, confs)) => {
                    text.push('\n');
                    text.push_str(page);
                    confs.push(*conf);
                }
                None => current = Some(("other".to_string(), number, page.clone(), vec![*conf])),
            },
        }
    }
    flush(current, pages.len(), &mut documents);
    Ok(json!({
        "kind": "index",
        "batch_id": ctx.item().get("batch_id"),
        "pages": pages.len(),
        "documents": documents,
        "blank_pages_removed": blank,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIPT: &str = "TAN WOON YANN
BOOK TA .K(TAMAN DAYA) SDN BHD
789417-W
NO.53 55,57 & 59, JALAN SAGU 18,
TAMAN DAYA,
81100 JOHOR BAHRU,
JOHOR.
DOCUMENT NO : TD01167104
DATE: 25/12/2018 8:13:39 PM
CASHIER: MANIS
MEMBER:
CASH BILL
CODE/DESC PRICE DISC AMOUNT
QTY RM RM
9556939040116 KF MODELLING CLAY KIDDY FISH
1 PC * 9.000 0.00 9.00
TOTAL: 9.00
ROUND D TOTAL (RM): 9.00
CASH 10.00
CHANGE 1.00";

    fn value(fields: &Fields, name: &str) -> Value {
        fields
            .get(name)
            .map(|f| f.value.clone())
            .unwrap_or(Value::Null)
    }

    #[test]
    fn receipt_fields() {
        let f = invoice_fields(RECEIPT);
        assert_eq!(value(&f, "issuer"), "BOOK TA .K(TAMAN DAYA) SDN BHD");
        assert_eq!(value(&f, "date"), "2018-12-25");
        assert_eq!(value(&f, "total"), 9.0);
        assert_eq!(value(&f, "currency"), "MYR");
        assert_eq!(value(&f, "invoice_number"), "TD01167104");
    }

    #[test]
    fn indian_tax_invoice_fields() {
        let text = "OYO Rooms
Oravel Stays Private Limited
Tax Invoice
Invoice No: IBZY2087
Invoice Date : 31 Dec 2017
GSTIN: 06AABCO6063D1ZQ
Room charges 1,643.22
CGST 9% 147.89
SGST 9% 147.89
Grand Total ₹ 1,939.00";
        let f = invoice_fields(text);
        assert_eq!(value(&f, "issuer"), "Oravel Stays Private Limited");
        assert_eq!(value(&f, "invoice_number"), "IBZY2087");
        assert_eq!(value(&f, "date"), "2017-12-31");
        assert_eq!(value(&f, "total"), 1939.0);
        assert_eq!(value(&f, "currency"), "INR");
        assert_eq!(value(&f, "tax_id"), "06AABCO6063D1ZQ");
        assert!(f["tax_id"].confidence > 0.9, "check digit verified");
        assert_eq!(value(&f, "tax_amount"), 295.78);
    }

    #[test]
    fn european_invoice_with_decimal_commas() {
        let text = "Coolblue B.V.
Weena 664, Rotterdam
BTW nummer: NL810433941B01
Factuurnummer: 993548900
Factuurdatum: 19 april 2014
Subtotaal 593,36
BTW 21% 124,61
Totaal € 717,97";
        let f = invoice_fields(text);
        assert_eq!(value(&f, "issuer"), "Coolblue B.V.");
        assert_eq!(value(&f, "invoice_number"), "993548900");
        assert_eq!(value(&f, "date"), "2014-04-19");
        assert_eq!(value(&f, "total"), 717.97);
        assert_eq!(value(&f, "currency"), "EUR");
        assert_eq!(value(&f, "tax_id"), "NL810433941B01");
    }

    #[test]
    fn kyc_fields_and_discrepancies() {
        let text = "ACCOUNT OPENING FORM
Name of Applicant: MEERA IYER
Date of Birth: 17/04/1994
PAN: AHKPI4471Q
Aadhaar: XXXX XXXX 8812
Address: 12 Koregaon Park, Pune PIN 411001
Initial deposit: 25,000.00";
        let f = kyc_fields(text);
        assert_eq!(value(&f, "pan"), "AHKPI4471Q");
        assert_eq!(value(&f, "date_of_birth"), "1994-04-17");
        assert_eq!(value(&f, "aadhaar_last4"), "8812");
        assert_eq!(value(&f, "pin_code"), "411001");
        assert_eq!(value(&f, "name"), "MEERA IYER");
        let declared = json!({"name": "Meera Iyer", "pan": "AHKPI4471Q", "date_of_birth": "1994-04-17",
            "pin_code": "411038", "aadhaar_last4": "8812", "initial_deposit": 25000});
        let d = compare_declared(&f, &declared);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0]["field"], "pin_code");
    }

    #[test]
    fn claim_fields_and_discrepancies() {
        let text = "SAHYADRI SPECIALITY HOSPITAL
DISCHARGE SUMMARY
Patient Name: Anjali Deshmukh
Policy No: OHS-2211-889034
Date of Admission: 08/02/2026
Date of Discharge: 12/02/2026
Final Diagnosis: Acute appendicitis (K35.80)
Grand Total 148,650.00";
        let f = claim_fields(text);
        assert_eq!(value(&f, "admission_date"), "2026-02-08");
        assert_eq!(value(&f, "icd10_codes"), json!(["K35.80"]));
        assert_eq!(value(&f, "bill_total"), 148650.0);
        let item = json!({"policy_number": "OHS-2211-889034",
            "hospital": {"admission_date": "2026-02-08", "discharge_date": "2026-02-11"},
            "amount_claimed": {"amount": 148650, "currency": "INR"}});
        let d = compare_claim(&f, &item);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0]["field"], "discharge_date");
    }

    #[test]
    fn payroll_register_rows() {
        let rows: Vec<Map<String, Value>> = vec![
            serde_json::from_value(json!({"UAN": "100912345678", "Member Name": "Ramesh Gowda", "Gross Wages": "68,400", "EPF Wages": "42000", "EPS Wages": "15000", "EDLI Wages": "15000", "NCP Days": "0"})).unwrap(),
            serde_json::from_value(json!({"UAN": "", "Member Name": "No UAN"})).unwrap(),
            serde_json::from_value(json!({"UAN": "10145551234", "Member Name": "Short", "Gross Wages": 10000, "EPF Wages": 12000, "EPS Wages": 16000})).unwrap(),
        ];
        let (members, problems) = payroll_members(&rows);
        assert_eq!(members.len(), 2);
        assert_eq!(members[0]["gross_wages"], 68400.0);
        assert_eq!(members[0]["name"], "Ramesh Gowda");
        assert_eq!(problems, vec!["row 2: no UAN"]);
        let exceptions = member_exceptions(&members);
        assert_eq!(exceptions.len(), 3, "{exceptions:?}");
    }

    #[test]
    fn document_types_and_index_values() {
        let types: Vec<String> = [
            "appointment_letter",
            "salary_revision",
            "pf_nomination",
            "other",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let page = "SUNDARAM PRECISION COMPONENTS\nAPPOINTMENT LETTER\nEmployee Code: SPC-0117\nEmployee Name: Ramesh Gowda\nDate: 01/06/1998";
        assert_eq!(document_type(page, &types).unwrap().0, "appointment_letter");
        let fields = index_values(
            page,
            &[
                json!({"name": "employee_code", "type": "text"}),
                json!({"name": "document_date", "type": "date"}),
            ],
        );
        assert_eq!(value(&fields, "employee_code"), "SPC-0117");
        assert_eq!(value(&fields, "document_date"), "1998-06-01");
    }

    #[test]
    fn scanning_pack_splits_pages_into_documents() {
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
        let pages = [
            "APPOINTMENT LETTER\nEmployee Code: SPC-0117\nEmployee Name: Ramesh Gowda\nDate: 01/06/1998",
            "terms of appointment continued",
            "  ",
            "SALARY REVISION\nEmployee Code: SPC-0117\nEmployee Name: Ramesh Gowda\nEffective 01-04-2010",
        ];
        let input = json!({"item": item, "outputs": {"ocr": {"documents": [
            {"id": "d1", "name": "B0042.pdf", "text": pages.join("\u{c}"), "mean_confidence": 0.91}
        ]}}});
        let out = automation.run("extract_fields", &input).unwrap();
        assert_eq!(out["pages"], 4);
        assert_eq!(out["blank_pages_removed"], 1);
        let docs = out["documents"].as_array().unwrap();
        assert_eq!(docs.len(), 2, "{out}");
        assert_eq!(docs[0]["document_type"], "appointment_letter");
        assert_eq!(
            (
                docs[0]["first_page"].as_u64(),
                docs[0]["last_page"].as_u64()
            ),
            (Some(1), Some(3))
        );
        assert_eq!(docs[1]["index"]["employee_name"]["value"], "Ramesh Gowda");
        assert_eq!(docs[1]["index"]["document_date"]["value"], "2010-04-01");
    }

    #[test]
    fn nothing_to_read_is_a_clear_error() {
        let automation = crate::Automation::new(crate::Config::default());
        let err = automation
            .run(
                "extract_fields",
                &json!({"item": {}, "outputs": {}, "documents": []}),
            )
            .unwrap_err();
        assert!(err.to_string().contains("nothing to extract"), "{err}");
    }
}
