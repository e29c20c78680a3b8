//! Reassigning a task from the SLA risk list: one click gives it to the best eligible worker
//! now; the page behind *Choose* ranks the available workers (score, or why not) and lets the
//! lead name one and say why. Both go through `crate::reassign`, like the API.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::id::{ClientId, TaskId, WorkerId};
use karya_core::model::Task;
use karya_store::{Tenant, REASSIGNABLE, REASSIGN_REASON_LEN_MAX};

use super::forms::FormData;
use super::{
    htmx_redirect, layout, page, task_pill, Action, Block, Cell, Field, Form, Heading, Table,
    UiError, UiResult,
};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path};
use crate::reassign::{carry_out, rank_candidates, Request};
use crate::{check_text, AppState};

/// The reason recorded for a one-click reassignment from the risk list.
pub const ONE_CLICK_REASON: &str = "SLA risk: moved to the best eligible worker";

pub fn api() -> Api {
    Api::new().route(
        "/ui/clients/{client_id}/tasks/{task_id}/reassign",
        get(reassign_page).post(reassign),
        &[
            (Method::GET, Access::tenant(auth::STAFF, auth::NOBODY)),
            (Method::POST, Access::tenant(auth::STAFF, auth::NOBODY)),
        ],
    )
}

pub fn reassign_href(task: &Task) -> String {
    format!("/ui/clients/{}/tasks/{}/reassign", task.client_id, task.id)
}

/// The task of a work item a lead would move: its latest task still in a worker's hands or
/// waiting for one.
pub async fn movable_task(
    tenant: &Tenant,
    work_item_id: karya_core::id::WorkItemId,
) -> Result<Option<Task>, UiError> {
    Ok(tenant
        .tasks_of(work_item_id)
        .await?
        .into_iter()
        .rev()
        .find(|t| REASSIGNABLE.contains(&t.state)))
}

fn reassign_form(task: &Task, options: Vec<(String, String)>, form: Option<&FormData>) -> Form {
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    let mut new = Form::new("reassign-form", reassign_href(task), "Reassign");
    new.fields.push(
        Field::new("worker_id", "Give it to", "select")
            .options(options)
            .value(value("worker_id")),
    );
    new.fields.push(
        Field::new("reason", "Reason", "text")
            .value(value("reason"))
            .required()
            .help("Recorded in the task's trail, e.g. “worker off sick, due in 2 h”."),
    );
    new
}

async fn reassign_page(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    let item = tenant.work_item(task.work_item_id).await?;
    let layout = layout(&caller, "Reassign", "/ui/sla-risk");
    let holder = match state.store.active_assignee(task.id).await? {
        Some(id) => state.store.worker(id).await?.name,
        None => "nobody".into(),
    };
    let mut blocks = vec![
        Block::Heading(Heading {
            title: format!("Reassign: {}", item.title),
            sub: format!("Step {} · held by {holder}", task.step.replace('_', " ")),
            actions: vec![Action::link("back", "SLA risk", "/ui/sla-risk".into())],
        }),
        Block::Facts(vec![
            ("State".into(), task_pill(task.state)),
            ("Priority".into(), Cell::text(task.priority.code())),
            (
                "Work item".into(),
                Cell::link(
                    &item.title,
                    format!("/ui/clients/{client_id}/items/{}", item.id),
                ),
            ),
        ]),
    ];
    if !REASSIGNABLE.contains(&task.state) {
        blocks.push(Block::Notice(
            "info",
            format!(
                "This task is {}: it is past the worker's hands and cannot be reassigned.",
                task.state.code().replace('_', " ")
            ),
        ));
        return Ok(page(&layout, &blocks));
    }
    let ranked = rank_candidates(&state, &tenant, &task).await?;
    let mut table = Table::new(
        "candidates",
        &["Worker", "Fit", "Capacity", ""],
        "Nobody is available",
        "Only workers whose presence is available are ranked; name anyone below.",
    );
    let mut options = vec![(String::new(), "The best eligible worker now".to_string())];
    for r in &ranked {
        let fit = match r.fit {
            Ok(total) => Cell::pill(format!("eligible · score {total}"), "ok"),
            Err(reason) => Cell::pill(reason.code().replace('_', " "), "plain"),
        };
        table.rows.push(vec![
            Cell::text(&r.name),
            fit,
            Cell::text(format!("{} / {}", r.units_used, r.units_max)),
            match r.fit {
                Ok(_) => Cell::text(""),
                Err(_) => Cell::text("may be named anyway"),
            },
        ]);
    }
    for worker in state.store.workers(super::TABLE_ROWS_MAX).await? {
        options.push((worker.id.to_string(), worker.name.clone()));
    }
    blocks.push(Block::Section("Available workers, best first".into()));
    blocks.push(Block::Table(table));
    blocks.push(Block::Section("Reassign".into()));
    blocks.push(Block::Form(reassign_form(&task, options, None)));
    Ok(page(&layout, &blocks))
}

async fn reassign(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
    form: FormData,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    // The one-click button posts no fields: the best worker, with the standard reason.
    let one_click = form.0.is_empty();
    let refuse = |message: String| -> UiResult {
        match one_click {
            true => Ok(super::flash("bad", message)),
            false => {
                let mut again = reassign_form(&task, Vec::new(), Some(&form));
                again.error = Some(message);
                Ok(super::form_with_errors(again))
            }
        }
    };
    let reason = match one_click {
        true => ONE_CLICK_REASON.to_string(),
        false => match check_text("reason", &form.get("reason"), REASSIGN_REASON_LEN_MAX) {
            Ok(reason) => reason.to_string(),
            Err(err) => return refuse(err.message),
        },
    };
    let worker_id = match form.get("worker_id") {
        w if w.is_empty() => None,
        w => match parse_id::<WorkerId>(&w) {
            Ok(id) => Some(id),
            Err(_) => return refuse("choose a worker from the list".into()),
        },
    };
    let request = Request { worker_id, reason };
    match carry_out(
        &state,
        &tenant,
        task_id,
        &request,
        caller.user.id,
        state.now(),
    )
    .await
    {
        Ok((reassigned, _)) => {
            let to = match state.store.active_assignee(task_id).await? {
                Some(id) => state.store.worker(id).await?.name,
                None => "nobody".into(),
            };
            match one_click {
                true => Ok(super::flash(
                    "ok",
                    format!(
                        "{} now holds “{}”.",
                        to,
                        reassigned.task.step.replace('_', " ")
                    ),
                )),
                false => Ok(htmx_redirect("/ui/sla-risk")),
            }
        }
        Err(err) if err.code.status().is_client_error() => refuse(err.message),
        Err(err) => Err(UiError(err)),
    }
}
