//! A lead's page for one worker's leave: the absences booked and a form to book whole days in
//! the worker's time zone (the worker sees them on their shift page; no shift counts meanwhile).

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use karya_core::id::WorkerId;
use karya_core::workforce::Leave;
use karya_store::{StoreError, LEAVE_NOTE_LEN_MAX};

use super::forms::FormData;
use super::{
    htmx_redirect, layout, page, Action, Block, Cell, Field, Form, Heading, Table, UiResult,
};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::error::ApiError;
use crate::extract::{parse_id, Caller, Path};
use crate::{check_text, AppState};

pub fn api() -> Api {
    Api::new().route(
        "/ui/workforce/{worker_id}/leave",
        get(leave_page).post(book_leave),
        &[
            (Method::GET, Access::Firm(auth::STAFF)),
            (Method::POST, Access::Firm(auth::STAFF)),
        ],
    )
}

pub fn leave_href(worker_id: WorkerId) -> String {
    format!("/ui/workforce/{worker_id}/leave")
}

fn leave_form(worker_id: WorkerId, form: Option<&FormData>) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("leave-form", leave_href(worker_id), "Book leave");
    new.fields.push(
        Field::new("from", "First day", "date")
            .value(value("from"))
            .required(),
    );
    new.fields.push(
        Field::new("until", "Last day", "date")
            .value(value("until"))
            .required()
            .help("Whole days in the worker's time zone, both included."),
    );
    new.fields
        .push(Field::new("note", "Note", "text").value(value("note")));
    new
}

/// The worker's zone: their shifts' zone, or UTC without a routing profile.
async fn zone_of(state: &AppState, worker_id: WorkerId) -> Result<TimeZone, super::UiError> {
    match state.store.routed_worker(worker_id).await {
        Ok(routed) => Ok(routed.profile.shift.time_zone),
        Err(StoreError::NotFound { .. }) => Ok(TimeZone::UTC),
        Err(err) => Err(err.into()),
    }
}

async fn leave_page(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    let worker = state.store.worker(worker_id).await?;
    let zone = zone_of(&state, worker_id).await?;
    let layout = layout(&caller, "Leave", "/ui/workforce");
    let mut table = Table::new(
        "leave",
        &["From", "Until", "Note"],
        "No leave booked",
        "Book an absence below; the router offers the worker nothing while it lasts.",
    );
    let local = |t: jiff::Timestamp| {
        t.to_zoned(zone.clone())
            .strftime("%a %d %b %Y %H:%M")
            .to_string()
    };
    for stored in state.store.leave_of(worker_id, state.now()).await? {
        table.rows.push(vec![
            Cell::text(local(stored.leave.from)),
            Cell::text(local(stored.leave.until)),
            Cell::text(&stored.note),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: format!("Leave of {}", worker.name),
                sub: format!(
                    "Times in {}, the worker's zone.",
                    zone.iana_name().unwrap_or("UTC")
                ),
                actions: vec![Action::link(
                    "workforce",
                    "Workforce",
                    "/ui/workforce".into(),
                )],
            }),
            Block::Table(table),
            Block::Section("Book leave".into()),
            Block::Form(leave_form(worker_id, None)),
        ],
    ))
}

async fn book_leave(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    form: FormData,
) -> UiResult {
    let worker_id: WorkerId = parse_id(&worker_id)?;
    state.store.worker(worker_id).await?;
    let zone = zone_of(&state, worker_id).await?;
    let refuse = |message: String| -> UiResult {
        let mut again = leave_form(worker_id, Some(&form));
        again.error = Some(message);
        Ok(super::form_with_errors(again))
    };
    let day = |name: &str, label: &str| -> Result<Date, String> {
        form.get(name)
            .parse::<Date>()
            .map_err(|_| format!("{label} must be a date such as 2026-12-24"))
    };
    let (first, last) = match (day("from", "the first day"), day("until", "the last day")) {
        (Ok(first), Ok(last)) => (first, last),
        (Err(message), _) | (_, Err(message)) => return refuse(message),
    };
    if last < first {
        return refuse("the last day comes before the first".into());
    }
    let note = match form.get("note") {
        note if note.is_empty() => String::new(),
        note => match check_text("note", &note, LEAVE_NOTE_LEN_MAX) {
            Ok(note) => note.to_string(),
            Err(err) => return refuse(err.message),
        },
    };
    let start = |date: Date| -> Option<jiff::Timestamp> {
        date.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
    };
    let (Some(from), Some(until)) = (start(first), last.tomorrow().ok().and_then(start)) else {
        return refuse("those days do not exist in the worker's time zone".into());
    };
    match state
        .store
        .add_leave(
            worker_id,
            state.new_id(),
            &Leave { from, until },
            &note,
            state.now(),
        )
        .await
    {
        Ok(_) => Ok(htmx_redirect(&leave_href(worker_id))),
        Err(StoreError::Rejected { message }) => refuse(message),
        Err(err) => Err(ApiError::from(err).into()),
    }
}
