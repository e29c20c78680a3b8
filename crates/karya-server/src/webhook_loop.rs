//! The background loop that delivers webhooks while the server runs.
//!
//! It only paces [`deliver_due`]: a round every [`TICK`], or at once after a round that found
//! work, until `shutdown` completes. A round in progress is finished, not cut (it is bounded by
//! the request timeout), so no claim is left to wait out its lease after a clean stop. The
//! clock and the randomness of retry jitter are read here, the shell, and passed inward.

use std::future::Future;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use karya_store::Store;

use crate::webhook_delivery::{deliver_due, WebhookClient};

/// Pause between rounds when there is nothing to send: deliveries start within a second of
/// their event, and an idle server asks the database once a second.
pub const TICK: Duration = Duration::from_secs(1);
/// Endpoints served per round: enough to keep many receivers busy, few enough that one round's
/// requests (each bounded by the request timeout) stay a small burst.
pub const ENDPOINTS_PER_ROUND: usize = 16;

/// Delivers webhooks until `shutdown` completes.
pub async fn run(store: Store, client: WebhookClient, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
        let mut rng = || OsRng.next_u64();
        let round = deliver_due(
            &store,
            &client,
            jiff::Timestamp::now(),
            &mut rng,
            ENDPOINTS_PER_ROUND,
        )
        .await;
        pause = match round {
            Ok(report) if report.busy() => Duration::ZERO,
            Ok(_) => TICK,
            Err(err) => {
                tracing::warn!(error = %err, "webhook delivery round failed");
                TICK
            }
        };
    }
    tracing::info!("webhook delivery stopped");
}
