//! Pages for team leads and operations managers: the live board of queues (refreshed by
//! server-sent events), SLA risk, the workforce, the QA board, the routing explanation of an
//! assignment, and the list of clients.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::Method;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::SignedDuration;
use karya_core::id::{ClientId, TaskId};
use karya_core::lifecycle::TaskState;
use karya_store::{PageRequest, StoreError};

use super::{
    fragment_text, layout, page, percent, relative, when, Action, Block, Cell, Heading, Stat,
    Table, UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path};
use crate::AppState;

/// How often the live board polls the store for its events.
pub const BOARD_REFRESH: Duration = Duration::from_secs(3);
/// How long one event stream lasts before the browser reconnects: bounds the life of a
/// forgotten tab's polling and lets a restarted server shed old streams.
pub const EVENT_STREAM_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Items due within this horizon count as at risk.
pub const RISK_HORIZON: SignedDuration = SignedDuration::from_hours(4);
/// Clients and engagements the QA board covers, each.
pub const QA_BOARD_MAX: u32 = 100;
/// The period of the QA board's accuracy.
pub const QA_PERIOD: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Task states shown as board columns, in flow order.
const BOARD_STATES: [TaskState; 5] = [
    TaskState::Ready,
    TaskState::Assigned,
    TaskState::InProgress,
    TaskState::InReview,
    TaskState::Rework,
];

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/board",
            get(board),
            &[(Method::GET, Access::Firm(auth::STAFF))],
        )
        .route(
            "/ui/events",
            get(events),
            &[(Method::GET, Access::Firm(auth::STAFF))],
        )
        .route(
            "/ui/sla-risk",
            get(sla_risk),
            &[(Method::GET, Access::Firm(auth::STAFF))],
        )
        .route(
            "/ui/workforce",
            get(workforce),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
        .route(
            "/ui/qa",
            get(qa_board),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
        .route(
            "/ui/clients",
            get(clients),
            &[(Method::GET, Access::Firm(auth::STAFF_READ))],
        )
        .route(
            "/ui/clients/{client_id}/tasks/{task_id}/explanations",
            get(explanations),
            &[(Method::GET, Access::tenant(auth::STAFF_READ, auth::NOBODY))],
        )
}

/// The board's content: totals and one row per service line.
async fn board_blocks(state: &AppState) -> Result<Vec<Block>, UiError> {
    let counts = state.store.queue_counts().await?;
    let mut lines: BTreeMap<String, [i64; BOARD_STATES.len() + 1]> = BTreeMap::new();
    for count in &counts {
        let row = lines.entry(count.service_line.clone()).or_default();
        let column = BOARD_STATES
            .iter()
            .position(|s| *s == count.state)
            .unwrap_or(BOARD_STATES.len());
        row[column] += count.tasks;
    }
    let total = |state: TaskState| -> i64 {
        counts
            .iter()
            .filter(|c| c.state == state)
            .map(|c| c.tasks)
            .sum()
    };
    let at_risk = state
        .store
        .sla_risk(state.now() + RISK_HORIZON, TABLE_ROWS_MAX)
        .await?;
    let breached = at_risk.iter().filter(|r| r.breached).count();
    let mut table = Table::new(
        "board",
        &[
            "Service line",
            "Ready",
            "Assigned",
            "In progress",
            "In review",
            "Rework",
            "Other",
        ],
        "No open tasks",
        "Queues fill as clients submit work items.",
    );
    for (line, row) in &lines {
        let name = line
            .parse::<karya_core::service_line::ServiceLine>()
            .map(|l| l.name().to_string())
            .unwrap_or_else(|_| line.clone());
        let mut cells = vec![Cell::text(name)];
        cells.extend(row.iter().map(|n| match n {
            0 => Cell::text("·"),
            n => Cell::text(n),
        }));
        table.rows.push(cells);
    }
    let by_site = site_table(state).await?;
    Ok(vec![
        Block::Stats(vec![
            Stat::new("Ready", total(TaskState::Ready), "waiting for a worker"),
            Stat::new(
                "Working",
                total(TaskState::Assigned) + total(TaskState::InProgress),
                "assigned or in progress",
            ),
            Stat::new("In review", total(TaskState::InReview), "sampled for QA"),
            Stat::new("At SLA risk", at_risk.len(), format!("{breached} past due")).tone(
                match (at_risk.len(), breached) {
                    (_, b) if b > 0 => "bad",
                    (0, _) => "ok",
                    _ => "warn",
                },
            ),
        ]),
        Block::Section("By service line".into()),
        Block::Table(table),
        Block::Section("By site".into()),
        Block::Table(by_site),
        Block::Text(format!("Updated {}.", when(state.now()))),
    ])
}

/// Open tasks per site: where the worker holding (or offered) each task works.
async fn site_table(state: &AppState) -> Result<Table, UiError> {
    let counts = state.store.site_queue_counts().await?;
    let sites = state.store.sites().await?;
    let mut table = Table::new(
        "board-sites",
        &[
            "Site",
            "Offered",
            "Assigned",
            "In progress",
            "In review",
            "Rework",
            "Other",
        ],
        "No open tasks",
        "Tasks count at the site of the worker who holds them.",
    );
    const SITE_STATES: [TaskState; 5] = [
        TaskState::Offered,
        TaskState::Assigned,
        TaskState::InProgress,
        TaskState::InReview,
        TaskState::Rework,
    ];
    let mut rows: BTreeMap<(bool, String), [i64; SITE_STATES.len() + 1]> = BTreeMap::new();
    for count in &counts {
        let name = match count.site_id {
            Some(id) => sites
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| id.to_string()),
            None => "Not held by anyone".into(),
        };
        let row = rows.entry((count.site_id.is_none(), name)).or_default();
        let column = SITE_STATES
            .iter()
            .position(|s| *s == count.state)
            .unwrap_or(SITE_STATES.len());
        row[column] += count.tasks;
    }
    for ((_, name), row) in &rows {
        let mut cells = vec![Cell::text(name)];
        cells.extend(row.iter().map(|n| match n {
            0 => Cell::text("·"),
            n => Cell::text(n),
        }));
        table.rows.push(cells);
    }
    Ok(table)
}

async fn board(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Live board", "/ui/board");
    let inner = board_blocks(&state).await?;
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Live board".into(),
                sub: format!(
                    "Open tasks per service line and per site; refreshes every {} s.",
                    BOARD_REFRESH.as_secs()
                ),
                actions: Vec::new(),
            }),
            Block::Live("/ui/events".into(), inner),
        ],
    ))
}

/// Server-sent events: the board's HTML every [`BOARD_REFRESH`], for [`EVENT_STREAM_LIFETIME`].
async fn events(State(state): State<AppState>) -> Response {
    let rounds = (EVENT_STREAM_LIFETIME.as_secs() / BOARD_REFRESH.as_secs()).max(1);
    let stream = futures_util::stream::unfold(0u64, move |round| {
        let state = state.clone();
        async move {
            if round >= rounds {
                return None;
            }
            if round > 0 {
                tokio::time::sleep(BOARD_REFRESH).await;
            }
            let event = match board_blocks(&state).await {
                Ok(blocks) => Event::default().event("board").data(fragment_text(&blocks)),
                Err(UiError(err)) => {
                    tracing::warn!(error = %err.message, "board refresh failed");
                    Event::default()
                        .event("stale")
                        .data("the board could not be refreshed")
                }
            };
            Some((Ok::<Event, Infallible>(event), round + 1))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn sla_risk(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "SLA risk", "/ui/sla-risk");
    let now = state.now();
    let items = state
        .store
        .sla_risk(now + RISK_HORIZON, TABLE_ROWS_MAX)
        .await?;
    let mut table = Table::new(
        "sla-risk",
        &[
            "Work item",
            "Client",
            "State",
            "Due",
            "Status",
            "Held by",
            "",
        ],
        "Nothing at risk",
        "Open items due within the next hours, or past due, appear here.",
    );
    let mut names: BTreeMap<ClientId, String> = BTreeMap::new();
    for item in &items {
        if let std::collections::btree_map::Entry::Vacant(entry) = names.entry(item.client_id) {
            entry.insert(state.store.client(item.client_id).await?.name);
        }
        table.rows.push(vec![
            Cell::link(
                &item.title,
                format!("/ui/clients/{}/items/{}", item.client_id, item.work_item_id),
            ),
            Cell::text(names.get(&item.client_id).cloned().unwrap_or_default()),
            super::item_pill(item.state),
            Cell::text(format!(
                "{} ({})",
                when(item.due_at),
                relative(item.due_at, now)
            )),
            match (
                item.breached || item.due_at <= now,
                item.warn_at.is_some_and(|w| w <= now),
            ) {
                (true, _) => Cell::pill("past due", "bad"),
                (false, true) => Cell::pill("warning", "warn"),
                (false, false) => Cell::pill("due soon", "info"),
            },
        ]);
        let (held_by, actions) = risk_actions(&state, item).await?;
        if let Some(row) = table.rows.last_mut() {
            row.push(held_by);
            row.push(actions);
        }
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "SLA risk".into(),
                sub: format!(
                    "Open items past due, past their warning point, or due within {} h. \
                     Reassign gives the task to the best eligible worker now; Choose… names one.",
                    RISK_HORIZON.as_hours()
                ),
                actions: Vec::new(),
            }),
            Block::Table(table),
        ],
    ))
}

/// Who holds an at-risk item's open task, and the buttons to move it.
async fn risk_actions(
    state: &AppState,
    item: &karya_store::RiskItem,
) -> Result<(Cell, Cell), UiError> {
    let tenant = state.store.tenant(item.client_id);
    let Some(task) = super::reassign::movable_task(&tenant, item.work_item_id).await? else {
        return Ok((Cell::text("–"), Cell::text("")));
    };
    let holder = match state.store.active_assignee(task.id).await? {
        Some(id) => Cell::text(state.store.worker(id).await?.name),
        None => Cell::pill(task.state.code().replace('_', " "), "plain"),
    };
    let href = super::reassign::reassign_href(&task);
    let actions = Cell::actions(vec![
        Action::post(&format!("reassign-{}", task.id), "Reassign", href.clone()),
        Action::link(&format!("choose-{}", task.id), "Choose…", href),
    ]);
    Ok((holder, actions))
}

async fn workforce(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Workforce", "/ui/workforce");
    let now = state.now();
    let workers = state.store.workers(TABLE_ROWS_MAX).await?;
    let sites = state.store.sites().await?;
    /// One site's people: (on shift, available, on break, tasks held) and their rows.
    #[derive(Default)]
    struct Group {
        on_shift: usize,
        available: usize,
        on_break: usize,
        held: usize,
        rows: Vec<(bool, Vec<Cell>)>,
    }
    // Sites in name order, then the workers with no site.
    let mut groups: Vec<(Option<karya_core::model::Site>, Group)> = sites
        .iter()
        .cloned()
        .map(|site| (Some(site), Group::default()))
        .collect();
    groups.push((None, Group::default()));
    let (mut available, mut on_shift_total) = (0, 0);
    for worker in &workers {
        let held = state
            .store
            .worker_tasks(worker.id, TABLE_ROWS_MAX)
            .await?
            .len();
        let group = &mut groups
            .iter_mut()
            .find(|(site, _)| site.as_ref().map(|s| s.id) == worker.site_id)
            .unwrap_or_else(|| unreachable!("the last group takes workers without a site"))
            .1;
        let (presence, since, on_shift) = match state.store.routed_worker(worker.id).await {
            Ok(routed) => {
                let tone = match routed.presence {
                    karya_core::workforce::Presence::Available => "ok",
                    karya_core::workforce::Presence::Busy => "info",
                    karya_core::workforce::Presence::Break => "warn",
                    karya_core::workforce::Presence::Offline => "plain",
                };
                let shift_end = routed.profile.shift.shift_end_at(now);
                if shift_end.is_some() {
                    group.on_shift += 1;
                    on_shift_total += 1;
                    match routed.presence {
                        karya_core::workforce::Presence::Available => {
                            group.available += 1;
                            available += 1;
                        }
                        karya_core::workforce::Presence::Break => group.on_break += 1,
                        _ => {}
                    }
                }
                let zone = routed.profile.shift.time_zone.clone();
                (
                    Cell::pill(routed.presence.code(), tone),
                    relative(routed.presence_since, now),
                    shift_end.map(|end| format!("until {}", end.to_zoned(zone).strftime("%H:%M"))),
                )
            }
            Err(StoreError::NotFound { .. }) => {
                (Cell::pill("no profile", "plain"), String::new(), None)
            }
            Err(err) => return Err(err.into()),
        };
        group.held += held;
        let shift_cell = match &on_shift {
            Some(until) => Cell::pill(until, "ok"),
            None => Cell::text("off shift"),
        };
        group.rows.push((
            on_shift.is_some(),
            vec![
                match auth::STAFF.contains(&caller.role()) {
                    true => Cell::link(&worker.name, super::leave::leave_href(worker.id)),
                    false => Cell::text(&worker.name),
                },
                Cell::text(worker.designation.code().replace('_', " ")),
                presence,
                Cell::text(since),
                shift_cell,
                Cell::text(held),
            ],
        ));
    }
    let mut summary = Table::new(
        "workforce-sites",
        &[
            "Site",
            "Local time",
            "On shift",
            "Available",
            "On break",
            "Tasks held",
        ],
        "No workers yet",
        "An administrator adds sites under Admin: sites and workers under Admin: workers.",
    );
    let mut blocks = Vec::new();
    for (site, group) in &mut groups {
        if group.rows.is_empty() {
            continue;
        }
        let (name, local) = match site {
            Some(site) => (
                site.name.clone(),
                jiff::tz::TimeZone::get(&site.time_zone)
                    .map(|zone| {
                        format!(
                            "{} ({})",
                            now.to_zoned(zone).strftime("%H:%M"),
                            site.time_zone
                        )
                    })
                    .unwrap_or_else(|_| site.time_zone.clone()),
            ),
            None => ("No site".to_string(), "–".to_string()),
        };
        summary.rows.push(vec![
            Cell::text(&name),
            Cell::text(&local),
            Cell::text(group.on_shift),
            Cell::text(group.available),
            Cell::text(group.on_break),
            Cell::text(group.held),
        ]);
        // On shift first, then by name (the list came in name order).
        group.rows.sort_by_key(|(on, _)| !*on);
        let mut table = Table::new(
            &format!("workforce-{}", blocks.len() / 2),
            &[
                "Worker",
                "Designation",
                "Presence",
                "Since",
                "Shift",
                "Tasks held",
            ],
            "Nobody here",
            "",
        );
        table.rows = group.rows.drain(..).map(|(_, row)| row).collect();
        blocks.push(Block::Section(format!("{name} · {local}")));
        blocks.push(Block::Table(table));
    }
    let mut page_blocks = vec![
        Block::Heading(Heading {
            title: "Workforce".into(),
            sub: "Who is on shift now at each site, their presence and what they hold. \
                  A name leads to the worker's leave."
                .into(),
            actions: Vec::new(),
        }),
        Block::Stats(vec![
            Stat::new(
                "Workers",
                workers.len(),
                match sites.len() {
                    1 => "at 1 site".to_string(),
                    n => format!("at {n} sites"),
                },
            ),
            Stat::new("On shift now", on_shift_total, ""),
            Stat::new("Available now", available, "on shift and available").tone("ok"),
        ]),
        Block::Section("On shift now, by site".into()),
        Block::Table(summary),
    ];
    page_blocks.extend(blocks);
    Ok(page(&layout, &page_blocks))
}

async fn qa_board(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "QA board", "/ui/qa");
    let now = state.now();
    let page_request = PageRequest {
        limit: QA_BOARD_MAX,
        after: None,
    };
    let clients = state.store.list_clients(&page_request).await?;
    let mut table = Table::new(
        "qa-board",
        &[
            "Client",
            "Engagement",
            "Accuracy",
            "Interval",
            "Checks",
            "Target",
            "Status",
        ],
        "No engagements yet",
        "Accuracy shows once reviewed work exists.",
    );
    for client in &clients.items {
        let tenant = state.store.tenant(client.id);
        for engagement in tenant.list_engagements(&page_request).await?.items {
            let report = tenant.accuracy(engagement.id, now - QA_PERIOD, now).await?;
            let checks = report.estimate.checks;
            let status = report.status.code();
            let tone = match status {
                "on_target" | "met" => "ok",
                "below_target" | "missed" => "bad",
                _ => "warn",
            };
            table.rows.push(vec![
                Cell::link(&client.name, format!("/ui/clients/{}/report", client.id)),
                Cell::text(&engagement.name),
                Cell::text(match checks {
                    0 => "–".to_string(),
                    _ => percent(Some(report.estimate.accuracy)),
                }),
                Cell::text(match checks {
                    0 => "–".to_string(),
                    _ => format!(
                        "{} – {}",
                        percent(Some(report.estimate.interval.low)),
                        percent(Some(report.estimate.interval.high))
                    ),
                }),
                Cell::text(checks),
                Cell::text(percent(Some(report.target))),
                Cell::pill(status.replace('_', " "), tone),
            ]);
        }
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "QA board".into(),
                sub: format!(
                    "Accuracy per engagement over the last {} days, from reviews, consensus and gold.",
                    QA_PERIOD.as_hours() / 24
                ),
                actions: Vec::new(),
            }),
            Block::Table(table),
        ],
    ))
}

async fn clients(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Clients", "/ui/clients");
    let clients = state
        .store
        .list_clients(&PageRequest {
            limit: TABLE_ROWS_MAX,
            after: None,
        })
        .await?;
    let mut table = Table::new(
        "clients",
        &["Client", "Currency", "Since", "", ""],
        "No clients yet",
        "An administrator adds clients under Admin: clients.",
    );
    for client in &clients.items {
        let base = format!("/ui/clients/{}", client.id);
        table.rows.push(vec![
            Cell::link(&client.name, format!("{base}/items")),
            Cell::text(client.currency.to_string()),
            Cell::time(client.created_at),
            Cell::link("SLA report", format!("{base}/report")),
            Cell::link("Event trail", format!("{base}/audit")),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Clients".into(),
                sub: "Every client's work items, SLA report and event trail.".into(),
                actions: Vec::new(),
            }),
            Block::Table(table),
        ],
    ))
}

async fn explanations(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    let item = tenant.work_item(task.work_item_id).await?;
    let layout = layout(&caller, "Routing explanation", "/ui/board");
    let stored = tenant.explanations(task_id).await?;
    let mut blocks = vec![Block::Heading(Heading {
        title: format!(
            "Why this task went where it went: {}",
            task.step.replace('_', " ")
        ),
        sub: item.title.clone(),
        actions: Vec::new(),
    })];
    if stored.is_empty() {
        blocks.push(Block::Notice(
            "info",
            "No routing decision is recorded for this task yet.".into(),
        ));
    }
    for explanation in &stored {
        let worker = match explanation.worker_id {
            Some(id) => match state.store.worker(id).await {
                Ok(worker) => worker.name,
                Err(StoreError::NotFound { .. }) => id.to_string(),
                Err(err) => return Err(err.into()),
            },
            None => "nobody".into(),
        };
        blocks.push(Block::Section(format!(
            "{} · {}",
            when(explanation.decided_at),
            worker
        )));
        blocks.push(Block::Facts(vec![
            ("Path".into(), Cell::text(&explanation.path)),
            ("Rule".into(), Cell::text(&explanation.rule)),
        ]));
        blocks.push(Block::Pre(
            serde_json::from_str::<serde_json::Value>(&explanation.explanation)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| explanation.explanation.clone()),
        ));
    }
    Ok(page(&layout, &blocks))
}
