//! karya's domain: the vocabulary of a KPO/BPO firm as types, and the rules that govern them.
//!
//! This crate decides; it never acts. It has no IO, no async, no clock and no environment:
//! time, randomness and new ids come in as arguments, and results go out as values that the
//! store and the server carry out. That keeps every rule deterministic and testable in
//! isolation, and lets the simulator drive the real rules at full speed.
//!
//! # Layout
//! - [`id`]: newtype ids, one per entity, parsed at the edge.
//! - [`money`]: amounts as integer minor units with an ISO 4217 currency.
//! - [`service_line`]: the 25 kinds of work a firm offers (13 KPO, 12 BPO).
//! - [`model`]: the entities (sites, clients, engagements, work items, tasks, workers, ...).
//! - [`lifecycle`]: the state machines of work items and tasks, each a single transition table.
//! - [`chain`]: the per-client hash chain that makes the event log tamper-evident.
//! - [`event`]: the kinds of event every state change is recorded as.
//! - [`decision`]: decisions under client policy: authority, policy layers, undo.
//! - [`qa`]: quality assurance: separation of duties, adaptive sampling, consensus, gold tasks, accuracy.
//! - [`calendar`]: business calendars and arithmetic in business time.
//! - [`sla`]: SLA terms and clocks derived from a work item's events; breach prediction.
//! - [`billing`]: pricing, SLA credits with their evidence, invoices.
//! - [`metrics`]: performance criteria (on-time %, percentiles, backlog, AHT, yield).
//! - [`workforce`]: qualifications, skills, shifts, capacity and presence of workers.
//! - [`routing`]: the routing engine: eligibility, scoring, offers, *Get next*, explanations.
//! - [`pack`]: the definition of a service line's work: steps, forms, SLA, QA, decisions.
//! - [`webhook`]: signing, filtering, retry schedule and address rules of event deliveries.

pub mod billing;
pub mod calendar;
pub mod chain;
pub mod decision;
pub mod event;
pub mod flow;
pub mod id;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod money;
pub mod pack;
pub mod qa;
pub mod routing;
pub mod service_line;
pub mod sla;
pub mod webhook;
pub mod workforce;

pub use jiff::Timestamp;
