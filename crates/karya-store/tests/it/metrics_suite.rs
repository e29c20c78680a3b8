//! Conformance tests of what SLA reports and invoices read: site calendars shared by several
//! clients' engagements, SLA clocks started by bulk intake, the facts of a period (per worker,
//! with rostered time and leave) and accuracy credits.

use jiff::civil::{time, Weekday};
use jiff::{SignedDuration, Timestamp};
use karya_core::billing::{CreditRule, ItemRate, Pricing};
use karya_core::calendar::{Calendar, Shift};
use karya_core::id::{
    AssignmentId, CalendarId, ClientId, EngagementId, SiteId, TaskId, WorkItemId, WorkerId,
};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::metrics::{self, Dimension, GroupKey};
use karya_core::model::{Designation, Priority, Site};
use karya_core::money::{Currency, Money};
use karya_core::qa::review::Verdict;
use karya_core::qa::stats::wilson;
use karya_core::service_line::ServiceLine;
use karya_core::sla::SlaTerms;
use karya_core::workforce::{Leave, ShiftBlock};
use karya_store::{
    CalendarRef, CalendarSpec, EngagementSla, ImportOutcome, NewEngagement, NewTask, NewWorkItem,
    StoreError, Tenant, WorkerRouting, CLOCK_START_BATCH,
};

use crate::harness::TestDb;
use crate::qa_suite::{fields, review, wrong_value};
use crate::sla_suite::at;

fn uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

fn weekdays() -> Vec<Weekday> {
    vec![
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ]
}

fn site_calendar(site_id: SiteId, holidays: Vec<jiff::civil::Date>) -> CalendarSpec {
    let weekly = Calendar::weekly(
        jiff::tz::TimeZone::UTC,
        &weekdays(),
        &[Shift::new(time(9, 0, 0, 0), time(17, 0, 0, 0))],
    );
    CalendarSpec {
        id: CalendarId::from_uuid(*site_id.as_uuid()),
        name: "Pune delivery centre".into(),
        time_zone: "UTC".into(),
        week: weekly.week,
        holidays,
        exceptions: vec![],
    }
}

fn engagement_sla(calendar: CalendarRef, accuracy_credit: Option<CreditRule>) -> EngagementSla {
    EngagementSla {
        calendar,
        terms: vec![(
            Priority::Normal,
            SlaTerms {
                first_response: SignedDuration::from_hours(2),
                resolution: SignedDuration::from_hours(8),
                warning_pct: 75,
                on_time_target_bp: 9_500,
                accuracy_target_bp: 9_800,
            },
        )],
        pricing: Pricing::PerItem {
            rates: vec![ItemRate {
                priority: Priority::Normal,
                band: None,
                price: Money::new(40_000, Currency::INR),
            }],
        },
        credit_rule: None,
        accuracy_credit_rule: accuracy_credit,
    }
}

async fn client_with_engagement(db: &TestDb, name: &str) -> (Tenant, EngagementId) {
    let client_id = ClientId::from_uuid(uuid());
    db.store
        .create_client(
            client_id,
            &format!("{name} {client_id}"),
            Currency::INR,
            at("01T00:00"),
        )
        .await
        .unwrap();
    let tenant = db.store.tenant(client_id);
    let engagement_id = EngagementId::from_uuid(uuid());
    tenant
        .create_engagement(
            &NewEngagement {
                id: engagement_id,
                name: "claims".into(),
                service_line: ServiceLine::InsuranceProcessing,
            },
            at("01T00:00"),
        )
        .await
        .unwrap();
    (tenant, engagement_id)
}

async fn site(db: &TestDb, name: &str) -> SiteId {
    let id = SiteId::from_uuid(uuid());
    db.store
        .create_site(
            &Site {
                id,
                name: format!("{name} {id}"),
                time_zone: "UTC".into(),
                country: "IN".into(),
            },
            at("01T00:00"),
        )
        .await
        .unwrap();
    id
}

async fn received(tenant: &Tenant, engagement_id: EngagementId, when: &str) -> WorkItemId {
    let id = WorkItemId::from_uuid(uuid());
    tenant
        .create_work_item(
            &NewWorkItem {
                id,
                engagement_id,
                external_ref: None,
                title: "claim".into(),
                priority: Priority::Normal,
                input: "{}".into(),
            },
            at(when),
        )
        .await
        .unwrap();
    id
}

fn due(state: Option<karya_store::SlaState>) -> String {
    state
        .and_then(|s| s.resolution.due_at)
        .map(|t| t.to_string())
        .unwrap_or_else(|| "-".into())
}

/// Two clients' engagements run their clocks on one site's calendar; a holiday added to it
/// recomputes both clients' open items in one change, each in its own chain.
pub async fn site_calendar_clocks_engagements_of_several_clients(db: &TestDb) {
    let pune = site(db, "Pune").await;
    let (first, first_engagement) = client_with_engagement(db, "Acme").await;
    let (second, second_engagement) = client_with_engagement(db, "Globex").await;
    // No calendar for the site yet: the engagement cannot name it.
    let refused = first
        .set_engagement_sla(
            first_engagement,
            &engagement_sla(CalendarRef::Site(pune), None),
            "contract",
            at("01T00:00"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    let report = db
        .store
        .put_site_calendar(pune, &site_calendar(pune, vec![]), "opened", at("01T00:00"))
        .await
        .unwrap();
    assert_eq!(report.items, 0);
    assert_eq!(
        db.store.site_calendar(pune).await.unwrap(),
        site_calendar(pune, vec![])
    );
    for (tenant, engagement_id) in [(&first, first_engagement), (&second, second_engagement)] {
        tenant
            .set_engagement_sla(
                engagement_id,
                &engagement_sla(CalendarRef::Site(pune), None),
                "contract",
                at("01T00:00"),
            )
            .await
            .unwrap();
        assert_eq!(
            tenant
                .engagement_sla(engagement_id)
                .await
                .unwrap()
                .unwrap()
                .calendar,
            CalendarRef::Site(pune)
        );
    }
    // Monday 14:00 with 8 business hours: due Tuesday 14:00.
    let a = received(&first, first_engagement, "02T14:00").await;
    let b = received(&second, second_engagement, "02T15:00").await;
    assert_eq!(
        due(first.sla_state(a).await.unwrap()),
        "2026-11-03T14:00:00Z"
    );
    assert_eq!(
        due(second.sla_state(b).await.unwrap()),
        "2026-11-03T15:00:00Z"
    );

    // Tuesday becomes a holiday at the site: both move to Wednesday.
    let report = db
        .store
        .put_site_calendar(
            pune,
            &site_calendar(pune, vec![jiff::civil::date(2026, 11, 3)]),
            "state holiday",
            at("02T16:00"),
        )
        .await
        .unwrap();
    assert_eq!(report.items, 2);
    assert_eq!(
        due(first.sla_state(a).await.unwrap()),
        "2026-11-04T14:00:00Z"
    );
    assert_eq!(
        due(second.sla_state(b).await.unwrap()),
        "2026-11-04T15:00:00Z"
    );
    // The change is on the firm's chain; each client's recompute on its own.
    let firm = db.store.tenant(karya_store::FIRM_CHAIN);
    let kinds = crate::qa_suite::kinds(&firm, "site", &pune.to_string()).await;
    assert_eq!(
        kinds,
        ["site.created", "site.calendar_set", "site.calendar_set"]
    );
    for (tenant, engagement_id) in [(&first, first_engagement), (&second, second_engagement)] {
        let kinds = crate::qa_suite::kinds(tenant, "engagement", &engagement_id.to_string()).await;
        assert_eq!(
            kinds.last().unwrap(),
            "engagement.sla_recomputed",
            "{kinds:?}"
        );
    }
    // A site that does not exist has no calendar to set.
    let missing = SiteId::from_uuid(uuid());
    let refused = db
        .store
        .put_site_calendar(
            missing,
            &site_calendar(missing, vec![]),
            "x",
            at("02T16:00"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    let audit = db.store.audit(None).await.unwrap();
    assert!(audit.intact(), "{:?}", audit.first_break());
}

/// A bulk import starts each item's clocks exactly as taking the item in alone does: same
/// calendar, same terms for its priority, same instant; a priority without terms gets none.
pub async fn bulk_import_starts_sla_clocks_as_single_intake_does(db: &TestDb) {
    let (tenant, engagement_id) = client_with_engagement(db, "Initech").await;
    let calendar_id = CalendarId::from_uuid(uuid());
    let mut spec = site_calendar(SiteId::from_uuid(uuid()), vec![]);
    spec.id = calendar_id;
    tenant
        .put_calendar(&spec, "office", at("01T00:00"))
        .await
        .unwrap();
    tenant
        .set_engagement_sla(
            engagement_id,
            &engagement_sla(CalendarRef::Client(calendar_id), None),
            "contract",
            at("01T00:00"),
        )
        .await
        .unwrap();
    let row = |priority: Priority| NewWorkItem {
        id: WorkItemId::from_uuid(uuid()),
        engagement_id,
        external_ref: None,
        title: "claim".into(),
        priority,
        input: "{}".into(),
    };
    // Friday 16:00: one hour on Friday, seven on Monday.
    let when = at("06T16:00");
    let single = row(Priority::Normal);
    tenant.create_work_item(&single, when).await.unwrap();
    let single_low = row(Priority::Low);
    tenant.create_work_item(&single_low, when).await.unwrap();
    // More items of one priority than one statement starts.
    let n_rows = 3 * CLOCK_START_BATCH / 2 + 150;
    let rows: Vec<NewWorkItem> = (0..n_rows)
        .map(|n| {
            row(if n % 3 == 0 {
                Priority::Low
            } else {
                Priority::Normal
            })
        })
        .collect();
    let outcome = tenant
        .import_work_items(engagement_id, &rows, when)
        .await
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Imported(_)), "{outcome:?}");

    let expected = tenant.sla_state(single.id).await.unwrap().unwrap();
    assert_eq!(
        expected.resolution.due_at.unwrap().to_string(),
        "2026-11-09T16:00:00Z"
    );
    assert_eq!(tenant.sla_state(single_low.id).await.unwrap(), None);
    for row in &rows {
        let state = tenant.sla_state(row.id).await.unwrap();
        match row.priority {
            Priority::Normal => {
                let mut state = state.expect("a normal item has an SLA");
                state.work_item_id = single.id;
                assert_eq!(state, expected);
            }
            _ => assert_eq!(state, None),
        }
    }
    let normal = rows
        .iter()
        .filter(|r| r.priority == Priority::Normal)
        .count();
    assert!(normal > CLOCK_START_BATCH, "{normal}");
    assert_eq!(
        tenant.sla_states(engagement_id).await.unwrap().len(),
        1 + normal
    );
    let audit = db.store.audit(None).await.unwrap();
    assert!(audit.intact(), "{:?}", audit.first_break());
}

/// A week at two sites: rostered time from shifts minus leave, handled time from tasks, first
/// reviews and accuracy per worker, the client's own scope, and the accuracy credit on the
/// invoice computed from the checks it lists.
pub async fn period_report_gives_utilisation_accuracy_and_accuracy_credits(db: &TestDb) {
    let store = &db.store;
    let north = site(db, "North").await;
    let south = site(db, "South").await;
    let (tenant, engagement_id) = client_with_engagement(db, "Umbrella").await;
    store
        .put_site_calendar(
            north,
            &site_calendar(north, vec![]),
            "opened",
            at("01T00:00"),
        )
        .await
        .unwrap();
    tenant
        .set_engagement_sla(
            engagement_id,
            &engagement_sla(
                CalendarRef::Site(north),
                Some(CreditRule {
                    per_point_bp: 100,
                    cap_bp: 5_000,
                }),
            ),
            "contract",
            at("01T00:00"),
        )
        .await
        .unwrap();
    let worker = |name: &'static str, site_id: SiteId, designation: Designation| {
        let id = WorkerId::from_uuid(uuid());
        async move {
            store
                .create_worker(id, name, Some(site_id), designation, at("01T00:00"))
                .await
                .unwrap();
            id
        }
    };
    let asha = worker("Asha", north, Designation::Analyst).await;
    let ben = worker("Ben", south, Designation::Analyst).await;
    let chitra = worker("Chitra", north, Designation::SeniorAnalyst).await;
    // Asha and Ben work 09:00-17:00 UTC on weekdays; Chitra has no roster.
    for id in [asha, ben] {
        store
            .set_worker_routing(
                id,
                &WorkerRouting {
                    languages: vec!["en".into()],
                    time_zone: "UTC".into(),
                    shifts: weekdays()
                        .into_iter()
                        .map(|weekday| ShiftBlock {
                            weekday,
                            start: time(9, 0, 0, 0),
                            length: SignedDuration::from_hours(8),
                        })
                        .collect(),
                    capacity_units: 10,
                    excluded_clients: vec![],
                },
                at("01T00:00"),
            )
            .await
            .unwrap();
    }
    // Asha is on leave all Tuesday.
    store
        .add_leave(
            asha,
            uuid(),
            &Leave {
                from: at("03T00:00"),
                until: at("04T00:00"),
            },
            "sick",
            at("02T08:00"),
        )
        .await
        .unwrap();
    let refused = store
        .add_leave(
            asha,
            uuid(),
            &Leave {
                from: at("04T00:00"),
                until: at("03T00:00"),
            },
            "backwards",
            at("02T08:00"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Rejected { .. })),
        "{refused:?}"
    );
    assert_eq!(store.leave_of(asha, at("02T08:00")).await.unwrap().len(), 1);

    // Four items; each task held from 10:00, started, submitted at 12:00 (two hours), reviewed
    // by Chitra: Asha passes two and fails one (reviewed Friday 23:00, rework until the
    // period's end), Ben passes one.
    for (maker, verdict, reviewed_at) in [
        (asha, Verdict::Pass, "02T13:00"),
        (asha, Verdict::Pass, "02T13:00"),
        (asha, Verdict::Fail, "06T23:00"),
        (ben, Verdict::Pass, "02T13:00"),
    ] {
        let item = received(&tenant, engagement_id, "02T09:00").await;
        let task_id = TaskId::from_uuid(uuid());
        tenant
            .create_task(
                &NewTask {
                    id: task_id,
                    work_item_id: item,
                    step: "assess".into(),
                },
                at("02T09:30"),
            )
            .await
            .unwrap();
        tenant
            .assign_task(
                task_id,
                maker,
                AssignmentId::from_uuid(uuid()),
                at("02T10:00"),
            )
            .await
            .unwrap();
        tenant
            .transition_task(task_id, TaskState::InProgress, at("02T10:00"))
            .await
            .unwrap();
        tenant
            .submit_task(task_id, &fields(&[("amount", "10000")]), at("02T12:00"))
            .await
            .unwrap();
        let defects = match verdict {
            Verdict::Fail => vec![wrong_value()],
            Verdict::Pass => vec![],
        };
        tenant
            .record_review(task_id, &review(chitra, verdict, defects), at(reviewed_at))
            .await
            .unwrap();
        for (when, to) in [
            ("02T12:30", WorkItemState::InProgress),
            ("02T14:00", WorkItemState::Delivered),
        ] {
            tenant
                .transition_work_item(item, to, None, None, at(when))
                .await
                .unwrap();
        }
    }

    let (from, to, now) = (at("02T00:00"), at("07T00:00"), at("07T00:00"));
    let report = store.period_report(from, to, now).await.unwrap();
    assert!(!report.truncated);
    assert_eq!(report.worker_names[&asha], "Asha");
    let by_worker = metrics::breakdown(Dimension::Worker, &report.facts, 0.9, now);
    let row = |key: GroupKey| {
        let (_, figures) = by_worker
            .groups
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no group {key:?}"));
        let p = &figures.performance;
        (
            p.delivered,
            p.aht.map(|d| d.as_mins()),
            p.utilisation_bp,
            p.first_pass_yield_bp,
            figures.accuracy.map(|a| a.checks),
        )
    };
    // Asha: 32 rostered hours (40 less Tuesday), 7 handled (three tasks of 2h and 1h of
    // rework); AHT over her three submitted tasks 7h / 3.
    assert_eq!(
        row(GroupKey::Worker(asha)),
        (3, Some(140), Some(2_187), Some(6_666), Some(3))
    );
    assert_eq!(
        row(GroupKey::Worker(ben)),
        (1, Some(120), Some(500), Some(10_000), Some(1))
    );
    // Chitra has no roster and did no work: no utilisation to report.
    assert_eq!(row(GroupKey::Worker(chitra)), (0, None, None, None, None));
    let by_site = metrics::breakdown(Dimension::Site, &report.facts, 0.9, now);
    let sites: Vec<(GroupKey, Option<u32>, u32)> = by_site
        .groups
        .iter()
        .filter(|(k, _)| matches!(k, GroupKey::Site(Some(s)) if *s == north || *s == south))
        .map(|(k, f)| (*k, f.performance.utilisation_bp, f.workers))
        .collect();
    let mut expected = vec![
        (GroupKey::Site(Some(north)), Some(2_187), 2),
        (GroupKey::Site(Some(south)), Some(500), 1),
    ];
    expected.sort();
    assert_eq!(sites, expected);

    // The client's own scope: its workers, no rostered time.
    let own = tenant.period_report(from, to, now).await.unwrap();
    assert_eq!(own.facts.items.len(), 4);
    let mut named: Vec<WorkerId> = own.facts.workers.iter().map(|w| w.id).collect();
    named.sort();
    let mut makers = vec![asha, ben];
    makers.sort();
    assert_eq!(named, makers);
    assert!(own.facts.workers.iter().all(|w| w.rostered.is_zero()));
    let (other, _) = client_with_engagement(db, "Hooli").await;
    assert!(other
        .period_report(from, to, now)
        .await
        .unwrap()
        .facts
        .items
        .is_empty());

    // The invoice: four items, 3 of 4 checks right with one defect, at the default 90%
    // confidence, against a 98% target.
    let invoice = tenant
        .invoice(
            at("01T00:00"),
            "2026-12-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(invoice.subtotal, Money::new(4 * 40_000, Currency::INR));
    let [credit] = invoice.accuracy_credits.as_slice() else {
        panic!(
            "one accuracy credit expected: {:?}",
            invoice.accuracy_credits
        )
    };
    assert_eq!((credit.checks, credit.correct, credit.defects), (4, 3, 1));
    assert_eq!(credit.confidence_ppm, 900_000);
    let high_bp = (wilson(3, 4, 0.9).high * 10_000.0).ceil() as u32;
    assert_eq!(credit.interval_high_bp, high_bp);
    assert_eq!(credit.credit_bp, 9_800 - high_bp);
    assert_eq!(
        invoice.total.minor,
        160_000 - (160_000 * i64::from(credit.credit_bp) + 5_000) / 10_000
    );
}
