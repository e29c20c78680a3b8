//! The firm under simulation: work items arrive, a routing policy sends them to workers, the
//! workers handle them within their shifts, and the run measures SLA attainment, utilisation,
//! shift overruns and cost.
//!
//! A run is a discrete-event simulation over a [`Trace`] (arrivals and roster drawn from the
//! seed beforehand). Events at one instant are ordered completions, block ends, block starts,
//! arrivals, then by insertion, so a run is a function of the scenario, the trace and the seed.
//!
//! Three policies, one [`Policy`] enum:
//! - `fifo`: first in, first out, to the longest-idle eligible worker (a task router's
//!   default); a worker finishes the task at hand even past the end of the shift.
//! - `priority_skills`: the highest static priority first, then the closest skill match, then
//!   the oldest; same shift behaviour as `fifo`.
//! - `karya`: the core's [`Router`], used as the server uses it: a new task is routed at once
//!   (offer, accepted by the worker), a worker who finishes or signs in asks *Get next*, timers
//!   fire through `tick`. The shift patterns are the roster's, its short gaps between blocks
//!   being breaks. Work in hand at a break waits for the worker and goes on after it; work in
//!   hand at the end of a shift is handed over: released with its progress kept and routed
//!   again, and whoever takes it over spends the scenario's `handover_minutes` reading what
//!   was done (nothing when the same worker takes it back). karya's workers never work past
//!   their shift.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{ClientId, EngagementId, SiteId, TaskId, WorkerId};
use karya_core::model::Priority;
use karya_core::routing::{
    Effect, OpenTask, Requirements, Router, RoutingConfig, RoutingWorkflow, SkillRequirement,
    WorkflowStep,
};
use karya_core::workforce::{
    Capacity, Presence, Qualification, ShiftBlock, ShiftBreak, ShiftException, ShiftPattern,
    ShiftPhase, Skill, WorkerProfile,
};
use uuid::Uuid;

use crate::rng::Rng;
use crate::scenario::{Scenario, ShiftDef};
use crate::trace::{rank, Trace};

/// Premium on an hour worked past the end of a shift.
pub const OVERTIME_PREMIUM: f64 = 1.5;
/// Most events one run processes: arrivals, completions and block edges of a month of a
/// large floor fit many times over; a run that reaches it has a bug that loops.
pub const EVENTS_MAX: u64 = 50_000_000;
/// Most *Get next* calls for one worker at one instant: a worker holds at most this many
/// tasks at once (scenario capacity is at most 8).
const GET_NEXT_MAX: u32 = 8;
/// Longest gap between two blocks of a shift that is a break within it rather than the end of
/// one shift and the start of another.
pub const BREAK_GAP_MAX: SignedDuration = SignedDuration::from_hours(2);

/// A routing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Fifo,
    PrioritySkills,
    Karya,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Fifo, Policy::PrioritySkills, Policy::Karya];

    pub fn code(self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::PrioritySkills => "priority_skills",
            Policy::Karya => "karya",
        }
    }

    pub fn parse(text: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.code() == text)
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub policy: Policy,
    pub items: u32,
    pub completed: u32,
    /// Items finished by their due time.
    pub on_time: u32,
    /// `(priority, items, on time)`, most urgent first.
    pub by_priority: Vec<(Priority, u32, u32)>,
    /// Per worker: time working over shift time, inside the arrival window.
    pub utilisation: Vec<f64>,
    /// Tasks that ran past the end of the worker's shift block, and the time past it.
    pub overrun_tasks: u32,
    pub overrun_s: i64,
    /// Tasks handed over at a shift end, their progress kept, to be finished by another worker.
    pub handed_over: u32,
    /// Tasks in hand at the start of a break, taken up again by the same worker after it.
    pub paused: u32,
    /// Shift pay inside the arrival window (the same for every policy).
    pub labour_cost: f64,
    /// Pay for time worked past shift ends, at [`OVERTIME_PREMIUM`].
    pub overtime_cost: f64,
    /// Mean time from arrival to completion of completed items, in minutes.
    pub turnaround_mean_min: f64,
}

impl Outcome {
    /// Share of items finished by their due time.
    pub fn attainment(&self) -> f64 {
        match self.items {
            0 => 1.0,
            n => f64::from(self.on_time) / f64::from(n),
        }
    }

    /// Mean, standard deviation, minimum and maximum of utilisation across workers.
    pub fn utilisation_summary(&self) -> UtilisationSummary {
        let u = &self.utilisation;
        if u.is_empty() {
            return UtilisationSummary::default();
        }
        let n = u.len() as f64;
        let mean = u.iter().sum::<f64>() / n;
        let var = u.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        UtilisationSummary {
            mean,
            stddev: var.sqrt(),
            min: u.iter().copied().fold(f64::INFINITY, f64::min),
            max: u.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Labour and overtime per item finished on time.
    pub fn cost_per_on_time_item(&self) -> f64 {
        (self.labour_cost + self.overtime_cost) / f64::from(self.on_time.max(1))
    }
}

/// Utilisation across workers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UtilisationSummary {
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    // Declaration order is the order at one instant.
    Complete { worker: u32, item: u32 },
    BlockEnd { worker: u32 },
    BlockStart { worker: u32, end_s: i64 },
    Arrival { item: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Running {
    item: u32,
    started_s: i64,
    end_s: i64,
    /// End of the block the task started in.
    shift_end_s: i64,
}

#[derive(Debug)]
struct WorkerState {
    team: usize,
    capacity: u32,
    on_shift: bool,
    block_end_s: i64,
    running: Vec<Running>,
    /// Work in hand at the start of a break, with the work left: it goes on after the break.
    paused: Vec<(u32, i64)>,
    idle_since_s: i64,
    busy_s: i64,
}

/// Runs one policy over a trace. `seed` feeds the router's growth draw (`roll`).
pub fn run(scenario: &Scenario, trace: &Trace, policy: Policy, seed: u64) -> Outcome {
    let mut sim = Sim::new(scenario, trace, policy, seed);
    sim.run();
    sim.outcome()
}

struct Sim<'a> {
    scenario: &'a Scenario,
    trace: &'a Trace,
    policy: Policy,
    events: BinaryHeap<Reverse<(i64, Event, u64)>>,
    seq: u64,
    workers: Vec<WorkerState>,
    /// `eligible[worker][line]` under the scenario's rules (baselines only).
    eligible: Vec<Vec<bool>>,
    /// Per worker and line: the skill-match cost (`priority_skills`), lower is closer.
    match_cost: Vec<Vec<u32>>,
    /// Waiting items per line and priority rank, in arrival order (baselines only).
    queues: Vec<[VecDeque<u32>; 4]>,
    completed_s: Vec<Option<i64>>,
    overrun_tasks: u32,
    overrun_s: i64,
    /// Work left on items handed over at a shift end, and who handed them over (karya only).
    remaining_s: Vec<Option<(i64, u32)>>,
    handed_over: u32,
    paused: u32,
    karya: Option<KaryaState>,
}

struct KaryaState {
    router: Router,
    /// Each worker's shift pattern, as the router has it.
    patterns: Vec<ShiftPattern>,
    rng: Rng,
    requirements: Vec<Arc<Requirements>>,
    engagements: Vec<(ClientId, EngagementId)>,
}

fn worker_id(idx: u32) -> WorkerId {
    WorkerId::from_uuid(Uuid::from_u128(0x5157_0000_0000 + u128::from(idx)))
}

fn task_id(item: u32) -> TaskId {
    TaskId::from_uuid(Uuid::from_u128(0x5157_1000_0000 + u128::from(item)))
}

fn item_of(task: TaskId) -> u32 {
    (task.as_uuid().as_u128() - 0x5157_1000_0000) as u32
}

fn worker_of(worker: WorkerId) -> u32 {
    (worker.as_uuid().as_u128() - 0x5157_0000_0000) as u32
}

fn site_id(idx: usize) -> SiteId {
    SiteId::from_uuid(Uuid::from_u128(0x5157_2000_0000 + idx as u128))
}

impl<'a> Sim<'a> {
    fn new(scenario: &'a Scenario, trace: &'a Trace, policy: Policy, seed: u64) -> Sim<'a> {
        let workers: Vec<WorkerState> = trace
            .workers
            .iter()
            .map(|w| WorkerState {
                team: w.team,
                capacity: scenario.teams[w.team].capacity,
                on_shift: false,
                block_end_s: 0,
                running: Vec::new(),
                paused: Vec::new(),
                idle_since_s: 0,
                busy_s: 0,
            })
            .collect();
        let eligible = workers
            .iter()
            .map(|w| {
                (0..scenario.lines.len())
                    .map(|l| scenario.eligible(w.team, l))
                    .collect()
            })
            .collect();
        let match_cost = workers
            .iter()
            .map(|w| {
                (0..scenario.lines.len())
                    .map(|l| skill_match_cost(scenario, w.team, l))
                    .collect()
            })
            .collect();
        let mut sim = Sim {
            scenario,
            trace,
            policy,
            events: BinaryHeap::new(),
            seq: 0,
            workers,
            eligible,
            match_cost,
            queues: (0..scenario.lines.len())
                .map(|_| Default::default())
                .collect(),
            completed_s: vec![None; trace.items.len()],
            overrun_tasks: 0,
            overrun_s: 0,
            remaining_s: vec![None; trace.items.len()],
            handed_over: 0,
            paused: 0,
            karya: None,
        };
        if policy == Policy::Karya {
            sim.karya = Some(karya_state(scenario, trace, seed));
        }
        for (idx, w) in trace.workers.iter().enumerate() {
            for &(a, b) in &w.blocks {
                let worker = idx as u32;
                sim.push(a.max(0), Event::BlockStart { worker, end_s: b });
                sim.push(b, Event::BlockEnd { worker });
            }
        }
        for (idx, item) in trace.items.iter().enumerate() {
            sim.push(item.arrival_s, Event::Arrival { item: idx as u32 });
        }
        sim
    }

    fn push(&mut self, at: i64, event: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, event, self.seq)));
    }

    fn run(&mut self) {
        for _ in 0..EVENTS_MAX {
            let Some(Reverse((now, event, _))) = self.events.pop() else {
                return;
            };
            if now > self.trace.end_s {
                return;
            }
            if let Some(k) = &mut self.karya {
                let roll = (k.rng.next_u64() % 1000) as u16;
                let t = self.trace.at(now);
                let effects = k.router.tick(t, roll);
                for effect in effects {
                    self.apply(effect, now);
                }
            }
            match event {
                Event::Arrival { item } => self.arrive(item, now),
                Event::Complete { worker, item } => self.complete(worker, item, now),
                Event::BlockStart { worker, end_s } => self.block_start(worker, end_s, now),
                Event::BlockEnd { worker } => self.block_end(worker, now),
            }
        }
        panic!("the run exceeded {EVENTS_MAX} events");
    }

    fn arrive(&mut self, item: u32, now: i64) {
        let spec = self.trace.items[item as usize];
        if self.karya.is_some() {
            let k = self.karya.as_mut().expect("karya policy");
            let (client_id, engagement_id) = k.engagements[usize::from(spec.line)];
            let task = OpenTask {
                id: task_id(item),
                client_id,
                engagement_id,
                priority: spec.priority,
                created_at: self.trace.at(spec.arrival_s),
                due_at: Some(self.trace.at(spec.due_s)),
                requirements: k.requirements[usize::from(spec.line)].clone(),
                preferred_worker: None,
                excluded_workers: Vec::new(),
                attributes: Vec::new(),
                step: String::new(),
                service_line: None,
            };
            let roll = (k.rng.next_u64() % 1000) as u16;
            let effect = k
                .router
                .add_task(task, self.trace.at(now), roll)
                .expect("task ids are unique");
            self.apply(effect, now);
            return;
        }
        let line = usize::from(spec.line);
        let free = (0..self.workers.len()).filter(|&w| {
            let state = &self.workers[w];
            state.on_shift
                && (state.running.len() as u32) < state.capacity
                && self.eligible[w][line]
        });
        let chosen = match self.policy {
            Policy::Fifo => free.min_by_key(|&w| (self.workers[w].idle_since_s, w)),
            Policy::PrioritySkills => {
                free.min_by_key(|&w| (self.match_cost[w][line], self.workers[w].idle_since_s, w))
            }
            Policy::Karya => unreachable!("handled above"),
        };
        match chosen {
            Some(w) => self.start(w as u32, item, spec.handling_s, now),
            None => self.queues[line][usize::from(rank(spec.priority))].push_back(item),
        }
    }

    fn complete(&mut self, worker: u32, item: u32, now: i64) {
        let state = &mut self.workers[worker as usize];
        let Some(pos) = state
            .running
            .iter()
            .position(|r| r.item == item && r.end_s == now)
        else {
            return; // handed over at a block end: this completion no longer holds
        };
        let run = state.running.swap_remove(pos);
        state.busy_s += window_overlap(run.started_s, now, self.trace.window_end_s);
        if now > run.shift_end_s {
            self.overrun_tasks += 1;
            self.overrun_s += now - run.shift_end_s;
        }
        if state.running.is_empty() {
            state.idle_since_s = now;
        }
        self.completed_s[item as usize] = Some(now);
        if let Some(k) = &mut self.karya {
            k.router
                .close_task(task_id(item))
                .expect("a running task is open in the router");
        }
        if self.workers[worker as usize].on_shift {
            self.fill(worker, now);
        }
    }

    fn block_start(&mut self, worker: u32, end_s: i64, now: i64) {
        let state = &mut self.workers[worker as usize];
        state.on_shift = true;
        state.block_end_s = end_s;
        let paused = std::mem::take(&mut state.paused);
        if state.running.is_empty() && paused.is_empty() {
            state.idle_since_s = now;
        }
        for (item, left_s) in paused {
            self.start(worker, item, left_s, now);
        }
        if let Some(k) = &mut self.karya {
            k.router
                .set_presence(worker_id(worker), Presence::Available, self.trace.at(now))
                .expect("every worker is known to the router");
        }
        self.fill(worker, now);
    }

    fn block_end(&mut self, worker: u32, now: i64) {
        let window_end = self.trace.window_end_s;
        let state = &mut self.workers[worker as usize];
        state.on_shift = false;
        let Some(k) = &mut self.karya else {
            return; // baselines finish the work at hand, past the shift end if need be
        };
        let at = self.trace.at(now);
        if k.patterns[worker as usize].phase_at(at).phase == ShiftPhase::Break {
            // A break: the work in hand waits for the worker.
            k.router
                .set_presence(worker_id(worker), Presence::Break, at)
                .expect("every worker is known to the router");
            for run in std::mem::take(&mut state.running) {
                state.busy_s += window_overlap(run.started_s, now, window_end);
                if run.end_s > now {
                    state.paused.push((run.item, run.end_s - now));
                    self.paused += 1;
                }
            }
            return;
        }
        k.router
            .set_presence(worker_id(worker), Presence::Offline, self.trace.at(now))
            .expect("every worker is known to the router");
        let mut handed_over = Vec::new();
        for run in std::mem::take(&mut state.running) {
            state.busy_s += window_overlap(run.started_s, now, window_end);
            if run.end_s > now {
                self.remaining_s[run.item as usize] = Some((run.end_s - now, worker));
                handed_over.push(run.item);
            }
        }
        // Work in hand at the end of the shift goes back to routing with its progress: the
        // next eligible worker on shift carries on from where it stopped.
        for item in handed_over {
            self.handed_over += 1;
            let k = self.karya.as_mut().expect("karya policy");
            let roll = (k.rng.next_u64() % 1000) as u16;
            let effects = k
                .router
                .release(task_id(item), self.trace.at(now), roll)
                .expect("a running task is held by its worker");
            for effect in effects {
                self.apply(effect, now);
            }
        }
    }

    /// Gives a worker with free capacity more work, by the policy.
    fn fill(&mut self, worker: u32, now: i64) {
        for _ in 0..GET_NEXT_MAX {
            let state = &self.workers[worker as usize];
            if !state.on_shift || state.running.len() as u32 >= state.capacity {
                return;
            }
            let next = match &mut self.karya {
                Some(k) => {
                    let roll = (k.rng.next_u64() % 1000) as u16;
                    let effect = k
                        .router
                        .get_next(worker_id(worker), self.trace.at(now), roll)
                        .expect("every worker is known to the router");
                    match effect {
                        Some(effect) => {
                            self.apply(effect, now);
                            continue;
                        }
                        None => return,
                    }
                }
                None => self.next_from_queues(worker as usize),
            };
            let Some(item) = next else { return };
            let handling = self.trace.items[item as usize].handling_s;
            self.start(worker, item, handling, now);
        }
    }

    /// The baselines' choice of the next waiting item for a worker, taken off its queue.
    fn next_from_queues(&mut self, worker: usize) -> Option<u32> {
        let items = &self.trace.items;
        let mut best: Option<((u8, u32, i64), usize, usize)> = None;
        for (line, queues) in self.queues.iter().enumerate() {
            if !self.eligible[worker][line] {
                continue;
            }
            for (r, queue) in queues.iter().enumerate() {
                let Some(&head) = queue.front() else { continue };
                let arrival = items[head as usize].arrival_s;
                // Smaller key wins.
                let key = match self.policy {
                    Policy::Fifo => (0, 0, arrival),
                    _ => (3 - r as u8, self.match_cost[worker][line], arrival),
                };
                if best.is_none_or(|(b, _, _)| key < b) {
                    best = Some((key, line, r));
                }
            }
        }
        let (_, line, r) = best?;
        self.queues[line][r].pop_front()
    }

    fn start(&mut self, worker: u32, item: u32, work_s: i64, now: i64) {
        let state = &mut self.workers[worker as usize];
        debug_assert!((state.running.len() as u32) < state.capacity);
        state.running.push(Running {
            item,
            started_s: now,
            end_s: now + work_s,
            shift_end_s: state.block_end_s,
        });
        self.push(now + work_s, Event::Complete { worker, item });
    }

    /// Carries out a router effect the way a worker would: an offer is accepted at once.
    fn apply(&mut self, effect: Effect, now: i64) {
        let (task, worker) = match effect {
            Effect::Offer {
                task_id, worker_id, ..
            } => {
                let k = self.karya.as_mut().expect("karya policy");
                k.router
                    .accept(task_id, worker_id, self.trace.at(now))
                    .expect("the offer was just made");
                (task_id, worker_id)
            }
            Effect::Assign {
                task_id, worker_id, ..
            } => (task_id, worker_id),
            Effect::Withdraw { .. }
            | Effect::Release { .. }
            | Effect::Escalate { .. }
            | Effect::Wait { .. } => return,
        };
        let (item, worker) = (item_of(task), worker_of(worker));
        let work_s = match self.remaining_s[item as usize].take() {
            Some((left_s, by)) if by == worker => left_s,
            Some((left_s, _)) => left_s + self.scenario.handover.as_secs(),
            None => self.trace.items[item as usize].handling_s,
        };
        self.start(worker, item, work_s, now);
    }

    fn outcome(&self) -> Outcome {
        let mut by_priority: Vec<(Priority, u32, u32)> = self
            .scenario
            .priorities
            .iter()
            .map(|(p, _)| (*p, 0, 0))
            .collect();
        let (mut on_time, mut completed, mut turnaround) = (0u32, 0u32, 0i64);
        for (item, done) in self.trace.items.iter().zip(&self.completed_s) {
            let hit = done.is_some_and(|at| at <= item.due_s);
            if let Some(at) = done {
                completed += 1;
                turnaround += at - item.arrival_s;
            }
            on_time += u32::from(hit);
            if let Some(entry) = by_priority.iter_mut().find(|e| e.0 == item.priority) {
                entry.1 += 1;
                entry.2 += u32::from(hit);
            }
        }
        let window_end = self.trace.window_end_s;
        let mut labour_cost = 0.0;
        let utilisation = self
            .trace
            .workers
            .iter()
            .zip(&self.workers)
            .map(|(roster, state)| {
                let shift_s: i64 = roster
                    .blocks
                    .iter()
                    .map(|&(a, b)| window_overlap(a.max(0), b, window_end))
                    .sum();
                let team = &self.scenario.teams[state.team];
                labour_cost += shift_s as f64 / 3600.0 * team.hourly_cost;
                match shift_s {
                    0 => 0.0,
                    s => state.busy_s as f64 / (s as f64 * f64::from(state.capacity)),
                }
            })
            .collect();
        // Overtime is paid at the mean hourly rate: the run does not keep overruns by worker.
        let n_workers = self.workers.len().max(1) as f64;
        let mean_rate = self
            .workers
            .iter()
            .map(|w| self.scenario.teams[w.team].hourly_cost)
            .sum::<f64>()
            / n_workers;
        Outcome {
            policy: self.policy,
            items: self.trace.items.len() as u32,
            completed,
            on_time,
            by_priority,
            utilisation,
            overrun_tasks: self.overrun_tasks,
            overrun_s: self.overrun_s,
            handed_over: self.handed_over,
            paused: self.paused,
            labour_cost,
            overtime_cost: self.overrun_s as f64 / 3600.0 * mean_rate * OVERTIME_PREMIUM,
            turnaround_mean_min: turnaround as f64 / 60.0 / f64::from(completed.max(1)),
        }
    }
}

fn window_overlap(a: i64, b: i64, window_end: i64) -> i64 {
    (b.min(window_end) - a.max(0)).max(0)
}

/// How far a team's skills are from what a line needs: levels above the minimums plus skills
/// the line does not use. A specialist scores lower than a generalist.
fn skill_match_cost(scenario: &Scenario, team: usize, line: usize) -> u32 {
    let (team, line) = (&scenario.teams[team], &scenario.lines[line]);
    let excess: u32 = line
        .skills
        .iter()
        .map(|(name, min)| {
            let level = team
                .skills
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, l)| *l);
            u32::from(level.saturating_sub(*min))
        })
        .sum();
    let unused = team
        .skills
        .iter()
        .filter(|(name, _)| !line.skills.iter().any(|(n, _)| n == name))
        .count() as u32;
    excess + unused
}

/// The router loaded with the roster as the server would load it: worker profiles with their
/// weekly shifts and days off, one engagement per line with its requirements.
fn karya_state(scenario: &Scenario, trace: &Trace, seed: u64) -> KaryaState {
    let epoch = trace.epoch;
    let mut router = Router::new(RoutingConfig::default());
    let mut rng = Rng::new(seed ^ 0x4011_0000);
    let engagements: Vec<(ClientId, EngagementId)> = (0..scenario.lines.len())
        .map(|idx| {
            (
                ClientId::from_uuid(Uuid::from_u128(0x5157_3000_0000 + idx as u128)),
                EngagementId::from_uuid(Uuid::from_u128(0x5157_4000_0000 + idx as u128)),
            )
        })
        .collect();
    // The queue is the SLA's business here: a task waits for a qualified worker however long
    // that takes, with no widening or escalation step.
    let workflow = RoutingWorkflow {
        steps: vec![WorkflowStep {
            name: "as_required".into(),
            drop_optional_skills: false,
            widen_sites: false,
            designation_min: None,
            escalate: false,
            timeout: None,
        }],
    };
    for (_, engagement) in &engagements {
        router
            .set_workflow(*engagement, workflow.clone())
            .expect("a one-step workflow is valid");
    }
    let requirements = scenario
        .lines
        .iter()
        .map(|line| {
            let mut req = Requirements::any(
                "work",
                1,
                SignedDuration::from_secs((line.handling.mean_minutes() * 60.0).round() as i64),
            );
            req.qualifications = line.qualifications.clone();
            req.skills = line
                .skills
                .iter()
                .map(|(skill, level)| SkillRequirement {
                    skill: skill.clone(),
                    level_min: *level,
                    optional: false,
                })
                .collect();
            req.allowed_sites = line
                .allowed_sites
                .as_ref()
                .map(|sites| sites.iter().map(|s| site_id(*s)).collect());
            Arc::new(req)
        })
        .collect();
    let qualified_since: Timestamp = epoch - SignedDuration::from_hours(24 * 3650);
    let mut patterns = Vec::with_capacity(trace.workers.len());
    for (idx, roster) in trace.workers.iter().enumerate() {
        let team = &scenario.teams[roster.team];
        let shift = &scenario.shifts[team.shift];
        let time_zone = TimeZone::fixed(scenario.sites[team.site].offset);
        let (blocks, breaks) = blocks_and_breaks(shift);
        let weekly = shift
            .days
            .iter()
            .flat_map(|day| {
                blocks.iter().map(|(start, length)| ShiftBlock {
                    weekday: *day,
                    start: *start,
                    length: *length,
                })
            })
            .collect();
        let exceptions = roster
            .days_off
            .iter()
            .map(|date| ShiftException {
                date: *date,
                start: jiff::civil::Time::midnight(),
                length: SignedDuration::ZERO,
            })
            .collect();
        let profile = WorkerProfile {
            id: worker_id(idx as u32),
            site_id: Some(site_id(team.site)),
            designation: team.designation,
            languages: vec!["en".into()],
            qualifications: team
                .qualifications
                .iter()
                .map(|kind| Qualification {
                    kind: kind.clone(),
                    field: None,
                    issuer: "simulated".into(),
                    valid_from: qualified_since,
                    valid_until: None,
                })
                .collect(),
            skills: team
                .skills
                .iter()
                .map(|(name, level)| Skill {
                    name: name.clone(),
                    level: *level,
                })
                .collect(),
            growth_skills: Vec::new(),
            shift: ShiftPattern {
                time_zone,
                weekly,
                exceptions,
                leave: Vec::new(),
                breaks,
            },
            capacity: Capacity {
                units_max: team.capacity,
                channels: Vec::new(),
            },
            excluded_clients: Vec::new(),
            attributes: Vec::new(),
        };
        patterns.push(profile.shift.clone());
        let roll = (rng.next_u64() % 1000) as u16;
        let effects = router.upsert_worker(profile, epoch, roll);
        debug_assert!(effects.is_empty());
    }
    KaryaState {
        router,
        patterns,
        rng,
        requirements,
        engagements,
    }
}

/// A scenario shift as a shift pattern has it: blocks whose gaps are at most [`BREAK_GAP_MAX`]
/// join into one block with those gaps as its breaks. A pattern's breaks are the same in every
/// block, so the shift is joined only when every joined block has the same breaks; otherwise
/// its blocks stay apart, without breaks.
fn blocks_and_breaks(
    shift: &ShiftDef,
) -> (Vec<(jiff::civil::Time, SignedDuration)>, Vec<ShiftBreak>) {
    let seconds = |t: jiff::civil::Time| {
        i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
    };
    let mut sorted = shift.blocks.clone();
    sorted.sort_by_key(|(start, _)| seconds(*start));
    // Runs of blocks: (start, start in seconds, end in seconds, breaks).
    let mut runs: Vec<(jiff::civil::Time, i64, i64, Vec<ShiftBreak>)> = Vec::new();
    for (start, length) in sorted {
        let from = seconds(start);
        let until = from + length.as_secs();
        match runs.last_mut() {
            Some(run) if from > run.2 && from - run.2 <= BREAK_GAP_MAX.as_secs() => {
                run.3.push(ShiftBreak {
                    after: SignedDuration::from_secs(run.2 - run.1),
                    length: SignedDuration::from_secs(from - run.2),
                });
                run.2 = until;
            }
            _ => runs.push((start, from, until, Vec::new())),
        }
    }
    let same_breaks = runs.windows(2).all(|pair| pair[0].3 == pair[1].3);
    if !same_breaks || runs.iter().all(|run| run.3.is_empty()) {
        return (shift.blocks.clone(), Vec::new());
    }
    let breaks = runs[0].3.clone();
    let blocks = runs
        .into_iter()
        .map(|(start, from, until, _)| (start, SignedDuration::from_secs(until - from)))
        .collect();
    (blocks, breaks)
}

#[cfg(test)]
mod tests {
    use jiff::civil::Weekday;
    use jiff::civil::{time, Time};

    use super::*;

    fn shift(blocks: &[(Time, i64)]) -> ShiftDef {
        ShiftDef {
            name: "test".into(),
            days: vec![Weekday::Monday],
            blocks: blocks
                .iter()
                .map(|(start, mins)| (*start, SignedDuration::from_mins(*mins)))
                .collect(),
        }
    }

    fn mins(m: i64) -> SignedDuration {
        SignedDuration::from_mins(m)
    }

    #[test]
    fn short_gaps_between_blocks_are_breaks_of_one_shift() {
        // Two four-hour blocks with half an hour between: one block with a break.
        let (blocks, breaks) = blocks_and_breaks(&shift(&[
            (time(13, 30, 0, 0), 240),
            (time(9, 0, 0, 0), 240),
        ]));
        assert_eq!(blocks, vec![(time(9, 0, 0, 0), mins(510))]);
        assert_eq!(
            breaks,
            vec![ShiftBreak {
                after: mins(240),
                length: mins(30)
            }]
        );
        // Over midnight: 18:30-22:30 and 23:00-03:00.
        let (blocks, breaks) = blocks_and_breaks(&shift(&[
            (time(18, 30, 0, 0), 240),
            (time(23, 0, 0, 0), 240),
        ]));
        assert_eq!(blocks, vec![(time(18, 30, 0, 0), mins(510))]);
        assert_eq!(breaks[0].after, mins(240));
        // A gap longer than a break: two shifts a day.
        let apart = shift(&[(time(6, 0, 0, 0), 240), (time(14, 0, 0, 0), 240)]);
        assert_eq!(
            blocks_and_breaks(&apart),
            (apart.blocks.clone(), Vec::new())
        );
        // Joined runs with different breaks cannot share the pattern's breaks: left apart.
        let uneven = shift(&[
            (time(0, 0, 0, 0), 120),
            (time(2, 30, 0, 0), 120),
            (time(12, 0, 0, 0), 120),
            (time(15, 0, 0, 0), 120),
        ]);
        assert_eq!(
            blocks_and_breaks(&uneven),
            (uneven.blocks.clone(), Vec::new())
        );
    }

    #[test]
    fn work_in_hand_waits_over_a_break_and_is_handed_over_at_the_shift_end() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scenarios/reference.toml"
        ))
        .unwrap();
        let mut scenario = Scenario::parse(&text).unwrap();
        scenario.days = 2;
        let trace = crate::trace::generate(&scenario, 0.95, 1).unwrap();
        let karya = run(&scenario, &trace, Policy::Karya, 1);
        assert!(karya.paused > 0, "no work was in hand at a break");
        assert!(karya.handed_over > 0, "no work was in hand at a shift end");
        assert_eq!(karya.overrun_tasks, 0);
        // The baselines keep working through breaks and past shift ends instead.
        let fifo = run(&scenario, &trace, Policy::Fifo, 1);
        assert_eq!((fifo.paused, fifo.handed_over), (0, 0));
    }
}
