//! Crash test: `karya serve` is killed with SIGKILL at random moments while a client creates and
//! moves work items. After every restart, every write the client saw acknowledged must be there;
//! at the end the database must pass SQLite's integrity check and `karya audit verify`.
//!
//! The seed is printed; rerun a failure with `KARYA_CRASH_SEED=<seed>`. `KARYA_CRASH_CYCLES`
//! sets the number of kill/restart cycles (default 50).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use karya_core::lifecycle::WorkItemState;
use serde_json::json;

use crate::http::request;
use crate::{example_input, karya, Scratch, Server};

/// A small deterministic generator (xorshift64*), so a failing run replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the client knows was stored: per work item, the state and version last acknowledged.
type Acked = Arc<Mutex<HashMap<String, (String, u64)>>>;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles: usize = std::env::var("KARYA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("KARYA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| crate::nanos() as u64 | 1);
    println!("crash test seed {seed} ({cycles} cycles); rerun with KARYA_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let scratch = Scratch::new("crash");
    let url = scratch.sqlite_url();

    let server = Server::start(&url, &scratch.0);
    let client = request(
        &server.addr,
        "POST",
        "/api/v1/clients",
        Some(&json!({"name": "Acme", "currency": "USD"})),
    )
    .unwrap();
    let client_id = client.body["id"].as_str().unwrap().to_string();
    let engagement = request(
        &server.addr,
        "POST",
        &format!("/api/v1/clients/{client_id}/engagements"),
        Some(&json!({"name": "Claims", "service_line": "insurance_processing"})),
    )
    .unwrap();
    let engagement_id = engagement.body["id"].as_str().unwrap().to_string();
    server.kill();

    let acked: Acked = Arc::default();
    let mut n_acked_writes = 0u64;
    let mut refs = 0u64;
    for cycle in 0..cycles {
        if cycle % 10 == 5 {
            // Now and then die during start-up itself, before or while migrations run.
            let mut child = karya()
                .args([
                    "serve",
                    "--db",
                    &url,
                    "--bind",
                    "127.0.0.1:0",
                    "--log",
                    "off",
                ])
                .current_dir(&scratch.0)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.below(30)));
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let server = Server::start(&url, &scratch.0);
        check_acknowledged(&server.addr, &client_id, &acked);

        let writer = {
            let (addr, client_id, engagement_id, acked) = (
                server.addr.clone(),
                client_id.clone(),
                engagement_id.clone(),
                acked.clone(),
            );
            let mut rng = Rng(rng.next() | 1);
            let first_ref = refs;
            std::thread::spawn(move || {
                write_until_killed(
                    &addr,
                    &client_id,
                    &engagement_id,
                    &acked,
                    &mut rng,
                    first_ref,
                )
            })
        };
        std::thread::sleep(Duration::from_millis(5 + rng.below(120)));
        server.kill();
        let (writes, next_ref) = writer.join().unwrap();
        n_acked_writes += writes;
        refs = next_ref;
    }

    let server = Server::start(&url, &scratch.0);
    check_acknowledged(&server.addr, &client_id, &acked);
    server.kill();
    assert!(
        n_acked_writes > cycles as u64,
        "the client got few writes through ({n_acked_writes}): the test did not test"
    );
    println!(
        "{n_acked_writes} acknowledged writes over {cycles} crashes, {} work items",
        acked.lock().unwrap().len()
    );

    let audit = karya()
        .args(["audit", "verify", "--db", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "audit failed: {stdout}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(stdout.contains("database integrity: ok"), "{stdout}");
}

/// Creates and moves work items until the server stops answering; returns the number of
/// acknowledged writes and the next unused external reference.
fn write_until_killed(
    addr: &str,
    client_id: &str,
    engagement_id: &str,
    acked: &Acked,
    rng: &mut Rng,
    mut next_ref: u64,
) -> (u64, u64) {
    let mut writes = 0;
    let input = example_input("insurance_processing");
    loop {
        let existing: Vec<(String, (String, u64))> = {
            let acked = acked.lock().unwrap();
            acked.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let create = existing.is_empty() || rng.below(10) < 4;
        if create {
            let body = json!({
                "engagement_id": engagement_id,
                "title": format!("claim {next_ref}"),
                "external_ref": format!("CLM-{next_ref}"),
                "input": input,
            });
            next_ref += 1;
            let Ok(reply) = request(
                addr,
                "POST",
                &format!("/api/v1/clients/{client_id}/work-items"),
                Some(&body),
            ) else {
                return (writes, next_ref);
            };
            assert_eq!(reply.status, 201, "{reply:?}");
            let id = reply.body["id"].as_str().unwrap().to_string();
            // Intake starts the item with its pack's first step.
            let state = reply.body["state"].as_str().unwrap().to_string();
            let version = reply.body["version"].as_u64().unwrap();
            acked.lock().unwrap().insert(id, (state, version));
            writes += 1;
            continue;
        }
        let (id, (state, version)) = &existing[rng.below(existing.len() as u64) as usize];
        let state: WorkItemState = state.parse().unwrap();
        let successors: Vec<WorkItemState> = state.successors().collect();
        if successors.is_empty() {
            continue;
        }
        let to = successors[rng.below(successors.len() as u64) as usize];
        let body = json!({"to": to.code(), "expected_version": version});
        let Ok(reply) = request(
            addr,
            "POST",
            &format!("/api/v1/clients/{client_id}/work-items/{id}/transitions"),
            Some(&body),
        ) else {
            return (writes, next_ref);
        };
        match reply.status {
            200 => {
                let version = reply.body["version"].as_u64().unwrap();
                acked
                    .lock()
                    .unwrap()
                    .insert(id.clone(), (to.code().to_string(), version));
                writes += 1;
            }
            // A write that committed just before an earlier kill but was never acknowledged
            // moved the item on; the client reloads, as a real one would after a conflict.
            409 => {
                let Ok(current) = request(
                    addr,
                    "GET",
                    &format!("/api/v1/clients/{client_id}/work-items/{id}"),
                    None,
                ) else {
                    return (writes, next_ref);
                };
                assert_eq!(current.status, 200, "{current:?}");
                let state = current.body["state"].as_str().unwrap().to_string();
                acked.lock().unwrap().insert(
                    id.clone(),
                    (state, current.body["version"].as_u64().unwrap()),
                );
            }
            other => panic!("unexpected status {other}: {:?}", reply.body),
        }
    }
}

/// Every acknowledged item is stored, at its acknowledged version or later.
fn check_acknowledged(addr: &str, client_id: &str, acked: &Acked) {
    let mut stored = HashMap::new();
    let mut after = String::new();
    loop {
        let page = request(
            addr,
            "GET",
            &format!("/api/v1/clients/{client_id}/work-items?limit=500&after={after}"),
            None,
        )
        .unwrap();
        assert_eq!(page.status, 200, "{page:?}");
        for item in page.body["items"].as_array().unwrap() {
            let state = item["state"].as_str().unwrap().to_string();
            stored.insert(
                item["id"].as_str().unwrap().to_string(),
                (state, item["version"].as_u64().unwrap()),
            );
        }
        match page.body["next_after"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    let mut acked = acked.lock().unwrap();
    for (id, (state, version)) in acked.iter_mut() {
        let Some((stored_state, stored_version)) = stored.get(id) else {
            panic!("acknowledged work item {id} was lost");
        };
        assert!(
            stored_version >= version,
            "item {id}: acknowledged version {version} but stored {stored_version}"
        );
        if stored_version == version {
            assert_eq!(stored_state, state, "item {id} at version {version}");
        }
        // Unacknowledged writes that did commit are the client's news now.
        *state = stored_state.clone();
        *version = *stored_version;
    }
}
