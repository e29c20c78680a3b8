//! Peers on the same PostgreSQL: pgqueuer (PyPI) and graphile-worker (npm), each on a fresh
//! database, installed into the cache directory on first use.
//!
//! Both do far less per job than karya does per item, which is the point of the comparison:
//! - pgqueuer: N no-op jobs are enqueued in batches, then queue managers drain them (the
//!   drain strategy of its own benchmark): a batched `FOR UPDATE SKIP LOCKED` dequeue and a
//!   buffered completion write (delete from the queue, append to its log) per job.
//! - graphile-worker: N no-op jobs are added with `graphile_worker.add_jobs`, then its worker
//!   pool claims and completes them (one claim and one completion per job, batched where it
//!   batches).
//!
//! karya per item: five to six authenticated HTTP calls, each validated against the lifecycle
//! tables and the tenant, each change written with its event appended to the client's hash
//! chain in the same transaction, SLA state kept, routing explained, QA sampling decided.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};

use super::{Fresh, Options};

/// The pgqueuer release measured; the run installs it when the cache lacks it.
const PGQUEUER_SPEC: &str = "pgqueuer==1.6.0";
/// The asyncpg driver pgqueuer runs on in its own benchmark.
const ASYNCPG_SPEC: &str = "asyncpg==0.32.0";
/// The graphile-worker release measured.
const GRAPHILE_SPEC: &str = "graphile-worker@0.17.3";
/// Queue managers (pgqueuer) and worker concurrency (graphile-worker), as in their benchmarks.
const PEER_CONSUMERS: usize = 5;
/// Jobs taken per dequeue (pgqueuer's benchmark default).
const PGQUEUER_BATCH: usize = 10;

const PGQUEUER_SCRIPT: &str = r#"
import asyncio, sys, time
import asyncpg
from pgqueuer.db import AsyncpgDriver
from pgqueuer.qm import QueueManager
from pgqueuer.queries import Queries
from pgqueuer.domain.types import QueueExecutionMode

dsn, jobs, consumers, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

async def main():
    setup = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(setup))
    await queries.install()
    for start in range(0, jobs, 1000):
        n = min(1000, jobs - start)
        await queries.enqueue(["noop"] * n, [None] * n, [0] * n)
    done = 0
    managers = []
    for _ in range(consumers):
        qm = QueueManager(Queries(AsyncpgDriver(await asyncpg.connect(dsn))))
        @qm.entrypoint("noop")
        async def noop(job):
            nonlocal done
            done += 1
        managers.append(qm)
    started = time.perf_counter()
    await asyncio.gather(*(qm.run(batch_size=batch, mode=QueueExecutionMode.drain) for qm in managers))
    elapsed = time.perf_counter() - started
    left = await setup.fetchval("SELECT count(*) FROM pgqueuer")
    if done != jobs or left != 0:
        sys.exit(f"pgqueuer ran {done} of {jobs} jobs, {left} left in the queue")
    print(f"jobs_per_s {jobs / elapsed}")

asyncio.run(main())
"#;

const GRAPHILE_SCRIPT: &str = r#"
const { run, runMigrations } = require("graphile-worker");
const { Pool } = require("pg");
const [connectionString, jobsText, concurrencyText] = process.argv.slice(2);
const jobs = Number(jobsText), concurrency = Number(concurrencyText);
async function main() {
  await runMigrations({ connectionString });
  const pool = new Pool({ connectionString });
  pool.on("error", (err) => console.error(err));
  await pool.query(
    "select graphile_worker.add_jobs(array(select ('noop', json_build_object('n', i), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series(1, $1) i))",
    [jobs]);
  let done = 0, finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const started = process.hrtime.bigint();
  const runner = await run({
    pgPool: pool, concurrency, noHandleSignals: true, pollInterval: 1000,
    logger: new (require("graphile-worker").Logger)(() => () => {}),
    taskList: { noop: async () => { done += 1; if (done === jobs) finish(); } },
  });
  await finished;
  // The last handler has returned; wait for its completion to commit.
  let left = jobs;
  for (let i = 0; i < 200 && left !== 0; i++) {
    left = (await pool.query("select count(*)::int as n from graphile_worker.jobs")).rows[0].n;
    if (left !== 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();
  await pool.end();
  if (left !== 0) { console.error(`graphile-worker left ${left} jobs`); process.exit(1); }
  console.log(`jobs_per_s ${jobs / elapsed}`);
}
main().catch((err) => { console.error(err); process.exit(1); });
"#;

/// Jobs per second of each peer, by name.
pub async fn measure_all(
    options: &Options,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<Vec<(&'static str, Option<f64>)>> {
    std::fs::create_dir_all(&options.cache_dir)
        .with_context(|| format!("cannot create {}", options.cache_dir.display()))?;
    let mut results = Vec::new();
    for (name, runner) in [
        (
            "pgqueuer",
            pgqueuer as fn(&Path, &str, u64) -> anyhow::Result<f64>,
        ),
        ("graphile_worker", graphile),
    ] {
        let (fresh, url) = Fresh::make(&options.db, name).await?;
        let cache = options.cache_dir.clone();
        let jobs = options.items;
        let measured = tokio::task::spawn_blocking(move || runner(&cache, &url, jobs)).await?;
        fresh.remove().await;
        match measured {
            Ok(rate) => {
                writeln!(
                    out,
                    "peer {name}: {rate:.1} jobs/s ({jobs} no-op jobs, {PEER_CONSUMERS} consumers)"
                )?;
                results.push((name, Some(rate)));
            }
            Err(err) => {
                writeln!(out, "peer {name}: failed: {err:#}")?;
                results.push((name, None));
            }
        }
    }
    writeln!(
        out,
        "per item: pgqueuer and graphile-worker claim and complete one no-op job (a queue row); \
         karya runs the item's whole lifecycle: authenticated HTTP calls, validated transitions, \
         events appended to a hash chain in each change's transaction, routing explained, QA sampled"
    )?;
    Ok(results)
}

fn run_script(mut command: Command, what: &str) -> anyhow::Result<f64> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{what} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("jobs_per_s "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| anyhow!("{what} printed no rate: {stdout}"))
}

fn pgqueuer(cache: &Path, url: &str, jobs: u64) -> anyhow::Result<f64> {
    let target = cache.join("pgqueuer");
    if !target.join("pgqueuer").exists() {
        // Installed into a directory of its own: what the system's own Python packages
        // require of each other is no concern of this install, so pip need not warn about it.
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-warn-conflicts",
                "--target",
            ])
            .arg(&target)
            .args([PGQUEUER_SPEC, ASYNCPG_SPEC])
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .status()
            .context("cannot run pip")?;
        if !status.success() {
            bail!("pip install {PGQUEUER_SPEC} failed");
        }
    }
    let script = write_script(cache, "pgqueuer_drain.py", PGQUEUER_SCRIPT)?;
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(url)
        .arg(jobs.to_string())
        .arg(PEER_CONSUMERS.to_string())
        .arg(PGQUEUER_BATCH.to_string())
        .env("PYTHONPATH", &target);
    run_script(command, "pgqueuer")
}

fn graphile(cache: &Path, url: &str, jobs: u64) -> anyhow::Result<f64> {
    let prefix = cache.join("graphile");
    if !prefix.join("node_modules/graphile-worker").exists() {
        let status = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(GRAPHILE_SPEC)
            .status()
            .context("cannot run npm")?;
        if !status.success() {
            bail!("npm install {GRAPHILE_SPEC} failed");
        }
    }
    let script = write_script(&prefix, "graphile_drain.js", GRAPHILE_SCRIPT)?;
    let mut command = Command::new("node");
    command
        .arg(script)
        .arg(url)
        .arg(jobs.to_string())
        .arg(PEER_CONSUMERS.to_string())
        .current_dir(&prefix);
    run_script(command, "graphile-worker")
}

fn write_script(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
