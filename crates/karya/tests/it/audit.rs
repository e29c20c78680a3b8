//! `karya audit verify` on real databases: passes when intact, fails naming the first broken
//! event when a byte is flipped, an event deleted, or two events reordered.

use std::process::Output;

use serde_json::json;

use crate::http::request;
use crate::{example_input, karya, Scratch, Server};

/// Builds a database with one client and a few moves of a work item (10 events).
fn populated(scratch: &Scratch) -> (String, String) {
    let url = scratch.sqlite_url();
    let server = Server::start(&url, &scratch.0);
    let client = request(
        &server.addr,
        "POST",
        "/api/v1/clients",
        Some(&json!({"name": "Acme", "currency": "EUR"})),
    )
    .unwrap();
    let client_id = client.body["id"].as_str().unwrap().to_string();
    let engagement = request(
        &server.addr,
        "POST",
        &format!("/api/v1/clients/{client_id}/engagements"),
        Some(&json!({"name": "Product support", "service_line": "technical_support"})),
    )
    .unwrap();
    let engagement_id = engagement.body["id"].as_str().unwrap();
    let item = request(
        &server.addr,
        "POST",
        &format!("/api/v1/clients/{client_id}/work-items"),
        Some(
            &json!({"engagement_id": engagement_id, "title": "Sync fails after update",
                     "input": example_input("technical_support")}),
        ),
    )
    .unwrap();
    let item_id = item.body["id"].as_str().unwrap();
    // Intake started the item with its pack's first step, a person's (a processor's step would
    // be taken up by the server's job runner at once, its events racing the ones below).
    assert_eq!(item.body["state"], "in_progress", "{item:?}");
    for to in [
        "on_hold",
        "in_progress",
        "on_hold",
        "in_progress",
        "delivered",
        "closed",
    ] {
        let moved = request(
            &server.addr,
            "POST",
            &format!("/api/v1/clients/{client_id}/work-items/{item_id}/transitions"),
            Some(&json!({"to": to})),
        )
        .unwrap();
        assert_eq!(moved.status, 200, "{moved:?}");
    }
    server.terminate();
    (url, client_id)
}

fn verify(url: &str) -> Output {
    karya()
        .args(["audit", "verify", "--db", url])
        .output()
        .unwrap()
}

fn tamper(url: &str, sql: &str) {
    let path = url.trim_start_matches("sqlite://");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = karya_store::Store::open(
            &format!("sqlite://{path}"),
            &karya_store::StoreOptions::default(),
        )
        .await
        .unwrap();
        assert!(
            store.execute_raw_for_tests(sql).await.unwrap() >= 1,
            "{sql}"
        );
        store.close().await;
    });
}

#[test]
fn audit_verify_names_the_first_broken_event() {
    // The client's chain: the client (1); the engagement with its pack's QA policy, two decision
    // types and the pack itself (2-6); the item taken in, started and given its first task (7-9);
    // six transitions (10-15).
    let cases = [
        ("flipped byte", "UPDATE events SET payload = replace(payload, 'in_progress', 'in_progresz') WHERE seq = 11", "event 11", "altered"),
        ("deleted event", "DELETE FROM events WHERE seq = 9", "event 10", "missing or out of order"),
        (
            "reordered events",
            "UPDATE events SET seq = -1 WHERE seq = 10; UPDATE events SET seq = 10 WHERE seq = 12; \
             UPDATE events SET seq = 12 WHERE seq = -1",
            "event 10",
            "does not match",
        ),
    ];
    for (name, sql, place, reason) in cases {
        let scratch = Scratch::new("audit");
        let (url, client_id) = populated(&scratch);
        let intact = verify(&url);
        let stdout = String::from_utf8_lossy(&intact.stdout);
        assert!(
            intact.status.success(),
            "{name}: fresh database fails audit: {stdout}"
        );
        assert!(stdout.contains("15 events intact"), "{stdout}");

        tamper(&url, sql);
        let broken = verify(&url);
        let stdout = String::from_utf8_lossy(&broken.stdout);
        let stderr = String::from_utf8_lossy(&broken.stderr);
        assert_eq!(broken.status.code(), Some(1), "{name}: {stdout}{stderr}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with("BROKEN"))
            .unwrap_or_else(|| panic!("{name}: {stdout}"));
        assert!(
            line.contains(&client_id) && line.contains(place) && line.contains(reason),
            "{name}: {line}"
        );
        assert!(stderr.contains("audit FAILED"), "{name}: {stderr}");

        let one = karya()
            .args(["audit", "verify", "--db", &url, "--client", &client_id])
            .output()
            .unwrap();
        assert_eq!(one.status.code(), Some(1), "{name}");
    }
}

#[test]
fn audit_verify_refuses_an_unknown_client() {
    let scratch = Scratch::new("audit-unknown");
    let output = karya()
        .args([
            "audit",
            "verify",
            "--db",
            &scratch.sqlite_url(),
            "--client",
            "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
}
