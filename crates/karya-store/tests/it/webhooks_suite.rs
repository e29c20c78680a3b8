//! Conformance of webhook endpoints: the cursor moves only on success or past filtered-out
//! events, deliveries come in chain order, stale claims are dropped, and an endpoint that fails
//! too often is suspended until resumed, with each of these recorded where it should be.

use jiff::{SignedDuration, Timestamp};
use karya_core::id::WebhookId;
use karya_core::webhook::{EventFilter, WebhookSecret, WebhookState};
use karya_store::{
    AttemptRecord, NewWebhook, NextStep, PageRequest, StoreError, Tenant, Webhook,
    WEBHOOKS_PER_CLIENT_MAX,
};

use crate::harness::TestDb;
use crate::suite::{client, engagement, item, now};

fn new_webhook(prefixes: &[&str]) -> NewWebhook {
    NewWebhook {
        id: WebhookId::from_uuid(uuid::Uuid::now_v7()),
        url: "https://hooks.example.com/karya".into(),
        events: EventFilter::parse(&prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .unwrap(),
        secret: WebhookSecret::new("whsec_test".into()),
    }
}

fn failed(status: u16) -> AttemptRecord {
    AttemptRecord {
        status: Some(status),
        error: Some(format!("receiver answered {status}")),
        duration_ms: 3,
    }
}

fn delivered() -> AttemptRecord {
    AttemptRecord {
        status: Some(204),
        error: None,
        duration_ms: 2,
    }
}

/// The seqs of the client's events after `after` whose kind the filter takes, in order.
async fn matching_seqs(tenant: &Tenant, filter: &EventFilter, after: u64) -> Vec<u64> {
    let page = tenant
        .events(&PageRequest {
            limit: 500,
            after: Some(after.to_string()),
        })
        .await
        .unwrap();
    assert!(page.next_after.is_none(), "test chains fit one page");
    page.items
        .iter()
        .filter(|e| filter.matches(&e.kind))
        .map(|e| e.seq)
        .collect()
}

/// Claims the one due endpoint of the test, if it is due at `at`.
async fn claim(db: &TestDb, at: Timestamp) -> Option<Webhook> {
    let lease_until = at + SignedDuration::from_secs(60);
    let mut due = db
        .store
        .claim_due_webhooks(at, lease_until, 10)
        .await
        .unwrap();
    assert!(due.len() <= 1, "one endpoint in this test: {due:?}");
    due.pop().map(|d| {
        assert_eq!(d.secret.expose(), "whsec_test");
        d.webhook
    })
}

pub async fn webhook_cursor_advances_only_on_success_in_chain_order(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Hook Holdings").await;
    let other = client(store, "Quiet Quarries").await;
    let engagement_id = engagement(&tenant, "Searches").await;
    let other_engagement = engagement(&other, "Searches").await;
    let webhook = tenant
        .register_webhook(&new_webhook(&["work_item."]), now())
        .await
        .unwrap();
    assert_eq!(webhook.state, WebhookState::Active);
    assert_eq!(webhook.failures, 0);
    let registered_at = webhook.cursor;
    // Nothing after the registration yet: the endpoint is not due.
    assert_eq!(claim(db, now()).await, None);

    for _ in 0..3 {
        item(&tenant, engagement_id).await;
        item(&other, other_engagement).await;
    }
    let expected = matching_seqs(&tenant, &webhook.events, registered_at).await;
    assert_eq!(expected.len(), 3, "three work items created");

    // A failure keeps the cursor, counts, and holds the endpoint until the retry time.
    let claimed = claim(db, now()).await.expect("due after new events");
    assert_eq!(claimed.cursor, registered_at);
    assert_eq!(claim(db, now()).await, None, "a claimed endpoint is leased");
    let retry_at = now() + SignedDuration::from_secs(600);
    assert!(store
        .record_webhook_attempt(
            &claimed,
            expected[0],
            &failed(500),
            NextStep::RetryAt(retry_at),
            now()
        )
        .await
        .unwrap());
    let after_failure = tenant.webhook(webhook.id).await.unwrap();
    assert_eq!(after_failure.cursor, registered_at);
    assert_eq!(after_failure.failures, 1);
    assert_eq!(after_failure.next_attempt_at, retry_at);
    assert_eq!(
        claim(db, retry_at - SignedDuration::from_secs(1)).await,
        None
    );
    // The same outcome recorded again against the old claim is stale and dropped.
    assert!(!store
        .record_webhook_attempt(
            &claimed,
            expected[0],
            &delivered(),
            NextStep::Advance,
            now()
        )
        .await
        .unwrap());

    // Deliver everything: each claim offers the next event after the cursor, in order.
    let mut delivered_seqs = Vec::new();
    let mut at = retry_at;
    while let Some(claimed) = claim(db, at).await {
        let next = matching_seqs(&tenant, &claimed.events, claimed.cursor).await;
        let seq = next[0];
        assert!(store
            .record_webhook_attempt(&claimed, seq, &delivered(), NextStep::Advance, at)
            .await
            .unwrap());
        delivered_seqs.push(seq);
        at += SignedDuration::from_secs(1);
        assert!(delivered_seqs.len() <= expected.len(), "no event twice");
    }
    assert_eq!(delivered_seqs, expected);
    let done = tenant.webhook(webhook.id).await.unwrap();
    assert_eq!(done.cursor, *expected.last().unwrap());
    assert_eq!(done.failures, 0);

    // The attempts are on record, in order, with the attempt number per event.
    let attempts = tenant
        .webhook_attempts(webhook.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    let summary: Vec<(u64, u32, Option<u16>)> = attempts
        .iter()
        .map(|a| (a.seq, a.attempt, a.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            (expected[0], 1, Some(500)),
            (expected[0], 2, Some(204)),
            (expected[1], 1, Some(204)),
            (expected[2], 1, Some(204)),
        ]
    );
    let second_page = tenant
        .webhook_attempts(
            webhook.id,
            &PageRequest {
                limit: 2,
                after: Some(format!("{}:1", expected[0])),
            },
        )
        .await
        .unwrap();
    assert_eq!(second_page.items[0].attempt, 2);
    assert_eq!(
        second_page.next_after,
        Some(format!("{}:1", expected[1])),
        "a full page points at its last attempt"
    );

    // Events the filter does not take are passed over without an attempt.
    let task_only = tenant
        .register_webhook(&new_webhook(&["task."]), now())
        .await
        .unwrap();
    tenant.remove_webhook(webhook.id, now()).await.unwrap();
    item(&tenant, engagement_id).await;
    let claimed = claim(db, now())
        .await
        .expect("new events are past the cursor");
    assert_eq!(claimed.id, task_only.id);
    let head = matching_seqs(&tenant, &EventFilter::parse(&["*".into()]).unwrap(), 0)
        .await
        .last()
        .copied()
        .unwrap();
    assert!(store
        .pass_webhook_events(&claimed, head, now())
        .await
        .unwrap());
    assert_eq!(tenant.webhook(task_only.id).await.unwrap().cursor, head);
    assert_eq!(claim(db, now()).await, None, "nothing left past the cursor");
    assert!(tenant
        .webhook_attempts(task_only.id, &PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // Another client's id reads like a missing webhook; a removed one is gone.
    assert!(matches!(
        other.webhook(task_only.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        other.remove_webhook(task_only.id, now()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        tenant.webhook(webhook.id).await,
        Err(StoreError::NotFound { .. })
    ));
    let listed: Vec<WebhookId> = tenant
        .webhooks()
        .await
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(listed, vec![task_only.id]);
    assert!(other.webhooks().await.unwrap().is_empty());
    crate::suite::assert_intact(store).await;
}

pub async fn webhook_suspends_after_failures_and_resumes(db: &TestDb) {
    let store = &db.store;
    let tenant = client(store, "Flaky Freight").await;
    let engagement_id = engagement(&tenant, "Forms").await;
    let webhook = tenant
        .register_webhook(&new_webhook(&["work_item."]), now())
        .await
        .unwrap();
    item(&tenant, engagement_id).await;
    let seq = matching_seqs(&tenant, &webhook.events, webhook.cursor).await[0];

    let claimed = claim(db, now()).await.unwrap();
    assert!(store
        .record_webhook_attempt(&claimed, seq, &failed(503), NextStep::Suspend, now())
        .await
        .unwrap());
    let suspended = tenant.webhook(webhook.id).await.unwrap();
    assert_eq!(suspended.state, WebhookState::Suspended);
    assert_eq!(suspended.cursor, webhook.cursor, "the event is not lost");
    let far = now() + SignedDuration::from_hours(48);
    assert_eq!(
        claim(db, far).await,
        None,
        "a suspended endpoint gets nothing"
    );
    let events = tenant
        .entity_events("webhook", &webhook.id.to_string())
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["webhook.registered", "webhook.suspended"]);
    assert!(
        events.iter().all(|e| !e.payload.contains("whsec_test")),
        "the secret never enters the chain"
    );

    let resumed = tenant.resume_webhook(webhook.id, far).await.unwrap();
    assert_eq!(resumed.state, WebhookState::Active);
    assert_eq!(resumed.failures, 0);
    // Resuming an active endpoint is a no-op, with no second event.
    tenant.resume_webhook(webhook.id, far).await.unwrap();
    let kinds: Vec<String> = tenant
        .entity_events("webhook", &webhook.id.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["webhook.registered", "webhook.suspended", "webhook.resumed"]
    );
    let claimed = claim(db, far).await.expect("due again once resumed");
    assert_eq!(claimed.cursor, webhook.cursor);
    assert!(store
        .record_webhook_attempt(&claimed, seq, &delivered(), NextStep::Advance, far)
        .await
        .unwrap());
    assert_eq!(tenant.webhook(webhook.id).await.unwrap().cursor, seq);
    let attempts: Vec<(u64, u32)> = tenant
        .webhook_attempts(webhook.id, &PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|a| (a.seq, a.attempt))
        .collect();
    assert_eq!(
        attempts,
        [(seq, 1), (seq, 2)],
        "numbered per event across a resume"
    );

    // The per-client limit.
    for _ in 1..WEBHOOKS_PER_CLIENT_MAX {
        tenant
            .register_webhook(&new_webhook(&["*"]), now())
            .await
            .unwrap();
    }
    assert!(matches!(
        tenant.register_webhook(&new_webhook(&["*"]), now()).await,
        Err(StoreError::Rejected { .. })
    ));
    crate::suite::assert_intact(store).await;
}
