//! Tasks of a work item: making a step a task, and moving a task through its lifecycle.
//!
//! Creating a task is staff work. Moving one is open to staff and to the worker holding it;
//! the holder may only do what a worker does with work in hand (start it, give it back,
//! escalate it), the rest of the transition table is for staff.

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::post;
use karya_core::id::{ClientId, TaskId, WorkItemId};
use karya_core::lifecycle::TaskState;
use karya_core::model::Role;
use karya_store::NewTask;
use serde::Deserialize;

use crate::api::Api;
use crate::auth::{self, Access};
use crate::dto::TaskDto;
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Caller, Json, Path};
use crate::{check_text, ApiResult, AppState};

/// Longest step name accepted.
const STEP_LEN_MAX: usize = 100;

/// The moves a worker may make on a task they hold.
const HOLDER_MOVES: &[TaskState] = &[
    TaskState::InProgress,
    TaskState::Ready,
    TaskState::Escalated,
];

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/clients/{client_id}/tasks/{task_id}/transitions",
        post(transition_task),
        &[(
            Method::POST,
            Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
        )],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTaskDto {
    pub step: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTransitionDto {
    pub to: String,
}

/// `POST /api/v1/clients/{client_id}/work-items/{work_item_id}/tasks`: a step of the item
/// becomes a task, ready for a worker.
pub(crate) async fn create_task(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
    Json(body): Json<NewTaskDto>,
) -> ApiResult<(StatusCode, axum::Json<TaskDto>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let step = check_text("step", &body.step, STEP_LEN_MAX)?;
    let new = NewTask {
        id: TaskId::from_uuid(state.new_id()),
        work_item_id,
        step: step.to_string(),
    };
    let task = state
        .store
        .tenant(client_id)
        .create_task(&new, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(TaskDto::from(&task))))
}

async fn transition_task(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
    Json(body): Json<TaskTransitionDto>,
) -> ApiResult<axum::Json<TaskDto>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let to: TaskState = body
        .to
        .parse()
        .map_err(|err: karya_core::lifecycle::UnknownState| ApiError::invalid(err.to_string()))?;
    let holder = matches!(caller.role(), Role::Worker | Role::Reviewer);
    if holder && !HOLDER_MOVES.contains(&to) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "a worker may move a task they hold to in_progress, ready or escalated, not to {to}"
            ),
        ));
    }
    let task = state
        .store
        .tenant(client_id)
        .transition_task(task_id, to, state.now())
        .await?;
    Ok(axum::Json(TaskDto::from(&task)))
}
