//! Documents of a work item: the files sent with it, kept with their size and SHA-256 so that
//! whoever reads one (a processor, a worker, the client) reads exactly what was received.
//! Attaching a document writes `document.attached` in the same transaction.

use jiff::Timestamp;
use karya_core::event::EventKind;
use karya_core::id::{DocumentId, WorkItemId};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::events::append;
use crate::rows::{parse, timestamp, us};
use crate::{Result, StoreError, Tenant};

/// A document's description, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: DocumentId,
    pub work_item_id: WorkItemId,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub created_at: Timestamp,
    /// The user who uploaded it.
    pub uploaded_by: Option<uuid::Uuid>,
}

/// A document to attach. Name and media type are checked by the caller (the HTTP edge sniffs
/// the bytes); the store computes size and checksum itself.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    pub id: DocumentId,
    pub work_item_id: WorkItemId,
    pub name: &'a str,
    pub media_type: &'a str,
    pub bytes: &'a [u8],
    pub uploaded_by: Option<uuid::Uuid>,
}

const COLUMNS: &str =
    "id, work_item_id, name, media_type, size, sha256, created_at_us, uploaded_by";

fn document_row(row: &AnyRow) -> Result<Document> {
    let size: i64 = row.try_get("size")?;
    let uploaded_by: Option<String> = row.try_get("uploaded_by")?;
    Ok(Document {
        id: parse(row, "id")?,
        work_item_id: parse(row, "work_item_id")?,
        name: row.try_get("name")?,
        media_type: row.try_get("media_type")?,
        size: u64::try_from(size).map_err(|_| anyhow::anyhow!("stored size {size} is negative"))?,
        sha256: row.try_get("sha256")?,
        created_at: timestamp(row, "created_at_us")?,
        uploaded_by: uploaded_by
            .map(|u| {
                u.parse()
                    .map_err(|err| anyhow::anyhow!("stored uploader {u:?}: {err}"))
            })
            .transpose()?,
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tenant {
    /// Attaches a document to one of this client's work items.
    pub async fn attach_document(&self, new: NewDocument<'_>, now: Timestamp) -> Result<Document> {
        if new.name.trim().is_empty() {
            return Err(StoreError::Rejected {
                message: "a document needs a name".into(),
            });
        }
        // Another client's item answers exactly like a missing one.
        self.work_item(new.work_item_id).await?;
        let sha256 = sha256_hex(new.bytes);
        let size = new.bytes.len() as u64;
        let mut tx = crate::tx::Tx::begin(&self.store).await?;
        sqlx::query(
            "INSERT INTO documents (id, client_id, work_item_id, name, media_type, bytes, size, sha256, created_at_us, uploaded_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new.id.to_string())
        .bind(self.client_id.to_string())
        .bind(new.work_item_id.to_string())
        .bind(new.name)
        .bind(new.media_type)
        .bind(new.bytes.to_vec())
        .bind(size as i64)
        .bind(&sha256)
        .bind(us(now))
        .bind(new.uploaded_by.map(|u| u.to_string()))
        .execute(&mut *tx)
        .await?;
        append(
            &mut tx,
            self.client_id,
            EventKind::DocumentAttached,
            &new.id.to_string(),
            &json!({
                "work_item_id": new.work_item_id.to_string(),
                "name": new.name,
                "media_type": new.media_type,
                "size": size,
                "sha256": sha256,
                "uploaded_by": new.uploaded_by.map(|u| u.to_string()),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Document {
            id: new.id,
            work_item_id: new.work_item_id,
            name: new.name.to_string(),
            media_type: new.media_type.to_string(),
            size,
            sha256,
            created_at: Timestamp::from_microsecond(us(now)).unwrap_or(now),
            uploaded_by: new.uploaded_by,
        })
    }

    /// The documents of a work item, oldest first (404 for an item not this client's).
    pub async fn documents(&self, work_item_id: WorkItemId) -> Result<Vec<Document>> {
        self.work_item(work_item_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM documents WHERE client_id = $1 AND work_item_id = $2 ORDER BY id"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .fetch_all(&self.store.reader)
        .await?;
        rows.iter().map(document_row).collect()
    }

    /// One document of a work item, without its bytes.
    pub async fn document(&self, work_item_id: WorkItemId, id: DocumentId) -> Result<Document> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM documents WHERE client_id = $1 AND work_item_id = $2 AND id = $3"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("document", id))?;
        document_row(&row)
    }

    /// One document with its bytes.
    pub async fn document_bytes(
        &self,
        work_item_id: WorkItemId,
        id: DocumentId,
    ) -> Result<(Document, Vec<u8>)> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, bytes FROM documents WHERE client_id = $1 AND work_item_id = $2 AND id = $3"
        ))
        .bind(self.client_id.to_string())
        .bind(work_item_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.store.reader)
        .await?
        .ok_or_else(|| StoreError::not_found("document", id))?;
        let document = document_row(&row)?;
        let bytes: Vec<u8> = row.try_get("bytes")?;
        if sha256_hex(&bytes) != document.sha256 {
            return Err(StoreError::Other(anyhow::anyhow!(
                "document {id}: stored bytes do not match their checksum"
            )));
        }
        Ok((document, bytes))
    }
}
