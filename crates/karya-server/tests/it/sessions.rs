//! Signing in, sessions, CSRF, the sign-in limiter, and revocation.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::TestApp;

/// A request with an explicit cookie and CSRF header, and no bearer token.
async fn browser(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = karya_server::router(karya_server::AppState::new(app.store.clone()))
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, set_cookie, value)
}

#[tokio::test]
async fn sign_in_session_csrf_and_sign_out() {
    let app = TestApp::new().await;
    let created = app
        .post("/api/v1/users", &json!({"email": "Mira@Firm.example", "name": "Mira Manager", "role": "manager", "password": "correct horse battery"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["email"], "mira@firm.example");
    assert!(
        !created.body.to_string().contains("correct horse"),
        "no secret in the answer"
    );

    let (status, _, body) = browser(
        &app,
        "POST",
        "/api/v1/auth/login",
        None,
        None,
        Some(json!({"email": "mira@firm.example", "password": "wrong password!!"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );

    let (status, cookie, body) = browser(
        &app,
        "POST",
        "/api/v1/auth/login",
        None,
        None,
        Some(json!({"email": "MIRA@firm.example", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = body["csrf_token"].as_str().unwrap().to_string();

    let (status, _, me) = browser(&app, "GET", "/api/v1/auth/me", Some(&session), None, None).await;
    assert_eq!(
        (status, me["user"]["role"].as_str()),
        (StatusCode::OK, Some("manager"))
    );

    // Unsafe requests with the cookie need the CSRF token.
    let client = json!({"name": "Gamma Grains", "currency": "INR"});
    let (status, _, body) = browser(
        &app,
        "POST",
        "/api/v1/clients",
        Some(&session),
        None,
        Some(client.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _, _) = browser(
        &app,
        "POST",
        "/api/v1/clients",
        Some(&session),
        Some("forged"),
        Some(client.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = browser(
        &app,
        "POST",
        "/api/v1/clients",
        Some(&session),
        Some(&csrf),
        Some(client),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Signing out ends the session at once.
    let (status, cleared, _) = browser(
        &app,
        "POST",
        "/api/v1/auth/logout",
        Some(&session),
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(cleared.unwrap().contains("Max-Age=0"));
    let (status, _, _) = browser(&app, "GET", "/api/v1/auth/me", Some(&session), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let app = TestApp::new().await;
    app.post(
        "/api/v1/users",
        &json!({"email": "ravi@firm.example", "name": "Ravi", "role": "lead_x", "password": "x"}),
    )
    .await;
    let created = app
        .post("/api/v1/users", &json!({"email": "ravi@firm.example", "name": "Ravi", "role": "manager", "password": "a long enough secret"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let state = karya_server::AppState::new(app.store.clone());
    let login = |password: &'static str| {
        let state = state.clone();
        async move {
            let request = Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"email": "ravi@firm.example", "password": password}).to_string(),
                ))
                .unwrap();
            karya_server::router(state)
                .oneshot(request)
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..karya_server::auth::LOGIN_FAILURES_MAX {
        assert_eq!(login("not the secret").await, StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits.
    assert_eq!(
        login("a long enough secret").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.finish().await;
}

#[tokio::test]
async fn disabling_a_user_or_revoking_a_token_takes_effect_at_once() {
    let app = TestApp::new().await;
    let user = app
        .post(
            "/api/v1/users",
            &json!({"email": "bot@firm.example", "name": "Intake bot", "role": "manager"}),
        )
        .await;
    assert_eq!(user.status, StatusCode::CREATED);
    let user_id = user.body["id"].as_str().unwrap().to_string();
    let token = karya_server::auth::mint_token(
        &app.store,
        user_id.parse().unwrap(),
        "intake",
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    let as_bot = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        app.send(as_bot("/api/v1/auth/me")).await.status,
        StatusCode::OK
    );

    let second = app
        .send(
            Request::post("/api/v1/auth/tokens")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"name": "spare"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let spare = second.body["token"].as_str().unwrap().to_string();
    let spare_id = second.body["id"].as_str().unwrap().to_string();
    let revoke = app
        .send(
            Request::delete(format!("/api/v1/auth/tokens/{spare_id}"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    let with_spare = app
        .send(
            Request::get("/api/v1/auth/me")
                .header("authorization", format!("Bearer {spare}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(with_spare.status, StatusCode::UNAUTHORIZED);

    let disabled = app
        .post(&format!("/api/v1/users/{user_id}/disable"), &json!({}))
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(
        app.send(as_bot("/api/v1/auth/me")).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.finish().await;
}
