//! The web UI through the router: each role's pages render with their key text, forms from
//! pack schemas refuse bad input under the field, intake opens the first step's task, and
//! another client's id renders exactly the page a missing one does.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use karya_core::id::{ClientId, WorkerId};
use karya_core::model::{Designation, Role};
use karya_server::{router, AppState};
use serde_json::json;
use tower::ServiceExt;

use crate::TestApp;

/// A page's answer: status, the `location` or `hx-redirect` header, and the body text.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) redirect: Option<String>,
    pub(crate) body: String,
}

/// One request through the router, with a bearer token when given and a form body when given.
pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match form {
        Some(form) => {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            Body::from(form.to_string())
        }
        None => Body::empty(),
    };
    let response = router(AppState::new(app.store.clone()))
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let redirect = ["location", "hx-redirect"]
        .iter()
        .find_map(|h| response.headers().get(*h))
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        redirect,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let escape = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", escape(k), escape(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

struct World {
    app: TestApp,
    client: String,
    engagement: String,
    tokens: Vec<(Role, String)>,
}

impl World {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

async fn world() -> World {
    let app = TestApp::new().await;
    let now = jiff::Timestamp::now();
    let client = app
        .post(
            "/api/v1/clients",
            &json!({"name": "Northwind Retail", "currency": "USD"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let engagement = app
        .post(
            &format!("/api/v1/clients/{client}/engagements"),
            &json!({"name": "Employee IT service desk", "service_line": "it_helpdesk"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let worker = WorkerId::from_uuid(uuid::Uuid::now_v7());
    app.store
        .create_worker(worker, "Wendy Mehta", None, Designation::Analyst, now)
        .await
        .unwrap();
    let week: Vec<_> = (1..=7)
        .map(|weekday| json!({"weekday": weekday, "start": "00:00", "minutes": 1440}))
        .collect();
    let reply = app
        .send(
            Request::builder()
                .method("PUT")
                .uri(format!("/api/v1/workers/{worker}/profile"))
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"languages": ["en"], "time_zone": "UTC", "shifts": week, "capacity_units": 4})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    let reply = app
        .post(
            &format!("/api/v1/workers/{worker}/presence"),
            &json!({"presence": "available"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    // What the pack's L1 step asks of the person doing it.
    app.store
        .add_qualification(
            worker,
            uuid::Uuid::now_v7(),
            &karya_core::workforce::Qualification {
                kind: "itil".into(),
                field: None,
                issuer: "axelos".into(),
                valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
                valid_until: None,
            },
            now,
        )
        .await
        .unwrap();
    for (skill, level) in [("windows_support", 5), ("m365_administration", 4)] {
        let reply = app
            .send(
                Request::builder()
                    .method("PUT")
                    .uri(format!("/api/v1/workers/{worker}/skills/{skill}"))
                    .header("content-type", "application/json")
                    .body(Body::from(json!({ "level": level }).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{reply:?}");
    }
    let reviewer = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let lead = WorkerId::from_uuid(uuid::Uuid::now_v7());
    for (id, name, designation) in [
        (reviewer, "Rita Fernandes", Designation::SeniorAnalyst),
        (lead, "Lena Okafor", Designation::TeamLead),
    ] {
        app.store
            .create_worker(id, name, None, designation, now)
            .await
            .unwrap();
    }
    let client_id: ClientId = client.parse().unwrap();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (client_id, worker_id) = match role {
            Role::ClientAdmin | Role::ClientUser => (Some(client_id), None),
            Role::Worker => (None, Some(worker)),
            Role::Reviewer => (None, Some(reviewer)),
            Role::Lead => (None, Some(lead)),
            _ => (None, None),
        };
        let email = format!("{}@ui.example", role.code());
        let (_, token) = karya_server::auth::user_with_token(
            &app.store, &email, role, client_id, worker_id, now,
        )
        .await
        .unwrap();
        tokens.push((role, token));
    }
    World {
        app,
        client,
        engagement,
        tokens,
    }
}

#[tokio::test]
async fn intake_form_validates_by_the_pack_and_opens_the_first_step() {
    let w = world().await;
    let token = w.token(Role::ClientUser).to_string();
    let path = format!("/ui/clients/{}/items/new", w.client);
    let page = call(&w.app, "GET", &path, Some(&token), None).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Submit work",
        "Ticket number",
        "Short description",
        "name=\"f.requester\"",
    ] {
        assert!(
            page.body.contains(text),
            "{text:?} missing from the intake page"
        );
    }
    let mut fields = vec![
        ("engagement_id", w.engagement.as_str()),
        ("title", "VPN drops"),
        ("priority", "high"),
        ("f.ticket_number", "12345"),
        ("f.ticket_type", "incident"),
        ("f.impact", "individual"),
        ("f.urgency", "high"),
        ("f.short_description", "VPN disconnects"),
        (
            "f.requester",
            r#"{"employee_id": "E1", "email": "a@b.example"}"#,
        ),
    ];
    // A ticket number that breaks the pack's pattern is refused under its field.
    let refused = call(&w.app, "POST", &path, Some(&token), Some(&encode(&fields))).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("field invalid"), "{}", refused.body);
    assert!(refused.body.contains("Some fields need attention."));
    // A JSON area that is not JSON says so.
    fields[8].1 = "{not json";
    let refused = call(&w.app, "POST", &path, Some(&token), Some(&encode(&fields))).await;
    assert!(
        refused.body.contains("is not valid JSON"),
        "{}",
        refused.body
    );
    assert_eq!(
        w.app
            .get(&format!("/api/v1/clients/{}/work-items", w.client))
            .await
            .body["items"],
        json!([])
    );

    fields[3].1 = "INC0012345";
    fields[8].1 = r#"{"employee_id": "E1", "email": "a@b.example"}"#;
    let created = call(&w.app, "POST", &path, Some(&token), Some(&encode(&fields))).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let item_page = created.redirect.expect("htmx is sent to the new item");
    let item_id = item_page.rsplit('/').next().unwrap().to_string();
    // The pack's first step, triage, is a processor's: its job waits. A processor runs it
    // here, and the item moves on to the first person's step.
    let job = w
        .app
        .store
        .claim_job("test-processor", jiff::Timestamp::now())
        .await
        .unwrap()
        .expect("the triage job waits");
    assert_eq!(
        (job.step.as_str(), job.work_item_id.to_string()),
        ("triage", item_id.clone())
    );
    w.app
        .store
        .complete_job(
            job.id,
            "test-processor",
            r#"{"category": "network"}"#,
            uuid::Uuid::now_v7(),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let tasks = w
        .app
        .get(&format!(
            "/api/v1/clients/{}/work-items/{item_id}/tasks",
            w.client
        ))
        .await;
    assert_eq!(
        tasks.body["items"][0]["step"], "l1_resolution",
        "{:?}",
        tasks.body
    );
    assert_eq!(tasks.body["items"][0]["state"], "ready");

    // The worker takes it with Get next and lands on the task page with the pack's form.
    let worker = w.token(Role::Worker).to_string();
    let next = call(&w.app, "POST", "/ui/inbox/next", Some(&worker), Some("")).await;
    let task_page = next.redirect.expect("Get next leads to the task");
    let page = call(&w.app, "GET", &task_page, Some(&worker), None).await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "L1 resolution or fulfilment",
        "Resolution code",
        "INC0012345",
        "output-form",
    ] {
        assert!(
            page.body.contains(text),
            "{text:?} missing from the task page"
        );
    }
    // Nothing else is ready now.
    let none = call(&w.app, "POST", "/ui/inbox/next", Some(&worker), Some("")).await;
    assert!(
        none.body.contains("No ready task suits you"),
        "{}",
        none.body
    );
    w.app.finish().await;
}

#[tokio::test]
async fn every_role_has_pages_that_render() {
    let w = world().await;
    let c = &w.client;
    let cases: &[(Role, String, &[&str])] = &[
        (
            Role::Worker,
            "/ui/inbox".into(),
            &["Inbox", "Get next", "Nothing assigned to you"],
        ),
        (
            Role::Worker,
            "/ui/quality".into(),
            &["My quality", "No reviews yet"],
        ),
        (
            Role::Reviewer,
            "/ui/reviews".into(),
            &["Review queue", "The review queue is empty"],
        ),
        (
            Role::Lead,
            "/ui/board".into(),
            &["Live board", "data-events=\"/ui/events\""],
        ),
        (
            Role::Lead,
            "/ui/sla-risk".into(),
            &["SLA risk", "Nothing at risk"],
        ),
        (
            Role::Manager,
            "/ui/workforce".into(),
            &["Workforce", "Wendy Mehta", "available"],
        ),
        (
            Role::Manager,
            "/ui/qa".into(),
            &["QA board", "Employee IT service desk"],
        ),
        (
            Role::ClientUser,
            format!("/ui/clients/{c}/items"),
            &["Work items", "No work items yet"],
        ),
        (
            Role::ClientUser,
            format!("/ui/clients/{c}/report"),
            &["On-time delivery per day", "<svg"],
        ),
        (
            Role::ClientUser,
            format!("/ui/clients/{c}/policies"),
            &["Policies"],
        ),
        (
            Role::ClientAdmin,
            format!("/ui/clients/{c}/invoices"),
            &["Invoices", "?format=html"],
        ),
        (
            Role::Admin,
            "/ui/admin/clients".into(),
            &["Northwind Retail", "Add client"],
        ),
        (
            Role::Admin,
            format!("/ui/admin/clients/{c}"),
            &["Employee IT service desk", "Open engagement"],
        ),
        (
            Role::Admin,
            "/ui/admin/workers".into(),
            &["Wendy Mehta", "Add worker"],
        ),
        (
            Role::Admin,
            "/ui/admin/users".into(),
            &["client_user@ui.example", "Add user"],
        ),
        (
            Role::Auditor,
            "/ui/clients".into(),
            &["Northwind Retail", "Event trail"],
        ),
        (
            Role::Auditor,
            format!("/ui/clients/{c}/audit"),
            &["Chain intact"],
        ),
        (
            Role::ClientUser,
            "/ui/tokens".into(),
            &["API tokens", "first token"],
        ),
    ];
    for (role, path, texts) in cases {
        let page = call(&w.app, "GET", path, Some(w.token(*role)), None).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{} {path}: {}",
            role.code(),
            page.body
        );
        for text in *texts {
            assert!(
                page.body.contains(text),
                "{} {path}: {text:?} missing",
                role.code()
            );
        }
    }
    // The start page sends each role to its own.
    for (role, start) in [
        (Role::Worker, "/ui/inbox".to_string()),
        (Role::Reviewer, "/ui/reviews".into()),
        (Role::Lead, "/ui/board".into()),
        (Role::Auditor, "/ui/clients".into()),
        (Role::ClientUser, format!("/ui/clients/{c}/items")),
    ] {
        let page = call(&w.app, "GET", "/", Some(w.token(role)), None).await;
        assert_eq!(
            (page.status, page.redirect),
            (StatusCode::SEE_OTHER, Some(start))
        );
    }
    w.app.finish().await;
}

#[tokio::test]
async fn another_clients_page_is_the_missing_page() {
    let w = world().await;
    let (other, _) = w.app.client_with_engagement("Beta Biotech").await;
    let token = w.token(Role::ClientUser);
    let missing = uuid::Uuid::now_v7().to_string();
    for page in ["items", "report", "policies", "items/new"] {
        let foreign = call(
            &w.app,
            "GET",
            &format!("/ui/clients/{other}/{page}"),
            Some(token),
            None,
        )
        .await;
        let absent = call(
            &w.app,
            "GET",
            &format!("/ui/clients/{missing}/{page}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{page}");
        assert_eq!(
            (foreign.status, &foreign.body),
            (absent.status, &absent.body),
            "{page}"
        );
        assert!(!foreign.body.contains("Beta Biotech"));
    }
    // Staff pages are refused to a client's user; the anonymous are sent to sign in.
    let refused = call(&w.app, "GET", "/ui/board", Some(token), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Not allowed"));
    let anonymous = call(&w.app, "GET", "/ui/inbox", None, None).await;
    assert_eq!(
        (anonymous.status, anonymous.redirect.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    let login = call(&w.app, "GET", "/login", None, None).await;
    assert!(login.body.contains("Sign in"));
    let css = call(&w.app, "GET", "/assets/htmx.min.js", None, None).await;
    assert!(css.body.starts_with("/*! htmx 2.0.11"));
    w.app.finish().await;
}

#[tokio::test]
async fn a_browser_session_signs_in_with_the_form_and_must_echo_its_csrf_token() {
    let w = world().await;
    let hash = AppState::new(w.app.store.clone())
        .auth
        .hash_password("correct horse battery staple".into())
        .await
        .unwrap();
    let worker_id = w
        .app
        .store
        .workers(10)
        .await
        .unwrap()
        .into_iter()
        .find(|worker| worker.name == "Wendy Mehta")
        .unwrap()
        .id;
    w.app
        .store
        .create_user(
            &karya_store::NewUser {
                id: uuid::Uuid::now_v7(),
                email: "wendy@ui.example".into(),
                name: "Wendy".into(),
                role: Role::Worker,
                client_id: None,
                worker_id: Some(worker_id),
                password_hash: Some(hash),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let send = |method: &str,
                path: &str,
                cookie: Option<&str>,
                csrf: Option<&str>,
                form: Option<String>| {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if form.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = request.body(Body::from(form.unwrap_or_default())).unwrap();
        let store = w.app.store.clone();
        async move { router(AppState::new(store)).oneshot(request).await.unwrap() }
    };
    let wrong = send(
        "POST",
        "/login",
        None,
        None,
        Some(encode(&[
            ("email", "wendy@ui.example"),
            ("password", "not the password"),
        ])),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let signed_in = send(
        "POST",
        "/login",
        None,
        None,
        Some(encode(&[
            ("email", "wendy@ui.example"),
            ("password", "correct horse battery staple"),
        ])),
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_string();

    let inbox = send("GET", "/ui/inbox", Some(&cookie), None, None).await;
    assert_eq!(inbox.status(), StatusCode::OK);
    let body = inbox.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    let csrf = body
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 64, "{body}");
    assert!(body.contains(&format!("hx-headers='{{\"x-csrf-token\": \"{csrf}\"}}'")));

    // An unsafe request with the cookie alone is refused; with the token it goes through.
    let forged = send(
        "POST",
        "/ui/inbox/next",
        Some(&cookie),
        None,
        Some(String::new()),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let next = send(
        "POST",
        "/ui/inbox/next",
        Some(&cookie),
        Some(&csrf),
        Some(String::new()),
    )
    .await;
    assert_eq!(next.status(), StatusCode::OK);
    // Signing out ends the session at once.
    let out = send("POST", "/logout", Some(&cookie), Some(&csrf), None).await;
    assert_eq!(out.headers()["hx-redirect"], "/login");
    let after = send("GET", "/ui/inbox", Some(&cookie), None, None).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    w.app.finish().await;
}
