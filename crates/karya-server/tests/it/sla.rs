//! SLA, invoice and metrics endpoints: set up over HTTP, seed dated work through the store
//! (so times are fixed), then read the results back over HTTP.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use jiff::Timestamp;
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_core::lifecycle::WorkItemState;
use karya_core::model::Priority;
use karya_server::{router, AppState};
use karya_store::{NewWorkItem, Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Largest response body a test reads.
const BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

struct App {
    router: Router,
    store: Store,
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
            router: router(AppState::new(store.clone())),
            store,
            token,
            dir,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), BODY_BYTES_MAX)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    async fn json(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, text) = self.call(method, uri, body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn finish(self) {
        self.store.close().await;
        std::fs::remove_dir_all(self.dir).ok();
    }
}

fn at(text: &str) -> Timestamp {
    format!("2026-11-{text}:00Z").parse().unwrap()
}

/// A client with an engagement on a Mon-Fri 09:00-17:00 UTC calendar, 8h resolution, 400 INR
/// per normal item, 5% credit per point below 95% capped at 20%.
async fn client_with_sla(app: &App, name: &str) -> (String, String) {
    let (status, client) = app
        .json(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": name, "currency": "INR"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let client_id = client["id"].as_str().unwrap().to_string();
    let (status, engagement) = app
        .json(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/engagements"),
            Some(json!({"name": "claims", "service_line": "insurance_processing"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{engagement}");
    let engagement_id = engagement["id"].as_str().unwrap().to_string();
    let calendar_id = uuid::Uuid::now_v7().to_string();
    let shifts = json!([["09:00", "17:00"]]);
    let (status, calendar) = app
        .json(
            Method::PUT,
            &format!("/api/v1/clients/{client_id}/calendars/{calendar_id}"),
            Some(json!({
                "name": "London office",
                "time_zone": "UTC",
                "week": [shifts, shifts, shifts, shifts, shifts, [], []],
                "holidays": ["2026-12-25"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    assert_eq!(calendar["holidays"], json!(["2026-12-25"]));
    let (status, sla) = app
        .json(
            Method::PUT,
            &format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/sla"),
            Some(json!({
                "calendar_id": calendar_id,
                "terms": [{"priority": "normal", "first_response_minutes": 120,
                           "resolution_minutes": 480, "on_time_target_bp": 9500}],
                "pricing": {"kind": "per_item", "rates": [{"priority": "normal", "price_minor": 40000}]},
                "credit": {"per_point_bp": 500, "cap_bp": 2000},
                "reason": "signed contract",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sla}");
    assert_eq!(sla["recomputed"], json!({"items": 0, "breached": 0}));
    (client_id, engagement_id)
}

/// Seeds `n` items received Mon 09:00, delivered Mon 15:00 (on time) or Tue 15:00 (late).
async fn seed(
    app: &App,
    client_id: &str,
    engagement_id: &str,
    n: usize,
    late: &[usize],
) -> Vec<WorkItemId> {
    let tenant = app.store.tenant(client_id.parse::<ClientId>().unwrap());
    let mut ids = Vec::new();
    for idx in 0..n {
        let id = WorkItemId::from_uuid(uuid::Uuid::now_v7());
        tenant
            .create_work_item(
                &NewWorkItem {
                    id,
                    engagement_id: engagement_id.parse::<EngagementId>().unwrap(),
                    external_ref: None,
                    title: format!("claim, \"{idx}\" <urgent>"),
                    priority: Priority::Normal,
                    input: "{}".into(),
                },
                at("02T09:00"),
            )
            .await
            .unwrap();
        tenant
            .transition_work_item(id, WorkItemState::InProgress, None, None, at("02T09:30"))
            .await
            .unwrap();
        let delivered = if late.contains(&idx) {
            "03T15:00"
        } else {
            "02T15:00"
        };
        tenant
            .transition_work_item(id, WorkItemState::Delivered, None, None, at(delivered))
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn invoice_in_three_formats_with_credit_evidence() {
    let app = App::new().await;
    let (client_id, engagement_id) = client_with_sla(&app, "Acme Insurance").await;
    let ids = seed(&app, &client_id, &engagement_id, 10, &[7]).await;

    let (status, invoice) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-11"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{invoice}");
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 10);
    assert_eq!(invoice["subtotal"]["minor"], 400_000);
    // 9 of 10 on time: 90%, 5 points short, 25% capped at 20%.
    let credit = &invoice["sla_credits"][0];
    assert_eq!(credit["achieved_bp"], 9000);
    assert_eq!(credit["credit_bp"], 2000);
    assert_eq!(credit["amount"]["text"], "-800.00 INR");
    assert_eq!(credit["evidence"][0]["work_item_id"], ids[7].to_string());
    assert_eq!(credit["evidence"][0]["late_by_seconds"], 6 * 3600);
    assert_eq!(invoice["total"]["minor"], 320_000);

    let (status, content_type, csv) = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-11?format=csv"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(csv.starts_with("kind,engagement_id,work_item_id,"), "{csv}");
    assert!(
        csv.contains(&format!("sla_evidence,{engagement_id},{},", ids[7])),
        "{csv}"
    );
    assert!(csv.contains("\"claim, \"\"0\"\" <urgent>\""), "{csv}");
    assert!(csv.ends_with("total,,,,,,3200.00,INR\n"), "{csv}");

    let (status, content_type, html) = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-11?format=html"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(
        html.contains("&lt;urgent&gt;") && !html.contains("<urgent>"),
        "{html}"
    );
    assert!(html.contains("Total due: 3200.00 INR"), "{html}");

    // An empty month, a malformed period, an unknown format, another client's id.
    let (_, empty) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-10"),
            None,
        )
        .await;
    assert_eq!(empty["total"]["minor"], 0);
    let (status, err) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-13"),
            None,
        )
        .await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_parameter"))
    );
    let (status, _) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-11?format=pdf"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let stranger = uuid::Uuid::now_v7();
    let (status, err) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{stranger}/invoices/2026-11"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    app.finish().await;
}

#[tokio::test]
async fn sla_state_performance_and_metrics() {
    let app = App::new().await;
    let (client_id, engagement_id) = client_with_sla(&app, "Acme Insurance").await;
    let ids = seed(&app, &client_id, &engagement_id, 4, &[0]).await;

    let (status, sla) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/work-items/{}/sla", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sla}");
    assert_eq!(sla["clock"], "stopped");
    assert_eq!(sla["resolution"]["due_at"], "2026-11-02T17:00:00Z");
    assert_eq!(sla["resolution"]["breached"], true);
    assert_eq!(sla["first_response"]["met_at"], "2026-11-02T09:30:00Z");

    // The same item seen through another client's path is missing, with the same body shape.
    let (client2, _) = client_with_sla(&app, "Globex").await;
    let (status, err) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client2}/work-items/{}/sla", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");

    let (_, sla_terms) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/sla"),
            None,
        )
        .await;
    assert_eq!(sla_terms["terms"][0]["resolution_minutes"], 480);

    let range = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";
    let (status, perf) = app
        .json(
            Method::GET,
            &format!(
                "/api/v1/clients/{client_id}/performance?engagement_id={engagement_id}&{range}"
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{perf}");
    assert_eq!(perf["delivered"], 4);
    assert_eq!(perf["on_time_bp"], 7500);
    assert_eq!(perf["turnaround"]["p50_seconds"], 6 * 3600);
    assert_eq!(perf["first_response"]["p90_seconds"], 1800);
    let (_, content_type, csv) = app
        .call(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/performance?{range}&format=csv"),
            None,
        )
        .await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(csv.contains("on_time_bp,7500\n"), "{csv}");

    let (status, content_type, text) = app.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        text.contains("karya_work_items{state=\"delivered\"} 4\n"),
        "{text}"
    );
    assert!(text.contains("karya_sla_breached_items 1\n"), "{text}");
    assert!(
        text.contains("karya_sla_turnaround_business_seconds_count 4\n"),
        "{text}"
    );
    // 6h = 21600 s fits the 28800 s bucket, 14h does not.
    assert!(
        text.contains("karya_sla_turnaround_business_seconds_bucket{le=\"28800\"} 3\n"),
        "{text}"
    );
    assert!(!text.contains(&ids[0].to_string()));

    // Validation: an unknown zone, a short week.
    let calendar = uuid::Uuid::now_v7();
    let (status, err) = app
        .json(
            Method::PUT,
            &format!("/api/v1/clients/{client_id}/calendars/{calendar}"),
            Some(json!({"name": "x", "time_zone": "Mars/Olympus", "week": [[], [], [], [], [], [], []]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = app
        .json(
            Method::PUT,
            &format!("/api/v1/clients/{client_id}/calendars/{calendar}"),
            Some(json!({"name": "x", "time_zone": "UTC", "week": [[]]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.finish().await;
}

/// A site's calendar over HTTP, an engagement clocked on it, the firm's and a client's
/// breakdowns (JSON and CSV), worker leave, the report page, and the refusals.
#[tokio::test]
async fn site_calendars_breakdowns_and_leave() {
    use karya_core::id::{AssignmentId, SiteId, TaskId, WorkerId};
    use karya_core::lifecycle::TaskState;
    use karya_core::model::{Designation, Site};
    use karya_store::NewTask;

    let app = App::new().await;
    let site_id = SiteId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_site(
            &Site {
                id: site_id,
                name: "Pune".into(),
                time_zone: "Asia/Kolkata".into(),
                country: "IN".into(),
            },
            at("01T00:00"),
        )
        .await
        .unwrap();
    let calendar_uri = format!("/api/v1/sites/{site_id}/calendar");
    let (status, _) = app.json(Method::GET, &calendar_uri, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let shifts = json!([["09:00", "18:00"]]);
    let (status, calendar) = app
        .json(
            Method::PUT,
            &calendar_uri,
            Some(json!({
                "name": "Pune delivery centre",
                "time_zone": "Asia/Kolkata",
                "week": [shifts, shifts, shifts, shifts, shifts, [], []],
                "holidays": ["2026-11-24"],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    assert_eq!(calendar["site_id"], site_id.to_string());
    let (_, calendar) = app.json(Method::GET, &calendar_uri, None).await;
    assert_eq!(calendar["holidays"], json!(["2026-11-24"]));

    let (client_id, engagement_id) = client_with_sla(&app, "Acme Insurance").await;
    let sla_uri = format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/sla");
    let body = |calendar: Value, extra: Value| {
        let mut body = json!({
            "terms": [{"priority": "normal", "first_response_minutes": 120,
                       "resolution_minutes": 480, "on_time_target_bp": 9500,
                       "accuracy_target_bp": 9800}],
            "pricing": {"kind": "per_item", "rates": [{"priority": "normal", "price_minor": 40000}]},
        });
        for (key, value) in calendar
            .as_object()
            .unwrap()
            .iter()
            .chain(extra.as_object().unwrap())
        {
            body[key] = value.clone();
        }
        body
    };
    // Exactly one calendar; credits never beyond the whole fee. Nothing changes on refusal.
    for (calendar, extra) in [
        (json!({}), json!({})),
        (
            json!({"site_id": site_id.to_string(), "calendar_id": uuid::Uuid::now_v7().to_string()}),
            json!({}),
        ),
        (
            json!({"site_id": site_id.to_string()}),
            json!({"accuracy_credit": {"per_point_bp": 100, "cap_bp": 20000}}),
        ),
        (
            json!({"site_id": site_id.to_string()}),
            json!({"credit": {"per_point_bp": 10001, "cap_bp": 100}}),
        ),
    ] {
        let (status, err) = app
            .json(Method::PUT, &sla_uri, Some(body(calendar, extra)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    }
    let (_, unchanged) = app.json(Method::GET, &sla_uri, None).await;
    assert_eq!(unchanged["site_id"], Value::Null);
    let (status, sla) = app
        .json(
            Method::PUT,
            &sla_uri,
            Some(body(
                json!({"site_id": site_id.to_string()}),
                json!({"accuracy_credit": {"per_point_bp": 200, "cap_bp": 1500}}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sla}");
    assert_eq!(
        (&sla["site_id"], &sla["calendar_id"]),
        (&json!(site_id.to_string()), &Value::Null)
    );
    assert_eq!(
        sla["accuracy_credit"],
        json!({"per_point_bp": 200, "cap_bp": 1500})
    );
    // An unknown site has no calendar to run on.
    let (status, _) = app
        .json(
            Method::PUT,
            &sla_uri,
            Some(body(
                json!({"site_id": uuid::Uuid::now_v7().to_string()}),
                json!({}),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // One worker at the site holds one task of a delivered item for two hours.
    let ids = seed(&app, &client_id, &engagement_id, 2, &[]).await;
    let worker_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_worker(
            worker_id,
            "Asha Rao",
            Some(site_id),
            Designation::Analyst,
            at("01T00:00"),
        )
        .await
        .unwrap();
    let tenant = app.store.tenant(client_id.parse::<ClientId>().unwrap());
    let task_id = TaskId::from_uuid(uuid::Uuid::now_v7());
    tenant
        .create_task(
            &NewTask {
                id: task_id,
                work_item_id: ids[0],
                step: "assess".into(),
            },
            at("02T09:30"),
        )
        .await
        .unwrap();
    tenant
        .assign_task(
            task_id,
            worker_id,
            AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            at("02T10:00"),
        )
        .await
        .unwrap();
    for (state, when) in [
        (TaskState::InProgress, "02T10:00"),
        (TaskState::Submitted, "02T12:00"),
    ] {
        tenant
            .transition_task(task_id, state, at(when))
            .await
            .unwrap();
    }

    let range = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";
    let (status, by_site) = app
        .json(
            Method::GET,
            &format!("/api/v1/metrics/sla?by=site&{range}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_site}");
    assert_eq!(by_site["by"], "site");
    let groups = by_site["groups"].as_array().unwrap();
    let pune = groups
        .iter()
        .find(|g| g["group"]["name"] == "Pune")
        .unwrap();
    assert_eq!(pune["delivered"], 1);
    assert_eq!(pune["aht_seconds"], 7200);
    // The item nobody held is the unassigned group's.
    let unassigned = groups
        .iter()
        .find(|g| g["group"]["kind"] == "unassigned")
        .unwrap();
    assert_eq!(unassigned["delivered"], 1);
    assert_eq!(by_site["total"]["delivered"], 2);
    let (_, content_type, csv) = app
        .call(
            Method::GET,
            &format!("/api/v1/metrics/sla?by=worker&{range}&format=csv"),
            None,
        )
        .await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(
        csv.contains(&format!("worker,{worker_id},Asha Rao,1,1,10000,")),
        "{csv}"
    );
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .starts_with("total,,all,2,2,10000,"),
        "{csv}"
    );

    // The client's own report: per service line or site only, its own items only.
    let (status, own) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/metrics/sla?by=service_line&{range}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["groups"][0]["group"]["id"], "insurance_processing");
    assert_eq!(own["groups"][0]["utilisation_bp"], Value::Null);
    let (other, _) = client_with_sla(&app, "Globex").await;
    let (_, theirs) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{other}/metrics/sla?{range}"),
            None,
        )
        .await;
    assert_eq!(theirs["groups"], json!([]));
    for bad in [
        format!("/api/v1/clients/{client_id}/metrics/sla?by=worker"),
        "/api/v1/metrics/sla?by=planet".to_string(),
        "/api/v1/metrics/sla?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z".to_string(),
        "/api/v1/metrics/sla?from=2020-01-01T00:00:00Z&to=2026-11-01T00:00:00Z".to_string(),
        "/api/v1/metrics/sla?format=pdf".to_string(),
        "/api/v1/metrics/sla?from=yesterday".to_string(),
    ] {
        let (status, err) = app.json(Method::GET, &bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
    }

    // Leave: recorded, listed; refused when backwards or for nobody.
    let leave_uri = format!("/api/v1/workers/{worker_id}/leave");
    let (status, leave) = app
        .json(
            Method::POST,
            &leave_uri,
            Some(json!({"from": "2026-11-03T00:00:00Z", "until": "2026-11-04T00:00:00Z", "note": "Diwali"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{leave}");
    let (status, _) = app
        .json(
            Method::POST,
            &leave_uri,
            Some(json!({"from": "2026-11-04T00:00:00Z", "until": "2026-11-03T00:00:00Z", "note": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .json(
            Method::POST,
            &format!("/api/v1/workers/{}/leave", uuid::Uuid::now_v7()),
            Some(json!({"from": "2026-11-03T00:00:00Z", "until": "2026-11-04T00:00:00Z", "note": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = app.json(Method::GET, &leave_uri, None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // The page: every breakdown, with its charts.
    let (status, content_type, html) = app.call(Method::GET, "/ui/reports/sla?days=90", None).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(content_type.starts_with("text/html"));
    for section in [
        "Per service line",
        "Per site",
        "Per team",
        "Per worker",
        "<svg",
    ] {
        assert!(html.contains(section), "{section} missing");
    }

    // The invoice says what accuracy evidence there was: none this month, so no credit.
    let (_, invoice) = app
        .json(
            Method::GET,
            &format!("/api/v1/clients/{client_id}/invoices/2026-11"),
            None,
        )
        .await;
    assert_eq!(invoice["accuracy_credits"], json!([]));
    app.finish().await;
}
