//! Decisions under client policy: the low-level business decisions workers take inside tasks,
//! checked against their authority and the client's policies, and undone when a higher-level
//! plan changes.
//!
//! - [`attr`]: the attribute values decisions and policies talk about (a JSON-like tree that is
//!   not JSON: the shell converts).
//! - [`policy`]: policies as CEL expressions in layers (firm → client → engagement → team), the
//!   tighten-only rule between layers, and evaluation with a readable trace.
//! - [`authority`]: decision types (payload, inverse, undo window) and authority limits by
//!   designation and qualification.
//! - [`ledger`]: what happens to a decision (in force, pending approval, blocked, undone,
//!   flagged), what a policy change does to past decisions, and replay of the whole log.

pub mod attr;
pub mod authority;
pub mod ledger;
pub mod policy;
