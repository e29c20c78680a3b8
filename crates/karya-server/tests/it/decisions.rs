//! Decisions and policies through the API.

use axum::http::StatusCode;
use serde_json::json;

use crate::TestApp;

#[tokio::test]
async fn policy_change_over_http_reports_undone_flagged_and_kept() {
    let app = TestApp::new().await;
    let (client_id, engagement_id) = app.client_with_engagement("Acme").await;
    let item = app.work_item(&client_id, &engagement_id, "claim 9").await;
    let item_id = item["id"].as_str().unwrap();
    let worker_id = uuid::Uuid::now_v7();
    app.store
        .create_worker(
            karya_core::id::WorkerId::from_uuid(worker_id),
            "Ravi",
            None,
            karya_core::model::Designation::Analyst,
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let types = format!("/api/v1/clients/{client_id}/engagements/{engagement_id}/decision-types");
    for (name, inverse) in [
        ("approve_claim", json!({"compensate": "reverse_approval"})),
        ("send_letter", json!("irreversible")),
    ] {
        let reply = app
            .post(&types, &json!({"name": name, "amount_field": "amount", "limits": {"analyst": 5000000, "team_lead": 50000000},
                                  "inverse": inverse, "undo_window_hours": 72, "reopen_on_undo": true}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    }
    let falling = app
        .post(&types, &json!({"name": "x", "limits": {"analyst": 10, "team_lead": 5}, "inverse": "irreversible", "undo_window_hours": 1}))
        .await;
    assert_eq!(
        (falling.status, falling.body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );

    let decisions = format!("/api/v1/clients/{client_id}/decisions");
    let mut ids = Vec::new();
    for (kind, amount) in [
        ("approve_claim", 3_000_000),
        ("approve_claim", 1_000_000),
        ("send_letter", 4_000_000),
        ("approve_claim", 6_000_000),
    ] {
        let reply = app
            .post(&decisions, &json!({"work_item_id": item_id, "decision_type": kind, "payload": {"amount": amount}, "decided_by": worker_id.to_string()}))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        ids.push((
            reply.body["id"].as_str().unwrap().to_string(),
            reply.body["status"].as_str().unwrap().to_string(),
        ));
    }
    let statuses: Vec<&str> = ids.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["in_force", "in_force", "in_force", "pending_approval:lead"]
    );

    let policies = format!("/api/v1/clients/{client_id}/policies");
    let published = app
        .post(&policies, &json!({"key": "claims.max", "layer": "client", "constraint": {"at_most": {"field": "amount", "limit": 2000000}}, "on_fail": "block"}))
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{published:?}");
    let report = &published.body["report"];
    assert_eq!(report["undone"].as_array().unwrap().len(), 1);
    assert_eq!(report["undone"][0]["decision_id"], json!(ids[0].0));
    assert_eq!(
        report["undone"][0]["compensation"],
        json!("reverse_approval")
    );
    assert_eq!(report["flagged"][0]["decision_id"], json!(ids[2].0));
    assert_eq!(report["kept"][0]["decision_id"], json!(ids[1].0));
    assert!(report["undone"][0]["trace"]
        .as_str()
        .unwrap()
        .contains("now fails for amount 3000000"));

    let loosen = app
        .post(
            &policies,
            &json!({"key": "claims.max", "layer": "engagement", "engagement_id": engagement_id,
                    "constraint": {"at_most": {"field": "amount", "limit": 9000000}}, "on_fail": "block"}),
        )
        .await;
    assert_eq!(
        loosen.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{loosen:?}"
    );
    assert!(loosen.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("may only tighten"));
    let listed = app.get(&policies).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    let undo = app
        .post(&format!("{decisions}/{}/undo", ids[1].0), &json!({}))
        .await;
    assert_eq!(
        (undo.status, undo.body["status"].as_str()),
        (StatusCode::OK, Some("undone"))
    );
    let undo_again = app
        .post(&format!("{decisions}/{}/undo", ids[1].0), &json!({}))
        .await;
    assert_eq!(undo_again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let approve = app
        .post(
            &format!("{decisions}/{}/approval", ids[3].0),
            &json!({"approve": true}),
        )
        .await;
    assert_eq!(approve.body["status"], json!("in_force"));

    let (other_client, _) = app.client_with_engagement("Other").await;
    let foreign = app
        .get(&format!(
            "/api/v1/clients/{other_client}/decisions/{}",
            ids[0].0
        ))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(app.store.audit(None).await.unwrap().intact());
    app.finish().await;
}
