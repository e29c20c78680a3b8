//! The demo's history: a discrete-event run of the firm through the real store, on a simulated
//! clock, ending at "now".
//!
//! Every change goes through the store's use cases with the simulated time as `now`, exactly
//! as the server and its background loops make them: the router's rounds (expire offers, rank
//! with the core's [`plan`], write offers), workers answering offers, starting and finishing
//! work within their shifts, decisions taken inside tasks under the client's policies, outputs
//! submitted and sampled by the QA policy, reviews with defects and rework, the item moving
//! through its pack's human steps to delivery, the SLA monitor's warnings, clients closing
//! delivered items, and one policy change halfway with the undos it causes. What is still open
//! at the end stays open: the live state the UI shows.
//!
//! Events at one instant run in the order they were scheduled, and every draw comes from one
//! seeded [`Rng`], so a seed and an end time give the same history.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use karya_core::decision::ledger::{DecisionStatus, Resolution};
use karya_core::decision::policy::{Constraint, Layer, OnFail, PolicyDraft, Scope};
use karya_core::id::{AssignmentId, DecisionId, OfferId, ReviewId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Defect, Designation};
use karya_core::pack;
use karya_core::qa::review::Verdict;
use karya_core::routing::{OpenTask, Requirements, RoutingConfig, RoutingWorkflow, WorkerLoad};
use karya_core::workforce::Presence;
use karya_processors::router::{plan, Decision, PoolWorker, ReadyTask};
use karya_processors::sla_monitor::warnings_due;
use karya_sim::demo::{handling_minutes, Arrival, DemoFirm};
use karya_sim::rng::Rng;
use karya_store::{
    CaseQuery, NewDecision, NewOffer, NewReview, NewTask, NewWorkItem, OfferMade, Store,
    StoreError, Submission, SubmitOutcome, Tenant,
};
use serde_json::{json, Value};

use crate::demo::Ids;
use crate::demo_setup::Built;
use crate::demo_values;

/// Time between the router's rounds, as `karya serve` runs them when work is waiting.
const ROUTE_EVERY: SignedDuration = SignedDuration::from_mins(5);
/// Longest time between two rounds when nothing changed: workflow steps last hours, so a
/// step that times out is acted on within this.
const ROUTE_IDLE_MAX: SignedDuration = SignedDuration::from_mins(30);
/// Time between the SLA monitor's passes (the server's monitor passes every 30 s; warnings in
/// the history are stamped within the hour they became due).
const SLA_EVERY: SignedDuration = SignedDuration::from_mins(60);
/// Roster generated past the end, so work still in hand has a finish time.
const ROSTER_TAIL_DAYS: i64 = 45;
/// Share of offers a worker accepts, declines, or lets time out.
const ACCEPT_SHARE: f64 = 0.9;
const DECLINE_SHARE: f64 = 0.06;
/// Share of delivered items the client closes (accepts) after a day or so.
const CLOSE_SHARE: f64 = 0.7;
/// Share of steps whose request for documents is actually needed (the rest are complete).
const HOLD_SHARE: f64 = 0.2;
/// Name the demo's processor runner claims jobs under.
const PROCESSOR_RUNNER: &str = "demo-processors";
/// Time between the runner's looks for waiting jobs.
const JOBS_EVERY: SignedDuration = SignedDuration::from_mins(2);
/// Jobs claimed in one look.
const JOBS_PER_PASS: usize = 50;
/// Escalated tasks the leads look at in one pass.
const ESCALATIONS_PER_PASS: u32 = 50;
/// How long the policy change looks back for decisions that now conflict.
const POLICY_LOOKBACK: SignedDuration = SignedDuration::from_hours(24 * 7);

/// What the run did, for the summary and the tests.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub items: u32,
    pub tasks: u32,
    pub offers: u32,
    pub declined: u32,
    pub expired: u32,
    /// Tasks handed back to routing because their worker's shift ended before they were done.
    pub handed_over: u32,
    pub submissions: u32,
    /// Processor jobs completed.
    pub jobs: u32,
    pub reviews: u32,
    pub failed_reviews: u32,
    pub decisions: u32,
    pub approvals: u32,
    pub undone: u32,
    pub delivered: u32,
    pub closed: u32,
    pub sla_warnings: u32,
    /// Changes the store refused (a race the simulation lost, a rule it did not foresee).
    pub refused: u32,
}

/// The people the demo's sign-ins are linked to, chosen from how the run ended.
#[derive(Debug, Clone, Copy)]
pub struct Cast {
    pub lead: usize,
    pub worker: usize,
    pub reviewer: usize,
}

#[derive(Debug, Clone)]
enum Event {
    Arrival(usize),
    ShiftStart(usize),
    ShiftEnd(usize),
    Route,
    Sla,
    OfferReply {
        worker: usize,
        offer: OfferId,
        task: TaskId,
        accept: bool,
    },
    WorkDone {
        worker: usize,
        task: TaskId,
    },
    ReviewDone {
        reviewer: usize,
        task: TaskId,
    },
    Settle {
        item: WorkItemId,
        decision: DecisionId,
        approve: bool,
    },
    Close(WorkItemId),
    PolicyChange,
    Resume {
        task: TaskId,
    },
    /// A worker does not come in for a shift (leave, a holiday): recorded as leave.
    Absent {
        worker: usize,
        until: Timestamp,
    },
    Jobs,
    JobDone {
        job: uuid::Uuid,
        processor: String,
        item: WorkItemId,
    },
}

struct SimWorker {
    id: WorkerId,
    designation: Designation,
    intervals: Vec<(Timestamp, Timestamp)>,
    on_shift: bool,
    shift_started: Timestamp,
    units: u32,
    queue: VecDeque<TaskId>,
    active: Option<TaskId>,
    reviews: u32,
    error_rate: f64,
    response_seconds: f64,
}

struct SimTask {
    item: WorkItemId,
    engagement: usize,
    step: String,
    maker: Option<usize>,
    /// Rework rounds so far.
    rework: u32,
    /// Whether it has waited on the client once already.
    held: bool,
    /// Capacity units it weighs while offered or held.
    units: u32,
}

struct SimItem {
    engagement: usize,
    input: Value,
    /// Whether it stands delivered (counted once per delivery).
    delivered: bool,
}

struct Sim<'a> {
    store: &'a Store,
    firm: &'a DemoFirm,
    built: &'a Built,
    ids: &'a mut Ids,
    rng: Rng,
    now: Timestamp,
    events: BinaryHeap<Reverse<(Timestamp, u64)>>,
    pending: HashMap<u64, Event>,
    seq: u64,
    workers: Vec<SimWorker>,
    tasks: HashMap<TaskId, SimTask>,
    items: HashMap<WorkItemId, SimItem>,
    arrivals: &'a [Arrival],
    /// Decisions taken, for the policy change: (engagement, type, amount, decision, item, step).
    decided: Vec<(usize, String, f64, DecisionId, WorkItemId, String)>,
    /// The policy in force after the change: (engagement, decision type, cap).
    cap: Option<(usize, String, f64)>,
    routing: RoutingConfig,
    stats: RunStats,
    refs: HashMap<usize, u32>,
    /// Whether anything happened since the last routing round that could change its outcome.
    changed: bool,
    routed_at: Timestamp,
}

/// Runs the history from `start` to `end`; `progress` is told the simulated time as it goes.
#[allow(
    clippy::too_many_arguments,
    reason = "the one caller hands over each part of the demo it built, by name"
)]
pub async fn run(
    store: &Store,
    firm: &DemoFirm,
    built: &Built,
    arrivals: &[Arrival],
    ids: &mut Ids,
    seed: u64,
    (start, end): (Timestamp, Timestamp),
    progress: &dyn Fn(Timestamp, &RunStats),
) -> anyhow::Result<(RunStats, Cast)> {
    let mut workers = Vec::with_capacity(firm.workers.len());
    for (idx, worker) in firm.workers.iter().enumerate() {
        let built_worker = &built.workers[idx];
        workers.push(SimWorker {
            id: built_worker.id,
            designation: worker.designation,
            intervals: roster(worker, &built_worker.profile.shift.time_zone, start, end),
            on_shift: false,
            shift_started: start,
            units: 0,
            queue: VecDeque::new(),
            active: None,
            reviews: 0,
            error_rate: worker.error_rate,
            response_seconds: worker.response_seconds,
        });
    }
    let mut sim = Sim {
        store,
        firm,
        built,
        ids,
        rng: Rng::new(seed ^ 0x5151_d3a0),
        now: start,
        events: BinaryHeap::new(),
        pending: HashMap::new(),
        seq: 0,
        workers,
        tasks: HashMap::new(),
        items: HashMap::new(),
        arrivals,
        decided: Vec::new(),
        cap: None,
        routing: RoutingConfig::default(),
        stats: RunStats::default(),
        refs: HashMap::new(),
        changed: true,
        routed_at: start,
    };
    for (idx, _) in arrivals.iter().enumerate() {
        sim.schedule(arrivals[idx].at, Event::Arrival(idx));
    }
    for (idx, worker) in firm.workers.iter().enumerate() {
        let zone = &built.workers[idx].profile.shift.time_zone;
        for (from, until) in absences(worker, zone, start, end) {
            sim.schedule(from, Event::Absent { worker: idx, until });
        }
    }
    for idx in 0..sim.workers.len() {
        let shifts: Vec<(Timestamp, Timestamp)> = sim.workers[idx]
            .intervals
            .iter()
            .copied()
            .filter(|(s, e)| *e > start && *s < end)
            .collect();
        for (s, e) in shifts {
            sim.schedule(s.max(start), Event::ShiftStart(idx));
            if e < end {
                sim.schedule(e, Event::ShiftEnd(idx));
            }
        }
    }
    sim.schedule(start, Event::Route);
    sim.schedule(start, Event::Sla);
    sim.schedule(start, Event::Jobs);
    let half = start + end.duration_since(start) / 2;
    sim.schedule(half, Event::PolicyChange);

    let mut last_report = start;
    while let Some(Reverse((at, seq))) = sim.events.pop() {
        if at >= end {
            break;
        }
        sim.now = at;
        let event = sim
            .pending
            .remove(&seq)
            .expect("every scheduled event is pending");
        // Anything but the timers and the bookkeeping may free a worker or ready a task.
        if !matches!(
            event,
            Event::Route | Event::Sla | Event::Jobs | Event::Close(_) | Event::Settle { .. }
        ) {
            sim.changed = true;
        }
        sim.handle(event)
            .await
            .with_context(|| format!("simulated time {at}"))?;
        if at.duration_since(last_report) >= SignedDuration::from_mins(30) {
            progress(at, &sim.stats);
            last_report = at;
        }
    }
    sim.now = end;
    // The live floor: whoever is on shift now is signed in; a last round of routing.
    sim.route().await?;
    progress(end, &sim.stats);
    let cast = sim.cast();
    Ok((sim.stats, cast))
}

/// The worker's shift blocks from a day before `start` to well after `end`, minus days off.
fn roster(
    worker: &karya_sim::demo::DemoWorker,
    zone: &jiff::tz::TimeZone,
    start: Timestamp,
    end: Timestamp,
) -> Vec<(Timestamp, Timestamp)> {
    let (block_start, length) = worker.shift.block();
    let first = start.to_zoned(zone.clone()).date();
    let days = end.duration_since(start).as_hours() / 24 + ROSTER_TAIL_DAYS;
    let mut out = Vec::new();
    for day in -1..=days {
        let Ok(date) = first.checked_add(jiff::Span::new().days(day)) else {
            continue;
        };
        if !worker.weekdays.contains(&date.weekday()) || worker.days_off.contains(&date) {
            continue;
        }
        let Ok(zoned) = date.to_datetime(block_start).to_zoned(zone.clone()) else {
            continue;
        };
        let s = zoned.timestamp();
        out.push((s, s + length));
    }
    out
}

/// The shift blocks a worker misses in `[start, end)`: leave and site holidays.
fn absences(
    worker: &karya_sim::demo::DemoWorker,
    zone: &jiff::tz::TimeZone,
    start: Timestamp,
    end: Timestamp,
) -> Vec<(Timestamp, Timestamp)> {
    let (block_start, length) = worker.shift.block();
    worker
        .days_off
        .iter()
        .filter(|date| worker.weekdays.contains(&date.weekday()))
        .filter_map(|date| date.to_datetime(block_start).to_zoned(zone.clone()).ok())
        .map(|zoned| (zoned.timestamp(), zoned.timestamp() + length))
        .filter(|(s, _)| *s >= start && *s < end)
        .collect()
}

/// When `minutes` of work started at `from` are done, working only inside the shift blocks.
fn advance(intervals: &[(Timestamp, Timestamp)], from: Timestamp, minutes: f64) -> Timestamp {
    let mut left = SignedDuration::from_secs((minutes * 60.0).round().max(60.0) as i64);
    for &(s, e) in intervals {
        if e <= from {
            continue;
        }
        let begin = s.max(from);
        let available = e.duration_since(begin);
        if left <= available {
            return begin + left;
        }
        left -= available;
    }
    let last = intervals.last().map_or(from, |(_, e)| (*e).max(from));
    last + left * 3
}

fn is_refusal(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Conflict { .. } | StoreError::Rejected { .. } | StoreError::NotFound { .. }
    )
}

impl Sim<'_> {
    fn schedule(&mut self, at: Timestamp, event: Event) {
        self.seq += 1;
        self.pending.insert(self.seq, event);
        self.events.push(Reverse((at, self.seq)));
    }

    fn id(&mut self) -> uuid::Uuid {
        self.ids.next(self.now)
    }

    fn tenant_of(&self, engagement: usize) -> Tenant {
        self.store
            .tenant(self.built.engagements[engagement].client_id)
    }

    fn pack_of(&self, engagement: usize) -> &'static pack::Pack {
        &self.built.engagements[engagement].pack.pack
    }

    fn today(&self) -> String {
        self.now
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string()
    }

    /// Counts a refusal, or passes any other error on.
    fn refused<T>(&mut self, result: Result<T, StoreError>) -> anyhow::Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(err) if is_refusal(&err) => {
                tracing::debug!(error = %err, "demo change refused");
                self.stats.refused += 1;
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn handle(&mut self, event: Event) -> anyhow::Result<()> {
        match event {
            Event::Arrival(idx) => self.arrive(idx).await,
            Event::ShiftStart(worker) => self.shift_start(worker).await,
            Event::ShiftEnd(worker) => self.shift_end(worker).await,
            Event::Route => {
                // A round over an unchanged floor decides what the last one did, unless a
                // workflow step has timed out since: those are checked every half hour.
                if self.changed || self.now.duration_since(self.routed_at) >= ROUTE_IDLE_MAX {
                    self.route().await?;
                    self.changed = false;
                    self.routed_at = self.now;
                }
                self.schedule(self.now + ROUTE_EVERY, Event::Route);
                Ok(())
            }
            Event::Sla => {
                self.sla_pass().await?;
                self.leads_take_escalations().await?;
                self.schedule(self.now + SLA_EVERY, Event::Sla);
                Ok(())
            }
            Event::OfferReply {
                worker,
                offer,
                task,
                accept,
            } => self.offer_reply(worker, offer, task, accept).await,
            Event::WorkDone { worker, task } => self.work_done(worker, task).await,
            Event::ReviewDone { reviewer, task } => self.review_done(reviewer, task).await,
            Event::Settle {
                item,
                decision,
                approve,
            } => {
                let Some(sim_item) = self.items.get(&item) else {
                    return Ok(());
                };
                let tenant = self.tenant_of(sim_item.engagement);
                let settled = tenant.settle_approval(decision, approve, self.now).await;
                if self.refused(settled)?.is_some() {
                    self.stats.approvals += 1;
                }
                Ok(())
            }
            Event::Close(item) => {
                let Some(sim_item) = self.items.get(&item) else {
                    return Ok(());
                };
                let tenant = self.tenant_of(sim_item.engagement);
                let current = tenant.work_item(item).await?;
                if current.state == WorkItemState::Delivered {
                    let closed = tenant
                        .transition_work_item(
                            item,
                            WorkItemState::Closed,
                            Some("accepted by the client"),
                            None,
                            self.now,
                        )
                        .await;
                    if self.refused(closed)?.is_some() {
                        self.stats.closed += 1;
                    }
                }
                Ok(())
            }
            Event::PolicyChange => self.policy_change().await,
            Event::Absent { worker, until } => {
                let date = self
                    .now
                    .to_zoned(self.built.workers[worker].profile.shift.time_zone.clone());
                let site = &self.firm.sites[self.firm.workers[worker].site];
                let reason = match site.holidays.contains(&date.date()) {
                    true => "public holiday",
                    false => "unplanned leave",
                };
                let id = self.id();
                let recorded = self
                    .store
                    .add_leave(
                        self.workers[worker].id,
                        id,
                        &karya_core::workforce::Leave {
                            from: self.now,
                            until,
                        },
                        reason,
                        self.now,
                    )
                    .await;
                self.refused(recorded)?;
                Ok(())
            }
            Event::Jobs => {
                self.run_jobs().await?;
                self.schedule(self.now + JOBS_EVERY, Event::Jobs);
                Ok(())
            }
            Event::JobDone {
                job,
                processor,
                item,
            } => self.job_done(job, &processor, item).await,
            Event::Resume { task } => {
                let Some(t) = self.tasks.get(&task) else {
                    return Ok(());
                };
                let (engagement, item) = (t.engagement, t.item);
                let tenant = self.tenant_of(engagement);
                let moved = tenant
                    .transition_work_item(
                        item,
                        WorkItemState::InProgress,
                        Some("the client sent the documents"),
                        None,
                        self.now,
                    )
                    .await;
                self.refused(moved)?;
                let resumed = tenant
                    .transition_task(task, TaskState::Ready, self.now)
                    .await;
                self.refused(resumed)?;
                Ok(())
            }
        }
    }

    async fn arrive(&mut self, idx: usize) -> anyhow::Result<()> {
        let arrival = self.arrivals[idx].clone();
        let engagement = &self.built.engagements[arrival.engagement];
        let loaded = engagement.pack;
        let (example, input) = demo_values::input(loaded, arrival.variant);
        let client = &self.firm.clients[engagement.client];
        let n = self.refs.entry(arrival.engagement).or_insert(0);
        *n += 1;
        let initials: String = client
            .name
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .filter(char::is_ascii_alphabetic)
            .collect();
        let line_tag: String = engagement
            .line
            .code()
            .split('_')
            .filter_map(|w| w.chars().next())
            .collect::<String>()
            .to_uppercase();
        let external_ref = format!("{initials}-{line_tag}-{:05}", *n);
        let title = match loaded.pack.examples.get(example) {
            Some(e) => format!("{} ({external_ref})", capitalise(&e.name)),
            None => external_ref.clone(),
        };
        let item_id = WorkItemId::from_uuid(self.id());
        let tenant = self.tenant_of(arrival.engagement);
        let first_id = self.id();
        let created = tenant
            .create_and_start_work_item(
                &NewWorkItem {
                    id: item_id,
                    engagement_id: engagement.id,
                    external_ref: Some(external_ref),
                    title,
                    priority: arrival.priority,
                    input: input.to_string(),
                },
                first_id,
                self.now,
            )
            .await;
        if self.refused(created)?.is_none() {
            return Ok(());
        }
        self.stats.items += 1;
        self.items.insert(
            item_id,
            SimItem {
                engagement: arrival.engagement,
                input,
                delivered: false,
            },
        );
        // The pack's first step is open: a person's task, or a processor's job.
        self.follow(arrival.engagement, item_id).await
    }

    async fn open_task(
        &mut self,
        engagement: usize,
        item: WorkItemId,
        step: &str,
    ) -> anyhow::Result<()> {
        let id = TaskId::from_uuid(self.id());
        let tenant = self.tenant_of(engagement);
        let created = tenant
            .create_task(
                &NewTask {
                    id,
                    work_item_id: item,
                    step: step.to_string(),
                },
                self.now,
            )
            .await;
        if self.refused(created)?.is_some() {
            self.stats.tasks += 1;
            self.tasks.insert(
                id,
                SimTask {
                    item,
                    engagement,
                    step: step.to_string(),
                    maker: None,
                    rework: 0,
                    held: false,
                    units: 1,
                },
            );
        }
        Ok(())
    }

    async fn shift_start(&mut self, worker: usize) -> anyhow::Result<()> {
        let id = self.workers[worker].id;
        self.store
            .set_presence(id, Presence::Available, self.now)
            .await?;
        let w = &mut self.workers[worker];
        w.on_shift = true;
        w.shift_started = self.now;
        // Work that came to them off shift (rework of their own, an offer taken late) waited.
        self.start_next(worker).await
    }

    /// As the server's shift pass does: the worker goes offline and the work they hold and have
    /// not submitted goes back to routing, for whoever is on shift; what they were doing is
    /// dropped from their hands (its `WorkDone` comes stale).
    async fn shift_end(&mut self, worker: usize) -> anyhow::Result<()> {
        let id = self.workers[worker].id;
        let ended = self.store.end_shift(id, self.now).await?;
        self.workers[worker].on_shift = false;
        for (_, task_id) in ended.map(|change| change.handed_over).unwrap_or_default() {
            let units = self.tasks.get(&task_id).map_or(1, |t| t.units);
            let w = &mut self.workers[worker];
            w.queue.retain(|t| *t != task_id);
            if w.active == Some(task_id) {
                w.active = None;
            }
            w.units = w.units.saturating_sub(units);
            self.stats.handed_over += 1;
            self.changed = true;
        }
        Ok(())
    }

    /// One round of the router, as `RouterWorker` makes it, at the simulated time.
    async fn route(&mut self) -> anyhow::Result<()> {
        let now = self.now;
        for offer in self.store.expire_offers(now).await? {
            self.stats.expired += 1;
            if let Some(w) = self.workers.iter_mut().find(|w| w.id == offer.worker_id) {
                w.units = w.units.saturating_sub(offer.units);
            }
        }
        let routable = self.store.routable_tasks().await?;
        if routable.is_empty() {
            return Ok(());
        }
        for r in &routable {
            self.know(&r.task);
        }
        let mut pool = Vec::new();
        for (idx, w) in self.workers.iter().enumerate() {
            if !w.on_shift || w.units >= self.firm.workers[idx].capacity_units {
                continue;
            }
            pool.push(PoolWorker {
                profile: self.built.workers[idx].profile.clone(),
                load: WorkerLoad {
                    presence: Presence::Available,
                    units_used: w.units,
                    channel_units: Vec::new(),
                    last_assigned_at: None,
                    working_since: Some(w.shift_started),
                },
            });
        }
        if pool.is_empty() {
            return Ok(());
        }
        let standard = std::sync::Arc::new(RoutingWorkflow::standard());
        let fallback = std::sync::Arc::new(Requirements::any(
            "default",
            1,
            SignedDuration::from_mins(30),
        ));
        let queries: Vec<CaseQuery> = routable
            .iter()
            .map(|r| CaseQuery {
                task_id: r.task.id,
                work_item_id: r.task.work_item_id,
                step: r.task.step.clone(),
            })
            .collect();
        let mut cases = self.store.task_cases(&queries).await?;
        let tasks: Vec<ReadyTask> = routable
            .into_iter()
            .map(|r| {
                let (requirements, workflow) = r
                    .routing
                    .unwrap_or_else(|| (fallback.clone(), standard.clone()));
                let case = cases.remove(&r.task.id).unwrap_or_default();
                ReadyTask {
                    task: OpenTask {
                        id: r.task.id,
                        client_id: r.task.client_id,
                        engagement_id: r.engagement_id,
                        priority: r.task.priority,
                        created_at: r.task.created_at,
                        due_at: r.sla_due_at,
                        requirements,
                        preferred_worker: case.preferred_worker,
                        excluded_workers: case.excluded_workers,
                        attributes: Vec::new(),
                        step: r.task.step.clone(),
                        service_line: Some(r.service_line),
                    },
                    workflow,
                }
            })
            .collect();
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.task.id).collect();
        let refusals: HashSet<(TaskId, WorkerId)> =
            self.store.refusals(&ids).await?.into_iter().collect();
        let roll = self.rng.below(1000) as u16;
        let decisions = plan(&tasks, &refusals, &mut pool, now, &self.routing, roll);
        for decision in decisions {
            match decision {
                Decision::Offer {
                    task_idx,
                    worker_id,
                    expires_at,
                    explanation,
                } => {
                    let task = &tasks[task_idx].task;
                    let offer = NewOffer {
                        id: OfferId::from_uuid(self.id()),
                        task_id: task.id,
                        worker_id,
                        expires_at,
                        explanation,
                        explanation_id: self.id(),
                    };
                    let made = self
                        .store
                        .tenant(task.client_id)
                        .make_offer(&offer, now)
                        .await?;
                    let OfferMade::Made(stored) = made else {
                        continue;
                    };
                    self.stats.offers += 1;
                    let Some(worker) = self.workers.iter().position(|w| w.id == worker_id) else {
                        continue;
                    };
                    self.workers[worker].units += stored.units;
                    if let Some(t) = self.tasks.get_mut(&task.id) {
                        t.units = stored.units;
                    }
                    let x = self.rng.unit();
                    // Answers come in seconds, inside the offer's timeout.
                    let delay_s = (self.workers[worker].response_seconds
                        * (0.4 * self.rng.normal()).exp())
                    .clamp(3.0, 55.0);
                    let at = now + SignedDuration::from_secs(delay_s as i64);
                    let reply = |accept| Event::OfferReply {
                        worker,
                        offer: stored.id,
                        task: task.id,
                        accept,
                    };
                    match x {
                        x if x < ACCEPT_SHARE && at < expires_at => self.schedule(at, reply(true)),
                        x if x < ACCEPT_SHARE + DECLINE_SHARE => {
                            self.schedule(at.min(expires_at), reply(false))
                        }
                        // No answer: the offer times out and a later round routes the task.
                        _ => {}
                    }
                }
                Decision::Escalate {
                    task_idx,
                    explanation,
                } => {
                    let task = &tasks[task_idx].task;
                    let id = self.id();
                    self.store
                        .tenant(task.client_id)
                        .escalate_task(task.id, &explanation, id, now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn offer_reply(
        &mut self,
        worker: usize,
        offer: OfferId,
        task: TaskId,
        accept: bool,
    ) -> anyhow::Result<()> {
        let worker_id = self.workers[worker].id;
        let Some(units) = self.tasks.get(&task).map(|t| t.units) else {
            return Ok(());
        };
        if !accept {
            let declined = self.store.decline_offer(worker_id, offer, self.now).await;
            if self.refused(declined)?.is_some() {
                self.stats.declined += 1;
                let w = &mut self.workers[worker];
                w.units = w.units.saturating_sub(units);
            }
            return Ok(());
        }
        let assignment = AssignmentId::from_uuid(self.id());
        let accepted = self
            .store
            .accept_offer(worker_id, offer, assignment, self.now)
            .await;
        if self.refused(accepted)?.is_none() {
            let w = &mut self.workers[worker];
            w.units = w.units.saturating_sub(units);
            return Ok(());
        }
        if let Some(t) = self.tasks.get_mut(&task) {
            t.maker = Some(worker);
        }
        self.workers[worker].queue.push_back(task);
        self.start_next(worker).await
    }

    /// The worker starts the next task they hold, if they are on shift and free.
    async fn start_next(&mut self, worker: usize) -> anyhow::Result<()> {
        if !self.workers[worker].on_shift || self.workers[worker].active.is_some() {
            return Ok(());
        }
        let Some(task_id) = self.workers[worker].queue.pop_front() else {
            return Ok(());
        };
        let Some(task) = self.tasks.get(&task_id) else {
            return Ok(());
        };
        let (engagement, item, rework) = (task.engagement, task.item, task.rework);
        let pack = self.pack_of(engagement);
        let expected = pack.step(&task.step).map_or(30, |s| s.expected_minutes);
        let tenant = self.tenant_of(engagement);
        let current = tenant.work_item(item).await?;
        if current.state == WorkItemState::Received {
            let moved = tenant
                .transition_work_item(item, WorkItemState::InProgress, None, None, self.now)
                .await;
            self.refused(moved)?;
        }
        let started = tenant
            .transition_task(task_id, TaskState::InProgress, self.now)
            .await;
        if self.refused(started)?.is_none() {
            return Box::pin(self.start_next(worker)).await;
        }
        let mut minutes = handling_minutes(&mut self.rng, expected);
        if rework > 0 {
            minutes *= 0.35;
        }
        let finish = advance(&self.workers[worker].intervals, self.now, minutes);
        self.workers[worker].active = Some(task_id);
        self.schedule(
            finish,
            Event::WorkDone {
                worker,
                task: task_id,
            },
        );
        Ok(())
    }

    async fn work_done(&mut self, worker: usize, task_id: TaskId) -> anyhow::Result<()> {
        if self.workers[worker].active != Some(task_id) {
            // Handed over when the worker's shift ended: someone else does it now.
            return Ok(());
        }
        self.workers[worker].active = None;
        let Some(task) = self.tasks.get(&task_id) else {
            return self.start_next(worker).await;
        };
        let (engagement, item, step_name) = (task.engagement, task.item, task.step.clone());
        let loaded = self.built.engagements[engagement].pack;
        let tenant = self.tenant_of(engagement);
        let units = self.tasks.get(&task_id).map_or(1, |t| t.units);
        let today = self.today();
        // Decisions the step calls for. Asking the client for documents (or a physician for a
        // clarification) puts the item on hold; the task resumes when the answer comes.
        let held = self.tasks.get(&task_id).is_some_and(|t| t.held);
        if let Some(step) = loaded.pack.step(&step_name) {
            let asks = |name: &str| name.starts_with("request_") || name.starts_with("query_");
            let choices: Vec<&String> = step
                .decisions
                .iter()
                .filter(|name| !asks(name) || (!held && self.rng.chance(HOLD_SHARE)))
                .collect();
            if !choices.is_empty() {
                let pick = match self.rng.chance(0.75) {
                    true => 0,
                    false => self.rng.below(choices.len()),
                };
                let name = choices[pick].clone();
                let taken = self
                    .decide(worker, engagement, item, task_id, &step_name, &name, &today)
                    .await?;
                if taken && asks(&name) {
                    return self.hold(worker, engagement, item, task_id).await;
                }
            }
        }
        let input = self
            .items
            .get(&item)
            .map(|i| i.input.clone())
            .unwrap_or(json!({}));
        let output = demo_values::output(loaded, &input, &mut self.rng, &today);
        let document = output.to_string();
        let fields = demo_values::fields_text(&output);
        let next_id = self.id();
        let submitted = tenant
            .submit_task_with_output(
                task_id,
                &Submission {
                    fields: &fields,
                    document: Some(&document),
                    next_id,
                },
                self.now,
            )
            .await;
        let w = &mut self.workers[worker];
        w.units = w.units.saturating_sub(units);
        let Some(outcome) = self.refused(submitted)? else {
            return self.start_next(worker).await;
        };
        self.stats.submissions += 1;
        let task = match outcome {
            SubmitOutcome::Sampled { task, .. } | SubmitOutcome::Gold { task, .. } => task,
        };
        match task.state {
            TaskState::Done => self.follow(engagement, item).await?,
            TaskState::InReview => self.send_to_review(worker, engagement, task_id),
            _ => {}
        }
        self.start_next(worker).await
    }

    /// Takes one decision of `name` inside a task, under the client's policies.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &mut self,
        worker: usize,
        engagement: usize,
        item: WorkItemId,
        task_id: TaskId,
        step: &str,
        name: &str,
        today: &str,
    ) -> anyhow::Result<bool> {
        let loaded = self.built.engagements[engagement].pack;
        let Some(decision) = loaded.pack.decision(name) else {
            return Ok(false);
        };
        let amount = match &decision.authority {
            pack::Authority::Amount { field, limits, .. } => {
                // The currency's major unit, as the packs' payloads give amounts; a fifth go
                // above the analyst's limit and need a senior's authority or an approval.
                let analyst = limits
                    .first()
                    .map_or(10_000.0, |l| l.up_to.minor as f64 / 100.0);
                let mut amount = analyst * (0.8 * self.rng.normal() - 0.6).exp();
                if let Some((e, kind, cap)) = &self.cap {
                    if *e == engagement && kind == name && amount > *cap {
                        amount = *cap * (0.6 + 0.4 * self.rng.unit());
                    }
                }
                Some((field.as_str(), amount.max(1.0).round()))
            }
            pack::Authority::Designation { .. } => None,
        };
        let payload = demo_values::payload(loaded, name, amount, &mut self.rng, today);
        let attr = karya_store::attrs::from_json(&payload)
            .map_err(|err| anyhow::anyhow!("decision payload: {err}"))?;
        let id = DecisionId::from_uuid(self.id());
        let tenant = self.tenant_of(engagement);
        let taken = tenant
            .take_decision(
                &NewDecision {
                    id,
                    work_item_id: item,
                    task_id: Some(task_id),
                    decision_type: name.to_string(),
                    payload: attr,
                    team: None,
                    decided_by: self.workers[worker].id,
                },
                self.now,
            )
            .await;
        let Some(stored) = self.refused(taken)? else {
            return Ok(false);
        };
        self.stats.decisions += 1;
        if let Some((_, amount)) = amount {
            self.decided.push((
                engagement,
                name.to_string(),
                amount,
                id,
                item,
                step.to_string(),
            ));
        }
        if let DecisionStatus::PendingApproval(_) = stored.record.status {
            let hours = 1.0 + 5.0 * self.rng.unit();
            let approve = self.rng.chance(0.85);
            self.schedule(
                self.now + SignedDuration::from_secs((hours * 3_600.0) as i64),
                Event::Settle {
                    item,
                    decision: id,
                    approve,
                },
            );
        }
        Ok(true)
    }

    /// The item waits on the client: item and task on hold, the worker moves on; the answer
    /// comes some hours later.
    async fn hold(
        &mut self,
        worker: usize,
        engagement: usize,
        item: WorkItemId,
        task_id: TaskId,
    ) -> anyhow::Result<()> {
        let tenant = self.tenant_of(engagement);
        let units = self.tasks.get(&task_id).map_or(1, |t| t.units);
        let held = tenant
            .transition_task(task_id, TaskState::OnHold, self.now)
            .await;
        if self.refused(held)?.is_some() {
            let moved = tenant
                .transition_work_item(
                    item,
                    WorkItemState::OnHold,
                    Some("waiting for documents from the client"),
                    None,
                    self.now,
                )
                .await;
            self.refused(moved)?;
            if let Some(t) = self.tasks.get_mut(&task_id) {
                t.held = true;
            }
            let w = &mut self.workers[worker];
            w.units = w.units.saturating_sub(units);
            let hours = 3.0 + 30.0 * self.rng.unit();
            self.schedule(
                self.now + SignedDuration::from_secs((hours * 3_600.0) as i64),
                Event::Resume { task: task_id },
            );
        }
        self.start_next(worker).await
    }

    /// Schedules a review by an eligible reviewer who is not the maker.
    fn send_to_review(&mut self, maker: usize, engagement: usize, task: TaskId) {
        let pack = self.pack_of(engagement);
        let line = self.built.engagements[engagement].line;
        let candidates: Vec<usize> = (0..self.workers.len())
            .filter(|&w| w != maker)
            .filter(|&w| self.workers[w].designation >= pack.qa.min_reviewer)
            .filter(|&w| self.firm.workers[w].lines.contains(&line))
            .collect();
        let candidates = match candidates.is_empty() {
            false => candidates,
            true => (0..self.workers.len())
                .filter(|&w| w != maker && self.workers[w].designation >= pack.qa.min_reviewer)
                .collect(),
        };
        if candidates.is_empty() {
            return;
        }
        // The reviewer on shift soonest takes it.
        let reviewer = *candidates
            .iter()
            .min_by_key(|&&w| {
                self.workers[w]
                    .intervals
                    .iter()
                    .find(|(_, e)| *e > self.now)
                    .map_or(Timestamp::MAX, |(s, _)| (*s).max(self.now))
            })
            .expect("candidates are not empty");
        let expected = self
            .tasks
            .get(&task)
            .and_then(|t| pack.step(&t.step))
            .map_or(30, |s| s.expected_minutes);
        let wait = 10.0 + 80.0 * self.rng.unit();
        let minutes = wait + (f64::from(expected) * 0.25).clamp(5.0, 120.0);
        let at = advance(&self.workers[reviewer].intervals, self.now, minutes);
        self.schedule(at, Event::ReviewDone { reviewer, task });
    }

    async fn review_done(&mut self, reviewer: usize, task_id: TaskId) -> anyhow::Result<()> {
        let Some(task) = self.tasks.get(&task_id) else {
            return Ok(());
        };
        let (engagement, item, maker, rework) =
            (task.engagement, task.item, task.maker, task.rework);
        let pack = self.pack_of(engagement);
        let error_rate =
            maker.map_or(0.05, |m| self.workers[m].error_rate) / (1.0 + f64::from(rework) * 2.0);
        let fail = self.rng.chance(error_rate) && !pack.defects.is_empty();
        let defects = match fail {
            false => Vec::new(),
            true => {
                let n = 1 + self.rng.below(2);
                let mut out: Vec<Defect> = Vec::new();
                for _ in 0..n {
                    let d = &pack.defects[self.rng.below(pack.defects.len())];
                    if out.iter().any(|o| o.category == d.name) {
                        continue;
                    }
                    out.push(Defect {
                        category: d.name.clone(),
                        severity: d.severity,
                        field: None,
                        comment: d.title.clone(),
                    });
                }
                out
            }
        };
        let review = NewReview {
            id: ReviewId::from_uuid(self.id()),
            reviewer_id: self.workers[reviewer].id,
            verdict: match fail {
                true => Verdict::Fail,
                false => Verdict::Pass,
            },
            defects,
        };
        let tenant = self.tenant_of(engagement);
        let next_id = self.id();
        let recorded = tenant
            .record_review_then(task_id, &review, next_id, self.now)
            .await;
        let Some(outcome) = self.refused(recorded)? else {
            return Ok(());
        };
        self.stats.reviews += 1;
        self.workers[reviewer].reviews += 1;
        match outcome.task.state {
            TaskState::Done => self.follow(engagement, item).await?,
            TaskState::Rework => {
                self.stats.failed_reviews += 1;
                if let Some(t) = self.tasks.get_mut(&task_id) {
                    t.rework += 1;
                }
                if let Some(m) = maker {
                    let units = self.tasks.get(&task_id).map_or(1, |t| t.units);
                    self.workers[m].units += units;
                    self.workers[m].queue.push_front(task_id);
                    self.start_next(m).await?;
                }
            }
            _ => {
                // Back to the queue for another worker: the router takes it from here.
                self.stats.failed_reviews += 1;
                if let Some(t) = self.tasks.get_mut(&task_id) {
                    t.rework += 1;
                    t.maker = None;
                }
            }
        }
        Ok(())
    }

    /// After a step is done the store has moved the item on (the next step's task or job, or
    /// delivery): learns the new tasks, and counts a delivery, which the client may close.
    async fn follow(&mut self, engagement: usize, item: WorkItemId) -> anyhow::Result<()> {
        let tenant = self.tenant_of(engagement);
        for task in tenant.tasks_of(item).await? {
            self.know(&task);
        }
        let state = tenant.work_item(item).await?.state;
        let Some(sim_item) = self.items.get_mut(&item) else {
            return Ok(());
        };
        match (state, sim_item.delivered) {
            (WorkItemState::Delivered, false) => {
                sim_item.delivered = true;
                self.stats.delivered += 1;
                if self.rng.chance(CLOSE_SHARE) {
                    let hours = 12.0 + 48.0 * self.rng.unit();
                    self.schedule(
                        self.now + SignedDuration::from_secs((hours * 3_600.0) as i64),
                        Event::Close(item),
                    );
                }
            }
            (WorkItemState::InProgress, true) => sim_item.delivered = false,
            _ => {}
        }
        Ok(())
    }

    /// Registers a task the store opened on its own (a step after a job, a task the flow
    /// reopened), so the simulation can play it.
    fn know(&mut self, task: &karya_core::model::Task) {
        if self.tasks.contains_key(&task.id) {
            return;
        }
        let Some(engagement) = self.items.get(&task.work_item_id).map(|i| i.engagement) else {
            return;
        };
        self.stats.tasks += 1;
        self.tasks.insert(
            task.id,
            SimTask {
                item: task.work_item_id,
                engagement,
                step: task.step.clone(),
                maker: None,
                rework: 0,
                held: false,
                units: 1,
            },
        );
    }

    /// The processors' runner, as `karya serve` runs it: claims the waiting jobs and completes
    /// each after its step's expected time.
    async fn run_jobs(&mut self) -> anyhow::Result<()> {
        for _ in 0..JOBS_PER_PASS {
            let Some(job) = self.store.claim_job(PROCESSOR_RUNNER, self.now).await? else {
                break;
            };
            let Some(engagement) = self.items.get(&job.work_item_id).map(|i| i.engagement) else {
                continue;
            };
            let expected = self
                .pack_of(engagement)
                .step(&job.step)
                .map_or(1, |s| s.expected_minutes);
            let minutes = f64::from(expected) * (0.3 * self.rng.normal()).exp();
            let at = self.now + SignedDuration::from_secs((minutes * 60.0).max(20.0) as i64);
            self.schedule(
                at,
                Event::JobDone {
                    job: job.id,
                    processor: job.processor.clone(),
                    item: job.work_item_id,
                },
            );
        }
        Ok(())
    }

    async fn job_done(
        &mut self,
        job: uuid::Uuid,
        processor: &str,
        item: WorkItemId,
    ) -> anyhow::Result<()> {
        let Some(engagement) = self.items.get(&item).map(|i| i.engagement) else {
            return Ok(());
        };
        let output = json!({
            "processor": processor,
            "status": "completed",
            "confidence": (900 + self.rng.below(100)) as f64 / 1000.0,
        });
        let next_id = self.id();
        let completed = self
            .store
            .complete_job(
                job,
                PROCESSOR_RUNNER,
                &output.to_string(),
                next_id,
                self.now,
            )
            .await;
        if self.refused(completed)?.is_some() {
            self.stats.jobs += 1;
            self.follow(engagement, item).await?;
        }
        Ok(())
    }

    /// Team leads hand escalated tasks to a worker of the line who is on shift and has room
    /// (the lightest loaded), as a lead does from the board.
    async fn leads_take_escalations(&mut self) -> anyhow::Result<()> {
        let escalated = self
            .store
            .tasks_in_state(TaskState::Escalated, ESCALATIONS_PER_PASS)
            .await?;
        for task in escalated {
            self.know(&task);
            let Some(sim_task) = self.tasks.get(&task.id) else {
                continue;
            };
            let (engagement, excluded) = (sim_task.engagement, sim_task.maker);
            let line = self.built.engagements[engagement].line;
            let units = sim_task.units;
            let rank = self
                .pack_of(engagement)
                .step(&task.step)
                .and_then(|s| s.requirements.min_designation)
                .unwrap_or(Designation::Analyst);
            let pick = (0..self.workers.len())
                .filter(|&w| Some(w) != excluded && self.workers[w].on_shift)
                .filter(|&w| self.firm.workers[w].lines.contains(&line))
                .filter(|&w| self.workers[w].designation >= rank)
                .filter(|&w| self.workers[w].units + units <= self.firm.workers[w].capacity_units)
                .min_by_key(|&w| (self.workers[w].units, w));
            let Some(worker) = pick else { continue };
            let assignment = AssignmentId::from_uuid(self.id());
            let assigned = self
                .tenant_of(engagement)
                .assign_task(task.id, self.workers[worker].id, assignment, self.now)
                .await;
            if self.refused(assigned)?.is_none() {
                continue;
            }
            if let Some(t) = self.tasks.get_mut(&task.id) {
                t.maker = Some(worker);
            }
            self.workers[worker].units += units;
            self.workers[worker].queue.push_back(task.id);
            self.start_next(worker).await?;
        }
        Ok(())
    }

    /// One pass of the SLA monitor, as `SlaMonitor` makes it, at the simulated time.
    async fn sla_pass(&mut self) -> anyhow::Result<()> {
        let mut after = None;
        loop {
            let items = self.store.sla_watch(after, self.now).await?;
            for item in &items {
                let prediction =
                    karya_core::sla::predict(&item.calendar, &item.status, &item.queue, self.now)
                        .map_err(|err| anyhow::anyhow!("sla prediction failed: {err}"))?;
                for warning in warnings_due(&item.status, prediction.as_ref(), &item.warned) {
                    let milestone = match warning.milestone {
                        "response" => &item.status.response,
                        _ => &item.status.resolution,
                    };
                    let detail = json!({
                        "due_at": milestone.due_at.map(|t| t.to_string()),
                        "elapsed_s": milestone.elapsed.as_secs(),
                        "target_s": milestone.target.as_secs(),
                        "projected_finish": prediction.map(|p| p.projected_finish.to_string()),
                        "slack_s": prediction.map(|p| p.slack.as_secs()),
                        "items_ahead": item.queue.items_ahead,
                    });
                    if self
                        .store
                        .tenant(item.client_id)
                        .record_sla_warning(
                            item.work_item_id,
                            warning.milestone,
                            warning.reason,
                            &detail,
                            self.now,
                        )
                        .await?
                    {
                        self.stats.sla_warnings += 1;
                    }
                }
            }
            if (items.len() as i64) < karya_store::WATCH_PAGE_MAX {
                return Ok(());
            }
            after = items.last().map(|i| i.work_item_id);
        }
    }

    /// Halfway through, the client with the most monetary decisions caps them lower; the
    /// decisions of the last week above the cap are undone (their items reopen) or flagged,
    /// and the reopened items go back to the step that decided.
    async fn policy_change(&mut self) -> anyhow::Result<()> {
        let mut counts: HashMap<(usize, String), Vec<f64>> = HashMap::new();
        for (engagement, name, amount, ..) in &self.decided {
            counts
                .entry((*engagement, name.clone()))
                .or_default()
                .push(*amount);
        }
        let Some(((engagement, name), mut amounts)) = counts
            .into_iter()
            .max_by_key(|((e, n), v)| (v.len(), usize::MAX - e, n.clone()))
        else {
            return Ok(());
        };
        amounts.sort_by(f64::total_cmp);
        let cap = amounts[(amounts.len() * 7 / 10).min(amounts.len() - 1)].round();
        let built = &self.built.engagements[engagement];
        let Some(pack::Authority::Amount {
            field, currency, ..
        }) = built.pack.pack.decision(&name).map(|d| d.authority.clone())
        else {
            return Ok(());
        };
        let field = field.trim_start_matches('/').replace('/', ".");
        let client_name = self.firm.clients[built.client].name;
        let draft = PolicyDraft {
            key: format!("{name}.max_amount"),
            scope: Scope {
                layer: Layer::Engagement,
                client_id: Some(built.client_id),
                engagement_id: Some(built.id),
                team: None,
            },
            decision_type: Some(name.clone()),
            constraint: Constraint::AtMost {
                field,
                limit: cap as i64,
            },
            on_fail: OnFail::Block,
            default: false,
            reason: Some(format!(
                "{client_name} lowers the amount the firm may settle on its behalf to {} {:.0} \
                 after its quarterly loss review",
                currency.as_str(),
                cap
            )),
        };
        let report = self
            .store
            .publish_policy(draft, POLICY_LOOKBACK, self.now)
            .await?;
        self.cap = Some((engagement, name, cap));
        let mut reopened = Vec::new();
        for (_, resolution) in &report.resolutions {
            if let Resolution::Undone { id, reopen, .. } = resolution {
                self.stats.undone += 1;
                if *reopen {
                    if let Some((_, _, _, _, item, step)) = self.decided.iter().find(|d| d.3 == *id)
                    {
                        reopened.push((*item, step.clone()));
                    }
                }
            }
        }
        for (item, step) in reopened {
            let tenant = self.tenant_of(engagement);
            let current = tenant.work_item(item).await?;
            if current.state != WorkItemState::InProgress {
                continue;
            }
            let tasks = tenant.tasks_of(item).await?;
            if tasks
                .iter()
                .all(|t| matches!(t.state, TaskState::Done | TaskState::Cancelled))
            {
                self.open_task(engagement, item, &step).await?;
            }
        }
        Ok(())
    }

    /// The people the sign-ins go to: a lead of a busy line, a worker holding work now, the
    /// reviewer who reviewed most.
    fn cast(&self) -> Cast {
        let busiest = |filter: &dyn Fn(&SimWorker) -> bool| {
            (0..self.workers.len())
                .filter(|&w| filter(&self.workers[w]))
                .max_by_key(|&w| {
                    (
                        self.workers[w].on_shift,
                        self.workers[w].queue.len() + usize::from(self.workers[w].active.is_some()),
                        usize::MAX - w,
                    )
                })
                .unwrap_or(0)
        };
        let worker = busiest(&|w| w.designation == Designation::Analyst);
        let lead = busiest(&|w| w.designation == Designation::TeamLead);
        let reviewer = (0..self.workers.len())
            .filter(|&w| {
                matches!(
                    self.workers[w].designation,
                    Designation::SeniorAnalyst | Designation::TeamLead
                ) && w != lead
            })
            .max_by_key(|&w| (self.workers[w].reviews, usize::MAX - w))
            .unwrap_or(0);
        Cast {
            lead,
            worker,
            reviewer,
        }
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn work_advances_only_inside_shift_blocks() {
        let blocks = [
            (t("2026-03-02T04:00:00Z"), t("2026-03-02T13:00:00Z")),
            (t("2026-03-03T04:00:00Z"), t("2026-03-03T13:00:00Z")),
        ];
        // Inside one block.
        assert_eq!(
            advance(&blocks, t("2026-03-02T05:00:00Z"), 60.0),
            t("2026-03-02T06:00:00Z")
        );
        // Carried over the night into the next block.
        assert_eq!(
            advance(&blocks, t("2026-03-02T12:00:00Z"), 120.0),
            t("2026-03-03T05:00:00Z")
        );
        // Started off shift: begins when the next block does.
        assert_eq!(
            advance(&blocks, t("2026-03-02T20:00:00Z"), 30.0),
            t("2026-03-03T04:30:00Z")
        );
    }
}
