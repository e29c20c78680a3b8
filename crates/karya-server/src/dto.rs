//! Wire shapes: requests as they arrive, responses as they leave, converted by hand from and to
//! `karya-core` types so that the domain never depends on the JSON format.

use karya_core::model::{Client, Engagement, Task, WorkItem};
use karya_store::{Page, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A page of results and the cursor of the next one.
#[derive(Serialize)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    /// Pass as `?after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

impl<T> PageDto<T> {
    pub fn from_page<U>(page: Page<U>) -> PageDto<T>
    where
        T: for<'a> From<&'a U>,
    {
        PageDto {
            items: page.items.iter().map(T::from).collect(),
            next_after: page.next_after,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkItemQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
    pub state: Option<String>,
    pub engagement_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClientDto {
    pub name: String,
    pub currency: String,
}

#[derive(Serialize)]
pub struct ClientDto {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub created_at: String,
}

impl From<&Client> for ClientDto {
    fn from(client: &Client) -> ClientDto {
        ClientDto {
            id: client.id.to_string(),
            name: client.name.clone(),
            currency: client.currency.to_string(),
            created_at: client.created_at.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEngagementDto {
    pub name: String,
    pub service_line: String,
}

#[derive(Serialize)]
pub struct EngagementDto {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub service_line: String,
    pub created_at: String,
}

impl From<&Engagement> for EngagementDto {
    fn from(engagement: &Engagement) -> EngagementDto {
        EngagementDto {
            id: engagement.id.to_string(),
            client_id: engagement.client_id.to_string(),
            name: engagement.name.clone(),
            service_line: engagement.service_line.code().to_string(),
            created_at: engagement.created_at.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkItemDto {
    pub engagement_id: String,
    pub title: String,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub external_ref: Option<String>,
    /// The item's content; kept as the raw JSON text the client sent.
    pub input: Box<RawValue>,
}

#[derive(Serialize)]
pub struct WorkItemDto {
    pub id: String,
    pub client_id: String,
    pub engagement_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
    pub title: String,
    pub priority: &'static str,
    pub state: &'static str,
    pub input: Box<RawValue>,
    pub received_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl From<&WorkItem> for WorkItemDto {
    fn from(item: &WorkItem) -> WorkItemDto {
        WorkItemDto {
            id: item.id.to_string(),
            client_id: item.client_id.to_string(),
            engagement_id: item.engagement_id.to_string(),
            external_ref: item.external_ref.clone(),
            title: item.title.clone(),
            priority: item.priority.code(),
            state: item.state.code(),
            // Stored input was validated JSON on the way in.
            input: RawValue::from_string(item.input.clone())
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON")),
            received_at: item.received_at.to_string(),
            updated_at: item.updated_at.to_string(),
            version: item.version,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionDto {
    pub to: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// Refuse the move if the item's version is no longer this one.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

#[derive(Serialize)]
pub struct TaskDto {
    pub id: String,
    pub work_item_id: String,
    pub step: String,
    pub priority: &'static str,
    pub state: &'static str,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Task> for TaskDto {
    fn from(task: &Task) -> TaskDto {
        TaskDto {
            id: task.id.to_string(),
            work_item_id: task.work_item_id.to_string(),
            step: task.step.clone(),
            priority: task.priority.code(),
            state: task.state.code(),
            created_at: task.created_at.to_string(),
            updated_at: task.updated_at.to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct EventDto {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    pub entity_type: String,
    pub entity_id: String,
    pub payload: Box<RawValue>,
    pub hash: String,
}

impl From<&StoredEvent> for EventDto {
    fn from(event: &StoredEvent) -> EventDto {
        EventDto {
            seq: event.seq,
            at: event.at.to_string(),
            kind: event.kind.clone(),
            entity_type: event.entity_type.clone(),
            entity_id: event.entity_id.clone(),
            payload: RawValue::from_string(event.payload.clone())
                .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON")),
            hash: event.hash.clone(),
        }
    }
}
