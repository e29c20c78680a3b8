//! karya's persistence: one [`Store`] over two engines, SQLite (the embedded default) and
//! PostgreSQL (several nodes sharing one database).
//!
//! This is the only crate that writes SQL. Its public API speaks in `karya-core` types and
//! plain Rust values; no `sqlx` type crosses it.
//!
//! # Invariants
//! - Every state change is written with its event in the same transaction ([`events`]), and
//!   each client's events form a hash chain ([`karya_core::chain`]).
//! - Tenant data is read and written through [`Tenant`], which carries the client id into every
//!   query; another client's id reads exactly like a missing one.
//! - A task has at most one active assignment, enforced by a partial unique index as well as by
//!   the claim logic.
//!
//! # Layout
//! - [`open`](Store::open): engine selection by URL, connection set-up, start-up checks.
//! - `migrate`: versioned schema per engine, refusing a newer schema than this build knows.
//! - `events`: appending to and verifying the chain.
//! - `clients`, `work`: the use cases, one method each.
//!
//! SQLite runs all writes through a single connection (the single-writer path), so writers
//! queue in the process instead of failing with `SQLITE_BUSY`, and the changes queued together
//! commit together (`group`); reads use a pool of their own.
//! PostgreSQL uses one pool and row locks (`FOR UPDATE SKIP LOCKED` for claims).

pub mod attrs;
mod bars;
mod case;
mod checkpoint;
mod clients;
mod consensus;
mod decisions;
mod documents;
mod events;
mod flow;
mod group;
mod intake;
mod lapses;
mod leader;
mod leave;
mod migrate;
mod monitor;
mod offers;
mod outputs;
mod qa;
mod reassign;
mod reports;
mod routing;
mod rows;
mod shifts;
mod sites;
mod sla;
mod tx;
mod users;
mod views;
mod webhooks;
mod work;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use bars::{ClaimBar, BAR_CHECK_BATCH_MAX};
pub use case::CaseQuery;
pub use consensus::{
    ConsensusDetail, ConsensusGroup, ConsensusState, KeyedAnswer, KeyingOutcome, NewConsensusGroup,
    ADJUDICATION_STEP_SUFFIX,
};
pub use decisions::{designation_from_code, NewDecision, PolicyReport, StoredDecision};
pub use documents::{sha256_hex, Document, NewDocument};
pub use events::{AuditReport, ChainStatus, StoredEvent, FIRM_CHAIN};
pub use flow::{jobs_queued, Deliverable, Job, JobFailed, Submission, JOB_ATTEMPTS_MAX, JOB_LEASE};
pub use group::GroupStats;
pub use intake::{
    ImportOutcome, ImportProblem, ImportRefusal, ImportRowError, ImportSummary,
    IMPORT_ROW_ERRORS_MAX,
};
pub use lapses::{Lapsed, LapsedWork, LAPSE_BATCH_MAX};
pub use leader::{Leadership, LEADER_CHECK_TIMEOUT, LEADER_LOCK_KEY};
pub use leave::{StoredLeave, LEAVE_LENGTH_MAX, LEAVE_MAX, LEAVE_NOTE_LEN_MAX};
pub use migrate::SCHEMA_VERSION;
pub use monitor::{WatchedItem, QUEUE_SCAN_MAX, WATCH_PAGE_MAX};
pub use offers::{
    outcome_code, Claim, Holdings, NewOffer, OfferMade, RankedTask, StoredOffer, Units,
    EXPIRE_BATCH_MAX, RANKED_CLAIM_MAX, REFUSALS_MAX, ROUND_WORKERS_MAX, WORKER_OFFERS_MAX,
};
pub use qa::{AccuracyReport, NewReview, QaPolicy, ReviewOutcome, SubmitOutcome, WorkerAccuracy};
pub use reassign::{Reassigned, Reassignment, REASSIGNABLE, REASSIGN_REASON_LEN_MAX};
pub use reports::PeriodReport;
pub use routing::{
    explanation_json, requirements_json, workflow_json, GrowthFlag, RoutableTask, RoutedWorker,
    StoredExplanation, WorkerRouting, WorkerRoutingExtras, ROUTABLE_PAGE_MAX,
};
pub use shifts::{ShiftChange, SHIFT_SCAN_MAX};
pub use sites::{SiteQueueCount, CALENDARS_MAX, SITES_MAX};
pub use sla::{
    CalendarRef, CalendarSpec, EngagementSla, MilestoneState, RecomputeReport, SlaMetrics,
    SlaState, CLOCK_START_BATCH, HISTOGRAM_BUCKETS_S,
};
pub use users::{ApiToken, NewUser, User};
pub use views::{ItemDates, QueueCount, ReviewLine, RiskItem, VIEW_ROWS_MAX};
pub use webhooks::{
    webhook_lease_until, AttemptRecord, DueWebhook, NewWebhook, NextStep, Webhook, WebhookAttempt,
    ATTEMPT_ERROR_CHARS_MAX, WEBHOOKS_PER_CLIENT_MAX, WEBHOOK_CLAIM_MAX,
};
pub use work::{NewEngagement, NewTask, NewWorkItem, WorkItemFilter};

/// Page size limit for every listing: large enough for a screen or an export batch, small
/// enough that one request cannot pull a tenant's whole history into memory.
pub const PAGE_LIMIT_MAX: u32 = 500;

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// What can go wrong in the store that a caller may want to act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such thing, or it belongs to another client (the two are indistinguishable).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The change collides with stored data: a duplicate, or a concurrent change.
    #[error("{message}")]
    Conflict { message: String },
    /// The change breaks a domain rule (an illegal state transition, an invalid value).
    #[error("{message}")]
    Rejected { message: String },
    /// The database holds a newer schema than this build of karya knows.
    #[error("database schema is at version {found}, newer than this karya knows ({known}): upgrade karya")]
    SchemaTooNew { found: i64, known: i64 },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    fn not_found(kind: &'static str, id: impl ToString) -> StoreError {
        StoreError::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> StoreError {
        StoreError::Other(anyhow::Error::new(err).context("database error"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of a listing, in id order (ids sort by creation time).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_after: Option<String>,
}

/// Which page of a listing to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// At most this many items, capped at [`PAGE_LIMIT_MAX`]; 0 means the default of 50.
    pub limit: u32,
    /// Only items whose id sorts after this one.
    pub after: Option<String>,
}

impl PageRequest {
    fn limit(&self) -> i64 {
        match self.limit {
            0 => 50,
            n => i64::from(n.min(PAGE_LIMIT_MAX)),
        }
    }
}

/// Tuning for [`Store::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool: all connections on PostgreSQL; on SQLite the most readers
    /// (at most twice the cores are opened).
    pub max_connections: u32,
    /// How long to wait for a connection or a lock before giving up.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The handle to karya's database. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    /// Where writes go. On SQLite a pool of exactly one connection, which the group writer holds.
    writer: AnyPool,
    /// How changes are written.
    writes: Writes,
    /// Where reads go. On PostgreSQL the same pool as `writer`.
    reader: AnyPool,
}

/// How a store's changes reach the database and their events the chains.
#[derive(Clone)]
enum Writes {
    /// SQLite: the single writer's changes, committed in groups that link their events.
    Group(group::GroupWriter),
    /// PostgreSQL: a transaction per change, its events queued with it and linked after it
    /// commits, in the background.
    Queue(events::Linker),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://path` or `postgres://...`), creating a SQLite
    /// file and its directory if missing, checks its settings and brings its schema up to date.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            open_sqlite(url, options).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            open_postgres(url, options).await?
        } else {
            return Err(StoreError::Rejected {
                message: format!(
                    "unsupported database url {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
                    redact_url(url)
                ),
            });
        };
        migrate::run(&store).await?;
        let linked = store.link_queued_events().await?;
        if linked > 0 {
            tracing::info!(linked, "linked events left queued by an earlier run");
        }
        Ok(store)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Answers whether the database responds (for health checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Runs SQLite's own consistency check (`PRAGMA integrity_check`); `Ok(())` when the file is
    /// sound. On PostgreSQL there is no equivalent and this only pings.
    pub async fn integrity_check(&self) -> Result<()> {
        match self.engine {
            Engine::Sqlite => {
                let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
                    .fetch_all(&self.reader)
                    .await?;
                let report: Vec<String> = rows.into_iter().map(|(line,)| line).collect();
                if report != ["ok"] {
                    return Err(anyhow::anyhow!(
                        "sqlite integrity check failed: {}",
                        report.join("; ")
                    )
                    .into());
                }
                Ok(())
            }
            Engine::Postgres => self.ping().await,
        }
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.writes {
            Writes::Group(group) => group.close().await,
            // A clean stop leaves nothing queued.
            Writes::Queue(_) => {
                if let Err(err) = self.link_queued_events().await {
                    tracing::warn!(error = %err, "events left queued at close; the next start links them");
                }
            }
        }
        close_fully(&self.writer).await;
        close_fully(&self.reader).await;
    }

    /// SQLite's writer of grouped changes; `None` on PostgreSQL.
    #[cfg(test)]
    pub(crate) fn group_writer(&self) -> Option<&group::GroupWriter> {
        match &self.writes {
            Writes::Group(group) => Some(group),
            Writes::Queue(_) => None,
        }
    }

    /// On SQLite, what the writer did so far: group commits, the changes they carried and
    /// the time the write connection was held ([`group`](crate::group)); `None` on PostgreSQL.
    pub fn group_stats(&self) -> Option<group::GroupStats> {
        match &self.writes {
            Writes::Group(group) => Some(group.stats()),
            Writes::Queue(_) => None,
        }
    }

    /// Access to one client's data. Every method of [`Tenant`] is scoped to `client_id`.
    pub fn tenant(&self, client_id: karya_core::id::ClientId) -> Tenant {
        Tenant {
            store: self.clone(),
            client_id,
        }
    }

    /// Runs a raw statement. For tests that must tamper with or inspect the database as an
    /// attacker or an operator with direct access would; never used by karya itself.
    #[doc(hidden)]
    pub async fn execute_raw_for_tests(&self, sql: &str) -> Result<u64> {
        let mut tx = tx::Tx::begin(self).await?;
        let done = sqlx::raw_sql(sql).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

/// One client's slice of the store.
#[derive(Clone, Debug)]
pub struct Tenant {
    store: Store,
    client_id: karya_core::id::ClientId,
}

impl Tenant {
    pub fn client_id(&self) -> karya_core::id::ClientId {
        self.client_id
    }
}

/// How much of a SQLite database file its connections map into memory (256 MiB of address
/// space, not of memory: pages are loaded as they are touched).
const MMAP_PRAGMA: &str = "PRAGMA mmap_size = 268435456";

async fn open_sqlite(url: &str, options: &StoreOptions) -> Result<Store> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Rejected {
            message: "sqlite needs a file path (sqlite://karya-data/karya.db): the write-ahead log needs a file".into(),
        });
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|err| {
            anyhow::anyhow!("cannot create database directory {}: {err}", dir.display())
        })?;
    }
    let connect = AnyConnectOptions::from_str(&format!("sqlite://{path}?mode=rwc"))?
        .disable_statement_logging();
    // `mapped`: a reader's connection; otherwise the writer's (or the checkpointer's).
    let pool_options = |max: u32, mapped: bool| {
        AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(options.acquire_timeout)
            // A SQLite connection is a file handle in this process, not a socket that can
            // go stale: testing it before every use would cost a round trip to its thread
            // for every read.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; FULL syncs the log on every commit,
                    // so an acknowledged write survives power loss, not only a crash.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    // The pages a savepoint changes are copied to a sub-journal so that it can
                    // roll back: kept in memory, not in a temporary file, as every change of a
                    // group commit runs in a savepoint.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    // Every commit of the writer empties the readers' page caches (WAL), so
                    // each read would copy its pages in again through read(2); mapped, the
                    // database file's pages are read in place. The writer's own cache stays
                    // valid across its commits, and a growing file would be mapped anew, so it
                    // reads as before. Writes always go through the log.
                    if mapped {
                        conn.execute(MMAP_PRAGMA).await?;
                    } else {
                        // No checkpoint inside the writer's commits: the checkpointer runs
                        // them on a connection of its own (`checkpoint`).
                        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                    }
                    Ok(())
                })
            })
    };
    let writer = pool_options(1, false).connect_with(connect.clone()).await?;
    let checkpoints = pool_options(1, false).connect_with(connect.clone()).await?;
    let reader = pool_options(sqlite_readers(options.max_connections), true)
        .connect_with(connect)
        .await?;
    let store = Store {
        engine: Engine::Sqlite,
        writes: Writes::Group(group::GroupWriter::new(
            writer.clone(),
            options.acquire_timeout,
            checkpoint::Checkpointer::start(checkpoints),
        )),
        writer,
        reader,
    };
    check_sqlite_settings(&store).await?;
    Ok(store)
}

/// Closes a pool and every connection of it. `Pool::close` can return while a connection is on
/// its way back (the pool checks a returned connection before taking it), and that one then
/// stays open in the closed pool; closing again closes it. On SQLite the last connection to
/// close folds the write-ahead log into the database file, which callers may then copy.
async fn close_fully(pool: &AnyPool) {
    for _ in 0..200 {
        pool.close().await;
        if pool.size() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!(
        open = pool.size(),
        "connections still open after closing their pool"
    );
}

/// Reader connections on SQLite: each is a thread of its own, and reads are CPU work, so more
/// readers than about twice the cores only crowd the cores, the writer's thread among them
/// (the lifecycle benchmark on 2 cores: 16 readers 192 items/s, 4 readers 256-265).
fn sqlite_readers(max_connections: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    (2 * cores).clamp(2, max_connections.max(2))
}

/// Refuses to run on a SQLite connection whose durability settings did not take.
async fn check_sqlite_settings(store: &Store) -> Result<()> {
    let (journal_mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&store.writer)
        .await?;
    let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(&store.writer)
        .await?;
    let (autocheckpoint,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(&store.writer)
        .await?;
    // synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    if !journal_mode.eq_ignore_ascii_case("wal") || synchronous < 2 || autocheckpoint != 0 {
        return Err(anyhow::anyhow!(
            "sqlite settings did not take: journal_mode={journal_mode}, synchronous={synchronous}, wal_autocheckpoint={autocheckpoint} (want wal, full and 0)"
        )
        .into());
    }
    Ok(())
}

async fn open_postgres(url: &str, options: &StoreOptions) -> Result<Store> {
    let connect = AnyConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(options.max_connections.max(2))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to {}: {err}", redact_url(url)))?;
    Ok(Store {
        engine: Engine::Postgres,
        writes: Writes::Queue(events::Linker::start(pool.clone())),
        writer: pool.clone(),
        reader: pool,
    })
}

/// The URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Runs `body` on a store over a fresh SQLite file in a temporary directory, then closes the
/// store and removes the directory.
#[cfg(test)]
pub(crate) fn with_temp_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let dir = std::env::temp_dir().join(format!("karya-{}", uuid::Uuid::now_v7().simple()));
            let url = format!("sqlite://{}/karya.db", dir.display());
            let store = Store::open(&url, &StoreOptions::default())
                .await
                .expect("open sqlite");
            body(store.clone()).await;
            store.close().await;
            let _ = std::fs::remove_dir_all(&dir);
        });
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::with_temp_sqlite;

    /// The bundled SQLite is built as `.cargo/config.toml` asks: without the page cache shared
    /// by every connection behind one lock, and without counting memory under another, which
    /// made the readers and the writer wait for each other on every page.
    #[test]
    fn sqlite_is_built_without_process_wide_locks() {
        with_temp_sqlite(|store| async move {
            let options: Vec<String> = sqlx::query("PRAGMA compile_options")
                .fetch_all(&store.reader)
                .await
                .expect("compile options")
                .iter()
                .map(|row| row.try_get::<String, _>(0).expect("option"))
                .collect();
            assert!(
                !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
                "{options:?}"
            );
            assert!(
                options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
                "{options:?}"
            );
        });
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://karya:s3cret@db/karya"),
            "postgres://karya:***@db/karya"
        );
        assert_eq!(
            super::redact_url("postgres://karya@db/karya"),
            "postgres://karya@db/karya"
        );
        assert_eq!(
            super::redact_url("sqlite://karya-data/karya.db"),
            "sqlite://karya-data/karya.db"
        );
    }
}
