//! karya's simulator: seeded, discrete-event workloads that drive the real `karya-core` rules
//! at full speed, with no IO, so that any outcome replays from its seed.
//!
//! # Layout
//! - [`rng`]: a small seeded generator (xoshiro256**), so runs do not depend on a crate's
//!   stream staying stable across versions.
//! - [`qa`]: workers with planted error rates, reviewed under adaptive or fixed-rate sampling.

pub mod qa;
pub mod rng;
