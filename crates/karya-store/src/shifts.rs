//! Presence driven by shifts: the router loop (on the leader) asks [`Store::apply_shift_presence`]
//! now and then, and each worker whose shift pattern calls for another presence gets it, with
//! its event on the firm chain (`"by": "shift"`). The rule is `karya-core`'s
//! [`shift_presence`]: available at a shift's start, on break per the pattern, offline at its
//! end; the worker's own toggle wins within the shift.
//!
//! Breaks and shift ends come on time. Work in hand at a break waits for the worker (it stays
//! theirs). Work in hand when the shift sets a worker offline is handed over: each task the
//! worker holds and has not yet submitted (assigned, in progress or in rework) is released
//! back to `ready`, with reason `shift_ended`, and routed again; the output the worker saved
//! stays with the task, so whoever takes it over carries on from there.
//!
//! Each change is conditional on the presence row being as read, so a worker's toggle that
//! lands meanwhile is never overwritten; the presence change and the hand-over of the work are
//! one transaction.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{ClientId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::workforce::{
    shift_presence, Presence, PresenceSource, PresenceState, ShiftPattern,
};
use serde_json::json;

use crate::events::{append, FIRM_CHAIN};
use crate::offers::release_to_routing;
use crate::routing::{breaks_of, shifts_of};
use crate::rows::{get, parse, us};
use crate::{Result, Store};

/// Most workers one call looks at, in id order after `after`: a firm larger than this is
/// walked over several calls.
pub const SHIFT_SCAN_MAX: i64 = 20_000;

/// A presence the shift set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftChange {
    pub worker_id: WorkerId,
    pub from: Presence,
    pub to: Presence,
    /// Tasks the worker held, handed over because the shift ended.
    pub handed_over: Vec<(ClientId, TaskId)>,
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
            if let Some(to) = shift_presence(&pattern, now, current) {
                wanted.push((worker_id, presence, since_us, to));
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        let mut changes = Vec::with_capacity(wanted.len());
        for (worker_id, from, since_us, to) in wanted {
            if let Some(change) = set_by_shift(&mut tx, worker_id, from, since_us, to, now).await? {
                changes.push(change);
            }
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Ends one worker's shift at `now`, as the shift pass does when the pattern says so: the
    /// worker goes offline (by the shift) and the work they hold and have not submitted is
    /// handed over to routing, in one transaction. For a caller that keeps the clock itself
    /// (the demo's simulated firm). `None` when the worker is offline already.
    pub async fn end_shift(
        &self,
        worker_id: WorkerId,
        now: Timestamp,
    ) -> Result<Option<ShiftChange>> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let row = sqlx::query(
            "SELECT presence, presence_since_us FROM worker_routing WHERE worker_id = $1",
        )
        .bind(worker_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| crate::StoreError::not_found("worker routing profile", worker_id))?;
        let presence: String = get(&row, "presence")?;
        let from = Presence::parse(&presence)
            .ok_or_else(|| anyhow::anyhow!("stored presence {presence:?}"))?;
        if from == Presence::Offline {
            tx.rollback().await?;
            return Ok(None);
        }
        let since_us: i64 = get(&row, "presence_since_us")?;
        let change =
            set_by_shift(&mut tx, worker_id, from, since_us, Presence::Offline, now).await?;
        tx.commit().await?;
        Ok(change)
    }
}

/// Sets the presence the shift calls for, if the worker's row is still as read (`from` since
/// `since_us`), with its event; going offline hands the worker's unsubmitted work over.
async fn set_by_shift(
    tx: &mut crate::tx::Tx,
    worker_id: WorkerId,
    from: Presence,
    since_us: i64,
    to: Presence,
    now: Timestamp,
) -> Result<Option<ShiftChange>> {
    let updated = sqlx::query(
        "UPDATE worker_routing SET presence = $1, presence_since_us = $2, presence_by = 'shift'
         WHERE worker_id = $3 AND presence = $4 AND presence_since_us = $5",
    )
    .bind(to.code())
    .bind(us(now))
    .bind(worker_id.to_string())
    .bind(from.code())
    .bind(since_us)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(None);
    }
    append(
        tx,
        FIRM_CHAIN,
        EventKind::WorkerPresenceChanged,
        &worker_id.to_string(),
        &json!({"presence": to.code(), "from": from.code(), "by": PresenceSource::Shift.code()}),
        now,
    )
    .await?;
    let handed_over = match to {
        Presence::Offline => hand_over(tx, worker_id, now).await?,
        _ => Vec::new(),
    };
    Ok(Some(ShiftChange {
        worker_id,
        from,
        to,
        handed_over,
    }))
}

/// Releases to routing every task the worker holds and has not submitted, at the end of their
/// shift, each with its task event (reason `shift_ended`).
async fn hand_over(
    tx: &mut crate::tx::Tx,
    worker_id: WorkerId,
    now: Timestamp,
) -> Result<Vec<(ClientId, TaskId)>> {
    let held = sqlx::query(
        "SELECT a.client_id, a.task_id, t.state FROM assignments a JOIN tasks t ON t.id = a.task_id
         WHERE a.worker_id = $1 AND a.released_at_us IS NULL
           AND t.state IN ('assigned', 'in_progress', 'rework')
         ORDER BY a.assigned_at_us, a.id",
    )
    .bind(worker_id.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut handed_over = Vec::with_capacity(held.len());
    for row in &held {
        let client_id: ClientId = parse(row, "client_id")?;
        let task_id: TaskId = parse(row, "task_id")?;
        let state: String = get(row, "state")?;
        let Ok(state) = state.parse::<TaskState>() else {
            continue;
        };
        let detail = json!({"worker_id": worker_id.to_string(), "reason": "shift_ended"});
        if release_to_routing(tx, client_id, task_id, state, detail, now).await? {
            handed_over.push((client_id, task_id));
        }
    }
    Ok(handed_over)
}
