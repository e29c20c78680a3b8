//! `classify`: the category of a ticket, a customer contact or a network alarm.
//!
//! A multinomial naive Bayes model over stemmed words, trained at start on seed phrases per
//! category (below), on the pack's examples whose category is known, and on any `training`
//! examples in the input; a seed keyword found in the text adds weight to its category. The
//! categories are the pack's own: the IT help desk's ticket categories, customer support's
//! intents, and the network operations centre's likely causes.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::text::terms;
use crate::{AutomationError, Context, Result};

/// Seed phrases per category: the words agents and customers use.
pub fn seeds(line: &str) -> Vec<(&'static str, &'static [&'static str])> {
    match line {
        "it_helpdesk" => vec![
            (
                "password_reset",
                &[
                    "password reset",
                    "forgot password",
                    "password expired",
                    "locked out",
                    "account locked",
                    "cannot log in",
                    "change password",
                    "reset my password",
                ],
            ),
            (
                "mfa",
                &[
                    "mfa",
                    "multi factor",
                    "two factor",
                    "2fa",
                    "authenticator app",
                    "otp not received",
                    "verification code",
                    "duo push",
                    "new phone authenticator",
                ],
            ),
            (
                "email",
                &[
                    "outlook",
                    "email",
                    "mailbox",
                    "inbox",
                    "shared mailbox",
                    "calendar invite",
                    "mail not syncing",
                    "distribution list",
                    "exchange",
                ],
            ),
            (
                "teams",
                &[
                    "teams",
                    "teams meeting",
                    "teams call",
                    "chat channel",
                    "microphone teams",
                    "screen share",
                ],
            ),
            (
                "vpn",
                &[
                    "vpn",
                    "globalprotect",
                    "anyconnect",
                    "remote access",
                    "tunnel",
                    "cannot connect from home",
                    "vpn disconnects",
                ],
            ),
            (
                "printer",
                &[
                    "printer",
                    "print queue",
                    "printing",
                    "toner",
                    "paper jam",
                    "scanner",
                    "cannot print",
                ],
            ),
            (
                "laptop",
                &[
                    "laptop",
                    "battery",
                    "screen broken",
                    "keyboard",
                    "blue screen",
                    "slow computer",
                    "docking station",
                    "overheating",
                    "will not boot",
                ],
            ),
            (
                "software_install",
                &[
                    "install",
                    "installation",
                    "software request",
                    "licence",
                    "license",
                    "update application",
                    "new version",
                    "uninstall",
                ],
            ),
            (
                "access_request",
                &[
                    "access request",
                    "grant access",
                    "permission",
                    "role",
                    "shared drive access",
                    "sap access",
                    "folder access",
                    "approve access",
                    "privileged",
                ],
            ),
            (
                "network",
                &[
                    "network",
                    "wifi",
                    "wi-fi",
                    "internet down",
                    "lan",
                    "ethernet",
                    "dns",
                    "slow network",
                    "no connectivity",
                ],
            ),
            ("other", &["question", "general enquiry", "other issue"]),
        ],
        "customer_support" => vec![
            (
                "where_is_my_order",
                &[
                    "where is my order",
                    "not arrived",
                    "tracking",
                    "delivery status",
                    "still waiting",
                    "not delivered",
                    "wo ist meine bestellung",
                    "noch nicht angekommen",
                    "sendungsverfolgung",
                    "late delivery",
                ],
            ),
            (
                "return_request",
                &[
                    "return",
                    "send back",
                    "exchange",
                    "wrong size",
                    "zurücksenden",
                    "rücksendung",
                    "umtausch",
                    "return label",
                ],
            ),
            (
                "refund_status",
                &[
                    "refund status",
                    "refund not received",
                    "when will i get my money",
                    "erstattung noch nicht",
                    "money back pending",
                ],
            ),
            (
                "damaged_item",
                &[
                    "damaged",
                    "broken",
                    "arrived broken",
                    "cracked",
                    "defective",
                    "beschädigt",
                    "zerbrochen",
                    "kaputt",
                    "defekt",
                    "smashed",
                ],
            ),
            (
                "billing",
                &[
                    "charged twice",
                    "invoice",
                    "payment failed",
                    "double charge",
                    "wrong amount",
                    "rechnung",
                    "abgebucht",
                    "billing",
                ],
            ),
            (
                "account",
                &[
                    "account",
                    "login",
                    "password",
                    "email address change",
                    "delete my account",
                    "konto",
                    "anmelden",
                ],
            ),
            (
                "product_question",
                &[
                    "does it",
                    "compatible",
                    "size guide",
                    "how to use",
                    "specification",
                    "question about product",
                    "frage zum produkt",
                ],
            ),
            (
                "complaint",
                &[
                    "complaint",
                    "unacceptable",
                    "terrible service",
                    "rude",
                    "disappointed",
                    "beschwerde",
                    "never again",
                ],
            ),
            ("other", &["hello", "general question"]),
        ],
        "network_management" => vec![
            (
                "carrier_fault",
                &[
                    "bgp down",
                    "mpls",
                    "circuit down",
                    "carrier",
                    "link down wan",
                    "isp",
                    "provider",
                    "loss of signal",
                    "los",
                ],
            ),
            (
                "device_fault",
                &[
                    "device down",
                    "power supply",
                    "fan failure",
                    "hardware",
                    "reboot",
                    "crash",
                    "unreachable",
                    "high cpu",
                ],
            ),
            (
                "configuration",
                &[
                    "config drift",
                    "configuration change",
                    "acl",
                    "misconfiguration",
                    "change request",
                    "rollback",
                ],
            ),
            (
                "capacity",
                &[
                    "high utilisation",
                    "congestion",
                    "bandwidth",
                    "packet drops",
                    "saturation",
                ],
            ),
            (
                "certificate",
                &["certificate expiry", "certificate", "tls", "ssl expired"],
            ),
            (
                "link_instability",
                &[
                    "link flap",
                    "interface down",
                    "flapping",
                    "crc errors",
                    "duplex mismatch",
                ],
            ),
        ],
        _ => Vec::new(),
    }
}

/// A trained classifier.
#[derive(Debug, Default)]
pub struct Model {
    categories: Vec<String>,
    counts: Vec<HashMap<String, f64>>,
    totals: Vec<f64>,
    vocabulary: usize,
    keywords: Vec<(String, usize)>,
}

impl Model {
    pub fn train(seeds: &[(&str, &[&str])], examples: &[(String, String)]) -> Model {
        let mut model = Model::default();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut category = |m: &mut Model, name: &str| -> usize {
            *index.entry(name.to_string()).or_insert_with(|| {
                m.categories.push(name.to_string());
                m.counts.push(HashMap::new());
                m.totals.push(0.0);
                m.categories.len() - 1
            })
        };
        let add = |m: &mut Model, c: usize, text: &str, weight: f64| {
            for t in terms(text) {
                *m.counts[c].entry(t).or_default() += weight;
                m.totals[c] += weight;
            }
        };
        for (name, phrases) in seeds {
            let c = category(&mut model, name);
            for p in *phrases {
                add(&mut model, c, p, 1.0);
                model.keywords.push((p.to_lowercase(), c));
            }
        }
        for (text, name) in examples {
            let c = category(&mut model, name);
            add(&mut model, c, text, 1.0);
        }
        let mut vocab: std::collections::HashSet<&String> = std::collections::HashSet::new();
        for counts in &model.counts {
            vocab.extend(counts.keys());
        }
        model.vocabulary = vocab.len();
        model
    }

    /// Categories with probabilities, best first, and the seed keywords found.
    pub fn classify(&self, text: &str) -> (Vec<(String, f64)>, Vec<String>) {
        let words = terms(text);
        let lower = format!(
            " {} ",
            crate::text::words(text).collect::<Vec<_>>().join(" ")
        );
        let v = self.vocabulary.max(1) as f64;
        let mut logp: Vec<f64> = (0..self.categories.len())
            .map(|c| {
                words
                    .iter()
                    .map(|w| {
                        ((self.counts[c].get(w).copied().unwrap_or(0.0) + 1.0)
                            / (self.totals[c] + v))
                            .ln()
                    })
                    .sum::<f64>()
            })
            .collect();
        let mut matched = Vec::new();
        for (kw, c) in &self.keywords {
            let kw_words = format!(" {} ", crate::text::words(kw).collect::<Vec<_>>().join(" "));
            if lower.contains(&kw_words) {
                logp[*c] += 5f64.ln() * kw_words.split_whitespace().count() as f64;
                matched.push(kw.clone());
            }
        }
        let max = logp.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logp.iter().map(|l| (l - max).exp()).sum();
        let mut out: Vec<(String, f64)> = self
            .categories
            .iter()
            .zip(&logp)
            .map(|(c, l)| (c.clone(), (l - max).exp() / sum))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        (out, matched)
    }
}

/// The words of an item worth reading: every string value except ids, emails and codes.
pub fn item_text(item: &Value) -> String {
    fn walk(v: &Value, key: &str, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                let skip = key.ends_with("_id")
                    || key.contains("email")
                    || key.contains("number")
                    || key == "category"
                    || key.ends_with("_ip")
                    || key == "received_at"
                    || key.ends_with("_date");
                if !skip {
                    out.push(s.replace('_', " "));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| walk(x, k, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(item, "", &mut out);
    out.join("\n")
}

pub(crate) fn run(ctx: &Context) -> Result<Value> {
    let line = ctx.service_line().unwrap_or("");
    let seeds = seeds(line);
    let mut examples: Vec<(String, String)> = Vec::new();
    let label_key = match line {
        "it_helpdesk" => Some("category"),
        _ => None,
    };
    if let (Some(pack), Some(key)) = (ctx.pack, label_key) {
        for ex in &pack.pack.examples {
            if let Ok(v) = serde_json::from_str::<Value>(&ex.input) {
                if let Some(label) = v.get(key).and_then(Value::as_str) {
                    examples.push((item_text(&v), label.to_string()));
                }
            }
        }
    }
    if let Some(training) = ctx.input.get("training").and_then(Value::as_array) {
        for t in training {
            if let (Some(text), Some(label)) = (
                t.get("text").and_then(Value::as_str),
                t.get("category").and_then(Value::as_str),
            ) {
                examples.push((text.to_string(), label.to_string()));
            }
        }
    }
    if seeds.is_empty() && examples.is_empty() {
        return Err(AutomationError::bad(
            "no categories: this pack has none built in; give `training` examples ({text, category}) in the input",
        ));
    }
    let model = Model::train(&seeds, &examples);
    let text = item_text(ctx.item());
    if terms(&text).is_empty() {
        return Err(AutomationError::bad("the item has no text to classify"));
    }
    let (ranked, matched) = model.classify(&text);
    let (category, confidence) = ranked[0].clone();
    let mut out = json!({
        "category": category,
        "confidence": (confidence * 1000.0).round() / 1000.0,
        "alternatives": ranked.iter().skip(1).take(3).map(|(c, p)| json!({"category": c, "probability": (p * 1000.0).round() / 1000.0})).collect::<Vec<_>>(),
        "matched_keywords": matched,
    });
    if line == "customer_support" {
        out["intent"] = out["category"].clone();
    }
    if let Some(given) = ctx.item().get("category").and_then(Value::as_str) {
        out["requested_category"] = json!(given);
        out["agrees"] = json!(given == category);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_for(line: &str, item: Value) -> Value {
        let automation = crate::Automation::new(crate::Config::default());
        let pack = karya_packs::builtin()
            .unwrap()
            .packs()
            .iter()
            .find(|p| p.pack.service_line.code() == line)
            .unwrap()
            .pack
            .id
            .clone();
        automation
            .run("classify", &json!({"pack": pack, "item": item}))
            .unwrap()
    }

    #[test]
    fn it_tickets() {
        let cases = [
            (
                "GlobalProtect VPN rejects login since password change this morning",
                "vpn",
            ),
            (
                "Outlook keeps asking for credentials and shared mailbox is not syncing",
                "email",
            ),
            (
                "Printer on 3rd floor shows paper jam and the print queue is stuck",
                "printer",
            ),
            (
                "Need access to the finance shared drive, manager approved",
                "access_request",
            ),
            (
                "Authenticator app on my new phone does not get the verification code",
                "mfa",
            ),
            (
                "Laptop overheating and blue screen after docking station update",
                "laptop",
            ),
        ];
        for (text, want) in cases {
            let out = run_for("it_helpdesk", json!({"short_description": text}));
            assert_eq!(out["category"], want, "{text}: {out}");
        }
    }

    #[test]
    fn customer_contacts_in_two_languages() {
        let out = run_for(
            "customer_support",
            json!({"subject": "Kaffeemaschine beschädigt angekommen", "message": "Die Glaskanne war bei der Lieferung zerbrochen."}),
        );
        assert_eq!(out["intent"], "damaged_item", "{out}");
        let out = run_for(
            "customer_support",
            json!({"subject": "Order", "message": "It is ten days and my parcel has still not arrived, tracking shows nothing"}),
        );
        assert_eq!(out["intent"], "where_is_my_order", "{out}");
        let out = run_for(
            "customer_support",
            json!({"message": "You charged me twice for the same invoice"}),
        );
        assert_eq!(out["intent"], "billing", "{out}");
    }

    #[test]
    fn network_alarms() {
        let out = run_for(
            "network_management",
            json!({"alarm": {"kind": "bgp_down", "severity": "critical"}, "carrier_circuit_id": "TTSL-MPLS-PNQ-004471"}),
        );
        assert_eq!(out["category"], "carrier_fault", "{out}");
        let out = run_for(
            "network_management",
            json!({"alarm": {"kind": "certificate_expiry"}}),
        );
        assert_eq!(out["category"], "certificate", "{out}");
    }

    #[test]
    fn trained_examples_add_categories() {
        let model = Model::train(
            &[],
            &[
                ("invoice overdue payment reminder".into(), "accounts".into()),
                ("job application resume attached".into(), "hr".into()),
            ],
        );
        let (ranked, _) = model.classify("please find my resume for the application");
        assert_eq!(ranked[0].0, "hr");
        assert!(ranked[0].1 > 0.5);
    }

    #[test]
    fn the_requesters_category_is_checked() {
        let out = run_for(
            "it_helpdesk",
            json!({"category": "printer", "short_description": "VPN tunnel drops every hour"}),
        );
        assert_eq!(out["agrees"], false);
        assert_eq!(out["category"], "vpn");
    }
}
