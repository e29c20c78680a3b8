//! Deliverables: what went back to the client for a work item, listed with their digests and
//! downloaded as files.

use axum::extract::State;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use karya_core::id::WorkItemId;
use karya_store::Deliverable;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::dto::PageDto;
use crate::extract::{parse_id, Path};
use crate::{ApiResult, AppState};

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/deliverables",
            get(list_deliverables),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/deliverables/{deliverable_id}",
            get(download_deliverable),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
}

fn deliverable_json(client_id: &str, deliverable: &Deliverable) -> Value {
    json!({
        "id": deliverable.id.to_string(),
        "work_item_id": deliverable.work_item_id.to_string(),
        "name": deliverable.name,
        "media_type": deliverable.media_type,
        "sha256": deliverable.sha256,
        "bytes": deliverable.bytes,
        "created_at": deliverable.created_at.to_string(),
        "download": format!(
            "/api/v1/clients/{client_id}/work-items/{}/deliverables/{}",
            deliverable.work_item_id, deliverable.id
        ),
    })
}

async fn list_deliverables(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<PageDto<Value>>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let deliverables = tenant.deliverables(work_item_id).await?;
    let client_id = tenant.client_id().to_string();
    Ok(axum::Json(PageDto {
        items: deliverables
            .iter()
            .map(|d| deliverable_json(&client_id, d))
            .collect(),
        next_after: None,
    }))
}

async fn download_deliverable(
    State(state): State<AppState>,
    Path((client_id, work_item_id, deliverable_id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    // A malformed id names no deliverable: the same answer as a missing one.
    let deliverable_id: uuid::Uuid = deliverable_id.parse().map_err(|_| {
        crate::error::ApiError::new(
            crate::error::ErrorCode::NotFound,
            format!("deliverable {deliverable_id} not found"),
        )
    })?;
    let deliverable = tenant.deliverable(work_item_id, deliverable_id).await?;
    // The stored name has no quotes, separators or control characters (see `flow::file_name`).
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        deliverable
            .name
            .replace(|c: char| !c.is_ascii_graphic() && c != ' ', "_")
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let media_type = HeaderValue::from_str(&deliverable.media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let digest =
        HeaderValue::from_str(&deliverable.sha256).unwrap_or_else(|_| HeaderValue::from_static(""));
    Ok((
        [
            (header::CONTENT_TYPE, media_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-content-sha256"), digest),
        ],
        deliverable.content,
    )
        .into_response())
}
