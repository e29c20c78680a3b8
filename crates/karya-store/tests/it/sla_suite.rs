//! Conformance tests of SLA persistence: clocks started and moved by the work item lifecycle,
//! bulk recompute on a change of terms or calendar, and invoices with SLA credits.

#![allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in minor units read best with the cents as their own group: 50_000_00"
)]

use jiff::civil::{time, Weekday};
use jiff::{SignedDuration, Timestamp};
use karya_core::billing::{CreditRule, ItemRate, Pricing};
use karya_core::calendar::{Calendar, Shift};
use karya_core::id::{
    AssignmentId, CalendarId, ClientId, EngagementId, TaskId, WorkItemId, WorkerId,
};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Designation, Priority};
use karya_core::money::{Currency, Money};
use karya_core::service_line::ServiceLine;
use karya_core::sla::{ClockState, SlaTerms};
use karya_store::{
    CalendarSpec, EngagementSla, NewEngagement, NewTask, NewWorkItem, PageRequest, Tenant,
};

use crate::harness::TestDb;

fn uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// `"04T14:00"` is 2026-11-04 14:00 UTC (Wednesday).
pub(crate) fn at(text: &str) -> Timestamp {
    format!("2026-11-{text}:00Z").parse().unwrap()
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

fn nine_to_five(id: CalendarId) -> CalendarSpec {
    let weekly = Calendar::weekly(
        jiff::tz::TimeZone::UTC,
        &weekdays(),
        &[Shift::new(time(9, 0, 0, 0), time(17, 0, 0, 0))],
    );
    CalendarSpec {
        id,
        name: "London office".into(),
        time_zone: "UTC".into(),
        week: weekly.week,
        holidays: vec![],
        exceptions: vec![],
    }
}

fn terms(resolution_h: i64) -> SlaTerms {
    SlaTerms {
        first_response: SignedDuration::from_hours(2),
        resolution: SignedDuration::from_hours(resolution_h),
        warning_pct: 75,
        on_time_target_bp: 9_500,
        accuracy_target_bp: 9_800,
    }
}

fn sla(calendar_id: CalendarId, resolution_h: i64) -> EngagementSla {
    EngagementSla {
        calendar: calendar_id.into(),
        terms: vec![(Priority::Normal, terms(resolution_h))],
        pricing: Pricing::PerItem {
            rates: vec![ItemRate {
                priority: Priority::Normal,
                band: None,
                price: Money::new(40_000, Currency::INR),
            }],
        },
        credit_rule: Some(CreditRule {
            per_point_bp: 500,
            cap_bp: 2_000,
        }),
        accuracy_credit_rule: None,
    }
}

pub(crate) struct Setup {
    pub(crate) tenant: Tenant,
    pub(crate) engagement_id: EngagementId,
    calendar_id: CalendarId,
}

pub(crate) async fn setup(db: &TestDb, resolution_h: i64) -> Setup {
    let client_id = ClientId::from_uuid(uuid());
    db.store
        .create_client(
            client_id,
            &format!("Acme {client_id}"),
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
    let calendar_id = CalendarId::from_uuid(uuid());
    tenant
        .put_calendar(&nine_to_five(calendar_id), "initial", at("01T00:00"))
        .await
        .unwrap();
    tenant
        .set_engagement_sla(
            engagement_id,
            &sla(calendar_id, resolution_h),
            "contract",
            at("01T00:00"),
        )
        .await
        .unwrap();
    Setup {
        tenant,
        engagement_id,
        calendar_id,
    }
}

pub(crate) async fn item(
    setup: &Setup,
    title: &str,
    script: &[(&str, Option<WorkItemState>)],
) -> WorkItemId {
    let id = WorkItemId::from_uuid(uuid());
    let (created, rest) = script.split_first().unwrap();
    setup
        .tenant
        .create_work_item(
            &NewWorkItem {
                id,
                engagement_id: setup.engagement_id,
                external_ref: None,
                title: title.into(),
                priority: Priority::Normal,
                input: "{}".into(),
            },
            at(created.0),
        )
        .await
        .unwrap();
    for (when, to) in rest {
        setup
            .tenant
            .transition_work_item(id, to.unwrap(), None, None, at(when))
            .await
            .unwrap();
    }
    id
}

async fn render(tenant: &Tenant, id: WorkItemId, name: &str) -> String {
    let state = tenant.sla_state(id).await.unwrap().unwrap();
    format!(
        "{name}: {} due {} elapsed {}m breached {}",
        state.clock.code(),
        state
            .resolution
            .due_at
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into()),
        state.resolution.elapsed.as_mins(),
        state.resolution.breached
    )
}

async fn recompute_events(tenant: &Tenant) -> Vec<String> {
    let events = tenant
        .events(&PageRequest {
            limit: 500,
            after: None,
        })
        .await
        .unwrap();
    events
        .items
        .into_iter()
        .filter(|e| e.kind == "engagement.sla_recomputed")
        .map(|e| e.payload)
        .collect()
}

/// The SLA clock starts at intake, pauses on hold, stops at delivery; changing the resolution
/// target from 16h to 8h mid-flight recomputes all open items at once, checked against values
/// worked by hand on a Mon-Fri 09:00-17:00 calendar.
pub async fn sla_term_change_recomputes_open_items_in_bulk(db: &TestDb) {
    use WorkItemState::*;
    let setup = setup(db, 16).await;
    let a = item(
        &setup,
        "a",
        &[("02T09:00", None), ("02T09:30", Some(InProgress))],
    )
    .await;
    let b = item(&setup, "b", &[("02T14:00", None)]).await;
    let c = item(
        &setup,
        "c",
        &[
            ("03T16:00", None),
            ("03T16:30", Some(OnHold)),
            ("04T13:00", Some(InProgress)),
        ],
    )
    .await;
    let d = item(
        &setup,
        "d",
        &[("03T10:00", None), ("03T11:00", Some(OnHold))],
    )
    .await;
    let e = item(&setup, "e", &[("04T11:00", None)]).await;
    // Delivered and closed before the change: not recomputed.
    let f = item(
        &setup,
        "f",
        &[
            ("02T10:00", None),
            ("02T10:30", Some(InProgress)),
            ("03T10:00", Some(Delivered)),
            ("03T11:00", Some(Closed)),
        ],
    )
    .await;

    // States as the lifecycle left them (computed at each item's last change).
    assert_eq!(
        render(&setup.tenant, a, "a").await,
        "a: running due 2026-11-03T17:00:00Z elapsed 30m breached false"
    );
    assert_eq!(
        render(&setup.tenant, d, "d").await,
        "d: paused due - elapsed 60m breached false"
    );
    assert_eq!(
        render(&setup.tenant, f, "f").await,
        "f: stopped due 2026-11-04T10:00:00Z elapsed 480m breached false"
    );

    let report = setup
        .tenant
        .set_engagement_sla(
            setup.engagement_id,
            &sla(setup.calendar_id, 8),
            "contract amendment 2",
            at("04T14:00"),
        )
        .await
        .unwrap();
    assert_eq!((report.items, report.breached), (5, 2));
    let mut got = Vec::new();
    for (id, name) in [(a, "a"), (b, "b"), (c, "c"), (d, "d"), (e, "e"), (f, "f")] {
        got.push(render(&setup.tenant, id, name).await);
    }
    assert_eq!(
        got,
        [
            "a: running due 2026-11-02T17:00:00Z elapsed 1260m breached true",
            "b: running due 2026-11-03T14:00:00Z elapsed 960m breached true",
            "c: running due 2026-11-05T12:30:00Z elapsed 90m breached false",
            "d: paused due - elapsed 60m breached false",
            "e: running due 2026-11-05T11:00:00Z elapsed 180m breached false",
            // Closed before the change: left as it was.
            "f: stopped due 2026-11-04T10:00:00Z elapsed 480m breached false",
        ]
    );
    // One reason event per recompute, none per item.
    let recomputes = recompute_events(&setup.tenant).await;
    assert_eq!(recomputes.len(), 2, "{recomputes:?}");
    assert!(
        recomputes[1].contains("contract amendment 2"),
        "{recomputes:?}"
    );
    assert!(recomputes[1].contains("\"items\":5"), "{recomputes:?}");

    // A calendar change (Thursday 5 Nov becomes a holiday) recomputes through the engagement.
    let mut spec = nine_to_five(setup.calendar_id);
    spec.holidays.push(jiff::civil::date(2026, 11, 5));
    setup
        .tenant
        .put_calendar(&spec, "office closed on 5 Nov", at("04T14:00"))
        .await
        .unwrap();
    assert_eq!(
        render(&setup.tenant, c, "c").await,
        "c: running due 2026-11-06T12:30:00Z elapsed 90m breached false"
    );
    assert_eq!(
        setup.tenant.calendar(setup.calendar_id).await.unwrap(),
        spec
    );
    // Another client cannot see or overwrite the calendar.
    let other = db.store.tenant(ClientId::from_uuid(uuid()));
    assert!(other.calendar(setup.calendar_id).await.is_err());
    let audit = db.store.audit(None).await.unwrap();
    assert!(audit.intact(), "{:?}", audit.first_break());
}

/// An invoice for November with two of twenty deliveries late: 90% on time against 95%, a 25%
/// credit capped at 20%, with the late items as evidence.
pub async fn invoice_applies_sla_credit_with_evidence(db: &TestDb) {
    use WorkItemState::*;
    let setup = setup(db, 8).await;
    let worker = WorkerId::from_uuid(uuid());
    db.store
        .create_worker(worker, "Asha", None, Designation::Analyst, at("01T00:00"))
        .await
        .unwrap();
    let mut late = Vec::new();
    for n in 0..20 {
        // On time: received Mon 9:00, delivered Mon 15:00 (6h). Late: delivered Tue 15:00 (14h).
        let delivered = if n == 4 || n == 9 {
            "03T15:00"
        } else {
            "02T15:00"
        };
        let id = item(
            &setup,
            &format!("claim {n}"),
            &[
                ("02T09:00", None),
                ("02T09:05", Some(InProgress)),
                (delivered, Some(Delivered)),
            ],
        )
        .await;
        if n == 4 || n == 9 {
            late.push(id);
        }
        if n == 0 {
            // Task time on one item: assigned 09:10, worked until submitted at 10:40.
            let task_id = TaskId::from_uuid(uuid());
            setup
                .tenant
                .create_task(
                    &NewTask {
                        id: task_id,
                        work_item_id: id,
                        step: "assess".into(),
                    },
                    at("02T09:06"),
                )
                .await
                .unwrap();
            setup
                .tenant
                .assign_task(
                    task_id,
                    worker,
                    AssignmentId::from_uuid(uuid()),
                    at("02T09:10"),
                )
                .await
                .unwrap();
            setup
                .tenant
                .transition_task(task_id, TaskState::InProgress, at("02T09:20"))
                .await
                .unwrap();
            setup
                .tenant
                .transition_task(task_id, TaskState::Submitted, at("02T10:40"))
                .await
                .unwrap();
        }
    }
    // Received in November but delivered in December: not on this invoice.
    item(&setup, "december", &[("30T09:00", None)]).await;

    let from: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let to: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    let invoice = setup.tenant.invoice(from, to).await.unwrap();
    assert_eq!(invoice.lines.len(), 20);
    assert_eq!(invoice.subtotal, Money::new(20 * 40_000, Currency::INR));
    let credit = &invoice.credits[0];
    let mut evidence: Vec<WorkItemId> = credit.evidence.iter().map(|e| e.work_item_id).collect();
    evidence.sort();
    late.sort();
    assert_eq!(evidence, late);
    // 14h elapsed against 8h: 6h late each.
    assert!(credit
        .evidence
        .iter()
        .all(|e| e.late_by == SignedDuration::from_hours(6)));
    assert_eq!((credit.achieved_bp, credit.credit_bp), (9_000, 2_000));
    assert_eq!(credit.amount, Money::new(-160_000, Currency::INR));
    assert_eq!(invoice.total, Money::new(640_000, Currency::INR));

    // Performance over the same items: 18 of 20 on time, one open item in the backlog, and
    // one submitted task of 90 minutes.
    let perf = setup
        .tenant
        .performance(Some(setup.engagement_id), from, to, at("30T12:00"))
        .await
        .unwrap();
    assert_eq!(perf.delivered, 20);
    assert_eq!(perf.on_time_bp, Some(9_000));
    assert_eq!(perf.turnaround.unwrap().p50, SignedDuration::from_hours(6));
    // Nearest rank: the 18th of 20 sorted values is still an on-time 6h.
    assert_eq!(perf.turnaround.unwrap().p90, SignedDuration::from_hours(6));
    assert_eq!(
        perf.turnaround.unwrap().mean,
        SignedDuration::from_mins(6 * 60 + 48)
    );
    assert_eq!(perf.backlog, 1);
    assert_eq!(perf.aht, Some(SignedDuration::from_mins(90)));

    let metrics = db.store.sla_metrics().await.unwrap();
    assert!(metrics.breached >= 2);
    assert!(metrics.turnaround.1 >= 20);
    let sla_state = setup.tenant.sla_state(late[0]).await.unwrap().unwrap();
    assert_eq!(sla_state.clock, ClockState::Stopped);
}

/// Undoing a decision reopens its delivered work item through the same path as every other
/// move, so the SLA clock that delivery stopped runs again (it once stayed stopped).
pub async fn undoing_a_decision_reopens_the_item_and_its_sla_clock(db: &TestDb) {
    use karya_core::decision::attr::Attr;
    use karya_core::decision::authority::{DecisionType, Inverse};
    use karya_core::id::{DecisionId, WorkerId};
    use karya_core::model::Designation;

    let setup = setup(db, 8).await;
    let id = item(
        &setup,
        "claim",
        &[
            ("02T10:00", None),
            ("02T10:30", Some(WorkItemState::InProgress)),
        ],
    )
    .await;
    let approve = DecisionType {
        name: "approve_claim".into(),
        amount_field: Some("amount".into()),
        limits: vec![(Designation::Analyst, 50_000_00)],
        required_qualifications: vec![],
        inverse: Inverse::Compensate {
            action: "reverse_approval".into(),
        },
        undo_window_hours: 72,
        reopen_on_undo: true,
    };
    setup
        .tenant
        .register_decision_type(setup.engagement_id, &approve, at("02T10:30"))
        .await
        .unwrap();
    let worker_id = WorkerId::from_uuid(uuid());
    db.store
        .create_worker(
            worker_id,
            "Asha",
            None,
            Designation::Analyst,
            at("02T10:30"),
        )
        .await
        .unwrap();
    let decision_id = DecisionId::from_uuid(uuid());
    setup
        .tenant
        .take_decision(
            &karya_store::NewDecision {
                id: decision_id,
                work_item_id: id,
                task_id: None,
                decision_type: "approve_claim".into(),
                payload: Attr::map().with("amount", 1_000_00),
                team: None,
                decided_by: worker_id,
            },
            at("02T11:00"),
        )
        .await
        .unwrap();
    setup
        .tenant
        .transition_work_item(id, WorkItemState::Delivered, None, None, at("02T12:00"))
        .await
        .unwrap();
    let delivered = setup.tenant.sla_state(id).await.unwrap().unwrap();
    assert_eq!(delivered.clock.code(), "stopped");

    setup
        .tenant
        .undo_decision(decision_id, at("02T13:00"))
        .await
        .unwrap();
    let item = setup.tenant.work_item(id).await.unwrap();
    assert_eq!(item.state, WorkItemState::InProgress);
    let reopened = setup.tenant.sla_state(id).await.unwrap().unwrap();
    assert_eq!(
        reopened.clock.code(),
        "running",
        "the reopened item's clock runs again"
    );
    let trail = setup
        .tenant
        .entity_events("work_item", &id.to_string())
        .await
        .unwrap();
    let last = trail.last().unwrap();
    assert!(
        last.payload.contains(r#""to":"in_progress""#)
            && last.payload.contains("undone on request"),
        "{}",
        last.payload
    );
}
