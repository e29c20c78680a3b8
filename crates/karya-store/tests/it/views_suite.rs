//! The web UI's read models on both engines: a worker's tasks, queues across clients, the
//! board's counts, SLA risk, reviews of a maker, item dates, and recorded outputs.

use karya_core::lifecycle::TaskState;
use karya_core::model::Designation;
use karya_store::NewTask;
use serde_json::json;

use crate::harness::TestDb;
use crate::suite::{client, engagement, id, item, now, worker};

pub async fn views_read_queues_outputs_and_history(db: &TestDb) {
    let store = &db.store;
    let a = client(store, "Views A").await;
    let b = client(store, "Views B").await;
    let a_engagement = engagement(&a, "searches").await;
    let b_engagement = engagement(&b, "searches").await;
    let a_item = item(&a, a_engagement).await;
    let b_item = item(&b, b_engagement).await;
    let task = |work_item_id, step: &str| NewTask {
        id: id(),
        work_item_id,
        step: step.into(),
    };
    let a_task = a.create_task(&task(a_item, "search"), now()).await.unwrap();
    let b_task = b.create_task(&task(b_item, "search"), now()).await.unwrap();
    let maker = worker(store, "Maya").await;
    let other = worker(store, "Omar").await;
    a.assign_task(a_task.id, maker, id(), now()).await.unwrap();

    // A worker's tasks are the ones they hold, across clients; nobody else's.
    let held: Vec<_> = store
        .worker_tasks(maker, 50)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(held, vec![a_task.id]);
    assert!(store.worker_tasks(other, 50).await.unwrap().is_empty());

    // Queues across clients, and the board's counts per service line and state.
    let ready: Vec<_> = store
        .tasks_in_state(TaskState::Ready, 50)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ready, vec![b_task.id]);
    let counts: Vec<(String, TaskState, i64)> = store
        .queue_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.service_line, c.state, c.tasks))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("ip_research".to_string(), TaskState::Assigned, 1),
            ("ip_research".to_string(), TaskState::Ready, 1),
        ]
    );

    // Workers by name; the item dates of one engagement only.
    let names: Vec<String> = store
        .workers(50)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, vec!["Maya".to_string(), "Omar".to_string()]);
    assert_eq!(
        store.workers(50).await.unwrap()[0].designation,
        Designation::Analyst
    );
    let dates = a.item_dates(a_engagement, now(), 50).await.unwrap();
    assert_eq!(dates.len(), 1);
    assert!(dates[0].resolved_at.is_none() && !dates[0].cancelled);
    assert!(a
        .item_dates(b_engagement, now(), 50)
        .await
        .unwrap()
        .is_empty());

    // Outputs: the latest recorded one wins, and another client reads nothing.
    assert_eq!(a.latest_output(a_task.id).await.unwrap(), None);
    a.record_output(a_task.id, &json!({"hits": 1}), now())
        .await
        .unwrap();
    a.record_output(a_task.id, &json!({"hits": 2}), now())
        .await
        .unwrap();
    assert_eq!(
        a.latest_output(a_task.id).await.unwrap(),
        Some(json!({"hits": 2}))
    );
    assert!(b.record_output(a_task.id, &json!({}), now()).await.is_err());

    // No reviews yet; without SLA terms nothing is at risk.
    assert!(store.reviews_of_maker(maker, 50).await.unwrap().is_empty());
    assert!(store.sla_risk(now(), 50).await.unwrap().is_empty());
    crate::suite::assert_intact(store).await;
}
