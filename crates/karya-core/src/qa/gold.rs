//! Gold tasks: items whose answer is known, mixed unannounced into a worker's queue and scored
//! automatically against that answer.
//!
//! A gold answer is scored field by field (values normalized as in consensus); the task is
//! correct when every expected field matches. When a worker's accuracy over their recent gold
//! tasks on a step falls below the engagement's threshold, the worker is paused on that step
//! and the lead is told: the verdict says so, the shell carries it out.

use super::consensus::normalize;
use super::Fields;

/// The most recent gold results the verdict looks at; older ones describe a worker who may
/// since have learned.
pub const GOLD_WINDOW_MAX: u32 = 200;

/// The engagement's gold settings for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoldPolicy {
    /// How many of the most recent gold results count.
    pub window: u32,
    /// Fewest scored gold tasks before a verdict can pause anyone.
    pub min_scored: u32,
    /// Lowest acceptable share of correct gold answers in the window.
    pub accuracy_threshold: f64,
}

impl Default for GoldPolicy {
    fn default() -> GoldPolicy {
        GoldPolicy {
            window: 20,
            min_scored: 5,
            accuracy_threshold: 0.8,
        }
    }
}

/// The score of one gold answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldScore {
    pub fields_checked: usize,
    /// Expected fields the answer got wrong or left out.
    pub fields_wrong: Vec<String>,
}

impl GoldScore {
    pub fn correct(&self) -> bool {
        self.fields_wrong.is_empty()
    }
}

/// Scores an answer against the known one. Fields the answer has beyond the expected ones are
/// ignored: gold sets may cover only the fields that matter.
pub fn score(expected: &Fields, answer: &Fields) -> GoldScore {
    let fields_wrong = expected
        .iter()
        .filter(|(name, value)| answer.get(*name).map(|v| normalize(v)) != Some(normalize(value)))
        .map(|(name, _)| name.clone())
        .collect();
    GoldScore {
        fields_checked: expected.len(),
        fields_wrong,
    }
}

/// What the recent gold results say about a worker on a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GoldVerdict {
    /// Too few gold results yet to judge.
    TooFew {
        scored: u32,
        needed: u32,
    },
    Continue {
        accuracy: f64,
        scored: u32,
    },
    /// Below threshold: pause the worker on the step and notify the lead.
    Pause {
        accuracy: f64,
        scored: u32,
    },
}

/// Judges a worker by the gold results on a step, oldest first (`true` = correct).
pub fn verdict(policy: &GoldPolicy, results: &[bool]) -> GoldVerdict {
    let window = policy.window.min(GOLD_WINDOW_MAX) as usize;
    let recent = &results[results.len().saturating_sub(window)..];
    let scored = recent.len() as u32;
    if scored < policy.min_scored || scored == 0 {
        return GoldVerdict::TooFew {
            scored,
            needed: policy.min_scored,
        };
    }
    let accuracy = recent.iter().filter(|ok| **ok).count() as f64 / f64::from(scored);
    if accuracy < policy.accuracy_threshold {
        GoldVerdict::Pause { accuracy, scored }
    } else {
        GoldVerdict::Continue { accuracy, scored }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn gold_answers_are_scored_field_by_field() {
        let expected = fields(&[("icd10", "J45.909"), ("laterality", "none")]);
        let right = score(
            &expected,
            &fields(&[("icd10", " j45.909"), ("laterality", "None"), ("note", "x")]),
        );
        assert!(right.correct());
        assert_eq!(right.fields_checked, 2);
        let wrong = score(&expected, &fields(&[("icd10", "J45.901")]));
        assert_eq!(
            wrong.fields_wrong,
            vec!["icd10".to_string(), "laterality".to_string()]
        );
        assert!(!wrong.correct());
    }

    fn check(results: &str, expected: &str) {
        // "1" correct, "0" wrong, oldest first.
        let results: Vec<bool> = results.chars().map(|c| c == '1').collect();
        let actual = match verdict(&GoldPolicy::default(), &results) {
            GoldVerdict::TooFew { scored, needed } => format!("too_few {scored}/{needed}"),
            GoldVerdict::Continue { accuracy, scored } => {
                format!("continue {accuracy:.2} of {scored}")
            }
            GoldVerdict::Pause { accuracy, scored } => format!("pause {accuracy:.2} of {scored}"),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn gold_verdicts() {
        check("", "too_few 0/5");
        check("0000", "too_few 4/5");
        check("11110", "continue 0.80 of 5");
        check("11100", "pause 0.60 of 5");
        // Only the last 20 count: early failures are forgiven once the worker has learned.
        check(
            &format!("{}{}", "0".repeat(10), "1".repeat(20)),
            "continue 1.00 of 20",
        );
        check(
            &format!("{}{}", "1".repeat(30), "00000"),
            "pause 0.75 of 20",
        );
    }
}
