//! The `karya` binary: wires configuration, logging, the store and the server together.
//!
//! This is the only place that touches process state (arguments, environment, files, signals,
//! the tracing subscriber). Everything it calls receives what it needs as arguments.

mod bench_intake;
mod bench_lifecycle;
mod bench_processors;
mod bench_qa;
mod bench_quality;
mod bench_routing;
mod config;
mod demo;
mod demo_run;
mod demo_setup;
mod demo_values;
mod import;
mod invoice;
mod processors;
mod sim;
mod users;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use karya_core::id::ClientId;
use karya_processors::{
    JobRunner, LeaderWorker, RouterWorker, SlaMonitor, Supervisor, SupervisorOptions,
};
use karya_store::{Store, StoreOptions};

use crate::config::{Config, LogFormat, Overrides, DEFAULT_TOML};

/// How long background workers get to finish their current unit after SIGTERM; a unit is one
/// short transaction or a page of them, so a few seconds is plenty, and the process must stop
/// within what an orchestrator allows (commonly 30 s) after in-flight requests drain.
const BACKGROUND_STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// karya runs a knowledge and business process outsourcing firm: intake, routing of work to
/// qualified people, SLAs, quality, decisions under client policy, billing and an audit trail.
#[derive(Parser)]
#[command(name = "karya", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// Configuration file [default: ./karya.toml when present].
    #[arg(long, global = true, env = "KARYA_CONFIG", value_name = "PATH")]
    config: Option<std::path::PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "KARYA_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Log filter, e.g. info or karya_server=debug.
    #[arg(long, global = true, env = "KARYA_LOG", value_name = "FILTER")]
    log: Option<String>,
}

#[derive(Args)]
struct DbArgs {
    /// Database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://karya-data/karya.db].
    #[arg(long, env = "KARYA_DATABASE_URL", value_name = "URL")]
    db: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Build a living demo firm in a fresh SQLite database and serve it.
    ///
    /// Four delivery sites, eight clients with engagements across all 25 service lines, about
    /// 150 workers, and days of history made by running the real engine on a simulated clock.
    /// Prints one sign-in per role. The same --seed and --now build the same firm and history.
    Demo {
        /// Database to create: sqlite://PATH [default: sqlite://karya-demo/karya.db].
        #[arg(long, value_name = "URL")]
        db: Option<String>,
        /// Directory for the database (karya.db inside it), instead of --db.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<std::path::PathBuf>,
        /// Days of history, ending now.
        #[arg(long, default_value_t = 14)]
        days: u32,
        /// Seed of the firm and its history.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only build the database; do not serve it.
        #[arg(long)]
        no_serve: bool,
        /// Address to serve on [default: 127.0.0.1:8080].
        #[arg(long, env = "KARYA_BIND", value_name = "ADDR")]
        bind: Option<String>,
        /// Replace an existing, non-empty database.
        #[arg(long)]
        force: bool,
        /// End of the history, an RFC 3339 time [default: now]; with --seed it makes the
        /// database reproducible.
        #[arg(long, value_name = "TIME")]
        now: Option<jiff::Timestamp>,
    },
    /// Serve the API (and, as it grows, the web UI) until SIGTERM or Ctrl-C.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "KARYA_BIND", value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Bring the database schema up to date and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Audit the tamper-evident event log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Import a file of work items (CSV, JSON Lines or XLSX) into an engagement: every row or
    /// none. Exits 0 when imported, 1 when refused (listing the bad rows), 2 on other errors.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The client the engagement belongs to.
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// The engagement the items are for.
        #[arg(long, value_name = "ENGAGEMENT_ID")]
        engagement: String,
        /// The file: .csv, .jsonl (or .ndjson) or .xlsx.
        file: std::path::PathBuf,
    },
    /// Manage the people who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run a benchmark and print its figures, ending with one JSON line.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a client's invoice for one month, with SLA credits and their evidence.
    Invoice {
        #[command(flatten)]
        db: DbArgs,
        /// The client billed.
        #[arg(long, value_name = "CLIENT_ID")]
        client: String,
        /// The month billed, YYYY-MM (UTC).
        #[arg(long, value_name = "YYYY-MM")]
        period: String,
        /// json, csv or html.
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Run a simulated firm for some days under one routing policy, through the real core
    /// router, and print SLA attainment, utilisation, shift overruns and cost as JSON.
    Sim {
        /// Scenario file (TOML), e.g. scenarios/reference.toml.
        #[arg(long, value_name = "FILE")]
        scenario: std::path::PathBuf,
        /// fifo, priority_skills or karya.
        #[arg(long, default_value = "karya")]
        policy: String,
        /// Seed of the run; the same seed gives the same output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Days of arrivals [default: the scenario's].
        #[arg(long)]
        days: Option<u32>,
        /// Offered work over shift capacity [default: the scenario's].
        #[arg(long)]
        load: Option<f64>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Adaptive QA sampling against fixed 10% / 20% review on simulated workers.
    Qa {
        /// Seed of the simulation; the same seed gives the same figures.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Tasks in the simulated stream.
        #[arg(long, default_value_t = 3_000)]
        tasks: u32,
    },
    /// Bulk intake: work items per second validated, stored, chained and with their SLA clocks
    /// started, from a generated file.
    Intake {
        /// Rows in the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// File format: csv or jsonl.
        #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
        format: String,
        /// sqlite (a fresh temporary file) or a PostgreSQL server URL (a fresh database is
        /// created on it for the run and dropped afterwards) [default: sqlite].
        #[arg(long, value_name = "URL")]
        db: Option<String>,
    },
    /// Route tasks over a synthetic firm: push routing and Get-next latency, burst
    /// throughput, peak memory. The last output line is one JSON object.
    Routing {
        /// Workers in the firm.
        #[arg(long, default_value_t = 15_000)]
        workers: usize,
        /// Open tasks waiting in the backlog.
        #[arg(long, default_value_t = 500_000)]
        open_tasks: usize,
        /// Seed of the generated firm.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed samples per measurement.
        #[arg(long, default_value_t = 5_000)]
        samples: usize,
    },
    /// SLA attainment of FIFO, static priority + skills and karya's router against the
    /// offline upper bound, per load, on identical seeds. The last line is one JSON object.
    RoutingQuality {
        /// Scenario file (TOML).
        #[arg(long, value_name = "FILE", default_value = "scenarios/reference.toml")]
        scenario: std::path::PathBuf,
        /// Seeds per load; medians are reported.
        #[arg(long, default_value_t = 3)]
        seeds: u32,
        /// Days of arrivals [default: the scenario's].
        #[arg(long)]
        days: Option<u32>,
        /// Loads, comma-separated, as shares of shift capacity.
        #[arg(long, value_delimiter = ',', default_value = "0.8,0.9,0.95,1.05")]
        loads: Vec<f64>,
        /// Write an SVG chart of attainment against load here.
        #[arg(long, value_name = "FILE")]
        chart: Option<std::path::PathBuf>,
    },
    /// Quality of the processors on real documents: OCR error rates on scanned receipts,
    /// field extraction on receipts and invoices, prior-art search against plain BM25. The
    /// last output line is one JSON object.
    Processors {
        /// Evaluation data (receipts/, invoices/, patents/) [default: ../shared/data].
        #[arg(long, value_name = "DIR")]
        data: Option<std::path::PathBuf>,
        /// Receipts to recognise, in name order; 0 for all.
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// Runs of the timed searches; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Leave OCR out (extraction from the true text and search only).
        #[arg(long)]
        skip_ocr: bool,
        /// Tesseract page segmentation mode [default: the processor's, 4].
        #[arg(long)]
        psm: Option<u32>,
    },
    /// Work items per second through the real HTTP API (create → Get next → start → submit →
    /// review → delivered, on a one-step pack), against the raw commit limit of the same database and, on PostgreSQL,
    /// against pgqueuer and graphile-worker. The last output line is one JSON object.
    Lifecycle {
        /// sqlite (a fresh temporary file) or a PostgreSQL server URL (a fresh database is
        /// created on it for each measurement and dropped afterwards).
        #[arg(long, default_value = "sqlite", value_name = "URL")]
        db: String,
        /// Work items taken through their lifecycle.
        #[arg(long, default_value_t = 20_000)]
        items: u64,
        /// Simulated workers calling the API at once.
        #[arg(long, default_value_t = 32)]
        workers: usize,
        /// Share of submissions the QA policy samples for review, in (0, 1].
        #[arg(long, default_value_t = 0.1)]
        review_share: f64,
        /// Peers to measure on the same PostgreSQL: none or all.
        #[arg(long, default_value = "all")]
        peers: bench_lifecycle::Peers,
        /// Where peers are installed [default: $XDG_CACHE_HOME/karya-bench or ~/.cache/karya-bench].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The first administrator of a new firm is made this way.
    Add {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, manager, lead, worker, reviewer, client_admin, client_user or auditor.
        #[arg(long)]
        role: String,
        /// The client of a client_admin or client_user.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        /// The worker record of a worker, reviewer or lead.
        #[arg(long, value_name = "WORKER_ID")]
        worker: Option<String>,
        /// Read the password from the first line of standard input (12 to 256 characters).
        #[arg(long)]
        password_stdin: bool,
        /// Also create an API token and print it.
        #[arg(long)]
        token: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (shown only once).
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        /// What the token is for.
        #[arg(long, default_value = "command line")]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every client's hash chain (or one client's). Exits 0 when all are intact, 1 when a
    /// chain is broken (naming the first broken event), 2 on any other error.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        /// Verify only this client's chain.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the full default configuration, with comments, as a starting karya.toml.
    Default,
    /// Print the configuration in effect after file, environment and flags (secrets hidden).
    Show {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, env = "KARYA_BIND", value_name = "ADDR")]
        bind: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut overrides = Overrides {
        config_file: cli.global.config.clone(),
        log_format: cli.global.log_format.clone(),
        log_level: cli.global.log.clone(),
        ..Overrides::default()
    };
    match cli.command {
        Command::Demo {
            db,
            data_dir,
            days,
            seed,
            no_serve,
            bind,
            force,
            now,
        } => {
            let options = demo::DemoOptions {
                db,
                data_dir,
                days,
                seed,
                then: match no_serve {
                    true => demo::Then::Exit,
                    false => demo::Then::Serve,
                },
                bind,
                force,
                now,
            };
            demo::run(options, overrides)
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Show { db, bind }) => {
            overrides.database_url = db.db;
            overrides.bind = bind;
            print!("{}", Config::load(&overrides)?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { db, bind } => {
            overrides.database_url = db.db;
            overrides.bind = bind;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            runtime()?.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { db } => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            runtime()?.block_on(async {
                let store = open_store(&config).await?;
                store.close().await;
                println!("schema is at version {}", karya_store::SCHEMA_VERSION);
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Processors {
            data,
            limit,
            runs,
            skip_ocr,
            psm,
        }) => {
            bench_processors::run(&bench_processors::Options {
                data: bench_processors::resolve_data(data),
                limit,
                runs,
                skip_ocr,
                psm,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Qa { seed, tasks }) => {
            bench_qa::run(seed, tasks)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoice {
            db,
            client,
            period,
            format,
        } => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            runtime()?.block_on(invoice::run(&config, &client, &period, &format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Routing {
            workers,
            open_tasks,
            seed,
            samples,
        }) => {
            let options = bench_routing::BenchOptions {
                workers,
                open_tasks,
                seed,
                samples,
                ..bench_routing::BenchOptions::default()
            };
            bench_routing::run(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Lifecycle {
            db,
            items,
            workers,
            review_share,
            peers,
            cache_dir,
        }) => {
            let cache_dir = cache_dir.unwrap_or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(std::path::PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
                    })
                    .unwrap_or_else(std::env::temp_dir)
                    .join("karya-bench")
            });
            let options = bench_lifecycle::Options {
                db,
                items,
                workers,
                review_share,
                peers,
                cache_dir,
            };
            runtime()?.block_on(async {
                let mut out = std::io::stdout();
                bench_lifecycle::run(&options, &mut out).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::Add {
            db,
            email,
            name,
            role,
            client,
            worker,
            password_stdin,
            token,
        }) => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            let request = users::AddUser {
                email,
                name,
                role,
                client,
                worker,
                password_stdin,
                token,
            };
            runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let done = users::add(&store, request).await;
                store.close().await;
                done
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(UserCommand::List { db }) => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let done = users::list(&store).await;
                store.close().await;
                done
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Create { db, email, name }) => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let done = users::create_token(&store, &email, &name).await;
                store.close().await;
                done
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::Intake { rows, format, db }) => {
            let format = match format.as_str() {
                "jsonl" => karya_server::intake::Format::JsonLines,
                _ => karya_server::intake::Format::Csv,
            };
            runtime()?.block_on(bench_intake::run(rows, format, db))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            db,
            client,
            engagement,
            file,
        } => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            let client: ClientId = client
                .parse()
                .map_err(|err| anyhow::anyhow!("--client: {err}"))?;
            let engagement: karya_core::id::EngagementId = engagement
                .parse()
                .map_err(|err| anyhow::anyhow!("--engagement: {err}"))?;
            runtime()?.block_on(async {
                let store = open_store(&config).await?;
                let code = import::run(&store, client, engagement, &file).await;
                store.close().await;
                code
            })
        }
        Command::Sim {
            scenario,
            policy,
            seed,
            days,
            load,
        } => {
            let options = sim::SimOptions {
                policy,
                seed,
                days,
                load,
            };
            sim::run(&scenario, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCommand::RoutingQuality {
            scenario,
            seeds,
            days,
            loads,
            chart,
        }) => {
            let options = bench_quality::QualityOptions {
                seeds,
                days,
                loads,
                chart,
            };
            bench_quality::run(&scenario, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify { db, client }) => {
            overrides.database_url = db.db;
            let config = Config::load(&overrides)?;
            init_logging(&config)?;
            let client = client
                .map(|text| text.parse::<ClientId>())
                .transpose()
                .map_err(|err| anyhow::anyhow!("--client: {err}"))?;
            runtime()?.block_on(audit_verify(config, client))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .with_context(|| format!("log filter {:?} is not valid", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: config.max_connections,
        ..StoreOptions::default()
    };
    Store::open(config.database_url.expose(), &options)
        .await
        .with_context(|| format!("cannot open the database at {}", config.database_url))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %config.database_url, "karya serving");
    println!(
        "karya is serving http://{addr} (database {})",
        config.database_url
    );
    let users = store
        .list_users(
            None,
            &karya_store::PageRequest {
                limit: 1,
                after: None,
            },
        )
        .await?;
    if users.items.is_empty() {
        // A new firm: nobody can sign in yet. Say how to start, on stderr so scripts reading
        // the address from stdout are not disturbed.
        eprintln!(
            "no users yet: create the first administrator with\n  \
             karya user add --db {} --email you@firm.example --name \"Your Name\" --role admin --password-stdin",
            config.database_url
        );
    }
    // Background work: leadership, (on the leader only) the router and the SLA monitor, and
    // (on every node: claims are leased) the processor steps' jobs.
    let leading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut supervisor = Supervisor::new(SupervisorOptions::default());
    supervisor.spawn(LeaderWorker::new(store.clone(), leading.clone()));
    supervisor.spawn(RouterWorker::new(
        store.clone(),
        leading.clone(),
        karya_core::routing::RoutingConfig::default(),
    ));
    supervisor.spawn(SlaMonitor::new(store.clone(), leading.clone()));
    supervisor.spawn(JobRunner::new(
        store.clone(),
        processors::processors(),
        format!("jobs-{}", uuid::Uuid::now_v7()),
    ));
    let mut state = karya_server::AppState::with_leadership(store.clone(), leading);
    state.webhooks.allow_private = config.allow_private_webhooks;
    // Webhook delivery runs on every node: claims are leased, so nodes share the work.
    let (stop_webhooks, webhooks_stopped) = tokio::sync::watch::channel(());
    let webhooks = tokio::spawn(karya_server::webhook_loop::run(
        store.clone(),
        karya_server::webhook_delivery::WebhookClient::new(state.webhooks)?,
        async move {
            let mut stopped = webhooks_stopped;
            // Completes when the sender is dropped after the server has stopped.
            let _ = stopped.changed().await;
        },
    ));
    let served = karya_server::serve(listener, state, shutdown_signal()).await;
    drop(stop_webhooks);
    webhooks.await.context("webhook delivery failed")?;
    // Stop the background work even when serving failed, so leadership is released.
    let report = supervisor.shutdown(BACKGROUND_STOP_DEADLINE).await;
    tracing::info!(
        stopped = report.stopped,
        aborted = report.aborted,
        "background work stopped"
    );
    served.context("server failed")?;
    store.close().await;
    tracing::info!("karya stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn audit_verify(config: Config, client: Option<ClientId>) -> anyhow::Result<ExitCode> {
    let store = open_store(&config).await?;
    if store.engine() == karya_store::Engine::Sqlite {
        // The file itself first: a damaged page would make any chain verdict meaningless.
        store.integrity_check().await?;
        println!("database integrity: ok");
    }
    let report = store.audit(client).await?;
    store.close().await;
    let mut total = 0u64;
    for chain in &report.chains {
        total += chain.events_verified;
        let name = if chain.client_id == karya_store::FIRM_CHAIN {
            "firm".to_string()
        } else {
            format!("client {}", chain.client_id)
        };
        match &chain.broken {
            None => println!("ok      {name}: {} events intact", chain.events_verified),
            Some(broken) => println!("BROKEN  {name}: event {}: {}", broken.seq, broken.reason),
        }
    }
    match report.first_break() {
        None => {
            println!(
                "audit passed: {} chains, {total} events, all intact",
                report.chains.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(broken) => {
            eprintln!("audit FAILED: {broken}");
            Ok(ExitCode::from(1))
        }
    }
}
