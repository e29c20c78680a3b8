//! A worker's offers: the open ones, and accepting or declining one.
//!
//! The router (a background loop on the leading node) makes offers; these endpoints are how
//! the worker answers. Accepting assigns the task through the store's exactly-once path, so an
//! offer that expired or ended meanwhile answers 409; another worker's offer answers 404.

use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use karya_core::id::{AssignmentId, OfferId, WorkerId};
use karya_store::{outcome_code, StoredOffer};
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Path};
use crate::{ApiResult, AppState};

pub fn api() -> Api {
    let own = Access::OwnWorker { firm: auth::STAFF };
    Api::new()
        .route(
            "/api/v1/workers/{worker_id}/offers",
            get(list_offers),
            &[(Method::GET, own)],
        )
        .route(
            "/api/v1/workers/{worker_id}/offers/{offer_id}/accept",
            post(accept),
            &[(Method::POST, own)],
        )
        .route(
            "/api/v1/workers/{worker_id}/offers/{offer_id}/decline",
            post(decline),
            &[(Method::POST, own)],
        )
}

fn offer_dto(offer: &StoredOffer) -> Value {
    json!({
        "id": offer.id.to_string(),
        "client_id": offer.client_id.to_string(),
        "task_id": offer.task_id.to_string(),
        "worker_id": offer.worker_id.to_string(),
        "units": offer.units,
        "offered_at": offer.offered_at.to_string(),
        "expires_at": offer.expires_at.to_string(),
        "outcome": offer.outcome.map(outcome_code),
        "ended_at": offer.ended_at.map(|t| t.to_string()),
    })
}

async fn list_offers(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    state.store.worker(worker_id).await?;
    let offers = state.store.open_offers(worker_id).await?;
    Ok(axum::Json(
        json!({"items": offers.iter().map(offer_dto).collect::<Vec<_>>()}),
    ))
}

async fn accept(
    State(state): State<AppState>,
    Path((worker_id, offer_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let offer_id: OfferId = parse_id(&offer_id)?;
    let assignment_id = AssignmentId::from_uuid(state.new_id());
    let task = state
        .store
        .accept_offer(worker_id, offer_id, assignment_id, state.now())
        .await?;
    Ok(axum::Json(json!({
        "offer_id": offer_id.to_string(),
        "task_id": task.id.to_string(),
        "client_id": task.client_id.to_string(),
        "work_item_id": task.work_item_id.to_string(),
        "step": task.step,
        "state": task.state.code(),
        "assignment_id": assignment_id.to_string(),
    })))
}

async fn decline(
    State(state): State<AppState>,
    Path((worker_id, offer_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let offer_id: OfferId = parse_id(&offer_id)?;
    let offer = state
        .store
        .decline_offer(worker_id, offer_id, state.now())
        .await?;
    Ok(axum::Json(offer_dto(&offer)))
}
