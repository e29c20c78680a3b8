//! The demo firm's sites, clients, engagements and workers, drawn from a seed.

use std::collections::BTreeSet;

use jiff::civil::{date, time, Date, Time, Weekday};
use jiff::SignedDuration;
use karya_core::model::Designation;
use karya_core::pack::{Pack, StepKind};
use karya_core::service_line::{Category, ServiceLine};

use super::names::{NamePool, FILIPINO_FAMILY, FILIPINO_GIVEN, INDIAN_FAMILY, INDIAN_GIVEN};
use crate::rng::Rng;

/// Workers on each KPO line's team (one lead, two senior analysts, the rest analysts).
const KPO_TEAM: usize = 6;
/// Workers on each BPO line's team.
const BPO_TEAM: usize = 5;
/// Operations managers, each over a few lines and able to review any of them.
const MANAGERS: usize = 8;
/// Share of analysts cross-trained on a second line of the same category.
const CROSS_TRAINED: f64 = 0.3;
/// Share of a working day a worker is away unplanned (sick leave, personal leave).
const ABSENCE_RATE: f64 = 0.04;
/// Share of shift time the arrivals are sized to fill: busy, with room for peaks and rework.
const TARGET_UTILISATION: f64 = 0.55;
/// Most items a day one engagement receives: beyond it the demo only grows slower to build.
const ITEMS_PER_DAY_MAX: f64 = 9.0;
/// Fewest items a day an engagement receives, so every line has work in two weeks.
const ITEMS_PER_DAY_MIN: f64 = 0.35;
/// Share of analysts building a skill.
const GROWING: f64 = 0.3;
/// Share of IP and legal staff with a conflict of interest with one client.
const CONFLICTED: f64 = 0.15;
/// Capacity units of every worker; a long research task weighs all of them.
pub const CAPACITY_UNITS: u32 = 10;

/// A delivery centre.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSite {
    pub name: &'static str,
    pub time_zone: &'static str,
    pub country: &'static str,
    pub holidays: Vec<Date>,
}

/// A client with the zone its business hours are kept in and the lines it buys.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoClient {
    pub name: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    pub time_zone: &'static str,
    /// Mail domain of its users.
    pub domain: &'static str,
    /// Business hours, local: opening and closing hour.
    pub hours: (i8, i8),
    pub holidays: Vec<Date>,
    pub lines: Vec<ServiceLine>,
}

/// A client's contract for one service line.
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    pub client: usize,
    pub line: ServiceLine,
    pub name: String,
    /// Mean arrivals on a business day.
    pub items_per_day: f64,
}

/// When a worker's shift runs, which follows the clients they serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShiftKind {
    /// Indian business hours, for Indian clients.
    Day,
    /// Indian afternoon into evening, for UK and German clients.
    Europe,
    /// Indian night, for US clients.
    UsNight,
    /// Manila night, for US clients.
    ManilaNight,
}

impl ShiftKind {
    /// Start in the site's local time and length.
    pub fn block(self) -> (Time, SignedDuration) {
        let hours = SignedDuration::from_hours(9);
        match self {
            ShiftKind::Day => (time(9, 30, 0, 0), hours),
            ShiftKind::Europe => (time(12, 30, 0, 0), hours),
            ShiftKind::UsNight => (time(19, 0, 0, 0), hours),
            ShiftKind::ManilaNight => (time(21, 0, 0, 0), hours),
        }
    }
}

/// A worker with everything the router needs and what the simulation plays.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoWorker {
    pub name: String,
    pub site: usize,
    pub designation: Designation,
    /// Lines the worker is trained on, home line first.
    pub lines: Vec<ServiceLine>,
    /// Qualification codes.
    pub qualifications: Vec<String>,
    pub skills: Vec<(String, u8)>,
    pub languages: Vec<String>,
    pub shift: ShiftKind,
    /// Days the shift starts on, in the site's zone.
    pub weekdays: Vec<Weekday>,
    pub capacity_units: u32,
    /// Dates (site-local, of a shift's start) the worker does not work: leave and holidays.
    pub days_off: BTreeSet<Date>,
    /// Share of the worker's submissions a reviewer would fail.
    pub error_rate: f64,
    /// Seconds from an offer to the worker's answer, typically.
    pub response_seconds: f64,
    /// A skill the worker is building (growth assignments one level up may come to them).
    pub growing: Option<String>,
    /// A client whose work the worker must never see (index into the clients).
    pub conflict: Option<usize>,
}

/// The whole demo firm.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoFirm {
    pub sites: Vec<DemoSite>,
    pub clients: Vec<DemoClient>,
    pub engagements: Vec<Engagement>,
    pub workers: Vec<DemoWorker>,
}

impl DemoFirm {
    /// Indices of the workers trained on a line.
    pub fn team_of(&self, line: ServiceLine) -> Vec<usize> {
        (0..self.workers.len())
            .filter(|&idx| self.workers[idx].lines.contains(&line))
            .collect()
    }
}

fn line(code: &str) -> ServiceLine {
    code.parse().expect("the demo names known service lines")
}

/// Fixed-date public holidays of `country` (month, day).
fn holiday_days(country: &str) -> &'static [(i8, i8)] {
    match country {
        "IN" => &[(1, 26), (5, 1), (8, 15), (10, 2), (11, 1), (12, 25)],
        "PH" => &[(1, 1), (6, 12), (8, 21), (11, 30), (12, 25), (12, 30)],
        "US" => &[(1, 1), (6, 19), (7, 4), (11, 11), (12, 25)],
        "GB" => &[(1, 1), (12, 25), (12, 26)],
        "DE" => &[(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)],
        _ => &[],
    }
}

/// The holidays of `country` in the years the run touches.
fn holidays(country: &str, first_day: Date, days: u32) -> Vec<Date> {
    let last_day = first_day
        .checked_add(jiff::Span::new().days(i64::from(days) + 1))
        .unwrap_or(first_day);
    let mut out = Vec::new();
    for year in first_day.year()..=last_day.year() {
        for &(month, day) in holiday_days(country) {
            out.push(date(year, month, day));
        }
    }
    out
}

fn clients(first_day: Date, days: u32) -> Vec<DemoClient> {
    let client = |name, country, currency, time_zone, domain, hours, lines: &[&str]| DemoClient {
        name,
        country,
        currency,
        time_zone,
        domain,
        hours,
        holidays: holidays(country, first_day, days),
        lines: lines.iter().map(|code| line(code)).collect(),
    };
    vec![
        client(
            "Meridian Mutual Insurance",
            "US",
            "USD",
            "America/New_York",
            "meridian-mutual.example",
            (8, 18),
            &[
                "insurance_processing",
                "medical_services",
                "customer_support",
                "form_processing",
            ],
        ),
        client(
            "Hollis & Crane LLP",
            "US",
            "USD",
            "America/Chicago",
            "hollis-crane.example",
            (8, 18),
            &["legal_services", "ip_research", "writing_and_content"],
        ),
        client(
            "Northgate Biologics",
            "US",
            "USD",
            "America/New_York",
            "northgate-bio.example",
            (9, 18),
            &[
                "pharma_and_biotech",
                "research_and_development",
                "data_analytics",
                "business_and_technical_analysis",
            ],
        ),
        client(
            "Albion Retail Group",
            "GB",
            "GBP",
            "Europe/London",
            "albion-retail.example",
            (9, 17),
            &[
                "telemarketing",
                "web_research",
                "business_and_market_research",
                "data_entry",
            ],
        ),
        client(
            "Thistle Learning",
            "GB",
            "GBP",
            "Europe/London",
            "thistle-learning.example",
            (9, 17),
            &[
                "learning_solutions",
                "animation_and_design",
                "training_and_consultancy",
            ],
        ),
        client(
            "Rheinwerk Maschinenbau GmbH",
            "DE",
            "EUR",
            "Europe/Berlin",
            "rheinwerk.example",
            (8, 17),
            &[
                "technical_support",
                "it_helpdesk",
                "network_management",
                "data_conversion",
                "ip_research",
            ],
        ),
        client(
            "Sahyadri Finserv",
            "IN",
            "INR",
            "Asia/Kolkata",
            "sahyadri-finserv.example",
            (10, 19),
            &[
                "bookkeeping",
                "provident_fund_gratuity",
                "insurance_processing",
                "scanning_ocr_indexing",
            ],
        ),
        client(
            "Kaveri Health Network",
            "IN",
            "INR",
            "Asia/Kolkata",
            "kaveri-health.example",
            (9, 18),
            &[
                "medical_services",
                "data_entry",
                "form_processing",
                "scanning_ocr_indexing",
            ],
        ),
    ]
}

fn sites(first_day: Date, days: u32) -> Vec<DemoSite> {
    let site = |name, time_zone, country| DemoSite {
        name,
        time_zone,
        country,
        holidays: holidays(country, first_day, days),
    };
    vec![
        site("Bengaluru", "Asia/Kolkata", "IN"),
        site("Pune", "Asia/Kolkata", "IN"),
        site("Gurugram", "Asia/Kolkata", "IN"),
        site("Manila", "Asia/Manila", "PH"),
    ]
}

/// The shift a client's work needs, by the client's country.
fn shift_for(country: &str) -> ShiftKind {
    match country {
        "US" => ShiftKind::UsNight,
        "GB" | "DE" => ShiftKind::Europe,
        _ => ShiftKind::Day,
    }
}

const MANILA: usize = 3;

/// Gives a worker what one line's human steps ask for.
fn train(worker: &mut DemoWorker, pack: &Pack, rng: &mut Rng) {
    let bonus = |rng: &mut Rng, designation: Designation| -> u8 {
        match designation {
            Designation::Analyst => rng.below(2) as u8,
            Designation::SeniorAnalyst => 1 + rng.below(2) as u8,
            Designation::TeamLead | Designation::Manager => 2 + rng.below(2) as u8,
        }
    };
    for step in pack.steps.iter().filter(|s| s.kind == StepKind::Human) {
        let req = &step.requirements;
        let held = req
            .qualifications_any
            .iter()
            .any(|q| worker.qualifications.iter().any(|h| h == q.code()));
        if !held && !req.qualifications_any.is_empty() {
            let pick = match rng.chance(0.6) {
                true => req.qualifications_any[0],
                false => req.qualifications_any[rng.below(req.qualifications_any.len())],
            };
            worker.qualifications.push(pick.code().to_string());
        }
        for skill in &req.skills {
            let level = (skill.min_level + bonus(rng, worker.designation)).min(10);
            match worker
                .skills
                .iter_mut()
                .find(|(name, _)| *name == skill.skill)
            {
                Some((_, held)) => *held = (*held).max(level),
                None => worker.skills.push((skill.skill.clone(), level)),
            }
        }
        for language in &req.languages {
            if !worker.languages.contains(language) {
                worker.languages.push(language.clone());
            }
        }
    }
    if !worker.lines.contains(&pack.service_line) {
        worker.lines.push(pack.service_line);
    }
}

/// The demo firm for a run of `days` from `first_day`. `packs` holds one pack per service line.
pub fn firm(seed: u64, packs: &[&Pack], first_day: Date, days: u32) -> DemoFirm {
    let mut rng = Rng::new(seed ^ 0xf1_4a_11);
    let sites = sites(first_day, days);
    let clients = clients(first_day, days);
    let pack_of = |line: ServiceLine| packs.iter().find(|p| p.service_line == line).copied();
    let mut names = NamePool::new();
    let mut workers: Vec<DemoWorker> = Vec::new();
    let new_worker = |rng: &mut Rng,
                      names: &mut NamePool,
                      shift: ShiftKind,
                      designation: Designation,
                      days_worked: Vec<Weekday>| {
        let site = match shift {
            ShiftKind::ManilaNight => MANILA,
            _ => rng.below(3),
        };
        let (name, languages) = match site {
            MANILA => (
                names.draw(rng, FILIPINO_GIVEN, FILIPINO_FAMILY),
                vec!["en".to_string(), "fil".to_string()],
            ),
            _ => {
                let regional = ["kn", "mr", "hi"][site];
                let mut languages = vec!["en".to_string(), "hi".to_string()];
                if regional != "hi" && rng.chance(0.6) {
                    languages.push(regional.to_string());
                }
                (names.draw(rng, INDIAN_GIVEN, INDIAN_FAMILY), languages)
            }
        };
        let (low, high) = match designation {
            Designation::Analyst => (0.01, 0.05),
            Designation::SeniorAnalyst => (0.005, 0.025),
            Designation::TeamLead | Designation::Manager => (0.003, 0.015),
        };
        DemoWorker {
            name,
            site,
            designation,
            lines: Vec::new(),
            qualifications: Vec::new(),
            skills: Vec::new(),
            languages,
            shift,
            weekdays: days_worked,
            capacity_units: CAPACITY_UNITS,
            days_off: BTreeSet::new(),
            error_rate: low + (high - low) * rng.unit(),
            response_seconds: 8.0 + 30.0 * rng.unit(),
            growing: None,
            conflict: None,
        }
    };
    let weekdays = karya_core::calendar::MONDAY_TO_FRIDAY;
    let tuesday_to_saturday = [
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
    ];

    // Teams: each line's team works the shifts its clients' hours need.
    for line in ServiceLine::ALL {
        let Some(pack) = pack_of(line) else { continue };
        let shifts: Vec<ShiftKind> = clients
            .iter()
            .filter(|c| c.lines.contains(&line))
            .map(|c| shift_for(c.country))
            .collect();
        let size = match line.category() {
            Category::Kpo => KPO_TEAM,
            Category::Bpo => BPO_TEAM,
        };
        for n in 0..size {
            let designation = match n {
                0 => Designation::TeamLead,
                1 | 2 => Designation::SeniorAnalyst,
                _ => Designation::Analyst,
            };
            let mut shift = shifts[n % shifts.len().max(1)];
            if shift == ShiftKind::UsNight && rng.chance(0.3) {
                shift = ShiftKind::ManilaNight;
            }
            let days_worked = match line.category() == Category::Bpo && rng.chance(0.15) {
                true => tuesday_to_saturday.to_vec(),
                false => weekdays.to_vec(),
            };
            let mut worker = new_worker(&mut rng, &mut names, shift, designation, days_worked);
            train(&mut worker, pack, &mut rng);
            workers.push(worker);
        }
    }
    // Cross-training: some analysts also work a second line of their category, on its shift
    // only when the two lines' clients share hours (the worker keeps their own shift).
    for worker in workers.iter_mut() {
        if worker.designation == Designation::TeamLead || !rng.chance(CROSS_TRAINED) {
            continue;
        }
        let home = worker.lines[0];
        let candidates: Vec<ServiceLine> = ServiceLine::ALL
            .into_iter()
            .filter(|l| *l != home && l.category() == home.category())
            .filter(|l| {
                clients
                    .iter()
                    .filter(|c| c.lines.contains(l))
                    .any(|c| same_hours(shift_for(c.country), worker.shift))
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let second = candidates[rng.below(candidates.len())];
        if let Some(pack) = pack_of(second) {
            train(worker, pack, &mut rng);
        }
    }
    // Managers: each over a group of lines, qualified to review all of them.
    let lines: Vec<ServiceLine> = ServiceLine::ALL
        .into_iter()
        .filter(|l| pack_of(*l).is_some())
        .collect();
    for m in 0..MANAGERS {
        let group: Vec<ServiceLine> = lines
            .iter()
            .enumerate()
            .filter(|(idx, _)| idx % MANAGERS == m)
            .map(|(_, l)| *l)
            .collect();
        let shift = clients
            .iter()
            .find(|c| group.iter().any(|l| c.lines.contains(l)))
            .map_or(ShiftKind::Day, |c| shift_for(c.country));
        let mut worker = new_worker(
            &mut rng,
            &mut names,
            shift,
            Designation::Manager,
            weekdays.to_vec(),
        );
        for line in group {
            if let Some(pack) = pack_of(line) {
                train(&mut worker, pack, &mut rng);
            }
        }
        workers.push(worker);
    }
    // Growth: a third of the analysts are building one of their skills.
    for worker in &mut workers {
        if worker.designation == Designation::Analyst
            && !worker.skills.is_empty()
            && rng.chance(GROWING)
        {
            worker.growing = Some(worker.skills[rng.below(worker.skills.len())].0.clone());
        }
    }
    // Conflicts of interest: some IP and legal staff once worked for a client's competitor.
    let sensitive = [line("ip_research"), line("legal_services")];
    let buyers: Vec<usize> = (0..clients.len())
        .filter(|&c| clients[c].lines.iter().any(|l| sensitive.contains(l)))
        .collect();
    for worker in &mut workers {
        if !worker.lines.iter().any(|l| sensitive.contains(l)) || !rng.chance(CONFLICTED) {
            continue;
        }
        worker.conflict = Some(buyers[rng.below(buyers.len())]);
    }
    // Days off: site holidays and unplanned absences.
    for worker in &mut workers {
        let site = &sites[worker.site];
        for day in 0..=days {
            let Ok(date) = first_day.checked_add(jiff::Span::new().days(i64::from(day))) else {
                continue;
            };
            if site.holidays.contains(&date)
                || (worker.weekdays.contains(&date.weekday()) && rng.chance(ABSENCE_RATE))
            {
                worker.days_off.insert(date);
            }
        }
    }

    // Engagements, sized to keep each line's team busy but not swamped.
    let mut engagements = Vec::new();
    for (client_idx, client) in clients.iter().enumerate() {
        for line in &client.lines {
            let Some(pack) = pack_of(*line) else { continue };
            let team_hours: f64 = workers
                .iter()
                .filter(|w| w.lines.contains(line))
                .map(|w| 8.0 * 5.0 / 7.0 / w.lines.len() as f64)
                .sum();
            let item_hours: f64 = pack
                .steps
                .iter()
                .filter(|s| s.kind == StepKind::Human)
                .map(|s| f64::from(s.expected_minutes) / 60.0)
                .sum::<f64>()
                * 1.2;
            let sharing = clients.iter().filter(|c| c.lines.contains(line)).count() as f64;
            let per_day =
                TARGET_UTILISATION * team_hours * 7.0 / 5.0 / item_hours.max(0.1) / sharing;
            engagements.push(Engagement {
                client: client_idx,
                line: *line,
                name: line.name().to_string(),
                items_per_day: per_day.clamp(ITEMS_PER_DAY_MIN, ITEMS_PER_DAY_MAX),
            });
        }
    }
    DemoFirm {
        sites,
        clients,
        engagements,
        workers,
    }
}

/// Whether two shifts overlap enough for one person to serve both kinds of client.
fn same_hours(a: ShiftKind, b: ShiftKind) -> bool {
    let night = |k: ShiftKind| matches!(k, ShiftKind::UsNight | ShiftKind::ManilaNight);
    a == b || (night(a) && night(b))
}
