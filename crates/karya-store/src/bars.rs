//! Who may not take which task, whatever routing prefers: the bars that quality assurance
//! puts on claims, and lifting a gold pause.
//!
//! Three bars, each kept by QA elsewhere and honoured here by every claim path (the queue's
//! `claim_next_task`, a particular `assign_task`, and *Get next* through [`Store::barred_tasks`]):
//! - a worker paused on a step of an engagement by failing gold tasks takes none of that
//!   step's tasks until a lead lifts the pause;
//! - the maker of work that failed review, when the engagement sends rework to another worker,
//!   does not take that task again;
//! - a worker takes at most one part of a consensus group: keyings stay independent, and the
//!   adjudicator is none of the keyers.
//!
//! Each bar is one SQL condition on a task row aliased `t`, so the queue can skip barred tasks
//! in the same statement that picks the next one.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{ConsensusGroupId, EngagementId, TaskId, WorkerId};
use serde_json::json;
use sqlx::AnyConnection;

use crate::events::append;
use crate::rows::{get, json_id_list, json_ids, parse, us};
use crate::{Engine, Result, Store, StoreError, Tenant};

/// Task ids checked in one statement by [`Store::barred_tasks`]: one bound parameter each,
/// kept well below the engines' parameter limits.
pub const BAR_CHECK_BATCH_MAX: usize = 200;

/// Why a worker may not take a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimBar {
    #[error("worker {worker_id} is paused on step {step:?} of engagement {engagement_id} after failing gold tasks; a lead must lift the pause")]
    PausedOnStep {
        worker_id: WorkerId,
        engagement_id: EngagementId,
        step: String,
    },
    #[error("worker {worker_id} made the work of task {task_id} that failed review; its rework goes to another worker")]
    ReworkExcluded {
        worker_id: WorkerId,
        task_id: TaskId,
    },
    #[error("worker {worker_id} takes part in consensus group {group_id} already; each part needs a different worker")]
    OtherConsensusPart {
        worker_id: WorkerId,
        group_id: ConsensusGroupId,
    },
}

/// The paused-on-step bar: true when the worker bound as `worker` is paused on the task's step.
fn paused_sql(worker: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM sampling_states s JOIN work_items wi ON wi.id = t.work_item_id
            WHERE s.engagement_id = wi.engagement_id AND s.worker_id = {worker} AND s.step = t.step
              AND s.paused_at_us IS NOT NULL)"
    )
}

fn rework_sql(worker: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM reviews r
            WHERE r.client_id = t.client_id AND r.task_id = t.id AND r.rework_excluded_id = {worker})"
    )
}

fn consensus_sql(worker: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM consensus_parts p
            JOIN consensus_parts q ON q.group_id = p.group_id AND q.task_id <> p.task_id
            JOIN assignments a ON a.task_id = q.task_id
            WHERE p.task_id = t.id AND a.worker_id = {worker})"
    )
}

/// True when any bar keeps the worker bound as `worker` (a placeholder such as `$1`) from
/// the task row `t`.
pub(crate) fn any_bar_sql(worker: &str) -> String {
    format!(
        "({} OR {} OR {})",
        paused_sql(worker),
        rework_sql(worker),
        consensus_sql(worker)
    )
}

/// The first bar keeping `worker_id` from `task_id`, with what it names, inside the caller's
/// transaction.
pub(crate) async fn bar_on(
    conn: &mut AnyConnection,
    task_id: TaskId,
    worker_id: WorkerId,
) -> Result<Option<ClaimBar>> {
    let paused = sqlx::query(
        "SELECT wi.engagement_id, t.step FROM tasks t
         JOIN work_items wi ON wi.id = t.work_item_id
         JOIN sampling_states s ON s.engagement_id = wi.engagement_id AND s.step = t.step
         WHERE t.id = $1 AND s.worker_id = $2 AND s.paused_at_us IS NOT NULL",
    )
    .bind(task_id.to_string())
    .bind(worker_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = paused {
        return Ok(Some(ClaimBar::PausedOnStep {
            worker_id,
            engagement_id: parse(&row, "engagement_id")?,
            step: get(&row, "step")?,
        }));
    }
    let excluded = sqlx::query(&format!(
        "SELECT 1 AS barred FROM tasks t WHERE t.id = $1 AND {}",
        rework_sql("$2")
    ))
    .bind(task_id.to_string())
    .bind(worker_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if excluded.is_some() {
        return Ok(Some(ClaimBar::ReworkExcluded { worker_id, task_id }));
    }
    let part = sqlx::query(&format!(
        "SELECT p.group_id FROM consensus_parts p, tasks t WHERE p.task_id = $1 AND t.id = p.task_id AND {}",
        consensus_sql("$2")
    ))
    .bind(task_id.to_string())
    .bind(worker_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = part {
        return Ok(Some(ClaimBar::OtherConsensusPart {
            worker_id,
            group_id: parse(&row, "group_id")?,
        }));
    }
    Ok(None)
}

/// Of the tasks whose ids `$2` lists (a JSON array), those a bar keeps from the worker `$1`.
pub(crate) fn barred_sql(engine: Engine) -> String {
    format!(
        "SELECT t.id FROM tasks t WHERE t.id IN (SELECT id FROM ({}) AS listed) AND {}",
        json_ids(engine, "$2"),
        any_bar_sql("$1")
    )
}

impl Store {
    /// Of `task_ids`, those the worker may not take (in no particular order).
    pub async fn barred_tasks(
        &self,
        worker_id: WorkerId,
        task_ids: &[TaskId],
    ) -> Result<Vec<TaskId>> {
        let mut barred = Vec::new();
        let sql = barred_sql(self.engine);
        for chunk in task_ids.chunks(BAR_CHECK_BATCH_MAX) {
            let query = sqlx::query(&sql)
                .bind(worker_id.to_string())
                .bind(json_id_list(chunk));
            for row in query.fetch_all(&self.reader).await? {
                barred.push(parse(&row, "id")?);
            }
        }
        Ok(barred)
    }
}

impl Tenant {
    /// Lifts a gold pause of a worker on a step of an engagement: the worker may take the
    /// step's tasks again. The evidence stays; a further failing gold window pauses again.
    pub async fn lift_pause(
        &self,
        engagement_id: EngagementId,
        worker_id: WorkerId,
        step: &str,
        lifted_by: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.engagement(engagement_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(
            "SELECT paused_at_us FROM sampling_states
             WHERE client_id = $1 AND engagement_id = $2 AND worker_id = $3 AND step = $4
               AND paused_at_us IS NOT NULL",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(worker_id.to_string())
        .bind(step)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Rejected {
            message: format!(
                "worker {worker_id} is not paused on step {step:?} of engagement {engagement_id}"
            ),
        })?;
        let paused_at_us: i64 = get(&row, "paused_at_us")?;
        sqlx::query(
            "UPDATE sampling_states SET paused_at_us = NULL, updated_at_us = $1
             WHERE client_id = $2 AND engagement_id = $3 AND worker_id = $4 AND step = $5",
        )
        .bind(us(now))
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(worker_id.to_string())
        .bind(step)
        .execute(&mut *tx)
        .await?;
        let paused_at = Timestamp::from_microsecond(paused_at_us)
            .map(|t| t.to_string())
            .unwrap_or_default();
        append(
            &mut tx,
            self.client_id,
            EventKind::WorkerPauseLifted,
            &worker_id.to_string(),
            &json!({
                "engagement_id": engagement_id.to_string(),
                "step": step,
                "paused_at": paused_at,
                "lifted_by": lifted_by,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
