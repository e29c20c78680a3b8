//! HTTP tests of task creation and task transitions: staff make a step a task, the worker
//! holding it starts it, and a holder may not make the moves reserved to staff.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use karya_core::id::{AssignmentId, WorkerId};
use karya_core::model::{Designation, Role};
use serde_json::{json, Value};

use crate::{Reply, TestApp};

async fn post_as(app: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(request).await
}

#[tokio::test]
async fn staff_create_tasks_and_holders_start_them() {
    let app = TestApp::new().await;
    let now = jiff::Timestamp::now();
    let (client, engagement) = app.client_with_engagement("Tasks Ltd").await;
    let item = app.work_item(&client, &engagement, "a search").await;
    let item_id = item["id"].as_str().unwrap();
    let base = format!("/api/v1/clients/{client}");

    // Input is checked before anything is written.
    let cases = [
        (json!({"step": "  "}), StatusCode::BAD_REQUEST),
        (
            json!({"step": "search", "extra": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, status) in cases {
        let reply = app
            .post(&format!("{base}/work-items/{item_id}/tasks"), &body)
            .await;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
    }
    let missing = uuid::Uuid::now_v7();
    let reply = app
        .post(
            &format!("{base}/work-items/{missing}/tasks"),
            &json!({"step": "search"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");

    let reply = app
        .post(
            &format!("{base}/work-items/{item_id}/tasks"),
            &json!({"step": "search"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(
        (reply.body["step"].as_str(), reply.body["state"].as_str()),
        (Some("search"), Some("ready"))
    );
    let task_id: karya_core::id::TaskId = reply.body["id"].as_str().unwrap().parse().unwrap();

    let worker = WorkerId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_worker(worker, "Wendy", None, Designation::Analyst, now)
        .await
        .unwrap();
    let (_, token) = karya_server::auth::user_with_token(
        &app.store,
        "wendy@firm.example",
        Role::Worker,
        None,
        Some(worker),
        now,
    )
    .await
    .unwrap();
    let moves = format!("{base}/tasks/{task_id}/transitions");
    // Not held yet: for the worker the task does not exist.
    let reply = post_as(&app, &token, &moves, json!({"to": "in_progress"})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");

    app.store
        .tenant(client.parse().unwrap())
        .assign_task(
            task_id,
            worker,
            AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            now,
        )
        .await
        .unwrap();
    // (target, status, state after) in order, as the holder.
    let steps = [
        ("cancelled", StatusCode::FORBIDDEN, None),
        ("done", StatusCode::FORBIDDEN, None),
        ("flying", StatusCode::BAD_REQUEST, None),
        ("in_progress", StatusCode::OK, Some("in_progress")),
        ("in_progress", StatusCode::UNPROCESSABLE_ENTITY, None),
    ];
    for (to, status, state) in steps {
        let reply = post_as(&app, &token, &moves, json!({"to": to})).await;
        assert_eq!(reply.status, status, "to {to}: {reply:?}");
        if let Some(state) = state {
            assert_eq!(reply.body["state"], state);
        }
    }
    // Staff may make any move the table allows.
    let reply = app.post(&moves, &json!({"to": "cancelled"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["state"], "cancelled");
    app.finish().await;
}
