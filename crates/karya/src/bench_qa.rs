//! `karya bench qa`: adaptive sampling against fixed-rate review, on a seeded simulation of
//! workers with planted error rates (0.5%, 2%, 8%).
//!
//! Prints a table per policy and per worker, then, as its last line, one JSON object
//! `{"policies": [{"name", "reviews", "defects_caught", "defects_escaped",
//! "interval_covers_truth"}]}` for scripts.

use karya_sim::qa::{compare, QaSimConfig, TASKS_MAX};
use serde_json::json;

/// Runs the comparison and prints it.
pub fn run(seed: u64, tasks: u32) -> anyhow::Result<()> {
    if tasks == 0 || tasks > TASKS_MAX {
        anyhow::bail!("--tasks must be between 1 and {TASKS_MAX}");
    }
    let config = QaSimConfig::standard(seed, tasks);
    let comparison = compare(&config);
    println!(
        "qa sampling: seed {seed}, {tasks} tasks, target accuracy {:.1}% at {:.0}% confidence, \
         intervals at {:.0}%",
        (1.0 - config.sampling.error_target) * 100.0,
        config.sampling.confidence * 100.0,
        config.interval_confidence * 100.0
    );
    println!(
        "{:<14} {:>7} {:>7} {:>7} {:>7}  {:<24} {:>7}  covers",
        "policy", "reviews", "caught", "escaped", "share", "accuracy [interval]", "truth"
    );
    for policy in &comparison.policies {
        println!(
            "{:<14} {:>7} {:>7} {:>7} {:>6.1}%  {:.4} [{:.4}, {:.4}]  {:>7.4}  {}",
            policy.name,
            policy.reviews,
            policy.defects_caught,
            policy.defects_escaped,
            policy.caught_share() * 100.0,
            policy.accuracy.accuracy,
            policy.accuracy.interval.low,
            policy.accuracy.interval.high,
            policy.true_accuracy,
            policy.interval_covers_truth,
        );
        for worker in &policy.workers {
            let flagged = match worker.flagged_above_target_after {
                Some(n) => format!("flagged above target after {n} tasks"),
                None => "not flagged".to_string(),
            };
            println!(
                "    {:<9} planted {:>4.1}%  tasks {:>6}  reviews {:>6}  defects {:>4}  caught {:>4}  \
                 error [{:.4}, {:.4}]  {flagged}",
                worker.name,
                worker.planted_error_rate * 100.0,
                worker.tasks,
                worker.reviews,
                worker.defects,
                worker.defects_caught,
                1.0 - worker.accuracy.interval.high,
                1.0 - worker.accuracy.interval.low,
            );
        }
    }
    let policies: Vec<_> = comparison
        .policies
        .iter()
        .map(|policy| {
            json!({
                "name": policy.name,
                "reviews": policy.reviews,
                "defects_caught": policy.defects_caught,
                "defects_escaped": policy.defects_escaped,
                "interval_covers_truth": policy.interval_covers_truth,
            })
        })
        .collect();
    println!("{}", json!({ "policies": policies }));
    Ok(())
}
