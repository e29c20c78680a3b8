//! Writes the demo firm into a store through its ordinary use cases: sites, clients with their
//! business calendars, engagements set up from their packs (SLA terms, pricing, QA policy,
//! decision types, routing), workers with routing profiles, qualifications and skills, and one
//! user per role.

use anyhow::Context;
use jiff::civil::time;
use jiff::{SignedDuration, Timestamp};
use karya_core::billing::{CreditRule, ItemRate, Pricing};
use karya_core::calendar::Shift;
use karya_core::id::{CalendarId, ClientId, EngagementId, SiteId, WorkerId};
use karya_core::model::{Priority, Role, Site};
use karya_core::money::{Currency, Money};
use karya_core::pack::{self, StepKind};
use karya_core::qa::duty::ReviewerRequirements;
use karya_core::qa::gold::GoldPolicy;
use karya_core::qa::review::ReworkPolicy;
use karya_core::qa::sampling::SamplingPolicy;
use karya_core::routing::{Requirements, RoutingWorkflow, SkillRequirement, WorkflowStep};
use karya_core::service_line::{Category, ServiceLine};
use karya_core::sla::SlaTerms;
use karya_core::workforce::{
    Capacity, Qualification, ShiftBlock, ShiftPattern, Skill, WorkerProfile,
};
use karya_packs::{Catalog, LoadedPack};
use karya_sim::demo::{DemoFirm, DemoWorker};
use karya_store::{
    CalendarRef, CalendarSpec, EngagementSla, GrowthFlag, NewEngagement, NewUser, QaPolicy, Store,
    WorkerRouting,
};

use crate::demo::Ids;

/// Capacity units a task weighs, by how long its longest step runs: a long research step
/// takes a worker whole, a short transaction a fifth.
fn weight_for(expected_minutes: u32) -> u32 {
    match expected_minutes {
        0..=30 => 2,
        31..=120 => 3,
        121..=480 => 5,
        _ => 10,
    }
}

/// A client as written.
pub struct BuiltClient {
    pub id: ClientId,
}

/// An engagement as written, with what the simulation needs of it.
pub struct BuiltEngagement {
    pub id: EngagementId,
    pub client_id: ClientId,
    pub client: usize,
    pub line: ServiceLine,
    pub pack: &'static LoadedPack,
}

/// A worker as written.
pub struct BuiltWorker {
    pub id: WorkerId,
    pub profile: WorkerProfile,
}

/// The whole firm as written.
pub struct Built {
    pub sites: Vec<SiteId>,
    pub clients: Vec<BuiltClient>,
    pub engagements: Vec<BuiltEngagement>,
    pub workers: Vec<BuiltWorker>,
}

/// A demo login.
pub struct Login {
    pub role: Role,
    pub email: String,
    pub password: String,
    pub name: String,
    pub note: String,
}

fn zone(name: &str) -> anyhow::Result<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(name).with_context(|| format!("time zone {name} is not installed"))
}

fn currency(code: &str) -> Currency {
    match code {
        "USD" => Currency::USD,
        "GBP" => Currency::GBP,
        "EUR" => Currency::EUR,
        _ => Currency::INR,
    }
}

/// Hourly rate billed, in major units of the client's currency.
fn hourly_rate(currency: Currency) -> f64 {
    match currency.as_str() {
        "USD" => 32.0,
        "GBP" => 26.0,
        "EUR" => 30.0,
        _ => 1_900.0,
    }
}

/// How a line is sold: per item, except training (per hour delivered) and network
/// management (a dedicated team, per FTE-month).
fn pricing(line: ServiceLine, currency: Currency, rates: Vec<ItemRate>) -> Pricing {
    let minor = |major: f64| Money::new((major * 100.0).round() as i64, currency);
    match line {
        ServiceLine::TrainingAndConsultancy => Pricing::PerHour {
            rate: minor(hourly_rate(currency) * 1.5),
        },
        ServiceLine::NetworkManagement => Pricing::PerFteMonth {
            rate: minor(hourly_rate(currency) * 160.0),
            fte_milli: 2_000,
        },
        _ => Pricing::PerItem { rates },
    }
}

/// The qualification's usual issuer, so worker pages read true.
fn issuer(code: &str) -> &'static str {
    match code {
        "ca" => "Institute of Chartered Accountants of India",
        "cs" => "Institute of Company Secretaries of India",
        "cma" => "Institute of Cost Accountants of India",
        "cpc" => "AAPC",
        "ccs" | "cdip" => "AHIMA",
        "iii_licentiate" => "Insurance Institute of India",
        "patent_agent" => "Indian Patent Office",
        "bar_admission" => "Bar Council of India",
        "mbbs" | "md" | "bds" => "National Medical Commission register",
        "bpharm" | "mpharm" | "pharmd" => "Pharmacy Council of India register",
        "ccna" | "ccnp" => "Cisco",
        "itil" => "PeopleCert",
        "pmp" => "Project Management Institute",
        "cfa" => "CFA Institute",
        "mba" => "Indian Institute of Management",
        "phd" | "msc" | "mtech" => "Indian Institute of Science",
        "btech" | "bca" | "mca" => "Visvesvaraya Technological University",
        _ => "University of Mumbai",
    }
}

/// What an engagement's tasks require: the skills and languages every human step shares at
/// the level of the most demanding step (its team holds them all), and its expected handling
/// capped at a shift's worth (routing prefers a worker with that much of the shift left; what
/// is not done when a shift ends is handed over).
fn requirements(pack: &pack::Pack, weight: u32) -> Requirements {
    let human: Vec<&pack::Step> = pack
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Human)
        .collect();
    let first = human.first();
    let skills = first
        .map(|s| {
            s.requirements
                .skills
                .iter()
                .map(|r| SkillRequirement {
                    skill: r.skill.clone(),
                    level_min: r.min_level,
                    optional: false,
                })
                .collect()
        })
        .unwrap_or_default();
    let languages = first
        .map(|s| s.requirements.languages.clone())
        .unwrap_or_default();
    let expected = human.iter().map(|s| s.expected_minutes).max().unwrap_or(30);
    Requirements {
        skills,
        languages,
        ..Requirements::any(
            match pack.service_line.category() {
                Category::Kpo => "research",
                Category::Bpo => "transaction",
            },
            weight,
            SignedDuration::from_mins(i64::from(expected.min(240))),
        )
    }
}

/// How a task's requirements relax while it waits. Teams work in shifts that follow their
/// clients' hours, so a task that arrives overnight waits for the next shift rather than
/// escalating within the hour as the standard workflow would: each step lasts a shift.
fn workflow() -> RoutingWorkflow {
    let hours = |h| Some(SignedDuration::from_hours(h));
    let step = |name: &str, timeout| WorkflowStep {
        name: name.to_string(),
        drop_optional_skills: false,
        widen_sites: false,
        designation_min: None,
        escalate: false,
        timeout,
    };
    RoutingWorkflow {
        steps: vec![
            step("as_required", hours(10)),
            WorkflowStep {
                drop_optional_skills: true,
                ..step("drop_optional_skills", hours(6))
            },
            WorkflowStep {
                drop_optional_skills: true,
                widen_sites: true,
                ..step("widen_sites", hours(8))
            },
            WorkflowStep {
                drop_optional_skills: true,
                widen_sites: true,
                designation_min: Some(karya_core::model::Designation::TeamLead),
                ..step("offer_to_leads", hours(24))
            },
            WorkflowStep {
                escalate: true,
                ..step("escalate", None)
            },
        ],
    }
}

/// Writes the firm at `at` (a day before the history starts).
pub async fn write_firm(
    store: &Store,
    firm: &DemoFirm,
    catalog: &'static Catalog,
    ids: &mut Ids,
    at: Timestamp,
) -> anyhow::Result<Built> {
    let mut sites = Vec::new();
    for site in &firm.sites {
        let id = SiteId::from_uuid(ids.next(at));
        store
            .create_site(
                &Site {
                    id,
                    name: site.name.to_string(),
                    time_zone: site.time_zone.to_string(),
                    country: site.country.to_string(),
                },
                at,
            )
            .await?;
        sites.push(id);
    }
    let mut clients = Vec::new();
    let mut calendars = Vec::new();
    for client in &firm.clients {
        let id = ClientId::from_uuid(ids.next(at));
        store
            .create_client(id, client.name, currency(client.currency), at)
            .await?;
        let open = time(client.hours.0, 0, 0, 0);
        let close = time(client.hours.1, 0, 0, 0);
        let day = vec![Shift::new(open, close)];
        let calendar = CalendarSpec {
            id: CalendarId::from_uuid(ids.next(at)),
            name: format!("{} business days", client.country),
            time_zone: client.time_zone.to_string(),
            week: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                Vec::new(),
                Vec::new(),
            ],
            holidays: client.holidays.clone(),
            exceptions: Vec::new(),
        };
        store
            .tenant(id)
            .put_calendar(&calendar, "master services agreement", at)
            .await?;
        calendars.push(calendar.id);
        clients.push(BuiltClient { id });
    }
    let mut engagements = Vec::new();
    for engagement in &firm.engagements {
        let client = &firm.clients[engagement.client];
        let client_id = clients[engagement.client].id;
        let loaded = catalog
            .for_line(engagement.line)
            .next()
            .with_context(|| format!("no pack for {}", engagement.line))?;
        let pack = &loaded.pack;
        let tenant = store.tenant(client_id);
        let id = EngagementId::from_uuid(ids.next(at));
        tenant
            .create_engagement_from_pack(
                &NewEngagement {
                    id,
                    name: engagement.name.clone(),
                    service_line: engagement.line,
                },
                pack,
                at,
            )
            .await?;
        let money = currency(client.currency);
        let item_hours: f64 = pack
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .map(|s| f64::from(s.expected_minutes) / 60.0)
            .sum();
        let rates = Priority::ALL
            .iter()
            .map(|priority| {
                let factor = match priority {
                    Priority::Low => 0.9,
                    Priority::Normal => 1.0,
                    Priority::High => 1.25,
                    Priority::Urgent => 1.6,
                };
                let major = (item_hours * hourly_rate(money) * factor).max(1.0);
                ItemRate {
                    priority: *priority,
                    band: None,
                    price: Money::new((major * 100.0).round() as i64, money),
                }
            })
            .collect();
        let terms = pack
            .sla
            .iter()
            .map(|t| {
                (
                    t.priority,
                    SlaTerms {
                        first_response: SignedDuration::from_mins(i64::from(
                            t.first_response_minutes,
                        )),
                        resolution: SignedDuration::from_mins(i64::from(t.resolution_minutes)),
                        warning_pct: (t.warning_at.0 / 100).clamp(1, 99) as u8,
                        on_time_target_bp: 9_500,
                        accuracy_target_bp: u32::from(t.accuracy_target.0),
                    },
                )
            })
            .collect();
        tenant
            .set_engagement_sla(
                id,
                &EngagementSla {
                    calendar: CalendarRef::Client(calendars[engagement.client]),
                    terms,
                    pricing: pricing(engagement.line, money, rates),
                    credit_rule: Some(CreditRule {
                        per_point_bp: 200,
                        cap_bp: 1_000,
                    }),
                    accuracy_credit_rule: Some(CreditRule {
                        per_point_bp: 100,
                        cap_bp: 500,
                    }),
                },
                "terms of the statement of work",
                at,
            )
            .await?;
        let qa = &pack.qa;
        let initial = f64::from(qa.initial_review_rate.0) / 10_000.0;
        tenant
            .set_qa_policy(
                id,
                &QaPolicy {
                    // The pack's accuracy target; the demo's contracts settle for 80 %
                    // confidence, so that workers with a clean record leave full review
                    // within the two weeks, and a floor of a fifth of the pack's first rate.
                    sampling: SamplingPolicy {
                        error_target: 1.0 - f64::from(qa.target_accuracy.0) / 10_000.0,
                        confidence: (f64::from(qa.confidence.0) / 10_000.0).min(0.8),
                        min_checks: match initial >= 0.99 {
                            true => 10,
                            false => 3,
                        },
                        floor_rate: (initial * 0.2).clamp(0.03, 0.2),
                        checks_after_failure: 3,
                    },
                    reviewers: ReviewerRequirements {
                        min_designation: qa.min_reviewer,
                        qualification: None,
                    },
                    rework: match engagement.line.category() {
                        Category::Kpo => ReworkPolicy::SameMaker,
                        Category::Bpo => ReworkPolicy::AnotherWorker,
                    },
                    defect_categories: pack.defects.iter().map(|d| d.name.clone()).collect(),
                    gold: GoldPolicy::default(),
                },
                at,
            )
            .await?;
        let longest = pack
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::Human)
            .map(|s| s.expected_minutes)
            .max()
            .unwrap_or(30);
        let weight = weight_for(longest);
        tenant
            .set_engagement_routing(id, &requirements(pack, weight), &workflow(), at)
            .await?;
        engagements.push(BuiltEngagement {
            id,
            client_id,
            client: engagement.client,
            line: engagement.line,
            pack: loaded,
        });
    }
    let mut workers = Vec::new();
    for worker in &firm.workers {
        workers.push(write_worker(store, firm, worker, &sites, &clients, ids, at).await?);
    }
    Ok(Built {
        sites,
        clients,
        engagements,
        workers,
    })
}

async fn write_worker(
    store: &Store,
    firm: &DemoFirm,
    worker: &DemoWorker,
    sites: &[SiteId],
    clients: &[BuiltClient],
    ids: &mut Ids,
    at: Timestamp,
) -> anyhow::Result<BuiltWorker> {
    let id = WorkerId::from_uuid(ids.next(at));
    // Conflicts of interest: a patent searcher who worked on a client's competitor's filings
    // never sees that client's work.
    let excluded_clients: Vec<ClientId> = match worker.conflict {
        Some(client) => vec![clients[client].id],
        None => Vec::new(),
    };
    let site = &firm.sites[worker.site];
    store
        .create_worker(
            id,
            &worker.name,
            Some(sites[worker.site]),
            worker.designation,
            at,
        )
        .await?;
    let (start, length) = worker.shift.block();
    let shifts: Vec<ShiftBlock> = worker
        .weekdays
        .iter()
        .map(|weekday| ShiftBlock {
            weekday: *weekday,
            start,
            length,
        })
        .collect();
    store
        .set_worker_routing(
            id,
            &WorkerRouting {
                languages: worker.languages.clone(),
                time_zone: site.time_zone.to_string(),
                shifts: shifts.clone(),
                capacity_units: worker.capacity_units,
                excluded_clients: excluded_clients.clone(),
            },
            at,
        )
        .await?;
    let years = |n: i64| SignedDuration::from_hours(24 * 365 * n);
    let mut qualifications = Vec::new();
    for (n, code) in worker.qualifications.iter().enumerate() {
        let q = Qualification {
            kind: code.clone(),
            field: None,
            issuer: issuer(code).to_string(),
            valid_from: at - years(3 + n as i64),
            valid_until: None,
        };
        store.add_qualification(id, ids.next(at), &q, at).await?;
        qualifications.push(q);
    }
    let mut skills = Vec::new();
    for (name, level) in &worker.skills {
        let skill = Skill {
            name: name.clone(),
            level: *level,
        };
        let growing = match worker.growing.as_ref() == Some(name) {
            true => GrowthFlag::Growing,
            false => GrowthFlag::Settled,
        };
        store.set_skill(id, &skill, growing, at).await?;
        skills.push(skill);
    }
    let profile = WorkerProfile {
        id,
        site_id: Some(sites[worker.site]),
        designation: worker.designation,
        languages: worker.languages.clone(),
        qualifications,
        skills,
        growth_skills: worker.growing.iter().cloned().collect(),
        shift: ShiftPattern {
            time_zone: zone(site.time_zone)?,
            weekly: shifts,
            exceptions: Vec::new(),
            leave: Vec::new(),
            breaks: Vec::new(),
        },
        capacity: Capacity {
            units_max: worker.capacity_units,
            channels: Vec::new(),
        },
        excluded_clients,
        attributes: Vec::new(),
    };
    Ok(BuiltWorker { id, profile })
}

/// The demo's sign-ins: one per role, with known passwords.
pub fn logins(
    firm: &DemoFirm,
    lead: usize,
    worker: usize,
    reviewer: usize,
    client: usize,
) -> Vec<(Login, Option<usize>, Option<usize>)> {
    let person = |role: Role, email: String, name: &str, note: String| Login {
        role,
        email,
        password: format!("demo-{}-2026", role.code().replace('_', "-")),
        name: name.to_string(),
        note,
    };
    let c = &firm.clients[client];
    vec![
        (
            person(
                Role::Admin,
                "admin@karya.example".into(),
                "Firm Administrator",
                "sets up clients, engagements, workers and users".into(),
            ),
            None,
            None,
        ),
        (
            person(
                Role::Manager,
                "ops.manager@karya.example".into(),
                "Operations Manager",
                "watches queues, SLA risk and quality across clients".into(),
            ),
            None,
            None,
        ),
        (
            person(
                Role::Lead,
                "lead@karya.example".into(),
                &firm.workers[lead].name,
                format!("team lead, {}", firm.workers[lead].lines[0].name()),
            ),
            Some(lead),
            None,
        ),
        (
            person(
                Role::Worker,
                "worker@karya.example".into(),
                &firm.workers[worker].name,
                format!("analyst, {}", firm.workers[worker].lines[0].name()),
            ),
            Some(worker),
            None,
        ),
        (
            person(
                Role::Reviewer,
                "reviewer@karya.example".into(),
                &firm.workers[reviewer].name,
                format!("reviewer, {}", firm.workers[reviewer].lines[0].name()),
            ),
            Some(reviewer),
            None,
        ),
        (
            person(
                Role::ClientAdmin,
                format!("admin@{}", c.domain),
                "Client Administrator",
                c.name.to_string(),
            ),
            None,
            Some(client),
        ),
        (
            person(
                Role::ClientUser,
                format!("ops@{}", c.domain),
                "Client Operations",
                c.name.to_string(),
            ),
            None,
            Some(client),
        ),
        (
            person(
                Role::Auditor,
                "auditor@karya.example".into(),
                "Internal Auditor",
                "reads and verifies the audit trail".into(),
            ),
            None,
            None,
        ),
    ]
}

/// Writes the sign-ins (passwords hashed as the server hashes them).
pub async fn write_logins(
    store: &Store,
    built: &Built,
    logins: &[(Login, Option<usize>, Option<usize>)],
    ids: &mut Ids,
    at: Timestamp,
) -> anyhow::Result<()> {
    let auth = karya_server::auth::AuthState::default();
    for (login, worker, client) in logins {
        let hash = auth
            .hash_password(login.password.clone())
            .await
            .map_err(|err| anyhow::anyhow!("{}", err.message))?;
        store
            .create_user(
                &NewUser {
                    id: ids.next(at),
                    email: login.email.clone(),
                    name: login.name.clone(),
                    role: login.role,
                    client_id: client.map(|c| built.clients[c].id),
                    worker_id: worker.map(|w| built.workers[w].id),
                    password_hash: Some(hash),
                },
                at,
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use karya_core::model::Designation;
    use karya_sim::demo::ShiftKind;

    use super::*;

    fn firm(seed: u64) -> DemoFirm {
        let catalog = karya_packs::builtin().unwrap();
        let packs: Vec<&pack::Pack> = catalog.packs().iter().map(|l| &l.pack).collect();
        karya_sim::demo::firm(seed, &packs, jiff::civil::date(2026, 3, 1), 15)
    }

    #[test]
    fn every_line_is_sold_and_staffed_by_people_its_pack_accepts() {
        let catalog = karya_packs::builtin().unwrap();
        let firm = firm(1);
        assert!(
            (140..=160).contains(&firm.workers.len()),
            "{}",
            firm.workers.len()
        );
        assert_eq!(firm.clients.len(), 8);
        let countries: BTreeSet<&str> = firm.clients.iter().map(|c| c.country).collect();
        assert_eq!(
            countries,
            BTreeSet::from(["DE", "GB", "IN", "US"]),
            "clients in the US, the UK, Germany and India"
        );
        for line in ServiceLine::ALL {
            assert!(
                firm.engagements.iter().any(|e| e.line == line),
                "{line} has no engagement"
            );
            let pack = &catalog.for_line(line).next().unwrap().pack;
            let team = firm.team_of(line);
            assert!(team.len() >= 4, "{line}: team of {}", team.len());
            for step in pack.steps.iter().filter(|s| s.kind == StepKind::Human) {
                let req = &step.requirements;
                for &w in &team {
                    let worker = &firm.workers[w];
                    let who = format!("{line}/{}: {}", step.name, worker.name);
                    if !req.qualifications_any.is_empty() {
                        assert!(
                            req.qualifications_any
                                .iter()
                                .any(|q| worker.qualifications.iter().any(|h| h == q.code())),
                            "{who} lacks a qualification of {:?}",
                            req.qualifications_any
                        );
                    }
                    for skill in &req.skills {
                        let level = worker
                            .skills
                            .iter()
                            .find(|(name, _)| *name == skill.skill)
                            .map_or(0, |(_, level)| *level);
                        assert!(
                            level >= skill.min_level,
                            "{who}: {} at {level}",
                            skill.skill
                        );
                    }
                    for language in &req.languages {
                        assert!(worker.languages.contains(language), "{who}: {language}");
                    }
                }
                // Someone on the team may take the step's rank-bound work.
                if let Some(min) = req.min_designation {
                    assert!(
                        team.iter().any(|&w| firm.workers[w].designation >= min),
                        "{line}/{}: nobody at {min:?}",
                        step.name
                    );
                }
            }
            assert!(
                team.iter()
                    .any(|&w| firm.workers[w].designation >= pack.qa.min_reviewer),
                "{line}: nobody may review"
            );
        }
    }

    #[test]
    fn shifts_follow_the_clients_hours_and_the_mix_is_the_industrys() {
        let firm = firm(1);
        // US clients are served at night in India or Manila, UK and German ones in the
        // Indian afternoon.
        for (idx, engagement) in firm.engagements.iter().enumerate() {
            let country = firm.clients[engagement.client].country;
            let team = firm.team_of(engagement.line);
            let wanted: &[ShiftKind] = match country {
                "US" => &[ShiftKind::UsNight, ShiftKind::ManilaNight],
                "GB" | "DE" => &[ShiftKind::Europe],
                _ => &[ShiftKind::Day],
            };
            assert!(
                team.iter()
                    .any(|&w| wanted.contains(&firm.workers[w].shift)),
                "engagement {idx} ({country}, {}) has nobody on its clients' hours",
                engagement.line
            );
        }
        let holding = |codes: &[&str]| {
            firm.workers
                .iter()
                .filter(|w| w.qualifications.iter().any(|q| codes.contains(&q.as_str())))
                .count()
        };
        for (what, codes) in [
            ("engineers", &["btech", "mtech"][..]),
            ("chartered accountants", &["ca", "cpa", "acca"][..]),
            ("doctors", &["mbbs", "md"][..]),
            ("pharmacists", &["bpharm", "mpharm", "pharmd"][..]),
            ("lawyers", &["llb", "llm", "bar_admission"][..]),
            ("MBAs", &["mba"][..]),
            ("PhDs", &["phd"][..]),
            ("certified coders", &["cpc", "ccs"][..]),
        ] {
            assert!(holding(codes) > 0, "the firm has no {what}");
        }
        let managers = firm
            .workers
            .iter()
            .filter(|w| w.designation == Designation::Manager)
            .count();
        assert!(managers >= 4, "{managers} managers");
        assert!(
            firm.workers.iter().any(|w| w.site == 3),
            "someone works offshore in Manila"
        );
        assert!(
            firm.workers.iter().any(|w| !w.days_off.is_empty()),
            "absences and holidays"
        );
    }

    #[test]
    fn a_seed_gives_one_firm() {
        assert_eq!(firm(4), firm(4));
        assert_ne!(firm(4).workers, firm(5).workers);
    }
}
