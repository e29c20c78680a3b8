//! A client's bulk upload: a CSV, JSON Lines or XLSX file of work items for one engagement.
//!
//! The page's form sends the file straight from the browser to the API's bulk import
//! (`POST /api/v1/clients/{client_id}/engagements/{engagement_id}/imports`, see `intake`), with
//! the session's CSRF token, so the import is the one clients script against: all rows or none.
//! `assets/app.js` shows the bytes sent while uploading, then the count imported or the table of
//! refused rows (row, column, problem).

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::id::ClientId;
use karya_core::model::Role;

use super::{layout, page, Action, Block, Heading, UiResult, Upload};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path};
use crate::intake::{FILE_BYTES_MAX, ROWS_MAX, ROW_ERRORS_MAX, XLSX_MEDIA_TYPE};
use crate::AppState;

pub fn api() -> Api {
    Api::new().route(
        "/ui/clients/{client_id}/bulk",
        get(bulk_page),
        &[(Method::GET, Access::tenant(auth::STAFF, auth::CLIENT_ALL))],
    )
}

/// The file types the import takes, by extension.
const ACCEPT: [(&str, &str); 4] = [
    ("csv", "text/csv"),
    ("jsonl", "application/x-ndjson"),
    ("ndjson", "application/x-ndjson"),
    ("xlsx", XLSX_MEDIA_TYPE),
];

async fn bulk_page(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let current = match caller.role() {
        Role::ClientAdmin | Role::ClientUser => format!("/ui/clients/{client_id}/bulk"),
        _ => "/ui/clients".into(),
    };
    let layout = layout(&caller, "Bulk upload", &current);
    let engagements = super::client::engagements(&state, client_id).await?;
    let heading = Block::Heading(Heading {
        title: "Bulk upload".into(),
        sub: format!(
            "{} — many work items at once, from a CSV, JSON Lines or XLSX file.",
            client.name
        ),
        actions: vec![Action::link(
            "items",
            "Work items",
            format!("/ui/clients/{client_id}/items"),
        )],
    });
    if engagements.is_empty() {
        return Ok(page(
            &layout,
            &[
                heading,
                Block::Notice(
                    "info",
                    "There is no engagement to upload to yet; the firm opens one for each service \
                     you contract."
                        .into(),
                ),
            ],
        ));
    }
    let upload = Upload {
        id: "bulk-upload".into(),
        url: format!("/api/v1/clients/{client_id}/engagements/{{choice}}/imports"),
        choice_label: "Engagement".into(),
        choices: engagements
            .iter()
            .map(|e| {
                (
                    e.id.to_string(),
                    format!("{} ({})", e.name, e.service_line.name()),
                )
            })
            .collect(),
        accept: ACCEPT.to_vec(),
        help: format!(
            "Up to {} MiB and {} rows. Every row is checked first: if any is refused, nothing \
             is imported and the rows at fault are listed.",
            FILE_BYTES_MAX / (1024 * 1024),
            ROWS_MAX
        ),
        done_href: format!("/ui/clients/{client_id}/items"),
    };
    Ok(page(
        &layout,
        &[
            heading,
            Block::Upload(upload),
            Block::Section("How to lay out the file".into()),
            Block::Text(
                "One work item per row. A CSV or XLSX file starts with a header row; a JSON Lines \
                 file has one JSON object per line."
                    .into(),
            ),
            Block::Facts(vec![
                (
                    "title".into(),
                    super::Cell::text("Required: what the item is, as your team would name it."),
                ),
                (
                    "priority".into(),
                    super::Cell::text("Optional: low, normal (the default), high or urgent."),
                ),
                (
                    "external_ref".into(),
                    super::Cell::text(
                        "Optional: your reference; unique within the engagement, so a file sent \
                         twice is refused rather than imported twice.",
                    ),
                ),
                (
                    "any other column".into(),
                    super::Cell::text(
                        "Becomes a field of the item's input, which must match the service's \
                         intake form (its required fields, their names and values). A cell \
                         holding a JSON object or array ({…} or […]) becomes that object or \
                         array, for the form's nested fields; a number stays a number, and \
                         true or false a yes or no.",
                    ),
                ),
            ]),
            Block::Pre(
                "title,priority,external_ref,ticket_number,ticket_type,requester,impact,urgency,short_description\n\
                 Laptop will not boot,high,INC-1042,INC0001042,incident,\"{\"\"employee_id\"\": \"\"E1001\"\", \"\"email\"\": \"\"anna@example.com\"\"}\",individual,high,Black screen after update"
                    .into(),
            ),
            Block::Text(format!(
                "A refused file lists up to {ROW_ERRORS_MAX} rows at fault and counts the rest."
            )),
        ],
    ))
}
