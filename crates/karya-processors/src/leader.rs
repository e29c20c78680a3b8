//! Holding leadership: one worker per node tries to lead, keeps checking that it still does,
//! and reports it through a shared flag that the leader-only loops (and the health endpoint)
//! read. The lock itself is the store's ([`karya_store::Leadership`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use karya_store::{Leadership, Store};

use crate::supervisor::{Step, Worker};

/// How often a follower asks for leadership and a leader checks it still holds it: the bound
/// on how long a dead leader's work waits for a successor, once its session has closed.
pub const LEADER_INTERVAL: Duration = Duration::from_secs(1);

/// Tries to lead, and checks leadership while it lasts.
pub struct LeaderWorker {
    store: Store,
    held: Option<Leadership>,
    leading: Arc<AtomicBool>,
}

impl LeaderWorker {
    /// `leading` is set while this node leads.
    pub fn new(store: Store, leading: Arc<AtomicBool>) -> LeaderWorker {
        LeaderWorker {
            store,
            held: None,
            leading,
        }
    }
}

impl Worker for LeaderWorker {
    fn name(&self) -> &'static str {
        "leader"
    }

    fn idle_interval(&self) -> Duration {
        LEADER_INTERVAL
    }

    async fn work(&mut self) -> anyhow::Result<Step> {
        match self.held.as_mut() {
            Some(held) => {
                if let Err(err) = held.check().await {
                    self.held = None;
                    self.leading.store(false, Ordering::SeqCst);
                    tracing::warn!(error = %err, "leadership lost");
                    return Err(err.into());
                }
            }
            None => {
                if let Some(held) = self.store.try_lead().await? {
                    self.held = Some(held);
                    self.leading.store(true, Ordering::SeqCst);
                    tracing::info!("leading: this node runs the router and the timers");
                }
            }
        }
        Ok(Step::Idle)
    }

    async fn stop(self) {
        self.leading.store(false, Ordering::SeqCst);
        if let Some(held) = self.held {
            if let Err(err) = held.release().await {
                tracing::warn!(error = %err, "releasing leadership failed; it ends with the session");
            }
        }
    }
}
