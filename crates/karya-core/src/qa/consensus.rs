//! Consensus (double keying): k workers do the same task blind, their answers are compared
//! field by field, agreed fields are final, and disagreements go to an adjudicator whose
//! ruling records who was right.
//!
//! Values are compared after [`normalize`], so that "  ACME Ltd " and "acme ltd" agree: keyers
//! are judged on content, not on spacing or case. A field one keyer left out counts as a
//! disagreement unless every keyer left it out.

use std::collections::BTreeSet;

use super::Fields;
use crate::id::WorkerId;

/// Most keyers on one consensus task: SageMaker Ground Truth allows up to 9, and more adds cost
/// without adding agreement information.
pub const KEYERS_MAX: usize = 9;
/// Most fields compared in one answer; larger forms are split into several tasks.
pub const FIELDS_MAX: usize = 500;

/// One keyer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub worker_id: WorkerId,
    pub fields: Fields,
}

/// How the keyers fared on one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldComparison {
    pub field: String,
    /// Whether every keyer gave the same (normalized) value.
    pub agreed: bool,
    /// Each keyer's normalized value, `None` where the keyer left the field out.
    pub values: Vec<(WorkerId, Option<String>)>,
}

/// The comparison of all answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub fields: Vec<FieldComparison>,
    /// Share of fields on which every keyer agrees (1 when there are no fields).
    pub field_agreement: f64,
    /// Share of (keyer pair, field) combinations that agree: less harsh than `field_agreement`
    /// when one keyer of many is the odd one out.
    pub pairwise_agreement: f64,
}

impl Comparison {
    /// The fields an adjudicator must rule on.
    pub fn disputed(&self) -> impl Iterator<Item = &FieldComparison> {
        self.fields.iter().filter(|f| !f.agreed)
    }

    /// Whether the answers settle the task without an adjudicator.
    pub fn is_unanimous(&self) -> bool {
        self.fields.iter().all(|f| f.agreed)
    }
}

/// Why answers cannot be compared or a ruling cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusRefusal {
    #[error("consensus needs between 2 and {max} answers, got {got}")]
    KeyerCount { got: usize, max: usize },
    #[error("worker {worker_id} answered twice; keyers must be distinct")]
    DuplicateKeyer { worker_id: WorkerId },
    #[error("an answer has {got} fields; the limit is {max}")]
    TooManyFields { got: usize, max: usize },
    #[error("the ruling leaves disputed field {field:?} without a value")]
    RulingIncomplete { field: String },
    #[error("the ruling sets field {field:?}, which no keyer disputed")]
    RulingOutsideDispute { field: String },
}

/// Trims, collapses inner whitespace and lowercases a value.
pub fn normalize(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Compares the answers field by field.
pub fn compare(answers: &[Answer]) -> Result<Comparison, ConsensusRefusal> {
    if answers.len() < 2 || answers.len() > KEYERS_MAX {
        return Err(ConsensusRefusal::KeyerCount {
            got: answers.len(),
            max: KEYERS_MAX,
        });
    }
    let mut seen = BTreeSet::new();
    for answer in answers {
        if !seen.insert(answer.worker_id) {
            return Err(ConsensusRefusal::DuplicateKeyer {
                worker_id: answer.worker_id,
            });
        }
        if answer.fields.len() > FIELDS_MAX {
            return Err(ConsensusRefusal::TooManyFields {
                got: answer.fields.len(),
                max: FIELDS_MAX,
            });
        }
    }
    let names: BTreeSet<&String> = answers.iter().flat_map(|a| a.fields.keys()).collect();
    let mut fields = Vec::with_capacity(names.len());
    let (mut pairs, mut pairs_agreeing) = (0u64, 0u64);
    for name in names {
        let values: Vec<(WorkerId, Option<String>)> = answers
            .iter()
            .map(|a| (a.worker_id, a.fields.get(name).map(|v| normalize(v))))
            .collect();
        for (idx, (_, left)) in values.iter().enumerate() {
            for (_, right) in &values[idx + 1..] {
                pairs += 1;
                pairs_agreeing += u64::from(left == right);
            }
        }
        let agreed = values.iter().all(|(_, v)| *v == values[0].1);
        fields.push(FieldComparison {
            field: name.clone(),
            agreed,
            values,
        });
    }
    let n_fields = fields.len();
    let n_agreed = fields.iter().filter(|f| f.agreed).count();
    Ok(Comparison {
        field_agreement: ratio(n_agreed as u64, n_fields as u64),
        pairwise_agreement: ratio(pairs_agreeing, pairs),
        fields,
    })
}

fn ratio(part: u64, whole: u64) -> f64 {
    match whole {
        0 => 1.0,
        _ => part as f64 / whole as f64,
    }
}

/// How one keyer fared against the final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyerResult {
    pub worker_id: WorkerId,
    /// Disputed fields on which the keyer matched the ruling.
    pub right: Vec<String>,
    /// Disputed fields on which the keyer did not.
    pub wrong: Vec<String>,
}

impl KeyerResult {
    /// Whether the keyer's whole answer was right: one check of the worker's accuracy.
    pub fn correct(&self) -> bool {
        self.wrong.is_empty()
    }
}

/// The settled answer and who was right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjudication {
    /// The final value of every field (agreed ones as keyed, disputed ones as ruled).
    pub fields: Fields,
    pub keyers: Vec<KeyerResult>,
}

/// Applies an adjudicator's ruling on the disputed fields. The ruling must give a value for
/// every disputed field and only for those. An empty value rules that the field has none.
pub fn adjudicate(
    comparison: &Comparison,
    ruling: &Fields,
) -> Result<Adjudication, ConsensusRefusal> {
    for field in ruling.keys() {
        if !comparison.disputed().any(|f| &f.field == field) {
            return Err(ConsensusRefusal::RulingOutsideDispute {
                field: field.clone(),
            });
        }
    }
    let mut fields = Fields::new();
    let mut keyers: Vec<KeyerResult> = comparison
        .fields
        .first()
        .map(|f| &f.values)
        .into_iter()
        .flatten()
        .map(|(worker_id, _)| KeyerResult {
            worker_id: *worker_id,
            right: Vec::new(),
            wrong: Vec::new(),
        })
        .collect();
    for field in &comparison.fields {
        if field.agreed {
            if let Some(value) = &field.values[0].1 {
                fields.insert(field.field.clone(), value.clone());
            }
            continue;
        }
        let ruled = ruling
            .get(&field.field)
            .ok_or_else(|| ConsensusRefusal::RulingIncomplete {
                field: field.field.clone(),
            })?;
        let ruled = Some(normalize(ruled)).filter(|v| !v.is_empty());
        if let Some(value) = &ruled {
            fields.insert(field.field.clone(), value.clone());
        }
        for (keyer, (_, value)) in keyers.iter_mut().zip(&field.values) {
            match *value == ruled {
                true => keyer.right.push(field.field.clone()),
                false => keyer.wrong.push(field.field.clone()),
            }
        }
    }
    Ok(Adjudication { fields, keyers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(n: u128) -> WorkerId {
        WorkerId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn answer(n: u128, pairs: &[(&str, &str)]) -> Answer {
        Answer {
            worker_id: worker(n),
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Compares answers and renders the comparison: one line per field ("=" agreed, "≠"
    /// disputed) and the two agreement figures.
    fn check(answers: &[Answer], expected: &str) {
        let actual = match compare(answers) {
            Err(refusal) => refusal.to_string(),
            Ok(comparison) => {
                let mut lines: Vec<String> = comparison
                    .fields
                    .iter()
                    .map(|f| {
                        let values: Vec<String> = f
                            .values
                            .iter()
                            .map(|(_, v)| v.clone().unwrap_or_else(|| "-".into()))
                            .collect();
                        format!(
                            "{} {} {}",
                            if f.agreed { "=" } else { "≠" },
                            f.field,
                            values.join("|")
                        )
                    })
                    .collect();
                lines.push(format!(
                    "fields {:.3} pairs {:.3}",
                    comparison.field_agreement, comparison.pairwise_agreement
                ));
                lines.join("\n")
            }
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn comparisons() {
        check(
            &[
                answer(1, &[("name", "ACME  Ltd"), ("total", "100.00")]),
                answer(2, &[("name", "acme ltd"), ("total", "100.00")]),
            ],
            "= name acme ltd|acme ltd\n= total 100.00|100.00\nfields 1.000 pairs 1.000",
        );
        check(
            &[
                answer(1, &[("name", "acme"), ("total", "100.00")]),
                answer(2, &[("name", "acme"), ("total", "10.00")]),
                answer(3, &[("name", "acme"), ("total", "100.00"), ("vat", "18")]),
            ],
            "= name acme|acme|acme\n≠ total 100.00|10.00|100.00\n≠ vat -|-|18\nfields 0.333 pairs 0.556",
        );
        check(
            &[answer(1, &[])],
            "consensus needs between 2 and 9 answers, got 1",
        );
        check(
            &[answer(1, &[]), answer(1, &[])],
            "worker 00000000-0000-0000-0000-000000000001 answered twice; keyers must be distinct",
        );
        check(
            &[answer(1, &[]), answer(2, &[])],
            "fields 1.000 pairs 1.000",
        );
    }

    #[test]
    fn adjudication_records_who_was_right() {
        let answers = [
            answer(1, &[("name", "acme"), ("total", "100.00")]),
            answer(2, &[("name", "acme"), ("total", "10.00"), ("vat", "18")]),
        ];
        let comparison = compare(&answers).unwrap();
        assert!(!comparison.is_unanimous());
        let ruling: Fields = [("total", "100.00"), ("vat", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let adjudication = adjudicate(&comparison, &ruling).unwrap();
        assert_eq!(
            adjudication.fields,
            [("name", "acme"), ("total", "100.00")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Fields>()
        );
        assert_eq!(
            adjudication.keyers,
            vec![
                KeyerResult {
                    worker_id: worker(1),
                    right: vec!["total".into(), "vat".into()],
                    wrong: vec![],
                },
                KeyerResult {
                    worker_id: worker(2),
                    right: vec![],
                    wrong: vec!["total".into(), "vat".into()],
                },
            ]
        );
        assert!(adjudication.keyers[0].correct() && !adjudication.keyers[1].correct());

        let partial: Fields = [("total".to_string(), "100.00".to_string())].into();
        assert_eq!(
            adjudicate(&comparison, &partial),
            Err(ConsensusRefusal::RulingIncomplete {
                field: "vat".into()
            })
        );
        let outside: Fields = [
            ("total".to_string(), "1".to_string()),
            ("vat".to_string(), "1".to_string()),
            ("name".to_string(), "x".to_string()),
        ]
        .into();
        assert_eq!(
            adjudicate(&comparison, &outside),
            Err(ConsensusRefusal::RulingOutsideDispute {
                field: "name".into()
            })
        );
    }
}
