//! A worker's leave: booked absences during which no shift counts, so the router offers the
//! worker nothing and their shift page shows them away. Firm records, in the firm's chain.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::WorkerId;
use karya_core::workforce::Leave;
use serde_json::json;

use crate::events::{append, FIRM_CHAIN};
use crate::rows::{get, is_foreign_key_violation, timestamp, us};
use crate::{Result, Store, StoreError};

/// Most leave entries read for one worker: every absence that has not ended, and then some.
pub const LEAVE_MAX: i64 = 200;
/// Longest note kept with a leave, in characters.
pub const LEAVE_NOTE_LEN_MAX: usize = 200;
/// Longest single leave: a year.
pub const LEAVE_LENGTH_MAX: jiff::SignedDuration = jiff::SignedDuration::from_hours(366 * 24);

/// Leave as stored, with its note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLeave {
    pub id: uuid::Uuid,
    pub leave: Leave,
    pub note: String,
}

impl Store {
    /// Books leave for a worker. Refused when it ends before it starts, lasts longer than
    /// [`LEAVE_LENGTH_MAX`], or its note is longer than [`LEAVE_NOTE_LEN_MAX`].
    pub async fn add_leave(
        &self,
        worker_id: WorkerId,
        id: uuid::Uuid,
        leave: &Leave,
        note: &str,
        now: Timestamp,
    ) -> Result<StoredLeave> {
        if leave.until <= leave.from {
            return Err(StoreError::Rejected {
                message: "leave must end after it starts".into(),
            });
        }
        if leave.until.duration_since(leave.from) > LEAVE_LENGTH_MAX {
            return Err(StoreError::Rejected {
                message: "one leave lasts at most a year; book longer absences in parts".into(),
            });
        }
        if note.chars().count() > LEAVE_NOTE_LEN_MAX {
            return Err(StoreError::Rejected {
                message: format!("a leave note is at most {LEAVE_NOTE_LEN_MAX} characters"),
            });
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        let inserted = sqlx::query(
            "INSERT INTO worker_leave (id, worker_id, from_us, until_us, note, created_at_us)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(worker_id.to_string())
        .bind(us(leave.from))
        .bind(us(leave.until))
        .bind(note)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_foreign_key_violation(&err) => {
                return Err(StoreError::not_found("worker", worker_id))
            }
            other => other?,
        };
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerLeaveRecorded,
            &worker_id.to_string(),
            &json!({"leave_id": id.to_string(), "from": leave.from.to_string(),
                    "until": leave.until.to_string(), "note": note}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(StoredLeave {
            id,
            leave: Leave {
                from: crate::work::stored(leave.from),
                until: crate::work::stored(leave.until),
            },
            note: note.to_string(),
        })
    }

    /// A worker's leave that has not ended by `now`, soonest first (at most [`LEAVE_MAX`]).
    pub async fn leave_of(&self, worker_id: WorkerId, now: Timestamp) -> Result<Vec<StoredLeave>> {
        let rows = sqlx::query(
            "SELECT id, from_us, until_us, note FROM worker_leave
             WHERE worker_id = $1 AND until_us > $2 ORDER BY from_us, id LIMIT $3",
        )
        .bind(worker_id.to_string())
        .bind(us(now))
        .bind(LEAVE_MAX)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, "id")?;
                Ok(StoredLeave {
                    id: id
                        .parse()
                        .map_err(|e| anyhow::anyhow!("stored leave id: {e}"))?,
                    leave: Leave {
                        from: timestamp(row, "from_us")?,
                        until: timestamp(row, "until_us")?,
                    },
                    note: get(row, "note")?,
                })
            })
            .collect()
    }
}
