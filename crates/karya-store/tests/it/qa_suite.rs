//! Conformance tests of quality assurance records: run on both engines through `suite`.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;
use karya_core::id::{
    AssignmentId, ClientId, EngagementId, ReviewId, TaskId, WorkItemId, WorkerId,
};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Defect, Designation, Priority, Severity};
use karya_core::money::Currency;
use karya_core::qa::gold::{GoldPolicy, GoldVerdict};
use karya_core::qa::review::{Rework, ReworkPolicy, Verdict};
use karya_core::qa::Fields;
use karya_core::service_line::ServiceLine;
use karya_store::{
    NewEngagement, NewReview, NewTask, NewWorkItem, QaPolicy, Store, StoreError, SubmitOutcome,
    Tenant,
};

use crate::harness::TestDb;

/// A deterministic clock of its own: one second per call, far from the other suite's.
pub(crate) fn now() -> Timestamp {
    static SECONDS: AtomicI64 = AtomicI64::new(1_800_000_000);
    Timestamp::from_second(SECONDS.fetch_add(1, Ordering::Relaxed)).unwrap()
}

fn uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

pub(crate) struct Floor {
    pub(crate) tenant: Tenant,
    pub(crate) engagement_id: EngagementId,
    pub(crate) work_item_id: WorkItemId,
}

pub(crate) async fn floor(store: &Store, name: &str) -> Floor {
    let client_id = ClientId::from_uuid(uuid());
    store
        .create_client(client_id, name, Currency::USD, now())
        .await
        .unwrap();
    let tenant = store.tenant(client_id);
    let engagement_id = EngagementId::from_uuid(uuid());
    tenant
        .create_engagement(
            &NewEngagement {
                id: engagement_id,
                name: "bookkeeping".into(),
                service_line: ServiceLine::IpResearch,
            },
            now(),
        )
        .await
        .unwrap();
    let work_item_id = WorkItemId::from_uuid(uuid());
    tenant
        .create_work_item(
            &NewWorkItem {
                id: work_item_id,
                engagement_id,
                external_ref: None,
                title: "march ledger".into(),
                priority: Priority::Normal,
                input: "{}".into(),
            },
            now(),
        )
        .await
        .unwrap();
    Floor {
        tenant,
        engagement_id,
        work_item_id,
    }
}

pub(crate) async fn worker(store: &Store, name: &str, designation: Designation) -> WorkerId {
    let id = WorkerId::from_uuid(uuid());
    store
        .create_worker(id, name, None, designation, now())
        .await
        .unwrap();
    id
}

/// A task of the floor's work item, held and started by `maker`.
async fn started_task(floor: &Floor, maker: WorkerId) -> TaskId {
    let id = TaskId::from_uuid(uuid());
    floor
        .tenant
        .create_task(
            &NewTask {
                id,
                work_item_id: floor.work_item_id,
                step: "post_entries".into(),
            },
            now(),
        )
        .await
        .unwrap();
    start(floor, id, maker).await;
    id
}

pub(crate) async fn start(floor: &Floor, task_id: TaskId, maker: WorkerId) {
    floor
        .tenant
        .assign_task(task_id, maker, AssignmentId::from_uuid(uuid()), now())
        .await
        .unwrap();
    floor
        .tenant
        .transition_task(task_id, TaskState::InProgress, now())
        .await
        .unwrap();
}

pub(crate) fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn review(reviewer_id: WorkerId, verdict: Verdict, defects: Vec<Defect>) -> NewReview {
    NewReview {
        id: ReviewId::from_uuid(uuid()),
        reviewer_id,
        verdict,
        defects,
    }
}

pub(crate) fn wrong_value() -> Defect {
    Defect {
        category: "wrong_value".into(),
        severity: Severity::Major,
        field: Some("amount".into()),
        comment: "posted 1,000 instead of 10,000".into(),
    }
}

pub(crate) fn rejected(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Rejected { message }) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub(crate) async fn kinds(tenant: &Tenant, entity_type: &str, entity_id: &str) -> Vec<String> {
    tenant
        .entity_events(entity_type, entity_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

pub async fn qa_review_enforces_separation_of_duties_and_drives_the_task(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "qa review client").await;
    let tenant = &floor.tenant;
    let maker = worker(store, "maker", Designation::Analyst).await;
    let junior = worker(store, "junior", Designation::Analyst).await;
    let reviewer = worker(store, "reviewer", Designation::SeniorAnalyst).await;
    let policy = QaPolicy {
        reviewers: karya_core::qa::duty::ReviewerRequirements {
            min_designation: Designation::SeniorAnalyst,
            qualification: Some("ca".into()),
        },
        ..QaPolicy::default()
    };
    let stored = tenant
        .set_qa_policy(floor.engagement_id, &policy, now())
        .await
        .unwrap();
    assert_eq!(stored, policy);

    let task_id = started_task(&floor, maker).await;
    // A new worker is reviewed fully, and the decision says why.
    let SubmitOutcome::Sampled {
        task,
        submission,
        decision,
    } = tenant
        .submit_task(task_id, &fields(&[("amount", "1000")]), now())
        .await
        .unwrap()
    else {
        panic!("not a gold task")
    };
    assert_eq!((task.state, submission), (TaskState::InReview, 1));
    assert!(decision.review);
    assert_eq!(decision.rate.reason.code(), "new_worker");

    // Refusals: the maker, a junior, a reviewer without the client's qualification. None writes.
    let message = rejected(
        tenant
            .record_review(task_id, &review(maker, Verdict::Pass, vec![]), now())
            .await,
    );
    assert!(
        message.contains("made this work and cannot check it"),
        "{message}"
    );
    let message = rejected(
        tenant
            .record_review(task_id, &review(junior, Verdict::Pass, vec![]), now())
            .await,
    );
    assert!(
        message.contains("needs designation senior_analyst"),
        "{message}"
    );
    let message = rejected(
        tenant
            .record_review(task_id, &review(reviewer, Verdict::Pass, vec![]), now())
            .await,
    );
    assert!(message.contains("qualification \"ca\""), "{message}");
    store
        .grant_reviewer_qualification(reviewer, "ca", now())
        .await
        .unwrap();
    let message = rejected(
        tenant
            .record_review(task_id, &review(reviewer, Verdict::Fail, vec![]), now())
            .await,
    );
    assert_eq!(message, "a failing review must name at least one defect");
    assert!(tenant.reviews_of(task_id).await.unwrap().is_empty());
    assert_eq!(
        tenant.task(task_id).await.unwrap().state,
        TaskState::InReview
    );

    // A fail goes back to the maker for rework and counts as an error.
    let outcome = tenant
        .record_review(
            task_id,
            &review(reviewer, Verdict::Fail, vec![wrong_value()]),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Rework);
    assert_eq!(outcome.maker_id, maker);
    assert_eq!(outcome.rework, Some(Rework::Maker(maker)));
    assert_eq!(store.active_assignee(task_id).await.unwrap(), Some(maker));
    let (state, paused) = tenant
        .sampling_state(floor.engagement_id, maker, "post_entries")
        .await
        .unwrap();
    assert_eq!(
        (state.checks, state.errors, state.checks_since_error, paused),
        (1, 1, Some(0), false)
    );

    // Reworked and resubmitted: a second submission, reviewed (a recent error), passed, done.
    tenant
        .transition_task(task_id, TaskState::InProgress, now())
        .await
        .unwrap();
    let SubmitOutcome::Sampled {
        submission,
        decision,
        ..
    } = tenant
        .submit_task(task_id, &fields(&[("amount", "10000")]), now())
        .await
        .unwrap()
    else {
        panic!("not a gold task")
    };
    assert_eq!(submission, 2);
    assert!(decision.review);
    let outcome = tenant
        .record_review(task_id, &review(reviewer, Verdict::Pass, vec![]), now())
        .await
        .unwrap();
    assert_eq!(outcome.task.state, TaskState::Done);
    assert_eq!(store.active_assignee(task_id).await.unwrap(), None);

    let reviews = tenant.reviews_of(task_id).await.unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0].defects, vec![wrong_value()]);
    assert!(!reviews[0].passed && reviews[1].passed);
    let task_kinds = kinds(tenant, "task", &task_id.to_string()).await;
    assert_eq!(
        task_kinds.iter().filter(|k| *k == "task.sampled").count(),
        2
    );
    let review_kinds = kinds(tenant, "review", &reviews[0].id.to_string()).await;
    assert_eq!(review_kinds, vec!["review.recorded".to_string()]);

    // Another client sees none of it.
    let other = floor_of_other(store).await;
    assert!(matches!(
        other
            .record_review(task_id, &review(reviewer, Verdict::Pass, vec![]), now())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        other.qa_policy(floor.engagement_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.audit(None).await.unwrap().intact());
}

async fn floor_of_other(store: &Store) -> Tenant {
    floor(store, &format!("other client {}", uuid().simple()))
        .await
        .tenant
}

pub async fn qa_rework_to_another_worker_releases_the_task(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "qa reroute client").await;
    let maker = worker(store, "maker", Designation::Analyst).await;
    let reviewer = worker(store, "lead", Designation::TeamLead).await;
    let policy = QaPolicy {
        rework: ReworkPolicy::AnotherWorker,
        ..QaPolicy::default()
    };
    floor
        .tenant
        .set_qa_policy(floor.engagement_id, &policy, now())
        .await
        .unwrap();
    let task_id = started_task(&floor, maker).await;
    floor
        .tenant
        .submit_task(task_id, &Fields::new(), now())
        .await
        .unwrap();
    let outcome = floor
        .tenant
        .record_review(
            task_id,
            &review(reviewer, Verdict::Fail, vec![wrong_value()]),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.rework, Some(Rework::Reroute { excluded: maker }));
    assert_eq!(outcome.task.state, TaskState::Ready);
    assert_eq!(store.active_assignee(task_id).await.unwrap(), None);
}

pub async fn qa_gold_tasks_are_scored_and_pause_the_worker(db: &TestDb) {
    let store = &db.store;
    let floor = floor(store, "qa gold client").await;
    let tenant = &floor.tenant;
    let maker = worker(store, "keyer", Designation::Analyst).await;
    let reviewer = worker(store, "checker", Designation::SeniorAnalyst).await;
    let policy = QaPolicy {
        gold: GoldPolicy {
            window: 5,
            min_scored: 2,
            accuracy_threshold: 0.8,
        },
        ..QaPolicy::default()
    };
    tenant
        .set_qa_policy(floor.engagement_id, &policy, now())
        .await
        .unwrap();
    let expected = fields(&[("vendor", "Acme Ltd"), ("total", "118.00")]);

    // The worker holds all three before the first is scored: a pause bars new claims on the
    // step, not work in hand.
    let mut task_ids = Vec::new();
    for _ in 0..3 {
        let task_id = TaskId::from_uuid(uuid());
        tenant
            .create_task(
                &NewTask {
                    id: task_id,
                    work_item_id: floor.work_item_id,
                    step: "key_invoice".into(),
                },
                now(),
            )
            .await
            .unwrap();
        tenant
            .set_gold_answer(task_id, &expected, now())
            .await
            .unwrap();
        start(&floor, task_id, maker).await;
        task_ids.push(task_id);
    }
    let mut verdicts = Vec::new();
    for (task_id, answer) in task_ids.into_iter().zip([
        ("acme  ltd", "118.00"),
        ("Acme Ltd", "18.00"),
        ("acme", "118.00"),
    ]) {
        let SubmitOutcome::Gold {
            task,
            score,
            verdict,
            ..
        } = tenant
            .submit_task(
                task_id,
                &fields(&[("vendor", answer.0), ("total", answer.1)]),
                now(),
            )
            .await
            .unwrap()
        else {
            panic!("a gold task is scored")
        };
        assert_eq!(task.state, TaskState::Done);
        verdicts.push((score.correct(), verdict));
    }
    assert_eq!(
        verdicts[0],
        (
            true,
            GoldVerdict::TooFew {
                scored: 1,
                needed: 2
            }
        )
    );
    assert!(matches!(
        verdicts[1],
        (false, GoldVerdict::Pause { scored: 2, .. })
    ));
    assert!(matches!(
        verdicts[2],
        (false, GoldVerdict::Pause { scored: 3, .. })
    ));
    let (state, paused) = tenant
        .sampling_state(floor.engagement_id, maker, "key_invoice")
        .await
        .unwrap();
    assert_eq!((state.checks, state.errors, paused), (3, 2, true));
    // Paused once, not on every failing gold task after.
    let pauses = kinds(tenant, "worker", &maker.to_string()).await;
    assert_eq!(pauses, vec!["worker.paused_on_step".to_string()]);

    // An ordinary task, reviewed and passed, joins the evidence; accuracy counts both sources.
    let task_id = started_task(&floor, maker).await;
    tenant
        .submit_task(task_id, &Fields::new(), now())
        .await
        .unwrap();
    tenant
        .record_review(task_id, &review(reviewer, Verdict::Pass, vec![]), now())
        .await
        .unwrap();
    let from = Timestamp::from_second(1_700_000_000).unwrap();
    let to = Timestamp::from_second(1_900_000_000).unwrap();
    let report = tenant
        .accuracy(floor.engagement_id, from, to)
        .await
        .unwrap();
    assert_eq!(
        (report.sources.gold.checks, report.sources.gold.correct),
        (3, 1)
    );
    assert_eq!(
        (
            report.sources.reviews.checks,
            report.sources.reviews.correct
        ),
        (1, 1)
    );
    assert_eq!(report.workers.len(), 1);
    assert_eq!(report.workers[0].tasks, 1);
    assert!((report.estimate.accuracy - 0.5).abs() < 1e-9, "{report:?}");
    assert!(report.estimate.interval.contains(0.5));
    assert_eq!(report.status.code(), "missed");
    // An empty period has no evidence: the whole interval, undetermined.
    let empty = tenant
        .accuracy(floor.engagement_id, from, from)
        .await
        .unwrap();
    assert_eq!(empty.estimate.checks, 0);
    assert_eq!(empty.status.code(), "undetermined");
    assert!(store.audit(None).await.unwrap().intact());
}
