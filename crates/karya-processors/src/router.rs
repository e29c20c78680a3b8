//! The push-routing loop, run by the leader only.
//!
//! Each round has the three beats. *Load*: end the offers whose time ran out (their tasks are
//! ready again), then read a page of ready tasks (with their engagement's requirements and
//! workflow, and their SLA due time), the available workers with the capacity they hold, and
//! who refused which task. *Decide*: [`plan`], a pure function over the core's eligibility and
//! scoring rules, picks the best worker for each task in urgency order, or escalates a task
//! whose workflow reached its escalation step. *Apply*: each offer or escalation is written
//! with its explanation, conditional on the task still being ready and the worker still having
//! room, so a round that raced with *Get next* or another node loses cleanly.
//!
//! Before loading, the round does the roster's work: offers and not-yet-started assignments
//! that needed a qualification which has lapsed go back to routing, and (every half minute)
//! shifts set presence: available at a shift's start, on break per the pattern (work in hand
//! waits), offline at its end, when the work the worker holds is handed over to routing. Tasks carry their case: the worker who did the item's
//! earlier steps is preferred, and the makers of the work a checking step checks, and workers
//! who declined, are excluded.
//!
//! The loop keeps no routing state between rounds: a node that takes over leadership routes
//! from the store alone.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use karya_core::id::{OfferId, TaskId, WorkerId};
use karya_core::model::Priority;
use karya_core::routing::{
    eligibility, score, Candidate, Explanation, Ineligible, OpenTask, Path, Requirements,
    RoutingConfig, RoutingWorkflow, Rule, Score, Term, WorkerLoad,
};
use karya_core::workforce::{Presence, WorkerProfile};
use karya_store::{CaseQuery, NewOffer, OfferMade, Store, EXPIRE_BATCH_MAX, LAPSE_BATCH_MAX};

use crate::supervisor::{Step, Worker};

/// Pause between rounds when a round found nothing to do: how late a new task or a freed
/// worker may be noticed.
pub const ROUTER_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest pause between two applications of the shift patterns to presence: shifts start
/// and end on the minute.
pub const SHIFT_PRESENCE_INTERVAL: SignedDuration = SignedDuration::from_secs(30);
/// Expected handling of a task whose engagement sets no routing.
const DEFAULT_HANDLING: SignedDuration = SignedDuration::from_mins(30);

/// A ready task with the workflow that governs it.
#[derive(Debug, Clone)]
pub struct ReadyTask {
    pub task: OpenTask,
    pub workflow: Arc<RoutingWorkflow>,
}

/// An available worker as one round sees them; `load` grows as the round makes offers.
#[derive(Debug, Clone)]
pub struct PoolWorker {
    pub profile: WorkerProfile,
    pub load: WorkerLoad,
}

/// What the round decided for one task (tasks without a decision wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Offer {
        task_idx: usize,
        worker_id: WorkerId,
        expires_at: Timestamp,
        explanation: Explanation,
    },
    Escalate {
        task_idx: usize,
        explanation: Explanation,
    },
}

/// Decides one routing round. Tasks are taken in urgency order (latest start, i.e. due time
/// minus handling time, first; then priority; then age); each goes to the best-scoring
/// eligible worker who has not refused it, and that worker's load grows by the task's weight
/// before the next task is considered. A task whose workflow step (by time since it was
/// created) is the escalation step is escalated instead.
pub fn plan(
    tasks: &[ReadyTask],
    refusals: &HashSet<(TaskId, WorkerId)>,
    pool: &mut [PoolWorker],
    now: Timestamp,
    config: &RoutingConfig,
    roll: u16,
) -> Vec<Decision> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&idx| queue_key(&tasks[idx].task));
    let mut decisions = Vec::new();
    for task_idx in order {
        let ReadyTask { task, workflow } = &tasks[task_idx];
        let (step_idx, _) = workflow.step_at(now.duration_since(task.created_at));
        let step = &workflow.steps[step_idx];
        let mut explanation = Explanation {
            task_id: task.id,
            decided_at: now,
            path: Path::Offer,
            rule: Rule::NoEligibleWorker,
            step_idx,
            step_name: step.name.clone(),
            candidates: 0,
            eligible: 0,
            rejected: Vec::new(),
            winner: None,
            score: None,
            runner_up_total: None,
            review_required: false,
            truncated: false,
        };
        if step.escalate {
            explanation.rule = Rule::Escalated;
            decisions.push(Decision::Escalate {
                task_idx,
                explanation,
            });
            continue;
        }
        let mut best: Option<(usize, Score, bool)> = None;
        for (worker_idx, worker) in pool.iter().enumerate() {
            explanation.candidates += 1;
            if refusals.contains(&(task.id, worker.profile.id)) {
                reject(&mut explanation.rejected, Ineligible::DeclinedBefore);
                continue;
            }
            let candidate = Candidate {
                profile: &worker.profile,
                load: &worker.load,
                shift: worker.profile.shift.window_at(now),
            };
            let fit = match eligibility(candidate, task, step, now, config, roll) {
                Ok(fit) => fit,
                Err(reason) => {
                    reject(&mut explanation.rejected, reason);
                    continue;
                }
            };
            explanation.eligible += 1;
            let s = score(&worker.profile, &worker.load, task, step, fit, now);
            match &best {
                Some((_, b, _)) if s.total <= b.total => {
                    explanation.runner_up_total = Some(
                        explanation
                            .runner_up_total
                            .map_or(s.total, |r| r.max(s.total)),
                    );
                }
                _ => {
                    if let Some((_, b, _)) = &best {
                        explanation.runner_up_total = Some(
                            explanation
                                .runner_up_total
                                .map_or(b.total, |r| r.max(b.total)),
                        );
                    }
                    best = Some((worker_idx, s, fit.growth));
                }
            }
        }
        let Some((worker_idx, s, growth)) = best else {
            continue;
        };
        let worker = &mut pool[worker_idx];
        let req = &task.requirements;
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
        let affinity = s
            .terms
            .iter()
            .any(|(term, points)| *term == Term::Affinity && *points > 0);
        explanation.rule = match (growth, affinity) {
            (true, _) => Rule::Growth,
            (false, true) => Rule::Affinity,
            (false, false) => Rule::BestScore,
        };
        explanation.winner = Some(worker.profile.id);
        explanation.score = Some(s);
        explanation.review_required = growth;
        decisions.push(Decision::Offer {
            task_idx,
            worker_id: worker.profile.id,
            expires_at: now.saturating_add(config.offer_timeout).unwrap_or(now),
            explanation,
        });
    }
    decisions
}

fn reject(rejected: &mut Vec<(Ineligible, u32)>, reason: Ineligible) {
    match rejected.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, n)) => *n += 1,
        None => {
            rejected.push((reason, 1));
            rejected.sort();
        }
    }
}

/// Urgency order: latest start first, then higher priority, then older, then id.
fn queue_key(task: &OpenTask) -> (i64, usize, i64, TaskId) {
    let latest_start = task.due_at.map_or(i64::MAX, |due| {
        due.as_microsecond() - task.requirements.expected_handling.as_micros() as i64
    });
    let priority = Priority::ALL.len()
        - Priority::ALL
            .iter()
            .position(|p| *p == task.priority)
            .unwrap_or(0);
    (
        latest_start,
        priority,
        task.created_at.as_microsecond(),
        task.id,
    )
}

/// The routing loop.
pub struct RouterWorker {
    store: Store,
    leading: Arc<AtomicBool>,
    config: RoutingConfig,
    /// When shifts last set presence on this node (a throttle, not routing state).
    shifts_applied_at: Option<Timestamp>,
}

impl RouterWorker {
    pub fn new(store: Store, leading: Arc<AtomicBool>, config: RoutingConfig) -> RouterWorker {
        RouterWorker {
            store,
            leading,
            config,
            shifts_applied_at: None,
        }
    }

    async fn load(&self, now: Timestamp) -> anyhow::Result<(Vec<ReadyTask>, Vec<PoolWorker>)> {
        let routable = self.store.routable_tasks().await?;
        let standard = Arc::new(RoutingWorkflow::standard());
        let default_req = Arc::new(Requirements::any("default", 1, DEFAULT_HANDLING));
        let queries: Vec<CaseQuery> = routable
            .iter()
            .map(|r| CaseQuery {
                task_id: r.task.id,
                work_item_id: r.task.work_item_id,
                step: r.task.step.clone(),
            })
            .collect();
        let mut cases = self.store.task_cases(&queries).await?;
        let tasks = routable
            .into_iter()
            .map(|r| {
                let (requirements, workflow) = r
                    .routing
                    .unwrap_or_else(|| (default_req.clone(), standard.clone()));
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
        let mut pool = Vec::new();
        for worker_id in self.store.available_workers().await? {
            let routed = self.store.routed_worker(worker_id).await?;
            if routed.presence != Presence::Available {
                continue;
            }
            let karya_store::Holdings {
                units,
                channels: channel_units,
                ..
            } = self.store.worker_holdings(worker_id).await?;
            pool.push(PoolWorker {
                profile: routed.profile,
                load: WorkerLoad {
                    presence: routed.presence,
                    units_used: units.used,
                    channel_units,
                    last_assigned_at: None,
                    working_since: Some(routed.presence_since.min(now)),
                },
            });
        }
        Ok((tasks, pool))
    }

    /// The roster beats of a round: work that needed a lapsed qualification goes back to
    /// routing (every round), and shifts set presence (at most once per
    /// [`SHIFT_PRESENCE_INTERVAL`]).
    async fn roster(&mut self, now: Timestamp) -> anyhow::Result<usize> {
        let lapsed = self.store.withdraw_lapsed(now).await?;
        for l in &lapsed {
            tracing::info!(task_id = %l.task_id, worker_id = %l.worker_id, qualification = %l.qualification, "qualification lapsed: task back to routing");
        }
        let due = self
            .shifts_applied_at
            .is_none_or(|at| now.duration_since(at) >= SHIFT_PRESENCE_INTERVAL);
        if due {
            let changes = self.store.apply_shift_presence(now).await?;
            self.shifts_applied_at = Some(now);
            if !changes.is_empty() {
                tracing::info!(changes = changes.len(), "presence set by shifts");
            }
            for change in changes.iter().filter(|c| !c.handed_over.is_empty()) {
                tracing::info!(worker_id = %change.worker_id, tasks = change.handed_over.len(), "shift ended: work handed over to routing");
            }
        }
        Ok(lapsed.len())
    }
}

impl Worker for RouterWorker {
    fn name(&self) -> &'static str {
        "router"
    }

    fn idle_interval(&self) -> Duration {
        ROUTER_INTERVAL
    }

    async fn work(&mut self) -> anyhow::Result<Step> {
        if !self.leading.load(Ordering::SeqCst) {
            return Ok(Step::Idle);
        }
        let now = Timestamp::now();
        // Load.
        let lapsed = self.roster(now).await?;
        let expired = self.store.expire_offers(now).await?;
        let (tasks, mut pool) = self.load(now).await?;
        if tasks.is_empty() || pool.is_empty() {
            return Ok(
                match expired.len() as i64 >= EXPIRE_BATCH_MAX || lapsed as i64 >= LAPSE_BATCH_MAX {
                    true => Step::Busy,
                    false => Step::Idle,
                },
            );
        }
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.task.id).collect();
        let refusals: HashSet<(TaskId, WorkerId)> =
            self.store.refusals(&ids).await?.into_iter().collect();
        // Decide.
        let roll = (uuid::Uuid::now_v7().as_u128() % 1000) as u16;
        let decisions = plan(&tasks, &refusals, &mut pool, now, &self.config, roll);
        // Apply.
        let mut offered = 0usize;
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
                        id: OfferId::from_uuid(uuid::Uuid::now_v7()),
                        task_id: task.id,
                        worker_id,
                        expires_at,
                        explanation,
                        explanation_id: uuid::Uuid::now_v7(),
                    };
                    match self
                        .store
                        .tenant(task.client_id)
                        .make_offer(&offer, now)
                        .await?
                    {
                        OfferMade::Made(_) => offered += 1,
                        OfferMade::AtCapacity | OfferMade::Taken | OfferMade::Excluded => {}
                    }
                }
                Decision::Escalate {
                    task_idx,
                    explanation,
                } => {
                    let task = &tasks[task_idx].task;
                    let tenant = self.store.tenant(task.client_id);
                    if tenant
                        .escalate_task(task.id, &explanation, uuid::Uuid::now_v7(), now)
                        .await?
                    {
                        tracing::info!(task_id = %task.id, step = %explanation.step_name, "task escalated");
                    }
                }
            }
        }
        Ok(
            match offered > 0 || expired.len() as i64 >= EXPIRE_BATCH_MAX {
                true => Step::Busy,
                false => Step::Idle,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;
    use karya_core::id::{ClientId, EngagementId};
    use karya_core::model::Designation;
    use karya_core::routing::WorkflowStep;
    use karya_core::workforce::{Capacity, ShiftPattern};

    use super::*;

    fn t0() -> Timestamp {
        "2026-11-04T10:00:00Z".parse().unwrap()
    }

    fn uid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn worker(n: u128, units_max: u32) -> PoolWorker {
        PoolWorker {
            profile: WorkerProfile {
                id: WorkerId::from_uuid(uid(n)),
                site_id: None,
                designation: Designation::Analyst,
                languages: vec!["en".into()],
                qualifications: vec![],
                skills: vec![],
                growth_skills: vec![],
                shift: ShiftPattern::daily(
                    TimeZone::UTC,
                    jiff::civil::time(8, 0, 0, 0),
                    SignedDuration::from_hours(10),
                ),
                capacity: Capacity {
                    units_max,
                    channels: vec![],
                },
                excluded_clients: vec![],
                attributes: vec![],
            },
            load: WorkerLoad::new(Presence::Available),
        }
    }

    fn task(n: u128, created_min_ago: i64, due_in_min: Option<i64>) -> ReadyTask {
        ReadyTask {
            task: OpenTask {
                id: TaskId::from_uuid(uid(n)),
                client_id: ClientId::from_uuid(uid(900)),
                engagement_id: EngagementId::from_uuid(uid(901)),
                priority: Priority::Normal,
                created_at: t0() - SignedDuration::from_mins(created_min_ago),
                due_at: due_in_min.map(|m| t0() + SignedDuration::from_mins(m)),
                requirements: Arc::new(Requirements::any(
                    "research",
                    1,
                    SignedDuration::from_mins(30),
                )),
                preferred_worker: None,
                excluded_workers: vec![],
                attributes: vec![],
                step: String::new(),
                service_line: None,
            },
            workflow: Arc::new(RoutingWorkflow::standard()),
        }
    }

    /// One line per decision: `offer task->worker rule` or `escalate task step`.
    fn render(tasks: &[ReadyTask], decisions: &[Decision]) -> Vec<String> {
        let short = |u: uuid::Uuid| u.as_u128().to_string();
        decisions
            .iter()
            .map(|d| match d {
                Decision::Offer {
                    task_idx,
                    worker_id,
                    explanation,
                    ..
                } => format!(
                    "offer {}->{} {} eligible={}",
                    short(*tasks[*task_idx].task.id.as_uuid()),
                    short(*worker_id.as_uuid()),
                    explanation.rule.code(),
                    explanation.eligible
                ),
                Decision::Escalate {
                    task_idx,
                    explanation,
                } => format!(
                    "escalate {} at {}",
                    short(*tasks[*task_idx].task.id.as_uuid()),
                    explanation.step_name
                ),
            })
            .collect()
    }

    fn check(
        tasks: &[ReadyTask],
        refusals: &[(u128, u128)],
        pool: &mut [PoolWorker],
        expect: &[&str],
    ) {
        let refusals: HashSet<(TaskId, WorkerId)> = refusals
            .iter()
            .map(|(t, w)| (TaskId::from_uuid(uid(*t)), WorkerId::from_uuid(uid(*w))))
            .collect();
        let decisions = plan(tasks, &refusals, pool, t0(), &RoutingConfig::default(), 999);
        assert_eq!(render(tasks, &decisions), expect);
    }

    #[test]
    fn the_most_urgent_task_goes_first_and_capacity_is_respected() {
        // Worker 1 has room for one task; the task due soonest gets the idle worker first.
        let tasks = [
            task(10, 1, Some(600)),
            task(11, 1, Some(45)),
            task(12, 1, None),
        ];
        check(
            &tasks,
            &[],
            &mut [worker(1, 1), worker(2, 1)],
            &[
                "offer 11->1 best_score eligible=2",
                "offer 10->2 best_score eligible=1",
            ],
        );
    }

    #[test]
    fn load_spreads_offers_and_refusals_are_not_offered_again() {
        let tasks = [task(10, 3, None), task(11, 2, None), task(12, 1, None)];
        check(
            &tasks,
            &[(10, 1)],
            &mut [worker(1, 5), worker(2, 5)],
            &[
                "offer 10->2 best_score eligible=1",
                "offer 11->1 best_score eligible=2",
                "offer 12->1 best_score eligible=2",
            ],
        );
    }

    #[test]
    fn case_affinity_exclusions_and_channel_caps_hold_within_a_round() {
        let w = |n: u128| WorkerId::from_uuid(uid(n));
        let mut kept = task(10, 5, None);
        kept.task.preferred_worker = Some(w(2));
        let mut review = task(11, 4, None);
        review.task.step = "review".into();
        review.task.excluded_workers = vec![w(2)];
        let tasks = [kept, review, task(12, 3, None), task(13, 2, None)];
        let mut capped = worker(1, 5);
        capped.profile.capacity.channels = vec![karya_core::workforce::ChannelCap {
            channel: "research".into(),
            units_max: 2,
        }];
        check(
            &tasks,
            &[],
            &mut [capped, worker(2, 5)],
            &[
                // Worker 2 did the item's earlier steps: affinity.
                "offer 10->2 affinity eligible=2",
                // Worker 2 made what the review checks: excluded.
                "offer 11->1 best_score eligible=1",
                "offer 12->1 best_score eligible=2",
                // Worker 1's research channel is full at 2 units of 5.
                "offer 13->2 best_score eligible=1",
            ],
        );
    }

    #[test]
    fn the_workflow_escalates_after_its_timeouts() {
        // The standard workflow offers to leads only from 30 minutes and escalates from 60.
        let tasks = [task(10, 61, None), task(11, 59, None), task(12, 29, None)];
        check(
            &tasks,
            &[],
            &mut [worker(1, 5)],
            &[
                "escalate 10 at escalate",
                "offer 12->1 best_score eligible=1",
            ],
        );
    }

    #[test]
    fn a_task_waits_when_nobody_is_eligible_and_leads_get_it_at_their_step() {
        let mut lead = worker(3, 5);
        lead.profile.designation = Designation::TeamLead;
        let leads_only = Arc::new(RoutingWorkflow {
            steps: vec![WorkflowStep {
                name: "offer_to_leads".into(),
                drop_optional_skills: false,
                widen_sites: false,
                designation_min: Some(Designation::TeamLead),
                escalate: false,
                timeout: None,
            }],
        });
        let mut waiting = task(10, 1, None);
        waiting.workflow = leads_only.clone();
        check(&[waiting.clone()], &[], &mut [worker(1, 5)], &[]);
        check(
            &[waiting],
            &[],
            &mut [worker(1, 5), lead],
            &["offer 10->3 best_score eligible=1"],
        );
    }

    #[test]
    fn explanations_name_the_rejections_and_the_margin() {
        let tasks = [task(10, 1, Some(60))];
        let mut off_shift = worker(4, 5);
        off_shift.profile.shift = ShiftPattern::none(TimeZone::UTC);
        let mut busy = worker(2, 5);
        busy.load.units_used = 3;
        let mut pool = [worker(1, 5), busy, off_shift];
        let decisions = plan(
            &tasks,
            &HashSet::new(),
            &mut pool,
            t0(),
            &RoutingConfig::default(),
            999,
        );
        let Decision::Offer {
            worker_id,
            explanation,
            expires_at,
            ..
        } = &decisions[0]
        else {
            panic!("no offer")
        };
        assert_eq!(*worker_id, WorkerId::from_uuid(uid(1)));
        assert_eq!(*expires_at, t0() + SignedDuration::from_secs(60));
        assert_eq!((explanation.candidates, explanation.eligible), (3, 2));
        assert_eq!(explanation.rejected, vec![(Ineligible::OffShift, 1)]);
        let score = explanation.score.unwrap();
        // Due in 60 minutes with 30 minutes of handling: urgency from the SLA, not zero.
        let urgency = score
            .terms
            .iter()
            .find(|(t, _)| *t == Term::SlaUrgency)
            .unwrap()
            .1;
        assert_eq!(urgency, 500);
        assert!(explanation.runner_up_total.unwrap() < score.total);
        // The offer counts against the winner's capacity for the rest of the round.
        assert_eq!(pool[0].load.units_used, 1);
    }
}
