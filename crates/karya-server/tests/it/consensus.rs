//! HTTP tests of consensus and of the bars QA puts on *Get next*: keyers are served one part
//! each and never see each other's answers, the adjudicator sees the dispute without names,
//! a worker paused by gold tasks is skipped until a lead lifts the pause.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use karya_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::Role;
use karya_core::qa::gold::GoldPolicy;
use karya_store::{NewTask, QaPolicy, Tenant};
use serde_json::{json, Value};

use crate::{Reply, TestApp};

/// A worker on shift around the clock, available, with a token of their own in `role`.
async fn worker(app: &TestApp, name: &str, designation: &str, role: Role) -> (WorkerId, String) {
    let reply = app
        .post(
            "/api/v1/workers",
            &json!({"name": name, "designation": designation}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    let id: WorkerId = reply.body["id"].as_str().unwrap().parse().unwrap();
    let shifts: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "minutes": 1440}))
        .collect();
    let profile =
        json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 10});
    let request = Request::put(format!("/api/v1/workers/{id}/profile"))
        .header("content-type", "application/json")
        .body(Body::from(profile.to_string()))
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::NO_CONTENT);
    let presence = app
        .post(
            &format!("/api/v1/workers/{id}/presence"),
            &json!({"presence": "available"}),
        )
        .await;
    assert_eq!(presence.status, StatusCode::NO_CONTENT);
    let (_, token) = karya_server::auth::user_with_token(
        &app.store,
        &format!("{}@firm.example", name.replace(' ', ".")),
        role,
        None,
        Some(id),
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    (id, token)
}

async fn call(app: &TestApp, token: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    app.send(request).await
}

/// *Get next* as the worker: the task id, or `None` on 204.
async fn next(app: &TestApp, worker: &(WorkerId, String)) -> Option<String> {
    let reply = call(
        app,
        &worker.1,
        "POST",
        &format!("/api/v1/workers/{}/next", worker.0),
        None,
    )
    .await;
    match reply.status {
        StatusCode::NO_CONTENT => None,
        StatusCode::OK => Some(reply.body["task_id"].as_str().unwrap().to_string()),
        other => panic!("get next answered {other}: {:?}", reply.body),
    }
}

async fn begin(tenant: &Tenant, task_id: &str) {
    let task_id: TaskId = task_id.parse().unwrap();
    tenant
        .transition_task(task_id, TaskState::InProgress, jiff::Timestamp::now())
        .await
        .unwrap();
}

#[tokio::test]
async fn keyers_are_blind_to_each_other_and_the_adjudicator_settles() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Keyed Invoices").await;
    let item = app
        .work_item(&client_id, &engagement_id, "invoice 4411")
        .await;
    let item_id = item["id"].as_str().unwrap();
    let tenant = app.store.tenant(client_id.parse::<ClientId>().unwrap());
    let a = worker(&app, "keyer a", "analyst", Role::Worker).await;
    let b = worker(&app, "keyer b", "analyst", Role::Worker).await;
    let lead = worker(&app, "lead l", "team_lead", Role::Worker).await;

    let base = format!("/api/v1/clients/{client_id}");
    let group = app
        .post(
            &format!("{base}/work-items/{item_id}/consensus-groups"),
            &json!({"step": "key_invoice", "keyers": 2}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{group:?}");
    let group_id = group.body["id"].as_str().unwrap().to_string();
    let bad = app
        .post(
            &format!("{base}/work-items/{item_id}/consensus-groups"),
            &json!({"step": "key_totals", "keyers": 1}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{bad:?}");

    // Get next serves each keyer one part, never both.
    let a_task = next(&app, &a).await.expect("a part for keyer a");
    assert_eq!(next(&app, &a).await, None);
    let b_task = next(&app, &b).await.expect("a part for keyer b");
    assert_ne!(a_task, b_task);
    begin(&tenant, &a_task).await;
    begin(&tenant, &b_task).await;

    let keyed = call(
        &app,
        &a.1,
        "POST",
        &format!("{base}/tasks/{a_task}/keying"),
        Some(json!({"output": {"vendor": "Acme Ltd", "total": "118.00"}})),
    )
    .await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{keyed:?}");
    assert_eq!(keyed.body, json!({"task_id": a_task, "state": "done"}));

    // Keyer b sees nothing of keyer a's answer: not the group, not a's task, not a's keying.
    let seen = call(
        &app,
        &b.1,
        "GET",
        &format!("{base}/consensus-groups/{group_id}"),
        None,
    )
    .await;
    assert_eq!(seen.status, StatusCode::FORBIDDEN);
    let seen = call(
        &app,
        &b.1,
        "GET",
        &format!("{base}/tasks/{a_task}/adjudication"),
        None,
    )
    .await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);
    let seen = call(
        &app,
        &b.1,
        "GET",
        &format!("{base}/tasks/{a_task}/reviews"),
        None,
    )
    .await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);
    let keyed = call(
        &app,
        &b.1,
        "POST",
        &format!("{base}/tasks/{b_task}/keying"),
        Some(json!({"output": {"vendor": "acme ltd", "total": "18.00"}})),
    )
    .await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{keyed:?}");
    assert_eq!(keyed.body, json!({"task_id": b_task, "state": "done"}));

    // Staff see everything; the answers disagree on the total.
    let detail = app
        .get(&format!("{base}/consensus-groups/{group_id}"))
        .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.body["state"], "adjudicating");
    assert_eq!(detail.body["answers"].as_array().unwrap().len(), 2);
    assert_eq!(detail.body["field_agreement"], json!(0.5));
    let adjudication = detail.body["adjudication_task_id"]
        .as_str()
        .unwrap()
        .to_string();

    // No keyer adjudicates; the lead is served the adjudication and sees the dispute unnamed.
    assert_eq!(next(&app, &a).await, None);
    assert_eq!(next(&app, &b).await, None);
    let seen = call(
        &app,
        &a.1,
        "GET",
        &format!("{base}/tasks/{adjudication}/adjudication"),
        None,
    )
    .await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);
    assert_eq!(next(&app, &lead).await, Some(adjudication.clone()));
    let dispute = call(
        &app,
        &lead.1,
        "GET",
        &format!("{base}/tasks/{adjudication}/adjudication"),
        None,
    )
    .await;
    assert_eq!(dispute.status, StatusCode::OK, "{dispute:?}");
    assert_eq!(
        (&dispute.body["agreed"], &dispute.body["disputed"]),
        (
            &json!({"vendor": "acme ltd"}),
            &json!([{"field": "total", "values": ["118.00", "18.00"]}])
        )
    );
    let text = dispute.body.to_string();
    assert!(!text.contains(&a.0.to_string()) && !text.contains(&b.0.to_string()));

    begin(&tenant, &adjudication).await;
    let ruled = call(
        &app,
        &lead.1,
        "POST",
        &format!("{base}/tasks/{adjudication}/adjudication"),
        Some(json!({"ruling": {"total": "118.00"}})),
    )
    .await;
    assert_eq!(ruled.status, StatusCode::CREATED, "{ruled:?}");
    assert_eq!(ruled.body["state"], "settled");
    assert_eq!(ruled.body["adjudicator_id"], json!(lead.0.to_string()));
    assert_eq!(
        ruled.body["results"],
        json!([
            {"worker_id": a.0.to_string(), "correct": true, "right": ["total"], "wrong": []},
            {"worker_id": b.0.to_string(), "correct": false, "right": [], "wrong": ["total"]},
        ])
    );
    let accuracy = app
        .get(&format!(
            "{base}/engagements/{engagement_id}/accuracy?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(
        accuracy.body["sources"]["consensus"],
        json!({"checks": 2, "correct": 1})
    );
    app.finish().await;
}

#[tokio::test]
async fn a_paused_worker_is_skipped_until_a_lead_lifts_the_pause() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Paused Keying").await;
    let item = app
        .work_item(&client_id, &engagement_id, "invoice 77")
        .await;
    let item_id: WorkItemId = item["id"].as_str().unwrap().parse().unwrap();
    let engagement: EngagementId = engagement_id.parse().unwrap();
    let tenant = app.store.tenant(client_id.parse::<ClientId>().unwrap());
    let keyer = worker(&app, "keyer p", "analyst", Role::Worker).await;
    let lead = worker(&app, "lead q", "team_lead", Role::Lead).await;
    let now = jiff::Timestamp::now;
    tenant
        .set_qa_policy(
            engagement,
            &QaPolicy {
                gold: GoldPolicy {
                    window: 1,
                    min_scored: 1,
                    accuracy_threshold: 0.8,
                },
                ..QaPolicy::default()
            },
            now(),
        )
        .await
        .unwrap();
    let task = |step: &str| NewTask {
        id: TaskId::from_uuid(uuid::Uuid::now_v7()),
        work_item_id: item_id,
        step: step.into(),
    };
    let gold = tenant
        .create_task(&task("key_invoice"), now())
        .await
        .unwrap();
    let expected = [("total".to_string(), "118.00".to_string())].into();
    tenant
        .set_gold_answer(gold.id, &expected, now())
        .await
        .unwrap();
    assert_eq!(next(&app, &keyer).await, Some(gold.id.to_string()));
    begin(&tenant, &gold.id.to_string()).await;
    let base = format!("/api/v1/clients/{client_id}");
    let submitted = call(
        &app,
        &keyer.1,
        "POST",
        &format!("{base}/tasks/{}/submission", gold.id),
        Some(json!({"output": {"total": "18.00"}})),
    )
    .await;
    assert_eq!(submitted.status, StatusCode::OK, "{submitted:?}");

    // Paused on key_invoice: that step's work waits for someone else.
    let waiting = tenant
        .create_task(&task("key_invoice"), now())
        .await
        .unwrap();
    assert_eq!(next(&app, &keyer).await, None);
    let lift = format!(
        "{base}/engagements/{engagement_id}/workers/{}/pauses/key_invoice/lift",
        keyer.0
    );
    let refused = call(&app, &keyer.1, "POST", &lift, Some(json!({}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let lifted = call(&app, &lead.1, "POST", &lift, Some(json!({}))).await;
    assert_eq!(lifted.status, StatusCode::OK, "{lifted:?}");
    assert_eq!(lifted.body["paused"], json!(false));
    assert_eq!(next(&app, &keyer).await, Some(waiting.id.to_string()));
    let again = call(&app, &lead.1, "POST", &lift, Some(json!({}))).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "{again:?}");
    app.finish().await;
}
