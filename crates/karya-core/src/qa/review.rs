//! What a review may say, and where failed work goes.
//!
//! A review passes or fails a submitted task and lists the defects found, each with a category
//! the pack declares and a severity. A fail must name at least one defect, so that every
//! failure is explained; a pass may carry minor remarks but never a major or critical defect,
//! which would make the pass a contradiction. A failed task goes back for rework to its maker,
//! or to someone else when the engagement says so.

use crate::id::WorkerId;
use crate::model::{Defect, Severity};

/// Most defects one review may list: a review that finds more is a rework of its own, and the
/// bound keeps one request's writes small.
pub const DEFECTS_PER_REVIEW_MAX: usize = 100;
/// Longest defect comment accepted, in characters.
pub const DEFECT_COMMENT_CHARS_MAX: usize = 2_000;

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Minor, Severity::Major, Severity::Critical];

    pub fn code(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.code() == text)
    }
}

/// The verdict of a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

/// Why a review cannot be recorded as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewRefusal {
    #[error("a failing review must name at least one defect")]
    FailWithoutDefect,
    #[error(
        "a passing review cannot carry a {severity} defect ({category}); fail the task instead"
    )]
    PassWithBlockingDefect {
        category: String,
        severity: &'static str,
    },
    #[error("unknown defect category {category:?}; this step's categories are: {known}")]
    UnknownCategory { category: String, known: String },
    #[error("a review lists at most {max} defects, this one lists {listed}")]
    TooManyDefects { listed: usize, max: usize },
    #[error("a defect comment is {chars} characters; the limit is {max}")]
    CommentTooLong { chars: usize, max: usize },
}

/// Checks a review against the step's defect categories.
pub fn check_review(
    verdict: Verdict,
    defects: &[Defect],
    categories: &[String],
) -> Result<(), ReviewRefusal> {
    if defects.len() > DEFECTS_PER_REVIEW_MAX {
        return Err(ReviewRefusal::TooManyDefects {
            listed: defects.len(),
            max: DEFECTS_PER_REVIEW_MAX,
        });
    }
    for defect in defects {
        if !categories.contains(&defect.category) {
            return Err(ReviewRefusal::UnknownCategory {
                category: defect.category.clone(),
                known: categories.join(", "),
            });
        }
        let chars = defect.comment.chars().count();
        if chars > DEFECT_COMMENT_CHARS_MAX {
            return Err(ReviewRefusal::CommentTooLong {
                chars,
                max: DEFECT_COMMENT_CHARS_MAX,
            });
        }
    }
    match verdict {
        Verdict::Fail if defects.is_empty() => Err(ReviewRefusal::FailWithoutDefect),
        Verdict::Fail => Ok(()),
        Verdict::Pass => match defects.iter().find(|d| d.severity > Severity::Minor) {
            Some(blocking) => Err(ReviewRefusal::PassWithBlockingDefect {
                category: blocking.category.clone(),
                severity: blocking.severity.code(),
            }),
            None => Ok(()),
        },
    }
}

/// Who reworks a failed task, as the engagement sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReworkPolicy {
    /// The maker fixes their own work (the default: they know the item).
    SameMaker,
    /// The task goes back to the queue, and the maker may not take it again.
    AnotherWorker,
}

impl ReworkPolicy {
    pub fn code(self) -> &'static str {
        match self {
            ReworkPolicy::SameMaker => "same_maker",
            ReworkPolicy::AnotherWorker => "another_worker",
        }
    }

    pub fn parse(text: &str) -> Option<ReworkPolicy> {
        [ReworkPolicy::SameMaker, ReworkPolicy::AnotherWorker]
            .into_iter()
            .find(|p| p.code() == text)
    }
}

/// Where a failed task goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rework {
    /// Stays with the maker, state `rework`, then `in_progress` when they start.
    Maker(WorkerId),
    /// Released to the queue (`rework → ready`), with the maker excluded from taking it.
    Reroute { excluded: WorkerId },
}

/// Decides where failed work goes.
pub fn rework(policy: ReworkPolicy, maker: WorkerId) -> Rework {
    match policy {
        ReworkPolicy::SameMaker => Rework::Maker(maker),
        ReworkPolicy::AnotherWorker => Rework::Reroute { excluded: maker },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defect(category: &str, severity: Severity) -> Defect {
        Defect {
            category: category.into(),
            severity,
            field: Some("amount".into()),
            comment: "total does not match the invoice".into(),
        }
    }

    fn check(verdict: Verdict, defects: &[Defect], expected: &str) {
        let categories = vec!["wrong_value".to_string(), "missed_reference".to_string()];
        let actual = match check_review(verdict, defects, &categories) {
            Ok(()) => "ok".to_string(),
            Err(refusal) => refusal.to_string(),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn review_rules() {
        use Severity::*;
        check(Verdict::Pass, &[], "ok");
        check(Verdict::Pass, &[defect("wrong_value", Minor)], "ok");
        check(
            Verdict::Pass,
            &[defect("wrong_value", Minor), defect("missed_reference", Major)],
            "a passing review cannot carry a major defect (missed_reference); fail the task instead",
        );
        check(Verdict::Fail, &[defect("wrong_value", Critical)], "ok");
        check(Verdict::Fail, &[defect("wrong_value", Minor)], "ok");
        check(
            Verdict::Fail,
            &[],
            "a failing review must name at least one defect",
        );
        check(
            Verdict::Fail,
            &[defect("typo", Minor)],
            "unknown defect category \"typo\"; this step's categories are: wrong_value, missed_reference",
        );
        let mut long = defect("wrong_value", Major);
        long.comment = "x".repeat(DEFECT_COMMENT_CHARS_MAX + 1);
        check(
            Verdict::Fail,
            &[long],
            "a defect comment is 2001 characters; the limit is 2000",
        );
        let many = vec![defect("wrong_value", Minor); DEFECTS_PER_REVIEW_MAX + 1];
        check(
            Verdict::Fail,
            &many,
            "a review lists at most 100 defects, this one lists 101",
        );
    }

    #[test]
    fn rework_goes_to_the_maker_unless_the_engagement_says_otherwise() {
        let maker = WorkerId::from_uuid(uuid::Uuid::from_u128(7));
        assert_eq!(rework(ReworkPolicy::SameMaker, maker), Rework::Maker(maker));
        assert_eq!(
            rework(ReworkPolicy::AnotherWorker, maker),
            Rework::Reroute { excluded: maker }
        );
        assert_eq!(
            ReworkPolicy::parse("another_worker"),
            Some(ReworkPolicy::AnotherWorker)
        );
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
        assert_eq!(Severity::parse("fatal"), None);
    }
}
