//! Sending events to webhook endpoints: one bounded round at a time ([`deliver_due`]).
//!
//! A round claims due endpoints from the store, sends each the next event its filter takes
//! (signed, with a delivery id the receiver dedupes on), and records the outcome; the rules —
//! signature, retry delay, suspension — come from [`karya_core::webhook`]. Endpoints are served
//! side by side, each at most one request per round, so one slow receiver delays only itself.
//!
//! Outbound requests are guarded against reaching into the firm's own network (SSRF): unless
//! [`WebhookOptions::allow_private`] is set, URLs must name hosts that resolve only to public
//! addresses — checked at registration ([`check_url`]) and again on every connection by the
//! client's resolver, so a name re-pointed later (DNS rebinding) is refused too. Redirects are
//! not followed and proxies from the environment are not used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use karya_core::webhook::{
    after_failure, delivery_id, is_public_address, signature_header, AfterFailure, DELIVERY_HEADER,
    EVENT_HEADER, SIGNATURE_HEADER,
};
use karya_store::{
    webhook_lease_until, AttemptRecord, DueWebhook, NextStep, PageRequest, Store, StoreError,
    StoredEvent,
};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use serde_json::json;

/// Longest wait for a receiver's whole answer: long enough for a slow receiver that
/// acknowledges before processing, short enough that a hung one does not hold a round.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a host name to resolve when an endpoint is registered.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events read per endpoint and round while looking for one its filter takes; if none does,
/// the cursor moves past them all and the next round reads on.
pub const EVENTS_SCAN_MAX: u32 = 200;
/// Longest endpoint URL accepted.
pub const URL_LEN_MAX: usize = 2048;

/// How webhooks may be sent; part of the server configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookOptions {
    /// Allow endpoints on loopback, private and link-local addresses. Off in production (it
    /// would let a client probe the firm's network); on in tests and closed installations.
    pub allow_private: bool,
}

/// The outbound HTTP client of webhooks, with its options. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    options: WebhookOptions,
}

impl WebhookClient {
    pub fn new(options: WebhookOptions) -> anyhow::Result<WebhookClient> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("karya-webhooks/", env!("CARGO_PKG_VERSION")));
        if !options.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(WebhookClient {
            http: builder.build()?,
            options,
        })
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("url is not a valid absolute URL")]
    Malformed,
    #[error("url must use http or https")]
    Scheme,
    #[error("url must not carry a user name or password; authenticate with the signature")]
    Credentials,
    #[error("url is longer than {URL_LEN_MAX} characters")]
    TooLong,
    #[error("url host {0} does not resolve")]
    Unresolved(String),
    #[error("url host {0} is not a public address; webhooks go to public endpoints only")]
    NotPublic(String),
}

/// Checks an endpoint URL: http(s), no credentials, and (unless private addresses are allowed)
/// a host whose every address is public.
pub async fn check_url(text: &str, options: WebhookOptions) -> Result<Url, UrlError> {
    if text.len() > URL_LEN_MAX {
        return Err(UrlError::TooLong);
    }
    let url = Url::parse(text).map_err(|_| UrlError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return Err(UrlError::Malformed);
    };
    if options.allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let lookup = tokio::net::lookup_host((lookup_host.as_str(), port));
    let addresses: Vec<SocketAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(addresses)) => addresses.collect(),
        _ => return Err(UrlError::Unresolved(host)),
    };
    if addresses.is_empty() {
        return Err(UrlError::Unresolved(host));
    }
    if addresses.iter().any(|a| !is_public_address(a.ip())) {
        return Err(UrlError::NotPublic(host));
    }
    Ok(url)
}

/// A resolver that hands the HTTP client public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public_address(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Endpoints claimed this round.
    pub claimed: usize,
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub failed: usize,
    /// Endpoints suspended this round.
    pub suspended: usize,
    /// Endpoints whose cursor moved past events their filter does not take.
    pub passed: usize,
    /// Outcomes dropped because the endpoint changed while its request was out.
    pub stale: usize,
}

impl DeliveryReport {
    /// Whether the round found work: the caller may go again at once.
    pub fn busy(&self) -> bool {
        self.claimed > 0
    }
}

/// One bounded unit of delivery: claims up to `limit` due endpoints and sends each the next
/// event its filter takes. `now` is the time of the round (it signs the bodies, stamps the
/// attempts and schedules retries); `rng` draws the jitter of retry delays.
pub async fn deliver_due(
    store: &Store,
    client: &WebhookClient,
    now: Timestamp,
    rng: &mut (dyn FnMut() -> u64 + Send),
    limit: usize,
) -> Result<DeliveryReport, StoreError> {
    let lease_until = webhook_lease_until(now, REQUEST_TIMEOUT);
    let due = store.claim_due_webhooks(now, lease_until, limit).await?;
    let mut report = DeliveryReport {
        claimed: due.len(),
        ..DeliveryReport::default()
    };
    let mut rounds = tokio::task::JoinSet::new();
    for webhook in due {
        let random = rng();
        let store = store.clone();
        let client = client.clone();
        rounds.spawn(async move { deliver_one(&store, &client, webhook, now, random).await });
    }
    while let Some(joined) = rounds.join_next().await {
        let outcome = joined.map_err(|err| anyhow::anyhow!("delivery task failed: {err}"))??;
        match outcome {
            Outcome::Delivered => report.delivered += 1,
            Outcome::Failed => report.failed += 1,
            Outcome::Suspended => report.suspended += 1,
            Outcome::Passed => report.passed += 1,
            Outcome::Stale => report.stale += 1,
        }
    }
    Ok(report)
}

enum Outcome {
    Delivered,
    Failed,
    Suspended,
    Passed,
    Stale,
}

async fn deliver_one(
    store: &Store,
    client: &WebhookClient,
    due: DueWebhook,
    now: Timestamp,
    random: u64,
) -> Result<Outcome, StoreError> {
    let webhook = &due.webhook;
    let events = store
        .tenant(webhook.client_id)
        .events(&PageRequest {
            limit: EVENTS_SCAN_MAX,
            after: Some(webhook.cursor.to_string()),
        })
        .await?
        .items;
    let Some(event) = events.iter().find(|e| webhook.events.matches(&e.kind)) else {
        let Some(last) = events.last() else {
            return Ok(Outcome::Stale);
        };
        return Ok(
            match store.pass_webhook_events(webhook, last.seq, now).await? {
                true => Outcome::Passed,
                false => Outcome::Stale,
            },
        );
    };
    let body = delivery_body(&due, event);
    let started = Instant::now();
    let sent = send(client, &due, event, &body, now).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let record = match sent {
        Ok(status) if (200..300).contains(&status) => AttemptRecord {
            status: Some(status),
            error: None,
            duration_ms,
        },
        Ok(status) => AttemptRecord {
            status: Some(status),
            error: Some(format!("receiver answered {status}")),
            duration_ms,
        },
        Err(error) => AttemptRecord {
            status: None,
            error: Some(error),
            duration_ms,
        },
    };
    let next = match (&record.error, after_failure(webhook.failures + 1, random)) {
        (None, _) => NextStep::Advance,
        (Some(_), AfterFailure::Retry(delay)) => {
            let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
            NextStep::RetryAt(now.checked_add(delay).unwrap_or(Timestamp::MAX))
        }
        (Some(_), AfterFailure::Suspend) => NextStep::Suspend,
    };
    let recorded = store
        .record_webhook_attempt(webhook, event.seq, &record, next, now)
        .await?;
    let webhook_id = webhook.id.to_string();
    let seq = event.seq;
    let status = record.status;
    Ok(match (recorded, next) {
        (false, _) => Outcome::Stale,
        (true, NextStep::Advance) => {
            tracing::debug!(webhook_id, seq, status, duration_ms, "webhook delivered");
            Outcome::Delivered
        }
        (true, NextStep::RetryAt(at)) => {
            let error = record.error.as_deref().unwrap_or_default();
            tracing::info!(webhook_id, seq, status, error, retry_at = %at, "webhook attempt failed");
            Outcome::Failed
        }
        (true, NextStep::Suspend) => {
            let error = record.error.as_deref().unwrap_or_default();
            tracing::warn!(
                webhook_id,
                seq,
                status,
                error,
                "webhook suspended after repeated failures"
            );
            Outcome::Suspended
        }
    })
}

/// The JSON body of one delivery.
fn delivery_body(due: &DueWebhook, event: &StoredEvent) -> Vec<u8> {
    let payload: serde_json::Value =
        serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
    json!({
        "id": delivery_id(due.webhook.id, event.seq),
        "webhook_id": due.webhook.id.to_string(),
        "client_id": due.webhook.client_id.to_string(),
        "seq": event.seq,
        "kind": event.kind,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "at": event.at.to_string(),
        "payload": payload,
        "hash": event.hash,
    })
    .to_string()
    .into_bytes()
}

/// Posts one delivery; the status answered, or why there was none.
async fn send(
    client: &WebhookClient,
    due: &DueWebhook,
    event: &StoredEvent,
    body: &[u8],
    now: Timestamp,
) -> Result<u16, String> {
    let url = Url::parse(&due.webhook.url).map_err(|_| "stored url does not parse".to_string())?;
    if !client.options.allow_private {
        // Literal addresses never reach the resolver, so they are checked here.
        let literal = url
            .host_str()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<std::net::IpAddr>().ok());
        if literal.is_some_and(|ip| !is_public_address(ip)) {
            return Err("url host is not a public address".into());
        }
    }
    let signature = signature_header(&due.secret, now.as_second(), body);
    let response = client
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, delivery_id(due.webhook.id, event.seq))
        .header(EVENT_HEADER, &event.kind)
        .header(SIGNATURE_HEADER, signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|err| request_error(&err))?;
    Ok(response.status().as_u16())
}

/// A short lowercase account of a failed request, from the innermost cause.
fn request_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{kind}: {cause}")
}
