//! The router: workers and open tasks held in memory with incremental indexes, so that routing
//! a new task looks only at plausible workers and *Get next* looks only at plausible tasks.
//!
//! - Available workers are indexed by qualification kind, by (skill, level) and by site. A new
//!   task draws its candidates from the smallest bucket its requirements name, then the rules
//!   check each candidate fully.
//! - Waiting tasks are grouped by requirement signature (client, engagement, requirements);
//!   each group keeps its tasks in urgency order. *Get next* checks each group once against
//!   the worker, then looks at the head of the groups that admit them, and at the tasks that
//!   prefer the worker (case affinity).
//! - Timers (offer expiry, workflow step timeouts, qualification expiry) sit in one ordered
//!   set; [`Router::tick`] fires those due.
//!
//! The router keeps no clock: every call takes `now`, and calls that may choose a growth
//! assignment take `roll` (0..1000), drawn by the caller.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use jiff::Timestamp;

use super::rules::{
    eligibility, score, Candidate, Effect, Explanation, Fit, Ineligible, Path, Rule, Score,
    WithdrawReason, WorkerLoad,
};
use super::{OpenTask, Requirements, RoutingConfig, RoutingWorkflow, WorkflowError, WorkflowStep};
use crate::id::{ClientId, EngagementId, SiteId, TaskId, WorkerId};
use crate::model::Priority;
use crate::workforce::{Presence, ShiftWindow, WorkerProfile, SKILL_LEVEL_MAX};

/// Most candidates one push decision looks at. It bounds the work of one decision when a
/// requirement is very broad; the explanation says when it was reached.
pub const CANDIDATES_MAX: usize = 16_384;
/// Tasks *Get next* examines at the head of each admitting group, most urgent first: tasks of
/// one group differ only in per-task details (priority, exclusions, target attributes, workflow
/// step, the preferred worker), so a few suffice.
pub const GROUP_PEEK_MAX: usize = 8;
/// Timers one [`Router::tick`] fires; the rest wait for the next tick, so a tick after a long
/// pause stays bounded.
pub const TIMERS_PER_TICK_MAX: usize = 10_000;
/// Number of [`Ineligible`] reasons, for counting rejections without allocating.
const REASONS: usize = 17;

/// Where a task stands in routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Waiting,
    Offered {
        worker_id: WorkerId,
        expires_at: Timestamp,
    },
    Assigned {
        worker_id: WorkerId,
    },
    Escalated,
}

/// A call the router cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("worker {0} is not known to the router")]
    UnknownWorker(WorkerId),
    #[error("task {0} is not open in the router")]
    UnknownTask(TaskId),
    #[error("task {0} is open already")]
    DuplicateTask(TaskId),
    #[error("task {task_id} is not offered to worker {worker_id}")]
    NotOffered {
        task_id: TaskId,
        worker_id: WorkerId,
    },
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    OfferExpiry(TaskId),
    StepTimeout(TaskId),
    QualificationExpiry(WorkerId),
}

/// Order of waiting tasks in a group: latest start (due time minus handling time) first, then
/// higher priority, then older, then id.
type QueueKey = (i64, u8, i64, TaskId);

#[derive(Debug, Hash, PartialEq, Eq)]
struct GroupKey {
    client_id: ClientId,
    engagement_id: EngagementId,
    requirements: Arc<Requirements>,
}

#[derive(Debug)]
struct Group {
    key: GroupKey,
    queue: BTreeSet<QueueKey>,
}

#[derive(Debug)]
struct TaskEntry {
    task: OpenTask,
    status: TaskStatus,
    routing_started_at: Timestamp,
    declined: Vec<WorkerId>,
    group: u32,
}

#[derive(Debug)]
struct WorkerEntry {
    profile: WorkerProfile,
    load: WorkerLoad,
    /// Tasks offered to or held by the worker.
    holding: Vec<TaskId>,
    /// `(computed_at_us, window)`: the window stays right until its stretch ends.
    shift_cache: Cell<Option<(i64, ShiftWindow)>>,
}

impl WorkerEntry {
    fn shift(&self, now: Timestamp) -> Option<ShiftWindow> {
        let now_us = now.as_microsecond();
        if let Some((from, window)) = self.shift_cache.get() {
            if from <= now_us && now < window.stretch_end {
                return Some(window);
            }
        }
        let window = self.profile.shift.window_at(now)?;
        self.shift_cache.set(Some((now_us, window)));
        Some(window)
    }

    fn candidate(&self, now: Timestamp) -> Candidate<'_> {
        Candidate {
            profile: &self.profile,
            load: &self.load,
            shift: self.shift(now),
        }
    }
}

/// Available workers by what they offer. A worker is in exactly one level bucket per skill and
/// one site bucket, so unions of buckets never repeat a worker.
#[derive(Debug, Default)]
struct WorkerIndex {
    available: BTreeSet<u32>,
    by_site: HashMap<Option<SiteId>, BTreeSet<u32>>,
    by_qualification: HashMap<String, BTreeSet<u32>>,
    /// Per skill, buckets by level (index 0 unused).
    by_skill: HashMap<String, Vec<BTreeSet<u32>>>,
}

impl WorkerIndex {
    fn insert(&mut self, slot: u32, profile: &WorkerProfile) {
        self.available.insert(slot);
        self.by_site
            .entry(profile.site_id)
            .or_default()
            .insert(slot);
        for q in &profile.qualifications {
            self.by_qualification
                .entry(q.kind.clone())
                .or_default()
                .insert(slot);
        }
        for s in &profile.skills {
            let buckets = self
                .by_skill
                .entry(s.name.clone())
                .or_insert_with(|| vec![BTreeSet::new(); usize::from(SKILL_LEVEL_MAX) + 1]);
            buckets[usize::from(s.level.min(SKILL_LEVEL_MAX))].insert(slot);
        }
    }

    fn remove(&mut self, slot: u32, profile: &WorkerProfile) {
        self.available.remove(&slot);
        if let Some(set) = self.by_site.get_mut(&profile.site_id) {
            set.remove(&slot);
        }
        for q in &profile.qualifications {
            if let Some(set) = self.by_qualification.get_mut(&q.kind) {
                set.remove(&slot);
            }
        }
        for s in &profile.skills {
            if let Some(buckets) = self.by_skill.get_mut(&s.name) {
                buckets[usize::from(s.level.min(SKILL_LEVEL_MAX))].remove(&slot);
            }
        }
    }

    /// The smallest union of buckets that contains every worker who could be eligible.
    fn candidates<'a>(&'a self, req: &Requirements, step: &WorkflowStep) -> Vec<&'a BTreeSet<u32>> {
        let mut best: Vec<&'a BTreeSet<u32>> = vec![&self.available];
        let mut best_len = self.available.len();
        let mut consider = |sets: Vec<&'a BTreeSet<u32>>| {
            let len = sets.iter().map(|s| s.len()).sum();
            if len < best_len {
                best_len = len;
                best = sets;
            }
        };
        static EMPTY: BTreeSet<u32> = BTreeSet::new();
        for kind in &req.qualifications {
            consider(vec![self.by_qualification.get(kind).unwrap_or(&EMPTY)]);
        }
        for need in &req.skills {
            if need.optional && step.drop_optional_skills {
                continue;
            }
            // One level below counts too: growth assignments.
            let low = usize::from(need.level_min.max(2) - 1);
            consider(match self.by_skill.get(&need.skill) {
                Some(buckets) => buckets[low.min(buckets.len())..].iter().collect(),
                None => vec![&EMPTY],
            });
        }
        let sites = match (
            &req.allowed_sites,
            step.widen_sites || req.home_sites.is_empty(),
        ) {
            (_, false) => Some(&req.home_sites),
            (Some(allowed), true) => Some(allowed),
            (None, true) => None,
        };
        if let Some(sites) = sites {
            consider(
                sites
                    .iter()
                    .map(|s| self.by_site.get(&Some(*s)).unwrap_or(&EMPTY))
                    .collect(),
            );
        }
        best
    }
}

/// The routing engine's state.
#[derive(Debug)]
pub struct Router {
    config: RoutingConfig,
    default_workflow: RoutingWorkflow,
    workflows: HashMap<EngagementId, RoutingWorkflow>,
    workers: Vec<WorkerEntry>,
    worker_slots: HashMap<WorkerId, u32>,
    index: WorkerIndex,
    tasks: HashMap<TaskId, TaskEntry>,
    groups: Vec<Group>,
    group_slots: HashMap<GroupKey, u32>,
    /// Waiting tasks that prefer a worker (case affinity).
    preferred: HashMap<WorkerId, BTreeSet<TaskId>>,
    timers: BTreeSet<(i64, Timer)>,
}

impl Router {
    pub fn new(config: RoutingConfig) -> Router {
        Router {
            config,
            default_workflow: RoutingWorkflow::standard(),
            workflows: HashMap::new(),
            workers: Vec::new(),
            worker_slots: HashMap::new(),
            index: WorkerIndex::default(),
            tasks: HashMap::new(),
            groups: Vec::new(),
            group_slots: HashMap::new(),
            preferred: HashMap::new(),
            timers: BTreeSet::new(),
        }
    }

    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Sets the routing workflow of an engagement; tasks already waiting follow it from now on.
    pub fn set_workflow(
        &mut self,
        engagement_id: EngagementId,
        workflow: RoutingWorkflow,
    ) -> Result<(), RoutingError> {
        workflow.validate()?;
        self.workflows.insert(engagement_id, workflow);
        Ok(())
    }

    pub fn workflow(&self, engagement_id: EngagementId) -> &RoutingWorkflow {
        self.workflows
            .get(&engagement_id)
            .unwrap_or(&self.default_workflow)
    }

    pub fn n_workers(&self) -> usize {
        self.workers.len()
    }

    pub fn n_tasks(&self) -> usize {
        self.tasks.len()
    }

    pub fn task_status(&self, task_id: TaskId) -> Option<TaskStatus> {
        self.tasks.get(&task_id).map(|t| t.status)
    }

    pub fn worker_load(&self, worker_id: WorkerId) -> Option<&WorkerLoad> {
        let slot = *self.worker_slots.get(&worker_id)?;
        Some(&self.workers[slot as usize].load)
    }

    pub fn worker_profile(&self, worker_id: WorkerId) -> Option<&WorkerProfile> {
        let slot = *self.worker_slots.get(&worker_id)?;
        Some(&self.workers[slot as usize].profile)
    }

    /// When the next timer falls due, for the shell's sleep.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.timers
            .first()
            .and_then(|(at, _)| Timestamp::from_microsecond(*at).ok())
    }

    /// Adds a worker or replaces their profile. Offers and holdings the new profile no longer
    /// qualifies for are withdrawn or released and their tasks routed again.
    pub fn upsert_worker(
        &mut self,
        profile: WorkerProfile,
        now: Timestamp,
        roll: u16,
    ) -> Vec<Effect> {
        let worker_id = profile.id;
        for q in &profile.qualifications {
            if let Some(until) = q.valid_until.filter(|until| *until > now) {
                self.timers.insert((
                    until.as_microsecond(),
                    Timer::QualificationExpiry(worker_id),
                ));
            }
        }
        let slot = match self.worker_slots.get(&worker_id) {
            Some(&slot) => {
                let entry = &mut self.workers[slot as usize];
                if entry.load.presence == Presence::Available {
                    self.index.remove(slot, &entry.profile);
                }
                entry.profile = profile;
                entry.shift_cache.set(None);
                slot
            }
            None => {
                let slot = self.workers.len() as u32;
                self.workers.push(WorkerEntry {
                    profile,
                    load: WorkerLoad::new(Presence::Offline),
                    holding: Vec::new(),
                    shift_cache: Cell::new(None),
                });
                self.worker_slots.insert(worker_id, slot);
                slot
            }
        };
        let entry = &self.workers[slot as usize];
        if entry.load.presence == Presence::Available {
            self.index.insert(slot, &entry.profile);
        }
        self.recheck_holdings(slot, now, roll)
    }

    /// Changes a worker's presence. Coming back from a break or sign-in starts a new stretch
    /// of continuous work.
    pub fn set_presence(
        &mut self,
        worker_id: WorkerId,
        presence: Presence,
        now: Timestamp,
    ) -> Result<(), RoutingError> {
        let slot = self.slot(worker_id)?;
        let entry = &mut self.workers[slot as usize];
        let before = entry.load.presence;
        if before == presence {
            return Ok(());
        }
        match presence {
            Presence::Break | Presence::Offline => entry.load.working_since = None,
            Presence::Available | Presence::Busy => {
                entry.load.working_since.get_or_insert(now);
            }
        }
        entry.load.presence = presence;
        if before == Presence::Available {
            self.index.remove(slot, &entry.profile);
        }
        if presence == Presence::Available {
            self.index.insert(slot, &entry.profile);
        }
        Ok(())
    }

    /// Opens a task and routes it at once: an offer to the best eligible worker, a wait, or an
    /// escalation.
    pub fn add_task(
        &mut self,
        task: OpenTask,
        now: Timestamp,
        roll: u16,
    ) -> Result<Effect, RoutingError> {
        let task_id = task.id;
        self.enqueue_task(task, now)?;
        Ok(self.route(task_id, now, roll))
    }

    /// Opens a task without routing it yet: it waits for *Get next* or the next tick. Used to
    /// load the backlog at start-up.
    pub fn enqueue_task(&mut self, task: OpenTask, now: Timestamp) -> Result<(), RoutingError> {
        if self.tasks.contains_key(&task.id) {
            return Err(RoutingError::DuplicateTask(task.id));
        }
        let key = GroupKey {
            client_id: task.client_id,
            engagement_id: task.engagement_id,
            requirements: task.requirements.clone(),
        };
        let group = match self.group_slots.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.groups.len() as u32;
                self.group_slots.insert(
                    GroupKey {
                        client_id: key.client_id,
                        engagement_id: key.engagement_id,
                        requirements: key.requirements.clone(),
                    },
                    g,
                );
                self.groups.push(Group {
                    key,
                    queue: BTreeSet::new(),
                });
                g
            }
        };
        let task_id = task.id;
        self.tasks.insert(
            task_id,
            TaskEntry {
                task,
                status: TaskStatus::Waiting,
                routing_started_at: now,
                declined: Vec::new(),
                group,
            },
        );
        self.queue_insert(task_id);
        self.schedule_step_timer(task_id, now);
        Ok(())
    }

    /// The worker accepts the offer: the task is theirs.
    pub fn accept(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        now: Timestamp,
    ) -> Result<Effect, RoutingError> {
        let entry = self
            .tasks
            .get_mut(&task_id)
            .ok_or(RoutingError::UnknownTask(task_id))?;
        match entry.status {
            TaskStatus::Offered { worker_id: w, .. } if w == worker_id => {}
            _ => return Err(RoutingError::NotOffered { task_id, worker_id }),
        }
        entry.status = TaskStatus::Assigned { worker_id };
        let slot = self.slot(worker_id)?;
        self.workers[slot as usize].load.last_assigned_at = Some(now);
        let step = self.step_of(task_id, now);
        Ok(Effect::Assign {
            task_id,
            worker_id,
            explanation: Explanation {
                task_id,
                decided_at: now,
                path: Path::Offer,
                rule: Rule::BestScore,
                step_idx: step.0,
                step_name: step.1,
                candidates: 1,
                eligible: 1,
                rejected: Vec::new(),
                winner: Some(worker_id),
                score: None,
                runner_up_total: None,
                review_required: false,
                truncated: false,
            },
        })
    }

    /// The worker declines the offer; the task goes to the next best (never back to them).
    pub fn decline(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        now: Timestamp,
        roll: u16,
    ) -> Result<Vec<Effect>, RoutingError> {
        match self.tasks.get(&task_id).map(|t| t.status) {
            Some(TaskStatus::Offered { worker_id: w, .. }) if w == worker_id => {}
            Some(_) => return Err(RoutingError::NotOffered { task_id, worker_id }),
            None => return Err(RoutingError::UnknownTask(task_id)),
        }
        Ok(self.end_offer(task_id, worker_id, WithdrawReason::Declined, now, roll))
    }

    /// The task is finished (or cancelled): it leaves routing and frees its capacity.
    pub fn close_task(&mut self, task_id: TaskId) -> Result<(), RoutingError> {
        let entry = self
            .tasks
            .get(&task_id)
            .ok_or(RoutingError::UnknownTask(task_id))?;
        match entry.status {
            TaskStatus::Offered { worker_id, .. } | TaskStatus::Assigned { worker_id } => {
                self.unreserve(task_id, worker_id)
            }
            TaskStatus::Waiting => self.queue_remove(task_id),
            TaskStatus::Escalated => {}
        }
        self.tasks.remove(&task_id);
        Ok(())
    }

    /// The worker gives the task back; it is routed again.
    pub fn release(
        &mut self,
        task_id: TaskId,
        now: Timestamp,
        roll: u16,
    ) -> Result<Vec<Effect>, RoutingError> {
        let entry = self
            .tasks
            .get(&task_id)
            .ok_or(RoutingError::UnknownTask(task_id))?;
        match entry.status {
            TaskStatus::Assigned { worker_id } => {
                self.unreserve(task_id, worker_id);
                let entry = self.tasks.get_mut(&task_id).expect("checked above");
                entry.status = TaskStatus::Waiting;
                entry.declined.push(worker_id);
                self.queue_insert(task_id);
                let next = self.route(task_id, now, roll);
                Ok(vec![
                    Effect::Release {
                        task_id,
                        worker_id,
                        reason: WithdrawReason::Released,
                    },
                    next,
                ])
            }
            _ => Err(RoutingError::UnknownTask(task_id)),
        }
    }

    /// *Get next*: the best waiting task for this worker, assigned to them at once, by the same
    /// rules and scoring as offers. `None` when nothing suits them.
    pub fn get_next(
        &mut self,
        worker_id: WorkerId,
        now: Timestamp,
        roll: u16,
    ) -> Result<Option<Effect>, RoutingError> {
        let slot = self.slot(worker_id)?;
        let worker = &self.workers[slot as usize];
        let candidate = worker.candidate(now);
        let mut best: Option<(Score, QueueKey, Fit, usize, String)> = None;
        let mut candidates = 0u32;
        let mut eligible = 0u32;
        let mut rejected = [0u32; REASONS];
        let mut consider = |router: &Router, task_id: TaskId, key: QueueKey| {
            let entry = &router.tasks[&task_id];
            let (idx, step) = router.current_step(entry, now);
            candidates += 1;
            if entry.declined.contains(&worker_id) {
                rejected[Ineligible::DeclinedBefore as usize] += 1;
                return false;
            }
            match eligibility(candidate, &entry.task, step, now, &router.config, roll) {
                Err(reason) => {
                    rejected[reason as usize] += 1;
                    false
                }
                Ok(fit) => {
                    eligible += 1;
                    let s = score(&worker.profile, &worker.load, &entry.task, step, fit, now);
                    let better = match &best {
                        None => true,
                        Some((b, bkey, ..)) => {
                            (s.total, std::cmp::Reverse(key)) > (b.total, std::cmp::Reverse(*bkey))
                        }
                    };
                    if better {
                        best = Some((s, key, fit, idx, step.name.clone()));
                    }
                    true
                }
            }
        };
        if let Some(preferred) = self.preferred.get(&worker_id) {
            for task_id in preferred.iter().take(GROUP_PEEK_MAX) {
                let key = self.queue_key(&self.tasks[task_id]);
                consider(self, *task_id, key);
            }
        }
        for group in &self.groups {
            if group.queue.is_empty() || !group_admits(&group.key, worker, now) {
                continue;
            }
            // The queue is in latest-start order: the most urgent tasks that can still make
            // their due time come first, and among the first few of them the score (which
            // also weighs priority, affinity and the hand-over) picks, as *Get next* over the
            // store does. Only when none of the group can make it does the oldest lost one
            // come next. A task is lost to the SLA (`lost_to_sla`) exactly when its latest
            // start has passed.
            let salvageable = (
                now.as_microsecond(),
                0,
                i64::MIN,
                TaskId::from_uuid(uuid::Uuid::nil()),
            );
            let mut found = false;
            for key in group.queue.range(salvageable..).take(GROUP_PEEK_MAX) {
                found |= consider(self, key.3, *key);
            }
            if !found {
                for key in group.queue.range(..salvageable).take(GROUP_PEEK_MAX) {
                    if consider(self, key.3, *key) {
                        break;
                    }
                }
            }
        }
        let Some((s, key, fit, step_idx, step_name)) = best else {
            return Ok(None);
        };
        let task_id = key.3;
        self.queue_remove(task_id);
        self.reserve(task_id, worker_id, now);
        let entry = self.tasks.get_mut(&task_id).expect("a queued task is open");
        entry.status = TaskStatus::Assigned { worker_id };
        let rule = rule_for(&s, fit);
        Ok(Some(Effect::Assign {
            task_id,
            worker_id,
            explanation: Explanation {
                task_id,
                decided_at: now,
                path: Path::GetNext,
                rule,
                step_idx,
                step_name,
                candidates,
                eligible,
                rejected: rejections(&rejected),
                winner: Some(worker_id),
                score: Some(s),
                runner_up_total: None,
                review_required: fit.growth,
                truncated: false,
            },
        }))
    }

    /// Fires the timers due at `now` (at most [`TIMERS_PER_TICK_MAX`]): expired offers go to the
    /// next best, waiting tasks move to their next workflow step, lapsed qualifications release
    /// the work that needed them.
    pub fn tick(&mut self, now: Timestamp, roll: u16) -> Vec<Effect> {
        let mut effects = Vec::new();
        for _ in 0..TIMERS_PER_TICK_MAX {
            let Some(&(at, timer)) = self.timers.first() else {
                break;
            };
            if at > now.as_microsecond() {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::OfferExpiry(task_id) => {
                    if let Some(TaskStatus::Offered {
                        worker_id,
                        expires_at,
                    }) = self.task_status(task_id)
                    {
                        if expires_at <= now {
                            effects.extend(self.end_offer(
                                task_id,
                                worker_id,
                                WithdrawReason::TimedOut,
                                now,
                                roll,
                            ));
                        }
                    }
                }
                Timer::StepTimeout(task_id) => {
                    if self.task_status(task_id) == Some(TaskStatus::Waiting) {
                        effects.push(self.route(task_id, now, roll));
                    }
                }
                Timer::QualificationExpiry(worker_id) => {
                    if let Some(&slot) = self.worker_slots.get(&worker_id) {
                        effects.extend(self.recheck_holdings(slot, now, roll));
                    }
                }
            }
        }
        effects
    }

    /// Routes a waiting task: offer to the best eligible worker, wait, or escalate.
    fn route(&mut self, task_id: TaskId, now: Timestamp, roll: u16) -> Effect {
        let entry = &self.tasks[&task_id];
        debug_assert_eq!(entry.status, TaskStatus::Waiting);
        let (step_idx, step) = self.current_step(entry, now);
        let step_name = step.name.clone();
        if step.escalate {
            self.queue_remove(task_id);
            self.tasks.get_mut(&task_id).expect("open").status = TaskStatus::Escalated;
            return Effect::Escalate {
                task_id,
                explanation: self.bare_explanation(
                    task_id,
                    now,
                    Rule::Escalated,
                    step_idx,
                    step_name,
                ),
            };
        }
        let mut candidates = 0u32;
        let mut eligible = 0u32;
        let mut rejected = [0u32; REASONS];
        let mut best: Option<(Score, u32, Fit)> = None;
        let mut runner_up: Option<i64> = None;
        let mut truncated = false;
        'scan: for set in self.index.candidates(&entry.task.requirements, step) {
            for &slot in set {
                if candidates as usize == CANDIDATES_MAX {
                    truncated = true;
                    break 'scan;
                }
                candidates += 1;
                let worker = &self.workers[slot as usize];
                if entry.declined.contains(&worker.profile.id) {
                    rejected[Ineligible::DeclinedBefore as usize] += 1;
                    continue;
                }
                let fit = match eligibility(
                    worker.candidate(now),
                    &entry.task,
                    step,
                    now,
                    &self.config,
                    roll,
                ) {
                    Ok(fit) => fit,
                    Err(reason) => {
                        rejected[reason as usize] += 1;
                        continue;
                    }
                };
                eligible += 1;
                let s = score(&worker.profile, &worker.load, &entry.task, step, fit, now);
                match &best {
                    Some((b, _, _)) if s.total <= b.total => {
                        runner_up = Some(runner_up.map_or(s.total, |r| r.max(s.total)));
                    }
                    _ => {
                        if let Some((b, _, _)) = &best {
                            runner_up = Some(runner_up.map_or(b.total, |r| r.max(b.total)));
                        }
                        best = Some((s, slot, fit));
                    }
                }
            }
        }
        let mut explanation = Explanation {
            task_id,
            decided_at: now,
            path: Path::Offer,
            rule: Rule::NoEligibleWorker,
            step_idx,
            step_name,
            candidates,
            eligible,
            rejected: rejections(&rejected),
            winner: None,
            score: None,
            runner_up_total: runner_up,
            review_required: false,
            truncated,
        };
        let Some((s, slot, fit)) = best else {
            self.schedule_step_timer(task_id, now);
            return Effect::Wait {
                task_id,
                explanation,
            };
        };
        let worker_id = self.workers[slot as usize].profile.id;
        explanation.rule = rule_for(&s, fit);
        explanation.winner = Some(worker_id);
        explanation.score = Some(s);
        explanation.review_required = fit.growth;
        let expires_at = now.saturating_add(self.config.offer_timeout).unwrap_or(now);
        self.queue_remove(task_id);
        self.reserve(task_id, worker_id, now);
        self.tasks.get_mut(&task_id).expect("open").status = TaskStatus::Offered {
            worker_id,
            expires_at,
        };
        self.timers
            .insert((expires_at.as_microsecond(), Timer::OfferExpiry(task_id)));
        Effect::Offer {
            task_id,
            worker_id,
            expires_at,
            explanation,
        }
    }

    /// Ends an offer that was not accepted, and routes the task to the next best.
    fn end_offer(
        &mut self,
        task_id: TaskId,
        worker_id: WorkerId,
        reason: WithdrawReason,
        now: Timestamp,
        roll: u16,
    ) -> Vec<Effect> {
        self.unreserve(task_id, worker_id);
        let entry = self.tasks.get_mut(&task_id).expect("offered task is open");
        entry.status = TaskStatus::Waiting;
        entry.declined.push(worker_id);
        self.queue_insert(task_id);
        let next = self.route(task_id, now, roll);
        vec![
            Effect::Withdraw {
                task_id,
                worker_id,
                reason,
            },
            next,
        ]
    }

    /// Withdraws offers and releases holdings of a worker that their qualifications no longer
    /// cover, and routes those tasks again.
    fn recheck_holdings(&mut self, slot: u32, now: Timestamp, roll: u16) -> Vec<Effect> {
        let worker = &self.workers[slot as usize];
        let lapsed: Vec<TaskId> = worker
            .holding
            .iter()
            .copied()
            .filter(|task_id| {
                self.tasks[task_id]
                    .task
                    .requirements
                    .qualifications
                    .iter()
                    .any(|kind| !worker.profile.is_qualified(kind, now))
            })
            .collect();
        let worker_id = worker.profile.id;
        let mut effects = Vec::new();
        for task_id in lapsed {
            match self.tasks[&task_id].status {
                TaskStatus::Offered { .. } => effects.extend(self.end_offer(
                    task_id,
                    worker_id,
                    WithdrawReason::QualificationExpired,
                    now,
                    roll,
                )),
                TaskStatus::Assigned { .. } => {
                    self.unreserve(task_id, worker_id);
                    let entry = self.tasks.get_mut(&task_id).expect("held task is open");
                    entry.status = TaskStatus::Waiting;
                    entry.declined.push(worker_id);
                    self.queue_insert(task_id);
                    effects.push(Effect::Release {
                        task_id,
                        worker_id,
                        reason: WithdrawReason::QualificationExpired,
                    });
                    effects.push(self.route(task_id, now, roll));
                }
                TaskStatus::Waiting | TaskStatus::Escalated => {}
            }
        }
        effects
    }

    fn slot(&self, worker_id: WorkerId) -> Result<u32, RoutingError> {
        self.worker_slots
            .get(&worker_id)
            .copied()
            .ok_or(RoutingError::UnknownWorker(worker_id))
    }

    fn current_step<'a>(&'a self, entry: &TaskEntry, now: Timestamp) -> (usize, &'a WorkflowStep) {
        let workflow = self.workflow(entry.task.engagement_id);
        let elapsed = now.duration_since(entry.routing_started_at);
        let (idx, _) = workflow.step_at(elapsed);
        (idx, &workflow.steps[idx])
    }

    fn step_of(&self, task_id: TaskId, now: Timestamp) -> (usize, String) {
        let (idx, step) = self.current_step(&self.tasks[&task_id], now);
        (idx, step.name.clone())
    }

    fn schedule_step_timer(&mut self, task_id: TaskId, now: Timestamp) {
        let entry = &self.tasks[&task_id];
        let workflow = self.workflow(entry.task.engagement_id);
        let (_, next) = workflow.step_at(now.duration_since(entry.routing_started_at));
        if let Some(next) = next {
            let at = entry.routing_started_at.saturating_add(next).unwrap_or(now);
            self.timers
                .insert((at.as_microsecond(), Timer::StepTimeout(task_id)));
        }
    }

    fn queue_key(&self, entry: &TaskEntry) -> QueueKey {
        let req = &entry.task.requirements;
        let latest_start = entry.task.due_at.map_or(i64::MAX, |due| {
            due.saturating_sub(req.expected_handling)
                .unwrap_or(due)
                .as_microsecond()
        });
        let rank = Priority::ALL
            .iter()
            .position(|p| *p == entry.task.priority)
            .unwrap_or(0) as u8;
        (
            latest_start,
            u8::MAX - rank,
            entry.task.created_at.as_microsecond(),
            entry.task.id,
        )
    }

    fn queue_insert(&mut self, task_id: TaskId) {
        let entry = &self.tasks[&task_id];
        let key = self.queue_key(entry);
        let (group, preferred) = (entry.group, entry.task.preferred_worker);
        self.groups[group as usize].queue.insert(key);
        if let Some(worker_id) = preferred {
            self.preferred.entry(worker_id).or_default().insert(task_id);
        }
    }

    fn queue_remove(&mut self, task_id: TaskId) {
        let entry = &self.tasks[&task_id];
        let key = self.queue_key(entry);
        let (group, preferred) = (entry.group, entry.task.preferred_worker);
        self.groups[group as usize].queue.remove(&key);
        if let Some(worker_id) = preferred {
            if let Some(set) = self.preferred.get_mut(&worker_id) {
                set.remove(&task_id);
                if set.is_empty() {
                    self.preferred.remove(&worker_id);
                }
            }
        }
    }

    fn reserve(&mut self, task_id: TaskId, worker_id: WorkerId, now: Timestamp) {
        let req = self.tasks[&task_id].task.requirements.clone();
        let slot = self.worker_slots[&worker_id];
        let worker = &mut self.workers[slot as usize];
        worker.load.units_used += req.weight;
        match worker
            .load
            .channel_units
            .iter_mut()
            .find(|(c, _)| *c == req.channel)
        {
            Some((_, units)) => *units += req.weight,
            None => worker
                .load
                .channel_units
                .push((req.channel.clone(), req.weight)),
        }
        debug_assert!(worker.load.units_used <= worker.profile.capacity.units_max);
        worker.load.last_assigned_at = Some(now);
        worker.holding.push(task_id);
    }

    fn unreserve(&mut self, task_id: TaskId, worker_id: WorkerId) {
        let req = self.tasks[&task_id].task.requirements.clone();
        let slot = self.worker_slots[&worker_id];
        let worker = &mut self.workers[slot as usize];
        worker.load.units_used -= req.weight;
        if let Some((_, units)) = worker
            .load
            .channel_units
            .iter_mut()
            .find(|(c, _)| *c == req.channel)
        {
            *units -= req.weight;
        }
        worker.holding.retain(|t| *t != task_id);
    }

    fn bare_explanation(
        &self,
        task_id: TaskId,
        now: Timestamp,
        rule: Rule,
        step_idx: usize,
        step_name: String,
    ) -> Explanation {
        Explanation {
            task_id,
            decided_at: now,
            path: Path::Offer,
            rule,
            step_idx,
            step_name,
            candidates: 0,
            eligible: 0,
            rejected: Vec::new(),
            winner: None,
            score: None,
            runner_up_total: None,
            review_required: false,
            truncated: false,
        }
    }
}

/// Whether a group's shared requirements could admit the worker at some workflow step: a
/// cheap check that lets *Get next* skip whole groups.
fn group_admits(key: &GroupKey, worker: &WorkerEntry, now: Timestamp) -> bool {
    let (profile, load, req) = (&worker.profile, &worker.load, &*key.requirements);
    !profile.excluded_clients.contains(&key.client_id)
        && load.units_used + req.weight <= profile.capacity.units_max
        && req
            .qualifications
            .iter()
            .all(|k| profile.is_qualified(k, now))
        && req
            .skills
            .iter()
            .filter(|s| !s.optional)
            .all(|s| profile.skill_level(&s.skill) + 1 >= s.level_min)
        && req.languages.iter().all(|l| profile.speaks(l))
        && req
            .allowed_sites
            .as_ref()
            .is_none_or(|sites| profile.site_id.is_some_and(|s| sites.contains(&s)))
}

fn rule_for(s: &Score, fit: Fit) -> Rule {
    use super::rules::Term;
    if fit.growth {
        return Rule::Growth;
    }
    match s.terms.iter().any(|(t, p)| *t == Term::Affinity && *p > 0) {
        true => Rule::Affinity,
        false => Rule::BestScore,
    }
}

fn rejections(counts: &[u32; REASONS]) -> Vec<(Ineligible, u32)> {
    const ORDER: [Ineligible; REASONS] = [
        Ineligible::NotAvailable,
        Ineligible::WorkerExcluded,
        Ineligible::ClientConflict,
        Ineligible::CapacityFull,
        Ineligible::DesignationTooLow,
        Ineligible::QualificationMissing,
        Ineligible::QualificationExpired,
        Ineligible::SkillTooLow,
        Ineligible::LanguageMissing,
        Ineligible::SiteNotAllowed,
        Ineligible::OutsideHomeSites,
        Ineligible::OffShift,
        Ineligible::ShiftEndsTooSoon,
        Ineligible::ContinuousWorkCap,
        Ineligible::TargetNotMet,
        Ineligible::TargetError,
        Ineligible::DeclinedBefore,
    ];
    ORDER
        .iter()
        .filter(|r| counts[**r as usize] > 0)
        .map(|r| (*r, counts[*r as usize]))
        .collect()
}
