//! Sites and what is read per site: the list of delivery centres, a client's calendars, and the
//! open tasks per site for the live board (a task counts at the site of the worker holding it
//! or offered it; a task nobody holds counts under no site).

use karya_core::id::SiteId;
use karya_core::lifecycle::TaskState;
use karya_core::model::Site;

use crate::rows::{get, parse};
use crate::sla::{calendar_row, CalendarSpec};
use crate::{Result, Store, StoreError, Tenant};

/// Most sites listed: a firm has a handful; the bound keeps a page small whatever happens.
pub const SITES_MAX: i64 = 500;
/// Most calendars listed for one client.
pub const CALENDARS_MAX: i64 = 500;

/// Open tasks in one state at one site (`None`: held and offered by nobody).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteQueueCount {
    pub site_id: Option<SiteId>,
    pub state: TaskState,
    pub tasks: i64,
}

fn site_row(row: &sqlx::any::AnyRow) -> Result<Site> {
    Ok(Site {
        id: parse(row, "id")?,
        name: get(row, "name")?,
        time_zone: get(row, "time_zone")?,
        country: get(row, "country")?,
    })
}

impl Store {
    /// Every site, in name order (at most [`SITES_MAX`]).
    pub async fn sites(&self) -> Result<Vec<Site>> {
        let rows = sqlx::query(
            "SELECT id, name, time_zone, country FROM sites ORDER BY name, id LIMIT $1",
        )
        .bind(SITES_MAX)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(site_row).collect()
    }

    pub async fn site(&self, id: SiteId) -> Result<Site> {
        let row = sqlx::query("SELECT id, name, time_zone, country FROM sites WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("site", id))?;
        site_row(&row)
    }

    /// Open tasks per site and state: at the site of the worker holding the task (an active
    /// assignment) or, for an offered task, of the worker it is offered to.
    pub async fn site_queue_counts(&self) -> Result<Vec<SiteQueueCount>> {
        let rows = sqlx::query(
            "SELECT w.site_id AS site_id, t.state AS state, COUNT(*) AS tasks
             FROM tasks t
             LEFT JOIN assignments a ON a.task_id = t.id AND a.released_at_us IS NULL
             LEFT JOIN offers o ON o.task_id = t.id AND o.outcome IS NULL
             LEFT JOIN workers w ON w.id = COALESCE(a.worker_id, o.worker_id)
             WHERE t.state NOT IN ('done', 'cancelled')
             GROUP BY w.site_id, t.state ORDER BY w.site_id, t.state",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let site: Option<String> = get(row, "site_id")?;
                Ok(SiteQueueCount {
                    site_id: site
                        .map(|s| s.parse())
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("stored site id: {e}"))?,
                    state: parse(row, "state")?,
                    tasks: get(row, "tasks")?,
                })
            })
            .collect()
    }
}

impl Tenant {
    /// The client's calendars in name order (at most [`CALENDARS_MAX`]).
    pub async fn calendars(&self) -> Result<Vec<CalendarSpec>> {
        let rows = sqlx::query(
            "SELECT id, name, time_zone, week, holidays, exceptions FROM calendars
             WHERE client_id = $1 ORDER BY name, id LIMIT $2",
        )
        .bind(self.client_id.to_string())
        .bind(CALENDARS_MAX)
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(calendar_row).collect()
    }
}
