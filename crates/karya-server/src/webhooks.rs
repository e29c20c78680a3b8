//! A client's webhook endpoints: register (the secret is answered once), list, remove, resume
//! after suspension, and read the record of delivery attempts. Sending is
//! [`crate::webhook_delivery`]'s business.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::{delete, get, post};
use karya_core::id::{ClientId, WebhookId};
use karya_core::webhook::{EventFilter, WebhookSecret};
use karya_store::{NewWebhook, Webhook, WebhookAttempt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, new_secret, Access};
use crate::clients::page_request;
use crate::dto::{PageDto, PageQuery};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path, Query};
use crate::webhook_delivery::check_url;
use crate::{ApiResult, AppState};

pub fn api() -> Api {
    let admins = Access::tenant(auth::ADMINS, auth::CLIENT_ADMIN);
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/webhooks",
            get(list_webhooks).post(register_webhook),
            &[(Method::GET, admins), (Method::POST, admins)],
        )
        .route(
            "/api/v1/clients/{client_id}/webhooks/{webhook_id}",
            delete(remove_webhook),
            &[(Method::DELETE, admins)],
        )
        .route(
            "/api/v1/clients/{client_id}/webhooks/{webhook_id}/resume",
            post(resume_webhook),
            // Team leads watch operations and may restart a delivery that stopped.
            &[(
                Method::POST,
                Access::tenant(auth::STAFF, auth::CLIENT_ADMIN),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/webhooks/{webhook_id}/attempts",
            get(list_attempts),
            &[(Method::GET, admins)],
        )
}

fn webhook_json(webhook: &Webhook) -> Value {
    json!({
        "id": webhook.id.to_string(),
        "client_id": webhook.client_id.to_string(),
        "url": webhook.url,
        "events": webhook.events.prefixes(),
        "state": webhook.state.code(),
        "delivered_through_seq": webhook.cursor,
        "failures": webhook.failures,
        "next_attempt_at": webhook.next_attempt_at.to_string(),
        "created_at": webhook.created_at.to_string(),
    })
}

fn attempt_json(attempt: &WebhookAttempt) -> Value {
    json!({
        "webhook_id": attempt.webhook_id.to_string(),
        "seq": attempt.seq,
        "attempt": attempt.attempt,
        "attempted_at": attempt.attempted_at.to_string(),
        "status": attempt.status,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookDto {
    url: String,
    /// Event-kind prefixes such as "work_item.", or "*" for every kind.
    events: Vec<String>,
}

async fn register_webhook(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Json(body): Json<NewWebhookDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let tenant = state.store.tenant(client_id);
    state.store.client(client_id).await?;
    let events =
        EventFilter::parse(&body.events).map_err(|err| ApiError::invalid(err.to_string()))?;
    let url = check_url(body.url.trim(), state.webhooks)
        .await
        .map_err(|err| ApiError::invalid(err.to_string()))?;
    let secret = new_secret("whsec_");
    let new = NewWebhook {
        id: WebhookId::from_uuid(state.new_id()),
        url: url.to_string(),
        events,
        secret: WebhookSecret::new(secret.clone()),
    };
    let webhook = tenant.register_webhook(&new, state.now()).await?;
    let mut answer = webhook_json(&webhook);
    answer["secret"] = json!(secret);
    answer["note"] =
        json!("the secret is shown only now; store it safely and verify X-Karya-Signature with it");
    Ok((StatusCode::CREATED, axum::Json(answer)))
}

async fn list_webhooks(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let webhooks = state.store.tenant(client_id).webhooks().await?;
    let items: Vec<Value> = webhooks.iter().map(webhook_json).collect();
    Ok(axum::Json(json!({"items": items})))
}

fn ids(client_id: &str, webhook_id: &str) -> ApiResult<(ClientId, WebhookId)> {
    Ok((parse_id(client_id)?, parse_id(webhook_id)?))
}

async fn remove_webhook(
    State(state): State<AppState>,
    Path((client_id, webhook_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (client_id, webhook_id) = ids(&client_id, &webhook_id)?;
    state
        .store
        .tenant(client_id)
        .remove_webhook(webhook_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resume_webhook(
    State(state): State<AppState>,
    Path((client_id, webhook_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let (client_id, webhook_id) = ids(&client_id, &webhook_id)?;
    let webhook = state
        .store
        .tenant(client_id)
        .resume_webhook(webhook_id, state.now())
        .await?;
    Ok(axum::Json(webhook_json(&webhook)))
}

async fn list_attempts(
    State(state): State<AppState>,
    Path((client_id, webhook_id)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<Value>>> {
    let (client_id, webhook_id) = ids(&client_id, &webhook_id)?;
    let page = state
        .store
        .tenant(client_id)
        .webhook_attempts(webhook_id, &page_request(&query))
        .await?;
    Ok(axum::Json(PageDto {
        items: page.items.iter().map(attempt_json).collect(),
        next_after: page.next_after,
    }))
}
