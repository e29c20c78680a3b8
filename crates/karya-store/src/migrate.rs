//! Versioned schema migrations, one SQL file per version and engine, applied at start-up.
//!
//! Migrations run in one transaction (PostgreSQL also takes an advisory lock, so two nodes
//! starting together do not race). A database whose schema is newer than this build knows is
//! refused rather than used: an old binary must not write into a shape it does not understand.

use crate::{Engine, Result, Store, StoreError};

/// `(version, sqlite, postgres)`, in ascending order. Versions may have gaps.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../migrations/sqlite/0001_foundation.sql"),
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        include_str!("../migrations/sqlite/0002_routing.sql"),
        include_str!("../migrations/postgres/0002_routing.sql"),
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_sla.sql"),
        include_str!("../migrations/postgres/0003_sla.sql"),
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_qa.sql"),
        include_str!("../migrations/postgres/0004_qa.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_decisions.sql"),
        include_str!("../migrations/postgres/0005_decisions.sql"),
    ),
    (
        6,
        include_str!("../migrations/sqlite/0006_auth.sql"),
        include_str!("../migrations/postgres/0006_auth.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_offers.sql"),
        include_str!("../migrations/postgres/0007_offers.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_workflow.sql"),
        include_str!("../migrations/postgres/0008_workflow.sql"),
    ),
    (
        9,
        include_str!("../migrations/sqlite/0009_webhooks.sql"),
        include_str!("../migrations/postgres/0009_webhooks.sql"),
    ),
    (
        10,
        include_str!("../migrations/sqlite/0010_consensus.sql"),
        include_str!("../migrations/postgres/0010_consensus.sql"),
    ),
    (
        11,
        include_str!("../migrations/sqlite/0011_documents.sql"),
        include_str!("../migrations/postgres/0011_documents.sql"),
    ),
    (
        12,
        include_str!("../migrations/sqlite/0012_leave.sql"),
        include_str!("../migrations/postgres/0012_leave.sql"),
    ),
    (
        13,
        include_str!("../migrations/sqlite/0013_site_calendars.sql"),
        include_str!("../migrations/postgres/0013_site_calendars.sql"),
    ),
    (
        14,
        include_str!("../migrations/sqlite/0014_case_routing.sql"),
        include_str!("../migrations/postgres/0014_case_routing.sql"),
    ),
    (
        15,
        include_str!("../migrations/sqlite/0015_lookups.sql"),
        include_str!("../migrations/postgres/0015_lookups.sql"),
    ),
    (
        16,
        include_str!("../migrations/sqlite/0016_link_at_commit.sql"),
        include_str!("../migrations/postgres/0016_link_at_commit.sql"),
    ),
    (
        17,
        include_str!("../migrations/sqlite/0017_link_after_commit.sql"),
        include_str!("../migrations/postgres/0017_link_after_commit.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Arbitrary but fixed key for the PostgreSQL advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6b61_7279_615f_6d67;

pub(crate) async fn run(store: &Store) -> Result<()> {
    let mut tx = crate::tx::Tx::begin(store).await?;
    if store.engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at_us BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let applied: Vec<i64> = applied.into_iter().map(|(version,)| version).collect();
    if let Some(unknown) = applied
        .iter()
        .copied()
        .filter(|v| !MIGRATIONS.iter().any(|(known, _, _)| known == v))
        .max()
    {
        return Err(StoreError::SchemaTooNew {
            found: unknown,
            known: SCHEMA_VERSION,
        });
    }
    // Every known migration not applied yet, in order (not only those above the highest
    // applied: migrations developed side by side may land out of order).
    for (version, sqlite, postgres) in MIGRATIONS
        .iter()
        .filter(|(version, _, _)| !applied.contains(version))
    {
        let sql = match store.engine {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        // The wall clock here only labels the migration for operators; no rule depends on it.
        let applied_at_us = jiff::Timestamp::now().as_microsecond();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at_us) VALUES ($1, $2)")
            .bind(version)
            .bind(applied_at_us)
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            version,
            engine = store.engine.name(),
            "applied schema migration"
        );
    }
    tx.commit().await?;
    Ok(())
}
