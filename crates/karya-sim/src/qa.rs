//! Quality assurance under simulation: workers with planted error rates do a stream of tasks;
//! a sampling policy decides which are reviewed; reviews and gold tasks feed the evidence back.
//!
//! The run is a discrete-event simulation. Tasks arrive (exponential gaps), wait in their
//! worker's queue, take an exponential handling time, and are submitted; a gold task is scored
//! at once, any other task is sampled by the policy and, if picked, its review completes after
//! an exponential delay. Evidence therefore arrives late, as it does on a real floor: a worker
//! keeps submitting while earlier work waits for review.
//!
//! Every policy replays the same task stream (who does which task, which tasks are wrong, which
//! are gold, and the uniform draw each sampling decision compares with), so differences between
//! policies come from the policies alone. Reviewers are assumed to find every defect in what
//! they review; the figures measure what sampling lets through, not reviewer skill.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use karya_core::qa::accuracy::{self, AccuracyEstimate, Evidence, Stratum};
use karya_core::qa::gold::{self, GoldPolicy, GoldVerdict};
use karya_core::qa::sampling::{self, SamplingPolicy, SamplingReason, SamplingState};

use crate::rng::Rng;

/// Most tasks one run simulates: enough for tens of thousands of tasks per worker, small enough
/// that a run's memory (one record per task) stays in megabytes.
pub const TASKS_MAX: u32 = 1_000_000;
/// Most workers in one run.
pub const WORKERS_MAX: usize = 1_000;

/// A worker whose true error rate is known to the simulator and hidden from the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedWorker {
    pub name: String,
    pub error_rate: f64,
}

/// One simulation's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct QaSimConfig {
    pub seed: u64,
    /// Tasks in the stream, gold tasks included.
    pub tasks: u32,
    pub workers: Vec<PlantedWorker>,
    /// Share of tasks that are gold.
    pub gold_share: f64,
    pub sampling: SamplingPolicy,
    pub gold: GoldPolicy,
    /// Confidence of the accuracy intervals reported.
    pub interval_confidence: f64,
    pub arrival_gap_mean_s: f64,
    pub handling_mean_s: f64,
    pub review_delay_mean_s: f64,
}

impl QaSimConfig {
    /// Three workers at 0.5%, 2% and 8% error on an engagement asking 95% accuracy at 90%
    /// confidence, 2% gold, a task every 2 minutes, 5 minutes' handling, reviews within the hour.
    pub fn standard(seed: u64, tasks: u32) -> QaSimConfig {
        QaSimConfig {
            seed,
            tasks,
            workers: [("steady", 0.005), ("average", 0.02), ("careless", 0.08)]
                .into_iter()
                .map(|(name, error_rate)| PlantedWorker {
                    name: name.into(),
                    error_rate,
                })
                .collect(),
            gold_share: 0.02,
            sampling: SamplingPolicy::default(),
            gold: GoldPolicy::default(),
            interval_confidence: 0.95,
            arrival_gap_mean_s: 120.0,
            handling_mean_s: 300.0,
            review_delay_mean_s: 3_600.0,
        }
    }
}

/// Which tasks get reviewed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// The core's adaptive sampling.
    Adaptive,
    /// A fixed share of every worker's tasks.
    Fixed { rate: f64 },
}

impl Policy {
    pub fn name(&self) -> String {
        match self {
            Policy::Adaptive => "adaptive".into(),
            Policy::Fixed { rate } => format!("fixed_{}pct", (rate * 100.0).round() as u32),
        }
    }
}

/// What one worker did and what the policy learned about them.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOutcome {
    pub name: String,
    pub planted_error_rate: f64,
    /// Client tasks (gold excluded).
    pub tasks: u64,
    pub reviews: u64,
    pub defects: u64,
    pub defects_caught: u64,
    pub gold_scored: u64,
    pub gold_failed: u64,
    /// Error-rate interval from reviews and gold: `[1 − accuracy high, 1 − accuracy low]`.
    pub accuracy: AccuracyEstimate,
    pub interval_covers_truth: bool,
    /// The worker's task count (gold included) when the evidence first said, with the
    /// engagement's confidence, that their error rate is above target.
    pub flagged_above_target_after: Option<u64>,
    /// The worker's task count when gold results would first have paused them on the step.
    pub gold_pause_after: Option<u64>,
}

/// One policy's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    pub name: String,
    pub reviews: u64,
    pub defects_caught: u64,
    pub defects_escaped: u64,
    /// The engagement's accuracy, stratified by worker.
    pub accuracy: AccuracyEstimate,
    /// The planted accuracy of the engagement, weighting workers by the tasks they did.
    pub true_accuracy: f64,
    /// Whether the engagement's interval and every worker's interval cover the planted rates.
    pub interval_covers_truth: bool,
    pub workers: Vec<WorkerOutcome>,
}

impl PolicyOutcome {
    pub fn caught_share(&self) -> f64 {
        let defects = self.defects_caught + self.defects_escaped;
        match defects {
            0 => 1.0,
            n => self.defects_caught as f64 / n as f64,
        }
    }
}

/// Adaptive against fixed policies on one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub seed: u64,
    pub tasks: u32,
    /// Adaptive, fixed 10%, fixed 20%, and fixed at the rate that catches the share of
    /// defects adaptive caught.
    pub policies: Vec<PolicyOutcome>,
}

/// Runs adaptive sampling and the fixed-rate policies it is measured against.
pub fn compare(config: &QaSimConfig) -> Comparison {
    let stream = stream(config);
    let adaptive = run_stream(config, &stream, Policy::Adaptive);
    // A fixed rate r catches, in expectation, the share r of defects: the fixed policy that
    // matches adaptive's catch rate reviews that share of everything.
    let matched = Policy::Fixed {
        rate: adaptive.caught_share(),
    };
    let mut matched_outcome = run_stream(config, &stream, matched);
    matched_outcome.name = "fixed_matched".into();
    let policies = vec![
        adaptive,
        run_stream(config, &stream, Policy::Fixed { rate: 0.10 }),
        run_stream(config, &stream, Policy::Fixed { rate: 0.20 }),
        matched_outcome,
    ];
    Comparison {
        seed: config.seed,
        tasks: config.tasks,
        policies,
    }
}

/// Runs one policy.
pub fn run(config: &QaSimConfig, policy: Policy) -> PolicyOutcome {
    run_stream(config, &stream(config), policy)
}

/// One task of the stream, drawn once and replayed under every policy.
#[derive(Debug, Clone, Copy)]
struct TaskSpec {
    arrival_s: f64,
    worker_idx: usize,
    gold: bool,
    wrong: bool,
    handling_s: f64,
    review_delay_s: f64,
    draw: f64,
}

fn stream(config: &QaSimConfig) -> Vec<TaskSpec> {
    assert!(config.tasks <= TASKS_MAX, "more than {TASKS_MAX} tasks");
    assert!(
        !config.workers.is_empty() && config.workers.len() <= WORKERS_MAX,
        "between 1 and {WORKERS_MAX} workers"
    );
    let mut rng = Rng::new(config.seed);
    let mut clock_s = 0.0;
    (0..config.tasks)
        .map(|_| {
            clock_s += rng.exponential(config.arrival_gap_mean_s);
            let worker_idx = rng.below(config.workers.len());
            TaskSpec {
                arrival_s: clock_s,
                worker_idx,
                gold: rng.chance(config.gold_share),
                wrong: rng.chance(config.workers[worker_idx].error_rate),
                handling_s: rng.exponential(config.handling_mean_s),
                review_delay_s: rng.exponential(config.review_delay_mean_s),
                draw: rng.unit(),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    // Order matters only between events at the same microsecond: finish work before new work.
    ReviewDone,
    Submitted,
    Arrived,
}

#[derive(Debug, Default)]
struct WorkerSim {
    queue: VecDeque<usize>,
    busy: bool,
    state: SamplingState,
    gold_results: Vec<bool>,
    submitted: u64,
    outcome_tasks: u64,
    reviews: u64,
    defects: u64,
    caught: u64,
    review_evidence: Evidence,
    gold_evidence: Evidence,
    flagged_after: Option<u64>,
    gold_pause_after: Option<u64>,
}

fn micros(seconds: f64) -> u64 {
    (seconds * 1e6) as u64
}

fn run_stream(config: &QaSimConfig, stream: &[TaskSpec], policy: Policy) -> PolicyOutcome {
    let mut workers: Vec<WorkerSim> = config
        .workers
        .iter()
        .map(|_| WorkerSim::default())
        .collect();
    // (time, kind, task index): a min-heap through Reverse.
    let mut events: BinaryHeap<Reverse<(u64, EventKind, usize)>> = stream
        .iter()
        .enumerate()
        .map(|(idx, task)| Reverse((micros(task.arrival_s), EventKind::Arrived, idx)))
        .collect();
    while let Some(Reverse((now_us, kind, task_idx))) = events.pop() {
        let task = stream[task_idx];
        let worker = &mut workers[task.worker_idx];
        match kind {
            EventKind::Arrived => {
                worker.queue.push_back(task_idx);
            }
            EventKind::Submitted => {
                worker.busy = false;
                worker.submitted += 1;
                if task.gold {
                    let correct = !task.wrong;
                    worker.state = worker.state.record(correct);
                    worker.gold_results.push(correct);
                    worker.gold_evidence = worker.gold_evidence.plus(evidence_of(correct));
                    let verdict = gold::verdict(&config.gold, &worker.gold_results);
                    if matches!(verdict, GoldVerdict::Pause { .. }) {
                        worker.gold_pause_after.get_or_insert(worker.submitted);
                    }
                } else {
                    worker.outcome_tasks += 1;
                    worker.defects += u64::from(task.wrong);
                    let review = match policy {
                        Policy::Adaptive => {
                            sampling::decide(&config.sampling, &worker.state, task.draw).review
                        }
                        Policy::Fixed { rate } => task.draw < rate,
                    };
                    if review {
                        worker.reviews += 1;
                        worker.caught += u64::from(task.wrong);
                        let done_us = now_us + micros(task.review_delay_s);
                        events.push(Reverse((done_us, EventKind::ReviewDone, task_idx)));
                    }
                }
                note_flag(config, worker);
            }
            EventKind::ReviewDone => {
                let correct = !task.wrong;
                worker.state = worker.state.record(correct);
                worker.review_evidence = worker.review_evidence.plus(evidence_of(correct));
                note_flag(config, worker);
            }
        }
        if !worker.busy {
            if let Some(next_idx) = worker.queue.pop_front() {
                worker.busy = true;
                let done_us = now_us + micros(stream[next_idx].handling_s);
                events.push(Reverse((done_us, EventKind::Submitted, next_idx)));
            }
        }
    }
    summarize(config, policy, workers)
}

fn evidence_of(correct: bool) -> Evidence {
    Evidence {
        checks: 1,
        correct: u64::from(correct),
    }
}

/// Records the first time the evidence puts the worker confidently above target.
fn note_flag(config: &QaSimConfig, worker: &mut WorkerSim) {
    if worker.flagged_after.is_some() {
        return;
    }
    let rate = sampling::rate(&config.sampling, &worker.state);
    if matches!(rate.reason, SamplingReason::AboveTarget { .. }) {
        worker.flagged_after = Some(worker.submitted);
    }
}

fn summarize(config: &QaSimConfig, policy: Policy, workers: Vec<WorkerSim>) -> PolicyOutcome {
    let mut outcomes = Vec::with_capacity(workers.len());
    let mut strata = Vec::with_capacity(workers.len());
    for (planted, worker) in config.workers.iter().zip(workers) {
        let evidence = worker.review_evidence.plus(worker.gold_evidence);
        let estimate = accuracy::estimate(evidence, config.interval_confidence);
        strata.push(Stratum {
            tasks: worker.outcome_tasks,
            evidence,
        });
        outcomes.push(WorkerOutcome {
            name: planted.name.clone(),
            planted_error_rate: planted.error_rate,
            tasks: worker.outcome_tasks,
            reviews: worker.reviews,
            defects: worker.defects,
            defects_caught: worker.caught,
            gold_scored: worker.gold_evidence.checks,
            gold_failed: worker.gold_evidence.checks - worker.gold_evidence.correct,
            interval_covers_truth: estimate.interval.contains(1.0 - planted.error_rate),
            accuracy: estimate,
            flagged_above_target_after: worker.flagged_after,
            gold_pause_after: worker.gold_pause_after,
        });
    }
    let engagement = accuracy::stratified(&strata, config.interval_confidence);
    let tasks: u64 = outcomes.iter().map(|w| w.tasks).sum();
    let true_accuracy = match tasks {
        0 => 1.0,
        n => {
            outcomes
                .iter()
                .map(|w| w.tasks as f64 * (1.0 - w.planted_error_rate))
                .sum::<f64>()
                / n as f64
        }
    };
    let defects: u64 = outcomes.iter().map(|w| w.defects).sum();
    let caught: u64 = outcomes.iter().map(|w| w.defects_caught).sum();
    PolicyOutcome {
        name: policy.name(),
        reviews: outcomes.iter().map(|w| w.reviews).sum(),
        defects_caught: caught,
        defects_escaped: defects - caught,
        interval_covers_truth: engagement.interval.contains(true_accuracy)
            && outcomes.iter().all(|w| w.interval_covers_truth),
        accuracy: engagement,
        true_accuracy,
        workers: outcomes,
    }
}
