//! Work arriving at the demo firm: per engagement, a Poisson stream whose rate follows the
//! client's business day (a morning and an afternoon peak, little at night, less on weekends
//! and holidays); and the log-normal time a person takes over one step.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use karya_core::model::Priority;

use super::firm::DemoFirm;
use crate::rng::Rng;

/// Spread of the logarithm of handling times: the slowest tenth of tasks take about twice the
/// median, as time studies of clerical and analytical work show.
pub const HANDLING_SIGMA: f64 = 0.5;
/// Share of a business day's rate that arrives on a weekend or holiday day.
const OFF_DAY_SHARE: f64 = 0.12;
/// Relative rate of an hour outside business hours.
const NIGHT_WEIGHT: f64 = 0.06;

/// One work item arriving.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub at: Timestamp,
    /// Index into [`DemoFirm::engagements`].
    pub engagement: usize,
    pub priority: Priority,
    /// Draw used to pick and vary the input (which pack example, which values).
    pub variant: u64,
}

/// The rate weight of a local hour on a business day.
fn hour_weight(hour: i8, (open, close): (i8, i8)) -> f64 {
    if hour < open || hour >= close {
        return NIGHT_WEIGHT;
    }
    match hour - open {
        1..=3 => 1.6,
        5..=7 => 1.3,
        _ => 1.0,
    }
}

fn poisson(rng: &mut Rng, mean: f64) -> u32 {
    // Knuth's method; the means here are small (a few per hour at most).
    let limit = (-mean).exp();
    let mut product = rng.unit();
    let mut n = 0;
    while product > limit && n < 1_000 {
        product *= rng.unit();
        n += 1;
    }
    n
}

fn priority(rng: &mut Rng) -> Priority {
    let x = rng.unit();
    match x {
        x if x < 0.15 => Priority::Low,
        x if x < 0.75 => Priority::Normal,
        x if x < 0.95 => Priority::High,
        _ => Priority::Urgent,
    }
}

/// The arrivals in `[start, end)`, in time order. `zones[c]` is client `c`'s time zone.
pub fn arrivals(
    seed: u64,
    firm: &DemoFirm,
    zones: &[TimeZone],
    start: Timestamp,
    end: Timestamp,
) -> Vec<Arrival> {
    let mut rng = Rng::new(seed ^ 0x0a77_17a1);
    let hour = SignedDuration::from_hours(1);
    let mut out = Vec::new();
    for (idx, engagement) in firm.engagements.iter().enumerate() {
        let client = &firm.clients[engagement.client];
        let zone = &zones[engagement.client];
        let day_weight: f64 = (0..24).map(|h| hour_weight(h, client.hours)).sum();
        let mut at = start;
        while at < end {
            let local = at.to_zoned(zone.clone());
            let off_day = matches!(
                local.weekday(),
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            ) || client.holidays.contains(&local.date());
            let mut mean =
                engagement.items_per_day * hour_weight(local.hour(), client.hours) / day_weight;
            if off_day {
                mean *= OFF_DAY_SHARE;
            }
            for _ in 0..poisson(&mut rng, mean) {
                let offset = SignedDuration::from_secs((rng.unit() * 3_600.0) as i64);
                let when = at.saturating_add(offset).unwrap_or(at);
                if when < end {
                    out.push(Arrival {
                        at: when,
                        engagement: idx,
                        priority: priority(&mut rng),
                        variant: rng.next_u64(),
                    });
                }
            }
            at = at.saturating_add(hour).unwrap_or(end);
        }
    }
    // Every engagement has work in the window, however short: one that drew nothing gets an
    // item early in it (work a slow line had on hand when the window opened).
    let span = end.duration_since(start).as_secs().max(1);
    for idx in 0..firm.engagements.len() {
        if out.iter().any(|a| a.engagement == idx) {
            continue;
        }
        let offset = (span as f64 * 0.2 * rng.unit()) as i64;
        out.push(Arrival {
            at: start
                .saturating_add(SignedDuration::from_secs(offset))
                .unwrap_or(start),
            engagement: idx,
            priority: Priority::Normal,
            variant: rng.next_u64(),
        });
    }
    out.sort_by_key(|a| (a.at, a.engagement));
    out
}

/// Minutes of work one step takes, log-normal around the pack's expected minutes.
pub fn handling_minutes(rng: &mut Rng, expected_minutes: u32) -> f64 {
    let median = f64::from(expected_minutes.max(1));
    (median * (HANDLING_SIGMA * rng.normal()).exp()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_peak_and_nights_are_quiet() {
        let hours = (9, 18);
        assert!(hour_weight(10, hours) > hour_weight(9, hours));
        assert!(hour_weight(14, hours) > hour_weight(13, hours));
        assert_eq!(hour_weight(3, hours), NIGHT_WEIGHT);
        assert_eq!(hour_weight(18, hours), NIGHT_WEIGHT);
    }

    #[test]
    fn handling_times_centre_on_the_expected_minutes() {
        let mut rng = Rng::new(3);
        let mut draws: Vec<f64> = (0..10_001)
            .map(|_| handling_minutes(&mut rng, 40))
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[5_000];
        assert!((median - 40.0).abs() < 2.0, "median {median}");
        assert!(draws[9_000] > 60.0, "a long tail: p90 {}", draws[9_000]);
    }
}
