//! Case rules: who should keep a work item across its steps, and who must not take a step.
//!
//! Both follow from the item's own record. The worker who did the item's latest earlier step
//! (a checking step aside: the reviewer does not own the case) is its *preferred worker* (case affinity: the same analyst keeps a case when still eligible).
//! A step that checks earlier work (a review, a verification, an audit, an approval, a second
//! keying) is *independent*: everyone who did an earlier step of the item (the makers) is
//! excluded from it, and nobody is preferred. Exclusions stored for the task (a worker who
//! declined it, a conflict named by a lead) are added to those.

use jiff::Timestamp;

use crate::id::WorkerId;

/// Last segments of step names that check earlier work, e.g. `review`, `peer_review`,
/// `coding_audit`, `qa_check`, `second_keying`.
pub const CHECK_STEP_SUFFIXES: [&str; 9] = [
    "review",
    "verification",
    "qc",
    "qa_check",
    "quality_check",
    "audit",
    "approval",
    "second_keying",
    "testing",
];

/// Whether a step checks the work of earlier steps, by its name.
pub fn is_check_step(step: &str) -> bool {
    CHECK_STEP_SUFFIXES.iter().any(|suffix| {
        step == *suffix
            || step
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('_'))
    })
}

/// One earlier assignment of the item: a worker on one of its other tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorWork {
    pub step: String,
    pub worker_id: WorkerId,
    pub assigned_at: Timestamp,
    /// The worker did (or is doing) the step: the task went on from them, or they still hold
    /// it. A task released back to routing (declined, given back, a lapsed qualification) did
    /// not make them its maker.
    pub made: bool,
}

/// A stored exclusion of a worker from one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionReason {
    /// The worker declined the task's offer.
    Declined,
    /// A lead named a conflict for this case.
    Conflict,
}

impl ExclusionReason {
    pub const ALL: [ExclusionReason; 2] = [ExclusionReason::Declined, ExclusionReason::Conflict];

    pub fn code(self) -> &'static str {
        match self {
            ExclusionReason::Declined => "declined",
            ExclusionReason::Conflict => "conflict",
        }
    }

    pub fn parse(text: &str) -> Option<ExclusionReason> {
        ExclusionReason::ALL.into_iter().find(|r| r.code() == text)
    }
}

/// What the case says about one task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CaseRouting {
    pub preferred_worker: Option<WorkerId>,
    /// Distinct, in the order found: makers first, then stored exclusions.
    pub excluded_workers: Vec<WorkerId>,
}

/// The case rules for a task of `step`, from the item's earlier assignments (other tasks only)
/// and the exclusions stored for the task.
pub fn case_routing(step: &str, history: &[PriorWork], stored: &[WorkerId]) -> CaseRouting {
    let mut excluded: Vec<WorkerId> = Vec::new();
    let mut preferred: Option<(&PriorWork, WorkerId)> = None;
    let independent = is_check_step(step);
    for work in history.iter().filter(|w| w.made) {
        if independent {
            if !excluded.contains(&work.worker_id) {
                excluded.push(work.worker_id);
            }
        } else if !is_check_step(&work.step)
            && preferred.is_none_or(|(p, _)| work.assigned_at >= p.assigned_at)
        {
            preferred = Some((work, work.worker_id));
        }
    }
    for worker_id in stored {
        if !excluded.contains(worker_id) {
            excluded.push(*worker_id);
        }
    }
    let preferred_worker = preferred.map(|(_, w)| w).filter(|w| !excluded.contains(w));
    CaseRouting {
        preferred_worker,
        excluded_workers: excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(n: u128) -> WorkerId {
        WorkerId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + minute * 60).unwrap()
    }

    fn work(step: &str, worker: u128, minute: i64, made: bool) -> PriorWork {
        PriorWork {
            step: step.into(),
            worker_id: w(worker),
            assigned_at: at(minute),
            made,
        }
    }

    /// `(step, history, stored exclusions, expected "preferred=.. excluded=..")`.
    fn check(step: &str, history: &[PriorWork], stored: &[u128], expect: &str) {
        let stored: Vec<WorkerId> = stored.iter().map(|n| w(*n)).collect();
        let got = case_routing(step, history, &stored);
        let name = |id: &WorkerId| format!("w{}", id.as_uuid().as_u128());
        let excluded: Vec<String> = got.excluded_workers.iter().map(name).collect();
        let text = format!(
            "preferred={} excluded=[{}]",
            got.preferred_worker.as_ref().map_or("-".into(), name),
            excluded.join(",")
        );
        assert_eq!(text, expect, "{step}");
    }

    #[test]
    fn the_latest_maker_keeps_the_case_and_checkers_are_independent() {
        let history = [
            work("desk_research", 1, 0, true),
            work("expert_interviews", 2, 30, false),
            work("expert_interviews", 3, 40, true),
        ];
        check("modelling_and_report", &[], &[], "preferred=- excluded=[]");
        // Worker 2 gave the interviews back: worker 3 made them, and did so last.
        check(
            "modelling_and_report",
            &history,
            &[],
            "preferred=w3 excluded=[]",
        );
        check("review", &history, &[], "preferred=- excluded=[w1,w3]");
        check(
            "peer_review",
            &history,
            &[4],
            "preferred=- excluded=[w1,w3,w4]",
        );
        // A stored exclusion of the would-be preferred worker wins over affinity.
        check(
            "modelling_and_report",
            &history,
            &[3],
            "preferred=- excluded=[w3]",
        );
        check(
            "second_keying",
            &[work("first_keying", 5, 0, true)],
            &[],
            "preferred=- excluded=[w5]",
        );
        check(
            "coding_audit",
            &[work("coding", 5, 0, true), work("coding", 5, 9, true)],
            &[],
            "preferred=- excluded=[w5]",
        );
    }

    #[test]
    fn check_steps_are_known_by_the_end_of_their_name() {
        let checks: Vec<&str> = [
            "review",
            "peer_review",
            "second_level_review",
            "verification",
            "qc",
            "qa_check",
            "quality_check",
            "coding_audit",
            "call_audit",
            "approval",
            "second_keying",
            "lms_testing",
            "document_check",
            "preview",
            "first_keying",
            "auditing",
            "analysis",
        ]
        .into_iter()
        .filter(|s| is_check_step(s))
        .collect();
        assert_eq!(
            checks,
            [
                "review",
                "peer_review",
                "second_level_review",
                "verification",
                "qc",
                "qa_check",
                "quality_check",
                "coding_audit",
                "call_audit",
                "approval",
                "second_keying",
                "lms_testing"
            ]
        );
    }
}
