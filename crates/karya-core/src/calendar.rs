//! Business calendars: when a client or a site is "open", and arithmetic in business time.
//!
//! A calendar is a time zone, working shifts per weekday, dated holidays and dated exceptions.
//! A shift is a wall-clock start and end; an end at or before the start means the shift runs
//! overnight into the next day (an end equal to the start is a full 24 hours). Shifts follow the
//! wall clock across daylight-saving changes, so a 22:00-06:00 shift lasts seven or nine real
//! hours on the night the clocks move, as it does for the people working it.
//!
//! A shift belongs to the date it starts on: a holiday closes the shifts starting that day, and
//! an exception replaces them (an empty exception closes the day). Overlapping shifts count once.
//!
//! This module does no IO: the caller looks the zone up (`jiff::tz::TimeZone::get`) and passes
//! it in. The two operations, [`Calendar::add`] and [`Calendar::measure`], are inverse: adding a
//! business duration and measuring the span back gives the same duration.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// How many days [`Calendar::add`] walks looking for working time before giving up. Ten years
/// covers any SLA target; a calendar that has no working time in ten years is misconfigured.
pub const SEARCH_DAYS_MAX: i32 = 3_660;

/// Number of days a measured span may cover, for the same reason as [`SEARCH_DAYS_MAX`].
pub const MEASURE_DAYS_MAX: i32 = 3_660;

/// The working week of most offices: Monday to Friday.
pub const MONDAY_TO_FRIDAY: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];

/// Why calendar arithmetic could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the calendar has no working time within {SEARCH_DAYS_MAX} days of {from}")]
    NoWorkingTime { from: Timestamp },
    #[error("the span from {from} to {to} is longer than {MEASURE_DAYS_MAX} days")]
    SpanTooLong { from: Timestamp, to: Timestamp },
    #[error("a negative business duration cannot be added")]
    NegativeDuration,
    #[error("time out of range: {0}")]
    OutOfRange(String),
}

/// One working period of a day in wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub start: Time,
    /// At or before `start`: the shift ends on the next day.
    pub end: Time,
}

impl Shift {
    pub fn new(start: Time, end: Time) -> Shift {
        Shift { start, end }
    }

    pub fn is_overnight(&self) -> bool {
        self.end <= self.start
    }
}

/// Working hours of one client or site.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub zone: TimeZone,
    /// Shifts per weekday, Monday first.
    pub week: [Vec<Shift>; 7],
    /// Dates on which no shift starts.
    pub holidays: BTreeSet<Date>,
    /// Dates whose shifts replace the weekly ones (an empty list closes the day); an exception
    /// wins over a holiday on the same date.
    pub exceptions: BTreeMap<Date, Vec<Shift>>,
}

impl Calendar {
    /// The same shifts on every listed weekday, no holidays.
    pub fn weekly(zone: TimeZone, days: &[Weekday], shifts: &[Shift]) -> Calendar {
        let mut week: [Vec<Shift>; 7] = Default::default();
        for day in days {
            week[day.to_monday_zero_offset() as usize] = shifts.to_vec();
        }
        Calendar {
            zone,
            week,
            holidays: BTreeSet::new(),
            exceptions: BTreeMap::new(),
        }
    }

    /// The shifts that start on `date`.
    pub fn shifts_on(&self, date: Date) -> &[Shift] {
        if let Some(shifts) = self.exceptions.get(&date) {
            return shifts;
        }
        if self.holidays.contains(&date) {
            return &[];
        }
        &self.week[date.weekday().to_monday_zero_offset() as usize]
    }

    /// Whether the calendar has any working time at all in a normal week or an exception.
    pub fn has_working_time(&self) -> bool {
        self.week.iter().any(|day| !day.is_empty())
            || self.exceptions.values().any(|day| !day.is_empty())
    }

    /// Whether `at` falls inside working time.
    pub fn is_working(&self, at: Timestamp) -> Result<bool, CalendarError> {
        let date = self.zone.to_datetime(at).date();
        let mut covered = Timestamp::MIN;
        for day in [prev(date)?, date] {
            for (start, end) in self.day_intervals(day)? {
                let start = start.max(covered);
                covered = covered.max(end);
                if start <= at && at < end {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The instant at which `duration` of business time has elapsed since `from`. A zero
    /// duration gives `from` itself; otherwise the result lies inside or at the end of a shift.
    pub fn add(
        &self,
        from: Timestamp,
        duration: SignedDuration,
    ) -> Result<Timestamp, CalendarError> {
        if duration.is_negative() {
            return Err(CalendarError::NegativeDuration);
        }
        if duration.is_zero() {
            return Ok(from);
        }
        let mut remaining = duration;
        let mut covered = from;
        let mut date = prev(self.zone.to_datetime(from).date())?;
        for _ in 0..SEARCH_DAYS_MAX {
            for (start, end) in self.day_intervals(date)? {
                let start = start.max(covered);
                if end <= start {
                    continue;
                }
                covered = end;
                let available = end.duration_since(start);
                if available >= remaining {
                    return start.checked_add(remaining).map_err(out_of_range);
                }
                remaining -= available;
            }
            date = next(date)?;
        }
        Err(CalendarError::NoWorkingTime { from })
    }

    /// Business time between `from` and `to` (zero when `to` is not after `from`).
    pub fn measure(&self, from: Timestamp, to: Timestamp) -> Result<SignedDuration, CalendarError> {
        if to <= from {
            return Ok(SignedDuration::ZERO);
        }
        let first = prev(self.zone.to_datetime(from).date())?;
        let last = self.zone.to_datetime(to).date();
        if first.until(last).map_err(out_of_range)?.get_days() > MEASURE_DAYS_MAX {
            return Err(CalendarError::SpanTooLong { from, to });
        }
        let mut total = SignedDuration::ZERO;
        let mut covered = from;
        let mut date = first;
        while date <= last {
            for (start, end) in self.day_intervals(date)? {
                let start = start.max(covered);
                let end = end.min(to);
                if end <= start {
                    continue;
                }
                covered = end;
                total += end.duration_since(start);
            }
            date = next(date)?;
        }
        Ok(total)
    }

    /// The working intervals of the shifts starting on `date`, in start order, as instants.
    fn day_intervals(&self, date: Date) -> Result<Vec<(Timestamp, Timestamp)>, CalendarError> {
        let mut intervals = Vec::with_capacity(self.shifts_on(date).len());
        for shift in self.shifts_on(date) {
            let end_date = if shift.is_overnight() {
                next(date)?
            } else {
                date
            };
            // A wall time skipped by a spring-forward change resolves to the instant after the
            // gap; a repeated one (fall back) to its first occurrence.
            let start = self
                .zone
                .to_ambiguous_timestamp(date.to_datetime(shift.start))
                .compatible()
                .map_err(out_of_range)?;
            let end = self
                .zone
                .to_ambiguous_timestamp(end_date.to_datetime(shift.end))
                .compatible()
                .map_err(out_of_range)?;
            if start < end {
                intervals.push((start, end));
            }
        }
        intervals.sort();
        Ok(intervals)
    }
}

fn prev(date: Date) -> Result<Date, CalendarError> {
    date.yesterday().map_err(out_of_range)
}

fn next(date: Date) -> Result<Date, CalendarError> {
    date.tomorrow().map_err(out_of_range)
}

fn out_of_range(err: jiff::Error) -> CalendarError {
    CalendarError::OutOfRange(err.to_string())
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};
    use proptest::prelude::*;

    use super::*;

    /// India's central government gazetted holidays of 2026 (the compulsory list), as data an
    /// Indian site's calendar carries.
    const INDIA_GAZETTED_2026: &[(i16, i8, i8, &str)] = &[
        (2026, 1, 26, "Republic Day"),
        (2026, 3, 4, "Holi"),
        (2026, 3, 21, "Id-ul-Fitr"),
        (2026, 3, 26, "Ram Navami"),
        (2026, 3, 31, "Mahavir Jayanti"),
        (2026, 4, 3, "Good Friday"),
        (2026, 5, 1, "Buddha Purnima"),
        (2026, 5, 27, "Id-ul-Zuha (Bakrid)"),
        (2026, 6, 26, "Muharram"),
        (2026, 8, 15, "Independence Day"),
        (2026, 8, 26, "Milad-un-Nabi"),
        (2026, 9, 4, "Janmashtami"),
        (2026, 10, 2, "Mahatma Gandhi's Birthday"),
        (2026, 10, 20, "Dussehra"),
        (2026, 11, 8, "Diwali (Deepavali)"),
        (2026, 11, 24, "Guru Nanak's Birthday"),
        (2026, 12, 25, "Christmas Day"),
    ];

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn nine_to_six(zone_name: &str) -> Calendar {
        Calendar::weekly(
            zone(zone_name),
            &MONDAY_TO_FRIDAY,
            &[Shift::new(time(9, 0, 0, 0), time(18, 0, 0, 0))],
        )
    }

    fn kolkata_site() -> Calendar {
        let mut calendar = nine_to_six("Asia/Kolkata");
        calendar.holidays = INDIA_GAZETTED_2026
            .iter()
            .map(|&(y, m, d, _)| date(y, m, d))
            .collect();
        calendar
    }

    /// A night desk in Kolkata covering a New York business day: 18:30-03:30 IST, Mon-Fri.
    fn kolkata_night_desk() -> Calendar {
        Calendar::weekly(
            zone("Asia/Kolkata"),
            &MONDAY_TO_FRIDAY,
            &[Shift::new(time(18, 30, 0, 0), time(3, 30, 0, 0))],
        )
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn hours(h: f64) -> SignedDuration {
        SignedDuration::from_secs_f64(h * 3600.0)
    }

    /// Adds `business_hours` from `from` and expects `due`; then measures the span back.
    fn check_add(calendar: &Calendar, from: &str, business_hours: f64, due: &str) {
        let got = calendar.add(ts(from), hours(business_hours)).unwrap();
        assert_eq!(got.to_string(), due, "add {business_hours}h from {from}");
        let back = calendar.measure(ts(from), got).unwrap();
        assert_eq!(back, hours(business_hours), "measure {from} .. {due}");
    }

    fn check_measure(calendar: &Calendar, from: &str, to: &str, business_hours: f64) {
        let got = calendar.measure(ts(from), ts(to)).unwrap();
        assert_eq!(got, hours(business_hours), "measure {from} .. {to}");
    }

    #[test]
    fn plain_week_in_kolkata() {
        let cal = nine_to_six("Asia/Kolkata");
        // Mon 2026-11-02 10:00 IST = 04:30Z; 4h later is 14:00 IST.
        check_add(&cal, "2026-11-02T04:30:00Z", 4.0, "2026-11-02T08:30:00Z");
        // 10:00 to 18:00 is exactly the rest of the day: the due time is the close, 18:00 IST.
        check_add(&cal, "2026-11-02T04:30:00Z", 8.0, "2026-11-02T12:30:00Z");
        check_add(&cal, "2026-11-02T04:30:00Z", 9.0, "2026-11-03T04:30:00Z");
        // Friday 17:00 IST + 2h: 1h Friday, 1h Monday -> Mon 10:00 IST.
        check_add(&cal, "2026-11-06T11:30:00Z", 2.0, "2026-11-09T04:30:00Z");
        // Starting on Saturday waits for Monday 09:00.
        check_add(&cal, "2026-11-07T06:00:00Z", 1.0, "2026-11-09T04:30:00Z");
        // A week of business time is five working days.
        check_measure(&cal, "2026-11-02T03:30:00Z", "2026-11-09T03:30:00Z", 45.0);
        check_measure(&cal, "2026-11-09T03:30:00Z", "2026-11-02T03:30:00Z", 0.0);
    }

    #[test]
    fn indian_gazetted_holidays_close_the_site() {
        let cal = kolkata_site();
        // Mon 2026-01-26 is Republic Day: a request on Friday 23rd at 17:00 IST with 2h left
        // finishes Tuesday 27th at 10:00 IST.
        check_add(&cal, "2026-01-23T11:30:00Z", 2.0, "2026-01-27T04:30:00Z");
        // Diwali falls on a Sunday in 2026 and changes nothing; Guru Nanak's birthday (Tue
        // 24 Nov) removes a day from that week: 36h instead of 45h.
        check_measure(&cal, "2026-11-23T03:30:00Z", "2026-11-28T00:00:00Z", 36.0);
        // Holi (Wed 4 Mar) and an exception opening Saturday 7 March for a half day.
        let mut cal = cal;
        cal.exceptions.insert(
            date(2026, 3, 7),
            vec![Shift::new(time(9, 0, 0, 0), time(13, 0, 0, 0))],
        );
        check_measure(
            &cal,
            "2026-03-02T00:00:00Z",
            "2026-03-08T00:00:00Z",
            36.0 + 4.0,
        );
        // An empty exception closes a normal Monday.
        cal.exceptions.insert(date(2026, 3, 9), vec![]);
        check_add(&cal, "2026-03-07T07:30:00Z", 2.0, "2026-03-10T05:30:00Z");
    }

    #[test]
    fn berlin_client_across_both_dst_changes() {
        let cal = nine_to_six("Europe/Berlin");
        // Fri 2026-03-27 17:00 CET (16:00Z) + 3h: 1h Friday, clocks go forward on Sunday, so
        // Monday 11:00 is CEST = 09:00Z.
        check_add(&cal, "2026-03-27T16:00:00Z", 3.0, "2026-03-30T09:00:00Z");
        // The week of the change still has 45 business hours, though it has 167 real hours.
        check_measure(&cal, "2026-03-23T00:00:00Z", "2026-03-30T00:00:00Z", 45.0);
        // Back to CET on Sunday 25 October: Fri 17:00 CEST (15:00Z) + 3h -> Mon 11:00 CET.
        check_add(&cal, "2026-10-23T15:00:00Z", 3.0, "2026-10-26T10:00:00Z");
    }

    #[test]
    fn new_york_client_served_overnight_from_kolkata() {
        let cal = kolkata_night_desk();
        // The desk's shift: Mon 2026-11-02 18:30 IST (13:00Z) to Tue 03:30 IST (22:00Z): 9h.
        check_measure(&cal, "2026-11-02T13:00:00Z", "2026-11-02T22:00:00Z", 9.0);
        // A request at Mon 23:00 IST (17:30Z) with 6h to go: 4.5h Monday night, 1.5h from
        // Tuesday 18:30 -> Tue 20:00 IST = 14:30Z.
        check_add(&cal, "2026-11-02T17:30:00Z", 6.0, "2026-11-03T14:30:00Z");
        // Friday's shift runs into Saturday morning: a request at Sat 01:00 IST gets 2.5h.
        check_measure(&cal, "2026-11-06T19:30:00Z", "2026-11-08T00:00:00Z", 2.5);
        // The New York client's own calendar moves on its DST day (Sun 2026-11-01) while
        // Kolkata does not: Fri 16:00 EDT (20:00Z) + 3h is 2h on Friday and 1h on Monday,
        // due Mon 10:00 EST (15:00Z).
        let ny = nine_to_six("America/New_York");
        check_add(&ny, "2026-10-30T20:00:00Z", 3.0, "2026-11-02T15:00:00Z");
        // And in spring (Sun 2026-03-08): Fri 16:00 EST (21:00Z) + 3h -> Mon 10:00 EDT.
        check_add(&ny, "2026-03-06T21:00:00Z", 3.0, "2026-03-09T14:00:00Z");
    }

    #[test]
    fn overnight_shift_on_the_night_clocks_change() {
        // A Berlin night shift 22:00-06:00 every day: the night of 28/29 March has 7 real
        // hours, the night of 24/25 October has 9.
        let cal = Calendar::weekly(
            zone("Europe/Berlin"),
            &[
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ],
            &[Shift::new(time(22, 0, 0, 0), time(6, 0, 0, 0))],
        );
        check_measure(&cal, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z", 7.0);
        check_measure(&cal, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z", 9.0);
        check_measure(&cal, "2026-06-01T12:00:00Z", "2026-06-02T12:00:00Z", 8.0);
        assert!(cal.is_working(ts("2026-10-25T01:30:00Z")).unwrap());
        assert!(!cal.is_working(ts("2026-10-25T12:00:00Z")).unwrap());
    }

    #[test]
    fn overlapping_shifts_count_once_and_closed_calendars_fail() {
        let cal = Calendar::weekly(
            zone("UTC"),
            &MONDAY_TO_FRIDAY,
            &[
                Shift::new(time(9, 0, 0, 0), time(13, 0, 0, 0)),
                Shift::new(time(12, 0, 0, 0), time(17, 0, 0, 0)),
            ],
        );
        check_measure(&cal, "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z", 8.0);
        check_add(&cal, "2026-11-02T12:30:00Z", 1.0, "2026-11-02T13:30:00Z");

        let closed = Calendar::weekly(zone("UTC"), &[], &[]);
        assert!(!closed.has_working_time());
        assert_eq!(
            closed.add(ts("2026-11-02T00:00:00Z"), hours(1.0)),
            Err(CalendarError::NoWorkingTime {
                from: ts("2026-11-02T00:00:00Z")
            })
        );
        assert_eq!(
            cal.add(ts("2026-11-02T00:00:00Z"), hours(-1.0)),
            Err(CalendarError::NegativeDuration)
        );
    }

    fn any_calendar() -> impl Strategy<Value = Calendar> {
        let zones = prop::sample::select(vec![
            "Asia/Kolkata",
            "Europe/Berlin",
            "America/New_York",
            "UTC",
        ]);
        let shift = (0u8..24, 0u8..4, 1u8..13).prop_map(|(h, q, len)| {
            let start = time(h as i8, (q * 15) as i8, 0, 0);
            let end_minutes = (h as i32 * 60 + q as i32 * 15 + len as i32 * 60) % (24 * 60);
            Shift::new(
                start,
                time((end_minutes / 60) as i8, (end_minutes % 60) as i8, 0, 0),
            )
        });
        let days = prop::collection::vec(prop::collection::vec(shift, 0..3), 7);
        let holidays = prop::collection::btree_set(0i64..400, 0..20);
        (zones, days, holidays).prop_filter_map("no working time", |(name, days, holidays)| {
            let mut cal = Calendar::weekly(zone(name), &[], &[]);
            for (idx, shifts) in days.into_iter().enumerate() {
                cal.week[idx] = shifts;
            }
            let base = date(2026, 1, 1);
            cal.holidays = holidays
                .into_iter()
                .map(|offset| base.checked_add(jiff::Span::new().days(offset)).unwrap())
                .collect();
            cal.has_working_time().then_some(cal)
        })
    }

    proptest! {
        #[test]
        fn adding_then_measuring_round_trips(
            cal in any_calendar(),
            start_s in 1_767_225_600i64..1_798_761_600,
            minutes in 0i64..(60 * 24 * 20),
        ) {
            let from = Timestamp::from_second(start_s).unwrap();
            let duration = SignedDuration::from_mins(minutes);
            let due = cal.add(from, duration).unwrap();
            prop_assert!(due >= from);
            prop_assert_eq!(cal.measure(from, due).unwrap(), duration);
            if minutes > 0 {
                // The due time is the first instant at which the duration has elapsed.
                let just_before = due - SignedDuration::from_secs(1);
                prop_assert!(cal.measure(from, just_before).unwrap() < duration);
            }
        }
    }
}
