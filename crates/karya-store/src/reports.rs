//! What period reports are computed from: the facts of a period's work items, tasks, quality
//! checks and workers ([`karya_core::metrics::PeriodFacts`]), for the whole firm or one client,
//! and workers' leave, which utilisation subtracts from their rosters.
//!
//! The core groups and measures ([`karya_core::metrics::breakdown`]); this module only reads.
//! A client's scope reads only that client's rows, and leaves utilisation out: a worker's
//! roster serves several clients, so it is the firm's figure, not one client's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{ClientId, SiteId, TaskId, WorkItemId, WorkerId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::metrics::{
    self, AssignmentWindow, CheckRecord, ItemFacts, ItemRecord, PeriodFacts, TaskRecord,
    WorkerFacts,
};
use karya_core::qa::accuracy::Evidence;
use karya_core::service_line::ServiceLine;
use karya_core::workforce::{Leave, ShiftPattern};
use serde_json::Value;
use sqlx::AnyConnection;

use crate::events::event_rows;
use crate::rows::{get, parse, timestamp, us};
use crate::sla::REPORT_ITEMS_MAX;
use crate::{Result, Store, Tenant};

/// Tasks, items or workers per `IN (...)` list: well under both engines' parameter limits.
const IDS_PER_QUERY: usize = 500;

/// The facts of a period and the names to show them with.
#[derive(Debug, Clone, Default)]
pub struct PeriodReport {
    pub facts: PeriodFacts,
    pub worker_names: HashMap<WorkerId, String>,
    pub site_names: HashMap<SiteId, String>,
    /// More items or tasks than [`REPORT_ITEMS_MAX`] fell in the period; the figures cover
    /// the first ones (in id order).
    pub truncated: bool,
}

/// Whose data a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Firm,
    Client(ClientId),
}

impl Scope {
    /// The client filter's bound value: empty for the firm (`$1 = '' OR client_id = $1`).
    fn filter(self) -> String {
        match self {
            Scope::Firm => String::new(),
            Scope::Client(id) => id.to_string(),
        }
    }
}

impl Store {
    /// The firm's facts for `[from, to)` as of `now`: every worker with their rostered time
    /// (shifts in their zone, minus leave) up to `now`, for utilisation.
    pub async fn period_report(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<PeriodReport> {
        let mut conn = self.reader.acquire().await?;
        load(&mut conn, Scope::Firm, from, to, now).await
    }
}

impl Tenant {
    /// The client's facts for `[from, to)` as of `now`, without rostered time.
    pub async fn period_report(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<PeriodReport> {
        self.store.client(self.client_id).await?;
        let mut conn = self.store.reader.acquire().await?;
        load(&mut conn, Scope::Client(self.client_id), from, to, now).await
    }
}

async fn load(
    conn: &mut AnyConnection,
    scope: Scope,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> Result<PeriodReport> {
    let mut report = PeriodReport::default();
    let filter = scope.filter();

    // Items received in the period, with their SLA state and the workers who held their tasks.
    let rows = sqlx::query(
        "SELECT w.id, w.state, w.received_at_us, e.service_line, s.response_elapsed_s,
                s.response_met_at_us, s.resolution_elapsed_s, s.resolution_met_at_us,
                s.resolution_breached
         FROM work_items w JOIN engagements e ON e.id = w.engagement_id
         LEFT JOIN sla_states s ON s.work_item_id = w.id
         WHERE ($1 = '' OR w.client_id = $1) AND w.received_at_us >= $2 AND w.received_at_us < $3
           AND w.state <> 'cancelled'
         ORDER BY w.id LIMIT $4",
    )
    .bind(&filter)
    .bind(us(from))
    .bind(us(to))
    .bind(REPORT_ITEMS_MAX + 1)
    .fetch_all(&mut *conn)
    .await?;
    report.truncated |= rows.len() as i64 > REPORT_ITEMS_MAX;
    let held_by = item_workers(conn, &filter, from, to).await?;
    for row in rows.iter().take(REPORT_ITEMS_MAX as usize) {
        let state: WorkItemState = parse(row, "state")?;
        let met = |column: &str, elapsed: &str| -> Result<Option<SignedDuration>> {
            Ok(match get::<Option<i64>>(row, column)? {
                Some(_) => get::<Option<i64>>(row, elapsed)?.map(SignedDuration::from_secs),
                None => None,
            })
        };
        let id: WorkItemId = parse(row, "id")?;
        report.facts.items.push(ItemRecord {
            service_line: parse(row, "service_line")?,
            facts: ItemFacts {
                received_at: timestamp(row, "received_at_us")?,
                open: !matches!(
                    state,
                    WorkItemState::Delivered | WorkItemState::Closed | WorkItemState::Cancelled
                ),
                response: met("response_met_at_us", "response_elapsed_s")?,
                turnaround: met("resolution_met_at_us", "resolution_elapsed_s")?,
                breached: get::<Option<i64>>(row, "resolution_breached")?.unwrap_or(0) != 0,
            },
            workers: held_by.get(&id).cloned().unwrap_or_default(),
        });
    }

    // Tasks active in the period (changed in it, or held throughout it), each worker's part.
    let rows = sqlx::query(
        "SELECT t.id, t.client_id, e.service_line
         FROM tasks t JOIN work_items w ON w.id = t.work_item_id
         JOIN engagements e ON e.id = w.engagement_id
         WHERE ($1 = '' OR t.client_id = $1) AND t.created_at_us < $3
           AND (t.updated_at_us >= $2 OR t.state IN ('assigned', 'in_progress', 'rework'))
         ORDER BY t.id LIMIT $4",
    )
    .bind(&filter)
    .bind(us(from))
    .bind(us(to))
    .bind(REPORT_ITEMS_MAX + 1)
    .fetch_all(&mut *conn)
    .await?;
    report.truncated |= rows.len() as i64 > REPORT_ITEMS_MAX;
    let mut by_client: BTreeMap<ClientId, Vec<(TaskId, ServiceLine)>> = BTreeMap::new();
    for row in rows.iter().take(REPORT_ITEMS_MAX as usize) {
        by_client
            .entry(parse(row, "client_id")?)
            .or_default()
            .push((parse(row, "id")?, parse(row, "service_line")?));
    }
    for (client_id, tasks) in &by_client {
        for batch in tasks.chunks(IDS_PER_QUERY) {
            let ids: Vec<TaskId> = batch.iter().map(|(id, _)| *id).collect();
            let histories = task_histories(conn, *client_id, &ids).await?;
            let windows = assignments(conn, &ids).await?;
            for (task_id, service_line) in batch {
                let history = histories
                    .get(task_id)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for (worker_id, window) in windows.get(task_id).into_iter().flatten() {
                    report.facts.tasks.push(TaskRecord {
                        service_line: *service_line,
                        worker_id: Some(*worker_id),
                        facts: metrics::assignment_facts(history, *window, from, to, now),
                    });
                }
            }
        }
    }

    // Quality checks made in the period: reviews of a maker's work and gold tasks scored.
    let reviews = sqlx::query(
        "SELECT r.maker_id AS worker_id, e.service_line, COUNT(*) AS checks,
                SUM(CASE WHEN r.verdict = 'pass' THEN 1 ELSE 0 END) AS correct
         FROM reviews r JOIN engagements e ON e.id = r.engagement_id
         WHERE ($1 = '' OR r.client_id = $1) AND r.reviewed_at_us >= $2 AND r.reviewed_at_us < $3
         GROUP BY r.maker_id, e.service_line",
    );
    let gold = sqlx::query(
        "SELECT g.worker_id, e.service_line, COUNT(*) AS checks,
                SUM(CASE WHEN g.correct = 1 THEN 1 ELSE 0 END) AS correct
         FROM gold_results g JOIN engagements e ON e.id = g.engagement_id
         WHERE ($1 = '' OR g.client_id = $1) AND g.scored_at_us >= $2 AND g.scored_at_us < $3
         GROUP BY g.worker_id, e.service_line",
    );
    for query in [reviews, gold] {
        let rows = query
            .bind(&filter)
            .bind(us(from))
            .bind(us(to))
            .fetch_all(&mut *conn)
            .await?;
        for row in &rows {
            report.facts.checks.push(CheckRecord {
                service_line: parse(row, "service_line")?,
                worker_id: parse(row, "worker_id")?,
                evidence: Evidence {
                    checks: get::<i64>(row, "checks")?.max(0) as u64,
                    correct: get::<i64>(row, "correct")?.max(0) as u64,
                },
            });
        }
    }

    // The workers: all of them for the firm, with rosters; a client sees those it names.
    let mut named: BTreeSet<WorkerId> = BTreeSet::new();
    named.extend(
        report
            .facts
            .items
            .iter()
            .flat_map(|i| i.workers.iter().copied()),
    );
    named.extend(report.facts.tasks.iter().filter_map(|t| t.worker_id));
    named.extend(report.facts.checks.iter().map(|c| c.worker_id));
    let rows = match scope {
        Scope::Firm => {
            sqlx::query(
                "SELECT w.id, w.name, w.site_id, w.designation, r.time_zone, r.shifts
                 FROM workers w LEFT JOIN worker_routing r ON r.worker_id = w.id ORDER BY w.id",
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Scope::Client(_) => {
            let named: Vec<WorkerId> = named.iter().copied().collect();
            let mut rows = Vec::with_capacity(named.len());
            for batch in named.chunks(IDS_PER_QUERY) {
                let sql = format!(
                    "SELECT w.id, w.name, w.site_id, w.designation, NULL AS time_zone, NULL AS shifts
                     FROM workers w WHERE w.id IN ({}) ORDER BY w.id",
                    placeholders(1, batch.len())
                );
                let mut query = sqlx::query(&sql);
                for id in batch {
                    query = query.bind(id.to_string());
                }
                rows.extend(query.fetch_all(&mut *conn).await?);
            }
            rows
        }
    };
    let leave = match scope {
        Scope::Firm => leave_between(conn, from, to).await?,
        Scope::Client(_) => HashMap::new(),
    };
    let roster_end = to.min(now);
    for row in &rows {
        let id: WorkerId = parse(row, "id")?;
        let designation: String = get(row, "designation")?;
        let site_id: Option<String> = get(row, "site_id")?;
        let site_id: Option<SiteId> = match site_id {
            Some(_) => Some(parse(row, "site_id")?),
            None => None,
        };
        let zone: Option<String> = get(row, "time_zone")?;
        let shifts: Option<String> = get(row, "shifts")?;
        let rostered = match (zone, shifts) {
            (Some(zone), Some(shifts)) => {
                let pattern = ShiftPattern {
                    weekly: crate::routing::shifts_of(&shifts)?,
                    leave: leave.get(&id).cloned().unwrap_or_default(),
                    ..ShiftPattern::none(TimeZone::get(&zone).map_err(|err| {
                        anyhow::anyhow!("stored time zone {zone:?} of worker {id}: {err}")
                    })?)
                };
                metrics::rostered(&pattern, from, roster_end)
            }
            _ => SignedDuration::ZERO,
        };
        report.worker_names.insert(id, get(row, "name")?);
        report.facts.workers.push(WorkerFacts {
            id,
            site_id,
            designation: crate::designation_from_code(&designation)
                .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?,
            rostered,
        });
    }
    let sites = sqlx::query("SELECT id, name FROM sites")
        .fetch_all(&mut *conn)
        .await?;
    for row in &sites {
        report
            .site_names
            .insert(parse(row, "id")?, get(row, "name")?);
    }
    Ok(report)
}

/// The workers who held any task of each item received in `[from, to)`.
async fn item_workers(
    conn: &mut AnyConnection,
    filter: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<HashMap<WorkItemId, Vec<WorkerId>>> {
    let rows = sqlx::query(
        "SELECT DISTINCT t.work_item_id, a.worker_id
         FROM work_items w JOIN tasks t ON t.work_item_id = w.id
         JOIN assignments a ON a.task_id = t.id
         WHERE ($1 = '' OR w.client_id = $1) AND w.received_at_us >= $2 AND w.received_at_us < $3",
    )
    .bind(filter)
    .bind(us(from))
    .bind(us(to))
    .fetch_all(&mut *conn)
    .await?;
    let mut held_by: HashMap<WorkItemId, Vec<WorkerId>> = HashMap::new();
    for row in &rows {
        held_by
            .entry(parse(row, "work_item_id")?)
            .or_default()
            .push(parse(row, "worker_id")?);
    }
    Ok(held_by)
}

/// State histories of the given tasks of one client, from their events.
async fn task_histories(
    conn: &mut AnyConnection,
    client_id: ClientId,
    ids: &[TaskId],
) -> Result<HashMap<TaskId, Vec<(Timestamp, TaskState)>>> {
    let sql = format!(
        "SELECT entity_id, kind, payload, at_us FROM {} AS events
         WHERE client_id = $1 AND entity_type = 'task' AND entity_id IN ({})
           AND kind IN ('task.created', 'task.claimed', 'task.transitioned')
         ORDER BY seq",
        event_rows(conn),
        placeholders(2, ids.len())
    );
    let mut query = sqlx::query(&sql).bind(client_id.to_string());
    for id in ids {
        query = query.bind(id.to_string());
    }
    let mut histories: HashMap<TaskId, Vec<(Timestamp, TaskState)>> = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let kind: String = get(&row, "kind")?;
        let state = match kind.as_str() {
            "task.created" => TaskState::Ready,
            "task.claimed" => TaskState::Assigned,
            _ => {
                let payload: String = get(&row, "payload")?;
                let payload: Value = serde_json::from_str(&payload)
                    .map_err(|err| anyhow::anyhow!("stored task payload: {err}"))?;
                payload["to"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|err| anyhow::anyhow!("stored task transition: {err}"))?
            }
        };
        histories
            .entry(parse(&row, "entity_id")?)
            .or_default()
            .push((timestamp(&row, "at_us")?, state));
    }
    Ok(histories)
}

/// Every assignment of the given tasks, past and current.
async fn assignments(
    conn: &mut AnyConnection,
    ids: &[TaskId],
) -> Result<HashMap<TaskId, Vec<(WorkerId, AssignmentWindow)>>> {
    let sql = format!(
        "SELECT task_id, worker_id, assigned_at_us, released_at_us FROM assignments
         WHERE task_id IN ({}) ORDER BY assigned_at_us",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.to_string());
    }
    let mut windows: HashMap<TaskId, Vec<(WorkerId, AssignmentWindow)>> = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        let released: Option<i64> = get(&row, "released_at_us")?;
        windows.entry(parse(&row, "task_id")?).or_default().push((
            parse(&row, "worker_id")?,
            AssignmentWindow {
                assigned_at: timestamp(&row, "assigned_at_us")?,
                released_at: match released {
                    Some(_) => Some(timestamp(&row, "released_at_us")?),
                    None => None,
                },
            },
        ));
    }
    Ok(windows)
}

/// Leave overlapping `[from, to)`, per worker.
async fn leave_between(
    conn: &mut AnyConnection,
    from: Timestamp,
    to: Timestamp,
) -> Result<HashMap<WorkerId, Vec<Leave>>> {
    let rows = sqlx::query(
        "SELECT worker_id, from_us, until_us FROM worker_leave WHERE until_us > $1 AND from_us < $2",
    )
    .bind(us(from))
    .bind(us(to))
    .fetch_all(&mut *conn)
    .await?;
    let mut leave: HashMap<WorkerId, Vec<Leave>> = HashMap::new();
    for row in &rows {
        leave
            .entry(parse(row, "worker_id")?)
            .or_default()
            .push(Leave {
                from: timestamp(row, "from_us")?,
                until: timestamp(row, "until_us")?,
            });
    }
    Ok(leave)
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
