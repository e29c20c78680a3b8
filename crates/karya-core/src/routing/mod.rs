//! Routing: sending each task to the right person at the right time, and saying why.
//!
//! The engine is pure and deterministic. Time (`now`) and randomness (`roll`, a number in
//! `0..1000` drawn by the caller) are arguments; the same calls in the same order give the same
//! decisions. It returns [`Effect`]s (offer, assign, withdraw, release, escalate, wait) that
//! the shell persists; it never performs them.
//!
//! # Layout
//! - this file: what a task requires ([`Requirements`], [`OpenTask`]), the routing workflow
//!   of an engagement ([`RoutingWorkflow`]) and the tuning ([`RoutingConfig`]).
//! - [`rules`]: eligibility (every reason a worker is not eligible is named) and scoring
//!   (every term named), and the [`Explanation`] of a decision.
//! - [`case`]: case affinity and the makers excluded from checking their own work.
//! - [`engine`]: the [`Router`], its incremental indexes, offers, *Get next* and timers.
//! - [`expr`]: target expressions in CEL, compiled once and checked at registration.
//!
//! # Invariants
//! - A task is offered to or held by at most one worker at a time.
//! - A worker never holds (offers included) more capacity units than their capacity allows.
//! - No offer or assignment goes to a worker who is not eligible at that moment.

pub mod case;
pub mod engine;
pub mod expr;
pub mod rules;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::id::{ClientId, EngagementId, SiteId, TaskId, WorkerId};
use crate::model::{Designation, Priority};
use crate::service_line::ServiceLine;

pub use engine::{Router, RoutingError, TaskStatus};
pub use expr::Expr;
pub use rules::{
    eligibility, eval_target, rank_for_worker, score, Candidate, Effect, Explanation, Fit,
    Ineligible, Path, Rule, Score, Term, Waiting, WithdrawReason, WorkerLoad,
};

/// One skill a task needs, at a minimum level. An optional skill is dropped by a workflow step
/// that relaxes skills (Omni-Channel's "additional skills").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkillRequirement {
    pub skill: String,
    pub level_min: u8,
    pub optional: bool,
}

/// What a kind of task needs from a worker. It comes from the pack step and the engagement, so
/// many tasks share one value (held in an [`Arc`]); the engine groups waiting tasks by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirements {
    /// Qualification kinds that must all be held and valid.
    pub qualifications: Vec<String>,
    pub skills: Vec<SkillRequirement>,
    /// Languages the worker must all speak.
    pub languages: Vec<String>,
    /// Data residency: only these sites may see the work. `None` means any site.
    pub allowed_sites: Option<Vec<SiteId>>,
    /// Where the work goes first; a workflow step that widens sites lifts this. Empty means no
    /// preference beyond `allowed_sites`.
    pub home_sites: Vec<SiteId>,
    /// A CEL expression over `worker` and `task` that must hold.
    pub target: Option<Expr>,
    /// The capacity channel the task weighs on, e.g. `research` or `ticket`.
    pub channel: String,
    /// Capacity units the task takes while offered or held.
    pub weight: u32,
    /// How long the task usually takes; used for SLA slack and the shift-end rule.
    pub expected_handling: SignedDuration,
}

impl Requirements {
    /// A requirement set with nothing required, for building on.
    pub fn any(channel: &str, weight: u32, expected_handling: SignedDuration) -> Requirements {
        Requirements {
            qualifications: Vec::new(),
            skills: Vec::new(),
            languages: Vec::new(),
            allowed_sites: None,
            home_sites: Vec::new(),
            target: None,
            channel: channel.to_string(),
            weight,
            expected_handling,
        }
    }
}

/// A task waiting to be routed, with what it requires.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTask {
    pub id: TaskId,
    pub client_id: ClientId,
    pub engagement_id: EngagementId,
    pub priority: Priority,
    pub created_at: Timestamp,
    /// When the SLA falls due, if it has a deadline.
    pub due_at: Option<Timestamp>,
    pub requirements: Arc<Requirements>,
    /// Case affinity: the worker who did the work item's earlier steps.
    pub preferred_worker: Option<WorkerId>,
    /// Workers who must not get this task (named conflicts for this case).
    pub excluded_workers: Vec<WorkerId>,
    /// Free attributes for target expressions (`task.attr.jurisdiction`).
    pub attributes: Vec<(String, String)>,
    /// The pack step the task is for (`task.step`); empty when unknown.
    pub step: String,
    /// The engagement's service line (`task.service_line`).
    pub service_line: Option<ServiceLine>,
}

/// One target of a routing workflow. Each step says how the task's requirements apply while it
/// is in force; steps run in order, each for its `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowStep {
    pub name: String,
    /// Optional skills stop counting.
    pub drop_optional_skills: bool,
    /// Home sites stop counting (allowed sites, the data residency rule, still do).
    pub widen_sites: bool,
    /// Only workers at or above this designation (offer to leads).
    pub designation_min: Option<Designation>,
    /// The task leaves routing and waits on a lead.
    pub escalate: bool,
    /// How long this step lasts before the next applies; `None` on the last step.
    pub timeout: Option<SignedDuration>,
}

impl WorkflowStep {
    fn plain(name: &str, timeout: Option<SignedDuration>) -> WorkflowStep {
        WorkflowStep {
            name: name.to_string(),
            drop_optional_skills: false,
            widen_sites: false,
            designation_min: None,
            escalate: false,
            timeout,
        }
    }
}

/// Longest workflow accepted: a handful of fallbacks is plenty, and the step search is linear.
pub const WORKFLOW_STEPS_MAX: usize = 16;

/// An engagement's ordered targets with their timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingWorkflow {
    pub steps: Vec<WorkflowStep>,
}

/// A workflow that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("a routing workflow needs at least one step")]
    Empty,
    #[error("a routing workflow has at most {WORKFLOW_STEPS_MAX} steps")]
    TooLong,
    #[error("step {0} has no timeout but is not the last step")]
    MissingTimeout(usize),
    #[error("step {0} has a timeout that is not positive")]
    BadTimeout(usize),
}

impl RoutingWorkflow {
    /// The default: as required for 5 minutes, then without optional skills for 10, then any
    /// allowed site for 15, then team leads for 30, then escalate.
    pub fn standard() -> RoutingWorkflow {
        let mins = SignedDuration::from_mins;
        RoutingWorkflow {
            steps: vec![
                WorkflowStep::plain("as_required", Some(mins(5))),
                WorkflowStep {
                    drop_optional_skills: true,
                    ..WorkflowStep::plain("drop_optional_skills", Some(mins(10)))
                },
                WorkflowStep {
                    drop_optional_skills: true,
                    widen_sites: true,
                    ..WorkflowStep::plain("widen_sites", Some(mins(15)))
                },
                WorkflowStep {
                    drop_optional_skills: true,
                    widen_sites: true,
                    designation_min: Some(Designation::TeamLead),
                    ..WorkflowStep::plain("offer_to_leads", Some(mins(30)))
                },
                WorkflowStep {
                    escalate: true,
                    ..WorkflowStep::plain("escalate", None)
                },
            ],
        }
    }

    /// Checks the shape: at least one step, a positive timeout on every step but the last.
    pub fn validate(&self) -> Result<(), WorkflowError> {
        if self.steps.is_empty() {
            return Err(WorkflowError::Empty);
        }
        if self.steps.len() > WORKFLOW_STEPS_MAX {
            return Err(WorkflowError::TooLong);
        }
        for (idx, step) in self.steps.iter().enumerate() {
            match step.timeout {
                None if idx + 1 < self.steps.len() => {
                    return Err(WorkflowError::MissingTimeout(idx))
                }
                Some(t) if !t.is_positive() => return Err(WorkflowError::BadTimeout(idx)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The step in force `elapsed` after routing started, and when the next step begins (`None`
    /// when this is the last step).
    pub fn step_at(&self, elapsed: SignedDuration) -> (usize, Option<SignedDuration>) {
        let mut until = SignedDuration::ZERO;
        for (idx, step) in self.steps.iter().enumerate() {
            let Some(timeout) = step.timeout else {
                return (idx, None);
            };
            until = until.saturating_add(timeout);
            if elapsed < until {
                return (idx, Some(until));
            }
        }
        (self.steps.len().saturating_sub(1), None)
    }
}

/// Tuning of the router. The scoring weights are constants in [`rules`], named and documented
/// there; these are the policy knobs an operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingConfig {
    /// How long a worker has to accept an offer before it goes to the next best.
    pub offer_timeout: SignedDuration,
    /// Longest stretch of work without a break; no offer may push a worker past it.
    pub continuous_work_max: SignedDuration,
    /// Share of eligible decisions, in thousandths, that may go to a worker building a skill
    /// one level below the requirement (growth, always reviewed).
    pub growth_share_permille: u16,
    /// Shortest sitting worth starting: work shorter than this must be finished before the
    /// worker's shift ends; longer work may start with at least this much of the shift left,
    /// and what is left at its end is handed over.
    pub sitting_min: SignedDuration,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            offer_timeout: SignedDuration::from_secs(60),
            continuous_work_max: SignedDuration::from_hours(4),
            growth_share_permille: 100,
            sitting_min: SignedDuration::from_mins(15),
        }
    }
}
