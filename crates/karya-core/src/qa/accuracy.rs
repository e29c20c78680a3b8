//! Accuracy as an SLA term: the share of checked work that was right, with a Wilson interval.
//!
//! Evidence comes from three sources, counted alike: reviews (a pass is right, a fail wrong),
//! adjudicated consensus answers (right when the keyer matched the ruling on every disputed
//! field) and scored gold tasks. Because adaptive sampling checks weak workers more than strong
//! ones, pooling all checks would overstate the error of the whole engagement; the engagement
//! figure is therefore stratified by worker: each worker's interval is weighted by the share of
//! the engagement's work that worker did. Weighting the bounds keeps the interval conservative:
//! when every worker's interval covers that worker's rate, the weighted interval covers the
//! engagement's.

use super::stats::{wilson, Interval};

/// Checks of one kind or of all kinds: how many, and how many were right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    pub checks: u64,
    pub correct: u64,
}

impl Evidence {
    pub fn plus(self, other: Evidence) -> Evidence {
        Evidence {
            checks: self.checks + other.checks,
            correct: self.correct + other.correct,
        }
    }
}

/// Where an accuracy figure's evidence came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    pub reviews: Evidence,
    pub consensus: Evidence,
    pub gold: Evidence,
}

impl Sources {
    pub fn total(&self) -> Evidence {
        self.reviews.plus(self.consensus).plus(self.gold)
    }
}

/// An accuracy estimate with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccuracyEstimate {
    /// The point estimate (share right); 1 with no evidence, with the interval `[0, 1]`.
    pub accuracy: f64,
    pub interval: Interval,
    pub confidence: f64,
    pub checks: u64,
}

impl AccuracyEstimate {
    /// Whether the target is met beyond doubt (the lower bound reaches it), in doubt, or
    /// missed beyond doubt (the upper bound falls short).
    pub fn against(&self, target: f64) -> TargetStatus {
        if self.interval.low >= target {
            TargetStatus::Met
        } else if self.interval.high < target {
            TargetStatus::Missed
        } else {
            TargetStatus::Undetermined
        }
    }
}

/// An estimate read against the SLA's accuracy target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStatus {
    Met,
    Undetermined,
    Missed,
}

impl TargetStatus {
    pub fn code(self) -> &'static str {
        match self {
            TargetStatus::Met => "met",
            TargetStatus::Undetermined => "undetermined",
            TargetStatus::Missed => "missed",
        }
    }
}

/// The accuracy of one stratum (one worker, or evidence pooled on purpose).
pub fn estimate(evidence: Evidence, confidence: f64) -> AccuracyEstimate {
    let accuracy = match evidence.checks {
        0 => 1.0,
        n => evidence.correct as f64 / n as f64,
    };
    AccuracyEstimate {
        accuracy,
        interval: wilson(evidence.correct, evidence.checks, confidence),
        confidence,
        checks: evidence.checks,
    }
}

/// One worker's part of an engagement: the tasks they completed in the period and the
/// evidence about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stratum {
    pub tasks: u64,
    pub evidence: Evidence,
}

/// The engagement's accuracy, stratified by worker and weighted by tasks done.
pub fn stratified(strata: &[Stratum], confidence: f64) -> AccuracyEstimate {
    let tasks: u64 = strata.iter().map(|s| s.tasks).sum();
    let checks: u64 = strata.iter().map(|s| s.evidence.checks).sum();
    if tasks == 0 {
        return estimate(Evidence::default(), confidence);
    }
    let (mut accuracy, mut low, mut high) = (0.0, 0.0, 0.0);
    for stratum in strata {
        let weight = stratum.tasks as f64 / tasks as f64;
        let one = estimate(stratum.evidence, confidence);
        accuracy += weight * one.accuracy;
        low += weight * one.interval.low;
        high += weight * one.interval.high;
    }
    AccuracyEstimate {
        accuracy,
        interval: Interval {
            low,
            high: high.min(1.0),
        },
        confidence,
        checks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(checks: u64, correct: u64) -> Evidence {
        Evidence { checks, correct }
    }

    #[test]
    fn estimates_pool_sources_and_read_against_targets() {
        let sources = Sources {
            reviews: evidence(80, 76),
            consensus: evidence(10, 10),
            gold: evidence(10, 9),
        };
        let one = estimate(sources.total(), 0.95);
        assert_eq!(one.checks, 100);
        assert!((one.accuracy - 0.95).abs() < 1e-12);
        assert!(one.interval.low < 0.95 && one.interval.high > 0.95);
        assert_eq!(one.against(0.90), TargetStatus::Undetermined);
        assert_eq!(
            estimate(evidence(1000, 990), 0.95).against(0.98),
            TargetStatus::Met
        );
        assert_eq!(
            estimate(evidence(1000, 900), 0.95).against(0.98),
            TargetStatus::Missed
        );
        let none = estimate(Evidence::default(), 0.95);
        assert_eq!(
            (none.accuracy, none.interval.low, none.interval.high),
            (1.0, 0.0, 1.0)
        );
    }

    #[test]
    fn stratification_undoes_the_sampling_bias() {
        // A strong worker checked lightly and a weak one checked fully: pooling the checks
        // would say 1 − 18/230 ≈ 92%; by tasks done the engagement is near 95%.
        let strata = [
            Stratum {
                tasks: 1000,
                evidence: evidence(30, 30),
            },
            Stratum {
                tasks: 200,
                evidence: evidence(200, 182),
            },
        ];
        let engagement = stratified(&strata, 0.95);
        let expected = (1000.0 * 1.0 + 200.0 * 0.91) / 1200.0;
        assert!((engagement.accuracy - expected).abs() < 1e-12);
        assert!(engagement.interval.contains(0.95));
        assert_eq!(engagement.checks, 230);
        assert_eq!(
            stratified(&[], 0.95).interval,
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
    }
}
