//! Sites over HTTP (the firm's delivery centres, each with its time zone) and the list of a
//! client's business calendars (one calendar is read and set through `sla`).

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use karya_core::id::{ClientId, SiteId};
use karya_core::model::Site;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Json, Path};
use crate::{check_text, ApiResult, AppState};

/// Longest site name or country accepted.
pub const SITE_TEXT_LEN_MAX: usize = 200;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/sites",
            get(list_sites).post(create_site),
            &[
                (Method::GET, Access::Firm(auth::STAFF_READ)),
                (Method::POST, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/calendars",
            get(list_calendars),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSiteDto {
    pub name: String,
    pub time_zone: String,
    pub country: String,
}

pub fn site_dto(site: &Site) -> Value {
    json!({
        "id": site.id.to_string(),
        "name": site.name,
        "time_zone": site.time_zone,
        "country": site.country,
    })
}

/// Checks a new site's fields: a name, an IANA time zone, a country.
pub fn new_site(id: SiteId, body: &NewSiteDto) -> ApiResult<Site> {
    let name = check_text("name", &body.name, SITE_TEXT_LEN_MAX)?;
    let country = check_text("country", &body.country, SITE_TEXT_LEN_MAX)?;
    let time_zone = body.time_zone.trim();
    let zone = jiff::tz::TimeZone::get(time_zone).map_err(|_| {
        ApiError::invalid(format!(
            "time_zone {time_zone:?} is not an IANA time zone such as Asia/Kolkata"
        ))
    })?;
    Ok(Site {
        id,
        name: name.to_string(),
        // The zone's canonical spelling, as the database of zones names it.
        time_zone: zone.iana_name().unwrap_or(time_zone).to_string(),
        country: country.to_string(),
    })
}

async fn list_sites(State(state): State<AppState>) -> ApiResult<axum::Json<Value>> {
    let sites = state.store.sites().await?;
    Ok(axum::Json(
        json!({"items": sites.iter().map(site_dto).collect::<Vec<_>>()}),
    ))
}

async fn create_site(
    State(state): State<AppState>,
    Json(body): Json<NewSiteDto>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let site = new_site(SiteId::from_uuid(state.new_id()), &body)?;
    let site = state.store.create_site(&site, state.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(site_dto(&site))))
}

async fn list_calendars(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let calendars = state.store.tenant(client_id).calendars().await?;
    Ok(axum::Json(json!({
        "items": calendars.iter().map(crate::sla::calendar_dto).collect::<Vec<_>>()
    })))
}
