//! Leadership: which node runs the router and the timers.
//!
//! On PostgreSQL the leader holds a session-level advisory lock on a connection of its own,
//! taken out of the pool so that nothing else runs on it. The lock lives exactly as long as
//! that session: when the leader's process dies, its connection closes and PostgreSQL releases
//! the lock, so the next node asking gets it. The leader checks its connection regularly and
//! stops leading when the check fails.
//!
//! On SQLite there is one node, and it always leads.
//!
//! Leadership is about not doing the same work twice, not about correctness: every change the
//! leader makes is conditional on the state it read (offers need a ready task, claims lock the
//! worker's row), so two nodes that both believe they lead for a moment cannot break the
//! exactly-once rules.

use std::time::Duration;

use sqlx::{AnyConnection, Connection};

use crate::rows::get;
use crate::{Engine, Result, Store};

/// The advisory lock key that names the leader (fixed; `karya_ld` in ASCII).
pub const LEADER_LOCK_KEY: i64 = 0x6b61_7279_615f_6c64;
/// How long a leadership check may take before the leader gives up: a session that cannot
/// answer a ping within this time cannot be trusted to still hold the lock.
pub const LEADER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Held while this node leads. Dropping it closes the session, which releases the lock.
#[derive(Debug)]
pub struct Leadership {
    /// The session that holds the lock; `None` on SQLite.
    conn: Option<AnyConnection>,
}

impl Store {
    /// Tries to become the leader, without waiting. `None` when another node leads.
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        match self.engine {
            Engine::Sqlite => Ok(Some(Leadership { conn: None })),
            Engine::Postgres => {
                let mut conn = self.writer.acquire().await?.detach();
                let row = sqlx::query(
                    "SELECT CAST(CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END AS BIGINT) AS got",
                )
                .bind(LEADER_LOCK_KEY)
                .fetch_one(&mut conn)
                .await?;
                let got: i64 = get(&row, "got")?;
                if got == 1 {
                    Ok(Some(Leadership { conn: Some(conn) }))
                } else {
                    conn.close().await.ok();
                    Ok(None)
                }
            }
        }
    }
}

impl Leadership {
    /// Checks that the session holding the lock still answers and still holds it; an error
    /// means leadership is lost and the value should be dropped.
    pub async fn check(&mut self) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let query = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS held FROM pg_locks
             WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
        )
        .fetch_one(conn);
        let row = tokio::time::timeout(LEADER_CHECK_TIMEOUT, query)
            .await
            .map_err(|_| anyhow::anyhow!("leadership check timed out"))??;
        let held: i64 = get(&row, "held")?;
        if held == 0 {
            return Err(anyhow::anyhow!("leadership lock is no longer held").into());
        }
        Ok(())
    }

    /// Gives leadership up at once (on shutdown), so another node need not wait for the
    /// session to time out.
    pub async fn release(mut self) -> Result<()> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LEADER_LOCK_KEY)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
