//! Qualification expiry: work that needed a qualification that has lapsed goes back to routing.
//!
//! A qualification stops counting at its `valid_until`. Each round of the router loop asks
//! [`Store::withdraw_lapsed`] for the open offers and the not-yet-started assignments whose
//! worker no longer holds a qualification the task requires, and whose lapsed record is the
//! reason: the offer is withdrawn, or the assignment released, and the task is `ready` again.
//! A qualification a task requires by name counts, and so does one its target expression asks
//! for (a pack step's "at least one of"): the target held with the lapsed record still valid and
//! fails without it.
//! Each change writes its task event (reason `qualification_expired`, naming the qualification)
//! in the same transaction. Started work is left with the worker: taking it away midway would
//! waste it, and a lead decides.

use std::collections::HashMap;

use jiff::Timestamp;
use karya_core::id::{ClientId, EngagementId, OfferId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::routing::{rules::eval_target, Expr, OpenTask};
use karya_core::workforce::{Qualification, WorkerProfile};
use serde_json::json;

use crate::offers::{move_task, release_to_routing};
use crate::routing::{requirements_shared, TASK_REQUIREMENTS, TASK_ROUTING_JOINS};
use crate::rows::{get, parse, timestamp, us};
use crate::work::priority_of;
use crate::{Result, Store};

/// Most offers and most assignments one call withdraws: one transaction stays short, and the
/// next round takes the rest.
pub const LAPSE_BATCH_MAX: i64 = 200;

/// What was taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LapsedWork {
    Offer(OfferId),
    Assignment,
}

/// A task taken back from a worker whose qualification lapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapsed {
    pub client_id: ClientId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub work: LapsedWork,
    /// The kind of the lapsed qualification the task required.
    pub qualification: String,
}

/// Workers with a lapsed qualification, as a condition on a worker id column.
const LAPSED_WORKERS: &str = "SELECT worker_id FROM worker_qualifications
     WHERE valid_until_us IS NOT NULL AND valid_until_us <= $1";

/// The required kind a worker no longer holds because its record lapsed, if any.
fn lapsed_kind(held: &[Qualification], required: &[String], now: Timestamp) -> Option<String> {
    required
        .iter()
        .find(|kind| {
            let of_kind = || held.iter().filter(|q| &q.kind == *kind);
            !of_kind().any(|q| q.is_valid_at(now))
                && of_kind().any(|q| q.valid_until.is_some_and(|until| until <= now))
        })
        .cloned()
}

/// The kinds of which the worker holds a lapsed record and no valid one at `now`.
fn unrenewed(held: &[Qualification], now: Timestamp) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for q in held {
        let of_kind = || held.iter().filter(|o| o.kind == q.kind);
        if q.valid_until.is_some_and(|until| until <= now)
            && !of_kind().any(|o| o.is_valid_at(now))
            && !kinds.contains(&q.kind.as_str())
        {
            kinds.push(&q.kind);
        }
    }
    kinds
}

/// The lapsed qualification that made `target` fail for the worker: the target holds with
/// that lapsed record counted as valid, and fails at `now` without it. `None` when no lapse is
/// the reason (the target fails anyway, holds still, or cannot be evaluated).
fn lapsed_for_target(
    worker: &WorkerProfile,
    task: &OpenTask,
    target: &Expr,
    now: Timestamp,
) -> Option<String> {
    if eval_target(target, worker, task, now) != Ok(false) {
        return None;
    }
    unrenewed(&worker.qualifications, now)
        .into_iter()
        .find_map(|kind| {
            let mut restored = worker.clone();
            for q in restored
                .qualifications
                .iter_mut()
                .filter(|q| q.kind == kind)
            {
                q.valid_until = None;
            }
            (eval_target(target, &restored, task, now) == Ok(true)).then(|| kind.to_string())
        })
}

impl Store {
    /// Withdraws the offers and releases the not-yet-started assignments that needed a
    /// qualification which has lapsed by `now` (at most [`LAPSE_BATCH_MAX`] of each), sending
    /// their tasks back to routing. Returns what was taken back.
    pub async fn withdraw_lapsed(&self, now: Timestamp) -> Result<Vec<Lapsed>> {
        let mut tx = crate::tx::Tx::begin(self).await?;
        let offers = sqlx::query(&format!(
            "SELECT o.id, o.client_id, o.task_id, o.worker_id, t.step, t.priority, w.engagement_id,
                    {TASK_REQUIREMENTS} AS requirements FROM offers o
             JOIN tasks t ON t.id = o.task_id
             {TASK_ROUTING_JOINS}
             WHERE o.outcome IS NULL AND o.worker_id IN ({LAPSED_WORKERS})
               AND {TASK_REQUIREMENTS} IS NOT NULL
             ORDER BY o.offered_at_us, o.id LIMIT $2"
        ))
        .bind(us(now))
        .bind(LAPSE_BATCH_MAX)
        .fetch_all(&mut *tx)
        .await?;
        let held = sqlx::query(&format!(
            "SELECT a.client_id, a.task_id, a.worker_id, t.step, t.priority, w.engagement_id,
                    {TASK_REQUIREMENTS} AS requirements FROM assignments a
             JOIN tasks t ON t.id = a.task_id
             {TASK_ROUTING_JOINS}
             WHERE a.released_at_us IS NULL AND t.state = 'assigned'
               AND {TASK_REQUIREMENTS} IS NOT NULL
               AND a.worker_id IN ({LAPSED_WORKERS})
             ORDER BY a.assigned_at_us, a.id LIMIT $2"
        ))
        .bind(us(now))
        .bind(LAPSE_BATCH_MAX)
        .fetch_all(&mut *tx)
        .await?;
        if offers.is_empty() && held.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut qualifications: HashMap<WorkerId, Vec<Qualification>> = HashMap::new();
        for row in offers.iter().chain(held.iter()) {
            let worker_id: WorkerId = parse(row, "worker_id")?;
            if qualifications.contains_key(&worker_id) {
                continue;
            }
            let rows = sqlx::query(
                "SELECT kind, field, issuer, valid_from_us, valid_until_us FROM worker_qualifications
                 WHERE worker_id = $1",
            )
            .bind(worker_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
            let mut list = Vec::with_capacity(rows.len());
            for q in &rows {
                let until: Option<i64> = get(q, "valid_until_us")?;
                list.push(Qualification {
                    kind: get(q, "kind")?,
                    field: get(q, "field")?,
                    issuer: get(q, "issuer")?,
                    valid_from: timestamp(q, "valid_from_us")?,
                    valid_until: until.and_then(|u| Timestamp::from_microsecond(u).ok()),
                });
            }
            qualifications.insert(worker_id, list);
        }
        // Workers whose work has a target expression are evaluated as routing sees them:
        // their profile, with the qualifications read above.
        let mut profiles: HashMap<WorkerId, WorkerProfile> = HashMap::new();
        let mut engagements: Vec<EngagementId> = Vec::new();
        for row in offers.iter().chain(held.iter()) {
            let text: String = get(row, "requirements")?;
            if requirements_shared(&text)?.target.is_none() {
                continue;
            }
            let worker_id: WorkerId = parse(row, "worker_id")?;
            // Most of these workers renewed what lapsed: nothing to evaluate for them.
            if unrenewed(&qualifications[&worker_id], now).is_empty() {
                continue;
            }
            engagements.push(parse(row, "engagement_id")?);
            if profiles.contains_key(&worker_id) {
                continue;
            }
            let mut profile = self.routed_worker(worker_id).await?.profile;
            profile.qualifications = qualifications[&worker_id].clone();
            profiles.insert(worker_id, profile);
        }
        engagements.sort_unstable_by_key(|id| id.to_string());
        engagements.dedup();
        let lines = match engagements.is_empty() {
            true => HashMap::new(),
            false => self.engagement_lines(&engagements).await?,
        };
        let lapsed_of = |row: &sqlx::any::AnyRow| -> Result<Option<String>> {
            let worker_id: WorkerId = parse(row, "worker_id")?;
            let text: String = get(row, "requirements")?;
            let requirements = requirements_shared(&text)?;
            if let Some(kind) = lapsed_kind(
                &qualifications[&worker_id],
                &requirements.qualifications,
                now,
            ) {
                return Ok(Some(kind));
            }
            let (Some(target), Some(profile)) = (&requirements.target, profiles.get(&worker_id))
            else {
                return Ok(None);
            };
            let engagement_id: EngagementId = parse(row, "engagement_id")?;
            let task = OpenTask {
                id: parse(row, "task_id")?,
                client_id: parse(row, "client_id")?,
                engagement_id,
                priority: priority_of(row)?,
                created_at: now,
                due_at: None,
                requirements: requirements.clone(),
                preferred_worker: None,
                excluded_workers: Vec::new(),
                attributes: Vec::new(),
                step: get(row, "step")?,
                service_line: lines.get(&engagement_id).copied(),
            };
            Ok(lapsed_for_target(profile, &task, target, now))
        };
        let mut taken = Vec::new();
        for row in &offers {
            let Some(kind) = lapsed_of(row)? else {
                continue;
            };
            let offer_id: OfferId = parse(row, "id")?;
            let (client_id, task_id, worker_id) = (
                parse::<ClientId>(row, "client_id")?,
                parse::<TaskId>(row, "task_id")?,
                parse::<WorkerId>(row, "worker_id")?,
            );
            let ended = sqlx::query(
                "UPDATE offers SET outcome = 'withdrawn', ended_at_us = $1 WHERE id = $2 AND outcome IS NULL",
            )
            .bind(us(now))
            .bind(offer_id.to_string())
            .execute(&mut *tx)
            .await?;
            if ended.rows_affected() != 1 {
                continue;
            }
            let moved = move_task(
                &mut tx,
                client_id,
                task_id,
                TaskState::Offered,
                TaskState::Ready,
                json!({"offer_id": offer_id.to_string(), "worker_id": worker_id.to_string(),
                       "reason": "qualification_expired", "qualification": kind}),
                now,
            )
            .await?;
            debug_assert!(moved, "an open offer's task is offered");
            taken.push(Lapsed {
                client_id,
                task_id,
                worker_id,
                work: LapsedWork::Offer(offer_id),
                qualification: kind,
            });
        }
        for row in &held {
            let Some(kind) = lapsed_of(row)? else {
                continue;
            };
            let (client_id, task_id, worker_id) = (
                parse::<ClientId>(row, "client_id")?,
                parse::<TaskId>(row, "task_id")?,
                parse::<WorkerId>(row, "worker_id")?,
            );
            let detail = json!({"worker_id": worker_id.to_string(),
                                "reason": "qualification_expired", "qualification": kind});
            if !release_to_routing(
                &mut tx,
                client_id,
                task_id,
                TaskState::Assigned,
                detail,
                now,
            )
            .await?
            {
                continue;
            }
            taken.push(Lapsed {
                client_id,
                task_id,
                worker_id,
                work: LapsedWork::Assignment,
                qualification: kind,
            });
        }
        tx.commit().await?;
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(kind: &str, until: Option<&str>) -> Qualification {
        Qualification {
            kind: kind.into(),
            field: None,
            issuer: "board".into(),
            valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
            valid_until: until.map(|u| u.parse().unwrap()),
        }
    }

    /// `(held, required, expected lapsed kind)` at 2026-06-01.
    fn check(held: &[Qualification], required: &[&str], expect: Option<&str>) {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        assert_eq!(lapsed_kind(held, &required, now).as_deref(), expect);
    }

    #[test]
    fn only_a_lapsed_record_of_a_required_kind_takes_work_back() {
        let lapsed = q("cpa", Some("2026-05-01T00:00:00Z"));
        let renewed = q("cpa", Some("2027-05-01T00:00:00Z"));
        check(std::slice::from_ref(&lapsed), &["cpa"], Some("cpa"));
        check(&[lapsed.clone(), renewed], &["cpa"], None);
        check(std::slice::from_ref(&lapsed), &["llb"], None);
        check(&[lapsed, q("llb", None)], &["llb", "cpa"], Some("cpa"));
        check(
            &[q("cpa", Some("2026-06-01T00:00:00Z"))],
            &["cpa"],
            Some("cpa"),
        );
    }
}
