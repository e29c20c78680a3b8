//! Administration pages: clients and their engagements, workers, users, and each user's own
//! API tokens. Creating uses the same store calls and checks as the API.

use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use karya_core::id::{ClientId, EngagementId, WorkerId};
use karya_core::model::{Designation, Role};
use karya_core::money::Currency;
use karya_core::service_line::ServiceLine;
use karya_store::{NewEngagement, NewUser, PageRequest, StoreError};

use super::forms::FormData;
use super::{
    htmx_redirect, layout, page, role_label, when, Action, Block, Cell, Field, Form, Heading,
    Table, UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, new_secret, token_hash, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Caller, Path};
use crate::{check_text, AppState};

const ADMIN: &[Role] = &[Role::Admin];
/// Longest name accepted.
const NAME_LEN_MAX: usize = 200;

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/admin/clients",
            get(clients).post(create_client),
            &[
                (Method::GET, Access::Firm(auth::ADMINS)),
                (Method::POST, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/ui/admin/clients/{client_id}",
            get(client).post(create_engagement),
            &[
                (Method::GET, Access::tenant(auth::ADMINS, auth::NOBODY)),
                (Method::POST, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/ui/admin/workers",
            get(workers).post(create_worker),
            &[
                (Method::GET, Access::Firm(auth::ADMINS)),
                (Method::POST, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/ui/admin/users",
            get(users).post(create_user),
            &[
                (Method::GET, Access::Firm(ADMIN)),
                (Method::POST, Access::Firm(ADMIN)),
            ],
        )
        .route(
            "/ui/tokens",
            get(tokens).post(create_token),
            &[
                (Method::GET, Access::SignedIn),
                (Method::POST, Access::SignedIn),
            ],
        )
        .route(
            "/ui/tokens/{token_id}/revoke",
            post(revoke_token),
            &[(Method::POST, Access::SignedIn)],
        )
}

fn all_pages() -> PageRequest {
    PageRequest {
        limit: TABLE_ROWS_MAX,
        after: None,
    }
}

fn refuse(mut form: Form, err: ApiError) -> UiResult {
    form.error = Some(err.message);
    Ok(super::form_with_errors(form))
}

fn client_form(form: Option<&FormData>) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("client-form", "/ui/admin/clients".into(), "Add client");
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name"))
            .required(),
    );
    new.fields.push(
        Field::new("currency", "Billing currency", "text")
            .value(match value("currency") {
                c if c.is_empty() => "USD".into(),
                c => c,
            })
            .required()
            .help("ISO 4217 code, e.g. USD, EUR, INR."),
    );
    new
}

async fn clients(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Clients", "/ui/admin/clients");
    let clients = state.store.list_clients(&all_pages()).await?;
    let mut table = Table::new(
        "admin-clients",
        &["Client", "Currency", "Since"],
        "No clients yet",
        "Add the first client with the form below.",
    );
    for client in &clients.items {
        table.rows.push(vec![
            Cell::link(&client.name, format!("/ui/admin/clients/{}", client.id)),
            Cell::text(client.currency.to_string()),
            Cell::time(client.created_at),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Clients".into(),
                sub: "Tenants of the firm; each has its own engagements, users and trail.".into(),
                actions: Vec::new(),
            }),
            Block::Table(table),
            Block::Section("Add a client".into()),
            Block::Form(client_form(None)),
        ],
    ))
}

async fn create_client(State(state): State<AppState>, form: FormData) -> UiResult {
    let again = || client_form(Some(&form));
    let name = match check_text("name", &form.get("name"), NAME_LEN_MAX) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(again(), err),
    };
    let currency: Currency = match form.get("currency").to_uppercase().parse() {
        Ok(currency) => currency,
        Err(err) => return refuse(again(), ApiError::invalid(format!("{err}"))),
    };
    let client = state
        .store
        .create_client(
            ClientId::from_uuid(state.new_id()),
            &name,
            currency,
            state.now(),
        )
        .await?;
    Ok(htmx_redirect(&format!("/ui/admin/clients/{}", client.id)))
}

fn engagement_form(client_id: ClientId, form: Option<&FormData>) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new(
        "engagement-form",
        format!("/ui/admin/clients/{client_id}"),
        "Open engagement",
    );
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name"))
            .required(),
    );
    new.fields.push(
        Field::new("service_line", "Service line", "select")
            .options(
                ServiceLine::ALL
                    .iter()
                    .map(|l| (l.code().to_string(), l.name().to_string()))
                    .collect(),
            )
            .value(value("service_line")),
    );
    new
}

async fn client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let layout = layout(&caller, &client.name, "/ui/admin/clients");
    let engagements = state
        .store
        .tenant(client_id)
        .list_engagements(&all_pages())
        .await?;
    let mut table = Table::new(
        "engagements",
        &["Engagement", "Service line", "Id", "Opened"],
        "No engagements yet",
        "Open one below; its service pack sets the intake form, steps and QA.",
    );
    for engagement in &engagements.items {
        table.rows.push(vec![
            Cell::text(&engagement.name),
            Cell::text(engagement.service_line.name()),
            Cell::mono(engagement.id),
            Cell::time(engagement.created_at),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: client.name.clone(),
                sub: format!("Billed in {}.", client.currency),
                actions: vec![
                    Action::link(
                        "items",
                        "Work items",
                        format!("/ui/clients/{client_id}/items"),
                    ),
                    Action::link(
                        "report",
                        "SLA report",
                        format!("/ui/clients/{client_id}/report"),
                    ),
                    Action::link(
                        "calendars",
                        "Calendars",
                        format!("/ui/admin/clients/{client_id}/calendars"),
                    ),
                ],
            }),
            Block::Table(table),
            Block::Section("Open an engagement".into()),
            Block::Form(engagement_form(client_id, None)),
        ],
    ))
}

async fn create_engagement(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    form: FormData,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let again = || engagement_form(client_id, Some(&form));
    let name = match check_text("name", &form.get("name"), NAME_LEN_MAX) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(again(), err),
    };
    let Ok(service_line) = form.get("service_line").parse::<ServiceLine>() else {
        return refuse(again(), ApiError::invalid("choose a service line"));
    };
    let new = NewEngagement {
        id: EngagementId::from_uuid(state.new_id()),
        name,
        service_line,
    };
    state
        .store
        .tenant(client_id)
        .create_engagement(&new, state.now())
        .await?;
    Ok(htmx_redirect(&format!("/ui/admin/clients/{client_id}")))
}

const DESIGNATIONS: [Designation; 4] = [
    Designation::Analyst,
    Designation::SeniorAnalyst,
    Designation::TeamLead,
    Designation::Manager,
];

fn worker_form(form: Option<&FormData>, sites: &[karya_core::model::Site]) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("worker-form", "/ui/admin/workers".into(), "Add worker");
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name"))
            .required(),
    );
    new.fields.push(
        Field::new("designation", "Designation", "select")
            .options(
                DESIGNATIONS
                    .iter()
                    .map(|d| (d.code().to_string(), d.code().replace('_', " ")))
                    .collect(),
            )
            .value(value("designation")),
    );
    new.fields.push(
        Field::new("site_id", "Site", "select")
            .options(
                std::iter::once((String::new(), "— none —".to_string()))
                    .chain(
                        sites
                            .iter()
                            .map(|s| (s.id.to_string(), format!("{} ({})", s.name, s.time_zone))),
                    )
                    .collect(),
            )
            .value(value("site_id"))
            .help("Where the worker works; add sites under Admin: sites & calendars."),
    );
    new
}

async fn workers(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Workers", "/ui/admin/workers");
    let workers = state.store.workers(TABLE_ROWS_MAX).await?;
    let sites = state.store.sites().await?;
    let mut table = Table::new(
        "admin-workers",
        &["Worker", "Designation", "Site", "Id", "Since"],
        "No workers yet",
        "Add workers below, then link a user account to each.",
    );
    for worker in &workers {
        table.rows.push(vec![
            Cell::text(&worker.name),
            Cell::text(worker.designation.code().replace('_', " ")),
            Cell::text(
                worker
                    .site_id
                    .and_then(|id| sites.iter().find(|s| s.id == id))
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| "–".into()),
            ),
            Cell::mono(worker.id),
            Cell::time(worker.created_at),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Workers".into(),
                sub: "The firm's people as the router sees them.".into(),
                actions: Vec::new(),
            }),
            Block::Table(table),
            Block::Section("Add a worker".into()),
            Block::Form(worker_form(None, &sites)),
        ],
    ))
}

async fn create_worker(State(state): State<AppState>, form: FormData) -> UiResult {
    let sites = state.store.sites().await?;
    let again = || worker_form(Some(&form), &sites);
    let name = match check_text("name", &form.get("name"), NAME_LEN_MAX) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(again(), err),
    };
    let designation = DESIGNATIONS
        .into_iter()
        .find(|d| d.code() == form.get("designation"))
        .unwrap_or(Designation::Analyst);
    let site_id = match form.get("site_id") {
        s if s.is_empty() => None,
        s => match sites.iter().find(|site| site.id.to_string() == s) {
            Some(site) => Some(site.id),
            None => return refuse(again(), ApiError::invalid("choose a site from the list")),
        },
    };
    state
        .store
        .create_worker(
            WorkerId::from_uuid(state.new_id()),
            &name,
            site_id,
            designation,
            state.now(),
        )
        .await?;
    Ok(htmx_redirect("/ui/admin/workers"))
}

async fn user_form(state: &AppState, form: Option<&FormData>) -> Result<Form, UiError> {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("user-form", "/ui/admin/users".into(), "Add user");
    new.fields.push(
        Field::new("email", "Email", "email")
            .value(value("email"))
            .required(),
    );
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name"))
            .required(),
    );
    new.fields.push(
        Field::new("role", "Role", "select")
            .options(
                Role::ALL
                    .iter()
                    .map(|r| (r.code().to_string(), role_label(*r).to_string()))
                    .collect(),
            )
            .value(value("role")),
    );
    let clients = state.store.list_clients(&all_pages()).await?;
    new.fields.push(
        Field::new("client_id", "Client (client roles)", "select")
            .options(
                std::iter::once((String::new(), "— none —".to_string()))
                    .chain(
                        clients
                            .items
                            .iter()
                            .map(|c| (c.id.to_string(), c.name.clone())),
                    )
                    .collect(),
            )
            .value(value("client_id")),
    );
    let workers = state.store.workers(TABLE_ROWS_MAX).await?;
    new.fields.push(
        Field::new("worker_id", "Worker (worker, reviewer, lead)", "select")
            .options(
                std::iter::once((String::new(), "— none —".to_string()))
                    .chain(workers.iter().map(|w| (w.id.to_string(), w.name.clone())))
                    .collect(),
            )
            .value(value("worker_id")),
    );
    new.fields.push(
        Field::new("password", "Password", "password").help(&format!(
            "{} to {} characters; leave empty for a token-only account.",
            crate::PASSWORD_LEN_MIN,
            crate::PASSWORD_LEN_MAX
        )),
    );
    Ok(new)
}

async fn users(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Users", "/ui/admin/users");
    let users = state.store.list_users(None, &all_pages()).await?;
    let mut table = Table::new(
        "admin-users",
        &["User", "Email", "Role", "Status", "Since"],
        "No users",
        "Add users below.",
    );
    for user in &users.items {
        table.rows.push(vec![
            Cell::text(&user.name),
            Cell::mono(&user.email),
            Cell::text(role_label(user.role)),
            match user.disabled {
                true => Cell::pill("disabled", "bad"),
                false => Cell::pill("active", "ok"),
            },
            Cell::time(user.created_at),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Users".into(),
                sub: "Everyone who signs in, with their role.".into(),
                actions: Vec::new(),
            }),
            Block::Table(table),
            Block::Section("Add a user".into()),
            Block::Form(user_form(&state, None).await?),
        ],
    ))
}

async fn create_user(State(state): State<AppState>, form: FormData) -> UiResult {
    let again = user_form(&state, Some(&form)).await?;
    let Some(role) = Role::parse(&form.get("role")) else {
        return refuse(again, ApiError::invalid("choose a role"));
    };
    let email = form.get("email").to_lowercase();
    if !email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    {
        return refuse(
            again,
            ApiError::invalid(format!("{email:?} is not an email address")),
        );
    }
    let name = match check_text("name", &form.get("name"), NAME_LEN_MAX) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(again, err),
    };
    let client_id = match form.get("client_id") {
        c if c.is_empty() => None,
        c => Some(parse_id::<ClientId>(&c)?),
    };
    if role.is_client_role() != client_id.is_some() {
        return refuse(
            again,
            ApiError::invalid("client roles need a client, and only they may have one"),
        );
    }
    let worker_id = match form.get("worker_id") {
        w if w.is_empty() => None,
        w => Some(parse_id::<WorkerId>(&w)?),
    };
    let password = form.get("password");
    let password_hash = match password.is_empty() {
        true => None,
        false => {
            if let Err(err) = crate::sessions::check_password(&password) {
                return refuse(again, err);
            }
            Some(state.auth.hash_password(password).await?)
        }
    };
    let new = NewUser {
        id: state.new_id(),
        email,
        name,
        role,
        client_id,
        worker_id,
        password_hash,
    };
    match state.store.create_user(&new, state.now()).await {
        Ok(_) => Ok(htmx_redirect("/ui/admin/users")),
        Err(StoreError::Conflict { message }) => refuse(again, ApiError::invalid(message)),
        Err(err) => Err(err.into()),
    }
}

fn token_form() -> Form {
    let mut new = Form::new("token-form", "/ui/tokens".into(), "Create token");
    new.fields.push(
        Field::new("name", "Name", "text")
            .required()
            .help("What the token is for, e.g. the client's intake script."),
    );
    new
}

async fn tokens(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "API tokens", "/ui/tokens");
    let tokens = state.store.api_tokens_of(caller.user.id).await?;
    let mut table = Table::new(
        "tokens",
        &["Name", "Created", "Status", ""],
        "No API tokens",
        "Create one below to call the API as yourself; it is shown once.",
    );
    for token in &tokens {
        let (status, action) = match token.revoked_at {
            Some(at) => (
                Cell::pill(format!("revoked {}", when(at)), "plain"),
                Cell::text(""),
            ),
            None => (
                Cell::pill("active", "ok"),
                Cell::link("Revoke", format!("#revoke-{}", token.id)),
            ),
        };
        table.rows.push(vec![
            Cell::text(&token.name),
            Cell::time(token.created_at),
            status,
            action,
        ]);
    }
    let revoke: Vec<Action> = tokens
        .iter()
        .filter(|t| t.revoked_at.is_none())
        .map(|t| {
            Action::post(
                &format!("revoke-{}", t.id),
                &format!("Revoke “{}”", t.name),
                format!("/ui/tokens/{}/revoke", t.id),
            )
        })
        .collect();
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "API tokens".into(),
                sub: "Tokens act as you through the API. Only their hashes are stored.".into(),
                actions: revoke,
            }),
            Block::Table(table),
            Block::Section("Create a token".into()),
            Block::Form(token_form()),
        ],
    ))
}

async fn create_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    form: FormData,
) -> UiResult {
    let name = match check_text("name", &form.get("name"), 100) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(token_form(), err),
    };
    let token = new_secret("kt_");
    state
        .store
        .create_api_token(
            state.new_id(),
            caller.user.id,
            &name,
            &token_hash(&token),
            state.now(),
        )
        .await?;
    let mut done = token_form();
    done.note = format!("Token “{name}” created. Copy it now; it is not shown again: {token}");
    Ok(super::fragment(
        axum::http::StatusCode::OK,
        &[Block::Form(done)],
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(token_id): Path<String>,
) -> UiResult {
    let token_id: uuid::Uuid = token_id.parse().map_err(|_| {
        ApiError::new(
            crate::error::ErrorCode::InvalidParameter,
            "malformed token id",
        )
    })?;
    state
        .store
        .revoke_api_token(caller.user.id, token_id, state.now())
        .await?;
    Ok(htmx_redirect("/ui/tokens"))
}
