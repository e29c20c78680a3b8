//! The conformance tests themselves; `main.rs` runs each on both engines.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use karya_core::chain::BreakReason;
use karya_core::id::{
    AssignmentId, ClientId, DecisionId, EngagementId, TaskId, WorkItemId, WorkerId,
};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Designation, Priority};
use karya_core::money::Currency;
use karya_core::service_line::ServiceLine;
use karya_store::{
    NewEngagement, NewTask, NewWorkItem, PageRequest, Store, StoreError, StoreOptions, Tenant,
    WorkItemFilter,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

pub use crate::case_suite::*;
use crate::harness::TestDb;
pub use crate::sla_suite::*;

pub use crate::consensus_suite::*;
pub use crate::decisions::*;
pub use crate::documents_suite::*;
pub use crate::flow_suite::*;
pub use crate::intake_suite::*;
pub use crate::loops_suite::*;
pub use crate::metrics_suite::*;
pub use crate::qa_suite::*;
pub use crate::sites_suite::*;
pub use crate::views_suite::*;
pub use crate::webhooks_suite::*;

/// A deterministic clock: each call is one second after the previous one.
static SECONDS: AtomicI64 = AtomicI64::new(1_790_000_000);

pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(SECONDS.fetch_add(1, Ordering::Relaxed)).unwrap()
}

/// Moves the test clock forward.
pub(crate) fn advance_hours(hours: i64) {
    SECONDS.fetch_add(hours * 3600, Ordering::Relaxed);
}

fn new_id<T: From<uuid::Uuid>>() -> T {
    T::from(uuid::Uuid::now_v7())
}

macro_rules! impl_from_uuid {
    ($($t:ty),*) => {$(
        impl From<uuid::Uuid> for Wrap<$t> { fn from(u: uuid::Uuid) -> Self { Wrap(<$t>::from_uuid(u)) } }
    )*};
}
pub(crate) struct Wrap<T>(T);
impl_from_uuid!(
    ClientId,
    EngagementId,
    WorkItemId,
    TaskId,
    WorkerId,
    AssignmentId,
    DecisionId
);
pub(crate) fn id<T>() -> T
where
    Wrap<T>: From<uuid::Uuid>,
{
    new_id::<Wrap<T>>().0
}

pub(crate) async fn client(store: &Store, name: &str) -> Tenant {
    let client_id: ClientId = id();
    store
        .create_client(client_id, name, Currency::USD, now())
        .await
        .unwrap();
    store.tenant(client_id)
}

pub(crate) async fn engagement(tenant: &Tenant, name: &str) -> EngagementId {
    let new = NewEngagement {
        id: id(),
        name: name.into(),
        service_line: ServiceLine::IpResearch,
    };
    tenant.create_engagement(&new, now()).await.unwrap().id
}

pub(crate) fn new_item(engagement_id: EngagementId, external_ref: Option<&str>) -> NewWorkItem {
    NewWorkItem {
        id: id(),
        engagement_id,
        external_ref: external_ref.map(str::to_string),
        title: "prior-art search: bubble washers".into(),
        priority: Priority::Normal,
        input: r#"{"claims":"1. A washer that cleans with bubbles."}"#.into(),
    }
}

pub(crate) async fn item(tenant: &Tenant, engagement_id: EngagementId) -> WorkItemId {
    tenant
        .create_work_item(&new_item(engagement_id, None), now())
        .await
        .unwrap()
        .id
}

pub(crate) async fn worker(store: &Store, name: &str) -> WorkerId {
    let worker_id: WorkerId = id();
    store
        .create_worker(worker_id, name, None, Designation::Analyst, now())
        .await
        .unwrap();
    worker_id
}

pub(crate) async fn event_count(tenant: &Tenant) -> usize {
    let mut count = 0;
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let events = tenant.events(&page).await.unwrap();
        count += events.items.len();
        match events.next_after {
            Some(after) => page.after = Some(after),
            None => return count,
        }
    }
}

pub(crate) async fn assert_intact(store: &Store) {
    let report = store.audit(None).await.unwrap();
    assert!(
        report.intact(),
        "audit found a break: {:?}",
        report.first_break()
    );
}

/// Events of any text (accents, scripts, emoji: several bytes per character) hash on both
/// engines exactly as the audit recomputes them, and writers of several chains at once (two
/// clients and the firm's own) leave every chain intact and complete.
pub async fn events_of_any_text_from_concurrent_writers_keep_every_chain(db: &TestDb) {
    let store = &db.store;
    let zoe = client(store, "Zoë's Café — 東京支店 💡").await;
    let other = client(store, "Ørsted Ålesund").await;
    let mut handles = Vec::new();
    for (n, tenant) in [zoe.clone(), other.clone()]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let engagement_id = engagement(&tenant, &format!("Recherche n° {n} — 調査")).await;
            for k in 0..5 {
                let mut new = new_item(engagement_id, Some(&format!("réf-{n}-{k}-✓")));
                new.title = format!("Prüfung {k}: naïve façade, 特許 🔍");
                new.input = format!(r#"{{"note":"Straße {k} — «quoted» \u00e9 ✓ 💡"}}"#);
                tenant.create_work_item(&new, now()).await.unwrap();
            }
            worker(&store, &format!("Søren Ålund {n} 🙂")).await;
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    // Per client: its creation, four engagements, twenty items, each with its event.
    for tenant in [&zoe, &other] {
        assert_eq!(event_count(tenant).await, 1 + 4 + 20);
    }
    assert_intact(store).await;
}

/// A transaction that appends more events than one insert statement links (here 4,500 tasks
/// created at once) links them all, in order, in an intact chain; and a failed one links none.
pub async fn a_large_transaction_links_every_event_in_order(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Many Events").await;
    let engagement_id = engagement(&tenant, "batch").await;
    let item_id = item(&tenant, engagement_id).await;
    let before = event_count(&tenant).await;
    let batch: Vec<NewTask> = (0..4_500)
        .map(|n| NewTask {
            id: id(),
            work_item_id: item_id,
            step: format!("part_{n:03}"),
        })
        .collect();
    let tasks = tenant.create_tasks(&batch, now()).await.unwrap();
    assert_eq!(tasks.len(), 4_500);
    let after = event_count(&tenant).await;
    assert!(after >= before + 4_500, "{before} events, then {after}");
    assert_intact(store).await;
    // The task events follow one another in the order the tasks were made.
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    let mut created = Vec::new();
    loop {
        let events = tenant.events(&page).await.unwrap();
        created.extend(
            events
                .items
                .iter()
                .filter(|e| e.kind == "task.created")
                .map(|e| e.entity_id.clone()),
        );
        match events.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let made: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(created, made);
    // A batch naming a missing work item stores nothing, events included.
    let mut bad = batch[..3]
        .iter()
        .map(|t| NewTask {
            id: id(),
            ..t.clone()
        })
        .collect::<Vec<_>>();
    bad[2].work_item_id = id();
    assert!(tenant.create_tasks(&bad, now()).await.is_err());
    assert_eq!(event_count(&tenant).await, after);
    assert_intact(store).await;
}

pub async fn clients_are_created_listed_and_unique(db: &TestDb) {
    let store = &db.store;
    for name in ["Acme Insurance", "Globex Pharma", "Initech Legal"] {
        client(store, name).await;
    }
    let first = store
        .list_clients(&PageRequest {
            limit: 2,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = store
        .list_clients(&PageRequest {
            limit: 2,
            after: first.next_after.clone(),
        })
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_after, None);
    let names: HashSet<String> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names.len(), 3);

    let again = store
        .create_client(id(), "Acme Insurance", Currency::INR, now())
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    let missing = store.client(id()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { kind: "client", .. })),
        "{missing:?}"
    );

    let stored = store.client(first.items[0].id).await.unwrap();
    assert_eq!(stored, first.items[0]);
    assert_intact(store).await;
}

pub async fn tenant_reads_never_cross_clients(db: &TestDb) {
    let store = &db.store;
    let a = client(store, "Client A").await;
    let b = client(store, "Client B").await;
    let a_engagement = engagement(&a, "prior art").await;
    let a_item = item(&a, a_engagement).await;
    let a_task = a
        .create_task(
            &NewTask {
                id: id(),
                work_item_id: a_item,
                step: "search".into(),
            },
            now(),
        )
        .await
        .unwrap();

    let not_found =
        |result: Result<_, StoreError>| matches!(result, Err(StoreError::NotFound { .. }));
    assert!(not_found(b.engagement(a_engagement).await.map(|_| ())));
    assert!(not_found(b.work_item(a_item).await.map(|_| ())));
    assert!(not_found(b.task(a_task.id).await.map(|_| ())));
    assert!(not_found(
        b.create_work_item(&new_item(a_engagement, None), now())
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        b.transition_work_item(a_item, WorkItemState::InProgress, None, None, now())
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        b.transition_task(a_task.id, TaskState::Cancelled, now())
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        b.create_task(
            &NewTask {
                id: id(),
                work_item_id: a_item,
                step: "search".into()
            },
            now()
        )
        .await
        .map(|_| ())
    ));
    assert!(not_found(
        b.assign_task(a_task.id, worker(store, "w").await, id(), now())
            .await
            .map(|_| ())
    ));
    assert!(b
        .list_engagements(&PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(b
        .list_work_items(&WorkItemFilter::default(), &PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(b.tasks_of(a_item).await.unwrap().is_empty());
    assert!(b
        .entity_events("work_item", &a_item.to_string())
        .await
        .unwrap()
        .is_empty());
    let b_events = b.events(&PageRequest::default()).await.unwrap().items;
    assert_eq!(b_events.len(), 1, "only B's own client.created event");
    // A is untouched by B's failed attempts.
    assert_eq!(
        a.work_item(a_item).await.unwrap().state,
        WorkItemState::Received
    );
    assert_intact(store).await;
}

pub async fn work_item_lifecycle_is_event_sourced(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let engagement_id = engagement(&tenant, "claims").await;
    let item_id = item(&tenant, engagement_id).await;
    use WorkItemState::*;
    for to in [InProgress, OnHold, InProgress, Delivered, Closed] {
        let item = tenant
            .transition_work_item(item_id, to, Some("test"), None, now())
            .await
            .unwrap();
        assert_eq!(item.state, to);
    }
    let item = tenant.work_item(item_id).await.unwrap();
    assert_eq!((item.state, item.version), (Closed, 6));
    let events = tenant
        .entity_events("work_item", &item_id.to_string())
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "work_item.created",
            "work_item.transitioned",
            "work_item.transitioned",
            "work_item.transitioned",
            "work_item.transitioned",
            "work_item.transitioned"
        ]
    );
    assert!(
        events[4].payload.contains(r#""to":"delivered""#),
        "{}",
        events[4].payload
    );

    let by_state = tenant
        .list_work_items(
            &WorkItemFilter {
                state: Some(Closed),
                engagement_id: None,
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(by_state.items.len(), 1);
    let none_open = tenant
        .list_work_items(
            &WorkItemFilter {
                state: Some(Received),
                engagement_id: None,
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert!(none_open.items.is_empty());
    assert_intact(store).await;
}

pub async fn illegal_transitions_write_nothing(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let engagement_id = engagement(&tenant, "claims").await;
    let item_id = item(&tenant, engagement_id).await;
    let before = event_count(&tenant).await;
    let err = tenant
        .transition_work_item(item_id, WorkItemState::Delivered, None, None, now())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a work item cannot go from received to delivered; from received it can go to: in_progress, on_hold, cancelled"
    );
    let task = tenant
        .create_task(
            &NewTask {
                id: id(),
                work_item_id: item_id,
                step: "check".into(),
            },
            now(),
        )
        .await
        .unwrap();
    let err = tenant
        .transition_task(task.id, TaskState::Done, now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
    assert_eq!(
        event_count(&tenant).await,
        before + 1,
        "only the task.created event was added"
    );
    assert_eq!(
        tenant.work_item(item_id).await.unwrap().state,
        WorkItemState::Received
    );
    assert_eq!(tenant.task(task.id).await.unwrap().state, TaskState::Ready);
}

pub async fn external_ref_and_version_conflicts(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let claims = engagement(&tenant, "claims").await;
    let other = engagement(&tenant, "other").await;
    let first = tenant
        .create_work_item(&new_item(claims, Some("CLM-1")), now())
        .await
        .unwrap();
    let err = tenant
        .create_work_item(&new_item(claims, Some("CLM-1")), now())
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { message } => {
            assert!(message.contains(&first.id.to_string()), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    tenant
        .create_work_item(&new_item(other, Some("CLM-1")), now())
        .await
        .unwrap();

    tenant
        .transition_work_item(first.id, WorkItemState::InProgress, None, Some(1), now())
        .await
        .unwrap();
    let stale = tenant
        .transition_work_item(first.id, WorkItemState::OnHold, None, Some(1), now())
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(
        tenant.work_item(first.id).await.unwrap().state,
        WorkItemState::InProgress
    );
    assert_intact(store).await;
}

pub async fn claim_race_is_exactly_once(db: &TestDb) {
    const TASKS: usize = 10_000;
    const CLAIMERS: usize = 32;
    const CLIENTS: usize = 4;
    let store = &db.store;
    let mut all_tasks = HashSet::new();
    for client_idx in 0..CLIENTS {
        let tenant = client(store, &format!("Client {client_idx}")).await;
        let engagement_id = engagement(&tenant, "data entry").await;
        let per_client = TASKS / CLIENTS;
        for _ in 0..per_client / 250 {
            let item_id = item(&tenant, engagement_id).await;
            let batch: Vec<NewTask> = (0..250)
                .map(|_| NewTask {
                    id: id(),
                    work_item_id: item_id,
                    step: "key".into(),
                })
                .collect();
            for task in tenant.create_tasks(&batch, now()).await.unwrap() {
                all_tasks.insert(task.id);
            }
        }
    }
    assert_eq!(all_tasks.len(), TASKS);

    let mut claimers = tokio::task::JoinSet::new();
    for claimer_idx in 0..CLAIMERS {
        let store = store.clone();
        let worker_id = worker(&store, &format!("worker {claimer_idx}")).await;
        claimers.spawn(async move {
            let mut claimed = Vec::new();
            loop {
                match store.claim_next_task(worker_id, id(), now()).await {
                    Ok(Some(task)) => claimed.push(task.id),
                    Ok(None) => return (worker_id, claimed),
                    Err(err) => panic!("claim failed: {err}"),
                }
                // Let the other claimers run between claims, as real workers would.
                tokio::task::yield_now().await;
            }
        });
    }
    let mut seen = HashMap::new();
    let mut idle_claimers = 0;
    while let Some(result) = claimers.join_next().await {
        let (worker_id, claimed) = result.unwrap();
        if claimed.is_empty() {
            idle_claimers += 1;
        }
        for task_id in claimed {
            if let Some(previous) = seen.insert(task_id, worker_id) {
                panic!("task {task_id} claimed twice, by {previous} and {worker_id}");
            }
        }
    }
    assert_eq!(seen.len(), TASKS, "every task claimed exactly once");
    assert_eq!(seen.keys().copied().collect::<HashSet<_>>(), all_tasks);
    assert_eq!(idle_claimers, 0, "every claimer got work: none starved");
    for (task_id, worker_id) in seen.iter().take(50) {
        assert_eq!(
            store.active_assignee(*task_id).await.unwrap(),
            Some(*worker_id)
        );
    }
    assert!(store
        .claim_next_task(worker(store, "late").await, id(), now())
        .await
        .unwrap()
        .is_none());
    assert_intact(store).await;
}

pub async fn one_active_assignment_is_enforced_by_the_schema(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let engagement_id = engagement(&tenant, "claims").await;
    let item_id = item(&tenant, engagement_id).await;
    let task = tenant
        .create_task(
            &NewTask {
                id: id(),
                work_item_id: item_id,
                step: "adjudicate".into(),
            },
            now(),
        )
        .await
        .unwrap();
    let first = worker(store, "first").await;
    let second = worker(store, "second").await;
    tenant
        .assign_task(task.id, first, id(), now())
        .await
        .unwrap();

    // The code refuses...
    let again = tenant.assign_task(task.id, second, id(), now()).await;
    assert!(
        matches!(again, Err(StoreError::Rejected { .. })),
        "{again:?}"
    );
    // ...and so does the schema, even for a write that bypasses the code.
    let bypass = store
        .execute_raw_for_tests(&format!(
            "INSERT INTO assignments (id, task_id, client_id, worker_id, assigned_at_us) VALUES ('{}', '{}', '{}', '{}', 0)",
            uuid::Uuid::now_v7(),
            task.id,
            tenant.client_id(),
            second
        ))
        .await;
    assert!(bypass.is_err(), "a second active assignment was stored");

    // Releasing frees the task for the next worker.
    tenant
        .transition_task(task.id, TaskState::Ready, now())
        .await
        .unwrap();
    assert_eq!(store.active_assignee(task.id).await.unwrap(), None);
    tenant
        .assign_task(task.id, second, id(), now())
        .await
        .unwrap();
    assert_eq!(store.active_assignee(task.id).await.unwrap(), Some(second));
    assert_intact(store).await;
}

pub async fn tampering_is_detected_and_named(db: &TestDb) {
    let store = &db.store;
    // One client per kind of tampering, each with the same ten events, plus one left alone.
    let flip = |column: &str| {
        format!(
            "UPDATE events SET {column} = substr({column}, 1, 5) || CASE WHEN substr({column}, 6, 1) = 'X' THEN 'Y' ELSE 'X' END || substr({column}, 7)"
        )
    };
    // What is tampered with, the statements that do it, the first broken sequence number, and
    // the reason the audit must give.
    type Case<'a> = (&'a str, Vec<String>, u64, fn(&BreakReason) -> bool);
    let cases: Vec<Case> = vec![
        (
            "payload",
            vec![format!("{} WHERE seq = 4", flip("payload"))],
            4,
            |r| *r == BreakReason::HashMismatch,
        ),
        (
            "kind",
            vec![format!("{} WHERE seq = 5", flip("kind"))],
            5,
            |r| *r == BreakReason::HashMismatch,
        ),
        (
            "entity",
            vec![format!("{} WHERE seq = 3", flip("entity_id"))],
            3,
            |r| *r == BreakReason::HashMismatch,
        ),
        (
            "time",
            vec!["UPDATE events SET at_us = at_us + 1 WHERE seq = 6".into()],
            6,
            |r| *r == BreakReason::HashMismatch,
        ),
        (
            "hash",
            vec![format!("{} WHERE seq = 2", flip("hash"))],
            2,
            |r| *r == BreakReason::HashMismatch,
        ),
        (
            "prev",
            vec![format!("{} WHERE seq = 7", flip("prev_hash"))],
            7,
            |r| *r == BreakReason::PrevHashMismatch,
        ),
        (
            "delete",
            vec!["DELETE FROM events WHERE seq = 5".into()],
            6,
            |r| {
                *r == BreakReason::SequenceGap {
                    expected: 5,
                    found: 6,
                }
            },
        ),
        (
            "truncate",
            vec!["DELETE FROM events WHERE seq = 10".into()],
            10,
            |r| {
                *r == BreakReason::HeadMismatch {
                    head_seq: 10,
                    last_seq: 9,
                }
            },
        ),
        (
            "swap",
            vec![
                "UPDATE events SET seq = -1 WHERE seq = 3".into(),
                "UPDATE events SET seq = 3 WHERE seq = 8".into(),
                "UPDATE events SET seq = 8 WHERE seq = -1".into(),
            ],
            3,
            |r| *r == BreakReason::PrevHashMismatch,
        ),
    ];
    let untouched = client(store, "untouched").await;
    let mut tampered = Vec::new();
    for (name, _, _, _) in &cases {
        let tenant = client(store, name).await;
        let engagement_id = engagement(&tenant, "e").await;
        let item_id = item(&tenant, engagement_id).await;
        for to in [
            WorkItemState::InProgress,
            WorkItemState::OnHold,
            WorkItemState::InProgress,
            WorkItemState::OnHold,
        ] {
            tenant
                .transition_work_item(item_id, to, None, None, now())
                .await
                .unwrap();
        }
        let task = tenant
            .create_task(
                &NewTask {
                    id: id(),
                    work_item_id: item_id,
                    step: "s".into(),
                },
                now(),
            )
            .await
            .unwrap();
        tenant
            .transition_task(task.id, TaskState::OnHold, now())
            .await
            .unwrap();
        tenant
            .transition_task(task.id, TaskState::Ready, now())
            .await
            .unwrap();
        assert_eq!(event_count(&tenant).await, 10);
        tampered.push(tenant.client_id());
    }
    assert_intact(store).await;

    for ((name, statements, seq, reason_ok), client_id) in cases.iter().zip(&tampered) {
        for statement in statements {
            let sql = format!("{statement} AND client_id = '{client_id}'");
            let sql = if statement.contains("WHERE") {
                sql
            } else {
                format!("{statement} WHERE client_id = '{client_id}'")
            };
            assert_eq!(
                store.execute_raw_for_tests(&sql).await.unwrap(),
                1,
                "{name}: {sql}"
            );
        }
        let status = store.verify_chain(*client_id).await.unwrap();
        let broken = status
            .broken
            .unwrap_or_else(|| panic!("{name}: tampering went unnoticed"));
        assert_eq!(broken.client_id, *client_id);
        assert_eq!(broken.seq, *seq, "{name}: {broken}");
        assert!(reason_ok(&broken.reason), "{name}: {broken}");
    }
    let report = store.audit(None).await.unwrap();
    let broken: HashSet<ClientId> = report
        .chains
        .iter()
        .filter(|c| c.broken.is_some())
        .map(|c| c.client_id)
        .collect();
    assert_eq!(broken, tampered.iter().copied().collect());
    assert!(store
        .verify_chain(untouched.client_id())
        .await
        .unwrap()
        .broken
        .is_none());
}

pub async fn reopening_is_idempotent_and_newer_schemas_are_refused(db: &TestDb) {
    let tenant = client(&db.store, "Acme").await;
    let reopened = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        reopened.client(tenant.client_id()).await.unwrap().name,
        "Acme"
    );
    reopened.ping().await.unwrap();
    reopened.integrity_check().await.unwrap();
    reopened.close().await;

    db.store
        .execute_raw_for_tests(&format!(
            "INSERT INTO schema_migrations (version, applied_at_us) VALUES ({}, 0)",
            karya_store::SCHEMA_VERSION + 1
        ))
        .await
        .unwrap();
    let refused = Store::open(&db.url, &StoreOptions::default()).await;
    match refused {
        Err(StoreError::SchemaTooNew { found, known }) => {
            assert_eq!(
                (found, known),
                (karya_store::SCHEMA_VERSION + 1, karya_store::SCHEMA_VERSION)
            )
        }
        other => panic!("expected the newer schema to be refused, got {other:?}"),
    }
}

/// One step of the lifecycle property: move work item `item` or task `task` towards a state.
#[derive(Debug, Clone)]
enum Op {
    Item { item: usize, to: WorkItemState },
    Task { task: usize, to: TaskState },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, prop::sample::select(WorkItemState::ALL))
            .prop_map(|(item, to)| Op::Item { item, to }),
        (0..4usize, prop::sample::select(TaskState::ALL))
            .prop_map(|(task, to)| Op::Task { task, to }),
    ]
}

/// State-machine property: random moves against a model. After every step each item is in
/// exactly the state the model says; only moves in the transition tables succeed; the number
/// of events equals the accepted moves (plus creations); the chain verifies.
pub async fn lifecycle_property(db: &TestDb) {
    let store = db.store.clone();
    let handle = tokio::runtime::Handle::current();
    let cases = if store.engine() == karya_store::Engine::Sqlite {
        48
    } else {
        24
    };
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
            handle.block_on(check_ops(&store, ops));
            Ok(())
        });
        if let Err(err) = result {
            panic!("{err}");
        }
    });
}

async fn check_ops(store: &Store, ops: Vec<Op>) {
    let tenant = client(store, &format!("prop {}", uuid::Uuid::now_v7())).await;
    let engagement_id = engagement(&tenant, "e").await;
    let worker_id = worker(store, "prop worker").await;
    let mut items = Vec::new();
    for _ in 0..3 {
        items.push((item(&tenant, engagement_id).await, WorkItemState::Received));
    }
    let mut tasks = Vec::new();
    for idx in 0..4 {
        let task = tenant
            .create_task(
                &NewTask {
                    id: id(),
                    work_item_id: items[idx % 3].0,
                    step: "s".into(),
                },
                now(),
            )
            .await
            .unwrap();
        tasks.push((task.id, TaskState::Ready));
    }
    // client.created + engagement.created + 3 items + 4 tasks
    let mut expected_events = 2 + 3 + 4;
    for op in ops {
        match op {
            Op::Item { item, to } => {
                let (item_id, state) = items[item];
                let allowed = state.transition(to).is_ok();
                let result = tenant
                    .transition_work_item(item_id, to, None, None, now())
                    .await;
                assert_eq!(result.is_ok(), allowed, "{state} -> {to}: {result:?}");
                if allowed {
                    items[item].1 = to;
                    expected_events += 1;
                }
            }
            Op::Task { task, to } => {
                let (task_id, state) = tasks[task];
                let allowed = state.transition(to).is_ok();
                let result = if to == TaskState::Assigned {
                    tenant.assign_task(task_id, worker_id, id(), now()).await
                } else {
                    tenant.transition_task(task_id, to, now()).await
                };
                assert_eq!(result.is_ok(), allowed, "{state} -> {to}: {result:?}");
                if allowed {
                    tasks[task].1 = to;
                    // Leaving a held state also records the release.
                    expected_events += if state.is_held() && !to.is_held() {
                        2
                    } else {
                        1
                    };
                }
            }
        }
        for (item_id, state) in &items {
            assert_eq!(tenant.work_item(*item_id).await.unwrap().state, *state);
        }
        for (task_id, state) in &tasks {
            assert_eq!(tenant.task(*task_id).await.unwrap().state, *state);
            let held = store.active_assignee(*task_id).await.unwrap().is_some();
            assert_eq!(held, state.is_held(), "task in {state} held={held}");
        }
    }
    assert_eq!(event_count(&tenant).await, expected_events);
    let status = store.verify_chain(tenant.client_id()).await.unwrap();
    assert_eq!(status.broken, None);
    assert_eq!(status.events_verified, expected_events as u64);
}

/// Routing data: a worker's profile round-trips, an engagement's routing is tenant-scoped,
/// ready tasks come with their routing, assignments count against capacity by weight, and
/// explanations are stored and read back only by their client.
pub async fn routing_profiles_rules_and_explanations(db: &TestDb) {
    use jiff::civil::{time, Weekday};
    use jiff::SignedDuration;
    use karya_core::routing::{
        rules::{Path, Rule},
        Explanation, Requirements, RoutingWorkflow, SkillRequirement,
    };
    use karya_core::workforce::{Presence, Qualification, ShiftBlock, Skill};
    use karya_store::{GrowthFlag, WorkerRouting};

    let store = &db.store;
    let worker_id = worker(store, "Asha").await;
    let client_a = client(store, "Routing A").await;
    let client_b = client(store, "Routing B").await;
    let routing = WorkerRouting {
        languages: vec!["en".into(), "hi".into()],
        time_zone: "Asia/Kolkata".into(),
        shifts: vec![ShiftBlock {
            weekday: Weekday::Monday,
            start: time(9, 30, 0, 0),
            length: SignedDuration::from_mins(540),
        }],
        capacity_units: 10,
        excluded_clients: vec![client_b.client_id()],
    };
    // Presence needs a profile first.
    assert!(matches!(
        store
            .set_presence(worker_id, Presence::Available, now())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .set_worker_routing(worker_id, &routing, now())
        .await
        .unwrap();
    let cpa = Qualification {
        kind: "cpa".into(),
        field: None,
        issuer: "aicpa".into(),
        valid_from: Timestamp::from_second(1_700_000_000).unwrap(),
        valid_until: Some(Timestamp::from_second(1_900_000_000).unwrap()),
    };
    store
        .add_qualification(worker_id, uuid::Uuid::now_v7(), &cpa, now())
        .await
        .unwrap();
    let tax = Skill {
        name: "tax".into(),
        level: 7,
    };
    store
        .set_skill(worker_id, &tax, GrowthFlag::Growing, now())
        .await
        .unwrap();
    store
        .set_presence(worker_id, Presence::Available, now())
        .await
        .unwrap();
    let routed = store.routed_worker(worker_id).await.unwrap();
    assert_eq!(routed.presence, Presence::Available);
    assert_eq!(routed.profile.languages, routing.languages);
    assert_eq!(routed.profile.shift.weekly, routing.shifts);
    assert_eq!(
        routed.profile.shift.time_zone.iana_name(),
        Some("Asia/Kolkata")
    );
    assert_eq!(routed.profile.qualifications, vec![cpa]);
    assert_eq!(routed.profile.skills, vec![tax]);
    assert_eq!(routed.profile.growth_skills, vec!["tax".to_string()]);
    assert_eq!(routed.profile.excluded_clients, vec![client_b.client_id()]);
    assert_eq!(routed.profile.capacity.units_max, 10);

    let engagement_id = engagement(&client_a, "tax returns").await;
    let mut req = Requirements::any("research", 4, SignedDuration::from_mins(45));
    req.qualifications = vec!["cpa".into()];
    req.skills = vec![SkillRequirement {
        skill: "tax".into(),
        level_min: 5,
        optional: true,
    }];
    req.target = Some(
        karya_core::routing::expr::parse("'hi' in worker.languages && worker.skills.tax >= 5")
            .unwrap(),
    );
    let flow = RoutingWorkflow::standard();
    client_a
        .set_engagement_routing(engagement_id, &req, &flow, now())
        .await
        .unwrap();
    assert_eq!(
        client_a.engagement_routing(engagement_id).await.unwrap(),
        Some((req.clone(), flow.clone()))
    );
    assert!(matches!(
        client_b.engagement_routing(engagement_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        client_b
            .set_engagement_routing(engagement_id, &req, &flow, now())
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let item_id = item(&client_a, engagement_id).await;
    let task = client_a
        .create_task(
            &NewTask {
                id: id(),
                work_item_id: item_id,
                step: "prepare".into(),
            },
            now(),
        )
        .await
        .unwrap();
    let routable = store.routable_tasks().await.unwrap();
    let found = routable
        .iter()
        .find(|r| r.task.id == task.id)
        .expect("ready task listed");
    assert_eq!(found.engagement_id, engagement_id);
    assert_eq!(
        found.routing.as_ref().map(|(r, _)| (**r).clone()),
        Some(req.clone())
    );

    let assignment_id: AssignmentId = id();
    client_a
        .assign_task(task.id, worker_id, assignment_id, now())
        .await
        .unwrap();
    assert_eq!(
        store.worker_units(worker_id).await.unwrap(),
        (4, vec![("research".to_string(), 4)])
    );
    let explanation = Explanation {
        task_id: task.id,
        decided_at: Timestamp::from_second(1_790_500_000).unwrap(),
        path: Path::GetNext,
        rule: Rule::BestScore,
        step_idx: 0,
        step_name: "as_required".into(),
        candidates: 3,
        eligible: 1,
        rejected: vec![],
        winner: Some(worker_id),
        score: None,
        runner_up_total: None,
        review_required: false,
        truncated: false,
    };
    client_a
        .record_explanation(uuid::Uuid::now_v7(), &explanation, Some(assignment_id))
        .await
        .unwrap();
    let stored = client_a.explanations(task.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].worker_id, stored[0].assignment_id),
        (Some(worker_id), Some(assignment_id))
    );
    assert_eq!(
        (stored[0].path.as_str(), stored[0].rule.as_str()),
        ("get_next", "best_score")
    );
    assert!(stored[0].explanation.contains("\"eligible\":1"));
    assert!(matches!(
        client_b.explanations(task.id).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The events of `client_id` linked into its chain, counted on a connection of its own (a
/// read through the store would link what is queued first).
async fn linked_count(conn: &mut sqlx::PgConnection, client_id: ClientId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE client_id = $1")
        .bind(client_id.to_string())
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Queues an event as a writer does with its change, on a connection of its own.
async fn queue_event(conn: &mut sqlx::PgConnection, client_id: ClientId, entity: &str) {
    sqlx::query(
        "INSERT INTO event_queue (client_id, at_us, kind, entity_type, entity_id, payload)
         VALUES ($1, $2, 'work_item.created', 'work_item', $3, '{}')",
    )
    .bind(client_id.to_string())
    .bind(now().as_microsecond())
    .bind(entity)
    .execute(conn)
    .await
    .unwrap();
}

/// PostgreSQL: events committed queued are linked after their change, in the background; a
/// read of the client's chain links what is queued first, and opening the store links what a
/// writer left queued when it stopped.
pub async fn events_left_queued_are_linked_later(db: &TestDb) {
    use sqlx::Connection;
    let store = &db.store;
    let client_id: ClientId = id();
    store
        .create_client(client_id, "Left Queued", Currency::USD, now())
        .await
        .unwrap();
    let tenant = store.tenant(client_id);
    let before = event_count(&tenant).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    assert_eq!(linked_count(&mut conn, client_id).await, before as i64);

    // A writer that committed its events and stopped before they were linked.
    queue_event(&mut conn, client_id, "left-1").await;
    queue_event(&mut conn, client_id, "left-2").await;
    assert_eq!(
        linked_count(&mut conn, client_id).await,
        before as i64,
        "queued, not linked yet"
    );
    // Reading the chain links them first.
    let events = tenant.events(&PageRequest::default()).await.unwrap().items;
    assert_eq!(events.len(), before + 2);
    assert_eq!(events[before].entity_id, "left-1");
    assert_eq!(events[before + 1].entity_id, "left-2");

    // The client's next change has what is queued before it linked, then its own event, once
    // it has committed.
    queue_event(&mut conn, client_id, "left-3").await;
    engagement(&tenant, "next change").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while linked_count(&mut conn, client_id).await < (before + 4) as i64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the change's events were never linked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let events = tenant.events(&PageRequest::default()).await.unwrap().items;
    assert_eq!(events.len(), before + 4);
    assert_eq!(events[before + 2].entity_id, "left-3");
    assert_eq!(events[before + 3].kind, "engagement.created");

    // Left queued with no later change of the client: opening the store links it.
    queue_event(&mut conn, client_id, "left-4").await;
    let reopened = Store::open(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        linked_count(&mut conn, client_id).await,
        (before + 5) as i64
    );
    conn.close().await.unwrap();
    assert_eq!(reopened.link_queued_events().await.unwrap(), 0);
    assert_intact(&reopened).await;
    reopened.close().await;
}

/// PostgreSQL: a change needs neither the chain head's lock nor its earlier changes' events to
/// be linked: with the head locked by someone else, a work item's changes commit, and the SLA
/// clock each change recomputes reads the item's events still queued. Once the lock is gone
/// they are linked, in order.
pub async fn changes_read_their_queued_events_while_the_chain_is_busy(db: &TestDb) {
    use sqlx::Connection;
    use WorkItemState::*;
    let setup = crate::sla_suite::setup(db, 16).await;
    let tenant = &setup.tenant;
    let client_id = tenant.client_id();
    let before = event_count(tenant).await;

    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut lock = holder.begin().await.unwrap();
    sqlx::query("SELECT seq FROM chain_heads WHERE client_id = $1 FOR UPDATE")
        .bind(client_id.to_string())
        .fetch_one(&mut *lock)
        .await
        .unwrap();
    let item = crate::sla_suite::item(
        &setup,
        "busy chain",
        &[
            ("02T09:00", None),
            ("02T09:30", Some(InProgress)),
            ("02T10:00", Some(OnHold)),
        ],
    )
    .await;
    let mut counter = sqlx::PgConnection::connect(&db.url).await.unwrap();
    assert_eq!(
        linked_count(&mut counter, client_id).await,
        before as i64,
        "the chain head is locked: nothing linked"
    );
    // Paused by the hold after an hour of the clock: the clock started with the item's creation,
    // an event only queued when the later changes read it.
    let state = tenant.sla_state(item).await.unwrap().unwrap();
    assert_eq!(state.clock.code(), "paused");
    assert_eq!(state.resolution.elapsed.as_mins(), 60);

    lock.rollback().await.unwrap();
    holder.close().await.unwrap();
    counter.close().await.unwrap();
    let events = tenant.events(&PageRequest::default()).await.unwrap().items;
    let kinds: Vec<&str> = events[before..].iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "work_item.created",
            "work_item.transitioned",
            "work_item.transitioned"
        ]
    );
    assert_intact(&db.store).await;
}

/// A change's last writes run with its commit (PostgreSQL): a task moved by someone else while
/// a transition waits to write still fails the transition with a conflict, and nothing of it
/// stays, its event included.
pub async fn writes_at_commit_fail_the_change_when_their_row_moved(db: &TestDb) {
    use sqlx::Connection;
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let task_id = crate::sites_suite::ready_task(&tenant).await;
    let worker_id = worker(store, "maker").await;
    let claimed = store.claim_next_task(worker_id, id(), now()).await.unwrap();
    assert_eq!(claimed.map(|t| t.id), Some(task_id));
    let before = event_count(&tenant).await;

    // Another session holds the task's row: the transition reads the task, then waits at its
    // commit's statement for the row.
    let mut holder = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut lock = holder.begin().await.unwrap();
    sqlx::query("SELECT state FROM tasks WHERE id = $1 FOR UPDATE")
        .bind(task_id.to_string())
        .fetch_one(&mut *lock)
        .await
        .unwrap();
    let start = {
        let tenant = store.tenant(tenant.client_id());
        tokio::spawn(async move {
            tenant
                .transition_task(task_id, TaskState::InProgress, now())
                .await
        })
    };
    let mut watcher = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut waited = false;
    for _ in 0..600 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
               AND wait_event_type = 'Lock' AND query LIKE 'WITH w0 AS (UPDATE tasks%'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(waited, "the transition never waited for the task's row");
    // The task is escalated meanwhile; the transition's update no longer finds it assigned.
    sqlx::query("UPDATE tasks SET state = 'escalated' WHERE id = $1")
        .bind(task_id.to_string())
        .execute(&mut *lock)
        .await
        .unwrap();
    lock.commit().await.unwrap();
    let err = start.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { message } if message.contains("changed concurrently")),
        "{err:?}"
    );
    assert_eq!(
        tenant.task(task_id).await.unwrap().state,
        TaskState::Escalated
    );
    assert_eq!(
        event_count(&tenant).await,
        before,
        "the failed transition left no event"
    );
    assert_eq!(
        store.active_assignee(task_id).await.unwrap(),
        Some(worker_id),
        "the assignment is not released by a failed change"
    );
    holder.close().await.unwrap();
    watcher.close().await.unwrap();
    assert_intact(store).await;
}

/// A claim's writes read their database errors as the claim's: a worker who does not exist is
/// not found, and nothing of the claim stays.
pub async fn an_assignment_to_a_missing_worker_is_not_found_and_leaves_nothing(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let task_id = crate::sites_suite::ready_task(&tenant).await;
    let before = event_count(&tenant).await;
    let nobody = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let err = tenant
        .assign_task(
            task_id,
            nobody,
            AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { kind: "worker", .. }),
        "{err:?}"
    );
    assert_eq!(tenant.task(task_id).await.unwrap().state, TaskState::Ready);
    assert_eq!(store.active_assignee(task_id).await.unwrap(), None);
    assert_eq!(event_count(&tenant).await, before, "no event of the claim");
    // The task is still there for a worker who exists.
    let maker = worker(store, "maker").await;
    let claimed = store.claim_next_task(maker, id(), now()).await.unwrap();
    assert_eq!(claimed.map(|t| t.id), Some(task_id));
    assert_intact(store).await;
}

/// SQLite: commits leave their pages in the write-ahead log (the writer runs no checkpoint),
/// and the background checkpointer copies them into the database file soon after.
pub async fn the_log_is_folded_into_the_database_file_in_the_background(db: &TestDb) {
    use sqlx::Connection;
    let path = db
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite test database")
        .to_string();
    let store = &db.store;
    let tenant = client(store, "Acme").await;
    let engagement_id = engagement(&tenant, "claims").await;
    // Let the checkpoint of the set-up pass, then measure from there.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let before = std::fs::metadata(&path).unwrap().len();
    for _ in 0..300 {
        item(&tenant, engagement_id).await;
    }
    let mut grown = 0;
    for _ in 0..200 {
        grown = std::fs::metadata(&path)
            .unwrap()
            .len()
            .saturating_sub(before);
        if grown >= 64 * 1024 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        grown >= 64 * 1024,
        "the database file grew by {grown} bytes only: the log was not checkpointed"
    );
    let (autocheckpoint,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(&mut sqlx::SqliteConnection::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        autocheckpoint, 1000,
        "a new connection keeps SQLite's default"
    );
}
