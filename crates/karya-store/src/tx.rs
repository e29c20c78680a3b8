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
        })
    }

    /// Commits the change with its events: on SQLite linked into their chains by the change's
    /// group just before it commits (this returns once the group has committed); on PostgreSQL
    /// queued with the change and linked in the background once it has committed (see the
    /// module's text).
    pub async fn commit(mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        match self.inner {
            Inner::Pool(mut tx, linker) => {
                crate::events::queue_all(&mut tx, &pending).await?;
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
