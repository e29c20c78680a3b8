//! The demo firm: a KPO/BPO firm described as plain data, drawn from a seed, for `karya demo`
//! to write into a database and drive through the real engine.
//!
//! The firm has four delivery sites (Bengaluru, Pune and Gurugram in India, and Manila
//! offshore), eight clients in the US, the UK, Germany and India whose engagements cover all 25
//! service lines, and about 150 workers. Each worker belongs to one or two service lines and
//! holds what those lines' packs ask of their human steps: a qualification from each step's
//! list, every skill at or above its level, the languages. Shifts cover the clients' business
//! hours (Indian night shifts and the Manila night shift for US clients, an afternoon shift for
//! UK and German clients). Absences and site holidays take workers off some days.
//!
//! Nothing here does IO: time zones arrive resolved, packs arrive parsed, and every draw comes
//! from [`Rng`], so a seed gives the same firm and the same arrivals. Writing the firm into a
//! store and running it is the binary's job.
//!
//! - [`firm`]: sites, clients and their engagements, workers with their rosters.
//! - [`arrivals`]: work items arriving per engagement with daily peaks in the client's hours.
//! - [`names`]: the pools plausible names are drawn from.

pub mod arrivals;
pub mod firm;
pub mod names;

pub use arrivals::{arrivals, handling_minutes, Arrival};
pub use firm::{firm, DemoClient, DemoFirm, DemoSite, DemoWorker, Engagement, ShiftKind};
