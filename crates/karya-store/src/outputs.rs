//! What workers hand in: the output of each submission of a task, kept in the task's event
//! trail so the reviewer sees exactly what was submitted and the deliverable is the output of
//! the work item's last accepted step.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::TaskId;
use serde_json::json;

use crate::events::append;
use crate::{Result, StoreError, Tenant};

impl Tenant {
    /// Records a task's submitted output (a JSON object, already validated by the caller).
    pub async fn record_output(
        &self,
        task_id: TaskId,
        output: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        self.task(task_id).await?;
        let mut tx = self.store.writer.begin().await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::TaskOutputRecorded,
            &task_id.to_string(),
            &json!({ "output": output }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest output recorded for a task, if any.
    pub async fn latest_output(&self, task_id: TaskId) -> Result<Option<serde_json::Value>> {
        let events = self.entity_events("task", &task_id.to_string()).await?;
        let latest = events
            .iter()
            .rev()
            .find(|event| event.kind == EventKind::TaskOutputRecorded.code());
        match latest {
            None => Ok(None),
            Some(event) => {
                let mut payload: serde_json::Value = serde_json::from_str(&event.payload)
                    .map_err(|err| StoreError::Other(anyhow::anyhow!("stored output: {err}")))?;
                Ok(Some(payload["output"].take()))
            }
        }
    }
}
