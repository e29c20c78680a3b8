//! SLA clocks: terms per priority, and the state of a work item's clocks derived from its
//! events alone.
//!
//! A work item has two milestones, first response and resolution, each a target in business
//! time of the engagement's [`Calendar`]. Nothing about a clock is stored that cannot be derived
//! again: [`evaluate`] takes the item's lifecycle records (created, transitions, resets) and
//! the terms in force and returns the same answer every time, so when a term, a calendar or a
//! priority changes, the store recomputes open items exactly.
//!
//! Clock rules, following the work item lifecycle:
//! - **start**: the item is received;
//! - **pause**: `on_hold` (waiting on the client); **resume**: back to `in_progress`;
//! - **stop**: `delivered` or `closed` (a reopen resumes the resolution clock);
//! - **cancel**: `cancelled`, the item no longer counts;
//! - **reset**: an explicit reset restarts both clocks from that instant;
//! - first response is met by the first move out of `received` other than a cancel.
//!
//! [`predict`] looks ahead: from the queue in front of an item and the expected handling
//! time, it says whether the item will breach before it does.

use jiff::{SignedDuration, Timestamp};

use crate::calendar::{Calendar, CalendarError};
use crate::lifecycle::WorkItemState;

/// A target the SLA measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTerms {
    /// Business time from receipt to the first response.
    pub first_response: SignedDuration,
    /// Business time from receipt to delivery (turnaround).
    pub resolution: SignedDuration,
    /// Share of a target, in percent, after which an item is at risk (e.g. 75).
    pub warning_pct: u8,
    /// Share of items to be resolved on time, in basis points (9500 = 95.00%).
    pub on_time_target_bp: u32,
    /// Share of reviewed work to pass QA, in basis points.
    pub accuracy_target_bp: u32,
}

/// What happened to a work item, as far as its clocks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockEvent {
    Created,
    Transitioned(WorkItemState),
    Reset,
}

/// One lifecycle record of a work item, in event order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRecord {
    pub at: Timestamp,
    pub event: ClockEvent,
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockState {
    Running,
    Paused,
    Stopped,
    Cancelled,
}

impl ClockState {
    pub fn code(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Paused => "paused",
            ClockState::Stopped => "stopped",
            ClockState::Cancelled => "cancelled",
        }
    }
}

/// One measured target of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Milestone {
    pub target: SignedDuration,
    /// Business time on the clock so far (up to the stop when stopped).
    pub elapsed: SignedDuration,
    /// When the target runs out; for a milestone met early, when it would have run out had the
    /// clock kept running. `None` while the clock is paused, or after a cancel.
    pub due_at: Option<Timestamp>,
    /// When the warning threshold is crossed, on the same terms as `due_at`.
    pub warn_at: Option<Timestamp>,
    /// When the milestone was met (the clock stopped for it).
    pub met_at: Option<Timestamp>,
    /// More business time than the target has elapsed.
    pub breached: bool,
    /// The warning threshold has been crossed.
    pub warned: bool,
}

impl Milestone {
    /// Business time left (negative once breached).
    pub fn remaining(&self) -> SignedDuration {
        self.target - self.elapsed
    }
}

/// Both clocks of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaStatus {
    pub state: ClockState,
    pub started_at: Timestamp,
    pub response: Milestone,
    pub resolution: Milestone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlaError {
    #[error("the item's records do not begin with its creation")]
    NotCreated,
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// The clocks of one item from its records, as of `now`.
pub fn evaluate(
    calendar: &Calendar,
    terms: &SlaTerms,
    records: &[ClockRecord],
    now: Timestamp,
) -> Result<SlaStatus, SlaError> {
    let timeline = timeline(records)?;
    let response = milestone(
        calendar,
        &timeline,
        timeline.responded_at,
        terms.first_response,
        terms.warning_pct,
        now,
    )?;
    let resolution = milestone(
        calendar,
        &timeline,
        timeline.resolved_at,
        terms.resolution,
        terms.warning_pct,
        now,
    )?;
    Ok(SlaStatus {
        state: timeline.state,
        started_at: timeline.started_at,
        response,
        resolution,
    })
}

/// What the queue in front of an item looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Items that will be handled before this one.
    pub items_ahead: u32,
    /// Workers taking from this queue now.
    pub workers: u32,
    /// Expected business time to handle one item (from recent history).
    pub expected_handling: SignedDuration,
}

/// A look ahead at one item's resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    /// When the item is expected to be delivered.
    pub projected_finish: Timestamp,
    /// Business time to spare at the expected finish (negative: expected to breach).
    pub slack: SignedDuration,
    /// Expected to breach and not yet breached: warn now.
    pub at_risk: bool,
    /// Urgency for the router, 0 (plenty of time) to 1000 (no slack left).
    pub urgency_permille: u32,
}

/// Whether an item with a running resolution clock will breach, given the queue ahead of it.
/// `None` when the clock is not running.
pub fn predict(
    calendar: &Calendar,
    status: &SlaStatus,
    queue: &QueueState,
    now: Timestamp,
) -> Result<Option<Prediction>, SlaError> {
    if status.state != ClockState::Running || status.resolution.due_at.is_none() {
        return Ok(None);
    }
    let workers = i32::try_from(queue.workers.max(1)).unwrap_or(i32::MAX);
    let items_ahead = i32::try_from(queue.items_ahead).unwrap_or(i32::MAX);
    // Items ahead are shared among the workers; this item waits for its worker's share.
    let rounds = items_ahead / workers + i32::from(items_ahead % workers != 0);
    let needed = queue
        .expected_handling
        .checked_mul(rounds.saturating_add(1))
        .unwrap_or(SignedDuration::MAX);
    let projected_finish = calendar.add(now, needed)?;
    let slack = status.resolution.remaining() - needed;
    let target_s = status.resolution.target.as_secs().max(1);
    let urgency_permille = if slack <= SignedDuration::ZERO {
        1000
    } else {
        let spare = (slack.as_secs().min(target_s) * 1000 / target_s) as u32;
        1000 - spare
    };
    Ok(Some(Prediction {
        projected_finish,
        slack,
        at_risk: slack < SignedDuration::ZERO && !status.resolution.breached,
        urgency_permille,
    }))
}

/// The running intervals of an item's clock, from its records.
struct Timeline {
    state: ClockState,
    started_at: Timestamp,
    /// Intervals during which the clock ran; the last may still be open.
    segments: Vec<(Timestamp, Option<Timestamp>)>,
    responded_at: Option<Timestamp>,
    resolved_at: Option<Timestamp>,
}

fn timeline(records: &[ClockRecord]) -> Result<Timeline, SlaError> {
    let Some((first, rest)) = records.split_first() else {
        return Err(SlaError::NotCreated);
    };
    if first.event != ClockEvent::Created {
        return Err(SlaError::NotCreated);
    }
    let mut line = Timeline {
        state: ClockState::Running,
        started_at: first.at,
        segments: vec![(first.at, None)],
        responded_at: None,
        resolved_at: None,
    };
    for record in rest {
        let at = record.at;
        match record.event {
            ClockEvent::Created => {}
            ClockEvent::Reset => {
                line.started_at = at;
                line.segments.clear();
                line.responded_at = None;
                line.resolved_at = None;
                if line.state == ClockState::Running {
                    line.segments.push((at, None));
                }
            }
            ClockEvent::Transitioned(to) => {
                if line.responded_at.is_none()
                    && !matches!(to, WorkItemState::Received | WorkItemState::Cancelled)
                {
                    line.responded_at = Some(at);
                }
                match to {
                    WorkItemState::Received | WorkItemState::InProgress => {
                        line.resolved_at = None;
                        if line.state != ClockState::Running {
                            line.segments.push((at, None));
                        }
                        line.state = ClockState::Running;
                    }
                    WorkItemState::OnHold => {
                        close(&mut line.segments, at);
                        line.state = ClockState::Paused;
                    }
                    WorkItemState::Delivered | WorkItemState::Closed => {
                        close(&mut line.segments, at);
                        if line.resolved_at.is_none() {
                            line.resolved_at = Some(at);
                        }
                        line.state = ClockState::Stopped;
                    }
                    WorkItemState::Cancelled => {
                        close(&mut line.segments, at);
                        line.state = ClockState::Cancelled;
                    }
                }
            }
        }
    }
    Ok(line)
}

fn close(segments: &mut [(Timestamp, Option<Timestamp>)], at: Timestamp) {
    if let Some(last) = segments.last_mut() {
        if last.1.is_none() {
            last.1 = Some(at.max(last.0));
        }
    }
}

/// One milestone over the clock's running intervals, cut at `stop` when it was met.
fn milestone(
    calendar: &Calendar,
    line: &Timeline,
    stop: Option<Timestamp>,
    target: SignedDuration,
    warning_pct: u8,
    now: Timestamp,
) -> Result<Milestone, SlaError> {
    let warning = target
        .checked_mul(i32::from(warning_pct.min(100)))
        .map(|d| d / 100)
        .unwrap_or(target);
    let mut elapsed = SignedDuration::ZERO;
    let mut due_at = None;
    let mut warn_at = None;
    for &(start, end) in &line.segments {
        if stop.is_some_and(|stop| start >= stop) {
            break;
        }
        // An interval still open runs to the stop if the milestone is met, else to now, and
        // its due time is projected from its start whatever `now` is.
        let (end, open) = match (end, stop) {
            (Some(end), Some(stop)) => (end.min(stop), false),
            (Some(end), None) => (end, false),
            (None, Some(stop)) => (stop, false),
            (None, None) => (now.max(start), true),
        };
        let before = elapsed;
        let consumed = calendar.measure(start, end)?;
        elapsed += consumed;
        if due_at.is_none() && (open || elapsed >= target) {
            due_at = Some(calendar.add(start, target - before)?);
        }
        if warn_at.is_none() && (open || elapsed >= warning) && before <= warning {
            warn_at = Some(calendar.add(start, warning - before)?);
        }
    }
    if let (None, Some(stop)) = (due_at, stop) {
        // Met short of its target: the due time as it stood when the clock stopped.
        due_at = Some(calendar.add(stop, target - elapsed)?);
    }
    Ok(Milestone {
        target,
        elapsed,
        due_at,
        warn_at,
        met_at: stop,
        breached: elapsed > target,
        warned: elapsed >= warning,
    })
}

#[cfg(test)]
mod tests {
    use jiff::civil::{time, Weekday};
    use jiff::tz::TimeZone;

    use super::*;
    use crate::calendar::Shift;

    /// Mon-Fri 09:00-17:00 UTC: hand-worked values stay readable.
    fn calendar() -> Calendar {
        Calendar::weekly(
            TimeZone::UTC,
            &[
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            &[Shift::new(time(9, 0, 0, 0), time(17, 0, 0, 0))],
        )
    }

    fn terms(response_h: i64, resolution_h: i64) -> SlaTerms {
        SlaTerms {
            first_response: SignedDuration::from_hours(response_h),
            resolution: SignedDuration::from_hours(resolution_h),
            warning_pct: 75,
            on_time_target_bp: 9500,
            accuracy_target_bp: 9800,
        }
    }

    fn ts(text: &str) -> Timestamp {
        format!("2026-11-{text}:00Z").parse().unwrap()
    }

    /// Records from a compact script: `"02T10:00 created"`, `"02T11:00 on_hold"`, `"reset"`.
    fn records(script: &[&str]) -> Vec<ClockRecord> {
        script
            .iter()
            .map(|line| {
                let (at, what) = line.split_once(' ').unwrap();
                let event = match what {
                    "created" => ClockEvent::Created,
                    "reset" => ClockEvent::Reset,
                    state => ClockEvent::Transitioned(state.parse().unwrap()),
                };
                ClockRecord { at: ts(at), event }
            })
            .collect()
    }

    fn show(at: Option<Timestamp>) -> String {
        at.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
    }

    /// Renders the status compactly: state, resolution due, elapsed, breach, warn.
    fn render(status: &SlaStatus) -> String {
        format!(
            "{} response(due {} met {} breached {}) resolution(due {} elapsed {}m breached {} warned {})",
            status.state.code(),
            show(status.response.due_at),
            show(status.response.met_at),
            status.response.breached,
            show(status.resolution.due_at),
            status.resolution.elapsed.as_mins(),
            status.resolution.breached,
            status.resolution.warned,
        )
    }

    fn check(terms: SlaTerms, script: &[&str], now: &str, expect: &str) {
        let status = evaluate(&calendar(), &terms, &records(script), ts(now)).unwrap();
        assert_eq!(render(&status), expect, "{script:?}");
    }

    #[test]
    fn clock_rules() {
        // Running: received Mon 10:00, 2h response, 16h resolution (two business days).
        check(
            terms(2, 16),
            &["02T10:00 created"],
            "02T15:00",
            "running response(due 2026-11-02T12:00:00Z met - breached true) resolution(due 2026-11-04T10:00:00Z elapsed 300m breached false warned false)",
        );
        // Responded in time, put on hold over the weekend: Fri 15:00 .. Mon 11:00 is paused,
        // so the 4 business hours of Fri 15-17 and Mon 9-11 do not count: 7h Thu + 6h Fri +
        // 1h Mon elapsed, the last 3h run from Mon 11:00 to 14:00.
        check(
            terms(2, 16),
            &[
                "05T10:00 created",
                "05T11:00 in_progress",
                "06T15:00 on_hold",
                "09T11:00 in_progress",
            ],
            "09T12:00",
            "running response(due 2026-11-05T12:00:00Z met 2026-11-05T11:00:00Z breached false) resolution(due 2026-11-09T14:00:00Z elapsed 840m breached false warned true)",
        );
        // While paused there is no due time, and the elapsed time stands still.
        check(
            terms(2, 16),
            &["05T10:00 created", "05T11:00 on_hold"],
            "09T16:00",
            "paused response(due 2026-11-05T12:00:00Z met 2026-11-05T11:00:00Z breached false) resolution(due - elapsed 60m breached false warned false)",
        );
        // Delivered late: 16h due Wed 10:00, delivered Wed 12:00 -> 18h elapsed, breached.
        check(
            terms(2, 16),
            &["02T10:00 created", "02T10:30 in_progress", "04T12:00 delivered"],
            "20T10:00",
            "stopped response(due 2026-11-02T12:00:00Z met 2026-11-02T10:30:00Z breached false) resolution(due 2026-11-04T10:00:00Z elapsed 1080m breached true warned true)",
        );
        // Reopened after delivery: the clock resumes from the reopen, not from delivery.
        check(
            terms(2, 16),
            &[
                "02T10:00 created",
                "02T10:30 in_progress",
                "02T16:00 delivered",
                "03T09:00 closed",
            ],
            "20T10:00",
            "stopped response(due 2026-11-02T12:00:00Z met 2026-11-02T10:30:00Z breached false) resolution(due 2026-11-04T10:00:00Z elapsed 360m breached false warned false)",
        );
        check(
            terms(2, 16),
            &[
                "02T10:00 created",
                "02T10:30 in_progress",
                "02T16:00 delivered",
                "03T10:00 in_progress",
            ],
            "03T12:00",
            "running response(due 2026-11-02T12:00:00Z met 2026-11-02T10:30:00Z breached false) resolution(due 2026-11-04T12:00:00Z elapsed 480m breached false warned false)",
        );
        // A reset restarts both clocks.
        check(
            terms(2, 16),
            &["02T10:00 created", "04T10:00 reset"],
            "04T11:00",
            "running response(due 2026-11-04T12:00:00Z met - breached false) resolution(due 2026-11-06T10:00:00Z elapsed 60m breached false warned false)",
        );
        // Cancelled: the clock stops where it was and the item stops counting.
        check(
            terms(2, 16),
            &["02T10:00 created", "02T11:00 cancelled"],
            "20T10:00",
            "cancelled response(due - met - breached false) resolution(due - elapsed 60m breached false warned false)",
        );
    }

    #[test]
    fn records_must_start_with_creation() {
        let err = evaluate(
            &calendar(),
            &terms(2, 16),
            &records(&["02T10:00 reset"]),
            ts("02T10:00"),
        );
        assert_eq!(err, Err(SlaError::NotCreated));
    }

    /// Five open items of one engagement, then the resolution target changes from 16h to 8h
    /// and every open item is evaluated again. Values worked by hand on a Mon-Fri 9-17 week.
    #[test]
    fn term_change_mid_flight_recomputes_due_times_and_breaches() {
        let items: [(&str, &[&str]); 5] = [
            // a: received Mon 09:00, working since.
            ("a", &["02T09:00 created", "02T09:30 in_progress"]),
            // b: received Mon 14:00.
            ("b", &["02T14:00 created"]),
            // c: received Tue 16:00, on hold Tue 16:30 .. Wed 13:00.
            (
                "c",
                &[
                    "03T16:00 created",
                    "03T16:30 on_hold",
                    "04T13:00 in_progress",
                ],
            ),
            // d: received Tue 10:00, still on hold.
            ("d", &["03T10:00 created", "03T11:00 on_hold"]),
            // e: received Wed 11:00.
            ("e", &["04T11:00 created"]),
        ];
        let now = ts("04T14:00");
        let run = |terms: SlaTerms| -> Vec<String> {
            items
                .iter()
                .map(|(name, script)| {
                    let status = evaluate(&calendar(), &terms, &records(script), now).unwrap();
                    format!(
                        "{name}: due {} elapsed {}m breached {}",
                        show(status.resolution.due_at),
                        status.resolution.elapsed.as_mins(),
                        status.resolution.breached
                    )
                })
                .collect()
        };
        // 16h: a is due Tue 17:00 (8h Mon + 8h Tue) and has 21h by Wed 14:00: breached.
        // b: 3h Mon + 8h Tue + 5h Wed reach 16h exactly at Wed 14:00: due then, on time.
        // c: 0.5h Tue, paused, then Wed 13:00 on: 15.5h left from 13:00 is 4h Wed + 8h Thu +
        // 3.5h Fri -> Fri 12:30. d: paused, no due time. e: 6h Wed + 8h Thu + 2h Fri -> Fri 11:00.
        assert_eq!(
            run(terms(2, 16)),
            [
                "a: due 2026-11-03T17:00:00Z elapsed 1260m breached true",
                "b: due 2026-11-04T14:00:00Z elapsed 960m breached false",
                "c: due 2026-11-06T12:30:00Z elapsed 90m breached false",
                "d: due - elapsed 60m breached false",
                "e: due 2026-11-06T11:00:00Z elapsed 180m breached false",
            ]
        );
        // 8h: a due Mon 17:00; b due Tue 14:00 (3h Mon + 5h Tue), now breached; c: 7.5h from
        // Wed 13:00 is Thu 12:30; d still paused; e: 6h Wed + 2h Thu -> Thu 11:00.
        assert_eq!(
            run(terms(2, 8)),
            [
                "a: due 2026-11-02T17:00:00Z elapsed 1260m breached true",
                "b: due 2026-11-03T14:00:00Z elapsed 960m breached true",
                "c: due 2026-11-05T12:30:00Z elapsed 90m breached false",
                "d: due - elapsed 60m breached false",
                "e: due 2026-11-05T11:00:00Z elapsed 180m breached false",
            ]
        );
    }

    #[test]
    fn prediction_flags_items_that_will_breach() {
        let cal = calendar();
        let status = evaluate(
            &cal,
            &terms(2, 16),
            &records(&["02T10:00 created"]),
            ts("03T10:00"),
        )
        .unwrap();
        // 8h elapsed, 8h left. Two items ahead, two workers, 3h each: 6h needed, 2h slack.
        let queue = QueueState {
            items_ahead: 2,
            workers: 2,
            expected_handling: SignedDuration::from_hours(3),
        };
        let p = predict(&cal, &status, &queue, ts("03T10:00"))
            .unwrap()
            .unwrap();
        assert_eq!(p.projected_finish.to_string(), "2026-11-03T16:00:00Z");
        assert_eq!(p.slack, SignedDuration::from_hours(2));
        assert!(!p.at_risk);
        assert_eq!(p.urgency_permille, 875);
        // Three ahead on two workers: two rounds before this one, 9h needed, 1h short.
        let queue = QueueState {
            items_ahead: 3,
            ..queue
        };
        let p = predict(&cal, &status, &queue, ts("03T10:00"))
            .unwrap()
            .unwrap();
        assert_eq!(p.projected_finish.to_string(), "2026-11-04T11:00:00Z");
        assert_eq!(p.slack, SignedDuration::from_hours(-1));
        assert!(p.at_risk);
        assert_eq!(p.urgency_permille, 1000);
        // A paused item is not predicted.
        let paused = evaluate(
            &cal,
            &terms(2, 16),
            &records(&["02T10:00 created", "02T11:00 on_hold"]),
            ts("03T10:00"),
        )
        .unwrap();
        assert_eq!(
            predict(&cal, &paused, &queue, ts("03T10:00")).unwrap(),
            None
        );
    }
}
