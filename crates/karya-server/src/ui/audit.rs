//! The auditor's page: a client's event trail, page by page, with the verify result of its
//! hash chain.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::id::ClientId;
use karya_store::PageRequest;
use serde::Deserialize;

use super::{layout, page, Action, Block, Cell, Heading, Stat, Table, UiResult, TABLE_ROWS_MAX};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path, Query};
use crate::AppState;

pub fn api() -> Api {
    Api::new().route(
        "/ui/clients/{client_id}/audit",
        get(trail),
        &[(
            Method::GET,
            Access::tenant(auth::STAFF_READ, auth::CLIENT_ADMIN),
        )],
    )
}

#[derive(Deserialize)]
struct TrailQuery {
    after: Option<String>,
}

async fn trail(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<TrailQuery>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let current = match caller.client_id() {
        Some(_) => format!("/ui/clients/{client_id}/audit"),
        None => "/ui/clients".into(),
    };
    let layout = layout(&caller, "Event trail", &current);
    let status = state.store.verify_chain(client_id).await?;
    let events = state
        .store
        .tenant(client_id)
        .events(&PageRequest {
            limit: TABLE_ROWS_MAX,
            after: query.after,
        })
        .await?;
    let mut table = Table::new(
        "events",
        &["#", "When", "Event", "Entity", "Hash"],
        "No events",
        "Every change to this client's data is recorded here in a hash chain.",
    );
    for event in &events.items {
        table.rows.push(vec![
            Cell::mono(event.seq),
            Cell::time(event.at),
            Cell::text(&event.kind),
            Cell::mono(format!("{} {}", event.entity_type, event.entity_id)),
            Cell::mono(event.hash.chars().take(12).collect::<String>()),
        ]);
    }
    let verdict = match &status.broken {
        None => Block::Notice(
            "ok",
            format!(
                "Chain intact: {} events verified, each hash linking to the one before.",
                status.events_verified
            ),
        ),
        Some(broken) => Block::Notice(
            "bad",
            format!("Chain broken at event {}: {}", broken.seq, broken.reason),
        ),
    };
    let actions = match &events.next_after {
        Some(after) => vec![Action::link(
            "next-page",
            "Next page",
            format!("/ui/clients/{client_id}/audit?after={after}"),
        )],
        None => Vec::new(),
    };
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Event trail".into(),
                sub: format!("{} — read-only, oldest first.", client.name),
                actions,
            }),
            verdict,
            Block::Stats(vec![Stat::new(
                "Events verified",
                status.events_verified,
                "",
            )]),
            Block::Table(table),
        ],
    ))
}
