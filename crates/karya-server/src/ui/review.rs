//! The reviewer's pages: the queue of tasks in review, and the review page with the maker's
//! output beside the verdict and defect form.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use karya_core::id::{ClientId, ReviewId, TaskId};
use karya_core::lifecycle::TaskState;
use karya_core::model::{Defect, Severity};
use karya_core::qa::review::Verdict;
use karya_store::NewReview;

use super::forms::FormData;
use super::{
    htmx_redirect, layout, page, relative, task_pill, Block, Button, Cell, Field, Form, Heading,
    Stat, Table, UiError, UiResult, TABLE_ROWS_MAX,
};
use crate::api::Api;
use crate::auth::{self, Access};
use crate::extract::{parse_id, Caller, Path};
use crate::progress;
use crate::AppState;

/// Defect rows on the review form; a review lists more through the API.
pub const DEFECT_ROWS: usize = 3;

pub fn api() -> Api {
    Api::new()
        .route(
            "/ui/reviews",
            get(queue),
            &[(Method::GET, Access::Firm(auth::REVIEWERS))],
        )
        .route(
            "/ui/clients/{client_id}/tasks/{task_id}/review",
            get(review_page).post(record),
            &[
                (Method::GET, Access::tenant(auth::REVIEWERS, auth::NOBODY)),
                (Method::POST, Access::tenant(auth::REVIEWERS, auth::NOBODY)),
            ],
        )
}

async fn queue(State(state): State<AppState>, Caller(caller): Caller) -> UiResult {
    let layout = layout(&caller, "Review queue", "/ui/reviews");
    let now = state.now();
    let tasks = state
        .store
        .tasks_in_state(TaskState::InReview, TABLE_ROWS_MAX)
        .await?;
    let mut table = Table::new(
        "review-queue",
        &["Task", "Work item", "Client", "Priority", "Waiting"],
        "The review queue is empty",
        "Sampled submissions appear here; new workers' work is always sampled.",
    );
    for task in &tasks {
        let tenant = state.store.tenant(task.client_id);
        let item = tenant.work_item(task.work_item_id).await?;
        let client = state.store.client(task.client_id).await?;
        table.rows.push(vec![
            Cell::link(
                progress::step_title(&state, task).await?,
                format!("/ui/clients/{}/tasks/{}/review", task.client_id, task.id),
            ),
            Cell::text(&item.title),
            Cell::text(&client.name),
            Cell::text(task.priority.code()),
            Cell::text(relative(task.updated_at, now)),
        ]);
    }
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: "Review queue".into(),
                sub: "Submissions waiting for a check, most urgent first.".into(),
                actions: Vec::new(),
            }),
            Block::Stats(vec![Stat::new("Waiting", tasks.len(), "tasks in review")]),
            Block::Table(table),
        ],
    ))
}

/// The categories a reviewer may pick: the pack's defect catalogue, else the QA policy's.
async fn categories(
    state: &AppState,
    client_id: ClientId,
    engagement: &karya_core::model::Engagement,
) -> Result<Vec<(String, String)>, UiError> {
    if let Some(pack) = progress::pack_for(engagement.service_line) {
        if !pack.pack.defects.is_empty() {
            return Ok(pack
                .pack
                .defects
                .iter()
                .map(|d| (d.name.clone(), d.title.clone()))
                .collect());
        }
    }
    let policy = state
        .store
        .tenant(client_id)
        .qa_policy(engagement.id)
        .await?;
    Ok(policy
        .defect_categories
        .iter()
        .map(|c| (c.clone(), c.replace('_', " ")))
        .collect())
}

fn review_form(
    action: String,
    categories: &[(String, String)],
    output_fields: &[String],
    form: Option<&FormData>,
) -> Form {
    let mut review = Form::new("review-form", action, "Pass");
    review.note = "Pass accepts the work. Fail sends it to rework with the defects listed.".into();
    let value = |name: &str| form.map(|f| f.get(name)).unwrap_or_default();
    for row in 0..DEFECT_ROWS {
        let none = (String::new(), "— no defect —".to_string());
        review.fields.push(
            Field::new(
                &format!("category{row}"),
                &format!("Defect {}", row + 1),
                "select",
            )
            .options(
                std::iter::once(none)
                    .chain(categories.iter().cloned())
                    .collect(),
            )
            .value(value(&format!("category{row}"))),
        );
        review.fields.push(
            Field::new(&format!("severity{row}"), "Severity", "select")
                .options(
                    ["minor", "major", "critical"]
                        .iter()
                        .map(|s| (s.to_string(), s.to_string()))
                        .collect(),
                )
                .value(value(&format!("severity{row}"))),
        );
        review.fields.push(
            Field::new(&format!("field{row}"), "Field", "select")
                .options(
                    std::iter::once((String::new(), "— whole output —".to_string()))
                        .chain(output_fields.iter().map(|f| (f.clone(), f.clone())))
                        .collect(),
                )
                .value(value(&format!("field{row}"))),
        );
        review.fields.push(
            Field::new(&format!("comment{row}"), "Comment", "text")
                .value(value(&format!("comment{row}"))),
        );
    }
    review.buttons = vec![
        Button {
            name: "verdict".into(),
            value: "pass".into(),
            label: "Pass".into(),
            primary: true,
        },
        Button {
            name: "verdict".into(),
            value: "fail".into(),
            label: "Fail — send to rework".into(),
            primary: false,
        },
    ];
    review
}

async fn review_page(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    let item = tenant.work_item(task.work_item_id).await?;
    let engagement = tenant.engagement(item.engagement_id).await?;
    let output = tenant.latest_output(task_id).await?;
    let layout = layout(&caller, "Review", "/ui/reviews");
    let fields = super::forms::fields_text(output.as_ref().unwrap_or(&serde_json::Value::Null));
    let mut left = vec![
        Block::Section("Maker's output".into()),
        match fields.is_empty() {
            true => Block::Notice("info", "No output was recorded for this task.".into()),
            false => Block::Facts(
                fields
                    .iter()
                    .map(|(k, v)| (k.replace('_', " "), Cell::mono(v)))
                    .collect(),
            ),
        },
        Block::Section("Work item input".into()),
        Block::Pre(
            serde_json::from_str::<serde_json::Value>(&item.input)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| item.input.clone()),
        ),
    ];
    let previous = tenant.reviews_of(task_id).await?;
    if !previous.is_empty() {
        left.push(Block::Section("Earlier reviews".into()));
        left.push(Block::Text(format!(
            "{} earlier review(s); {} failed.",
            previous.len(),
            previous.iter().filter(|r| !r.passed).count()
        )));
    }
    let right = match task.state {
        TaskState::InReview => {
            let names: Vec<String> = fields.keys().cloned().collect();
            vec![
                Block::Section("Verdict".into()),
                Block::Form(review_form(
                    format!("/ui/clients/{client_id}/tasks/{task_id}/review"),
                    &categories(&state, client_id, &engagement).await?,
                    &names,
                    None,
                )),
            ]
        }
        other => vec![Block::Notice(
            "info",
            format!(
                "This task is {}; there is nothing to review.",
                other.code().replace('_', " ")
            ),
        )],
    };
    Ok(page(
        &layout,
        &[
            Block::Heading(Heading {
                title: format!("Review: {}", progress::step_title(&state, &task).await?),
                sub: format!("{} · {}", item.title, engagement.name),
                actions: Vec::new(),
            }),
            Block::Facts(vec![
                ("State".into(), task_pill(task.state)),
                ("Priority".into(), Cell::text(task.priority.code())),
            ]),
            Block::Split(left, right),
        ],
    ))
}

async fn record(
    State(state): State<AppState>,
    Path((client_id, task_id)): Path<(String, String)>,
    Caller(caller): Caller,
    form: FormData,
) -> UiResult {
    let client_id: ClientId = parse_id(&client_id)?;
    let task_id: TaskId = parse_id(&task_id)?;
    let tenant = state.store.tenant(client_id);
    let task = tenant.task(task_id).await?;
    let item = tenant.work_item(task.work_item_id).await?;
    let engagement = tenant.engagement(item.engagement_id).await?;
    let output = tenant.latest_output(task_id).await?;
    let names: Vec<String> =
        super::forms::fields_text(output.as_ref().unwrap_or(&serde_json::Value::Null))
            .into_keys()
            .collect();
    let categories = categories(&state, client_id, &engagement).await?;
    let action = format!("/ui/clients/{client_id}/tasks/{task_id}/review");
    let refuse = |message: String| {
        let mut again = review_form(action.clone(), &categories, &names, Some(&form));
        again.error = Some(message);
        Ok(super::form_with_errors(again))
    };
    let Some(reviewer_id) = caller.worker_id() else {
        return refuse(
            "This account is not linked to a worker, so it cannot sign a review.".into(),
        );
    };
    let verdict = match form.get("verdict").as_str() {
        "pass" => Verdict::Pass,
        "fail" => Verdict::Fail,
        _ => return refuse("Choose Pass or Fail.".into()),
    };
    let mut defects = Vec::new();
    for row in 0..DEFECT_ROWS {
        let category = form.get(&format!("category{row}"));
        if category.is_empty() {
            continue;
        }
        let severity =
            Severity::parse(&form.get(&format!("severity{row}"))).unwrap_or(Severity::Minor);
        let field = form.get(&format!("field{row}"));
        defects.push(Defect {
            category,
            severity,
            field: (!field.is_empty()).then_some(field),
            comment: form.get(&format!("comment{row}")),
        });
    }
    if verdict == Verdict::Fail && defects.is_empty() {
        return refuse("A failed review names at least one defect.".into());
    }
    let new = NewReview {
        id: ReviewId::from_uuid(state.new_id()),
        reviewer_id,
        verdict,
        defects,
    };
    // A pass moves the item on to its next step in the same transaction.
    match tenant
        .record_review_then(task_id, &new, state.new_id(), state.now())
        .await
    {
        Ok(_) => Ok(htmx_redirect("/ui/reviews")),
        Err(karya_store::StoreError::Rejected { message }) => refuse(message),
        Err(err) => Err(err.into()),
    }
}
