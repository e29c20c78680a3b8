//! Decision types and authority: who may decide what, alone.
//!
//! A pack declares its decision types: what the payload holds, how the decision is undone (a
//! compensating action, or not at all) and for how long, and the authority limits by
//! designation. A decision above the decider's limit is not refused: it goes to someone who may
//! take it — a lead when a higher designation's limit covers it, the client above every limit.

use crate::decision::attr::Attr;
use crate::decision::policy::Approver;
use crate::model::Designation;

/// How a decision is undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inverse {
    /// By a compensating action, e.g. `reverse_payment` for `approve_claim`.
    Compensate { action: String },
    /// Not at all: a sent letter, a filed form. Conflicts are flagged for a lead instead.
    Irreversible,
}

/// A kind of decision a pack allows workers to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionType {
    pub name: String,
    /// The payload field (dotted path) holding the amount that authority limits apply to, in
    /// minor units; `None` when the type has no amount.
    pub amount_field: Option<String>,
    /// The highest amount each designation may decide alone. A designation not listed inherits
    /// the limit of the nearest one below it; below every listed one it may not decide alone.
    pub limits: Vec<(Designation, i64)>,
    /// Qualification codes the decider must hold (e.g. `cpc` for medical coding).
    pub required_qualifications: Vec<String>,
    pub inverse: Inverse,
    /// How long after the decision an undo is still allowed.
    pub undo_window_hours: u32,
    /// Whether undoing reopens the work item (a delivered item goes back to work).
    pub reopen_on_undo: bool,
}

/// What the decider's authority allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    Within,
    Approval { approver: Approver, reason: String },
    Refused { reason: String },
}

/// Checks a decision against the decider's designation and qualifications.
pub fn check_authority(
    decision_type: &DecisionType,
    designation: Designation,
    qualifications: &[String],
    payload: &Attr,
) -> Authority {
    if let Some(missing) = decision_type
        .required_qualifications
        .iter()
        .find(|q| !qualifications.contains(q))
    {
        return Authority::Refused {
            reason: format!(
                "{} needs the qualification {missing}, which the decider does not hold",
                decision_type.name
            ),
        };
    }
    let Some(field) = &decision_type.amount_field else {
        return Authority::Within;
    };
    // The amount is in the unit the limits are in: minor units for types registered through the
    // API, the currency's major unit (so possibly with a fraction) for types from a pack.
    let amount = match payload.get_path(field) {
        Some(Attr::Int(n)) => *n as f64,
        Some(Attr::Float(x)) if x.is_finite() => *x,
        _ => {
            return Authority::Refused {
                reason: format!("{} needs a number {field}", decision_type.name),
            }
        }
    };
    let limit_of = |who: Designation| {
        decision_type
            .limits
            .iter()
            .filter(|(d, _)| *d <= who)
            .max_by_key(|(d, _)| *d)
            .map(|(_, limit)| *limit)
    };
    let own = limit_of(designation);
    if own.is_some_and(|limit| amount <= limit as f64) {
        return Authority::Within;
    }
    let own_text = match own {
        Some(limit) => format!("the {} limit of {limit}", designation.code()),
        None => format!("what a {} may decide alone", designation.code()),
    };
    let higher = decision_type
        .limits
        .iter()
        .filter(|(d, limit)| *d > designation && amount <= *limit as f64)
        .min_by_key(|(d, _)| *d);
    match higher {
        Some((approver, limit)) => Authority::Approval {
            approver: Approver::Lead,
            reason: format!(
                "{field} {amount} exceeds {own_text}; a {} may approve up to {limit}",
                approver.code()
            ),
        },
        None => Authority::Approval {
            approver: Approver::Client,
            reason: format!(
                "{field} {amount} exceeds every limit in the firm; the client approves"
            ),
        },
    }
}

#[cfg(test)]
#[allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in minor units read best with the cents as their own group: 50_000_00"
)]
mod tests {
    use super::*;

    fn approve_claim() -> DecisionType {
        DecisionType {
            name: "approve_claim".into(),
            amount_field: Some("amount".into()),
            limits: vec![
                (Designation::Analyst, 50_000_00),
                (Designation::TeamLead, 500_000_00),
            ],
            required_qualifications: vec![],
            inverse: Inverse::Compensate {
                action: "reverse_approval".into(),
            },
            undo_window_hours: 72,
            reopen_on_undo: true,
        }
    }

    fn check(
        designation: Designation,
        qualifications: &[&str],
        amount: Option<i64>,
        expected: &str,
    ) {
        let mut decision_type = approve_claim();
        if qualifications.contains(&"needs-cpc") {
            decision_type.required_qualifications = vec!["cpc".into()];
        }
        let qualifications: Vec<String> = qualifications.iter().map(|q| q.to_string()).collect();
        let payload = match amount {
            Some(amount) => Attr::map().with("amount", amount),
            None => Attr::map(),
        };
        let actual = match check_authority(&decision_type, designation, &qualifications, &payload) {
            Authority::Within => "within".to_string(),
            Authority::Approval { approver, reason } => {
                format!("approval by {}: {reason}", approver.code())
            }
            Authority::Refused { reason } => format!("refused: {reason}"),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn authority_limits_by_designation() {
        use Designation::*;
        check(Analyst, &[], Some(50_000_00), "within");
        check(SeniorAnalyst, &[], Some(40_000_00), "within");
        check(
            Analyst,
            &[],
            Some(50_000_01),
            "approval by lead: amount 5000001 exceeds the analyst limit of 5000000; a team_lead may approve up to 50000000",
        );
        check(TeamLead, &[], Some(500_000_00), "within");
        check(Manager, &[], Some(400_000_00), "within");
        check(TeamLead, &[], Some(500_000_01), "approval by client: amount 50000001 exceeds every limit in the firm; the client approves");
        check(
            Analyst,
            &[],
            None,
            "refused: approve_claim needs a number amount",
        );
        check(
            Analyst,
            &["needs-cpc"],
            Some(1),
            "refused: approve_claim needs the qualification cpc, which the decider does not hold",
        );
        check(Analyst, &["needs-cpc", "cpc"], Some(1), "within");
    }

    #[test]
    fn fractional_amounts_compare_exactly_against_the_limits() {
        let decision_type = approve_claim();
        let at = |amount: f64| {
            let payload = Attr::map().with("amount", Attr::Float(amount));
            check_authority(&decision_type, Designation::Analyst, &[], &payload)
        };
        assert_eq!(at(4_999_999.5), Authority::Within);
        assert!(matches!(at(5_000_000.5), Authority::Approval { .. }));
        let nan = Attr::map().with("amount", Attr::Float(f64::NAN));
        assert!(matches!(
            check_authority(&decision_type, Designation::Analyst, &[], &nan),
            Authority::Refused { .. }
        ));
    }
}
