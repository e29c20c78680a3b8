//! Presence driven by shifts: the router loop (on the leader) asks [`Store::apply_shift_presence`]
//! now and then, and each worker whose shift pattern calls for another presence gets it, with
//! its event on the firm chain (`"by": "shift"`). The rule is `karya-core`'s
//! [`shift_presence`]: available at a shift's start, on break per the pattern, offline at its
//! end once the current task is finished; the worker's own toggle wins within the shift.
//!
//! Each change is conditional on the presence row being as read, so a worker's toggle that
//! lands meanwhile is never overwritten.

use std::collections::HashSet;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::WorkerId;
use karya_core::workforce::{
    shift_presence, Presence, PresenceSource, PresenceState, ShiftPattern,
};
use serde_json::json;

use crate::events::{append, FIRM_CHAIN};
use crate::routing::{breaks_of, shifts_of};
use crate::rows::{get, parse, us};
use crate::{Result, Store};

/// Most workers one call looks at, in id order after `after`: a firm larger than this is
/// walked over several calls.
pub const SHIFT_SCAN_MAX: i64 = 20_000;

/// A presence the shift set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftChange {
    pub worker_id: WorkerId,
    pub from: Presence,
    pub to: Presence,
}

impl Store {
    /// Applies the shift patterns at `now` to every worker with shifts (at most
    /// [`SHIFT_SCAN_MAX`]), returning the changes made.
    pub async fn apply_shift_presence(&self, now: Timestamp) -> Result<Vec<ShiftChange>> {
        let rows = sqlx::query(
            "SELECT worker_id, presence, presence_since_us, presence_by, time_zone, shifts, breaks
             FROM worker_routing WHERE shifts <> '[]' ORDER BY worker_id LIMIT $1",
        )
        .bind(SHIFT_SCAN_MAX)
        .fetch_all(&self.reader)
        .await?;
        let working: HashSet<WorkerId> = sqlx::query(
            "SELECT DISTINCT a.worker_id FROM assignments a JOIN tasks t ON t.id = a.task_id
             WHERE a.released_at_us IS NULL AND t.state = 'in_progress'",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| parse(row, "worker_id"))
        .collect::<Result<_>>()?;
        let mut wanted = Vec::new();
        for row in &rows {
            let worker_id: WorkerId = parse(row, "worker_id")?;
            let presence: String = get(row, "presence")?;
            let by: String = get(row, "presence_by")?;
            let (Some(presence), Some(source)) =
                (Presence::parse(&presence), PresenceSource::parse(&by))
            else {
                continue;
            };
            let Ok(time_zone) = TimeZone::get(&get::<String>(row, "time_zone")?) else {
                continue;
            };
            let since_us: i64 = get(row, "presence_since_us")?;
            let Ok(since) = Timestamp::from_microsecond(since_us) else {
                continue;
            };
            let pattern = ShiftPattern {
                weekly: shifts_of(&get::<String>(row, "shifts")?)?,
                breaks: breaks_of(&get::<String>(row, "breaks")?)?,
                ..ShiftPattern::none(time_zone)
            };
            let current = PresenceState {
                presence,
                since,
                source,
            };
            if let Some(to) = shift_presence(&pattern, now, current, working.contains(&worker_id)) {
                wanted.push((worker_id, presence, since_us, to));
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        let mut changes = Vec::with_capacity(wanted.len());
        for (worker_id, from, since_us, to) in wanted {
            let updated = sqlx::query(
                "UPDATE worker_routing SET presence = $1, presence_since_us = $2, presence_by = 'shift'
                 WHERE worker_id = $3 AND presence = $4 AND presence_since_us = $5",
            )
            .bind(to.code())
            .bind(us(now))
            .bind(worker_id.to_string())
            .bind(from.code())
            .bind(since_us)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                continue;
            }
            append(
                &mut tx,
                FIRM_CHAIN,
                EventKind::WorkerPresenceChanged,
                &worker_id.to_string(),
                &json!({"presence": to.code(), "from": from.code(), "by": PresenceSource::Shift.code()}),
                now,
            )
            .await?;
            changes.push(ShiftChange {
                worker_id,
                from,
                to,
            });
        }
        tx.commit().await?;
        Ok(changes)
    }
}
