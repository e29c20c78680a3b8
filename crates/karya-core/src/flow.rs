//! How a work item flows through its pack: which step comes after which, and how a pack's
//! declarations become the settings of the engines (routing requirements, SLA terms, QA
//! sampling, decision types).
//!
//! Everything here is a pure function of a [`Pack`] (or of the step list an engagement keeps
//! from it). The store applies the results; it never decides the next step itself.

use jiff::SignedDuration;

use crate::decision::authority::{DecisionType as EngineDecisionType, Inverse as EngineInverse};
use crate::model::{Designation, Priority};
use crate::pack::{self, Authority, Pack, Step, StepKind};
use crate::qa::duty::ReviewerRequirements;
use crate::qa::sampling::SamplingPolicy;
use crate::routing::{expr, Requirements, SkillRequirement};
use crate::sla::SlaTerms;

/// The capacity channel a pack step's task weighs on. Every pack task uses one unit of the
/// same channel, so a worker's capacity counts tasks, whatever their line.
pub const STEP_CHANNEL: &str = "default";
/// Capacity units one pack task takes.
pub const STEP_WEIGHT: u32 = 1;
/// On-time share promised when a pack names none: packs state accuracy targets, and the firm's
/// standard turnaround promise is 95% of items on time.
pub const ON_TIME_TARGET_BP: u32 = 9_500;

/// Claims of one processor job before it is handed to a person: a processor that fails this
/// often on the same input will not succeed by trying again.
pub const JOB_ATTEMPTS_MAX: u32 = 5;
/// Wait before the second attempt of a failed job; each further failure doubles it.
pub const JOB_RETRY_BASE: SignedDuration = SignedDuration::from_secs(30);
/// Longest wait between two attempts of a job, however many have failed.
pub const JOB_RETRY_MAX: SignedDuration = SignedDuration::from_secs(30 * 60);

/// What follows a failed attempt of a processor job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFailure {
    /// Try again once `after` has passed.
    Retry { after: SignedDuration },
    /// Every attempt is used: the step goes to a person, as a task of the same step, so the
    /// item keeps moving (and its SLA clock keeps running: the failure is the firm's).
    HandOff,
}

/// What follows the failure of a job's `attempts`-th attempt (counting from one).
pub fn after_failure(attempts: u32) -> JobFailure {
    if attempts >= JOB_ATTEMPTS_MAX {
        return JobFailure::HandOff;
    }
    // 2^10 times the base is already far beyond the maximum.
    let doublings = attempts.saturating_sub(1).min(10);
    let after = JOB_RETRY_BASE
        .checked_mul(1i32 << doublings)
        .unwrap_or(JOB_RETRY_MAX)
        .min(JOB_RETRY_MAX);
    JobFailure::Retry { after }
}

/// One step of a plan, as an engagement keeps it from its pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    pub name: String,
    /// The processor that runs the step, or `None` for a person.
    pub processor: Option<String>,
}

/// What happens after a step finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<'a> {
    /// The next step, done by a person: create its task.
    Task(&'a PlanStep),
    /// The next step, run by a processor: queue its job.
    Job(&'a PlanStep),
    /// That was the last step: deliver.
    Deliver,
}

/// A step that is not in the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step:?} is not a step of this engagement's pack")]
pub struct UnknownStep {
    pub step: String,
}

/// The plan of a pack: its steps in order.
pub fn plan_of(pack: &Pack) -> Vec<PlanStep> {
    pack.steps
        .iter()
        .map(|step| PlanStep {
            name: step.name.clone(),
            processor: match &step.kind {
                StepKind::Human => None,
                StepKind::Processor { processor } => Some(processor.clone()),
            },
        })
        .collect()
}

/// The first step of a plan. A validated pack has at least one step.
pub fn first(plan: &[PlanStep]) -> Next<'_> {
    match plan.first() {
        None => Next::Deliver,
        Some(step) => next_of(step),
    }
}

/// What follows `finished` in the plan.
pub fn after<'a>(plan: &'a [PlanStep], finished: &str) -> Result<Next<'a>, UnknownStep> {
    let idx = plan
        .iter()
        .position(|step| step.name == finished)
        .ok_or_else(|| UnknownStep {
            step: finished.to_string(),
        })?;
    Ok(match plan.get(idx + 1) {
        None => Next::Deliver,
        Some(step) => next_of(step),
    })
}

fn next_of(step: &PlanStep) -> Next<'_> {
    match step.processor {
        None => Next::Task(step),
        Some(_) => Next::Job(step),
    }
}

/// A deliverable file name with `{external_ref}` and `{work_item_id}` filled in. Characters
/// that could leave the name or break a header are replaced by `_`.
pub fn file_name(template: &str, external_ref: Option<&str>, work_item_id: &str) -> String {
    let filled = template
        .replace("{external_ref}", external_ref.unwrap_or(work_item_id))
        .replace("{work_item_id}", work_item_id);
    filled
        .chars()
        .map(|c| match c {
            '/' | '\\' | '"' | ';' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// The routing requirements of a human step. "At least one of" qualifications and the lowest
/// designation become a target expression; skills and languages map one to one.
pub fn step_requirements(step: &Step) -> Requirements {
    let req = &step.requirements;
    let mut clauses = Vec::new();
    if !req.qualifications_any.is_empty() {
        let any: Vec<String> = req
            .qualifications_any
            .iter()
            .map(|q| format!("'{}' in worker.qualifications", q.code()))
            .collect();
        clauses.push(format!("({})", any.join(" || ")));
    }
    if let Some(minimum) = req.min_designation {
        let allowed: Vec<String> = DESIGNATIONS
            .iter()
            .filter(|d| **d >= minimum)
            .map(|d| format!("'{}'", d.code()))
            .collect();
        clauses.push(format!("worker.designation in [{}]", allowed.join(", ")));
    }
    let target = match clauses.is_empty() {
        true => None,
        false => Some(
            expr::parse(&clauses.join(" && "))
                .expect("qualification codes and designations make a valid expression"),
        ),
    };
    Requirements {
        qualifications: Vec::new(),
        skills: req
            .skills
            .iter()
            .map(|s| SkillRequirement {
                skill: s.skill.clone(),
                level_min: s.min_level,
                optional: false,
            })
            .collect(),
        languages: req.languages.clone(),
        allowed_sites: None,
        home_sites: Vec::new(),
        target,
        channel: STEP_CHANNEL.to_string(),
        weight: STEP_WEIGHT,
        expected_handling: SignedDuration::from_mins(i64::from(step.expected_minutes)),
    }
}

/// Designations, lowest first.
const DESIGNATIONS: [Designation; 4] = [
    Designation::Analyst,
    Designation::SeniorAnalyst,
    Designation::TeamLead,
    Designation::Manager,
];

/// The SLA terms of each priority, as the SLA engine keeps them.
pub fn sla_terms(pack: &Pack) -> Vec<(Priority, SlaTerms)> {
    pack.sla
        .iter()
        .map(|terms| {
            (
                terms.priority,
                SlaTerms {
                    first_response: SignedDuration::from_mins(i64::from(
                        terms.first_response_minutes,
                    )),
                    resolution: SignedDuration::from_mins(i64::from(terms.resolution_minutes)),
                    warning_pct: (terms.warning_at.0 / 100).clamp(1, 99) as u8,
                    on_time_target_bp: ON_TIME_TARGET_BP,
                    accuracy_target_bp: u32::from(terms.accuracy_target.0),
                },
            )
        })
        .collect()
}

/// The sampling policy and reviewer rule of a pack's QA policy. What the pack does not state
/// (the floor rate, the checks before sampling may drop) keeps the engine's defaults.
pub fn qa_settings(pack: &Pack) -> (SamplingPolicy, ReviewerRequirements) {
    let whole = f64::from(pack::BasisPoints::WHOLE.0);
    let defaults = SamplingPolicy::default();
    let sampling = SamplingPolicy {
        error_target: 1.0 - f64::from(pack.qa.target_accuracy.0) / whole,
        confidence: f64::from(pack.qa.confidence.0) / whole,
        floor_rate: defaults
            .floor_rate
            .min(f64::from(pack.qa.initial_review_rate.0) / whole),
        ..defaults
    };
    let reviewers = ReviewerRequirements {
        min_designation: pack.qa.min_reviewer,
        qualification: None,
    };
    (sampling, reviewers)
}

/// A pack's decision type as the decision engine keeps it. Amount limits become minor units of
/// the currency; the payload's amount field (a JSON pointer) becomes a dotted path. A rank-only
/// authority has no amount: every rank from the minimum decides alone, and lower ranks have no
/// limit at all.
pub fn decision_type(decision: &pack::DecisionType) -> EngineDecisionType {
    let (amount_field, limits) = match &decision.authority {
        Authority::Designation { minimum } => (None, vec![(*minimum, i64::MAX)]),
        Authority::Amount { field, limits, .. } => (
            Some(field.trim_start_matches('/').replace('/', ".")),
            // A pack's payloads give amounts in the currency's major unit (a claim of 1234.50),
            // so its limits are compared in that unit too.
            limits
                .iter()
                .map(|limit| {
                    let per_major = 10_i64.pow(limit.up_to.currency.minor_digits());
                    (limit.designation, limit.up_to.minor / per_major)
                })
                .collect(),
        ),
    };
    let inverse = match &decision.inverse {
        pack::Inverse::Compensate { action } => EngineInverse::Compensate {
            action: action.clone(),
        },
        pack::Inverse::Irreversible => EngineInverse::Irreversible,
    };
    EngineDecisionType {
        name: decision.name.clone(),
        amount_field,
        limits,
        required_qualifications: Vec::new(),
        reopen_on_undo: matches!(inverse, EngineInverse::Compensate { .. }),
        inverse,
        undo_window_hours: decision.undo_window_hours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(steps: &[(&str, Option<&str>)]) -> Vec<PlanStep> {
        steps
            .iter()
            .map(|(name, processor)| PlanStep {
                name: name.to_string(),
                processor: processor.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn steps_follow_the_plan() {
        let plan = plan(&[("ocr", Some("ocr")), ("index", None), ("qc", None)]);
        let check = |finished: &str, expect: &str| {
            let got = match after(&plan, finished) {
                Ok(Next::Task(step)) => format!("task {}", step.name),
                Ok(Next::Job(step)) => format!("job {}", step.name),
                Ok(Next::Deliver) => "deliver".to_string(),
                Err(err) => err.to_string(),
            };
            assert_eq!(got, expect, "after {finished}");
        };
        check("ocr", "task index");
        check("index", "task qc");
        check("qc", "deliver");
        check(
            "review",
            "step \"review\" is not a step of this engagement's pack",
        );
        assert_eq!(first(&plan), Next::Job(&plan[0]));
        assert_eq!(first(&[]), Next::Deliver);
    }

    #[test]
    fn failed_jobs_back_off_then_go_to_a_person() {
        let check = |attempts: u32, expect: &str| {
            let got = match after_failure(attempts) {
                JobFailure::Retry { after } => format!("retry in {}s", after.as_secs()),
                JobFailure::HandOff => "hand off".to_string(),
            };
            assert_eq!(got, expect, "after attempt {attempts}");
        };
        check(1, "retry in 30s");
        check(2, "retry in 60s");
        check(3, "retry in 120s");
        check(4, "retry in 240s");
        check(JOB_ATTEMPTS_MAX, "hand off");
        check(u32::MAX, "hand off");
    }

    #[test]
    fn file_names_are_filled_and_safe() {
        let check = |template: &str, external_ref: Option<&str>, expect: &str| {
            assert_eq!(file_name(template, external_ref, "w-1"), expect);
        };
        check(
            "{external_ref}-report.pdf",
            Some("CLM/2024\"1"),
            "CLM_2024_1-report.pdf",
        );
        check("{external_ref}.xml", None, "w-1.xml");
        check("case-{work_item_id}.json", Some("x"), "case-w-1.json");
    }
}
