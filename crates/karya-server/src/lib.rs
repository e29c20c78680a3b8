//! karya's HTTP edge: the REST API under `/api/v1`, health, and (as it grows) the web UI.
//!
//! This is the only crate that knows HTTP and JSON. Handlers follow three beats: parse the
//! request into domain types (a malformed value is a 400 naming the field), call the store
//! (which asks `karya-core` for every rule), and convert the result by hand into a DTO.
//!
//! # Layout
//! - [`router`]: every route, the body limit, fallbacks and request logging.
//! - [`error`]: the one `ApiError`, its stable codes and their statuses.
//! - [`extract`]: extractors whose rejections are `ApiError`s.
//! - [`dto`]: wire shapes.
//! - `clients`, `work_items`, `audit`: handlers per resource.
//! - `webhooks` (endpoints API), [`webhook_delivery`] (one bounded delivery round) and
//!   [`webhook_loop`] (the background loop `karya serve` runs).
//! - [`ui`]: the web UI's pages; `progress`: how an item moves through its pack's steps.

pub mod api;
pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;

mod audit;
mod clients;
mod consensus;
mod decisions;
mod deliverables;
pub mod documents;
pub mod intake;
pub mod invoices;
mod leave;
pub mod metrics;
mod offers;
pub mod openapi;
mod progress;
mod qa;
mod reassign;
pub mod reports;
mod routing;
mod sessions;
mod sites;
mod sla;
mod tasks;
pub mod ui;
pub mod webhook_delivery;
pub mod webhook_loop;
mod webhooks;
mod work_items;
mod workers;

use std::future::Future;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use karya_store::Store;
use serde_json::json;

use crate::error::{ApiError, ErrorCode};

pub type ApiResult<T> = Result<T, ApiError>;

pub use sessions::{PASSWORD_LEN_MAX, PASSWORD_LEN_MIN};

/// Largest request body accepted: JSON requests are small; documents will come as streamed
/// uploads on routes of their own with their own limit.
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: std::sync::Arc<auth::AuthState>,
    /// Set while this node leads the router and the timers; reported by `/healthz`.
    pub leading: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub webhooks: webhook_delivery::WebhookOptions,
    /// The packs engagements are set up from and intake validates against.
    pub packs: std::sync::Arc<karya_packs::Catalog>,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            auth: std::sync::Arc::default(),
            webhooks: webhook_delivery::WebhookOptions::default(),
            leading: std::sync::Arc::default(),
            packs: builtin_packs(),
        }
    }

    /// The same, reporting leadership from a flag the background workers keep.
    pub fn with_leadership(
        store: Store,
        leading: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> AppState {
        AppState {
            leading,
            ..AppState::new(store)
        }
    }

    /// The time of a change. The server is the shell, so it reads the clock; the core and
    /// store take the time as an argument.
    pub fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    /// A new id: UUID version 7, so ids sort by creation time.
    pub fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// The built-in packs, parsed and compiled once per process. They are embedded in the binary
/// and checked by the packs' own tests, so a failure here is a build defect.
pub fn builtin_packs() -> std::sync::Arc<karya_packs::Catalog> {
    builtin().clone()
}

/// The same catalogue, borrowed for the life of the process.
pub fn builtin_catalog() -> &'static karya_packs::Catalog {
    builtin()
}

fn builtin() -> &'static std::sync::Arc<karya_packs::Catalog> {
    static BUILTIN: std::sync::OnceLock<std::sync::Arc<karya_packs::Catalog>> =
        std::sync::OnceLock::new();
    BUILTIN.get_or_init(|| {
        std::sync::Arc::new(
            karya_packs::builtin().unwrap_or_else(|err| panic!("built-in packs: {err}")),
        )
    })
}

/// Every route with its access rules.
pub fn api() -> api::Api {
    use axum::http::Method;

    use crate::auth::Access;
    api::Api::new()
        .route("/healthz", get(healthz), &[(Method::GET, Access::Public)])
        .route(
            "/api/v1/service-lines",
            get(service_lines),
            &[(Method::GET, Access::Public)],
        )
        .route(
            "/api/v1/openapi.json",
            get(openapi_document),
            &[(Method::GET, Access::Public)],
        )
        .merge(sessions::api())
        .merge(clients::api())
        .merge(work_items::api())
        .merge(audit::api())
        .merge(decisions::api())
        .merge(qa::api())
        .merge(intake::api())
        .merge(sla::api())
        .merge(invoices::api())
        .merge(metrics::api())
        .merge(reports::api())
        .merge(workers::api())
        .merge(routing::api())
        .merge(offers::api())
        .merge(webhooks::api())
        .merge(consensus::api())
        .merge(tasks::api())
        .merge(sites::api())
        .merge(leave::api())
        .merge(reassign::api())
        .merge(documents::api())
        .merge(ui::api())
        .merge(deliverables::api())
}

/// The access rule of every route and method, for documentation and tests.
pub fn route_rules() -> Vec<api::RouteRule> {
    api().rules
}

/// Every route of the server, behind authentication and the access rules.
pub fn router(state: AppState) -> Router {
    let api = api();
    let rules: auth::RuleTable = api
        .rules
        .iter()
        .map(|rule| ((rule.method, rule.path), rule.access))
        .collect();
    let guard = auth::Guard {
        app: state.clone(),
        rules: std::sync::Arc::new(rules),
    };
    // Layers run outermost last-added: log → body limit → authenticate → csrf → authorize.
    api.router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(guard, auth::authorize))
        .layer(middleware::from_fn(auth::check_csrf))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops taking connections and lets requests in
/// flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Checks a required text field: trimmed, not empty, not longer than `max_chars`.
pub(crate) fn check_text<'a>(field: &str, text: &'a str, max_chars: usize) -> ApiResult<&'a str> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    if text.chars().count() > max_chars {
        return Err(ApiError::invalid(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(text)
}

async fn healthz(State(state): State<AppState>) -> Response {
    let leader = state.leading.load(std::sync::atomic::Ordering::SeqCst);
    match state.store.ping().await {
        Ok(()) => axum::Json(
            json!({"status": "ok", "database": state.store.engine().name(), "leader": leader}),
        )
        .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "status": "unavailable",
                    "database": state.store.engine().name(),
                    "leader": leader,
                })),
            )
                .into_response()
        }
    }
}

async fn service_lines() -> axum::Json<serde_json::Value> {
    let lines: Vec<_> = karya_core::service_line::ServiceLine::ALL
        .iter()
        .map(|line| json!({"code": line.code(), "name": line.name(), "category": line.category().as_str()}))
        .collect();
    axum::Json(json!({"items": lines}))
}

/// The OpenAPI document of this server, generated from the route registry.
async fn openapi_document() -> axum::Json<serde_json::Value> {
    axum::Json(openapi::document(&route_rules()))
}

async fn no_route() -> ApiError {
    ApiError::new(
        ErrorCode::NoRoute,
        "no such route; the API lives under /api/v1",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// One structured line per request: method, route pattern (never the ids in the path, never a
/// body), status and latency.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    let route = route.as_deref().unwrap_or("(unmatched)");
    if status >= 500 {
        tracing::warn!(%method, route, status, latency_us, "request");
    } else {
        tracing::info!(%method, route, status, latency_us, "request");
    }
    response
}
