//! The write transaction every change runs in, and the events it carries to its commit.
//!
//! A change's events are appended to the client's hash chain ([`crate::events`]) with the change:
//! they commit together or vanish together. Linking an event takes the chain head's row lock,
//! and on PostgreSQL that lock orders every writer of the client. So [`Tx`] keeps the events a
//! transaction appends in memory until it commits. On SQLite (one writer, no lock to wait for) it
//! hands them to its group of changes ([`crate::group`]), which links the events of all its
//! changes just before it commits: one head update and one insert per chain and group. On
//! PostgreSQL it writes them to `event_queue` in one statement and commits, without the head's
//! lock, and tells the store's linker ([`crate::events::Linker`]) which clients it wrote events
//! for; the linker links every event of those clients committed so far, in the background, so
//! a change waits neither for the head's lock nor for a second flush of the log, and one
//! linking call under load covers the events of many changes. A reader inside a change that
//! needs events not linked yet reads them with the linked ones: those of its own transaction
//! and, on SQLite, of the changes before it in its group through [`Tx::pending_where`]; on
//! PostgreSQL those committed queued through [`crate::events::event_rows`]. A reader of the
//! chain itself (sequence numbers and hashes) links its client's queue first.
//!
//! Every statement costs a round trip to PostgreSQL and the executor's start and end, whatever
//! it does, so a change may hand the writes that end it to [`Tx::write_at_commit`]: writes that
//! nothing later in the change reads, and that touch rows no other write of the change touches.
//! On PostgreSQL they run at commit in one statement with the event queue's insert (each a
//! data-modifying `WITH` clause, with the rows each changed counted, so a conditional update
//! that found its row changed still fails the change); on SQLite, where a statement costs no
//! round trip, each runs at once.

use std::ops::{Deref, DerefMut};

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::ClientId;
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyConnection, Describe, Either, Execute, Executor};

use crate::events::Linker;
use crate::group::Change;
use crate::{Result, Store, Writes};

/// An event appended in a transaction, not yet linked into its chain.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub client_id: ClientId,
    pub kind: EventKind,
    pub entity_id: String,
    /// JSON text, as it will be stored and hashed.
    pub payload: String,
    pub at: Timestamp,
}

/// A write transaction with the events appended in it. Dropping it without [`Tx::commit`]
/// rolls both back.
pub(crate) struct Tx {
    inner: Inner,
    pending: Vec<PendingEvent>,
    /// PostgreSQL: the writes left for the commit's statement.
    writes: Vec<Write>,
}

/// A value bound to a [`Write`].
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Arg {
    fn from(value: String) -> Arg {
        Arg::Text(Some(value))
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Arg {
        Arg::Text(Some(value.to_string()))
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Arg {
        Arg::Text(value)
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Arg {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg {
    fn from(value: Option<i64>) -> Arg {
        Arg::Int(value)
    }
}

/// Turns a database error of a write into the store's error for it (a unique index refusing a
/// second holder into a conflict, say), or `None` to leave it as it is.
type ErrorMap = Box<dyn Fn(&sqlx::Error) -> Option<crate::StoreError> + Send + Sync>;

/// One `INSERT`, `UPDATE` or `DELETE` (without `RETURNING`) for [`Tx::write_at_commit`], its
/// parameters numbered from `$1`, with the number of rows it must change.
pub(crate) struct Write {
    sql: std::borrow::Cow<'static, str>,
    args: Vec<Arg>,
    /// Rows the write must change, and the conflict's message when it changes another number.
    rows: Option<(u64, String)>,
    error: Option<ErrorMap>,
}

impl Write {
    pub fn new(sql: impl Into<std::borrow::Cow<'static, str>>) -> Write {
        Write {
            sql: sql.into(),
            args: Vec::new(),
            rows: None,
            error: None,
        }
    }

    pub fn bind(mut self, arg: impl Into<Arg>) -> Write {
        self.args.push(arg.into());
        self
    }

    /// The change fails with a conflict (`message`) unless the write changes exactly `rows`
    /// rows: the guard of a conditional update.
    pub fn expect_rows(mut self, rows: u64, message: impl Into<String>) -> Write {
        self.rows = Some((rows, message.into()));
        self
    }

    /// How a database error of this write reads to the caller.
    pub fn map_error(
        mut self,
        map: impl Fn(&sqlx::Error) -> Option<crate::StoreError> + Send + Sync + 'static,
    ) -> Write {
        self.error = Some(Box::new(map));
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        bind_all(sqlx::query(&self.sql), &self.args)
    }

    fn check(&self, changed: u64) -> Result<()> {
        match &self.rows {
            Some((rows, message)) if *rows != changed => Err(crate::StoreError::Conflict {
                message: message.clone(),
            }),
            _ => Ok(()),
        }
    }
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(value) => query.bind(value.as_deref()),
            Arg::Int(value) => query.bind(*value),
        };
    }
    query
}

/// The error of a failed write statement, as the writes in it map it.
fn mapped(err: sqlx::Error, writes: &[Write]) -> crate::StoreError {
    writes
        .iter()
        .filter_map(|write| write.error.as_ref())
        .find_map(|map| map(&err))
        .unwrap_or_else(|| err.into())
}

/// `sql` with its parameters `$n` numbered from `offset + 1`. The writes given to
/// [`Tx::write_at_commit`] hold no `$` but in their parameters.
fn shift_parameters(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// Most events queued in the commit's statement with the writes; more go in statements of
/// their own before it.
const EVENTS_WITH_WRITES_MAX: usize = 64;
/// Most parameters in one statement of writes (PostgreSQL takes up to 65,535).
const WRITE_PARAMETERS_MAX: usize = 30_000;
/// Most writes in one statement: past it (a bulk change) they go in statements of this many.
const WRITES_PER_STATEMENT_MAX: usize = 64;

/// Runs `writes` and queues `events` in one statement on `conn` (PostgreSQL): each write a
/// data-modifying `WITH` clause whose changed rows are counted, checked against what each
/// write expects.
async fn run_writes(
    conn: &mut AnyConnection,
    writes: &[Write],
    events: &[PendingEvent],
) -> Result<()> {
    let mut clauses = Vec::with_capacity(writes.len() + 1);
    let mut counts = Vec::with_capacity(writes.len());
    let mut offset = 0;
    for (n, write) in writes.iter().enumerate() {
        let sql = shift_parameters(write.sql.trim_end(), offset);
        clauses.push(format!("w{n} AS ({sql} RETURNING 1)"));
        counts.push(format!("(SELECT count(*) FROM w{n}) AS n{n}"));
        offset += write.args.len();
    }
    if !events.is_empty() {
        let rows: Vec<String> = (0..events.len())
            .map(|row| {
                let first = offset + row * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    first + 1,
                    first + 2,
                    first + 3,
                    first + 4,
                    first + 5,
                    first + 6
                )
            })
            .collect();
        clauses.push(format!(
            "q AS (INSERT INTO event_queue (client_id, at_us, kind, entity_type, entity_id, payload) VALUES {})",
            rows.join(", ")
        ));
    }
    let sql = format!("WITH {} SELECT {}", clauses.join(", "), counts.join(", "));
    let mut query = sqlx::query(&sql);
    for write in writes {
        query = bind_all(query, &write.args);
    }
    for event in events {
        query = query
            .bind(event.client_id.to_string())
            .bind(crate::rows::us(event.at))
            .bind(event.kind.code())
            .bind(event.kind.entity_type().code())
            .bind(event.entity_id.as_str())
            .bind(event.payload.as_str());
    }
    let row = query
        .fetch_one(&mut *conn)
        .await
        .map_err(|err| mapped(err, writes))?;
    for (n, write) in writes.iter().enumerate() {
        let changed: i64 = crate::rows::get(&row, &format!("n{n}"))?;
        write.check(changed as u64)?;
    }
    Ok(())
}

enum Inner {
    /// PostgreSQL: a transaction of its own on a pooled connection, and the linker told of its
    /// events once it has committed.
    Pool(sqlx::Transaction<'static, Any>, Linker),
    /// SQLite: a change in the single writer's group ([`crate::group`]).
    Group(Change),
}

impl Tx {
    /// Begins a write transaction on `store`.
    pub async fn begin(store: &Store) -> Result<Tx> {
        let inner = match &store.writes {
            Writes::Group(group) => Inner::Group(group.begin().await?),
            Writes::Queue(linker) => Inner::Pool(store.writer.begin().await?, linker.clone()),
        };
        Ok(Tx {
            inner,
            pending: Vec::new(),
            writes: Vec::new(),
        })
    }

    /// Commits the change with its events: on SQLite linked into their chains by the change's
    /// group just before it commits (this returns once the group has committed); on PostgreSQL
    /// queued with the change and linked in the background once it has committed (see the
    /// module's text).
    pub async fn commit(mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let writes = std::mem::take(&mut self.writes);
        match self.inner {
            Inner::Pool(mut tx, linker) => {
                match writes.is_empty() {
                    true => crate::events::queue_all(&mut tx, &pending).await?,
                    false if pending.len() > EVENTS_WITH_WRITES_MAX => {
                        crate::events::queue_all(&mut tx, &pending).await?;
                        run_writes(&mut tx, &writes, &[]).await?;
                    }
                    false => run_writes(&mut tx, &writes, &pending).await?,
                }
                tx.commit().await?;
                linker.committed(&pending);
            }
            Inner::Group(change) => change.commit(pending).await?,
        }
        Ok(())
    }

    /// Rolls the change and its events back.
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            Inner::Pool(tx, _) => tx.rollback().await?,
            Inner::Group(change) => change.rollback().await?,
        }
        Ok(())
    }

    /// Appends an event, to be linked into its client's chain at commit.
    pub fn push_event(&mut self, event: PendingEvent) {
        self.pending.push(event);
    }

    /// Runs `write` as part of the change: on SQLite now, on PostgreSQL with the commit's
    /// statement (see the module's text). Only for a write that nothing later in the change
    /// reads and whose rows no other write of the change touches; its expected row count and
    /// error mapping apply either way, a failed one failing the change.
    pub async fn write_at_commit(&mut self, write: Write) -> Result<()> {
        if let Inner::Group(change) = &mut self.inner {
            let done = write.query().execute(change.conn_mut()).await;
            let done = done.map_err(|err| mapped(err, std::slice::from_ref(&write)))?;
            return write.check(done.rows_affected());
        }
        let parameters: usize = self.writes.iter().map(|w| w.args.len()).sum();
        if parameters + write.args.len() > WRITE_PARAMETERS_MAX
            || self.writes.len() >= WRITES_PER_STATEMENT_MAX
        {
            let writes = std::mem::take(&mut self.writes);
            run_writes(self, &writes, &[]).await?;
        }
        self.writes.push(write);
        Ok(())
    }

    /// The events not linked yet that this transaction sees and `keep` accepts, in the order
    /// they will be linked: on SQLite those of the changes before it in its group, then its own.
    /// Copied, so the caller can go on using the transaction; `keep` limits the copy to what the
    /// caller reads.
    pub fn pending_where(&self, keep: impl Fn(&PendingEvent) -> bool) -> Vec<PendingEvent> {
        let earlier: &[PendingEvent] = match &self.inner {
            Inner::Pool(..) => &[],
            Inner::Group(change) => change.unlinked(),
        };
        earlier
            .iter()
            .chain(&self.pending)
            .filter(|event| keep(event))
            .cloned()
            .collect()
    }

    /// Links the events appended so far into their chains now (for a caller that needs an
    /// event's sequence number before it commits); returns the sequence number of the last one,
    /// if any. Events of other changes not linked yet are linked before these on PostgreSQL
    /// (committed queued: they happened first), after them on SQLite (the earlier changes of
    /// the group, linked when it commits).
    pub async fn flush_events(&mut self) -> Result<Option<u64>> {
        let pending = std::mem::take(&mut self.pending);
        crate::events::link_all(self, pending).await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            Inner::Pool(tx, _) => tx,
            Inner::Group(change) => change.conn(),
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.inner {
            Inner::Pool(tx, _) => tx,
            Inner::Group(change) => change.conn_mut(),
        }
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("pending_events", &self.pending.len())
            .field("writes_at_commit", &self.writes.len())
            .finish_non_exhaustive()
    }
}

/// Statements run on a [`Tx`] run on its connection, inside the transaction.
impl<'c> Executor<'c> for &'c mut Tx {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, std::result::Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        (&mut **self).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, std::result::Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        (&mut **self).fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, std::result::Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut **self).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, std::result::Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&mut **self).describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::shift_parameters;

    #[test]
    fn parameters_are_renumbered_after_the_writes_before() {
        assert_eq!(
            shift_parameters("UPDATE t SET a = $1 WHERE id = $2 AND b = $12", 3),
            "UPDATE t SET a = $4 WHERE id = $5 AND b = $15"
        );
        assert_eq!(
            shift_parameters("DELETE FROM t WHERE id = $1", 0),
            "DELETE FROM t WHERE id = $1"
        );
        assert_eq!(shift_parameters("SELECT 'é' || $1", 9), "SELECT 'é' || $10");
    }
}
