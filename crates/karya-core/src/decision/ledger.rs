//! The decision ledger: what becomes of a decision when it is taken, approved, undone, and when
//! a policy changes under it.
//!
//! The functions here decide; the store records. [`rule`] rules on a new decision,
//! [`resolve_change`] finds the past decisions a policy change now conflicts with and says which
//! to undo and which to flag, [`undo`] checks a requested undo. [`Ledger`] folds a decision log
//! through the same functions, so replaying the stored log with the policies in force at each
//! moment must give the stored outcome of every decision.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::decision::authority::{check_authority, Authority, DecisionType, Inverse};
use crate::decision::policy::{Approver, DecisionInput, Policy, PolicyBook, PolicyError, Verdict};
use crate::id::DecisionId;
use crate::model::Designation;

/// How far back a policy change looks for decisions it conflicts with, by default.
pub const LOOKBACK_DEFAULT: SignedDuration = SignedDuration::from_hours(24 * 30);

/// Where a decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionStatus {
    /// Taken and effective.
    InForce,
    /// Waiting for a lead or the client.
    PendingApproval(Approver),
    /// Refused by authority or policy when taken; recorded, never effective.
    Blocked,
    /// An approver said no.
    Rejected,
    /// Reversed by its compensating action.
    Undone,
    /// In conflict with a later policy but could not be undone; waits for a lead.
    Flagged,
}

impl DecisionStatus {
    pub fn code(self) -> &'static str {
        match self {
            DecisionStatus::InForce => "in_force",
            DecisionStatus::PendingApproval(Approver::Lead) => "pending_approval:lead",
            DecisionStatus::PendingApproval(Approver::Client) => "pending_approval:client",
            DecisionStatus::Blocked => "blocked",
            DecisionStatus::Rejected => "rejected",
            DecisionStatus::Undone => "undone",
            DecisionStatus::Flagged => "flagged",
        }
    }

    pub fn parse(text: &str) -> Option<DecisionStatus> {
        [
            DecisionStatus::InForce,
            DecisionStatus::PendingApproval(Approver::Lead),
            DecisionStatus::PendingApproval(Approver::Client),
            DecisionStatus::Blocked,
            DecisionStatus::Rejected,
            DecisionStatus::Undone,
            DecisionStatus::Flagged,
        ]
        .into_iter()
        .find(|status| status.code() == text)
    }
}

/// Who took a decision, as far as authority is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub designation: Designation,
    pub qualifications: Vec<String>,
}

/// A decision as the ledger knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub id: DecisionId,
    pub input: DecisionInput,
    pub decider: Decider,
    pub decided_at: Timestamp,
    pub status: DecisionStatus,
    /// Labels of the policy versions applied when it was taken.
    pub applied: Vec<String>,
    /// Readable lines: why it stands where it stands.
    pub trace: Vec<String>,
}

/// The ruling on a new decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruling {
    pub status: DecisionStatus,
    pub applied: Vec<String>,
    pub trace: Vec<String>,
}

/// Rules on a new decision: authority first, then every policy in force that covers it. The
/// strictest outcome wins: blocked, then client approval, then lead approval, then in force.
pub fn rule(
    book: &PolicyBook,
    decision_type: &DecisionType,
    input: &DecisionInput,
    decider: &Decider,
) -> Ruling {
    let mut trace = Vec::new();
    let authority = check_authority(
        decision_type,
        decider.designation,
        &decider.qualifications,
        &input.payload,
    );
    let evaluation = book.evaluate(input);
    trace.extend(evaluation.failures().map(|check| check.trace()));
    let mut status = match evaluation.verdict() {
        Verdict::Allow => DecisionStatus::InForce,
        Verdict::Approval(approver) => DecisionStatus::PendingApproval(approver),
        Verdict::Block => DecisionStatus::Blocked,
    };
    match authority {
        Authority::Within => {}
        Authority::Refused { reason } => {
            trace.insert(0, format!("authority: {reason}"));
            status = DecisionStatus::Blocked;
        }
        Authority::Approval { approver, reason } => {
            trace.insert(0, format!("authority: {reason}"));
            status = match status {
                DecisionStatus::InForce => DecisionStatus::PendingApproval(approver),
                DecisionStatus::PendingApproval(other) => {
                    DecisionStatus::PendingApproval(other.max(approver))
                }
                strictest => strictest,
            };
        }
    }
    if status == DecisionStatus::InForce {
        trace.push(format!(
            "in force: {} policies applied, all pass",
            evaluation.checks.len()
        ));
    }
    Ruling {
        status,
        applied: evaluation.applied(),
        trace,
    }
}

/// What a policy change does to one past decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Undone {
        id: DecisionId,
        compensation: String,
        reopen: bool,
        trace: String,
    },
    Flagged {
        id: DecisionId,
        trace: String,
    },
    Kept {
        id: DecisionId,
        trace: String,
    },
}

impl Resolution {
    pub fn id(&self) -> DecisionId {
        match self {
            Resolution::Undone { id, .. }
            | Resolution::Flagged { id, .. }
            | Resolution::Kept { id, .. } => *id,
        }
    }

    pub fn trace(&self) -> &str {
        match self {
            Resolution::Undone { trace, .. }
            | Resolution::Flagged { trace, .. }
            | Resolution::Kept { trace, .. } => trace,
        }
    }
}

/// After `changed` was published into `book`: every decision in force within the lookback that
/// the change covers, re-evaluated. Those that now fail are undone when their type is reversible
/// and their undo window is open, and flagged otherwise; the rest are kept.
pub fn resolve_change(
    book: &PolicyBook,
    types: &BTreeMap<String, DecisionType>,
    decisions: &[DecisionRecord],
    changed: &Policy,
    now: Timestamp,
    lookback: SignedDuration,
) -> Vec<Resolution> {
    let since = now.checked_sub(lookback).unwrap_or(Timestamp::MIN);
    let mut resolutions = Vec::new();
    for decision in decisions {
        let covered = changed
            .decision_type
            .as_deref()
            .is_none_or(|t| t == decision.input.decision_type)
            && changed.scope.covers(&decision.input.scope);
        if decision.status != DecisionStatus::InForce || decision.decided_at < since || !covered {
            continue;
        }
        let evaluation = book.evaluate(&decision.input);
        let Some(failure) = evaluation.failures().next() else {
            resolutions.push(Resolution::Kept {
                id: decision.id,
                trace: format!(
                    "decision {} kept: policy {} passes",
                    decision.id,
                    changed.label()
                ),
            });
            continue;
        };
        let reason = failure.trace().replacen("` fails", "` now fails", 1);
        let Some(decision_type) = types.get(&decision.input.decision_type) else {
            resolutions.push(Resolution::Flagged {
                id: decision.id,
                trace: format!(
                    "decision {} flagged: {reason}; its type {} is unknown",
                    decision.id, decision.input.decision_type
                ),
            });
            continue;
        };
        match undo_check(decision_type, decision.decided_at, now) {
            Ok(compensation) => resolutions.push(Resolution::Undone {
                id: decision.id,
                compensation,
                reopen: decision_type.reopen_on_undo,
                trace: format!("decision {} undone: {reason}", decision.id),
            }),
            Err(why) => resolutions.push(Resolution::Flagged {
                id: decision.id,
                trace: format!(
                    "decision {} flagged for a lead: {reason}; {why}",
                    decision.id
                ),
            }),
        }
    }
    resolutions
}

/// Why an undo is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    #[error("{0} decisions are irreversible")]
    Irreversible(String),
    #[error("the undo window of {hours} hours closed at {closed_at}")]
    WindowClosed { hours: u32, closed_at: Timestamp },
    #[error("only a decision in force can be undone; this one is {0}")]
    NotInForce(&'static str),
}

fn undo_check(
    decision_type: &DecisionType,
    decided_at: Timestamp,
    now: Timestamp,
) -> Result<String, UndoError> {
    let Inverse::Compensate { action } = &decision_type.inverse else {
        return Err(UndoError::Irreversible(decision_type.name.clone()));
    };
    let window = SignedDuration::from_hours(i64::from(decision_type.undo_window_hours));
    let closed_at = decided_at.checked_add(window).unwrap_or(Timestamp::MAX);
    if now > closed_at {
        return Err(UndoError::WindowClosed {
            hours: decision_type.undo_window_hours,
            closed_at,
        });
    }
    Ok(action.clone())
}

/// Checks an undo asked for by a person; returns the compensating action to run.
pub fn undo(
    decision: &DecisionRecord,
    decision_type: &DecisionType,
    now: Timestamp,
) -> Result<String, UndoError> {
    if decision.status != DecisionStatus::InForce {
        return Err(UndoError::NotInForce(decision.status.code()));
    }
    undo_check(decision_type, decision.decided_at, now)
}

/// One entry of the decision log, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerEntry {
    /// `lookback` is how far back the change looked for conflicting decisions.
    PolicyPublished {
        policy: Policy,
        at: Timestamp,
        lookback: SignedDuration,
    },
    DecisionTaken {
        id: DecisionId,
        input: DecisionInput,
        decider: Decider,
        at: Timestamp,
    },
    Approved {
        id: DecisionId,
        at: Timestamp,
    },
    Rejected {
        id: DecisionId,
        at: Timestamp,
    },
    UndoRequested {
        id: DecisionId,
        at: Timestamp,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("no decision {0}")]
    UnknownDecision(DecisionId),
    #[error("unknown decision type {0}")]
    UnknownType(String),
    #[error("decision {id} is {status}, not pending approval")]
    NotPending {
        id: DecisionId,
        status: &'static str,
    },
    #[error(transparent)]
    Undo(#[from] UndoError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Decisions and policies folded from a log.
#[derive(Debug)]
pub struct Ledger {
    pub book: PolicyBook,
    pub types: BTreeMap<String, DecisionType>,
    pub decisions: BTreeMap<DecisionId, DecisionRecord>,
}

impl Ledger {
    pub fn new(types: BTreeMap<String, DecisionType>) -> Ledger {
        Ledger {
            book: PolicyBook::new(),
            types,
            decisions: BTreeMap::new(),
        }
    }

    /// Applies one entry with the rules in force at that moment; returns what a policy change
    /// did to past decisions.
    pub fn apply(&mut self, entry: LedgerEntry) -> Result<Vec<Resolution>, LedgerError> {
        match entry {
            LedgerEntry::PolicyPublished {
                policy,
                at,
                lookback,
            } => {
                self.book.insert(policy.clone())?;
                let in_order: Vec<DecisionRecord> = self.decisions.values().cloned().collect();
                let resolutions =
                    resolve_change(&self.book, &self.types, &in_order, &policy, at, lookback);
                for resolution in &resolutions {
                    let record = self
                        .decisions
                        .get_mut(&resolution.id())
                        .expect("resolutions name known decisions");
                    match resolution {
                        Resolution::Undone { trace, .. } => {
                            record.status = DecisionStatus::Undone;
                            record.trace.push(trace.clone());
                        }
                        Resolution::Flagged { trace, .. } => {
                            record.status = DecisionStatus::Flagged;
                            record.trace.push(trace.clone());
                        }
                        Resolution::Kept { .. } => {}
                    }
                }
                Ok(resolutions)
            }
            LedgerEntry::DecisionTaken {
                id,
                input,
                decider,
                at,
            } => {
                let decision_type = self
                    .types
                    .get(&input.decision_type)
                    .ok_or_else(|| LedgerError::UnknownType(input.decision_type.clone()))?;
                let ruling = rule(&self.book, decision_type, &input, &decider);
                self.decisions.insert(
                    id,
                    DecisionRecord {
                        id,
                        input,
                        decider,
                        decided_at: at,
                        status: ruling.status,
                        applied: ruling.applied,
                        trace: ruling.trace,
                    },
                );
                Ok(Vec::new())
            }
            LedgerEntry::Approved { id, .. } | LedgerEntry::Rejected { id, .. } => {
                let approved = matches!(entry, LedgerEntry::Approved { .. });
                let record = self
                    .decisions
                    .get_mut(&id)
                    .ok_or(LedgerError::UnknownDecision(id))?;
                if !matches!(record.status, DecisionStatus::PendingApproval(_)) {
                    return Err(LedgerError::NotPending {
                        id,
                        status: record.status.code(),
                    });
                }
                record.status = if approved {
                    DecisionStatus::InForce
                } else {
                    DecisionStatus::Rejected
                };
                Ok(Vec::new())
            }
            LedgerEntry::UndoRequested { id, at } => {
                let record = self
                    .decisions
                    .get_mut(&id)
                    .ok_or(LedgerError::UnknownDecision(id))?;
                let decision_type = self
                    .types
                    .get(&record.input.decision_type)
                    .ok_or_else(|| LedgerError::UnknownType(record.input.decision_type.clone()))?;
                let action = undo(record, decision_type, at)?;
                record.status = DecisionStatus::Undone;
                record
                    .trace
                    .push(format!("decision {id} undone on request: {action}"));
                Ok(Vec::new())
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in minor units read best with the cents as their own group: 50_000_00"
)]
mod tests {
    use super::*;
    use crate::decision::attr::Attr;
    use crate::decision::policy::{Constraint, DecisionScope, OnFail, PolicyDraft, Scope};
    use crate::id::{ClientId, EngagementId};

    fn client() -> ClientId {
        "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7b".parse().unwrap()
    }

    fn hours(n: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + n * 3600).unwrap()
    }

    fn decision_id(n: u8) -> DecisionId {
        format!("0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a{n:02x}")
            .parse()
            .unwrap()
    }

    fn types() -> BTreeMap<String, DecisionType> {
        let refund = DecisionType {
            name: "refund".into(),
            amount_field: Some("amount".into()),
            limits: vec![
                (Designation::Analyst, 50_000_00),
                (Designation::TeamLead, 500_000_00),
            ],
            required_qualifications: vec![],
            inverse: Inverse::Compensate {
                action: "reverse_refund".into(),
            },
            undo_window_hours: 72,
            reopen_on_undo: true,
        };
        let letter = DecisionType {
            name: "send_letter".into(),
            amount_field: Some("amount".into()),
            limits: vec![(Designation::Analyst, 50_000_00)],
            required_qualifications: vec![],
            inverse: Inverse::Irreversible,
            undo_window_hours: 0,
            reopen_on_undo: false,
        };
        BTreeMap::from([("refund".into(), refund), ("send_letter".into(), letter)])
    }

    fn taken(n: u8, decision_type: &str, amount: i64, at: i64) -> LedgerEntry {
        let engagement_id: EngagementId = "0192f0e4-5b1c-7d3e-9a41-2f6c8e1d0a7c".parse().unwrap();
        LedgerEntry::DecisionTaken {
            id: decision_id(n),
            input: DecisionInput {
                decision_type: decision_type.into(),
                payload: Attr::map().with("amount", amount),
                item: Attr::map(),
                context: Attr::map(),
                scope: DecisionScope {
                    client_id: client(),
                    engagement_id,
                    team: None,
                },
            },
            decider: Decider {
                designation: Designation::Analyst,
                qualifications: vec![],
            },
            at: hours(at),
        }
    }

    fn limit(version: u32, limit: i64, at: i64) -> LedgerEntry {
        let mut book = PolicyBook::new();
        let mut policy = book
            .publish(
                PolicyDraft {
                    key: "refunds.max".into(),
                    scope: Scope::client(client()),
                    decision_type: None,
                    constraint: Constraint::AtMost {
                        field: "amount".into(),
                        limit,
                    },
                    on_fail: OnFail::Block,
                    default: false,
                    reason: None,
                },
                hours(at),
            )
            .unwrap();
        policy.version = version;
        LedgerEntry::PolicyPublished {
            policy,
            at: hours(at),
            lookback: LOOKBACK_DEFAULT,
        }
    }

    #[test]
    fn a_policy_change_undoes_exactly_the_conflicting_reversible_decisions() {
        let mut ledger = Ledger::new(types());
        for entry in [
            limit(1, 40_000_00, 0),
            taken(1, "refund", 25_000_00, 1), // will conflict, reversible, in window
            taken(2, "refund", 15_000_00, 2), // will still pass
            taken(3, "send_letter", 30_000_00, 3), // will conflict, irreversible
            taken(4, "refund", 45_000_00, 4), // blocked at the time (above 40,000)
            taken(5, "refund", 35_000_00, -100), // conflicts, but its window has closed
        ] {
            ledger.apply(entry).unwrap();
        }
        assert_eq!(
            ledger.decisions[&decision_id(4)].status,
            DecisionStatus::Blocked
        );
        assert_eq!(
            ledger.decisions[&decision_id(5)].status,
            DecisionStatus::InForce
        );

        let resolutions = ledger.apply(limit(2, 20_000_00, 10)).unwrap();
        let summary: Vec<String> = resolutions.iter().map(|r| r.trace().to_string()).collect();
        assert_eq!(
            summary,
            [
                format!("decision {} undone: policy client/refunds.max v2 `decision.amount <= 2000000` now fails for amount 2500000", decision_id(1)),
                format!("decision {} kept: policy client/refunds.max v2 passes", decision_id(2)),
                format!("decision {} flagged for a lead: policy client/refunds.max v2 `decision.amount <= 2000000` now fails for amount 3000000; send_letter decisions are irreversible", decision_id(3)),
                format!("decision {} flagged for a lead: policy client/refunds.max v2 `decision.amount <= 2000000` now fails for amount 3500000; the undo window of 72 hours closed at 2026-09-20T10:13:20Z", decision_id(5)),
            ]
        );
        let status = |n| ledger.decisions[&decision_id(n)].status;
        assert_eq!(
            [status(1), status(2), status(3), status(4), status(5)],
            [
                DecisionStatus::Undone,
                DecisionStatus::InForce,
                DecisionStatus::Flagged,
                DecisionStatus::Blocked,
                DecisionStatus::Flagged
            ]
        );
        assert!(
            matches!(&resolutions[0], Resolution::Undone { compensation, reopen: true, .. } if compensation == "reverse_refund")
        );
    }

    #[test]
    fn undo_outside_the_window_is_refused() {
        let mut ledger = Ledger::new(types());
        ledger.apply(taken(1, "refund", 10_000_00, 0)).unwrap();
        ledger.apply(taken(2, "send_letter", 10_000_00, 0)).unwrap();
        let late = ledger
            .apply(LedgerEntry::UndoRequested {
                id: decision_id(1),
                at: hours(73),
            })
            .unwrap_err();
        assert_eq!(
            late.to_string(),
            "the undo window of 72 hours closed at 2026-09-24T14:13:20Z"
        );
        let irreversible = ledger
            .apply(LedgerEntry::UndoRequested {
                id: decision_id(2),
                at: hours(1),
            })
            .unwrap_err();
        assert_eq!(
            irreversible.to_string(),
            "send_letter decisions are irreversible"
        );
        ledger
            .apply(LedgerEntry::UndoRequested {
                id: decision_id(1),
                at: hours(72),
            })
            .unwrap();
        assert_eq!(
            ledger.decisions[&decision_id(1)].status,
            DecisionStatus::Undone
        );
        let again = ledger
            .apply(LedgerEntry::UndoRequested {
                id: decision_id(1),
                at: hours(72),
            })
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            "only a decision in force can be undone; this one is undone"
        );
    }

    #[test]
    fn approval_routing() {
        let mut ledger = Ledger::new(types());
        ledger.apply(taken(1, "refund", 60_000_00, 0)).unwrap();
        ledger.apply(taken(2, "refund", 600_000_00, 0)).unwrap();
        assert_eq!(
            ledger.decisions[&decision_id(1)].status,
            DecisionStatus::PendingApproval(Approver::Lead)
        );
        assert_eq!(
            ledger.decisions[&decision_id(2)].status,
            DecisionStatus::PendingApproval(Approver::Client)
        );
        assert_eq!(
            ledger.decisions[&decision_id(2)].trace,
            ["authority: amount 60000000 exceeds every limit in the firm; the client approves"]
        );
        ledger
            .apply(LedgerEntry::Approved {
                id: decision_id(1),
                at: hours(1),
            })
            .unwrap();
        ledger
            .apply(LedgerEntry::Rejected {
                id: decision_id(2),
                at: hours(1),
            })
            .unwrap();
        assert_eq!(
            ledger.decisions[&decision_id(1)].status,
            DecisionStatus::InForce
        );
        assert_eq!(
            ledger.decisions[&decision_id(2)].status,
            DecisionStatus::Rejected
        );
        let twice = ledger
            .apply(LedgerEntry::Approved {
                id: decision_id(1),
                at: hours(2),
            })
            .unwrap_err();
        assert!(matches!(twice, LedgerError::NotPending { .. }));
    }
}
