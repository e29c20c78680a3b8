//! Documents of a work item on both engines: bytes stored exactly, checksum and size computed by
//! the store, the event in the chain, and another client's item answering like a missing one.

use karya_core::id::{DocumentId, WorkItemId};
use karya_store::{sha256_hex, NewDocument, StoreError};

use crate::harness::TestDb;
use crate::suite::{client, engagement, event_count, item, now};

fn doc_id() -> DocumentId {
    DocumentId::from_uuid(uuid::Uuid::now_v7())
}

pub async fn documents_are_stored_exactly_and_scoped_to_the_client(db: &TestDb) {
    let store = &db.store;
    let a = client(store, "Docs A").await;
    let b = client(store, "Docs B").await;
    let a_item = item(&a, engagement(&a, "claims").await).await;
    let b_item = item(&b, engagement(&b, "claims").await).await;

    // Every byte value, including NUL and invalid UTF-8, comes back unchanged.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let events_before = event_count(&a).await;
    let uploader = uuid::Uuid::now_v7();
    let first = a
        .attach_document(
            NewDocument {
                id: doc_id(),
                work_item_id: a_item,
                name: "scan 1.tiff",
                media_type: "image/tiff",
                bytes: &bytes,
                uploaded_by: Some(uploader),
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(first.size, 70_000);
    assert_eq!(first.sha256, sha256_hex(&bytes));
    assert_eq!(first.sha256.len(), 64);
    let second = a
        .attach_document(
            NewDocument {
                id: doc_id(),
                work_item_id: a_item,
                name: "bill.pdf",
                media_type: "application/pdf",
                bytes: b"%PDF-1.4 tiny",
                uploaded_by: None,
            },
            now(),
        )
        .await
        .unwrap();

    let listed = a.documents(a_item).await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    let (read, back) = a.document_bytes(a_item, first.id).await.unwrap();
    assert_eq!(read, first);
    assert_eq!(back, bytes);
    assert_eq!(read.uploaded_by, Some(uploader));
    assert_eq!(a.document(a_item, second.id).await.unwrap(), second);

    // One event per attachment, in the client's chain, which still verifies.
    assert_eq!(event_count(&a).await, events_before + 2);
    let events = a
        .entity_events("document", &first.id.to_string())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "document.attached");
    let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["sha256"], first.sha256);
    assert_eq!(payload["work_item_id"], a_item.to_string());
    assert!(store
        .verify_chain(a.client_id())
        .await
        .unwrap()
        .broken
        .is_none());

    // Another client's item, document or a missing one: not found, nothing written.
    let b_events = event_count(&b).await;
    let not_found = |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { .. }));
    assert!(not_found(b.documents(a_item).await.map(|_| ())));
    assert!(not_found(b.document(a_item, first.id).await.map(|_| ())));
    assert!(not_found(
        b.document_bytes(b_item, first.id).await.map(|_| ())
    ));
    assert!(not_found(a.document(a_item, doc_id()).await.map(|_| ())));
    assert!(not_found(
        b.attach_document(
            NewDocument {
                id: doc_id(),
                work_item_id: a_item,
                name: "x.pdf",
                media_type: "application/pdf",
                bytes: b"%PDF-",
                uploaded_by: None,
            },
            now(),
        )
        .await
        .map(|_| ())
    ));
    let missing = WorkItemId::from_uuid(uuid::Uuid::now_v7());
    assert!(not_found(a.documents(missing).await.map(|_| ())));
    assert_eq!(event_count(&b).await, b_events);
    assert!(b.documents(b_item).await.unwrap().is_empty());

    // A nameless document is refused before anything is written.
    let refused = a
        .attach_document(
            NewDocument {
                id: doc_id(),
                work_item_id: a_item,
                name: "  ",
                media_type: "text/plain",
                bytes: b"x",
                uploaded_by: None,
            },
            now(),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Rejected { .. })));
    assert_eq!(a.documents(a_item).await.unwrap().len(), 2);
}
