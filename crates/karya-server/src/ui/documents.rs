//! The documents of a work item in the web UI: a viewer page per document (a PDF in a frame, an
//! image inline, anything else as a download) and the documents table that the item and task
//! pages show.

use askama::Template;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::get;
use karya_core::id::{ClientId, DocumentId, WorkItemId};

use super::{html, layout, Action, Block, Cell, Heading, Layout, Table, UiResult};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path};
use crate::AppState;

pub fn api() -> Api {
    Api::new().route(
        "/ui/clients/{client_id}/items/{work_item_id}/documents/{document_id}",
        get(viewer),
        &[(
            Method::GET,
            Access::tenant_or_holder(auth::WORK_READ, auth::CLIENT_ALL),
        )],
    )
}

/// Where the API serves a document (`inline` to show it in the page).
pub fn download_href(client_id: ClientId, work_item_id: WorkItemId, id: DocumentId) -> String {
    format!("/api/v1/clients/{client_id}/work-items/{work_item_id}/documents/{id}")
}

pub fn viewer_href(client_id: ClientId, work_item_id: WorkItemId, id: DocumentId) -> String {
    format!("/ui/clients/{client_id}/items/{work_item_id}/documents/{id}")
}

/// A size in bytes as people read it.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// The documents of a work item as a table: name (to the viewer), type, size, when, download.
pub(crate) async fn documents_table(
    state: &AppState,
    client_id: ClientId,
    work_item_id: WorkItemId,
) -> Result<Table, super::UiError> {
    let documents = state
        .store
        .tenant(client_id)
        .documents(work_item_id)
        .await?;
    let mut table = Table::new(
        "documents",
        &["Document", "Type", "Size", "Received", ""],
        "No documents",
        "Files sent with the item (scans, PDFs, spreadsheets) are listed here.",
    );
    for d in &documents {
        table.rows.push(vec![
            Cell::link(&d.name, viewer_href(client_id, work_item_id, d.id)),
            Cell::text(&d.media_type),
            Cell::text(human_size(d.size)),
            Cell::time(d.created_at),
            Cell::link("Download", download_href(client_id, work_item_id, d.id)),
        ]);
    }
    Ok(table)
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage<'a> {
    layout: &'a Layout,
    blocks: &'a [Block],
    /// `pdf`, `image` or `other`.
    kind: &'a str,
    name: &'a str,
    inline_href: &'a str,
}

async fn viewer(
    State(state): State<AppState>,
    Path((client_id, work_item_id, document_id)): Path<(String, String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let work_item_id: WorkItemId = parse_id(&work_item_id)?;
    let document_id: DocumentId = parse_id(&document_id)?;
    let tenant = state.store.tenant(client_id);
    let item = tenant.work_item(work_item_id).await?;
    let document = tenant.document(work_item_id, document_id).await?;
    let kind = match document.media_type.as_str() {
        "application/pdf" => "pdf",
        // Browsers do not show TIFF; it is downloaded.
        "image/png" | "image/jpeg" => "image",
        _ => "other",
    };
    let download = download_href(client_id, work_item_id, document.id);
    let inline = format!("{download}?disposition=inline");
    let mut actions = Vec::new();
    // The item page is the client's and staff's; a worker goes back to their task.
    if caller.client_id().is_some() || auth::STAFF_READ.contains(&caller.role()) {
        actions.push(Action::link(
            "back",
            "Back to the item",
            format!("/ui/clients/{client_id}/items/{work_item_id}"),
        ));
    }
    let mut get = Action::link("download", "Download", download);
    get.primary = true;
    actions.push(get);
    let blocks = [
        Block::Heading(Heading {
            title: document.name.clone(),
            sub: item.title.clone(),
            actions,
        }),
        Block::Facts(vec![
            ("Type".to_string(), Cell::text(&document.media_type)),
            ("Size".into(), Cell::text(human_size(document.size))),
            ("Received".into(), Cell::time(document.created_at)),
            ("SHA-256".into(), Cell::mono(&document.sha256)),
        ]),
    ];
    let layout = layout(&caller, &document.name, "");
    Ok(html(
        StatusCode::OK,
        DocumentPage {
            layout: &layout,
            blocks: &blocks,
            kind,
            name: &document.name,
            inline_href: &inline,
        }
        .render(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1), "5.0 MiB");
    }
}
