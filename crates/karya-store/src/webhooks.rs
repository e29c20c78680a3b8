//! Webhook endpoints and the record of their delivery attempts.
//!
//! The client's events are the outbox: an endpoint holds a cursor into its client's chain
//! (the seq of the last event delivered or passed over by its filter), and delivery reads the
//! events after it. Writing an event therefore costs nothing more, and an endpoint registered
//! or resumed later picks up exactly where it stood. Per-client seqs commit in order (the
//! chain head's row lock is held until commit), so a reader never sees seq `n + 1` before `n`
//! and a cursor cannot jump over an event still in flight.
//!
//! A delivering node first claims due endpoints ([`Store::claim_due_webhooks`]), which pushes
//! their next attempt past a lease so no other node sends to them meanwhile (PostgreSQL claims
//! with `FOR UPDATE SKIP LOCKED`; SQLite writes are serial). The outcome is then recorded
//! against the claimed cursor ([`Store::record_webhook_attempt`]); if the endpoint moved in the
//! meantime (removed, resumed, or claimed again after the lease ran out) the stale outcome is
//! dropped. A node that dies mid-delivery leaves the lease to expire and the event is sent
//! again: delivery is at least once, in order.
//!
//! Registration, removal, suspension and resumption are events in the client's chain; the
//! secret never appears in one.

use jiff::{SignedDuration, Timestamp};
use karya_core::event::EventKind;
use karya_core::id::{ClientId, WebhookId};
use karya_core::webhook::{EventFilter, WebhookSecret, WebhookState};
use serde_json::json;
use sqlx::any::AnyRow;

use crate::clients::page_of;
use crate::events::append;
use crate::rows::{get, parse, timestamp, us};
use crate::{Engine, Page, PageRequest, Result, Store, StoreError, Tenant};

/// Endpoints one client may have (not counting removed ones): enough for a few systems per
/// client, few enough that a client cannot make the firm fan out without bound.
pub const WEBHOOKS_PER_CLIENT_MAX: i64 = 10;
/// Endpoints claimed in one call, whatever the caller asks: one delivery round stays bounded.
pub const WEBHOOK_CLAIM_MAX: usize = 64;
/// Longest error text kept per attempt: enough to diagnose, not a response body dump.
pub const ATTEMPT_ERROR_CHARS_MAX: usize = 300;

/// A registered endpoint (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub client_id: ClientId,
    pub url: String,
    pub events: EventFilter,
    pub state: WebhookState,
    /// The seq of the last event of the client's chain delivered or passed over.
    pub cursor: u64,
    /// Consecutive failed attempts at the event after the cursor.
    pub failures: u32,
    pub next_attempt_at: Timestamp,
    pub created_at: Timestamp,
}

/// An endpoint to register. The secret is made by the caller and shown to the client once.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: WebhookId,
    pub url: String,
    pub events: EventFilter,
    pub secret: WebhookSecret,
}

/// An endpoint claimed for delivery, with the secret to sign with.
#[derive(Debug, Clone)]
pub struct DueWebhook {
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

/// What one attempt met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The HTTP status answered, if an answer came.
    pub status: Option<u16>,
    /// Why there was no (good) answer; lowercase, without secrets.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What happens to the endpoint after an attempt, decided by the caller with
/// [`karya_core::webhook::after_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered: the cursor moves to the event, failures reset, the next event is due now.
    Advance,
    /// Failed: try the same event again at this time.
    RetryAt(Timestamp),
    /// Failed too often: suspend the endpoint (an event in the client's chain).
    Suspend,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub webhook_id: WebhookId,
    pub seq: u64,
    /// 1 for the first attempt at this event.
    pub attempt: u32,
    pub attempted_at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

const WEBHOOK_COLUMNS: &str =
    "id, client_id, url, events, state, cursor_seq, failures, next_attempt_at_us, created_at_us";

fn webhook_row(row: &AnyRow) -> Result<Webhook> {
    let state: String = get(row, "state")?;
    let events: String = get(row, "events")?;
    let prefixes: Vec<String> = events.split(' ').map(str::to_string).collect();
    Ok(Webhook {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        url: get(row, "url")?,
        events: EventFilter::parse(&prefixes)
            .map_err(|err| anyhow::anyhow!("stored webhook events {events:?}: {err}"))?,
        state: WebhookState::parse(&state)
            .ok_or_else(|| anyhow::anyhow!("stored webhook state {state:?} unknown"))?,
        cursor: get::<i64>(row, "cursor_seq")? as u64,
        failures: get::<i64>(row, "failures")? as u32,
        next_attempt_at: timestamp(row, "next_attempt_at_us")?,
        created_at: timestamp(row, "created_at_us")?,
    })
}

fn attempt_row(row: &AnyRow) -> Result<WebhookAttempt> {
    let status: Option<i64> = get(row, "status")?;
    Ok(WebhookAttempt {
        webhook_id: parse(row, "webhook_id")?,
        seq: get::<i64>(row, "seq")? as u64,
        attempt: get::<i64>(row, "attempt")? as u32,
        attempted_at: timestamp(row, "attempted_at_us")?,
        status: status.map(|s| s as u16),
        error: get(row, "error")?,
        duration_ms: get::<i64>(row, "duration_ms")? as u64,
    })
}

impl Tenant {
    /// Registers an endpoint. It receives the events appended after its registration.
    pub async fn register_webhook(&self, new: &NewWebhook, now: Timestamp) -> Result<Webhook> {
        let client = self.client_id.to_string();
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let exists = sqlx::query("SELECT 1 FROM clients WHERE id = $1")
            .bind(&client)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::not_found("client", self.client_id));
        }
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE client_id = $1 AND state <> 'removed'",
        )
        .bind(&client)
        .fetch_one(&mut *tx)
        .await?;
        if count >= WEBHOOKS_PER_CLIENT_MAX {
            return Err(StoreError::Rejected {
                message: format!(
                    "a client has at most {WEBHOOKS_PER_CLIENT_MAX} webhooks; remove one first"
                ),
            });
        }
        append(
            &mut tx,
            self.client_id,
            EventKind::WebhookRegistered,
            &new.id.to_string(),
            &json!({"url": new.url, "events": new.events.prefixes()}),
            now,
        )
        .await?;
        // The endpoint's cursor starts at its own registration event: link it now to know it.
        let seq = tx
            .flush_events()
            .await?
            .ok_or_else(|| anyhow::anyhow!("the registration event was not linked"))?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, client_id, url, secret, events, state, cursor_seq, failures, next_attempt_at_us, created_at_us)
             VALUES ($1, $2, $3, $4, $5, 'active', $6, 0, $7, $7)",
        )
        .bind(new.id.to_string())
        .bind(&client)
        .bind(&new.url)
        .bind(new.secret.expose())
        .bind(new.events.prefixes().join(" "))
        .bind(seq as i64)
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.webhook(new.id).await
    }

    /// The client's endpoints that are not removed, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints
             WHERE client_id = $1 AND state <> 'removed' ORDER BY id LIMIT $2"
        ))
        .bind(self.client_id.to_string())
        .bind(WEBHOOKS_PER_CLIENT_MAX)
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(webhook_row).collect()
    }

    /// One endpoint; a removed one reads as missing.
    pub async fn webhook(&self, id: WebhookId) -> Result<Webhook> {
        let row = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhook_endpoints
             WHERE client_id = $1 AND id = $2 AND state <> 'removed'"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("webhook", id))?;
        webhook_row(&row)
    }

    /// Removes an endpoint: nothing more is sent to it. Its attempts stay on record.
    pub async fn remove_webhook(&self, id: WebhookId, now: Timestamp) -> Result<()> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET state = 'removed'
             WHERE client_id = $1 AND id = $2 AND state <> 'removed'",
        )
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        append(
            &mut tx,
            self.client_id,
            EventKind::WebhookRemoved,
            &id.to_string(),
            &json!({}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resumes a suspended endpoint: its failures reset and the event it stopped at is due
    /// now. Resuming an active endpoint changes nothing.
    pub async fn resume_webhook(&self, id: WebhookId, now: Timestamp) -> Result<Webhook> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET state = 'active', failures = 0, next_attempt_at_us = $3
             WHERE client_id = $1 AND id = $2 AND state = 'suspended'",
        )
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .bind(us(now))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 1 {
            append(
                &mut tx,
                self.client_id,
                EventKind::WebhookResumed,
                &id.to_string(),
                &json!({}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        self.webhook(id).await
    }

    /// The attempts at delivering to an endpoint, in the order of the events and attempts.
    /// The page cursor is `<seq>:<attempt>`.
    pub async fn webhook_attempts(
        &self,
        id: WebhookId,
        page: &PageRequest,
    ) -> Result<Page<WebhookAttempt>> {
        self.webhook(id).await?;
        let (after_seq, after_attempt) = match &page.after {
            None => (-1, 0),
            Some(text) => text
                .split_once(':')
                .and_then(|(seq, attempt)| Some((seq.parse().ok()?, attempt.parse().ok()?)))
                .ok_or_else(|| StoreError::Rejected {
                    message: format!("malformed page cursor {text:?}: expected <seq>:<attempt>"),
                })?,
        };
        let limit = page.limit();
        let rows = sqlx::query(
            "SELECT webhook_id, seq, attempt, attempted_at_us, status, error, duration_ms
             FROM webhook_attempts
             WHERE client_id = $1 AND webhook_id = $2 AND (seq > $3 OR (seq = $3 AND attempt > $4))
             ORDER BY seq, attempt LIMIT $5",
        )
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .bind(after_seq as i64)
        .bind(after_attempt as i64)
        .bind(limit)
        .fetch_all(&self.store.reader)
        .await?;
        let items = rows.iter().map(attempt_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |a| {
            format!("{}:{}", a.seq, a.attempt)
        }))
    }
}

impl Store {
    /// Claims up to `limit` (at most [`WEBHOOK_CLAIM_MAX`]) active endpoints whose next attempt
    /// is due and whose client has events past their cursor, most overdue first, and holds
    /// them until `lease_until` so no other node delivers to them meanwhile. Events committed
    /// and still queued (PostgreSQL) are linked first, so they count.
    pub async fn claim_due_webhooks(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<DueWebhook>> {
        self.link_queued_events().await?;
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE OF w SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let limit = limit.min(WEBHOOK_CLAIM_MAX) as i64;
        let mut tx = crate::tx::Tx::begin(self).await?;
        let rows = sqlx::query(&format!(
            "SELECT w.id, w.client_id, w.url, w.events, w.state, w.cursor_seq, w.failures,
                    w.next_attempt_at_us, w.created_at_us, w.secret
             FROM webhook_endpoints w JOIN chain_heads h ON h.client_id = w.client_id
             WHERE w.state = 'active' AND w.next_attempt_at_us <= $1 AND h.seq > w.cursor_seq
             ORDER BY w.next_attempt_at_us, w.id LIMIT $2{lock}"
        ))
        .bind(us(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let webhook = webhook_row(row)?;
            sqlx::query("UPDATE webhook_endpoints SET next_attempt_at_us = $1 WHERE id = $2")
                .bind(us(lease_until))
                .bind(webhook.id.to_string())
                .execute(&mut *tx)
                .await?;
            claimed.push(DueWebhook {
                webhook,
                secret: WebhookSecret::new(get(row, "secret")?),
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Moves a claimed endpoint's cursor past events its filter does not take (up to and
    /// including `seq`), without an attempt. Returns false when the claim is stale.
    pub async fn pass_webhook_events(
        &self,
        claimed: &Webhook,
        seq: u64,
        now: Timestamp,
    ) -> Result<bool> {
        assert!(seq > claimed.cursor, "a cursor only moves forward");
        let mut tx = crate::tx::Tx::begin(self).await?;
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET cursor_seq = $1, next_attempt_at_us = $2
             WHERE id = $3 AND state = 'active' AND cursor_seq = $4 AND failures = $5",
        )
        .bind(seq as i64)
        .bind(us(now))
        .bind(claimed.id.to_string())
        .bind(claimed.cursor as i64)
        .bind(i64::from(claimed.failures))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Records an attempt at delivering event `seq` to a claimed endpoint and applies the next
    /// step. Returns false, recording nothing, when the endpoint changed since it was claimed.
    pub async fn record_webhook_attempt(
        &self,
        claimed: &Webhook,
        seq: u64,
        record: &AttemptRecord,
        next: NextStep,
        now: Timestamp,
    ) -> Result<bool> {
        assert!(
            seq > claimed.cursor,
            "an attempt is at an event after the cursor"
        );
        let id = claimed.id.to_string();
        let (state, cursor, failures, next_at) = match next {
            NextStep::Advance => (WebhookState::Active, seq, 0, now),
            NextStep::RetryAt(at) => (
                WebhookState::Active,
                claimed.cursor,
                claimed.failures + 1,
                at,
            ),
            NextStep::Suspend => (
                WebhookState::Suspended,
                claimed.cursor,
                claimed.failures + 1,
                now,
            ),
        };
        let mut tx = crate::tx::Tx::begin(self).await?;
        let updated = sqlx::query(
            "UPDATE webhook_endpoints SET state = $1, cursor_seq = $2, failures = $3, next_attempt_at_us = $4
             WHERE id = $5 AND state = 'active' AND cursor_seq = $6 AND failures = $7",
        )
        .bind(state.code())
        .bind(cursor as i64)
        .bind(i64::from(failures))
        .bind(us(next_at))
        .bind(&id)
        .bind(claimed.cursor as i64)
        .bind(i64::from(claimed.failures))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        let error: Option<String> = record
            .error
            .as_ref()
            .map(|e| e.chars().take(ATTEMPT_ERROR_CHARS_MAX).collect());
        // Numbered per event, not from the failure count: a resumed endpoint starts counting
        // failures afresh but its earlier attempts at the event stay on record.
        let (previous,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(attempt), 0) FROM webhook_attempts WHERE webhook_id = $1 AND seq = $2",
        )
        .bind(&id)
        .bind(seq as i64)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (webhook_id, client_id, seq, attempt, attempted_at_us, status, error, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(claimed.client_id.to_string())
        .bind(seq as i64)
        .bind(previous + 1)
        .bind(us(now))
        .bind(record.status.map(i64::from))
        .bind(error.clone())
        .bind(record.duration_ms.min(i64::MAX as u64) as i64)
        .execute(&mut *tx)
        .await?;
        if next == NextStep::Suspend {
            append(
                &mut tx,
                claimed.client_id,
                EventKind::WebhookSuspended,
                &id,
                &json!({"failures": failures, "seq": seq, "status": record.status, "error": error}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// When a claim made at `now` for a delivery bounded by `timeout` expires: the timeout plus a
/// margin for recording the outcome.
pub fn webhook_lease_until(now: Timestamp, timeout: std::time::Duration) -> Timestamp {
    let lease = SignedDuration::try_from(timeout).unwrap_or(SignedDuration::MAX)
        + SignedDuration::from_secs(30);
    now.checked_add(lease).unwrap_or(Timestamp::MAX)
}
