//! `karya demo --no-serve`: the database it builds passes `karya audit verify`, has work in
//! every service line in several states with reviews, decisions and events, holds one sign-in
//! per role, refuses to overwrite itself, and is the same for the same seed and end time.

use std::collections::BTreeSet;
use std::process::Output;

use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::service_line::ServiceLine;
use karya_core::workforce::Presence;
use karya_store::{PageRequest, Store, StoreOptions, WorkItemFilter};

use crate::{karya, Scratch};

/// End of the history: fixed, so two runs can be compared.
const NOW: &str = "2026-03-04T12:00:00Z";

fn demo(dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "demo",
        "--no-serve",
        "--days",
        "2",
        "--seed",
        "3",
        "--now",
        NOW,
        "--data-dir",
    ];
    let dir_text = dir.to_str().unwrap();
    args.push(dir_text);
    args.extend_from_slice(extra);
    karya().args(&args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The summary lines that describe the firm and its history (not the build time).
fn summary(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::to_string)
        .collect()
}

fn all() -> PageRequest {
    PageRequest {
        limit: 500,
        after: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_builds_a_verified_firm_with_work_in_every_line() {
    let scratch = Scratch::new("demo");
    let dir = scratch.0.join("demo");
    let built = demo(&dir, &[]);
    assert!(built.status.success(), "{}", text(&built));
    let stdout = String::from_utf8_lossy(&built.stdout);
    for role in [
        "admin",
        "manager",
        "lead",
        "worker",
        "reviewer",
        "client_admin",
        "client_user",
        "auditor",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(role)),
            "no sign-in printed for {role}:\n{stdout}"
        );
    }
    let url = format!("sqlite://{}/karya.db", dir.display());

    let verified = karya()
        .args(["audit", "verify", "--db", &url])
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("audit passed: 9 chains"),
        "the firm's chain and eight clients': {}",
        text(&verified)
    );

    // A second build into the same place is refused, and leaves the first intact.
    let again = demo(&dir, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        text(&again)
    );

    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let clients = store.list_clients(&all()).await.unwrap().items;
    assert_eq!(clients.len(), 8);
    let mut lines = BTreeSet::new();
    let mut states = BTreeSet::new();
    let mut decisions = 0;
    let mut reviews = 0;
    let mut events = 0;
    let mut started = 0;
    for client in &clients {
        let tenant = store.tenant(client.id);
        let engagements = tenant.list_engagements(&all()).await.unwrap().items;
        for engagement in &engagements {
            let filter = WorkItemFilter {
                state: None,
                engagement_id: Some(engagement.id),
            };
            let items = tenant.list_work_items(&filter, &all()).await.unwrap().items;
            if !items.is_empty() {
                lines.insert(engagement.service_line);
            }
            for item in &items {
                states.insert(item.state.code());
                // Shifts hand unfinished work over: nobody off shift holds a started task.
                for task in tenant.tasks_of(item.id).await.unwrap() {
                    if task.state != TaskState::InProgress {
                        continue;
                    }
                    let holder = store
                        .active_assignee(task.id)
                        .await
                        .unwrap()
                        .expect("a started task has its worker");
                    let presence = store.routed_worker(holder).await.unwrap().presence;
                    assert_ne!(
                        presence,
                        Presence::Offline,
                        "task {} in progress with a worker off shift",
                        task.id
                    );
                    started += 1;
                }
                if reviews == 0 && item.state == WorkItemState::Delivered {
                    for task in tenant.tasks_of(item.id).await.unwrap() {
                        reviews += tenant.reviews_of(task.id).await.unwrap().len();
                    }
                }
            }
        }
        decisions += tenant.list_decisions(&all()).await.unwrap().items.len();
        events += tenant.events(&all()).await.unwrap().items.len();
    }
    let missing: Vec<&str> = ServiceLine::ALL
        .iter()
        .filter(|l| !lines.contains(l))
        .map(|l| l.code())
        .collect();
    assert!(
        missing.is_empty(),
        "service lines without work: {missing:?}"
    );
    assert!(
        states.len() >= 4,
        "items in several states (received, in progress, delivered, closed): {states:?}"
    );
    assert!(
        states.contains("delivered") && states.contains("in_progress"),
        "{states:?}"
    );
    assert!(reviews > 0, "delivered work was reviewed");
    assert!(started > 0, "work in progress at the end of the history");
    assert!(decisions > 0, "decisions were taken");
    assert!(events > 0, "events were written");
    store.close().await;

    // The same seed and end time build the same firm and history: the same summary, and
    // every client's chain ends on the same hash (so every event, payload and time agree).
    let twin_dir = scratch.0.join("twin");
    let twin = demo(&twin_dir, &[]);
    assert!(twin.status.success(), "{}", text(&twin));
    assert_eq!(summary(&built), summary(&twin));
    assert!(!summary(&built).is_empty());
    let twin_url = format!("sqlite://{}/karya.db", twin_dir.display());
    let heads = chain_ends(&url).await;
    assert_eq!(heads.len(), 8);
    assert_eq!(heads, chain_ends(&twin_url).await);
}

/// Each client's id with the sequence number and hash of its last event.
async fn chain_ends(url: &str) -> Vec<(String, u64, String)> {
    let store = Store::open(url, &StoreOptions::default()).await.unwrap();
    let mut ends = Vec::new();
    for client in store.list_clients(&all()).await.unwrap().items {
        let tenant = store.tenant(client.id);
        let mut page = all();
        let mut last = None;
        loop {
            let events = tenant.events(&page).await.unwrap();
            last = events.items.last().cloned().or(last);
            match events.next_after {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
        let last = last.expect("every client has events");
        ends.push((client.id.to_string(), last.seq, last.hash));
    }
    store.close().await;
    ends
}
