//! HTTP tests through the router, without a socket: workers, engagement routing, *Get next*
//! with eligibility, and explanations, on a fresh SQLite database per test.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use karya_core::id::{TaskId, WorkItemId};
use karya_server::{router, AppState};
use karya_store::{NewTask, Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

struct App {
    state: AppState,
    token: String,
    dir: std::path::PathBuf,
}

impl App {
    async fn new() -> App {
        let dir =
            std::env::temp_dir().join(format!("karya-http-{}", uuid::Uuid::now_v7().simple()));
        let url = format!("sqlite://{}/karya.db", dir.display());
        let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
        let (_, token) = karya_server::auth::user_with_token(
            &store,
            "admin@firm.example",
            karya_core::model::Role::Admin,
            None,
            None,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
        App {
            state: AppState::new(store),
            token,
            dir,
        }
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token));
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let value = match bytes.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&bytes).unwrap(),
        };
        (status, value)
    }

    async fn finish(self) {
        self.state.store.close().await;
        std::fs::remove_dir_all(self.dir).ok();
    }
}

/// A worker on shift around the clock (UTC, every day from 00:00 for 24 hours).
async fn worker(app: &App, name: &str) -> String {
    let (status, body) = app
        .call(Method::POST, "/api/v1/workers", Some(json!({"name": name})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let shifts: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "minutes": 1440}))
        .collect();
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/workers/{id}/profile"),
            Some(json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{id}/presence"),
            Some(json!({"presence": "available"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    id
}

#[tokio::test]
async fn get_next_assigns_only_eligible_work_and_explains_it() {
    let app = App::new().await;
    let (_, client) = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "Acme Tax", "currency": "USD"})),
        )
        .await;
    let client_id = client["id"].as_str().unwrap().to_string();
    let (_, other) = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "Other", "currency": "USD"})),
        )
        .await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let (status, engagement) = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/engagements"),
            Some(json!({"name": "returns", "service_line": "ip_research"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{engagement}");
    let engagement_id = engagement["id"].as_str().unwrap().to_string();
    let routing_uri = format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/routing");
    let (status, body) = app
        .call(
            Method::PUT,
            &routing_uri,
            Some(json!({"requirements": {
                "qualifications": ["cpa"], "channel": "research", "weight": 5, "expected_handling_s": 1,
                "target": "worker.skills.tax >= 3"
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.call(Method::GET, &routing_uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["requirements"]["qualifications"], json!(["cpa"]));
    assert_eq!(body["workflow"][4]["escalate"], json!(true));
    let other_routing = format!("/api/v1/clients/{other_id}/engagements/{engagement_id}/routing");
    assert_eq!(
        app.call(Method::GET, &other_routing, None).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, item) = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/work-items"),
            Some(
                json!({"engagement_id": engagement_id, "title": "1040 for J. Doe", "input": crate::ip_research_input()}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let item_id: WorkItemId = item["id"].as_str().unwrap().parse().unwrap();
    let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
    app.state
        .store
        .tenant(client_id.parse().unwrap())
        .create_task(
            &NewTask {
                id: task_id,
                work_item_id: item_id,
                step: "prepare".into(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();

    let unqualified = worker(&app, "Ravi").await;
    let qualified = worker(&app, "Asha").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{qualified}/qualifications"),
            Some(json!({"kind": "cpa", "issuer": "aicpa", "valid_from": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for w in [&unqualified, &qualified] {
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/api/v1/workers/{w}/skills/tax"),
                Some(json!({"level": 6})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    // The unqualified worker gets nothing; the qualified one gets the task, explained.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{unqualified}/next"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, next) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{qualified}/next"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["task_id"], json!(task_id.to_string()));
    assert_eq!(next["state"], json!("assigned"));
    assert_eq!(next["explanation"]["rule"], json!("best_score"));
    assert_eq!(next["explanation"]["eligible"], json!(1));
    let terms: Vec<&str> = next["explanation"]["score"]["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["term"].as_str().unwrap())
        .collect();
    assert_eq!(
        terms,
        [
            "priority",
            "sla_urgency",
            "skill_fit",
            "affinity",
            "load",
            "idle",
            "growth",
            "handover"
        ]
    );
    // Nothing left, and the worker's load shows the task's weight.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{qualified}/next"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Intake started the item with its pack's first step; that task keeps the step's own
    // requirements (a technical degree and patent search), which the tax preparer lacks.
    let (_, tasks) = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/work-items/{item_id}/tasks"),
            None,
        )
        .await;
    let states: Vec<(&str, &str)> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["step"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("intake_check", "ready"), ("prepare", "assigned")]);
    let (_, profile) = app
        .call(Method::GET, &format!("/api/v1/workers/{qualified}"), None)
        .await;
    assert_eq!(profile["units_used"], json!(5));
    assert_eq!(
        profile["routing"]["qualifications"][0]["kind"],
        json!("cpa")
    );

    let uri = format!("/api/v1/clients/{client_id}/tasks/{task_id}/explanations");
    let (status, explanations) = app.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(explanations["items"][0]["worker_id"], json!(qualified));
    assert_eq!(explanations["items"][0]["path"], json!("get_next"));
    let foreign = format!("/api/v1/clients/{other_id}/tasks/{task_id}/explanations");
    let (status, body) = app.call(Method::GET, &foreign, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn bad_profiles_and_unknown_workers_are_refused() {
    let app = App::new().await;
    let id = worker(&app, "Meera").await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/workers/{id}/profile"),
            Some(json!({"languages": [], "time_zone": "Mars/Olympus", "shifts": [], "capacity_units": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/workers/{id}/skills/tax"),
            Some(json!({"level": 11})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let missing = uuid::Uuid::now_v7();
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{missing}/next"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.finish().await;
}

/// A client with one engagement (no routing: tasks weigh one unit) and `n` ready tasks.
async fn ready_tasks(app: &App, n: usize) -> (karya_core::id::ClientId, Vec<TaskId>) {
    let (_, client) = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": format!("Offers {}", uuid::Uuid::now_v7()), "currency": "USD"})),
        )
        .await;
    let client_id: karya_core::id::ClientId = client["id"].as_str().unwrap().parse().unwrap();
    // Set up by hand, not from a pack: its items get only the tasks made here.
    let engagement_id = karya_core::id::EngagementId::from_uuid(uuid::Uuid::now_v7());
    app.state
        .store
        .tenant(client_id)
        .create_engagement(
            &karya_store::NewEngagement {
                id: engagement_id,
                name: "returns".into(),
                service_line: "ip_research".parse().unwrap(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let engagement_id = engagement_id.to_string();
    let mut tasks = Vec::new();
    for idx in 0..n {
        let (status, item) = app
            .call(
                Method::POST,
                &format!("/api/v1/clients/{client_id}/work-items"),
                Some(json!({"engagement_id": engagement_id, "title": format!("item {idx}"), "input": {}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
        app.state
            .store
            .tenant(client_id)
            .create_task(
                &NewTask {
                    id: task_id,
                    work_item_id: item["id"].as_str().unwrap().parse().unwrap(),
                    step: "prepare".into(),
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
        tasks.push(task_id);
    }
    (client_id, tasks)
}

fn offer_to(task_id: TaskId, worker_id: karya_core::id::WorkerId) -> karya_store::NewOffer {
    use karya_core::routing::{Explanation, Path, Rule};
    let now = jiff::Timestamp::now();
    karya_store::NewOffer {
        id: karya_core::id::OfferId::from_uuid(uuid::Uuid::now_v7()),
        task_id,
        worker_id,
        expires_at: now + jiff::SignedDuration::from_mins(5),
        explanation: Explanation {
            task_id,
            decided_at: now,
            path: Path::Offer,
            rule: Rule::BestScore,
            step_idx: 0,
            step_name: "as_required".into(),
            candidates: 2,
            eligible: 2,
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

#[tokio::test]
async fn offers_are_listed_accepted_once_and_declined() {
    let app = App::new().await;
    let (client_id, tasks) = ready_tasks(&app, 2).await;
    let asha = worker(&app, "Asha").await;
    let ravi = worker(&app, "Ravi").await;
    let tenant = app.state.store.tenant(client_id);
    let mut offers = Vec::new();
    for task_id in &tasks {
        let offer = offer_to(*task_id, asha.parse().unwrap());
        let made = tenant
            .make_offer(&offer, jiff::Timestamp::now())
            .await
            .unwrap();
        assert!(matches!(made, karya_store::OfferMade::Made(_)));
        offers.push(offer.id.to_string());
    }
    let (status, body) = app
        .call(Method::GET, &format!("/api/v1/workers/{asha}/offers"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(body["items"][0]["outcome"], Value::Null);
    let (_, body) = app
        .call(Method::GET, &format!("/api/v1/workers/{ravi}/offers"), None)
        .await;
    assert_eq!(body["items"], json!([]));

    // Another worker's offer does not exist for them.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{ravi}/offers/{}/accept", offers[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let accept = format!("/api/v1/workers/{asha}/offers/{}/accept", offers[0]);
    let (status, body) = app.call(Method::POST, &accept, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "assigned");
    assert_eq!(
        app.state.store.active_assignee(tasks[0]).await.unwrap(),
        Some(asha.parse().unwrap())
    );
    let (status, body) = app.call(Method::POST, &accept, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The assignment carries the offer's explanation.
    let (status, body) = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/clients/{client_id}/tasks/{}/explanations",
                tasks[0]
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["items"][0]["assignment_id"].is_string(), "{body}");

    let decline = format!("/api/v1/workers/{asha}/offers/{}/decline", offers[1]);
    let (status, body) = app.call(Method::POST, &decline, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "declined");
    let (_, body) = app
        .call(Method::GET, &format!("/api/v1/workers/{asha}/offers"), None)
        .await;
    assert_eq!(body["items"], json!([]));
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/workers/{asha}/offers/{}/accept", offers[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        app.state
            .store
            .tenant(client_id)
            .task(tasks[1])
            .await
            .unwrap()
            .state,
        karya_core::lifecycle::TaskState::Ready
    );
    app.finish().await;
}

#[tokio::test]
async fn concurrent_get_next_never_overfills_a_worker() {
    let app = App::new().await;
    let (_, _tasks) = ready_tasks(&app, 4).await;
    let asha = worker(&app, "Asha").await;
    let shifts: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "minutes": 1440}))
        .collect();
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/workers/{asha}/profile"),
            Some(json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let app = std::sync::Arc::new(app);
    let mut calls = Vec::new();
    for _ in 0..4 {
        let app = app.clone();
        let uri = format!("/api/v1/workers/{asha}/next");
        calls.push(tokio::spawn(async move {
            app.call(Method::POST, &uri, None).await.0
        }));
    }
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::NO_CONTENT,
            StatusCode::NO_CONTENT
        ]
    );
    let units = app
        .state
        .store
        .worker_capacity(asha.parse().unwrap())
        .await
        .unwrap();
    assert_eq!((units.used, units.max), (2, 2));
}

#[tokio::test]
async fn health_reports_leadership() {
    let app = App::new().await;
    let (status, body) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["leader"], false);
    let leading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let state = AppState::with_leadership(app.state.store.clone(), leading);
    let response = router(state)
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["leader"], true);
    app.finish().await;
}

/// A task the router already offered to a worker is not ready for anyone else, so *Get next*
/// must hand the worker their own open offer, or a worker whose work all arrives by offer
/// would find nothing (seen in the browser: the router loop offered the only task before the
/// worker pressed the button).
#[tokio::test]
async fn get_next_takes_the_workers_open_offer_first() {
    let app = App::new().await;
    let (client_id, tasks) = ready_tasks(&app, 1).await;
    let asha = worker(&app, "Asha").await;
    let ravi = worker(&app, "Ravi").await;
    let offer = offer_to(tasks[0], asha.parse().unwrap());
    let made = app
        .state
        .store
        .tenant(client_id)
        .make_offer(&offer, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(made, karya_store::OfferMade::Made(_)));

    let (status, _) = app
        .call(Method::POST, &format!("/api/v1/workers/{ravi}/next"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the offered task is not ready for others"
    );
    let (status, body) = app
        .call(Method::POST, &format!("/api/v1/workers/{asha}/next"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["task_id"], tasks[0].to_string());
    assert_eq!(body["state"], "assigned");
    assert!(!body["explanation"].is_null(), "{body}");
    let (_, offers) = app
        .call(Method::GET, &format!("/api/v1/workers/{asha}/offers"), None)
        .await;
    assert_eq!(offers["items"], json!([]), "the offer is no longer open");
    app.finish().await;
}

/// Profiles carry channel caps, attributes and breaks; *Get next* keeps the maker off the
/// item's review, prefers the item's analyst for its other steps, and holds the channel cap;
/// a target expression with a mistake is refused with its position.
#[tokio::test]
async fn get_next_follows_the_case_and_channel_caps() {
    let app = App::new().await;
    let (_, client) = app
        .call(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "Case Law", "currency": "USD"})),
        )
        .await;
    let client_id = client["id"].as_str().unwrap().to_string();
    let (_, engagement) = app
        .call(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/engagements"),
            Some(json!({"name": "searches", "service_line": "ip_research"})),
        )
        .await;
    let engagement_id = engagement["id"].as_str().unwrap().to_string();
    let routing_uri = format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/routing");
    let (status, body) = app
        .call(
            Method::PUT,
            &routing_uri,
            Some(json!({"requirements": {
                "channel": "research", "weight": 1, "expected_handling_s": 60,
                "target": "worker.skils.tax > 1"
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.to_string().contains("unknown field worker.skils"),
        "{body}"
    );
    assert!(body.to_string().contains("at byte 7"), "{body}");
    let (status, body) = app
        .call(
            Method::PUT,
            &routing_uri,
            Some(json!({"requirements": {
                "channel": "research", "weight": 1, "expected_handling_s": 60,
                "target": "task.service_line == 'ip_research' && worker.attr.team == 'ip'"
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let asha = worker(&app, "Asha").await;
    let ben = worker(&app, "Ben").await;
    let shifts: Vec<Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "minutes": 1440}))
        .collect();
    let profile_uri = |w: &str| format!("/api/v1/workers/{w}/profile");
    let (status, body) = app
        .call(
            Method::PUT,
            &profile_uri(&asha),
            Some(json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 10,
                        "breaks": [{"after_minutes": 0, "minutes": 0}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for (w, caps) in [
        (&asha, json!([{"channel": "research", "units_max": 1}])),
        (&ben, json!([])),
    ] {
        let (status, body) = app
            .call(
                Method::PUT,
                &profile_uri(w),
                Some(json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 10,
                            "channel_caps": caps, "attributes": {"team": "ip"},
                            "breaks": [{"after_minutes": 240, "minutes": 30}]})),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (_, profile) = app
        .call(Method::GET, &format!("/api/v1/workers/{asha}"), None)
        .await;
    assert_eq!(
        profile["routing"]["channel_caps"],
        json!([{"channel": "research", "units_max": 1}])
    );
    assert_eq!(profile["routing"]["attributes"], json!({"team": "ip"}));
    assert_eq!(
        profile["routing"]["breaks"],
        json!([{"after_minutes": 240, "minutes": 30}])
    );
    assert_eq!(profile["routing"]["presence_by"], json!("worker"));

    let tenant = app.state.store.tenant(client_id.parse().unwrap());
    let new_item = || async {
        let (status, item) = app
            .call(
                Method::POST,
                &format!("/api/v1/clients/{client_id}/work-items"),
                Some(json!({"engagement_id": engagement_id, "title": "search", "input": crate::ip_research_input()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        item["id"].as_str().unwrap().parse::<WorkItemId>().unwrap()
    };
    let new_task = |item_id: WorkItemId, step: &str| {
        let tenant = tenant.clone();
        let step = step.to_string();
        async move {
            let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
            tenant
                .create_task(
                    &NewTask {
                        id: task_id,
                        work_item_id: item_id,
                        step,
                    },
                    jiff::Timestamp::now(),
                )
                .await
                .unwrap();
            task_id
        }
    };
    let next = |w: String| {
        let app = &app;
        async move {
            app.call(Method::POST, &format!("/api/v1/workers/{w}/next"), None)
                .await
        }
    };
    let first = new_item().await;
    let analysis = new_task(first, "desk_analysis").await;
    let (status, got) = next(asha.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["task_id"], json!(analysis.to_string()));
    // Asha's research channel is capped at one task.
    let other = new_task(new_item().await, "desk_analysis").await;
    assert_eq!(next(asha.clone()).await.0, StatusCode::NO_CONTENT);
    for to in [
        karya_core::lifecycle::TaskState::InProgress,
        karya_core::lifecycle::TaskState::Submitted,
        karya_core::lifecycle::TaskState::Done,
    ] {
        tenant
            .transition_task(analysis, to, jiff::Timestamp::now())
            .await
            .unwrap();
    }
    // The review of Asha's analysis is not hers; the other item's analysis is.
    let review = new_task(first, "desk_review").await;
    let (status, got) = next(asha.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["task_id"], json!(other.to_string()));
    // (The items' own pack steps, opened at intake, need skills no one here has.)
    let rejected = got["explanation"]["rejected"].as_array().unwrap();
    assert!(
        rejected.contains(&json!({"reason": "worker_excluded", "count": 1})),
        "{rejected:?}"
    );
    let (status, got) = next(ben.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["task_id"], json!(review.to_string()));
    // Affinity is a preference, not a reservation: Ben takes the oldest work he may take,
    // and the first item's report then goes to Asha, its analyst, as affinity.
    let third = new_task(new_item().await, "desk_analysis").await;
    let drafting = new_task(first, "desk_report_drafting").await;
    let (status, got) = next(ben.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["task_id"], json!(third.to_string()));
    tenant
        .transition_task(
            other,
            karya_core::lifecycle::TaskState::InProgress,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    tenant
        .transition_task(
            other,
            karya_core::lifecycle::TaskState::Submitted,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    tenant
        .transition_task(
            other,
            karya_core::lifecycle::TaskState::Done,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let (status, got) = next(asha.clone()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["task_id"], json!(drafting.to_string()));
    assert_eq!(got["explanation"]["rule"], json!("affinity"));
    app.finish().await;
}
