//! `karya demo`: a living firm in one command.
//!
//! Builds a fresh SQLite database holding a realistic KPO/BPO firm (the firm itself comes from
//! `karya_sim::demo`), written through the store's use cases ([`crate::demo_setup`]), then
//! generates days of history ending now by driving the real engine on a simulated clock
//! ([`crate::demo_run`]), and serves the UI the way `karya serve` does, printing one sign-in
//! per role.
//!
//! The database is built under a temporary name and moved into place only when complete, so
//! an interrupted build never leaves a half-made demo behind. While building, the file lives on
//! a memory file system when the machine has one (`/dev/shm`): the store commits every change
//! with a full sync, which costs nothing there, and the finished file is copied to disk. When
//! that file system is too small (containers give it 64 MB), the build starts again on disk
//! next to the target. Ctrl-C during the build removes the partial file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use jiff::{SignedDuration, Timestamp};
use karya_sim::rng::Rng;
use karya_store::{Store, StoreOptions};

use crate::config::{Config, Overrides};
use crate::demo_run::RunStats;

/// Most days of history: two weeks shows every weekly pattern; a month is plenty.
pub const DAYS_MAX: u32 = 31;
/// Where the demo database goes without `--db` or `--data-dir`.
pub const DEFAULT_DATA_DIR: &str = "karya-demo";
/// File name of the database inside the data directory.
const DB_FILE: &str = "karya.db";

/// Whether to serve the UI once the database is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Serve,
    Exit,
}

/// What `karya demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `sqlite://PATH` of the database to create.
    pub db: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub days: u32,
    pub seed: u64,
    pub then: Then,
    pub bind: Option<String>,
    /// Replace an existing database.
    pub force: bool,
    /// The end of the history [default: the current time].
    pub now: Option<Timestamp>,
}

/// New ids drawn from the seed, ordered by time like UUID version 7, so a seed gives the same
/// ids.
pub struct Ids {
    rng: Rng,
}

impl Ids {
    pub fn new(seed: u64) -> Ids {
        Ids {
            rng: Rng::new(seed ^ 0x1d5_1d5),
        }
    }

    pub fn next(&mut self, at: Timestamp) -> uuid::Uuid {
        let millis = at.as_millisecond().max(0) as u64;
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.rng.next_u64().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }
}

/// The database file a `--db` URL or `--data-dir` names.
fn target_path(options: &DemoOptions) -> anyhow::Result<PathBuf> {
    match (&options.db, &options.data_dir) {
        (Some(_), Some(_)) => bail!("give --db or --data-dir, not both"),
        (Some(url), None) => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .with_context(|| {
                    format!("the demo builds a fresh SQLite database: --db must be sqlite://PATH, not {}", karya_store::redact_url(url))
                })?;
            let path = path.split('?').next().unwrap_or(path);
            anyhow::ensure!(!path.is_empty(), "--db names no file");
            Ok(PathBuf::from(path))
        }
        (None, dir) => Ok(dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
            .join(DB_FILE)),
    }
}

fn sidecars(path: &Path) -> [PathBuf; 2] {
    let text = path.as_os_str().to_owned();
    let mut wal = text.clone();
    wal.push("-wal");
    let mut shm = text;
    shm.push("-shm");
    [PathBuf::from(wal), PathBuf::from(shm)]
}

/// Refuses to overwrite a non-empty database unless forced, and makes its directory. The
/// old database stays until the new one is complete.
fn make_room(path: &Path, force: bool) -> anyhow::Result<()> {
    let used = std::fs::metadata(path)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if used && !force {
        bail!(
            "{} exists and is not empty: serve it with `karya serve --db {}`, pass --force to replace it with a new demo, or choose another --data-dir",
            path.display(),
            sqlite_url(path)
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Where the database may be built, in order: on the memory file system when there is one,
/// then next to the target.
fn build_paths(target: &Path, seed: u64) -> Vec<PathBuf> {
    let name = format!("karya-demo-{}-{seed}.db", std::process::id());
    let shm = Path::new("/dev/shm");
    let beside = target.with_file_name(format!(".{name}.building"));
    match shm.is_dir() {
        true => vec![shm.join(name), beside],
        false => vec![beside],
    }
}

/// Whether a build failed for want of space (a small memory file system, as in containers).
fn out_of_space(err: &anyhow::Error) -> bool {
    let text = format!("{err:#}");
    text.contains("database or disk is full") || text.contains("No space left")
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Builds the demo database and, unless told otherwise, serves it.
pub fn run(options: DemoOptions, mut overrides: Overrides) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=DAYS_MAX).contains(&options.days),
        "--days must be between 1 and {DAYS_MAX}"
    );
    let target = target_path(&options)?;
    make_room(&target, options.force)?;
    let now = options
        .now
        .unwrap_or_else(Timestamp::now)
        .round(jiff::Unit::Second)
        .context("cannot round the current time")?;
    let runtime = crate::runtime()?;
    let candidates = build_paths(&target, options.seed);
    let mut built = None;
    for (n, building) in candidates.iter().enumerate() {
        let attempt = runtime.block_on(async {
            tokio::select! {
                built = build(building, &options, now) => built,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        });
        match attempt {
            Ok(summary) => {
                built = Some((building, summary));
                break;
            }
            Err(err) if out_of_space(&err) && n + 1 < candidates.len() => {
                remove_quietly(building);
                eprintln!(
                    "{} is full: building on disk instead (slower)",
                    building.parent().unwrap_or(building).display()
                );
            }
            Err(err) => {
                remove_quietly(building);
                return Err(err);
            }
        }
    }
    let (building, summary) = built.context("no place to build the demo database")?;
    install(building, &target)?;
    let url = sqlite_url(&target);
    print_summary(&summary, &url, &options);
    if options.then == Then::Exit {
        println!("\nserve it with: karya serve --db {url}");
        return Ok(ExitCode::SUCCESS);
    }
    overrides.database_url = Some(url);
    overrides.bind = options.bind.clone();
    let config = Config::load(&overrides)?;
    crate::init_logging(&config)?;
    println!(
        "\nopen http://{}/login and sign in with one of the accounts above (Ctrl-C stops)",
        config.bind
    );
    runtime.block_on(crate::serve(config))?;
    Ok(ExitCode::SUCCESS)
}

fn remove_quietly(path: &Path) {
    for file in std::iter::once(path.to_path_buf()).chain(sidecars(path)) {
        std::fs::remove_file(file).ok();
    }
}

/// Moves the finished database into place (a copy when it was built on another file system),
/// replacing the old one: its write-ahead log and shared memory go first, since SQLite would
/// otherwise replay the old log into the new file.
fn install(building: &Path, target: &Path) -> anyhow::Result<()> {
    for file in sidecars(target) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove {}", file.display()))
            }
        }
    }
    if std::fs::rename(building, target).is_err() {
        let partial = target.with_extension("db.partial");
        std::fs::copy(building, &partial)
            .with_context(|| format!("cannot copy the demo database to {}", partial.display()))?;
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", partial.display()))?;
        std::fs::rename(&partial, target)
            .with_context(|| format!("cannot move the demo database to {}", target.display()))?;
    }
    remove_quietly(building);
    Ok(())
}

/// What was built, for the summary.
struct Summary {
    stats: RunStats,
    logins: Vec<crate::demo_setup::Login>,
    sites: usize,
    clients: usize,
    engagements: usize,
    workers: usize,
    elapsed: std::time::Duration,
    from: Timestamp,
    to: Timestamp,
}

async fn build(path: &Path, options: &DemoOptions, now: Timestamp) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let catalog: &'static karya_packs::Catalog = Box::leak(Box::new(
        karya_packs::builtin().context("the built-in packs do not load")?,
    ));
    let packs: Vec<&karya_core::pack::Pack> = catalog.packs().iter().map(|l| &l.pack).collect();
    let history = SignedDuration::from_hours(24 * i64::from(options.days));
    let start = now - history;
    let setup_at = start - SignedDuration::from_hours(24);
    let first_day = setup_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let firm = karya_sim::demo::firm(options.seed, &packs, first_day, options.days + 1);
    let zones = firm
        .clients
        .iter()
        .map(|c| {
            jiff::tz::TimeZone::get(c.time_zone)
                .with_context(|| format!("time zone {} is not installed", c.time_zone))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let arrivals = karya_sim::demo::arrivals(options.seed, &firm, &zones, start, now);

    let store = Store::open(&sqlite_url(path), &StoreOptions::default())
        .await
        .with_context(|| format!("cannot create the demo database at {}", path.display()))?;
    let result = async {
        let mut ids = Ids::new(options.seed);
        let built =
            crate::demo_setup::write_firm(&store, &firm, catalog, &mut ids, setup_at).await?;
        let bar = progress_bar(start, now);
        let report = |at: Timestamp, stats: &RunStats| {
            bar.set_position(at.duration_since(start).as_mins().max(0) as u64);
            let day = at.duration_since(start).as_hours() / 24 + 1;
            bar.set_message(format!(
                "day {day} of {}: {} items, {} tasks, {} reviews",
                options.days, stats.items, stats.tasks, stats.reviews
            ));
        };
        let (stats, cast) = crate::demo_run::run(
            &store,
            &firm,
            &built,
            &arrivals,
            &mut ids,
            options.seed,
            (start, now),
            &report,
        )
        .await?;
        bar.finish_and_clear();
        let plan = crate::demo_setup::logins(&firm, cast.lead, cast.worker, cast.reviewer, 0);
        crate::demo_setup::write_logins(&store, &built, &plan, &mut ids, now).await?;
        let report = store.audit(None).await?;
        if let Some(broken) = report.first_break() {
            bail!("the demo's audit trail does not verify: {broken}");
        }
        anyhow::Ok(Summary {
            stats,
            logins: plan.into_iter().map(|(login, _, _)| login).collect(),
            sites: built.sites.len(),
            clients: built.clients.len(),
            engagements: built.engagements.len(),
            workers: built.workers.len(),
            elapsed: started.elapsed(),
            from: start,
            to: now,
        })
    }
    .await;
    store.close().await;
    result
}

fn progress_bar(start: Timestamp, end: Timestamp) -> indicatif::ProgressBar {
    let minutes = end.duration_since(start).as_mins().max(1) as u64;
    let bar = indicatif::ProgressBar::new(minutes);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "building the demo firm {bar:30.cyan/blue} {percent:>3}% {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn print_summary(summary: &Summary, url: &str, options: &DemoOptions) {
    let s = &summary.stats;
    println!(
        "demo firm built in {:.1} s (seed {}): {}",
        summary.elapsed.as_secs_f64(),
        options.seed,
        url
    );
    println!(
        "  {} sites, {} clients, {} engagements over all 25 service lines, {} workers",
        summary.sites, summary.clients, summary.engagements, summary.workers
    );
    println!(
        "  {} days of history, {} to {}: {} work items, {} tasks, {} offers ({} declined, {} timed out), {} handed over at a shift's end",
        options.days,
        summary.from.strftime("%Y-%m-%d %H:%M UTC"),
        summary.to.strftime("%Y-%m-%d %H:%M UTC"),
        s.items,
        s.tasks,
        s.offers,
        s.declined,
        s.expired,
        s.handed_over
    );
    println!(
        "  {} processor jobs, {} submissions, {} reviews ({} failed, sent to rework), {} decisions ({} settled on approval, {} undone by a policy change)",
        s.jobs, s.submissions, s.reviews, s.failed_reviews, s.decisions, s.approvals, s.undone
    );
    println!(
        "  {} delivered, {} closed by clients, {} SLA warnings",
        s.delivered, s.closed, s.sla_warnings
    );
    println!("\nsign in as (demo passwords; change them before any real use):");
    for login in &summary.logins {
        println!(
            "  {:<13} {:<38} {:<22} {}",
            login.role.code(),
            login.email,
            login.password,
            login.note
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(db: Option<&str>, dir: Option<&str>) -> DemoOptions {
        DemoOptions {
            db: db.map(str::to_string),
            data_dir: dir.map(PathBuf::from),
            days: 2,
            seed: 1,
            then: Then::Exit,
            bind: None,
            force: false,
            now: None,
        }
    }

    #[test]
    fn the_target_is_a_sqlite_file() {
        let check = |db, dir, expect: Result<&str, &str>| {
            let got = target_path(&options(db, dir));
            match expect {
                Ok(path) => assert_eq!(got.unwrap(), PathBuf::from(path)),
                Err(text) => assert!(
                    got.as_ref().unwrap_err().to_string().contains(text),
                    "{got:?}"
                ),
            }
        };
        check(None, None, Ok("karya-demo/karya.db"));
        check(None, Some("/tmp/d"), Ok("/tmp/d/karya.db"));
        check(Some("sqlite:///tmp/x.db"), None, Ok("/tmp/x.db"));
        check(Some("sqlite://demo.db?mode=rwc"), None, Ok("demo.db"));
        check(
            Some("postgres://u@h/db"),
            None,
            Err("must be sqlite://PATH"),
        );
        check(Some("sqlite://a.db"), Some("d"), Err("not both"));
    }

    #[test]
    fn an_existing_database_is_kept_unless_forced() {
        let dir = std::env::temp_dir().join(format!("karya-demo-room-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("karya.db");
        std::fs::write(&db, b"not empty").unwrap();
        let err = make_room(&db, false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        // Forced, the old file stays until the new one replaces it, stale log and all.
        make_room(&db, true).unwrap();
        assert!(db.exists());
        let new = dir.join("new.db");
        std::fs::write(&new, b"new").unwrap();
        std::fs::write(sidecars(&db)[0].clone(), b"old log").unwrap();
        install(&new, &db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"new");
        assert!(!sidecars(&db)[0].exists() && !new.exists());
        // An empty file is no demo: it is replaced without --force.
        std::fs::write(&db, b"").unwrap();
        make_room(&db, false).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_full_memory_file_system_sends_the_build_to_disk() {
        let full =
            anyhow::anyhow!("error returned from database: (code: 13) database or disk is full")
                .context("simulated time 2026-03-02T10:00:00Z");
        assert!(out_of_space(&full));
        assert!(!out_of_space(&anyhow::anyhow!("unknown time zone")));
        let paths = build_paths(Path::new("/srv/demo/karya.db"), 3);
        assert_eq!(paths.last().unwrap().parent(), Some(Path::new("/srv/demo")));
    }

    #[test]
    fn ids_follow_the_seed_and_the_time() {
        let at: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap();
        let (mut a, mut b) = (Ids::new(7), Ids::new(7));
        let first = a.next(at);
        assert_eq!(first, b.next(at));
        assert_ne!(first, a.next(at));
        assert_eq!(first.get_version_num(), 7);
        assert!(a.next(at + SignedDuration::from_secs(1)) > first);
    }
}
