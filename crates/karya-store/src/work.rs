//! A client's work: engagements, work items and their tasks, and claiming tasks.
//!
//! Each change follows the same three beats: load what the rule needs, let `karya-core` decide
//! (the transition tables), then apply the change and its event in one transaction. Updates
//! are conditional on the state that was read (`WHERE state = $old`), so two concurrent
//! changes of one item cannot both succeed: the loser gets [`StoreError::Conflict`].

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{AssignmentId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Engagement, Priority, Task, WorkItem};
use karya_core::service_line::ServiceLine;
use serde_json::json;
use sqlx::any::AnyRow;

use crate::clients::page_of;
use crate::events::append;
use crate::rows::{get, is_foreign_key_violation, is_unique_violation, parse, timestamp, us};
use crate::tx::Write;
use crate::{Engine, Page, PageRequest, Result, Store, StoreError, Tenant};

/// What it takes to open an engagement.
#[derive(Debug, Clone)]
pub struct NewEngagement {
    pub id: EngagementId,
    pub name: String,
    pub service_line: ServiceLine,
}

/// What a client submits.
#[derive(Debug, Clone)]
pub struct NewWorkItem {
    pub id: WorkItemId,
    pub engagement_id: EngagementId,
    pub external_ref: Option<String>,
    pub title: String,
    pub priority: Priority,
    /// JSON text, already validated by the caller.
    pub input: String,
}

/// A step of a work item becoming a task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub work_item_id: WorkItemId,
    pub step: String,
}

/// Which work items to list.
#[derive(Debug, Clone, Default)]
pub struct WorkItemFilter {
    pub state: Option<WorkItemState>,
    pub engagement_id: Option<EngagementId>,
}

const ENGAGEMENT_COLUMNS: &str = "id, client_id, name, service_line, created_at_us";
pub(crate) const WORK_ITEM_COLUMNS: &str =
    "id, client_id, engagement_id, external_ref, title, priority, state, input, received_at_us, updated_at_us, version";
/// Ready tasks [`Store::claim_next_task`] passes over at most because the case rules exclude
/// the worker from them (they made the work those tasks check), before it answers "nothing".
const CASE_PASSES_MAX: usize = 32;

pub(crate) const TASK_COLUMNS: &str =
    "id, client_id, work_item_id, step, priority, state, created_at_us, updated_at_us";

pub(crate) fn priority_rank(priority: Priority) -> i64 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .expect("every priority is listed") as i64
}

pub(crate) fn priority_of(row: &AnyRow) -> Result<Priority> {
    let rank: i64 = get(row, "priority")?;
    usize::try_from(rank)
        .ok()
        .and_then(|idx| Priority::ALL.get(idx).copied())
        .ok_or_else(|| anyhow::anyhow!("stored priority {rank} unknown").into())
}

fn engagement_row(row: &AnyRow) -> Result<Engagement> {
    Ok(Engagement {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        name: get(row, "name")?,
        service_line: parse(row, "service_line")?,
        created_at: timestamp(row, "created_at_us")?,
    })
}

pub(crate) fn work_item_row(row: &AnyRow) -> Result<WorkItem> {
    Ok(WorkItem {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        engagement_id: parse(row, "engagement_id")?,
        external_ref: get(row, "external_ref")?,
        title: get(row, "title")?,
        priority: priority_of(row)?,
        state: parse(row, "state")?,
        input: get(row, "input")?,
        received_at: timestamp(row, "received_at_us")?,
        updated_at: timestamp(row, "updated_at_us")?,
        version: get::<i64>(row, "version")? as u64,
    })
}

pub(crate) fn task_row(row: &AnyRow) -> Result<Task> {
    Ok(Task {
        id: parse(row, "id")?,
        client_id: parse(row, "client_id")?,
        work_item_id: parse(row, "work_item_id")?,
        step: get(row, "step")?,
        priority: priority_of(row)?,
        state: parse(row, "state")?,
        created_at: timestamp(row, "created_at_us")?,
        updated_at: timestamp(row, "updated_at_us")?,
    })
}

/// Truncates to the stored precision, so returned values equal what a later read gives.
pub(crate) fn stored(ts: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(us(ts)).unwrap_or(ts)
}

/// Inserts an engagement and its `engagement.created` event in the caller's transaction: a
/// taken name is a conflict, an unknown client a 404.
pub(crate) async fn insert_engagement(
    conn: &mut crate::tx::Tx,
    client_id: karya_core::id::ClientId,
    new: &NewEngagement,
    now: Timestamp,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO engagements (id, client_id, name, service_line, created_at_us) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new.id.to_string())
    .bind(client_id.to_string())
    .bind(&new.name)
    .bind(new.service_line.code())
    .bind(us(now))
    .execute(&mut *conn)
    .await;
    match inserted {
        Err(err) if is_unique_violation(&err) => {
            return Err(StoreError::Conflict {
                message: format!("this client has an engagement named {:?} already", new.name),
            })
        }
        Err(err) if is_foreign_key_violation(&err) => {
            return Err(StoreError::not_found("client", client_id))
        }
        other => other?,
    };
    append(
        conn,
        client_id,
        EventKind::EngagementCreated,
        &new.id.to_string(),
        &json!({"name": new.name, "service_line": new.service_line.code()}),
        now,
    )
    .await?;
    Ok(())
}

impl Tenant {
    pub async fn create_engagement(
        &self,
        new: &NewEngagement,
        now: Timestamp,
    ) -> Result<Engagement> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        insert_engagement(&mut tx, self.client_id, new, now).await?;
        tx.commit().await?;
        Ok(Engagement {
            id: new.id,
            client_id: self.client_id,
            name: new.name.clone(),
            service_line: new.service_line,
            created_at: stored(now),
        })
    }

    pub async fn engagement(&self, id: EngagementId) -> Result<Engagement> {
        let row = sqlx::query(&format!(
            "SELECT {ENGAGEMENT_COLUMNS} FROM engagements WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("engagement", id))?;
        engagement_row(&row)
    }

    pub async fn list_engagements(&self, page: &PageRequest) -> Result<Page<Engagement>> {
        let limit = page.limit();
        let rows = sqlx::query(&format!(
            "SELECT {ENGAGEMENT_COLUMNS} FROM engagements WHERE client_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(self.client_id.to_string())
        .bind(page.after.clone().unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.store.reader)
        .await?;
        let items = rows
            .iter()
            .map(engagement_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |e| e.id.to_string()))
    }

    /// Takes a work item in. A repeated `external_ref` within the engagement is a conflict that
    /// names the item already stored, so a client retrying after a lost response learns that
    /// its first attempt landed.
    pub async fn create_work_item(&self, new: &NewWorkItem, now: Timestamp) -> Result<WorkItem> {
        self.take_in(new, None, now).await
    }

    /// Takes a work item in and, when its engagement runs on a pack, starts it in the same
    /// transaction (`received → in_progress`) with its first step's task (id `first_id`) or job.
    pub async fn create_and_start_work_item(
        &self,
        new: &NewWorkItem,
        first_id: uuid::Uuid,
        now: Timestamp,
    ) -> Result<WorkItem> {
        self.take_in(new, Some(first_id), now).await
    }

    async fn take_in(
        &self,
        new: &NewWorkItem,
        first_id: Option<uuid::Uuid>,
        now: Timestamp,
    ) -> Result<WorkItem> {
        // The engagement must be this client's: checked by the same scoped read a client uses.
        self.engagement(new.engagement_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        // An item of a pack engagement that starts now is stored `in_progress` at once, as the
        // `received → in_progress` move would leave it (version 2), with both events: one write
        // and one SLA evaluation instead of two.
        let plan = match first_id {
            Some(first_id) => crate::flow::intake_plan(&mut tx, self.client_id, new.engagement_id)
                .await?
                .map(|plan| (plan, first_id)),
            None => None,
        };
        let (state, version) = match plan {
            Some(_) => (WorkItemState::InProgress, 2),
            None => (WorkItemState::Received, 1),
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO work_items ({WORK_ITEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)"
        ))
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(new.engagement_id.to_string())
        .bind(new.external_ref.clone())
        .bind(&new.title)
        .bind(priority_rank(new.priority))
        .bind(state.code())
        .bind(&new.input)
        .bind(us(now))
        .bind(version as i64)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                drop(tx);
                let existing = self
                    .work_item_by_ref(new.engagement_id, new.external_ref.as_deref().unwrap_or(""))
                    .await?;
                return Err(StoreError::Conflict {
                    message: format!(
                        "a work item with external_ref {:?} exists already in this engagement: {}",
                        new.external_ref.as_deref().unwrap_or(""),
                        existing.map(|item| item.id.to_string()).unwrap_or_default()
                    ),
                });
            }
            other => other?,
        };
        append(
            &mut tx,
            self.client_id,
            EventKind::WorkItemCreated,
            &new.id.to_string(),
            &json!({
                "engagement_id": new.engagement_id.to_string(),
                "external_ref": new.external_ref,
                "title": new.title,
                "priority": new.priority.code(),
            }),
            now,
        )
        .await?;
        if plan.is_some() {
            let payload = transition_payload(WorkItemState::Received, state, Some("intake"))?;
            append(
                &mut tx,
                self.client_id,
                EventKind::WorkItemTransitioned,
                &new.id.to_string(),
                &payload,
                now,
            )
            .await?;
        }
        crate::sla::refresh_item(
            &mut tx,
            self.client_id,
            new.id,
            new.engagement_id,
            new.priority,
            now,
        )
        .await?;
        let mut item = WorkItem {
            id: new.id,
            client_id: self.client_id,
            engagement_id: new.engagement_id,
            external_ref: new.external_ref.clone(),
            title: new.title.clone(),
            priority: new.priority,
            state,
            input: new.input.clone(),
            received_at: stored(now),
            updated_at: stored(now),
            version,
        };
        if let Some((plan, first_id)) = &plan {
            crate::flow::start_item(&mut tx, &mut item, plan, *first_id, now).await?;
        }
        tx.commit().await?;
        Ok(item)
    }

    async fn work_item_by_ref(
        &self,
        engagement_id: EngagementId,
        external_ref: &str,
    ) -> Result<Option<WorkItem>> {
        // Through the writer: on SQLite the item may be in a group of changes not committed
        // yet, which only the writer sees.
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(&format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND engagement_id = $2 AND external_ref = $3"
        ))
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(external_ref)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(work_item_row).transpose()
    }

    pub async fn work_item(&self, id: WorkItemId) -> Result<WorkItem> {
        let row = sqlx::query(&format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("work item", id))?;
        work_item_row(&row)
    }

    pub async fn list_work_items(
        &self,
        filter: &WorkItemFilter,
        page: &PageRequest,
    ) -> Result<Page<WorkItem>> {
        let limit = page.limit();
        // Unset filters bind as NULL and match everything; the statement stays one shape.
        let rows = sqlx::query(&format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM work_items
             WHERE client_id = $1 AND id > $2
               AND ($3 = '' OR state = $3) AND ($4 = '' OR engagement_id = $4)
             ORDER BY id LIMIT $5"
        ))
        .bind(self.client_id.to_string())
        .bind(page.after.clone().unwrap_or_default())
        .bind(filter.state.map(|s| s.code()).unwrap_or(""))
        .bind(
            filter
                .engagement_id
                .map(|e| e.to_string())
                .unwrap_or_default(),
        )
        .bind(limit)
        .fetch_all(&self.store.reader)
        .await?;
        let items = rows.iter().map(work_item_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |w| w.id.to_string()))
    }

    /// Moves a work item to another state. With `expected_version`, refuses if the item changed
    /// since the caller read it.
    pub async fn transition_work_item(
        &self,
        id: WorkItemId,
        to: WorkItemState,
        reason: Option<&str>,
        expected_version: Option<u64>,
        now: Timestamp,
    ) -> Result<WorkItem> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(&format!(
            "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("work item", id))?;
        let item = work_item_row(&row)?;
        if let Some(expected) = expected_version.filter(|v| *v != item.version) {
            return Err(StoreError::Conflict {
                message: format!(
                    "work item {id} is at version {}, not {expected}: reload and retry",
                    item.version
                ),
            });
        }
        let item = move_work_item(&mut tx, item, to, reason, now).await?;
        tx.commit().await?;
        Ok(item)
    }

    /// Makes a step of a work item a task, ready for a worker.
    pub async fn create_task(&self, new: &NewTask, now: Timestamp) -> Result<Task> {
        let mut tasks = self.create_tasks(std::slice::from_ref(new), now).await?;
        Ok(tasks.pop().expect("one task in, one task out"))
    }

    /// Makes several steps tasks in one transaction: all of them or none.
    pub async fn create_tasks(&self, new: &[NewTask], now: Timestamp) -> Result<Vec<Task>> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let mut tasks = Vec::with_capacity(new.len());
        // Consecutive tasks of one work item (the usual case) read the item once.
        let mut cached: Option<WorkItem> = None;
        for new in new {
            let item = match cached.take() {
                Some(item) if item.id == new.work_item_id => item,
                _ => {
                    let row = sqlx::query(&format!(
                        "SELECT {WORK_ITEM_COLUMNS} FROM work_items WHERE client_id = $1 AND id = $2"
                    ))
                    .bind(self.client_id.to_string())
                    .bind(new.work_item_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found("work item", new.work_item_id))?;
                    work_item_row(&row)?
                }
            };
            sqlx::query(&format!(
                "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
            ))
            .bind(new.id.to_string())
            .bind(self.client_id.to_string())
            .bind(new.work_item_id.to_string())
            .bind(&new.step)
            .bind(priority_rank(item.priority))
            .bind(TaskState::Ready.code())
            .bind(us(now))
            .execute(&mut *tx)
            .await?;
            append(
                &mut tx,
                self.client_id,
                EventKind::TaskCreated,
                &new.id.to_string(),
                &json!({"work_item_id": new.work_item_id.to_string(), "step": new.step}),
                now,
            )
            .await?;
            tasks.push(Task {
                id: new.id,
                client_id: self.client_id,
                work_item_id: new.work_item_id,
                step: new.step.clone(),
                priority: item.priority,
                state: TaskState::Ready,
                created_at: stored(now),
                updated_at: stored(now),
            });
            cached = Some(item);
        }
        tx.commit().await?;
        Ok(tasks)
    }

    pub async fn task(&self, id: TaskId) -> Result<Task> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("task", id))?;
        task_row(&row)
    }

    pub async fn tasks_of(&self, work_item_id: WorkItemId) -> Result<Vec<Task>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND work_item_id = $2 ORDER BY created_at_us, id"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(task_row).collect()
    }

    /// Moves a task to another state. Leaving the held states (to ready, on hold, escalated or
    /// cancelled) releases the worker's assignment in the same transaction.
    pub async fn transition_task(&self, id: TaskId, to: TaskState, now: Timestamp) -> Result<Task> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2"
        ))
        .bind(self.client_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("task", id))?;
        let mut task = task_row(&row)?;
        let action = task
            .state
            .transition(to)
            .map_err(|err| StoreError::Rejected {
                message: err.to_string(),
            })?;
        if to == TaskState::Assigned {
            return Err(StoreError::Rejected {
                message:
                    "a task is assigned by claiming it for a worker, not by a plain transition"
                        .into(),
            });
        }
        // Written at commit, with the events: nothing below reads them.
        tx.write_at_commit(
            Write::new(
                "UPDATE tasks SET state = $1, updated_at_us = $2 WHERE client_id = $3 AND id = $4 AND state = $5",
            )
            .bind(to.code())
            .bind(us(now))
            .bind(self.client_id.to_string())
            .bind(id.to_string())
            .bind(task.state.code())
            .expect_rows(1, format!("task {id} changed concurrently: reload and retry")),
        )
        .await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::TaskTransitioned,
            &id.to_string(),
            &json!({"from": task.state.code(), "to": to.code(), "action": action}),
            now,
        )
        .await?;
        if task.state.is_held() && !to.is_held() {
            tx.write_at_commit(
                Write::new("UPDATE assignments SET released_at_us = $1 WHERE task_id = $2 AND released_at_us IS NULL")
                    .bind(us(now))
                    .bind(id.to_string()),
            )
            .await?;
            append(
                &mut tx,
                self.client_id,
                EventKind::TaskReleased,
                &id.to_string(),
                &json!({"reason": action}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        task.state = to;
        task.updated_at = stored(now);
        Ok(task)
    }
    /// Gives one particular task to a worker: an accepted offer, or a lead taking an escalated
    /// task. Refused unless the task's state allows assignment, and when a QA bar or the case
    /// rules keep the worker from it (a maker does not check their own work; a worker who
    /// declined the task or let its offer lapse does not get it again).
    pub async fn assign_task(
        &self,
        task_id: TaskId,
        worker_id: WorkerId,
        assignment_id: AssignmentId,
        now: Timestamp,
    ) -> Result<Task> {
        let lock = match self.store.engine {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE client_id = $1 AND id = $2{lock}"
        ))
        .bind(self.client_id.to_string())
        .bind(task_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("task", task_id))?;
        if let Some(bar) = crate::bars::bar_on(&mut tx, task_id, worker_id).await? {
            // Released now, not when the pool gets to it: the row lock would make claimers
            // skip the task meanwhile.
            tx.rollback().await?;
            return Err(StoreError::Rejected {
                message: bar.to_string(),
            });
        }
        if crate::case::is_excluded(&mut tx, task_id, worker_id).await? {
            tx.rollback().await?;
            return Err(StoreError::Rejected {
                message: format!(
                    "worker {worker_id} is excluded from task {task_id}: they made the work it checks, or declined it or let its offer lapse"
                ),
            });
        }
        let task = assign(&mut tx, task_row(&row)?, worker_id, assignment_id, now).await?;
        tx.commit().await?;
        Ok(task)
    }
}

/// Moves a task to `assigned` for a worker inside the caller's transaction: the state change,
/// the assignment row and the event.
pub(crate) async fn assign(
    conn: &mut crate::tx::Tx,
    mut task: Task,
    worker_id: WorkerId,
    assignment_id: AssignmentId,
    now: Timestamp,
) -> Result<Task> {
    let action =
        task.state
            .transition(TaskState::Assigned)
            .map_err(|err| StoreError::Rejected {
                message: err.to_string(),
            })?;
    // Both at commit: the claimers hold the task's row (or SQLite's one writer) meanwhile.
    let task_id = task.id;
    conn.write_at_commit(
        Write::new(
            "UPDATE tasks SET state = 'assigned', updated_at_us = $1 WHERE id = $2 AND state = $3",
        )
        .bind(us(now))
        .bind(task.id.to_string())
        .bind(task.state.code())
        .expect_rows(
            1,
            format!("task {task_id} changed concurrently: reload and retry"),
        ),
    )
    .await?;
    conn.write_at_commit(
        Write::new(
            "INSERT INTO assignments (id, task_id, client_id, worker_id, assigned_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(assignment_id.to_string())
        .bind(task.id.to_string())
        .bind(task.client_id.to_string())
        .bind(worker_id.to_string())
        .bind(us(now))
        .map_error(move |err| {
            if is_foreign_key_violation(err) {
                Some(StoreError::not_found("worker", worker_id))
            } else if is_unique_violation(err) {
                Some(StoreError::Conflict {
                    message: format!("task {task_id} is held by another worker"),
                })
            } else {
                None
            }
        }),
    )
    .await?;
    append(
        conn,
        task.client_id,
        EventKind::TaskClaimed,
        &task.id.to_string(),
        &json!({
            "from": task.state.code(),
            "worker_id": worker_id.to_string(),
            "assignment_id": assignment_id.to_string(),
            "action": action,
        }),
        now,
    )
    .await?;
    task.state = TaskState::Assigned;
    task.updated_at = stored(now);
    Ok(task)
}

/// The payload of a work item's `work_item.transitioned` event from `from` to `to`; a move the
/// state machine does not allow is rejected.
fn transition_payload(
    from: WorkItemState,
    to: WorkItemState,
    reason: Option<&str>,
) -> Result<serde_json::Value> {
    let action = from.transition(to).map_err(|err| StoreError::Rejected {
        message: err.to_string(),
    })?;
    Ok(json!({"from": from.code(), "to": to.code(), "action": action, "reason": reason}))
}

/// Moves a work item (as read in this transaction) to another state inside the caller's
/// transaction: the transition-table check, the update conditional on the version read, the
/// event, and the SLA clock. Every change of a work item's state goes through here (a new item
/// stored started records the same event, see `take_in`).
pub(crate) async fn move_work_item(
    conn: &mut crate::tx::Tx,
    mut item: WorkItem,
    to: WorkItemState,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<WorkItem> {
    let id = item.id;
    let payload = transition_payload(item.state, to, reason)?;
    let updated = sqlx::query(
        "UPDATE work_items SET state = $1, updated_at_us = $2, version = version + 1
         WHERE client_id = $3 AND id = $4 AND version = $5",
    )
    .bind(to.code())
    .bind(us(now))
    .bind(item.client_id.to_string())
    .bind(id.to_string())
    .bind(item.version as i64)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Conflict {
            message: format!("work item {id} changed concurrently: reload and retry"),
        });
    }
    append(
        conn,
        item.client_id,
        EventKind::WorkItemTransitioned,
        &id.to_string(),
        &payload,
        now,
    )
    .await?;
    crate::sla::refresh_item(
        conn,
        item.client_id,
        id,
        item.engagement_id,
        item.priority,
        now,
    )
    .await?;
    item.state = to;
    item.updated_at = stored(now);
    item.version += 1;
    Ok(item)
}

impl Store {
    /// Gives the worker the most urgent ready task (highest priority, then oldest) that no QA
    /// bar (see `bars`) and no case rule (a stored exclusion, a check of their own work) keeps
    /// from them, or `None` when nothing is ready. Exactly-once under any number of concurrent
    /// claimers: on PostgreSQL rows are claimed with `FOR UPDATE SKIP LOCKED`, on SQLite writes
    /// are serial; in both, a partial unique index refuses a second active assignment of a task.
    pub async fn claim_next_task(
        &self,
        worker_id: WorkerId,
        assignment_id: AssignmentId,
        now: Timestamp,
    ) -> Result<Option<Task>> {
        let lock = match self.engine {
            Engine::Postgres => " FOR UPDATE OF t SKIP LOCKED",
            Engine::Sqlite => "",
        };
        let mut tx = crate::tx::Tx::begin(self).await?;
        // Stored exclusions are filtered by the statement; the case rules (a maker does not
        // check their own work) need the item's history, so a task they exclude the worker
        // from is passed over and the next one read, up to a bound.
        let mut passed_over: Vec<String> = Vec::new();
        let task = loop {
            if passed_over.len() >= CASE_PASSES_MAX {
                tx.rollback().await?;
                return Ok(None);
            }
            let skip: Vec<String> = (0..passed_over.len())
                .map(|n| format!("${}", n + 2))
                .collect();
            let skip = match skip.is_empty() {
                true => String::new(),
                false => format!(" AND t.id NOT IN ({})", skip.join(", ")),
            };
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks t WHERE state = 'ready' AND NOT {}
                   AND NOT EXISTS (SELECT 1 FROM task_exclusions x WHERE x.task_id = t.id AND x.worker_id = $1){skip}
                 ORDER BY priority DESC, created_at_us, id LIMIT 1{lock}",
                crate::bars::any_bar_sql("$1")
            );
            let mut query = sqlx::query(&sql).bind(worker_id.to_string());
            for id in &passed_over {
                query = query.bind(id.clone());
            }
            let Some(row) = query.fetch_optional(&mut *tx).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            let task = task_row(&row)?;
            let case = crate::case::CaseQuery {
                task_id: task.id,
                work_item_id: task.work_item_id,
                step: task.step.clone(),
            };
            if !crate::case::excluded_by_case(&mut tx, &case, worker_id).await? {
                break task;
            }
            passed_over.push(task.id.to_string());
        };
        let task = assign(&mut tx, task, worker_id, assignment_id, now).await?;
        tx.commit().await?;
        Ok(Some(task))
    }

    /// The worker holding a task now, if any.
    pub async fn active_assignee(&self, task_id: TaskId) -> Result<Option<WorkerId>> {
        let row = sqlx::query(
            "SELECT worker_id FROM assignments WHERE task_id = $1 AND released_at_us IS NULL",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(|row| parse(row, "worker_id")).transpose()
    }
}
