//! Measurable performance criteria over any set of work items and tasks: on-time %, response
//! and turnaround (mean, p50, p90), backlog and its ageing, average handling time, utilisation
//! and first-pass yield.
//!
//! The functions take plain facts and return numbers; which items make up the set (a client,
//! an engagement, a service line, a site, a team, a worker; a period) is the caller's choice.
//! Shares are basis points (1% = 100 bp); `None` means there was nothing to measure, which is
//! not the same as 0%.

use jiff::{SignedDuration, Timestamp};

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

/// What is known about one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    /// Held time, from [`crate::billing::task_time`].
    pub worked: SignedDuration,
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
    /// Worked time over available time.
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
    let worked_total = tasks
        .iter()
        .fold(SignedDuration::ZERO, |sum, t| sum + t.worked);
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
            (worked_total.as_secs().max(0) as i128 * 10_000 / available.as_secs().max(1) as i128)
                as u32
        }),
        first_pass_yield_bp: ratio_bp(passed, reviewed),
    }
}

/// `part / whole` in basis points, rounded down; `None` for an empty whole.
pub fn ratio_bp(part: u32, whole: u32) -> Option<u32> {
    (whole > 0).then(|| (u64::from(part) * 10_000 / u64::from(whole)) as u32)
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
}
