//! Sites, a client's calendars, open tasks per site, and a lead's reassignment of a task, on
//! both engines.

use jiff::civil::{Date, Time};
use jiff::SignedDuration;
use karya_core::calendar::Shift;
use karya_core::id::{AssignmentId, CalendarId, OfferId, SiteId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Designation, OfferOutcome, Site};
use karya_core::routing::rules::{Path, Rule};
use karya_core::routing::Explanation;
use karya_store::{
    CalendarSpec, NewOffer, NewTask, OfferMade, PageRequest, Reassignment, SiteQueueCount, Store,
    StoreError, Tenant, WorkerRouting,
};

use crate::harness::TestDb;
use crate::suite::{assert_intact, client, engagement, id, item, now};

fn site(name: &str, zone: &str) -> Site {
    Site {
        id: SiteId::from_uuid(uuid::Uuid::now_v7()),
        name: name.into(),
        time_zone: zone.into(),
        country: "India".into(),
    }
}

async fn routed_worker(store: &Store, name: &str, site_id: Option<SiteId>) -> WorkerId {
    let worker_id: WorkerId = id();
    store
        .create_worker(worker_id, name, site_id, Designation::Analyst, now())
        .await
        .unwrap();
    store
        .set_worker_routing(
            worker_id,
            &WorkerRouting {
                languages: vec!["en".into()],
                time_zone: "UTC".into(),
                shifts: vec![],
                capacity_units: 5,
                excluded_clients: vec![],
            },
            now(),
        )
        .await
        .unwrap();
    worker_id
}

/// A ready task of a new item in an engagement of its own.
pub(crate) async fn ready_task(tenant: &Tenant) -> TaskId {
    let engagement_id = engagement(tenant, &format!("lane {}", uuid::Uuid::now_v7())).await;
    let item_id = item(tenant, engagement_id).await;
    tenant
        .create_task(
            &NewTask {
                id: id(),
                work_item_id: item_id,
                step: "prepare".into(),
            },
            now(),
        )
        .await
        .unwrap()
        .id
}

fn offer(task_id: TaskId, worker_id: WorkerId) -> NewOffer {
    NewOffer {
        id: OfferId::from_uuid(uuid::Uuid::now_v7()),
        task_id,
        worker_id,
        expires_at: now() + SignedDuration::from_hours(1),
        explanation: Explanation {
            task_id,
            decided_at: now(),
            path: Path::Offer,
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
        },
        explanation_id: uuid::Uuid::now_v7(),
    }
}

fn reassignment(task_id: TaskId, to: WorkerId, reason: &str) -> Reassignment {
    Reassignment {
        task_id,
        to,
        assignment_id: AssignmentId::from_uuid(uuid::Uuid::now_v7()),
        reason: reason.into(),
        rule: "named".into(),
        by: uuid::Uuid::now_v7(),
    }
}

/// The kinds of a task's events, in order.
async fn task_events(tenant: &Tenant, task_id: TaskId) -> Vec<(String, serde_json::Value)> {
    tenant
        .events(&PageRequest {
            limit: 500,
            after: None,
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.entity_id == task_id.to_string())
        .map(|e| (e.kind, serde_json::from_str(&e.payload).unwrap()))
        .collect()
}

/// Sites are listed by name and their names are unique; a client's calendars are its own;
/// open tasks count at the site of the worker holding or offered them, or under no site.
pub async fn sites_calendars_and_counts_per_site(db: &TestDb) {
    let store = &db.store;
    let pune = store
        .create_site(&site("Pune", "Asia/Kolkata"), now())
        .await
        .unwrap();
    let manila = store
        .create_site(&site("Manila", "Asia/Manila"), now())
        .await
        .unwrap();
    let again = store
        .create_site(&site("Pune", "Asia/Kolkata"), now())
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    let names: Vec<String> = store
        .sites()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["Manila", "Pune"]);
    assert_eq!(store.site(pune.id).await.unwrap(), pune);
    assert!(matches!(
        store.site(SiteId::from_uuid(uuid::Uuid::now_v7())).await,
        Err(StoreError::NotFound { .. })
    ));

    // Calendars: each client sees only its own, in name order.
    let a = client(store, "Sites A").await;
    let b = client(store, "Sites B").await;
    let calendar = |name: &str| CalendarSpec {
        id: CalendarId::from_uuid(uuid::Uuid::now_v7()),
        name: name.into(),
        time_zone: "Asia/Kolkata".into(),
        week: std::array::from_fn(|day| match day < 5 {
            true => vec![Shift::new(
                Time::constant(9, 0, 0, 0),
                Time::constant(18, 0, 0, 0),
            )],
            false => Vec::new(),
        }),
        holidays: vec![Date::constant(2026, 1, 26)],
        exceptions: Vec::new(),
    };
    for name in ["Office", "Late desk"] {
        a.put_calendar(&calendar(name), "set up", now())
            .await
            .unwrap();
    }
    b.put_calendar(&calendar("Beta hours"), "set up", now())
        .await
        .unwrap();
    let listed: Vec<String> = a
        .calendars()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(listed, vec!["Late desk", "Office"]);
    let b_listed = b.calendars().await.unwrap();
    assert_eq!(b_listed.len(), 1);
    assert_eq!(b_listed[0].holidays, vec![Date::constant(2026, 1, 26)]);

    // Counts per site: one held at Pune, one offered at Manila, one held by a worker without a
    // site and one ready count under no site.
    let asha = routed_worker(store, "Asha", Some(pune.id)).await;
    let ben = routed_worker(store, "Ben", Some(manila.id)).await;
    let cy = routed_worker(store, "Cy", None).await;
    let held = ready_task(&a).await;
    let offered = ready_task(&a).await;
    let nobody = ready_task(&b).await;
    let siteless = ready_task(&b).await;
    a.assign_task(held, asha, id(), now()).await.unwrap();
    assert!(matches!(
        a.make_offer(&offer(offered, ben), now()).await.unwrap(),
        OfferMade::Made(_)
    ));
    b.assign_task(siteless, cy, id(), now()).await.unwrap();
    let mut counts = store.site_queue_counts().await.unwrap();
    counts.sort_by_key(|c| (c.site_id.map(|s| s.to_string()), c.state.code()));
    let mut expected = vec![
        SiteQueueCount {
            site_id: Some(pune.id),
            state: TaskState::Assigned,
            tasks: 1,
        },
        SiteQueueCount {
            site_id: Some(manila.id),
            state: TaskState::Offered,
            tasks: 1,
        },
        SiteQueueCount {
            site_id: None,
            state: TaskState::Assigned,
            tasks: 1,
        },
        SiteQueueCount {
            site_id: None,
            state: TaskState::Ready,
            tasks: 1,
        },
    ];
    expected.sort_by_key(|c| (c.site_id.map(|s| s.to_string()), c.state.code()));
    assert_eq!(counts, expected);
    let _ = nobody;
    assert_intact(store).await;
}

/// A reassignment takes a task from its holder (or withdraws its offer), gives it to the new
/// worker and records the reason, in one transaction; refusals write nothing.
pub async fn reassignment_moves_a_task_once_with_its_reason(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Reassign A").await;
    let other = client(store, "Reassign B").await;
    let asha = routed_worker(store, "Asha", None).await;
    let ben = routed_worker(store, "Ben", None).await;
    let cy = routed_worker(store, "Cy", None).await;

    // A ready task goes straight to the named worker.
    let task = ready_task(&tenant).await;
    let done = tenant
        .reassign_task(&reassignment(task, asha, "first pick"), now())
        .await
        .unwrap();
    assert_eq!(done.previous, None);
    assert_eq!(done.task.state, TaskState::Assigned);
    assert_eq!(store.active_assignee(task).await.unwrap(), Some(asha));

    // A task in progress is released from Asha and given to Ben; the trail says why.
    tenant
        .transition_task(task, TaskState::InProgress, now())
        .await
        .unwrap();
    let done = tenant
        .reassign_task(&reassignment(task, ben, "Asha is off sick"), now())
        .await
        .unwrap();
    assert_eq!(done.previous, Some(asha));
    assert_eq!(store.active_assignee(task).await.unwrap(), Some(ben));
    assert!(store.worker_tasks(asha, 10).await.unwrap().is_empty());
    let events = task_events(&tenant, task).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &kinds[kinds.len() - 4..],
        [
            "task.transitioned",
            "task.released",
            "task.claimed",
            "task.reassigned"
        ]
    );
    let (_, payload) = events.last().unwrap();
    assert_eq!(payload["reason"], "Asha is off sick");
    assert_eq!(payload["from_worker_id"], asha.to_string());
    assert_eq!(payload["to_worker_id"], ben.to_string());
    assert_eq!(payload["rule"], "named");

    // Refusals write nothing: the holder again, a blank reason, another client's task, a task
    // past the worker's hands, an unknown worker.
    let before = task_events(&tenant, task).await.len();
    for (refused, what) in [
        (
            tenant
                .reassign_task(&reassignment(task, ben, "again"), now())
                .await,
            "the holder",
        ),
        (
            tenant
                .reassign_task(&reassignment(task, cy, "   "), now())
                .await,
            "a blank reason",
        ),
        (
            tenant
                .reassign_task(&reassignment(task, id(), "nobody"), now())
                .await,
            "an unknown worker",
        ),
    ] {
        assert!(
            matches!(
                refused,
                Err(StoreError::Rejected { .. } | StoreError::NotFound { .. })
            ),
            "{what}: {refused:?}"
        );
    }
    let foreign = other
        .reassign_task(&reassignment(task, cy, "not mine"), now())
        .await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound { .. })),
        "{foreign:?}"
    );
    assert_eq!(task_events(&tenant, task).await.len(), before);
    assert_eq!(store.active_assignee(task).await.unwrap(), Some(ben));

    for to in [TaskState::InProgress, TaskState::Submitted] {
        tenant.transition_task(task, to, now()).await.unwrap();
    }
    let late = tenant
        .reassign_task(&reassignment(task, cy, "too late"), now())
        .await;
    assert!(matches!(late, Err(StoreError::Rejected { .. })), "{late:?}");
    assert_eq!(store.active_assignee(task).await.unwrap(), Some(ben));

    // An offered task: the offer is withdrawn (not a refusal) and the task goes to Cy.
    let offered = ready_task(&tenant).await;
    let made = offer(offered, asha);
    assert!(matches!(
        tenant.make_offer(&made, now()).await.unwrap(),
        OfferMade::Made(_)
    ));
    let done = tenant
        .reassign_task(&reassignment(offered, cy, "due in an hour"), now())
        .await
        .unwrap();
    assert_eq!(done.previous, Some(asha));
    assert_eq!(store.active_assignee(offered).await.unwrap(), Some(cy));
    let ended = store.offer(asha, made.id).await.unwrap();
    assert_eq!(ended.outcome, Some(OfferOutcome::Withdrawn));
    assert!(store.open_offers(asha).await.unwrap().is_empty());
    assert!(store.refusals(&[offered]).await.unwrap().is_empty());
    assert_intact(store).await;
}

/// Leave is booked for a worker, read back with the routing profile (so no shift counts during
/// it), listed while it lasts, and refused when it is backwards, too long or for nobody.
pub async fn leave_is_booked_and_keeps_the_worker_off_shift(db: &TestDb) {
    use karya_core::workforce::{Leave, ShiftBlock};
    let store = &db.store;
    let asha = routed_worker(store, "Asha", None).await;
    // Round the clock, every day.
    store
        .set_worker_routing(
            asha,
            &WorkerRouting {
                languages: vec!["en".into()],
                time_zone: "UTC".into(),
                shifts: [
                    jiff::civil::Weekday::Monday,
                    jiff::civil::Weekday::Tuesday,
                    jiff::civil::Weekday::Wednesday,
                    jiff::civil::Weekday::Thursday,
                    jiff::civil::Weekday::Friday,
                    jiff::civil::Weekday::Saturday,
                    jiff::civil::Weekday::Sunday,
                ]
                .into_iter()
                .map(|weekday| ShiftBlock {
                    weekday,
                    start: Time::midnight(),
                    length: SignedDuration::from_hours(24),
                })
                .collect(),
                capacity_units: 5,
                excluded_clients: vec![],
            },
            now(),
        )
        .await
        .unwrap();
    let t0 = now();
    let before = store.routed_worker(asha).await.unwrap();
    assert!(before.profile.shift.shift_end_at(t0).is_some());

    let away = Leave {
        from: t0 - SignedDuration::from_hours(1),
        until: t0 + SignedDuration::from_hours(48),
    };
    let booked = store
        .add_leave(asha, uuid::Uuid::now_v7(), &away, "family wedding", now())
        .await
        .unwrap();
    let after = store.routed_worker(asha).await.unwrap();
    assert_eq!(after.profile.shift.leave, vec![booked.leave.clone()]);
    assert_eq!(
        after.profile.shift.shift_end_at(t0),
        None,
        "on leave, off shift"
    );
    let listed = store.leave_of(asha, t0).await.unwrap();
    assert_eq!(listed, vec![booked.clone()]);
    assert!(store
        .leave_of(asha, t0 + SignedDuration::from_hours(49))
        .await
        .unwrap()
        .is_empty());

    for (leave, note) in [
        (
            Leave {
                from: t0,
                until: t0 - SignedDuration::from_hours(1),
            },
            "backwards",
        ),
        (
            Leave {
                from: t0,
                until: t0 + SignedDuration::from_hours(400 * 24),
            },
            "too long",
        ),
    ] {
        let refused = store
            .add_leave(asha, uuid::Uuid::now_v7(), &leave, note, now())
            .await;
        assert!(
            matches!(refused, Err(StoreError::Rejected { .. })),
            "{note}: {refused:?}"
        );
    }
    let nobody = store
        .add_leave(id(), uuid::Uuid::now_v7(), &away, "who", now())
        .await;
    assert!(
        matches!(nobody, Err(StoreError::NotFound { .. })),
        "{nobody:?}"
    );
    assert_eq!(store.leave_of(asha, t0).await.unwrap().len(), 1);
    assert_intact(store).await;
}

/// What a property case does to one task.
#[derive(Debug, Clone)]
enum TaskOp {
    Reassign { to: usize, blank_reason: bool },
    Offer { to: usize },
    Move { to: TaskState },
}

fn task_op() -> impl proptest::strategy::Strategy<Value = TaskOp> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (0..3usize, proptest::bool::weighted(0.1))
            .prop_map(|(to, blank_reason)| TaskOp::Reassign { to, blank_reason }),
        1 => (0..3usize).prop_map(|to| TaskOp::Offer { to }),
        2 => proptest::sample::select(vec![
            TaskState::InProgress,
            TaskState::Submitted,
            TaskState::Ready,
            TaskState::OnHold,
            TaskState::Escalated,
            TaskState::Cancelled,
        ])
        .prop_map(|to| TaskOp::Move { to }),
    ]
}

/// Any sequence of reassignments, offers and moves keeps a task held by at most the one worker
/// the model says, in the state the model says; a refused reassignment changes nothing; every
/// chain stays intact.
pub async fn reassignment_property(db: &TestDb) {
    use proptest::test_runner::{Config, TestRunner};
    let store = db.store.clone();
    let handle = tokio::runtime::Handle::current();
    let cases = match store.engine() {
        karya_store::Engine::Sqlite => 32,
        karya_store::Engine::Postgres => 12,
    };
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&proptest::collection::vec(task_op(), 1..24), |ops| {
            handle.block_on(check_reassign_ops(&store, ops));
            Ok(())
        });
        if let Err(err) = result {
            panic!("{err}");
        }
    });
}

async fn check_reassign_ops(store: &Store, ops: Vec<TaskOp>) {
    let tenant = client(store, &format!("reassign prop {}", uuid::Uuid::now_v7())).await;
    let mut workers = Vec::new();
    for n in 0..3 {
        workers.push(routed_worker(store, &format!("w{n} {}", uuid::Uuid::now_v7()), None).await);
    }
    let task = ready_task(&tenant).await;
    let (mut state, mut holder): (TaskState, Option<usize>) = (TaskState::Ready, None);
    for op in ops {
        match op {
            TaskOp::Reassign { to, blank_reason } => {
                let reason = if blank_reason { " " } else { "cover" };
                let result = tenant
                    .reassign_task(&reassignment(task, workers[to], reason), now())
                    .await;
                // The holder cannot be given their own task; the worker it is offered to can
                // (the offer is withdrawn and the task assigned at once).
                let allowed = !blank_reason
                    && karya_store::REASSIGNABLE.contains(&state)
                    && !(state.is_held() && holder == Some(to));
                assert_eq!(result.is_ok(), allowed, "{state} to w{to}: {result:?}");
                if allowed {
                    state = TaskState::Assigned;
                    holder = Some(to);
                }
            }
            TaskOp::Offer { to } => {
                let made = tenant
                    .make_offer(&offer(task, workers[to]), now())
                    .await
                    .unwrap();
                match state {
                    TaskState::Ready => {
                        assert!(matches!(made, OfferMade::Made(_)), "{made:?}");
                        state = TaskState::Offered;
                        holder = Some(to);
                    }
                    _ => assert_eq!(made, OfferMade::Taken),
                }
            }
            TaskOp::Move { to } => {
                // An offer ends through the offer paths, not a plain move.
                if state == TaskState::Offered {
                    continue;
                }
                let allowed = state.transition(to).is_ok();
                let result = tenant.transition_task(task, to, now()).await;
                assert_eq!(result.is_ok(), allowed, "{state} -> {to}: {result:?}");
                if allowed {
                    if state.is_held() && !to.is_held() {
                        holder = None;
                    }
                    state = to;
                }
            }
        }
        assert_eq!(tenant.task(task).await.unwrap().state, state);
        let assignee = store.active_assignee(task).await.unwrap();
        let offered: Vec<WorkerId> = {
            let mut open = Vec::new();
            for w in &workers {
                open.extend(
                    store
                        .open_offers(*w)
                        .await
                        .unwrap()
                        .iter()
                        .map(|o| o.worker_id),
                );
            }
            open
        };
        match state {
            TaskState::Offered => {
                assert_eq!(assignee, None);
                assert_eq!(offered, vec![workers[holder.unwrap()]]);
            }
            s if s.is_held() => {
                assert_eq!(assignee, holder.map(|h| workers[h]));
                assert!(offered.is_empty());
            }
            _ => {
                assert_eq!(assignee, None);
                assert!(offered.is_empty());
            }
        }
    }
    let status = store.verify_chain(tenant.client_id()).await.unwrap();
    assert!(status.broken.is_none(), "{status:?}");
}
