//! Push routing in the store: offers with their outcome, claims that respect a worker's
//! capacity, and escalation of tasks whose routing workflow ran out.
//!
//! Every path that adds to what a worker holds (an offer, a *Get next* claim) first locks the
//! worker's routing row (`FOR UPDATE` on PostgreSQL; SQLite writes are serial anyway) and then
//! counts the units the worker holds in the same transaction, so two nodes cannot both fill the
//! last unit. A task is offered to at most one worker at a time (a partial unique index) and
//! held by at most one (the assignments index); an accepted offer becomes an assignment through
//! the same exactly-once path as a claim. Each offer stores the explanation of the decision,
//! and accepting links it to the assignment.
//!
//! This module does not decide who gets what: the router loop does, with `karya-core`.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{AssignmentId, ClientId, OfferId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{OfferOutcome, Task};
use karya_core::routing::case::ExclusionReason;
use karya_core::routing::Explanation;
use karya_core::workforce::Capacity;
use serde_json::json;
use sqlx::AnyConnection;

use crate::case::{excluded_by_case, is_excluded, store_exclusion, CaseQuery};
use crate::events::append;
use crate::routing::{
    caps_of, explanation_json, requirements_shared, TASK_REQUIREMENTS, TASK_ROUTING_JOINS,
};
use crate::rows::{get, is_unique_violation, json_id_list, json_ids, parse, timestamp, us};
use crate::work::{assign, task_row, TASK_COLUMNS};
use crate::{Engine, Result, Store, StoreError, Tenant};

/// Most offers one [`Store::expire_offers`] call ends: one transaction stays short, and the
/// caller comes back for the rest.
pub const EXPIRE_BATCH_MAX: i64 = 200;
/// Most open offers listed for one worker: far more than any capacity allows.
pub const WORKER_OFFERS_MAX: i64 = 100;
/// Most refusals read for one routing round: a page of tasks times a few refusals each.
pub const REFUSALS_MAX: i64 = 10_000;
/// Returns early from a function holding a transaction, rolling it back first: a dropped
/// transaction only rolls back when its connection is next used, and until then its row locks
/// would make `SKIP LOCKED` readers pass rows over.
macro_rules! rollback_and_return {
    ($tx:ident, $value:expr) => {{
        $tx.rollback().await?;
        return $value;
    }};
}

/// Most available workers one routing round considers: a bound on the round's work; a firm
/// with more available workers at once routes among the first this many (in id order).
pub const ROUND_WORKERS_MAX: i64 = 2_000;
/// Capacity units a task weighs when its engagement sets no routing.
const DEFAULT_WEIGHT: u32 = 1;
/// The channel of a task whose engagement sets no routing.
const DEFAULT_CHANNEL: &str = "default";

/// An offer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOffer {
    pub id: OfferId,
    pub client_id: ClientId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// Capacity units the offer reserves while open.
    pub units: u32,
    pub offered_at: Timestamp,
    pub expires_at: Timestamp,
    pub outcome: Option<OfferOutcome>,
    pub ended_at: Option<Timestamp>,
}

/// An offer the router decided on.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub id: OfferId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub expires_at: Timestamp,
    /// Why this worker; stored with the offer.
    pub explanation: Explanation,
    /// Id of the stored explanation.
    pub explanation_id: uuid::Uuid,
}

/// What became of an offer the router wanted to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferMade {
    Made(StoredOffer),
    /// The worker's capacity is full (someone else filled it since the router looked).
    AtCapacity,
    /// The task is no longer ready: claimed, offered or closed meanwhile.
    Taken,
    /// The case rules exclude the worker from the task (they declined it, made the work a
    /// checking step checks, or a conflict is named).
    Excluded,
}

/// What became of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Assigned(Task),
    /// Taking the task would put the worker over capacity.
    AtCapacity {
        units_used: u32,
        units_max: u32,
    },
    /// The task is no longer claimable: someone else took it, or it left the ready state.
    Taken,
    /// The case rules exclude the worker from the task.
    Excluded,
}

/// Capacity units held and allowed, from the worker's routing row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    pub used: u32,
    pub max: u32,
}

/// What a worker holds, as *Get next* and the router rank with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    pub units: Units,
    /// Units used per channel.
    pub channels: Vec<(String, u32)>,
    /// Offers made to the worker and not answered (expired ones included until the router
    /// ends them): when there are none, *Get next* need not read them.
    pub open_offers: u32,
}

pub fn outcome_code(outcome: OfferOutcome) -> &'static str {
    match outcome {
        OfferOutcome::Accepted => "accepted",
        OfferOutcome::Declined => "declined",
        OfferOutcome::TimedOut => "timed_out",
        OfferOutcome::Withdrawn => "withdrawn",
    }
}

fn outcome_of(code: &str) -> Result<OfferOutcome> {
    Ok(match code {
        "accepted" => OfferOutcome::Accepted,
        "declined" => OfferOutcome::Declined,
        "timed_out" => OfferOutcome::TimedOut,
        "withdrawn" => OfferOutcome::Withdrawn,
        other => return Err(anyhow::anyhow!("stored offer outcome {other:?} unknown").into()),
    })
}

const OFFER_COLUMNS: &str =
    "id, client_id, task_id, worker_id, units, offered_at_us, expires_at_us, outcome, ended_at_us";

fn offer_row(row: &sqlx::any::AnyRow) -> Result<StoredOffer> {
    let outcome: Option<String> = get(row, "outcome")?;
    let ended: Option<i64> = get(row, "ended_at_us")?;
    Ok(StoredOffer {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        task_id: parse(row, "task_id")?,
        worker_id: parse(row, "worker_id")?,
        units: get::<i64>(row, "units")? as u32,
        offered_at: timestamp(row, "offered_at_us")?,
        expires_at: timestamp(row, "expires_at_us")?,
        outcome: outcome.as_deref().map(outcome_of).transpose()?,
        ended_at: ended.and_then(|us| Timestamp::from_microsecond(us).ok()),
    })
}

/// The open offer of a task, if any (at most one: a partial unique index), in the caller's
/// transaction.
pub(crate) async fn open_offer_of(
    conn: &mut AnyConnection,
    task_id: TaskId,
) -> Result<Option<StoredOffer>> {
    let row = sqlx::query(&format!(
        "SELECT {OFFER_COLUMNS} FROM offers WHERE task_id = $1 AND outcome IS NULL"
    ))
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(offer_row).transpose()
}

/// What a worker holds, as read under their row lock: total units and their cap, units per
/// channel, and the per-channel caps.
#[derive(Debug, Clone)]
struct Held {
    units: Units,
    capacity: Capacity,
    channels: Vec<(String, u32)>,
    open_offers: u32,
}

impl Held {
    /// `None` when a task of `weight` on `channel` fits; else the units used and allowed of
    /// what is full (the total, or the channel's own cap).
    fn full_for(&self, channel: &str, weight: u32) -> Option<Units> {
        if self.units.used + weight > self.units.max {
            return Some(self.units);
        }
        let used = self
            .channels
            .iter()
            .find(|(c, _)| c == channel)
            .map_or(0, |(_, u)| *u);
        let max = self.capacity.channel_max(channel);
        (used + weight > max).then_some(Units { used, max })
    }
}

/// The channel and weight of a task from its engagement's requirements (stored JSON text).
fn load_of(requirements: Option<String>) -> Result<(String, u32)> {
    Ok(match requirements {
        Some(text) => {
            let req = requirements_shared(&text)?;
            (req.channel.clone(), req.weight)
        }
        None => (DEFAULT_CHANNEL.to_string(), DEFAULT_WEIGHT),
    })
}

/// Most ranked tasks one [`Store::claim_ranked`] considers: the statement binds two values per
/// task, well inside both engines' limits.
pub const RANKED_CLAIM_MAX: usize = 200;

/// A task in a worker's ranking, offered to [`Store::claim_ranked`].
#[derive(Debug, Clone, Copy)]
pub struct RankedTask<'a> {
    pub client_id: ClientId,
    pub task_id: TaskId,
    /// Why the task goes to the worker; stored with the assignment when it is claimed.
    pub explanation: &'a Explanation,
    pub explanation_id: uuid::Uuid,
}

/// The highest-ranked of `remaining` (pairs of rank index and task) still ready and not
/// stored as excluded for the worker, with its rank index and the channel and weight it puts
/// on the worker. With `lock`, on PostgreSQL, the row is locked and rows other claimers hold
/// are skipped.
async fn first_ready(
    conn: &mut AnyConnection,
    engine: Engine,
    lock: bool,
    worker_id: WorkerId,
    remaining: &[(usize, &RankedTask<'_>)],
) -> Result<Option<(usize, Task, (String, u32))>> {
    let lock = match (engine, lock) {
        (Engine::Postgres, true) => " FOR UPDATE OF t SKIP LOCKED",
        _ => "",
    };
    let columns: Vec<String> = TASK_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
    let sql = format!(
        "WITH ranked (id, ord) AS ({})
         SELECT {}, {TASK_REQUIREMENTS} AS requirements
         FROM ranked r JOIN tasks t ON t.id = r.id
         {TASK_ROUTING_JOINS}
         WHERE t.state = 'ready'
           AND NOT EXISTS (SELECT 1 FROM task_exclusions x WHERE x.task_id = t.id AND x.worker_id = $1)
         ORDER BY r.ord LIMIT 1{lock}",
        json_ids(engine, "$2"),
        columns.join(", ")
    );
    let query = sqlx::query(&sql)
        .bind(worker_id.to_string())
        .bind(json_id_list(remaining.iter().map(|(_, task)| task.task_id)));
    let Some(row) = query.fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let task = task_row(&row)?;
    let Some(&(idx, _)) = remaining.iter().find(|(_, r)| r.task_id == task.id) else {
        return Err(anyhow::anyhow!("claimed task {} was not in the ranking", task.id).into());
    };
    let load = load_of(get(&row, "requirements")?)?;
    Ok(Some((idx, task, load)))
}

/// Locks the worker's routing row (PostgreSQL) and counts what they hold: active assignments
/// weighed by their engagement's requirements, plus open offers, in total and per channel.
async fn held_locked(
    conn: &mut AnyConnection,
    engine: Engine,
    worker_id: WorkerId,
) -> Result<Held> {
    // One statement reads what the worker holds, a row per assignment ('a', weighed by its
    // requirements) and per open offer ('o', with its units). On SQLite the worker's own row
    // ('w': capacity in `units`, channel caps in `requirements`) comes with it; PostgreSQL
    // locks that row first, with a statement of its own, as `FOR UPDATE` cannot lock one
    // branch of a union.
    let mut worker_row = None;
    let worker_branch = match engine {
        Engine::Postgres => {
            worker_row = Some(
                sqlx::query(
                    "SELECT capacity_units, channel_caps FROM worker_routing WHERE worker_id = $1 FOR UPDATE",
                )
                .bind(worker_id.to_string())
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| StoreError::not_found("worker routing profile", worker_id))?,
            );
            ""
        }
        Engine::Sqlite => {
            "UNION ALL SELECT 'w' AS kind, capacity_units AS units, channel_caps AS requirements
             FROM worker_routing WHERE worker_id = $1"
        }
    };
    let rows = sqlx::query(&format!(
        "SELECT 'a' AS kind, 0 AS units, {TASK_REQUIREMENTS} AS requirements FROM assignments a
         JOIN tasks t ON t.id = a.task_id
         {TASK_ROUTING_JOINS}
         WHERE a.worker_id = $1 AND a.released_at_us IS NULL
         UNION ALL
         SELECT 'o' AS kind, o.units, {TASK_REQUIREMENTS} AS requirements FROM offers o
         JOIN tasks t ON t.id = o.task_id
         {TASK_ROUTING_JOINS}
         WHERE o.worker_id = $1 AND o.outcome IS NULL
         {worker_branch}"
    ))
    .bind(worker_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut capacity_row: Option<(i64, String)> = match &worker_row {
        Some(row) => Some((get(row, "capacity_units")?, get(row, "channel_caps")?)),
        None => None,
    };
    let mut channels: Vec<(String, u32)> = Vec::new();
    let mut used = 0u32;
    let mut open_offers = 0u32;
    let mut add = |channel: String, units: u32| {
        used += units;
        match channels.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, u)) => *u += units,
            None => channels.push((channel, units)),
        }
    };
    for row in &rows {
        let kind: String = get(row, "kind")?;
        match kind.as_str() {
            "a" => {
                let (channel, weight) = load_of(get(row, "requirements")?)?;
                add(channel, weight);
            }
            "o" => {
                open_offers += 1;
                let (channel, _) = load_of(get(row, "requirements")?)?;
                add(channel, get::<i64>(row, "units")?.max(0) as u32);
            }
            _ => capacity_row = Some((get(row, "units")?, get(row, "requirements")?)),
        }
    }
    let (max, caps) =
        capacity_row.ok_or_else(|| StoreError::not_found("worker routing profile", worker_id))?;
    let max = max.max(0) as u32;
    Ok(Held {
        units: Units { used, max },
        capacity: Capacity {
            units_max: max,
            channels: caps_of(&caps)?,
        },
        channels,
        open_offers,
    })
}

/// The channel and capacity units a task weighs: from its pack step's requirements when the
/// step has its own (as routing ranks it), else from its engagement's.
async fn task_load(conn: &mut AnyConnection, task_id: TaskId) -> Result<(String, u32)> {
    let row = sqlx::query(&format!(
        "SELECT {TASK_REQUIREMENTS} AS requirements
         FROM tasks t {TASK_ROUTING_JOINS}
         WHERE t.id = $1"
    ))
    .bind(task_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("task", task_id))?;
    load_of(get(&row, "requirements")?)
}

pub(crate) async fn insert_explanation(
    tx: &mut crate::tx::Tx,
    id: uuid::Uuid,
    client_id: ClientId,
    explanation: &Explanation,
    assignment_id: Option<AssignmentId>,
) -> Result<()> {
    // A new row nothing in the change reads: written with the commit.
    tx.write_at_commit(
        crate::tx::Write::new(
            "INSERT INTO routing_explanations (id, client_id, task_id, worker_id, assignment_id, path, rule, explanation, decided_at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(client_id.to_string())
        .bind(explanation.task_id.to_string())
        .bind(explanation.winner.map(|w| w.to_string()))
        .bind(assignment_id.map(|a| a.to_string()))
        .bind(explanation.path.code())
        .bind(explanation.rule.code())
        .bind(explanation_json(explanation).to_string())
        .bind(us(explanation.decided_at)),
    )
    .await
}

/// Takes a task back from the worker holding it and sends it to routing: the task moves from
/// `from` to `ready`, its active assignment ends, and its trail gets the move and a
/// `task.released` event, both with `detail`. `false` (nothing written) when the task was no
/// longer in `from`.
pub(crate) async fn release_to_routing(
    tx: &mut crate::tx::Tx,
    client_id: ClientId,
    task_id: TaskId,
    from: TaskState,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<bool> {
    if !move_task(
        tx,
        client_id,
        task_id,
        from,
        TaskState::Ready,
        detail.clone(),
        now,
    )
    .await?
    {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE assignments SET released_at_us = $1 WHERE task_id = $2 AND released_at_us IS NULL",
    )
    .bind(us(now))
    .bind(task_id.to_string())
    .execute(&mut **tx)
    .await?;
    append(
        tx,
        client_id,
        EventKind::TaskReleased,
        &task_id.to_string(),
        &detail,
        now,
    )
    .await?;
    Ok(true)
}

/// Moves a task between two states with a conditional update and its event; `false` when the
/// task was not in `from` (someone else changed it first).
pub(crate) async fn move_task(
    conn: &mut crate::tx::Tx,
    client_id: ClientId,
    task_id: TaskId,
    from: TaskState,
    to: TaskState,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<bool> {
    let action = from.transition(to).map_err(|err| StoreError::Rejected {
        message: err.to_string(),
    })?;
    let updated = sqlx::query(
        "UPDATE tasks SET state = $1, updated_at_us = $2 WHERE client_id = $3 AND id = $4 AND state = $5",
    )
    .bind(to.code())
    .bind(us(now))
    .bind(client_id.to_string())
    .bind(task_id.to_string())
    .bind(from.code())
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    let mut payload = json!({"from": from.code(), "to": to.code(), "action": action});
    if let (Some(payload), Some(detail)) = (payload.as_object_mut(), detail.as_object()) {
        payload.extend(detail.clone());
    }
    append(
        conn,
        client_id,
        EventKind::TaskTransitioned,
        &task_id.to_string(),
        &payload,
        now,
    )
    .await?;
    Ok(true)
}

/// Ends an open offer with `outcome` and returns the task to `ready`, in the caller's
/// transaction.
pub(crate) async fn end_offer(
    conn: &mut crate::tx::Tx,
    offer: &StoredOffer,
    outcome: OfferOutcome,
    now: Timestamp,
) -> Result<bool> {
    let ended = sqlx::query(
        "UPDATE offers SET outcome = $1, ended_at_us = $2 WHERE id = $3 AND outcome IS NULL",
    )
    .bind(outcome_code(outcome))
    .bind(us(now))
    .bind(offer.id.to_string())
    .execute(&mut *conn)
    .await?;
    if ended.rows_affected() != 1 {
        return Ok(false);
    }
    let moved = move_task(
        conn,
        offer.client_id,
        offer.task_id,
        TaskState::Offered,
        TaskState::Ready,
        json!({
            "offer_id": offer.id.to_string(),
            "worker_id": offer.worker_id.to_string(),
            "reason": outcome_code(outcome),
        }),
        now,
    )
    .await?;
    debug_assert!(moved, "an open offer's task is offered");
    Ok(true)
}

impl Tenant {
    /// Offers a ready task to a worker: the task moves to `offered`, the offer reserves the
    /// task's weight of the worker's capacity until it ends, and the explanation is stored.
    pub async fn make_offer(&self, new: &NewOffer, now: Timestamp) -> Result<OfferMade> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let held = held_locked(&mut tx, self.store.engine, new.worker_id).await?;
        let (channel, weight) = task_load(&mut tx, new.task_id).await?;
        if held.full_for(&channel, weight).is_some() {
            rollback_and_return!(tx, Ok(OfferMade::AtCapacity));
        }
        if is_excluded(&mut tx, new.task_id, new.worker_id).await? {
            rollback_and_return!(tx, Ok(OfferMade::Excluded));
        }
        let moved = move_task(
            &mut tx,
            self.client_id,
            new.task_id,
            TaskState::Ready,
            TaskState::Offered,
            json!({
                "offer_id": new.id.to_string(),
                "worker_id": new.worker_id.to_string(),
                "expires_at_us": us(new.expires_at),
            }),
            now,
        )
        .await?;
        if !moved {
            rollback_and_return!(tx, Ok(OfferMade::Taken));
        }
        let inserted = sqlx::query(
            "INSERT INTO offers (id, client_id, task_id, worker_id, units, offered_at_us, expires_at_us, explanation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(new.task_id.to_string())
        .bind(new.worker_id.to_string())
        .bind(i64::from(weight))
        .bind(us(now))
        .bind(us(new.expires_at))
        .bind(new.explanation_id.to_string())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => rollback_and_return!(tx, Ok(OfferMade::Taken)),
            other => other?,
        };
        insert_explanation(
            &mut tx,
            new.explanation_id,
            self.client_id,
            &new.explanation,
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(OfferMade::Made(StoredOffer {
            id: new.id,
            client_id: self.client_id,
            task_id: new.task_id,
            worker_id: new.worker_id,
            units: weight,
            offered_at: crate::work::stored(now),
            expires_at: crate::work::stored(new.expires_at),
            outcome: None,
            ended_at: None,
        }))
    }

    /// Takes a ready task out of routing for a lead (the workflow's escalation step), storing
    /// the explanation. `false` when the task was no longer ready.
    pub async fn escalate_task(
        &self,
        task_id: TaskId,
        explanation: &Explanation,
        explanation_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let moved = move_task(
            &mut tx,
            self.client_id,
            task_id,
            TaskState::Ready,
            TaskState::Escalated,
            json!({"step": explanation.step_name}),
            now,
        )
        .await?;
        if !moved {
            rollback_and_return!(tx, Ok(false));
        }
        insert_explanation(&mut tx, explanation_id, self.client_id, explanation, None).await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Claims one particular ready task for a worker if their capacity allows it, storing the
    /// explanation with the assignment. The capacity read and the assignment share one
    /// transaction under the worker's row lock, so concurrent claims cannot overfill it.
    pub async fn claim_within_capacity(
        &self,
        client_id: ClientId,
        task_id: TaskId,
        worker_id: WorkerId,
        assignment_id: AssignmentId,
        explanation: (&Explanation, uuid::Uuid),
        now: Timestamp,
    ) -> Result<Claim> {
        let task_lock = match self.engine {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(self).await?;
        let held = held_locked(&mut tx, self.engine, worker_id).await?;
        let (channel, weight) = task_load(&mut tx, task_id).await?;
        if let Some(full) = held.full_for(&channel, weight) {
            rollback_and_return!(
                tx,
                Ok(Claim::AtCapacity {
                    units_used: full.used,
                    units_max: full.max,
                })
            );
        }
        if is_excluded(&mut tx, task_id, worker_id).await? {
            rollback_and_return!(tx, Ok(Claim::Excluded));
        }
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2 AND state = 'ready'{task_lock}"
        ))
        .bind(client_id.to_string())
        .bind(task_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            rollback_and_return!(tx, Ok(Claim::Taken));
        };
        let task = match assign(&mut tx, task_row(&row)?, worker_id, assignment_id, now).await {
            Ok(task) => task,
            Err(StoreError::Conflict { .. }) => rollback_and_return!(tx, Ok(Claim::Taken)),
            Err(err) => rollback_and_return!(tx, Err(err)),
        };
        insert_explanation(
            &mut tx,
            explanation.1,
            client_id,
            explanation.0,
            Some(assignment_id),
        )
        .await?;
        tx.commit().await?;
        Ok(Claim::Assigned(task))
    }

    /// Claims for the worker the best task of `ranked` (best first) that is still ready, in one
    /// transaction: the worker's row is locked and their capacity counted once, then one
    /// statement picks the highest-ranked task still ready (on PostgreSQL skipping rows another
    /// claimer holds locked, so concurrent claimers spread over the list instead of queueing on
    /// its head). Returns the index in `ranked` of the task claimed with [`Claim::Assigned`];
    /// [`Claim::Taken`] when every task is gone, [`Claim::AtCapacity`] when the best one left
    /// would overfill the worker. A task the case rules now exclude the worker from is passed
    /// over. At most [`RANKED_CLAIM_MAX`] tasks are considered.
    pub async fn claim_ranked(
        &self,
        worker_id: WorkerId,
        ranked: &[RankedTask<'_>],
        assignment_id: AssignmentId,
        now: Timestamp,
    ) -> Result<(usize, Claim)> {
        let ranked = &ranked[..ranked.len().min(RANKED_CLAIM_MAX)];
        if ranked.is_empty() {
            return Ok((0, Claim::Taken));
        }
        let mut tx = crate::tx::Tx::begin(self).await?;
        let held = held_locked(&mut tx, self.engine, worker_id).await?;
        // A worker with no unit left can take no task (every task weighs at least one): the
        // best one is only looked at, to tell "full" from "nothing left", not locked. Locked,
        // it would be skipped by a claimer with room, who could then find nothing and give up
        // while the task stays ready.
        let lock = held.units.used < held.units.max;
        let mut passed_over: Vec<usize> = Vec::new();
        loop {
            let remaining: Vec<(usize, &RankedTask<'_>)> = ranked
                .iter()
                .enumerate()
                .filter(|(idx, _)| !passed_over.contains(idx))
                .collect();
            if remaining.is_empty() {
                rollback_and_return!(tx, Ok((0, Claim::Taken)));
            }
            let Some((idx, task, load)) =
                first_ready(&mut tx, self.engine, lock, worker_id, &remaining).await?
            else {
                rollback_and_return!(tx, Ok((0, Claim::Taken)));
            };
            if let Some(full) = held.full_for(&load.0, load.1) {
                rollback_and_return!(
                    tx,
                    Ok((
                        idx,
                        Claim::AtCapacity {
                            units_used: full.used,
                            units_max: full.max,
                        }
                    ))
                );
            }
            // Stored exclusions were filtered out by the statement; the case rules remain.
            let case = CaseQuery {
                task_id: task.id,
                work_item_id: task.work_item_id,
                step: task.step.clone(),
            };
            if excluded_by_case(&mut tx, &case, worker_id).await? {
                passed_over.push(idx);
                continue;
            }
            let chosen = &ranked[idx];
            let task = match assign(&mut tx, task, worker_id, assignment_id, now).await {
                Ok(task) => task,
                Err(err) => rollback_and_return!(tx, Err(err)),
            };
            insert_explanation(
                &mut tx,
                chosen.explanation_id,
                chosen.client_id,
                chosen.explanation,
                Some(assignment_id),
            )
            .await?;
            tx.commit().await?;
            return Ok((idx, Claim::Assigned(task)));
        }
    }

    /// The units a worker holds (open offers included) and may hold now.
    pub async fn worker_capacity(&self, worker_id: WorkerId) -> Result<Units> {
        let mut conn = self.reader.acquire().await?;
        Ok(held_locked(&mut conn, Engine::Sqlite, worker_id)
            .await?
            .units)
    }

    /// What a worker holds (open offers included): units used and allowed, units used per
    /// channel, and how many offers are open.
    pub async fn worker_holdings(&self, worker_id: WorkerId) -> Result<Holdings> {
        let mut conn = self.reader.acquire().await?;
        let held = held_locked(&mut conn, Engine::Sqlite, worker_id).await?;
        Ok(Holdings {
            units: held.units,
            channels: held.channels,
            open_offers: held.open_offers,
        })
    }

    /// Workers whose presence is `available`, in id order, at most [`ROUND_WORKERS_MAX`].
    pub async fn available_workers(&self) -> Result<Vec<WorkerId>> {
        let rows = sqlx::query(
            "SELECT worker_id FROM worker_routing WHERE presence = 'available' ORDER BY worker_id LIMIT $1",
        )
        .bind(ROUND_WORKERS_MAX)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| parse(row, "worker_id")).collect()
    }

    /// One offer of a worker. Another worker's offer reads as missing.
    pub async fn offer(&self, worker_id: WorkerId, offer_id: OfferId) -> Result<StoredOffer> {
        let row = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE id = $1 AND worker_id = $2"
        ))
        .bind(offer_id.to_string())
        .bind(worker_id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("offer", offer_id))?;
        offer_row(&row)
    }

    /// A worker's open offers, soonest expiry first (at most [`WORKER_OFFERS_MAX`]).
    pub async fn open_offers(&self, worker_id: WorkerId) -> Result<Vec<StoredOffer>> {
        let rows = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE worker_id = $1 AND outcome IS NULL
             ORDER BY expires_at_us, id LIMIT $2"
        ))
        .bind(worker_id.to_string())
        .bind(WORKER_OFFERS_MAX)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(offer_row).collect()
    }

    /// Every offer of a task, oldest first.
    pub async fn task_offers(&self, task_id: TaskId) -> Result<Vec<StoredOffer>> {
        let rows = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE task_id = $1 ORDER BY offered_at_us, id LIMIT $2"
        ))
        .bind(task_id.to_string())
        .bind(WORKER_OFFERS_MAX)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(offer_row).collect()
    }

    /// The worker accepts their open offer before it expires: it becomes an assignment through
    /// the exactly-once path (`offered → assigned`), and the offer's explanation is linked to
    /// the assignment. Refused with a conflict when the offer has ended or expired.
    pub async fn accept_offer(
        &self,
        worker_id: WorkerId,
        offer_id: OfferId,
        assignment_id: AssignmentId,
        now: Timestamp,
    ) -> Result<Task> {
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(self).await?;
        let row = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS}, explanation_id FROM offers WHERE id = $1 AND worker_id = $2{lock}"
        ))
        .bind(offer_id.to_string())
        .bind(worker_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("offer", offer_id))?;
        let offer = offer_row(&row)?;
        let explanation_id: String = get(&row, "explanation_id")?;
        if let Some(outcome) = offer.outcome {
            let message = format!("offer {offer_id} has ended ({})", outcome_code(outcome));
            rollback_and_return!(tx, Err(StoreError::Conflict { message }));
        }
        if offer.expires_at <= now {
            let message = format!("offer {offer_id} has expired");
            rollback_and_return!(tx, Err(StoreError::Conflict { message }));
        }
        sqlx::query("UPDATE offers SET outcome = 'accepted', ended_at_us = $1 WHERE id = $2 AND outcome IS NULL")
            .bind(us(now))
            .bind(offer_id.to_string())
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2{lock}"
        ))
        .bind(offer.client_id.to_string())
        .bind(offer.task_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("task", offer.task_id))?;
        let task = assign(&mut tx, task_row(&row)?, worker_id, assignment_id, now).await?;
        sqlx::query(
            "UPDATE routing_explanations SET assignment_id = $1 WHERE id = $2 AND client_id = $3",
        )
        .bind(assignment_id.to_string())
        .bind(explanation_id)
        .bind(offer.client_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(task)
    }

    /// The worker declines their open offer: the task goes back to `ready`, and the worker is
    /// stored as excluded from it (no path gives it to them again).
    pub async fn decline_offer(
        &self,
        worker_id: WorkerId,
        offer_id: OfferId,
        now: Timestamp,
    ) -> Result<StoredOffer> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let row = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE id = $1 AND worker_id = $2"
        ))
        .bind(offer_id.to_string())
        .bind(worker_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("offer", offer_id))?;
        let mut offer = offer_row(&row)?;
        if !end_offer(&mut tx, &offer, OfferOutcome::Declined, now).await? {
            let message = format!("offer {offer_id} has ended");
            rollback_and_return!(tx, Err(StoreError::Conflict { message }));
        }
        store_exclusion(
            &mut tx,
            offer.client_id,
            offer.task_id,
            worker_id,
            ExclusionReason::Declined,
            now,
        )
        .await?;
        tx.commit().await?;
        offer.outcome = Some(OfferOutcome::Declined);
        offer.ended_at = Some(crate::work::stored(now));
        Ok(offer)
    }

    /// Ends offers whose time ran out by `now` (at most [`EXPIRE_BATCH_MAX`]): each task goes
    /// back to `ready` for the next best worker. Returns the offers ended.
    pub async fn expire_offers(&self, now: Timestamp) -> Result<Vec<StoredOffer>> {
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(self).await?;
        let rows = sqlx::query(&format!(
            "SELECT {OFFER_COLUMNS} FROM offers WHERE outcome IS NULL AND expires_at_us <= $1
             ORDER BY expires_at_us, id LIMIT $2{lock}"
        ))
        .bind(us(now))
        .bind(EXPIRE_BATCH_MAX)
        .fetch_all(&mut *tx)
        .await?;
        let mut ended = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut offer = offer_row(row)?;
            if end_offer(&mut tx, &offer, OfferOutcome::TimedOut, now).await? {
                offer.outcome = Some(OfferOutcome::TimedOut);
                offer.ended_at = Some(crate::work::stored(now));
                ended.push(offer);
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Workers who declined or let lapse an offer of one of these tasks: the router does not
    /// offer a task to them again.
    pub async fn refusals(&self, task_ids: &[TaskId]) -> Result<Vec<(TaskId, WorkerId)>> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (0..task_ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT DISTINCT task_id, worker_id FROM offers
             WHERE outcome IN ('declined', 'timed_out') AND task_id IN ({}) LIMIT $1",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(REFUSALS_MAX);
        for id in task_ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| Ok((parse(row, "task_id")?, parse(row, "worker_id")?)))
            .collect()
    }
}
