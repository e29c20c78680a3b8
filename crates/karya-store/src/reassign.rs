//! A lead moving a task to another worker (the SLA risk list's *Reassign*): whoever holds or is
//! offered the task lets go of it, the new worker holds it, and the reason is recorded, all in
//! one transaction. Who the new worker is (the best eligible one, or one the lead named) is the
//! caller's decision; the store checks the QA bars like every other claim path.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{AssignmentId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{OfferOutcome, Task};
use serde_json::json;

use crate::events::append;
use crate::offers::{end_offer, move_task, open_offer_of};
use crate::rows::{parse, us};
use crate::work::{assign, task_row, TASK_COLUMNS};
use crate::{Engine, Result, StoreError, Tenant};

/// Longest reason recorded with a reassignment, in characters.
pub const REASSIGN_REASON_LEN_MAX: usize = 500;

/// What a lead asks for.
#[derive(Debug, Clone)]
pub struct Reassignment {
    pub task_id: TaskId,
    pub to: WorkerId,
    pub assignment_id: AssignmentId,
    pub reason: String,
    /// How the worker was chosen, e.g. `best_eligible` or `named`.
    pub rule: String,
    /// The user who asked.
    pub by: uuid::Uuid,
}

/// What came of it.
#[derive(Debug, Clone)]
pub struct Reassigned {
    pub task: Task,
    /// Who held (or was offered) the task before.
    pub previous: Option<WorkerId>,
}

/// Task states a reassignment may start from.
pub const REASSIGNABLE: [TaskState; 6] = [
    TaskState::Ready,
    TaskState::Offered,
    TaskState::Assigned,
    TaskState::InProgress,
    TaskState::Rework,
    TaskState::Escalated,
];

impl Tenant {
    /// Gives a task to `to`, taking it from whoever holds it or is offered it. Refused (and
    /// nothing written) for a task past the worker's hands (submitted, in review, done...), for
    /// the worker who holds it already, and for a worker a QA bar keeps from it.
    pub async fn reassign_task(&self, new: &Reassignment, now: Timestamp) -> Result<Reassigned> {
        let reason = new.reason.trim();
        if reason.is_empty() || reason.chars().count() > REASSIGN_REASON_LEN_MAX {
            return Err(StoreError::Rejected {
                message: format!(
                    "a reassignment needs a reason of 1 to {REASSIGN_REASON_LEN_MAX} characters"
                ),
            });
        }
        let lock = match self.store.engine {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2{lock}"
        ))
        .bind(self.client_id.to_string())
        .bind(new.task_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("task", new.task_id))?;
        let mut task = task_row(&row)?;
        if !REASSIGNABLE.contains(&task.state) {
            tx.rollback().await?;
            return Err(StoreError::Rejected {
                message: format!(
                    "a task that is {} is past the worker's hands and cannot be reassigned",
                    task.state.code().replace('_', " ")
                ),
            });
        }
        let mut previous = None;
        match task.state {
            TaskState::Offered => {
                if let Some(offer) = open_offer_of(&mut tx, new.task_id).await? {
                    previous = Some(offer.worker_id);
                    end_offer(&mut tx, &offer, OfferOutcome::Withdrawn, now).await?;
                    task.state = TaskState::Ready;
                }
            }
            TaskState::Assigned | TaskState::InProgress | TaskState::Rework => {
                let holder: Option<WorkerId> = sqlx::query(
                    "SELECT worker_id FROM assignments WHERE task_id = $1 AND released_at_us IS NULL",
                )
                .bind(new.task_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| parse(&row, "worker_id"))
                .transpose()?;
                if holder == Some(new.to) {
                    tx.rollback().await?;
                    return Err(StoreError::Rejected {
                        message: "this worker holds the task already".into(),
                    });
                }
                previous = holder;
                let moved = move_task(
                    &mut tx,
                    self.client_id,
                    new.task_id,
                    task.state,
                    TaskState::Ready,
                    json!({"reason": "reassigned"}),
                    now,
                )
                .await?;
                if !moved {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict {
                        message: format!(
                            "task {} changed concurrently: reload and retry",
                            new.task_id
                        ),
                    });
                }
                sqlx::query("UPDATE assignments SET released_at_us = $1 WHERE task_id = $2 AND released_at_us IS NULL")
                    .bind(us(now))
                    .bind(new.task_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                append(
                    &mut tx,
                    self.client_id,
                    EventKind::TaskReleased,
                    &new.task_id.to_string(),
                    &json!({"reason": "reassigned"}),
                    now,
                )
                .await?;
                task.state = TaskState::Ready;
            }
            _ => {}
        }
        if let Some(bar) = crate::bars::bar_on(&mut tx, new.task_id, new.to).await? {
            tx.rollback().await?;
            return Err(StoreError::Rejected {
                message: bar.to_string(),
            });
        }
        let task = match assign(&mut tx, task, new.to, new.assignment_id, now).await {
            Ok(task) => task,
            Err(err) => {
                tx.rollback().await?;
                return Err(err);
            }
        };
        append(
            &mut tx,
            self.client_id,
            EventKind::TaskReassigned,
            &new.task_id.to_string(),
            &json!({
                "from_worker_id": previous.map(|w| w.to_string()),
                "to_worker_id": new.to.to_string(),
                "assignment_id": new.assignment_id.to_string(),
                "rule": new.rule,
                "reason": reason,
                "by": new.by.to_string(),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Reassigned { task, previous })
    }
}
