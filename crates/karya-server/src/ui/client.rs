//! A client's pages: its work items, submitting one (the form comes from the pack's input
//! schema), an item's detail with its trail and deliverable, the SLA and accuracy report with
//! charts, invoices and the policies decisions follow. Firm staff see the same pages.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use jiff::SignedDuration;
use karya_core::id::{ClientId, EngagementId, WorkItemId};
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Engagement, Priority, Role, WorkItem};
use karya_store::{NewWorkItem, PageRequest, WorkItemFilter};
use serde::Deserialize;
use serde_json::Value;

use super::charts::{bar_chart, daily_history, history_start, line_chart};
use super::forms::{self, FormData};
use super::{
    htmx_redirect, item_pill, layout, page, percent, relative, task_pill, when, Action, Block,
    Cell, Chart, Field, Form, Heading, Stat, Table, UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, Access, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Caller, Path, Query};
use crate::progress;
use crate::{check_text, AppState};

/// Days the report's charts cover.
pub const REPORT_DAYS: u32 = 30;
/// Items the report's charts read per engagement.
pub const REPORT_ITEMS_MAX: u32 = 20_000;
/// Events shown on an item's trail.
pub const TRAIL_EVENTS_MAX: usize = 500;
/// Engagements offered on the intake page.
pub const ENGAGEMENTS_MAX: u32 = 100;
/// Longest title accepted.
const TITLE_LEN_MAX: usize = 300;

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/clients/{client_id}/items",
            get(items),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/ui/clients/{client_id}/items/new",
            get(new_item).post(create_item),
            &[
                (Method::GET, Access::tenant(auth::STAFF, auth::CLIENT_ALL)),
                (Method::POST, Access::tenant(auth::STAFF, auth::CLIENT_ALL)),
            ],
        )
        .route(
            "/ui/clients/{client_id}/items/{work_item_id}",
            get(item_detail),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/ui/clients/{client_id}/items/{work_item_id}/deliverable",
            get(deliverable),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/ui/clients/{client_id}/report",
            get(report),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
        .route(
            "/ui/clients/{client_id}/invoices",
            get(invoices),
            &[(
                Method::GET,
                Access::tenant(auth::BILLING_READ, auth::CLIENT_ADMIN),
            )],
        )
        .route(
            "/ui/clients/{client_id}/policies",
            get(policies),
            &[(
                Method::GET,
                Access::tenant(auth::STAFF_READ, auth::CLIENT_ALL),
            )],
        )
}

fn nav_current(caller: &Principal, client_id: ClientId, page: &str) -> String {
    match caller.client_id() {
        Some(_) => format!("/ui/clients/{client_id}/{page}"),
        None => "/ui/clients".into(),
    }
}

pub(super) async fn engagements(
    state: &AppState,
    client_id: ClientId,
) -> Result<Vec<Engagement>, UiError> {
    Ok(state
        .store
        .tenant(client_id)
        .list_engagements(&PageRequest {
            limit: ENGAGEMENTS_MAX,
            after: None,
        })
        .await?
        .items)
}

async fn items(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let tenant = state.store.tenant(client_id);
    let now = state.now();
    let layout = layout(
        &caller,
        "Work items",
        &nav_current(&caller, client_id, "items"),
    );
    let page_of = tenant
        .list_work_items(
            &WorkItemFilter::default(),
            &PageRequest {
                limit: TABLE_ROWS_MAX,
                after: None,
            },
        )
        .await?;
    let mut table = Table::new(
        "items",
        &[
            "Work item",
            "Reference",
            "Priority",
            "State",
            "Received",
            "Due",
        ],
        "No work items yet",
        "Submit work with the Submit work button; it is routed to a qualified worker at once.",
    );
    let (mut open, mut delivered) = (0, 0);
    for item in page_of.items.iter().rev() {
        match item.state {
            WorkItemState::Delivered | WorkItemState::Closed => delivered += 1,
            WorkItemState::Cancelled => {}
            _ => open += 1,
        }
        let due = match tenant.sla_state(item.id).await? {
            Some(sla) => match (sla.resolution.met_at, sla.resolution.due_at) {
                (Some(met), _) => match sla.resolution.breached {
                    true => Cell::pill(format!("late, {}", when(met)), "bad"),
                    false => Cell::pill("on time", "ok"),
                },
                (None, Some(due)) => match sla.resolution.breached || due <= now {
                    true => Cell::pill("past due", "bad"),
                    false => Cell::text(relative(due, now)),
                },
                (None, None) => Cell::text("clock paused"),
            },
            None => Cell::text("–"),
        };
        table.rows.push(vec![
            Cell::link(
                &item.title,
                format!("/ui/clients/{client_id}/items/{}", item.id),
            ),
            Cell::mono(item.external_ref.as_deref().unwrap_or("")),
            Cell::text(item.priority.code()),
            item_pill(item.state),
            Cell::time(item.received_at),
            due,
        ]);
    }
    let mut actions = Vec::new();
    if matches!(
        caller.role(),
        Role::ClientAdmin | Role::ClientUser | Role::Admin | Role::Manager | Role::Lead
    ) {
        let mut submit = Action::link(
            "submit-work",
            "Submit work",
            format!("/ui/clients/{client_id}/items/new"),
        );
        submit.primary = true;
        actions.push(submit);
        actions.push(Action::link(
            "bulk-upload",
            "Bulk upload",
            format!("/ui/clients/{client_id}/bulk"),
        ));
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Work items".into(),
                sub: format!("{} — newest first.", client.name),
                actions,
            }),
            Block::Stats(vec![
                Stat::new("Open", open, "received or in progress"),
                Stat::new("Delivered", delivered, "").tone("ok"),
            ]),
            Block::Table(table),
        ],
    ))
}

#[derive(Deserialize)]
struct NewItemQuery {
    engagement: Option<String>,
}

/// The intake form for one engagement.
fn intake_form(
    client_id: ClientId,
    engagement: &Engagement,
    form: Option<&FormData>,
    errors: &BTreeMap<String, String>,
) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut intake = Form::new(
        "intake-form",
        format!("/ui/clients/{client_id}/items/new"),
        "Submit work item",
    );
    intake
        .fields
        .push(Field::new("engagement_id", "", "hidden").value(engagement.id.to_string()));
    let mut title = Field::new("title", "Title", "text")
        .value(value("title"))
        .required()
        .help("What this is, as your team calls it.");
    title.error = errors.get("title").cloned();
    intake.fields.push(title);
    intake.fields.push(
        Field::new("external_ref", "Your reference", "text")
            .value(value("external_ref"))
            .help("Optional: your ticket, claim or docket number. A repeat is refused."),
    );
    let priority = match value("priority") {
        p if p.is_empty() => "normal".to_string(),
        p => p,
    };
    intake.fields.push(
        Field::new("priority", "Priority", "select")
            .options(
                Priority::ALL
                    .iter()
                    .map(|p| (p.code().to_string(), p.code().to_string()))
                    .collect(),
            )
            .value(priority),
    );
    match progress::pack_for(engagement.service_line) {
        Some(pack) => {
            let values = form.map(FormData::schema_values).unwrap_or_default();
            intake
                .fields
                .extend(forms::fields_of(&pack.pack.input_schema, &values, errors));
            intake.note = format!("{} — {}", pack.pack.title, engagement.service_line.name());
        }
        None => {
            let mut input = Field::new("input", "Input (a JSON object)", "textarea")
                .value(match value("input") {
                    v if v.is_empty() => "{}".to_string(),
                    v => v,
                })
                .required();
            input.error = errors.get("input").cloned();
            intake.fields.push(input);
        }
    }
    intake
}

async fn new_item(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Query(query): Query<NewItemQuery>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    state.store.client(client_id).await?;
    let layout = layout(
        &caller,
        "Submit work",
        &format!("/ui/clients/{client_id}/items/new"),
    );
    let engagements = engagements(&state, client_id).await?;
    let chosen = match query.engagement.as_deref() {
        Some(id) => {
            let id: EngagementId = parse_id(id)?;
            engagements.iter().find(|e| e.id == id)
        }
        None => engagements.first(),
    };
    let mut blocks = vec![Block::Heading(Heading {
        title: "Submit work".into(),
        sub: "The form follows the service pack of the engagement.".into(),
        actions: engagements
            .iter()
            .filter(|e| Some(e.id) != chosen.map(|c| c.id))
            .map(|e| {
                Action::link(
                    &format!("engagement-{}", e.id),
                    &format!("Switch to {}", e.name),
                    format!("/ui/clients/{client_id}/items/new?engagement={}", e.id),
                )
            })
            .collect(),
    })];
    match chosen {
        Some(engagement) => {
            blocks.push(Block::Section(format!("Engagement: {}", engagement.name)));
            blocks.push(Block::Form(intake_form(
                client_id,
                engagement,
                None,
                &BTreeMap::new(),
            )));
        }
        None => blocks.push(Block::Notice(
            "info",
            "There is no engagement to submit work to yet; your account manager opens one.".into(),
        )),
    }
    Ok(page(&layout, &blocks))
}

async fn create_item(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    form: FormData,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let tenant = state.store.tenant(client_id);
    let engagement_id: EngagementId = parse_id(&form.get("engagement_id"))?;
    let engagement = tenant.engagement(engagement_id).await?;
    let mut errors = BTreeMap::new();
    let title = match check_text("title", &form.get("title"), TITLE_LEN_MAX) {
        Ok(title) => title.to_string(),
        Err(err) => {
            errors.insert("title".to_string(), err.message.replace("title ", ""));
            String::new()
        }
    };
    let priority = Priority::parse(&form.get("priority")).unwrap_or(Priority::Normal);
    let external_ref = Some(form.get("external_ref")).filter(|r| !r.is_empty());
    let pack = progress::pack_for(engagement.service_line);
    let input = match pack {
        Some(pack) => match forms::object_of(&pack.pack.input_schema, &form.schema_values()) {
            Ok(object) => match pack.validate_input(&object.to_string()) {
                Ok(()) => Some(object),
                Err(problems) => {
                    let (by_field, general) = forms::split_errors(&problems);
                    errors.extend(by_field);
                    if !general.is_empty() {
                        errors.insert("_".into(), general.join("; "));
                    }
                    None
                }
            },
            Err(by_field) => {
                errors.extend(by_field);
                None
            }
        },
        None => match serde_json::from_str::<Value>(&form.get("input")) {
            Ok(value) if value.is_object() => Some(value),
            _ => {
                errors.insert("input".into(), "must be a JSON object".into());
                None
            }
        },
    };
    let refuse = |errors: &BTreeMap<String, String>, message: String| {
        let mut again = intake_form(client_id, &engagement, Some(&form), errors);
        again.error = Some(message);
        Ok(super::form_with_errors(again))
    };
    let input = match (input, errors.is_empty()) {
        (Some(input), true) => input,
        _ => {
            let general = errors.get("_").cloned();
            return refuse(
                &errors,
                general.unwrap_or_else(|| "Some fields need attention.".into()),
            );
        }
    };
    let new = NewWorkItem {
        id: WorkItemId::from_uuid(state.new_id()),
        engagement_id,
        external_ref,
        title,
        priority,
        input: input.to_string(),
    };
    // Taken in and started in one transaction: its first step's task or job exists at once.
    let item = match tenant
        .create_and_start_work_item(&new, state.new_id(), state.now())
        .await
    {
        Ok(item) => item,
        Err(karya_store::StoreError::Conflict { message }) => {
            return refuse(&BTreeMap::new(), message)
        }
        Err(err) => return Err(err.into()),
    };
    Ok(htmx_redirect(&format!(
        "/ui/clients/{client_id}/items/{}",
        item.id
    )))
}

async fn load_item(
    state: &AppState,
    client_id: &str,
    work_item_id: &str,
) -> Result<(ClientId, WorkItem), UiError> {
    let client_id: ClientId = parse_id(client_id)?;
    let work_item_id: WorkItemId = parse_id(work_item_id)?;
    let item = state
        .store
        .tenant(client_id)
        .work_item(work_item_id)
        .await?;
    Ok((client_id, item))
}

/// The deliverable of a delivered item: the output of its last finished task.
async fn deliverable_of(state: &AppState, item: &WorkItem) -> Result<Option<Value>, UiError> {
    if !matches!(item.state, WorkItemState::Delivered | WorkItemState::Closed) {
        return Ok(None);
    }
    let tenant = state.store.tenant(item.client_id);
    let tasks = tenant.tasks_of(item.id).await?;
    match tasks.iter().rev().find(|t| t.state == TaskState::Done) {
        Some(task) => Ok(tenant.latest_output(task.id).await?),
        None => Ok(None),
    }
}

async fn item_detail(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let (client_id, item) = load_item(&state, &client_id, &work_item_id).await?;
    let tenant = state.store.tenant(client_id);
    let now = state.now();
    let engagement = tenant.engagement(item.engagement_id).await?;
    let layout = layout(
        &caller,
        &item.title,
        &nav_current(&caller, client_id, "items"),
    );
    let mut actions = vec![Action::link(
        "back",
        "All items",
        format!("/ui/clients/{client_id}/items"),
    )];
    let deliverable = deliverable_of(&state, &item).await?;
    if deliverable.is_some() {
        let mut download = Action::link(
            "download-deliverable",
            "Download deliverable",
            format!("/ui/clients/{client_id}/items/{}/deliverable", item.id),
        );
        download.primary = true;
        actions.push(download);
    }
    let mut facts = vec![
        ("State".to_string(), item_pill(item.state)),
        ("Engagement".into(), Cell::text(&engagement.name)),
        ("Priority".into(), Cell::text(item.priority.code())),
        ("Received".into(), Cell::time(item.received_at)),
    ];
    if let Some(reference) = &item.external_ref {
        facts.push(("Reference".into(), Cell::mono(reference)));
    }
    if let Some(sla) = tenant.sla_state(item.id).await? {
        let resolution = match (sla.resolution.met_at, sla.resolution.due_at) {
            (Some(met), _) => match sla.resolution.breached {
                true => Cell::pill(format!("delivered late, {}", when(met)), "bad"),
                false => Cell::pill(format!("delivered on time, {}", when(met)), "ok"),
            },
            (None, Some(due)) => Cell::text(format!("due {} ({})", when(due), relative(due, now))),
            (None, None) => Cell::text("clock paused"),
        };
        facts.push(("Resolution".into(), resolution));
        facts.push((
            "Target".into(),
            Cell::text(format!(
                "{} business hours",
                sla.resolution.target.as_hours()
            )),
        ));
    }
    let mut tasks = Table::new(
        "tasks",
        &["Step", "State", "Updated"],
        "No tasks yet",
        "Tasks open as the item moves through its steps.",
    );
    let staff = caller.client_id().is_none();
    for task in tenant.tasks_of(item.id).await? {
        let step = progress::step_title(&state, &task).await?;
        tasks.rows.push(vec![
            match staff {
                true => Cell::link(
                    step,
                    format!("/ui/clients/{client_id}/tasks/{}/explanations", task.id),
                ),
                false => Cell::text(step),
            },
            task_pill(task.state),
            Cell::time(task.updated_at),
        ]);
    }
    let mut events = tenant
        .entity_events("work_item", &item.id.to_string())
        .await?;
    for task in tenant.tasks_of(item.id).await? {
        events.extend(tenant.entity_events("task", &task.id.to_string()).await?);
    }
    events.sort_by_key(|e| e.seq);
    events.truncate(TRAIL_EVENTS_MAX);
    let mut trail = Table::new(
        "trail",
        &["#", "When", "Event", "Details"],
        "No events",
        "Every change of the item is recorded here.",
    );
    for event in &events {
        trail.rows.push(vec![
            Cell::mono(event.seq),
            Cell::time(event.at),
            Cell::text(event.kind.replace(['.', '_'], " ")),
            Cell::mono(trail_details(&event.payload)),
        ]);
    }
    let mut left = vec![Block::Facts(facts), Block::Section("Input".into())];
    left.push(Block::Pre(
        serde_json::from_str::<Value>(&item.input)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| item.input.clone()),
    ));
    let mut right = vec![Block::Section("Steps".into()), Block::Table(tasks)];
    right.push(Block::Section("Documents".into()));
    right.push(Block::Table(
        super::documents::documents_table(&state, client_id, item.id).await?,
    ));
    if let Some(output) = &deliverable {
        right.push(Block::Section("Deliverable".into()));
        right.push(Block::Pre(
            serde_json::to_string_pretty(output).unwrap_or_default(),
        ));
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: item.title.clone(),
                sub: engagement.service_line.name().to_string(),
                actions,
            }),
            Block::Split(left, right),
            Block::Section("Trail".into()),
            Block::Table(trail),
        ],
    ))
}

/// An event's payload in one short line: `key: value` pairs, outputs left out.
fn trail_details(payload: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(payload) else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| k.as_str() != "output")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

async fn deliverable(
    State(state): State<AppState>,
    Path((client_id, work_item_id)): Path<(String, String)>,
) -> UiResult {
    let (_, item) = load_item(&state, &client_id, &work_item_id).await?;
    let Some(output) = deliverable_of(&state, &item).await? else {
        return Err(UiError(ApiError::new(
            ErrorCode::NotFound,
            "this item has no deliverable yet",
        )));
    };
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "work_item_id": item.id.to_string(),
        "external_ref": item.external_ref,
        "title": item.title,
        "output": output,
    }))
    .map_err(|err| ApiError::internal(&err))?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"deliverable-{}.json\"",
        item.id
    )) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn report(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let tenant = state.store.tenant(client_id);
    let now = state.now();
    let layout = layout(
        &caller,
        "SLA & accuracy",
        &nav_current(&caller, client_id, "report"),
    );
    let mut blocks = vec![Block::Heading(Heading {
        title: "SLA & accuracy".into(),
        sub: format!(
            "{} — the last {REPORT_DAYS} days, per engagement.",
            client.name
        ),
        actions: Vec::new(),
    })];
    let engagements = engagements(&state, client_id).await?;
    if engagements.is_empty() {
        blocks.push(Block::Notice("info", "No engagements yet.".into()));
    }
    let from = history_start(REPORT_DAYS, now);
    for engagement in &engagements {
        let dates = tenant
            .item_dates(
                engagement.id,
                now + SignedDuration::from_secs(1),
                REPORT_ITEMS_MAX,
            )
            .await?;
        let points = daily_history(&dates, REPORT_DAYS, now);
        let labels: Vec<String> = points.iter().map(|p| p.label.clone()).collect();
        let in_period: Vec<_> = dates
            .iter()
            .filter(|d| d.received_at >= from && !d.cancelled)
            .collect();
        let delivered: Vec<_> = dates
            .iter()
            .filter(|d| d.resolved_at.is_some_and(|r| r >= from))
            .collect();
        let on_time = match delivered.len() {
            0 => None,
            n => Some(delivered.iter().filter(|d| !d.breached).count() as f64 / n as f64),
        };
        let accuracy = tenant.accuracy(engagement.id, from, now).await?;
        let backlog = points.last().map(|p| p.backlog).unwrap_or(0);
        blocks.push(Block::Section(format!(
            "{} · {}",
            engagement.name,
            engagement.service_line.name()
        )));
        blocks.push(Block::Stats(vec![
            Stat::new(
                "Received",
                in_period.len(),
                format!("last {REPORT_DAYS} days"),
            ),
            Stat::new("Delivered", delivered.len(), ""),
            Stat::new("On time", percent(on_time), "of deliveries").tone(match on_time {
                Some(r) if r >= 0.95 => "ok",
                Some(_) => "warn",
                None => "plain",
            }),
            Stat::new("Backlog", backlog, "open now"),
            Stat::new(
                "Accuracy",
                match accuracy.estimate.checks {
                    0 => "–".to_string(),
                    _ => percent(Some(accuracy.estimate.accuracy)),
                },
                format!(
                    "{} checks · target {}",
                    accuracy.estimate.checks,
                    percent(Some(accuracy.target))
                ),
            ),
        ]));
        let on_time_series: Vec<Option<f64>> = points
            .iter()
            .map(|p| p.on_time.map(|r| r * 100.0))
            .collect();
        let backlog_series: Vec<u32> = points.iter().map(|p| p.backlog).collect();
        blocks.push(Block::Split(
            vec![Block::Chart(Chart {
                title: "On-time delivery per day".into(),
                svg: line_chart("on-time delivery", &labels, &on_time_series, 100.0, "%"),
                caption: "Share of the day's deliveries within the resolution target; gaps are days without deliveries.".into(),
            })],
            vec![Block::Chart(Chart {
                title: "Backlog at the end of each day".into(),
                svg: bar_chart("backlog", &labels, &backlog_series),
                caption: "Items received and not yet delivered.".into(),
            })],
        ));
    }
    Ok(page(&layout, &blocks))
}

async fn invoices(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let layout = layout(
        &caller,
        "Invoices",
        &nav_current(&caller, client_id, "invoices"),
    );
    let today = state.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut table = Table::new(
        "invoices",
        &["Period", "", ""],
        "No periods",
        "Invoices are computed per calendar month.",
    );
    let mut month = today.first_of_month();
    for _ in 0..6 {
        let period = month.strftime("%Y-%m").to_string();
        let base = format!("/api/v1/clients/{client_id}/invoices/{period}");
        table.rows.push(vec![
            Cell::text(&period),
            Cell::link("View invoice", format!("{base}?format=html")),
            Cell::link("CSV", format!("{base}?format=csv")),
        ]);
        month = month
            .checked_sub(jiff::Span::new().months(1))
            .unwrap_or(month);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Invoices".into(),
                sub: format!(
                    "{} — each month's invoice with SLA credits, in {}.",
                    client.name, client.currency
                ),
                actions: Vec::new(),
            }),
            Block::Table(table),
        ],
    ))
}

async fn policies(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let client = state.store.client(client_id).await?;
    let layout = layout(
        &caller,
        "Policies",
        &nav_current(&caller, client_id, "policies"),
    );
    let policies = state.store.tenant(client_id).policies().await?;
    let mut table = Table::new(
        "policies",
        &["Policy", "Decision type", "Effective from", "Reason"],
        "No policies yet",
        "Policies bound the decisions taken on your behalf; the firm's defaults apply until you set your own.",
    );
    for policy in &policies {
        table.rows.push(vec![
            Cell::mono(policy.label()),
            Cell::text(policy.decision_type.as_deref().unwrap_or("every type")),
            Cell::time(policy.effective_from),
            Cell::text(policy.reason.as_deref().unwrap_or("")),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Policies".into(),
                sub: format!("The rules decisions follow for {}.", client.name),
                actions: Vec::new(),
            }),
            Block::Table(table),
        ],
    ))
}
