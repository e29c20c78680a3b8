//! Reassigning a task (a lead acting on the SLA risk list): to the best eligible worker now, or
//! to a worker the lead names, with the reason recorded in the task's trail.
//!
//! The three beats: *load* the task with its engagement's requirements and SLA due time, and
//! the available workers with their load; *decide* with `karya-core`'s eligibility and scoring
//! (the rules the router uses), best score first; *apply* through the store's one reassignment
//! transaction, which takes the task from its holder (or withdraws its offer), checks the QA
//! bars, assigns it and records who, why and by which rule.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::post;
use jiff::{SignedDuration, Timestamp};
use karya_core::id::{AssignmentId, ClientId, TaskId, WorkerId};
use karya_core::model::Task;
use karya_core::routing::{
    eligibility, score, Candidate, Ineligible, OpenTask, Requirements, RoutingConfig,
    RoutingWorkflow, WorkerLoad,
};
use karya_store::{Reassigned, Reassignment, StoreError, Tenant, REASSIGN_REASON_LEN_MAX};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Caller, Json, Path};
use crate::{check_text, ApiResult, AppState};

/// Expected handling of a task whose engagement sets no routing (as the router assumes).
const DEFAULT_HANDLING: SignedDuration = SignedDuration::from_mins(30);

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/clients/{client_id}/tasks/{task_id}/reassignment",
        post(reassign),
        &[(Method::POST, Access::tenant(auth::STAFF, auth::NOBODY))],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReassignDto {
    /// The worker to give the task to; absent: the best eligible worker now.
    #[serde(default)]
    worker_id: Option<String>,
    reason: String,
}

/// An available worker as a candidate for one task.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub worker_id: WorkerId,
    pub name: String,
    /// The score when eligible, else the first rule that turned the worker away.
    pub fit: Result<i64, Ineligible>,
    pub units_used: u32,
    pub units_max: u32,
}

/// The available workers for a task, eligible ones best score first, then the others with
/// the reason; the task's current holder is left out.
pub async fn rank_candidates(
    state: &AppState,
    tenant: &Tenant,
    task: &Task,
) -> ApiResult<Vec<Ranked>> {
    let now = state.now();
    let item = tenant.work_item(task.work_item_id).await?;
    let (requirements, workflow) = match tenant.engagement_routing(item.engagement_id).await? {
        Some((req, flow)) => (Arc::new(req), flow),
        None => (
            Arc::new(Requirements::any("default", 1, DEFAULT_HANDLING)),
            RoutingWorkflow::standard(),
        ),
    };
    let (step_idx, _) = workflow.step_at(now.duration_since(task.created_at));
    // An escalated task is the lead's to place: the last routing step before escalation holds.
    let step = workflow.steps[..=step_idx]
        .iter()
        .rev()
        .find(|s| !s.escalate)
        .unwrap_or(&workflow.steps[0]);
    let due_at = tenant
        .sla_state(item.id)
        .await?
        .and_then(|sla| sla.resolution.due_at);
    let holder = state.store.active_assignee(task.id).await?;
    let open = OpenTask {
        id: task.id,
        client_id: task.client_id,
        engagement_id: item.engagement_id,
        priority: task.priority,
        created_at: task.created_at,
        due_at,
        requirements,
        preferred_worker: None,
        excluded_workers: Vec::new(),
        attributes: Vec::new(),
        step: task.step.clone(),
        service_line: Some(tenant.engagement(item.engagement_id).await?.service_line),
    };
    let config = RoutingConfig::default();
    let roll = (state.new_id().as_u128() % 1000) as u16;
    let mut ranked = Vec::new();
    for worker_id in state.store.available_workers().await? {
        if Some(worker_id) == holder {
            continue;
        }
        let routed = match state.store.routed_worker(worker_id).await {
            Ok(routed) => routed,
            Err(StoreError::NotFound { .. }) => continue,
            Err(err) => return Err(err.into()),
        };
        let worker = state.store.worker(worker_id).await?;
        let (units_used, channel_units) = state.store.worker_units(worker_id).await?;
        let load = WorkerLoad {
            presence: routed.presence,
            units_used,
            channel_units,
            last_assigned_at: None,
            working_since: Some(routed.presence_since.min(now)),
        };
        let candidate = Candidate {
            profile: &routed.profile,
            load: &load,
            shift: routed.profile.shift.window_at(now),
        };
        let barred = !state
            .store
            .barred_tasks(worker_id, &[task.id])
            .await?
            .is_empty();
        let fit = match barred {
            true => Err(Ineligible::WorkerExcluded),
            false => eligibility(candidate, &open, step, now, &config, roll)
                .map(|fit| score(&routed.profile, &load, &open, step, fit, now).total),
        };
        ranked.push(Ranked {
            worker_id,
            name: worker.name,
            fit,
            units_used,
            units_max: routed.profile.capacity.units_max,
        });
    }
    ranked.sort_by_key(|r| match r.fit {
        Ok(total) => (0, -total, r.name.clone()),
        Err(reason) => (1, reason as i64, r.name.clone()),
    });
    Ok(ranked)
}

/// What a lead asked for, checked.
pub struct Request {
    pub worker_id: Option<WorkerId>,
    pub reason: String,
}

/// Carries out a reassignment: the named worker, or the best eligible one.
pub async fn carry_out(
    state: &AppState,
    tenant: &Tenant,
    task_id: TaskId,
    request: &Request,
    by: uuid::Uuid,
    now: Timestamp,
) -> ApiResult<(Reassigned, &'static str)> {
    let task = tenant.task(task_id).await?;
    let (to, rule) = match request.worker_id {
        Some(worker_id) => {
            // An unknown worker is a bad request, not a missing task.
            state
                .store
                .worker(worker_id)
                .await
                .map_err(|err| match err {
                    StoreError::NotFound { .. } => {
                        ApiError::invalid(format!("worker {worker_id} does not exist"))
                    }
                    other => other.into(),
                })?;
            (worker_id, "named")
        }
        None => {
            let ranked = rank_candidates(state, tenant, &task).await?;
            let best = ranked.iter().find(|r| r.fit.is_ok()).ok_or_else(|| {
                ApiError::from(StoreError::Rejected {
                    message: "no available worker is eligible for this task now; name one".into(),
                })
            })?;
            (best.worker_id, "best_eligible")
        }
    };
    let reassigned = tenant
        .reassign_task(
            &Reassignment {
                task_id,
                to,
                assignment_id: AssignmentId::from_uuid(state.new_id()),
                reason: request.reason.clone(),
                rule: rule.into(),
                by,
            },
            now,
        )
        .await?;
    Ok((reassigned, rule))
}

async fn reassign(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
    Json(body): Json<ReassignDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    // A missing task is a 404 before the body's worker is looked at.
    tenant.task(task_id).await?;
    let reason = check_text("reason", &body.reason, REASSIGN_REASON_LEN_MAX)?.to_string();
    let worker_id = body
        .worker_id
        .as_deref()
        .map(parse_id::<WorkerId>)
        .transpose()?;
    let request = Request { worker_id, reason };
    let (reassigned, rule) = carry_out(
        &state,
        &tenant,
        task_id,
        &request,
        caller.user.id,
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "task_id": reassigned.task.id.to_string(),
            "state": reassigned.task.state.code(),
            "worker_id": state.store.active_assignee(task_id).await?.map(|w| w.to_string()),
            "previous_worker_id": reassigned.previous.map(|w| w.to_string()),
            "rule": rule,
        })),
    ))
}
