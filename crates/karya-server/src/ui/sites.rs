//! Administration of sites and calendars: the firm's delivery centres (each with its time
//! zone, where shifts are kept), and each client's business calendars (working week, hours
//! and holidays) that SLA clocks run on. Creating uses the same checks as the API.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use jiff::civil::{Date, Time};
use karya_core::calendar::Shift;
use karya_core::id::{CalendarId, ClientId, SiteId};
use karya_store::{CalendarSpec, PageRequest, StoreError};
use serde::Deserialize;

use super::forms::FormData;
use super::{
    htmx_redirect, layout, page, Action, Block, Cell, Field, Form, Heading, Table, UiResult,
    TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Caller, Path, Query};
use crate::sites::{new_site, NewSiteDto};
use crate::{check_text, AppState};

/// Longest calendar name accepted.
const CALENDAR_NAME_LEN_MAX: usize = 200;
/// Most holidays one form may list.
const HOLIDAYS_MAX: usize = 2_000;

/// Working weeks the form offers: value, label, and the weekdays (Monday = 0) that work.
const WEEKS: [(&str, &str, &[usize]); 4] = [
    ("mon_fri", "Monday to Friday", &[0, 1, 2, 3, 4]),
    ("sun_thu", "Sunday to Thursday", &[6, 0, 1, 2, 3]),
    ("mon_sat", "Monday to Saturday", &[0, 1, 2, 3, 4, 5]),
    ("every_day", "Every day", &[0, 1, 2, 3, 4, 5, 6]),
];

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/admin/sites",
            get(sites).post(create_site),
            &[
                (Method::GET, Access::Firm(auth::ADMINS)),
                (Method::POST, Access::Firm(auth::ADMINS)),
            ],
        )
        .route(
            "/ui/admin/clients/{client_id}/calendars",
            get(calendars).post(save_calendar),
            &[
                (Method::GET, Access::tenant(auth::ADMINS, auth::NOBODY)),
                (Method::POST, Access::tenant(auth::ADMINS, auth::NOBODY)),
            ],
        )
}

fn refuse(mut form: Form, err: ApiError) -> UiResult {
    form.error = Some(err.message);
    Ok(super::form_with_errors(form))
}

fn site_form(form: Option<&FormData>) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("site-form", "/ui/admin/sites".into(), "Add site");
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name"))
            .required(),
    );
    new.fields.push(
        Field::new("time_zone", "Time zone", "text")
            .value(value("time_zone"))
            .required()
            .help("IANA name, e.g. Asia/Kolkata, Europe/Warsaw, America/Manila."),
    );
    new.fields.push(
        Field::new("country", "Country", "text")
            .value(value("country"))
            .required(),
    );
    new
}

async fn sites(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Sites and calendars", "/ui/admin/sites");
    let now = state.now();
    let sites = state.store.sites().await?;
    let workers = state.store.workers(TABLE_ROWS_MAX).await?;
    let mut table = Table::new(
        "admin-sites",
        &["Site", "Time zone", "Local time", "Country", "Workers"],
        "No sites yet",
        "Add the firm's first delivery centre below; shifts are kept in its time zone.",
    );
    for site in &sites {
        let local = jiff::tz::TimeZone::get(&site.time_zone)
            .map(|zone| now.to_zoned(zone).strftime("%a %H:%M").to_string())
            .unwrap_or_default();
        table.rows.push(vec![
            Cell::text(&site.name),
            Cell::mono(&site.time_zone),
            Cell::text(local),
            Cell::text(&site.country),
            Cell::text(
                workers
                    .iter()
                    .filter(|w| w.site_id == Some(site.id))
                    .count(),
            ),
        ]);
    }
    let clients = state
        .store
        .list_clients(&PageRequest {
            limit: TABLE_ROWS_MAX,
            after: None,
        })
        .await?;
    let mut calendars = Table::new(
        "client-calendars",
        &["Client", "Calendars", ""],
        "No clients yet",
        "Each client's business calendars appear here once the client exists.",
    );
    for client in &clients.items {
        let specs = state.store.tenant(client.id).calendars().await?;
        calendars.rows.push(vec![
            Cell::text(&client.name),
            Cell::text(match specs.is_empty() {
                true => "none yet".to_string(),
                false => specs
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            Cell::link(
                "Calendars",
                format!("/ui/admin/clients/{}/calendars", client.id),
            ),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Sites and calendars".into(),
                sub: "Delivery centres with their time zones, and each client's business \
                      calendars that SLA clocks run on."
                    .into(),
                actions: Vec::new(),
            }),
            Block::Table(table),
            Block::Section("Add a site".into()),
            Block::Form(site_form(None)),
            Block::Section("Business calendars".into()),
            Block::Table(calendars),
        ],
    ))
}

async fn create_site(State(state): State<AppState>, form: FormData) -> UiResult {
    let body = NewSiteDto {
        name: form.get("name"),
        time_zone: form.get("time_zone"),
        country: form.get("country"),
    };
    let site = match new_site(SiteId::from_uuid(state.new_id()), &body) {
        Ok(site) => site,
        Err(err) => return refuse(site_form(Some(&form)), err),
    };
    match state.store.create_site(&site, state.now()).await {
        Ok(_) => Ok(htmx_redirect("/ui/admin/sites")),
        Err(StoreError::Conflict { message }) => {
            refuse(site_form(Some(&form)), ApiError::invalid(message))
        }
        Err(err) => Err(err.into()),
    }
}

/// The working days and hours of a calendar as people read them.
fn week_text(spec: &CalendarSpec) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut parts: Vec<String> = Vec::new();
    for (idx, shifts) in spec.week.iter().enumerate() {
        if shifts.is_empty() {
            continue;
        }
        let hours = shifts
            .iter()
            .map(|s| format!("{}–{}", s.start.strftime("%H:%M"), s.end.strftime("%H:%M")))
            .collect::<Vec<_>>()
            .join(", ");
        match parts.last_mut() {
            Some(last) if last.ends_with(&format!(" {hours}")) => {
                // Extend a run of days with the same hours: "Mon–Fri 09:00–18:00".
                let days = last.trim_end_matches(&format!(" {hours}")).to_string();
                let first = days.split('–').next().unwrap_or(&days).to_string();
                *last = format!("{first}–{} {hours}", DAYS[idx]);
            }
            _ => parts.push(format!("{} {hours}", DAYS[idx])),
        }
    }
    match parts.is_empty() {
        true => "no working time".into(),
        false => parts.join("; "),
    }
}

#[derive(Deserialize)]
struct CalendarQuery {
    calendar: Option<String>,
}

/// The calendar form, blank or filled from a stored calendar or a refused post.
fn calendar_form(
    client_id: ClientId,
    spec: Option<&CalendarSpec>,
    form: Option<&FormData>,
) -> Form {
    let stored = |name: &str| -> String {
        let Some(spec) = spec else {
            return String::new();
        };
        match name {
            "calendar_id" => spec.id.to_string(),
            "name" => spec.name.clone(),
            "time_zone" => spec.time_zone.clone(),
            "week" => WEEKS
                .iter()
                .find(|(_, _, days)| (0..7).all(|d| days.contains(&d) != spec.week[d].is_empty()))
                .map(|(value, _, _)| value.to_string())
                .unwrap_or_default(),
            "start" | "end" => spec
                .week
                .iter()
                .find_map(|day| day.first())
                .map(|shift| match name {
                    "start" => shift.start.strftime("%H:%M").to_string(),
                    _ => shift.end.strftime("%H:%M").to_string(),
                })
                .unwrap_or_default(),
            "holidays" => spec
                .holidays
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    };
    let value = |name: &str, default: &str| -> String {
        let text = match form {
            Some(form) => form.get(name),
            None => stored(name),
        };
        match text.is_empty() {
            true => default.to_string(),
            false => text,
        }
    };
    let editing = !value("calendar_id", "").is_empty();
    let mut new = Form::new(
        "calendar-form",
        format!("/ui/admin/clients/{client_id}/calendars"),
        match editing {
            true => "Save calendar",
            false => "Add calendar",
        },
    );
    new.fields
        .push(Field::new("calendar_id", "", "hidden").value(value("calendar_id", "")));
    new.fields.push(
        Field::new("name", "Name", "text")
            .value(value("name", ""))
            .required(),
    );
    new.fields.push(
        Field::new("time_zone", "Time zone", "text")
            .value(value("time_zone", "UTC"))
            .required()
            .help("IANA name of the zone the client's business hours are kept in."),
    );
    new.fields.push(
        Field::new("week", "Working week", "select")
            .options(
                WEEKS
                    .iter()
                    .map(|(v, l, _)| (v.to_string(), l.to_string()))
                    .collect(),
            )
            .value(value("week", "mon_fri")),
    );
    new.fields.push(
        Field::new("start", "Day starts", "text")
            .value(value("start", "09:00"))
            .required(),
    );
    new.fields.push(
        Field::new("end", "Day ends", "text")
            .value(value("end", "18:00"))
            .required()
            .help("An end before the start is a night shift into the next day."),
    );
    let mut holidays = Field::new("holidays", "Holidays", "textarea")
        .value(value("holidays", ""))
        .help("One date a line (or separated by commas), e.g. 2026-12-25. No SLA time counts on them.");
    holidays.rows = 5;
    new.fields.push(holidays);
    new.note = match editing {
        true => "Saving recomputes the SLA clocks of open items on this calendar.".into(),
        false => String::new(),
    };
    new
}

async fn calendars(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<CalendarQuery>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let tenant = state.store.tenant(client_id);
    let layout = layout(&caller, "Calendars", "/ui/admin/sites");
    let specs = tenant.calendars().await?;
    let editing = match query.calendar.as_deref() {
        Some(id) => Some(tenant.calendar(parse_id::<CalendarId>(id)?).await?),
        None => None,
    };
    let today = state.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut table = Table::new(
        "calendars",
        &["Calendar", "Time zone", "Working time", "Holidays", ""],
        "No calendars yet",
        "Add one below; an engagement's SLA terms name the calendar its clocks run on.",
    );
    for spec in &specs {
        let upcoming: Vec<Date> = spec
            .holidays
            .iter()
            .copied()
            .filter(|d| *d >= today)
            .collect();
        table.rows.push(vec![
            Cell::text(&spec.name),
            Cell::mono(&spec.time_zone),
            Cell::text(week_text(spec)),
            Cell::text(match upcoming.first() {
                Some(next) => format!("{} (next {next})", spec.holidays.len()),
                None => spec.holidays.len().to_string(),
            }),
            Cell::link(
                "Edit",
                format!(
                    "/ui/admin/clients/{client_id}/calendars?calendar={}",
                    spec.id
                ),
            ),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: format!("Calendars of {}", client.name),
                sub: "Business days, hours and holidays; SLA time counts only inside them.".into(),
                actions: vec![
                    Action::link("sites", "Sites and calendars", "/ui/admin/sites".into()),
                    Action::link("client", "Client", format!("/ui/admin/clients/{client_id}")),
                ],
            }),
            Block::Table(table),
            Block::Section(match &editing {
                Some(spec) => format!("Edit “{}”", spec.name),
                None => "Add a calendar".into(),
            }),
            Block::Form(calendar_form(client_id, editing.as_ref(), None)),
        ],
    ))
}

fn parse_time(field: &str, text: &str) -> Result<Time, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(format!("{field}: {text:?} is not a time such as 09:00")))
}

async fn save_calendar(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    form: FormData,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let tenant = state.store.tenant(client_id);
    let again = || calendar_form(client_id, None, Some(&form));
    let name = match check_text("name", &form.get("name"), CALENDAR_NAME_LEN_MAX) {
        Ok(name) => name.to_string(),
        Err(err) => return refuse(again(), err),
    };
    let time_zone = form.get("time_zone");
    if jiff::tz::TimeZone::get(&time_zone).is_err() {
        return refuse(
            again(),
            ApiError::invalid(format!(
                "time zone {time_zone:?} is not an IANA time zone such as Asia/Kolkata"
            )),
        );
    }
    let Some((_, _, days)) = WEEKS.iter().find(|(v, _, _)| *v == form.get("week")) else {
        return refuse(again(), ApiError::invalid("choose a working week"));
    };
    let (start, end) = match (
        parse_time("day starts", &form.get("start")),
        parse_time("day ends", &form.get("end")),
    ) {
        (Ok(start), Ok(end)) if start != end => (start, end),
        (Ok(_), Ok(_)) => {
            return refuse(
                again(),
                ApiError::invalid("the day must end at another time than it starts"),
            )
        }
        (Err(err), _) | (_, Err(err)) => return refuse(again(), err),
    };
    let mut holidays = Vec::new();
    for text in form
        .get("holidays")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        match text.parse::<Date>() {
            Ok(date) => holidays.push(date),
            Err(_) => {
                return refuse(
                    again(),
                    ApiError::invalid(format!(
                        "holidays: {text:?} is not a date such as 2026-12-25"
                    )),
                )
            }
        }
    }
    if holidays.len() > HOLIDAYS_MAX {
        return refuse(
            again(),
            ApiError::invalid(format!("at most {HOLIDAYS_MAX} holidays")),
        );
    }
    holidays.sort();
    holidays.dedup();
    // Saving over a calendar keeps its dated exceptions; another client's id is not found.
    let (id, exceptions) = match form.get("calendar_id") {
        id if id.is_empty() => (CalendarId::from_uuid(state.new_id()), Vec::new()),
        id => {
            let stored = tenant.calendar(parse_id(&id)?).await?;
            (stored.id, stored.exceptions)
        }
    };
    let mut week: [Vec<Shift>; 7] = Default::default();
    for day in days.iter() {
        week[*day] = vec![Shift::new(start, end)];
    }
    let spec = CalendarSpec {
        id,
        name,
        time_zone,
        week,
        holidays,
        exceptions,
    };
    match tenant
        .put_calendar(&spec, "calendar set by an administrator", state.now())
        .await
    {
        Ok(_) => Ok(htmx_redirect(&format!(
            "/ui/admin/clients/{client_id}/calendars"
        ))),
        Err(StoreError::Conflict { message } | StoreError::Rejected { message }) => {
            refuse(again(), ApiError::invalid(message))
        }
        Err(err) => Err(err.into()),
    }
}
