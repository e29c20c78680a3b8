//! How a work item moves through its pack's human steps, from intake to delivery.
//!
//! At intake the item gets a task for the first human step of its service line's pack. When a
//! task is done (submitted and not sampled, or passed in review) the next human step becomes a
//! task; after the last one the item is delivered. Processor steps (OCR, conversion) are not
//! run here: they belong to the processors, which meet this flow through the store.
//!
//! The rule — which step follows which, and when an item is complete — is the pure
//! [`next_step`]; the functions around it load and apply.

use std::sync::OnceLock;

use karya_core::id::TaskId;
use karya_core::lifecycle::{TaskState, WorkItemState};
use karya_core::model::{Task, WorkItem};
use karya_core::pack::StepKind;
use karya_core::service_line::ServiceLine;
use karya_packs::{Catalog, LoadedPack};
use karya_store::{NewTask, Tenant};

use crate::{ApiResult, AppState};

/// The step of a service line without a pack: one task that is the whole job.
pub const DEFAULT_STEP: &str = "work";

/// The built-in packs, parsed once. A broken built-in catalogue is a build defect (the pack
/// tests refuse it), so it is logged and the flow falls back to one step per item.
pub fn catalog() -> Option<&'static Catalog> {
    static CATALOG: OnceLock<Option<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| match karya_packs::builtin() {
            Ok(catalog) => Some(catalog),
            Err(err) => {
                tracing::error!(error = %err, "built-in packs do not load");
                None
            }
        })
        .as_ref()
}

/// The pack of a service line, if one is loaded.
pub fn pack_for(line: ServiceLine) -> Option<&'static LoadedPack> {
    catalog().and_then(|catalog| catalog.for_line(line).next())
}

/// The human steps of a service line, in order.
pub fn human_steps(line: ServiceLine) -> Vec<String> {
    match pack_for(line) {
        Some(loaded) => loaded
            .pack
            .steps
            .iter()
            .filter(|step| step.kind == StepKind::Human)
            .map(|step| step.name.clone())
            .collect(),
        None => vec![DEFAULT_STEP.to_string()],
    }
}

/// The title of a task's step in its pack, or the step's name made readable.
pub async fn step_title(state: &AppState, task: &Task) -> ApiResult<String> {
    let tenant = state.store.tenant(task.client_id);
    let item = tenant.work_item(task.work_item_id).await?;
    let engagement = tenant.engagement(item.engagement_id).await?;
    Ok(pack_for(engagement.service_line)
        .and_then(|loaded| loaded.pack.step(&task.step))
        .map(|step| step.title.clone())
        .unwrap_or_else(|| task.step.replace('_', " ")))
}

/// What follows when the steps in `done` are finished: the next step to do, or `None` when
/// the item is complete.
pub fn next_step<'a>(steps: &'a [String], done: &[&str]) -> Option<&'a str> {
    steps
        .iter()
        .map(String::as_str)
        .find(|step| !done.contains(step))
}

/// Opens the first task of a new item.
pub async fn start_item(state: &AppState, tenant: &Tenant, item: &WorkItem) -> ApiResult<Task> {
    let engagement = tenant.engagement(item.engagement_id).await?;
    let steps = human_steps(engagement.service_line);
    let step = next_step(&steps, &[]).unwrap_or(DEFAULT_STEP);
    let new = NewTask {
        id: TaskId::from_uuid(state.new_id()),
        work_item_id: item.id,
        step: step.to_string(),
    };
    Ok(tenant.create_task(&new, state.now()).await?)
}

/// Moves a held task to `in_progress` before it is submitted, and its item out of `received`.
pub async fn begin_work(state: &AppState, tenant: &Tenant, task: &Task) -> ApiResult<Task> {
    let now = state.now();
    let item = tenant.work_item(task.work_item_id).await?;
    if item.state == WorkItemState::Received {
        tenant
            .transition_work_item(item.id, WorkItemState::InProgress, None, None, now)
            .await?;
    }
    match task.state {
        TaskState::Assigned | TaskState::Rework => Ok(tenant
            .transition_task(task.id, TaskState::InProgress, now)
            .await?),
        _ => Ok(task.clone()),
    }
}

/// After a task is done: opens the next step's task or delivers the item.
pub async fn task_done(state: &AppState, tenant: &Tenant, task: &Task) -> ApiResult<()> {
    let now = state.now();
    let item = tenant.work_item(task.work_item_id).await?;
    let engagement = tenant.engagement(item.engagement_id).await?;
    let tasks = tenant.tasks_of(item.id).await?;
    if tasks
        .iter()
        .any(|t| !matches!(t.state, TaskState::Done | TaskState::Cancelled))
    {
        return Ok(());
    }
    let done: Vec<&str> = tasks
        .iter()
        .filter(|t| t.state == TaskState::Done)
        .map(|t| t.step.as_str())
        .collect();
    let steps = human_steps(engagement.service_line);
    match next_step(&steps, &done) {
        Some(step) => {
            let new = NewTask {
                id: TaskId::from_uuid(state.new_id()),
                work_item_id: item.id,
                step: step.to_string(),
            };
            tenant.create_task(&new, now).await?;
        }
        None => {
            if item.state == WorkItemState::Received {
                tenant
                    .transition_work_item(item.id, WorkItemState::InProgress, None, None, now)
                    .await?;
            }
            if matches!(
                item.state,
                WorkItemState::Received | WorkItemState::InProgress
            ) {
                tenant
                    .transition_work_item(
                        item.id,
                        WorkItemState::Delivered,
                        Some("every step is done"),
                        None,
                        now,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::next_step;

    fn check(steps: &[&str], done: &[&str], expect: Option<&str>) {
        let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            next_step(&steps, done),
            expect,
            "steps {steps:?} done {done:?}"
        );
    }

    #[test]
    fn steps_follow_in_pack_order() {
        check(&["key1", "key2", "adjudicate"], &[], Some("key1"));
        check(&["key1", "key2", "adjudicate"], &["key1"], Some("key2"));
        check(
            &["key1", "key2", "adjudicate"],
            &["key2", "key1"],
            Some("adjudicate"),
        );
        check(&["key1", "key2"], &["key1", "key2"], None);
        check(&[], &[], None);
    }
}
