//! Webhooks end to end: the API registers an endpoint, delivery rounds post signed events to a
//! real receiver on a local socket, failures are retried on the schedule, and a restart picks
//! up from the stored cursor.
//!
//! Time is simulated: each round runs at the time the endpoint's next attempt is due, so the
//! retry schedule is checked exactly from the recorded attempt times, never by waiting.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{ClientId, WebhookId};
use karya_core::model::Role;
use karya_core::webhook::{retry_delay, verify, WebhookSecret};
use karya_server::webhook_delivery::{deliver_due, WebhookClient, WebhookOptions};
use karya_server::{router, AppState};
use karya_store::{webhook_lease_until, PageRequest, Store, StoreOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Rounds a test drives before it gives up: far more than the deliveries it expects.
const ROUNDS_MAX: usize = 100;
/// Attempts the receiver refuses before it accepts.
const REFUSALS: usize = 2;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature: String,
    body: Bytes,
    accepted: bool,
}

/// A webhook receiver on 127.0.0.1 that refuses its first [`REFUSALS`] requests with 500.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hooks/karya",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    let mut log = log.lock().unwrap();
                    let accepted = log.len() >= REFUSALS;
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default()
                    };
                    log.push(Received {
                        delivery: header("x-karya-delivery"),
                        signature: header("x-karya-signature"),
                        body,
                        accepted,
                    });
                    match accepted {
                        true => StatusCode::NO_CONTENT,
                        false => StatusCode::INTERNAL_SERVER_ERROR,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hooks/karya"),
            received,
            server,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// The API over a store, as an administrator, with the given webhook options.
struct Api {
    store: Store,
    token: String,
    options: WebhookOptions,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut state = AppState::new(self.store.clone());
        state.webhooks = self.options;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json");
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let response = router(state)
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// A client with an engagement; returns their ids.
    async fn client(&self, name: &str) -> (String, String) {
        let (status, client) = self
            .send(
                "POST",
                "/api/v1/clients",
                Some(json!({"name": name, "currency": "EUR"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client}");
        let client_id = client["id"].as_str().unwrap().to_string();
        let (status, engagement) = self
            .send(
                "POST",
                &format!("/api/v1/clients/{client_id}/engagements"),
                Some(json!({"name": "Searches", "service_line": "ip_research"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{engagement}");
        (client_id, engagement["id"].as_str().unwrap().to_string())
    }

    async fn work_item(&self, client_id: &str, engagement_id: &str, title: &str) {
        let (status, item) = self
            .send(
                "POST",
                &format!("/api/v1/clients/{client_id}/work-items"),
                Some(json!({"engagement_id": engagement_id, "title": title,
                            "input": crate::ip_research_input()})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
    }
}

/// Runs delivery rounds at simulated times until the endpoint has nothing left to send.
/// Each round runs when the endpoint's next attempt is due (at least a second after the last).
/// Returns the time after the last round.
async fn deliver_all(
    store: &Store,
    client: &WebhookClient,
    tenant: ClientId,
    webhook_id: WebhookId,
    mut now: Timestamp,
    rng: &mut (dyn FnMut() -> u64 + Send),
) -> Timestamp {
    for _ in 0..ROUNDS_MAX {
        let report = deliver_due(store, client, now, rng, 16).await.unwrap();
        assert_eq!(report.stale, 0, "{report:?}");
        let webhook = store.tenant(tenant).webhook(webhook_id).await.unwrap();
        let head = store
            .tenant(tenant)
            .events(&PageRequest {
                limit: 1,
                after: Some(webhook.cursor.to_string()),
            })
            .await
            .unwrap();
        if head.items.is_empty() {
            return now + SignedDuration::from_secs(1);
        }
        now = webhook
            .next_attempt_at
            .max(now + SignedDuration::from_secs(1));
    }
    panic!("deliveries did not finish in {ROUNDS_MAX} rounds");
}

/// The seqs of `work_item.*` events of the client after `after`, in chain order.
async fn work_item_seqs(store: &Store, client_id: ClientId, after: u64) -> Vec<u64> {
    let page = store
        .tenant(client_id)
        .events(&PageRequest {
            limit: 500,
            after: Some(after.to_string()),
        })
        .await
        .unwrap();
    page.items
        .iter()
        .filter(|e| e.kind.starts_with("work_item."))
        .map(|e| e.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_signed_in_order_with_retries_and_survive_a_restart() {
    let dir =
        std::env::temp_dir().join(format!("karya-webhooks-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/karya.db", dir.display());
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let (_, token) = karya_server::auth::user_with_token(
        &store,
        "admin@firm.example",
        Role::Admin,
        None,
        None,
        Timestamp::now(),
    )
    .await
    .unwrap();
    let allowed = WebhookOptions {
        allow_private: true,
    };
    let api = Api {
        store: store.clone(),
        token: token.clone(),
        options: allowed,
    };
    let receiver = Receiver::start().await;
    let (alpha, alpha_engagement) = api.client("Alpha Assurance").await;
    let (beta, beta_engagement) = api.client("Beta Biotech").await;
    let alpha_id: ClientId = alpha.parse().unwrap();

    // Without the allowance, a loopback receiver is refused, as are other schemes and
    // credentials in the URL; with it, registration answers the secret once.
    let strict = Api {
        options: WebhookOptions::default(),
        ..Api {
            store: store.clone(),
            token: token.clone(),
            options: allowed,
        }
    };
    let hooks = format!("/api/v1/clients/{alpha}/webhooks");
    for (who, url, events) in [
        (&strict, receiver.url.as_str(), json!(["work_item."])),
        (&strict, "http://localhost:9/x", json!(["work_item."])),
        (
            &strict,
            "http://169.254.169.254/latest",
            json!(["work_item."]),
        ),
        (&api, "ftp://hooks.example.com/x", json!(["work_item."])),
        (
            &api,
            "https://user:pw@hooks.example.com/x",
            json!(["work_item."]),
        ),
        (&api, "not a url", json!(["work_item."])),
        (&api, receiver.url.as_str(), json!([])),
        (&api, receiver.url.as_str(), json!(["Work Item"])),
    ] {
        let (status, body) = who
            .send("POST", &hooks, Some(json!({"url": url, "events": events})))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url} {events}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    let (status, registered) = api
        .send(
            "POST",
            &hooks,
            Some(json!({"url": receiver.url, "events": ["work_item."]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let secret = WebhookSecret::new(registered["secret"].as_str().unwrap().to_string());
    assert!(secret.expose().starts_with("whsec_"));
    let webhook_id: WebhookId = registered["id"].as_str().unwrap().parse().unwrap();
    let registered_at = registered["delivered_through_seq"].as_u64().unwrap();
    // The secret is never answered again.
    let (status, listed) = api.send("GET", &hooks, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(secret.expose()));
    // Another client's path does not know the webhook.
    let (status, _) = api
        .send(
            "GET",
            &format!("/api/v1/clients/{beta}/webhooks/{webhook_id}/attempts"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for n in 0..3 {
        api.work_item(&alpha, &alpha_engagement, &format!("alpha {n}"))
            .await;
        api.work_item(&beta, &beta_engagement, &format!("beta secret {n}"))
            .await;
    }

    // Deliver with a recorded, deterministic jitter.
    let drawn: Arc<Mutex<Vec<u64>>> = Arc::default();
    let draws = drawn.clone();
    let mut next = 0u64;
    let mut rng = move || {
        next = next
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        draws.lock().unwrap().push(next);
        next
    };
    let client = WebhookClient::new(allowed).unwrap();
    let start = Timestamp::now();
    let now = deliver_all(&store, &client, alpha_id, webhook_id, start, &mut rng).await;

    let expected = work_item_seqs(&store, alpha_id, registered_at).await;
    // Three items, each taken in and started on its pack's first step: created, then
    // received → in_progress.
    assert_eq!(expected.len(), 6);
    let received = receiver.received();
    assert_eq!(received.len(), expected.len() + REFUSALS, "{received:?}");
    check_deliveries(&received, &secret, webhook_id, &alpha, &beta, &expected);

    // The first event was tried three times, at times spaced by the schedule, increasing.
    let (status, attempts) = api
        .send("GET", &format!("{hooks}/{webhook_id}/attempts"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{attempts}");
    let attempts = attempts["items"].as_array().unwrap().clone();
    let first: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["seq"].as_u64() == Some(expected[0]))
        .collect();
    let statuses: Vec<Option<u64>> = first.iter().map(|a| a["status"].as_u64()).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(204)]);
    let times: Vec<Timestamp> = first
        .iter()
        .map(|a| a["attempted_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<SignedDuration> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .collect();
    let draws = drawn.lock().unwrap().clone();
    let schedule: Vec<SignedDuration> = [1, 2]
        .iter()
        .zip(&draws)
        .map(|(failures, random)| {
            SignedDuration::try_from(retry_delay(*failures, *random)).unwrap()
        })
        .collect();
    assert_eq!(gaps, schedule, "attempts follow the retry schedule");
    assert!(
        gaps[0] > SignedDuration::ZERO && gaps[1] > gaps[0],
        "{gaps:?}"
    );

    // Restart: everything in memory goes; a new store handle and client resume from the
    // cursor. A round claimed and then lost (a crash mid-request) is redone once its lease ends.
    drop(client);
    store.close().await;
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let api = Api {
        store: store.clone(),
        token,
        options: allowed,
    };
    for n in 3..5 {
        api.work_item(&alpha, &alpha_engagement, &format!("alpha {n}"))
            .await;
        api.work_item(&beta, &beta_engagement, &format!("beta secret {n}"))
            .await;
    }
    let lost_claim = store
        .claim_due_webhooks(
            now,
            webhook_lease_until(now, karya_server::webhook_delivery::REQUEST_TIMEOUT),
            16,
        )
        .await
        .unwrap();
    assert_eq!(
        lost_claim.len(),
        1,
        "the crashed round had claimed the endpoint"
    );
    let client = WebhookClient::new(allowed).unwrap();
    let report = deliver_due(&store, &client, now, &mut rng, 16)
        .await
        .unwrap();
    assert_eq!(
        report.claimed, 0,
        "the lease holds while the lost round could still be sending"
    );
    let after_lease = webhook_lease_until(now, karya_server::webhook_delivery::REQUEST_TIMEOUT);
    deliver_all(&store, &client, alpha_id, webhook_id, after_lease, &mut rng).await;

    let expected = work_item_seqs(&store, alpha_id, registered_at).await;
    // Five items, two events each (created; received → in_progress).
    assert_eq!(expected.len(), 10);
    let received = receiver.received();
    assert_eq!(
        received.len(),
        expected.len() + REFUSALS,
        "nothing lost, nothing twice"
    );
    check_deliveries(&received, &secret, webhook_id, &alpha, &beta, &expected);

    receiver.server.abort();
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Every accepted delivery verifies, belongs to the client, and they come in chain order.
fn check_deliveries(
    received: &[Received],
    secret: &WebhookSecret,
    webhook_id: WebhookId,
    client: &str,
    other_client: &str,
    expected: &[u64],
) {
    let wrong = WebhookSecret::new("whsec_wrong".into());
    let now_s = Timestamp::now().as_second();
    let mut accepted = Vec::new();
    for delivery in received {
        verify(secret, &delivery.signature, &delivery.body, now_s)
            .unwrap_or_else(|err| panic!("{err}: {delivery:?}"));
        assert!(verify(&wrong, &delivery.signature, &delivery.body, now_s).is_err());
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        let text = String::from_utf8_lossy(&delivery.body);
        assert!(
            !text.contains(other_client) && !text.contains("beta secret"),
            "{text}"
        );
        assert_eq!(body["client_id"], client);
        assert!(body["kind"].as_str().unwrap().starts_with("work_item."));
        let seq = body["seq"].as_u64().unwrap();
        assert_eq!(delivery.delivery, format!("{webhook_id}:{seq}"));
        assert_eq!(body["id"], delivery.delivery);
        if delivery.accepted {
            accepted.push(seq);
        }
    }
    assert_eq!(accepted, expected, "each event once, in chain order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_refuses_private_addresses_when_they_are_not_allowed() {
    let dir =
        std::env::temp_dir().join(format!("karya-webhooks-{}", uuid::Uuid::now_v7().simple()));
    let url = format!("sqlite://{}/karya.db", dir.display());
    let store = Store::open(&url, &StoreOptions::default()).await.unwrap();
    let (_, token) = karya_server::auth::user_with_token(
        &store,
        "admin@firm.example",
        Role::Admin,
        None,
        None,
        Timestamp::now(),
    )
    .await
    .unwrap();
    let allowed = WebhookOptions {
        allow_private: true,
    };
    let api = Api {
        store: store.clone(),
        token,
        options: allowed,
    };
    let receiver = Receiver::start().await;
    let (client_id, engagement_id) = api.client("Gamma Grain").await;
    let hooks = format!("/api/v1/clients/{client_id}/webhooks");
    // Registered while allowed; the server then runs strict. A literal loopback address and a
    // name resolving to loopback (as after a DNS change) are both refused when sending.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let mut webhook_ids = Vec::new();
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{port}/hooks/karya"),
    ] {
        let (status, registered) = api
            .send("POST", &hooks, Some(json!({"url": url, "events": ["*"]})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        webhook_ids.push(registered["id"].as_str().unwrap().to_string());
    }
    api.work_item(&client_id, &engagement_id, "gamma").await;

    let strict = WebhookClient::new(WebhookOptions::default()).unwrap();
    let report = deliver_due(&store, &strict, Timestamp::now(), &mut || 0, 16)
        .await
        .unwrap();
    assert_eq!((report.claimed, report.failed), (2, 2), "{report:?}");
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    for webhook_id in webhook_ids {
        let (_, attempts) = api
            .send("GET", &format!("{hooks}/{webhook_id}/attempts"), None)
            .await;
        let attempt = &attempts["items"][0];
        assert_eq!(attempt["status"], Value::Null, "{attempt}");
        assert!(
            attempt["error"]
                .as_str()
                .unwrap()
                .contains("public address"),
            "{attempt}"
        );
    }
    receiver.server.abort();
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
