//! Adaptive sampling: how much of one worker's work on one step of one engagement a reviewer
//! checks.
//!
//! The worker's error rate `p` on the step gets a Beta posterior from the checks so far
//! (reviews, adjudicated consensus answers, gold tasks): Beta(1 + errors, 1 + passes) from a
//! uniform prior. The engagement sets the error target `t` (1 − the accuracy target) and the
//! confidence `c` it wants. Then, in order:
//!
//! 1. fewer than `min_checks` checks: a new worker, everything is reviewed;
//! 2. an error among the last `checks_after_failure` checks: everything is reviewed again;
//! 3. P(p > t) ≥ c: the worker is confidently above target, everything is reviewed;
//! 4. P(p ≤ t) < c: not yet confident the worker meets the target, everything is reviewed;
//! 5. otherwise the rate is (1 − P(p ≤ t)) / (1 − c), at least `floor_rate`: it falls smoothly
//!    from 1 towards the floor as confidence in a low error rate rises.
//!
//! Each decision carries its reason and the figures behind it, so it can be stored as an event
//! and recomputed by an auditor. The random draw is an argument; [`draw`] derives it from the
//! task id, which makes a decision reproducible from the log alone.

use sha2::{Digest, Sha256};

use crate::id::TaskId;

/// The most checks a worker must pass before sampling may fall below 100%; a larger value
/// would never let a worker of average volume leave full review.
pub const MIN_CHECKS_MAX: u32 = 1_000;

/// An engagement's sampling settings for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingPolicy {
    /// The highest acceptable error rate: 1 − the accuracy target (0.05 for 95% accuracy).
    pub error_target: f64,
    /// How sure the firm must be that a worker meets the target before reviewing less.
    pub confidence: f64,
    /// Checks a new worker must have before sampling may fall below 100%.
    pub min_checks: u32,
    /// The lowest sampling rate: some work of every worker is always checked.
    pub floor_rate: f64,
    /// After an error, this many further checks are made at 100%.
    pub checks_after_failure: u32,
}

impl Default for SamplingPolicy {
    fn default() -> SamplingPolicy {
        SamplingPolicy {
            error_target: 0.05,
            confidence: 0.9,
            min_checks: 30,
            floor_rate: 0.03,
            checks_after_failure: 5,
        }
    }
}

/// A sampling policy with values out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("the accuracy target must lie strictly between 0 and 1")]
    ErrorTargetOutOfRange,
    #[error("the confidence must lie between 0.5 and 1 (exclusive)")]
    ConfidenceOutOfRange,
    #[error("the sampling floor must lie in (0, 1]")]
    FloorOutOfRange,
    #[error("min_checks is at most {max}")]
    MinChecksTooLarge { max: u32 },
    #[error("checks_after_failure is at most {max}")]
    ChecksAfterFailureTooLarge { max: u32 },
}

impl SamplingPolicy {
    pub fn check(&self) -> Result<(), PolicyRefusal> {
        if !(self.error_target > 0.0 && self.error_target < 1.0) {
            return Err(PolicyRefusal::ErrorTargetOutOfRange);
        }
        if !(self.confidence >= 0.5 && self.confidence < 1.0) {
            return Err(PolicyRefusal::ConfidenceOutOfRange);
        }
        if !(self.floor_rate > 0.0 && self.floor_rate <= 1.0) {
            return Err(PolicyRefusal::FloorOutOfRange);
        }
        if self.min_checks > MIN_CHECKS_MAX {
            return Err(PolicyRefusal::MinChecksTooLarge {
                max: MIN_CHECKS_MAX,
            });
        }
        if self.checks_after_failure > MIN_CHECKS_MAX {
            return Err(PolicyRefusal::ChecksAfterFailureTooLarge {
                max: MIN_CHECKS_MAX,
            });
        }
        Ok(())
    }
}

/// The evidence about one worker on one step of one engagement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplingState {
    /// Outcomes known: reviews, adjudicated consensus answers, scored gold tasks.
    pub checks: u64,
    /// Of which wrong.
    pub errors: u64,
    /// Checks since the most recent error; `None` if there has been no error.
    pub checks_since_error: Option<u64>,
}

impl SamplingState {
    /// The state after one more checked outcome.
    pub fn record(self, correct: bool) -> SamplingState {
        if correct {
            SamplingState {
                checks: self.checks + 1,
                errors: self.errors,
                checks_since_error: self.checks_since_error.map(|n| n + 1),
            }
        } else {
            SamplingState {
                checks: self.checks + 1,
                errors: self.errors + 1,
                checks_since_error: Some(0),
            }
        }
    }

    /// P(p ≤ target) under the posterior Beta(1 + errors, 1 + passes).
    pub fn probability_within(&self, error_target: f64) -> f64 {
        let a = 1.0 + self.errors as f64;
        let b = 1.0 + (self.checks - self.errors) as f64;
        super::stats::beta_cdf(error_target, a, b)
    }

    /// The posterior mean of the error rate.
    pub fn error_mean(&self) -> f64 {
        (1.0 + self.errors as f64) / (2.0 + self.checks as f64)
    }
}

/// Why the rate is what it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplingReason {
    NewWorker { checks: u64, needed: u32 },
    RecentError { checks_since: u64, needed: u32 },
    AboveTarget { probability_above: f64 },
    Uncertain { probability_within: f64 },
    WithinTarget { probability_within: f64 },
}

impl SamplingReason {
    /// A stable code for events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SamplingReason::NewWorker { .. } => "new_worker",
            SamplingReason::RecentError { .. } => "recent_error",
            SamplingReason::AboveTarget { .. } => "above_target",
            SamplingReason::Uncertain { .. } => "uncertain",
            SamplingReason::WithinTarget { .. } => "within_target",
        }
    }

    /// The reason as a sentence for people.
    pub fn describe(&self) -> String {
        match self {
            SamplingReason::NewWorker { checks, needed } => {
                format!("new on this step: {checks} of {needed} checks needed before sampling")
            }
            SamplingReason::RecentError {
                checks_since,
                needed,
            } => format!("error found {checks_since} checks ago; full review for {needed} checks"),
            SamplingReason::AboveTarget { probability_above } => format!(
                "error rate above target with probability {probability_above:.3}"
            ),
            SamplingReason::Uncertain { probability_within } => format!(
                "error rate within target with probability {probability_within:.3}, not yet confident"
            ),
            SamplingReason::WithinTarget { probability_within } => format!(
                "error rate within target with probability {probability_within:.3}"
            ),
        }
    }
}

/// The sampling rate for a worker now, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingRate {
    pub rate: f64,
    pub reason: SamplingReason,
    /// Posterior mean of the worker's error rate.
    pub error_mean: f64,
}

/// One decision: review this task or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingDecision {
    pub review: bool,
    /// The draw compared with the rate, recorded so the decision can be checked.
    pub draw: f64,
    pub rate: SamplingRate,
}

/// The sampling rate the evidence calls for.
pub fn rate(policy: &SamplingPolicy, state: &SamplingState) -> SamplingRate {
    let error_mean = state.error_mean();
    let full = |reason| SamplingRate {
        rate: 1.0,
        reason,
        error_mean,
    };
    if state.checks < u64::from(policy.min_checks) {
        return full(SamplingReason::NewWorker {
            checks: state.checks,
            needed: policy.min_checks,
        });
    }
    if let Some(since) = state.checks_since_error {
        if since < u64::from(policy.checks_after_failure) {
            return full(SamplingReason::RecentError {
                checks_since: since,
                needed: policy.checks_after_failure,
            });
        }
    }
    let within = state.probability_within(policy.error_target);
    if 1.0 - within >= policy.confidence {
        return full(SamplingReason::AboveTarget {
            probability_above: 1.0 - within,
        });
    }
    if within < policy.confidence {
        return full(SamplingReason::Uncertain {
            probability_within: within,
        });
    }
    let scaled = (1.0 - within) / (1.0 - policy.confidence);
    SamplingRate {
        rate: scaled.clamp(policy.floor_rate, 1.0),
        reason: SamplingReason::WithinTarget {
            probability_within: within,
        },
        error_mean,
    }
}

/// Decides whether a submitted task is reviewed, given a uniform draw in `[0, 1)`.
pub fn decide(policy: &SamplingPolicy, state: &SamplingState, draw: f64) -> SamplingDecision {
    debug_assert!((0.0..1.0).contains(&draw), "draw outside [0, 1)");
    let rate = rate(policy, state);
    SamplingDecision {
        review: draw < rate.rate,
        draw,
        rate,
    }
}

/// A uniform draw in `[0, 1)` derived from the task and its submission number: unpredictable to
/// the worker, yet anyone holding the log can recompute it.
pub fn draw(task_id: TaskId, submission: u32) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(b"karya.qa.sampling.v1");
    hasher.update(task_id.as_uuid().as_bytes());
    hasher.update(submission.to_be_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    // The top 53 bits make an exactly representable fraction below 1.
    (u64::from_be_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(checks: u64, errors: u64, checks_since_error: Option<u64>) -> SamplingState {
        SamplingState {
            checks,
            errors,
            checks_since_error,
        }
    }

    /// The rate for a state under the default policy, as `"<reason> <rate>"`.
    fn check(state: SamplingState, expected: &str) {
        let rate = rate(&SamplingPolicy::default(), &state);
        assert_eq!(format!("{} {:.3}", rate.reason.code(), rate.rate), expected);
    }

    #[test]
    fn sampling_rates() {
        // New workers are reviewed fully until 30 checks.
        check(state(0, 0, None), "new_worker 1.000");
        check(state(29, 0, None), "new_worker 1.000");
        // 30 clean checks: P(p ≤ 5%) = 1 − 0.95^31 ≈ 0.80 < 0.9, still uncertain.
        check(state(30, 0, None), "uncertain 1.000");
        // 60 clean checks: 1 − 0.95^61 ≈ 0.956: the rate starts to fall.
        check(state(60, 0, None), "within_target 0.438");
        // 100 clean checks: ≈ 0.9944.
        check(state(100, 0, None), "within_target 0.056");
        // 200 clean checks: the floor.
        check(state(200, 0, None), "within_target 0.030");
        // An error jumps back to full review for the next five checks.
        check(state(201, 1, Some(0)), "recent_error 1.000");
        check(state(205, 1, Some(4)), "recent_error 1.000");
        check(state(206, 1, Some(5)), "within_target 0.030");
        // 16 errors in 200: confidently above 5%.
        check(state(200, 16, Some(10)), "above_target 1.000");
        // 4 errors in 200 (2%): within target.
        check(state(200, 4, Some(40)), "within_target 0.256");
    }

    #[test]
    fn the_rate_falls_as_clean_evidence_grows_and_rises_after_errors() {
        let policy = SamplingPolicy::default();
        let mut state = SamplingState::default();
        let mut previous = 1.0;
        for _ in 0..300 {
            state = state.record(true);
            let now = rate(&policy, &state).rate;
            assert!(now <= previous, "rate rose on a clean check");
            previous = now;
        }
        assert_eq!(previous, policy.floor_rate);
        state = state.record(false);
        assert_eq!(rate(&policy, &state).rate, 1.0);
        assert_eq!(state.checks_since_error, Some(0));
        assert_eq!(state.record(true).checks_since_error, Some(1));
    }

    #[test]
    fn decisions_follow_the_draw_and_draws_are_reproducible() {
        let policy = SamplingPolicy::default();
        let clean = state(100, 0, None);
        assert!(decide(&policy, &clean, 0.01).review);
        assert!(!decide(&policy, &clean, 0.5).review);
        assert!(decide(&policy, &state(0, 0, None), 0.999).review);

        let task = TaskId::from_uuid(uuid::Uuid::from_u128(42));
        assert_eq!(draw(task, 1), draw(task, 1));
        assert_ne!(draw(task, 1), draw(task, 2));
        // Draws over many ids are spread over [0, 1).
        let n = 10_000u128;
        let mean: f64 = (0..n)
            .map(|i| draw(TaskId::from_uuid(uuid::Uuid::from_u128(i)), 1))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean draw {mean}");
    }

    #[test]
    fn policies_out_of_range_are_refused() {
        let ok = SamplingPolicy::default();
        assert_eq!(ok.check(), Ok(()));
        let cases = [
            (
                SamplingPolicy {
                    error_target: 0.0,
                    ..ok
                },
                PolicyRefusal::ErrorTargetOutOfRange,
            ),
            (
                SamplingPolicy {
                    confidence: 1.0,
                    ..ok
                },
                PolicyRefusal::ConfidenceOutOfRange,
            ),
            (
                SamplingPolicy {
                    floor_rate: 0.0,
                    ..ok
                },
                PolicyRefusal::FloorOutOfRange,
            ),
            (
                SamplingPolicy {
                    min_checks: MIN_CHECKS_MAX + 1,
                    ..ok
                },
                PolicyRefusal::MinChecksTooLarge {
                    max: MIN_CHECKS_MAX,
                },
            ),
        ];
        for (policy, expected) in cases {
            assert_eq!(policy.check(), Err(expected));
        }
    }
}
