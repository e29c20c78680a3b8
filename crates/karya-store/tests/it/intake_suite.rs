//! Conformance tests of bulk intake: all rows or none, one event per item, the chain intact
//! under concurrent writers.

use karya_core::id::{EngagementId, WorkItemId};
use karya_core::model::Priority;
use karya_store::{
    ImportOutcome, ImportProblem, ImportRowError, NewWorkItem, PageRequest, Tenant, WorkItemFilter,
    IMPORT_ROW_ERRORS_MAX,
};

use crate::harness::TestDb;
use crate::suite::{client, engagement, event_count, id, new_item, now};

/// Rows of an import, numbered so titles and references are told apart.
fn rows(engagement_id: EngagementId, n: usize, ref_prefix: &str) -> Vec<NewWorkItem> {
    (0..n)
        .map(|idx| NewWorkItem {
            id: id(),
            engagement_id,
            external_ref: Some(format!("{ref_prefix}-{idx:06}")),
            title: format!("claim {idx}"),
            priority: Priority::ALL[idx % Priority::ALL.len()],
            input: format!(r#"{{"amount":{idx},"policy":"P-{idx}"}}"#),
        })
        .collect()
}

async fn items_of(tenant: &Tenant, engagement_id: EngagementId) -> usize {
    let filter = WorkItemFilter {
        state: None,
        engagement_id: Some(engagement_id),
    };
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    let mut count = 0;
    loop {
        let items = tenant.list_work_items(&filter, &page).await.unwrap();
        count += items.items.len();
        match items.next_after {
            Some(after) => page.after = Some(after),
            None => return count,
        }
    }
}

async fn assert_chain(tenant: &Tenant, db: &TestDb, events: u64) {
    let status = db.store.verify_chain(tenant.client_id()).await.unwrap();
    assert_eq!(status.broken, None);
    assert_eq!(status.events_verified, events);
}

pub async fn bulk_import_stores_every_row_with_its_event(db: &TestDb) {
    let tenant = client(&db.store, "Acme Insurance").await;
    let engagement_id = engagement(&tenant, "claims").await;
    let mut new = rows(engagement_id, 3, "CLM");
    new[1].external_ref = None;
    new[2].title = "quote \" and ünïcode".into();
    let outcome = tenant
        .import_work_items(engagement_id, &new, now())
        .await
        .unwrap();
    let ImportOutcome::Imported(summary) = outcome else {
        panic!("refused: {outcome:?}");
    };
    assert_eq!(summary.imported, 3);
    assert_eq!(summary.first_id, new[0].id);
    assert_eq!(summary.last_id, new[2].id);
    for row in &new {
        let stored = tenant.work_item(row.id).await.unwrap();
        assert_eq!(stored.title, row.title);
        assert_eq!(stored.external_ref, row.external_ref);
        assert_eq!(stored.priority, row.priority);
        assert_eq!(stored.input, row.input);
        assert_eq!(stored.engagement_id, engagement_id);
        assert_eq!(stored.version, 1);
        let events = tenant
            .entity_events("work_item", &row.id.to_string())
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "work_item.created");
        let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(payload["title"], row.title.as_str());
    }
    // Events for the client and the engagement, one per item; a single write afterwards
    // continues the chain.
    assert_chain(&tenant, db, 5).await;
    // What committed before the import comes before it in the chain.
    let kinds: Vec<String> = tenant
        .events(&PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "engagement.created",
            "work_item.created",
            "work_item.created",
            "work_item.created"
        ]
    );
    tenant
        .create_work_item(&new_item(engagement_id, Some("CLM-after")), now())
        .await
        .unwrap();
    assert_chain(&tenant, db, 6).await;
}

pub async fn bulk_import_with_a_bad_row_stores_nothing(db: &TestDb) {
    let tenant = client(&db.store, "Globex Pharma").await;
    let engagement_id = engagement(&tenant, "adverse events").await;
    let stored = tenant
        .create_work_item(&new_item(engagement_id, Some("AE-1")), now())
        .await
        .unwrap();

    let check = async |external_refs: &[Option<&str>], expect: Vec<(usize, ImportProblem)>| {
        let new: Vec<NewWorkItem> = external_refs
            .iter()
            .map(|external_ref| new_item(engagement_id, *external_ref))
            .collect();
        let outcome = tenant
            .import_work_items(engagement_id, &new, now())
            .await
            .unwrap();
        let ImportOutcome::Refused(refusal) = outcome else {
            panic!("imported {external_refs:?}");
        };
        let expect: Vec<ImportRowError> = expect
            .into_iter()
            .map(|(index, problem)| ImportRowError { index, problem })
            .collect();
        assert_eq!(refusal.total_errors, expect.len() as u64);
        assert_eq!(refusal.errors, expect);
        assert_eq!(items_of(&tenant, engagement_id).await, 1);
        assert_chain(&tenant, db, 3).await;
    };
    check(
        &[Some("AE-2"), Some("AE-1"), None],
        vec![(
            1,
            ImportProblem::DuplicateStored {
                external_ref: "AE-1".into(),
                existing: stored.id,
            },
        )],
    )
    .await;
    check(
        &[Some("AE-2"), None, Some("AE-3"), Some("AE-2"), Some("AE-1")],
        vec![
            (
                3,
                ImportProblem::DuplicateInImport {
                    external_ref: "AE-2".into(),
                    first_index: 0,
                },
            ),
            (
                4,
                ImportProblem::DuplicateStored {
                    external_ref: "AE-1".into(),
                    existing: stored.id,
                },
            ),
        ],
    )
    .await;

    // Another client's engagement reads as missing, and an empty import is refused outright.
    let other = client(&db.store, "Initech Legal").await;
    let refused = other
        .import_work_items(engagement_id, &[new_item(engagement_id, None)], now())
        .await;
    assert!(
        matches!(
            refused,
            Err(karya_store::StoreError::NotFound {
                kind: "engagement",
                ..
            })
        ),
        "{refused:?}"
    );
    let empty = tenant.import_work_items(engagement_id, &[], now()).await;
    assert!(
        matches!(empty, Err(karya_store::StoreError::Rejected { .. })),
        "{empty:?}"
    );
    assert_eq!(event_count(&tenant).await, 3);
}

pub async fn bulk_import_of_ten_thousand_rows_keeps_the_chain(db: &TestDb) {
    const N: usize = 10_000;
    let tenant = client(&db.store, "Umbrella Claims").await;
    let engagement_id = engagement(&tenant, "claims").await;
    let new = rows(engagement_id, N, "BIG");
    let outcome = tenant
        .import_work_items(engagement_id, &new, now())
        .await
        .unwrap();
    assert!(matches!(outcome, ImportOutcome::Imported(ref s) if s.imported == N as u64));
    assert_chain(&tenant, db, 2 + N as u64).await;
    assert_eq!(items_of(&tenant, engagement_id).await, N);

    // The same file again: every row is a duplicate; the report keeps the first rows only.
    let again: Vec<NewWorkItem> = new
        .iter()
        .map(|row| NewWorkItem {
            id: id::<WorkItemId>(),
            ..row.clone()
        })
        .collect();
    let outcome = tenant
        .import_work_items(engagement_id, &again, now())
        .await
        .unwrap();
    let ImportOutcome::Refused(refusal) = outcome else {
        panic!("a repeated import was stored");
    };
    assert_eq!(refusal.total_errors, N as u64);
    assert_eq!(refusal.errors.len(), IMPORT_ROW_ERRORS_MAX);
    let indexes: Vec<usize> = refusal.errors.iter().map(|e| e.index).collect();
    assert_eq!(indexes, (0..IMPORT_ROW_ERRORS_MAX).collect::<Vec<_>>());
    assert_chain(&tenant, db, 2 + N as u64).await;
}

pub async fn bulk_import_interleaved_with_single_writes_keeps_the_chain(db: &TestDb) {
    const N_IMPORTED: usize = 20_000;
    const N_SINGLE: usize = 40;
    let tenant = client(&db.store, "Soylent Foods").await;
    let engagement_id = engagement(&tenant, "invoices").await;
    let new = rows(engagement_id, N_IMPORTED, "INV");
    let importer = {
        let tenant = tenant.clone();
        tokio::spawn(async move {
            tenant
                .import_work_items(engagement_id, &new, now())
                .await
                .unwrap()
        })
    };
    let single = {
        let tenant = tenant.clone();
        tokio::spawn(async move {
            for idx in 0..N_SINGLE {
                let external_ref = format!("single-{idx}");
                tenant
                    .create_work_item(&new_item(engagement_id, Some(&external_ref)), now())
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let outcome = importer.await.unwrap();
    single.await.unwrap();
    let ImportOutcome::Imported(summary) = outcome else {
        panic!("refused: {outcome:?}");
    };
    assert_chain(&tenant, db, (2 + N_IMPORTED + N_SINGLE) as u64).await;
    assert_eq!(
        items_of(&tenant, engagement_id).await,
        N_IMPORTED + N_SINGLE
    );
    // The events of the import are consecutive: no single write landed inside them.
    let seq_of = async |id: WorkItemId| {
        let events = tenant
            .entity_events("work_item", &id.to_string())
            .await
            .unwrap();
        events[0].seq
    };
    let first = seq_of(summary.first_id).await;
    let last = seq_of(summary.last_id).await;
    assert_eq!(last - first, N_IMPORTED as u64 - 1);
}
