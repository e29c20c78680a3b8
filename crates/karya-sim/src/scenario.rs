//! A firm to simulate, as a TOML file: sites, business calendars, shifts, teams of workers,
//! service lines with their skill mix, handling-time distribution and SLA targets, and the
//! arrival profile. [`Scenario::parse`] reads and validates it in one go, so a run never starts
//! from a half-checked file; every error names the entry at fault.
//!
//! Time zones are fixed UTC offsets (`"+05:30"`): a run then depends on the file and the seed
//! alone, not on the host's time zone database. Business calendars are the core's
//! [`Calendar`], so SLA due times are computed exactly as the server computes them.
//!
//! This module only describes the firm; drawing arrivals, handling times and absences from a
//! seed is [`crate::trace`]'s job.

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::SignedDuration;
use karya_core::calendar::{Calendar, Shift};
use karya_core::model::{Designation, Priority};
use karya_core::workforce::{SKILL_LEVEL_MAX, SKILL_LEVEL_MIN};
use serde::Deserialize;

/// Most simulated days of arrivals: a month shows every weekly pattern; more only costs time.
pub const DAYS_MAX: u32 = 31;
/// Most workers in a scenario: the simulator and the bound stay fast well beyond a large
/// delivery centre's floor.
pub const WORKERS_MAX: u32 = 5_000;
/// Most service lines: the firm has 25.
pub const LINES_MAX: usize = 25;
/// Highest load accepted: beyond twice the capacity the backlog only grows and says nothing.
pub const LOAD_MAX: f64 = 2.0;
/// Largest log-normal sigma accepted: beyond it a handling time's tail is not a distribution
/// of one kind of work any more.
pub const SIGMA_MAX: f64 = 2.0;
/// Longest SLA target accepted, in business hours (a month of working days).
pub const SLA_HOURS_MAX: f64 = 24.0 * 31.0;

/// Why a scenario file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid toml: {0}")]
    Parse(String),
    #[error("scenario: {0}")]
    Invalid(String),
}

/// A site: a delivery centre and its offset from UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub name: String,
    pub offset: Offset,
}

/// A shift pattern in a site's local time: on which weekdays, and the blocks of work (a break
/// is the gap between two blocks).
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftDef {
    pub name: String,
    pub days: Vec<Weekday>,
    pub blocks: Vec<(Time, SignedDuration)>,
}

/// A group of workers alike in site, shift, qualifications and skills.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub name: String,
    pub site: usize,
    pub shift: usize,
    pub workers: u32,
    pub designation: Designation,
    pub qualifications: Vec<String>,
    pub skills: Vec<(String, u8)>,
    /// Tasks a worker works on at once.
    pub capacity: u32,
    pub hourly_cost: f64,
    /// Probability that a worker is absent on a given day.
    pub absence_rate: f64,
}

/// A log-normal handling-time distribution, by its median and the sigma of its logarithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    pub median_minutes: f64,
    pub sigma: f64,
}

impl LogNormal {
    pub fn mean_minutes(&self) -> f64 {
        self.median_minutes * (self.sigma * self.sigma / 2.0).exp()
    }
}

/// One service line: what its tasks need, how long they take, and their SLA per priority.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub code: String,
    /// Relative share of arrivals.
    pub weight: f64,
    pub qualifications: Vec<String>,
    pub skills: Vec<(String, u8)>,
    /// Data residency: the sites allowed to see the work, `None` for any.
    pub allowed_sites: Option<Vec<usize>>,
    pub handling: LogNormal,
    pub calendar: usize,
    /// Turnaround target in business time of the line's calendar, per priority.
    pub sla: Vec<(Priority, SignedDuration)>,
}

impl Line {
    pub fn sla_for(&self, priority: Priority) -> SignedDuration {
        self.sla
            .iter()
            .find(|(p, _)| *p == priority)
            .map(|(_, d)| *d)
            .expect("validated: every priority of the mix has a target")
    }
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// First simulated day; the run starts at 00:00 UTC of it.
    pub start: Date,
    /// Days with arrivals.
    pub days: u32,
    /// Offered work as a share of the shift capacity of those days.
    pub load: f64,
    /// Width of the bound's time slots.
    pub slot_minutes: u32,
    /// Time a worker spends taking over work another worker handed over at the end of their
    /// shift (reading what was done), added to the work left.
    pub handover: SignedDuration,
    pub sites: Vec<Site>,
    pub calendars: Vec<(String, Calendar)>,
    pub shifts: Vec<ShiftDef>,
    pub teams: Vec<Team>,
    /// Priority mix of arrivals, relative weights.
    pub priorities: Vec<(Priority, f64)>,
    pub lines: Vec<Line>,
    /// Relative arrival rate of each UTC hour of the day.
    pub hourly_weights: [f64; 24],
    /// Weekdays (UTC) with arrivals.
    pub arrival_days: Vec<Weekday>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    start: String,
    days: u32,
    load: f64,
    #[serde(default = "default_slot_minutes")]
    slot_minutes: u32,
    #[serde(default = "default_handover_minutes")]
    handover_minutes: u32,
    sites: Vec<RawSite>,
    calendars: Vec<RawCalendar>,
    shifts: Vec<RawShift>,
    teams: Vec<RawTeam>,
    priorities: BTreeMap<String, f64>,
    lines: Vec<RawLine>,
    arrivals: RawArrivals,
}

fn default_slot_minutes() -> u32 {
    60
}

fn default_handover_minutes() -> u32 {
    5
}

/// Longest time to take over handed-over work the scenario may set.
pub const HANDOVER_MINUTES_MAX: u32 = 120;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    utc_offset: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    name: String,
    utc_offset: String,
    days: Vec<String>,
    hours: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShift {
    name: String,
    days: Vec<String>,
    blocks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTeam {
    name: String,
    site: String,
    shift: String,
    workers: u32,
    #[serde(default)]
    designation: Option<String>,
    #[serde(default)]
    qualifications: Vec<String>,
    #[serde(default)]
    skills: BTreeMap<String, u8>,
    #[serde(default = "default_capacity")]
    capacity: u32,
    hourly_cost: f64,
    #[serde(default)]
    absence_rate: f64,
}

fn default_capacity() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    code: String,
    weight: f64,
    #[serde(default)]
    qualifications: Vec<String>,
    #[serde(default)]
    skills: BTreeMap<String, u8>,
    #[serde(default)]
    allowed_sites: Option<Vec<String>>,
    handling_median_minutes: f64,
    handling_sigma: f64,
    calendar: String,
    sla_hours: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    days: Vec<String>,
    hourly_weights: Vec<f64>,
}

fn invalid(message: String) -> ScenarioError {
    ScenarioError::Invalid(message)
}

impl Scenario {
    /// Reads and validates a scenario.
    pub fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario =
            toml::from_str(text).map_err(|err| ScenarioError::Parse(err.to_string()))?;
        resolve(raw)
    }

    /// Total workers over all teams.
    pub fn n_workers(&self) -> u32 {
        self.teams.iter().map(|t| t.workers).sum()
    }

    /// Whether a team's workers may take a line's tasks: every qualification held, every skill
    /// at its minimum level, and a site the line allows. The simulator's baselines and the
    /// bound use this; the core's policy uses the core's own eligibility, which agrees.
    pub fn eligible(&self, team: usize, line: usize) -> bool {
        let (team, line) = (&self.teams[team], &self.lines[line]);
        line.qualifications
            .iter()
            .all(|q| team.qualifications.contains(q))
            && line.skills.iter().all(|(name, min)| {
                team.skills
                    .iter()
                    .any(|(have, level)| have == name && level >= min)
            })
            && line
                .allowed_sites
                .as_ref()
                .is_none_or(|sites| sites.contains(&team.site))
    }

    /// Mean handling time over the arrival mix, in minutes.
    pub fn mean_handling_minutes(&self) -> f64 {
        let total: f64 = self.lines.iter().map(|l| l.weight).sum();
        self.lines
            .iter()
            .map(|l| l.weight / total * l.handling.mean_minutes())
            .sum()
    }
}

fn resolve(raw: RawScenario) -> Result<Scenario, ScenarioError> {
    if raw.name.trim().is_empty() {
        return Err(invalid("name is empty".into()));
    }
    let start: Date = raw
        .start
        .parse()
        .map_err(|_| invalid(format!("start {:?} is not a date (YYYY-MM-DD)", raw.start)))?;
    if raw.handover_minutes > HANDOVER_MINUTES_MAX {
        return Err(invalid(format!(
            "handover_minutes must be at most {HANDOVER_MINUTES_MAX}"
        )));
    }
    if raw.days == 0 || raw.days > DAYS_MAX {
        return Err(invalid(format!("days must be between 1 and {DAYS_MAX}")));
    }
    check_load(raw.load)?;
    if !(15..=240).contains(&raw.slot_minutes) || 1440 % raw.slot_minutes != 0 {
        return Err(invalid(
            "slot_minutes must divide a day and lie between 15 and 240".into(),
        ));
    }

    let mut sites = Vec::new();
    for (idx, s) in raw.sites.iter().enumerate() {
        let at = format!("sites[{idx}] ({})", s.name);
        unique(&sites, &s.name, |x: &Site| &x.name, &at)?;
        sites.push(Site {
            name: s.name.clone(),
            offset: offset(&s.utc_offset).map_err(|m| invalid(format!("{at}: {m}")))?,
        });
    }
    if sites.is_empty() {
        return Err(invalid("at least one site is needed".into()));
    }

    let mut calendars: Vec<(String, Calendar)> = Vec::new();
    for (idx, c) in raw.calendars.iter().enumerate() {
        let at = format!("calendars[{idx}] ({})", c.name);
        unique(&calendars, &c.name, |x: &(String, Calendar)| &x.0, &at)?;
        let zone =
            TimeZone::fixed(offset(&c.utc_offset).map_err(|m| invalid(format!("{at}: {m}")))?);
        let days = weekdays(&c.days).map_err(|m| invalid(format!("{at}: {m}")))?;
        let mut shifts = Vec::new();
        for text in &c.hours {
            let (start, end) = span(text).map_err(|m| invalid(format!("{at}: {m}")))?;
            shifts.push(Shift::new(start, end));
        }
        let calendar = Calendar::weekly(zone, &days, &shifts);
        if !calendar.has_working_time() {
            return Err(invalid(format!("{at}: has no working time")));
        }
        calendars.push((c.name.clone(), calendar));
    }

    let mut shifts: Vec<ShiftDef> = Vec::new();
    for (idx, s) in raw.shifts.iter().enumerate() {
        let at = format!("shifts[{idx}] ({})", s.name);
        unique(&shifts, &s.name, |x: &ShiftDef| &x.name, &at)?;
        let days = weekdays(&s.days).map_err(|m| invalid(format!("{at}: {m}")))?;
        let mut blocks = Vec::new();
        for text in &s.blocks {
            let (start, end) = span(text).map_err(|m| invalid(format!("{at}: {m}")))?;
            let mut length = end.duration_since(start);
            if !length.is_positive() {
                length += SignedDuration::from_hours(24);
            }
            blocks.push((start, length));
        }
        if blocks.is_empty() {
            return Err(invalid(format!("{at}: no blocks")));
        }
        let total: SignedDuration = blocks.iter().map(|(_, l)| *l).sum();
        if total > SignedDuration::from_hours(16) {
            return Err(invalid(format!(
                "{at}: blocks add up to more than 16 hours"
            )));
        }
        shifts.push(ShiftDef {
            name: s.name.clone(),
            days,
            blocks,
        });
    }

    let find = |names: Vec<&str>, name: &str, what: &str, at: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| invalid(format!("{at}: {what} {name:?} is not defined")))
    };

    let mut teams: Vec<Team> = Vec::new();
    for (idx, t) in raw.teams.iter().enumerate() {
        let at = format!("teams[{idx}] ({})", t.name);
        unique(&teams, &t.name, |x: &Team| &x.name, &at)?;
        let site = find(
            sites.iter().map(|s| s.name.as_str()).collect(),
            &t.site,
            "site",
            &at,
        )?;
        let shift = find(
            shifts.iter().map(|s| s.name.as_str()).collect(),
            &t.shift,
            "shift",
            &at,
        )?;
        if t.workers == 0 {
            return Err(invalid(format!("{at}: workers must be at least 1")));
        }
        if t.capacity == 0 || t.capacity > 8 {
            return Err(invalid(format!("{at}: capacity must be between 1 and 8")));
        }
        if !(t.hourly_cost.is_finite() && t.hourly_cost >= 0.0) {
            return Err(invalid(format!("{at}: hourly_cost must be zero or more")));
        }
        if !(0.0..0.5).contains(&t.absence_rate) {
            return Err(invalid(format!("{at}: absence_rate must be in [0, 0.5)")));
        }
        let designation = match t.designation.as_deref() {
            None | Some("analyst") => Designation::Analyst,
            Some("senior_analyst") => Designation::SeniorAnalyst,
            Some("team_lead") => Designation::TeamLead,
            Some("manager") => Designation::Manager,
            Some(other) => return Err(invalid(format!("{at}: unknown designation {other:?}"))),
        };
        teams.push(Team {
            name: t.name.clone(),
            site,
            shift,
            workers: t.workers,
            designation,
            qualifications: t.qualifications.clone(),
            skills: skills(&t.skills).map_err(|m| invalid(format!("{at}: {m}")))?,
            capacity: t.capacity,
            hourly_cost: t.hourly_cost,
            absence_rate: t.absence_rate,
        });
    }
    let n_workers: u32 = teams.iter().map(|t| t.workers).sum();
    if n_workers == 0 || n_workers > WORKERS_MAX {
        return Err(invalid(format!(
            "workers must number between 1 and {WORKERS_MAX}"
        )));
    }

    let mut priorities = Vec::new();
    for (name, weight) in &raw.priorities {
        let priority = Priority::parse(name)
            .ok_or_else(|| invalid(format!("priorities: unknown priority {name:?}")))?;
        if !(weight.is_finite() && *weight > 0.0) {
            return Err(invalid(format!(
                "priorities: weight of {name} must be positive"
            )));
        }
        priorities.push((priority, *weight));
    }
    if priorities.is_empty() {
        return Err(invalid("priorities: at least one is needed".into()));
    }
    priorities.sort_by_key(|(p, _)| std::cmp::Reverse(*p as u8));

    let mut lines: Vec<Line> = Vec::new();
    for (idx, l) in raw.lines.iter().enumerate() {
        let at = format!("lines[{idx}] ({})", l.code);
        unique(&lines, &l.code, |x: &Line| &x.code, &at)?;
        if !(l.weight.is_finite() && l.weight > 0.0) {
            return Err(invalid(format!("{at}: weight must be positive")));
        }
        if !(l.handling_median_minutes.is_finite() && l.handling_median_minutes >= 1.0) {
            return Err(invalid(format!(
                "{at}: handling_median_minutes must be at least 1"
            )));
        }
        if !(0.0..=SIGMA_MAX).contains(&l.handling_sigma) {
            return Err(invalid(format!(
                "{at}: handling_sigma must be in [0, {SIGMA_MAX}]"
            )));
        }
        let calendar = find(
            calendars.iter().map(|c| c.0.as_str()).collect(),
            &l.calendar,
            "calendar",
            &at,
        )?;
        let allowed_sites = match &l.allowed_sites {
            None => None,
            Some(names) => {
                let mut out = Vec::new();
                for name in names {
                    out.push(find(
                        sites.iter().map(|s| s.name.as_str()).collect(),
                        name,
                        "site",
                        &at,
                    )?);
                }
                Some(out)
            }
        };
        let mut sla = Vec::new();
        for (name, hours) in &l.sla_hours {
            let priority = Priority::parse(name)
                .ok_or_else(|| invalid(format!("{at}: unknown priority {name:?} in sla_hours")))?;
            if !(hours.is_finite() && *hours > 0.0 && *hours <= SLA_HOURS_MAX) {
                return Err(invalid(format!(
                    "{at}: sla_hours.{name} must be positive and at most {SLA_HOURS_MAX}"
                )));
            }
            sla.push((
                priority,
                SignedDuration::from_secs((hours * 3600.0).round() as i64),
            ));
        }
        for (priority, _) in &priorities {
            if !sla.iter().any(|(p, _)| p == priority) {
                return Err(invalid(format!(
                    "{at}: sla_hours has no target for priority {}",
                    priority.code()
                )));
            }
        }
        lines.push(Line {
            code: l.code.clone(),
            weight: l.weight,
            qualifications: l.qualifications.clone(),
            skills: skills(&l.skills).map_err(|m| invalid(format!("{at}: {m}")))?,
            allowed_sites,
            handling: LogNormal {
                median_minutes: l.handling_median_minutes,
                sigma: l.handling_sigma,
            },
            calendar,
            sla,
        });
    }
    if lines.is_empty() || lines.len() > LINES_MAX {
        return Err(invalid(format!(
            "lines: between 1 and {LINES_MAX} are needed"
        )));
    }

    if raw.arrivals.hourly_weights.len() != 24 {
        return Err(invalid(format!(
            "arrivals.hourly_weights must have 24 entries, not {}",
            raw.arrivals.hourly_weights.len()
        )));
    }
    let mut hourly_weights = [0.0; 24];
    for (idx, w) in raw.arrivals.hourly_weights.iter().enumerate() {
        if !(w.is_finite() && *w >= 0.0) {
            return Err(invalid(format!(
                "arrivals.hourly_weights[{idx}] must be zero or more"
            )));
        }
        hourly_weights[idx] = *w;
    }
    if hourly_weights.iter().sum::<f64>() <= 0.0 {
        return Err(invalid("arrivals.hourly_weights are all zero".into()));
    }
    let arrival_days =
        weekdays(&raw.arrivals.days).map_err(|m| invalid(format!("arrivals: {m}")))?;

    let scenario = Scenario {
        name: raw.name,
        start,
        days: raw.days,
        load: raw.load,
        slot_minutes: raw.slot_minutes,
        handover: SignedDuration::from_mins(i64::from(raw.handover_minutes)),
        sites,
        calendars,
        shifts,
        teams,
        priorities,
        lines,
        hourly_weights,
        arrival_days,
    };
    for (idx, line) in scenario.lines.iter().enumerate() {
        if !(0..scenario.teams.len()).any(|team| scenario.eligible(team, idx)) {
            return Err(invalid(format!(
                "lines[{idx}] ({}): no team is eligible for it",
                line.code
            )));
        }
    }
    Ok(scenario)
}

/// Checks a load factor given in a file or on the command line.
pub fn check_load(load: f64) -> Result<(), ScenarioError> {
    match load.is_finite() && load > 0.0 && load <= LOAD_MAX {
        true => Ok(()),
        false => Err(invalid(format!("load must be in (0, {LOAD_MAX}]"))),
    }
}

fn unique<T>(
    seen: &[T],
    name: &str,
    key: impl Fn(&T) -> &String,
    at: &str,
) -> Result<(), ScenarioError> {
    if name.trim().is_empty() {
        return Err(invalid(format!("{at}: name is empty")));
    }
    match seen.iter().any(|x| key(x) == name) {
        true => Err(invalid(format!("{at}: name {name:?} is used twice"))),
        false => Ok(()),
    }
}

fn offset(text: &str) -> Result<Offset, String> {
    let bad = || format!("utc_offset {text:?} is not of the form +HH:MM");
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || !(0..60).contains(&m) {
        return Err(bad());
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|_| bad())
}

fn weekdays(names: &[String]) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for name in names {
        let day = match name.as_str() {
            "mon" => Weekday::Monday,
            "tue" => Weekday::Tuesday,
            "wed" => Weekday::Wednesday,
            "thu" => Weekday::Thursday,
            "fri" => Weekday::Friday,
            "sat" => Weekday::Saturday,
            "sun" => Weekday::Sunday,
            other => return Err(format!("unknown weekday {other:?} (mon..sun)")),
        };
        if days.contains(&day) {
            return Err(format!("weekday {name:?} is listed twice"));
        }
        days.push(day);
    }
    match days.is_empty() {
        true => Err("no weekdays listed".into()),
        false => Ok(days),
    }
}

/// `"09:00-13:00"`; an end at or before the start runs past midnight.
fn span(text: &str) -> Result<(Time, Time), String> {
    let bad = || format!("{text:?} is not a span of the form HH:MM-HH:MM");
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let parse = |t: &str| t.trim().parse::<Time>().map_err(|_| bad());
    Ok((parse(a)?, parse(b)?))
}

fn skills(map: &BTreeMap<String, u8>) -> Result<Vec<(String, u8)>, String> {
    let mut out = Vec::new();
    for (name, level) in map {
        if !(SKILL_LEVEL_MIN..=SKILL_LEVEL_MAX).contains(level) {
            return Err(format!(
                "skill {name} has level {level}, outside {SKILL_LEVEL_MIN}..={SKILL_LEVEL_MAX}"
            ));
        }
        out.push((name.clone(), *level));
    }
    Ok(out)
}
