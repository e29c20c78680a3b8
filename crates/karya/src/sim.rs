//! `karya sim`: one run of a simulated firm under one routing policy, printed as one JSON
//! object (SLA attainment, utilisation and its spread, shift overruns, cost).
//!
//! The run drives the real core router (no HTTP, no database). The same scenario, policy,
//! seed and overrides print the same bytes.

use std::path::Path;

use anyhow::Context;
use karya_sim::firm::{self, Outcome, Policy};
use karya_sim::scenario::{check_load, Scenario, DAYS_MAX};
use karya_sim::trace::{self, Trace};
use serde_json::{json, Value};

/// What `karya sim` runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub policy: String,
    pub seed: u64,
    /// Overrides the scenario's days of arrivals.
    pub days: Option<u32>,
    /// Overrides the scenario's load.
    pub load: Option<f64>,
}

/// Reads and validates a scenario file, applying the days override.
pub fn load_scenario(path: &Path, days: Option<u32>) -> anyhow::Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the scenario {}", path.display()))?;
    let mut scenario = Scenario::parse(&text).with_context(|| format!("in {}", path.display()))?;
    if let Some(days) = days {
        anyhow::ensure!(
            (1..=DAYS_MAX).contains(&days),
            "--days must be between 1 and {DAYS_MAX}"
        );
        scenario.days = days;
    }
    Ok(scenario)
}

/// Runs the simulation and prints its JSON.
pub fn run(scenario_path: &Path, options: &SimOptions) -> anyhow::Result<()> {
    let policy = Policy::parse(&options.policy).with_context(|| {
        let names: Vec<_> = Policy::ALL.iter().map(|p| p.code()).collect();
        format!(
            "unknown policy {:?}: one of {}",
            options.policy,
            names.join(", ")
        )
    })?;
    let scenario = load_scenario(scenario_path, options.days)?;
    let load = options.load.unwrap_or(scenario.load);
    check_load(load)?;
    let trace = trace::generate(&scenario, load, options.seed)?;
    let outcome = firm::run(&scenario, &trace, policy, options.seed);
    println!(
        "{}",
        outcome_json(&scenario, &trace, &outcome, options.seed)
    );
    Ok(())
}

/// The JSON of one run. Fractions are rounded to 4 places, money to cents.
pub fn outcome_json(scenario: &Scenario, trace: &Trace, outcome: &Outcome, seed: u64) -> Value {
    let u = outcome.utilisation_summary();
    let by_priority: serde_json::Map<String, Value> = outcome
        .by_priority
        .iter()
        .map(|(p, items, on_time)| {
            let share = match items {
                0 => 1.0,
                n => f64::from(*on_time) / f64::from(*n),
            };
            (
                p.code().to_string(),
                json!({ "items": items, "on_time": on_time, "attainment": round(share, 4) }),
            )
        })
        .collect();
    let mut by_team = serde_json::Map::new();
    for (idx, team) in scenario.teams.iter().enumerate() {
        let u: Vec<f64> = trace
            .workers
            .iter()
            .zip(&outcome.utilisation)
            .filter(|(w, _)| w.team == idx)
            .map(|(_, u)| *u)
            .collect();
        let mean = u.iter().sum::<f64>() / u.len().max(1) as f64;
        by_team.insert(team.name.clone(), json!(round(mean, 4)));
    }
    json!({
        "scenario": scenario.name,
        "policy": outcome.policy.code(),
        "seed": seed,
        "days": scenario.days,
        "load": round(trace.load, 4),
        "workers": trace.workers.len(),
        "items": outcome.items,
        "completed": outcome.completed,
        "on_time": outcome.on_time,
        "sla_attainment": round(outcome.attainment(), 4),
        "by_priority": by_priority,
        "turnaround_mean_min": round(outcome.turnaround_mean_min, 1),
        "utilisation": {
            "mean": round(u.mean, 4),
            "stddev": round(u.stddev, 4),
            "min": round(u.min, 4),
            "max": round(u.max, 4),
            "by_team": by_team,
        },
        "shift_overruns": {
            "tasks": outcome.overrun_tasks,
            "minutes": round(outcome.overrun_s as f64 / 60.0, 1),
        },
        "handed_over_at_shift_end": outcome.handed_over,
        "paused_at_breaks": outcome.paused,
        "cost": {
            "labour": round(outcome.labour_cost, 2),
            "overtime": round(outcome.overtime_cost, 2),
            "per_on_time_item": round(outcome.cost_per_on_time_item(), 2),
        },
    })
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}
