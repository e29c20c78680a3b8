//! Conformance tests of consensus (double keying) and of the bars QA puts on claims: run on
//! both engines through `suite`.

use jiff::Timestamp;
use karya_core::id::{AssignmentId, ConsensusGroupId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::Designation;
use karya_core::qa::gold::GoldPolicy;
use karya_core::qa::review::{ReworkPolicy, Verdict};
use karya_core::qa::Fields;
use karya_store::{
    ConsensusState, KeyingOutcome, NewConsensusGroup, NewTask, QaPolicy, Store, StoreError,
};

use crate::harness::TestDb;
use crate::qa_suite::{
    fields, floor, kinds, now, rejected, review, start, worker, wrong_value, Floor,
};

fn uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The whole history, for accuracy reports.
fn all_time() -> (Timestamp, Timestamp) {
    (
        Timestamp::from_second(1_700_000_000).unwrap(),
        Timestamp::from_second(1_900_000_000).unwrap(),
    )
}

/// Opens a group of `k` keying tasks on `key_invoice`.
async fn open_group(floor: &Floor, k: usize) -> (ConsensusGroupId, Vec<TaskId>) {
    let id = ConsensusGroupId::from_uuid(uuid());
    let task_ids: Vec<TaskId> = (0..k).map(|_| TaskId::from_uuid(uuid())).collect();
    let group = floor
        .tenant
        .open_consensus_group(
            &NewConsensusGroup {
                id,
                work_item_id: floor.work_item_id,
                step: "key_invoice".into(),
                task_ids: task_ids.clone(),
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (group.state, group.keyers, &group.keying_task_ids),
        (ConsensusState::Keying, k as u32, &task_ids)
    );
    (id, task_ids)
}

async fn key(floor: &Floor, task_id: TaskId, answer: &[(&str, &str)]) -> KeyingOutcome {
    floor
        .tenant
        .key_task(task_id, &fields(answer), TaskId::from_uuid(uuid()), now())
        .await
        .unwrap()
}

async fn ready_task(floor: &Floor, step: &str) -> TaskId {
    let id = TaskId::from_uuid(uuid());
    floor
        .tenant
        .create_task(
            &NewTask {
                id,
                work_item_id: floor.work_item_id,
                step: step.into(),
            },
            now(),
        )
        .await
        .unwrap();
    id
}

async fn claim(store: &Store, worker_id: WorkerId) -> Option<TaskId> {
    store
        .claim_next_task(worker_id, AssignmentId::from_uuid(uuid()), now())
        .await
        .unwrap()
        .map(|t| t.id)
}

/// The tasks of `ids` a bar keeps the worker from, as *Get next* reads them: with the tasks'
/// cases, in one statement. Checked against [`Store::barred_tasks`] wherever that is asked.
async fn barred_with_cases(
    store: &Store,
    tenant: &karya_store::Tenant,
    worker_id: WorkerId,
    ids: &[TaskId],
) -> Vec<TaskId> {
    let mut queries = Vec::new();
    for id in ids {
        let task = tenant.task(*id).await.unwrap();
        queries.push(karya_store::CaseQuery {
            task_id: task.id,
            work_item_id: task.work_item_id,
            step: task.step,
        });
    }
    let (cases, mut barred) = store.worker_cases(worker_id, &queries).await.unwrap();
    assert_eq!(cases.len(), ids.len(), "a case for every task");
    barred.sort();
    let mut alone = store.barred_tasks(worker_id, ids).await.unwrap();
    alone.sort();
    assert_eq!(barred, alone, "the same bars with the cases as alone");
    barred
}

fn assignment() -> AssignmentId {
    AssignmentId::from_uuid(uuid())
}

pub async fn consensus_agreement_settles_the_group(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "consensus agreement client").await;
    let tenant = &floor.tenant;
    let first = worker(store, "first keyer", Designation::Analyst).await;
    let second = worker(store, "second keyer", Designation::Analyst).await;
    let (group_id, parts) = open_group(&floor, 2).await;

    // One group per (work item, step).
    let again = tenant
        .open_consensus_group(
            &NewConsensusGroup {
                id: ConsensusGroupId::from_uuid(uuid()),
                work_item_id: floor.work_item_id,
                step: "key_invoice".into(),
                task_ids: vec![TaskId::from_uuid(uuid()), TaskId::from_uuid(uuid())],
            },
            now(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );

    // Keyings are independent: the queue gives a keyer one part and never the other.
    assert_eq!(claim(store, first).await, Some(parts[0]));
    assert_eq!(claim(store, first).await, None);
    let message = rejected(
        tenant
            .assign_task(parts[1], first, assignment(), now())
            .await,
    );
    assert_eq!(
        message,
        format!("worker {first} takes part in consensus group {group_id} already; each part needs a different worker")
    );
    assert_eq!(claim(store, second).await, Some(parts[1]));
    for task_id in &parts {
        tenant
            .transition_task(*task_id, TaskState::InProgress, now())
            .await
            .unwrap();
    }
    // A part is keyed, not submitted for sampling.
    let message = rejected(tenant.submit_task(parts[0], &Fields::new(), now()).await);
    assert!(message.contains("part of a consensus group"), "{message}");

    let outcome = key(
        &floor,
        parts[0],
        &[("vendor", "ACME  Ltd"), ("total", "118.00")],
    )
    .await;
    let KeyingOutcome::Waiting {
        task,
        keyed,
        keyers,
    } = outcome
    else {
        panic!("one of two answers is in: {outcome:?}")
    };
    assert_eq!((task.state, keyed, keyers), (TaskState::Done, 1, 2));
    let detail = tenant.consensus_group(group_id).await.unwrap();
    assert!(detail.comparison.is_none() && detail.results.is_empty());

    let outcome = key(
        &floor,
        parts[1],
        &[("vendor", "acme ltd"), ("total", "118.00")],
    )
    .await;
    let KeyingOutcome::Settled { task, group } = outcome else {
        panic!("unanimous answers settle: {outcome:?}")
    };
    assert_eq!(task.state, TaskState::Done);
    assert_eq!(group.state, ConsensusState::Settled);
    assert_eq!(
        group.answer,
        Some(fields(&[("vendor", "acme ltd"), ("total", "118.00")]))
    );
    assert_eq!(
        (group.field_agreement, group.pairwise_agreement),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(group.adjudication_task_id, None);
    let detail = tenant.consensus_group(group_id).await.unwrap();
    assert_eq!(detail.answers.len(), 2);
    assert_eq!(detail.results.len(), 2);
    assert!(detail.results.iter().all(|r| r.correct()));
    assert_eq!(
        kinds(tenant, "consensus_group", &group_id.to_string()).await,
        [
            "consensus_group.opened",
            "consensus_group.compared",
            "consensus_group.settled"
        ]
    );
    assert!(kinds(tenant, "task", &parts[0].to_string())
        .await
        .contains(&"task.keyed".to_string()));

    // Agreement is evidence for both keyers: one check each, right.
    let (from, to) = all_time();
    let report = tenant
        .accuracy(floor.engagement_id, from, to)
        .await
        .unwrap();
    assert_eq!(
        (
            report.sources.consensus.checks,
            report.sources.consensus.correct
        ),
        (2, 2)
    );
    assert_eq!(report.workers.len(), 2);
    assert!(report.workers.iter().all(|w| w.tasks == 1));
    assert!(store.audit(None).await.unwrap().intact());
}

pub async fn consensus_disagreement_goes_to_an_adjudicator(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "consensus dispute client").await;
    let tenant = &floor.tenant;
    let keyers = [
        worker(store, "keyer a", Designation::Analyst).await,
        worker(store, "keyer b", Designation::Analyst).await,
        worker(store, "keyer c", Designation::SeniorAnalyst).await,
    ];
    let junior = worker(store, "junior", Designation::Analyst).await;
    let lead = worker(store, "lead", Designation::TeamLead).await;
    let (group_id, parts) = open_group(&floor, 3).await;
    let answers = [
        [("vendor", "Acme Ltd"), ("total", "100.00")],
        [("vendor", "Acme Ltd"), ("total", "10.00")],
        [("vendor", "acme ltd"), ("total", "100.00")],
    ];
    for (task_id, keyer) in parts.iter().zip(keyers) {
        start(&floor, *task_id, keyer).await;
    }
    key(&floor, parts[0], &answers[0]).await;
    key(&floor, parts[1], &answers[1]).await;
    let adjudication = TaskId::from_uuid(uuid());
    let outcome = tenant
        .key_task(parts[2], &fields(&answers[2]), adjudication, now())
        .await
        .unwrap();
    let KeyingOutcome::Adjudicating {
        group,
        adjudication_task_id,
        ..
    } = outcome
    else {
        panic!("a disagreement is adjudicated: {outcome:?}")
    };
    assert_eq!(adjudication_task_id, adjudication);
    assert_eq!(group.state, ConsensusState::Adjudicating);
    assert_eq!(group.adjudication_task_id, Some(adjudication));
    assert!((group.field_agreement.unwrap() - 0.5).abs() < 1e-9);
    let task = tenant.task(adjudication).await.unwrap();
    assert_eq!(
        (task.state, task.step.as_str()),
        (TaskState::Ready, "key_invoice.adjudication")
    );

    // No keyer adjudicates: the queue skips the task for them and assigning it is refused.
    for keyer in keyers {
        assert_eq!(claim(store, keyer).await, None);
        let message = rejected(
            tenant
                .assign_task(adjudication, keyer, assignment(), now())
                .await,
        );
        assert!(
            message.contains("takes part in consensus group"),
            "{message}"
        );
    }
    // The adjudicator must meet the engagement's requirements of checkers.
    start(&floor, adjudication, junior).await;
    let ruling = fields(&[("total", "100.00")]);
    let message = rejected(tenant.adjudicate(adjudication, &ruling, now()).await);
    assert!(
        message.contains("needs designation senior_analyst"),
        "{message}"
    );
    tenant
        .transition_task(adjudication, TaskState::Ready, now())
        .await
        .unwrap();
    assert_eq!(claim(store, lead).await, Some(adjudication));
    tenant
        .transition_task(adjudication, TaskState::InProgress, now())
        .await
        .unwrap();
    // The ruling covers exactly the disputed fields.
    let message = rejected(tenant.adjudicate(adjudication, &Fields::new(), now()).await);
    assert!(message.contains("without a value"), "{message}");
    let message = rejected(
        tenant
            .adjudicate(
                adjudication,
                &fields(&[("total", "100.00"), ("vendor", "x")]),
                now(),
            )
            .await,
    );
    assert!(message.contains("which no keyer disputed"), "{message}");

    let (group, results) = tenant
        .adjudicate(adjudication, &ruling, now())
        .await
        .unwrap();
    assert_eq!(group.state, ConsensusState::Settled);
    assert_eq!(group.adjudicator_id, Some(lead));
    assert_eq!(
        group.answer,
        Some(fields(&[("vendor", "acme ltd"), ("total", "100.00")]))
    );
    let right: Vec<(WorkerId, bool)> = results.iter().map(|r| (r.worker_id, r.correct())).collect();
    assert_eq!(
        right,
        vec![(keyers[0], true), (keyers[1], false), (keyers[2], true)]
    );
    assert_eq!(results[1].wrong, vec!["total".to_string()]);
    assert_eq!(
        tenant.task(adjudication).await.unwrap().state,
        TaskState::Done
    );
    let detail = tenant.consensus_group(group_id).await.unwrap();
    assert_eq!(detail.results, results);
    assert_eq!(
        tenant.dispute_of(adjudication).await.unwrap().group.id,
        group_id
    );
    // Settled once: a second ruling is refused.
    assert!(tenant
        .adjudicate(adjudication, &ruling, now())
        .await
        .is_err());

    // The accuracy estimate counts who was right.
    let (from, to) = all_time();
    let report = tenant
        .accuracy(floor.engagement_id, from, to)
        .await
        .unwrap();
    assert_eq!(
        (
            report.sources.consensus.checks,
            report.sources.consensus.correct
        ),
        (3, 2)
    );
    let b = report
        .workers
        .iter()
        .find(|w| w.worker_id == keyers[1])
        .unwrap();
    assert_eq!((b.tasks, b.sources.consensus.correct), (1, 0));
    assert!(
        (report.estimate.accuracy - 2.0 / 3.0).abs() < 1e-9,
        "{report:?}"
    );
    assert!(kinds(tenant, "consensus_group", &group_id.to_string())
        .await
        .ends_with(&["consensus_group.settled".to_string()]));
    assert!(store.audit(None).await.unwrap().intact());
}

pub async fn gold_pause_bars_claims_until_lifted(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "pause client").await;
    let tenant = &floor.tenant;
    let keyer = worker(store, "paused keyer", Designation::Analyst).await;
    let policy = QaPolicy {
        gold: GoldPolicy {
            window: 2,
            min_scored: 1,
            accuracy_threshold: 0.8,
        },
        ..QaPolicy::default()
    };
    tenant
        .set_qa_policy(floor.engagement_id, &policy, now())
        .await
        .unwrap();
    let gold = ready_task(&floor, "key_invoice").await;
    tenant
        .set_gold_answer(gold, &fields(&[("total", "118.00")]), now())
        .await
        .unwrap();
    start(&floor, gold, keyer).await;
    tenant
        .submit_task(gold, &fields(&[("total", "18.00")]), now())
        .await
        .unwrap();
    let (_, paused) = tenant
        .sampling_state(floor.engagement_id, keyer, "key_invoice")
        .await
        .unwrap();
    assert!(paused);

    // The paused step's task is first in the queue, but the worker gets the other step's.
    let keying = ready_task(&floor, "key_invoice").await;
    let verifying = ready_task(&floor, "verify").await;
    assert_eq!(
        store
            .barred_tasks(keyer, &[keying, verifying])
            .await
            .unwrap(),
        vec![keying]
    );
    assert_eq!(
        barred_with_cases(store, &floor.tenant, keyer, &[keying, verifying]).await,
        vec![keying]
    );
    let message = rejected(tenant.assign_task(keying, keyer, assignment(), now()).await);
    assert_eq!(
        message,
        format!("worker {keyer} is paused on step \"key_invoice\" of engagement {} after failing gold tasks; a lead must lift the pause", floor.engagement_id)
    );
    assert_eq!(claim(store, keyer).await, Some(verifying));
    assert_eq!(claim(store, keyer).await, None);

    // A lead lifts the pause, with an event; the worker is served the step again.
    tenant
        .lift_pause(
            floor.engagement_id,
            keyer,
            "key_invoice",
            "lead@firm.example",
            now(),
        )
        .await
        .unwrap();
    let (_, paused) = tenant
        .sampling_state(floor.engagement_id, keyer, "key_invoice")
        .await
        .unwrap();
    assert!(!paused);
    assert_eq!(
        kinds(tenant, "worker", &keyer.to_string()).await,
        ["worker.paused_on_step", "worker.pause_lifted"]
    );
    assert_eq!(claim(store, keyer).await, Some(keying));
    let message = rejected(
        tenant
            .lift_pause(
                floor.engagement_id,
                keyer,
                "key_invoice",
                "lead@firm.example",
                now(),
            )
            .await,
    );
    assert!(message.contains("is not paused"), "{message}");
    assert!(store.audit(None).await.unwrap().intact());
}

pub async fn rework_excluded_maker_does_not_get_the_task(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "rework exclusion client").await;
    let tenant = &floor.tenant;
    let maker = worker(store, "maker", Designation::Analyst).await;
    let other = worker(store, "other", Designation::Analyst).await;
    let reviewer = worker(store, "reviewer", Designation::TeamLead).await;
    tenant
        .set_qa_policy(
            floor.engagement_id,
            &QaPolicy {
                rework: ReworkPolicy::AnotherWorker,
                ..QaPolicy::default()
            },
            now(),
        )
        .await
        .unwrap();
    let task_id = ready_task(&floor, "post_entries").await;
    start(&floor, task_id, maker).await;
    tenant
        .submit_task(task_id, &Fields::new(), now())
        .await
        .unwrap();
    tenant
        .record_review(
            task_id,
            &review(reviewer, Verdict::Fail, vec![wrong_value()]),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(tenant.task(task_id).await.unwrap().state, TaskState::Ready);

    assert_eq!(claim(store, maker).await, None);
    assert_eq!(
        store.barred_tasks(maker, &[task_id]).await.unwrap(),
        vec![task_id]
    );
    assert_eq!(
        barred_with_cases(store, tenant, maker, &[task_id]).await,
        vec![task_id]
    );
    let message = rejected(
        tenant
            .assign_task(task_id, maker, assignment(), now())
            .await,
    );
    assert_eq!(
        message,
        format!("worker {maker} made the work of task {task_id} that failed review; its rework goes to another worker")
    );
    assert!(store
        .barred_tasks(other, &[task_id])
        .await
        .unwrap()
        .is_empty());
    assert!(barred_with_cases(store, tenant, other, &[task_id])
        .await
        .is_empty());
    assert_eq!(claim(store, other).await, Some(task_id));
}

pub async fn a_maker_never_checks_their_own_work_on_any_claim_path(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "case rule client").await;
    let tenant = &floor.tenant;
    let maker = worker(store, "maker", Designation::Analyst).await;
    let checker = worker(store, "checker", Designation::Analyst).await;
    let keying = ready_task(&floor, "keying").await;
    start(&floor, keying, maker).await;
    let check = ready_task(&floor, "keying_review").await;

    // Claiming the next task passes over the check of the maker's own work.
    assert_eq!(claim(store, maker).await, None);
    // Nor can it be given to them directly.
    let message = rejected(tenant.assign_task(check, maker, assignment(), now()).await);
    assert_eq!(
        message,
        format!("worker {maker} is excluded from task {check}: they made the work it checks, or declined it or let its offer lapse")
    );
    assert_eq!(tenant.task(check).await.unwrap().state, TaskState::Ready);
    // Another worker gets it.
    assert_eq!(claim(store, checker).await, Some(check));
    assert!(store.audit(None).await.unwrap().intact());
}
