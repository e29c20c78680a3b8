//! karya's background work: everything that runs on its own rather than in answer to a
//! request.
//!
//! Each kind of work implements one small trait, [`Worker`]: `work()` does one bounded unit
//! and says whether more is waiting (`Busy`), nothing is (`Idle`) or the worker has finished
//! (`Done`). One [`Supervisor`] runs them all and owns what they have in common: retry with
//! backoff after a failed unit, counters per worker, and stopping within a deadline.
//!
//! Processors and the server meet only through the store: the server writes rows (tasks,
//! presence, accepted offers) and the processors read and change them, each change
//! conditional on the state it read.
//!
//! # Layout
//! - [`supervisor`]: the trait, the supervisor and its counters.
//! - [`leader`]: holding leadership ([`karya_store::Leadership`]) and reporting it.
//! - [`router`]: the push-routing loop (leader only) and its pure decision, [`router::plan`].
//! - [`sla_monitor`]: breach prediction and warnings (leader only), decided by
//!   [`sla_monitor::warnings_due`].
//! - [`jobs`]: the processor job runner (every node): claims the processor steps' jobs, runs
//!   them through a [`ProcessorSet`], retries with backoff and hands a job that fails every
//!   attempt to a person.
//!
//! The shells read the clock; every decision function takes `now` as an argument.

pub mod jobs;
pub mod leader;
pub mod router;
pub mod sla_monitor;
pub mod supervisor;

pub use jobs::{JobOutcome, JobRunner, ProcessorSet};
pub use leader::LeaderWorker;
pub use router::RouterWorker;
pub use sla_monitor::SlaMonitor;
pub use supervisor::{
    backoff, ShutdownReport, Step, Supervisor, SupervisorOptions, Worker, WorkerCounts,
};
