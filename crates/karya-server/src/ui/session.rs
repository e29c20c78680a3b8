//! Signing in and out with a form, the start page of each role, and the embedded assets.

use askama::Template;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use karya_core::model::Role;

use super::forms::FormData;
use super::{see_other, UiError, UiResult};
use crate::api::Api;
use crate::auth::{Access, Credential};
use crate::extract::{Caller, Path};
use crate::sessions::{session_cookie, sign_in};
use crate::AppState;

/// The files under `assets/`, embedded at build time: (name, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx.min.js"),
    ),
];

pub fn api() -> Api {
    Api::new()
        .route(
            "/login",
            get(login_page).post(login),
            &[
                (Method::GET, Access::Public),
                (Method::POST, Access::Public),
            ],
        )
        .route("/logout", post(logout), &[(Method::POST, Access::SignedIn)])
        .route("/", get(home), &[(Method::GET, Access::SignedIn)])
        .route(
            "/assets/{file}",
            get(asset),
            &[(Method::GET, Access::Public)],
        )
}

/// Where an anonymous visitor of a page is sent.
pub fn login_redirect() -> Response {
    see_other("/login")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    error: Option<String>,
    email: String,
}

fn login_form(status: StatusCode, email: String, error: Option<String>) -> UiResult {
    let body = LoginTemplate { error, email }
        .render()
        .map_err(|err| crate::error::ApiError::internal(&err))?;
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(response)
}

async fn login_page(request: axum::extract::Request) -> UiResult {
    match crate::auth::principal(request.extensions()) {
        Some(_) => Ok(see_other("/")),
        None => login_form(StatusCode::OK, String::new(), None),
    }
}

async fn login(State(state): State<AppState>, FormData(form): FormData) -> UiResult {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let email = field("email").trim().to_lowercase();
    let password = field("password");
    if email.is_empty() || password.is_empty() {
        return login_form(
            StatusCode::UNPROCESSABLE_ENTITY,
            email,
            Some("Enter your email and password.".into()),
        );
    }
    match sign_in(&state, &email, &password).await {
        Ok((cookie, _, _)) => {
            let mut response = see_other("/");
            response.headers_mut().insert(SET_COOKIE, cookie);
            Ok(response)
        }
        Err(err) => {
            let status = err.code.status();
            let message = match err.code {
                crate::error::ErrorCode::RateLimited => err.message,
                _ => "Wrong email or password.".into(),
            };
            login_form(status, email, Some(message))
        }
    }
}

async fn logout(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    if let Credential::Session { token_hash, .. } = &caller.credential {
        state.store.delete_session(token_hash).await?;
    }
    let mut response = super::htmx_redirect("/login");
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

/// The start page of the caller's role.
async fn home(Caller(caller): Caller) -> Response {
    let to = match (caller.role(), caller.client_id()) {
        (Role::ClientAdmin | Role::ClientUser, Some(client)) => {
            format!("/ui/clients/{client}/items")
        }
        (Role::Worker, _) => "/ui/inbox".into(),
        (Role::Reviewer, _) => "/ui/reviews".into(),
        (Role::Auditor, _) => "/ui/clients".into(),
        _ => "/ui/board".into(),
    };
    see_other(&to)
}

async fn asset(Path(file): Path<String>) -> Result<Response, UiError> {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return Err(UiError(crate::error::ApiError::new(
            crate::error::ErrorCode::NotFound,
            "no such asset",
        )));
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
