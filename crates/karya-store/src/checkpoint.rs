//! SQLite's checkpoints, run in the background.
//!
//! In WAL mode a commit appends its pages to the write-ahead log; a checkpoint copies the
//! log's pages into the database file and syncs it, so that the log can start over. By
//! default SQLite runs one inside the commit that takes the log past 1,000 pages, on the
//! committing connection, so the writer waits while every page written since the last
//! checkpoint is copied (after a large import, all of it once more). karya's writer turns that
//! off (`wal_autocheckpoint = 0`), and a [`Checkpointer`] runs the checkpoints on a connection
//! of its own: told after each group commit, it checkpoints in the `PASSIVE` mode (which waits
//! for no reader and no writer, as the automatic one), then rests at least
//! [`CHECKPOINT_INTERVAL`], so that the commits meanwhile are folded by one checkpoint.
//!
//! Durability does not move: the log is synced on every commit (`synchronous = FULL`), and a
//! checkpoint only copies pages already safe in it; a crash before one leaves them in the log,
//! where the next open reads them. Pages a reader still needs stay in the log until it is done,
//! as with the automatic checkpoint. The last connection to close folds what is left.

use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// The least time between two checkpoints: a log of many small commits is folded a few times a
/// second, not once per commit (each checkpoint syncs the database file).
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// Runs SQLite's checkpoints in the background; see the module's text.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    due: mpsc::Sender<()>,
    pool: AnyPool,
}

impl Checkpointer {
    /// Starts the task on `pool` (one connection of its own); it ends when the pool is closed
    /// or the last handle is dropped.
    pub(crate) fn start(pool: AnyPool) -> Checkpointer {
        // One slot: commits while a checkpoint runs or rests leave one more due, not a backlog.
        let (due, mut pending) = mpsc::channel::<()>(1);
        let task_pool = pool.clone();
        tokio::spawn(async move {
            let pool = task_pool;
            while pending.recv().await.is_some() {
                if pool.is_closed() {
                    break;
                }
                if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .fetch_optional(&pool)
                    .await
                {
                    if pool.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %err, "a background checkpoint failed; the next commit tries again");
                }
                tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            }
        });
        Checkpointer { due, pool }
    }

    /// Stops checkpointing and closes the connection (waiting for a checkpoint under way).
    pub(crate) async fn close(&self) {
        crate::close_fully(&self.pool).await;
    }

    /// A group committed: its pages are due for the next checkpoint.
    pub(crate) fn committed(&self) {
        // Full: a checkpoint is due already and will take these pages too.
        self.due.try_send(()).ok();
    }
}
