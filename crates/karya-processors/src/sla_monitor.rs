//! The SLA monitor, run by the leader only: looks ahead at every item whose clock runs and
//! warns, once per item and milestone, when the warning threshold is crossed, the milestone is
//! breached, or the queue in front of the item predicts a breach.
//!
//! Each unit handles one page of items ([`karya_store::WATCH_PAGE_MAX`]): *load* the items
//! evaluated at `now` with their queue, *decide* with [`karya_core::sla::predict`] and
//! [`warnings_due`], *apply* each warning with its event (the store refuses a second one for
//! the same milestone, so two nodes leading at once for a moment still warn once).
//!
//! The router reads the same SLA state for its urgency term: a ready task carries its work
//! item's resolution due time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use karya_core::id::WorkItemId;
use karya_core::sla::{predict, Prediction, SlaStatus};
use karya_store::{Store, WATCH_PAGE_MAX};
use serde_json::json;

use crate::supervisor::{Step, Worker};

/// Pause after a full pass over the open items: SLA targets are minutes to days, so a pass
/// every half minute notices a crossing well before it matters.
pub const SLA_INTERVAL: Duration = Duration::from_secs(30);

/// A warning to give about one milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    /// `response` or `resolution`.
    pub milestone: &'static str,
    /// `breached`, `threshold` (the warning share of the target has elapsed) or
    /// `predicted_breach` (the queue ahead will make it late).
    pub reason: &'static str,
}

/// The warnings an item is due, given its status at `now`, the look-ahead at its resolution
/// and the milestones already warned about. A milestone met, or warned about before, gets
/// none.
pub fn warnings_due(
    status: &SlaStatus,
    prediction: Option<&Prediction>,
    warned: &[String],
) -> Vec<Warning> {
    let mut due = Vec::new();
    for (milestone, state, predicted_late) in [
        ("response", &status.response, false),
        (
            "resolution",
            &status.resolution,
            prediction.is_some_and(|p| p.at_risk),
        ),
    ] {
        if state.met_at.is_some() || warned.iter().any(|w| w == milestone) {
            continue;
        }
        let reason = match (state.breached, state.warned, predicted_late) {
            (true, _, _) => "breached",
            (false, true, _) => "threshold",
            (false, false, true) => "predicted_breach",
            (false, false, false) => continue,
        };
        due.push(Warning { milestone, reason });
    }
    due
}

/// The monitor loop.
pub struct SlaMonitor {
    store: Store,
    leading: Arc<AtomicBool>,
    /// Where the pass over open items stands.
    after: Option<WorkItemId>,
}

impl SlaMonitor {
    pub fn new(store: Store, leading: Arc<AtomicBool>) -> SlaMonitor {
        SlaMonitor {
            store,
            leading,
            after: None,
        }
    }
}

impl Worker for SlaMonitor {
    fn name(&self) -> &'static str {
        "sla_monitor"
    }

    fn idle_interval(&self) -> Duration {
        SLA_INTERVAL
    }

    async fn work(&mut self) -> anyhow::Result<Step> {
        if !self.leading.load(Ordering::SeqCst) {
            self.after = None;
            return Ok(Step::Idle);
        }
        let now = Timestamp::now();
        let items = self.store.sla_watch(self.after, now).await?;
        for item in &items {
            let prediction = predict(&item.calendar, &item.status, &item.queue, now)
                .map_err(|err| anyhow::anyhow!("sla prediction failed: {err}"))?;
            for warning in warnings_due(&item.status, prediction.as_ref(), &item.warned) {
                let milestone = match warning.milestone {
                    "response" => &item.status.response,
                    _ => &item.status.resolution,
                };
                let detail = json!({
                    "due_at": milestone.due_at.map(|t| t.to_string()),
                    "elapsed_s": milestone.elapsed.as_secs(),
                    "target_s": milestone.target.as_secs(),
                    "projected_finish": prediction.map(|p| p.projected_finish.to_string()),
                    "slack_s": prediction.map(|p| p.slack.as_secs()),
                    "items_ahead": item.queue.items_ahead,
                });
                let tenant = self.store.tenant(item.client_id);
                if tenant
                    .record_sla_warning(
                        item.work_item_id,
                        warning.milestone,
                        warning.reason,
                        &detail,
                        now,
                    )
                    .await?
                {
                    tracing::info!(
                        work_item_id = %item.work_item_id,
                        milestone = warning.milestone,
                        reason = warning.reason,
                        "sla warning"
                    );
                }
            }
        }
        self.after = items.last().map(|item| item.work_item_id);
        Ok(match items.len() as i64 >= WATCH_PAGE_MAX {
            true => Step::Busy,
            false => {
                self.after = None;
                Step::Idle
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use karya_core::sla::{ClockState, Milestone};

    use super::*;

    fn t(text: &str) -> Timestamp {
        format!("2026-11-04T{text}:00Z").parse().unwrap()
    }

    fn milestone(elapsed_h: i64, target_h: i64, warned: bool, met: bool) -> Milestone {
        Milestone {
            target: SignedDuration::from_hours(target_h),
            elapsed: SignedDuration::from_hours(elapsed_h),
            due_at: Some(t("18:00")),
            warn_at: Some(t("15:00")),
            met_at: met.then(|| t("10:00")),
            breached: elapsed_h > target_h,
            warned,
        }
    }

    fn status(response: Milestone, resolution: Milestone) -> SlaStatus {
        SlaStatus {
            state: ClockState::Running,
            started_at: t("09:00"),
            response,
            resolution,
        }
    }

    fn prediction(at_risk: bool) -> Prediction {
        Prediction {
            projected_finish: t("19:00"),
            slack: SignedDuration::from_hours(if at_risk { -1 } else { 3 }),
            at_risk,
            urgency_permille: 1000,
        }
    }

    fn check(status: SlaStatus, prediction: Option<Prediction>, warned: &[&str], expect: &[&str]) {
        let warned: Vec<String> = warned.iter().map(|w| w.to_string()).collect();
        let got: Vec<String> = warnings_due(&status, prediction.as_ref(), &warned)
            .iter()
            .map(|w| format!("{} {}", w.milestone, w.reason))
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn warnings_follow_threshold_breach_and_prediction_once_each() {
        let fresh = || milestone(1, 8, false, false);
        let met = || milestone(1, 8, false, true);
        // Plenty of time, nothing predicted: no warning.
        check(status(met(), fresh()), Some(prediction(false)), &[], &[]);
        // The queue ahead predicts a breach before any threshold is crossed.
        check(
            status(met(), fresh()),
            Some(prediction(true)),
            &[],
            &["resolution predicted_breach"],
        );
        // Threshold crossed on both milestones.
        check(
            status(milestone(2, 2, true, false), milestone(7, 8, true, false)),
            None,
            &[],
            &["response threshold", "resolution threshold"],
        );
        // Breached wins over threshold; a milestone already warned about stays quiet.
        check(
            status(milestone(3, 2, true, false), milestone(9, 8, true, false)),
            Some(prediction(true)),
            &["resolution"],
            &["response breached"],
        );
        // A met milestone is never warned about, whatever else holds.
        check(
            status(milestone(3, 2, true, true), milestone(9, 8, true, true)),
            Some(prediction(true)),
            &[],
            &[],
        );
    }
}
