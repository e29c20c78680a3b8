//! Work items: intake, reading, listing, moving through their lifecycle, and their trail.

use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::{get, post};
use karya_core::id::{ClientId, WorkItemId};
use karya_core::lifecycle::WorkItemState;
use karya_core::model::Priority;
use karya_store::{NewWorkItem, WorkItemFilter};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::clients::page_request;
use crate::dto::{
    EventDto, NewWorkItemDto, PageDto, PageQuery, TaskDto, TransitionDto, WorkItemDto,
    WorkItemQuery,
};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};

/// Longest title accepted.
pub(crate) const TITLE_LEN_MAX: usize = 300;
/// Longest client reference accepted (claim numbers, docket numbers).
pub(crate) const EXTERNAL_REF_LEN_MAX: usize = 128;
/// Largest `input` accepted inline; documents travel as uploads, not inside the JSON.
pub const INPUT_BYTES_MAX: usize = 256 * 1024;
/// Longest transition reason accepted.
const REASON_LEN_MAX: usize = 1_000;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/work-items",
            get(list_work_items).post(create_work_item),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::STAFF, auth::CLIENT_ALL)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}",
            get(get_work_item),
            &[(
                Method::GET,
                Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/transitions",
            post(transition_work_item),
            &[(
                Method::POST,
                Access::tenant(auth::STAFF, auth::CLIENT_ADMIN),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/tasks",
            get(list_tasks).post(crate::tasks::create_task),
            &[
                (
                    Method::GET,
                    Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
                ),
                (Method::POST, Access::tenant(auth::STAFF, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/events",
            get(work_item_events),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/events",
            get(client_events),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ADMIN),
            )],
        )
}

async fn create_work_item(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Json(body): Json<NewWorkItemDto>,
) -> ApiResult<(StatusCode, axum::Json<WorkItemDto>)> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id = parse_id(&body.engagement_id)?;
    let title = check_text("title", &body.title, TITLE_LEN_MAX)?;
    let priority = match body.priority.as_deref() {
        None => Priority::Normal,
        Some(text) => Priority::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown priority {text:?}: use low, normal, high or urgent"
            ))
        })?,
    };
    let external_ref = match body.external_ref.as_deref() {
        None => None,
        Some(text) => Some(check_text("external_ref", text, EXTERNAL_REF_LEN_MAX)?.to_string()),
    };
    let input = body.input.get();
    if input.len() > INPUT_BYTES_MAX {
        return Err(ApiError::invalid(format!(
            "input is {} bytes; the limit is {INPUT_BYTES_MAX}",
            input.len()
        )));
    }
    if !input.trim_start().starts_with('{') {
        return Err(ApiError::invalid("input must be a JSON object"));
    }
    let new = NewWorkItem {
        id: WorkItemId::from_uuid(state.new_id()),
        engagement_id,
        external_ref,
        title: title.to_string(),
        priority,
        input: input.to_string(),
    };
    let tenant = state.store.tenant(client_id);
    // Validate against the pack the engagement runs on before anything is stored.
    if let Some((pack_id, _)) = tenant.engagement_pack(engagement_id).await? {
        let pack = state.packs.by_id(&pack_id).ok_or_else(|| {
            ApiError::internal(&format!(
                "engagement runs on pack {pack_id}, which is not loaded"
            ))
        })?;
        if let Err(errors) = karya_packs::validate_input(pack, input) {
            let mut error = ApiError::invalid(format!(
                "input does not match the {pack_id} input form ({} problems)",
                errors.len()
            ));
            error.fields = errors.into_iter().map(|e| (e.path, e.problem)).collect();
            return Err(error);
        }
    }
    let item = tenant
        .create_and_start_work_item(&new, state.new_id(), state.now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(WorkItemDto::from(&item))))
}

async fn list_work_items(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<WorkItemQuery>,
) -> ApiResult<axum::Json<PageDto<WorkItemDto>>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let filter = WorkItemFilter {
        state: query
            .state
            .as_deref()
            .map(str::parse::<WorkItemState>)
            .transpose()
            .map_err(|err| {
                ApiError::new(crate::error::ErrorCode::InvalidParameter, err.to_string())
            })?,
        engagement_id: query.engagement_id.as_deref().map(parse_id).transpose()?,
    };
    state.store.client(client_id).await?;
    let page = PageQuery {
        limit: query.limit,
        after: query.after,
    };
    let page = state
        .store
        .tenant(client_id)
        .list_work_items(&filter, &page_request(&page))
        .await?;
    Ok(axum::Json(PageDto::from_page(page)))
}

async fn get_work_item(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<WorkItemDto>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let item = tenant.work_item(parse_id(&work_item_id)?).await?;
    Ok(axum::Json(WorkItemDto::from(&item)))
}

async fn transition_work_item(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
    Json(body): Json<TransitionDto>,
) -> ApiResult<axum::Json<WorkItemDto>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let to: WorkItemState = body
        .to
        .parse()
        .map_err(|err: karya_core::lifecycle::UnknownState| ApiError::invalid(err.to_string()))?;
    let reason = body
        .reason
        .as_deref()
        .map(|text| check_text("reason", text, REASON_LEN_MAX))
        .transpose()?;
    let item = tenant
        .transition_work_item(work_item_id, to, reason, body.expected_version, state.now())
        .await?;
    Ok(axum::Json(WorkItemDto::from(&item)))
}

async fn list_tasks(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<PageDto<TaskDto>>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    tenant.work_item(work_item_id).await?;
    let tasks = tenant.tasks_of(work_item_id).await?;
    Ok(axum::Json(PageDto {
        items: tasks.iter().map(TaskDto::from).collect(),
        next_after: None,
    }))
}

async fn work_item_events(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<PageDto<EventDto>>> {
    let tenant = state.store.tenant(parse_id(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    tenant.work_item(work_item_id).await?;
    let mut events = tenant
        .entity_events("work_item", &work_item_id.to_string())
        .await?;
    for task in tenant.tasks_of(work_item_id).await? {
        events.extend(tenant.entity_events("task", &task.id.to_string()).await?);
    }
    events.sort_by_key(|event| event.seq);
    Ok(axum::Json(PageDto {
        items: events.iter().map(EventDto::from).collect(),
        next_after: None,
    }))
}

async fn client_events(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<PageDto<EventDto>>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let page = state
        .store
        .tenant(client_id)
        .events(&page_request(&query))
        .await?;
    Ok(axum::Json(PageDto::from_page(page)))
}
