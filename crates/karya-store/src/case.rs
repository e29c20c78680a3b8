//! The case side of routing: each task's preferred worker and excluded workers, from the work
//! item's assignment records and the exclusions stored for the task.
//!
//! Exclusions are stored when a worker declines a task's offer (and may be stored for a named
//! conflict); the makers excluded from a checking step are read from the item's assignments,
//! which are the record of who did what. The rule that combines them is `karya-core`'s
//! [`case_routing`]. The router loop and *Get next* read it for a page of tasks at once; the
//! claim paths (an offer, a *Get next* claim) check it again for their one task inside their
//! transaction, so an excluded worker never gets the task whichever path runs first.

use std::collections::HashMap;

use jiff::Timestamp;
use karya_core::id::{ClientId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::routing::case::{case_routing, CaseRouting, ExclusionReason, PriorWork};
use karya_core::service_line::ServiceLine;
use sqlx::AnyConnection;

use crate::bars::any_bar_sql;
use crate::rows::{get, json_id_list, json_ids, parse, timestamp, us};
use crate::{Engine, Result, Store, StoreError};

/// Ids bound in one JSON list of engagements.
const JSON_LIST_MAX: usize = 1_000;

/// One task whose case is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseQuery {
    pub task_id: TaskId,
    pub work_item_id: WorkItemId,
    pub step: String,
}

/// Whether the worker of a task's latest assignment did (or is doing) it.
fn made(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Assigned
            | TaskState::InProgress
            | TaskState::Submitted
            | TaskState::InReview
            | TaskState::Accepted
            | TaskState::Rework
            | TaskState::Done
    )
}

/// One assignment row of an item, as read.
struct AssignmentRow {
    task_id: TaskId,
    work_item_id: WorkItemId,
    step: String,
    state: TaskState,
    worker_id: WorkerId,
    assigned_at: Timestamp,
}

fn assignment_row(row: &sqlx::any::AnyRow) -> Result<AssignmentRow> {
    Ok(AssignmentRow {
        task_id: parse(row, "task_id")?,
        work_item_id: parse(row, "work_item_id")?,
        step: get(row, "step")?,
        state: parse(row, "state")?,
        worker_id: parse(row, "worker_id")?,
        assigned_at: timestamp(row, "assigned_at_us")?,
    })
}

pub(crate) const HISTORY_SQL: &str =
    "SELECT t.id AS task_id, t.work_item_id, t.step, t.state, a.worker_id, a.assigned_at_us
     FROM assignments a JOIN tasks t ON t.id = a.task_id";

/// The item's earlier work as the case rule reads it: per other task, its latest assignment.
fn history_for(rows: &[AssignmentRow], query: &CaseQuery) -> Vec<PriorWork> {
    let mut latest: HashMap<TaskId, &AssignmentRow> = HashMap::new();
    for row in rows
        .iter()
        .filter(|r| r.work_item_id == query.work_item_id && r.task_id != query.task_id)
    {
        match latest.get(&row.task_id) {
            Some(seen) if seen.assigned_at > row.assigned_at => {}
            _ => {
                latest.insert(row.task_id, row);
            }
        }
    }
    let mut history: Vec<PriorWork> = latest
        .values()
        .map(|r| PriorWork {
            step: r.step.clone(),
            worker_id: r.worker_id,
            assigned_at: r.assigned_at,
            made: made(r.state),
        })
        .collect();
    history.sort_by_key(|w| (w.assigned_at, w.worker_id));
    history
}

/// The statement of [`Store::task_cases`]: rows of kind `history` (an assignment of a task of
/// an item of the JSON array `$1`, as [`HISTORY_SQL`] reads it) and of kind `excluded` (a
/// worker stored as excluded from a task of the JSON array `$2`, with when, in
/// `assigned_at_us`), and, `with_bars`, of kind `barred` (a task of `$2` a bar keeps the worker
/// `$3` from, as [`crate::bars::barred_sql`] finds them). On SQLite each list drives its join
/// (`CROSS JOIN` keeps the order), so the rows are found through the indexes on the items'
/// tasks, the tasks' assignments and exclusions however large the tables grow; PostgreSQL
/// orders the joins by its statistics.
pub(crate) fn cases_sql(engine: Engine, with_bars: bool) -> String {
    let bars = match with_bars {
        true => format!(
            "UNION ALL
             SELECT 'barred', t.id, NULL, NULL, NULL, NULL, NULL
             FROM ({tasks}) AS listed CROSS JOIN tasks t
             WHERE t.id = listed.id AND {bar}",
            tasks = json_ids(engine, "$2"),
            bar = any_bar_sql("$3"),
        ),
        false => String::new(),
    };
    format!(
        "SELECT 'history' AS kind, t.id AS task_id, t.work_item_id, t.step, t.state, a.worker_id,
                a.assigned_at_us
         FROM ({items}) AS items
         CROSS JOIN tasks t CROSS JOIN assignments a
         WHERE t.work_item_id = items.id AND a.task_id = t.id
         UNION ALL
         SELECT 'excluded', x.task_id, NULL, NULL, NULL, x.worker_id, x.created_at_us
         FROM ({tasks}) AS listed CROSS JOIN task_exclusions x
         WHERE x.task_id = listed.id
         {bars}",
        items = json_ids(engine, "$1"),
        tasks = json_ids(engine, "$2"),
    )
}

impl Store {
    /// The case of each task: preferred worker and excluded workers. One statement reads the
    /// assignment history of every item named and the exclusions stored for every task named;
    /// the lists are bound as JSON arrays, so its text is the same whatever their lengths and
    /// each connection prepares it once.
    pub async fn task_cases(&self, queries: &[CaseQuery]) -> Result<HashMap<TaskId, CaseRouting>> {
        Ok(self.cases(queries, None).await?.0)
    }

    /// The case of each task, as [`Store::task_cases`], and those of the tasks a bar keeps
    /// `worker_id` from, as [`Store::barred_tasks`], in the same statement (*Get next* reads
    /// both for its page of candidates).
    pub async fn worker_cases(
        &self,
        worker_id: WorkerId,
        queries: &[CaseQuery],
    ) -> Result<(HashMap<TaskId, CaseRouting>, Vec<TaskId>)> {
        self.cases(queries, Some(worker_id)).await
    }

    async fn cases(
        &self,
        queries: &[CaseQuery],
        worker_id: Option<WorkerId>,
    ) -> Result<(HashMap<TaskId, CaseRouting>, Vec<TaskId>)> {
        if queries.is_empty() {
            return Ok((HashMap::new(), Vec::new()));
        }
        let mut items: Vec<WorkItemId> = queries.iter().map(|q| q.work_item_id).collect();
        items.sort();
        items.dedup();
        let sql = cases_sql(self.engine, worker_id.is_some());
        let mut query = sqlx::query(&sql)
            .bind(json_id_list(&items))
            .bind(json_id_list(queries.iter().map(|q| q.task_id)));
        if let Some(worker_id) = worker_id {
            query = query.bind(worker_id.to_string());
        }
        let rows = query.fetch_all(&self.reader).await?;
        let mut history = Vec::new();
        let mut stored: Vec<(TaskId, i64, WorkerId)> = Vec::new();
        let mut barred = Vec::new();
        for row in &rows {
            let kind: String = get(row, "kind")?;
            match kind.as_str() {
                "history" => history.push(assignment_row(row)?),
                "barred" => barred.push(parse(row, "task_id")?),
                _ => stored.push((
                    parse(row, "task_id")?,
                    get(row, "assigned_at_us")?,
                    parse(row, "worker_id")?,
                )),
            }
        }
        // Exclusions in the order they were stored.
        stored.sort_by_key(|(_, at, worker)| (*at, *worker));
        let mut excluded: HashMap<TaskId, Vec<WorkerId>> = HashMap::new();
        for (task_id, _, worker_id) in stored {
            excluded.entry(task_id).or_default().push(worker_id);
        }
        let cases = queries
            .iter()
            .map(|q| {
                let history = history_for(&history, q);
                let stored = excluded.get(&q.task_id).map_or(&[][..], Vec::as_slice);
                (q.task_id, case_routing(&q.step, &history, stored))
            })
            .collect();
        Ok((cases, barred))
    }

    /// The service line of each engagement named.
    pub async fn engagement_lines(
        &self,
        engagement_ids: &[EngagementId],
    ) -> Result<HashMap<EngagementId, ServiceLine>> {
        let sql = format!(
            "SELECT e.id, e.service_line FROM ({}) AS listed JOIN engagements e ON e.id = listed.id",
            json_ids(self.engine, "$1")
        );
        let mut lines = HashMap::new();
        for chunk in engagement_ids.chunks(JSON_LIST_MAX) {
            let rows = sqlx::query(&sql)
                .bind(json_id_list(chunk))
                .fetch_all(&self.reader)
                .await?;
            for row in &rows {
                lines.insert(parse(row, "id")?, parse(row, "service_line")?);
            }
        }
        Ok(lines)
    }

    /// The workers stored as excluded from a task, with why, oldest first.
    pub async fn task_exclusions(
        &self,
        task_id: TaskId,
    ) -> Result<Vec<(WorkerId, ExclusionReason)>> {
        let rows = sqlx::query(
            "SELECT worker_id, reason FROM task_exclusions WHERE task_id = $1
             ORDER BY created_at_us, worker_id",
        )
        .bind(task_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let reason: String = get(row, "reason")?;
                Ok((
                    parse(row, "worker_id")?,
                    ExclusionReason::parse(&reason).ok_or_else(|| {
                        StoreError::from(anyhow::anyhow!("stored exclusion reason {reason:?}"))
                    })?,
                ))
            })
            .collect()
    }
}

/// Whether the case rules exclude `worker_id` from `task_id`, read inside the caller's
/// transaction.
pub(crate) async fn is_excluded(
    conn: &mut AnyConnection,
    task_id: TaskId,
    worker_id: WorkerId,
) -> Result<bool> {
    let stored =
        sqlx::query("SELECT 1 AS x FROM task_exclusions WHERE task_id = $1 AND worker_id = $2")
            .bind(task_id.to_string())
            .bind(worker_id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    if stored.is_some() {
        return Ok(true);
    }
    let Some(task) = sqlx::query("SELECT work_item_id, step FROM tasks WHERE id = $1")
        .bind(task_id.to_string())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(false);
    };
    let query = CaseQuery {
        task_id,
        work_item_id: parse(&task, "work_item_id")?,
        step: get(&task, "step")?,
    };
    excluded_by_case(conn, &query, worker_id).await
}

/// Whether the case rules alone (the item's earlier assignments: a maker is not the checker)
/// exclude the worker from the task; for a caller that has the task and has checked stored
/// exclusions already.
pub(crate) async fn excluded_by_case(
    conn: &mut AnyConnection,
    query: &CaseQuery,
    worker_id: WorkerId,
) -> Result<bool> {
    let rows = sqlx::query(&format!("{HISTORY_SQL} WHERE t.work_item_id = $1"))
        .bind(query.work_item_id.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(assignment_row)
        .collect::<Result<Vec<_>>>()?;
    let case = case_routing(&query.step, &history_for(&rows, query), &[]);
    Ok(case.excluded_workers.contains(&worker_id))
}

/// Stores an exclusion of a worker from a task in the caller's transaction (once; a repeat
/// keeps the first reason). The caller writes the event of the change that caused it.
pub(crate) async fn store_exclusion(
    conn: &mut AnyConnection,
    client_id: ClientId,
    task_id: TaskId,
    worker_id: WorkerId,
    reason: ExclusionReason,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO task_exclusions (task_id, client_id, worker_id, reason, created_at_us)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (task_id, worker_id) DO NOTHING",
    )
    .bind(task_id.to_string())
    .bind(client_id.to_string())
    .bind(worker_id.to_string())
    .bind(reason.code())
    .bind(us(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::{cases_sql, HISTORY_SQL};
    use crate::bars::barred_sql;
    use crate::views::REVIEWS_OF_MAKER_SQL;
    use crate::{with_temp_sqlite, Engine, Store};

    /// The steps of SQLite's plan for `sql` that read a whole table.
    async fn scans(store: &Store, sql: &str, params: usize) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(&explain);
        for _ in 0..params {
            query = query.bind("x");
        }
        let rows = query.fetch_all(&store.reader).await.expect("plan");
        rows.iter()
            .map(|row| row.try_get::<String, _>("detail").expect("detail"))
            // A scan of the statement's own list of ids (a JSON array) is no table scan.
            .filter(|step| step.starts_with("SCAN ") && !step.contains("VIRTUAL TABLE"))
            .collect()
    }

    /// The look-ups made for every routing decision (the case history of the candidate tasks'
    /// items, the bars on a worker) and a worker's own review page find their rows through an
    /// index, so they do not slow down as the tables grow.
    #[test]
    fn routing_look_ups_read_no_whole_table() {
        with_temp_sqlite(|store| async move {
            let statements = [
                (format!("{HISTORY_SQL} WHERE t.work_item_id = $1"), 1),
                (cases_sql(Engine::Sqlite, false), 2),
                (cases_sql(Engine::Sqlite, true), 3),
                (barred_sql(Engine::Sqlite), 2),
                (REVIEWS_OF_MAKER_SQL.to_string(), 2),
            ];
            for (sql, params) in &statements {
                assert_eq!(
                    scans(&store, sql, *params).await,
                    Vec::<String>::new(),
                    "{sql}"
                );
            }
        });
    }
}
