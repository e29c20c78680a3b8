//! Conformance tests of work flowing through a pack (both engines): processor jobs claimed
//! exactly once, failed, taken over when their lease expires and completed once; the next
//! step's task created with the finished step; and the deliverable assembled from the steps'
//! outputs when the last step is done.

use std::collections::{HashMap, HashSet};

use karya_core::id::{EngagementId, ReviewId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::Designation;
use karya_core::pack::Pack;
use karya_core::qa::review::Verdict;
use karya_store::{
    JobFailed, NewEngagement, NewReview, NewWorkItem, Store, StoreError, Submission, SubmitOutcome,
    Tenant, JOB_ATTEMPTS_MAX, JOB_LEASE,
};
use serde_json::{json, Value};

use crate::harness::TestDb;
use crate::suite::{advance_hours, assert_intact, client, id, now};

/// The insurance claim pack: its first step (claim registration) and its last (the payment
/// instruction) are run by processors, its middle steps by people.
fn claims_pack() -> Pack {
    let catalog = karya_packs::builtin().expect("built-in packs load");
    let pack = catalog
        .for_line("insurance_processing".parse().unwrap())
        .next()
        .expect("a claims pack")
        .pack
        .clone();
    pack
}

async fn claims_engagement(tenant: &Tenant, pack: &Pack) -> EngagementId {
    let new = NewEngagement {
        id: id(),
        name: "Motor claims".into(),
        service_line: pack.service_line,
    };
    tenant
        .create_engagement_from_pack(&new, pack, now())
        .await
        .unwrap()
        .id
}

/// Takes a claim in; returns its id and the id of its first step's job.
async fn claim_item(
    tenant: &Tenant,
    pack: &Pack,
    engagement_id: EngagementId,
    external_ref: &str,
) -> (WorkItemId, uuid::Uuid) {
    let example = &pack.examples[0];
    let first_id = uuid::Uuid::now_v7();
    let new = NewWorkItem {
        id: id(),
        engagement_id,
        external_ref: Some(external_ref.into()),
        title: example.name.clone(),
        priority: example.priority,
        input: example.input.clone(),
    };
    let item = tenant
        .create_and_start_work_item(&new, first_id, now())
        .await
        .unwrap();
    assert_eq!(item.state, WorkItemState::InProgress);
    (item.id, first_id)
}

fn is_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Conflict { .. }))
}

/// An engagement's pack reads the same before and after it is cached, and only for its client.
pub async fn engagement_packs_are_read_only_by_their_client(db: &TestDb) {
    let store = &db.store;
    let pack = claims_pack();
    let tenant = client(store, "Pack Owner").await;
    let other = client(store, "Pack Stranger").await;
    let engagement_id = claims_engagement(&tenant, &pack).await;
    // The stranger asks first, before anything is cached, and again after.
    assert_eq!(other.engagement_pack(engagement_id).await.unwrap(), None);
    let expected = Some((pack.id.clone(), pack.version));
    assert_eq!(
        tenant.engagement_pack(engagement_id).await.unwrap(),
        expected
    );
    assert_eq!(
        tenant.engagement_pack(engagement_id).await.unwrap(),
        expected
    );
    assert_eq!(other.engagement_pack(engagement_id).await.unwrap(), None);
}

pub async fn jobs_are_held_by_one_claim_and_taken_over_after_their_lease(db: &TestDb) {
    let store = &db.store;
    let pack = claims_pack();
    let processor = "extract_fields";
    let tenant = client(store, "Acme Insurance").await;
    let other = client(store, "Other").await;
    let engagement_id = claims_engagement(&tenant, &pack).await;
    let (item_id, job_id) = claim_item(&tenant, &pack, engagement_id, "CLM-1").await;
    let jobs = tenant.jobs_of(item_id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (
            jobs[0].id,
            jobs[0].step.as_str(),
            jobs[0].processor.as_str(),
            jobs[0].state.as_str(),
            jobs[0].attempts
        ),
        (job_id, "registration", processor, "queued", 0)
    );
    assert!(tenant.tasks_of(item_id).await.unwrap().is_empty());
    assert!(other.jobs_of(item_id).await.unwrap().is_empty());

    // One claim at a time: a second claimer finds nothing, and cannot finish the job.
    let claimed = store.claim_job("ocr-a", now()).await.unwrap();
    let claimed = claimed.expect("the queued job is claimed");
    assert_eq!((claimed.id, claimed.attempts), (job_id, 1));
    assert_eq!(claimed.state, "running");
    assert_eq!(claimed.input, pack.examples[0].input);
    assert!(store.claim_job("ocr-b", now()).await.unwrap().is_none());
    assert!(is_conflict(
        store
            .complete_job(job_id, "ocr-b", "{}", uuid::Uuid::now_v7(), now())
            .await
    ));

    // A failure puts it back after a backoff; the next claim is the second attempt.
    let failed = store
        .fail_job(
            job_id,
            "ocr-a",
            "scan unreadable",
            uuid::Uuid::now_v7(),
            now(),
        )
        .await
        .unwrap();
    assert!(matches!(failed, JobFailed::Retry { .. }), "{failed:?}");
    let job = &tenant.jobs_of(item_id).await.unwrap()[0];
    assert_eq!(
        (job.state.as_str(), job.last_error.as_deref()),
        ("queued", Some("scan unreadable"))
    );
    assert!(store.claim_job("ocr-b", now()).await.unwrap().is_none());
    advance_hours(1);
    let again = store.claim_job("ocr-b", now()).await.unwrap();
    assert_eq!(again.map(|j| (j.id, j.attempts)), Some((job_id, 2)));

    // ocr-b goes silent; once its lease has expired the job is taken over, and ocr-b's late
    // answers are refused.
    assert!(JOB_LEASE < jiff::SignedDuration::from_hours(1));
    assert!(store.claim_job("ocr-c", now()).await.unwrap().is_none());
    advance_hours(1);
    let taken = store.claim_job("ocr-c", now()).await.unwrap();
    assert_eq!(taken.map(|j| (j.id, j.attempts)), Some((job_id, 3)));
    assert!(is_conflict(
        store
            .complete_job(job_id, "ocr-b", "{}", uuid::Uuid::now_v7(), now())
            .await
    ));
    assert!(is_conflict(
        store
            .fail_job(job_id, "ocr-b", "late", uuid::Uuid::now_v7(), now())
            .await
    ));

    // The output must be a JSON object; the holder completes the job once, and the next step's
    // task is created with it.
    assert!(matches!(
        store
            .complete_job(job_id, "ocr-c", "[1]", uuid::Uuid::now_v7(), now())
            .await,
        Err(StoreError::Rejected { .. })
    ));
    let next_id = uuid::Uuid::now_v7();
    store
        .complete_job(
            job_id,
            "ocr-c",
            r#"{"claim_number": "CLM-1"}"#,
            next_id,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(tenant.jobs_of(item_id).await.unwrap()[0].state, "done");
    let tasks = tenant.tasks_of(item_id).await.unwrap();
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.id, t.step.as_str(), t.state))
            .collect::<Vec<_>>(),
        [(
            TaskId::from_uuid(next_id),
            "document_check",
            TaskState::Ready
        )]
    );
    assert!(is_conflict(
        store
            .complete_job(job_id, "ocr-c", "{}", uuid::Uuid::now_v7(), now())
            .await
    ));
    assert!(matches!(
        store
            .complete_job(
                uuid::Uuid::now_v7(),
                "ocr-c",
                "{}",
                uuid::Uuid::now_v7(),
                now()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // A job that keeps failing goes to a person after the last attempt: the job is failed
    // with its reason and its step becomes a task, which moves the item on like the job would.
    let (stuck_id, stuck_job) = claim_item(&tenant, &pack, engagement_id, "CLM-2").await;
    let handoff_id = uuid::Uuid::now_v7();
    for attempt in 1..=JOB_ATTEMPTS_MAX {
        advance_hours(1);
        let job = store.claim_job("ocr-a", now()).await.unwrap();
        assert_eq!(job.map(|j| (j.id, j.attempts)), Some((stuck_job, attempt)));
        let failed = store
            .fail_job(stuck_job, "ocr-a", "scan unreadable", handoff_id, now())
            .await
            .unwrap();
        let expect_handoff = attempt == JOB_ATTEMPTS_MAX;
        assert_eq!(
            matches!(failed, JobFailed::HandedOff { task_id: Some(t) } if t == TaskId::from_uuid(handoff_id)),
            expect_handoff,
            "attempt {attempt}: {failed:?}"
        );
    }
    advance_hours(1);
    assert!(store.claim_job("ocr-a", now()).await.unwrap().is_none());
    let stuck = &tenant.jobs_of(stuck_id).await.unwrap()[0];
    assert_eq!(
        (stuck.state.as_str(), stuck.attempts),
        ("failed", JOB_ATTEMPTS_MAX)
    );
    let tasks = tenant.tasks_of(stuck_id).await.unwrap();
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.id, t.step.as_str(), t.state))
            .collect::<Vec<_>>(),
        [(
            TaskId::from_uuid(handoff_id),
            "registration",
            TaskState::Ready
        )]
    );
    let events = tenant
        .entity_events("task", &stuck_job.to_string())
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "job.attempt_failed").count(),
        JOB_ATTEMPTS_MAX as usize - 1
    );
    assert_eq!(kinds.last(), Some(&"job.failed"));

    // A runner that dies during the last attempt: once the lease expires the job is handed to a
    // person too, not run a sixth time.
    let (silent_id, silent_job) = claim_item(&tenant, &pack, engagement_id, "CLM-3").await;
    for attempt in 1..=JOB_ATTEMPTS_MAX {
        advance_hours(1);
        let job = store.claim_job("ocr-a", now()).await.unwrap();
        assert_eq!(job.map(|j| (j.id, j.attempts)), Some((silent_job, attempt)));
    }
    advance_hours(1);
    assert!(store.claim_job("ocr-b", now()).await.unwrap().is_none());
    assert_eq!(tenant.jobs_of(silent_id).await.unwrap()[0].state, "failed");
    let tasks = tenant.tasks_of(silent_id).await.unwrap();
    assert_eq!(
        tasks.iter().map(|t| t.step.as_str()).collect::<Vec<_>>(),
        ["registration"]
    );
    assert_intact(store).await;
}

pub async fn concurrent_job_claims_are_exactly_once(db: &TestDb) {
    const JOBS: usize = 120;
    const CLAIMERS: usize = 8;
    let store = &db.store;
    let pack = claims_pack();
    let tenant = client(store, "Acme Insurance").await;
    let engagement_id = claims_engagement(&tenant, &pack).await;
    let mut all_jobs = HashSet::new();
    for n in 0..JOBS {
        let (_, job_id) = claim_item(&tenant, &pack, engagement_id, &format!("CLM-{n}")).await;
        all_jobs.insert(job_id);
    }
    let mut claimers = tokio::task::JoinSet::new();
    for claimer_idx in 0..CLAIMERS {
        let store: Store = store.clone();
        claimers.spawn(async move {
            let name = format!("ocr-{claimer_idx}");
            let mut claimed = Vec::new();
            loop {
                match store.claim_job(&name, now()).await {
                    Ok(Some(job)) => claimed.push(job.id),
                    Ok(None) => return (name, claimed),
                    Err(err) => panic!("claim failed: {err}"),
                }
                tokio::task::yield_now().await;
            }
        });
    }
    let mut seen: HashMap<uuid::Uuid, String> = HashMap::new();
    while let Some(result) = claimers.join_next().await {
        let (name, claimed) = result.unwrap();
        for job_id in claimed {
            if let Some(previous) = seen.insert(job_id, name.clone()) {
                panic!("job {job_id} claimed twice, by {previous} and {name}");
            }
        }
    }
    assert_eq!(seen.len(), JOBS, "every job claimed exactly once");
    assert_eq!(seen.keys().copied().collect::<HashSet<_>>(), all_jobs);
    assert_intact(store).await;
}

/// Does a human task of the claim: assigned, started, submitted with `output`, and passed by
/// the reviewer when QA samples it.
async fn do_task(
    tenant: &Tenant,
    task_id: TaskId,
    output: &Value,
    next_id: uuid::Uuid,
    (maker, reviewer): (WorkerId, WorkerId),
) {
    // The case rules keep a maker off the check of their own work: the two swap on a check step.
    let step = tenant.task(task_id).await.unwrap().step;
    let (maker, reviewer) = match karya_core::routing::case::is_check_step(&step) {
        true => (reviewer, maker),
        false => (maker, reviewer),
    };
    tenant
        .assign_task(task_id, maker, id(), now())
        .await
        .unwrap();
    tenant
        .transition_task(task_id, TaskState::InProgress, now())
        .await
        .unwrap();
    let document = output.to_string();
    let submission = Submission {
        fields: &Default::default(),
        document: Some(&document),
        next_id,
    };
    let outcome = tenant
        .submit_task_with_output(task_id, &submission, now())
        .await
        .unwrap();
    let SubmitOutcome::Sampled { task, .. } = outcome else {
        panic!("an ordinary task")
    };
    if task.state == TaskState::InReview {
        let review = NewReview {
            id: ReviewId::from_uuid(uuid::Uuid::now_v7()),
            reviewer_id: reviewer,
            verdict: Verdict::Pass,
            defects: Vec::new(),
        };
        let passed = tenant
            .record_review_then(task_id, &review, next_id, now())
            .await
            .unwrap();
        assert_eq!(passed.task.state, TaskState::Done);
    }
    assert_eq!(
        tenant.task_output(task_id).await.unwrap(),
        Some(document),
        "the output is stored with the task"
    );
}

pub async fn the_deliverable_is_assembled_from_the_steps_outputs(db: &TestDb) {
    let store = &db.store;
    let pack = claims_pack();
    let tenant = client(store, "Acme Insurance").await;
    let other = client(store, "Other").await;
    let engagement_id = claims_engagement(&tenant, &pack).await;
    let maker: WorkerId = id();
    let reviewer: WorkerId = id();
    for (worker_id, name) in [(maker, "Asha Rao"), (reviewer, "Vikram Iyer")] {
        store
            .create_worker(worker_id, name, None, Designation::Manager, now())
            .await
            .unwrap();
    }
    let (item_id, job_id) = claim_item(&tenant, &pack, engagement_id, "CLM-77").await;
    store.claim_job("ocr", now()).await.unwrap();
    store
        .complete_job(
            job_id,
            "ocr",
            &json!({"claim_number": "CLM-77", "decision": "pending", "ocr_confidence": 0.93})
                .to_string(),
            uuid::Uuid::now_v7(),
            now(),
        )
        .await
        .unwrap();
    // Each human step's output; a later step's field replaces an earlier one's.
    let outputs = [
        ("document_check", json!({"documents_complete": true})),
        (
            "adjudication",
            json!({"decision": "approved", "approved_amount": 41000, "policy_clause": "4.2"}),
        ),
        (
            "qa_check",
            json!({"deductions": [{"reason": "excess", "amount": 1000}]}),
        ),
    ];
    for (step, output) in &outputs {
        let tasks = tenant.tasks_of(item_id).await.unwrap();
        let task = tasks
            .iter()
            .find(|t| t.state == TaskState::Ready)
            .expect("the next step's task");
        assert_eq!(task.step, *step);
        do_task(
            &tenant,
            task.id,
            output,
            uuid::Uuid::now_v7(),
            (maker, reviewer),
        )
        .await;
    }
    assert!(tenant.deliverables(item_id).await.unwrap().is_empty());
    let payment = tenant
        .jobs_of(item_id)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.state == "queued")
        .expect("the payment instruction's job");
    assert_eq!(payment.processor, "calculate");
    store.claim_job("calc", now()).await.unwrap();
    let deliverable_id = uuid::Uuid::now_v7();
    store
        .complete_job(
            payment.id,
            "calc",
            r#"{"payment_reference": "NEFT-0042"}"#,
            deliverable_id,
            now(),
        )
        .await
        .unwrap();

    let item = tenant.work_item(item_id).await.unwrap();
    assert_eq!(item.state, WorkItemState::Delivered);
    let deliverables = tenant.deliverables(item_id).await.unwrap();
    assert_eq!(deliverables.len(), 1);
    let deliverable = &deliverables[0];
    assert_eq!(deliverable.id, deliverable_id);
    assert_eq!(deliverable.name, "CLM-77-deliverable.json");
    assert_eq!(deliverable.media_type, "application/json");
    assert_eq!(deliverable.bytes, deliverable.content.len() as u64);
    assert_eq!(deliverable.sha256.len(), 64);
    let content: Value = serde_json::from_str(&deliverable.content).unwrap();
    assert_eq!(content["pack_id"], json!(pack.id));
    assert_eq!(content["external_ref"], json!("CLM-77"));
    // Only the fields the pack delivers, each from the last step that wrote it.
    assert_eq!(
        content["data"],
        json!({
            "claim_number": "CLM-77",
            "decision": "approved",
            "approved_amount": 41000,
            "policy_clause": "4.2",
            "deductions": [{"reason": "excess", "amount": 1000}],
            "payment_reference": "NEFT-0042",
        })
    );
    let files: Vec<&str> = content["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "CLM-77-settlement-letter.pdf",
            "CLM-77-computation-sheet.pdf"
        ]
    );
    let steps: Vec<&str> = content["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let plan: Vec<&str> = pack.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, plan);
    assert_eq!(
        tenant
            .deliverable(item_id, deliverable_id)
            .await
            .unwrap()
            .content,
        deliverable.content
    );

    // Another client sees neither the item's deliverables nor the deliverable itself.
    assert!(matches!(
        other.deliverables(item_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        other.deliverable(item_id, deliverable_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_intact(store).await;
}

/// A bulk import into a pack engagement starts every item on the pack's first step, as a
/// single intake does, in the import's one transaction.
pub async fn a_bulk_import_starts_each_item_of_a_pack_engagement(db: &TestDb) {
    let store = &db.store;
    let pack = claims_pack();
    let tenant = client(store, "Bulk Claims").await;
    let engagement_id = claims_engagement(&tenant, &pack).await;
    let example = &pack.examples[0];
    let rows: Vec<NewWorkItem> = (0..3)
        .map(|n| NewWorkItem {
            id: id(),
            engagement_id,
            external_ref: Some(format!("BULK-{n}")),
            title: example.name.clone(),
            priority: example.priority,
            input: example.input.clone(),
        })
        .collect();
    let outcome = tenant
        .import_work_items(engagement_id, &rows, now())
        .await
        .unwrap();
    assert!(
        matches!(outcome, karya_store::ImportOutcome::Imported(_)),
        "{outcome:?}"
    );
    for row in &rows {
        let item = tenant.work_item(row.id).await.unwrap();
        assert_eq!(item.state, WorkItemState::InProgress);
        assert_eq!(item.version, 2);
        let queued = tenant.tasks_of(row.id).await.unwrap().len()
            + tenant.jobs_of(row.id).await.unwrap().len();
        assert_eq!(queued, 1, "the first step of {} is queued", row.id);
        let kinds: Vec<String> = tenant
            .entity_events("work_item", &row.id.to_string())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["work_item.created", "work_item.transitioned"]);
    }
    assert_intact(store).await;
}
