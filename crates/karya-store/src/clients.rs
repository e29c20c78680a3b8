//! Firm-level records: clients (tenants), sites and workers.

use jiff::Timestamp;
use karya_core::chain::ChainHash;
use karya_core::event::EventKind;
use karya_core::id::{ClientId, SiteId, WorkerId};
use karya_core::model::{Client, Designation, Site, Worker};
use karya_core::money::Currency;
use serde_json::json;
use sqlx::any::AnyRow;

use crate::events::{append, start_chain, FIRM_CHAIN};
use crate::rows::{get, is_foreign_key_violation, is_unique_violation, parse, timestamp, us};
use crate::{Page, PageRequest, Result, Store, StoreError};

fn client_row(row: &AnyRow) -> Result<Client> {
    Ok(Client {
        id: parse(row, "id")?,
        name: get(row, "name")?,
        currency: parse(row, "currency")?,
        created_at: timestamp(row, "created_at_us")?,
    })
}

pub(crate) fn worker_row(row: &AnyRow) -> Result<Worker> {
    let site_id: Option<String> = get(row, "site_id")?;
    let designation: String = get(row, "designation")?;
    Ok(Worker {
        id: parse(row, "id")?,
        name: get(row, "name")?,
        site_id: site_id
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| anyhow::anyhow!("stored site id: {e}"))?,
        designation: parse_designation(&designation)
            .ok_or_else(|| anyhow::anyhow!("stored designation {designation:?} unknown"))?,
        created_at: timestamp(row, "created_at_us")?,
    })
}

pub(crate) fn parse_designation(text: &str) -> Option<Designation> {
    [
        Designation::Analyst,
        Designation::SeniorAnalyst,
        Designation::TeamLead,
        Designation::Manager,
    ]
    .into_iter()
    .find(|d| d.code() == text)
}

/// Makes sure the firm's own chain exists; idempotent, and safe for writers that make the firm's
/// first events at the same time (each inserts the head unless there is one: a check and then
/// an insert let two of them insert it, and one then failed).
pub(crate) async fn ensure_firm_chain(conn: &mut sqlx::AnyConnection) -> Result<()> {
    sqlx::query(
        "INSERT INTO chain_heads (client_id, seq, hash) VALUES ($1, 0, $2)
         ON CONFLICT (client_id) DO NOTHING",
    )
    .bind(FIRM_CHAIN.to_string())
    .bind(ChainHash::GENESIS.to_hex())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Registers a client and opens its event chain.
    pub async fn create_client(
        &self,
        id: ClientId,
        name: &str,
        currency: Currency,
        now: Timestamp,
    ) -> Result<Client> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let inserted = sqlx::query(
            "INSERT INTO clients (id, name, currency, created_at_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(currency.to_string())
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            if is_unique_violation(&err) {
                return Err(StoreError::Conflict {
                    message: format!("a client named {name:?} exists already"),
                });
            }
            return Err(err.into());
        }
        start_chain(&mut tx, id).await?;
        append(
            &mut tx,
            id,
            EventKind::ClientCreated,
            &id.to_string(),
            &json!({"name": name, "currency": currency.as_str()}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Client {
            id,
            name: name.to_string(),
            currency,
            created_at: Timestamp::from_microsecond(us(now)).unwrap_or(now),
        })
    }

    pub async fn client(&self, id: ClientId) -> Result<Client> {
        let row =
            sqlx::query("SELECT id, name, currency, created_at_us FROM clients WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| StoreError::not_found("client", id))?;
        client_row(&row)
    }

    pub async fn list_clients(&self, page: &PageRequest) -> Result<Page<Client>> {
        let limit = page.limit();
        let rows = sqlx::query(
            "SELECT id, name, currency, created_at_us FROM clients WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(page.after.clone().unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        let items = rows.iter().map(client_row).collect::<Result<Vec<_>>>()?;
        Ok(page_of(items, limit, |c| c.id.to_string()))
    }

    /// Registers a delivery centre.
    pub async fn create_site(&self, site: &Site, now: Timestamp) -> Result<Site> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        ensure_firm_chain(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO sites (id, name, time_zone, country, created_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(site.id.to_string())
        .bind(&site.name)
        .bind(&site.time_zone)
        .bind(&site.country)
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            if is_unique_violation(&err) {
                return Err(StoreError::Conflict {
                    message: format!("a site named {:?} exists already", site.name),
                });
            }
            return Err(err.into());
        }
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::SiteCreated,
            &site.id.to_string(),
            &json!({"name": site.name, "time_zone": site.time_zone, "country": site.country}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(site.clone())
    }

    /// Registers a worker.
    pub async fn create_worker(
        &self,
        id: WorkerId,
        name: &str,
        site_id: Option<SiteId>,
        designation: Designation,
        now: Timestamp,
    ) -> Result<Worker> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        ensure_firm_chain(&mut tx).await?;
        let inserted = sqlx::query(
            "INSERT INTO workers (id, name, site_id, designation, created_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(site_id.map(|s| s.to_string()))
        .bind(designation.code())
        .bind(us(now))
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            if is_foreign_key_violation(&err) {
                return Err(StoreError::not_found(
                    "site",
                    site_id.map(|s| s.to_string()).unwrap_or_default(),
                ));
            }
            return Err(err.into());
        }
        append(
            &mut tx,
            FIRM_CHAIN,
            EventKind::WorkerCreated,
            &id.to_string(),
            &json!({"name": name, "designation": designation.code(), "site_id": site_id.map(|s| s.to_string())}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Worker {
            id,
            name: name.to_string(),
            site_id,
            designation,
            created_at: now,
        })
    }

    pub async fn worker(&self, id: WorkerId) -> Result<Worker> {
        let row = sqlx::query(
            "SELECT id, name, site_id, designation, created_at_us FROM workers WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("worker", id))?;
        worker_row(&row)
    }
}

/// Builds a page from a fetched batch: a full batch may have more after it.
pub(crate) fn page_of<T>(items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let next_after = if items.len() as i64 == limit {
        items.last().map(key)
    } else {
        None
    };
    Page { items, next_after }
}
