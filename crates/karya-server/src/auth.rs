//! Who is calling, and whether they may.
//!
//! Every request passes [`authenticate`], which resolves a [`Principal`] from an API token
//! (`Authorization: Bearer …`) or a session cookie, and [`authorize`], which applies the access
//! rule registered with the route (see [`crate::api`]). A client's user asking for another
//! client's data gets exactly the 404 a missing client gives; a worker asking for work not
//! routed to them gets the 404 of a missing task or work item. Cookie sessions must echo their
//! CSRF token in `x-csrf-token` on every unsafe request.
//!
//! Secrets: passwords are hashed with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane)
//! on blocking threads, at most [`HASHING_CONCURRENCY_MAX`] at a time; session and API tokens
//! are 256-bit random values stored as SHA-256 hashes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use karya_core::id::{ClientId, WorkerId};
use karya_core::model::Role;
use karya_store::User;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};
use crate::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "karya_session";
/// How long a session lasts: a working day and a bit, so a shift never has to sign in twice.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Argon2 hashes running at once; each takes 19 MiB and most of a core for tens of ms.
pub const HASHING_CONCURRENCY_MAX: usize = 2;
/// Failed sign-ins allowed per email within [`LOGIN_WINDOW`] before further tries are refused.
pub const LOGIN_FAILURES_MAX: u32 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Emails tracked by the sign-in limiter; the oldest entries are dropped beyond this.
const LOGIN_TRACKED_MAX: usize = 10_000;

/// Firm roles that run operations.
pub const STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Lead];
/// Firm roles that administer.
pub const ADMINS: &[Role] = &[Role::Admin, Role::Manager];
/// Staff plus the auditor, for reading.
pub const STAFF_READ: &[Role] = &[Role::Admin, Role::Manager, Role::Lead, Role::Auditor];
/// Everyone who may read work in progress on the firm side.
pub const WORK_READ: &[Role] = &[
    Role::Admin,
    Role::Manager,
    Role::Lead,
    Role::Auditor,
    Role::Reviewer,
];
/// Who may read decision types and policies on the firm side.
pub const DECIDERS_READ: &[Role] = WORK_READ;
/// Who may take decisions (a worker only inside work it holds; checked by the handler).
pub const DECIDERS: &[Role] = &[Role::Admin, Role::Manager, Role::Lead, Role::Worker];
/// Who may record reviews (separation of duties is checked by the engine).
pub const REVIEWERS: &[Role] = &[Role::Admin, Role::Manager, Role::Lead, Role::Reviewer];
/// Who may read invoices on the firm side.
pub const BILLING_READ: &[Role] = &[Role::Admin, Role::Manager, Role::Auditor];
pub const CLIENT_ALL: &[Role] = &[Role::ClientAdmin, Role::ClientUser];
pub const CLIENT_ADMIN: &[Role] = &[Role::ClientAdmin];
pub const NOBODY: &[Role] = &[];

/// Who may call a route's method.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// Firm users in these roles.
    Firm(&'static [Role]),
    /// A client's data (the path has `{client_id}`): firm users in `firm`, the client's own
    /// users in `client`, and, when `holder` is set, a worker or reviewer who holds the task
    /// or work item named in the path.
    Tenant {
        firm: &'static [Role],
        client: &'static [Role],
        holder: bool,
    },
    /// A worker's own record (the path has `{worker_id}`): that worker, or firm users in `firm`.
    OwnWorker { firm: &'static [Role] },
}

impl Access {
    pub const fn tenant(firm: &'static [Role], client: &'static [Role]) -> Access {
        Access::Tenant {
            firm,
            client,
            holder: false,
        }
    }

    pub const fn tenant_or_holder(firm: &'static [Role], client: &'static [Role]) -> Access {
        Access::Tenant {
            firm,
            client,
            holder: true,
        }
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A browser session; unsafe requests must carry this CSRF token.
    Session {
        token_hash: String,
        csrf: String,
    },
    ApiToken,
}

/// The signed-in caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

impl Principal {
    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn client_id(&self) -> Option<ClientId> {
        self.user.client_id
    }

    pub fn worker_id(&self) -> Option<WorkerId> {
        self.user.worker_id
    }
}

/// Shared state of authentication: the hashing limiter and the sign-in limiter.
pub struct AuthState {
    hashing: tokio::sync::Semaphore,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// Whether cookies carry `Secure` (behind HTTPS).
    pub secure_cookies: bool,
}

impl Default for AuthState {
    fn default() -> AuthState {
        AuthState {
            hashing: tokio::sync::Semaphore::new(HASHING_CONCURRENCY_MAX),
            failures: Mutex::default(),
            secure_cookies: false,
        }
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl AuthState {
    /// Hashes a password on a blocking thread.
    pub async fn hash_password(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|err| ApiError::internal(&err))?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
        })
        .await
        .map_err(|err| ApiError::internal(&err))?
        .map_err(|err| ApiError::internal(&err))
    }

    /// Checks a password against a stored hash on a blocking thread.
    pub async fn verify_password(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|err| ApiError::internal(&err))?;
        tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
            Ok(parsed) => argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
        .map_err(|err| ApiError::internal(&err))
    }

    /// Refuses a sign-in for an email that failed too often lately.
    pub fn check_login_allowed(&self, email: &str, now: Instant) -> Result<(), ApiError> {
        let failures = self.failures.lock().expect("limiter lock");
        match failures.get(email) {
            Some((count, since))
                if *count >= LOGIN_FAILURES_MAX && now.duration_since(*since) < LOGIN_WINDOW =>
            {
                Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "too many failed sign-ins; try again in a few minutes",
                ))
            }
            _ => Ok(()),
        }
    }

    pub fn record_login_failure(&self, email: &str, now: Instant) {
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() >= LOGIN_TRACKED_MAX {
            // Forget the entries whose window has passed; if all are live, the oldest.
            failures.retain(|_, (_, since)| now.duration_since(*since) < LOGIN_WINDOW);
            if failures.len() >= LOGIN_TRACKED_MAX {
                if let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(email.to_string()).or_insert((0, now));
        if now.duration_since(entry.1) >= LOGIN_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn record_login_success(&self, email: &str) {
        self.failures.lock().expect("limiter lock").remove(email);
    }
}

/// A new random secret: 32 bytes as 64 hex digits, with a prefix that says what it is.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex(&bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Resolves the caller, if any, and stores the [`Principal`] in the request's extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let principal = match (bearer, cookie_value(headers, SESSION_COOKIE)) {
        (Some(token), _) => match state.store.token_user(&token_hash(token)).await {
            Ok(Some(user)) => Some(Principal {
                user,
                credential: Credential::ApiToken,
            }),
            Ok(None) => {
                return ApiError::new(
                    ErrorCode::Unauthenticated,
                    "the API token is unknown, revoked or its user disabled",
                )
                .into_response()
            }
            Err(err) => return ApiError::from(err).into_response(),
        },
        (None, Some(session)) => {
            let hash = token_hash(session);
            match state.store.session_user(&hash, state.now()).await {
                Ok(Some((user, csrf))) => Some(Principal {
                    user,
                    credential: Credential::Session {
                        token_hash: hash,
                        csrf,
                    },
                }),
                // An expired or unknown cookie is no credential; public pages still answer.
                Ok(None) => None,
                Err(err) => return ApiError::from(err).into_response(),
            }
        }
        (None, None) => None,
    };
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

/// The access rules of every route, by method and route pattern.
pub type RuleTable = HashMap<(&'static str, &'static str), Access>;

/// What [`authorize`] needs: the app and the rule table built with the router.
#[derive(Clone)]
pub struct Guard {
    pub app: AppState,
    pub rules: Arc<RuleTable>,
}

/// Applies the route's access rule.
pub async fn authorize(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        // Unmatched requests fall through to the 404 and 405 fallbacks.
        return next.run(request).await;
    };
    let method = request.method().as_str().to_string();
    let Some(access) = guard
        .rules
        .iter()
        .find(|((m, p), _)| *m == method && *p == route)
        .map(|(_, a)| *a)
    else {
        // A method the route does not answer: let the router say 405.
        return next.run(request).await;
    };
    let principal = request.extensions().get::<Principal>().cloned();
    let params = raw_params(&route, request.uri().path());
    if let Err(err) = check(&guard.app, access, principal.as_ref(), &params).await {
        // Pages answer people: a sign-in page for the anonymous, an HTML page for the rest.
        if crate::ui::is_page(&route) {
            return match err.code {
                ErrorCode::Unauthenticated => crate::ui::login_redirect(),
                _ => crate::ui::error_page(err),
            };
        }
        return err.into_response();
    }
    next.run(request).await
}

/// Path parameters by matching the route pattern against the path (segments in braces).
fn raw_params(route: &str, path: &str) -> HashMap<String, String> {
    route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, value)| {
            pattern
                .strip_prefix('{')
                .and_then(|p| p.strip_suffix('}'))
                .map(|name| (name.to_string(), value.to_string()))
        })
        .collect()
}

async fn check(
    state: &AppState,
    access: Access,
    principal: Option<&Principal>,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    if matches!(access, Access::Public) {
        return Ok(());
    }
    let Some(principal) = principal else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "sign in or send an API token (Authorization: Bearer …)",
        ));
    };
    let role = principal.role();
    let forbidden = || {
        ApiError::new(
            ErrorCode::Forbidden,
            format!("a {} may not do this", role.code()),
        )
    };
    match access {
        Access::Public | Access::SignedIn => Ok(()),
        Access::Firm(roles) => {
            if principal.client_id().is_none() && roles.contains(&role) {
                Ok(())
            } else {
                Err(forbidden())
            }
        }
        Access::OwnWorker { firm } => {
            let own = params
                .get("worker_id")
                .and_then(|w| w.parse::<WorkerId>().ok())
                .is_some_and(|w| principal.worker_id() == Some(w));
            if own || (principal.client_id().is_none() && firm.contains(&role)) {
                Ok(())
            } else {
                Err(forbidden())
            }
        }
        Access::Tenant {
            firm,
            client,
            holder,
        } => {
            let client_text = params.get("client_id").map(String::as_str).unwrap_or("");
            let path_client = client_text.parse::<ClientId>().ok();
            match principal.client_id() {
                Some(own) => {
                    if path_client != Some(own) {
                        // Exactly what a missing client answers.
                        return Err(ApiError::new(
                            ErrorCode::NotFound,
                            format!("client {client_text} not found"),
                        ));
                    }
                    if client.contains(&role) {
                        Ok(())
                    } else {
                        Err(forbidden())
                    }
                }
                None if firm.contains(&role) => Ok(()),
                None if holder && matches!(role, Role::Worker | Role::Reviewer) => {
                    let (Some(worker_id), Some(client_id)) = (principal.worker_id(), path_client)
                    else {
                        return Err(forbidden());
                    };
                    let task = params.get("task_id").map(String::as_str);
                    let item = params.get("work_item_id").map(String::as_str);
                    if task.is_none() && item.is_none() {
                        return Err(forbidden());
                    }
                    if state
                        .store
                        .worker_holds(worker_id, client_id, task, item)
                        .await?
                    {
                        Ok(())
                    } else {
                        let (kind, id) = match task {
                            Some(task) => ("task", task),
                            None => ("work item", item.unwrap_or("")),
                        };
                        Err(ApiError::new(
                            ErrorCode::NotFound,
                            format!("{kind} {id} not found"),
                        ))
                    }
                }
                None => Err(forbidden()),
            }
        }
    }
}

/// Refuses an unsafe request made with a session cookie unless it echoes the session's CSRF
/// token in `x-csrf-token`. API tokens are not ambient credentials and need no such proof.
pub async fn check_csrf(request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method {
        if let Some(Principal {
            credential: Credential::Session { csrf, .. },
            ..
        }) = request.extensions().get::<Principal>()
        {
            let sent = request
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            let form_login = request.uri().path() == "/login";
            if sent != Some(csrf.as_str()) && !form_login {
                return ApiError::new(
                    ErrorCode::Forbidden,
                    "missing or wrong x-csrf-token for this session",
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// The principal of a request, for handlers whose rule depends on more than the path.
pub fn principal(extensions: &axum::http::Extensions) -> Option<&Principal> {
    extensions.get::<Principal>()
}

/// Shared by tests and the `karya` binary: a session's lifetime end.
pub fn session_expiry(now: jiff::Timestamp) -> jiff::Timestamp {
    now.checked_add(jiff::SignedDuration::try_from(SESSION_TTL).expect("ttl fits"))
        .unwrap_or(jiff::Timestamp::MAX)
}

pub type SharedAuth = Arc<AuthState>;

/// Creates an API token for a user and returns it (the only time it is seen in clear).
pub async fn mint_token(
    store: &karya_store::Store,
    user_id: uuid::Uuid,
    name: &str,
    now: jiff::Timestamp,
) -> Result<String, karya_store::StoreError> {
    let token = new_secret("kt_");
    store
        .create_api_token(
            uuid::Uuid::now_v7(),
            user_id,
            name,
            &token_hash(&token),
            now,
        )
        .await?;
    Ok(token)
}

/// Creates a user who signs in with API tokens only, and a first token for them. Used by
/// `karya user add --token` for automation accounts, and by tests to act in a role.
pub async fn user_with_token(
    store: &karya_store::Store,
    email: &str,
    role: Role,
    client_id: Option<ClientId>,
    worker_id: Option<WorkerId>,
    now: jiff::Timestamp,
) -> Result<(User, String), karya_store::StoreError> {
    let new = karya_store::NewUser {
        id: uuid::Uuid::now_v7(),
        email: email.to_string(),
        name: email.split('@').next().unwrap_or(email).to_string(),
        role,
        client_id,
        worker_id,
        password_hash: None,
    };
    let user = store.create_user(&new, now).await?;
    let token = mint_token(store, user.id, "first token", now).await?;
    Ok((user, token))
}
