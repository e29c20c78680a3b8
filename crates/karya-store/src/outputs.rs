//! What workers hand in: the output of each submission of a task, kept in `task_outputs` with
//! its digest in the task's event trail, so the reviewer sees exactly what was submitted and the
//! deliverable is made of the outputs of the item's steps.
//!
//! A submission stores its output together with the submission itself
//! ([`Tenant::submit_task_with_output`]); [`Tenant::record_output`] keeps an output on its own
//! (work saved before it is submitted).

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::TaskId;

use crate::{Result, StoreError, Tenant};

impl Tenant {
    /// Records a task's output (a JSON object, already validated by the caller) as its next
    /// output.
    pub async fn record_output(
        &self,
        task_id: TaskId,
        output: &serde_json::Value,
        now: Timestamp,
    ) -> Result<()> {
        self.task(task_id).await?;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        crate::flow::record_output(&mut tx, self.client_id, task_id, &output.to_string(), now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest output recorded for a task, if any.
    pub async fn latest_output(&self, task_id: TaskId) -> Result<Option<serde_json::Value>> {
        if let Some(text) = self.task_output(task_id).await? {
            let output = serde_json::from_str(&text)
                .map_err(|err| StoreError::Other(anyhow::anyhow!("stored output: {err}")))?;
            return Ok(Some(output));
        }
        // Outputs recorded before `task_outputs` existed live only in their event.
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
                Ok(Some(payload["output"].take()).filter(|output| !output.is_null()))
            }
        }
    }
}
