//! karya's simulator: seeded, discrete-event workloads that drive the real `karya-core` rules
//! at full speed, with no IO, so that any outcome replays from its seed.
//!
//! # Layout
//! - [`rng`]: a small seeded generator (xoshiro256**), so runs do not depend on a crate's
//!   stream staying stable across versions.
//! - [`qa`]: workers with planted error rates, reviewed under adaptive or fixed-rate sampling.
//! - [`scenario`]: a firm described in TOML (sites, calendars, shifts, teams, service lines,
//!   arrivals), validated at load.
//! - [`trace`]: the arrivals and roster of one run, drawn from a seed.
//! - [`firm`]: the run itself under a routing policy (FIFO, static priority and skills, or
//!   the core's router), and what it measured.
//! - [`bound`]: the offline upper bound on SLA attainment for a trace, a linear program.
//! - [`chart`]: an SVG chart of attainment against load.
//! - [`demo`]: the firm `karya demo` builds (sites, clients, workers, arrivals), from a seed.

pub mod bound;
pub mod chart;
pub mod demo;
pub mod firm;
pub mod qa;
pub mod rng;
pub mod scenario;
pub mod trace;
