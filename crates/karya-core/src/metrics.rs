//! Measurable performance criteria over any set of work items and tasks: on-time %, response
//! and turnaround (mean, p50, p90), backlog and its ageing, average handling time, utilisation,
//! first-pass yield and accuracy.
//!
//! [`performance`] takes plain facts about one set and returns numbers. [`breakdown`] splits a
//! period's facts into groups along one [`Dimension`] (service line, site, team, worker) and
//! measures each group; which facts make up the period (a client, the whole firm) is the
//! caller's choice. [`rostered`] measures a worker's scheduled time from their shift pattern,
//! the denominator of utilisation.
//!
//! Shares are basis points (1% = 100 bp); `None` means there was nothing to measure, which is
//! not the same as 0%.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::id::{SiteId, WorkerId};
use crate::lifecycle::TaskState;
use crate::model::Designation;
use crate::qa::accuracy::{self, AccuracyEstimate, Evidence};
use crate::service_line::ServiceLine;
use crate::workforce::{ShiftPattern, SHIFT_LENGTH_MAX};

/// Upper bounds of the backlog ageing buckets, in calendar hours; the last bucket is open.
pub const AGEING_BUCKETS_H: [i64; 4] = [24, 72, 168, 720];

/// What is known about one work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemFacts {
    pub received_at: Timestamp,
    /// Still open (not delivered, closed or cancelled).
    pub open: bool,
    /// Business time to the first response, once responded.
    pub response: Option<SignedDuration>,
    /// Business time to delivery, once delivered.
    pub turnaround: Option<SignedDuration>,
    /// Past its resolution target (delivered late, or open and overdue).
    pub breached: bool,
}

/// What is known about one task (or one worker's part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    /// Held time, from [`crate::billing::task_time`]: what the task took.
    pub worked: SignedDuration,
    /// The part of the held time inside the period measured: what utilisation counts.
    pub handled: SignedDuration,
    /// Submitted at least once.
    pub submitted: bool,
    /// Sampled for review at least once.
    pub reviewed: bool,
    /// Passed its first review.
    pub passed_first_review: bool,
}

/// Mean and percentiles of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: u32,
    pub mean: SignedDuration,
    pub p50: SignedDuration,
    pub p90: SignedDuration,
}

/// The criteria over one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    pub delivered: u32,
    pub delivered_on_time: u32,
    pub on_time_bp: Option<u32>,
    pub response: Option<Summary>,
    pub turnaround: Option<Summary>,
    pub backlog: u32,
    pub backlog_breached: u32,
    /// Open items per [`AGEING_BUCKETS_H`] bucket, plus one for older items.
    pub ageing: [u32; AGEING_BUCKETS_H.len() + 1],
    /// Average handling time per submitted task.
    pub aht: Option<SignedDuration>,
    /// Handled time over rostered time.
    pub utilisation_bp: Option<u32>,
    /// Reviewed tasks that passed their first review.
    pub first_pass_yield_bp: Option<u32>,
}

/// Mean, p50 and p90 (nearest rank) of `durations`; `None` when empty.
pub fn summarize(durations: &[SignedDuration]) -> Option<Summary> {
    if durations.is_empty() {
        return None;
    }
    let mut sorted = durations.to_vec();
    sorted.sort();
    let n = sorted.len();
    let total: i128 = sorted.iter().map(|d| d.as_nanos()).sum();
    let mean = SignedDuration::from_nanos((total / n as i128) as i64);
    let rank = |pct: usize| sorted[(pct * n).div_ceil(100).max(1) - 1];
    Some(Summary {
        count: n as u32,
        mean,
        p50: rank(50),
        p90: rank(90),
    })
}

/// The criteria over `items` and `tasks` as of `now`; `available` is the working time of the
/// workers concerned over the period (for utilisation).
pub fn performance(
    items: &[ItemFacts],
    tasks: &[TaskFacts],
    available: SignedDuration,
    now: Timestamp,
) -> Performance {
    let responses: Vec<SignedDuration> = items.iter().filter_map(|i| i.response).collect();
    let turnarounds: Vec<SignedDuration> = items.iter().filter_map(|i| i.turnaround).collect();
    let delivered = turnarounds.len() as u32;
    let delivered_on_time = items
        .iter()
        .filter(|i| i.turnaround.is_some() && !i.breached)
        .count() as u32;
    let mut ageing = [0u32; AGEING_BUCKETS_H.len() + 1];
    let mut backlog = 0;
    let mut backlog_breached = 0;
    for item in items.iter().filter(|i| i.open) {
        backlog += 1;
        backlog_breached += u32::from(item.breached);
        let age_h = now.duration_since(item.received_at).as_hours();
        let bucket = AGEING_BUCKETS_H
            .iter()
            .position(|bound| age_h < *bound)
            .unwrap_or(AGEING_BUCKETS_H.len());
        ageing[bucket] += 1;
    }
    let submitted: Vec<&TaskFacts> = tasks.iter().filter(|t| t.submitted).collect();
    let handled_total = tasks
        .iter()
        .fold(SignedDuration::ZERO, |sum, t| sum + t.handled);
    let aht = (!submitted.is_empty()).then(|| {
        let total: i128 = submitted.iter().map(|t| t.worked.as_nanos()).sum();
        SignedDuration::from_nanos((total / submitted.len() as i128) as i64)
    });
    let reviewed = tasks.iter().filter(|t| t.reviewed).count() as u32;
    let passed = tasks.iter().filter(|t| t.passed_first_review).count() as u32;
    Performance {
        delivered,
        delivered_on_time,
        on_time_bp: ratio_bp(delivered_on_time, delivered),
        response: summarize(&responses),
        turnaround: summarize(&turnarounds),
        backlog,
        backlog_breached,
        ageing,
        aht,
        utilisation_bp: (available > SignedDuration::ZERO).then(|| {
            (handled_total.as_secs().max(0) as i128 * 10_000 / available.as_secs().max(1) as i128)
                as u32
        }),
        first_pass_yield_bp: ratio_bp(passed, reviewed),
    }
}

/// `part / whole` in basis points, rounded down; `None` for an empty whole.
pub fn ratio_bp(part: u32, whole: u32) -> Option<u32> {
    (whole > 0).then(|| (u64::from(part) * 10_000 / u64::from(whole)) as u32)
}

/// Most days [`rostered`] walks: a year and a month. A utilisation report over a longer span is
/// a mistake, and the bound keeps one request from walking a worker's schedule for decades.
pub const ROSTER_DAYS_MAX: i64 = 400;

/// Scheduled working time of a shift pattern in `[from, to)`: its blocks in the pattern's time
/// zone (a dated exception replaces the weekday's blocks), overlapping blocks counted once,
/// minus leave. A span longer than [`ROSTER_DAYS_MAX`] days is measured over its first
/// [`ROSTER_DAYS_MAX`] days.
pub fn rostered(pattern: &ShiftPattern, from: Timestamp, to: Timestamp) -> SignedDuration {
    if to <= from {
        return SignedDuration::ZERO;
    }
    let zone = &pattern.time_zone;
    let Ok(first) = zone.to_datetime(from).date().yesterday() else {
        return SignedDuration::ZERO;
    };
    let last = zone.to_datetime(to).date();
    let mut shifts: Vec<(Timestamp, Timestamp)> = Vec::new();
    let mut date = first;
    for _ in 0..ROSTER_DAYS_MAX {
        if date > last {
            break;
        }
        let on_date: Vec<(jiff::civil::Time, SignedDuration)> =
            if pattern.exceptions.iter().any(|e| e.date == date) {
                pattern
                    .exceptions
                    .iter()
                    .filter(|e| e.date == date)
                    .map(|e| (e.start, e.length))
                    .collect()
            } else {
                pattern
                    .weekly
                    .iter()
                    .filter(|b| b.weekday == date.weekday())
                    .map(|b| (b.start, b.length))
                    .collect()
            };
        for (start, length) in on_date {
            let Ok(start) = zone
                .to_ambiguous_timestamp(date.to_datetime(start))
                .compatible()
            else {
                continue;
            };
            let Ok(end) = start.checked_add(length.clamp(SignedDuration::ZERO, SHIFT_LENGTH_MAX))
            else {
                continue;
            };
            let (start, end) = (start.max(from), end.min(to));
            if start < end {
                shifts.push((start, end));
            }
        }
        let Ok(next) = date.tomorrow() else { break };
        date = next;
    }
    let shifts = merged(shifts);
    let leave = merged(
        pattern
            .leave
            .iter()
            .filter(|l| l.from < l.until)
            .map(|l| (l.from, l.until))
            .collect(),
    );
    let mut total = SignedDuration::ZERO;
    for &(start, end) in &shifts {
        total += end.duration_since(start);
        for &(off_from, off_until) in &leave {
            let (a, b) = (start.max(off_from), end.min(off_until));
            if a < b {
                total -= b.duration_since(a);
            }
        }
    }
    total
}

/// Intervals sorted and merged where they overlap or touch.
fn merged(mut intervals: Vec<(Timestamp, Timestamp)>) -> Vec<(Timestamp, Timestamp)> {
    intervals.sort();
    let mut out: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// One worker's part of one task: the task's state history seen through the worker's
/// assignment `[assigned_at, released_at)` (still held when `released_at` is `None`).
#[derive(Debug, Clone, Copy)]
pub struct AssignmentWindow {
    pub assigned_at: Timestamp,
    pub released_at: Option<Timestamp>,
}

/// The facts of one assignment of a task, for the period `[from, to)` as of `now`: held time
/// ([`crate::billing::task_time`]'s rule: assigned, in progress or in rework) during the
/// assignment, the part of it inside the period, and the submissions and reviews it saw.
pub fn assignment_facts(
    history: &[(Timestamp, TaskState)],
    window: AssignmentWindow,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> TaskFacts {
    let until = window.released_at.unwrap_or(now).min(now);
    let worked = held_within(history, window.assigned_at, until, now);
    let handled = held_within(history, window.assigned_at.max(from), until.min(to), now);
    let seen: Vec<TaskState> = history
        .iter()
        .filter(|(at, _)| window.assigned_at <= *at && *at <= until)
        .map(|(_, state)| *state)
        .collect();
    let first_review = seen.iter().position(|s| *s == TaskState::InReview);
    TaskFacts {
        worked,
        handled,
        submitted: seen.contains(&TaskState::Submitted),
        reviewed: first_review.is_some(),
        passed_first_review: first_review
            .and_then(|idx| seen.get(idx + 1))
            .is_some_and(|s| *s == TaskState::Accepted),
    }
}

/// Held time of a task's history inside `[from, to)`; a held state without a successor runs
/// until `now`.
fn held_within(
    history: &[(Timestamp, TaskState)],
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> SignedDuration {
    let mut total = SignedDuration::ZERO;
    for (idx, (since, state)) in history.iter().enumerate() {
        if !matches!(
            state,
            TaskState::Assigned | TaskState::InProgress | TaskState::Rework
        ) {
            continue;
        }
        let until = history.get(idx + 1).map_or(now, |(at, _)| *at);
        let (a, b) = ((*since).max(from), until.min(to));
        if a < b {
            total += b.duration_since(a);
        }
    }
    total
}

/// Along what a period's figures are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    ServiceLine,
    Site,
    Team,
    Worker,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::ServiceLine,
        Dimension::Site,
        Dimension::Team,
        Dimension::Worker,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Dimension::ServiceLine => "service_line",
            Dimension::Site => "site",
            Dimension::Team => "team",
            Dimension::Worker => "worker",
        }
    }

    pub fn parse(text: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.code() == text)
    }
}

/// One group of a breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    ServiceLine(ServiceLine),
    /// The workers of a site; `None` for workers attached to no site.
    Site(Option<SiteId>),
    /// A team: the workers of one designation at one site. The firm has no team roster of its
    /// own; a floor of analysts (or of senior analysts) at a site is how teams are formed.
    Team {
        site_id: Option<SiteId>,
        designation: Designation,
    },
    Worker(WorkerId),
    /// Work no worker has held yet (items waiting in queues), in a breakdown by site, team or
    /// worker.
    Unassigned,
}

/// A worker as a breakdown groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerFacts {
    pub id: WorkerId,
    pub site_id: Option<SiteId>,
    pub designation: Designation,
    /// Scheduled time in the period, from [`rostered`]; zero when not known.
    pub rostered: SignedDuration,
}

/// A work item of the period, with the workers who held any of its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub service_line: ServiceLine,
    pub facts: ItemFacts,
    pub workers: Vec<WorkerId>,
}

/// One worker's part of one task (or a task nobody held), from [`assignment_facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRecord {
    pub service_line: ServiceLine,
    pub worker_id: Option<WorkerId>,
    pub facts: TaskFacts,
}

/// Quality checks of one worker's work on one service line in the period (reviews, gold
/// tasks): accuracy evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckRecord {
    pub service_line: ServiceLine,
    pub worker_id: WorkerId,
    pub evidence: Evidence,
}

/// Everything a breakdown of one period is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodFacts {
    pub items: Vec<ItemRecord>,
    pub tasks: Vec<TaskRecord>,
    pub checks: Vec<CheckRecord>,
    /// Every worker the records name, and in a breakdown by site, team or worker every worker
    /// whose utilisation counts (an idle worker is a group of zero handled time).
    pub workers: Vec<WorkerFacts>,
}

/// The criteria of one group, or of a whole period.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub performance: Performance,
    /// Pooled accuracy of the group's checked work; `None` without any check.
    pub accuracy: Option<AccuracyEstimate>,
    /// Workers in the group.
    pub workers: u32,
}

/// A period split along one dimension, with the figures of the whole period.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub by: Dimension,
    /// In key order.
    pub groups: Vec<(GroupKey, Figures)>,
    pub total: Figures,
}

#[derive(Default)]
struct GroupFacts {
    items: Vec<ItemFacts>,
    tasks: Vec<TaskFacts>,
    evidence: Evidence,
    rostered: SignedDuration,
    workers: u32,
}

impl GroupFacts {
    fn measure(self, confidence: f64, with_utilisation: bool, now: Timestamp) -> Figures {
        let available = match with_utilisation {
            true => self.rostered,
            false => SignedDuration::ZERO,
        };
        Figures {
            performance: performance(&self.items, &self.tasks, available, now),
            accuracy: (self.evidence.checks > 0)
                .then(|| accuracy::estimate(self.evidence, confidence)),
            workers: self.workers,
        }
    }
}

/// The period's figures per group along `by`, as of `now`; accuracy intervals at
/// `confidence`. An item counts once in each group of the workers who held its tasks (an item
/// two sites worked on is in both), and in [`GroupKey::Unassigned`] when nobody held any. A
/// task counts in its worker's group; utilisation is the group's handled time over its
/// workers' rostered time, and has no meaning per service line (workers serve several).
pub fn breakdown(by: Dimension, facts: &PeriodFacts, confidence: f64, now: Timestamp) -> Breakdown {
    let workers: BTreeMap<WorkerId, &WorkerFacts> =
        facts.workers.iter().map(|w| (w.id, w)).collect();
    let key_of = |worker_id: WorkerId| -> GroupKey {
        let worker = workers.get(&worker_id);
        debug_assert!(
            worker.is_some(),
            "worker {worker_id} missing from the facts"
        );
        match by {
            Dimension::ServiceLine | Dimension::Worker => GroupKey::Worker(worker_id),
            Dimension::Site => GroupKey::Site(worker.and_then(|w| w.site_id)),
            Dimension::Team => GroupKey::Team {
                site_id: worker.and_then(|w| w.site_id),
                designation: worker.map_or(Designation::Analyst, |w| w.designation),
            },
        }
    };
    let mut groups: BTreeMap<GroupKey, GroupFacts> = BTreeMap::new();
    let mut total = GroupFacts::default();
    for worker in &facts.workers {
        total.rostered += worker.rostered;
        total.workers += 1;
        if by != Dimension::ServiceLine {
            let group = groups.entry(key_of(worker.id)).or_default();
            group.rostered += worker.rostered;
            group.workers += 1;
        }
    }
    for item in &facts.items {
        total.items.push(item.facts);
        let mut keys: Vec<GroupKey> = match by {
            Dimension::ServiceLine => vec![GroupKey::ServiceLine(item.service_line)],
            _ => item.workers.iter().map(|w| key_of(*w)).collect(),
        };
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            keys.push(GroupKey::Unassigned);
        }
        for key in keys {
            groups.entry(key).or_default().items.push(item.facts);
        }
    }
    for task in &facts.tasks {
        total.tasks.push(task.facts);
        let key = match (by, task.worker_id) {
            (Dimension::ServiceLine, _) => GroupKey::ServiceLine(task.service_line),
            (_, Some(worker_id)) => key_of(worker_id),
            (_, None) => GroupKey::Unassigned,
        };
        groups.entry(key).or_default().tasks.push(task.facts);
    }
    for check in &facts.checks {
        total.evidence = total.evidence.plus(check.evidence);
        let key = match by {
            Dimension::ServiceLine => GroupKey::ServiceLine(check.service_line),
            _ => key_of(check.worker_id),
        };
        let group = groups.entry(key).or_default();
        group.evidence = group.evidence.plus(check.evidence);
    }
    let with_utilisation = by != Dimension::ServiceLine;
    Breakdown {
        by,
        groups: groups
            .into_iter()
            .map(|(key, group)| (key, group.measure(confidence, with_utilisation, now)))
            .collect(),
        total: total.measure(confidence, true, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mins(m: i64) -> SignedDuration {
        SignedDuration::from_mins(m)
    }

    fn check_summary(minutes: &[i64], expect: Option<(u32, i64, i64, i64)>) {
        let durations: Vec<SignedDuration> = minutes.iter().map(|m| mins(*m)).collect();
        let got = summarize(&durations)
            .map(|s| (s.count, s.mean.as_mins(), s.p50.as_mins(), s.p90.as_mins()));
        assert_eq!(got, expect, "{minutes:?}");
    }

    #[test]
    fn summaries_use_nearest_rank() {
        check_summary(&[], None);
        check_summary(&[30], Some((1, 30, 30, 30)));
        check_summary(&[10, 20, 30, 40], Some((4, 25, 20, 40)));
        check_summary(
            &[100, 90, 80, 70, 60, 50, 40, 30, 20, 10],
            Some((10, 55, 50, 90)),
        );
    }

    #[test]
    fn performance_over_a_set() {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let ago = |h: i64| now - SignedDuration::from_hours(h);
        let delivered = |turnaround_m: i64, breached: bool| ItemFacts {
            received_at: ago(500),
            open: false,
            response: Some(mins(15)),
            turnaround: Some(mins(turnaround_m)),
            breached,
        };
        let open = |age_h: i64, breached: bool| ItemFacts {
            received_at: ago(age_h),
            open: true,
            response: None,
            turnaround: None,
            breached,
        };
        let items = [
            delivered(300, false),
            delivered(600, false),
            delivered(900, true),
            delivered(480, false),
            open(2, false),
            open(30, false),
            open(100, true),
            open(1000, true),
        ];
        let task = |worked_m: i64, reviewed: bool, passed: bool| TaskFacts {
            worked: mins(worked_m),
            handled: mins(worked_m),
            submitted: true,
            reviewed,
            passed_first_review: passed,
        };
        let tasks = [
            task(60, true, true),
            task(90, true, false),
            task(30, false, false),
            TaskFacts {
                worked: mins(60),
                handled: mins(60),
                submitted: false,
                reviewed: false,
                passed_first_review: false,
            },
        ];
        let perf = performance(&items, &tasks, SignedDuration::from_hours(8), now);
        assert_eq!(perf.delivered, 4);
        assert_eq!(perf.on_time_bp, Some(7_500));
        assert_eq!(perf.turnaround.unwrap().p50, mins(480));
        assert_eq!(perf.turnaround.unwrap().mean, mins(570));
        assert_eq!(perf.backlog, 4);
        assert_eq!(perf.backlog_breached, 2);
        assert_eq!(perf.ageing, [1, 1, 1, 0, 1]);
        assert_eq!(perf.aht, Some(mins(60)));
        // 240 worked minutes of 480 available.
        assert_eq!(perf.utilisation_bp, Some(5_000));
        assert_eq!(perf.first_pass_yield_bp, Some(5_000));
        let empty = performance(&[], &[], SignedDuration::ZERO, now);
        assert_eq!(
            (empty.on_time_bp, empty.aht, empty.utilisation_bp),
            (None, None, None)
        );
    }

    mod roster {
        use jiff::civil::{date, time, Weekday};
        use jiff::tz::TimeZone;
        use proptest::prelude::*;

        use super::super::*;
        use crate::workforce::{Leave, ShiftBlock, ShiftException};

        fn ts(text: &str) -> Timestamp {
            text.parse().unwrap()
        }

        fn hours(h: i64) -> SignedDuration {
            SignedDuration::from_hours(h)
        }

        /// Mon-Fri from `start` for `length_h` hours in `zone`.
        fn weekdays(zone: &str, start: (i8, i8), length_h: i64) -> ShiftPattern {
            let weekly = [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ]
            .into_iter()
            .map(|weekday| ShiftBlock {
                weekday,
                start: time(start.0, start.1, 0, 0),
                length: hours(length_h),
            })
            .collect();
            ShiftPattern {
                weekly,
                ..ShiftPattern::none(TimeZone::get(zone).unwrap())
            }
        }

        fn check(pattern: &ShiftPattern, from: &str, to: &str, expect_h: f64) {
            let got = rostered(pattern, ts(from), ts(to));
            assert_eq!(
                got,
                SignedDuration::from_secs_f64(expect_h * 3600.0),
                "rostered {from} .. {to}"
            );
        }

        #[test]
        fn rosters_in_the_site_zone_minus_exceptions_and_leave() {
            // Kolkata 09:00-18:00 IST is 03:30-12:30Z; the week of Mon 2 November 2026.
            let mut pattern = weekdays("Asia/Kolkata", (9, 0), 9);
            check(
                &pattern,
                "2026-11-02T00:00:00Z",
                "2026-11-09T00:00:00Z",
                45.0,
            );
            // A period that cuts Monday's shift at 08:30Z counts five hours of it.
            check(
                &pattern,
                "2026-11-02T00:00:00Z",
                "2026-11-02T08:30:00Z",
                5.0,
            );
            check(
                &pattern,
                "2026-11-09T00:00:00Z",
                "2026-11-02T00:00:00Z",
                0.0,
            );
            // Wednesday off by exception, Saturday a half day by exception.
            pattern.exceptions.push(ShiftException {
                date: date(2026, 11, 4),
                start: time(0, 0, 0, 0),
                length: SignedDuration::ZERO,
            });
            pattern.exceptions.push(ShiftException {
                date: date(2026, 11, 7),
                start: time(9, 0, 0, 0),
                length: hours(4),
            });
            check(
                &pattern,
                "2026-11-02T00:00:00Z",
                "2026-11-09T00:00:00Z",
                36.0 + 4.0,
            );
            // Leave from Thursday 10:00Z to Friday's end removes 2.5h and 9h; overlapping
            // leave counts once.
            pattern.leave.push(Leave {
                from: ts("2026-11-05T10:00:00Z"),
                until: ts("2026-11-07T00:00:00Z"),
            });
            pattern.leave.push(Leave {
                from: ts("2026-11-06T00:00:00Z"),
                until: ts("2026-11-06T12:00:00Z"),
            });
            check(
                &pattern,
                "2026-11-02T00:00:00Z",
                "2026-11-09T00:00:00Z",
                40.0 - 11.5,
            );
        }

        #[test]
        fn night_shifts_and_overlaps_count_real_time_once() {
            // A Berlin night shift of 8 hours from 22:00 on weekdays: the one starting
            // Friday 23 October runs to Saturday 06:00 CEST. Periods cut it at midnight UTC.
            let pattern = weekdays("Europe/Berlin", (22, 0), 8);
            check(
                &pattern,
                "2026-10-24T00:00:00Z",
                "2026-10-25T00:00:00Z",
                4.0,
            );
            // No shift starts on Sunday; Monday's starts at 22:00 CET (21:00Z, the clocks went
            // back on Sunday), three hours before the period ends.
            check(
                &pattern,
                "2026-10-25T00:00:00Z",
                "2026-10-27T00:00:00Z",
                3.0,
            );
            // Two overlapping blocks on one day count once.
            let mut pattern = weekdays("UTC", (9, 0), 4);
            pattern.weekly.push(ShiftBlock {
                weekday: Weekday::Monday,
                start: time(11, 0, 0, 0),
                length: hours(4),
            });
            check(
                &pattern,
                "2026-11-02T00:00:00Z",
                "2026-11-03T00:00:00Z",
                6.0,
            );
        }

        fn any_pattern() -> impl Strategy<Value = ShiftPattern> {
            let zones = prop::sample::select(vec!["Asia/Kolkata", "Europe/Berlin", "UTC"]);
            let block = (1i8..=7, 0i8..24, 1i64..=12).prop_map(|(day, h, len)| ShiftBlock {
                weekday: Weekday::from_monday_one_offset(day).unwrap(),
                start: time(h, 0, 0, 0),
                length: hours(len),
            });
            let leave = (0i64..60 * 24, 1i64..72).prop_map(|(start_h, len_h)| {
                let from = ts("2026-03-01T00:00:00Z") + hours(start_h);
                Leave {
                    from,
                    until: from + hours(len_h),
                }
            });
            (
                zones,
                prop::collection::vec(block, 0..10),
                prop::collection::vec(leave, 0..4),
            )
                .prop_map(|(zone, weekly, leave)| ShiftPattern {
                    weekly,
                    leave,
                    ..ShiftPattern::none(TimeZone::get(zone).unwrap())
                })
        }

        proptest! {
            /// Rostered time is additive over adjacent periods and never more than the period.
            #[test]
            fn rostered_time_is_additive_and_bounded(
                pattern in any_pattern(),
                a_h in 0i64..60 * 24,
                ab_h in 0i64..400,
                bc_h in 0i64..400,
            ) {
                let a = ts("2026-03-01T00:00:00Z") + hours(a_h);
                let b = a + hours(ab_h);
                let c = b + hours(bc_h);
                let ab = rostered(&pattern, a, b);
                let bc = rostered(&pattern, b, c);
                prop_assert!(ab >= SignedDuration::ZERO && ab <= b.duration_since(a));
                prop_assert_eq!(rostered(&pattern, a, c), ab + bc);
            }
        }
    }

    mod groups {
        use super::super::*;
        use crate::id::{SiteId, WorkerId};

        fn ts(text: &str) -> Timestamp {
            text.parse().unwrap()
        }

        fn mins(m: i64) -> SignedDuration {
            SignedDuration::from_mins(m)
        }

        #[test]
        fn assignments_split_held_time_between_workers_and_periods() {
            use TaskState::*;
            let history = [
                (ts("2026-11-02T09:00:00Z"), Ready),
                (ts("2026-11-02T09:00:00Z"), Assigned),
                (ts("2026-11-02T09:30:00Z"), InProgress),
                (ts("2026-11-02T10:00:00Z"), Ready),
                (ts("2026-11-02T11:00:00Z"), Assigned),
                (ts("2026-11-02T11:10:00Z"), InProgress),
                (ts("2026-11-02T12:00:00Z"), Submitted),
                (ts("2026-11-02T12:05:00Z"), InReview),
                (ts("2026-11-02T12:20:00Z"), Accepted),
                (ts("2026-11-02T12:20:00Z"), Done),
            ];
            let first = AssignmentWindow {
                assigned_at: ts("2026-11-02T09:00:00Z"),
                released_at: Some(ts("2026-11-02T10:00:00Z")),
            };
            let second = AssignmentWindow {
                assigned_at: ts("2026-11-02T11:00:00Z"),
                released_at: Some(ts("2026-11-02T12:20:00Z")),
            };
            let now = ts("2026-11-03T00:00:00Z");
            let day = (ts("2026-11-02T00:00:00Z"), ts("2026-11-03T00:00:00Z"));
            let a = assignment_facts(&history, first, day.0, day.1, now);
            assert_eq!(
                (a.worked, a.handled, a.submitted, a.reviewed),
                (mins(60), mins(60), false, false)
            );
            let b = assignment_facts(&history, second, day.0, day.1, now);
            assert_eq!(
                (
                    b.worked,
                    b.handled,
                    b.submitted,
                    b.reviewed,
                    b.passed_first_review
                ),
                (mins(60), mins(60), true, true, true)
            );
            // A period ending at 11:30 sees half an hour of the second worker's time.
            let b = assignment_facts(&history, second, day.0, ts("2026-11-02T11:30:00Z"), now);
            assert_eq!((b.worked, b.handled), (mins(60), mins(30)));
            // A task still held counts until now.
            let held = [
                (ts("2026-11-02T09:00:00Z"), Assigned),
                (ts("2026-11-02T09:10:00Z"), InProgress),
            ];
            let open = AssignmentWindow {
                assigned_at: ts("2026-11-02T09:00:00Z"),
                released_at: None,
            };
            let c = assignment_facts(&held, open, day.0, day.1, ts("2026-11-02T10:00:00Z"));
            assert_eq!(
                (c.worked, c.handled, c.submitted),
                (mins(60), mins(60), false)
            );
        }

        fn worker(n: u128) -> WorkerId {
            WorkerId::from_uuid(uuid::Uuid::from_u128(n))
        }

        fn site(n: u128) -> SiteId {
            SiteId::from_uuid(uuid::Uuid::from_u128(100 + n))
        }

        /// Two sites: Pune (workers 1 and 2, an analyst and a senior analyst) and Manila
        /// (worker 3, an analyst); two service lines.
        fn period() -> PeriodFacts {
            let now = ts("2026-11-30T00:00:00Z");
            let facts = |turnaround_m: Option<i64>, breached: bool| ItemFacts {
                received_at: now - SignedDuration::from_hours(30),
                open: turnaround_m.is_none(),
                response: Some(mins(10)),
                turnaround: turnaround_m.map(mins),
                breached,
            };
            let item = |line, turnaround, breached, workers: &[u128]| ItemRecord {
                service_line: line,
                facts: facts(turnaround, breached),
                workers: workers.iter().map(|n| worker(*n)).collect(),
            };
            let task = |line, n: Option<u128>, worked_m: i64, passed: bool| TaskRecord {
                service_line: line,
                worker_id: n.map(worker),
                facts: TaskFacts {
                    worked: mins(worked_m),
                    handled: mins(worked_m),
                    submitted: true,
                    reviewed: true,
                    passed_first_review: passed,
                },
            };
            let claims = ServiceLine::InsuranceProcessing;
            let forms = ServiceLine::FormProcessing;
            PeriodFacts {
                items: vec![
                    item(claims, Some(300), false, &[1]),
                    item(claims, Some(900), true, &[1, 3]),
                    item(forms, Some(100), false, &[2]),
                    item(forms, None, false, &[]),
                ],
                tasks: vec![
                    task(claims, Some(1), 120, true),
                    task(claims, Some(1), 60, false),
                    task(claims, Some(3), 30, true),
                    task(forms, Some(2), 90, true),
                ],
                checks: vec![
                    CheckRecord {
                        service_line: claims,
                        worker_id: worker(1),
                        evidence: Evidence {
                            checks: 10,
                            correct: 9,
                        },
                    },
                    CheckRecord {
                        service_line: forms,
                        worker_id: worker(2),
                        evidence: Evidence {
                            checks: 10,
                            correct: 10,
                        },
                    },
                ],
                workers: vec![
                    WorkerFacts {
                        id: worker(1),
                        site_id: Some(site(1)),
                        designation: Designation::Analyst,
                        rostered: mins(480),
                    },
                    WorkerFacts {
                        id: worker(2),
                        site_id: Some(site(1)),
                        designation: Designation::SeniorAnalyst,
                        rostered: mins(480),
                    },
                    WorkerFacts {
                        id: worker(3),
                        site_id: Some(site(2)),
                        designation: Designation::Analyst,
                        rostered: mins(240),
                    },
                    // On the roster, did nothing.
                    WorkerFacts {
                        id: worker(4),
                        site_id: Some(site(2)),
                        designation: Designation::Analyst,
                        rostered: mins(240),
                    },
                ],
            }
        }

        /// Renders one group as `key: delivered on_time_bp backlog aht_m util_bp fpy_bp acc`.
        fn render(key: &GroupKey, figures: &Figures) -> String {
            let key = match key {
                GroupKey::ServiceLine(line) => line.code().to_string(),
                GroupKey::Site(s) => {
                    format!("site {}", s.map_or(0, |s| s.as_uuid().as_u128() - 100))
                }
                GroupKey::Team {
                    site_id,
                    designation,
                } => format!(
                    "team {}/{}",
                    site_id.map_or(0, |s| s.as_uuid().as_u128() - 100),
                    designation.code()
                ),
                GroupKey::Worker(w) => format!("worker {}", w.as_uuid().as_u128()),
                GroupKey::Unassigned => "unassigned".into(),
            };
            let p = &figures.performance;
            let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
            format!(
                "{key}: delivered {} on_time {} backlog {} aht {} util {} fpy {} acc {} workers {}",
                p.delivered,
                opt(p.on_time_bp),
                p.backlog,
                p.aht.map_or("-".to_string(), |d| d.as_mins().to_string()),
                opt(p.utilisation_bp),
                opt(p.first_pass_yield_bp),
                figures
                    .accuracy
                    .map_or("-".to_string(), |a| format!("{:.2}", a.accuracy)),
                figures.workers,
            )
        }

        fn check(by: Dimension, expect: &[&str]) {
            let result = breakdown(by, &period(), 0.9, ts("2026-11-30T00:00:00Z"));
            let got: Vec<String> = result.groups.iter().map(|(k, f)| render(k, f)).collect();
            assert_eq!(got, expect, "by {}", by.code());
        }

        #[test]
        fn breakdowns_along_each_dimension() {
            check(
                Dimension::ServiceLine,
                &[
                    "insurance_processing: delivered 2 on_time 5000 backlog 0 aht 70 util - fpy 6666 acc 0.90 workers 0",
                    "form_processing: delivered 1 on_time 10000 backlog 1 aht 90 util - fpy 10000 acc 1.00 workers 0",
                ],
            );
            // Item two is in both sites; the queued item is unassigned. Pune handled 270 of
            // 960 minutes, Manila 30 of 480.
            check(
                Dimension::Site,
                &[
                    "site 1: delivered 3 on_time 6666 backlog 0 aht 90 util 2812 fpy 6666 acc 0.95 workers 2",
                    "site 2: delivered 1 on_time 0 backlog 0 aht 30 util 625 fpy 10000 acc - workers 2",
                    "unassigned: delivered 0 on_time - backlog 1 aht - util - fpy - acc - workers 0",
                ],
            );
            check(
                Dimension::Team,
                &[
                    "team 1/analyst: delivered 2 on_time 5000 backlog 0 aht 90 util 3750 fpy 5000 acc 0.90 workers 1",
                    "team 1/senior_analyst: delivered 1 on_time 10000 backlog 0 aht 90 util 1875 fpy 10000 acc 1.00 workers 1",
                    "team 2/analyst: delivered 1 on_time 0 backlog 0 aht 30 util 625 fpy 10000 acc - workers 2",
                    "unassigned: delivered 0 on_time - backlog 1 aht - util - fpy - acc - workers 0",
                ],
            );
            check(
                Dimension::Worker,
                &[
                    "worker 1: delivered 2 on_time 5000 backlog 0 aht 90 util 3750 fpy 5000 acc 0.90 workers 1",
                    "worker 2: delivered 1 on_time 10000 backlog 0 aht 90 util 1875 fpy 10000 acc 1.00 workers 1",
                    "worker 3: delivered 1 on_time 0 backlog 0 aht 30 util 1250 fpy 10000 acc - workers 1",
                    "worker 4: delivered 0 on_time - backlog 0 aht - util 0 fpy - acc - workers 1",
                    "unassigned: delivered 0 on_time - backlog 1 aht - util - fpy - acc - workers 0",
                ],
            );
            let total =
                breakdown(Dimension::Site, &period(), 0.9, ts("2026-11-30T00:00:00Z")).total;
            assert_eq!(
                render(&GroupKey::Unassigned, &total),
                "unassigned: delivered 3 on_time 6666 backlog 1 aht 75 util 2083 fpy 7500 acc 0.95 workers 4"
            );
        }
    }
}
