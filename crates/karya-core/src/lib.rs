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
//! - [`pack`]: the definition of a service line's work: steps, forms, SLA, QA, decisions.

pub mod chain;
pub mod event;
pub mod id;
pub mod lifecycle;
pub mod model;
pub mod money;
pub mod pack;
pub mod service_line;

pub use jiff::Timestamp;
