//! HTTP tests of the API through the router, without a socket.

mod authz;
mod bad_input;
mod consensus;
mod decisions;
mod documents;
mod flow;
mod intake;
mod routing;
mod sessions;
mod sla;
mod tasks;
mod ui;
mod ui_pages;
mod webhooks;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use karya_server::{router, AppState};
use karya_store::{Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A server over a fresh SQLite database in a temporary directory.
pub struct TestApp {
    pub store: Store,
    /// An administrator's API token, sent with every request unless another is given.
    pub token: String,
    dir: std::path::PathBuf,
}

/// A response: status and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> TestApp {
        let dir = std::env::temp_dir().join(format!(
            "karya-server-test-{}",
            uuid::Uuid::now_v7().simple()
        ));
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
        TestApp { store, token, dir }
    }

    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key("authorization") {
            let bearer = format!("Bearer {}", self.token).parse().unwrap();
            request.headers_mut().insert("authorization", bearer);
        }
        let response = router(AppState::new(self.store.clone()))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if status == StatusCode::NO_CONTENT {
            assert!(bytes.is_empty(), "204 with a body: {bytes:?}");
            return Reply {
                status,
                body: Value::Null,
            };
        }
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "every answer is JSON: {status} {bytes:?}"
        );
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {bytes:?}"));
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<Body>) -> Reply {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(body.into())
            .unwrap();
        self.send(request).await
    }

    /// Creates a client with one engagement; returns their ids.
    pub async fn client_with_engagement(&self, name: &str) -> (String, String) {
        let client = self
            .post("/api/v1/clients", &json!({"name": name, "currency": "INR"}))
            .await;
        assert_eq!(client.status, StatusCode::CREATED, "{client:?}");
        let client_id = client.body["id"].as_str().unwrap().to_string();
        let engagement = self
            .post(
                &format!("/api/v1/clients/{client_id}/engagements"),
                &json!({"name": "Prior-art searches", "service_line": "ip_research"}),
            )
            .await;
        assert_eq!(engagement.status, StatusCode::CREATED, "{engagement:?}");
        (
            client_id,
            engagement.body["id"].as_str().unwrap().to_string(),
        )
    }

    pub async fn work_item(&self, client_id: &str, engagement_id: &str, title: &str) -> Value {
        let reply = self
            .post(
                &format!("/api/v1/clients/{client_id}/work-items"),
                &json!({"engagement_id": engagement_id, "title": title, "priority": "high",
                        "input": ip_research_input()}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.body
    }

    pub async fn finish(self) {
        self.store.close().await;
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The committed OpenAPI document is the one the code generates; regenerate it with
/// `KARYA_WRITE_OPENAPI=1 cargo nextest run -p karya-server openapi`.
#[tokio::test]
async fn committed_openapi_document_matches_the_code() {
    let app = TestApp::new().await;
    let served = app.get("/api/v1/openapi.json").await;
    assert_eq!(served.status, StatusCode::OK);
    let generated = serde_json::to_string_pretty(&served.body).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("KARYA_WRITE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: regenerate it with KARYA_WRITE_OPENAPI=1"
    );
    app.finish().await;
}

#[tokio::test]
async fn health_and_service_lines() {
    let app = TestApp::new().await;
    let health = app.get("/healthz").await;
    assert_eq!(
        (health.status, &health.body),
        (
            StatusCode::OK,
            &json!({"status": "ok", "database": "sqlite", "leader": false})
        )
    );
    let lines = app.get("/api/v1/service-lines").await;
    assert_eq!(lines.body["items"].as_array().unwrap().len(), 25);
    app.finish().await;
}

#[tokio::test]
async fn work_item_round_trip_and_pagination() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Globex").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.work_item(&client_id, &engagement_id, &format!("search {n}"))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let item = app
        .get(&format!(
            "/api/v1/clients/{client_id}/work-items/{}",
            ids[0]
        ))
        .await;
    assert_eq!(item.body["input"], ip_research_input());
    // The engagement runs on its pack, so intake starts the item with its first step.
    assert_eq!(
        (
            item.body["state"].as_str(),
            item.body["priority"].as_str(),
            item.body["version"].as_u64()
        ),
        (Some("in_progress"), Some("high"), Some(2))
    );

    let first = app
        .get(&format!("/api/v1/clients/{client_id}/work-items?limit=2"))
        .await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let after = first.body["next_after"].as_str().unwrap();
    let rest = app
        .get(&format!(
            "/api/v1/clients/{client_id}/work-items?limit=10&after={after}"
        ))
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 3);
    assert!(rest.body.get("next_after").is_none());

    let moved = app
        .post(
            &format!(
                "/api/v1/clients/{client_id}/work-items/{}/transitions",
                ids[0]
            ),
            &json!({"to": "on_hold", "expected_version": 2}),
        )
        .await;
    assert_eq!(
        (moved.status, moved.body["version"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let on_hold = app
        .get(&format!(
            "/api/v1/clients/{client_id}/work-items?state=on_hold"
        ))
        .await;
    assert_eq!(on_hold.body["items"].as_array().unwrap().len(), 1);

    let trail = app
        .get(&format!(
            "/api/v1/clients/{client_id}/work-items/{}/events",
            ids[0]
        ))
        .await;
    let kinds: Vec<&str> = trail.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "work_item.created",
            "work_item.transitioned",
            "task.created",
            "work_item.transitioned"
        ]
    );
    // The client; the engagement, its pack, QA policy and decision types; five items, each
    // created, started and given its first task; one hold.
    let n_decision_types = karya_server::builtin_packs()
        .for_line("ip_research".parse().unwrap())
        .next()
        .unwrap()
        .pack
        .decisions
        .len() as u64;
    let events_expected = 1 + 3 + n_decision_types + 5 * 3 + 1;
    let audit = app.get(&format!("/api/v1/clients/{client_id}/audit")).await;
    assert_eq!(
        (
            audit.body["intact"].as_bool(),
            audit.body["events_verified"].as_u64()
        ),
        (Some(true), Some(events_expected))
    );
    app.finish().await;
}

/// The IP research pack's first example input: what the engagements of these tests take in.
pub fn ip_research_input() -> Value {
    example_input("ip_research")
}

/// The first example input of a service line's pack: an input its intake form accepts.
pub fn example_input(line: &str) -> Value {
    let catalog = karya_server::builtin_packs();
    let line = line.parse().unwrap();
    let pack = &catalog.for_line(line).next().unwrap().pack;
    serde_json::from_str(&pack.examples[0].input).unwrap()
}
