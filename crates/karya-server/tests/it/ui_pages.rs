//! The web UI's pages by role beyond the item flow: offers in the inbox with accept and
//! decline, the worker's shift and presence toggle, bulk upload, reassigning an at-risk task
//! (page and API), the live board and workforce by site, sites and calendars, and the packs.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use karya_core::id::{ClientId, OfferId, SiteId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Designation, Role, Site};
use karya_core::workforce::Presence;
use serde_json::json;

use crate::ui::Answer;
use crate::TestApp;

async fn call(app: &TestApp, method: &str, path: &str, token: &str, form: Option<&str>) -> Answer {
    crate::ui::call(app, method, path, Some(token), form).await
}

/// A firm with one site, a client with an IT service desk engagement and an item whose first
/// task is ready, two available workers on shift round the clock, and a user per role.
struct World {
    app: TestApp,
    client: String,
    item: String,
    task: TaskId,
    site: SiteId,
    wendy: WorkerId,
    otto: WorkerId,
    tokens: Vec<(Role, String)>,
}

impl World {
    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn client_id(&self) -> ClientId {
        self.client.parse().unwrap()
    }
}

async fn world() -> World {
    let app = TestApp::new().await;
    let now = jiff::Timestamp::now();
    let site = app
        .post(
            "/api/v1/sites",
            &json!({"name": "Pune", "time_zone": "Asia/Kolkata", "country": "India"}),
        )
        .await;
    assert_eq!(site.status, StatusCode::CREATED, "{site:?}");
    let site: SiteId = site.body["id"].as_str().unwrap().parse().unwrap();
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
    let item = app
        .post(
            &format!("/api/v1/clients/{client}/work-items"),
            &json!({"engagement_id": engagement, "title": "Laptop will not boot",
                    "input": crate::example_input("it_helpdesk")}),
        )
        .await;
    assert_eq!(item.status, StatusCode::CREATED, "{item:?}");
    let item = item.body["id"].as_str().unwrap().to_string();
    let client_id: ClientId = client.parse().unwrap();
    let task = app
        .store
        .tenant(client_id)
        .create_task(
            &karya_store::NewTask {
                id: TaskId::from_uuid(uuid::Uuid::now_v7()),
                work_item_id: item.parse().unwrap(),
                step: "triage".into(),
            },
            now,
        )
        .await
        .unwrap()
        .id;
    let wendy = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let otto = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let reviewer = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let lead = WorkerId::from_uuid(uuid::Uuid::now_v7());
    for (id, name, designation, site) in [
        (wendy, "Wendy Mehta", Designation::Analyst, Some(site)),
        (otto, "Otto Lindqvist", Designation::Analyst, Some(site)),
        (reviewer, "Rita Fernandes", Designation::SeniorAnalyst, None),
        (lead, "Lena Okafor", Designation::TeamLead, None),
    ] {
        app.store
            .create_worker(id, name, site, designation, now)
            .await
            .unwrap();
    }
    let week: Vec<_> = (1..=7)
        .map(|weekday| json!({"weekday": weekday, "start": "00:00", "minutes": 1440}))
        .collect();
    for worker in [wendy, otto] {
        let reply = app
            .send(
                Request::builder()
                    .method("PUT")
                    .uri(format!("/api/v1/workers/{worker}/profile"))
                    .header("content-type", "application/json")
                    .body(Body::from(
                        json!({"languages": ["en"], "time_zone": "Asia/Kolkata", "shifts": week, "capacity_units": 4})
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
    }
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let (client_id, worker_id) = match role {
            Role::ClientAdmin | Role::ClientUser => (Some(client_id), None),
            Role::Worker => (None, Some(wendy)),
            Role::Reviewer => (None, Some(reviewer)),
            Role::Lead => (None, Some(lead)),
            _ => (None, None),
        };
        let email = format!("{}@pages.example", role.code());
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
        item,
        task,
        site,
        wendy,
        otto,
        tokens,
    }
}

fn offer_to(task_id: TaskId, worker_id: WorkerId) -> karya_store::NewOffer {
    use karya_core::routing::{Explanation, Path, Rule};
    let now = jiff::Timestamp::now();
    karya_store::NewOffer {
        id: OfferId::from_uuid(uuid::Uuid::now_v7()),
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
            candidates: 1,
            eligible: 1,
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

async fn make_offer(w: &World, worker: WorkerId) -> OfferId {
    let offer = offer_to(w.task, worker);
    let made = w
        .app
        .store
        .tenant(w.client_id())
        .make_offer(&offer, jiff::Timestamp::now())
        .await
        .unwrap();
    assert!(matches!(made, karya_store::OfferMade::Made(_)), "{made:?}");
    offer.id
}

#[tokio::test]
async fn every_new_page_renders_for_its_roles() {
    let w = world().await;
    let c = &w.client;
    let cases: &[(Role, String, &[&str])] = &[
        (
            Role::ClientUser,
            format!("/ui/clients/{c}/bulk"),
            &[
                "Bulk upload",
                "data-upload=\"/api/v1/clients/",
                "Employee IT service desk",
                "data-type-xlsx=",
            ],
        ),
        (
            Role::ClientUser,
            format!("/ui/clients/{c}/items"),
            &["href=\"/ui/clients/", "Bulk upload"],
        ),
        (
            Role::Worker,
            "/ui/inbox".into(),
            &["Offers for you", "No offers waiting", "My shift"],
        ),
        (
            Role::Worker,
            "/ui/shift".into(),
            &[
                "My shift",
                "Pune · times in Asia/Kolkata",
                "This week",
                "all day",
                "today",
                "No leave booked",
                "value=\"break\"",
            ],
        ),
        (
            Role::Reviewer,
            "/ui/shift".into(),
            &["My shift", "You have no shifts yet"],
        ),
        (
            Role::Worker,
            "/ui/quality".into(),
            &["Skills", "No skills recorded"],
        ),
        (
            Role::Lead,
            "/ui/board".into(),
            &["By service line", "By site", "Not held by anyone"],
        ),
        (
            Role::Manager,
            "/ui/workforce".into(),
            &["On shift now, by site", "Pune · ", "Wendy Mehta", "No site"],
        ),
        (
            Role::Admin,
            "/ui/admin/sites".into(),
            &[
                "Sites and calendars",
                "Asia/Kolkata",
                "Add site",
                "Northwind Retail",
            ],
        ),
        (
            Role::Admin,
            format!("/ui/admin/clients/{c}/calendars"),
            &[
                "Calendars of Northwind Retail",
                "No calendars yet",
                "Add calendar",
            ],
        ),
        (
            Role::Admin,
            "/ui/admin/workers".into(),
            &["Pune (Asia/Kolkata)", "Site"],
        ),
        (
            Role::Auditor,
            "/ui/packs".into(),
            &["Service packs", "IT service desk", "v1"],
        ),
        (
            Role::Lead,
            "/ui/packs/it-service-desk".into(),
            &[
                "Steps",
                "SLA terms",
                "QA policy",
                "Decision types",
                "Intake form",
            ],
        ),
    ];
    for (role, path, texts) in cases {
        let page = call(&w.app, "GET", path, w.token(*role), None).await;
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
                "{} {path}: {text:?} missing in {}",
                role.code(),
                page.body
            );
        }
    }
    // All 25 packs are listed, each linking to its page.
    let packs = call(&w.app, "GET", "/ui/packs", w.token(Role::Admin), None).await;
    assert_eq!(packs.body.matches("href=\"/ui/packs/").count(), 25);
    let missing = call(
        &w.app,
        "GET",
        "/ui/packs/no-such-pack",
        w.token(Role::Admin),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // Every role's navigation reaches its new pages.
    for (role, link) in [
        (Role::Worker, "href=\"/ui/shift\""),
        (Role::ClientUser, "/bulk\""),
        (Role::Admin, "href=\"/ui/admin/sites\""),
        (Role::Lead, "href=\"/ui/packs\""),
        (Role::Auditor, "href=\"/ui/packs\""),
    ] {
        let start = call(&w.app, "GET", "/ui/tokens", w.token(role), None).await;
        assert!(
            start.body.contains(link),
            "{}: {link} not in nav",
            role.code()
        );
    }
    w.app.finish().await;
}

#[tokio::test]
async fn an_offer_is_accepted_or_declined_from_the_inbox() {
    let w = world().await;
    let token = w.token(Role::Worker);
    let offer = make_offer(&w, w.wendy).await;
    let inbox = call(&w.app, "GET", "/ui/inbox", token, None).await;
    assert!(
        inbox.body.contains("Laptop will not boot"),
        "{}",
        inbox.body
    );
    assert!(inbox
        .body
        .contains(&format!("hx-post=\"/ui/offers/{offer}/accept\"")));
    // Declined: the task is ready again, and the offer gone from the inbox.
    let declined = call(
        &w.app,
        "POST",
        &format!("/ui/offers/{offer}/decline"),
        token,
        Some(""),
    )
    .await;
    assert_eq!(
        declined.redirect.as_deref(),
        Some("/ui/inbox"),
        "{}",
        declined.body
    );
    let tenant = w.app.store.tenant(w.client_id());
    assert_eq!(tenant.task(w.task).await.unwrap().state, TaskState::Ready);
    let inbox = call(&w.app, "GET", "/ui/inbox", token, None).await;
    assert!(inbox.body.contains("No offers waiting"));
    // Declining twice is a message, not an error page.
    let again = call(
        &w.app,
        "POST",
        &format!("/ui/offers/{offer}/decline"),
        token,
        Some(""),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("ended already"), "{}", again.body);

    // Accepted: the worker holds the task and lands on its page. (Having declined the first
    // task, Wendy is excluded from it; the offer is of the item's next task.)
    let next_task = tenant
        .create_task(
            &karya_store::NewTask {
                id: TaskId::from_uuid(uuid::Uuid::now_v7()),
                work_item_id: w.item.parse().unwrap(),
                step: "resolution".into(),
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap()
        .id;
    assert!(matches!(
        tenant
            .make_offer(&offer_to(w.task, w.wendy), jiff::Timestamp::now())
            .await
            .unwrap(),
        karya_store::OfferMade::Excluded
    ));
    let offer = offer_to(next_task, w.wendy);
    assert!(matches!(
        tenant
            .make_offer(&offer, jiff::Timestamp::now())
            .await
            .unwrap(),
        karya_store::OfferMade::Made(_)
    ));
    let offer = offer.id;
    // Another worker cannot accept it: it is not theirs (missing for them).
    let (_, otto_token) = karya_server::auth::user_with_token(
        &w.app.store,
        "otto@pages.example",
        Role::Worker,
        None,
        Some(w.otto),
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    let stolen = call(
        &w.app,
        "POST",
        &format!("/ui/offers/{offer}/accept"),
        &otto_token,
        Some(""),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let accepted = call(
        &w.app,
        "POST",
        &format!("/ui/offers/{offer}/accept"),
        token,
        Some(""),
    )
    .await;
    assert_eq!(
        accepted.redirect,
        Some(format!("/ui/clients/{}/tasks/{}", w.client, next_task)),
        "{}",
        accepted.body
    );
    assert_eq!(
        w.app.store.active_assignee(next_task).await.unwrap(),
        Some(w.wendy)
    );
    w.app.finish().await;
}

#[tokio::test]
async fn the_presence_toggle_sets_only_what_a_worker_may_set() {
    let w = world().await;
    let token = w.token(Role::Worker);
    let answer = call(
        &w.app,
        "POST",
        "/ui/shift/presence",
        token,
        Some("presence=break"),
    )
    .await;
    assert_eq!(
        answer.redirect.as_deref(),
        Some("/ui/shift"),
        "{}",
        answer.body
    );
    let routed = w.app.store.routed_worker(w.wendy).await.unwrap();
    assert_eq!(routed.presence, Presence::Break);
    // Busy is the router's to set; nonsense is refused; neither changes anything.
    for bad in ["presence=busy", "presence=asleep", ""] {
        let answer = call(&w.app, "POST", "/ui/shift/presence", token, Some(bad)).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.redirect.is_none(), "{bad}");
        assert!(answer.body.contains("notice-bad"), "{bad}: {}", answer.body);
    }
    assert_eq!(
        w.app.store.routed_worker(w.wendy).await.unwrap().presence,
        Presence::Break
    );
    let page = call(&w.app, "GET", "/ui/shift", token, None).await;
    assert!(
        page.body.contains("You have been on a break for"),
        "{}",
        page.body
    );

    // Leave booked by a lead shows on the page and takes the worker off shift; a worker may not
    // book it, only read their own.
    let now = jiff::Timestamp::now();
    let leave = json!({"from": (now - jiff::SignedDuration::from_hours(1)).to_string(),
                       "until": (now + jiff::SignedDuration::from_hours(30)).to_string(),
                       "note": "family wedding"});
    let path = format!("/api/v1/workers/{}/leave", w.wendy);
    let booked = w.app.post(&path, &leave).await;
    assert_eq!(booked.status, StatusCode::CREATED, "{booked:?}");
    let backwards = w
        .app
        .post(
            &path,
            &json!({"from": leave["until"], "until": leave["from"]}),
        )
        .await;
    assert_eq!(
        backwards.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{backwards:?}"
    );
    let page = call(&w.app, "GET", "/ui/shift", token, None).await;
    assert!(page.body.contains("family wedding"), "{}", page.body);
    assert!(page.body.contains("on leave"), "{}", page.body);
    assert!(
        page.body.contains(">no<"),
        "off shift while on leave: {}",
        page.body
    );

    // A lead books whole days from the workforce page; bad days are shown under the form.
    let lead = w.token(Role::Lead);
    let workforce = call(&w.app, "GET", "/ui/workforce", lead, None).await;
    let href = format!("/ui/workforce/{}/leave", w.otto);
    assert!(workforce.body.contains(&href), "{}", workforce.body);
    let bad = call(
        &w.app,
        "POST",
        &href,
        lead,
        Some("from=2026-12-24&until=2026-12-20"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("comes before"), "{}", bad.body);
    let booked = call(
        &w.app,
        "POST",
        &href,
        lead,
        Some("from=2026-12-24&until=2026-12-26&note=year-end"),
    )
    .await;
    assert_eq!(
        booked.redirect.as_deref(),
        Some(href.as_str()),
        "{}",
        booked.body
    );
    let leave = w
        .app
        .store
        .leave_of(w.otto, jiff::Timestamp::now())
        .await
        .unwrap();
    assert_eq!(leave.len(), 1);
    // Three whole days in Asia/Kolkata: from 24 Dec 00:00 IST to 27 Dec 00:00 IST.
    assert_eq!(leave[0].leave.from.to_string(), "2026-12-23T18:30:00Z");
    assert_eq!(leave[0].leave.until.to_string(), "2026-12-26T18:30:00Z");
    let page = call(&w.app, "GET", &href, lead, None).await;
    assert!(
        page.body.contains("year-end") && page.body.contains("Thu 24 Dec 2026 00:00"),
        "{}",
        page.body
    );
    let worker = call(&w.app, "GET", &href, token, None).await;
    assert_eq!(worker.status, StatusCode::FORBIDDEN);
    w.app.finish().await;
}

#[tokio::test]
async fn a_lead_reassigns_an_at_risk_task_with_its_reason() {
    let w = world().await;
    let tenant = w.app.store.tenant(w.client_id());
    let now = jiff::Timestamp::now();
    // Wendy holds the task.
    tenant
        .assign_task(
            w.task,
            w.wendy,
            karya_core::id::AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            now,
        )
        .await
        .unwrap();
    let api = format!("/api/v1/clients/{}/tasks/{}/reassignment", w.client, w.task);
    // Refusals store nothing: no reason, an unknown worker, another client's task.
    let reply = w.app.post(&api, &json!({"reason": "  "})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let nobody = uuid::Uuid::now_v7();
    let reply = w
        .app
        .post(
            &api,
            &json!({"reason": "cover", "worker_id": nobody.to_string()}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let (other, _) = w.app.client_with_engagement("Other Client").await;
    let reply = w
        .app
        .post(
            &format!("/api/v1/clients/{other}/tasks/{}/reassignment", w.task),
            &json!({"reason": "cover"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(
        w.app.store.active_assignee(w.task).await.unwrap(),
        Some(w.wendy)
    );

    // The best eligible worker: Otto (Wendy holds it, so she is left out).
    let reply = w
        .app
        .post(&api, &json!({"reason": "Wendy is off sick"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body["rule"], "best_eligible");
    assert_eq!(reply.body["worker_id"], w.otto.to_string());
    assert_eq!(reply.body["previous_worker_id"], w.wendy.to_string());
    assert_eq!(
        w.app.store.active_assignee(w.task).await.unwrap(),
        Some(w.otto)
    );
    // The same worker again is refused.
    let reply = w
        .app
        .post(
            &api,
            &json!({"reason": "again", "worker_id": w.otto.to_string()}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");

    // The trail says who, why and how; the chain holds.
    let events = w
        .app
        .get(&format!("/api/v1/clients/{}/events?limit=500", w.client))
        .await;
    let reassigned: Vec<_> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "task.reassigned")
        .collect();
    assert_eq!(reassigned.len(), 1, "{events:?}");
    assert_eq!(reassigned[0]["payload"]["reason"], "Wendy is off sick");
    assert_eq!(reassigned[0]["payload"]["rule"], "best_eligible");
    let audit = w
        .app
        .get(&format!("/api/v1/clients/{}/audit", w.client))
        .await;
    assert_eq!(audit.status, StatusCode::OK, "{audit:?}");
    assert!(audit.body.to_string().contains("intact"), "{audit:?}");

    // From the page: the lead names Wendy back, with a reason; a missing reason is shown
    // under the form and changes nothing.
    let lead = w.token(Role::Lead);
    let page_path = format!("/ui/clients/{}/tasks/{}/reassign", w.client, w.task);
    let page = call(&w.app, "GET", &page_path, lead, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Available workers, best first"));
    assert!(page.body.contains("Wendy Mehta"), "{}", page.body);
    let form = format!("worker_id={}&reason=", w.wendy);
    let refused = call(&w.app, "POST", &page_path, lead, Some(&form)).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("reason must not be empty"));
    assert_eq!(
        w.app.store.active_assignee(w.task).await.unwrap(),
        Some(w.otto)
    );
    let form = format!("worker_id={}&reason=back+from+sick+leave", w.wendy);
    let moved = call(&w.app, "POST", &page_path, lead, Some(&form)).await;
    assert_eq!(
        moved.redirect.as_deref(),
        Some("/ui/sla-risk"),
        "{}",
        moved.body
    );
    assert_eq!(
        w.app.store.active_assignee(w.task).await.unwrap(),
        Some(w.wendy)
    );
    // One click (no fields): the best eligible one, with the standard reason.
    let clicked = call(&w.app, "POST", &page_path, lead, Some("")).await;
    assert_eq!(clicked.status, StatusCode::OK);
    assert!(
        clicked.body.contains("Otto Lindqvist now holds"),
        "{}",
        clicked.body
    );
    assert_eq!(
        w.app.store.active_assignee(w.task).await.unwrap(),
        Some(w.otto)
    );
    // A worker cannot reach the page at all.
    let worker = call(&w.app, "GET", &page_path, w.token(Role::Worker), None).await;
    assert_eq!(worker.status, StatusCode::FORBIDDEN);
    let _ = &w.item;
    w.app.finish().await;
}

#[tokio::test]
async fn sites_and_calendars_are_listed_and_created() {
    let w = world().await;
    // The API: a bad zone is refused, the list has the site, a client's calendars are listed.
    let reply = w
        .app
        .post(
            "/api/v1/sites",
            &json!({"name": "Nowhere", "time_zone": "Mars/Olympus", "country": "Mars"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    let reply = w
        .app
        .post(
            "/api/v1/sites",
            &json!({"name": "Pune", "time_zone": "Asia/Kolkata", "country": "India"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{reply:?}");
    let sites = w.app.get("/api/v1/sites").await;
    assert_eq!(sites.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(sites.body["items"][0]["id"], w.site.to_string());
    let stored: Vec<Site> = w.app.store.sites().await.unwrap();
    assert_eq!(stored[0].time_zone, "Asia/Kolkata");

    // The UI: a site, then a calendar with holidays; bad input is shown under the form.
    let admin = w.token(Role::Admin);
    let bad = call(
        &w.app,
        "POST",
        "/ui/admin/sites",
        admin,
        Some("name=Manila&time_zone=Asia%2FNowhere&country=Philippines"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("is not an IANA time zone"),
        "{}",
        bad.body
    );
    let good = call(
        &w.app,
        "POST",
        "/ui/admin/sites",
        admin,
        Some("name=Manila&time_zone=Asia%2FManila&country=Philippines"),
    )
    .await;
    assert_eq!(
        good.redirect.as_deref(),
        Some("/ui/admin/sites"),
        "{}",
        good.body
    );
    assert_eq!(w.app.store.sites().await.unwrap().len(), 2);

    let path = format!("/ui/admin/clients/{}/calendars", w.client);
    let bad = call(
        &w.app,
        "POST",
        &path,
        admin,
        Some("name=Office&time_zone=Europe%2FLondon&week=mon_fri&start=09%3A00&end=17%3A30&holidays=2026-12-25%0Anot-a-day"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("\\\"not-a-day\\\"") || bad.body.contains("not-a-day"));
    let tenant = w.app.store.tenant(w.client_id());
    assert!(tenant.calendars().await.unwrap().is_empty());
    let good = call(
        &w.app,
        "POST",
        &path,
        admin,
        Some("name=Office&time_zone=Europe%2FLondon&week=mon_fri&start=09%3A00&end=17%3A30&holidays=2026-12-25%2C+2026-12-26"),
    )
    .await;
    assert_eq!(
        good.redirect.as_deref(),
        Some(path.as_str()),
        "{}",
        good.body
    );
    let calendars = tenant.calendars().await.unwrap();
    assert_eq!(calendars.len(), 1);
    assert_eq!(calendars[0].holidays.len(), 2);
    assert!(calendars[0].week[5].is_empty() && !calendars[0].week[0].is_empty());
    let listed = w
        .app
        .get(&format!("/api/v1/clients/{}/calendars", w.client))
        .await;
    assert_eq!(listed.body["items"][0]["name"], "Office");
    assert_eq!(listed.body["items"][0]["holidays"][0], "2026-12-25");
    let page = call(&w.app, "GET", &path, admin, None).await;
    assert!(page.body.contains("Mon–Fri 09:00–17:30"), "{}", page.body);
    // Editing keeps the id and replaces the holidays.
    let id = calendars[0].id;
    let edit = call(&w.app, "GET", &format!("{path}?calendar={id}"), admin, None).await;
    assert!(edit.body.contains("Save calendar") && edit.body.contains("2026-12-26"));
    let form = format!(
        "calendar_id={id}&name=Office&time_zone=Europe%2FLondon&week=every_day&start=08%3A00&end=20%3A00&holidays=2027-01-01"
    );
    let saved = call(&w.app, "POST", &path, admin, Some(&form)).await;
    assert_eq!(
        saved.redirect.as_deref(),
        Some(path.as_str()),
        "{}",
        saved.body
    );
    let calendars = tenant.calendars().await.unwrap();
    assert_eq!(calendars.len(), 1);
    assert_eq!(calendars[0].holidays.len(), 1);
    assert!(!calendars[0].week[6].is_empty());
    w.app.finish().await;
}
