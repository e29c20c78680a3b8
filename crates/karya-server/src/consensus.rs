//! Consensus (double keying) over HTTP, and lifting a gold pause.
//!
//! Staff open a group of k keying tasks on a step of a work item; each keyer keys the part
//! they hold; the last answer settles the group or opens an adjudication task, whose holder
//! rules on the disputed fields. Keyers never see each other's answers: a keying's reply says
//! only what happened to the keyer's own task, the group's detail is for staff, and the
//! dispute is shown to the adjudicator without saying who keyed what.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use karya_core::id::{ClientId, ConsensusGroupId, EngagementId, TaskId, WorkItemId, WorkerId};
use karya_core::qa::consensus::KeyerResult;
use karya_core::qa::Fields;
use karya_store::{ConsensusDetail, ConsensusGroup, KeyingOutcome, NewConsensusGroup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Caller, Json, Path};
use crate::qa::check_fields;
use crate::{check_text, ApiResult, AppState};

/// Longest step name.
const STEP_LEN_MAX: usize = 100;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/consensus-groups",
            post(open_group),
            &[(Method::POST, Access::tenant(auth::STAFF, auth::NOBODY))],
        )
        .route(
            "/api/v1/clients/{client_id}/consensus-groups/{group_id}",
            get(get_group),
            &[(Method::GET, Access::tenant(auth::STAFF_READ, auth::NOBODY))],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/keying",
            post(key),
            &[(
                Method::POST,
                Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/tasks/{task_id}/adjudication",
            get(get_dispute).post(rule),
            &[
                (
                    Method::GET,
                    Access::tenant_or_holder(auth::STAFF_READ, auth::NOBODY),
                ),
                (
                    Method::POST,
                    Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
                ),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/workers/{worker_id}/pauses/{step}/lift",
            post(lift_pause),
            &[(Method::POST, Access::tenant(auth::STAFF, auth::NOBODY))],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroupDto {
    step: String,
    /// How many workers key the step blind.
    keyers: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyingDto {
    /// The keyer's answer as field → value.
    #[serde(default)]
    output: Fields,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulingDto {
    /// A value for every disputed field (empty: the field has none), and for no other.
    ruling: Fields,
}

fn group_json(group: &ConsensusGroup) -> Value {
    json!({
        "id": group.id.to_string(),
        "engagement_id": group.engagement_id.to_string(),
        "work_item_id": group.work_item_id.to_string(),
        "step": group.step,
        "keyers": group.keyers,
        "state": group.state.code(),
        "keying_task_ids": group.keying_task_ids.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "adjudication_task_id": group.adjudication_task_id.map(|t| t.to_string()),
        "adjudicator_id": group.adjudicator_id.map(|w| w.to_string()),
        "field_agreement": group.field_agreement,
        "pairwise_agreement": group.pairwise_agreement,
        "answer": group.answer,
        "created_at": group.created_at.to_string(),
        "settled_at": group.settled_at.map(|t| t.to_string()),
    })
}

fn results_json(results: &[KeyerResult]) -> Value {
    results
        .iter()
        .map(|r| {
            json!({
                "worker_id": r.worker_id.to_string(),
                "correct": r.correct(),
                "right": r.right,
                "wrong": r.wrong,
            })
        })
        .collect()
}

fn detail_json(detail: &ConsensusDetail) -> Value {
    let mut body = group_json(&detail.group);
    body["answers"] = detail
        .answers
        .iter()
        .map(|a| {
            json!({
                "task_id": a.task_id.to_string(),
                "worker_id": a.answer.worker_id.to_string(),
                "fields": a.answer.fields,
                "keyed_at": a.keyed_at.to_string(),
            })
        })
        .collect();
    body["comparison"] = match &detail.comparison {
        None => Value::Null,
        Some(comparison) => json!({
            "field_agreement": comparison.field_agreement,
            "pairwise_agreement": comparison.pairwise_agreement,
            "fields": comparison.fields.iter().map(|f| json!({
                "field": f.field,
                "agreed": f.agreed,
                "values": f.values.iter().map(|(w, v)| json!({"worker_id": w.to_string(), "value": v})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    };
    body["results"] = results_json(&detail.results);
    body
}

async fn open_group(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
    Json(body): Json<NewGroupDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let step = check_text("step", &body.step, STEP_LEN_MAX)?.to_string();
    let max = karya_core::qa::consensus::KEYERS_MAX;
    if !(2..=max).contains(&body.keyers) {
        return Err(ApiError::invalid(format!(
            "keyers must be between 2 and {max}"
        )));
    }
    let new = NewConsensusGroup {
        id: ConsensusGroupId::from_uuid(state.new_id()),
        work_item_id,
        step,
        task_ids: (0..body.keyers)
            .map(|_| TaskId::from_uuid(state.new_id()))
            .collect(),
    };
    let group = state
        .store
        .tenant(client_id)
        .open_consensus_group(&new, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(group_json(&group))))
}

async fn get_group(
    State(state): State<AppState>,
    Path((client_id, group_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let group_id: ConsensusGroupId = parse_id(&group_id)?;
    let detail = state
        .store
        .tenant(client_id)
        .consensus_group(group_id)
        .await?;
    Ok(axum::Json(detail_json(&detail)))
}

async fn key(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Json(body): Json<KeyingDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    check_fields("output", &body.output)?;
    let outcome = state
        .store
        .tenant(client_id)
        .key_task(
            task_id,
            &body.output,
            TaskId::from_uuid(state.new_id()),
            state.now(),
        )
        .await?;
    // Only the keyer's own task: whether others agreed is for staff and the adjudicator.
    let task = match &outcome {
        KeyingOutcome::Waiting { task, .. }
        | KeyingOutcome::Settled { task, .. }
        | KeyingOutcome::Adjudicating { task, .. } => task,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"task_id": task.id.to_string(), "state": task.state.code()})),
    ))
}

async fn get_dispute(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let detail = state.store.tenant(client_id).dispute_of(task_id).await?;
    let group = &detail.group;
    // Keyers are numbered in keying order, never named: the ruling is on the values.
    let (agreed, disputed): (Vec<_>, Vec<_>) = detail
        .comparison
        .iter()
        .flat_map(|c| c.fields.iter())
        .partition(|f| f.agreed);
    let agreed: serde_json::Map<String, Value> = agreed
        .iter()
        .map(|f| (f.field.clone(), json!(f.values[0].1)))
        .collect();
    let disputed: Vec<Value> = disputed
        .iter()
        .map(|f| {
            json!({
                "field": f.field,
                "values": f.values.iter().map(|(_, v)| v).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "group_id": group.id.to_string(),
        "work_item_id": group.work_item_id.to_string(),
        "step": group.step,
        "state": group.state.code(),
        "keyers": group.keyers,
        "agreed": agreed,
        "disputed": disputed,
    })))
}

async fn rule(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Json(body): Json<RulingDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    check_fields("ruling", &body.ruling)?;
    let (group, results) = state
        .store
        .tenant(client_id)
        .adjudicate(task_id, &body.ruling, state.now())
        .await?;
    let mut reply = group_json(&group);
    reply["results"] = results_json(&results);
    Ok((StatusCode::CREATED, axum::Json(reply)))
}

async fn lift_pause(
    State(state): State<AppState>,
    Path((client_id, engagement_id, worker_id, step)): Path<(String, String, String, String)>,
    Caller(caller): Caller,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let step = check_text("step", &step, STEP_LEN_MAX)?;
    state
        .store
        .tenant(client_id)
        .lift_pause(
            engagement_id,
            worker_id,
            step,
            &caller.user.email,
            state.now(),
        )
        .await?;
    Ok(axum::Json(json!({
        "engagement_id": engagement_id.to_string(),
        "worker_id": worker_id.to_string(),
        "step": step,
        "paused": false,
    })))
}
