//! `karya bench lifecycle`: work items per second through the real HTTP API, against the raw
//! commit limit of the same database and against queue libraries on the same PostgreSQL.
//!
//! The run starts karya's server in this process on a fresh database, seeds a client, an
//! engagement on a one-step pack (`bench_lifecycle/pack.toml`), workers and a reviewer with API
//! tokens, and drives the API with simulated workers sharing the same runtime (and so the same
//! cores) as the server. Each item goes through: create work item (intake starts its task) →
//! *Get next* → start → submit → (review, for the share the engagement's QA policy samples) →
//! delivered; at the end the delivered items are counted. In the same run it measures the raw
//! limit (the same commits per item with no application in between: `pgbench` on PostgreSQL,
//! a minimal loop on SQLite) and, on PostgreSQL, the peers. The last output line is one JSON
//! object.

mod http;
mod peers;
mod raw;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use karya_core::model::Role;
use karya_server::AppState;
use karya_store::{Engine, GroupStats, Store, StoreOptions};
use serde_json::json;
use sqlx::{Connection, Executor};

use self::http::{Conn, Reply};

/// Most simulated workers: each holds a connection to the server and one to the database pool.
pub const WORKERS_MAX: usize = 512;
/// Most items in one run.
pub const ITEMS_MAX: u64 = 10_000_000;
/// *Get next* calls one item may make while other workers drain the queue before it is an
/// error; every worker creates a task before asking, so an empty answer is a passing race.
const NEXT_ATTEMPTS_MAX: u32 = 1_000;
/// Errors described in the output; the rest are only counted.
const ERRORS_SHOWN_MAX: usize = 5;
/// Database connections of the server's pool on PostgreSQL.
const PG_POOL_CONNECTIONS: u32 = 16;

/// Which peers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers {
    None,
    All,
}

impl std::str::FromStr for Peers {
    type Err = String;
    fn from_str(text: &str) -> Result<Peers, String> {
        match text {
            "none" => Ok(Peers::None),
            "all" => Ok(Peers::All),
            other => Err(format!("unknown peers {other:?}: use none or all")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite` (a fresh temporary file) or a PostgreSQL server URL (a fresh database is
    /// created on it and dropped afterwards).
    pub db: String,
    pub items: u64,
    pub workers: usize,
    /// The share of submissions the QA policy samples for review, in (0, 1].
    pub review_share: f64,
    pub peers: Peers,
    /// Where peers are installed.
    pub cache_dir: std::path::PathBuf,
}

/// The pack the bench's engagement runs on: one person's step, so an item is done when its
/// task is. Intake validates against its form and starts the item as for any pack.
const BENCH_PACK: &str = include_str!("bench_lifecycle/pack.toml");
/// The service line of [`BENCH_PACK`].
const BENCH_LINE: &str = "technical_support";
/// An output the pack's output form accepts.
const BENCH_OUTPUT: &str = r#"{"output":{"ticket_id":"TS-2026-551208","resolution":"fixed_remotely","root_cause":"channel interference"}}"#;

/// The catalog the bench's server runs with: the bench pack alone.
fn bench_catalog() -> anyhow::Result<Arc<karya_packs::Catalog>> {
    let catalog = karya_packs::parse_files(&[("bench-lifecycle.toml", BENCH_PACK)])
        .map_err(|err| anyhow!("the bench pack does not load: {err}"))?;
    Ok(Arc::new(catalog))
}

/// The calls of the lifecycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    CreateItem,
    Next,
    Start,
    Submit,
    Review,
}

impl Call {
    const ALL: [Call; 5] = [
        Call::CreateItem,
        Call::Next,
        Call::Start,
        Call::Submit,
        Call::Review,
    ];

    fn name(self) -> &'static str {
        match self {
            Call::CreateItem => "POST work-items",
            Call::Next => "POST workers/{id}/next",
            Call::Start => "POST tasks/{id}/transitions",
            Call::Submit => "POST tasks/{id}/submission",
            Call::Review => "POST tasks/{id}/reviews",
        }
    }
}

/// Latencies per call, microseconds.
#[derive(Default)]
struct Samples {
    by_call: [Vec<u32>; 6],
    items: u64,
    reviews: u64,
    empty_next: u64,
    errors: u64,
    error_texts: Vec<String>,
}

impl Samples {
    fn add(&mut self, call: Call, elapsed: Duration) {
        let idx = Call::ALL.iter().position(|c| *c == call).unwrap_or(0);
        self.by_call[idx].push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
    }

    fn merge(&mut self, other: Samples) {
        for (mine, theirs) in self.by_call.iter_mut().zip(other.by_call) {
            mine.extend(theirs);
        }
        self.items += other.items;
        self.reviews += other.reviews;
        self.empty_next += other.empty_next;
        self.errors += other.errors;
        for text in other.error_texts {
            if self.error_texts.len() < ERRORS_SHOWN_MAX {
                self.error_texts.push(text);
            }
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Report {
    pub engine: &'static str,
    pub items_per_s: f64,
    pub raw_items_per_s: f64,
    pub peers: Vec<(&'static str, Option<f64>)>,
    pub p99_ms: f64,
    pub errors: u64,
}

impl Report {
    pub fn ratio_to_raw(&self) -> f64 {
        match self.raw_items_per_s > 0.0 {
            true => self.items_per_s / self.raw_items_per_s,
            false => 0.0,
        }
    }

    /// The closing JSON line.
    pub fn json_line(&self) -> String {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let peers: serde_json::Map<String, serde_json::Value> = self
            .peers
            .iter()
            .map(|(name, rate)| (name.to_string(), json!(rate.map(round))))
            .collect();
        json!({
            "engine": self.engine,
            "items_per_s": round(self.items_per_s),
            "raw_items_per_s": round(self.raw_items_per_s),
            "ratio_to_raw": (self.ratio_to_raw() * 1000.0).round() / 1000.0,
            "peers": peers,
            "p99_ms": round(self.p99_ms),
            "errors": self.errors,
        })
        .to_string()
    }
}

/// A database made for this run, removed at the end.
pub(crate) enum Fresh {
    Sqlite { dir: std::path::PathBuf },
    Postgres { server: String, name: String },
}

impl Fresh {
    /// Makes a fresh database for `purpose` from `--db` (`sqlite` or a PostgreSQL server's URL)
    /// and returns it with its URL.
    pub(crate) async fn make(db: &str, purpose: &str) -> anyhow::Result<(Fresh, String)> {
        let tag = uuid::Uuid::now_v7().simple().to_string();
        if db == "sqlite" || db.starts_with("sqlite:") {
            let dir = std::env::temp_dir().join(format!("karya-bench-{purpose}-{tag}"));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let url = format!("sqlite://{}/karya.db", dir.display());
            return Ok((Fresh::Sqlite { dir }, url));
        }
        if !(db.starts_with("postgres:") || db.starts_with("postgresql:")) {
            bail!("--db must be sqlite or a postgres:// URL, not {db:?}");
        }
        let name = format!("karya_bench_{purpose}_{tag}");
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(db)
            .await
            .context("cannot connect to the PostgreSQL server")?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        conn.close().await.ok();
        let url = with_database(db, &name);
        Ok((
            Fresh::Postgres {
                server: db.to_string(),
                name,
            },
            url,
        ))
    }

    pub(crate) async fn remove(self) {
        match self {
            Fresh::Sqlite { dir } => {
                std::fs::remove_dir_all(dir).ok();
            }
            Fresh::Postgres { server, name } => {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&server).await {
                    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await
                        .ok();
                    conn.close().await.ok();
                }
            }
        }
    }
}

/// The URL of another database on the same PostgreSQL server.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Everything the simulated workers share.
struct Ctx {
    addr: SocketAddr,
    base: String,
    engagement_id: String,
    client_token: String,
    /// The input of every item: the pack's first example, so intake accepts it.
    input: serde_json::Value,
    client_id: karya_core::id::ClientId,
    reviewer_token: String,
    reviewer_id: String,
    workers: Vec<(String, String)>,
    items: u64,
    next_item: AtomicU64,
}

/// Runs the whole benchmark, writing its figures to `out`; the last line is the JSON object.
pub async fn run(options: &Options, out: &mut (dyn Write + Send)) -> anyhow::Result<Report> {
    if options.workers == 0 || options.workers > WORKERS_MAX {
        bail!("--workers must be between 1 and {WORKERS_MAX}");
    }
    if options.items == 0 || options.items > ITEMS_MAX {
        bail!("--items must be between 1 and {ITEMS_MAX}");
    }
    if !(options.review_share > 0.0 && options.review_share <= 1.0) {
        bail!("--review-share must lie in (0, 1]");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(
        out,
        "lifecycle: {} items, {} workers, review share {}, database {}",
        options.items,
        options.workers,
        options.review_share,
        redact(&options.db)
    )?;
    writeln!(
        out,
        "server and load generator run in this one process and share the machine's {cores} cores"
    )?;

    let (fresh, url) = Fresh::make(&options.db, "karya").await?;
    let measured = measure_karya(options, &url, out).await;
    fresh.remove().await;
    let (engine, karya, samples) = measured?;

    let raw = raw::measure(options, engine, out).await?;
    let peers = match (options.peers, engine) {
        (Peers::All, Engine::Postgres) => peers::measure_all(options, out).await?,
        (Peers::All, Engine::Sqlite) => {
            writeln!(out, "peers: skipped, they run on PostgreSQL only")?;
            Vec::new()
        }
        (Peers::None, _) => Vec::new(),
    };

    let all: Vec<u32> = samples.by_call.iter().flatten().copied().collect();
    let report = Report {
        engine: engine.name(),
        items_per_s: karya,
        raw_items_per_s: raw,
        peers,
        p99_ms: percentile(all, 0.99) as f64 / 1000.0,
        errors: samples.errors,
    };
    writeln!(
        out,
        "karya / raw = {:.3} ({:.1} / {:.1} items/s)",
        report.ratio_to_raw(),
        report.items_per_s,
        report.raw_items_per_s
    )?;
    writeln!(out, "{}", report.json_line())?;
    Ok(report)
}

async fn measure_karya(
    options: &Options,
    url: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<(Engine, f64, Samples)> {
    let store_options = StoreOptions {
        max_connections: PG_POOL_CONNECTIONS,
        ..StoreOptions::default()
    };
    let store = Store::open(url, &store_options)
        .await
        .context("cannot open the benchmark database")?;
    let engine = store.engine();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut app = AppState::new(store.clone());
    app.packs = bench_catalog()?;
    let server = tokio::spawn(karya_server::serve(listener, app, async {
        stopped.await.ok();
    }));
    let result = async {
        let ctx = Arc::new(seed(&store, addr, options).await?);
        let groups_before = store.group_stats();
        let started = Instant::now();
        let mut handles = Vec::with_capacity(options.workers);
        for me in 0..options.workers {
            let ctx = ctx.clone();
            handles.push(tokio::spawn(async move { sim_worker(ctx, me).await }));
        }
        let mut samples = Samples::default();
        for handle in handles {
            samples.merge(handle.await.context("a simulated worker panicked")?);
        }
        let elapsed = started.elapsed();
        let groups = store
            .group_stats()
            .zip(groups_before)
            .map(|(after, before)| GroupStats {
                commits: after.commits - before.commits,
                changes: after.changes - before.changes,
                busy: after.busy.saturating_sub(before.busy),
                committing: after.committing.saturating_sub(before.committing),
            });
        let delivered = delivered_items(&store, ctx.client_id).await?;
        anyhow::Ok((elapsed, samples, delivered, groups))
    }
    .await;
    stop.send(()).ok();
    server.await.ok();
    store.close().await;
    let (elapsed, mut samples, delivered, groups) = result?;
    if delivered != samples.items {
        samples.errors += samples.items.abs_diff(delivered);
        samples.error_texts.push(format!(
            "{} items went through their task but {delivered} work items were delivered",
            samples.items
        ));
    }

    let rate = samples.items as f64 / elapsed.as_secs_f64();
    writeln!(
        out,
        "karya ({}): {} items in {:.2} s = {rate:.1} items/s; {} reviewed ({:.1}%), {} empty Get next answers retried, {} errors",
        engine.name(),
        samples.items,
        elapsed.as_secs_f64(),
        samples.reviews,
        100.0 * samples.reviews as f64 / samples.items.max(1) as f64,
        samples.empty_next,
        samples.errors
    )?;
    writeln!(
        out,
        "  {:<30} {:>8} {:>9} {:>9}",
        "call", "count", "p50 ms", "p99 ms"
    )?;
    for (call, lat) in Call::ALL.iter().zip(&samples.by_call) {
        writeln!(
            out,
            "  {:<30} {:>8} {:>9.2} {:>9.2}",
            call.name(),
            lat.len(),
            percentile(lat.clone(), 0.5) as f64 / 1000.0,
            percentile(lat.clone(), 0.99) as f64 / 1000.0
        )?;
    }
    if let Some(groups) = groups {
        writeln!(
            out,
            "  sqlite writer: {} changes in {} group commits ({:.1} per commit); the write connection was held {:.0}% of the run, {:.0}% committing",
            groups.changes,
            groups.commits,
            groups.changes as f64 / groups.commits.max(1) as f64,
            100.0 * groups.busy.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
            100.0 * groups.committing.as_secs_f64() / elapsed.as_secs_f64().max(1e-9),
        )?;
    }
    for text in &samples.error_texts {
        writeln!(out, "  error: {text}")?;
    }
    Ok((engine, rate, samples))
}

/// Work items of the client that reached `delivered`: every item the simulated workers
/// finished must have, or the lifecycle did not run to its end.
async fn delivered_items(
    store: &Store,
    client_id: karya_core::id::ClientId,
) -> anyhow::Result<u64> {
    let tenant = store.tenant(client_id);
    let filter = karya_store::WorkItemFilter {
        state: Some(karya_core::lifecycle::WorkItemState::Delivered),
        engagement_id: None,
    };
    let mut page = karya_store::PageRequest {
        limit: karya_store::PAGE_LIMIT_MAX,
        after: None,
    };
    let mut count = 0u64;
    loop {
        let found = tenant.list_work_items(&filter, &page).await?;
        count += found.items.len() as u64;
        match found.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(count),
        }
    }
}

fn percentile(mut values: Vec<u32>, q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let idx = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[idx]
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(start), Some(at)) if at > start => {
            let user = &url[start + 3..at];
            match user.split_once(':') {
                Some((name, _)) => format!("{}{name}:***{}", &url[..start + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn expect(reply: &Reply, status: u16, what: &str) -> anyhow::Result<()> {
    match reply.status == status {
        true => Ok(()),
        false => Err(anyhow!(
            "{what}: status {} instead of {status}: {}",
            reply.status,
            reply.text()
        )),
    }
}

fn text_of(value: &serde_json::Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("answer without {key}: {value}"))
}

/// Seeds the firm through the store (users and tokens) and the API (everything else).
async fn seed(store: &Store, addr: SocketAddr, options: &Options) -> anyhow::Result<Ctx> {
    let now = jiff::Timestamp::now();
    let auth = karya_server::auth::user_with_token;
    let (_, admin) = auth(store, "admin@bench.example", Role::Admin, None, None, now).await?;
    let mut conn = Conn::open(addr).await?;
    let reply = conn
        .call(
            "POST",
            "/api/v1/clients",
            &admin,
            Some(r#"{"name":"Bench Client","currency":"USD"}"#),
        )
        .await?;
    expect(&reply, 201, "create client")?;
    let client_id = text_of(&reply.json()?, "id")?;
    let base = format!("/api/v1/clients/{client_id}");
    let reply = conn
        .call(
            "POST",
            &format!("{base}/engagements"),
            &admin,
            Some(&json!({"name": "bench", "service_line": BENCH_LINE}).to_string()),
        )
        .await?;
    expect(&reply, 201, "create engagement")?;
    let engagement_id = text_of(&reply.json()?, "id")?;
    // Sampling settles at the floor at once: no probation for new workers, a lenient target.
    let policy_path = format!("{base}/engagements/{engagement_id}/qa-policy");
    let reply = conn.call("GET", &policy_path, &admin, None).await?;
    expect(&reply, 200, "read qa policy")?;
    let mut policy = reply.json()?;
    policy["accuracy_target"] = json!(0.001);
    policy["confidence"] = json!(0.9);
    policy["min_checks"] = json!(0);
    policy["checks_after_failure"] = json!(0);
    policy["floor_rate"] = json!(options.review_share);
    let reply = conn
        .call("PUT", &policy_path, &admin, Some(&policy.to_string()))
        .await?;
    expect(&reply, 200, "set qa policy")?;

    let client: karya_core::id::ClientId = client_id.parse().map_err(|e| anyhow!("{e}"))?;
    let (_, client_token) = auth(
        store,
        "intake@client.example",
        Role::ClientUser,
        Some(client),
        None,
        now,
    )
    .await?;
    let reviewer_id = make_worker(&mut conn, &admin, "Bench Reviewer", "team_lead").await?;
    let (_, reviewer_token) = auth(
        store,
        "reviewer@bench.example",
        Role::Reviewer,
        None,
        Some(reviewer_id.parse().map_err(|e| anyhow!("{e}"))?),
        now,
    )
    .await?;
    let mut workers = Vec::with_capacity(options.workers);
    for n in 0..options.workers {
        let id = make_worker(&mut conn, &admin, &format!("Worker {n}"), "analyst").await?;
        let (_, token) = auth(
            store,
            &format!("worker{n}@bench.example"),
            Role::Worker,
            None,
            Some(id.parse().map_err(|e| anyhow!("{e}"))?),
            now,
        )
        .await?;
        workers.push((id, token));
    }
    Ok(Ctx {
        addr,
        base,
        engagement_id,
        client_token,
        client_id: client,
        input: bench_input()?,
        reviewer_token,
        reviewer_id,
        workers,
        items: options.items,
        next_item: AtomicU64::new(0),
    })
}

/// The bench pack's example input, which intake accepts.
fn bench_input() -> anyhow::Result<serde_json::Value> {
    let catalog = bench_catalog()?;
    let line = BENCH_LINE.parse().map_err(|e| anyhow!("{e}"))?;
    let pack = &catalog
        .for_line(line)
        .next()
        .ok_or_else(|| anyhow!("no pack for {BENCH_LINE}"))?
        .pack;
    let example = pack
        .examples
        .first()
        .ok_or_else(|| anyhow!("pack {} has no example", pack.id))?;
    Ok(serde_json::from_str(&example.input)?)
}

/// A worker on shift around the clock, available, with what the bench pack's step asks (a
/// technical degree, troubleshooting at level 6).
async fn make_worker(
    conn: &mut Conn,
    admin: &str,
    name: &str,
    designation: &str,
) -> anyhow::Result<String> {
    let body = json!({"name": name, "designation": designation}).to_string();
    let reply = conn
        .call("POST", "/api/v1/workers", admin, Some(&body))
        .await?;
    expect(&reply, 201, "create worker")?;
    let id = text_of(&reply.json()?, "id")?;
    let shifts: Vec<serde_json::Value> = (1..=7)
        .map(|d| json!({"weekday": d, "start": "00:00", "minutes": 1440}))
        .collect();
    let profile =
        json!({"languages": ["en"], "time_zone": "UTC", "shifts": shifts, "capacity_units": 10});
    let reply = conn
        .call(
            "PUT",
            &format!("/api/v1/workers/{id}/profile"),
            admin,
            Some(&profile.to_string()),
        )
        .await?;
    expect(&reply, 204, "set worker profile")?;
    let qualification =
        json!({"kind": "btech", "issuer": "iit", "valid_from": "2015-07-01T00:00:00Z"});
    let reply = conn
        .call(
            "POST",
            &format!("/api/v1/workers/{id}/qualifications"),
            admin,
            Some(&qualification.to_string()),
        )
        .await?;
    expect(&reply, 201, "add qualification")?;
    let reply = conn
        .call(
            "PUT",
            &format!("/api/v1/workers/{id}/skills/troubleshooting"),
            admin,
            Some(r#"{"level":6}"#),
        )
        .await?;
    expect(&reply, 204, "set skill")?;
    let reply = conn
        .call(
            "POST",
            &format!("/api/v1/workers/{id}/presence"),
            admin,
            Some(r#"{"presence":"available"}"#),
        )
        .await?;
    expect(&reply, 204, "set presence")?;
    Ok(id)
}

async fn sim_worker(ctx: Arc<Ctx>, me: usize) -> Samples {
    let mut samples = Samples::default();
    let mut conn = match Conn::open(ctx.addr).await {
        Ok(conn) => conn,
        Err(err) => {
            samples.errors += 1;
            samples.error_texts.push(format!("{err:#}"));
            return samples;
        }
    };
    loop {
        let n = ctx.next_item.fetch_add(1, Ordering::Relaxed);
        if n >= ctx.items {
            break;
        }
        match one_item(&ctx, me, n, &mut conn, &mut samples).await {
            Ok(()) => samples.items += 1,
            Err(err) => {
                samples.errors += 1;
                if samples.error_texts.len() < ERRORS_SHOWN_MAX {
                    samples.error_texts.push(format!("{err:#}"));
                }
                // The connection may be mid-response after a failure: start a clean one.
                match Conn::open(ctx.addr).await {
                    Ok(fresh) => conn = fresh,
                    Err(_) => break,
                }
            }
        }
    }
    samples
}

async fn timed(
    samples: &mut Samples,
    call: Call,
    conn: &mut Conn,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> anyhow::Result<Reply> {
    let started = Instant::now();
    let reply = conn.call(method, path, token, body).await?;
    samples.add(call, started.elapsed());
    Ok(reply)
}

/// One item through its lifecycle.
async fn one_item(
    ctx: &Ctx,
    me: usize,
    n: u64,
    conn: &mut Conn,
    samples: &mut Samples,
) -> anyhow::Result<()> {
    let (worker_id, worker_token) = &ctx.workers[me];
    let base = &ctx.base;
    let body = json!({
        "engagement_id": ctx.engagement_id,
        "title": format!("bench item {n}"),
        "external_ref": format!("B-{n}"),
        "input": ctx.input,
    })
    .to_string();
    let path = format!("{base}/work-items");
    let reply = timed(
        samples,
        Call::CreateItem,
        conn,
        "POST",
        &path,
        &ctx.client_token,
        Some(&body),
    )
    .await?;
    expect(&reply, 201, "create work item")?;
    // Intake starts the item on its pack's first step: the task Get next hands out.
    let path = format!("/api/v1/workers/{worker_id}/next");
    let mut claimed = None;
    for _ in 0..NEXT_ATTEMPTS_MAX {
        let reply = timed(
            samples,
            Call::Next,
            conn,
            "POST",
            &path,
            worker_token,
            Some(""),
        )
        .await?;
        match reply.status {
            200 => {
                claimed = Some(text_of(&reply.json()?, "task_id")?);
                break;
            }
            204 => {
                samples.empty_next += 1;
                tokio::task::yield_now().await;
            }
            _ => expect(&reply, 200, "get next")?,
        }
    }
    let task_id = claimed
        .ok_or_else(|| anyhow!("get next found nothing {NEXT_ATTEMPTS_MAX} times in a row"))?;

    let path = format!("{base}/tasks/{task_id}/transitions");
    let reply = timed(
        samples,
        Call::Start,
        conn,
        "POST",
        &path,
        worker_token,
        Some(r#"{"to":"in_progress"}"#),
    )
    .await?;
    expect(&reply, 200, "start task")?;

    let path = format!("{base}/tasks/{task_id}/submission");
    let body = BENCH_OUTPUT;
    let reply = timed(
        samples,
        Call::Submit,
        conn,
        "POST",
        &path,
        worker_token,
        Some(body),
    )
    .await?;
    expect(&reply, 200, "submit")?;
    let submitted = reply.json()?;
    match (submitted["review"].as_bool(), submitted["state"].as_str()) {
        (Some(false), Some("done")) => Ok(()),
        (Some(true), Some("in_review")) => {
            samples.reviews += 1;
            let path = format!("{base}/tasks/{task_id}/reviews");
            let body = json!({"reviewer_id": ctx.reviewer_id, "verdict": "pass"}).to_string();
            let reply = timed(
                samples,
                Call::Review,
                conn,
                "POST",
                &path,
                &ctx.reviewer_token,
                Some(&body),
            )
            .await?;
            expect(&reply, 201, "review")?;
            match reply.json()?["task_state"].as_str() {
                Some("done") => Ok(()),
                other => Err(anyhow!("a passed review left the task {other:?}, not done")),
            }
        }
        _ => Err(anyhow!("unexpected submission answer {submitted}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_another_database() {
        let check = |url: &str, expected: &str| assert_eq!(with_database(url, "b"), expected);
        check("postgres://u@h:5432/a", "postgres://u@h:5432/b");
        check("postgres://u@h", "postgres://u@h/b");
        check(
            "postgres://u:p@h/a?sslmode=disable",
            "postgres://u:p@h/b?sslmode=disable",
        );
        assert_eq!(redact("postgres://u:secret@h/a"), "postgres://u:***@h/a");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_on_sqlite_completes_without_errors() {
        let options = Options {
            db: "sqlite".into(),
            items: 24,
            workers: 4,
            review_share: 0.5,
            peers: Peers::None,
            cache_dir: std::env::temp_dir(),
        };
        let mut out = Vec::new();
        let report = run(&options, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(report.errors, 0, "{text}");
        assert!(text.contains("share the machine's"), "{text}");
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let mut keys: Vec<&str> = last
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "engine",
                "errors",
                "items_per_s",
                "p99_ms",
                "peers",
                "ratio_to_raw",
                "raw_items_per_s"
            ]
        );
        assert_eq!(last["engine"], "sqlite");
        assert_eq!(last["errors"], 0);
        assert!(last["items_per_s"].as_f64().unwrap() > 0.0, "{text}");
        assert!(last["raw_items_per_s"].as_f64().unwrap() > 0.0, "{text}");
        // Every call of the lifecycle was made, reviews included.
        for call in Call::ALL {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(call.name()))
                .unwrap();
            let count: u64 = line
                .split_whitespace()
                .rev()
                .nth(2)
                .unwrap()
                .parse()
                .unwrap();
            assert!(count > 0, "{call:?} never called:\n{text}");
        }
    }
}
