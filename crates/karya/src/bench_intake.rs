//! `karya bench intake`: validated work items per second through bulk intake.
//!
//! Generates a realistic file of insurance claims (title, priority, client reference and six
//! input fields, numbers among them) in a temporary directory, then times the path a client's
//! upload takes after it is spooled: [`intake::parse`] (reading, validation, ids, input JSON)
//! and [`intake::store`] (duplicate check, batched inserts, one chained event per item, each
//! item's SLA clock started with its due time on the engagement's calendar, one commit). Generating the file is not timed. Peak RSS is the process's high-water mark
//! (`VmHWM`), which includes the rows held for the one transaction.
//!
//! The import goes to a fresh database made for the run and removed after it: a SQLite file in
//! a temporary directory (the default), or, with `--db` naming a PostgreSQL server, a new
//! database on that server. The last line of the output is one JSON object `{"engine", "rows",
//! "items_per_s", "peak_rss_mib"}`.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_core::money::Currency;
use karya_core::service_line::ServiceLine;
use karya_server::intake::{self, Format};
use karya_sim::rng::Rng;
use karya_store::{NewEngagement, Store, StoreOptions};

use crate::bench_lifecycle::Fresh;
use serde_json::json;

/// Runs the benchmark once and prints its figures.
pub async fn run(rows: usize, format: Format, db: Option<String>) -> anyhow::Result<()> {
    if rows == 0 || rows > intake::ROWS_MAX {
        anyhow::bail!("--rows must be between 1 and {}", intake::ROWS_MAX);
    }
    let dir = std::env::temp_dir().join(format!(
        "karya-bench-intake-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let outcome = measure(rows, format, db, &dir).await;
    std::fs::remove_dir_all(&dir).ok();
    outcome
}

async fn measure(
    rows: usize,
    format: Format,
    db: Option<String>,
    dir: &Path,
) -> anyhow::Result<()> {
    let path = dir.join(format!("claims.{}", format.name()));
    generate(&path, format, rows)?;
    let file_bytes = std::fs::metadata(&path)?.len();
    let (fresh, url) = Fresh::make(db.as_deref().unwrap_or("sqlite"), "intake").await?;
    let outcome = import(rows, format, &path, file_bytes, &url).await;
    fresh.remove().await;
    outcome
}

/// Imports the generated file at `path` into the database at `url` and prints the figures.
async fn import(
    rows: usize,
    format: Format,
    path: &Path,
    file_bytes: u64,
    url: &str,
) -> anyhow::Result<()> {
    let store = Store::open(url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open {}", karya_store::redact_url(url)))?;
    let engine = store.engine().name();

    let client_id = ClientId::from_uuid(uuid::Uuid::now_v7());
    let now = jiff::Timestamp::now();
    store
        .create_client(
            client_id,
            &format!("Bench client {client_id}"),
            Currency::USD,
            now,
        )
        .await?;
    let tenant = store.tenant(client_id);
    let engagement_id = EngagementId::from_uuid(uuid::Uuid::now_v7());
    let engagement = NewEngagement {
        id: engagement_id,
        name: "Motor claims".into(),
        service_line: ServiceLine::ALL[0],
    };
    tenant.create_engagement(&engagement, now).await?;
    set_sla_terms(&tenant, engagement_id, now).await?;
    println!(
        "intake bench: {rows} rows, {} file of {:.1} MiB, {engine} at {}",
        format.name(),
        file_bytes as f64 / (1024.0 * 1024.0),
        karya_store::redact_url(url)
    );

    let started = Instant::now();
    let parsed = tokio::task::block_in_place(|| {
        let mut file = std::fs::File::open(path)?;
        let mut new_id = || WorkItemId::from_uuid(uuid::Uuid::now_v7());
        intake::parse(format, &mut file, engagement_id, &mut new_id).map_err(anyhow::Error::new)
    })?;
    let parsed_at = started.elapsed();
    let summary = intake::store(
        &tenant,
        &karya_server::builtin_packs(),
        engagement_id,
        &parsed,
        jiff::Timestamp::now(),
        &|_| {},
    )
    .await
    .map_err(anyhow::Error::new)?;
    let elapsed = started.elapsed();
    drop(parsed);
    anyhow::ensure!(
        summary.imported as usize == rows,
        "imported {} of {rows} rows",
        summary.imported
    );

    for id in [summary.first_id, summary.last_id] {
        let state = tenant.sla_state(id).await?;
        anyhow::ensure!(
            state.is_some_and(|s| s.resolution.due_at.is_some()),
            "work item {id} has no SLA due time after the import"
        );
    }
    let chain = store.verify_chain(client_id).await?;
    anyhow::ensure!(
        chain.broken.is_none(),
        "chain broken after import: {:?}",
        chain.broken
    );
    store.close().await;

    let items_per_s = rows as f64 / elapsed.as_secs_f64();
    let peak_rss_mib = peak_rss_kib()? as f64 / 1024.0;
    println!(
        "parse + validate {:.2} s, store {:.2} s, total {:.2} s; chain of {} events verified",
        parsed_at.as_secs_f64(),
        (elapsed - parsed_at).as_secs_f64(),
        elapsed.as_secs_f64(),
        chain.events_verified
    );
    println!("{items_per_s:.0} items/s, peak RSS {peak_rss_mib:.0} MiB");
    println!(
        "{}",
        json!({
            "engine": engine,
            "rows": rows,
            "items_per_s": items_per_s.round(),
            "peak_rss_mib": peak_rss_mib.round(),
        })
    );
    Ok(())
}

/// Gives the engagement a business-hours calendar and resolution terms for every priority, so
/// that every imported item has its SLA due time computed, as a client's engagement would.
async fn set_sla_terms(
    tenant: &karya_store::Tenant,
    engagement_id: EngagementId,
    now: jiff::Timestamp,
) -> anyhow::Result<()> {
    use jiff::civil::time;
    use jiff::SignedDuration;
    use karya_core::billing::{CreditRule, ItemRate, Pricing};
    use karya_core::calendar::{Calendar, Shift, MONDAY_TO_FRIDAY};
    use karya_core::id::CalendarId;
    use karya_core::model::Priority;
    use karya_core::money::Money;
    use karya_core::sla::SlaTerms;
    use karya_store::{CalendarSpec, EngagementSla};

    let week = Calendar::weekly(
        jiff::tz::TimeZone::UTC,
        &MONDAY_TO_FRIDAY,
        &[Shift::new(time(9, 0, 0, 0), time(18, 0, 0, 0))],
    )
    .week;
    let calendar_id = CalendarId::from_uuid(uuid::Uuid::now_v7());
    let spec = CalendarSpec {
        id: calendar_id,
        name: "Claims desk".into(),
        time_zone: "UTC".into(),
        week,
        holidays: vec![],
        exceptions: vec![],
    };
    tenant.put_calendar(&spec, "bench set-up", now).await?;
    // Urgent claims in 4 business hours, the rest in 1 to 5 business days.
    let hours = |priority: Priority| match priority {
        Priority::Urgent => 4,
        Priority::High => 9,
        Priority::Normal => 27,
        Priority::Low => 45,
    };
    let terms = Priority::ALL
        .iter()
        .map(|&priority| {
            let terms = SlaTerms {
                first_response: SignedDuration::from_hours(1),
                resolution: SignedDuration::from_hours(hours(priority)),
                warning_pct: 75,
                on_time_target_bp: 9_500,
                accuracy_target_bp: 9_800,
            };
            (priority, terms)
        })
        .collect();
    let sla = EngagementSla {
        calendar: calendar_id.into(),
        terms,
        pricing: Pricing::PerItem {
            rates: vec![ItemRate {
                priority: Priority::Normal,
                band: None,
                price: Money::new(1_500, Currency::USD),
            }],
        },
        credit_rule: Some(CreditRule {
            per_point_bp: 200,
            cap_bp: 1_000,
        }),
        accuracy_credit_rule: None,
    };
    tenant
        .set_engagement_sla(engagement_id, &sla, "bench set-up", now)
        .await?;
    Ok(())
}

/// The process's peak resident set size in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("cannot read /proc/self/status (peak RSS is measured on Linux)")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM line in /proc/self/status")
}

const CITIES: [&str; 8] = [
    "Pune", "Leeds", "Austin", "Lyon", "Osaka", "Recife", "Gdansk", "Perth",
];
const CAUSES: [&str; 6] = [
    "rear-end collision at a junction",
    "windscreen cracked by gravel",
    "parked car scraped in a garage",
    "hail damage to roof and bonnet",
    "theft of catalytic converter",
    "flooded engine after heavy rain",
];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// Writes `rows` claims in `format`, the same seeded content every time.
fn generate(path: &Path, format: Format, rows: usize) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::with_capacity(1024 * 1024, file);
    let mut rng = Rng::new(7);
    if format == Format::Csv {
        writeln!(
            out,
            "title,priority,external_ref,policy_number,claimant,city,amount,incident_date,description"
        )?;
    }
    for idx in 0..rows {
        let city = CITIES[rng.below(CITIES.len())];
        let cause = CAUSES[rng.below(CAUSES.len())];
        let priority = PRIORITIES[rng.below(PRIORITIES.len())];
        let amount = 100 + rng.below(50_000);
        let cents = rng.below(100);
        let day = 1 + rng.below(28);
        let month = 1 + rng.below(12);
        let title = format!("Motor claim {idx}: {city}");
        let external_ref = format!("CLM-{idx:08}");
        let policy = format!("POL-{:06}", rng.below(1_000_000));
        let claimant = format!("Claimant {}", rng.below(200_000));
        let date = format!("2026-{month:02}-{day:02}");
        match format {
            Format::Csv => writeln!(
                out,
                "{title},{priority},{external_ref},{policy},{claimant},{city},{amount}.{cents:02},{date},{cause}"
            )?,
            Format::JsonLines => writeln!(
                out,
                "{}",
                json!({
                    "title": title, "priority": priority, "external_ref": external_ref,
                    "policy_number": policy, "claimant": claimant, "city": city,
                    "amount": amount as f64 + cents as f64 / 100.0, "incident_date": date,
                    "description": cause,
                })
            )?,
            Format::Xlsx => anyhow::bail!("the benchmark generates csv or jsonl files"),
        }
    }
    out.flush()?;
    Ok(())
}
