//! SQLite's writer: one connection whose transactions commit in groups.
//!
//! SQLite has one writer, so karya's writes queue for one connection. Each used to be its own
//! transaction, and each commit waited for the write-ahead log to reach the disk (`fsync`, as
//! `synchronous = FULL` asks). Here the connection keeps one transaction open for as long as
//! writers queue for it: each change runs inside it as a savepoint, in the order the changes got
//! the connection, and the group commits once, with one `fsync`, when the queue is empty or the
//! group is full. A change's caller hears that it committed only after the group's commit; if
//! that commit fails, every change of the group hears the error, and none of them is stored.
//!
//! A change that fails or is dropped rolls back to its savepoint and leaves the others alone.
//! The change that opens a group needs no savepoint: nothing else is in the transaction while
//! it runs, so it rolls back the transaction itself, and a change that runs alone costs no
//! more statements than a transaction of its own. A change that succeeds does not release its
//! savepoint (a round trip to the connection's thread for nothing): the next change nests its
//! own inside, every savepoint has a name of its own, and the group's `COMMIT` ends them all.
//! The group issues its transaction statements itself, not through sqlx's transaction manager,
//! whose depth count would have to follow every savepoint left open.
//! Changes in one group see the earlier ones' writes, as they would after those committed,
//! and they commit or fail together, so nothing ever depends on a write that is later lost.
//! Readers on other connections see a group's changes when it commits, as before.
//!
//! The events of a group's changes are linked into their chains once per group, just before its
//! `COMMIT`, in the order the changes ended: one head update and one insert per client instead
//! of per change. A change that reads events of changes before it in its group (the SLA clock
//! does) gets them, not linked yet, from [`Change::unlinked`].
//!
//! Who commits: a change that finds nobody queued commits the group itself; one that finds
//! others queued leaves the group open for them and makes sure a closer is queued behind them.
//! The closer takes the connection after everyone queued before it and commits. So a group
//! always ends, even when the changes queued in it are dropped before they run.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::tx::PendingEvent;
use crate::{Result, StoreError};

/// Changes committed by one group at most: bounds how many changes one failed commit takes
/// with it, and how long the first change of a group waits for the last.
pub const GROUP_MAX: usize = 64;

/// The outcome of a group's commit, as each of its changes hears it.
type Outcome = std::result::Result<(), Arc<str>>;

/// The writer shared by a store's clones.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    shared: Arc<Shared>,
}

struct Shared {
    /// The pool holding the one write connection.
    pool: AnyPool,
    slot: Arc<Mutex<Slot>>,
    /// Changes waiting for the connection: while there are any, a finished change leaves the
    /// group open for them.
    queued: AtomicUsize,
    acquire_timeout: Duration,
    /// Groups committed, and the changes they carried.
    commits: AtomicU64,
    changes: AtomicU64,
    /// Microseconds the connection was held, by changes and by commits, and by commits alone.
    busy_us: AtomicU64,
    commit_us: AtomicU64,
    /// Told after each commit: it folds the log into the database file in the background.
    checkpoints: crate::checkpoint::Checkpointer,
}

impl Shared {
    fn add_busy(&self, since: Instant) -> u64 {
        let us = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        us
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// Groups committed.
    pub commits: u64,
    /// Changes those groups carried.
    pub changes: u64,
    /// Time the write connection was held, by changes running and groups committing.
    pub busy: Duration,
    /// The part of `busy` spent committing groups.
    pub committing: Duration,
}

#[derive(Default)]
struct Slot {
    /// The write connection, once taken from the pool; kept between groups.
    conn: Option<PoolConnection<Any>>,
    /// Whether the connection has a group's transaction open.
    open: bool,
    /// Changes of the open group that are done and wait for its commit.
    done: Vec<oneshot::Sender<Outcome>>,
    /// Whether a closer is queued for the open group.
    closer: bool,
    /// Savepoints set so far on this connection, which numbers the next one's name.
    savepoints: u64,
    /// Events of the open group's changes that are done, in the order they ended: linked into
    /// their chains just before the group commits.
    unlinked: Vec<PendingEvent>,
    /// A change was dropped where nothing could roll it back (no runtime): the open group is
    /// failed, not committed, by whoever takes the connection next.
    poisoned: bool,
}

impl GroupWriter {
    pub fn new(
        pool: AnyPool,
        acquire_timeout: Duration,
        checkpoints: crate::checkpoint::Checkpointer,
    ) -> GroupWriter {
        GroupWriter {
            shared: Arc::new(Shared {
                pool,
                slot: Arc::new(Mutex::new(Slot::default())),
                queued: AtomicUsize::new(0),
                acquire_timeout,
                commits: AtomicU64::new(0),
                changes: AtomicU64::new(0),
                busy_us: AtomicU64::new(0),
                commit_us: AtomicU64::new(0),
                checkpoints,
            }),
        }
    }

    /// Starts a change: waits for the connection, opens a group if none is open, and sets the
    /// change's savepoint.
    pub async fn begin(&self) -> Result<Change> {
        let shared = &self.shared;
        let slot = {
            let _queued = Queued::enter(&shared.queued);
            tokio::time::timeout(shared.acquire_timeout, shared.slot.clone().lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
        };
        // From here on, dropping `change` hands the group on (see its `Drop`).
        let mut change = Change {
            shared: shared.clone(),
            slot: Some(slot),
            level: Level::None,
            since: Instant::now(),
        };
        let slot: &mut Slot = change.slot.as_mut().expect("held until the change ends");
        if slot.poisoned {
            abandon_group(slot, "a change was dropped and could not be rolled back").await;
        }
        if slot.conn.is_none() {
            slot.conn = Some(shared.pool.acquire().await?);
        }
        // The level is set before the statement runs: a change dropped while it waits for the
        // statement still rolls back whatever of it ran.
        if slot.open {
            slot.savepoints += 1;
            let name = slot.savepoints;
            change.level = Level::Savepoint(name);
            let conn = slot.conn.as_mut().expect("taken above");
            conn.execute(format!("SAVEPOINT karya_change_{name}").as_str())
                .await?;
        } else {
            change.level = Level::Opener;
            slot.open = true;
            let conn = slot.conn.as_mut().expect("taken above");
            // IMMEDIATE takes SQLite's write lock now, so another process writing the same
            // file makes this wait (busy_timeout) rather than fail halfway through a group.
            if let Err(err) = conn.execute("BEGIN IMMEDIATE").await {
                change.level = Level::None;
                slot.open = false;
                return Err(err.into());
            }
        }
        Ok(change)
    }

    /// Commits the open group, if any, and closes the connection. Closed here, not handed
    /// back to the pool: a connection on its way back while the pool closes can land in the
    /// closed pool's idle queue and stay open, and the last connection to close is the one that
    /// moves the write-ahead log into the database file, which a caller may then copy.
    pub async fn close(&self) {
        let mut slot = self.shared.slot.clone().lock_owned().await;
        commit_group(&self.shared, &mut slot).await;
        if let Some(conn) = slot.conn.take() {
            conn.close().await.ok();
        }
        self.shared.checkpoints.close().await;
    }

    /// Groups committed so far, the changes they carried, and how long the connection was
    /// held.
    pub fn stats(&self) -> GroupStats {
        GroupStats {
            commits: self.shared.commits.load(Ordering::Relaxed),
            changes: self.shared.changes.load(Ordering::Relaxed),
            busy: Duration::from_micros(self.shared.busy_us.load(Ordering::Relaxed)),
            committing: Duration::from_micros(self.shared.commit_us.load(Ordering::Relaxed)),
        }
    }
}

/// One change in a group: the connection, held until the change commits or rolls back.
pub(crate) struct Change {
    shared: Arc<Shared>,
    /// `None` once the change has let go of the connection.
    slot: Option<OwnedMutexGuard<Slot>>,
    /// What the change has open and must release or roll back.
    level: Level,
    /// When the change got the connection.
    since: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Nothing (the change ended, or never began).
    None,
    /// The group's transaction, which this change began: alone in it, it rolls back by
    /// rolling the transaction back.
    Opener,
    /// A savepoint inside the open group, by the number in its name.
    Savepoint(u64),
}

impl Change {
    pub fn conn(&self) -> &AnyConnection {
        let slot = self.slot.as_ref().expect("held until the change ends");
        slot.conn.as_ref().expect("set while a change runs")
    }

    pub fn conn_mut(&mut self) -> &mut AnyConnection {
        let slot = self.slot.as_mut().expect("held until the change ends");
        slot.conn.as_mut().expect("set while a change runs")
    }

    /// Events of the changes before this one in its group, which the group links when it
    /// commits; in the order they will be linked.
    pub fn unlinked(&self) -> &[PendingEvent] {
        let slot = self.slot.as_ref().expect("held until the change ends");
        &slot.unlinked
    }

    /// Ends the change (its savepoint stays, for the group's commit to end), hands its `events`
    /// to the group to link, and waits for the group to commit.
    pub async fn commit(mut self, events: Vec<PendingEvent>) -> Result<()> {
        self.level = Level::None;
        let (sender, receiver) = oneshot::channel();
        let mut slot = self.slot.take().expect("held until the change ends");
        let _ = self.shared.add_busy(self.since);
        slot.unlinked.extend(events);
        slot.done.push(sender);
        let others_queued = self.shared.queued.load(Ordering::Acquire) > 0;
        if others_queued && slot.done.len() < GROUP_MAX {
            hand_on(&self.shared, slot);
        } else {
            // Committed by a task of its own, so that a caller that stops waiting cannot
            // leave the commit half done.
            let shared = self.shared.clone();
            tokio::spawn(async move { commit_group(&shared, &mut slot).await });
        }
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Other(anyhow::anyhow!(
                "database error: the commit failed: {message}"
            ))),
            Err(_) => Err(StoreError::Other(anyhow::anyhow!(
                "database error: the write connection went away before the commit"
            ))),
        }
    }

    /// Rolls the change back (to its savepoint); the rest of its group goes on.
    pub async fn rollback(mut self) -> Result<()> {
        let level = std::mem::replace(&mut self.level, Level::None);
        let slot = self.slot.as_mut().expect("held until the change ends");
        roll_back(slot, level).await
    }
}

/// Rolls back what a change at `level` did. A savepoint that cannot be rolled back (SQLite
/// ended the transaction on an I/O error, say) leaves the group's state unknown: the group
/// fails as a whole.
async fn roll_back(slot: &mut Slot, level: Level) -> Result<()> {
    let sql = match level {
        Level::None => return Ok(()),
        Level::Opener => "ROLLBACK".to_string(),
        Level::Savepoint(name) => {
            format!(
                "ROLLBACK TO SAVEPOINT karya_change_{name}; RELEASE SAVEPOINT karya_change_{name}"
            )
        }
    };
    let Some(conn) = slot.conn.as_mut() else {
        return Ok(());
    };
    let rolled_back = conn.execute(sql.as_str()).await;
    match (level, &rolled_back) {
        (Level::Opener, Ok(_)) => slot.open = false,
        (_, Err(err)) => abandon_group(slot, &err.to_string()).await,
        _ => {}
    }
    rolled_back?;
    Ok(())
}

impl Drop for Change {
    fn drop(&mut self) {
        let Some(mut slot) = self.slot.take() else {
            return;
        };
        let _ = self.shared.add_busy(self.since);
        let level = std::mem::replace(&mut self.level, Level::None);
        if level == Level::None {
            if slot.open {
                hand_on(&self.shared, slot);
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to roll back on (the process is ending): the next to take the
            // connection fails the group instead of committing it.
            slot.poisoned = true;
            return;
        };
        // Dropped mid-change (an error returned early, or its caller went away): the rollback
        // runs before the connection serves anyone else, as the task holds it meanwhile.
        let shared = self.shared.clone();
        runtime.spawn(async move {
            roll_back(&mut slot, level).await.ok();
            if slot.open {
                hand_on(&shared, slot);
            }
        });
    }
}

/// Fails the open group: rolls its transaction back, closes the connection (its state is not
/// trusted again; the pool opens a fresh one) and tells the group's changes.
async fn abandon_group(slot: &mut Slot, reason: &str) {
    tracing::error!(
        reason,
        changes = slot.done.len(),
        "a group of changes failed"
    );
    if let Some(mut conn) = slot.conn.take() {
        conn.execute("ROLLBACK").await.ok();
        conn.close().await.ok();
    }
    slot.open = false;
    slot.poisoned = false;
    slot.unlinked.clear();
    let outcome: Outcome = Err(Arc::from(reason));
    for change in std::mem::take(&mut slot.done) {
        change.send(outcome.clone()).ok();
    }
}

/// Lets go of the connection with the group still open, making sure a closer will commit it.
fn hand_on(shared: &Arc<Shared>, mut slot: OwnedMutexGuard<Slot>) {
    if slot.closer {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // No runtime to queue a closer on (the process is ending): the next change to begin
        // joins the open group and commits it.
        return;
    };
    slot.closer = true;
    drop(slot);
    let shared = shared.clone();
    runtime.spawn(async move {
        let mut slot = shared.slot.clone().lock_owned().await;
        slot.closer = false;
        commit_group(&shared, &mut slot).await;
    });
}

/// Commits the open group and tells its changes the outcome.
async fn commit_group(shared: &Shared, slot: &mut Slot) {
    if slot.poisoned {
        abandon_group(slot, "a change was dropped and could not be rolled back").await;
        return;
    }
    let done = std::mem::take(&mut slot.done);
    if !slot.open {
        debug_assert!(done.is_empty(), "done changes only wait in an open group");
        return;
    }
    slot.open = false;
    let Some(conn) = slot.conn.as_mut() else {
        return;
    };
    let since = Instant::now();
    let unlinked = std::mem::take(&mut slot.unlinked);
    let linked = match unlinked.is_empty() {
        true => Ok(()),
        false => crate::events::link_all(conn, unlinked).await.map(|_| ()),
    };
    let committed = match linked {
        Ok(()) => conn
            .execute("COMMIT")
            .await
            .map(|_| ())
            .map_err(StoreError::from),
        Err(err) => Err(err),
    };
    let outcome = match committed {
        Ok(()) => {
            shared.checkpoints.committed();
            shared.commits.fetch_add(1, Ordering::Relaxed);
            shared
                .changes
                .fetch_add(done.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        Err(err) => {
            tracing::error!(error = %err, changes = done.len(), "a group commit failed");
            // Whatever state the failed commit left, the connection is not trusted again:
            // roll back what may be left and let the pool open a fresh one.
            conn.execute("ROLLBACK").await.ok();
            if let Some(conn) = slot.conn.take() {
                conn.close().await.ok();
            }
            Err(Arc::from(err.to_string()))
        }
    };
    let took = shared.add_busy(since);
    shared.commit_us.fetch_add(took, Ordering::Relaxed);
    for change in done {
        change.send(outcome.clone()).ok();
    }
}

/// Counts a change as queued for the connection while it waits, however the wait ends.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(count: &'a AtomicUsize) -> Queued<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Queued(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::future::Future;
    use std::path::PathBuf;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use sqlx::Connection;

    use karya_core::id::ClientId;
    use karya_core::money::Currency;

    use crate::tx::Tx;
    use crate::{Store, StoreOptions};

    struct Db {
        store: Store,
        url: String,
        dir: PathBuf,
    }

    impl Db {
        async fn open() -> Db {
            let dir =
                std::env::temp_dir().join(format!("karya-group-{}", uuid::Uuid::now_v7().simple()));
            let url = format!("sqlite://{}/karya.db", dir.display());
            let store = Store::open(&url, &StoreOptions::default())
                .await
                .expect("open sqlite");
            // `parent` is checked at commit, so a change can be fine on its own and still make
            // its group's commit fail.
            store
                .execute_raw_for_tests(
                    "CREATE TABLE probe_parents (n INTEGER PRIMARY KEY);
                     INSERT INTO probe_parents (n) VALUES (1);
                     CREATE TABLE probes (n INTEGER PRIMARY KEY,
                        parent INTEGER NOT NULL REFERENCES probe_parents (n) DEFERRABLE INITIALLY DEFERRED)",
                )
                .await
                .expect("create the probe tables");
            Db { store, url, dir }
        }

        /// The probes as a separate connection sees them: only what was committed.
        async fn stored(&self) -> BTreeSet<i64> {
            let mut conn = sqlx::AnyConnection::connect(&self.url)
                .await
                .expect("connect");
            let rows: Vec<(i64,)> = sqlx::query_as("SELECT n FROM probes")
                .fetch_all(&mut conn)
                .await
                .expect("read probes");
            conn.close().await.ok();
            rows.into_iter().map(|(n,)| n).collect()
        }

        fn queued(&self) -> usize {
            let group = self
                .store
                .group_writer()
                .expect("sqlite has a group writer");
            group.shared.queued.load(Ordering::Acquire)
        }

        /// Waits until `n` changes wait for the connection.
        async fn until_queued(&self, n: usize) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while self.queued() < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{n} changes never queued"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        async fn finish(self) {
            self.store.close().await;
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    /// What one change does.
    #[derive(Debug, Clone, Copy)]
    enum Plan {
        Commit,
        /// Inserts, then rolls back on purpose.
        Rollback,
        /// Inserts, then returns early: the transaction is dropped.
        Drop,
        /// Inserts, then hits a duplicate key: a failed statement.
        Duplicate,
        /// Inserts a row its group's commit refuses.
        BadParent,
    }

    async fn insert(tx: &mut Tx, n: i64, parent: i64) -> crate::Result<()> {
        sqlx::query("INSERT INTO probes (n, parent) VALUES ($1, $2)")
            .bind(n)
            .bind(parent)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Runs one change; `Ok` means its caller was told it committed.
    async fn change(store: Store, n: i64, plan: Plan, taken: i64) -> crate::Result<()> {
        let mut tx = Tx::begin(&store).await?;
        let parent = match plan {
            Plan::BadParent => 99,
            _ => 1,
        };
        insert(&mut tx, n, parent).await?;
        match plan {
            Plan::Commit | Plan::BadParent => tx.commit().await,
            Plan::Rollback => {
                tx.rollback().await?;
                Err(crate::StoreError::Rejected {
                    message: "rolled back".into(),
                })
            }
            Plan::Drop => Err(crate::StoreError::Rejected {
                message: "dropped".into(),
            }),
            Plan::Duplicate => {
                insert(&mut tx, taken, 1).await?;
                unreachable!("the duplicate insert fails")
            }
        }
    }

    /// Holds the connection while `plans` queue behind it, then commits `gate`, so that the
    /// changes run as one group (or more, past `GROUP_MAX`); returns each change's outcome.
    async fn grouped(db: &Db, gate: i64, plans: &[(i64, Plan)], taken: i64) -> Vec<bool> {
        let mut tx = Tx::begin(&db.store).await.expect("begin the gate");
        insert(&mut tx, gate, 1).await.expect("gate insert");
        let handles: Vec<_> = plans
            .iter()
            .map(|&(n, plan)| tokio::spawn(change(db.store.clone(), n, plan, taken)))
            .collect();
        db.until_queued(plans.len()).await;
        let gate_ok = tx.commit().await.is_ok();
        let mut outcomes = vec![gate_ok];
        for handle in handles {
            outcomes.push(handle.await.expect("change task").is_ok());
        }
        outcomes
    }

    fn run<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    async fn event(tx: &mut Tx, client_id: ClientId, name: &str) {
        let kind = karya_core::event::EventKind::WorkItemCreated;
        let now = jiff::Timestamp::now();
        crate::events::append(tx, client_id, kind, name, &serde_json::json!({}), now)
            .await
            .expect("append");
    }

    /// The events of a group's changes are linked as the group commits, in the order the
    /// changes ended; a change sees those of the changes before it in its group, not yet linked;
    /// a change rolled back leaves no event.
    #[test]
    fn a_groups_events_are_linked_at_its_commit_and_seen_by_later_changes() {
        run(async {
            let db = Db::open().await;
            let client_id = ClientId::from_uuid(uuid::Uuid::now_v7());
            let now = jiff::Timestamp::now();
            db.store
                .create_client(client_id, "Grouped", Currency::USD, now)
                .await
                .expect("client");
            let commits_before = db.store.group_stats().expect("sqlite").commits;
            let mut gate = Tx::begin(&db.store).await.expect("begin the gate");
            event(&mut gate, client_id, "gate").await;
            let spawn = |name: &'static str, keep: bool| {
                let store = db.store.clone();
                tokio::spawn(async move {
                    let mut tx = Tx::begin(&store).await?;
                    event(&mut tx, client_id, name).await;
                    let seen: Vec<String> = tx
                        .pending_where(|_| true)
                        .into_iter()
                        .map(|e| e.entity_id)
                        .collect();
                    match keep {
                        true => tx.commit().await?,
                        false => tx.rollback().await?,
                    }
                    Ok::<_, StoreError>(seen)
                })
            };
            // The connection's lock is fair: the changes run in the order they queued.
            let first = spawn("first", true);
            db.until_queued(1).await;
            let dropped = spawn("dropped", false);
            db.until_queued(2).await;
            let last = spawn("last", true);
            db.until_queued(3).await;
            gate.commit().await.expect("the gate commits");
            let seen = |handle: tokio::task::JoinHandle<Result<Vec<String>>>| async move {
                handle.await.expect("change task").expect("change")
            };
            assert_eq!(seen(first).await, ["gate", "first"]);
            assert_eq!(seen(dropped).await, ["gate", "first", "dropped"]);
            assert_eq!(seen(last).await, ["gate", "first", "last"]);
            let commits = db.store.group_stats().expect("sqlite").commits;
            assert_eq!(commits, commits_before + 1, "one group");
            let events = db
                .store
                .tenant(client_id)
                .events(&crate::PageRequest::default())
                .await
                .expect("events");
            let linked: Vec<&str> = events.items.iter().map(|e| e.entity_id.as_str()).collect();
            assert_eq!(&linked[1..], ["gate", "first", "last"]);
            let audit = db.store.audit(Some(client_id)).await.expect("audit");
            assert!(audit.intact(), "{:?}", audit.first_break());
            db.finish().await;
        });
    }

    #[test]
    fn changes_queued_behind_a_change_commit_with_it() {
        run(async {
            let db = Db::open().await;
            let plans = [(10, Plan::Commit), (11, Plan::Commit), (12, Plan::Commit)];
            let group = db.store.group_writer().cloned().expect("group writer");
            let before = group.stats();
            let outcomes = grouped(&db, 1, &plans, 1).await;
            assert_eq!(outcomes, [true; 4]);
            assert_eq!(db.stored().await, BTreeSet::from([1, 10, 11, 12]));
            let after = group.stats();
            assert_eq!(
                (after.commits, after.changes),
                (before.commits + 1, before.changes + 4),
                "the four changes commit together"
            );
            assert!(after.busy > before.busy, "the changes held the connection");
            db.finish().await;
        });
    }

    #[test]
    fn savepoints_left_open_by_a_full_group_nest_and_commit_together() {
        run(async {
            let db = Db::open().await;
            let group = db.store.group_writer().cloned().expect("group writer");
            // More changes than one group takes, every seventh failing in its own way: the
            // ones that succeed leave their savepoints open, nested, and a failure rolls back
            // only its own.
            let plans: Vec<(i64, Plan)> = (0..(2 * GROUP_MAX as i64 + 32))
                .map(|k| {
                    let plan = match k % 7 {
                        3 => Plan::Rollback,
                        5 => Plan::Drop,
                        6 => Plan::Duplicate,
                        _ => Plan::Commit,
                    };
                    (100 + k, plan)
                })
                .collect();
            let before = group.stats();
            let outcomes = grouped(&db, 1, &plans, 1).await;
            let expected: BTreeSet<i64> = std::iter::once(1)
                .chain(
                    plans
                        .iter()
                        .filter(|(_, plan)| matches!(plan, Plan::Commit))
                        .map(|(n, _)| *n),
                )
                .collect();
            assert_eq!(db.stored().await, expected);
            for ((n, plan), ok) in plans.iter().zip(&outcomes[1..]) {
                assert_eq!(*ok, matches!(plan, Plan::Commit), "change {n} ({plan:?})");
            }
            let after = group.stats();
            assert!(
                after.commits >= before.commits + 2,
                "past {GROUP_MAX} changes a group commits and the next one opens"
            );
            // The connection is clean for the next change after all that nesting.
            let outcomes = grouped(&db, 2, &[(500, Plan::Commit)], 1).await;
            assert_eq!(outcomes, [true, true]);
            db.finish().await;
        });
    }

    #[test]
    fn a_change_dropped_outside_any_runtime_is_never_committed() {
        run(async {
            let db = Db::open().await;
            let mut tx = Tx::begin(&db.store).await.expect("begin");
            insert(&mut tx, 7, 1).await.expect("insert");
            // Dropped on a thread with no runtime: nothing can roll it back there and then.
            std::thread::spawn(move || drop(tx))
                .join()
                .expect("drop thread");
            // The next change finds the group failed, starts afresh, and commits on its own.
            let outcomes = grouped(&db, 8, &[(9, Plan::Commit)], 1).await;
            assert_eq!(outcomes, [true, true]);
            assert_eq!(db.stored().await, BTreeSet::from([8, 9]));
            db.finish().await;
        });
    }

    #[test]
    fn a_failed_change_leaves_the_rest_of_its_group_alone() {
        run(async {
            let db = Db::open().await;
            let plans = [
                (10, Plan::Rollback),
                (11, Plan::Commit),
                (12, Plan::Drop),
                (13, Plan::Duplicate),
                (14, Plan::Commit),
            ];
            let outcomes = grouped(&db, 1, &plans, 1).await;
            assert_eq!(outcomes, [true, false, true, false, false, true]);
            assert_eq!(db.stored().await, BTreeSet::from([1, 11, 14]));
            db.finish().await;
        });
    }

    #[test]
    fn a_group_opener_that_fails_leaves_the_changes_queued_behind_it_alone() {
        run(async {
            let db = Db::open().await;
            change(db.store.clone(), 1_000_000, Plan::Commit, 1)
                .await
                .expect("the row the duplicate collides with");
            for (n, fail) in [
                (1, Plan::Drop),
                (100, Plan::Rollback),
                (200, Plan::Duplicate),
            ] {
                let store = db.store.clone();
                let (began, has_begun) = oneshot::channel();
                let (go, proceed) = oneshot::channel::<()>();
                let opener = tokio::spawn(async move {
                    let mut tx = Tx::begin(&store).await.expect("begin");
                    insert(&mut tx, n, 1).await.expect("insert");
                    began.send(()).ok();
                    proceed.await.ok();
                    match fail {
                        Plan::Rollback => tx.rollback().await.expect("rollback"),
                        Plan::Duplicate => {
                            insert(&mut tx, 1_000_000, 1).await.expect_err("duplicate");
                        }
                        _ => drop(tx),
                    }
                });
                has_begun.await.expect("the opener began");
                let queued: Vec<_> = (1..=3)
                    .map(|i| tokio::spawn(change(db.store.clone(), n + i, Plan::Commit, 1)))
                    .collect();
                db.until_queued(3).await;
                go.send(()).ok();
                opener.await.expect("opener task");
                for handle in queued {
                    handle
                        .await
                        .expect("task")
                        .expect("a change queued behind the opener");
                }
            }
            let expected: BTreeSet<i64> = [2, 3, 4, 101, 102, 103, 201, 202, 203, 1_000_000].into();
            assert_eq!(db.stored().await, expected);
            db.finish().await;
        });
    }

    /// Closing the store closes every connection, so the write-ahead log is folded into the
    /// database file and removed, and the file alone holds everything (the demo copies it).
    #[test]
    fn closing_the_store_leaves_everything_in_the_database_file() {
        run(async {
            for round in 0..20 {
                let db = Db::open().await;
                change(db.store.clone(), round, Plan::Commit, 1)
                    .await
                    .expect("a change");
                let _: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM probes")
                    .fetch_one(&db.store.reader)
                    .await
                    .expect("a read");
                db.store.close().await;
                let file = db.dir.join("karya.db");
                let wal = db.dir.join("karya.db-wal");
                assert!(
                    !wal.exists(),
                    "round {round}: a connection outlived the store's close"
                );
                let copy = db.dir.join("copy.db");
                std::fs::copy(&file, &copy).expect("copy the database file");
                let url = format!("sqlite://{}", copy.display());
                let mut conn = sqlx::AnyConnection::connect(&url)
                    .await
                    .expect("open the copy");
                let (n,): (i64,) = sqlx::query_as("SELECT n FROM probes")
                    .fetch_one(&mut conn)
                    .await
                    .expect("the change is in the copied file");
                assert_eq!(n, round);
                conn.close().await.ok();
                std::fs::remove_dir_all(&db.dir).ok();
            }
        });
    }

    #[test]
    fn a_failed_commit_fails_every_change_of_its_group_and_stores_none() {
        run(async {
            let db = Db::open().await;
            let plans = [
                (10, Plan::Commit),
                (11, Plan::BadParent),
                (12, Plan::Commit),
            ];
            let outcomes = grouped(&db, 1, &plans, 1).await;
            assert_eq!(outcomes, [false; 4]);
            assert_eq!(db.stored().await, BTreeSet::new());
            // The writer goes on, on a fresh connection.
            change(db.store.clone(), 20, Plan::Commit, 1)
                .await
                .expect("a change after the failed group");
            assert_eq!(db.stored().await, BTreeSet::from([20]));
            db.finish().await;
        });
    }

    #[test]
    fn a_change_cancelled_while_it_holds_the_connection_is_rolled_back() {
        run(async {
            let db = Db::open().await;
            let (inserted, was_inserted) = oneshot::channel();
            let store = db.store.clone();
            let stuck = tokio::spawn(async move {
                let mut tx = Tx::begin(&store).await.expect("begin");
                insert(&mut tx, 5, 1).await.expect("insert");
                inserted.send(()).ok();
                std::future::pending::<()>().await;
                tx.commit().await
            });
            was_inserted.await.expect("the stuck change inserted");
            let after = tokio::spawn(change(db.store.clone(), 6, Plan::Commit, 1));
            db.until_queued(1).await;
            stuck.abort();
            after
                .await
                .expect("task")
                .expect("the change after the cancelled one");
            assert_eq!(db.stored().await, BTreeSet::from([6]));
            db.finish().await;
        });
    }

    fn plan() -> impl Strategy<Value = Plan> {
        prop_oneof![
            6 => Just(Plan::Commit),
            1 => Just(Plan::Rollback),
            1 => Just(Plan::Drop),
            1 => Just(Plan::Duplicate),
            1 => Just(Plan::BadParent),
        ]
    }

    /// Whatever mix of changes shares the writer, a change is stored if and only if its caller
    /// was told it committed, and a group whose commit fails stores none of its changes.
    #[test]
    fn a_change_is_stored_exactly_when_it_was_acknowledged() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let db = runtime.block_on(Db::open());
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let case = std::sync::atomic::AtomicI64::new(0);
        runner
            .run(
                &(proptest::collection::vec(plan(), 1..12), any::<bool>()),
                |(plans, gated)| {
                    let base = case.fetch_add(1, Ordering::AcqRel) * 1000 + 1000;
                    let taken = base + 999;
                    runtime
                        .block_on(change(db.store.clone(), taken, Plan::Commit, 1))
                        .unwrap();
                    let plans: Vec<(i64, Plan)> = plans
                        .into_iter()
                        .enumerate()
                        .map(|(i, plan)| (base + 1 + i as i64, plan))
                        .collect();
                    let outcomes = runtime.block_on(async {
                        if gated {
                            grouped(&db, base, &plans, taken).await
                        } else {
                            let handles: Vec<_> = plans
                                .iter()
                                .map(|&(n, plan)| {
                                    tokio::spawn(change(db.store.clone(), n, plan, taken))
                                })
                                .collect();
                            let mut outcomes = Vec::new();
                            for handle in handles {
                                outcomes.push(handle.await.expect("change task").is_ok());
                            }
                            outcomes
                        }
                    });
                    let ids: Vec<i64> = match gated {
                        true => std::iter::once(base)
                            .chain(plans.iter().map(|p| p.0))
                            .collect(),
                        false => plans.iter().map(|p| p.0).collect(),
                    };
                    let acknowledged: BTreeSet<i64> = ids
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, ok)| **ok)
                        .map(|(n, _)| *n)
                        .collect();
                    let stored: BTreeSet<i64> = runtime
                        .block_on(db.stored())
                        .into_iter()
                        .filter(|n| (base..taken).contains(n))
                        .collect();
                    prop_assert_eq!(&stored, &acknowledged);
                    if gated && plans.iter().any(|p| matches!(p.1, Plan::BadParent)) {
                        prop_assert!(stored.is_empty(), "a failed group stored {:?}", stored);
                    }
                    Ok(())
                },
            )
            .unwrap();
        runtime.block_on(db.finish());
    }
}
