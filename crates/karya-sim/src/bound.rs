//! An upper bound on SLA attainment for one trace: the best share of items any routing policy
//! could finish by their due time, found by an offline optimiser that knows the whole trace.
//!
//! # The linear program
//! Time is cut into slots of `slot_minutes`. Workers with the same eligibility (the set of
//! lines they may take) form a *pool*; a pool's capacity in a slot is the minutes of shift its
//! workers have in it (times their capacity). Items of lines with the same eligible pools that
//! arrive in the same slot and fall due in the same slot form a *bucket*.
//!
//! - `z_i` in `[0, 1]`: how much of item `i` is finished on time;
//! - `x_{b,p,s} >= 0`: minutes that pool `p` works on bucket `b` in slot `s`, for every slot
//!   from the bucket's arrival slot to its due slot;
//! - per bucket: `sum_{p,s} x_{b,p,s} >= sum_{i in b} h_i z_i` (`h_i` the true handling time);
//! - per pool and slot: `sum_b x_{b,p,s} <= capacity_{p,s}`;
//! - `z_i = 0` for an item whose handling time exceeds the time, between its arrival and its
//!   due time, when at least one worker eligible for it is on shift (its *coverage*);
//! - maximise `sum_i z_i`.
//!
//! # Why it is an upper bound
//! Take any policy's run. Every item it finishes on time got `h_i` minutes of work from
//! eligible workers, on shift, between its arrival and its due time, hence inside the slots
//! from its arrival slot to its due slot. Setting `z_i = 1` for those items, `0` for the others,
//! and `x` to the minutes actually worked on them gives a feasible point of the program whose
//! objective is the run's on-time count; the optimum can only be higher. An item finished on
//! time was worked on for `h_i` minutes by one worker at a time (hand-overs pass it on, nobody
//! shares it), each time while that worker was on shift, all inside its window: so `h_i` is at
//! most its coverage, and the items whose coverage falls short are never among them. The
//! program relaxes
//! the real problem in every other direction at once: work may be split between workers and
//! pre-empted at will, an item may be worked on by several people in parallel (within its
//! coverage), partial items count fractionally, arrival and due times are rounded outwards to
//! whole slots, and the optimiser knows every arrival and every true handling time in advance.
//!
//! Policies that let work run past the end of a shift use time the program does not have;
//! [`BoundOptions::overtime_s`] extends each block by that much to bound them too.
//!
//! The program is solved by `good_lp` with its bundled pure-Rust simplex (`microlp`).

use std::collections::BTreeMap;

use anyhow::Context;
use good_lp::{microlp, variable, Expression, ProblemVariables, Solution, SolverModel, Variable};

use crate::scenario::Scenario;
use crate::trace::Trace;

/// Most variables the program may have: beyond it the simplex takes minutes, and a coarser
/// slot (or fewer days) is the answer.
pub const VARIABLES_MAX: usize = 400_000;

/// How the program is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundOptions {
    pub slot_minutes: u32,
    /// Time after each block end counted as capacity too (zero for policies that keep shifts).
    pub overtime_s: i64,
}

/// The optimum and the size of the program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub items: u32,
    /// Items no policy can finish on time: longer than their coverage.
    pub uncoverable: u32,
    /// Items (fractionally) finished on time at the optimum.
    pub on_time: f64,
    pub pools: usize,
    pub buckets: usize,
    pub variables: usize,
    pub constraints: usize,
}

impl Bound {
    pub fn attainment(&self) -> f64 {
        match self.items {
            0 => 1.0,
            n => (self.on_time / f64::from(n)).min(1.0),
        }
    }
}

/// Builds and solves the program for a trace.
pub fn solve(scenario: &Scenario, trace: &Trace, options: BoundOptions) -> anyhow::Result<Bound> {
    let slot_s = i64::from(options.slot_minutes) * 60;
    anyhow::ensure!(slot_s > 0, "slot_minutes must be positive");
    let n_slots = (trace.end_s / slot_s + 1) as usize;

    // Pools: workers by eligibility mask over lines.
    let n_lines = scenario.lines.len();
    let mut pool_of_mask: BTreeMap<u32, usize> = BTreeMap::new();
    let mut capacity: Vec<Vec<f64>> = Vec::new();
    for worker in &trace.workers {
        let mask = (0..n_lines)
            .filter(|&l| scenario.eligible(worker.team, l))
            .fold(0u32, |m, l| m | (1 << l));
        if mask == 0 {
            continue;
        }
        let next = pool_of_mask.len();
        let pool = *pool_of_mask.entry(mask).or_insert(next);
        if pool == capacity.len() {
            capacity.push(vec![0.0; n_slots]);
        }
        let units = f64::from(scenario.teams[worker.team].capacity);
        for (a, b) in merged(&worker.blocks, options.overtime_s) {
            let (a, b) = (a.max(0), b.min(trace.end_s));
            if b <= a {
                continue;
            }
            for slot in (a / slot_s)..=((b - 1) / slot_s) {
                let from = a.max(slot * slot_s);
                let to = b.min((slot + 1) * slot_s);
                capacity[pool][slot as usize] += units * (to - from) as f64 / 60.0;
            }
        }
    }
    let masks: Vec<u32> = {
        let mut m = vec![0; pool_of_mask.len()];
        for (mask, pool) in &pool_of_mask {
            m[*pool] = *mask;
        }
        m
    };
    let line_pools: Vec<Vec<usize>> = (0..n_lines)
        .map(|l| {
            (0..masks.len())
                .filter(|&p| masks[p] & (1 << l) != 0)
                .collect()
        })
        .collect();

    // Per line, the times when at least one eligible worker is on shift.
    let covered: Vec<Vec<(i64, i64)>> = (0..n_lines)
        .map(|l| {
            let mut blocks: Vec<(i64, i64)> = trace
                .workers
                .iter()
                .filter(|w| scenario.eligible(w.team, l))
                .flat_map(|w| w.blocks.iter().copied())
                .collect();
            blocks.sort_unstable();
            merged(&blocks, options.overtime_s)
        })
        .collect();
    // Buckets: (eligible pools, arrival slot, due slot) -> items. Items longer than their
    // coverage count zero and take no part.
    let mut uncoverable = 0u32;
    let mut buckets: BTreeMap<(Vec<usize>, i64, i64), Vec<usize>> = BTreeMap::new();
    for (idx, item) in trace.items.iter().enumerate() {
        let coverage: i64 = covered[usize::from(item.line)]
            .iter()
            .map(|&(a, b)| (b.min(item.due_s) - a.max(item.arrival_s)).max(0))
            .sum();
        if item.handling_s > coverage {
            uncoverable += 1;
            continue;
        }
        let a = item.arrival_s / slot_s;
        let d = ((item.due_s - 1) / slot_s).min(n_slots as i64 - 1);
        let pools = line_pools[usize::from(item.line)].clone();
        buckets.entry((pools, a, d)).or_default().push(idx);
    }

    let mut vars = ProblemVariables::new();
    let mut objective = Expression::with_capacity(trace.items.len());
    let mut n_variables = 0usize;
    let mut per_pool_slot: BTreeMap<(usize, usize), Vec<Variable>> = BTreeMap::new();
    let mut demand: Vec<Expression> = Vec::new();
    for ((pools, a, d), items) in &buckets {
        let mut work = Expression::with_capacity(items.len() + pools.len() * 4);
        let mut n_x = 0usize;
        for &pool in pools {
            for slot in *a..=*d {
                let slot = slot as usize;
                if capacity[pool][slot] <= 0.0 {
                    continue;
                }
                let x = vars.add(variable().min(0.0));
                n_variables += 1;
                work.add_mul(1.0, x);
                n_x += 1;
                per_pool_slot.entry((pool, slot)).or_default().push(x);
            }
        }
        if n_x == 0 {
            continue; // nobody can work on these items in time: they count zero
        }
        for &idx in items {
            let z = vars.add(variable().min(0.0).max(1.0));
            n_variables += 1;
            objective.add_mul(1.0, z);
            work.add_mul(-(trace.items[idx].handling_s as f64) / 60.0, z);
        }
        demand.push(work);
        anyhow::ensure!(
            n_variables <= VARIABLES_MAX,
            "the bound would need more than {VARIABLES_MAX} variables: use a coarser slot"
        );
    }
    let n_buckets = demand.len();
    let mut model = vars.maximise(objective.clone()).using(microlp);
    let mut n_constraints = 0usize;
    for work in demand {
        model = model.with(work.geq(0.0));
        n_constraints += 1;
    }
    for ((pool, slot), xs) in &per_pool_slot {
        let mut used = Expression::with_capacity(xs.len());
        for x in xs {
            used.add_mul(1.0, *x);
        }
        model = model.with(used.leq(capacity[*pool][*slot]));
        n_constraints += 1;
    }
    let on_time = match n_buckets {
        0 => 0.0,
        _ => {
            let solution = model.solve().context("the bound's linear program failed")?;
            solution.eval(&objective)
        }
    };
    Ok(Bound {
        items: trace.items.len() as u32,
        uncoverable,
        on_time,
        pools: masks.len(),
        buckets: n_buckets,
        variables: n_variables,
        constraints: n_constraints,
    })
}

/// A worker's blocks, each extended by `extend_s`, with overlaps merged.
fn merged(blocks: &[(i64, i64)], extend_s: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(blocks.len());
    for &(a, b) in blocks {
        let b = b + extend_s;
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}
