//! HTTP tests of the server, without a socket: requests go through `router(state)` with
//! `tower::ServiceExt::oneshot`, against a fresh SQLite database per test.

mod sla;
