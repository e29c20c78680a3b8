//! Bulk intake: many work items of one engagement stored in one transaction, all or none.
//!
//! A client hands over a file of thousands or millions of items. They are written with
//! multi-row `INSERT`s (a few thousand rows per statement, sized under each engine's limit on
//! bind parameters), and each item gets its `work_item.created` event in the same transaction.
//! The events of the whole import are linked in Rust ([`chain::link`]) and inserted in batches
//! too; the chain head is locked once at the start (`UPDATE ... RETURNING`, which reserves the
//! import's sequence numbers) and moved once at the end. A concurrent single-item write on
//! PostgreSQL waits for that lock, so the chain stays one line.
//!
//! Each item's SLA clocks start in the same transaction, exactly as a single intake starts them
//! (the engagement's calendar and terms for the item's priority). When the engagement runs on a
//! pack, each item then starts on the pack's first step as a single intake starts it
//! (`received → in_progress`, its first task or job): item by item, after the bulk writes, so
//! an import into a pack engagement is slower per row than one into a plain engagement.
//!
//! This module does not parse files or validate item input: the caller (the HTTP edge, the CLI)
//! does that and hands over [`NewWorkItem`]s. What only the store can know, duplicate
//! `external_ref`s within the import and against stored items, comes back as row errors in
//! [`ImportOutcome::Refused`], and then nothing is stored.

use std::collections::HashMap;

use jiff::Timestamp;
use karya_core::chain::{self, ChainHash, EventFields};
use karya_core::event::EventKind;
use karya_core::id::{EngagementId, WorkItemId};
use karya_core::lifecycle::WorkItemState;
use karya_core::model::{Priority, WorkItem};
use sqlx::AnyConnection;

use crate::rows::{get, is_unique_violation, parse, us};
use crate::work::{priority_rank, NewWorkItem};
use crate::{Engine, Result, StoreError, Tenant};

/// Row errors kept in a refusal: enough to fix a file in a few rounds, few enough that a file
/// of a million duplicates does not become a million-entry report.
pub const IMPORT_ROW_ERRORS_MAX: usize = 100;

/// SQLite's limit on bind parameters in one statement (`SQLITE_MAX_VARIABLE_NUMBER` since 3.32).
const SQLITE_BIND_PARAMS_MAX: usize = 32_766;
/// PostgreSQL's limit on bind parameters in one statement (the protocol counts them in 16 bits).
const POSTGRES_BIND_PARAMS_MAX: usize = 65_535;
/// Parameters bound per row on SQLite (the work item insert takes nine, the event insert
/// seven). SQLite looks numbered or named parameters (`$1`, `?1`) up in a list, which makes a
/// statement of thousands of them quadratic to prepare and bind; anonymous `?` parameters are
/// not looked up, so values shared by all rows are bound again in every row instead.
const SQLITE_BIND_PARAMS_PER_ROW: usize = 9;
/// Parameters bound once per statement on PostgreSQL (client, engagement, state, time).
const POSTGRES_SHARED_BIND_PARAMS: usize = 4;
/// Parameters bound per row on PostgreSQL: five for the work item, five for the event.
const POSTGRES_BIND_PARAMS_PER_ROW: usize = 5;
/// Rows per statement whatever the engine allows: past a few thousand rows a bigger statement
/// no longer saves round trips worth having, and it costs memory for its text and arguments.
const ROWS_PER_STATEMENT_MAX: usize = 5_000;

/// What became of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Every row is stored.
    Imported(ImportSummary),
    /// Some rows are refused, and so nothing is stored.
    Refused(ImportRefusal),
}

/// The items of a successful import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: u64,
    /// The id of the first row's item.
    pub first_id: WorkItemId,
    /// The id of the last row's item.
    pub last_id: WorkItemId,
}

/// Why an import stored nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRefusal {
    /// The first [`IMPORT_ROW_ERRORS_MAX`] errors, in row order.
    pub errors: Vec<ImportRowError>,
    /// All errors found, including those not listed.
    pub total_errors: u64,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRowError {
    /// The row's position in the slice given to the import, from 0.
    pub index: usize,
    pub problem: ImportProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportProblem {
    /// An earlier row of the import has the same `external_ref`.
    DuplicateInImport {
        external_ref: String,
        first_index: usize,
    },
    /// A stored item of the engagement has the same `external_ref`.
    DuplicateStored {
        external_ref: String,
        existing: WorkItemId,
    },
}

impl ImportProblem {
    /// The column the problem is in.
    pub fn column(&self) -> &'static str {
        "external_ref"
    }

    pub fn message(&self) -> String {
        match self {
            ImportProblem::DuplicateInImport {
                external_ref,
                first_index,
            } => format!(
                "external_ref {external_ref:?} repeats the one of an earlier row (position {first_index})"
            ),
            ImportProblem::DuplicateStored {
                external_ref,
                existing,
            } => format!(
                "a work item with external_ref {external_ref:?} exists already in this engagement: {existing}"
            ),
        }
    }
}

/// The largest statement, in rows, that fits the engine's bind-parameter limit.
fn rows_per_statement(engine: Engine) -> usize {
    let rows = match engine {
        Engine::Sqlite => SQLITE_BIND_PARAMS_MAX / SQLITE_BIND_PARAMS_PER_ROW,
        Engine::Postgres => {
            (POSTGRES_BIND_PARAMS_MAX - POSTGRES_SHARED_BIND_PARAMS) / POSTGRES_BIND_PARAMS_PER_ROW
        }
    };
    rows.min(ROWS_PER_STATEMENT_MAX)
}

impl Tenant {
    /// Stores `rows` as new work items of the engagement, with their events: all of them, or
    /// none when a row is refused. Every row's `engagement_id` must be `engagement_id`.
    pub async fn import_work_items(
        &self,
        engagement_id: EngagementId,
        rows: &[NewWorkItem],
        now: Timestamp,
    ) -> Result<ImportOutcome> {
        self.import_work_items_with_progress(engagement_id, rows, now, &|_| {})
            .await
    }

    /// [`import_work_items`](Self::import_work_items), calling `on_progress` with the number
    /// of rows written so far after each statement (they commit only at the end).
    pub async fn import_work_items_with_progress(
        &self,
        engagement_id: EngagementId,
        rows: &[NewWorkItem],
        now: Timestamp,
        on_progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<ImportOutcome> {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Err(StoreError::Rejected {
                message: "an import needs at least one row".into(),
            });
        };
        if let Some(idx) = rows.iter().position(|r| r.engagement_id != engagement_id) {
            return Err(StoreError::Rejected {
                message: format!(
                    "row at position {idx} names engagement {}, not {engagement_id}",
                    rows[idx].engagement_id
                ),
            });
        }
        // The engagement must be this client's: the same scoped read a client uses.
        self.engagement(engagement_id).await?;
        let mut refusal = Refusal::default();
        duplicates_in_import(rows, &mut refusal);

        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let head = lock_chain_head(&mut tx, self, rows.len()).await?;
        self.duplicates_stored(&mut tx, engagement_id, rows, &mut refusal)
            .await?;
        if refusal.total > 0 {
            tx.rollback().await?;
            return Ok(ImportOutcome::Refused(refusal.finish()));
        }

        let engine = self.store.engine;
        let sqlite = engine == Engine::Sqlite;
        let batch_rows = rows_per_statement(engine);
        let shape = Statements::new(engine, batch_rows);
        let client = self.client_id.to_string();
        let engagement = engagement_id.to_string();
        let now_us = us(now);
        let mut chain = ChainCursor {
            seq: head.first_seq,
            prev: head.prev,
        };
        let mut written = 0u64;
        for batch in rows.chunks(batch_rows) {
            let ids: Vec<String> = batch.iter().map(|row| row.id.to_string()).collect();
            let full;
            let (items_sql, events_sql) = if batch.len() == batch_rows {
                (&shape.items, &shape.events)
            } else {
                full = Statements::new(engine, batch.len());
                (&full.items, &full.events)
            };
            // The last, shorter batch has a statement of its own: not worth caching.
            let persistent = batch.len() == batch_rows;
            let mut insert = sqlx::query(items_sql).persistent(persistent);
            if !sqlite {
                insert = insert
                    .bind(client.as_str())
                    .bind(engagement.as_str())
                    .bind(WorkItemState::Received.code())
                    .bind(now_us);
            }
            for (row, id) in batch.iter().zip(&ids) {
                insert = insert.bind(id.as_str());
                if sqlite {
                    insert = insert.bind(client.as_str()).bind(engagement.as_str());
                }
                insert = insert
                    .bind(row.external_ref.as_deref())
                    .bind(row.title.as_str())
                    .bind(priority_rank(row.priority))
                    .bind(row.input.as_str());
                if sqlite {
                    insert = insert.bind(now_us).bind(now_us);
                }
            }
            match insert.execute(&mut *tx).await {
                Err(err) if is_unique_violation(&err) => {
                    // A concurrent writer stored one of these references after the check.
                    return Err(StoreError::Conflict {
                        message: "a work item with one of these external_refs was stored \
                                  concurrently: retry the import"
                            .into(),
                    });
                }
                other => other?,
            };

            let links = chain.link_batch(self.client_id, &engagement, now_us, batch, &ids);
            let kind = EventKind::WorkItemCreated;
            let mut insert = sqlx::query(events_sql).persistent(persistent);
            if !sqlite {
                insert = insert
                    .bind(client.as_str())
                    .bind(now_us)
                    .bind(kind.code())
                    .bind(kind.entity_type().code());
            }
            for (link, id) in links.iter().zip(&ids) {
                if sqlite {
                    insert = insert.bind(client.as_str());
                }
                insert = insert.bind(link.seq as i64);
                if sqlite {
                    insert = insert.bind(now_us);
                }
                insert = insert
                    .bind(id.as_str())
                    .bind(link.payload.as_str())
                    .bind(link.prev_hash.as_str())
                    .bind(link.hash.as_str());
            }
            insert.execute(&mut *tx).await?;
            written += batch.len() as u64;
            on_progress(written);
        }
        debug_assert_eq!(chain.seq, head.first_seq + rows.len() as u64);
        // The SLA clocks start as they do for an item taken in alone: same calendar, same
        // terms, same instant.
        let started: Vec<(WorkItemId, Priority)> =
            rows.iter().map(|row| (row.id, row.priority)).collect();
        crate::sla::start_clocks(&mut tx, self.client_id, engagement_id, &started, now).await?;
        sqlx::query("UPDATE chain_heads SET hash = $1 WHERE client_id = $2")
            .bind(chain.prev.to_hex())
            .bind(&client)
            .execute(&mut *tx)
            .await?;
        // Events from here on are linked at commit, after the import's own (the head is
        // current again).
        if let Some(plan) = crate::flow::intake_plan(&mut tx, self.client_id, engagement_id).await?
        {
            for row in rows {
                let item = WorkItem {
                    id: row.id,
                    client_id: self.client_id,
                    engagement_id,
                    external_ref: row.external_ref.clone(),
                    title: row.title.clone(),
                    priority: row.priority,
                    state: WorkItemState::Received,
                    input: row.input.clone(),
                    received_at: crate::work::stored(now),
                    updated_at: crate::work::stored(now),
                    version: 1,
                };
                let mut item = crate::work::move_work_item(
                    &mut tx,
                    item,
                    WorkItemState::InProgress,
                    Some("intake"),
                    now,
                )
                .await?;
                crate::flow::start_item(&mut tx, &mut item, &plan, uuid::Uuid::now_v7(), now)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(ImportOutcome::Imported(ImportSummary {
            imported: rows.len() as u64,
            first_id: first.id,
            last_id: last.id,
        }))
    }

    /// Adds a row error for every row whose `external_ref` the engagement holds already.
    async fn duplicates_stored(
        &self,
        conn: &mut AnyConnection,
        engagement_id: EngagementId,
        rows: &[NewWorkItem],
        refusal: &mut Refusal,
    ) -> Result<()> {
        // Most imports carry references into an engagement that holds none yet (or none of
        // these); the lookups run on the unique index, a batch of references per statement.
        let with_ref: Vec<(usize, &str)> = rows
            .iter()
            .enumerate()
            .filter_map(|(idx, row)| row.external_ref.as_deref().map(|r| (idx, r)))
            .collect();
        let batch_rows = rows_per_statement(self.store.engine);
        let client = self.client_id.to_string();
        let engagement = engagement_id.to_string();
        let mut found: Vec<(usize, String, WorkItemId)> = Vec::new();
        for batch in with_ref.chunks(batch_rows) {
            // Anonymous parameters on SQLite (see SQLITE_BIND_PARAMS_PER_ROW).
            let (scope, placeholders) = match self.store.engine {
                Engine::Sqlite => (
                    "client_id = ? AND engagement_id = ?",
                    vec!["?".to_string(); batch.len()],
                ),
                Engine::Postgres => (
                    "client_id = $1 AND engagement_id = $2",
                    (0..batch.len())
                        .map(|idx| format!("${}", idx + 3))
                        .collect(),
                ),
            };
            let sql = format!(
                "SELECT id, external_ref FROM work_items WHERE {scope} AND external_ref IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .persistent(false)
                .bind(&client)
                .bind(&engagement);
            for (_, external_ref) in batch {
                query = query.bind(*external_ref);
            }
            let stored = query.fetch_all(&mut *conn).await?;
            if stored.is_empty() {
                continue;
            }
            let mut existing: HashMap<String, WorkItemId> = HashMap::with_capacity(stored.len());
            for row in &stored {
                existing.insert(get(row, "external_ref")?, parse(row, "id")?);
            }
            for (idx, external_ref) in batch {
                if let Some(id) = existing.get(*external_ref) {
                    found.push((*idx, external_ref.to_string(), *id));
                }
            }
        }
        for (index, external_ref, existing) in found {
            refusal.add(ImportRowError {
                index,
                problem: ImportProblem::DuplicateStored {
                    external_ref,
                    existing,
                },
            });
        }
        Ok(())
    }
}

/// Row errors as they are found: the first few kept, all counted.
#[derive(Default)]
struct Refusal {
    errors: Vec<ImportRowError>,
    total: u64,
}

impl Refusal {
    fn add(&mut self, error: ImportRowError) {
        self.total += 1;
        self.errors.push(error);
        // Keep the earliest rows: errors arrive from two passes, so sort before trimming.
        if self.errors.len() > 2 * IMPORT_ROW_ERRORS_MAX {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.errors.sort_by_key(|error| error.index);
        self.errors.truncate(IMPORT_ROW_ERRORS_MAX);
    }

    fn finish(mut self) -> ImportRefusal {
        self.trim();
        ImportRefusal {
            errors: self.errors,
            total_errors: self.total,
        }
    }
}

/// Adds a row error for every row that repeats an earlier row's `external_ref`.
fn duplicates_in_import(rows: &[NewWorkItem], refusal: &mut Refusal) {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (idx, row) in rows.iter().enumerate() {
        let Some(external_ref) = row.external_ref.as_deref() else {
            continue;
        };
        if let Some(first_index) = seen.insert(external_ref, idx) {
            seen.insert(external_ref, first_index);
            refusal.add(ImportRowError {
                index: idx,
                problem: ImportProblem::DuplicateInImport {
                    external_ref: external_ref.to_string(),
                    first_index,
                },
            });
        }
    }
}

/// The chain head as locked for an import of `n_events`.
struct LockedHead {
    /// The sequence number of the import's first event.
    first_seq: u64,
    /// The hash of the event before it.
    prev: ChainHash,
}

/// Locks the client's chain head (linking the events committed queued before the import, on
/// PostgreSQL) and reserves `n_events` sequence numbers. The row lock is
/// held until the transaction ends, so no other event of this client comes in between.
async fn lock_chain_head(
    conn: &mut AnyConnection,
    tenant: &Tenant,
    n_events: usize,
) -> Result<LockedHead> {
    let client = tenant.client_id.to_string();
    crate::events::link_queued_first(conn, &client).await?;
    let head = sqlx::query(
        "UPDATE chain_heads SET seq = seq + $2 WHERE client_id = $1 RETURNING seq, hash",
    )
    .bind(&client)
    .bind(n_events as i64)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no chain head for client {client}"))?;
    let last_seq: i64 = get(&head, "seq")?;
    let prev_hex: String = get(&head, "hash")?;
    let prev: ChainHash = prev_hex
        .parse()
        .map_err(|_| anyhow::anyhow!("chain head of client {client} holds a malformed hash"))?;
    Ok(LockedHead {
        first_seq: (last_seq as u64) - n_events as u64 + 1,
        prev,
    })
}

/// The statement texts for batches of one size.
struct Statements {
    items: String,
    events: String,
}

impl Statements {
    fn new(engine: Engine, n_rows: usize) -> Statements {
        let mut items = String::from(
            "INSERT INTO work_items (id, client_id, engagement_id, external_ref, title, priority, \
             state, input, received_at_us, updated_at_us, version) VALUES ",
        );
        let mut events = String::from(
            "INSERT INTO events (client_id, seq, at_us, kind, entity_type, entity_id, payload, \
             prev_hash, hash) VALUES ",
        );
        let state = WorkItemState::Received.code();
        let kind = EventKind::WorkItemCreated;
        let (kind, entity_type) = (kind.code(), kind.entity_type().code());
        for idx in 0..n_rows {
            let sep = if idx == 0 { "" } else { "," };
            match engine {
                // Per row: id, client, engagement, external_ref, title, priority, input, time,
                // time; and client, seq, time, entity id, payload, previous hash, hash.
                Engine::Sqlite => {
                    items.push_str(&format!("{sep}(?,?,?,?,?,?,'{state}',?,?,?,1)"));
                    events.push_str(&format!("{sep}(?,?,?,'{kind}','{entity_type}',?,?,?,?)"));
                }
                // Shared: $1 client, $2 engagement, $3 state, $4 time; per row: id,
                // external_ref, title, priority, input. Events: $1 client, $2 time, $3 kind,
                // $4 entity type; per row: seq, entity id, payload, previous hash, hash.
                Engine::Postgres => {
                    let p = POSTGRES_SHARED_BIND_PARAMS + idx * POSTGRES_BIND_PARAMS_PER_ROW;
                    let [a, b, c, d, e] = [p + 1, p + 2, p + 3, p + 4, p + 5];
                    items.push_str(&format!("{sep}(${a},$1,$2,${b},${c},${d},$3,${e},$4,$4,1)"));
                    events.push_str(&format!("{sep}($1,${a},$2,$3,$4,${b},${c},${d},${e})"));
                }
            }
        }
        Statements { items, events }
    }
}

/// Where the import's part of the chain has got to.
struct ChainCursor {
    /// The sequence number of the next event.
    seq: u64,
    /// The hash of the last event linked.
    prev: ChainHash,
}

/// One event, linked and ready to insert.
struct Link {
    seq: u64,
    payload: String,
    prev_hash: String,
    hash: String,
}

impl ChainCursor {
    /// Links the `work_item.created` events of a batch, in row order.
    fn link_batch(
        &mut self,
        client_id: karya_core::id::ClientId,
        engagement: &str,
        at_us: i64,
        batch: &[NewWorkItem],
        ids: &[String],
    ) -> Vec<Link> {
        let kind = EventKind::WorkItemCreated;
        let mut links = Vec::with_capacity(batch.len());
        let mut prev_hex = self.prev.to_hex();
        for (row, id) in batch.iter().zip(ids) {
            let payload = created_payload(engagement, row);
            let fields = EventFields {
                client_id,
                seq: self.seq,
                at_us,
                kind: kind.code(),
                entity_type: kind.entity_type().code(),
                entity_id: id,
                payload: &payload,
            };
            let hash = chain::link(&self.prev, &fields);
            let hash_hex = hash.to_hex();
            links.push(Link {
                seq: self.seq,
                payload,
                prev_hash: std::mem::replace(&mut prev_hex, hash_hex.clone()),
                hash: hash_hex,
            });
            self.prev = hash;
            self.seq += 1;
        }
        links
    }
}

/// The payload of a `work_item.created` event: the same JSON text a single creation writes
/// (keys in sorted order), written directly instead of through a `serde_json::Value`.
fn created_payload(engagement: &str, row: &NewWorkItem) -> String {
    let mut out = Vec::with_capacity(96 + row.title.len());
    out.extend_from_slice(b"{\"engagement_id\":\"");
    out.extend_from_slice(engagement.as_bytes());
    out.extend_from_slice(b"\",\"external_ref\":");
    match &row.external_ref {
        Some(external_ref) => push_json_str(&mut out, external_ref),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"priority\":\"");
    out.extend_from_slice(row.priority.code().as_bytes());
    out.extend_from_slice(b"\",\"title\":");
    push_json_str(&mut out, &row.title);
    out.push(b'}');
    String::from_utf8(out).expect("json text of utf-8 parts is utf-8")
}

fn push_json_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("writing to a vec cannot fail");
}

#[cfg(test)]
mod tests {
    use karya_core::id::{EngagementId, WorkItemId};
    use karya_core::model::Priority;
    use serde_json::json;

    use super::*;

    #[test]
    fn statements_fit_both_engines_bind_limits() {
        let n = rows_per_statement(Engine::Sqlite);
        assert!(n >= 1000, "sqlite: {n}");
        let shape = Statements::new(Engine::Sqlite, n);
        for text in [&shape.items, &shape.events] {
            let params = text.matches('?').count();
            assert!(params <= SQLITE_BIND_PARAMS_MAX && params <= n * SQLITE_BIND_PARAMS_PER_ROW);
            assert!(!text.contains('$'));
        }
        let n = rows_per_statement(Engine::Postgres);
        assert!(n >= 1000, "postgres: {n}");
        let highest = POSTGRES_SHARED_BIND_PARAMS + n * POSTGRES_BIND_PARAMS_PER_ROW;
        assert!(highest <= POSTGRES_BIND_PARAMS_MAX);
        let shape = Statements::new(Engine::Postgres, n);
        for text in [&shape.items, &shape.events] {
            assert!(text.contains(&format!("${highest}")));
            assert!(!text.contains(&format!("${}", highest + 1)));
        }
    }

    #[test]
    fn created_payload_matches_the_single_creation_payload() {
        let engagement = EngagementId::from_uuid(uuid::Uuid::nil());
        let check = |external_ref: Option<&str>, title: &str| {
            let row = NewWorkItem {
                id: WorkItemId::from_uuid(uuid::Uuid::nil()),
                engagement_id: engagement,
                external_ref: external_ref.map(str::to_string),
                title: title.to_string(),
                priority: Priority::High,
                input: "{}".into(),
            };
            let expected = json!({
                "engagement_id": engagement.to_string(),
                "external_ref": external_ref,
                "title": title,
                "priority": "high",
            })
            .to_string();
            assert_eq!(created_payload(&engagement.to_string(), &row), expected);
        };
        check(None, "prior art for claim 7");
        check(Some("CLM-1"), "quote \" backslash \\ tab \t ünïcode");
    }
}
