//! Read models for the web UI: a worker's tasks, queues across clients, the live board, SLA
//! risk, the workforce list, a worker's reviews and the daily history of an engagement.
//!
//! These are firm-level reads (the firm sees every client's queues); handlers decide who may
//! see them. Tenant-scoped reads go through [`Tenant`] like everywhere else. Every listing is
//! bounded by [`VIEW_ROWS_MAX`] or the caller's smaller limit.

use jiff::Timestamp;
use karya_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Task, Worker};

use crate::clients::worker_row;
use crate::rows::{get, parse, timestamp, us};
use crate::work::{task_row, TASK_COLUMNS};
use crate::{Result, Store, Tenant};

/// The reviews of a maker's work, newest first (`$1` the maker, `$2` how many).
pub(crate) const REVIEWS_OF_MAKER_SQL: &str =
    "SELECT r.client_id, r.task_id, r.step, r.verdict, r.reviewed_at_us,
            (SELECT COUNT(*) FROM review_defects d WHERE d.review_id = r.id) AS defects
     FROM reviews r WHERE r.maker_id = $1
     ORDER BY r.reviewed_at_us DESC, r.id LIMIT $2";

/// Most rows any view returns: a screen's worth and then some; pages beyond it are for exports.
pub const VIEW_ROWS_MAX: u32 = 500;

/// Tasks waiting in one state and service line, for the live board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    pub service_line: String,
    pub state: TaskState,
    pub tasks: i64,
}

/// A work item whose resolution target is near or past.
#[derive(Debug, Clone)]
pub struct RiskItem {
    pub client_id: ClientId,
    pub work_item_id: WorkItemId,
    pub title: String,
    pub state: WorkItemState,
    pub due_at: Timestamp,
    pub warn_at: Option<Timestamp>,
    pub breached: bool,
}

/// One review of a worker's task, as the worker sees it.
#[derive(Debug, Clone)]
pub struct ReviewLine {
    pub client_id: ClientId,
    pub task_id: TaskId,
    pub step: String,
    pub passed: bool,
    pub defects: i64,
    pub reviewed_at: Timestamp,
}

/// An item's dates, for the history charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemDates {
    pub received_at: Timestamp,
    /// When the resolution target was met (delivery), if it was.
    pub resolved_at: Option<Timestamp>,
    pub breached: bool,
    pub cancelled: bool,
}

fn limit(n: u32) -> i64 {
    i64::from(n.clamp(1, VIEW_ROWS_MAX))
}

impl Store {
    /// The tasks a worker holds now (an active assignment), most urgent first.
    pub async fn worker_tasks(&self, worker_id: WorkerId, n: u32) -> Result<Vec<Task>> {
        let columns = TASK_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM tasks t JOIN assignments a ON a.task_id = t.id
             WHERE a.worker_id = $1 AND a.released_at_us IS NULL
             ORDER BY t.priority DESC, t.created_at_us, t.id LIMIT $2"
        ))
        .bind(worker_id.to_string())
        .bind(limit(n))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(task_row).collect()
    }

    /// Tasks in one state across clients, oldest first (a review queue, a backlog).
    pub async fn tasks_in_state(&self, state: TaskState, n: u32) -> Result<Vec<Task>> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE state = $1
             ORDER BY priority DESC, updated_at_us, id LIMIT $2"
        ))
        .bind(state.code())
        .bind(limit(n))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(task_row).collect()
    }

    /// Open tasks per service line and state.
    pub async fn queue_counts(&self) -> Result<Vec<QueueCount>> {
        let rows = sqlx::query(
            "SELECT e.service_line AS service_line, t.state AS state, COUNT(*) AS tasks
             FROM tasks t JOIN work_items w ON w.id = t.work_item_id
             JOIN engagements e ON e.id = w.engagement_id
             WHERE t.state NOT IN ('done', 'cancelled')
             GROUP BY e.service_line, t.state ORDER BY e.service_line, t.state",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueCount {
                    service_line: get(row, "service_line")?,
                    state: parse(row, "state")?,
                    tasks: get(row, "tasks")?,
                })
            })
            .collect()
    }

    /// Open items whose resolution is due before `horizon` (or past due), soonest first.
    pub async fn sla_risk(&self, horizon: Timestamp, n: u32) -> Result<Vec<RiskItem>> {
        let rows = sqlx::query(
            "SELECT w.client_id, w.id, w.title, w.state, s.resolution_due_at_us,
                    s.resolution_warn_at_us, s.resolution_breached
             FROM sla_states s JOIN work_items w ON w.id = s.work_item_id
             WHERE s.resolution_met_at_us IS NULL AND s.resolution_due_at_us IS NOT NULL
               AND w.state NOT IN ('delivered', 'closed', 'cancelled')
               AND (s.resolution_due_at_us <= $1 OR s.resolution_breached <> 0
                    OR s.resolution_warn_at_us <= $1)
             ORDER BY s.resolution_due_at_us, w.id LIMIT $2",
        )
        .bind(us(horizon))
        .bind(limit(n))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let warn: Option<i64> = get(row, "resolution_warn_at_us")?;
                Ok(RiskItem {
                    client_id: parse(row, "client_id")?,
                    work_item_id: parse(row, "id")?,
                    title: get(row, "title")?,
                    state: parse(row, "state")?,
                    due_at: timestamp(row, "resolution_due_at_us")?,
                    warn_at: warn.and_then(|w| Timestamp::from_microsecond(w).ok()),
                    breached: get::<i64>(row, "resolution_breached")? != 0,
                })
            })
            .collect()
    }

    /// Workers in name order.
    pub async fn workers(&self, n: u32) -> Result<Vec<Worker>> {
        let rows = sqlx::query(
            "SELECT id, name, site_id, designation, created_at_us FROM workers
             ORDER BY name, id LIMIT $1",
        )
        .bind(limit(n))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(worker_row).collect()
    }

    /// Reviews of work the worker made, newest first.
    pub async fn reviews_of_maker(&self, worker_id: WorkerId, n: u32) -> Result<Vec<ReviewLine>> {
        let rows = sqlx::query(REVIEWS_OF_MAKER_SQL)
            .bind(worker_id.to_string())
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReviewLine {
                    client_id: parse(row, "client_id")?,
                    task_id: parse(row, "task_id")?,
                    step: get(row, "step")?,
                    passed: get::<String>(row, "verdict")? == "pass",
                    defects: get(row, "defects")?,
                    reviewed_at: timestamp(row, "reviewed_at_us")?,
                })
            })
            .collect()
    }
}

impl Tenant {
    /// The dates of an engagement's items received before `to`, for charts of a period.
    pub async fn item_dates(
        &self,
        engagement_id: EngagementId,
        to: Timestamp,
        n: u32,
    ) -> Result<Vec<ItemDates>> {
        let rows = sqlx::query(
            "SELECT w.received_at_us, w.state, s.resolution_met_at_us, s.resolution_breached
             FROM work_items w LEFT JOIN sla_states s ON s.work_item_id = w.id
             WHERE w.client_id = $1 AND w.engagement_id = $2 AND w.received_at_us < $3
             ORDER BY w.received_at_us DESC, w.id LIMIT $4",
        )
        .bind(self.client_id.to_string())
        .bind(engagement_id.to_string())
        .bind(us(to))
        .bind(i64::from(n))
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let met: Option<i64> = get(row, "resolution_met_at_us")?;
                let breached: Option<i64> = get(row, "resolution_breached")?;
                let state: WorkItemState = parse(row, "state")?;
                Ok(ItemDates {
                    received_at: timestamp(row, "received_at_us")?,
                    resolved_at: met.and_then(|m| Timestamp::from_microsecond(m).ok()),
                    breached: breached.unwrap_or(0) != 0,
                    cancelled: state == WorkItemState::Cancelled,
                })
            })
            .collect()
    }
}
