//! Where a work item stands in its pack, as the web UI names it: the pack of a service line
//! and the title of a task's step.
//!
//! How an item moves through its steps is not decided here: intake, submission and review go
//! through the store's flow (`create_and_start_work_item`, `submit_task_with_output`,
//! `record_review_then`), which creates the next step's task or job, or the deliverable, in the
//! same transaction as the change that finished a step.

use karya_core::model::Task;
use karya_core::service_line::ServiceLine;
use karya_packs::LoadedPack;

use crate::{ApiResult, AppState};

/// The pack of a service line, if one is loaded.
pub fn pack_for(line: ServiceLine) -> Option<&'static LoadedPack> {
    crate::builtin_catalog().for_line(line).next()
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
