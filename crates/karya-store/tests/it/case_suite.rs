//! Conformance tests of case routing and the roster: exclusions (a decline, the maker of work
//! a checking step checks) honoured by every push and pull claim, case affinity read from the
//! item's record, per-channel capacity caps, work taken back when a qualification lapses, and
//! presence driven by shifts.

use jiff::civil::{time, Weekday};
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{AssignmentId, EngagementId, OfferId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::routing::case::ExclusionReason;
use karya_core::routing::rules::{Path, Rule};
use karya_core::routing::{Explanation, Requirements, RoutingWorkflow};
use karya_core::workforce::{ChannelCap, Presence, Qualification, ShiftBlock, ShiftBreak};
use karya_store::{
    CaseQuery, Claim, LapsedWork, NewOffer, NewTask, OfferMade, Store, Tenant, WorkerRouting,
    WorkerRoutingExtras,
};

use crate::harness::TestDb;
use crate::suite::{assert_intact, client, engagement, id, item, now, worker};

fn explanation(task_id: TaskId, worker_id: WorkerId, at: Timestamp) -> Explanation {
    Explanation {
        task_id,
        decided_at: at,
        path: Path::GetNext,
        rule: Rule::BestScore,
        step_idx: 0,
        step_name: "as_required".into(),
        candidates: 1,
        eligible: 1,
        rejected: vec![],
        winner: Some(worker_id),
        score: None,
        runner_up_total: None,
        review_required: false,
        truncated: false,
    }
}

fn profile(capacity_units: u32) -> WorkerRouting {
    WorkerRouting {
        languages: vec!["en".into()],
        time_zone: "UTC".into(),
        shifts: vec![],
        capacity_units,
        excluded_clients: vec![],
    }
}

async fn routed(
    store: &Store,
    name: &str,
    capacity_units: u32,
    extras: WorkerRoutingExtras,
) -> WorkerId {
    let worker_id = worker(store, name).await;
    store
        .set_worker_profile(worker_id, &profile(capacity_units), &extras, now())
        .await
        .unwrap();
    worker_id
}

async fn routed_engagement(tenant: &Tenant, req: Requirements) -> EngagementId {
    let engagement_id = engagement(tenant, &format!("e{}", uuid::Uuid::now_v7())).await;
    tenant
        .set_engagement_routing(engagement_id, &req, &RoutingWorkflow::standard(), now())
        .await
        .unwrap();
    engagement_id
}

async fn task_on(tenant: &Tenant, work_item_id: karya_core::id::WorkItemId, step: &str) -> TaskId {
    tenant
        .create_task(
            &NewTask {
                id: id(),
                work_item_id,
                step: step.into(),
            },
            now(),
        )
        .await
        .unwrap()
        .id
}

async fn claim(store: &Store, tenant: &Tenant, task_id: TaskId, worker_id: WorkerId) -> Claim {
    let at = now();
    store
        .claim_within_capacity(
            tenant.client_id(),
            task_id,
            worker_id,
            id::<AssignmentId>(),
            (&explanation(task_id, worker_id, at), uuid::Uuid::now_v7()),
            at,
        )
        .await
        .unwrap()
}

async fn offer(tenant: &Tenant, task_id: TaskId, worker_id: WorkerId) -> OfferMade {
    let at = now();
    tenant
        .make_offer(
            &NewOffer {
                id: OfferId::from_uuid(uuid::Uuid::now_v7()),
                task_id,
                worker_id,
                expires_at: at + SignedDuration::from_hours(1),
                explanation: explanation(task_id, worker_id, at),
                explanation_id: uuid::Uuid::now_v7(),
            },
            at,
        )
        .await
        .unwrap()
}

/// Moves a held task through to done.
async fn finish(tenant: &Tenant, task_id: TaskId) {
    for to in [TaskState::InProgress, TaskState::Submitted, TaskState::Done] {
        tenant.transition_task(task_id, to, now()).await.unwrap();
    }
}

/// A decline excludes the worker from the task on every path; the maker of an item's work is
/// excluded from its checking step and preferred for its other steps; per-channel caps hold on
/// offers and claims.
pub async fn exclusions_affinity_and_channel_caps_are_honoured(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Case Co").await;
    let caps = WorkerRoutingExtras {
        channel_caps: vec![ChannelCap {
            channel: "research".into(),
            units_max: 2,
        }],
        ..WorkerRoutingExtras::default()
    };
    let asha = routed(store, "Asha", 10, caps).await;
    let ben = routed(store, "Ben", 10, WorkerRoutingExtras::default()).await;
    assert_eq!(
        store
            .routed_worker(asha)
            .await
            .unwrap()
            .profile
            .capacity
            .channels,
        vec![ChannelCap {
            channel: "research".into(),
            units_max: 2
        }]
    );
    let engagement_id = routed_engagement(
        &tenant,
        Requirements::any("research", 1, SignedDuration::from_mins(30)),
    )
    .await;

    // The item's first step, done by Asha.
    let item_id = item(&tenant, engagement_id).await;
    let prepare = task_on(&tenant, item_id, "analysis").await;
    assert!(matches!(
        claim(store, &tenant, prepare, asha).await,
        Claim::Assigned(_)
    ));
    finish(&tenant, prepare).await;
    let review = task_on(&tenant, item_id, "review").await;
    let drafting = task_on(&tenant, item_id, "report_drafting").await;
    let cases = store
        .task_cases(&[
            CaseQuery {
                task_id: review,
                work_item_id: item_id,
                step: "review".into(),
            },
            CaseQuery {
                task_id: drafting,
                work_item_id: item_id,
                step: "report_drafting".into(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(cases[&review].excluded_workers, vec![asha]);
    assert_eq!(cases[&review].preferred_worker, None);
    assert_eq!(cases[&drafting].preferred_worker, Some(asha));
    assert!(cases[&drafting].excluded_workers.is_empty());
    // The maker cannot take the review, by offer or by claim; Ben can.
    assert_eq!(offer(&tenant, review, asha).await, OfferMade::Excluded);
    assert_eq!(claim(store, &tenant, review, asha).await, Claim::Excluded);
    assert_eq!(tenant.task(review).await.unwrap().state, TaskState::Ready);
    assert!(matches!(
        claim(store, &tenant, review, ben).await,
        Claim::Assigned(_)
    ));

    // Ben declines the drafting: stored, and no path gives it to him again.
    let OfferMade::Made(made) = offer(&tenant, drafting, ben).await else {
        panic!("offer to Ben not made")
    };
    store.decline_offer(ben, made.id, now()).await.unwrap();
    assert_eq!(
        store.task_exclusions(drafting).await.unwrap(),
        vec![(ben, ExclusionReason::Declined)]
    );
    assert_eq!(offer(&tenant, drafting, ben).await, OfferMade::Excluded);
    assert_eq!(claim(store, &tenant, drafting, ben).await, Claim::Excluded);
    let case = store
        .task_cases(&[CaseQuery {
            task_id: drafting,
            work_item_id: item_id,
            step: "report_drafting".into(),
        }])
        .await
        .unwrap();
    assert_eq!(case[&drafting].excluded_workers, vec![ben]);
    assert_eq!(case[&drafting].preferred_worker, Some(asha));

    // Asha's research channel is capped at 2 units of her 10: an offer and a claim fill it.
    assert!(matches!(
        offer(&tenant, drafting, asha).await,
        OfferMade::Made(_)
    ));
    let other = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    assert!(matches!(
        claim(store, &tenant, other, asha).await,
        Claim::Assigned(_)
    ));
    let third = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    assert_eq!(
        claim(store, &tenant, third, asha).await,
        Claim::AtCapacity {
            units_used: 2,
            units_max: 2
        }
    );
    assert_eq!(offer(&tenant, third, asha).await, OfferMade::AtCapacity);
    let held = store.worker_holdings(asha).await.unwrap();
    assert_eq!((held.units.used, held.units.max), (2, 10));
    assert_eq!(held.channels, vec![("research".to_string(), 2)]);
    assert_eq!(held.open_offers, 1, "the drafting offer is open");
    // Another channel still has room.
    let tickets = routed_engagement(
        &tenant,
        Requirements::any("ticket", 1, SignedDuration::from_mins(5)),
    )
    .await;
    let ticket = task_on(&tenant, item(&tenant, tickets).await, "resolution").await;
    assert!(matches!(
        claim(store, &tenant, ticket, asha).await,
        Claim::Assigned(_)
    ));
    assert_intact(store).await;
}

/// When a qualification lapses, open offers and not-yet-started assignments that needed it go
/// back to routing with their events; started work and renewed holders are left alone.
pub async fn lapsed_qualifications_send_work_back_to_routing(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Lapse Co").await;
    let asha = routed(store, "Asha", 10, WorkerRoutingExtras::default()).await;
    let ben = routed(store, "Ben", 10, WorkerRoutingExtras::default()).await;
    let start = now();
    let lapses_at = start + SignedDuration::from_hours(1);
    let cpa = |until: Option<Timestamp>| Qualification {
        kind: "cpa".into(),
        field: None,
        issuer: "aicpa".into(),
        valid_from: start - SignedDuration::from_hours(24 * 365),
        valid_until: until,
    };
    store
        .add_qualification(asha, uuid::Uuid::now_v7(), &cpa(Some(lapses_at)), now())
        .await
        .unwrap();
    // Ben's first record lapses too, but he renewed it.
    store
        .add_qualification(ben, uuid::Uuid::now_v7(), &cpa(Some(lapses_at)), now())
        .await
        .unwrap();
    store
        .add_qualification(ben, uuid::Uuid::now_v7(), &cpa(None), now())
        .await
        .unwrap();
    let mut req = Requirements::any("research", 1, SignedDuration::from_mins(30));
    req.qualifications = vec!["cpa".into()];
    let engagement_id = routed_engagement(&tenant, req).await;
    let free = routed_engagement(
        &tenant,
        Requirements::any("research", 1, SignedDuration::from_mins(30)),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await);
    }
    let unqualified = task_on(&tenant, item(&tenant, free).await, "analysis").await;
    let (offered, assigned, started, bens) = (tasks[0], tasks[1], tasks[2], tasks[3]);
    assert!(matches!(
        offer(&tenant, offered, asha).await,
        OfferMade::Made(_)
    ));
    assert!(matches!(
        claim(store, &tenant, assigned, asha).await,
        Claim::Assigned(_)
    ));
    assert!(matches!(
        claim(store, &tenant, started, asha).await,
        Claim::Assigned(_)
    ));
    tenant
        .transition_task(started, TaskState::InProgress, now())
        .await
        .unwrap();
    assert!(matches!(
        claim(store, &tenant, bens, ben).await,
        Claim::Assigned(_)
    ));
    assert!(matches!(
        claim(store, &tenant, unqualified, asha).await,
        Claim::Assigned(_)
    ));

    // Before the lapse nothing moves.
    assert!(store
        .withdraw_lapsed(lapses_at - SignedDuration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    let after = lapses_at + SignedDuration::from_mins(1);
    let mut taken: Vec<(TaskId, WorkerId, bool, String)> = store
        .withdraw_lapsed(after)
        .await
        .unwrap()
        .into_iter()
        .map(|l| {
            (
                l.task_id,
                l.worker_id,
                matches!(l.work, LapsedWork::Offer(_)),
                l.qualification,
            )
        })
        .collect();
    taken.sort();
    let mut expect = vec![
        (offered, asha, true, "cpa".to_string()),
        (assigned, asha, false, "cpa".to_string()),
    ];
    expect.sort();
    assert_eq!(taken, expect);
    assert_eq!(tenant.task(offered).await.unwrap().state, TaskState::Ready);
    assert_eq!(tenant.task(assigned).await.unwrap().state, TaskState::Ready);
    assert_eq!(
        tenant.task(started).await.unwrap().state,
        TaskState::InProgress
    );
    assert_eq!(tenant.task(bens).await.unwrap().state, TaskState::Assigned);
    assert_eq!(
        tenant.task(unqualified).await.unwrap().state,
        TaskState::Assigned
    );
    // The offer ended as withdrawn; the released assignment frees Asha's capacity.
    let offers = store.task_offers(offered).await.unwrap();
    assert_eq!(offers.len(), 1);
    assert!(offers[0].outcome.is_some());
    assert_eq!(store.worker_capacity(asha).await.unwrap().used, 2);
    // The events say why.
    let events = tenant
        .events(&karya_store::PageRequest {
            limit: 500,
            after: None,
        })
        .await
        .unwrap()
        .items;
    let lapsed: Vec<(&str, String)> = events
        .iter()
        .filter(|e| e.payload.contains("qualification_expired"))
        .map(|e| (e.kind.as_str(), e.entity_id.clone()))
        .collect();
    assert_eq!(
        lapsed,
        vec![
            ("task.transitioned", offered.to_string()),
            ("task.transitioned", assigned.to_string()),
            ("task.released", assigned.to_string()),
        ]
    );
    // Once is enough: the next round finds nothing.
    assert!(store.withdraw_lapsed(after).await.unwrap().is_empty());
    assert_intact(store).await;
}

/// Shifts set presence at their start, breaks and end; a worker's own toggle wins within the
/// shift; started work waits over a break and is handed over at the shift's end.
pub async fn shifts_drive_presence(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Shift Co").await;
    let asha = worker(store, "Asha").await;
    let ben = worker(store, "Ben").await;
    let nobody = worker(store, "Chen").await;
    let shifts: Vec<ShiftBlock> = [
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
        start: time(9, 0, 0, 0),
        length: SignedDuration::from_hours(8),
    })
    .collect();
    let extras = WorkerRoutingExtras {
        breaks: vec![ShiftBreak {
            after: SignedDuration::from_hours(4),
            length: SignedDuration::from_mins(30),
        }],
        ..WorkerRoutingExtras::default()
    };
    for w in [asha, ben] {
        let routing = WorkerRouting {
            shifts: shifts.clone(),
            ..profile(10)
        };
        store
            .set_worker_profile(w, &routing, &extras, now())
            .await
            .unwrap();
    }
    store
        .set_worker_routing(nobody, &profile(10), now())
        .await
        .unwrap();
    // A day well after the test clock: 00:00 UTC two days on.
    let day = now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .tomorrow()
        .unwrap()
        .tomorrow()
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    let at = |hours: i64, mins: i64| day + SignedDuration::from_mins(hours * 60 + mins);
    let presence = |w: WorkerId| async move { store.routed_worker(w).await.unwrap().presence };
    let changed = |changes: Vec<karya_store::ShiftChange>| {
        let mut lines: Vec<(WorkerId, Presence)> =
            changes.iter().map(|c| (c.worker_id, c.to)).collect();
        lines.sort_by_key(|(w, p)| (*w, p.code()));
        lines
    };
    let both = |p: Presence| {
        let mut v = vec![(asha, p), (ben, p)];
        v.sort_by_key(|(w, p)| (*w, p.code()));
        v
    };

    // Before the shift they are offline already (new profiles start offline).
    assert!(store
        .apply_shift_presence(at(8, 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        changed(store.apply_shift_presence(at(9, 0)).await.unwrap()),
        both(Presence::Available)
    );
    assert!(store
        .apply_shift_presence(at(9, 1))
        .await
        .unwrap()
        .is_empty());
    // Ben signs off at 10:00 himself: his toggle wins for the rest of the shift.
    store
        .set_presence(ben, Presence::Offline, at(10, 0))
        .await
        .unwrap();
    // Asha starts a task at noon.
    let engagement_id = routed_engagement(
        &tenant,
        Requirements::any("research", 1, SignedDuration::from_mins(30)),
    )
    .await;
    let task = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    assert!(matches!(
        claim(store, &tenant, task, asha).await,
        Claim::Assigned(_)
    ));
    tenant
        .transition_task(task, TaskState::InProgress, now())
        .await
        .unwrap();
    // The break comes on time; the started task waits for her.
    let changes = store.apply_shift_presence(at(13, 0)).await.unwrap();
    assert_eq!(changed(changes.clone()), vec![(asha, Presence::Break)]);
    assert!(changes[0].handed_over.is_empty());
    assert_eq!(
        tenant.task(task).await.unwrap().state,
        TaskState::InProgress
    );
    assert_eq!(store.active_assignee(task).await.unwrap(), Some(asha));
    assert_eq!(
        changed(store.apply_shift_presence(at(13, 30)).await.unwrap()),
        vec![(asha, Presence::Available)]
    );
    assert_eq!(presence(ben).await, Presence::Offline);
    // The shift ends at 17:00 with the task still in hand: Asha goes offline and the task is
    // handed over, back to routing, with the reason in its trail.
    let changes = store.apply_shift_presence(at(17, 0)).await.unwrap();
    assert_eq!(changed(changes.clone()), vec![(asha, Presence::Offline)]);
    assert_eq!(changes[0].handed_over, vec![(tenant.client_id(), task)]);
    assert_eq!(tenant.task(task).await.unwrap().state, TaskState::Ready);
    assert_eq!(store.active_assignee(task).await.unwrap(), None);
    let trail: Vec<String> = tenant
        .entity_events("task", &task.to_string())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.payload.contains("shift_ended"))
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(trail, ["task.transitioned", "task.released"]);
    // Once is enough.
    assert!(store
        .apply_shift_presence(at(17, 20))
        .await
        .unwrap()
        .is_empty());
    // The next morning both start again; Chen, without shifts, is never touched.
    assert_eq!(
        changed(store.apply_shift_presence(at(24 + 9, 0)).await.unwrap()),
        both(Presence::Available)
    );
    assert_eq!(presence(nobody).await, Presence::Offline);
    let routed = store.routed_worker(asha).await.unwrap();
    assert_eq!(
        routed.presence_by,
        karya_core::workforce::PresenceSource::Shift
    );
    // A shift ended by its caller (the demo keeps its own clock) hands over the same way: a
    // started task and an assigned one go back to routing; a submitted one stays.
    let started = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    let assigned = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    let submitted = task_on(&tenant, item(&tenant, engagement_id).await, "analysis").await;
    for t in [started, assigned, submitted] {
        assert!(matches!(
            claim(store, &tenant, t, asha).await,
            Claim::Assigned(_)
        ));
    }
    for t in [started, submitted] {
        tenant
            .transition_task(t, TaskState::InProgress, now())
            .await
            .unwrap();
    }
    tenant
        .submit_task(submitted, &karya_core::qa::Fields::new(), now())
        .await
        .unwrap();
    let submitted_state = tenant.task(submitted).await.unwrap().state;
    let ended = store
        .end_shift(asha, at(24 + 12, 0))
        .await
        .unwrap()
        .expect("asha was on shift");
    assert_eq!(
        (ended.from, ended.to),
        (Presence::Available, Presence::Offline)
    );
    let mut handed: Vec<TaskId> = ended.handed_over.iter().map(|(_, t)| *t).collect();
    handed.sort();
    let mut expected = vec![started, assigned];
    expected.sort();
    assert_eq!(handed, expected);
    for t in [started, assigned] {
        assert_eq!(tenant.task(t).await.unwrap().state, TaskState::Ready);
        assert_eq!(store.active_assignee(t).await.unwrap(), None);
    }
    assert_eq!(tenant.task(submitted).await.unwrap().state, submitted_state);
    assert_eq!(presence(asha).await, Presence::Offline);
    // Offline already: nothing to end.
    assert_eq!(store.end_shift(asha, at(24 + 12, 5)).await.unwrap(), None);
    assert_eq!(store.end_shift(nobody, at(24 + 12, 5)).await.unwrap(), None);
    assert_intact(store).await;
}

pub async fn a_lapse_that_breaks_an_any_of_qualification_takes_the_work_back(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Patent Co").await;
    let asha = routed(store, "Asha", 10, WorkerRoutingExtras::default()).await;
    let ben = routed(store, "Ben", 10, WorkerRoutingExtras::default()).await;
    let start = now();
    let lapses_at = start + SignedDuration::from_hours(1);
    let qualification = |kind: &str, until: Option<Timestamp>| Qualification {
        kind: kind.into(),
        field: None,
        issuer: "patent office".into(),
        valid_from: start - SignedDuration::from_hours(24 * 365),
        valid_until: until,
    };
    // Both hold a patent agent's registration that lapses; Ben is a patent attorney as well.
    for worker_id in [asha, ben] {
        store
            .add_qualification(
                worker_id,
                uuid::Uuid::now_v7(),
                &qualification("patent_agent", Some(lapses_at)),
                now(),
            )
            .await
            .unwrap();
    }
    store
        .add_qualification(
            ben,
            uuid::Uuid::now_v7(),
            &qualification("patent_attorney", None),
            now(),
        )
        .await
        .unwrap();
    // A pack step's "at least one of", as routing gets it: a target expression.
    let mut req = Requirements::any("research", 1, SignedDuration::from_mins(30));
    req.target = Some(
        karya_core::routing::expr::parse(
            "('patent_agent' in worker.qualifications || 'patent_attorney' in worker.qualifications)",
        )
        .unwrap(),
    );
    let engagement_id = routed_engagement(&tenant, req).await;
    let ashas = task_on(&tenant, item(&tenant, engagement_id).await, "search").await;
    let bens = task_on(&tenant, item(&tenant, engagement_id).await, "search").await;
    assert!(matches!(
        claim(store, &tenant, ashas, asha).await,
        Claim::Assigned(_)
    ));
    assert!(matches!(
        claim(store, &tenant, bens, ben).await,
        Claim::Assigned(_)
    ));

    let taken: Vec<(TaskId, WorkerId, String)> = store
        .withdraw_lapsed(lapses_at + SignedDuration::from_mins(1))
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.task_id, l.worker_id, l.qualification))
        .collect();
    assert_eq!(taken, vec![(ashas, asha, "patent_agent".to_string())]);
    assert_eq!(tenant.task(ashas).await.unwrap().state, TaskState::Ready);
    assert_eq!(tenant.task(bens).await.unwrap().state, TaskState::Assigned);
    assert_intact(store).await;
}
