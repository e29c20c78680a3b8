//! The verify result of a client's event chain, for auditors.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::id::ClientId;
use serde_json::json;

use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Path};
use crate::{ApiResult, AppState};

pub fn api() -> Api {
    Api::new().route(
        "/api/v1/clients/{client_id}/audit",
        get(verify_client),
        &[(
            Method::GET,
            Access::tenant(auth::STAFF_READ, auth::CLIENT_ADMIN),
        )],
    )
}

async fn verify_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let status = state.store.verify_chain(client_id).await?;
    Ok(axum::Json(json!({
        "client_id": client_id.to_string(),
        "intact": status.broken.is_none(),
        "events_verified": status.events_verified,
        "break": status.broken.map(|b| json!({"seq": b.seq, "reason": b.reason.to_string()})),
    })))
}
