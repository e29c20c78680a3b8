//! SLA over HTTP: a client's calendars, a delivery site's calendar, an engagement's SLA terms,
//! pricing and credits, a work item's SLA state, and performance criteria (JSON or CSV).

use axum::extract::State;
use axum::http::header;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use karya_core::billing::{CreditRule, ItemRate, Pricing};
use karya_core::calendar::Shift;
use karya_core::id::{CalendarId, ClientId, EngagementId, SiteId, WorkItemId};
use karya_core::metrics::{Performance, Summary, AGEING_BUCKETS_H};
use karya_core::model::Priority;
use karya_core::money::Money;
use karya_core::sla::SlaTerms;
use karya_store::{
    CalendarRef, CalendarSpec, EngagementSla, MilestoneState, RecomputeReport, SlaState,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Json, Path, Query};
use crate::{check_text, ApiResult, AppState};

/// Longest calendar name or change reason accepted.
const TEXT_LEN_MAX: usize = 200;
/// Most holidays or exceptions one calendar may list: decades of public holidays.
const CALENDAR_DATES_MAX: usize = 2_000;
/// Most shifts in one day.
const SHIFTS_PER_DAY_MAX: usize = 8;

pub fn api() -> Api {
    Api::new()
        .route(
            "/api/v1/clients/{client_id}/calendars/{calendar_id}",
            get(get_calendar).put(put_calendar),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
                ),
                (
                    Method::PUT,
                    Access::tenant(auth::ADMINS, auth::CLIENT_ADMIN),
                ),
            ],
        )
        .route(
            "/api/v1/sites/{site_id}/calendar",
            get(get_site_calendar).put(put_site_calendar),
            &[
                (Method::GET, Access::Firm(auth::STAFF_READ)),
                (Method::PUT, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/engagements/{engagement_id}/sla",
            get(get_engagement_sla).put(put_engagement_sla),
            &[
                (
                    Method::GET,
                    Access::tenant(auth::WORK_READ, auth::CLIENT_ALL),
                ),
                (Method::PUT, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
        .route(
            "/api/v1/clients/{client_id}/work-items/{work_item_id}/sla",
            get(get_work_item_sla),
            &[(
                Method::GET,
                Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/api/v1/clients/{client_id}/performance",
            get(get_performance),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarBody {
    name: String,
    time_zone: String,
    /// Seven lists of `["HH:MM", "HH:MM"]` shifts, Monday first.
    week: Vec<Vec<[String; 2]>>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    exceptions: std::collections::BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsBody {
    priority: String,
    first_response_minutes: i64,
    resolution_minutes: i64,
    #[serde(default = "default_warning_pct")]
    warning_pct: u8,
    on_time_target_bp: u32,
    #[serde(default)]
    accuracy_target_bp: u32,
}

fn default_warning_pct() -> u8 {
    75
}

/// The variants carry the wire's `kind` names (`per_item`, `per_hour`, `per_fte_month`).
#[allow(clippy::enum_variant_names)]
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum PricingBody {
    PerItem { rates: Vec<RateBody> },
    PerHour { rate_minor: i64 },
    PerFteMonth { rate_minor: i64, fte_milli: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    priority: String,
    #[serde(default)]
    band: Option<String>,
    price_minor: i64,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct CreditBody {
    per_point_bp: u32,
    cap_bp: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EngagementSlaBody {
    /// One of the client's calendars; or else
    #[serde(default)]
    calendar_id: Option<String>,
    /// a delivery site, whose calendar the clocks run on.
    #[serde(default)]
    site_id: Option<String>,
    terms: Vec<TermsBody>,
    pricing: PricingBody,
    /// Credit per point below the on-time target.
    #[serde(default)]
    credit: Option<CreditBody>,
    /// Credit per point the accuracy falls below its target beyond doubt.
    #[serde(default)]
    accuracy_credit: Option<CreditBody>,
    #[serde(default)]
    reason: Option<String>,
}

/// A credit rule from the wire: both figures are shares of the fees, at most all of them.
fn credit_rule(field: &str, body: Option<CreditBody>) -> ApiResult<Option<CreditRule>> {
    let Some(body) = body else { return Ok(None) };
    if body.per_point_bp > 10_000 || body.cap_bp > 10_000 {
        return Err(ApiError::invalid(format!(
            "{field}: per_point_bp and cap_bp are at most 10000 bp (the whole fee)"
        )));
    }
    Ok(Some(CreditRule {
        per_point_bp: body.per_point_bp,
        cap_bp: body.cap_bp,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerformanceQuery {
    engagement_id: Option<String>,
    /// RFC 3339 instants; default: the last 30 days.
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

fn parse_shift(field: &str, pair: &[String; 2]) -> ApiResult<Shift> {
    let time = |text: &str| -> ApiResult<Time> {
        text.parse().map_err(|_| {
            ApiError::invalid(format!("{field}: {text:?} is not a time such as 09:00"))
        })
    };
    Ok(Shift::new(time(&pair[0])?, time(&pair[1])?))
}

fn parse_shifts(field: &str, pairs: &[[String; 2]]) -> ApiResult<Vec<Shift>> {
    if pairs.len() > SHIFTS_PER_DAY_MAX {
        return Err(ApiError::invalid(format!(
            "{field}: at most {SHIFTS_PER_DAY_MAX} shifts a day"
        )));
    }
    pairs.iter().map(|pair| parse_shift(field, pair)).collect()
}

fn parse_date(field: &str, text: &str) -> ApiResult<Date> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "{field}: {text:?} is not a date such as 2026-01-26"
        ))
    })
}

fn shift_pair(shift: &Shift) -> Value {
    json!([
        shift.start.strftime("%H:%M").to_string(),
        shift.end.strftime("%H:%M").to_string()
    ])
}

pub(crate) fn calendar_dto(spec: &CalendarSpec) -> Value {
    json!({
        "id": spec.id.to_string(),
        "name": spec.name,
        "time_zone": spec.time_zone,
        "week": spec.week.iter().map(|day| day.iter().map(shift_pair).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "holidays": spec.holidays.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "exceptions": spec.exceptions.iter().map(|(d, shifts)| {
            (d.to_string(), Value::Array(shifts.iter().map(shift_pair).collect()))
        }).collect::<serde_json::Map<_, _>>(),
    })
}

fn report_dto(report: &RecomputeReport) -> Value {
    json!({"items": report.items, "breached": report.breached})
}

/// A calendar from the wire, checked: seven days of shifts, dates, a known zone.
fn calendar_spec(id: CalendarId, body: &CalendarBody) -> ApiResult<CalendarSpec> {
    let name = check_text("name", &body.name, TEXT_LEN_MAX)?;
    if body.week.len() != 7 {
        return Err(ApiError::invalid(
            "week must list seven days of shifts, Monday first",
        ));
    }
    if body.holidays.len() > CALENDAR_DATES_MAX || body.exceptions.len() > CALENDAR_DATES_MAX {
        return Err(ApiError::invalid(format!(
            "at most {CALENDAR_DATES_MAX} holidays and {CALENDAR_DATES_MAX} exceptions"
        )));
    }
    if jiff::tz::TimeZone::get(&body.time_zone).is_err() {
        return Err(ApiError::invalid(format!(
            "time_zone {:?} is not an IANA time zone such as Asia/Kolkata",
            body.time_zone
        )));
    }
    let mut week: [Vec<Shift>; 7] = Default::default();
    for (idx, day) in body.week.iter().enumerate() {
        week[idx] = parse_shifts(&format!("week[{idx}]"), day)?;
    }
    let holidays = body
        .holidays
        .iter()
        .map(|d| parse_date("holidays", d))
        .collect::<ApiResult<Vec<_>>>()?;
    let mut exceptions = Vec::with_capacity(body.exceptions.len());
    for (date, shifts) in &body.exceptions {
        exceptions.push((
            parse_date("exceptions", date)?,
            parse_shifts(&format!("exceptions[{date}]"), shifts)?,
        ));
    }
    Ok(CalendarSpec {
        id,
        name: name.to_string(),
        time_zone: body.time_zone.clone(),
        week,
        holidays,
        exceptions,
    })
}

async fn put_calendar(
    State(state): State<AppState>,
    Path((client_id, calendar_id)): Path<(String, String)>,
    Json(body): Json<CalendarBody>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id::<ClientId>(&client_id)?);
    let spec = calendar_spec(parse_id(&calendar_id)?, &body)?;
    let reason = check_text(
        "reason",
        body.reason.as_deref().unwrap_or("calendar changed"),
        TEXT_LEN_MAX,
    )?;
    let report = tenant.put_calendar(&spec, reason, state.now()).await?;
    let mut dto = calendar_dto(&spec);
    dto["recomputed"] = report_dto(&report);
    Ok(axum::Json(dto))
}

/// A site's calendar: its id is the site's. Every engagement clocked on it is recomputed.
async fn put_site_calendar(
    State(state): State<AppState>,
    Path(site_id): Path<String>,
    Json(body): Json<CalendarBody>,
) -> ApiResult<axum::Json<Value>> {
    let site_id: SiteId = parse_id(&site_id)?;
    let spec = calendar_spec(CalendarId::from_uuid(*site_id.as_uuid()), &body)?;
    let reason = check_text(
        "reason",
        body.reason.as_deref().unwrap_or("site calendar changed"),
        TEXT_LEN_MAX,
    )?;
    let report = state
        .store
        .put_site_calendar(site_id, &spec, reason, state.now())
        .await?;
    let mut dto = calendar_dto(&spec);
    dto["site_id"] = json!(site_id.to_string());
    dto["recomputed"] = report_dto(&report);
    Ok(axum::Json(dto))
}

async fn get_site_calendar(
    State(state): State<AppState>,
    Path(site_id): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let site_id: SiteId = parse_id(&site_id)?;
    let spec = state.store.site_calendar(site_id).await?;
    let mut dto = calendar_dto(&spec);
    dto["site_id"] = json!(site_id.to_string());
    Ok(axum::Json(dto))
}

async fn get_calendar(
    State(state): State<AppState>,
    Path((client_id, calendar_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id::<ClientId>(&client_id)?);
    let spec = tenant.calendar(parse_id(&calendar_id)?).await?;
    Ok(axum::Json(calendar_dto(&spec)))
}

fn minutes(field: &str, value: i64) -> ApiResult<SignedDuration> {
    // A year of business minutes bounds any target.
    if !(0..=525_600).contains(&value) {
        return Err(ApiError::invalid(format!(
            "{field} must be between 0 and 525600 minutes"
        )));
    }
    Ok(SignedDuration::from_mins(value))
}

fn priority(text: &str) -> ApiResult<Priority> {
    Priority::parse(text).ok_or_else(|| {
        ApiError::invalid(format!(
            "unknown priority {text:?}; priorities are low, normal, high, urgent"
        ))
    })
}

async fn put_engagement_sla(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
    Json(body): Json<EngagementSlaBody>,
) -> ApiResult<axum::Json<Value>> {
    let client_id: ClientId = parse_id(&client_id)?;
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    let client = state.store.client(client_id).await?;
    let reason = check_text(
        "reason",
        body.reason.as_deref().unwrap_or("sla terms changed"),
        TEXT_LEN_MAX,
    )?;
    let mut terms = Vec::with_capacity(body.terms.len());
    for t in &body.terms {
        if t.warning_pct > 100 || t.on_time_target_bp > 10_000 || t.accuracy_target_bp > 10_000 {
            return Err(ApiError::invalid(
                "warning_pct is at most 100 and targets at most 10000 bp",
            ));
        }
        terms.push((
            priority(&t.priority)?,
            SlaTerms {
                first_response: minutes("first_response_minutes", t.first_response_minutes)?,
                resolution: minutes("resolution_minutes", t.resolution_minutes)?,
                warning_pct: t.warning_pct,
                on_time_target_bp: t.on_time_target_bp,
                accuracy_target_bp: t.accuracy_target_bp,
            },
        ));
    }
    let money = |minor: i64| -> ApiResult<Money> {
        if minor < 0 {
            return Err(ApiError::invalid("prices must not be negative"));
        }
        Ok(Money::new(minor, client.currency))
    };
    let pricing = match &body.pricing {
        PricingBody::PerItem { rates } => Pricing::PerItem {
            rates: rates
                .iter()
                .map(|r| {
                    Ok(ItemRate {
                        priority: priority(&r.priority)?,
                        band: r.band.clone(),
                        price: money(r.price_minor)?,
                    })
                })
                .collect::<ApiResult<Vec<_>>>()?,
        },
        PricingBody::PerHour { rate_minor } => Pricing::PerHour {
            rate: money(*rate_minor)?,
        },
        PricingBody::PerFteMonth {
            rate_minor,
            fte_milli,
        } => Pricing::PerFteMonth {
            rate: money(*rate_minor)?,
            fte_milli: *fte_milli,
        },
    };
    let calendar = match (&body.calendar_id, &body.site_id) {
        (Some(id), None) => CalendarRef::Client(parse_id(id)?),
        (None, Some(id)) => CalendarRef::Site(parse_id(id)?),
        _ => return Err(ApiError::invalid(
            "name exactly one calendar: calendar_id (the client's) or site_id (a delivery site's)",
        )),
    };
    let sla = EngagementSla {
        calendar,
        terms,
        pricing,
        credit_rule: credit_rule("credit", body.credit)?,
        accuracy_credit_rule: credit_rule("accuracy_credit", body.accuracy_credit)?,
    };
    let report = state
        .store
        .tenant(client_id)
        .set_engagement_sla(engagement_id, &sla, reason, state.now())
        .await?;
    let mut dto = engagement_sla_dto(&sla);
    dto["recomputed"] = report_dto(&report);
    Ok(axum::Json(dto))
}

fn engagement_sla_dto(sla: &EngagementSla) -> Value {
    let pricing = match &sla.pricing {
        Pricing::PerItem { rates } => {
            json!({"kind": "per_item", "rates": rates.iter().map(|r| json!({
            "priority": r.priority.code(), "band": r.band, "price_minor": r.price.minor,
        })).collect::<Vec<_>>()})
        }
        Pricing::PerHour { rate } => json!({"kind": "per_hour", "rate_minor": rate.minor}),
        Pricing::PerFteMonth { rate, fte_milli } => {
            json!({"kind": "per_fte_month", "rate_minor": rate.minor, "fte_milli": fte_milli})
        }
    };
    let (calendar_id, site_id) = match sla.calendar {
        CalendarRef::Client(id) => (Some(id.to_string()), None),
        CalendarRef::Site(id) => (None, Some(id.to_string())),
    };
    json!({
        "calendar_id": calendar_id,
        "site_id": site_id,
        "terms": sla.terms.iter().map(|(p, t)| json!({
            "priority": p.code(),
            "first_response_minutes": t.first_response.as_mins(),
            "resolution_minutes": t.resolution.as_mins(),
            "warning_pct": t.warning_pct,
            "on_time_target_bp": t.on_time_target_bp,
            "accuracy_target_bp": t.accuracy_target_bp,
        })).collect::<Vec<_>>(),
        "pricing": pricing,
        "credit": sla.credit_rule.map(|c| json!({"per_point_bp": c.per_point_bp, "cap_bp": c.cap_bp})),
        "accuracy_credit": sla.accuracy_credit_rule.map(|c| json!({"per_point_bp": c.per_point_bp, "cap_bp": c.cap_bp})),
    })
}

async fn get_engagement_sla(
    State(state): State<AppState>,
    Path((client_id, engagement_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id::<ClientId>(&client_id)?);
    let engagement_id: EngagementId = parse_id(&engagement_id)?;
    tenant.engagement(engagement_id).await?;
    match tenant.engagement_sla(engagement_id).await? {
        Some(sla) => Ok(axum::Json(engagement_sla_dto(&sla))),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("engagement {engagement_id} has no SLA terms"),
        )),
    }
}

fn time_or_null(at: Option<Timestamp>) -> Value {
    at.map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

fn milestone_dto(milestone: &MilestoneState) -> Value {
    json!({
        "target_minutes": milestone.target.as_mins(),
        "elapsed_seconds": milestone.elapsed.as_secs(),
        "due_at": time_or_null(milestone.due_at),
        "met_at": time_or_null(milestone.met_at),
        "breached": milestone.breached,
    })
}

fn sla_state_dto(state: &SlaState) -> Value {
    json!({
        "work_item_id": state.work_item_id.to_string(),
        "engagement_id": state.engagement_id.to_string(),
        "clock": state.clock.code(),
        "started_at": state.started_at.to_string(),
        "first_response": milestone_dto(&state.response),
        "resolution": milestone_dto(&state.resolution),
        "warn_at": time_or_null(state.warn_at),
        "computed_at": state.computed_at.to_string(),
    })
}

async fn get_work_item_sla(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let tenant = state.store.tenant(parse_id::<ClientId>(&client_id)?);
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    tenant.work_item(work_item_id).await?;
    match tenant.sla_state(work_item_id).await? {
        Some(sla) => Ok(axum::Json(sla_state_dto(&sla))),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "work item {work_item_id} has no SLA: its engagement has no terms for its priority"
            ),
        )),
    }
}

pub(crate) fn parse_time(field: &str, text: &str) -> ApiResult<Timestamp> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("{field}: {text:?} is not an RFC 3339 instant such as 2026-11-01T00:00:00Z"),
        )
    })
}

pub(crate) fn summary_dto(summary: Option<Summary>) -> Value {
    match summary {
        None => Value::Null,
        Some(s) => json!({
            "count": s.count,
            "mean_seconds": s.mean.as_secs(),
            "p50_seconds": s.p50.as_secs(),
            "p90_seconds": s.p90.as_secs(),
        }),
    }
}

pub(crate) fn performance_dto(perf: &Performance) -> Value {
    let mut ageing = serde_json::Map::new();
    for (idx, count) in perf.ageing.iter().enumerate() {
        let label = match AGEING_BUCKETS_H.get(idx) {
            Some(bound) => format!("under_{bound}h"),
            None => format!("over_{}h", AGEING_BUCKETS_H[AGEING_BUCKETS_H.len() - 1]),
        };
        ageing.insert(label, json!(count));
    }
    json!({
        "delivered": perf.delivered,
        "delivered_on_time": perf.delivered_on_time,
        "on_time_bp": perf.on_time_bp,
        "first_response": summary_dto(perf.response),
        "turnaround": summary_dto(perf.turnaround),
        "backlog": perf.backlog,
        "backlog_breached": perf.backlog_breached,
        "ageing": ageing,
        "aht_seconds": perf.aht.map(|d| d.as_secs()),
        "utilisation_bp": perf.utilisation_bp,
        "first_pass_yield_bp": perf.first_pass_yield_bp,
    })
}

/// The criteria as CSV: one `metric,value` row each, durations in seconds.
fn performance_csv(perf: &Performance) -> String {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut rows = vec![
        ("delivered".to_string(), perf.delivered.to_string()),
        (
            "delivered_on_time".into(),
            perf.delivered_on_time.to_string(),
        ),
        ("on_time_bp".into(), opt(perf.on_time_bp.map(i64::from))),
    ];
    for (name, summary) in [
        ("first_response", perf.response),
        ("turnaround", perf.turnaround),
    ] {
        rows.push((
            format!("{name}_count"),
            opt(summary.map(|s| i64::from(s.count))),
        ));
        rows.push((
            format!("{name}_mean_seconds"),
            opt(summary.map(|s| s.mean.as_secs())),
        ));
        rows.push((
            format!("{name}_p50_seconds"),
            opt(summary.map(|s| s.p50.as_secs())),
        ));
        rows.push((
            format!("{name}_p90_seconds"),
            opt(summary.map(|s| s.p90.as_secs())),
        ));
    }
    rows.push(("backlog".into(), perf.backlog.to_string()));
    rows.push(("backlog_breached".into(), perf.backlog_breached.to_string()));
    rows.push(("aht_seconds".into(), opt(perf.aht.map(|d| d.as_secs()))));
    rows.push((
        "utilisation_bp".into(),
        opt(perf.utilisation_bp.map(i64::from)),
    ));
    rows.push((
        "first_pass_yield_bp".into(),
        opt(perf.first_pass_yield_bp.map(i64::from)),
    ));
    let mut csv = String::from("metric,value\n");
    for (metric, value) in rows {
        csv.push_str(&format!("{metric},{value}\n"));
    }
    csv
}

async fn get_performance(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<PerformanceQuery>,
) -> ApiResult<Response> {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let now = state.now();
    let to = match &query.to {
        Some(text) => parse_time("to", text)?,
        None => now,
    };
    let from = match &query.from {
        Some(text) => parse_time("from", text)?,
        None => to - SignedDuration::from_hours(30 * 24),
    };
    let engagement_id = query
        .engagement_id
        .as_deref()
        .map(parse_id::<EngagementId>)
        .transpose()?;
    let perf = state
        .store
        .tenant(client_id)
        .performance(engagement_id, from, to, now)
        .await?;
    match query.format.as_deref().unwrap_or("json") {
        "json" => {
            let mut dto = performance_dto(&perf);
            dto["from"] = json!(from.to_string());
            dto["to"] = json!(to.to_string());
            Ok(axum::Json(dto).into_response())
        }
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            performance_csv(&perf),
        )
            .into_response()),
        other => Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("format {other:?} unknown: use json or csv"),
        )),
    }
}
