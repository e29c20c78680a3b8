//! The raw limit: the commits karya makes per item, made by the database alone.
//!
//! Per item: insert the item; insert its task; claim a ready task (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL) with its assignment in one transaction; start it; submit it (to done, or to
//! review for the sampled share); pass the review. One commit each, as karya commits them, but
//! with no HTTP, no authentication, no validation, no events and no hash chain. On PostgreSQL
//! `pgbench` runs the script with as many clients as karya has workers; on SQLite one
//! connection in WAL mode with `synchronous = FULL` loops, as SQLite has one writer anyway.

use std::io::Write;
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use karya_store::Engine;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor};

use super::{Fresh, Options};

/// The sampled share is drawn per item in parts per million.
const PPM: f64 = 1_000_000.0;

/// Items per second at the raw limit.
pub async fn measure(
    options: &Options,
    engine: Engine,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<f64> {
    let (fresh, url) = Fresh::make(&options.db, "raw").await?;
    let result = match engine {
        Engine::Sqlite => sqlite(options, &url).await,
        Engine::Postgres => postgres(options, &url).await,
    };
    fresh.remove().await;
    let (rate, how) = result?;
    writeln!(
        out,
        "raw limit ({}): {rate:.1} items/s ({how}; the same commits per item, no application)",
        engine.name()
    )?;
    Ok(rate)
}

/// Whether item `n` is reviewed: a low-discrepancy draw, so any run length gets the share.
fn sampled(n: u64, share: f64) -> bool {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    (n as f64 * GOLDEN).fract() < share
}

async fn sqlite(options: &Options, url: &str) -> anyhow::Result<(f64, String)> {
    let connect = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = sqlx::SqliteConnection::connect_with(&connect).await?;
    conn.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, state TEXT NOT NULL, input TEXT NOT NULL, at_us BIGINT NOT NULL);
         CREATE TABLE tasks (id INTEGER PRIMARY KEY, item_id BIGINT NOT NULL, state TEXT NOT NULL, at_us BIGINT NOT NULL);
         CREATE INDEX tasks_ready ON tasks (state, id);
         CREATE TABLE assignments (task_id BIGINT NOT NULL, worker BIGINT NOT NULL, at_us BIGINT NOT NULL);",
    )
    .await?;
    let started = Instant::now();
    for n in 0..options.items {
        let now = jiff::Timestamp::now().as_microsecond();
        let item =
            sqlx::query("INSERT INTO items (state, input, at_us) VALUES ('received', $1, $2)")
                .bind(r#"{"document":"scan-0001.pdf","pages":3}"#)
                .bind(now)
                .execute(&mut conn)
                .await?
                .last_insert_rowid();
        sqlx::query("INSERT INTO tasks (item_id, state, at_us) VALUES ($1, 'ready', $2)")
            .bind(item)
            .bind(now)
            .execute(&mut conn)
            .await?;
        let mut tx = conn.begin().await?;
        let (task,): (i64,) =
            sqlx::query_as("SELECT id FROM tasks WHERE state = 'ready' ORDER BY id LIMIT 1")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'assigned', at_us = $1 WHERE id = $2 AND state = 'ready'",
        )
        .bind(now)
        .bind(task)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO assignments (task_id, worker, at_us) VALUES ($1, $2, $3)")
            .bind(task)
            .bind((n % options.workers as u64) as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let review = sampled(n, options.review_share);
        let steps: &[&str] = match review {
            true => &["in_progress", "in_review", "done"],
            false => &["in_progress", "done"],
        };
        for state in steps {
            sqlx::query("UPDATE tasks SET state = $1, at_us = $2 WHERE id = $3")
                .bind(*state)
                .bind(now)
                .bind(task)
                .execute(&mut conn)
                .await?;
        }
    }
    let rate = options.items as f64 / started.elapsed().as_secs_f64();
    conn.close().await.ok();
    Ok((rate, "one connection, WAL, synchronous = FULL".into()))
}

/// The pgbench script: one item per run of the script. A claim that finds every ready task
/// locked by other clients (karya retries it) claims nothing (-1) and the item's later
/// updates touch no row, which only flatters the raw limit.
fn pgbench_script(share: f64) -> String {
    let threshold = (share * PPM).round() as i64;
    format!(
        r#"INSERT INTO items (state, input, at) VALUES ('received', '{{"document":"scan-0001.pdf","pages":3}}', now()) RETURNING id AS item \gset
INSERT INTO tasks (item_id, state, at) VALUES (:item, 'ready', now());
BEGIN;
SELECT coalesce((SELECT id FROM tasks WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED), -1) AS task \gset
UPDATE tasks SET state = 'assigned', at = now() WHERE id = :task;
INSERT INTO assignments (task_id, worker, at) SELECT :task, :client_id, now() WHERE :task > 0;
COMMIT;
UPDATE tasks SET state = 'in_progress', at = now() WHERE id = :task;
\set draw random(0, {max})
\if :draw < {threshold}
UPDATE tasks SET state = 'in_review', at = now() WHERE id = :task;
\endif
UPDATE tasks SET state = 'done', at = now() WHERE id = :task;
"#,
        max = PPM as i64 - 1
    )
}

/// Finds `pgbench`, installing the Debian package that ships it when it is missing.
pub(crate) fn pgbench_path() -> anyhow::Result<std::path::PathBuf> {
    let find = || -> Option<std::path::PathBuf> {
        if Command::new("pgbench")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some("pgbench".into());
        }
        let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
        dir.filter_map(Result::ok)
            .map(|entry| entry.path().join("bin/pgbench"))
            .find(|path| path.exists())
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    eprintln!("pgbench is missing: installing it with apt-get");
    for args in [
        &["update"][..],
        &[
            "install",
            "-y",
            "--no-install-recommends",
            "postgresql-contrib",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
    }
    find().ok_or_else(|| anyhow!("pgbench is still missing after installing postgresql-contrib"))
}

async fn postgres(options: &Options, url: &str) -> anyhow::Result<(f64, String)> {
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    conn.execute(
        "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, state TEXT NOT NULL, input JSONB NOT NULL, at TIMESTAMPTZ NOT NULL);
         CREATE TABLE tasks (id BIGSERIAL PRIMARY KEY, item_id BIGINT NOT NULL REFERENCES items (id), state TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
         CREATE INDEX tasks_ready ON tasks (id) WHERE state = 'ready';
         CREATE TABLE assignments (task_id BIGINT NOT NULL REFERENCES tasks (id), worker BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL);",
    )
    .await?;
    conn.close().await.ok();
    let dir = std::env::temp_dir().join(format!(
        "karya-bench-pgbench-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("lifecycle.sql");
    std::fs::write(&script, pgbench_script(options.review_share))?;
    let pgbench = pgbench_path()?;
    let clients = options.workers;
    let per_client = options.items.div_ceil(clients as u64);
    let threads = clients.min(2);
    let output = tokio::task::spawn_blocking({
        let url = url.to_string();
        let script = script.clone();
        move || {
            Command::new(pgbench)
                .args(["-n", "-M", "prepared"])
                .args(["-c", &clients.to_string(), "-j", &threads.to_string()])
                .args(["-t", &per_client.to_string()])
                .arg("-f")
                .arg(&script)
                .arg(&url)
                .output()
        }
    })
    .await?
    .context("cannot run pgbench")?;
    std::fs::remove_dir_all(&dir).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tps = stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| anyhow!("no tps in pgbench output: {stdout}"))?;
    Ok((
        tps,
        format!(
            "pgbench -M prepared, {clients} clients, {} items",
            per_client * clients as u64
        ),
    ))
}
