//! What happens to a firm in one run, drawn from a seed before any policy acts: the arrival
//! trace (when each work item comes, its line, priority, SLA due time and true handling time)
//! and the roster (each worker's blocks of work, absences removed).
//!
//! Every policy and the offline bound read the same [`Trace`], so differences between them
//! come from the decisions alone. Arrivals, handling times and absences use separate streams
//! of the seed, so a different load changes the arrivals but not who is absent.

use anyhow::Context;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use karya_core::model::Priority;

use crate::rng::Rng;
use crate::scenario::Scenario;

/// Longest handling time drawn, as a multiple of the line's median: the log-normal tail is
/// cut there (a task of that size is split in practice), which also bounds any overrun.
pub const HANDLING_CAP_MEDIANS: f64 = 8.0;
/// Most work items one run may generate, so a mistyped load cannot exhaust memory.
pub const ITEMS_MAX: usize = 2_000_000;

/// One work item of the trace (one task: each item is one human step here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub line: u16,
    pub priority: Priority,
    /// Seconds since the run's epoch.
    pub arrival_s: i64,
    /// When the SLA falls due, seconds since the epoch.
    pub due_s: i64,
    /// The true handling time, known to the bound but not to the policies.
    pub handling_s: i64,
}

/// One worker of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterWorker {
    pub team: usize,
    /// Blocks of work `[start, end)` in seconds since the epoch, in order.
    pub blocks: Vec<(i64, i64)>,
    /// Local dates the worker is absent.
    pub days_off: Vec<Date>,
}

/// Arrivals and roster of one run.
#[derive(Debug, Clone)]
pub struct Trace {
    /// 00:00 UTC of the scenario's first day.
    pub epoch: Timestamp,
    /// End of the arrival window (the scenario's days), seconds since the epoch.
    pub window_end_s: i64,
    /// End of the run: the last due time, or the window's end if later.
    pub end_s: i64,
    pub load: f64,
    pub items: Vec<Item>,
    pub workers: Vec<RosterWorker>,
}

impl Trace {
    pub fn at(&self, seconds: i64) -> Timestamp {
        self.epoch + SignedDuration::from_secs(seconds)
    }

    /// Worker-seconds of shift time inside the arrival window, weighted by capacity.
    pub fn window_capacity_s(&self, scenario: &Scenario) -> i64 {
        self.workers
            .iter()
            .map(|w| {
                let overlap: i64 = w
                    .blocks
                    .iter()
                    .map(|&(a, b)| (b.min(self.window_end_s) - a.max(0)).max(0))
                    .sum();
                overlap * i64::from(scenario.teams[w.team].capacity)
            })
            .sum()
    }
}

/// Draws the trace of a run: arrivals scaled so that the offered work is `load` times the
/// shift capacity present in the arrival window.
pub fn generate(scenario: &Scenario, load: f64, seed: u64) -> anyhow::Result<Trace> {
    let epoch = scenario
        .start
        .to_zoned(TimeZone::UTC)
        .context("start date out of range")?
        .timestamp();
    let window_end_s = i64::from(scenario.days) * 86_400;

    // Absences first: they depend on the seed only, not on the load.
    let mut absence_rng = Rng::new(seed ^ 0xab5e_9ce5);
    let first_date = scenario.start.yesterday()?;
    let mut workers = Vec::new();
    for (team_idx, team) in scenario.teams.iter().enumerate() {
        for _ in 0..team.workers {
            // Absences are drawn for the arrival window and a week after it, which covers
            // any run's tail.
            let mut days_off = Vec::new();
            for day in 0..i64::from(scenario.days) + 9 {
                let date = nth_day(first_date, day);
                if absence_rng.chance(team.absence_rate) {
                    days_off.push(date);
                }
            }
            workers.push(RosterWorker {
                team: team_idx,
                blocks: Vec::new(),
                days_off,
            });
        }
    }
    let mut trace = Trace {
        epoch,
        window_end_s,
        end_s: window_end_s,
        load,
        items: Vec::new(),
        workers,
    };
    fill_blocks(scenario, &mut trace, window_end_s)?;

    let capacity_min = trace.window_capacity_s(scenario) as f64 / 60.0;
    let expected_items = load * capacity_min / scenario.mean_handling_minutes();
    let mut weight_total = 0.0;
    for day in 0..i64::from(scenario.days) {
        let date = nth_day(scenario.start, day);
        if scenario.arrival_days.contains(&date.weekday()) {
            weight_total += scenario.hourly_weights.iter().sum::<f64>();
        }
    }
    if weight_total <= 0.0 {
        anyhow::bail!("no arrival day falls inside the scenario's days");
    }
    let per_weight = expected_items / weight_total;
    let line_total: f64 = scenario.lines.iter().map(|l| l.weight).sum();
    let priority_total: f64 = scenario.priorities.iter().map(|(_, w)| w).sum();

    let mut arrival_rng = Rng::new(seed ^ 0xa771_fa15);
    let mut handling_rng = Rng::new(seed ^ 0x4a0d_1e55);
    for day in 0..i64::from(scenario.days) {
        let date = nth_day(scenario.start, day);
        if !scenario.arrival_days.contains(&date.weekday()) {
            continue;
        }
        for (hour, weight) in scenario.hourly_weights.iter().enumerate() {
            let rate = per_weight * weight;
            if rate <= 0.0 {
                continue;
            }
            let hour_start = day * 86_400 + hour as i64 * 3_600;
            let mut t = arrival_rng.exponential(3_600.0 / rate);
            while t < 3_600.0 {
                if trace.items.len() == ITEMS_MAX {
                    anyhow::bail!("the trace would exceed {ITEMS_MAX} items");
                }
                let line = pick(
                    &mut arrival_rng,
                    line_total,
                    scenario.lines.iter().map(|l| l.weight),
                );
                let priority_idx = pick(
                    &mut arrival_rng,
                    priority_total,
                    scenario.priorities.iter().map(|(_, w)| *w),
                );
                let priority = scenario.priorities[priority_idx].0;
                let spec = &scenario.lines[line];
                let minutes = (spec.handling.median_minutes
                    * (spec.handling.sigma * handling_rng.normal()).exp())
                .min(spec.handling.median_minutes * HANDLING_CAP_MEDIANS);
                let arrival_s = hour_start + t as i64;
                let calendar = &scenario.calendars[spec.calendar].1;
                let due = calendar
                    .add(trace.at(arrival_s), spec.sla_for(priority))
                    .with_context(|| format!("line {}", spec.code))?;
                trace.items.push(Item {
                    line: line as u16,
                    priority,
                    arrival_s,
                    due_s: due.duration_since(epoch).as_secs(),
                    handling_s: ((minutes * 60.0).round() as i64).max(1),
                });
                t += arrival_rng.exponential(3_600.0 / rate);
            }
        }
    }
    let last_due = trace.items.iter().map(|i| i.due_s).max().unwrap_or(0);
    trace.end_s = last_due.max(window_end_s);
    let end_s = trace.end_s;
    fill_blocks(scenario, &mut trace, end_s)?;
    Ok(trace)
}

/// The roster's blocks up to `end_s`, from each team's shift in its site's offset, less the
/// days off (a night block belongs to the date it starts on).
fn fill_blocks(scenario: &Scenario, trace: &mut Trace, end_s: i64) -> anyhow::Result<()> {
    let first_date = scenario.start.yesterday()?;
    let n_days = end_s / 86_400 + 3;
    for worker in &mut trace.workers {
        let team = &scenario.teams[worker.team];
        let shift = &scenario.shifts[team.shift];
        let zone = TimeZone::fixed(scenario.sites[team.site].offset);
        worker.blocks.clear();
        for day in 0..n_days {
            let date = nth_day(first_date, day);
            if !shift.days.contains(&date.weekday()) || worker.days_off.contains(&date) {
                continue;
            }
            for (time, length) in &shift.blocks {
                let start = date.to_datetime(*time).to_zoned(zone.clone())?.timestamp();
                let a = start.duration_since(trace.epoch).as_secs();
                let b = a + length.as_secs();
                if b > 0 && a < end_s {
                    worker.blocks.push((a, b));
                }
            }
        }
        worker.blocks.sort_unstable();
    }
    Ok(())
}

/// An index drawn by weight.
fn pick(rng: &mut Rng, total: f64, weights: impl Iterator<Item = f64>) -> usize {
    let mut x = rng.unit() * total;
    let mut last = 0;
    for (idx, w) in weights.enumerate() {
        last = idx;
        if x < w {
            return idx;
        }
        x -= w;
    }
    last
}

/// The date `n` days after `date`.
pub fn nth_day(date: Date, n: i64) -> Date {
    date.checked_add(jiff::Span::new().days(n))
        .expect("scenario dates stay far inside jiff's range")
}

/// The item's priority rank, 0 for low.
pub fn rank(priority: Priority) -> u8 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(0) as u8
}
