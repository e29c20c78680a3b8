//! Signing in and out, users, and API tokens.

use std::time::Instant;

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use karya_core::id::{ClientId, WorkerId};
use karya_core::model::Role;
use karya_store::{NewUser, User};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{
    new_secret, session_expiry, token_hash, Access, Credential, CLIENT_ADMIN, SESSION_COOKIE,
};
use crate::clients::page_request;
use crate::dto::{PageDto, PageQuery};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Caller, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};

/// Shortest password accepted (OWASP: at least 8; we ask for a passphrase).
pub const PASSWORD_LEN_MIN: usize = 12;
/// Longest password accepted: hashing is costly, and no one types more.
pub const PASSWORD_LEN_MAX: usize = 256;
const ADMIN: &[Role] = &[Role::Admin];

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/auth/login",
            post(login),
            &[(Method::POST, Access::Public)],
        )
        .route(
            "/api/v1/auth/logout",
            post(logout),
            &[(Method::POST, Access::SignedIn)],
        )
        .route(
            "/api/v1/auth/me",
            get(me),
            &[(Method::GET, Access::SignedIn)],
        )
        .route(
            "/api/v1/auth/tokens",
            get(list_tokens).post(create_token),
            &[
                (Method::GET, Access::SignedIn),
                (Method::POST, Access::SignedIn),
            ],
        )
        .route(
            "/api/v1/auth/tokens/{token_id}",
            delete(revoke_token),
            &[(Method::DELETE, Access::SignedIn)],
        )
        .route(
            "/api/v1/users",
            get(list_users).post(create_user),
            &[
                (Method::GET, Access::Firm(ADMIN)),
                (Method::POST, Access::Firm(ADMIN)),
            ],
        )
        .route(
            "/api/v1/users/{user_id}/disable",
            post(disable_user),
            &[(Method::POST, Access::Firm(ADMIN))],
        )
        .route(
            "/api/v1/clients/{client_id}/users",
            get(list_client_users).post(create_client_user),
            &[
                (Method::GET, Access::tenant(ADMIN, CLIENT_ADMIN)),
                (Method::POST, Access::tenant(ADMIN, CLIENT_ADMIN)),
            ],
        )
}

pub(crate) fn user_json(user: &User) -> Value {
    json!({
        "id": user.id.to_string(),
        "email": user.email,
        "name": user.name,
        "role": user.role.code(),
        "client_id": user.client_id.map(|c| c.to_string()),
        "worker_id": user.worker_id.map(|w| w.to_string()),
        "disabled": user.disabled,
        "created_at": user.created_at.to_string(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginDto {
    email: String,
    password: String,
}

/// Signs in with email and password; sets the session cookie and answers with the user and
/// the CSRF token to echo on unsafe requests.
async fn login(State(state): State<AppState>, Json(body): Json<LoginDto>) -> ApiResult<Response> {
    let email = body.email.trim().to_lowercase();
    let (cookie, user, csrf) = sign_in(&state, &email, &body.password).await?;
    let mut response =
        axum::Json(json!({"user": user_json(&user), "csrf_token": csrf})).into_response();
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// Checks credentials and opens a session; returns the cookie to set.
pub(crate) async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
) -> ApiResult<(HeaderValue, User, String)> {
    let now = Instant::now();
    state.auth.check_login_allowed(email, now)?;
    let refused = || ApiError::new(ErrorCode::Unauthenticated, "wrong email or password");
    if password.len() > PASSWORD_LEN_MAX {
        return Err(refused());
    }
    let found = state.store.user_for_login(email).await?;
    let verified = match &found {
        Some((user, Some(hash))) if !user.disabled => {
            state
                .auth
                .verify_password(password.to_string(), hash.clone())
                .await?
        }
        _ => {
            // Spend the same effort as a real check, so timing does not tell which emails exist.
            let _ = state.auth.hash_password(password.to_string()).await?;
            false
        }
    };
    let Some((user, _)) = found.filter(|_| verified) else {
        state.auth.record_login_failure(email, now);
        tracing::warn!("sign-in refused");
        return Err(refused());
    };
    state.auth.record_login_success(email);
    let token = new_secret("ks_");
    let csrf = new_secret("");
    let now = state.now();
    state
        .store
        .create_session(
            &token_hash(&token),
            user.id,
            &csrf,
            now,
            session_expiry(now),
        )
        .await?;
    tracing::info!(role = user.role.code(), "signed in");
    Ok((
        session_cookie(state, &token, crate::auth::SESSION_TTL.as_secs()),
        user,
        csrf,
    ))
}

pub(crate) fn session_cookie(state: &AppState, token: &str, max_age_s: u64) -> HeaderValue {
    let secure = if state.auth.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie text is ASCII")
}

async fn logout(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Response> {
    if let Credential::Session { token_hash, .. } = &caller.credential {
        state.store.delete_session(token_hash).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

async fn me(Caller(caller): Caller) -> axum::Json<Value> {
    let csrf = match &caller.credential {
        Credential::Session { csrf, .. } => Some(csrf.clone()),
        Credential::ApiToken => None,
    };
    axum::Json(json!({"user": user_json(&caller.user), "csrf_token": csrf}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserDto {
    email: String,
    name: String,
    role: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    worker_id: Option<String>,
    /// Absent for a user who signs in only with API tokens.
    #[serde(default)]
    password: Option<String>,
}

pub(crate) fn check_password(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if !(PASSWORD_LEN_MIN..=PASSWORD_LEN_MAX).contains(&chars) {
        return Err(ApiError::invalid(format!(
            "a password has {PASSWORD_LEN_MIN} to {PASSWORD_LEN_MAX} characters"
        )));
    }
    Ok(())
}

fn check_email(email: &str) -> ApiResult<String> {
    let email = check_text("email", email, 254)?.to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(' ')
    });
    if !valid {
        return Err(ApiError::invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    Ok(email)
}

async fn new_user(
    state: &AppState,
    body: NewUserDto,
    client_id: Option<ClientId>,
) -> ApiResult<User> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid(
            "role is admin, manager, lead, worker, reviewer, client_admin, client_user or auditor",
        )
    })?;
    let password_hash = match body.password {
        Some(password) => {
            check_password(&password)?;
            Some(state.auth.hash_password(password).await?)
        }
        None => None,
    };
    let new = NewUser {
        id: state.new_id(),
        email: check_email(&body.email)?,
        name: check_text("name", &body.name, 200)?.to_string(),
        role,
        client_id,
        worker_id: body
            .worker_id
            .as_deref()
            .map(parse_id::<WorkerId>)
            .transpose()?,
        password_hash,
    };
    Ok(state.store.create_user(&new, state.now()).await?)
}

async fn create_user(
    State(state): State<AppState>,
    Json(body): Json<NewUserDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id = body
        .client_id
        .as_deref()
        .map(parse_id::<ClientId>)
        .transpose()?;
    let user = new_user(&state, body, client_id).await?;
    Ok((StatusCode::CREATED, axum::Json(user_json(&user))))
}

async fn create_client_user(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
    Json(body): Json<NewUserDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let allowed = [Role::ClientAdmin.code(), Role::ClientUser.code()];
    if !allowed.contains(&body.role.as_str())
        || body.client_id.is_some()
        || body.worker_id.is_some()
    {
        return Err(ApiError::invalid(
            "a client's users are client_admin or client_user, of this client",
        ));
    }
    if caller.role() == Role::ClientAdmin
        && body.role == Role::ClientAdmin.code()
        && caller.client_id() != Some(client_id)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only this client's administrators add administrators",
        ));
    }
    let user = new_user(&state, body, Some(client_id)).await?;
    Ok((StatusCode::CREATED, axum::Json(user_json(&user))))
}

async fn list_users(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<Value>>> {
    let page = state.store.list_users(None, &page_request(&query)).await?;
    Ok(axum::Json(PageDto {
        items: page.items.iter().map(user_json).collect(),
        next_after: page.next_after,
    }))
}

async fn list_client_users(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<Value>>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let page = state
        .store
        .list_users(Some(client_id), &page_request(&query))
        .await?;
    Ok(axum::Json(PageDto {
        items: page.items.iter().map(user_json).collect(),
        next_after: page.next_after,
    }))
}

async fn disable_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let user_id: uuid::Uuid = user_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "malformed user id"))?;
    let user = state.store.disable_user(user_id, state.now()).await?;
    Ok(axum::Json(user_json(&user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenDto {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(body): Json<NewTokenDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let name = check_text("name", &body.name, 100)?;
    let token = new_secret("kt_");
    let record = state
        .store
        .create_api_token(
            state.new_id(),
            caller.user.id,
            name,
            &token_hash(&token),
            state.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({"id": record.id.to_string(), "name": record.name, "token": token,
                          "note": "the token is shown only now; store it safely"}),
        ),
    ))
}

async fn list_tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> ApiResult<axum::Json<Value>> {
    let tokens = state.store.api_tokens_of(caller.user.id).await?;
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"id": t.id.to_string(), "name": t.name, "created_at": t.created_at.to_string(),
                        "revoked_at": t.revoked_at.map(|r| r.to_string())})
        })
        .collect();
    Ok(axum::Json(json!({"items": items})))
}

async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    let token_id: uuid::Uuid = token_id
        .parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidParameter, "malformed token id"))?;
    state
        .store
        .revoke_api_token(caller.user.id, token_id, state.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
