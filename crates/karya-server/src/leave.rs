//! A worker's leave over HTTP: a lead books an absence (no shift counts during it, so the
//! router offers the worker nothing), and the worker or the firm reads what is booked.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use jiff::Timestamp;
use karya_core::id::WorkerId;
use karya_core::workforce::Leave;
use karya_store::{StoredLeave, LEAVE_NOTE_LEN_MAX};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path};
use crate::{check_text, ApiResult, AppState};

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/workers/{worker_id}/leave",
        get(list_leave).post(add_leave),
        &[
            (
                Method::GET,
                Access::OwnWorker {
                    firm: auth::STAFF_READ,
                },
            ),
            (Method::POST, Access::Firm(auth::STAFF)),
        ],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveDto {
    /// RFC 3339 instants.
    from: String,
    until: String,
    #[serde(default)]
    note: Option<String>,
}

fn leave_dto(stored: &StoredLeave) -> Value {
    json!({
        "id": stored.id.to_string(),
        "from": stored.leave.from.to_string(),
        "until": stored.leave.until.to_string(),
        "note": stored.note,
    })
}

fn instant(field: &str, text: &str) -> ApiResult<Timestamp> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "{field} must be an RFC 3339 time such as 2026-12-24T00:00:00Z"
        ))
    })
}

async fn add_leave(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<LeaveDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    state.store.worker(worker_id).await?;
    let leave = Leave {
        from: instant("from", &body.from)?,
        until: instant("until", &body.until)?,
    };
    let note = match body.note.as_deref().map(str::trim) {
        None | Some("") => "",
        Some(note) => check_text("note", note, LEAVE_NOTE_LEN_MAX)?,
    };
    let stored = state
        .store
        .add_leave(worker_id, state.new_id(), &leave, note, state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(leave_dto(&stored))))
}

async fn list_leave(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    state.store.worker(worker_id).await?;
    let leave = state.store.leave_of(worker_id, state.now()).await?;
    Ok(axum::Json(
        json!({"items": leave.iter().map(leave_dto).collect::<Vec<_>>()}),
    ))
}
