//! `karya bench routing-quality`: SLA attainment of the routing policies against the offline
//! upper bound, per load, on identical seeds and arrival traces.
//!
//! For each load and seed one trace is drawn; FIFO, static priority + skills and karya's
//! router each run it, and the bound's linear program is solved for it. Medians over the seeds
//! are printed as a table (attainment, share of the bound, utilisation and its spread, shift
//! overruns, cost), then, last, one JSON line
//! `{"scenario", "results": [{"load", "fifo", "priority_skills", "karya", "bound"}]}` with
//! attainment as fractions. `--chart FILE` also writes an SVG of attainment against load.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use karya_sim::bound::{self, BoundOptions};
use karya_sim::chart::{attainment_svg, Series};
use karya_sim::firm::{self, Outcome, Policy};
use karya_sim::scenario::check_load;
use karya_sim::trace;
use serde_json::{json, Value};

use crate::sim::{load_scenario, round};

/// Most seeds per load: medians settle well before, and each seed is four solves.
pub const SEEDS_MAX: u32 = 50;
/// Most loads in one run.
pub const LOADS_MAX: usize = 20;

/// What the bench runs.
#[derive(Debug, Clone)]
pub struct QualityOptions {
    pub seeds: u32,
    pub days: Option<u32>,
    pub loads: Vec<f64>,
    pub chart: Option<PathBuf>,
}

/// Medians of one policy at one load.
struct Row {
    attainment: f64,
    utilisation_mean: f64,
    utilisation_stddev: f64,
    overrun_tasks: f64,
    overrun_min: f64,
    cost_per_item: f64,
}

/// Runs the comparison and prints it.
pub fn run(scenario_path: &Path, options: &QualityOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=SEEDS_MAX).contains(&options.seeds),
        "--seeds must be between 1 and {SEEDS_MAX}"
    );
    anyhow::ensure!(
        !options.loads.is_empty() && options.loads.len() <= LOADS_MAX,
        "--loads takes between 1 and {LOADS_MAX} values"
    );
    for load in &options.loads {
        check_load(*load).context("--loads")?;
    }
    let scenario = load_scenario(scenario_path, options.days)?;
    println!(
        "routing quality: scenario {} ({} workers, {} lines, {} days), seeds 1..={}, \
         slots of {} min; medians over seeds",
        scenario.name,
        scenario.n_workers(),
        scenario.lines.len(),
        scenario.days,
        options.seeds,
        scenario.slot_minutes
    );
    let mut results: Vec<Value> = Vec::new();
    let mut series: Vec<Series> = Policy::ALL
        .iter()
        .map(|p| Series {
            name: p.code().to_string(),
            points: Vec::new(),
            dashed: false,
        })
        .collect();
    series.push(Series {
        name: "bound".into(),
        points: Vec::new(),
        dashed: true,
    });
    for &load in &options.loads {
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); Policy::ALL.len()];
        let mut bounds: Vec<f64> = Vec::new();
        let mut uncoverable: Vec<f64> = Vec::new();
        let mut items = Vec::new();
        let (mut sim_s, mut lp_s, mut lp_size) = (0.0, 0.0, (0, 0));
        for seed in 1..=u64::from(options.seeds) {
            let trace = trace::generate(&scenario, load, seed)?;
            items.push(trace.items.len() as f64);
            let t0 = Instant::now();
            for (idx, policy) in Policy::ALL.iter().enumerate() {
                outcomes[idx].push(firm::run(&scenario, &trace, *policy, seed));
            }
            sim_s += t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            let b = bound::solve(
                &scenario,
                &trace,
                BoundOptions {
                    slot_minutes: scenario.slot_minutes,
                    overtime_s: 0,
                },
            )
            .with_context(|| format!("bound at load {load}, seed {seed}"))?;
            lp_s += t0.elapsed().as_secs_f64();
            lp_size = (b.variables, b.constraints);
            bounds.push(b.attainment());
            uncoverable.push(f64::from(b.uncoverable));
        }
        let bound = median(&bounds);
        println!(
            "\nload {:.0}%: {:.0} items (median), {:.0} of them longer than the time any \
             eligible worker is on shift before they fall due; simulation {:.1}s, bound {:.1}s \
             ({} variables, {} constraints per seed)",
            load * 100.0,
            median(&items),
            median(&uncoverable),
            sim_s,
            lp_s,
            lp_size.0,
            lp_size.1
        );
        println!(
            "  {:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9}",
            "policy",
            "attainment",
            "of bound",
            "util",
            "util sd",
            "overruns",
            "overrun h",
            "cost/item"
        );
        let mut entry = serde_json::Map::new();
        entry.insert("load".into(), json!(load));
        for (idx, policy) in Policy::ALL.iter().enumerate() {
            let row = medians(&outcomes[idx]);
            println!(
                "  {:<16} {:>9.2}% {:>8.1}% {:>8.1}% {:>8.1}% {:>9.0} {:>10.1} {:>9.2}",
                policy.code(),
                row.attainment * 100.0,
                row.attainment / bound.max(1e-9) * 100.0,
                row.utilisation_mean * 100.0,
                row.utilisation_stddev * 100.0,
                row.overrun_tasks,
                row.overrun_min / 60.0,
                row.cost_per_item
            );
            entry.insert(policy.code().into(), json!(round(row.attainment, 4)));
            entry.insert(
                format!("{}_utilisation_sd", policy.code()),
                json!(round(row.utilisation_stddev, 4)),
            );
            entry.insert(
                format!("{}_overruns", policy.code()),
                json!(row.overrun_tasks),
            );
            series[idx].points.push((load, row.attainment));
        }
        println!("  {:<16} {:>9.2}%", "bound", bound * 100.0);
        entry.insert("bound".into(), json!(round(bound, 4)));
        entry.insert("bound_uncoverable".into(), json!(median(&uncoverable)));
        series[Policy::ALL.len()].points.push((load, bound));
        results.push(Value::Object(entry));
    }
    if let Some(path) = &options.chart {
        let title = format!("SLA attainment vs load, scenario {}", scenario.name);
        std::fs::write(path, attainment_svg(&title, &series))
            .with_context(|| format!("cannot write the chart to {}", path.display()))?;
        println!("\nchart written to {}", path.display());
    }
    println!(
        "{}",
        json!({ "scenario": scenario.name, "results": results })
    );
    Ok(())
}

fn medians(outcomes: &[Outcome]) -> Row {
    let pick = |f: &dyn Fn(&Outcome) -> f64| median(&outcomes.iter().map(f).collect::<Vec<_>>());
    Row {
        attainment: pick(&|o| o.attainment()),
        utilisation_mean: pick(&|o| o.utilisation_summary().mean),
        utilisation_stddev: pick(&|o| o.utilisation_summary().stddev),
        overrun_tasks: pick(&|o| f64::from(o.overrun_tasks)),
        overrun_min: pick(&|o| o.overrun_s as f64 / 60.0),
        cost_per_item: pick(&|o| o.cost_per_on_time_item()),
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
