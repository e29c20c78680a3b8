//! Appending to and verifying the hash-chained event log.
//!
//! [`append`] is called inside the transaction that makes a change, so the change and its event
//! commit or vanish together. It takes the chain head's row lock (`UPDATE ... RETURNING`), which
//! orders one client's events even with many writers on PostgreSQL.

use jiff::Timestamp;
use karya_core::chain::{self, ChainBreak, ChainHash, ChainVerifier, EventFields, StoredLink};
use karya_core::event::EventKind;
use karya_core::id::ClientId;
use sqlx::AnyConnection;

use crate::rows::{get, timestamp, us};
use crate::{Engine, Page, PageRequest, Result, Store, StoreError, Tenant};

/// The chain of firm-level events (workers, sites): changes that belong to no client.
pub const FIRM_CHAIN: ClientId = ClientId::from_uuid(uuid::Uuid::nil());

/// Events read per round trip while verifying, so memory stays flat on long chains.
const VERIFY_BATCH: i64 = 2_000;

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub kind: String,
    pub entity_type: String,
    pub entity_id: String,
    /// JSON text.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The verification result of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub client_id: ClientId,
    /// Events verified (all of them when intact, those before the break otherwise).
    pub events_verified: u64,
    pub broken: Option<ChainBreak>,
}

/// The verification result of every chain asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub chains: Vec<ChainStatus>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.chains.iter().all(|chain| chain.broken.is_none())
    }

    pub fn first_break(&self) -> Option<&ChainBreak> {
        self.chains.iter().find_map(|chain| chain.broken.as_ref())
    }
}

/// Opens a chain for a new client (or the firm).
pub(crate) async fn start_chain(conn: &mut AnyConnection, client_id: ClientId) -> Result<()> {
    sqlx::query("INSERT INTO chain_heads (client_id, seq, hash) VALUES ($1, 0, $2)")
        .bind(client_id.to_string())
        .bind(ChainHash::GENESIS.to_hex())
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends one event to the client's chain; returns its sequence number.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    client_id: ClientId,
    kind: EventKind,
    entity_id: &str,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<u64> {
    let client = client_id.to_string();
    let head = sqlx::query(
        "UPDATE chain_heads SET seq = seq + 1 WHERE client_id = $1 RETURNING seq, hash",
    )
    .bind(&client)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no chain head for client {client}"))?;
    let seq: i64 = get(&head, "seq")?;
    let prev_hex: String = get(&head, "hash")?;
    let prev: ChainHash = prev_hex
        .parse()
        .map_err(|_| anyhow::anyhow!("chain head of client {client} holds a malformed hash"))?;
    let payload = payload.to_string();
    let fields = EventFields {
        client_id,
        seq: seq as u64,
        at_us: us(now),
        kind: kind.code(),
        entity_type: kind.entity_type().code(),
        entity_id,
        payload: &payload,
    };
    let hash = chain::link(&prev, &fields).to_hex();
    sqlx::query(
        "INSERT INTO events (client_id, seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&client)
    .bind(seq)
    .bind(fields.at_us)
    .bind(fields.kind)
    .bind(fields.entity_type)
    .bind(entity_id)
    .bind(&payload)
    .bind(&prev_hex)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE chain_heads SET hash = $1 WHERE client_id = $2")
        .bind(&hash)
        .bind(&client)
        .execute(conn)
        .await?;
    Ok(seq as u64)
}

fn stored_event(row: &sqlx::any::AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: get::<i64>(row, "seq")? as u64,
        at: timestamp(row, "at_us")?,
        kind: get(row, "kind")?,
        entity_type: get(row, "entity_type")?,
        entity_id: get(row, "entity_id")?,
        payload: get(row, "payload")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
    })
}

impl Tenant {
    /// The client's events in chain order.
    pub async fn events(&self, page: &PageRequest) -> Result<Page<StoredEvent>> {
        let after: i64 = match &page.after {
            None => 0,
            Some(text) => text.parse().map_err(|_| StoreError::Rejected {
                message: format!(
                    "malformed page cursor {text:?}: expected an event sequence number"
                ),
            })?,
        };
        let limit = page.limit();
        let rows = sqlx::query(
            "SELECT seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash FROM events
             WHERE client_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(self.client_id.to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.store.reader)
        .await?;
        let items = rows.iter().map(stored_event).collect::<Result<Vec<_>>>()?;
        let next_after = (items.len() as i64 == limit)
            .then(|| items.last().map(|e| e.seq.to_string()))
            .flatten();
        Ok(Page { items, next_after })
    }

    /// The events about one entity, oldest first.
    pub async fn entity_events(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash FROM events
             WHERE client_id = $1 AND entity_type = $2 AND entity_id = $3 ORDER BY seq",
        )
        .bind(self.client_id.to_string())
        .bind(entity_type)
        .bind(entity_id)
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(stored_event).collect()
    }
}

impl Store {
    /// Verifies the chains of every client (and the firm), or of one client.
    pub async fn audit(&self, only: Option<ClientId>) -> Result<AuditReport> {
        let rows = match only {
            Some(client_id) => {
                sqlx::query("SELECT client_id FROM chain_heads WHERE client_id = $1")
                    .bind(client_id.to_string())
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT client_id FROM chain_heads ORDER BY client_id")
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        if let (Some(client_id), true) = (only, rows.is_empty()) {
            return Err(StoreError::not_found("client", client_id));
        }
        let mut chains = Vec::with_capacity(rows.len());
        for row in rows {
            let client_id: ClientId = crate::rows::parse(&row, "client_id")?;
            chains.push(self.verify_chain(client_id).await?);
        }
        Ok(AuditReport { chains })
    }

    /// Walks one client's chain from a consistent snapshot and reports the first break.
    pub async fn verify_chain(&self, client_id: ClientId) -> Result<ChainStatus> {
        let client = client_id.to_string();
        let mut tx = self.reader.begin().await?;
        if self.engine == Engine::Postgres {
            // Head and events must come from one snapshot, or a write landing between the two
            // reads would look like tampering.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let head = sqlx::query("SELECT seq, hash FROM chain_heads WHERE client_id = $1")
            .bind(&client)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("client", client_id))?;
        let head_seq: i64 = get(&head, "seq")?;
        let head_hash: String = get(&head, "hash")?;

        let mut verifier = ChainVerifier::new(client_id);
        let mut verified = 0u64;
        let mut after = -1i64;
        loop {
            let rows = sqlx::query(
                "SELECT seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash FROM events
                 WHERE client_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(&client)
            .bind(after)
            .bind(VERIFY_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let event = stored_event(row)?;
                let link = StoredLink {
                    fields: EventFields {
                        client_id,
                        seq: event.seq,
                        at_us: us(event.at),
                        kind: &event.kind,
                        entity_type: &event.entity_type,
                        entity_id: &event.entity_id,
                        payload: &event.payload,
                    },
                    prev_hash: &event.prev_hash,
                    hash: &event.hash,
                };
                if let Err(broken) = verifier.check(&link) {
                    return Ok(ChainStatus {
                        client_id,
                        events_verified: verified,
                        broken: Some(broken),
                    });
                }
                verified += 1;
                after = event.seq as i64;
            }
            if (rows.len() as i64) < VERIFY_BATCH {
                break;
            }
        }
        tx.rollback().await?;
        let broken = verifier.finish(head_seq.max(0) as u64, &head_hash).err();
        Ok(ChainStatus {
            client_id,
            events_verified: verified,
            broken,
        })
    }
}
