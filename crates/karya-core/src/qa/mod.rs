//! Quality assurance: the rules that decide which finished work a second person checks, who
//! may check it, and what the checks say about a worker's and an engagement's accuracy.
//!
//! Every function here is pure. Randomness arrives as a `draw` in `[0, 1)`, evidence arrives as
//! counts the store keeps, and each decision comes back as a value with its reason, so the shell
//! can record it as an event and an auditor can recompute it.
//!
//! # Layout
//! - [`stats`]: the numerics (Beta posterior, Wilson interval, normal quantiles).
//! - [`duty`]: separation of duties between maker, reviewer and adjudicator.
//! - [`review`]: what a review may say, and where failed work goes for rework.
//! - [`sampling`]: adaptive sampling per (worker, engagement, step).
//! - [`consensus`]: double keying, field-level comparison, agreement and adjudication.
//! - [`gold`]: tasks with known answers, scored automatically, pausing a failing worker.
//! - [`accuracy`]: accuracy with a confidence interval, as an SLA term.

pub mod accuracy;
pub mod consensus;
pub mod duty;
pub mod gold;
pub mod review;
pub mod sampling;
pub mod stats;

/// The answer of one task as field name → value, compared field by field by consensus and gold
/// scoring. Values are text as the output form holds them; see [`consensus::normalize`].
pub type Fields = std::collections::BTreeMap<String, String>;
