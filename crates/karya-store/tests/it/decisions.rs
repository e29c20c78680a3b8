//! Conformance tests of decisions under client policy (both engines).

#![allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in minor units read best with the cents as their own group: 50_000_00"
)]

use std::collections::BTreeMap;

use jiff::SignedDuration;
use karya_core::decision::attr::Attr;
use karya_core::decision::authority::{DecisionType, Inverse};
use karya_core::decision::ledger::{DecisionStatus, Ledger, Resolution, LOOKBACK_DEFAULT};
use karya_core::decision::policy::{Approver, Constraint, OnFail, PolicyDraft, Scope};
use karya_core::id::{DecisionId, EngagementId, WorkItemId, WorkerId};
use karya_core::lifecycle::WorkItemState;
use karya_core::model::Designation;
use karya_store::{NewDecision, PageRequest, Store, StoreError, Tenant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::harness::TestDb;
use crate::suite::{advance_hours, assert_intact, client, engagement, event_count, id, item, now};

fn claim_type(name: &str, inverse: Inverse) -> DecisionType {
    DecisionType {
        name: name.into(),
        amount_field: Some("amount".into()),
        limits: vec![
            (Designation::Analyst, 50_000_00),
            (Designation::TeamLead, 500_000_00),
        ],
        required_qualifications: vec![],
        inverse,
        undo_window_hours: 72,
        reopen_on_undo: true,
    }
}

async fn analyst(store: &Store) -> WorkerId {
    let worker_id: WorkerId = id();
    store
        .create_worker(worker_id, "Asha Rao", None, Designation::Analyst, now())
        .await
        .unwrap();
    worker_id
}

async fn decide(
    tenant: &Tenant,
    work_item_id: WorkItemId,
    worker_id: WorkerId,
    decision_type: &str,
    amount: i64,
) -> (DecisionId, DecisionStatus) {
    let new = NewDecision {
        id: id(),
        work_item_id,
        task_id: None,
        decision_type: decision_type.into(),
        payload: Attr::map().with("amount", amount).with("claim_no", "CLM-7"),
        team: None,
        decided_by: worker_id,
    };
    let stored = tenant.take_decision(&new, now()).await.unwrap();
    (new.id, stored.record.status)
}

fn limit_draft(scope: Scope, limit: i64, on_fail: OnFail) -> PolicyDraft {
    PolicyDraft {
        key: "claims.max_amount".into(),
        scope,
        decision_type: None,
        constraint: Constraint::AtMost {
            field: "amount".into(),
            limit,
        },
        on_fail,
        default: false,
        reason: None,
    }
}

async fn setup(store: &Store) -> (Tenant, EngagementId, WorkItemId, WorkerId) {
    let tenant = client(store, &format!("Insurer {}", uuid::Uuid::now_v7())).await;
    let engagement_id = engagement(&tenant, "motor claims").await;
    tenant
        .register_decision_type(
            engagement_id,
            &claim_type(
                "approve_claim",
                Inverse::Compensate {
                    action: "reverse_approval".into(),
                },
            ),
            now(),
        )
        .await
        .unwrap();
    tenant
        .register_decision_type(
            engagement_id,
            &claim_type("send_rejection_letter", Inverse::Irreversible),
            now(),
        )
        .await
        .unwrap();
    let work_item_id = item(&tenant, engagement_id).await;
    let worker_id = analyst(store).await;
    (tenant, engagement_id, work_item_id, worker_id)
}

pub async fn decisions_follow_authority_and_policy(db: &TestDb) {
    let store = &db.store;
    let (tenant, engagement_id, work_item_id, worker_id) = setup(store).await;
    let other = client(store, "Other insurer").await;
    store
        .publish_policy(
            limit_draft(Scope::client(tenant.client_id()), 400_000_00, OnFail::Block),
            LOOKBACK_DEFAULT,
            now(),
        )
        .await
        .unwrap();

    let (small, status) =
        decide(&tenant, work_item_id, worker_id, "approve_claim", 10_000_00).await;
    assert_eq!(status, DecisionStatus::InForce);
    let (medium, status) =
        decide(&tenant, work_item_id, worker_id, "approve_claim", 60_000_00).await;
    assert_eq!(status, DecisionStatus::PendingApproval(Approver::Lead));
    let (_, status) = decide(
        &tenant,
        work_item_id,
        worker_id,
        "approve_claim",
        450_000_00,
    )
    .await;
    assert_eq!(status, DecisionStatus::Blocked);
    let blocked = tenant
        .list_decisions(&PageRequest::default())
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    assert_eq!(
        blocked.record.trace,
        [
            "authority: amount 45000000 exceeds the analyst limit of 5000000; a team_lead may approve up to 50000000",
            "policy client/claims.max_amount v1 `decision.amount <= 40000000` fails for amount 45000000",
        ]
    );
    assert_eq!(blocked.record.applied, ["client/claims.max_amount v1"]);

    let approved = tenant.settle_approval(medium, true, now()).await.unwrap();
    assert_eq!(approved.record.status, DecisionStatus::InForce);
    let again = tenant.settle_approval(medium, true, now()).await;
    assert!(
        matches!(again, Err(StoreError::Rejected { .. })),
        "{again:?}"
    );
    assert!(matches!(
        tenant.settle_approval(small, false, now()).await,
        Err(StoreError::Rejected { .. })
    ));

    let unknown_type = tenant
        .take_decision(
            &NewDecision {
                id: id(),
                work_item_id,
                task_id: None,
                decision_type: "grant_credit".into(),
                payload: Attr::map(),
                team: None,
                decided_by: worker_id,
            },
            now(),
        )
        .await;
    assert!(
        matches!(unknown_type, Err(StoreError::NotFound { .. })),
        "{unknown_type:?}"
    );

    // Another client sees none of it.
    assert!(matches!(
        other.decision(small).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(other
        .list_decisions(&PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(matches!(
        other.decision_types(engagement_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(tenant.decision_types(engagement_id).await.unwrap().len(), 2);
    assert_intact(store).await;
}

pub async fn a_policy_change_undoes_and_flags_and_reports(db: &TestDb) {
    let store = &db.store;
    let (tenant, _engagement_id, work_item_id, worker_id) = setup(store).await;
    let (undone, _) = decide(&tenant, work_item_id, worker_id, "approve_claim", 30_000_00).await;
    let (kept, _) = decide(&tenant, work_item_id, worker_id, "approve_claim", 10_000_00).await;
    let (flagged, _) = decide(
        &tenant,
        work_item_id,
        worker_id,
        "send_rejection_letter",
        40_000_00,
    )
    .await;
    for to in [WorkItemState::InProgress, WorkItemState::Delivered] {
        tenant
            .transition_work_item(work_item_id, to, None, None, now())
            .await
            .unwrap();
    }

    let report = store
        .publish_policy(
            limit_draft(Scope::client(tenant.client_id()), 20_000_00, OnFail::Block),
            LOOKBACK_DEFAULT,
            now(),
        )
        .await
        .unwrap();
    let outcome: BTreeMap<DecisionId, &str> = report
        .resolutions
        .iter()
        .map(|(_, r)| {
            let what = match r {
                Resolution::Undone { .. } => "undone",
                Resolution::Flagged { .. } => "flagged",
                Resolution::Kept { .. } => "kept",
            };
            (r.id(), what)
        })
        .collect();
    assert_eq!(
        outcome,
        BTreeMap::from([(undone, "undone"), (kept, "kept"), (flagged, "flagged")])
    );
    let undone_trace = report
        .resolutions
        .iter()
        .find(|(_, r)| r.id() == undone)
        .unwrap()
        .1
        .trace()
        .to_string();
    assert_eq!(
        undone_trace,
        format!("decision {undone} undone: policy client/claims.max_amount v1 `decision.amount <= 2000000` now fails for amount 3000000")
    );
    assert_eq!(
        tenant.decision(undone).await.unwrap().record.status,
        DecisionStatus::Undone
    );
    assert_eq!(
        tenant.decision(flagged).await.unwrap().record.status,
        DecisionStatus::Flagged
    );
    assert_eq!(
        tenant.decision(kept).await.unwrap().record.status,
        DecisionStatus::InForce
    );
    // The undone approval sends the delivered item back to work.
    assert_eq!(
        tenant.work_item(work_item_id).await.unwrap().state,
        WorkItemState::InProgress
    );

    // A lower layer may not loosen, and a refused draft stores nothing.
    let engagement_id = tenant.work_item(work_item_id).await.unwrap().engagement_id;
    let before = event_count(&tenant).await;
    let loosen = store
        .publish_policy(
            limit_draft(
                Scope::engagement(tenant.client_id(), engagement_id),
                90_000_00,
                OnFail::Block,
            ),
            LOOKBACK_DEFAULT,
            now(),
        )
        .await;
    match loosen {
        Err(StoreError::Rejected { message }) => {
            assert!(message.contains("would loosen it"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(event_count(&tenant).await, before);

    // Undo on request: inside the window it works, outside it is refused.
    let (late, _) = decide(&tenant, work_item_id, worker_id, "approve_claim", 5_000_00).await;
    let (early, _) = decide(&tenant, work_item_id, worker_id, "approve_claim", 6_000_00).await;
    tenant.undo_decision(early, now()).await.unwrap();
    advance_hours(73);
    let refused = tenant.undo_decision(late, now()).await;
    match refused {
        Err(StoreError::Rejected { message }) => assert!(
            message.contains("undo window of 72 hours closed"),
            "{message}"
        ),
        other => panic!("expected the undo to be refused, got {other:?}"),
    }
    assert_eq!(
        tenant.decision(late).await.unwrap().record.status,
        DecisionStatus::InForce
    );
    assert_intact(store).await;
}

/// One step of the replay property.
#[derive(Debug, Clone)]
enum Op {
    Decide {
        reversible: bool,
        amount: i64,
    },
    Publish {
        layer: u8,
        limit: i64,
        on_fail: u8,
        lookback_hours: i64,
    },
    Settle {
        idx: usize,
        approve: bool,
    },
    Undo {
        idx: usize,
    },
    Wait {
        hours: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 1i64..80).prop_map(|(reversible, k)| Op::Decide { reversible, amount: k * 10_000_00 }),
        2 => (0u8..3, 1i64..80, 0u8..3, prop_oneof![Just(24i64), Just(720)])
            .prop_map(|(layer, k, on_fail, lookback_hours)| Op::Publish { layer, limit: k * 10_000_00, on_fail, lookback_hours }),
        1 => (0usize..20, any::<bool>()).prop_map(|(idx, approve)| Op::Settle { idx, approve }),
        1 => (0usize..20).prop_map(|idx| Op::Undo { idx }),
        1 => (1i64..60).prop_map(|hours| Op::Wait { hours }),
    ]
}

/// Replaying the stored decision log through the core ledger, with the policies in force at
/// each moment, gives every decision the status the live system stored.
pub async fn decision_replay_matches_the_live_ledger(db: &TestDb) {
    let store = db.store.clone();
    let handle = tokio::runtime::Handle::current();
    let cases = if store.engine() == karya_store::Engine::Sqlite {
        32
    } else {
        16
    };
    tokio::task::block_in_place(|| {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&prop::collection::vec(op(), 1..30), |ops| {
            handle.block_on(check_replay(&store, ops));
            Ok(())
        });
        if let Err(err) = result {
            panic!("{err}");
        }
    });
}

async fn check_replay(store: &Store, ops: Vec<Op>) {
    let (tenant, engagement_id, work_item_id, worker_id) = setup(store).await;
    let mut decisions: Vec<DecisionId> = Vec::new();
    for op in ops {
        match op {
            Op::Decide { reversible, amount } => {
                let kind = if reversible {
                    "approve_claim"
                } else {
                    "send_rejection_letter"
                };
                decisions.push(
                    decide(&tenant, work_item_id, worker_id, kind, amount)
                        .await
                        .0,
                );
            }
            Op::Publish {
                layer,
                limit,
                on_fail,
                lookback_hours,
            } => {
                let scope = match layer {
                    0 => Scope::client(tenant.client_id()),
                    1 => Scope::engagement(tenant.client_id(), engagement_id),
                    _ => Scope::team(tenant.client_id(), "north"),
                };
                let on_fail = [
                    OnFail::Approval(Approver::Lead),
                    OnFail::Approval(Approver::Client),
                    OnFail::Block,
                ][on_fail as usize];
                // Loosening drafts are refused; that is part of what is replayed (as nothing).
                let _ = store
                    .publish_policy(
                        limit_draft(scope, limit, on_fail),
                        SignedDuration::from_hours(lookback_hours),
                        now(),
                    )
                    .await;
            }
            Op::Settle { idx, approve } => {
                if let Some(id) = decisions.get(idx) {
                    let _ = tenant.settle_approval(*id, approve, now()).await;
                }
            }
            Op::Undo { idx } => {
                if let Some(id) = decisions.get(idx) {
                    let _ = tenant.undo_decision(*id, now()).await;
                }
            }
            Op::Wait { hours } => advance_hours(hours),
        }
    }
    let (types, log) = tenant.decision_log().await.unwrap();
    let mut ledger = Ledger::new(types);
    for entry in log {
        ledger.apply(entry).unwrap();
    }
    let mut live = BTreeMap::new();
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let batch = tenant.list_decisions(&page).await.unwrap();
        live.extend(batch.items.iter().map(|d| (d.record.id, d.record.status)));
        match batch.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    let replayed: BTreeMap<DecisionId, DecisionStatus> = ledger
        .decisions
        .iter()
        .map(|(id, r)| (*id, r.status))
        .collect();
    assert_eq!(replayed, live);
    assert_eq!(live.len(), decisions.len());
}
