//! Separation of duties: who may check whose work.
//!
//! The engine enforces these, not the UI: a reviewer is never the maker of the work under
//! review, holds at least the designation the pack asks of reviewers, and holds the
//! qualification the client requires of reviewers, if any (a chartered accountant reviews
//! bookkeeping). An adjudicator of a consensus task is bound the same way towards every maker.
//! Each check returns the first rule broken as a typed refusal that names what was missing.

use crate::id::WorkerId;
use crate::model::Designation;

/// What the rules need to know about the person proposed as reviewer or adjudicator.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    pub worker_id: WorkerId,
    pub designation: Designation,
    /// Qualification codes the worker holds, e.g. `ca`, `cpa`, `mbbs`.
    pub qualifications: &'a [String],
}

/// Who may review work of one step: the pack's minimum and the client's requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerRequirements {
    /// The lowest designation the pack allows to review this step.
    pub min_designation: Designation,
    /// A qualification the client requires of reviewers, if any.
    pub qualification: Option<String>,
}

/// Why a person may not check a piece of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DutyRefusal {
    #[error("worker {worker_id} made this work and cannot check it")]
    CheckerIsMaker { worker_id: WorkerId },
    #[error(
        "checking this step needs designation {needed} or above; worker {worker_id} is {held}"
    )]
    DesignationTooLow {
        worker_id: WorkerId,
        held: &'static str,
        needed: &'static str,
    },
    #[error("the client requires reviewers with qualification {needed:?}; worker {worker_id} does not hold it")]
    MissingQualification { worker_id: WorkerId, needed: String },
}

/// Checks that `checker` may review work made by `makers` (one maker for a review, all the
/// keyers for a consensus adjudication).
pub fn check_checker(
    checker: &Checker<'_>,
    makers: &[WorkerId],
    requirements: &ReviewerRequirements,
) -> Result<(), DutyRefusal> {
    if makers.contains(&checker.worker_id) {
        return Err(DutyRefusal::CheckerIsMaker {
            worker_id: checker.worker_id,
        });
    }
    if checker.designation < requirements.min_designation {
        return Err(DutyRefusal::DesignationTooLow {
            worker_id: checker.worker_id,
            held: checker.designation.code(),
            needed: requirements.min_designation.code(),
        });
    }
    if let Some(needed) = &requirements.qualification {
        if !checker.qualifications.iter().any(|held| held == needed) {
            return Err(DutyRefusal::MissingQualification {
                worker_id: checker.worker_id,
                needed: needed.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(n: u128) -> WorkerId {
        WorkerId::from_uuid(uuid::Uuid::from_u128(n))
    }

    /// One case: the checker (designation, qualifications), the makers, the requirements, and
    /// the expected result as text ("ok" or the refusal's message).
    fn check(
        checker: (u128, Designation, &[&str]),
        makers: &[u128],
        requirements: (Designation, Option<&str>),
        expected: &str,
    ) {
        let qualifications: Vec<String> = checker.2.iter().map(|q| q.to_string()).collect();
        let checker = Checker {
            worker_id: worker(checker.0),
            designation: checker.1,
            qualifications: &qualifications,
        };
        let makers: Vec<WorkerId> = makers.iter().map(|n| worker(*n)).collect();
        let requirements = ReviewerRequirements {
            min_designation: requirements.0,
            qualification: requirements.1.map(str::to_string),
        };
        let actual = match check_checker(&checker, &makers, &requirements) {
            Ok(()) => "ok".to_string(),
            Err(refusal) => refusal.to_string(),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn separation_of_duties() {
        use Designation::*;
        let w1 = "00000000-0000-0000-0000-000000000001";
        // A senior analyst reviewing an analyst's work, nothing else required.
        check((2, SeniorAnalyst, &[]), &[1], (SeniorAnalyst, None), "ok");
        // The maker reviewing their own work is refused whatever their rank.
        check(
            (1, Manager, &["ca"]),
            &[1],
            (Analyst, None),
            &format!("worker {w1} made this work and cannot check it"),
        );
        // Below the pack's minimum.
        check(
            (1, Analyst, &[]),
            &[2],
            (SeniorAnalyst, None),
            &format!("checking this step needs designation senior_analyst or above; worker {w1} is analyst"),
        );
        // Above the minimum counts too.
        check((3, Manager, &[]), &[1], (TeamLead, None), "ok");
        // The client requires a chartered accountant.
        check(
            (1, TeamLead, &["cpa"]),
            &[2],
            (SeniorAnalyst, Some("ca")),
            &format!("the client requires reviewers with qualification \"ca\"; worker {w1} does not hold it"),
        );
        check(
            (3, TeamLead, &["cpa", "ca"]),
            &[2],
            (SeniorAnalyst, Some("ca")),
            "ok",
        );
        // An adjudicator must not be any of the keyers.
        check(
            (1, TeamLead, &[]),
            &[2, 1],
            (Analyst, None),
            &format!("worker {w1} made this work and cannot check it"),
        );
        check((3, TeamLead, &[]), &[2, 1], (Analyst, None), "ok");
    }
}
