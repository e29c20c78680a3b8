//! Bad input of every kind gets a 4xx with a JSON error body, never a 500, and never changes
//! what is stored.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};

use crate::TestApp;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: String,
    body: &str,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path,
        content_type: Some("application/json"),
        body: body.as_bytes().to_vec(),
        status: StatusCode::from_u16(status).unwrap(),
        code,
    }
}

/// Everything a client can read about its own data, to compare before and after.
async fn snapshot(app: &TestApp, client_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "work-items?limit=500",
        "engagements?limit=500",
        "events?limit=500",
    ] {
        out.push(
            app.get(&format!("/api/v1/clients/{client_id}/{path}"))
                .await
                .body,
        );
    }
    out.push(app.get("/api/v1/clients?limit=500").await.body);
    out
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    let (other_client, other_engagement) = app.client_with_engagement("Initech").await;
    let item = app.work_item(&client_id, &engagement_id, "claim 7").await;
    let item_id = item["id"].as_str().unwrap();
    let other_item = app
        .work_item(&other_client, &other_engagement, "theirs")
        .await;
    let other_item_id = other_item["id"].as_str().unwrap();
    let missing = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b";
    let items = format!("/api/v1/clients/{client_id}/work-items");
    let good_item = |extra: &str| {
        format!(r#"{{"engagement_id":"{engagement_id}","title":"t","input":{{"a":1}}{extra}}}"#)
    };

    let mut cases = vec![
        case(
            "malformed json",
            "POST",
            items.clone(),
            "{nope",
            400,
            "invalid_json",
        ),
        case(
            "truncated json",
            "POST",
            items.clone(),
            r#"{"engagement_id":"#,
            400,
            "invalid_json",
        ),
        case(
            "unknown field",
            "POST",
            items.clone(),
            &good_item(r#","colour":"red""#),
            400,
            "invalid_json",
        ),
        case(
            "wrong type",
            "POST",
            items.clone(),
            r#"{"engagement_id":7,"title":"t","input":{}}"#,
            400,
            "invalid_json",
        ),
        case(
            "missing field",
            "POST",
            items.clone(),
            r#"{"title":"t","input":{}}"#,
            400,
            "invalid_json",
        ),
        case(
            "json array body",
            "POST",
            items.clone(),
            "[]",
            400,
            "invalid_json",
        ),
        case(
            "input not an object",
            "POST",
            items.clone(),
            &good_item("").replace(r#"{"a":1}"#, "[1,2]"),
            400,
            "invalid_input",
        ),
        case(
            "empty title",
            "POST",
            items.clone(),
            &good_item("").replace(r#""title":"t""#, r#""title":"  ""#),
            400,
            "invalid_input",
        ),
        case(
            "unknown priority",
            "POST",
            items.clone(),
            &good_item(r#","priority":"asap""#),
            400,
            "invalid_input",
        ),
        case(
            "malformed engagement id",
            "POST",
            items.clone(),
            &good_item("").replace(&engagement_id, "e-1"),
            400,
            "invalid_parameter",
        ),
        case(
            "unknown engagement",
            "POST",
            items.clone(),
            &good_item("").replace(&engagement_id, missing),
            404,
            "not_found",
        ),
        case(
            "another client's engagement",
            "POST",
            items.clone(),
            &good_item("").replace(&engagement_id, &other_engagement),
            404,
            "not_found",
        ),
        case(
            "unknown client",
            "POST",
            format!("/api/v1/clients/{missing}/work-items"),
            &good_item(""),
            404,
            "not_found",
        ),
        case(
            "malformed client id",
            "GET",
            "/api/v1/clients/acme".into(),
            "",
            400,
            "invalid_parameter",
        ),
        case(
            "unknown work item",
            "GET",
            format!("{items}/{missing}"),
            "",
            404,
            "not_found",
        ),
        case(
            "another client's work item",
            "GET",
            format!("{items}/{other_item_id}"),
            "",
            404,
            "not_found",
        ),
        case(
            "transition of another client's item",
            "POST",
            format!("{items}/{other_item_id}/transitions"),
            r#"{"to":"in_progress"}"#,
            404,
            "not_found",
        ),
        case(
            "illegal transition",
            "POST",
            format!("{items}/{item_id}/transitions"),
            r#"{"to":"closed"}"#,
            422,
            "rule_violation",
        ),
        case(
            "unknown state",
            "POST",
            format!("{items}/{item_id}/transitions"),
            r#"{"to":"finished"}"#,
            400,
            "invalid_input",
        ),
        case(
            "stale version",
            "POST",
            format!("{items}/{item_id}/transitions"),
            r#"{"to":"in_progress","expected_version":9}"#,
            409,
            "conflict",
        ),
        case(
            "unknown service line",
            "POST",
            format!("/api/v1/clients/{client_id}/engagements"),
            r#"{"name":"x","service_line":"astrology"}"#,
            400,
            "invalid_input",
        ),
        case(
            "duplicate engagement",
            "POST",
            format!("/api/v1/clients/{client_id}/engagements"),
            r#"{"name":"Prior-art searches","service_line":"ip_research"}"#,
            409,
            "conflict",
        ),
        case(
            "bad currency",
            "POST",
            "/api/v1/clients".into(),
            r#"{"name":"Z","currency":"rupees"}"#,
            400,
            "invalid_input",
        ),
        case(
            "duplicate client",
            "POST",
            "/api/v1/clients".into(),
            r#"{"name":"Acme","currency":"USD"}"#,
            409,
            "conflict",
        ),
        case(
            "overlong name",
            "POST",
            "/api/v1/clients".into(),
            &format!(r#"{{"name":"{}","currency":"USD"}}"#, "n".repeat(201)),
            400,
            "invalid_input",
        ),
        case(
            "bad limit",
            "GET",
            format!("{items}?limit=many"),
            "",
            400,
            "invalid_parameter",
        ),
        case(
            "unknown query parameter",
            "GET",
            format!("{items}?colour=red"),
            "",
            400,
            "invalid_parameter",
        ),
        case(
            "unknown state filter",
            "GET",
            format!("{items}?state=done"),
            "",
            400,
            "invalid_parameter",
        ),
        case(
            "unknown route",
            "GET",
            "/api/v1/nowhere".into(),
            "",
            404,
            "no_route",
        ),
        case(
            "wrong method",
            "DELETE",
            "/api/v1/clients".into(),
            "",
            405,
            "method_not_allowed",
        ),
    ];
    cases.push(Case {
        content_type: None,
        ..case(
            "no content type",
            "POST",
            items.clone(),
            &good_item(""),
            415,
            "unsupported_media_type",
        )
    });
    let huge_input = format!(
        r#"{{"engagement_id":"{engagement_id}","title":"t","input":{{"blob":"{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    cases.push(case(
        "input over its limit",
        "POST",
        items.clone(),
        &huge_input,
        400,
        "invalid_input",
    ));
    let huge_body = format!(
        r#"{{"engagement_id":"{engagement_id}","title":"t","input":{{"blob":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    cases.push(case(
        "body over the limit",
        "POST",
        items.clone(),
        &huge_body,
        413,
        "payload_too_large",
    ));

    let before = snapshot(&app, &client_id).await;
    let before_other = snapshot(&app, &other_client).await;
    for case in cases {
        let mut request = Request::builder().method(case.method).uri(&case.path);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let reply = app.send(request.body(Body::from(case.body)).unwrap()).await;
        assert_eq!(reply.status, case.status, "{}: {:?}", case.name, reply.body);
        assert_eq!(
            reply.body["error"]["code"], case.code,
            "{}: {:?}",
            case.name, reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{}: no message", case.name);
    }
    assert_eq!(
        snapshot(&app, &client_id).await,
        before,
        "refused requests changed stored data"
    );
    assert_eq!(snapshot(&app, &other_client).await, before_other);
    assert!(app.store.audit(None).await.unwrap().intact());
    app.finish().await;
}

#[tokio::test]
async fn another_clients_id_reads_exactly_like_a_missing_one() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    let (other_client, _) = app.client_with_engagement("Initech").await;
    let item = app.work_item(&client_id, &engagement_id, "mine").await;
    let item_id = item["id"].as_str().unwrap();
    let missing = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b";
    for suffix in ["", "/events", "/tasks"] {
        let foreign = app
            .get(&format!(
                "/api/v1/clients/{other_client}/work-items/{item_id}{suffix}"
            ))
            .await;
        let absent = app
            .get(&format!(
                "/api/v1/clients/{other_client}/work-items/{missing}{suffix}"
            ))
            .await;
        assert_eq!(foreign.status, absent.status);
        let normalise = |body: &Value| {
            body.to_string()
                .replace(item_id, "ID")
                .replace(missing, "ID")
        };
        assert_eq!(normalise(&foreign.body), normalise(&absent.body));
        assert!(!foreign.body.to_string().contains("mine"));
    }
    let foreign = app
        .get(&format!(
            "/api/v1/clients/{other_client}/engagements/{engagement_id}"
        ))
        .await;
    assert_eq!(
        (foreign.status, foreign.body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    app.finish().await;
}

#[tokio::test]
async fn external_ref_makes_retries_safe() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    let body = json!({"engagement_id": engagement_id, "title": "claim", "external_ref": "CLM-2026-0042", "input": crate::ip_research_input()});
    let first = app
        .post(&format!("/api/v1/clients/{client_id}/work-items"), &body)
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = app
        .post(&format!("/api/v1/clients/{client_id}/work-items"), &body)
        .await;
    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert!(retry.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(first.body["id"].as_str().unwrap()));
    app.finish().await;
}
