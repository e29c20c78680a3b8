//! Appending to and verifying the hash-chained event log.
//!
//! [`append`] is called inside the transaction that makes a change, so the change and its event
//! commit or vanish together. On SQLite the transaction links its events itself at commit
//! ([`link_all`]), taking the chain head's row (`UPDATE ... RETURNING`). On PostgreSQL it queues
//! them ([`queue_all`]) and commits; the store's [`Linker`] then links them in the background
//! with `karya_link_pending` (migration 17), which holds the head's row lock (it orders one
//! client's events across writers) for the linking of every event of the client committed so
//! far, never while a change waits for its own commit. It computes each hash as
//! [`chain::link`] does; the audit recomputes them here.

use jiff::Timestamp;
use karya_core::chain::{self, ChainBreak, ChainHash, ChainVerifier, EventFields, StoredLink};
use karya_core::event::EventKind;
use karya_core::id::ClientId;
use sqlx::AnyConnection;

use crate::rows::{get, timestamp, us, value_rows};
use crate::tx::{PendingEvent, Tx};
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

/// Appends one event to the client's chain in the transaction `tx`. The event is linked (its
/// sequence number and hash fixed) when the transaction commits, after every event appended
/// before it; see [`crate::tx`].
pub(crate) async fn append(
    tx: &mut Tx,
    client_id: ClientId,
    kind: EventKind,
    entity_id: &str,
    payload: &serde_json::Value,
    now: Timestamp,
) -> Result<()> {
    tx.push_event(PendingEvent {
        client_id,
        kind,
        entity_id: entity_id.to_string(),
        payload: payload.to_string(),
        at: now,
    });
    Ok(())
}

/// Events queued per statement on PostgreSQL: six values each, inside its limit of parameters.
const QUEUE_ROWS_MAX: usize = 1_000;

/// Queues `pending` with the change (PostgreSQL), to be linked in the order queued once the change
/// has committed by the store's [`Linker`].
pub(crate) async fn queue_all(conn: &mut AnyConnection, pending: &[PendingEvent]) -> Result<()> {
    for chunk in pending.chunks(QUEUE_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO event_queue (client_id, at_us, kind, entity_type, entity_id, payload) VALUES {}",
            value_rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            query = query
                .bind(event.client_id.to_string())
                .bind(us(event.at))
                .bind(event.kind.code())
                .bind(event.kind.entity_type().code())
                .bind(&event.entity_id)
                .bind(&event.payload);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Links queued events in the background (PostgreSQL). A change tells it, once committed, which
/// clients it queued events for; one task per store links them, one client at a time, each
/// call linking every event of the client committed so far. While a call runs the next commits
/// only add their clients to the channel, so under load one call links the events of many
/// changes, and no change waits for the chain head's lock or for a second flush of the log.
/// A reader that shows events with their place in the chain links its client first
/// ([`Store::link_client`]); a reader inside a change reads the queued events with the linked
/// ones ([`event_rows`]).
#[derive(Clone)]
pub(crate) struct Linker {
    clients: tokio::sync::mpsc::UnboundedSender<ClientId>,
}

impl Linker {
    /// Starts the linking task on `pool`; it ends when the last handle is dropped.
    pub(crate) fn start(pool: sqlx::AnyPool) -> Linker {
        let (clients, mut queued) = tokio::sync::mpsc::unbounded_channel::<ClientId>();
        tokio::spawn(async move {
            while let Some(first) = queued.recv().await {
                let mut due = std::collections::BTreeSet::from([first]);
                while let Ok(more) = queued.try_recv() {
                    due.insert(more);
                }
                for client in due {
                    if pool.is_closed() {
                        // The store was closed, which linked what was queued.
                        return;
                    }
                    if let Err(err) = link_pending(&pool, &client.to_string()).await {
                        // Committed and queued: the client's next change, a reader of its
                        // chain, an audit or the next start links them.
                        tracing::warn!(client = %client, error = %err, "events committed but not linked yet; they stay queued");
                    }
                }
            }
        });
        Linker { clients }
    }

    /// Asks for the clients of `pending` (committed queued) to be linked.
    pub(crate) fn committed(&self, pending: &[PendingEvent]) {
        let mut clients: Vec<ClientId> = pending.iter().map(|e| e.client_id).collect();
        clients.sort_unstable();
        clients.dedup();
        for client in clients {
            // The task ends only once every handle, this one included, is gone.
            let _ = self.clients.send(client);
        }
    }
}

/// The rows of `events` as a change reads them: on PostgreSQL the linked events and, after
/// them, those committed queued and not linked yet (their `seq` is the queue's id past every
/// linked sequence number, so `ORDER BY seq` keeps the order they will be linked in; they have
/// no hash yet). Columns: `client_id, seq, at_us, kind, entity_type, entity_id, payload`. For
/// readers of what happened (clocks, histories, ledgers), not of the chain itself.
pub(crate) fn event_rows(conn: &AnyConnection) -> &'static str {
    match conn.backend_name() {
        "PostgreSQL" => {
            "(SELECT client_id, seq, at_us, kind, entity_type, entity_id, payload FROM events
              UNION ALL
              SELECT client_id, 4611686018427387904 + id, at_us, kind, entity_type, entity_id, payload
              FROM event_queue)"
        }
        _ => "events",
    }
}

/// Links what is queued for one client; returns how many events it linked.
async fn link_pending(pool: &sqlx::AnyPool, client: &str) -> Result<i64> {
    let (linked,): (i64,) = sqlx::query_as("SELECT karya_link_pending($1)")
        .bind(client)
        .fetch_one(pool)
        .await?;
    Ok(linked)
}

/// Events per statement when SQLite links them as one JSON array.
const LINK_JSON_ROWS_MAX: usize = 2_000;

/// Events inserted per statement when linking: nine values each, inside both engines' limits.
const LINK_ROWS_MAX: usize = 400;

/// Links `pending` into their clients' chains: per client (in client id order, so two writers
/// always lock chain heads in the same order), one head update that locks the head and reserves
/// the sequence numbers, multi-row inserts of the events with their hashes, and one update of
/// the head's hash. Returns the sequence number of the last event of `pending`.
pub(crate) async fn link_all(
    conn: &mut AnyConnection,
    pending: Vec<PendingEvent>,
) -> Result<Option<u64>> {
    let Some(last) = pending.last().map(|e| e.client_id) else {
        return Ok(None);
    };
    let mut clients: Vec<ClientId> = pending.iter().map(|e| e.client_id).collect();
    clients.sort_unstable_by_key(|c| c.to_string());
    clients.dedup();
    let mut last_seq = None;
    for client_id in clients {
        let events: Vec<&PendingEvent> = pending
            .iter()
            .filter(|e| e.client_id == client_id)
            .collect();
        let seq = link_events_of(conn, client_id, &events).await?;
        if client_id == last {
            last_seq = Some(seq);
        }
    }
    Ok(last_seq)
}

/// On PostgreSQL, links the client's events committed queued inside the caller's transaction,
/// which then holds the chain head's lock until it ends: for a change about to link events of
/// its own directly, so that those committed before it come first in the chain.
pub(crate) async fn link_queued_first(conn: &mut AnyConnection, client: &str) -> Result<()> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT karya_link_pending($1)")
            .bind(client)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Links one client's events (in order) and returns the last one's sequence number. On
/// PostgreSQL the events of other changes committed queued come first: they happened before.
async fn link_events_of(
    conn: &mut AnyConnection,
    client_id: ClientId,
    events: &[&PendingEvent],
) -> Result<u64> {
    let client = client_id.to_string();
    link_queued_first(conn, &client).await?;
    let head = sqlx::query(
        "UPDATE chain_heads SET seq = seq + $2 WHERE client_id = $1 RETURNING seq, hash",
    )
    .bind(&client)
    .bind(events.len() as i64)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no chain head for client {client}"))?;
    let last_seq: i64 = get(&head, "seq")?;
    let prev_hex: String = get(&head, "hash")?;
    let mut prev: ChainHash = prev_hex
        .parse()
        .map_err(|_| anyhow::anyhow!("chain head of client {client} holds a malformed hash"))?;
    let first_seq = last_seq - events.len() as i64 + 1;
    let mut rows = Vec::with_capacity(events.len());
    for (n, event) in events.iter().enumerate() {
        let fields = EventFields {
            client_id,
            seq: (first_seq + n as i64) as u64,
            at_us: us(event.at),
            kind: event.kind.code(),
            entity_type: event.kind.entity_type().code(),
            entity_id: &event.entity_id,
            payload: &event.payload,
        };
        let hash = chain::link(&prev, &fields);
        rows.push((
            fields.seq as i64,
            fields.at_us,
            prev.to_hex(),
            hash.to_hex(),
        ));
        prev = hash;
    }
    if conn.backend_name() != "PostgreSQL" {
        return insert_linked_sqlite(conn, &client, events, &rows).await;
    }
    let last_hash = prev.to_hex();
    // PostgreSQL links here only for a transaction that needs a sequence number early
    // (`Tx::flush_events`; the others are linked after they commit, by the `Linker`). The last
    // insert and the head's new hash go in one statement, a writable CTE.
    let chunks = events.len().div_ceil(LINK_ROWS_MAX);
    for (n, (chunk_events, chunk_rows)) in events
        .chunks(LINK_ROWS_MAX)
        .zip(rows.chunks(LINK_ROWS_MAX))
        .enumerate()
    {
        let insert = format!(
            "INSERT INTO events (client_id, seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash) VALUES {}",
            value_rows(chunk_events.len(), 9)
        );
        let with_head = n + 1 == chunks;
        let sql = match with_head {
            true => {
                let b = chunk_events.len() * 9;
                let head = format!(
                    "UPDATE chain_heads SET hash = ${} WHERE client_id = ${}",
                    b + 1,
                    b + 2
                );
                format!("WITH linked AS ({insert}) {head}")
            }
            false => insert,
        };
        let mut query = sqlx::query(&sql);
        for (event, (seq, at_us, prev_hash, hash)) in chunk_events.iter().zip(chunk_rows) {
            query = query
                .bind(&client)
                .bind(*seq)
                .bind(*at_us)
                .bind(event.kind.code())
                .bind(event.kind.entity_type().code())
                .bind(&event.entity_id)
                .bind(&event.payload)
                .bind(prev_hash)
                .bind(hash);
        }
        if with_head {
            query = query.bind(&last_hash).bind(&client);
        }
        let done = query.execute(&mut *conn).await?;
        // The outer statement's rows: the head, or the events of a chunk before the last.
        let expected = match with_head {
            true => 1,
            false => chunk_events.len() as u64,
        };
        check_linked(&client, chunk_events.len(), done.rows_affected(), expected)?;
    }
    Ok(last_seq as u64)
}

/// SQLite: inserts linked events and sets the head's new hash in one round trip. The events go
/// as one JSON array bound to one statement, whatever their number (a group of changes links
/// tens at a time), so the statement is prepared once per connection: a text per number of rows
/// would be compiled again and again, and push other statements out of the connection's cache.
/// One query text may hold two statements, run one after the other on the connection's thread,
/// their `$N` parameters numbered across both.
async fn insert_linked_sqlite(
    conn: &mut AnyConnection,
    client: &str,
    events: &[&PendingEvent],
    rows: &[(i64, i64, String, String)],
) -> Result<u64> {
    // A large transaction (a bulk start of thousands of items) goes in chunks of the same
    // statement, each moving the head to its own last hash, so no one document grows unbounded.
    for (chunk_events, chunk_rows) in events
        .chunks(LINK_JSON_ROWS_MAX)
        .zip(rows.chunks(LINK_JSON_ROWS_MAX))
    {
        let linked: Vec<serde_json::Value> = chunk_events
            .iter()
            .zip(chunk_rows)
            .map(|(event, (seq, at_us, prev_hash, hash))| {
                serde_json::json!([
                    seq,
                    at_us,
                    event.kind.code(),
                    event.kind.entity_type().code(),
                    event.entity_id,
                    event.payload,
                    prev_hash,
                    hash
                ])
            })
            .collect();
        let last_hash = chunk_rows
            .last()
            .map(|row| row.3.as_str())
            .unwrap_or_default();
        let done = sqlx::query(
            "INSERT INTO events (client_id, seq, at_us, kind, entity_type, entity_id, payload, prev_hash, hash)
             SELECT $1, e.value ->> 0, e.value ->> 1, e.value ->> 2, e.value ->> 3, e.value ->> 4,
                    e.value ->> 5, e.value ->> 6, e.value ->> 7
             FROM json_each($2) AS e;
             UPDATE chain_heads SET hash = $3 WHERE client_id = $4",
        )
        .bind(client)
        .bind(serde_json::Value::Array(linked).to_string())
        .bind(last_hash)
        .bind(client)
        .execute(&mut *conn)
        .await?;
        // Both statements' rows: the events and the one head.
        let expected = chunk_events.len() as u64 + 1;
        check_linked(client, chunk_events.len(), done.rows_affected(), expected)?;
    }
    Ok(rows.last().map_or(0, |row| row.0 as u64))
}

/// Fails when a linking statement changed other than the rows it had to.
fn check_linked(client: &str, events: usize, changed: u64, expected: u64) -> Result<()> {
    if changed != expected {
        return Err(anyhow::anyhow!(
            "linking {events} events of client {client} changed {changed} rows, not {expected}"
        )
        .into());
    }
    Ok(())
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
        self.store.link_client(self.client_id).await?;
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
        self.store.link_client(self.client_id).await?;
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
    /// Links every event that committed queued and was not linked yet (PostgreSQL: left by a
    /// writer that stopped, or failed to link, between its commit and linking); returns how many
    /// it linked. On SQLite events are linked in their transaction and there is nothing to do.
    pub async fn link_queued_events(&self) -> Result<u64> {
        if self.engine != Engine::Postgres {
            return Ok(0);
        }
        let clients: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT client_id FROM event_queue ORDER BY client_id")
                .fetch_all(&self.writer)
                .await?;
        let mut linked = 0;
        for (client,) in clients {
            linked += link_pending(&self.writer, &client).await?;
        }
        Ok(linked as u64)
    }

    /// Links the events of `client_id` committed queued and not linked yet (PostgreSQL), so a
    /// read of its chain right after a change shows the change's events. Nothing to do on
    /// SQLite, or when nothing is queued (one round trip).
    pub async fn link_client(&self, client_id: ClientId) -> Result<()> {
        if self.engine == Engine::Postgres {
            link_pending(&self.writer, &client_id.to_string()).await?;
        }
        Ok(())
    }

    /// Verifies the chains of every client (and the firm), or of one client, after linking any
    /// events still queued ([`Store::link_queued_events`]).
    pub async fn audit(&self, only: Option<ClientId>) -> Result<AuditReport> {
        self.link_queued_events().await?;
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

    /// Walks one client's chain from a consistent snapshot and reports the first break, after
    /// linking the client's events still queued ([`Store::link_client`]).
    pub async fn verify_chain(&self, client_id: ClientId) -> Result<ChainStatus> {
        self.link_client(client_id).await?;
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
