//! Conformance tests of what the background loops rely on: offers that reserve capacity and
//! end exactly once, claims that cannot overfill a worker, leadership, and SLA warnings given
//! once per item and milestone.

use jiff::{SignedDuration, Timestamp};
use karya_core::id::{AssignmentId, OfferId, TaskId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::OfferOutcome;
use karya_core::routing::rules::{Path, Rule};
use karya_core::routing::{Explanation, Requirements, RoutingWorkflow};
use karya_store::{
    Claim, NewOffer, NewTask, OfferMade, RankedTask, Store, StoreError, Tenant, WorkerRouting,
};

use crate::harness::TestDb;
use crate::suite::{client, engagement, id, item, now, worker};

fn explanation(task_id: TaskId, worker_id: WorkerId, path: Path, at: Timestamp) -> Explanation {
    Explanation {
        task_id,
        decided_at: at,
        path,
        rule: Rule::BestScore,
        step_idx: 0,
        step_name: "as_required".into(),
        candidates: 2,
        eligible: 1,
        rejected: vec![],
        winner: Some(worker_id),
        score: None,
        runner_up_total: None,
        review_required: false,
        truncated: false,
    }
}

async fn routed_worker(store: &Store, name: &str, capacity_units: u32) -> WorkerId {
    let worker_id = worker(store, name).await;
    store
        .set_worker_routing(
            worker_id,
            &WorkerRouting {
                languages: vec!["en".into()],
                time_zone: "UTC".into(),
                shifts: vec![],
                capacity_units,
                excluded_clients: vec![],
            },
            now(),
        )
        .await
        .unwrap();
    worker_id
}

/// A client with one engagement whose tasks weigh `weight` units, and `n` ready tasks.
async fn ready_tasks(store: &Store, weight: u32, n: usize) -> (Tenant, Vec<TaskId>) {
    let tenant = client(store, &format!("Loops {}", uuid::Uuid::now_v7())).await;
    let engagement_id = engagement(&tenant, "returns").await;
    let req = Requirements::any("research", weight, SignedDuration::from_mins(30));
    tenant
        .set_engagement_routing(engagement_id, &req, &RoutingWorkflow::standard(), now())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let item_id = item(&tenant, engagement_id).await;
        let task = tenant
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
        tasks.push(task.id);
    }
    (tenant, tasks)
}

fn new_offer(task_id: TaskId, worker_id: WorkerId, expires_at: Timestamp) -> NewOffer {
    NewOffer {
        id: OfferId::from_uuid(uuid::Uuid::now_v7()),
        task_id,
        worker_id,
        expires_at,
        explanation: explanation(task_id, worker_id, Path::Offer, now()),
        explanation_id: uuid::Uuid::now_v7(),
    }
}

async fn made(tenant: &Tenant, offer: &NewOffer) -> OfferMade {
    tenant.make_offer(offer, now()).await.unwrap()
}

/// Offers move tasks to `offered` and reserve capacity; a full worker gets no more; a task has
/// one open offer; declining and timing out return the task to `ready` and count as refusals;
/// accepting assigns through the exactly-once path and links the explanation; an ended or
/// expired offer cannot be accepted; another worker's offer reads as missing.
pub async fn offers_reserve_capacity_and_end_once(db: &TestDb) {
    let store = &db.store;
    let asha = routed_worker(store, "Asha", 2).await;
    let ben = routed_worker(store, "Ben", 5).await;
    let (tenant, tasks) = ready_tasks(store, 1, 4).await;
    let far = now() + SignedDuration::from_hours(1);

    let first = new_offer(tasks[0], asha, far);
    let OfferMade::Made(offer) = made(&tenant, &first).await else {
        panic!("first offer not made")
    };
    assert_eq!((offer.units, offer.outcome), (1, None));
    assert_eq!(
        tenant.task(tasks[0]).await.unwrap().state,
        TaskState::Offered
    );
    // The task has its one open offer: a second one is refused.
    assert_eq!(
        made(&tenant, &new_offer(tasks[0], ben, far)).await,
        OfferMade::Taken
    );
    let second = new_offer(tasks[1], asha, far);
    assert!(matches!(made(&tenant, &second).await, OfferMade::Made(_)));
    assert_eq!(store.worker_capacity(asha).await.unwrap().used, 2);
    // Asha is full: offers held count against capacity like assignments.
    assert_eq!(
        made(&tenant, &new_offer(tasks[2], asha, far)).await,
        OfferMade::AtCapacity
    );
    assert_eq!(tenant.task(tasks[2]).await.unwrap().state, TaskState::Ready);
    let open: Vec<_> = store
        .open_offers(asha)
        .await
        .unwrap()
        .iter()
        .map(|o| o.task_id)
        .collect();
    assert_eq!(open, vec![tasks[0], tasks[1]]);

    // Declining: the task is ready again and Asha is a refusal for it.
    assert!(matches!(
        store.decline_offer(ben, first.id, now()).await,
        Err(StoreError::NotFound { .. })
    ));
    let declined = store.decline_offer(asha, first.id, now()).await.unwrap();
    assert_eq!(declined.outcome, Some(OfferOutcome::Declined));
    assert_eq!(tenant.task(tasks[0]).await.unwrap().state, TaskState::Ready);
    assert!(matches!(
        store.decline_offer(asha, first.id, now()).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.accept_offer(asha, first.id, id(), now()).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.refusals(&tasks).await.unwrap(),
        vec![(tasks[0], asha)]
    );

    // Accepting: assigned, the offer's units become the assignment's, the explanation points
    // at the assignment.
    let assignment_id: AssignmentId = id();
    let task = store
        .accept_offer(asha, second.id, assignment_id, now())
        .await
        .unwrap();
    assert_eq!(task.state, TaskState::Assigned);
    assert_eq!(store.active_assignee(tasks[1]).await.unwrap(), Some(asha));
    assert_eq!(store.worker_capacity(asha).await.unwrap().used, 1);
    let explained = tenant.explanations(tasks[1]).await.unwrap();
    assert_eq!(explained.len(), 1);
    assert_eq!(explained[0].assignment_id, Some(assignment_id));
    assert_eq!(explained[0].path, "offer");

    // Timing out: an offer past its expiry ends at the next sweep, and cannot be accepted.
    let soon = now() + SignedDuration::from_secs(30);
    let third = new_offer(tasks[3], ben, soon);
    assert!(matches!(made(&tenant, &third).await, OfferMade::Made(_)));
    assert!(store
        .expire_offers(soon - SignedDuration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.accept_offer(ben, third.id, id(), soon).await,
        Err(StoreError::Conflict { .. })
    ));
    let expired = store.expire_offers(soon).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].outcome, Some(OfferOutcome::TimedOut));
    assert_eq!(tenant.task(tasks[3]).await.unwrap().state, TaskState::Ready);
    assert!(store.expire_offers(soon).await.unwrap().is_empty());
    let mut refusals = store.refusals(&tasks).await.unwrap();
    refusals.sort();
    let mut expected = vec![(tasks[0], asha), (tasks[3], ben)];
    expected.sort();
    assert_eq!(refusals, expected);
    assert_eq!(store.worker_capacity(ben).await.unwrap().used, 0);

    // Escalation takes a ready task out of routing with its explanation, once.
    let mut why = explanation(tasks[2], asha, Path::Offer, now());
    why.rule = Rule::Escalated;
    why.winner = None;
    assert!(tenant
        .escalate_task(tasks[2], &why, uuid::Uuid::now_v7(), now())
        .await
        .unwrap());
    assert!(!tenant
        .escalate_task(tasks[2], &why, uuid::Uuid::now_v7(), now())
        .await
        .unwrap());
    assert_eq!(
        tenant.task(tasks[2]).await.unwrap().state,
        TaskState::Escalated
    );
    crate::suite::assert_intact(store).await;
}

/// Many claims at once for one worker never take more than their capacity, and two workers
/// claiming the same task never both get it.
pub async fn capacity_claims_race_is_exactly_once(db: &TestDb) {
    let store = &db.store;
    let asha = routed_worker(store, "Asha", 3).await;
    let (tenant, tasks) = ready_tasks(store, 1, 12).await;
    let client_id = tenant.client_id();
    let mut handles = Vec::new();
    for task_id in tasks.iter().copied() {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let why = explanation(task_id, asha, Path::GetNext, now());
            store
                .claim_within_capacity(
                    client_id,
                    task_id,
                    asha,
                    id(),
                    (&why, uuid::Uuid::now_v7()),
                    now(),
                )
                .await
                .unwrap()
        }));
    }
    let mut assigned = 0;
    let mut full = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Claim::Assigned(_) => assigned += 1,
            Claim::AtCapacity { units_max, .. } => {
                assert_eq!(units_max, 3);
                full += 1
            }
            Claim::Taken => panic!("nobody else claims these tasks"),
            Claim::Excluded => panic!("nobody is excluded from these tasks"),
        }
    }
    assert_eq!((assigned, full), (3, 9));
    assert_eq!(store.worker_capacity(asha).await.unwrap().used, 3);

    // Two workers, one task: exactly one wins.
    let (tenant, tasks) = ready_tasks(store, 1, 1).await;
    let workers = [
        routed_worker(store, "Chen", 5).await,
        routed_worker(store, "Devi", 5).await,
    ];
    let client_id = tenant.client_id();
    let task_id = tasks[0];
    let mut handles = Vec::new();
    for worker_id in workers {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let why = explanation(task_id, worker_id, Path::GetNext, now());
            store
                .claim_within_capacity(
                    client_id,
                    task_id,
                    worker_id,
                    id(),
                    (&why, uuid::Uuid::now_v7()),
                    now(),
                )
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Claim::Assigned(_) => winners += 1,
            Claim::Taken => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(tenant.explanations(task_id).await.unwrap().len(), 1);
}

/// A ranked claim takes the best task of the ranking still ready, passes over taken ones and
/// those the worker is excluded from, respects capacity, and under many concurrent claimers
/// over the same ranking gives every task to exactly one of them.
pub async fn ranked_claims_take_the_best_task_left_exactly_once(db: &TestDb) {
    let store = &db.store;
    let (tenant, tasks) = ready_tasks(store, 1, 40).await;
    let client_id = tenant.client_id();
    let asha = routed_worker(store, "Asha", 2).await;
    let chen = routed_worker(store, "Chen", 5).await;
    let whys_for = |worker_id: WorkerId| -> Vec<Explanation> {
        tasks
            .iter()
            .map(|t| explanation(*t, worker_id, Path::GetNext, now()))
            .collect()
    };
    let (asha_whys, chen_whys) = (whys_for(asha), whys_for(chen));
    fn ranked<'a>(
        client_id: karya_core::id::ClientId,
        tasks: &[TaskId],
        whys: &'a [Explanation],
        order: &[usize],
    ) -> Vec<RankedTask<'a>> {
        order
            .iter()
            .map(|&n| RankedTask {
                client_id,
                task_id: tasks[n],
                explanation: &whys[n],
                explanation_id: uuid::Uuid::now_v7(),
            })
            .collect()
    }
    let ranking = |whys, order| ranked(client_id, &tasks, whys, order);

    // The best of the ranking wins, whatever the queue order.
    let (idx, claim) = store
        .claim_ranked(asha, &ranking(&asha_whys, &[5, 1, 2]), id(), now())
        .await
        .unwrap();
    assert_eq!(idx, 0);
    let Claim::Assigned(task) = claim else {
        panic!("expected an assignment, got {claim:?}")
    };
    assert_eq!(task.id, tasks[5]);
    assert_eq!(
        tenant.task(tasks[5]).await.unwrap().state,
        TaskState::Assigned
    );
    assert_eq!(tenant.explanations(tasks[5]).await.unwrap().len(), 1);

    // A taken task is passed over for the next one.
    let (idx, claim) = store
        .claim_ranked(asha, &ranking(&asha_whys, &[5, 1]), id(), now())
        .await
        .unwrap();
    assert_eq!(idx, 1);
    assert!(
        matches!(claim, Claim::Assigned(ref t) if t.id == tasks[1]),
        "{claim:?}"
    );

    // Full: the worker holds 2 of 2 units.
    let (_, claim) = store
        .claim_ranked(asha, &ranking(&asha_whys, &[2]), id(), now())
        .await
        .unwrap();
    assert!(
        matches!(
            claim,
            Claim::AtCapacity {
                units_used: 2,
                units_max: 2
            }
        ),
        "{claim:?}"
    );
    assert_eq!(tenant.task(tasks[2]).await.unwrap().state, TaskState::Ready);

    // Nothing left in the ranking: taken, and nothing changes.
    let (_, claim) = store
        .claim_ranked(chen, &ranking(&chen_whys, &[5, 1]), id(), now())
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Taken), "{claim:?}");
    assert!(matches!(
        store.claim_ranked(chen, &[], id(), now()).await.unwrap().1,
        Claim::Taken
    ));

    // Many claimers with the same ranking of the rest: each task goes to exactly one.
    let rest: Vec<usize> = (0..tasks.len()).filter(|n| ![1, 5].contains(n)).collect();
    let mut workers = Vec::new();
    for n in 0..12 {
        workers.push(routed_worker(store, &format!("Claimer {n}"), 3).await);
    }
    let tasks_shared = std::sync::Arc::new(tasks.clone());
    let rest = std::sync::Arc::new(rest);
    let mut handles = Vec::new();
    for worker_id in workers.iter().copied() {
        let store = store.clone();
        let tasks = tasks_shared.clone();
        let rest = rest.clone();
        handles.push(tokio::spawn(async move {
            let whys: Vec<Explanation> = rest
                .iter()
                .map(|&n| explanation(tasks[n], worker_id, Path::GetNext, now()))
                .collect();
            let mut won = Vec::new();
            loop {
                let ranked: Vec<RankedTask<'_>> = rest
                    .iter()
                    .zip(&whys)
                    .map(|(&n, why)| RankedTask {
                        client_id,
                        task_id: tasks[n],
                        explanation: why,
                        explanation_id: uuid::Uuid::now_v7(),
                    })
                    .collect();
                match store
                    .claim_ranked(worker_id, &ranked, id(), now())
                    .await
                    .unwrap()
                {
                    (_, Claim::Assigned(task)) => won.push(task.id),
                    (_, Claim::AtCapacity { .. } | Claim::Taken) => return won,
                    (_, Claim::Excluded) => panic!("nobody is excluded"),
                }
            }
        }));
    }
    let mut won: Vec<TaskId> = Vec::new();
    for handle in handles {
        won.extend(handle.await.unwrap());
    }
    let expected = rest.len().min(12 * 3);
    assert_eq!(
        won.len(),
        expected,
        "every claim a different task, up to capacity"
    );
    let mut unique = won.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), won.len(), "a task was claimed twice: {won:?}");
    for worker_id in &workers {
        assert!(store.worker_capacity(*worker_id).await.unwrap().used <= 3);
    }
    crate::suite::assert_intact(store).await;
}

/// A pack step's task weighs what the step's own requirements say (as routing ranks it), not
/// what the engagement's routing says, in claims and in what the worker is counted to hold.
pub async fn pack_steps_weigh_their_own_requirements(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Pack Weights").await;
    let pack = karya_packs::builtin()
        .expect("built-in packs load")
        .for_line("technical_support".parse().unwrap())
        .next()
        .expect("a technical support pack")
        .pack
        .clone();
    let engagement_id = tenant
        .create_engagement_from_pack(
            &karya_store::NewEngagement {
                id: id(),
                name: "Support".into(),
                service_line: pack.service_line,
            },
            &pack,
            now(),
        )
        .await
        .unwrap()
        .id;
    // The engagement's own routing would weigh every task 5 units on another channel.
    let heavy = Requirements::any("research", 5, SignedDuration::from_mins(30));
    tenant
        .set_engagement_routing(engagement_id, &heavy, &RoutingWorkflow::standard(), now())
        .await
        .unwrap();
    let example = &pack.examples[0];
    let item = tenant
        .create_and_start_work_item(
            &karya_store::NewWorkItem {
                id: id(),
                engagement_id,
                external_ref: Some("TS-1".into()),
                title: example.name.clone(),
                priority: example.priority,
                input: example.input.clone(),
            },
            uuid::Uuid::now_v7(),
            now(),
        )
        .await
        .unwrap();
    let task_id = tenant.tasks_of(item.id).await.unwrap()[0].id;
    let asha = routed_worker(store, "Asha", 2).await;
    let why = explanation(task_id, asha, Path::GetNext, now());
    let claim = store
        .claim_within_capacity(
            tenant.client_id(),
            task_id,
            asha,
            id(),
            (&why, uuid::Uuid::now_v7()),
            now(),
        )
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Assigned(_)), "{claim:?}");
    let held = store.worker_capacity(asha).await.unwrap();
    assert_eq!((held.used, held.max), (1, 2));
    let (units, channels) = store.worker_units(asha).await.unwrap();
    assert_eq!(units, 1);
    assert_eq!(channels, vec![("default".to_string(), 1)]);
    crate::suite::assert_intact(store).await;
}

/// On PostgreSQL one session leads at a time and another takes over when the leader's session
/// dies or lets go; on SQLite (one node) the process always leads.
pub async fn leadership_is_exclusive_and_passes_on(db: &TestDb) {
    let store = &db.store;
    let mut first = store
        .try_lead()
        .await
        .unwrap()
        .expect("the first node leads");
    first.check().await.unwrap();
    let other = Store::open(&db.url, &karya_store::StoreOptions::default())
        .await
        .unwrap();
    match store.engine() {
        karya_store::Engine::Sqlite => {
            let mut second = other
                .try_lead()
                .await
                .unwrap()
                .expect("sqlite always leads");
            second.check().await.unwrap();
            second.release().await.unwrap();
            first.release().await.unwrap();
        }
        karya_store::Engine::Postgres => {
            assert!(
                other.try_lead().await.unwrap().is_none(),
                "two leaders at once"
            );
            // The leader's session dies (as when its process is killed).
            other
                .execute_raw_for_tests(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks
                     WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .await
                .unwrap();
            assert!(first.check().await.is_err(), "a dead session still leads");
            drop(first);
            let mut second = None;
            for _ in 0..100 {
                second = other.try_lead().await.unwrap();
                if second.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let mut second = second.expect("another node takes over");
            second.check().await.unwrap();
            assert!(store.try_lead().await.unwrap().is_none());
            // Letting go on shutdown hands over at once.
            second.release().await.unwrap();
            let third = store.try_lead().await.unwrap().expect("free after release");
            third.release().await.unwrap();
        }
    }
    other.close().await;
}

/// SLA warnings are written once per item and milestone, with their event; the watch lists the
/// items whose clock runs, evaluated at `now`, with what was warned already.
pub async fn sla_warnings_are_given_once(db: &TestDb) {
    use crate::sla_suite::{at, item as sla_item, setup};
    let setup = setup(db, 16).await;
    let running = sla_item(&setup, "running", &[("02T09:00", None)]).await;
    let held = sla_item(
        &setup,
        "held",
        &[
            ("02T09:00", None),
            ("02T10:00", Some(WorkItemState::OnHold)),
        ],
    )
    .await;
    let store = &db.store;
    let watched = store.sla_watch(None, at("03T15:00")).await.unwrap();
    let mine: Vec<_> = watched
        .iter()
        .filter(|w| w.engagement_id == setup.engagement_id)
        .collect();
    assert_eq!(mine.len(), 1, "only running clocks are watched");
    assert_eq!(mine[0].work_item_id, running);
    // Monday 09:00 to Tuesday 15:00 on a 09-17 calendar: 8h + 6h of 16h.
    assert_eq!(
        mine[0].status.resolution.elapsed,
        SignedDuration::from_hours(14)
    );
    assert!(mine[0].status.resolution.warned);
    assert!(mine[0].warned.is_empty());
    let before = crate::suite::event_count(&setup.tenant).await;
    let detail = serde_json::json!({"slack_s": -3600});
    assert!(setup
        .tenant
        .record_sla_warning(running, "resolution", "threshold", &detail, at("03T15:00"))
        .await
        .unwrap());
    assert!(!setup
        .tenant
        .record_sla_warning(
            running,
            "resolution",
            "predicted_breach",
            &detail,
            at("03T15:01")
        )
        .await
        .unwrap());
    assert!(setup
        .tenant
        .record_sla_warning(running, "response", "threshold", &detail, at("03T15:02"))
        .await
        .unwrap());
    assert_eq!(crate::suite::event_count(&setup.tenant).await, before + 2);
    let watched = store.sla_watch(None, at("03T15:05")).await.unwrap();
    let mine = watched.iter().find(|w| w.work_item_id == running).unwrap();
    let mut warned = mine.warned.clone();
    warned.sort();
    assert_eq!(
        warned,
        vec!["resolution".to_string(), "response".to_string()]
    );
    assert!(!watched.iter().any(|w| w.work_item_id == held));
}
