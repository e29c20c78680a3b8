//! The rules of one routing decision: who is eligible (and, when not, why), how eligible
//! workers are scored (every term named), and the explanation that goes with each decision.
//!
//! These functions look at one worker and one task. They do not know about indexes, offers or
//! timers; the [`Router`](super::Router) calls them for the candidates its indexes yield, and
//! tests call them directly.

use jiff::{SignedDuration, Timestamp};

use super::expr::{self, Expr, TaskFacts, WorkerFacts};
use super::{OpenTask, RoutingConfig, WorkflowStep};
use crate::id::{TaskId, WorkerId};
use crate::model::Priority;
use crate::workforce::{Presence, ShiftWindow, WorkerProfile};

/// Points for the most urgent task (no slack left); less slack, more points.
pub const URGENCY_POINTS_MAX: i64 = 1_000;
/// Points per priority rank above low.
pub const PRIORITY_POINTS: i64 = 100;
/// Points for a skill met exactly; each level above the minimum costs [`SKILL_EXCESS_COST`],
/// so experts are kept for the work that needs them.
pub const SKILL_FIT_POINTS: i64 = 100;
/// Points lost per skill level above the minimum, up to [`SKILL_EXCESS_LEVELS_MAX`] levels.
pub const SKILL_EXCESS_COST: i64 = 8;
/// Level excess beyond which the cost stops growing.
pub const SKILL_EXCESS_LEVELS_MAX: i64 = 5;
/// Points for the worker who did the work item's earlier steps (case affinity).
pub const AFFINITY_POINTS: i64 = 400;
/// Points lost at full load; a worker at half load loses half.
pub const LOAD_POINTS_MAX: i64 = 200;
/// Points per minute since the worker's last assignment, up to [`IDLE_MINUTES_MAX`].
pub const IDLE_POINTS_PER_MINUTE: i64 = 1;
/// Idle minutes beyond which a worker earns no more fairness points.
pub const IDLE_MINUTES_MAX: i64 = 240;
/// Points for a growth assignment once the draw has granted one.
pub const GROWTH_POINTS: i64 = 150;
/// Points lost when the work will not be finished before the worker's shift ends: the rest is
/// handed over, and whoever carries on first reads what was done. A worker who can finish it
/// is preferred, other things equal.
pub const HANDOVER_POINTS: i64 = 150;

/// The state of a worker that the engine keeps and the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLoad {
    pub presence: Presence,
    /// Capacity units held, offers included.
    pub units_used: u32,
    /// Units held per channel.
    pub channel_units: Vec<(String, u32)>,
    pub last_assigned_at: Option<Timestamp>,
    /// Start of the current stretch of work since the last break or sign-in.
    pub working_since: Option<Timestamp>,
}

impl WorkerLoad {
    pub fn new(presence: Presence) -> WorkerLoad {
        WorkerLoad {
            presence,
            units_used: 0,
            channel_units: Vec::new(),
            last_assigned_at: None,
            working_since: None,
        }
    }

    pub fn channel_used(&self, channel: &str) -> u32 {
        self.channel_units
            .iter()
            .find(|(c, _)| c == channel)
            .map_or(0, |(_, u)| *u)
    }
}

/// Why a worker is not eligible for a task. The first failing rule is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ineligible {
    NotAvailable,
    WorkerExcluded,
    ClientConflict,
    CapacityFull,
    DesignationTooLow,
    QualificationMissing,
    QualificationExpired,
    SkillTooLow,
    LanguageMissing,
    SiteNotAllowed,
    OutsideHomeSites,
    OffShift,
    ShiftEndsTooSoon,
    ContinuousWorkCap,
    TargetNotMet,
    TargetError,
    DeclinedBefore,
}

impl Ineligible {
    pub fn code(self) -> &'static str {
        match self {
            Ineligible::NotAvailable => "not_available",
            Ineligible::WorkerExcluded => "worker_excluded",
            Ineligible::ClientConflict => "client_conflict",
            Ineligible::CapacityFull => "capacity_full",
            Ineligible::DesignationTooLow => "designation_too_low",
            Ineligible::QualificationMissing => "qualification_missing",
            Ineligible::QualificationExpired => "qualification_expired",
            Ineligible::SkillTooLow => "skill_too_low",
            Ineligible::LanguageMissing => "language_missing",
            Ineligible::SiteNotAllowed => "site_not_allowed",
            Ineligible::OutsideHomeSites => "outside_home_sites",
            Ineligible::OffShift => "off_shift",
            Ineligible::ShiftEndsTooSoon => "shift_ends_too_soon",
            Ineligible::ContinuousWorkCap => "continuous_work_cap",
            Ineligible::TargetNotMet => "target_not_met",
            Ineligible::TargetError => "target_error",
            Ineligible::DeclinedBefore => "declined_before",
        }
    }
}

/// How an eligible worker fits a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// The worker is one level short on a skill they are building: a growth assignment,
    /// reviewed by QA whatever the sampling rate.
    pub growth: bool,
    /// The work will not be finished before the worker's shift ends: what is left then is
    /// handed over with its progress.
    pub handover: bool,
}

/// A worker as a candidate: profile, load, and the shift in force at `now` (`None` off
/// shift).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub profile: &'a WorkerProfile,
    pub load: &'a WorkerLoad,
    pub shift: Option<ShiftWindow>,
}

/// Decides whether `candidate` may get `task` under `step` at `now`. `roll` (0..1000, drawn by
/// the caller) decides whether a growth assignment is allowed in this decision.
pub fn eligibility(
    candidate: Candidate<'_>,
    task: &OpenTask,
    step: &WorkflowStep,
    now: Timestamp,
    config: &RoutingConfig,
    roll: u16,
) -> Result<Fit, Ineligible> {
    let Candidate {
        profile: worker,
        load,
        shift,
    } = candidate;
    let req = &*task.requirements;
    if load.presence != Presence::Available {
        return Err(Ineligible::NotAvailable);
    }
    if task.excluded_workers.contains(&worker.id) {
        return Err(Ineligible::WorkerExcluded);
    }
    if worker.excluded_clients.contains(&task.client_id) {
        return Err(Ineligible::ClientConflict);
    }
    if load.units_used.saturating_add(req.weight) > worker.capacity.units_max
        || load.channel_used(&req.channel).saturating_add(req.weight)
            > worker.capacity.channel_max(&req.channel)
    {
        return Err(Ineligible::CapacityFull);
    }
    if step
        .designation_min
        .is_some_and(|min| worker.designation < min)
    {
        return Err(Ineligible::DesignationTooLow);
    }
    for kind in &req.qualifications {
        if worker.is_qualified(kind, now) {
            continue;
        }
        return Err(
            match worker.qualifications.iter().any(|q| &q.kind == kind) {
                true => Ineligible::QualificationExpired,
                false => Ineligible::QualificationMissing,
            },
        );
    }
    let mut growth = false;
    for need in &req.skills {
        if need.optional && step.drop_optional_skills {
            continue;
        }
        let level = worker.skill_level(&need.skill);
        if level >= need.level_min {
            continue;
        }
        let growing = level > 0
            && level + 1 == need.level_min
            && worker.growth_skills.contains(&need.skill)
            && roll < config.growth_share_permille;
        if !growing {
            return Err(Ineligible::SkillTooLow);
        }
        growth = true;
    }
    if !req.languages.iter().all(|l| worker.speaks(l)) {
        return Err(Ineligible::LanguageMissing);
    }
    if let Some(allowed) = &req.allowed_sites {
        if !worker.site_id.is_some_and(|s| allowed.contains(&s)) {
            return Err(Ineligible::SiteNotAllowed);
        }
    }
    if !step.widen_sites
        && !req.home_sites.is_empty()
        && !worker.site_id.is_some_and(|s| req.home_sites.contains(&s))
    {
        return Err(Ineligible::OutsideHomeSites);
    }
    let Some(shift) = shift else {
        return Err(Ineligible::OffShift);
    };
    // Work is done in sittings: one lasts at most the cap on continuous work, and ends at the
    // latest with the shift. What is left at a break waits for the worker; what is left at
    // the shift's end is handed over, its progress kept. Work shorter than the shortest
    // useful sitting must fit whole; longer work starts only with at least that much ahead.
    let sitting = req.expected_handling.min(config.continuous_work_max);
    let left = shift.end.duration_since(now);
    if left < sitting.min(config.sitting_min) {
        return Err(Ineligible::ShiftEndsTooSoon);
    }
    let first_sitting_end = now
        .saturating_add(sitting)
        .unwrap_or(now)
        .min(shift.stretch_end);
    let since = load.working_since.unwrap_or(now);
    if first_sitting_end.duration_since(since) > config.continuous_work_max {
        return Err(Ineligible::ContinuousWorkCap);
    }
    let handover = req.expected_handling > left;
    if let Some(target) = &req.target {
        match eval_target(target, worker, task, now) {
            Ok(true) => {}
            Ok(false) => return Err(Ineligible::TargetNotMet),
            Err(_) => return Err(Ineligible::TargetError),
        }
    }
    Ok(Fit { growth, handover })
}

/// Evaluates a target expression for a worker and a task at `now` (qualifications count only
/// while valid).
pub fn eval_target(
    target: &Expr,
    worker: &WorkerProfile,
    task: &OpenTask,
    now: Timestamp,
) -> Result<bool, expr::EvalError> {
    let (worker_id, site) = (
        worker.id.to_string(),
        worker.site_id.map(|s| s.to_string()).unwrap_or_default(),
    );
    let qualifications: Vec<&str> = worker
        .qualifications
        .iter()
        .filter(|q| q.is_valid_at(now))
        .map(|q| q.kind.as_str())
        .collect();
    let skills: Vec<(&str, u8)> = worker
        .skills
        .iter()
        .map(|s| (s.name.as_str(), s.level))
        .collect();
    let (task_id, client, engagement) = (
        task.id.to_string(),
        task.client_id.to_string(),
        task.engagement_id.to_string(),
    );
    target.eval(
        &WorkerFacts {
            id: &worker_id,
            site: &site,
            designation: worker.designation.code(),
            languages: &worker.languages,
            qualifications: &qualifications,
            skills: &skills,
            attributes: &worker.attributes,
        },
        &TaskFacts {
            id: &task_id,
            client: &client,
            engagement: &engagement,
            priority: task.priority.code(),
            step: &task.step,
            service_line: task.service_line.map_or("", |l| l.code()),
            attributes: &task.attributes,
        },
    )
}

/// A named term of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Term {
    /// Task priority.
    Priority,
    /// Slack to the due time versus expected handling time.
    SlaUrgency,
    /// How closely the worker's levels match the minimums.
    SkillFit,
    /// The worker did the work item's earlier steps.
    Affinity,
    /// Fairness: share of capacity in use (negative).
    Load,
    /// Fairness: time since the last assignment.
    Idle,
    /// A growth assignment granted by the draw.
    Growth,
    /// The work outlasts the worker's shift and will be handed over (negative).
    Handover,
}

impl Term {
    pub const ALL: [Term; 8] = [
        Term::Priority,
        Term::SlaUrgency,
        Term::SkillFit,
        Term::Affinity,
        Term::Load,
        Term::Idle,
        Term::Growth,
        Term::Handover,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Term::Priority => "priority",
            Term::SlaUrgency => "sla_urgency",
            Term::SkillFit => "skill_fit",
            Term::Affinity => "affinity",
            Term::Load => "load",
            Term::Idle => "idle",
            Term::Growth => "growth",
            Term::Handover => "handover",
        }
    }
}

/// A score and the terms it is the sum of, in [`Term::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub total: i64,
    pub terms: [(Term, i64); 8],
}

/// Scores an eligible worker for a task.
pub fn score(
    worker: &WorkerProfile,
    load: &WorkerLoad,
    task: &OpenTask,
    step: &WorkflowStep,
    fit: Fit,
    now: Timestamp,
) -> Score {
    let req = &*task.requirements;
    let priority = Priority::ALL
        .iter()
        .position(|p| *p == task.priority)
        .unwrap_or(0) as i64
        * PRIORITY_POINTS;
    let urgency = urgency_points(task.due_at, req.expected_handling, now);
    let counted: Vec<_> = req
        .skills
        .iter()
        .filter(|s| !(s.optional && step.drop_optional_skills))
        .collect();
    let skill_fit = match counted.len() {
        0 => SKILL_FIT_POINTS,
        n => {
            let sum: i64 = counted
                .iter()
                .map(|need| {
                    let excess =
                        i64::from(worker.skill_level(&need.skill)) - i64::from(need.level_min);
                    match excess {
                        e if e < 0 => SKILL_FIT_POINTS / 2,
                        e => SKILL_FIT_POINTS - SKILL_EXCESS_COST * e.min(SKILL_EXCESS_LEVELS_MAX),
                    }
                })
                .sum();
            sum / n as i64
        }
    };
    let affinity = match task.preferred_worker == Some(worker.id) {
        true => AFFINITY_POINTS,
        false => 0,
    };
    let load_points = match worker.capacity.units_max {
        0 => -LOAD_POINTS_MAX,
        max => -(i64::from(load.units_used) * LOAD_POINTS_MAX / i64::from(max)),
    };
    let idle = match load.last_assigned_at {
        None => IDLE_MINUTES_MAX,
        Some(at) => (now.duration_since(at).as_secs() / 60).clamp(0, IDLE_MINUTES_MAX),
    } * IDLE_POINTS_PER_MINUTE;
    let growth = match fit.growth {
        true => GROWTH_POINTS,
        false => 0,
    };
    let handover = match fit.handover {
        true => -HANDOVER_POINTS,
        false => 0,
    };
    let terms = [
        (Term::Priority, priority),
        (Term::SlaUrgency, urgency),
        (Term::SkillFit, skill_fit),
        (Term::Affinity, affinity),
        (Term::Load, load_points),
        (Term::Idle, idle),
        (Term::Growth, growth),
        (Term::Handover, handover),
    ];
    Score {
        total: terms.iter().map(|(_, p)| p).sum(),
        terms,
    }
}

/// Urgency from slack: `slack = due - now - expected`. No slack left scores the maximum; work
/// already lost to the SLA (see [`lost_to_sla`]) scores an eighth; slack equal to the handling
/// time scores half; no deadline scores zero.
pub fn urgency_points(
    due_at: Option<Timestamp>,
    expected_handling: SignedDuration,
    now: Timestamp,
) -> i64 {
    let Some(due_at) = due_at else { return 0 };
    let slack = due_at.duration_since(now) - expected_handling;
    if !slack.is_positive() {
        // Finishing lost work later loses nothing more, so work that can still make it goes
        // first; lost work keeps some points, so it is never starved.
        return match lost_to_sla(due_at, expected_handling, now) {
            true => URGENCY_POINTS_MAX / 8,
            false => URGENCY_POINTS_MAX,
        };
    }
    let handling = expected_handling.as_secs().max(60);
    URGENCY_POINTS_MAX * handling / (handling + slack.as_secs())
}

/// Whether work due at `due_at` is already lost to the SLA at `now`: started now at the
/// expected pace, it would finish after its due time. (The expected handling is a mean; a
/// worker faster than that may still make it, but spending the time on work that can still
/// make it at the expected pace saves more items than chasing those odds, measured with
/// `karya bench routing-quality`.)
pub fn lost_to_sla(due_at: Timestamp, expected_handling: SignedDuration, now: Timestamp) -> bool {
    due_at.duration_since(now) < expected_handling
}

/// Which way a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The router offered the task (push).
    Offer,
    /// The worker asked for work (*Get next*).
    GetNext,
}

impl Path {
    pub fn code(self) -> &'static str {
        match self {
            Path::Offer => "offer",
            Path::GetNext => "get_next",
        }
    }
}

/// The rule that settled a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The highest score won.
    BestScore,
    /// The preferred worker (case affinity) won.
    Affinity,
    /// A worker building a skill won, subject to review.
    Growth,
    /// Nobody was eligible; the task waits for the next step or worker.
    NoEligibleWorker,
    /// The workflow reached its escalation step.
    Escalated,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::BestScore => "best_score",
            Rule::Affinity => "affinity",
            Rule::Growth => "growth",
            Rule::NoEligibleWorker => "no_eligible_worker",
            Rule::Escalated => "escalated",
        }
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub task_id: TaskId,
    pub decided_at: Timestamp,
    pub path: Path,
    pub rule: Rule,
    /// Index and name of the workflow step in force.
    pub step_idx: usize,
    pub step_name: String,
    /// Candidates the index yielded and the rules looked at.
    pub candidates: u32,
    pub eligible: u32,
    /// How many candidates each rule turned away, by reason, in reason order.
    pub rejected: Vec<(Ineligible, u32)>,
    pub winner: Option<WorkerId>,
    pub score: Option<Score>,
    /// The second best total, to show the margin.
    pub runner_up_total: Option<i64>,
    pub review_required: bool,
    /// The candidate scan hit its limit; the best of those seen won.
    pub truncated: bool,
}

/// What the shell must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Offer the task to the worker until `expires_at`.
    Offer {
        task_id: TaskId,
        worker_id: WorkerId,
        expires_at: Timestamp,
        explanation: Explanation,
    },
    /// Assign the task to the worker (an accepted offer or *Get next*).
    Assign {
        task_id: TaskId,
        worker_id: WorkerId,
        explanation: Explanation,
    },
    /// The offer ended without acceptance (declined, timed out or no longer eligible).
    Withdraw {
        task_id: TaskId,
        worker_id: WorkerId,
        reason: WithdrawReason,
    },
    /// The worker no longer holds the task: it goes back to routing.
    Release {
        task_id: TaskId,
        worker_id: WorkerId,
        reason: WithdrawReason,
    },
    /// The task leaves routing for a lead.
    Escalate {
        task_id: TaskId,
        explanation: Explanation,
    },
    /// No eligible worker now; the task waits.
    Wait {
        task_id: TaskId,
        explanation: Explanation,
    },
}

/// Why an offer or a holding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    Declined,
    TimedOut,
    QualificationExpired,
    Released,
}

impl WithdrawReason {
    pub fn code(self) -> &'static str {
        match self {
            WithdrawReason::Declined => "declined",
            WithdrawReason::TimedOut => "timed_out",
            WithdrawReason::QualificationExpired => "qualification_expired",
            WithdrawReason::Released => "released",
        }
    }
}

/// One waiting task offered to [`rank_for_worker`], with the workflow step it is at.
#[derive(Debug, Clone, Copy)]
pub struct Waiting<'a> {
    pub task: &'a OpenTask,
    pub step_idx: usize,
    pub step: &'a WorkflowStep,
}

/// *Get next* without the in-memory router: ranks a page of waiting tasks for one worker by
/// the same rules and scoring, best first, each with its explanation. The shell then claims
/// them in this order until one claim succeeds (claims are exactly-once in the store).
pub fn rank_for_worker(
    candidate: Candidate<'_>,
    waiting: &[Waiting<'_>],
    now: Timestamp,
    config: &RoutingConfig,
    roll: u16,
) -> Vec<(usize, Explanation)> {
    let mut rejected: Vec<(Ineligible, u32)> = Vec::new();
    let mut ranked: Vec<(usize, Score, Fit)> = Vec::new();
    for (idx, w) in waiting.iter().enumerate() {
        if w.step.escalate {
            continue;
        }
        match eligibility(candidate, w.task, w.step, now, config, roll) {
            Ok(fit) => {
                let s = score(candidate.profile, candidate.load, w.task, w.step, fit, now);
                ranked.push((idx, s, fit));
            }
            Err(reason) => match rejected.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => rejected.push((reason, 1)),
            },
        }
    }
    rejected.sort();
    // Best score first; among equals, the order the page came in (most urgent first).
    ranked.sort_by_key(|(idx, s, _)| (std::cmp::Reverse(s.total), *idx));
    let eligible = ranked.len() as u32;
    let runner_up = ranked.get(1).map(|(_, s, _)| s.total);
    ranked
        .into_iter()
        .map(|(idx, s, fit)| {
            let w = &waiting[idx];
            let rule = match (
                fit.growth,
                w.task.preferred_worker == Some(candidate.profile.id),
            ) {
                (true, _) => Rule::Growth,
                (false, true) => Rule::Affinity,
                (false, false) => Rule::BestScore,
            };
            let explanation = Explanation {
                task_id: w.task.id,
                decided_at: now,
                path: Path::GetNext,
                rule,
                step_idx: w.step_idx,
                step_name: w.step.name.clone(),
                candidates: waiting.len() as u32,
                eligible,
                rejected: rejected.clone(),
                winner: Some(candidate.profile.id),
                score: Some(s),
                runner_up_total: runner_up,
                review_required: fit.growth,
                truncated: false,
            };
            (idx, explanation)
        })
        .collect()
}
