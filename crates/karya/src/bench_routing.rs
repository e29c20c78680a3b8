//! `karya bench routing`: a synthetic firm loaded into the routing engine, and the latency of
//! its decisions.
//!
//! The firm is generated from a seed: workers spread over sites with skills, qualifications
//! (a few lapsed), languages, shifts that cover the measured moment, capacities and conflicts;
//! a backlog of open tasks drawn from requirement templates (an engagement's step is one
//! template, so tasks share requirements as they do in production). Then it measures, on the
//! real engine: routing one new task (push), *Get next* (pull), and a burst of decisions. The
//! last line printed is one JSON object with the figures. It measures; it asserts nothing.

use std::sync::Arc;
use std::time::Instant;

use jiff::civil::Time;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{ClientId, EngagementId, SiteId, TaskId, WorkerId};
use karya_core::model::{Designation, Priority};
use karya_core::routing::{
    Effect, OpenTask, Requirements, Router, RoutingConfig, SkillRequirement,
};
use karya_core::workforce::{
    Capacity, ChannelCap, Presence, Qualification, ShiftPattern, Skill, WorkerProfile,
};

/// What to generate and how much to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub workers: usize,
    pub open_tasks: usize,
    pub seed: u64,
    pub skills: usize,
    pub qualification_kinds: usize,
    pub sites: usize,
    /// Requirement templates (engagement steps) the tasks are drawn from.
    pub templates: usize,
    /// Timed samples of each single-decision measurement.
    pub samples: usize,
    /// Decisions in the burst.
    pub burst: usize,
}

impl Default for BenchOptions {
    fn default() -> BenchOptions {
        BenchOptions {
            workers: 15_000,
            open_tasks: 500_000,
            seed: 1,
            skills: 50,
            qualification_kinds: 12,
            sites: 3,
            templates: 2_000,
            samples: 5_000,
            burst: 20_000,
        }
    }
}

/// A small deterministic generator (SplitMix64): the firm depends on the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn roll(&mut self) -> u16 {
        (self.next() % 1000) as u16
    }
}

const QUALIFICATION_KINDS: [&str; 12] = [
    "ca",
    "cpa",
    "bar_admission",
    "llb",
    "mbbs",
    "md",
    "bpharm",
    "certified_medical_coder",
    "btech",
    "phd",
    "mba",
    "cfa",
];
const LANGUAGES: [&str; 6] = ["en", "hi", "de", "fr", "es", "ja"];

fn uuid(rng: &mut Rng) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(rng.next(), rng.next())
}

struct Firm {
    now: Timestamp,
    sites: Vec<SiteId>,
    clients: Vec<ClientId>,
    templates: Vec<(ClientId, EngagementId, Arc<Requirements>)>,
    worker_ids: Vec<WorkerId>,
}

/// Runs the benchmark, printing progress and, last, one JSON line.
pub fn run(options: &BenchOptions) -> anyhow::Result<()> {
    anyhow::ensure!(options.workers > 0, "--workers must be at least 1");
    anyhow::ensure!(
        options.qualification_kinds <= QUALIFICATION_KINDS.len(),
        "at most {} qualification kinds",
        QUALIFICATION_KINDS.len()
    );
    let mut rng = Rng(options.seed);
    let started = Instant::now();
    let (mut router, firm) = build(options, &mut rng);
    println!(
        "built {} workers, {} open tasks ({} templates) in {:.1}s",
        router.n_workers(),
        router.n_tasks(),
        firm.templates.len(),
        started.elapsed().as_secs_f64()
    );

    // Push: route one new task, then close it so the firm stays in the same state.
    let mut route_us = Vec::with_capacity(options.samples);
    let mut offered = 0usize;
    for _ in 0..options.samples {
        let task = new_task(&firm, &mut rng, firm.now);
        let task_id = task.id;
        let roll = rng.roll();
        let t0 = Instant::now();
        let effect = router.add_task(task, firm.now, roll)?;
        route_us.push(t0.elapsed().as_secs_f64() * 1e6);
        offered += usize::from(matches!(effect, Effect::Offer { .. }));
        router.close_task(task_id)?;
    }
    println!("routed {} new tasks ({offered} offered)", options.samples);

    // Pull: a random worker asks for the next task; the assignment is then finished.
    let mut get_next_us = Vec::with_capacity(options.samples);
    let mut assigned = 0usize;
    for _ in 0..options.samples {
        let worker_id = firm.worker_ids[rng.below(firm.worker_ids.len())];
        let roll = rng.roll();
        let t0 = Instant::now();
        let effect = router.get_next(worker_id, firm.now, roll)?;
        get_next_us.push(t0.elapsed().as_secs_f64() * 1e6);
        if let Some(Effect::Assign { task_id, .. }) = effect {
            assigned += 1;
            router.close_task(task_id)?;
        }
    }
    println!(
        "served {} get-next requests ({assigned} assigned)",
        options.samples
    );

    // Burst: new tasks arrive back to back and stay where they are routed.
    let burst: Vec<OpenTask> = (0..options.burst)
        .map(|_| new_task(&firm, &mut rng, firm.now))
        .collect();
    let rolls: Vec<u16> = (0..options.burst).map(|_| rng.roll()).collect();
    let t0 = Instant::now();
    let mut burst_offers = 0usize;
    for (task, roll) in burst.into_iter().zip(rolls) {
        let effect = router.add_task(task, firm.now, roll)?;
        burst_offers += usize::from(matches!(effect, Effect::Offer { .. }));
    }
    let burst_s = t0.elapsed().as_secs_f64();
    let decisions_per_s = options.burst as f64 / burst_s.max(1e-9);
    println!(
        "burst of {} decisions in {burst_s:.3}s ({burst_offers} offers)",
        options.burst
    );

    let route_p50 = percentile(&mut route_us, 0.50);
    let route_p99 = percentile(&mut route_us, 0.99);
    let get_next_p50 = percentile(&mut get_next_us, 0.50);
    let get_next_p99 = percentile(&mut get_next_us, 0.99);
    let peak_rss_mib = peak_rss_kib().map(|kib| kib as f64 / 1024.0);
    let report = serde_json::json!({
        "workers": options.workers,
        "open_tasks": options.open_tasks,
        "seed": options.seed,
        "skills": options.skills,
        "qualification_kinds": options.qualification_kinds,
        "sites": options.sites,
        "templates": firm.templates.len(),
        "samples": options.samples,
        "route_p50_us": round(route_p50),
        "route_p99_us": round(route_p99),
        "get_next_p50_us": round(get_next_p50),
        "get_next_p99_us": round(get_next_p99),
        "decisions_per_s": decisions_per_s.round(),
        "peak_rss_mib": peak_rss_mib.map(round),
    });
    println!("{report}");
    Ok(())
}

fn build(options: &BenchOptions, rng: &mut Rng) -> (Router, Firm) {
    let now: Timestamp = "2026-03-02T09:00:00Z".parse().expect("valid timestamp");
    let sites: Vec<SiteId> = (0..options.sites.max(1))
        .map(|_| SiteId::from_uuid(uuid(rng)))
        .collect();
    // Site time zones: India, Europe, the Americas, and round again.
    let offsets = [5 * 3600 + 1800, 3600, -5 * 3600];
    let zones: Vec<TimeZone> = (0..sites.len())
        .map(|i| TimeZone::fixed(Offset::from_seconds(offsets[i % 3]).expect("valid offset")))
        .collect();
    let skills: Vec<String> = (0..options.skills.max(1))
        .map(|i| format!("skill_{i:02}"))
        .collect();
    let kinds = &QUALIFICATION_KINDS[..options.qualification_kinds];
    let clients: Vec<ClientId> = (0..200).map(|_| ClientId::from_uuid(uuid(rng))).collect();

    let mut router = Router::new(RoutingConfig::default());
    let mut worker_ids = Vec::with_capacity(options.workers);
    for _ in 0..options.workers {
        let site_idx = rng.below(sites.len());
        let zone = zones[site_idx].clone();
        // A 9-hour shift that began 1 to 6 hours before `now`, in local time.
        let local = now.to_zoned(zone.clone());
        let began = local.time().hour() as i64 - 1 - rng.below(6) as i64;
        let start = Time::new(began.rem_euclid(24) as i8, 0, 0, 0).expect("valid time");
        let shift = ShiftPattern::daily(zone, start, SignedDuration::from_hours(9));
        let n_skills = 2 + rng.below(4);
        let mut worker_skills: Vec<Skill> = Vec::with_capacity(n_skills);
        while worker_skills.len() < n_skills {
            let name = &skills[rng.below(skills.len())];
            if worker_skills.iter().all(|s| &s.name != name) {
                worker_skills.push(Skill {
                    name: name.clone(),
                    level: 1 + rng.below(10) as u8,
                });
            }
        }
        let growth_skills = match rng.chance(20) {
            true => vec![worker_skills[0].name.clone()],
            false => Vec::new(),
        };
        let qualifications = (0..rng.below(3))
            .map(|_| {
                let lapsed = rng.chance(5);
                Qualification {
                    kind: kinds[rng.below(kinds.len())].to_string(),
                    field: None,
                    issuer: "board".into(),
                    valid_from: "2015-01-01T00:00:00Z".parse().expect("valid timestamp"),
                    valid_until: Some(match lapsed {
                        true => now - SignedDuration::from_hours(24),
                        false => now + SignedDuration::from_hours(24 * 365),
                    }),
                }
            })
            .collect();
        let mut languages = vec!["en".to_string()];
        if rng.chance(40) {
            languages.push(LANGUAGES[1 + rng.below(LANGUAGES.len() - 1)].to_string());
        }
        let designation = match rng.below(20) {
            0 => Designation::Manager,
            1..=2 => Designation::TeamLead,
            3..=8 => Designation::SeniorAnalyst,
            _ => Designation::Analyst,
        };
        let excluded_clients = match rng.chance(2) {
            true => vec![clients[rng.below(clients.len())]],
            false => Vec::new(),
        };
        let profile = WorkerProfile {
            id: WorkerId::from_uuid(uuid(rng)),
            site_id: Some(sites[site_idx]),
            designation,
            languages,
            qualifications,
            skills: worker_skills,
            growth_skills,
            shift,
            capacity: Capacity {
                units_max: 10,
                channels: vec![ChannelCap {
                    channel: "ticket".into(),
                    units_max: 10,
                }],
            },
            excluded_clients,
            attributes: Vec::new(),
        };
        let worker_id = profile.id;
        router.upsert_worker(profile, now, rng.roll());
        router
            .set_presence(worker_id, Presence::Available, now)
            .expect("worker just added");
        worker_ids.push(worker_id);
    }

    let templates: Vec<(ClientId, EngagementId, Arc<Requirements>)> = (0..options.templates)
        .map(|_| {
            let (channel, weight, handling_mins) = match rng.chance(20) {
                true => ("research", 10, 60 + rng.below(180) as i64),
                false => ("ticket", 2, 5 + rng.below(25) as i64),
            };
            let mut req =
                Requirements::any(channel, weight, SignedDuration::from_mins(handling_mins));
            if rng.chance(50) {
                req.qualifications = vec![kinds[rng.below(kinds.len())].to_string()];
            }
            req.skills = (0..1 + rng.below(2))
                .map(|i| SkillRequirement {
                    skill: skills[rng.below(skills.len())].clone(),
                    level_min: 2 + rng.below(5) as u8,
                    optional: i > 0,
                })
                .collect();
            if rng.chance(10) {
                req.languages = vec![LANGUAGES[1 + rng.below(LANGUAGES.len() - 1)].to_string()];
            }
            if rng.chance(30) {
                req.allowed_sites = Some(vec![sites[rng.below(sites.len())]]);
            } else if rng.chance(30) {
                req.home_sites = vec![sites[rng.below(sites.len())]];
            }
            (
                clients[rng.below(clients.len())],
                EngagementId::from_uuid(uuid(rng)),
                Arc::new(req),
            )
        })
        .collect();
    let firm = Firm {
        now,
        sites,
        clients,
        templates,
        worker_ids,
    };
    for _ in 0..options.open_tasks {
        let created = now - SignedDuration::from_mins(rng.below(600) as i64);
        let task = new_task(&firm, rng, created);
        router
            .enqueue_task(task, created)
            .expect("fresh ids do not collide");
    }
    debug_assert!(!firm.sites.is_empty() && !firm.clients.is_empty());
    (router, firm)
}

fn new_task(firm: &Firm, rng: &mut Rng, created: Timestamp) -> OpenTask {
    let (client_id, engagement_id, requirements) =
        firm.templates[rng.below(firm.templates.len())].clone();
    let priority = Priority::ALL[rng.below(Priority::ALL.len())];
    let preferred_worker = match rng.chance(10) {
        true => Some(firm.worker_ids[rng.below(firm.worker_ids.len())]),
        false => None,
    };
    OpenTask {
        id: TaskId::from_uuid(uuid(rng)),
        client_id,
        engagement_id,
        priority,
        created_at: created,
        due_at: Some(created + SignedDuration::from_hours(2 + rng.below(46) as i64)),
        requirements,
        preferred_worker,
        excluded_workers: Vec::new(),
        attributes: Vec::new(),
        step: String::new(),
        service_line: None,
    }
}

fn percentile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    let idx = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[idx]
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Peak resident set size (VmHWM) in KiB, from `/proc/self/status` (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
