//! The authorization matrix: every route (enumerated from the router's registry, so a new
//! route without a row here fails) × every role × {own object, same tenant, other tenant,
//! missing}, plus no credentials at all. Expected outcomes come from the rows below, written
//! independently of the access rules in the code; a client's user must never see another
//! client's data in any body.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use karya_core::id::{AssignmentId, ClientId, DecisionId, TaskId, WorkerId};
use karya_core::model::{Designation, Role};
use karya_store::NewTask;

use crate::TestApp;

/// Who may call each route: firm roles by name, `client_admin`/`client_user` for the client's
/// own users, `holder` for a worker or reviewer holding the task or item in the path, `self`
/// for a worker's own record. `public` needs no sign-in; `signed_in` any user.
const ROWS: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "public"),
    ("GET", "/api/v1/service-lines", "public"),
    ("GET", "/api/v1/openapi.json", "public"),
    (
        "POST",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/imports",
        "admin manager lead client_admin client_user",
    ),
    ("POST", "/api/v1/auth/login", "public"),
    ("POST", "/api/v1/auth/logout", "signed_in"),
    ("GET", "/api/v1/auth/me", "signed_in"),
    ("GET", "/api/v1/auth/tokens", "signed_in"),
    ("POST", "/api/v1/auth/tokens", "signed_in"),
    ("DELETE", "/api/v1/auth/tokens/{token_id}", "signed_in"),
    ("GET", "/api/v1/users", "admin"),
    ("POST", "/api/v1/users", "admin"),
    ("POST", "/api/v1/users/{user_id}/disable", "admin"),
    (
        "GET",
        "/api/v1/clients/{client_id}/users",
        "admin client_admin",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/users",
        "admin client_admin",
    ),
    ("GET", "/api/v1/clients", "admin manager lead auditor"),
    ("POST", "/api/v1/clients", "admin manager"),
    (
        "GET",
        "/api/v1/clients/{client_id}",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/engagements",
        "admin manager",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/work-items",
        "admin manager lead client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/transitions",
        "admin manager lead client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/tasks",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/documents",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/documents",
        "admin manager lead client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/documents/{document_id}",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/events",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/deliverables",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/deliverables/{deliverable_id}",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/events",
        "admin manager lead auditor client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/audit",
        "admin manager lead auditor client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/decision-types",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/decision-types",
        "admin manager",
    ),
    ("POST", "/api/v1/policies", "admin"),
    (
        "GET",
        "/api/v1/clients/{client_id}/policies",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/policies",
        "admin manager client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/decisions",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/decisions",
        "admin manager lead worker",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/decisions/{decision_id}",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/decisions/{decision_id}/approval",
        "admin manager lead client_admin",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/decisions/{decision_id}/undo",
        "admin manager lead",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/qa-policy",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "PUT",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/qa-policy",
        "admin manager",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/accuracy",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/submission",
        "admin manager lead holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/tasks/{task_id}/reviews",
        "admin manager lead auditor reviewer client_admin holder",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/reviews",
        "admin manager lead reviewer",
    ),
    (
        "PUT",
        "/api/v1/clients/{client_id}/tasks/{task_id}/gold",
        "admin manager lead",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/reviewer-qualifications",
        "admin manager",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/calendars/{calendar_id}",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "PUT",
        "/api/v1/clients/{client_id}/calendars/{calendar_id}",
        "admin manager client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/sla",
        "admin manager lead auditor reviewer client_admin client_user",
    ),
    (
        "PUT",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/sla",
        "admin manager",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/sla",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/performance",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/invoices/{period}",
        "admin manager auditor client_admin",
    ),
    ("GET", "/metrics", "admin manager"),
    ("POST", "/api/v1/workers", "admin manager"),
    (
        "GET",
        "/api/v1/workers/{worker_id}",
        "admin manager lead auditor self",
    ),
    (
        "PUT",
        "/api/v1/workers/{worker_id}/profile",
        "admin manager lead",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/presence",
        "admin manager lead self",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/qualifications",
        "admin manager",
    ),
    (
        "PUT",
        "/api/v1/workers/{worker_id}/skills/{skill}",
        "admin manager lead",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/next",
        "admin manager lead self",
    ),
    (
        "GET",
        "/api/v1/workers/{worker_id}/offers",
        "admin manager lead self",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/offers/{offer_id}/accept",
        "admin manager lead self",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/offers/{offer_id}/decline",
        "admin manager lead self",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/routing",
        "admin manager lead auditor",
    ),
    (
        "PUT",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/routing",
        "admin manager",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/tasks/{task_id}/explanations",
        "admin manager lead auditor holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/webhooks",
        "admin manager client_admin",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/webhooks",
        "admin manager client_admin",
    ),
    (
        "DELETE",
        "/api/v1/clients/{client_id}/webhooks/{webhook_id}",
        "admin manager client_admin",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/webhooks/{webhook_id}/resume",
        "admin manager lead client_admin",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/webhooks/{webhook_id}/attempts",
        "admin manager client_admin",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/consensus-groups",
        "admin manager lead",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/consensus-groups/{group_id}",
        "admin manager lead auditor",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/keying",
        "admin manager lead holder",
    ),
    (
        "GET",
        "/api/v1/clients/{client_id}/tasks/{task_id}/adjudication",
        "admin manager lead auditor holder",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/adjudication",
        "admin manager lead holder",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/engagements/{engagement_id}/workers/{worker_id}/pauses/{step}/lift",
        "admin manager lead",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/work-items/{work_item_id}/tasks",
        "admin manager lead",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/transitions",
        "admin manager lead holder",
    ),
    (
        "GET",
        "/api/v1/workers/{worker_id}/leave",
        "admin manager lead auditor self",
    ),
    (
        "POST",
        "/api/v1/workers/{worker_id}/leave",
        "admin manager lead",
    ),
    ("GET", "/api/v1/sites", "admin manager lead auditor"),
    ("POST", "/api/v1/sites", "admin manager"),
    (
        "GET",
        "/api/v1/clients/{client_id}/calendars",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "POST",
        "/api/v1/clients/{client_id}/tasks/{task_id}/reassignment",
        "admin manager lead",
    ),
    // The web UI's pages and actions.
    ("GET", "/login", "public"),
    ("POST", "/login", "public"),
    ("POST", "/logout", "signed_in"),
    ("GET", "/", "signed_in"),
    ("GET", "/assets/{file}", "public"),
    ("GET", "/ui/inbox", "worker reviewer lead"),
    ("POST", "/ui/inbox/next", "worker reviewer lead"),
    ("GET", "/ui/quality", "worker reviewer lead"),
    (
        "GET",
        "/ui/clients/{client_id}/tasks/{task_id}",
        "admin manager lead holder",
    ),
    (
        "POST",
        "/ui/clients/{client_id}/tasks/{task_id}/submit",
        "admin manager lead holder",
    ),
    ("GET", "/ui/reviews", "admin manager lead reviewer"),
    (
        "GET",
        "/ui/clients/{client_id}/tasks/{task_id}/review",
        "admin manager lead reviewer",
    ),
    (
        "POST",
        "/ui/clients/{client_id}/tasks/{task_id}/review",
        "admin manager lead reviewer",
    ),
    ("GET", "/ui/board", "admin manager lead"),
    ("GET", "/ui/events", "admin manager lead"),
    ("GET", "/ui/sla-risk", "admin manager lead"),
    ("GET", "/ui/workforce", "admin manager lead auditor"),
    ("GET", "/ui/qa", "admin manager lead auditor"),
    ("GET", "/ui/clients", "admin manager lead auditor"),
    (
        "GET",
        "/ui/clients/{client_id}/tasks/{task_id}/explanations",
        "admin manager lead auditor",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/items",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/items/new",
        "admin manager lead client_admin client_user",
    ),
    (
        "POST",
        "/ui/clients/{client_id}/items/new",
        "admin manager lead client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/items/{work_item_id}",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/items/{work_item_id}/deliverable",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/items/{work_item_id}/documents/{document_id}",
        "admin manager lead auditor reviewer client_admin client_user holder",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/report",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/invoices",
        "admin manager auditor client_admin",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/policies",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/audit",
        "admin manager lead auditor client_admin",
    ),
    ("GET", "/ui/admin/clients", "admin manager"),
    ("POST", "/ui/admin/clients", "admin manager"),
    ("GET", "/ui/admin/clients/{client_id}", "admin manager"),
    ("POST", "/ui/admin/clients/{client_id}", "admin manager"),
    ("GET", "/ui/admin/workers", "admin manager"),
    ("POST", "/ui/admin/workers", "admin manager"),
    ("GET", "/ui/admin/users", "admin"),
    ("POST", "/ui/admin/users", "admin"),
    ("GET", "/ui/reports/sla", "admin manager lead auditor"),
    ("GET", "/api/v1/sites/{site_id}/calendar", "admin manager lead auditor"),
    ("PUT", "/api/v1/sites/{site_id}/calendar", "admin manager"),
    ("GET", "/api/v1/metrics/sla", "admin manager lead auditor"),
    (
        "GET",
        "/api/v1/clients/{client_id}/metrics/sla",
        "admin manager lead auditor client_admin client_user",
    ),
    (
        "GET",
        "/ui/clients/{client_id}/bulk",
        "admin manager lead client_admin client_user",
    ),
    ("POST", "/ui/offers/{offer_id}/accept", "worker reviewer lead"),
    ("POST", "/ui/offers/{offer_id}/decline", "worker reviewer lead"),
    ("GET", "/ui/shift", "worker reviewer lead"),
    ("POST", "/ui/shift/presence", "worker reviewer lead"),
    (
        "GET",
        "/ui/clients/{client_id}/tasks/{task_id}/reassign",
        "admin manager lead",
    ),
    (
        "POST",
        "/ui/clients/{client_id}/tasks/{task_id}/reassign",
        "admin manager lead",
    ),
    ("GET", "/ui/admin/sites", "admin manager"),
    ("POST", "/ui/admin/sites", "admin manager"),
    (
        "GET",
        "/ui/admin/clients/{client_id}/calendars",
        "admin manager",
    ),
    (
        "POST",
        "/ui/admin/clients/{client_id}/calendars",
        "admin manager",
    ),
    ("GET", "/ui/workforce/{worker_id}/leave", "admin manager lead"),
    ("POST", "/ui/workforce/{worker_id}/leave", "admin manager lead"),
    ("GET", "/ui/packs", "admin manager lead auditor"),
    ("GET", "/ui/packs/{pack_id}", "admin manager lead auditor"),
    ("GET", "/ui/tokens", "signed_in"),
    ("POST", "/ui/tokens", "signed_in"),
    ("POST", "/ui/tokens/{token_id}/revoke", "signed_in"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Own,
    SameTenant,
    OtherTenant,
    Missing,
}

/// The ids a path is filled with.
struct Ids {
    client: String,
    engagement: String,
    work_item: String,
    task: String,
    decision: String,
    worker: String,
}

fn fill(pattern: &str, ids: &Ids) -> String {
    pattern
        .replace("{client_id}", &ids.client)
        .replace("{engagement_id}", &ids.engagement)
        .replace("{work_item_id}", &ids.work_item)
        .replace("{task_id}", &ids.task)
        .replace("{decision_id}", &ids.decision)
        .replace("{worker_id}", &ids.worker)
        .replace("{deliverable_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{calendar_id}", "office")
        .replace("{period}", "2026-11")
        .replace("{skill}", "tax")
        .replace("{step}", "search")
        .replace("{group_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{user_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{token_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{offer_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{webhook_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{site_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{document_id}", &uuid::Uuid::now_v7().to_string())
        .replace("{file}", "app.css")
        .replace("{pack_id}", "it-service-desk")
}

#[tokio::test]
async fn every_route_every_role_every_object() {
    let app = TestApp::new().await;
    let store = &app.store;
    let now = jiff::Timestamp::now();

    // Every registered route has exactly one row, and every row a route.
    let registered: BTreeSet<(String, String)> = karya_server::route_rules()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let rows: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing_rows: Vec<_> = registered.difference(&rows).collect();
    assert!(
        missing_rows.is_empty(),
        "routes without a row in the authorization matrix: {missing_rows:?}"
    );
    let stale_rows: Vec<_> = rows.difference(&registered).collect();
    assert!(
        stale_rows.is_empty(),
        "rows for routes that do not exist: {stale_rows:?}"
    );

    // Two clients with the same shape of data.
    let (a, a_engagement) = app.client_with_engagement("Alpha Assurance").await;
    let (b, b_engagement) = app.client_with_engagement("Beta Biotech").await;
    let a_held = app.work_item(&a, &a_engagement, "alpha held item").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_other = app.work_item(&a, &a_engagement, "alpha other item").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b_item = app.work_item(&b, &b_engagement, "beta secret item").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_client: ClientId = a.parse().unwrap();
    let b_client: ClientId = b.parse().unwrap();

    let worker_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let other_worker = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let reviewer_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
    let lead_id = WorkerId::from_uuid(uuid::Uuid::now_v7());
    for (id, name, designation) in [
        (worker_id, "Wendy Worker", Designation::Analyst),
        (other_worker, "Otto Other", Designation::Analyst),
        (reviewer_id, "Rita Reviewer", Designation::SeniorAnalyst),
        (lead_id, "Lena Lead", Designation::TeamLead),
    ] {
        store
            .create_worker(id, name, None, designation, now)
            .await
            .unwrap();
    }
    let task = |item: &str| NewTask {
        id: TaskId::from_uuid(uuid::Uuid::now_v7()),
        work_item_id: item.parse().unwrap(),
        step: "search".into(),
    };
    let a_tenant = store.tenant(a_client);
    let held_task = a_tenant.create_task(&task(&a_held), now).await.unwrap().id;
    a_tenant
        .assign_task(
            held_task,
            worker_id,
            AssignmentId::from_uuid(uuid::Uuid::now_v7()),
            now,
        )
        .await
        .unwrap();
    let other_task = a_tenant.create_task(&task(&a_other), now).await.unwrap().id;
    let b_task = store
        .tenant(b_client)
        .create_task(&task(&b_item), now)
        .await
        .unwrap()
        .id;

    let own = Ids {
        client: a.clone(),
        engagement: a_engagement.clone(),
        work_item: a_held.clone(),
        task: held_task.to_string(),
        decision: DecisionId::from_uuid(uuid::Uuid::now_v7()).to_string(),
        worker: worker_id.to_string(),
    };
    let same = Ids {
        work_item: a_other.clone(),
        task: other_task.to_string(),
        worker: other_worker.to_string(),
        ..own_clone(&own)
    };
    let other = Ids {
        client: b.clone(),
        engagement: b_engagement.clone(),
        work_item: b_item.clone(),
        task: b_task.to_string(),
        decision: own.decision.clone(),
        worker: other_worker.to_string(),
    };
    let random = || uuid::Uuid::now_v7().to_string();
    let missing = Ids {
        client: random(),
        engagement: random(),
        work_item: random(),
        task: random(),
        decision: random(),
        worker: random(),
    };
    let foreign_markers = [
        b.as_str(),
        b_engagement.as_str(),
        b_item.as_str(),
        "Beta Biotech",
        "beta secret item",
    ];

    let mut principals: Vec<(Role, String)> = Vec::new();
    for role in Role::ALL {
        let (client_id, worker) = match role {
            Role::ClientAdmin | Role::ClientUser => (Some(a_client), None),
            Role::Worker => (None, Some(worker_id)),
            Role::Reviewer => (None, Some(reviewer_id)),
            Role::Lead => (None, Some(lead_id)),
            _ => (None, None),
        };
        let email = format!("{}@matrix.example", role.code());
        let (_, token) =
            karya_server::auth::user_with_token(store, &email, role, client_id, worker, now)
                .await
                .unwrap();
        principals.push((role, token));
    }

    let mut failures = Vec::new();
    let mut checked = 0;
    for (method, pattern, who) in ROWS {
        let who: BTreeSet<&str> = who.split_whitespace().collect();
        let public = who.contains("public");
        let signed_in = who.contains("signed_in");
        // Without credentials: the API says 401; a page sends the browser to sign in.
        let reply = send(&app, method, &fill(pattern, &own), None).await;
        let expected_anonymous = !public;
        let anonymous_status = match pattern.starts_with("/api/") || pattern.starts_with("/metrics")
        {
            true => StatusCode::UNAUTHORIZED,
            false => StatusCode::SEE_OTHER,
        };
        if expected_anonymous != (reply.0 == anonymous_status) {
            failures.push(format!("{method} {pattern} anonymous: {}", reply.0));
        }
        for (role, token) in &principals {
            for (variant, ids) in [
                (Variant::Own, &own),
                (Variant::SameTenant, &same),
                (Variant::OtherTenant, &other),
                (Variant::Missing, &missing),
            ] {
                let path = fill(pattern, ids);
                let (status, body) = send(&app, method, &path, Some(token)).await;
                checked += 1;
                let expectation = expect(*role, variant, pattern, &who, public || signed_in);
                let ok = match expectation {
                    Expect::Through => {
                        !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                            && status.as_u16() < 500
                    }
                    Expect::Status(code) => status == code,
                };
                if !ok {
                    failures.push(format!("{method} {pattern} as {} on {variant:?}: got {status}, expected {expectation:?}: {body}", role.code()));
                }
                if role.is_client_role() {
                    for marker in foreign_markers {
                        // An id the caller sent may be echoed back; anything else is a leak.
                        if body.contains(marker) && !path.contains(marker) {
                            failures.push(format!(
                                "{method} {path} as {} leaked {marker:?}: {body}",
                                role.code()
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    app.finish().await;
}

fn own_clone(ids: &Ids) -> Ids {
    Ids {
        client: ids.client.clone(),
        engagement: ids.engagement.clone(),
        work_item: ids.work_item.clone(),
        task: ids.task.clone(),
        decision: ids.decision.clone(),
        worker: ids.worker.clone(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Past authorization: not 401, not 403, not a server error.
    Through,
    Status(StatusCode),
}

fn expect(role: Role, variant: Variant, pattern: &str, who: &BTreeSet<&str>, open: bool) -> Expect {
    if open {
        return Expect::Through;
    }
    let tenant_route = pattern.contains("{client_id}");
    let worker_route = pattern.starts_with("/api/v1/workers/{worker_id}");
    if role.is_client_role() {
        if tenant_route && matches!(variant, Variant::OtherTenant | Variant::Missing) {
            // Another client's data looks exactly like a missing client.
            return Expect::Status(StatusCode::NOT_FOUND);
        }
        return match tenant_route && who.contains(role.code()) {
            true => Expect::Through,
            false => Expect::Status(StatusCode::FORBIDDEN),
        };
    }
    if who.contains(role.code()) {
        return Expect::Through;
    }
    if worker_route && who.contains("self") && matches!(role, Role::Worker) {
        return match variant {
            Variant::Own => Expect::Through,
            _ => Expect::Status(StatusCode::FORBIDDEN),
        };
    }
    if who.contains("holder") && matches!(role, Role::Worker | Role::Reviewer) {
        // Only the worker holding the task or item gets through; for anyone else it does not exist.
        return match (role, variant) {
            (Role::Worker, Variant::Own) => Expect::Through,
            _ => Expect::Status(StatusCode::NOT_FOUND),
        };
    }
    Expect::Status(StatusCode::FORBIDDEN)
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match method {
        "POST" | "PUT" => {
            request = request.header("content-type", "application/json");
            Body::from("{}")
        }
        _ => Body::empty(),
    };
    let request = request.body(body).unwrap();
    let response = karya_server::router(karya_server::AppState::new(app.store.clone()))
        .oneshot_raw(request)
        .await;
    response
}

trait OneshotRaw {
    async fn oneshot_raw(self, request: Request<Body>) -> (StatusCode, String);
}

impl OneshotRaw for axum::Router {
    async fn oneshot_raw(self, request: Request<Body>) -> (StatusCode, String) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = self.oneshot(request).await.unwrap();
        let status = response.status();
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let mut body = response.into_body();
        let bytes = match streaming {
            // An event stream does not end: its first event is the answer.
            true => body
                .frame()
                .await
                .and_then(|frame| frame.ok())
                .and_then(|frame| frame.into_data().ok())
                .unwrap_or_default(),
            false => body.collect().await.unwrap().to_bytes(),
        };
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}
