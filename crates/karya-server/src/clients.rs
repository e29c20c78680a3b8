//! Clients (tenants) and their engagements.

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::get;
use karya_core::id::{ClientId, EngagementId};
use karya_core::money::Currency;
use karya_core::service_line::ServiceLine;
use karya_store::{NewEngagement, PageRequest};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::dto::{ClientDto, EngagementDto, NewClientDto, NewEngagementDto, PageDto, PageQuery};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};

/// Longest client or engagement name accepted.
const NAME_LEN_MAX: usize = 200;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients",
            get(list_clients).post(create_client),
            &[
                (Method::GET, Access::Firm(auth::STAFF_READ)),
                (Method::POST, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}",
            get(get_client),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/engagements",
            get(list_engagements).post(create_engagement),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::WORK_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}",
            get(get_engagement),
            &[(
                Method::GET,
                Access::tenant(auth::WORK_READ, auth::CLIENT_ALL),
            )],
        )
}

pub(crate) fn page_request(query: &PageQuery) -> PageRequest {
    PageRequest {
        limit: query.limit.unwrap_or(0),
        after: query.after.clone(),
    }
}

async fn create_client(
    State(state): State<AppState>,
    Json(body): Json<NewClientDto>,
) -> ApiResult<(StatusCode, axum::Json<ClientDto>)> {
    let name = check_text("name", &body.name, NAME_LEN_MAX)?;
    let currency: Currency = body
        .currency
        .parse()
        .map_err(|err: karya_core::money::MoneyError| ApiError::invalid(err.to_string()))?;
    let client = state
        .store
        .create_client(
            ClientId::from_uuid(state.new_id()),
            name,
            currency,
            state.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ClientDto::from(&client))))
}

async fn list_clients(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<ClientDto>>> {
    let page = state.store.list_clients(&page_request(&query)).await?;
    Ok(axum::Json(PageDto::from_page(page)))
}

async fn get_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<axum::Json<ClientDto>> {
    let client = state.store.client(parse_id(&client_id)?).await?;
    Ok(axum::Json(ClientDto::from(&client)))
}

async fn create_engagement(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Json(body): Json<NewEngagementDto>,
) -> ApiResult<(StatusCode, axum::Json<EngagementDto>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let name = check_text("name", &body.name, NAME_LEN_MAX)?;
    let service_line: ServiceLine = body.service_line.parse().map_err(
        |err: karya_core::service_line::UnknownServiceLine| ApiError::invalid(err.to_string()),
    )?;
    state.store.client(client_id).await?;
    let new = NewEngagement {
        id: EngagementId::from_uuid(state.new_id()),
        name: name.to_string(),
        service_line,
    };
    // An engagement runs on its service line's pack: steps, terms, QA, decisions, routing.
    let tenant = state.store.tenant(client_id);
    let engagement = match state.packs.for_line(service_line).next() {
        Some(loaded) => {
            tenant
                .create_engagement_from_pack(&new, &loaded.pack, state.now())
                .await?
        }
        None => tenant.create_engagement(&new, state.now()).await?,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(EngagementDto::from(&engagement)),
    ))
}

async fn list_engagements(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<EngagementDto>>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let page = state
        .store
        .tenant(client_id)
        .list_engagements(&page_request(&query))
        .await?;
    Ok(axum::Json(PageDto::from_page(page)))
}

async fn get_engagement(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<EngagementDto>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let engagement = tenant.engagement(parse_id(&engagement_id)?).await?;
    Ok(axum::Json(EngagementDto::from(&engagement)))
}
