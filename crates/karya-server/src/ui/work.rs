//! The knowledge worker's pages: the inbox with *Get next*, the task page with the step's form
//! generated from the pack, and the worker's own quality.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use karya_core::id::{ClientId, TaskId, WorkerId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Role, Task};
use karya_store::{PageRequest, StoreError, PAGE_LIMIT_MAX};
use serde_json::Value;

use super::forms::{self, FormData};
use super::{
    htmx_redirect, layout, page, percent, relative, task_pill, Action, Block, Cell, Field, Form,
    Heading, Stat, Table, UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, Access, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::extract::{parse_id, Caller, Path};
use crate::progress;
use crate::AppState;

/// Firm roles that hold tasks themselves.
pub(super) const HOLDERS: &[Role] = &[Role::Worker, Role::Reviewer, Role::Lead];

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/inbox",
            get(inbox),
            &[(Method::GET, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/inbox/next",
            post(get_next),
            &[(Method::POST, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/quality",
            get(quality),
            &[(Method::GET, Access::Firm(HOLDERS))],
        )
        .route(
            "/ui/clients/{client_id}/tasks/{task_id}",
            get(task_page),
            &[(
                Method::GET,
                Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
            )],
        )
        .route(
            "/ui/clients/{client_id}/tasks/{task_id}/submit",
            post(submit),
            &[(
                Method::POST,
                Access::tenant_or_holder(auth::STAFF, auth::NOBODY),
            )],
        )
}

pub(super) fn own_worker(caller: &Principal) -> Result<WorkerId, UiError> {
    caller.worker_id().ok_or_else(|| {
        UiError(ApiError::new(
            ErrorCode::Forbidden,
            "this account is not linked to a worker",
        ))
    })
}

pub fn task_href(task: &Task) -> String {
    format!("/ui/clients/{}/tasks/{}", task.client_id, task.id)
}

async fn inbox(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Inbox", "/ui/inbox");
    let heading = Heading {
        title: "Inbox".into(),
        sub: "The tasks assigned to you, most urgent first.".into(),
        actions: vec![Action::post(
            "get-next",
            "Get next",
            "/ui/inbox/next".into(),
        )],
    };
    let Some(worker_id) = caller.worker_id() else {
        return Ok(page(
            &layout,
            &[
                Block::Heading(heading),
                Block::Notice(
                    "info",
                    "This account is not linked to a worker, so no task is routed to it.".into(),
                ),
            ],
        ));
    };
    let now = state.now();
    let tasks = state.store.worker_tasks(worker_id, TABLE_ROWS_MAX).await?;
    let mut table = Table::new(
        "inbox",
        &["Task", "Work item", "Priority", "State", "Updated"],
        "Nothing assigned to you",
        "Press Get next to take the most suitable ready task.",
    );
    for task in &tasks {
        let item = state
            .store
            .tenant(task.client_id)
            .work_item(task.work_item_id)
            .await?;
        table.rows.push(vec![
            Cell::link(progress::step_title(&state, task).await?, task_href(task)),
            Cell::text(&item.title),
            Cell::text(task.priority.code()),
            task_pill(task.state),
            Cell::text(relative(task.updated_at, now)),
        ]);
    }
    let active = tasks
        .iter()
        .filter(|t| {
            matches!(
                t.state,
                TaskState::Assigned | TaskState::InProgress | TaskState::Rework
            )
        })
        .count();
    let presence = match state.store.routed_worker(worker_id).await {
        Ok(routed) => routed.presence.code().to_string(),
        Err(StoreError::NotFound { .. }) => "no routing profile".into(),
        Err(err) => return Err(err.into()),
    };
    let mut blocks = vec![
        Block::Heading(heading),
        Block::Stats(vec![
            Stat::new("To do", active, "assigned or in rework"),
            Stat::new("With QA", tasks.len() - active, "submitted, in review"),
            Stat::new("Presence", presence, "set it on My shift"),
        ]),
    ];
    blocks.extend(super::shift::offers_blocks(&state, worker_id).await?);
    blocks.push(Block::Section("Assigned to you".into()));
    blocks.push(Block::Table(table));
    Ok(page(&layout, &blocks))
}

async fn get_next(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let worker_id = own_worker(&caller)?;
    match crate::workers::next_task(&state, worker_id).await {
        Ok(Some(next)) => Ok(htmx_redirect(&task_href(&next.task))),
        Ok(None) => Ok(super::flash(
            "info",
            "No ready task suits you right now. Try again in a few minutes.",
        )),
        Err(err) if err.code == ErrorCode::NotFound => Ok(super::flash(
            "warn",
            "You have no routing profile yet; ask your lead to set your languages and shifts.",
        )),
        Err(err) => Err(UiError(err)),
    }
}

/// What the task page needs.
struct TaskView {
    task: Task,
    item: karya_core::model::WorkItem,
    engagement: karya_core::model::Engagement,
    pack: Option<&'static karya_packs::LoadedPack>,
}

async fn load_task(state: &AppState, client_id: &str, task_id: &str) -> Result<TaskView, UiError> {
    let client_id: ClientId = parse_id(client_id)?;
    let task_id: TaskId = parse_id(task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    let item = tenant.work_item(task.work_item_id).await?;
    let engagement = tenant.engagement(item.engagement_id).await?;
    let pack = progress::pack_for(engagement.service_line);
    Ok(TaskView {
        task,
        item,
        engagement,
        pack,
    })
}

fn pretty(json_text: &str) -> String {
    serde_json::from_str::<Value>(json_text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json_text.to_string())
}

/// The submission form of a task: fields from the pack's output schema, or one JSON area.
fn output_form(
    view: &TaskView,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Form {
    let mut form = Form::new(
        "output-form",
        format!("{}/submit", task_href(&view.task)),
        "Submit",
    );
    match view.pack {
        Some(pack) => {
            form.fields = forms::fields_of(&pack.pack.output_schema, values, errors);
            form.note = format!(
                "The deliverable's fields ({}); * marks the required ones.",
                pack.pack.title
            );
        }
        None => {
            let mut field = Field::new("output", "Output (a JSON object)", "textarea")
                .value(values.get("output").cloned().unwrap_or_default())
                .required();
            field.error = errors.get("output").cloned();
            form.fields.push(field);
        }
    }
    form
}

async fn task_page(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let view = load_task(&state, &client_id, &task_id).await?;
    let now = state.now();
    let tenant = state.store.tenant(view.task.client_id);
    let step = view.pack.and_then(|p| p.pack.step(&view.task.step));
    let title = step
        .map(|s| s.title.clone())
        .unwrap_or_else(|| view.task.step.replace('_', " "));
    let layout = layout(&caller, &title, "/ui/inbox");
    let mut blocks = vec![Block::Heading(Heading {
        title: title.clone(),
        sub: format!("{} · {}", view.item.title, view.engagement.name),
        actions: vec![Action::link("back", "Back to inbox", "/ui/inbox".into())],
    })];
    let mut facts = vec![
        ("State".to_string(), task_pill(view.task.state)),
        ("Priority".into(), Cell::text(view.item.priority.code())),
        (
            "Service line".into(),
            Cell::text(view.engagement.service_line.name()),
        ),
        ("Received".into(), Cell::time(view.item.received_at)),
        (
            "Time on task".into(),
            Cell::text(super::elapsed(view.task.updated_at, now)),
        ),
    ];
    if let Some(reference) = &view.item.external_ref {
        facts.push(("Client reference".into(), Cell::mono(reference)));
    }
    if let Some(step) = step {
        facts.push((
            "Expected".into(),
            Cell::text(format!("{} min", step.expected_minutes)),
        ));
    }
    let mut left = vec![
        Block::Section("Work item".into()),
        Block::Facts(facts),
        Block::Section("Input".into()),
        Block::Pre(pretty(&view.item.input)),
    ];
    // Decisions taken on this item, with their ruling.
    let decisions = tenant
        .list_decisions(&PageRequest {
            limit: PAGE_LIMIT_MAX,
            after: None,
        })
        .await?;
    let mut table = Table::new(
        "decisions",
        &["Decision", "Ruling", "Why"],
        "No decisions on this item",
        match step.map(|s| s.decisions.is_empty()) {
            Some(false) => "Decisions this step may take are recorded through the decisions API.",
            _ => "This step takes no decisions.",
        },
    );
    for decision in decisions
        .items
        .iter()
        .filter(|d| d.work_item_id == view.item.id)
    {
        let status = decision.record.status.code();
        let tone = match status {
            "in_force" => "ok",
            "blocked" | "rejected" => "bad",
            _ => "warn",
        };
        table.rows.push(vec![
            Cell::text(&decision.record.input.decision_type),
            Cell::pill(status.replace('_', " "), tone),
            Cell::text(decision.record.trace.join("; ")),
        ]);
    }
    left.push(Block::Section("Decisions".into()));
    left.push(Block::Table(table));

    let reviews = tenant.reviews_of(view.task.id).await?;
    let mut right = vec![Block::Section("Your output".into())];
    let holds = caller.worker_id().is_some()
        && state.store.active_assignee(view.task.id).await? == caller.worker_id();
    let open = matches!(
        view.task.state,
        TaskState::Assigned | TaskState::InProgress | TaskState::Rework
    );
    if let Some(review) = reviews.iter().rev().find(|r| !r.passed) {
        if view.task.state == TaskState::Rework {
            let defects: Vec<String> = review
                .defects
                .iter()
                .map(|d| {
                    format!(
                        "{} ({}){}: {}",
                        d.category,
                        d.severity.code(),
                        d.field
                            .as_deref()
                            .map(|f| format!(" on {f}"))
                            .unwrap_or_default(),
                        d.comment
                    )
                })
                .collect();
            right.push(Block::Notice(
                "bad",
                format!("Sent back for rework: {}", defects.join("; ")),
            ));
        }
    }
    match (open, holds) {
        (true, true) => {
            let values = match tenant.latest_output(view.task.id).await? {
                Some(output) => forms::fields_text(&output),
                None => BTreeMap::new(),
            };
            right.push(Block::Form(output_form(&view, &values, &BTreeMap::new())));
        }
        (true, false) => right.push(Block::Notice(
            "info",
            "Only the worker holding this task submits its output.".into(),
        )),
        (false, _) => {
            right.push(Block::Notice(
                "ok",
                format!(
                    "Submitted; the task is {}.",
                    view.task.state.code().replace('_', " ")
                ),
            ));
            if let Some(output) = tenant.latest_output(view.task.id).await? {
                right.push(Block::Pre(
                    serde_json::to_string_pretty(&output).unwrap_or_default(),
                ));
            }
        }
    }
    blocks.push(Block::Split(left, right));
    Ok(page(&layout, &blocks))
}

async fn submit(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    form: FormData,
) -> UiResult {
    let view = load_task(&state, &client_id, &task_id).await?;
    let tenant = state.store.tenant(view.task.client_id);
    // Read the form into the output object, then let the pack validate it.
    let (values, parsed) = match view.pack {
        Some(pack) => {
            let values = form.schema_values();
            let parsed = forms::object_of(&pack.pack.output_schema, &values);
            (values, parsed)
        }
        None => {
            let text = form.get("output");
            let values = BTreeMap::from([("output".to_string(), text.clone())]);
            let parsed = match serde_json::from_str::<Value>(&text) {
                Ok(value) if value.is_object() => Ok(value),
                _ => Err(BTreeMap::from([(
                    "output".to_string(),
                    "must be a JSON object".to_string(),
                )])),
            };
            (values, parsed)
        }
    };
    let output = match parsed {
        Ok(output) => output,
        Err(errors) => {
            let mut form = output_form(&view, &values, &errors);
            form.error = Some("Some fields need attention.".into());
            return Ok(super::form_with_errors(form));
        }
    };
    if let Some(pack) = view.pack {
        if let Err(problems) = pack.validate_output(&output.to_string()) {
            let (by_field, general) = forms::split_errors(&problems);
            let mut form = output_form(&view, &values, &by_field);
            form.error = Some(match general.is_empty() {
                true => "Some fields need attention.".into(),
                false => general.join("; "),
            });
            return Ok(super::form_with_errors(form));
        }
    }
    let now = state.now();
    // A held task is started on submission: the form is the work.
    let task = match view.task.state {
        TaskState::Assigned | TaskState::Rework => {
            tenant
                .transition_task(view.task.id, TaskState::InProgress, now)
                .await?
        }
        _ => view.task.clone(),
    };
    // The output is stored with the submission, and a finished task moves the item on to its
    // next step in the same transaction.
    let fields = forms::fields_text(&output);
    let document = output.to_string();
    let submission = karya_store::Submission {
        fields: &fields,
        document: Some(&document),
        next_id: state.new_id(),
    };
    tenant
        .submit_task_with_output(task.id, &submission, now)
        .await?;
    Ok(htmx_redirect("/ui/inbox"))
}

async fn quality(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "My quality", "/ui/quality");
    let heading = Block::Heading(Heading {
        title: "My quality".into(),
        sub: "How your work fared in review, and the skills you are growing.".into(),
        actions: Vec::new(),
    });
    let Some(worker_id) = caller.worker_id() else {
        return Ok(page(
            &layout,
            &[
                heading,
                Block::Notice("info", "This account is not linked to a worker.".into()),
            ],
        ));
    };
    let reviews = state
        .store
        .reviews_of_maker(worker_id, TABLE_ROWS_MAX)
        .await?;
    let passed = reviews.iter().filter(|r| r.passed).count();
    let accuracy = match reviews.len() {
        0 => None,
        n => Some(passed as f64 / n as f64),
    };
    let mut table = Table::new(
        "my-reviews",
        &["Reviewed", "Step", "Verdict", "Defects"],
        "No reviews yet",
        "Your submitted work shows here once a reviewer has checked it.",
    );
    for review in &reviews {
        table.rows.push(vec![
            Cell::time(review.reviewed_at),
            Cell::text(review.step.replace('_', " ")),
            match review.passed {
                true => Cell::pill("pass", "ok"),
                false => Cell::pill("fail", "bad"),
            },
            Cell::text(review.defects),
        ]);
    }
    let mut skills = Table::new(
        "my-skills",
        &["Skill", "Level", "Growing"],
        "No skills recorded",
        "Your lead records skills and levels in your routing profile.",
    );
    match state.store.routed_worker(worker_id).await {
        Ok(routed) => {
            for skill in &routed.profile.skills {
                skills.rows.push(vec![
                    Cell::text(skill.name.replace('_', " ")),
                    Cell::text(format!(
                        "{} / {}",
                        skill.level,
                        karya_core::workforce::SKILL_LEVEL_MAX
                    )),
                    match routed.profile.growth_skills.contains(&skill.name) {
                        true => Cell::pill("growing", "info"),
                        false => Cell::text(""),
                    },
                ]);
            }
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    let tone = match accuracy {
        Some(a) if a >= 0.95 => "ok",
        Some(a) if a >= 0.85 => "warn",
        Some(_) => "bad",
        None => "plain",
    };
    Ok(page(
        &layout,
        &[
            heading,
            Block::Stats(vec![
                Stat::new(
                    "Accuracy in review",
                    percent(accuracy),
                    "share of reviews passed",
                )
                .tone(tone),
                Stat::new("Reviews", reviews.len(), ""),
                Stat::new("Failed", reviews.len() - passed, "sent back for rework"),
            ]),
            Block::Section("Reviews of my work".into()),
            Block::Table(table),
            Block::Section("Skills".into()),
            Block::Table(skills),
        ],
    ))
}
