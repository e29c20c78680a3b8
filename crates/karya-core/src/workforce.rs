//! The workforce as the router sees it: who a worker is qualified and skilled for, when they
//! work, how much they can hold at once, and whether they are at their desk.
//!
//! Everything here is plain data plus pure questions about it ("is this qualification valid at
//! `now`?", "when does the shift that contains `now` end?"). Time zones arrive as resolved
//! [`TimeZone`] values: looking one up by name in the system database is the shell's job.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::id::{ClientId, SiteId, WorkerId};
use crate::model::Designation;

/// Lowest skill level.
pub const SKILL_LEVEL_MIN: u8 = 1;
/// Highest skill level.
pub const SKILL_LEVEL_MAX: u8 = 10;

/// Longest shift block accepted: a shift longer than a day is a data-entry error, and the
/// shift search below only looks one day back for a block that started before midnight.
pub const SHIFT_LENGTH_MAX: SignedDuration = SignedDuration::from_hours(24);

/// A degree, certification or admission, held as a first-class record with its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// What it is, e.g. `ca`, `cpa`, `bar_admission`, `mbbs`, `certified_medical_coder`.
    pub kind: String,
    /// The field for degrees that have one (a PhD in chemistry), else `None`.
    pub field: Option<String>,
    pub issuer: String,
    pub valid_from: Timestamp,
    /// `None` for qualifications that do not lapse (a degree).
    pub valid_until: Option<Timestamp>,
}

impl Qualification {
    /// Whether the qualification counts at `now`. It stops counting at `valid_until` exactly.
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        self.valid_from <= now && self.valid_until.is_none_or(|until| now < until)
    }
}

/// A skill with its level, 1 (novice) to 10 (authority).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    pub name: String,
    pub level: u8,
}

/// Whether a worker can take work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    Available,
    Busy,
    Break,
    Offline,
}

impl Presence {
    pub const ALL: [Presence; 4] = [
        Presence::Available,
        Presence::Busy,
        Presence::Break,
        Presence::Offline,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Presence::Available => "available",
            Presence::Busy => "busy",
            Presence::Break => "break",
            Presence::Offline => "offline",
        }
    }

    pub fn parse(text: &str) -> Option<Presence> {
        Presence::ALL.into_iter().find(|p| p.code() == text)
    }
}

/// One recurring block of a weekly schedule, in the site's local time. A block may run past
/// midnight (a night shift from 22:00 for 9 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftBlock {
    pub weekday: Weekday,
    pub start: Time,
    pub length: SignedDuration,
}

/// A dated change to the weekly schedule: a day off (`length` zero) or a different block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftException {
    pub date: Date,
    pub start: Time,
    pub length: SignedDuration,
}

/// An absence: no shift counts between `from` and `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leave {
    pub from: Timestamp,
    pub until: Timestamp,
}

/// A break in every shift block: `after` the block's start, for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftBreak {
    pub after: SignedDuration,
    pub length: SignedDuration,
}

/// When a worker works: a weekly schedule in the site's time zone, with breaks, exceptions and
/// leave.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftPattern {
    pub time_zone: TimeZone,
    pub weekly: Vec<ShiftBlock>,
    pub exceptions: Vec<ShiftException>,
    pub leave: Vec<Leave>,
    /// Breaks taken in every block (a lunch break four hours in, for 30 minutes).
    pub breaks: Vec<ShiftBreak>,
}

/// Where a worker's shift pattern puts them at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftPhase {
    /// Between shifts, or on leave.
    Off,
    /// On shift, working.
    On,
    /// On shift, on a break of the pattern.
    Break,
}

/// The phase in force at a moment, with when it began and, on shift, when the block began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseAt {
    pub phase: ShiftPhase,
    /// When this phase began (the start of the search window when it began earlier).
    pub since: Timestamp,
    /// The start of the shift block in force; `None` off shift.
    pub block_start: Option<Timestamp>,
}

/// Where a moment falls in a worker's shift: when the shift ends, and when the stretch of work
/// in progress ends (the next break of the pattern, or the shift's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftWindow {
    pub end: Timestamp,
    pub stretch_end: Timestamp,
}

/// Days the phase search looks back for the end of the last shift.
const PHASE_LOOKBACK_DAYS: i64 = 8;

/// Who set a worker's presence last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceSource {
    /// The worker (or a lead for them).
    Worker,
    /// The shift pattern, applied by the router loop.
    Shift,
}

impl PresenceSource {
    pub fn code(self) -> &'static str {
        match self {
            PresenceSource::Worker => "worker",
            PresenceSource::Shift => "shift",
        }
    }

    pub fn parse(text: &str) -> Option<PresenceSource> {
        [PresenceSource::Worker, PresenceSource::Shift]
            .into_iter()
            .find(|s| s.code() == text)
    }
}

/// A worker's presence as last set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceState {
    pub presence: Presence,
    pub since: Timestamp,
    pub source: PresenceSource,
}

/// The presence the shift pattern sets at `now`, or `None` to leave it as it is.
///
/// The pattern acts when a phase begins: at a shift's start the worker becomes available, at a
/// break of the pattern they go on break, at the shift's end (or leave) offline. A change made
/// since the phase began stands, so each phase is applied once. The worker's own toggle wins
/// within the shift: what they set after the block began stands until the block ends. Breaks
/// and the shift's end come on time, whatever the worker holds: work in hand at a break waits
/// for them, and work in hand at the end is handed over (the store releases it to routing with
/// its saved output). A worker without any shift is left alone: their presence is theirs.
pub fn shift_presence(
    pattern: &ShiftPattern,
    now: Timestamp,
    current: PresenceState,
) -> Option<Presence> {
    if pattern.weekly.is_empty() && pattern.exceptions.is_empty() {
        return None;
    }
    let at = pattern.phase_at(now);
    if current.since >= at.since {
        return None;
    }
    if current.source == PresenceSource::Worker
        && at.block_start.is_some_and(|start| current.since >= start)
    {
        return None;
    }
    let wanted = match at.phase {
        ShiftPhase::On => Presence::Available,
        ShiftPhase::Break => Presence::Break,
        ShiftPhase::Off => Presence::Offline,
    };
    if current.presence == wanted {
        return None;
    }
    Some(wanted)
}

impl ShiftPattern {
    /// A pattern without any shift: the worker is never on shift.
    pub fn none(time_zone: TimeZone) -> ShiftPattern {
        ShiftPattern {
            time_zone,
            weekly: Vec::new(),
            exceptions: Vec::new(),
            leave: Vec::new(),
            breaks: Vec::new(),
        }
    }

    /// The same block every day of the week.
    pub fn daily(time_zone: TimeZone, start: Time, length: SignedDuration) -> ShiftPattern {
        let weekly = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ]
        .into_iter()
        .map(|weekday| ShiftBlock {
            weekday,
            start,
            length,
        })
        .collect();
        ShiftPattern {
            weekly,
            ..ShiftPattern::none(time_zone)
        }
    }

    /// The end of the shift that contains `now`, or `None` when the worker is off shift (no
    /// block covers `now`, or `now` falls in leave). Blocks that meet or overlap make one shift
    /// (a round-the-clock pattern, overtime right after a shift): its end is the end of the
    /// last of them, looked for up to [`PHASE_LOOKBACK_DAYS`] ahead.
    pub fn shift_end_at(&self, now: Timestamp) -> Option<Timestamp> {
        self.shift_end_among(&self.blocks_around(now)?, now)
    }

    /// The blocks [`ShiftPattern::shift_end_at`] looks at: from yesterday, up to
    /// [`PHASE_LOOKBACK_DAYS`] ahead.
    fn blocks_around(&self, now: Timestamp) -> Option<Vec<(Timestamp, Timestamp)>> {
        let today = now.to_zoned(self.time_zone.clone()).date();
        Some(self.intervals(today.yesterday().ok()?, PHASE_LOOKBACK_DAYS + 1))
    }

    /// [`ShiftPattern::shift_end_at`] over blocks already read.
    fn shift_end_among(
        &self,
        blocks: &[(Timestamp, Timestamp)],
        now: Timestamp,
    ) -> Option<Timestamp> {
        if self.leave.iter().any(|l| l.from <= now && now < l.until) {
            return None;
        }
        let mut end = blocks
            .iter()
            .filter(|(start, stop)| *start <= now && now < *stop)
            .map(|&(_, stop)| stop)
            .max()?;
        // Blocks are sorted by start: one pass extends the shift through every block that
        // begins before it ends.
        for &(start, stop) in blocks {
            if start <= end && stop > end {
                end = stop;
            }
        }
        // Leave that begins inside the shift cuts it short.
        let cut = self
            .leave
            .iter()
            .filter(|l| now < l.from && l.from < end)
            .map(|l| l.from)
            .min();
        Some(cut.unwrap_or(end))
    }

    /// The shift in force at `now` (see [`ShiftPattern::shift_end_at`]) with the end of the
    /// current stretch of work: the first break of the pattern that begins after `now` and
    /// before the shift ends, or the shift's end. `None` off shift. The window stays right for
    /// any moment from `now` to the stretch's end.
    pub fn window_at(&self, now: Timestamp) -> Option<ShiftWindow> {
        let blocks = self.blocks_around(now)?;
        let end = self.shift_end_among(&blocks, now)?;
        let next_break = blocks
            .iter()
            .filter(|(start, stop)| *stop > now && *start < end)
            .flat_map(|(start, _)| {
                self.breaks
                    .iter()
                    .filter_map(move |b| start.checked_add(b.after).ok())
            })
            .filter(|from| now < *from && *from < end)
            .min();
        Some(ShiftWindow {
            end,
            stretch_end: next_break.unwrap_or(end),
        })
    }

    /// The phase at `now` (see [`ShiftPhase`]) and when it began. Blocks are searched up to
    /// [`PHASE_LOOKBACK_DAYS`] back; an off phase older than that reads as beginning then.
    /// Blocks that meet or overlap make one shift, which begins with the first of them; a
    /// pattern's breaks are taken in each block.
    pub fn phase_at(&self, now: Timestamp) -> PhaseAt {
        let window_start = now
            .checked_sub(SignedDuration::from_hours(24 * PHASE_LOOKBACK_DAYS))
            .unwrap_or(now);
        let off = |since: Timestamp| PhaseAt {
            phase: ShiftPhase::Off,
            since: since.max(window_start),
            block_start: None,
        };
        if let Some(leave) = self.leave.iter().find(|l| l.from <= now && now < l.until) {
            return off(leave.from);
        }
        let today = now.to_zoned(self.time_zone.clone()).date();
        let first = today
            .checked_sub(jiff::Span::new().days(PHASE_LOOKBACK_DAYS))
            .unwrap_or(today);
        let blocks = self.intervals(first, PHASE_LOOKBACK_DAYS + 1);
        // The shifts (runs of blocks that meet or overlap) that began by `now`.
        let mut shift: Option<(Timestamp, Timestamp)> = None;
        let mut last_end: Option<Timestamp> = None;
        for &(start, stop) in blocks.iter().filter(|(start, _)| *start <= now) {
            shift = match shift {
                Some((from, until)) if start <= until => Some((from, until.max(stop))),
                Some((_, until)) => {
                    last_end = Some(until);
                    Some((start, stop))
                }
                None => Some((start, stop)),
            };
        }
        let current = match shift {
            Some((from, until)) if now < until => Some(from),
            Some((_, until)) => {
                last_end = Some(until);
                None
            }
            None => None,
        };
        // Leave that ended after the last shift's end is when the off phase began.
        let leave_end = self
            .leave
            .iter()
            .filter(|l| l.until <= now)
            .map(|l| l.until)
            .max();
        let Some(shift_start) = current else {
            let since = match (last_end.filter(|e| *e <= now), leave_end) {
                (Some(a), Some(b)) => a.max(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => window_start,
            };
            return off(since);
        };
        // Breaks count from the start of each block of the shift.
        let mut since = shift_start;
        let starts = blocks
            .iter()
            .map(|&(start, _)| start)
            .filter(|start| shift_start <= *start && *start <= now);
        for block in starts {
            for b in &self.breaks {
                let Ok(from) = block.checked_add(b.after) else {
                    continue;
                };
                let Ok(until) = from.checked_add(b.length) else {
                    continue;
                };
                if from <= now && now < until {
                    return PhaseAt {
                        phase: ShiftPhase::Break,
                        since: from,
                        block_start: Some(shift_start),
                    };
                }
                if until <= now {
                    since = since.max(until);
                }
            }
        }
        PhaseAt {
            phase: ShiftPhase::On,
            since,
            block_start: Some(shift_start),
        }
    }

    /// The blocks of `days` local dates from `first`, as `(start, stop)` instants sorted by
    /// start, each cut short by leave that begins inside it.
    fn intervals(&self, first: Date, days: i64) -> Vec<(Timestamp, Timestamp)> {
        let mut blocks = Vec::new();
        let mut date = first;
        for _ in 0..=days {
            for (start, length) in self.blocks_on(date) {
                let Ok(start) = date.to_datetime(start).to_zoned(self.time_zone.clone()) else {
                    continue;
                };
                let start = start.timestamp();
                let Ok(mut stop) = start.checked_add(length) else {
                    continue;
                };
                if let Some(cut) = self
                    .leave
                    .iter()
                    .filter(|l| start < l.from && l.from < stop)
                    .map(|l| l.from)
                    .min()
                {
                    stop = cut;
                }
                if start < stop {
                    blocks.push((start, stop));
                }
            }
            let Ok(next) = date.tomorrow() else { break };
            date = next;
        }
        blocks.sort();
        blocks
    }

    /// The blocks in force on a local date: the exceptions for that date if any, else the
    /// weekly blocks for its weekday.
    fn blocks_on(&self, date: Date) -> Vec<(Time, SignedDuration)> {
        let exceptions: Vec<(Time, SignedDuration)> = self
            .exceptions
            .iter()
            .filter(|e| e.date == date)
            .map(|e| (e.start, e.length.min(SHIFT_LENGTH_MAX)))
            .collect();
        if self.exceptions.iter().any(|e| e.date == date) {
            return exceptions;
        }
        self.weekly
            .iter()
            .filter(|b| b.weekday == date.weekday())
            .map(|b| (b.start, b.length.min(SHIFT_LENGTH_MAX)))
            .collect()
    }
}

/// A cap on one channel, in capacity units (e.g. at most one research task at a time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCap {
    pub channel: String,
    pub units_max: u32,
}

/// How much a worker holds at once. Every task weighs some units of its channel (a long
/// research task 10, a short ticket 2); the sum held may not pass `units_max`, nor the
/// channel's own cap when one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub units_max: u32,
    pub channels: Vec<ChannelCap>,
}

impl Capacity {
    /// The cap of a channel, or the total when the channel has none of its own.
    pub fn channel_max(&self, channel: &str) -> u32 {
        self.channels
            .iter()
            .find(|c| c.channel == channel)
            .map_or(self.units_max, |c| c.units_max.min(self.units_max))
    }
}

/// Everything the router needs to know about one worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerProfile {
    pub id: WorkerId,
    pub site_id: Option<SiteId>,
    pub designation: Designation,
    /// ISO 639-1 codes, e.g. `en`, `hi`, `de`.
    pub languages: Vec<String>,
    pub qualifications: Vec<Qualification>,
    pub skills: Vec<Skill>,
    /// Skills the worker is building: work needing one level above theirs may come to them
    /// (a growth assignment, always reviewed).
    pub growth_skills: Vec<String>,
    pub shift: ShiftPattern,
    pub capacity: Capacity,
    /// Clients this worker must never see work of (conflicts of interest).
    pub excluded_clients: Vec<ClientId>,
    /// Free attributes for target expressions (`worker.attr.team == "ip"`).
    pub attributes: Vec<(String, String)>,
}

impl WorkerProfile {
    pub fn skill_level(&self, name: &str) -> u8 {
        self.skills
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.level)
    }

    /// Whether the worker holds a qualification of `kind` valid at `now`.
    pub fn is_qualified(&self, kind: &str, now: Timestamp) -> bool {
        self.qualifications
            .iter()
            .any(|q| q.kind == kind && q.is_valid_at(now))
    }

    pub fn speaks(&self, language: &str) -> bool {
        self.languages.iter().any(|l| l == language)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::time;

    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// `(pattern, now, expected shift end)`.
    fn check(pattern: &ShiftPattern, now: &str, expect: Option<&str>) {
        let got = pattern.shift_end_at(ts(now));
        assert_eq!(got, expect.map(ts), "shift end at {now}");
    }

    #[test]
    fn shifts_follow_the_site_time_zone_exceptions_and_leave() {
        // Kolkata is UTC+05:30; a 09:00-18:00 local day is 03:30-12:30 UTC.
        let ist = TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
        let mut day =
            ShiftPattern::daily(ist.clone(), time(9, 0, 0, 0), SignedDuration::from_hours(9));
        check(&day, "2026-03-02T03:29:59Z", None);
        check(&day, "2026-03-02T03:30:00Z", Some("2026-03-02T12:30:00Z"));
        check(&day, "2026-03-02T12:29:59Z", Some("2026-03-02T12:30:00Z"));
        check(&day, "2026-03-02T12:30:00Z", None);

        day.exceptions.push(ShiftException {
            date: jiff::civil::date(2026, 3, 3),
            start: time(0, 0, 0, 0),
            length: SignedDuration::ZERO,
        });
        check(&day, "2026-03-03T05:00:00Z", None);

        day.leave.push(Leave {
            from: ts("2026-03-04T08:00:00Z"),
            until: ts("2026-03-05T00:00:00Z"),
        });
        check(&day, "2026-03-04T05:00:00Z", Some("2026-03-04T08:00:00Z"));
        check(&day, "2026-03-04T09:00:00Z", None);

        let night = ShiftPattern::daily(
            TimeZone::UTC,
            time(22, 0, 0, 0),
            SignedDuration::from_hours(9),
        );
        check(&night, "2026-03-02T06:00:00Z", Some("2026-03-02T07:00:00Z"));
        check(&night, "2026-03-02T23:00:00Z", Some("2026-03-03T07:00:00Z"));
        check(&night, "2026-03-02T12:00:00Z", None);
    }

    #[test]
    fn blocks_that_meet_make_one_shift() {
        // Round the clock in Kolkata: a 24-hour block every day, each ending where the next
        // begins (local midnight, 18:30 UTC). The shift runs on past the seam.
        let ist = TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600 + 1800).unwrap());
        let mut always = ShiftPattern::daily(
            ist.clone(),
            time(0, 0, 0, 0),
            SignedDuration::from_hours(24),
        );
        let end = always.shift_end_at(ts("2026-03-02T18:20:00Z")).unwrap();
        assert!(end >= ts("2026-03-09T18:30:00Z"), "shift ends at {end}");
        // Leave ends the shift where it begins.
        always.leave.push(Leave {
            from: ts("2026-03-04T06:00:00Z"),
            until: ts("2026-03-05T00:00:00Z"),
        });
        check(
            &always,
            "2026-03-02T18:20:00Z",
            Some("2026-03-04T06:00:00Z"),
        );
        check(&always, "2026-03-04T07:00:00Z", None);

        // A day shift with two hours of overtime right after it on one date.
        let mut day = ShiftPattern::daily(
            TimeZone::UTC,
            time(9, 0, 0, 0),
            SignedDuration::from_hours(8),
        );
        day.exceptions.push(ShiftException {
            date: jiff::civil::date(2026, 3, 3),
            start: time(9, 0, 0, 0),
            length: SignedDuration::from_hours(8),
        });
        day.exceptions.push(ShiftException {
            date: jiff::civil::date(2026, 3, 3),
            start: time(17, 0, 0, 0),
            length: SignedDuration::from_hours(2),
        });
        check(&day, "2026-03-03T16:30:00Z", Some("2026-03-03T19:00:00Z"));
        check(&day, "2026-03-02T16:30:00Z", Some("2026-03-02T17:00:00Z"));

        // The phase is one shift too: on since the first block began, not since the seam.
        let phase = always.phase_at(ts("2026-03-03T19:00:00Z"));
        assert_eq!(phase.phase, ShiftPhase::On);
        assert!(phase.block_start.unwrap() <= ts("2026-02-24T18:30:00Z"));
        let off = always.phase_at(ts("2026-03-04T07:00:00Z"));
        assert_eq!(
            (off.phase, off.since),
            (ShiftPhase::Off, ts("2026-03-04T06:00:00Z"))
        );
    }

    #[test]
    fn a_round_the_clock_shift_does_not_reset_presence_at_midnight() {
        use Presence::*;
        use PresenceSource::*;
        let mut always = ShiftPattern::daily(
            TimeZone::UTC,
            time(0, 0, 0, 0),
            SignedDuration::from_hours(24),
        );
        // The worker signed off on Monday evening; Tuesday's block leaves them offline.
        let away = PresenceState {
            presence: Offline,
            since: ts("2026-03-02T22:00:00Z"),
            source: Worker,
        };
        assert_eq!(
            shift_presence(&always, ts("2026-03-03T00:05:00Z"), away),
            None
        );
        // A break four hours into each block is still taken.
        always.breaks.push(ShiftBreak {
            after: SignedDuration::from_hours(4),
            length: SignedDuration::from_mins(30),
        });
        let on = PresenceState {
            presence: Available,
            since: ts("2026-03-02T22:00:00Z"),
            source: Shift,
        };
        assert_eq!(
            shift_presence(&always, ts("2026-03-03T04:10:00Z"), on),
            Some(Break)
        );
    }

    /// `(minutes after Monday 2026-03-02 00:00 UTC, presence before, set at minute, by,
    /// expected presence or "-")`, with a 09:00-17:00 UTC shift every day and a 30-minute
    /// break four hours in.
    fn check_presence(
        minute: i64,
        before: (Presence, i64, PresenceSource),
        expect: Option<Presence>,
    ) {
        let at = |m: i64| ts("2026-03-02T00:00:00Z") + SignedDuration::from_mins(m);
        let mut pattern = ShiftPattern::daily(
            TimeZone::UTC,
            time(9, 0, 0, 0),
            SignedDuration::from_hours(8),
        );
        pattern.breaks.push(ShiftBreak {
            after: SignedDuration::from_hours(4),
            length: SignedDuration::from_mins(30),
        });
        pattern.leave.push(Leave {
            from: ts("2026-03-04T00:00:00Z"),
            until: ts("2026-03-05T00:00:00Z"),
        });
        let current = PresenceState {
            presence: before.0,
            since: at(before.1),
            source: before.2,
        };
        let got = shift_presence(&pattern, at(minute), current);
        assert_eq!(got, expect, "minute {minute}, before {before:?}");
    }

    #[test]
    fn shifts_set_presence_at_their_start_breaks_and_end() {
        use Presence::*;
        use PresenceSource::*;
        let h = |hours: i64| hours * 60;
        // Before the shift: offline since yesterday's end, nothing to do.
        check_presence(h(8), (Offline, -h(7), Shift), None);
        // The shift starts at 09:00: available.
        check_presence(h(9), (Offline, -h(7), Shift), Some(Available));
        check_presence(h(9) + 5, (Offline, -h(7), Shift), Some(Available));
        // Applied once: the change made at 09:00 stands.
        check_presence(h(10), (Available, h(9), Shift), None);
        // The break at 13:00 for 30 minutes; back at 13:30.
        check_presence(h(13), (Available, h(9), Shift), Some(Break));
        check_presence(h(13) + 30, (Break, h(13), Shift), Some(Available));
        // The worker's own toggle wins within the shift: offline at 10:00 stays offline
        // through the break and after it.
        check_presence(h(11), (Offline, h(10), Worker), None);
        check_presence(h(13) + 10, (Offline, h(10), Worker), None);
        check_presence(h(14), (Offline, h(10), Worker), None);
        // ... but a toggle from before the shift does not.
        check_presence(h(9), (Offline, h(8), Worker), Some(Available));
        // The shift ends at 17:00: offline, whatever the worker holds (it is handed over).
        check_presence(h(17), (Available, h(13) + 30, Shift), Some(Offline));
        check_presence(h(17) + 20, (Available, h(13) + 30, Shift), Some(Offline));
        check_presence(h(17), (Available, h(10), Worker), Some(Offline));
        // Leave on Wednesday: no shift that day.
        check_presence(h(48 + 9), (Offline, h(17), Shift), None);
        check_presence(h(48 + 9), (Available, h(9), Worker), Some(Offline));
        // After leave ends at Thursday 00:00, the next shift start makes them available.
        check_presence(h(72 + 9), (Offline, h(48 + 9), Shift), Some(Available));
        // A worker without shifts is left alone.
        let none = ShiftPattern::none(TimeZone::UTC);
        let current = PresenceState {
            presence: Available,
            since: ts("2026-01-01T00:00:00Z"),
            source: Worker,
        };
        assert_eq!(
            shift_presence(&none, ts("2026-03-02T03:00:00Z"), current),
            None
        );
    }

    #[test]
    fn qualifications_lapse_at_valid_until_exactly() {
        let q = Qualification {
            kind: "cpa".into(),
            field: None,
            issuer: "aicpa".into(),
            valid_from: ts("2020-01-01T00:00:00Z"),
            valid_until: Some(ts("2026-01-01T00:00:00Z")),
        };
        assert!(!q.is_valid_at(ts("2019-12-31T23:59:59Z")));
        assert!(q.is_valid_at(ts("2025-12-31T23:59:59Z")));
        assert!(!q.is_valid_at(ts("2026-01-01T00:00:00Z")));
    }
}
