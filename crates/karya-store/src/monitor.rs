//! What the SLA monitor reads and writes: the open items whose clock runs, each evaluated at
//! `now` from its events (as the SLA state itself is), with the queue in front of it; and the
//! warnings given, once per item and milestone.
//!
//! The monitor's decision (whether to warn, and why) is not made here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use karya_core::calendar::Calendar;
use karya_core::event::EventKind;
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_core::model::Priority;
use karya_core::sla::{QueueState, SlaStatus};
use serde_json::Value;

use crate::events::append;
use crate::routing::requirements_shared;
use crate::rows::{get, is_unique_violation, parse, us};
use crate::sla::{evaluate, load_clock_records, load_config};
use crate::{Result, Store, Tenant};

/// Most items one [`Store::sla_watch`] page holds; the monitor walks the rest page by page.
pub const WATCH_PAGE_MAX: i64 = 200;
/// Most ready tasks of one engagement read to place an item in its queue: beyond this many
/// items ahead, the prediction is "will breach" either way.
pub const QUEUE_SCAN_MAX: i64 = 10_000;
/// Expected handling of an item whose engagement sets no routing.
const DEFAULT_HANDLING: SignedDuration = SignedDuration::from_mins(30);

/// One open item with a running clock, evaluated at `now`.
#[derive(Debug, Clone)]
pub struct WatchedItem {
    pub client_id: ClientId,
    pub work_item_id: WorkItemId,
    pub engagement_id: EngagementId,
    pub status: SlaStatus,
    pub calendar: Arc<Calendar>,
    pub queue: QueueState,
    /// Milestones (`response`, `resolution`) already warned about.
    pub warned: Vec<String>,
}

impl Store {
    /// Items whose SLA clock runs, in id order after `after`, at most [`WATCH_PAGE_MAX`].
    pub async fn sla_watch(
        &self,
        after: Option<WorkItemId>,
        now: Timestamp,
    ) -> Result<Vec<WatchedItem>> {
        let mut conn = self.reader.acquire().await?;
        let rows = sqlx::query(
            "SELECT s.work_item_id, s.client_id, s.engagement_id, w.priority
             FROM sla_states s JOIN work_items w ON w.id = s.work_item_id
             WHERE s.clock_state = 'running' AND s.work_item_id > $1
             ORDER BY s.work_item_id LIMIT $2",
        )
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(WATCH_PAGE_MAX)
        .fetch_all(&mut *conn)
        .await?;
        let mut items: Vec<(WorkItemId, ClientId, EngagementId, Priority)> = Vec::new();
        for row in &rows {
            let rank: i64 = get(row, "priority")?;
            let priority = usize::try_from(rank)
                .ok()
                .and_then(|idx| Priority::ALL.get(idx).copied())
                .ok_or_else(|| anyhow::anyhow!("stored priority {rank} unknown"))?;
            items.push((
                parse(row, "work_item_id")?,
                parse(row, "client_id")?,
                parse(row, "engagement_id")?,
                priority,
            ));
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM worker_routing WHERE presence = 'available'",
        )
        .fetch_one(&mut *conn)
        .await?;
        let workers = get::<i64>(&row, "n")?.max(0) as u32;
        let warned = warned_of(&mut conn, &items).await?;

        let mut groups: HashMap<(ClientId, EngagementId), Vec<(WorkItemId, Priority)>> =
            HashMap::new();
        for (id, client_id, engagement_id, priority) in &items {
            groups
                .entry((*client_id, *engagement_id))
                .or_default()
                .push((*id, *priority));
        }
        let mut watched = Vec::with_capacity(items.len());
        for ((client_id, engagement_id), members) in groups {
            let Some(config) = load_config(&mut conn, client_id, engagement_id).await? else {
                continue;
            };
            let ids: Vec<WorkItemId> = members.iter().map(|(id, _)| *id).collect();
            let records = load_clock_records(&mut conn, client_id, &ids, &[]).await?;
            let (queue_due, handling) = queue_of(&mut conn, client_id, engagement_id).await?;
            let calendar = Arc::new(config.calendar.clone());
            for (id, priority) in members {
                let Some(terms) = config.terms_for(priority) else {
                    continue;
                };
                let status = evaluate(&config.calendar, &terms, records.get(&id), now)?;
                let due = status.resolution.due_at.map(us).unwrap_or(i64::MAX);
                let items_ahead = queue_due.partition_point(|d| *d < due) as u32;
                watched.push(WatchedItem {
                    client_id,
                    work_item_id: id,
                    engagement_id,
                    status,
                    calendar: calendar.clone(),
                    queue: QueueState {
                        items_ahead,
                        workers,
                        expected_handling: handling,
                    },
                    warned: warned.get(&id).cloned().unwrap_or_default(),
                });
            }
        }
        watched.sort_by_key(|w| w.work_item_id);
        Ok(watched)
    }
}

/// The milestones already warned about, per item.
async fn warned_of(
    conn: &mut sqlx::AnyConnection,
    items: &[(WorkItemId, ClientId, EngagementId, Priority)],
) -> Result<HashMap<WorkItemId, Vec<String>>> {
    let placeholders: Vec<String> = (1..=items.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT work_item_id, milestone FROM sla_warnings WHERE work_item_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (id, ..) in items {
        query = query.bind(id.to_string());
    }
    let mut warned: HashMap<WorkItemId, Vec<String>> = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
        warned
            .entry(parse(&row, "work_item_id")?)
            .or_default()
            .push(get(&row, "milestone")?);
    }
    Ok(warned)
}

/// Resolution due times (microseconds, ascending) of the engagement's ready tasks, and the
/// expected handling time of one of them.
async fn queue_of(
    conn: &mut sqlx::AnyConnection,
    client_id: ClientId,
    engagement_id: EngagementId,
) -> Result<(Vec<i64>, SignedDuration)> {
    let rows = sqlx::query(
        "SELECT s.resolution_due_at_us FROM tasks t
         JOIN work_items w ON w.id = t.work_item_id
         JOIN sla_states s ON s.work_item_id = w.id
         WHERE w.client_id = $1 AND w.engagement_id = $2 AND t.state = 'ready'
           AND s.resolution_due_at_us IS NOT NULL
         ORDER BY s.resolution_due_at_us LIMIT $3",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .bind(QUEUE_SCAN_MAX)
    .fetch_all(&mut *conn)
    .await?;
    let mut due = Vec::with_capacity(rows.len());
    for row in &rows {
        due.push(get::<i64>(row, "resolution_due_at_us")?);
    }
    let row = sqlx::query(
        "SELECT requirements FROM engagement_routing WHERE client_id = $1 AND engagement_id = $2",
    )
    .bind(client_id.to_string())
    .bind(engagement_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let handling = match row {
        Some(row) => requirements_shared(&get::<String>(&row, "requirements")?)?.expected_handling,
        None => DEFAULT_HANDLING,
    };
    Ok((due, handling))
}

impl Tenant {
    /// Records an SLA warning about a work item's milestone, with its event, unless one was
    /// given already (then `false` and nothing is written).
    pub async fn record_sla_warning(
        &self,
        work_item_id: WorkItemId,
        milestone: &str,
        reason: &str,
        detail: &Value,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        let inserted = sqlx::query(
            "INSERT INTO sla_warnings (work_item_id, client_id, milestone, reason, warned_at_us)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(work_item_id.to_string())
        .bind(self.client_id.to_string())
        .bind(milestone)
        .bind(reason)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(err) if is_unique_violation(&err) => {
                tx.rollback().await?;
                return Ok(false);
            }
            other => other?,
        };
        let mut payload = serde_json::json!({"milestone": milestone, "reason": reason});
        if let (Some(payload), Some(detail)) = (payload.as_object_mut(), detail.as_object()) {
            payload.extend(detail.clone());
        }
        append(
            &mut tx,
            self.client_id,
            EventKind::WorkItemSlaWarning,
            &work_item_id.to_string(),
            &payload,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The milestones of a work item already warned about.
    pub async fn sla_warnings(&self, work_item_id: WorkItemId) -> Result<HashSet<String>> {
        let rows = sqlx::query(
            "SELECT milestone FROM sla_warnings WHERE client_id = $1 AND work_item_id = $2",
        )
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(|row| get(row, "milestone")).collect()
    }
}
